"""Commands in environments unlike a developer's: closed descriptors, no home, a deleted current folder,
paths that are not UTF-8, a log reader that goes away, `-W error`, ``TERM=dumb``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _env(**changes: str | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run_shell(line: str, cwd: Path | None = None, **env: str | None) -> subprocess.CompletedProcess:
    """`line` run by sh, with ``$PY`` the test's Python: redirections such as ``>&-`` are the shell's."""
    return subprocess.run(
        ["sh", "-c", line],
        cwd=cwd or REPO,
        env={**_env(**env), "PY": sys.executable},
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.parametrize(
    "command",
    [
        "-m audiotrain info",
        "-m audiotrain.recipes.chords --help",
        "-m audiotrain.recipes.clap --help",
    ],
)
def test_a_command_with_stdout_closed_ends_with_its_own_status(command: str):
    """A cron job or a daemon may run a command with no stdout (`>&-`): Python's `sys.stdout` is then None.
    The command does its work and exits 0, not in an AttributeError from flushing a stream that is not."""
    out = run_shell(f'"$PY" {command} >&-')
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
