"""A job started in a session of its own ends with the process that launched it, however that process ends.

`local.start_in_own_session` puts ``mpirun`` or ``mlx.launch`` in a session of its own, so that the
terminal's Ctrl-C reaches the launching process alone, which passes it on. Nothing else ties the job to the
launching process: where that process is killed (``kill -9``, the OOM killer, a crash), the job would keep
training with no one to read its output. Linux's ``PR_SET_PDEATHSIG`` is no answer: it exists on Linux only,
and it reaches the launcher's own process alone, while ``mlx.launch`` (0.32) does not end its ranks on the
SIGTERM it gets (a rank that does not print, any rank but 0, ran on).

So each such job gets a watcher (`watch_over`): a small process that blocks reading a pipe whose write end
only the launching process holds. The system closes that end when the launching process ends, however it
ends; at that end of file the watcher sends the job's process group SIGTERM (``mlx.launch`` and its ranks;
``mpirun``, which ends its ranks, which Open MPI puts in groups of their own), then SIGKILL to what is left
of the group `GRACE_S` later, and exits. Where the job ended first, the launching process tells the watcher
(`LauncherWatch.close`), which exits at once; it also exits by itself once the job's group is gone, so it
never outlives the job, nor signals a group id that a later process may have taken meanwhile.

The watcher runs in a session of its own (the terminal's signals do not reach it), with stdout and stderr on
/dev/null (whoever reads the launching process's output sees it end when that process ends), and uses only
Python's standard library, started with ``-I -S`` (some milliseconds, beside the seconds a job takes to
start). It works alike on Linux and macOS.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading

#: Seconds the job's processes get to end after the watcher's SIGTERM (a rank in `fit` stops and saves)
#: before it kills what is left of the job's process group (SIGKILL); as `failures.ABORT_GRACE_S`.
GRACE_S = 10.0
#: Seconds between the watcher's looks at whether the job's process group still exists.
_LOOK_EVERY_S = 0.5

# The watcher: argv[1] the job's process group, argv[2] the grace in seconds; stdin the pipe's read end.
_WATCHER = """
import os, select, signal, sys, time
group, grace, look_every = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])

def group_exists():
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True

while True:
    readable = select.select([0], [], [], look_every)[0]
    if not group_exists():
        sys.exit(0)  # the job ended: nothing to watch
    if readable:
        if os.read(0, 1):
            sys.exit(0)  # the launching process says the job ended
        break  # end of file: the launching process is gone
try:
    os.killpg(group, signal.SIGTERM)
except OSError:
    sys.exit(0)
deadline = time.monotonic() + grace
while group_exists() and time.monotonic() < deadline:
    time.sleep(0.05)
try:
    os.killpg(group, signal.SIGKILL)
except OSError:
    pass
"""


class LauncherWatch:
    """The watcher of one job (`watch_over`), held by the process that launched the job."""

    def __init__(self, job: subprocess.Popen, watcher: subprocess.Popen | None, write_end: int | None):
        self.job = job
        self.watcher = watcher
        self._write_end = write_end

    def close(self) -> None:
        """This process is done with the job. Where the job ended, the watcher exits at once; where it still
        runs (this process gives up on it: an error of the launcher's own), the watcher ends it as if this
        process had died. Calling it again does nothing."""
        if self._write_end is None or self.watcher is None:
            return
        ended = self.job.poll() is not None
        if ended:
            with contextlib.suppress(OSError):  # (a watcher that ended by itself: the job's group was gone)
                os.write(self._write_end, b"x")
        os.close(self._write_end)  # (after a failed write too: else one descriptor is lost per job)
        self._write_end = None
        if ended:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.watcher.wait(timeout=5)
        else:  # (it takes up to GRACE_S: reaped meanwhile on a thread of its own)
            threading.Thread(target=self.watcher.wait, name="audiotrain-launcher-watch", daemon=True).start()


def watch_over(job: subprocess.Popen) -> LauncherWatch:
    """Start the watcher that ends `job`'s process group (the job's leader's pid: it was started in a session of
    its own) if this process dies before it releases it (`LauncherWatch.close`). Where no watcher can start
    (no Python to run it), one line says so and the job runs without it."""
    read_end, write_end = os.pipe()  # (neither end is inherited by the job, nor by later children)
    try:
        watcher = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _WATCHER, str(job.pid), str(GRACE_S), str(_LOOK_EVERY_S)],
            stdin=read_end,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as error:
        os.close(write_end)
        print(
            f"audiotrain: the job's processes will not end if this process is killed (its watcher could not "
            f"start: {error})",
            file=sys.stderr,
            flush=True,
        )
        return LauncherWatch(job, None, None)
    finally:
        os.close(read_end)
    return LauncherWatch(job, watcher, write_end)
