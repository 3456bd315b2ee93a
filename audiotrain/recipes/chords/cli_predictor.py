"""What the ``evaluate`` and ``predict`` commands share: the checkpoint and decoding flags, and the
predictor they load.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import warnings
from collections.abc import Collection
from pathlib import Path

from audiotrain.chords.decode import DECODING_BEFORE_ADDED, DecodeConfig
from audiotrain.recipes._run import path_flag
from audiotrain.recipes.chords.model_checkpoint import StandInCheckpointWarning, loaded_checkpoint_note
from audiotrain.recipes.chords.predict import ADDED_AFTER_DEFAULT_TTA, DEFAULT_TTA_SEMITONES, ChordPredictor
from audiotrain.recipes.config_cli import merge_config, older_record_note, parse_bool

DECODE_HELP = {
    "decode.method": "smoothing of frame posteriors: viterbi (HMM), median or argmax",
    "decode.self_transition": "viterbi: probability of staying in the same chord from frame to frame",
    "decode.median_frames": "median: filter width in frames (odd)",
    "decode.joint_bass": "viterbi over (chord, bass) pairs (the bass is a chord tone); off: separate paths",
    "decode.chord_head_weight": "weight of the joint chord head against the type x root heads (1: head alone)",
    "decode.unknown_chords": "output X (unknown chord) labels; off: the most likely real chord (or N) instead",
    "decode.refine_boundaries": "viterbi: put each chord change where the two chords' frame log-probabilities "
    "cross; off: halfway between the frames",
    "decode.bass_onset_frames": "joint viterbi: each segment's bass is the chord tone heard most as it starts "
    "(bass posteriors weighted by exp(-t / this), t frames from its start); 0: the path's own bass",
    "decode.silence_db": "frames quieter than the song's playing level (the median of its sounding frames) by "
    "more than this many dB are N "
    "(a chord's fading tail after its notes stop); 0: off",
}
DECODE_CHOICES = {"decode.method": ("viterbi", "median", "argmax")}


def _predictor_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments `_load_predictor` reads: the checkpoint and decoding overrides."""
    parser.add_argument("--checkpoint", required=True, type=path_flag,
                        help="checkpoint folder (or a run folder: uses its best checkpoint)")  # fmt: skip
    parser.add_argument("--decode.method", dest="decode_method", choices=DECODE_CHOICES["decode.method"], default=None,
                        help="smoothing of frame posteriors (default: the checkpoint's)")  # fmt: skip
    parser.add_argument("--decode.self_transition", dest="decode_self_transition", type=float, default=None, metavar="P",
                        help="viterbi: probability of staying in the same chord per frame (default: the checkpoint's)")  # fmt: skip
    parser.add_argument("--decode.median_frames", dest="decode_median_frames", type=int, default=None, metavar="FRAMES",
                        help="median: filter width in frames, odd (default: the checkpoint's)")  # fmt: skip
    parser.add_argument("--decode.joint_bass", dest="decode_joint_bass", type=parse_bool, default=None,
                        metavar="BOOL", help="viterbi over (chord, bass) pairs, the bass a chord tone; "
                        "false: separate chord and bass paths (default: the checkpoint's)")  # fmt: skip
    parser.add_argument("--decode.chord_head_weight", dest="decode_chord_head_weight", type=float,
                        default=None, metavar="W", help="viterbi, a model with a joint chord head: its "
                        "weight against the type x root heads, 0 to 1 (1: the head alone) "
                        "(default: the checkpoint's)")  # fmt: skip
    parser.add_argument("--decode.refine_boundaries", dest="decode_refine_boundaries", type=parse_bool, default=None,
                        metavar="BOOL", help="viterbi: place each chord change where the two chords' frame "
                        "log-probabilities cross, not halfway between frames (default: the checkpoint's)")  # fmt: skip
    parser.add_argument("--decode.bass_onset_frames", dest="decode_bass_onset_frames", type=float, default=None, metavar="FRAMES",
                        help="joint viterbi: each segment's bass is the chord tone heard most as it starts, "
                        "weighted by exp(-t / this) t frames in; 0: the path's own (default: the checkpoint's)")  # fmt: skip
    parser.add_argument("--decode.silence_db", dest="decode_silence_db", type=float, default=None, metavar="DB",
                        help="frames quieter than the song's playing level (the median of its sounding "
                        "frames) by more than this many dB are N; "
                        "0: off (default: the checkpoint's)")  # fmt: skip
    parser.add_argument("--decode.unknown_chords", dest="decode_unknown_chords", type=parse_bool, default=None,
                        metavar="BOOL", help="output X (unknown chord) labels (default: the checkpoint's)")  # fmt: skip
    parser.add_argument("--tta", type=int, default=None, metavar="SEMITONES",
                        help="test-time augmentation: average the posteriors of the audio shifted by -N..N "
                        f"semitones (default {DEFAULT_TTA_SEMITONES}, or the checkpoint's features.max_pitch_shift "
                        "if smaller; at most that max_pitch_shift, as far as its spare bins reach: 6 covers all 12 "
                        "keys; 0: off, about twice as fast; costs 2N+1 forward passes; off by default for a "
                        "model trained without pitch shifts, as the guide's clip Trainer's)")  # fmt: skip


def _load_predictor(args: argparse.Namespace, checkpoint: Path | None = None) -> ChordPredictor:
    """The predictor of `checkpoint` (default ``--checkpoint``) with the ``--tta`` and decoding flags."""
    checkpoint = checkpoint if checkpoint is not None else args.checkpoint
    if args.tta is not None and args.tta < 0:  # (the upper bound is the checkpoint's, checked below)
        raise ValueError(f"--tta must be 0 semitones (off) or more, got {args.tta}")
    with warnings.catch_warnings():  # (the note below says it, on one line)
        warnings.simplefilter("ignore", StandInCheckpointWarning)
        predictor = ChordPredictor.from_checkpoint(checkpoint)  # the default shifts always fit its features
    # Given a run folder, which of its checkpoints: its best one may have been deleted, and the last one,
    # which then stands in, is another model.
    note = loaded_checkpoint_note(Path(checkpoint), predictor.checkpoint)
    if note:
        _print_to_stderr(note)
    reach = predictor.features.max_pitch_shift
    if args.tta and predictor.features.kind == "mel":
        raise ValueError(
            f"--tta {args.tta}: {checkpoint} was trained on features.kind mel, whose bands are not a "
            "semitone grid to shift along; test-time pitch shifting is for CQT features only (use --tta 0)"
        )
    if args.tta is not None and args.tta > reach:
        raise ValueError(
            f"--tta {args.tta}: {checkpoint} was trained with features.max_pitch_shift {reach}, so its "
            f"features reach {reach} semitones either way; use --tta {reach}" + (" or less" if reach else "")
        )
    if args.tta is not None:
        predictor.tta_shifts = tuple(range(-args.tta, args.tta + 1))
    # Every DecodeConfig field has its --decode.NAME flag (dest decode_NAME): one the parser lacks, or one
    # parsed but left out here, would be a setting the user cannot reach or one taken without effect.
    changes = {
        field.name: getattr(args, f"decode_{field.name}")
        for field in dataclasses.fields(DecodeConfig)
        if getattr(args, f"decode_{field.name}") is not None
    }
    if "chord_head_weight" in changes and not predictor.model.config.chord_head:
        # (as training refuses it: it weighs a head this model has not, and the labels would not change)
        raise ValueError(
            f"--decode.chord_head_weight {changes['chord_head_weight']:g} weighs the joint chord head in "
            f"decoding, and {checkpoint} was trained without one (model.chord_head false): leave it out"
        )
    if changes:  # validated as the training flags are, and named as the flags
        predictor.decode = merge_config(predictor.decode, changes, source="command line", path="decode.")
    note = older_decoding_note(predictor, changes, tta_given=args.tta is not None)
    if note:
        _print_to_stderr(note)
    return predictor


def older_decoding_note(predictor: ChordPredictor, given: Collection[str], tta_given: bool) -> str | None:
    """A note line for a checkpoint of an older audiotrain whose stored decoding lacks settings added since
    (`ChordPredictor.decode_from_defaults`): they take today's defaults, so its labels may differ from those
    its version wrote, which it did not say. It names them and the flags that decode as that version did;
    None where the flags (`given`: the decoding fields set; `tta_given`: ``--tta``) set them all."""
    lacking = predictor.decode_from_defaults
    before_tta = ADDED_AFTER_DEFAULT_TTA in lacking  # (written by a version without test-time augmentation)
    named = [
        name
        for name in lacking
        if name not in given and (name != "chord_head_weight" or predictor.model.config.chord_head)
    ]
    if not named and not (before_tta and not tta_given):
        return None
    known = [name for name in named if name in DECODING_BEFORE_ADDED]
    flags = [f"--decode.{name} {str(DECODING_BEFORE_ADDED[name]).lower()}" for name in known]
    defaults = [f"decode.{name}" for name in named]
    if before_tta and not tta_given:
        defaults.append(f"test-time augmentation (--tta {max(predictor.tta_shifts)})")
        flags.append("--tta 0")
    said = [
        f"today's defaults for {', '.join(defaults)}, so its labels may differ from those its version wrote"
    ]
    remedies = [f"{' '.join(flags)} decode as that version did"] if flags else []
    if len(known) < len(named):  # (a setting whose earlier meaning DECODING_BEFORE_ADDED does not hold)
        remedies.append("the --decode.* flags set the others" if flags else "the --decode.* flags set them")
    if before_tta:  # (no flag sets the overlap: the posteriors differ a little, the labels seldom)
        remedies.append("its windows overlapped by half, today's by a quarter")
    return older_record_note(predictor.checkpoint, said, "; ".join(remedies))


def _print_to_stderr(message: str) -> None:
    print(message, file=sys.stderr)
