"""Load an optimized BLAS before `mlx.core` so the CPU backend's matmuls use it.

The `mlx[cpu]` Linux wheel links the reference BLAS (a few GFLOP/s). MLX resolves its BLAS
symbols (`cblas_sgemm`, ...) at the time `libmlx.so` is loaded, so a library loaded earlier with
`RTLD_GLOBAL` provides them instead. This only works if it happens before the first
`import mlx.core`, which is why `import audiotrain` does it first thing.

Environment:
    AUDIOTRAIN_BLAS=off           keep MLX's bundled BLAS (also 0, none, bundled, false)
    AUDIOTRAIN_BLAS=/path/lib.so  load this library; one that cannot be loaded, or that has no
                                  `cblas_sgemm`, is reported (a warning, and `python -m audiotrain info`)
                                  and MLX keeps its bundled BLAS
    (unset)                       the first system OpenBLAS found in the usual places (also auto, on, 1, true)
    OPENBLAS_THREAD_TIMEOUT=N     how long OpenBLAS's idle worker threads spin (2**N cycles) before they
                                  sleep; audiotrain sets 10 when it loads OpenBLAS and the variable is unset

Off Linux nothing is loaded: on macOS MLX's CPU matmuls use Apple's Accelerate, which MLX links itself. A
library named there is ignored, with a warning (`BlasLoadWarning`), since the variable would otherwise seem
to have been obeyed.

Why the thread timeout: OpenBLAS's pthread build keeps its worker threads spinning (``sched_yield``) for
2**28 cycles, about 0.1 s, after every multi-threaded GEMM. A training step issues a GEMM every few hundred
microseconds between other ops that MLX runs on its own stream thread, while Python builds the next step on
the main thread, so on a small machine the spinning workers take the cores those threads need. Measured on
the 2-core CI machine (`benchmarks/trainer_overhead.py`, MLP 256-1024-1024-10, batch 64): with OpenBLAS's
default the process spends 11-12 ms of system time per ~20 ms step, against 2-4 ms with
``OPENBLAS_THREAD_TIMEOUT=10``; a 1024x1024 matmul keeps its multi-threaded speed (140-180 GFLOP/s,
against 75-90 with ``OPENBLAS_NUM_THREADS=1``); steps per second are the same or better (within this
machine's +-10% noise). The Trainer's ratio to the hand-written loop (which waits for each step, so its
host thread never competes) was 0.89-0.98 before, 0.955-1.035 in six runs after (0.98-0.99 once the
non-finite guard's gradient read went through BLAS too, train/transforms.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

ENV_VAR = "AUDIOTRAIN_BLAS"
THREAD_TIMEOUT_VAR = "OPENBLAS_THREAD_TIMEOUT"
#: audiotrain's OpenBLAS thread timeout (2**10 cycles: idle workers sleep almost at once); see above.
DEFAULT_THREAD_TIMEOUT = "10"

# Debian/Ubuntu (pthread and openmp flavours), Fedora, Arch, and conda-ish prefixes.
_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/openblas-openmp/libopenblas.so.0",
    "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
    "/usr/lib64/libopenblas.so.0",
    "/usr/lib64/libopenblasp.so.0",
    "/usr/lib/libopenblas.so.0",
    "/usr/local/lib/libopenblas.so.0",
)


class MLXImportedFirstWarning(RuntimeWarning):
    """`mlx.core` was imported before `audiotrain`, so the optimized BLAS could not be installed."""


class BlasLoadWarning(RuntimeWarning):
    """The library `AUDIOTRAIN_BLAS` names could not be used, or is ignored (off Linux); MLX keeps its own
    BLAS."""


class SlowBlasWarning(RuntimeWarning):
    """Training on the CPU with MLX's bundled BLAS because no OpenBLAS was found on this Linux machine."""


@dataclass
class BlasStatus:
    library: str | None  # path of the library loaded, None when MLX's bundled BLAS is used
    # why: "env", "auto", "off", "macos", "not-linux", "not-found", "mlx-imported-first", "error: ..."
    reason: str
    # OPENBLAS_THREAD_TIMEOUT when the library was loaded, and whether audiotrain chose it
    thread_timeout: str | None = None
    thread_timeout_is_default: bool = False

    def describe(self) -> str:
        if self.library:
            core = os.environ.get("OPENBLAS_CORETYPE")
            extra = f", OPENBLAS_CORETYPE={core}" if core else ", core type autodetected"
            if self.thread_timeout is not None:
                who = "audiotrain's default" if self.thread_timeout_is_default else "set by the user"
                extra += f", {THREAD_TIMEOUT_VAR}={self.thread_timeout} ({who})"
            return f"{self.library} ({self.reason}{extra})"
        if self.reason == MACOS:
            return f"Accelerate (macOS; {ENV_VAR} is for Linux)"
        return f"MLX bundled BLAS ({self.reason})"


STATUS = BlasStatus(library=None, reason="not-initialised")
NOT_FOUND = "not-found: install libopenblas0-pthread for ~15x faster matmuls"
MACOS = "macos"  # (MLX's CPU matmuls use Apple's Accelerate: MLX links it on macOS)
OFF_VALUES = ("off", "0", "none", "bundled", "false")
_warned_slow_training = False


def _find_system_openblas() -> str | None:
    for path in _CANDIDATES:
        if os.path.exists(path):
            return path
    return None


def _importer_stacklevel() -> int:
    """The ``stacklevel`` that attributes a warning of `load_optimized_blas` (called by ``audiotrain``'s
    ``__init__``) to the code importing audiotrain; under ``python -m audiotrain`` that is runpy, which named
    ``<frozen runpy>:112``, so the warning names ``audiotrain/__init__.py`` instead."""
    frame = sys._getframe(2).f_back  # past this function, load_optimized_blas and audiotrain/__init__
    # The import machinery's frames, which warnings skips as well.
    while (
        frame is not None
        and "importlib" in frame.f_code.co_filename
        and "_bootstrap" in frame.f_code.co_filename
    ):
        frame = frame.f_back
    return 2 if frame is None or "runpy" in frame.f_code.co_filename else 3


def load_optimized_blas() -> BlasStatus:
    """Pick and load the BLAS library. Idempotent; returns (and stores) the outcome."""
    global STATUS
    if STATUS.reason != "not-initialised":
        return STATUS
    choice = os.environ.get(ENV_VAR, "").strip()
    if choice.lower() in ("auto", "on", "1", "true", "yes"):
        choice = ""
    if not sys.platform.startswith("linux"):
        STATUS = BlasStatus(None, MACOS if sys.platform == "darwin" else "not-linux")
        # A library named here is not loaded (only the Linux CPU wheel's reference BLAS is worth
        # replacing); say so rather than seem to obey. A DataLoader worker's parent said it already.
        if choice and choice.lower() not in OFF_VALUES and not os.environ.get("AUDIOTRAIN_DATA_WORKER"):
            own = "Apple's Accelerate" if STATUS.reason == MACOS else "its own BLAS"
            warnings.warn(
                f"{ENV_VAR}={choice!r} is ignored on {sys.platform}: it is for Linux, where it replaces the "
                f"slow BLAS of MLX's CPU wheel; here MLX uses {own}. Unset it to silence this.",
                BlasLoadWarning,
                stacklevel=_importer_stacklevel(),
            )
    elif choice.lower() in OFF_VALUES:
        STATUS = BlasStatus(None, "off")
    elif "mlx.core" in sys.modules and not choice and _find_system_openblas() is None:
        # Importing audiotrain first would load nothing either: the first CPU fit's SlowBlasWarning says
        # what to install, rather than an import-order warning (an import error under ``-W error``).
        STATUS = BlasStatus(None, NOT_FOUND)
    elif "mlx.core" in sys.modules:
        if not os.environ.get("AUDIOTRAIN_DATA_WORKER"):  # (a DataLoader worker: its parent said it once)
            # Before STATUS is set: where the warning is an error (``-W error``), a second
            # ``import audiotrain`` raises it again rather than succeed silently.
            warnings.warn(
                "mlx.core was imported before audiotrain, so MLX keeps its slow bundled BLAS "
                "(matmuls ~10-30x slower on CPU). Import audiotrain first, or set "
                f"LD_PRELOAD to an OpenBLAS library, or {ENV_VAR}=off to silence this.",
                MLXImportedFirstWarning,
                stacklevel=_importer_stacklevel(),
            )
        STATUS = BlasStatus(None, "mlx-imported-first")
    else:
        path = choice or _find_system_openblas()
        reason = "env" if choice else "auto"
        if path is None:
            STATUS = BlasStatus(None, NOT_FOUND)
        else:
            # OpenBLAS reads the variable once, when it is loaded; a user's own value is kept.
            timeout_is_default = THREAD_TIMEOUT_VAR not in os.environ
            os.environ.setdefault(THREAD_TIMEOUT_VAR, DEFAULT_THREAD_TIMEOUT)
            try:
                library = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                problem = (
                    "" if hasattr(library, "cblas_sgemm") else "it has no cblas_sgemm, so it is not a CBLAS"
                )
            except OSError as err:
                problem = f"it could not be loaded: {err}"
            if not problem:
                STATUS = BlasStatus(path, reason, os.environ[THREAD_TIMEOUT_VAR], timeout_is_default)
            else:
                STATUS = BlasStatus(None, f"error: {path}: {problem}")
                if choice:  # the user asked for this library: say so loudly, but keep working
                    warnings.warn(
                        f"{ENV_VAR}={choice!r}: {problem}. MLX keeps its bundled BLAS (slow matmuls on the "
                        f"CPU); point {ENV_VAR} at an OpenBLAS library, unset it, or set it to off.",
                        BlasLoadWarning,
                        stacklevel=_importer_stacklevel(),
                    )
    return STATUS


def warn_if_training_on_bundled_blas() -> None:
    """Warn once per process when training on the CPU will use MLX's bundled BLAS for want of an OpenBLAS.

    Nothing else says so: without ``libopenblas0-pthread`` the chord recipe's epochs took 31 s instead of
    2.7 s on a 2-core AMD EPYC like the CI machine. `import audiotrain` stays quiet: a library user who trains
    on a GPU, or never trains, loses nothing. A BLAS the user named and that failed already warned at import
    (`BlasLoadWarning`); ``AUDIOTRAIN_BLAS=off`` is a choice and stays silent.
    """
    global _warned_slow_training
    if _warned_slow_training or STATUS.reason != NOT_FOUND:
        return
    _warned_slow_training = True
    warnings.warn(
        "training on the CPU with MLX's bundled BLAS: no OpenBLAS was found, and matrix products run about "
        "15x slower without one. Install it (Debian/Ubuntu: apt-get install libopenblas0-pthread) and start "
        f"again, or set {ENV_VAR}=/path/to/libopenblas.so.0 ({ENV_VAR}=off silences this)",
        SlowBlasWarning,
        stacklevel=3,
    )


_one_thread_lock = threading.Lock()
_one_thread_users = 0
_one_thread_restore: list[tuple[object, int]] = []  # (threadpoolctl library controller, its thread count)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with numpy's BLAS on one thread: numpy's own OpenBLAS (the pip wheel's), or where numpy
    has none of its own, every BLAS loaded (a numpy built on the system OpenBLAS that MLX uses too).

    OpenBLAS's sgemm shares its work out by thread count, and the last bits of a product change with it: a
    CQT computed by a process with 2 BLAS threads differs from one computed with 1 by up to 5e-5. Features
    that a cache keeps for later runs are computed under this, so that their bits do not depend on which
    run (how many processes, cores, ``OPENBLAS_NUM_THREADS``) filled the cache. The BLAS of MLX's matmuls
    is left alone where numpy has its own, so a training step running meanwhile in another thread keeps its
    threads (and its bits). Measured on the 2-core CI machine for the chord recipe's 232 demo songs in one
    process: 10.3-10.8 s with one thread against 11.4-12.8 s with two (the products are a quarter of the
    time; decoding and resampling the rest).

    The thread count is the process's, not the thread's: blocks in several threads at once share one
    setting, made by the first to enter and put back by the last to leave.
    """
    global _one_thread_users
    with _one_thread_lock:
        if _one_thread_users == 0:
            _one_thread_restore[:] = [(c, c.num_threads) for c in _numpy_blas_controllers()]
            for controller, _ in _one_thread_restore:
                controller.set_num_threads(1)
        _one_thread_users += 1
    try:
        yield
    finally:
        with _one_thread_lock:
            _one_thread_users -= 1
            if _one_thread_users == 0:
                for controller, threads in _one_thread_restore:
                    controller.set_num_threads(threads)
                _one_thread_restore.clear()


def _numpy_blas_controllers() -> list:
    """threadpoolctl's controllers of the BLAS libraries numpy's products may run on (`one_blas_thread`)."""
    from threadpoolctl import ThreadpoolController

    found = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
    mlx_library = os.path.realpath(STATUS.library) if STATUS.library else None
    own = [c for c in found if os.path.realpath(c.filepath) != mlx_library]
    return own or found


def blas_threads() -> int | None:
    """How many threads the BLAS that MLX's CPU matmuls use runs with: OpenBLAS's count where audiotrain
    loaded one (`STATUS`), else None (MLX's bundled BLAS, or macOS's Accelerate). Training's products change
    in their last bits with it (see `one_blas_thread`), so a run records it (`audiotrain._system.versions`)."""
    if not STATUS.library:
        return None
    try:
        library = ctypes.CDLL(STATUS.library)  # (loaded already: this only looks it up)
        return int(library.openblas_get_num_threads())
    except (OSError, AttributeError):  # not an OpenBLAS (a user's AUDIOTRAIN_BLAS): its count is unknown
        return None
