"""Where a recipe writes: run folders and output files, never silently over someone's earlier results.

One policy for every command that writes (``chords train``/demo, ``chords predict``/``evaluate``, the CLAP
recipe):

- A folder given on the command line that already holds files (a previous run, or anything else) is
  refused, naming the folder and the options: ``--overwrite`` (which removes only the outputs a run of
  that recipe writes, listed by the recipe, and leaves other files alone), or ``--resume`` with a checkpoint
  inside that folder, which continues the run there.
- A default run folder (``runs/<recipe>-<date>-<time>``) is created atomically by ``mkdir``; when the name
  is taken (two runs started in the same second) the next free ``-2``, ``-3``, ... suffix is used, so no two
  runs ever share a folder.
- Output files (predictions, scores) that exist already are refused unless ``--overwrite``.
- Every output folder is tried for writing when the command starts (`check_can_write`): a read-only folder,
  or a file in the way, is an error naming the flag, not a traceback after the work.
- Two runs started into one folder at once both pass `check_run_folder`; the run's first file is created
  exclusively (`write_first_file`), so the second finds the folder taken there, before it writes anything.
- MLX's own folder, where it keeps the kernels it compiles (under TMPDIR), is checked as well
  (`check_kernel_cache`): a TMPDIR that is empty, no folder, or read-only failed the first step, and a kernel
  that an interrupted compile left cut short there failed every run that needed it (it is removed).

Also here, as every recipe writes and reads them the same way: the run record (``config.json``: the resolved
config, the versions, the command line) and the resume command printed after a Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib.util
import io
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from audiotrain._build import build_version
from audiotrain._files import (  # (is_inside: the recipes import it from here)
    COMMON_PATH_MAX,
    TMP_PREFIX,
    create_atomically,
    is_finder_metadata,
    is_inside,
    json_text,
    parse_json,
    path_limit,
    probe_writable,
    refuse_others_files,
    remove_killed_writes,
    write_atomically,
)
from audiotrain._invocation import recipe_command
from audiotrain._system import (
    KERNEL_SPACE_NEEDED,
    installed_versions,
    mlx_cuda_kernel_cache,
    mlx_kernel_cache,
    mlx_temp_dir,
    own_kernel_folder,
    remove_broken_kernels,
    use_own_kernel_folder,
    versions,
    why_not_own_kernel_folder,
)
from audiotrain._text import listed, shell_word
from audiotrain.distributed import collectives
from audiotrain.distributed.collectives import joined_world_size, rank
from audiotrain.distributed.local import in_launched_job, launched_processes, relaunch_prefix
from audiotrain.recipes.config_cli import home_expanded
from audiotrain.recipes.split_record import run_record_of
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.interrupt import stop_exit_status
from audiotrain.train.loggers.config import LOGGER_OWN_ENTRIES


class OutputFolderError(ValueError):
    """An output folder that cannot be made or written to; the message names the flag that gave it."""


def ends_on_other_ranks(command: str) -> bool:
    """Whether this process is to end now, without writing anything: a rank other than 0 of a launcher's job
    running `command`, which one process does whole (a recipe's predict, evaluate, export:
    `collectives.leave_to_rank_0`; each rank doing all of it into the same outputs raced). Rank 0 says so
    once and goes on as a job of one."""
    rank, processes = collectives.leave_to_rank_0()
    if rank:
        return True
    if processes > 1:
        print(
            f"{command} runs in one process: rank 0 of the launcher's {processes} does all of it, the others "
            "end at once without writing anything",
            file=sys.stderr,
        )
    return False


def nonempty_path(text: str) -> str:
    """The argparse type of a path flag: an empty path (``--run_dir "$RUN"`` with RUN unset) is refused, not
    taken as the current folder (or, for an optional setting, as unset); a leading ``~`` is the home folder
    (`home_expanded`: ``--run_dir=~/x`` reaches the recipe unexpanded), as in every path setting."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path (an unset shell variable?); give a path")
    return home_expanded(text)


def path_flag(text: str) -> Path:
    """`nonempty_path` as a `Path`."""
    return Path(nonempty_path(text))


def check_can_write(folder: Path, name: str) -> None:
    """Refuse, before any work, an output `folder` that cannot be made or written to: a file in its place or
    among its parents, or a folder where no file can be created (permissions, a read-only file system).
    `name` is how messages call it (``--run_dir RUN``).

    Tried with a probe file, created and removed at once, in the folder or in the nearest parent that
    exists (where it would be made): permission bits say nothing for root, ACLs or a read-only mount."""
    _refuse_a_name_too_long(folder, name)
    refuse_a_folder_not_searchable(folder, name)
    existing = folder
    while not existing.exists() and not existing.is_symlink() and existing != existing.parent:
        existing = existing.parent
    if existing.is_symlink() and not existing.exists():
        raise NotADirectoryError(
            f"{name}: {existing} is a link to {os.readlink(existing)}, which does not exist"
        )
    made = "" if existing == folder else f", so {folder} cannot be made there"
    if not existing.is_dir():
        raise NotADirectoryError(f"{name}: {existing} is a file, not a folder{made}")
    _, error = probe_writable(existing)
    if error is not None:
        raise OutputFolderError(
            f"{name}: cannot write in {_named(existing)} ({error.strerror or error}){made}; choose a folder "
            "you can write to"
        )


def _named(folder: Path) -> str:
    """`folder` as a message names it: the working folder by its path, not as ``.`` (a relative output path
    in a container whose working folder, ``docker run -w /``, is read-only)."""
    if folder != Path("."):
        return str(folder)
    try:
        return f"{os.getcwd()} (the working folder)"
    except OSError:  # (deleted under the process)
        return "the working folder"


def _refuse_a_name_too_long(folder: Path, name: str) -> None:
    """Refuse an output `folder` whose name, or a folder's on the way to it, is longer than the file system
    takes, or whose path leaves no room for the files written in it (``config.json``): pathlib's exists()
    ended such a command in a raw "[Errno 36] File name too long" traceback."""
    too_long = name_too_long(folder / "config.json")
    if too_long is not None:
        raise OutputFolderError(f"{name}: cannot be made: {too_long}; choose a shorter path")


def refuse_a_folder_not_searchable(folder: Path, name: str) -> None:
    """Refuse an output `folder` inside a folder this user may not look into (another user's ``runs/``, made
    under ``umask 077`` in a class's shared folder): pathlib's exists() ended such a command in a raw
    "[Errno 13] Permission denied" traceback. Names the folder that cannot be looked into, where `folder`
    (or a folder on its way) is a link, the one it leads into."""
    try:
        os.stat(folder)  # (follows a link: one into another user's closed folder is refused too)
        return
    except PermissionError as error:
        cause = error.strerror or str(error)
    except OSError:  # (gone, a link to nothing, a name too long: the checks after this one say so)
        return
    closed = next(
        (
            place.parent
            for path in (folder, Path(os.path.realpath(folder)))  # (as typed, then where its links lead)
            for place in [*reversed(path.parents), path]
            if not _can_look_up(place)
        ),
        folder.parent,
    )
    raise OutputFolderError(
        f"{name}: cannot look into {closed} ({cause}): another user's folder? Choose a folder you can "
        "write to"
    )


def _can_look_up(path: Path) -> bool:
    """Whether ``lstat`` of `path` is not refused for permission (`path` need not exist)."""
    try:
        os.lstat(path)
    except PermissionError:
        return False
    except OSError:
        pass
    return True


#: The longest file name, in bytes, most file systems take (ext4, XFS, APFS, NTFS in UTF-16 units): what
#: `name_too_long` assumes where the system cannot say (no ``os.pathconf``).
COMMON_NAME_MAX = 255


def name_too_long(path: Path) -> str | None:
    """Why the system would refuse to create `path` for the length of its name (``"x.flac.lab" would be
    257 bytes; this file system takes 255 at most``), of a folder to be made on the way to it, or of the
    whole path (``PATH_MAX``: deep sub-folders mirrored under a longer output folder); or None. Asked of the
    nearest folder that exists, where it would be made; a name is counted in the bytes the file system
    stores (an ``é`` is 2 in UTF-8). The path is counted as given (the system counts a relative path
    without the working folder), with the file's temporary name (``.tmp-<32 hex digits><suffix>``, as
    `write_output` writes it) where that is longer."""
    folder = path.parent
    while not os.path.isdir(folder) and folder != folder.parent:  # (isdir: False for a name too long, too)
        folder = folder.parent
    name_max = path_limit(folder, "PC_NAME_MAX", COMMON_NAME_MAX)
    size = len(os.fsencode(path.name))
    if size > name_max:
        return f"its name would be {size} bytes; this file system takes {name_max} at most"
    for part in path.parent.relative_to(folder).parts:  # (the folders that exist took their names)
        if len(os.fsencode(part)) > name_max:
            return (
                f"the folder {part!r} on the way would be named in {len(os.fsencode(part))} bytes; this file "
                f"system takes {name_max} at most"
            )
    temporary = len(TMP_PREFIX) + 32 + len(os.fsencode(path.suffix))
    whole = len(os.fsencode(str(path))) + max(0, temporary - size)
    path_max = path_limit(folder, "PC_PATH_MAX", COMMON_PATH_MAX)
    if whole >= path_max:  # (PATH_MAX counts the terminating NUL)
        through = " under the temporary name it is written to first" if temporary > size else ""
        return f"its path would be {whole} bytes{through}; this system takes {path_max - 1} at most"
    return None


#: How long a first run waits for its kernels, as `check_kernel_cache` says it: training's (50-75 s measured on
#: a 2-core CPU), and predict's or evaluate's (~25 s: a model's forward pass only).
TRAINING_COMPILE_WAIT = "about a minute before the first steps"
TRANSCRIPTION_COMPILE_WAIT = "up to a minute before the first song is transcribed"
#: The same waits on a CUDA GPU, where NVRTC compiles on one CPU thread: on one H200 the chord recipe's first
#: training step took 137 s cold (its quick_test preset 170 s), and 1 s once the kernels were kept.
_CUDA_COMPILE_WAIT = {
    TRAINING_COMPILE_WAIT: "the first steps wait a few minutes",
    TRANSCRIPTION_COMPILE_WAIT: "the first song waits a few minutes",
}


def check_kernel_cache(
    on_cpu: bool | None = None,
    log: Callable[[str], None] | None = print,
    wait: str = TRAINING_COMPILE_WAIT,
) -> None:
    """At a command's start, before any folder is written: refuse a temporary folder in which MLX cannot keep
    the kernels it compiles, and say when it has none yet (the first run on this machine).

    MLX's C++ code reads TMPDIR (then TMP, TEMP, TEMPDIR; /tmp when none is set) even when it is empty.
    On a GPU it only needs that folder to exist (the CUDA backend caches where it can, and an empty cache
    there is said: `_say_a_first_cuda_compile`); on the CPU
    (`on_cpu`, default: MLX's default device) it compiles every fused kernel with the system's C++ compiler
    into ``<tmp>/mlx/<version>/cpu``: one that cannot be written there (read-only, or another user's
    ``/tmp/mlx``) fails the first step with a raw RuntimeError, after the run folder was made. Where the user
    set no TMPDIR and ``/tmp/mlx`` is another user's, this user's own folder is used instead, in one line
    (`audiotrain._system.use_own_kernel_folder`); the refusal stays where that cannot be made either.

    An empty cache gets one line through `log` (once per job: not from the ranks of the recipes' own local
    processes, whose launcher said it, nor from ranks other than 0), saying how long that compile takes
    (`wait`: training's, or `TRANSCRIPTION_COMPILE_WAIT`), which is otherwise silent. Kernels an interrupted compile left broken there are removed, in a line
    through `log` (`audiotrain._system.remove_broken_kernels`; one that cannot be removed is refused,
    naming it)."""
    import mlx.core as mx

    if mx.metal.is_available() and not on_cpu:
        return  # Metal compiles in memory

    # Another user's /tmp/mlx on a shared server: this user's own folder instead, before MLX's first compile
    # (the ranks of the recipes' local processes inherit its TMPDIR, so the launcher alone says it).
    def say_once(line: str) -> None:  # (asked only when there is something to say: a rank may ask MLX)
        if log is not None and not leaves_notes_to_others():
            log(line)

    use_own_kernel_folder(say_once)
    name, folder = mlx_temp_dir()
    why = "MLX keeps the kernels it compiles there"
    if name is not None and not folder.strip():
        raise OutputFolderError(
            f"{name} is set but empty (an unset shell variable?); {why}: unset {name}, or set it to a folder "
            "you can write to"
        )
    if not Path(folder).is_dir():
        problem = "is a file, not a folder" if Path(folder).exists() else "does not exist"
        where = f"{name}={folder}" if name else f"TMPDIR is not set, so {folder}, which"
        raise NotADirectoryError(
            f"{where} {problem}; {why}: set {name or 'TMPDIR'} to a folder you can write to"
        )
    if on_cpu is None:
        on_cpu = mx.default_device() == mx.cpu
    if not on_cpu:
        cuda = getattr(mx, "cuda", None)  # (an MLX without a CUDA module has no CUDA backend)
        if cuda is not None and cuda.is_available() and log is not None and not leaves_notes_to_others():
            _say_a_first_cuda_compile(log, _CUDA_COMPILE_WAIT.get(wait, "the first steps wait a few minutes"))
        return
    cache = mlx_kernel_cache()
    try:  # made now as MLX would make it, then a probe file written in it
        cache.mkdir(parents=True, exist_ok=True)
        error = probe_writable(cache)[1]
    except OSError as made_not:
        error = made_not
    if error is not None:
        where = f"{name}={folder}" if name else f"TMPDIR is not set, so {folder}"
        own = "" if name else _own_kernel_folder_refused()
        raise OutputFolderError(
            f"{where}: MLX cannot write the CPU kernels it compiles to {cache} ({error.strerror or error})"
            f"{own}; set TMPDIR to a folder you can write to"
        )
    # A compile that a signal ended (Ctrl-C reaches the compiler too) may have left a kernel cut short there,
    # which failed every later run that needed it ("file too short"): MLX compiles it again once it is gone.
    try:
        removed = remove_broken_kernels(cache)
    except OSError as error:  # its message names the file and the fix
        raise OutputFolderError(error.strerror or str(error)) from error
    if removed and log is not None and not leaves_notes_to_others():
        names = listed([path.name[:40] + ("..." if len(path.name) > 40 else "") for path in removed])
        log(
            f"removed {len(removed)} broken kernel file(s) from {cache} (empty or cut short, left by a compile "
            f"that was interrupted; MLX compiles them again): {names}"
        )
    first_run = not any(cache.iterdir())
    free = shutil.disk_usage(cache).free if first_run else None
    if free is not None and free < KERNEL_SPACE_NEEDED:  # (nearly full: the first step's compile failed)
        where = f"{name}={folder}" if name else f"TMPDIR is not set, so {folder}"
        raise OutputFolderError(
            f"{where}: {free >> 10} kB free; MLX compiles its CPU kernels into {cache} on a first run and needs "
            f"at least {KERNEL_SPACE_NEEDED >> 20} MB there: free space there or set TMPDIR to a folder with "
            "room"
        )
    if log is not None and first_run and not leaves_notes_to_others():
        log(
            f"first run of MLX {mx.__version__} here (no compiled kernels in {cache} yet): it compiles its CPU "
            f"kernels now, {wait}; later runs reuse them"
        )


def _own_kernel_folder_refused() -> str:
    """Why the folder of this user's own that `use_own_kernel_folder` tried is not used, for the refusal."""
    if not hasattr(os, "geteuid"):
        return ""
    own = own_kernel_folder()
    why = why_not_own_kernel_folder(own)
    return "" if why is None else f", and {own}, which would be used instead, {why}"


def _say_a_first_cuda_compile(log: Callable[[str], None], wait: str) -> None:
    """Say, through `log`, that MLX's CUDA backend has no compiled kernels kept yet (`mlx_cuda_kernel_cache`
    holds no ``.ptx``): the first steps then wait minutes on NVRTC, in silence, counted as training, and a
    Ctrl-C or SIGTERM is only acted on once the compile in progress ends."""
    import mlx.core as mx

    cache = mlx_cuda_kernel_cache()
    if cache is None:
        log(
            "MLX_PTX_CACHE_DIR is set but empty, so MLX keeps none of the CUDA kernels it compiles: "
            f"{wait} on every run; unset it, or set it to a folder you can write to"
        )
    elif not (cache.is_dir() and any(cache.glob("*.ptx"))):
        log(
            f"first run of MLX {mx.__version__} on this machine's GPU (no compiled CUDA kernels in {cache} "
            f"yet): {wait} while MLX compiles its CUDA kernels (once per machine, kept in {cache}); later "
            "runs reuse them"
        )


def leaves_notes_to_others() -> bool:
    """Whether this process is a rank of a job whose launcher (the recipes' local processes) or rank 0 prints
    the notes meant once per job. Under a user's launcher (``python -m audiotrain launch``, mlx.launch,
    mpirun) no launching process of ours exists: rank 0 says them."""
    if launched_processes() > 1:
        return True
    return in_launched_job() and collectives.rank() != 0


@contextlib.contextmanager
def quiet_unless_main() -> Iterator[None]:
    """On a rank other than 0 of a data-parallel job: what the recipe prints inside, on stdout and on stderr
    (the banner, the data report, notes and warnings), goes nowhere, as rank 0 prints the same for the job.
    An error still reaches the user: its exception leaves the block, where the command says it (or leaves it
    to rank 0, `error_left_to_main`), and what MLX or the launcher write to the file descriptors is not
    Python's streams. Rank 0, and a process alone, print as usual."""
    if collectives.is_main_process():
        yield
        return
    nowhere = _Nowhere()
    with contextlib.redirect_stdout(nowhere), contextlib.redirect_stderr(nowhere):
        yield


class _Nowhere(io.TextIOBase):
    """A text stream that takes every write and keeps none (a StringIO would hold a long run's lines)."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return len(text)


def stop_status_of_rank() -> int:
    """The exit status of this rank of a run that a stop signal (Ctrl-C, SIGTERM) ended: the stop's (130,
    143; `stop_exit_status`) on rank 0, which reports for the job, and 0 on the other ranks. mpirun and
    mlx.launch end the whole job when a rank exits non-zero: a stop status from another rank had rank 0
    killed in its work after training (the evaluation, the plots, the export)."""
    return stop_exit_status() if collectives.is_main_process() else 0


def holds_files(folder: Path) -> bool:
    """Whether `folder` holds anything besides what macOS writes there by itself (`is_finder_metadata`: a
    folder made in the Finder, or opened there, holds a ``.DS_Store``: it was refused as a previous run's)."""
    return folder.is_dir() and any(not is_finder_metadata(entry.name) for entry in folder.iterdir())


def _holds_only_an_empty_checkpoint_folder(folder: Path, checkpoint_dir: str | Path) -> bool:
    """Whether all `folder` holds is its run's own checkpoint folder (a relative `checkpoint_dir`), empty:
    made before the first run, or a link to another disk made to put the checkpoints there. Nothing of an
    earlier run: it was refused as a folder that "already holds files"."""
    own = Path(checkpoint_dir).expanduser()
    if own.is_absolute() or len(own.parts) != 1:
        return False
    try:
        (entry,) = [entry for entry in folder.iterdir() if not is_finder_metadata(entry.name)]
        return entry.name == own.name and entry.is_dir() and not holds_files(entry)
    except (OSError, ValueError):  # (ValueError: more entries than one)
        return False


def resumes_run_in(
    resume: str | Path | None, run_dir: str | Path | None, checkpoint_dir: str | Path = "checkpoints"
) -> bool:
    """Whether `resume` is a checkpoint of the run in `run_dir`, so that resuming it goes on in that folder:
    it lies in `run_dir`, or in the folder that run saves its checkpoints to (`checkpoint_dir`; a relative
    one inside `run_dir`), which may be elsewhere: ``checkpoints/`` made a link to another disk, or an
    absolute ``--checkpoint_dir``. An absolute one counts only where the run's ``config.json`` records
    it, so that another run's checkpoints are never taken for this run's."""
    if resume is None or run_dir is None:
        return False
    run_dir = Path(run_dir)
    if is_inside(resume, run_dir):
        return True
    own = Path(checkpoint_dir).expanduser()
    if not own.is_absolute():
        return is_inside(resume, run_dir / own)
    return is_inside(resume, own) and saves_checkpoints_in(run_dir, own)


def saves_checkpoints_in(run_dir: Path | None, folder: Path) -> bool:
    """Whether the run in `run_dir` saves its checkpoints in `folder`: its ``config.json`` records that
    ``checkpoint_dir`` (False where it has none, or records another)."""
    recorded = recorded_checkpoint_folder(run_dir) if run_dir is not None else None
    return recorded is not None and recorded.resolve() == Path(folder).expanduser().resolve()


def recorded_checkpoint_folder(run_dir: Path) -> Path | None:
    """The folder the run in `run_dir` saves its checkpoints to, as its ``config.json`` records its
    ``checkpoint_dir`` (a relative one inside `run_dir`); None where it records none."""
    try:
        recorded = (_json_record(run_dir / "config.json") or {}).get("config", {}).get("checkpoint_dir")
    except AttributeError:
        return None
    if not isinstance(recorded, str):
        return None
    recorded_folder = Path(recorded).expanduser()
    return recorded_folder if recorded_folder.is_absolute() else run_dir / recorded_folder


def _json_record(path: Path) -> Any:
    """The JSON in `path`, or None where it cannot be read or is no JSON `parse_json` takes (a syntax error,
    nesting some thousand levels deep, an integer of thousands of digits): not a record audiotrain wrote.
    Only a regular file is read: opening a FIFO put where a record was waits for a writer for ever."""
    try:
        if not path.is_file():
            return None
        return parse_json(path.read_bytes(), path, ValueError)
    except (OSError, ValueError):
        return None


def is_run_record(path: Path) -> bool:
    """Whether `path` is a run record audiotrain wrote (`write_run_record`, in every format so far): a JSON
    object whose ``versions`` names the audiotrain build. A user's own ``config.json`` has no such entry by
    accident, so ``--overwrite`` takes a folder for an earlier run's only where it holds one."""
    record = _json_record(path)
    versions_ = record.get("versions") if isinstance(record, dict) else None
    return isinstance(versions_, dict) and "audiotrain" in versions_


def record_recipe(path: Path) -> str | None:
    """Which recipe wrote the run record `path` (`is_run_record`): "chords" (its ``songs``, or a config with
    ``decode``), "clap" (its ``model_source`` or ``clips``, or a config with ``dataset``), else None."""
    record = _json_record(path)
    if not isinstance(record, dict):
        return None
    config = record.get("config") if isinstance(record.get("config"), dict) else {}
    if "songs" in record or "decode" in config:
        return "chords"
    if "model_source" in record or "clips" in record or "dataset" in config:
        return "clap"
    return None


#: The records a run of any kind writes first (`write_run_record`'s, a cv run's): a folder holding one holds a
#: run, which an ``--overwrite`` of another kind of run must not clear or write beside.
RUN_RECORDS = ("config.json", "cv_progress.json", "folds.json")


def run_record_in(folder: Path) -> str | None:
    """The name of the first of `RUN_RECORDS` that `folder` holds as a run's record, else None."""
    if is_run_record(folder / "config.json"):
        return "config.json"
    return next((name for name in RUN_RECORDS[1:] if (folder / name).is_file()), None)


def holds_run_record(folder: Path) -> bool:
    """Whether `folder` holds a run's record (its ``config.json``: `is_run_record`)."""
    return is_run_record(folder / "config.json")


def holds_json_record(name: str, keys: Collection[str]) -> Callable[[Path], bool]:
    """A test of whether a folder holds the record `name` a recipe wrote there: a JSON object with all of
    `keys` (a cross-validation's, which writes no ``config.json`` of its own), for `check_run_folder`."""

    def holds(folder: Path) -> bool:
        record = _json_record(folder / name)
        return isinstance(record, dict) and all(key in record for key in keys)

    return holds


def _finished_run(folder: Path) -> bool:
    """Whether `folder` holds a run that finished (as `python -m audiotrain runs` tells it)."""
    from audiotrain.runs_listing import read_run  # (reads the run's records only on this refusal's path)

    return read_run(folder).status == "finished"


def check_run_folder(
    folder: Path,
    flag: str,
    overwrite: bool,
    resume: str | Path | None = None,
    resume_hint: str | None = None,
    checkpoint_dir: str | Path = "checkpoints",
    holds_run: Callable[[Path], bool] = holds_run_record,
    cleared: bool = False,
    outputs: Iterable[str] | None = None,
    recipe: str | None = None,
) -> bool:
    """Refuse a run folder that is a file, cannot be written (`check_can_write`), or holds files, unless
    `overwrite` or `resume` names a checkpoint of that run (`resumes_run_in`: inside it, or in the folder
    its checkpoints are saved to, `checkpoint_dir`). Returns True when the earlier run is to be replaced:
    call `clear_run_outputs` once every other check has passed, so an early error leaves it as it was.

    `overwrite` replaces only a run: a folder without its record (`holds_run`, default: a ``config.json``
    that `write_run_record` wrote) holds the user's files, whatever their names, and is refused even so
    where any of them bears the name of one of the run's `outputs` (None: any name); the run writes beside
    files of other names (returns False).

    A folder holding another kind of run is refused even so: a run of another `recipe` (its ``config.json``,
    `record_recipe`), or any run record (`RUN_RECORDS`) where `holds_run` finds none of this command's.

    `cleared`: the caller removed the earlier run's outputs already (a cv run's ``--overwrite``, of each fold's
    folder): what is left is the user's, kept, and the new run writes beside it (returns False).

    The refusal suggests `resume_hint` (default: ``--resume`` with the run's newest checkpoint, if any)."""
    _refuse_a_name_too_long(folder, f"{flag} {folder}")
    refuse_a_folder_not_searchable(folder, f"{flag} {folder}")
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{flag} {folder} is a file; expected a run folder (new, or empty)")
    check_can_write(folder, f"{flag} {folder}")
    if rank() != 0:
        # Rank 0 alone checks what the folder holds: it opens the folder (`create_run_folder`, on the main
        # process only) as soon as its own checks pass, and a rank that got here later would find rank 0's
        # new files and refuse its own run. A refusal on rank 0 ends the job.
        return False
    if not holds_files(folder) or _holds_only_an_empty_checkpoint_folder(folder, checkpoint_dir):
        return False
    if resumes_run_in(resume, folder, checkpoint_dir):
        return False  # resuming a run of this folder: it goes on writing there
    if not overwrite:
        own = Path(checkpoint_dir).expanduser()
        own = own if own.is_absolute() else folder / own
        # A run still going there (its command, or its fit saving checkpoints): --overwrite and --resume
        # would be refused as well, so neither is suggested.
        owner = ckpt.live_claim_owner(folder) or ckpt.live_claim_owner(own)
        if owner is not None:
            raise ckpt.FolderInUseError(
                f"{flag} {folder} is in use: {owner} writes there; wait for it to end, or choose a new {flag}"
            )
        recorded = recorded_checkpoint_folder(folder)
        if resume is not None and recorded is not None and recorded != own and is_inside(resume, recorded):
            # This run's own checkpoint, saved where its --checkpoint_dir (left out of this command) put it.
            raise FileExistsError(
                f"{flag} {folder}: --resume {resume} is in the folder its run saves checkpoints to (its "
                f"config.json records --checkpoint_dir {recorded}: resume with --checkpoint_dir "
                f"{shell_word(str(recorded))}, "
                "as the command printed after a Ctrl-C does)"
            )
        if resume is not None:  # a checkpoint of another run (or one its config.json does not record)
            raise FileExistsError(
                f"{flag} {folder} already holds files (a previous run?), and --resume {resume} is not one of "
                f"its checkpoints (they are saved in {own}); choose a new {flag} to continue {resume} there, "
                f"or pass --overwrite to replace the run in {folder}"
            )
        if resume_hint is None:
            checkpoint = newest_checkpoint(own)
            resume_hint = shell_command("--resume", checkpoint) if checkpoint is not None else None
            if resume_hint and _finished_run(folder):  # (its resume with the same flags has nothing to do)
                raise FileExistsError(
                    f"{flag} {folder} already holds files: a finished run; choose a new {flag}, pass "
                    f"--overwrite to replace it, or {resume_hint} with more epochs than it trained to go on"
                )
        options = (
            f"pass --overwrite to replace the run there, or {resume_hint} to continue it"
            if resume_hint
            else "or pass --overwrite to replace the run there (it has no checkpoint to continue from)"
        )
        raise FileExistsError(
            f"{flag} {folder} already holds files (a previous run?); choose a new {flag}, {options}"
        )
    if cleared:
        return False
    ours = holds_run(folder)
    other = record_recipe(folder / "config.json") if ours and recipe is not None else None
    foreign = other is not None and other != recipe
    record = "config.json" if foreign else (None if ours else run_record_in(folder))
    if record is not None:
        kind = f"a {other} run" if foreign else "a run of another kind"
        raise FileExistsError(
            f"{flag} {folder} holds {kind} (its {record}); --overwrite replaces only an earlier run of this "
            f"command, so nothing was removed: choose another {flag}"
        )
    if not ours:
        # Names alone (config.json, history.json, evaluation/) do not tell a run's files from the user's:
        # removing them as "the previous run's" lost the user's own, so nothing is removed here.
        found = sorted(path.name for path in folder.iterdir() if path.name != ckpt.CLAIM_FILE)
        if outputs is not None:
            found = [name for name in found if name in set(outputs)]
            if not found:
                return False  # (notes of the user's, of names no run writes: kept, and nothing to remove)
        raise FileExistsError(
            f"{flag} {folder} holds files that no earlier run wrote (it has no run record, the config.json a "
            f"run writes first): {listed(found, KEPT_LISTED)}. --overwrite replaces only an earlier run, so "
            f"nothing was removed; choose another {flag}, or move those files out of {folder}"
        )
    return True


def forget_run_that_never_trained(folder: Path, written: Iterable[str]) -> None:
    """Remove the files a run wrote into `folder` before it failed at its first step (`written`: its record),
    where they are all the folder holds: a run that never trained (MLX could not compile a kernel in a full
    TMPDIR) left its config.json, and the same command, the cause fixed, was refused for it (--overwrite).
    A folder holding anything else is left as it is."""
    names = set(written)
    try:
        found = list(folder.iterdir())
    except OSError:
        return
    # (the run's own claim, still held; and the .DS_Store of a folder made in the Finder: `holds_files`)
    found = [path for path in found if path.name != ckpt.CLAIM_FILE and not is_finder_metadata(path.name)]
    if found and all(path.name in names and path.is_file() for path in found):
        for path in found:
            path.unlink(missing_ok=True)


def newest_checkpoint(folder: Path) -> Path | None:
    """The checkpoint a stopped run continues from: the complete checkpoint in `folder` of the highest global
    step, ``interrupted`` (Ctrl-C) and ``last`` (the end of an epoch, where a crash left it) first on a tie:
    where a full disk stopped the save of ``last``, ``best`` or an epoch's save may be newer, or the only one.
    Where none is complete, the newer of ``interrupted`` and ``last`` that holds a trainer state (the
    Trainer's own checks then say what is wrong with it); None when it has none."""
    try:
        others = sorted(  # (not a save's hidden leftover, ".last.tmp-...": the next run puts it right first)
            p
            for p in folder.iterdir()
            if p.is_dir() and p.name not in ("interrupted", "last") and not p.name.startswith(".")
        )
    except OSError:
        others = []
    complete = ckpt._newest([folder / "interrupted", folder / "last", *others])
    if complete is not None:
        return complete
    found = [folder / name for name in ("interrupted", "last") if (folder / name / ckpt.STATE_FILE).is_file()]
    return max(found, key=lambda path: (path / ckpt.STATE_FILE).stat().st_mtime, default=None)


def check_checkpoint_folder(
    folder: Path, run_dir: Path | None, flag: str, resume: str | Path | None, overwrite: bool = False
) -> None:
    """Refuse a checkpoint folder that is a file or cannot be written, and one outside the run folder that
    already holds files (another run's checkpoints): this run would replace its ``best`` and ``last``.
    A resume goes on in such a folder only in the run that saved there (`resumes_run_in`: its ``config.json``
    records the folder): a resume of those checkpoints into a new run folder would replace them just the same.

    `overwrite` (``--overwrite``) replaces the run in `run_dir`: it lifts the refusal where that run saved its
    checkpoints in `folder` (`saves_checkpoints_in`; `clear_checkpoints` removes them with the run), and not
    for another run's: that run's folder would go on naming checkpoints that are now this run's."""
    refuse_a_folder_not_searchable(folder, f"{flag} {folder}")
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{flag} {folder} is a file; expected a folder for the checkpoints")
    check_can_write(folder, f"{flag} {folder}")
    if (run_dir is not None and is_inside(folder, run_dir)) or not holds_files(folder):
        return
    if resumes_run_in(resume, run_dir, folder):
        return  # continuing the run that saves there, in its own folder
    if overwrite and saves_checkpoints_in(run_dir, folder):
        return  # the run --overwrite replaces saved them there
    outside = (
        f"{flag} {folder} is outside the run folder {run_dir or '(new)'} and already holds files (another "
        "run's checkpoints?); its best and last would be replaced"
    )
    if overwrite:
        outside += (
            f". --overwrite does not lift this: it replaces only the run in {run_dir or 'a new run folder'}, "
            f"whose config.json does not record {folder}, and the run that saved there would be left naming "
            f"checkpoints that are this run's (delete {folder} yourself if they are no longer wanted)"
        )
    choose = f"choose an empty {flag} (or leave it at its default inside the run folder)"
    if resume is not None and is_inside(resume, folder):
        raise FileExistsError(
            f"{outside}. --resume {resume} goes on saving there only in the run that saved it (give that run's "
            f"folder as --run_dir: its config.json records {flag} {folder}); to continue it in "
            f"{run_dir or 'a new run folder'} instead, {choose}"
        )
    checkpoint = newest_checkpoint(folder)
    go_on = (
        f"; to continue the run that saved them, resume it in its own folder: "
        f"{shell_command('--run_dir', 'ITS_RUN_DIR', flag, folder, '--resume', checkpoint)}"
        if checkpoint is not None
        else ""
    )
    raise FileExistsError(f"{outside}. {choose[0].upper()}{choose[1:]}{go_on}")


def clear_checkpoints(
    folder: Path, log: Callable[[str], None] = print, asked_by: str = "--overwrite"
) -> None:
    """Remove the recipe's checkpoints (`recipe_checkpoints`) in `folder`, a checkpoint folder
    outside the run folder that the run `asked_by` replaces saved them in (`check_checkpoint_folder`): left
    there, an earlier run's ``epoch=…`` or ``interrupted`` would sit among the new run's. Other files stay;
    nothing is removed while a live process trains there (`ckpt.FolderInUseError`)."""
    owner = ckpt.live_claim_owner(folder)
    if owner is not None:
        raise ckpt.FolderInUseError(
            f"{asked_by}: {folder} is in use: {owner} is still training there (it saves its checkpoints "
            "there); nothing was removed. Wait for that run to end (or stop it), or choose another run folder"
        )
    # Only the recipe's own checkpoints (best, last, epoch=...): one the user copied in there stays.
    found = sorted(
        path
        for path in recipe_checkpoints(folder)
        if path.name != ckpt.CLAIM_FILE and (path / ckpt.STATE_FILE).is_file()
    )
    for path in found:
        if path.is_symlink():
            path.unlink()
        else:
            shutil.rmtree(path)
    if found:
        names = ", ".join(path.name for path in found)
        log(f"{asked_by}: removed the previous run's checkpoints {names} from {folder}")


#: What a run writes atomically into its folder and its evaluation folder (`remove_killed_writes`).
KILLED_WRITE_SUFFIXES = ("png", "json", "md", "txt", "lab", "jams")


#: Which entries of one of a run's output folders the run wrote (`clear_run_outputs`): given the folder, the
#: paths inside it that are the run's own. Anything else found there is a user's, and stays.
OwnEntries = Callable[[Path], Iterable[Path]]

#: The checkpoint folders a recipe's callbacks save (``best``, ``last``, ``epoch=NNN``, CLAP's
#: ``epoch=N-step=M``, the Trainer's ``interrupted`` and ``nonfinite``), with the ``-vN`` a taken name gets
#: and the hidden ``.NAME.tmp-*``, ``.prev-*`` and ``.trash-*`` a killed write leaves; a copy of one under
#: another name is the user's.
_RECIPE_CHECKPOINT = re.compile(
    r"\.?(best|last|interrupted|nonfinite|epoch=\d+(-step=\d+)?)(-v\d+)?(\.(tmp|prev|trash)-.+)?"
)


def recipe_checkpoints(folder: Path) -> list[Path]:
    """The checkpoints a recipe saved in its checkpoint folder `folder` (`_RECIPE_CHECKPOINT`), and its
    fit's claim file."""
    return [
        path
        for path in folder.iterdir()
        if _RECIPE_CHECKPOINT.fullmatch(path.name) or path.name == ckpt.CLAIM_FILE
    ]


#: The folders of a run whose own entries `clear_run_outputs` knows for every recipe (a recipe adds its own).
RUN_FOLDER_ENTRIES: dict[str, OwnEntries] = {"checkpoints": recipe_checkpoints, **LOGGER_OWN_ENTRIES}


def clear_run_outputs(
    folder: Path,
    outputs: Iterable[str],
    log: Callable[[str], None] = print,
    asked_by: str = "--overwrite",
    own_entries: Mapping[str, OwnEntries] | None = None,
) -> None:
    """Remove what an earlier run wrote in `folder` (the names in `outputs`); other files stay. `asked_by`
    names the option that asked for it in the message (a flag, or ``overwrite=True`` in Python).

    A folder among `outputs` that `own_entries` (with `RUN_FOLDER_ENTRIES`: checkpoints, loggers) knows is
    cleared of the run's own entries only: a user's notes in ``evaluation/``, a checkpoint copied into
    ``checkpoints/`` under a name of their own, stay there, and one line names them. Other names are the
    run's whole (its records, plots). Such a folder made a link (``checkpoints/`` moved to another disk) is
    cleared where it points, and the link stays: the new run saves there too.

    Nothing is removed while a fit of another live process saves checkpoints below them (its run is still
    training): `ckpt.FolderInUseError` naming that process."""
    outputs = list(outputs)
    refuse_outputs_in_use(folder, outputs, asked_by)
    refuse_others_files([folder / name for name in outputs], asked_by)  # (before anything goes)
    # A killed write of one of the run's files (a plot, a record, a song's .lab in a sub-folder: an
    # evaluation of album/song) left its temporary file beside it.
    for place in _output_folders(folder, outputs):
        remove_killed_writes(place, KILLED_WRITE_SUFFIXES)
    own_entries = {**RUN_FOLDER_ENTRIES, **(own_entries or {})}
    kept = kept_entries(folder, outputs, own_entries)  # (before anything goes: said in one line after)
    # Not named: what macOS wrote there by itself (.DS_Store, the ._config.json twin on exFAT, which macOS
    # removes with config.json): the line would send the user after files of theirs that are none.
    kept = [path for path in kept if not is_finder_metadata(path.name)]
    removed = []
    for name in outputs:
        path = folder / name
        if path.is_dir() and name in own_entries:  # (a link too: the user's, cleared where it points)
            _remove_own_entries(path, own_entries[name](path))
        elif path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            continue
        removed.append(name)
    if removed:
        log(f"{asked_by}: removed the previous run's {', '.join(removed)} from {folder}")
    if kept:
        names = [str(path.relative_to(folder)) for path in kept]
        log(f"{asked_by}: kept what the previous run did not write in {folder}: {listed(names, KEPT_LISTED)}")


#: How many kept files `clear_run_outputs` names (it counts the others).
KEPT_LISTED = 10


def kept_entries(
    folder: Path, outputs: Iterable[str], own_entries: Mapping[str, OwnEntries] | None = None
) -> list[Path]:
    """What `clear_run_outputs` leaves in `folder` (found without removing anything): the entries of the
    folders among `outputs` that are not the run's own (each entry the run never touched named whole: a
    user's folder, not its files), and every entry of `folder` itself that is not among `outputs` (of one
    holding some of them, ``album`` of ``album/song.lab``, only what is left in it)."""
    outputs = list(outputs)
    own_entries = {**RUN_FOLDER_ENTRIES, **(own_entries or {})}
    try:
        found = sorted(folder.iterdir())
    except OSError:
        return []
    kept = []  # in the order of `outputs`, then the folder's other entries
    for name in outputs:
        path = folder / name
        if name in own_entries and path.is_dir():  # (a link too, as `clear_run_outputs` clears it)
            kept += _left_beside(path, _existing_own(path, own_entries[name](path)))
    # Outputs in sub-folders (an evaluation's album/song.lab): such a folder is the run's, and only what the
    # run did not write in it stays (it was named whole, as a user's, though it held the run's files alone).
    nested = _existing_own(folder, [folder / name for name in outputs if len(Path(name).parts) > 1])
    for path in found:
        if path.name in outputs or path.name == ckpt.CLAIM_FILE:
            continue
        inside = [own for own in nested if path in own.parents]
        kept += _left_beside(path, inside) if inside and not path.is_symlink() else [path]
    return kept


def _output_folders(folder: Path, outputs: Iterable[str]) -> list[Path]:
    """`folder` and the sub-folders of it that hold one of `outputs` (``album`` of ``album/song.lab``)."""
    places = {(folder / name).parent for name in outputs}
    return [folder, *sorted(place for place in places if place != folder and is_inside(place, folder))]


def _existing_own(folder: Path, entries: Iterable[Path]) -> list[Path]:
    """Those of `entries` that exist inside `folder` (a name read from a hand-edited record must not reach
    outside it)."""
    return [
        path
        for path in entries
        if path != folder and is_inside(path, folder) and (path.exists() or path.is_symlink())
    ]


def _left_beside(folder: Path, own: list[Path]) -> list[Path]:
    """What is left in `folder` once `own` (its entries that exist) is removed, folders the run never touched
    named whole."""
    touched = {folder}
    for path in own:
        touched.update(path.parents)
    own_set, left = set(own), []

    def walk(place: Path) -> None:
        for entry in sorted(place.iterdir()):
            if entry in own_set:
                continue
            if entry in touched and entry.is_dir() and not entry.is_symlink():
                walk(entry)
            else:
                left.append(entry)

    walk(folder)
    return left


def _remove_own_entries(folder: Path, entries: Iterable[Path]) -> None:
    """Remove `entries` (files or folders inside `folder`), then the folders this left empty (`folder`
    too, unless it is a link: the user's, to where the run saves)."""
    touched = {folder}
    for path in _existing_own(folder, entries):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)  # (gone with a folder listed before it)
        touched.update(path.parents)

    def clear_empty(place: Path) -> None:
        for entry in sorted(place.iterdir()):
            if entry in touched and entry.is_dir() and not entry.is_symlink():
                clear_empty(entry)
        if place in touched and not place.is_symlink() and not any(place.iterdir()):
            place.rmdir()

    clear_empty(folder)


def refuse_outputs_in_use(folder: Path, outputs: Iterable[str], asked_by: str) -> None:
    """`ckpt.FolderInUseError` when another live process's run claims `folder` (`claim_run_folder`: from its
    opening to the command's end, its evaluation and export too), or its fit a checkpoint folder among (or
    below) `outputs`: removing its files would not stop it, and it would go on writing into the run that
    replaces it."""
    owner = ckpt.live_claim_owner(folder)
    if owner is not None:
        raise ckpt.FolderInUseError(
            f"{asked_by}: {folder} is in use: {owner} is still running there (training, evaluating or "
            "exporting); nothing was removed. Wait for that run to end (or stop it), or choose another run "
            "folder"
        )
    for name in outputs:
        path = folder / name
        if not path.is_dir():  # (a folder made a link is walked too: a fit may save where it points)
            continue
        for where, _, files in os.walk(path):
            if ckpt.CLAIM_FILE not in files:
                continue
            owner = ckpt.live_claim_owner(where)
            if owner is not None:
                raise ckpt.FolderInUseError(
                    f"{asked_by}: {folder} is in use: {owner} is still training there (it saves its "
                    f"checkpoints in {where}); nothing was removed. Wait for that run to end (or stop it), or "
                    "choose another run folder"
                )


#: Run folders this process claims (`claim_run_folder`), in the order claimed.
_run_claims: list[Path] = []


def claim_run_folder(folder: Path) -> None:
    """Claim `folder` for this process's run (a lock file there; `ckpt.claim_folder`) until the end of the
    `holding_run_folders` block around the command: ``--overwrite`` of another process is refused meanwhile
    (`clear_run_outputs`), also after the fit (whose own lock covers only the training) while the run still
    evaluates and exports into it. A claim left by a dead process does not hold (the system drops the lock).
    The main process's alone: it opens the run folder."""
    ckpt.claim_folder(folder, f"run folder {folder}", holder="run")
    _run_claims.append(folder)


def release_run_folder(folder: Path) -> None:
    """End this process's claim on `folder` early (a run folder being put back as it was found)."""
    if folder in _run_claims:
        _run_claims.remove(folder)
        ckpt.release_folder(folder)


@contextlib.contextmanager
def holding_run_folders() -> Iterator[None]:
    """Release, as the block ends however it ends, the run-folder claims made inside it."""
    start = len(_run_claims)
    try:
        yield
    finally:
        while len(_run_claims) > start:
            ckpt.release_folder(_run_claims.pop())


def create_run_folder(folder: Path | None, prefix: str, parent: Path = Path("runs")) -> Path:
    """Create `folder`, or (None) a new ``parent/<prefix>-<date>-<time>`` that no other run has.

    The default name is claimed with ``mkdir`` (atomic: of two processes, exactly one creates a name), so
    two runs started in the same second get ``...-<time>`` and ``...-<time>-2``.
    """
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    parent.mkdir(parents=True, exist_ok=True)
    for candidate in run_folder_names(prefix, parent):
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(
        f"{parent}: every name {prefix}-<date>-<time>-N is taken; pass the run folder explicitly"
    )


def run_folder_names(prefix: str, parent: Path = Path("runs")) -> Iterator[Path]:
    """The names a default run folder tries in turn: ``parent/<prefix>-<date>-<time>``, then ``-2``..."""
    stem = f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    return (parent / (stem if n == 1 else f"{stem}-{n}") for n in range(1, 10_000))


def shared_run_folder_name(prefix: str, parent: Path = Path("runs")) -> Path:
    """A new run folder's name, the first of `run_folder_names` not taken yet, the same on every rank of a
    job: rank 0 picks it and the others take its pick, as the ranks' clocks can read different seconds (each
    rank naming its own put a job's ranks in two folders). Not created here."""
    main = collectives.is_main_process()
    free = next(p for p in run_folder_names(prefix, parent) if not p.exists()) if main else None
    return Path(collectives.broadcast_from_main(str(free) if main else None))


def refuse_existing_outputs(targets: Iterable[Path], overwrite: bool, can_skip: bool = False) -> None:
    """Refuse (before any work) to replace output files that exist already (earlier predictions or scores,
    perhaps edited by hand), unless `overwrite`. `can_skip`: the command takes ``--skip_existing``, which
    the refusal then names (after a killed run, the only hint of how to go on)."""
    existing = [t for t in targets if _exists(t)]
    refuse_others_files(existing, "--overwrite")  # (no --overwrite replaces those: said, not suggested)
    if existing and not overwrite:
        raise FileExistsError(
            f"refusing to replace {listed(existing)}: written earlier (or by hand). Write elsewhere with -o, "
            + ("pass --skip_existing to keep them and write the rest, " if can_skip else "")
            + "or pass --overwrite to replace them"
        )


def refuse_outputs_of_a_live_run(targets: Iterable[Path], flag: str, run_outputs: Collection[str]) -> None:
    """Refuse (with ``--overwrite`` too) an output among what a run still going writes in its folder
    (`run_outputs`: its ``evaluation/``, ``history.json``, ...), where another live process claims that folder
    (`claim_run_folder`): the run replaces those files as it ends, without a word, and an evaluation's .lab
    files of other songs would stay beside its own as if it had scored them."""
    owners: dict[Path, str | None] = {}  # (each folder asked once: a folder of songs shares its parents)
    for target in targets:
        path = Path(os.path.abspath(target))
        for folder in path.parents:
            if folder not in owners:
                owners[folder] = ckpt.live_claim_owner(folder)
            entry = path.relative_to(folder).parts[0]
            if owners[folder] is not None and entry in run_outputs:
                raise ckpt.FolderInUseError(
                    f"{flag}: {folder} is the folder of a run still going ({owners[folder]}): it writes "
                    f"{folder / entry} as it ends, replacing what is there; write elsewhere with -o, or wait "
                    "for that run to end"
                )


def _exists(path: Path) -> bool:
    """Whether `path` (or a link of that name) exists; False for a name or path too long to exist (exists()
    raised ``File name too long`` for a song's mirrored path, which the command sets aside as unwritable)."""
    try:
        return path.exists() or path.is_symlink()
    except OSError as error:
        if error.errno == errno.ENAMETOOLONG:
            return False
        raise


#: The distributions a run folder's config.json records the versions of (``packages``; None: not installed).
RECORDED_PACKAGES = (
    "mlx-cpu", "mlx-metal", "mlx-cuda-12", "mlx-cuda-13",
    "scipy", "librosa", "soundfile", "soxr", "mir_eval", "tokenizers", "safetensors",
)  # fmt: skip


def write_run_record(
    path: Path,
    config: dict[str, Any],
    command: list[str],
    *,
    claim: str | None = None,
    continues: bool = False,
    **facts: Any,
) -> None:
    """A run folder's ``config.json``: everything needed to reproduce the run, as
    ``{"config": ..., "versions": ..., "builds": ..., "command": ..., **facts}`` (``--config RUN/config.json``
    repeats it, see `audiotrain.recipes.config_cli.settings_of`). ``builds``: every audiotrain build that
    trained the run, oldest first: where it `continues` (a resume in its own folder), those the record at
    `path` names (an older record: the build its ``versions`` name), then this one. `claim`: see
    `write_first_file`."""
    builds = _recorded_builds(path) if continues else []
    if builds[-1:] != [build_version()]:
        builds.append(build_version())
    record = {
        "config": config,
        "versions": versions(),
        # The other packages whose code computes a recipe's numbers (MLX's backend wheel, audio reading and
        # resampling, features, tokenizer, scores): `versions` names the core alone, as every checkpoint does.
        "packages": installed_versions(RECORDED_PACKAGES),
        "builds": builds,
        "command": list(command),
        **facts,
    }
    write_first_file(path, json_text(record, indent=2) + "\n", claim)


def check_run_record_readable(run_dir: Path | None, continuing: bool) -> None:
    """A resume in its own run folder (`continuing`) rewrites its ``config.json`` keeping what it records
    (`builds`, every build that trained the run): one that is there but cannot be read would be replaced
    unread, and that record lost without a word. Refused, naming it, before anything is written."""
    path = run_dir / RUN_RECORDS[0] if continuing and run_dir is not None else None
    if path is None or not os.path.lexists(path) or isinstance(_json_record(path), dict):
        return
    raise ValueError(
        f"{path}: the run's record cannot be read (damaged or cut short?), and --resume would replace it, "
        "losing what it records (the builds that trained the run); restore or repair it, or move it aside to "
        "resume with a new record"
    )


def _recorded_builds(path: Path) -> list[str]:
    """The builds the run record at `path` says trained its run (`write_run_record`), [] where none."""
    record = _json_record(path)
    builds = record.get("builds") if isinstance(record, dict) else None
    if isinstance(builds, list) and all(isinstance(b, str) for b in builds):
        return list(builds)
    build = ((record.get("versions") if isinstance(record, dict) else None) or {}).get("audiotrain")
    return [build] if isinstance(build, str) else []


def recorded_command(module: str) -> list[str]:
    """The command a run of recipe `module` records (``config.json``'s ``command``): ``python -m module``
    and its arguments, with this interpreter, where the recipe's command line runs (``python -m module``,
    ``audiotrain <recipe>``, a rank of its job); a script calling the recipe's functions keeps its own
    ``sys.argv``. (``sys.argv`` alone named the recipe's ``__main__.py`` in site-packages: not runnable.)"""
    main = importlib.util.find_spec(f"{module}.__main__")
    if main is not None and sys.argv and os.path.abspath(sys.argv[0]) == main.origin:
        return [sys.executable, "-m", module, *sys.argv[1:]]
    return list(sys.argv)


def write_first_file(path: Path, text: str, claim: str | None) -> None:
    """Write `text` to `path` atomically. With `claim` (the flag that named the folder) it is the first file
    of a new run and claims the folder: it is created only if no other run created it first. Two runs
    started into one folder at once both pass `check_run_folder`; here the second is refused, before it
    writes anything. Without `claim` (a run going on in its own folder) an earlier file is replaced. A file
    name the locale could not decode (surrogate escapes) is written as its own bytes, as the chord recipe's
    data report writes it."""
    data = text.encode("utf-8", "surrogateescape")
    try:
        if claim is None:
            write_atomically(path, lambda handle: handle.write(data))
        else:
            create_atomically(path, lambda handle: handle.write(data))
    except FileExistsError:
        raise FileExistsError(
            f"{claim} {path.parent} was taken by another run started at the same time (its {path.name} "
            f"appeared after this run's checks); choose a new {claim}"
        ) from None
    except OSError as error:  # made read-only (or full) since the checks at the start
        raise OutputFolderError(
            f"{claim or 'the run folder'} {path.parent}: cannot write {path.name} ({error.strerror or error})"
        ) from None


def shell_command(*words: str | os.PathLike) -> str:
    """A command line printed for the user to copy: every word shell-quoted (a run folder with a space or a
    quote stays one argument); placeholders such as ``SONG.wav`` or ``DIR`` need no quotes and get none. A
    relative path (a `Path`, not a flag) that starts with a dash is written ``./-notes``: quotes do not keep
    argparse from reading ``--run_dir -notes`` as a flag with no value."""
    return " ".join(shell_word(_path_word(word)) for word in words)


def _path_word(word: str | os.PathLike) -> str:
    text = str(word)
    return f".{os.sep}{text}" if not isinstance(word, str) and text.startswith("-") else text


#: Options of a command line that a resume command drops: (name, whether a value follows it).
_DROPPED_ON_RESUME = (("--resume", True), ("--overwrite", False))


def resume_command(
    module: str,
    argv: list[str],
    checkpoint: str | Path,
    run_dir: str | Path | None = None,
    run_flag: str = "--run_dir",
    path_flags: Collection[str] = (),
) -> str:
    """The command line that continues an interrupted run: `argv` with ``--resume checkpoint`` (any earlier
    ``--resume`` and ``--overwrite`` dropped), for a recipe run as ``python -m module`` (or ``audiotrain
    <recipe>``, as it was started: `audiotrain._invocation.recipe_command`).

    With `run_dir` (the interrupted run's folder) the command names it as ``run_flag run_dir`` (replacing
    any given), as an absolute path: the run goes on in its own folder, with its best-checkpoint tracking,
    instead of starting a new default folder, from whatever folder the command is pasted in.

    The values of `path_flags` (``--data``, ``--config``, ...) are written absolute too, where they name
    something that exists (a relative one pasted elsewhere would name another folder, or none; a value that
    names nothing here, such as a hub id, stays as given).

    In a job the user launched (several ranks, where the batch size is per process) the command starts
    the job again: ``python -m audiotrain launch <its options> -- python -m module ...``. Under another
    launcher, whose command line the ranks cannot see, a comment says to run it under that launcher:
    run alone it would train one process on a smaller global batch."""
    dropped = dict(_DROPPED_ON_RESUME)
    if run_dir is not None:
        dropped[run_flag] = True
    kept, skip = [], None
    for arg in argv:
        if skip == "value":
            skip = None
            continue
        if skip == "bool":  # clap's --overwrite takes an optional true/false
            skip = None
            if arg.lower() in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                continue
        if skip == "path":
            skip = None
            kept.append(_absolute_if_there(arg))
            continue
        name, equals, value = arg.partition("=")
        if name in dropped:
            if not equals:
                skip = "value" if dropped[name] else "bool"
        elif name in path_flags:
            kept.append(f"{name}={_absolute_if_there(value)}" if equals else arg)
            skip = None if equals else "path"
        else:
            kept.append(arg)
    if run_dir is not None:
        kept += [run_flag, os.path.abspath(run_dir)]
    prefix = relaunch_prefix()
    command = shell_command(*(prefix or []), *recipe_command(module), *kept, "--resume", checkpoint)
    if prefix == []:
        processes = joined_world_size()
        command += f"  # under the launcher of this run's {processes} processes, e.g. mpirun -np {processes}"
    return command


def _absolute_if_there(path: str) -> str:
    """`path` (a flag's value, as typed) made absolute when it names an existing file or folder."""
    expanded = home_expanded(path)
    return os.path.abspath(expanded) if os.path.lexists(expanded) else path


def check_resume_folder(path: str | Path) -> Path:
    """The checkpoint folder `--resume` names, checked before any data or model is loaded: it exists and is a
    complete audiotrain checkpoint (model, optimizer state and a readable trainer_state.json), and its
    optimizer and step-state files are readable safetensors (a damaged one would fail the fit only after the
    run folder was written). Each recipe checks the model's arrays against its model before it writes."""
    folder = ckpt.resolve_checkpoint(path)
    ckpt.read_state(folder)
    ckpt.read_arrays(folder / ckpt.OPTIMIZER_FILE)
    # Not checked for NaN, as the fit reads it (`read_checkpoint`): a non-finite gradient accumulated in the
    # open window is the guard's to skip, not a damaged file (and a checkpoint written while grad_norm
    # started as NaN, between a9ba4ed and 5e90980, had one in every run without norm clipping).
    ckpt.read_arrays(folder / ckpt.STEP_STATE_FILE, finite=False)
    return folder


def checkpoint_processes(resume: str | Path | None, setting: str = "processes") -> int | None:
    """How many data-parallel processes wrote the checkpoint `resume` names, or None without one, when it
    cannot be read (the resume checks then say why) or when nothing tells.

    Its record first: the processes of its global batch, or of its training loader (mid-epoch). A checkpoint
    older than both is told by its run's settings, `setting` (the recipe's processes field, dotted, in the
    ``run_config`` it holds, or in its run folder's config.json): a run from before the field existed
    trained in one process; N >= 1 in N; 0 (one per core) in the count its config.json records
    (``processes_used``), where it does."""
    if not resume:
        return None
    try:
        folder = ckpt.resolve_checkpoint(resume)
        state = ckpt.read_state(folder)
    except Exception:  # noqa: BLE001 - reported by the resume checks, with the file and the reason
        return None
    for part in ("global_batch", "data_loader"):
        record = state.get(part)
        world = record.get("world_size") if isinstance(record, dict) else None
        if isinstance(world, int) and not isinstance(world, bool) and world >= 1:
            return world
    run_record = run_record_of(folder) or {}
    settings = state.get("run_config")
    if not isinstance(settings, dict):
        settings = run_record.get("config") if isinstance(run_record.get("config"), dict) else None
    if settings is None:
        return None
    *sections, name = setting.split(".")
    for section in sections:
        settings = settings.get(section) if isinstance(settings, dict) else None
    if not isinstance(settings, dict):
        return None
    if name not in settings:
        return 1  # its recipe trained in one process then
    value = settings[name]
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    used = run_record.get("processes_used")
    return used if isinstance(used, int) and not isinstance(used, bool) and used >= 1 else None


def resume_processes_note(
    resume: str | Path | None,
    recorded: int | None,
    requested: int,
    planned: int,
    flag: str,
    *,
    on_cpu: bool = True,
    batch: tuple[int, str] | None = None,
) -> str | None:
    """The line a resume prints about its processes: that it keeps the count its checkpoint was trained in
    (`recorded`), that it trains in another one asked for with `flag` (`requested`, `planned`), or that the
    checkpoint does not say. The count changes the result (the batch is split otherwise: float rounding, and
    each process's own dropout draws in CLAP's): none where no resume or nothing to say. `on_cpu`:
    whether training runs on the CPU, where leaving `flag` out would resume in the recorded count (on a GPU
    several processes are refused). `batch`: this run's batch (split between its processes) and its flag;
    where the checkpoint's global batch (processes x batch per process) differs, the line says so instead."""
    if not resume:
        return None
    saved = _checkpoint_global_batch(resume) if batch is not None else None
    if saved and batch and saved[0] * saved[1] != batch[0] and not (requested and planned == recorded):
        return _another_global_batch_note(resume, saved, planned, batch, flag, on_cpu)
    if recorded is None:
        try:
            ckpt.read_state(ckpt.resolve_checkpoint(resume))
        except Exception:  # noqa: BLE001 - no checkpoint there: the resume's error says so, and this
            return None  # line would describe a checkpoint that does not exist
        return (
            f"note: {resume} does not record how many processes trained it (an older checkpoint whose run "
            f"chose one per core); this resume trains in {planned}. Pass {flag} N with the count it trained "
            "in to continue it exactly"
        )
    plural = "es" * (recorded > 1)
    if planned == recorded:
        if requested:
            return None  # asked for, and the same
        return f"resuming in {recorded} process{plural}, as {resume} was trained ({flag} N to choose)"
    asked = f" ({flag} {requested})" if requested else ""
    split_otherwise = "the batch is split otherwise"
    if saved:  # (the same global batch: a launcher's, or the recipe's own processes')
        split_otherwise = (
            f"the same global batch of {saved[0] * saved[1]}, split in {planned} process"
            f"{'es' * (planned > 1)} instead of {recorded}"
        )
    return (
        f"note: {resume} was trained in {recorded} process{plural}; this resume trains in {planned}{asked}, so "
        f"it does not continue that run exactly ({split_otherwise})"
        + (f"; leave {flag} out to resume in {recorded}" if requested and on_cpu else "")
    )


def _checkpoint_global_batch(resume: str | Path) -> tuple[int, int] | None:
    """(processes, batch size per process) of `resume`'s checkpoint, or None where it does not record them (a
    checkpoint from before ``global_batch``) or cannot be read (the resume checks say why)."""
    try:
        saved = ckpt.read_state(ckpt.resolve_checkpoint(resume)).get("global_batch")
    except Exception:  # noqa: BLE001 - reported by the resume checks
        return None
    ranks, size = (saved.get("world_size"), saved.get("batch_size")) if isinstance(saved, dict) else (0, 0)
    if all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (ranks, size)):
        return ranks, size
    return None


def _another_global_batch_note(
    resume: str | Path, saved: tuple[int, int], planned: int, batch: tuple[int, str], flag: str, on_cpu: bool
) -> str:
    """The resume note where `resume`'s checkpoint (`saved`: processes, batch per process) trained with
    another global batch than this run's `batch` (split between `planned` processes): typically one trained
    under a launcher (batch size per process there) resumed without it."""
    (ranks, size), (now, batch_flag) = saved, batch
    keep = f"{batch_flag} {ranks * size}" + (f" {flag} {ranks}" if planned != ranks and on_cpu else "")
    return (
        f"note: {resume} was trained with a global batch of {ranks * size} ({ranks} "
        f"process{'es' * (ranks > 1)} x {size}); this resume trains with {now} in {planned}, so it does not "
        "continue that run exactly. "
        f"Resume it as it was trained (under a launcher the batch size is per process), or pass {keep}"
    )
