"""A kernel compile that MLX's temporary folder broke, outside `Trainer.fit` (predict, evaluate, a score
before training), is one line naming TMPDIR, not MLX's raw 25-50 line error; so is a Ctrl-C that no command
handles itself."""

import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

MLX_SAYS = (
    "[Compile::eval_cpu] Failed to compile function Ci4IBroadcastBDi4OMaximumAC_V: Failed to execute command "
    'with return code 1: "g++ -std=c++17 -O3 ..." /tmp/full/ccSPP64z.s: Fatal error: can\'t write 47 bytes to '
    "section .text: 'No space left on device'"
)


def run_command(tmp_path, body: str, before: str = "") -> subprocess.CompletedProcess:
    """Run `body` as a recipe's command (its ``main()``), after `before` (code run first)."""
    (tmp_path / "failing_cli.py").write_text(f"def main():\n    {body}\n")
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, TMPDIR=str(tmp_path))
    env["PYTHONPATH"] = os.pathsep.join([str(repo), str(tmp_path), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [
            sys.executable,
            "-c",
            f"{before}\nfrom audiotrain._system import run_recipe_command as run; run('failing_cli')",
        ],
        env=env,
        capture_output=True,
        text=True,
        # SIGINT at its default, as in a terminal (a test run from a background job inherits it ignored)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
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


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGUSR1], ids=["SIGINT", "SIGTERM", "SIGUSR1"]
)
def test_a_stop_signal_as_the_command_sets_up_is_one_line_and_its_status(tmp_path, signum):
    """Ctrl-C in the first half second of a recipe's command, as mlx and the modules it needs loaded before
    the command's own handling, printed a KeyboardInterrupt traceback (status -2); SIGTERM there ended it
    without a word (-15), and so did SIGUSR1 (``sbatch --signal=USR1@120`` as a job starts: -10, an empty
    log), which stops a fit as SIGTERM does."""
    loading = (  # in mlx's import, the first thing the command does
        "import signal, audiotrain._system as s\n"
        f"s.exit_unless_mlx_loads = lambda: signal.raise_signal({signum})"
    )
    done = run_command(tmp_path, "return 0", before=loading)
    name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
    assert done.returncode == 128 + signum and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip() == f"interrupted ({name})"


def test_sigterm_between_a_commands_stages_stops_it_as_ctrl_c_does(tmp_path):
    """Where no stage of the command handles it, SIGTERM is the KeyboardInterrupt Ctrl-C is there."""
    done = run_command(tmp_path, "import signal; signal.raise_signal(signal.SIGTERM); return 0")
    assert done.returncode == 143 and done.stderr.strip() == "interrupted (SIGTERM)", done.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_signal_after_a_stopped_commands_last_line_keeps_its_status(tmp_path, signum):
    """A second Ctrl-C (or a SIGTERM) as a stopped command ended (its cleanup, Python's exit) ended it by
    the signal (status -2, -15) or with a traceback, not with the status 130 its last line went with."""
    at_exit = f"import atexit, os; atexit.register(os.kill, os.getpid(), {signum}); return 130"
    done = run_command(tmp_path, at_exit)
    assert done.returncode == 130 and done.stderr == "", done.stderr


@pytest.mark.parametrize(
    "cause, fix",
    [
        ("No space left on device", "free space there"),
        ("Disk quota exceeded", "free space there"),
        ("Read-only file system", "set TMPDIR to a folder you can write to"),
    ],
)
def test_a_kernel_compile_error_says_to_free_space_only_where_space_ran_out(cause, fix):
    from audiotrain._system import kernel_compile_error

    error = kernel_compile_error(RuntimeError(MLX_SAYS.replace("No space left on device", cause)))
    assert f"({cause}); {fix}" in str(error)


def test_a_step_whose_kernel_mlx_could_not_load_is_evaluated_again_and_a_full_tmpdir_is_one_error(
    monkeypatch,
):
    """What the Trainer's steps go through (`eval_compiling_again`): a kernel MLX could not load (a compiler a
    Ctrl-C ended, a broken file in its cache) is compiled again with a warning, none where a stop ended that
    compiler (its message is out); a compile a full TMPDIR broke is one error naming it, raised from None."""
    from audiotrain import _system
    from audiotrain._system import KernelCompileError
    from audiotrain.train.interrupt import eval_compiling_again, stop_on_signals

    monkeypatch.setattr(_system, "remove_broken_kernels", lambda: [])  # (MLX's real cache is left alone)
    calls = []

    def fails_once(arrays):
        calls.append(arrays)
        if len(calls) == 1:
            raise RuntimeError("[load] Could not load C++ shared library /tmp/mlx/x.so")

    with pytest.warns(RuntimeWarning, match="could not load a kernel it compiled.*compiling it again"):
        eval_compiling_again(fails_once, "step")
    assert calls == ["step", "step"]

    calls.clear()
    with stop_on_signals(lambda signum: False):
        os.kill(os.getpid(), signal.SIGINT)  # a first Ctrl-C: the run stops after this step
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            eval_compiling_again(fails_once, "step")
    assert calls == ["step", "step"]

    def full_tmpdir(arrays):
        raise RuntimeError(MLX_SAYS)

    with pytest.raises(KernelCompileError, match="TMPDIR") as raised:
        eval_compiling_again(full_tmpdir, "step")
    assert raised.value.__suppress_context__


# A `ulimit -v` high enough for the test process, set in the command before its error.
UNDER_ULIMIT_V = "import resource; resource.setrlimit(resource.RLIMIT_AS, (64 << 30, resource.RLIM_INFINITY))"


@pytest.mark.parametrize(
    "raised, what",
    [
        (
            "ImportError('/venv/scipy/linalg/_x.so: failed to map segment from shared object', "
            "name='scipy.linalg._x')",
            "loading scipy.linalg._x",
        ),
        ("RuntimeError('Resource temporarily unavailable')", "in MLX"),
        ("MemoryError()", "allocating memory"),
    ],
)
def test_a_memory_limit_hit_as_a_command_loads_is_one_line_naming_ulimit_v(tmp_path, raised, what):
    """Under `ulimit -v 300000` `python -m audiotrain.recipes.chords --preset quick_test` ended in a 30-line
    traceback, scipy's ImportError 'failed to map segment from shared object' (at 400 MB MLX's RuntimeError
    'Resource temporarily unavailable'), which named neither the limit nor what to do."""
    done = run_command(tmp_path, f"raise {raised}", before=UNDER_ULIMIT_V)
    assert "Traceback" not in done.stderr and done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    said = f"error: out of memory {what}: this process's ulimit -v 68.72 GB leaves too little"
    assert line.startswith(said)
    assert "ulimit -v unlimited" in line and "cgroup" in line


def test_the_same_errors_without_a_memory_limit_keep_their_traceback(tmp_path):
    done = run_command(tmp_path, "raise ImportError('x.so: failed to map segment from shared object')")
    assert "Traceback" in done.stderr and done.returncode == 1


def test_a_model_too_big_for_the_memory_limit_is_refused_in_one_line(tmp_path):
    """`--model.d_model 1024 --model.ff_dim 8192 --model.n_layers 8` under `ulimit -v 3000000` ended in a
    traceback above fit's own refusal (TrainingMemoryError), which README promises as a refusal."""
    refusal = "Trainer.fit: training ChordTask needs at least 2.7 GB, more than the 2.6 GB left"
    done = run_command(
        tmp_path,
        f"from audiotrain.train.memory import TrainingMemoryError; raise TrainingMemoryError({refusal!r})",
        before=UNDER_ULIMIT_V,
    )
    assert "Traceback" not in done.stderr and done.returncode == 1
    assert done.stderr.strip() == f"error: {refusal}"


@pytest.mark.parametrize(
    "raised",
    ["MemoryError('my cache is over budget')", "__import__('numpy').empty((10**7, 10**7))"],
)
def test_a_memory_error_of_a_bug_without_a_memory_limit_keeps_its_traceback(tmp_path, raised):
    """Any MemoryError with words of its own, numpy's 'Unable to allocate 728. TiB for an array with shape
    (10000000, 10000000)' from a shape gone wrong or a user's own, was said as one 'error: ...' line with no
    traceback and no limit set: the line that made it was lost. Only fit's refusal says its own words."""
    done = run_command(tmp_path, raised if raised.startswith("__") else f"raise {raised}")
    assert "Traceback" in done.stderr and done.returncode == 1


def test_a_memory_error_under_a_limit_keeps_its_own_words_beside_the_limit(tmp_path):
    done = run_command(tmp_path, "__import__('numpy').empty((10**7, 10**7))", before=UNDER_ULIMIT_V)
    assert "Traceback" not in done.stderr and done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: out of memory allocating memory (Unable to allocate 728. TiB for an array")
    assert "this process's ulimit -v 68.72 GB leaves too little" in line


def test_audiotrain_traceback_keeps_the_traceback_of_mlx_out_of_memory_under_a_limit(tmp_path):
    """AUDIOTRAIN_TRACEBACK=1 showed the traceback of a loader's or an allocation's MemoryError under a
    ulimit -v, but MLX's RuntimeError 'Resource temporarily unavailable' was still said in one line."""
    before = f"import os; os.environ['AUDIOTRAIN_TRACEBACK'] = '1'; {UNDER_ULIMIT_V}"
    done = run_command(tmp_path, "raise RuntimeError('Resource temporarily unavailable')", before=before)
    assert "Traceback" in done.stderr and done.returncode == 1
