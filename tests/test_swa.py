"""`StochasticWeightAveraging`: Lightning's SWA callback (annealed rate, averaged weights), exact across a
resume through the checkpoint's callbacks.safetensors."""

import math
import warnings

import audiotrain  # noqa: F401  (before mlx)
from audiotrain import DataLoader, TrainModule
from audiotrain.train import (
    BackboneFinetuning,
    EMAWeightAveraging,
    StochasticWeightAveraging,
    WeightAveraging,
)
from audiotrain.train.callback import Callback
from audiotrain.train.callbacks import ModelCheckpoint
from audiotrain.train.checkpoint import CALLBACKS_FILE, CheckpointError
from audiotrain.train.schedulers import StepLRScheduler

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from exactness import assert_same_numbers
from mlx.utils import tree_flatten
from tasks import TinyClassifier, make_batches, make_data, quiet_trainer, weights


class Descends(TrainModule):
    """loss = w: every SGD update lowers w by exactly the learning rate, so w tells which rates ran."""

    def __init__(self, learning_rate=1.0):
        super().__init__()
        self.w = mx.array([0.0])
        self.learning_rate = learning_rate

    def compute_loss(self, batch):
        return mx.sum(self.w) + 0.0 * mx.mean(batch), {}

    def configure_optimizers(self):
        return optim.SGD(learning_rate=self.learning_rate)


class Record(Callback):
    """The rate each epoch trains with, and the weights at each epoch's end."""

    def __init__(self):
        self.rates, self.weights = [], []

    def on_train_epoch_start(self, trainer, module):
        self.rates.append(trainer.learning_rate())

    def on_train_epoch_end(self, trainer, module):
        self.weights.append(weights(module))


def _fit_descends(root, swa, max_epochs, learning_rate=1.0, more_callbacks=(), **trainer_args):
    record = Record()
    callbacks = [swa, record, *more_callbacks]
    trainer = quiet_trainer(root, max_epochs=max_epochs, callbacks=callbacks, **trainer_args)
    module = Descends(learning_rate)
    batches = [mx.zeros((2,))] * 4  # 4 updates an epoch
    trainer.fit(module, batches)
    return module, record


def _cos(t):
    return (1 - math.cos(math.pi * t)) / 2


@pytest.mark.parametrize("strategy, anneal", [("cos", _cos), ("linear", lambda t: t)])
def test_the_rate_anneals_per_epoch_and_the_weights_end_as_the_average(tmp_path, strategy, anneal):
    swa = StochasticWeightAveraging(
        swa_lrs=0.1, swa_epoch_start=2, annealing_epochs=3, annealing_strategy=strategy
    )
    module, record = _fit_descends(tmp_path, swa, max_epochs=6)
    assert swa.swa_start == 1 and swa.swa_end == 5  # the 2nd epoch (Lightning counts swa_epoch_start from 1)
    # SWALR stepped once an epoch: the first SWA epoch keeps the rate it started with.
    expected = [1.0] + [0.1 * anneal(t) + 1.0 * (1 - anneal(t)) for t in (0, 1 / 3, 2 / 3, 1, 1)]
    assert record.rates == pytest.approx(expected, rel=1e-6)
    # w after each epoch: 4 updates at that epoch's rate, so the compiled update used them.
    ends = -4 * np.cumsum(expected)
    np.testing.assert_allclose([r["w"][0] for r in record.weights], ends, rtol=1e-5)
    assert swa.n_averaged == 5
    assert module.w.item() == pytest.approx(np.mean(ends[1:]), rel=1e-5)  # the average, not ends[-1]


def test_the_average_is_the_mean_of_the_weights_at_each_swa_epochs_end(tmp_path):
    record = Record()
    swa = StochasticWeightAveraging(swa_lrs=0.02, swa_epoch_start=3, annealing_epochs=1)
    trainer = quiet_trainer(tmp_path, max_epochs=5, callbacks=[swa, record], seed=0)
    module = TinyClassifier()
    trainer.fit(module, make_batches(48))
    averaged = weights(module)
    for name, value in averaged.items():
        mean = np.mean([w[name] for w in record.weights[2:]], axis=0)  # epochs 2, 3, 4 (0-based)
        np.testing.assert_allclose(value, mean, rtol=1e-5, atol=1e-7, err_msg=name)
    assert not np.allclose(averaged["fc1.weight"], record.weights[-1]["fc1.weight"])


class RecordStatistics(Callback):
    """BatchNorm's running mean at each epoch's end."""

    def __init__(self):
        self.means = []

    def on_train_epoch_end(self, trainer, module):
        self.means.append(np.array(module.norm.running_mean))


def _statistics_under(module, batches):
    """BatchNorm's statistics as torch's update_bn computes them for the module's weights: the mean over the
    batches of each batch's mean and unbiased variance of the layer's input."""
    inputs = [np.array(module.fc1(x)) for x, _ in batches]
    return np.mean([h.mean(0) for h in inputs], 0), np.mean([h.var(0, ddof=1) for h in inputs], 0)


class LogsInItsStep(TinyClassifier):
    def training_step(self, batch, batch_idx):
        loss, _ = self.compute_loss(batch)
        self.log("step_loss", loss, prog_bar=True)  # (the BatchNorm pass runs the step: its logs are dropped)
        return loss


def test_batchnorms_running_statistics_are_recomputed_under_the_average_as_in_lightning(tmp_path):
    record = RecordStatistics()
    swa = StochasticWeightAveraging(swa_lrs=1e-2, swa_epoch_start=2, annealing_epochs=0)
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=[swa, record], seed=0)
    module = LogsInItsStep(batchnorm=True)
    batches = make_batches(48)
    trainer.fit(module, batches, batches[:1])  # (validated each epoch: the pass still trains its norms)
    mean, var = _statistics_under(module, batches)  # (fc1 is the average: BatchNorm's input under it)
    np.testing.assert_allclose(np.array(module.norm.running_mean), mean, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.array(module.norm.running_var), var, rtol=1e-4, atol=1e-6)
    assert module.norm.momentum == 0.1  # (restored after the pass)
    assert not np.allclose(np.mean(record.means[1:], axis=0), mean, atol=1e-4)  # not the epochs' average


def test_the_batchnorm_pass_runs_in_the_fits_precision(tmp_path):
    """Under precision="bf16-true" the pass fed the float32 batch to the bfloat16 model (the step casts it):
    the statistics came back float32, computed in float32, in a model whose fit kept them bfloat16."""
    swa = StochasticWeightAveraging(swa_lrs=1e-2, swa_epoch_start=2, annealing_epochs=0)
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=[swa], seed=0, precision="bf16-true")
    module = TinyClassifier(batchnorm=True)
    batches = make_batches(48)
    trainer.fit(module, batches)
    assert module.norm.running_mean.dtype == module.norm.running_var.dtype == mx.bfloat16
    inputs = [np.array(module.fc1(x.astype(mx.bfloat16)).astype(mx.float32)) for x, _ in batches]
    np.testing.assert_allclose(
        np.array(module.norm.running_mean.astype(mx.float32)),
        np.mean([h.mean(0) for h in inputs], 0),
        rtol=2e-2,
        atol=2e-2,
    )


@pytest.mark.parametrize(
    "start, max_epochs, first_epoch",
    # A fraction starts at epoch int(max_epochs * start) (counted from 1; Lightning's rule), the first
    # epoch where that is 0: the default 0.8 of 6 epochs averages the last 3.
    [(0.5, 4, 1), (0.75, 4, 2), (1.0, 4, 3), (0.8, 6, 3), (0.3, 4, 0), (0.0, 4, 0), (0.1, 4, 0)]
    + [(1, 4, 0), (4, 4, 3)],
)
def test_int_and_float_starts_follow_lightnings_rule(tmp_path, start, max_epochs, first_epoch):
    swa = StochasticWeightAveraging(swa_lrs=0.5, swa_epoch_start=start, annealing_epochs=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (a start in the first epoch is no late start)
        module, record = _fit_descends(tmp_path, swa, max_epochs=max_epochs)
    assert swa.swa_start == first_epoch
    # annealing_epochs=0: swa_lrs from the first SWA epoch on
    assert record.rates == [1.0] * first_epoch + [0.5] * (max_epochs - first_epoch)
    ends = [r["w"][0] for r in record.weights]
    assert swa.n_averaged == max_epochs - first_epoch
    assert module.w.item() == pytest.approx(np.mean(ends[first_epoch:]))


def test_avg_fn_replaces_the_equal_weight_mean(tmp_path):
    def ema(average, current, n_averaged):
        assert isinstance(n_averaged, mx.array)
        return 0.5 * average + 0.5 * current

    swa = StochasticWeightAveraging(swa_lrs=1.0, swa_epoch_start=1, annealing_epochs=0, avg_fn=ema)
    module, record = _fit_descends(tmp_path, swa, max_epochs=3)
    ends = [r["w"][0] for r in record.weights]  # -4, -8, -12
    assert module.w.item() == pytest.approx(0.5 * (0.5 * ends[0] + 0.5 * ends[1]) + 0.5 * ends[2])


def test_an_avg_fn_returning_another_shape_is_refused_naming_the_parameter(tmp_path):
    def summed(average, current, n_averaged):
        return mx.sum(average + current)  # (a scalar: the module would end with it as its weight)

    swa = StochasticWeightAveraging(swa_lrs=1.0, swa_epoch_start=1, annealing_epochs=0, avg_fn=summed)
    with pytest.raises(
        ValueError, match=r"avg_fn returned a shape \(\) for 'w', whose average is an mx.array"
    ):
        _fit_descends(tmp_path, swa, max_epochs=2)


def test_a_learning_rate_schedule_is_replaced_in_the_compiled_step(tmp_path):
    # rate(step) = 1 - step / 16: SWA starts in epoch 2, at step 8, from the rate of that update, 0.5.
    swa = StochasticWeightAveraging(
        swa_lrs=0.05, swa_epoch_start=3, annealing_epochs=1, annealing_strategy="linear"
    )
    module, record = _fit_descends(
        tmp_path, swa, max_epochs=4, learning_rate=optim.linear_schedule(1.0, 0.0, 16)
    )
    ends = [r["w"][0] for r in record.weights]
    np.testing.assert_allclose(ends, [-3.625, -6.25, -8.25, -8.45], rtol=1e-6)  # 4 x 0.5, then 4 x 0.05
    assert record.rates[2:] == pytest.approx([0.5, 0.05])
    assert module.w.item() == pytest.approx(-8.35, rel=1e-6)


def _fit_resumable(root, swa, ckpt_path=None, max_epochs=5, every_n_train_steps=None):
    record = Record()
    if every_n_train_steps is None:
        checkpoints = ModelCheckpoint(every_n_epochs=1, save_top_k=-1)
    else:
        checkpoints = ModelCheckpoint(every_n_train_steps=every_n_train_steps, save_top_k=-1)
    trainer = quiet_trainer(
        root, max_epochs=max_epochs, callbacks=[swa, record, checkpoints], enable_checkpointing=True, seed=0
    )
    module = ScheduledClassifier()
    trainer.fit(module, make_batches(48), ckpt_path=ckpt_path)
    return module, record


class ScheduledClassifier(TinyClassifier):
    def configure_optimizers(self):
        return optim.AdamW(learning_rate=optim.cosine_decay(1e-2, 40), weight_decay=0.01)


def _swa():
    return StochasticWeightAveraging(swa_lrs=1e-3, swa_epoch_start=2, annealing_epochs=2)


@pytest.mark.filterwarnings("ignore:resuming from")  # (the optimizer's rate is the checkpoint's)
def test_a_fit_resumed_mid_swa_ends_with_the_weights_of_an_uninterrupted_one(tmp_path):
    straight, record = _fit_resumable(tmp_path / "a", _swa())
    saved = next((tmp_path / "a" / "checkpoints").glob("epoch=2-*"))  # two epochs averaged
    assert (saved / CALLBACKS_FILE).is_file()
    # The checkpoint holds the trained weights, as in Lightning; the average is beside them.
    from audiotrain.train.checkpoint import read_arrays

    model_file = read_arrays(saved / "model.safetensors")
    np.testing.assert_array_equal(np.array(model_file["fc1.weight"]), record.weights[2]["fc1.weight"])
    resumed, resumed_record = _fit_resumable(tmp_path / "b", _swa(), ckpt_path=str(saved))
    assert resumed_record.rates == record.rates[3:]
    for name, value in weights(straight).items():
        assert_same_numbers(weights(resumed)[name], value, err_msg=name)


@pytest.mark.filterwarnings("ignore:resuming from")
def test_a_fit_resumed_inside_an_swa_epoch_ends_as_an_uninterrupted_one(tmp_path):
    # 3 batches an epoch: step 7 is the first batch of epoch 2, whose rate the resumed fit sets again.
    straight, _ = _fit_resumable(tmp_path / "a", _swa(), every_n_train_steps=7)
    saved = next((tmp_path / "a" / "checkpoints").glob("epoch=2-step=7*"))
    resumed, _ = _fit_resumable(tmp_path / "b", _swa(), ckpt_path=str(saved), every_n_train_steps=7)
    for name, value in weights(straight).items():
        assert_same_numbers(weights(resumed)[name], value, err_msg=name)


def _twice(average, current, n_averaged):
    return average + (current - average) * 2 / (n_averaged + 2)


@pytest.mark.filterwarnings("ignore:ModelCheckpoint. the resumed checkpoint")  # (another folder)
@pytest.mark.filterwarnings("ignore:resuming from")
@pytest.mark.parametrize(
    "setting, differs",
    [
        (dict(swa_lrs=5e-3), r"swa_lrs \[0\.001\] there, \[0\.005\] here"),
        (dict(swa_epoch_start=1), r"swa_start 1 there, 0 here"),
        (dict(annealing_epochs=3), r"annealing_epochs 2 there, 3 here"),
        (dict(annealing_strategy="linear"), r"annealing_strategy 'cos' there, 'linear' here"),
        (dict(avg_fn=_twice), r"avg_fn None there, 'test_swa\._twice' here"),
    ],
)
def test_resuming_with_other_swa_settings_is_refused_naming_them(tmp_path, setting, differs):
    _fit_resumable(tmp_path / "a", _swa(), max_epochs=3)
    saved = next((tmp_path / "a" / "checkpoints").glob("epoch=1-*"))
    other = StochasticWeightAveraging(
        **{**dict(swa_lrs=1e-3, swa_epoch_start=2, annealing_epochs=2), **setting}
    )
    with pytest.raises(ValueError, match=rf"other settings: {differs}"):
        _fit_resumable(tmp_path / "b", other, ckpt_path=str(saved))


@pytest.mark.filterwarnings("ignore:ModelCheckpoint. the resumed checkpoint")  # (another folder)
@pytest.mark.filterwarnings("ignore:resuming from")
def test_a_checkpoint_saved_before_swa_started_resumes_with_other_swa_settings(tmp_path):
    _fit_resumable(tmp_path / "a", _swa(), max_epochs=3)
    saved = next((tmp_path / "a" / "checkpoints").glob("epoch=0-*"))  # SWA starts in epoch 1 (index)
    other = StochasticWeightAveraging(swa_lrs=5e-3, swa_epoch_start=3, annealing_epochs=1)
    _, record = _fit_resumable(tmp_path / "b", other, ckpt_path=str(saved), max_epochs=3)
    assert other.n_averaged == 1


@pytest.mark.filterwarnings("ignore:resuming from")
def test_a_damaged_average_is_refused_naming_the_file_and_the_tensor(tmp_path):
    _fit_resumable(tmp_path / "a", _swa(), max_epochs=3)
    saved = next((tmp_path / "a" / "checkpoints").glob("epoch=1-*"))
    file = saved / CALLBACKS_FILE
    arrays = dict(mx.load(str(file)))
    key = "StochasticWeightAveraging/fc1.weight"
    nan = {**arrays, key: arrays[key] * float("nan")}
    mx.save_safetensors(str(file), nan)
    with pytest.raises(CheckpointError, match=rf"{CALLBACKS_FILE}.*{key}.*NaN"):
        _fit_resumable(tmp_path / "b", _swa(), ckpt_path=str(saved))
    mx.save_safetensors(str(file), {**arrays, key: arrays[key][:3]})
    with pytest.raises(CheckpointError, match=r"callbacks.safetensors.*'fc1.weight' of shape \(3, 8\)"):
        _fit_resumable(tmp_path / "c", _swa(), ckpt_path=str(saved))
    mx.save_safetensors(str(file), {**arrays, "Ghost/table": mx.zeros((2,))})
    with pytest.raises(
        CheckpointError, match=r"tensor 'Ghost/table' belongs to no callback of the checkpoint"
    ):
        _fit_resumable(tmp_path / "d", _swa(), ckpt_path=str(saved))
    file.unlink()  # the JSON state says an epoch is averaged: its average must be there
    with pytest.raises(
        CheckpointError, match=r"trainer_state.json .* averaged 1 epoch\(s\), but the checkpoint"
    ):
        _fit_resumable(tmp_path / "e", _swa(), ckpt_path=str(saved))


def test_a_callback_whose_state_arrays_are_not_arrays_is_refused_at_the_first_save(tmp_path):
    class Lists(Callback):
        def state_arrays(self):
            return {"table": [1.0, 2.0]}

    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[Lists()])
    trainer.fit(Descends(), [mx.zeros((2,))])
    with pytest.raises(TypeError, match=r"callback 'Lists': its state_arrays\(\)\['table'\] is a list"):
        trainer.save_checkpoint(tmp_path / "ckpt")
    assert not (tmp_path / "ckpt").exists()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"swa_lrs": 0.0}, "swa_lrs must be a positive number"),
        ({"swa_lrs": float("nan")}, "swa_lrs must be a positive number"),
        ({"swa_lrs": [0.1, -1.0]}, "swa_lrs must be a positive number"),
        ({"swa_lrs": "0.1"}, "swa_lrs must be a positive number"),
        ({"swa_lrs": 0.1, "swa_epoch_start": 0}, "swa_epoch_start should be a >0 integer"),
        ({"swa_lrs": 0.1, "swa_epoch_start": 1.5}, "swa_epoch_start should be a >0 integer"),
        ({"swa_lrs": 0.1, "swa_epoch_start": "2"}, "swa_epoch_start should be a >0 integer"),
        ({"swa_lrs": 0.1, "annealing_epochs": -1}, "annealing_epochs must be an int >= 0"),
        ({"swa_lrs": 0.1, "annealing_strategy": "exp"}, "annealing_strategy must be 'cos' or 'linear'"),
        ({"swa_lrs": 0.1, "avg_fn": 3}, "avg_fn must be callable"),
        (
            {"swa_lrs": 0.1, "avg_fn": lambda average, current: average},
            r"avg_fn .*<lambda>\(average, current\) cannot be called as "
            r"avg_fn\(average, current, n_averaged\)",
        ),
        ({"swa_lrs": 0.1, "device": "cuda"}, r"device='cuda'.*accepted only as None or 'cpu'"),
    ],
)
def test_wrong_arguments_are_refused_naming_them(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        StochasticWeightAveraging(**kwargs)


def test_the_cpu_device_of_lightnings_default_is_accepted():
    StochasticWeightAveraging(swa_lrs=0.1, device="cpu")
    StochasticWeightAveraging(swa_lrs=0.1, device=mx.cpu)
    StochasticWeightAveraging(swa_lrs=0.1, device=mx.Device(mx.cpu))


@pytest.mark.parametrize(
    "swa, trainer_args, message",
    [
        (
            StochasticWeightAveraging(swa_lrs=0.1),
            {"max_epochs": None, "max_steps": 8},
            r"needs Trainer\(max_epochs=...\)",
        ),
        (
            StochasticWeightAveraging(swa_lrs=0.1, swa_epoch_start=5),
            {"max_epochs": 4},
            r"swa_epoch_start=5 is after the last epoch \(max_epochs=4\)",
        ),
        (
            StochasticWeightAveraging(swa_lrs=[0.1, 0.2]),
            {"max_epochs": 4},
            "swa_lrs has 2 values, the optimizer 1 parameter group:",
        ),
    ],
)
def test_settings_fit_cannot_keep_are_refused_when_it_starts(tmp_path, swa, trainer_args, message):
    trainer = quiet_trainer(tmp_path, callbacks=[swa], **trainer_args)
    with pytest.raises(ValueError, match=message):
        trainer.fit(Descends(), [mx.zeros((2,))] * 4)


def test_a_fit_stopped_before_the_last_epoch_keeps_its_weights_and_says_so(tmp_path):
    swa = StochasticWeightAveraging(swa_lrs=0.5, swa_epoch_start=1, annealing_epochs=0)
    with pytest.warns(
        UserWarning,
        match=r"as max_steps=8 was reached: the module keeps its trained weights, as in Lightning; the "
        r"average of 2 epochs is not applied\. Resume from a checkpoint with a higher max_steps",
    ):
        module, record = _fit_descends(tmp_path, swa, max_epochs=4, max_steps=8)
    assert module.w.item() == record.weights[-1]["w"][0]


def test_a_fit_stopped_before_swa_started_says_swa_never_ran(tmp_path):
    # EarlyStopping (or max_steps) ending the fit before the SWA start epoch left no trace: the user asked for
    # SWA and got the plain trained weights without a word, where a stop one epoch later warned.
    swa = StochasticWeightAveraging(swa_lrs=0.5, swa_epoch_start=3, annealing_epochs=0)
    with pytest.warns(
        UserWarning,
        match=r"StochasticWeightAveraging: fit ended at step 4, before SWA's first epoch \(epoch 3 counted "
        r"from 1, swa_epoch_start=3\), as max_steps=4 was reached: SWA never started; the module keeps its "
        r"trained weights\. Resume from a checkpoint with a higher max_steps",
    ):
        module, record = _fit_descends(tmp_path, swa, max_epochs=4, max_steps=4)
    assert module.w.item() == record.weights[-1]["w"][0] == -4.0


def test_a_fit_stopped_inside_the_last_epoch_keeps_its_weights_and_says_so(tmp_path):
    # The last epoch (2) is an SWA epoch too: the average of epoch 1 alone would leave it out.
    swa = StochasticWeightAveraging(swa_lrs=0.5, swa_epoch_start=2, annealing_epochs=0)
    with pytest.warns(UserWarning, match=r"before the end of the last SWA epoch.*average of 1 epoch"):
        module, record = _fit_descends(tmp_path, swa, max_epochs=3, max_steps=10)
    assert module.w.item() == -7.0  # 4 updates at 1.0, 4 at 0.5, then the 2 of epoch 2 at 0.5


@pytest.mark.filterwarnings("ignore:resuming from")
@pytest.mark.filterwarnings(
    "ignore:The checkpoint resumed holds the state of callbacks"
)  # (its ModelCheckpoint)
def test_a_fit_resumed_from_a_max_steps_stop_inside_an_swa_epoch_ends_as_an_uninterrupted_one(tmp_path):
    # max_steps=6 ends the fit inside SWA epoch 1: that epoch's end is averaged once, after the resume.
    def swa():
        return StochasticWeightAveraging(swa_lrs=0.5, swa_epoch_start=2, annealing_epochs=0)

    straight, _ = _fit_descends(tmp_path / "a", swa(), max_epochs=4)
    with pytest.warns(UserWarning, match="max_steps=6 was reached"):
        _fit_descends(
            tmp_path / "b",
            swa(),
            max_epochs=4,
            max_steps=6,
            more_callbacks=[ModelCheckpoint(save_last=True)],
            enable_checkpointing=True,
        )
    trainer = quiet_trainer(tmp_path / "c", max_epochs=4, callbacks=[swa()])
    resumed = Descends()
    trainer.fit(resumed, [mx.zeros((2,))] * 4, ckpt_path=str(tmp_path / "b" / "checkpoints" / "last"))
    assert resumed.w.item() == straight.w.item() == np.mean([-6.0, -8.0, -10.0])


class StopAfterFirstEpoch(Callback):
    """A stop request, as EarlyStopping makes one."""

    def on_train_epoch_end(self, trainer, module):
        trainer.should_stop = True


def test_a_fit_stopped_by_a_stop_request_says_so_not_max_steps(tmp_path):
    """EarlyStopping (or a callback's should_stop) ended the fit: neither max_steps nor max_time was set,
    so the warning names the stop request, and a resume with a higher max_steps is no advice."""
    swa = StochasticWeightAveraging(swa_lrs=0.5, swa_epoch_start=1, annealing_epochs=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module, record = _fit_descends(tmp_path, swa, max_epochs=4, more_callbacks=[StopAfterFirstEpoch()])
    messages = [str(w.message) for w in caught if "StochasticWeightAveraging" in str(w.message)]
    assert len(messages) == 1, messages
    assert "as a stop was requested (EarlyStopping, or a callback setting trainer.should_stop)" in messages[0]
    assert "the average of 1 epoch is not applied" in messages[0]
    assert "set max_epochs to where training should end" in messages[0]
    assert "max_steps" not in messages[0] and "max_time" not in messages[0]
    assert module.w.item() == record.weights[-1]["w"][0]


def test_the_stop_warning_counts_epochs_one_way(tmp_path):
    # After a stop at the first epoch's end it said "fit ended in epoch 1, before the end of the last SWA
    # epoch 3 (max_epochs - 1)": epoch 1 counted from 0 had never run, epoch 3 was counted from 0, and the
    # swa_epoch_start the user gave counts from 1.
    swa = StochasticWeightAveraging(swa_lrs=0.5, swa_epoch_start=1, annealing_epochs=0)
    with pytest.warns(
        UserWarning,
        match=r"fit ended at step 4, after 1 complete epoch, before the end of the last SWA epoch \(epoch 4 "
        r"counted from 1, max_epochs=4\), as a stop was requested",
    ):
        _fit_descends(tmp_path, swa, max_epochs=4, more_callbacks=[StopAfterFirstEpoch()])


class TimeRunsOutAfterFirstEpoch(Callback):
    def on_train_epoch_end(self, trainer, module):
        trainer.max_time = 0.0  # (the time is up from here on)


def test_a_fit_max_time_ended_says_max_time_though_it_sets_should_stop(tmp_path):
    """max_time sets trainer.should_stop, as Lightning's Timer: the warning still names max_time."""
    swa = StochasticWeightAveraging(swa_lrs=0.5, swa_epoch_start=1, annealing_epochs=0)
    with pytest.warns(UserWarning, match=r"as max_time ran out: .*higher max_time to finish SWA"):
        _fit_descends(
            tmp_path, swa, max_epochs=4, max_time={"hours": 1}, more_callbacks=[TimeRunsOutAfterFirstEpoch()]
        )


def test_an_avg_fn_whose_arity_cannot_be_inspected_is_named_when_its_call_fails(tmp_path):
    # mx.maximum takes two arrays; its signature cannot be inspected (3.10-3.12) or is (*args, **kwargs) (3.13),
    # so the call's TypeError is explained.
    swa = StochasticWeightAveraging(swa_lrs=0.5, swa_epoch_start=1, annealing_epochs=0, avg_fn=mx.maximum)
    with pytest.raises(TypeError, match=r"avg_fn .*maximum failed, called as avg_fn\(average, current, n_av"):
        _fit_descends(tmp_path, swa, max_epochs=3)


class TakesAnything:
    """An avg_fn whose signature is ``(*args, **kwargs)``: how Python 3.13 sees mx.maximum (3.10-3.12 cannot
    inspect it)."""

    def __call__(self, *args, **kwargs):
        return mx.maximum(*args, **kwargs)


def test_an_avg_fn_whose_signature_says_nothing_is_named_when_its_call_fails(tmp_path):
    # On Python 3.13 mx.maximum's failed call was a bare "incompatible function arguments", naming no avg_fn.
    swa = StochasticWeightAveraging(
        swa_lrs=0.5, swa_epoch_start=1, annealing_epochs=0, avg_fn=TakesAnything()
    )
    with pytest.raises(
        TypeError, match=r"avg_fn .*TakesAnything failed, called as avg_fn\(average, current, n_"
    ):
        _fit_descends(tmp_path, swa, max_epochs=3)


def test_a_list_of_swa_lrs_of_another_length_is_refused_in_good_grammar(tmp_path):
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=[StochasticWeightAveraging(swa_lrs=[0.1])])
    with pytest.raises(ValueError, match=r"swa_lrs has 1 value, the optimizer 2 parameter groups:"):
        trainer.fit(TwoGroups(), [mx.zeros((2,))] * 4)


class TwoGroups(Descends):
    """w and v descend with their own SGD: a MultiOptimizer, two parameter groups."""

    def __init__(self):
        super().__init__()
        self.v = mx.array([0.0])

    def compute_loss(self, batch):
        return mx.sum(self.w) + mx.sum(self.v) + 0.0 * mx.mean(batch), {}

    def configure_optimizers(self):
        return optim.MultiOptimizer([optim.SGD(1.0), optim.SGD(0.5)], [lambda path, _: path == "w"])


def test_each_parameter_group_anneals_from_its_own_rate_to_its_own_swa_lr(tmp_path):
    swa = StochasticWeightAveraging(swa_lrs=[0.1, 0.2], swa_epoch_start=2, annealing_epochs=0)
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=[swa])
    module = TwoGroups()
    trainer.fit(module, [mx.zeros((2,))] * 4)
    # w: -4, then -0.4 a SWA epoch; v: -2, then -0.8. Their averages over epochs 1 and 2:
    assert module.w.item() == pytest.approx(np.mean([-4.4, -4.8]))
    assert module.v.item() == pytest.approx(np.mean([-2.8, -3.6]))


class TwoManual(TwoGroups):
    """TwoGroups under manual optimization: w and v each stepped by hand with their own SGD, as a GAN's
    generator and discriminator (configure_optimizers returns two {"optimizer", "params"} dicts)."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False

    def configure_optimizers(self):
        return [{"optimizer": optim.SGD(1.0), "params": "w"}, {"optimizer": optim.SGD(0.5), "params": "v"}]

    def training_step(self, batch, batch_idx):
        opt_w, opt_v = self.optimizers()
        self.manual_backward(lambda: self.compute_loss(batch)[0])
        opt_w.step()
        opt_v.step()
        opt_w.zero_grad()
        opt_v.zero_grad()


def test_a_manual_modules_several_optimizers_each_anneal_and_every_weight_is_averaged(tmp_path):
    """Deliberate: Lightning 2.6.6 refuses SWA with several optimizers ("SWA currently works with 1
    `optimizer`": its SWALR wraps one torch optimizer). Here a manual module's optimizers are the
    MultiOptimizer's groups, which SWA handles as in automatic optimization: each optimizer anneals from its
    own rate to its swa_lr, and every weight is averaged (the same numbers as TwoGroups')."""
    swa = StochasticWeightAveraging(swa_lrs=[0.1, 0.2], swa_epoch_start=2, annealing_epochs=0)
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=[swa])
    module = TwoManual()
    trainer.fit(module, [mx.zeros((2,))] * 4)
    assert trainer.global_step == 24  # (Lightning's count: each optimizer's step is one)
    assert module.w.item() == pytest.approx(np.mean([-4.4, -4.8]))
    assert module.v.item() == pytest.approx(np.mean([-2.8, -3.6]))


def test_a_run_without_array_state_writes_the_checkpoint_files_it_always_wrote(tmp_path):
    trainer = quiet_trainer(tmp_path, max_epochs=1)
    trainer.fit(Descends(), [mx.zeros((2,))])
    saved = trainer.save_checkpoint(tmp_path / "ckpt")
    assert sorted(p.name for p in saved.iterdir()) == [
        "model.safetensors",
        "optimizer.safetensors",
        "step_state.safetensors",
        "trainer_state.json",
    ]


@pytest.mark.filterwarnings(
    "ignore:The checkpoint resumed holds the state of callbacks"
)  # (its ModelCheckpoint)
def test_swa_added_to_a_resumed_run_after_its_start_warns_and_anneals_from_there(tmp_path):
    batches = [mx.zeros((2,))] * 4
    first = quiet_trainer(tmp_path / "a", max_epochs=3, enable_checkpointing=True)
    first.fit(Descends(), batches)
    record = Record()
    swa = StochasticWeightAveraging(
        swa_lrs=0.5, swa_epoch_start=2, annealing_epochs=1, annealing_strategy="linear"
    )
    trainer = quiet_trainer(tmp_path / "b", max_epochs=5, callbacks=[swa, record])
    module = Descends()
    with pytest.warns(UserWarning, match="starts in epoch 3, after its start epoch 1, without state"):
        trainer.fit(module, batches, ckpt_path=first.checkpoint_callback.last_model_path)
    assert record.rates == [1.0, 0.5]  # epoch 3 at the rate it had, then annealed in one epoch
    assert swa.n_averaged == 2 and module.w.item() == pytest.approx(np.mean([-16.0, -18.0]))


@pytest.mark.filterwarnings("ignore:The checkpoint resumed holds the state of callbacks")
@pytest.mark.filterwarnings("ignore:StochasticWeightAveraging starts in epoch 3")
@pytest.mark.filterwarnings("ignore:ModelCheckpoint. the resumed checkpoint")  # (another folder)
def test_a_late_started_swa_resumed_mid_swa_anneals_and_ends_as_an_uninterrupted_one(tmp_path):
    batches = [mx.zeros((2,))] * 4
    first = quiet_trainer(tmp_path / "a", max_epochs=3, enable_checkpointing=True)
    first.fit(Descends(), batches)

    def fit(root, ckpt_path):
        swa = StochasticWeightAveraging(
            swa_lrs=0.1, swa_epoch_start=2, annealing_epochs=2, annealing_strategy="linear"
        )
        record, module = Record(), Descends()
        checkpoints = ModelCheckpoint(every_n_epochs=1, save_top_k=-1)
        callbacks = [swa, record, checkpoints]
        trainer = quiet_trainer(root, max_epochs=6, callbacks=callbacks, enable_checkpointing=True)
        trainer.fit(module, batches, ckpt_path=ckpt_path)
        return module, record

    # SWA starts in epoch 3 (after its start epoch 1), annealing from there over two epochs.
    straight, record = fit(tmp_path / "b", first.checkpoint_callback.last_model_path)
    assert record.rates == pytest.approx([1.0, 0.55, 0.1])
    saved = next((tmp_path / "b" / "checkpoints").glob("epoch=3-*"))
    resumed, resumed_record = fit(tmp_path / "c", str(saved))
    assert resumed_record.rates == pytest.approx(record.rates[1:])
    assert resumed.w.item() == straight.w.item()


# ---------------------------------------------------------------- with a fine-tuning callback adding a group
class BackboneAndHead(TrainModule):
    """loss = backbone.w + head.v: every SGD update lowers each by exactly its group's rate."""

    def __init__(self):
        super().__init__()
        self.backbone, self.head = nn.Linear(1, 1, bias=False), nn.Linear(1, 1, bias=False)

    def compute_loss(self, batch):
        return mx.sum(self.backbone.weight) + mx.sum(self.head.weight) + 0.0 * mx.mean(batch), {}

    def configure_optimizers(self):
        return optim.SGD(learning_rate=0.1)


class GroupRates(Callback):
    """Each epoch's rate of each group (after the fine-tuning callback and SWA set them)."""

    def __init__(self):
        self.rates = []

    def on_train_epoch_start(self, trainer, module):
        opt = trainer.optimizer
        groups = opt.optimizers if isinstance(opt, optim.MultiOptimizer) else [opt]
        self.rates.append([round(g.learning_rate.item(), 7) for g in groups])


def test_a_group_added_during_swa_anneals_from_its_own_rate_when_it_appears(tmp_path):
    finetuning = BackboneFinetuning(unfreeze_backbone_at_epoch=2, backbone_initial_lr=0.02)
    swa = StochasticWeightAveraging(swa_lrs=1e-3, swa_epoch_start=1, annealing_epochs=2)
    record = GroupRates()
    trainer = quiet_trainer(tmp_path, max_epochs=5, callbacks=[finetuning, swa, record])
    trainer.fit(BackboneAndHead(), [mx.zeros((2,))])
    half = (1 - math.cos(math.pi * 0.5)) / 2  # the cosine halfway: epoch 1 of 2
    between = [round(1e-3 * half + lr * (1 - half), 7) for lr in (0.1, 0.02)]
    assert record.rates == [[0.1], [between[0]], [1e-3, 0.02], [1e-3, between[1]], [1e-3, 1e-3]]


def test_a_list_of_swa_lrs_that_no_longer_has_one_per_group_names_the_added_group(tmp_path):
    finetuning = BackboneFinetuning(unfreeze_backbone_at_epoch=2)
    swa = StochasticWeightAveraging(swa_lrs=[1e-3], swa_epoch_start=1)
    trainer = quiet_trainer(tmp_path, max_epochs=4, callbacks=[finetuning, swa])
    with pytest.raises(
        ValueError, match=r"swa_lrs has 1 value.*now has 2 parameter groups \(in epoch 2: groups were added"
    ):
        trainer.fit(BackboneAndHead(), [mx.zeros((2,))])


class Backboned(TrainModule):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
        self.head = nn.Linear(16, 3)

    def compute_loss(self, batch):
        x, y = batch
        return mx.mean(nn.losses.cross_entropy(self.head(self.backbone(x)), y)), {}

    def configure_optimizers(self):
        return optim.Adam(learning_rate=1e-2)


@pytest.mark.filterwarnings("ignore:resuming from")
@pytest.mark.filterwarnings("ignore:ModelCheckpoint. the resumed checkpoint")
def test_a_fit_resumed_across_a_group_added_during_swa_ends_as_an_uninterrupted_one(tmp_path):
    def fit(root, ckpt_path=None):
        callbacks = [
            BackboneFinetuning(unfreeze_backbone_at_epoch=2),
            StochasticWeightAveraging(swa_lrs=1e-3, swa_epoch_start=1, annealing_epochs=2),
            ModelCheckpoint(every_n_train_steps=4, save_top_k=-1),
        ]
        trainer = quiet_trainer(
            root,
            max_epochs=5,
            callbacks=callbacks,
            enable_checkpointing=True,
            enable_model_summary=False,
            seed=0,
        )
        mx.random.seed(0)
        module = Backboned()
        trainer.fit(module, make_batches(48), ckpt_path=ckpt_path)  # 3 batches an epoch
        return module

    straight = fit(tmp_path / "a")
    saved_at = sorted((tmp_path / "a" / "checkpoints").glob("epoch=*"))
    assert len(saved_at) >= 3  # (before, at and after the unfreeze, mid-epoch too)
    for saved in saved_at:
        resumed = fit(tmp_path / saved.name, ckpt_path=str(saved))
        for name, value in weights(straight).items():
            assert_same_numbers(weights(resumed)[name], value, err_msg=f"{saved.name}: {name}")


# ---------------------------------------------------------------- what SWA and WeightAveraging share
_AVERAGINGS = [
    lambda: StochasticWeightAveraging(swa_lrs=0.5, swa_epoch_start=2, annealing_epochs=0),
    lambda: EMAWeightAveraging(decay=0.5),
]


@pytest.mark.parametrize("make", _AVERAGINGS, ids=["swa", "ema"])
def test_a_callback_reused_by_a_second_trainer_averages_only_the_second_fit(tmp_path, make):
    batches = [mx.zeros((2,))] * 4
    reused = make()
    quiet_trainer(tmp_path / "1", max_epochs=3, callbacks=[reused]).fit(Descends(1.0), batches)
    second = Descends(2.0)  # (another rate: the two fits' weights differ)
    quiet_trainer(tmp_path / "2", max_epochs=3, callbacks=[reused]).fit(second, batches)
    fresh, alone = make(), Descends(2.0)
    quiet_trainer(tmp_path / "3", max_epochs=3, callbacks=[fresh]).fit(alone, batches)
    assert second.w.item() == alone.w.item()
    assert reused.n_averaged == fresh.n_averaged


def _to_float32(average, current, n_averaged):
    return average.astype(mx.float32) + (current.astype(mx.float32) - average) / (n_averaged + 1)


@pytest.mark.parametrize(
    "make",
    [
        lambda: EMAWeightAveraging(decay=0.9),
        lambda: WeightAveraging(),
        lambda: WeightAveraging(avg_fn=_to_float32),
        lambda: StochasticWeightAveraging(swa_lrs=1e-3, swa_epoch_start=1),
        lambda: StochasticWeightAveraging(swa_lrs=1e-3, swa_epoch_start=1, avg_fn=_to_float32),
    ],
    ids=["ema", "mean", "avg_fn", "swa", "swa-avg_fn"],
)
def test_a_bfloat16_model_keeps_its_dtype_after_fit_and_its_average_is_kept_in_float32(tmp_path, make):
    mx.random.seed(0)
    averaging, module = make(), TinyClassifier()
    module.set_dtype(mx.bfloat16)
    trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=[averaging], seed=0)
    trainer.fit(module, [(x.astype(mx.bfloat16), y) for x, y in make_batches(48)])
    assert averaging.n_averaged > 0
    for name, value in averaging.state_arrays().items():
        assert value.dtype == mx.float32, name  # (bfloat16 would round away each update's share)
    for name, value in tree_flatten(module.parameters()):
        assert value.dtype == mx.bfloat16, name


class ScheduledNormed(ScheduledClassifier):
    def __init__(self):
        super().__init__(dropout=0.2, batchnorm=True)


@pytest.mark.filterwarnings("ignore:resuming from")
@pytest.mark.parametrize("compile", [False, True])
@pytest.mark.parametrize(
    "resume_from", ["epoch=2-*", "epoch=4-*"]
)  # mid-SWA; the last epoch, before the pass
def test_a_batchnorm_fit_resumed_ends_with_the_statistics_of_an_uninterrupted_one(
    tmp_path, compile, resume_from
):
    def fit(root, ckpt_path=None):
        checkpoints = ModelCheckpoint(every_n_epochs=1, save_top_k=-1)
        trainer = quiet_trainer(
            root,
            max_epochs=5,
            callbacks=[_swa(), checkpoints],
            enable_checkpointing=True,
            seed=0,
            compile=compile,
        )
        module = ScheduledNormed()
        # (shuffled: the BatchNorm pass sees the loader as its set_epoch(max_epochs) orders it, in both fits)
        x, y = make_data(48)
        trainer.fit(module, DataLoader(list(zip(x, y)), batch_size=16, shuffle=True), ckpt_path=ckpt_path)
        return weights(module)

    straight = fit(tmp_path / "a")
    saved = next((tmp_path / "a" / "checkpoints").glob(resume_from))
    resumed = fit(tmp_path / "b", ckpt_path=str(saved))
    for name, value in straight.items():
        assert_same_numbers(resumed[name], value, err_msg=name)


def test_after_a_batchnorm_swa_fit_last_holds_the_trained_weights_and_save_checkpoint_the_average(tmp_path):
    # As README says: `last` (saved at the last epoch's end) holds the trained weights and statistics; the
    # average, with the statistics recomputed under it, reaches disk through trainer.save_checkpoint.
    record = Record()
    swa = StochasticWeightAveraging(swa_lrs=1e-2, swa_epoch_start=2, annealing_epochs=0)
    checkpoints = ModelCheckpoint(save_last=True)
    trainer = quiet_trainer(
        tmp_path, max_epochs=3, callbacks=[swa, record, checkpoints], enable_checkpointing=True, seed=0
    )
    module = TinyClassifier(batchnorm=True)
    batches = make_batches(48)
    trainer.fit(module, batches)
    last = weights(TinyClassifier.load_from_checkpoint(checkpoints.last_model_path, batchnorm=True))
    for name, value in record.weights[-1].items():
        assert_same_numbers(last[name], value, err_msg=name)
    trainer.save_checkpoint(tmp_path / "averaged")
    averaged = TinyClassifier.load_from_checkpoint(tmp_path / "averaged", batchnorm=True)
    for name, value in weights(module).items():
        assert_same_numbers(weights(averaged)[name], value, err_msg=name)
    np.testing.assert_allclose(
        np.array(averaged.norm.running_mean), _statistics_under(averaged, batches)[0], rtol=1e-4, atol=1e-6
    )
    trainer.validate(module, batches, ckpt_path="last", verbose=False)  # (loads last's weights into module)
    for name, value in record.weights[-1].items():
        assert_same_numbers(weights(module)[name], value, err_msg=name)


def test_reduce_lr_on_plateau_beside_swa_is_warned_of_once_naming_both(tmp_path):
    # SWA sets the rate at each SWA epoch's start, so the plateau's cuts during SWA never trained, unsaid.
    from audiotrain.train.callbacks import ReduceLROnPlateau

    swa = StochasticWeightAveraging(swa_lrs=0.1, swa_epoch_start=2, annealing_epochs=0)
    plateau = ReduceLROnPlateau(monitor="train_loss", patience=0, factor=0.5)
    with pytest.warns(UserWarning, match="ReduceLROnPlateau") as caught:
        _fit_descends(tmp_path, swa, max_epochs=4, more_callbacks=[plateau])
    said = [str(w.message) for w in caught if "ReduceLROnPlateau" in str(w.message)]
    assert len(said) == 1 and "StochasticWeightAveraging" in said[0] and "epoch 2" in said[0]


@pytest.mark.parametrize(
    "make", [lambda: StochasticWeightAveraging(swa_lrs=1e-2), lambda: EMAWeightAveraging(decay=0.9)]
)
def test_one_averaging_callback_passed_twice_is_named_with_what_to_do(tmp_path, make):
    # Before: the generic "more than one stateful callback ... override state_key" advice; then positions
    # in the Trainer's reordered list ("0 and 2" here, where the user's list has it at 1 and 3).
    averaging = make()
    name = type(averaging).__name__
    with pytest.raises(ValueError, match=rf"the same {name}\(.*\) object 2 times .*pass it once") as raised:
        callbacks = [ModelCheckpoint(dirpath=tmp_path / "ck"), averaging, Record(), averaging]
        trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=callbacks, enable_checkpointing=True)
        trainer.fit(TinyClassifier(), make_batches(48))
    assert "position" not in str(raised.value)


class FrozenNorm(TinyClassifier):
    def on_train_start(self):
        self.norm.eval()  # (a frozen backbone's BatchNorm: its statistics stay as they are)


def test_the_batchnorm_pass_leaves_a_layer_the_user_put_in_eval_mode_as_it_was(tmp_path):
    swa = StochasticWeightAveraging(swa_lrs=1e-2, swa_epoch_start=2, annealing_epochs=0)
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=[swa], seed=0)
    module = FrozenNorm(batchnorm=True)
    trainer.fit(module, make_batches(48))
    assert not module.norm.training
    np.testing.assert_array_equal(np.array(module.norm.running_mean), np.zeros(16))
    np.testing.assert_array_equal(np.array(module.norm.running_var), np.ones(16))


@pytest.mark.parametrize("monitor_first", [True, False])
def test_a_learning_rate_monitor_logs_each_epochs_annealed_rate_whichever_callback_comes_first(
    tmp_path, monitor_first
):
    """A LearningRateMonitor listed before SWA logged at each epoch's start the rate of the epoch before (SWA
    sets it in its own on_train_epoch_start, after the monitor's). Lightning 2.6.6 steps SWALR at the end of
    the epoch before: SGD(lr=0.1), StochasticWeightAveraging(swa_lrs=0.01, swa_epoch_start=2,
    annealing_epochs=2, annealing_strategy="linear"), max_epochs=4, LearningRateMonitor("epoch") in either
    order logs lr-SGD [0.1, 0.1, 0.055, 0.01]."""
    from audiotrain.train.callbacks import LearningRateMonitor

    from tasks import RecordingLogger

    swa = StochasticWeightAveraging(
        swa_lrs=0.01, swa_epoch_start=2, annealing_epochs=2, annealing_strategy="linear"
    )
    monitor, logger = LearningRateMonitor(logging_interval="epoch"), RecordingLogger()
    callbacks = [monitor, swa] if monitor_first else [swa, monitor]
    trainer = quiet_trainer(tmp_path, max_epochs=4, callbacks=callbacks, logger=logger)
    trainer.fit(Descends(learning_rate=0.1), [mx.zeros((2,))] * 4)
    assert monitor.lrs["lr-SGD"] == pytest.approx([0.1, 0.1, 0.055, 0.01])


def test_a_default_learning_rate_monitor_logs_swas_rate_at_epoch_starts_from_its_start(tmp_path):
    """From SWA's first epoch a LearningRateMonitor() logged the annealed rate at every logging step, the
    per-epoch schedule before it at epoch starts only. Lightning 2.6.6 swaps the lr_scheduler for SWALR
    (interval "epoch"), so its default monitor logs the rate at epoch starts from then on: a per-epoch StepLR
    (gamma 0.5), 4 batches an epoch, log_every_n_steps=2, swa_epoch_start=2, max_epochs=4, swa_lrs=0.01
    and 2 linear annealing epochs log lr-SGD at steps 0, 4, 8, 12 only: [0.1, 0.05, 0.03, 0.01]."""
    from audiotrain.train.callbacks import LearningRateMonitor
    from audiotrain.train.schedulers import StepLRScheduler

    from tasks import RecordingLogger

    class Stepped(Descends):
        def configure_optimizers(self):
            return [optim.SGD(learning_rate=0.1)], [StepLRScheduler(0.1, 1, gamma=0.5)]

    swa = StochasticWeightAveraging(
        swa_lrs=0.01, swa_epoch_start=2, annealing_epochs=2, annealing_strategy="linear"
    )
    monitor, logger = LearningRateMonitor(), RecordingLogger()
    trainer = quiet_trainer(
        tmp_path, max_epochs=4, callbacks=[monitor, swa], logger=logger, log_every_n_steps=2
    )
    trainer.fit(Stepped(), [mx.zeros((2,))] * 4)
    logged = [(step, m["lr-SGD"]) for step, m in logger.metrics if "lr-SGD" in m]
    assert [step for step, _ in logged] == [0, 4, 8, 12]
    assert [rate for _, rate in logged] == pytest.approx([0.1, 0.05, 0.03, 0.01])


@pytest.mark.parametrize("interval, warned", [("step", True), ("epoch", False)])
def test_a_schedule_swa_takes_over_is_said_as_lightning_says_it(tmp_path, caplog, interval, warned):
    """Lightning 2.6.6 (measured): SWA swapping a StepLR logs "Swapping scheduler `StepLR` for `SWALR`"
    (INFO), and for one with 'interval': 'step' first warns "SWA is currently only supported every epoch.
    Found LRSchedulerConfig(..., interval='step', frequency=1, ...)". Here the schedule went silently."""

    class Scheduled(TinyClassifier):
        def configure_optimizers(self):
            schedule = StepLRScheduler(0.1, step_size=1, gamma=0.5)
            return {
                "optimizer": optim.SGD(learning_rate=0.1),
                "lr_scheduler": {"scheduler": schedule, "interval": interval},
            }

    swa = StochasticWeightAveraging(swa_lrs=0.05, swa_epoch_start=2)
    trainer = quiet_trainer(tmp_path, max_epochs=3, callbacks=[swa])
    with (
        warnings.catch_warnings(record=True) as caught,
        caplog.at_level("INFO", "audiotrain.train.callbacks.swa"),
    ):
        warnings.simplefilter("always")
        trainer.fit(Scheduled(), make_batches(32, 16))
    said = [str(w.message) for w in caught if "only supported every epoch" in str(w.message)]
    assert said == (
        [
            "StochasticWeightAveraging: SWA is only supported every epoch (its annealed rate is set at each "
            "epoch's start). Found the learning-rate schedule StepLRScheduler stepped every optimizer step "
            "('interval': 'step', 'frequency': 1): from epoch 2 (counted from 1) SWA's rate replaces it"
        ]
        if warned
        else []
    )
    assert [r.getMessage() for r in caplog.records if "Swapping" in r.getMessage()] == [
        "Swapping scheduler `StepLRScheduler` for SWA's annealed rate (Lightning's `SWALR`)"
    ]
