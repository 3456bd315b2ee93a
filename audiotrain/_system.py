"""Facts about the machine the process runs on: cores, versions, whether MLX loads, and the folders the
package and MLX keep files in."""

from __future__ import annotations

import contextlib
import errno
import math
import os
import signal
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:  # (Unix only) imported here, as the process starts: under a tight `ulimit -v` it may not load later
    import resource
except ImportError:
    resource = None  # type: ignore[assignment]

from audiotrain._cgroup import cgroup_cpu_limit
from audiotrain._files import probe_writable
from audiotrain._stop_signals import STOP_SIGNALS, usr1_is_a_stand_in

#: The extras that install an MLX backend on Linux, where plain ``mlx`` has none (macOS's has Metal).
BACKEND_EXTRAS = "pip install 'audiotrain[cpu]' (or [cuda] for CUDA 12, [cuda13] for CUDA 13; only one)"
#: How to get a GPU backend where MLX has none: the CPU wheel out first, as two backends' wheels overwrite
#: each other's ``libmlx.so``.
GPU_BACKEND_HINT = (
    "on Linux with an NVIDIA GPU: pip uninstall mlx-cpu, then pip install 'audiotrain[cuda13]' for CUDA 13 "
    "or 'audiotrain[cuda]' for CUDA 12; on a Mac, MLX uses Metal (Apple silicon)"
)
#: The variable that moves the package's cache (demo data, feature cache); empty means unset.
CACHE_DIR_ENV = "AUDIOTRAIN_CACHE_DIR"
#: What libstdc++'s and libc++'s ``std::filesystem::temp_directory_path`` read, in their order: the first
#: one set is used even when it is empty (which then fails), /tmp when none is. Python's `tempfile` skips
#: empty ones, so it cannot be asked.
TEMP_DIR_VARIABLES = ("TMPDIR", "TMP", "TEMP", "TEMPDIR")
#: Their folder when none is set (libstdc++'s and libc++'s fallback on Linux and macOS).
SYSTEM_TEMP_DIR = "/tmp"


class MLXNotLoadable(ImportError):
    """``mlx.core`` cannot be imported: on Linux mostly a plain ``pip install audiotrain``, which brings MLX
    without a backend (``libmlx.so`` comes with the extras). The message says what to install."""


def usable_cores() -> int:
    """CPU cores this process may run on, at least 1: its affinity mask where the OS has one, or fewer where
    its cgroup's CPU quota allows fewer (`_cgroup.cgroup_cpu_limit`, rounded up: ``docker run --cpus 2`` on a
    64-core host lists all 64 in the mask)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def read_platform_once() -> str:
    """`platform.platform()`, which `versions` records. Its first call in a process runs ``uname -p``, and
    `subprocess` changes the warning filters for a moment there (`os.get_exec_path`), which starts every
    module's once-per-place warning registry afresh: called first at a fit's first checkpoint, it showed a
    sweep's first-trial warnings (the short-epoch one) again in its second trial. The Trainer reads it as it
    is made, before the warnings of its fits; later calls are cached by `platform`."""
    import platform

    return platform.platform()


def versions() -> dict[str, str | None]:
    """What a run was made with, as recorded in every run folder's ``config.json`` and every checkpoint's
    ``trainer_state.json``: audiotrain (its build: `audiotrain._build.build_version`), MLX, numpy, Python, the
    platform, ``OPENBLAS_CORETYPE`` (which picks OpenBLAS's kernels, so it can change the numbers; None
    when unset) and ``blas_threads``, the thread count of the OpenBLAS that MLX's CPU matmuls use (it
    changes their last bits: set by the cores, a cgroup or affinity limit, ``OPENBLAS_NUM_THREADS`` (else
    ``OMP_NUM_THREADS``), and under data parallel the cores shared out among the processes; None without an
    OpenBLAS)."""
    import platform

    from audiotrain._blas import blas_threads
    from audiotrain._build import build_version

    import mlx.core as mx
    import numpy as np

    return {
        "audiotrain": build_version(),  # the version, and the git commit where it is known
        "mlx": getattr(mx, "__version__", "unknown"),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": read_platform_once(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "blas_threads": None if (threads := blas_threads()) is None else str(threads),
    }


def device_record(accelerator: str) -> dict[str, str | None]:
    """Where a run trained, for its ``config.json`` (``device_used``): ``kind`` "cpu" or "gpu" (what a
    ``device`` of "auto" resolved to on that machine) and the device's name and architecture as MLX reports
    them (``mx.device_info``: the CPU's model, or the GPU's), None where MLX does not say. A GPU's float
    rounding is not the CPU's, so a repeat on the other kind gives other weights."""
    import mlx.core as mx

    try:
        info = mx.device_info(mx.gpu if accelerator == "gpu" else mx.cpu)
    except (RuntimeError, ValueError, AttributeError):  # (an MLX without it, or a backend that cannot say)
        info = {}
    name, architecture = info.get("device_name"), info.get("architecture")
    return {
        "kind": accelerator,
        "name": None if name is None else str(name),
        "architecture": None if architecture is None else str(architecture),
    }


def installed_versions(names: tuple[str, ...]) -> dict[str, str | None]:
    """Each named distribution's installed version (package metadata), None where it is not installed."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def check_mlx_loads() -> None:
    """Raise `MLXNotLoadable`, naming what to install, when ``mlx.core`` cannot be imported. For the start of a
    command and for the package's public names: the loader's own error (``libmlx.so: cannot open shared
    object file``) does not say that a backend extra was left out."""
    try:
        import mlx.core  # noqa: F401
    except ImportError as error:
        detail = str(error)
        given = os.environ.get("CUDA_VISIBLE_DEVICES")
        if "no CUDA-capable device is detected" in detail and given is not None and not given.strip():
            # (set empty: CUDA hides every GPU; no launcher gave this process one the machine lacks)
            raise MLXNotLoadable(
                "MLX cannot be loaded: CUDA_VISIBLE_DEVICES is set but empty, which hides every GPU from "
                f"this MLX built for CUDA (import mlx.core: {detail}); unset it, or pip install "
                "'audiotrain[cpu]' to train on the CPU"
            ) from error
        if "no CUDA-capable device is detected" in detail and given is not None:
            # MLX is installed; the process was handed a GPU that is not there (mlx.launch's NCCL backend
            # gives rank r the GPU r, so -n 2 on a one-GPU machine leaves rank 1 without one).
            raise MLXNotLoadable(
                f'MLX cannot be loaded: this process was given GPU "{given}" (CUDA_VISIBLE_DEVICES), which '
                f"this machine does not have (import mlx.core: {detail}); mlx.launch gives each rank its own "
                "GPU: use -n no more than the GPUs, or --backend ring to share them"
            ) from error
        if isinstance(error, ModuleNotFoundError) and (error.name or "").partition(".")[0] == "mlx":
            what = "MLX is not installed"
        elif "libmlx" in detail:
            what = "no MLX backend is installed"
        else:
            what = "MLX cannot be loaded"
        fix = BACKEND_EXTRAS if sys.platform.startswith("linux") else "pip install --force-reinstall mlx"
        raise MLXNotLoadable(f"{what} (import mlx.core: {detail}): {fix}") from error


def exit_unless_mlx_loads() -> None:
    """For a command's first line: `check_mlx_loads`, and on failure one ``error:`` line and exit status 1
    instead of a traceback from whichever module imported ``mlx.core`` first."""
    try:
        check_mlx_loads()
    except MLXNotLoadable as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None


def escape_what_stdout_cannot_encode() -> None:
    """For a command's first line: a character its stdout cannot encode is printed as an escape instead of
    stopping the command with ``UnicodeEncodeError`` after its work: a ``→`` in a report under an ASCII
    locale with Python's UTF-8 mode off (``LC_ALL=C PYTHONUTF8=0``), and a path whose bytes are not UTF-8
    (``--run_dir $'r\\xffn'``: a surrogate escape) on the strict UTF-8 stdout of an installed UTF-8 locale.
    stderr already does this (Python's default there), as does a stdout that writes surrogates back as
    their bytes (C.UTF-8). The commands the user is to paste are quoted apart (`shell_command`)."""
    import codecs

    for stream in (sys.stdout, sys.stderr):
        if not hasattr(stream, "reconfigure"):  # (replaced by a caller's own stream)
            continue
        strict = getattr(stream, "errors", None) == "strict"
        if strict or codecs.lookup(getattr(stream, "encoding", None) or "ascii").name != "utf-8":
            stream.reconfigure(errors="backslashreplace")


def show_warnings_on_one_line() -> None:
    """For a command's first line: a warning reads ``warning: <Category>: message``. Python's format adds
    the file and the line of code that warned, which are the library's own (a path into site-packages and an
    internal comment): noise to someone at a command line, whom the message tells what to change. Python
    code that uses the package keeps Python's format."""
    import warnings

    def one_line(message, category, filename, lineno, line=None) -> str:
        return f"warning: {category.__name__}: {message}\n"

    warnings.formatwarning = one_line


def private_matplotlib_folder_unless_writable() -> None:
    """For a command's first line: where matplotlib cannot write its configuration and cache folders (a
    read-only HOME) and MPLCONFIGDIR is not set, point MPLCONFIGDIR at a temporary folder, removed at exit.
    matplotlib does the same itself, but only after printing two lines about ``~/.config/matplotlib`` into
    the run's output, which tell the user to set MPLCONFIGDIR. Tried as matplotlib tries them (Linux:
    ``$XDG_CONFIG_HOME`` or ``~/.config``, and ``$XDG_CACHE_HOME`` or ``~/.cache``; elsewhere
    ``~/.matplotlib``), without making them."""
    if os.environ.get("MPLCONFIGDIR"):
        return
    if sys.platform.startswith(("linux", "freebsd")):
        folders = [
            _xdg_or_home("XDG_CONFIG_HOME", ".config", "matplotlib"),
            _xdg_or_home("XDG_CACHE_HOME", ".cache", "matplotlib"),
        ]
    else:
        folders = [_xdg_or_home(None, ".matplotlib", "")]
    # (None: no home to look in, where matplotlib would stop with "Could not determine home directory")
    if all(folder is not None and _could_make_and_write(folder) for folder in folders):
        return
    import atexit
    import shutil
    import tempfile

    try:
        folder = tempfile.mkdtemp(prefix="matplotlib-")
    except OSError:  # no temporary folder either: matplotlib says what it can
        return
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["MPLCONFIGDIR"] = folder


def _could_make_and_write(folder: Path) -> bool:
    """Whether `folder` is a folder this process may write in, or could be made as one (its nearest existing
    parent is a writable folder)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return existing.is_dir() and os.access(existing, os.W_OK)


def cache_dir() -> Path:
    """The package's cache: ``$AUDIOTRAIN_CACHE_DIR``, else ``$XDG_CACHE_HOME/audiotrain``, else
    ``~/.cache/audiotrain``. The one rule for the demo data of both recipes and the feature cache (and so
    for ``python -m audiotrain cache``). An empty variable is unset, as XDG's are
    (``AUDIOTRAIN_CACHE_DIR=$SCRATCH`` with SCRATCH unset must not mean the current folder); so is a relative
    ``XDG_CACHE_HOME``, which the XDG specification says to ignore. Clusters point XDG_CACHE_HOME at scratch
    space where HOME is small or read-only, and pip and torch follow it."""
    value = os.environ.get(CACHE_DIR_ENV, "").strip()
    if value:
        return Path(value).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "audiotrain"
    home = home_folder()
    if home is None:
        raise NoHomeFolderError(
            "no folder for audiotrain's cache: it goes in ~/.cache/audiotrain, and this process has no home "
            f"folder (HOME is unset and user {os.getuid()} has no passwd entry); set {CACHE_DIR_ENV} to a "
            "folder for it (or XDG_CACHE_HOME, or HOME)"
        )
    return home / ".cache" / "audiotrain"


class NoHomeFolderError(ValueError):
    """The cache folder would be in the home folder, and this process has none (HOME unset, and a uid
    without a passwd entry: ``docker run --user 12345``); the message names the variables to set."""


def home_folder() -> Path | None:
    """The user's home folder (`Path.home`), or None where there is none to find: HOME unset, and a uid
    without a passwd entry, for which `Path.home` raises RuntimeError. Asked only where a folder the user
    did not give falls back to it."""
    try:
        return Path.home()
    except (RuntimeError, KeyError):
        return None


def _xdg_or_home(variable: str | None, under_home: str, name: str) -> Path | None:
    """``$variable/name`` where `variable` is set (as matplotlib reads it), else ``~/under_home/name``, or
    None where there is no home folder."""
    value = os.environ.get(variable) if variable else None
    if value:
        return Path(value) / name
    home = home_folder()
    return None if home is None else home / under_home / name


def mlx_temp_dir() -> tuple[str | None, str]:
    """(the variable that names it, or None; the folder) where MLX's C++ code finds the temporary folder, in
    which it keeps the kernels it compiles (`TEMP_DIR_VARIABLES`)."""
    for name in TEMP_DIR_VARIABLES:
        if name in os.environ:
            return name, os.environ[name]
    return None, SYSTEM_TEMP_DIR


def mlx_kernel_cache() -> Path:
    """Where MLX's CPU backend keeps the kernels it compiles (C++ built by the system's compiler when a
    compiled function first runs): ``<temporary folder>/mlx/<MLX version>/cpu``."""
    import mlx.core as mx

    return Path(mlx_temp_dir()[1]) / "mlx" / mx.__version__ / "cpu"


def use_own_kernel_folder(log: Callable[[str], None] | None = None) -> Path | None:
    """Where MLX would keep its compiled kernels in a folder this user cannot write (on a shared server,
    ``/tmp/mlx``, made by whoever ran MLX first) and the user set none of `TEMP_DIR_VARIABLES`: point TMPDIR
    at ``<tmp>/mlx-<uid>``, this user's own (made 0700), saying so in one line through `log` as it is made
    (the first such run since /tmp was last emptied; later runs use it without a word). Returns that
    folder, or None where nothing was changed: a folder the user chose is theirs (`check_kernel_cache` refuses
    it where it fails), and an own folder that is another user's (made there first, to catch this user's
    kernels) or not writable is never used: the refusal stays.

    MLX's C++ reads TMPDIR at every kernel compile (the CPU backend) and at the first CUDA compile (its PTX
    cache folder, kept in a static): setting it before the first compile of the process moves both. The
    folder sits beside ``/tmp/mlx``, where MLX keeps kernels anyway: it lasts between runs as that one does,
    so each user compiles once, on the same local disk; a cache under HOME would be slow or absent (NFS
    homes, HOME=/nonexistent) and is no place for a compiler's temporary files."""
    if any(name in os.environ for name in TEMP_DIR_VARIABLES) or not hasattr(os, "geteuid"):
        return None
    cache = mlx_kernel_cache()
    tried, refused = probe_writable(cache)
    if refused is None:
        return None
    own = own_kernel_folder()
    made_now = not os.path.lexists(own)
    if why_not_own_kernel_folder(own) is not None:
        return None
    os.environ["TMPDIR"] = str(own)
    if log is not None and made_now:  # (said as the folder is made: later runs use it in silence)
        log(
            f"MLX's kernel folder {cache} cannot be written ({refused.strerror or refused}; "
            f"{'it' if tried == cache else tried} is {_owner_name(tried)}'s): this user's compiled kernels "
            f"are kept in {own} instead, from now on (audiotrain points TMPDIR there; set TMPDIR to choose "
            "another)"
        )
    return own


def own_kernel_folder() -> Path:
    """The folder `use_own_kernel_folder` points TMPDIR at: ``<tmp>/mlx-<uid>``."""
    return Path(SYSTEM_TEMP_DIR) / f"mlx-{os.geteuid()}"


def why_not_own_kernel_folder(folder: Path) -> str | None:
    """Why `folder` cannot be this user's kernel folder (None where it is, or is now made so: this user's,
    0700): in a shared ``/tmp`` anyone may make it first, and MLX loads the kernels it finds there as code."""
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as error:
        return f"cannot be made ({error.strerror or error})"
    try:
        made = os.lstat(folder)
    except OSError as error:
        return f"cannot be looked at ({error.strerror or error})"
    if stat.S_ISLNK(made.st_mode):
        return "is a link, which any user may have made"
    if not stat.S_ISDIR(made.st_mode):
        return "is no folder"
    if made.st_uid != os.geteuid():
        return f"is {_owner_name(folder)}'s"
    if made.st_mode & 0o022:
        return "may be written by other users"
    error = probe_writable(folder)[1]
    return None if error is None else f"cannot be written ({error.strerror or error})"


def _owner_name(path: Path) -> str:
    """The user name of `path`'s owner (its uid where the system has no name for it)."""
    import pwd

    try:
        uid = os.stat(path).st_uid
    except OSError:
        return "another user"
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def mlx_cuda_kernel_cache() -> Path | None:
    """Where MLX's CUDA backend keeps the kernels it compiles with NVRTC on their first use (a ``.ptx`` or
    cubin, a ``.txt`` of kernel names and the ``.cu`` source for each; ``ptx_cache_dir`` in MLX's
    mlx/backend/cuda/jit_module.cpp): ``MLX_PTX_CACHE_DIR`` where set, else
    ``<temporary folder>/mlx/<MLX version>/ptx``. None where ``MLX_PTX_CACHE_DIR`` is set but empty: MLX then
    cannot make that folder and keeps no kernel, so every run compiles them again."""
    import mlx.core as mx

    if "MLX_PTX_CACHE_DIR" in os.environ:
        folder = os.environ["MLX_PTX_CACHE_DIR"]
        return Path(folder) if folder else None
    return Path(mlx_temp_dir()[1]) / "mlx" / mx.__version__ / "ptx"


#: Free space in the temporary folder below which a first run (no compiled kernels there yet) is refused
#: before it writes anything: MLX's CPU backend then compiles its kernels there (122 files, 1.3 MB, for the
#: chord recipe's quick_test preset; more for larger models), with the compiler's own temporary files beside
#: them, and a compile that ran out of space failed the run at its first step.
KERNEL_SPACE_NEEDED = 16 * 2**20

#: What a failed kernel compile reports that is the temporary folder's fault, as the system says it.
_KERNEL_FOLDER_CAUSES = (
    "No space left on device",
    "Disk quota exceeded",
    "Read-only file system",
    "Permission denied",
)


class KernelCompileError(RuntimeError):
    """MLX could not compile (or keep) a CPU kernel in its temporary folder: full, read-only or not the
    user's. The message is one line naming the variable that chose the folder and the cause; ``detail`` is
    what MLX said (the compiler's command and output)."""

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.detail = detail


def kernel_compile_error(error: BaseException) -> KernelCompileError | None:
    """`error` (what evaluating a compiled function raised) as a `KernelCompileError`, where it is a kernel
    compile that failed for lack of room or rights in MLX's temporary folder; None for anything else.

    MLX says "[Compile::eval_cpu] Failed to compile function ...", then the compiler's command and 20-odd
    lines of its output ending in "... 'No space left on device'", or "filesystem error: cannot create
    directories: Permission denied [<tmp>/mlx/<version>/cpu]", neither naming TMPDIR."""
    text = str(error)
    if not isinstance(error, RuntimeError):
        return None
    if text.startswith("filesystem error"):  # (C++'s std::filesystem, on TMPDIR or the kernels' folder)
        causes = (*_KERNEL_FOLDER_CAUSES, "Not a directory", "No such file or directory")
    elif "Failed to compile function" in text:
        causes = _KERNEL_FOLDER_CAUSES
    else:
        return None
    cause = next((cause for cause in causes if cause in text), None)
    if cause is None:
        return None
    name, folder = mlx_temp_dir()
    where = f"{name}={folder}" if name else f"TMPDIR is not set, so {folder}"
    fix = (
        f"free space there (a first run compiles all its kernels: at least {KERNEL_SPACE_NEEDED >> 20} MB) or "
        "set TMPDIR to a folder with room"
        if cause in _KERNEL_FOLDER_CAUSES[:2]
        else "set TMPDIR to a folder you can write to"
    )
    return KernelCompileError(
        f"{where}: MLX could not compile its CPU kernels in {mlx_kernel_cache()} ({cause}); {fix}", text
    )


def broken_kernels(cache: Path | None = None) -> list[Path]:
    """The compiled kernels in MLX's kernel cache (default `mlx_kernel_cache`) that cannot be loaded: empty,
    or cut short before the end of their ELF header tables.

    MLX (0.32) compiles a kernel into a temporary file and renames it to ``lib<kernel>.so``; a compiler that
    a signal ended (a terminal's Ctrl-C reaches it too) counts as finished, so what it had written is
    renamed into place, and every later run that needs that kernel fails to load it ("file too short").
    Temporary files (``tmp_*``) are not looked at: another process may still be writing them."""
    folder = mlx_kernel_cache() if cache is None else cache
    try:
        candidates = sorted(folder.glob("lib*.so"))
    except OSError:
        return []
    return [path for path in candidates if _kernel_is_broken(path)]


def remove_broken_kernels(cache: Path | None = None) -> list[Path]:
    """Remove `broken_kernels` (MLX compiles them again when next needed); returns what was removed. An
    `OSError` names the file that could not be removed."""
    removed = []
    for path in broken_kernels(cache):
        try:
            path.unlink(missing_ok=True)  # (another process may have removed it first)
        except OSError as error:
            raise OSError(
                error.errno,
                f"{path} is a broken compiled kernel (empty or cut short, left by a compile that was "
                f"interrupted) and cannot be removed ({error.strerror}); remove it: rm '{path}'",
            ) from error
        removed.append(path)
    return removed


_ELF_MAGIC = b"\x7fELF"
# Offsets in an ELF header, by its class (1: 32-bit, 2: 64-bit): (e_phoff, e_shoff, e_phentsize) and the
# size of the offset fields; e_phnum, e_shentsize and e_shnum follow e_phentsize as 16-bit fields.
_ELF_LAYOUT = {1: (0x1C, 0x20, 0x2A, 4), 2: (0x20, 0x28, 0x36, 8)}


def _kernel_is_broken(path: Path) -> bool:
    try:
        size = path.stat().st_size
        if size == 0:
            return True
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:  # gone meanwhile, or a dangling link: nothing MLX would load
        return False
    if head[:4] != _ELF_MAGIC:
        # A cut-short start, or not ELF at all: nothing a Linux dlopen loads (macOS builds Mach-O files, whose
        # size is not checked here).
        return sys.platform.startswith("linux") or len(head) < 4
    layout = _ELF_LAYOUT.get(head[4])
    if layout is None or len(head) < {1: 52, 2: 64}[head[4]]:
        return True
    phoff_at, shoff_at, phentsize_at, width = layout
    order = "little" if head[5] == 1 else "big"

    def field(at: int, n: int) -> int:
        return int.from_bytes(head[at : at + n], order)

    phentsize, phnum, shentsize, shnum = (field(phentsize_at + 2 * i, 2) for i in range(4))
    end = max(field(phoff_at, width) + phentsize * phnum, field(shoff_at, width) + shentsize * shnum)
    return size < end


#: The signal number of SIGPIPE (13 on Linux and macOS; `signal.SIGPIPE` does not exist on Windows).
SIGPIPE = 13


def write_whole(binary, data: bytes) -> None:
    """Write all of `data` to `binary`, a text stream's ``.buffer``. Under ``python -u`` or
    ``PYTHONUNBUFFERED=1`` (Docker images, Slurm scripts, CI) that layer is the raw file, whose ``write`` may
    take only part of `data` (a pipe's write that a signal interrupted: a child's SIGCHLD) and says how much;
    the rest was lost without a word. A buffered layer takes all of it in one call."""
    while data:
        written = binary.write(data)  # (bytes, as before: a stand-in's write may decode it)
        if written is None or written >= len(data):  # (None: a stand-in that does not count, taken as whole)
            return
        data = data[written:]


def discard_stdout() -> None:
    """Once stdout's reader has gone (``cmd | head``): what is still to print goes nowhere, and so does what
    Python flushes at exit, which would otherwise fail the same way with a second error."""
    discard_output(sys.stdout)


def discard_output(stream) -> None:
    """`discard_stdout` for any stream: what is still written to `stream` (its file descriptor, shared with
    any other stream on it) goes nowhere. A stream without a descriptor (a notebook's) is left as it is."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


#: Set (to anything but "0", "false", "no", "off" or nothing), a recipe's error is raised with its traceback
#: instead of printed as one line.
TRACEBACK_ENV = "AUDIOTRAIN_TRACEBACK"


def say_error(message: str) -> None:
    """A recipe's one-line error on stderr, ``error: message``, and the line under it that tells how to see
    where it was raised (the same in every recipe and command, so that a user of one learns the variable)."""
    print(f"error: {message}\n(set {TRACEBACK_ENV}=1 to see where it was raised)", file=sys.stderr)


def refusal_status(error: BaseException, message: str | None = None) -> int:
    """Says `error` (or `message`, its wording for this command) as a recipe's one line ``error: ...`` on
    stderr (`say_error`) and returns its `error_status` (2 for a refusal, 1 for a full disk); where
    AUDIOTRAIN_TRACEBACK is on, raises `error` instead, with the traceback of where it was raised. Called from
    the ``except`` that caught it."""
    if env_flag(TRACEBACK_ENV):
        raise error
    say_error(str(error) if message is None else message)
    return error_status(error)


def error_status(error: BaseException) -> int:
    """The exit status of a command that `error` (one the recipes say in one line) ended, as the recipes'
    --help tables class them: 1, stopped, not done, where the storage failed a write (a full disk, a quota, a
    file size limit, an I/O error: the error itself or its cause), for the same command runs once there is
    room; 2, refused, where what the user passed is wrong (a flag, a setting, a file). A read-only file
    system is 2, as a folder without write permission is: the folder named (a read-only mount for the cache
    or --run_dir) is the user's to change."""
    from audiotrain._files import STORAGE_ERRNOS

    stopping = STORAGE_ERRNOS - {errno.EROFS}
    checkpoint = sys.modules.get("audiotrain.train.checkpoint")  # (not loaded: no checkpoint was written)
    saving = False
    seen: set[int] = set()
    while error is not None and id(error) not in seen:  # (a ValueError naming the setting, from the OSError)
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno is not None:  # (the nearest cause with a number says)
            return 1 if error.errno in stopping else 2
        saving = saving or bool(checkpoint and isinstance(error, checkpoint.CheckpointWriteError))
        error = error.__cause__ or error.__context__
    return 1 if saving else 2  # (a failed save without an OSError: MLX's "[write] Unable to write N bytes")


_OFF_WORDS = ("0", "false", "no", "off")
_ON_WORDS = ("1", "true", "yes", "on")


def env_flag(name: str, default: bool = False) -> bool:
    """Whether the environment variable `name` is on: "0", "false", "no" and "off" (any case) mean off as a
    user writes it (``AUDIOTRAIN_TRACEBACK=0``), "1", "true", "yes" and "on" on, unset or empty `default`.
    Another value is taken as on, with a warning naming it (a typo of "off" must not pass unseen)."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value not in _OFF_WORDS + _ON_WORDS:
        import warnings

        warnings.warn(
            f"{name}={os.environ[name]!r} is neither on ({', '.join(_ON_WORDS)}) nor off "
            f"({', '.join(_OFF_WORDS)}): taken as on",
            RuntimeWarning,
            stacklevel=2,
        )
    return value not in _OFF_WORDS


def stdout_write_error(error: OSError) -> str | None:
    """The one line for `error` where it is a write to stdout failing for its storage (``> results.txt`` on
    a full disk, ``> /dev/full``), else None. Told apart by its lack of a file name: the files a command
    writes are named in their errors (`OutputWriteError`, a checkpoint's), stdout's writes name none. What is
    still to print then goes nowhere, so that the exit does not fail the same way."""
    from audiotrain._files import STORAGE_ERRNOS, storage_cause

    if error.errno not in STORAGE_ERRNOS or error.filename is not None or sys.stdout is None:
        return None
    discard_stdout()
    return f"error: cannot write to stdout: {storage_cause(error)}"


def flush_stdout() -> None:
    """Flush stdout, where a command's output waits in a pipe's block buffer. A closed stdout (``>&-``, a
    daemon's or a cron job's) is None in Python: `print` writes nothing there, and nothing is to flush."""
    if sys.stdout is not None:
        sys.stdout.flush()


class StoppedBySignal(KeyboardInterrupt):
    """What SIGTERM raises in a recipe command where no command of it handles the signal (as its modules
    load, between its stages): the KeyboardInterrupt a Ctrl-C raises there, naming its signal (`signum`)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _sigterm_stops(signum: int, frame: Any) -> None:
    raise StoppedBySignal(signum)


# A stand-in for SIGTERM's default action: `interrupt.stop_on_signals` takes SIGTERM over from it, as from
# the default, and gives it back at its end.
_sigterm_stops.in_place_of_default = True  # type: ignore[attr-defined]


def ignore_stop_signals_until_exit() -> None:
    """Ignore Ctrl-C, SIGTERM and SIGUSR1 from here to the exit of a command that a stop ended (its last
    line is out): a second one during its cleanup, or as Python ends (which puts back signals' default
    actions, not an ignore), would end it by the signal instead of with the status it says."""
    with contextlib.suppress(ValueError):  # (not the main thread: only it can)
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)


# What the loader says where a process's address-space limit leaves no room to map a compiled library.
_NO_ROOM_TO_MAP = ("failed to map segment from shared object", "cannot allocate memory")
#: What MLX raises, whole, where a thread it starts finds no room for its stack under such a limit.
_MLX_NO_ROOM = ("resource temporarily unavailable", "cannot allocate memory")


def _is_fits_refusal(error: BaseException) -> bool:
    """Whether `error` is `Trainer.fit`'s `TrainingMemoryError`. Any other MemoryError (numpy's 'Unable to
    allocate 728. TiB' from a shape gone wrong, a user's own) is a bug's: its traceback is kept where no
    limit explains it. (Looked up, not imported: where it was raised its module is loaded.)"""
    memory = sys.modules.get("audiotrain.train.memory")
    return memory is not None and isinstance(error, memory.TrainingMemoryError)


def memory_limit_error(error: BaseException) -> str | None:
    """The one line for `error` where a process memory limit (``ulimit -v`` / ``ulimit -d``) left no room to
    load a module (an ImportError "failed to map segment from shared object") or to allocate (MemoryError),
    naming the limit and what to do; None for anything else, and where no such limit is set."""
    if resource is None:
        return None
    text = str(error).lower()
    no_room = (
        isinstance(error, MemoryError)
        or (isinstance(error, ImportError) and any(cause in text for cause in _NO_ROOM_TO_MAP))
        # MLX's words where a thread or a buffer found no room: EAGAIN, or its allocator's
        or (isinstance(error, RuntimeError) and text in _MLX_NO_ROOM)
        or (isinstance(error, RuntimeError) and text.startswith("[malloc") and "unable to allocate" in text)
    )
    if not no_room:
        return None
    if _is_fits_refusal(error):  # says its own words, the need and what is left (also under a cgroup)
        return f"error: {error}"
    limits = [
        f"{flag} {soft / 1e9:.2f} GB"
        for name, flag in (("RLIMIT_AS", "ulimit -v"), ("RLIMIT_DATA", "ulimit -d"))
        if (soft := resource.getrlimit(getattr(resource, name))[0]) != resource.RLIM_INFINITY
    ]
    if not limits:
        return None
    what = f"loading {error.name or 'a module'}" if isinstance(error, ImportError) else "in MLX"
    if isinstance(error, MemoryError):  # (numpy's words name the size and shape asked for)
        what = f"allocating memory ({error})" if str(error) else "allocating memory"
    return (
        f"error: out of memory {what}: this process's {' and '.join(limits)} leaves too little "
        "(raise it, 'ulimit -v unlimited', or cap memory with a cgroup instead: a container's --memory, "
        "systemd-run -p MemoryMax=)"
    )


def run_recipe_command(cli_module: str) -> None:
    """The body of a recipe's ``__main__``: `cli_module`'s ``main()`` as a command, and its exit.

    A stop signal that no command handles (as the modules load, the first half second or so) is one line,
    ``interrupted (Ctrl-C)`` or ``interrupted (SIGTERM)``, and status 130 or 143, as in the commands."""
    # SIGUSR1 too (``sbatch --signal=USR1@120``), whose default action ended the command without a word;
    # not in a launched rank, where it stands for Ctrl-C and `install_rank_stop_signal` takes it.
    taken = [signal.SIGTERM] + ([] if usr1_is_a_stand_in() else [getattr(signal, "SIGUSR1", None)])
    with contextlib.suppress(ValueError):  # (not the main thread: only it can)
        for signum in taken:
            if signum is not None and signal.getsignal(signum) == signal.SIG_DFL:  # (a program's own stays)
                signal.signal(signum, _sigterm_stops)
    try:
        try:
            exit_unless_mlx_loads()  # before the imports below load mlx.core: one line naming the extra
            escape_what_stdout_cannot_encode()
            show_warnings_on_one_line()
            private_matplotlib_folder_unless_writable()
            import importlib

            status = importlib.import_module(cli_module).main()
        finally:  # here, where a reader that left is handled, not at exit: a pipe is block-buffered
            flush_stdout()
    except BrokenPipeError:
        # `evaluate | head -3`, `--help | less` quit early: the reader has what it wanted, so no traceback.
        # The status a shell gives a command that SIGPIPE ended: what was left to do after the print is
        # not done (evaluate writes its files before it prints its table).
        discard_stdout()
        status = 128 + SIGPIPE
    except OSError as error:
        said = stdout_write_error(error)
        if said is None or env_flag(TRACEBACK_ENV):
            raise
        print(said, file=sys.stderr)
        status = 1  # as for a full disk under the files the command writes
    except (ImportError, MemoryError) as error:
        # Under a `ulimit -v` the loader fails to map a library (scipy's, matplotlib's) as the modules
        # load, or an allocation fails: one line naming the limit, not 30 lines ending in the loader's words.
        said = memory_limit_error(error)
        if said is None or env_flag(TRACEBACK_ENV):
            raise
        print(said, file=sys.stderr)
        status = 1
    except RuntimeError as error:
        # A kernel compile that TMPDIR's room or rights broke outside `Trainer.fit` (which says it itself):
        # in predict, evaluate or a score before training. One line naming TMPDIR, not MLX's 25-50.
        compile_error = kernel_compile_error(error)
        said = f"error: {compile_error}" if compile_error is not None else memory_limit_error(error)
        if said is None or (compile_error is None and env_flag(TRACEBACK_ENV)):  # (as for a MemoryError)
            raise
        print(said, file=sys.stderr)
        status = 2 if compile_error is not None else 1
    except KeyboardInterrupt as stop:
        ignore_stop_signals_until_exit()  # (also while the modules `_interrupted` names load)
        if isinstance(stop, SystemExit):  # `SaveAborted`: fit said what was left
            status = stop.code  # 130, or 143 for SIGTERM
        else:  # a stop no command handles: as the modules load, or the ranks start
            status = _interrupted(stop)
    except Warning as warning:
        # `python -W error` (or PYTHONWARNINGS=error) made one of the warnings an error: the user's choice,
        # said as the recipes' other errors are, in one line (`warning: ...` would have been one too).
        if env_flag(TRACEBACK_ENV):
            raise
        print(f"error: {type(warning).__name__}: {warning}", file=sys.stderr)
        status = 2
    if status in {128 + signum for signum in STOP_SIGNALS}:
        ignore_stop_signals_until_exit()  # a stopped command said its last line
    from audiotrain.distributed import exit_rank

    # A user error on one rank (status 2) must end a data-parallel job, not leave it waiting in MPI's teardown.
    exit_rank(status)


def _interrupted(stop: KeyboardInterrupt) -> int:
    """Say that a stop signal no command handled ended this one (as the modules load, or as a job's ranks
    start), naming it, and return the exit status a shell gives a command that signal ended (130 for Ctrl-C,
    143 for SIGTERM). In a job of several processes rank 0 alone says it: each rank hears the stop, and the
    others wait a moment before they end, as their exit makes the launcher end rank 0 too."""
    from audiotrain.distributed.failures import wait_for_main_to_report
    from audiotrain.distributed.local import launched_rank
    from audiotrain.train.interrupt import signal_of, stop_signal_name

    signum = signal_of(stop)
    if launched_rank() == 0:
        print(f"\ninterrupted ({stop_signal_name(signum)})", file=sys.stderr)
    else:
        wait_for_main_to_report()
    return 128 + signum
