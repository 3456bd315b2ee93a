"""Mistakes in a TrainModule that used to train silently or fail deep inside MLX, each refused with a message
that names the cause: a missing super().__init__(), a metric named like a loss, a negative learning rate,
an empty validation loader behind a monitored metric, and an MLX error evaluating a step."""

from __future__ import annotations

import math
import warnings

import audiotrain  # noqa: F401  (loads the BLAS before mlx)
from audiotrain import DataLoader, OptimizerConfig, Trainer
from audiotrain.train.callbacks import ModelCheckpoint

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import pytest
from tasks import TinyClassifier, make_batches, make_data, quiet_trainer


def test_a_module_whose_init_skips_super_init_is_named_when_fit_starts(tmp_path):
    class Forgets(TinyClassifier):
        def __init__(self):  # builds its layers, never calls super().__init__()
            self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 3)
            self.norm, self.drop, self.lr = None, nn.Dropout(0.0), 1e-2

    with pytest.raises(AttributeError, match=r"Forgets.__init__ did not call super\(\).__init__\(\)"):
        quiet_trainer(tmp_path, max_epochs=1).fit(Forgets(), make_batches())
    with pytest.raises(AttributeError, match="did not call super"):
        Forgets().trainable_parameters()


@pytest.mark.parametrize("name", ["train_loss", "val_loss", "test_loss"])
def test_a_metric_named_as_a_stage_loss_is_refused(tmp_path, name):
    class Shadows(TinyClassifier):
        def compute_loss(self, batch):
            loss, _ = super().compute_loss(batch)
            return loss, {name: mx.array(123.0)}  # would be the history's loss, a constant

    with pytest.raises(ValueError, match=rf"Shadows.compute_loss: a metric is named '{name}', which would"):
        quiet_trainer(tmp_path, max_epochs=1).fit(Shadows(), make_batches(), make_batches())


@pytest.mark.parametrize("rate", [-1.0, math.nan, math.inf])
@pytest.mark.parametrize("wrapped", [False, True])
def test_a_negative_or_non_finite_learning_rate_is_refused(tmp_path, rate, wrapped):
    class Climbs(TinyClassifier):
        def configure_optimizers(self):
            optimizer = optim.AdamW(learning_rate=rate)
            return OptimizerConfig(optimizer) if wrapped else optimizer

    with pytest.raises(ValueError, match=r"Climbs.configure_optimizers: AdamW has learning_rate=.*finite"):
        quiet_trainer(tmp_path, max_epochs=1).fit(Climbs(), make_batches())


def test_a_zero_learning_rate_trains_without_changing_the_weights(tmp_path):
    class Frozen(TinyClassifier):
        def configure_optimizers(self):
            return optim.SGD(learning_rate=0.0)

    module = Frozen()
    before = mx.array(module.fc1.weight)
    quiet_trainer(tmp_path, max_epochs=1).fit(module, make_batches())
    assert mx.array_equal(before, module.fc1.weight)


def test_an_empty_val_loader_behind_a_monitor_says_it_yields_no_batches(tmp_path):
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ck", monitor="val_loss")
    trainer = quiet_trainer(tmp_path, max_epochs=1, enable_checkpointing=True, callbacks=[checkpoint])
    with pytest.raises(KeyError) as raised, pytest.warns(UserWarning, match="yielded no batches"):
        trainer.fit(TinyClassifier(), make_batches(), DataLoader([], batch_size=4))
    assert "(it is a validation metric, and the val loader yields no batches: its dataset is empty)" in str(
        raised.value
    )


class FloatLabels(TinyClassifier):
    def compute_loss(self, batch):
        x, y = batch
        return mx.mean(nn.losses.cross_entropy(self(x), y)), {}  # indexes with float labels


def _float_label_batches() -> list:
    """Two batches of 16 whose class labels are float32 (a dtype MLX's gather does not take)."""
    x, y = make_data(32)
    return [(mx.array(x[i : i + 16]), mx.array(y[i : i + 16]).astype(mx.float32)) for i in (0, 16)]


def test_an_mlx_error_evaluating_a_validation_step_names_the_step_batch_and_dtypes(tmp_path):
    float_labels = _float_label_batches()

    trainer = Trainer(default_root_dir=tmp_path, max_epochs=1, enable_progress_bar=False)
    with pytest.raises(RuntimeError) as raised:
        trainer.fit(FloatLabels(), make_batches(), float_labels)
    message = str(raised.value)
    assert message.startswith(
        "FloatLabels.compute_loss (run by the default validation_step) in sanity-check "
    )
    assert "validation, batch 0: MLX failed evaluating its outputs: [GatherAxis::eval_cpu]" in message
    assert "batch[0]: float32 (16, 8), batch[1]: float32 (16,)" in message
    assert "GatherAxis" in str(raised.value.__cause__)  # MLX's error, chained


# (An eager step's first steps are checked for a gradient, a host wait of their own: MLX's error met there
# came out bare, "[ScatterAxis::eval_cpu] Cannot scatter with indices type.", naming no step nor batch.)
@pytest.mark.parametrize("eager", [{}, {"debug_lazy_eval": True}, {"compile": False}])
def test_an_mlx_error_evaluating_a_training_step_names_the_step_batch_and_dtypes(tmp_path, eager):
    float_labels = _float_label_batches()

    trainer = Trainer(default_root_dir=tmp_path, max_epochs=1, enable_progress_bar=False, **eager)
    with pytest.raises(RuntimeError) as raised:
        trainer.fit(FloatLabels(), float_labels)  # no validation: the training step meets it first
    message = str(raised.value)
    # (The step's gradient meets the labels first: MLX's ScatterAxis, the backward of the gather.)
    assert message.startswith(
        "FloatLabels.compute_loss in training, batch 0: MLX failed evaluating its outputs"
    )
    assert "(the arrays of batch 0: batch[0]: float32 (16, 8), batch[1]: float32 (16,);" in message
    assert "eval_cpu" in str(raised.value.__cause__)  # MLX's error, chained


def test_an_mlx_error_in_the_first_step_of_a_trainers_second_fit_names_batch_0(tmp_path):
    """A Trainer's second fit (after a first, or the tuner's) did not wait for its first step: MLX's error in
    it named "batch -1 or 0", a batch that does not exist."""
    trainer = quiet_trainer(tmp_path, max_epochs=1)
    trainer.fit(TinyClassifier(), make_batches())
    trainer.max_epochs = 2  # (the second fit goes on from the first's epoch)
    with pytest.raises(RuntimeError) as raised:
        trainer.fit(FloatLabels(), _float_label_batches())
    assert str(raised.value).startswith(
        "FloatLabels.compute_loss in training, batch 0: MLX failed evaluating its outputs"
    ), str(raised.value)[:200]


def test_resuming_says_when_the_checkpoint_s_learning_rate_replaces_the_one_configured_now(tmp_path):
    """A fine-tuner who lowers the rate and resumes trained on at the old one without a word (the optimizer's
    state, rate included, is restored for an exact resume, as in Lightning)."""
    first = quiet_trainer(tmp_path / "a", max_epochs=1, enable_checkpointing=True)
    first.fit(TinyClassifier(lr=1e-3), make_batches())
    checkpoint = next((tmp_path / "a").rglob("last"))
    with pytest.warns(UserWarning, match=r"learning_rate 0\.05 \(configure_optimizers\) is replaced by the"):
        quiet_trainer(tmp_path / "b", max_epochs=2).fit(
            TinyClassifier(lr=5e-2), make_batches(), ckpt_path=checkpoint
        )
    same = quiet_trainer(tmp_path / "c", max_epochs=2)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*learning_rate")
        same.fit(TinyClassifier(lr=1e-3), make_batches(), ckpt_path=checkpoint)


def test_an_evaluation_means_override_without_a_return_is_named(tmp_path):
    """An `evaluation_means` override that changes the means in place and forgets `return means` returned
    None, a Ctrl-C's "stopped": fit printed "Interrupted by SIGTERM" and ended after one epoch, with no
    signal sent, and validate failed with "'NoneType' object has no attribute 'items'"."""

    class Forgets(TinyClassifier):
        def evaluation_means(self, stage, means):
            means[f"{stage}_twice"] = 2 * means[f"{stage}_loss"]  # (no return)

    message = (
        r"Forgets.evaluation_means\(stage, means\) must return the dict of the val means .* got NoneType"
    )
    with pytest.raises(TypeError, match=message):
        quiet_trainer(tmp_path, max_epochs=2).fit(Forgets(), make_batches(), make_batches())
    with pytest.raises(TypeError, match=message):
        quiet_trainer(tmp_path).validate(Forgets(), make_batches())


class ReadsAFeaturesKey(nn.Module):
    """A loss written for dict batches ({"features", "root"}), as a chord model's is."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 3)

    def __call__(self, x):
        return self.linear(x)

    def compute_loss(self, batch):
        return mx.mean(nn.losses.cross_entropy(self(batch["features"]), batch["root"])), {}

    def configure_optimizers(self):
        return OptimizerConfig(optimizer=optim.SGD(learning_rate=0.1))


def test_an_error_of_the_step_on_a_batch_of_the_wrong_form_names_the_step_and_the_batch(tmp_path):
    # A collate_fn that returned the items as a list (or an (x, y) tuple) met a loss reading
    # batch["features"]: Python's "list indices must be integers or slices, not str" named no batch, shape or dtype.
    from audiotrain import TrainModule

    class Model(ReadsAFeaturesKey, TrainModule):
        pass

    items = [{"features": mx.zeros((4, 8)), "root": mx.zeros((4,), mx.int32)} for _ in range(2)]
    loader = DataLoader(items * 2, batch_size=2, collate_fn=lambda batch: batch)
    with pytest.raises(TypeError) as raised:
        Trainer(default_root_dir=tmp_path, max_epochs=1, enable_progress_bar=False).fit(Model(), loader)
    message = str(raised.value)
    assert message.startswith("list indices must be integers or slices, not str")
    assert (
        "(Model.compute_loss in training, batch 0; the arrays of batch 0: batch[0]['features']: float32"
        in message
    )
    assert "(2, 4, 8)" not in message and "batch[1]['root']: int32 (4,)" in message


def test_an_error_of_the_validation_step_on_a_batch_of_the_wrong_form_names_the_step_and_the_batch(tmp_path):
    # The validation loader's collate_fn alone was wrong: the sanity check met it with the bare message.
    from audiotrain import TrainModule

    class Model(ReadsAFeaturesKey, TrainModule):
        def validation_step(self, batch, batch_idx):
            self.log("val_loss", self.compute_loss(batch)[0])

    items = [{"features": mx.zeros((4, 8)), "root": mx.zeros((4,), mx.int32)} for _ in range(4)]
    train = DataLoader(items, batch_size=2)
    val = DataLoader(items, batch_size=2, collate_fn=lambda batch: batch)
    with pytest.raises(TypeError) as raised:
        Trainer(default_root_dir=tmp_path, max_epochs=1, enable_progress_bar=False).fit(Model(), train, val)
    message = str(raised.value)
    assert message.startswith("list indices must be integers or slices, not str (")
    assert "batch 0; the arrays of batch 0: batch[0]['features']: float32 (4, 8)" in message


def test_an_error_of_on_after_optimizer_step_names_that_hook_not_the_loss_and_the_batch(tmp_path):
    # The training step's errors were all named as the loss's, with the batch's arrays: a constraint of the
    # wrong shape in on_after_optimizer_step read "... (Model.compute_loss in training, batch 0; the arrays
    # of batch 0: ...)", sending the user to a loss and a batch that were right.
    from audiotrain import TrainModule

    class Model(ReadsAFeaturesKey, TrainModule):
        def on_after_optimizer_step(self):
            self.linear.weight = self.linear.weight + mx.zeros((5, 5))

    items = [{"features": mx.zeros((8,)), "root": mx.array(0, mx.int32)} for _ in range(4)]
    with pytest.raises(ValueError) as raised:
        Trainer(default_root_dir=tmp_path, max_epochs=1, enable_progress_bar=False).fit(
            Model(), DataLoader(items, batch_size=2)
        )
    message = str(raised.value)
    assert message.startswith("[broadcast_shapes] Shapes (3,8) and (5,5) cannot be broadcast.")
    assert (
        "(Model.on_after_optimizer_step, which runs inside the training step after the optimizer update)"
        in message
    )
    assert "compute_loss" not in message and "arrays of batch" not in message


def test_a_model_that_is_no_train_module_is_named_first_by_each_stage():
    """Lightning 2.6.6's `Trainer().fit(nn.Linear(2, 2))` raises TypeError "`model` must be a
    `LightningModule` ..., got `Linear`" (measured), before anything about the Trainer's flags. `fit` said
    instead that Trainer() sets no max_epochs/max_steps/max_time, sending the user after the wrong mistake."""
    for stage in ("fit", "validate", "test", "predict"):
        with pytest.raises(TypeError, match=rf"Trainer\.{stage}: expected a TrainModule, got Linear"):
            getattr(Trainer(enable_progress_bar=False), stage)(nn.Linear(2, 2), make_batches())


@pytest.mark.parametrize(
    "name, stage",
    [
        ("training_step", "fit"),
        ("configure_optimizers", "fit"),
        ("validation_step", "validate"),
        ("test_step", "test"),
        ("predict_step", "predict"),
    ],
)
def test_a_step_set_to_none_is_refused_by_the_stage_that_needs_it(tmp_path, name, stage):
    """Lightning 2.6.6 refuses `model.<step> = None` by name (measured: "No `training_step()` method
    defined", "... `validation_step()` method defined to run `Trainer.validate`", "`predict_step` cannot be
    None"); it failed inside the step as "'NoneType' object is not callable", or ran the default one."""
    model = TinyClassifier()
    setattr(model, name, None)
    with pytest.raises(
        TypeError, match=rf"Trainer\.{stage}: TinyClassifier\.{name} is None: no `{name}\(\)`"
    ):
        getattr(quiet_trainer(tmp_path, max_epochs=1), stage)(model, make_batches(32))


def test_a_validation_step_set_to_none_skips_validation_in_fit_with_lightnings_warning(tmp_path):
    """Lightning 2.6.6: `model.validation_step = None` with a val loader trains without validating and warns
    "You passed in a `val_dataloader` but have no `validation_step`. Skipping val loop." (measured). Here
    the sanity check failed calling None."""
    model = TinyClassifier()
    model.validation_step = None
    t = quiet_trainer(tmp_path, max_epochs=1, num_sanity_val_steps=2)
    with pytest.warns(UserWarning, match=r"passed in a `val_dataloader` but have no `validation_step`"):
        t.fit(model, make_batches(32), make_batches(32, seed=1))
    assert t.global_step == 2 and not any(k.startswith("val") for k in t.callback_metrics)
