"""The compiled steps (train/step.py): compiled runs equal eager ones, whatever a hook or a step does."""

import warnings

import audiotrain  # noqa: F401  (before mlx)
from audiotrain import OptimizerConfig, TrainModule
from audiotrain.train.callbacks import Callback

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from exactness import ON_GPU, assert_same_numbers, same_values
from mlx.utils import tree_flatten, tree_map, tree_unflatten
from reference import require
from tasks import RecordingLogger, TinyClassifier, make_batches, quiet_trainer, weights


def trainer(tmp_path, **kwargs):
    return quiet_trainer(tmp_path, **kwargs)


class RandomValidation(TinyClassifier):
    """Validation draws from MLX's generator on every batch (noise augmentation, MC dropout...)."""

    def validation_step(self, batch):
        loss, metrics = self.compute_loss(batch)
        return loss, {**metrics, "draw": mx.random.uniform(shape=())}


class FreezesBatchNormAfterWarmup(TinyClassifier):
    """Lightning's habit: switch a submodule to eval mode in a hook (freeze BatchNorm statistics, stop
    dropout) after a warm-up epoch."""

    def __init__(self):
        super().__init__(dropout=0.3, batchnorm=True)

    def on_train_epoch_start(self, epoch):
        if epoch >= 1:
            self.norm.eval()
            self.drop.eval()


class Draws(Callback):
    def __init__(self):
        self.values = []

    def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.values.append(float(outputs["draw"]))


# ---------------------------------------------------------------- defect 1: random draws in evaluation
@pytest.mark.parametrize("compile_", [True, False])
def test_random_draws_in_validation_differ_per_batch(tmp_path, compile_):
    """A validation step compiled without the random state replayed one draw on every batch."""
    draws = Draws()
    t = trainer(tmp_path, max_epochs=1, compile=compile_, callbacks=[draws])
    t.validate(RandomValidation(), make_batches(64))
    assert len(draws.values) == 4 and len(set(draws.values)) == 4


def test_random_draws_in_validation_and_test_are_the_same_compiled_and_eager(tmp_path):
    runs = []
    for compile_ in (True, False):
        mx.random.seed(3)
        draws = Draws()
        t = trainer(tmp_path, max_epochs=1, compile=compile_, callbacks=[draws])
        module = RandomValidation()
        t.validate(module, make_batches(48))
        (tested,) = t.test(module, make_batches(48))
        runs.append((draws.values, tested, float(mx.random.uniform())))
    assert runs[0] == runs[1]


# ---------------------------------------------------------------- defect 2: a mode switch in a hook
def test_running_statistics_stay_put_once_a_hook_froze_them(tmp_path):
    """The compiled step traced in training mode ignored `norm.eval()`: BatchNorm kept updating its
    running statistics after the hook froze them (the eager run did not)."""

    class Snapshot(Callback):
        def __init__(self):
            self.means = []

        def on_train_epoch_end(self, trainer, module):
            self.means.append(np.array(module.norm.running_mean))

    snapshot = Snapshot()
    mx.random.seed(0)
    trainer(tmp_path, max_epochs=3, callbacks=[snapshot]).fit(FreezesBatchNormAfterWarmup(), make_batches())
    first, second, third = snapshot.means
    assert not np.array_equal(first, np.zeros_like(first))
    np.testing.assert_array_equal(first, second)  # frozen from epoch 1 on
    np.testing.assert_array_equal(second, third)


def test_each_mode_pattern_is_traced_once(tmp_path):
    class Toggles(TinyClassifier):
        def on_train_epoch_start(self, epoch):
            self.drop.train(epoch % 2 == 0)

    t = trainer(tmp_path, max_epochs=4)
    t.fit(Toggles(dropout=0.5), make_batches(64))
    assert t._train_step.traces == 2  # training and eval dropout: two graphs, each reused


# ---------------------------------------------------------------- the whole fit, compiled vs eager
class EverythingModule(TinyClassifier):
    """Dropout, BatchNorm, a mode switch in a hook, random draws in validation."""

    def __init__(self):
        super().__init__(dropout=0.25, batchnorm=True)

    def on_train_epoch_start(self, epoch):
        if epoch == 1:
            self.norm.eval()

    def validation_step(self, batch):
        x, y = batch
        noisy = x + 0.05 * mx.random.normal(x.shape)
        return self.compute_loss((noisy, y))


#: What a GPU compares of the whole fit below: its first optimizer update only, fc1.bias aside. AdamW
#: (bias_correction off, eps 1e-8) divides each gradient by its own running size, so a gradient that is
#: rounding noise moves its weight as a real one would: fc1.bias, whose gradient under BatchNorm in training
#: mode is zero but for rounding (at most 9e-9 on the CPU), is moved by that noise alone (5e-4 by the first
#: update, 1.3e-3 by the end of epoch 0 on the CPU), though nothing it does reaches the loss; it reaches the
#: running statistics of every later forward pass, and once the hook puts BatchNorm in eval mode (epoch 1)
#: the forward pass itself, so a rounding difference between compiled and eager on a GPU grows into every
#: weight over the fit's 9 updates (0.02 in fc1.weight, measured on an H200: about one AdamW step, 3.2 lr).
#: The CPU, bitwise, compares the whole fit and every weight.
GPU_UPDATES_COMPARED = 1


def test_the_same_fit_compiled_and_eager_gives_equal_weights(tmp_path):
    """Dropout, BatchNorm, a mode switch in a hook, random draws in validation, accumulation and clipping
    (on a GPU: the first update, `GPU_UPDATES_COMPARED`)."""
    results = []
    for compile_ in (True, False):
        mx.random.seed(11)
        module = EverythingModule()
        logger = RecordingLogger()
        t = trainer(
            tmp_path / str(compile_),
            max_epochs=3,
            max_steps=GPU_UPDATES_COMPARED if ON_GPU else None,
            compile=compile_,
            accumulate_grad_batches=3,
            gradient_clip_val=0.5,
            val_check_interval=0.5,
            log_every_n_steps=1,
            logger=logger,
        )
        t.fit(module, make_batches(112, 16), make_batches(48, 16))
        results.append((weights(module), t.history, logger.metrics))
    (w_compiled, h_compiled, log_compiled), (w_eager, h_eager, log_eager) = results
    assert w_compiled.keys() == w_eager.keys()
    for name in w_compiled:
        if not (ON_GPU and name == "fc1.bias"):  # (rounding noise that AdamW scales up, on a GPU)
            assert_same_numbers(w_compiled[name], w_eager[name], name)
    assert h_compiled.keys() == h_eager.keys()
    for key in h_compiled:
        if key != "time":
            assert_same_numbers(np.array(h_compiled[key], float), np.array(h_eager[key], float), key)


# ---------------------------------------------------------------- defect 4: the last partial window
class Unsized:
    """A loader without `len` (a generator-backed stream): the Trainer cannot see its last batch coming."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)


@pytest.mark.parametrize("compile_", [True, False])
def test_an_accumulation_window_the_loader_ends_is_applied_at_the_epoch_end(tmp_path, compile_):
    """4 batches x 2 epochs with accumulation 3 took 2 optimizer steps instead of 4."""
    batches = make_batches(64, 16)  # 4 batches
    t = trainer(tmp_path, max_epochs=2, accumulate_grad_batches=3, compile=compile_)
    t.fit(TinyClassifier(), Unsized(batches))
    assert t.global_step == 4
    # The same weights as a loader with a length, which ends the window on the known last batch.
    mx.random.seed(0)
    a = TinyClassifier()
    trainer(tmp_path, max_epochs=2, accumulate_grad_batches=3, compile=compile_).fit(a, Unsized(batches))
    mx.random.seed(0)
    b = TinyClassifier()
    trainer(tmp_path, max_epochs=2, accumulate_grad_batches=3, compile=compile_).fit(b, batches)
    wa, wb = weights(a), weights(b)
    for name in wa:
        assert_same_numbers(wa[name], wb[name], name)


class PlainSGD(TinyClassifier):
    """No momentum, no weight decay: an update is exactly ``weight - lr * gradient``."""

    def configure_optimizers(self):
        return OptimizerConfig(optimizer=optim.SGD(learning_rate=0.5))


@pytest.mark.parametrize("compile_", [True, False])
def test_an_accumulation_window_updates_with_the_mean_of_its_gradients_not_their_sum(tmp_path, compile_):
    """Checked against gradients computed here with MLX alone: comparing two fits (compiled and eager, sized
    and unsized) passes with a summed window too, since both sides would sum. 5 batches with accumulation 3:
    a window of 3, then the short one the epoch ends, of 2."""
    batches = make_batches(80, 16)
    mx.random.seed(0)
    module = PlainSGD()
    trainer(tmp_path, max_epochs=1, accumulate_grad_batches=3, compile=compile_).fit(module, batches)

    mx.random.seed(0)
    by_hand = PlainSGD()
    loss_and_grad = nn.value_and_grad(by_hand, lambda batch: by_hand.compute_loss(batch)[0])
    for window in (batches[:3], batches[3:]):
        grads = [dict(tree_flatten(loss_and_grad(batch)[1])) for batch in window]
        mean = {k: sum(np.array(g[k], np.float64) for g in grads) / len(window) for k in grads[0]}
        by_hand.update(
            tree_unflatten(
                [(k, mx.array(v - 0.5 * mean[k], mx.float32)) for k, v in weights(by_hand).items()]
            )
        )
    expected, trained = weights(by_hand), weights(module)
    for name in expected:
        np.testing.assert_allclose(trained[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("unsized", [False, True])
def test_bf16_true_weights_stay_bfloat16_with_accumulation(tmp_path, unsized):
    """The float32 window mean promoted every bf16 weight and AdamW moment to float32 at the first
    update (and retraced the step for them); the window the loader ends (Unsized) goes the same way."""
    t = trainer(tmp_path, max_epochs=2, precision="bf16-true", accumulate_grad_batches=3)
    module = TinyClassifier()
    batches = make_batches(64, 16)
    t.fit(module, Unsized(batches) if unsized else batches)
    assert t.global_step == 4
    dtypes = {name: value.dtype for name, value in tree_flatten(module.parameters())}
    dtypes.update({f"optimizer.{k}": v.dtype for k, v in tree_flatten(t.optimizer.state) if v.ndim})
    assert set(dtypes.values()) == {mx.bfloat16}, dtypes


# ---------------------------------------------------------------- defect 9: self.log inside the step
class LogsInsideTheStep(TinyClassifier):
    def compute_loss(self, batch):
        x, y = batch
        logits = self(x)
        loss = mx.mean(nn.losses.cross_entropy(logits, y))
        self.log("logit_mean", mx.mean(logits), prog_bar=True)
        self.log_dict({"logit_max": mx.max(logits), "sq": mx.mean(logits**2)}, on_epoch=True)
        return loss, {}


@pytest.mark.parametrize("compile_", [True, False])
def test_self_log_inside_compute_loss_becomes_a_metric_of_the_step(tmp_path, compile_):
    """It crashed under compile with "Attempting to eval an array without a primitive"."""
    logger = RecordingLogger()
    mx.random.seed(0)
    module = LogsInsideTheStep()
    t = trainer(tmp_path, max_epochs=2, log_every_n_steps=2, compile=compile_, logger=logger)
    t.fit(module, make_batches(64), make_batches(32))
    interval = [m for _, m in logger.metrics if "train_loss" in m]
    assert len(interval) == 4  # 4 steps per epoch, 2 epochs, every 2 steps
    assert {"logit_mean", "logit_max_step", "sq_step"} <= set(interval[0])  # on_step (+ on_epoch: _step)
    epoch_ends = [m for _, m in logger.metrics if "train_loss_epoch" in m]
    assert "logit_max_epoch" in epoch_ends[0] and "logit_mean_epoch" not in epoch_ends[0]
    assert "logit_max" in t.history and "logit_mean" not in t.history  # on_epoch values are history
    assert "logit_mean" in t.progress_metrics()  # prog_bar
    # validation runs the same code (the default validation_step): the loader's mean, named for the stage as
    # the returned metrics are, so that it does not overwrite the training value of the same name
    val = [m for _, m in logger.metrics if "val_loss" in m]
    assert "val_logit_max" in val[0] and "val_logit_mean" in val[0] and "logit_max" not in val[0]
    assert t.history["val_logit_max"] != t.history["logit_max"]
    assert {"logit_mean", "val_logit_mean"} <= set(t.callback_metrics)


def test_the_training_codes_train_names_become_val_names_in_the_default_validation(tmp_path):
    class NamesItsMetricsForTraining(TinyClassifier):
        def training_step(self, batch, batch_idx):
            x, y = batch
            logits = self(x)
            self.log("train_acc", mx.mean(mx.argmax(logits, -1) == y))
            return {"loss": mx.mean(nn.losses.cross_entropy(logits, y)), "train_top": mx.max(logits)}

    t = trainer(tmp_path, max_epochs=1)
    t.fit(NamesItsMetricsForTraining(), make_batches(64), make_batches(32))
    assert {"val_loss", "val_acc", "val_top"} <= set(t.callback_metrics)
    assert not [name for name in t.callback_metrics if name.startswith("val_train_")]


def test_values_logged_inside_the_step_are_the_same_compiled_and_eager(tmp_path):
    runs = []
    for compile_ in (True, False):
        mx.random.seed(0)
        logger = RecordingLogger()
        t = trainer(tmp_path, max_epochs=2, log_every_n_steps=1, compile=compile_, logger=logger)
        t.fit(LogsInsideTheStep(), make_batches(64), make_batches(32))
        runs.append([(step, sorted(m.items())) for step, m in logger.metrics])
    assert same_values(runs[0], runs[1])  # (bitwise on the CPU; a GPU's compiled kernels round otherwise)


def test_self_log_in_validation_step_replaces_returning_values(tmp_path):
    class LightningValidation(TinyClassifier):
        def validation_step(self, batch, batch_idx):
            loss, metrics = self.compute_loss(batch)
            self.log("val_loss", loss)
            self.log("val_acc", metrics["accuracy"], prog_bar=True)

    (metrics,) = trainer(tmp_path, max_epochs=1).validate(LightningValidation(), make_batches(32))
    assert set(metrics) == {"val_loss", "val_acc"}


def test_bad_self_log_calls_are_explained(tmp_path):
    class PerStepValidation(TinyClassifier):
        def validation_step(self, batch):
            self.log("val_x", mx.array(1.0), on_step=True)
            return self.compute_loss(batch)

    with pytest.raises(ValueError, match=r"self.log\('val_x', ..., on_step=True\): in val"):
        trainer(tmp_path, max_epochs=1).validate(PerStepValidation(), make_batches(32))

    class VectorLog(TinyClassifier):
        def compute_loss(self, batch):
            self.log("logits", self(batch[0]))
            return super().compute_loss(batch)

    with pytest.raises(ValueError, match=r"self.log\('logits', ...\): expected a scalar"):
        trainer(tmp_path, max_epochs=1).fit(VectorLog(), make_batches(32))
    with pytest.raises(ValueError, match="only 'mean' is supported"):
        TinyClassifier().log("x", 1.0, reduce_fx="max")


def test_a_metric_returned_with_its_own_count_is_weighted_by_that_count(tmp_path):
    """A metric returned as (value, count) is its count-weighted mean, not the count's mean."""

    class CountedMetric(TinyClassifier):
        def compute_loss(self, batch):
            loss, metrics = super().compute_loss(batch)
            rows = mx.array(batch[0].shape[0], mx.float32)  # batches of 4, 4, 4 and 2 rows
            return loss, {"per_row": (mx.array(1.0) * rows / rows, rows)}

    t = trainer(tmp_path, max_epochs=1)
    t.fit(CountedMetric(), make_batches(14, 4))
    assert t.history["train_per_row"] == [pytest.approx(1.0)]  # (not 3.5, the rows' mean)


class MetricObject:
    """A torchmetrics-style metric (Lightning computes and resets one given to self.log)."""

    def compute(self):
        return 1.0


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        (
            None,
            r"must return \(loss, metrics_dict\).*a bare mx.array loss; got NoneType\. Lightning's `return "
            r"None` to skip a batch has no counterpart in a compiled step: leave such samples out",
        ),
        ({"x": mx.array(1.0)}, r"returned a dict without a 'loss' key \(keys: \['x'\]\)"),
        (mx.array(1), "the loss must be floating point, got mlx.core.int32"),
    ],
)
def test_a_training_step_returning_no_usable_loss_is_explained(tmp_path, returned, message):
    class Returns(TinyClassifier):
        def training_step(self, batch, batch_idx):
            return returned

    with pytest.raises(TypeError, match=message):
        trainer(tmp_path, max_epochs=1).fit(Returns(), make_batches(32))


@pytest.mark.parametrize(
    ("value", "options", "error", "message"),
    [
        (1.0, {"on_step": False, "on_epoch": False}, ValueError, "on_epoch=False logs nothing"),
        (True, {}, TypeError, "expected a number or a scalar mx.array, got bool"),
        (
            MetricObject(),
            {},
            TypeError,
            r"a metric object: log its value, self.log\(name, metric.compute\(\)\)",
        ),
    ],
)
def test_a_self_log_in_a_step_that_would_log_nothing_or_no_number_is_explained(
    tmp_path, value, options, error, message
):
    class Logs(TinyClassifier):
        def training_step(self, batch, batch_idx):
            self.log("x", value, **options)
            return self.compute_loss(batch)

    with pytest.raises(error, match=message):
        trainer(tmp_path, max_epochs=1).fit(Logs(), make_batches(32))


@pytest.mark.parametrize("value", [None, "foo", [1, 2, 3], {"a": 1}])
def test_no_number_logged_in_a_step_is_the_value_error_lightning_raises(tmp_path, value):
    """A step's `self.log("foo", None)` raised a TypeError alone (a hook's a ValueError). Lightning 2.6.6
    raises ValueError ("`self.log(foo, None)` was called, but `NoneType` values cannot be logged") for
    None, a str, a list, a dict: `except ValueError` in ported code catches it now (still a TypeError)."""

    class Logs(TinyClassifier):
        def training_step(self, batch, batch_idx):
            self.log("foo", value)
            return self.compute_loss(batch)

    with pytest.raises(ValueError, match=r"self.log\('foo', ...\): expected a number") as raised:
        trainer(tmp_path, max_epochs=1).fit(Logs(), make_batches(32))
    assert isinstance(raised.value, TypeError)


# ---------------------------------------------------------------- Lightning's training_step
class LightningStyle(TinyClassifier):
    def compute_loss(self, batch):  # not used: training_step defines the loss
        raise AssertionError("training_step is defined, compute_loss must not run")

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = mx.mean(nn.losses.cross_entropy(self(x), y))
        self.log("batch_idx", batch_idx.astype(mx.float32))
        return {"loss": loss}

    def validation_step(self, batch, batch_idx):
        x, y = batch
        return mx.mean(nn.losses.cross_entropy(self(x), y))


def test_training_step_with_batch_idx_works_instead_of_compute_loss(tmp_path):
    logger = RecordingLogger()
    t = trainer(tmp_path, max_epochs=2, log_every_n_steps=1, logger=logger)
    t.fit(LightningStyle(), make_batches(64), make_batches(32))
    indices = [m["batch_idx"] for _, m in logger.metrics if "batch_idx" in m]
    assert indices == [0.0, 1.0, 2.0, 3.0] * 2  # the batch index arrives as an array: no retrace
    assert t._train_step.traces == 1
    assert "val_loss" in t.history


def test_self_log_takes_lightnings_batch_size_and_rank_zero_only(tmp_path):
    class LogsWithBatchSize(TinyClassifier):
        def __init__(self, claimed=None):
            super().__init__()
            self.claimed = claimed

        def training_step(self, batch, batch_idx):
            loss, _ = self.compute_loss(batch)
            size = batch[0].shape[0] if self.claimed is None else self.claimed
            self.log("logged_loss", loss, batch_size=size, rank_zero_only=True, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            loss, _ = self.compute_loss(batch)
            self.log("val_loss", loss, batch_size=batch[0].shape[0])

        def on_validation_epoch_end(self):
            self.log("in_a_hook", 1.0, batch_size=8)  # one value: nothing to weight

    t = quiet_trainer(tmp_path, max_epochs=1)
    t.fit(LogsWithBatchSize(), make_batches(40), make_batches(40))  # batches of 16, 16, 8
    assert t.callback_metrics["logged_loss"] == pytest.approx(t.callback_metrics["train_loss"], rel=1e-5)
    assert t.callback_metrics["in_a_hook"] == 1.0
    # An int other than batch_size(batch) weights that value alone, as in Lightning (it was refused): the
    # batches of 16, 16 and 8 each weighted 4 give the plain mean of the batch losses.
    losses = []

    class BatchLosses(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            losses.append(float(outputs["loss"]))

    claimed = quiet_trainer(tmp_path / "claimed", max_epochs=1, callbacks=[BatchLosses()])
    claimed.fit(LogsWithBatchSize(claimed=4), make_batches(40))
    assert claimed.callback_metrics["logged_loss"] == pytest.approx(np.mean(losses), rel=1e-5)
    assert claimed.callback_metrics["train_loss"] == pytest.approx(
        np.average(losses, weights=[16, 16, 8]), rel=1e-5
    )
    with pytest.raises(ValueError, match=r"batch_size=-1\): expected a non-negative int"):
        LogsWithBatchSize().log("x", 1.0, batch_size=-1)


def padded_frames(lengths, batch_size):
    """Clips of `lengths` frames (8 features, a class per frame), padded to each batch's longest, with a
    0/1 mask of the real frames: a frame labeller's batches."""
    rng = np.random.default_rng(3)
    clips = [(rng.normal(size=(n, 8)).astype(np.float32), rng.integers(0, 2, n)) for n in lengths]
    batches = []
    for i in range(0, len(clips), batch_size):
        part = clips[i : i + batch_size]
        longest = max(len(x) for x, _ in part)
        batches.append(
            {
                "x": mx.array(np.stack([np.pad(x, ((0, longest - len(x)), (0, 0))) for x, _ in part])),
                "y": mx.array(np.stack([np.pad(y, (0, longest - len(y))) for _, y in part]).astype(np.int32)),
                "mask": mx.array(np.stack([np.arange(longest) < len(x) for x, _ in part]).astype(np.float32)),
            }
        )
    return clips, batches


@pytest.mark.parametrize("compile", [True, False])
def test_a_count_self_log_weights_by_does_not_hold_its_batch_in_memory(tmp_path, compile):
    """The count of `self.log(..., batch_size=mx.sum(mask))` was left unevaluated until the running means
    folded (every 256 steps), and each held the batch it was computed from: a fit of 4 MiB batches grew
    by 4 MiB a step. It is evaluated with the step, as a returned (value, count)'s count is."""
    active = []

    class CountsItsFrames(TinyClassifier):
        def compute_loss(self, batch):
            loss, _ = super().compute_loss((batch["x"][:, :8], batch["y"]))
            self.log("x_mean", mx.mean(batch["x"]), batch_size=mx.sum(batch["x"] != 2.0))
            return loss

        def on_train_batch_end(self, outputs, batch, batch_idx):
            active.append(mx.get_active_memory())

    class FreshBatches:  # (each batch made as it is asked for: only the fit can hold it)
        def __len__(self):
            return 20

        def __iter__(self):
            for _ in range(20):
                yield {"x": mx.random.normal((16, 65536)), "y": mx.zeros(16, mx.int32)}  # 4 MiB

    t = trainer(tmp_path, max_epochs=1, compile=compile, log_every_n_steps=1000)
    t.fit(CountsItsFrames(), FreshBatches())
    assert active[-1] - active[2] < 4 * 2**20 * 4, [round(a / 2**20) for a in active]


@pytest.mark.parametrize("compile", [True, False])
def test_self_log_weights_a_value_by_a_count_the_step_computes(tmp_path, compile):
    """A frame accuracy logged with `batch_size=mx.sum(mask)`, the frames it is over, stopped the fit:
    compiled with a TracedReadError saying the step read an array's value (it had not), eagerly with
    'expected a non-negative int'. It now weights that value alone, as a returned (value, count) does."""

    class FrameLabeller(TinyClassifier):
        def __call__(self, x):
            return self.fc2(nn.relu(self.fc1(x)))

        def compute_loss(self, batch):
            logits, mask = self(batch["x"]), batch["mask"]
            frames = mx.sum(mask)
            hits = mx.sum((mx.argmax(logits, -1) == batch["y"]) * mask)
            self.log("frame_acc", hits / frames, batch_size=frames, on_epoch=True)
            return mx.sum(nn.losses.cross_entropy(logits, batch["y"]) * mask) / frames

    clips, batches = padded_frames([3, 30, 5, 40, 7, 9, 25], batch_size=2)
    model = FrameLabeller(lr=0.0)  # (the weights stay: the training epoch's mean is over one model too)
    t = trainer(tmp_path, max_epochs=1, compile=compile)
    t.fit(model, batches, batches)
    hits = sum(int(mx.sum(mx.argmax(model(mx.array(x)), -1) == mx.array(y))) for x, y in clips)
    frames = sum(len(x) for x, _ in clips)  # (the clips' mean, 2 per batch, would differ)
    assert t.callback_metrics["val_frame_acc"] == pytest.approx(hits / frames, rel=1e-5)
    assert t.history["frame_acc"] == [pytest.approx(hits / frames, rel=1e-5)]
    with pytest.raises(ValueError, match=r"batch_size=array.*in a hook.*a number"):
        model.log("x", 1.0, batch_size=mx.array(3))


def test_self_log_batch_size_beside_a_weight_the_device_computes_weights_its_value(tmp_path):
    """With batch_size(batch) = mx.sum(mask) (the frames), self.log('clip_acc', acc, batch_size=2), a mean
    over the clips, was weighted by the frames all the same, unsaid: the int was left out."""

    class ClipAccuracy(TinyClassifier):
        def __call__(self, x):
            return self.fc2(nn.relu(self.fc1(x)))

        def compute_loss(self, batch):
            logits, mask = self(batch["x"]), batch["mask"]
            hits = (mx.argmax(logits, -1) == batch["y"]) * mask
            clip_acc = mx.mean(mx.sum(hits, axis=1) / mx.sum(mask, axis=1))
            self.log("clip_acc", clip_acc, batch_size=batch["x"].shape[0])
            return mx.sum(nn.losses.cross_entropy(logits, batch["y"]) * mask) / mx.sum(mask)

        def batch_size(self, batch):
            return mx.sum(batch["mask"])

    clips, batches = padded_frames([3, 30, 5, 40, 7, 9, 25], batch_size=2)
    model = ClipAccuracy()
    t = trainer(tmp_path, max_epochs=1)
    t.fit(model, batches, batches)
    accuracies = [float(mx.mean(mx.argmax(model(mx.array(x)), -1) == mx.array(y))) for x, y in clips]
    assert t.callback_metrics["val_clip_acc"] == pytest.approx(np.mean(accuracies), rel=1e-5)


# ---------------------------------------------------------------- a retrace for every new input shape
class PooledClassifier(TinyClassifier):
    """Clips of any number of frames [batch, frames, 8], averaged over time: every new length is a new
    input shape for the compiled step."""

    def __call__(self, x):
        return super().__call__(x.mean(axis=1))


def clips_of_many_lengths(lengths, batch_size: int = 2):
    rng = np.random.default_rng(0)
    return [
        (mx.array(rng.normal(size=(batch_size, frames, 8)).astype(np.float32)), mx.array([0, 1][:batch_size]))
        for frames in lengths
    ]


def retrace_warnings(caught) -> list[str]:
    from audiotrain.train import RetraceWarning

    return [str(w.message) for w in caught if issubclass(w.category, RetraceWarning)]


def test_the_retrace_warning_points_at_the_users_fit(tmp_path):
    """The warning named audiotrain/train/trainer.py's `step.update(...)` line as where it came from (a
    `python -W error` user, or a filter by module, met the package's internals); it now names the fit."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer(tmp_path, max_epochs=1).fit(PooledClassifier(), clips_of_many_lengths(range(10, 22)))
    (warning,) = [w for w in caught if "has been traced for 9" in str(w.message)]
    assert warning.filename == __file__


def test_a_step_retraced_for_many_input_lengths_warns_once(tmp_path):
    """Every new clip length retraced the compiled step (on the CPU: a new kernel, ~0.2 s and memory kept
    for the process's life) and nothing said so."""
    lengths = range(10, 22)  # 12 lengths, over the limit of 8
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = trainer(tmp_path, max_epochs=2)
        t.fit(PooledClassifier(), clips_of_many_lengths(lengths), clips_of_many_lengths([10, 11]))
    (message,) = retrace_warnings(caught)  # once, though the second epoch meets the lengths again
    assert "PooledClassifier.compute_loss has been traced for 9 different inputs" in message
    assert "batch[0] has shapes (2, 10, 8), (2, 11, 8), (2, 12, 8), ..." in message
    assert "Pad or bucket" in message and "Trainer(compile=False)" in message

    with warnings.catch_warnings(record=True) as caught:  # whole songs at batch 1 in validation
        warnings.simplefilter("always")
        t.validate(t.module, clips_of_many_lengths(lengths, batch_size=1))
    (message,) = retrace_warnings(caught)
    assert "PooledClassifier.compute_loss (run by the default validation_step) has been traced" in message


def test_the_retrace_warning_comes_at_the_ninth_input_length_not_before(tmp_path):
    for lengths, warned in ((range(10, 18), 0), (range(10, 19), 1)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer(tmp_path, max_epochs=1).fit(PooledClassifier(), clips_of_many_lengths(lengths))
        assert len(retrace_warnings(caught)) == warned, list(lengths)


def test_the_retrace_warning_names_each_varying_input_and_how_it_varies(tmp_path):
    batches = [
        (x, y.astype(mx.int32 if k % 2 else mx.int64))
        for k, (x, y) in enumerate(clips_of_many_lengths(range(10, 19)))
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer(tmp_path, max_epochs=1).fit(PooledClassifier(), batches)
    (message,) = retrace_warnings(caught)
    assert (
        "(batch[0] has shapes (2, 10, 8), (2, 11, 8), (2, 12, 8), ...; batch[1] has dtypes int64, int32)"
        in message
    )


class HitsTheCompileMapBug(TinyClassifier):
    """Raises what MLX's compiler raises for a graph using one expression twice (trace_guard.py)."""

    def compute_loss(self, batch):
        raise IndexError("unordered_map::_Map_base::at")


def test_mlx_compilers_map_error_is_explained_naming_the_step_and_kept_as_the_cause(tmp_path):
    with pytest.raises(RuntimeError, match=r"HitsTheCompileMapBug.compute_loss: mx.compile failed") as err:
        trainer(tmp_path, max_epochs=1).fit(HitsTheCompileMapBug(), make_batches(32))
    assert "Trainer(compile=False)" in str(err.value) and isinstance(err.value.__cause__, IndexError)
    # Uncompiled, it is the step's own error: it passes through as it is.
    with pytest.raises(IndexError, match="_Map_base::at"):
        trainer(tmp_path, max_epochs=1, compile=False).fit(HitsTheCompileMapBug(), make_batches(32))


class CountsItsTokens(TinyClassifier):
    """A seq2seq habit: the loss and the token accuracy over the non-pad targets (class 0 is padding), the
    accuracy weighted by their int count, which the loss divides by too."""

    def __init__(self, log: bool):
        super().__init__()
        self.log_it = log

    def compute_loss(self, batch):
        x, y = batch
        logits = self(x)
        mask = y != 0
        n = mx.sum(mask)
        loss = mx.sum(nn.losses.cross_entropy(logits, y) * mask) / n
        accuracy = mx.sum((mx.argmax(logits, axis=-1) == y) * mask) / n
        if self.log_it:
            self.log("token_acc", accuracy, batch_size=n, on_epoch=True)
            return loss
        return loss, {"token_acc": (accuracy, n)}


@pytest.mark.parametrize("log", [False, True])
def test_a_metric_weighted_by_the_int_count_the_loss_divides_by_trains_compiled_as_eagerly(tmp_path, log):
    # Compiled, this failed at the first step with MLX's internal "IndexError: _Map_base::at" (explained as a
    # step returning one expression twice, with advice the step already followed): the Trainer cast the
    # returned count to float32 inside value_and_grad, the same expression as the loss's cast of n.
    results = []
    for compile in (True, False):
        t = trainer(tmp_path / str(compile), max_epochs=1, compile=compile)
        mx.random.seed(0)  # (the same initial weights for both)
        module = CountsItsTokens(log)
        t.fit(module, make_batches(32))
        name = "token_acc" if log else "train_token_acc"
        results.append((t.history["train_loss"][-1], t.history[name][-1], weights(module)))
    (loss_c, acc_c, w_c), (loss_e, acc_e, w_e) = results
    assert loss_c == pytest.approx(loss_e, rel=1e-6) and acc_c == pytest.approx(acc_e, rel=1e-6)
    assert 0 < acc_c < 1 and all(np.allclose(w_c[k], w_e[k], atol=1e-6) for k in w_c)


class TogglesDropout(TinyClassifier):
    def __init__(self):
        super().__init__(dropout=0.5)

    def on_train_epoch_start(self, epoch):
        self.drop.train(epoch % 2 == 0)


class FreezesFirstLayerAtEpoch1(TinyClassifier):
    def on_train_epoch_start(self, epoch):
        self.fc1.freeze() if epoch == 1 else self.fc1.unfreeze()


@pytest.mark.parametrize(
    "module_class, options",
    [
        (TinyClassifier, {}),  # short last batches in training and validation
        (TinyClassifier, {"accumulate_grad_batches": 3}),  # + a window the loader ends early
        (TinyClassifier, {"accumulate_grad_batches": 2, "val_check_interval": 0.5}),
        (TogglesDropout, {"gradient_clip_val": 1.0, "track_grad_norm": True}),
        (FreezesFirstLayerAtEpoch1, {}),
    ],
)
def test_the_usual_runs_do_not_warn_of_retracing(tmp_path, module_class, options):
    module = module_class()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = trainer(tmp_path, max_epochs=3, num_sanity_val_steps=2, **options)
        t.fit(module, make_batches(88), make_batches(40))  # 16 x 5 + 8 and 16 x 2 + 8
        t.validate(module, make_batches(40))
        t.test(module, make_batches(40))
    assert retrace_warnings(caught) == []


def test_an_uncompiled_step_does_not_warn_of_retracing(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer(tmp_path, max_epochs=1, compile=False).fit(
            PooledClassifier(), clips_of_many_lengths(range(10, 22))
        )
    assert retrace_warnings(caught) == []


class MeanSquaredLinear(audiotrain.TrainModule):
    """A 5 -> 3 linear layer with a mean-reduced loss, from given weights (compared with torch's)."""

    def __init__(self, weight, bias):
        super().__init__()
        self.linear = nn.Linear(5, 3)
        self.linear.weight, self.linear.bias = mx.array(weight), mx.array(bias)

    def compute_loss(self, batch):
        return mx.mean((self.linear(batch["x"]) - batch["y"]) ** 2), {}

    def configure_optimizers(self):
        return optim.SGD(learning_rate=0.1)


@pytest.mark.parity
@pytest.mark.parametrize("algorithm, clip", [("norm", 0.05), ("value", 0.01), ("norm", None)])
def test_accumulated_and_clipped_updates_match_torchs_loop(tmp_path, algorithm, clip):
    """Windows of 4 batches of 8, the last one 1 batch (Lightning steps on it), two epochs: torch's loop
    backpropagates each batch's loss over the window's batch count and clips the summed gradient once
    (clip_grad_norm_ / clip_grad_value_) before the step. The window of the epoch's end is averaged
    over its own batches (the README's documented difference from Lightning's division by 4)."""
    torch = require("torch")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 5), np.float32), rng.standard_normal((40, 3), np.float32)
    weight, bias = rng.standard_normal((3, 5), np.float32), np.zeros(3, np.float32)
    module = MeanSquaredLinear(weight, bias)
    trainer = quiet_trainer(
        tmp_path,
        max_epochs=2,
        accumulate_grad_batches=4,
        gradient_clip_val=clip,
        gradient_clip_algorithm=algorithm,
    )
    trainer.fit(module, audiotrain.DataLoader([{"x": a, "y": b} for a, b in zip(x, y)], batch_size=8))
    reference = torch.nn.Linear(5, 3)
    with torch.no_grad():
        reference.weight.copy_(torch.tensor(weight)), reference.bias.copy_(torch.tensor(bias))
    sgd = torch.optim.SGD(reference.parameters(), lr=0.1)
    for _ in range(2):
        for i in range(5):
            window = 4 if i < 4 else 1
            batch_x, batch_y = torch.tensor(x[8 * i : 8 * i + 8]), torch.tensor(y[8 * i : 8 * i + 8])
            (torch.mean((reference(batch_x) - batch_y) ** 2) / window).backward()
            if i in (3, 4):
                if clip and algorithm == "norm":
                    torch.nn.utils.clip_grad_norm_(reference.parameters(), clip)
                elif clip:
                    torch.nn.utils.clip_grad_value_(reference.parameters(), clip)
                sgd.step(), sgd.zero_grad()
    assert trainer.global_step == 4
    np.testing.assert_allclose(np.array(module.linear.weight), reference.weight.detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(np.array(module.linear.bias), reference.bias.detach().numpy(), atol=1e-6)


@pytest.mark.parametrize("compile", [True, False])
def test_a_validation_step_returning_a_dict_of_outputs_without_loss_passes_them_on_inside_fit(
    tmp_path, compile
):
    """Lightning's `validation_step` may return any dict (`{"preds": ..., "target": ...}`), which its
    `on_validation_batch_end(outputs, batch, batch_idx)` receives; here fit refused it ("returned a dict
    without a 'loss' key"). The validations of fit (its sanity check included) pass the arrays on and log
    nothing from them."""
    seen = []

    class ReturnsOutputs(TinyClassifier):
        def validation_step(self, batch, batch_idx):
            return {"preds": mx.softmax(self(batch[0]), axis=-1), "target": batch[1]}

        def on_validation_batch_end(self, outputs, batch, batch_idx):
            seen.append((self.trainer.sanity_checking, outputs["preds"].shape, np.array(outputs["target"])))

    t = trainer(tmp_path, max_epochs=2, compile=compile, num_sanity_val_steps=1)
    t.fit(ReturnsOutputs(), make_batches(32), make_batches(24))
    assert [s[:2] for s in seen] == [(True, (16, 3))] + [(False, (16, 3)), (False, (8, 3))] * 2
    np.testing.assert_array_equal(seen[-1][2], np.array(make_batches(24)[1][1]))
    assert not any(k.startswith("val") for k in t.history)


# ------------------------------------------------- a step that writes a trainable parameter (an RNN's state)
class CarriesHiddenState(TrainModule):
    """Truncated BPTT by hand: each batch continues the last, its hidden state kept on the module."""

    def __init__(self, keep: str):
        super().__init__()
        self.rnn, self.head, self.keep = nn.GRU(8, 4), nn.Linear(4, 3), keep
        if keep == "buffer":
            self.register_buffer("h", mx.zeros((16, 4)))
        elif keep == "private":
            self._h = mx.zeros((16, 4))
        else:  # a plain mx.array attribute, which MLX makes a trainable parameter
            self.h = mx.zeros((16, 4))

    def compute_loss(self, batch):
        x, y = batch
        out = self.rnn(mx.stack([x, 0.5 * x], axis=1), self._h if self.keep == "private" else self.h)
        if self.keep == "private":
            self._h = mx.stop_gradient(out[:, -1])
        else:
            self.h = mx.stop_gradient(out[:, -1])
        return mx.mean(nn.losses.cross_entropy(mx.mean(self.head(out), axis=1), y))

    def configure_optimizers(self):
        return OptimizerConfig(optimizer=optim.SGD(learning_rate=0.1))


@pytest.mark.parametrize("compile_", [True, False])
def test_a_step_writing_a_trainable_parameter_is_warned_of_once_naming_it(tmp_path, compile_):
    """`self.h = new_hidden` on a plain array attribute was put back to the weights after the step and moved
    by the optimizer: the hidden state written was silently lost (no word, another training). Said once (a
    warning: a forward that recomputes a weight on purpose loses nothing, and must still train)."""
    mx.random.seed(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer(tmp_path, max_epochs=2, compile=compile_).fit(CarriesHiddenState("plain"), make_batches(64))
    said = [str(w.message) for w in caught if "a trainable parameter of the model" in str(w.message)]
    assert len(said) == 1, said
    assert "assigned self.h, a trainable parameter" in said[0] and "register_buffer('h'" in said[0]


class SharedInADict(TrainModule):
    """One layer used in two branches, held under a second name in a dict (Lightning's shared submodule)."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(8, 8)
        self.branches = {"left": self.encoder, "right": nn.Linear(8, 8)}
        self.head = nn.Linear(8, 4)

    def compute_loss(self, batch):
        x, y = batch
        h = self.branches["left"](x) + self.branches["right"](self.encoder(x))
        return mx.mean(nn.losses.cross_entropy(self.head(h), y))

    def configure_optimizers(self):
        return OptimizerConfig(optimizer=optim.SGD(learning_rate=0.1))


@pytest.mark.parametrize("compile_", [True, False])
def test_a_layer_shared_between_branches_is_no_written_parameter(tmp_path, compile_):
    """`fit` refused it: "compute_loss assigned self.encoder.weight, self.encoder.bias, a trainable
    parameter of the model" (the layer, set under both names, holds the array of its later name)."""
    mx.random.seed(0)
    module = SharedInADict()
    before = np.array(module.encoder.weight)
    trainer(tmp_path, max_epochs=1, compile=compile_).fit(module, make_batches(64))
    assert module.branches["left"] is module.encoder
    assert not np.allclose(np.array(module.encoder.weight), before)


class CheckpointedEncoder(TrainModule):
    """Gradient checkpointing as MLX offers it: the encoder's activations recomputed in the backward pass."""

    def __init__(self, checkpointed: bool):
        super().__init__()
        self.encoder, self.head, self.checkpointed = nn.Linear(8, 8), nn.Linear(8, 4), checkpointed

    def compute_loss(self, batch):
        x, y = batch
        h = nn.utils.checkpoint(self.encoder)(x) if self.checkpointed else self.encoder(x)
        return mx.mean(nn.losses.cross_entropy(self.head(h), y))

    def configure_optimizers(self):
        return OptimizerConfig(optimizer=optim.SGD(learning_rate=0.1))


@pytest.mark.parametrize("compile_", [True, False])
def test_gradient_checkpointing_is_no_written_parameter_and_trains_as_without_it(tmp_path, compile_):
    """`fit` refused nn.utils.checkpoint(self.encoder)(x): "compute_loss assigned self.encoder.weight,
    self.encoder.bias, a trainable parameter of the model" (it sets the layer's weights again, as new
    arrays)."""
    trained = []
    for checkpointed in (False, True):
        mx.random.seed(0)
        module = CheckpointedEncoder(checkpointed)
        trainer(tmp_path / str(checkpointed), max_epochs=1, compile=compile_).fit(module, make_batches(64))
        trained.append(np.array(module.encoder.weight))
    np.testing.assert_allclose(trained[1], trained[0], rtol=1e-5, atol=1e-6)


def test_a_hidden_state_kept_as_a_buffer_or_private_attribute_is_carried(tmp_path):
    """What the error points to carries the state, compiled as eager."""
    results = []
    for keep in ("buffer", "private"):
        for compile_ in (True, False):
            mx.random.seed(0)
            module = CarriesHiddenState(keep)
            trainer(tmp_path, max_epochs=1, compile=compile_).fit(module, make_batches(64))
            h = module._h if keep == "private" else module.h
            results.append(np.array(h))
    assert np.abs(results[0]).sum() > 0
    for other in results[1:]:
        np.testing.assert_allclose(other, results[0], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------ weight normalisation (HiFi-GAN's torch habit)
class WeightNormLinear(nn.Linear):
    """torch's weight_norm by hand: `weight` removed, recomputed from g and v in each forward."""

    def __init__(self, functional: bool):
        super().__init__(8, 4)
        self.functional = functional
        self.weight_v = self.weight
        self.weight_g = mx.linalg.norm(self.weight, axis=1, keepdims=True)
        del self.weight

    def __call__(self, x):
        w = self.weight_g * self.weight_v / mx.linalg.norm(self.weight_v, axis=1, keepdims=True)
        if self.functional:  # (what the error points to: the weight a local, never an attribute)
            return x @ w.T + self.bias
        self.weight = w
        return super().__call__(x)


class WeightNormed(TrainModule):
    def __init__(self, functional: bool):
        super().__init__()
        self.layer = WeightNormLinear(functional)

    def compute_loss(self, batch):
        x, y = batch
        return mx.mean(nn.losses.cross_entropy(self.layer(x), y))

    def configure_optimizers(self):
        return OptimizerConfig(optimizer=optim.Adam(learning_rate=0.01))


@pytest.mark.parametrize("compile_", [True, False])
@pytest.mark.parametrize("sanity", [0, 1])
def test_a_weight_set_as_a_new_attribute_in_the_forward_is_refused_naming_it(tmp_path, compile_, sanity):
    """`self.weight = g * v / norm(v)` in the forward of a layer whose weight was deleted: uncompiled the
    second step failed with a bare "KeyError: 'weight'" in the optimizer's update; compiled it was said to be
    Lightning's `training_step_outputs.append`; after a sanity-check validation, compiled, "Attempting to eval
    an array without a primitive" ("a dtype the operation does not take ... is a common cause"); uncompiled
    it trained a stale copy of the weight. The model is left as it was."""
    module = WeightNormed(functional=False)
    fit = trainer(tmp_path, max_epochs=1, compile=compile_, num_sanity_val_steps=sanity)
    with pytest.raises(
        ValueError, match=r"set self\.layer\.weight, an mx\.array attribute its layer did not"
    ):
        fit.fit(module, make_batches(64), make_batches(16))
    assert sorted(name for name, _ in tree_flatten(module.parameters())) == [
        "layer.bias",
        "layer.weight_g",
        "layer.weight_v",
    ]


@pytest.mark.parametrize("compile_", [True, False])
def test_weight_normalisation_with_the_weight_a_local_trains_without_a_warning(tmp_path, compile_):
    """What the error points to trains g and v, compiled as eager, and no written-parameter warning."""
    mx.random.seed(0)
    module = WeightNormed(functional=True)
    g = np.array(module.layer.weight_g)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = trainer(tmp_path, max_epochs=1, compile=compile_, num_sanity_val_steps=1)
        fit.fit(module, make_batches(64), make_batches(16))
    assert not [w for w in caught if "trainable parameter of the model" in str(w.message)]
    assert not np.allclose(np.array(module.layer.weight_g), g)


class PowerIteration(nn.Module):
    """Spectral normalisation's power iteration, its vector `u` updated by each training forward."""

    def __init__(self, keep: str):
        super().__init__()
        self.linear = nn.Linear(8, 4)
        u = mx.ones((4,)) / 2.0
        if keep == "buffer":
            audiotrain.register_buffer(self, "u", u)
        else:  # a plain mx.array attribute, which MLX makes a trainable parameter
            self.u = u

    def __call__(self, x):
        w = self.linear.weight
        v = mx.stop_gradient(w.T @ self.u)
        u = mx.stop_gradient(w @ v)
        self.u = u / mx.linalg.norm(u)
        return x @ (w / (self.u @ w @ (v / mx.linalg.norm(v)))).T + self.linear.bias


class SpectralNormed(TrainModule):
    def __init__(self, keep: str):
        super().__init__()
        self.sn = PowerIteration(keep)

    def compute_loss(self, batch):
        x, y = batch
        return mx.mean(nn.losses.cross_entropy(self.sn(x), y))

    def configure_optimizers(self):
        return OptimizerConfig(optimizer=optim.SGD(learning_rate=0.1))


def test_a_lost_power_iteration_vector_is_warned_of_with_advice_that_works_in_a_plain_layer(tmp_path):
    """The warning told a plain nn.Module's `self.u` to use `self.register_buffer('u', initial)`, which a
    plain nn.Module lacks (AttributeError in __init__); what it says now carries `u`, compiled as eager."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer(tmp_path, max_epochs=1).fit(SpectralNormed("plain"), make_batches(64))
    said = [str(w.message) for w in caught if "a trainable parameter of the model" in str(w.message)]
    assert (
        len(said) == 1 and "audiotrain.register_buffer(self, 'u', initial) in self.sn's __init__" in said[0]
    )
    carried = []
    for compile_ in (True, False):
        mx.random.seed(0)
        module = SpectralNormed("buffer")
        trainer(tmp_path, max_epochs=1, compile=compile_).fit(module, make_batches(64))
        carried.append(np.array(module.sn.u))
    assert not np.allclose(carried[0], 0.5)
    np.testing.assert_allclose(carried[1], carried[0], rtol=1e-5, atol=1e-6)


def test_a_weight_recomputed_into_an_existing_parameter_is_warned_of_as_a_stale_copy(tmp_path):
    """torch's weight_norm wrapper kept the layer's weight and set it in each forward: the checkpoints held
    the initial weight, while the warning said "nothing is lost" for a recomputed weight."""

    class Wrapped(WeightNormed):
        def __init__(self):
            super().__init__(functional=True)
            self.inner = nn.Linear(8, 4)

        def compute_loss(self, batch):
            x, y = batch
            g, v = self.layer.weight_g, self.layer.weight_v
            self.inner.weight = g * v / mx.linalg.norm(v, axis=1, keepdims=True)
            return mx.mean(nn.losses.cross_entropy(self.inner(x), y))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer(tmp_path, max_epochs=1).fit(Wrapped(), make_batches(32))
    said = [str(w.message) for w in caught if "a trainable parameter of the model" in str(w.message)]
    assert len(said) == 1 and "assigned self.inner.weight" in said[0]
    assert "keep a stale copy; compute it into a local variable" in said[0]


class WindowOnFirstCall(nn.Module):
    """A learned gain and a Hann window built on the first call, once the frame length is known."""

    def __init__(self):
        super().__init__()
        self.gain = mx.ones((1,))
        self.window = None

    def __call__(self, x):
        if self.window is None:
            n = x.shape[-1]
            self.window = 0.5 - 0.5 * mx.cos(2 * mx.pi * mx.arange(n) / n)
        return x * self.window * self.gain


class CachesAWindow(TrainModule):
    def __init__(self):
        super().__init__()
        self.pre = WindowOnFirstCall()
        self.head = nn.Linear(8, 4)

    def compute_loss(self, batch):
        x, y = batch
        return mx.mean(nn.losses.cross_entropy(self.head(self.pre(x)), y))

    def predict_step(self, batch):
        return self.head(self.pre(batch[0]))

    def configure_optimizers(self):
        return OptimizerConfig(optimizer=optim.Adam(learning_rate=0.01))


@pytest.mark.parametrize("compile_", [True, False])
def test_a_layer_caching_an_array_on_its_first_call_predicts_and_validates_but_is_refused_in_fit(
    tmp_path, compile_
):
    """Stand-alone predict and validate train nothing: a layer that caches its window on the first call ran
    there (the refusal of arrays a step adds, meant for fit, refused them with "set self.pre.window, an
    mx.array attribute ..."). In fit the next step would train it: refused, naming it, with where to build
    it."""
    predicted = trainer(tmp_path, compile=compile_).predict(CachesAWindow(), make_batches(32))
    assert [p.shape for p in predicted] == [(16, 4), (16, 4)]
    (metrics,) = trainer(tmp_path, compile=compile_).validate(CachesAWindow(), make_batches(32))
    assert np.isfinite(metrics["val_loss"])
    fit = trainer(tmp_path, max_epochs=1, compile=compile_, num_sanity_val_steps=1)
    with pytest.raises(ValueError, match=r"set self\.pre\.window, .* is created in __init__"):
        fit.fit(CachesAWindow(), make_batches(64), make_batches(16))


class CountsByHand(TinyClassifier):
    """torchmetrics by hand, as Lightning ports write it: counts kept on the module across a loader."""

    def on_train_epoch_start(self):
        self.train_seen = 0

    def on_validation_epoch_start(self):
        self.correct, self.seen = 0.0, 0

    def training_step(self, batch, batch_idx):
        self.train_seen += batch[1].shape[0]
        return self.compute_loss(batch)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.seen += y.shape[0]
        self.log("val_loss", mx.mean(nn.losses.cross_entropy(self(x), y)))


@pytest.mark.parametrize("compile", [True, False])
def test_a_count_kept_on_the_module_in_a_compiled_step_is_warned_of(tmp_path, compile):
    # Before: a validation_step's `self.seen += len(y)` ran only while the step was traced, so a
    # validation over 32 samples counted 16 (the first batch) and the next one 0, without a word.
    module = CountsByHand()
    batches = make_batches(32)
    fit = lambda: trainer(tmp_path, compile=compile, max_epochs=1).fit(module, batches, batches)  # noqa: E731
    if compile:
        with pytest.warns(UserWarning, match=r"changed self\.") as seen:
            fit()
        said = " ".join(str(w.message) for w in seen)
        assert "training_step changed self.train_seen (0 -> 16)" in said
        assert "validation_step changed self.seen (0 -> 16)" in said
        assert "on_validation_batch_end runs every batch" in said
    else:  # (eager: the step's Python code runs at every batch, as in Lightning; nothing to say)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            fit()
        assert module.seen == 32 and module.train_seen == 32


def _gan_batch_and_weights():
    """One batch of 4 and the initial weights of a generator Linear(3, 2) and discriminator Linear(2, 1),
    as /tmp/s78/ldiffmanual/common.py drew them for the Lightning 2.6.6 comparison."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 3)).astype(np.float32)
    y = rng.standard_normal((16, 2)).astype(np.float32)
    gen_w = (rng.standard_normal((2, 3)) * 0.5).astype(np.float32)
    gen_b = (rng.standard_normal((2,)) * 0.1).astype(np.float32)
    disc_w = (rng.standard_normal((1, 2)) * 0.5).astype(np.float32)
    return (mx.array(x[:4]), mx.array(y[:4])), (gen_w, gen_b, disc_w, np.zeros((1,), np.float32))


class _Gan(TrainModule):
    """The generator's loss (the discriminator fooled, plus fitting y) and the discriminator's (y real, the
    generator's output fake), as one loss for a MultiOptimizer (README's GAN); `toggle` says how the
    generator's term is kept from the discriminator, and the discriminator's from the generator."""

    def __init__(self, toggle):
        super().__init__()
        gen_w, gen_b, disc_w, disc_b = _gan_batch_and_weights()[1]
        self.gen, self.disc, self.toggle = nn.Linear(3, 2), nn.Linear(2, 1), toggle
        self.gen.update({"weight": mx.array(gen_w), "bias": mx.array(gen_b)})
        self.disc.update({"weight": mx.array(disc_w), "bias": mx.array(disc_b)})

    def training_step(self, batch, batch_idx):
        x, y = batch
        ones, zeros = mx.ones((x.shape[0], 1)), mx.zeros((x.shape[0], 1))
        mse = lambda a, b: mx.mean((a - b) ** 2)  # noqa: E731
        fake = self.gen(x)
        if self.toggle == "stop_gradient":
            weights = self.disc.parameters()
            self.disc.update(tree_map(mx.stop_gradient, weights))
            g_loss = mse(self.disc(fake), ones) + mse(fake, y)
            self.disc.update(weights)
            d_loss = mse(self.disc(y), ones) + mse(self.disc(mx.stop_gradient(fake)), zeros)
        else:  # Lightning's toggle_optimizer ported as freezing
            self.disc.freeze()
            g_loss = mse(self.disc(fake), ones) + mse(fake, y)
            self.disc.unfreeze()
            self.gen.freeze()
            d_loss = mse(self.disc(y), ones) + mse(self.disc(fake), zeros)
            self.gen.unfreeze()
        return g_loss + d_loss

    def configure_optimizers(self):
        sgd = [optim.SGD(learning_rate=0.1), optim.SGD(learning_rate=0.05)]
        return optim.MultiOptimizer(sgd, [lambda path, _: path.startswith("gen.")])


def test_the_freezing_check_watches_the_first_step_only_and_leaves_mlxs_methods_as_they_were(tmp_path):
    """The check patches nn.Module.freeze / unfreeze while a step runs: process-wide, so it watched every
    uncompiled step of a fit (and two Trainers' steps in threads could leave one's wrapper in place). It
    watches the first step (the trace, compiled) and puts back MLX's own methods."""
    import mlx.nn as mlx_nn

    original = mlx_nn.Module.freeze, mlx_nn.Module.unfreeze
    seen = []

    class Records(_Gan):
        def training_step(self, batch, batch_idx):
            seen.append(mlx_nn.Module.freeze is original[0])
            return super().training_step(batch, batch_idx)

    batch = _gan_batch_and_weights()[0]
    with pytest.warns(UserWarning, match=r"called self.disc.freeze\(\) while the step ran"):
        trainer(tmp_path, max_epochs=3, compile=False).fit(Records("freeze"), [batch])
    assert seen == [False, True, True]  # (patched on the first step only)
    assert (mlx_nn.Module.freeze, mlx_nn.Module.unfreeze) == original


def test_the_freezing_check_keeps_a_patch_the_user_made_of_freeze(tmp_path, monkeypatch):
    """A user's own wrapper of nn.Module.freeze, set after audiotrain was imported, is called in the
    checked step too and is still in place after the fit (it was swapped for MLX's method as imported)."""
    import mlx.nn as mlx_nn

    mlx_freeze, calls = mlx_nn.Module.freeze, []

    def counted(module, *args, **kwargs):
        calls.append(type(module).__name__)
        return mlx_freeze(module, *args, **kwargs)

    monkeypatch.setattr(mlx_nn.Module, "freeze", counted)
    batch = _gan_batch_and_weights()[0]
    with pytest.warns(UserWarning, match=r"called self.disc.freeze\(\) while the step ran"):
        trainer(tmp_path, max_epochs=2, compile=False).fit(_Gan("freeze"), [batch])
    assert mlx_nn.Module.freeze is counted
    assert len(calls) >= 2  # (both steps' self.disc.freeze() went through it, the checked one too)


@pytest.mark.parametrize("compile_", [True, False])
def test_freezing_inside_the_training_step_warns_that_it_stops_no_gradient(tmp_path, compile_):
    """Lightning's toggle_optimizer ported as self.disc.freeze() ... unfreeze() around the generator's loss
    (and the generator's around the discriminator's) stopped no gradient, compiled or not: the generator's
    loss trained the discriminator too, without a word. It now warns, naming the call; README's port with
    mx.stop_gradient gives Lightning 2.6.6's weights after the first step (a manual-optimization GAN:
    generator stepped, then discriminator on the detached fake, SGD 0.1 and 0.05)."""
    batch = _gan_batch_and_weights()[0]
    lightning = [  # Lightning 2.6.6: gen.weight, gen.bias, disc.weight, disc.bias after step 1
        [[0.08797827, -0.33458084, -0.14280468], [-0.32643467, -0.48718911, 0.24104026]],
        [0.00570798, 0.28982064],
        [[-0.34257996, 0.72699612]],
        [0.07183524],
    ]
    port = _Gan("stop_gradient")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # (the port that works says nothing)
        trainer(tmp_path, max_epochs=1, compile=compile_).fit(port, [batch])
    got = [port.gen.weight, port.gen.bias, port.disc.weight, port.disc.bias]
    for value, expected in zip(got, lightning):
        np.testing.assert_allclose(np.array(value), np.array(expected, np.float32), rtol=1e-5)

    frozen = _Gan("freeze")
    with pytest.warns(
        UserWarning, match=r"_Gan.training_step called self.disc.freeze\(\) while the step ran"
    ):
        trainer(tmp_path / "freeze", max_epochs=1, compile=compile_).fit(frozen, [batch])
    assert not np.allclose(np.array(frozen.disc.weight), np.array(lightning[2]), rtol=1e-3)  # (as before)
