"""A failure in one rank ends the job with a non-zero exit and a message naming the rank.

Two halves. In each rank, `install_failure_hook` (installed by `audiotrain.distributed.group` when the job
has more than one process) or `run_guarded` prints ``audiotrain: rank N failed: <error>`` after the
traceback, and a rank of a job of several processes then ends at once (`exit_rank`): the launcher sees it
fail and ends the others (on ring they also fail within a fraction of a second when their next collective
finds the peer gone). Around the job, `launch` runs ``mlx.launch`` and returns non-zero when any rank did:
``mlx.launch`` itself exits 0 even when a rank fails (mlx 0.32).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import traceback
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from audiotrain._proc import PROC, stat_fields
from audiotrain._system import write_whole
from audiotrain._text import listed, plural

T = TypeVar("T")

FAILED_TAG = "audiotrain: rank"
# What a rank's collective raises when a peer died first (ring: "[ring] connection to a peer was lost").
_PEER_LOST = re.compile(r"peer was lost|closed by the peer|connection reset", re.IGNORECASE)
_SECONDARY = "(another rank probably failed first: look for its message)"
# How a rank the peer watch ended points to the peer that failed (`peer_watch._PeerWatch.end_this_rank`).
_LOOK_FOR = re.compile(r"\(look for rank \d+'s message\)$")


def peer_was_lost(exc: BaseException) -> bool:
    """Whether `exc` is a collective's error saying another rank went away (it failed first)."""
    return bool(_PEER_LOST.search(str(exc)))


def failure_message(exc: BaseException, rank: int) -> str:
    """The one line a failing rank prints: ``audiotrain: rank N failed: Type: message``."""
    what = f"{type(exc).__name__}: {exc}".rstrip(": ")
    line = f"{FAILED_TAG} {rank} failed: {what}"
    if peer_was_lost(exc):
        line += f" {_SECONDARY}"
    return line


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed stream must not hide the failure
            pass


def _report(exc: BaseException) -> None:
    from audiotrain.distributed.collectives import rank
    from audiotrain.distributed.peer_watch import this_rank_failed

    this_rank_failed()
    _flush()
    print(failure_message(exc, rank()), file=sys.stderr, flush=True)


def exit_rank(status: int) -> NoReturn:
    """End this process with exit `status`; for a script's last line: ``exit_rank(main())``.

    In a job of several processes a non-zero status ends the process at once (``os._exit`` after flushing
    stdout and stderr), skipping the interpreter's shutdown: under MPI that shutdown (``MPI_Finalize``)
    waits for every peer, so a rank that stopped while a peer waits in a collective would hang the whole
    job, and ``mpirun`` would never see it fail. Anywhere else this is ``raise SystemExit(status)``.
    """
    _end_if_in_job(status)
    raise SystemExit(status)


def _end_if_in_job(status: int) -> None:
    if not status:
        return  # (before importing collectives, and mlx and numpy with them: a --help ends here)
    from audiotrain.distributed.collectives import joined_world_size

    if joined_world_size() > 1:
        from audiotrain.distributed.peer_watch import say_how_this_rank_ends

        say_how_this_rank_ends()
        _flush()
        # mpirun ends the job as soon as it sees this exit, and Open MPI's output forwarding can then drop
        # what this rank wrote last, its one error line (seen once in a CI run under load): give it a moment.
        # A stop signal is ignored in that moment: the rank is ending with its status, and mlx.launch's
        # SIGTERM (sent as a peer died) raising from a handler here (the recipes') would print this rank's
        # traceback again after "Error in sys.excepthook", or end it with the stop's status, not its own.
        _ignore_stop_signals()
        time.sleep(EXIT_FORWARDING_GRACE_S)
        os._exit(status)


def _ignore_stop_signals() -> None:
    """Ignore SIGTERM, SIGINT and the launcher's stand-in for Ctrl-C from here on. Only the main thread can
    change a handler; a rank ending from another thread leaves them (they run in the main thread, not in
    the one that waits here)."""
    for name in ("SIGTERM", "SIGINT", "SIGUSR1"):
        if hasattr(signal, name):
            with contextlib.suppress(ValueError):
                signal.signal(getattr(signal, name), signal.SIG_IGN)


#: Seconds a rank ending with an error waits after flushing, for mpirun to forward its last output.
EXIT_FORWARDING_GRACE_S = 0.5

#: Seconds a rank other than 0 waits before it ends with an error that rank 0 reports: its exit makes
#: ``mpirun`` end the job, which could cut rank 0 off before its message (and the report before it) is out.
MAIN_REPORTS_GRACE_S = 2.0


def error_left_to_main() -> bool:
    """Whether this process leaves an error to rank 0 to print: True on a rank other than 0 of a job it has
    joined, after a short wait (`MAIN_REPORTS_GRACE_S`), for an error that every rank meets (a data folder
    they all read: the same report once, not once per rank). False in one process, on rank 0, and in a
    process that has not joined a job (a launcher): the caller prints the error itself.

    Called in an ``except`` block, it also leaves the error being handled for the launcher
    (`leave_error_for_launcher`), which prints it where rank 0 did not."""
    from audiotrain.distributed.collectives import joined_world_size, rank

    if joined_world_size() <= 1 or rank() == 0:
        return False
    leave_error_for_launcher(sys.exc_info()[1])
    wait_for_main_to_report()  # rank 0 meets the same error; its words come first
    return True


def wait_for_main_to_report() -> None:
    """Flush, then wait `MAIN_REPORTS_GRACE_S`: a rank other than 0 about to end with an error that rank 0
    prints gives rank 0 the time to print it before this rank's exit makes the launcher end the job."""
    _flush()
    time.sleep(MAIN_REPORTS_GRACE_S)


def leave_error_for_launcher(error: BaseException | str | None) -> None:
    """In a rank of a job `local.run_local_job` started: write the error this rank leaves to rank 0 to print
    (``error: ...``) where the launcher reads it, which prints it if the job ends and no rank printed one
    (rank 0 was ended first, or met no error). Elsewhere, and for None, nothing."""
    from audiotrain.distributed.collectives import rank
    from audiotrain.distributed.local import RANK_ERRORS_ENV

    folder = os.environ.get(RANK_ERRORS_ENV)
    if not folder or error is None:
        return
    # UTF-8 whatever the locale, what it cannot hold escaped: an error naming /data/日本の歌.wav raised
    # UnicodeEncodeError in a Latin-1 locale in place of the error it reports.
    text = f"error: {error}\n".encode("utf-8", errors="backslashreplace")
    with contextlib.suppress(OSError):  # (best effort: the rank is on its way out)
        (Path(folder) / f"rank{rank()}.txt").write_bytes(text)


def install_failure_hook() -> None:
    """Make an uncaught exception print ``audiotrain: rank N failed: ...`` after its traceback, then end
    the process with status 1 (`exit_rank`: in a job of several processes, at once).

    Chains to the hook already installed (which prints the traceback). Installing twice is harmless. A
    ``KeyboardInterrupt`` (a second Ctrl-C) is left to Python, which ends the process by SIGINT.
    """
    previous = sys.excepthook
    if getattr(previous, "_audiotrain_failure_hook", False):
        return

    def hook(exc_type, exc, tb):
        previous(exc_type, exc, tb)
        if not issubclass(exc_type, KeyboardInterrupt):
            _report(exc)
            _end_if_in_job(1)  # (in one process Python goes on to exit with status 1)

    hook._audiotrain_failure_hook = True  # type: ignore[attr-defined]
    sys.excepthook = hook


def run_guarded(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``fn(*args, **kwargs)``; if it raises, print the traceback and the rank's failure line, exit 1.

    For a script's ``main`` when the exception would otherwise be caught by something that swallows it
    (a thread, an interactive wrapper). ``SystemExit`` keeps its status and ``KeyboardInterrupt`` exits
    130 (143 after a fit that SIGTERM stopped), both through `exit_rank` (a non-zero status in a job of
    several processes ends it at once).
    """
    try:
        return fn(*args, **kwargs)
    except SystemExit as stop:
        code = stop.code
        if code is None or isinstance(code, int):
            exit_rank(code or 0)
        raise  # a message: Python prints it and exits 1
    except KeyboardInterrupt:
        from audiotrain.train.interrupt import stop_exit_status

        exit_rank(stop_exit_status())  # 130, or 143 where SIGTERM stopped a fit
    except BaseException as exc:
        traceback.print_exc()
        _report(exc)
        exit_rank(1)


# ---------------------------------------------------------------------------------------------- launcher

# mlx.launch's own report when a rank ends: "[WARN] Node with rank 1 exited with code 1" / "was killed".
_NODE = re.compile(r"Node with rank (\d+) (?:exited with code (-?\d+)|was killed)")
_FAILED = re.compile(re.escape(FAILED_TAG) + r" (\d+) failed: (.*)")
#: A traceback's last line ("ModuleNotFoundError: No module named 'x'"), looked for after "Traceback".
_EXCEPTION_LINE = re.compile(r"[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)(?::.*)?")
# argparse's error line, "PROG: error: ...", where PROG is "python -m module" (the recipes) or "script.py":
# a user error the rank printed before it exited 2, as a recipe's own "error: ..." lines.
_USAGE_ERROR = re.compile(r"(?:\S+ -m \S+|\S+\.py): error: ")
# Python's own start-up errors, before any script runs ("python: can't open file 'nosuch.py': [Errno 2] ...",
# exit 2; "python: No module named nosuch" for -m, exit 1): the rank's error too, not "no error of its own".
# (The interpreter's name first: a traceback's "ModuleNotFoundError: No module named 'x'" is read as its own.)
_INTERPRETER_ERROR = re.compile(
    r"\S*python[\d.]*: (?:can't open file '.*': \[Errno \d+\]|No module named \S+$)"
)
_MISSING_AUDIOTRAIN = re.compile(r"ModuleNotFoundError: No module named 'audiotrain[.']")


#: Seconds the other ranks get to end once mlx.launch reported a rank that ended with an error (a non-zero
#: status, or killed). They end by themselves within a second or two (ring fails their next collective, and a
#: rank's report waits `MAIN_REPORTS_GRACE_S`), and mlx.launch sends them SIGTERM; but MLX's ring (0.32)
#: leaves a rank whose peer ended blocked for ever in a later collective (once each socket's thread has given
#: up on the peer, a new collective waits for it), in C++, where no handler of Python runs, and mlx.launch
#: then waits for that rank for ever. The launcher kills such a rank (SIGKILL).
RANK_ENDED_GRACE_S = 10.0
#: Seconds the ranks get to stop and save after the first stop signal (Ctrl-C, SIGTERM) before the launcher
#: aborts them, as a second Ctrl-C would; `STOP_GRACE_ENV` sets another (0: no limit).
STOP_GRACE_S = 300.0
STOP_GRACE_ENV = "AUDIOTRAIN_LAUNCH_STOP_GRACE_S"
#: Seconds the ranks get to end after an abort (a second stop signal, the third's SIGTERM, or the launcher's
#: own after `STOP_GRACE_S`) before the launcher kills what is left of the job (SIGKILL).
ABORT_GRACE_S = 10.0
#: Seconds mlx.launch gets to report the ranks the launcher killed and end, before it is killed as well.
_REPORT_GRACE_S = 5.0


def _stop_grace(who: str = "audiotrain launch") -> float:
    """`STOP_GRACE_S`, or the seconds `STOP_GRACE_ENV` gives (0 or less: no limit); `who` names the launcher
    in the warning about a value that is no number."""
    value = os.environ.get(STOP_GRACE_ENV, "").strip()
    if not value:
        return STOP_GRACE_S
    try:
        return max(0.0, float(value))
    except ValueError:
        print(
            f"{who}: {STOP_GRACE_ENV}={value!r} is not a number of seconds; using {STOP_GRACE_S:.0f}",
            file=sys.stderr,
            flush=True,
        )
        return STOP_GRACE_S


def _say(line: str) -> None:
    """One line of the launcher's on stderr, written whole (the ranks' output passes through there too)."""
    if sys.stderr is None:  # a closed stderr (`2>&-`): nowhere to say it
        return
    data = (line + "\n").encode(errors="replace")
    if hasattr(sys.stderr, "buffer"):
        write_whole(sys.stderr.buffer, data)
        sys.stderr.buffer.flush()
    else:
        sys.stderr.write(data.decode())
        sys.stderr.flush()


def _process_stats() -> Iterator[tuple[int, list[str]]]:
    """Each live process's pid and the fields of its /proc stat after the name (`_proc.stat_fields`: state,
    ppid, pgrp, ...), whatever bytes its name holds."""
    for entry in PROC.iterdir():
        # (None: ended meanwhile)
        if entry.name.isdigit() and (fields := stat_fields(entry.name)) is not None:
            yield int(entry.name), fields


def _group_members(pgid: int) -> list[int]:
    """The live processes of process group `pgid` (zombies left out): from /proc on Linux, else from
    ``ps`` (macOS; its ``pgrep -g`` would list zombies too)."""
    if not (PROC / "self" / "stat").is_file():
        table = subprocess.run(["ps", "-A", "-o", "pid=,pgid=,stat="], capture_output=True, text=True).stdout
        rows = [line.split() for line in table.splitlines()]
        return [
            int(row[0])
            for row in rows
            if len(row) == 3 and row[0].isdigit() and row[1] == str(pgid) and not row[2].startswith("Z")
        ]
    members = []
    for pid, fields in _process_stats():
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            members.append(pid)
    return members


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class _EndingWatch:
    """Bounds the time a job started by `launch` takes to end, whatever state its ranks are in.

    mlx.launch (0.32) ends the other ranks with SIGTERM when one ended with an error, and then waits for
    them for ever; a rank blocked in a collective whose peer ended never ends (`RANK_ENDED_GRACE_S`), nor
    does one that ignores SIGTERM (a rank in `fit` takes it for a stop). So, on a thread, from what
    `note_stop`, `note_abort` and `note_line` (mlx.launch's stderr) tell it:

    - a rank ended with an error: the ranks still running `RANK_ENDED_GRACE_S` later are killed;
    - a stop signal: the ranks not ended `stop_grace` seconds later are aborted, as a second Ctrl-C would
      (`abort`), and the ranks not ended `ABORT_GRACE_S` after an abort (the user's or this one) are killed.

    Killed: the ranks (mlx.launch's children) with SIGKILL, then, where mlx.launch has not ended
    `_REPORT_GRACE_S` later, its whole process group (mlx.launch, and what the ranks started). Each step is
    said on stderr. Once mlx.launch ended, what outlived it is ended too (`_leftovers`).

    The recipes' own local processes (`local.run_local_job`) are watched so around ``mpirun`` (`launcher`),
    whose ranks are its children too; `who` starts the lines it says."""

    def __init__(
        self,
        proc: subprocess.Popen,
        abort: Callable[[], None],
        stop_grace: float,
        who: str = "audiotrain launch",
        launcher: str = "mlx.launch",
    ) -> None:
        self.proc = proc
        self.who, self.launcher = who, launcher
        self._abort = abort
        self.stop_grace = stop_grace
        self.ended: tuple[float, str] | None = None  # when and how mlx.launch said the first rank ended badly
        self.stopped_at: float | None = None
        self.aborted_at: float | None = None
        self.killed_at: float | None = None
        self._troubled = False  # (an error of the watch's own was said: `_report_trouble`)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audiotrain-launch-ending", daemon=True)

    def __enter__(self) -> _EndingWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    # (Called from the launcher's signal handler: they note the time, and neither print nor wait.)
    def note_stop(self) -> None:
        if self.stopped_at is None:
            self.stopped_at = time.monotonic()

    def note_abort(self) -> None:
        if self.aborted_at is None:
            self.aborted_at = time.monotonic()

    def note_line(self, line: str) -> None:
        """A line of mlx.launch's stderr: where it says a rank ended with an error, the first such."""
        m = _NODE.search(line)
        if m and self.ended is None and m.group(2) != "0":
            how = "was killed" if m.group(2) is None else f"exited with status {m.group(2)}"
            self.ended = (time.monotonic(), f"rank {m.group(1)} {how}")

    def _run(self) -> None:
        while not self._done.wait(0.2):
            if self.proc.poll() is not None:
                break
            try:
                if self._check(time.monotonic()):
                    break
            except Exception as error:  # (see `_report_trouble`)
                self._report_trouble(error)
        troubled = (self.stopped_at, self.aborted_at, self.ended, self.killed_at) != (None,) * 4
        if troubled and self.proc.poll() is not None:
            # A rank mlx.launch left behind (mlx.launch ended by the third signal's SIGTERM, a rank that takes
            # no notice of it) does not outlive the launcher, nor holds its stderr open.
            try:
                self._leftovers(0.0 if self.killed_at is not None else ABORT_GRACE_S)
            except Exception as error:
                self._report_trouble(error)
                _kill_group(self.proc.pid)  # (what is left of the job, unseen: killed, as `_leftovers` would)

    def _check(self, now: float) -> bool:
        """One look at the job at time `now`: what is due is done. True once the watch is over."""
        if self.killed_at is not None:
            if now - self.killed_at >= _REPORT_GRACE_S:
                _kill_group(self.proc.pid)  # mlx.launch did not end: it, and all that is left
                return True
        elif self.ended is not None and now - self.ended[0] >= RANK_ENDED_GRACE_S:
            self._kill(
                f"{self.ended[1]} {RANK_ENDED_GRACE_S:.0f} s ago and the job is still running "
                "(a rank whose peer ended can stay blocked in MLX's ring for ever)"
            )
        elif self.aborted_at is not None and now - self.aborted_at >= ABORT_GRACE_S:
            self._kill(f"the job did not end within {ABORT_GRACE_S:.0f} s of the abort")
        elif (
            self.aborted_at is None
            and self.stopped_at is not None
            and self.stop_grace > 0
            and now - self.stopped_at >= self.stop_grace
        ):
            _say(
                f"{self.who}: the ranks did not stop within {self.stop_grace:.0f} s of the stop "
                f"signal ({STOP_GRACE_ENV} sets how long they get): aborting them, as a second Ctrl-C "
                "would"
            )
            self.note_abort()
            self._abort()
        return False

    def _report_trouble(self, error: Exception) -> None:
        """An error of the watch's own (a bug, something of the machine's it did not expect): said once, and
        the watch goes on. Ending the thread would leave the job's end unbounded (a rank blocked in MLX's
        ring, running for ever), which the watch is there to prevent; where the error comes back at each
        look, a kill the watch began still ends in its fallback (`_kill_group`, `_REPORT_GRACE_S` later)."""
        if self._troubled:
            return
        self._troubled = True
        _say(
            f"{self.who}: the watch that bounds how long the job takes to end met an error "
            f"({type(error).__name__}: {error}); it goes on watching"
        )

    def _kill(self, why: str) -> None:
        self.killed_at = time.monotonic()
        ranks = _children(self.proc.pid)
        # Counted here, when they are killed: how many of the job's ranks still run is known only now.
        what = f"{plural(len(ranks), 'rank')} still running (pid {listed(ranks, 8)}; SIGKILL)"
        _say(f"{self.who}: {why}: killing {what if ranks else 'the job (SIGKILL)'}")
        for pid in ranks:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def _leftovers(self, grace: float) -> None:
        """After mlx.launch ended: the processes of its group still running (ranks it left, blocked or
        ignoring its SIGTERM; what they started) get `grace` seconds to end, then are killed."""
        pgid = self.proc.pid
        deadline = time.monotonic() + grace
        while _group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = _group_members(pgid)
        if left:
            _say(
                f"{self.who}: {plural(len(left), 'process', 'processes')} of the job still running "
                f"after {self.launcher} ended (pid {', '.join(map(str, left))}): killing "
                f"{'it' if len(left) == 1 else 'them'} (SIGKILL)"
            )
            _kill_group(pgid)


def _mlx_launch() -> str:
    beside = Path(sys.executable).parent / "mlx.launch"
    found = str(beside) if beside.exists() else shutil.which("mlx.launch")
    if found is None:
        raise FileNotFoundError(
            "mlx.launch was not found beside this Python or on PATH; install mlx (it ships mlx.launch)"
        )
    return found


def _mlx_launch_command() -> list[str]:
    """The command that runs mlx.launch for `launch`: where the mlx.launch found is mlx's own, beside this
    Python, the same launcher through `_whole_line_launch` (its log lines written whole, which interleave
    with the ranks' output otherwise); any other (another environment's, a stand-in) as it is."""
    found = _mlx_launch()
    beside = Path(sys.executable).parent / "mlx.launch"
    try:
        ours = Path(found).samefile(beside) and b"mlx._distributed_utils.launch" in beside.read_bytes()[:2048]
    except OSError:
        ours = False
    if not ours:
        return [found]
    return [sys.executable, str(Path(__file__).with_name("_whole_line_launch.py"))]


#: What a rank's exit status says where the rank printed no error of its own: the shell's "command not
#: found" (``launch -n 2 -- script.py``), and ssh's own status where it could not reach a rank's host.
_STATUS_HINTS = {
    127: "command not found: give the interpreter, as in launch -n 2 -- python script.py",
    255: "ssh's status where it cannot reach a host: ssh to the rank's host probably failed (does "
    "`ssh HOST true` work, without a password?)",
}


def _killed_by(signum: int) -> str:
    """What ended a rank that a signal killed, in words."""
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    return f"killed by {name}" + (
        ": the kernel's OOM killer, or a kill -9?" if signum == signal.SIGKILL else ""
    )


def _exit_codes_in_words(exit_codes: dict[int, int | None], killed: Collection[int]) -> str:
    """ "rank 0: 130, rank 1: killed (...)": each rank's status, and who ended the ranks that did not end
    of their own."""
    return ", ".join(
        f"rank {r}: {'killed' if c is None else c}"
        + (
            " (killed by the launcher: it did not end)"
            if r in killed
            else " (stopped by mlx.launch after another rank ended)"
            if c in (None, -15)
            else ""
        )
        for r, c in sorted(exit_codes.items())
    )


def summarize(
    exit_codes: dict[int, int | None],
    failures: dict[int, str],
    error_lines: list[str] | None = None,
    exception_lines: list[str] | None = None,
    killed: Collection[int] = (),
    stop: int | None = None,
) -> list[str]:
    """The launcher's closing lines: first the ranks that failed on their own, then every exit code.

    ``exit_codes`` maps a rank to its status (None: killed by mlx.launch); ``failures`` a rank to the
    text after ``failed:`` in its own failure line; ``error_lines`` the ``error: ...`` lines the ranks
    printed (a recipe's way to report a user error before it exits 2, argparse's ``PROG: error: ...``,
    and Python's own start-up errors: ``python: can't open file ...``, ``python: No module named ...``;
    mlx.launch does not say whose);
    ``exception_lines`` the last lines of the tracebacks they printed (an uncaught exception outside
    `install_failure_hook`'s reach: an import in the script, before ``audiotrain`` is imported; a line that
    a rank's failure then repeats is that rank's traceback, not one of a rank that ended silently); ``killed``
    the ranks the launcher itself killed (`_EndingWatch`), which ended of no error of their own either;
    ``stop`` the first stop signal (SIGINT, SIGTERM) the launcher passed on to the ranks, if any: where no
    rank then reported an error of its own, one line says that they stopped on it.
    """
    own_failure = any(_SECONDARY not in text for text in failures.values())
    if stop is not None:
        # A rank the stop reached before it could save (importing, joining the job) ends with a bare
        # KeyboardInterrupt, the stop's own (`install_rank_stop_signal` raises it there): not its failure.
        exception_lines = [line for line in exception_lines or () if line != "KeyboardInterrupt"]
    if stop is not None and not (own_failure or error_lines or exception_lines):
        name = "Ctrl-C" if stop == signal.SIGINT else signal.Signals(stop).name
        return [
            f"audiotrain launch: the ranks stopped on the {name} passed on to them; exit statuses "
            f"{_exit_codes_in_words(exit_codes, killed)}"
        ]
    lines = []
    # A traceback whose last line a rank's own failure line then repeats (a peer lost after a kill -9) is
    # that rank's: only the others are of ranks that died before audiotrain could report them.
    exception_lines = [
        line for line in exception_lines or () if not any(text.startswith(line) for text in failures.values())
    ]
    stopped = {r for r, c in exit_codes.items() if c in (None, -15) or r in killed}  # by a launcher
    ended_alone = [
        (r, c) for r, c in sorted(exit_codes.items()) if c != 0 and r not in stopped and r not in failures
    ]
    if (
        exception_lines
        and ended_alone
        and not error_lines
        and all(_SECONDARY in t for t in failures.values())
    ):
        # Ranks that died of an uncaught exception each failed on their own: none "lost" another.
        said = "; ".join(dict.fromkeys(exception_lines))
        ranks = ", ".join(str(r) for r, _ in ended_alone)
        codes = ", ".join(sorted({str(c) for _, c in ended_alone}))
        lines.append(
            f"audiotrain launch: rank{'s' if len(ended_alone) > 1 else ''} {ranks} failed (exit status {codes}): "
            f"{said}"
        )
        if any(_MISSING_AUDIOTRAIN.match(line) for line in exception_lines):
            lines.append(
                "audiotrain launch: the ranks' Python has no audiotrain: `python` in the command is perhaps not "
                f"the launcher's interpreter ({sys.executable}); name that one in the command "
                f"(-- {sys.executable} ...) or activate its environment"
            )
        failures = {**failures, **{r: "" for r, _ in ended_alone}}
    ended: list[tuple[int, int | None]] = []  # (the rank named as where the job broke, and those after it)
    if all(_SECONDARY in text for text in failures.values()):
        # A rank that ended non-zero and printed no failure of its own (sys.exit(n) in a callback, os._exit)
        # is where the job broke: named first, before the ranks that then lost it.
        # (in the order the ranks ended, as mlx.launch reported them: the first is named, the rest listed;
        # a rank the launcher itself stopped is not where the job broke)
        ended = [
            (r, c)
            for r, c in exit_codes.items()
            if c not in (None, 0, -15) and r not in stopped and r not in failures
        ]
        if ended:
            (r, c), later = ended[0], ended[1:]
            # A recipe's rank prints its error as "error: ..." and exits 2: not "no error of its own".
            if c in _STATUS_HINTS:
                why = f"({_STATUS_HINTS[c]})"
            elif c < 0:  # (mlx.launch's status of a local rank a signal ended: minus the signal's number)
                why = f"({_killed_by(-c)})"
            elif error_lines:
                why = f"after {error_lines[0] if len(ended) == 1 else 'the error printed above'}"
            else:
                why = f"and no error of its own (sys.exit({c}) or os._exit({c})?)"
            then = "; ".join(f"rank {r2} (exit status {c2})" for r2, c2 in later)
            # Other ranks "lost it" only where some reported (a job of one rank, `launch -n 1`, has none).
            others = (set(failures) | set(exit_codes)) - {r}
            then = f"; then {then}" if later else "; the other ranks then lost it" if others else ""
            ended_how = f"ended{' first,' if later else ''} with exit status {c} {why}"
            lines.append(f"audiotrain launch: rank {r} {ended_how}{then}")
    # A rank the peer watch ended names the peer it waited for ("(look for rank 1's message)"): a consequence,
    # as a lost peer is, so the rank that failed of its own error comes first.
    first = sorted(
        failures, key=lambda r: (_SECONDARY in failures[r] or bool(_LOOK_FOR.search(failures[r])), r)
    )
    # Ranks that failed alike (every rank refusing one checkpoint) share one line: the error said once.
    alike: dict[str, list[int]] = {}
    for r in first:
        if failures[r]:  # ("": named above, with the exception it printed)
            alike.setdefault(failures[r], []).append(r)
    for text, ranks in alike.items():
        named = ", ".join(str(r) for r in ranks)
        lines.append(f"audiotrain launch: rank{'s' if len(ranks) > 1 else ''} {named} failed: {text}")
    if exit_codes:
        codes = _exit_codes_in_words(exit_codes, killed)
        lines.append(
            f"audiotrain launch: {plural(len(exit_codes), 'rank')} ended with an error; exit codes {codes}"
        )
    # (a guess at what ended a rank, where none was named: a rank named with its status, killed by a signal
    # or with sys.exit(3), needs no guess, nor exit_rank to have that status reported)
    if failures and all(_SECONDARY in text for text in failures.values()) and not error_lines and not ended:
        lines.append(
            "audiotrain launch: no rank reported an error of its own: one probably ended without an exception "
            "(sys.exit, os._exit, a signal) or finished while the others still waited for it in a collective "
            "(every rank must run the same steps and collectives); end a rank's script with "
            "audiotrain.distributed.exit_rank(status) to have its status reported"
        )
    return lines


def launcher_options(argv: list[str]) -> list[str] | None:
    """The options of ``python -m audiotrain launch`` before the command it starts: those before ``--``, else
    those before the first ``python`` (mlx.launch needs the command to name its interpreter); None when
    neither is there."""
    if "--" in argv:
        return argv[: argv.index("--")]
    for i, arg in enumerate(argv):
        if re.fullmatch(r"python[\d.]*", Path(arg).name):
            return argv[:i]
    return None


def _mlx_launch_options() -> tuple[frozenset[str], frozenset[str]] | None:
    """mlx.launch's options (those that take a value, the switches), read from its parser's source, so that
    the options of another mlx version are known too; None where it cannot be read (nothing is checked)."""
    try:
        import inspect

        from mlx._distributed_utils import launch as mlx_launch

        source = inspect.getsource(mlx_launch)
    except Exception:  # (another layout of mlx: mlx.launch checks its own options)
        return None
    values, switches = set(), {"-h", "--help"}  # (argparse's own)
    for call in source.split("add_argument(")[1:]:
        flags = re.match(r'\s*((?:"-[^"]*"\s*,\s*)+)', call)
        if flags is None:
            continue  # (a positional argument)
        names = re.findall(r'"(-[^"]*)"', flags.group(1))
        (
            switches
            if re.search(r"action=\"store_(?:true|false)\"", call.split("add_argument(")[0])
            else values
        ).update(names)
    return (frozenset(values), frozenset(switches)) if values else None


def _unknown_options(options: list[str]) -> str | None:
    """The first of the launcher's `options` that is no option of mlx.launch, else None."""
    known = _mlx_launch_options()
    if known is None:
        return None
    values, switches = known
    i = 0
    while i < len(options):
        arg = options[i]
        name = arg.partition("=")[0]
        short = next(
            (flag for flag in values if len(flag) == 2 and arg.startswith(flag) and arg != flag), None
        )
        if name in values:
            i += 1 if "=" in arg else 2
        elif arg in switches or short is not None:  # (-n2: a short option and its value in one)
            i += 1
        elif arg.startswith("-"):
            return arg
        else:
            i += 1
    return None


def _names_hosts(options: list[str]) -> bool:
    """Whether the launcher's `options` name hosts (``--hosts``, ``--hostfile``): ranks on other machines."""
    return any(arg.split("=")[0] in ("--hosts", "--hostfile") for arg in options)


def _local_blas_threads(options: list[str]) -> dict[str, str]:
    """``OPENBLAS_NUM_THREADS`` for the ranks of a job on this machine alone (no ``--hosts``/``--hostfile``),
    where the user set neither it nor ``OMP_NUM_THREADS``: the cores shared out among ``-n`` ranks, as the
    recipes' own local processes get them. Each rank's OpenBLAS otherwise takes every core, and 2 ranks on 2
    cores ran each step 4-8x slower beside the ring's busy-waiting threads."""
    if _names_hosts(options) or "OPENBLAS_NUM_THREADS" in os.environ or "OMP_NUM_THREADS" in os.environ:
        return {}
    ranks = 1
    for i, arg in enumerate(options):
        name, equals, value = arg.partition("=")
        if name in ("-n", "--repeat-hosts"):
            value = value if equals else (options[i + 1] if i + 1 < len(options) else "")
        elif arg.startswith("-n") and arg[2:].isdigit():  # (-n2)
            value = arg[2:]
        else:
            continue
        ranks = int(value) if value.isdigit() else ranks
    if ranks <= 1:
        return {}
    from audiotrain.distributed.local import _rank_blas_threads

    return {"OPENBLAS_NUM_THREADS": str(_rank_blas_threads(ranks))}


def _empty_hostfile(options: list[str]) -> str | None:
    """The ``--hostfile`` among the launcher's `options` when it is a JSON list with no host in it (else None:
    mlx.launch reads it, and says what is wrong with another)."""
    path = next(
        (
            arg.partition("=")[2] if arg.startswith("--hostfile=") else options[i + 1]
            for i, arg in enumerate(options)
            if arg.startswith("--hostfile=") or (arg == "--hostfile" and i + 1 < len(options))
        ),
        None,
    )
    if path is None:
        return None
    try:
        hosts = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return path if hosts == [] else None


#: How the launcher is called where the caller does not say (`launch`'s ``prog``).
LAUNCH_PROG = "python -m audiotrain launch"


def launch_help(prog: str = LAUNCH_PROG) -> str:
    """``launch --help``: a usage line, what the launcher does, and the options of ``mlx.launch`` it passes
    on (from ``mlx.launch --help``, so they are those of the mlx installed)."""
    summary, _, body = inspect.cleandoc(LAUNCH_DOC).partition("\n")
    summary = summary.partition("``: ")[2]  # (the first line names the command, as the usage line does)
    # The docstring's names of the code's constants, as a user reads them: their values, and the variable.
    for name, value in (
        (" (`_EndingWatch`)", ""),
        ("`STOP_GRACE_S`", f"{STOP_GRACE_S:.0f} s ({STOP_GRACE_ENV}=SECONDS sets another, 0: no limit)"),
        ("`ABORT_GRACE_S`", f"{ABORT_GRACE_S:.0f} s"),
        ("`RANK_ENDED_GRACE_S`", f"{RANK_ENDED_GRACE_S:.0f} s"),
        ("``", ""),
    ):
        body = body.replace(name, value)
    body = "\n\n".join(textwrap.fill(" ".join(part.split()), 110) for part in body.split("\n\n"))
    try:
        theirs = subprocess.run(
            [_mlx_launch(), "--help"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        ).stdout.splitlines()
        start = next(i for i, line in enumerate(theirs) if line.rstrip().endswith(("options:", "arguments:")))
        options = "\n".join(theirs[start + 1 :]).rstrip()
    except (OSError, subprocess.SubprocessError, StopIteration):
        options = "  (see mlx.launch --help)"
    return (
        f"usage: {prog} [mlx.launch options] -- command ...\n\n{summary}\n\n{body.strip()}\n\n"
        f"mlx.launch's options, passed on as they are:\n{options}\n"
    )


class _InLaunchTerms:
    """mlx.launch's own usage and error lines (a bad option value, no command), as the launcher's: the user
    typed `prog`, not mlx.launch. Called with each line of mlx.launch's stderr, returns what to show.
    With `plain`, mlx.launch's ``[INFO]``/``[WARN]``/``[ERROR]`` lines lose their colour codes (it writes
    them to a log file or a pipe as to a terminal)."""

    def __init__(self, prog: str, plain: bool = False) -> None:
        self.prog = prog
        self.plain = plain
        self._in_usage = False  # in the lines of mlx.launch's usage
        self._tags_owed: list[bytes] = []  # level tags of log lines whose message went on the next line

    def __call__(self, raw: bytes) -> bytes:
        if self.plain and b"\x1b[" in raw:
            return self._plain(raw)
        if raw.startswith(b"usage: mlx.launch"):
            self._in_usage = True
            return f"usage: {self.prog} [mlx.launch options] -- command ... (see --help)\n".encode()
        if self._in_usage and raw[:1] in (b" ", b"\t"):
            return b""
        self._in_usage = False
        if raw.startswith(b"mlx.launch: error: No script is provided"):
            return f"{_no_command(self.prog)}\n".encode()
        if raw.startswith(b"mlx.launch: error: "):
            return raw.replace(b"mlx.launch", self.prog.encode(), 1)
        return raw

    def _plain(self, raw: bytes) -> bytes:
        """A line with colour codes, without them. mlx.launch logs ``print("\\033[33m[WARN]", message,
        "\\033[0m")`` from a thread per rank, and print writes its arguments and separators one by one, so
        two ranks' lines can interleave at any write: ``<c>[WARN]<c>[WARN] message 0`` then `` message 1 <r>
        <r>``; both messages on the first line; ``<c>[WARN] message 1<c>[WARN] <r>`` then `` message 0 <r>``
        (each seen in CI or a full run under load); or a rank's own line written whole between a tag and
        its message (``<c>[WARN]last words``). Each message gets one tag, on a line of its own, in the order
        the messages came; a tag whose message is still to come waits for it."""
        text = _COLOUR_CODE.sub(b"", raw)
        before, *tagged = _LEVEL_TAG.split(text)
        tags, segments = tagged[0::2], tagged[1::2]
        if not text.strip():
            return b""  # what was left of a log line whose message went out with another
        if not tags and not self._tags_owed:
            return text  # a rank's own coloured line
        self._tags_owed += tags
        budget = len(self._tags_owed)
        pieces: list[tuple[bool, bytes]] = []  # (is a log message, text) in the order written

        def add_messages(segment: bytes) -> None:
            if segment.strip():
                found = _messages_in(segment.strip(), max(1, budget - sum(m for m, _ in pieces)))
                pieces.extend((True, message) for message in found)

        add_messages(before)
        # A rank writes its lines whole, so one written between a tag and its " " ends the line, with no
        # colour code of mlx.launch's after it; a tag glued to text followed by a reset is glued to a
        # message whose " " another rank's print wrote first.
        last_tag_end = [match.end() for match in _LEVEL_TAG.finditer(raw)][-1:]
        foreign_tail = bool(last_tag_end) and b"\x1b[" not in raw[last_tag_end[0] :]
        for index, segment in enumerate(segments):
            glued = segment.strip() and not segment[:1].isspace()
            if glued and foreign_tail and index == len(segments) - 1:
                pieces.append((False, segment.rstrip(b"\r\n")))
            else:
                add_messages(segment)
        out = []
        for is_message, piece in pieces:
            if is_message and self._tags_owed:
                piece = self._tags_owed.pop(0) + b" " + piece
            out.append(piece + b"\n")
        return b"".join(out)


def _lines_of(stream: Iterable[bytes]) -> Iterator[bytes]:
    """The lines of mlx.launch's stderr (`stream`, read line by line), each of its log lines written whole
    (`_whole_line_launch`) apart from the rank's line it landed in: a log line ends the line it landed in, so
    what came before it is a rank's line whose end is still to come, given when it has come."""
    unfinished = b""
    for raw in stream:
        log_line, unfinished = _cut_log_line(unfinished + raw)
        if log_line is not None:
            yield log_line
        else:
            yield unfinished
            unfinished = b""
    if unfinished:
        yield unfinished


def _whole_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The lines (each with its newline; the last one without, if it has none) of what came in `chunks`, as
    reading the stream line by line gives them: a chunk may end inside a line, or hold several."""
    pending: list[bytes] = []  # (the parts of a line still to be ended: joined once, however many)
    for chunk in chunks:
        *ended, tail = chunk.split(b"\n")
        for line in ended:
            yield b"".join([*pending, line, b"\n"])
            pending = []
        if tail:
            pending.append(tail)
    if pending:
        yield b"".join(pending)


def _cut_log_line(text: bytes) -> tuple[bytes | None, bytes]:
    """`text` (a line of mlx.launch's stderr, after what was left unfinished before it) as a log line of
    mlx.launch's written whole (`_whole_line_launch`) that ended it, and what came before that log line: a
    rank's line whose end is still to come (``last words<c>[WARN] Node with rank 0 ... <r>``); (None,
    `text`) where no whole log line ends it."""
    found = _WHOLE_LOG_LINE.search(text)
    if found is None:
        return None, text
    return text[found.start() :], text[: found.start()]


def _messages_in(text: bytes, at_most: int) -> list[bytes]:
    """`text` split into up to `at_most` log messages written into one line: where its first two words
    (``Node with``) begin again, as two ranks' messages of one kind do."""
    words = text.split(maxsplit=2)
    if at_most < 2 or len(words) < 3:
        return [text]
    # Where no " " came between them, the next message begins right after the last word of the one before.
    again = re.compile(rb"(?<=\S)\s*(?=" + re.escape(words[0] + b" " + words[1]) + rb"\s)")
    parts = again.split(text, maxsplit=at_most - 1)
    return [part.strip() for part in parts if part.strip()]


#: A terminal's colour code (SGR), as mlx.launch's log lines and a rank's coloured output hold them.
_COLOUR_CODE = re.compile(rb"\x1b\[[0-9;]*m")
#: One of mlx.launch's log lines written in one write (`_whole_line_launch`), at the end of a line read:
#: its colour, tag, a message with no colour code in it, a space, the reset and the newline.
_WHOLE_LOG_LINE = re.compile(rb"\x1b\[[0-9;]*m\[(?:INFO|WARN|ERROR)\] [^\x1b]*? \x1b\[0m\n\Z")
#: One of mlx.launch's log level tags, anywhere in a line (split keeps it).
_LEVEL_TAG = re.compile(rb"(\[(?:INFO|WARN|ERROR)\])")


def plain_output() -> bool:
    """No colour codes: stderr is no terminal (a log file, a pipe), or ``NO_COLOR`` is set (no-color.org)."""
    return bool(os.environ.get("NO_COLOR")) or sys.stderr is None or not sys.stderr.isatty()


def _no_command(prog: str) -> str:
    return (
        f"{prog}: error: no command to launch: give it after the options, as {prog} -n 2 -- python train.py"
    )


def _launched_job_variables() -> list[str]:
    """``NAME=value`` of the variables that make this process a rank of a running job: mlx.launch's rank with
    its hostfile (one that is gone is left over from an ended job, which mlx.launch's own replace), or a job
    of several processes per ``mpirun`` (`local.launcher_processes`). Empty outside a job."""
    from audiotrain.distributed.local import launcher_processes

    found = []
    hostfile = os.environ.get("MLX_HOSTFILE")
    if "MLX_RANK" in os.environ and hostfile and Path(hostfile).is_file():
        found += [f"MLX_RANK={os.environ['MLX_RANK']}", f"MLX_HOSTFILE={hostfile}"]
    several = launcher_processes()
    if several is not None and several[0] != "MLX_WORLD_SIZE":
        found.append(f"{several[0]}={several[1]}")
    return found


#: `launch`'s docstring and the body of `launch --help`: a string of its own, which `python -OO` (it
#: strips docstrings) keeps.
LAUNCH_DOC = """\
``python -m audiotrain launch [mlx.launch options] -- command ...``: mlx.launch with a real exit code.

Runs ``mlx.launch`` with the same arguments (``-n``, ``--hosts``, ``--hostfile``, ``--backend``, ...),
passes its output through, and reads its per-rank reports on stderr (shown after the ranks' output,
without colour codes where stderr is not a terminal or NO_COLOR is set). Returns mlx.launch's status if
it failed itself, else 1 when any rank exited non-zero or was killed, else 0; before returning non-zero
it prints which rank failed first (from the ``audiotrain: rank N failed`` lines, else the order the ranks
ended) and every rank's status.
On this machine alone (no ``--hosts``, ``--hostfile``) each of the ``-n`` ranks gets its share of the
cores as ``OPENBLAS_NUM_THREADS``, unless it or ``OMP_NUM_THREADS`` is set.
With ``--backend mpi`` mlx.launch reports nothing per rank: run ``mpirun`` directly, whose status is
non-zero when a rank fails.

Ctrl-C (SIGINT) and SIGTERM reach the ranks on this machine as Ctrl-C would reach a script run alone: the
first asks them to stop together and save, the second aborts them, a third ends the job. The launcher
then waits for the ranks, passes on what they print, and returns 128 + the first signal (130 for Ctrl-C,
143 for SIGTERM). The wait is bounded (`_EndingWatch`): ranks that have not stopped `STOP_GRACE_S` after
the first signal are aborted, and ranks still running `ABORT_GRACE_S` after an abort, or
`RANK_ENDED_GRACE_S` after another rank ended with an error, are killed.

Without a command (nothing after ``--``) it prints its usage and exits 2; mlx.launch's own usage and
error lines (a bad option value) are shown under the launcher's name.
"""


def launch(argv: list[str], prog: str = LAUNCH_PROG) -> int:
    if argv in (["-h"], ["--help"]):
        print(launch_help(prog))
        return 0
    if not argv or argv[-1] == "--":
        print(f"usage: {prog} [mlx.launch options] -- command ...", file=sys.stderr)
        print(_no_command(prog), file=sys.stderr)
        return 2
    unknown = _unknown_options(launcher_options(argv) or [])
    if unknown:  # (mlx.launch would take it for the command: "exec: --: invalid option", a rank's exit 2)
        print(
            f"error: {prog}: unrecognized launcher option {unknown}; see {prog} --help for mlx.launch's options",
            file=sys.stderr,
        )
        return 2
    command = argv[argv.index("--") + 1 :] if "--" in argv else []
    if command and command[0].startswith("-"):  # (mlx.launch runs "exec -m ...": "exec: -m: invalid option")
        print(
            f"error: {prog}: the command starts with the option {command[0]}; give the interpreter first, "
            f"as in {prog} -n 2 -- python {command[0]} ...",
            file=sys.stderr,
        )
        return 2
    empty = _empty_hostfile(launcher_options(argv) or [])
    if empty is not None:  # (mlx.launch starts no rank for it, and ends with status 0)
        print(
            f"error: {prog}: --hostfile {empty} lists no hosts; expected a JSON list of hosts",
            file=sys.stderr,
        )
        return 2
    inside = _launched_job_variables()
    if inside:
        print(
            f"error: {prog} in a process that is already a rank of a launched job ({', '.join(inside)}): "
            "it would start a separate job of its own, writing the same files; run the command without it (every "
            "rank of the outer launch runs it), or unset these variables if they are left over from an earlier job",
            file=sys.stderr,
        )
        return 2
    from audiotrain.distributed._whole_line_launch import TEMP_FOLDER_ENV
    from audiotrain.distributed.launcher_watch import watch_over
    from audiotrain.distributed.local import (
        JOB_FOLDER_ENV,
        LAUNCH_OPTIONS_ENV,
        _chunks_read,
        forwarding_ctrl_c,
        new_job_folder,
        start_in_own_session,
        write_down_stop,
    )

    exit_codes: dict[int, int | None] = {}
    ended_before_any_kill: set[int] = set()  # (a SIGKILL's status there is not the launcher's)
    failures: dict[int, str] = {}
    error_lines: list[str] = []  # the ranks' "error: ..." lines (a recipe's user errors)
    exception_lines: list[str] = []  # the last lines of the ranks' tracebacks
    in_traceback = False
    proc: subprocess.Popen | None = None
    watch: _EndingWatch | None = None

    def send(signum: int) -> None:
        # mlx.launch ignores SIGUSR1 and passes nothing on, so the stand-in for Ctrl-C goes to the ranks it
        # started on this machine, its children: not to its process group, where the C++ compiler a rank's
        # MLX may be running would die of it. SIGTERM goes to the group: mlx.launch and all it started.
        if proc is None or proc.poll() is not None:
            return
        if watch is not None:  # (the first stand-in asks to stop; any signal after it aborts)
            if signum == signal.SIGTERM or watch.stopped_at is not None:
                watch.note_abort()
            else:
                watch.note_stop()
        if signum == signal.SIGTERM:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signum)
            return
        for child in _children(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    def write_down(signum: int) -> None:
        if folder is not None:
            write_down_stop(folder, signum)

    # Each stop signal is written down in the job folder before its stand-in is sent: the ranks on this
    # machine read there which one it was (SIGTERM, not Ctrl-C) for their messages and exit status.
    with new_job_folder() as folder, forwarding_ctrl_c(send, write_down) as heard:
        if not _names_hosts(launcher_options(argv) or []):
            # Another user's /tmp/mlx: the ranks on this machine inherit this user's own kernel folder
            # (TMPDIR), said once here; other hosts decide for themselves (each rank's Trainer looks there).
            from audiotrain._system import use_own_kernel_folder

            use_own_kernel_folder(lambda line: print(line, file=sys.stderr, flush=True))
        # The ranks' resume commands repeat the launcher's options (`local.relaunch_prefix`).
        env = {**os.environ, LAUNCH_OPTIONS_ENV: json.dumps(launcher_options(argv))}
        env.update(_local_blas_threads(launcher_options(argv) or []))
        if folder is not None:
            env[JOB_FOLDER_ENV] = str(folder)
            env[TEMP_FOLDER_ENV] = str(
                folder
            )  # (mlx.launch's hostfiles: removed with it, `_whole_line_launch`)
        # stdin: a pipe never written to; mlx.launch polls its stdin, and /dev/null would make it spin.
        proc = start_in_own_session(
            [*_mlx_launch_command(), *argv],
            env,
            ignore=[signal.SIGUSR1],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        death_watch = watch_over(proc)  # (no process of the job outlives this one, however it ends)
        assert proc.stderr is not None
        # However the ranks end, or do not: the job's end is bounded (`_EndingWatch`).
        watch = _EndingWatch(proc, abort=lambda: send(signal.SIGUSR1), stop_grace=_stop_grace())
        if heard():  # (a stop heard before mlx.launch started: the ranks find it written down)
            watch.note_stop()
        try:
            # Read to the end, Ctrl-C or not: the ranks' last words ("Saved ... Resume with ...") come after it.
            in_launch_terms = _InLaunchTerms(prog, plain_output())
            exit_reports: list[bytes] = []

            def take(raw: bytes) -> None:
                nonlocal in_traceback
                line = raw.decode(errors="replace")
                watch.note_line(line)
                # (two ranks' reports may come written into one line: each is read)
                if reports := list(_NODE.finditer(line)):
                    for m in reports:
                        exit_codes[int(m.group(1))] = None if m.group(2) is None else int(m.group(2))
                        if watch.killed_at is None:
                            ended_before_any_kill.add(int(m.group(1)))
                    # mlx.launch reports a rank's exit before it passes on the rank's last output: shown
                    # after that output, before the summary.
                    exit_reports.append(in_launch_terms(raw))
                    return
                write_whole(sys.stderr.buffer, in_launch_terms(raw))
                sys.stderr.buffer.flush()
                if m := _FAILED.search(line):
                    failures.setdefault(int(m.group(1)), m.group(2).strip())
                elif line.startswith("error: ") or _USAGE_ERROR.match(line) or _INTERPRETER_ERROR.match(line):
                    error_lines.append(line.strip())
                elif line.startswith("Traceback (most recent call last):"):
                    in_traceback = True
                elif in_traceback and not line[:1].isspace() and _EXCEPTION_LINE.fullmatch(line.strip()):
                    exception_lines.append(line.strip())
                    in_traceback = False

            with watch:
                # (read as `local._chunks_read` reads: a stop signal another thread got is acted on at once)
                for raw in _lines_of(_whole_lines(_chunks_read(proc.stderr.fileno()))):
                    take(raw)
                status = proc.wait()
            write_whole(sys.stderr.buffer, b"".join(exit_reports))
            sys.stderr.buffer.flush()
        except BaseException:
            send(signal.SIGTERM)  # no rank outlives the launcher
            raise
        finally:
            death_watch.close()
            if proc.stdin is not None:
                proc.stdin.close()
            # Once mlx.launch has ended (left open, its pipe was a ResourceWarning under `python -X dev`);
            # while it runs, its last words still reach it, not a closed pipe.
            if proc.stderr is not None and proc.poll() is not None:
                proc.stderr.close()
    # The ranks the launcher killed, as mlx.launch reported them (SIGKILL's status); not a rank reported
    # before the launcher killed any (the OOM killer's or a `kill -9`: where the job broke).
    killed = (
        {r for r, c in exit_codes.items() if c == -signal.SIGKILL and r not in ended_before_any_kill}
        if watch.killed_at is not None
        else set()
    )
    if exit_codes or failures:
        stop = heard()[0] if heard() else None  # (the ranks stopped on it: not an error)
        for line in summarize(exit_codes, failures, error_lines, exception_lines, killed, stop):
            print(line, file=sys.stderr, flush=True)
    if heard():
        return 128 + heard()[0]  # as a shell reports a command that signal stopped (130 for Ctrl-C)
    if status == 0 and not exit_codes and not failures:
        return 0
    return status or 1


launch.__doc__ = LAUNCH_DOC


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid`: from /proc on Linux, else ``pgrep -P``."""
    if not (PROC / "self" / "stat").is_file():
        found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        return [int(word) for word in found.split()]
    return [child for child, fields in _process_stats() if len(fields) > 1 and fields[1] == str(pid)]


def main(argv: list[str] | None = None) -> int:
    return launch(sys.argv[1:] if argv is None else list(argv))


if (
    __name__ == "__main__"
):  # python -m audiotrain.distributed.failures ... (same as `python -m audiotrain launch`)
    sys.exit(main())
