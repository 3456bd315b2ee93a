"""`GradientAccumulationScheduler`: Lightning's accumulate_grad_batches per epoch, with the compiled step
rebuilt at the epoch that changes it, and exact across a resume."""

import audiotrain  # noqa: F401  (before mlx)
from audiotrain import TrainModule
from audiotrain.train import GradientAccumulationScheduler
from audiotrain.train.callback import Callback

import mlx.core as mx
import mlx.optimizers as optim
import pytest
from exactness import assert_same_numbers
from tasks import TinyClassifier, make_batches, quiet_trainer, weights


class Scaled(TrainModule):
    """loss = w * mean(batch): an SGD update at rate 1 lowers w by the window's mean of batch means."""

    def __init__(self):
        super().__init__()
        self.w = mx.array([0.0])

    def compute_loss(self, batch):
        return mx.sum(self.w) * mx.mean(batch), {}

    def configure_optimizers(self):
        return optim.SGD(learning_rate=1.0)


class Record(Callback):
    def __init__(self):
        self.steps, self.w, self.factors = [], [], []

    def on_train_epoch_start(self, trainer, module):
        self.factors.append(trainer.accumulate_grad_batches)

    def on_train_epoch_end(self, trainer, module):
        self.steps.append(trainer.global_step)
        if isinstance(module, Scaled):
            self.w.append(module.w.item())


def test_each_epoch_averages_the_scheduled_number_of_batches_per_update(tmp_path):
    record = Record()
    scheduler = GradientAccumulationScheduler(scheduling={1: 4, 2: 2})
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=[scheduler, record])
    batches = [mx.full((2,), float(i + 1)) for i in range(8)]  # batch means 1..8
    trainer.fit(Scaled(), batches)
    assert record.factors == [1, 4, 2]  # epoch 0: Lightning's default 1 before the first key
    assert record.steps == [8, 10, 14]
    # Epoch 0: -(1+...+8) = -36; epoch 1: means of (1..4) and (5..8): 2.5 + 6.5; epoch 2: 1.5+3.5+5.5+7.5.
    assert record.w == pytest.approx([-36.0, -45.0, -63.0])
    assert trainer.accumulate_grad_batches == 1  # the Trainer's own again, for its next fit


def test_get_accumulate_grad_batches_follows_lightnings_schedule():
    scheduler = GradientAccumulationScheduler({0: 8, 4: 4, 6: 1})
    assert [scheduler.get_accumulate_grad_batches(e) for e in range(8)] == [8, 8, 8, 8, 4, 4, 1, 1]
    assert GradientAccumulationScheduler({3: 2}).get_accumulate_grad_batches(0) == 1
    assert GradientAccumulationScheduler({0: 2}).going_to_accumulate_grad_batches()
    assert not GradientAccumulationScheduler({0: 1}).going_to_accumulate_grad_batches()


@pytest.mark.parametrize(
    "scheduling, error, match",
    [
        ({}, TypeError, "scheduling is empty"),
        ([(0, 2)], TypeError, "must be a dict"),
        ({-1: 2}, ValueError, r"keys are epochs, ints >= 0; got -1"),
        ({"1": 2}, ValueError, r"keys are epochs, ints >= 0; got '1'"),
        ({1.0: 2}, ValueError, r"keys are epochs, ints >= 0; got 1\.0"),
        ({True: 2}, ValueError, r"keys are epochs, ints >= 0; got True"),  # (a bool is no epoch)
        ({0: 0}, ValueError, r"values are accumulate_grad_batches, ints >= 1; got 0"),
        ({0: 2.0}, ValueError, r"values are accumulate_grad_batches, ints >= 1; got 2\.0"),
    ],
)
def test_a_schedule_lightning_refuses_is_refused_naming_what_is_wrong(scheduling, error, match):
    with pytest.raises(error, match=match):
        GradientAccumulationScheduler(scheduling)


def test_a_trainer_accumulating_on_its_own_is_refused_with_the_callback(tmp_path):
    trainer = quiet_trainer(
        tmp_path, max_epochs=1, accumulate_grad_batches=2, callbacks=[GradientAccumulationScheduler({0: 4})]
    )
    # (as Lightning's, which checks in on_train_start: validate and test, which train nothing, run)
    trainer.validate(TinyClassifier(), make_batches(16))
    trainer.test(TinyClassifier(), make_batches(16))
    with pytest.raises(ValueError, match=r"accumulate_grad_batches=2\) and a GradientAccumulationScheduler"):
        trainer.fit(TinyClassifier(), make_batches(32))


class EpochScheduled(TinyClassifier):
    def configure_optimizers(self):
        return [optim.AdamW(learning_rate=1e-2)], [optim.step_decay(1e-2, 0.5, 1)]


def test_an_epoch_stepped_lr_scheduler_is_refused_with_it(tmp_path):
    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[GradientAccumulationScheduler({0: 2})])
    with pytest.raises(ValueError, match=r"lr_scheduler stepped with 'interval': 'epoch'"):
        trainer.fit(EpochScheduled(), make_batches(32))


class SaveAt(Callback):
    """A checkpoint after batch `batch_idx` of `epoch`: inside an accumulation window, where it falls so."""

    def __init__(self, epoch, batch_idx, path):
        self.at, self.path = (epoch, batch_idx), path

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if (trainer.current_epoch, batch_idx) == self.at:
            trainer.save_checkpoint(self.path)


def _fit(root, ckpt_path=None, save_at=None):
    record = Record()
    callbacks = [GradientAccumulationScheduler({0: 1, 2: 3}), record]
    if save_at is not None:
        callbacks.append(SaveAt(*save_at, root / "saved"))
    trainer = quiet_trainer(root, max_epochs=4, callbacks=callbacks, seed=0)
    module = TinyClassifier(dropout=0.1)
    trainer.fit(module, make_batches(48, batch_size=8), ckpt_path=ckpt_path)  # 6 batches an epoch
    return module, record


@pytest.mark.parametrize(
    "save_at",
    [(1, 5), (2, 1), (2, 2), (3, 4)],
    ids=["before-the-change", "inside-a-window", "at-a-window-end", "last-epoch"],
)
def test_a_fit_resumed_after_a_change_ends_as_an_uninterrupted_one(tmp_path, save_at):
    straight, record = _fit(tmp_path / "a", save_at=save_at)
    assert record.steps == [6, 12, 14, 16]
    resumed, resumed_record = _fit(tmp_path / "b", ckpt_path=tmp_path / "a" / "saved")
    assert resumed_record.steps == record.steps[save_at[0] :]
    assert resumed_record.factors == record.factors[save_at[0] :]
    for name, value in weights(straight).items():
        assert_same_numbers(weights(resumed)[name], value, err_msg=name)


def test_the_callback_is_exported_as_lightnings():
    from audiotrain.train import callbacks

    assert callbacks.GradientAccumulationScheduler is GradientAccumulationScheduler


def test_a_window_resumed_under_another_schedule_ends_with_the_checkpoints_value(tmp_path):
    # A checkpoint saved 2 batches into a window of 3 (Trainer(accumulate_grad_batches=3)), resumed with a
    # schedule of 2: the README's "takes the checkpoint's value and then the schedule's". Before, the
    # callback set 2 inside the open window and the fit stopped with "changed to 2 inside an accumulation
    # window ...; change it at an epoch start", naming neither the checkpoint nor the callback.
    batches = [mx.full((2,), float(i + 1)) for i in range(6)]  # batch means 1..6
    saver = SaveAt(0, 1, tmp_path / "saved")
    saving = quiet_trainer(tmp_path / "a", max_epochs=1, accumulate_grad_batches=3, callbacks=[saver])
    saving.fit(Scaled(), batches)
    record, module = Record(), Scaled()
    callbacks = [GradientAccumulationScheduler({0: 2}), record]
    trainer = quiet_trainer(tmp_path / "b", max_epochs=2, callbacks=callbacks)
    with pytest.warns(UserWarning, match=r"window of 3 .*GradientAccumulationScheduler's 2 .*from epoch 1"):
        trainer.fit(module, batches, ckpt_path=tmp_path / "saved")
    assert record.factors == [3, 2]
    assert record.steps == [2, 5]
    # Epoch 0: the windows (1, 2, 3) and (4, 5, 6): -2 - 5; epoch 1 by 2: -1.5 - 3.5 - 5.5.
    assert record.w == pytest.approx([-7.0, -17.5])
