"""tests/deadlines.py: a wait on a child that never comes fails the test, naming what was awaited and what
the child printed, and leaves nothing of the child running."""

import os
import subprocess
import sys
import time

import pytest

from tests import deadlines


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = f"/proc/{pid}/stat"
    # (a killed grandchild is a zombie until init reaps it)
    return os.path.exists(stat) and open(stat, "rb").read().rpartition(b")")[2].split()[0] in (b"Z", b"X")


def test_a_line_that_never_comes_fails_the_test_even_where_a_grandchild_holds_the_pipe(tmp_path):
    # The grandchild (sleep) keeps stdout open after the child is killed: a readline killing the child
    # alone unblocks waited for ever.
    proc = subprocess.Popen(
        ["sh", "-c", "echo 'said on stderr' >&2; sleep 300 & echo $! > gpid; wait"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    while not (tmp_path / "gpid").exists() or not (tmp_path / "gpid").read_text().strip():
        time.sleep(0.01)
    grandchild = int((tmp_path / "gpid").read_text())
    with pytest.raises(pytest.fail.Exception) as failed:
        deadlines.read_line(proc, "READY (the job started)", 0.5)
    assert "waited 0.5 s for READY (the job started)" in str(failed.value)
    assert "said on stderr" in str(failed.value)
    assert proc.poll() is not None
    deadline = time.monotonic() + 30
    while not _gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(grandchild)


def test_a_child_in_the_test_runs_own_group_is_killed_alone():
    # Killing its group would kill pytest: this test would not get to its assertions.
    proc = subprocess.Popen(
        [sys.executable, "-c", "print('started', flush=True); import time; time.sleep(300)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert deadlines.read_line(proc, "started", 60) == "started\n"
    with pytest.raises(pytest.fail.Exception, match="waited 0.5 s for the sleep to end"):
        deadlines.wait(proc, "the sleep to end", 0.5)
    assert proc.returncode is not None
