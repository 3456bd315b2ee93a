"""Releasing a thread's MLX streams as the thread ends.

MLX (0.32) keeps streams per thread. A thread that made streams, used MLX's random state or called a
compiled function, and ended still holding its streams, makes MLX abort the process when Python exits
("terminate called without an active exception", status 134). `clear_streams_when_thread_ends` makes the
thread release them as it ends, after its last Python code (`mx.clear_streams()` then, which would break
any later MLX call of the thread if made earlier). Kept apart from MLX's import so that the data loader's
thread workers can ask for it without importing MLX: a thread that never used MLX has nothing to release.
"""

from __future__ import annotations

import contextlib
import sys
import threading


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
                mx.clear_streams()


_this_thread = threading.local()


def clear_streams_when_thread_ends() -> None:
    """Outside the main thread: release this thread's MLX streams when it ends (module docstring)."""
    if threading.current_thread() is threading.main_thread():
        return
    if getattr(_this_thread, "streams", None) is None:
        _this_thread.streams = _ClearStreamsAtThreadEnd()
