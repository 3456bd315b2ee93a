"""Ctrl-C during a run: the first one asks the loop to stop after the current step (it then saves), a
second one aborts at once."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable


@contextlib.contextmanager
def stop_on_sigint(request_stop: Callable[[], bool]):
    """While inside, SIGINT calls `request_stop()`, which returns False the first time (the run stops
    where it can and saves) and True once a stop was already requested (raise KeyboardInterrupt)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return

    def handler(signum, frame):
        if request_stop():
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
