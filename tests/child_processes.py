"""The environment of the Python processes tests start, so that they import this checkout's audiotrain.

A child given only ``tests/`` on ``PYTHONPATH``, or nothing, imports the installed audiotrain, which in a
second worktree (or a developer's second clone) is the editable install of another checkout: the test then
checks code other than the code under test (a mutation sweep in a worktree saw mutants survive that way).
conftest.py puts `REPO` first on this process's ``PYTHONPATH``, so that a child started with the default
environment, or a copy of ``os.environ``, gets it too; `child_env` is for a test that builds its own.
"""

from __future__ import annotations

import os
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
