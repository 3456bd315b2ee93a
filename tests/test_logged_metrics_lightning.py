"""How values logged with Lightning's habits reach `callback_metrics`, the progress bar, the history and the
loggers: `name_step` / `name_epoch`, epoch-only values in the bar, `self.log("train_loss", ...)`, values
logged in `on_train_batch_end` (at that batch's step, also across a resume), `self.logger`, and the loggers
on every rank under data parallel."""

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import audiotrain  # noqa: F401  (before mlx)
from audiotrain import TrainModule
from audiotrain.train.callback import Callback
from audiotrain.train.callbacks import EarlyStopping, ModelCheckpoint
from audiotrain.train.loggers import CSVLogger

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from distributed import describe, run_ranks
from tasks import RecordingLogger, TinyClassifier, make_batches, quiet_trainer


def fit(tmp_path, module, val=True, **kwargs):
    """4 optimizer steps per epoch (64 samples, batches of 16)."""
    kwargs.setdefault("max_epochs", 2)
    t = quiet_trainer(tmp_path, **kwargs)
    t.fit(module, make_batches(64), make_batches(32, seed=1) if val else None)
    return t


def build(cls, *args, **kwargs):
    mx.random.seed(0)  # the same weights for every run of a test
    return cls(*args, **kwargs)


class LogsBoth(TinyClassifier):
    """Lightning's `self.log("loss", loss, on_step=True, on_epoch=True)`."""

    def training_step(self, batch, batch_idx):
        loss, _ = self.compute_loss(batch)
        self.log("b_both", loss, on_step=True, on_epoch=True)
        self.log("b_quiet", 2 * loss, on_step=True, on_epoch=True, logger=False)
        return loss

    def validation_step(self, batch, batch_idx):
        return self.compute_loss(batch)


# ------------------------------------------------------------------ name, name_step and name_epoch
def test_on_step_and_on_epoch_values_can_be_monitored_as_name_epoch(tmp_path):
    """`ModelCheckpoint(monitor="b_both_epoch")` failed after the first epoch: the loggers got
    `b_both_epoch`, callback_metrics only `b_both` and `b_both_step`."""
    best = ModelCheckpoint(dirpath=tmp_path / "ck", monitor="b_both_epoch", save_top_k=1)
    early = EarlyStopping(monitor="b_both_epoch", patience=5)
    t = fit(tmp_path, build(LogsBoth), max_epochs=3, enable_checkpointing=True, callbacks=[best, early])
    m = t.callback_metrics
    assert {"b_both", "b_both_step", "b_both_epoch", "b_quiet_epoch"} <= set(m)  # (logger=False too)
    assert m["b_both_epoch"] == m["b_both"] == t.history["b_both"][-1]  # the epoch mean
    assert best.best_model_score == pytest.approx(min(t.history["b_both"]))
    assert m["train_loss_epoch"] == t.history["train_loss"][-1]  # as the loggers name it too


def test_an_epoch_mean_monitored_before_any_epoch_ended_is_not_sent_to_the_step_value(tmp_path):
    """The hint said "did you mean 'b_both_step'?": the per-step value, the wrong fix for an epoch mean.
    (Left at its default, the check of a training metric waits for the epoch end, where the mean is.)"""
    early = EarlyStopping(monitor="b_both_epoch", check_on_train_epoch_end=False)  # the first is mid-epoch
    with pytest.raises(KeyError, match="'b_both_epoch' was not logged") as raised:
        fit(tmp_path, build(LogsBoth), log_every_n_steps=1, val_check_interval=0.5, callbacks=[early])
    hint = str(raised.value).split(";")[0]
    assert "b_both_step" not in hint and "the epoch mean of the training metric 'b_both'" in hint
    assert "EarlyStopping(check_on_train_epoch_end=True) or leave check_on_train_epoch_end unset" in hint
    fit(
        tmp_path / "default",
        build(LogsBoth),
        val_check_interval=0.5,
        callbacks=[EarlyStopping("b_both_epoch")],
    )


def test_step_saves_monitoring_an_epoch_mean_wait_for_the_first_epoch_end(tmp_path):
    """As in Lightning, skipped with one warning until it is logged (it was a KeyError at step 1)."""
    every_step = ModelCheckpoint(
        dirpath=tmp_path / "ck",
        monitor="b_both_epoch",
        every_n_train_steps=1,
        save_top_k=-1,
        filename="{step}",
    )
    with pytest.warns(UserWarning, match="'b_both_epoch' is not logged yet at step 1; saves are skipped"):
        fit(tmp_path, build(LogsBoth), log_every_n_steps=1, enable_checkpointing=True, callbacks=[every_step])
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == [f"step={s}" for s in range(4, 9)]


class LogsOneNameTwoWays(TinyClassifier):
    def __init__(self, stage):
        super().__init__()
        self.stage = stage

    def _log_twice(self, batch):
        loss, _ = self.compute_loss(batch)
        self.log("foo", loss, prog_bar=False)
        self.log("foo", loss, prog_bar=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._log_twice(batch) if self.stage == "train" else self.compute_loss(batch)[0]

    def validation_step(self, batch, batch_idx):
        return self._log_twice(batch) if self.stage == "val" else self.compute_loss(batch)


@pytest.mark.parametrize("stage", ["train", "val"])
@pytest.mark.parametrize("compile", [True, False])
def test_one_name_logged_twice_in_a_step_with_different_options_is_refused(tmp_path, stage, compile):
    """The later call decided silently where the value went (here: into the bar or not); Lightning 2.6.6
    raises "You called `self.log(foo, ...)` twice in `training_step` with different arguments"."""
    with pytest.raises(ValueError, match=r"self.log\('foo', ...\) was called twice in this step with differ"):
        fit(tmp_path, build(LogsOneNameTwoWays, stage), compile=compile)


# ------------------------------------------------------------------ the progress bar
class EpochMeanInTheBar(TinyClassifier):
    def training_step(self, batch, batch_idx):
        loss, _ = self.compute_loss(batch)
        self.log("c_epoch", loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("d_step", loss, prog_bar=True)
        return loss


class ReadsTheBar(Callback):
    def __init__(self):
        self.shown = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.shown.append(trainer.progress_bar_metrics.get("c_epoch"))


def test_the_bar_shows_the_epoch_mean_of_a_value_logged_on_epoch_only(tmp_path):
    """It showed the last step's value under that name (1.233 where the epoch mean was 1.060)."""
    bar = ReadsTheBar()
    t = fit(tmp_path, build(EpochMeanInTheBar), callbacks=[bar])
    shown = t.progress_bar_metrics
    assert shown["c_epoch"] == t.history["c_epoch"][-1]  # the mean asked for
    assert shown["c_epoch"] != shown["d_step"]  # (the last step's loss, which it showed before)
    # As in Lightning: nothing before the first epoch ends, then the last epoch's mean.
    assert bar.shown[:4] == [None] * 4 and bar.shown[4:] == [t.history["c_epoch"][0]] * 4


class SameNameInBothStages(TinyClassifier):
    def training_step(self, batch, batch_idx):
        loss, _ = self.compute_loss(batch)
        self.log("same", 1.0, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("same", 5.0, prog_bar=True)


class ReadsSameAtTheValidationEnd(Callback):
    def on_validation_epoch_end(self, trainer, module):
        self.shown = trainer.progress_bar_metrics.get("same")


def test_the_bar_in_on_validation_epoch_end_shows_that_validations_values(tmp_path):
    """A callback reading progress_bar_metrics in fit's on_validation_epoch_end got the last training
    step's "same" (1.0), though callback_metrics had the validation's (5.0). Lightning 2.6.6's shows the
    validation's there (measured: 5.0, as callback_metrics)."""
    reads = ReadsSameAtTheValidationEnd()
    fit(tmp_path, build(SameNameInBothStages), max_epochs=1, callbacks=[reads], log_every_n_steps=1)
    assert reads.shown == 5.0


class StepAndEpochInTheBar(TinyClassifier):
    def training_step(self, batch, batch_idx):
        loss, _ = self.compute_loss(batch)
        self.log("x", batch_idx.astype(mx.float32), on_step=True, on_epoch=True, prog_bar=True)
        return loss


class ReadsXInTheBar(Callback):
    def __init__(self):
        self.shown = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        shown = trainer.progress_bar_metrics
        self.shown.append((shown.get("x"), shown.get("x_step"), shown.get("x_epoch")))


def test_the_bar_shows_the_step_value_of_a_value_logged_on_step_and_on_epoch(tmp_path):
    """As in Lightning, the bar shows a step's value of it as `x_step` and, once an epoch has ended, its
    mean as `x_epoch` (it showed both under `x`, the step's value). Lightning 2.6.6, the same run read in
    on_train_batch_end: x_step 0, 1, 2, 3 in each epoch, x_epoch None in the first and 1.5 in the second."""
    bar = ReadsXInTheBar()
    t = fit(tmp_path, build(StepAndEpochInTheBar), val=False, callbacks=[bar])
    assert t.history["x"] == [1.5, 1.5]  # the epoch means
    # The batch's own, as Lightning's (the bar on screen shows the step before: progress_metrics).
    assert [step for _, step, _ in bar.shown] == [0.0, 1.0, 2.0, 3.0] * 2
    assert [epoch for _, _, epoch in bar.shown] == [None] * 4 + [1.5] * 4
    assert all(plain is None for plain, _, _ in bar.shown)
    assert {k: t.progress_bar_metrics[k] for k in ("x_step", "x_epoch")} == {"x_step": 3.0, "x_epoch": 1.5}


# ------------------------------------------------------------------ self.log("train_loss", ...)
class LogsTrainLoss(TinyClassifier):
    def __init__(self, scale=1.0, **options):
        super().__init__()
        self.scale, self.options = scale, options

    def training_step(self, batch, batch_idx):
        loss, _ = self.compute_loss(batch)
        self.log("train_loss", self.scale * loss, **self.options)
        return loss


def test_logging_train_loss_keeps_it_in_the_history(tmp_path):
    """`self.log("train_loss", loss)` (on_epoch=False, Lightning's default) took the name of the returned
    loss, and the history and export_history() lost the training curve."""
    plain = fit(tmp_path / "plain", build(TinyClassifier))
    logger = RecordingLogger()
    t = fit(tmp_path / "logged", build(LogsTrainLoss), logger=logger, log_every_n_steps=1)
    assert t.history["train_loss"] == plain.history["train_loss"]
    assert t.callback_metrics["train_loss"] == plain.callback_metrics["train_loss"]  # the epoch mean
    exported = json.loads(t.export_history(tmp_path / "history.json").read_text())
    assert exported["train_loss"] == plain.history["train_loss"]
    # The loggers follow the user's options: the per-step values, no train_loss_epoch (on_epoch=False).
    assert len([m for _, m in logger.metrics if "train_loss" in m]) == 8
    assert "train_loss_epoch" not in logger.keys()


def test_a_value_logged_as_train_loss_wins_with_its_epoch_mean_in_the_history(tmp_path):
    plain = fit(tmp_path / "plain", build(TinyClassifier))
    for options in ({}, {"on_step": False, "on_epoch": True}):
        t = fit(tmp_path / str(len(options)), build(LogsTrainLoss, 3.0, **options))
        assert t.history["train_loss"] == pytest.approx([3 * v for v in plain.history["train_loss"]])


class LogsItsOwnEpoch(TinyClassifier):
    def training_step(self, batch, batch_idx):
        loss, _ = self.compute_loss(batch)
        self.log("epoch", -batch_idx.astype(mx.float32), on_step=False, on_epoch=True)
        return loss


def test_an_epoch_value_the_module_logs_reaches_the_loggers_and_the_history_keeps_its_epoch_column(tmp_path):
    """The loggers got the Trainer's epoch (0) over the module's own "epoch" mean, and the history's epoch
    column became the module's value (-1.5). Lightning 2.6.6 sends the module's value (its `setdefault`):
    logged_metrics["epoch"] is -1.5 here (batch_idx 0..3)."""
    logger = RecordingLogger()
    t = fit(tmp_path, build(LogsItsOwnEpoch), val=False, max_epochs=1, logger=logger)
    epoch_rows = [m for _, m in logger.metrics if "train_loss_epoch" in m]
    assert [row["epoch"] for row in epoch_rows] == [-1.5]
    assert t.logged_metrics["epoch"] == -1.5 and t.callback_metrics["epoch"] == -1.5
    assert t.history["epoch"] == [0]


class LogsItsOwnEpochPerStep(TinyClassifier):
    def training_step(self, batch, batch_idx):
        loss, _ = self.compute_loss(batch)
        self.log("epoch", -batch_idx.astype(mx.float32))  # (on_step, as Lightning's default here)
        return loss


def test_logged_metrics_hold_no_epoch_but_one_the_module_logged(tmp_path):
    """logged_metrics["epoch"] was the Trainer's epoch (0), also over the module's own per-step "epoch" (-3).
    Lightning 2.6.6 adds its epoch to what the loggers get only (its `setdefault` after `logged_metrics`
    took the values): without an "epoch" logged, logged_metrics has none (measured: ['loss_epoch',
    'loss_step']); with one, its last value (-1.0 for 2 batches). The loggers get the Trainer's epoch at the
    epoch's end as before."""
    logger = RecordingLogger()
    t = fit(tmp_path, build(LogsBoth), val=False, max_epochs=1, logger=logger)
    assert "epoch" not in t.logged_metrics
    assert [m["epoch"] for _, m in logger.metrics if "b_both_epoch" in m] == [0]
    t = fit(tmp_path, build(LogsItsOwnEpochPerStep), val=False, max_epochs=1, log_every_n_steps=1)
    assert t.logged_metrics["epoch"] == -3.0


class LogsItsStepAtTheEnd(TinyClassifier):
    def on_train_epoch_end(self, epoch, metrics):
        self.log("step", float(10 + self.current_epoch))


def test_a_step_logged_at_the_epoch_end_sends_no_trainer_epoch(tmp_path):
    """The epoch end's values went to the loggers with the Trainer's "epoch" also where the module logged
    "step". Lightning 2.6.6 (`_LoggerConnector.log_metrics`) adds its epoch only where no "step" was logged
    (the `setdefault` is in the branch without one): the row at step 10 has train_loss_epoch, no epoch."""
    logger = RecordingLogger()
    fit(tmp_path, build(LogsItsStepAtTheEnd), val=False, logger=logger)
    ends = [(step, m) for step, m in logger.metrics if "train_loss_epoch" in m]
    assert [step for step, _ in ends] == [10, 11]
    assert not any("epoch" in m for _, m in ends)


class LogsItsOwnEpochAtTheEnd(TinyClassifier):
    def on_train_epoch_end(self, epoch, metrics):
        self.log("epoch", 7.0)


def test_an_epoch_value_logged_in_on_train_epoch_end_leaves_the_historys_epoch_column(tmp_path):
    """The history's epoch column read [7.0, 7.0]: the value logged there replaced the epoch numbers."""
    logger = RecordingLogger()
    t = fit(tmp_path, build(LogsItsOwnEpochAtTheEnd), val=False, logger=logger)
    assert [m["epoch"] for _, m in logger.metrics if "train_loss_epoch" in m] == [7.0, 7.0]
    assert t.history["epoch"] == [0, 1]


class LogsForTheLoggers(TinyClassifier):
    def __init__(self, **options):
        super().__init__()
        self.options = options

    def training_step(self, batch, batch_idx):
        loss, _ = self.compute_loss(batch)
        self.log("asked", loss, **self.options)
        return loss


@pytest.mark.parametrize("with_logger", [False, True])
def test_logger_true_without_a_logger_warns_as_lightning_does(tmp_path, with_logger, recwarn):
    """It said nothing, and the value a run meant to record reached no file. Lightning 2.6.6 warns "You
    called `self.log('epoch', ..., logger=True)` but have no logger configured" (no logger only)."""
    logger = RecordingLogger() if with_logger else False
    fit(tmp_path / "asked", build(LogsForTheLoggers, logger=True), val=False, max_epochs=1, logger=logger)
    fit(tmp_path / "default", build(LogsForTheLoggers), val=False, max_epochs=1, logger=False)
    said = [
        str(w.message) for w in recwarn if "logger=True) was called but the Trainer has no" in str(w.message)
    ]
    assert len(said) == (0 if with_logger else 1) and all("self.log('asked'" in m for m in said)


# ------------------------------------------------------------------ values logged in on_train_batch_end
class LogsInBatchHooks(TinyClassifier):
    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.log("module_gs", float(self.global_step))


class LogsGlobalStep(Callback):
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        module.log("cb_gs", float(trainer.global_step))


@pytest.mark.parametrize("every", [1, 2])
def test_values_logged_in_on_train_batch_end_are_written_at_that_batchs_step(tmp_path, every):
    """They waited for the next logging point: the value of step k in the row of step k + every."""
    logger = RecordingLogger()
    fit(tmp_path, build(LogsInBatchHooks), val=False, logger=logger, log_every_n_steps=every,
        callbacks=[LogsGlobalStep()])  # fmt: skip
    for name in ("cb_gs", "module_gs"):
        written = [(step, m[name]) for step, m in logger.metrics if name in m]
        assert written == [(step, float(step)) for step in range(every, 9, every)], name
    rows = {}
    for step, m in logger.metrics:
        rows.setdefault(step, {}).update(m)
    assert all({"train_loss", "cb_gs", "module_gs"} <= set(rows[step]) for step in range(every, 9, every))


class LogsAtStepTwoOnly(Callback):
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == 2:
            module.log("at_two", 2.0)


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("every", [1, 3])
def test_values_logged_in_on_train_batch_end_survive_a_resume_from_that_step(tmp_path, every):
    """The value of the checkpoint's step (log_every_n_steps=1), or one waiting for the next logging point
    (log_every_n_steps=3), was not in the checkpoint: the resumed run's CSV lost it."""

    def run(folder, ckpt_path=None):
        callbacks = [LogsGlobalStep(), LogsAtStepTwoOnly()]
        if folder.name == "resumed":
            callbacks.append(ModelCheckpoint(dirpath=folder / "ck", every_n_train_steps=2, save_top_k=-1))
        logger = CSVLogger(folder, name=None)
        t = quiet_trainer(folder, max_epochs=2, log_every_n_steps=every, logger=logger, callbacks=callbacks,
                          enable_checkpointing=folder.name == "resumed", num_sanity_val_steps=2)  # fmt: skip
        t.fit(build(LogsInBatchHooks), make_batches(64), make_batches(32, seed=1), ckpt_path=ckpt_path)
        return logger.metrics_file

    straight = _csv(run(tmp_path / "straight"))
    run(tmp_path / "resumed")
    resumed = _csv(run(tmp_path / "resumed", ckpt_path=str(tmp_path / "resumed" / "ck" / "epoch=0-step=2")))
    assert resumed == straight
    assert [row["at_two"] for row in straight if row["at_two"]] == ["2.0"]


# ------------------------------------------------------------------ self.logger and checks at self.log
class UsesItsLogger(TinyClassifier):
    def __init__(self):
        super().__init__()
        self.refused = []

    def on_train_epoch_end(self):
        assert self.logger is self.trainer.logger and self.loggers == self.trainer.loggers
        self.logger.log_metrics({"by_module": 1.0}, step=self.global_step)
        self.log("np_one", np.array([1.5]))  # one element, as mx.ones((1, 1)) is
        self.log("mx_one", mx.ones((1, 1)))
        for bad in ("abc", None, np.array([1.0, 2.0]), mx.array([1.0, 2.0])):
            try:
                self.log("bad", bad)
            except ValueError as err:  # raised at the call, where the traceback shows the user's line
                self.refused.append(str(err))


def test_the_module_has_lightnings_logger_and_log_checks_a_hooks_value_at_the_call(tmp_path):
    module = build(UsesItsLogger)
    assert module.logger is None and module.loggers == []  # not attached yet
    logger = RecordingLogger()
    t = fit(tmp_path, module, val=False, max_epochs=1, logger=logger)
    assert ("by_module" in logger.keys()) and t.callback_metrics["np_one"] == 1.5
    assert t.callback_metrics["mx_one"] == 1.0 and "bad" not in t.callback_metrics
    assert len(module.refused) == 4
    assert all(
        "UsesItsLogger.log('bad', ...): expected a number or a scalar array" in m for m in module.refused
    )


# ------------------------------------------------------------------ the loggers on every rank
def test_a_logger_does_nothing_on_a_rank_other_than_zero(tmp_path, monkeypatch):
    from audiotrain.distributed import collectives

    class Rank:
        def __init__(self, rank):
            self._rank = rank

        def rank(self):
            return self._rank

        def size(self):
            return 2

    logger = CSVLogger(tmp_path, name="csv")
    monkeypatch.setattr(collectives, "_GROUP", Rank(1))
    logger.log_hyperparams({"lr": 0.1})
    logger.log_metrics({"extra": 1.0}, step=3)
    logger.experiment.add_histogram("w", np.zeros(3), 3)  # Lightning's stand-in: every method does nothing
    logger.log_artifact(tmp_path / "only_on_rank_zeros_machine.txt")
    logger.finalize("success")
    assert not (tmp_path / "csv").exists()
    with pytest.raises(ValueError, match="step must be an int"):  # bad arguments are still refused
        logger.log_metrics({"extra": 1.0}, step=-1)
    monkeypatch.setattr(collectives, "_GROUP", Rank(0))
    logger.log_metrics({"extra": 1.0}, step=3)
    assert _csv(logger.metrics_file) == [{"step": "3", "extra": "1.0"}]


TESTS = str(Path(__file__).resolve().parent)


@pytest.mark.serial
def test_under_data_parallel_every_rank_has_the_logger_and_rank_zero_alone_writes(tmp_path):
    """`trainer.logger` was None on rank 1, so `trainer.logger.log_metrics(...)` in a callback ended the
    job with an AttributeError there."""
    code = f"""
import json, sys
sys.path.insert(0, {TESTS!r})
import audiotrain
from audiotrain import DataLoader, Trainer
from audiotrain.train.callback import Callback
from audiotrain.train.loggers import CSVLogger
from tasks import TinyClassifier, make_data

class LogsExtra(Callback):
    def on_train_epoch_end(self, trainer, module):
        trainer.logger.log_metrics({{"extra": 1.0 + trainer.global_rank}}, step=trainer.global_step)
        if trainer.global_rank:  # (a CSVLogger has no experiment object on rank 0)
            trainer.logger.experiment.add_histogram("w", 1.0, trainer.global_step)

x, y = make_data(16)
trainer = Trainer(max_epochs=1, enable_progress_bar=False, num_sanity_val_steps=0, enable_checkpointing=False,
                  logger=CSVLogger("logs", name=""), callbacks=[LogsExtra()], log_every_n_steps=1)
module = TinyClassifier()
trainer.fit(module, DataLoader(list(zip(x, y)), batch_size=4))
same = module.logger is trainer.logger
print(json.dumps([type(trainer.logger).__name__, same, str(trainer.logger.log_dir)]))
"""
    results = run_ranks(code, 2, timeout=120, cwd=tmp_path)
    assert all(r.returncode == 0 for r in results), describe(results)
    assert [json.loads(r.lines()[-1]) for r in results] == [["CSVLogger", True, "logs/version_0"]] * 2
    assert [p.name for p in (tmp_path / "logs").iterdir()] == ["version_0"]
    rows = _csv(tmp_path / "logs" / "version_0" / "metrics.csv")
    assert [row["extra"] for row in rows if row["extra"]] == ["1.0"]  # rank 0's, once


# ------------------------------------------------------------------ values logged on some steps only
class LogsSometimes(TinyClassifier):
    """x = 0..9 in batches of 4, 4, 2; `odd_only` is logged on training batch 1 only (its mean: 5.5),
    `val_first_only` on validation batch 0 only (1.5). Eager: the step branches on the batch index."""

    def training_step(self, batch, batch_idx):
        loss = mx.mean(batch) + 0.0 * mx.sum(self.fc2.bias)  # (a gradient for the optimizer)
        self.log("x_mean", mx.mean(batch), on_step=True, on_epoch=True)
        if int(batch_idx) == 1:
            self.log("odd_only", mx.mean(batch), on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_x", mx.mean(batch))
        if int(batch_idx) == 0:
            self.log("val_first_only", mx.mean(batch))


def test_a_value_logged_on_some_steps_only_is_the_mean_over_those_steps(tmp_path):
    """As Lightning (2.6.6 gives odd_only 5.5, val_first_only 1.5): the epoch and interval means of a value
    were divided by every step's weight (2.2 = 5.5 x 4 / 10, 0.6 = 1.5 x 4 / 10)."""
    batches = [mx.arange(i, min(i + 4, 10), dtype=mx.float32) for i in range(0, 10, 4)]
    logger = RecordingLogger()
    t = quiet_trainer(tmp_path, max_epochs=1, compile=False, logger=logger, log_every_n_steps=3)
    t.fit(build(LogsSometimes), batches, batches)
    row = {k: v[-1] for k, v in t.history.items()}
    assert row["x_mean"] == row["train_loss"] == pytest.approx(4.5)  # every step: weighted by samples
    assert row["odd_only"] == pytest.approx(5.5)
    assert row["val_x"] == pytest.approx(4.5) and row["val_first_only"] == pytest.approx(1.5)
    # At the logging step (step 3) the loggers get that step's values, as Lightning's: its x_mean (8.5, of
    # 8 and 9), and no odd_only, which it did not log.
    at_step_3 = logger.metrics[0][1]
    assert at_step_3["x_mean_step"] == pytest.approx(8.5) and "odd_only_step" not in at_step_3


class LogsThreeWays(TinyClassifier):
    """One value kept from the loggers, one logged on the epoch only, one on the step and the epoch."""

    def training_step(self, batch, batch_idx):
        loss, _ = self.compute_loss(batch)
        self.log("hidden", 2 * loss, on_step=True, on_epoch=False, logger=False)
        self.log("epoch_only", 3 * loss, on_step=False, on_epoch=True)
        self.log("both", 4 * loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        return self.compute_loss(batch)


def test_the_loggers_get_lightnings_names_and_never_a_value_logged_with_logger_false(tmp_path):
    """As Lightning: a value logged with logger=False stays out of every logger row (a training step's
    too) but is in callback_metrics; one logged on the epoch only keeps its name (no `_epoch`); one logged
    on the step and the epoch is written as `name_step` and `name_epoch`."""
    logger = RecordingLogger()
    t = fit(tmp_path, build(LogsThreeWays), logger=logger, log_every_n_steps=1)
    keys = logger.keys()
    assert not {k for k in keys if k.startswith("hidden")}
    assert "hidden" in t.callback_metrics
    assert "epoch_only" in keys and "epoch_only_epoch" not in keys and "epoch_only_step" not in keys
    assert {"both_step", "both_epoch"} <= keys and "both" not in keys


class KeepsSometimesFromTheLoggers(LogsSometimes):
    """LogsSometimes, and values logged on one batch only that are kept from the loggers (eager too)."""

    def training_step(self, batch, batch_idx):
        if int(batch_idx) == 1:
            self.log("odd_quiet", mx.mean(batch), on_step=False, on_epoch=True, logger=False)
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch, batch_idx):
        if int(batch_idx) == 0:
            self.log("val_first_quiet", mx.mean(batch), logger=False)
        return super().validation_step(batch, batch_idx)


def test_a_value_logged_on_some_steps_only_keeps_its_options_after_the_steps_that_did_not_log_it(tmp_path):
    """The options of a value logged on batch 1 (or validation batch 0) only are those it was logged with at
    the epoch's end too, after batches that did not log it: logger=False keeps it out of every logger row (a
    step that forgot them wrote it as odd_quiet_epoch and val_first_quiet)."""
    batches = [mx.arange(i, min(i + 4, 10), dtype=mx.float32) for i in range(0, 10, 4)]
    logger = RecordingLogger()
    t = quiet_trainer(tmp_path, max_epochs=1, compile=False, logger=logger, log_every_n_steps=1)
    t.fit(build(KeepsSometimesFromTheLoggers), batches, batches)
    assert not {k for k in logger.keys() if "quiet" in k}
    assert t.history["odd_quiet"] == [pytest.approx(5.5)] and t.history["val_first_quiet"] == [1.5]


# ------------------------------------------------------------------ on_step: the step's value
class LogsBatchIndex(TinyClassifier):
    """Logs its batch index at every training step: a value that differs at each step."""

    def training_step(self, batch, batch_idx):
        loss = mx.mean(batch) + 0.0 * mx.sum(self.fc2.bias)
        self.log("bidx", batch_idx.astype(mx.float32))
        self.log("tenfold", 10.0 * batch_idx.astype(mx.float32), on_step=True, on_epoch=True)
        return loss


@pytest.mark.parametrize("compile", [True, False])
def test_a_value_logged_on_step_is_the_logging_steps_value_not_the_interval_mean(tmp_path, compile):
    """Lightning writes a value logged with on_step=True at each logging step as logged at that step (a
    one-step spike stays visible); the epoch mean is on_epoch's. Before, the interval mean was written."""
    batches = [mx.full((4,), float(i)) for i in range(8)]
    logger = RecordingLogger()
    t = quiet_trainer(tmp_path, max_epochs=1, compile=compile, logger=logger, log_every_n_steps=4)
    t.fit(build(LogsBatchIndex), batches)
    rows = [(step, m) for step, m in logger.metrics if "bidx" in m]
    assert [(step, m["bidx"], m["tenfold_step"]) for step, m in rows] == [(4, 3.0, 30.0), (8, 7.0, 70.0)]
    assert t.callback_metrics["bidx"] == 7.0  # what a callback monitoring it reads, too
    assert t.history["tenfold"] == [pytest.approx(35.0)]  # on_epoch: the epoch's mean
    assert t.history["train_loss"] == [pytest.approx(3.5)]
    assert [m["train_loss"] for _, m in rows] == [pytest.approx(1.5), pytest.approx(5.5)]  # returned: means


# ------------------------------------------------------------------ each stage reports its own numbers
def test_validate_and_test_after_fit_report_only_their_own_metrics(tmp_path):
    """`trainer.callback_metrics` after `validate` still held fit's training values (`train_loss`, `b_both`,
    `learning_rate`), and after `test` the `val_loss` of the validation before it; Lightning's
    `_run` resets callback_metrics and logged_metrics when each stage starts."""

    class AlsoTests(LogsBoth):
        def test_step(self, batch, batch_idx):
            return self.compute_loss(batch)

    t = fit(tmp_path, build(AlsoTests), max_epochs=1)
    assert "train_loss" in t.callback_metrics and "val_loss" in t.callback_metrics
    [returned] = t.validate(t.module, make_batches(32, seed=1))
    assert set(t.callback_metrics) == {"val_loss", "val_accuracy"} == set(returned)
    assert "train_loss" not in t.logged_metrics and "b_both_step" not in t.logged_metrics
    t.test(t.module, make_batches(32, seed=2))
    assert set(t.callback_metrics) == {"test_loss", "test_accuracy"}


def test_the_bar_after_validate_and_test_shows_their_own_values_not_fits(tmp_path):
    """`trainer.progress_bar_metrics` after `validate` still held fit's `loss`, its `prog_bar=True` values
    and fit's last `val_loss` (not the one validate had just computed, which callback_metrics held), and
    after `test` all of them again; Lightning's `reset_metrics` empties the bar's with the other two."""

    class ShowsInBar(LogsBoth):
        def training_step(self, batch, batch_idx):
            loss, _ = self.compute_loss(batch)
            self.log("in_bar", loss, prog_bar=True)
            return loss

        def on_train_batch_end(self, outputs, batch, batch_idx):
            self.log("hook_bar", 7.0, prog_bar=True)

        def test_step(self, batch, batch_idx):
            return self.compute_loss(batch)

    t = fit(tmp_path, build(ShowsInBar), max_epochs=1)
    assert {"loss", "in_bar", "hook_bar", "val_loss"} <= set(t.progress_bar_metrics)
    t.validate(t.module, make_batches(32, seed=5))  # other batches: another val_loss than fit's last
    assert t.callback_metrics["val_loss"] != t.history["val_loss"][-1]
    assert t.progress_bar_metrics["val_loss"] == t.callback_metrics["val_loss"]
    assert not {"loss", "in_bar", "hook_bar"} & set(t.progress_bar_metrics)
    t.test(t.module, make_batches(32, seed=2))
    assert not {"loss", "in_bar", "hook_bar", "val_loss"} & set(t.progress_bar_metrics)


def test_validate_and_test_show_what_their_steps_logged_with_prog_bar(tmp_path):
    """`trainer.progress_bar_metrics` after `validate` / `test` was {} for `self.log("v", x, prog_bar=True)`
    in `validation_step` / `test_step` (it held only `val_*` names). Lightning 2.6.6, over these batches
    (16, 16): {'v': mean} after validate, {'Tv': mean} after test; a value without prog_bar stays out."""

    class LogsInBar(LogsBoth):
        def validation_step(self, batch, batch_idx):
            self.log("v", mx.mean(batch[0]), prog_bar=True)
            self.log("hidden", mx.mean(batch[0]))

        def test_step(self, batch, batch_idx):
            self.log("Tv", mx.mean(batch[0]), prog_bar=True)

    class SeesBar(Callback):
        def on_validation_epoch_end(self, trainer, module):
            self.shown = dict(trainer.progress_bar_metrics)

    batches = make_batches(32, seed=1)
    expected = float(np.mean([np.mean(np.array(x)) for x, _ in batches]))  # two batches of 16
    seen = SeesBar()
    t = quiet_trainer(tmp_path, callbacks=[seen])
    t.validate(build(LogsInBar), batches)
    assert t.progress_bar_metrics == {"v": pytest.approx(expected, rel=1e-6)}
    assert seen.shown == t.progress_bar_metrics  # already in the epoch-end hooks, as Lightning's
    t.test(t.module, batches)
    assert t.progress_bar_metrics == {"Tv": pytest.approx(expected, rel=1e-6)}


class SeesMetrics(Callback):
    def __init__(self):
        self.seen = []

    def on_validation_epoch_end(self, trainer, module):
        self.seen.append(("val_end", trainer.current_epoch, dict(trainer.callback_metrics)))

    def on_train_epoch_end(self, trainer, module):
        self.seen.append(("train_end", trainer.current_epoch, dict(trainer.callback_metrics)))


def test_the_epoch_end_validation_sees_the_last_steps_value_and_the_epoch_mean_comes_after_it(tmp_path):
    """`callback_metrics` in `on_validation_epoch_end` of the validation at the epoch's end held the
    training epoch's mean as "x" (and "x_epoch") before that epoch had ended, where Lightning has the last
    step's value and no "x_epoch" until `on_train_epoch_end` (then the last epoch's). Numbers of Lightning
    2.6.6 over these batches (the mean of each 16 x 8 batch of make_data(64) logged on_step and on_epoch,
    log_every_n_steps=1): val_end 0 {x: 0.002296, x_step: 0.002296}, train_end 0 {x: -0.024003,
    x_step: 0.002296, x_epoch: -0.024003}, val_end 1 as val_end 0 with x_epoch: -0.024003."""

    class LogsBatchMean(LogsBoth):
        def training_step(self, batch, batch_idx):
            loss, _ = self.compute_loss(batch)
            self.log("x", mx.mean(batch[0]), on_step=True, on_epoch=True)
            return loss

    seen = SeesMetrics()
    fit(tmp_path, build(LogsBatchMean), log_every_n_steps=1, callbacks=[seen])
    got = [
        (hook, epoch, {k: round(m[k], 6) for k in ("x", "x_step", "x_epoch") if k in m})
        for hook, epoch, m in seen.seen
    ]
    assert got == [
        ("val_end", 0, {"x": 0.002296, "x_step": 0.002296}),
        ("train_end", 0, {"x": -0.024003, "x_step": 0.002296, "x_epoch": -0.024003}),
        ("val_end", 1, {"x": 0.002296, "x_step": 0.002296, "x_epoch": -0.024003}),
        ("train_end", 1, {"x": -0.024003, "x_step": 0.002296, "x_epoch": -0.024003}),
    ]


def test_logged_metrics_in_on_validation_epoch_end_hold_what_the_stage_sends_the_loggers(tmp_path):
    """`trainer.logged_metrics` read in a callback's `on_validation_epoch_end` was {} in `validate`, and
    in fit's validation lacked its values; Lightning 2.6.6 gives {'v': mean} there (over these batches:
    -0.098836), without the value logged with logger=False."""

    class LogsV(LogsBoth):
        def validation_step(self, batch, batch_idx):
            self.log("v", mx.mean(batch[0]))
            self.log("hidden", mx.mean(batch[0]), logger=False)

    class SeesLogged(Callback):
        def __init__(self):
            self.seen = []

        def on_validation_epoch_end(self, trainer, module):
            self.seen.append(
                {k: round(v, 6) for k, v in trainer.logged_metrics.items() if k in ("v", "hidden")}
            )

    seen = SeesLogged()
    t = fit(tmp_path, build(LogsV), max_epochs=1, callbacks=[seen])
    t.validate(t.module, make_batches(32, seed=1))
    assert seen.seen == [{"v": -0.098836}, {"v": -0.098836}]


def test_logged_metrics_in_on_train_epoch_end_hold_the_epoch_mean_a_batch_hook_logged(tmp_path):
    """`trainer.logged_metrics` read in a callback's `on_train_epoch_end` had the training step's
    `x_epoch` but not `mb_epoch`, logged on_epoch in `on_train_batch_end`. Lightning 2.6.6 over batches of
    16, 16 and 8 logging the batch index: {'mb_step': 2.0, 'mb_epoch': 0.8} (weighted by batch size)."""

    class LogsInBatchHook(LogsBoth):
        def on_train_batch_end(self, outputs, batch, batch_idx):
            self.log("mb", float(batch_idx), on_step=True, on_epoch=True)

    class SeesLogged(Callback):
        def __init__(self):
            self.seen = []

        def on_train_epoch_end(self, trainer, module):
            self.seen.append({k: v for k, v in trainer.logged_metrics.items() if k.startswith("mb")})

    seen = SeesLogged()
    t = quiet_trainer(tmp_path, max_epochs=1, log_every_n_steps=1, callbacks=[seen])
    t.fit(build(LogsInBatchHook), make_batches(40))
    assert seen.seen == [{"mb_step": 2.0, "mb_epoch": pytest.approx(0.8)}]


def test_logged_metrics_in_on_validation_epoch_end_hold_the_mean_a_batch_hook_logged(tmp_path):
    """`trainer.logged_metrics` read in `on_validation_epoch_end` lacked "cvb", logged by a callback's
    `on_validation_batch_end` (its epoch default): written only after the hooks. Lightning 2.6.6 over
    validation batches of 16, 16 and 8 logging the batch index: {'cvb': 0.8} (weighted by batch size)."""

    class LogsInValBatchEnd(Callback):
        def __init__(self):
            self.seen = []

        def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx):
            module.log("cvb", float(batch_idx))

        def on_validation_epoch_end(self, trainer, module):
            self.seen.append({k: v for k, v in trainer.logged_metrics.items() if k == "cvb"})

    seen = LogsInValBatchEnd()
    t = quiet_trainer(tmp_path, callbacks=[seen])
    t.validate(build(LogsBoth), make_batches(40, seed=1))
    assert seen.seen == [{"cvb": pytest.approx(0.8)}]


def test_a_value_logged_with_logger_false_on_step_and_on_epoch_has_all_three_names_in_callback_metrics(
    tmp_path,
):
    """`self.log(name, ..., on_step=True, on_epoch=True, logger=False)` gave callback_metrics `name` and
    `name_epoch` but no `name_step` (with logger=True all three), so `ModelCheckpoint(monitor="name_step")`
    found nothing; Lightning's `_ResultCollection.metrics` gives callback_metrics both names in training
    whatever `logger`, which decides only what the loggers get."""

    class QuietInHook(LogsBoth):
        def on_train_batch_end(self, outputs, batch, batch_idx):
            self.log("h_quiet", float(batch_idx), on_step=True, on_epoch=True, logger=False)

    t = fit(tmp_path, build(QuietInHook), max_epochs=1, log_every_n_steps=1)
    for name in ("b_quiet", "h_quiet"):
        assert {name, f"{name}_step", f"{name}_epoch"} <= set(t.callback_metrics), name
        assert not {f"{name}_step", f"{name}_epoch"} & set(t.logged_metrics)
    assert t.callback_metrics["h_quiet_step"] == 3.0  # the last batch's index


def test_a_count_in_callback_metrics_stays_an_int_with_item_and_in_yaml(tmp_path):
    # skipped_steps is a count: a sweep script writing `yaml.safe_dump(trainer.callback_metrics)` or comparing
    # `callback_metrics["skipped_steps"].item() == 0` gets the int, not 0.0 (metric_values.MetricCount; making
    # it a float passed every test).
    import yaml

    t = fit(tmp_path, build(TinyClassifier), max_epochs=1)
    skipped = t.callback_metrics["skipped_steps"]
    assert type(skipped.item()) is int and skipped.tolist() == 0 and isinstance(skipped, int)
    assert "skipped_steps: 0\n" in yaml.safe_dump(dict(t.callback_metrics))
    assert isinstance(t.callback_metrics["train_loss"].item(), float)


def test_an_epoch_mean_checked_after_the_epoch_end_validation_names_the_option_that_checks_it_later(tmp_path):
    """Since the epoch's means reach `callback_metrics` after the validation that ends the epoch (as in
    Lightning, which raises here too), `EarlyStopping(monitor="b_both_epoch", check_on_train_epoch_end=False)`
    fails at the first epoch's validation. The hint said only "it is there once a training epoch has ended",
    which the user's first epoch just had; it names the option that checks it at epoch ends."""
    early = EarlyStopping(monitor="b_both_epoch", check_on_train_epoch_end=False)
    with pytest.raises(KeyError, match="'b_both_epoch' was not logged") as raised:
        fit(tmp_path, build(LogsBoth), callbacks=[early])
    hint = str(raised.value).split("; available")[0]
    assert "after the validation that ends it" in hint
    assert "EarlyStopping(check_on_train_epoch_end=True)" in hint
    early = EarlyStopping(monitor="b_both_epoch", check_on_train_epoch_end=True)
    fit(tmp_path / "at_epoch_ends", build(LogsBoth), callbacks=[early])  # (what the hint says works)
    assert early.best_score is not None


@pytest.mark.serial
def test_under_data_parallel_the_no_logger_and_momentum_warnings_are_rank_zeros_alone(tmp_path):
    """`self.log(..., logger=True)` without a logger and LearningRateMonitor(log_momentum=True) on Adagrad
    warned on every rank: a 2-rank job printed each warning twice. Lightning 2.6.6 warns through
    rank_zero_warn: once, on rank 0."""
    code = f"""
import json, sys, warnings
sys.path.insert(0, {TESTS!r})
import audiotrain
import mlx.optimizers as optim
from audiotrain import DataLoader, Trainer
from audiotrain.train.callbacks import LearningRateMonitor
from tasks import TinyClassifier, make_data

class Module(TinyClassifier):
    def configure_optimizers(self):
        return optim.Adagrad(learning_rate=0.01)

    def on_train_epoch_end(self):
        self.log("extra", 1.0, logger=True)

x, y = make_data(16)
trainer = Trainer(max_epochs=1, enable_progress_bar=False, num_sanity_val_steps=0, enable_checkpointing=False,
                  callbacks=[LearningRateMonitor(log_momentum=True)])  # (no logger: the default)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    trainer.fit(Module(), DataLoader(list(zip(x, y)), batch_size=4))
said = [str(w.message) for w in caught]
print(json.dumps([any("has no logger" in m for m in said), any("do not have momentum" in m for m in said)]))
"""
    results = run_ranks(code, 2, timeout=120, cwd=tmp_path)
    assert all(r.returncode == 0 for r in results), describe(results)
    assert [json.loads(r.lines()[-1]) for r in results] == [[True, True], [False, False]]


# ------------------------------------------------------------------ callback_metrics at every batch
class LogsLossPerStep(TinyClassifier):
    """`self.log("loss", loss, on_step=True)`, and also `on_epoch=True` with `both`."""

    def __init__(self, both=False):
        super().__init__()
        self.both = both

    def training_step(self, batch, batch_idx):
        loss, _ = self.compute_loss(batch)
        self.log("loss", loss, on_step=True, on_epoch=self.both)
        return loss


class LogsLossManually(TrainModule):
    """The same under manual optimization (the step returns nothing: the logged value is the loss)."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.fc = nn.Linear(8, 3)
        self.returned = SimpleNamespace(losses=[])  # (not a list: an MLX module holds a list's arrays)

    def configure_optimizers(self):
        return optim.SGD(learning_rate=0.1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        opt = self.optimizers()
        loss = self.manual_backward(lambda: mx.mean(nn.losses.cross_entropy(self.fc(x), y)))
        opt.step()
        opt.zero_grad()
        self.log("loss", loss, on_step=True)
        self.returned.losses.append(loss)


class RecordsTheLoss(Callback):
    def __init__(self):
        self.seen, self.step_seen, self.returned, self.logged = [], [], [], []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.seen.append(float(trainer.callback_metrics["loss"]))
        self.step_seen.append(trainer.callback_metrics.get("loss_step"))
        self.logged.append(dict(trainer.logged_metrics))
        if "loss" in outputs:
            self.returned.append(float(outputs["loss"]))


@pytest.mark.parametrize("both", [False, True])
def test_callback_metrics_hold_each_batchs_logged_value_in_its_batch_end_hook(tmp_path, both):
    """Lightning 2.6.6, `log_every_n_steps=50` (measured): `callback_metrics["loss"]` (and `loss_step`
    with on_epoch=True) in on_train_batch_end is that batch's loss at every batch, not only at logging
    steps. Here it stayed missing until the first logging step, and then kept that step's value."""
    seen = RecordsTheLoss()
    fit(tmp_path, build(LogsLossPerStep, both), val=False, log_every_n_steps=50, callbacks=[seen])
    assert len(seen.seen) == 8 and len(set(seen.seen)) == 8
    assert seen.seen == pytest.approx(seen.returned)
    if both:
        assert seen.step_seen == pytest.approx(seen.returned)
    else:
        assert seen.step_seen == [None] * 8


def test_callback_metrics_hold_each_batchs_logged_value_under_manual_optimization(tmp_path):
    """As above for a manual module (Lightning 2.6.6 measured the same there)."""
    seen, module = RecordsTheLoss(), build(LogsLossManually)
    fit(tmp_path, module, val=False, log_every_n_steps=50, callbacks=[seen])
    assert len(seen.seen) == 8 and len(set(seen.seen)) == 8
    assert seen.seen == pytest.approx([float(v) for v in module.returned.losses])


@pytest.mark.parametrize("both", [False, True])
def test_logged_metrics_hold_each_batchs_logged_value_under_the_loggers_name(tmp_path, both):
    """Lightning 2.6.6, `log_every_n_steps=50` (measured): `logged_metrics` in on_train_batch_end holds the
    batch's value at every batch, as `loss` (on_step only) or `loss_step` (with on_epoch), never the other
    name. Here it held nothing until the first logging step."""
    seen = RecordsTheLoss()
    fit(tmp_path, build(LogsLossPerStep, both), val=False, log_every_n_steps=50, callbacks=[seen])
    name, other = ("loss_step", "loss") if both else ("loss", "loss_step")
    assert [m[name] for m in seen.logged] == pytest.approx(seen.returned)
    assert not any(other in m for m in seen.logged)


def _ways_of_reading():
    import copy
    import pickle

    import yaml

    return {
        "items": lambda m: dict(list(m.items()))["loss"],
        "values": lambda m: list(m.values())[list(m.keys()).index("loss")],
        "json": lambda m: json.loads(json.dumps(m))["loss"],
        "pickle": lambda m: pickle.loads(pickle.dumps(m))["loss"],
        "yaml": lambda m: yaml.safe_load(yaml.safe_dump(m))["loss"],
        "deepcopy": lambda m: copy.deepcopy(m)["loss"],
        "repr": lambda m: float(repr(m).split("'loss': ")[1].split(",")[0].rstrip("}")),
        "dict": lambda m: dict(m)["loss"],
    }


class DumpsTheMetrics(Callback):
    """What a user's callback does with `callback_metrics` in its batch-end hook: one way of reading it at
    each batch (the first read of a batch reads every value)."""

    def __init__(self):
        self.reads = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        way, read = list(_ways_of_reading().items())[len(self.reads)]
        self.reads.append((way, read(trainer.callback_metrics), float(outputs["loss"])))


def test_callback_metrics_read_in_any_way_in_a_batch_end_hook_give_that_batchs_numbers(tmp_path):
    """`callback_metrics` holds each batch's logged values unread until someone reads them: items(),
    values(), json, pickle, yaml, deepcopy, repr and dict() each give the batch's loss as a number, never
    the unread array's holder (Lightning's give the batch's value, measured for
    `trainer.callback_metrics["loss"]` in the tests above)."""
    seen = DumpsTheMetrics()
    fit(tmp_path, build(LogsLossPerStep, False), val=False, log_every_n_steps=50, callbacks=[seen])
    assert len(seen.reads) == 8
    for way, value, returned in seen.reads:
        assert isinstance(value, float) and value == pytest.approx(returned), way
