"""`WeightAveraging` / `EMAWeightAveraging`: Lightning's per-step weight average (EMA), validated with,
kept at the end of fit, and exact across a resume through the checkpoint's callbacks.safetensors."""

import json
import warnings
from pathlib import Path

import audiotrain  # noqa: F401  (before mlx)
from audiotrain import TrainModule
from audiotrain.train import (
    BackboneFinetuning,
    BaseFinetuning,
    EMAWeightAveraging,
    OnExceptionCheckpoint,
    StochasticWeightAveraging,
    WeightAveraging,
)
from audiotrain.train.callback import Callback
from audiotrain.train.callbacks import ModelCheckpoint
from audiotrain.train.checkpoint import CALLBACKS_FILE, read_arrays

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from exactness import assert_same_numbers
from mlx.utils import tree_flatten
from tasks import TinyClassifier, make_batches, quiet_trainer, weights


class RecordSteps(Callback):
    """The weights after every optimizer step (the first callback: before the average is updated)."""

    def __init__(self):
        self.steps, self.weights = [], []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step > (self.steps[-1] if self.steps else 0):
            self.steps.append(trainer.global_step)
            self.weights.append(weights(module))


def _numpy_average(recorded, decay=None):
    """What torch's AveragedModel makes of `recorded` (one dict of weights per update), in float32."""
    average = {k: v.copy() for k, v in recorded[0].items()}
    for n, now in enumerate(recorded[1:], start=1):
        for k, a in average.items():
            if decay is None:
                average[k] = a + (now[k] - a) / np.float32(n + 1)
            else:
                average[k] = a + (now[k] - a) * (np.float32(1) - np.float32(decay))
    return average


def _close(actual, desired):
    for name, value in desired.items():
        np.testing.assert_allclose(actual[name], value, rtol=2e-6, atol=1e-7, err_msg=name)


def _fit(root, averaging, callbacks=(), max_epochs=2, module=None, **trainer_args):
    record = RecordSteps()
    trainer = quiet_trainer(
        root, max_epochs=max_epochs, callbacks=[record, averaging, *callbacks], **trainer_args
    )
    module = module or TinyClassifier()
    trainer.fit(module, make_batches(48))
    return module, record, trainer


def test_the_ema_is_a_numpy_ema_of_the_weights_after_each_step_and_fit_ends_with_it(tmp_path):
    module, record, _ = _fit(tmp_path, EMAWeightAveraging(decay=0.9), max_epochs=2)
    assert record.steps == [1, 2, 3, 4, 5, 6]
    _close(weights(module), _numpy_average(record.weights, decay=0.9))


def test_without_decay_it_is_the_equal_weight_mean_and_avg_fn_replaces_it(tmp_path):
    module, record, _ = _fit(tmp_path / "a", WeightAveraging(), max_epochs=1)
    _close(weights(module), _numpy_average(record.weights))

    def last(average, current, n_averaged):
        return current * 1.0

    module, record, _ = _fit(tmp_path / "b", WeightAveraging(avg_fn=last), max_epochs=1)
    _close(weights(module), record.weights[-1])

    def mean(average, current, n_averaged):  # n_averaged: the updates the average holds so far
        return average + (current - average) / (n_averaged + 1)

    module, record, _ = _fit(tmp_path / "c", WeightAveraging(avg_fn=mean), max_epochs=1)
    _close(weights(module), _numpy_average(record.weights))


def test_the_first_update_copies_the_weights_without_calling_avg_fn(tmp_path):
    # torch's AveragedModel: avg_fn is called from the second update on.
    def total(average, current, n_averaged):
        return average + current

    module, record, _ = _fit(tmp_path, WeightAveraging(avg_fn=total), max_epochs=1)
    _close(weights(module), {name: sum(w[name] for w in record.weights) for name in record.weights[0]})


class AddsALayerAtEpochOne(Callback):
    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == 1:
            module.extra = nn.Linear(2, 2)


def test_a_layer_added_during_fit_is_refused_naming_it(tmp_path):
    with pytest.raises(
        ValueError, match=r"arrays changed during fit \(gone: \[\], new: \['extra.bias', 'extra.weight'\]"
    ):
        _fit(tmp_path, WeightAveraging(decay=0.5), callbacks=[AddsALayerAtEpochOne()], max_epochs=2)


def test_gradient_accumulation_updates_once_per_optimizer_step(tmp_path):
    module, record, _ = _fit(tmp_path, EMAWeightAveraging(decay=0.5), max_epochs=1, accumulate_grad_batches=2)
    assert record.steps == [1, 2]  # (3 batches: the last one closes its window)
    _close(weights(module), _numpy_average(record.weights, decay=0.5))


class Unsized:
    """An iterable loader without a length: its last window is closed when the epoch ends."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)


def test_the_window_an_unsized_loader_closes_at_the_epoch_end_is_averaged_too(tmp_path):
    ema = EMAWeightAveraging(decay=0.5)
    trainer = quiet_trainer(tmp_path / "a", max_epochs=2, accumulate_grad_batches=2, callbacks=[ema], seed=0)
    mx.random.seed(0)
    module = TinyClassifier()
    trainer.fit(module, Unsized(make_batches(48)))  # 3 batches: windows of 2 and 1 an epoch
    assert trainer.global_step == 4 and ema.n_averaged == 4
    mx.random.seed(0)
    sized, _, _ = _fit(
        tmp_path / "b",
        EMAWeightAveraging(decay=0.5),
        accumulate_grad_batches=2,
        seed=0,
        module=TinyClassifier(),
    )
    for name, value in weights(sized).items():
        assert_same_numbers(weights(module)[name], value, err_msg=name)


class Every(EMAWeightAveraging):
    def should_update(self, step_idx=None, epoch_idx=None):
        return step_idx is not None and step_idx in (1, 4)


def test_should_update_overridden_chooses_the_steps(tmp_path):
    module, record, _ = _fit(tmp_path, Every(decay=0.5), max_epochs=2)
    _close(weights(module), _numpy_average([record.weights[1], record.weights[4]], decay=0.5))


@pytest.mark.parametrize(
    "kwargs, updated",
    [
        ({"update_starting_at_step": 2}, [2, 3, 4, 5]),
        ({"update_starting_at_epoch": 1}, [3, 4, 5]),
        ({"update_every_n_steps": 2}, [0, 2, 4]),
        ({"update_every_n_steps": 2, "update_starting_at_step": 3}, [4]),
    ],
)
def test_the_start_step_start_epoch_and_every_n_steps(tmp_path, kwargs, updated):
    module, record, _ = _fit(tmp_path, EMAWeightAveraging(decay=0.7, **kwargs), max_epochs=2)
    _close(weights(module), _numpy_average([record.weights[i] for i in updated], decay=0.7))


class ValidationSeesW(TinyClassifier):
    def validation_step(self, batch):
        self.log("w", self.fc2.bias[0])
        return self.compute_loss(batch)[0]


def test_validation_sees_the_average_and_training_goes_on_from_its_own_weights(tmp_path):
    class BeforeAndAfterValidation(Callback):  # (runs before the averaging callback: sees training weights)
        def __init__(self):
            self.before, self.after = [], []

        def on_validation_start(self, trainer, module):
            self.before.append(weights(module))

        def on_validation_end(self, trainer, module):
            pass

        def on_train_epoch_start(self, trainer, module):
            if self.before:
                self.after.append(weights(module))

    class AfterValidation(Callback):
        def __init__(self):
            self.after = []

        def on_validation_end(self, trainer, module):
            self.after.append(weights(module))

    seen = BeforeAndAfterValidation()
    after = AfterValidation()
    ema = EMAWeightAveraging(decay=0.5)
    record = RecordSteps()
    trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=[record, seen, ema, after])
    module = ValidationSeesW()
    trainer.fit(module, make_batches(48), val_dataloaders=make_batches(16))
    validated = trainer.callback_metrics["w"]  # the last validation: after epoch 1, 6 steps averaged
    average = _numpy_average(record.weights, decay=0.5)
    np.testing.assert_allclose(float(validated), average["fc2.bias"][0], rtol=2e-6)
    assert not np.allclose(average["fc2.bias"][0], record.weights[-1]["fc2.bias"][0])
    # Bitwise the training weights again after each validation, and the next epoch starts from them.
    for before, back in zip(seen.before, after.after, strict=True):
        for name, value in before.items():
            np.testing.assert_array_equal(back[name], value, err_msg=name)
    for name, value in seen.before[0].items():
        np.testing.assert_array_equal(seen.after[0][name], value, err_msg=name)


def _fit_resumable(root, ema, ckpt_path=None, max_epochs=4, every_n_train_steps=None):
    record = RecordSteps()
    if every_n_train_steps is None:
        checkpoints = ModelCheckpoint(every_n_epochs=1, save_top_k=-1)
    else:
        checkpoints = ModelCheckpoint(every_n_train_steps=every_n_train_steps, save_top_k=-1)
    trainer = quiet_trainer(
        root, max_epochs=max_epochs, callbacks=[record, ema, checkpoints], enable_checkpointing=True, seed=0
    )
    module = TinyClassifier()
    trainer.fit(module, make_batches(48), val_dataloaders=make_batches(16), ckpt_path=ckpt_path)
    return module, record, ema


def _ema():
    return EMAWeightAveraging(decay=0.8, update_starting_at_step=1)


@pytest.mark.filterwarnings("ignore:ModelCheckpoint. the resumed checkpoint")  # (another folder)
@pytest.mark.parametrize("every_n_train_steps, saved_glob", [(None, "epoch=1-*"), (7, "epoch=2-step=7*")])
def test_a_resumed_fit_ends_with_the_weights_and_average_of_an_uninterrupted_one(
    tmp_path, every_n_train_steps, saved_glob
):
    straight, record, ema = _fit_resumable(tmp_path / "a", _ema(), every_n_train_steps=every_n_train_steps)
    saved = next((tmp_path / "a" / "checkpoints").glob(saved_glob))
    assert (saved / CALLBACKS_FILE).is_file()
    # model.safetensors holds the training weights, the average is in callbacks.safetensors.
    step = int(saved.name.split("step=")[1].split("-")[0].split(".")[0])
    model_file = read_arrays(saved / "model.safetensors")
    np.testing.assert_array_equal(np.array(model_file["fc1.weight"]), record.weights[step - 1]["fc1.weight"])
    average = read_arrays(saved / CALLBACKS_FILE)
    expected = _numpy_average(record.weights[1:step], decay=0.8)
    np.testing.assert_allclose(
        np.array(average["EMAWeightAveraging/fc1.weight"]), expected["fc1.weight"], rtol=2e-6
    )
    resumed, _, resumed_ema = _fit_resumable(
        tmp_path / "b", _ema(), ckpt_path=str(saved), every_n_train_steps=every_n_train_steps
    )
    for name, value in weights(straight).items():
        assert_same_numbers(weights(resumed)[name], value, err_msg=name)
    assert resumed_ema.n_averaged == ema.n_averaged
    for name, value in ema.state_arrays().items():
        assert_same_numbers(np.array(resumed_ema.state_arrays()[name]), np.array(value), err_msg=name)


@pytest.mark.filterwarnings("ignore:ModelCheckpoint. the resumed checkpoint")
def test_resuming_with_other_settings_is_refused_naming_them(tmp_path):
    _fit_resumable(tmp_path / "a", _ema(), max_epochs=2)
    saved = next((tmp_path / "a" / "checkpoints").glob("epoch=0-*"))
    other = EMAWeightAveraging(decay=0.9, update_starting_at_step=1)
    with pytest.raises(Exception, match=r"other settings: decay 0\.8 there, 0\.9 here"):
        _fit_resumable(tmp_path / "b", other, ckpt_path=str(saved))
    other = EMAWeightAveraging(decay=0.8, update_every_n_steps=2, update_starting_at_step=1)
    with pytest.raises(Exception, match=r"update_every_n_steps 1 there, 2 here"):
        _fit_resumable(tmp_path / "c", other, ckpt_path=str(saved))


class KeepsEMAsStateKey(EMAWeightAveraging):
    """Another class whose state is saved under EMAWeightAveraging's name: a resume loads it and compares."""

    @property
    def state_key(self):
        return "EMAWeightAveraging"


@pytest.mark.filterwarnings("ignore:ModelCheckpoint. the resumed checkpoint")
@pytest.mark.parametrize(
    "other, differs",
    [
        (EMAWeightAveraging(decay=0.9), r"decay 0\.8 there, 0\.9 here"),
        (EMAWeightAveraging(decay=0.8, update_every_n_steps=2), r"update_every_n_steps 1 there, 2 here"),
        (
            EMAWeightAveraging(decay=0.8, update_starting_at_step=1),
            r"update_starting_at_step None there, 1 here",
        ),
        (
            EMAWeightAveraging(decay=0.8, update_starting_at_epoch=0),
            r"update_starting_at_epoch None there, 0 here",
        ),
        (EMAWeightAveraging(decay=0.8, use_buffers=False), r"use_buffers True there, False here"),
        (KeepsEMAsStateKey(decay=0.8), r"class 'EMAWeightAveraging' there, 'KeepsEMAsStateKey' here"),
        (EMAWeightAveraging(decay=0.8, update_starting_at_step=None), None),
    ],
)
def test_resuming_an_average_of_one_update_with_any_other_setting_is_refused_naming_it(
    tmp_path, other, differs
):
    # max_steps=1: the checkpoint's average holds exactly one update.
    _fit_resumable(tmp_path / "a", EMAWeightAveraging(decay=0.8), max_epochs=1, every_n_train_steps=1)
    saved = next((tmp_path / "a" / "checkpoints").glob("epoch=0-step=1*"))
    if differs is None:  # (the same settings resume)
        _fit_resumable(tmp_path / "b", other, ckpt_path=str(saved), max_epochs=1, every_n_train_steps=1)
        return
    with pytest.raises(
        Exception, match=rf"holds an average of 1 update\(s\) made with other settings: {differs}"
    ):
        _fit_resumable(tmp_path / "b", other, ckpt_path=str(saved), max_epochs=1, every_n_train_steps=1)


def test_emas_default_decay_is_lightnings():
    assert EMAWeightAveraging().decay == 0.999


def test_a_fit_without_any_update_keeps_its_weights_and_says_so(tmp_path):
    with pytest.warns(UserWarning, match=r"without updating the average"):
        module, record, _ = _fit(tmp_path, EMAWeightAveraging(update_starting_at_step=100), max_epochs=1)
    for name, value in record.weights[-1].items():
        np.testing.assert_array_equal(weights(module)[name], value)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"decay": 0.0}, ValueError, r"decay must be a float in \(0, 1\), got 0\.0"),
        ({"decay": 1.0}, ValueError, r"decay must be a float in \(0, 1\)"),
        ({"decay": float("nan")}, ValueError, r"decay must be a float in \(0, 1\), got nan"),
        ({"decay": "0.9"}, TypeError, r"decay must be a float in \(0, 1\), got '0.9'"),
        ({"decay": True}, TypeError, r"decay must be a float"),
        ({"update_every_n_steps": 0}, ValueError, r"update_every_n_steps must be an int >= 1, got 0"),
        ({"update_every_n_steps": 1.5}, TypeError, r"update_every_n_steps must be an int >= 1"),
        ({"update_starting_at_step": -1}, ValueError, r"update_starting_at_step must be an int >= 0"),
        ({"update_starting_at_epoch": "1"}, TypeError, r"update_starting_at_epoch must be an int >= 0"),
        (
            {"update_starting_at_step": 3, "update_starting_at_epoch": 1},
            ValueError,
            r"update_starting_at_step \(3\) or update_starting_at_epoch \(1\), not both",
        ),
        ({"use_buffers": 1}, TypeError, r"use_buffers must be True or False"),
        ({"device": "cuda"}, ValueError, r"device='cuda'.*accepted only as None or 'cpu'"),
    ],
)
def test_wrong_arguments_are_refused_naming_them(kwargs, error, message):
    with pytest.raises(error, match=message):
        EMAWeightAveraging(**kwargs)


def test_an_avg_fn_whose_signature_says_nothing_is_named_when_its_call_fails(tmp_path):
    """mx.maximum takes two arrays; Python 3.13 reports its signature as ``(*args, **kwargs)`` (3.10-3.12
    cannot inspect it), and its failed call was a bare "incompatible function arguments", naming no avg_fn."""
    for avg_fn, name in [(mx.maximum, "maximum"), (lambda *args, **kwargs: mx.maximum(*args), "<lambda>")]:
        with pytest.raises(
            TypeError, match=rf"avg_fn .*{name} failed, called as avg_fn\(average, current, n_"
        ):
            _fit(tmp_path / name.strip("<>"), WeightAveraging(avg_fn=avg_fn), max_epochs=1)


def test_avg_fn_misuse_is_refused_naming_it():
    with pytest.raises(TypeError, match=r"avg_fn must be callable"):
        WeightAveraging(avg_fn=3)
    with pytest.raises(
        TypeError, match=r"<lambda>\(a, b\) cannot be called as avg_fn\(average, current, n_averaged\)"
    ):
        WeightAveraging(avg_fn=lambda a, b: a)
    with pytest.raises(ValueError, match=r"give decay \(the EMA\) or avg_fn, not both"):
        WeightAveraging(avg_fn=lambda a, b, n: a, decay=0.9)
    WeightAveraging(device="cpu")
    WeightAveraging(device=mx.cpu)


def test_use_buffers_false_averages_every_parameter_but_batchnorms_statistics(tmp_path):
    ema = EMAWeightAveraging(decay=0.5, use_buffers=False)
    module, record, _ = _fit(tmp_path, ema, max_epochs=1, module=TinyClassifier(batchnorm=True))
    assert "norm.running_mean" not in ema.state_arrays() and "fc1.weight" in ema.state_arrays()
    np.testing.assert_array_equal(
        weights(module)["norm.running_mean"], record.weights[-1]["norm.running_mean"]
    )
    with_buffers = EMAWeightAveraging(decay=0.5)
    _fit(tmp_path / "b", with_buffers, max_epochs=1, module=TinyClassifier(batchnorm=True))
    assert "norm.running_mean" in with_buffers.state_arrays()


def test_warnings_stay_quiet_in_an_ordinary_fit(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        _fit(tmp_path, EMAWeightAveraging(), max_epochs=1)


@pytest.mark.filterwarnings("ignore:ModelCheckpoint. the resumed checkpoint")
def test_the_last_checkpoint_saved_as_fit_ends_holds_the_training_weights_and_resumes_exactly(tmp_path):
    def fit(root, max_epochs, ckpt_path=None):
        record, ema = RecordSteps(), _ema()
        # Saves after every second epoch: the end of an odd number of epochs is saved by on_train_end.
        checkpoints = ModelCheckpoint(every_n_epochs=2, save_last=True, save_top_k=-1)
        trainer = quiet_trainer(
            root,
            max_epochs=max_epochs,
            callbacks=[record, ema, checkpoints],
            enable_checkpointing=True,
            seed=0,
        )
        mx.random.seed(0)  # (three runs: the same initial weights)
        module = TinyClassifier()
        trainer.fit(module, make_batches(48), ckpt_path=ckpt_path)
        return module, record

    straight, _ = fit(tmp_path / "a", max_epochs=5)
    stopped, record = fit(tmp_path / "b", max_epochs=3)
    last = tmp_path / "b" / "checkpoints" / "last"
    assert record.steps[-1] == 9
    model_file = read_arrays(last / "model.safetensors")
    for name, value in record.weights[-1].items():
        np.testing.assert_array_equal(np.array(model_file[name]), value, err_msg=name)
    _close(weights(stopped), _numpy_average(record.weights[1:], decay=0.8))  # the module: the average
    resumed, _ = fit(tmp_path / "c", max_epochs=5, ckpt_path=str(last))
    for name, value in weights(straight).items():
        assert_same_numbers(weights(resumed)[name], value, err_msg=name)


@pytest.mark.filterwarnings("ignore:ModelCheckpoint. the resumed checkpoint")
def test_a_damaged_or_missing_average_is_refused_naming_it(tmp_path):
    from audiotrain.train.checkpoint import CheckpointError

    _fit_resumable(tmp_path / "a", _ema(), max_epochs=2)
    saved = next((tmp_path / "a" / "checkpoints").glob("epoch=0-*"))
    file = saved / CALLBACKS_FILE
    arrays = dict(mx.load(str(file)))
    key = "EMAWeightAveraging/fc1.weight"
    for i, (damaged, message) in enumerate(
        [
            ({**arrays, key: arrays[key][:3]}, r"'fc1.weight' of shape \(3, 8\)"),
            # (a float16 average would have made the resumed fit end with float16 weights)
            (
                {**arrays, key: arrays[key].astype(mx.float16)},
                r"'fc1.weight' in float16, the parameter in float32",
            ),
            ({**arrays, "EMAWeightAveraging/extra.weight": arrays[key]}, r"unexpected 'extra.weight'"),
        ]
    ):
        mx.save_safetensors(str(file), damaged)
        with pytest.raises(CheckpointError, match=r"callbacks.safetensors.*" + message):
            _fit_resumable(tmp_path / f"b{i}", _ema(), ckpt_path=str(saved))
    mx.save_safetensors(str(file), arrays)
    state_file = saved / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["callbacks"]["EMAWeightAveraging"]["n_averaged"] = 0
    state_file.write_text(json.dumps(state))
    with pytest.raises(
        CheckpointError, match=r"averaged arrays .* beside a state that has averaged no update"
    ):
        _fit_resumable(tmp_path / "d", _ema(), ckpt_path=str(saved))
    state["callbacks"]["EMAWeightAveraging"]["n_averaged"] = 2
    state_file.write_text(json.dumps(state))
    file.unlink()
    with pytest.raises(CheckpointError, match=r"averaged 2 update\(s\), but the checkpoint holds no average"):
        _fit_resumable(tmp_path / "c", _ema(), ckpt_path=str(saved))


# ---------------------------------------------------------------- with fine-tuning, and other callbacks
class Backboned(TrainModule):
    """A backbone (with a BatchNorm) and a head, for BackboneFinetuning."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm(16), nn.ReLU())
        self.head = nn.Linear(16, 3)

    def compute_loss(self, batch):
        x, y = batch
        return mx.mean(nn.losses.cross_entropy(self.head(self.backbone(x)), y)), {}

    def validation_step(self, batch):
        return self.compute_loss(batch)[0]

    def configure_optimizers(self):
        return optim.Adam(learning_rate=1e-2)


def _fit_unfreezing(root, ckpt_path=None, finetuning=None):
    ema = EMAWeightAveraging(decay=0.9, use_buffers=False)
    finetuning = finetuning or BackboneFinetuning(unfreeze_backbone_at_epoch=2)
    checkpoints = ModelCheckpoint(every_n_epochs=1, save_top_k=-1)
    trainer = quiet_trainer(
        root,
        max_epochs=4,
        callbacks=[ema, finetuning, checkpoints],
        enable_checkpointing=True,
        enable_model_summary=False,
        seed=0,
    )
    mx.random.seed(0)
    module = Backboned()
    trainer.fit(module, make_batches(48), ckpt_path=ckpt_path)
    return module, ema


@pytest.mark.filterwarnings("ignore:ModelCheckpoint. the resumed checkpoint")
def test_use_buffers_false_averages_the_backbone_frozen_and_unfrozen_and_resumes_after_the_unfreeze(tmp_path):
    straight, ema = _fit_unfreezing(tmp_path / "a")
    averaged = set(ema.state_arrays())
    # Every parameter (the backbone frozen for two epochs too), never BatchNorm's statistics.
    assert {"backbone.layers.0.weight", "backbone.layers.1.weight", "head.weight"} <= averaged
    assert not {"backbone.layers.1.running_mean", "backbone.layers.1.running_var"} & averaged
    saved_at = sorted((tmp_path / "a" / "checkpoints").glob("epoch=*"))[:-1]  # (the last: nothing left to do)
    for saved in saved_at:  # before and after the unfreeze at epoch 2
        resumed, resumed_ema = _fit_unfreezing(tmp_path / saved.name, ckpt_path=str(saved))
        for name, value in weights(straight).items():
            assert_same_numbers(weights(resumed)[name], value, err_msg=f"{saved.name}: {name}")
        for name, value in ema.state_arrays().items():
            assert_same_numbers(resumed_ema.state_arrays()[name], value, err_msg=f"{saved.name}: {name}")


class FreezeHeadAtEpochOne(BaseFinetuning):
    def freeze_before_training(self, module):
        pass

    def finetune_function(self, module, epoch, optimizer):
        if epoch == 1:
            self.freeze(module.head)


@pytest.mark.filterwarnings("ignore:ModelCheckpoint. the resumed checkpoint")
def test_freezing_a_layer_mid_fit_keeps_averaging_it_and_resumes_exactly(tmp_path):
    straight, ema = _fit_unfreezing(tmp_path / "a", finetuning=FreezeHeadAtEpochOne())
    assert "head.weight" in ema.state_arrays()
    saved = next((tmp_path / "a" / "checkpoints").glob("epoch=1-*"))  # after the freeze
    resumed, _ = _fit_unfreezing(tmp_path / "b", ckpt_path=str(saved), finetuning=FreezeHeadAtEpochOne())
    for name, value in weights(straight).items():
        assert_same_numbers(weights(resumed)[name], value, err_msg=name)


@pytest.mark.parametrize("order", ["averaging-first", "averaging-last"])
def test_two_weight_averaging_callbacks_are_refused_naming_both(tmp_path, order):
    two = [EMAWeightAveraging(decay=0.5), StochasticWeightAveraging(swa_lrs=1e-2, swa_epoch_start=1)]
    two = two if order == "averaging-first" else two[::-1]
    trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=two)
    with pytest.raises(ValueError, match=r"2 weight-averaging callbacks.*EMAWeightAveraging.*keep one"):
        trainer.fit(TinyClassifier(), make_batches(48))
    with pytest.raises(ValueError, match=r"\(EMAWeightAveraging, EMAWeightAveraging\)"):
        callbacks = [EMAWeightAveraging(), EMAWeightAveraging()]
        quiet_trainer(tmp_path, max_epochs=1, callbacks=callbacks).fit(TinyClassifier(), make_batches(48))


class FailsInSecondValidation(Backboned):
    def __init__(self, fail):
        super().__init__()
        self.fail = fail

    def validation_step(self, batch):
        if self.fail and self.trainer.current_epoch == 1:
            raise RuntimeError("failed in validation")
        return super().validation_step(batch)


@pytest.mark.parametrize("order", ["checkpoint-first", "checkpoint-last"])
def test_an_exception_in_validation_saves_and_keeps_the_training_weights_in_either_order(tmp_path, order):
    def fit(root, fail, ckpt_path=None):
        on_exception = OnExceptionCheckpoint(tmp_path / "failed")
        ema, record = EMAWeightAveraging(decay=0.9), RecordSteps()
        callbacks = (
            [on_exception, record, ema] if order == "checkpoint-first" else [record, ema, on_exception]
        )
        # (compile=False: validation_step runs eagerly, so it can raise in the second epoch only)
        trainer = quiet_trainer(root, max_epochs=3, callbacks=callbacks, seed=0, compile=False)
        mx.random.seed(0)
        module = FailsInSecondValidation(fail)
        try:
            trainer.fit(module, make_batches(48), make_batches(16), ckpt_path=ckpt_path)
        except RuntimeError:
            pass
        return module, record, on_exception

    straight, _, _ = fit(tmp_path / "a", fail=False)
    failed, record, on_exception = fit(tmp_path / "b", fail=True)
    # The fit's error leaves the training weights in the module, and the checkpoint holds them.
    model_file = read_arrays(on_exception.ckpt_path / "model.safetensors")
    for name, value in record.weights[-1].items():
        np.testing.assert_array_equal(weights(failed)[name], value, err_msg=name)
        np.testing.assert_array_equal(np.array(model_file[name]), value, err_msg=name)
    resumed, _, _ = fit(tmp_path / "c", fail=False, ckpt_path=on_exception.ckpt_path)
    for name, value in weights(straight).items():
        assert_same_numbers(weights(resumed)[name], value, err_msg=name)


class FailsAtBatch(Callback):
    """Raises after the `at`-th training batch of the fit (counted from 1)."""

    def __init__(self, at):
        self.seen, self.at = 0, at

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.seen += 1
        if self.seen == self.at:
            raise RuntimeError("failed mid-window")


def test_a_fit_resumed_inside_an_accumulation_window_averages_each_step_once(tmp_path):
    def fit(root, callbacks=(), ckpt_path=None):
        ema = EMAWeightAveraging(decay=0.5)
        trainer = quiet_trainer(
            root, max_epochs=2, accumulate_grad_batches=3, callbacks=[ema, *callbacks], seed=0
        )
        mx.random.seed(0)
        module = TinyClassifier()
        trainer.fit(module, make_batches(48, batch_size=8), ckpt_path=ckpt_path)  # 2 windows of 3 an epoch
        return module, ema

    straight, straight_ema = fit(tmp_path / "a")
    on_exception = OnExceptionCheckpoint(tmp_path / "failed")
    with pytest.raises(RuntimeError, match="failed mid-window"):
        fit(tmp_path / "b", [FailsAtBatch(7), on_exception])  # step 2 done, the window of step 3 open
    resumed, resumed_ema = fit(tmp_path / "c", ckpt_path=on_exception.ckpt_path)
    assert resumed_ema.n_averaged == straight_ema.n_averaged == 4
    for name, value in weights(straight).items():
        assert_same_numbers(weights(resumed)[name], value, err_msg=name)


def test_lightnings_averaged_model_keywords_are_refused_saying_what_stands_for_them():
    """Lightning passes WeightAveraging's other keywords on to torch's AveragedModel: a Lightning script's
    `multi_avg_fn=get_ema_multi_avg_fn(0.999)` was a bare "unexpected keyword argument"."""
    with pytest.raises(
        TypeError, match=r"WeightAveraging\(multi_avg_fn=.*\): torch's multi_avg_fn .* decay=D"
    ):
        WeightAveraging(multi_avg_fn=lambda averaged, current, n: None)
    with pytest.raises(
        TypeError, match=r"WeightAveraging\(foo=\.\.\.\): an argument of torch's AveragedModel"
    ):
        WeightAveraging(foo=1)


# ---------------------------------------------------------------- evaluating a checkpoint


def _fit_ranked(root, averaging, max_epochs=4, module=None, **checkpoint_args):
    """A fit whose ModelCheckpoint keeps the best val_loss (validated with an EMA's average, or with the
    training weights under SWA); `checkpoint_args`: the ModelCheckpoint's others."""
    mx.random.seed(0)
    best = ModelCheckpoint(monitor="val_loss", **{"save_top_k": 1, **checkpoint_args})
    trainer = quiet_trainer(
        root, max_epochs=max_epochs, callbacks=[averaging, best], enable_checkpointing=True, seed=0
    )
    trainer.fit(module or TinyClassifier(), make_batches(96), val_dataloaders=make_batches(32, seed=1))
    return trainer, best


@pytest.mark.parametrize(
    "averaging",
    [
        lambda: EMAWeightAveraging(decay=0.9),
        lambda: StochasticWeightAveraging(swa_lrs=0.05, swa_epoch_start=2),
    ],
    ids=["ema", "swa"],
)
def test_evaluating_a_checkpoint_scores_the_weights_that_ranked_it(tmp_path, averaging):
    # An EMA's fit validates with the average, which ranks its checkpoints; model.safetensors holds the
    # training weights. validate/test/predict(ckpt_path=...) and load_from_checkpoint load the average, as
    # Lightning's checkpoint state_dict is that average, with or without the callback in the Trainer.
    trainer, best = _fit_ranked(tmp_path, averaging())
    score = float(best.best_model_score)
    val = make_batches(32, seed=1)
    assert trainer.validate(ckpt_path="best", dataloaders=val)[0]["val_loss"] == pytest.approx(
        score, rel=1e-6
    )
    other = quiet_trainer(tmp_path / "other")
    assert other.validate(TinyClassifier(), val, ckpt_path=best.best_model_path)[0][
        "val_loss"
    ] == pytest.approx(score, rel=1e-6)
    loaded = TinyClassifier.load_from_checkpoint(best.best_model_path)
    assert other.validate(loaded, val)[0]["val_loss"] == pytest.approx(score, rel=1e-6)


def test_a_weights_only_checkpoint_holds_the_average_that_ranked_it(tmp_path):
    # Such a folder has no callbacks.safetensors: its model.safetensors holds the average (not the training
    # weights, which Lightning's weights-only checkpoint holds), so it scores what ranked it.
    _, best = _fit_ranked(tmp_path, EMAWeightAveraging(decay=0.9), max_epochs=3, save_weights_only=True)
    val = make_batches(32, seed=1)
    other = quiet_trainer(tmp_path / "other")
    score = float(best.best_model_score)
    assert other.validate(TinyClassifier(), val, ckpt_path=best.best_model_path)[0][
        "val_loss"
    ] == pytest.approx(score, rel=1e-6)
    loaded = TinyClassifier.load_from_checkpoint(best.best_model_path)
    assert other.validate(loaded, val)[0]["val_loss"] == pytest.approx(score, rel=1e-6)


@pytest.mark.parametrize(
    "averaging, module",
    [
        (lambda: EMAWeightAveraging(decay=0.9), TinyClassifier),
        # Saved before the first update: no average, model.safetensors is what validation used.
        (lambda: EMAWeightAveraging(decay=0.9, update_starting_at_epoch=1), TinyClassifier),
        # An average without BatchNorm's statistics: those come from model.safetensors.
        (lambda: EMAWeightAveraging(decay=0.9, use_buffers=False), lambda: TinyClassifier(batchnorm=True)),
    ],
    ids=["ema", "ema-from-epoch-1", "ema-without-buffers"],
)
def test_evaluating_an_earlier_checkpoint_after_fit_scores_the_weights_that_ranked_it(
    tmp_path, averaging, module
):
    # The same Trainer after fit (its callback holding the final average) and a fresh one score the
    # epoch-0 checkpoint as it was ranked.
    trainer, every = _fit_ranked(tmp_path, averaging(), max_epochs=3, module=module(), save_top_k=-1)
    first = next(path for path in every.best_k_models if Path(path).name.startswith("epoch=0-"))
    score = float(every.best_k_models[first])
    val = make_batches(32, seed=1)
    assert trainer.validate(ckpt_path=first, dataloaders=val)[0]["val_loss"] == pytest.approx(score, rel=1e-6)
    other = quiet_trainer(tmp_path / "other")
    assert other.validate(module(), val, ckpt_path=first)[0]["val_loss"] == pytest.approx(score, rel=1e-6)


def test_a_non_strict_load_of_an_ema_checkpoint_takes_the_average_of_the_layers_it_has(tmp_path):
    _, best = _fit_ranked(
        tmp_path, EMAWeightAveraging(decay=0.9), max_epochs=2, module=TinyClassifier(batchnorm=True)
    )
    with pytest.warns(UserWarning, match="in the checkpoint but not in the model, ignored: norm.bias"):
        loaded = TinyClassifier.load_from_checkpoint(best.best_model_path, strict=False, batchnorm=False)
    average = read_arrays(Path(best.best_model_path) / CALLBACKS_FILE)
    for name, value in weights(loaded).items():
        np.testing.assert_array_equal(value, np.array(average[f"EMAWeightAveraging/{name}"]), err_msg=name)


@pytest.mark.filterwarnings("ignore:ModelCheckpoint. the resumed checkpoint")  # (another folder)
def test_a_fit_resumed_from_an_ema_checkpoint_goes_on_from_the_training_weights(tmp_path):
    _, best = _fit_ranked(tmp_path / "a", EMAWeightAveraging(decay=0.9), max_epochs=2)
    saved = read_arrays(Path(best.best_model_path) / "model.safetensors")

    class AtStart(Callback):
        def on_train_start(self, trainer, module):
            self.weights = weights(module)

    at_start = AtStart()
    callbacks = [EMAWeightAveraging(decay=0.9), ModelCheckpoint(monitor="val_loss"), at_start]
    trainer = quiet_trainer(
        tmp_path / "b", max_epochs=3, callbacks=callbacks, enable_checkpointing=True, seed=0
    )
    trainer.fit(TinyClassifier(), make_batches(96), make_batches(32, seed=1), ckpt_path=best.best_model_path)
    for name, value in saved.items():
        np.testing.assert_array_equal(at_start.weights[name], np.array(value), err_msg=name)


def test_evaluating_a_checkpoint_whose_average_is_damaged_or_missing_names_the_file(tmp_path):
    from audiotrain.train.checkpoint import CheckpointError

    _, best = _fit_ranked(tmp_path, EMAWeightAveraging(decay=0.9), max_epochs=2)
    file = Path(best.best_model_path) / CALLBACKS_FILE
    arrays = dict(mx.load(str(file)))
    del arrays["EMAWeightAveraging/fc2.bias"]
    mx.save_safetensors(str(file), arrays)
    other = quiet_trainer(tmp_path / "other")
    with pytest.raises(CheckpointError, match=r"callbacks.safetensors .*missing 'fc2.bias'"):
        other.validate(TinyClassifier(), make_batches(32), ckpt_path=best.best_model_path)
    file.unlink()
    with pytest.raises(CheckpointError, match=r"callbacks.safetensors is missing"):
        TinyClassifier.load_from_checkpoint(best.best_model_path)


class RecordBfloat16Steps(RecordSteps):
    """RecordSteps for bfloat16 weights (numpy has no bfloat16): float64 copies."""

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step > (self.steps[-1] if self.steps else 0):
            self.steps.append(trainer.global_step)
            self.weights.append(_as_float64(module))


def _as_float64(module) -> dict:
    return {k: np.array(v.astype(mx.float32), dtype=np.float64) for k, v in tree_flatten(module.parameters())}


def test_a_bf16_true_fits_ema_is_the_ema_of_its_weights_not_one_rounded_to_bfloat16_each_step(tmp_path):
    # bfloat16 keeps 8 significant bits: an average stored in it rounds away each step's (1 - decay) share
    # of the change, so it lagged the EMA of the very weights it averaged by several percent of them.
    record = RecordBfloat16Steps()
    trainer = quiet_trainer(
        tmp_path, max_epochs=4, precision="bf16-true", callbacks=[record, EMAWeightAveraging(decay=0.99)]
    )
    module = TinyClassifier(lr=1e-2)
    trainer.fit(module, make_batches(48))
    expected = _numpy_average(record.weights, decay=0.99)
    assert {v.dtype for _, v in tree_flatten(module.parameters())} == {mx.bfloat16}
    for name, value in _as_float64(module).items():
        # the float64 EMA rounded once to bfloat16: within one bfloat16 step of it
        np.testing.assert_allclose(value, expected[name], rtol=2**-8, atol=1e-6, err_msg=name)


def test_a_bf16_true_checkpoint_saved_with_a_bfloat16_average_validates_on_a_model_built_anew(tmp_path):
    # Before: a checkpoint of a bf16-true fit saved before averages were kept in float32 (its
    # callbacks.safetensors average in bfloat16) was refused by validate(ckpt_path=...) on a model built anew
    # ("'fc1.weight' in bfloat16, the parameter in float32"), though that run's model file, bfloat16 too, is
    # taken, and a checkpoint saved now (a float32 average) validates.
    folder = tmp_path / "ck"
    callbacks = [
        EMAWeightAveraging(decay=0.99),
        ModelCheckpoint(dirpath=folder, save_last=True, monitor=None),
    ]
    trainer = quiet_trainer(
        tmp_path, max_epochs=2, precision="bf16-true", enable_checkpointing=True, callbacks=callbacks
    )
    trainer.fit(TinyClassifier(lr=1e-2), make_batches(48), make_batches(16))
    now = quiet_trainer(tmp_path, max_epochs=1, precision="bf16-true").validate(
        TinyClassifier(), make_batches(16), ckpt_path=str(folder / "last")
    )
    saved = mx.load(str(folder / "last" / CALLBACKS_FILE))
    mx.save_safetensors(
        str(folder / "last" / CALLBACKS_FILE), {k: a.astype(mx.bfloat16) for k, a in saved.items()}
    )
    before = quiet_trainer(tmp_path, max_epochs=1, precision="bf16-true").validate(
        TinyClassifier(), make_batches(16), ckpt_path=str(folder / "last")
    )
    assert before == now  # (its average, rounded to the bfloat16 weights it is validated in, is the same)
    loaded = TinyClassifier.load_from_checkpoint(str(folder / "last"))
    assert loaded.fc1.weight.dtype == mx.float32
