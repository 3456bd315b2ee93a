"""Releasing a thread's MLX streams as the thread ends.

MLX (0.32) keeps streams per thread. A thread that made streams, used MLX's random state or called a
compiled function, and ended still holding its streams, makes MLX abort the process when Python exits
("terminate called without an active exception", status 134). `clear_streams_when_thread_ends` makes the
thread release them as it ends, after its last Python code (`mx.clear_streams()` then, which would break
any later MLX call of the thread if made earlier). Kept apart from MLX's import so that the data loader's
thread workers can ask for it without importing MLX: a thread that never used MLX has nothing to release.

`mx.clear_streams` is not called as Python calls it: its binding lets go of the GIL, then holds MLX's
compile-cache lock while it destroys the thread's compiled graphs, and a graph holding a Python function (an
`mx.custom_function`'s vjp, say) waits for the GIL to drop it. Another thread that, holding the GIL, deletes a
compiled function (its garbage collection, often) waits for that lock: both wait forever (MLX 0.32.4; a CI run
hung 75 minutes in two sweep threads). Called through `ctypes.PyDLL`, which keeps the GIL, no other Python
thread runs until it returns, and the GIL it waits for is its own. MLX's binding is called after it all the
same: before it lets go of the GIL it drops the thread's `mx.random` state (the C++ function does not), which
an ended thread otherwise still held as Python exited, aborting it (status 134, 7 runs in 8 of a Trainer fit
in a background thread); its compiled graphs and streams are gone by then, so nothing it drops needs the GIL.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

# mlx::core::clear_streams() (Itanium ABI: Linux and macOS; ctypes adds macOS's leading underscore)
_CLEAR_STREAMS_SYMBOL = "_ZN3mlx4core13clear_streamsEv"


@functools.cache  # (looked up once: every thread that ends asks)
def _mlx_library_function(mx) -> Callable[[], None] | None:
    """MLX's own `clear_streams` in the library `mx` (`mlx.core`) runs on, called with the GIL held; None
    where no such library is loaded. The library is looked for beside `mx` (`mlx/lib/libmlx.so`, `.dylib` on
    macOS: the mlx-cpu, mlx-cuda and mlx-metal wheels), then by name (another layout, conda's), and only ever
    found loaded (`RTLD_NOLOAD`): another copy (an older mlx folder earlier on the path) would have streams of
    its own, and this thread's would stay."""
    beside = Path(getattr(mx, "__file__", "") or ".").parent / "lib"
    names = ("libmlx.so", "libmlx.dylib")
    loaded_only = getattr(os, "RTLD_NOLOAD", 0) | ctypes.RTLD_LOCAL
    for library in [*(str(beside / name) for name in names if (beside / name).is_file()), *names]:
        with contextlib.suppress(OSError, AttributeError):
            function = getattr(ctypes.PyDLL(library, mode=loaded_only), _CLEAR_STREAMS_SYMBOL)
            function.restype, function.argtypes = None, []
            return function
    return None


def clear_this_threads_streams(mx) -> None:
    """`mx.clear_streams()` without letting go of the GIL while MLX drops Python functions (module
    docstring); MLX's binding alone where its library is not found."""
    clear_streams_in_c = _mlx_library_function(mx)
    if clear_streams_in_c is not None:
        clear_streams_in_c()  # (compiled graphs and streams, the GIL held)
    mx.clear_streams()  # (the thread's random state, then streams and graphs: none left to drop by now)


class _ClearStreamsAtThreadEnd:
    """Kept in a `threading.local`: deleted as its thread ends (Python clears the thread's locals there,
    after the thread's last Python code and before `join()` returns), where it releases the thread's MLX
    streams."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()

    def __del__(self) -> None:
        if threading.get_ident() != self.thread:
            return  # (deleted elsewhere, e.g. at interpreter exit: those streams are not this thread's)
        mx = sys.modules.get("mlx.core")  # (not imported: this thread used no MLX)
        if mx is not None:
            with contextlib.suppress(Exception):
                clear_this_threads_streams(mx)


_this_thread = threading.local()


def clear_streams_when_thread_ends() -> None:
    """Outside the main thread: release this thread's MLX streams when it ends (module docstring)."""
    if threading.current_thread() is threading.main_thread():
        return
    if getattr(_this_thread, "streams", None) is None:
        _this_thread.streams = _ClearStreamsAtThreadEnd()
