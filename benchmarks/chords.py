"""Chord recognition on held-out demo songs: the trained model next to a chroma-template baseline.

Trains the recipe's benchmark config (`audiotrain.recipes.chords_config.benchmark_config`) on demo songs
and scores two held-out sets made with another seed (so other keys, tempi, progressions, voicings): one
with the training timbres and one with a timbre never heard in training. Prints the ``mir_eval.chord``
scores (pooled over time, %) of the model and of the baseline measured in the same run, and the
transcription speed of `predict` (seconds of audio per second, audio loading + CQT + model + Viterbi).

Baseline: ``librosa.feature.chroma_cqt`` + the 24 major/minor triad templates (cosine similarity) + a
no-chord decision on frame energy + a median filter over the template scores (the classic template
matcher, e.g. Fujishima 1999 / Oudre et al. 2009). It can only say N, maj and min in root position.

    python benchmarks/chords.py [--quick] [--run_dir DIR] [--cache_dir DIR] [--unseen_timbre pad]

`--quick` trains the default (README) config instead of the longer benchmark config.

Measured 2026-11-21 on the shared 2-core Zen 5 EPYC (mlx 0.32.4 CPU + OpenBLAS), benchmark config (96 demo
songs of 30 s with piano/organ/pluck, 80 epochs max; early stopping ended it after 73 epochs = 1460 steps,
199 s of training), pooled % of time over 12 held-out songs (358 s) per set:

    held-out songs, training timbres          held-out songs, unseen timbre (pad)
    metric       model  chroma+templates      metric       model  chroma+templates
    root         93.81  87.07                 root         92.83  84.46
    majmin       97.41  92.69                 majmin       95.12  88.29
    majmin_inv   96.13  76.68                 majmin_inv   93.96  74.46
    mirex        97.22  77.37                 mirex        96.08  75.08
    triads       93.66  73.33                 triads       91.23  69.85
    sevenths     96.93  62.73                 sevenths     95.71  61.73
    sevenths_inv 95.65  50.25                 sevenths_inv 94.62  49.67
    tetrads      91.97  46.60                 tetrads      89.70  45.86

predict: 250-340 s of audio per second (baseline 130-190). An earlier run with 60 epochs (1200 steps) gave
majmin 98.15 / sevenths 97.79 (training timbres) and 94.33 / 95.57 (unseen timbre): expect +-1 point
between runs with 12 test songs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import audiotrain  # noqa: F401  (loads OpenBLAS before mlx.core)
from audiotrain.audio import load
from audiotrain.chords.decode import frames_to_segments, median_smooth
from audiotrain.chords.lab import read_annotation
from audiotrain.chords.vocabulary import CHORD_TYPES, IGNORE_INDEX, N_INDEX
from audiotrain.datasets.chord_demo import TIMBRES
from audiotrain.metrics.chord_scores import ChordScores, score_songs
from audiotrain.recipes.chords import run_training
from audiotrain.recipes.chords_config import TrainingConfig, benchmark_config
from audiotrain.recipes.chords_data import demo_splits
from audiotrain.recipes.chords_eval import evaluate_songs, format_table
from audiotrain.recipes.chords_predict import ChordPredictor

import librosa
import numpy as np

MAJ, MIN = CHORD_TYPES.index("maj"), CHORD_TYPES.index("min")


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="train the default config instead of the benchmark one"
    )
    parser.add_argument(
        "--run_dir", type=Path, default=Path("runs") / time.strftime("chords-bench-%Y%m%d-%H%M%S")
    )
    parser.add_argument("--cache_dir", type=str, default=None, help="demo data and feature cache")
    parser.add_argument("--unseen_timbre", default="pad", choices=TIMBRES, help="timbre left out of training")
    args = parser.parse_args(argv)

    config = TrainingConfig() if args.quick else benchmark_config()
    if args.cache_dir:
        from dataclasses import replace

        config = replace(config, data=replace(config.data, cache_dir=args.cache_dir))
    train_timbres = tuple(t for t in TIMBRES if t != args.unseen_timbre)
    seen = demo_splits(
        config.data, config.features.sr, train_timbres=train_timbres, test_timbres=train_timbres
    )
    unseen = demo_splits(
        config.data, config.features.sr, train_timbres=train_timbres, test_timbres=(args.unseen_timbre,)
    )
    print(f"training timbres: {', '.join(train_timbres)}; unseen timbre: {args.unseen_timbre}")
    result = run_training(config, args.run_dir, splits=seen, log=print)
    predictor = ChordPredictor.from_checkpoint(result.checkpoint)
    baseline = ChromaTemplateBaseline(config.features.sr, config.features.hop_length)

    print(f"\ntraining: {result.train_seconds:.0f} s, {len(result.history.get('epoch', []))} epochs")
    sets = (
        ("seen_timbres", "held-out songs, training timbres", seen.test),
        ("unseen_timbre", f"held-out songs, unseen timbre ({args.unseen_timbre})", unseen.test),
    )
    for name, title, songs in sets:
        model = evaluate_songs(predictor, songs, args.run_dir / "evaluation" / name)
        base_scores, base_speed = score_baseline(baseline, songs)
        print(
            f"\n{title}: {len(songs)} songs, {model.audio_seconds:.0f} s of audio; mir_eval.chord, % of time (pooled)"
        )
        print(format_table({"model": model.scores, "chroma+templates": base_scores}))
        print(
            f"predict speed: {model.realtime_factor:.0f} s of audio per second (baseline: {base_speed:.0f})"
        )
    print(f"\nrun folder: {args.run_dir}")


if __name__ == "__main__":
    main()
