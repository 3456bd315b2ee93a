"""The Trainer in one long-lived process (a notebook, a REPL, a sweep driver): what one cell leaves behind
for the next, from the user's side."""

import io
import os
import random
import signal
import subprocess
import sys
import warnings
from pathlib import Path

from audiotrain import seed_everything
from audiotrain.train import Callback, EarlyStopping, ModelCheckpoint, seeding
from audiotrain.train.callers_random import keeping_callers_random

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from child_processes import child_env
from mlx.utils import tree_flatten
from tasks import TinyClassifier, make_batches, quiet_trainer, weights

from tests import deadlines


class InterruptedWhileTracing(TinyClassifier):
    """Ctrl-C (a notebook's "interrupt kernel") lands while the compiled step is being traced: `signals`
    SIGINTs are raised from inside the traced code of `stage`, once."""

    def __init__(self, stage: str, signals: int):
        super().__init__()
        self.stage, self.signals = stage, signals

    def _interrupt(self, stage: str) -> None:
        if self.stage == stage and self.signals:
            for _ in range(self.signals):
                self.signals -= 1
                signal.raise_signal(signal.SIGINT)

    def compute_loss(self, batch):
        self._interrupt("fit" if self.training else "validate")
        return super().compute_loss(batch)

    def predict_step(self, batch, batch_idx=0):
        self._interrupt("predict")
        return self(batch[0])


@pytest.mark.parametrize("stage", ["fit", "validate", "predict"])
@pytest.mark.usefixtures("ctrl_c_raises")
def test_ctrl_c_while_a_step_is_traced_leaves_the_model_and_mx_random_usable(tmp_path, stage):
    """A KeyboardInterrupt while MLX traced a step used to leave tracer placeholders in the model, the
    optimizer and `mx.random.state`: the trained weights could no longer be read or saved, and every later
    random draw in the process failed ("Attempting to eval an array without a primitive")."""
    # fit defers the first Ctrl-C to the end of the step: the second (the impatient one) interrupts.
    model = InterruptedWhileTracing(stage, signals=2 if stage == "fit" else 1)
    mx.eval(model.parameters())
    before = weights(model)
    trainer = quiet_trainer(tmp_path, max_epochs=1, compile=True)
    run = {
        "fit": lambda: trainer.fit(model, make_batches()),
        "validate": lambda: trainer.validate(model, make_batches(32)),
        "predict": lambda: trainer.predict(model, make_batches(32)),
    }[stage]
    with pytest.raises(KeyboardInterrupt):
        run()
    assert model.signals == 0  # (the interrupt came from inside the trace)

    after = weights(model)  # readable, and as they were
    assert all(np.array_equal(after[k], before[k]) for k in before)
    model.save_weights(str(tmp_path / "model.safetensors"))
    mx.eval(mx.random.normal((2,)))
    if stage == "fit":
        mx.eval([v for _, v in tree_flatten(trainer.optimizer.state)])
    quiet_trainer(tmp_path, max_epochs=1, compile=True).fit(model, make_batches())  # the next cell trains
    assert not np.array_equal(weights(model)["fc1.weight"], before["fc1.weight"])


def _global_draws() -> tuple:
    """What a notebook cell draws from the global generators: numpy's, Python's and MLX's (a model built
    there draws its weights from MLX's)."""
    return float(np.random.uniform()), random.random(), float(mx.random.uniform().item())


def test_fit_leaves_the_callers_global_generators_where_they_were(tmp_path):
    """Every fit seeded numpy, random and MLX with its seed (42) and left them so: the draws after a fit were
    the same after every fit, and a random search in one process tried the same hyperparameters again."""
    seed_everything(0)
    undisturbed = []
    for _ in range(3):
        undisturbed.append(_global_draws())
        undisturbed.append(weights(TinyClassifier())["fc1.weight"].tolist())

    seed_everything(0)
    trials, histories = [], []
    for trial in range(3):
        trials.append(_global_draws())  # a random search draws its next hyperparameters
        model = TinyClassifier(dropout=0.5)
        trials.append(weights(model)["fc1.weight"].tolist())
        trainer = quiet_trainer(tmp_path / str(trial), max_epochs=1)
        trainer.fit(model, make_batches())
        histories.append(trainer.history["train_loss"])
    assert trials == undisturbed  # the search's own sequence, as if no fit had drawn from it
    assert trials[0] != trials[2] and trials[1] != trials[3]

    # The fit itself is still seeded (42): trial 0 again, from its initial weights, repeats exactly.
    seed_everything(0)
    _global_draws()
    trainer = quiet_trainer(tmp_path / "again", max_epochs=1)
    trainer.fit(TinyClassifier(dropout=0.5), make_batches())
    assert trainer.history["train_loss"] == histories[0]


def test_a_failed_fit_leaves_the_callers_generators_too(tmp_path):
    class Fails(TinyClassifier):
        def on_train_start(self):
            raise RuntimeError("a bug in a hook")

    seed_everything(3)
    model = Fails()
    expected = _global_draws()
    seed_everything(3)
    model = Fails()
    with pytest.raises(RuntimeError, match="a bug in a hook"):
        quiet_trainer(tmp_path, max_epochs=1).fit(model, make_batches())
    assert _global_draws() == expected


def test_a_fit_inside_a_recipes_run_leaves_the_runs_generators_where_they_were(tmp_path):
    """A recipe's run (`keeping_callers_random`, as the chord and CLAP recipes' are) seeds the generators,
    fits, and draws again after the fit (a second fold, its evaluation's samples): those draws are the run's
    own, as if the fit had drawn nothing, not wherever the fit left numpy's and Python's generators."""

    def recipe_run(fits: bool) -> tuple:
        with keeping_callers_random():
            seed_everything(5)
            _global_draws()  # (the run splits its data; the fit seeds the generators anew, with 5)
            model, batches = TinyClassifier(dropout=0.5), make_batches()
            if fits:
                quiet_trainer(tmp_path, max_epochs=1).fit(model, batches)
            return _global_draws()

    assert recipe_run(fits=True) == recipe_run(fits=False)


def test_a_recipes_run_that_fails_still_leaves_the_callers_generators_and_seed(monkeypatch):
    """A search catching a failed trial (a bad setting, a Ctrl-C) goes on from its own sequence: the run's
    generators, its PL_GLOBAL_SEED and the seed of a Trainer given none are put back however the run ends."""
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    seed_everything(3)
    expected = _global_draws()
    seed_everything(3)
    monkeypatch.delenv("PL_GLOBAL_SEED")  # (seed_everything sets it; the caller had none)
    for _ in range(2):  # the second run in this thread is an outer run too, and so puts back what it found
        with pytest.raises(RuntimeError, match="a bad trial"), keeping_callers_random():
            seed_everything(7, workers=True)
            raise RuntimeError("a bad trial")
    assert "PL_GLOBAL_SEED" not in os.environ
    assert os.environ["PL_SEED_WORKERS"] == "0"  # (the caller's seed_everything(3) set it)
    assert seeding.default_seed() == 3
    assert _global_draws() == expected


def _fit_with(callbacks, root, max_epochs=3, model=None):
    trainer = quiet_trainer(root, max_epochs=max_epochs, callbacks=callbacks, enable_checkpointing=True)
    trainer.fit(model or TinyClassifier(lr=0.05), make_batches(), make_batches(32, seed=1))
    return trainer


def test_a_checkpoint_callback_reused_in_a_new_trainer_is_refused_as_a_new_one_would_be(tmp_path):
    """The object made in an earlier cell carried its best scores into the next experiment's fit, deleted
    the earlier experiment's best checkpoint and named it as best_model_path, with no word; a new
    ModelCheckpoint on the same folder was refused."""
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ck", monitor="val_loss", save_top_k=1)
    _fit_with([checkpoint], tmp_path)
    kept = sorted(p.name for p in (tmp_path / "ck").iterdir())
    with pytest.raises(
        FileExistsError, match=r"already holds checkpoints of an earlier run.*another Trainer"
    ):
        _fit_with([checkpoint], tmp_path, max_epochs=6)  # the next experiment's cell
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == kept
    with pytest.raises(FileExistsError, match="already holds checkpoints of an earlier run"):
        _fit_with([ModelCheckpoint(dirpath=tmp_path / "ck", monitor="val_loss")], tmp_path)
    # overwrite=True saves over it, as a new run: it ranks its own scores, not the earlier run's.
    checkpoint.overwrite = True
    overwriting = _fit_with([checkpoint], tmp_path, max_epochs=2)
    assert checkpoint.best_model_score == pytest.approx(min(overwriting.history["val_loss"]))


def test_callbacks_reused_in_a_new_trainer_start_a_new_run(tmp_path):
    """EarlyStopping carried the earlier run's best score and patience: the next fit stopped after one epoch
    and saved nothing, and best_model_path still named the earlier run's checkpoint."""
    checkpoint = ModelCheckpoint(monitor="val_loss", save_top_k=1)  # the default, versioned folder
    # patience 2: a fresh run stops only after two epochs without improvement (never in these 3 epochs),
    # one carrying the earlier run's best score after epoch 1. The models' initial weights are seeded: drawn
    # from the global state, they depended on the tests run before.
    stopping = EarlyStopping("val_loss", patience=2)
    mx.random.seed(0)
    first = _fit_with([checkpoint, stopping], tmp_path)
    first_best = checkpoint.best_model_path
    assert first.current_epoch == 3
    stopping.best_score = -1.0  # (a score no run beats: the earlier run's patience then runs out at once)

    mx.random.seed(1)
    second = _fit_with([checkpoint, stopping], tmp_path, model=TinyClassifier(lr=0.05))
    assert second.current_epoch == 3  # not stopped by the earlier run's best score
    assert Path(first_best).is_dir()  # the earlier run's best is kept
    assert Path(checkpoint.best_model_path).parent == tmp_path / "checkpoints" / "version_1"
    assert Path(first_best).parent == tmp_path / "checkpoints"


def test_a_checkpoint_callback_reused_in_a_new_trainer_resumes_its_best_with_ckpt_path_best(tmp_path):
    """Lightning's habit (a second Trainer given the same callbacks, fit(ckpt_path="best")) failed with
    "nothing saved yet": the reused object forgot its run at setup, before "best" was looked up."""
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ck", monitor="val_loss", save_top_k=1)
    _fit_with([checkpoint], tmp_path, max_epochs=2)
    best = checkpoint.best_model_path
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=[checkpoint], enable_checkpointing=True)
    trainer.fit(TinyClassifier(lr=0.05), make_batches(), make_batches(32, seed=1), ckpt_path="best")
    assert str(trainer.ckpt_path) == best
    assert trainer.current_epoch == 3


def test_fitting_the_same_trainer_again_continues_its_callbacks_run(tmp_path):
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ck", monitor="val_loss", save_top_k=2)
    stopping = EarlyStopping("val_loss", patience=10)
    trainer = _fit_with([checkpoint, stopping], tmp_path, max_epochs=2)
    tracked, best = dict(checkpoint.best_k_models), stopping.best_score
    trainer.max_epochs = 4
    trainer.fit(trainer.module, make_batches(), make_batches(32, seed=1))  # not refused: the same run
    assert trainer.current_epoch == 4
    assert len(checkpoint.best_k_models) == 2
    assert min(checkpoint.best_k_models.values()) <= min(tracked.values())
    assert stopping.best_score <= best


class CtrlCTwice(Callback):
    """Ctrl-C (or `signum`) after step `step` (stop and save), and again while the interrupt checkpoint is
    being written."""

    def __init__(self, signum=signal.SIGINT, step=4):
        self.pressed = 0
        self.signum = signum
        self.step = step

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == self.step and not self.pressed:
            self.pressed = 1
            signal.raise_signal(self.signum)

    def on_save_checkpoint(self, trainer, module, state):
        if self.pressed == 1:
            self.pressed = 2
            signal.raise_signal(self.signum)


def test_a_second_ctrl_c_during_the_save_is_a_keyboard_interrupt_a_sweep_loop_catches(tmp_path, capsys):
    """It raised SystemExit(130) from fit, which `except KeyboardInterrupt` around fit does not catch: a sweep
    loop, an app that runs fit, or `python -i` ended, with the model in memory."""
    model = TinyClassifier()
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=[CtrlCTwice()], enable_checkpointing=True)
    with pytest.raises(KeyboardInterrupt) as raised:
        trainer.fit(model, make_batches())
    assert "Save aborted: nothing of" in capsys.readouterr().err
    # Met by nothing in a script, it still ends it with status 130 and no traceback (tests/test_signals.py).
    assert isinstance(raised.value, SystemExit) and raised.value.code == 130
    assert raised.value.__suppress_context__  # (no traceback from inside the checkpoint writer)
    weights(model)  # the model lives on


def test_a_second_sigterm_during_the_save_ends_a_script_with_sigterms_status(tmp_path, capsys):
    """A cluster's time limit, then its kill: a shell and a scheduler read 143 as "ended by SIGTERM", where
    130 would say Ctrl-C."""
    sigterm_twice = CtrlCTwice(signal.SIGTERM)
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=[sigterm_twice], enable_checkpointing=True)
    with pytest.raises(SystemExit) as raised:
        trainer.fit(TinyClassifier(), make_batches())
    assert isinstance(raised.value, KeyboardInterrupt) and raised.value.code == 143
    assert "Save aborted: nothing of" in capsys.readouterr().err


@pytest.mark.parametrize("newest", ["top-k save", "the fit's ckpt_path"])
def test_an_aborted_save_names_the_newest_intact_checkpoint_to_resume_from(tmp_path, capsys, newest):
    """A ModelCheckpoint without `last` keeps only its top-k saves, and a resumed fit's newest intact state
    may be the checkpoint it started from (in another folder): the abort's line names that one, not "no
    earlier checkpoint"."""
    ckpt_path = None
    if newest == "top-k save":
        expected = tmp_path / "ckpts" / "epoch=0-step=6"
    else:
        first = quiet_trainer(tmp_path / "a", max_epochs=1, enable_checkpointing=True)
        first.fit(TinyClassifier(), make_batches())
        ckpt_path = expected = Path(first.checkpoint_callback.last_model_path)
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpts")
    trainer = quiet_trainer(
        tmp_path, max_epochs=3, callbacks=[CtrlCTwice(step=8), checkpoint], enable_checkpointing=True
    )
    capsys.readouterr()
    with pytest.raises(KeyboardInterrupt), warnings.catch_warnings():
        # (said of the other folder: its ModelCheckpoint starts afresh in this one)
        warnings.filterwarnings("ignore", "ModelCheckpoint: the resumed checkpoint's", UserWarning)
        trainer.fit(TinyClassifier(), make_batches(), ckpt_path=ckpt_path)
    assert f"the newest intact checkpoint is {expected} (epoch 1, global step 6)" in capsys.readouterr().err


def test_a_second_ctrl_c_as_last_becomes_a_copy_of_the_whole_save_says_it_was_written_whole(
    tmp_path, monkeypatch, capsys
):
    """`interrupted` was whole when the second Ctrl-C came (while `last` was made a copy of it): the line
    says so and names it to resume from, not "nothing of it was left"."""
    from audiotrain.train import checkpoint as ckpt

    copy_checkpoint = ckpt.copy_checkpoint

    def ctrl_c_then_copy(source, target):
        signal.raise_signal(signal.SIGINT)
        copy_checkpoint(source, target)

    monkeypatch.setattr(ckpt, "copy_checkpoint", ctrl_c_then_copy)
    callbacks = [CtrlCAtStep(4), ModelCheckpoint(dirpath=tmp_path / "ckpts", save_last=True)]
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=callbacks, enable_checkpointing=True)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(TinyClassifier(), make_batches())
    interrupted = tmp_path / "ckpts" / "interrupted"
    assert (
        f"Save aborted: {interrupted} was written whole; the newest intact checkpoint is {interrupted} "
        in capsys.readouterr().err
    )


@pytest.mark.parametrize("session", ["code.interact", "IPython"])
def test_a_second_ctrl_c_during_the_save_in_code_interact_or_ipython_is_a_plain_keyboard_interrupt(
    tmp_path, monkeypatch, session
):
    """A SystemExit would end the session (and the model in it): `code.interact` sets sys.ps1 without
    sys.flags.interactive; IPython and Jupyter answer get_ipython()."""
    if session == "code.interact":
        monkeypatch.setattr(sys, "ps1", ">>> ", raising=False)
    else:
        ipython = type(sys)("IPython")
        ipython.get_ipython = lambda: object()  # (a running shell)
        monkeypatch.setitem(sys.modules, "IPython", ipython)
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=[CtrlCTwice()], enable_checkpointing=True)
    with pytest.raises(KeyboardInterrupt) as raised:
        trainer.fit(TinyClassifier(), make_batches())
    assert not isinstance(raised.value, SystemExit)


def _fit_expecting_no_abort(trainer, model):
    """`trainer.fit` where one stop must save, not abort: an abort fails the test (its KeyboardInterrupt
    would end the whole pytest session)."""
    try:
        trainer.fit(model, make_batches())
    except KeyboardInterrupt as stop:
        pytest.fail(f"one stop aborted the fit: {stop!r}")


def test_after_an_aborted_save_one_ctrl_c_in_the_same_trainers_next_fit_saves(tmp_path):
    """A sweep loop or a notebook goes on after the KeyboardInterrupt of an aborted save: the same Trainer's
    next fit treats its first Ctrl-C as a first one (stop and save), not as the second of the aborted fit."""
    model = TinyClassifier()
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=[CtrlCTwice()], enable_checkpointing=True)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(model, make_batches())
    trainer.callbacks.append(CtrlCAtStep(6))
    with pytest.warns(UserWarning, match="last fit of this Trainer was interrupted"):
        _fit_expecting_no_abort(trainer, model)
    assert trainer.interrupted and trainer.global_step == 6
    assert (trainer.interrupted_checkpoint / "trainer_state.json").is_file()


class ReaderGone(io.StringIO):
    """stderr whose reader went away (``fit.py 2>&1 | head``, the head a terminal's Ctrl-C also ended)."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")


def test_a_ctrl_c_that_also_ended_the_log_reader_still_saves(tmp_path, monkeypatch):
    """A terminal's Ctrl-C reaches ``head`` in ``python fit.py 2>&1 | head`` as well: the stop's own line then
    finds the pipe closed. That closed pipe is not a second Ctrl-C: the fit stops and saves."""

    class CtrlCAsTheReaderGoes(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.global_step == 2:
                monkeypatch.setattr(sys, "stderr", ReaderGone())
                signal.raise_signal(signal.SIGINT)

    trainer = quiet_trainer(
        tmp_path, max_epochs=3, callbacks=[CtrlCAsTheReaderGoes()], enable_checkpointing=True
    )
    _fit_expecting_no_abort(trainer, TinyClassifier())
    assert trainer.interrupted and trainer.global_step == 2
    assert (trainer.interrupted_checkpoint / "trainer_state.json").is_file()


REPL_CELLS = """
import signal
from tasks import TinyClassifier, make_batches, quiet_trainer
from test_long_lived_process import CtrlCTwice
model = TinyClassifier()
trainer = quiet_trainer(".", max_epochs=3, callbacks=[CtrlCTwice()], enable_checkpointing=True)
trainer.fit(model, make_batches())
print("NEXT CELL RUNS", trainer.global_step, flush=True)
"""


def test_a_second_ctrl_c_during_the_save_leaves_an_interactive_session_running(tmp_path):
    """In `python -i` (and IPython / Jupyter) fit raises a plain KeyboardInterrupt: the session goes on."""
    env = child_env(tests=True)
    done = subprocess.run(
        [sys.executable, "-i"],
        input=REPL_CELLS,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Save aborted: nothing of" in done.stderr
    assert "KeyboardInterrupt" in done.stderr and "SaveAborted" not in done.stderr
    assert "NEXT CELL RUNS 4" in done.stdout


THREAD_CELLS = """
import threading, time, warnings
import mlx.core as mx
from audiotrain.train import Callback
from tasks import TinyClassifier, make_batches, quiet_trainer

warnings.simplefilter("always")
built_here = TinyClassifier()  # lazy initial weights of the main thread's stream
trainer = quiet_trainer(".", max_epochs=50)

class Slow(Callback):
    def on_train_batch_end(self, trainer, module, *args):
        time.sleep(0.01)

def in_thread(job):
    def run():
        try:
            job()
        except Exception as err:
            print("ERROR", err, flush=True)
    thread = threading.Thread(target=run)
    thread.start()
    return thread

in_thread(lambda: trainer.fit(built_here, make_batches())).join()  # a model built in another cell

model = TinyClassifier()
mx.eval(model.parameters())
background = quiet_trainer(".", max_epochs=50, callbacks=[Slow()])
thread = in_thread(lambda: background.fit(model, make_batches()))
while background.global_step < 3:
    time.sleep(0.01)
background.should_stop = True  # what stops it, where Ctrl-C cannot
thread.join()
print("STOPPED AT EPOCH", background.current_epoch, flush=True)
in_thread(lambda: quiet_trainer(".", max_epochs=1).fit(model, make_batches())).join()
print("DONE", flush=True)
"""


def test_fit_in_a_thread_says_what_it_cannot_do_and_the_process_exits_cleanly(tmp_path):
    """In a thread, fit of a model built (lazily) in the main thread failed with MLX's bare "There is no
    Stream(cpu, 0) in current thread", nothing said that Ctrl-C cannot stop it, and after any threaded fit
    MLX aborted the process as Python exited ("terminate called without an active exception", 134)."""
    env = child_env(tests=True)
    done = subprocess.run(
        [sys.executable, "-c", THREAD_CELLS],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out  # no abort at exit
    (error,) = [line for line in done.stdout.splitlines() if line.startswith("ERROR")]
    assert "parameters of TinyClassifier were made in another thread" in error
    assert "mx.eval(model.parameters())" in error
    assert out.count("Trainer.fit runs outside the main thread") == 1  # once, though three fits ran
    assert "trainer.should_stop = True" in out
    assert "STOPPED AT EPOCH" in out and "STOPPED AT EPOCH 50" not in out
    assert "DONE" in out


DAEMON_FIT_AS_THE_SCRIPT_ENDS = """
import threading, time
import mlx.core as mx
from tasks import TinyClassifier, make_batches, quiet_trainer

model = TinyClassifier()
mx.eval(model.parameters())
trainer = quiet_trainer(".", max_epochs=100000, enable_checkpointing=True)
threading.Thread(target=trainer.fit, args=(model, make_batches()), daemon=True).start()
while trainer.global_step < 3:
    time.sleep(0.01)
print("SCRIPT ENDS AT STEP", trainer.global_step, flush=True)
"""


def _exits_cleanly(script: str, tmp_path) -> subprocess.CompletedProcess:
    """Run `script` in a new Python in `tmp_path`; check it exited with 0 and MLX did not abort it."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=child_env(tests=True),
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0 and "terminate called" not in out, out
    return done


def test_a_fit_in_a_daemon_thread_as_the_script_ends_stops_saves_and_the_process_exits_cleanly(tmp_path):
    """A script that ended while its fit ran on in a daemon thread (a background training it no longer
    waited for) was aborted by MLX as Python exited ("terminate called without an active exception", status
    134; 4 runs in 4), the fit cut off mid-step and nothing of it saved. Python's exit now asks it to stop, as
    `should_stop` does: it saves `last`, says so, and the process exits with 0."""
    done = _exits_cleanly(DAEMON_FIT_AS_THE_SCRIPT_ENDS, tmp_path)
    assert "Python is exiting while Trainer.fit runs in thread" in done.stderr
    (last,) = tmp_path.glob("**/checkpoints/last")
    assert (last / "trainer_state.json").is_file()


def test_a_daemon_threads_fit_under_min_epochs_stops_at_once_as_the_script_ends(tmp_path):
    """With min_epochs not yet met, Python's exit asked the daemon thread's fit to stop through should_stop,
    which waits for min_epochs: it said 'stopping it after the current step', waited 60 s and MLX aborted
    the process all the same (status 134). It now stops as a first Ctrl-C does, `interrupted` saved."""
    script = DAEMON_FIT_AS_THE_SCRIPT_ENDS.replace("max_epochs=100000,", "max_epochs=9**9, min_epochs=9**9,")
    _exits_cleanly(script, tmp_path)
    (interrupted,) = tmp_path.glob("**/checkpoints/interrupted")
    assert (interrupted / "trainer_state.json").is_file()


def test_a_daemon_threads_fit_with_a_learning_rate_finder_still_stops_and_saves_as_the_script_ends(tmp_path):
    """LearningRateFinder sweeps in a fit of its own Trainer inside the fit's on_fit_start; that fit's end
    took the thread off the fits Python's exit stops, so the script's end aborted the fit it ran inside
    ("terminate called without an active exception", status 134), nothing saved."""
    script = DAEMON_FIT_AS_THE_SCRIPT_ENDS.replace(
        "enable_checkpointing=True)",
        "enable_checkpointing=True, callbacks=[LearningRateFinder(num_training_steps=5)])",
    ).replace("from tasks import", "from audiotrain.callbacks import LearningRateFinder\nfrom tasks import")
    done = _exits_cleanly(script, tmp_path)
    assert "Python is exiting while Trainer.fit runs in thread" in done.stderr
    (last,) = tmp_path.glob("**/checkpoints/last")
    assert (last / "trainer_state.json").is_file()


THREAD_WORKERS_AS_THE_SCRIPT_ENDS = """
import audiotrain
import mlx.core as mx
import numpy as np
from audiotrain.data import DataLoader

class Noise:
    def __len__(self):
        return 16

    def __getitem__(self, i):
        return {"x": np.asarray(mx.random.normal((4,)))}

loader = DataLoader(Noise(), batch_size=4, num_workers=2, worker_type="thread")
for epoch in range(2):
    for batch in loader:
        pass
print("DONE", flush=True)
"""


def test_a_script_iterating_a_thread_worker_loader_exits_cleanly_every_time(tmp_path):
    """A script that iterated a DataLoader of thread workers and ended was aborted by MLX as Python exited
    ('terminate called without an active exception', status 134) in about 1 run in 5: an epoch's worker
    thread, its Python code done, was collected while it still released its MLX streams, so the exit
    handler that waits for the workers no longer saw it. 12 runs, none aborted."""
    for run in range(12):
        done = subprocess.run(
            [sys.executable, "-c", THREAD_WORKERS_AS_THE_SCRIPT_ENDS],
            cwd=tmp_path,
            env=child_env(tests=True),
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert done.returncode == 0 and "DONE" in done.stdout, (run, done.returncode, done.stderr)


def test_the_signals_warning_is_for_a_fit_in_another_thread_only_and_points_at_its_fit_call(
    tmp_path, monkeypatch
):
    """A fit in the main thread says nothing of signals; one in a thread says it once, at the user's fit
    line."""
    import threading

    from audiotrain.train import threads

    monkeypatch.setattr(threads, "_warned_of_signals", False)  # (said once a process: maybe said already)

    def fit(folder: str) -> list[warnings.WarningMessage]:
        model = TinyClassifier()
        mx.eval(model.parameters())  # (built in this thread: MLX evaluates it here)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet_trainer(tmp_path / folder, max_epochs=1).fit(model, make_batches(16))
        return [w for w in caught if "outside the main thread" in str(w.message)]

    assert fit("main") == []
    in_the_thread = []
    thread = threading.Thread(target=lambda: in_the_thread.extend(fit("thread")))
    thread.start()
    thread.join(timeout=240)
    (warned,) = in_the_thread
    assert warned.filename == __file__


class CtrlCAtStep(Callback):
    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            self.step = None
            signal.raise_signal(signal.SIGINT)


def test_fitting_again_after_ctrl_c_says_how_to_continue_exactly(tmp_path):
    """Re-running the fit cell after a Ctrl-C went on at the step it stopped at with a new optimizer (Adam's
    moments and step count reset), neither exact nor fresh, and nothing said so."""
    model = TinyClassifier()
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=[CtrlCAtStep(4)], enable_checkpointing=True)
    trainer.fit(model, make_batches())
    assert trainer.interrupted and trainer.global_step == 4
    with pytest.warns(UserWarning, match=r"interrupted at epoch 0, global step 4.*ckpt_path=trainer\.interr"):
        trainer.fit(model, make_batches())
    assert trainer.global_step == 18

    again = quiet_trainer(tmp_path / "b", max_epochs=3, callbacks=[CtrlCAtStep(4)], enable_checkpointing=True)
    again.fit(model, make_batches())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the exact continuation it names: nothing to warn of
        again.fit(model, make_batches(), ckpt_path=again.interrupted_checkpoint)


class FailsAtStep(Callback):
    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            self.step = None
            raise ValueError("a bug in my callback")


def test_fitting_again_after_a_failed_fit_says_it_goes_on_mid_run(tmp_path):
    """Re-running the fit cell after an error (the bug fixed in another cell) went on at the step the failed
    fit reached, mid-epoch, with a new optimizer and the model as that fit left it, and said nothing, where
    the same re-run after a Ctrl-C warns. A new Trainer, the fresh run, still says nothing."""
    model = TinyClassifier()
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=[FailsAtStep(4)])
    with pytest.raises(ValueError, match="a bug in my callback"):
        trainer.fit(model, make_batches())
    with pytest.warns(UserWarning, match=r"failed at epoch 0, global step 4.*make a new Trainer"):
        trainer.fit(model, make_batches())
    assert trainer.global_step == 18
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet_trainer(tmp_path / "b", max_epochs=1).fit(model, make_batches())


def test_fitting_again_after_ctrl_c_goes_on_with_a_model_checkpoint_in_a_dirpath(tmp_path):
    """With ModelCheckpoint(dirpath=...), the plain fit again was refused: the folder's `interrupted`,
    which this Trainer's own Ctrl-C had saved there, counted as "checkpoints of an earlier run". It goes on
    as it does without a dirpath, and warns so; another Trainer's fresh fit there is still refused."""
    model = TinyClassifier()
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True)
    trainer = quiet_trainer(
        tmp_path, max_epochs=3, callbacks=[CtrlCAtStep(4), checkpoint], enable_checkpointing=True
    )
    trainer.fit(model, make_batches())
    assert trainer.interrupted_checkpoint == tmp_path / "ck" / "interrupted"
    with pytest.warns(UserWarning, match=r"interrupted at epoch 0, global step 4.*ckpt_path=trainer\.interr"):
        trainer.fit(model, make_batches())
    assert trainer.global_step == 18 and not trainer.interrupted
    with pytest.raises(FileExistsError, match=r"already holds checkpoints of an earlier run \(.*interrupted"):
        _fit_with([ModelCheckpoint(dirpath=tmp_path / "ck")], tmp_path / "other")


def test_a_new_model_given_to_a_trainer_that_trained_another_is_warned_of(tmp_path):
    """It took over the first model's epoch and step counters and replaced its `last`, without a word."""
    trainer = quiet_trainer(tmp_path, max_epochs=2, enable_checkpointing=True)
    first = TinyClassifier()
    trainer.fit(first, make_batches())
    trainer.max_epochs = 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same model, trained further: Lightning's continuation
        trainer.fit(first, make_batches())
    trainer.max_epochs = 4
    with pytest.warns(UserWarning, match=r"already trained another module object \(up to epoch 3, global s"):
        trainer.fit(TinyClassifier(), make_batches())


class TinySamples:
    """A map-style dataset of TinyClassifier's samples, picklable for process workers."""

    def __init__(self, n: int = 32):
        from tasks import make_data

        self.x, self.y = make_data(n)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def test_a_stage_stops_the_persistent_workers_it_started_while_the_model_lives_on(tmp_path):
    """A search that kept each trial's model kept each trial's persistent worker processes (the module keeps
    its Trainer, which keeps its loaders): 2 more spawned processes per trial. As in Lightning, a stage's
    end stops them, and the next stage starts them again."""
    import multiprocessing

    from audiotrain.data import DataLoader

    def loader(shuffle):
        return DataLoader(
            TinySamples(), batch_size=8, shuffle=shuffle, num_workers=1, worker_type="process",
            persistent_workers=True,
        )  # fmt: skip

    train, val = loader(True), loader(False)
    model = TinyClassifier()
    trainer = quiet_trainer(tmp_path, max_epochs=2)
    trainer.fit(model, train, val)
    assert model.trainer is trainer  # (what kept the loaders alive)
    assert multiprocessing.active_children() == []
    trainer.validate(model, val)
    assert multiprocessing.active_children() == []
    trainer.max_epochs = 3  # a fit goes on: its workers start again
    trainer.fit(model, train, val)
    assert trainer.current_epoch == 3 and multiprocessing.active_children() == []


def test_a_fit_on_several_loaders_stops_each_loaders_persistent_workers(tmp_path):
    """A fit on a dict of loaders (a CombinedLoader) left the persistent worker processes of the loaders in
    it running after the stage ended: only a DataLoader passed itself was closed."""
    import multiprocessing

    from audiotrain.data import DataLoader

    def loader():
        return DataLoader(
            TinySamples(), batch_size=8, num_workers=1, worker_type="process", persistent_workers=True
        )

    class OnA(TinyClassifier):
        def compute_loss(self, batch):  # ({"a": batch_a, "b": batch_b}: one set is enough here)
            return super().compute_loss(batch["a"])

    trainer = quiet_trainer(tmp_path, max_epochs=2)
    trainer.fit(OnA(), {"a": loader(), "b": loader()})
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("hold", [False, True])
def test_a_ctrl_c_while_a_stage_stops_its_workers_stops_every_loaders_workers_first(hold):
    """A second Ctrl-C just after a stopped fit's save came out of the first loader's close and left the other
    loader's workers running. Every loader is closed first; the Ctrl-C comes out then, unless the fit it lands
    on already ended on a stop (`hold_interrupts`: what it asks for has happened)."""
    from audiotrain.data import DataLoader
    from audiotrain.data.loader import stop_stage_workers

    closed = []

    class Closing(DataLoader):
        def __init__(self, name, interrupted):
            super().__init__(TinySamples(8), batch_size=4)
            self.name, self.interrupted = name, interrupted

        def close(self):
            closed.append(self.name)
            if self.interrupted:
                raise KeyboardInterrupt

    loaders = (Closing("train", interrupted=True), Closing("val", interrupted=False))
    if hold:
        stop_stage_workers(*loaders, hold_interrupts=True)
    else:
        with pytest.raises(KeyboardInterrupt):
            stop_stage_workers(*loaders)
    assert closed == ["train", "val"]


def test_fits_overlapping_in_threads_leave_the_callers_generators_as_they_found_them(tmp_path):
    """Each fit put back what it found: with a fit in a thread running while the main thread's fit ran, the
    one that ended last put back the generators as the other had seeded them, and the code after them drew
    from the Trainer's seed. (MLX's generator is each thread's own: each fit puts back its thread's.)"""
    import threading

    from audiotrain.train import Callback

    both_running, main_fit_ended = threading.Barrier(2, timeout=120), threading.Event()
    main_fit_seeded = threading.Event()

    class Overlap(Callback):
        def __init__(self, last: bool):
            self.last = last

        def on_train_start(self, trainer, module):
            if not self.last:
                main_fit_seeded.set()  # the thread's fit starts from the generators as this one seeded them
            both_running.wait()  # each fit has seeded the generators: the two are inside at once

        def on_train_end(self, trainer, module):
            if self.last:  # the thread's fit ends after the main thread's
                assert main_fit_ended.wait(timeout=120)

    def fit(k, model=None):
        if model is None:
            model = TinyClassifier()
            mx.eval(model.parameters())  # (built in this thread: MLX evaluates it here)
        trainer = quiet_trainer(tmp_path / str(k), max_epochs=1, seed=k, callbacks=[Overlap(last=k == 2)])
        trainer.fit(model, make_batches(32))

    def draws():
        return float(np.random.rand()), random.random(), mx.random.uniform().item()

    def seed_the_host():
        np.random.seed(2024), random.seed(2024), mx.random.seed(2024)

    model = TinyClassifier()  # (its weights drawn before the host's draws below)
    mx.eval(model.parameters())
    seed_the_host()
    expected = draws()
    seed_the_host()
    thread_errors = []

    def fit_in_the_thread():
        try:
            assert main_fit_seeded.wait(timeout=120)
            fit(2)
        except BaseException as error:  # (a thread's error is only printed: kept for the assert below)
            thread_errors.append(error)

    in_a_thread = threading.Thread(target=fit_in_the_thread)
    in_a_thread.start()
    fit(1, model)
    main_fit_ended.set()
    deadlines.join(in_a_thread, "the fit in the other thread to end", 300)
    assert not both_running.broken
    # The thread's fit, ending last, put back what the main thread's found (and did not fail doing so).
    assert thread_errors == []
    assert draws() == expected


@pytest.mark.parametrize(
    "hook", ["on_sanity_check_start", "on_sanity_check_end", "on_train_end", "on_fit_end"]
)
def test_a_keyboard_interrupt_in_the_sanity_check_or_the_end_hooks_stops_and_saves(tmp_path, capsys, hook):
    """A notebook's "interrupt kernel" arriving as a KeyboardInterrupt in `on_sanity_check_start`/`_end` ended
    fit with a raw traceback (state failed, nothing saved), and one in `on_train_end`/`on_fit_end` said
    "saving a checkpoint" and saved none (`interrupted_checkpoint` None, `interrupted` True). Both now stop as
    one in any other hook does: fit returns, `interrupted` is saved and named."""

    class InterruptThere(Callback):
        pass

    def interrupt(self, trainer, module):
        raise KeyboardInterrupt

    setattr(InterruptThere, hook, interrupt)
    trainer = quiet_trainer(
        tmp_path,
        max_epochs=1,
        num_sanity_val_steps=2,
        callbacks=[InterruptThere()],
        enable_checkpointing=True,
    )
    try:
        trainer.fit(TinyClassifier(), make_batches(), make_batches(32, seed=1))
    except KeyboardInterrupt:  # (uncaught, it would end the whole test session)
        pytest.fail(f"fit raised the KeyboardInterrupt of {hook}")
    assert trainer.interrupted
    assert trainer.interrupted_checkpoint == tmp_path / "checkpoints" / "interrupted"
    assert (trainer.interrupted_checkpoint / "model.safetensors").is_file()
    assert f"Saved {trainer.interrupted_checkpoint} at epoch" in capsys.readouterr().err


def test_fitting_the_same_trainer_again_after_a_chdir_keeps_its_runs_folder(tmp_path, monkeypatch):
    """With the default, relative default_root_dir, a cell that changed the working folder between two fits
    of the same Trainer split its run: the second fit claimed a new `logs/checkpoints` under the new folder
    (its own `last` and best there), leaving the first folder's stale `last` and best, so a `save_top_k=1`
    run kept two "best" checkpoints in two places."""
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    monkeypatch.chdir(tmp_path / "first")
    checkpoint = ModelCheckpoint(monitor="val_loss", save_top_k=1, save_last=True)
    trainer = quiet_trainer("logs", max_epochs=1, callbacks=[checkpoint], enable_checkpointing=True)
    trainer.fit(TinyClassifier(lr=0.05), make_batches(), make_batches(32, seed=1))
    folder = tmp_path / "first" / "logs" / "checkpoints"
    monkeypatch.chdir(tmp_path / "second")
    trainer.max_epochs = 3
    trainer.fit(trainer.module, make_batches(), make_batches(32, seed=1))
    assert list((tmp_path / "second").iterdir()) == []
    assert checkpoint.dirpath == folder and Path(checkpoint.last_model_path) == folder / "last"
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == sorted(
        ["last", Path(checkpoint.best_model_path).name]
    )


class Calibrated(TinyClassifier):
    """Logits divided by a temperature that a notebook cell sets between calls (calibration)."""

    temperature = 1.0

    def __call__(self, x):
        return super().__call__(x) / self.temperature

    def predict_step(self, batch, batch_idx=0):
        return mx.softmax(self(batch[0]), axis=-1)


def test_validate_test_and_predict_see_an_attribute_changed_between_calls(tmp_path):
    """Trainer.validate / test / predict kept the step each compiled at its first call on that module, with
    the Python values it read then: after `model.temperature = 5.0` in the next cell, the second call of each
    returned the first's numbers unchanged (stale val_loss, uncalibrated probabilities), silently."""
    model = Calibrated()
    trainer = quiet_trainer(tmp_path, max_epochs=1, compile=True, enable_model_summary=False)
    trainer.fit(model, make_batches(), make_batches(32))
    val = make_batches(32)
    before = (trainer.validate(model, val), trainer.test(model, val), trainer.predict(model, val))
    model.temperature = 5.0
    after = (trainer.validate(model, val), trainer.test(model, val), trainer.predict(model, val))
    x, _ = val[0]
    eager = mx.softmax(model(x), axis=-1)  # what the model now gives, outside the Trainer
    np.testing.assert_allclose(np.array(after[2][0]), np.array(eager), rtol=1e-5)
    # (two batches of 16: the weighted mean is the mean of the two)
    loss = np.mean([float(mx.mean(nn.losses.cross_entropy(model(a), b))) for a, b in val])
    assert after[0][0]["val_loss"] == pytest.approx(loss, rel=1e-5) != before[0][0]["val_loss"]
    assert after[1][0]["test_loss"] == pytest.approx(loss, rel=1e-5) != before[1][0]["test_loss"]


@pytest.mark.parametrize(
    "raise_limits",
    [
        lambda t: (setattr(t, "max_epochs", 2), setattr(t, "max_steps", -1)),  # -1: no limit, as in Trainer()
        lambda t: (setattr(t.fit_loop, "max_epochs", 2), setattr(t.fit_loop, "max_steps", -1)),  # Lightning's
    ],
    ids=["trainer", "fit_loop"],
)
def test_a_notebook_raises_the_limits_of_a_finished_trainer_and_fits_on(tmp_path, raise_limits):
    """`trainer.max_steps = -1` after a fit (Lightning's "no limit", which Trainer(max_steps=-1) takes) was
    kept as -1: the next fit said "nothing to train, already at ... step 6 (max_steps=-1)"; Lightning's own
    idiom, `trainer.fit_loop.max_epochs = 2`, was an AttributeError; and the Trainer's repr still showed the
    max_epochs it was built with."""
    model = TinyClassifier()
    trainer = quiet_trainer(tmp_path, max_epochs=1, max_steps=3, enable_model_summary=False)
    trainer.fit(model, make_batches())
    assert trainer.global_step == 3
    raise_limits(trainer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (a new optimizer for the second fit: warned, as it should be)
        trainer.fit(model, make_batches())
    assert (trainer.current_epoch, trainer.global_step) == (2, 12)
    assert trainer.max_steps is None and trainer.fit_loop.max_steps is None
    assert "max_epochs=2" in repr(trainer)
    with pytest.raises(ValueError, match=r"max_epochs = 0: expected a positive int, or None or -1"):
        trainer.max_epochs = 0


class Curriculum(TinyClassifier):
    """A curriculum set in a hook: the loss's weight grows each epoch. `epochs_seen` is bookkeeping that the
    step never reads."""

    weight = 0.0
    epochs_seen = 0

    def on_train_epoch_start(self, epoch):
        self.weight = float(epoch)
        self.epochs_seen += 1

    def compute_loss(self, batch):
        loss, metrics = super().compute_loss(batch)
        return loss * (1.0 + self.weight), metrics


def test_a_hooks_new_value_for_what_the_compiled_step_reads_is_warned_of(tmp_path):
    """`self.weight = float(epoch)` in on_train_epoch_start, read by compute_loss: compiled, the step kept the
    first epoch's 0.0 for the whole fit (the eager fit's loss grew 1x, 2x, 3x; the compiled one's did not)
    and nothing said so. Now a warning names the attribute, the value the step keeps and what to do; the
    bookkeeping attribute the step does not read is not named."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = quiet_trainer(tmp_path, max_epochs=3, compile=True, enable_model_summary=False)
        trainer.fit(Curriculum(), make_batches())
    said = [str(w.message) for w in caught if "since the compiled training step was traced" in str(w.message)]
    assert len(said) == 1, said  # once, though it changes again at epoch 2
    assert said[0].startswith("Curriculum.weight changed from 0.0 to 1.0") and "still uses 0.0" in said[0]
    assert "Trainer(compile=False)" in said[0] and "epochs_seen" not in said[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_trainer(tmp_path, max_epochs=3, compile=False).fit(Curriculum(), make_batches())
    assert not [w for w in caught if "since the compiled training step was traced" in str(w.message)]


class FailsInTeardown(Callback):
    def teardown(self, trainer, module, stage):
        raise RuntimeError("my teardown failed")


def runs_listing(folder):
    """What `python -m audiotrain runs FOLDER`, run beside this process, prints (it must end with 0)."""
    listing = subprocess.run(
        [sys.executable, "-m", "audiotrain", "runs", str(folder)],
        capture_output=True, text=True, env=child_env(), timeout=120,
    )  # fmt: skip
    assert listing.returncode == 0, listing.stderr
    return listing.stdout


def test_a_callbacks_failing_teardown_leaves_no_fit_running_in_the_runs_listing(tmp_path):
    """A sweep's trial whose callback raised in `teardown` kept its checkpoint folder claimed (its lock file
    open) for as long as the sweep's process lived: `audiotrain runs`, run beside it, listed the trial as
    running, and each such trial kept one more file open. The other callbacks' teardown runs all the same
    (ModelCheckpoint's gives the folder back), and the callback's error still ends the fit."""
    trainer = quiet_trainer(tmp_path, max_epochs=1, enable_checkpointing=True, callbacks=[FailsInTeardown()])
    with pytest.raises(RuntimeError, match="my teardown failed"):
        trainer.fit(TinyClassifier(), make_batches(), make_batches(32, seed=1))
    assert "running" not in runs_listing(tmp_path)
    assert (tmp_path / "checkpoints" / "last").is_dir()  # (the run it lists: the fit saved)


class LoggerFailingToFinish:
    """A logger of the user's own, written as Lightning's are, whose backend fails as the run ends."""

    name, version, save_dir, log_dir = "mine", 0, None, None

    def log_hyperparams(self, params):
        pass

    def log_metrics(self, metrics, step=None):
        pass

    def finalize(self, status):
        raise RuntimeError("my logger could not finish")


def test_a_loggers_failing_finalize_leaves_no_fit_running_in_the_runs_listing(tmp_path):
    """As a failing teardown did: the logger's error came before the callbacks' teardown, and the trial's
    checkpoint folder stayed claimed (listed as running) while the sweep's process lived."""
    trainer = quiet_trainer(
        tmp_path, max_epochs=1, enable_checkpointing=True, logger=LoggerFailingToFinish(), log_every_n_steps=1
    )
    with pytest.raises(RuntimeError, match="my logger could not finish"):
        trainer.fit(TinyClassifier(), make_batches(), make_batches(32, seed=1))
    assert "running" not in runs_listing(tmp_path)


def test_a_keyboard_interrupt_in_on_save_checkpoint_is_named_after_that_hook(tmp_path, capsys):
    """A callback that raised KeyboardInterrupt in on_save_checkpoint (a sweep's "stop this trial" as the
    epoch's checkpoint is saved) was said as "Interrupted (KeyboardInterrupt in on_train_epoch_end)": the
    hook in which ModelCheckpoint saved, not the user's hook that raised."""

    class StopAsItSaves(Callback):
        raised = False

        def on_save_checkpoint(self, trainer, module, checkpoint):
            if not self.raised:  # (once: the stop's own save then goes through)
                self.raised = True
                raise KeyboardInterrupt

    trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=[StopAsItSaves()], enable_checkpointing=True)
    trainer.fit(TinyClassifier(), make_batches(), make_batches(32, seed=1))
    err = capsys.readouterr().err
    assert trainer.interrupted and (trainer.interrupted_checkpoint / "model.safetensors").is_file()
    assert "Interrupted (KeyboardInterrupt in StopAsItSaves.on_save_checkpoint" in err, err
    assert "KeyboardInterrupt in on_train_epoch_end" not in err, err


def test_a_keyboard_interrupt_in_the_sanity_check_stops_it_after_that_batch_as_it_says(tmp_path, capsys):
    """A KeyboardInterrupt raised in on_validation_batch_end during the sanity check printed "saving a
    checkpoint after this step or validation batch", and the check still ran its other batches (a hook that
    raised on each was then taken for a second Ctrl-C, which aborts the save)."""

    class StopInTheCheck(Callback):
        batches = 0

        def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0):
            if trainer.sanity_checking:
                self.batches += 1
                raise KeyboardInterrupt

    stop = StopInTheCheck()
    trainer = quiet_trainer(
        tmp_path, max_epochs=1, num_sanity_val_steps=3, callbacks=[stop], enable_checkpointing=True
    )
    try:
        trainer.fit(TinyClassifier(), make_batches(), make_batches(32, seed=1))
    except KeyboardInterrupt:  # (uncaught, it would end the whole test session)
        pytest.fail(f"the sanity check ran on after the stop: {stop.batches} batches, the second an abort")
    err = capsys.readouterr().err
    assert "after this step or validation batch" in err, err
    assert stop.batches == 1, err
    assert trainer.interrupted and (trainer.interrupted_checkpoint / "model.safetensors").is_file()
