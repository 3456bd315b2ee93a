"""Chord recognition on held-out demo songs of three styles: the trained model next to a chroma-template baseline.

Trains the recipe's benchmark config (`audiotrain.recipes.chords.config.benchmark_config`) on the demo
training songs (`data.demo_styles`: a third each of the training, studio and patches styles since the ninth
round; two parts training style to one part studio in the eighth; before it, the training style alone) and
scores three held-out sets made with another seed (other keys, tempi, progressions, voicings): one in the
training style, and two in styles written separately and never trained on, which measure generalisation beyond
the generators: the independent style (`audiotrain.datasets.chord_demo_independent`: other progressions,
voicings, timbres, bass lines, drums and tunings) and, since the nineteenth round, the band style
(`audiotrain.datasets.chord_demo_band`: six genres of a small band, written without reading any other style,
whose labelled bass is the lowest note sounding at the chord's start). Prints the ``mir_eval.chord`` scores
(pooled over time, %) of the model with joint (chord, bass) decoding, of the same posteriors decoded with
separate chord and bass paths, and of the baseline measured in the same run (for a style of more than 16
songs, also the model's on its first 16, the yardstick's songs, and on the rest apart), and the transcription
speed of `predict` (seconds of audio per second: audio loading + CQT + model + Viterbi). Since the eleventh
round the model's posteriors are averaged over the song shifted by -2..+2 semitones (`predict`'s default;
`--tta 0` scores as the rounds before did) and its decoding places each segment's bass at its onset and its
boundaries between frames (`DecodeConfig`'s defaults); since the sixteenth round, frames more than 15 dB under
the song's median frame level are N (`silence_db`).

Baseline: ``librosa.feature.chroma_cqt`` + the 24 major/minor triad templates (cosine similarity) + a
no-chord decision on frame energy + a median filter over the template scores (the classic template
matcher, e.g. Fujishima 1999 / Oudre et al. 2009). It can only say N, maj and min in root position.

Notes oracle: the reference itself, except that where other chords of the vocabulary sound the same notes
over the same bass (`audiotrain.chords.vocabulary.same_sounding_chords`: ``A:min7/C`` and ``C:maj6``) it names
the one the training generator draws most often. It is the ceiling of a model that hears every note and the
bass exactly and knows only the training prior: what is lost to labels that follow a chord's function rather
than its sound.

    python benchmarks/chords.py [--quick] [--checkpoint CKPT] [--test_songs N] [--independent_songs N]
                                [--band_songs N] [--seed S] [--demo_songs N] [--run_dir DIR]
                                [--cache_dir DIR] [--tta N] [--errors N] [--set KEY=VALUE ...] [--overwrite]

`--quick` trains the default (README) config instead of the longer benchmark config; `--checkpoint`
scores a trained checkpoint instead of training (rendering only the held-out songs; an earlier evaluation
in `--run_dir` is refused unless `--overwrite`). The script trains as the recipe's command does: in one
process per core on a multi-core CPU with MPI (the same model to float32 rounding, faster; `--set
processes=1` trains in this process). The rounds from the twelfth on trained with the recipe's command,
``python -m audiotrain.recipes.chords --seed S --run_dir R``, and then ran this script with ``--quick
--checkpoint R/checkpoints/best --seed S``.

Where the figures stand (six seeds each, trained with the recipe's command in two processes on a 2-core Intel
Xeon, scored with this script's defaults; root, majmin, majmin_inv, sevenths, sevenths_inv, tetrads, pooled %
of time; "independent 16" is the yardstick's songs, "48" the next 48 of that style; "band 16" the band style's
yardstick songs, "32" those and the next 16 together):

    config                            set             six-seed means
    default (224 songs x 38 epochs)   training, 16    92.1 96.4 91.5 97.8 93.1 91.0
                                      independent 16  93.8 94.3 92.1 91.1 88.9 89.2
                                      independent 48  92.1 94.0 91.2 93.1 90.4 87.9
                                      band 16         88.2 89.0 78.5 89.9 79.6 87.0
                                      band 32         91.4 92.3 83.1 91.7 82.7 89.2
    benchmark_config (1024 x 40)      training, 16    92.9 96.6 93.3 98.8 95.4 92.8
                                      independent 16  95.2 95.1 92.6 92.4 89.8 91.2
                                      independent 48  93.4 94.3 92.0 94.6 92.2 90.4
                                      band 16         90.3 90.7 81.9 92.1 83.5 89.7
                                      band 32         93.1 93.6 85.2 94.1 86.2 92.3

Against issue 23's targets on the independent style (majmin >= 95, sevenths >= 90, tetrads >= 88,
majmin_inv and sevenths_inv within 1 point of majmin and sevenths): majmin is met by `benchmark_config` on the
yardstick's 16 songs only (94.5 over all 64), sevenths and tetrads by both configs (but for the default's
tetrads on the 48 songs, 87.9), and the _inv gaps are 2.2-2.8 points. On the band style the majmin_inv gap is
10.4 points for the default and 8.8 for `benchmark_config` (16 songs; 9.2 and 8.4 over 32): the bass the model
hears does not carry over to other generators, and more songs with more steps narrow the gap most (eighteenth
to twentieth rounds).
Every setting tried on the way, kept or not, with its figures and what it says, is in
`benchmarks/chords_rounds.md`, round by round (the "Nth round" that comments and the README cite).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import audiotrain  # noqa: F401  (loads OpenBLAS before mlx.core)
from audiotrain._text import listed, plural
from audiotrain.audio import load
from audiotrain.chords.decode import DecodeConfig, decode_posteriors, frames_to_segments, median_smooth
from audiotrain.chords.lab import ChordSegment, read_annotation
from audiotrain.chords.vocabulary import (
    CHORD_TYPES,
    IGNORE_INDEX,
    N_INDEX,
    decode_label,
    encode_label,
    same_sounding_chords,
)
from audiotrain.datasets.chord_demo import TYPE_WEIGHTS
from audiotrain.distributed.local import plan_local_processes, run_local_job
from audiotrain.metrics.chord_errors import costliest_errors, format_errors
from audiotrain.metrics.chord_scores import (
    INTERVAL_CONFIDENCE,
    MAX_REFERENCE_OVERHANG_S,
    ChordScores,
    difference_interval,
    score_songs,
    trim_reference,
)
from audiotrain.recipes._run import clear_run_outputs
from audiotrain.recipes.chords import run_training
from audiotrain.recipes.chords.config import TrainingConfig, benchmark_config
from audiotrain.recipes.chords.data import demo_splits, demo_test_songs
from audiotrain.recipes.chords.evaluate import evaluate_songs, evaluation_outputs, format_table
from audiotrain.recipes.chords.predict import ChordPredictor
from audiotrain.recipes.chords.train import check_output_folders
from audiotrain.recipes.config_cli import USER_ERRORS, _nest, merge_config

import librosa
import numpy as np
import yaml

MAJ, MIN = CHORD_TYPES.index("maj"), CHORD_TYPES.index("min")
BENCHMARK_METRICS = ("root", "majmin", "majmin_inv", "sevenths", "sevenths_inv", "tetrads")
#: The held-out sets, each scored into ``<run_dir>/evaluation/<folder>``: (folder, title, demo style).
HELD_OUT_SETS = (
    ("train_style", "held-out songs, training style", "train"),
    ("independent_style", "held-out songs, independent style", "independent"),
    ("band_style", "held-out songs, band style", "band"),
)


def parse_overrides(items: list[str]) -> dict:
    """``["num_epochs=30", "data.eq_db=6"]`` as the nested settings `merge_config` takes (values read as YAML)."""
    flat = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE, e.g. --set num_epochs=30")
        flat[key.strip()] = yaml.safe_load(value)
    return _nest(flat)


class ChromaTemplateBaseline:
    """Chroma + 24 triad templates + median filter; see the module docstring."""

    def __init__(
        self, sr: int = 22050, hop_length: int = 2048, median_frames: int = 9, n_threshold: float = 0.05
    ):
        self.sr, self.hop_length, self.median_frames, self.n_threshold = (
            sr,
            hop_length,
            median_frames,
            n_threshold,
        )
        templates = []
        for quality, third in ((MAJ, 4), (MIN, 3)):
            for root in range(12):
                t = np.zeros(12)
                t[[root, (root + third) % 12, (root + 7) % 12]] = 1.0
                templates.append((quality, root, t / np.linalg.norm(t)))
        self.labels = [(q, r) for q, r, _ in templates]
        self.matrix = np.stack([t for _, _, t in templates])  # [24, 12]

    def warm_up(self, path: Path) -> None:
        """One untimed transcription: the first ``chroma_cqt`` of a process JIT-compiles librosa's numba
        kernels (about 10 s, more than a set of songs takes), which is no part of the baseline's speed."""
        self.transcribe(path)

    def transcribe(self, path: Path):
        y, sr = load(path, sr=self.sr)
        chroma = librosa.feature.chroma_cqt(
            y=y, sr=sr, hop_length=self.hop_length
        )  # [12, frames], max-normalised
        energy = librosa.feature.rms(y=y, frame_length=2 * self.hop_length, hop_length=self.hop_length)[0]
        n = min(chroma.shape[1], len(energy))
        chroma, energy = chroma[:, :n], energy[:n]
        unit = chroma / np.maximum(np.linalg.norm(chroma, axis=0, keepdims=True), 1e-9)
        scores = median_smooth((self.matrix @ unit).T, self.median_frames)  # [frames, 24]
        best = np.argmax(scores, axis=1)
        silent = (
            median_smooth(
                (energy < self.n_threshold * energy.max())[:, None].astype(float), self.median_frames
            )[:, 0]
            > 0.5
        )
        chord_type = np.array([self.labels[i][0] for i in best])
        root = np.array([self.labels[i][1] for i in best])
        chord_type[silent] = N_INDEX
        root[silent] = IGNORE_INDEX
        return frames_to_segments(chord_type, root, root.copy(), sr / self.hop_length, duration=len(y) / sr)


def score_baseline(baseline: ChromaTemplateBaseline, songs) -> tuple[ChordScores, float]:
    pairs, audio, start = {}, 0.0, time.perf_counter()
    for song in songs:
        estimate = baseline.transcribe(song.audio_path)
        reference = read_annotation(song.annotation_path)
        pairs[song.name] = (reference, estimate)
        audio += reference[-1].end
    return score_songs(pairs), audio / (time.perf_counter() - start)


def score_notes_oracle(songs) -> ChordScores:
    """Scores of a listener who hears each reference chord's notes and bass exactly and, where other chords
    sound the same (`same_sounding_chords`), names the one the training generator draws most often.

    The ceiling of a model trained on the demo's prior: what it loses to labels that follow a chord's function
    rather than its sound (``A:min7/C`` written where ``C:maj6`` sounds the same).
    """
    pairs = {}
    for song in songs:
        reference = read_annotation(song.annotation_path)
        named = []
        for segment in reference:
            readings = same_sounding_chords(encode_label(segment.label))
            best = max(readings, key=lambda c: TYPE_WEIGHTS.get(CHORD_TYPES[c.chord_type], 0.0))
            label = (
                segment.label if len(readings) == 1 else decode_label(best.chord_type, best.root, best.bass)
            )
            named.append(ChordSegment(segment.start, segment.end, label))
        pairs[song.name] = (reference, named)
    return score_songs(pairs)


#: The held-out songs of a style that the rounds' figures are first given on (`benchmarks/chords_rounds.md`):
#: the first 16; a longer set's other songs are "the next N" of that style.
YARDSTICK_SONGS = 16


def yardstick_and_rest(pairs: dict, songs) -> dict[str, ChordScores]:
    """The model's scores on the first `YARDSTICK_SONGS` of `songs` and on the others, apart (`pairs`: the
    (reference, estimate) of each song by name, as `decode_songs` gives one decoding's)."""
    names = [song.name for song in songs]
    first, rest = names[:YARDSTICK_SONGS], names[YARDSTICK_SONGS:]
    return {
        f"model, first {len(first)}": score_songs({name: pairs[name] for name in first}),
        f"model, next {len(rest)}": score_songs({name: pairs[name] for name in rest}),
    }


def decode_songs(
    predictor: ChordPredictor, songs, decodings: dict[str, DecodeConfig]
) -> dict[str, dict[str, tuple[list[ChordSegment], list[ChordSegment]]]]:
    """(reference, estimate) of every song for each decoding of the same posteriors (computed once per
    song): ``pairs[decoding][song]``."""
    pairs = {name: {} for name in decodings}
    for song in songs:
        post = predictor.posteriors(song.audio_path)
        reference = trim_reference(
            read_annotation(song.annotation_path), post.duration, MAX_REFERENCE_OVERHANG_S
        )[0]
        p = post.probs
        for name, decode in decodings.items():
            estimate = decode_posteriors(
                p["chord_type"],
                p["root"],
                p["bass"],
                post.frame_rate,
                decode,
                post.duration,
                p.get("chord"),
                post.level_db,
            )
            pairs[name][song.name] = (reference, estimate)
    return pairs


def with_count(
    parser: argparse.ArgumentParser, data, flag: str, value: int | None, field: str = "demo_test_songs"
):
    """`data` with `field` set to `flag`'s `value` (None: as it is); a value the setting refuses (0, -1, too
    many) is `flag`'s one-line error, not a traceback naming the internal field only."""
    if value is None:
        return data
    try:
        return replace(data, **{field: value})
    except ValueError as error:
        parser.error(f"{flag} {value}: {error}")


def load_predictor(checkpoint: Path, tta: int | None) -> ChordPredictor:
    """The predictor of `checkpoint` with ``--tta`` (None: its default), as the recipe's ``evaluate`` loads
    it; a checkpoint that cannot be read, or a --tta beyond its features' reach, is a one-line error."""
    try:
        predictor = ChordPredictor.from_checkpoint(checkpoint)
    except USER_ERRORS as error:
        raise SystemExit(f"error: --checkpoint {checkpoint}: {error}") from None
    reach = predictor.features.max_pitch_shift
    if tta is not None and tta > reach:
        raise SystemExit(
            f"error: --tta {tta}: {checkpoint} was trained with features.max_pitch_shift {reach}, so its "
            f"features reach {reach} semitones either way; use --tta {reach} or less"
        )
    if tta is not None:
        predictor.tta_shifts = tuple(range(-tta, tta + 1))
    return predictor


def check_evaluation_folders(run_dir: Path, names: list[str], overwrite: bool) -> None:
    """Refuse, before any song is rendered or scored, a `run_dir` whose ``evaluation/<name>`` folders hold
    files (an earlier evaluation: its scores and predicted .lab files), unless `overwrite`; then remove
    what that evaluation wrote there, as the recipe's ``evaluate --overwrite`` does, and nothing else."""
    for name in names:
        folder = run_dir / "evaluation" / name
        held = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        if not held:
            continue
        if not overwrite:
            raise SystemExit(
                f"error: --run_dir {run_dir} already holds an evaluation ({folder}: {listed(held)}); "
                "choose a new --run_dir, or pass --overwrite to replace it"
            )
        try:
            clear_run_outputs(folder, evaluation_outputs(folder), print)
        except USER_ERRORS as error:
            raise SystemExit(f"error: {error}") from None


def train_model(config: TrainingConfig, run_dir: Path, splits) -> Path:
    """Train `config` on the demo `splits` into `run_dir` and return its best checkpoint: in one process per
    core where the recipe's own command would train so (MLX on a multi-core CPU with MPI; `config.processes`),
    since `benchmark_config` takes about 9-10 minutes in two processes on a 2-core CPU and 1.8x that in one;
    otherwise in this process. Both train the same model to float32 rounding."""
    if run_dir.is_dir() and any(run_dir.iterdir()):
        raise SystemExit(f"error: --run_dir {run_dir} already holds files; choose a new one")
    try:
        plan = plan_local_processes(config.processes, config.batch_size)
        check_output_folders(config, run_dir, resume=None, overwrite=False)  # once here, not in every rank
    except (ValueError, OSError) as error:
        raise SystemExit(f"error: {error}") from None
    start = time.perf_counter()
    if plan.processes > 1:
        # The recipe's command, given every setting as a config file: it renders the same demo songs from
        # `config.data` and splits them as `demo_splits` did here.
        with tempfile.TemporaryDirectory() as folder:
            config_file = Path(folder) / "benchmark_config.json"
            config_file.write_text(json.dumps(config.to_dict()))
            status = run_local_job(
                plan, "audiotrain.recipes.chords", ["--config", str(config_file), "--run_dir", str(run_dir)]
            )
        if status != 0:
            raise SystemExit(f"training failed (exit status {status}; its output is above)")
        history = json.loads((run_dir / "history.json").read_text())
        checkpoint = run_dir / "checkpoints" / "best"
        took = (
            f"{time.perf_counter() - start:.0f} s in {plural(plan.processes, 'process', 'processes')} "
            "(with the demo's evaluation)"
        )
    else:
        if plan.note:
            print(plan.note)
        result = run_training(config, run_dir, splits=splits, log=print)
        history, checkpoint, took = result.history, result.checkpoint, f"{result.train_seconds:.0f} s"
    print(f"\ntraining: {took}, {plural(len(history.get('epoch', [])), 'epoch')}")
    return checkpoint


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="train the default config instead of the benchmark one"
    )
    parser.add_argument("--checkpoint", type=Path, default=None, help="score this checkpoint, no training")
    parser.add_argument("--test_songs", type=int, default=None, help="held-out songs per style")
    parser.add_argument(
        "--independent_songs",
        type=int,
        default=None,
        help="held-out songs of the independent style (default: --test_songs); its first 16 are the "
        "yardstick's songs, the rest more of the same style",
    )
    parser.add_argument(
        "--band_songs",
        type=int,
        default=None,
        help="held-out songs of the band style, the second style never trained on (default: --test_songs; "
        "0: not scored)",
    )
    parser.add_argument(
        "--run_dir", type=Path, default=Path("runs") / time.strftime("chords-bench-%Y%m%d-%H%M%S")
    )
    parser.add_argument("--cache_dir", type=str, default=None, help="demo data and feature cache")
    parser.add_argument("--seed", type=int, default=None, help="training seed (weights, order, augmentation)")
    parser.add_argument("--demo_songs", type=int, default=None, help="demo songs to train and validate on")
    parser.add_argument(
        "--tta",
        type=int,
        default=None,
        metavar="SEMITONES",
        help="test-time augmentation: average the model's posteriors over shifts of -N..N semitones "
        "(default: the predictor's, -2..2 since the eleventh round; 0: off, as in the rounds before)",
    )
    parser.add_argument(
        "--errors",
        type=int,
        default=8,
        metavar="N",
        help="list the N reference chords whose misreading costs majmin the most time, and the N whose "
        "bass costs majmin_inv the most with majmin right, per style (0: none)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any recipe setting by its dotted name, e.g. --set num_epochs=30 --set data.eq_db=6 (repeatable)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="with --checkpoint: replace an earlier evaluation in --run_dir (first remove what it wrote in "
        "evaluation/<set>/: its scores, plot and the .lab files its scores.json lists; other files stay)",
    )
    args = parser.parse_args(argv)
    if args.tta is not None and args.tta < 0:
        parser.error(f"--tta must be 0 semitones (off) or more, got {args.tta}")
    if args.overwrite and args.checkpoint is None:
        parser.error(
            "--overwrite replaces an earlier evaluation of a --checkpoint; to train, give a new --run_dir"
        )

    config = TrainingConfig() if args.quick else benchmark_config()
    data = config.data
    if args.cache_dir:
        data = replace(data, cache_dir=args.cache_dir)
    data = with_count(parser, data, "--test_songs", args.test_songs)
    data = with_count(parser, data, "--demo_songs", args.demo_songs, "demo_songs")
    config = replace(config, data=data)
    if args.seed is not None:
        config = replace(config, seed=args.seed)
    if args.set:
        try:
            config = merge_config(config, parse_overrides(args.set), source="--set")
        except ValueError as err:
            parser.error(str(err))
    independent_data = with_count(parser, config.data, "--independent_songs", args.independent_songs)
    band_songs = config.data.demo_test_songs if args.band_songs is None else args.band_songs
    if band_songs < 0:
        parser.error(f"--band_songs must be 0 or more, got {band_songs}")
    band_data = with_count(parser, config.data, "--band_songs", band_songs) if band_songs else None

    if args.checkpoint is not None:  # the checkpoint and the run folder first, before any song is rendered
        predictor = load_predictor(args.checkpoint, args.tta)
        sr = predictor.features.sr
        check_evaluation_folders(
            args.run_dir, [name for name, _, _ in HELD_OUT_SETS[: 3 if band_data else 2]], args.overwrite
        )
    else:
        reach = config.features.max_pitch_shift
        if args.tta is not None and args.tta > reach:  # found now, not after the training
            parser.error(
                f"--tta {args.tta}: the model trains with features.max_pitch_shift {reach}; use {reach} or less"
            )
        sr = config.features.sr
    try:  # training needs the training songs; scoring a checkpoint does not
        train_style = demo_splits(config.data, sr) if args.checkpoint is None else None
        held_out = {"train": train_style.test if train_style else demo_test_songs(config.data, sr)}
        held_out["independent"] = demo_test_songs(independent_data, sr, test_style="independent")
        if band_data:
            held_out["band"] = demo_test_songs(band_data, sr, test_style="band")
    except USER_ERRORS as error:  # a cache folder that cannot take the songs: one line, as the recipe's
        raise SystemExit(f"error: {error}") from None
    if train_style is not None:
        predictor = load_predictor(train_model(config, args.run_dir, train_style), args.tta)
    baseline = ChromaTemplateBaseline(predictor.features.sr, predictor.features.hop_length)
    joint, separate = replace(predictor.decode, joint_bass=True), replace(predictor.decode, joint_bass=False)
    sets = [(name, title, held_out[style]) for name, title, style in HELD_OUT_SETS if style in held_out]
    baseline.warm_up(sets[0][2][0].audio_path)
    print(
        "chroma+templates baseline: its speed is timed after one untimed call, which JIT-compiles librosa's "
        "numba kernels once per process (about 10 s)"
    )
    for name, title, songs in sets:
        predictor.decode = joint
        model = evaluate_songs(predictor, songs, args.run_dir / "evaluation" / name)
        decodings = {"joint": joint, "separate": separate}
        if predictor.model.config.chord_head:  # the joint chord head mixed with, or left for, the heads
            decodings["chord head 0.5"] = replace(joint, chord_head_weight=0.5)
            decodings["type x root"] = replace(joint, chord_head_weight=0.0)
        decoded = decode_songs(predictor, songs, decodings)
        both = {name: score_songs(pairs) for name, pairs in decoded.items()}
        base_scores, base_speed = score_baseline(baseline, songs)
        print(
            f"\n{title}: {plural(len(songs), 'song')}, {model.audio_seconds:.0f} s of audio; "
            "mir_eval.chord, % of time (pooled)"
        )
        columns = {
            "model (joint bass)": both["joint"],
            "separate bass": both["separate"],
            **{name: scores for name, scores in both.items() if name not in ("joint", "separate")},
            "chroma+templates": base_scores,
            "notes oracle": score_notes_oracle(songs),
        }
        print(format_table(columns, BENCHMARK_METRICS))
        if len(songs) > YARDSTICK_SONGS:  # (the rounds report the yardstick's songs and the rest apart)
            print(format_table(yardstick_and_rest(decoded["joint"], songs), BENCHMARK_METRICS))
        print(
            f"{round(100 * INTERVAL_CONFIDENCE)}% intervals over songs (bootstrap), in the table's metric order:"
        )
        intervals = (both["joint"].interval(metric) for metric in BENCHMARK_METRICS)
        print("  model (joint bass): " + ", ".join(f"{100 * lo:.1f}-{100 * hi:.1f}" for lo, hi in intervals))
        for other in (name for name in both if name != "joint"):
            differences = (difference_interval(both[other], both["joint"], m) for m in BENCHMARK_METRICS)
            print(
                f"  {other} - model, paired: "
                + ", ".join(f"{100 * d:+.1f} ({100 * lo:+.1f}..{100 * hi:+.1f})" for d, lo, hi in differences)
            )
        print(
            f"predict speed: {model.realtime_factor:.0f} s of audio per second (baseline: {base_speed:.0f}, "
            "its one-off JIT compile excluded)"
        )
        if args.errors > 0:
            joint_pairs = decoded["joint"]
            print("\nwhere majmin is lost (joint bass; % of majmin's time):")
            print(format_errors(costliest_errors(joint_pairs, "majmin", top=args.errors)))
            print("where majmin_inv is lost with majmin right (the bass):")
            print(format_errors(costliest_errors(joint_pairs, "majmin_inv", given="majmin", top=args.errors)))
    print(f"\nrun folder: {args.run_dir}")


if __name__ == "__main__":
    main()
