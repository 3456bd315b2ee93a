"""Checkpoint folders: safetensors for arrays, JSON for everything else, written atomically.

Layout of a checkpoint folder::

    model.safetensors        every module array (parameters and buffers such as BatchNorm stats)
    optimizer.safetensors    the optimizer state tree (step counter and learning rate included)
    step_state.safetensors   the compiled step's counters and gradient-accumulation buffer
    trainer_state.json       epoch, global step, position in the epoch, RNG state, data order,
                             callback / logger / module state, history, config, versions
    callbacks.safetensors    (only where a callback keeps arrays) what callbacks' `state_arrays()`
                             returned, each tensor named ``<state_key>/<name>``: arrays that JSON would
                             store as long lists of text (StochasticWeightAveraging's average weights).
                             Read back on resume as the other files are: its header checked before
                             any data (no duplicate or overlapping tensors), non-finite values refused
                             naming the tensor, a tensor of no callback of the checkpoint refused; each
                             callback then checks the names, shapes and dtypes it expects
                             (`load_state_arrays`), and its error names the file. A checkpoint without
                             the file (older ones, runs without such callbacks) loads as before: the
                             callbacks get no arrays.
    state_arrays.safetensors (only where the JSON state holds arrays) the arrays of a callback's
                             `state_dict()` or `on_save_checkpoint`, a module's `on_save_checkpoint` and a
                             DataModule's `state_dict()`: trainer_state.json holds a description of each
                             in its place, and reading it puts them back as arrays (`state_arrays`).

A checkpoint is written to a temporary sibling folder, fsynced (`sync_to_disk`: on macOS through the drive's
cache), then swapped in with renames, so a crash at any moment leaves either the old or the new checkpoint
loadable (never pickle).

Healing after crashes (`heal_folder`, run when ModelCheckpoint starts a fit and at a process's first save into
a folder; each later save heals the leftovers of its own name that the process knows of, without listing the
folder): every folder a save or a delete makes on its way is hidden and marked with 8 random hex digits,
``.NAME.tmp-XXXXXXXX`` (the new checkpoint being written), ``.NAME.prev-XXXXXXXX`` (the one it replaces,
between the two renames of the swap) and ``.NAME.trash-XXXXXXXX`` (a checkpoint being deleted), and a heal
touches nothing else: a user's ``last.prev`` backup or notes are never taken for a leftover. The writer of a
temporary folder holds an advisory lock (``flock``) on it until the swap is done, so a temporary folder whose
lock is free belongs to a writer that died (``kill -9``, power loss) and is removed; one that another live
process is filling is left alone. When ``NAME`` itself is missing (a crash between the two renames of a swap,
or two crashes in a row), the newest complete state among the ``prev`` and the dead writers' temporary folders
becomes ``NAME`` again. Deleting a checkpoint (`remove_checkpoint`, top-k rotation) first renames it to its
``trash`` name, so a crash mid-delete never leaves a half-deleted folder under a loadable name; leftover trash
is removed by the next heal. A delete (and a save replacing a checkpoint) removes only the files a save wrote
(`CHECKPOINT_FILES`): a user's files in the folder are kept, with a warning.

On a file system without ``flock`` (some network mounts: `NO_LOCKS_ERRNOS`) checkpoints are saved without
locks, with one `NoFileLocksWarning` per folder, rather than every save failing after its epoch was trained:
this process tells its own saves under way from dead ones, but another process's fit or save in the same
folder is not detected.

A save replaces only a checkpoint folder (one holding trainer_state.json): a file, a link or another folder
under the name is a user's, and the save is refused (`NameTakenError`) rather than replace it. A save that
fails (a full disk, a quota, an I/O error) raises `CheckpointWriteError` naming the file, the cause and
what is left: the previous checkpoint of that name is intact.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import fcntl
import json
import math
import os
import re
import secrets
import shutil
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from audiotrain import _loading
from audiotrain._files import (  # noqa: F401  (CLAIM_FILE: `ckpt.CLAIM_FILE`, where it was)
    CLAIM_FILE,
    check_regular_file,
    finite_or_null,
    naming_failed_write,
    read_json_file,
    restore_non_finite,
    sync_to_disk,
)
from audiotrain._text import byte_size, listed, plural
from audiotrain.train import state_arrays

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten, tree_map_with_path

T = TypeVar("T")

FORMAT = "audiotrain-checkpoint"
FORMAT_VERSION = 2  # 2: the trainer state as named objects (progress, running_means, history, random)
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
STEP_STATE_FILE = "step_state.safetensors"
STATE_FILE = "trainer_state.json"
#: Optional: the arrays callbacks keep (`Callback.state_arrays`), written only when some callback has any.
CALLBACKS_FILE = "callbacks.safetensors"
#: The entry of STATE_FILE listing the non-finite floats written as null (`finite_or_null`), which reading it
#: puts back: a NaN metric resumes as NaN, and the file stays strict JSON for any other reader.
NON_FINITE_ENTRY = "non_finite_floats"
REQUIRED_FILES = (MODEL_FILE, OPTIMIZER_FILE, STATE_FILE)
#: What loading the model alone reads (`load_from_checkpoint`, a recipe's predict): no optimizer state.
MODEL_FILES = (MODEL_FILE, STATE_FILE)
#: Optional: the arrays of the JSON state (a callback's or a hook's), in their places there (`state_arrays`).
ARRAYS_FILE = state_arrays.ARRAYS_FILE
CHECKPOINT_FILES = (MODEL_FILE, OPTIMIZER_FILE, STEP_STATE_FILE, CALLBACKS_FILE, ARRAYS_FILE, STATE_FILE)
_WEIGHT_FILE_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")


class CheckpointError(RuntimeError):
    """A checkpoint folder is missing, incomplete, corrupt or was not written by audiotrain."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """A checkpoint path names nothing: a `CheckpointError` that is a `FileNotFoundError` too, as Lightning's
    `fit(ckpt_path=...)` of a missing path raises one (``except FileNotFoundError`` catches both)."""


class OlderFormatError(CheckpointError):
    """A checkpoint written by an older audiotrain in a format this one does not read (`FORMAT_VERSION`).

    The message is the Trainer API's (a resume); a recipe whose command did something else says so in its own
    words (`folder` and `version` are kept for it): its own models may have changed since, so the weights
    advice holds only for a model whose code did not."""

    def __init__(self, folder: Path, version: int):
        self.folder, self.version = Path(folder), version
        super().__init__(
            f"{folder} uses checkpoint format {version}, written by an older audiotrain before the trainer "
            f"state was split into named objects (format {FORMAT_VERSION}); it cannot resume training (its "
            "weights load with load_weights(model.safetensors) into a model whose code is unchanged since)"
        )


class CheckpointWriteError(CheckpointError):
    """A checkpoint could not be written (a full disk, a quota, an I/O error); the message names the file,
    the cause and what is left (the previous checkpoint of that name is intact: saves are atomic)."""


class NameTakenError(FileExistsError):
    """A save would replace a file, a link or a folder that is not a checkpoint: something a user made."""


def is_checkpoint_folder(path: str | os.PathLike) -> bool:
    """Whether `path` is a folder a save may replace: a folder (not a link) holding trainer_state.json."""
    path = Path(path)
    return path.is_dir() and not path.is_symlink() and (path / STATE_FILE).is_file()


def foreign_entry(path: str | os.PathLike) -> str:
    """What stands at `path` that no save or delete may touch ("a file", "a link", "a folder that is not a
    checkpoint ..."), or "" when nothing is there or a checkpoint folder is."""
    path = Path(path)
    if not os.path.lexists(path) or is_checkpoint_folder(path):
        return ""
    if path.is_symlink():
        return "a link"
    if path.is_dir():
        return f"a folder that is not a checkpoint (it holds no {STATE_FILE})"
    return "a file"


def check_replaceable(path: str | os.PathLike) -> None:
    """Refuse to save over `path` when it is not a checkpoint folder (a user's file, link or folder)."""
    what = foreign_entry(path)
    if what:
        raise NameTakenError(
            f"cannot save a checkpoint as {path}: it is {what}, which a save never replaces (it is left as it "
            "is); move it away or save the checkpoints elsewhere"
        )


#: What ``flock`` raises on a file system that has no locks (NFS without lockd, some SMB and FUSE mounts).
#: (ENOTSUP and EOPNOTSUPP are one number on Linux, two on macOS.)
NO_LOCKS_ERRNOS = frozenset({errno.ENOLCK, errno.ENOTSUP, errno.EOPNOTSUPP})


class NoFileLocksWarning(RuntimeWarning):
    """A checkpoint folder's file system has no ``flock``: checkpoints are saved there without locks."""


def check_locks(folder: str | os.PathLike) -> None:
    """Say now (`NoFileLocksWarning`, once per folder) when the existing checkpoint folder `folder` has no
    file locks, rather than at its first save, after an epoch trained: a fit calls it when it starts."""
    folder = Path(folder)
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # (its first save says what is wrong)
    try:
        # Shared and not waiting: nothing locks a checkpoint folder itself (only its claim file and the
        # temporary folders of saves), so this takes nothing from anyone.
        _lock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, folder)
    except OSError:
        pass
    finally:
        os.close(fd)


#: The checkpoint folders found without locks (`_lock`), warned about once each.
_lockless: set[Path] = set()
#: This process's temporary folders being written in such a folder (no lock marks them live there).
_unlocked_temps: set[Path] = set()


def _lock(fd: int, operation: int, folder: Path) -> bool:
    """``flock(fd, operation)`` on a file of the checkpoint folder `folder`; False where its file system has
    no locks (`NO_LOCKS_ERRNOS`), said once per folder. Other errors (a lock held: BlockingIOError) raise."""
    try:
        fcntl.flock(fd, operation)
        return True
    except OSError as err:
        if err.errno not in NO_LOCKS_ERRNOS:
            raise
    key = _key(folder)
    with _marks_lock:
        if key in _lockless:
            return False
        _lockless.add(key)
    warnings.warn(
        f"{folder}: its file system does not support file locks (flock), so checkpoints are saved there "
        "without them. What they guard is lost: a fit of another process saving to this folder at the same "
        "time is not refused, and may take a save under way for a crashed one's leftovers and remove it. "
        "Save checkpoints to a local disk to keep that guard",
        NoFileLocksWarning,
        stacklevel=2,
    )
    return False


class FolderInUseError(FileExistsError):
    """Another live process's fit saves its checkpoints to this folder."""


#: This process's claims: folder -> [the locked descriptor, fits holding it, whether claiming created it].
_claims: dict[Path, list] = {}


def claim_folder(folder: str | os.PathLike, what: str, holder: str = "fit") -> None:
    """Make `folder` this process's to save checkpoints in, until `release_folder`: a fit of another process
    claiming it meanwhile gets `FolderInUseError` naming this process (two fits saving to one folder would
    replace each other's `last` and same-named checkpoints). `what` names the folder for the error.

    The claim is an advisory lock on `CLAIM_FILE`, which the system releases when the process ends, however
    it ends: a claim left by a dead process is taken over. Fits of one process share its claim (two
    ModelCheckpoints of a Trainer may save to one folder; a notebook fits again after an error).

    `holder` names what holds the claim in the owner's words: "fit", or "run" for a recipe's run folder,
    claimed for the whole command (its training, evaluation and export)."""
    folder = Path(folder)
    if folder in _claims:
        _claims[folder][1] += 1
        return
    # (innermost first: a failed claim removes them in that order, each only while empty)
    made = [path for path in (folder, *folder.parents) if not path.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / CLAIM_FILE
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            _lock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, folder)  # (without locks: claimed, unguarded)
        except BlockingIOError:
            owner = _claim_owner(fd)
            os.close(fd)
            if holder != "fit":
                raise FolderInUseError(
                    f"{what} is in use: {owner} writes there; wait for it to end, or choose another folder"
                ) from None
            raise FolderInUseError(
                f"{what} is in use: {owner} saves its checkpoints there, and two fits saving to one folder "
                "replace each other's `last` and same-named checkpoints. Wait for that fit to end, give this "
                "one another dirpath, or leave dirpath out (the default folder is versioned per fit)"
            ) from None
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # its owner released it (and removed the file) as we opened it: claim the new one
    os.ftruncate(fd, 0)
    # (with its UTC offset: the message may be read on another host, or after a change of time zone)
    started = time.strftime("%Y-%m-%d %H:%M:%S %z")
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "since": started, "holder": holder}
    try:
        # A full disk: an error naming this file (a bare "[Errno 28]" read as stdout's in the recipes).
        with naming_failed_write(lock):
            os.write(fd, json.dumps(owner).encode())
    except OSError:  # nothing is claimed: the folder is left as it was found, as `release_folder` leaves it
        with contextlib.suppress(OSError):
            lock.unlink()  # (while still locked, as there)
        os.close(fd)
        _remove_empty_folders(made)
        raise
    _claims[folder] = [fd, 1, bool(made)]


def _remove_empty_folders(made: list[Path]) -> None:
    """Remove the folders a failed claim made (`made`, innermost first), up to the first that is not empty: a
    folder that holds something now, and those above it, are someone's."""
    for path in made:
        try:
            path.rmdir()
        except OSError:
            return


def live_claim_owner(folder: str | os.PathLike) -> str | None:
    """The fit of another live process that claims `folder` (`claim_folder`), in words, or None when no
    other process does: whoever is about to delete the folder asks first (``--overwrite`` of a run folder
    whose run is still training). Deleting the claim file would not stop that fit; it would only let a
    second fit claim a new one beside it."""
    lock = Path(folder) / CLAIM_FILE
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return None
    try:
        ours = os.fstat(fd).st_ino
        if any(os.fstat(held[0]).st_ino == ours for held in _claims.values()):
            return None  # this process's own fit (it knows what it deletes)
        try:
            _lock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, Path(folder))  # (without locks: no owner known)
        except BlockingIOError:
            return _claim_owner(fd)
        return None
    finally:
        os.close(fd)  # (drops the shared lock taken, if any)


def _claim_owner(fd: int) -> str:
    """The process a claim file names, in words ("the fit of process 123 on host h, since ...")."""
    try:
        owner = json.loads(os.pread(fd, 4096, 0))
        return f"the {owner.get('holder', 'fit')} of process {owner['pid']} on host {owner['host']} (since {owner['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "a fit of another process"


def release_folder(folder: str | os.PathLike) -> None:
    """End this process's claim on `folder` once every fit holding it released it (`claim_folder`); the claim
    file goes, and the folder too when claiming it created it and nothing was saved there."""
    folder = Path(folder)
    held = _claims.get(folder)
    if held is None:
        return
    held[1] -= 1
    if held[1] > 0:
        return
    del _claims[folder]
    fd, _, created = held
    with contextlib.suppress(OSError):
        os.unlink(folder / CLAIM_FILE)  # while still locked: a fit that opened it retries with a new file
    os.close(fd)
    if created:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only if empty


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        sync_to_disk(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _save_arrays(path: Path, arrays: dict[str, mx.array]) -> None:
    # Through a file Python opened: MLX takes a path as UTF-8 text, which a name the locale's encoding
    # cannot hold (``LC_ALL=C`` with Python's UTF-8 mode off) is not ("std::bad_cast").
    with open(path, "wb") as f:
        mx.save_safetensors(f, arrays)
        f.flush()
        sync_to_disk(f.fileno())


class RowTexts:
    """The JSON text of a run's history rows as its last save wrote them (`state_text`), by position.

    A run's history gains a row per epoch and every save writes all of them: turning each into JSON (and
    looking for non-finite values in it) at every save made a long run's saves slower with every epoch
    (a 10,000-epoch run spent most of its time there). Only rows that are new or changed since the last
    save are turned into JSON again. The rows before the last one no longer change in a run
    (`History.record` replaces only the last, which changes after its epoch too): one C-level comparison
    of them with the rows written finds them unchanged; the others are compared one by one, keys, values
    and their types in order (1, 1.0 and True are equal and written differently). A Trainer keeps one per
    run (`RunState.row_texts`)."""

    def __init__(self) -> None:
        self._rows: list[Any] = []  # the rows as written (shallow copies)
        self._texts: list[str] = []  # their JSON text
        # Position -> the JSON text of its `NON_FINITE_ENTRY` entries ([path, token]), where it has any.
        self._non_finite: dict[int, list[str]] = {}
        self.serialized = 0  # rows turned into JSON so far (what the cache spares, counted)

    def texts(self, rows: list[Any], at: list[Any]) -> tuple[list[str], list[str]]:
        """The JSON text of each of `rows`, and of the `NON_FINITE_ENTRY` entries of the non-finite values
        in them (`finite_or_null`'s ``[path, token]``, under the path `at` of the rows in the payload)."""
        kept = min(len(rows), len(self._rows))
        stable = max(kept - 1, 0)
        if self._rows[:stable] != rows[:stable]:  # (a checkpoint of another run loaded, a callback's edit)
            stable = 0
        for i in range(stable, len(rows)):
            if not (i < kept and _same_row(self._rows[i], rows[i])):
                self._store(i, rows[i], at)
        del self._rows[len(rows) :], self._texts[len(rows) :]
        for i in [i for i in self._non_finite if i >= len(rows)]:
            del self._non_finite[i]
        return self._texts[:], [entry for i in sorted(self._non_finite) for entry in self._non_finite[i]]

    def _store(self, i: int, row: Any, at: list[Any]) -> None:
        self.serialized += 1
        found: list = []
        text = json.dumps(finite_or_null(row, _json_default, found), allow_nan=False)
        # A row of other than plain values (a nested list could change in place) is compared with nothing.
        plain = isinstance(row, dict) and all(type(v) in _PLAIN for v in row.values())
        copy = dict(row) if plain else _UNLIKE
        if i < len(self._rows):
            self._rows[i], self._texts[i] = copy, text
        else:
            self._rows.append(copy)
            self._texts.append(text)
        self._non_finite.pop(i, None)
        if found:
            self._non_finite[i] = [json.dumps([[*at, i, *path], token]) for path, token in found]


_PLAIN = (int, float, str, bool, type(None))
_UNLIKE = object()  # (equal to no row)


def _same_row(written: Any, row: Any) -> bool:
    """Whether `row` is the `written` one: keys, values and their types, in order. A NaN is its own float
    object in both (the rows are copies sharing their values)."""
    if written is _UNLIKE or not isinstance(row, dict) or len(row) != len(written):
        return False
    try:
        same_values = list(written.items()) == list(row.items())
        return same_values and list(map(type, written.values())) == list(map(type, row.values()))
    except (TypeError, ValueError):  # (a value whose == is not a bool)
        return False


def state_text(state: dict[str, Any], row_texts: RowTexts | None = None) -> str:
    """`STATE_FILE`'s text for `state`: strict JSON with each non-finite float written as null and listed
    under `NON_FINITE_ENTRY`, indented, but for ``history.rows`` and `NON_FINITE_ENTRY`: one compact item
    per line. `row_texts` (the run's `RowTexts`) gives the text of the rows written before (and of their
    non-finite entries); without it every row is turned into JSON."""
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
    history = payload.get("history")
    rows = history.get("rows") if isinstance(history, dict) else None
    # Lists written apart from the rest (their items' text kept between saves): a marker holds their place.
    lines: dict[str, list[str]] = {}
    if isinstance(rows, list):
        marker = f"history-rows-{secrets.token_hex(8)}"
        payload["history"] = {**history, "rows": marker}
        lines[marker] = []
    non_finite: list = []
    strict = finite_or_null(payload, _json_default, non_finite)
    non_finite_lines = [json.dumps(entry) for entry in non_finite]
    if lines:
        row_lines, rows_non_finite = (row_texts or RowTexts()).texts(rows, ["history", "rows"])
        lines[marker] = row_lines
        non_finite_lines += rows_non_finite
    if non_finite_lines:
        marker = f"non-finite-{secrets.token_hex(8)}"
        strict[NON_FINITE_ENTRY] = marker
        lines[marker] = non_finite_lines
    # The rest is small: the lists go in where their markers are, in one join of the parts (splicing each
    # into the finished text copied and searched the whole history once more per list).
    skeleton = json.dumps(strict, indent=1, allow_nan=False)
    places = sorted((skeleton.index(json.dumps(marker)), marker) for marker in lines)
    parts, done = [], 0
    for at, marker in places:
        line = skeleton[skeleton.rindex("\n", 0, at) + 1 : at]  # ' "rows": '
        indent = line[: len(line) - len(line.lstrip(" "))]
        items = lines[marker]
        listed = [f"[\n{indent} ", f",\n{indent} ".join(items), f"\n{indent}]"] if items else ["[]"]
        parts += [skeleton[done:at], *listed]
        done = at + len(json.dumps(marker))
    parts.append(skeleton[done:])
    return "".join(parts)


def write_checkpoint(
    path: str | os.PathLike,
    model_arrays: dict[str, mx.array],
    optimizer_arrays: dict[str, mx.array],
    step_arrays: dict[str, mx.array],
    state: dict[str, Any],
    callback_arrays: dict[str, mx.array] | None = None,
    row_texts: RowTexts | None = None,
    arrays_in_state: dict[str, mx.array] | None = None,
) -> Path:
    """Write a checkpoint folder at `path` atomically; returns the final path. A failed write raises
    `CheckpointWriteError` (the previous checkpoint at `path` is intact). `callback_arrays` (the callbacks'
    `state_arrays()`, named ``<state_key>/<name>``) go into `CALLBACKS_FILE`, written only when there are
    any: a checkpoint of a run without such callbacks holds the same files as before. `row_texts`: the
    run's cache of its history rows' text (`RowTexts`), which spares each save the rows written before.
    `arrays_in_state`: the arrays `state_arrays.take_arrays` took out of `state`, written into `ARRAYS_FILE`
    (only where there are any), in the same atomic folder."""
    final = Path(path)
    text = state_text(state, row_texts)  # first: an unsaveable value writes nothing
    files = {MODEL_FILE: model_arrays, OPTIMIZER_FILE: optimizer_arrays, STEP_STATE_FILE: step_arrays}
    if callback_arrays:
        files[CALLBACKS_FILE] = callback_arrays
    if arrays_in_state:
        files[ARRAYS_FILE] = arrays_in_state
    data = text.encode()  # (once: a long run's history makes it megabytes)
    needed = sum(a.nbytes for arrays in files.values() for a in arrays.values()) + len(data)
    with (
        _reporting_write_errors(final, needed) as writing,
        _atomic_folder(final, before_discard=writing.measure) as tmp,
    ):
        for name, arrays in files.items():
            writing.file = tmp / name
            _save_arrays(tmp / name, arrays)
        writing.file = tmp / STATE_FILE
        with open(tmp / STATE_FILE, "wb") as f:
            f.write(data)
            f.flush()
            sync_to_disk(f.fileno())
        writing.swapping = True
    return final


def copy_checkpoint(source: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Make `path` a checkpoint equal to the folder `source`, atomically like `write_checkpoint`.

    Files are hard-linked where the file system allows (no second write of the weights) and copied
    otherwise. Linked files stay safe: a checkpoint is never written in place, only replaced.
    """
    final = Path(path)
    with _reporting_write_errors(final, needed=0) as writing, _atomic_folder(final) as tmp:
        # Only what a save wrote: a transcription or notes a user put beside the source are not part of it.
        for file in filter(_written_by_save, Path(source).iterdir()):
            writing.file = tmp / file.name
            try:
                os.link(file, tmp / file.name)
            except OSError:
                shutil.copy2(file, tmp / file.name)
        writing.swapping = True
    return final


class _Writing:
    file: Path | None = None  # the file being written (None: the temporary folder is being made)
    swapping = False  # its renames: an error there is the system's own, naming both paths
    written: int | None = None  # bytes its temporary folder held when the write failed

    def measure(self, tmp: Path) -> None:
        """Note what the failed save had written, before its temporary folder is removed."""
        with contextlib.suppress(OSError):
            self.written = sum(f.stat().st_size for f in tmp.iterdir() if f.is_file())


@contextlib.contextmanager
def _reporting_write_errors(final: Path, needed: int) -> Iterator[_Writing]:
    """A write that fails (MLX's ``[write] Unable to write N bytes``, an OSError) raises `CheckpointWriteError`
    naming the file and the cause; `needed` (bytes, 0 if unknown) tells a full disk from other causes. The
    temporary folder is gone by then (`_atomic_folder`), so the free space reported is what a save has."""
    writing = _Writing()
    try:
        yield writing
    except (NameTakenError, CheckpointError):
        raise
    except (OSError, RuntimeError) as err:
        if writing.swapping:
            raise
        raise CheckpointWriteError(_write_failure(final, writing.file, needed, err, writing.written)) from err


def _write_failure(
    final: Path, file: Path | None, needed: int, err: BaseException, written: int | None = None
) -> str:
    """One line: which file could not be written, why, and what is left."""
    what = f"writing {file.name} (in its temporary folder {file.parent.name})" if file else "preparing it"
    cause = (err.strerror or str(err)) if isinstance(err, OSError) else str(err)
    try:
        free = shutil.disk_usage(final.parent).free
    except OSError:
        free = None
    full = isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)
    if full or (free is not None and needed > free):
        if free is not None and needed and free >= needed:
            # The free space is measured once the failed save's temporary folder is gone: more than a save
            # needs read as no reason to fail. What the save had written says when the disk filled up.
            done = f"with {byte_size(written)} of it written" if written is not None else "as it was written"
            cause = (
                f"no space left: {final.parent} filled up {done}, of about {byte_size(needed)} (it has "
                f"{byte_size(free)} free now that the failed save's temporary folder is removed: something "
                "else took space meanwhile)"
            )
        else:
            shown_free, shown_needed = _distinct_sizes(free, needed)
            cause = f"no space left: {final.parent} has {shown_free} free"
            cause += f", a checkpoint needs about {shown_needed}" if needed else ""
        cause += "" if full else f" ({err})"
    left = (
        f"the previous checkpoint {final} is intact"
        if is_checkpoint_folder(final)
        else f"nothing was saved as {final} (the checkpoints saved before are intact)"
    )
    return f"cannot save checkpoint {final}: {what} failed: {cause}; {left}"


def _distinct_sizes(free: int | None, needed: int) -> tuple[str, str]:
    """`byte_size` of `free` and `needed`, in bytes where the two differ but would read the same ("has
    1.6 MB free, a checkpoint needs about 1.6 MB")."""
    shown_free = byte_size(free) if free is not None else "?"
    if free is not None and free != needed and shown_free == byte_size(needed):
        return f"{free:,} bytes", f"{needed:,} bytes"
    return shown_free, byte_size(needed)


@contextlib.contextmanager
def _atomic_folder(
    path: str | os.PathLike, before_discard: Callable[[Path], None] | None = None
) -> Iterator[Path]:
    """A temporary sibling folder to fill; swapped in at `path` when the block ends, removed on error
    (`before_discard(tmp)` first, where given)."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    _heal_before_save(final)
    check_replaceable(final)  # before the weights are written: a user's file or folder there stays
    tmp, lock = _locked_temp_folder(final)
    try:
        yield tmp
        _fsync_dir(tmp)
        _swap_in(tmp, final)
    except BaseException:
        if before_discard is not None:
            before_discard(tmp)
        _discard(tmp)
        raise
    finally:
        _unlocked_temps.discard(_key(tmp))
        os.close(lock)  # the swap is done (or the folder gone): a heal may now treat it as dead


def _discard(tmp: Path) -> None:
    """Remove an unfinished temporary folder after an error (a kill skips this: `heal_folder` does it)."""
    shutil.rmtree(tmp, ignore_errors=True)
    _forget_if_gone(tmp)


def _marked(final: Path, kind: str) -> Path:
    """A new hidden name beside `final` for a folder on its way (kind: tmp, prev or trash), which only a
    save or a delete makes: ``.NAME.KIND-XXXXXXXX`` (8 random hex digits, as `_LEFTOVER` expects). It is
    remembered until it is seen gone (`_marks`): what the next save of NAME heals, should it stay."""
    marked = final.parent / f".{final.name}.{kind}-{secrets.token_hex(4)}"
    _note(marked)
    return marked


def _locked_temp_folder(final: Path) -> tuple[Path, int]:
    """A new ``.NAME.tmp-*`` folder beside `final` and a descriptor holding its lock (close it when done).

    The folder is made as ``mkdir`` makes folders, with mode 0o777 less the umask, and keeps that mode once
    swapped in: ``tempfile.mkdtemp``'s are 0o700 whatever the umask, which made every checkpoint unreadable
    to a teammate or a serving process running as another user."""
    while True:
        tmp = _marked(final, "tmp")
        try:
            os.mkdir(tmp, 0o777)
        except FileExistsError:
            continue
        fd = os.open(tmp, os.O_RDONLY)
        # Blocking: a heal in another process may have taken the lock in the instant after mkdir, taking the
        # folder for a dead writer's. It removes it, releases the lock, and we start again with a new one.
        if not _lock(fd, fcntl.LOCK_EX, final.parent):
            _unlocked_temps.add(_key(tmp))  # (what the lock says to this process's heals: live)
            return tmp, fd
        try:
            if os.stat(tmp).st_ino == os.fstat(fd).st_ino:
                return tmp, fd
        except FileNotFoundError:
            pass
        os.close(fd)
        _forget_if_gone(tmp)


def _swap_in(tmp: Path, final: Path) -> None:
    """Swap: old → its hidden ``prev`` name, tmp → final, drop the old one. Between the two renames only the
    ``prev`` (and the complete temporary folder) exist: `resolve_checkpoint` reads the newer of them, and
    `heal_folder` restores it."""
    prev = None
    if os.path.lexists(final):
        check_replaceable(final)  # (made while this checkpoint was being written)
        prev = _marked(final, "prev")
        os.replace(final, prev)
    os.replace(tmp, final)
    _forget(tmp)
    _fsync_dir(final.parent)
    if prev is not None:
        _remove_checkpoint(prev, final)


def remove_checkpoint(path: str | os.PathLike) -> None:
    """Delete a checkpoint folder: renamed to a hidden ``.NAME.trash-*`` first (atomic), then emptied of what
    a save wrote (`CHECKPOINT_FILES`), so a crash mid-delete leaves no half-deleted folder under a loadable
    name (the next `heal_folder` ends it). Files a user put in it (a transcription, notes) are kept: the
    folder goes back under its name with only them, and a warning says so (`_keep_users_files`). Anything
    else found under the name (a user's file or folder that replaced it) is left, with a warning."""
    folder = Path(path)
    what = foreign_entry(folder)
    if what:
        warnings.warn(f"{folder} is {what}, not a checkpoint: it is left as it is, not removed", stacklevel=2)
        return
    _remove_checkpoint(folder, folder)


def _remove_checkpoint(folder: Path, home: Path) -> None:
    """`remove_checkpoint` of `folder`, whose user's files belong in `home`: the folder itself, or for a
    swap's ``prev`` the checkpoint that replaced it."""
    trash = _marked(home, "trash")
    try:
        os.replace(folder, trash)
    except FileNotFoundError:
        _forget(trash)
        return
    _forget(folder)  # (where it was a marked one: a swap's prev)
    _empty_trash(trash, home)


def _written_by_save(entry: Path) -> bool:
    """Whether `entry` of a checkpoint folder is a file a save writes (`write_checkpoint`), all a delete
    removes: anything else there is a user's."""
    return entry.name in CHECKPOINT_FILES and entry.is_file() and not entry.is_symlink()


def _empty_trash(trash: Path, home: Path) -> None:
    """Remove what a save wrote in `trash` (a checkpoint being deleted), then the folder if nothing else is
    in it; a user's files in it are kept in `home` (`_keep_users_files`)."""
    try:
        entries = list(trash.iterdir())
    except FileNotFoundError:
        entries = []
    if all(_written_by_save(entry) for entry in entries):
        shutil.rmtree(trash, ignore_errors=True)  # (the usual case: the save's files alone)
    else:
        for entry in filter(_written_by_save, entries):
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        _keep_users_files(trash, home)
    _forget_if_gone(trash)


#: The folders whose kept files (`_keep_users_files`) this process has warned of: once each.
_warned_kept: set[str] = set()


def _keep_users_files(trash: Path, home: Path) -> None:
    """The files a user put in a checkpoint folder being deleted (`trash`, emptied of the save's own) go back
    to `home`: the folder under its own name where it is free (a checkpoint rotated out), else into the
    checkpoint there (one that replaced it: `best`, `last`), beside its files. One warning per folder."""
    kept = sorted(entry.name for entry in trash.iterdir())
    if not os.path.lexists(home):
        os.replace(trash, home)
        how = "the folder stays, holding only them"
    else:
        for name in kept:
            if not os.path.lexists(home / name):
                os.replace(trash / name, home / name)
        with contextlib.suppress(OSError):
            trash.rmdir()
        how = f"they stay in {home.name} beside the checkpoint that replaced the one they were put beside"
        if os.path.lexists(trash):
            how += f" (those whose names are taken there stay in {trash})"
    _fsync_dir(home.parent)
    if str(home) not in _warned_kept:
        _warned_kept.add(str(home))
        warnings.warn(
            f"{home}: kept {listed(kept, 5)}, which no checkpoint save wrote, when the checkpoint there was "
            f"{'removed' if how.startswith('the folder') else 'replaced'}: only the save's files "
            f"({', '.join(CHECKPOINT_FILES)}) are deleted; {how}",
            stacklevel=3,
        )


#: The hidden folders saves and deletes make on their way (`_marked`), which writers and deleters killed
#: midway leave behind: ``.NAME.tmp-XXXXXXXX``, ``.NAME.prev-XXXXXXXX``, ``.NAME.trash-XXXXXXXX``. A heal
#: touches nothing else.
_LEFTOVER = re.compile(r"\.(?P<name>.+)\.(?P<kind>tmp|prev|trash)-[0-9a-f]{8}")


def _try_lock(folder: Path) -> int | None:
    """A descriptor holding `folder`'s lock, or None when a live writer holds it (or it is gone). Without
    locks (`_lock`) only this process's own saves under way count as live writers."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return None
    try:
        locked = _lock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, folder.parent)
    except OSError:
        locked = None
    if locked is None or (not locked and _key(folder) in _unlocked_temps):
        os.close(fd)
        return None
    return fd


def _is_complete(folder: Path) -> bool:
    """Every required file present and a readable trainer_state.json (written last, after the arrays)."""
    if not all((folder / name).is_file() for name in REQUIRED_FILES):
        return False
    try:
        read_state(folder)
    except CheckpointError:
        return False
    return True


def _newest(candidates: list[Path]) -> Path | None:
    """The complete checkpoint of `candidates` with the highest global step (the first on a tie)."""
    complete = [c for c in candidates if _is_complete(c)]
    if not complete:
        return None
    return max(complete, key=lambda c: (read_state(c)["progress"]["global_step"], -complete.index(c)))


def _leftovers(parent: Path) -> dict[str, list[tuple[str, Path]]]:
    """The marked folders in `parent` (`_LEFTOVER`), by the checkpoint name they belong to: [(kind, path)]."""
    found: dict[str, list[tuple[str, Path]]] = {}
    if parent.is_dir():
        for entry in sorted(parent.iterdir()):
            match = _LEFTOVER.fullmatch(entry.name)
            if match and entry.is_dir() and not entry.is_symlink():
                found.setdefault(match["name"], []).append((match["kind"], entry))
    return found


def heal_folder(parent: str | os.PathLike) -> list[str]:
    """Clear what crashed writers left in the checkpoint folder `parent`; returns what was done, one line each.

    For each checkpoint name with leftovers and no live writer: a missing ``NAME`` is restored from the newest
    complete of its ``prev`` and dead temporary folders; then the dead temporary folders, the trash and a
    ``prev`` beside a complete ``NAME`` are removed. Names a live process is writing are left alone, and so
    is everything that is not one of the marked folders a save or a delete makes (`_LEFTOVER`).
    """
    parent = Path(parent)
    done: list[str] = []
    for name, entries in _leftovers(parent).items():
        done += _heal_entries(parent / name, entries)
    with _marks_lock:
        _healed.add(_key(parent))
    return done


def _heal_entries(final: Path, entries: list[tuple[str, Path]]) -> list[str]:
    """`heal_folder`'s work for one checkpoint name, `final`, of its marked folders `entries` [(kind, path)]:
    what is left of them (a live writer's) is remembered for the next save of the name (`_marks`)."""
    done: list[str] = []
    locks: list[int] = []
    try:
        temps, prevs, trashes = [], [], []
        for kind, entry in entries:
            if kind == "trash":
                trashes.append(entry)
            elif kind == "prev":
                prevs.append(entry)
            else:
                fd = _try_lock(entry)
                if fd is None:
                    if entry.exists():
                        break  # a live writer is saving NAME: its swap may need the prev; leave NAME alone
                    continue
                locks.append(fd)
                temps.append(entry)
        else:
            done += _heal_name(final, temps, prevs)
            for trash in trashes:  # its deleter died mid-delete: a user's files in it are kept (after NAME
                _empty_trash(trash, final)  # is restored: they go into it, not in its place)
                done.append(f"removed {trash.name}")
    finally:
        for fd in locks:
            os.close(fd)
        for _, entry in entries:
            if os.path.lexists(entry):
                _note(entry)
            else:
                _forget(entry)
    return done


#: This process's memory of marked folders (`_marked`) that may still be there, by the checkpoint they belong
#: to: those its saves and deletes made and did not see gone (an error, or a test's simulated kill, cut them
#: short), and those a heal left (a live writer's). A save heals its own name from it, without listing the
#: folder: with thousands of checkpoints kept (``save_top_k=-1``), listing it at every save made each save
#: slower than the one before. A folder is listed whole once per process (`heal_folder`: when a
#: ModelCheckpoint's fit starts, or at this process's first save there), which finds what a killed process
#: left.
_marks: dict[Path, set[Path]] = {}
_healed: set[Path] = set()  # the folders `heal_folder` went through in this process
_marks_lock = threading.Lock()  # (saves may run in threads)


def _key(path: Path) -> Path:
    return Path(os.path.abspath(path))


def _owner(marked: Path) -> Path:
    """The checkpoint a marked folder belongs to: ``last`` for ``.last.tmp-*``, and for the trash of its prev
    (``..last.prev-*.trash-*``)."""
    name = marked.name
    while match := _LEFTOVER.fullmatch(name):
        name = match["name"]
    return _key(marked.parent / name)


def _note(marked: Path) -> None:
    with _marks_lock:
        _marks.setdefault(_owner(marked), set()).add(_key(marked))


def _forget(marked: Path) -> None:
    owner = _owner(marked)
    with _marks_lock:
        known = _marks.get(owner)
        if known is not None:
            known.discard(_key(marked))
            if not known:
                del _marks[owner]


def _forget_if_gone(marked: Path) -> None:
    if not os.path.lexists(marked):
        _forget(marked)


def _heal_before_save(final: Path) -> None:
    """What a save of `final` heals first: its folder whole the first time this process saves there (or
    heals it), else the marked folders of its own name that this process knows of (`_marks`)."""
    if _key(final.parent) not in _healed:
        heal_folder(final.parent)
        return
    with _marks_lock:
        known = sorted(_marks.get(_key(final), ()))
    entries = []
    for path in known:
        match = _LEFTOVER.fullmatch(path.name)
        if match and os.path.lexists(path):
            entries.append((match["kind"], path))
        else:
            _forget(path)
    if entries:
        _heal_entries(final, entries)


def _heal_name(final: Path, dead_temps: list[Path], prevs: list[Path]) -> list[str]:
    done = []
    if not os.path.lexists(final):
        newest = _newest(prevs + dead_temps)
        if newest is not None:
            os.replace(newest, final)
            _fsync_dir(final.parent)
            done.append(f"restored {final.name} from {newest.name}")
    for tmp in dead_temps:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
            done.append(f"removed {tmp.name}")
    if _is_complete(final):
        for prev in prevs:
            if prev.exists():
                _remove_checkpoint(prev, final)
                done.append(f"removed {prev.name}")
    return done


def _json_default(obj: Any):
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # mx.array, numpy arrays and scalars (`item` fails on arrays of size > 1)
        return obj.tolist()
    raise TypeError(f"value of type {type(obj).__name__} is not JSON serialisable: {obj!r}")


def check_callback_state(state: dict[str, Any], added_by: dict[str, str]) -> None:
    """Refuse, before anything is written, callback state that a checkpoint (JSON) would not give back as it
    was: in each callback's ``state_dict()`` (``state["callbacks"]``, by state_key) and in the entries of
    `state` that callbacks' ``on_save_checkpoint`` added (`added_by`: each such key and the name of the
    callback that added it). A dict key that is not a string would come back as one, a tuple as a list, and
    a set cannot be stored: each is named with its callback and field, at the first save. Arrays (MLX,
    numpy) come back as arrays, as Lightning gives tensors back (`state_arrays`)."""
    for key, value in (state.get("callbacks") or {}).items():
        check_keeps(value, f"callback {key!r}: its state_dict()", "")
    for key, callback in added_by.items():
        check_keeps(state[key], f"{callback}.on_save_checkpoint: checkpoint", f"[{key!r}]")


def check_keeps(value: Any, owner: str, field: str, tuples: bool = False) -> None:
    """Refuse what a checkpoint (JSON) would not give back as `value` held it, naming `owner` and `field`;
    `tuples`: a tuple is taken (the caller records where they are: hyperparameters). Arrays are taken: a
    save keeps them as arrays (`state_arrays`)."""
    # (a str or int Enum passed json.dumps, and came back a plain str or int)
    if isinstance(value, enum.Enum):
        raise TypeError(
            f"{owner}{field} is the enum member {type(value).__name__}.{value.name}, which a checkpoint (JSON) "
            f"gives back as its value {value.value!r}, not as the member; store {value.value!r} (or its name) "
            f"and convert it back with {type(value).__name__}(value) where it is read"
        )
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if hasattr(value, "tolist"):  # an array or an array's scalar
        _check_array_keeps(value, f"{owner}{field}")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"{owner}{field} has the key {key!r} ({type(key).__name__}): a checkpoint is JSON, whose "
                    f"keys are strings, so it would come back as {str(key)!r}; store {{str(key): ...}} and "
                    "convert the keys back where the state is loaded"
                )
            check_keeps(item, owner, f"{field}[{key!r}]", tuples)
        return
    if isinstance(value, list) or (tuples and isinstance(value, tuple)):
        for i, item in enumerate(value):
            check_keeps(item, owner, f"{field}[{i}]", tuples)
        return
    if isinstance(value, tuple):
        problem = "a tuple, which a checkpoint (JSON) gives back as a list; store a list"
    elif isinstance(value, Path):
        problem = f"a {type(value).__name__}, which a checkpoint (JSON) gives back as a str; store str(path)"
    elif isinstance(value, (set, frozenset)):
        problem = "a set, which a checkpoint (JSON) cannot store; store a sorted list"
    else:
        problem = (
            f"of type {type(value).__name__}, which a checkpoint (JSON) cannot store; store plain values"
        )
    raise TypeError(f"{owner}{field} is {problem} (and convert it back where the state is loaded)")


def _check_array_keeps(value: Any, where: str) -> None:
    """Refuse an array a checkpoint would not give back as one (`state_arrays` keeps the numeric MLX and
    numpy arrays; a 0-d one, or a numpy scalar, comes back as its number) or cannot store at all (text,
    bytes, dates, objects: JSON took their `tolist()` and failed without a name, or gave a list back)."""
    if isinstance(value, mx.array):
        return  # (every MLX dtype is numeric)
    if isinstance(value, (np.ndarray, np.generic)):
        kind = value.dtype.kind
        if kind in "biuf" or (kind == "c" and value.ndim > 0) or (kind == "U" and value.ndim == 0):
            return
        if value.ndim == 0:
            problem = f"a numpy {value.dtype} scalar, which a checkpoint (JSON) cannot store as it is"
        else:
            problem = (
                f"a numpy array of dtype {value.dtype}: a checkpoint keeps arrays of "
                "numbers and bools only (safetensors), and JSON would give this one back as a list, or fail"
            )
    elif getattr(value, "ndim", 0) == 0:
        return  # (a 0-d tensor of another library: the number it holds, as a 0-d array's)
    else:
        problem = (
            f"a {type(value).__module__}.{type(value).__name__}, which a checkpoint (JSON) gives back as a "
            "list; store it as a numpy array (`.numpy()`) or an mx.array"
        )
    raise TypeError(
        f"{where} is {problem} (store plain values, and convert them back where the state is loaded)"
    )


#: The leftovers of interrupted saves `resolve_checkpoint` has warned of in this process.
_leftovers_warned: set[Path] = set()


def resolve_checkpoint(path: str | os.PathLike, required: Sequence[str] = REQUIRED_FILES) -> Path:
    """The folder to read for `path`; when it is missing, the newest complete state an interrupted save left
    (the checkpoint it was replacing, or a finished temporary folder whose swap a crash cut short).
    `required`: the files the caller reads (a load of the weights alone needs `MODEL_FILES`, not the
    optimizer's). A leading ``~`` is the home folder, as ModelCheckpoint(dirpath="~/ck") saved there."""
    folder = Path(path).expanduser()
    if not folder.exists():
        _wait_for_live_save(folder)
    if not folder.exists():
        left = _leftovers(folder.parent).get(folder.name, [])
        found = _newest([p for kind, p in left if kind == "prev"] + [p for kind, p in left if kind == "tmp"])
        if found is not None:
            # Once per folder found: one resume resolves its checkpoint at several places (the recipes'
            # checks, the run record, the fit), and each place's warning printed the same line again.
            if found not in _leftovers_warned:
                _leftovers_warned.add(found)
                warnings.warn(
                    f"{folder} is missing; loading {found} left by an interrupted save", stacklevel=3
                )
            return found
        near = _checkpoints_near(folder)
        if folder.name == "last" and not near and folder.parent.is_dir():
            # (A fit's folder is made, and locked, as it starts: one killed or failed before its first save
            # leaves it empty. The save_last hint would send the recipes' users, whose runs always keep a
            # `last`, after a setting they cannot change. Only for `last`, the name a resume reads: another
            # missing name is a mistyped path as often, where "nothing to resume" would send them astray.)
            why = (
                f"; {folder.parent} holds no checkpoint, as a fit killed (kill -9, out of memory) or ended "
                "by an error before its first save leaves its folder: there is nothing to resume, start it "
                "again"
            )
        elif folder.name == "last":
            why = (
                " (a `last` checkpoint is kept only with ModelCheckpoint(..., save_last=True), as in "
                f"Lightning){near}"
            )
        elif folder.suffix == ".ckpt":
            # (Lightning's habit: its checkpoints are files, `epoch=3-step=24.ckpt`, `last.ckpt`; a path
            # written for it, or best_model_path + ".ckpt", names the folder here with a suffix it lacks.)
            stem = folder.with_suffix("")
            meant = f": pass {stem}" if stem.is_dir() else ""
            why = (
                "; an audiotrain checkpoint is a folder of safetensors + JSON files, named without the .ckpt "
                f"of Lightning's checkpoint files{meant}{near}"
            )
        else:
            why = near
        raise CheckpointNotFoundError(f"checkpoint folder {folder} does not exist{why}")
    if not folder.is_dir():
        # (A checkpoint's own file, dragged in from a file manager: the folder it is in is meant. Weights
        # another tool wrote, torch's or a Hugging Face folder's, load by name into a model built first.)
        if folder.name in CHECKPOINT_FILES and (folder.parent / STATE_FILE).is_file():
            meant = f"; give the folder it is in: {folder.parent}"
        elif folder.suffix == ".safetensors":
            # (MLX writes these too: mlx-lm's adapters, `save_weights`, the trainable parameters alone.)
            meant = (
                "; weights written elsewhere (save_weights, mx.save_safetensors of trainable_parameters(), "
                "another tool) load by name into a model you build: "
                f"model.load_state_dict(mx.load({str(folder)!r})), with strict=False for part of its "
                "weights (LoRA adapters onto a fresh base); then fit without ckpt_path"
            )
        elif folder.suffix in _WEIGHT_FILE_SUFFIXES:
            meant = (
                "; weights another tool wrote load by name into a model you build: "
                f"model.load_state_dict(torch.load({str(folder)!r})"
                + ('["state_dict"])' if folder.suffix == ".ckpt" else ")")  # (Lightning's: a dict around it)
            )
        else:
            meant = ""
        raise CheckpointError(
            f"{folder} is a file, but an audiotrain checkpoint is a folder holding {', '.join(required)}"
            + meant
        )
    missing = [name for name in required if not (folder / name).is_file()]
    if len(missing) == len(required):
        # A run folder, most often: its checkpoints are one or two levels down (RUN/checkpoints/last).
        inside = _checkpoints_under(folder, "a run folder? its checkpoints") or _recorded_checkpoints(folder)
        raise CheckpointError(
            f"{folder} is not a complete audiotrain checkpoint: it holds none of {', '.join(required)}{inside}"
        )
    if missing:
        # (One that is there but not a file, a folder of that name: said as it is, not "missing".)
        there = [name for name in missing if (folder / name).exists() or (folder / name).is_symlink()]
        absent = [name for name in missing if name not in there]
        problems = ([f"missing {', '.join(absent)}"] if absent else []) + [
            f"{name} is {'a folder' if (folder / name).is_dir() else 'not a regular file'}" for name in there
        ]
        raise CheckpointError(
            f"{folder} is not a complete audiotrain checkpoint: {'; '.join(problems)} "
            f"(expected the files {', '.join(required)})"
        )
    for name in CHECKPOINT_FILES:
        _inside(folder / name)  # every file, before any is read: a loader may read the state first
    return folder


#: How long a load waits for a checkpoint that a running fit's save is swapping in (the gap between its two
#: renames is microseconds; a slow disk or a paused writer may stretch it).
SAVE_WAIT_S = 5.0


def being_saved(folder: str | os.PathLike) -> bool:
    """Whether a live process is saving the checkpoint `folder` now: its ``.NAME.tmp-*`` folder is locked
    (`_locked_temp_folder`). While that save swaps it in, `folder` is briefly missing: a reader must wait for
    it, not take the writer's temporary folder (nor the ``prev`` it is about to delete) for a crash's."""
    folder = Path(folder)
    for kind, entry in _leftovers(folder.parent).get(folder.name, []):
        if kind != "tmp":
            continue
        fd = _try_lock(entry)
        if fd is not None:
            os.close(fd)  # a dead writer's (a crash): `resolve_checkpoint` may recover from it
        elif entry.exists():
            return True
    return False


def left_by_interrupted_save(folder: str | os.PathLike) -> bool:
    """Whether a save of the missing checkpoint `folder` killed midway left a complete state of it (its
    ``prev``, or a finished temporary folder) that `resolve_checkpoint` loads in its place, with a warning."""
    folder = Path(folder)
    left = _leftovers(folder.parent).get(folder.name, [])
    return _newest([p for kind, p in left if kind in ("prev", "tmp")]) is not None


def _wait_for_live_save(folder: Path) -> None:
    """Wait (up to `SAVE_WAIT_S`) for the missing `folder` while a running fit's save is swapping it in;
    `CheckpointError` if it stays missing. Returns at once when no live save is under way."""
    deadline = time.monotonic() + SAVE_WAIT_S
    while being_saved(folder):
        if folder.exists():
            return
        if time.monotonic() > deadline:
            raise CheckpointError(
                f"{folder} is being replaced by a save of a running fit and stayed missing for "
                f"{SAVE_WAIT_S:g} s; run again in a moment"
            )
        time.sleep(0.02)


#: How many times a load is tried while saves of a running fit keep replacing the checkpoint under it.
LOAD_TRIES = 5


def read_unreplaced(path: Any, resolve: Callable[[Any], Path], read: Callable[[Path], T]) -> T:
    """``read(resolve(path))``, tried again when a running fit's save replaced the checkpoint folder during
    the read (its state of one save and weights of the next, or a file gone in the swap): the folder found
    at the end is not the one found at the start. An error of a folder that stayed as it was is raised as
    it is; after `LOAD_TRIES` torn reads, a `CheckpointError` naming `path`, as the user gave it."""
    for _ in range(LOAD_TRIES):
        folder = resolve(path)
        before = _identity(folder)
        try:
            result = read(folder)
        except (CheckpointError, OSError):
            if before is not None and _identity(folder) == before:
                raise  # (not torn: the folder itself is at fault)
        else:
            if _identity(folder) == before:
                return result
        time.sleep(0.05)
    raise CheckpointError(
        f"{path}: the checkpoint was replaced by a save of a running fit while it was read, {LOAD_TRIES} "
        "times; run again"
    )


def _identity(folder: Path) -> tuple[int, int] | None:
    """Which folder stands at `folder` (a save puts a new one there), or None when none does."""
    try:
        info = os.stat(folder)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _inside(file: Path) -> Path:
    """`file` of a checkpoint folder, unless it is a link leading outside that folder: loading reads nothing
    from outside the folder it was given (as the CLAP loader, `audiotrain.models.clap.loading`)."""
    return _loading.check_inside(file.parent, file, CheckpointError)


def _checkpoints_near(folder: Path) -> str:
    """For a missing checkpoint: the checkpoints beside it or one level down (newest first), to pick from,
    after the folder they are in ("there" alone did not say which: the current folder is ".")."""
    where = "the current folder" if folder.parent == Path(".") else str(folder.parent)
    return _checkpoints_under(folder.parent, f"checkpoints in {where}")


def _checkpoints_under(parent: Path, label: str) -> str:
    """``; {label} (newest first): ...``: the checkpoints one or two levels under `parent` ("" if none)."""
    if not parent.is_dir():
        return ""
    found = [p.parent for pattern in (f"*/{STATE_FILE}", f"*/*/{STATE_FILE}") for p in parent.glob(pattern)]
    if not found:
        return ""
    found.sort(key=lambda p: (p / STATE_FILE).stat().st_mtime, reverse=True)
    return f"; {label} (newest first): {listed(found, 5)}"


#: The record a chord run keeps in its run folder; its ``config.checkpoint_dir`` names where its checkpoints are.
RUN_RECORD = "config.json"


def recorded_checkpoint_dir(run_dir: Path) -> object:
    """The ``checkpoint_dir`` that the run record (`RUN_RECORD`) in `run_dir` holds, as it is there; None
    where there is no record, or it is not a run's (no ``config`` object). A record that is a link leading
    outside `run_dir`, or that cannot be read as JSON, is a `CheckpointError` naming it: it chooses which
    checkpoint loads, and loading reads nothing outside the folder it was given."""
    record = run_dir / RUN_RECORD
    if not os.path.lexists(record):
        return None
    config = read_json_file(_inside(record), CheckpointError)
    config = config.get("config") if isinstance(config, dict) else None
    return config.get("checkpoint_dir") if isinstance(config, dict) else None


def _recorded_checkpoints(run_dir: Path) -> str:
    """``; a run folder: ...``: where the run in `run_dir` saved its checkpoints, as its ``config.json``
    records them (an absolute ``checkpoint_dir``: nothing of them lies under the run folder), "" if that
    names no checkpoint. Not read from there: a load reads only the folder it was given."""
    _inside(run_dir / RUN_RECORD)  # (a link leading out of the folder is refused, not read for a hint)
    try:
        recorded = recorded_checkpoint_dir(run_dir)
    except CheckpointError:  # (a record that is not JSON: no hint)
        return ""
    if not isinstance(recorded, str) or not recorded.strip():
        return ""
    checkpoints = Path(recorded).expanduser()
    checkpoints = checkpoints if checkpoints.is_absolute() else run_dir / checkpoints
    found = _checkpoints_under(checkpoints, "pass one of them")
    if not found:
        return ""
    return f"; a run folder, whose config.json records its checkpoints in {checkpoints}{found}"


def read_state(folder: Path, model_alone: bool = False) -> dict[str, Any]:
    """The checkpoint's trainer_state.json, with the fields every loader reads checked (each named), and
    its non-finite floats as they were saved (`NON_FINITE_ENTRY`; a checkpoint written before it has them
    as bare NaN, which Python's JSON reads too). `model_alone`: as `_put_back_arrays` takes it."""
    state = read_json_file(_inside(folder / STATE_FILE), CheckpointError, unique_keys=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f'{folder / STATE_FILE} was not written by audiotrain (expected "format": "{FORMAT}")'
        )
    restore_non_finite(state, state.pop(NON_FINITE_ENTRY, None))
    _put_back_arrays(state, folder, model_alone)
    version = state.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise CheckpointError(
            f"{folder / STATE_FILE}: 'format_version' must be an int (this audiotrain writes "
            f"{FORMAT_VERSION}), got {version!r}"
        )
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{folder} uses checkpoint format {version}, newer than this audiotrain ({FORMAT_VERSION}); "
            "upgrade audiotrain"
        )
    if version < FORMAT_VERSION:
        raise OlderFormatError(folder, version)
    _check_progress_fields(state, folder / STATE_FILE)
    _check_run_fields(state, folder / STATE_FILE)
    return state


def _put_back_arrays(state: dict[str, Any], folder: Path, model_alone: bool = False) -> None:
    """The arrays of the state's callbacks and hooks, read from `ARRAYS_FILE` into their places (its header
    checked first; NaN is a value a callback may keep, so it is not refused). `model_alone`: the model is
    loaded without the rest (`MODEL_FILES`), which reads the module's state alone: a copy of those two files
    of a run whose callbacks kept arrays loads without their file (their places keep the descriptions)."""
    file = folder / ARRAYS_FILE
    places = state.get(state_arrays.ARRAYS_ENTRY) or []
    module_arrays = any(isinstance(p, list) and p[:1] == ["module_state"] for p in places)
    if model_alone and not module_arrays and not os.path.lexists(file):
        state.pop(state_arrays.ARRAYS_ENTRY, None)
        return

    def read() -> dict[str, mx.array]:
        if not os.path.lexists(file):
            raise CheckpointError(
                f"{folder} is not a complete audiotrain checkpoint: missing {ARRAYS_FILE}, which holds the "
                f"arrays its {STATE_FILE} lists under {state_arrays.ARRAYS_ENTRY!r}"
            )
        arrays = read_arrays(file, finite=False)
        mx.eval(arrays)  # (MLX reads lazily: now, before a later save replaces the folder)
        return arrays

    state_arrays.put_back_arrays(state, read, file, CheckpointError)


#: The oldest checkpoint format whose model `read_model_state` reads: format 1 differs from 2 only in the
#: trainer state's layout (what a resume restores); its weights and module state are as format 2 holds them.
OLDEST_MODEL_FORMAT = 1


def read_model_state(folder: Path) -> dict[str, Any]:
    """`read_state` for loading the model alone (its weights, and the module state it was saved with), which
    a checkpoint of an older format (down to `OLDEST_MODEL_FORMAT`) serves too: a run of last week is still
    scored and used, only not resumed. Its progress and random key are given in today's layout (format 1
    held them at the top: ``epoch``, ``global_step``, ``rng`` ...); ``format_version`` stays its own."""
    try:
        return read_state(folder, model_alone=True)
    except OlderFormatError as error:
        if error.version < OLDEST_MODEL_FORMAT:
            raise
    state = read_json_file(_inside(folder / STATE_FILE), CheckpointError, unique_keys=True)
    restore_non_finite(state, state.pop(NON_FINITE_ENTRY, None))
    _put_back_arrays(state, folder, model_alone=True)
    state = {**state, **_format_1_progress(state)}
    _check_progress_fields(state, folder / STATE_FILE)
    return state


def _format_1_progress(state: dict[str, Any]) -> dict[str, Any]:
    """The ``progress`` and ``random`` entries of a format-1 trainer state, from its top-level fields."""
    names = {
        "epoch": "epoch",
        "batch_in_epoch": "batch_in_epoch",
        "global_step": "global_step",
        "total_batches": "total_train_batches",
        "micro_batches": "micro_batches_in_window",
    }
    # (The two counters only a resume reads may be absent; a missing epoch or step is named by the check.)
    progress = {new: state.get(old, 0 if new.endswith("batches") else None) for new, old in names.items()}
    return {"progress": progress, "random": {"mlx": state.get("rng")}}


#: The largest count a checkpoint's progress holds: an int64, as the step counters are on the device.
MAX_COUNT = 2**63 - 1


def check_state_after_callbacks(state: dict[str, Any], editors: list[str]) -> None:
    """What the `editors`' `on_save_checkpoint` (callbacks of the user's) left of the Trainer's entries,
    checked as `read_state` checks a hand-edited file, before the save: they may edit them (the history's
    rows), but a value no resume reads was written over the previous checkpoint and refused only there."""
    where = f"{' / '.join(editors)}.on_save_checkpoint left in the checkpoint"
    for key in ("progress", "random"):
        if not isinstance(state.get(key), dict):
            raise ValueError(
                f"{where}: {key!r} is the Trainer's and a resume reads it, got {state.get(key)!r}"
            )
    try:
        _check_progress_fields(state, where)
        _check_run_fields(state, where)
    except CheckpointError as err:
        raise ValueError(f"{err}: leave the Trainer's entries as a resume reads them") from None


def _check_progress_fields(state: dict[str, Any], path: Path | str) -> None:
    """The fields a resume reads, with their types: a hand-edited file fails here, by name."""
    progress = state.get("progress")
    if not isinstance(progress, dict):
        raise CheckpointError(
            f"{path}: 'progress' must be an object with epoch, global_step, ..., got {progress!r}"
        )
    for name in ("epoch", "batch_in_epoch", "global_step", "total_batches", "micro_batches"):
        value = progress.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CheckpointError(f"{path}: 'progress.{name}' must be an int >= 0, got {value!r}")
        if value > MAX_COUNT:
            raise CheckpointError(
                f"{path}: 'progress.{name}' must be at most 2**63 - 1 (an int64), got {value}"
            )
    optional = (
        ("callbacks", dict, "an object"),
        ("loggers", list, "a list"),
        ("logger_kinds", list, "a list (each saved logger state's class)"),
        ("hyper_parameters", dict, "an object (the module's __init__ arguments)"),
        ("hyper_parameter_tuples", list, "a list (the paths of the tuples among hyper_parameters)"),
        ("hyper_parameter_omegaconf", list, "a list (the arguments that were OmegaConf configs)"),
        ("hyper_parameters_set_later", list, "a list (the keys set in hparams after save_hyperparameters)"),
        ("module_state", dict, "an object"),
        ("optimizer_settings", list, "a list (the class and settings of each optimizer)"),
        ("module_state_run", dict, "an object (the epoch and global_step the module's hook saw)"),
        ("datamodule", dict, "an object (the datamodule's state_dict())"),
        ("datamodule_class", str, "a string (the class of the datamodule whose state it holds)"),
    )
    for name, kind, what in optional:
        if name in state and not isinstance(state[name], kind):
            raise CheckpointError(f"{path}: '{name}' must be {what}, got {type(state[name]).__name__}")
    rng = (state.get("random") or {}).get("mlx") if isinstance(state.get("random"), dict) else None
    if not (isinstance(rng, list) and len(rng) == 2 and all(isinstance(v, int) and v >= 0 for v in rng)):
        raise CheckpointError(f"{path}: 'random.mlx' must be two unsigned ints (the PRNG key), got {rng!r}")
    ranks = state["random"].get("mlx_ranks", [])  # (data parallel: each rank's key, rank 0's first)
    if not (isinstance(ranks, list) and all(_is_key(key) for key in ranks)):
        raise CheckpointError(
            f"{path}: 'random.mlx_ranks' must be a list of PRNG keys, two unsigned ints each, got {ranks!r}"
        )


def _is_key(value: object) -> bool:
    """An MLX PRNG key as JSON: two ints from 0 to 2**32 - 1."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32 for v in value)
    )


def _check_run_fields(state: dict[str, Any], path: Path | str) -> None:
    """The other fields a resume restores (today's format), where the file has them: a hand-edited value
    failed in the restore, as "a value this audiotrain cannot restore" naming no field, or passed."""
    if "elapsed" in state and not _is_weight(state["elapsed"]):
        raise CheckpointError(f"{path}: 'elapsed' must be a number of seconds >= 0, got {state['elapsed']!r}")
    progress = state["progress"]  # (its counts are checked: `_check_progress_fields`)
    if "validation_pending" in progress and not isinstance(progress["validation_pending"], bool):
        # (bool("false") is True: coerced, the resumed fit ran a validation that was not due.)
        raise CheckpointError(
            f"{path}: 'progress.validation_pending' must be true or false, got {progress['validation_pending']!r}"
        )
    validated = progress.get("validated_epoch", -1)
    if isinstance(validated, bool) or not isinstance(validated, int) or not -1 <= validated <= MAX_COUNT:
        raise CheckpointError(
            f"{path}: 'progress.validated_epoch' must be an int from -1 (none) to 2**63 - 1, got {validated!r}"
        )
    history = state.get("history", {"rows": []})
    rows = history.get("rows") if isinstance(history, dict) else None
    if not (isinstance(rows, list) and all(isinstance(row, dict) for row in rows)):
        raise CheckpointError(
            f"{path}: 'history.rows' must be a list of objects (one per epoch), got {rows!r}"
        )
    _check_history_rows(rows, path)
    _check_config(state.get("config", {}), path)
    trainable = state.get("trainable")
    if isinstance(trainable, dict) and trainable.get("now") == []:
        # (No fit saves an empty set, `TrainableSets.state_dict`: resumed, the fit blamed the module for it.)
        raise CheckpointError(f"{path}: 'trainable.now' must name the parameters the fit trained, got []")
    frozen_written = state.get("step_frozen_written", [])
    if not (isinstance(frozen_written, list) and all(isinstance(name, str) for name in frozen_written)):
        # (a string was taken as a set of its characters: the names of frozen arrays the step writes)
        raise CheckpointError(
            f"{path}: 'step_frozen_written' must be a list of parameter names (frozen arrays the training "
            f"step assigns, kept in float32 under bf16-mixed), got {frozen_written!r}"
        )
    _check_random_generators(state["random"], path)
    _check_running_means(state.get("running_means"), path)


def _check_config(config: object, path: Path | str) -> None:
    """The run's settings a resume reads (`config.trainer`'s accumulate_grad_batches and seed, a datamodule's
    `config.datamodule_hparams`): another type failed as "'str' object has no attribute 'get'"."""
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: 'config' must be an object (the run's settings), got {config!r}")
    # (`config.trainer` null too: resume.py reads it with .get("trainer", {}), which gives None back; a
    # datamodule's hparams are null where the run had no datamodule)
    for key, none in (("trainer", False), ("datamodule_hparams", True)):
        if key in config and not isinstance(config[key], dict) and not (none and config[key] is None):
            raise CheckpointError(f"{path}: 'config.{key}' must be an object, got {config[key]!r}")


def _check_history_rows(rows: list[dict[str, Any]], path: Path | str) -> None:
    """Each row's values as a history holds them: ``epoch`` and ``step`` counts, every other value a number
    (NaN and infinities included: a diverged loss), a string (a callback's note, written at a save) or
    null. A list or object trained on and then failed in the plot of the run's end, naming no field."""
    for i, row in enumerate(rows):
        if "epoch" not in row:  # (a resume reads the last row's epoch: a KeyError 'epoch', naming no file)
            raise CheckpointError(
                f"{path}: 'history.rows[{i}]' must hold its 'epoch' (an int >= 0), got {row!r}"
            )
        for key, value in row.items():
            if key in ("epoch", "step"):
                if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
                    raise CheckpointError(
                        f"{path}: 'history.rows[{i}].{key}' must be an int >= 0, got {value!r}"
                    )
            elif value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
                raise CheckpointError(
                    f"{path}: 'history.rows[{i}].{key}' must be a number, a string or null, got {value!r}"
                )


def _is_weight(value: object) -> bool:
    """Whether `value` is a finite number >= 0 (a weight, a duration)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < math.inf


def _check_random_generators(random_state: dict[str, Any], path: Path | str) -> None:
    """numpy's and Python's generator states, as `RandomState.capture` writes them (where the file has
    them): numpy's and Python's own errors named no field ("state vector is the wrong size")."""

    def words(value: object, count: int) -> bool:
        return (
            isinstance(value, list)
            and len(value) == count
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32 for v in value)
        )

    numpy_state = random_state.get("numpy", {})
    python_state = random_state.get("python", {})
    for name, value in (("numpy", numpy_state), ("python", python_state)):
        if not isinstance(value, dict):
            raise CheckpointError(f"{path}: 'random.{name}' must be an object, got {value!r}")
    internal = python_state.get("internal", [0] * 625)
    checks = (
        ("numpy.kind", numpy_state.get("kind", "MT19937") == "MT19937", "'MT19937'"),
        ("numpy.keys", words(numpy_state.get("keys", [0] * 624), 624), "624 ints from 0 to 2**32 - 1"),
        ("numpy.pos", _count_up_to(numpy_state.get("pos", 0), 624), "an int from 0 to 624"),
        (
            "python.internal",
            isinstance(internal, list) and words(internal[:-1], 624) and _count_up_to(internal[-1], 624),
            "625 ints (624 from 0 to 2**32 - 1, then one from 0 to 624)",
        ),
    )
    for name, ok, what in checks:
        if not ok:
            field = name.split(".")[1]
            value = (numpy_state if name.startswith("numpy") else python_state).get(field)
            shown = f"a list of {plural(len(value), 'value')}" if isinstance(value, list) else repr(value)
            raise CheckpointError(f"{path}: 'random.{name}' must be {what}, got {shown}")


def _count_up_to(value: object, most: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= most


def _check_running_means(running_means: object, path: Path | str) -> None:
    """The weights of the running means' steps (each rank's, under data parallel): NaN or negative, the
    epoch's mean came out NaN or off without a word."""
    if not isinstance(running_means, dict):
        return  # (a checkpoint without them, or one the loader names)
    shares = running_means.get("ranks")
    named = (
        [(f"running_means.ranks[{i}]", share) for i, share in enumerate(shares)]
        if isinstance(shares, list)
        else [("running_means", running_means)]
    )
    for name, share in named:
        if not isinstance(share, dict):
            continue
        for scope in ("interval_weight", "epoch_weight"):
            if scope in share and not _is_weight(share[scope]):
                raise CheckpointError(f"{path}: '{name}.{scope}' must be a number >= 0, got {share[scope]!r}")
        pending = share.get("pending", [])
        if not isinstance(pending, list):
            raise CheckpointError(f"{path}: '{name}.pending' must be a list of steps, got {pending!r}")
        for i, step in enumerate(pending):
            if not (isinstance(step, list) and len(step) in (2, 3) and isinstance(step[0], dict)):
                raise CheckpointError(
                    f"{path}: '{name}.pending[{i}]' must be [values, weight] or [values, weight, own "
                    f"weights], got {step!r}"
                )
            if not _is_weight(step[1]):
                raise CheckpointError(
                    f"{path}: '{name}.pending[{i}][1]' (the step's weight) must be a number >= 0, got "
                    f"{step[1]!r}"
                )
        folded = share.get("in_interval", 0)
        if isinstance(folded, bool) or not isinstance(folded, int) or not 0 <= folded <= len(pending):
            raise CheckpointError(
                f"{path}: '{name}.in_interval' must be a count of its {len(pending)} pending steps, got "
                f"{folded!r}"
            )


def check_batch_in_epoch(batch_in_epoch: int, epoch_batches: int | None, source: Path | None) -> None:
    """A resumed epoch's position must lie inside this training loader's epoch (of `epoch_batches`, None for a
    stream): beyond it the rest of the epoch would be skipped without a word. `source`: the trainer_state.json
    the position came from."""
    if epoch_batches is not None and batch_in_epoch > epoch_batches:
        raise CheckpointError(
            f"{source or 'the checkpoint'}: 'progress.batch_in_epoch' must be at most {epoch_batches} (the "
            f"batches of an epoch of this training loader), got {batch_in_epoch}: resuming there would skip the "
            "rest of the epoch. Was the file edited, or does this fit train on other data than the checkpoint's?"
        )


@contextlib.contextmanager
def named_source(path: Path):
    """Errors from loading the state saved in `path` name that file as their source."""
    try:
        yield
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:  # a part of the wrong type
        from audiotrain.data.loader import ResumeMismatchError
        from audiotrain.train.hook_logs import LogRefused

        if isinstance(err, LogRefused):  # (self.log in on_load_checkpoint: the user's call, said as it is)
            raise
        if isinstance(
            err, ResumeMismatchError
        ):  # (a sound file this run cannot continue: no "value" to blame)
            raise CheckpointError(f"{path}: {err}") from err
        raise CheckpointError(f"{path} holds a value this audiotrain cannot restore: {err}") from err


def read_header(file: Path) -> dict[str, _loading.SafetensorsEntry]:
    """The tensors of a checkpoint's safetensors `file` by name, from its header alone ({} when the file is
    missing): names, shapes and dtypes to compare with a model before any tensor data is read. A folder or FIFO
    in its place is refused naming what it is (it was called missing)."""
    if not os.path.lexists(file):
        return {}
    return _loading.check_safetensors_header(
        check_regular_file(_inside(file), CheckpointError), CheckpointError
    )


def read_arrays(
    file: Path, finite: bool = True, header: dict[str, _loading.SafetensorsEntry] | None = None
) -> dict[str, mx.array]:
    """The arrays of a checkpoint's safetensors `file` ({} when it is missing); with `header` (`read_header`'s,
    perhaps with entries left out or renamed), only those, under its names. With `finite`, NaN or infinite
    values are refused naming the tensor: a model or optimizer state holding them predicts NaN and trains on
    to NaN, and would otherwise fail only after the data has been read (or a whole run later). One check
    per tensor at load time; nothing is checked while training."""
    header = read_header(file) if header is None else header
    return _loading.read_safetensors(file, header, CheckpointError, finite) if header else {}


def read_callback_arrays(folder: Path) -> dict[str, mx.array]:
    """The arrays of the checkpoint's `CALLBACKS_FILE` by their names there (``<state_key>/<name>``), {} when
    it has none (an older checkpoint, or a run whose callbacks keep no arrays). Its header is checked before
    anything is read, and a NaN or infinite value is refused naming the tensor (`read_arrays`); which
    callback takes which tensor, and whether they fit, is `CallbackList.load_state_arrays`'s."""
    return read_arrays(folder / CALLBACKS_FILE)


def read_checked(
    file: Path,
    expected: dict[str, mx.array],
    what: str,
    fresh_parameters: frozenset[str] = frozenset(),
    finite: bool = True,
    header: dict[str, _loading.SafetensorsEntry] | None = None,
) -> dict[str, mx.array]:
    """The arrays of checkpoint file `file` (or of its `header`'s entries, see `read_arrays`) checked against
    `expected` as `check_arrays` does, and in its dtypes. The names, shapes and dtypes are compared from the
    file's header first: a file of another model, or with an extra tensor however large, is refused having
    read nothing more, and only the tensors `expected` names are read (and checked for NaN)."""
    header = read_header(file) if header is None else header
    check_matches(header, expected, what, file, fresh_parameters)
    header = {k: v for k, v in header.items() if not former_weight(k, expected)}
    return _in_expected_dtypes(read_arrays(file, finite, header), expected)


def check_arrays(
    loaded: dict[str, mx.array],
    expected: dict[str, mx.array],
    what: str,
    file: Path,
    fresh_parameters: frozenset[str] = frozenset(),
) -> Any:
    """Compare names, shapes and kinds of dtype of `loaded` against `expected` (flat dicts); returns the flat
    arrays in the expected dtypes, ready for `merge_flat`. Entries of `fresh_parameters` (optimizer state of
    parameters the checkpoint's run never trained: ``<parameter>.<slot>``, under any prefix) may be
    missing: they keep the values in `expected`. A float array is cast to the expected float dtype (a
    float16 export loads into a float32 model), but an integer or bool array where a float one is expected,
    or the reverse, is refused: casting would truncate the weights (most become 0) without a word."""
    check_matches(loaded, expected, what, file, fresh_parameters)
    return _in_expected_dtypes(loaded, expected)


def _in_expected_dtypes(loaded: dict[str, mx.array], expected: dict[str, mx.array]) -> dict[str, mx.array]:
    return {
        k: v.astype(expected[k].dtype) if v.dtype != expected[k].dtype else v
        for k, v in loaded.items()
        if not former_weight(k, expected)
    }


#: Attributes that earlier audiotrain releases kept as weights (MLX's nn.Module keeps an array attribute as
#: one) and that are plain attributes now: Lightning's `self.example_input_array`. Their checkpoints hold it,
#: and its optimizer slots; a module of now has no such weight, and loading skips them (it was refused as
#: "1 unexpected (e.g. example_input_array)": load_from_checkpoint and every resume of such a run).
_FORMER_WEIGHTS = frozenset({"example_input_array"})


def former_weight(key: str, expected: Mapping[str, Any]) -> bool:
    return key not in expected and not _FORMER_WEIGHTS.isdisjoint(key.split("."))


def check_matches(
    loaded: Mapping[str, Any],
    expected: dict[str, mx.array],
    what: str,
    file: Path,
    fresh_parameters: frozenset[str] = frozenset(),
) -> None:
    """`check_arrays`' check alone, of anything with a shape and dtype: arrays, or a file's `read_header`
    entries (a dtype MLX does not know, None, is not compared: reading it fails, naming the file)."""
    loaded = {k: v for k, v in loaded.items() if not former_weight(k, expected)}
    missing = sorted(k for k in set(expected) - set(loaded) if not _of_any(k, fresh_parameters))
    unexpected = sorted(set(loaded) - set(expected))
    common = sorted(set(expected) & set(loaded))
    shapes = [
        f"{k}: checkpoint {tuple(loaded[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in common
        if tuple(loaded[k].shape) != tuple(expected[k].shape)
    ]
    kinds = [
        f"{k}: checkpoint {_dtype_name(loaded[k].dtype)} vs model {_dtype_name(expected[k].dtype)}"
        for k in common
        if loaded[k].dtype is not None and _dtype_kind(loaded[k].dtype) != _dtype_kind(expected[k].dtype)
    ]
    if missing or unexpected or shapes or kinds:

        def examples(items: list[str], sep: str = ", ") -> str:
            # A few names are enough to recognise another model; hundreds would bury the message.
            return sep.join(items[:3]) + (f"{sep}..." if len(items) > 3 else "")

        parts = [f"{len(loaded)} arrays in the checkpoint, {len(expected)} expected"]
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {examples(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {examples(unexpected)})")
        if shapes:
            parts.append(f"{len(shapes)} mis-shaped (e.g. {examples(shapes, '; ')})")
        if kinds:
            parts.append(f"{len(kinds)} of another kind of dtype (e.g. {examples(kinds, '; ')})")
        raise CheckpointError(
            f"{file} does not match this {what}: {'; '.join(parts)}{_quantization_hint(loaded, expected)}"
        )


def _quantized_layers(arrays: Mapping[str, Any]) -> set[str]:
    """The layers `nn.quantize` made of `arrays`' names: those holding a `weight` beside its `scales`."""
    return {
        k.removesuffix(".scales") for k in arrays if k.endswith(".scales") and f"{k[:-7]}.weight" in arrays
    }


def _quantization_hint(loaded: Mapping[str, Any], expected: dict[str, mx.array]) -> str:
    """Why the names and shapes differ where one side was quantized and the other not (a QLoRA run's
    checkpoint loaded into the model before `nn.quantize`, or the reverse): what to change, not only
    the uint32 weights and scales a user has to recognise."""
    in_checkpoint, in_model = _quantized_layers(loaded), _quantized_layers(expected)
    only_checkpoint, only_model = sorted(in_checkpoint - in_model), sorted(in_model - in_checkpoint)
    if only_checkpoint:
        return (
            f". The checkpoint's model was quantized (nn.quantize) where this one is not (e.g. "
            f"{', '.join(only_checkpoint[:3])}): quantize this model the same way (nn.quantize with the "
            "run's group_size and bits, in __init__ or configure_model) before loading"
        )
    if only_model:
        return (
            f". This model is quantized (nn.quantize) where the checkpoint's was not (e.g. "
            f"{', '.join(only_model[:3])}): load the checkpoint into the model before nn.quantize, "
            "then quantize"
        )
    # Both quantized: a layer's packed words per row tell its bits, its scales per row its groups, where
    # its input size is the same. A layer of another size (a wider model: rows, or words and scales in the
    # same proportion) was said to have "another bits and group_size" though both were the run's.
    differ: dict[str, list[str]] = {"bits": [], "group_size": []}
    for layer in sorted(in_checkpoint & in_model):
        (*w_rows, w_saved), (*s_rows, s_saved) = (
            loaded[f"{layer}.weight"].shape,
            loaded[f"{layer}.scales"].shape,
        )
        (*w_rows_now, w_now), (*s_rows_now, s_now) = (
            expected[f"{layer}.weight"].shape,
            expected[f"{layer}.scales"].shape,
        )
        if w_rows != w_rows_now or s_rows != s_rows_now or w_saved * s_now == w_now * s_saved:
            continue
        for what, saved, now in (("bits", w_saved, w_now), ("group_size", s_saved, s_now)):
            if saved != now:
                differ[what].append(layer)
    settings = [f"{what} (e.g. {', '.join(layers[:3])})" for what, layers in differ.items() if layers]
    if settings:
        return (
            f". Both are quantized (nn.quantize), with another {' and '.join(settings)}: quantize this model "
            "with the run's group_size and bits"
        )
    return ""


def _dtype_kind(dtype: mx.Dtype) -> str:
    """bool, integer or floating (complex too): casts within a kind keep the values, across kinds they do not."""
    if dtype == mx.bool_:
        return "bool"
    return "integer" if mx.issubdtype(dtype, mx.integer) else "floating"


def _dtype_name(dtype: mx.Dtype) -> str:
    return str(dtype).removeprefix("mlx.core.")


def _of_any(key: str, parameters: frozenset[str]) -> bool:
    """Whether the state entry `key` is a slot of one of `parameters` (``a.b.m`` or ``states.0.a.b.m``)."""
    return any(f".{name}." in f".{key}" for name in parameters)


def checked_tree(
    loaded: dict[str, mx.array],
    tree: Any,
    what: str,
    file: Path,
    fresh_parameters: frozenset[str] = frozenset(),
) -> Any:
    """`tree` (a parameter or state tree) with its arrays replaced by `loaded`, after checking that
    names and shapes match exactly (an error lists every missing, unexpected and mis-shaped one; see
    `check_arrays` for `fresh_parameters`)."""
    return merge_flat(tree, check_arrays(loaded, flat(tree), what, file, fresh_parameters))


def read_tree(
    file: Path,
    tree: Any,
    what: str,
    fresh_parameters: frozenset[str] = frozenset(),
    finite: bool = True,
    header: dict[str, _loading.SafetensorsEntry] | None = None,
) -> Any:
    """`tree` (a parameter or state tree) with its arrays replaced by those of checkpoint file `file`, read
    and checked as `read_checked` does (the header first; a tree key the header lacks keeps its value only
    where `fresh_parameters` allows it)."""
    return merge_flat(tree, read_checked(file, flat(tree), what, fresh_parameters, finite, header))


def merge_flat(tree: Any, flat_values: dict[str, mx.array]) -> Any:
    """`tree` with its array leaves replaced by `flat_values` (keyed like `tree_flatten`).

    Unlike `tree_unflatten`, this keeps the structure exactly, including the empty subtrees that
    parameter-free layers (Dropout) leave in parameter and optimizer-state trees: a compiled step
    must see the same structure after a resume as before.
    """
    return tree_map_with_path(lambda path, x: flat_values.get(path, x), tree)


def flat(tree: Any) -> dict[str, mx.array]:
    return {k: v for k, v in tree_flatten(tree) if isinstance(v, mx.array)}
