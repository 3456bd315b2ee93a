"""Waits on a child process or thread with a deadline of their own: past it the test fails, naming what it
awaited and what the child printed, and the child (with its process group, where it leads one) is killed.

Without one, a child stuck before its next line held a pytest worker until pytest-timeout's 600 s killed
the whole worker (a CI run stopped progressing for 10 minutes with no word of which child or why). The
deadlines are generous: CI machines are loaded, 2-3 times slower than a test alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading

import pytest


def stop(proc: subprocess.Popen) -> None:
    """Kills `proc`, and its process group where it leads its own (a child started with
    ``start_new_session=True``): the ranks or tools it started then do not linger, holding its pipes open.
    A child in the test run's own group is killed alone (killing the group would kill pytest); one reaped
    already is left alone (its pid may be another process's by now)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if proc.poll() is None and os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


def printed(proc: subprocess.Popen, seconds: float = 10) -> str:
    """What `proc` (ended or killed) still had in its pipes, as text (the last 3000 characters); a note
    instead where a grandchild outside its group keeps a pipe open past `seconds`."""
    try:
        out, err = proc.communicate(timeout=seconds)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        return "(its pipes stayed open after it was killed)"
    parts = [p.decode(errors="replace") if isinstance(p, bytes) else p for p in (out, err) if p]
    return "\n".join(parts)[-3000:]


def fail_stuck(proc: subprocess.Popen, what: str, seconds: float, before=None, said: str = "") -> None:
    """Kills `proc` (`stop`) and fails the test: `what` did not come within `seconds`. `before`, where
    given, is called first: it ends what `stop` does not reach (processes of the job in a group of their
    own, which would hold `proc`'s pipes open). `said`: what the test read of its output already."""
    if before is not None:
        before()
    stop(proc)
    pytest.fail(
        f"waited {seconds:g} s for {what}, in vain; the child was killed. It printed:\n{said}{printed(proc)}"
    )


def read_line(
    proc: subprocess.Popen, what: str, seconds: float = 120, stream=None, before=None, said: str = ""
) -> str:
    """The next line of `proc`'s stdout (or of `stream`, another of its pipes), which must come within
    `seconds`; `what` names it in the failure. Read in a thread, so that the deadline holds even where a
    grandchild keeps the pipe open after `proc` was killed."""
    stream = proc.stdout if stream is None else stream
    got: list = []
    reader = threading.Thread(target=lambda: got.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(seconds)
    if reader.is_alive():
        fail_stuck(proc, what, seconds, before, said)
    return got[0]


def wait(proc: subprocess.Popen, what: str, seconds: float = 120, before=None) -> int:
    """`proc.wait()` within `seconds` (`what` names the ending awaited); its exit status."""
    try:
        return proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        fail_stuck(proc, what, seconds, before)


def communicate(
    proc: subprocess.Popen, what: str, seconds: float = 120, input=None, before=None, said: str = ""
) -> tuple:
    """`proc.communicate(input)` within `seconds` (`what` names the ending awaited)."""
    try:
        return proc.communicate(input, timeout=seconds)
    except subprocess.TimeoutExpired:
        fail_stuck(proc, what, seconds, before, said)


def join(thread: threading.Thread, what: str, seconds: float = 120) -> None:
    """`thread.join()` within `seconds`; past it the test fails naming `what` the thread was doing (a
    thread cannot be killed: a daemon thread is left behind, a non-daemon one holds the run's end)."""
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"waited {seconds:g} s for {what} (thread {thread.name}), in vain")
