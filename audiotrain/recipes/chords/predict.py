"""Chord transcription with a trained checkpoint: audio → CQT → frame posteriors → segments → ``.lab``.

`ChordPredictor.from_checkpoint(path)` rebuilds the model from what the checkpoint stores (model config,
feature config, vocabulary, decoding settings; see `ChordTask.on_save_checkpoint`), so a checkpoint folder
is all `predict` needs.

Songs longer than the training windows are run in windows of `window_frames` frames that overlap by a
quarter, batched; each window's posteriors are weighted by a triangular taper (1 in the middle, small at the
borders, where a window has context on one side only) and overlapping windows are averaged.

Test-time augmentation is on by default: the posteriors are the mean over the song pitch-shifted by -2..+2
semitones (the CQT crop moved, the roots rotated back; `DEFAULT_TTA_SEMITONES`). Measured in
`benchmarks/chords_rounds.md` (eleventh round): +0.6 to +1.8 points on the independent style's six metrics
over six seeds, at about 300 s of audio per second of transcription on the 2-core Zen 5 machines here (0 to
turn it off: about 550), and 95-150 on a 2-core Zen 3 (twenty-sixth round).
"""

from __future__ import annotations

import os
import tempfile
import threading
import unicodedata
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from audiotrain._forked_child import note_mlx_evaluated, refuse_in_forked_child
from audiotrain._thread_streams import clear_streams_when_thread_ends
from audiotrain.audio import MIN_SAMPLE_RATE, AudioError, resample
from audiotrain.chords.decode import DecodeConfig, decode_posteriors
from audiotrain.chords.lab import ChordSegment
from audiotrain.chords.vocabulary import N_INDEX, NUM_CHORD_TYPES, vocabulary_dict
from audiotrain.datasets._folders import AUDIO_FILE_SUFFIXES, one_file_kind
from audiotrain.datasets.chord_songs import ANNOTATION_SUFFIXES, pairing_key, whole_semitones
from audiotrain.features._backend import as_float_signal, check_sample_rate
from audiotrain.models import fast_math
from audiotrain.models.chord_model import ChordModelConfig, ChordRecognitionModel, joint_chord_classes
from audiotrain.recipes.chords.config import (
    FEATURES_VERSION,
    SILENCE_PEAK_DBFS,
    ChordFeatureConfig,
    TrainingConfig,
    cancelling_channels,
    is_digital_silence,
    older_record_meanings,
)
from audiotrain.recipes.chords.model_checkpoint import (
    NOT_BEST,
    StandInCheckpointWarning,
    loaded_checkpoint_note,
    network_entries,
    not_a_chord_checkpoint,
    resolve_model_checkpoint,
)
from audiotrain.recipes.chords.own_model import (
    MODEL_CLASS_KEY,
    check_model_heads,
    model_class_name,
    refuse_own_model_checkpoint,
)
from audiotrain.recipes.chords.task import CHECKPOINT_KEY, stored_settings
from audiotrain.recipes.config_cli import (
    load_config_file,
    merge_config,
    read_older_record,
    training_memory_limit,
)
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.evaluation import eval_mode
from audiotrain.train.interrupt import eval_compiling_again
from audiotrain.train.memory import MLX_MEMORY_LIMIT

import mlx.core as mx
import numpy as np

#: Test-time pitch shifts by default: -2..+2 semitones (fewer when the features have fewer spare bins).
DEFAULT_TTA_SEMITONES = 2
#: The decoding setting added right after test-time augmentation came on by default and windows came to
#: overlap by a quarter (both 2026-11-25): a checkpoint whose stored decoding lacks it was written by a
#: version that transcribed without test-time augmentation (``--tta 0``), its windows overlapping by half.
ADDED_AFTER_DEFAULT_TTA = "refine_boundaries"
#: A waveform peaking above this many times full scale is warned of: a float mix's overs stay far under
#: it, integer PCM cast to float unscaled (int16 near 32768) far over it, and its labels are not the
#: scaled audio's (the features are log(1 + gain * |CQT|), not scale-free).
UNSCALED_PCM_PEAK = 64.0
#: A waveform peaking above this is refused: near 1e18 the CQT's squared magnitudes overflow float32 and
#: the tuning estimate ended in a raw 'cannot convert float NaN to integer' (int32 cast unscaled: 2.1e9).
LOUDEST_PEAK = 1e12


@dataclass
class SongPosteriors:
    """Frame posteriors of one song: "chord_type" [frames, 32], "root" and "bass" [frames, 12], and from a
    model with a joint chord head "chord" [frames, 362]; with the audio, each frame's level in dB
    (`ChordFeatureConfig.frame_levels_db`), which decoding's ``silence_db`` reads. Frame ``i`` is centred at
    ``i / frame_rate`` seconds, and the frames span the song's ``duration`` (``1 + duration * frame_rate``
    of them, rounded down): models of other hop lengths are averaged after resampling one onto the other's
    frame times (``np.interp``), and `ChordPredictor.segments` refuses frames that do not span the song."""

    probs: dict[str, np.ndarray]
    frame_rate: float
    duration: float
    level_db: np.ndarray | None = None
    #: The audio is digital silence (`is_digital_silence`): every frame is N, with certainty.
    silent: bool = False


def check_frames_span_song(frames: int, frame_rate: float, duration: float) -> None:
    """Refuse posteriors whose frames, at `frame_rate`, do not span `duration` (a frame's slack either way).

    An ensemble that gave a hop-1024 model's posteriors a hop-2048 model's frame rate (or the reverse) was
    decoded with no message: the frames past the song's end dropped, or the last chord stretched over the
    half of the song that had no frames."""
    spanned = duration * frame_rate  # a song's own posteriors have between this and one more frame
    if spanned - 1 <= frames <= spanned + 2:
        return
    raise ValueError(
        f"posteriors of {frames} frames at {frame_rate:.2f} frames per second span {frames / frame_rate:.2f} "
        f"s, but the song lasts {duration:.2f} s ({int(spanned) + 1} frames at that rate): a frame_rate or "
        "duration of another model's or song's? Frame i is centred at i / frame_rate; resample posteriors of "
        "another hop length onto these frame times (np.interp) before averaging them"
    )


def output_paths(
    files: Sequence[Path], input_root: Path, out_dir: Path, suffix: str, fold_case: bool = True
) -> tuple[dict[Path, Path], list[Path], list[list[Path]]]:
    """Where each input's transcription goes: `out_dir` mirrors `input_root`'s sub-folders, ``<stem><suffix>``.

    Every input gets an output of its own. Inputs that share a stem in one folder (``x.wav`` and ``x.flac``)
    would overwrite each other's output, so they keep their own suffix in the name (``x.wav.lab``); so,
    in turn, does an input whose plain output is such a name (``x.wav.mp3``, a converter's output, would
    write ``x.wav.lab`` too: it gets ``x.wav.mp3.lab``). Those inputs are returned second. With `fold_case`
    (the output folder's file system is case-insensitive, as macOS's and Windows' are: `folds_case`) names
    are compared as that file system compares them: there ``X.lab`` is ``x.lab``.

    Returned third: the groups of inputs that would still share an output (`sharing_one_file`: names that
    differ only in case, on such a file system, or in Unicode form), which no renaming here separates; none
    of them has a target (`one_file_reason` says why, for a message).
    """

    targets = {path: (out_dir / path.relative_to(input_root)).with_suffix(suffix) for path in files}
    keep_suffix: set[Path] = set()
    clashing: list[list[Path]] = []
    while shared := sharing_one_file(targets, fold_case):
        # Each round moves at least one input to its full name, or sets a group aside, so the loop ends; a
        # group left with only full names holds names that differ only in case or in Unicode form.
        for group in shared:
            if all(path in keep_suffix for path in group):
                clashing.append(sorted(group))
                for path in group:
                    del targets[path]
                continue
            for path in group:
                keep_suffix.add(path)
                targets[path] = targets[path].with_name(path.name + suffix)
    renamed = [path for path in files if path in keep_suffix and path in targets]
    return targets, renamed, sorted(clashing)


def sharing_one_file(targets: Mapping[Any, Path], fold_case: bool) -> list[list[Any]]:
    """The groups of keys of `targets` (input or song -> the file to write for it) whose files would be one:
    the same name in Unicode's composed form (macOS's file systems store ``é`` composed and decomposed as
    one name, and training pairs files so), and with `fold_case` (`folds_case` of the output folder) in
    any case. Each group in the order of `targets`; the writer of a group's files would replace one with
    another. Used by predict's outputs and by the ``.lab`` files of evaluations (`shared_lab_files`)."""
    by_name: dict[str, list[Any]] = {}
    for key, target in targets.items():
        name = unicodedata.normalize("NFC", str(target))
        by_name.setdefault(name.casefold() if fold_case else name, []).append(key)
    return [group for group in by_name.values() if len(group) > 1]


def one_file_reason(names: Sequence[str | Path], out_dir: Path) -> str:
    """Why the outputs of `names` (a group of `sharing_one_file`) are not written, for a message."""
    if one_file_kind(names) == "case":
        return (
            f"their outputs would be one file on the case-insensitive file system of {out_dir}, so one would "
            "replace the other; rename one of them"
        )
    return (
        "their names differ only in Unicode form (an accent composed in one, decomposed in the other: shown "
        "escaped), so their outputs would be one file on macOS's file systems (and one song to training, "
        "which pairs names in composed form); rename one of them"
    )


def folds_case(folder: Path) -> bool:
    """Whether the file system that holds `folder` (or, while it does not exist, the nearest folder above
    it, where it will be made) takes names that differ only in case for one file, as macOS's and Windows'
    do by default: probed with a file of a lower-case name, looked up in upper case, and removed at once.
    True (the careful answer) where no file can be made there."""
    existing = folder
    while not existing.is_dir() and existing != existing.parent:
        existing = existing.parent
    try:
        handle, name = tempfile.mkstemp(prefix=".audiotrain-case-probe-", dir=existing)  # (lower case)
    except OSError:
        return True
    try:
        os.close(handle)
        probe = Path(name)
        return probe.with_name(probe.name.upper()).exists()
    finally:
        os.unlink(name)


def annotations_in_the_way(targets: Iterable[Path]) -> list[tuple[Path, Path]]:
    """(target, audio) for each of `targets` whose writing would replace or shadow the chord annotation of
    `audio`.

    Training reads ``x.lab`` / ``x.jams`` beside ``x.wav`` as its annotation (``.lab`` first). So a
    transcription must not replace an existing one there, nor add a ``.lab`` beside an existing
    ``.jams``: either would silently change the ground truth. A new file beside audio with no
    annotation is fine (``predict song.wav -o song.lab``), also beside another song whose name goes on
    after a dot (``song.live.aiff`` with its ``song.live.lab``: a song of its own).

    Names are compared as the scan pairs them (`pairing_key`: the whole name without its suffix, in
    Unicode's composed form, so ``Café.lab`` written decomposed beside ``Café.lab`` composed is refused),
    and casefolded: on a case-insensitive filesystem (macOS's default) ``SONG.lab`` is ``song.lab``, so
    writing it would replace the annotation of ``song.wav``. Each folder is listed once: a listing per
    target made predict on a folder of 2,000 songs spend 40 s (4 million name keys) before its first
    transcription, quadratic in the songs.
    """
    folders: dict[Path, dict[str, list[Path]]] = {}
    blocked = []
    for target in targets:
        if target.parent not in folders:
            folders[target.parent] = _files_by_song(target.parent)
        audio = _in_the_way(target, folders[target.parent].get(_folded_pairing_key(target), []))
        if audio is not None:
            blocked.append((target, audio))
    return blocked


def _files_by_song(folder: Path) -> dict[str, list[Path]]:
    """The files of `folder` by the song they belong to (`_folded_pairing_key`); {} where it is no folder."""
    if not folder.is_dir():
        return {}
    songs: dict[str, list[Path]] = {}
    for path in folder.iterdir():
        if path.is_file():
            songs.setdefault(_folded_pairing_key(path), []).append(path)
    return songs


def _in_the_way(target: Path, siblings: list[Path]) -> Path | None:
    """The audio file of `target`'s song whose annotation writing it would replace or shadow, given the files
    of that song in its folder (`siblings`); None where there is none."""
    audio = sorted(p for p in siblings if p.suffix.lower() in AUDIO_FILE_SUFFIXES)
    if not audio:
        return None
    annotations = [p for p in siblings if p.suffix.lower() in ANNOTATION_SUFFIXES]
    return audio[0] if target.exists() or annotations else None


def _folded_pairing_key(path: Path) -> str:
    """The song `path` belongs to in its folder as the scan pairs files (`pairing_key`), casefolded."""
    return pairing_key(Path(path.name)).name.casefold()


def _what_audio_is(audio: Any) -> str:
    """What `audio` is, for the error that refuses it, with what to do where that is clear."""
    if isinstance(audio, (list, tuple)) and audio and all(isinstance(a, (str, os.PathLike)) for a in audio):
        return f"{type(audio).__name__}: transcribe each file in turn"
    if isinstance(audio, (list, tuple)):
        return f"{type(audio).__name__}: a waveform is a numpy array, np.asarray(audio, dtype=np.float32)"
    kind = type(audio)
    if kind.__module__.startswith("mlx"):  # (mx.array's __name__ is "array" alone)
        return f"{kind.__module__}.{kind.__name__}: pass np.array(audio)"
    return kind.__name__


def _check_peak(audio: np.ndarray) -> None:
    """Refuse a waveform too loud for the features, and warn of one that looks like integer PCM cast to
    float unscaled. Checked before the channels are mixed: finite samples near 3e38 overflowed float32 there
    and were then refused as 'y holds non-finite samples'."""
    # (max and -min, not max(abs): abs made a copy of the whole waveform, a long song's 8 bytes a sample)
    peak = float(max(audio.max(), -audio.min())) if audio.size else 0.0
    if peak > LOUDEST_PEAK:
        raise ValueError(
            f"audio peaks at {peak:.1e}, too loud for the features (their CQT overflows float32): float "
            "audio's full scale is 1.0; scale it into [-1, 1] first"
        )
    if peak > UNSCALED_PCM_PEAK:
        # (one message whatever the peak: a live loop's warnings are shown once, not once per buffer)
        warnings.warn(
            f"audio peaks above {UNSCALED_PCM_PEAK:g} times full scale (float audio is in [-1, 1]): integer "
            "samples cast to float unscaled? divide by 32768 for int16, 2**31 for int32; its labels are not "
            "those of the scaled audio",
            UserWarning,
            stacklevel=2,
        )


def _rotated_back(head: str, probs: np.ndarray, shift: int) -> np.ndarray:
    """A window's posteriors [frames, classes] of `head` for the song heard `shift` semitones up, as the song
    itself has them: a chord heard s semitones up has its root and bass s up (the chord head's 12 roots of
    each chord type follow N and X)."""
    if shift == 0 or head == "chord_type":
        return probs
    if head in ("root", "bass"):
        return np.roll(probs, -shift, axis=1)
    rotated = probs.copy()
    roots = probs[:, 2:].reshape(len(probs), -1, 12)
    rotated[:, 2:] = np.roll(roots, -shift, axis=2).reshape(len(probs), -1)
    return rotated


def silence_note(audio_path: Path) -> str:
    """Why `audio_path`, which `ChordPredictor.posteriors` found to be digital silence, is transcribed as N: a
    silent file (a failed export), or channels that cancel when mixed to mono (one in inverted polarity)."""
    cancelling = cancelling_channels(audio_path)
    if cancelling is not None:
        channels, peak_db = cancelling
        return (
            f"{audio_path} is digital silence once its {channels} channels are mixed to mono, though its "
            f"loudest channel alone peaks at {peak_db:.1f} dBFS (a channel in inverted "
            "polarity?): transcribed as N. To transcribe one channel, extract it first (e.g. sox IN.wav "
            "OUT.wav remix 1)"
        )
    return (
        f"{audio_path} is digital silence (no sample above {SILENCE_PEAK_DBFS:g} dBFS; a failed export?): "
        "transcribed as N"
    )


def taper(length: int) -> np.ndarray:
    """[length] triangular weights, 1 at the centre and 1/length at the ends (never 0)."""
    centre = (length - 1) / 2.0
    return (1.0 - np.abs(np.arange(length) - centre) / (centre + 1.0)).astype(np.float32)


def checkpoint_entries(
    features: ChordFeatureConfig,
    decode: DecodeConfig,
    window_frames: int,
    pitch_shifts: Sequence[int] | None = None,
) -> dict[str, Any]:
    """What a checkpoint stores for `ChordPredictor.from_checkpoint`, besides the weights and model config.

    `pitch_shifts`: the semitone shifts the model was trained on, where known; ``(0,)`` (none) turns the
    default test-time augmentation off for it (`from_checkpoint`)."""
    entries = {
        "features": asdict(features),
        # The feature code's version, besides its settings: a newer audiotrain's model may read features this
        # one computes otherwise from the same settings (`task.stored_settings` refuses it).
        "features_version": FEATURES_VERSION,
        "vocabulary": vocabulary_dict(),
        "decode": asdict(decode),
        "window_frames": int(window_frames),
    }
    if pitch_shifts is not None:
        entries["pitch_shifts"] = [int(shift) for shift in pitch_shifts]
    return entries


def default_tta_shifts(features: ChordFeatureConfig) -> tuple[int, ...]:
    """-k..k semitones, k = `DEFAULT_TTA_SEMITONES` or the features' `max_pitch_shift` if that is smaller
    (a crop can move only as far as the spare bins computed around it reach)."""
    reach = min(DEFAULT_TTA_SEMITONES, features.max_pitch_shift)
    return tuple(range(-reach, reach + 1))


def _load_weights(model: ChordRecognitionModel, file: Path) -> None:
    """The weights of safetensors `file` into `model`, each name and shape checked (a `ChordTask`'s
    checkpoint holds them under ``model.``, beside its other submodules' (`network_entries`); the network's
    own `save_weights` without)."""
    # read_header gives {} for a missing file, which read_tree would report as "0 arrays in the checkpoint".
    if file.is_dir():
        raise IsADirectoryError(
            f"weights file {file} is a folder: give its model.safetensors, or load a run, checkpoint or "
            "export folder with ChordPredictor.from_checkpoint"
        )
    if not file.is_file():
        raise FileNotFoundError(f"weights file {file} does not exist")
    refuse_in_forked_child(f"loading {file}")  # (its mx.eval below would hang there)
    header = {k.removeprefix("model."): v for k, v in network_entries(ckpt.read_header(file)).items()}
    model.update(ckpt.read_tree(file, model.parameters(), "ChordRecognitionModel", header=header))
    # The random key too: the model's initial weights, replaced unevaluated, left their key splits pending
    # in its graph (~40 KB a model: a service loading a checkpoint per request grew without bound).
    mx.eval(model.parameters(), mx.random.state)


def decode_setting(decode: Any, base: DecodeConfig, source: str) -> DecodeConfig:
    """`decode` as a `DecodeConfig`: None gives `base` (the checkpoint's or run's decoding); a dict changes
    the fields it names in `base`, as ``--decode.*`` flags change a checkpoint's (unknown fields named), like
    a recipe config's section given as a dict. Anything else is refused naming `source`: it used to be
    kept and fail at the first song with an AttributeError."""
    if decode is None:
        return base
    if isinstance(decode, DecodeConfig):
        return decode
    if isinstance(decode, Mapping):
        return merge_config(base, dict(decode), source, path="decode.")
    raise TypeError(
        f"{source}: expected a DecodeConfig (or a dict of its fields, e.g. {{'silence_db': 0}}), "
        f"got {type(decode).__name__}"
    )


def check_decodable(config: ChordModelConfig, where: str) -> None:
    """Refuse a model whose chord-type head is not the vocabulary's size: it trains (the targets are the
    vocabulary's), but the decoding reads the vocabulary's types, and failed on the first song."""
    if config.num_chord_types != NUM_CHORD_TYPES:
        raise ValueError(
            f"{where}: model.num_chord_types is {config.num_chord_types}, but the decoding reads the "
            f"{NUM_CHORD_TYPES} chord types of the vocabulary (audiotrain.chords.CHORD_TYPES); a model with "
            "another chord-type head can be trained, not transcribed with"
        )


def _check_model_reads(model: ChordRecognitionModel, features: ChordFeatureConfig, where: str) -> None:
    """Refuse a model whose input widths, chord types or heads do not fit these features and decoding."""
    if model.config.n_bins != features.n_bins or model.config.bass_view_bins != features.bass_view_bins:
        raise ValueError(
            f"the model reads {model.config.n_bins} bins and a bass view of "
            f"{model.config.bass_view_bins} but "
            f"the features have {features.n_bins} and {features.bass_view_bins}"
        )
    check_decodable(model.config, where)
    check_model_heads(model, features.input_bins, where)


class ChordPredictor:
    """A trained chord model with its feature extractor and decoder.

    Args:
        model: the network (set to eval mode here).
        features: how the model's input frames are computed.
        decode: how posteriors become segments.
        window_frames: frames per inference window: the run's ``data.window_frames`` gives the labels its
            evaluation and the ``predict`` command give (`from_checkpoint` and `from_config` take it).
        batch_windows: most windows per forward pass (passes are made equal in size below it).
        tta_shifts: test-time augmentation: semitone shifts whose posteriors are averaged, e.g. (-1, 0, 1);
            (0,) is none; default (None): `default_tta_shifts` of the features (`from_checkpoint`: none for
            a model trained without pitch shifts, as the guide's clip Trainer's). A sequence: ``--tta k``'s
            -k..k is ``tuple(range(-k, k + 1))`` (one number or a string is refused).
        window_hop: frames from one window's start to the next; default (None): three quarters of a window.
    """

    def __init__(
        self,
        model: ChordRecognitionModel,
        features: ChordFeatureConfig,
        decode: DecodeConfig | None = None,
        window_frames: int = 96,
        batch_windows: int = 8,
        tta_shifts: Sequence[int] | None = None,
        window_hop: int | None = None,
    ):
        if window_frames < 2 or batch_windows < 1:
            raise ValueError(
                f"window_frames must be >= 2 and batch_windows >= 1, got {window_frames}, {batch_windows}"
            )
        window_hop = max(1, 3 * int(window_frames) // 4) if window_hop is None else int(window_hop)
        if not 1 <= window_hop <= window_frames:
            raise ValueError(f"window_hop must be 1 to window_frames = {window_frames}, got {window_hop}")
        self.features = features
        self._set_model(model, "ChordPredictor(model=...)")
        #: The checkpoint folder this predictor was loaded from (`from_checkpoint`), else None: what it was
        #: trained on is recorded there (``evaluate`` names the scored songs it trained on).
        self.checkpoint: Path | None = None
        #: The decoding settings (`DecodeConfig` fields) that checkpoint does not hold, which take today's
        #: defaults: it was written by an older audiotrain, before they were added. () for any other.
        self.decode_from_defaults: tuple[str, ...] = ()
        self.decode = decode_setting(decode, DecodeConfig(), "ChordPredictor(decode=...)")
        self.window_frames = int(window_frames)
        self.window_hop = window_hop
        self.batch_windows = int(batch_windows)
        shifts = (
            default_tta_shifts(features)
            if tta_shifts is None
            else whole_semitones(tta_shifts, "ChordPredictor tta_shifts")
        )
        self.tta_shifts = shifts or (0,)
        # Checked once here, not per song after its CQT: a crop moves only as far as the spare bins reach.
        if features.kind == "mel" and self.tta_shifts != (0,):
            # (its max_pitch_shift is 0: 'needs more spare bins' sent the user to raise what mel cannot have)
            raise ValueError(
                f"ChordPredictor tta_shifts {self.tta_shifts}: features.kind mel, whose bands are not a "
                "semitone grid to shift along; test-time pitch shifting is for CQT features only (pass "
                "tta_shifts=(0,))"
            )
        for shift in self.tta_shifts:
            if abs(shift) > features.max_pitch_shift:
                raise ValueError(
                    f"tta shift {shift} needs more spare bins than features.max_pitch_shift "
                    f"{features.max_pitch_shift} semitones"
                )
        # MLX traces a compiled function again in each new thread, and while it traces, the model's weights
        # are its stand-ins: a request thread calling at that time took them ("eval an array without a
        # primitive"). Calls are one at a time; the evaluation, most of the work, is not held.
        self._forward_lock = threading.Lock()
        note_mlx_evaluated()  # (its weights are: a process forked from now on cannot run it)

    @property
    def model(self) -> ChordRecognitionModel:
        """The network. Another one assigned (``predictor.model = task.model``: a model in training, scored
        by a callback) is checked against the features and compiled anew (the compiled pass had kept
        transcribing with the first model's weights); it is run in eval mode, its own modes left as they are
        (a model in training stays in training: the Trainer keeps the modes it is given)."""
        return self._model

    @model.setter
    def model(self, model: ChordRecognitionModel) -> None:
        self._set_model(model, "ChordPredictor.model")

    def _set_model(self, model: ChordRecognitionModel, where: str) -> None:
        _check_model_reads(model, self.features, where)
        self._model = model
        if where.startswith("ChordPredictor("):
            model.eval()  # (a model given to the constructor is the predictor's, for inference)
        # Input shapes [size <= batch_windows, window_frames, input_bins]: each compiled once, reused for
        # every song. The weights are declared as inputs so that later updates of the model are seen.
        self._forward = mx.compile(self._probabilities, inputs=[model.state])

    def __repr__(self) -> str:
        """Where it was loaded from, its windows, test-time shifts and decoding: ``ChordPredictor(checkpoint=
        'runs/x/checkpoints/best', window_frames=96, window_hop=72, batch_windows=8, tta_shifts=(0,),
        decode='viterbi')``."""
        from audiotrain._arguments import settings_repr

        settings = {"checkpoint": str(self.checkpoint) if self.checkpoint else None}
        settings.update(window_frames=self.window_frames, window_hop=self.window_hop)
        settings.update(batch_windows=self.batch_windows, tta_shifts=tuple(self.tta_shifts))
        return settings_repr("ChordPredictor", {**settings, "decode": self.decode.method})

    # ---- loading --------------------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        decode: DecodeConfig | Mapping[str, Any] | None = None,
        model: ChordRecognitionModel | None = None,
        **kwargs: Any,
    ) -> ChordPredictor:
        """Load a checkpoint folder (or a run folder) written by the chord recipe. A read that a running
        fit's save tore (it replaced the folder meanwhile) is made again (`ckpt.read_unreplaced`).

        `decode` replaces the checkpoint's decoding settings; a dict (``{"silence_db": 0}``) changes only
        the fields it names, as ``predict --decode.silence_db 0`` does.

        `model` is the network the weights load into, for a checkpoint of a model of your own (a
        `ChordRecognitionModel` subclass trained with the guide's `Trainer`; the checkpoint names its class,
        and holds no code); default: the recipe's model built from the checkpoint's settings.

        Given a run folder, the checkpoint it loads (``checkpoints/best``, else ``checkpoints/last``) is its
        `checkpoint`; where ``last`` stands in for a ``best`` the run's validation chose (deleted, or
        damaged), a `StandInCheckpointWarning` says so, as ``predict``'s ``using ...`` line does."""
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(
                f"ChordPredictor.from_checkpoint(path=...): expected a checkpoint, run or export folder "
                f"(str or Path), got {type(path).__name__}"
            )
        predictor = ckpt.read_unreplaced(
            path, resolve_model_checkpoint, lambda folder: cls._from_folder(folder, decode, model, **kwargs)
        )
        if predictor.checkpoint.name == "last":  # (a best loaded reads nothing more)
            note = loaded_checkpoint_note(Path(path), predictor.checkpoint)
            if note is not None and NOT_BEST in note:  # (another model than the user expects)
                warnings.warn(note, StandInCheckpointWarning, stacklevel=2)
        return predictor

    @classmethod
    def _from_folder(cls, folder: Path, decode: Any, own_model: Any = None, **kwargs: Any) -> ChordPredictor:
        state = ckpt.read_model_state(folder)
        stored = stored_settings(folder, state)  # each part checked, a bad one named with its file
        if stored is None or "vocabulary" not in stored:
            what = "no chord model settings" if stored is None else "no chord vocabulary"
            raise not_a_chord_checkpoint(folder, state, what, CHECKPOINT_KEY)
        if own_model is None:
            refuse_own_model_checkpoint(folder, stored)
        elif not isinstance(own_model, ChordRecognitionModel):
            raise TypeError(
                "ChordPredictor.from_checkpoint(model=...): expected a ChordRecognitionModel (or a subclass "
                f"of your own), got {type(own_model).__name__}"
            )
        try:
            model = (
                own_model
                if own_model is not None
                else ChordRecognitionModel(ChordModelConfig.from_dict(stored["model_config"]))
            )
            features = ChordFeatureConfig.from_stored(stored["features"])
            # (A DecodeConfig given replaces the stored settings whole: they need not be read.)
            stored_decode = (
                decode if isinstance(decode, DecodeConfig) else DecodeConfig(**stored.get("decode", {}))
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ckpt.CheckpointError(
                f"{folder / ckpt.STATE_FILE}: the stored chord model/feature/decoding settings are incomplete or "
                f"do not fit this version of audiotrain ({type(err).__name__}: {err})"
            ) from None
        check_decodable(model.config, str(folder))
        if kwargs.get("tta_shifts") is None and stored.get("pitch_shifts") == [0]:
            # A model trained in one key only (the guide's clip Trainer) names shifted audio wrongly: the
            # default -2..2 averaged those guesses in, and an A:min clip it named right came out C:maj/3.
            kwargs["tta_shifts"] = (0,)
        decoding = decode_setting(decode, stored_decode, "ChordPredictor.from_checkpoint(decode=...)")
        try:
            _load_weights(model, folder / ckpt.MODEL_FILE)
        except ckpt.CheckpointError as err:
            if own_model is None:
                raise
            trained = stored.get(MODEL_CLASS_KEY) or "the recipe's ChordRecognitionModel"
            given = model_class_name(own_model) or "the recipe's ChordRecognitionModel"
            raise ckpt.CheckpointError(f"{err} (its weights are of {trained}; model= is {given})") from None
        kwargs.setdefault("window_frames", int(stored.get("window_frames", 96)))
        predictor = cls(model, features, decoding, **kwargs)
        predictor.checkpoint = folder
        if not isinstance(decode, DecodeConfig):  # (a dict given sets the fields it names)
            held = {**stored.get("decode", {}), **(decode or {})}
            predictor.decode_from_defaults = tuple(f.name for f in fields(DecodeConfig) if f.name not in held)
        return predictor

    @classmethod
    def from_config(
        cls,
        config: TrainingConfig | str | Path,
        weights: str | Path,
        decode: DecodeConfig | Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> ChordPredictor:
        """A predictor from a run's settings and a weights file: `config` is its `TrainingConfig` or a file
        holding it (the run's config.json), `weights` a safetensors file of the network's weights (its
        `save_weights`, or a checkpoint's model.safetensors). The model, features, decoding and window
        length (``data.window_frames``) are the run's, so the labels are those of `from_checkpoint` and of
        the ``predict`` command; keywords override them as in `__init__`. A record of an older audiotrain is
        read as ``--config`` reads it: the settings it lacks whose absence has a known meaning as that
        version ran (no bass view, no chord head: `older_record_meanings`), so its weights load."""
        if not isinstance(config, TrainingConfig):
            file = config
            config = load_config_file(TrainingConfig(), file)
            config, _ = read_older_record(config, file, (), older_record_meanings())
        model = ChordRecognitionModel(config.model)
        _load_weights(model, Path(weights))
        kwargs.setdefault("window_frames", config.data.window_frames)
        decode = decode_setting(decode, config.decode, "ChordPredictor.from_config(decode=...)")
        return cls(model, config.features, decode, **kwargs)

    # ---- inference ------------------------------------------------------------------------------------
    @property
    def heads(self) -> tuple[str, ...]:
        """The model's outputs whose posteriors `posteriors` returns."""
        return ("chord_type", "root", "bass") + (("chord",) if self.model.config.chord_head else ())

    def _probabilities(self, frames: mx.array, mask: mx.array) -> tuple[mx.array, ...]:
        out = self.model(frames, mask)
        return tuple(fast_math.softmax(out[k]) for k in self.heads)

    def posteriors_from_features(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """Frame posteriors of one song from its model-input frames [frames, input_bins]."""
        return self._windowed_posteriors([features], [0])

    def _windowed_posteriors(
        self, views: Sequence[np.ndarray], shifts: Sequence[int]
    ) -> dict[str, np.ndarray]:
        """Frame posteriors of one song, averaged over `views` (its model-input frames [frames, input_bins],
        each pitch-shifted by `shifts` semitones: the root, bass and chord columns of each are rotated back),
        their windows batched together so that few forward passes are padded.

        Each window's posteriors go into one running sum as they come: a sum per view, averaged at the end,
        held --tta 6's 13 views of an hour's song at once (2.7 GB against 1.1 GB for one view)."""
        refuse_in_forked_child("ChordPredictor")
        views = [np.asarray(v, dtype=np.float32) for v in views]
        for v in views:
            if v.ndim != 2 or v.shape[1] != self.features.input_bins:
                raise ValueError(f"features must be [frames, {self.features.input_bins}], got {v.shape}")
            # (Attention spreads one NaN frame over its whole window: said here, by frame, not as NaN output.)
            bad = np.flatnonzero(~np.isfinite(v).all(axis=1))
            if len(bad):
                raise ValueError(
                    f"features hold {len(bad)} frames with NaN or Inf (the first: frame {bad[0]}); every "
                    "window that reaches them would give NaN posteriors"
                )
        if len({len(v) for v in views}) != 1:
            raise ValueError(f"the views of one song have one length, got {[len(v) for v in views]}")
        n, w = len(views[0]), self.window_frames
        starts = list(range(0, max(n - w, 0) + 1, self.window_hop))
        if starts[-1] + w < n:
            starts.append(n - w)
        windows = [(index, s) for index in range(len(views)) for s in starts]  # (view, first frame)
        weight = taper(w)
        widths = {"chord_type": self.model.config.num_chord_types, "root": 12, "bass": 12}
        widths["chord"] = joint_chord_classes(self.model.config.num_chord_types)
        sums = {key: np.zeros((n, widths[key]), np.float32) for key in self.heads}
        total = np.zeros(n, np.float32)  # (each view's windows weigh the same: one view's total)
        for s in starts:
            real = min(w, n - s)
            total[s : s + real] += weight[:real]
        # Passes of equal size, at most batch_windows each: 25 windows run as 4 x 7 rather than 4 x 8 with
        # 7 empty rows. Each size compiles once (at most batch_windows shapes).
        passes = -(-len(windows) // self.batch_windows)
        size = -(-len(windows) // passes)
        for first in range(0, len(windows), size):
            group = windows[first : first + size]
            frames = np.zeros((size, w, self.features.input_bins), np.float32)
            mask = np.zeros((size, w), np.float32)
            for j, (index, s) in enumerate(group):
                real = min(w, n - s)
                frames[j, :real] = views[index][s : s + real]
                mask[j, :real] = 1.0
            # A service's request thread that ran the compiled forward pass holds MLX streams: released as
            # it ends, or MLX aborts the process at exit (status 134; `audiotrain._thread_streams`).
            clear_streams_when_thread_ends()
            with self._forward_lock, eval_mode(self._model):
                outputs = self._forward(mx.array(frames), mx.array(mask))
            # A Ctrl-C in a terminal also reaches the C++ compiler MLX's CPU backend runs for new shapes: the
            # kernel it left is compiled again, so that predict stops after this file as asked.
            eval_compiling_again(mx.eval, outputs)
            probs = [np.array(p) for p in outputs]
            for j, (index, s) in enumerate(group):
                real = min(w, n - s)
                for key, p in zip(self.heads, probs):
                    window = _rotated_back(key, p[j, :real], shifts[index])
                    sums[key][s : s + real] += window * weight[:real, None]
        scale = total[:, None] * len(views)
        return {key: value / scale for key, value in sums.items()}

    def waveform(self, audio: str | Path | np.ndarray, sample_rate: float | None = None) -> np.ndarray:
        """Mono audio at the features' rate, as the model hears it: `audio` is a file (read with
        `ChordFeatureConfig.load`) or a waveform already in memory, a numpy array [samples] or
        [channels, samples] (librosa's layout; channels are averaged) at `sample_rate` Hz, which it then
        needs. An array goes the way a file's samples go after reading: mixed to mono, then resampled. An
        array of more channels than samples is refused as channels-last (soundfile's [samples, channels])."""
        if isinstance(audio, (str, os.PathLike)):
            if sample_rate is not None:
                raise TypeError(
                    f"sample_rate is for a waveform given as an array; the file {audio} has its own "
                    f"(got sample_rate={sample_rate!r})"
                )
            return self.features.load(audio)
        if not isinstance(audio, np.ndarray):
            raise TypeError(
                f"audio: expected an audio file (str or Path) or a numpy waveform with sample_rate=, got "
                f"{_what_audio_is(audio)}"
            )
        if sample_rate is None:
            raise TypeError(
                "audio is an array: give its sample_rate= in Hz (e.g. the rate librosa.load returned)"
            )
        rate = check_sample_rate(sample_rate, "sample_rate")  # (its keyword here: not librosa's sr)
        # As a file's rate (`audiotrain.audio.load`): 22.05 (kHz for Hz) made 3 s a 50-minute song, 1 Hz
        # 100000 samples a 9 GB resampling (std::bad_alloc, or the OOM killer).
        if rate < MIN_SAMPLE_RATE:
            raise ValueError(
                f"sample_rate {rate:g} Hz is below {MIN_SAMPLE_RATE} Hz, the lowest a file is read at: the "
                "rate is in Hz, not kHz (e.g. 22050)"
            )
        y = as_float_signal(audio, "numpy", name="audio")  # integer PCM, NaN, channels-last: refused, named
        if y.ndim > 2:
            raise ValueError(f"audio must be [samples] or [channels, samples], got shape {y.shape}")
        # One song never has more channels than samples. The features' own check names channels-last audio
        # only up to 8 channels (a batch of clips is [batch, samples] there): 16 channels of soundfile's
        # [samples, channels] were "too short: 16 samples", 64 a 2.9 ms song.
        if y.ndim == 2 and y.shape[0] > y.shape[1]:
            raise ValueError(
                f"audio has shape {y.shape}: more channels than samples: channels-last audio? audio is "
                f"[samples] or [channels, samples]; pass audio.T (soundfile.read gives [samples, channels])"
            )
        _check_peak(y)
        y = np.ascontiguousarray(y.mean(axis=0) if y.ndim == 2 else y, dtype=np.float32)
        given = len(y)
        y = resample(y, rate, self.features.sr)
        if len(y) < self.features.min_samples:
            raise ValueError(f"audio is too short: {self.features.too_short(given, rate)}")
        return y

    def song_features(
        self, audio: str | Path | np.ndarray, sample_rate: float | None = None
    ) -> tuple[np.ndarray, float]:
        """Unshifted model-input frames [frames, input_bins] of a song (a file, or an array at
        `sample_rate`: `waveform`), and its duration in seconds."""
        y = self.waveform(audio, sample_rate)
        return self.features.crop(self.features.compute(y)), len(y) / self.features.sr

    def posteriors(self, audio: str | Path | np.ndarray, sample_rate: float | None = None) -> SongPosteriors:
        """Frame posteriors of a song (a file, or an array at `sample_rate`: `waveform`); with `tta_shifts`
        (test-time augmentation), averaged over the song pitch-shifted by each number of semitones (the CQT
        crop moved by that many semitones, the root and bass posteriors rotated back). A file whose features
        or posteriors do not fit in memory is an `AudioError` ("too_long") naming it, and the limit that
        applies where a process's is lower than the machine's (`training_memory_limit`: a ulimit -v or
        cgroup's), as a file whose samples do not is, so that `predict` skips it and goes on (a raw
        MemoryError ended it)."""
        try:
            return self._posteriors(audio, sample_rate)
        except MemoryError:
            if isinstance(audio, np.ndarray):
                raise
            # A process limit (ulimit -v, a cgroup's) fails a 6 s song too: "cut it into shorter files" alone
            # sent the user to cut a song that was not long, so the limit that applies is named.
            # (what an rlimit leaves, measured after the failure, says little: its size is named instead)
            limit, what = training_memory_limit()
            detail = "its features and posteriors did not fit in memory"
            if what == MLX_MEMORY_LIMIT:
                # No process limit below the machine's memory: the song is long, and MLX's limit (the
                # device's memory) is none a user raises.
                raise AudioError(audio, "too_long", f"{detail}; cut it into shorter files") from None
            under = (
                what.removeprefix("left under ")
                if what.startswith("left under ")
                else f"the {limit / 1e9:.1f} GB {what}"
            )
            raise AudioError(
                audio, "too_long", f"{detail} (under {under}); raise that limit, or cut it into shorter files"
            ) from None

    def _posteriors(self, audio: str | Path | np.ndarray, sample_rate: float | None) -> SongPosteriors:
        y = self.waveform(audio, sample_rate)
        full = self.features.compute(y)
        if is_digital_silence(y):  # no chord plays, though the model would name one (B:1 on a failed export)
            frames = self.features.crop(full).shape[0]
            level_db = self.features.frame_levels_db(y, frames)
            duration = len(y) / self.features.sr
            return SongPosteriors(
                self._silence(frames), self.features.frame_rate, duration, level_db, silent=True
            )
        views = [self.features.crop(full, shift) for shift in self.tta_shifts]
        probs = self._windowed_posteriors(views, self.tta_shifts)
        self._check_finite(probs, audio)
        level_db = self.features.frame_levels_db(y, len(probs["chord_type"]))
        return SongPosteriors(probs, self.features.frame_rate, len(y) / self.features.sr, level_db)

    def _check_finite(self, probs: Mapping[str, np.ndarray], audio: str | Path | np.ndarray) -> None:
        """Refuse posteriors holding NaN or inf, naming the song and the model. Its features are finite (the
        audio was checked), so the weights overflow: a training that diverged (a sweep's trial at too high a
        learning rate) leaves such weights, finite each, as the non-finite guard skips only NaN updates.
        Decoded, they had ended in "type_probs holds 2784 non-finite values", naming neither."""
        bad = sum(int(np.sum(~np.isfinite(p))) for p in probs.values())
        if not bad:
            return
        song = str(audio) if isinstance(audio, (str, os.PathLike)) else "the waveform given"
        model = f"the model of {self.checkpoint}" if self.checkpoint else "this model"
        raise ValueError(
            f"{model} gives {bad} NaN or infinite posteriors for {song}: its weights overflow, as those of a "
            "training that diverged do (its history.json's train_loss null, NaN); train it again with a "
            "lower learning_rate (--learning_rate)"
        )

    def _silence(self, frames: int) -> dict[str, np.ndarray]:
        """Posteriors of `frames` frames of silence: N with certainty (root and bass, which N has none of,
        uniform)."""
        probs = {
            "chord_type": np.zeros((frames, self.model.config.num_chord_types), np.float32),
            "root": np.full((frames, 12), 1 / 12, np.float32),
            "bass": np.full((frames, 12), 1 / 12, np.float32),
        }
        probs["chord_type"][:, N_INDEX] = 1.0
        if "chord" in self.heads:
            probs["chord"] = np.zeros(
                (frames, joint_chord_classes(self.model.config.num_chord_types)), np.float32
            )
            probs["chord"][:, N_INDEX] = 1.0
        return probs

    def segments(self, posteriors: SongPosteriors) -> list[ChordSegment]:
        """Decoded chord segments of a song's posteriors (this predictor's `posteriors`, or an ensemble's
        average of several models' on one frame grid: see `SongPosteriors`)."""
        p = posteriors.probs
        check_frames_span_song(len(p["chord_type"]), posteriors.frame_rate, posteriors.duration)
        return decode_posteriors(
            p["chord_type"],
            p["root"],
            p["bass"],
            posteriors.frame_rate,
            self.decode,
            duration=posteriors.duration,
            chord_probs=p.get("chord"),
            level_db=posteriors.level_db,
        )

    def transcribe(
        self, audio: str | Path | np.ndarray, sample_rate: float | None = None
    ) -> list[ChordSegment]:
        """Chord segments of a song, with labels `mir_eval` parses: `audio` is a file, or a waveform in
        memory (numpy [samples] or [channels, samples]) at `sample_rate` Hz, e.g. what ``librosa.load``
        or ``soundfile.read(...).T`` returns; it is mixed to mono and resampled as a file is."""
        return self.segments(self.posteriors(audio, sample_rate))
