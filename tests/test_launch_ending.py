"""`python -m audiotrain launch` ends, and ends every rank, in a bounded time whatever state the ranks are in.

A fake ``mlx.launch`` stands in for MLX's (no MLX, no ring: seconds, and the same every run). Its ranks take
no notice of SIGTERM, as a rank blocked in a collective of MLX's ring does (in C++, where no handler of
Python runs) and as a rank in `fit` does (it takes it for a stop); and it waits for them for ever after a
rank ended, as ``mlx.launch`` (0.32) does once it has sent the others SIGTERM. The launcher's graces are made
short (`failures.RANK_ENDED_GRACE_S`, `ABORT_GRACE_S`, `STOP_GRACE_ENV`). The same with MLX's ring and a
real fit: tests/test_distributed.py, `test_a_rank_that_fails_as_the_ranks_stop_...`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from audiotrain._system import usable_cores

import pytest

from tests import deadlines
from tests.distributed import child_env

pytestmark = pytest.mark.skipif(not hasattr(os, "killpg"), reason="POSIX process groups")

# Tests that launch ranks, stop them with timed signals, or whose threads must meet in a short time, are
# marked serial: with -n, no other test runs beside them (tests/conftest.py). A job of one sleep or sh in a
# session of its own, or a fake mlx.launch that starts nothing, needs no mark.

# A rank: writes its pid, notes each SIGUSR1 (the launcher's stand-in for Ctrl-C) and takes no notice of it,
# ignores SIGTERM, and runs until killed; with "fail", it exits 1 once the other wrote its pid ("killed": it
# kills itself with SIGKILL then, as the OOM killer would). With
# RANK_0_NAME_NOT_TEXT, rank 0's process name is bytes that are no text (b"caf\xc3", set by prctl: Linux).
_RANK = """
import ctypes, os, signal, sys, time
rank, how = int(sys.argv[1]), sys.argv[2]
if rank == 0 and os.environ.get("RANK_0_NAME_NOT_TEXT"):
    assert ctypes.CDLL(None).prctl(15, b"caf\\xc3", 0, 0, 0) == 0  # PR_SET_NAME
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGUSR1, lambda *_: open(f"usr1-{rank}", "a").write("USR1\\n"))
open(f"pid{rank}.tmp", "w").write(str(os.getpid()))
os.replace(f"pid{rank}.tmp", f"pid{rank}")
while how in ("fail", "killed") and not os.path.exists("pid0"):
    time.sleep(0.01)
if how == "fail":
    sys.exit(1)
if how == "killed":
    os.kill(os.getpid(), signal.SIGKILL)
while True:
    time.sleep(0.05)
"""

# mlx.launch as it behaves here: its ranks are its children; READY once they started; when one ends non-zero
# it says so as mlx.launch does, sends the others SIGTERM and waits for them (for ever if they do not end).
# With FAKE_KILLED_SAYS, a rank a signal ended is reported as mlx.launch reports one it had to kill itself.
_FAKE_MLX_LAUNCH = """#!{python}
import os, signal, subprocess, sys, time
mode = os.environ["FAKE_MODE"]
how = ["run", {{"rank_fails": "fail", "rank_killed": "killed"}}.get(mode, "run")]
ranks = [subprocess.Popen([sys.executable, "rank.py", str(r), how[r]]) for r in (0, 1)]
while not all(os.path.exists(f"pid{{r}}") for r in (0, 1)):
    time.sleep(0.01)
print("READY", flush=True)
left = set(range(2))
while left:
    for r in sorted(left):
        code = ranks[r].poll()
        if code is None:
            continue
        left.discard(r)
        said = f"exited with code {{code}}"
        if code < 0 and os.environ.get("FAKE_KILLED_SAYS"):
            said = "was killed"
        print(f"[WARN] Node with rank {{r}} {{said}}", file=sys.stderr, flush=True)
        if code != 0:
            for other in left:
                ranks[other].terminate()
    time.sleep(0.05)
"""

# The launcher, with short graces and the fake mlx.launch.
_LAUNCHER = """
import sys
from audiotrain.distributed import failures
failures.RANK_ENDED_GRACE_S = failures.ABORT_GRACE_S = 1.0
failures._mlx_launch = lambda: "./mlx.launch"
sys.exit(failures.launch(["-n", "2", "--", "python", "train.py"]))
"""


def _start(
    tmp_path: Path, mode: str, stop_grace: str, launcher: str = _LAUNCHER, **env: str
) -> subprocess.Popen:
    (tmp_path / "rank.py").write_text(_RANK)
    fake = tmp_path / "mlx.launch"
    fake.write_text(_FAKE_MLX_LAUNCH.format(python=sys.executable))
    fake.chmod(0o755)
    env = child_env({"FAKE_MODE": mode, "AUDIOTRAIN_LAUNCH_STOP_GRACE_S": stop_grace, **env})
    proc = subprocess.Popen(
        [sys.executable, "-c", launcher],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    # (its ranks, in the job's own group, would hold the pipes open after the launcher was killed)
    ready = deadlines.read_line(
        proc, "READY (the fake mlx.launch's ranks started)", 120, before=lambda: _kill_ranks(tmp_path)
    )
    assert ready.strip() == "READY", (ready, deadlines.printed(proc))
    return proc


def _finish(proc: subprocess.Popen, tmp_path: Path, timeout: float = 30) -> tuple[str, str]:
    """The launcher's output once it ended (within `timeout`), and checks that no rank outlived it."""
    # (the ranks killed first: a rank may hold the launcher's stderr open)
    out, err = deadlines.communicate(
        proc, "the launcher to end", timeout, before=lambda: _kill_ranks(tmp_path)
    )
    alive = [r for r in (0, 1) if _alive(tmp_path, r)]
    _kill_ranks(tmp_path)
    assert not alive, (f"rank(s) {alive} outlived the launcher", out, err)
    return out, err


def _alive(tmp_path: Path, rank: int) -> bool:
    pid = int((tmp_path / f"pid{rank}").read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    if stat.is_file():  # (a zombie nobody reaped is no live rank)
        return stat.read_bytes().rpartition(b")")[2].split()[0] not in (b"Z", b"X")  # (the name: any bytes)
    return True


def _kill_ranks(tmp_path: Path) -> None:
    for rank in (0, 1):
        pid_file = tmp_path / f"pid{rank}"
        if pid_file.exists() and _alive(tmp_path, rank):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


@pytest.mark.serial
def test_ranks_left_running_after_a_rank_ended_are_killed(tmp_path):
    proc = _start(tmp_path, "rank_fails", stop_grace="0")
    started = time.monotonic()
    out, err = _finish(proc, tmp_path)
    assert time.monotonic() - started < 20, err
    pid0 = (tmp_path / "pid0").read_text()
    assert (  # (it said "the other rank(s) are still running", whatever their number)
        "audiotrain launch: rank 1 exited with status 1 1 s ago and the job is still running "
        "(a rank whose peer ended can stay blocked in MLX's ring for ever): killing 1 rank still running "
        f"(pid {pid0}; SIGKILL)" in err
    ), err
    assert "[WARN] Node with rank 0 exited with code -9" in err, err  # (mlx.launch then reports it, and ends)
    assert "exit codes rank 0: -9 (killed by the launcher: it did not end), rank 1: 1" in err, err
    assert "sys.exit(-9)" not in err, err  # a rank the launcher killed is not taken for one that ended alone
    assert proc.returncode == 1, err


@pytest.mark.serial
@pytest.mark.parametrize(
    ("report", "said"), [("", "exited with status -9"), ("1", "was killed")], ids=["status -9", "was killed"]
)
def test_ranks_left_running_after_a_rank_was_killed_are_killed(tmp_path, report, said):
    # A rank the OOM killer or a `kill -9` ended: mlx.launch reports a local one by its status, and one it had
    # to kill itself (a rank on another host) as "was killed"; either starts the grace, as an error does.
    proc = _start(tmp_path, "rank_killed", stop_grace="0", FAKE_KILLED_SAYS=report)
    out, err = _finish(proc, tmp_path)
    pid0 = (tmp_path / "pid0").read_text()
    assert (
        f"audiotrain launch: rank 1 {said} 1 s ago and the job is still running (a rank whose peer ended can "
        f"stay blocked in MLX's ring for ever): killing 1 rank still running (pid {pid0}; SIGKILL)" in err
    ), err
    assert proc.returncode != 0, err
    if said == "exited with status -9":  # it, not the launcher, killed rank 1: where the job broke
        assert (
            "audiotrain launch: rank 1 ended with exit status -9 (killed by SIGKILL: the kernel's OOM "
            "killer, or a kill -9?); the other ranks then lost it" in err
        ), err
        assert "rank 0: -9 (killed by the launcher: it did not end), rank 1: -9\n" in err, err


@pytest.mark.serial
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_NAME) is Linux's")
def test_a_rank_whose_process_name_is_not_text_is_killed_as_any_other(tmp_path):
    # The watch read each process's /proc stat as text: a name that is not (a script "entraînement_é.py" run
    # through its shebang is named "entraînement_\xc3") ended its thread, and the blocked rank ran for ever.
    proc = _start(tmp_path, "rank_fails", stop_grace="0", RANK_0_NAME_NOT_TEXT="1")
    out, err = _finish(proc, tmp_path)
    pid0 = (tmp_path / "pid0").read_text()
    assert f"killing 1 rank still running (pid {pid0}; SIGKILL)" in err, err
    assert "Traceback" not in err, err
    assert proc.returncode == 1, err


@pytest.mark.serial
def test_an_error_of_the_watch_itself_is_said_once_and_the_job_still_ends(tmp_path):
    # Whatever the watch meets (here /proc cannot be listed), its thread must not end without a word and
    # leave the job unbounded: it says the error once and goes on, and the kill it began ends the job (in
    # its fallback, the group killed `_REPORT_GRACE_S` later: 5 s by default, 1 s here, as the other graces).
    broken = _LAUNCHER.replace(
        "failures._mlx_launch",
        "def no_proc():\n    raise RuntimeError('no /proc today')\n"
        "failures._process_stats = no_proc\nfailures._REPORT_GRACE_S = 1.0\nfailures._mlx_launch",
    )
    proc = _start(tmp_path, "rank_fails", stop_grace="0", launcher=broken)
    out, err = _finish(proc, tmp_path)
    said = (
        "audiotrain launch: the watch that bounds how long the job takes to end met an error "
        "(RuntimeError: no /proc today); it goes on watching"
    )
    assert err.count(said) == 1, err
    assert "Traceback" not in err, err
    assert proc.returncode != 0, err


@pytest.mark.serial
def test_ranks_that_do_not_stop_on_ctrl_c_are_aborted_then_killed(tmp_path):
    proc = _start(tmp_path, "run", stop_grace="1")
    proc.send_signal(signal.SIGINT)
    out, err = _finish(proc, tmp_path)
    assert (
        "audiotrain launch: the ranks did not stop within 1 s of the stop signal "
        "(AUDIOTRAIN_LAUNCH_STOP_GRACE_S sets how long they get): aborting them, as a second Ctrl-C would"
        in err
    ), err
    pids = sorted((tmp_path / f"pid{rank}").read_text() for rank in (0, 1))
    killing = re.search(
        r"audiotrain launch: the job did not end within 1 s of the abort: killing 2 ranks still running "
        r"\(pid (\d+), (\d+); SIGKILL\)",
        err,
    )  # (it said "the rank(s) did not end")
    assert killing and sorted(killing.groups()) == pids, err
    for rank in (0, 1):  # the stop, then the abort: the stand-in for Ctrl-C, twice
        assert (tmp_path / f"usr1-{rank}").read_text() == "USR1\nUSR1\n"
    assert proc.returncode == 130, err


@pytest.mark.serial
def test_without_a_stop_grace_the_ranks_get_as_long_as_they_take_until_ctrl_c_again(tmp_path):
    proc = _start(tmp_path, "run", stop_grace="0")
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    # Each rank noted the stop (read after it did, not after a fixed 2.5 s a loaded machine can pass first),
    # and 2.5 s later it is still the stop alone: no abort of the launcher's own.
    for rank in (0, 1):
        _wait_for(tmp_path / f"usr1-{rank}", text="USR1\n")
    time.sleep(max(0.0, sent + 2.5 - time.monotonic()))
    assert proc.poll() is None
    for rank in (0, 1):
        assert (tmp_path / f"usr1-{rank}").read_text() == "USR1\n"
    proc.send_signal(signal.SIGINT)  # the user's abort: the ranks are killed 1 s (ABORT_GRACE_S) after it
    out, err = _finish(proc, tmp_path)
    assert "aborting them" not in err, err  # (the user aborted them)
    assert "did not end within 1 s of the abort: killing" in err, err
    assert proc.returncode == 130, err


@pytest.mark.serial
def test_no_rank_outlives_the_launcher_after_the_third_ctrl_c(tmp_path):
    # The third sends SIGTERM to mlx.launch's process group: mlx.launch ends, and ranks that take no notice of
    # SIGTERM would run on, orphaned.
    proc = _start(tmp_path, "run", stop_grace="0")
    for _ in range(3):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
    out, err = _finish(proc, tmp_path)
    assert "audiotrain launch: 2 processes of the job still running after mlx.launch ended" in err, err
    assert proc.returncode == 130, err


@pytest.mark.serial
def test_a_sigterm_to_the_launcher_ends_it_with_143_as_a_shell_reports_a_command_sigterm_ended(tmp_path):
    # A scheduler stops a job with SIGTERM and reads 143; 130 would say a user pressed Ctrl-C.
    proc = _start(tmp_path, "run", stop_grace="1")
    proc.send_signal(signal.SIGTERM)
    out, err = _finish(proc, tmp_path)
    assert proc.returncode == 143, err


def test_the_stop_grace_is_300_s_unless_its_variable_gives_another(monkeypatch, capsys):
    from audiotrain.distributed import failures

    monkeypatch.delenv(failures.STOP_GRACE_ENV, raising=False)
    assert failures._stop_grace() == failures.STOP_GRACE_S == 300  # (ranks that never stop get aborted)
    for value, grace in (("12.5", 12.5), ("0", 0.0), ("-3", 0.0)):
        monkeypatch.setenv(failures.STOP_GRACE_ENV, value)
        assert failures._stop_grace() == grace
    monkeypatch.setenv(failures.STOP_GRACE_ENV, "soon")
    assert failures._stop_grace() == 300
    assert (
        f"{failures.STOP_GRACE_ENV}='soon' is not a number of seconds; using 300" in capsys.readouterr().err
    )


def test_the_watch_names_the_first_rank_that_ended_badly_and_keeps_its_time():
    # Its kill message names where the job broke; a later rank's end must not move the grace on either.
    from audiotrain.distributed import failures

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    deadlines.wait(proc, "python -c pass to end", 60)
    watch = failures._EndingWatch(proc, abort=lambda: None, stop_grace=0)
    watch.note_line("[WARN] Node with rank 1 exited with code 0")
    assert watch.ended is None  # (a rank that ended well is no trouble)
    watch.note_line("\x1b[33m[WARN] Node with rank 0 exited with code 3 \x1b[0m")
    first = watch.ended
    watch.note_line("[WARN] Node with rank 1 was killed")
    assert watch.ended == first and first[1] == "rank 0 exited with status 3"


@pytest.mark.serial
def test_a_launch_inside_a_launched_job_is_refused_in_one_line(tmp_path):
    """It ran two separate jobs into one run folder, or failed with errors of their collectives."""
    env = {k: v for k, v in child_env().items() if not k.startswith(("MLX_RANK", "MLX_HOSTFILE", "OMPI_"))}
    inner = [
        sys.executable,
        "-m",
        "audiotrain",
        "launch",
        "-n",
        "2",
        "--",
        sys.executable,
        "-c",
        "print('ran')",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "audiotrain", "launch", "-n", "2", "--", *inner],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1 and "ran" not in done.stdout.split(), done.stdout + done.stderr
    # Each inner launch that got to run refuses in one line; mlx.launch may stop the second rank (SIGTERM)
    # before it does, and the outer summary may quote the first rank's line.
    refusals = [
        line for line in done.stderr.splitlines() if line.startswith("error: python -m audiotrain launch")
    ]
    assert 1 <= len(refusals) <= 2, done.stderr
    assert all("already a rank of a launched job" in line for line in refusals), refusals
    assert "run the command without it" in refusals[0]
    assert re.search(r"exit codes rank 0: (2|-15)\b.*, rank 1: (2|-15)\b", done.stderr), done.stderr
    assert "rank 0: 2" in done.stderr or "rank 1: 2" in done.stderr, done.stderr


def test_two_ranks_exit_reports_written_into_one_line_are_both_counted(tmp_path):
    # mlx.launch's threads may write two ranks' "[WARN] Node with rank N exited with code C" into one line
    # (seen in CI under load): the summary counted the first rank only ("1 rank ended with an error").
    fake = tmp_path / "mlx.launch"
    fake.write_text(
        f"#!{sys.executable}\nimport sys\n"
        "sys.stderr.write('\\x1b[33m[WARN]\\x1b[33m[WARN] Node with rank 0 exited with code 2 Node with rank 1 "
        "exited with code 2 \\x1b[0m \\x1b[0m\\n')\nsys.exit(1)\n"
    )
    fake.chmod(0o755)
    launcher = (
        "import sys\nfrom audiotrain.distributed import failures\n"
        "failures._mlx_launch = lambda: './mlx.launch'\n"
        "sys.exit(failures.launch(['-n', '2', '--', 'python', 'train.py']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", launcher],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "2 ranks ended with an error; exit codes rank 0: 2, rank 1: 2" in done.stderr, done.stderr


# The launcher killed (kill -9, the OOM killer): `launcher_watch`'s watcher ends the job. With "darwin", the
# launching process takes itself for macOS, where Linux's PR_SET_PDEATHSIG is not there to lean on.
_KILLED_LAUNCHER = """
import sys
from audiotrain.distributed import failures, launcher_watch
launcher_watch.GRACE_S = 1.0
if {platform!r} == "darwin":
    sys.platform = "darwin"
failures._mlx_launch = lambda: {mlx_launch!r}
sys.exit(failures.launch(["-n", "2", "--", sys.executable, "train.py"]))
"""


def _group_left(pgid: int, timeout: float) -> list[int]:
    """The live processes of process group `pgid` once they are gone, or `timeout` seconds later."""
    from audiotrain.distributed.failures import _group_members

    deadline = time.monotonic() + timeout
    while _group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _group_members(pgid)


def _killed_with_sigkill(proc: subprocess.Popen, pgid: int) -> tuple[list[int], str]:
    """kill -9 of the launcher `proc`: what of the job's group `pgid` is left 10 s later (killed then), and
    what the launcher wrote (its stderr ends: nothing of the job's holds it open)."""
    proc.kill()
    left = _group_left(pgid, timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    return left, proc.communicate(timeout=30)[1]


@pytest.mark.serial
@pytest.mark.parametrize("platform", ["linux", "darwin"])
def test_no_process_of_the_job_outlives_a_launcher_killed_with_sigkill(tmp_path, platform):
    # Its ranks take no notice of SIGTERM (the watcher's SIGKILL ends them, 1 s later here). On Linux
    # PR_SET_PDEATHSIG ended mlx.launch alone; on macOS nothing ended anything.
    launcher = _KILLED_LAUNCHER.format(platform=platform, mlx_launch="./mlx.launch")
    # (TMPDIR: the job folder a launcher killed with SIGKILL cannot remove lands in tmp_path, not in /tmp)
    proc = _start(tmp_path, "run", stop_grace="0", launcher=launcher, TMPDIR=str(tmp_path))
    pgid = os.getpgid(int((tmp_path / "pid0").read_text()))
    left, err = _killed_with_sigkill(proc, pgid)
    assert not left, (f"processes {left} of the job outlived the launcher", err)
    assert proc.returncode == -signal.SIGKILL


# A rank of the real mlx.launch: rank 0 prints, the others are quiet, as ranks other than 0 are.
_QUIET_RANK = """
import os, time
rank = os.environ["MLX_RANK"]
open(f"pid{rank}.tmp", "w").write(str(os.getpid()))
os.replace(f"pid{rank}.tmp", f"pid{rank}")
while True:
    if rank == "0":
        print("step", flush=True)
    time.sleep(0.1)
"""


@pytest.mark.serial
def test_a_quiet_rank_of_mlx_launch_does_not_outlive_a_launcher_killed_with_sigkill(tmp_path):
    # mlx.launch (0.32) does not end its ranks on SIGTERM: after PR_SET_PDEATHSIG's SIGTERM ended it, rank 0
    # died writing to the pipe it left, and rank 1, which writes nothing, ran on.
    from audiotrain.distributed.failures import _mlx_launch

    (tmp_path / "train.py").write_text(_QUIET_RANK)
    launcher = _KILLED_LAUNCHER.format(platform=sys.platform, mlx_launch=_mlx_launch())
    proc = subprocess.Popen(
        [sys.executable, "-c", launcher],
        cwd=tmp_path,
        env=child_env({"TMPDIR": str(tmp_path)}),  # (the job folder it cannot remove: see above)
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"pid{r}").exists() for r in (0, 1)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, deadlines.printed(proc)  # (a rank may hold its pipes open: within 10 s)
    pgid = os.getpgid(int((tmp_path / "pid1").read_text()))
    left, err = _killed_with_sigkill(proc, pgid)
    assert not left, (f"processes {left} of the job outlived the launcher", err)


def test_a_launcher_giving_up_on_a_running_job_leaves_the_watcher_to_end_it(monkeypatch):
    # LauncherWatch.close() while the job runs (an error of the launcher's own): told "the job ended", the
    # watcher would exit and leave the ranks training with nobody reading them. It ends the job's group as
    # if the launcher had died (SIGTERM, then SIGKILL GRACE_S later).
    from audiotrain.distributed import launcher_watch

    monkeypatch.setattr(launcher_watch, "GRACE_S", 1.0)
    job = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        launcher_watch.watch_over(job).close()
        assert job.wait(timeout=30) != 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job.pid, signal.SIGKILL)
        job.wait()


def _wait_for(path: Path, timeout: float = 60, text: str | None = None) -> None:
    """Until `path` exists (holding `text`, where given: a file is made before it is written)."""

    def there() -> bool:
        return path.exists() and (text is None or path.read_text() == text)

    deadline = time.monotonic() + timeout
    while not there() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert there(), f"{path.name} not made{'' if text is None else f' with {text!r} in it'} in {timeout} s"


def test_a_job_gets_sigterm_and_grace_s_to_end_by_itself_before_sigkill(monkeypatch, tmp_path):
    # A rank in `fit` takes SIGTERM for a stop and saves its checkpoint: here the job takes 2 s for it, well
    # within GRACE_S, and must end by itself (status 0, its file written), not by the watcher's SIGKILL.
    from audiotrain.distributed import launcher_watch

    monkeypatch.setattr(launcher_watch, "GRACE_S", 60.0)
    job = subprocess.Popen(
        ["sh", "-c", "trap 'sleep 2; echo saved > saved; exit 0' TERM; touch ready; sleep 300 & wait"],
        cwd=tmp_path,
        start_new_session=True,
    )
    try:
        _wait_for(tmp_path / "ready")  # (its trap is set)
        launcher_watch.watch_over(job).close()  # giving up on it: as if the launcher had died
        assert job.wait(timeout=60) == 0
        assert (tmp_path / "saved").read_text() == "saved\n"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job.pid, signal.SIGKILL)
        job.wait()


def test_the_watcher_of_a_job_that_ended_exits_by_itself():
    # A launcher that does not call close() (blocked, or living on after the job, as a notebook does): its
    # watcher must not outlive the job, nor signal later a group id that another process may have taken.
    from audiotrain.distributed import launcher_watch

    job = subprocess.Popen(["sleep", "0.2"], start_new_session=True)
    watch = launcher_watch.watch_over(job)
    try:
        job.wait()
        assert watch.watcher.wait(timeout=30) == 0
    finally:
        watch.close()


def test_closing_a_launcher_watch_closes_its_pipe_once():
    # The watcher of a job that ended exits by itself (the job's group is gone): close() then left its pipe
    # open (the write to a watcher gone failed, and skipped the close), one descriptor lost per job. A second
    # close() does nothing: it must not write into, nor close, the descriptor's number taken meanwhile.
    from audiotrain.distributed import launcher_watch

    job = subprocess.Popen(["true"], start_new_session=True)
    job.wait()
    watch = launcher_watch.watch_over(job)
    write_end = watch._write_end
    assert watch.watcher.wait(timeout=60) == 0  # (by itself: the job's group is gone)
    watch.close()
    with pytest.raises(OSError):
        os.fstat(write_end)  # closed
    read_end, reused = os.pipe()
    os.dup2(reused, write_end)  # (a pipe of this process's now holds the number)
    os.set_blocking(read_end, False)
    try:
        watch.close()
        os.fstat(write_end)  # still open
        with pytest.raises(BlockingIOError):
            os.read(read_end, 1)  # nothing written into it
    finally:
        for fd in {read_end, reused, write_end}:
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="/proc: Linux")
def test_the_watcher_is_out_of_reach_of_the_terminal_and_of_the_launchers_readers():
    # In the launching process's session, the terminal's Ctrl-C would kill the watcher too; holding the
    # launching process's stdout, it would keep whoever reads that output waiting after the launcher died.
    from audiotrain.distributed import launcher_watch

    job = subprocess.Popen(["sleep", "300"], start_new_session=True)
    watch = launcher_watch.watch_over(job)
    try:
        assert os.getsid(watch.watcher.pid) == watch.watcher.pid
        for fd in (1, 2):
            assert os.readlink(f"/proc/{watch.watcher.pid}/fd/{fd}") == os.devnull
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
        watch.close()


def test_processes_left_after_the_launcher_ended_are_named_where_there_is_no_proc(
    tmp_path, monkeypatch, capfd
):
    # Without /proc (macOS) the message named the launcher's own pid, reaped already, as "1 process".
    from audiotrain.distributed import failures

    monkeypatch.setattr(failures, "PROC", tmp_path)
    launcher = subprocess.Popen(
        ["sh", "-c", "sleep 301 & echo $!; sleep 302 & echo $!"],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    left = sorted(int(deadlines.read_line(launcher, "the pid of a sleep sh started", 60)) for _ in range(2))
    launcher.stdout.close()
    deadlines.wait(launcher, "sh to end, its two sleeps started", 60)
    try:
        assert failures._group_members(launcher.pid) == left
        failures._EndingWatch(launcher, lambda: None, 0, "audiotrain", "mpirun")._leftovers(0)
        assert (
            "audiotrain: 2 processes of the job still running after mpirun ended "
            f"(pid {left[0]}, {left[1]}): killing them (SIGKILL)" in capfd.readouterr().err
        )
        assert _group_left(launcher.pid, timeout=10) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launcher.pid, signal.SIGKILL)


# `python -m audiotrain launch` with a quiet fake mlx.launch, and a SIGTERM the kernel gives to a thread other
# than the main one (here: sent to it) once the fake started. The fake writes nothing until a stop reaches it;
# (written down in the job folder, as the
# ranks read it); it gives up after 10 s, saying so, rather than hang the test.
_LAUNCHER_STOPPED_FROM_A_THREAD = """
import os, runpy, signal, sys, threading, time
from audiotrain.distributed import failures
failures._mlx_launch = lambda: "./quiet_mlx.launch"

def stop_from_this_thread():
    while not os.path.exists("started"):
        time.sleep(0.02)
    time.sleep(0.3)  # (the main thread waits for mlx.launch's output by now)
    signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

threading.Thread(target=stop_from_this_thread, daemon=True).start()
sys.argv = ["audiotrain", "launch", "-n", "2", "--", "python", "train.py"]
runpy.run_module("audiotrain", run_name="__main__")
"""
_QUIET_MLX_LAUNCH = """#!/bin/sh
touch started
i=0
while [ ! -s "$AUDIOTRAIN_JOB_FOLDER/stop_signals.txt" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
[ -s "$AUDIOTRAIN_JOB_FOLDER/stop_signals.txt" ] && exit 143
echo "quiet mlx.launch: no stop reached it in 10 s" >&2
exit 99
"""


@pytest.mark.serial
def test_a_sigterm_another_thread_receives_stops_a_quiet_job_at_once(tmp_path):
    """A process-directed SIGTERM can land on any thread; one that landed on another thread while the main
    one was blocked reading mlx.launch's stderr was not passed on until mlx.launch next wrote: a quiet job
    (a rank waiting for its data, or for a stop) went on for ever."""
    fake = tmp_path / "quiet_mlx.launch"
    fake.write_text(_QUIET_MLX_LAUNCH)
    fake.chmod(0o755)
    proc = subprocess.Popen(
        [sys.executable, "-c", _LAUNCHER_STOPPED_FROM_A_THREAD],
        cwd=tmp_path,
        env=child_env({}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = deadlines.communicate(proc, "the launcher to end", 60)  # (a hang fails the test)
    assert "no stop reached it" not in err, err
    assert proc.returncode == 143, err


@pytest.mark.serial
@pytest.mark.parametrize(
    ("options", "set_by_user", "expected"),
    [
        (["-n", "2"], None, lambda: str(max(1, usable_cores() // 2))),
        (["-n2"], None, lambda: str(max(1, usable_cores() // 2))),
        (["-n", "2"], "3", lambda: "3"),  # (the user's count is kept)
    ],
)
def test_ranks_on_this_machine_get_their_share_of_the_cores_for_blas(
    tmp_path, options, set_by_user, expected
):
    """Each rank's OpenBLAS took every core, so 2 ranks on 2 cores ran 4 BLAS threads beside the ring's
    busy-waiting ones: a fit 4-8x slower than with OPENBLAS_NUM_THREADS=1, the README's advice."""
    env = {k: v for k, v in child_env().items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    if set_by_user is not None:
        env["OPENBLAS_NUM_THREADS"] = set_by_user
    done = subprocess.run(
        [sys.executable, "-m", "audiotrain", "launch", *options, "--", sys.executable, "-c",
         "import os; print('threads', os.environ.get('OPENBLAS_NUM_THREADS'))"],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    seen = [line.split()[-1] for line in done.stdout.splitlines() if line.startswith("threads")]
    assert seen == [expected()] * 2, done.stdout + done.stderr
