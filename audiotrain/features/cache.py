"""Disk cache of computed features, one ``.npy`` per (audio file, feature configuration).

Layout: ``<root>/<config_key>/<path hash>-<identity hash>.npy`` plus ``<root>/<config_key>/config.json``
describing the configuration, and ``<root>/<config_key>/sources.jsonl``, the audio file of each path hash
(what ``prune`` reads). The identity is the file's status (``identity="stat"``, default: a cache hit opens no
audio, but for its header once per run where ``expected_frames`` is given) or its content hash
(``identity="content"``: survives copies and ``touch``, but reads the file's bytes on every lookup).

The status identity is (size, mtime, inode, ctime). Size and mtime alone miss a rewrite that keeps them
(a file restored with ``touch -r``, or copied over the old one with preserved times); the inode changes
when a file is replaced by another (an editor's save-and-rename, ``cp`` to a new file), and the ctime
(status change time) changes on every write and cannot be set by users. A file that is only read keeps
all four, so re-reading hits the cache. The price: a ``chmod``, ``chown``, rename or new hard link also
changes the ctime, and the next lookup recomputes once. A changed file gets a new identity; its stale entry
is deleted when the new one is written. A changed configuration gets a new ``config_key`` folder.

Entries are written to a temporary file in the same folder and renamed into place, so two processes
filling the cache at once never expose a partial file (the last writer wins; both wrote the same values).
Reads are memory-mapped. A cache that cannot be written (a read-only mount, someone else's folder) serves the
entries it has, and computes the others in memory, with one warning.

The cache marks its root with a ``.audiotrain-feature-cache`` file when it first writes there. The command
line (``python -m audiotrain cache ...``: ``info`` lists configurations with their settings, entries and
sizes, and the recipes' demo sets in ``<root>/../demo/chords`` and ``<root>/../demo/clap`` (and older
versions' CLAP sets in ``<root>/..``), marking what this version never reads; ``clear`` deletes them;
``prune`` deletes the entries whose audio file no longer exists, and what is so marked) works only on a
marked root (or the
folder above it, which the recipes' ``--data.cache_dir`` names): a folder of runs passed as ``--root`` by
mistake holds ``config.json`` files too, and once lost all of them to ``clear``. It deletes only the files the
cache and the demo writers name as theirs.

A process that uses the cache holds a shared ``flock`` on the marker (`hold_cache`: every `FeatureCache`,
and the chord recipe before it reads its demo sets); ``clear`` and ``prune`` refuse while another process
holds one, unless ``--force``.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import inspect
import io
import json
import os
import re
import sys
import textwrap
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from audiotrain._files import TMP_PREFIX, probe_writable, write_atomically
from audiotrain._suggesting_parser import SuggestingParser
from audiotrain._system import CACHE_DIR_ENV, NoHomeFolderError, cache_dir, home_folder
from audiotrain._text import byte_size, shell_word
from audiotrain.audio import AudioError

import mlx.core as mx
import numpy as np

try:
    import fcntl
except ImportError:  # Windows: no flock; `cache clear` cannot tell a cache in use there
    fcntl = None

__all__ = [
    "FeatureCache",
    "default_cache_root",
    "earlier_cache_note",
    "hold_cache",
    "hold_cache_for_the_run",
    "main",
    "releasing_the_runs_holds",
]


def default_cache_root() -> Path:
    """``features`` in `audiotrain._system.cache_dir` (``$AUDIOTRAIN_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/audiotrain``, else ``~/.cache/audiotrain``; the recipes' cache too)."""
    return cache_dir() / "features"


#: The file that marks a folder as a feature cache root (written with the first entry).
MARKER = ".audiotrain-feature-cache"


def is_cache_root(root: Path) -> bool:
    return (root / MARKER).is_file()


#: Opens a file itself, never the file a link in its place leads to (0 where the system has no such flag).
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _replaced_link(path: Path) -> bool:
    """Whether `path`, one of the cache's own files, was a link, now removed (what it led to left as it was),
    with a warning: a cache shared between users never writes through a link another user planted there (a
    damaged cache), and the caller writes a file of its own in its place."""
    try:
        target = os.readlink(path)
    except OSError:  # (not a link, or gone)
        return False
    with suppress(FileNotFoundError):  # (another process replaced it first)
        path.unlink()
    warnings.warn(
        f"the feature cache's {path} was a link to {target}: the cache writes nothing through a link, so it "
        f"was replaced by a file of its own ({target} is left as it was)",
        stacklevel=3,
    )
    return True


def _mark_root(root: Path) -> bool:
    """Write `root`'s marker where it is missing (or a link); returns whether it did."""
    marker = root / MARKER
    if _replaced_link(marker) or not marker.exists():
        root.mkdir(parents=True, exist_ok=True)
        text = "audiotrain feature cache: `python -m audiotrain cache clear` may delete its entries\n"
        write_atomically(marker, lambda handle: handle.write(text.encode()))
        return True
    return False


#: The cache roots this process uses: the descriptor of the marker file, which holds a shared lock, and how
#: many holds share it (`hold_cache`).
_IN_USE: dict[Path, list[int]] = {}
_IN_USE_LOCK = threading.Lock()
#: Holds given up and not yet counted off `_IN_USE` (`_count_off_released_holds`). A `FeatureCache`'s hold is
#: given up by its finalizer, which the garbage collector may run inside any allocation, also one made while
#: this thread holds `_IN_USE_LOCK` in `hold_cache`: taking the lock there waited for ever (a test run's
#: worker hung so). The finalizer only appends here; whoever holds the lock next counts it off.
_RELEASED: list[Path] = []
#: The holds a recipe's run takes (`hold_cache_for_the_run`) inside its `releasing_the_runs_holds` block,
#: released when that block ends.
_RUN_HOLDS: contextvars.ContextVar[contextlib.ExitStack | None] = contextvars.ContextVar(
    "cache_run_holds", default=None
)


def hold_cache(root: str | Path, create: bool = False) -> Callable[[], None] | None:
    """Mark the cache at `root` as in use by this process: a shared ``flock`` on its marker file, until the
    function returned is called (or the process ends). ``python -m audiotrain cache clear`` and ``prune``
    refuse while another process holds one (unless ``--force``): a clear under a run once deleted the demo
    songs its final evaluation was about to read.

    A `FeatureCache` holds its root while it exists, from when it is made (or writes the marker); the chord
    recipe holds it before it renders or reads its demo sets there (`create`: mark the root first), for the
    rest of the run. Returns None, holding nothing, without ``flock`` (Windows) or where the marker can be
    neither made nor opened (a read-only cache without one: nothing there to clear)."""
    if fcntl is None:
        return None
    root = Path(root).absolute()
    try:
        with _IN_USE_LOCK:
            if root in _IN_USE:
                _IN_USE[root][1] += 1
            else:
                try:
                    if create:
                        _mark_root(root)
                    fd = os.open(root / MARKER, os.O_RDONLY | _NO_FOLLOW)
                except OSError:  # (a link there is the first write's to replace: `_mark_root`)
                    return None
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH)  # (waits while a `cache clear` deletes: seconds)
                except OSError:  # a file system without locks
                    os.close(fd)
                    return None
                _IN_USE[root] = [fd, 1]
    finally:
        _count_off_released_holds()  # (those a finalizer gave up while this thread held the lock)
    released: list[bool] = []  # (not a threading.Event: its set() takes a lock of its own)

    def release() -> None:
        if released:
            return
        released.append(True)
        _RELEASED.append(root)
        _count_off_released_holds()

    return release


def _hold_the_new_marker(root: Path) -> None:
    """Move this process's hold on `root` (where it has one) to the marker just written there. A cache
    deleted under a run (``rm -rf``) and marked again by its next entry was held through the deleted marker
    only: ``cache clear`` saw no run using it and deleted the entries under the run."""
    if fcntl is None:
        return
    try:
        with _IN_USE_LOCK:
            held = _IN_USE.get(Path(root).absolute())
            if held is None:
                return
            try:
                fd = os.open(Path(root) / MARKER, os.O_RDONLY | _NO_FOLLOW)
            except OSError:
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)
            except OSError:
                os.close(fd)
                return
            os.close(held[0])
            held[0] = fd
    finally:
        _count_off_released_holds()


def _count_off_released_holds() -> None:
    """Count the holds in `_RELEASED` off `_IN_USE`, closing a root's marker (its ``flock``) with its last
    hold; never waits for `_IN_USE_LOCK`: where another thread (or this one, further up its stack) holds it,
    that holder counts them off when it is done (`hold_cache` calls this after its block)."""
    while _RELEASED:
        if not _IN_USE_LOCK.acquire(blocking=False):
            return
        try:
            while _RELEASED:
                held = _IN_USE.get(_RELEASED[-1])
                root = _RELEASED.pop()
                if held is not None:
                    held[1] -= 1
                    if held[1] == 0:
                        os.close(_IN_USE.pop(root)[0])  # (releases the lock)
        finally:
            _IN_USE_LOCK.release()


@contextlib.contextmanager
def releasing_the_runs_holds() -> Iterator[None]:
    """A recipe's run (the chord recipe's `run_training` and ``cv``, the CLAP recipe's run): the holds that
    `hold_cache_for_the_run` and the `FeatureCache` objects made inside it take are released when it ends,
    so that ``cache clear`` works again from another process while the one that ran it lives on (a
    notebook, a search calling the recipe)."""
    with contextlib.ExitStack() as holds:
        token = _RUN_HOLDS.set(holds)
        try:
            yield
        finally:
            _RUN_HOLDS.reset(token)


def hold_cache_for_the_run(root: str | Path, create: bool = False) -> None:
    """`hold_cache(root, create)` until the `releasing_the_runs_holds` block in progress ends; outside one
    (a recipe's function called on its own), for the rest of the process."""
    release = hold_cache(root, create)
    if release is not None:
        _release_with_the_run(release)


def _release_with_the_run(release: Callable[[], object]) -> None:
    """Call `release` when the `releasing_the_runs_holds` block in progress ends (outside one: never)."""
    holds = _RUN_HOLDS.get()
    if holds is not None:
        holds.callback(release)


@contextlib.contextmanager
def _others_using(root: Path) -> Iterator[bool]:
    """While inside, hold the cache at `root` exclusively where no other process holds it (`hold_cache`);
    yields whether one does. This process's own hold does not count: the clear is its own."""
    marker = root / MARKER
    if fcntl is None or not marker.is_file():
        yield False
        return
    own = _IN_USE.get(root.absolute(), [None])[0]
    if own is not None:
        fcntl.flock(own, fcntl.LOCK_UN)
    fd = os.open(marker, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            yield False
        except BlockingIOError:
            yield True
    finally:
        os.close(fd)  # (releases the exclusive lock)
        if own is not None:
            fcntl.flock(own, fcntl.LOCK_SH)


def _hash(text: str | bytes, n: int) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()[:n]


#: What the cache writes into a configuration folder: entries ``<24 hex>-<12 hex>.npy``, ``config.json``,
#: and ``.tmp-*`` files that a write interrupted by a crash can leave. Clearing deletes these and nothing
#: else, so a mistyped ``--root`` cannot delete a user's files.
_ENTRY_NAME = re.compile(r"[0-9a-f]{24}-[0-9a-f]{12}\.npy")


def _entries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if _ENTRY_NAME.fullmatch(p.name) and p.is_file()]


#: A temporary file this old is a killed write's (SIGKILL, power loss: no handler removed it), never a live
#: one: an entry is written in well under a second. A run removes such files from its configuration folder;
#: ``cache prune`` removes every one where no other process uses the cache, and these where one does.
STALE_TMP_SECONDS = 3600


def _temporary_files(folder: Path, older_than: float | None = None) -> list[Path]:
    """The ``.tmp-*`` files in `folder` (a killed write's), only those last written over `older_than`
    seconds ago where it is given."""
    now = time.time()
    found = []
    for p in folder.iterdir():
        if not p.name.startswith(TMP_PREFIX):
            continue
        with suppress(OSError):  # (one renamed into place meanwhile)
            if p.is_file() and (older_than is None or now - p.stat().st_mtime > older_than):
                found.append(p)
    return found


#: A configuration folder's record of the audio file each entry belongs to: one JSON line ``[path hash, path]``
#: appended per entry written (entries are named by a hash of the path). What ``prune`` reads to find the
#: entries whose audio no longer exists.
SOURCES = "sources.jsonl"


def _cache_files(folder: Path) -> list[Path]:
    """Every file in ``folder`` that the cache wrote (entries, config.json, the sources, temporary files)."""
    return [
        p
        for p in folder.iterdir()
        if p.is_file()
        and (
            _ENTRY_NAME.fullmatch(p.name)
            or p.name in ("config.json", SOURCES)
            or p.name.startswith(TMP_PREFIX)
        )
    ]


def _record_source(folder: Path, prefix: str, path: Path) -> None:
    """Append an entry's audio file to the folder's `SOURCES` (one short ``O_APPEND`` write: whole lines
    from processes writing at once). Where it cannot be written the entry is kept all the same; ``prune``
    then does not know its audio and leaves it. A link in its place is replaced, never written through."""
    line = (json.dumps([prefix, str(path)]) + "\n").encode()
    sources = folder / SOURCES
    with suppress(OSError):
        _replaced_link(sources)
        fd = os.open(sources, os.O_WRONLY | os.O_CREAT | os.O_APPEND | _NO_FOLLOW, 0o666)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def _read_sources(folder: Path) -> dict[str, str]:
    """Path hash -> audio file, from the folder's `SOURCES` (the latest line of each hash; a damaged line is
    passed over)."""
    sources: dict[str, str] = {}
    try:
        lines = (folder / SOURCES).read_bytes().splitlines()
    except OSError:
        return sources
    for line in lines:
        try:
            prefix, path = json.loads(line)
        except (ValueError, TypeError):
            continue
        if isinstance(prefix, str) and isinstance(path, str):
            sources[prefix] = path
    return sources


def _is_configuration(folder: Path) -> bool:
    return folder.is_dir() and ((folder / "config.json").is_file() or bool(_entries(folder)))


def _file_sizes(files: list[Path]) -> tuple[int, int]:
    """How many of `files` are still there, and their bytes. A run deletes an entry as it writes the new
    state of its song (and renames its temporary files into place): one listed a moment ago and gone now is
    not counted, where its `stat` ended `cache info`, and a run's report, in a FileNotFoundError."""
    count = size = 0
    for path in files:
        try:
            size += path.stat().st_size
        except FileNotFoundError:
            continue
        count += 1
    return count, size


def _dir_stats(folder: Path) -> tuple[int, int]:
    return _file_sizes(_entries(folder))


def _remove(path: Path) -> None:
    """Delete a damaged or outdated entry where that is possible: in a folder this user may not write, it
    stays (and is computed in memory again on every lookup)."""
    with suppress(OSError):
        path.unlink()


def _delete_files(folder: Path, files: list[Path]) -> tuple[list[Path], list[str]]:
    """Delete ``files`` of ``folder`` (then the folders they were in, up to ``folder``, where that leaves
    them empty).

    Returns the files deleted and a message per file that could not be deleted.
    """
    deleted, failures = [], []
    for file in files:
        try:
            file.unlink()
        except FileNotFoundError:
            continue  # another process cleared or replaced it
        except OSError as error:
            failures.append(f"{file}: {error.strerror or error}")
            continue
        deleted.append(file)
    # Deepest first (a CLAP demo set's clips/, then the set): one that is not empty stays, with the files
    # the cache did not write or could not delete.
    emptied = {parent for file in deleted for parent in file.parents if parent.is_relative_to(folder)}
    for parent in sorted(emptied | {folder}, key=lambda path: len(path.parts), reverse=True):
        with suppress(OSError):
            parent.rmdir()
    return deleted, failures


def _delete_configuration(folder: Path) -> tuple[int, list[str]]:
    """Delete the cache's files in ``folder``: the number of entries deleted, and the failures."""
    deleted, failures = _delete_files(folder, _cache_files(folder))
    return sum(_ENTRY_NAME.fullmatch(p.name) is not None for p in deleted), failures


@dataclass(frozen=True)
class _DemoSets:
    """One recipe's demo sets beside the feature cache: where they are, each set's files, and the sets this
    version no longer reads (made by an older generator, or named otherwise)."""

    title: str  # how `cache info` heads them
    unit: str  # what their audio files are: songs, clips
    folder: Path
    sets: dict[Path, list[Path]]
    outdated: frozenset[Path] = frozenset()

    def audio_files(self, files: list[Path]) -> int:
        return sum(p.suffix in (".wav", ".flac") for p in files)


#: How `cache info` marks what this version never reads (and `cache prune` deletes).
OUTDATED = "(not read by this version)"


def _demo_sets(root: Path) -> list[_DemoSets]:
    """The recipes' demo sets beside the feature cache at ``root`` (``<cache dir>/features``): the chord
    recipe's songs in ``<cache dir>/demo/chords``, the CLAP recipe's clips in ``<cache dir>/demo/clap``, and
    the CLAP sets that versions before ``demo/clap`` wrote into ``<cache dir>`` itself (all outdated)."""
    from audiotrain.datasets import caption_demo, chord_demo  # (the command's alone)

    found = []
    for title, unit, module, current in (
        ("demo song sets", "songs", chord_demo, _current_chord_set),
        ("CLAP demo clip sets", "clips", caption_demo, _current_clap_set),
    ):
        folder = root.parent / module.DEMO_FOLDER
        sets = {p: module.demo_set_files(p) for p in sorted(folder.iterdir())} if folder.is_dir() else {}
        sets = {p: files for p, files in sets.items() if files}
        outdated = frozenset(p for p in sets if current(p) is False)
        found.append(_DemoSets(title, unit, folder, sets, outdated))
    legacy = {p: caption_demo.demo_set_files(p) for p in sorted(root.parent.glob("caption_demo-*"))}
    legacy = {p: files for p, files in legacy.items() if files}
    found.append(
        _DemoSets("CLAP demo clip sets of older versions", "clips", root.parent, legacy, frozenset(legacy))
    )
    return found


def _current_chord_set(folder: Path) -> bool | None:
    """Whether this version reads the chord demo set in `folder` (``<split>-<name>``): its name is the one
    its manifest's settings get now (the generator's version is in it). None without a readable manifest
    (a set being rendered, or cut short: the next run renders it)."""
    from audiotrain.datasets import chord_demo

    try:
        params = json.loads((folder / chord_demo.MANIFEST).read_text(encoding="utf-8"))["params"]
        params = {k: v for k, v in params.items() if k != "generator_version"}
        for name in ("timbres", "tempo_range", "noise_db", "tuning_cents"):  # (JSON lists, tuples here)
            if isinstance(params.get(name), list):
                params[name] = tuple(params[name])
        config = chord_demo.DemoConfig(**params)
    except (OSError, ValueError, KeyError, TypeError):
        return None if not (folder / chord_demo.MANIFEST).is_file() else False
    split = folder.name.partition("-")[0]
    return folder.name == f"{split}-{chord_demo.demo_set_name(config)}"


def _current_clap_set(folder: Path) -> bool | None:
    """Whether this version reads the CLAP demo set in `folder`: its name is the one its ``demo.json``'s
    settings get now (the generator's version is in it). None without a readable ``demo.json``."""
    from audiotrain.datasets import caption_demo

    try:
        recorded = json.loads((folder / "demo.json").read_text(encoding="utf-8"))
        known = {f.name for f in dataclasses.fields(caption_demo.CaptionDemoConfig)}
        config = caption_demo.CaptionDemoConfig(**{k: v for k, v in recorded.items() if k in known})
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    return folder.name == caption_demo.demo_set_name(config)


def _outdated_configuration(folder: Path) -> bool:
    """Whether the feature configuration in `folder` is one this version never reads: a chord recipe's
    (``chord_cqt``) whose settings and feature-code version give another key now (written before
    ``features_version`` existed, or by older feature code). Other kinds are a user's own: never marked."""
    try:
        settings = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(settings, dict) or settings.get("kind") != "chord_cqt":
        return False
    from audiotrain.recipes.chords.config import ChordFeatureConfig  # (the command's alone)

    values = {k: v for k, v in settings.items() if k not in ("kind", "features_version")}
    try:
        return ChordFeatureConfig(**values).key() != folder.name
    except (TypeError, ValueError):  # a setting this version does not have
        return True


#: How a `FeatureCache` that cannot be written is moved, as its warning says (a caller that knows the
#: setting that chose the folder passes its own).
UNWRITABLE_ADVICE = (
    f"point {CACHE_DIR_ENV} (in the chord recipe: --data.cache_dir) at a writable folder to keep them"
)


class FeatureCache:
    """Features of audio files, computed once and memory-mapped afterwards.

    Parameters
    ----------
    root : str or Path
        Cache folder (created on first write).
    config_key : str or object with ``key()`` (and optionally ``to_dict()``)
        Names the feature configuration, e.g. ``CQTConfig(...)`` or ``config.key()``. Different
        configurations never share entries.
    identity : {"stat", "content"}
        How a file is recognised: size, mtime, inode and ctime (no audio read on a hit), or a hash of its
        bytes.
    check : callable, optional
        ``check(array) -> bool``: whether an entry read from disk can be this configuration's features
        (shape, finite values); one that fails is computed again. Each entry is checked once per instance.
    expected_frames : callable, optional
        ``expected_frames(path) -> int | None``: the frames (last axis) the features of the audio file
        ``path`` have, from its header (no decoding; None: not known from it); an entry with another count
        (a valid ``.npy`` of part of the song) is computed again. Read with `check`, once per entry per
        instance: the first hit of an entry opens its audio file's header, not its samples.
    unwritable_advice : str
        The end of the warning given when ``root`` cannot be written (features are then computed in memory
        and not kept): what the user can do about it, by default pointing ``AUDIOTRAIN_CACHE_DIR`` at a
        writable folder.

    Attributes
    ----------
    hits, misses : int
        Lookups served from disk, and lookups that called ``compute_fn``.
    replaced : int
        Entries that were read whole but failed ``check`` (a foreign writer, bit rot), or were links (not
        read: a link in the cache leads to another's file), computed again; counted in ``misses`` too.

    The counts are of the lookups made through this object. DataLoader thread workers share it; process
    workers get pickled copies, each counting its own lookups in its own process, so this object's counts
    leave theirs out (the entries are shared: they are files). `report()` says so once a copy was made.
    """

    def __init__(
        self,
        root: str | Path,
        config_key,
        identity: str = "stat",
        check: Callable[[np.ndarray], bool] | None = None,
        expected_frames: Callable[[Path], int | None] | None = None,
        unwritable_advice: str = UNWRITABLE_ADVICE,
    ):
        if identity not in ("stat", "content"):
            raise ValueError(f"identity must be 'stat' or 'content', got {identity!r}")
        if config_key is None:
            raise ValueError(
                "config_key is None: name the feature configuration (a str, or a config with key() such as "
                "CQTConfig(...)); every configuration named None would share one folder of entries"
            )
        self.config = config_key.to_dict() if hasattr(config_key, "to_dict") else None
        key = config_key.key() if hasattr(config_key, "key") else str(config_key)
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"config_key must be a non-empty folder name, got {key!r}")
        self.root = Path(root)
        self.config_key = key
        self.folder = self.root / key
        self.identity = identity
        self.check = check
        self.expected_frames = expected_frames
        self.hits = 0
        self.misses = 0
        self.replaced = 0
        self._checked: set[Path] = set()  # entries that passed `check`
        # Path hash -> identities of the folder's entries, listed once at the first entry written
        # (`_older_entries`): what an entry written replaces, without listing the folder for each.
        self._index: dict[str, tuple[str, ...]] | None = None
        self._index_lock = threading.Lock()
        # (inode of the folder's `SOURCES`, the path hashes it records), read at the first entry written.
        self._recorded: tuple[int | None, set[str]] | None = None
        self.unwritable: str | None = None  # why an entry could not be written, once one could not
        self.unwritable_advice = unwritable_advice  # the end of the warning that says so
        self._count_lock = threading.Lock()  # thread workers share the counters; `+= 1` is not atomic
        self._copied = False  # pickled or copied: the copies count their own lookups
        self._held: weakref.finalize | None = None
        self._hold()  # (a root not marked yet is held once the first entry marks it)
        with suppress(OSError):  # (one listing; a folder not made yet, or not ours to write: left as it is)
            for tmp in _temporary_files(self.folder, older_than=STALE_TMP_SECONDS):
                tmp.unlink()

    def __getstate__(self) -> dict:
        # Pickled for DataLoader process workers (or deep-copied): the copy counts its lookups in its own
        # process, which report() must say, as this object's counts no longer cover them.
        self._copied = True
        state = dict(self.__dict__)
        del state["_count_lock"]
        del state["_index_lock"]
        state["_held"] = None  # (this object's hold; a copy that writes the marker takes its own)
        state["_index"] = None  # (a copy lists the folder itself, once: it may be large to send)
        state["_recorded"] = None  # (and reads the sources itself)
        return state

    def _hold(self) -> None:
        """Hold the root (`hold_cache`) while this object exists, once its marker is there."""
        if self._held is None or not self._held.alive:  # (a run's end released it: used again after)
            release = hold_cache(self.root)
            if release is not None:
                self._held = weakref.finalize(self, release)
                # Made in a recipe's run: released when the run ends too, where a reference cycle of the
                # run (the Trainer, its loaders, their dataset) would keep this object until the next gc.
                _release_with_the_run(self._held)

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._count_lock = threading.Lock()
        self._index_lock = threading.Lock()

    def _count(self, name: str) -> None:
        with self._count_lock:
            setattr(self, name, getattr(self, name) + 1)

    def _entry(self, path: Path) -> tuple[str, str]:
        try:
            stat = path.stat()
        except FileNotFoundError as error:
            raise AudioError(path, "missing") from error
        # The name's bytes, as the file system holds them: a non-ASCII name under a non-UTF-8 locale is text
        # with surrogate escapes, which UTF-8 cannot encode (and the same bytes in any locale).
        prefix = _hash(os.fsencode(path.resolve()), 24)
        if self.identity == "stat":
            ident = _hash(f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}:{stat.st_ctime_ns}", 12)
        else:
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            ident = digest.hexdigest()[:12]
        return prefix, ident

    def path_for(self, path: str | Path) -> Path:
        """Where the entry for ``path`` (in its current state) lives."""
        prefix, ident = self._entry(Path(path))
        return self.folder / f"{prefix}-{ident}.npy"

    def get_or_compute(self, path: str | Path, compute_fn: Callable) -> np.ndarray:
        """The cached features of ``path``, or ``compute_fn``'s result, stored first.

        Parameters
        ----------
        path : str or Path
            The audio file the features belong to.
        compute_fn : callable
            ``compute_fn(path)`` (or ``compute_fn()``) returning an array (numpy or mlx; mlx bfloat16 is stored
            as float32, which holds it exactly).

        Returns
        -------
        np.ndarray
            Read-only and memory-mapped on a hit; on a miss the freshly stored entry, memory-mapped.
        """
        path = Path(path)
        prefix, ident = self._entry(path)
        target = self.folder / f"{prefix}-{ident}.npy"
        array, wrong = self._stored(path, target)
        if array is not None:
            self._count("hits")
            return array
        if wrong == "damaged":
            _remove(target)  # a damaged entry (e.g. disk full) is recomputed
        elif wrong:  # a link, or a valid .npy but not these features: computed again and replaced
            self._count("replaced")
        self._count("misses")
        wants_path = any(
            p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
            for p in inspect.signature(compute_fn).parameters.values()
        )
        value = compute_fn(path) if wants_path else compute_fn()
        returned = type(value).__name__
        if isinstance(value, np.ndarray) and value.dtype == object:
            # ("returned ndarray ...; it must return an array" contradicted itself)
            returned = "an ndarray of dtype object (not numbers)"
        if isinstance(value, mx.array) and value.dtype == mx.bfloat16:
            value = value.astype(mx.float32)  # numpy (and .npy) has no bfloat16; float32 holds it exactly
        try:
            value = np.asarray(value)
        except ValueError:  # ragged lists: "setting an array element with a sequence"
            value = np.empty(0, dtype=object)
        if value.dtype == object:
            # None (a compute_fn without `return`) or a dict met np.save's "Object arrays cannot be saved
            # when allow_pickle=False", naming neither compute_fn nor the file.
            raise TypeError(
                f"compute_fn returned {returned} for {path}; it must return the features as an array "
                "(numpy or mlx)"
            )
        try:
            self._write(target, value)
        except OSError as error:
            self._warn_unwritable(error)
            return value  # the features themselves did not need the disk
        if self._unrecorded(prefix):
            _record_source(self.folder, prefix, path.resolve())
        for stale in self._older_entries(prefix, ident):
            _remove(stale)  # the same file in an earlier state
        return np.load(target, mmap_mode="r")

    def _unrecorded(self, prefix: str) -> bool:
        """Whether the folder's `SOURCES` lacks the audio file of path hash `prefix` (then counted as
        recorded). One line was appended per entry written, the same line for each new state of a file: a
        ``chmod -R`` or ``touch`` of a data folder (every song computed again) grew it by a line per song,
        with no end and not in `cache info`'s sizes. Read once, and again where the file was replaced (`prune`
        rewrites it; a cache deleted under the run makes a new one)."""
        try:
            inode = (self.folder / SOURCES).stat().st_ino
        except OSError:
            inode = None
        with self._index_lock:
            if self._recorded is None or self._recorded[0] != inode:
                self._recorded = (inode, set(_read_sources(self.folder)) if inode is not None else set())
            if prefix in self._recorded[1]:
                return False
            self._recorded[1].add(prefix)
            return True

    def _older_entries(self, prefix: str, ident: str) -> list[Path]:
        """The entries of the audio file of path hash `prefix` other than `ident` (the file in an earlier
        state), now that `ident`'s is written. The folder is listed once, at the first entry this object
        writes, and the index kept since: a listing per entry made a first pass over N songs cost N²/2 name
        matches. Entries another process writes meanwhile are not in it: an earlier state's entry that one
        writes after the listing stays (until `cache prune`, or the next run's first write)."""
        with self._index_lock:
            if self._index is None:
                index: dict[str, tuple[str, ...]] = {}
                with suppress(OSError), os.scandir(self.folder) as found:
                    for entry in found:
                        if _ENTRY_NAME.fullmatch(entry.name):
                            name = entry.name
                            index[name[:24]] = (*index.get(name[:24], ()), name[25:37])
                self._index = index
            older = [other for other in self._index.get(prefix, ()) if other != ident]
            self._index[prefix] = (ident,)
        return [self.folder / f"{prefix}-{other}.npy" for other in older]

    def holds(self, path: str | Path) -> bool:
        """Whether the cache holds features of ``path`` (in its current state) that a lookup serves: an entry
        that is damaged, a link, or not these features (`check`, `expected_frames`) is computed again."""
        path = Path(path)
        return self._stored(path, self.path_for(path))[0] is not None

    def _stored(self, path: Path, target: Path) -> tuple[np.ndarray | None, str]:
        """(the entry `target` of ``path``, memory-mapped, ""), or (None, what is wrong with it: "" where
        there is none, "link", "damaged" or "not these features")."""
        try:
            if target.is_symlink():
                # Not read: the cache writes no links, so one is another's file (a planted one, another
                # song's features); computed again, and the link replaced by an entry of its own, its target
                # untouched.
                return None, "link"
            if not target.exists():
                return None, ""
        except PermissionError:
            # A configuration folder another user made under umask 077 in a shared cache: a miss, computed
            # in memory (its write fails too, with the warning that says so), not a failed run.
            return None, ""
        try:
            array = np.load(target, mmap_mode="r")
        except (ValueError, OSError, EOFError):
            return None, "damaged"
        if target in self._checked or self._can_be_features_of(path, array):
            self._checked.add(target)  # (reading every value once per run, not on every lookup)
            return array, ""
        return None, "not these features"

    def _can_be_features_of(self, path: Path, array: np.ndarray) -> bool:
        """Whether an entry read from disk passes `check` and has the frames `expected_frames` gives."""
        if self.check is not None and not self.check(array):
            return False
        frames = self.expected_frames(path) if self.expected_frames is not None else None
        return frames is None or (array.ndim > 0 and array.shape[-1] == frames)

    def can_keep_new_entries(self) -> bool:
        """Whether the cache's folder (or, not made yet, the folder above where it will be) takes a new file:
        tried before a caller says the features it computes are kept. Where it does not, the warning of a
        failed write is given now, and `unwritable` says why."""
        if self.unwritable is None:
            _, error = probe_writable(self.folder)
            if error is not None:
                self._warn_unwritable(error)
        return self.unwritable is None

    def _warn_unwritable(self, error: OSError) -> None:
        if self.unwritable is None:
            self.unwritable = error.strerror or str(error)
            warnings.warn(
                f"the feature cache at {self.folder} cannot be written ({self.unwritable}): features "
                f"it lacks are computed in memory and not kept; {self.unwritable_advice}",
                stacklevel=3,
            )

    def _write(self, target: Path, value: np.ndarray) -> None:
        if _mark_root(self.root):
            _hold_the_new_marker(self.root)
        self._hold()
        self.folder.mkdir(parents=True, exist_ok=True)
        config_file = self.folder / "config.json"
        if self.config is not None and (_replaced_link(config_file) or not config_file.exists()):
            text = json.dumps(self.config, indent=2, sort_keys=True)
            write_atomically(config_file, lambda handle: handle.write(text.encode()))
        # Encoded in memory, then written: numpy writing into the file says only "25740 requested and 21472
        # written" when the disk fills up, a plain write the OSError (No space left on device).
        encoded = io.BytesIO()
        np.save(encoded, value, allow_pickle=False)
        # Atomic: readers see the old state or the whole new file.
        write_atomically(target, lambda handle: handle.write(encoded.getbuffer()))

    def report(self) -> dict:
        """``{"root", "config_key", "entries", "bytes", "hits", "misses", "replaced", "unwritable"}`` for
        this configuration, and a ``"note"`` once the cache was copied (pickled for DataLoader process
        workers): ``entries`` and ``bytes`` count the folder, the others this object's lookups only;
        ``unwritable`` is why an entry could not be written (its features were computed in memory), or None."""
        try:
            entries, size = _dir_stats(self.folder) if self.folder.is_dir() else (0, 0)
        except PermissionError:  # (another user's folder that cannot be listed: it holds none of ours)
            entries, size = 0, 0
        report = {
            "root": str(self.root),
            "config_key": self.config_key,
            "entries": entries,
            "bytes": size,
            "hits": self.hits,
            "misses": self.misses,
            "replaced": self.replaced,
            "unwritable": self.unwritable,
        }
        if self._copied:
            report["note"] = (
                "hits, misses and replaced count the lookups made through this object only: it was copied "
                "(pickled for DataLoader process workers), and each copy counts its own in its process; "
                "worker_type='thread' shares one object and counts them all"
            )
        return report

    def clear(self) -> int:
        """Delete this configuration's entries (only files the cache wrote); returns how many were deleted.

        Raises
        ------
        OSError
            If some could not be deleted (permissions, read-only file system); the message lists them.
        """
        if not self.folder.is_dir():
            return 0
        with self._index_lock:
            self._index = None  # (listed again at the next entry written)
            self._recorded = None
        deleted, failures = _delete_configuration(self.folder)
        if failures:
            raise OSError(f"could not delete {len(failures)} cache files: " + "; ".join(failures[:5]))
        return deleted


def _counted(count: int, plural: str) -> str:
    """``"1 entry"``, ``"2 entries"``, ``"1 set"``: `count` and the noun `plural` (ending in -s or -ies), in
    the singular for one."""
    if count == 1:
        plural = plural[:-3] + "y" if plural.endswith("ies") else plural[:-1]
    return f"{count} {plural}"


def _settings_line(folder: Path) -> tuple[str, str]:
    """A configuration's kind and its settings, from the ``config.json`` it was created with."""
    try:
        settings = json.loads((folder / "config.json").read_text())
    except FileNotFoundError:
        return "", ""
    except (OSError, json.JSONDecodeError):
        return "?", ""
    if not isinstance(settings, dict):
        return "?", ""
    kind = str(settings.pop("kind", ""))
    return kind, ", ".join(f"{name}={value}" for name, value in sorted(settings.items()))


def _info(root: Path, default_root: bool = False) -> int:
    folders = sorted(p for p in root.iterdir() if _is_configuration(p)) if root.is_dir() else []
    total_entries = total_bytes = outdated = 0
    temporary: list[Path] = []
    # The hints name the cache listed: a bare `cache prune` would act on the default one.
    prune = "cache prune" if default_root else f"cache prune --root {shell_word(str(root))}"
    print(f"feature cache at {root}")
    # (a key longer than the column, as the README's "logmel-sr22050-hop441-v1", moved its counts right)
    width = max([20] + [len(folder.name) for folder in folders])
    for folder in folders:
        entries, size = _dir_stats(folder)
        total_entries += entries
        total_bytes += size
        temporary += _temporary_files(folder)
        kind, settings = _settings_line(folder)
        mark = f" {OUTDATED}" if _outdated_configuration(folder) else ""
        outdated += bool(mark)
        noun = "entry" if entries == 1 else "entries"
        print(f"  {folder.name:<{width}} {kind:<6} {entries:>8} {noun:<7} {byte_size(size):>12}{mark}")
        if settings:
            print(textwrap.fill(settings, width=110, initial_indent=" " * 6, subsequent_indent=" " * 6))
    print(
        f"total: {_counted(len(folders), 'configurations')}, {_counted(total_entries, 'entries')}, "
        f"{byte_size(total_bytes)}"
    )
    temporaries, size = _file_sizes(temporary)  # (a write's renamed into place since: not counted)
    if temporaries:
        print(
            f"  and {_counted(temporaries, 'temporary files')} ({byte_size(size)}) that writes being made or "
            f"killed left (.tmp-*): `{prune}` deletes those no write is still making"
        )
    for demo in _demo_sets(root):
        if not demo.sets:
            continue
        print(f"{demo.title} at {demo.folder}")
        total_files = total_bytes = 0
        for folder, files in demo.sets.items():
            count, size = demo.audio_files(files), _file_sizes(files)[1]
            total_files += count
            total_bytes += size
            mark = f" {OUTDATED}" if folder in demo.outdated else ""
            print(f"  {folder.name}  {_counted(count, demo.unit)} {byte_size(size)}{mark}")
        outdated += len(demo.outdated)
        print(
            f"total: {_counted(len(demo.sets), 'sets')}, {_counted(total_files, demo.unit)}, {byte_size(total_bytes)}"
        )
    if outdated:
        them = "it" if outdated == 1 else "them"
        print(
            f"{outdated} {'configuration or set' if outdated == 1 else 'configurations and sets'} {OUTDATED}: "
            f"older feature code or demo generators made {them}; `{prune}` deletes {them}"
        )
    note = earlier_cache_note() if default_root else None
    if note:
        print(note)
    return 0


#: Where audiotrain kept its cache before it followed ``XDG_CACHE_HOME`` (and where versions before
#: ``demo/clap`` wrote the CLAP demo whatever ``AUDIOTRAIN_CACHE_DIR`` said).
def earlier_cache_folder() -> Path | None:
    """``~/.cache/audiotrain``, or None where this process has no home folder."""
    home = home_folder()
    return None if home is None else home / ".cache" / "audiotrain"


def _holds_a_cache(folder: Path) -> bool:
    """Whether `folder` (a package cache folder) holds anything audiotrain wrote there."""
    return (
        is_cache_root(folder / "features")
        or any((folder / "demo").glob("*/*"))
        or any(folder.glob("caption_demo-*"))
    )


def earlier_cache_note(current: Path | None = None, quiet_unless_empty: bool = False) -> str | None:
    """A line saying where another cache is, when it is not the cache folder in use (`current`, default
    `audiotrain._system.cache_dir`): ``~/.cache/audiotrain``, which versions before they followed
    ``XDG_CACHE_HOME`` used, and the CLAP demo used whatever ``AUDIOTRAIN_CACHE_DIR`` said. Upgraded with
    XDG_CACHE_HOME set, a user's runs rendered every demo song and computed every feature again in a new
    folder, and the old one (hundreds of MB) stayed, unlisted and never cleared. With `quiet_unless_empty`
    (a run's start) only while `current` holds no cache yet: said once, before the first run fills it.

    With ``AUDIOTRAIN_CACHE_DIR`` set, ``~/.cache/audiotrain`` is this version's own default, which the user
    chose another folder over: a run says nothing of it (every run of a job with a fresh folder said it was
    "an earlier audiotrain's cache"), and ``cache`` names it as another cache folder."""
    current = cache_dir() if current is None else current
    earlier = earlier_cache_folder()
    if earlier is None:
        return None
    try:
        if earlier.resolve() == current.resolve() or not _holds_a_cache(earlier):
            return None
        if quiet_unless_empty and _holds_a_cache(current):
            return None
    except OSError:
        return None
    if not is_cache_root(earlier / "features") and not any((earlier / "demo").glob("*/*")):
        return (
            f"note: {earlier} holds CLAP demo sets an earlier audiotrain wrote ({earlier}/caption_demo-*), which "
            "this version never reads: delete them to free their space"
        )
    delete = (
        f"`python -m audiotrain cache clear --root {earlier}` deletes it"
        if is_cache_root(earlier / "features")
        else "delete the folder to free its space"
    )
    if os.environ.get(CACHE_DIR_ENV, "").strip():  # (the folder in use was chosen: see above)
        if quiet_unless_empty:
            return None
        listed = (
            f"`python -m audiotrain cache info --root {earlier}` lists it, "
            if "cache clear" in delete
            else ""
        )
        return (
            f"note: another audiotrain cache is at {earlier}, the default folder, which ${CACHE_DIR_ENV} "
            f"replaces with {current}: {listed}{delete}"
        )
    # (Without AUDIOTRAIN_CACHE_DIR, `current` differs from the default only by XDG_CACHE_HOME.)
    # Moving it is advised only into a folder that can take it (not a read-only XDG_CACHE_HOME).
    move = (
        f"; to move it, move its contents into {current} (the demo songs' features are computed again there)"
        if probe_writable(current)[1] is None
        else ""
    )
    return (
        f"note: an audiotrain cache is at {earlier}, where versions before they followed $XDG_CACHE_HOME kept "
        f"it, not in the cache folder this one uses, {current} ($XDG_CACHE_HOME/audiotrain): to keep using "
        f"it, set {CACHE_DIR_ENV}={earlier} (or pass --data.cache_dir){move}; {delete}"
    )


def _refused_while_in_use(root: Path, force: bool, doing: str) -> bool:
    """Whether to stop a `doing` of the cache at `root` because another process holds it (the caller is
    inside `_others_using`, which said so); with `force`, say that it goes on instead."""
    held = (
        f"another process is using the cache at {root} (it holds {root / MARKER} open: a recipe's run, "
        "or a Python session with a FeatureCache there)"
    )
    if force:
        print(f"warning: {held}; --force: {doing} it all the same", file=sys.stderr)
        return False
    print(
        f"error: {held}; {doing} it now would delete the demo songs and features that run reads, and fail it. "
        "Nothing was deleted: wait until it ends, or pass --force",
        file=sys.stderr,
    )
    return True


def _clear(root: Path, key: str | None, force: bool = False) -> int:
    demos = _demo_sets(root)
    configurations = sorted(p for p in root.iterdir() if _is_configuration(p)) if root.is_dir() else []
    if key is not None:
        if not key or "/" in key or key.startswith("."):
            print(f"error: --key must be a configuration or set folder name, got {key!r}", file=sys.stderr)
            return 2
        chosen = [
            dataclasses.replace(d, sets={p: f for p, f in d.sets.items() if p.name == key}) for d in demos
        ]
        if _is_configuration(root / key):
            configurations, demos = [root / key], []
        elif any(d.sets for d in chosen):
            configurations, demos = [], chosen
        else:
            # The demo sets are the recipes': named only where there are some (a user's own mel cache has
            # none, and "no demo set" would read as a recipe's error).
            demo_part = "".join(f", and no demo set {key!r} under {d.folder}" for d in demos if d.sets)
            names = [p.name for p in configurations] + [p.name for d in demos for p in d.sets]
            print(
                f"error: no configuration {key!r} under {root}{demo_part}; --key takes one of: "
                f"{', '.join(names) or 'none (the cache is empty)'}",
                file=sys.stderr,
            )
            return 1
    with _others_using(root) as in_use:
        if in_use and _refused_while_in_use(root, force, "clearing"):
            return 1
        return _delete(root, key, configurations, demos)


def _delete(root: Path, key: str | None, configurations: list[Path], demos: list[_DemoSets]) -> int:
    """`_clear`'s deletion, once it is allowed."""
    entries, failures = 0, []
    for folder in configurations:
        deleted, failed = _delete_configuration(folder)
        entries += deleted
        failures += failed
    if configurations or not any(d.sets for d in demos):
        what = f"of {key}" if key is not None else f"in {_counted(len(configurations), 'configurations')}"
        print(f"deleted {_counted(entries, 'entries')} {what} from {root}")
    for demo in demos:
        if not demo.sets:
            continue
        count = 0
        for folder, files in demo.sets.items():
            deleted, failed = _delete_files(folder, files)
            count += demo.audio_files(deleted)
            failures += failed
        what = f"of {key}" if key is not None else f"in {_counted(len(demo.sets), 'sets')}"
        print(f"deleted {_counted(count, 'demo ' + demo.unit)} {what} from {demo.folder}")
    return _said_failures(failures)


#: The folders a removable or network drive is mounted in (macOS's ``/Volumes/DRIVE``; Linux desktops'
#: ``/media/USER/DRIVE``, ``/run/media/USER/DRIVE``; ``/mnt/DRIVE``).
DRIVE_FOLDERS = ("/Volumes", "/media", "/run/media", "/mnt")


def _on_a_drive_not_mounted(path: Path) -> str | None:
    """The drive folder (``/Volumes/Songs``) `path` lies on where that drive is not mounted now, else None:
    its songs are not gone, the drive is unplugged (`_prune` keeps their entries)."""
    for folder in DRIVE_FOLDERS:
        base = Path(folder)
        if not path.is_relative_to(base):
            continue
        parts = path.relative_to(base).parts
        # /media/USER/DRIVE and /run/media/USER/DRIVE: the user's folder, then the drive's
        depth = (
            2 if folder in ("/media", "/run/media") and len(parts) > 2 and (base / parts[0]).is_dir() else 1
        )
        if len(parts) > depth:
            drive = base.joinpath(*parts[:depth])
            # (an empty folder that is no mount point: Linux keeps /mnt/DRIVE, an fstab mount point, there
            # while the drive is unplugged, and macOS may leave an empty /Volumes/DRIVE behind)
            if not drive.exists() or (
                drive.is_dir() and not os.path.ismount(drive) and next(drive.iterdir(), None) is None
            ):
                return str(drive)
    return None


def _prune(root: Path, force: bool = False) -> int:
    """Delete the entries whose audio file no longer exists (a song deleted, a data folder moved or
    renamed: entries are found by the file's absolute path), as each configuration's `SOURCES` names it;
    and what this version never reads (`OUTDATED`): configurations of older feature code, demo sets of
    older generators or names."""
    configurations = sorted(p for p in root.iterdir() if _is_configuration(p)) if root.is_dir() else []
    outdated = [p for p in configurations if _outdated_configuration(p)]
    configurations = [p for p in configurations if p not in outdated]
    demos = [dataclasses.replace(d, sets={p: d.sets[p] for p in d.outdated}) for d in _demo_sets(root)]
    with _others_using(root) as in_use:
        if in_use and _refused_while_in_use(root, force, "pruning"):
            return 1
        pruned = pruned_bytes = unknown = 0
        not_mounted: dict[str, int] = {}
        failures: list[str] = []
        # Every process that writes holds the cache (`hold_cache`): where none does, no write is live.
        stale = [
            t
            for p in configurations + outdated
            for t in _temporary_files(p, STALE_TMP_SECONDS if in_use else None)
        ]
        sizes = {tmp: tmp.stat().st_size for tmp in stale if tmp.exists()}
        for tmp in stale:
            try:
                tmp.unlink()
            except FileNotFoundError:
                sizes.pop(tmp, None)  # (a live write's after all, renamed into place)
            except OSError as error:
                sizes.pop(tmp, None)
                failures.append(f"{tmp}: {error.strerror or error}")
        if sizes:
            print(
                f"deleted {_counted(len(sizes), 'temporary files')} ({byte_size(sum(sizes.values()))}) that killed "
                "writes left"
            )
        if outdated or any(d.sets for d in demos):
            entries, dropped = 0, 0
            for folder in outdated:
                deleted, failed = _delete_configuration(folder)
                entries += deleted
                failures += failed
            for demo in demos:
                for folder, files in demo.sets.items():
                    failures += _delete_files(folder, files)[1]
                    dropped += 1
            print(
                f"deleted {_counted(len(outdated), 'configurations')} ({_counted(entries, 'entries')}) and "
                f"{_counted(dropped, 'demo sets')} {OUTDATED}"
            )
        for folder in configurations:
            sources = _read_sources(folder)
            gone, kept = [], {}
            for entry in _entries(folder):
                prefix = entry.name.partition("-")[0]
                if prefix not in sources:
                    unknown += 1
                elif Path(sources[prefix]).exists():
                    kept[prefix] = sources[prefix]
                elif drive := _on_a_drive_not_mounted(Path(sources[prefix])):
                    kept[prefix] = sources[prefix]  # (an unplugged drive's songs: not gone)
                    not_mounted[drive] = not_mounted.get(drive, 0) + 1
                else:
                    gone.append(entry)
            sizes = {entry: entry.stat().st_size for entry in gone}
            deleted, failed = _delete_files(folder, gone)
            pruned += len(deleted)
            pruned_bytes += sum(sizes[entry] for entry in deleted)
            failures += failed
            if deleted and folder.is_dir():  # the record keeps the entries left (one line each)
                text = "".join(json.dumps([prefix, path]) + "\n" for prefix, path in sorted(kept.items()))
                with suppress(OSError):
                    write_atomically(folder / SOURCES, partial(_write_text, text=text))
    print(
        f"pruned {_counted(pruned, 'entries')} ({byte_size(pruned_bytes)}) whose audio file no longer exists from "
        f"{root}"
    )
    for drive, count in sorted(not_mounted.items()):
        print(
            f"kept {_counted(count, 'entries')} of songs on {drive}, which is not mounted "
            "(a drive unplugged?): prune again with it plugged in to delete those of songs gone from it"
        )
    if unknown:
        print(
            f"kept {_counted(unknown, 'entries')} whose audio file the cache did not record (written before it did); "
            "`cache clear --key CONFIGURATION` deletes a whole configuration"
        )
    return _said_failures(failures)


def _said_failures(failures: list[str]) -> int:
    """The exit status of a clear or prune: 1, with the first 20 files that could not be deleted, if any."""
    if not failures:
        return 0
    print(f"error: could not delete {len(failures)} files:", file=sys.stderr)
    for message in failures[:20]:
        print(f"  {message}", file=sys.stderr)
    return 1


def _write_text(handle, text: str) -> None:
    handle.write(text.encode())


def main(argv: list[str] | None = None, prog: str = "python -m audiotrain cache") -> int:
    """``audiotrain cache info|clear|prune [--root DIR] [--key KEY] [--force]``; `prog`: the command as the
    user started it, for its usage and help."""
    parser = SuggestingParser(
        prog=prog,
        description="Inspect or clear the feature cache, and the recipes' demo sets beside it.",
        allow_abbrev=False,  # as the recipes: --ro silently meaning --root hides typos
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("info", "list configurations (with their settings) and the recipes' demo sets, with their sizes"),
        ("clear", "delete entries and demo sets"),
        (
            "prune",
            "delete the entries whose audio file no longer exists (deleted, or moved or renamed), and the "
            f"configurations and demo sets {OUTDATED} (older feature code or demo generators made them)",
        ),
    ):
        command = sub.add_parser(name, help=help_text, allow_abbrev=False)
        command.add_argument(
            "--root",
            type=lambda text: Path(text).expanduser(),  # (`--root=~/x`: the shell leaves that ~ alone)
            default=None,
            help="the feature cache, or the folder given --data.cache_dir (default: "
            "$AUDIOTRAIN_CACHE_DIR/features, else $XDG_CACHE_HOME/audiotrain/features, else "
            "~/.cache/audiotrain/features)",
        )
        if name == "clear":
            command.add_argument(
                "--key", default=None, help="only this configuration key or demo set (default: all)"
            )
        if name != "info":
            command.add_argument(
                "--force",
                action="store_true",
                help="go on while another process (a run) uses the cache: its run may then fail",
            )
    args = parser.parse_args(argv)
    try:
        root = args.root if args.root is not None else default_cache_root()
    except NoHomeFolderError as error:
        print(f"error: {error}, or give --root", file=sys.stderr)
        return 2
    done = "listed" if args.command == "info" else "deleted"
    # A --root typo must not read as an empty cache (the default root is missing until the first entry), nor
    # may a file where a folder of the path should be (AUDIOTRAIN_CACHE_DIR naming a file): no cache can be.
    named = "--root" if args.root is not None else "the default cache folder"
    if args.root is None and os.environ.get(CACHE_DIR_ENV, "").strip():
        named = CACHE_DIR_ENV
    try:
        if args.root is not None and not is_cache_root(root) and is_cache_root(root / "features"):
            root = root / "features"  # the recipes' cache folder (--data.cache_dir): its feature cache
        in_the_way = next((p for p in (root, *root.parents) if p.exists()), None)
        problem = None
        if in_the_way is not None and not in_the_way.is_dir():
            root, problem = in_the_way, "is a file, not a folder"  # (the variable's folder, or --root)
        elif args.root is not None and not root.exists():
            problem = "does not exist"
        if problem:
            print(f"error: {named} {root} {problem}; nothing was {done}", file=sys.stderr)
            return 2
        if root.is_dir() and not is_cache_root(root):
            # Refused whatever it holds: run folders have config.json files that looked like configurations.
            # Named as the user gave it: without --root it is the cache folder in use, which no other folder
            # passed would mend (one an audiotrain of before the marker wrote).
            other = (
                f"Pass the folder the cache writes to (default {default_cache_root()}), or the one given "
                "--data.cache_dir or AUDIOTRAIN_CACHE_DIR (the cache is its features/). "
                if args.root is not None
                else ""
            )
            print(
                f"error: {named} {root} is not a feature cache (the cache marks its root with a {MARKER} file, "
                f"and there is none, nor a features/ folder that has it); nothing was {done}. {other}A cache "
                "written before the marker existed (before 2026-11-23) is marked again by its next use (a run), "
                "or can be deleted by hand",
                file=sys.stderr,
            )
            return 2
        if args.command == "info":
            return _info(root, default_root=args.root is None)
        status = _prune(root, args.force) if args.command == "prune" else _clear(root, args.key, args.force)
        note = earlier_cache_note() if args.root is None else None
        if note:  # (this command never reaches it)
            print(note)
        return status
    except PermissionError as error:
        # A cache shared between users: a folder another user made under umask 077 (or the whole cache of
        # one) cannot be read; one line naming it, as a run says, rather than a traceback.
        print(
            f"error: cannot read {error.filename} ({error.strerror}), in {named} {root}: another user's "
            f"folder, made under a umask such as 077? Nothing more was {done}. Its owner can delete it or "
            "share it (chmod -R g+rwX, and umask 002 for what runs write next), or pass --root for another "
            "cache",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
