"""Chord recognition on held-out demo songs of two styles: the trained model next to a chroma-template baseline.

Trains the recipe's benchmark config (`audiotrain.recipes.chords_config.benchmark_config`) on demo songs of
the training style and scores two held-out sets made with another seed (other keys, tempi, progressions,
voicings): one in the training style, and one in the independently written held-out style
(`audiotrain.datasets.chord_demo_independent`: other progressions, voicings, timbres, bass lines, drums
and tunings), which measures generalisation beyond the generator. Prints the ``mir_eval.chord`` scores
(pooled over time, %) of the model with joint (chord, bass) decoding, of the same posteriors decoded with
separate chord and bass paths, and of the baseline measured in the same run, and the transcription speed
of `predict` (seconds of audio per second: audio loading + CQT + model + Viterbi).

Baseline: ``librosa.feature.chroma_cqt`` + the 24 major/minor triad templates (cosine similarity) + a
no-chord decision on frame energy + a median filter over the template scores (the classic template
matcher, e.g. Fujishima 1999 / Oudre et al. 2009). It can only say N, maj and min in root position.

    python benchmarks/chords.py [--quick] [--checkpoint CKPT] [--test_songs N] [--run_dir DIR] [--cache_dir DIR]

`--quick` trains the default (README) config instead of the longer benchmark config; `--checkpoint`
scores a trained checkpoint instead of training.

Measured 2026-11-23 on the shared 2-core Zen 5 EPYC (mlx 0.32.4 CPU + OpenBLAS), `--quick --test_songs 16`
(the default run's checkpoint: 64 demo songs, 60 epochs, 780 steps), pooled % of time over 16 held-out
songs (479 s) per style; "separate" decodes the same posteriors with separate chord and bass paths:

    metric         training style             independent style
                   joint  separate  chroma    joint  separate  chroma
    root           94.09  93.48     74.31     90.05  90.12     76.24
    majmin         94.32  94.84     77.05     84.02  84.09     71.27
    majmin_inv     89.89  90.04     59.41     74.21  72.36     62.03
    sevenths       95.80  95.47     59.81     66.11  67.09     48.93
    sevenths_inv   91.14  90.52     43.30     58.49  57.68     41.27
    tetrads        86.97  85.97     47.37     60.65  61.77     44.16

predict: 333-340 s of audio per second (baseline 247-256). Between training runs expect several points of
spread on the independent style (16 songs; a second run of the same recipe with another setting moved
majmin by up to 5 points).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import audiotrain  # noqa: F401  (loads OpenBLAS before mlx.core)
from audiotrain.audio import load
from audiotrain.chords.decode import DecodeConfig, decode_frames, frames_to_segments, median_smooth
from audiotrain.chords.lab import read_annotation
from audiotrain.chords.vocabulary import CHORD_TYPES, IGNORE_INDEX, N_INDEX
from audiotrain.metrics.chord_scores import MAX_REFERENCE_OVERHANG_S, ChordScores, score_songs, trim_reference
from audiotrain.recipes.chords import run_training
from audiotrain.recipes.chords_config import TrainingConfig, benchmark_config
from audiotrain.recipes.chords_data import demo_splits
from audiotrain.recipes.chords_eval import evaluate_songs, format_table
from audiotrain.recipes.chords_predict import ChordPredictor

import librosa
import numpy as np

MAJ, MIN = CHORD_TYPES.index("maj"), CHORD_TYPES.index("min")
BENCHMARK_METRICS = ("root", "majmin", "majmin_inv", "sevenths", "sevenths_inv", "tetrads")


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


def score_decodings(
    predictor: ChordPredictor, songs, decodings: dict[str, DecodeConfig]
) -> dict[str, ChordScores]:
    """Scores of each decoding of the same posteriors (computed once per song)."""
    pairs = {name: {} for name in decodings}
    for song in songs:
        post = predictor.posteriors(song.audio_path)
        reference = trim_reference(
            read_annotation(song.annotation_path), post.duration, MAX_REFERENCE_OVERHANG_S
        )[0]
        p = post.probs
        for name, decode in decodings.items():
            frames = decode_frames(p["chord_type"], p["root"], p["bass"], decode)
            pairs[name][song.name] = (reference, frames_to_segments(*frames, post.frame_rate, post.duration))
    return {name: score_songs(by_song) for name, by_song in pairs.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="train the default config instead of the benchmark one"
    )
    parser.add_argument("--checkpoint", type=Path, default=None, help="score this checkpoint, no training")
    parser.add_argument("--test_songs", type=int, default=None, help="held-out songs per style")
    parser.add_argument(
        "--run_dir", type=Path, default=Path("runs") / time.strftime("chords-bench-%Y%m%d-%H%M%S")
    )
    parser.add_argument("--cache_dir", type=str, default=None, help="demo data and feature cache")
    parser.add_argument("--seed", type=int, default=None, help="training seed (weights, order, augmentation)")
    parser.add_argument("--demo_songs", type=int, default=None, help="demo songs to train and validate on")
    args = parser.parse_args(argv)

    config = TrainingConfig() if args.quick else benchmark_config()
    data = config.data
    if args.cache_dir:
        data = replace(data, cache_dir=args.cache_dir)
    if args.test_songs:
        data = replace(data, demo_test_songs=args.test_songs)
    if args.demo_songs:
        data = replace(data, demo_songs=args.demo_songs)
    config = replace(config, data=data)
    if args.seed is not None:
        config = replace(config, seed=args.seed)
    train_style = demo_splits(config.data, config.features.sr)
    independent = demo_splits(config.data, config.features.sr, test_style="independent")
    if args.checkpoint is None:
        result = run_training(config, args.run_dir, splits=train_style, log=print)
        print(f"\ntraining: {result.train_seconds:.0f} s, {len(result.history.get('epoch', []))} epochs")
        checkpoint = result.checkpoint
    else:
        checkpoint = args.checkpoint
    predictor = ChordPredictor.from_checkpoint(checkpoint)
    baseline = ChromaTemplateBaseline(predictor.features.sr, predictor.features.hop_length)
    joint, separate = replace(predictor.decode, joint_bass=True), replace(predictor.decode, joint_bass=False)
    sets = (
        ("train_style", "held-out songs, training style", train_style.test),
        ("independent_style", "held-out songs, independent style", independent.test),
    )
    for name, title, songs in sets:
        predictor.decode = joint
        model = evaluate_songs(predictor, songs, args.run_dir / "evaluation" / name)
        both = score_decodings(predictor, songs, {"joint": joint, "separate": separate})
        base_scores, base_speed = score_baseline(baseline, songs)
        print(
            f"\n{title}: {len(songs)} songs, {model.audio_seconds:.0f} s of audio; mir_eval.chord, % of time (pooled)"
        )
        columns = {
            "model (joint bass)": both["joint"],
            "separate bass": both["separate"],
            "chroma+templates": base_scores,
        }
        print(format_table(columns, BENCHMARK_METRICS))
        print(
            f"predict speed: {model.realtime_factor:.0f} s of audio per second (baseline: {base_speed:.0f})"
        )
    print(f"\nrun folder: {args.run_dir}")


if __name__ == "__main__":
    main()
