"""Lightning code ported to TrainModule: schedule intervals, save_hyperparameters along a class chain,
load_from_checkpoint's keywords, bf16-mixed batches, and MLX's compile bug named."""

import math
import warnings
from pathlib import Path

import audiotrain  # noqa: F401  (before mlx)
from audiotrain import DataModule, TrainModule
from audiotrain.train.schedulers import StepLRScheduler, WarmupCosineScheduler

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from exactness import assert_same_numbers, same_values
from mlx.utils import tree_flatten
from tasks import RecordingLogger, Returns, TinyClassifier, make_batches, quiet_trainer, weights


def rates_per_update(module, **trainer_kwargs) -> list[float]:
    """The learning rate each optimizer update used, as the Trainer logs it at every step."""
    logger = RecordingLogger()
    batches = trainer_kwargs.pop("batches", None) or make_batches()
    t = quiet_trainer(trainer_kwargs.pop("tmp_path"), log_every_n_steps=1, logger=logger, **trainer_kwargs)
    t.fit(module, batches)
    return [round(m["learning_rate"], 6) for _, m in logger.metrics if "learning_rate" in m]


# ---------------------------------------------------------------- lr_scheduler interval and frequency
@pytest.mark.parametrize(
    "form",
    [
        lambda opt, s: ([opt], [s]),
        lambda opt, s: {"optimizer": opt, "lr_scheduler": s},
        lambda opt, s: {"optimizer": opt, "lr_scheduler": {"scheduler": s}},
    ],
    ids=["lists", "dict", "scheduler-dict"],
)
def test_a_schedule_without_an_interval_steps_once_per_epoch_as_in_lightning(tmp_path, form):
    # torch's StepLR(step_size=1, gamma=0.5) returned so to Lightning halves the rate at each epoch end.
    schedule = StepLRScheduler(0.1, step_size=1, gamma=0.5)
    module = Returns(lambda m: form(optim.SGD(learning_rate=0.1), schedule))
    rates = rates_per_update(module, tmp_path=tmp_path, max_epochs=3)  # 6 batches per epoch
    assert rates == [0.1] * 6 + [0.05] * 6 + [0.025] * 6


@pytest.mark.parametrize("accumulate", [1, 4])
def test_an_epoch_schedule_resumed_with_longer_epochs_keeps_the_epoch_index(tmp_path, accumulate):
    """The epoch is derived from the optimizer step: a resume whose epochs are longer (more data, fewer
    ranks) counts from the epoch it resumes in, as Lightning's epoch counter does."""

    def module():
        return Returns(
            lambda m: ([optim.SGD(learning_rate=0.1)], [StepLRScheduler(0.1, step_size=1, gamma=0.5)])
        )

    first = quiet_trainer(
        tmp_path, max_epochs=2, enable_checkpointing=True, accumulate_grad_batches=accumulate
    )
    first.fit(module(), make_batches(96))  # 6 batches an epoch
    logger = RecordingLogger()
    resumed = quiet_trainer(
        tmp_path, max_epochs=4, log_every_n_steps=1, logger=logger, accumulate_grad_batches=accumulate
    )
    resumed.fit(
        module(), make_batches(192), ckpt_path=first.checkpoint_callback.last_model_path
    )  # 12 an epoch
    rates = [round(m["learning_rate"], 6) for _, m in logger.metrics if "learning_rate" in m]
    updates = 12 // accumulate
    assert rates == [0.025] * updates + [0.0125] * updates


def test_an_explicit_step_interval_steps_at_every_update(tmp_path):
    schedule = StepLRScheduler(0.1, step_size=2, gamma=0.5)
    scheduled = {"scheduler": schedule, "interval": "step"}
    module = Returns(lambda m: {"optimizer": optim.SGD(learning_rate=0.1), "lr_scheduler": scheduled})
    rates = rates_per_update(module, tmp_path=tmp_path, max_epochs=1)
    assert rates == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]


@pytest.mark.parametrize(
    "interval, frequency, epochs, lightning_rates",
    [
        # Measured with Lightning 2.6.6 (torch StepLR(step_size=1, gamma=0.5)), 6 batches per epoch,
        # accumulate_grad_batches=4: windows of 4 and 2 batches, 2 updates per epoch.
        # "step": Lightning steps after an update whose last batch index (1-based, in the epoch) is a
        # multiple of frequency: batch 6 only.
        ("step", 3, 3, [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]),
        ("step", 2, 2, [0.1, 0.05, 0.025, 0.0125]),
        ("epoch", 2, 4, [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05]),
    ],
)
def test_interval_and_frequency_with_accumulation_give_lightnings_rates(
    tmp_path, interval, frequency, epochs, lightning_rates
):
    scheduled = {"scheduler": StepLRScheduler(0.1, 1, 0.5), "interval": interval, "frequency": frequency}
    module = Returns(lambda m: {"optimizer": optim.SGD(learning_rate=0.1), "lr_scheduler": scheduled})
    rates = rates_per_update(module, tmp_path=tmp_path, max_epochs=epochs, accumulate_grad_batches=4)
    assert rates == lightning_rates


def test_an_epoch_schedule_resumes_in_its_epoch(tmp_path):
    scheduled = ([optim.SGD(learning_rate=0.1)], [StepLRScheduler(0.1, 1, 0.5)])
    t = quiet_trainer(tmp_path, max_epochs=1)
    t.fit(Returns(lambda m: scheduled), make_batches())
    path = t.save_checkpoint(tmp_path / "after-epoch-0")
    logger = RecordingLogger()
    resumed = quiet_trainer(tmp_path, max_epochs=3, log_every_n_steps=1, logger=logger)
    fresh = ([optim.SGD(learning_rate=0.1)], [StepLRScheduler(0.1, 1, 0.5)])
    resumed.fit(Returns(lambda m: fresh), make_batches(), ckpt_path=path)
    rates = [round(m["learning_rate"], 6) for _, m in logger.metrics if "learning_rate" in m]
    assert rates == [0.05] * 6 + [0.025] * 6


def batches_with_a_nan_second_batch():
    """make_batches (6 an epoch) with batch 1 NaN: the non-finite guard skips that update every epoch."""
    batches = make_batches()
    x, y = batches[1]
    batches[1] = (x * float("nan"), y)
    return batches


def interval_scheduled(interval, frequency):
    scheduled = {"scheduler": StepLRScheduler(0.1, 1, 0.5), "interval": interval, "frequency": frequency}
    return Returns(lambda m: {"optimizer": optim.SGD(learning_rate=0.1), "lr_scheduler": scheduled})


@pytest.mark.parametrize("interval, frequency", [("epoch", 1), ("epoch", 2), ("step", 2)])
def test_skipped_updates_do_not_shift_an_interval_schedule(tmp_path, interval, frequency):
    """A skipped update does not advance the optimizer's step counter, but it still is a batch of its epoch
    (Lightning steps an epoch schedule at the epoch's end, a "step" one at batch positions): every update
    of epoch e uses epoch e's rate. (A skipped update logs the rate it kept, its batch 0's.)"""
    kwargs = dict(tmp_path=tmp_path, max_epochs=4)
    with pytest.warns(UserWarning, match="skipped"):
        skipping = rates_per_update(
            interval_scheduled(interval, frequency), batches=batches_with_a_nan_second_batch(), **kwargs
        )
    assert skipping == rates_per_update(interval_scheduled(interval, frequency), **kwargs)


@pytest.mark.parametrize("interval, frequency", [("epoch", 1), ("step", 2)])
def test_an_interval_schedule_resumes_exactly_after_skipped_updates(tmp_path, interval, frequency):
    from audiotrain.train.callbacks import LambdaCallback

    def fit(folder, callbacks=(), ckpt_path=None):
        mx.random.seed(0)
        module = interval_scheduled(interval, frequency)
        trainer = quiet_trainer(
            tmp_path / folder, max_epochs=3, enable_checkpointing=True, callbacks=list(callbacks)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (the skipped updates)
            trainer.fit(module, batches_with_a_nan_second_batch(), ckpt_path=ckpt_path)
        return trainer, module

    def ctrl_c_at_step_10(trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == 10:  # epoch 1, after its skipped update
            raise KeyboardInterrupt

    _, straight = fit("straight")
    stopped, _ = fit("pieces", callbacks=[LambdaCallback(on_train_batch_end=ctrl_c_at_step_10)])
    assert stopped.interrupted
    _, resumed = fit("pieces", ckpt_path=stopped.interrupted_checkpoint)
    for name, value in weights(straight).items():
        assert_same_numbers(weights(resumed)[name], value, err_msg=name)


def test_an_epoch_schedule_resumes_exactly_inside_an_accumulation_window(tmp_path):
    """5 batches an epoch with accumulate_grad_batches=2 make 3 updates (after batches 1, 3 and 4); a
    Ctrl-C after batch 2 of epoch 1 leaves its second window half full. The resumed run places the epoch's
    start by the updates the epoch has made (one), not by its batches (three): every later update uses the
    straight run's rate, and the weights end bitwise equal."""
    from audiotrain.train.callbacks import LambdaCallback

    def fit(folder, callbacks=(), ckpt_path=None):
        mx.random.seed(0)
        module = Returns(lambda m: ([optim.SGD(learning_rate=0.1)], [StepLRScheduler(0.1, 1, 0.5)]))
        logger = RecordingLogger()
        trainer = quiet_trainer(
            tmp_path / folder,
            max_epochs=3,
            accumulate_grad_batches=2,
            enable_checkpointing=True,
            log_every_n_steps=1,
            logger=logger,
            callbacks=list(callbacks),
        )
        trainer.fit(module, make_batches(80), ckpt_path=ckpt_path)
        rates = {step: m["learning_rate"] for step, m in logger.metrics if "learning_rate" in m}
        return trainer, module, rates

    def ctrl_c_inside_a_window(trainer, module, outputs, batch, batch_idx):
        if (trainer.current_epoch, batch_idx) == (1, 2):
            raise KeyboardInterrupt

    _, straight, straight_rates = fit("straight")
    stopped, _, _ = fit("pieces", callbacks=[LambdaCallback(on_train_batch_end=ctrl_c_inside_a_window)])
    assert stopped.interrupted and (stopped.global_step, stopped.progress.micro_batches) == (4, 1)
    _, resumed, resumed_rates = fit("pieces", ckpt_path=stopped.interrupted_checkpoint)
    assert list(resumed_rates) == [5, 6, 7, 8, 9]
    assert same_values(resumed_rates, {step: straight_rates[step] for step in resumed_rates})
    assert [straight_rates[step] for step in resumed_rates] == pytest.approx([0.05, 0.05] + [0.025] * 3)
    for name, value in weights(straight).items():
        assert_same_numbers(weights(resumed)[name], value, err_msg=name)


def test_an_epoch_schedule_needs_a_training_loader_with_a_length(tmp_path):
    class Stream:  # an iterable without __len__ (a streaming dataset)
        def __iter__(self):
            return iter(make_batches())

    module = Returns(lambda m: ([optim.SGD(learning_rate=0.1)], [StepLRScheduler(0.1, 1, 0.5)]))
    with pytest.raises(ValueError, match=r"Lightning's default interval 'epoch'.*has no length"):
        quiet_trainer(tmp_path, max_epochs=1).fit(module, Stream())
    per_step = {"scheduler": StepLRScheduler(0.1, 1, 0.5), "interval": "step"}
    module = Returns(lambda m: {"optimizer": optim.SGD(learning_rate=0.1), "lr_scheduler": per_step})
    quiet_trainer(tmp_path, max_epochs=1).fit(module, Stream())  # per step: no length needed


def test_a_schedule_counted_in_steps_in_the_epoch_form_is_warned_about(tmp_path):
    schedule = WarmupCosineScheduler(peak_lr=0.1, warmup_steps=10, total_steps=1000)
    module = Returns(lambda m: ([optim.SGD(learning_rate=0.1)], [schedule]))
    with pytest.warns(UserWarning, match=r"total_steps=1000\) is stepped once per epoch.*'interval': 'step'"):
        quiet_trainer(tmp_path, max_epochs=2).fit(module, make_batches())
    # Stepped every 2 epochs, 4 epochs give the schedule 2 of its 3 steps: warned too.
    every_two = {
        "scheduler": WarmupCosineScheduler(peak_lr=0.1, warmup_steps=1, total_steps=3),
        "frequency": 2,
    }
    module = Returns(lambda m: {"optimizer": optim.SGD(learning_rate=0.1), "lr_scheduler": every_two})
    with pytest.warns(UserWarning, match=r"once per 2 epochs .*runs 4 epochs: it would use 2 of its 3 steps"):
        quiet_trainer(tmp_path, max_epochs=4).fit(module, make_batches())


@pytest.mark.parametrize(
    "scheduled, match",
    [
        (
            {"scheduler": StepLRScheduler(0.1, 1), "interval": "batch"},
            r"'interval': 'batch': expected 'step'",
        ),
        ({"scheduler": StepLRScheduler(0.1, 1), "frequency": 0}, r"'frequency': 0: expected an int >= 1"),
        ({"interval": "step"}, r"has no 'scheduler'"),
        (
            {"scheduler": StepLRScheduler(0.1, 1), "frequency": True},
            r"'frequency': True: expected an int >= 1",
        ),
        (  # a LearningRateMonitor failed on it in the first training step, with a raw TypeError
            {"scheduler": StepLRScheduler(0.1, 1), "interval": "step", "name": 3},
            r"lr_scheduler 'name': 3: expected a string",
        ),
        (  # Lightning's plateau switch without a "monitor": still a metric-driven schedule
            {"scheduler": StepLRScheduler(0.1, 1), "reduce_on_plateau": True},
            r"'reduce_on_plateau': True is for a metric-driven schedule",
        ),
    ],
)
def test_lr_scheduler_settings_that_mean_nothing_are_refused(tmp_path, scheduled, match):
    module = Returns(lambda m: {"optimizer": optim.SGD(learning_rate=0.1), "lr_scheduler": scheduled})
    with pytest.raises((TypeError, ValueError), match=match):
        quiet_trainer(tmp_path, max_epochs=1).fit(module, make_batches())


def test_interval_schedule_counts_as_lightning_steps_a_schedule():
    from audiotrain.train.schedulers import IntervalSchedule

    epochs = IntervalSchedule(
        lambda n: n, "epoch", frequency=2, batches_per_epoch=5, accumulate_grad_batches=2
    )
    assert [epochs.scheduler_steps(s) for s in range(12)] == [0] * 6 + [1] * 6  # 3 updates per epoch
    assert epochs.name == "function" and float(epochs(mx.array(7, mx.uint64))) == 1.0
    assert IntervalSchedule(StepLRScheduler(0.1, 1), "step").to_dict()["interval"] == "step"


# ---------------------------------------------------------------- schedules ported from torch (LambdaLR)
PYTHON_SCHEDULES = {
    "if": lambda s: 0.1 if s < 5 else 0.01,
    "math.cos": lambda s: 0.05 * (1 + math.cos(math.pi * s / 10)),
    "builtin min": lambda s: 0.1 * min(1.0, (s + 1) / 3),
}


@pytest.mark.parametrize("interval", ["step", "epoch"])
@pytest.mark.parametrize("schedule", PYTHON_SCHEDULES.values(), ids=PYTHON_SCHEDULES.keys())
def test_a_schedule_that_reads_its_step_is_refused_as_fit_starts_naming_the_schedule(
    tmp_path, schedule, interval
):
    module = Returns(
        lambda m: {
            "optimizer": optim.SGD(learning_rate=0.1),
            "lr_scheduler": {"scheduler": schedule, "interval": interval},
        }
    )
    before = weights(module)
    t = quiet_trainer(tmp_path, max_epochs=1)
    with pytest.raises(
        TypeError,
        match=r"learning-rate schedule <lambda> reads its step's value.*mx\.where.*mx\.cos.*mx\.minimum",
    ):
        t.fit(module, make_batches())
    assert t.global_step == 0  # before the first step, not inside it (where training_step was blamed)
    assert all(np.array_equal(before[k], v) for k, v in weights(module).items())


def test_a_schedule_that_reads_its_step_trains_uncompiled(tmp_path):
    rates = rates_per_update(
        Returns(
            lambda m: {
                "optimizer": optim.SGD(learning_rate=0.1),
                "lr_scheduler": {"scheduler": PYTHON_SCHEDULES["if"], "interval": "step"},
            }
        ),
        tmp_path=tmp_path,
        max_epochs=1,
        compile=False,
    )
    assert rates == [0.1] * 5 + [0.01]


@pytest.mark.parametrize("make", [optim.SGD, optim.AdamW, optim.RMSprop, optim.Adagrad])
def test_a_schedule_that_returns_a_number_trains_with_every_optimizer(tmp_path, make):
    def trained(learning_rate, **config):
        module = Returns(lambda m: make(learning_rate=learning_rate))
        quiet_trainer(tmp_path, max_epochs=2, **config).fit(module, make_batches())
        return weights(module)

    mx.random.seed(0)
    expected = trained(0.1)
    for scheduled in (
        {
            "optimizer": make(learning_rate=0.1),
            "lr_scheduler": {"scheduler": lambda s: 0.1, "interval": "step"},
        },
        {"optimizer": make(learning_rate=0.1), "lr_scheduler": lambda s: 0.1},  # (per epoch)
    ):
        mx.random.seed(0)
        module = Returns(lambda m, scheduled=scheduled: scheduled)
        quiet_trainer(tmp_path, max_epochs=2).fit(module, make_batches())
        assert all(np.array_equal(expected[k], v) for k, v in weights(module).items())
    mx.random.seed(0)
    as_learning_rate = trained(lambda s: 0.1)  # (given to the optimizer itself)
    assert all(np.array_equal(expected[k], v) for k, v in as_learning_rate.items())


@pytest.mark.parametrize(
    "value, match",
    [
        (
            lambda: ([optim.SGD(learning_rate=0.1)], [StepLRScheduler(0.1, 1), StepLRScheduler(0.1, 2)]),
            r"returned \(\[opt\], \[2 lr_schedulers\]\): one lr_scheduler per optimizer is supported.*"
            r"mlx\.optimizers\.join_schedules",
        ),
        (
            lambda: (optim.SGD(learning_rate=0.1), StepLRScheduler(0.1, 1)),
            r"returned the tuple \(optimizer, StepLRScheduler\): a schedule goes in Lightning's list or dict "
            r"forms, \(\[opt\], \[schedule\]\)",
        ),
    ],
    ids=["two schedules", "(opt, schedule)"],
)
def test_two_schedules_or_a_bare_schedule_beside_the_optimizer_are_named_as_such(tmp_path, value, match):
    with pytest.raises(TypeError, match=match) as refused:
        quiet_trainer(tmp_path, max_epochs=1).fit(Returns(lambda m: value()), make_batches())
    assert "optimizers: one optimizer is supported" not in str(refused.value)


def test_an_lr_scheduler_beside_a_learning_rate_schedule_is_refused_not_one_silently_dropped(tmp_path):
    # Both schedules given: the lr_scheduler used to replace the optimizer's own without a word (the rate
    # went 0.1, 0.05, 0.025 by epoch where the optimizer's step_decay halves it every update).
    both = {
        "optimizer": optim.SGD(learning_rate=optim.step_decay(0.1, 0.5, 1)),
        "lr_scheduler": StepLRScheduler(0.1, 1, 0.5),
    }
    with pytest.raises(
        TypeError,
        match=r"learning_rate is already a schedule \(function\) and an "
        r"lr_scheduler \(StepLRScheduler\) is given too.*join_schedules",
    ):
        quiet_trainer(tmp_path, max_epochs=1).fit(Returns(lambda m: both), make_batches())


def test_an_lr_scheduler_with_the_same_optimizer_object_fits_again(tmp_path):
    # A module that keeps its optimizer and returns it again: the schedule the first fit set is not a
    # second schedule (6 updates an epoch, StepLR per epoch as Lightning steps it).
    kept = optim.SGD(learning_rate=0.1)
    module = Returns(lambda m: {"optimizer": kept, "lr_scheduler": StepLRScheduler(0.1, 1, 0.5)})
    assert rates_per_update(module, tmp_path=tmp_path / "a", max_epochs=2)[::6] == [0.1, 0.05]
    assert rates_per_update(module, tmp_path=tmp_path / "b", max_epochs=2)[::6] == [0.1, 0.05]


def test_an_lr_scheduler_that_replaces_another_number_rate_warns(tmp_path):
    # Lightning 2.6.6: SGD(lr=0.5) with StepLR(step_size=1, gamma=0.5) trains its first epoch at 0.5 (torch's
    # schedulers start from the optimizer's lr). The port's StepLRScheduler(0.1, 1, 0.5) trained at 0.1,
    # 0.05, ... without a word; the 0.0 placeholder and the same rate say nothing.
    def fit(rate, schedule, as_dict=False):
        value = ([optim.SGD(learning_rate=rate)], [schedule])
        if as_dict:
            value = {"optimizer": value[0][0], "lr_scheduler": schedule}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet_trainer(tmp_path, max_epochs=1).fit(Returns(lambda m: value), make_batches())
        unused = [w for w in caught if "is not used" in str(w.message)]
        # (attributed to the user's fit call, in both forms, not to audiotrain's module.py or trainer.py)
        assert [w.filename for w in unused] == [__file__] * len(unused)
        return [str(w.message) for w in unused]

    [message] = fit(0.5, StepLRScheduler(0.1, 1, 0.5))
    assert (
        "SGD(learning_rate=0.5) is not used: the lr_scheduler StepLRScheduler starts from its own " in message
    )
    assert "initial_lr=0.1" in message
    assert len(fit(0.5, StepLRScheduler(0.1, 1, 0.5), as_dict=True)) == 1
    assert fit(0.0, StepLRScheduler(0.1, 1, 0.5)) == fit(0.1, StepLRScheduler(0.1, 1, 0.5)) == []
    assert fit(1e-3, WarmupCosineScheduler(1e-3, 2, 10)) == []  # (no torch base rate to compare)


def test_two_schedules_joined_as_the_refusal_says_train(tmp_path):
    # torch's chained StepLR(1, 0.5) and StepLR(2, 0.1), as Lightning steps them per epoch.
    first, second = StepLRScheduler(0.1, 1, 0.5), StepLRScheduler(0.1, 2, 0.1)
    product = ([optim.SGD(learning_rate=0.1)], [lambda e: first(e) * second(e) / 0.1])
    rates = rates_per_update(Returns(lambda m: product), tmp_path=tmp_path, max_epochs=4)
    assert rates[::6] == [0.1, 0.05, 0.0025, 0.00125]
    joined = optim.join_schedules([optim.linear_schedule(0.01, 0.1, 2), lambda e: 0.1 * 0.5**e], [2])
    rates = rates_per_update(
        Returns(lambda m: ([optim.SGD(learning_rate=0.1)], [joined])), tmp_path=tmp_path, max_epochs=4
    )
    assert rates[::6] == [0.01, 0.055, 0.1, 0.05]


# ---------------------------------------------------------------- save_hyperparameters in a base class
class Base(TrainModule):
    def __init__(self, hidden: int = 8, lr: float = 0.1):
        super().__init__()
        self.save_hyperparameters()
        self.fc = nn.Linear(8, hidden)
        self.out = nn.Linear(hidden, 3)

    def __call__(self, x):
        return self.out(nn.relu(self.fc(x)))

    def compute_loss(self, batch):
        x, y = batch
        return mx.mean(nn.losses.cross_entropy(self(x), y)), {}

    def configure_optimizers(self):
        return optim.SGD(learning_rate=self.hparams.lr)


class Child(Base):
    def __init__(self, hidden: int = 8, lr: float = 0.1, tag: str = "x"):
        super().__init__(hidden, lr)


class KeywordChild(Base):
    def __init__(self, tag: str = "x", **kwargs):
        super().__init__(**kwargs)


def test_save_hyperparameters_in_a_base_class_records_a_subclasss_arguments(tmp_path):
    assert Child(hidden=4, tag="run1").hparams == {"hidden": 4, "lr": 0.1, "tag": "run1"}
    assert KeywordChild(tag="k", hidden=6).hparams == {"hidden": 6, "lr": 0.1, "tag": "k"}
    t = quiet_trainer(tmp_path, max_epochs=1)
    module = Child(hidden=4, tag="run1")
    t.fit(module, make_batches())
    loaded = Child.load_from_checkpoint(t.save_checkpoint(tmp_path / "saved"))
    assert loaded.hparams == module.hparams and loaded.fc.weight.shape == (4, 8)


class Wide(Base):
    """Lightning's habit of a subclass that derives its base's arguments from its own."""

    def __init__(self, width: int = 4):
        super().__init__(hidden=width * 2)


class Scaled(Base):
    """Takes the base's argument names and passes other values up."""

    def __init__(self, hidden: int = 4, lr: float = 0.1):
        super().__init__(hidden * 2, lr)


class WithKeywords(Base):
    """Keyword arguments the base does not take, read from `**kwargs`."""

    def __init__(self, hidden: int = 8, **kwargs):
        super().__init__(hidden=hidden)
        self.dropout = kwargs.get("dropout", 0.0)


def test_a_subclass_that_derives_its_bases_arguments_loads_from_its_checkpoint(tmp_path):
    # The base's save_hyperparameters() records the whole chain's arguments, as Lightning's; Wide.__init__
    # takes only width, so load_from_checkpoint passes it that alone, as Lightning's does.
    module = Wide(width=3)
    assert module.hparams == {"hidden": 6, "lr": 0.1, "width": 3}
    t = quiet_trainer(tmp_path, max_epochs=1)
    t.fit(module, make_batches())
    path = t.save_checkpoint(tmp_path / "saved")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the base's arguments are left out without a word
        loaded = Wide.load_from_checkpoint(path)
    assert loaded.fc.weight.shape == (6, 8) and loaded.hparams["width"] == 3
    a, b = weights(module), weights(loaded)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    with pytest.raises(TypeError, match=r"Wide.__init__ takes no argument hiden"):  # a keyword given: refused
        Wide.load_from_checkpoint(path, hiden=6)

    class Needs(Wide):  # a required argument the checkpoint does not hold is still named
        def __init__(self, size: int):
            super().__init__(width=size)

    with pytest.raises(TypeError, match=r"size is not among the checkpoint's hyper_parameters"):
        Needs.load_from_checkpoint(path)
    assert Needs.load_from_checkpoint(path, size=3).fc.weight.shape == (6, 8)


def test_a_saved_argument_no_init_takes_is_left_out_with_a_warning(tmp_path):
    t = quiet_trainer(tmp_path, max_epochs=1)
    t.fit(Base(hidden=5), make_batches())
    path = t.save_checkpoint(tmp_path / "saved")

    class Renamed(TrainModule):  # Base's __init__ changed since the save: hidden is now size
        def __init__(self, size: int = 5, lr: float = 0.1):
            super().__init__()
            self.save_hyperparameters()
            self.fc = nn.Linear(8, size)
            self.out = nn.Linear(size, 3)

    with pytest.warns(UserWarning, match=r"hold hidden, which no __init__ of Renamed .*changed since"):
        assert Renamed.load_from_checkpoint(path).hparams == {"size": 5, "lr": 0.1}


def test_a_value_set_in_hparams_after_save_hyperparameters_is_left_out_quietly_as_in_lightning(tmp_path):
    """self.hparams.total_steps = ... in a hook (Lightning users record derived values so) was saved, and
    load_from_checkpoint warned "which no __init__ of Counted ... takes ... Was __init__ changed since the
    checkpoint was saved?" about it, though nothing had changed. Lightning leaves it out of __init__'s
    arguments without a word; a saved argument __init__ no longer takes is still warned of."""

    class Counted(Base):
        def on_fit_start(self):
            self.hparams.total_steps = self.trainer.estimated_stepping_batches

    t = quiet_trainer(tmp_path, max_epochs=1)
    t.fit(Counted(hidden=5), make_batches())
    path = t.save_checkpoint(tmp_path / "saved")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Counted.load_from_checkpoint(path).hparams == {"hidden": 5, "lr": 0.1}

    class Renamed(TrainModule):  # Counted's __init__ changed since the save: hidden is now size
        def __init__(self, size: int = 5, lr: float = 0.1):
            super().__init__()
            self.save_hyperparameters()
            self.fc = nn.Linear(8, size)
            self.out = nn.Linear(size, 3)

    with pytest.warns(UserWarning, match=r"hold hidden, which no __init__ of Renamed .*changed since") as got:
        Renamed.load_from_checkpoint(path)
    assert "total_steps" not in str(got[0].message)


def test_along_a_class_chain_the_subclasss_value_of_an_argument_is_recorded(tmp_path):
    module = Scaled(hidden=4)
    assert module.hparams == {"hidden": 4, "lr": 0.1} and module.fc.weight.shape == (8, 8)
    t = quiet_trainer(tmp_path, max_epochs=1)
    t.fit(module, make_batches())
    loaded = Scaled.load_from_checkpoint(t.save_checkpoint(tmp_path / "saved"))
    assert loaded.hparams == {"hidden": 4, "lr": 0.1} and loaded.fc.weight.shape == (8, 8)


def test_a_subclasss_keyword_arguments_are_recorded_and_given_back(tmp_path):
    module = WithKeywords(hidden=5, dropout=0.3)
    assert module.hparams == {"hidden": 5, "lr": 0.1, "dropout": 0.3}
    t = quiet_trainer(tmp_path, max_epochs=1)
    t.fit(module, make_batches())
    loaded = WithKeywords.load_from_checkpoint(t.save_checkpoint(tmp_path / "saved"))
    assert loaded.dropout == 0.3 and loaded.fc.weight.shape == (5, 8)


class Shaped(Base):
    """Lightning's habit of tuple arguments (a kernel size), and a dict of them."""

    def __init__(self, hidden: int = 8, kernel: tuple = (3, 3), groups: dict | None = None):
        super().__init__(hidden)


def test_tuple_hyperparameters_come_back_as_tuples_and_non_string_keys_are_refused(tmp_path):
    # A checkpoint is JSON: tuples were given back to __init__ as lists and {1: ...} as {"1": ...}.
    module = Shaped(kernel=(1, 2), groups={"a": [(3, 4), 5]})
    t = quiet_trainer(tmp_path, max_epochs=1)
    t.fit(module, make_batches())
    loaded = Shaped.load_from_checkpoint(t.save_checkpoint(tmp_path / "saved"))
    assert loaded.hparams == module.hparams  # ((1, 2) == [1, 2] is False)
    assert type(loaded.hparams.kernel) is tuple and type(loaded.hparams.groups["a"][0]) is tuple
    with pytest.raises(TypeError, match=r"groups\['a'\] has the key 1 \(int\).*come back as '1'"):
        Shaped(groups={"a": {1: "x"}})


def test_assigning_hparams_says_how_to_record_them():
    # MLX's Module.__setattr__ answered "property 'hparams' of 'Base' object has no deleter".
    module = Base()
    with pytest.raises(AttributeError, match=r"Base.hparams cannot be assigned.*save_hyperparameters\(\)"):
        module.hparams = {"hidden": 4}
    module.hparams.lr = 0.5  # one entry changes, as in Lightning
    assert module.hparams == {"hidden": 8, "lr": 0.5}
    # hparams_initial is read-only, as Lightning's property: MLX answered "... has no deleter" here too.
    with pytest.raises(AttributeError, match=r"Base.hparams_initial is read-only.*self.hparams.lr = ") as err:
        module.hparams_initial = {"hidden": 4}
    assert "deleter" not in str(err.value) and module.hparams_initial == {"hidden": 8, "lr": 0.1}


def test_hparams_initial_keeps_what_save_hyperparameters_recorded(tmp_path):
    """Lightning's read-only hparams_initial: a later change to hparams (or to what it returns) does not
    reach it; a module loaded from a checkpoint has the saved values there."""
    from audiotrain import DataModule

    module = Shaped(groups={"a": [1]})
    module.hparams.kernel = (1, 1)
    module.hparams.groups["a"].append(2)
    initial = module.hparams_initial
    assert initial == {"hidden": 8, "lr": 0.1, "kernel": (3, 3), "groups": {"a": [1]}}
    assert initial.hidden == 8  # (attribute reads, as hparams)
    initial.kernel = (5, 5)
    assert module.hparams_initial.kernel == (3, 3)
    assert Base().hparams_initial == {"hidden": 8, "lr": 0.1}
    t = quiet_trainer(tmp_path, max_epochs=1)
    t.fit(module, make_batches())
    loaded = Shaped.load_from_checkpoint(t.save_checkpoint(tmp_path / "saved"))
    assert loaded.hparams_initial == {"hidden": 8, "lr": 0.1, "kernel": (1, 1), "groups": {"a": [1, 2]}}

    class Data(DataModule):
        def __init__(self, batch_size: int = 4):
            super().__init__()
            self.save_hyperparameters()

    data = Data()
    data.hparams.batch_size = 8
    assert data.hparams_initial == {"batch_size": 4} and DataModule().hparams_initial == {}


def test_save_hyperparameters_outside_init_says_where_to_call_it():
    module = Child()
    with pytest.raises(ValueError, match=r"call it inside Child.__init__"):
        module.save_hyperparameters("lr")
    with pytest.raises(ValueError, match=r"call it inside Child.__init__"):
        module.save_hyperparameters()  # (recording nothing would leave checkpoints unable to rebuild it)


@pytest.mark.parametrize("base", [TrainModule, DataModule])
def test_save_hyperparameters_misuse_raises_the_error_types_lightning_raises(base):
    """A port's `except ValueError` / `except KeyError` around save_hyperparameters caught nothing: a plain
    value given as the config (`save_hyperparameters(depth)`) raised only a TypeError, and a name that is no
    `__init__` argument only a ValueError. Lightning 2.6.6 raises ValueError ("Primitives ... are not
    allowed") and KeyError ('zzz') there; ours keep their clearer messages and are those types too."""

    class GivesAValue(base):
        def __init__(self, depth=3):
            super().__init__()
            self.save_hyperparameters(depth)

    class NamesAStranger(base):
        def __init__(self, depth=3):
            super().__init__()
            self.save_hyperparameters("zzz")

    with pytest.raises(ValueError, match=r"GivesAValue.save_hyperparameters\(int\): expected __init__"):
        GivesAValue()
    with pytest.raises(TypeError):  # (what it raised before, kept for code that caught that)
        GivesAValue()
    with pytest.raises(KeyError) as raised:
        NamesAStranger()
    # the message reads as written, not in the quotes KeyError's str() adds
    assert str(raised.value).startswith("NamesAStranger.save_hyperparameters: zzz is not an argument of")
    with pytest.raises(ValueError):
        NamesAStranger()


@pytest.mark.parametrize("ignore", [5, ["net", 3], None])
def test_an_ignore_that_is_not_names_is_named(ignore):
    """save_hyperparameters(ignore=5) stopped with a bare "TypeError: 'int' object is not iterable", and
    ignore=None (Lightning's default) with "'NoneType' object is not iterable"; a non-str entry was a key
    that matched nothing. None now ignores nothing, as in Lightning, and the rest is named."""

    class Ignoring(TrainModule):
        def __init__(self, hidden: int = 8, net: str = "x"):
            super().__init__()
            self.save_hyperparameters(ignore=ignore)

    class IgnoringData(DataModule):
        def __init__(self, batch_size: int = 8, net: str = "x"):
            super().__init__()
            self.save_hyperparameters(ignore=ignore)

    if ignore is None:
        assert Ignoring().hparams == {"hidden": 8, "net": "x"}
        assert IgnoringData().hparams == {"batch_size": 8, "net": "x"}
        return
    for make, name in ((Ignoring, "Ignoring"), (IgnoringData, "IgnoringData")):
        with pytest.raises(
            TypeError, match=rf"{name}.save_hyperparameters\(ignore=.*expected an argument name"
        ):
            make()


def test_save_hyperparameters_before_super_init_says_to_call_super_init_first():
    """save_hyperparameters() (or self.hparams) before super().__init__() stopped with a bare
    "AttributeError: 'Early' object has no attribute '_hparams'", naming nothing the user wrote."""

    class Early(TrainModule):
        def __init__(self, hidden: int = 8, read: bool = False):
            if read:
                assert self.hparams is not None  # (the read alone is refused)
            self.save_hyperparameters()
            super().__init__()

    for read in (False, True):
        with pytest.raises(AttributeError, match=r"Early.save_hyperparameters\(\)|Early.hparams") as err:
            Early(read=read)
        assert "before super().__init__()" in str(err.value) and "_hparams" not in str(err.value)


@pytest.mark.parametrize("name", ["device", "dtype", "trainer", "current_epoch", "logger"])
def test_device_or_dtype_read_before_super_init_says_to_call_super_init_first(name):
    """`self.device` read in __init__ before super().__init__() (a torch port's `torch.zeros(3,
    device=self.device)`) stopped with "'Early' object has no attribute '_trainer'", and `self.dtype` gave
    float32 whatever the module was about to build; both now say what `self.hparams` there says."""

    class Early(TrainModule):
        def __init__(self):
            getattr(self, name)
            super().__init__()

    with pytest.raises(AttributeError, match=rf"Early\.{name} before super\(\)\.__init__\(\)") as err:
        Early()
    assert "call super().__init__() first thing in Early.__init__" in str(err.value)
    assert "_trainer" not in str(err.value)


# ---------------------------------------------------------------- load_from_checkpoint's keywords
class Wider(Base):
    """Base with one more layer: a checkpoint of Base lacks its weights."""

    def __init__(self, hidden: int = 8, lr: float = 0.1):
        super().__init__(hidden, lr)
        self.extra = nn.Linear(3, 3)


@pytest.fixture
def base_checkpoint(tmp_path):
    t = quiet_trainer(tmp_path, max_epochs=1)
    module = Base(hidden=5)
    t.fit(module, make_batches())
    return t.save_checkpoint(tmp_path / "saved"), module


def test_load_from_checkpoint_accepts_lightnings_map_location(base_checkpoint):
    path, module = base_checkpoint
    loaded = Base.load_from_checkpoint(path, map_location="cpu")
    a, b = weights(module), weights(loaded)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert Base.load_from_checkpoint(path, map_location={"cuda:0": "cpu"}, strict=True).hparams.hidden == 5


def test_load_from_checkpoint_with_strict_false_loads_the_matching_weights(base_checkpoint):
    path, module = base_checkpoint
    with pytest.raises(Exception, match=r"missing \(e.g. extra.bias"):
        Wider.load_from_checkpoint(path)
    with pytest.warns(UserWarning, match=r"strict=False: loaded 4 of the model's 6 weights.*extra.bias"):
        loaded = Wider.load_from_checkpoint(path, strict=False)
    assert np.array_equal(np.array(loaded.fc.weight), np.array(module.fc.weight))
    with pytest.raises(TypeError, match=r"strict='no'"):
        Base.load_from_checkpoint(path, strict="no")


class WiderNotStrict(Wider):
    def __init__(self, hidden: int = 8, lr: float = 0.1):
        super().__init__(hidden, lr)
        self.strict_loading = False


@pytest.mark.parametrize("stage", ["test", "fit"])
def test_strict_loading_false_loads_the_matching_weights_of_a_ckpt_path(base_checkpoint, tmp_path, stage):
    """Lightning's `self.strict_loading = False` (a layer added since the checkpoint) was an attribute
    nothing read: trainer.test(model, ckpt_path=...) was refused as "2 missing (e.g. extra.bias". Lightning
    2.6.6 loads the weights whose names match there, and in load_from_checkpoint, where strict=True beside
    it is refused as "in conflict with `Extra.strict_loading=False`". (Its fit then failed in torch's
    optimizer, "doesn't match the size of optimizer's group"; here it resumes, and warns that the new layer
    trains only if unfrozen in on_fit_start.)"""
    path, module = base_checkpoint
    model = WiderNotStrict(hidden=5)
    extra = np.array(model.extra.weight)
    t = quiet_trainer(tmp_path / "again", max_epochs=2)
    with pytest.warns(UserWarning, match=r"loaded 4 of the model's 6 weights.*extra.bias"):
        getattr(t, stage)(model, make_batches(), ckpt_path=path)
    if stage == "test":
        assert np.array_equal(np.array(model.fc.weight), np.array(module.fc.weight))
        assert np.array_equal(np.array(model.extra.weight), extra)
    else:
        assert t.global_step == 12  # (resumed after the 6 steps of the checkpoint's epoch)
    with pytest.warns(UserWarning, match=r"strict=False: loaded 4"):
        WiderNotStrict.load_from_checkpoint(path)
    with pytest.raises(ValueError, match=r"strict=True conflicts with WiderNotStrict.strict_loading=False"):
        WiderNotStrict.load_from_checkpoint(path, strict=True)
    with pytest.raises(TypeError, match=r"strict_loading = 'no': expected True or False"):
        model.strict_loading = "no"
    assert Base().strict_loading is True


def test_an_unknown_keyword_of_load_from_checkpoint_is_named_without_wrong_advice(base_checkpoint):
    path, _ = base_checkpoint
    with pytest.raises(TypeError, match=r"Base.__init__ takes no argument map_locaton") as err:
        Base.load_from_checkpoint(path, map_locaton="cpu")
    assert "save_hyperparameters" not in str(err.value)
    with pytest.raises(
        TypeError, match=r"Lightning's hparams_file has no counterpart here: the checkpoint holds"
    ):
        Base.load_from_checkpoint(path, hparams_file="hparams.yaml")


def test_hparams_file_on_a_checkpoint_without_hyperparameters_does_not_say_it_holds_them(tmp_path):
    """hparams_file= on a checkpoint of a module that never called save_hyperparameters (a ChordTask's, a
    TinyClassifier's) was refused saying "the checkpoint holds the hyperparameters", which it did not."""
    t = quiet_trainer(tmp_path, max_epochs=1)
    t.fit(TinyClassifier(hidden=4), make_batches())
    path = t.save_checkpoint(tmp_path / "saved")
    with pytest.raises(
        TypeError, match=r"hparams_file has no counterpart here: this checkpoint holds no"
    ) as err:
        TinyClassifier.load_from_checkpoint(path, hparams_file="hparams.yaml")
    assert "the checkpoint holds the hyperparameters" not in str(err.value)
    assert "load_from_checkpoint(path, dropout=...)" in str(err.value)  # (its first argument)


class BuildsLate(Base):
    """Lightning's `configure_model` habit: the layers are built when a stage starts, not in __init__."""

    def __init__(self, hidden: int = 8, lr: float = 0.1):
        TrainModule.__init__(self)
        self.save_hyperparameters()
        self.fc = self.out = None

    def configure_model(self):
        if self.fc is None:  # (called again in every stage)
            self.fc = nn.Linear(8, self.hparams.hidden)
            self.out = nn.Linear(self.hparams.hidden, 3)


def test_load_from_checkpoint_builds_the_layers_configure_model_makes_before_loading(tmp_path):
    t = quiet_trainer(tmp_path, max_epochs=1)
    module = BuildsLate(hidden=5)
    t.fit(module, make_batches())
    loaded = BuildsLate.load_from_checkpoint(t.save_checkpoint(tmp_path / "saved"))
    a, b = weights(module), weights(loaded)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------- bf16-mixed and float32 batch fields
class Regression(TrainModule):
    """A zero model predicting 1001 + 0: the loss against y = 1001.3 is 0.09 exactly in float32."""

    def __init__(self, kept=()):
        super().__init__()
        self.float32_batch_fields = kept
        self.fc = nn.Linear(8, 1)
        self.fc.weight, self.fc.bias = mx.zeros_like(self.fc.weight), mx.zeros_like(self.fc.bias)
        self.seen = {}

    def compute_loss(self, batch):
        self.seen.update({k: v.dtype for k, v in batch.items()})
        pred = self.fc(batch["x"])[:, 0].astype(mx.float32) + 1001.0
        return mx.mean((pred - batch["y"]) ** 2), {}

    def configure_optimizers(self):
        return optim.SGD(learning_rate=0.0)


def regression_batches():
    x = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
    return [{"x": mx.array(x), "y": mx.full((8,), 1001.3)}]


@pytest.mark.parametrize("precision", ["bf16-mixed", "bf16-true"])
def test_bf16_casts_the_batch_but_the_fields_the_module_names(tmp_path, precision):
    # bf16-true casts the batch too, as Lightning's does (HalfPrecision.convert_input): a float32 input
    # would promote the bfloat16 weights' products, running the model in float32.
    t = quiet_trainer(tmp_path, max_epochs=1, precision=precision)
    module = Regression(kept=("y",))
    t.fit(module, regression_batches(), regression_batches())  # (validation last: its batch is seen last)
    assert module.seen == {"x": mx.bfloat16, "y": mx.float32}
    assert t.history["train_loss"][-1] == pytest.approx(0.09, rel=1e-4)
    assert t.history["val_loss"][-1] == pytest.approx(0.09, rel=1e-4)
    default = Regression()  # everything cast: 1001.3 rounds to 1000 in bfloat16, in training and validation
    t = quiet_trainer(tmp_path, max_epochs=1, precision=precision)
    t.fit(default, regression_batches(), regression_batches())
    assert default.seen == {"x": mx.bfloat16, "y": mx.bfloat16}
    assert t.history["train_loss"][-1] == t.history["val_loss"][-1] == 1.0  # (1001 - 1000)²


@pytest.mark.parametrize("kept", [("target",), "target"], ids=["tuple", "one name"])
def test_a_float32_batch_field_the_batch_lacks_is_named(tmp_path, kept):
    # One name given as a str is that name, not its letters.
    t = quiet_trainer(tmp_path, max_epochs=1, precision="bf16-mixed")
    with pytest.raises(TypeError, match=r"float32_batch_fields names 'target'.*fields \['x', 'y'\]"):
        t.fit(Regression(kept=kept), regression_batches())


# ---------------------------------------------------------------- MLX's compile bug, named
class WeightedWithCount(TrainModule):
    """The same batch-only expression (Σ w) in the loss and in a returned metric."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 1)

    def compute_loss(self, batch):
        err = (self.fc(batch["x"])[:, 0] - batch["y"]) ** 2
        return mx.sum(err * batch["w"]) / mx.sum(batch["w"]), {"sum_w": mx.sum(batch["w"])}

    def configure_optimizers(self):
        return optim.SGD(learning_rate=0.1)


def test_mlx_compile_bug_is_named_with_its_workarounds(tmp_path):
    x = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
    batches = [{"x": mx.array(x), "y": mx.full((16,), 3.0), "w": mx.ones((16,))}]
    try:
        quiet_trainer(tmp_path, max_epochs=1).fit(WeightedWithCount(), batches)
    except RuntimeError as err:  # (an MLX without the bug trains)
        assert "bug in MLX's compiler" in str(err) and "Trainer(compile=False)" in str(err)
        assert "compute such a value once" in str(err).lower()
    t = quiet_trainer(tmp_path, max_epochs=1, compile=False)
    t.fit(WeightedWithCount(), batches)
    assert np.isfinite(t.history["train_loss"][-1])


class RowAndColumnAccuracy(TrainModule):
    """Two metrics that are one expression at batch size 1: argmax along the rows of a [B, B] matrix and of
    its transpose (as a contrastive loss's two accuracies were)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def compute_loss(self, batch):
        logits = self.fc(batch["x"]) @ batch["x"].T
        labels = mx.arange(logits.shape[0])
        return mx.mean(logits**2), {
            "rows": mx.mean(mx.argmax(logits, axis=1) == labels),
            "columns": mx.mean(mx.argmax(logits.T, axis=1) == labels),
        }

    def configure_optimizers(self):
        return optim.SGD(learning_rate=0.1)


def test_mlx_compile_bug_from_two_metrics_equal_at_one_shape_is_named_so(tmp_path):
    """The message used to name only a batch expression in both loss and metric, which this step has not."""
    x = np.random.default_rng(0).standard_normal((1, 8)).astype(np.float32)
    try:
        quiet_trainer(tmp_path, max_epochs=1).fit(RowAndColumnAccuracy(), [{"x": mx.array(x)}])
    except RuntimeError as err:  # (an MLX without the bug trains)
        assert "bug in MLX's compiler" in str(err) and "same at this batch's shape" in str(err)
        assert "at batch size 1" in str(err)


def test_reading_the_epoch_or_step_inside_a_compiled_step_warns_that_it_is_the_traces(tmp_path):
    """Lightning's warm-up idiom `beta = min(1, self.current_epoch / 2)` in training_step: compiled, the step's
    Python runs once, so beta stayed 0 for every step and nothing said so."""

    class WarmUp(TinyClassifier):
        def compute_loss(self, batch):
            loss, metrics = super().compute_loss(batch)
            beta = min(1.0, self.current_epoch / 2) + 0 * self.global_step
            return loss * beta, metrics

    def fit(compile):
        return _compiled_step_read_warnings(tmp_path, WarmUp(), compile, make_batches(32, 16), max_epochs=2)

    said = fit(True)
    assert len(said) == 2  # once for each of current_epoch and global_step, not every step
    assert (
        "reads self.current_epoch inside its compiled step" in said[0] and "Trainer(compile=False)" in said[0]
    )
    assert fit(False) == []  # eager: read afresh every step, as in Lightning


def _compiled_step_read_warnings(tmp_path, model, compile, batches, **limits) -> list[str]:
    """The warnings of a quiet fit that say a step count was read inside the compiled step."""
    import warnings as _warnings

    from audiotrain import Trainer

    trainer = Trainer(
        compile=compile,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        **limits,
    )
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        trainer.fit(model, batches)
    return [str(w.message) for w in caught if "inside its compiled step" in str(w.message)]


def test_a_step_count_read_in_on_after_optimizer_step_warns_as_in_compute_loss(tmp_path):
    """A DINO/BYOL teacher's EMA momentum scheduled from self.global_step in on_after_optimizer_step (the
    compiled hook after the update) kept the trace's value for every step without a word; it now warns as
    the same read in compute_loss does."""
    import math

    class Scheduled(TinyClassifier):
        def on_after_optimizer_step(self):
            momentum = 1 - 0.01 * (math.cos(math.pi * self.global_step / 4) + 1) / 2
            self.fc2.bias = self.fc2.bias * momentum

    def fit(compile):
        return _compiled_step_read_warnings(tmp_path, Scheduled(), compile, make_batches(48, 16), max_steps=3)

    said = fit(True)
    assert len(said) == 1 and "reads self.global_step inside its compiled step" in said[0]
    assert "in on_train_batch_start, frozen" in said[0]  # (a step's count: set before each batch)
    assert fit(False) == []  # eager: read afresh every step


def test_a_datamodule_saves_its_hyperparameters_as_lightnings_and_the_loggers_get_them(tmp_path):
    from audiotrain import DataModule

    class Data(DataModule):
        def __init__(self, batch_size: int = 16, root: str = "data", cache=None):
            super().__init__()
            self.save_hyperparameters(ignore=["cache"])

        def train_dataloader(self):
            return make_batches(32, self.hparams.batch_size)

    data = Data(batch_size=8)
    assert data.hparams == {"batch_size": 8, "root": "data"} and data.hparams.batch_size == 8
    logger = RecordingLogger()
    quiet_trainer(tmp_path, max_epochs=1, logger=logger).fit(TinyClassifier(), datamodule=data)
    logged = logger.hparams[-1]  # (flattened with '/', as every logger gets the config)
    assert {k: logged[k] for k in logged if k.startswith("datamodule_hparams/")} == {
        "datamodule_hparams/batch_size": 8,
        "datamodule_hparams/root": "data",
    }
    with pytest.raises(ValueError, match="call it inside"):
        data.save_hyperparameters()


def test_save_hyperparameters_takes_lightnings_logger_and_frame(tmp_path):
    import inspect

    from audiotrain import DataModule

    class Quiet(Base):  # the lightning-hydra-template's modules: save_hyperparameters(logger=False)
        def __init__(self, hidden: int = 8, lr: float = 0.1, net=None):
            TrainModule.__init__(self)
            self.save_hyperparameters(logger=False, ignore=["net"])
            self.fc, self.out = nn.Linear(8, hidden), nn.Linear(hidden, 3)

    class Data(DataModule):
        def __init__(self, batch_size: int = 16):
            super().__init__()
            self._record()

        def _record(self):  # a helper: the __init__ is found from the frame given
            self.save_hyperparameters(frame=inspect.currentframe().f_back, logger=False)

        def train_dataloader(self):
            return make_batches(32, self.hparams.batch_size)

    module, data = Quiet(hidden=4), Data(batch_size=8)
    assert module.hparams == {"hidden": 4, "lr": 0.1} and data.hparams == {"batch_size": 8}
    logger = RecordingLogger()
    t = quiet_trainer(tmp_path, max_epochs=1, logger=logger)
    t.fit(module, datamodule=data)
    assert not any(k.startswith(("hparams/", "datamodule_hparams/")) for k in logger.hparams[-1])
    assert (
        Quiet.load_from_checkpoint(t.save_checkpoint(tmp_path / "saved")).hparams.hidden == 4
    )  # still saved
    with pytest.raises(TypeError, match=r"frame=\.\.\.\): expected a frame"):
        module.save_hyperparameters(frame="here")
    with pytest.raises(TypeError, match=r"logger=\.\.\.\): expected True or False, got 'no'"):
        Data().save_hyperparameters(logger="no")


def test_a_datamodule_takes_a_config_dict_paths_and_an_hparams_assignment():
    import argparse
    from pathlib import Path

    from audiotrain import DataModule

    class FromConfig(DataModule):
        def __init__(self, config):
            super().__init__()
            self.save_hyperparameters(config)

    class WithPath(DataModule):
        def __init__(self, root: Path):
            super().__init__()
            self.save_hyperparameters()

    assert FromConfig({"batch_size": 4}).hparams.batch_size == 4
    assert FromConfig(argparse.Namespace(batch_size=2)).hparams == {"batch_size": 2}
    assert WithPath(Path("/data/songs")).hparams.root == "/data/songs"
    plain = DataModule()
    plain.hparams = {"lr": 0.1}
    assert plain.hparams.lr == 0.1


def test_a_checkpoint_loaded_before_any_stage_is_what_validate_scores(tmp_path):
    """The seed's manual checkpoint management: load_checkpoint on a new Trainer, then validate(); the
    load was kept for the next fit and validate scored the new module's own weights."""
    from audiotrain import Trainer

    trainer = quiet_trainer(tmp_path, max_epochs=2, enable_checkpointing=True)
    module = TinyClassifier()
    trainer.fit(module, make_batches(32))
    (trained,) = trainer.validate(module, make_batches(16, seed=1))
    fresh = Trainer(enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path / "b")
    fresh.load_checkpoint(tmp_path / "checkpoints" / "last")
    (loaded,) = fresh.validate(TinyClassifier(), make_batches(16, seed=1))
    assert loaded["val_loss"] == pytest.approx(trained["val_loss"])


def test_reported_metrics_write_to_yaml_and_ints_answer_item_too(tmp_path):
    import yaml

    t = quiet_trainer(tmp_path, max_epochs=1)
    t.fit(TinyClassifier(), make_batches(32), make_batches(16, seed=1))
    assert {k: v.item() for k, v in t.callback_metrics.items()}  # (skipped_steps, an int, too)
    (scores,) = t.validate(t.module, make_batches(16, seed=1))
    assert yaml.safe_load(yaml.safe_dump(scores)) == pytest.approx(dict(scores))
    t.callback_metrics |= {"x": 1.0}
    assert t.callback_metrics["x"].item() == 1.0


def test_every_reported_metric_writes_to_yaml_as_a_plain_number_and_answers_item(tmp_path):
    """callback_metrics holds ints (skipped_steps) too; yaml.dump (not only safe_dump) writes plain numbers,
    and a callback's own `metrics = trainer.callback_metrics` keeps `.item()` for what it adds."""
    import yaml

    t = quiet_trainer(tmp_path, max_epochs=1)
    t.fit(TinyClassifier(), make_batches(32), make_batches(16, seed=1))
    plain = {k: v.item() for k, v in t.callback_metrics.items()}
    assert type(plain["skipped_steps"]) is int and type(plain["val_loss"]) is float
    assert t.callback_metrics["val_loss"].tolist() == plain["val_loss"]
    assert yaml.safe_load(yaml.safe_dump(t.callback_metrics)) == plain
    (scores,) = t.test(t.module, make_batches(16, seed=1))
    assert "!!python" not in yaml.dump(scores) and yaml.safe_load(yaml.dump(scores)) == dict(scores)
    metrics = t.callback_metrics
    metrics |= {"merged": 1.0}
    copied = metrics.copy()
    copied["copied"] = 2.0
    assert metrics.setdefault("defaulted", 3).item() == 3
    assert (metrics["merged"].item(), copied["copied"].item()) == (1.0, 2.0)
    metrics["flag"] = True  # (a bool stays a bool: yaml writes true)
    assert metrics["flag"] is True


# ---------------------------------------------------------------- freeze() / unfreeze() as Lightning's
def trainable(module):
    return sorted(name for name, _ in tree_flatten(module.trainable_parameters()))


def test_freeze_without_arguments_is_lightnings_inference_idiom(tmp_path):
    t = quiet_trainer(tmp_path, max_epochs=1)
    t.fit(TinyClassifier(dropout=0.5, batchnorm=True), make_batches())
    path = t.save_checkpoint(tmp_path / "saved")
    model = TinyClassifier.load_from_checkpoint(path, dropout=0.5, batchnorm=True)
    model.train()  # (as a module built to train would be)
    assert model.freeze() is model
    assert not model.training and not model.drop.training and trainable(model) == []
    x = mx.ones((4, 8))
    assert bool(mx.array_equal(model(x), model(x)))  # Dropout off, BatchNorm on its running statistics
    model.unfreeze()
    assert model.training and model.drop.training and model.norm.training
    assert "norm.running_mean" not in trainable(model) and "fc1.weight" in trainable(model)


def test_freeze_with_mlxs_arguments_keeps_mlxs_meaning_and_the_mode(tmp_path):
    model = TinyClassifier(batchnorm=True)
    model.freeze(keys=["weight"], recurse=True)
    assert model.training and "fc1.weight" not in trainable(model) and "fc1.bias" in trainable(model)
    model.unfreeze()
    model.freeze(keys=["weight"])  # MLX's default recurse=True: every submodule's weight, not the root's only
    names = trainable(model)
    assert not [n for n in names if n.endswith("weight")] and "fc1.bias" in names and "fc2.bias" in names
    model.unfreeze(recurse=True)
    assert model.training and "fc1.weight" in trainable(model)
    model.eval()
    model.freeze(recurse=True)
    model.unfreeze(strict=False)
    assert not model.training and "fc1.weight" in trainable(model)
    model.train()
    model.fc1.freeze()  # a submodule's: MLX's, mode untouched
    model.fc2.unfreeze()
    assert model.training and model.fc1.training and "fc1.weight" not in trainable(model)

    class Staged(TinyClassifier):  # the Trainer sets the trainable set with freeze(keys=...) on the root
        def on_train_epoch_start(self, epoch):
            (self.fc1.unfreeze if epoch else self.fc1.freeze)()
            self.modes.append(self.training)

    staged = Staged()
    staged.modes = []
    quiet_trainer(tmp_path, max_epochs=2).fit(staged, make_batches())
    assert staged.modes == [True, True] and staged.training and "fc1.weight" in trainable(staged)


class ManyLayers(TrainModule):
    """Many small layers: each draws its initial weights from MLX's global key, which load_from_checkpoint
    replaces before anything evaluates them."""

    def __init__(self, layers: int = 60):
        super().__init__()
        self.save_hyperparameters()
        self.layers = [nn.Linear(4, 4) for _ in range(layers)]

    def compute_loss(self, batch):
        x = batch
        for layer in self.layers:
            x = layer(x)
        return mx.mean(x**2), {}

    def configure_optimizers(self):
        return optim.SGD(learning_rate=0.01)


def _resident_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_loading_a_checkpoint_again_and_again_does_not_grow_memory(tmp_path):
    # The replaced initial weights left the key splits that drew them pending in the random key's graph:
    # about 2 KB a layer a load, kept until the process exits (a service loading per request grew).
    t = quiet_trainer(tmp_path, max_epochs=1)
    t.fit(ManyLayers(), [mx.ones((2, 4))])
    path = t.save_checkpoint(tmp_path / "saved")
    for _ in range(20):  # (allocator warm-up)
        ManyLayers.load_from_checkpoint(path)
    before = _resident_mb()
    for _ in range(150):
        ManyLayers.load_from_checkpoint(path)
    assert _resident_mb() - before < 6  # (about 40 MB without evaluating the key)


class ClassWeightedClassifier(TinyClassifier):
    """A weighted cross-entropy whose class weights are torch's buffer (rare classes weigh more)."""

    def __init__(self, class_weights):
        super().__init__()
        self.register_buffer("class_weights", np.asarray(class_weights, np.float32))

    def compute_loss(self, batch):
        x, y = batch
        per_sample = nn.losses.cross_entropy(self(x), y, weights=self.class_weights[y])
        return mx.sum(per_sample) / mx.sum(self.class_weights[y])


def test_class_weights_held_by_register_buffer_are_saved_and_never_trained(tmp_path):
    """A torch user's ``self.register_buffer("class_weights", w)`` for a weighted cross-entropy had no
    counterpart; the ``self.class_weights = mx.array(w)`` an MLX module takes instead is a parameter, and
    training moved the weights (to negative ones: the loss divides by their sum). As a buffer they stay as
    given, also after Lightning's `unfreeze()`, and `state_dict()` (the checkpoint) holds them."""
    given = [0.5, 1.0, 4.0]
    module = ClassWeightedClassifier(given)
    before = weights(module)["fc2.weight"]
    quiet_trainer(tmp_path, max_epochs=3).fit(module, make_batches())
    np.testing.assert_array_equal(np.array(module.class_weights), given)
    assert not np.array_equal(weights(module)["fc2.weight"], before)  # (the rest trained)
    module.unfreeze()
    assert "class_weights" not in dict(tree_flatten(module.trainable_parameters()))
    np.testing.assert_array_equal(np.array(module.state_dict()["class_weights"]), given)
    with pytest.raises(ValueError, match=r"register_buffer\('cache', \.\.\., persistent=False\)"):
        module.register_buffer("cache", np.zeros(3), persistent=False)


class ScaledHead(nn.Module):
    """A torch port's plain submodule with a buffer: torch's `self.register_buffer("scale", s)` in it."""

    def __init__(self, scale):
        super().__init__()
        self.fc = nn.Linear(16, 3)
        audiotrain.register_buffer(self, "scale", np.asarray(scale, np.float32))

    def __call__(self, x):
        return self.fc(x) * self.scale


def test_a_plain_submodule_holds_a_buffer_with_audiotrain_register_buffer(tmp_path):
    """`register_buffer` is the TrainModule's: a torch port's plain nn.Module submodule calling
    `self.register_buffer(...)` got a bare AttributeError, with no way to hold a buffer there but MLX's
    freeze. `audiotrain.register_buffer(module, name, value)` does there what the method does: frozen
    through a fit and Lightning's `unfreeze()`, held in `state_dict()`."""
    given = [1.0, 2.0, 0.5]

    class WithHead(TinyClassifier):
        def __init__(self):
            super().__init__()
            self.fc2 = ScaledHead(given)

    module = WithHead()
    before = weights(module)["fc2.fc.weight"]
    quiet_trainer(tmp_path, max_epochs=2).fit(module, make_batches())
    np.testing.assert_array_equal(np.array(module.fc2.scale), given)
    assert not np.array_equal(weights(module)["fc2.fc.weight"], before)  # (the rest trained)
    module.unfreeze()
    assert "fc2.scale" not in dict(tree_flatten(module.trainable_parameters()))
    np.testing.assert_array_equal(np.array(module.state_dict()["fc2.scale"]), given)
    with pytest.raises(ValueError, match=r"ScaledHead.register_buffer\('c', \.\.\., persistent=False\)"):
        audiotrain.register_buffer(module.fc2, "c", np.zeros(3), persistent=False)


def test_configure_optimizers_returning_none_says_a_return_is_missing(tmp_path):
    """`configure_optimizers` without its `return` said only "must return an OptimizerConfig, ...; got
    NoneType". Lightning 2.6.6 warns "`LightningModule.configure_optimizers` returned `None`, this fit will
    run with no optimizer" and runs every batch (global_step 4 of 4) with the weights unchanged: here it
    stays an error (a fit that changes nothing), which now says what happened and what to do instead."""
    with pytest.raises(
        TypeError, match=r"configure_optimizers returned None \(is a `return` missing\?\)"
    ) as e:
        quiet_trainer(tmp_path, max_epochs=1).fit(Returns(lambda m: None), make_batches())
    assert "Lightning warns and fits without an optimizer" in str(e.value)
    assert "trainer.validate or trainer.test" in str(e.value)


def test_a_trainer_can_be_attached_by_assignment_as_in_lightning(tmp_path):
    """`module.trainer = trainer` (Lightning's setter, used to try a hook outside fit) stopped with MLX's
    "AttributeError: property 'trainer' of 'TinyClassifier' object has no setter". Lightning 2.6.6: the module
    then reads the Trainer's logger and loggers, a TrainModule child gets the Trainer too, and `= None`
    detaches (current_epoch 0 again)."""
    from audiotrain.loggers import CSVLogger

    class Outer(TinyClassifier):
        def __init__(self):
            super().__init__()
            self.inner = TinyClassifier()

    first, second = CSVLogger(save_dir=tmp_path), CSVLogger(save_dir=tmp_path)
    module = Outer()
    assert module.logger is None and module.loggers == []
    trainer = quiet_trainer(tmp_path, logger=[first, second])
    module.trainer = trainer
    assert module.trainer is trainer and module.inner.trainer is trainer
    assert module.logger is first and module.loggers == [first, second]
    module.trainer = None
    assert module.logger is None and module.current_epoch == 0
    with pytest.raises(RuntimeError, match="only available once the module is attached"):
        _ = module.inner.trainer


def test_fit_gives_its_trainer_to_a_trainmodule_inside_the_module(tmp_path):
    """A TrainModule kept inside another (`self.inner = Encoder()`) had no Trainer during fit: its own
    `self.trainer` raised "only available once the module is attached" in a hook the outer one called. In
    Lightning 2.6.6 the inner LightningModule has the fit's Trainer from the start of fit and after it."""

    class Outer(TinyClassifier):
        def __init__(self):
            super().__init__()
            self.inner = TinyClassifier()
            self.inner_had_it = None

        def on_train_start(self):
            self.inner_had_it = self.inner.trainer is self.trainer

    module = Outer()
    trainer = quiet_trainer(tmp_path, max_steps=1)
    trainer.fit(module, make_batches())
    assert module.inner_had_it is True
    assert module.inner.trainer is trainer


class ReplacesItsDropout(TinyClassifier):
    """At the second epoch's start, the dropout layer is replaced by one in eval mode (a pretrained block
    swapped in, frozen to eval)."""

    def __init__(self):
        mx.random.seed(0)
        super().__init__(dropout=0.5)

    def on_train_epoch_start(self, epoch):
        if epoch == 1:
            self.drop = nn.Dropout(0.5)
            self.drop.eval()


def test_a_submodule_replaced_at_an_epoch_start_runs_in_its_own_mode(tmp_path):
    """The compiled step was keyed by the `training` flags of the submodules it was built with: a dropout
    replaced by one in eval mode still dropped (the replaced one's mode), and the weights differed from the
    eager fit's, silently (Lightning runs the new layer in its own mode). Now the submodules are walked again
    at each epoch start."""
    trained = {}
    for compile in (True, False):
        mx.random.seed(1)
        model = ReplacesItsDropout()
        trainer = quiet_trainer(
            tmp_path / str(compile), max_epochs=2, compile=compile, enable_model_summary=False
        )
        trainer.fit(model, make_batches(n=32))
        trained[compile] = weights(model)
    for name, value in trained[True].items():
        np.testing.assert_array_equal(np.array(value), np.array(trained[False][name]), err_msg=name)
