"""Writing a file so that no reader ever sees part of it; reading a settings file (JSON) so that a hostile one
(a FIFO, deep nesting, a huge integer) gives a one-line error naming it; claiming a new folder that no other
process has."""

from __future__ import annotations

import codecs
import contextlib
import errno
import json
import math
import numbers
import os
import re
import stat
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from audiotrain._lfs import MAX_POINTER_BYTES, pointer_text
from audiotrain._text import listed

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

#: What `write_atomically`'s temporary files start with (the feature cache's `clear` deletes those a crash
#: left).
TMP_PREFIX = ".tmp-"

#: The file a fit keeps locked (``flock``) in a ModelCheckpoint dirpath it saves to; it names that process.
#: (Here, not in `audiotrain.train.checkpoint`, which imports mlx: `runs` looks for it in every folder.)
CLAIM_FILE = ".audiotrain-fit.lock"

#: What macOS writes into a folder by itself: the Finder's view settings as a folder is opened, a custom
#: icon, and on a FAT or exFAT drive or a network share an AppleDouble twin ``._x`` beside each file.
FINDER_METADATA = frozenset({".DS_Store", ".localized", "Icon\r"})


def is_finder_metadata(name: str) -> bool:
    """Whether `name` is a file macOS made in a folder (`FINDER_METADATA`, ``._x``), not a user's work: a
    folder made in the Finder for a run holds a ``.DS_Store`` as soon as it is opened."""
    return name in FINDER_METADATA or name.startswith("._")


#: The causes of a failed write that lie with the storage, not with the name written: a full disk, a quota, a
#: file too large for the file system, an I/O error, a file system remounted read-only.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS})


class OutputWriteError(OSError):
    """An output file (a history, a plot, an evaluation file, a prediction, an export) could not be written
    for its storage (`STORAGE_ERRNOS`). ``str()`` is one line naming the file and the cause, as a checkpoint's
    `CheckpointWriteError` is; errno, strerror and filename are the OSError's. `note`: what is kept and how to
    finish, where the caller knows (appended to the line)."""

    note = ""

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {storage_cause(self)}" + (
            f"; {self.note}" if self.note else ""
        )


class NotReplaceableError(PermissionError):
    """An existing output this user may not replace or remove: another user's file in a folder with the
    sticky bit (a class's shared hand-in folder, /tmp), where only a file's owner (or the folder's) may rename
    over it or delete it. ``str()`` is one line naming the files, their owner and what to do instead."""

    def __str__(self) -> str:
        return str(self.args[0])


def sticky_folder_owner_of(path: Path) -> str | None:
    """The name of the other user who owns the existing `path`, where `path`'s folder has the sticky bit and
    this process may therefore not replace or remove it (the kernel refuses with EPERM); else None (also
    for root, and for a path that does not exist)."""
    try:
        owner = os.lstat(path).st_uid
        folder = os.stat(path.parent)
    except OSError:
        return None
    me = os.geteuid()
    if me == 0 or not folder.st_mode & stat.S_ISVTX or me in (owner, folder.st_uid):
        return None
    try:
        import pwd

        return pwd.getpwuid(owner).pw_name
    except (ImportError, KeyError):
        return f"uid {owner}"


def refuse_others_files(paths: Iterable[Path], asked_by: str) -> None:
    """Refuse, before anything is replaced or removed, to replace `paths` that are other users' files in a
    folder with the sticky bit (`sticky_folder_owner_of`): `NotReplaceableError` naming them and their owner.
    `asked_by`: what asked to replace them (``--overwrite``). Without it the replace failed halfway, as
    ``PermissionError: [Errno 1] Operation not permitted`` naming a temporary file."""
    owners = {path: owner for path in paths if (owner := sticky_folder_owner_of(path)) is not None}
    if owners:
        names = sorted(set(owners.values()))
        folders = sorted({str(path.parent) for path in owners})
        raise NotReplaceableError(
            f"{asked_by} cannot replace {listed(list(owners))}: {' and '.join(names)}'s, in "
            f"{', '.join(folders)}, a folder with the sticky bit (shared, as /tmp), where only a file's "
            "owner may replace or remove it; write elsewhere (-o, --run_dir: a folder of your own)"
        )


def storage_cause(error: OSError) -> str:
    """The cause of a failed write in the words a user searches for ("no space left on device")."""
    if error.errno == errno.ENOSPC:
        return "no space left on device"
    if error.errno == errno.EDQUOT:
        return "disk quota exceeded"
    return error.strerror or str(error)


def once_writable(error: BaseException | None) -> str:
    """When the command that goes on after a failed write can run, in the words of its cause: "once there is
    room" fits a full disk or a quota, not a file system that turned read-only (EROFS) or an I/O error."""
    code = getattr(error, "errno", None)
    if code == errno.EROFS:
        return "once the file system can be written again"
    if code == errno.EIO:
        return "once the disk's I/O error is dealt with"
    return "once there is room"


def unusable_path(path: str | Path) -> str | None:
    """Why `path` named in a list (a pairs CSV, clip metadata) cannot be used at all, where the file system
    refuses the name itself (``File name too long``: a part over 255 bytes), else None. `Path.exists` and
    `is_file` raise then, where they answer False for a path that is merely missing."""
    try:
        os.stat(path)
    except OSError as error:
        if error.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EACCES):
            return error.strerror or str(error)
    except ValueError as error:  # (a NUL character: "embedded null byte")
        return str(error)
    return None


def sync_to_disk(fd: int) -> None:
    """Make what was written to `fd` (a file, or a folder's entries) survive a power loss, not only a crash
    of the process. On macOS ``fsync`` leaves it in the drive's write cache, and ``fcntl(F_FULLFSYNC)`` is
    what flushes that; where a file system does not support it (some network ones), plain ``fsync``."""
    full_fsync = getattr(fcntl, "F_FULLFSYNC", None)  # (macOS only)
    if full_fsync is not None:
        try:
            fcntl.fcntl(fd, full_fsync)
            return
        except OSError:
            pass
    os.fsync(fd)


@contextlib.contextmanager
def naming_failed_write(target: str | Path) -> Iterator[None]:
    """Turn an OSError of the storage (`STORAGE_ERRNOS`) raised while `target` is written into an
    `OutputWriteError` naming `target`: the bare ``[Errno 28] No space left on device`` names no file (PIL's
    and matplotlib's writes add a chained AttributeError). Other errors (a name taken, a missing folder) pass
    as they are: callers tell those apart by type. An `OutputWriteError` of a temporary file beside `target`
    (a writer that writes atomically itself, as the plots do, fills this write's temporary file) names
    `target`: the user never saw the ``.tmp-<hex>`` name."""
    try:
        yield
    except OutputWriteError as error:
        inner = Path(str(error.filename))
        if inner.name.startswith(TMP_PREFIX) and inner.parent == Path(target).parent:
            raise OutputWriteError(error.errno, error.strerror, str(target)) from None
        raise
    except OSError as error:
        if error.errno not in STORAGE_ERRNOS:
            raise
        raise OutputWriteError(error.errno, error.strerror, str(target)) from None


def write_atomically(target: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Write ``target`` through ``write(handle)`` into a temporary file beside it, then rename it into place.

    A reader (another process too) sees the old file or the whole new one, never a part; a write that fails
    or is interrupted leaves ``target`` as it was. The temporary file is created as ``open`` creates files,
    with mode 0o666 less the umask: ``tempfile``'s are 0o600 whatever the umask, which made a cache shared
    between users unreadable to all but the user who wrote each entry.
    """

    def write_to(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            write(handle)

    write_path_atomically(target, write_to)


def _create_empty(tmp: Path) -> int:
    """Create the temporary file `tmp` (refused if it exists) and return the mode ``open`` gives a new file
    (0o666 less the umask), which the writer's file keeps whatever the writer does."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        return os.fstat(fd).st_mode & 0o777
    finally:
        os.close(fd)


def write_path_atomically(target: str | Path, write_to: Callable[[Path], object]) -> None:
    """`write_atomically` for a writer that takes a file name: ``write_to(tmp)`` fills the temporary file,
    which is then renamed to ``target``. It keeps the mode ``open`` gives a new file (0o666 less the umask)
    whatever the writer does: safetensors' ``save_file`` makes its files 0o600."""
    target = Path(target)
    tmp = target.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex}{target.suffix}")
    with naming_failed_write(target):
        mode = _create_empty(tmp)
        try:
            write_to(tmp)
            os.chmod(tmp, mode)
            try:
                os.replace(tmp, target)  # atomic within a file system
            except PermissionError:  # (named: the OS's error names the temporary file first)
                refuse_others_files([target], "this user")
                raise
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def remove_killed_writes(folder: str | Path, suffixes: Iterable[str]) -> list[Path]:
    """Remove the temporary files that a killed `write_atomically` of a ``*.SUFFIX`` file left directly in
    `folder` (``.tmp-<32 hex digits>.SUFFIX``; no other name, so never a user's file), and return them. Only
    for a folder that no live writer uses: the caller holds it (its run folder's claim)."""
    pattern = re.compile(rf"{re.escape(TMP_PREFIX)}[0-9a-f]{{32}}\.({'|'.join(map(re.escape, suffixes))})")
    removed = []
    try:
        found = list(Path(folder).iterdir())
    except OSError:
        return removed
    for path in found:
        if pattern.fullmatch(path.name) and path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def write_text_atomically(target: str | Path, text: str) -> None:
    """`write_atomically` for text, as UTF-8 (whatever the locale)."""
    data = text.encode("utf-8")
    write_atomically(target, lambda handle: handle.write(data))


def write_json_atomically(target: str | Path, value: Any, indent: int = 1, sort_keys: bool = False) -> None:
    """`value` as JSON text (`json_text`) ending in a newline, written with `write_atomically`: a run's outputs
    (scores, folds, an exported bundle's settings) are never left half written by a crash or a full disk."""
    write_text_atomically(target, json_text(value, indent=indent, sort_keys=sort_keys) + "\n")


def json_text(
    value: Any, indent: int | None = 1, sort_keys: bool = False, default: Callable[[Any], Any] | None = None
) -> str:
    """`value` as strict JSON: a non-finite float (NaN, +-inf, numpy's too) is written as ``null``, as
    scores.json writes a figure that covers no frame (`finite_or_null`). ``json.dumps`` writes a bare
    ``NaN`` / ``Infinity``, which only Python reads: ``JSON.parse``, Go, serde_json and the dashboards put
    over a history file reject the whole file. `default` is ``json.dumps``'s."""
    return json.dumps(finite_or_null(value, default), indent=indent, sort_keys=sort_keys, allow_nan=False)


def finite_or_null(
    value: Any, default: Callable[[Any], Any] | None = None, non_finite: list | None = None
) -> Any:
    """`value` (dicts, lists, tuples as lists) with each non-finite float replaced by None, and what
    `default` converts (``json.dumps``'s: arrays to lists) converted first. A reader that needs the values
    back gets them from `non_finite` where given: it collects ``[path, token]`` for each value replaced
    (the keys and indices leading to it, and ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``: ``float(token)``
    is the value); `restore_non_finite` puts them back."""
    return _finite_or_null(value, default, non_finite, [])


def _finite_or_null(value: Any, default: Callable | None, non_finite: list | None, at: list) -> Any:
    if isinstance(value, dict):
        return {k: _finite_or_null(v, default, non_finite, [*at, _json_key(k)]) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(v, default, non_finite, [*at, i]) for i, v in enumerate(value)]
    if value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float) or (default is None and isinstance(value, numbers.Real)):
        if math.isfinite(value):
            return value  # (a numpy float32 without `default`: json.dumps refuses it, naming it, as before)
        if non_finite is not None:
            non_finite.append([at, "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"])
        return None
    return value if default is None else _finite_or_null(default(value), default, non_finite, at)


def _json_key(key: Any) -> Any:
    # A path names a dict entry as its JSON text does: json.dumps writes an int key as its digits.
    return key if isinstance(key, str) else json.dumps(key) if isinstance(key, (int, float)) else key


def restore_non_finite(value: Any, non_finite: Any) -> None:
    """Put back, in `value` read from JSON, the non-finite floats written as null and listed in `non_finite`
    (`finite_or_null`'s ``[path, token]`` pairs). A pair that names no null of `value` (a hand-edited file) is
    passed over: the null stays."""
    for entry in non_finite if isinstance(non_finite, list) else ():
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], list) and entry[0]):
            continue
        path, token = entry
        if token not in ("NaN", "Infinity", "-Infinity"):
            continue
        node = value
        try:
            for step in path[:-1]:
                node = node[step]
            if node[path[-1]] is None:
                node[path[-1]] = float(token)
        except (KeyError, IndexError, TypeError):
            continue


def claim_next_folder(candidates: Iterable[Path]) -> Path:
    """The first of `candidates` this call creates (with the folders above it), tried in order; one that
    exists already is passed over. ``mkdir`` is atomic, so of two processes claiming at once each gets a
    folder of its own, also before either has written anything in it (its emptiness says nothing about
    whether a run is using it). `FileExistsError` when every candidate is taken."""
    first = last = None
    for folder in candidates:
        try:
            folder.mkdir(parents=True)
        except FileExistsError:
            first, last = first or folder, folder
            continue
        return folder
    shown = "none" if first is None else str(first) if first == last else f"{first} to {last}"
    raise FileExistsError(f"no free folder to claim: every one tried ({shown}) exists already")


def create_atomically(target: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """As `write_atomically`, but only when ``target`` does not exist yet: `FileExistsError` otherwise.

    Of two processes creating the same name at once exactly one succeeds (``link`` of the finished temporary
    file, atomic and exclusive), so the first file of a run claims its folder. On a file system without hard
    links the file is created exclusively and written in place.
    """

    def write_to(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            write(handle)

    create_path_atomically(target, write_to)


def create_path_atomically(target: str | Path, write_to: Callable[[Path], object]) -> None:
    """`create_atomically` for a writer that takes a file name (as `write_path_atomically`): an output
    checked to be absent at a command's start is created only if it still is at its end, never renamed over
    a file another program wrote meanwhile."""
    target = Path(target)
    tmp = target.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex}{target.suffix}")
    with naming_failed_write(target):
        _create_through(target, tmp, write_to)


def _create_through(target: Path, tmp: Path, write_to: Callable[[Path], object]) -> None:
    """`create_path_atomically`'s work, through the temporary file `tmp`."""
    mode = _create_empty(tmp)
    try:
        write_to(tmp)
        os.chmod(tmp, mode)
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise
        except OSError:  # no hard links here (FAT, some network shares)
            data = tmp.read_bytes()
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
    finally:
        tmp.unlink(missing_ok=True)


def write_output(target: str | Path, write_to: Callable[[Path], object], replace: bool) -> None:
    """Write a command's output file through ``write_to(tmp)``, atomically: over an earlier one if `replace`
    (``--overwrite``), else only as a new file (`create_path_atomically`; `FileExistsError` if it exists)."""
    (write_path_atomically if replace else create_path_atomically)(target, write_to)


def write_given_path(
    target: str | Path,
    write_to: Callable[[Path], object],
    replace: bool,
    *,
    writer: str,
    flag: str,
    example: str,
) -> Path:
    """`write_output` for a file at a path a user gave public function `writer`, with one-line errors where
    the OS's name only the temporary file (``.tmp-<hex> -> target``): a folder at `target` is an
    `IsADirectoryError` whatever `replace` (suggesting the file name `example` in it); without `replace`, an
    existing file is a `FileExistsError` naming the ``flag=True`` that replaces it (also one written
    meanwhile, as the file is put in place: nothing a user made is replaced unasked). The folders on the way
    are created (every writer's callers did; `audio.save` into a new folder failed naming only the temporary
    file); a file standing where one should be is a `NotADirectoryError` naming it. A leading ``~`` is the
    home folder, as `export_history` and checkpoint paths read it (``write_lab("~/labs/a.lab", ...)`` made a
    folder named ``~`` in the working directory). Returns `target`, so expanded."""
    target = Path(target).expanduser()
    if target.is_dir():
        raise IsADirectoryError(
            f"{writer}: {target} is a folder; pass a file path such as {target / example}"
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        # (mkdir's own message, "File exists", names a folder path and not the file in the way)
        for in_the_way in reversed(target.parents):
            if in_the_way.is_symlink() and not in_the_way.exists():
                # (a link to a drive that is unplugged: no file is in the way, and next() found none)
                raise NotADirectoryError(
                    f"{writer}: cannot write {target}: {in_the_way} is a link to "
                    f"{os.readlink(in_the_way)}, which does not exist (a drive not plugged in?)"
                ) from None
            if in_the_way.exists() and not in_the_way.is_dir():
                raise NotADirectoryError(
                    f"{writer}: cannot write {target}: {in_the_way} is a file, not a folder"
                ) from None
        raise
    try:
        write_output(target, write_to, replace)
    except FileExistsError:
        if replace:
            raise
        raise FileExistsError(
            f"{writer}: {target} exists already; choose a new path, or pass {flag}=True to replace it"
        ) from None
    return target


def write_export(
    path: str | Path, data: bytes, replace: bool, is_export: Callable[[], bool], *, writer: str, example: str
) -> Path:
    """`writer`'s write of an export, `data`, at `path` (`write_given_path`, flag ``overwrite``), replacing a
    file there only with `replace`. One written since the check that `is_export()` says is an export too is
    replaced: another rank of a data-parallel job wrote it (the README's example run under a launcher, whose
    slower rank's write failed as if a user's file were there)."""

    def write(replace: bool) -> Path:
        return write_given_path(
            path, lambda tmp: tmp.write_bytes(data), replace, writer=writer, flag="overwrite", example=example
        )

    try:
        return write(replace)
    except FileExistsError:
        if replace or not is_export():
            raise
        return write(True)


def probe_writable(folder: str | Path) -> tuple[Path, OSError | None]:
    """Whether `folder` (or, while it does not exist, the nearest folder above it, where it will be created)
    takes a new file: (the folder tried, the error or None). Tried by writing one, as permission bits say
    nothing for root or on a read-only mount; nothing is left behind. A link on the way to a folder that does
    not exist (a cache linked to a drive not mounted) is the error, naming both: the folder above it took the
    probe, then making the folder failed with only "File exists"."""
    probe_in = Path(folder)
    try:
        while not probe_in.exists() and not probe_in.is_symlink() and probe_in != probe_in.parent:
            probe_in = probe_in.parent
        if probe_in.is_symlink() and not probe_in.exists():
            why = f"{probe_in} is a link to {os.readlink(probe_in)}, which does not exist"
            return probe_in, FileNotFoundError(errno.ENOENT, why)
    except PermissionError as error:
        return probe_in, error  # a folder on the way that cannot be searched (another user's, umask 077)
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=probe_in)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        return probe_in, error
    return probe_in, None


def dangling_link(path: Path) -> str | None:
    """What `path` is where it is a link to nothing (else None): ``ls`` lists it, so "No such file or
    directory" alone read as nonsense. A Hugging Face cache snapshot's files are links to ``../../blobs/``:
    one whose blob was deleted, or a snapshot copied without them (``cp -r``), gets the way out."""
    try:
        target = os.readlink(path)
    except OSError:
        return None
    if os.path.exists(path):
        return None
    what = f"a link to {target}, which does not exist"
    if Path(target).parent.name == "blobs":
        what += (
            " (a Hugging Face cache file whose blob is gone: copy a snapshot with cp -rL, which copies the "
            "files, not the links; download a damaged one again, hf download OWNER/NAME)"
        )
    return what


def check_regular_file(path: Path, error: type[Exception]) -> Path:
    """`path` when it is a regular file (or a link to one), else `error` naming it: opening a FIFO for reading
    waits for a writer forever, and a device or folder is no settings file."""
    try:
        mode = path.stat().st_mode
    except OSError as err:
        raise error(f"{path}: {dangling_link(path) or f'cannot be read ({err.strerror or err})'}") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
        raise error(f"{path}: is {kind}, not a regular file")
    return path


#: JSON nested deeper than this is refused. json's own limit differs by version (Python's recursion limit,
#: about 1000 levels less the caller's stack, before 3.12; about 1500 on 3.12.0; about 10,000 on 3.13), so a
#: file 5000 levels deep was refused on one and read on another; the callers walk what they read recursively
#: too. No settings, record or annotation file comes near it.
JSON_MAX_DEPTH = 500


def _nested_deeper_than(text: str | bytes, value: Any, limit: int) -> bool:
    """Whether `value`, parsed from JSON `text`, holds arrays or objects more than `limit` levels deep. It is
    walked one level at a time, not recursively, and only where `text` opens more than `limit` of them."""
    openers = (b"[", b"{") if isinstance(text, bytes) else ("[", "{")
    if sum(text.count(opener) for opener in openers) <= limit:
        return False
    level = [value] if isinstance(value, list | dict) else []
    for _ in range(limit):
        level = [
            inner
            for outer in level
            for inner in (outer.values() if isinstance(outer, dict) else outer)
            if isinstance(inner, list | dict)
        ]
        if not level:
            return False
    return True


class _RepeatedKey(Exception):
    """A key given twice in one JSON object (`parse_json` with `unique_keys`)."""


class _NestedTooDeeply(Exception):
    """JSON nested more than `JSON_MAX_DEPTH` levels deep (`parse_json`)."""


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) < len(keys):
        raise _RepeatedKey(next(key for i, key in enumerate(keys) if key in keys[:i]))
    return dict(pairs)


def value_error_text(err: ValueError) -> str:
    """`err`'s message for a user: a number too long to convert is "an integer of more than 4300 digits" (Python's
    own message advises calling sys.set_int_max_str_digits(), which no one running a command can do)."""
    if "integer string conversion" in str(err):
        return f"an integer of more than {sys.get_int_max_str_digits()} digits"
    return str(err)


#: What a text file saved as UTF-16 is told: Windows PowerShell 5's ``>`` and ``Out-File`` write UTF-16 by
#: default, as Notepad's "Unicode" does, and the byte-order mark's 0xff or 0xfe read as "not UTF-8" (or a
#: Latin-1 guess) sent users looking for an accented letter that is not there.
UTF16_TEXT = (
    "a UTF-16 text file (its first bytes are UTF-16's byte-order mark), not UTF-8: Windows PowerShell's > and "
    "Out-File and Notepad's 'Unicode' write UTF-16; save it as UTF-8"
)


def is_utf16(raw: bytes) -> bool:
    """Whether `raw` (a file's first bytes) starts with a UTF-16 byte-order mark (`UTF16_TEXT`)."""
    return raw[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def not_utf8_text(err: UnicodeDecodeError) -> str:
    """Where and why a text file is not UTF-8, from its decoding error: ``line 2: not a UTF-8 text file
    (byte 0xe1 ...; saved as Latin-1 or Windows-1252? ...)``. A single accented letter from an editor that
    saved Latin-1 or Windows-1252 is the usual cause, not a file that is not text; the line finds it."""
    line = err.object[: err.start].count(b"\n") + 1
    return (
        f"line {line}: not a UTF-8 text file (byte 0x{err.object[err.start]:02x} is not UTF-8; "
        "saved as Latin-1 or Windows-1252? save it as UTF-8)"
    )


def parse_json(
    text: str | bytes,
    source: Path | str,
    error: type[Exception],
    unique_keys: bool = False,
    pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
) -> Any:
    """`text` parsed as JSON, or `error` naming `source` in one line: besides a syntax error, arrays or
    objects nested more than `JSON_MAX_DEPTH` levels deep (json's RecursionError past a limit of its own, which
    differs by version) and an integer of more than 4300 digits (sys.get_int_max_str_digits, a bare
    ValueError from json) are refused naming the file. `unique_keys`: a key given twice in one object is
    refused too (json keeps the last without a word). `pairs_hook`: json's ``object_pairs_hook`` (not with
    `unique_keys`)."""
    try:
        value = json.loads(text, object_pairs_hook=_unique_pairs if unique_keys else pairs_hook)
        if _nested_deeper_than(text, value, JSON_MAX_DEPTH):
            raise _NestedTooDeeply
        return value
    except _RepeatedKey as repeated:
        raise error(
            f"{source}: {repeated.args[0]!r} given twice in one object; keep one (the last would win without "
            "a word)"
        ) from None
    except json.JSONDecodeError as err:
        raise error(f"{source}: not valid JSON at line {err.lineno}: {err.msg}{_json_mistake(err)}") from None
    except UnicodeDecodeError as err:
        if is_utf16(err.object):
            raise error(f"{source}: {UTF16_TEXT}") from None
        raise error(f"{source}: not UTF-8 text (byte {err.start}); JSON files are UTF-8") from None
    except (_NestedTooDeeply, RecursionError):  # (RecursionError: past json's own limit)
        raise error(f"{source}: not valid JSON (nested too deeply)") from None
    except ValueError as err:  # an integer too long to convert
        raise error(f"{source}: not valid JSON ({value_error_text(err)})") from None


def _json_mistake(err: json.JSONDecodeError) -> str:
    """What a JSON file written by hand most often holds that JSON has not, where `err` stopped at it: a
    comment, or a comma before a closing ``}`` or ``]`` (JSON5, JSONC and YAML take both; json's own words,
    "Expecting property name enclosed in double quotes", name neither)."""
    here = err.doc[err.pos : err.pos + 2]
    if here in ("//", "/*") or here[:1] == "#":
        return " (a comment? JSON has none)"
    if here[:1] in ("}", "]") and err.doc[: err.pos].rstrip().endswith(","):
        return f" (a comma before {here[:1]}? JSON allows none there)"
    return ""


def read_json_file(path: Path, error: type[Exception], unique_keys: bool = False) -> Any:
    """The JSON in regular file `path` (UTF-8, a BOM tolerated), or `error` naming it in one line
    (`unique_keys`: as `parse_json`'s)."""
    check_regular_file(path, error)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise error(f"{path}: cannot be read ({err.strerror or err})") from None
    pointer = pointer_text(raw[:MAX_POINTER_BYTES])  # (a repository cloned without Git LFS)
    if pointer:
        raise error(f"{path}: {pointer}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        if is_utf16(raw):
            raise error(f"{path}: {UTF16_TEXT}") from None
        raise error(f"{path}: not UTF-8 text (byte {err.start}); JSON files are UTF-8") from None
    return parse_json(text, path, error, unique_keys)


#: The bytes of the longest path Linux takes, with the terminating NUL (``PATH_MAX``): what is assumed where
#: the system cannot say (`path_limit`).
COMMON_PATH_MAX = 4096


def path_limit(folder: str | Path, name: str, assumed: int) -> int:
    """``os.pathconf(folder, name)``, or `assumed` where the system cannot say (Windows has no pathconf)."""
    try:
        limit = os.pathconf(folder, name)
    except (AttributeError, OSError, ValueError):
        return assumed
    return limit if limit > 0 else assumed


def is_inside(path: str | Path, folder: str | Path) -> bool:
    """Whether `path` is `folder` or lies below it (symlinks resolved)."""
    path, folder = Path(path).resolve(), Path(folder).resolve()
    return path == folder or folder in path.parents
