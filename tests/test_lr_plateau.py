"""`ReduceLROnPlateau`: torch's plateau schedule as a callback, exact across a resume."""

from audiotrain import TrainModule
from audiotrain.train.callback import Callback
from audiotrain.train.callbacks import ModelCheckpoint, ReduceLROnPlateau
from audiotrain.train.schedulers import WarmupCosineScheduler

import mlx.core as mx
import mlx.optimizers as optim
import pytest
from tasks import TinyClassifier, make_batches, quiet_trainer


class Descends(TrainModule):
    """loss = w: every SGD update lowers w by exactly the learning rate, so w tells which rates ran."""

    def __init__(self):
        super().__init__()
        self.w = mx.array([0.0])

    def compute_loss(self, batch):
        return mx.sum(self.w) + 0.0 * mx.mean(batch), {}

    def configure_optimizers(self):
        return optim.SGD(learning_rate=1.0)


class Rates(Callback):
    def __init__(self):
        self.seen = []

    def on_train_epoch_start(self, trainer, module):
        self.seen.append(trainer.learning_rate())


def _fit(root, plateau, max_epochs, ckpt_path=None, checkpoints=False):
    rates = Rates()
    callbacks = [plateau, rates] + ([ModelCheckpoint(every_n_epochs=1, save_top_k=-1)] if checkpoints else [])
    trainer = quiet_trainer(
        root, max_epochs=max_epochs, callbacks=callbacks, enable_checkpointing=checkpoints
    )
    module = Descends()
    batches = [mx.zeros((2,))] * 4  # 4 updates an epoch
    trainer.fit(module, batches, batches, ckpt_path=ckpt_path)
    return module, rates.seen


def test_the_rate_drops_by_factor_after_patience_checks_without_improvement(tmp_path):
    # val_loss = w falls every epoch, so with mode="max" no epoch after the first improves on it.
    module, rates = _fit(tmp_path, ReduceLROnPlateau(mode="max", factor=0.5, patience=0), max_epochs=4)
    assert rates == [1.0, 1.0, 0.5, 0.25]
    assert module.w.item() == pytest.approx(-4 * (1.0 + 1.0 + 0.5 + 0.25))  # the compiled update used them


def test_improving_keeps_the_rate_and_cooldown_and_min_lr_bound_the_drops(tmp_path):
    _, rates = _fit(tmp_path / "a", ReduceLROnPlateau(mode="min", factor=0.5, patience=0), max_epochs=3)
    assert rates == [1.0, 1.0, 1.0]
    plateau = ReduceLROnPlateau(mode="max", factor=0.5, patience=0, cooldown=1, min_lr=0.4)
    _, rates = _fit(tmp_path / "b", plateau, max_epochs=6)
    assert rates == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.4, 0.4])


class LogsAtTrainEpochEnd(Descends):
    """Logs its metric in its own on_train_epoch_end, as Lightning modules often do."""

    def on_train_epoch_end(self):
        self.log("epoch_w", self.w[0])


def test_a_metric_the_module_logs_at_the_training_epochs_end_is_seen_that_epoch(tmp_path):
    """As Lightning's monitoring callbacks, ReduceLROnPlateau checks after the module's on_train_epoch_end."""
    rates = Rates()
    plateau = ReduceLROnPlateau(monitor="epoch_w", mode="max", factor=0.5, patience=0)
    trainer = quiet_trainer(tmp_path, max_epochs=4, callbacks=[plateau, rates])
    trainer.fit(LogsAtTrainEpochEnd(), [mx.zeros((2,))] * 4)  # (no validation: checked at epoch ends)
    assert rates.seen == [1.0, 1.0, 0.5, 0.25]


@pytest.mark.filterwarnings(
    "ignore:The checkpoint resumed holds the state of callbacks"
)  # (its ModelCheckpoint)
def test_a_resumed_fit_reduces_where_the_uninterrupted_one_did(tmp_path):
    def plateau():
        return ReduceLROnPlateau(mode="max", factor=0.5, patience=1)

    straight, straight_rates = _fit(tmp_path / "a", plateau(), max_epochs=6, checkpoints=True)
    assert straight_rates == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25]
    for epoch in (1, 2):  # its count of bad checks, then its reduced rate, come back from the checkpoint
        saved = next((tmp_path / "a" / "checkpoints").glob(f"epoch={epoch}-*"))
        resumed, rates = _fit(tmp_path / f"b{epoch}", plateau(), 6, ckpt_path=str(saved))
        assert rates == straight_rates[epoch + 1 :]
        assert resumed.w.item() == straight.w.item()


@pytest.mark.filterwarnings(
    "ignore:The checkpoint resumed holds the state of callbacks"
)  # (its ModelCheckpoint)
def test_a_fit_resumed_in_a_cooldown_waits_out_the_rest_of_it(tmp_path):
    def plateau():
        return ReduceLROnPlateau(mode="max", factor=0.5, patience=0, cooldown=2)

    straight, straight_rates = _fit(tmp_path / "a", plateau(), max_epochs=6, checkpoints=True)
    assert straight_rates == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25]  # reduced after epoch 1, cooled down 2, 3
    for epoch in (1, 2):  # two checks of its cooldown left, then one
        saved = next((tmp_path / "a" / "checkpoints").glob(f"epoch={epoch}-*"))
        resumed, rates = _fit(tmp_path / f"b{epoch}", plateau(), 6, ckpt_path=str(saved))
        assert rates == straight_rates[epoch + 1 :]
        assert resumed.w.item() == straight.w.item()


class ScriptedLoss(Descends):
    """Logs `val_m`: the next value of `script` at each validation."""

    def __init__(self, script):
        super().__init__()
        self.script = iter(script)

    def on_validation_epoch_end(self):
        self.log("val_m", next(self.script))


@pytest.mark.parametrize(
    "mode, threshold_mode, script",
    [
        ("min", "abs", [1.0, 0.95, 0.85, 0.85]),
        ("min", "rel", [1.0, 0.95, 0.89, 0.89]),
        ("max", "abs", [1.0, 1.05, 1.15, 1.15]),
        ("max", "rel", [1.0, 1.05, 1.11, 1.11]),
        # From a best of 10 "rel" asks for 10% (below 9.0, above 11.0), where "abs" would take 9.5 and 10.5.
        ("min", "rel", [10.0, 9.5, 8.9, 8.9]),
        ("max", "rel", [10.0, 10.5, 11.1, 11.1]),
    ],
)
def test_only_a_value_beating_the_best_by_more_than_threshold_improves(
    tmp_path, mode, threshold_mode, script
):
    # As torch's: with threshold 0.1 the best 1.0 is beaten in "min" mode by a value below 0.9 (1.0 - 0.1 or
    # 1.0 * 0.9), in "max" mode by one above 1.1, the best 10.0 ("rel") below 9.0 / above 11.0: the second
    # value is a bad check (the rate is halved at once, patience 0), the third the new best.
    plateau = ReduceLROnPlateau(
        "val_m", mode=mode, factor=0.5, patience=0, threshold=0.1, threshold_mode=threshold_mode
    )
    rates = Rates()
    trainer = quiet_trainer(tmp_path, max_epochs=4, callbacks=[plateau, rates])
    batches = [mx.zeros((2,))] * 2
    trainer.fit(ScriptedLoss(script), batches, batches)
    assert rates.seen == [1.0, 1.0, 0.5, 0.5]
    assert plateau.best == script[2]


def test_a_scheduled_learning_rate_is_refused_at_fit_start(tmp_path):
    class Scheduled(TinyClassifier):
        def configure_optimizers(self):
            return optim.SGD(learning_rate=WarmupCosineScheduler(0.1, 2, 10))

    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[ReduceLROnPlateau()])
    with pytest.raises(ValueError, match="ReduceLROnPlateau: the optimizer's learning rate is a schedule"):
        trainer.fit(Scheduled(), make_batches(32), make_batches(16))


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"factor": 1.5}, "factor"),
        ({"patience": -1}, "patience"),
        ({"mode": "lowest"}, "mode"),
        ({"threshold_mode": "relative"}, "threshold_mode"),
        ({"min_lr": -0.1}, "min_lr"),
    ],
)
def test_wrong_arguments_are_refused_naming_them(kwargs, field):
    with pytest.raises(ValueError, match=f"ReduceLROnPlateau: {field} must be"):
        ReduceLROnPlateau(**kwargs)


def test_a_metric_object_given_to_log_says_to_log_its_computed_value(tmp_path):
    class Accuracy:  # torchmetrics' shape: update / compute / reset
        def compute(self):
            return 0.5

    class LogsObject(TinyClassifier):
        def on_validation_epoch_end(self):
            self.log("val_acc", Accuracy())

    trainer = quiet_trainer(tmp_path, max_epochs=1)
    with pytest.raises(
        ValueError, match=r"a metric object: log its value, self.log\(name, metric.compute\(\)\)"
    ):
        trainer.fit(LogsObject(), make_batches(32), make_batches(16))


def test_each_parameter_group_of_a_multi_optimizer_is_lowered_with_its_own_floor(tmp_path):
    class TwoGroups(TinyClassifier):
        def configure_optimizers(self):
            groups = [optim.AdamW(learning_rate=1e-2), optim.AdamW(learning_rate=1e-3)]
            return optim.MultiOptimizer(groups, [lambda path, _: path.startswith("fc1.")])

    plateau = ReduceLROnPlateau(mode="max", monitor="train_loss", factor=0.5, patience=0, min_lr=[0.0, 1e-3])
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=[plateau])
    trainer.fit(
        TwoGroups(), make_batches(32)
    )  # the loss falls: with "max" every epoch after the first is bad
    rates = [group.learning_rate.item() for group in trainer.optimizer.optimizers]
    assert rates == pytest.approx([2.5e-3, 1e-3])


def test_a_reduction_smaller_than_eps_is_skipped(tmp_path):
    # As torch's: the rate is halved 1.0 -> 0.5, then the floor 0.45 would move it by 0.05 only, below eps.
    plateau = ReduceLROnPlateau(mode="max", factor=0.5, patience=0, min_lr=0.45, eps=0.1)
    _, rates = _fit(tmp_path, plateau, max_epochs=4)
    assert rates == [1.0, 1.0, 0.5, 0.5]


def test_a_nan_first_value_never_becomes_the_plateaus_best(tmp_path):
    # A first validation of a diverged start: a bad check, as torch's (NaN < inf is false), not a best that
    # no later value could beat, which would lower the rate at every patience + 1 checks of a falling loss.
    plateau = ReduceLROnPlateau("val_m", factor=0.5, patience=1)
    rates = Rates()
    trainer = quiet_trainer(tmp_path, max_epochs=5, callbacks=[plateau, rates])
    batches = [mx.zeros((2,))] * 2
    trainer.fit(ScriptedLoss([float("nan"), 1.0, 0.9, 0.8, 0.7]), batches, batches)
    assert rates.seen == [1.0] * 5
    assert plateau.best == pytest.approx(0.7)


def test_a_plateau_reused_in_a_new_trainer_starts_a_new_run(tmp_path):
    # A notebook cell run again with the callback object an earlier cell made: the earlier run's best (0.1)
    # and bad checks are not this run's, whose falling values each improve.
    plateau = ReduceLROnPlateau("val_m", factor=0.5, patience=1)
    batches = [mx.zeros((2,))] * 2
    first = quiet_trainer(tmp_path / "a", max_epochs=3, callbacks=[plateau])
    first.fit(ScriptedLoss([0.1, 0.2, 0.3]), batches, batches)
    assert (plateau.best, plateau.num_bad_epochs) == (pytest.approx(0.1), 0)  # reduced after 0.3
    rates = Rates()
    second = quiet_trainer(tmp_path / "b", max_epochs=4, callbacks=[plateau, rates])
    second.fit(ScriptedLoss([1.0, 0.9, 0.8, 0.7]), batches, batches)
    assert rates.seen == [1.0] * 4
    assert plateau.best == pytest.approx(0.7)


def test_the_sanity_check_validation_is_no_plateau_check(tmp_path):
    # Validating inside epochs, the plateau checks after each validation, but not after the sanity check's,
    # as in Lightning: that one keeps no metric (a check there would fail), and its 0.5 as the best would make
    # every later value a bad check.
    plateau = ReduceLROnPlateau("val_m", factor=0.5, patience=0)
    rates = Rates()
    trainer = quiet_trainer(
        tmp_path, max_epochs=2, callbacks=[plateau, rates], num_sanity_val_steps=1, val_check_interval=0.5
    )
    batches = [mx.zeros((2,))] * 4
    trainer.fit(ScriptedLoss([0.5, 1.0, 0.9, 0.8, 0.7]), batches, batches)
    assert rates.seen == [1.0, 1.0]
    assert trainer.learning_rate() == 1.0
    assert plateau.best == pytest.approx(0.7)


def test_a_min_lr_list_of_another_length_than_the_groups_is_refused_before_training(tmp_path):
    # One parameter group, two floors: refused as fit starts, not by a bare zip() error at the first
    # reduction, epochs later.
    trainer = quiet_trainer(
        tmp_path, max_epochs=3, callbacks=[ReduceLROnPlateau(mode="max", patience=0, min_lr=[0.1, 0.2])]
    )
    module = Descends()
    batches = [mx.zeros((2,))] * 4
    with pytest.raises(
        ValueError, match="ReduceLROnPlateau: min_lr has 2 values, the optimizer 1 parameter groups"
    ):
        trainer.fit(module, batches, batches)
    assert module.w.item() == 0.0  # no update ran


def test_fast_dev_run_leaves_the_plateau_out(tmp_path):
    # As EarlyStopping under fast_dev_run: its one dev epoch is no plateau check (nor the plateau's state).
    plateau = ReduceLROnPlateau("val_m", mode="max", patience=0)
    trainer = quiet_trainer(tmp_path, callbacks=[plateau], fast_dev_run=True)
    batches = [mx.zeros((2,))] * 2
    trainer.fit(ScriptedLoss([0.5]), batches, batches)
    assert (plateau.best, plateau.num_bad_epochs) == (None, 0)


class PlateauInConfigureOptimizers(Descends):
    """Lightning's way: the plateau scheduler returned by configure_optimizers, with its "monitor"."""

    def __init__(self, **scheduler):
        super().__init__()
        self.scheduler = scheduler

    def configure_optimizers(self):
        plateau = ReduceLROnPlateau(mode="max", factor=0.5, patience=0)
        return {
            "optimizer": optim.SGD(learning_rate=1.0),
            "lr_scheduler": {"scheduler": plateau, **self.scheduler},
        }


def _fit_lightning_way(root, max_epochs, ckpt_path=None, **scheduler):
    rates = Rates()
    trainer = quiet_trainer(
        root,
        max_epochs=max_epochs,
        callbacks=[rates, ModelCheckpoint(every_n_epochs=1, save_top_k=-1, save_last=True)],
        val_check_interval=0.5,  # (a validation in the middle of each epoch and one at its end)
        enable_checkpointing=True,
    )
    module = PlateauInConfigureOptimizers(**scheduler)
    batches = [mx.zeros((2,))] * 4
    trainer.fit(module, batches, batches, ckpt_path=ckpt_path)
    return trainer, module, rates.seen


def test_a_plateau_lr_scheduler_with_a_monitor_steps_at_epoch_ends_as_in_lightning(tmp_path):
    # Before: {"scheduler": ReduceLROnPlateau(...), "monitor": "val_loss", "interval": "epoch"} was refused
    # ("'monitor': 'val_loss' is for a metric-driven schedule"), and the callback that error pointed to
    # checks after every validation: with val_check_interval=0.5 its patience ran out twice as fast.
    _, module, rates = _fit_lightning_way(
        tmp_path / "a", 4, monitor="val_loss", interval="epoch", frequency=1
    )
    assert rates == [1.0, 1.0, 0.5, 0.25]
    assert module.w.item() == pytest.approx(-4 * (1.0 + 1.0 + 0.5 + 0.25))
    _, _, rates = _fit_lightning_way(tmp_path / "b", 5, monitor="val_loss", frequency=2)  # epochs 1 and 3
    assert rates == [1.0, 1.0, 1.0, 1.0, 0.5]


def test_a_plateau_lr_scheduler_resumes_where_the_uninterrupted_run_reduced(tmp_path):
    _, _, straight = _fit_lightning_way(tmp_path / "straight", 4, monitor="val_loss")
    trainer, _, _ = _fit_lightning_way(tmp_path / "run", 2, monitor="val_loss")
    _, _, rates = _fit_lightning_way(
        tmp_path / "run", 4, ckpt_path=trainer.checkpoint_callback.last_model_path, monitor="val_loss"
    )
    assert rates == straight[2:]


@pytest.mark.parametrize(
    "scheduler, error",
    [
        ({}, r"needs the metric it steps on.*'monitor': 'val_loss'"),
        ({"monitor": "val_loss", "interval": "step"}, r"'interval': 'step'.*Trainer\(callbacks="),
    ],
)
def test_a_plateau_lr_scheduler_lightning_would_refuse_too_is_refused_naming_why(tmp_path, scheduler, error):
    with pytest.raises(ValueError, match=error):
        _fit_lightning_way(tmp_path, 1, **scheduler)


def test_a_plateau_lr_scheduler_beside_a_plateau_callback_is_refused(tmp_path):
    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[ReduceLROnPlateau()])
    with pytest.raises(ValueError, match="each would lower the rate"):
        trainer.fit(PlateauInConfigureOptimizers(monitor="val_loss"), [mx.zeros((2,))] * 4, [mx.zeros((2,))])


def test_a_plateau_lr_scheduler_not_strict_skips_a_check_whose_metric_is_missing(tmp_path):
    with pytest.warns(RuntimeWarning, match="'never_logged', which is not available: skipping"):
        _, _, rates = _fit_lightning_way(tmp_path, 2, monitor="never_logged", strict=False)
    assert rates == [1.0, 1.0]


def test_a_plateau_lr_scheduler_is_not_checked_at_the_end_of_an_epoch_max_steps_cut_short(tmp_path):
    """Lightning 2.6.6 steps a ReduceLROnPlateau lr_scheduler only at the end of an epoch whose batches all
    ran: with 2 batches an epoch and patience=0 on a metric that never improves, max_steps=3 left the rate at
    0.1 (epoch 0's check sets the best; epoch 1, cut short, has none), and with 'strict': True a monitor
    never logged did not raise there (max_steps=1). Here the cut epoch's end was a check: the rate was
    halved, and the missing metric raised."""
    batches = [mx.zeros((2,))] * 2

    def fit(max_steps, **scheduler):
        trainer = quiet_trainer(tmp_path, max_epochs=None, max_steps=max_steps)
        trainer.fit(PlateauInConfigureOptimizers(**scheduler), batches, batches)
        return trainer

    trainer = fit(3, monitor="val_loss")
    assert trainer.global_step == 3
    assert trainer.optimizers[0].param_groups[0]["lr"] == 1.0
    assert fit(4, monitor="val_loss").optimizers[0].param_groups[0]["lr"] == 0.5  # epoch 1 whole: checked
    assert fit(1, monitor="never_logged", strict=True).global_step == 1
