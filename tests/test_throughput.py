"""`callbacks.ThroughputMonitor`: Lightning's batches, samples and items per second of each stage, logged
as ``<stage>/<metric>``. The clock is a fake one the tests advance, so the rates are exact."""

import audiotrain  # noqa: F401  (before mlx)
from audiotrain.train import Callback, ThroughputMonitor
from audiotrain.train.callbacks import throughput

import mlx.core as mx
import pytest
from tasks import RecordingLogger, TinyClassifier, make_batches, quiet_trainer


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def perf_counter(self):
        return self.now


class Ticks(Callback):
    """Advances the clock: `train` seconds a training batch, `val` a validation batch (or `val(trainer)`;
    listed before the monitor, so each batch has taken its time when the monitor reads the clock)."""

    def __init__(self, clock, train=1.0, val=10.0):
        self.clock, self.train, self.val = clock, train, val

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.clock.now += self.train

    def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.clock.now += self.val(trainer) if callable(self.val) else self.val


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(throughput, "time", fake)
    return fake


def by_key(logger, key):
    return [(step, m[key]) for step, m in logger.metrics if key in m]


def test_training_rates_are_exact_and_leave_the_validations_out(tmp_path, clock):
    logger = RecordingLogger()
    monitor = ThroughputMonitor(
        batch_size_fn=lambda batch: batch[0].shape[0], length_fn=lambda b: 2.5, window_size=3
    )
    trainer = quiet_trainer(
        tmp_path, max_epochs=2, logger=logger, log_every_n_steps=1, callbacks=[Ticks(clock), monitor]
    )
    trainer.fit(TinyClassifier(), make_batches(64, 16), make_batches(48, 16, seed=1))  # 4 batches an epoch
    # 8 batches of 16 samples, one second each; the two validations' 60 s left out of training's time
    assert by_key(logger, "train/batches")[-1] == (8, 8.0)
    assert by_key(logger, "train/samples")[-1] == (8, 128.0)
    assert by_key(logger, "train/lengths")[-1] == (8, 20.0)  # (length_fn's items, summed over the batches)
    assert by_key(logger, "train/time")[-1] == (8, pytest.approx(8.0))
    assert by_key(logger, "train/device/batches_per_sec")[-1] == (8, pytest.approx(1.0))
    assert by_key(logger, "train/device/samples_per_sec")[-1] == (8, pytest.approx(16.0))
    assert by_key(logger, "train/device/items_per_sec")[-1] == (8, pytest.approx(2.5))  # 2.5 a 1-s batch
    # none until the window of 3 batches is full; no job-wide rates in one process
    assert [step for step, _ in by_key(logger, "train/device/batches_per_sec")] == [3, 4, 5, 6, 7, 8]
    assert "train/batches_per_sec" not in logger.keys()
    # validation: 3 batches of 16, 10 s each, logged at the validation's count of batches, from 1 in each
    # validation of the fit: Lightning 2.6.6 logged validate/batches at steps [1, 2, 3, 1, 2, 3] (it was
    # counted on here, 4, 5, 6, for the second); the rates start afresh too
    assert by_key(logger, "validate/batches") == [(1, 1.0), (2, 2.0), (3, 3.0), (1, 1.0), (2, 2.0), (3, 3.0)]
    assert by_key(logger, "validate/device/samples_per_sec") == [
        (3, pytest.approx(1.6)),
        (3, pytest.approx(1.6)),
    ]
    assert monitor.metrics["train"]["train/samples"] == 128.0


def test_the_default_sanity_check_is_left_out_and_each_validation_measured_afresh(tmp_path, clock):
    # The Trainer's default num_sanity_val_steps=2 (quiet_trainer's 0 hid it): measuring the sanity check
    # raised KeyError 'validate' at its first batch. The second validation (10 s a batch, the first's 1 s)
    # rated against the first's window logged a negative rate.
    logger = RecordingLogger()
    monitor = ThroughputMonitor(batch_size_fn=lambda batch: batch[0].shape[0], window_size=3)
    ticks = Ticks(clock, val=lambda trainer: 1.0 if trainer.current_epoch == 0 else 10.0)
    trainer = quiet_trainer(
        tmp_path,
        max_epochs=2,
        logger=logger,
        log_every_n_steps=1,
        num_sanity_val_steps=2,
        callbacks=[ticks, monitor],
    )
    trainer.fit(TinyClassifier(), make_batches(64, 16), make_batches(48, 16, seed=1))
    # (Lightning 2.6.6 with its sanity check of 2 batches: steps [1, 2, 3, 1, 2, 3] too)
    assert by_key(logger, "validate/batches") == [(1, 1.0), (2, 2.0), (3, 3.0), (1, 1.0), (2, 2.0), (3, 3.0)]
    assert by_key(logger, "validate/device/batches_per_sec") == [
        (3, pytest.approx(1.0)),
        (3, pytest.approx(0.1)),
    ]


def test_the_separator_joins_every_name_and_no_lengths_without_a_length_fn(tmp_path, clock):
    logger = RecordingLogger()
    monitor = ThroughputMonitor(batch_size_fn=lambda batch: batch[0].shape[0], window_size=2, separator=".")
    trainer = quiet_trainer(
        tmp_path, max_epochs=1, logger=logger, log_every_n_steps=1, callbacks=[Ticks(clock), monitor]
    )
    trainer.fit(TinyClassifier(), make_batches(64, 16))
    assert {k for k in logger.keys() if k.startswith("train.")} == {
        "train.time",
        "train.batches",
        "train.samples",
        "train.device.batches_per_sec",
        "train.device.samples_per_sec",
    }


def test_without_a_logger_nothing_reaches_logged_metrics(tmp_path, clock):
    # (Lightning's log_metrics returns at once without loggers; the monitor's own `metrics` keeps them)
    monitor = ThroughputMonitor(batch_size_fn=lambda batch: batch[0].shape[0], window_size=2)
    trainer = quiet_trainer(
        tmp_path, max_epochs=1, logger=False, log_every_n_steps=1, callbacks=[Ticks(clock), monitor]
    )
    trainer.fit(TinyClassifier(), make_batches(64, 16))
    assert not any(k.startswith("train/") for k in trainer.logged_metrics)
    assert monitor.metrics["train"]["train/batches"] == 4.0


def test_accumulation_logs_at_the_stepped_batches_and_evaluation_every_n_batches(tmp_path, clock):
    logger = RecordingLogger()
    monitor = ThroughputMonitor(batch_size_fn=lambda batch: mx.array(batch[0].shape[0]), window_size=2)
    trainer = quiet_trainer(
        tmp_path,
        max_epochs=1,
        logger=logger,
        log_every_n_steps=1,
        accumulate_grad_batches=2,
        callbacks=[Ticks(clock), monitor],
    )
    module = TinyClassifier()
    trainer.fit(module, make_batches(96, 16))  # 6 batches: 3 optimizer steps
    assert by_key(logger, "train/batches") == [(1, 2.0), (2, 4.0), (3, 6.0)]
    logger.metrics.clear()
    trainer.log_every_n_steps = 2
    trainer.test(module, make_batches(96, 16, seed=1))  # 6 test batches: logged at every 2nd
    assert by_key(logger, "test/batches") == [(2, 2.0), (4, 4.0), (6, 6.0)]
    assert "train/batches" not in logger.keys()


def test_the_job_wide_rates_multiply_one_process_by_the_processes():
    rates = throughput.Throughput(world_size=2, window_size=2)
    rates.update(time=1.0, batches=1, samples=8, lengths=3.0, flops_per_batch=100.0)
    rates.update(time=3.0, batches=3, samples=24, lengths=9.0, flops_per_batch=100.0)
    metrics = rates.compute()
    assert metrics["device/batches_per_sec"] == 1.0 and metrics["batches_per_sec"] == 2.0
    assert metrics["device/samples_per_sec"] == 8.0 and metrics["samples_per_sec"] == 16.0
    assert metrics["device/items_per_sec"] == 3.0 and metrics["items_per_sec"] == 6.0  # (9 - 3) / 2 s
    assert metrics["device/flops_per_sec"] == 50.0 and metrics["flops_per_sec"] == 100.0


def test_refusals_name_the_argument():
    with pytest.raises(TypeError, match="batch_size_fn"):
        ThroughputMonitor(batch_size_fn=16)
    with pytest.raises(TypeError, match="length_fn"):
        ThroughputMonitor(batch_size_fn=len, length_fn=3)
    with pytest.raises(ValueError, match="window_size"):
        ThroughputMonitor(batch_size_fn=len, window_size=1)
    with pytest.raises(ValueError, match="separator"):
        ThroughputMonitor(batch_size_fn=len, separator="")


@pytest.mark.parametrize(
    "size, error, message",
    [
        ("sixteen", TypeError, "batch_size_fn returned 'sixteen'; expected a number"),
        (-1, ValueError, r"batch_size_fn returned -1; expected a number >= 0"),
    ],
)
def test_a_batch_size_fn_that_returns_no_count_is_named(tmp_path, size, error, message):
    monitor = ThroughputMonitor(batch_size_fn=lambda batch: size)
    trainer = quiet_trainer(tmp_path, max_epochs=1, logger=RecordingLogger(), callbacks=[monitor])
    with pytest.raises(error, match=message):
        trainer.fit(TinyClassifier(), make_batches(32, 16))


@pytest.mark.parametrize("stage", ["validate", "test", "predict"])
def test_a_second_run_of_an_evaluation_stage_goes_on_counting_and_logs_at_later_steps(tmp_path, clock, stage):
    """Lightning 2.6.6 (its test_throughput_monitor_eval; measured): two `trainer.validate(...)` of 6 batches,
    logged every 3, give steps and batches 3, 6, 9, 12 ("the step doesn't repeat"), each run's time its own.
    The second run logged at steps 3 and 6 again, which a logger such as wandb drops as steps gone back."""

    class Logits(TinyClassifier):
        def predict_step(self, batch, batch_idx=None):
            return self(batch[0])

    class Second(Callback):  # (before the monitor: each batch has taken its second when it reads the clock)
        def on_validation_batch_end(self, *args):
            clock.now += 1.0

        on_test_batch_end = on_predict_batch_end = on_validation_batch_end

    logger = RecordingLogger()
    monitor = ThroughputMonitor(batch_size_fn=lambda batch: 3, window_size=3)
    trainer = quiet_trainer(tmp_path, logger=logger, log_every_n_steps=3, callbacks=[Second(), monitor])
    module = Logits()
    for _ in range(2):
        getattr(trainer, stage)(module, make_batches(96, 16))
    assert by_key(logger, f"{stage}/batches") == [(3, 3.0), (6, 6.0), (9, 9.0), (12, 12.0)]
    assert by_key(logger, f"{stage}/samples") == [(3, 9.0), (6, 18.0), (9, 27.0), (12, 36.0)]
    assert [t for _, t in by_key(logger, f"{stage}/time")] == [3.0, 6.0, 3.0, 6.0]  # (each run's clock)
    assert [r for _, r in by_key(logger, f"{stage}/device/batches_per_sec")] == [1.0] * 4


def test_counts_of_ints_are_logged_as_ints(tmp_path, clock):
    """Lightning 2.6.6 logs `train/batches` and `train/samples` as the ints counted (its test_throughput_monitor
    expects `"train|batches": 1`; a CSVLogger writes 2, not 2.0); a float length_fn's lengths stay floats."""
    logger = RecordingLogger()
    monitor = ThroughputMonitor(
        batch_size_fn=lambda batch: mx.array(batch[0].shape[0]), length_fn=lambda batch: 0.5, window_size=2
    )
    trainer = quiet_trainer(
        tmp_path, max_epochs=1, logger=logger, log_every_n_steps=1, callbacks=[Ticks(clock), monitor]
    )
    trainer.fit(TinyClassifier(), make_batches(32, 16))
    assert by_key(logger, "train/batches") == [(1, 1), (2, 2)]
    assert all(type(v) is int for _, v in by_key(logger, "train/batches") + by_key(logger, "train/samples"))
    assert by_key(logger, "train/samples") == [(1, 16), (2, 32)]
    assert by_key(logger, "train/lengths") == [(1, 0.5), (2, 1.0)]


def test_a_validate_after_a_fit_logs_at_its_own_steps_its_counts_going_on(tmp_path, clock):
    """Lightning 2.6.6 (measured: fit of 2 epochs with 3 validation batches each, then two validate runs of 2
    batches, logged every batch): the fit's validations log steps 1, 2, 3 twice; the validate runs steps 1, 2
    then 3, 4 (their own loop's batches), their counts going on from the fit's last validation: batches 4, 5
    then 6, 7. The validate runs logged at the counts' steps here (4, 5; 6, 7)."""
    logger = RecordingLogger()
    monitor = ThroughputMonitor(batch_size_fn=lambda batch: 1)
    trainer = quiet_trainer(
        tmp_path, max_epochs=2, logger=logger, log_every_n_steps=1, callbacks=[Ticks(clock), monitor]
    )
    module = TinyClassifier()
    trainer.fit(module, make_batches(32, 16), make_batches(48, 16))
    assert by_key(logger, "validate/batches") == [(1, 1), (2, 2), (3, 3)] * 2
    logger.metrics.clear()
    trainer.validate(module, make_batches(32, 16))
    trainer.validate(module, make_batches(32, 16))
    assert by_key(logger, "validate/batches") == [(1, 4), (2, 5), (3, 6), (4, 7)]


def test_a_monitor_reused_by_a_new_trainer_logs_from_its_first_step_its_counts_going_on(tmp_path, clock):
    """Lightning 2.6.6 (measured: one monitor, two Trainers each running validate then test over 3 batches,
    logged every batch): the second Trainer's runs log at steps 1, 2, 3 again (its own loops' counts), the
    batches counted going on from the first's: 4, 5, 6. The second Trainer logged at steps 4, 5, 6 here."""
    monitor = ThroughputMonitor(batch_size_fn=lambda batch: 1)
    for first in (True, False):
        logger = RecordingLogger()
        trainer = quiet_trainer(tmp_path, logger=logger, log_every_n_steps=1, callbacks=[monitor])
        module = TinyClassifier()
        trainer.validate(module, make_batches(48, 16))
        trainer.test(module, make_batches(48, 16))
        counts = [(1, 1), (2, 2), (3, 3)] if first else [(1, 4), (2, 5), (3, 6)]
        assert by_key(logger, "validate/batches") == counts
        assert by_key(logger, "test/batches") == counts
