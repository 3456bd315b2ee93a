"""Exact resume: k steps + resume in a new process + N-k steps == N steps straight, bitwise."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from csv import DictReader
from pathlib import Path

import child_processes
import numpy as np
import pytest

from tests import deadlines

HERE = Path(__file__).parent


def child_env() -> dict[str, str]:
    """The environment of the Python processes these tests start: this checkout first, then the tests' helpers."""
    return child_processes.child_env(tests=True)


class CtrlCWhileLoading:
    """64 pairs, read by process workers. Loading the first sample of epoch `ctrl_c_in_epoch` is where a
    terminal's Ctrl-C lands: it reaches the main process (waiting for this batch) and kills this worker,
    as it kills one still starting, before it ignores SIGINT."""

    def __init__(self, ctrl_c_in_epoch=None):
        from tasks import make_data

        self.x, self.y = make_data(64)
        self.ctrl_c_in_epoch, self.epoch = ctrl_c_in_epoch, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        if i == 0 and self.epoch == self.ctrl_c_in_epoch:
            os.kill(os.getppid(), signal.SIGINT)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        return self.x[i], self.y[i]


def run(*args, **kw):
    return subprocess.run(
        [sys.executable, str(HERE / "resume_worker.py"), *map(str, args)],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


@pytest.mark.slow
def test_resume_mid_epoch_in_new_process_is_bitwise_exact(tmp_path):
    # 100 items / batch 12 = 9 batches per epoch (last one short); accumulation 2 → 5 steps per epoch.
    # Checkpoints every 3 steps: step 3 is mid-epoch (batch 6 of 9), step 6 is in epoch 1.
    straight = run(tmp_path / "a.npz", tmp_path / "a", 11, "-", "-")
    assert straight.returncode == 0, straight.stderr
    part = run(tmp_path / "b.npz", tmp_path / "b", 3, "-", 3)
    assert part.returncode == 0, part.stderr
    ckpt = tmp_path / "b" / "ckpt" / "epoch=0-step=3"
    state = json.loads((ckpt / "trainer_state.json").read_text())
    progress = state["progress"]
    assert (progress["epoch"], progress["batch_in_epoch"], progress["global_step"]) == (0, 6, 3)  # mid-epoch
    resumed = run(tmp_path / "c.npz", tmp_path / "c", 11, ckpt, "-")
    assert resumed.returncode == 0, resumed.stderr
    a, c = np.load(tmp_path / "a.npz"), np.load(tmp_path / "c.npz")
    assert int(a["step"]) == int(c["step"]) == 11
    for k in a.files:
        np.testing.assert_array_equal(a[k], c[k], err_msg=k)


SIGINT_SCRIPT = """
import sys, time
sys.path.insert(0, {here!r})
import audiotrain
import mlx.core as mx
from tasks import TinyClassifier, make_batches
from audiotrain import Trainer

class Slow(TinyClassifier):
    def on_train_batch_end(self, outputs, batch, batch_idx):
        if self.global_step == 3:
            print("READY", flush=True)
        time.sleep(0.05)

t = Trainer(max_epochs=1000, default_root_dir={root!r}, enable_progress_bar=False, compile=False)
t.fit(Slow(), make_batches())
print("RETURNED", t.interrupted, t.global_step, flush=True)
"""


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    script = SIGINT_SCRIPT.format(here=str(HERE), root=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        assert deadlines.read_line(proc, "'READY' from the child", 120).strip() == "READY"
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = deadlines.communicate(proc, "the fit to save and end after Ctrl-C", 120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "RETURNED True" in out
    assert "Resume with" in out + err and "ckpt_path=" in out + err
    assert (tmp_path / "checkpoints" / "interrupted" / "model.safetensors").exists()


def _interrupt_during_validation(tmp_path, val_check_interval, epoch, batch_idx, module_class=None):
    """Run 3 epochs straight and again with a Ctrl-C at batch `batch_idx` of the first validation
    in `epoch` (mid-epoch when val_check_interval < 1), then resume the second in a new Trainer. Returns the straight and resumed (trainer, module) pairs, the stopped trainer,
    the validation batches seen after the signal, and the checkpoint's trainer_state.json. The models are
    `module_class(dropout=0.2)` (TinyClassifier by default)."""
    from audiotrain import Trainer, seed_everything
    from audiotrain.train.callbacks import Callback

    from tasks import TinyClassifier, make_batches

    module_class = module_class or TinyClassifier

    class CtrlCInValidation(Callback):
        def __init__(self):
            self.validations, self.after_signal = 0, 0

        def on_validation_start(self, trainer, module):
            self.validations += 1 if trainer.current_epoch == epoch else 0

        def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx_):
            if trainer.interrupted:
                self.after_signal += 1
            if trainer.current_epoch == epoch and self.validations == 1 and batch_idx_ == batch_idx:
                signal.raise_signal(signal.SIGINT)  # the Trainer's handler: stop and save

    def trainer(root, *callbacks):
        return Trainer(
            max_epochs=3,
            default_root_dir=root,
            enable_progress_bar=False,
            seed=1,
            val_check_interval=val_check_interval,
            callbacks=list(callbacks),
        )

    val = make_batches(64, batch_size=8)
    seed_everything(0)
    straight = (trainer(tmp_path / "a"), module_class(dropout=0.2))
    straight[0].fit(straight[1], make_batches(), val)

    seed_everything(0)
    spy = CtrlCInValidation()
    stopped = trainer(tmp_path / "b", spy)
    stopped.fit(module_class(dropout=0.2), make_batches(), val)
    saved = tmp_path / "b" / "checkpoints" / "interrupted"
    assert stopped.interrupted and stopped.interrupted_checkpoint == saved
    state = json.loads((saved / "trainer_state.json").read_text())

    resumed = (trainer(tmp_path / "c"), module_class(dropout=0.2))
    resumed[0].fit(resumed[1], make_batches(), val, ckpt_path=str(saved))
    return straight, resumed, stopped, spy.after_signal, state


def _assert_same_run(straight, resumed):
    """Bitwise-equal weights and the same history (every column but wall time)."""
    from tasks import weights

    for name, value in weights(straight[1]).items():
        np.testing.assert_array_equal(value, weights(resumed[1])[name], err_msg=name)
    a, b = straight[0].history, resumed[0].history
    assert a.keys() == b.keys()
    for key in a.keys() - {"time"}:
        assert a[key] == b[key], key


def test_ctrl_c_during_epoch_end_validation_stops_it_and_the_resumed_run_validates_again(tmp_path):
    """A Ctrl-C in the epoch-end validation stops it after the current batch (a long validation
    does not hold the user up), saves with the epoch still open at its last batch, and the resumed
    fit runs that validation and the epoch's end: weights and history equal an uninterrupted run."""
    straight, resumed, stopped, after_signal, state = _interrupt_during_validation(tmp_path, 1.0, 1, 2)
    assert after_signal == 0  # no validation batch ran after the one the signal came in
    assert (state["progress"]["epoch"], state["progress"]["batch_in_epoch"]) == (
        1,
        6,
    )  # epoch 1 trained, not yet ended
    assert len(stopped.history["epoch"]) == 1  # the stopped epoch has no history row
    _assert_same_run(straight, resumed)
    assert resumed[0].history["val_loss"][1] == straight[0].history["val_loss"][1]


def test_ctrl_c_during_mid_epoch_validation_is_rerun_after_resuming(tmp_path):
    """val_check_interval=0.5: a Ctrl-C in the mid-epoch validation saves right after the training
    step before it with that validation marked pending; the resumed fit runs it first."""
    straight, resumed, stopped, after_signal, state = _interrupt_during_validation(tmp_path, 0.5, 1, 1)
    assert after_signal == 0
    progress = state["progress"]
    assert (progress["epoch"], progress["batch_in_epoch"], progress["validation_pending"]) == (1, 3, True)
    _assert_same_run(straight, resumed)


def test_ctrl_c_in_the_last_validation_batch_still_stops_that_validation(tmp_path):
    """The signal comes after the loop's last check for it (the hooks of batch 7, the last of 8): the
    validation is still a stopped one, its means unreported and rerun after resuming."""
    straight, resumed, stopped, after_signal, state = _interrupt_during_validation(tmp_path, 1.0, 1, 7)
    assert len(stopped.history["epoch"]) == 1  # the stopped epoch has no history row
    assert (state["progress"]["epoch"], state["progress"]["batch_in_epoch"]) == (1, 6)
    _assert_same_run(straight, resumed)


@pytest.mark.parametrize("val_check_interval", [0.5, 1.0])
def test_an_error_in_a_validation_is_rerun_after_resuming_from_on_exception_checkpoint(
    tmp_path, val_check_interval
):
    """An error raised in epoch 1's first validation (mid-epoch, or at the epoch's end): the checkpoint
    OnExceptionCheckpoint saves resumes with that validation, as Lightning 2.6's (measured: its resumed fit
    calls on_validation_start at that validation's global step and epoch first). It skipped it: the resumed
    run never validated there, so its history lacked those means and its callbacks that validation."""
    from audiotrain import Trainer, seed_everything
    from audiotrain.train.callbacks import Callback, OnExceptionCheckpoint

    from tasks import TinyClassifier, make_batches

    class Failed(Exception):
        pass

    class FailInValidation(Callback):
        def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.current_epoch == 1 and batch_idx == 1:
                raise Failed

    class Starts(Callback):
        def __init__(self):
            self.at = []

        def on_validation_start(self, trainer, module):
            self.at.append((trainer.current_epoch, trainer.global_step))

    def trainer(root, *callbacks):
        kw = dict(max_epochs=3, enable_progress_bar=False, enable_checkpointing=False, seed=1)
        return Trainer(
            default_root_dir=root, val_check_interval=val_check_interval, callbacks=list(callbacks), **kw
        )

    val = make_batches(64, batch_size=8)
    seed_everything(0)
    straight = (trainer(tmp_path / "a"), TinyClassifier(dropout=0.2))
    straight[0].fit(straight[1], make_batches(), val)

    seed_everything(0)
    with pytest.raises(Failed):
        trainer(tmp_path / "b", OnExceptionCheckpoint(tmp_path / "b"), FailInValidation()).fit(
            TinyClassifier(dropout=0.2), make_batches(), val
        )
    starts = Starts()
    resumed = (trainer(tmp_path / "c", starts), TinyClassifier(dropout=0.2))
    resumed[0].fit(resumed[1], make_batches(), val, ckpt_path=str(tmp_path / "b" / "on_exception"))
    assert starts.at[0] == ((1, 9) if val_check_interval == 0.5 else (1, 12))
    _assert_same_run(straight, resumed)


def test_a_resumed_run_draws_what_an_uninterrupted_one_draws_after_a_ctrl_c_in_a_random_validation(tmp_path):
    """A validation step that draws random numbers (an augmentation, a sampled metric): the Ctrl-C'd
    validation's draws are not in the checkpoint's random state, so the resumed run's training draws
    (dropout) are the straight run's and so are its weights."""
    import mlx.core as mx
    from tasks import TinyClassifier

    class DrawsInValidation(TinyClassifier):
        def validation_step(self, batch, batch_idx):
            loss, metrics = self.compute_loss(batch)
            return loss + 0.0 * mx.random.uniform(), metrics

    straight, resumed, *_ = _interrupt_during_validation(tmp_path, 1.0, 1, 2, DrawsInValidation)
    _assert_same_run(straight, resumed)


def test_after_ctrl_c_last_is_the_interrupted_state(tmp_path):
    """ckpt_path="last" after a Ctrl-C resumes where it stopped, not from the last epoch-end save."""
    _, _, stopped, _, _ = _interrupt_during_validation(tmp_path, 0.5, 1, 1)
    folder = tmp_path / "b" / "checkpoints"
    for name in ("model.safetensors", "optimizer.safetensors", "trainer_state.json"):
        assert (folder / "last" / name).read_bytes() == (folder / "interrupted" / name).read_bytes(), name
    assert stopped.callbacks.checkpoint_path("last") == str(folder / "last")
    assert (
        json.loads((folder / "last" / "trainer_state.json").read_text())["progress"]["global_step"]
        == stopped.global_step
    )


def test_an_epoch_cut_short_by_max_steps_reaches_the_loggers_once_after_resuming(tmp_path):
    """max_steps=3 stops in the middle of epoch 0 (6 batches): the loggers get that epoch's end there, as
    Lightning logs an epoch that max_steps ends. A fit resumed from its checkpoint trains the rest of
    epoch 0 and replaces the epoch's history row with the whole epoch's, but sends the loggers no second
    end for it (they used to get epoch 0 twice, at steps 3 and 6: two CSV rows and two points per chart)."""
    from audiotrain import Trainer, seed_everything
    from audiotrain.train.loggers import CSVLogger

    from tasks import RecordingLogger, TinyClassifier, make_batches

    class LogsAtEpochEnd(TinyClassifier):
        def on_train_epoch_end(self, epoch, metrics):
            self.log("epoch_end_hook", float(epoch))

    def fit(root, max_steps, ckpt_path=None):
        seed_everything(0)
        recorder, csv = RecordingLogger(), CSVLogger(root, name="csv")
        trainer = Trainer(
            max_steps=max_steps,
            default_root_dir=root,
            enable_progress_bar=False,
            log_every_n_steps=2,
            logger=[recorder, csv],
        )
        module = LogsAtEpochEnd()
        trainer.fit(module, make_batches(), make_batches(32, seed=1), ckpt_path=ckpt_path)
        return (trainer, module), recorder, csv

    straight, _, _ = fit(tmp_path / "a", 9)
    _, first, _ = fit(tmp_path / "b", 3)
    resumed, second, csv = fit(tmp_path / "b", 9, ckpt_path=str(tmp_path / "b" / "checkpoints" / "last"))

    logged = first.metrics + second.metrics
    assert [(step, m["epoch"]) for step, m in logged if "train_loss_epoch" in m] == [(3, 0), (9, 1)]
    assert [(step, m["epoch_end_hook"]) for step, m in logged if "epoch_end_hook" in m] == [(3, 0), (9, 1)]
    with open(csv.metrics_file, newline="") as f:
        # (the epoch ends' rows: validation rows carry the epoch too, as Lightning's)
        rows = [row for row in DictReader(f) if row["train_loss_epoch"]]
    assert [(row["step"], row["epoch"]) for row in rows] == [("3", "0"), ("9", "1")]
    # The history keeps one row per epoch, the whole epoch's: the same as a fit that never stopped.
    assert resumed[0].history["step"] == [6, 9]
    _assert_same_run(straight, resumed)


def test_a_fit_max_steps_stopped_between_logging_steps_resumes_to_the_straight_runs_history(tmp_path):
    """max_steps=5 with log_every_n_steps=2 stops between logging steps, where it reads the epoch's means
    and logs its last interval. Resumed with a larger max_steps, the epoch's means summed steps 1-4, 5 and
    6-12 in other groups than the straight run (5 with 6): a pitch tracker's train_voicing_loss came out
    0.7291509840223525 against 0.729150899251302 straight, though the weights were the same."""
    from audiotrain import DataLoader, Trainer, seed_everything

    import mlx.core as mx
    import mlx.nn as nn
    from tasks import TinyClassifier, make_data

    class VoicedFrames(TinyClassifier):
        def compute_loss(self, batch):
            x, y = batch
            logits = self(x)
            loss = mx.mean(nn.losses.cross_entropy(logits, y))
            # (a mean over the frames it counts, as a pitch tracker's over its voiced frames)
            return loss, {"p": (mx.mean(mx.sigmoid(logits)), mx.sum(y > 0))}

    x, y = make_data(90)
    data = list(zip(x, y))

    def fit(max_steps, ckpt_path=None):
        seed_everything(0)
        trainer = Trainer(
            max_steps=max_steps,
            default_root_dir=tmp_path,
            enable_progress_bar=False,
            enable_model_summary=False,
            log_every_n_steps=2,
            logger=False,
            enable_checkpointing=False,
        )
        module = VoicedFrames()
        trainer.fit(module, DataLoader(data, batch_size=8, shuffle=True), ckpt_path=ckpt_path)
        return trainer, module

    straight = fit(12)
    stopped, _ = fit(5)
    stopped.save_checkpoint(tmp_path / "stopped")
    resumed = fit(12, ckpt_path=str(tmp_path / "stopped"))
    _assert_same_run(straight, resumed)


def test_a_validation_a_ctrl_c_put_off_joins_its_steps_csv_row_after_resuming(tmp_path):
    """A Ctrl-C after a training step whose validation was due: the resumed fit runs that validation
    first, and its values go into that step's metrics.csv row, as without the stop (they used to start a
    second row for the step)."""
    import csv

    from audiotrain import Trainer, seed_everything
    from audiotrain.train.callbacks import Callback
    from audiotrain.train.loggers import CSVLogger

    from tasks import TinyClassifier, make_batches

    class CtrlCAtStep4(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.global_step == 4:
                signal.raise_signal(signal.SIGINT)  # the Trainer's handler: stop and save

    def fit(root, *callbacks, ckpt_path=None):
        seed_everything(0)
        trainer = Trainer(
            max_steps=8,
            default_root_dir=root,
            enable_progress_bar=False,
            log_every_n_steps=1,
            val_check_interval=2,
            check_val_every_n_epoch=None,
            callbacks=list(callbacks),
            logger=CSVLogger(root, name="csv"),
        )
        trainer.fit(TinyClassifier(), make_batches(), make_batches(32, batch_size=8), ckpt_path=ckpt_path)
        return trainer

    def rows(root):
        with open(root / "csv" / "version_0" / "metrics.csv", newline="") as f:
            return [{k: v for k, v in row.items() if "time" not in k} for row in csv.DictReader(f)]

    fit(tmp_path / "a")
    stopped = fit(tmp_path / "b", CtrlCAtStep4())
    assert stopped.interrupted and stopped.global_step == 4
    fit(tmp_path / "b", ckpt_path=stopped.interrupted_checkpoint)
    assert rows(tmp_path / "b") == rows(tmp_path / "a")


def test_a_ctrl_c_before_the_first_step_saves_a_checkpoint_that_resumes_exactly(tmp_path):
    """It used to warn "nothing to train" and save nothing: no `interrupted`, no `last` to resume."""
    from audiotrain import Trainer, seed_everything
    from audiotrain.train.callbacks import Callback

    from tasks import TinyClassifier, make_batches, weights

    class CtrlCAtTrainStart(Callback):
        def on_train_start(self, trainer, module):
            signal.raise_signal(signal.SIGINT)  # the Trainer's handler: stop and save

    def fit(root, *callbacks, ckpt_path=None):
        seed_everything(0)
        trainer = Trainer(
            max_epochs=2, default_root_dir=root, enable_progress_bar=False, callbacks=list(callbacks)
        )
        module = TinyClassifier()
        trainer.fit(module, make_batches(), make_batches(32), ckpt_path=ckpt_path)
        return trainer, module

    straight = fit(tmp_path / "a")[1]
    stopped, _ = fit(tmp_path / "b", CtrlCAtTrainStart())
    assert stopped.interrupted and stopped.global_step == 0
    assert stopped.interrupted_checkpoint == tmp_path / "b" / "checkpoints" / "interrupted"
    assert (tmp_path / "b" / "checkpoints" / "last" / "model.safetensors").is_file()
    resumed = fit(tmp_path / "b", ckpt_path=tmp_path / "b" / "checkpoints" / "last")[1]
    for name, value in weights(straight).items():
        np.testing.assert_array_equal(value, weights(resumed)[name], err_msg=name)


def test_ctrl_c_with_checkpointing_off_saves_nothing_as_lightning(tmp_path, monkeypatch, capsys):
    """It used to write ./logs/checkpoints/interrupted regardless of enable_checkpointing=False; Lightning
    writes nothing then. The fit stops after the step, its model trained so far, and says so."""
    from audiotrain import Trainer
    from audiotrain.train.callbacks import Callback

    from tasks import TinyClassifier, make_batches

    class CtrlCAtBatch2(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if batch_idx == 2:
                signal.raise_signal(signal.SIGINT)  # the Trainer's handler: stop (and save, if it may)

    monkeypatch.chdir(tmp_path)  # the default root, ./logs
    trainer = Trainer(
        max_epochs=2, enable_checkpointing=False, enable_progress_bar=False, callbacks=[CtrlCAtBatch2()]
    )
    module = TinyClassifier()
    trainer.fit(module, make_batches())
    assert trainer.interrupted and trainer.global_step == 3
    assert trainer.interrupted_checkpoint is None
    assert not (tmp_path / "logs" / "checkpoints").exists()
    said = capsys.readouterr().err  # (a line about the run: on stderr)
    assert "no checkpoint saved (enable_checkpointing=False)" in said
    assert "Interrupted: stopping after this step or validation batch (Ctrl-C again to abort at once)" in said
    assert "saving a checkpoint" not in said
    with pytest.warns(UserWarning, match="enable_checkpointing=True"):  # a fit again says how to resume
        trainer.fit(module, make_batches())


def test_resuming_at_an_epochs_last_batch_keeps_on_step_values_out_of_its_history(tmp_path):
    # The checkpoint is taken at the epoch's last batch, before its end: the resumed run ends that epoch
    # before its step is traced again, so only the checkpoint knows that `logged_mae` is on_step only.
    from audiotrain import Trainer, seed_everything
    from audiotrain.train.callbacks import ModelCheckpoint

    import mlx.core as mx
    from tasks import TinyClassifier, make_batches

    class Logs(TinyClassifier):
        def compute_loss(self, batch):
            loss, metrics = super().compute_loss(batch)
            self.log("logged_mae", mx.abs(loss))  # training default: on_step only
            return loss, metrics

    def fit(root, ckpt_path=None):
        every = ModelCheckpoint(every_n_train_steps=6, save_top_k=-1)
        trainer = Trainer(max_epochs=2, default_root_dir=root, enable_progress_bar=False, callbacks=[every])
        seed_everything(0)
        trainer.fit(Logs(), make_batches(), ckpt_path=ckpt_path)  # 96 / 16: 6 batches an epoch
        return trainer

    straight = fit(tmp_path / "a")
    resumed = fit(tmp_path / "b", str(next((tmp_path / "a" / "checkpoints").glob("epoch=0-step=6*"))))
    assert "logged_mae" not in straight.history
    assert {k: v for k, v in resumed.history.items() if k != "time"} == {
        k: v for k, v in straight.history.items() if k != "time"
    }


def test_a_ctrl_c_after_an_epochs_last_step_saves_and_the_resumed_run_ends_that_epoch(tmp_path):
    """A Ctrl-C in the final `next()` of a stream of unknown length (after the epoch's last step, before
    its end) used to print "saving a checkpoint" and save nothing. It now saves with the epoch open, and
    the resumed fit runs that epoch's end: weights and history equal an uninterrupted run."""
    from audiotrain import DataLoader, Trainer, seed_everything
    from audiotrain.data import IterableDataset

    from tasks import TinyClassifier, make_batches, make_data

    class Stream(IterableDataset):
        def __init__(self, ctrl_c_at_end: bool):
            self.ctrl_c_at_end = ctrl_c_at_end

        def __iter__(self):
            x, y = make_data(64)
            yield from zip(x, y)
            if self.ctrl_c_at_end:
                self.ctrl_c_at_end = False
                signal.raise_signal(signal.SIGINT)  # the Trainer's handler: stop and save

    def fit(root, ctrl_c_at_end=False, ckpt_path=None):
        seed_everything(0)
        trainer = Trainer(max_epochs=2, default_root_dir=root, enable_progress_bar=False, seed=1)
        module = TinyClassifier(dropout=0.2)
        loader = DataLoader(Stream(ctrl_c_at_end), batch_size=8)
        trainer.fit(module, loader, make_batches(32, batch_size=8, seed=1), ckpt_path=ckpt_path)
        return trainer, module

    straight = fit(tmp_path / "a")
    stopped, _ = fit(tmp_path / "b", ctrl_c_at_end=True)
    saved = tmp_path / "b" / "checkpoints" / "interrupted"
    assert stopped.interrupted and stopped.interrupted_checkpoint == saved
    progress = json.loads((saved / "trainer_state.json").read_text())["progress"]
    assert (progress["epoch"], progress["batch_in_epoch"], progress["global_step"]) == (0, 8, 8)
    resumed = fit(tmp_path / "b", ckpt_path=saved)
    _assert_same_run(straight, resumed)
    assert resumed[0].history["epoch"] == [0, 1]


def test_an_epoch_schedule_resumed_at_an_epochs_last_batch_after_a_short_window_keeps_its_rates(tmp_path):
    """6 batches an epoch with accumulation 4: windows of 4 and 2, so 2 updates an epoch, and the rate halves
    each epoch. A checkpoint every 2 steps is taken at epoch 0's last batch, its short window applied and the
    epoch's end not yet run: resumed there, the schedule must count that short window as an update of epoch 0
    (else it is one update behind for the rest of the run)."""
    from audiotrain.train.callbacks import ModelCheckpoint
    from audiotrain.train.schedulers import StepLRScheduler

    import mlx.core as mx
    import mlx.optimizers as optim
    from tasks import RecordingLogger, Returns, make_batches, quiet_trainer, weights

    def fit(root, ckpt_path=None):
        mx.random.seed(0)
        module = Returns(
            lambda m: ([optim.SGD(learning_rate=0.1)], [StepLRScheduler(0.1, step_size=1, gamma=0.5)])
        )
        logger = RecordingLogger()
        every_2 = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=2, save_top_k=-1)
        trainer = quiet_trainer(
            root,
            max_epochs=3,
            accumulate_grad_batches=4,
            log_every_n_steps=1,
            logger=logger,
            enable_checkpointing=True,
            callbacks=[every_2],
        )
        trainer.fit(module, make_batches(96), ckpt_path=ckpt_path)  # 96 / 16: 6 batches an epoch
        rates = {step: round(m["learning_rate"], 6) for step, m in logger.metrics if "learning_rate" in m}
        return rates, weights(module)

    straight_rates, straight_weights = fit(tmp_path / "a")
    resumed_rates, resumed_weights = fit(tmp_path / "b", ckpt_path=tmp_path / "ckpt" / "epoch=0-step=2")
    assert {s: r for s, r in straight_rates.items() if s > 2} == {3: 0.05, 4: 0.05, 5: 0.025, 6: 0.025}
    assert {s: r for s, r in resumed_rates.items() if s > 2} == {3: 0.05, 4: 0.05, 5: 0.025, 6: 0.025}
    for name in straight_weights:
        np.testing.assert_array_equal(resumed_weights[name], straight_weights[name], err_msg=name)


@pytest.mark.parametrize("loader", ["train", "val"])
def test_a_worker_the_ctrl_c_killed_is_the_stop_not_a_crash(tmp_path, loader):
    """A terminal's Ctrl-C reaches the workers too. One that it killed (still starting, before it ignores
    SIGINT) used to end fit with a DataLoaderError and no checkpoint; with the stop pending it is the stop:
    the checkpoint is saved where the loader was waiting, and the resumed fit goes on from there."""
    from audiotrain import DataLoader, Trainer

    from tasks import TinyClassifier, make_batches

    def fit(ctrl_c_in_epoch=None, ckpt_path=None):
        def batches(ctrl_c):
            return DataLoader(CtrlCWhileLoading(ctrl_c), batch_size=8, num_workers=1, worker_type="process")

        train = batches(ctrl_c_in_epoch if loader == "train" else None)
        val = batches(ctrl_c_in_epoch) if loader == "val" else make_batches(16, batch_size=8)
        trainer = Trainer(
            max_epochs=2, default_root_dir=tmp_path, enable_progress_bar=False, num_sanity_val_steps=0
        )
        trainer.fit(TinyClassifier(), train, val, ckpt_path=ckpt_path)
        return trainer

    stopped = fit(ctrl_c_in_epoch=1 if loader == "train" else 0)
    assert stopped.interrupted and stopped.interrupted_checkpoint is not None
    progress = json.loads((stopped.interrupted_checkpoint / "trainer_state.json").read_text())["progress"]
    # train: before epoch 1's first batch; val: epoch 0 trained, its validation pending (rerun on resume)
    expected = (1, 0, 8) if loader == "train" else (0, 8, 8)
    assert (progress["epoch"], progress["batch_in_epoch"], progress["global_step"]) == expected
    resumed = fit(ckpt_path=stopped.interrupted_checkpoint)
    assert not resumed.interrupted and resumed.global_step == 16
    assert resumed.history["epoch"] == [0, 1] and None not in resumed.history["val_loss"]


SPAWNING_SCRIPT = """
import os, signal, sys
sys.path.insert(0, {here!r})
import audiotrain
from audiotrain import DataLoader, Trainer
from audiotrain.train import Callback
from test_resume import CtrlCWhileLoading
from tasks import TinyClassifier

ARMED = {armed!r}
if __name__ == "__mp_main__":  # a spawned worker, importing this script: a Ctrl-C lands now (once)
    try:
        os.rename(ARMED, ARMED + ".fired")
        os.killpg(0, signal.SIGINT)  # the whole process group, as a terminal sends it
    except FileNotFoundError:
        pass


class ArmAtEpoch1(Callback):
    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == 1:
            open(ARMED, "w").close()


if __name__ == "__main__":
    loader = DataLoader(CtrlCWhileLoading(), batch_size=8, num_workers=2, worker_type="process")
    t = Trainer(max_epochs=3, default_root_dir={root!r}, enable_progress_bar=False, callbacks=[ArmAtEpoch1()])
    t.fit(TinyClassifier(), loader)
    print("RETURNED", t.interrupted, t.interrupted_checkpoint, flush=True)
"""


def test_a_terminal_ctrl_c_while_workers_start_leaves_them_running(tmp_path):
    """A Ctrl-C to the process group while spawned workers import (about a second, at every epoch of a
    non-persistent pool) used to kill them, each printing a KeyboardInterrupt traceback. They now hold
    SIGINT back from the start, and the run stops and saves as for any Ctrl-C."""
    script = tmp_path / "spawning.py"
    script.write_text(
        SPAWNING_SCRIPT.format(here=str(HERE), armed=str(tmp_path / "armed"), root=str(tmp_path))
    )
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        env=child_env(),
    )
    assert (tmp_path / "armed.fired").exists()
    assert proc.returncode == 0, proc.stderr
    assert f"RETURNED True {tmp_path / 'checkpoints' / 'interrupted'}" in proc.stdout
    assert "KeyboardInterrupt" not in proc.stderr


def test_resuming_from_a_batch_end_checkpoint_logs_its_steps_validation_once(tmp_path):
    """ModelCheckpoint(every_n_train_steps) saves at the end of a step, before that step's validation and
    epoch end, which the run then logs. Resuming from it runs them again: metrics.csv used to get a second
    row for that step and TensorBoard a second point per metric. Both now equal an uninterrupted run."""
    from audiotrain import Trainer, seed_everything
    from audiotrain.train.callbacks import ModelCheckpoint
    from audiotrain.train.loggers import CSVLogger, TensorBoardLogger

    from logger_readers import read_scalars
    from tasks import TinyClassifier, make_batches

    def fit(root, ckpt_path=None):
        seed_everything(0)
        every = ModelCheckpoint(every_n_train_steps=6, save_top_k=-1)  # 6 batches an epoch
        trainer = Trainer(
            max_epochs=2,
            default_root_dir=root,
            enable_progress_bar=False,
            log_every_n_steps=2,
            val_check_interval=0.5,
            callbacks=[every],
            logger=[CSVLogger(root, name="csv"), TensorBoardLogger(root, name="tb")],
        )
        trainer.fit(TinyClassifier(), make_batches(), make_batches(32, seed=1), ckpt_path=ckpt_path)

    def logs(root):
        with open(root / "csv" / "version_0" / "metrics.csv", newline="") as f:
            rows = list(DictReader(f))
        return rows, read_scalars(root / "tb" / "version_0")

    fit(tmp_path / "a")
    checkpoint = next((tmp_path / "a" / "checkpoints").glob("epoch=0-step=6*"))
    fit(tmp_path / "a", ckpt_path=checkpoint)  # the same run folders, from step 6 again
    fit(tmp_path / "b")
    assert logs(tmp_path / "a") == logs(tmp_path / "b")


CRASHING_SCRIPT = """
import os, sys
sys.path.insert(0, {here!r})
import audiotrain
from audiotrain import Trainer
from audiotrain.train import Callback, ModelCheckpoint
from audiotrain.train.loggers import TensorBoardLogger
from tasks import TinyClassifier, make_batches

class CrashAtStep7(Callback):
    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if trainer.global_step == 7:
            os._exit(1)  # as a SIGKILL or out-of-memory: nothing is closed or flushed

t = Trainer(max_epochs=3, default_root_dir={root!r}, enable_progress_bar=False, log_every_n_steps=1,
            callbacks=[ModelCheckpoint(every_n_train_steps=4), CrashAtStep7()],
            logger=TensorBoardLogger({root!r}, name="tb"))
t.fit(TinyClassifier(), make_batches())
"""


def test_a_checkpoint_has_the_tensorboard_points_it_covers_on_disk(tmp_path):
    """The TensorBoard writer flushes every 30 s: a crash lost every point since, also those before the
    checkpoint the run then resumes from, which cannot bring them back. Saving a checkpoint now flushes."""
    from logger_readers import read_scalars

    script = tmp_path / "crashing.py"
    script.write_text(CRASHING_SCRIPT.format(here=str(HERE), root=str(tmp_path)))
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=child_env()
    )
    assert proc.returncode == 1, proc.stderr
    assert list((tmp_path / "checkpoints").glob("epoch=0-step=4*"))
    steps = [step for step, _ in read_scalars(tmp_path / "tb" / "version_0")["train_loss"]]
    assert steps[:4] == [1, 2, 3, 4]


@pytest.mark.parametrize("accumulation", [3, 1])
def test_another_accumulation_in_the_middle_of_a_window_is_refused(tmp_path, accumulation):
    """The checkpoint holds the gradients of an open window of 2 micro-batches. 2 -> 1 was refused but
    2 -> 3 went on silently; any other accumulation is now refused there, naming the window."""
    from audiotrain import Trainer
    from audiotrain.train.callbacks import Callback
    from audiotrain.train.checkpoint import CheckpointError

    from tasks import TinyClassifier, make_batches

    class CtrlCAtBatch2(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if batch_idx == 2:  # the first micro-batch of the second window
                signal.raise_signal(signal.SIGINT)  # the Trainer's handler: stop and save

    def trainer(accumulate, *callbacks):
        return Trainer(
            max_epochs=2,
            accumulate_grad_batches=accumulate,
            default_root_dir=tmp_path,
            enable_progress_bar=False,
            callbacks=list(callbacks),
        )

    stopped = trainer(2, CtrlCAtBatch2())
    stopped.fit(TinyClassifier(), make_batches())
    with pytest.raises(
        CheckpointError,
        match=rf"accumulate_grad_batches=2 in the middle of an accumulation window \(1 of its 2 micro-batches "
        rf"done\), this Trainer has accumulate_grad_batches={accumulation}: resume with accumulate_grad_batches=2",
    ):
        trainer(accumulation).fit(TinyClassifier(), make_batches(), ckpt_path=stopped.interrupted_checkpoint)


def test_a_ctrl_c_inside_an_accumulation_window_resumes_to_the_straight_runs_weights(tmp_path):
    """6 batches an epoch with accumulate_grad_batches=2; a Ctrl-C after batch 2 of epoch 1 leaves a window
    with one of its two micro-batches done. The checkpoint holds that micro-batch's gradient (the training
    step's state), the resumed run adds the second to it, and the weights end bitwise those of the run
    never stopped. Lost, the window's update would be half the second micro-batch's gradient alone."""
    from audiotrain.train.callbacks import LambdaCallback

    import mlx.core as mx
    from exactness import assert_same_numbers
    from tasks import TinyClassifier, make_batches, quiet_trainer, weights

    def fit(folder, callbacks=(), ckpt_path=None):
        mx.random.seed(0)
        module = TinyClassifier()
        trainer = quiet_trainer(
            tmp_path / folder,
            max_epochs=2,
            accumulate_grad_batches=2,
            enable_checkpointing=True,
            callbacks=list(callbacks),
        )
        trainer.fit(module, make_batches(), ckpt_path=ckpt_path)
        return trainer, module

    def ctrl_c_inside_a_window(trainer, module, outputs, batch, batch_idx):
        if (trainer.current_epoch, batch_idx) == (1, 2):
            raise KeyboardInterrupt

    _, straight = fit("straight")
    stopped, _ = fit("pieces", callbacks=[LambdaCallback(on_train_batch_end=ctrl_c_inside_a_window)])
    assert stopped.interrupted and (stopped.global_step, stopped.progress.micro_batches) == (4, 1)
    resumed_trainer, resumed = fit("pieces", ckpt_path=stopped.interrupted_checkpoint)
    assert resumed_trainer.global_step == 6
    for name, value in weights(straight).items():
        assert_same_numbers(weights(resumed)[name], value, err_msg=name)


@pytest.mark.parametrize("seed", [7, 0])  # (0 is a seed too, not "none recorded")
def test_resuming_with_another_seed_keeps_the_checkpoints_seed_and_says_so(tmp_path, seed):
    """Resumed with Trainer(seed=8), a seed-7 run went on with seed 7's random state, but trainer.seed and
    the later checkpoints said 8, and a loader the Trainer seeded took 8 from the next epoch on (a
    checkpoint at an epoch's end holds no loader position): neither the order nor the record was the
    run's. Now the checkpoint's seed is kept everywhere, with a warning."""
    from audiotrain import DataLoader, Trainer
    from audiotrain.train.callbacks import Callback

    from tasks import TinyClassifier, make_data

    class Order(Callback):
        def __init__(self):
            self.batches = []

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.batches.append(np.array(batch[0][:, 0]).tolist())  # which samples, in which order

    items = list(zip(*make_data(64)))

    def fit(root, seed, max_epochs, ckpt_path=None):
        order = Order()
        trainer = Trainer(
            max_epochs=max_epochs,
            seed=seed,
            default_root_dir=root,
            enable_progress_bar=False,
            callbacks=[order],
        )
        trainer.fit(TinyClassifier(), DataLoader(items, batch_size=16, shuffle=True), ckpt_path=ckpt_path)
        return trainer, order.batches

    _, straight = fit(tmp_path / "straight", seed, 2)
    first, _ = fit(tmp_path / "resumed", seed, 1)
    with pytest.warns(
        UserWarning, match=f"was trained with seed {seed}; this Trainer's is 8.*seed {seed} is kept"
    ):
        resumed, rest = fit(tmp_path / "resumed", 8, 2, first.checkpoint_callback.last_model_path)
    assert rest == straight[4:]
    assert resumed.seed == seed
    state = json.loads((Path(resumed.checkpoint_callback.last_model_path) / "trainer_state.json").read_text())
    assert state["config"]["trainer"]["seed"] == seed


def test_a_seed_everything_after_a_resume_decides_the_trainers_later_fits(tmp_path):
    """A Trainer without seed= that resumed a seed-7 run kept seed 7 for every later fit: after
    seed_everything(3), trainer.fit(model, loader) trained on seed 7 again (trainer.seed 7, the loader
    reseeded with 7), where Lightning's next fit draws from the generators seed_everything(3) seeded."""
    from audiotrain import DataLoader, Trainer, seed_everything

    from tasks import TinyClassifier, make_data

    items = list(zip(*make_data(32)))
    seed_everything(7)
    first = Trainer(max_epochs=1, default_root_dir=tmp_path, enable_progress_bar=False, logger=False)
    first.fit(TinyClassifier(), DataLoader(items, batch_size=16, shuffle=True))
    seed_everything(8)
    trainer = Trainer(max_epochs=2, default_root_dir=tmp_path, enable_progress_bar=False, logger=False)
    model, loader = TinyClassifier(), DataLoader(items, batch_size=16, shuffle=True)
    with pytest.warns(UserWarning, match="was trained with seed 7; this Trainer's is 8"):
        trainer.fit(model, loader, ckpt_path=first.checkpoint_callback.last_model_path)
    assert (trainer.seed, loader.seed) == (7, 7)  # the resumed run goes on as it was seeded
    seed_everything(3)
    trainer.fit_loop.max_epochs = 3
    trainer.fit(model, loader)
    assert (trainer.current_epoch, trainer.seed, loader.seed) == (3, 3, 3)


@pytest.mark.parametrize("where", ["callback on_validation_end", "module on_train_batch_end"])
def test_a_keyboard_interrupt_raised_in_a_hook_stops_and_saves_as_ctrl_c_does(tmp_path, capsys, where):
    """User code that raises KeyboardInterrupt, or a notebook's "interrupt kernel" that arrives as one in a
    hook, aborted fit as a failure: no `interrupted` checkpoint, `trainer.interrupted` False. It now stops as
    a Ctrl-C heard there: fit returns, `interrupted` is saved, and resuming from it gives the straight run."""
    from audiotrain import Trainer, seed_everything
    from audiotrain.train.callbacks import Callback

    from tasks import TinyClassifier, make_batches, weights

    class StopAfterFirstValidation(Callback):
        def on_validation_end(self, trainer, module):
            if trainer.current_epoch == 0:
                raise KeyboardInterrupt

    class StopAtStep4(TinyClassifier):
        def on_train_batch_end(self, outputs, batch, batch_idx):
            if self.trainer.global_step == 4 and self.stop:
                raise KeyboardInterrupt

    def fit(root, stop, ckpt_path=None):
        seed_everything(0)
        callbacks = [StopAfterFirstValidation()] if stop and where.startswith("callback") else []
        trainer = Trainer(max_epochs=2, default_root_dir=root, enable_progress_bar=False, callbacks=callbacks)
        module = StopAtStep4()
        module.stop = stop and where.startswith("module")
        trainer.fit(module, make_batches(), make_batches(32), ckpt_path=ckpt_path)
        return trainer, module

    straight = fit(tmp_path / "a", stop=False)[1]
    stopped, stopped_module = fit(tmp_path / "b", stop=True)
    saved = tmp_path / "b" / "checkpoints" / "interrupted"
    assert stopped.interrupted and stopped.interrupted_checkpoint == saved
    hook = where.split()[-1]
    assert f"Interrupted (KeyboardInterrupt in {hook})" in capsys.readouterr().err
    assert (tmp_path / "b" / "checkpoints" / "last" / "model.safetensors").is_file()
    resumed = fit(tmp_path / "b", stop=False, ckpt_path=saved)[1]
    for name, value in weights(straight).items():
        np.testing.assert_array_equal(value, weights(resumed)[name], err_msg=name)
    if where.startswith("callback"):
        return  # (its stop came in the sanity check, before any step: no counters carried, nothing to say)
    # The stopped Trainer fit again without ckpt_path goes on from its counters, not exactly: said, with how.
    stopped_module.stop = False
    with pytest.warns(
        UserWarning, match=r"was interrupted at epoch 0.*ckpt_path=trainer.interrupted_checkpoint"
    ):
        stopped.fit(stopped_module, make_batches(), make_batches(32))


@pytest.mark.parametrize(
    "hook, val_check_interval", [("on_train_epoch_end", 1.0), ("on_validation_end", 0.5)]
)
def test_a_keyboard_interrupt_in_an_end_hook_leaves_the_monitoring_callbacks_theirs(
    tmp_path, hook, val_check_interval
):
    """A KeyboardInterrupt raised in a callback's on_train_epoch_end / on_validation_end skipped the
    EarlyStopping, ReduceLROnPlateau and ModelCheckpoint that come after it there, and the checkpoint
    recorded that epoch end (or validation) as done: the resumed fit never ran their checks, so it lowered
    the rate later and stopped later than the straight run. They now run, as for a Ctrl-C heard there."""
    from audiotrain import Trainer, seed_everything
    from audiotrain.train.callbacks import Callback, EarlyStopping, ReduceLROnPlateau

    from tasks import TinyClassifier, make_batches, weights

    class StopNow(Callback):  # listed first: before the monitoring callbacks
        def __init__(self, stop):
            self.stop, self.calls = stop, 0

        def _end(self, trainer):
            if not trainer.sanity_checking:
                self.calls += 1
                if self.stop and self.calls == 2:
                    raise KeyboardInterrupt

    setattr(StopNow, hook, lambda self, trainer, module: self._end(trainer))

    def fit(root, stop, ckpt_path=None):
        seed_everything(0)
        stopping = EarlyStopping(monitor="val_loss", patience=2)
        plateau = ReduceLROnPlateau(monitor="val_loss", patience=0, factor=0.5)
        trainer = Trainer(
            max_epochs=8, default_root_dir=root, enable_progress_bar=False, logger=False,
            callbacks=[StopNow(stop), plateau, stopping], val_check_interval=val_check_interval,
        )  # fmt: skip
        module = TinyClassifier(lr=0.3)
        trainer.fit(module, make_batches(64), make_batches(32, seed=1), ckpt_path=ckpt_path)
        return trainer, module, stopping

    straight, straight_module, straight_stopping = fit(tmp_path / "a", stop=False)
    stopped = fit(tmp_path / "b", stop=True)[0]
    assert stopped.interrupted
    with warnings.catch_warnings():  # (the plateau's own cut, resumed: nothing the user changed to warn of)
        warnings.filterwarnings("error", message=".*learning_rate")
        resumed, module, stopping = fit(tmp_path / "b", stop=False, ckpt_path=stopped.interrupted_checkpoint)
    assert len(set(straight.history["learning_rate"])) > 1  # the plateau lowered the rate
    for key in ("step", "val_loss", "learning_rate"):
        assert resumed.history[key] == straight.history[key], key
    assert resumed.global_step == straight.global_step
    assert stopping.state_dict() == straight_stopping.state_dict()
    for name, value in weights(straight_module).items():
        np.testing.assert_array_equal(value, weights(module)[name], err_msg=name)


def test_a_loader_given_another_seed_for_a_mid_epoch_resume_says_the_checkpoints_is_kept(tmp_path):
    """A DataLoader(seed=8) resuming a position saved by DataLoader(seed=7) went on with seed 7 for the
    whole run (the resume is exact) without a word, where a changed Trainer seed is warned of. It now
    says so, once."""
    from audiotrain import DataLoader, Trainer, seed_everything
    from audiotrain.train.callbacks import Callback

    from tasks import TinyClassifier, make_data, weights

    class CtrlCAtStep3(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.global_step == 3:
                raise KeyboardInterrupt

    items = list(zip(*make_data(64)))

    def fit(root, seed, callbacks=(), ckpt_path=None):
        seed_everything(0)
        trainer = Trainer(
            max_epochs=2, default_root_dir=root, enable_progress_bar=False, logger=False,
            callbacks=list(callbacks),
        )  # fmt: skip
        module = TinyClassifier()
        trainer.fit(module, DataLoader(items, batch_size=16, shuffle=True, seed=seed), ckpt_path=ckpt_path)
        return trainer, module

    straight = fit(tmp_path / "a", 7)[1]
    stopped = fit(tmp_path / "b", 7, [CtrlCAtStep3()])[0]
    with pytest.warns(UserWarning) as record:
        resumed = fit(tmp_path / "b", 8, ckpt_path=stopped.interrupted_checkpoint)[1]
    said = [str(w.message) for w in record if "DataLoader(seed=8)" in str(w.message)]
    assert len(said) == 1 and "saved with seed 7: seed 7 is kept" in said[0], said
    for name, value in weights(straight).items():
        np.testing.assert_array_equal(value, weights(resumed)[name], err_msg=name)
    loader = DataLoader(items, batch_size=16, shuffle=True, seed=8)
    state = json.loads((stopped.interrupted_checkpoint / "trainer_state.json").read_text())["data_loader"]
    with pytest.warns(UserWarning, match="seed 7 is kept"):
        loader.load_state_dict(state)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loader.load_state_dict(state)  # (once: it keeps seed 7 from then on)


def test_a_fit_early_stopping_ended_trains_nothing_more_when_resumed(tmp_path):
    """Resuming the `last` of a fit that EarlyStopping ended (a requeued job's `ckpt_path="last"`, or a run
    split at the epoch it stopped in) trained one more epoch each time, without a word, so the split run
    ended with other weights than the straight one. The stop the checkpoint records now ends the resumed fit
    before its first step, saying so; a raised patience or a lower min_delta still trains on."""
    from audiotrain import Trainer, seed_everything
    from audiotrain.train.callbacks import EarlyStopping

    from tasks import TinyClassifier, make_batches, weights

    def fit(root, max_epochs, patience=1, min_delta=10.0, ckpt_path=None):
        seed_everything(0)
        trainer = Trainer(
            max_epochs=max_epochs, default_root_dir=root, enable_progress_bar=False, logger=False,
            callbacks=[EarlyStopping(monitor="val_loss", patience=patience, min_delta=min_delta)],
        )  # fmt: skip
        module = TinyClassifier()
        trainer.fit(module, make_batches(64), make_batches(32, seed=1), ckpt_path=ckpt_path)
        return trainer, module

    straight, straight_module = fit(tmp_path / "a", max_epochs=4)
    assert straight.current_epoch == 2  # no improvement by 10 after epoch 0: patience 1 ran out in epoch 1
    first = fit(tmp_path / "b", max_epochs=2)[0]
    last = first.checkpoint_callback.last_model_path
    for _ in range(2):  # the split run, then the same command again
        with pytest.warns(UserWarning, match="saved after this run stopped early") as said:
            resumed, module = fit(tmp_path / "b", max_epochs=4, ckpt_path=last)
        # The Trainer's own line names that cause too, not only max_time or a Timer.
        nothing = [str(w.message) for w in said if "nothing to train" in str(w.message)]
        assert len(nothing) == 1 and "EarlyStopping whose patience had run out" in nothing[0], nothing
        assert resumed.global_step == straight.global_step
        for key in ("step", "val_loss", "train_loss"):
            assert resumed.history[key] == straight.history[key], key
        for name, value in weights(straight_module).items():
            np.testing.assert_array_equal(value, weights(module)[name], err_msg=name)
    shutil.copytree(tmp_path / "b", tmp_path / "c")  # (each of the two below resumes the stopped `last`)
    assert fit(tmp_path / "b", max_epochs=4, patience=3, ckpt_path=last)[0].current_epoch == 4
    copy = tmp_path / "c" / Path(last).relative_to(tmp_path / "b")
    lower_delta = fit(tmp_path / "c", max_epochs=4, min_delta=0.0, ckpt_path=copy)[0]
    assert lower_delta.global_step > straight.global_step


def test_a_multioptimizer_groups_rate_replaced_by_the_checkpoints_on_resume_is_warned_of(tmp_path):
    """Resuming an encoder/head MultiOptimizer fit whose configure_optimizers now asks for lower rates (to
    fine-tune on) went on at the checkpoint's rates without a word, where one optimizer's is warned of: the
    check read `learning_rate` of the MultiOptimizer's state, which holds only its optimizers' states."""
    from audiotrain import Trainer
    from audiotrain.train.callbacks import ModelCheckpoint

    import mlx.optimizers as optim
    from tasks import TinyClassifier, make_batches

    class Groups(TinyClassifier):
        def __init__(self, rates):
            super().__init__()
            self.rates = list(rates)

        def configure_optimizers(self):
            parts = [optim.SGD(learning_rate=rate) for rate in self.rates]
            return optim.MultiOptimizer(parts, [lambda path, _: path.startswith("fc1.")])

    def fit(rates, max_epochs, ckpt_path=None):
        trainer = Trainer(
            max_epochs=max_epochs, default_root_dir=tmp_path, enable_progress_bar=False, logger=False,
            callbacks=[ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True)],
        )  # fmt: skip
        trainer.fit(Groups(rates), make_batches(), ckpt_path=ckpt_path)
        return trainer

    fit((0.1, 0.01), 1)
    with pytest.warns(
        UserWarning, match=r"group 2.s learning_rate 0.0001 .* is replaced by the checkpoint's 0.01"
    ):
        resumed = fit((0.1, 0.0001), 2, ckpt_path=tmp_path / "ck" / "last")
    # the resume stays exact: the checkpoint's rates, as for one optimizer (and as Lightning restores them)
    assert [group["lr"] for group in resumed.optimizers[0].param_groups] == pytest.approx([0.1, 0.01])


def test_resuming_with_another_optimizer_grouping_says_configure_optimizers_changed(tmp_path):
    """A run saved with one AdamW, resumed after configure_optimizers became an encoder/head MultiOptimizer
    (a two-optimizer port), was refused listing missing and unexpected arrays ('states.0.fc1.bias.m', ...)
    without saying that the optimizer changed or how to go on from the weights."""
    from audiotrain import Trainer
    from audiotrain.train.checkpoint import CheckpointError

    import mlx.optimizers as optim
    from tasks import Returns, make_batches

    def fit(make, max_epochs, ckpt_path=None):
        trainer = Trainer(
            max_epochs=max_epochs, default_root_dir=tmp_path, enable_progress_bar=False, logger=False,
        )  # fmt: skip
        trainer.fit(Returns(make), make_batches(), ckpt_path=ckpt_path)
        return trainer

    saved = fit(lambda m: optim.AdamW(learning_rate=1e-3), 1)
    groups = lambda m: optim.MultiOptimizer(  # noqa: E731
        [optim.AdamW(learning_rate=1e-3), optim.AdamW(learning_rate=1e-2)],
        [lambda p, _: p.startswith("fc1.")],
    )
    with pytest.raises(
        CheckpointError,
        match=r"does not match.*configure_optimizers.*another optimizer.*load_from_checkpoint",
    ):
        fit(groups, 2, ckpt_path=saved.checkpoint_callback.last_model_path)


def test_a_resume_whose_smaller_patience_has_run_out_says_so_not_that_the_saved_run_stopped(tmp_path):
    """A run saved by max_epochs (patience 5, 2 checks without improvement), resumed with patience=2, trains
    nothing, as the uninterrupted run with patience 2 would have stopped; the warning said the checkpoint
    "was saved after this run stopped early", which that run never did. It now names the checks the
    checkpoint counted and this patience; a resumed stop of the saved run keeps its words. stopped_epoch
    stayed 0 (Lightning's "no stop") and stop_reason empty, though EarlyStopping ended the fit."""
    from audiotrain import Trainer
    from audiotrain.train.callbacks import EarlyStopping

    from tasks import TinyClassifier, make_batches

    def fit(max_epochs, patience, ckpt_path=None):
        trainer = Trainer(
            max_epochs=max_epochs, default_root_dir=tmp_path, enable_progress_bar=False, logger=False,
            callbacks=[EarlyStopping(monitor="val_loss", patience=patience, min_delta=10.0)],
        )  # fmt: skip
        trainer.fit(TinyClassifier(), make_batches(64), make_batches(32, seed=1), ckpt_path=ckpt_path)
        return trainer

    last = fit(max_epochs=3, patience=5).checkpoint_callback.last_model_path  # 2 checks without improvement
    with pytest.warns(UserWarning) as record:
        resumed = fit(max_epochs=6, patience=2, ckpt_path=last)
    said = [str(w.message) for w in record if str(w.message).startswith("EarlyStopping")]
    assert resumed.global_step == 3 * 4 and len(said) == 1, said
    assert "stopped early" not in said[0]
    assert "counted 2 checks without an improvement of val_loss by more than 10.0" in said[0], said
    assert "patience=2" in said[0] and "raise patience" in said[0]
    # This fit's stop is EarlyStopping's (stopped_epoch was 0, "no stop", as Lightning's, and no reason):
    stopped = resumed.early_stopping_callback
    assert stopped.stopped_epoch == 3 and "for 2 checks" in stopped.stop_reason, repr(stopped)


@pytest.mark.parametrize("rate_setter", ["plateau", "swa"])
def test_resuming_a_rate_the_run_set_itself_does_not_say_the_configured_rate_is_replaced(
    tmp_path, rate_setter
):
    """An unchanged script resumed after its ReduceLROnPlateau cut the rate (or inside SWA's epochs, where SWA
    anneals it) was warned that "the optimizer's learning_rate 0.01 (configure_optimizers) is replaced by the
    checkpoint's 0.005", as if the user had asked for another rate, and told to start from the weights
    instead. The checkpoint records the rate the run was configured with: only a module that now gives
    another one is warned, and the resume still ends where the straight run does."""
    from audiotrain import Trainer, seed_everything
    from audiotrain.train.callbacks import Callback, ReduceLROnPlateau, StochasticWeightAveraging

    from tasks import TinyClassifier, make_batches, weights

    class StopAt(Callback):
        def __init__(self, batches):
            self.batches, self.seen = batches, 0

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.seen += 1
            if self.seen == self.batches:
                raise KeyboardInterrupt

    def fit(root, lr=0.01, stop_at=None, ckpt_path=None):
        seed_everything(0)
        if rate_setter == "plateau":  # (mode="max" on a falling loss: a cut at every epoch end)
            setter = ReduceLROnPlateau(monitor="val_loss", mode="max", patience=0, factor=0.5)
        else:
            setter = StochasticWeightAveraging(swa_lrs=0.05, swa_epoch_start=2, annealing_epochs=1)
        trainer = Trainer(
            max_epochs=4, default_root_dir=root, enable_progress_bar=False, logger=False,
            callbacks=[setter] + ([StopAt(stop_at)] if stop_at else []),
        )  # fmt: skip
        module = TinyClassifier(lr=lr)
        trainer.fit(module, make_batches(64), make_batches(32, seed=1), ckpt_path=ckpt_path)
        return trainer, module

    straight, straight_module = fit(tmp_path / "a")
    stopped, _ = fit(tmp_path / "b", stop_at=10)  # epoch 2 (of 4 batches each): after a cut, inside SWA
    assert stopped.interrupted
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*learning_rate")
        resumed, module = fit(tmp_path / "b", ckpt_path=stopped.interrupted_checkpoint)
    assert resumed.history["learning_rate"] == straight.history["learning_rate"]
    assert straight.history["learning_rate"][2] != pytest.approx(0.01)  # (the run set its own rate by then)
    for name, value in weights(straight_module).items():
        np.testing.assert_array_equal(value, weights(module)[name], err_msg=name)
    # A rate asked for now, other than the run's, is still said: the checkpoint's replaces it.
    stopped_again, _ = fit(tmp_path / "c", stop_at=10)
    with pytest.warns(UserWarning, match=r"learning_rate 0\.02 \(configure_optimizers\) is replaced by the"):
        fit(tmp_path / "c", lr=0.02, ckpt_path=stopped_again.interrupted_checkpoint)


def test_ckpt_path_last_finds_the_last_of_a_model_checkpoint_listed_after_one_that_keeps_none(tmp_path):
    """A Trainer with a periodic ModelCheckpoint(every_n_train_steps=...) first and a
    ModelCheckpoint(save_last=True) after it: Ctrl-C saved `interrupted` and its `last` copy, yet
    fit(ckpt_path="last") refused, saying "this Trainer has a ModelCheckpoint that keeps no `last` (pass
    ModelCheckpoint(..., save_last=True) to keep one)". It now resumes from that `last` (Lightning looks at
    every ModelCheckpoint's), exactly."""
    from audiotrain import Trainer, seed_everything
    from audiotrain.train.callbacks import Callback, ModelCheckpoint

    from tasks import TinyClassifier, make_batches, weights

    class StopAt(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.global_step == 7:
                raise KeyboardInterrupt

    def fit(root, stop=False, ckpt_path=None):
        seed_everything(0)
        callbacks = [
            ModelCheckpoint(dirpath=root / "every", every_n_train_steps=3, save_top_k=-1),
            ModelCheckpoint(dirpath=root / "last", save_last=True, save_top_k=0),
        ]
        trainer = Trainer(
            max_epochs=3, default_root_dir=root, enable_progress_bar=False, logger=False,
            callbacks=callbacks + ([StopAt()] if stop else []),
        )  # fmt: skip
        module = TinyClassifier()
        trainer.fit(module, make_batches(64), make_batches(32, seed=1), ckpt_path=ckpt_path)
        return trainer, module

    _, straight = fit(tmp_path / "a")
    stopped, _ = fit(tmp_path / "b", stop=True)
    assert stopped.interrupted and (tmp_path / "b" / "last" / "last").is_dir()
    resumed, module = fit(tmp_path / "b", ckpt_path="last")
    assert resumed.ckpt_path == str(tmp_path / "b" / "last" / "last")
    for name, value in weights(straight).items():
        np.testing.assert_array_equal(value, weights(module)[name], err_msg=name)


def test_resuming_a_mid_epoch_checkpoint_trains_what_the_straight_run_trained_after_a_random_validation(
    tmp_path,
):
    """A validation that draws random numbers (a sampling loop in a validation hook) draws from generators
    of its own; ModelCheckpoint saves a mid-epoch validation inside it (at on_validation_end), and the
    checkpoint must hold the training's generators, or the resumed run's dropout draws the validation's
    stream."""
    from audiotrain import Trainer, seed_everything
    from audiotrain.train.callbacks import ModelCheckpoint

    import mlx.core as mx
    from tasks import TinyClassifier, make_batches, weights

    class SamplesInValidation(TinyClassifier):
        def on_validation_epoch_end(self):
            mx.eval(mx.random.normal((4,)))

    def fit(folder, max_epochs, ckpt_path=None):
        seed_everything(0)
        module = SamplesInValidation(dropout=0.5)
        every_validation = ModelCheckpoint(dirpath=tmp_path / folder, save_top_k=-1)
        trainer = Trainer(
            max_epochs=max_epochs,
            val_check_interval=0.5,
            seed=1,
            callbacks=[every_validation],
            enable_progress_bar=False,
            num_sanity_val_steps=0,
            default_root_dir=tmp_path / folder,
        )
        trainer.fit(module, make_batches(32), make_batches(16), ckpt_path=ckpt_path)
        return module

    straight = fit("a", 3)
    saved = sorted(
        (tmp_path / "a").glob("epoch=0-step=*"), key=lambda p: int(p.name.split("=")[2].split(".")[0])
    )
    assert len(saved) == 2, sorted((tmp_path / "a").iterdir())  # the first is saved in mid-epoch
    resumed = fit("b", 3, ckpt_path=saved[0])
    for name, value in weights(straight).items():
        np.testing.assert_array_equal(value, weights(resumed)[name], err_msg=name)


def test_ckpt_path_is_lightnings_str_of_the_stage_that_loaded_it(tmp_path):
    """A callback ported from Lightning read `trainer.ckpt_path` as its str
    (`trainer.ckpt_path.endswith(...)`, `json.dumps`): it was a PosixPath ("AttributeError: 'PosixPath'
    object has no attribute 'endswith'"), and a `predict(model, loader)` or a fresh `fit` after a resumed
    one still showed the earlier stage's checkpoint. As Lightning's: the str of the checkpoint this stage
    loaded, set when it is restored (after `setup`), None in a stage that loaded none."""
    from audiotrain.train.callbacks import Callback

    from tasks import TinyClassifier, make_batches, quiet_trainer

    seen = []

    class Reads(Callback):
        def setup(self, trainer, module, stage):
            seen.append((f"setup {stage}", trainer.ckpt_path))

        def on_fit_start(self, trainer, module):
            seen.append(("fit", trainer.ckpt_path))

        def on_validation_start(self, trainer, module):
            seen.append(("validate", trainer.ckpt_path))

        def on_predict_start(self, trainer, module):
            seen.append(("predict", trainer.ckpt_path))

    first = quiet_trainer(tmp_path, max_epochs=1, enable_checkpointing=True)
    first.fit(TinyClassifier(), make_batches(32))
    last = first.checkpoint_callback.last_model_path
    trainer = quiet_trainer(tmp_path, max_epochs=2, enable_checkpointing=True, callbacks=[Reads()])
    trainer.fit(TinyClassifier(), make_batches(32), ckpt_path=Path(last))
    assert seen == [("setup fit", None), ("fit", str(last))] and isinstance(trainer.ckpt_path, str)
    seen.clear()
    trainer.validate(TinyClassifier(), make_batches(32), ckpt_path="last")
    trainer.predict(TinyClassifier(), make_batches(32))
    assert seen == [("setup validate", str(last)), ("validate", str(last)), ("setup predict", str(last)),
                    ("predict", None)]  # fmt: skip


def test_a_fit_resumed_mid_epoch_runs_that_epochs_on_train_epoch_start_so_what_it_sets_trains_on(tmp_path):
    """Deliberately unlike Lightning 2.6.6, whose fit resumed from a mid-epoch checkpoint skips
    `on_train_epoch_start` (callbacks' and the module's) for the epoch it resumes into (measured:
    on_train_start ep=1, then on_train_epoch_end ep=1; from an every_n_epochs save the next epoch's start
    runs in both). Here it runs, so what a hook sets at an epoch start and no checkpoint holds (a
    submodule's `.eval()`, an attribute `training_step` reads) is set again and the resumed fit ends
    bitwise with the uninterrupted one's weights; skipped, the rest of that epoch trained BatchNorm in
    train mode (other weights). (Lightning's own resume is not exact there: with a BaseFinetuning resumed
    inside or after its unfreeze epoch, its backbone stays frozen to the end.) Fine-tuning callbacks do
    not run that epoch's finetune_function again."""
    from audiotrain import Trainer, seed_everything
    from audiotrain.train.callbacks import Callback, ModelCheckpoint

    from tasks import TinyClassifier, make_batches, weights

    starts = []

    class Starts(Callback):
        def on_train_epoch_start(self, trainer, module):
            starts.append(("callback", trainer.current_epoch, trainer.global_step))

    class StatisticsFixedAfterAWarmUp(TinyClassifier):
        def __init__(self):
            super().__init__(batchnorm=True)

        def on_train_epoch_start(self):
            starts.append(("module", self.current_epoch, self.global_step))
            if self.current_epoch >= 1:
                self.norm.eval()

    def fit(root, ckpt_path=None, callbacks=()):
        seed_everything(0)
        module = StatisticsFixedAfterAWarmUp()
        trainer = Trainer(
            max_epochs=3,
            default_root_dir=root,
            enable_progress_bar=False,
            logger=False,
            num_sanity_val_steps=0,
            callbacks=[Starts(), *callbacks],
        )
        trainer.fit(module, make_batches(48), ckpt_path=ckpt_path)  # 3 batches an epoch
        return weights(module)

    uninterrupted = fit(tmp_path / "a", callbacks=[ModelCheckpoint(every_n_train_steps=5)])
    checkpoint = next((tmp_path / "a" / "checkpoints").glob("epoch=1-step=5*"))  # epoch 1's second batch
    starts.clear()
    resumed = fit(tmp_path / "b", ckpt_path=checkpoint)
    assert starts == [("callback", 1, 5), ("module", 1, 5), ("callback", 2, 6), ("module", 2, 6)]
    assert all(np.array_equal(uninterrupted[k], resumed[k]) for k in uninterrupted)
