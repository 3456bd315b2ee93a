"""Songs, features and loaders for the chord recipe: demo or folder data → `ChordSongDataset` → `DataLoader`.

Features are cached on disk per (audio file, feature settings) with `FeatureCache`, so the second run on the
same songs computes no CQT.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from audiotrain._files import probe_writable, write_atomically
from audiotrain.audio import AudioError
from audiotrain.chords.harte import NO_CHORD
from audiotrain.chords.lab import read_annotation
from audiotrain.chords.vocabulary import NUM_CHORD_TYPES, encode_label
from audiotrain.data import DataLoader
from audiotrain.datasets.chord_demo import DEMO_FOLDER, DemoConfig, demo_set_name, generate_demo_songs
from audiotrain.datasets.chord_songs import (
    ChordSongConfig,
    ChordSongDataset,
    SongEntry,
    scan_song_folder,
    split_songs,
    split_songs_shuffled,
)
from audiotrain.distributed import collectives
from audiotrain.distributed.local import launched_processes
from audiotrain.features.cache import FeatureCache, hold_cache
from audiotrain.recipes.chords.config import (
    SILENT_SONG,
    ChordDataConfig,
    ChordFeatureConfig,
    is_digital_silence,
)

import mlx.core as mx
import numpy as np

#: Seed offset of the held-out demo songs: different songs from the training set.
HELD_OUT_SEED_OFFSET = 1000
#: The run folder's file listing everything the data folder's scan and the feature pass left out, and why.
DATA_REPORT = "data_report.txt"


@dataclass
class SongSplits:
    """Songs for training, validation (model selection, early stopping) and the final evaluation."""

    train: list[SongEntry]
    val: list[SongEntry]
    test: list[SongEntry]
    source: str  # a line describing where the songs came from
    #: What the data folder holds and every file left out, with the reason (`DATA_REPORT`); "" for the demo.
    data_report: str = ""

    def describe(self) -> str:
        return f"{self.source}: {len(self.train)} train / {len(self.val)} val / {len(self.test)} test songs"


def check_cache_writable(data: ChordDataConfig) -> None:
    """Refuse, before any process starts, a cache folder that cannot take the demo songs and the features
    (a read-only mount, another user's folder): the same words as the error the writers themselves give."""
    cache = data.resolved_cache_dir()
    probe_in, error = probe_writable(cache)
    if error is not None:
        raise ValueError(
            f"cannot write the demo songs and features to {cache} (in {probe_in}: {error.strerror or error}): "
            "point --data.cache_dir or AUDIOTRAIN_CACHE_DIR at a writable folder"
        )


def demo_splits(
    data: ChordDataConfig,
    sr: int,
    train_timbres: Sequence[str] | None = None,
    test_timbres: Sequence[str] | None = None,
    test_style: str = "train",
    together: bool = False,
) -> SongSplits:
    """Generate (or reuse) the demo songs under the cache dir: a training set split into train/val by song,
    and a held-out set made with another seed (seed + 1000), optionally with other timbres or in the
    independently written ``"independent"`` style (`audiotrain.datasets.chord_demo_independent`).

    The training songs come from `data.demo_styles` in their shares (`assign_demo_styles`): each style's
    songs are one cached set of its own (its folder names the style and the count), and in a mix each song's
    name starts with its style (``studio-song_003``); a single style's songs keep their plain names.

    `together`: every rank of a data-parallel job calls this at once and renders its share of the songs
    (`generate_demo_songs`' shard); only for ranks that share a disk (one machine).
    """
    root = data.resolved_cache_dir() / DEMO_FOLDER
    # In use from now until the run ends: `cache clear` refuses to delete the sets under it.
    hold_cache(data.resolved_cache_dir() / "features", create=True)

    def make(kind: str, n: int, seed: int, timbres: Sequence[str] | None, style: str = "train"):
        config = DemoConfig(
            n_songs=n, seed=seed, sr=sr, song_seconds=data.demo_seconds, timbres=timbres, style=style
        )
        # Every parameter and the generator version are in the name: sets made otherwise never replace
        # each other.
        folder = root / f"{kind}-{demo_set_name(config)}"
        try:
            return generate_demo_songs(
                folder, **asdict(config),
                shard=(collectives.rank(), collectives.world_size()) if together else (0, 1),
                barrier=collectives.barrier if together else None,
            )  # fmt: skip
        except OSError as error:  # a read-only cache folder: the recipe's one-line error, naming the setting
            raise ValueError(
                f"cannot write the demo songs to {folder} ({error.strerror or error}): point "
                "--data.cache_dir or AUDIOTRAIN_CACHE_DIR at a writable folder"
            ) from error

    shares = data.demo_style_shares()
    assigned = assign_demo_styles(data.demo_songs, tuple(shares.values()))
    by_style = []
    for k, style in enumerate(shares):
        n = assigned.count(k)
        entries = (
            make("train", n, data.demo_seed, train_timbres if style == "train" else None, style) if n else []
        )
        if len(shares) > 1:  # each style's set names its songs song_000...: the style keeps them unique
            entries = [replace(e, name=f"{style}-{e.name}") for e in entries]
        by_style.append(iter(entries))
    songs = [next(by_style[k]) for k in assigned]
    test = make("test", data.demo_test_songs, data.demo_seed + HELD_OUT_SEED_OFFSET, test_timbres, test_style)
    # The split the demo's published figures were made with (a data folder's is `split_songs`, stable as
    # songs come and go; the demo's songs are fixed by its settings).
    train, val, _ = split_songs_shuffled(songs, data.val_fraction, 0.0, seed=data.demo_seed)
    return SongSplits(train, val, test, f"demo songs in {root}")


def assign_demo_styles(n_songs: int, weights: Sequence[float]) -> list[int]:
    """Which style (an index into `weights`) each of `n_songs` training songs comes from: counts by largest
    remainder over the weights (ties to the earlier style), in an order that keeps every prefix close to the
    shares (song k goes to the style furthest behind its share of k + 1 songs)."""
    shares = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    exact = n_songs * shares
    counts = np.floor(exact).astype(int)
    for k in sorted(range(len(shares)), key=lambda k: (-(exact[k] - counts[k]), k))[: n_songs - counts.sum()]:
        counts[k] += 1
    given = np.zeros(len(shares), int)
    order = []
    for k in range(n_songs):
        behind = np.where(given < counts, (k + 1) * counts / n_songs - given, -np.inf)
        j = int(np.argmax(behind))
        given[j] += 1
        order.append(j)
    return order


def folder_splits(data: ChordDataConfig, seed: int, min_seconds: float = 0.0) -> tuple[SongSplits, str]:
    """Scan `data.data_dir` and split its songs by song (or by folder: `data.split_by`; see `split_songs`);
    returns the splits, whose `data_report` lists every file left out, and the scan report for the screen
    (up to 20 files of a kind, then a count that points at the run folder's `DATA_REPORT`).
    Songs shorter than `min_seconds` (what the features need) are skipped and reported."""
    if not data.data_dir:
        raise ValueError(
            "data.data_dir is empty: pass --data DIR (a folder of audio files with .lab/.jams beside them)"
        )
    index = scan_song_folder(data.data_dir, allow_gaps=data.allow_gaps, min_duration=min_seconds)
    needed = 2 if data.val_fraction > 0 else 1
    if len(index) < needed:
        purpose = "train and validate" if needed == 2 else "train"
        raise ValueError(
            f"{data.data_dir}: need at least {needed} annotated songs to {purpose}\n{index.report()}"
        )
    train, val, test = split_songs(index.songs, data.val_fraction, data.test_fraction, seed, data.split_by)
    if not val and data.val_fraction > 0:  # (two songs or more validate on one: only a lone folder is left)
        raise ValueError(
            f"{data.data_dir}: its {len(index)} songs are all in one folder, and --data.split_by "
            f"{data.split_by} keeps a folder whole in one part, so none is left to validate on; pass "
            "--data.split_by song, or --data.val_fraction 0 to train without validation"
        )
    source = f"{len(index)} songs in {data.data_dir}" + (
        f" (split by {data.split_by.replace('_', ' ')})" if data.split_by != "song" else ""
    )
    screen = index.report(listed_in=f"the run folder's {DATA_REPORT}")
    return SongSplits(train, val, test, source, index.report(max_listed=None)), screen


def write_data_report(folder: Path, report: str) -> None:
    """`report` as `folder`'s `DATA_REPORT`, replaced whole. A file name the locale could not decode (surrogate
    escapes) is written as the bytes the file system holds."""
    data = f"{report}\n".encode("utf-8", "surrogateescape")
    write_atomically(folder / DATA_REPORT, lambda handle: handle.write(data))


def feature_function(
    features: ChordFeatureConfig, cache_root: Path
) -> tuple[Callable[[Path], np.ndarray], FeatureCache]:
    """`audio path → features [total_bins, frames]` through an on-disk cache."""
    cache = FeatureCache(
        cache_root, features, check=features.valid_features, expected_frames=features.expected_frames
    )

    def compute(path: Path) -> np.ndarray:
        return features.compute(features.load(path))

    def feature_fn(path: Path) -> np.ndarray:
        return np.asarray(cache.get_or_compute(path, compute))

    return feature_fn, cache


def drop_undecodable(
    splits: SongSplits,
    feature_fn: Callable[[Path], np.ndarray],
    features: ChordFeatureConfig | None = None,
) -> tuple[SongSplits, list[str]]:
    """Compute (or read from the cache) every song's features before training; returns the songs left out
    of the splits, with the reason: those whose audio fails to decode, and (given the `features` settings)
    those whose audio is digital silence though their annotation names chords (`SILENT_SONG`: chords
    learned from silence, and scored there). They are added to the splits' `data_report`.

    The folder scan reads headers only, so NaN samples or data truncated past the header surface
    when the audio is decoded: here, listed before training, rather than in a DataLoader worker in
    the middle of the first epoch. The features land in the cache the first epoch reads.

    Under data parallel each rank computes every W-th song (the features of a few hundred songs take
    tens of seconds on a CPU); one all-reduce then tells every rank which songs failed, and waits until
    every rank's share is in the cache. A failed song is decoded again where its reason is needed.
    """
    songs = [*splits.train, *splits.val, *splits.test]
    rank, world = collectives.rank(), collectives.world_size()
    failed = np.zeros(len(songs), np.float32)
    for i in range(rank, len(songs), world):
        failed[i] = _unusable(songs[i], feature_fn, features) is not None
    if world > 1:
        failed = np.asarray(collectives.all_reduce_sum(mx.array(failed)))
    dropped: list[str] = []
    bad: set[int] = set()
    for i in np.flatnonzero(failed):
        reason = _unusable(songs[i], feature_fn, features)
        if reason is not None:
            dropped.append(f"{songs[i].name}: {reason}")
            bad.add(id(songs[i]))

    def keep(part: list[SongEntry]) -> list[SongEntry]:
        return [song for song in part if id(song) not in bad]

    # The source line counts the songs found; say how many of them are left out, so the split adds up.
    source = f"{splits.source} ({len(dropped)} left out, listed above)" if dropped else splits.source
    report = splits.data_report
    if dropped and report:
        report += f"\n  {len(dropped)} songs whose audio does not decode or is silent under chords:\n    "
        report += "\n    ".join(dropped)
    kept = SongSplits(keep(splits.train), keep(splits.val), keep(splits.test), source, report)
    if dropped and (not kept.train or (splits.val and not kept.val)):
        raise ValueError(
            "too few songs left to train and validate once those whose audio does not decode or is silent "
            "are left out:\n  " + "\n  ".join(dropped)
        )
    return kept, dropped


def _unusable(
    song: SongEntry, feature_fn: Callable[[Path], np.ndarray], features: ChordFeatureConfig | None
) -> str | None:
    """Why `song` cannot be trained on (its audio does not decode, or is silence under chords), or None."""
    try:
        computed = feature_fn(song.audio_path)
    except AudioError as err:
        return str(err)
    # Only features quiet enough to be silence are checked on the audio itself: most songs cost nothing more.
    if features is None or not features.may_be_silence(computed):
        return None
    if not is_digital_silence(features.load(song.audio_path)):
        return None
    labels = {segment.label for segment in read_annotation(song.annotation_path, allow_gaps=True)}
    return f"{song.audio_path}: {SILENT_SONG}" if labels - {NO_CHORD} else None


def song_config(data: ChordDataConfig, features: ChordFeatureConfig, train: bool = True) -> ChordSongConfig:
    shifts = tuple(range(-5, 7)) if data.pitch_shift else (0,)
    if data.pitch_shift and features.max_pitch_shift < 6:
        shifts = tuple(range(-features.max_pitch_shift, features.max_pitch_shift + 1))
    return ChordSongConfig(
        frame_rate=features.frame_rate,
        n_bins=features.n_bins,
        bins_per_semitone=features.bins_per_semitone,
        spare_bins=features.spare_bins,
        window_frames=data.window_frames,
        pitch_shifts=shifts,
        allow_gaps=data.allow_gaps,
        eq_db=data.eq_db,
        bass_view_bins=features.bass_view_bins,
    )


def make_loaders(
    splits: SongSplits,
    feature_fn: Callable[[Path], np.ndarray],
    data: ChordDataConfig,
    features: ChordFeatureConfig,
    batch_size: int,
    seed: int,
) -> tuple[DataLoader, DataLoader | None, ChordSongDataset]:
    """Training loader (random pitch-shifted windows) and validation loader (every chunk of every val song;
    None without validation songs: ``data.val_fraction`` 0)."""
    config = song_config(data, features)
    train_set = ChordSongDataset(splits.train, feature_fn, config, train=True, seed=seed)
    val_set = ChordSongDataset(splits.val, feature_fn, config, train=False, seed=seed) if splits.val else None
    # One batch shape in training: the compiled step traces once. Keep the short batch only if it is all.
    train_loader = DataLoader(
        train_set,
        batch_size=batch_size,
        shuffle=True,
        # Judged on the whole job's batch in the recipe's own local processes: the same batches as one process.
        drop_last=len(train_set) >= batch_size * launched_processes(),
        num_workers=data.num_workers,
        seed=seed,
    )
    if val_set is None:
        return train_loader, None, train_set
    val_loader = DataLoader(val_set, batch_size=batch_size, shuffle=False, num_workers=data.num_workers)
    return train_loader, val_loader, train_set


def chord_type_frequencies(songs: Sequence[SongEntry], allow_gaps: bool = False) -> np.ndarray:
    """Seconds of each chord type annotated in `songs` ([num_chord_types] float64)."""
    seconds = np.zeros(NUM_CHORD_TYPES)
    for song in songs:
        for segment in read_annotation(song.annotation_path, allow_gaps=allow_gaps):
            seconds[encode_label(segment.label).chord_type] += segment.end - segment.start
    return seconds


def balanced_class_weights(seconds: np.ndarray) -> np.ndarray:
    """Inverse square-root frequency weights, mean 1 over the classes present (absent classes get 0)."""
    present = seconds > 0
    weights = np.zeros_like(seconds)
    weights[present] = 1.0 / np.sqrt(seconds[present] / seconds[present].sum())
    return weights / weights[present].mean()
