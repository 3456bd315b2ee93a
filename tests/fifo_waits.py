"""`returns_without_waiting`: a call that must not wait on a FIFO for a writer, checked without hanging the
test run when it does."""

import os
import threading
from pathlib import Path

import pytest


def returns_without_waiting(call, fifo: Path, seconds: float = 30):
    """`call()`'s result (or its exception, raised here), which must come at once; where `call` waits on
    `fifo` for a writer, a writer is opened here and closed (the reader then sees an empty file), so that the
    test fails rather than hangs."""
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(_outcome(call)), daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(seconds)
        pytest.fail(f"waited for a writer of the FIFO {fifo}")
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def _outcome(call):
    try:
        return call()
    except BaseException as error:
        return error
