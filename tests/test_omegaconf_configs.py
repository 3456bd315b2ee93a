"""Hydra / OmegaConf configs (DictConfig, ListConfig) where audiotrain takes dicts and lists, as a Hydra user
passes them: `save_hyperparameters` of a module built from `cfg.model`, reloaded by `load_from_checkpoint`."""

import json

import audiotrain  # noqa: F401  (before mlx)

import pytest
from omegaconf import DictConfig, ListConfig, OmegaConf
from tasks import TinyClassifier, make_batches, quiet_trainer


class FromHydra(TinyClassifier):
    def __init__(self, hidden: int, net, seed: int = 0):
        super().__init__(hidden=hidden)
        self.save_hyperparameters()
        self.net_type, self.depth = type(net), net.depth  # (what load_from_checkpoint gave back)


class WholeConfig(TinyClassifier):
    def __init__(self, cfg):
        super().__init__(hidden=cfg.hidden)
        self.save_hyperparameters(cfg)
        self.cfg_type = type(cfg)


def test_a_dictconfig_argument_is_saved_resolved_and_given_back_as_a_dictconfig(tmp_path):
    # A nested config was refused ("net=DictConfig is not JSON-serialisable ... pass ignore=['net']").
    cfg = OmegaConf.create({"lr": 0.01, "model": {"hidden": 12, "net": {"depth": 2, "lr": "${lr}"}}})
    module = FromHydra(**cfg.model)
    assert module.hparams["net"] == {"depth": 2, "lr": 0.01}  # the interpolation as the module saw it
    t = quiet_trainer(tmp_path, max_epochs=1)
    t.fit(module, make_batches())
    saved = t.save_checkpoint(tmp_path / "saved")
    state = json.loads((saved / "trainer_state.json").read_text())
    assert state["hyper_parameters"]["net"] == {"depth": 2, "lr": 0.01}
    loaded = FromHydra.load_from_checkpoint(saved)
    assert loaded.net_type is DictConfig and loaded.depth == 2 and loaded.fc1.weight.shape == (12, 8)


def test_save_hyperparameters_of_a_whole_nested_dictconfig(tmp_path):
    cfg = OmegaConf.create({"hidden": 10, "optim": {"lr": 0.1, "betas": [0.9, 0.99]}})
    module = WholeConfig(cfg)
    assert module.hparams.optim == {"lr": 0.1, "betas": [0.9, 0.99]}
    t = quiet_trainer(tmp_path, max_epochs=1)
    t.fit(module, make_batches())
    loaded = WholeConfig.load_from_checkpoint(t.save_checkpoint(tmp_path / "saved"))
    assert loaded.cfg_type is DictConfig and loaded.hparams.optim["betas"] == [0.9, 0.99]


def test_a_missing_value_is_named_by_its_key():
    cfg = OmegaConf.create({"hidden": 8, "net": {"depth": "???"}})
    with pytest.raises(ValueError, match=r"FromHydra.save_hyperparameters: net .*key 'net.depth'.*\?\?\?"):
        FromHydra(hidden=cfg.hidden, net=cfg.net)


def test_a_listconfig_argument_is_given_back_as_a_listconfig(tmp_path):
    class Layers(TinyClassifier):
        def __init__(self, sizes):
            super().__init__(hidden=sizes[0])
            self.save_hyperparameters()
            self.sizes_type = type(sizes)

    module = Layers(OmegaConf.create([6, 3]))
    t = quiet_trainer(tmp_path, max_epochs=1)
    t.fit(module, make_batches())
    loaded = Layers.load_from_checkpoint(t.save_checkpoint(tmp_path / "saved"))
    assert loaded.sizes_type is ListConfig and loaded.hparams.sizes == [6, 3]


def test_max_time_from_a_config_is_the_dict_the_message_asks_for(tmp_path):
    # Trainer(**cfg.trainer) with `max_time: {hours: 1}` was refused as "expected ... or a dict such as
    # {'hours': 2}": a DictConfig is a Mapping, not a dict.
    from audiotrain import Trainer
    from audiotrain.callbacks import Timer

    cfg = OmegaConf.create({"trainer": {"max_time": {"hours": 1}, "default_root_dir": str(tmp_path)}})
    assert Trainer(**cfg.trainer)._max_time == 3600
    assert Timer(duration=OmegaConf.create({"minutes": 5})) is not None


def test_default_root_dir_null_in_a_config_is_the_default_folder(tmp_path, monkeypatch):
    # `default_root_dir: null` (Lightning's default, None) was refused as "expected a path ... got NoneType".
    from audiotrain import Trainer

    monkeypatch.chdir(tmp_path)
    trainer = Trainer(**OmegaConf.create({"default_root_dir": None}))
    assert trainer.default_root_dir == Trainer().default_root_dir


def test_create_trainer_takes_a_dictconfig_as_config_and_as_a_sections_overrides(tmp_path):
    # Each was refused: "config dict: field 'training' must be a mapping of fields, got DictConfig", and
    # training=cfg.training as "gives a whole section one value; give its settings as a dict".
    from audiotrain import create_trainer, get_trainer_config

    cfg = OmegaConf.create(
        {
            "lr": 0.002,
            "trainer": {
                "training": {"num_epochs": 2, "seed": 3},
                "optimizer": {"type": "sgd", "learning_rate": "${lr}"},
                "run": {"run_dir": str(tmp_path / "run")},
            },
        }
    )
    config = get_trainer_config(cfg.trainer)
    assert config.training.num_epochs == 2 and config.optimizer.learning_rate == 0.002
    config = get_trainer_config("quick_test", training=cfg.trainer.training, optimizer=cfg.trainer.optimizer)
    assert config.training.seed == 3 and config.optimizer.type == "sgd"
    assert create_trainer(TinyClassifier(), config=cfg.trainer).config.training.num_epochs == 2
    missing = OmegaConf.create({"training": {"num_epochs": "???"}})
    with pytest.raises(ValueError, match=r"get_trainer_config\(training=...\).*key 'training.num_epochs'"):
        get_trainer_config(training=missing.training)


def test_a_datamodules_dictconfig_argument_is_given_back_as_a_dictconfig(tmp_path):
    # DataModule.load_from_checkpoint gave a plain dict, so an __init__ reading `aug.p` failed on reload.
    from audiotrain import DataModule

    class Data(DataModule):
        def __init__(self, aug, batch_size: int = 16):
            super().__init__()
            self.save_hyperparameters()
            self.p = aug.p

        def train_dataloader(self):
            return make_batches()

    cfg = OmegaConf.create({"data": {"aug": {"p": 0.5}, "batch_size": 16}})
    t = quiet_trainer(tmp_path, max_epochs=1)
    t.fit(TinyClassifier(), datamodule=Data(**cfg.data))
    loaded = Data.load_from_checkpoint(t.save_checkpoint(tmp_path / "saved"))
    assert loaded.p == 0.5 and loaded.hparams.aug == {"p": 0.5}


def test_hparams_keep_a_configs_nested_values_readable_as_attributes(tmp_path):
    """Lightning 2.6.6 keeps a DictConfig in `hparams` (measured: `hparams.net` of an argument, and the
    whole `hparams` of save_hyperparameters(cfg), are DictConfigs), so Hydra code reads
    `self.hparams.net.depth`; audiotrain held plain dicts there ("'dict' object has no attribute 'depth'").
    Checkpoints and loggers still get the plain values, interpolations resolved."""
    from audiotrain import DataModule
    from audiotrain.train.loggers import CSVLogger

    import yaml

    class Data(DataModule):
        def __init__(self, cfg):
            super().__init__()
            self.save_hyperparameters(cfg)

        def train_dataloader(self):
            return make_batches()

    cfg = OmegaConf.create({"lr": 0.01, "model": {"hidden": 12, "net": {"depth": 2, "lr": "${lr}"}}})
    module, data = FromHydra(**cfg.model), Data(OmegaConf.create({"aug": {"p": 0.5}}))
    assert module.hparams.net.depth == 2 and module.hparams.net.lr == 0.01
    assert data.hparams.aug.p == 0.5
    assert WholeConfig(OmegaConf.create({"hidden": 10, "optim": {"lr": 0.1}})).hparams.optim.lr == 0.1
    t = quiet_trainer(tmp_path, max_epochs=1, logger=CSVLogger(tmp_path))
    t.fit(module, datamodule=data)
    logged = yaml.safe_load((t.logger.log_dir / "hparams.yaml").read_text())
    assert logged["hparams/net/lr"] == 0.01 and logged["datamodule_hparams/aug/p"] == 0.5
    state = json.loads((t.save_checkpoint(tmp_path / "saved") / "trainer_state.json").read_text())
    assert state["hyper_parameters"]["net"] == {"depth": 2, "lr": 0.01}
    loaded = FromHydra.load_from_checkpoint(tmp_path / "saved")
    assert loaded.hparams.net.depth == 2 and isinstance(loaded.hparams_initial.net, DictConfig)
