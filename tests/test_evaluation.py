"""Evaluation (train/evaluation.py, and the stages around it in train/evaluation_loop.py): one function
serves validation in fit, validate, test and predict; hooks, limits and modes as Lightning has them."""

import warnings

import audiotrain  # noqa: F401  (before mlx)
from audiotrain import OptimizerConfig
from audiotrain.train.callbacks import Callback

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from mlx.utils import tree_flatten
from tasks import RecordingLogger, TinyClassifier, make_batches, make_data, quiet_trainer


def trainer(tmp_path, **kwargs):
    return quiet_trainer(tmp_path, **kwargs)


class Lifecycle(Callback):
    def __init__(self):
        self.calls = []

    def setup(self, trainer, module, stage):
        self.calls.append(("setup", stage))

    def teardown(self, trainer, module, stage):
        self.calls.append(("teardown", stage))

    def on_exception(self, trainer, module, exception):
        self.calls.append(("exception", type(exception).__name__))


class FailsInTest(TinyClassifier):
    def test_step(self, batch):
        raise RuntimeError("broken test_step")


# ---------------------------------------------------------------- defect 5: teardown and on_exception
@pytest.mark.parametrize("method", ["validate", "test", "predict"])
def test_validate_test_and_predict_fire_setup_and_teardown(tmp_path, method):
    lifecycle = Lifecycle()
    t = trainer(tmp_path, max_epochs=1, callbacks=[lifecycle])
    getattr(t, method)(TinyClassifier(), make_batches(32))
    assert lifecycle.calls == [("setup", method), ("teardown", method)]


def test_an_error_in_test_fires_on_exception_then_teardown(tmp_path):
    lifecycle = Lifecycle()
    t = trainer(tmp_path, max_epochs=1, callbacks=[lifecycle])
    with pytest.raises(RuntimeError, match="broken test_step"):
        t.test(FailsInTest(), make_batches(32))
    assert lifecycle.calls == [("setup", "test"), ("exception", "RuntimeError"), ("teardown", "test")]


@pytest.mark.parametrize("method", ["validate", "test", "predict"])
def test_a_stage_without_batches_is_refused_before_any_hook_runs(tmp_path, method):
    """No loader and no `*_dataloader` on the module: the error comes before `setup` (which had no
    `teardown` after it when the check came only once the module was set up)."""
    lifecycle = Lifecycle()
    t = trainer(tmp_path, max_epochs=1, callbacks=[lifecycle])
    with pytest.raises(TypeError, match=f"Trainer.{method}: pass the batches"):
        getattr(t, method)(TinyClassifier())
    assert lifecycle.calls == []


# ---------------------------------------------------------------- defect 6: each stage its own limit
class CountBatches(Callback):
    def __init__(self):
        self.val = self.test = 0

    def on_validation_batch_end(self, *args):
        self.val += 1

    def on_test_batch_end(self, *args):
        self.test += 1


def test_limit_val_batches_does_not_limit_test_and_limit_test_batches_does(tmp_path):
    counts = CountBatches()
    t = trainer(tmp_path, max_epochs=1, limit_val_batches=1, callbacks=[counts])
    t.validate(TinyClassifier(), make_batches(64))
    t.test(TinyClassifier(), make_batches(64))
    assert (counts.val, counts.test) == (1, 4)
    counts = CountBatches()
    t = trainer(tmp_path, max_epochs=1, limit_test_batches=2, callbacks=[counts])
    t.test(TinyClassifier(), make_batches(64))
    assert counts.test == 2
    assert (
        len(
            trainer(tmp_path, max_epochs=1, limit_predict_batches=3).predict(
                TinyClassifier(), make_batches(64)
            )
        )
        == 3
    )


def test_limit_predict_batches_0_turns_predict_off_as_lightning_does(tmp_path):
    # Lightning 2.6.6 with limit_predict_batches=0 calls only setup and teardown("predict") (recorded by
    # ldiffeval), as with limit_val/test_batches=0; here the predict hooks ran over no batch, so an "epoch"
    # writer was called with nothing to write.
    from audiotrain.train.callbacks import BasePredictionWriter

    class Writer(BasePredictionWriter):
        def __init__(self):
            super().__init__(write_interval="epoch")
            self.calls = []

        def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices):
            self.calls.append(("write_on_epoch_end", len(predictions)))

        def on_predict_start(self, trainer, module):
            self.calls.append(("on_predict_start",))

        def setup(self, trainer, module, stage):
            self.calls.append(("setup", stage))

        def teardown(self, trainer, module, stage):
            self.calls.append(("teardown", stage))

    writer = Writer()
    t = trainer(tmp_path, limit_predict_batches=0, callbacks=[writer])
    assert t.predict(TinyClassifier(), make_batches(64)) == []  # (Lightning's None; a list as typed)
    assert t.predict(TinyClassifier(), make_batches(64), return_predictions=False) is None
    assert writer.calls == [("setup", "predict"), ("teardown", "predict")] * 2


class CountSanityBatches(Callback):
    def __init__(self):
        self.sanity = 0

    def on_validation_batch_end(self, trainer, *args):
        self.sanity += trainer.sanity_checking


def test_limits_count_batches_as_lightning_does(tmp_path):
    # An int limit is at most the loader's batches; a fraction is int(fraction x batches), not rounded.
    counts = CountBatches()
    t = trainer(tmp_path, max_epochs=1, limit_val_batches=10, callbacks=[counts])
    t.validate(TinyClassifier(), make_batches(48))  # 3 batches
    assert (t.num_val_batches, counts.val) == (3, 3)
    counts = CountBatches()
    t = trainer(tmp_path, max_epochs=1, limit_train_batches=0.7, limit_val_batches=0.5, callbacks=[counts])
    t.fit(TinyClassifier(), make_batches(80), make_batches(48, seed=1))  # 5 and 3 batches
    assert (t.num_training_batches, t.global_step) == (3, 3)  # 3.5 → 3
    assert (t.num_val_batches, counts.val) == (1, 1)  # 1.5 → 1
    # The sanity check runs num_sanity_val_steps batches, at most limit_val_batches.
    sanity = CountSanityBatches()
    t = trainer(tmp_path, max_epochs=1, num_sanity_val_steps=2, limit_val_batches=1, callbacks=[sanity])
    t.fit(TinyClassifier(), make_batches(32), make_batches(48, seed=1))
    assert sanity.sanity == 1


def test_a_stage_turned_off_by_its_limit_asks_the_module_for_no_loader(tmp_path):
    """Lightning 2.6.6 with limit_val/test/predict_batches=0 never calls val_dataloader(), test_dataloader()
    or predict_dataloader() (measured: fit, validate, test, predict each ask none), and its loader
    attribute stays None. Here each was called (a loader that builds a dataset built it) and then unread."""
    asked = []

    class Loaders(TinyClassifier):
        def train_dataloader(self):
            return make_batches()

        def val_dataloader(self):
            asked.append("val")
            return make_batches()

        def test_dataloader(self):
            asked.append("test")
            return make_batches()

        def predict_dataloader(self):
            asked.append("predict")
            return [x for x, _ in make_batches()]

    t = trainer(tmp_path, max_epochs=1, limit_val_batches=0, limit_test_batches=0, limit_predict_batches=0)
    module = Loaders()
    t.fit(module)
    assert t.global_step == 6 and t.val_dataloaders is None
    assert t.validate(module) == [] and t.test(module) == [] and t.predict(module) == []
    assert asked == [] and t.test_dataloaders is None and t.predict_dataloaders is None
    trainer(tmp_path, limit_test_batches=2).test(module)  # (with a limit the loader is asked for)
    assert asked == ["test"]


class ForgetsToReturn(TinyClassifier):
    def predict_step(self, batch, batch_idx=0):
        self(batch)  # (no `return`)


def test_a_predict_step_returning_none_is_warned_of_once_as_lightning(tmp_path):
    """Lightning 2.6.6 warns "predict returned None if it was on purpose, ignore this warning..." (once);
    here a predict_step without `return` gave a list of None without a word."""
    x = [b[0] for b in make_batches()]
    with pytest.warns(UserWarning, match="predict_step returned None .*if it was on purpose") as said:
        assert trainer(tmp_path).predict(ForgetsToReturn(), x) == [None] * len(x)
    assert len([w for w in said if "returned None" in str(w.message)]) == 1
    assert said[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trainer(tmp_path).predict(TinyClassifier(), x)  # (outputs: nothing to say)


@pytest.mark.parametrize("method", ["validate", "test", "predict"])
def test_a_stage_without_any_model_asks_for_the_model_first(tmp_path, method):
    """Lightning 2.6.6's `trainer.validate()` on a Trainer that never had a model: "requires a
    `LightningModule`". Here, given no loader either, it said "pass the batches ..., or define
    val_dataloader on the module": a module there was none of."""
    with pytest.raises(TypeError, match=rf"Trainer\.{method}: pass the model \(no module is attached"):
        getattr(trainer(tmp_path), method)()


class ForgetsToReturnForEachLoader(TinyClassifier):
    def predict_step(self, batch, batch_idx=0, dataloader_idx=0):
        self(batch)  # (no `return`)


def test_a_predict_step_returning_none_over_several_loaders_is_warned_of_once(tmp_path):
    """Lightning 2.6.6 says it through its predict loop's WarningCache: once, whatever the loaders. Here each
    loader said it again (the same advice, twice for two loaders)."""
    from audiotrain import DataLoader

    x, _ = make_data(32)
    sets = [DataLoader(list(x), batch_size=16) for _ in range(2)]
    with pytest.warns(UserWarning, match="predict_step returned None") as said:
        assert trainer(tmp_path).predict(ForgetsToReturnForEachLoader(), sets) == [[None, None]] * 2
    assert len([w for w in said if "returned None" in str(w.message)]) == 1


def test_a_sanity_check_of_all_batches_stops_at_limit_val_batches(tmp_path):
    """num_sanity_val_steps=-1 is every batch validation runs: at most limit_val_batches, as Lightning's
    min(num_sanity_val_steps, num_val_batches)."""
    sanity = CountSanityBatches()
    t = trainer(tmp_path, max_epochs=1, num_sanity_val_steps=-1, limit_val_batches=1, callbacks=[sanity])
    t.fit(TinyClassifier(), make_batches(32), make_batches(48, seed=1))  # 3 validation batches
    assert sanity.sanity == 1


def test_num_sanity_val_steps_of_minus_one_reads_inf_and_still_checks_every_batch(tmp_path):
    """Lightning 2.6.6's `Trainer(num_sanity_val_steps=-1).num_sanity_val_steps` is `float("inf")` (measured),
    so a callback's `trainer.num_sanity_val_steps > 0` ("a sanity check runs") holds; it read -1 here."""
    sanity = CountSanityBatches()
    t = trainer(tmp_path, max_epochs=1, num_sanity_val_steps=-1, callbacks=[sanity])
    assert t.num_sanity_val_steps == float("inf") and t.num_sanity_val_steps > 0
    t.fit(TinyClassifier(), make_batches(32), make_batches(48, seed=1))  # 3 validation batches
    assert (sanity.sanity, t.num_sanity_val_batches) == (3, 3)
    assert trainer(tmp_path, max_epochs=1, num_sanity_val_steps=4).num_sanity_val_steps == 4


class SeesTheBatchCounts(Callback):
    def __init__(self):
        self.seen = []

    def on_validation_start(self, trainer, module):
        stage = "sanity" if trainer.sanity_checking else "val"
        self.seen.append((stage, trainer.num_val_batches, trainer.num_sanity_val_batches))

    def on_train_start(self, trainer, module):
        self.seen.append(("train_start", trainer.num_val_batches, trainer.num_sanity_val_batches))


@pytest.mark.parametrize("sanity_steps", [2, 0])
def test_num_val_batches_is_the_fits_validation_count_in_and_after_the_sanity_check(tmp_path, sanity_steps):
    """Lightning's `num_val_batches` in `fit` is its validation's count (the val loop's `_max_batches`,
    "because it shouldn't return the sanity_val batches"); the sanity check's is `num_sanity_val_batches`. It
    said 2 (the sanity check's) in on_train_start, and 0 there without a sanity check: a callback sizing a
    per-validation buffer from it got it wrong."""
    counts = SeesTheBatchCounts()
    t = trainer(tmp_path, max_epochs=1, num_sanity_val_steps=sanity_steps, callbacks=[counts])
    t.fit(TinyClassifier(), make_batches(32), make_batches(80, seed=1))  # 5 validation batches
    sanity = [("sanity", 5, 2)] if sanity_steps else []
    assert counts.seen == [*sanity, ("train_start", 5, sanity_steps), ("val", 5, sanity_steps)]


class BatchesWithoutALength:
    """A loader a user writes as a generator function's iterable: it has no `len`."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)


class SeesEachStagesCount(Callback):
    def __init__(self):
        self.seen = {}

    def on_validation_start(self, trainer, module):
        self.seen["val"] = trainer.num_val_batches

    def on_test_start(self, trainer, module):
        self.seen["test"] = trainer.num_test_batches

    def on_predict_start(self, trainer, module):
        self.seen["predict"] = trainer.num_predict_batches


def test_a_loader_without_a_length_counts_inf_batches_in_every_stage_as_in_lightning(tmp_path):
    """Lightning counts such a loader's batches as inf (as `num_training_batches` and
    `num_sanity_val_batches` do here); `num_val_batches` and the others said None, so `min(n, 10)` in a
    callback raised TypeError."""
    seen = SeesEachStagesCount()
    t = trainer(tmp_path, max_epochs=1, callbacks=[seen])
    batches = BatchesWithoutALength(make_batches(32))
    t.fit(TinyClassifier(), batches, batches)
    t.test(TinyClassifier(), batches)
    t.predict(TinyClassifier(), batches)
    assert seen.seen == {"val": float("inf"), "test": float("inf"), "predict": float("inf")}
    assert (t.num_training_batches, t.num_val_batches, t.num_test_batches) == (float("inf"),) * 3


def test_fast_dev_run_skips_the_sanity_check(tmp_path):
    """As Lightning's fast_dev_run, which sets num_sanity_val_steps to 0."""
    sanity, started = CountSanityBatches(), []

    class SeesTheCheck(Callback):
        def on_sanity_check_start(self, trainer, module):
            started.append(True)

    t = trainer(tmp_path, fast_dev_run=True, num_sanity_val_steps=2, callbacks=[sanity, SeesTheCheck()])
    t.fit(TinyClassifier(), make_batches(32), make_batches(48, seed=1))
    assert (sanity.sanity, started) == (0, [])


class CountsTheBatchesRead:
    """Batches with a length, counting those the Trainer reads."""

    def __init__(self, batches):
        self.batches, self.read = batches, 0

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        for batch in self.batches:
            self.read += 1
            yield batch


def test_a_limited_validation_reads_no_batch_past_its_limit(tmp_path):
    """A stream would lose the batch, and the profiler would time its loading as the stage's."""
    loader = CountsTheBatchesRead(make_batches(64))
    trainer(tmp_path, max_epochs=1, limit_val_batches=2).validate(TinyClassifier(), loader)
    assert loader.read == 2


class StreamWithAnEstimatedLength(list):
    """Batches of a stream whose `len` is an estimate (a DataLoader over an IterableDataset:
    `reads_stream`)."""

    reads_stream = True

    def __len__(self):
        return 1


def test_a_stream_is_validated_to_its_end_not_to_its_estimated_length(tmp_path):
    counts = CountBatches()
    t = trainer(tmp_path, max_epochs=1, callbacks=[counts])
    t.validate(TinyClassifier(), StreamWithAnEstimatedLength(make_batches(48)))
    assert counts.val == 3


def test_a_too_small_test_fraction_names_limit_test_batches(tmp_path):
    with pytest.raises(
        ValueError, match=r"Trainer\(limit_test_batches=0.1\): 0.1 x the test loader's 4 batches"
    ):
        trainer(tmp_path, max_epochs=1, limit_test_batches=0.1).test(TinyClassifier(), make_batches(64))


# ---------------------------------------------------------------- return values and predict
def test_validate_and_test_return_a_list_of_one_dict_as_lightning(tmp_path):
    t = trainer(tmp_path, max_epochs=1)
    module = TinyClassifier()
    (val,) = t.validate(module, make_batches(32))
    (test,) = t.test(module, make_batches(32))
    assert set(val) == {"val_loss", "val_accuracy"} and set(test) == {"test_loss", "test_accuracy"}
    assert t.validate(dataloaders=make_batches(32))[0] == val  # the attached module, by default


def test_a_metric_the_training_code_names_train_is_named_for_the_stage(tmp_path):
    """The default validation/test step runs the training code: its `train_acc` is `val_acc` and `test_acc`
    (not `val_train_acc`, which a monitor of "val_acc" would miss)."""

    class ReturnsTrainAcc(TinyClassifier):
        def compute_loss(self, batch):
            loss, metrics = super().compute_loss(batch)
            return loss, {"train_acc": metrics["accuracy"]}

    t, module = trainer(tmp_path, max_epochs=1), ReturnsTrainAcc()
    assert set(t.validate(module, make_batches(32))[0]) == {"val_loss", "val_acc"}
    assert set(t.test(module, make_batches(32))[0]) == {"test_loss", "test_acc"}


class LogsInValidationStep(TinyClassifier):
    """Returns `share` 0.75 and logs `share` 0.25 and `val_logged`."""

    def validation_step(self, batch, batch_idx):
        loss, metrics = self.compute_loss(batch)
        self.log("val_share", mx.array(0.25))
        self.log("val_logged", metrics["accuracy"])
        return loss, {**metrics, "share": mx.array(0.75)}


def test_a_value_logged_under_a_returned_metrics_name_replaces_it(tmp_path):
    (val,) = trainer(tmp_path, max_epochs=1).validate(LogsInValidationStep(), make_batches(32))
    assert val["val_share"] == pytest.approx(0.25)


def test_the_validation_batch_hooks_outputs_hold_what_the_step_returned_and_logged(tmp_path):
    seen = []

    class ReadsOutputs(Callback):
        def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx):
            seen.append(sorted(outputs))

    t = trainer(tmp_path, max_epochs=1, callbacks=[ReadsOutputs()])
    t.validate(LogsInValidationStep(), make_batches(32))
    assert seen == [["accuracy", "loss", "share", "val_logged", "val_share"]] * 2


def test_predict_returns_predict_step_outputs_per_batch_in_eval_mode(tmp_path):
    class Probabilities(TinyClassifier):
        def predict_step(self, batch, batch_idx):
            x, _ = batch
            return {"p": mx.softmax(self(x), axis=-1), "idx": batch_idx, "training": mx.array(self.training)}

    module = Probabilities(dropout=0.5)
    outputs = trainer(tmp_path, max_epochs=1).predict(module, make_batches(40, 16))
    assert [o["p"].shape for o in outputs] == [(16, 3), (16, 3), (8, 3)]
    assert [int(o["idx"]) for o in outputs] == [0, 1, 2]
    assert not any(bool(o["training"]) for o in outputs) and module.training  # eval inside, train after
    again = trainer(tmp_path, max_epochs=1).predict(module, make_batches(40, 16))
    np.testing.assert_array_equal(np.array(outputs[0]["p"]), np.array(again[0]["p"]))  # dropout off


def test_predict_with_return_predictions_none_returns_them_as_lightnings_default(tmp_path):
    outputs = trainer(tmp_path, max_epochs=1).predict(
        TinyClassifier(), make_batches(40, 16), return_predictions=None
    )
    assert isinstance(outputs, list) and len(outputs) == 3


def dict_batches(n: int = 32):
    return [{"x": x, "y": y} for x, y in make_batches(n)]


class DictBatches(TinyClassifier):
    """The README's model: __call__ takes the features, compute_loss reads batch["x"], batch["y"]."""

    def compute_loss(self, batch):
        return super().compute_loss((batch["x"], batch["y"]))


@pytest.mark.parametrize("compile", [True, False])
def test_the_default_predict_step_says_when_the_model_cannot_take_the_dict_batch(tmp_path, compile):
    """It passed the dict whole to __call__; the user saw addmm's arguments or a KeyError of their own
    model, with nothing saying that predict_step chose them."""
    t = trainer(tmp_path, max_epochs=1, compile=compile)
    with pytest.raises(TypeError) as raised:
        t.predict(DictBatches(), dict_batches())
    message = str(raised.value)
    assert (
        "DictBatches.predict_step (TrainModule's default) passed DictBatches.__call__ the whole batch"
        in message
    )
    assert "dict with keys 'x', 'y'" in message
    assert "Define DictBatches.predict_step(self, batch, batch_idx)" in message
    assert "e.g. return self(batch['x'])" in message


def test_the_default_predict_step_still_serves_models_that_take_what_it_passes(tmp_path):
    class TakesTheDict(DictBatches):
        def __call__(self, batch):
            return super().__call__(batch["x"] if isinstance(batch, dict) else batch)

    t = trainer(tmp_path, max_epochs=1)
    assert [out.shape for out in t.predict(TakesTheDict(), dict_batches())] == [(16, 3), (16, 3)]
    assert [out.shape for out in t.predict(TinyClassifier(), make_batches(32))] == [(16, 3), (16, 3)]

    class TakesLengthsToo(TinyClassifier):
        def __call__(self, x, lengths):
            return super().__call__(x) * lengths[:, None]

    with pytest.raises(
        TypeError,
        match=r"passed TakesLengthsToo.__call__ batch\[0\] \(the first of the "
        r"batch's 2 items\): array of shape \(16, 8\), and it failed \(TypeError: ",
    ):
        t.predict(TakesLengthsToo(), make_batches(32))


# ---------------------------------------------------------------- modes around evaluation
def test_validation_gives_each_submodule_back_its_own_mode(tmp_path):
    """A `submodule.eval()` made in a training hook survives the validations inside the epoch."""
    seen = []

    class FrozenDropout(TinyClassifier):
        def on_train_epoch_start(self, epoch):
            self.drop.eval()

        def on_train_batch_end(self, outputs, batch, batch_idx):
            seen.append((self.training, self.drop.training))

    trainer(tmp_path, max_epochs=1, val_check_interval=0.5).fit(
        FrozenDropout(dropout=0.5), make_batches(64), make_batches(32)
    )
    assert seen == [(True, False)] * 4


@pytest.mark.parametrize("stage", ["validation", "test"])
def test_the_stage_hooks_around_validation_and_test_see_eval_mode_as_lightnings(tmp_path, stage):
    # Lightning sets eval mode before on_validation_start and gives the modes back after on_validation_end
    # (its _EvaluationLoop.on_run_start / on_run_end): a hook there that runs the model (embeddings of a
    # held-out set in on_validation_epoch_end) ran it with Dropout on and BatchNorm updating its statistics.
    seen = {}
    hooks = [f"on_{stage}_start", f"on_{stage}_epoch_start", f"on_{stage}_epoch_end", f"on_{stage}_end"]

    class Records(TinyClassifier):
        pass

    def recording(name):
        return lambda self, *args: seen.setdefault(name, (self.training, self.drop.training))

    for name in hooks:
        setattr(Records, name, recording(name))
    module, t = Records(dropout=0.5), trainer(tmp_path, max_epochs=1)
    if stage == "validation":
        t.fit(module, make_batches(32), make_batches(16, seed=1))
    else:
        t.test(module, make_batches(16, seed=1), verbose=False)
    assert seen == {name: (False, False) for name in hooks}
    assert module.training and module.drop.training  # (train mode back after the stage)


def test_validation_epoch_end_sees_this_validations_means_in_callback_metrics(tmp_path):
    # TrainModule.on_validation_epoch_end's promise, for the module and a callback: each validation's own
    # means (a hook there compares or stores them), not the previous validation's or none.
    seen = []

    class Reads(Callback):
        def on_validation_epoch_end(self, trainer, module):
            seen.append(("callback", trainer.callback_metrics.get("val_loss")))

    class ReadsToo(TinyClassifier):
        def on_validation_epoch_end(self):
            seen.append(("module", self.trainer.callback_metrics.get("val_loss")))

    t = trainer(tmp_path, max_epochs=2, num_sanity_val_steps=0, callbacks=[Reads()])
    t.fit(ReadsToo(), make_batches(32), make_batches(16, seed=1))
    means = [pytest.approx(v, rel=1e-6) for v in t.history["val_loss"]]
    assert len(means) == 2 and seen == [(who, m) for m in means for who in ("callback", "module")]


# ---------------------------------------------------------------- a metric with its own weight
class PositiveRecall(TinyClassifier):
    """Returns recall over the batch's class-2 samples as `(value, weight)`: weighted by how many it counts
    (a batch may hold none), not by the batch's samples, as the chord recipe's root accuracy skips N."""

    def compute_loss(self, batch):
        x, y = batch
        loss, metrics = super().compute_loss(batch)
        positive = (y == 2).astype(mx.float32)
        counted = mx.sum(positive)
        hits = mx.sum((mx.argmax(self(x), axis=-1) == 2) * positive)
        return loss, {**metrics, "recall": (hits / mx.maximum(counted, 1.0), counted)}


def test_a_metric_returned_with_its_own_weight_is_averaged_over_what_it_counts(tmp_path):
    """Σ hits / Σ counted over the epoch, in training and validation, compiled; a batch without a class-2
    sample weighs nothing (it counted as 0% at the batch's full weight when every metric was weighted by
    batch_size(batch))."""
    batches = make_batches(64, batch_size=16)
    batches[1] = (batches[1][0], mx.minimum(batches[1][1], 1))  # a batch without class 2
    module = PositiveRecall()
    module.eval()
    predicted = [np.array(mx.argmax(module(x), axis=-1)) for x, _ in batches]
    labels = [np.array(y) for _, y in batches]
    hits = sum(int(((p == 2) & (y == 2)).sum()) for p, y in zip(predicted, labels, strict=True))
    counted = sum(int((y == 2).sum()) for y in labels)
    (val,) = trainer(tmp_path, max_epochs=1).validate(module, batches)
    assert counted and val["val_recall"] == pytest.approx(hits / counted, rel=1e-6)
    assert val["val_accuracy"] == pytest.approx(
        np.mean(np.concatenate(predicted) == np.concatenate(labels)), rel=1e-6
    )  # the others: weighted by samples

    class Frozen(PositiveRecall):  # training without changing the weights: the same recall
        def configure_optimizers(self):
            return OptimizerConfig(optimizer=optim.SGD(learning_rate=0.0))

    frozen = Frozen()
    frozen.update(module.parameters())
    t = trainer(tmp_path, max_epochs=1, log_every_n_steps=1)
    t.fit(frozen, batches)
    assert t.history["train_recall"] == [pytest.approx(hits / counted, rel=1e-6)]


def test_a_value_logged_under_a_returned_metrics_name_is_weighted_by_the_batch(tmp_path):
    """The logged value replaces the returned one, its own weight too: logged with `self.log`, it is
    averaged over the samples as Lightning averages what is logged (not over what the returned one counted)."""

    class LogsTheShare(TinyClassifier):
        def compute_loss(self, batch):
            loss, metrics = super().compute_loss(batch)
            y = batch[1]
            share = mx.mean((y == 0).astype(mx.float32))
            self.log("share", share)  # the same batch value, without the returned one's weight
            return loss, {**metrics, "share": (share, mx.sum((y == 2).astype(mx.float32)))}

    batches = make_batches(64, batch_size=16)
    batches[1] = (batches[1][0], mx.minimum(batches[1][1], 1))  # no class 2: the returned weight is 0 there
    shares = [float(np.mean(np.array(y) == 0)) for _, y in batches]
    (val,) = trainer(tmp_path, max_epochs=1).validate(LogsTheShare(), batches)
    assert val["val_share"] == pytest.approx(np.mean(shares), rel=1e-6)  # every batch of 16 samples


class PaddedBatches(list):
    """Batches whose second is padding alone, as a sharded DataLoader names it under data parallel
    (`DataLoader.padding_batches`, `pad_shards=False`): evaluation runs it, ranks step together, and weighs
    it 0."""

    padding_batches = frozenset({1})


def test_a_batch_the_loader_names_as_padding_weighs_nothing(tmp_path):
    batches, module = make_batches(48, batch_size=16), TinyClassifier()
    (real,) = trainer(tmp_path, max_epochs=1).validate(module, [batches[0], batches[2]])
    (padded,) = trainer(tmp_path, max_epochs=1).validate(module, PaddedBatches(batches))
    assert padded["val_loss"] == pytest.approx(real["val_loss"], rel=1e-6)


def test_a_batch_that_counts_nothing_weighs_nothing_even_where_its_value_is_nan(tmp_path):
    """`hits / counted` of a batch without a counted sample is 0/0, NaN: at weight 0 it was NaN x 0 = NaN in
    the sums, and the whole mean (validation, training, and under data parallel every rank's) was NaN."""

    class UnguardedRecall(PositiveRecall):
        def compute_loss(self, batch):
            x, y = batch
            loss, metrics = TinyClassifier.compute_loss(self, batch)
            positive = (y == 2).astype(mx.float32)
            counted = mx.sum(positive)
            hits = mx.sum((mx.argmax(self(x), axis=-1) == 2) * positive)
            return loss, {**metrics, "recall": (hits / counted, counted)}  # NaN where it counts none

    batches = make_batches(64, batch_size=16)
    batches[1] = (batches[1][0], mx.minimum(batches[1][1], 1))  # a batch without class 2
    guarded, unguarded = PositiveRecall(), UnguardedRecall()
    unguarded.update(guarded.parameters())
    (expected,) = trainer(tmp_path, max_epochs=1).validate(guarded, batches)
    (val,) = trainer(tmp_path, max_epochs=1).validate(unguarded, batches)
    assert np.isfinite(val["val_recall"]) and val["val_recall"] == pytest.approx(expected["val_recall"])
    t = trainer(tmp_path, max_epochs=1, log_every_n_steps=1)
    t.fit(unguarded, batches)
    assert np.isfinite(t.history["train_recall"][0])


def test_a_metric_weight_must_be_an_array_the_step_computes(tmp_path):
    class NumberWeight(TinyClassifier):
        def compute_loss(self, batch):
            loss, metrics = super().compute_loss(batch)
            return loss, {"accuracy": (metrics["accuracy"], 16)}

    with pytest.raises(TypeError, match=r"compute_loss.*the weight of metric 'accuracy' must be a scalar mx"):
        trainer(tmp_path, max_epochs=1).validate(NumberWeight(), make_batches(32))


# ---------------------------------------------------------------- arrays an evaluation step assigns
class KeepsAQueue(TinyClassifier):
    """MoCo's queue of negatives: a frozen array the step itself assigns (README: kept, as a buffer)."""

    def __init__(self):
        super().__init__()
        self.queue = mx.zeros((4, 8))
        self.freeze(keys=["queue"], recurse=False)

    def compute_loss(self, batch):
        self.queue = mx.concatenate([batch[0][:1], self.queue[:-1]])
        return super().compute_loss(batch)


@pytest.mark.parametrize("stage", ["fit", "validate", "test"])
def test_an_array_the_compiled_evaluation_step_assigns_holds_what_it_wrote_as_eagerly(tmp_path, stage):
    # The default validation_step and test_step run compute_loss, which assigns the queue: compiled, the
    # module kept a placeholder of the trace, and the next read of it (the epoch-end checkpoint's save, an
    # on_validation_epoch_end) failed with MLX's "eval an array without a primitive".
    queues = []
    for compile in (True, False):
        module = KeepsAQueue()
        t = trainer(tmp_path / str(compile), max_epochs=1, compile=compile, enable_checkpointing=True)
        if stage == "fit":
            t.fit(module, make_batches(32), make_batches(32, seed=1))
        else:
            getattr(t, stage)(module, make_batches(32, seed=1), verbose=False)
        queues.append(np.array(module.queue))
    compiled, eager = queues
    assert np.abs(eager).sum() > 0 and np.array_equal(compiled, eager)


class KeepsADecodingCache(TinyClassifier):
    """A decoder's KV cache: a new list attribute the validation step's greedy loop sets and fills."""

    def __init__(self):
        super().__init__()
        self._cache = None

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self._cache = []
        for _ in range(3):
            self._cache.append(self.fc1(x))
        return mx.mean(nn.losses.cross_entropy(self(x), y))


def test_a_cache_the_compiled_validation_step_sets_does_not_break_the_next_training_step(tmp_path):
    # The list is a new attribute, not a list that grew: its placeholders stayed on the module, and the
    # training step after the validation (compiled over the whole module) failed with "[eval] Attempting to
    # eval an array without a primitive", naming training_step, batch 0.
    module = KeepsADecodingCache()
    t = trainer(tmp_path, max_epochs=2, num_sanity_val_steps=1, enable_checkpointing=True)
    t.fit(module, make_batches(32), make_batches(32, seed=1))
    assert len(t.history["val_loss"]) == 2 and module._cache == []
    assert "_cache" not in dict(tree_flatten(module.parameters()))


# ------------------------------------------- validation draws from generators of its own, not the training's
class SamplesInValidation(TinyClassifier):
    """Dropout in training; a diffusion-style sampling loop in `on_validation_epoch_end` (when `sample`)."""

    def __init__(self, sample: bool):
        super().__init__(dropout=0.5)
        self.sample = sample
        self._samples = []

    def on_validation_epoch_end(self):
        if self.sample:
            self._samples.append(np.array(mx.random.normal((4,))) + np.random.rand())


def test_sampling_in_validation_leaves_the_training_random_stream_alone(tmp_path):
    """Sampling audio with `mx.random` in a validation hook changed what dropout drew in every later
    training step: a run with sampling trained other weights than one without (up to 0.23 apart)."""
    from tasks import weights

    runs = {}
    for sample in (True, False):
        audiotrain.seed_everything(0)
        module = SamplesInValidation(sample)
        trainer(tmp_path / str(sample), max_epochs=3, seed=1).fit(module, make_batches(32), make_batches(16))
        runs[sample] = module
    for name, value in weights(runs[True]).items():
        np.testing.assert_array_equal(value, weights(runs[False])[name], err_msg=name)
    drawn = runs[True]._samples
    assert len(drawn) == 3 and not np.allclose(drawn[0], drawn[1])  # each validation draws anew


class SamplesWithTorchInValidation(TinyClassifier):
    """A validation hook that draws from torch (a torchaudio augmentation, a torch sampler)."""

    def __init__(self):
        super().__init__()
        self._drawn = []

    def on_validation_epoch_end(self):
        import torch

        self._drawn.append(float(torch.rand(1)))


@pytest.mark.parity
def test_each_validation_draws_anew_from_torch_too(tmp_path):
    """Where the training draws nothing from torch, every validation drew the same torch numbers (its
    generator put back to the training's each time, seeded anew for MLX, numpy and Python only)."""
    from reference import require

    require("torch")  # (imported before fit: the run's generators include torch's)

    module = SamplesWithTorchInValidation()
    trainer(tmp_path, max_epochs=3).fit(module, make_batches(32), make_batches(16))
    assert len(module._drawn) == 3 and len(set(module._drawn)) == 3


# ------------------------------------------ Lightning's per-sample outputs from validation_step / test_step
class ReturnsScores(TinyClassifier):
    """Lightning's `return {"preds": probs, "target": y}`, with a loss where `with_loss`."""

    def __init__(self, with_loss: bool = False):
        super().__init__()
        self.with_loss = with_loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        out = {"preds": mx.softmax(logits, axis=-1)[:, 1], "target": y}
        if self.with_loss:
            out["loss"] = mx.mean(nn.losses.cross_entropy(logits, y))
            out["acc"] = mx.mean(mx.argmax(logits, axis=-1) == y)  # (a scalar: still a metric)
        return out

    test_step = validation_step


class CollectsScores(Callback):
    def __init__(self):
        self.preds, self.targets, self.kinds = [], [], set()

    def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.kinds.add((type(outputs["preds"]), outputs["preds"].dtype))
        self.preds.append(np.array(outputs["preds"]))
        self.targets.append(np.array(outputs["target"]))

    on_test_batch_end = on_validation_batch_end

    def score(self) -> float:
        """The Brier score of class 1 over the whole set (no mean of per-batch values)."""
        preds, targets = np.concatenate(self.preds), np.concatenate(self.targets)
        return float(np.mean((preds - (targets == 1)) ** 2))


@pytest.mark.parametrize("with_loss", [False, True])
def test_a_callback_collects_the_validation_steps_per_sample_outputs_and_scores_them(tmp_path, with_loss):
    """Lightning passes what validation_step returns to on_validation_batch_end; here a dict without 'loss'
    was refused ("returned a dict without a 'loss' key") and a (B,) array beside a loss ("metric 'preds' must
    be a scalar"). Compiled and eager give one score, that of the model's outputs computed by hand; batches of
    16, 16 and 1: the last batch's (1,) scores are outputs too, not a metric."""
    module, x, y = ReturnsScores(with_loss), *make_data(33)
    logits = np.array(module(mx.array(x)))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    by_hand = float(np.mean((probs[:, 1] - (y == 1)) ** 2))
    for compile in (True, False):
        collect = CollectsScores()
        t = trainer(tmp_path, max_epochs=1, compile=compile, callbacks=[collect])
        (means,) = t.validate(module, make_batches(33))
        assert collect.score() == pytest.approx(by_hand, rel=1e-5)
        np.testing.assert_array_equal(np.concatenate(collect.targets), y)
        assert [p.shape for p in collect.preds] == [(16,), (16,), (1,)]
        assert collect.kinds == {(mx.array, mx.float32)}
        if with_loss:  # the loss and the scalar metric logged as before, the arrays not
            assert sorted(means) == ["val_acc", "val_loss"]
            assert means["val_loss"] == pytest.approx(float(np.mean(-np.log(probs[np.arange(33), y]))))
        else:
            assert means == {}


def test_a_test_step_returning_outputs_without_loss_logs_nothing_and_passes_them_on(tmp_path):
    logger, collect = RecordingLogger(), CollectsScores()
    t = trainer(tmp_path, max_epochs=1, logger=logger, callbacks=[collect])
    assert t.test(ReturnsScores(), make_batches(32)) == [{}]
    assert logger.metrics == [] and len(collect.preds) == 2


def test_a_modules_own_batch_end_hook_gets_the_outputs_under_bf16_as_float32(tmp_path):
    seen = []

    class ReadsItself(ReturnsScores):
        def on_validation_batch_end(self, outputs, batch, batch_idx):
            seen.append((outputs["preds"].dtype, outputs["preds"].shape, float(outputs["loss"])))

    t = trainer(tmp_path, max_epochs=1, precision="bf16-mixed")
    with pytest.warns(UserWarning):  # (the bfloat16 loss's warning)
        t.validate(ReadsItself(with_loss=True), make_batches(20))
    assert [s[:2] for s in seen] == [(mx.float32, (16,)), (mx.float32, (4,))]


class KeepsItsMetricsDimension(TinyClassifier):
    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        acc = mx.mean(mx.argmax(logits, axis=-1) == y, keepdims=True)  # (shape (1,), not ())
        return {"loss": mx.mean(nn.losses.cross_entropy(logits, y)), "acc": acc}


@pytest.mark.parametrize("compile", [True, False])
def test_a_metric_of_shape_1_beside_the_loss_that_no_hook_reads_is_not_dropped_silently(tmp_path, compile):
    """An array with dimensions beside the loss is an output for the batch-end hook, not a metric: a
    metric returned as shape (1,) (logged before outputs were passed on) left validate's result without
    'val_acc', and nothing said so. With no batch-end hook of the user's to read it, that is said once."""
    t = trainer(tmp_path, max_epochs=1, compile=compile)
    with pytest.warns(
        UserWarning, match=r"returned 'acc' \(shape \(1,\)\) beside its loss: .* not a metric"
    ) as got:
        (means,) = t.validate(KeepsItsMetricsDimension(), make_batches(33))
    assert sorted(means) == ["val_loss"]
    (said,) = [str(w.message) for w in got if "beside its loss" in str(w.message)]  # (once, not a batch)
    assert "on_validation_batch_end(outputs, batch, batch_idx), which no callback" in said


def test_outputs_beside_the_loss_that_a_callback_reads_are_not_warned_of(tmp_path):
    collect = CollectsScores()
    t = trainer(tmp_path, max_epochs=1, callbacks=[collect])
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        t.validate(ReturnsScores(with_loss=True), make_batches(33))
    assert not [w for w in got if "beside its loss" in str(w.message)]
    assert len(collect.preds) == 3


@pytest.mark.parametrize("compile", [True, False])
@pytest.mark.parametrize(
    ("returned", "error", "message"),
    [
        (
            lambda x, y: {"preds": x, "count": 16},
            TypeError,
            r"returned outputs\['count'\] = int, not an mx.array: .*a Python value in a compiled step is the "
            "one it had while traced",
        ),
        (
            lambda x, y: {"loss": mx.mean(x), "rows": [x, "a"]},
            TypeError,
            r"returned outputs\['rows'\]\[1\] = str, not an mx.array",
        ),
        (
            lambda x, y: {"loss": mx.mean(x), "n": 16},
            TypeError,
            "metric 'n' must be a scalar mx.array, got int",
        ),
        (
            lambda x, y: (mx.mean(x), {"preds": x[:, 0]}),
            ValueError,
            r"metric 'preds' must be a scalar, got shape \(16,\).*returning a dict .*passes its arrays on to "
            r"on_validation_batch_end",
        ),
        (lambda x, y: x[:, 0], ValueError, r"the loss must be a scalar, got shape \(16,\)"),
    ],
)
def test_what_a_validation_step_returns_that_is_still_refused_is_explained(
    tmp_path, compile, returned, error, message
):
    class Returns(TinyClassifier):
        def validation_step(self, batch, batch_idx):
            return returned(*batch)

    with pytest.raises(error, match=message):
        trainer(tmp_path, max_epochs=1, compile=compile).validate(Returns(), make_batches(32))


class EpochRecordingSampler:
    """A sampler in sequence that keeps every epoch its `set_epoch` is given (a DistributedSampler's hook)."""

    def __init__(self, n: int):
        self.n, self.epochs = n, []

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)


def sampled_loader(n: int = 32):
    from audiotrain import DataLoader

    x, y = make_data(n)
    return DataLoader(list(zip(x, y)), batch_size=16, sampler=EpochRecordingSampler(n))


def test_an_evaluation_loaders_sampler_gets_the_fits_epoch_not_its_own_count(tmp_path):
    """The validation loader's epoch is the training's, as Lightning sets it: the sanity check and the
    first epoch's validation both draw epoch 0's order, and a validate/test/predict after a fit of 2 epochs
    the epoch the fit ended at. (Counting its own iterations gave 0, 1, 2 and then 0.)"""
    train, val = sampled_loader(), sampled_loader()
    t = trainer(tmp_path, max_epochs=2, num_sanity_val_steps=1)
    model = TinyClassifier()
    t.fit(model, train, val)
    # Lightning 2.6.6, the same fit: train [0, 1], val [0, 0, 1] (sanity check, epoch 0, epoch 1)
    assert train.sampler.epochs == [0, 1]
    assert val.sampler.epochs == [0, 0, 1]
    after = {name: sampled_loader() for name in ("validate", "test", "predict")}
    for name, loader in after.items():
        getattr(t, name)(model, loader)
    # Lightning 2.6.6: a validate after that fit gives the sampler its current_epoch, 2
    assert {name: loader.sampler.epochs for name, loader in after.items()} == {
        "validate": [2],
        "test": [2],
        "predict": [2],
    }


@pytest.mark.parity
def test_a_torch_random_sampler_in_an_evaluation_loader_gets_lightnings_advice_too(tmp_path):
    """Lightning 2.6.6 warns alike for a val loader given `sampler=RandomSampler(ds)` or
    `batch_sampler=BatchSampler(RandomSampler(ds), 2, False)` (its `_is_dataloader_shuffled` reads the
    sampler); only `shuffle=True` was warned of."""
    from audiotrain import DataLoader, PossibleUserWarning

    from reference import require

    require("torch")
    from torch.utils.data import BatchSampler, RandomSampler, SequentialSampler

    x, y = make_data(8)
    samples = list(zip(x, y))
    loaders = {
        "sampler": DataLoader(samples, sampler=RandomSampler(samples), batch_size=2),
        "batch_sampler": DataLoader(samples, batch_sampler=BatchSampler(RandomSampler(samples), 2, False)),
        "in order": DataLoader(samples, batch_sampler=BatchSampler(SequentialSampler(samples), 2, False)),
    }
    warned = {}
    for name, loader in loaders.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer(tmp_path).validate(TinyClassifier(), loader)
        warned[name] = any(
            issubclass(w.category, PossibleUserWarning) and "shuffling enabled" in str(w.message)
            for w in caught
        )
    assert warned == {"sampler": True, "batch_sampler": True, "in order": False}


def test_a_shuffled_evaluation_loader_gets_lightnings_advice_once_a_stage(tmp_path):
    """Lightning 2.6.6 warns (PossibleUserWarning) "Your `val_dataloader`'s sampler has shuffling enabled,
    it is strongly recommended that you turn shuffling off for val/test dataloaders."; nothing was said."""
    from audiotrain import DataLoader, PossibleUserWarning

    x, y = make_data(32)
    samples = list(zip(x, y))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = trainer(tmp_path, max_epochs=2, num_sanity_val_steps=1)
        model = TinyClassifier()
        t.fit(model, DataLoader(samples, batch_size=16), DataLoader(samples, batch_size=16, shuffle=True))
        t.test(model, DataLoader(samples, batch_size=16, shuffle=True))
        t.predict(model, DataLoader(samples, batch_size=16))  # (in order: nothing to say)
    advice = [str(w.message) for w in caught if issubclass(w.category, PossibleUserWarning)]
    advice = [m.split("'s sampler")[0] for m in advice if "shuffling enabled" in m]
    assert advice == ["Your `val_dataloader`", "Your `test_dataloader`"]
