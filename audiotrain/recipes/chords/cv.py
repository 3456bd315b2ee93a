"""K-fold cross-validation of the chord recipe, grouped by song (the usual protocol of chord-recognition papers).

    python -m audiotrain.recipes.chords cv --data DIR --folds 5      # your songs
    python -m audiotrain.recipes.chords cv --folds 5                 # the demo songs

Every song is in the test part of exactly one fold, so no song (and no window of one) is both trained and
scored on. In each fold the other songs are split again by song into train and validation (``data.val_fraction``,
at least one song). Each fold is a whole `run_training` run in ``RUN/fold<k>/`` (checkpoints, history,
``evaluation/``). The run folder also gets ``oof/`` (the out-of-fold ``.lab`` prediction of every song) and
``cv_scores.json`` / ``cv_scores.md`` (each metric per fold, its mean and standard deviation, in %).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from audiotrain.cross_validation import CVResult, grouped_folds
from audiotrain.metrics.chord_scores import CHORD_METRICS
from audiotrain.recipes.chords.config import TrainingConfig
from audiotrain.recipes.chords.data import SongSplits, demo_splits, folder_splits
from audiotrain.recipes.chords.train import run_training


def all_songs(config: TrainingConfig) -> tuple[list, str]:
    """Every song of the data folder (or the demo training set, ``data.demo_songs`` songs), and its source.

    Out-of-fold predictions are named after the songs, so two songs of the same name are an error.
    """
    if config.data.data_dir:
        splits, _ = folder_splits(config.data, config.seed, min_seconds=config.features.min_seconds)
        songs = [*splits.train, *splits.val, *splits.test]
    else:
        splits = demo_splits(config.data, config.features.sr)
        songs = [*splits.train, *splits.val]  # (the held-out demo set reuses the same song names)
    names: dict[str, int] = {}
    for song in songs:
        names[song.name] = names.get(song.name, 0) + 1
    twice = sorted(n for n, count in names.items() if count > 1)
    if twice:
        raise ValueError(
            f"{splits.source}: several songs are named {twice[:5]}; give every song its own name"
        )
    return songs, splits.source


def song_folds(songs: list, folds: int, val_fraction: float, seed: int, source: str) -> list[SongSplits]:
    """``folds`` splits whose test parts partition ``songs`` (shuffled with ``seed``; see `grouped_folds`)."""
    if folds >= 2 and len(songs) < folds + 1:
        raise ValueError(f"{source}: {len(songs)} songs cannot make {folds} folds with training songs left")
    parts = grouped_folds(
        range(len(songs)), folds, seed, val_fraction, unit="songs", source=source, flag="--folds"
    )
    return [
        SongSplits(
            [songs[i] for i in f.train],
            [songs[i] for i in f.val],
            [songs[i] for i in f.test],
            f"fold {f.index} of {source}",
        )
        for f in parts
    ]


def run_cross_validation(config: TrainingConfig, run_dir: str | Path, folds: int = 5, log=print) -> CVResult:
    """Train and evaluate ``folds`` folds grouped by song; see the module docstring for what is written."""
    run_dir = Path(run_dir)
    songs, source = all_songs(config)
    splits = song_folds(songs, folds, config.data.val_fraction, config.seed, source)
    oof = run_dir / "oof"
    oof.mkdir(parents=True, exist_ok=True)
    fold_scores, histories = [], []
    for k, split in enumerate(splits):
        log(f"\n=== fold {k + 1}/{folds}: {split.describe()}")
        result = run_training(config, run_dir / f"fold{k}", splits=split, log=log)
        fold_scores.append({m: float(result.evaluation.scores.pooled[m]) for m in CHORD_METRICS})
        histories.append(result.history)
        for lab in (run_dir / f"fold{k}" / "evaluation").glob("*.lab"):
            shutil.copyfile(lab, oof / lab.name)
    cv = CVResult(run_dir, fold_scores, histories, [run_dir / f"fold{k}" for k in range(folds)], percent=True)
    cv.write(songs=len(songs))
    log(
        f"\n{folds}-fold cross-validation over {len(songs)} songs (grouped by song), scores in %:\n{cv.table()}"
    )
    return cv
