"""Lightning's hooks from the user's side: which run, in which order, with which arguments, and the
ones the Trainer cannot call refused by name."""

import warnings

import audiotrain  # noqa: F401  (before mlx)
from audiotrain import DataModule
from audiotrain.train.callbacks import Callback, EarlyStopping, ModelCheckpoint
from audiotrain.train.hooks import UNSUPPORTED

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from exactness import assert_same_numbers
from tasks import TinyClassifier, make_batches, quiet_trainer, weights

# Lightning's hooks of a stage, in the order Lightning calls them (callbacks first, then the module).
_RECORDED = [
    "setup",
    "on_fit_start",
    "on_sanity_check_start",
    "on_sanity_check_end",
    "on_train_start",
    "on_train_epoch_start",
    "on_train_batch_start",
    "on_train_batch_end",
    "on_validation_start",
    "on_validation_epoch_start",
    "on_validation_batch_start",
    "on_validation_batch_end",
    "on_validation_epoch_end",
    "on_validation_end",
    "on_train_epoch_end",
    "on_train_end",
    "on_fit_end",
    "teardown",
]


def _recording(base: type, seen: list, who: str) -> type:
    """A subclass of `base` whose Lightning hooks append (who, hook, sanity_checking) to `seen`."""
    methods = {}
    for name in _RECORDED:
        if who == "module" and name.startswith("on_sanity_check"):
            continue  # a Callback hook only, in Lightning

        def hook(self, *args, name=name):
            trainer = self.trainer if who == "module" else args[0]
            seen.append((who, name, trainer.sanity_checking))

        methods[name] = hook
    return type(f"Recording{base.__name__}", (base,), methods)


def test_lightnings_hooks_run_callbacks_first_then_the_module_sanity_check_included(tmp_path):
    seen = []
    module = _recording(TinyClassifier, seen, "module")()
    callback = _recording(Callback, seen, "callback")()
    t = quiet_trainer(tmp_path, max_epochs=1, num_sanity_val_steps=1, callbacks=[callback])
    t.fit(module, make_batches(16), make_batches(16))

    def both(name, sanity=False):
        return [("callback", name, sanity), ("module", name, sanity)]

    validation = [n for n in _RECORDED if "validation" in n]
    expected = [
        *both("setup"),
        *both("on_fit_start"),
        ("callback", "on_sanity_check_start", True),
        *[call for name in validation for call in both(name, sanity=True)],
        ("callback", "on_sanity_check_end", True),
        *[call for name in _RECORDED[4:8] for call in both(name)],
        *[call for name in validation for call in both(name)],
        *[call for name in _RECORDED[-4:] for call in both(name)],
    ]
    assert seen == expected


def test_a_sanity_check_logs_nothing_and_leaves_no_metrics(tmp_path):
    class LogsAtEpochEnd(TinyClassifier):
        def on_validation_epoch_end(self):
            self.log("val_score", 1.0 if self.trainer.sanity_checking else 2.0)

    t = quiet_trainer(tmp_path, max_epochs=1, num_sanity_val_steps=1)
    t.fit(LogsAtEpochEnd(), make_batches(16), make_batches(16))
    assert t.callback_metrics["val_score"] == 2.0 and t.history["val_score"] == [2.0]


def test_the_sanity_checks_means_are_neither_callback_metrics_nor_a_validation_in_history(tmp_path):
    """Lightning drops the sanity check's results: a callback reading `callback_metrics` before training
    (a monitor) sees none, and an epoch without a validation (check_val_every_n_epoch=2) has no val_ row."""
    seen = []

    class ReadsMetrics(Callback):
        def on_sanity_check_end(self, trainer, module):
            seen.append(dict(trainer.callback_metrics))

        def on_train_start(self, trainer, module):
            seen.append(dict(trainer.callback_metrics))

    t = quiet_trainer(
        tmp_path, max_epochs=1, num_sanity_val_steps=2, check_val_every_n_epoch=2, callbacks=[ReadsMetrics()]
    )
    t.fit(TinyClassifier(), make_batches(32), make_batches(48, seed=1))
    assert seen == [{}, {}]
    assert not [name for name in [*t.history, *t.callback_metrics] if name.startswith("val_")]


def test_module_hooks_written_with_lightnings_signatures_are_called(tmp_path):
    seen = []

    class LightningStyle(TinyClassifier):
        def on_train_epoch_start(self):
            seen.append("epoch_start")

        def on_train_epoch_end(self):
            seen.append("epoch_end")

        def on_validation_end(self):
            seen.append("val_end")

        def on_test_end(self):
            seen.append("test_end")

    t = quiet_trainer(tmp_path, max_epochs=2)
    module = LightningStyle()
    t.fit(module, make_batches(16), make_batches(16))
    t.test(module, make_batches(16))
    assert seen == ["epoch_start", "val_end", "epoch_end"] * 2 + ["test_end"]


class ClipsAfterBackward(Callback):
    def on_after_backward(self, trainer, module): ...


class StepsItself(TinyClassifier):
    def on_before_optimizer_step(self, optimizer): ...


@pytest.mark.parametrize(
    "callbacks, module, named",
    [
        ([ClipsAfterBackward()], TinyClassifier(), "ClipsAfterBackward.on_after_backward"),
        ([], StepsItself(), "StepsItself.on_before_optimizer_step"),
    ],
)
def test_hooks_inside_the_compiled_step_are_refused_with_what_to_use(tmp_path, callbacks, module, named):
    t = quiet_trainer(tmp_path, max_epochs=1, callbacks=callbacks)
    with pytest.raises(TypeError, match=rf"{named} would never be called.*compiled.*gradient_clip_val"):
        t.fit(module, make_batches(16))
    assert t.global_step == 0


class EndsEpochsTheOldWay(Callback):
    def on_epoch_end(self, trainer, module): ...


class CollectsOutputs(TinyClassifier):
    def training_epoch_end(self, outputs): ...


class CollectsValidationOutputs(TinyClassifier):
    def validation_epoch_end(self, outputs): ...


@pytest.mark.parametrize(
    "callbacks, module, named, instead",
    [
        ([EndsEpochsTheOldWay()], TinyClassifier(), "EndsEpochsTheOldWay.on_epoch_end", "on_train_epoch_end"),
        # (the mean it computed: logged with on_epoch=True instead)
        ([], CollectsOutputs(), "CollectsOutputs.training_epoch_end", "on_train_epoch_end.*on_epoch=True"),
        (
            [],
            CollectsValidationOutputs(),
            "CollectsValidationOutputs.validation_epoch_end",
            "on_validation_epoch_end",
        ),
    ],
)
def test_lightning_1_hooks_are_refused_with_their_lightning_2_names(
    tmp_path, callbacks, module, named, instead
):
    # Lightning 2 raises for these too; here they would silently never run.
    t = quiet_trainer(tmp_path, max_epochs=1, callbacks=callbacks)
    with pytest.raises(TypeError, match=rf"{named} would never be called: a Lightning 1.x hook.*{instead}"):
        t.fit(module, make_batches(16))
    assert t.global_step == 0


class EndsBatchesWithTheLoaderIndex(Callback):  # Lightning 1.x's signature
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx): ...


class EndsEpochsWithOutputs(Callback):  # Lightning 1.x's signature
    def on_train_epoch_end(self, trainer, module, outputs): ...


@pytest.mark.parametrize(
    "callback, named, missing",
    [
        (
            EndsBatchesWithTheLoaderIndex(),
            "EndsBatchesWithTheLoaderIndex.on_train_batch_end",
            "dataloader_idx",
        ),
        (EndsEpochsWithOutputs(), "EndsEpochsWithOutputs.on_train_epoch_end", "outputs"),
    ],
)
def test_a_callback_hook_that_cannot_take_the_hooks_arguments_is_refused_before_training(
    tmp_path, callback, named, missing
):
    # Called, it would raise a bare TypeError at its first call (the epoch hook after a whole epoch, with
    # nothing saved); LambdaCallback refuses such a function when it is made.
    t = quiet_trainer(tmp_path, max_epochs=1, callbacks=[callback])
    with pytest.raises(TypeError, match=rf"{named}\(.*\) cannot take the hook's arguments.*'{missing}'"):
        t.fit(TinyClassifier(), make_batches(16))
    assert t.global_step == 0


# Lightning's hooks the Trainer cannot call, written out (not read from hooks.UNSUPPORTED) so that an entry
# dropped from the table fails here.
_NEVER_CALLED = [
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
    "backward",
    "optimizer_step",
    "optimizer_zero_grad",
    "configure_gradient_clipping",
    "lr_scheduler_step",
    "training_epoch_end",
    "validation_epoch_end",
    "test_epoch_end",
    "on_epoch_start",
    "on_epoch_end",
    "on_batch_start",
    "on_batch_end",
    "on_pretrain_routine_start",
    "on_pretrain_routine_end",
    "on_keyboard_interrupt",
]


@pytest.mark.parametrize("name", ["on_before_zero_grad", "optimizer_step"])
def test_a_refused_per_update_hook_names_where_once_per_update_work_goes(tmp_path, name):
    # A BYOL/DINO port updates its teacher (EMA) there, once per optimizer step; the hint said only
    # on_train_batch_end, which under accumulate_grad_batches=2 ran the EMA twice per update.
    module = type("Defines", (TinyClassifier,), {name: lambda self, *args: None})()
    t = quiet_trainer(tmp_path, max_epochs=1)
    with pytest.raises(TypeError, match=r"once per optimizer update.*outputs\['stepped'\]"):
        t.fit(module, make_batches(16))


def test_the_refusal_table_is_the_list_tested_here():
    assert sorted(UNSUPPORTED) == sorted(_NEVER_CALLED)


@pytest.mark.parametrize("name", _NEVER_CALLED)
@pytest.mark.parametrize("owner", ["module", "callback"])
def test_every_hook_the_trainer_cannot_call_is_refused_on_a_module_and_a_callback(tmp_path, name, owner):
    # Defined, each would otherwise run silently never (a module's on_* name near no TrainModule hook is
    # not even warned about).
    def hook(self, *args):
        return None

    module, callbacks = TinyClassifier(), []
    if owner == "module":
        module = type("Defines", (TinyClassifier,), {name: hook})()
    else:
        callbacks = [type("Defines", (Callback,), {name: hook})()]
    t = quiet_trainer(tmp_path, max_epochs=1, callbacks=callbacks)
    with pytest.raises(TypeError, match=rf"Defines\.{name} would never be called: "):
        t.fit(module, make_batches(16))
    assert t.global_step == 0


def test_a_misspelled_hook_is_warned_about(tmp_path):
    class Typo(Callback):
        def on_train_epoch_ends(self, trainer, module): ...

    class ModuleTypo(TinyClassifier):
        def on_validation_epoch_ned(self): ...

        def on_trian_epoch_end(self): ...  # two letters swapped: still close enough to be a misspelling

        def on_helper_of_its_own(self): ...  # a module's own on_* method is no mistake

    class NearNoHook(Callback):  # a callback's every on_* method is meant as a hook, close to one or not
        def on_new_best(self, trainer, module): ...

    t = quiet_trainer(tmp_path, max_epochs=1, callbacks=[Typo(), NearNoHook()])
    with pytest.warns(UserWarning) as warned:
        t.fit(ModuleTypo(), make_batches(16))
    messages = [str(w.message) for w in warned]
    assert any(
        "Typo.on_train_epoch_ends is not a Callback hook" in m and "on_train_epoch_end?" in m
        for m in messages
    )
    assert any("NearNoHook.on_new_best is not a Callback hook" in m for m in messages)
    assert any("ModuleTypo.on_validation_epoch_ned is not a TrainModule hook" in m for m in messages)
    assert any(
        "ModuleTypo.on_trian_epoch_end is not a TrainModule hook" in m and "on_train_epoch_end?" in m
        for m in messages
    )
    assert not any("on_helper_of_its_own" in m for m in messages)


def test_a_callbacks_on_attribute_that_is_no_method_is_not_warned_about(tmp_path, recwarn):
    class Flagged(Callback):
        on_gpu = False  # a setting, not a misspelled hook

    quiet_trainer(tmp_path, max_epochs=1, callbacks=[Flagged()]).fit(TinyClassifier(), make_batches(16))
    assert not [w for w in recwarn if "on_gpu" in str(w.message)]


class TransformsBatches(TinyClassifier):
    """Lightning's batch hooks, recorded in `seen`, with a transform the step must see (x zeroed)."""

    def __init__(self, seen: list):
        super().__init__()
        self.record = seen.append  # (a list attribute would be taken for part of the model's tree)

    def on_before_batch_transfer(self, batch, dataloader_idx):
        self.record("before")
        return batch

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        self.record(("transfer", device == mx.default_device(), dataloader_idx))
        return batch

    def on_after_batch_transfer(self, batch, dataloader_idx):
        self.record("after")
        x, y = batch
        return x * 0, y

    def _batch_start(self, batch):
        self.record(("start", float(mx.abs(batch[0]).sum())))

    def on_train_batch_start(self, batch, batch_idx):
        self._batch_start(batch)

    def on_validation_batch_start(self, batch, batch_idx):
        self._batch_start(batch)

    def on_test_batch_start(self, batch, batch_idx):
        self._batch_start(batch)

    def on_predict_batch_start(self, batch, batch_idx, dataloader_idx=0):
        self._batch_start(batch)


def test_batch_transfer_hooks_run_in_lightnings_order_for_every_batch_of_every_stage(tmp_path):
    per_batch = ["before", ("transfer", True, 0), "after", ("start", 0.0)]
    seen = []
    module = TransformsBatches(seen)
    t = quiet_trainer(tmp_path, max_epochs=1)
    t.fit(module, make_batches(32), make_batches(16))  # 2 training batches, 1 validation batch
    assert seen == per_batch * 3
    for stage in (t.validate, t.test, t.predict):
        seen.clear()
        stage(module, make_batches(16))
        assert seen == per_batch, stage.__name__


def test_a_datamodules_batch_hook_replaces_the_modules(tmp_path):
    class Batches(DataModule):
        def train_dataloader(self):
            return make_batches(16)

        def on_after_batch_transfer(self, batch, dataloader_idx):
            seen.append("datamodule after")
            return batch

    seen = []
    # Lightning 2.6.6 warns of each: "You have overridden `on_after_batch_transfer` in both `LightningModule`
    # and `LightningDataModule`. It will use the implementation from `LightningDataModule` instance."
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_trainer(tmp_path, max_epochs=1).fit(TransformsBatches(seen), datamodule=Batches())
    said = [str(w.message) for w in caught if "You have overridden" in str(w.message)]
    assert said == [
        "You have overridden `on_before_batch_transfer` in the TrainModule (TransformsBatches) but have passed "
        "in a DataModule (Batches) that does not. The TrainModule's runs (as in Lightning)",
        "You have overridden `transfer_batch_to_device` in the TrainModule (TransformsBatches) but have passed "
        "in a DataModule (Batches) that does not. The TrainModule's runs (as in Lightning)",
        "You have overridden `on_after_batch_transfer` in both the TrainModule (TransformsBatches) and the "
        "DataModule (Batches). The DataModule's runs, the TrainModule's is not called (as in Lightning)",
    ]
    assert all(w.filename == __file__ for w in caught if "You have overridden" in str(w.message))
    assert "after" not in seen and "datamodule after" in seen
    assert ("start", 0.0) not in seen  # the module's zeroing transform did not run


def test_a_datamodule_without_batch_hooks_leaves_the_modules_running(tmp_path):
    class OnlyLoaders(DataModule):  # DataModule's own batch hooks pass the batch on: not the user's
        def train_dataloader(self):
            return make_batches(16)

    seen = []
    # Lightning 2.6.6: "You have overridden `on_before_batch_transfer` in `LightningModule` but have passed in a
    # `LightningDataModule`. It will use the implementation from `LightningModule` instance.", for each hook.
    with pytest.warns(
        UserWarning, match="overridden `on_before_batch_transfer` in the TrainModule"
    ) as caught:
        quiet_trainer(tmp_path, max_epochs=1).fit(TransformsBatches(seen), datamodule=OnlyLoaders())
    assert sum("You have overridden" in str(w.message) for w in caught) == 3
    assert seen == ["before", ("transfer", True, 0), "after", ("start", 0.0)]


def test_a_batch_hook_that_returns_nothing_is_named(tmp_path):
    class ForgetsToReturn(TinyClassifier):
        def on_before_batch_transfer(self, batch, dataloader_idx):
            batch[0] * 2  # noqa: B018  (the return forgotten)

    t = quiet_trainer(tmp_path, max_epochs=1)
    with pytest.raises(TypeError, match="ForgetsToReturn.on_before_batch_transfer returned None"):
        t.fit(ForgetsToReturn(), make_batches(16))


def test_configure_callbacks_merges_the_modules_callbacks_replacing_one_of_the_same_type(tmp_path, capsys):
    """The replaced ones are said on stderr, as Lightning 2.6.6's info line says them: "The following callbacks
    returned in `LightningModule.configure_callbacks` will override existing callbacks passed to Trainer:
    EarlyStopping"."""
    epochs_ended = []

    class CountsEpochs(Callback):
        def on_train_epoch_end(self, trainer, module):
            epochs_ended.append(trainer.current_epoch)

    class BringsCallbacks(TinyClassifier):
        def configure_callbacks(self):
            # No improvement is ever 10 better: stops after the second epoch.
            return [CountsEpochs(), EarlyStopping(monitor="val_loss", patience=0, min_delta=10.0)]

    patient = EarlyStopping(monitor="val_loss", patience=100)
    t = quiet_trainer(tmp_path, max_epochs=5, callbacks=[patient])
    t.fit(BringsCallbacks(), make_batches(16), make_batches(16))
    assert patient not in t.callbacks and t.early_stopping_callback.min_delta == 10.0
    assert epochs_ended == [0, 1] and t.current_epoch == 2
    err = capsys.readouterr().err
    assert (
        "The following callbacks returned in `TrainModule.configure_callbacks` will override existing "
        "callbacks passed to Trainer: EarlyStopping\n"
    ) in err


@pytest.mark.parametrize("stage", ["fit", "validate"])
def test_configure_callbacks_runs_before_prepare_data_as_in_lightning(tmp_path, stage):
    """Lightning 2.6.6's `_run` attaches the module's callbacks before `prepare_data` (measured, fit with a
    DataModule: configure_callbacks, dm.prepare_data, module.prepare_data, dm.setup, the callback's setup,
    module.setup); here both prepare_data ran first. The module's `self.trainer` is there already."""
    calls = []

    class Brings(Callback):
        def setup(self, trainer, module, stage):
            calls.append("callback.setup")

    class Prepares(TinyClassifier):
        def prepare_data(self):
            calls.append("module.prepare_data")

        def configure_callbacks(self):
            calls.append(f"configure_callbacks (trainer: {self.trainer is not None})")
            return [Brings()]

        def setup(self, stage):
            calls.append("module.setup")

    class Data(DataModule):
        def prepare_data(self):
            calls.append("datamodule.prepare_data")

        def setup(self, stage):
            calls.append("datamodule.setup")

        def train_dataloader(self):
            return make_batches(16)

        def val_dataloader(self):
            return make_batches(16)

    t = quiet_trainer(tmp_path, max_epochs=1)
    getattr(t, stage)(Prepares(), datamodule=Data())
    assert calls == [
        "configure_callbacks (trainer: True)",
        "datamodule.prepare_data",
        "module.prepare_data",
        "datamodule.setup",
        "callback.setup",
        "module.setup",
    ]


def test_the_modules_callbacks_run_before_checkpointing(tmp_path):
    """Checkpointing stays last after configure_callbacks: a checkpoint taken at an epoch end holds the
    module's callbacks' state for that epoch (a module's EarlyStopping's wait count)."""

    class BringsEarlyStopping(TinyClassifier):
        def configure_callbacks(self):
            return EarlyStopping(monitor="val_loss", patience=100)

    t = quiet_trainer(tmp_path, max_epochs=1, enable_checkpointing=True)
    t.fit(BringsEarlyStopping(), make_batches(16), make_batches(16))
    kinds = [type(cb).__name__ for cb in t.callbacks]
    assert "EarlyStopping" in kinds and kinds[-1] == "ModelCheckpoint"


def test_configure_model_runs_once_after_setup_before_configure_optimizers(tmp_path):
    calls = []

    class BuildsLate(TinyClassifier):
        def setup(self, stage):
            calls.append("setup")

        def configure_model(self):
            calls.append("configure_model")

        def configure_optimizers(self):
            calls.append("configure_optimizers")
            return super().configure_optimizers()

    quiet_trainer(tmp_path, max_epochs=2).fit(BuildsLate(), make_batches(16))
    assert calls == ["setup", "configure_model", "configure_optimizers"]


def test_lr_scheduler_step_is_refused_with_what_to_do_instead(tmp_path):
    class StepsItsScheduler(TinyClassifier):
        def lr_scheduler_step(self, scheduler, metric): ...

    t = quiet_trainer(tmp_path, max_epochs=1)
    with pytest.raises(
        TypeError, match=r"StepsItsScheduler.lr_scheduler_step would never be called.*'interval'"
    ):
        t.fit(StepsItsScheduler(), make_batches(16))


def test_a_lightning_hook_the_trainer_never_calls_is_warned_about(tmp_path):
    class SwitchesModes(TinyClassifier):
        def on_validation_model_eval(self): ...

    with pytest.warns(UserWarning, match="SwitchesModes.on_validation_model_eval is a Lightning hook the"):
        quiet_trainer(tmp_path, max_epochs=1).fit(SwitchesModes(), make_batches(16))

    class Shards(TinyClassifier):  # a Lightning-only hook not named on_*
        def configure_sharded_model(self): ...

    with pytest.warns(UserWarning, match="Shards.configure_sharded_model is a Lightning hook the"):
        quiet_trainer(tmp_path, max_epochs=1).fit(Shards(), make_batches(16))


@pytest.mark.parametrize("val_check_interval", [1.0, 2])
def test_on_train_batch_start_returning_minus_one_skips_the_rest_of_the_epoch(tmp_path, val_check_interval):
    # Lightning validates after a trained batch (its epoch loop's on_advance_end, which the -1's StopIteration
    # skips): the epoch's own validation at its end does not run, one due inside it before the -1 does.
    started, validated_after = [], []

    class StopsEpochsEarly(TinyClassifier):
        def on_train_batch_start(self, batch, batch_idx):
            started.append(batch_idx)
            if batch_idx >= 2:
                return -1

        def on_validation_start(self):
            if not self.trainer.sanity_checking:
                validated_after.append(self.trainer.global_step)

    t = quiet_trainer(tmp_path, max_epochs=2, val_check_interval=val_check_interval)
    t.fit(StopsEpochsEarly(), make_batches(96), make_batches(16))  # 6 batches an epoch
    assert started == [0, 1, 2, 0, 1, 2]
    assert t.global_step == 4 and t.current_epoch == 2 and len(t.history["train_loss"]) == 2
    assert validated_after == ([] if val_check_interval == 1.0 else [2, 4])


def test_an_epoch_ended_by_minus_one_inside_an_accumulation_window_still_applies_the_window(tmp_path):
    # Windows of 2: batches 0 and 1 make step 1, batch 2 opens a window and -1 at batch 3 ends the epoch.
    # The half window is applied there, as a loader that ends after batch 2 would apply it.
    class EndsEpochsAtBatch3(TinyClassifier):
        def on_train_batch_start(self, batch, batch_idx):
            return -1 if batch_idx == 3 else None

    def fit(module, batches):
        t = quiet_trainer(tmp_path, max_epochs=1, accumulate_grad_batches=2)
        t.fit(module, batches)
        return t

    mx.random.seed(0)
    ended_by_hook = EndsEpochsAtBatch3()
    t = fit(ended_by_hook, make_batches(96))
    assert t.global_step == 2 and t.progress.micro_batches == 0
    mx.random.seed(0)
    ended_by_loader = TinyClassifier()
    fit(ended_by_loader, make_batches(96)[:3])
    for name, value in weights(ended_by_loader).items():
        assert_same_numbers(weights(ended_by_hook)[name], value, err_msg=name)


def test_a_datamodule_has_the_trainer_and_is_set_up_before_the_module_and_its_loaders(tmp_path):
    order = []

    class Batches(DataModule):
        def prepare_data(self):
            order.append("datamodule.prepare_data")

        def setup(self, stage):
            order.append(f"datamodule.setup({stage})")
            self.n = 16 * self.trainer.world_size  # a Lightning habit: sizes from the trainer

        def train_dataloader(self):
            order.append("train_dataloader")
            return make_batches(self.n)

    class SetsUp(TinyClassifier):
        def prepare_data(self):  # Lightning calls the module's too (a download, files written once)
            order.append("module.prepare_data")

        def setup(self, stage):
            order.append(f"module.setup({stage})")

    class CallbackSetsUp(Callback):
        def setup(self, trainer, module, stage):
            order.append(f"callback.setup({stage})")

    t = quiet_trainer(tmp_path, max_epochs=1, callbacks=[CallbackSetsUp()])
    datamodule = Batches()
    t.fit(SetsUp(), datamodule=datamodule)
    assert datamodule.trainer is t and t.global_step == 1
    assert order == [  # Lightning's order: the datamodule's setup before the callbacks' and the module's
        "datamodule.prepare_data",
        "module.prepare_data",
        "datamodule.setup(fit)",
        "callback.setup(fit)",
        "module.setup(fit)",
        "train_dataloader",
    ]


@pytest.mark.parametrize("stage", ["fit", "validate", "test", "predict"])
def test_a_modules_prepare_data_calls_its_base_and_reads_its_trainer_as_in_lightning(tmp_path, stage):
    """A module's `prepare_data` that called `super().prepare_data()` stopped with "'super' object has no
    attribute 'prepare_data'", and one reading `self.trainer` raised "only available once the module is
    attached". Lightning 2.6.6: LightningModule.prepare_data exists, and the Trainer is attached before it
    (`self.trainer.world_size` reads 1)."""
    seen = []

    class Downloads(TinyClassifier):
        def prepare_data(self):
            super().prepare_data()
            seen.append(self.trainer.world_size)

    t = quiet_trainer(tmp_path, max_epochs=1)
    getattr(t, stage)(Downloads(), make_batches(16))
    assert seen == [1]


@pytest.mark.parametrize("sanity_steps", [2, 0])
def test_val_dataloader_is_asked_for_after_on_fit_start_as_lightning_asks(tmp_path, sanity_steps):
    """Lightning 2.6.6 asks for val_dataloader() after on_fit_start: at the sanity check
    (num_sanity_val_steps=2: "... on_fit_start Callback.on_sanity_check_start val_dataloader ...") or, with
    none, before on_train_start ("... on_fit_start train_dataloader val_dataloader on_train_start").
    Here it was asked with train_dataloader() before configure_optimizers, so a validation set built in
    on_fit_start (a split a callback or the module makes there) did not exist yet: an AttributeError."""
    order = []

    class SplitsAtFitStart(TinyClassifier):
        def train_dataloader(self):
            order.append("train_dataloader")
            return make_batches(32)

        def on_fit_start(self):
            order.append("on_fit_start")
            self._held_out = make_batches(16, seed=1)  # (a list attribute would be a weight)

        def val_dataloader(self):
            order.append("val_dataloader")
            return self._held_out

        def on_train_start(self):
            order.append("on_train_start")

    class SeesLoaders(Callback):
        def on_fit_start(self, trainer, module):
            # (Lightning's val_dataloaders is None here, its enable_validation True)
            order.append(("val_dataloaders", trainer.val_dataloaders, trainer.enable_validation))

    t = quiet_trainer(tmp_path, max_epochs=1, num_sanity_val_steps=sanity_steps, callbacks=[SeesLoaders()])
    t.fit(SplitsAtFitStart())
    assert order == [
        "train_dataloader",
        ("val_dataloaders", None, True),
        "on_fit_start",
        "val_dataloader",
        "on_train_start",
    ]
    assert t.val_dataloaders is not None and len(t.history["val_loss"]) == 1


class BuildsItsVocabularyInTheFirstEpoch(DataModule):
    """A user pattern: the validation set needs what the first training epoch builds (a vocabulary)."""

    def __init__(self, order):
        self.order = order

    def train_dataloader(self):
        return make_batches(32)

    def val_dataloader(self):
        self.order.append(("val_dataloader", self.trainer.current_epoch))
        return [batch for batch in make_batches(16, seed=1) if self.vocabulary]


class RecordsTheFit(Callback):
    def __init__(self, order):
        self.order = order

    def on_fit_start(self, trainer, module):
        self.order.append("on_fit_start")

    def on_train_start(self, trainer, module):
        self.order.append("on_train_start")

    def on_train_epoch_start(self, trainer, module):
        trainer.datamodule.vocabulary = ["a", "b"]
        self.order.append(("on_train_epoch_start", trainer.current_epoch))

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.order.append(("on_train_batch_end", trainer.current_epoch, batch_idx))

    def on_validation_start(self, trainer, module):
        self.order.append(("on_validation_start", trainer.current_epoch))


def test_val_dataloader_is_asked_for_at_the_first_validation_where_the_first_epoch_does_not_validate(
    tmp_path,
):
    """Lightning 2.6.6 with num_sanity_val_steps=0 asks for val_dataloader() before on_train_start only where
    the epoch the fit starts in validates; with check_val_every_n_epoch=2 at the first validation, after the
    last batch's on_train_batch_end (measured: "... on_train_batch_end(e1,b1) val_dataloader
    on_validation_start"), and never where no validation comes (max_epochs=1). Here it was asked right after
    on_fit_start: a DataModule whose validation set needs what on_train_epoch_start builds failed."""
    order = []
    t = quiet_trainer(
        tmp_path,
        max_epochs=2,
        check_val_every_n_epoch=2,
        callbacks=[RecordsTheFit(order)],
        logger=False,
        enable_model_summary=False,
    )
    t.fit(TinyClassifier(), datamodule=BuildsItsVocabularyInTheFirstEpoch(order))
    assert order[:2] == ["on_fit_start", "on_train_start"]
    assert order[-5:] == [
        ("on_train_epoch_start", 1),
        ("on_train_batch_end", 1, 0),
        ("on_train_batch_end", 1, 1),
        ("val_dataloader", 1),
        ("on_validation_start", 1),
    ]
    assert t.history["val_loss"][0] is None and t.history["val_loss"][1] is not None
    assert t.num_val_batches == 1

    order.clear()
    quiet_trainer(
        tmp_path / "one",
        max_epochs=1,
        check_val_every_n_epoch=2,
        callbacks=[RecordsTheFit(order)],
        logger=False,
        enable_model_summary=False,
    ).fit(TinyClassifier(), datamodule=BuildsItsVocabularyInTheFirstEpoch(order))
    assert not any(step[0] == "val_dataloader" for step in order)


@pytest.mark.filterwarnings("ignore:The checkpoint resumed holds the state of callbacks")
def test_a_fit_resumed_in_an_epoch_that_validates_asks_for_val_dataloader_before_on_train_start(tmp_path):
    """Resumed at epoch 1 of check_val_every_n_epoch=2, Lightning 2.6.6 asks as its fit loop starts
    (measured: "on_fit_start train_dataloader val_dataloader on_train_start on_train_epoch_start(e1)")."""
    first = quiet_trainer(
        tmp_path,
        max_epochs=1,
        check_val_every_n_epoch=2,
        logger=False,
        enable_checkpointing=True,
        callbacks=[ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)],
    )
    module = BuildsItsVocabularyInTheFirstEpoch([])
    module.vocabulary = ["a"]
    first.fit(TinyClassifier(), datamodule=module)
    order = []
    module = BuildsItsVocabularyInTheFirstEpoch(order)
    module.vocabulary = ["a"]
    resumed = quiet_trainer(
        tmp_path, max_epochs=2, check_val_every_n_epoch=2, logger=False, callbacks=[RecordsTheFit(order)]
    )
    resumed.fit(TinyClassifier(), datamodule=module, ckpt_path=str(tmp_path / "ckpt" / "last"))
    assert order[:4] == ["on_fit_start", ("val_dataloader", 1), "on_train_start", ("on_train_epoch_start", 1)]
    assert resumed.history["val_loss"][-1] is not None


def test_val_dataloader_is_asked_for_in_the_sanity_check_after_its_start_hook_as_in_lightning(tmp_path):
    """Lightning 2.6.6 asks for val_dataloader() inside the sanity check: after the callbacks'
    on_sanity_check_start, with `trainer.sanity_checking` True (measured: "Callback.on_sanity_check_start,
    val_dataloader, (sanity validation)"). Here it was asked before on_sanity_check_start, not sanity checking:
    a loader built from what that hook set (a callback's held-out split) did not exist yet."""
    order = []

    class Module(TinyClassifier):
        def train_dataloader(self):
            return make_batches(32)

        def val_dataloader(self):
            order.append(("val_dataloader", self.trainer.sanity_checking))
            return self._held_out

        def on_validation_batch_start(self, batch, batch_idx, dataloader_idx=0):
            order.append(("validation batch", self.trainer.sanity_checking, self.trainer.num_val_batches))

    class Splits(Callback):
        def on_sanity_check_start(self, trainer, module):
            order.append("on_sanity_check_start")
            module._held_out = make_batches(16, seed=1)

        def on_sanity_check_end(self, trainer, module):
            order.append("on_sanity_check_end")

        def on_train_start(self, trainer, module):
            order.append("on_train_start")

    t = quiet_trainer(
        tmp_path, max_epochs=1, num_sanity_val_steps=1, limit_val_batches=1, callbacks=[Splits()]
    )
    t.fit(Module())
    assert order == [
        "on_sanity_check_start",
        ("val_dataloader", True),
        ("validation batch", True, 1),
        "on_sanity_check_end",
        "on_train_start",
        ("validation batch", False, 1),
    ]


def test_a_fit_whose_train_dataloader_raised_leaves_no_val_dataloader_to_the_next_fit(tmp_path):
    """The val_dataloader() a fit asks for after on_fit_start is not the next fit's where this one failed
    before it (its train_dataloader() raised): the next fit, given no validation, validates on nothing."""

    class TrainLoaderFails(TinyClassifier):
        def train_dataloader(self):
            raise RuntimeError("no training data")

        def val_dataloader(self):
            return make_batches(16)

    t = quiet_trainer(tmp_path, max_epochs=1)
    with pytest.raises(RuntimeError, match="no training data"):
        t.fit(TrainLoaderFails())
    t.fit(TinyClassifier(), make_batches(32))
    assert t.val_dataloaders is None and "val_loss" not in t.history


class HasItsOwnLoaders(TinyClassifier):
    """Lightning's small-project habit: the module builds its data in setup and gives its loaders."""

    def setup(self, stage):
        self.n_batches = 2

    def train_dataloader(self):
        return make_batches(16 * self.n_batches)

    def val_dataloader(self):
        return make_batches(16, seed=1)

    def test_dataloader(self):
        return make_batches(16, seed=2)


def test_a_modules_own_loaders_are_used_where_fit_validate_and_test_get_none(tmp_path):
    t = quiet_trainer(tmp_path, max_epochs=1)
    module = HasItsOwnLoaders()
    t.fit(module)
    assert t.global_step == 2 and len(t.history["val_loss"]) == 1
    assert "val_loss" in t.validate(module)[0] and "test_loss" in t.test(module)[0]
    with pytest.raises(
        TypeError, match=r"Trainer.predict: pass the batches .*, or define predict_dataloader on"
    ):
        t.predict(module)


def test_a_loader_not_passed_comes_from_the_modules_own_method_as_in_lightning(tmp_path):
    module = HasItsOwnLoaders()
    t = quiet_trainer(tmp_path / "val", max_epochs=1)
    t.fit(module, make_batches(48))  # the train loader passed: validation from the module's val_dataloader
    assert t.global_step == 3 and len(t.history["val_loss"]) == 1
    t = quiet_trainer(tmp_path / "train", max_epochs=1)
    t.fit(module, val_loader=make_batches(16, seed=3))  # and the other way round
    assert t.global_step == 2 and len(t.history["val_loss"]) == 1


def test_fit_without_loaders_says_where_they_can_come_from(tmp_path):
    with pytest.raises(
        TypeError, match=r"pass the training batches .*, or define train_dataloader on the module"
    ):
        quiet_trainer(tmp_path, max_epochs=1).fit(TinyClassifier())


def test_a_gradient_clipper_from_configure_callbacks_is_refused_with_where_it_goes(tmp_path):
    from audiotrain.train.callbacks import GradientClipper

    class ClipsItself(TinyClassifier):
        def configure_callbacks(self):
            return GradientClipper(max_norm=1.0)

    t = quiet_trainer(tmp_path, max_epochs=1)
    with pytest.raises(
        TypeError, match=r"ClipsItself.configure_callbacks\(\): a GradientClipper .*gradient_clip_val"
    ):
        t.fit(ClipsItself(), make_batches(16))


class RecordsEpochEndMetrics(TinyClassifier):
    def __init__(self):
        super().__init__()
        self.seen: list[list[str]] = []

    def on_train_epoch_end(self, epoch, metrics):  # seed 000's signature
        self.seen.append(sorted(metrics))


@pytest.mark.parametrize("val_check_interval", [1.0, 3, 6])
def test_on_train_epoch_end_gets_the_validation_that_ended_the_epoch_whatever_its_interval(
    tmp_path, val_check_interval
):
    # 6 batches an epoch: 1.0, every 3 steps and every 6 steps all validate after the epoch's last batch, so
    # `metrics` holds val_loss in each (an int interval had given the training means alone).
    module = RecordsEpochEndMetrics()
    trainer = quiet_trainer(tmp_path, max_epochs=2, val_check_interval=val_check_interval)
    trainer.fit(module, make_batches(96), make_batches(32, seed=1))
    assert module.seen == [["train_accuracy", "train_loss", "val_accuracy", "val_loss"]] * 2


class FailsInTraining(TinyClassifier):
    def on_train_batch_end(self, outputs, batch, batch_idx):
        raise RuntimeError("failed in a hook")


class FailsInTesting(TinyClassifier):
    def on_test_batch_end(self, outputs, batch, batch_idx):
        raise RuntimeError("failed in a hook")


@pytest.mark.parametrize("stage", ["fit", "test"])
def test_a_datamodules_on_exception_hears_of_the_error_after_the_callbacks_as_in_lightning(tmp_path, stage):
    """Lightning calls the callbacks' `on_exception`, then the DataModule's (its call._interrupt); the
    DataModule's was never called here (a data source it opened was left open)."""
    heard = []

    class Data(DataModule):
        def train_dataloader(self):
            return make_batches(32)

        def test_dataloader(self):
            return make_batches(32)

        def on_exception(self, exception):
            heard.append(("datamodule", str(exception)))

    class Hears(Callback):
        def on_exception(self, trainer, pl_module, exception):
            heard.append(("callback", str(exception)))

    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[Hears()])
    with pytest.raises(RuntimeError, match="failed in a hook"):
        if stage == "fit":
            trainer.fit(FailsInTraining(), datamodule=Data())
        else:
            trainer.test(FailsInTesting(), datamodule=Data())
    assert heard == [("callback", "failed in a hook"), ("datamodule", "failed in a hook")]


class FailsInSetup(TinyClassifier):
    def setup(self, stage):
        raise ValueError("failed in setup")


@pytest.mark.parametrize("where", ["module setup", "datamodule setup", "train_dataloader"])
def test_an_error_in_fit_before_training_still_reaches_on_exception_as_in_lightning(tmp_path, where):
    """Lightning 2.6.6 calls `on_exception` for any error inside `fit`, its setup hooks' and its loaders'
    too (recorded there: `['setup:fit', 'on_exception:ValueError']`, `trainer.state.status` "interrupted").
    Here a `setup` or `train_dataloader` that raised went out of `fit` with no `on_exception` at all: a
    callback that reports failed runs there never heard of it."""
    heard = []

    class Data(DataModule):
        def setup(self, stage=None):
            if where == "datamodule setup":
                raise ValueError("failed in setup")

        def train_dataloader(self):
            if where == "train_dataloader":
                raise ValueError("failed in train_dataloader")
            return make_batches(32)

    class Hears(Callback):
        def setup(self, trainer, pl_module, stage):
            heard.append(f"setup:{stage}")

        def on_exception(self, trainer, pl_module, exception):
            heard.append(f"on_exception:{type(exception).__name__}")

    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[Hears()])
    module = FailsInSetup() if where == "module setup" else TinyClassifier()
    with pytest.raises(ValueError, match="failed in"):
        trainer.fit(module, datamodule=Data())
    assert heard[-1] == "on_exception:ValueError"
    assert heard.count("on_exception:ValueError") == 1
    assert trainer.state.status == "failed"


@pytest.mark.parametrize("method", ["fit", "validate"])
def test_a_ctrl_c_in_a_setup_hook_reads_as_interrupted_not_failed(tmp_path, method):
    """A Ctrl-C while a long `setup` prepares the data (no stop handler is in place yet: a plain
    KeyboardInterrupt) was heard in on_exception as a crash, status "failed"; a stop by hand later in fit
    reads "interrupted" there (test_trainer_state.py), as Lightning's does."""
    heard = []

    class StoppedInSetup(TinyClassifier):
        def setup(self, stage):
            raise KeyboardInterrupt

    class Hears(Callback):
        def on_exception(self, trainer, pl_module, exception):
            heard.append((type(exception).__name__, trainer.state.status))

    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[Hears()])
    with pytest.raises(KeyboardInterrupt):
        getattr(trainer, method)(StoppedInSetup(), make_batches(16))
    assert heard == [("KeyboardInterrupt", "interrupted")]
    assert trainer.state.status == "interrupted"


@pytest.mark.parametrize("method", ["validate", "test", "predict"])
def test_an_error_in_an_evaluation_stages_setup_reaches_on_exception_as_in_lightning(tmp_path, method):
    """As `fit` (above): Lightning 2.6.6 calls `on_exception` for an error in a stage's `setup` hook;
    `validate`, `test` and `predict` raised it with no `on_exception` call."""
    heard = []

    class Hears(Callback):
        def on_exception(self, trainer, pl_module, exception):
            heard.append((type(exception).__name__, trainer.state.status))

    trainer = quiet_trainer(tmp_path, max_epochs=1, callbacks=[Hears()])
    with pytest.raises(ValueError, match="failed in setup"):
        getattr(trainer, method)(FailsInSetup(), make_batches(16))
    assert heard == [("ValueError", "failed")]


def test_a_ctrl_c_saves_before_the_datamodule_closes_what_its_setup_opened(tmp_path):
    """Since the DataModule hears of a Ctrl-C through on_exception, it heard before the `interrupted` save,
    which asks for its state_dict: one closing its data source there (as Lightning's docs have it) failed the
    save ('fit raised ValueError: the source is closed', nothing saved), where the save worked before.
    Lightning's OnExceptionCheckpoint saves in the callbacks' on_exception, before the DataModule's."""
    heard = []

    class Data(DataModule):
        def setup(self, stage=None):
            self.source_open = True

        def train_dataloader(self):
            return make_batches(64)

        def state_dict(self):
            heard.append("state_dict")
            if not self.source_open:
                raise ValueError("the source is closed")
            return {"position": 2}

        def on_exception(self, exception):
            heard.append(("datamodule", type(exception).__name__))
            self.source_open = False

    class StopAtTheSecondStep(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if batch_idx == 1:
                raise KeyboardInterrupt

        def on_exception(self, trainer, module, exception):
            heard.append(("callback", type(exception).__name__))

    trainer = quiet_trainer(
        tmp_path, max_epochs=2, callbacks=[StopAtTheSecondStep()], enable_checkpointing=True
    )
    trainer.fit(TinyClassifier(), datamodule=Data())
    assert trainer.interrupted and trainer.interrupted_checkpoint is not None
    assert (trainer.interrupted_checkpoint / "model.safetensors").is_file()
    assert heard == [("callback", "KeyboardInterrupt"), "state_dict", ("datamodule", "KeyboardInterrupt")]


class ValidatesWithTheLoaderIndex(TinyClassifier):  # Lightning's signature for several loaders
    def validation_step(self, batch, batch_idx, dataloader_idx):
        return super().validation_step(batch, batch_idx)


class PredictsWithTheLoaderIndex(TinyClassifier):
    def predict_step(self, batch, batch_idx, dataloader_idx):
        return self(batch[0])


class EndsTestBatchesWithTheLoaderIndex(Callback):
    def on_test_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx): ...


@pytest.mark.parametrize(
    "stage, module, callbacks, named",
    [
        ("fit", ValidatesWithTheLoaderIndex(), [], "ValidatesWithTheLoaderIndex.validation_step"),
        ("validate", ValidatesWithTheLoaderIndex(), [], "ValidatesWithTheLoaderIndex.validation_step"),
        ("predict", PredictsWithTheLoaderIndex(), [], "PredictsWithTheLoaderIndex.predict_step"),
        ("test", TinyClassifier(), [EndsTestBatchesWithTheLoaderIndex()], "EndsTestBatchesWith"),
    ],
)
def test_a_required_dataloader_idx_is_refused_saying_to_give_it_a_default(
    tmp_path, stage, module, callbacks, named
):
    # Lightning passes dataloader_idx only with several loaders and refuses a step or batch hook that requires
    # it under one; here it was never passed, and the stage ended at its first batch ("missing 1 required
    # positional argument"), in fit after a whole training epoch.
    t = quiet_trainer(tmp_path, max_epochs=1, callbacks=callbacks)
    run = {"fit": lambda: t.fit(module, make_batches(16), make_batches(16))}.get(
        stage, lambda: getattr(t, stage)(module, make_batches(16))
    )
    with pytest.raises(TypeError, match=rf"{named}.*requires dataloader_idx.*dataloader_idx=0"):
        run()
    assert t.global_step == 0


def test_a_fit_that_never_validates_takes_a_validation_step_that_requires_dataloader_idx(tmp_path):
    # Never called without validation batches, so not refused (as in Lightning, whose check is the loop's).
    t = quiet_trainer(tmp_path, max_epochs=1)
    t.fit(ValidatesWithTheLoaderIndex(), make_batches(16))
    assert t.global_step == 1


@pytest.mark.parametrize("compile", [True, False])
def test_a_per_epoch_schedule_follows_epochs_that_minus_one_ended_early(tmp_path, compile):
    # The schedule's epoch was the optimizer step divided by the loader's updates an epoch (6): epochs that
    # -1 ended after 2 updates kept epoch 0's rate for three epochs, where Lightning steps it at each end.
    from audiotrain.train import StepLRScheduler
    from audiotrain.train.callbacks import LearningRateMonitor

    import mlx.optimizers as optim
    from tasks import RecordingLogger

    rates = []

    class EndsEpochsAtBatch2(TinyClassifier):
        def on_train_batch_start(self, batch, batch_idx):
            return -1 if batch_idx == 2 else None

        def on_train_batch_end(self, outputs, batch, batch_idx):
            rates.append(round(self.optimizers().learning_rate.item(), 6))  # the rate of this update

        def configure_optimizers(self):
            halving = StepLRScheduler(0.1, step_size=1, gamma=0.5)
            return {"optimizer": optim.SGD(learning_rate=0.1), "lr_scheduler": {"scheduler": halving}}

    logger = RecordingLogger()
    monitor = LearningRateMonitor(logging_interval="epoch")  # (logs the coming rate at each epoch start)
    t = quiet_trainer(tmp_path, max_epochs=3, compile=compile, logger=logger, callbacks=[monitor])
    t.fit(EndsEpochsAtBatch2(), make_batches(96))  # 6 batches an epoch, 2 trained
    assert rates == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    assert [round(v, 6) for _, m in logger.metrics for k, v in m.items() if k.startswith("lr")] == [
        0.1,
        0.05,
        0.025,
    ]


@pytest.mark.parametrize("stage", ["fit", "validate", "test", "predict"])
def test_a_datamodule_is_torn_down_before_the_callbacks_and_the_module_as_in_lightning(tmp_path, stage):
    # Lightning's _call_teardown_hook: the datamodule's teardown, then the callbacks', then the module's
    # (the mirror of setup, whose datamodule goes first too).
    order = []

    class Batches(DataModule):
        def teardown(self, stage):
            order.append(f"datamodule.teardown({stage})")

        def train_dataloader(self):
            return make_batches(16)

        val_dataloader = test_dataloader = predict_dataloader = train_dataloader

    class TearsDown(TinyClassifier):
        def teardown(self, stage):
            order.append(f"module.teardown({stage})")

    class CallbackTearsDown(Callback):
        def teardown(self, trainer, module, stage):
            order.append(f"callback.teardown({stage})")

    t = quiet_trainer(tmp_path, max_epochs=1, callbacks=[CallbackTearsDown()])
    getattr(t, stage)(TearsDown(), datamodule=Batches())
    assert order == [
        f"datamodule.teardown({stage})",
        f"callback.teardown({stage})",
        f"module.teardown({stage})",
    ]


def test_a_ctrl_c_in_a_fit_from_a_datamodule_says_to_resume_with_the_datamodule(tmp_path, capsys):
    """The line after the `interrupted` save said 'Resume with trainer.fit(model, train_loader, val_loader,
    ckpt_path=...)' to a fit given its data as datamodule=, which has no loaders to pass."""

    class Data(DataModule):
        def train_dataloader(self):
            return make_batches(64)

    class StopAtTheSecondStep(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if batch_idx == 1:
                raise KeyboardInterrupt

    trainer = quiet_trainer(
        tmp_path, max_epochs=2, callbacks=[StopAtTheSecondStep()], enable_checkpointing=True
    )
    trainer.fit(TinyClassifier(), datamodule=Data())
    said = capsys.readouterr().err
    assert trainer.interrupted and "Resume with trainer.fit(model, datamodule=datamodule, ckpt_path=" in said
    trainer = quiet_trainer(
        tmp_path, max_epochs=2, callbacks=[StopAtTheSecondStep()], enable_checkpointing=True
    )
    trainer.fit(TinyClassifier(), make_batches(64))
    assert "Resume with trainer.fit(model, train_loader, val_loader, ckpt_path=" in capsys.readouterr().err


@pytest.mark.parametrize("saved", ["at the epoch's end", "mid-epoch"])
def test_a_resumed_fit_runs_the_sanity_check_where_lightning_does(tmp_path, saved):
    """Lightning 2.6.6's _run_sanity_check skips a fit resumed from a checkpoint saved mid-epoch ('it would
    mess up the loaded state'), and runs it for one saved at an epoch's end (its `last`, or one saved in
    on_train_epoch_end: on_sanity_check_start, then the validation hooks, at the restored step). Here every
    resumed fit skipped it: a mistake only validation reaches went unseen for a whole epoch of the resume."""
    heard = []

    class Data(DataModule):
        def train_dataloader(self):
            return make_batches(64)

        def val_dataloader(self):
            return make_batches(32, seed=1)

        def on_before_batch_transfer(self, batch, dataloader_idx):
            heard.append("sanity batch" if self.trainer.sanity_checking else "batch")
            return batch

    class Hears(Callback):
        def on_sanity_check_start(self, trainer, module):
            heard.append("on_sanity_check_start")

    sanity = {"num_sanity_val_steps": 2, "enable_checkpointing": True}
    mid_epoch = saved == "mid-epoch"
    steps = (
        [ModelCheckpoint(dirpath=tmp_path / "steps", every_n_train_steps=2, save_top_k=-1)]
        if mid_epoch
        else []
    )
    first = quiet_trainer(tmp_path, max_epochs=1, callbacks=[Hears(), *steps], **sanity)
    first.fit(TinyClassifier(), datamodule=Data())
    assert heard[:3] == ["on_sanity_check_start", "sanity batch", "sanity batch"]
    heard.clear()
    # (4 batches an epoch: the step-2 save is mid-epoch, `last` at epoch 0's end)
    path = tmp_path / "steps/epoch=0-step=2" if mid_epoch else first.checkpoint_callback.last_model_path
    resumed = quiet_trainer(tmp_path, max_epochs=2, callbacks=[Hears()], **sanity)
    resumed.fit(TinyClassifier(), datamodule=Data(), ckpt_path=path)
    check = ["on_sanity_check_start", "sanity batch", "sanity batch"]
    if not mid_epoch:
        assert resumed.global_step == 8 and heard == check + ["batch"] * 6
    else:  # (the rest of epoch 0, its validation, then epoch 1)
        assert resumed.global_step == 8 and heard == ["batch"] * 10


def test_a_datamodule_hook_that_cannot_take_its_arguments_is_refused_before_the_stage_runs(tmp_path):
    """A DataModule's `teardown(self)` (no stage) let the whole fit run, then ended it with a bare 'takes 1
    positional argument but 2 were given'; a batch hook without dataloader_idx failed at the first batch."""

    class TearsDownWithoutStage(DataModule):
        def train_dataloader(self):
            return make_batches(64)

        def teardown(self):
            pass

    class TransformsWithoutIndex(TearsDownWithoutStage):
        def teardown(self, stage):
            pass

        def on_before_batch_transfer(self, batch):
            return batch

    t = quiet_trainer(tmp_path, max_epochs=1)
    with pytest.raises(TypeError, match=r"teardown\(\) cannot take .* calls it as teardown\(stage\)") as err:
        t.fit(TinyClassifier(), datamodule=TearsDownWithoutStage())
    assert "def teardown(self, stage)" in str(err.value) and t.global_step == 0
    with pytest.raises(TypeError, match=r"def on_before_batch_transfer\(self, batch, dataloader_idx\)"):
        t.test(TinyClassifier(), datamodule=TransformsWithoutIndex())


class StepsPlanned(Callback):
    """What a callback sizing a per-step schedule in on_train_start reads, as in Lightning."""

    def on_train_start(self, trainer, module):
        self.planned = trainer.num_training_batches // trainer.accumulate_grad_batches


def test_on_train_start_sees_the_epochs_training_batches(tmp_path):
    # Lightning's fit loop sets num_training_batches (limit_train_batches applied) before on_train_start;
    # before, audiotrain's was still 0 there (set first at the first epoch), so this planned 0 steps.
    planned = StepsPlanned()
    trainer = quiet_trainer(
        tmp_path, max_epochs=1, limit_train_batches=5, accumulate_grad_batches=2, callbacks=[planned]
    )
    trainer.fit(TinyClassifier(), make_batches(56, batch_size=8))  # 7 batches, 5 of them trained
    assert planned.planned == 2


def test_on_validation_epoch_end_reads_the_sanity_checks_val_loss_in_callback_metrics(tmp_path):
    """Lightning's `callback_metrics` holds the loader's means when `on_validation_epoch_end` runs, in the
    sanity check too (its logger connector computes them there; they are reset after the check). A module
    reading `self.trainer.callback_metrics["val_loss"]` there passed `validate` and then died in `fit`'s
    sanity check with a bare KeyError."""
    seen = []

    class ReadsValLoss(TinyClassifier):
        def on_validation_epoch_end(self):
            seen.append(self.trainer.sanity_checking)
            self.log("val_twice", self.trainer.callback_metrics["val_loss"] * 2)

    t = quiet_trainer(tmp_path, max_epochs=1, num_sanity_val_steps=1)
    t.fit(ReadsValLoss(), make_batches(16), make_batches(16))
    assert seen == [True, False]
    assert t.callback_metrics["val_twice"] == pytest.approx(2 * t.callback_metrics["val_loss"])
    assert t.history["val_twice"] == [pytest.approx(2 * t.history["val_loss"][0])]


def test_callback_metrics_held_from_on_fit_start_stays_the_trainers_after_the_sanity_check(tmp_path):
    """A callback that keeps `trainer.callback_metrics` from on_fit_start (before the sanity check) and reads
    it later: the check put back what it found as a new dict, so the one held stayed empty for the fit."""

    class Holds(Callback):
        def on_fit_start(self, trainer, module):
            self.metrics = trainer.callback_metrics

        def on_train_end(self, trainer, module):
            self.val_loss = self.metrics.get("val_loss")

    holds = Holds()
    t = quiet_trainer(tmp_path, max_epochs=1, num_sanity_val_steps=1, callbacks=[holds])
    t.fit(TinyClassifier(), make_batches(16), make_batches(16))
    assert holds.metrics is t.callback_metrics
    assert holds.val_loss == t.callback_metrics["val_loss"]


def test_on_load_checkpoint_sees_the_trainer_before_its_counters_are_restored_module_and_callbacks_alike(
    tmp_path,
):
    """A resumed fit called the module's `on_load_checkpoint` with `trainer.current_epoch` and `global_step` 0
    and every callback's with the checkpoint's (1 and 4): the run's counters were restored between the two.
    Lightning restores them after both (`restore_training_state`, after `_restore_modules_and_callbacks`), so
    both see the fresh Trainer's; the checkpoint's own are in `checkpoint["epoch"]`/`["global_step"]`."""
    from audiotrain.train.callbacks import ModelCheckpoint

    seen = []

    class SeesCounters(TinyClassifier):
        def on_load_checkpoint(self, checkpoint):
            seen.append(("module", self.trainer.current_epoch, self.trainer.global_step))

    class CallbackSeesCounters(Callback):
        def on_load_checkpoint(self, trainer, module, checkpoint):
            seen.append(("callback", trainer.current_epoch, trainer.global_step))

    first = ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_last=True)
    quiet_trainer(tmp_path, max_epochs=1, enable_checkpointing=True, callbacks=[first]).fit(
        SeesCounters(), make_batches(32)
    )
    again = quiet_trainer(
        tmp_path, max_epochs=2, enable_checkpointing=True, callbacks=[CallbackSeesCounters()]
    )
    again.fit(SeesCounters(), make_batches(32), ckpt_path=first.last_model_path)
    assert seen == [("module", 0, 0), ("callback", 0, 0)]
    assert (again.current_epoch, again.global_step) == (2, 4)


def test_a_callbacks_on_load_checkpoint_runs_before_configure_optimizers_so_it_can_set_what_that_reads(
    tmp_path,
):
    """A resumed fit called the module's `configure_optimizers` before the callbacks' `on_load_checkpoint`, so
    a callback that restores what the optimizer is built from (which layers to train, a group's setting)
    came too late: `configure_optimizers` saw the module's own value ("fresh"). Lightning 2.6.6's order on
    resume: the module's `on_load_checkpoint`, then the callbacks', then `configure_optimizers`."""
    from audiotrain.train.callbacks import ModelCheckpoint

    order = []

    class RecordsOrder(TinyClassifier):
        groups = "fresh"

        def on_load_checkpoint(self, checkpoint):
            order.append("module.on_load_checkpoint")

        def configure_optimizers(self):
            order.append(f"configure_optimizers sees {self.groups}")
            return super().configure_optimizers()

    class KeepsTheRate(Callback):
        def on_load_checkpoint(self, trainer, module, checkpoint):
            order.append("callback.on_load_checkpoint")
            module.groups = "restored"

        def state_dict(self):
            return {"kept": 1}

        def load_state_dict(self, state):
            order.append(f"callback.load_state_dict {state}")

    first = ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_last=True)
    quiet_trainer(tmp_path, max_epochs=1, enable_checkpointing=True, callbacks=[first, KeepsTheRate()]).fit(
        TinyClassifier(), make_batches(32)
    )
    order.clear()
    again = quiet_trainer(tmp_path, max_epochs=2, enable_checkpointing=True, callbacks=[KeepsTheRate()])
    again.fit(RecordsOrder(), make_batches(32), ckpt_path=first.last_model_path)
    assert order == [
        "module.on_load_checkpoint",
        "callback.on_load_checkpoint",
        "configure_optimizers sees restored",
        "callback.load_state_dict {'kept': 1}",
    ]


def test_a_callbacks_rewrite_in_on_load_checkpoint_reaches_its_load_state_dict_on_resume(tmp_path):
    """What a callback's `on_load_checkpoint` writes into `checkpoint["callbacks"][state_key]` (an older
    release's state brought up to date) is what its `load_state_dict` gets, as in Lightning."""
    from audiotrain.train.callbacks import ModelCheckpoint

    loaded = []

    class Upgrades(Callback):
        def on_load_checkpoint(self, trainer, module, checkpoint):
            checkpoint["callbacks"][self.state_key] = {"count": checkpoint["callbacks"][self.state_key]["n"]}

        def state_dict(self):
            return {"n": 3}

        def load_state_dict(self, state):
            loaded.append(state)

    first = ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_last=True)
    quiet_trainer(tmp_path, max_epochs=1, enable_checkpointing=True, callbacks=[first, Upgrades()]).fit(
        TinyClassifier(), make_batches(32)
    )
    again = quiet_trainer(tmp_path, max_epochs=2, enable_checkpointing=True, callbacks=[Upgrades()])
    again.fit(TinyClassifier(), make_batches(32), ckpt_path=first.last_model_path)
    assert loaded == [{"count": 3}]


def test_load_checkpoint_after_a_resume_that_failed_loads_its_own_callback_state(tmp_path):
    """A resumed fit that failed after its callbacks' early `on_load_checkpoint` (here in
    `configure_optimizers`) left their states behind: a later `trainer.load_checkpoint` of another
    checkpoint skipped the hooks and gave the callback the failed resume's state ({'n': 1}, not {'n': 2})."""

    class Counts(Callback):
        def __init__(self, n=0):
            self.n, self.loaded = n, []

        def on_load_checkpoint(self, trainer, module, checkpoint):
            self.loaded.append("hook")

        def state_dict(self):
            return {"n": self.n}

        def load_state_dict(self, state):
            self.loaded.append(state)

    saves = []
    for n in (1, 2):
        kept = ModelCheckpoint(dirpath=tmp_path / f"checkpoints{n}", save_last=True)
        callbacks = [kept, Counts(n)]
        quiet_trainer(tmp_path / f"run{n}", max_epochs=1, enable_checkpointing=True, callbacks=callbacks).fit(
            TinyClassifier(), make_batches(32)
        )
        saves.append(kept.last_model_path)

    class FailsTheSecondTime(TinyClassifier):
        calls = 0

        def configure_optimizers(self):
            FailsTheSecondTime.calls += 1
            if FailsTheSecondTime.calls == 2:
                raise RuntimeError("a bad optimizer setting")
            return super().configure_optimizers()

    counts = Counts()
    trainer = quiet_trainer(tmp_path / "run3", max_epochs=1, callbacks=[counts])
    model = FailsTheSecondTime()
    trainer.fit(model, make_batches(32))
    with pytest.raises(RuntimeError, match="a bad optimizer setting"):
        trainer.fit(model, make_batches(32), ckpt_path=saves[0])
    counts.loaded.clear()
    with pytest.warns(UserWarning, match="state of callbacks this Trainer does not have"):
        trainer.load_checkpoint(saves[1])
    assert counts.loaded == ["hook", {"n": 2}]


def test_a_modules_on_exception_is_named_as_a_hook_the_trainer_never_calls(tmp_path):
    """A module's on_exception(self, exception) (a Callback and DataModule hook) was silently never called,
    in Lightning as here; now the stage warns, saying to put it in a Callback."""
    heard = []

    class Hears(TinyClassifier):
        def on_exception(self, exception):
            heard.append(exception)

    with pytest.warns(UserWarning, match=r"Hears.on_exception is a Callback and DataModule hook.*Callback"):
        quiet_trainer(tmp_path).predict(Hears(), make_batches(16))
    assert heard == []


class _OnesLinear(audiotrain.TrainModule):
    """y = x @ 1 + 0.5 on 3 features, 2 outputs: a Lightning port whose training-step hooks raise if run."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(3, 2)
        self.layer.weight = mx.ones((2, 3))
        self.layer.bias = mx.full((2,), 0.5)

    def __call__(self, x):
        return self.layer(x)

    def training_step(self, batch, batch_idx):
        return mx.mean((self(batch[0]) - batch[1]) ** 2)

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", mx.mean((self(batch[0]) - batch[1]) ** 2))

    def test_step(self, batch, batch_idx):
        self.log("test_loss", mx.mean((self(batch[0]) - batch[1]) ** 2))

    def configure_optimizers(self):
        return optim.SGD(learning_rate=0.1)


_REMOVED_IN_LIGHTNING_2 = [name for name in _NEVER_CALLED if "a Lightning 1.x hook" in UNSUPPORTED[name][0]]


def _never_run(self, *args, **kwargs):
    raise AssertionError("a training-step hook ran outside fit")


@pytest.mark.parametrize("name", sorted(n for n in UNSUPPORTED if n not in _REMOVED_IN_LIGHTNING_2))
def test_a_training_step_hook_does_not_stop_validate_test_or_predict(tmp_path, name):
    # Lightning 2.6.6 calls optimizer_step, backward, configure_gradient_clipping, ... in fit alone, and
    # its validate / test / predict of such a module (ones weights, bias 0.5, inputs of ones, targets 0)
    # gave val_loss 12.25, test_loss 12.25 and 2 predicted batches of (4, 2), each value 3.5. Refused in
    # fit here, they were refused in these stages too: a Lightning module could not even be evaluated.
    module = type("Port", (_OnesLinear,), {name: _never_run})()
    loader = [(mx.ones((4, 3)), mx.zeros((4, 2)))] * 2
    t = quiet_trainer(tmp_path)
    assert t.validate(module, loader) == [{"val_loss": 12.25}]
    assert t.test(module, loader) == [{"test_loss": 12.25}]
    predicted = t.predict(module, loader)
    assert [p.shape for p in predicted] == [(4, 2), (4, 2)]
    assert all(p.tolist() == [[3.5, 3.5]] * 4 for p in predicted)
    with pytest.raises(TypeError, match=rf"Port\.{name} would never be called: "):
        quiet_trainer(tmp_path, max_epochs=1).fit(module, loader, loader)


@pytest.mark.parametrize("name", ["validation_epoch_end", "test_epoch_end"])
def test_a_lightning_1_evaluation_hook_is_still_refused_in_validate_and_test(tmp_path, name):
    module = type("Port", (_OnesLinear,), {name: _never_run})()
    stage = "validate" if name.startswith("validation") else "test"
    with pytest.raises(TypeError, match=rf"Port\.{name} would never be called: a Lightning 1.x hook"):
        getattr(quiet_trainer(tmp_path), stage)(module, [(mx.ones((4, 3)), mx.zeros((4, 2)))])


# The initial weights of Lightning's torch.nn.Linear(3, 2) (torch.manual_seed(0)) in the runs below, and its
# 6 batches of 4: numpy's default_rng(0) normal inputs (24, 3), then targets (24, 2); MSE loss, SGD 0.1.
_TORCH_INIT = {
    "weight": [[-0.004322517663240433, 0.3097158372402191, -0.4751853346824646],
               [-0.4248946011066437, -0.2223689705133438, 0.15482072532176971]],
    "bias": [-0.011439144611358643, 0.45777493715286255],
}  # fmt: skip


class _Regression(audiotrain.TrainModule):
    def __init__(self, port: str):
        super().__init__()
        self.port = port
        self.layer = nn.Linear(3, 2)
        self.layer.weight = mx.array(_TORCH_INIT["weight"])
        self.layer.bias = mx.array(_TORCH_INIT["bias"])

    def training_step(self, batch, batch_idx):
        loss = mx.mean((self.layer(batch[0]) - batch[1]) ** 2)
        if self.port == "backward":  # Lightning's backward(loss * 2.0), as the refusal says to write it
            self.log("train_loss", loss)
            return loss * 2.0
        return loss

    def configure_optimizers(self):
        return optim.SGD(learning_rate=0.1)

    def on_train_batch_start(self, batch, batch_idx):
        if self.port == "optimizer_step":  # Lightning's docs' warm-up: lr * min(1, (global_step + 1) / 4)
            for group in self.optimizers().param_groups:
                group["lr"] = 0.1 * min(1.0, (self.trainer.global_step + 1) / 4)

    def on_train_epoch_start(self):
        if self.port == "configure_gradient_clipping":  # clip_gradients(value 0.05) after epoch 0 only
            self.trainer.gradient_clip_val = 0.05 if self.current_epoch > 0 else 0
            self.trainer.gradient_clip_algorithm = "value"


def _regression_batches():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 3)).astype(np.float32)
    y = rng.normal(size=(24, 2)).astype(np.float32)
    return [(mx.array(x[i : i + 4]), mx.array(y[i : i + 4])) for i in range(0, 24, 4)]


# Lightning 2.6.6's weights after 2 epochs with the override as its docs teach it (optimizer_step setting
# pg["lr"] then optimizer.step(closure=optimizer_closure), under accumulate_grad_batches=2;
# configure_gradient_clipping calling self.clip_gradients only when current_epoch > 0; backward scaling the
# loss by 2), and the words of the advice that leads there.
_LIGHTNING_PORTS = [
    (
        "optimizer_step",
        {"accumulate_grad_batches": 2},
        r"warm-up by hand, set self\.optimizers\(\)\.param_groups\[i\]\['lr'\] in on_train_batch_start",
        [[0.045138880610466, 0.2874945402145386, -0.34152477979660034],
         [-0.23081828653812408, -0.14152349531650543, 0.026837071403861046]],
        [0.02476411685347557, 0.3317209482192993],
    ),
    (
        "configure_gradient_clipping",
        {},
        r"clip only after epoch 0\): set self\.trainer\.gradient_clip_val and gradient_clip_algorithm in "
        r"on_train_epoch_start",
        [[0.039735350757837296, 0.27523910999298096, -0.277316153049469],
         [-0.18220654129981995, -0.09665171802043915, -0.011825927533209324]],
        [0.031971417367458344, 0.27984169125556946],
    ),
    (
        "backward",
        {},
        r"a scaled one, loss \* s, with self\.log\('train_loss', loss\)",
        [[0.08552389591932297, 0.2287452220916748, -3.8329821109073237e-05],
         [-0.13713227212429047, 0.004421846009790897, -0.1900281012058258]],
        [0.039266832172870636, 0.19301970303058624],
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    "name, flags, advice, weight, bias", _LIGHTNING_PORTS, ids=[p[0] for p in _LIGHTNING_PORTS]
)
def test_a_refused_override_from_lightnings_docs_names_a_port_that_gives_lightnings_weights(
    tmp_path, name, flags, advice, weight, bias
):
    # The refusals named no place for these (optimizer_step's spoke of constraints and EMAs only), though
    # each has one outside the compiled step that trains as Lightning does.
    overriding = type("Port", (_Regression,), {name: _never_run})("")
    with pytest.raises(TypeError, match=rf"Port\.{name} would never be called: .*{advice}"):
        quiet_trainer(tmp_path, max_epochs=2, **flags).fit(overriding, _regression_batches())
    module = _Regression(name)
    quiet_trainer(tmp_path, max_epochs=2, logger=False, **flags).fit(module, _regression_batches())
    np.testing.assert_allclose(np.array(module.layer.weight), weight, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.array(module.layer.bias), bias, rtol=1e-5, atol=1e-7)


def test_a_refused_optimizer_zero_grad_names_accumulate_grad_batches(tmp_path):
    module = type("Port", (_Regression,), {"optimizer_zero_grad": _never_run})("")
    with pytest.raises(
        TypeError, match=r"several batches in one update, Trainer\(accumulate_grad_batches=N\)"
    ):
        quiet_trainer(tmp_path, max_epochs=1).fit(module, _regression_batches())


def test_clip_gradients_names_where_a_rule_by_epoch_goes(tmp_path):
    class ClipsLater(_Regression):
        def on_train_epoch_start(self):
            if self.current_epoch > 0:
                self.clip_gradients(
                    self.optimizers(), gradient_clip_val=0.05, gradient_clip_algorithm="value"
                )

    with pytest.raises(TypeError, match=r"clip only after epoch 0\), set self\.trainer\.gradient_clip_val"):
        quiet_trainer(tmp_path, max_epochs=2, logger=False).fit(ClipsLater(""), _regression_batches())


def test_what_a_callbacks_on_load_checkpoint_rewrites_outside_its_entry_is_what_a_resume_restores(tmp_path):
    """A resumed fit restores from the state its load hooks got, as Lightning restores from the one dict:
    a callback's rewrite of the run's metrics (here, of `checkpoint["callback_metrics"]`) was lost since
    the callbacks' hooks moved before `configure_optimizers` on fit's own read of the checkpoint."""
    from audiotrain.train.callbacks import ModelCheckpoint

    class Marks(Callback):
        def on_load_checkpoint(self, trainer, module, checkpoint):
            checkpoint["callback_metrics"]["marked_on_load"] = 7.0

    first = ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_last=True)
    quiet_trainer(tmp_path, max_epochs=1, enable_checkpointing=True, callbacks=[first]).fit(
        TinyClassifier(), make_batches(32)
    )
    again = quiet_trainer(tmp_path, max_epochs=1, enable_checkpointing=True, callbacks=[Marks()])
    with pytest.warns(UserWarning, match="nothing to train"):
        again.fit(TinyClassifier(), make_batches(32), ckpt_path=first.last_model_path)
    assert float(again.callback_metrics["marked_on_load"]) == 7.0


class KeepsItsClasses(TinyClassifier):
    """Reads back in on_load_checkpoint what its loaders need (a vocabulary, normalisation statistics)."""

    def __init__(self):
        super().__init__()
        self._n = None

    def on_save_checkpoint(self, checkpoint):
        checkpoint["n"] = 16

    def on_load_checkpoint(self, checkpoint):
        self._n = checkpoint["n"]

    def _batches(self):
        assert self._n is not None, "the loader was asked for before the checkpoint was loaded"
        return make_batches(self._n)

    def val_dataloader(self):
        return self._batches()

    def test_dataloader(self):
        return self._batches()

    def predict_dataloader(self):
        return self._batches()


@pytest.mark.parametrize("stage", ["validate", "test", "predict"])
def test_an_evaluation_with_a_ckpt_path_asks_its_loader_after_on_load_checkpoint(tmp_path, stage):
    """validate/test/predict(ckpt_path=...) asked the module for its loader before the checkpoint was loaded:
    a loader built from what on_load_checkpoint reads back failed. Lightning 2.6.6 restores the checkpoint
    (on_load_checkpoint, the weights, the callbacks') first and then asks for the loader, as `fit` does here."""
    trained = KeepsItsClasses()
    trained._n = 16
    first = quiet_trainer(tmp_path, max_epochs=1)
    first.fit(trained, make_batches(16))
    path = first.save_checkpoint(tmp_path / "saved")
    out = getattr(quiet_trainer(tmp_path / "again"), stage)(KeepsItsClasses(), ckpt_path=path)
    assert len(out) == 1
