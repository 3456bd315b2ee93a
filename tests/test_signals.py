"""Signals a run meets besides a plain Ctrl-C: the C++ compiler MLX runs when the Ctrl-C lands, SIGTERM and
SIGUSR1 (``timeout``, a cluster's time limit or preemption), the launchers that pass them on, and a second
Ctrl-C during the save. Each scenario runs in a process of its own that prints a line when it is ready for
the signal, so the tests wait for that line rather than for a time."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from child_processes import child_env

from tests import deadlines

# Tests that start a job of processes or a launcher, or signal this process itself, are marked serial:
# with -n, no other test runs beside them (tests/conftest.py). A fit in a process of its own, signalled once
# it said it is ready (or signalling itself), needs no mark.

HERE = Path(__file__).parent
REPO = HERE.parent


def _env(**extra: str) -> dict[str, str]:
    env = child_env(extra, tests=True)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def _default_sigint() -> None:
    """In a child before exec: SIGINT at its default, as in a terminal (a test run from a script's background
    job inherits it ignored, and a launcher keeps a signal it was started ignoring ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(args: list[str], cwd: Path, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=cwd,
        env=popen.pop("env", _env()),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_default_sigint,
        **popen,
    )


def _wait_for(proc: subprocess.Popen, marker: str, count: int = 1, seconds: float = 120) -> list[str]:
    """The lines `proc` printed up to the `count`-th `marker` (the test fails if it ends first, or prints
    nothing more for `seconds`: a child stuck before its marker held the test run, reading its pipe, with no
    word). Counted in the text, not by line: processes that share the pipe, under PYTHONUNBUFFERED, write a
    line's text and its end apart, and two markers can end up on one line. Each line is read with a deadline
    of its own (`deadlines.read_line`): killing `proc` alone did not end a readline while a process it
    started (a data worker, a compiler) held the pipe open."""
    lines, seen = [], 0
    while True:
        said = "".join(lines)[-3000:]
        line = deadlines.read_line(proc, f"{marker!r} (no line came)", seconds, said=said)
        if not line:
            break
        lines.append(line)
        seen += line.count(marker)
        if seen >= count:
            return lines
    deadlines.wait(proc, f"the run to end, its output closed before {marker!r}", 60)
    raise AssertionError(f"ended (status {proc.returncode}) before {marker!r}:\n{''.join(lines)[-3000:]}")


def _finish(proc: subprocess.Popen, before: list[str], timeout: float = 240) -> str:
    try:
        said = "".join(before)[-3000:]
        rest = deadlines.communicate(proc, "the run to end, its output closed", timeout, said=said)[0]
    finally:
        deadlines.stop(proc)
    return "".join(before) + rest


# ---- Ctrl-C while MLX compiles a kernel ----------------------------------------------------------------------

# In place of g++: the first compile is ended as a terminal's Ctrl-C ends it (SIGINT to the whole process
# group, the training process included), after leaving an empty output file as a linker cut short does.
# Every later compile is the real compiler's.
FAKE_COMPILER = """#!/bin/sh
case "$*" in
*-shared*)
  if mkdir "{fired}" 2>/dev/null; then
    prev=; for arg in "$@"; do [ "$prev" = -o ] && : > "$arg"; prev=$arg; done
    kill -INT 0
    sleep 5
  fi ;;
esac
exec {compiler} "$@"
"""

COMPILE_SCRIPT = """
import json, sys
import audiotrain
from audiotrain import Trainer, seed_everything
from tasks import TinyClassifier, make_batches, weights

class Scaled(TinyClassifier):
    def __call__(self, x):
        return super().__call__(x) * 0.987654321  # a constant no kernel in the cache was compiled for

def fit(root, ckpt_path=None):
    seed_everything(0)
    module = Scaled()
    trainer = Trainer(max_epochs=2, default_root_dir=root, enable_progress_bar=False, seed=1)
    trainer.fit(module, make_batches(), ckpt_path=ckpt_path)
    return trainer, module

stopped, _ = fit("a")
print("STOPPED", json.dumps([stopped.interrupted, stopped.global_step]), flush=True)
resumed, module = fit("a", stopped.interrupted_checkpoint)
_, straight = fit("b")
same = all((weights(module)[k] == v).all() for k, v in weights(straight).items())
print("RESUMED", json.dumps([resumed.global_step, bool(same)]), flush=True)
"""


def test_ctrl_c_while_mlx_compiles_a_kernel_stops_after_that_step_and_leaves_no_broken_kernel(tmp_path):
    """A terminal's Ctrl-C reaches MLX's compiler too. MLX took the killed compiler for a finished one: the run
    ended with "RuntimeError: Could not load C++ shared library ...", nothing saved, and the empty file it
    moved into its kernel cache failed every later run that needed that kernel ("file too short")."""
    from audiotrain._system import mlx_kernel_cache

    import mlx.core as mx

    compiler = shutil.which("g++")
    if compiler is None or mx.default_device() != mx.cpu:
        pytest.skip("MLX compiles no CPU kernels for training here (no g++, or training on a GPU)")

    # A kernel cache of its own, holding the kernels this machine compiled already (links): only the
    # model's own kernels are compiled, and nothing is ever interrupted in the shared cache.
    cache = tmp_path / "tmp" / "mlx" / mx.__version__ / "cpu"
    cache.mkdir(parents=True)
    for kernel in mlx_kernel_cache().glob("lib*.so") if mlx_kernel_cache().is_dir() else ():
        (cache / kernel.name).symlink_to(kernel)
    fake = tmp_path / "bin" / "g++"
    fake.parent.mkdir()
    fake.write_text(FAKE_COMPILER.format(fired=tmp_path / "fired", compiler=compiler))
    fake.chmod(0o755)
    env = _env(TMPDIR=str(tmp_path / "tmp"), PATH=f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "run.py").write_text(COMPILE_SCRIPT)
    done = subprocess.run(
        [sys.executable, "run.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    out = done.stdout + done.stderr
    assert (tmp_path / "fired").is_dir(), out  # a compile was ended
    assert done.returncode == 0 and "RuntimeError" not in out, out[-3000:]
    assert "Interrupted: saving a checkpoint after this step" in out
    (stopped,) = [json.loads(line.split(" ", 1)[1]) for line in done.stdout.splitlines() if "STOPPED" in line]
    assert stopped == [True, 1]  # stopped as for any Ctrl-C, after the step whose kernel was being compiled
    assert (tmp_path / "a" / "checkpoints" / "interrupted" / "model.safetensors").is_file()
    (resumed,) = [json.loads(line.split(" ", 1)[1]) for line in done.stdout.splitlines() if "RESUMED" in line]
    assert resumed == [12, True]  # the resumed run ends where a straight one does, with the same weights
    assert [p.name for p in cache.glob("lib*.so") if p.stat().st_size == 0] == []


def test_a_broken_kernel_in_mlxs_cache_is_removed_when_a_command_starts(tmp_path, monkeypatch):
    """A kernel file an interrupted compile left empty or cut short failed every later run that needed it;
    the check at a recipe's start removes it (MLX compiles it again) and says so."""
    from audiotrain._system import mlx_kernel_cache
    from audiotrain.recipes._run import check_kernel_cache

    import mlx.core as mx

    fused = mx.compile(lambda x: mx.exp(x) * 3.25 + x)  # at least one compiled kernel in the cache
    with mx.stream(mx.cpu):
        mx.eval(fused(mx.ones(4)))
    kernels = list(mlx_kernel_cache().glob("lib*.so")) if mlx_kernel_cache().is_dir() else []
    if not kernels:
        pytest.skip("MLX compiled no CPU kernel here (no g++?)")
    real = max(kernels, key=lambda p: p.stat().st_mtime)
    for name in ("TMP", "TEMP", "TEMPDIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    cache = mlx_kernel_cache()
    cache.mkdir(parents=True)
    data = real.read_bytes()
    (cache / "libgood.so").write_bytes(data)
    (cache / "libempty.so").write_bytes(b"")
    (cache / "libcut.so").write_bytes(data[: len(data) // 2])
    (cache / "tmp_1234abcd.so").write_bytes(b"")  # another process's compile, still being written
    said: list[str] = []
    check_kernel_cache(on_cpu=True, log=said.append)
    assert sorted(p.name for p in cache.iterdir()) == ["libgood.so", "tmp_1234abcd.so"]
    (line,) = said
    assert line.startswith(f"removed 2 broken kernel file(s) from {cache}") and "libempty.so" in line
    check_kernel_cache(on_cpu=True, log=said.append)
    assert len(said) == 1  # nothing more to say


# ---- SIGTERM and SIGUSR1 -------------------------------------------------------------------------------------

#: A TinyClassifier that says READY at step 3 and takes 50 ms a step (a signal lands mid-training).
SLOW_MODULE = """
class Slow(TinyClassifier):
    def on_train_batch_end(self, outputs, batch, batch_idx):
        if self.global_step == 3:
            print("READY", flush=True)
        time.sleep(0.05)
"""

FIT_SCRIPT = f"""
import sys, time
import audiotrain
from audiotrain import Trainer
from tasks import TinyClassifier, make_batches
{SLOW_MODULE}
t = Trainer(max_epochs=1000, default_root_dir=".", enable_progress_bar=False, compile=False)
t.fit(Slow(), make_batches())
print("RETURNED", t.interrupted, t.global_step, flush=True)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1], ids=["SIGTERM", "SIGUSR1"])
def test_sigterm_and_sigusr1_stop_a_fit_as_ctrl_c_does(tmp_path, signum):
    """`timeout`, a cluster's time limit, preemption or scancel send SIGTERM (`sbatch --signal` SIGUSR1):
    each ended the run on the spot, without a word, and lost every step since the last save."""
    (tmp_path / "fit.py").write_text(FIT_SCRIPT)
    proc = _start(["fit.py"], tmp_path)
    before = _wait_for(proc, "READY")
    proc.send_signal(signum)
    out = _finish(proc, before)
    name = signal.Signals(signum).name
    assert proc.returncode == 0, out
    assert f"Interrupted by {name}: saving a checkpoint after this step" in out
    assert "RETURNED True" in out and "Resume with" in out
    assert (tmp_path / "checkpoints" / "interrupted" / "model.safetensors").is_file()


TEST_STOPPED_BY_SIGTERM = """
import signal
import audiotrain
from audiotrain import Trainer
from audiotrain.callbacks import Callback
from audiotrain.loggers import CSVLogger
from tasks import TinyClassifier, make_batches

class TermAtTheFirstBatch(Callback):
    def on_test_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0):
        signal.raise_signal(signal.SIGTERM)

    def on_exception(self, trainer, module, error):
        print("ON_EXCEPTION", trainer.state.status, trainer.interrupted, flush=True)

    def teardown(self, trainer, module, stage):
        print("TEARDOWN", stage, trainer.state.status, flush=True)

class Closes(CSVLogger):
    def finalize(self, status="success"):
        print("FINALIZE", status, flush=True)
        super().finalize(status)

t = Trainer(
    default_root_dir=".", enable_progress_bar=False, callbacks=[TermAtTheFirstBatch()], logger=Closes(".")
)
t.test(TinyClassifier(), make_batches(8, batch_size=2))
print("RETURNED", flush=True)
"""


def test_sigterm_stops_a_test_as_lightning_does_with_its_hooks_and_one_line(tmp_path):
    """Lightning 2.6.6's SignalConnector turns a SIGTERM in `trainer.test` into SIGTERMException: there
    on_exception heard it with status "interrupted", trainer.interrupted was True and the loggers were closed.
    Here SIGTERM's default action ended the process on the spot (status -15): no on_exception, no teardown,
    the loggers' runs left open (an MLflow run RUNNING). Now it ends as a stop: one line, status 143."""
    (tmp_path / "test.py").write_text(TEST_STOPPED_BY_SIGTERM)
    proc = subprocess.run(
        [sys.executable, "test.py"], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=240
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 143, out
    assert "ON_EXCEPTION interrupted True" in out and "TEARDOWN test interrupted" in out, out
    assert "FINALIZE interrupted" in out and "RETURNED" not in out, out
    assert "Interrupted by SIGTERM: trainer.test stopped; nothing is returned" in out
    assert "Traceback" not in out, out


def test_sigterm_stops_a_test_also_where_the_program_has_its_own_handler_which_runs(tmp_path):
    """A program's own SIGTERM handler (a launcher's) made `trainer.test` leave SIGTERM alone: the stage
    went on. Lightning 2.6.6 composes (its SignalConnector, measured): the program's handler runs and the
    stage stops. Now so: the handler runs, then the stage stops as with the default action."""
    own = "signal.signal(signal.SIGTERM, lambda signum, frame: print('PROGRAMS HANDLER', flush=True))"
    script = TEST_STOPPED_BY_SIGTERM.replace("t = Trainer(", f"{own}\nt = Trainer(")
    (tmp_path / "test.py").write_text(script)
    proc = subprocess.run(
        [sys.executable, "test.py"], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=240
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 143 and out.count("PROGRAMS HANDLER") == 1, out
    assert "ON_EXCEPTION interrupted True" in out and "RETURNED" not in out, out
    assert "Interrupted by SIGTERM: trainer.test stopped; nothing is returned" in out


FIT_STOPPED_BY_A_SIGNAL = """
import signal, sys
import audiotrain
from audiotrain import Trainer
from audiotrain.callbacks import Callback
from tasks import TinyClassifier, make_batches

class SignalAtStep2(Callback):
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == 2:
            signal.raise_signal(getattr(signal, sys.argv[1]))

    def on_exception(self, trainer, module, error):
        signum = getattr(error, "signum", None)
        print("ON_EXCEPTION", isinstance(error, KeyboardInterrupt), signum, flush=True)

t = Trainer(max_epochs=1, default_root_dir=".", enable_progress_bar=False, callbacks=[SignalAtStep2()])
t.fit(TinyClassifier(), make_batches())
print("RETURNED", t.interrupted, t.global_step, flush=True)
"""


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT"])
def test_on_exception_tells_which_signal_stopped_the_fit(tmp_path, name):
    """Lightning 2.6.6's `on_exception` gets a SIGTERMException for SIGTERM and a KeyboardInterrupt for
    Ctrl-C, so a callback tells a preemption (requeue the job) from a stop by hand. Here both were a bare
    KeyboardInterrupt(); now it is one that names its signal (`signum`), as a stopped `test` gives."""
    (tmp_path / "fit.py").write_text(FIT_STOPPED_BY_A_SIGNAL)
    proc = subprocess.run(
        [sys.executable, "fit.py", name],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert f"ON_EXCEPTION True {int(getattr(signal, name))}" in out, out
    assert "RETURNED True 2" in out, out


PROCESS_WORKERS_FIT = f"""
import time
import audiotrain
from audiotrain import DataLoader, Trainer
from tasks import TinyClassifier, make_data
{SLOW_MODULE}
if __name__ == "__main__":  # (process workers import this script)
    x, y = make_data(4000)
    loader = DataLoader(list(zip(x, y)), batch_size=8, num_workers=2, worker_type="process")
    t = Trainer(max_epochs=1000, default_root_dir=".", enable_progress_bar=False, compile=False)
    t.fit(Slow(), loader)
    print("RETURNED", t.interrupted, t.global_step, flush=True)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1], ids=["SIGTERM", "SIGUSR1"])
def test_sigterm_to_the_process_group_stops_a_fit_with_process_workers_as_ctrl_c_does(tmp_path, signum):
    """`timeout` and Slurm's `scancel` signal every process of the group: the DataLoader's worker processes,
    which ignored SIGINT alone, died of it, and the fit ended with a DataLoaderError traceback ("worker 0
    exited unexpectedly (exit code -15, SIGTERM)") and no `interrupted`: the epoch under way was lost."""
    (tmp_path / "fit.py").write_text(PROCESS_WORKERS_FIT)
    proc = _start(["fit.py"], tmp_path, start_new_session=True)
    before = _wait_for(proc, "READY")
    os.killpg(proc.pid, signum)
    out = _finish(proc, before)
    assert proc.returncode == 0, out
    assert "Traceback" not in out and "exited unexpectedly" not in out, out
    assert f"Interrupted by {signal.Signals(signum).name}: saving a checkpoint after this step" in out
    assert "RETURNED True" in out and "Resume with" in out
    assert (tmp_path / "checkpoints" / "interrupted" / "model.safetensors").is_file()


def _fit_with_a_sigterm_at_step_2(root):
    """A one-epoch fit (6 steps) in `root` that raises SIGTERM in itself after step 2."""
    from audiotrain import Trainer
    from audiotrain.train.callbacks import Callback

    from tasks import TinyClassifier, make_batches

    class TermAtStep2(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.global_step == 2:
                signal.raise_signal(signal.SIGTERM)

    trainer = Trainer(
        max_epochs=1, default_root_dir=root, enable_progress_bar=False, callbacks=[TermAtStep2()]
    )
    trainer.fit(TinyClassifier(), make_batches())
    return trainer


@pytest.mark.serial
def test_a_sigterm_the_program_ignores_stays_ignored(tmp_path):
    """A program that ignores SIGTERM (or was started ignoring it) goes on through it. (Deliberate: Lightning
    2.6.6 takes an ignored SIGTERM over and stops the fit, measured.)"""
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        trainer = _fit_with_a_sigterm_at_step_2(tmp_path)
        assert not trainer.interrupted and trainer.global_step == 6
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN  # still ignored
    finally:
        signal.signal(signal.SIGTERM, previous)


PROGRAMS_HANDLER_FIT_SCRIPT = f"""
import signal, sys, time
import audiotrain
from audiotrain import Trainer
from tasks import TinyClassifier, make_batches
{SLOW_MODULE}
t = Trainer(max_epochs=1000, default_root_dir=".", enable_progress_bar=False, compile=False)

def launchers(signum, frame):  # as submitit's: it requeues the job, and may exit
    print("PROGRAMS HANDLER", signal.Signals(signum).name, "stop asked:", t.interrupted, flush=True)
    if sys.argv[1] == "exits":
        sys.exit(3)

signal.signal(signal.SIGTERM, launchers)
signal.signal(signal.SIGUSR1, launchers)
t.fit(Slow(), make_batches())
print("RETURNED", t.interrupted, flush=True)
print("GIVEN BACK", all(signal.getsignal(s) is launchers for s in (signal.SIGTERM, signal.SIGUSR1)))
"""


@pytest.mark.parametrize("exits", [False, True], ids=["returns", "exits"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1], ids=["SIGTERM", "SIGUSR1"])
def test_a_programs_own_sigterm_handler_runs_and_the_fit_still_stops_and_saves(tmp_path, signum, exits):
    """A launcher's SIGTERM handler (submitit's) or a user's: it was left alone and the preempted fit went on,
    with no `interrupted` checkpoint. As Lightning 2.6.6's `_HandlersCompose` (measured): the stop is asked
    first, then the program's handler runs, and it is put back after the fit. A `sys.exit` in it (Lightning:
    raised mid-step, nothing saved) is raised once the fit has stopped and saved."""
    (tmp_path / "fit.py").write_text(PROGRAMS_HANDLER_FIT_SCRIPT)
    proc = _start(["fit.py", "exits" if exits else "returns"], tmp_path)
    before = _wait_for(proc, "READY")
    proc.send_signal(signum)
    out = _finish(proc, before)
    name = signal.Signals(signum).name
    assert f"Interrupted by {name}: saving a checkpoint after this step" in out
    assert out.count("PROGRAMS HANDLER") == 1 and f"PROGRAMS HANDLER {name} stop asked: True" in out
    assert (tmp_path / "checkpoints" / "interrupted" / "model.safetensors").is_file()
    if exits:
        assert proc.returncode == 3 and "RETURNED" not in out and "Traceback" not in out, out
    else:
        assert proc.returncode == 0, out
        assert "RETURNED True" in out and "GIVEN BACK True" in out


@pytest.mark.serial
def test_a_recipe_commands_sigterm_handler_is_taken_over_by_fit_as_the_default_and_given_back(tmp_path):
    """A recipe command stands in for SIGTERM's default action (`_system._sigterm_stops`, between its stages):
    inside fit a SIGTERM stops after the step as SIGTERM (status 143), not as a KeyboardInterrupt (130)."""
    from audiotrain._system import _sigterm_stops
    from audiotrain.train.interrupt import stop_exit_status, stopped_by

    previous = signal.signal(signal.SIGTERM, _sigterm_stops)
    try:
        trainer = _fit_with_a_sigterm_at_step_2(tmp_path)
        assert trainer.interrupted and trainer.global_step == 2
        assert (stop_exit_status(), stopped_by()) == (143, "SIGTERM")
        assert signal.getsignal(signal.SIGTERM) is _sigterm_stops
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---- the launchers pass Ctrl-C and SIGTERM to the ranks alone ------------------------------------------------

LAUNCHED_FIT = """
import os, subprocess, sys, time
import audiotrain
import audiotrain.distributed as dist
from audiotrain import DataLoader, Trainer
from tasks import TinyClassifier, make_data

compiler = None

class Slow(TinyClassifier):
    def on_train_batch_end(self, outputs, batch, batch_idx):
        global compiler
        if self.global_step == 1:  # in the fit, as MLX starts its C++ compiler, in the rank's process group
            compiler = subprocess.Popen(["sleep", "600"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.global_step == 3 and dist.rank() == 0:
            print("READY", flush=True)
        time.sleep(0.05)


def alive(process):
    try:
        process.wait(timeout=1)  # (a signal to its group may still be on its way)
    except subprocess.TimeoutExpired:
        return True
    return False

trainer = Trainer(max_epochs=1000, default_root_dir="run", enable_progress_bar=False, log_every_n_steps=2)
x, y = make_data(64)
trainer.fit(Slow(), DataLoader(list(zip(x, y)), batch_size=8))
print("RETURNED", dist.rank(), trainer.interrupted, "compiler alive", alive(compiler), flush=True)
from audiotrain.train.interrupt import stop_exit_status, stopped_by
print("STOPPED BY", dist.rank(), stopped_by(), "status", stop_exit_status(), flush=True)
compiler.kill()
"""


@pytest.mark.serial
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_audiotrain_launch_passes_ctrl_c_and_sigterm_to_the_ranks_not_to_their_compilers(tmp_path, signum):
    """The launcher passed Ctrl-C on to mlx.launch's whole process group, which also killed the compiler a
    rank's MLX was running (SIGUSR1's default action), so the rank's step failed; SIGTERM ended the job with
    nothing saved."""
    from tests.distributed import free_starting_port

    (tmp_path / "job.py").write_text(LAUNCHED_FIT)
    port = str(free_starting_port(2))
    proc = _start(["-m", "audiotrain", "launch", "-n", "2", "--starting-port", port, "--", sys.executable, "job.py"], tmp_path)  # fmt: skip
    before = _wait_for(proc, "READY")
    proc.send_signal(signum)  # the launcher alone, as `kill`, `timeout` or a supervisor sends it
    out = _finish(proc, before, timeout=120)
    assert proc.returncode == 128 + signum, out
    # Each rank names the signal the launcher got and would exit as it (they called a SIGTERM Ctrl-C).
    name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
    for rank in (0, 1):
        assert f"RETURNED {rank} True compiler alive True" in out, out
        assert f"STOPPED BY {rank} {name} status {128 + signum}" in out, out
    heard = "Interrupted:" if signum == signal.SIGINT else "Interrupted by SIGTERM:"
    assert f"{heard} the 2 processes stop together" in out, out
    assert (tmp_path / "run" / "checkpoints" / "interrupted" / "model.safetensors").is_file()


def test_a_rank_that_hears_the_ctrl_c_after_the_ranks_agreed_to_stop_on_it_does_not_abort():
    """The launcher signals the ranks one by one; a busy rank can handle its copy of the Ctrl-C after the
    ranks agreed to stop on another rank's. That copy was counted as a second Ctrl-C there: the rank aborted
    the save (one parallel run of the suite in six). Only this rank's own second signal aborts."""
    from types import SimpleNamespace

    from audiotrain.train.callback_list import CallbackList
    from audiotrain.train.stopping import StopRequests

    notes: list[str] = []
    trainer = SimpleNamespace(
        world_size=2,
        enable_checkpointing=True,
        log_every_n_steps=2,
        _note=notes.append,
        callbacks=CallbackList(None, progress_bar=False, checkpointing=False),  # (where a stop saves)
        default_root_dir=".",
    )
    stops = StopRequests(trainer)
    stops.interrupted = True  # what agree_across_ranks sets when another rank heard Ctrl-C
    assert stops.request(signal.SIGINT) is False  # this rank's copy of the same Ctrl-C: no abort
    assert "the 2 processes stop together" in notes[-1]
    assert stops.request(signal.SIGINT) is True  # a second Ctrl-C aborts

    alone = StopRequests(SimpleNamespace(**{**vars(trainer), "world_size": 1}))
    assert alone.request(signal.SIGINT) is False and alone.interrupted
    assert alone.request(signal.SIGINT) is True


RANK_WITH_A_COMPILER = """
import os, subprocess, sys, time
from pathlib import Path
from audiotrain.distributed.local import install_rank_stop_signal

install_rank_stop_signal()  # the launcher's SIGUSR1 is Ctrl-C here
# In the rank's process group, as MLX's compiler is; not on the job's output, which it would hold open.
compiler = subprocess.Popen(["sleep", "600"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    # READY inside the try: the test signals as soon as it reads it, which can be before print returns.
    print("READY", flush=True)
    time.sleep(120)
except KeyboardInterrupt:
    try:
        compiler.wait(timeout=1)  # (a signal to its group may still be on its way)
        print("STOPPED compiler alive False", flush=True)
    except subprocess.TimeoutExpired:
        print("STOPPED compiler alive True", flush=True)
finally:
    compiler.kill()
# mpirun kills the other rank as soon as one exits non-zero: exit only once both have printed their line.
Path(f"stopped-{os.environ['OMPI_COMM_WORLD_RANK']}").touch()
deadline = time.monotonic() + 60
while len(list(Path().glob("stopped-*"))) < 2 and time.monotonic() < deadline:
    time.sleep(0.01)
sys.exit(130)
"""

LOCAL_JOB = """
import sys
from audiotrain.distributed.local import LocalPlan, find_mpi, run_local_job

sys.exit(run_local_job(LocalPlan(2, find_mpi()), "rank_with_a_compiler", [], log=print))
"""


@pytest.mark.serial
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_recipes_local_processes_hear_ctrl_c_and_sigterm_but_their_compilers_do_not(tmp_path, signum):
    """mpirun passed the launcher's SIGUSR1 to each rank's process group: the compiler MLX ran for a rank died
    of it, and that rank's step failed (the chord recipe's first minute is spent compiling)."""
    from audiotrain.distributed.local import find_mpi

    if find_mpi() is None:
        pytest.skip("no MPI (the cpu extra brings it on Linux)")
    (tmp_path / "rank_with_a_compiler.py").write_text(RANK_WITH_A_COMPILER)
    (tmp_path / "job.py").write_text(LOCAL_JOB)
    env = _env()
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{env['PYTHONPATH']}"
    proc = _start(["job.py"], tmp_path, env=env)
    before = _wait_for(proc, "READY", count=2)
    proc.send_signal(signum)
    out = _finish(proc, before, timeout=120)
    assert out.count("STOPPED compiler alive True") == 2, out
    assert proc.returncode == 128 + signum, out


# ---- a second Ctrl-C during the save -------------------------------------------------------------------------

SAVE_SCRIPT = """
import signal
import audiotrain
from audiotrain import Trainer
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.callbacks import Callback, ModelCheckpoint
from tasks import TinyClassifier, make_batches

class CtrlCAtStep8(Callback):
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == 8:
            signal.raise_signal(signal.SIGINT)  # the first: stop after this step and save

write = ckpt._save_arrays

def write_then_ctrl_c(path, arrays):
    write(path, arrays)
    if path.parent.name.startswith(".interrupted.tmp-"):
        signal.raise_signal(signal.SIGINT)  # the second, while the weights are written

ckpt._save_arrays = write_then_ctrl_c
t = Trainer(max_epochs=3, default_root_dir=".", enable_progress_bar=False,
            callbacks=[CtrlCAtStep8(), ModelCheckpoint(save_last=True)])
t.fit(TinyClassifier(), make_batches())
print("RETURNED", flush=True)
"""


def _aborted_fit(tmp_path, script: str, first_words: str) -> tuple[str, Path]:
    """Run `script` (a fit that a second Ctrl-C aborts): it ends with status 130 and no traceback; its one
    line that starts with `first_words`, and the checkpoints folder."""
    (tmp_path / "fit.py").write_text(script)
    done = subprocess.run(
        [sys.executable, "fit.py"], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=240
    )
    out = done.stdout + done.stderr
    assert done.returncode == 130, out
    assert "Traceback" not in out and "Exception ignored" not in out and "RETURNED" not in out, out
    (line,) = [line for line in out.splitlines() if line.startswith(first_words)]
    return line, tmp_path / "checkpoints"


def test_a_second_ctrl_c_during_the_save_says_what_is_left_without_a_traceback(tmp_path):
    """It printed 30 lines of KeyboardInterrupt traceback from inside the checkpoint writer, and not a word
    on what was left."""
    line, folder = _aborted_fit(tmp_path, SAVE_SCRIPT, "Save aborted")
    assert line == (
        f"Save aborted: nothing of {folder / 'interrupted'} was left; the newest intact checkpoint is "
        f"{folder / 'last'} (epoch 1, global step 6)"
    )
    assert sorted(p.name for p in folder.iterdir()) == ["epoch=0-step=6", "last"]
    state = json.loads((folder / "last" / "trainer_state.json").read_text())
    assert state["progress"]["global_step"] == 6


BEFORE_SAVE_SCRIPT = """
import signal
import audiotrain
from audiotrain import Trainer
from audiotrain.train.callbacks import Callback, ModelCheckpoint
from tasks import TinyClassifier, make_batches

class TwoCtrlCsAtStep8(Callback):
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == 8:
            signal.raise_signal(signal.SIGINT)  # the first: stop after this step and save
            signal.raise_signal(signal.SIGINT)  # the second, before the save began

t = Trainer(max_epochs=3, default_root_dir=".", enable_progress_bar=False,
            callbacks=[TwoCtrlCsAtStep8(), ModelCheckpoint(save_last=True)])
t.fit(TinyClassifier(), make_batches())
print("RETURNED", flush=True)
"""


def test_a_second_ctrl_c_before_the_save_began_aborts_with_one_line_and_status_130(tmp_path):
    """A second Ctrl-C while the step the first one stops after still ran ended the script with a
    SignalInterrupt traceback from inside the step (or a DataLoader worker's read) and exit status 1."""
    line, folder = _aborted_fit(tmp_path, BEFORE_SAVE_SCRIPT, "Aborted before the save")
    assert line == (
        f"Aborted before the save: nothing was saved as {folder / 'interrupted'}; the newest intact "
        f"checkpoint is {folder / 'last'} (epoch 1, global step 6)"
    )
    assert sorted(p.name for p in folder.iterdir()) == ["epoch=0-step=6", "last"]


WORKERS_CLOSING_SCRIPT = """
import multiprocessing.process, signal
import audiotrain
from audiotrain import DataLoader, Trainer
from audiotrain.train.callbacks import Callback, ModelCheckpoint
from tasks import TinyClassifier, make_data

class CtrlCAtStep8(Callback):
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == 8:
            signal.raise_signal(signal.SIGINT)  # the first: stop after this step and save

join = multiprocessing.process.BaseProcess.join
seconds = []

def join_then_ctrl_c(process, timeout=None):
    if t.interrupted and not seconds:
        seconds.append(process.name)
        signal.raise_signal(signal.SIGINT)  # the second, while the stopped epoch's workers end
    return join(process, timeout)

if __name__ == "__main__":  # (process workers import this script)
    multiprocessing.process.BaseProcess.join = join_then_ctrl_c
    x, y = make_data(96)
    loader = DataLoader(list(zip(x, y)), batch_size=16, num_workers=2, worker_type="process")
    t = Trainer(max_epochs=3, default_root_dir=".", enable_progress_bar=False,
                callbacks=[CtrlCAtStep8(), ModelCheckpoint(save_last=True)])
    t.fit(TinyClassifier(), loader)
    print("RETURNED", flush=True)
"""


def test_a_second_ctrl_c_while_the_process_workers_end_aborts_before_the_save(tmp_path):
    """The pool of the stopped epoch's process workers closes as its iterator goes, inside a finalizer: a
    second Ctrl-C there was printed as "Exception ignored in: <finalize object ...>" with a traceback and
    dropped, and the save went on."""
    line, folder = _aborted_fit(tmp_path, WORKERS_CLOSING_SCRIPT, "Aborted before the save")
    assert line == (
        f"Aborted before the save: nothing was saved as {folder / 'interrupted'}; the newest intact "
        f"checkpoint is {folder / 'last'} (epoch 1, global step 6)"
    )
    assert sorted(p.name for p in folder.iterdir()) == ["epoch=0-step=6", "last"]


# ---- a job of local processes, stopped as its ranks start, before and after training -----------------------

# In place of mpirun: starts each rank as its child, as Open MPI does, and ends with the highest status.
FAKE_MPIRUN = """#!{python}
import os, subprocess, sys

argv = sys.argv[1:]
n = int(argv[argv.index("-np") + 1])
command = argv[argv.index({python!r}):]
ranks = [subprocess.Popen(command, env={{**os.environ, "OMPI_COMM_WORLD_RANK": str(r)}}) for r in range(n)]
sys.exit(max(rank.wait() for rank in ranks))
"""

# Rank 1 is still loading its modules when the stop comes (it installs its handler only once the launcher
# has written the stop down); rank 0 waits for it with its handler installed.
STARTING_RANK = """
import os, sys, time
from pathlib import Path
from audiotrain.distributed.local import JOB_FOLDER_ENV, install_rank_stop_signal
from audiotrain.train.interrupt import signal_of, stop_signal_name

rank = os.environ["OMPI_COMM_WORLD_RANK"]
try:
    if rank == "1":
        print(f"READY {rank}", flush=True)
        stops = Path(os.environ[JOB_FOLDER_ENV], "stop_signals.txt")
        deadline = time.monotonic() + 60
        while not stops.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    install_rank_stop_signal()
    if rank == "0":
        print(f"READY {rank}", flush=True)
    time.sleep(60)
    print(f"NOT STOPPED {rank}", flush=True)
except KeyboardInterrupt as stop:
    print(f"STOPPED {rank} {stop_signal_name(signal_of(stop))}", flush=True)
    sys.exit(128 + signal_of(stop))
"""

FAKE_JOB = """
import sys
from audiotrain.distributed.local import LocalPlan, Mpi, run_local_job

sys.exit(run_local_job(LocalPlan(2, Mpi(sys.argv[1], None, "fake")), "starting_rank", [], log=print))
"""


@pytest.mark.serial
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_rank_that_has_not_installed_its_handler_yet_is_not_killed_by_the_stop_and_names_it(
    tmp_path, signum
):
    """SIGUSR1, the launcher's stand-in for the stop, ended a rank that had no handler for it yet (Open MPI:
    "exited on signal 10 (User defined signal 1)", status 138); a rank that had one called a SIGTERM
    Ctrl-C."""
    mpirun = tmp_path / "mpirun"
    mpirun.write_text(FAKE_MPIRUN.format(python=sys.executable))
    mpirun.chmod(0o755)
    (tmp_path / "starting_rank.py").write_text(STARTING_RANK)
    (tmp_path / "job.py").write_text(FAKE_JOB)
    env = _env()
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{env['PYTHONPATH']}"
    proc = _start(["job.py", str(mpirun)], tmp_path, env=env)
    before = _wait_for(proc, "READY", count=2)
    proc.send_signal(signum)
    out = _finish(proc, before, timeout=120)
    name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
    assert f"STOPPED 0 {name}" in out and f"STOPPED 1 {name}" in out, out
    assert proc.returncode == 128 + signum, out


# A rank of the chord recipe, stopped where STOP_AT says: "start" (before the recipe installs its handler for
# the launcher's stand-in, as while Python loads its modules), "before_training" (the ranks make their loaders:
# the run folder is written, training has not begun), "evaluation" (rank 0 scores the held-out songs).
CHORD_RANK = """
import os, time
from pathlib import Path

stop_at = os.environ["STOP_AT"]
if stop_at == "start":
    print("READY", flush=True)
    stops = Path(os.environ.get("AUDIOTRAIN_JOB_FOLDER", "."), "stop_signals.txt")
    deadline = time.monotonic() + 60
    while not stops.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
else:
    from audiotrain.recipes.chords import train

    if stop_at == "before_training":
        make_loaders, hear, held = train.make_loaders, train.HeldStop.hear, []

        def hear_and_note(self, signum):
            held.append(signum)
            return hear(self, signum)

        def make_loaders_once_stopped(*args, **kwargs):
            print("READY", flush=True)
            deadline = time.monotonic() + 60
            while not held and time.monotonic() < deadline:
                time.sleep(0.01)
            return make_loaders(*args, **kwargs)

        train.HeldStop.hear, train.make_loaders = hear_and_note, make_loaders_once_stopped
    else:
        evaluate = train._evaluate_held_out

        def evaluate_once_stopped(*args, **kwargs):
            print("READY", flush=True)
            time.sleep(60)  # (the stop ends it)
            return evaluate(*args, **kwargs)

        train._evaluate_held_out = evaluate_once_stopped

from audiotrain._system import run_recipe_command

run_recipe_command("audiotrain.recipes.chords.cli")
"""

CHORD_JOB = """
import sys
from audiotrain.distributed.local import LocalPlan, find_mpi, run_local_job

sys.exit(run_local_job(LocalPlan(2, find_mpi()), "chord_rank", sys.argv[1:], log=print))
"""

TINY_CHORDS = [
    "--data.demo_songs", "4", "--data.demo_test_songs", "1", "--data.demo_seconds", "8",
    "--data.window_frames", "32", "--model.d_model", "32", "--model.n_layers", "1", "--model.n_heads", "2",
    "--model.ff_dim", "64", "--progress_bar", "false", "--batch_size", "8", "--num_epochs", "1",
]  # fmt: skip


@pytest.fixture(scope="module")
def demo_cache(tmp_path_factory):
    """The demo songs and their features, shared by the jobs below."""
    return tmp_path_factory.mktemp("demo_cache")


def _stopped_chord_job(tmp_path, cache, stop_at: str, signum: int, ready: int) -> tuple[str, int]:
    """(what a 2-process chord job printed, its exit status), stopped by `signum` where `stop_at` says, once
    `ready` ranks say so."""
    from audiotrain.distributed.local import find_mpi

    if find_mpi() is None:
        pytest.skip("no MPI (the cpu extra brings it on Linux)")
    (tmp_path / "chord_rank.py").write_text(CHORD_RANK)
    (tmp_path / "job.py").write_text(CHORD_JOB)
    env = _env(STOP_AT=stop_at)
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{env['PYTHONPATH']}"
    args = [*TINY_CHORDS, "--data.cache_dir", str(cache), "--run_dir", str(tmp_path / "run")]
    proc = _start(["job.py", *args], tmp_path, env=env)
    before = _wait_for(proc, "READY", count=ready)
    proc.send_signal(signum)
    out = _finish(proc, before)
    assert "signal 10" not in out and "Traceback" not in out, out
    return out, proc.returncode


@pytest.mark.serial
@pytest.mark.slow
def test_ctrl_c_as_the_ranks_start_ends_the_job_with_one_line(tmp_path, demo_cache):
    """A rank that had not installed its handler yet died of the stand-in: Open MPI's "exited on signal 10
    (User defined signal 1)" block and status 138; later, each rank printed "interrupted (Ctrl-C)"."""
    out, status = _stopped_chord_job(tmp_path, demo_cache, "start", signal.SIGINT, ready=2)
    assert status == 130, out
    assert out.count("interrupted (Ctrl-C)") == 1, out


@pytest.mark.serial
@pytest.mark.slow
def test_sigterm_before_training_in_two_processes_leaves_no_run_folder(tmp_path, demo_cache):
    """It printed "interrupted (Ctrl-C)" once per rank and left config.json and data_report.txt, for which
    the same command was refused."""
    out, status = _stopped_chord_job(tmp_path, demo_cache, "before_training", signal.SIGTERM, ready=2)
    assert status == 143, out
    line = (
        "stopped (SIGTERM) before training: nothing was left in a run folder: run the same command again "
        "to start it"
    )
    assert out.count(line) == 1 and "Ctrl-C" not in out, out
    assert not (tmp_path / "run").exists()


@pytest.mark.serial
@pytest.mark.slow
def test_sigterm_in_the_evaluation_in_two_processes_is_named_sigterm(tmp_path, demo_cache):
    """The ranks hear the launcher's stand-in, SIGUSR1: the message said "interrupted (Ctrl-C)"."""
    out, status = _stopped_chord_job(tmp_path, demo_cache, "evaluation", signal.SIGTERM, ready=1)
    assert status == 143, out
    assert out.count("interrupted (SIGTERM) after training") == 1 and "Ctrl-C" not in out, out
    assert f"run folder: {tmp_path / 'run'}" in out


# A rank of the CLAP recipe whose steps are slowed down, so that a Ctrl-C comes during its training.
CLAP_RANK = """
import time
import audiotrain.distributed as dist
from audiotrain.train.trainer import Trainer

call_end_hooks = Trainer._call_end_hooks

def slowly(self, name, *args, **kwargs):
    if name == "on_train_batch_end":
        if self.global_step == 2 and dist.rank() == 0:
            print("READY", flush=True)
        time.sleep(0.2)
    return call_end_hooks(self, name, *args, **kwargs)

Trainer._call_end_hooks = slowly

from audiotrain._system import run_recipe_command

run_recipe_command("audiotrain.recipes.clap.cli")
"""

CLAP_JOB = """
import sys
from audiotrain.distributed.local import LocalPlan, find_mpi, run_local_job

sys.exit(run_local_job(LocalPlan(2, find_mpi()), "clap_rank", sys.argv[1:], "--train.processes", log=print))
"""


@pytest.mark.serial
@pytest.mark.slow
def test_ctrl_c_in_clap_training_in_two_processes_still_evaluates_and_exports(tmp_path):
    """Rank 1 exited 130 as its fit ended: mpirun ended the job, and rank 0 was killed in its evaluation,
    without a word: no plots/, no hf_model/."""
    from audiotrain.distributed.local import find_mpi

    if find_mpi() is None:
        pytest.skip("no MPI (the cpu extra brings it on Linux)")
    (tmp_path / "clap_rank.py").write_text(CLAP_RANK)
    (tmp_path / "job.py").write_text(CLAP_JOB)
    env = _env()
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{env['PYTHONPATH']}"
    out = tmp_path / "run"
    args = ["--out", str(out), "--demo.folder", str(tmp_path / "cache"), "--demo.clips", "12",
            "--demo.width", "16", "--demo.vocab_size", "120", "--dataset.max_tokens", "16",
            "--dataset.num_workers", "0", "--train.epochs", "200", "--train.batch_size", "4",
            "--train.compile", "false", "--train.progress_bar", "false"]  # fmt: skip
    proc = _start(["job.py", *args], tmp_path, env=env)
    before = _wait_for(proc, "READY")
    proc.send_signal(signal.SIGINT)
    said = _finish(proc, before)
    assert proc.returncode == 130, said
    assert "training was interrupted (Ctrl-C); evaluating now" in said, said
    assert "exported Hugging Face model" in said and "SIGTERM" not in said, said
    assert (out / "hf_model" / "config.json").is_file() and any((out / "plots").iterdir())
    assert (out / "checkpoints" / "interrupted").is_dir()


@pytest.mark.serial
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # (the finalizer's, as meant)
def test_a_stop_at_once_that_lands_in_a_finalizer_or_a_c_extension_is_not_lost():
    """After a recipe's fit every stop signal stops at once. Landing in a finalizer, the handler's exception
    was printed as "Exception ignored" and dropped (the plots and evaluation ran on, exit 0); landing in a C
    extension's call back into Python, matplotlib put "Invalid affine transformation matrix" in its place
    (exit 2). Both are the stop now, raised as the block ends or from that error."""
    import gc

    from audiotrain.train.interrupt import SignalInterrupt, stop_at_once

    class SignalledAsItGoes:
        def __del__(self):
            signal.raise_signal(signal.SIGINT)  # the handler's raise is "ignored" inside a finalizer

    ran_on = []
    with pytest.raises(SignalInterrupt):
        with stop_at_once():
            SignalledAsItGoes()
            gc.collect()
            ran_on.append(True)
    assert ran_on == [True]  # (it was dropped there; the block ran on, and its end raises it)

    def extension_replacing_the_interrupt():
        try:
            signal.raise_signal(signal.SIGTERM)
        except KeyboardInterrupt:
            raise ValueError("Invalid affine transformation matrix") from None

    with pytest.raises(SignalInterrupt) as caught:
        with stop_at_once():
            extension_replacing_the_interrupt()
    assert caught.value.signum == signal.SIGTERM
    assert isinstance(caught.value.__cause__, ValueError)

    with pytest.raises(ValueError, match="not a stop"):  # without a signal an error is itself
        with stop_at_once():
            raise ValueError("not a stop")


@pytest.mark.serial
def test_the_exit_status_is_the_first_stop_signals_until_a_new_run_starts():
    """SIGTERM then Ctrl-C is a SIGTERM stop (143), as the first signal stopped the run; an evaluation that
    goes on with that run (same_run) keeps it, and a new run starts with none (130, Ctrl-C's)."""
    from audiotrain.train.interrupt import stop_exit_status, stop_on_signals, stopped_by

    heard = []
    with stop_on_signals(lambda signum: heard.append(signum) or False):
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
    assert heard == [signal.SIGTERM, signal.SIGINT]
    assert (stop_exit_status(), stopped_by()) == (143, "SIGTERM")
    with stop_on_signals(lambda signum: False, same_run=True):
        pass
    assert stop_exit_status() == 143
    with stop_on_signals(lambda signum: False):
        pass
    assert (stop_exit_status(), stopped_by()) == (130, "Ctrl-C")


@pytest.mark.serial
def test_a_stop_on_signals_inside_another_takes_its_signals_over_until_it_ends():
    """A fit inside a command's own stop_on_signals (a recipe's) stops as the fit's handler decides."""
    from audiotrain.train.interrupt import stop_on_signals

    outer, inner = [], []
    with stop_on_signals(lambda signum: outer.append(signum) or False):
        with stop_on_signals(lambda signum: inner.append(signum) or False):
            os.kill(os.getpid(), signal.SIGTERM)
        assert (outer, inner) == ([], [signal.SIGTERM])
        os.kill(os.getpid(), signal.SIGTERM)
    assert (outer, inner) == ([signal.SIGTERM], [signal.SIGTERM])


def test_a_programs_handler_runs_after_the_stop_inside_nested_blocks_and_its_exit_waits_for_the_end():
    """The program's SIGTERM handler runs after the innermost block's request (Lightning 2.6.6's order: its
    own first), also from a block inside another; its SystemExit is raised as that block ends, not where the
    signal landed. (The installed handler is called here, as Python would: no signal is sent.)"""
    from audiotrain.train.interrupt import stop_on_signals

    order = []

    def programs(signum, frame):
        order.append("program")
        raise SystemExit(3)

    previous = signal.signal(signal.SIGTERM, programs)
    try:
        with stop_on_signals(lambda signum: order.append("outer") or False):
            with pytest.raises(SystemExit) as exited:
                with stop_on_signals(lambda signum: order.append("inner") or False):
                    signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)
                    order.append("block went on")
            assert exited.value.code == 3
        assert order == ["inner", "program", "block went on"]
        assert signal.getsignal(signal.SIGTERM) is programs
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.serial
def test_a_second_stop_signal_inside_stopping_together_aborts_at_once(monkeypatch):
    """In a job of several ranks the first signal is noted for the ranks' next stop_point; a second one
    aborts at once (the launcher ends a rank left behind)."""
    from audiotrain.distributed import collectives
    from audiotrain.train.interrupt import SignalInterrupt, stopping_together

    monkeypatch.setattr(collectives, "world_size", lambda: 2)
    with pytest.raises(SignalInterrupt):
        with stopping_together():
            os.kill(os.getpid(), signal.SIGINT)  # noted
            os.kill(os.getpid(), signal.SIGINT)
            pytest.fail("a second stop signal did not abort")


@pytest.mark.serial
def test_a_stop_signal_inside_stopping_together_in_one_process_stops_at_once():
    """In one process there are no ranks to wait for: the first signal stops the work as `stop_at_once`."""
    from audiotrain.train.interrupt import SignalInterrupt, stopping_together

    with pytest.raises(SignalInterrupt) as caught:
        with stopping_together():
            os.kill(os.getpid(), signal.SIGTERM)
            pytest.fail("the first stop signal in one process did not stop at once")
    assert caught.value.signum == signal.SIGTERM


@pytest.mark.serial
def test_the_first_stop_signal_inside_stopping_together_stops_the_ranks_at_its_end_naming_it(monkeypatch):
    """In a job of several ranks the first signal is only noted (another rank may be in a collective), and
    the block's end is the ranks' last stop point: the stop comes there, naming the signal this rank heard.
    (One process stands for the ranks: its all-reduce is its own value.)"""
    from audiotrain.distributed import collectives
    from audiotrain.train.interrupt import SignalInterrupt, stop_exit_status, stopping_together

    monkeypatch.setattr(collectives, "world_size", lambda: 2)
    went_on = []
    with pytest.raises(SignalInterrupt) as caught:
        with stopping_together():
            os.kill(os.getpid(), signal.SIGTERM)  # noted
            went_on.append(True)
    assert went_on == [True]
    assert caught.value.signum == signal.SIGTERM and stop_exit_status() == 143
