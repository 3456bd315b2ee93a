"""Songs, features and loaders for the chord recipe: demo or folder data → `ChordSongDataset` → `DataLoader`.

Features are cached on disk per (audio file, feature settings) with `FeatureCache`, so the second run on the
same songs computes no CQT. The first run computes them all before training (`drop_undecodable`), with its
progress on stderr; a stop signal there ends the run with one line (`FeaturesInterrupted`), and what was
computed stays in the cache for the next run.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from audiotrain._files import probe_writable, write_atomically
from audiotrain._system import CACHE_DIR_ENV
from audiotrain._text import listed, plural
from audiotrain._tqdm import draws_live_bars, tqdm
from audiotrain.audio import AudioError, get_duration
from audiotrain.chords.harte import NO_CHORD
from audiotrain.chords.vocabulary import CHORD_TYPES, NUM_CHORD_TYPES, encode_label
from audiotrain.data import DataLoader
from audiotrain.datasets.chord_demo import DEMO_FOLDER, DemoConfig, demo_set_name, generate_demo_songs
from audiotrain.datasets.chord_songs import (
    ChordSongConfig,
    ChordSongDataset,
    SongEntry,
    SongIndex,
    merged_groups,
    scan_song_folder,
    shared_annotations,
    split_groups,
    split_songs,
    split_songs_as_given,
    split_songs_shuffled,
)
from audiotrain.distributed import collectives
from audiotrain.features.cache import UNWRITABLE_ADVICE, FeatureCache, hold_cache_for_the_run
from audiotrain.recipes.chords.config import (
    ChordDataConfig,
    ChordFeatureConfig,
    is_digital_silence,
    silent_song_reason,
)
from audiotrain.train.interrupt import stop_point
from audiotrain.train.loggers.config import LOGGER_OUTPUTS

import mlx.core as mx
import numpy as np

#: Seed offset of the held-out demo songs: different songs from the training set.
HELD_OUT_SEED_OFFSET = 1000
#: The run folder's file listing everything the data folder's scan and the feature pass left out, and why.
DATA_REPORT = "data_report.txt"

#: Written into the run folder as its training ends (all epochs, or early stopping), before the held-out
#: evaluation: the checkpoint it evaluates. A process killed after that (SIGKILL, OOM, power loss) prints
#: nothing, and a resume finds here that only the evaluation is left (`trained_checkpoint`).
TRAINED_FILE = "trained.json"

#: What a run writes in its folder: ``--overwrite`` removes these (and only these) before the new run. (Here,
#: not in `train`, which imports the trainer: predict, evaluate and score refuse to write over a live run's.)
RUN_OUTPUTS = (
    "config.json",
    TRAINED_FILE,
    DATA_REPORT,
    "checkpoints",
    "history.json",
    "training_curves.png",
    "evaluation",
    *LOGGER_OUTPUTS,
)

#: Seconds between the feature pass's progress lines where stderr is no terminal (a log file, a pipe).
PROGRESS_LINE_SECONDS = 60.0


@dataclass
class SongSplits:
    """Songs for training, validation (model selection, early stopping) and the final evaluation."""

    train: list[SongEntry]
    val: list[SongEntry]
    test: list[SongEntry]
    source: str  # a line describing where the songs came from
    #: What the data folder holds and every file left out, with the reason (`DATA_REPORT`); "" for the demo.
    data_report: str = ""
    #: Whether the parts are a pairs file's ``split`` column (a dataset's published split), not the recipe's.
    parts_given: bool = False
    #: The songs `drop_undecodable` left out: a silent one's features are in the cache, as this run's.
    left_out: list[SongEntry] = field(default_factory=list)

    def describe(self) -> str:
        return f"{self.source}: {len(self.train)} train / {len(self.val)} val / {len(self.test)} test songs"


def check_cache_writable(data: ChordDataConfig) -> None:
    """Refuse, before any process starts, a cache folder that cannot take the demo songs and the features
    (a read-only mount, another user's folder): the same words as the error the writers themselves give. For
    the demo only: a data folder's run serves what the cache holds and computes the rest in memory."""
    cache = data.resolved_cache_dir()
    probe_in, error = probe_writable(cache)
    if error is not None:
        raise ValueError(
            f"cannot write the demo songs and features to {cache} (in {probe_in}: {error.strerror or error}): "
            f"{_cache_folder_advice(data)}"
        )


def _cache_folder_advice(data: ChordDataConfig) -> str:
    """Which setting moves the cache. A cache_dir the run was given (--data.cache_dir, or a --config file's)
    is used instead of AUDIOTRAIN_CACHE_DIR, so the variable is advised only where none was given (config.json
    records null then, and a replay of it follows the variable too)."""
    if data.cache_dir:
        return (
            "point --data.cache_dir at a writable folder (this run was given data.cache_dir, by the flag or a "
            f"--config file, which {CACHE_DIR_ENV} does not override)"
        )
    return f"point --data.cache_dir or {CACHE_DIR_ENV} at a writable folder"


def unwritable_cache_advice(data: ChordDataConfig) -> str:
    """How to move a feature cache that cannot be written. A cache_dir the run was given (--data.cache_dir,
    or a --config file's) is used instead of AUDIOTRAIN_CACHE_DIR, so the variable is advised only where no
    cache_dir was given."""
    if data.cache_dir:
        return (
            f"this run's data.cache_dir (--data.cache_dir, or a --config file's) is used instead of "
            f"{CACHE_DIR_ENV}: pass --data.cache_dir DIR with a writable folder to keep them"
        )
    return f"point {CACHE_DIR_ENV} or --data.cache_dir at a writable folder to keep them"


def _demo_set_maker(data: ChordDataConfig, sr: int, together: bool) -> Callable[..., list[SongEntry]]:
    """``make(kind, n, seed, timbres, style)``: one demo set under the cache, generated or reused."""
    root = data.resolved_cache_dir() / DEMO_FOLDER
    # In use from now until the run ends (`run_training`, `cv`: `releasing_the_runs_holds`; called on its own,
    # for the rest of the process): `cache clear` refuses to delete the sets under it.
    hold_cache_for_the_run(data.resolved_cache_dir() / "features", create=True)

    def make(kind: str, n: int, seed: int, timbres: Sequence[str] | None, style: str = "train"):
        config = DemoConfig(
            n_songs=n, seed=seed, sr=sr, song_seconds=data.demo_seconds, timbres=timbres, style=style
        )
        # Every parameter and the generator version are in the name: sets made otherwise never replace
        # each other. The folder is the cache's own, so whatever is in it (a render of an older release
        # stopped before its manifest) is the cache's to write over: overwrite.
        folder = root / f"{kind}-{demo_set_name(config)}"
        try:
            return generate_demo_songs(
                folder, **asdict(config),
                shard=(collectives.rank(), collectives.world_size()) if together else (0, 1),
                barrier=collectives.barrier if together else None, overwrite=True,
            )  # fmt: skip
        except OSError as error:  # a read-only cache folder: the recipe's one-line error, naming the setting
            # A link on the way to a folder that does not exist: mkdir says only "File exists".
            cause = probe_writable(folder)[1] if isinstance(error, FileExistsError) else None
            cause = cause or error
            raise ValueError(
                f"cannot write the demo songs to {folder} ({cause.strerror or cause}): "
                f"{_cache_folder_advice(data)}"
            ) from error

    return make


def demo_test_songs(
    data: ChordDataConfig, sr: int, test_timbres: Sequence[str] | None = None, test_style: str = "train"
) -> list[SongEntry]:
    """The held-out demo songs of `demo_splits` (the same set, from the same cache) without its training
    songs: what scoring a trained checkpoint needs (`benchmarks/chords.py --checkpoint`), without rendering
    the thousand training songs of `benchmark_config` first."""
    make = _demo_set_maker(data, sr, together=False)
    return make("test", data.demo_test_songs, data.demo_seed + HELD_OUT_SEED_OFFSET, test_timbres, test_style)


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
    make = _demo_set_maker(data, sr, together)
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
    return SongSplits(train, val, test, f"demo songs in {data.resolved_cache_dir() / DEMO_FOLDER}")


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


def folder_splits(
    data: ChordDataConfig,
    seed: int,
    min_seconds: float = 0.0,
    folds: bool = False,
    run_dir: str | Path | None = None,
) -> tuple[SongSplits, str]:
    """Scan `data.data_dir` and split its songs by song (or by folder: `data.split_by`; see `split_songs`);
    returns the splits, whose `data_report` lists every file left out, and the scan report for the screen
    (up to 20 files of a kind, then a count that points at the run folder's `DATA_REPORT`).
    Songs shorter than `min_seconds` (what the features need) are skipped and reported. A pairs file's
    ``split`` column gives the parts instead (`split_songs_as_given`); `folds` (cross-validation, which makes
    its own) refuses one. A `run_dir` inside the data folder is left out of the scan, and named in its report
    (`scan_song_folder`'s `leave_out`): a fresh run and its resume scan the same songs."""
    if not data.data_dir:
        raise ValueError(
            "data.data_dir is empty: pass --data DIR (a folder of audio files with .lab/.jams beside them)"
        )
    index = scan_song_folder(
        data.data_dir,
        allow_gaps=data.allow_gaps,
        min_duration=min_seconds,
        jams_annotation=data.jams_annotation,
        annotations_dir=data.annotations,
        pairs_file=data.pairs,
        leave_out=run_dir,
    )
    needed = 2 if data.val_fraction > 0 else 1
    if len(index) < needed:
        purpose = "train and validate" if needed == 2 else "train"
        hint = index.pairing_hint("--data.annotations", "--data.pairs")
        if len(index) == 1 and not folds:  # (cv holds out a song: it needs two whatever the fraction)
            purpose += "; --data.val_fraction 0 trains on the one song, without validation"
        raise ValueError(
            f"{data.data_dir}: need at least {needed} annotated songs to {purpose}\n{index.report()}"
            + (f"\n{hint}" if hint else "")
        )
    if index.parts and folds:
        raise ValueError(
            f"{data.pairs}: cv makes its own folds, so its split column would not be used; drop the column "
            "(--data.group_pattern keeps groups whole in the folds), or train on the split with train"
        )
    if index.parts:
        return _given_splits(index, data)
    train, val, test = split_songs(
        index.songs, data.val_fraction, data.test_fraction, seed, data.split_by, data.group_pattern
    )
    if not val and data.val_fraction > 0:  # (two songs or more validate on one: only a lone group is left)
        if data.group_pattern is not None:
            grouping = f"group, and --data.group_pattern '{data.group_pattern}' keeps a group"
            remedy = "match less with --data.group_pattern"
        else:
            grouping = f"folder, and --data.split_by {data.split_by} keeps a folder"
            remedy = "pass --data.split_by song"
        raise ValueError(
            f"{data.data_dir}: its {len(index)} songs are all in one {grouping} whole in one part, so none "
            f"is left to validate on; {remedy}, or --data.val_fraction 0 to train without validation"
        )
    source = f"{plural(len(index), 'song')} in {data.data_dir}{_grouped(data)}"
    screen = index.report(listed_in=f"the run folder's {DATA_REPORT}")
    kept = _kept_together_note(index.songs, data, "fold" if folds else "part")
    splits = SongSplits(train, val, test, source, index.report(max_listed=None) + index.pairs_listing())
    shared = "" if folds else _shared_folders_note(splits, data)
    return splits, screen + kept + _no_test_songs_note(splits, data, folds) + shared


def no_test_songs_reason(splits: SongSplits, data: ChordDataConfig) -> str:
    """Why a data folder's `splits` hold out no test song, and what gives some: said before training and
    again where the run ends without an evaluation. A grouping (`--data.split_by`, `--data.group_pattern`)
    into fewer than three groups fills training and validation first, which no test_fraction changes, and a
    pairs file's split column is the split whatever the fractions say."""
    if splits.parts_given:
        return f"{data.pairs}'s split column names no test song that the scan kept: mark some rows test"
    if data.test_fraction == 0:
        return "--data.test_fraction is 0"
    songs = [*splits.train, *splits.val, *splits.test]
    if data.group_pattern is not None:
        grouping = f"--data.group_pattern '{data.group_pattern}'"
    elif data.split_by != "song":
        grouping = f"--data.split_by {data.split_by}"
    else:
        grouping = None
    named = split_groups([song.name for song in songs], data.split_by, data.group_pattern)
    groups = len(set(merged_groups([song.annotation_path for song in songs], named)))
    if grouping is not None and groups < 3:
        return (
            f"{grouping} makes {plural(groups, 'group')} of the {plural(len(songs), 'song')}, each kept "
            "whole in one part, and training and validation take them: a test part needs a third group "
            "(more folders, or a finer grouping)"
        )
    return "data.test_fraction, or more songs, gives some"


def _shared_folders_note(splits: SongSplits, data: ChordDataConfig) -> str:
    """A line for the screen where a split by song (the default) put test songs in a folder that training
    songs share (an album of artist/album/song): its production's sound then flatters the test scores, and
    --data.split_by folder keeps a folder whole. "" for a grouping, or where no folder is shared."""
    if data.split_by != "song" or data.group_pattern is not None:
        return ""
    trained = {song.name.rpartition("/")[0] for song in splits.train}
    shared = sorted({song.name.rpartition("/")[0] for song in splits.test} & trained - {""})
    if not shared:
        return ""
    songs = [*splits.train, *splits.val, *splits.test]
    if len({song.name.rpartition("/")[0] for song in songs}) == 1:  # split_by folder would leave one part
        return (
            f"\nnote: all {len(songs)} songs lie in one folder ({shared[0]}), split by song: where some "
            "share a sound (an album, a player's takes), --data.group_pattern REGEX keeps each group in one "
            "part"
        )
    tested = sum(song.name.rpartition("/")[0] in shared for song in splits.test)
    return (
        f"\nnote: {plural(tested, 'test song')} {'shares' if tested == 1 else 'share'} a folder with "
        f"training songs ({listed(shared, 2)}): "
        "split by song, an album's sound is in both and flatters the test scores; --data.split_by folder "
        "keeps each folder's songs in one part (top_folder: each artist's)"
    )


def _no_test_songs_note(splits: SongSplits, data: ChordDataConfig, folds: bool = False) -> str:
    """A line for the screen, before training, where `splits` hold out no test song though one was asked for
    (a test_fraction, or a split column): `no_test_songs_reason`; "" otherwise, and in cv (its folds test)."""
    if splits.test or folds or (data.test_fraction == 0 and not splits.parts_given):
        return ""
    return f"\nnote: no test songs, so no final evaluation: {no_test_songs_reason(splits, data)}"


def _grouped(data: ChordDataConfig) -> str:
    """What the source line says of the grouping: "" for songs alone."""
    if data.group_pattern is not None:
        return f" (grouped by '{data.group_pattern}')"
    return f" (split by {data.split_by.replace('_', ' ')})" if data.split_by != "song" else ""


def _kept_together_note(songs: Sequence[SongEntry], data: ChordDataConfig, part: str) -> str:
    """A line for the screen where songs that share an annotation file (a pairs file's rows:
    `shared_annotations`) were in other groups, which `split_songs` and cv's folds merge (`merged_groups`);
    "" where none were. Said, as no flag asked for it and it moves songs a split by song would part."""
    names = [song.name for song in songs]
    group_of = dict(zip(names, split_groups(names, data.split_by, data.group_pattern)))
    kept = [same for same in shared_annotations(songs) if len({group_of[song.name] for song in same}) > 1]
    if not kept:
        return ""
    n = sum(len(same) for same in kept)
    first = kept[0]
    return (
        f"\nnote: {n} songs that share an annotation file with another song are kept in one {part} with it, "
        f"as recordings of one performance ({first[0].name} and {first[1].name} share "
        f"{first[0].annotation_path.name})"
    )


def _shared_across_parts_warning(index: SongIndex, where: str) -> str:
    """A line for the screen where `where` (a pairs file's split column, which is the user's to keep) puts a
    song in train and another of the same annotation file in val or test: those scores then count a take the
    model trained on. "" where it does not."""
    across = []
    for same in shared_annotations(index.songs):
        trained = [song for song in same if index.parts[song.audio_path] == "train"]
        scored = [song for song in same if index.parts[song.audio_path] != "train"]
        if trained and scored:
            across.append(
                (trained[0], min(scored, key=lambda s: (index.parts[s.audio_path] != "test", s.name)))
            )
    if not across:
        return ""
    song, other = across[0]
    more = f"; {plural(len(across) - 1, 'other such pair')} too" if len(across) > 1 else ""
    return (
        f"\nwarning: {where} puts {song.name} in train and {other.name} in {index.parts[other.audio_path]}, "
        f"which share {song.annotation_path.name} (recordings of one performance?): the "
        f"{index.parts[other.audio_path]} scores then count a take the model trained on{more}"
    )


def _given_splits(index: SongIndex, data: ChordDataConfig) -> tuple[SongSplits, str]:
    """The splits a pairs file's ``split`` column gives (`split_songs_as_given`), in place of the fractions;
    the fractions still say whether a part is wanted: ``--data.val_fraction 0`` trains without one."""
    where = f"{data.pairs}'s split column"
    try:
        train, val, test = split_songs_as_given(index.songs, index.parts, data.split_by, data.group_pattern)
    except ValueError as error:
        raise ValueError(f"{data.pairs}: {error}") from None
    if not train:
        raise ValueError(f"{where} names no train song that the scan kept; mark some rows train")
    if not val and data.val_fraction > 0:
        raise ValueError(
            f"{where} names no val song, to validate on; mark some rows val, or pass --data.val_fraction 0 "
            "to train without validation"
        )
    if val and data.val_fraction == 0:
        raise ValueError(
            f"{where} names {plural(len(val), 'val song')}, but --data.val_fraction 0 asks for no "
            "validation; mark them train, or drop --data.val_fraction 0 to validate on them"
        )
    source = f"{plural(len(index), 'song')} in {data.data_dir} (the split {data.pairs} gives){_grouped(data)}"
    screen = index.report(listed_in=f"the run folder's {DATA_REPORT}")
    screen += _shared_across_parts_warning(index, where)
    report = index.report(max_listed=None) + index.pairs_listing()
    splits = SongSplits(train, val, test, source, report, parts_given=True)
    return splits, screen + _no_test_songs_note(splits, data)


def write_data_report(folder: Path, report: str) -> None:
    """`report` as `folder`'s `DATA_REPORT`, replaced whole. A file name the locale could not decode (surrogate
    escapes) is written as the bytes the file system holds."""
    data = f"{report}\n".encode("utf-8", "surrogateescape")
    write_atomically(folder / DATA_REPORT, lambda handle: handle.write(data))


def feature_function(
    features: ChordFeatureConfig, cache_root: Path, unwritable_advice: str = UNWRITABLE_ADVICE
) -> tuple[Callable[[Path], np.ndarray], FeatureCache]:
    """`audio path → features [total_bins, frames]` through an on-disk cache (`unwritable_advice`: how to
    move it where it cannot be written, `unwritable_cache_advice`)."""
    cache = FeatureCache(
        cache_root,
        features,
        check=features.valid_features,
        expected_frames=features.expected_frames,
        unwritable_advice=unwritable_advice,
    )

    def compute(path: Path) -> np.ndarray:
        return features.compute(features.load(path))

    def feature_fn(path: Path) -> np.ndarray:
        return np.asarray(cache.get_or_compute(path, compute))

    return feature_fn, cache


class FeaturesInterrupted(KeyboardInterrupt):
    """A stop signal ended `drop_undecodable`'s feature pass, before training: `cached` of the `total` songs
    have their features in `folder` (the cache's), which the next run reads; `cached` is None where the cache
    cannot be written (the features were computed in memory only)."""

    def __init__(self, cached: int | None, total: int, folder: Path | None):
        super().__init__(f"stopped while computing features ({cached} of {total} songs cached)")
        self.cached, self.total, self.folder = cached, total, folder


def stopped_before_training(stop: KeyboardInterrupt, signal_name: str, again: str) -> str:
    """The line a run stopped before training prints: where it stopped, what of the features is kept, and
    that nothing was written to a run folder. `again`: how the user goes on ("run the same command again to go
    on from there")."""
    nothing = "nothing was written to a run folder"
    if not isinstance(stop, FeaturesInterrupted):  # (the folder scan, the demo songs' rendering)
        return f"stopped ({signal_name}) while reading the songs, before training; {nothing}"
    if stop.folder is None:
        kept = "the features computed so far were not kept (no feature cache)"
    elif stop.cached is None:
        kept = f"the cache {stop.folder} cannot be written, so the next run computes them again"
    elif stop.cached == 0:
        kept = f"no song's features were in the cache {stop.folder} yet"
    else:
        kept = (
            f"the features of {stop.cached} of the {stop.total} songs are in the cache {stop.folder} and "
            f"kept: {again}"
        )
    return f"stopped ({signal_name}) while computing the songs' features, before training: {kept}; {nothing}"


def drop_undecodable(
    splits: SongSplits,
    feature_fn: Callable[[Path], np.ndarray],
    features: ChordFeatureConfig | None = None,
    cache: FeatureCache | None = None,
    log: Callable[[str], None] | None = None,
    bar: bool = True,
) -> tuple[SongSplits, list[str]]:
    """Compute (or read from the cache) every song's features before training; returns the songs left out
    of the splits, with the reason: those whose audio fails to decode, and (given the `features` settings)
    those whose audio is digital silence though their annotation names chords (`silent_song_reason`:
    chords learned from silence, and scored there). They are added to the splits' `data_report`.

    The folder scan reads headers only, so NaN samples or data truncated past the header surface
    when the audio is decoded: here, listed before training, rather than in a DataLoader worker in
    the middle of the first epoch. The features land in the cache the first epoch reads.

    With `log`, rank 0 says how many songs (and minutes of audio) are computed and how many come from
    `cache`, and shows the progress on stderr (minutes on a large folder): a bar in a terminal (unless not
    `bar`: ``--progress_bar false``), else a line every `PROGRESS_LINE_SECONDS`. A stop signal (Ctrl-C)
    here raises `FeaturesInterrupted`: at once in one process, and under `stopping_together` on every rank
    together, once each has finished its song of the round.

    Under data parallel each rank computes every W-th song (the features of a few hundred songs take
    tens of seconds on a CPU); one all-reduce then tells every rank which songs failed, and waits until
    every rank's share is in the cache. A failed song is decoded again where its reason is needed.
    """
    songs = [*splits.train, *splits.val, *splits.test]
    rank, world = collectives.rank(), collectives.world_size()
    failed = np.zeros(len(songs), np.float32)
    progress = None
    try:
        if log is not None:  # (every rank has a log: the others' is silent)
            to_compute = _songs_to_compute(songs, cache)
            if rank == 0:
                progress = _FeatureProgress(songs, to_compute, world, cache, log, bar)
        for first in range(0, len(songs), world):  # a round: one song of each rank's share
            i = first + rank
            if i < len(songs):
                failed[i] = _unusable(songs[i], feature_fn, features) is not None
                if progress is not None:
                    progress.done_through(i)
            stop_point()  # (under `stopping_together`: the ranks stop together, after a song)
    except KeyboardInterrupt:
        if progress is not None:
            progress.close()
        cached = None if cache is None or cache.unwritable else sum(_in_cache(cache, s) for s in songs)
        raise FeaturesInterrupted(cached, len(songs), cache.folder if cache else None) from None
    if progress is not None:
        progress.finish()
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
        whose = "whose audio does not decode or is silent under chords"
        report += f"\n  {plural(len(dropped), 'song')} {whose}:\n    "
        report += "\n    ".join(dropped)
    left_out = [*splits.left_out, *(song for song in songs if id(song) in bad)]
    kept = SongSplits(
        keep(splits.train), keep(splits.val), keep(splits.test), source, report, splits.parts_given, left_out
    )
    if dropped and (not kept.train or (splits.val and not kept.val)):
        raise ValueError(
            "too few songs left to train and validate once those whose audio does not decode or is silent "
            "are left out:\n  " + "\n  ".join(dropped)
        )
    return kept, dropped


def _in_cache(cache: FeatureCache, song: SongEntry) -> bool:
    try:
        return cache.holds(song.audio_path)  # (not a damaged entry: that one is computed again)
    except AudioError:  # (a file gone since the scan: its song is listed when it is read)
        return False


def _songs_features(n: int) -> str:
    """ "1 song's features", "2 songs' features"."""
    return f"{n} song's features" if n == 1 else f"{n} songs' features"


def _songs_to_compute(songs: list[SongEntry], cache: FeatureCache | None) -> np.ndarray:
    """[2, songs]: 1 where a song's features are not in `cache` yet, and the seconds of audio of those songs
    (from the headers). Each rank looks at its share of the songs, and one all-reduce gives every rank the
    whole: no rank computes a song before all have looked. Counted by rank 0 while the others were already
    computing, songs they had just computed were said to come from the cache."""
    rank, world = collectives.rank(), collectives.world_size()
    counted = np.zeros((2, len(songs)), np.float32)
    for i in range(rank, len(songs), world):
        if not (cache is not None and _in_cache(cache, songs[i])):
            counted[:, i] = 1.0, _header_seconds(songs[i])
    return np.asarray(collectives.all_reduce_sum(mx.array(counted))) if world > 1 else counted


class _FeatureProgress:
    """What `drop_undecodable` shows on rank 0 while it computes features: a line of what is to compute and
    what comes from the cache, a bar (stderr a terminal) or a line a minute, and the time it took.

    Under data parallel rank 0 computes every W-th song: once it is done with song i, the job is counted done
    through song i + W - 1 (the ranks keep about the same pace)."""

    def __init__(
        self,
        songs: list[SongEntry],
        to_compute: np.ndarray,
        world: int,
        cache: FeatureCache | None,
        log,
        bar: bool,
    ):
        self.world, self.log = world, log
        missing = [bool(todo) for todo in to_compute[0]]  # (`_songs_to_compute`)
        self.seconds = [float(seconds) for seconds in to_compute[1]]
        self.to_compute, self.total_seconds = sum(missing), sum(self.seconds)
        self.done_before = np.concatenate([[0], np.cumsum(missing)])  # songs to compute before each index
        self.seconds_before = np.concatenate([[0.0], np.cumsum(self.seconds)])
        cache_folder = f" {cache.folder}" if cache is not None else ""
        cached = len(songs) - self.to_compute
        if not self.to_compute:
            every = "the 1 song" if len(songs) == 1 else f"all {len(songs)} songs"
            log(f"features of {every} from the cache{cache_folder}")
        else:
            rest = ""
            if cache is not None and not cache.can_keep_new_entries():
                # Its warning said why and how to move it: not said a second time here.
                rest = ", in memory only (the cache cannot be written: see the warning above)"
                if cached:
                    rest += f"; the other {_songs_features(cached)} come from it"
            elif cache is not None:
                rest = (
                    f"; the other {_songs_features(cached)} come from the cache{cache_folder}"
                    if cached
                    else f", kept in the cache{cache_folder} for later runs"
                )
            audio = _duration(self.total_seconds)
            log(f"computing the features of {plural(self.to_compute, 'song')} ({audio} of audio){rest}")
        self.started = self.last_line = time.monotonic()
        self.bar = None
        if self.to_compute and bar and draws_live_bars(sys.stderr):  # (not TERM=dumb: lines, as training's)
            self.bar = tqdm(
                total=self.to_compute, desc="features", unit="song", file=sys.stderr, dynamic_ncols=True
            )

    def done_through(self, i: int) -> None:
        end = min(i + self.world, len(self.seconds))
        done = int(self.done_before[end])
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            return
        now = time.monotonic()
        if self.to_compute and done < self.to_compute and now - self.last_line >= PROGRESS_LINE_SECONDS:
            self.last_line = now
            elapsed, seconds_done = now - self.started, float(self.seconds_before[end])
            left = ""
            if seconds_done > 0:
                left = (
                    f", about {_duration(elapsed * (self.total_seconds - seconds_done) / seconds_done)} left"
                )
            print(
                f"features: {done} of {plural(self.to_compute, 'song')} computed in "
                f"{_duration(elapsed)}{left}",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def finish(self) -> None:
        self.close()
        if self.to_compute:
            took = _duration(time.monotonic() - self.started)
            self.log(f"computed the features of {plural(self.to_compute, 'song')} in {took}")


def _header_seconds(song: SongEntry) -> float:
    try:
        return get_duration(song.audio_path)
    except AudioError:  # (the pass names it)
        return 0.0


class TranscriptionProgress:
    """What ``evaluate`` and ``predict`` show on stderr while they transcribe a folder: a line every
    `PROGRESS_LINE_SECONDS` (done, elapsed, about how long is left). A folder of a thousand songs takes
    minutes, which passed without a word before the scores."""

    def __init__(self, total: int, unit: str = "song", seconds: Sequence[float] | None = None):
        self.total, self.unit = total, unit
        # The time left goes by audio where each one's length is known: a 3-hour recording among 2-minute
        # songs is not one file of many.
        self.seconds_before = None if seconds is None else np.concatenate([[0.0], np.cumsum(seconds)])
        self.started = self.last_line = time.monotonic()

    def done(self, count: int) -> None:
        """`count` of the `total` are transcribed (or skipped)."""
        now = time.monotonic()
        if 0 < count < self.total and now - self.last_line >= PROGRESS_LINE_SECONDS:
            self.last_line = now
            elapsed = now - self.started
            done, total = count, self.total
            if self.seconds_before is not None and self.seconds_before[count] > 0:
                done, total = float(self.seconds_before[count]), float(self.seconds_before[-1])
            left = _duration(elapsed * (total - done) / done)
            print(
                f"transcribed {count} of {plural(self.total, self.unit)} in {_duration(elapsed)}, "
                f"about {left} left",
                file=sys.stderr,
                flush=True,
            )


#: A recording this long takes a minute or more to transcribe on a small CPU: it is named as it starts.
LONG_RECORDING_SECONDS = 600.0


def say_long_recording(path: Path) -> None:
    """Name `path` and its length on stderr where it is long (a DJ mix, a concert, a podcast): its
    transcription takes minutes, and no other line comes until it ends. The length is its header's; a file
    whose header cannot be read says nothing here (its transcription names the cause)."""
    try:
        seconds = get_duration(path)
    except (AudioError, OSError):
        return
    if seconds >= LONG_RECORDING_SECONDS:
        print(f"transcribing {path} ({_duration(seconds)} of audio)", file=sys.stderr, flush=True)


def header_seconds(paths: Sequence[Path]) -> list[float]:
    """Each file's length from its header; 0 for one whose header cannot be read (its transcription names
    it)."""
    lengths = []
    for path in paths:
        try:
            lengths.append(get_duration(path))
        except (AudioError, OSError):
            lengths.append(0.0)
    return lengths


def _duration(seconds: float) -> str:
    """``"45 s"``, ``"3.5 min"``, ``"2.1 h"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


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
    labels = {segment.label for segment in song.read_segments(allow_gaps=True)}
    return f"{song.audio_path}: {silent_song_reason(song.audio_path)}" if labels - {NO_CHORD} else None


#: The pitch shifts of `data.pitch_shift` where the spare bins reach them: each of the 12 keys once.
ALL_KEYS_SHIFTS = tuple(range(-5, 7))


def training_pitch_shifts(data: ChordDataConfig, features: ChordFeatureConfig) -> tuple[int, ...]:
    """The semitone shifts a training window draws one of (uniformly): with `data.pitch_shift`, all 12 keys
    (`ALL_KEYS_SHIFTS`) where the features' spare bins reach 6 semitones, else as far as they reach, -k..+k
    for k = `features.max_pitch_shift` (2k + 1 keys; none at 0); without it, none: ``(0,)``."""
    reach = features.max_pitch_shift
    if not data.pitch_shift or reach == 0:
        return (0,)
    return ALL_KEYS_SHIFTS if reach >= 6 else tuple(range(-reach, reach + 1))


def pitch_shift_note(data: ChordDataConfig, features: ChordFeatureConfig) -> str | None:
    """The line a run prints where `data.pitch_shift` (all 12 keys) gets fewer keys, as the features' spare
    bins reach less than 6 semitones; None where it gets what it says."""
    reach = features.max_pitch_shift
    if not data.pitch_shift or reach >= 6:
        return None
    if features.kind == "mel":
        return (
            "data.pitch_shift: off, as features.kind mel has no semitone grid to shift along; pass "
            "--data.pitch_shift false to say so"
        )
    remedy = "pass --features.max_pitch_shift 6 for all 12, or --data.pitch_shift false"
    if reach == 0:
        return (
            f"data.pitch_shift: off, as features.max_pitch_shift 0 computes no bins to shift into; {remedy}"
        )
    return (
        f"data.pitch_shift: features.max_pitch_shift {reach} reaches {2 * reach + 1} of the 12 keys "
        f"(shifts -{reach}..+{reach}); {remedy}"
    )


def song_config(data: ChordDataConfig, features: ChordFeatureConfig, train: bool = True) -> ChordSongConfig:
    shifts = training_pitch_shifts(data, features)
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
        # Judged on the whole job's batch (every rank's share; the recipe's own processes or any launcher's):
        # the same batches as one process. A job with fewer windows than that keeps its short batch, or
        # each rank would drop its only one and train 0 steps.
        drop_last=len(train_set) >= batch_size * collectives.world_size(),
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
        for segment in song.read_segments(allow_gaps=allow_gaps):
            seconds[encode_label(segment.label).chord_type] += segment.end - segment.start
    return seconds


def balanced_class_weights(seconds: np.ndarray) -> np.ndarray:
    """Inverse square-root frequency weights, mean 1 over the classes present (absent classes get 0)."""
    present = seconds > 0
    weights = np.zeros_like(seconds)
    weights[present] = 1.0 / np.sqrt(seconds[present] / seconds[present].sum())
    return weights / weights[present].mean()


def class_weights_note(weights: Sequence[float]) -> str:
    """The run's line on `balanced_class_weights`: each chord type's weight, heaviest first, and how many
    weigh 0; without it a user with a few dim or aug chords could not see how much the loss lifts them."""
    present = sorted((-weight, index) for index, weight in enumerate(weights) if weight > 0)
    listed_weights = ", ".join(f"{CHORD_TYPES[index]} {-weight:.2f}" for weight, index in present)
    absent = len(weights) - len(present)
    zero = f"; {absent} of {len(weights)} types weigh 0 (not in the training songs)" if absent else ""
    return f"class-balanced chord-type loss (--loss.balance_classes), weights: {listed_weights}{zero}"
