"""Disk cache of computed features, one ``.npy`` per (audio file, feature configuration).

Layout: ``<root>/<config_key>/<path hash>-<identity hash>.npy`` plus ``<root>/<config_key>/config.json``
describing the configuration. The identity is the file's status (``identity="stat"``, default: a cache hit
opens no audio) or its content hash (``identity="content"``: survives copies and ``touch``, but reads the
file's bytes on every lookup).

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
sizes, and the recipes' demo sets in ``<root>/../demo/chords`` and ``<root>/../demo/clap``; ``clear`` deletes
them) works only on a marked root: a folder of runs passed as ``--root`` by mistake holds ``config.json`` files
too, and once lost all of them to ``clear``. It deletes only the files the cache and the demo writers name as
theirs.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import inspect
import io
import json
import re
import sys
import textwrap
import threading
import warnings
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from audiotrain._files import TMP_PREFIX, write_atomically
from audiotrain._system import cache_dir
from audiotrain.audio import AudioError

import mlx.core as mx
import numpy as np

__all__ = ["FeatureCache", "default_cache_root", "main"]


def default_cache_root() -> Path:
    """``$AUDIOTRAIN_CACHE_DIR/features``, else ``~/.cache/audiotrain/features`` (`audiotrain._system.cache_dir`,
    the recipes' root too)."""
    return cache_dir() / "features"


#: The file that marks a folder as a feature cache root (written with the first entry).
MARKER = ".audiotrain-feature-cache"


def is_cache_root(root: Path) -> bool:
    return (root / MARKER).is_file()


def _mark_root(root: Path) -> None:
    marker = root / MARKER
    if not marker.exists():
        root.mkdir(parents=True, exist_ok=True)
        marker.write_text(
            "audiotrain feature cache: `python -m audiotrain cache clear` may delete its entries\n"
        )


def _hash(text: str | bytes, n: int) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()[:n]


#: What the cache writes into a configuration folder: entries ``<24 hex>-<12 hex>.npy``, ``config.json``,
#: and ``.tmp-*`` files that a write interrupted by a crash can leave. Clearing deletes these and nothing
#: else, so a mistyped ``--root`` cannot delete a user's files.
_ENTRY_NAME = re.compile(r"[0-9a-f]{24}-[0-9a-f]{12}\.npy")


def _entries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if _ENTRY_NAME.fullmatch(p.name) and p.is_file()]


def _cache_files(folder: Path) -> list[Path]:
    """Every file in ``folder`` that the cache wrote (entries, config.json, temporary files)."""
    return [
        p
        for p in folder.iterdir()
        if p.is_file()
        and (_ENTRY_NAME.fullmatch(p.name) or p.name == "config.json" or p.name.startswith(TMP_PREFIX))
    ]


def _is_configuration(folder: Path) -> bool:
    return folder.is_dir() and ((folder / "config.json").is_file() or bool(_entries(folder)))


def _dir_stats(folder: Path) -> tuple[int, int]:
    entries = _entries(folder)
    return len(entries), sum(p.stat().st_size for p in entries)


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
    """One recipe's demo sets beside the feature cache: where they are, and each set's files."""

    title: str  # how `cache info` heads them
    unit: str  # what their audio files are: songs, clips
    folder: Path
    sets: dict[Path, list[Path]]

    def audio_files(self, files: list[Path]) -> int:
        return sum(p.suffix in (".wav", ".flac") for p in files)


def _demo_sets(root: Path) -> list[_DemoSets]:
    """The recipes' demo sets beside the feature cache at ``root`` (``<cache dir>/features``): the chord
    recipe's songs in ``<cache dir>/demo/chords``, the CLAP recipe's clips in ``<cache dir>/demo/clap``."""
    from audiotrain.datasets import caption_demo, chord_demo  # (the command's alone)

    found = []
    for title, unit, module in (
        ("demo song sets", "songs", chord_demo),
        ("CLAP demo clip sets", "clips", caption_demo),
    ):
        folder = root.parent / module.DEMO_FOLDER
        sets = {p: module.demo_set_files(p) for p in sorted(folder.iterdir())} if folder.is_dir() else {}
        found.append(_DemoSets(title, unit, folder, {p: files for p, files in sets.items() if files}))
    return found


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

    Attributes
    ----------
    hits, misses : int
        Lookups served from disk, and lookups that called ``compute_fn``.
    replaced : int
        Entries that were read whole but failed ``check`` (a foreign writer, bit rot), computed again; counted
        in ``misses`` too.

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
    ):
        if identity not in ("stat", "content"):
            raise ValueError(f"identity must be 'stat' or 'content', got {identity!r}")
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
        self.unwritable: str | None = None  # why an entry could not be written, once one could not
        self._count_lock = threading.Lock()  # thread workers share the counters; `+= 1` is not atomic
        self._copied = False  # pickled or copied: the copies count their own lookups

    def __getstate__(self) -> dict:
        # Pickled for DataLoader process workers (or deep-copied): the copy counts its lookups in its own
        # process, which report() must say, as this object's counts no longer cover them.
        self._copied = True
        state = dict(self.__dict__)
        del state["_count_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._count_lock = threading.Lock()

    def _count(self, name: str) -> None:
        with self._count_lock:
            setattr(self, name, getattr(self, name) + 1)

    def _entry(self, path: Path) -> tuple[str, str]:
        try:
            stat = path.stat()
        except FileNotFoundError as error:
            raise AudioError(path, "missing") from error
        prefix = _hash(str(path.resolve()), 24)
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
        if target.exists():
            try:
                array = np.load(target, mmap_mode="r")
            except (ValueError, OSError, EOFError):
                _remove(target)  # a damaged entry (e.g. disk full) is recomputed
            else:
                if target in self._checked or self._can_be_features_of(path, array):
                    self._checked.add(target)  # (reading every value once per run, not on every lookup)
                    self._count("hits")
                    return array
                self._count(
                    "replaced"
                )  # a valid .npy, but not these features: computed again and overwritten
        self._count("misses")
        wants_path = any(
            p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
            for p in inspect.signature(compute_fn).parameters.values()
        )
        value = compute_fn(path) if wants_path else compute_fn()
        if isinstance(value, mx.array) and value.dtype == mx.bfloat16:
            value = value.astype(mx.float32)  # numpy (and .npy) has no bfloat16; float32 holds it exactly
        value = np.asarray(value)
        try:
            self._write(target, value)
        except OSError as error:
            self._warn_unwritable(error)
            return value  # the features themselves did not need the disk
        for stale in self.folder.glob(f"{prefix}-*.npy"):
            if stale != target:
                _remove(stale)  # the same file in an earlier state
        return np.load(target, mmap_mode="r")

    def _can_be_features_of(self, path: Path, array: np.ndarray) -> bool:
        """Whether an entry read from disk passes `check` and has the frames `expected_frames` gives."""
        if self.check is not None and not self.check(array):
            return False
        frames = self.expected_frames(path) if self.expected_frames is not None else None
        return frames is None or (array.ndim > 0 and array.shape[-1] == frames)

    def _warn_unwritable(self, error: OSError) -> None:
        if self.unwritable is None:
            self.unwritable = error.strerror or str(error)
            warnings.warn(
                f"the feature cache at {self.folder} cannot be written ({self.unwritable}): features "
                "it lacks are computed in memory and not kept; point AUDIOTRAIN_CACHE_DIR (in the chord "
                "recipe: --data.cache_dir) at a writable folder to keep them",
                stacklevel=3,
            )

    def _write(self, target: Path, value: np.ndarray) -> None:
        _mark_root(self.root)
        self.folder.mkdir(parents=True, exist_ok=True)
        config_file = self.folder / "config.json"
        if self.config is not None and not config_file.exists():
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
        entries, size = _dir_stats(self.folder) if self.folder.is_dir() else (0, 0)
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
        deleted, failures = _delete_configuration(self.folder)
        if failures:
            raise OSError(f"could not delete {len(failures)} cache files: " + "; ".join(failures[:5]))
        return deleted


def _human(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


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


def _info(root: Path) -> int:
    folders = sorted(p for p in root.iterdir() if _is_configuration(p)) if root.is_dir() else []
    total_entries = total_bytes = 0
    print(f"feature cache at {root}")
    for folder in folders:
        entries, size = _dir_stats(folder)
        total_entries += entries
        total_bytes += size
        kind, settings = _settings_line(folder)
        print(f"  {folder.name:<20} {kind:<6} {entries:>8} entries {_human(size):>12}")
        if settings:
            print(textwrap.fill(settings, width=110, initial_indent=" " * 6, subsequent_indent=" " * 6))
    print(f"total: {len(folders)} configurations, {total_entries} entries, {_human(total_bytes)}")
    for demo in _demo_sets(root):
        if not demo.sets:
            continue
        print(f"{demo.title} at {demo.folder}")
        total_files = total_bytes = 0
        for folder, files in demo.sets.items():
            count, size = demo.audio_files(files), sum(p.stat().st_size for p in files)
            total_files += count
            total_bytes += size
            print(f"  {folder.name}  {count} {demo.unit} {_human(size)}")
        print(f"total: {len(demo.sets)} sets, {total_files} {demo.unit}, {_human(total_bytes)}")
    return 0


def _clear(root: Path, key: str | None) -> int:
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
    entries, failures = 0, []
    for folder in configurations:
        deleted, failed = _delete_configuration(folder)
        entries += deleted
        failures += failed
    if configurations or not any(d.sets for d in demos):
        what = f"of {key}" if key is not None else f"in {len(configurations)} configurations"
        print(f"deleted {entries} entries {what} from {root}")
    for demo in demos:
        if not demo.sets:
            continue
        count = 0
        for folder, files in demo.sets.items():
            deleted, failed = _delete_files(folder, files)
            count += demo.audio_files(deleted)
            failures += failed
        what = f"of {key}" if key is not None else f"in {len(demo.sets)} sets"
        print(f"deleted {count} demo {demo.unit} {what} from {demo.folder}")
    if failures:
        print(f"error: could not delete {len(failures)} files:", file=sys.stderr)
        for message in failures[:20]:
            print(f"  {message}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """``audiotrain cache info|clear [--root DIR] [--key KEY]``."""
    parser = argparse.ArgumentParser(
        prog="audiotrain cache",
        description="Inspect or clear the feature cache, and the recipes' demo sets beside it.",
        allow_abbrev=False,  # as the recipes: --ro silently meaning --root hides typos
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("info", "list configurations (with their settings) and the recipes' demo sets, with their sizes"),
        ("clear", "delete entries and demo sets"),
    ):
        command = sub.add_parser(name, help=help_text, allow_abbrev=False)
        command.add_argument(
            "--root",
            type=Path,
            default=None,
            help="default: $AUDIOTRAIN_CACHE_DIR/features or ~/.cache/audiotrain/features",
        )
        if name == "clear":
            command.add_argument(
                "--key", default=None, help="only this configuration key or demo set (default: all)"
            )
    args = parser.parse_args(argv)
    root = args.root if args.root is not None else default_cache_root()
    done = "listed" if args.command == "info" else "deleted"
    # A --root typo must not read as an empty cache (the default root is missing until the first entry).
    problem = "is a file, not a folder" if root.exists() and not root.is_dir() else None
    if args.root is not None and not root.exists():
        problem = "does not exist"
    if problem:
        named = "--root" if args.root is not None else "the cache folder ($AUDIOTRAIN_CACHE_DIR/features)"
        print(f"error: {named} {root} {problem}; nothing was {done}", file=sys.stderr)
        return 2
    if root.is_dir() and not is_cache_root(root):
        # Refused whatever it holds: run folders have config.json files that looked like configurations.
        print(
            f"error: --root {root} is not a feature cache (the cache marks its root with a {MARKER} file, and "
            f"there is none); nothing was {done}. Pass the folder "
            f"the cache writes to (default {default_cache_root()}); a cache written before the marker existed "
            "is marked again by its next use, or can be deleted by hand",
            file=sys.stderr,
        )
        return 2
    if args.command == "info":
        return _info(root)
    return _clear(root, args.key)


if __name__ == "__main__":
    raise SystemExit(main())
