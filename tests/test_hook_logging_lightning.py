"""`self.log` in a hook (the module's or a callback's `pl_module.log`), by Lightning's rules
(train/hook_logs.py): the hook's defaults, epoch and loader means weighted by batch size, `name_step` /
`name_epoch`, `logger=False`, `prog_bar`, `on_step=True` refused in an epoch hook, a validation inside an
epoch, and a resume inside an epoch. The numbers are Lightning 2.6's for the same runs."""

import json

import audiotrain  # noqa: F401  (before mlx)
from audiotrain.train.callback import Callback

import mlx.core as mx
import pytest
from tasks import RecordingLogger, TinyClassifier, make_batches, quiet_trainer

# Training batches of 4, 4, 4 and 2 samples (batch_idx 0..3), validation batches of 3 and 1.
TRAIN, VAL = make_batches(14, 4), make_batches(4, 3, seed=1)
EPOCH_MEAN = (0 * 4 + 1 * 4 + 2 * 4 + 3 * 2) / 14  # 1.2857: batch_idx's mean weighted by batch size
LOADER_MEAN = (0 * 3 + 1 * 1) / 4  # 0.25


class LogsInHooks(TinyClassifier):
    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.log("bi_mean", float(batch_idx), on_step=False, on_epoch=True)
        self.log("hidden", 1.0, logger=False, prog_bar=True)

    def on_validation_batch_end(self, outputs, batch, batch_idx, dataloader_idx=0):
        self.log("vb_idx", float(batch_idx))


def fit(tmp_path, module, val=True, callbacks=(), **kwargs):
    kwargs.setdefault("max_epochs", 1)
    logger = RecordingLogger()
    t = quiet_trainer(tmp_path, logger=logger, log_every_n_steps=1, callbacks=list(callbacks), **kwargs)
    t.fit(module, TRAIN, VAL if val else None)
    return t, logger


def logged(logger, name):
    return [(step, m[name]) for step, m in logger.metrics if name in m]


def test_hook_values_take_the_hooks_defaults_and_weighted_means(tmp_path):
    t, logger = fit(tmp_path, LogsInHooks())
    assert t.callback_metrics["bi_mean"] == pytest.approx(EPOCH_MEAN)  # (not the last value, 3)
    assert t.callback_metrics["vb_idx"] == pytest.approx(LOADER_MEAN)  # (not 1)
    assert t.callback_metrics["hidden"] == 1.0
    assert logged(logger, "bi_mean") == [(4, pytest.approx(EPOCH_MEAN))]  # once, at the epoch's end
    assert logged(logger, "vb_idx") == [(4, pytest.approx(LOADER_MEAN))]
    assert "hidden" not in logger.keys()  # logger=False
    assert t.progress_bar_metrics["hidden"] == 1.0  # prog_bar=True
    assert "bi_mean" not in t.progress_bar_metrics  # (no prog_bar)
    assert t.history["bi_mean"] == [pytest.approx(EPOCH_MEAN)]


class LogsBothWays(Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        pl_module.log("cb_bi", float(batch_idx), on_step=True, on_epoch=True)


def test_a_callbacks_value_logged_per_step_and_per_epoch(tmp_path):
    t, logger = fit(tmp_path, TinyClassifier(), callbacks=[LogsBothWays()])
    assert logged(logger, "cb_bi_step") == [(1, 0.0), (2, 1.0), (3, 2.0), (4, 3.0)]
    assert logged(logger, "cb_bi_epoch") == [(4, pytest.approx(EPOCH_MEAN))]
    assert "cb_bi" not in logger.keys()
    assert t.callback_metrics["cb_bi_step"] == 3.0
    assert t.callback_metrics["cb_bi_epoch"] == pytest.approx(EPOCH_MEAN)
    assert t.callback_metrics["cb_bi"] == pytest.approx(EPOCH_MEAN)  # (the latest of the two)


def test_batch_size_weights_a_hooks_epoch_mean(tmp_path):
    class Weighted(TinyClassifier):
        def on_train_batch_end(self, outputs, batch, batch_idx):
            self.log("w", float(batch_idx), on_step=False, on_epoch=True, batch_size=batch_idx + 1)

        def on_train_epoch_start(self):
            self.log("start", 5.0)  # (an epoch hook: on_epoch by default)

    t, logger = fit(tmp_path, Weighted(), val=False)
    assert t.callback_metrics["w"] == pytest.approx((0 * 1 + 1 * 2 + 2 * 3 + 3 * 4) / 10)
    assert logged(logger, "start") == [(4, 5.0)]


def test_on_train_batch_start_logs_per_step_and_on_fit_start_for_the_first_epoch(tmp_path):
    """As in Lightning, on_train_batch_start is a training batch hook (on_step by default, each step's value
    at its logging step); on_fit_start is allowed here (Lightning refuses it) and counts for epoch 0."""

    class LogsAtStarts(TinyClassifier):
        def on_fit_start(self):
            self.log("at_fit_start", 3.0)

        def on_train_batch_start(self, batch, batch_idx):
            self.log("bs", float(batch_idx))
            self.log("bs_both", float(batch_idx), on_step=True, on_epoch=True)

    t, logger = fit(tmp_path, LogsAtStarts(), val=False)
    assert logged(logger, "bs") == [(1, 0.0), (2, 1.0), (3, 2.0), (4, 3.0)]
    assert logged(logger, "bs_both_epoch") == [(4, pytest.approx(EPOCH_MEAN))]
    assert t.callback_metrics["at_fit_start"] == 3.0 and t.history["at_fit_start"] == [3.0]
    assert logged(logger, "at_fit_start") == [(4, 3.0)]


def test_on_step_in_an_epoch_level_hook_is_refused(tmp_path):
    class StepInEpochEnd(TinyClassifier):
        def on_train_epoch_end(self, epoch, metrics):
            self.log("x", 1.0, on_step=True)

    with pytest.raises(ValueError, match=r"on_step=True\) in `on_train_epoch_end`"):
        fit(tmp_path, StepInEpochEnd(), val=False)


@pytest.mark.parametrize("hook", ["on_train_batch_end", "on_validation_batch_end", "on_train_epoch_end"])
def test_logging_with_neither_on_step_nor_on_epoch_in_a_hook_is_refused(tmp_path, hook):
    # Lightning 2.6.6 refuses it in every hook ("`self.log(on_step=False, on_epoch=False)` is not useful"),
    # as a step here does; a hook kept it and it reached neither the loggers nor callback_metrics.
    def log_nowhere(self, trainer, pl_module, *args):
        pl_module.log("x", 1.0, on_step=False, on_epoch=False)

    LogsNowhere = type("LogsNowhere", (Callback,), {hook: log_nowhere})

    with pytest.raises(ValueError, match=rf"in `{hook}` with on_step=False and on_epoch=False logs nothing"):
        fit(tmp_path, TinyClassifier(), callbacks=[LogsNowhere()])


def test_a_validation_inside_an_epoch_reports_only_its_own_values(tmp_path):
    t, logger = fit(tmp_path, LogsInHooks(), val_check_interval=2)
    # Each validation: its own loader's mean; the training epoch's sums wait for its end.
    assert logged(logger, "vb_idx") == [(2, pytest.approx(LOADER_MEAN)), (4, pytest.approx(LOADER_MEAN))]
    assert logged(logger, "bi_mean") == [(4, pytest.approx(EPOCH_MEAN))]
    assert t.callback_metrics["bi_mean"] == pytest.approx(EPOCH_MEAN)


def test_the_sanity_check_drops_what_its_hooks_log(tmp_path):
    t, logger = fit(tmp_path, LogsInHooks(), num_sanity_val_steps=1, limit_train_batches=1)
    assert logged(logger, "vb_idx") == [(1, pytest.approx(LOADER_MEAN))]  # (both batches, not the check's)


def test_the_sanity_check_shows_nothing_its_hooks_log_in_the_bar(tmp_path):
    shown_in_training = []

    class ShowsInTheBar(TinyClassifier):
        def on_validation_batch_end(self, outputs, batch, batch_idx, dataloader_idx=0):
            self.log("vb_shown", 100.0 if self.trainer.sanity_checking else 1.0, prog_bar=True)

        def on_train_batch_end(self, outputs, batch, batch_idx):
            shown_in_training.append(self.trainer.progress_bar_metrics.get("vb_shown"))

    t, _ = fit(tmp_path, ShowsInTheBar(), num_sanity_val_steps=1)
    assert shown_in_training == [None] * 4  # (the epoch's validation comes after its last batch)
    assert t.progress_bar_metrics["vb_shown"] == 1.0


def test_a_run_resumed_inside_an_epoch_ends_it_with_the_whole_epochs_mean(tmp_path):
    whole, _ = fit(tmp_path / "whole", LogsInHooks(), val=False)
    first, _ = fit(tmp_path / "first", LogsInHooks(), val=False, max_steps=2)
    assert first.callback_metrics["bi_mean"] == pytest.approx(0.5)  # (the epoch max_steps ended, so far)
    ckpt = first.save_checkpoint(tmp_path / "mid.ckpt")
    logger = RecordingLogger()
    resumed = quiet_trainer(tmp_path / "resumed", logger=logger, log_every_n_steps=1, max_epochs=1)
    resumed.fit(LogsInHooks(), TRAIN, ckpt_path=ckpt)
    assert resumed.callback_metrics["bi_mean"] == pytest.approx(EPOCH_MEAN)
    assert resumed.history["bi_mean"] == pytest.approx(whole.history["bi_mean"])


def test_an_older_checkpoints_waiting_values_still_load(tmp_path):
    first, _ = fit(tmp_path / "first", TinyClassifier(), val=False, max_steps=2)
    ckpt = first.save_checkpoint(tmp_path / "mid.ckpt")
    state_file = ckpt / "trainer_state.json"
    import json

    state = json.loads(state_file.read_text())
    state["waiting_hook_logs"] = {"old": 2.5}  # (the format before: the last value of each name)
    state_file.write_text(json.dumps(state))
    resumed = quiet_trainer(tmp_path / "resumed", max_epochs=1)
    resumed.fit(TinyClassifier(), TRAIN, ckpt_path=ckpt)
    assert resumed.callback_metrics["old"] == 2.5


class ReadsAtEpochEnd(Callback):
    """Reads, in the epoch-end hooks, what the batch hooks logged per epoch (Lightning's callbacks see it)."""

    def __init__(self):
        self.train, self.val = [], []

    def on_train_epoch_end(self, trainer, pl_module):
        self.train.append(trainer.callback_metrics.get("bi_mean"))

    def on_validation_epoch_end(self, trainer, pl_module):
        self.val.append(trainer.callback_metrics.get("vb_idx"))


def test_the_epoch_end_hooks_see_this_epochs_means_of_the_batch_hooks(tmp_path):
    """They saw the previous epoch's (None in the first), so a ReduceLROnPlateau on such a value found no
    metric in epoch 0."""
    reader = ReadsAtEpochEnd()
    seen_by_module = []

    class Module(LogsInHooks):
        def on_train_epoch_end(self, epoch, metrics):
            seen_by_module.append(metrics.get("bi_mean"))

    fit(tmp_path, Module(), callbacks=[reader], max_epochs=2)
    assert reader.train == [pytest.approx(EPOCH_MEAN)] * 2 == seen_by_module
    assert reader.val == [pytest.approx(LOADER_MEAN)] * 2


def test_a_plateau_schedule_can_monitor_a_value_a_hook_logs(tmp_path):
    from audiotrain.train import ReduceLROnPlateau

    class LogsAtEpochEnd(TinyClassifier):
        def on_train_epoch_end(self, epoch, metrics):
            self.log("m", 1.0)  # never improves

    plateau = ReduceLROnPlateau(monitor="m", patience=0, factor=0.5)
    t, _ = fit(tmp_path, LogsAtEpochEnd(), val=False, callbacks=[plateau], max_epochs=3)
    assert t.learning_rate() < 0.1  # (TinyClassifier's 0.1: halved once the plateau is seen)


@pytest.mark.parametrize("hook", ["on_train_end", "on_fit_end", "setup", "on_predict_batch_end"])
def test_logging_where_lightning_refuses_it_is_refused(tmp_path, hook):
    """Such a value was lost, or counted for the next fit's first epoch."""

    def logs(self, *_):
        self.log("z", 100.0)

    module = type("LogsThere", (TinyClassifier,), {hook: lambda self, *a: logs(self, *a)})()
    with pytest.raises(ValueError, match=f"you can't self.log\\(\\) inside `{hook}`"):
        t, _ = fit(tmp_path, module)
        if hook == "on_predict_batch_end":
            t.predict(module, VAL)


class LogsWhenSaved(Callback):
    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        pl_module.log("saved_cb", 1.0)


class LogsWhenItsStateIsSaved(TinyClassifier):
    def on_save_checkpoint(self, checkpoint):
        self.log("saved", 1.0)


@pytest.mark.parametrize("where", ["module", "callback"])
def test_logging_in_on_save_checkpoint_is_refused_as_in_lightning(tmp_path, where):
    """`self.log` in the module's or a callback's `on_save_checkpoint` was taken as a value of the hook that
    saved (ModelCheckpoint's epoch end): a number of one save, not of the epoch, in callback_metrics;
    Lightning's `_FxValidator` refuses it there (`"on_save_checkpoint": None`)."""
    module = LogsWhenItsStateIsSaved() if where == "module" else TinyClassifier()
    callbacks = [LogsWhenSaved()] if where == "callback" else []
    with pytest.raises(ValueError, match="you can't self.log\\(\\) inside `on_save_checkpoint`"):
        fit(tmp_path, module, callbacks=callbacks, enable_checkpointing=True)


class LogsWhenLoaded(Callback):
    def on_load_checkpoint(self, trainer, pl_module, checkpoint):
        pl_module.log("loaded_cb", 1.0)


class LogsWhenItsStateIsLoaded(TinyClassifier):
    def on_load_checkpoint(self, checkpoint):
        self.log("loaded", 1.0)


@pytest.mark.parametrize("where", ["module", "callback"])
def test_logging_in_on_load_checkpoint_is_refused_naming_the_hook_not_the_checkpoint(tmp_path, where):
    """`self.log` in `on_load_checkpoint` (refused by Lightning's `_FxValidator`) stopped a resume with
    "CheckpointError: .../trainer_state.json holds a value this audiotrain cannot restore: ... you can't
    self.log() outside the hooks the Trainer runs": the user's call blamed on the checkpoint's file."""
    first, _ = fit(tmp_path, TinyClassifier(), enable_checkpointing=True)
    last = first.checkpoint_callback.last_model_path
    module = LogsWhenItsStateIsLoaded() if where == "module" else TinyClassifier()
    callbacks = [LogsWhenLoaded()] if where == "callback" else []
    with pytest.raises(ValueError, match="you can't self.log\\(\\) inside `on_load_checkpoint`") as caught:
        t = quiet_trainer(tmp_path, max_epochs=2, callbacks=callbacks, enable_checkpointing=True)
        t.fit(module, TRAIN, VAL, ckpt_path=last)
    assert "cannot restore" not in str(caught.value)


def test_a_step_value_a_monitoring_callback_logs_at_an_epochs_last_step_reaches_the_loggers(tmp_path):
    """ModelCheckpoint (and EarlyStopping, ReduceLROnPlateau) run their batch-end hook after the step's hook
    values went to the loggers: what one logs there waits for the next logging step, also past the end of
    the epoch, whose end must not drop it."""
    from audiotrain.train.callbacks import ModelCheckpoint

    class MarksAStep(ModelCheckpoint):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
            if trainer.global_step == 4:  # the first epoch's last step, a logging step
                pl_module.log("mark", 1.0)

    class LogsBatchIdx(TinyClassifier):
        def on_train_batch_end(self, outputs, batch, batch_idx):
            self.log("x", float(batch_idx))

    logger = RecordingLogger()
    t = quiet_trainer(
        tmp_path,
        max_epochs=2,
        logger=logger,
        log_every_n_steps=2,
        enable_checkpointing=True,
        callbacks=[MarksAStep(dirpath=tmp_path / "ck")],
    )
    t.fit(LogsBatchIdx(), TRAIN)  # 4 steps an epoch
    assert logged(logger, "x") == [(2, 1.0), (4, 3.0), (6, 1.0), (8, 3.0)]
    assert logged(logger, "mark") == [(6, 1.0)]


def test_a_fresh_fit_does_not_take_what_an_earlier_fit_logged(tmp_path):
    """A fit stopped inside an epoch keeps its epoch's sums for a resume; a new fit (no ckpt_path) of the
    same module added them to its own first epoch."""

    class Logs(TinyClassifier):
        value = 100.0

        def on_train_batch_end(self, outputs, batch, batch_idx):
            self.log("z", self.value, on_step=False, on_epoch=True)

    module = Logs()
    fit(tmp_path / "a", module, val=False, max_steps=2)
    module.value = 1.0
    t, _ = fit(tmp_path / "b", module, val=False)
    assert t.history["z"] == [1.0]


def test_one_name_in_two_hooks_is_the_later_hooks_value_as_in_lightning(tmp_path):
    """It was one weighted mean of both, a number nobody logged."""

    class Twice(TinyClassifier):
        def on_train_batch_end(self, outputs, batch, batch_idx):
            self.log("x", float(batch_idx), on_step=False, on_epoch=True)

        def on_train_epoch_end(self, epoch, metrics):
            self.log("x", 100.0)

    t, logger = fit(tmp_path, Twice(), val=False)
    assert t.callback_metrics["x"] == 100.0 and t.history["x"] == [100.0]
    assert logged(logger, "x") == [(4, 100.0)]


def test_validate_returns_the_logged_metrics_not_those_logged_with_logger_false(tmp_path):
    class Hidden(TinyClassifier):
        def validation_step(self, batch, batch_idx):
            loss, metrics = self.compute_loss(batch)
            self.log("step_hidden", loss, logger=False)
            return loss, metrics

        def on_validation_batch_end(self, outputs, batch, batch_idx, dataloader_idx=0):
            self.log("hook_hidden", 1.0, logger=False)

    t = quiet_trainer(tmp_path)
    (scores,) = t.validate(Hidden(), VAL)
    assert "val_loss" in scores and "step_hidden" not in scores and "hook_hidden" not in scores
    assert "hook_hidden" in t.callback_metrics and "step_hidden" in t.callback_metrics


def test_logger_false_holds_for_what_the_default_validation_step_logs(tmp_path):
    """Without a `validation_step` the training code runs, and what it logs is reported as `val_<name>`:
    its logger=False was looked up under that name, missed, and `val_hidden` reached the loggers and
    `validate`'s return value."""

    class HiddenInTheTrainingCode(TinyClassifier):
        def compute_loss(self, batch):
            loss, metrics = super().compute_loss(batch)
            self.log("hidden", mx.array(1.0), logger=False)
            return loss, metrics

    t, logger = fit(tmp_path, HiddenInTheTrainingCode())
    assert "val_loss" in t.callback_metrics and "val_hidden" in t.callback_metrics
    assert logged(logger, "val_loss") and not logged(logger, "val_hidden")
    logger = RecordingLogger()
    (scores,) = quiet_trainer(tmp_path / "validate", logger=logger).validate(HiddenInTheTrainingCode(), VAL)
    assert "val_loss" in scores and "val_hidden" not in scores
    assert not logged(logger, "val_hidden")


def test_a_value_logged_before_the_sanity_check_outlives_it(tmp_path):
    """The sanity check drops what its own hooks log, not what `on_fit_start` logged before it: that
    waits for the next logging point."""

    class LogsAtFitStart(TinyClassifier):
        def on_fit_start(self):
            self.log("fit_started", 1.0)

    t, logger = fit(tmp_path, LogsAtFitStart(), num_sanity_val_steps=2)
    assert t.callback_metrics["fit_started"] == 1.0 and logged(logger, "fit_started")


def test_a_value_logged_in_on_validation_end_is_reported_but_not_the_sanity_checks(tmp_path):
    """What `on_validation_end` logs counts for its validation: loggers, callback_metrics and `validate`'s
    return value; what it logs in the sanity check is dropped as everything the check logs."""

    class LogsAtTheEnd(TinyClassifier):
        def on_validation_end(self, *args):
            self.log("end_score", 1.0 if self.trainer.sanity_checking else 2.0)

    t, logger = fit(tmp_path, LogsAtTheEnd(), num_sanity_val_steps=1)
    assert logged(logger, "end_score") == [(4, 2.0)]
    assert t.callback_metrics["end_score"] == 2.0 and t.history["end_score"] == [2.0]
    (scores,) = quiet_trainer(tmp_path / "validate").validate(LogsAtTheEnd(), VAL)
    assert scores["end_score"] == 2.0


def test_what_the_hooks_of_a_validation_stopped_by_ctrl_c_logged_is_not_in_the_next_one(tmp_path):
    """A Ctrl-C stops a validation inside fit after its batch 0: what its hooks logged so far is dropped
    when the module validates again, not averaged into that validation."""
    import signal

    class CtrlCAtFirstBatch(Callback):
        def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if batch_idx == 0:
                signal.raise_signal(signal.SIGINT)  # the Trainer's handler: stop after this batch

    module, val = LogsInHooks(), make_batches(48, 16, seed=1)
    stopped = quiet_trainer(tmp_path, max_epochs=1, num_sanity_val_steps=0, callbacks=[CtrlCAtFirstBatch()])
    stopped.fit(module, TRAIN, val)
    assert stopped.interrupted
    (scores,) = quiet_trainer(tmp_path / "again").validate(module, val)
    assert scores["vb_idx"] == pytest.approx((0 + 1 + 2) / 3)  # not (0 + 0 + 1 + 2) / 4


def test_a_value_a_callback_logs_at_the_epoch_end_is_read_by_the_module_in_that_hook(tmp_path):
    class LogsFirst(Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            pl_module.log("ce", 0.5)

    seen = []

    class Reads(TinyClassifier):
        def on_train_epoch_end(self, epoch, metrics):
            seen.append(self.trainer.callback_metrics.get("ce"))

    fit(tmp_path, Reads(), val=False, callbacks=[LogsFirst()], max_epochs=2)
    assert seen == [0.5, 0.5]


def test_a_value_a_callback_logs_at_the_validation_epoch_end_is_read_by_the_next_callback(tmp_path):
    """As at the training epoch's end: the callbacks after one in on_validation_epoch_end see its value."""

    class LogsFirst(Callback):
        def on_validation_epoch_end(self, trainer, pl_module):
            pl_module.log("cv", 0.5 + trainer.current_epoch)

    seen = []

    class ReadsAfter(Callback):
        def on_validation_epoch_end(self, trainer, pl_module):
            seen.append(trainer.callback_metrics.get("cv"))

    fit(tmp_path, TinyClassifier(), callbacks=[LogsFirst(), ReadsAfter()], max_epochs=2)
    assert seen == [0.5, 1.5]


def test_a_sized_stream_with_a_fractional_interval_validates_once_per_check(tmp_path):
    """The stream's last batch validated, and the epoch's end again: EarlyStopping counted two checks."""
    from audiotrain import DataLoader, IterableDataset

    class Stream(IterableDataset):
        def __len__(self):
            return 16

        def __iter__(self):
            yield from (TRAIN[0][0][i % 4] for i in range(16))

    validated = []

    class Counts(Callback):
        def on_validation_end(self, trainer, pl_module):
            validated.append(trainer.global_step)

    class Unlabelled(TinyClassifier):
        def compute_loss(self, batch):
            return super().compute_loss((batch, mx.zeros(batch.shape[0], mx.int32)))

    t = quiet_trainer(tmp_path, max_epochs=2, val_check_interval=0.5, callbacks=[Counts()])
    t.fit(Unlabelled(), DataLoader(Stream(), batch_size=4), [VAL[0][0]])
    assert validated == [2, 4, 6, 8]


def test_a_hooks_value_logged_per_step_and_per_epoch_has_one_history_column_as_a_steps_has(
    tmp_path, tmp_path_factory
):
    """A value a batch hook (or a callback) logged with on_step=True, on_epoch=True had two columns in
    `trainer.history` and the exported history.json, `cb_bi` and `cb_bi_epoch` with the same numbers, where
    the same value logged in training_step has one (`name`): the loggers' `_epoch` name leaked into it."""

    class StepLogsBothWays(TinyClassifier):
        def training_step(self, batch, batch_idx):
            loss, _ = self.compute_loss(batch)
            self.log("step_bi", batch_idx.astype(mx.float32), on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            return self.compute_loss(batch)

    t, _ = fit(tmp_path, StepLogsBothWays(), callbacks=[LogsBothWays()])
    assert "step_bi" in t.history and "step_bi_epoch" not in t.history
    assert t.history["cb_bi"] == [pytest.approx(EPOCH_MEAN)]
    assert "cb_bi_epoch" not in t.history
    assert t.callback_metrics["cb_bi_epoch"] == pytest.approx(EPOCH_MEAN)  # (callback_metrics keeps both)
    path = tmp_path_factory.mktemp("export") / "history.json"
    t.export_history(path)
    assert "cb_bi_epoch" not in json.loads(path.read_text())


class LogsInItsStep(TinyClassifier):
    def training_step(self, batch, batch_idx):
        loss, _ = self.compute_loss(batch)
        self.log("train_ce", loss)
        return loss


class LogsInInit(TinyClassifier):
    def __init__(self):
        super().__init__()
        self.log("built", 1.0)


def test_a_step_called_without_a_trainer_warns_and_returns_as_in_lightning():
    """A unit test of a step that logs (`module.training_step(batch, 0)`, no Trainer) was refused:
    "LogRefused: ...you can't self.log() outside the hooks the Trainer runs, as in Lightning". Lightning
    2.6.6 warns "You are trying to `self.log()` but the `self.trainer` reference is not registered on the
    model yet"
    and goes on ("not an error to support testing the `*_step` methods without a `Trainer` reference")."""
    with pytest.warns(UserWarning, match="reference is not registered on the model yet") as caught:
        loss = LogsInItsStep().training_step(TRAIN[0], 0)
    assert loss.shape == () and mx.isfinite(loss).item()
    assert caught[0].filename == __file__  # (the warning points at the user's self.log line)


def test_logging_in_init_warns_and_the_fit_trains_as_in_lightning(tmp_path):
    """`self.log` in `__init__`: Lightning 2.6.6 warns (as above), logs nothing and trains all 4 batches
    (global_step 4); here it raised LogRefused before the module existed."""
    with pytest.warns(UserWarning, match="reference is not registered on the model yet"):
        module = LogsInInit()
    t, logger = fit(tmp_path, module, val=False)
    assert t.global_step == 4
    assert "built" not in t.callback_metrics and "built" not in logger.keys()


@pytest.mark.parametrize("compile", [True, False])
def test_logging_in_predict_step_is_refused_as_in_lightning(tmp_path, compile):
    """`self.log` in `predict_step` was taken and dropped without a word (predict reports no metrics).
    Lightning 2.6.6 raises "MisconfigurationException: You are trying to `self.log()` but the loop's result
    collection is not registered yet. This is most likely because you are trying to log in a `predict` hook,
    but it doesn't support logging"."""

    class LogsWhilePredicting(TinyClassifier):
        def predict_step(self, batch, batch_idx):
            self.log("p", 1.0)
            return self(batch[0])

    module = LogsWhilePredicting()
    with pytest.raises(
        ValueError, match=r"predict_step: self.log\('p', ...\): you can't self.log\(\) in predict"
    ):
        quiet_trainer(tmp_path, compile=compile).predict(module, VAL)


def test_a_number_as_text_logged_in_a_hook_is_refused_as_in_lightning(tmp_path):
    """`self.log("m", "1.5")` in a hook logged 1.5 (float() reads text), where a step refuses a str.
    Lightning 2.6.6 raises "ValueError: `self.log(m, 1.5)` was called, but `str` values cannot be logged"."""

    class LogsText(TinyClassifier):
        def on_train_epoch_end(self, *args):
            self.log("m", "1.5")

    with pytest.raises(
        ValueError, match=r"LogsText.log\('m', ...\): expected a number .*str values cannot be"
    ):
        fit(tmp_path, LogsText(), val=False)


class LogsADictInItsStep(TinyClassifier):
    def training_step(self, batch, batch_idx):
        loss, _ = self.compute_loss(batch)
        self.log_dict({"train_ce": loss})
        return loss


def test_log_dict_in_a_step_called_without_a_trainer_warns_at_the_users_line():
    """`self.log_dict` in a step called without a Trainer: the warning named audiotrain/train/module.py (the
    line of log_dict that calls self.log) instead of the user's log_dict line."""
    with pytest.warns(UserWarning, match="reference is not registered on the model yet") as caught:
        LogsADictInItsStep().training_step(TRAIN[0], 0)
    assert caught[0].filename == __file__


@pytest.mark.parametrize("hook", ["on_train_batch_end", "on_train_epoch_end", "on_validation_epoch_end"])
def test_one_name_logged_twice_in_a_hook_with_different_options_is_refused(tmp_path, hook):
    """In a hook, self.log('a', 1.0, prog_bar=True) then self.log('a', 2.0) silently kept the later call's
    options (the bar lost it); refused only in a step. Lightning 2.6.6 raises "You called `self.log(a, ...)`
    twice in `on_train_batch_end` with different arguments. This is not allowed" (in on_train_epoch_end
    too); logged twice the same way, the later value (a batch hook's) or the mean (an epoch hook's) counts,
    as before."""

    def logs(self, *args):
        self.log("a", 1.0, prog_bar=True)
        self.log("a", 2.0)

    refused = type("LogsTwice", (TinyClassifier,), {hook: logs})
    with pytest.raises(
        ValueError, match=rf"LogsTwice.log\('a', ...\) was called twice in `{hook}` with differ"
    ):
        quiet_trainer(tmp_path, max_steps=1).fit(refused(), make_batches(32), make_batches(16))

    def logs_alike(self, *args):
        self.log("a", 1.0)
        self.log("a", 2.0)

    trainer = quiet_trainer(tmp_path / "alike", max_steps=1)
    trainer.fit(
        type("LogsAlike", (TinyClassifier,), {hook: logs_alike})(), make_batches(32), make_batches(16)
    )
    assert trainer.callback_metrics["a"] == (2.0 if hook == "on_train_batch_end" else 1.5)


class LogsNarrowValuesInAHook(TinyClassifier):
    def on_validation_batch_end(self, outputs, batch, batch_idx, dataloader_idx=0):
        self.log("hbf", mx.array(1.0078125, mx.bfloat16), batch_size=1)
        self.log("hi8", mx.array(100, mx.int8), batch_size=1)


def test_a_hooks_mean_of_narrow_values_is_summed_in_float32(tmp_path):
    """A hook's loader mean of 300 bfloat16 values of 1.0078125 was 1.28 (their sum, kept in bfloat16, stopped
    growing by 1.0078 past 256; int8 overflows). Lightning 2.6.6 sums in float32 at least (measured: 1.0078
    and 100.0 for these 300 batches)."""
    t = quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=1)
    t.fit(LogsNarrowValuesInAHook(), TRAIN, make_batches(300, 1, seed=1))
    assert t.callback_metrics["hbf"] == pytest.approx(1.0078125)
    assert t.callback_metrics["hi8"] == pytest.approx(100.0)


class _Loader:
    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


class LogsUnindexedInAnEvaluationHook(TinyClassifier):
    def __init__(self, every_loader):
        super().__init__()
        self.every_loader = every_loader

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        return self.compute_loss(batch)

    def on_validation_batch_end(self, outputs, batch, batch_idx, dataloader_idx=0):
        if self.every_loader or dataloader_idx == 1:
            self.log("x", float(dataloader_idx), add_dataloader_idx=False)


def test_a_hooks_unindexed_name_logged_from_two_loaders_is_refused_as_in_lightning(tmp_path):
    """Logged from both loaders with add_dataloader_idx=False, it was one mean of both (0.5), reported as
    each loader's. Lightning 2.6.6 raises "You called `self.log(x, ...)` twice in `on_validation_batch_end`
    with different arguments"; from one loader it is that loader's value, in every validation."""
    loaders = [_Loader(make_batches(8, 4)), _Loader(make_batches(8, 4, seed=2))]
    with pytest.raises(ValueError, match=r"add_dataloader_idx=False\) in `on_validation_batch_end` was call"):
        quiet_trainer(tmp_path, max_epochs=1).fit(LogsUnindexedInAnEvaluationHook(True), TRAIN, loaders)
    t = quiet_trainer(tmp_path, max_epochs=2)
    t.fit(LogsUnindexedInAnEvaluationHook(False), TRAIN, loaders)
    assert t.callback_metrics["x"] == 1.0
