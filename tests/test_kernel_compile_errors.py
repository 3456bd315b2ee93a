"""A kernel compile that MLX's temporary folder broke, outside `Trainer.fit` (predict, evaluate, a score
before training), is one line naming TMPDIR, not MLX's raw 25-50 line error; so is a Ctrl-C that no command
handles itself."""

import os
import subprocess
import sys
from pathlib import Path

MLX_SAYS = (
    "[Compile::eval_cpu] Failed to compile function Ci4IBroadcastBDi4OMaximumAC_V: Failed to execute command "
    'with return code 1: "g++ -std=c++17 -O3 ..." /tmp/full/ccSPP64z.s: Fatal error: can\'t write 47 bytes to '
    "section .text: 'No space left on device'"
)


def run_command(tmp_path, body: str) -> subprocess.CompletedProcess:
    (tmp_path / "failing_cli.py").write_text(f"def main():\n    {body}\n")
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, TMPDIR=str(tmp_path))
    env["PYTHONPATH"] = os.pathsep.join([str(repo), str(tmp_path), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from audiotrain._system import run_recipe_command as run; run('failing_cli')",
        ],
        env=env,
        capture_output=True,
        text=True,
    )


def test_a_kernel_compile_that_a_full_tmpdir_broke_is_one_line_naming_tmpdir(tmp_path):
    done = run_command(tmp_path, f"raise RuntimeError({MLX_SAYS!r})")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: TMPDIR={tmp_path}") and "No space left on device" in line


def test_other_runtime_errors_keep_their_traceback(tmp_path):
    done = run_command(tmp_path, "raise RuntimeError('something else')")
    assert done.returncode == 1 and "Traceback" in done.stderr and "something else" in done.stderr


def test_a_ctrl_c_no_command_handles_is_one_line_and_status_130(tmp_path):
    """Ctrl-C in the second a recipe's modules load (before predict's own handling) printed a 40-line
    KeyboardInterrupt traceback, exit status -2."""
    done = run_command(tmp_path, "raise KeyboardInterrupt")
    assert done.returncode == 130 and "Traceback" not in done.stderr
    assert done.stderr.strip() == "interrupted (Ctrl-C)"


def test_a_save_that_a_second_stop_signal_aborted_keeps_its_exit_status_and_says_nothing_more(tmp_path):
    """fit's SaveAborted is a KeyboardInterrupt too: the recipes' commands took it for a Ctrl-C nothing
    handled, added "interrupted (Ctrl-C)" under fit's own line and exited 130 after SIGTERM (143)."""
    done = run_command(tmp_path, "from audiotrain.train.interrupt import SaveAborted; raise SaveAborted(143)")
    assert done.returncode == 143 and "Traceback" not in done.stderr
    assert "interrupted" not in done.stderr
