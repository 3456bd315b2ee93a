"""Ctrl-C during a run: the first one asks the loop to stop after the current step (it then saves), a
second one aborts at once. In a rank that `audiotrain.distributed.local` launched, SIGUSR1 stands for
Ctrl-C (the launcher forwards the user's Ctrl-C as it)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable


@contextlib.contextmanager
def stop_on_sigint(request_stop: Callable[[], bool]):
    """While inside, SIGINT (and its stand-in, see the module docstring) calls `request_stop()`, which returns
    False the first time (the run stops where it can and saves) and True once a stop was already requested
    (raise KeyboardInterrupt)."""
    from audiotrain.distributed.local import stop_signals

    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return

    def handler(signum, frame):
        if request_stop():
            raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, handler) for signum in stop_signals()}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
