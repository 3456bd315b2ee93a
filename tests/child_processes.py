"""The environment of the Python processes tests start, so that they import this checkout's audiotrain.

A child given only ``tests/`` on ``PYTHONPATH``, or nothing, imports the installed audiotrain, which in a
second worktree (or a developer's second clone) is the editable install of another checkout: the test then
checks code other than the code under test (a mutation sweep in a worktree saw mutants survive that way).
conftest.py puts `REPO` first on this process's ``PYTHONPATH``, so that a child started with the default
environment, or a copy of ``os.environ``, gets it too; `child_env` is for a test that builds its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"


def checkout_first(pythonpath: str | None, *first: str | Path) -> str:
    """``pythonpath`` with this checkout (then ``first``) in front, each once, keeping the rest in order."""
    front = [str(REPO), *map(str, first)]
    rest = [p for p in (pythonpath or "").split(os.pathsep) if p and p not in front]
    return os.pathsep.join(front + rest)


def child_env(extra: dict[str, str] | None = None, *, tests: bool = False) -> dict[str, str]:
    """This process's environment with this checkout first on ``PYTHONPATH`` (then ``tests/``, for the
    tests' helper modules, if ``tests``), and ``extra`` on top."""
    env = dict(os.environ)
    env["PYTHONPATH"] = checkout_first(env.get("PYTHONPATH"), *([TESTS] if tests else []))
    env.update(extra or {})
    return env


def run_as_main(
    module: str, argv: list[str], heavy: tuple[str, ...], *, cwd: str | Path | None = None, extra_env=None
) -> tuple[subprocess.CompletedProcess, object, list[str]]:
    """`python -m MODULE ARGV` in a new process (through runpy, as ``-m`` runs it), for what a command costs
    before it does its work: the completed process, the command's exit status (its SystemExit's code, 0
    without one) and the modules it imported whose names start with one of ``heavy``, sorted. The two are
    the last line of its stderr; its stdout is the command's own."""
    code = (
        f"import json, runpy, sys\nsys.argv = [{module!r}, *{argv!r}]\nstatus = 0\n"
        f"try:\n    runpy.run_module({module!r}, run_name='__main__')\n"
        "except SystemExit as stop:\n    status = stop.code\n"
        f"loaded = sorted(m for m in sys.modules if m.startswith({tuple(heavy)!r}))\n"
        "print(json.dumps([status, loaded]), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=child_env(extra_env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = done.stderr.splitlines()
    assert lines, f"python -m {module} {' '.join(argv)} printed nothing on stderr (status {done.returncode})"
    status, loaded = json.loads(lines[-1])
    return done, status, loaded
