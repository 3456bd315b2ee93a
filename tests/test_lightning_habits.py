"""What a PyTorch Lightning user brings: configure_optimizers' forms, DataModule, save_hyperparameters and
load_from_checkpoint, and the public names under audiotrain.train."""

import re
from pathlib import Path

import audiotrain  # noqa: F401  (before mlx)
from audiotrain import DataModule
from audiotrain.train.schedulers import StepLRScheduler, WarmupCosineScheduler

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from tasks import RecordingLogger, Returns, TinyClassifier, make_batches, make_data, quiet_trainer, weights


def trainer(tmp_path, **kwargs):
    return quiet_trainer(tmp_path, **kwargs)


def test_configure_optimizers_may_return_a_bare_optimizer(tmp_path):
    t = trainer(tmp_path, max_epochs=1)
    t.fit(Returns(lambda m: optim.SGD(learning_rate=0.1)), make_batches())
    assert isinstance(t.optimizer, optim.SGD) and t.global_step == 6


def test_configure_optimizers_may_return_lightnings_dict_with_a_per_step_schedule(tmp_path):
    schedule = WarmupCosineScheduler(peak_lr=0.1, warmup_steps=2, total_steps=6)
    logger = RecordingLogger()
    t = trainer(tmp_path, max_epochs=1, log_every_n_steps=1, logger=logger)
    t.fit(
        Returns(
            lambda m: {
                "optimizer": optim.SGD(learning_rate=0.0),
                "lr_scheduler": {"scheduler": schedule, "interval": "step"},
            }
        ),
        make_batches(),
    )
    rates = [m["learning_rate"] for _, m in logger.metrics if "learning_rate" in m]
    # the rate the k-th update used: MLX evaluates the schedule at the step before incrementing it
    np.testing.assert_allclose(rates, [float(schedule(k)) for k in range(6)], rtol=1e-6)
    assert t.optimizer_config.lr_schedule_name == "warmup_cosine"


@pytest.mark.parametrize(
    "value, match",
    [
        (
            {
                "optimizer": optim.SGD(learning_rate=0.1),
                "lr_scheduler": {"scheduler": lambda s: 0.1, "interval": "batch"},
            },
            "interval",
        ),
        ({"optimizer": optim.SGD(learning_rate=0.1), "lr_scheduler": 3}, "must be a schedule"),
        ({"lr_scheduler": None}, "expected 'optimizer'"),
        ([optim.SGD(learning_rate=0.1), optim.SGD(learning_rate=0.1)], "one optimizer is supported"),
    ],
)
def test_configure_optimizers_outputs_mlx_cannot_use_are_explained(tmp_path, value, match):
    with pytest.raises((TypeError, ValueError), match=match):
        trainer(tmp_path, max_epochs=1).fit(Returns(lambda m: value), make_batches())


class Batches(DataModule):
    def __init__(self):
        self.stages = []

    def setup(self, stage):
        self.stages.append(stage)

    def train_dataloader(self):
        return make_batches(64)

    def val_dataloader(self):
        return make_batches(32)

    def test_dataloader(self):
        return make_batches(16)

    def predict_dataloader(self):
        return make_batches(16)

    def teardown(self, stage):
        self.stages.append(f"teardown-{stage}")


def test_a_datamodule_gives_every_stage_its_loaders(tmp_path):
    data = Batches()
    t = trainer(tmp_path, max_epochs=2)
    module = TinyClassifier()
    t.fit(module, datamodule=data)
    assert t.global_step == 8 and t.history["val_loss"][-1] is not None
    (val,) = t.validate(module, datamodule=data)
    (test,) = t.test(module, datamodule=data)
    predictions = t.predict(module, datamodule=data)
    assert "val_loss" in val and "test_loss" in test and len(predictions) == 1
    assert data.stages == [
        "fit", "teardown-fit", "validate", "teardown-validate", "test", "teardown-test", "predict", "teardown-predict",
    ]  # fmt: skip
    with pytest.raises(TypeError, match="pass loaders or datamodule=, not both"):
        t.fit(module, make_batches(), datamodule=data)


class Samples:
    """A map-style dataset of (x, y) samples."""

    def __init__(self, n, seed=0):
        self.x, self.y = make_data(n, seed)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def test_lightnings_from_datasets_gives_each_stage_a_loader_over_its_dataset(tmp_path):
    data = DataModule.from_datasets(
        train_dataset=Samples(64), val_dataset=Samples(32, seed=1), test_dataset=Samples(16), batch_size=16
    )
    t = trainer(tmp_path, max_epochs=2)
    module = TinyClassifier()
    t.fit(module, datamodule=data)
    assert t.global_step == 8 and t.history["val_loss"][-1] is not None
    (test,) = t.test(module, datamodule=data)
    assert "test_loss" in test
    with pytest.raises(TypeError, match="predict_dataloader"):  # no predict_dataset given
        t.predict(module, datamodule=data)

    class Folder(DataModule):  # Lightning passes batch_size and num_workers to an __init__ taking them
        def __init__(self, batch_size, root="songs"):
            super().__init__()
            self.save_hyperparameters()

    folder = Folder.from_datasets(train_dataset=Samples(64), batch_size=8, root="other")
    assert isinstance(folder, Folder) and dict(folder.hparams) == {"batch_size": 8, "root": "other"}
    assert len(folder.train_dataloader()) == 8 and folder.val_dataloader() is None


def test_a_datamodule_is_rebuilt_from_a_checkpoint_with_its_hyperparameters_and_state(tmp_path):
    """Lightning's LightningDataModule.load_from_checkpoint was missing (AttributeError)."""

    class Songs(DataModule):
        def __init__(self, batch_size=16, folder="songs"):
            super().__init__()
            self.save_hyperparameters()
            self.epochs_seen = 0

        def train_dataloader(self):
            return make_batches(64, batch_size=self.hparams.batch_size)

        def state_dict(self):
            return {"epochs_seen": self.trainer.current_epoch + 1}

        def load_state_dict(self, state_dict):
            self.epochs_seen = state_dict["epochs_seen"]

    t = trainer(tmp_path, max_epochs=2, enable_checkpointing=True)
    t.fit(TinyClassifier(), datamodule=Songs(batch_size=32, folder="other"))
    last = t.checkpoint_callback.last_model_path
    again = Songs.load_from_checkpoint(last)
    assert dict(again.hparams) == {"batch_size": 32, "folder": "other"} and again.epochs_seen == 2
    assert Songs.load_from_checkpoint(last, batch_size=8).hparams.batch_size == 8

    class Renamed(DataModule):
        def __init__(self, root):
            super().__init__()

    with pytest.raises(TypeError, match=r"Renamed.__init__ does not take .*\['batch_size', 'folder'\]"):
        with pytest.warns(UserWarning, match="hold batch_size, folder, which no __init__ of Renamed"):
            Renamed.load_from_checkpoint(last)


def test_a_datamodule_saved_from_a_dict_a_subclass_or_tuples_is_rebuilt_as_lightning_rebuilds_it(tmp_path):
    """DataModule.load_from_checkpoint passed every saved entry to __init__ as a keyword: one built from a
    dict (`save_hyperparameters(cfg)`) or a subclass giving its base's arguments
    (`super().__init__(batch_size=size * 2)`) stopped with "__init__() got an unexpected keyword argument
    'batch_size'", and a tuple came back a list. Lightning's _load_state (shared with the module's) passes
    the dict back as that argument, keeps what __init__ takes, and gives back what it saved."""

    class FromConfig(DataModule):
        def __init__(self, cfg):
            super().__init__()
            self.save_hyperparameters(cfg)

        def train_dataloader(self):
            return make_batches(32, batch_size=self.hparams.batch_size)

    class Base(DataModule):
        def __init__(self, batch_size=16, sizes=(64, 32)):
            super().__init__()
            self.save_hyperparameters()

        def train_dataloader(self):
            return make_batches(self.hparams.sizes[0], batch_size=self.hparams.batch_size)

    class Doubled(Base):
        def __init__(self, size=4):
            super().__init__(batch_size=size * 2)

    t = trainer(tmp_path / "cfg", max_epochs=1, enable_checkpointing=True)
    t.fit(TinyClassifier(), datamodule=FromConfig({"batch_size": 8, "root": "songs"}))
    last = t.checkpoint_callback.last_model_path
    assert FromConfig.load_from_checkpoint(last).hparams == {"batch_size": 8, "root": "songs"}
    assert FromConfig.load_from_checkpoint(last, batch_size=4).hparams.batch_size == 4

    t = trainer(tmp_path / "sub", max_epochs=1, enable_checkpointing=True)
    t.fit(TinyClassifier(), datamodule=Doubled(size=3))
    again = Doubled.load_from_checkpoint(t.checkpoint_callback.last_model_path)
    assert dict(again.hparams) == {"batch_size": 6, "sizes": (64, 32), "size": 3}


def test_load_from_checkpoint_on_an_instance_is_refused_as_in_lightning_2(tmp_path):
    """`model.load_from_checkpoint(path)` (the instance's, as if it loaded in place) returned a new module and
    left `model` with its initial weights, so a test() after it scored an untrained model without a word.
    Lightning 2 refuses it (a TypeError saying to call it on the class and use the return value); so do
    TrainModule's and DataModule's, and the class's call works as before."""

    class Songs(DataModule):
        def __init__(self, batch_size=16):
            super().__init__()
            self.save_hyperparameters()

        def train_dataloader(self):
            return make_batches(32, batch_size=self.hparams.batch_size)

    t = trainer(tmp_path, max_epochs=1, enable_checkpointing=True)
    t.fit(TinyClassifier(), datamodule=Songs())
    last = t.checkpoint_callback.last_model_path
    model, data = TinyClassifier(), Songs()
    before = weights(model)
    for instance, name in ((model, "TinyClassifier"), (data, "Songs")):
        with pytest.raises(
            TypeError, match=rf"{name}.load_from_checkpoint is a classmethod.*{name}.load_from"
        ):
            instance.load_from_checkpoint(last)
    assert all(np.array_equal(before[k], v) for k, v in weights(model).items())
    assert isinstance(TinyClassifier.load_from_checkpoint(last), TinyClassifier)
    assert isinstance(type(data).load_from_checkpoint(last), Songs)


def test_lightnings_positional_arguments_land_where_lightning_puts_them(tmp_path):
    """fit(model, None, None, dm) read the DataModule as ckpt_path, and predict(model, dl, None, False) took
    False as ckpt_path and returned the predictions: Lightning's order is fit(model, train_dataloaders,
    val_dataloaders, datamodule, ckpt_path), validate/test(model, dataloaders, ckpt_path, verbose,
    datamodule), predict(model, dataloaders, datamodule, return_predictions, ckpt_path)."""
    data = Batches()
    t = trainer(tmp_path, max_epochs=1, enable_checkpointing=True)
    module = TinyClassifier()
    t.fit(module, None, None, data)
    assert t.global_step == 4 and data.stages[0] == "fit"
    last = t.checkpoint_callback.last_model_path
    t2 = trainer(tmp_path, max_epochs=2, enable_checkpointing=True)
    t2.fit(TinyClassifier(), None, None, data, last)
    assert t2.global_step == 8
    (val,) = t.validate(module, None, None, False, data)
    (test,) = t.test(module, None, last, True, data)
    assert "val_loss" in val and "test_loss" in test
    assert t.predict(module, make_batches(16), None, False) is None
    assert len(t.predict(module, None, data, True, last)) == 1


def test_audiotrains_positional_ckpt_path_still_resumes(tmp_path):
    """audiotrain's order before Lightning's: fit(model, train, val, ckpt_path), predict(model, loader,
    datamodule, ckpt_path, return_predictions)."""
    t = trainer(tmp_path, max_epochs=1, enable_checkpointing=True)
    module = TinyClassifier()
    t.fit(module, make_batches(64), make_batches(32))
    last = Path(t.checkpoint_callback.last_model_path)
    t2 = trainer(tmp_path, max_epochs=2, enable_checkpointing=True)
    t2.fit(TinyClassifier(), make_batches(64), make_batches(32), last)
    assert t2.global_step == 8
    assert t2.predict(module, make_batches(16), None, str(last), False) is None
    assert len(t2.predict(module, make_batches(16), None, str(last))) == 1


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda t, m, dm: t.fit(m, make_batches(), None, None, dm), "ckpt_path must be .*got a Batches"),
        (lambda t, m, dm: t.predict(m, make_batches(), None, True, False), "ckpt_path must be .*got False"),
        (lambda t, m, dm: t.predict(m, make_batches(), None, 1), "return_predictions must be .*got 1"),
        (lambda t, m, dm: t.validate(m, make_batches(), None, dm), "verbose must be .*got a Batches"),
        (  # Lightning's validate order in the message: model, dataloaders, ckpt_path, verbose, datamodule
            lambda t, m, dm: t.validate(m, make_batches(), None, 1),
            r"verbose must be True or False, got 1 \(the arguments in order: model, val_loader, ckpt_path, "
            r"verbose, datamodule, weights_only\)",
        ),
        (lambda t, m, dm: t.test(m, make_batches(), dm), "ckpt_path must be .*got a Batches"),
    ],
)
def test_an_argument_out_of_place_is_refused_by_name(tmp_path, call, match):
    with pytest.raises(TypeError, match=match):
        call(trainer(tmp_path, max_epochs=1), TinyClassifier(), Batches())


class WithHyperparameters(TinyClassifier):
    def __init__(self, hidden: int = 16, lr: float = 1e-2, note: str = "x"):
        super().__init__(hidden=hidden, lr=lr)
        self.save_hyperparameters()


def test_save_hyperparameters_then_load_from_checkpoint_rebuilds_the_module(tmp_path):
    logger = RecordingLogger()
    module = WithHyperparameters(hidden=24, lr=5e-3, note="wide")
    assert module.hparams == {"hidden": 24, "lr": 5e-3, "note": "wide"}
    t = trainer(tmp_path, max_epochs=1, logger=logger)
    t.fit(module, make_batches())
    logged = {k: v for k, v in logger.hparams[0].items() if k.startswith("hparams/")}  # (flattened, with '/')
    assert logged == {f"hparams/{k}": v for k, v in module.hparams.items()}
    path = t.save_checkpoint(tmp_path / "saved")
    loaded = WithHyperparameters.load_from_checkpoint(path)
    assert loaded.hparams == module.hparams and loaded.fc1.weight.shape == (24, 8)
    a, b = weights(module), weights(loaded)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    other = WithHyperparameters.load_from_checkpoint(path, note="renamed")
    assert other.hparams["note"] == "renamed"


def test_load_from_checkpoint_names_the_saved_value_that_cannot_build_the_module(tmp_path):
    import json

    t = trainer(tmp_path, max_epochs=1)
    t.fit(WithHyperparameters(hidden=8), make_batches())
    path = t.save_checkpoint(tmp_path / "saved")
    state_file = path / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["hyper_parameters"]["hidden"] = "8"  # edited by hand
    state_file.write_text(json.dumps(state))
    with pytest.raises(
        TypeError, match=r"WithHyperparameters\(hidden='8', lr=.*\) failed .*trainer_state.json"
    ):
        WithHyperparameters.load_from_checkpoint(path)
    assert WithHyperparameters.load_from_checkpoint(path, hidden=8).fc1.weight.shape == (8, 8)
    with pytest.raises(TypeError, match="WithHyperparameters.__init__ takes no argument width"):
        WithHyperparameters.load_from_checkpoint(path, width=3)


def test_save_hyperparameters_mistakes_are_explained():
    class Unserialisable(TinyClassifier):
        def __init__(self, backbone=None):
            super().__init__()
            self.save_hyperparameters()

    with pytest.raises(TypeError, match=r"backbone=Linear is not JSON-serialisable.*ignore=\['backbone'\]"):
        import mlx.nn as nn

        Unserialisable(backbone=nn.Linear(2, 2))
    assert Unserialisable().hparams == {"backbone": None}

    class IgnoredByName(TinyClassifier):
        def __init__(self, backbone=None, hidden: int = 16):
            super().__init__(hidden=hidden)
            self.save_hyperparameters(ignore="backbone")  # Lightning's ignore= may be one name

    assert IgnoredByName(backbone=nn.Linear(2, 2)).hparams == {"hidden": 16}


def test_an_enum_hyperparameter_is_refused_rather_than_given_back_as_its_value():
    """Lightning 2.6.6's pickled checkpoint gives `load_from_checkpoint`'s __init__ the enum member again; a
    str or int Enum passed audiotrain's JSON check and came back a plain 'adam' or 1, so `mode.value` failed
    only after a reload. Refused by name, as the README says of what cannot be given back as it was."""
    import enum

    class Optim(str, enum.Enum):
        adam = "adam"

    class Level(enum.IntEnum):
        one = 1

    class WithEnum(TinyClassifier):
        def __init__(self, mode=Optim.adam):
            super().__init__()
            self.save_hyperparameters()

    for member in (Optim.adam, Level.one):
        with pytest.raises(TypeError, match=rf"mode is the enum member {type(member).__name__}\.\w+, which "):
            WithEnum(mode=member)
    assert WithEnum(mode="adam").hparams == {"mode": "adam"}


def test_audiotrain_train_exports_the_public_callbacks_loggers_and_schedules():
    import audiotrain.train as at

    for name in ("Trainer", "TrainModule", "DataModule", "ModelCheckpoint", "EarlyStopping", "LearningRateMonitor",
                 "WandbLogger", "TensorBoardLogger", "MLflowLogger", "CSVLogger", "WarmupCosineScheduler",
                 "OneCycleScheduler"):  # fmt: skip
        assert getattr(at, name).__name__ == name
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        at.Nope  # noqa: B018


def test_a_trainer_runs_on_the_module_it_last_fitted(tmp_path):
    mx.random.seed(0)
    t = trainer(tmp_path, max_epochs=1)
    t.fit(TinyClassifier(), make_batches())
    assert len(t.predict(dataloaders=make_batches(32))) == 2


def test_ckpt_path_last_in_a_new_trainer_finds_the_newest_last_on_disk(tmp_path):
    # Lightning looks for "last" on disk: a script run again (a new process, a new Trainer) resumes with it.
    from audiotrain import Trainer
    from audiotrain.train.callbacks import ModelCheckpoint

    from tasks import TinyClassifier, make_batches

    def fit(max_epochs, ckpt_path=None, **kw):
        trainer = Trainer(max_epochs=max_epochs, default_root_dir=tmp_path, enable_progress_bar=False, **kw)
        trainer.fit(TinyClassifier(), make_batches(), ckpt_path=ckpt_path)
        return trainer

    fit(1)  # checkpoints/last
    fit(2)  # checkpoints/version_1/last: the newest
    resumed = fit(3, ckpt_path="last")
    assert resumed.current_epoch == 3 and resumed.global_step == 3 * len(make_batches())  # from epoch 2
    assert resumed.callbacks.checkpoint_path("last") == str(tmp_path / "checkpoints" / "version_1" / "last")
    assert not (tmp_path / "checkpoints" / "version_2").exists()  # no empty version left behind

    def given():
        return [ModelCheckpoint(dirpath=tmp_path / "mine", save_last=True, save_top_k=0)]

    fit(1, callbacks=given())
    assert fit(2, ckpt_path="last", callbacks=given()).global_step == 2 * len(make_batches())
    # Nothing saved there yet: trained from scratch with a warning, as Lightning's "resume if there is one".
    with pytest.warns(UserWarning, match=r'ckpt_path="last"\): nothing is saved yet'):
        fresh = Trainer(max_epochs=1, default_root_dir=tmp_path / "elsewhere", enable_progress_bar=False)
        fresh.fit(TinyClassifier(), make_batches(), ckpt_path="last")
    assert fresh.global_step == len(make_batches())


def test_ckpt_path_best_after_a_default_fit_is_the_newest_checkpoint(tmp_path):
    t = quiet_trainer(tmp_path, max_epochs=2, enable_checkpointing=True)
    module = TinyClassifier()
    t.fit(module, make_batches(), make_batches(32))
    (best,) = t.test(module, make_batches(32), ckpt_path="best")  # the default keeps only `last`
    (last,) = t.test(module, make_batches(32), ckpt_path="last")
    assert best == last


def test_ckpt_path_best_comes_from_the_checkpoint_that_monitors_a_metric(tmp_path):
    from audiotrain.train.callbacks import ModelCheckpoint

    every_step = ModelCheckpoint(dirpath=tmp_path / "steps", every_n_train_steps=1, save_top_k=-1)
    monitored = ModelCheckpoint(dirpath=tmp_path / "best", monitor="val_loss", mode="max")
    t = quiet_trainer(tmp_path, max_epochs=2, enable_checkpointing=True, callbacks=[every_step, monitored])
    t.fit(TinyClassifier(), make_batches(), make_batches(32))
    assert t.callbacks.checkpoint_path("best") == monitored.best_model_path


def test_progress_bar_metrics_holds_the_last_loss_and_the_validation_metrics(tmp_path):
    t = trainer(tmp_path, max_epochs=1)
    t.fit(TinyClassifier(), make_batches(), make_batches(32))
    assert {"loss", "val_loss"} <= set(t.progress_bar_metrics)
    assert t.progress_bar_metrics["val_loss"] == t.callback_metrics["val_loss"]


def test_test_without_a_model_after_fit_uses_the_best_checkpoint_and_says_so(tmp_path):
    # Lightning: `.test(ckpt_path=None)` without a model tests the best model of the previous fit, and warns.
    from audiotrain.train.callbacks import ModelCheckpoint

    worst_is_best = ModelCheckpoint(dirpath=tmp_path / "best", monitor="val_loss", mode="max")
    t = quiet_trainer(tmp_path, max_epochs=3, enable_checkpointing=True, callbacks=[worst_is_best])
    mx.random.seed(0)
    module = TinyClassifier()
    t.fit(module, make_batches(), make_batches(32))
    assert worst_is_best.best_model_path.endswith("step=6")  # the first epoch's: not the final weights
    (current,) = t.test(module, make_batches(32))  # a model given: its current weights
    (best,) = t.test(module, make_batches(32), ckpt_path="best")
    assert current != best
    with pytest.warns(
        UserWarning, match=r"test\(ckpt_path=None\) was called without a model: the best model"
    ):
        (default,) = t.test(dataloaders=make_batches(32))
    assert default == best
    with pytest.warns(UserWarning, match=r"predict\(ckpt_path=None\) was called without a model"):
        t.predict(dataloaders=make_batches(32))


def test_without_a_monitored_checkpoint_a_model_less_test_uses_the_current_weights(tmp_path):
    import warnings

    t = quiet_trainer(tmp_path, max_epochs=2, enable_checkpointing=True)  # the default: `last` only
    module = TinyClassifier()
    t.fit(module, make_batches(), make_batches(32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (default,) = t.test(dataloaders=make_batches(32))
    assert default == t.test(module, make_batches(32))[0]


def test_a_monitoring_checkpoint_that_saved_nothing_leaves_a_model_less_test_the_current_weights(tmp_path):
    """No best to load (the monitoring ModelCheckpoint saves every 5 epochs, the fit ran 1): the current
    weights, silently, not an error about ckpt_path="best"."""
    import warnings

    from audiotrain.train.callbacks import ModelCheckpoint

    later = ModelCheckpoint(dirpath=tmp_path / "best", monitor="val_loss", every_n_epochs=5)
    t = quiet_trainer(tmp_path, max_epochs=1, enable_checkpointing=True, callbacks=[later])
    module = TinyClassifier()
    t.fit(module, make_batches(), make_batches(32))
    assert later.best_model_path == ""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (default,) = t.test(dataloaders=make_batches(32))
    assert default == t.test(module, make_batches(32))[0]


def _readme_block(heading: str) -> str:
    from pathlib import Path

    text = (Path(__file__).parents[1] / "README.md").read_text()
    after = text.split(f"### {heading}\n", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readmes_lightning_example_runs_as_written_and_loads_its_own_run(tmp_path, monkeypatch):
    from audiotrain import DataLoader, Dataset, Trainer, TrainModule

    import mlx.nn as nn

    class Digits(Dataset):
        def __init__(self, n, seed=0):
            rng = np.random.default_rng(seed)
            self.x, self.y = rng.standard_normal((n, 784)).astype(np.float32), rng.integers(0, 10, n)

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            return self.x[i], int(self.y[i])

    class MyDataModule(DataModule):
        def setup(self, stage):
            self.train, self.val = Digits(32), Digits(16, 1)

        def train_dataloader(self):
            return DataLoader(self.train, batch_size=16, shuffle=True)

        def val_dataloader(self):
            return DataLoader(self.val, batch_size=16)

    monkeypatch.chdir(tmp_path)
    block = _readme_block("Coming from PyTorch Lightning")
    for run in range(2):  # the second run saves to logs/checkpoints/version_1: it must load that one
        names = dict(mx=mx, nn=nn, optim=optim, TrainModule=TrainModule, Trainer=Trainer, np=np)
        names.update(WarmupCosineScheduler=WarmupCosineScheduler, MyDataModule=MyDataModule)
        names["loader"] = DataLoader(Digits(16, 2), batch_size=8)
        exec(compile(block, "README.md", "exec"), names)
        trainer, model = names["trainer"], names["model"]
        assert len(names["predictions"]) == 2 and names["predictions"][0].shape == (8, 10)
        assert "val_loss" in names["val_metrics"]
        trained, loaded = weights(trainer.module), weights(model)
        assert all(np.array_equal(trained[k], loaded[k]) for k in trained), f"run {run}"
    assert (tmp_path / "logs" / "checkpoints" / "version_1" / "last").is_dir()


def test_the_readmes_trainer_example_resumes_its_own_runs_last_checkpoint(tmp_path, monkeypatch):
    """Run twice in one folder, the second run saves to logs/checkpoints/version_1: its resume line must
    load that run's last, not the first run's logs/checkpoints/last."""
    from audiotrain import DataLoader, Dataset

    class Digits(Dataset):
        def __init__(self, n, seed=0):
            rng = np.random.default_rng(seed)
            self.x, self.y = rng.standard_normal((n, 784)).astype(np.float32), rng.integers(0, 10, n)

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            return {"x": self.x[i], "y": self.y[i]}

    monkeypatch.chdir(tmp_path)
    text = (Path(__file__).parents[1] / "README.md").read_text()
    block = text.split("## The trainer in one example\n", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    block = block.replace("max_epochs=10", "max_epochs=1, enable_progress_bar=False")
    for run, folder in enumerate(["logs/checkpoints", "logs/checkpoints/version_1"]):
        names = {
            "train_loader": DataLoader(Digits(32), batch_size=16),
            "val_loader": DataLoader(Digits(16, 1)),
        }
        with pytest.warns(
            UserWarning, match="nothing to train"
        ):  # (the run had finished: as the README says)
            exec(compile(block, "README.md", "exec"), names)
        assert Path(names["trainer"].ckpt_path).resolve() == (tmp_path / folder / "last").resolve(), (
            f"run {run}"
        )


def test_a_module_is_called_through_lightnings_forward_or_says_what_to_define(tmp_path):
    from audiotrain import TrainModule

    import mlx.nn as nn

    class Linear(TrainModule):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 3)

        def compute_loss(self, batch):
            x, y = batch
            return mx.mean(nn.losses.cross_entropy(self.fc(x), y)), {}

        def configure_optimizers(self):
            return optim.SGD(learning_rate=0.1)

    class Forward(Linear):
        def forward(self, x):  # Lightning's name for __call__
            return self.fc(x)

    t = trainer(tmp_path, max_epochs=1)
    t.fit(Forward(), make_batches())
    assert t.predict(dataloaders=make_batches(32))[0].shape == (16, 3)  # the default predict_step: self(x)

    t = trainer(tmp_path / "b", max_epochs=1)
    t.fit(Linear(), make_batches())
    with pytest.raises(TypeError, match="defines neither __call__ nor Lightning's forward: define __call__"):
        t.predict(dataloaders=make_batches(32))


def test_after_a_default_fit_best_model_path_is_the_newest_save_as_in_lightning(tmp_path):
    """Lightning's default ModelCheckpoint() keeps the newest save as best: the Lightning idiom
    `load_from_checkpoint(trainer.checkpoint_callback.best_model_path)` loads it (here `last`, the only save
    the default keeps), as ckpt_path="best" does, not an empty path."""
    t = trainer(tmp_path, max_epochs=1, enable_checkpointing=True)
    t.fit(WithHyperparameters(), make_batches())
    cb = t.checkpoint_callback
    assert cb.best_model_path == cb.last_model_path != ""
    assert cb.best_model_score is None and cb.best_k_models == {}
    assert WithHyperparameters.load_from_checkpoint(cb.best_model_path).hparams["hidden"] == 16
    # Resumed from it in a new Trainer, the path is still the newest save.
    later = trainer(tmp_path, max_epochs=2, enable_checkpointing=True)
    later.fit(WithHyperparameters(), make_batches(), ckpt_path="last")
    assert later.checkpoint_callback.best_model_path == later.checkpoint_callback.last_model_path != ""


def test_an_empty_checkpoint_path_says_what_to_pass(tmp_path):
    with pytest.raises(ValueError, match=r"path is empty.*pass a checkpoint folder, or its last_model_path"):
        WithHyperparameters.load_from_checkpoint("")


def test_ckpt_path_last_without_save_last_names_the_newest_checkpoint(tmp_path):
    # Seed 001's tutorial: ModelCheckpoint(monitor=..., save_top_k=2) keeps no `last`, yet checkpoints exist.
    from audiotrain.train.callbacks import ModelCheckpoint

    def top_two():
        return [ModelCheckpoint(dirpath=tmp_path / "ckpts", monitor="val_loss", save_top_k=2)]

    t = quiet_trainer(tmp_path, max_epochs=3, enable_checkpointing=True, callbacks=top_two())
    module = TinyClassifier()
    t.fit(module, make_batches(), make_batches(32))
    newest = max(t.checkpoint_callback.best_k_models, key=lambda p: int(p.rsplit("step=", 1)[1]))
    expected = (
        rf"keeps no `last` \(pass ModelCheckpoint\(\.\.\., save_last=True\).*newest checkpoint is {newest}"
    )
    with pytest.raises(ValueError, match=expected):
        t.fit(module, make_batches(), make_batches(32), ckpt_path="last")
    # A new process finds it on disk.
    again = quiet_trainer(tmp_path, max_epochs=4, enable_checkpointing=True, callbacks=top_two())
    with pytest.raises(ValueError, match=expected):
        again.fit(TinyClassifier(), make_batches(), make_batches(32), ckpt_path="last")


def test_hparams_read_as_attributes_as_in_lightning():
    module = WithHyperparameters(hidden=24)
    assert module.hparams.hidden == 24 and module.hparams["lr"] == 1e-2
    module.hparams.note = "changed"
    assert module.hparams["note"] == "changed"
    with pytest.raises(AttributeError, match=r"hparams has no 'lr_rate' \(it holds hidden, lr, note\)"):
        module.hparams.lr_rate  # noqa: B018


class FromConfig(TinyClassifier):
    def __init__(self, config, seed: int = 0):
        super().__init__(hidden=config["hidden"] if isinstance(config, dict) else config.hidden)
        self.save_hyperparameters(config)  # Lightning: one dict or Namespace instead of argument names
        self.config_type = type(config)  # (what load_from_checkpoint gave back)


@pytest.mark.parametrize("as_namespace", [False, True])
def test_save_hyperparameters_of_a_dict_or_namespace_argument(tmp_path, as_namespace):
    import argparse

    config = {"hidden": 24, "lr": 5e-3}
    module_config = argparse.Namespace(**config) if as_namespace else config
    module = FromConfig(module_config)
    assert module.hparams == config and module.hparams.lr == 5e-3
    t = trainer(tmp_path, max_epochs=1)
    t.fit(module, make_batches())
    loaded = FromConfig.load_from_checkpoint(t.save_checkpoint(tmp_path / "saved"))  # FromConfig(config=...)
    assert loaded.hparams == config and loaded.fc1.weight.shape == (24, 8)
    assert loaded.config_type is type(module_config)  # a Namespace given back as a Namespace, not a dict
    assert all(np.array_equal(a, b) for a, b in zip(weights(module).values(), weights(loaded).values()))
    changed = FromConfig.load_from_checkpoint(tmp_path / "saved", lr=0.5, seed=3)  # an entry, an argument
    assert changed.hparams == {"hidden": 24, "lr": 0.5} and changed.config_type is type(module_config)

    class ListOfValues(TinyClassifier):
        def __init__(self):
            super().__init__()
            self.save_hyperparameters([1, 2])

    with pytest.raises(
        TypeError, match=r"expected __init__ argument names, or one dict or argparse.Namespace"
    ):
        ListOfValues()


@pytest.mark.parametrize(
    "form",
    [
        lambda opt, schedule: [opt],
        lambda opt, schedule: ([opt], [schedule]),
        lambda opt, schedule: ([opt], [{"scheduler": schedule, "interval": "step"}]),
        lambda opt, schedule: ([opt], []),
    ],
)
def test_configure_optimizers_may_return_lightnings_lists_of_one_optimizer(tmp_path, form):
    schedule = WarmupCosineScheduler(peak_lr=0.1, warmup_steps=2, total_steps=6)
    t = trainer(tmp_path, max_epochs=1)
    t.fit(Returns(lambda m: form(optim.SGD(learning_rate=0.1), schedule)), make_batches())
    assert isinstance(t.optimizer, optim.SGD) and t.global_step == 6


@pytest.mark.parametrize("step_dict", [False, True])
def test_the_two_list_form_takes_a_schedule_not_in_a_list(tmp_path, step_dict):
    """Lightning wraps a bare second item, `([opt], schedule)`; it was refused as "returned 2 optimizers"."""
    schedule = WarmupCosineScheduler(peak_lr=0.1, warmup_steps=2, total_steps=6)
    scheduled = {"scheduler": schedule, "interval": "step"} if step_dict else schedule

    def rates(form):
        logger = RecordingLogger()
        t = trainer(tmp_path, max_epochs=2, log_every_n_steps=1, logger=logger)
        t.fit(Returns(lambda m: form(optim.SGD(learning_rate=0.0))), make_batches())
        assert t.global_step == 12
        return [m["learning_rate"] for _, m in logger.metrics if "learning_rate" in m]

    bare = rates(lambda opt: ([opt], scheduled))
    assert bare == rates(lambda opt: ([opt], [scheduled])) and len(set(bare)) > 1  # the schedule applies


@pytest.mark.parametrize(
    "value, match",
    [
        (
            lambda s: {"optimizer": optim.SGD(learning_rate=0.0), "lr_scheduler": s, "monitor": "val_loss"},
            r"'monitor': 'val_loss' is for a metric-driven schedule \(ReduceLROnPlateau\).*"
            r"callbacks=\[audiotrain.train.callbacks.ReduceLROnPlateau\(monitor=",
        ),
        (
            lambda s: {
                "optimizer": optim.SGD(learning_rate=0.0),
                "lr_scheduler": {"scheduler": s, "interval": "step", "monitor": "val_loss"},
            },
            r"lr_scheduler 'monitor': 'val_loss' is for a metric-driven schedule",
        ),
        (
            lambda s: {
                "optimizer": optim.SGD(learning_rate=0.0),
                "lr_scheduler": {"scheduler": s, "intervall": 1},
            },
            r"keys \['intervall'\] that Lightning does not know either",
        ),
        (
            lambda s: ([optim.SGD(learning_rate=0.1), optim.Adam(learning_rate=0.1)], [s]),
            "returned 2 optimizers: one optimizer is supported",
        ),
    ],
)
def test_lightnings_optimizer_settings_mlx_cannot_run_say_why(tmp_path, value, match):
    schedule = WarmupCosineScheduler(peak_lr=0.1, warmup_steps=2, total_steps=6)
    with pytest.raises((TypeError, ValueError), match=match):
        trainer(tmp_path, max_epochs=1).fit(Returns(lambda m: value(schedule)), make_batches())


def _torch_like(module: str, name: str):
    """An object whose type is named as torch's (torch is not installed with the tests)."""
    return type(name, (), {"__module__": module})()


@pytest.mark.parametrize(
    "value, match",
    [
        (
            lambda s: _torch_like("torch.optim.sgd", "SGD"),
            r"got torch.optim.SGD, a torch optimizer, which cannot update MLX arrays: return its "
            r"mlx.optimizers counterpart",
        ),
        (
            lambda s: {"optimizer": _torch_like("torch.optim.adam", "Adam")},
            r"got torch.optim.Adam, a torch optimizer.*optim.AdamW\(\.\.\., bias_correction=True\)",
        ),
        (
            lambda s: {
                "optimizer": optim.SGD(learning_rate=0.1),
                "lr_scheduler": _torch_like("torch.optim.lr_scheduler", "StepLR"),
            },
            r"got torch.optim.lr_scheduler.StepLR, a torch scheduler: .*audiotrain.train.schedulers: "
            r"StepLRScheduler.*is audiotrain.train.callbacks.ReduceLROnPlateau\(mode=.*with a 'monitor'",
        ),
    ],
)
def test_torch_optimizers_and_schedulers_left_in_are_named_as_torch_ones(tmp_path, value, match):
    """They were named "SGD" (also MLX's class) and "StepLR ...: metric-driven schedules (ReduceLROnPlateau)
    are not supported" (audiotrain's ReduceLROnPlateau callback exists)."""
    with pytest.raises(TypeError, match=match):
        trainer(tmp_path, max_epochs=1).fit(Returns(lambda m: value(None)), make_batches())


def test_a_scheduler_dict_with_lightnings_default_monitor_none_is_no_metric_schedule(tmp_path):
    schedule = WarmupCosineScheduler(peak_lr=0.1, warmup_steps=2, total_steps=6)
    scheduled = {"scheduler": schedule, "interval": "step", "monitor": None, "strict": True}
    t = trainer(tmp_path, max_epochs=1)
    t.fit(
        Returns(lambda m: {"optimizer": optim.SGD(learning_rate=0.0), "lr_scheduler": scheduled}),
        make_batches(),
    )
    assert t.global_step == 6 and t.optimizer_config.lr_schedule_name == "warmup_cosine"


def test_the_lr_scheduler_name_names_the_learning_rate_monitors_series(tmp_path):
    from audiotrain.train.callbacks import LearningRateMonitor

    schedule = WarmupCosineScheduler(peak_lr=0.1, warmup_steps=2, total_steps=6)
    logger = RecordingLogger()
    t = trainer(tmp_path, max_epochs=1, log_every_n_steps=1, logger=logger, callbacks=[LearningRateMonitor()])
    scheduled = {"scheduler": schedule, "interval": "step", "name": "my_lr"}
    t.fit(
        Returns(lambda m: {"optimizer": optim.SGD(learning_rate=0.0), "lr_scheduler": scheduled}),
        make_batches(),
    )
    assert "my_lr" in logger.keys() and not any(k.startswith("lr-") for k in logger.keys())


def test_trainer_checkpoint_callback_is_the_first_model_checkpoint(tmp_path):
    from audiotrain.train.callbacks import ModelCheckpoint

    first, second = (
        ModelCheckpoint(dirpath=tmp_path / "a"),
        ModelCheckpoint(dirpath=tmp_path / "b", monitor="x"),
    )
    t = quiet_trainer(tmp_path, max_epochs=1, enable_checkpointing=True, callbacks=[first, second])
    assert t.checkpoint_callback is first and t.checkpoint_callbacks == [first, second]
    assert quiet_trainer(tmp_path, max_epochs=1).checkpoint_callback is None  # checkpointing off


@pytest.mark.parametrize("compile", [True, False])
def test_clip_each_group_clips_each_optimizer_of_a_multioptimizer_by_its_own_norm(tmp_path, compile):
    """A GAN's two Lightning optimizers, ported as one MultiOptimizer, were clipped by one norm of all the
    gradients (the discriminator's large norm scaled the generator's small gradients down too), where
    Lightning's precision plugin clips each optimizer's parameters by their own norm."""
    from audiotrain import OptimizerConfig, TrainModule

    class GAN(TrainModule):
        def __init__(self, each):
            super().__init__()
            self.G, self.D, self.each = nn.Linear(8, 4), nn.Linear(4, 1), each

        def training_step(self, batch, batch_idx):
            return mx.mean(self.D(self.G(batch[0])) ** 2) * 100.0

        def configure_optimizers(self):
            sgd = optim.MultiOptimizer(
                [optim.SGD(1.0), optim.SGD(0.5)], [lambda path, _: path.startswith("G.")]
            )
            return OptimizerConfig(sgd, clip_each_group=self.each)

    def hand_computed(model, x, clip, each):
        _, grads = nn.value_and_grad(model, lambda m: m.training_step((x,), 0))(model)
        grads = {k: np.array(g, dtype=np.float64) for k, g in tree_flatten(grads)}
        before = weights(model)
        groups = [[k for k in grads if k.startswith("G.")], [k for k in grads if k.startswith("D.")]]
        if not each:
            groups = [groups[0] + groups[1]]
        new = {}
        for group in groups:  # (torch's clip_grad_norm_: max_norm / (norm + 1e-6), at most 1)
            scale = min(clip / (np.sqrt(sum((grads[k] ** 2).sum() for k in group)) + 1e-6), 1.0)
            for k in group:
                new[k] = before[k] - (1.0 if k.startswith("G.") else 0.5) * scale * grads[k]
        return new

    from mlx.utils import tree_flatten

    batches = make_batches(8, batch_size=8)
    for each in (True, False):
        mx.random.seed(0)
        model = GAN(each)
        expected = hand_computed(model, batches[0][0], 0.5, each)
        trainer(tmp_path, max_steps=1, gradient_clip_val=0.5, compile=compile).fit(model, batches)
        for k, v in weights(model).items():
            np.testing.assert_allclose(v, expected[k], rtol=0, atol=2e-7, err_msg=f"{k} (each={each})")


# ---------------------------------------------------------------- parameter groups: optim.MultiOptimizer
def _groups(schedule=None):
    """Lightning's parameter groups the MLX way: fc1 (the "backbone") at a tenth of fc2's rate."""
    return optim.MultiOptimizer(
        [optim.Adam(learning_rate=1e-3, bias_correction=True), optim.Adam(learning_rate=schedule or 1e-2)],
        [lambda path, _: path.startswith("fc1.")],
    )


def test_parameter_groups_resume_exactly(tmp_path):
    """The Trainer wrote the checkpoint's optimizer state into `MultiOptimizer.state`, a new dict on each
    read: the resumed run started both groups' Adam over (step 0, zero moments)."""

    def fit(max_steps, ckpt_path=None, save=None):
        mx.random.seed(0)
        module = Returns(lambda m: _groups())
        t = trainer(tmp_path, max_steps=max_steps, compile=True)
        t.fit(module, make_batches(), ckpt_path=ckpt_path)
        if save:
            t.save_checkpoint(save)
        return t, weights(module)

    straight, w_straight = fit(8)
    fit(3, save=tmp_path / "at3")
    resumed, w_resumed = fit(8, ckpt_path=tmp_path / "at3")
    assert [int(o.step) for o in resumed.optimizer.optimizers] == [8, 8]
    for k in w_straight:
        np.testing.assert_array_equal(w_straight[k], w_resumed[k], err_msg=k)


def test_a_non_finite_batch_leaves_parameter_groups_as_they_were(tmp_path):
    """The skip's rollback never reached the groups' optimizers: NaN moments, then NaN weights."""
    batches = make_batches()
    x, y = batches[2]
    batches[2] = (x * float("nan"), y)
    module = Returns(lambda m: _groups())
    t = trainer(tmp_path, max_epochs=1, compile=True)
    t.fit(module, batches)
    assert int(t._train_step.state.arrays["skipped_total"]) == 1
    assert [int(o.step) for o in t.optimizer.optimizers] == [5, 5]
    assert all(np.isfinite(v).all() for v in weights(module).values())


def test_a_schedule_for_parameter_groups_goes_on_each_groups_optimizer(tmp_path):
    schedule = WarmupCosineScheduler(peak_lr=0.1, warmup_steps=2, total_steps=6)
    sched = {"optimizer": _groups(), "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
    with pytest.raises(
        TypeError, match="with a MultiOptimizer: each of its optimizers has its own learning rate"
    ):
        trainer(tmp_path, max_epochs=1).fit(Returns(lambda m: sched), make_batches())
    logger = RecordingLogger()
    from audiotrain.train.callbacks import LearningRateMonitor

    t = trainer(tmp_path, max_epochs=1, logger=logger, log_every_n_steps=1, callbacks=[LearningRateMonitor()])
    t.fit(Returns(lambda m: _groups(schedule)), make_batches())
    rates = [(m["lr-Adam/pg1"], m["lr-Adam/pg2"]) for _, m in logger.metrics if "lr-Adam/pg1" in m]
    np.testing.assert_allclose(rates, [(1e-3, float(schedule(k))) for k in range(6)], rtol=1e-6)


@pytest.mark.parametrize(
    "settings, says",
    [
        ({}, r"stepped once every epoch, .*StepLRScheduler\(1e-4, step_size=2 \* steps_per_epoch\)"),
        (
            {"interval": "step", "frequency": 3},
            r"stepped once every 3 steps, .*multiply its step counts by 3",
        ),
    ],
)
def test_a_per_epoch_schedule_for_parameter_groups_is_told_that_a_learning_rate_counts_steps(
    tmp_path, settings, says
):
    # The refusal said to give each group its schedule as its learning rate, no more: a torch port's
    # StepLR(step_size=2) stepped per epoch, moved there as told, halved the rates every 2 updates.
    sched = {"optimizer": _groups(), "lr_scheduler": {"scheduler": StepLRScheduler(1e-3, 2), **settings}}
    with pytest.raises(TypeError, match=says):
        trainer(tmp_path, max_epochs=1).fit(Returns(lambda m: sched), make_batches())


def test_the_momentum_and_weight_decay_of_parameter_groups_are_named_as_lightnings(tmp_path):
    """They were lr-MultiOptimizer-momentum/pg1: Lightning's `_get_optimizer_stats` puts the stat after the
    group's name (lr-Adam/pg1-momentum), and a monitor= written for it found no series. Then they were
    lr-MultiOptimizer/pg1, a name Lightning never logs: each group is named by its own optimizer's class,
    as Lightning names a torch optimizer's groups (lr-AdamW/pg1)."""
    from audiotrain.train.callbacks import LearningRateMonitor

    logger = RecordingLogger()
    monitor = LearningRateMonitor(log_momentum=True, log_weight_decay=True)
    t = trainer(tmp_path, max_epochs=1, logger=logger, log_every_n_steps=1, callbacks=[monitor])
    groups = optim.MultiOptimizer(
        [optim.AdamW(learning_rate=1e-3, betas=[0.8, 0.99], weight_decay=0.1), optim.SGD(learning_rate=1e-2)],
        [lambda path, _: path.startswith("fc1.")],
    )
    t.fit(Returns(lambda m: groups), make_batches())
    logged = [{k: v for k, v in m.items() if k.startswith("lr-")} for _, m in logger.metrics]
    assert [m for m in logged if m][-1] == pytest.approx(
        {
            "lr-AdamW/pg1": 1e-3,
            "lr-AdamW/pg1-momentum": 0.8,
            "lr-AdamW/pg1-weight_decay": 0.1,
            "lr-SGD/pg2": 1e-2,
            "lr-SGD/pg2-momentum": 0.0,
            "lr-SGD/pg2-weight_decay": 0.0,
        }
    )


# ---------------------------------------------------------------- LearningRateMonitor
def test_the_epoch_learning_rate_is_the_rate_of_that_epochs_updates(tmp_path):
    """At an epoch's start the monitor logged the rate of the previous epoch's last update."""
    from audiotrain.train.callbacks import LearningRateMonitor
    from audiotrain.train.schedulers import StepLRScheduler

    logger = RecordingLogger()
    schedule = StepLRScheduler(0.1, step_size=6, gamma=0.1)  # Lightning's per-epoch StepLR: 6 steps an epoch
    t = trainer(
        tmp_path, max_epochs=3, logger=logger, callbacks=[LearningRateMonitor(logging_interval="epoch")]
    )
    t.fit(Returns(lambda m: optim.SGD(learning_rate=schedule)), make_batches())
    logged = [(step, m["lr-SGD"]) for step, m in logger.metrics if "lr-SGD" in m]
    assert [s for s, _ in logged] == [0, 6, 12]
    np.testing.assert_allclose([v for _, v in logged], [0.1, 0.01, 0.001], rtol=1e-6)
    np.testing.assert_allclose(t.history["learning_rate"], [0.1, 0.01, 0.001], rtol=1e-6)


def test_the_epoch_learning_rate_under_a_per_step_schedule_is_the_epochs_first_updates(tmp_path):
    """The StepLR above is constant within an epoch: a rate one step ahead would have gone unseen. Adam,
    which has no weight decay in MLX, logs 0 for it."""
    from audiotrain.train.callbacks import LearningRateMonitor

    logger = RecordingLogger()
    monitor = LearningRateMonitor(logging_interval="epoch", log_weight_decay=True)
    t = trainer(tmp_path, max_epochs=2, logger=logger, callbacks=[monitor])
    schedule = optim.exponential_decay(0.1, 0.5)  # halved at each update
    t.fit(Returns(lambda m: optim.Adam(learning_rate=schedule)), make_batches())  # 6 steps an epoch
    logged = [(step, m["lr-Adam"], m["lr-Adam-weight_decay"]) for step, m in logger.metrics if "lr-Adam" in m]
    assert logged == [(0, pytest.approx(0.1), 0.0), (6, pytest.approx(0.1 * 0.5**6), 0.0)]


def test_the_learning_rate_monitor_takes_lightnings_arguments(tmp_path):
    from audiotrain.train.callbacks import LearningRateMonitor

    logger = RecordingLogger()
    monitor = LearningRateMonitor(logging_interval=None, log_momentum=True, log_weight_decay=True)
    t = trainer(tmp_path, max_epochs=1, logger=logger, log_every_n_steps=3, callbacks=[monitor])
    t.fit(
        Returns(lambda m: optim.AdamW(learning_rate=1e-3, betas=[0.8, 0.99], weight_decay=0.05)),
        make_batches(),
    )
    logged = [(step, m) for step, m in logger.metrics if "lr-AdamW" in m]
    # None (Lightning's default): an optimizer without lr_scheduler is logged at the epoch start and the
    # logging steps, as Lightning 2.6.6 logs it at either interval.
    assert [step for step, _ in logged] == [0, 3, 6]
    assert logged[0][1] == pytest.approx(
        {"lr-AdamW": 1e-3, "lr-AdamW-momentum": 0.8, "lr-AdamW-weight_decay": 0.05}
    )
    # In callback_metrics too, as Lightning's: EarlyStopping or ModelCheckpoint can monitor the rate
    assert t.callback_metrics["lr-AdamW"] == pytest.approx(1e-3)
    # (None is no longer 'step' since 128b9c3a: the message said "here 'step'")
    with pytest.raises(
        ValueError, match=r"'step', 'epoch' or None \(Lightning's default: each optimizer at its "
    ):
        LearningRateMonitor(logging_interval="batch")


@pytest.mark.parametrize("interval, steps", [("epoch", [0, 6, 12]), ("step", list(range(1, 19)))])
def test_the_learning_rate_monitors_default_interval_is_each_lr_schedulers_own(tmp_path, interval, steps):
    # LearningRateMonitor() (logging_interval=None) logged an "epoch" lr_scheduler's rate at every step;
    # Lightning 2.6.6 logs it at each epoch start only: lr-SGD 0.1, 0.1, 0.05 at steps 0, 6, 12
    # (torch StepLR(step_size=2, gamma=0.5), 6 batches, 3 epochs). A "step" one stays at steps.
    from audiotrain.train.callbacks import LearningRateMonitor
    from audiotrain.train.schedulers import StepLRScheduler

    logger = RecordingLogger()
    t = trainer(tmp_path, max_epochs=3, logger=logger, log_every_n_steps=1, callbacks=[LearningRateMonitor()])
    t.fit(
        Returns(
            lambda m: {
                "optimizer": optim.SGD(learning_rate=0.1),
                "lr_scheduler": {"scheduler": StepLRScheduler(0.1, 2, 0.5), "interval": interval},
            }
        ),
        make_batches(),
    )
    logged = [(step, m["lr-SGD"]) for step, m in logger.metrics if "lr-SGD" in m]
    assert [s for s, _ in logged] == steps
    if interval == "epoch":
        np.testing.assert_allclose([v for _, v in logged], [0.1, 0.1, 0.05], rtol=1e-7)


# ---------------------------------------------------------------- manual optimization
class Automatic(TinyClassifier):
    """A module with automatic optimization: the manual calls are told where they belong."""


class Manual(TinyClassifier):
    def __init__(self):
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        loss, _ = self.compute_loss(batch)
        self.manual_backward(loss)
        opt.step()


def test_a_torch_style_manual_step_is_told_to_pass_the_loss_function(tmp_path):
    """`automatic_optimization = False` was ignored (the Trainer stepped anyway), then refused. Manual
    optimization runs now (tests/test_manual_optimization.py); Lightning's `self.manual_backward(loss)`, a
    loss already computed, is refused at the first step, before any update, saying what MLX takes instead.
    A manual module that never steps trains nothing, as Lightning's (global_step 0)."""

    class FlagOnly(TinyClassifier):
        automatic_optimization = False

    module = Manual()
    before = weights(module)
    with pytest.raises(TypeError, match=r"manual_backward\(array\): MLX differentiates a function"):
        trainer(tmp_path, max_epochs=1).fit(module, make_batches())
    assert all(np.array_equal(before[k], v) for k, v in weights(module).items())  # nothing trained
    module = FlagOnly()
    before = weights(module)
    fit = trainer(tmp_path / "flag", max_epochs=1)
    fit.fit(module, make_batches())
    assert fit.global_step == 0
    assert all(np.array_equal(before[k], v) for k, v in weights(module).items())
    with pytest.raises(
        TypeError, match=r"only inside training_step of a module with .*automatic_optimization"
    ):
        Manual().manual_backward(lambda: mx.array(1.0))
    with pytest.raises(TypeError, match="nothing to step by hand"):
        Manual().lr_schedulers()


def test_truncated_bptt_steps_on_the_module_is_refused_when_fit_starts_saying_what_to_do(tmp_path):
    """Lightning 1's `self.truncated_bptt_steps = 50` was ignored: the fit trained with full backpropagation
    through each batch, and a training_step taking `hiddens` never got one."""

    class Tbptt(TinyClassifier):
        truncated_bptt_steps = 50

        def training_step(self, batch, batch_idx, hiddens=None):
            return self.compute_loss(batch)

    module = Tbptt()
    before = weights(module)
    with pytest.raises(
        TypeError, match=r"Tbptt.truncated_bptt_steps = 50: .* not supported: .*register_buffer\('h'"
    ):
        trainer(tmp_path, max_epochs=1).fit(module, make_batches())
    assert all(np.array_equal(before[k], v) for k, v in weights(module).items())  # nothing trained


def test_toggle_optimizer_is_refused_as_manual_optimization_is_saying_what_to_do():
    """A GAN's `self.toggle_optimizer(opt)` was a bare AttributeError ('... has no attribute
    toggle_optimizer'), as if the port had a typo."""
    for name in ("toggle_optimizer", "untoggle_optimizer"):
        with pytest.raises(TypeError, match=rf"Manual.{name}\(\): .*automatic_optimization = False.*GANs"):
            getattr(Manual(), name)(optim.SGD(learning_rate=0.1))


def test_a_manual_steps_optimizer_calls_are_refused_saying_what_to_do_instead(tmp_path):
    """A Lightning GAN step's `opt.step()` was "'array' object is not callable" (MLX's step counter), or a
    bare KeyError: 'step' for a MultiOptimizer; `opt.zero_grad()` an AttributeError from the MLX optimizer."""

    class Stepping(TinyClassifier):
        def __init__(self, call, multi):
            super().__init__()
            self.call, self.multi = call, multi

        def configure_optimizers(self):
            if self.multi:
                return optim.MultiOptimizer(
                    [optim.SGD(learning_rate=0.1), optim.SGD(learning_rate=0.01)], [lambda p, _: "fc1" in p]
                )
            return optim.SGD(learning_rate=0.1)

        def on_train_batch_end(self, outputs, batch, batch_idx):
            self.call(self.optimizers())

    calls = {"step": lambda opt: opt.step(), "zero_grad": lambda opt: opt.zero_grad()}
    for name, call in calls.items():
        for multi in (False, True):
            with pytest.raises(
                TypeError,
                match=rf"optimizers\(\)\.{name}\(\): only a module with .*automatic_optimization = False",
            ):
                trainer(tmp_path, max_epochs=1).fit(Stepping(call, multi), make_batches())
    with pytest.raises(TypeError, match=r"optimizers\(\)\.toggle_model\(\): only a module with"):
        trainer(tmp_path, max_epochs=1).fit(Stepping(lambda opt: opt.toggle_model(), False), make_batches())


def test_clip_gradients_and_toggled_optimizer_are_refused_naming_the_trainers_clipping():
    """`self.clip_gradients(opt, gradient_clip_val=0.5)` and Lightning 2.5's `self.toggled_optimizer(opt)`
    were bare AttributeErrors ('Manual' object has no attribute ...), as if the port had a typo."""
    with pytest.raises(
        TypeError, match=r"Manual.clip_gradients\(\): .*gradient_clip_val.*clip_each_group=True"
    ):
        Manual().clip_gradients(optim.SGD(learning_rate=0.1), gradient_clip_val=0.5)
    with pytest.raises(
        TypeError, match=r"Manual.toggled_optimizer\(\): .*automatic_optimization = False.*GANs"
    ):
        with Manual().toggled_optimizer(optim.SGD(learning_rate=0.1)):
            pass


def test_unpacking_the_optimizers_as_a_list_is_refused_naming_the_optimizers_of_a_multioptimizer(tmp_path):
    """`opt_g, opt_d = self.optimizers()` (Lightning's list of two) was "cannot unpack non-iterable
    LightningOptimizer object", and `self.optimizers()[0]` "'LightningOptimizer' object is not
    subscriptable"."""
    groups = optim.MultiOptimizer(
        [optim.SGD(learning_rate=0.1), optim.SGD(learning_rate=0.01)], [lambda p, _: "fc1" in p]
    )
    module = Returns(lambda m: groups)
    trainer(tmp_path, max_epochs=1).fit(module, make_batches())
    with pytest.raises(
        TypeError, match=r"one optimizer.*MultiOptimizer.*self.optimizers\(\).optimizers\[0\]"
    ):
        opt_g, opt_d = module.optimizers()
    with pytest.raises(
        TypeError, match=r"one optimizer.*MultiOptimizer.*self.optimizers\(\).optimizers\[0\]"
    ):
        module.optimizers()[0]
    assert [float(o.learning_rate) for o in module.optimizers().optimizers] == pytest.approx([0.1, 0.01])


def test_unpacking_a_single_optimizer_names_it_in_plain_words(tmp_path):
    """`opt_g, opt_d = self.optimizers()` where configure_optimizers gave one AdamW ended its refusal with
    "it is a AdamW"; it says which optimizer it is, and how two are given (a MultiOptimizer)."""
    module = Returns(lambda m: optim.AdamW(learning_rate=0.1))
    trainer(tmp_path, max_epochs=1).fit(module, make_batches())
    with pytest.raises(TypeError) as refused:
        opt_g, opt_d = module.optimizers()
    assert str(refused.value).endswith(
        ": it is one mlx.optimizers.AdamW (two or more, each on its own parameters: return a "
        "MultiOptimizer from configure_optimizers, whose optimizers are self.optimizers().optimizers[i])"
    )


def test_setting_the_learning_rate_of_a_scheduled_optimizer_from_a_hook_is_refused(tmp_path):
    """`self.optimizers().learning_rate = 1.0` in on_train_epoch_start, where the optimizer's rate was a
    schedule, was silently undone at the next update (the schedule sets the rate): epoch 1 trained at the
    schedule's 0.05. A MultiOptimizer's scheduled group likewise."""

    class SetsRate(TinyClassifier):
        def __init__(self, make):
            super().__init__()
            self.make = make

        def configure_optimizers(self):
            return self.make()

        def on_train_epoch_start(self):
            if self.current_epoch == 1:
                self.optimizers().learning_rate = 1.0

    epoch_schedule = lambda: {  # noqa: E731
        "optimizer": optim.SGD(learning_rate=0.1),
        "lr_scheduler": {"scheduler": StepLRScheduler(0.1, step_size=1, gamma=0.5), "interval": "epoch"},
    }
    groups = lambda: optim.MultiOptimizer(  # noqa: E731
        [optim.SGD(learning_rate=0.1), optim.SGD(learning_rate=StepLRScheduler(0.1, step_size=2))],
        [lambda p, _: "fc1" in p],
    )
    for make in (epoch_schedule, groups):
        with pytest.raises(
            TypeError, match=r"learning_rate = 1.0: .*is a schedule.*number as its learning rate"
        ):
            trainer(tmp_path, max_epochs=2).fit(SetsRate(make), make_batches())
    # A rate that is a number is set, as before (ReduceLROnPlateau's way).
    module = SetsRate(lambda: optim.SGD(learning_rate=0.1))
    trainer(tmp_path, max_epochs=2).fit(module, make_batches())
    assert module.optimizers().param_groups[0]["lr"] == 1.0


def test_setting_one_rate_for_a_multioptimizer_whose_groups_differ_is_refused_naming_each_group(tmp_path):
    """`opt.learning_rate = opt.learning_rate * 0.5` in a hook, for an encoder at 0.1 and a head at 0.01,
    gave both groups 0.05 (MLX's MultiOptimizer reads its first group's rate and sets every group's): the
    head's rate rose fivefold without a word."""

    class Halves(TinyClassifier):
        def configure_optimizers(self):
            return optim.MultiOptimizer(
                [optim.SGD(learning_rate=0.1), optim.SGD(learning_rate=0.01)], [lambda p, _: "fc1" in p]
            )

        def on_train_epoch_end(self):
            opt = self.optimizers()
            opt.learning_rate = opt.learning_rate * 0.5

    with pytest.raises(
        TypeError, match=r"learning_rate = .*0.05.*rates differ \(0.1, 0.01\).*optimizers\[0\]"
    ):
        trainer(tmp_path, max_epochs=1).fit(Halves(), make_batches())

    class HalvesEach(Halves):
        def on_train_epoch_end(self):
            for part in self.optimizers().optimizers:
                part.learning_rate = part.learning_rate * 0.5

    module = HalvesEach()
    trainer(tmp_path, max_epochs=1).fit(module, make_batches())
    assert [g["lr"] for g in module.optimizers().param_groups] == pytest.approx([0.05, 0.005])


def test_lr_schedulers_refusal_names_what_replaces_each_way_lightning_steps_a_schedule_by_hand():
    """Lightning's manual-optimization docs step `self.lr_schedulers()` every N batches or epochs, or a
    ReduceLROnPlateau on a metric; the refusal only said how to read the rate, not where those go. The
    rate it pointed to (self.trainer.learning_rate()) was the last update's, not get_last_lr()'s: Lightning
    2.6.6's is the coming update's, which param_groups[0]["lr"] gives."""
    with pytest.raises(TypeError, match=r"nothing to step by hand") as refused:
        Manual().lr_schedulers()
    for named in (
        "'interval'",
        "'frequency'",
        "callbacks.ReduceLROnPlateau(monitor=",
        "MultiOptimizer",
        "get_last_lr()) with self.optimizers().param_groups[0]['lr']",
    ):
        assert named in str(refused.value), named


def test_lr_schedulers_is_none_without_a_schedule_as_in_lightning(tmp_path):
    """`sch = self.lr_schedulers(); if sch is not None: sch.step()` (a common port, in on_train_epoch_end)
    raised "TypeError: ...lr_schedulers(): a schedule here is the optimizer's learning rate" for a module
    whose optimizer has no schedule, where Lightning's gives None and the port goes on. With a schedule it is
    still refused (the compiled update steps it)."""
    seen = []

    class Steps(TinyClassifier):
        def __init__(self, rate):
            super().__init__()
            self.rate = rate

        def configure_optimizers(self):
            return optim.SGD(learning_rate=self.rate)

        def on_train_epoch_end(self):
            try:
                seen.append(self.lr_schedulers())
            except TypeError as err:
                seen.append(str(err))

    trainer(tmp_path, max_epochs=1).fit(Steps(0.1), make_batches())
    trainer(tmp_path, max_epochs=1).fit(Steps(optim.cosine_decay(0.1, 10)), make_batches())
    assert seen[0] is None and "nothing to step by hand" in seen[1]


def test_lr_schedulers_is_none_where_the_trainer_has_no_optimizer_as_in_lightning(tmp_path):
    """Lightning 2.6.6's self.lr_schedulers() is None in setup (before configure_optimizers) and all
    through a validate without fit, whatever configure_optimizers would return. Here both said "TypeError:
    ...lr_schedulers(): a schedule here is the optimizer's learning rate ... nothing to step by hand", in a
    validate-only run that has no optimizer at all. A module no Trainer has is still refused."""
    seen = []

    class Scheduled(TinyClassifier):
        def setup(self, stage):
            seen.append((f"setup {stage}", self.lr_schedulers()))

        def on_validation_epoch_end(self):
            seen.append(("on_validation_epoch_end", self.lr_schedulers()))

        def configure_optimizers(self):
            return [optim.SGD(learning_rate=0.0)], [StepLRScheduler(0.1, 1, 0.5)]

    trainer(tmp_path, max_epochs=1).validate(Scheduled(), make_batches())
    assert seen == [("setup validate", None), ("on_validation_epoch_end", None)]
    seen.clear()
    with pytest.raises(TypeError, match="nothing to step by hand"):  # (a fit's validation: it has one)
        trainer(tmp_path, max_epochs=1).fit(Scheduled(), make_batches(), make_batches())
    assert seen == [("setup fit", None)]


def test_lr_schedulers_with_a_configured_reduce_on_plateau_is_refused_not_none(tmp_path):
    """With {"lr_scheduler": {"scheduler": ReduceLROnPlateau(...), "monitor": ...}}, Lightning 2.6.6's
    self.lr_schedulers() is that ReduceLROnPlateau (type name "ReduceLROnPlateau", automatic and manual
    optimization alike); here it was None, so a port's `self.lr_schedulers().step(metric)` in
    on_train_epoch_end raised "AttributeError: 'NoneType' object has no attribute 'step'". The Trainer
    steps it as a callback: the call is refused saying so."""
    from audiotrain.train.callbacks import ReduceLROnPlateau

    seen = []

    class Plateau(TinyClassifier):
        def configure_optimizers(self):
            plateau = ReduceLROnPlateau(mode="min", factor=0.5, patience=0)
            return {
                "optimizer": optim.SGD(learning_rate=0.1),
                "lr_scheduler": {"scheduler": plateau, "monitor": "train_loss"},
            }

        def on_train_epoch_end(self):
            try:
                seen.append(self.lr_schedulers())
            except TypeError as err:
                seen.append(str(err))

    trainer(tmp_path, max_epochs=1).fit(Plateau(), make_batches())
    assert isinstance(seen[0], str), seen
    assert "ReduceLROnPlateau" in seen[0] and "monitor='train_loss'" in seen[0]
    assert "nothing to step by hand" in seen[0] and "param_groups[0]['lr']" in seen[0]


def test_an_optimizerconfig_inside_lightnings_dict_is_refused_saying_to_return_it_itself(tmp_path):
    """{"optimizer": OptimizerConfig(multi, clip_each_group=True)} said "OptimizerConfig.optimizer must be an
    mlx.optimizers.Optimizer instance ..., got OptimizerConfig", naming neither the method nor the fix."""
    from audiotrain import OptimizerConfig

    groups = optim.MultiOptimizer(
        [optim.SGD(learning_rate=0.1), optim.SGD(learning_rate=0.01)], [lambda p, _: "fc1" in p]
    )
    module = Returns(lambda m: {"optimizer": OptimizerConfig(groups, clip_each_group=True)})
    refused = (
        r"configure_optimizers returned \{'optimizer': OptimizerConfig\(...\)\}: .*return the OptimizerConfig"
    )
    with pytest.raises(TypeError, match=refused):
        trainer(tmp_path, max_epochs=1).fit(module, make_batches())


def test_setting_a_scheduled_groups_rate_through_the_multioptimizers_optimizers_is_refused(tmp_path):
    """`self.optimizers().optimizers[1].learning_rate = 0.5`, the way to one group's rate that the refusals
    name, reached the bare MLX optimizer: where that group's rate was a schedule, the next update undid it
    without a word. The unscheduled group's rate is set."""

    class SetsGroup(TinyClassifier):
        def __init__(self, index):
            super().__init__()
            self.index = index

        def configure_optimizers(self):
            return optim.MultiOptimizer(
                [optim.SGD(learning_rate=0.1), optim.SGD(learning_rate=StepLRScheduler(0.1, step_size=2))],
                [lambda p, _: "fc1" in p],
            )

        def on_train_epoch_start(self):
            self.optimizers().optimizers[self.index].learning_rate = 0.5

    with pytest.raises(TypeError, match=r"learning_rate = 0.5: its learning rate is a schedule"):
        trainer(tmp_path, max_epochs=1).fit(SetsGroup(1), make_batches())
    module = SetsGroup(0)
    trainer(tmp_path, max_epochs=1).fit(module, make_batches())
    assert module.optimizers().param_groups[0]["lr"] == 0.5


def test_a_manual_call_with_automatic_optimization_names_the_trainer_flags_for_what_it_does_by_hand(
    tmp_path,
):
    """A manual step's calls (accumulating by hand, `self.clip_gradients`) made in a module with automatic
    optimization are told that the Trainer does both, as well as how to step by hand."""
    with pytest.raises(TypeError, match="with automatic optimization") as refused:
        Automatic().manual_backward(lambda: mx.array(1.0))
    for named in ("accumulate_grad_batches=N", "gradient_clip_val=", "clip_each_group=True"):
        assert named in str(refused.value), named


def test_a_lightning_ema_callback_swaps_weights_with_state_dict_and_load_state_dict(tmp_path):
    """`pl_module.state_dict()` / `load_state_dict()`, which Lightning EMA callbacks are written with, were
    AttributeErrors."""
    import copy

    from audiotrain.train.callbacks import Callback

    class EMA(Callback):
        def __init__(self):
            self.shadow, self.backup, self.val_losses = None, None, []

        def on_fit_start(self, trainer, pl_module):
            self.shadow = copy.deepcopy(pl_module.state_dict())

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            for k, v in pl_module.state_dict().items():
                self.shadow[k] = self.shadow[k] * 0.5 + v * 0.5

        def on_validation_start(self, trainer, pl_module):
            self.backup = pl_module.state_dict()
            pl_module.load_state_dict(self.shadow)

        def on_validation_end(self, trainer, pl_module):
            self.val_losses.append(float(trainer.callback_metrics["val_loss"]))
            pl_module.load_state_dict(self.backup)

    model, ema = TinyClassifier(lr=0.1), EMA()
    t = trainer(tmp_path, max_epochs=1, callbacks=[ema])
    t.fit(model, make_batches(), make_batches(seed=1))
    names = ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"]
    assert sorted(model.state_dict()) == sorted(weights(model)) == names
    trained = weights(model)  # (the training weights are back after the validation)
    model.load_state_dict(ema.shadow)
    [measured] = trainer(tmp_path / "v").validate(model, make_batches(seed=1))
    assert ema.val_losses == [pytest.approx(measured["val_loss"])]  # (validated with the average)
    assert any(not np.array_equal(trained[k], v) for k, v in weights(model).items())
    with pytest.raises(ValueError, match="fc2.bias"):
        model.load_state_dict({k: v for k, v in ema.shadow.items() if k != "fc2.bias"})
    model.load_state_dict({"fc1.bias": mx.zeros(16)}, strict=False)  # (torch's strict=False: the rest kept)
    now = weights(model)
    assert not now["fc1.bias"].any() and np.array_equal(now["fc2.bias"], ema.shadow["fc2.bias"])
    # As torch's copy into the parameters: the module's dtype kept, numpy arrays taken.
    model.load_state_dict({k: np.array(v.astype(mx.float16)) for k, v in ema.shadow.items()})
    assert {v.dtype for v in model.state_dict().values()} == {mx.float32}


@pytest.mark.filterwarnings("ignore:ModelCheckpoint. the resumed")  # (saved to another folder)
def test_a_lightning_ema_callback_resumed_mid_epoch_equals_the_uninterrupted_run_bit_for_bit(tmp_path):
    """Its shadow weights came back as nested lists: the next update, 0.75 * list, raised a TypeError (and a
    tree_map over them went on with one scalar per element)."""
    from audiotrain.train.callbacks import Callback, ModelCheckpoint

    class EMA(Callback):  # (as written for Lightning: its shadow weights are tensors in state_dict())
        def __init__(self):
            self.shadow, self.updates = None, 0

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            now = pl_module.state_dict()
            old = self.shadow or now
            self.shadow = {k: 0.75 * old[k] + 0.25 * v for k, v in now.items()}
            self.updates += 1

        def state_dict(self):
            return {"shadow": self.shadow, "updates": self.updates}

        def load_state_dict(self, state):
            self.shadow, self.updates = state["shadow"], state["updates"]

    def run(root, ckpt_path=None):
        mx.random.seed(0)
        model, ema = TinyClassifier(lr=0.1), EMA()
        saves = ModelCheckpoint(dirpath=root, every_n_train_steps=4, save_top_k=-1)
        t = trainer(root, max_epochs=2, callbacks=[ema, saves], enable_checkpointing=True)
        t.fit(model, make_batches(), ckpt_path=ckpt_path)
        return ema, weights(model)

    ema, trained = run(tmp_path / "a")
    [mid_epoch] = (tmp_path / "a").glob("*step=4")  # (6 steps an epoch)
    resumed, resumed_trained = run(tmp_path / "b", ckpt_path=mid_epoch)
    assert resumed.updates == ema.updates == 12
    assert all(isinstance(v, mx.array) and v.dtype == mx.float32 for v in resumed.shadow.values())
    for k, v in ema.shadow.items():
        assert np.array(resumed.shadow[k]).tobytes() == np.array(v).tobytes(), k
        assert np.array(resumed_trained[k]).tobytes() == np.array(trained[k]).tobytes(), k


def test_load_state_dict_refuses_a_weight_of_another_shape_with_strict_false_too():
    """torch's load_state_dict refuses a shape that differs whatever `strict` (which is about names only):
    strict=False put a (5, 5) array into a Linear(3, 16)'s weight without a word, the next forward failing."""
    model = TinyClassifier()
    before = weights(model)
    wrong = {"fc1.weight": np.zeros((5, 5), np.float32), "fc2.bias": np.ones(before["fc2.bias"].shape)}
    for strict in (True, False):
        shape = re.escape(str(tuple(before["fc1.weight"].shape)))
        with pytest.raises(ValueError, match=r"fc1.weight.*\(5, 5\).*" + shape):
            model.load_state_dict(wrong, strict=strict)
        assert all(np.array_equal(before[k], v) for k, v in weights(model).items())  # (nothing loaded)


@pytest.mark.parity
def test_load_state_dict_says_how_to_move_the_axes_of_torchs_convolution_weights():
    """A torch state_dict of a HiFi-GAN (weight-normed Conv1d, ConvTranspose1d upsamplers) was refused with
    "size mismatch for c1.weight_v: (4, 1, 3), the module's is (4, 3, 1)" alone: torch keeps the input
    channels before the kernel, MLX last. Loaded after the move the message names, it computes what torch's
    does."""
    from audiotrain import TrainModule

    from reference import require

    torch = require("torch")

    class Convs(TrainModule):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv1d(2, 4, 3)
            self.up = nn.ConvTranspose1d(4, 5, 3)

    tc, tu = torch.nn.Conv1d(2, 4, 3), torch.nn.ConvTranspose1d(4, 5, 3)
    state = {f"c.{k}": v for k, v in tc.state_dict().items()} | {
        f"up.{k}": v for k, v in tu.state_dict().items()
    }
    model = Convs()
    with pytest.raises(
        ValueError,
        match=r"c\.weight: \(4, 2, 3\), the module's is \(4, 3, 2\).*c\.weight looks "
        r"like torch's layout.*a Conv1d weight \(out, in, \*kernel\): tensor\.permute\(0, 2, 1\)",
    ):
        model.load_state_dict(state)
    with pytest.raises(
        ValueError, match=r"ConvTranspose1d weight \(in, out, \*kernel\): tensor\.permute\(1, 2, 0\)"
    ):
        model.load_state_dict({**state, "c.weight": state["c.weight"].permute(0, 2, 1)})
    model.load_state_dict(
        {
            **state,
            "c.weight": state["c.weight"].permute(0, 2, 1),
            "up.weight": state["up.weight"].permute(1, 2, 0),
        }
    )
    x = np.random.default_rng(0).standard_normal((1, 7, 2)).astype(np.float32)
    ours = np.array(model.up(model.c(mx.array(x))))
    theirs = tu(tc(torch.from_numpy(x).permute(0, 2, 1))).permute(0, 2, 1).detach().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_optimizers_gives_the_trainers_optimizer_to_read_from_a_hook(tmp_path):
    rates = []

    class ReadsTheRate(TinyClassifier):
        def on_train_epoch_end(self):
            rates.append(float(self.optimizers().learning_rate))

    trainer(tmp_path, max_epochs=2).fit(ReadsTheRate(lr=0.05), make_batches())
    assert rates == pytest.approx([0.05, 0.05])
    seen = []

    class ReadsAsLightning(TinyClassifier):
        def on_train_epoch_end(self):
            opt = self.optimizers()
            seen.append((opt.param_groups[0]["lr"], isinstance(opt, optim.Optimizer)))
            seen.append(self.optimizers(use_pl_optimizer=False) is self.trainer.optimizer)
            opt.learning_rate = 0.5  # (set through, as before)
            opt.param_groups[0]["lr"] *= 0.02  # (Lightning's habit sets it too)

    t = trainer(tmp_path, max_epochs=2)
    t.fit(ReadsAsLightning(lr=0.05), make_batches())
    # Lightning's way to read the rate (a bare AttributeError), and use_pl_optimizer (a TypeError).
    assert seen == [(pytest.approx(0.05), True), True, (pytest.approx(0.01), True), True]
    with pytest.raises(RuntimeError, match=r"optimizers\(\): no optimizer yet"):
        TinyClassifier().optimizers()


class LogsTheRateInTheStep(TinyClassifier):
    def training_step(self, batch, batch_idx):
        self.log("lr", self.optimizers().param_groups[0]["lr"])  # a Lightning habit
        return super().training_step(batch, batch_idx)


@pytest.mark.parametrize("compile", [True, False])
def test_the_rate_read_from_param_groups_can_be_logged_in_the_training_step(tmp_path, compile):
    # Compiled, param_groups' float() read the rate being traced: a TracedReadError at the first step.
    t = trainer(tmp_path, max_epochs=1, compile=compile, log_every_n_steps=1)
    t.fit(LogsTheRateInTheStep(lr=0.05), make_batches())
    assert t.logged_metrics["lr"] == pytest.approx(0.05)


@pytest.mark.parametrize("form", ["step", "epoch"])
def test_the_rate_a_batch_end_hook_reads_is_the_next_updates_as_lightnings(tmp_path, form):
    """Lightning 2.6.6 (SGD lr 0.1, StepLR(gamma=0.5), 3 updates an epoch), read in on_train_batch_end after
    each of 9 updates: param_groups[0]["lr"] is the next update's rate (its schedulers step before the
    hook). `trainer.learning_rate()` is the rate of the update just made, as its docstring says."""
    read, last = [], []

    class Reads(Returns):
        def on_train_batch_end(self, outputs, batch, batch_idx):
            read.append(round(self.trainer.optimizers[0].param_groups[0]["lr"], 6))
            last.append(round(self.trainer.learning_rate(), 6))

    schedule = StepLRScheduler(0.1, 3 if form == "step" else 1, 0.5)
    value = {
        "optimizer": optim.SGD(learning_rate=0.1),
        "lr_scheduler": {"scheduler": schedule, "interval": form},
    }
    trainer(tmp_path, max_epochs=3).fit(Reads(lambda m: value), make_batches(48))
    assert read == [0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125]  # Lightning 2.6.6's
    assert last == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025]


def test_lightnings_trainer_names_give_what_lightning_gives(tmp_path, monkeypatch):
    """Lightning 2.6's values for the same calls (checked with its Trainer): before fit no module, no
    optimizers, no loaders, the first EarlyStopping, the limits given and 1.0 for the others; after fit the
    module, [optimizer] and the training loader; after test the test loader; `log_dir` the first logger's
    version folder, else `default_root_dir`."""
    from audiotrain import Trainer
    from audiotrain.train.callbacks import EarlyStopping
    from audiotrain.train.loggers import CSVLogger

    stop, later = EarlyStopping("val_loss"), EarlyStopping("val_accuracy")
    t = quiet_trainer(tmp_path, max_epochs=1, callbacks=[stop, later], limit_test_batches=2)
    assert t.early_stopping_callback is stop and t.early_stopping_callbacks == [stop, later]
    assert (t.lightning_module, t.model, t.optimizers) == (None, None, [])
    assert (t.train_dataloader, t.val_dataloaders, t.test_dataloaders) == (None, None, None)
    assert (t.limit_train_batches, t.limit_test_batches, t.limit_predict_batches) == (1.0, 2, 1.0)
    assert t.log_dir == str(tmp_path)  # no logger: the root
    module, train, val, test = TinyClassifier(), make_batches(), make_batches(32), make_batches(32, seed=3)
    t.fit(module, train, val)
    assert t.lightning_module is module and t.model is module
    (seen,) = t.optimizers
    assert seen.optimizer is t.optimizer and isinstance(seen, type(t.optimizer))
    # Lightning's way to read the rate in a callback: the raw MLX optimizer has no param_groups.
    assert seen.param_groups[0]["lr"] == pytest.approx(float(t.optimizer.learning_rate))
    assert t.train_dataloader is train and t.test_dataloaders is None
    t.test(module, test)
    assert t.test_dataloaders is test
    # In (and after) validate, val_dataloaders is that call's loader, as Lightning's: a batch hook reading
    # it (to leave out a padding batch) found None there.
    assert t.val_dataloaders is val  # (fit's)
    seen_in_hook = []
    module.on_validation_batch_end = lambda outputs, batch, batch_idx: seen_in_hook.append(t.val_dataloaders)
    t.validate(module, test)
    assert seen_in_hook and all(loader is test for loader in seen_in_hook) and t.val_dataloaders is test
    assert quiet_trainer(tmp_path).early_stopping_callback is None

    monkeypatch.chdir(tmp_path)
    csv = Trainer(logger=CSVLogger(tmp_path / "csv", name="run"), default_root_dir=tmp_path / "root")
    assert csv.log_dir == str(tmp_path / "csv" / "run" / "version_0")
    assert Trainer(logger=False, default_root_dir=tmp_path / "root").log_dir == str(tmp_path / "root")


def test_predict_dataloaders_is_the_loader_predict_ran_on(tmp_path):
    """A callback reading Lightning's `trainer.predict_dataloaders` (to map a batch back to its files)
    got AttributeError: 'Trainer' object has no attribute 'predict_dataloaders'."""
    t = quiet_trainer(tmp_path, max_epochs=1)
    assert t.predict_dataloaders is None
    module, loader = TinyClassifier(), make_batches(16)
    seen_in_hook = []
    module.on_predict_start = lambda: seen_in_hook.append(t.predict_dataloaders)
    t.predict(module, loader)
    assert seen_in_hook == [loader] and t.predict_dataloaders is loader


def test_val_check_batch_reads_and_sets_the_validation_interval_as_lightnings(tmp_path):
    """`trainer.val_check_batch` raised a bare AttributeError, and a callback setting it (Lightning's
    adaptive-validation idiom) made a new attribute that changed nothing: validation kept its interval."""
    from audiotrain.train import Callback

    class ValidateEveryBatchFromEpoch1(Callback):
        def __init__(self):
            self.read = []

        def on_train_epoch_start(self, trainer, module):
            self.read.append(trainer.val_check_batch)
            if trainer.current_epoch == 1:
                trainer.val_check_batch = 1

    t = quiet_trainer(tmp_path, max_epochs=2, val_check_interval=0.5, num_sanity_val_steps=0)
    with pytest.raises(AttributeError, match="val_check_interval"):
        _ = t.val_check_batch
    module, seen = TinyClassifier(), ValidateEveryBatchFromEpoch1()
    validations = []
    module.on_validation_start = lambda: validations.append(t.global_step)
    t.callbacks.append(seen)
    train = make_batches()
    t.fit(module, train, make_batches(32))
    n = t.num_training_batches
    assert seen.read == [n // 2, n // 2] and t.val_check_batch == 1
    assert validations == [n // 2, 2 * (n // 2)] + list(range(n + 1, 2 * n + 1))
    with pytest.raises(ValueError, match="val_check_batch = 0"):
        t.val_check_batch = 0


@pytest.mark.parametrize("interval, expected", [(1.0, 10), (0.3, 3), (4, 4)])
def test_val_check_batch_is_known_in_on_train_start_as_lightnings(tmp_path, interval, expected):
    """Lightning 2.6.6 gives `trainer.val_check_batch` in on_train_start (10 batches an epoch: 10, 3, 4), as
    this property's own message promised; it raised there, known only from on_train_epoch_start."""
    read = []
    module = TinyClassifier()
    module.on_train_start = lambda: read.append(module.trainer.val_check_batch)
    t = quiet_trainer(tmp_path, max_epochs=1, val_check_interval=interval)
    t.fit(module, make_batches(20, 2), make_batches(4, 2))
    assert read == [expected]


def test_lightnings_device_and_validation_names_answer_or_say_what_to_read(tmp_path):
    """`trainer.num_devices`, `num_nodes`, `device_ids`, `node_rank`, `received_sigterm`,
    `enable_validation` and the module's `on_gpu` (read by callbacks ported from Lightning, e.g. to scale
    the batch size) each raised a bare AttributeError: "'Trainer' object has no attribute 'num_devices'"."""
    import mlx.core as mx

    t = quiet_trainer(tmp_path, max_epochs=1)
    for name in ["device_ids", "node_rank"]:
        with pytest.raises(AttributeError, match=rf"Trainer\.{name}: .*trainer\.world_size"):
            getattr(t, name)
    # Lightning's devices x nodes is the job's processes: what a ported batch-size or learning-rate scaling
    # (lr * trainer.num_devices * trainer.num_nodes) reads.
    assert (t.num_devices, t.num_nodes) == (t.world_size, 1) == (1, 1)
    with pytest.raises(AttributeError, match="trainer.interrupted"):
        _ = t.received_sigterm
    assert not hasattr(t, "device_ids")  # (an AttributeError: Lightning-agnostic code's hasattr stays False)
    module = TinyClassifier()
    assert t.enable_validation is False and module.on_gpu == (mx.default_device().type == mx.DeviceType.gpu)
    seen = []
    module.on_train_start = lambda: seen.append((t.enable_validation, module.on_gpu))
    t.fit(module, make_batches(), make_batches(32))
    assert seen == [(True, t.device == mx.gpu)]
    off = quiet_trainer(tmp_path, max_epochs=1, limit_val_batches=0)
    module.on_train_start = lambda: seen.append(off.enable_validation)
    off.fit(module, make_batches(), make_batches(32))
    assert seen[-1] is False


@pytest.mark.parametrize("stage", ["validate", "test", "predict"])
def test_lightnings_evaluation_loop_objects_say_what_to_read(tmp_path, stage):
    """`trainer.validate_loop` (and `test_loop`, `predict_loop`), read by callbacks ported from Lightning in
    their setup or teardown hooks, was a bare "'Trainer' object has no attribute 'validate_loop'"."""
    t = quiet_trainer(tmp_path, max_epochs=1)
    counted = "num_val_batches" if stage == "validate" else f"num_{stage}_batches"
    match = rf"Trainer\.{stage}_loop: Lightning's loop object.*trainer\.{counted}"
    if stage == "predict":
        with pytest.raises(AttributeError, match=match):
            getattr(t, f"{stage}_loop")
        assert not hasattr(t, f"{stage}_loop")
    else:  # (its batch_progress is Lightning's: tests/test_loop_progress.py)
        with pytest.raises(AttributeError, match=match):
            getattr(t, f"{stage}_loop").dataloaders  # noqa: B018
        assert getattr(t, f"{stage}_loop").batch_progress.total.completed == 0
    assert getattr(t, counted) is not None  # (what it names is there)


def test_enable_validation_answers_in_fits_setup_as_in_lightning(tmp_path):
    """A callback ported from Lightning that sizes its work in `setup("fit")` by `trainer.enable_validation`
    read False there with a validation loader passed (True only from `on_fit_start` on). Lightning's is True
    in `setup` already: the loader passed, or a datamodule's `val_dataloader`, is known before it is asked
    for; a datamodule without one, or `limit_val_batches=0`, is False."""
    from audiotrain import DataModule
    from audiotrain.train import Callback

    seen = []

    class Reads(Callback):
        def setup(self, trainer, module, stage):
            seen.append(trainer.enable_validation)

    class WithVal(DataModule):
        def train_dataloader(self):
            return make_batches()

        def val_dataloader(self):
            return make_batches(32)

    class TrainOnly(DataModule):
        def train_dataloader(self):
            return make_batches()

    quiet_trainer(tmp_path, max_epochs=1, callbacks=[Reads()]).fit(
        TinyClassifier(), make_batches(), make_batches(32)
    )
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[Reads()]).fit(TinyClassifier(), datamodule=WithVal())
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[Reads()]).fit(TinyClassifier(), datamodule=TrainOnly())
    quiet_trainer(tmp_path, max_epochs=1, callbacks=[Reads()]).fit(TinyClassifier(), make_batches())
    off = quiet_trainer(tmp_path, max_epochs=1, callbacks=[Reads()], limit_val_batches=0)
    off.fit(TinyClassifier(), make_batches(), make_batches(32))
    assert seen == [True, True, False, False, False]


def test_reported_metrics_answer_lightnings_item_idiom(tmp_path):
    """`trainer.callback_metrics["val_loss"].item()` (sweep scripts, Optuna's pruning callback) raised
    AttributeError: 'float' object has no attribute 'item'."""
    import json

    t = trainer(tmp_path, max_epochs=1)
    t.fit(TinyClassifier(), make_batches(32), make_batches(16, seed=1))
    value = t.callback_metrics["val_loss"]
    assert isinstance(value, float) and value.item() == float(value)
    assert t.logged_metrics["val_loss"].item() == float(t.logged_metrics["val_loss"])
    (scores,) = t.validate(t.module, make_batches(16, seed=1))
    assert scores["val_loss"].item() == pytest.approx(value)
    assert json.loads(json.dumps(t.callback_metrics))["val_loss"] == float(value)  # (still plain JSON)


def test_the_stage_methods_and_save_checkpoint_take_lightnings_keywords(tmp_path):
    t = trainer(tmp_path, max_epochs=1)
    model = TinyClassifier()
    t.fit(model, make_batches(), weights_only=False)
    saved = t.save_checkpoint(filepath=tmp_path / "saved", weights_only=None, storage_options=None)
    assert saved == tmp_path / "saved" and (tmp_path / "saved").is_dir()
    t.save_checkpoint(tmp_path / "weights", True, None)  # Lightning's positional order
    loader = make_batches(32)
    assert t.validate(model, dataloaders=loader, weights_only=False)[0]["val_loss"] > 0
    assert t.test(model, loader, tmp_path / "saved", False, None, True)[0]["test_loss"] > 0
    assert len(t.predict(model, dataloaders=loader, ckpt_path=tmp_path / "weights", weights_only=True)) == 2
    fresh = trainer(tmp_path / "again", max_epochs=2)
    fresh.fit(TinyClassifier(), make_batches(), None, None, tmp_path / "saved", None)
    assert fresh.current_epoch == 2
    # Lightning 2.6.6 raises TypeError here ("... with `storage_options` arg is not supported for
    # `TorchCheckpointIO`"), so code that catches it there catches it here too.
    with pytest.raises(TypeError, match=r"storage_options=\{'anon': True\}\): Lightning's options"):
        t.save_checkpoint(tmp_path / "s3", storage_options={"anon": True})
    with pytest.raises(TypeError, match="give the path once"):
        t.save_checkpoint(tmp_path / "a", filepath=tmp_path / "b")
    with pytest.raises(TypeError, match=r"Trainer.validate: weights_only must be True, False or None"):
        t.validate(model, loader, weights_only="yes")


def test_lightnings_rank_print_and_loop_members_on_the_module_and_trainer(tmp_path, capsys):
    from audiotrain.train.callbacks import Callback, ProgressBar

    class Ranked(TinyClassifier):
        def on_train_start(self):
            # flush=True, as Lightning code passes it
            self.print("rank", self.global_rank, self.local_rank, sep=":", flush=True)

    class Watch(Callback):
        def __init__(self):
            self.last, self.sanity = [], []

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.last.append(trainer.is_last_batch)

        def on_sanity_check_start(self, trainer, module):
            self.sanity.append(trainer.num_sanity_val_batches)

        def on_train_epoch_start(self, trainer, module):
            self.last.append(("epoch start", trainer.is_last_batch))

    model, watch = Ranked(), Watch()
    model.print("before", "fit")  # without a Trainer: Python's print
    assert (model.global_rank, model.local_rank) == (0, 0)
    t = quiet_trainer(tmp_path, max_epochs=2, callbacks=[watch], num_sanity_val_steps=5)
    assert t.progress_bar_callback is None and t.num_sanity_val_batches == 0 and not t.is_last_batch
    t.fit(model, make_batches(96), make_batches(48))  # 6 training and 3 validation batches
    t.print("after", "fit", flush=True)  # (print's keywords, as Lightning's Trainer.print passes them on)
    assert capsys.readouterr().out.splitlines() == ["before fit", "rank:0:0", "after fit"]
    start = [("epoch start", False)]  # (not the previous epoch's last batch, as in Lightning)
    assert watch.last == (start + [False] * 5 + [True]) * 2 and watch.sanity == [3]
    assert t.num_sanity_val_batches == 3
    shown = quiet_trainer(tmp_path, enable_progress_bar=True, num_sanity_val_steps=-1)
    assert isinstance(shown.progress_bar_callback, ProgressBar)


@pytest.mark.parametrize(
    "flags, expected",
    [({"num_sanity_val_steps": -1}, 3), ({"fast_dev_run": True, "num_sanity_val_steps": 2}, 0)],
)
def test_num_sanity_val_batches_is_every_batch_for_minus_one_and_none_under_fast_dev_run(
    tmp_path, flags, expected
):
    from audiotrain.train.callbacks import Callback

    seen = []

    class Watch(Callback):
        def on_fit_start(self, trainer, module):
            seen.append(trainer.num_sanity_val_batches)

    quiet_trainer(tmp_path, max_epochs=1, callbacks=[Watch()], **flags).fit(
        TinyClassifier(), make_batches(96), make_batches(48)
    )  # 3 validation batches
    assert seen == [expected]


def test_an_explicit_ckpt_path_is_what_a_stage_without_a_model_scores(tmp_path):
    """Only ckpt_path=None falls back to the best checkpoint of the last fit (with Lightning's warning):
    `validate(ckpt_path="last")` scores the last weights, silently."""
    import warnings

    from audiotrain.train.callbacks import ModelCheckpoint

    class BestFirst(TinyClassifier):  # the best checkpoint is the first epoch's, not the last
        def on_validation_epoch_end(self):
            self.log("val_score", -float(self.trainer.current_epoch))

    monitored = ModelCheckpoint(dirpath=tmp_path / "ck", monitor="val_score", mode="max", save_last=True)
    t = quiet_trainer(tmp_path, max_epochs=3, enable_checkpointing=True, callbacks=[monitored])
    module, val = BestFirst(lr=0.05), make_batches(32, seed=1)
    t.fit(module, make_batches(), val)
    (current,) = t.validate(module, val)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (last,) = t.validate(dataloaders=val, ckpt_path="last")
    assert last == current and not [w for w in caught if "best model" in str(w.message)]
    with pytest.warns(UserWarning, match="the best model of the previous fit will be used"):
        (default,) = t.validate(dataloaders=val)
    assert default == t.validate(dataloaders=val, ckpt_path="best")[0] != last


class CountsBatches(TinyClassifier):
    """Keeps the batch indices it trained on in a list attribute, as Lightning code keeps lists."""

    def __init__(self, name):
        super().__init__()
        self.name = name
        setattr(self, name, [])

    def on_train_batch_end(self, outputs, batch, batch_idx):
        getattr(self, self.name).append(int(batch_idx))


def test_a_list_attribute_that_grows_while_training_is_named_with_the_way_out(tmp_path):
    # MLX's nn.Module counts a list attribute as part of the parameter tree: its growth broke the next
    # eager update with a bare IndexError inside mlx.utils.tree_map.
    t = trainer(tmp_path, max_epochs=1, compile=False)
    with pytest.raises(RuntimeError, match=r"CountsBatches\.seen grew or shrank.*self\._seen = \[\]"):
        t.fit(CountsBatches("seen"), make_batches(48))
    # The way the message gives: a name with a leading underscore is left out of the parameters.
    module = CountsBatches("_seen")
    trainer(tmp_path / "hidden", max_epochs=1, compile=False).fit(module, make_batches(48))
    assert module._seen == [0, 1, 2]


class RecordsInADict(TinyClassifier):
    """Keeps its records in a dict attribute of lists, `self.<name> = {"steps": []}`."""

    def __init__(self, name):
        super().__init__()
        self.name = name
        setattr(self, name, {"steps": []})

    def on_train_batch_end(self, outputs, batch, batch_idx):
        getattr(self, self.name)["steps"].append(int(batch_idx))


def test_a_dict_of_lists_that_grows_while_training_is_named_with_a_way_out_that_works(tmp_path):
    # The message said to rename it "self.rec._steps = []": a key of the dict, which MLX counts all the
    # same (and not Python a dict takes); the attribute to rename is the module's, `rec`.
    t = trainer(tmp_path, max_epochs=1, compile=False)
    with pytest.raises(RuntimeError, match=r"RecordsInADict\.rec\.steps grew.*\(self\._rec = \{\.\.\.\}\)"):
        t.fit(RecordsInADict("rec"), make_batches(48))
    module = RecordsInADict("_rec")
    trainer(tmp_path / "hidden", max_epochs=1, compile=False).fit(module, make_batches(48))
    assert module._rec == {"steps": [0, 1, 2]}


class KeepsBatchArrays(TinyClassifier):
    """Appends an array to a list attribute after each batch; with `two_optimizers`, Lightning's parameter
    groups as one MultiOptimizer."""

    def __init__(self, two_optimizers):
        super().__init__()
        self.two_optimizers = two_optimizers
        self.seen = []

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.seen.append(mx.array(float(batch_idx)))

    def configure_optimizers(self):
        if not self.two_optimizers:
            return super().configure_optimizers()
        first_layer = lambda path, _: path.startswith("fc1.")  # noqa: E731
        return optim.MultiOptimizer(
            [optim.Adam(learning_rate=1e-3), optim.SGD(learning_rate=1e-2)], [first_layer]
        )


@pytest.mark.parametrize("two_optimizers", [False, True])
@pytest.mark.parametrize("compile", [True, False])
def test_an_array_appended_to_a_list_attribute_is_named_and_the_weights_survive(
    tmp_path, compile, two_optimizers
):
    # Compiled, the second step traced again for the grown tree without a snapshot of the state: the
    # explanation was lost under a raw "Attempting to eval an array without a primitive" from fit's end, and
    # the module's weights were left as placeholders. Under MLX's MultiOptimizer (whose own state is only
    # {"states": [...]}) the eager step ended in a bare KeyError: 'seen'.
    module = KeepsBatchArrays(two_optimizers)
    t = trainer(tmp_path, max_epochs=1, compile=compile)
    with pytest.raises(RuntimeError, match=r"KeepsBatchArrays\.seen grew or shrank"):
        t.fit(module, make_batches(48))
    assert np.isfinite(np.array(module.fc1.weight)).all()  # (the weights can still be read and saved)


class KeepsPlainLosses(TinyClassifier):
    """A Lightning habit: each batch's loss kept as a number in a list attribute by a hook."""

    def __init__(self):
        super().__init__()
        self.losses = []

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.losses.append(float(outputs["loss"]))


def test_a_hook_keeping_numbers_in_a_list_attribute_does_not_snapshot_the_state_at_every_step(
    tmp_path, monkeypatch
):
    # The list grows at every batch, but by numbers, not arrays: MLX's trace is unchanged. The compiled step
    # still copied the model's and optimizer's whole structure at every step (a walk of thousands of
    # containers in a big model: +40% a step for a 50-block MLP), as if the tree might have new arrays.
    import audiotrain.train.trace_guard as trace_guard

    snapshots = []  # (one walk of the module's containers per snapshot)
    walk = trace_guard._containers
    monkeypatch.setattr(trace_guard, "_containers", lambda tree: snapshots.append(1) or walk(tree))
    module = KeepsPlainLosses()
    trainer(tmp_path, max_epochs=1).fit(module, make_batches(96))  # 6 steps
    assert len(module.losses) == 6
    snapshots_with_the_hook = len(snapshots)
    snapshots.clear()
    trainer(tmp_path, max_epochs=1).fit(TinyClassifier(), make_batches(96))
    assert snapshots_with_the_hook == len(snapshots)  # (those of the first traces only)


class KeepsStepOutputs(TinyClassifier):
    """Lightning 2's replacement for training_epoch_end: the step's losses kept in a list attribute, their
    mean logged at the epoch's end."""

    def __init__(self, name):
        super().__init__()
        self.name = name
        setattr(self, name, [])

    def training_step(self, batch, batch_idx):
        loss, _ = self.compute_loss(batch)
        getattr(self, self.name).append(loss)
        return loss

    def on_train_epoch_end(self):
        kept = getattr(self, self.name)
        self.log("kept_mean", mx.stack(kept).mean())
        kept.clear()


@pytest.mark.parametrize("name", ["training_step_outputs", "_training_step_outputs"])
def test_lightnings_training_step_outputs_are_explained_when_compiled_and_work_eager(tmp_path, name):
    # Compiled, the list named as Lightning's ended the second step in a raw '[eval] Attempting to eval an
    # array without a primitive' with the weights lost; with a leading underscore (the way the old message
    # gave) the next epoch failed in a raw broadcast ValueError, the weights lost too.
    module = KeepsStepOutputs(name)
    with pytest.raises(RuntimeError, match=rf"KeepsStepOutputs\.training_step added to self\.{name} while"):
        trainer(tmp_path, max_epochs=2).fit(module, make_batches(48))
    assert np.isfinite(np.array(module.fc2.weight)).all()  # (the weights can still be read and saved)
    if name.startswith("_"):  # as the message says, without compile the idiom works
        t = trainer(tmp_path / "eager", max_epochs=1, compile=False)
        t.fit(KeepsStepOutputs(name), make_batches(48))
        assert t.callback_metrics["kept_mean"] == pytest.approx(t.history["train_loss"][-1], rel=1e-5)


class SequentialWithGroups(TinyClassifier):
    """Lightning's two parameter groups over an nn.Sequential: the first layer trains, the rest is held."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
        del self.fc1, self.fc2, self.norm, self.drop

    def __call__(self, x):
        return self.net(x)

    def configure_optimizers(self):
        first_layer = lambda path, _: path.startswith("net.layers.0.")  # noqa: E731
        return optim.MultiOptimizer(
            [optim.Adam(learning_rate=1e-2), optim.SGD(learning_rate=0.0)], [first_layer]
        )


@pytest.mark.parametrize(("compile", "nonfinite_guard"), [(True, True), (False, True), (True, False)])
def test_a_multi_optimizer_may_split_the_layers_of_a_sequential(tmp_path, compile, nonfinite_guard):
    # MLX's MultiOptimizer joins its optimizers' new weights with tree_merge, which failed on the list of
    # layers split between them (the ReLU at index 1 has none): a raw "Trees contain elements at the same
    # locations but no merge function was provided" at the first step.
    module = SequentialWithGroups()
    before = weights(module)
    t = trainer(tmp_path, max_epochs=1, compile=compile, nonfinite_guard=nonfinite_guard)
    t.fit(module, make_batches(48))
    after = weights(module)
    assert not np.allclose(after["net.layers.0.weight"], before["net.layers.0.weight"])  # Adam's group
    np.testing.assert_array_equal(after["net.layers.2.weight"], before["net.layers.2.weight"])  # lr 0


@pytest.mark.parametrize("name", ["lr_scheduler_configs", "lr_schedulers"])
def test_a_callback_reading_lightnings_list_of_schedulers_is_told_where_the_rate_is(tmp_path, name):
    """A Lightning callback that reads `trainer.lr_scheduler_configs[0].scheduler` (Lightning 1's
    `trainer.lr_schedulers`) to log or adjust the rate got "'Trainer' object has no attribute ...", which says
    nothing of where the schedule went. The AttributeError (hasattr stays False) now says it."""
    from audiotrain.train import Callback

    said = []

    class ReadsSchedulers(Callback):
        def on_train_start(self, trainer, module):
            with pytest.raises(AttributeError) as error:
                getattr(trainer, name)
            said.append(str(error.value))
            assert not hasattr(trainer, name)

    schedule = WarmupCosineScheduler(peak_lr=0.1, warmup_steps=2, total_steps=6)
    returned = {
        "optimizer": optim.SGD(learning_rate=0.0),
        "lr_scheduler": {"scheduler": schedule, "interval": "step"},
    }
    trainer(tmp_path, max_epochs=1, callbacks=[ReadsSchedulers()]).fit(
        Returns(lambda m: returned), make_batches()
    )
    [message] = said
    assert f"Trainer.{name}" in message and "trainer.learning_rate()" in message
    assert "LearningRateMonitor" in message and "optimizer_config" in message


def test_load_state_dict_with_strict_false_ignores_names_the_module_lacks_as_torch_does():
    """A torch `nn.Sequential`'s names (`0.weight`) and a name under a weight (`fc1.weight.extra`) are
    unexpected keys, which torch's strict=False ignores: MLX raised a bare `KeyError: 0` for the first and
    turned `fc1.weight` into a dict for the second, the module broken for its next forward."""
    model = TinyClassifier()
    before = weights(model)
    new_bias = np.full(before["fc2.bias"].shape, 0.5, np.float32)
    state = {"0.weight": np.zeros((2, 2), np.float32), "fc1.weight.extra": np.zeros(2, np.float32)}
    model.load_state_dict({"0.weight": np.zeros((2, 2), np.float32)}, strict=False)
    result = model.load_state_dict({**state, "fc2.bias": new_bias}, strict=False)
    assert sorted(result.unexpected_keys) == sorted(state)  # (torch's result, checked after a load)
    assert sorted(result.missing_keys) == ["fc1.bias", "fc1.weight", "fc2.weight"]
    after = weights(model)
    assert set(after) == set(before)
    assert np.array_equal(after["fc2.bias"], new_bias)
    assert np.array_equal(after["fc1.weight"], before["fc1.weight"])


def test_load_state_dict_with_strict_names_the_missing_and_unexpected_keys_and_a_common_prefix():
    """torch lists missing and unexpected keys together; MLX named only the unexpected ones. A Lightning
    module's `state_dict()` holding this module as `self.model` prefixes every name with `model.`: said."""
    model = TinyClassifier()
    state = weights(model)
    renamed = {**{k: v for k, v in state.items() if k != "fc2.bias"}, "fc2.b": state["fc2.bias"]}
    names = r"TinyClassifier.load_state_dict\(\).*missing.*fc2\.bias.*unexpected.*fc2\.b"
    with pytest.raises(ValueError, match=names):
        model.load_state_dict(renamed)
    with pytest.raises(ValueError, match=r"every name starts with 'model\.'"):
        model.load_state_dict({"model." + k: v for k, v in state.items()})


def test_load_state_dict_given_a_path_or_a_value_that_is_no_array_says_what_it_takes(tmp_path):
    """A weights file's path gave `AttributeError: 'str' object has no attribute 'items'`, and a None value
    MLX's `incompatible function arguments`: both now a TypeError naming what to pass."""
    model = TinyClassifier()
    with pytest.raises(TypeError, match=r"takes a dict of name -> array.*load_file"):
        model.load_state_dict(str(tmp_path / "model.safetensors"))
    with pytest.raises(TypeError, match=r"'fc2\.bias'.*NoneType"):
        model.load_state_dict({**weights(model), "fc2.bias": None})


def test_load_from_checkpoint_given_weights_another_tool_wrote_says_to_load_them_by_name(tmp_path):
    """A torch or Hugging Face `model.safetensors` given to `load_from_checkpoint` was answered "give the
    folder it is in", a folder that is no checkpoint either: now it says how such weights load."""
    from safetensors.numpy import save_file

    hf_folder = tmp_path / "hf_model"
    hf_folder.mkdir()
    weights_saved = weights(TinyClassifier())
    save_file(weights_saved, str(hf_folder / "model.safetensors"))
    # (72fbaa1e: MLX's own mx.load reads any safetensors, torch's or MLX's, without torch; it said
    # safetensors.torch.load_file before.)
    with pytest.raises(Exception, match=r"model\.load_state_dict\(mx\.load\(") as error:
        TinyClassifier.load_from_checkpoint(hf_folder / "model.safetensors")
    assert "give the folder it is in" not in str(error.value)
    model = TinyClassifier()  # the advice, followed, loads them
    model.load_state_dict(mx.load(str(hf_folder / "model.safetensors")))
    assert np.array_equal(np.array(model.fc1.weight), weights_saved["fc1.weight"])


def test_the_readme_describes_a_checkpoint_as_plain_safetensors_and_json_read_it(tmp_path):
    """A user moving weights to another tool found the files listed but not what they hold: the names, the
    optimizer's layout, trainer_state.json's version field. README now says; checked here on a real save."""
    import json

    from safetensors.numpy import load_file

    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    t = quiet_trainer(tmp_path, max_epochs=1, enable_checkpointing=True)
    model = TinyClassifier()
    t.fit(model, make_batches())
    folder = Path(t.checkpoint_callback.last_model_path)
    state = json.loads((folder / "trainer_state.json").read_text())
    described = f'`"format": "{state["format"]}"` and `"format_version": {state["format_version"]}`'
    assert described in readme
    for name in ("progress", "history", "hyper_parameters", "versions"):
        assert f"`{name}`" in readme and name in state
    assert set(load_file(str(folder / "model.safetensors"))) == set(model.state_dict())
    optimizer = set(load_file(str(folder / "optimizer.safetensors")))
    assert {"step", "learning_rate", "fc1.weight.m", "fc1.weight.v"} <= optimizer


def test_ckpt_path_best_in_a_new_trainer_names_the_monitored_best_rather_than_take_the_newest(tmp_path):
    """A new Trainer (a new process) over a run whose ModelCheckpoint ranked by a metric: its default
    ModelCheckpoint monitors none, so "best" was the newest `last` on disk, and validate(ckpt_path="best")
    silently scored the last epoch's weights, not the best's. Lightning refuses "best" with nothing saved
    yet; here the refusal names the run's best, recorded in that `last`."""
    from audiotrain.train.callbacks import ModelCheckpoint

    class RanksTheFirstEpochBest(TinyClassifier):
        def on_validation_epoch_end(self):
            self.log("val_score", -float(self.current_epoch))

    ranked = ModelCheckpoint(monitor="val_score", mode="max", save_last=True)
    first = quiet_trainer(tmp_path, max_epochs=3, enable_checkpointing=True, callbacks=[ranked])
    first.fit(RanksTheFirstEpochBest(lr=0.05), make_batches(), make_batches(32, seed=1))
    assert Path(ranked.best_model_path).name.startswith("epoch=0-")
    later = quiet_trainer(tmp_path, enable_checkpointing=True)
    with pytest.raises(ValueError, match=re.escape(ranked.best_model_path)):
        later.validate(TinyClassifier(), make_batches(32, seed=1), ckpt_path="best")
    (last,) = later.validate(TinyClassifier(), make_batches(32, seed=1), ckpt_path="last")
    (best,) = later.validate(TinyClassifier(), make_batches(32, seed=1), ckpt_path=ranked.best_model_path)
    assert best["val_loss"] != last["val_loss"]


def test_ckpt_path_last_with_nothing_saved_names_the_folder_it_looked_in(tmp_path):
    """A new Trainer's validate(ckpt_path="last") with no run in its folder said only 'nothing saved yet;
    pass a checkpoint folder': not where it had looked (a wrong default_root_dir, a run elsewhere)."""
    from audiotrain import Trainer

    t = Trainer(default_root_dir=tmp_path / "elsewhere", enable_progress_bar=False)
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "elsewhere" / "checkpoints"))):
        t.validate(TinyClassifier(), make_batches(32), ckpt_path="last")


def test_example_input_array_is_an_attribute_not_a_weight_that_trains(tmp_path):
    """`self.example_input_array = mx.ones((2, 8))` in __init__ (Lightning's idiom) made the example a
    trainable parameter: AdamW's weight decay shrank it (sum 16 -> about 10.6), the summary counted it and
    checkpoints held it. Lightning keeps it as a plain attribute (None until set)."""
    from mlx.utils import tree_flatten

    class WithExample(TinyClassifier):
        def __init__(self):
            super().__init__()
            self.example_input_array = mx.ones((2, 8))

        def configure_optimizers(self):
            return optim.AdamW(learning_rate=0.1, weight_decay=0.5)

    assert TinyClassifier().example_input_array is None
    model = WithExample()
    assert "example_input_array" not in dict(tree_flatten(model.trainable_parameters()))
    quiet_trainer(tmp_path, max_epochs=2, compile=False).fit(model, make_batches(32))
    assert model.example_input_array.shape == (2, 8)
    assert np.array_equal(np.array(model.example_input_array), np.ones((2, 8), np.float32))
    assert "example_input_array" not in weights(model)


def test_a_checkpoint_that_held_example_input_array_as_a_weight_still_loads_and_resumes(tmp_path):
    """Until example_input_array became an attribute, a module that set it saved it as a weight, with its
    optimizer slots and among the trainable names: load_from_checkpoint and every resume of such a run were
    refused ("1 unexpected (e.g. example_input_array)", then "has no parameter example_input_array")."""
    import json

    class WithExample(TinyClassifier):
        def __init__(self):
            super().__init__()
            self.example_input_array = mx.ones((2, 8))

    trainer = quiet_trainer(tmp_path / "a", max_epochs=1, compile=False, enable_checkpointing=True)
    trainer.fit(WithExample(), make_batches(32))
    last = Path(trainer.checkpoint_callback.last_model_path)
    # As the earlier release wrote it: the example in the weights, its optimizer state and trainable lists.
    model_file, optimizer_file, state_file = (
        last / name for name in ("model.safetensors", "optimizer.safetensors", "trainer_state.json")
    )
    mx.save_safetensors(str(model_file), {**mx.load(str(model_file)), "example_input_array": mx.ones((2, 8))})
    slots = {
        f"example_input_array{name[len('fc1.bias') :]}": mx.zeros((2, 8))
        for name in mx.load(str(optimizer_file))
        if name.startswith("fc1.bias.")
    }
    mx.save_safetensors(str(optimizer_file), {**mx.load(str(optimizer_file)), **slots})
    state = json.loads(state_file.read_text())
    state["trainable"] = {k: sorted([*v, "example_input_array"]) for k, v in state["trainable"].items()}
    state_file.write_text(json.dumps(state))

    assert WithExample.load_from_checkpoint(last).example_input_array.shape == (2, 8)
    resumed = quiet_trainer(tmp_path / "b", max_epochs=2, compile=False)
    resumed.fit(WithExample(), make_batches(32), ckpt_path=last)
    assert resumed.current_epoch == 2


def test_device_dtype_and_the_torch_exporters_answer_as_lightnings_names(tmp_path):
    """`self.device`, `self.dtype`, `model.to_onnx(...)` and `model.to_torchscript()` were raw AttributeErrors
    ("'TinyClassifier' object has no attribute 'device'"): now the device the Trainer runs on, the weights'
    dtype, and a refusal of the PyTorch exporters that names MLX's export; a module's own value is kept."""
    model = TinyClassifier()
    assert model.device == mx.default_device() and model.dtype == mx.float32
    quiet_trainer(tmp_path, max_epochs=1, compile=False, accelerator="cpu").fit(model, make_batches(32))
    model.set_dtype(mx.bfloat16)
    assert model.device == mx.Device(mx.cpu) and model.dtype == mx.bfloat16
    for export in (lambda: model.to_onnx("m.onnx"), model.to_torchscript):
        with pytest.raises(
            TypeError, match=r"TinyClassifier\.to_.*no ONNX or TorchScript.*mx\.export_function"
        ):
            export()

    class OwnSettings(TinyClassifier):
        def __init__(self):
            super().__init__()
            self.device, self.dtype = "cpu", "float16"

    own = OwnSettings()
    assert (own.device, own.dtype) == ("cpu", "float16")


def test_trainer_strategy_answers_lightnings_calls_and_still_equals_its_name(tmp_path):
    """`trainer.strategy.barrier()` and `trainer.strategy.root_device` (Lightning's Strategy object) were
    AttributeErrors on the string "auto"; now they work in one process, and an unknown name says what
    there is."""
    import copy
    import pickle

    t = quiet_trainer(tmp_path, max_epochs=1, accelerator="cpu")
    assert t.strategy == "auto" and str(t.strategy) == "auto"
    assert t.strategy.root_device == mx.Device(mx.cpu)
    assert (t.strategy.world_size, t.strategy.global_rank, t.strategy.is_global_zero) == (1, 0, True)
    t.strategy.barrier()
    assert t.strategy.broadcast({"folder": "runs/a"}) == {"folder": "runs/a"}
    with pytest.raises(ValueError, match=r"src=1.*rank 0 only"):
        t.strategy.broadcast(1, src=1)
    with pytest.raises(AttributeError, match=r"trainer.strategy \('auto'\) has no 'checkpoint_io'.*barrier"):
        t.strategy.checkpoint_io()
    assert pickle.loads(pickle.dumps(t.strategy)).root_device == t.strategy.root_device
    assert copy.deepcopy(t.strategy) == "auto"


def test_trainer_strategy_reduces_gathers_and_decides_as_lightnings_in_one_process(tmp_path):
    """`trainer.strategy.reduce(x, reduce_op="sum")` (Lightning's test_results pins it) was "AttributeError:
    trainer.strategy ('auto') has no 'reduce'". In one process, as Lightning's single-device strategy, the
    value comes back unchanged; a reduction there is none of is refused at once, not first on a cluster.
    (Two ranks: test_trainer_distributed.py.)"""
    t = quiet_trainer(tmp_path, max_epochs=1)
    x = mx.array([1.0, 2.0])
    assert t.strategy.reduce(x).tolist() == [1.0, 2.0]
    assert t.strategy.reduce(x, reduce_op="sum").tolist() == [1.0, 2.0]
    assert t.strategy.reduce(3.0, reduce_op="max") == 3.0
    assert t.strategy.all_gather(x).tolist() == [1.0, 2.0]
    assert (t.strategy.reduce_boolean_decision(True), t.strategy.reduce_boolean_decision(0, all=False)) == (
        True,
        False,
    )
    with pytest.raises(ValueError, match=r"reduce_op='median'\): expected one of 'mean'"):
        t.strategy.reduce(x, reduce_op="median")
    with pytest.raises(ValueError, match=r"trainer.strategy.reduce\(..., group='g'\).*leave group out"):
        t.strategy.reduce(x, group="g")


def test_trainer_strategy_has_lightnings_distributed_sampler_kwargs_and_num_nodes(tmp_path):
    """Ported DDP code builds its sampler with `DistributedSampler(dataset,
    **trainer.strategy.distributed_sampler_kwargs)` and reads `trainer.strategy.num_nodes`: here
    AttributeErrors. Lightning 2.6.6's DDPStrategy gives {"num_replicas": num_nodes * devices, "rank":
    global_rank} ({'num_replicas': 2, 'rank': 0} measured for devices=2 on rank 0), its single-device
    strategy none (an AttributeError in one CPU process): here one process gives 1 and 0, a sampler's
    values for no sharding. (Two ranks: test_trainer_distributed.py.)"""
    t = quiet_trainer(tmp_path, max_epochs=1)
    assert t.strategy.distributed_sampler_kwargs == {"num_replicas": 1, "rank": 0}
    assert t.strategy.num_nodes == t.num_nodes == 1


def test_trainer_strategy_has_lightnings_optimizers_and_lightning_module(tmp_path):
    """A callback ported from Lightning read `trainer.strategy.optimizers[0]` (Lightning's Trainer.optimizers
    reads it) and `trainer.strategy.lightning_module`: "AttributeError: trainer.strategy ('auto') has no
    'optimizers'". They are the Trainer's: empty and None before fit, then its optimizer and module."""
    seen = []

    class Reads(audiotrain.train.Callback):
        def on_fit_start(self, trainer, module):
            seen.append((trainer.strategy.optimizers, trainer.strategy.lightning_module is module))

    t = quiet_trainer(tmp_path, max_epochs=1, callbacks=[Reads()])
    assert (t.strategy.optimizers, t.strategy.lightning_module) == ([], None)
    t.fit(TinyClassifier(), make_batches())
    [(optimizers, same)] = seen
    assert same and len(optimizers) == 1 and optimizers[0].optimizer is t.optimizer


@pytest.mark.parametrize("default", [False, True])
def test_lightning_1s_optimizer_idx_step_is_refused_when_fit_starts_saying_what_to_do(tmp_path, default):
    """Lightning 1's GAN step `training_step(batch, batch_idx, optimizer_idx)` failed inside the first step
    with "missing 1 required positional argument: 'optimizer_idx'"; with `optimizer_idx=0` it trained
    every weight on the generator's branch alone, without a word. Lightning 2 refuses it when fit starts."""

    class Lightning1Gan(TinyClassifier):
        if default:

            def training_step(self, batch, batch_idx, optimizer_idx=0):
                return self.compute_loss(batch)
        else:

            def training_step(self, batch, batch_idx, optimizer_idx):
                return self.compute_loss(batch)

    module = Lightning1Gan()
    before = weights(module)
    with pytest.raises(
        TypeError,
        match=r"Lightning1Gan.training_step takes optimizer_idx: .* not supported .*MultiOptimizer"
        r".*mx.stop_gradient.*automatic_optimization = False.*manual_backward\(loss_fn\)",
    ):
        trainer(tmp_path, max_epochs=1).fit(module, make_batches())
    assert all(np.array_equal(before[k], v) for k, v in weights(module).items())  # nothing trained


def test_lightnings_dataloader_iter_step_is_refused_when_fit_starts_saying_what_to_do(tmp_path):
    """Lightning 2's `training_step(self, dataloader_iter)` draws its own batches with next(); the compiled
    step here is given one batch, and the first step failed with "'array' object is not an iterator"."""

    class DrawsItsOwn(TinyClassifier):
        def training_step(self, dataloader_iter):
            return self.compute_loss(next(dataloader_iter))

    module = DrawsItsOwn()
    before = weights(module)
    with pytest.raises(TypeError, match=r"DrawsItsOwn.training_step takes dataloader_iter: .* one batch"):
        trainer(tmp_path, max_epochs=1).fit(module, make_batches())
    assert all(np.array_equal(before[k], v) for k, v in weights(module).items())  # nothing trained


class EvaluatesFromDataloaderIter(TinyClassifier):
    def validation_step(self, dataloader_iter):
        batch, _, _ = next(dataloader_iter)
        return self.compute_loss(batch)

    test_step = predict_step = validation_step


@pytest.mark.parametrize("stage", ["fit", "validate", "test", "predict"])
def test_an_evaluation_step_taking_dataloader_iter_is_refused_when_the_stage_starts(tmp_path, stage):
    """Lightning 2.6.6 also gives validation_step / test_step / predict_step a `dataloader_iter`; here they
    are given one batch, and failed in the first step with "'tuple' object is not an iterator"."""
    step = {"fit": "validation_step", "validate": "validation_step"}.get(stage, f"{stage}_step")
    run = getattr(trainer(tmp_path, max_epochs=1), stage)
    args = (make_batches(), make_batches()) if stage == "fit" else (make_batches(),)
    with pytest.raises(
        TypeError, match=rf"EvaluatesFromDataloaderIter.{step} takes dataloader_iter: .* one batch"
    ):
        run(EvaluatesFromDataloaderIter(), *args)


@pytest.mark.parametrize("compile", [True, False])
@pytest.mark.parametrize("interval", ["step", "epoch"])
def test_the_rate_logged_from_param_groups_in_the_step_is_the_rate_its_update_uses(
    tmp_path, compile, interval
):
    """`self.log("lr", self.optimizers().param_groups[0]["lr"])` in training_step logged the rate of the
    update before (MLX's `learning_rate` holds the last update's), one step behind Lightning's, whose
    schedulers step after the update: with a halving schedule, 1.0, 1.0, 0.5 where the updates used 1.0,
    0.5, 0.25."""
    logged, used = [], []

    class Halving(LogsTheRateInTheStep):
        def configure_optimizers(self):
            schedule = optim.exponential_decay(1.0, 0.5)
            return {
                "optimizer": optim.SGD(learning_rate=schedule),
                "lr_scheduler": {"scheduler": schedule, "interval": interval},
            }

        def on_train_batch_end(self, outputs, batch, batch_idx):
            logged.append(self.trainer.logged_metrics["lr"])
            used.append(float(self.optimizers().learning_rate))  # (MLX's: the rate just applied)

    t = trainer(tmp_path, max_epochs=3, compile=compile, log_every_n_steps=1)
    t.fit(Halving(), make_batches(32, batch_size=16))  # 2 batches an epoch
    assert used == pytest.approx(
        [1.0, 0.5, 0.25, 0.125, 2**-4, 2**-5] if interval == "step" else [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    )
    assert logged == pytest.approx(used)


def test_a_manual_call_with_automatic_optimization_says_how_a_gan_updates_in_one_step_or_by_hand(tmp_path):
    """A GAN's manual calls in a module with automatic optimization: one MultiOptimizer with one summed loss
    trains both networks at each step (a plain sum would train the discriminator on the generator's loss
    too), or manual optimization alternates them."""
    with pytest.raises(
        TypeError,
        match=r"for a GAN whose two networks both update at every step, return one optim.MultiOptimizer .*"
        r"mx.stop_gradient\(fake\).*weights under mx.stop_gradient.*for alternating updates \(GANs\) set "
        r"self.automatic_optimization = False .*manual_backward\(loss_fn\)",
    ):
        Automatic().manual_backward(lambda: mx.array(1.0))


def test_lightnings_top_level_names_have_their_counterparts_at_the_top_of_the_package():
    # `import lightning as L` gives L.LightningModule, L.Trainer, L.LightningDataModule, L.Callback and
    # L.seed_everything; a port writes `import audiotrain as L` and finds the same five (Callback was not).
    import audiotrain as L
    from audiotrain import train

    assert L.Callback is train.Callback
    for name in ("TrainModule", "Trainer", "DataModule", "seed_everything"):
        assert getattr(L, name) is getattr(train, name), name


def test_val_check_interval_set_mid_fit_is_checked_as_the_constructors(tmp_path):
    """Since the loop reads val_check_interval at every batch, a callback setting it to 0 stopped the fit
    in a bare "ZeroDivisionError: integer modulo by zero", and np.int64(2) was taken as a fraction (2 epochs):
    validation never ran again. The value is checked as Trainer(val_check_interval=...) is."""
    from audiotrain.train import Callback

    class SetInterval(Callback):
        def __init__(self, value):
            self.value = value

        def on_train_epoch_start(self, trainer, module):
            if trainer.current_epoch == 1:
                trainer.val_check_interval = self.value

    for bad in (0, 1.5):
        t = quiet_trainer(tmp_path / str(bad), max_epochs=2, val_check_interval=0.5, num_sanity_val_steps=0)
        t.callbacks.append(SetInterval(bad))
        with pytest.raises(ValueError, match=f"val_check_interval={bad}"):
            t.fit(TinyClassifier(), make_batches(), make_batches(32))
    t = quiet_trainer(tmp_path / "np", max_epochs=2, val_check_interval=0.5, num_sanity_val_steps=0)
    module, validations = TinyClassifier(), []
    module.on_validation_start = lambda: validations.append(t.global_step)
    t.callbacks.append(SetInterval(np.int64(2)))
    t.fit(module, make_batches(), make_batches(32))
    n = t.num_training_batches
    assert validations == [n // 2, 2 * (n // 2)] + list(range(n + 2, 2 * n + 1, 2))
    t = quiet_trainer(tmp_path / "none", max_epochs=1, val_check_interval=2, check_val_every_n_epoch=None)
    with pytest.raises(ValueError, match="check_val_every_n_epoch=None"):
        t.val_check_interval = 0.5
    # Lightning's val_check_batch = inf (validate at epoch ends) is refused naming what the user set, not the
    # val_check_interval = 1.0 it stands for.
    with pytest.raises(ValueError, match=r"trainer.val_check_batch = inf .*check_val_every_n_epoch=None"):
        t.val_check_batch = float("inf")


def test_the_optimizers_printed_name_its_class_and_settings_as_lightnings(tmp_path):
    """Lightning 2.6.6 prints `self.optimizers()` as "Lightning" + the optimizer's own string: "LightningSGD
    (", "Parameter Group 0", then each setting of the group ("    lr: 0.010000000000000002", after a StepLR
    epoch). Here it printed "<audiotrain.train.module.LightningOptimizer object at 0x...>"."""
    module = Returns(lambda _: ([optim.SGD(learning_rate=0.1, momentum=0.9)], [StepLRScheduler(0.1, 1)]))
    trainer(tmp_path, max_epochs=1, limit_train_batches=2).fit(module, make_batches())
    lines = str(module.optimizers()).splitlines()
    assert lines[:2] == ["LightningSGD (", "Parameter Group 0"] and lines[-1] == ")"
    assert "    momentum: 0.9" in lines
    assert [float(line[8:]) for line in lines if line.startswith("    lr: ")] == pytest.approx([0.01])
    assert repr(module.optimizers()) == str(module.optimizers())
    multi = optim.MultiOptimizer(
        [optim.SGD(0.1), optim.Adam(0.01)], [lambda path, _: path.startswith("fc1.")]
    )
    grouped = Returns(lambda _: multi)
    trainer(tmp_path, max_epochs=1, limit_train_batches=1).fit(grouped, make_batches())
    lines = str(grouped.optimizers()).splitlines()
    assert lines[0] == "LightningMultiOptimizer ("
    assert "Parameter Group 0 (SGD)" in lines and "Parameter Group 1 (Adam)" in lines
    assert "    lr: 0.1" in lines and "    lr: 0.01" in lines


@pytest.mark.parametrize(
    "name, said",
    [
        ("state_dict", r"\.state_dict\(\): an MLX optimizer has no state_dict.*\.state"),
        ("load_state_dict", r"\.load_state_dict\(\): an MLX optimizer has no load_state_dict.*\.state = "),
        ("defaults", r"\.defaults: an MLX optimizer has no defaults.*attributes.*momentum"),
    ],
)
def test_torch_optimizer_attributes_mlx_lacks_say_where_mlx_holds_them(tmp_path, name, said):
    """Lightning 2.6.6's `self.optimizers()` passes torch's `state_dict()`, `load_state_dict()` and `defaults`
    through to the torch optimizer. Here they raised a bare "AttributeError: 'SGD' object has no attribute
    'state_dict'"."""
    module = Returns(lambda _: optim.SGD(learning_rate=0.1, momentum=0.9))
    trainer(tmp_path, max_epochs=1, limit_train_batches=1).fit(module, make_batches())
    with pytest.raises(AttributeError, match=said):
        getattr(module.optimizers(), name)
    assert not hasattr(module.trainer.optimizers[0], name)  # (an AttributeError: hasattr still answers)
    assert module.optimizers().momentum == 0.9


def test_param_groups_assigned_whole_set_each_groups_rate(tmp_path):
    """Lightning 2.6.6's `opt.param_groups = groups` sets the torch optimizer's groups (its own test assigns
    them back unchanged). Here it put a `param_groups` attribute on the MLX optimizer that nothing read: a
    rate changed in it was silently not trained with. Now each group's "lr" is set, with the checks of
    `param_groups[i]["lr"] = ...`; a list of another length, or keys other than "lr", is refused."""
    seen = []

    class Halves(TinyClassifier):
        def configure_optimizers(self):
            return optim.SGD(learning_rate=0.1)

        def on_train_epoch_start(self):
            opt = self.optimizers()
            opt.param_groups = opt.param_groups  # (as Lightning's test: unchanged)
            opt.param_groups = [{"lr": g["lr"] / 2} for g in opt.param_groups]
            seen.append(opt.param_groups[0]["lr"])

    module = Halves()
    trainer(tmp_path, max_epochs=2, limit_train_batches=1).fit(module, make_batches())
    assert seen == pytest.approx([0.05, 0.025])
    assert float(module.optimizers().optimizer.learning_rate) == pytest.approx(0.025)
    assert "param_groups" not in vars(module.optimizers().optimizer)
    scheduled = Returns(lambda _: optim.SGD(learning_rate=optim.cosine_decay(0.1, 10)))
    trainer(tmp_path, max_epochs=1, limit_train_batches=1).fit(scheduled, make_batches())
    scheduled.optimizers().param_groups = scheduled.optimizers().param_groups  # (a schedule's, unchanged)
    for wrong in ([], [{"lr": 0.1}, {"lr": 0.1}], [{"lr": 0.1, "momentum": 0.9}], {"lr": 0.1}):
        with pytest.raises(TypeError, match=r"param_groups = .*: expected a list of 1 dict"):
            module.optimizers().param_groups = wrong
