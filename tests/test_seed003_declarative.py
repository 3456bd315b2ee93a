"""Seed 003, declarative runs: presets < file < overrides, `create_trainer`, and its train/evaluate/predict.

The seed's `from training import create_trainer` is `from audiotrain import create_trainer`; its BERT model
is replaced by a small TrainModule (the seed's `create_model` builds a text model outside this library).
"""

import json
import warnings
from pathlib import Path

from audiotrain import OptimizerConfig, TrainModule
from audiotrain.data import Dataset
from audiotrain.trainer_config import PRESETS, TrainerConfig, resolve_config

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
import yaml


class TinyNet(TrainModule):
    """A module without configure_optimizers: the config's optimizer and schedule are used."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 3)

    def __call__(self, x, y=None):
        return self.linear(x)

    def compute_loss(self, batch):
        x, y = batch
        logits = self(x)
        return mx.mean(nn.losses.cross_entropy(logits, y)), {"accuracy": mx.mean(mx.argmax(logits, -1) == y)}


def batches(n=32, batch_size=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    return [
        (mx.array(x[i : i + batch_size]), mx.array(y[i : i + batch_size])) for i in range(0, n, batch_size)
    ]


class Points(Dataset):
    """40 samples ``(x [8], y)``; ``clip_of[i]`` groups them in clips of 1 to 4 samples."""

    def __init__(self, n=40):
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(n, 8)).astype(np.float32)
        self.clip_of = np.repeat(np.arange(n), rng.integers(1, 5, size=n))[:n].tolist()

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], int(self.x[i, 0] > 0)


def test_seed003_basic_training_and_configuration_override(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train_loader, val_loader = batches(), batches(seed=1)
    model = TinyNet()
    # --- seed 003, "Basic Training" (model built above) ------------------------------------------------
    from audiotrain import create_trainer

    # Create trainer with preset config
    trainer = create_trainer(model, config="production")

    # Train
    result = trainer.train(train_loader, val_loader)
    # --- "Configuration Override" --------------------------------------------------------------------------
    trainer = create_trainer(
        model,
        config="production",
        # Override specific settings
        learning_rate=1e-5,
        num_epochs=20,
        batch_size=64,
    )
    # --- end of seed code -----------------------------------------------------------------------------
    assert len(result.history["val_loss"]) <= PRESETS["production"]["training"]["num_epochs"]
    assert result.best_checkpoint.is_dir() and (result.run_dir / "history.json").is_file()
    written = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert written["training"]["num_epochs"] == 50 and written["scheduler"]["warmup_ratio"] == 0.05
    c = trainer.config
    assert (c.optimizer.learning_rate, c.training.num_epochs, c.data.batch_size) == (1e-5, 20, 64)
    assert c.training.patience == 5  # the rest is still the preset's
    metrics = trainer.evaluate(val_loader, ckpt_path=str(result.best_checkpoint))
    assert set(metrics) == {"test_loss", "test_accuracy"}
    outputs = trainer.predict(val_loader)
    assert len(outputs) == 2 and outputs[0].shape == (16, 3)


def test_export_history_writes_the_runs_history_where_the_user_asks(tmp_path):
    from audiotrain import create_trainer

    trainer = create_trainer(TinyNet(), "quick_test", run_dir=tmp_path / "run", num_epochs=2)
    result = trainer.train(batches(), batches(seed=1))
    # As seed 002's Trainer and the core Trainer: the history as JSON; another file is not replaced.
    exported = trainer.export_history(tmp_path / "history.json")
    assert json.loads(exported.read_text()) == json.loads((result.run_dir / "history.json").read_text())
    assert len(json.loads(exported.read_text())["val_loss"]) == 2
    (tmp_path / "mine.json").write_text("mine")
    with pytest.raises(FileExistsError):
        trainer.export_history(tmp_path / "mine.json")
    assert (tmp_path / "mine.json").read_text() == "mine"


def test_a_batch_size_override_that_a_loader_does_not_take_is_said_and_config_yaml_records_the_loaders(
    tmp_path,
):
    from audiotrain import DataLoader, create_trainer

    trainer = create_trainer(TinyNet(), "quick_test", run_dir=tmp_path / "run", batch_size=64)
    loader = DataLoader(Points(), batch_size=16)
    with pytest.warns(
        UserWarning, match="data.batch_size is 64 but train_loader gives batches of 16"
    ) as caught:
        result = trainer.train(loader, DataLoader(Points(), batch_size=16))
    assert caught[0].filename == __file__  # the caller's train() line
    assert yaml.safe_load((result.run_dir / "config.yaml").read_text())["data"]["batch_size"] == 16
    state = json.loads((result.last_checkpoint / "trainer_state.json").read_text())
    assert state["run_config"]["data"]["batch_size"] == 16
    assert trainer.config.data.batch_size == 64  # a Dataset given to train() later is still batched by 64


def test_precedence_preset_file_overrides_and_the_run_config_reproduces(tmp_path):
    file = tmp_path / "run.yaml"
    file.write_text("preset: development\noptimizer:\n  learning_rate: 2e-5\ntraining:\n  num_epochs: 7\n")
    config = resolve_config("production", file=file, overrides={"num_epochs": 3})
    assert config.training.num_epochs == 3  # override > file
    assert config.optimizer.learning_rate == 2e-5  # file > preset
    assert config.training.patience == 2  # the file's preset (development), not production's 5
    from audiotrain.trainer_config import write_config

    again = resolve_config(write_config(config, tmp_path / "out" / "config.yaml"))
    assert again == config
    json_file = write_config(config, tmp_path / "config.json")
    assert (
        resolve_config(json_file) == config
        and json.loads(json_file.read_text())["training"]["num_epochs"] == 3
    )


def test_a_config_file_under_the_home_folder_given_with_a_tilde_is_read(tmp_path, monkeypatch):
    """get_trainer_config("~/run.yaml") and create_trainer(m, config_file="~/run.yaml") said 'config file
    ~/run.yaml does not exist' of a file that was there, though Trainer(default_root_dir="~/runs"), the
    loggers' save_dir and every checkpoint path read ~ as the home folder."""
    from audiotrain import get_trainer_config

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "run.yaml").write_text("training:\n  num_epochs: 7\n")
    assert get_trainer_config("~/run.yaml").training.num_epochs == 7
    assert get_trainer_config("production", config_file=Path("~", "run.yaml")).training.num_epochs == 7


def test_unknown_presets_keys_and_types_are_named_with_a_suggestion(tmp_path):
    from audiotrain import create_trainer

    with pytest.raises(
        ValueError, match="unknown preset 'prodution' \\(did you mean 'production'\\?\\).*quick_test"
    ):
        resolve_config("prodution")
    with pytest.raises(ValueError, match="unknown setting 'learning_rat'; did you mean 'learning_rate'"):
        create_trainer(TinyNet(), config="quick_test", learning_rat=1e-3)
    file = tmp_path / "bad.yaml"
    file.write_text("training:\n  num_epoch: 3\n")
    with pytest.raises(
        ValueError, match=r"bad.yaml line 2: unknown field 'training.num_epoch'; did you mean .*'num_epochs'"
    ):
        resolve_config("development", file=file)
    file.write_text("training:\n  num_epochs: three\n")
    with pytest.raises(
        ValueError, match=r"bad.yaml line 2: field 'training.num_epochs' must be int, got 'three'"
    ):
        resolve_config(file)
    assert resolve_config() == TrainerConfig()


def test_quick_test_preset_batches_a_dataset_and_a_module_optimizer_wins(tmp_path):
    from audiotrain import create_trainer

    class OwnOptimizer(TinyNet):
        def configure_optimizers(self):
            import mlx.optimizers as optim

            return OptimizerConfig(optimizer=optim.SGD(learning_rate=0.5))

    with pytest.warns(UserWarning, match="defines configure_optimizers, which is used"):
        trainer = create_trainer(OwnOptimizer(), "quick_test", run_dir=str(tmp_path / "run"), batch_size=8)
    result = trainer.train(Points(), Points())
    assert trainer.trainer.global_step == 4  # quick_test: 4 batches of data.batch_size=8, one epoch
    assert trainer.trainer.learning_rate() == 0.5
    assert result.run_dir == tmp_path / "run"


def test_the_quick_test_preset_is_one_short_epoch_at_a_constant_rate_without_stopping_or_compiling(tmp_path):
    from audiotrain import create_trainer
    from audiotrain.train.callbacks import EarlyStopping

    quick = create_trainer(TinyNet(), "quick_test", run_dir=str(tmp_path / "q"))
    trainer = quick.trainer
    assert (trainer.max_epochs, trainer.limit_train_batches, trainer.limit_val_batches) == (1, 4, 2)
    assert not trainer.compile and not trainer.enable_progress_bar
    assert not any(isinstance(cb, EarlyStopping) for cb in trainer.callbacks)
    assert (quick.config.scheduler.type, quick.config.scheduler.warmup_ratio) == ("constant", 0.0)


def test_the_checkpoint_holds_the_resolved_config_and_either_copy_repeats_it(tmp_path):
    from audiotrain import create_trainer
    from audiotrain.train import checkpoint as ckpt

    trainer = create_trainer(
        TinyNet(), config="quick_test", learning_rate=3e-3, run_dir=str(tmp_path / "run")
    )
    result = trainer.train(batches(), batches(seed=1))
    expected = trainer.config.to_dict()
    for folder in (result.best_checkpoint, result.last_checkpoint):
        assert ckpt.read_state(folder)["run_config"] == expected
    for file in (result.run_dir / "config.yaml", result.last_checkpoint / "trainer_state.json"):
        assert create_trainer(TinyNet(), config=file).config == trainer.config


@pytest.fixture(scope="module")
def tracked_runs(tmp_path_factory):
    """Two quick_test runs of the same settings (config.yaml's learning rate, warmup and patience), each
    tracked to the MLflow store its run folder holds: one by run.mlflow, one by an MLflowCallback that
    uploads no models. Three tests read them (each run is a train and a new store's migrations: seconds of
    CPU). {"run.mlflow" or "MLflowCallback": (trainer, its train's result, a client of its store, its run)}"""
    from audiotrain import MLflowCallback, MLflowConfig, create_trainer

    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("tracked_runs")
    settings = dict(learning_rate=3e-4, warmup_ratio=0.25, patience=7)
    by_config = dict(mlflow=True, experiment_name="seed003", run_name="first")
    callback = MLflowCallback(
        MLflowConfig(experiment_name="no-models", log_models=False, tags={"team": "audio"})
    )
    runs = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        for way, tracking, experiment in [
            ("run.mlflow", by_config, "seed003"),
            ("MLflowCallback", dict(callbacks=[callback]), "no-models"),
        ]:
            run_dir = root / way
            trainer = create_trainer(TinyNet(), "quick_test", run_dir=str(run_dir), **tracking, **settings)
            result = trainer.train(batches(), batches(seed=1))
            client = MlflowClient(tracking_uri=f"sqlite:///{run_dir / 'mlflow.db'}")  # the run folder's store
            (run,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
            runs[way] = trainer, result, client, run
    return runs


def test_seed003_mlflow_run_holds_the_names_the_metrics_and_the_best_checkpoint(tracked_runs):
    _, result, client, run = tracked_runs["run.mlflow"]
    assert run.info.run_name == "first" and run.info.status == "FINISHED"
    assert "val_loss" in run.data.metrics and run.data.params["trainer/max_epochs"] == "1"
    best = result.best_checkpoint
    stored = {a.path for a in client.list_artifacts(run.info.run_id, f"checkpoints/{best.name}")}
    assert stored == {f"checkpoints/{best.name}/{p.name}" for p in best.iterdir()}


@pytest.mark.parametrize("tracking", ["run.mlflow", "MLflowCallback"])
def test_the_settings_a_declarative_run_trained_with_are_its_mlflow_params(tracked_runs, tracking):
    """The run's settings (config.yaml's: the learning rate, the schedule, patience, batch size) are params
    of its MLflow run, as the recipes' settings are of theirs: MLflow had only the Trainer's flags, so two
    runs of other learning rates looked the same there."""
    trainer, _, _, run = tracked_runs[tracking]
    params = run.data.params
    assert params["optimizer/learning_rate"] == "0.0003" and params["scheduler/warmup_ratio"] == "0.25"
    assert params["training/patience"] == "7"
    assert params["data/batch_size"] == str(trainer.config.data.batch_size)
    assert params["optimizer"] == "AdamW"  # the Trainer's own params stay beside them


def test_an_overwritten_run_replaces_the_mlflow_run_of_the_run_it_replaces(tmp_path, monkeypatch):
    # train(overwrite=True) removes the run folder's mlflow.db with the rest of the earlier run: left there,
    # the new run's store would still list the replaced run, whose mlruns/ artifacts are gone.
    from audiotrain import create_trainer

    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_dir = tmp_path / "run"
    for overwrite in (False, True):
        trainer = create_trainer(
            TinyNet(), "quick_test", mlflow=True, experiment_name="again", run_dir=run_dir
        )
        trainer.train(batches(), batches(seed=1), overwrite=overwrite)
    client = MlflowClient(tracking_uri=f"sqlite:///{run_dir / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("again").experiment_id])
    assert run.info.status == "FINISHED"


def test_seed003_mlflow_callback_tracks_the_run_and_registers_its_best_checkpoint(tmp_path, monkeypatch):
    from audiotrain import MLflowCallback, MLflowConfig, create_trainer

    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_dir = tmp_path / "run"
    # --- seed 003, "MLflow Integration" ----------------------------------------------------------------------
    mlflow_config = MLflowConfig(
        experiment_name="bert-experiments",
        run_name="titanic-v2",
        log_models=True,
        register_model=True,
        model_name="titanic-bert",
    )
    callback = MLflowCallback(mlflow_config)
    trainer = create_trainer(TinyNet(), "quick_test", callbacks=[callback], run_dir=str(run_dir))
    # ---------------------------------------------------------------------------------------------------------
    result = trainer.train(batches(), batches(seed=1))
    client = MlflowClient(tracking_uri=f"sqlite:///{run_dir / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("bert-experiments").experiment_id])
    assert run.info.run_name == "titanic-v2" and run.info.status == "FINISHED"
    assert "val_loss" in run.data.metrics
    (version,) = client.search_model_versions("name='titanic-bert'")
    assert version.run_id == run.info.run_id and str(version.version) == callback.registered_version == "1"
    assert version.source.endswith(f"checkpoints/{result.best_checkpoint.name}")
    assert version.tags == {"checkpoint": f"checkpoints/{result.best_checkpoint.name}"}


def test_seed003_mlflow_callback_without_models_uploads_no_checkpoint_and_sets_the_tags(tracked_runs):
    _, result, client, run = tracked_runs["MLflowCallback"]
    assert result.best_checkpoint is not None  # (checkpoints were saved: they stay local)
    assert run.info.status == "FINISHED" and run.data.tags["team"] == "audio"
    assert "best_checkpoint" not in run.data.tags
    assert [a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")] == []


@pytest.fixture(scope="module")
def existing_mlflow_store(tmp_path_factory):
    """Copies an empty store, its tables made, to where a test's user keeps theirs (a team's store exists
    before a run tracks to it): MLflow makes a new store's tables by running every migration, seconds each.
    The run folders' own stores are still made from nothing by the other tests."""
    import shutil

    from mlflow.tracking import MlflowClient

    template = tmp_path_factory.mktemp("mlflow_template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{template}").search_experiments()

    def copy_to(path):
        shutil.copy(template, path)
        return f"sqlite:///{path}"

    return copy_to


def test_seed003_mlflow_callback_tracks_the_run_where_its_tracking_uri_says(
    tmp_path, monkeypatch, existing_mlflow_store
):
    from audiotrain import MLflowCallback, MLflowConfig, create_trainer

    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    store = existing_mlflow_store(tmp_path / "team.db")  # (the team's store, not the run folder's mlflow.db)
    callback = MLflowCallback(MLflowConfig(experiment_name="shared", tracking_uri=store, log_models=False))
    trainer = create_trainer(TinyNet(), "quick_test", callbacks=[callback], run_dir=str(tmp_path / "run"))
    trainer.train(batches(), batches(seed=1))
    client = MlflowClient(tracking_uri=store)
    (run,) = client.search_runs([client.get_experiment_by_name("shared").experiment_id])
    assert run.info.status == "FINISHED"
    assert not (tmp_path / "run" / "mlflow.db").exists()


def test_a_declarative_mlflow_run_goes_to_the_store_the_user_named(
    tmp_path, monkeypatch, existing_mlflow_store
):
    # $MLFLOW_TRACKING_URI is where an MLflowCallback without a tracking_uri tracks (README), and
    # run.tracking_uri where run.mlflow does: neither run may fall back to the run folder's mlflow.db.
    from audiotrain import MLflowCallback, MLflowConfig, create_trainer

    from mlflow.tracking import MlflowClient

    team, own = existing_mlflow_store(tmp_path / "team.db"), existing_mlflow_store(tmp_path / "own.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team)
    callback = MLflowCallback(MLflowConfig(experiment_name="from-env", log_models=False))
    create_trainer(TinyNet(), "quick_test", callbacks=[callback], run_dir=str(tmp_path / "env")).train(
        batches(), batches(seed=1)
    )
    # Without a run.run_name the MLflow run is named after kaggle.competition_name, as the run folder is.
    settings = dict(mlflow=True, experiment_name="from-config", tracking_uri=own, competition_name="titanic")
    create_trainer(TinyNet(), "quick_test", run_dir=str(tmp_path / "cfg"), **settings).train(
        batches(), batches(seed=1)
    )
    for store, experiment in [(team, "from-env"), (own, "from-config")]:
        client = MlflowClient(tracking_uri=store)
        (run,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
        assert run.info.status == "FINISHED"
    assert run.info.run_name == "titanic"
    assert not (tmp_path / "env" / "mlflow.db").exists() and not (tmp_path / "cfg" / "mlflow.db").exists()


def test_an_mlflow_config_of_no_settings_uploads_to_mlflows_default_experiment():
    from audiotrain import MLflowConfig

    config = MLflowConfig()
    assert (config.experiment_name, config.log_models, config.register_model) == ("default", True, False)


def test_seed003_mlflow_callback_refusals(tmp_path):
    from audiotrain import MLflowCallback, MLflowConfig, Trainer, create_trainer

    with pytest.raises(ValueError, match="MLflowConfig.experiment_name must be a non-empty string, got ''"):
        MLflowConfig(experiment_name="")
    with pytest.raises(TypeError, match="MLflowConfig.tags must be a dict, got list"):
        MLflowConfig(tags=["team"])
    with pytest.raises(ValueError, match="MLflowConfig.run_name must be a non-empty string, got '  '"):
        MLflowConfig(run_name="  ")
    # (a string "false" is true: it would upload the checkpoints it was meant to keep local)
    with pytest.raises(TypeError, match="MLflowConfig.log_models must be True or False, got 'false'"):
        MLflowConfig(log_models="false")
    with pytest.raises(TypeError, match="MLflowCallback: expected an MLflowConfig, got dict"):
        MLflowCallback({"experiment_name": "x"})
    with pytest.raises(TypeError, match="give an MLflowConfig or its fields as keywords, not both"):
        MLflowCallback(MLflowConfig(), run_name="x")
    with pytest.raises(ValueError, match="needs model_name"):
        MLflowConfig(register_model=True)
    with pytest.raises(ValueError, match="set log_models=True"):
        MLflowConfig(log_models=False, register_model=True, model_name="m")
    with pytest.raises(ValueError, match="both track this run"):
        create_trainer(
            TinyNet(), "quick_test", callbacks=[MLflowCallback()], mlflow=True, run_dir=str(tmp_path)
        )
    with pytest.raises(ValueError, match="one MLflowCallback"):
        create_trainer(
            TinyNet(), "quick_test", callbacks=[MLflowCallback(), MLflowCallback()], run_dir=str(tmp_path)
        )
    with pytest.raises(TypeError, match="with a Trainer, pass logger="):
        Trainer(max_epochs=1, callbacks=[MLflowCallback()], default_root_dir=tmp_path).fit(
            TinyNet(), batches()
        )


def test_seed003_train_with_cv_on_a_train_loader(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from audiotrain import create_trainer
    from audiotrain.data import DataLoader

    model = TinyNet()
    before = np.array(model.linear.weight)
    train_loader = DataLoader(Points(), batch_size=8)
    trainer = create_trainer(model, config="quick_test", limit_train_batches=None, limit_val_batches=None)
    # --- seed 003, "Kaggle Competition": train with cross-validation ----------------------------------------
    cv_results = trainer.train_with_cv(train_loader)
    # --- end of seed code -----------------------------------------------------------------------------
    assert len(cv_results.fold_scores) == 5 and cv_results.run_dir.parent == Path("runs")
    assert cv_results.run_dir.name.startswith("tinynet-cv-")
    for metric in ("test_loss", "test_accuracy"):
        values = [s[metric] for s in cv_results.fold_scores]
        assert cv_results.mean[metric] == pytest.approx(np.mean(values))
        assert cv_results.std[metric] == pytest.approx(np.std(values))
    assert cv_results.oof.shape == (40, 3)  # one out-of-fold output per sample
    folds = json.loads((cv_results.run_dir / "folds.json").read_text())["folds"]
    assert sorted(i for f in folds for i in f["test"]) == list(range(40))
    for k, fold in enumerate(folds):
        assert sorted(fold["train"] + fold["val"] + fold["test"]) == list(range(40)) and fold["val"]
        assert (cv_results.run_dir / f"fold{k}" / "checkpoints" / "best" / "model.safetensors").is_file()
        assert (
            len(json.loads((cv_results.run_dir / f"fold{k}" / "history.json").read_text())["val_loss"]) == 1
        )
    table = (cv_results.run_dir / "cv_scores.md").read_text()
    mean, std = cv_results.mean["test_loss"], cv_results.std["test_loss"]
    assert f"| {mean:.4f} | {std:.4f} |" in table
    np.testing.assert_array_equal(np.array(model.linear.weight), before)  # each fold trained a copy


def test_train_with_cv_writes_the_out_of_fold_predictions_beside_the_scores(tmp_path):
    import csv

    from audiotrain import create_trainer

    data = Points()
    trainer = create_trainer(TinyNet(), config="quick_test", batch_size=4, run_dir=str(tmp_path / "cv"))
    cv = trainer.train_with_cv(data, folds=3, groups=data.clip_of, log=lambda s: None)
    with open(cv.run_dir / "oof_predictions.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["sample", "fold", "group", "output_0", "output_1", "output_2"]
    assert [int(r["sample"]) for r in rows] == list(range(40))
    folds = json.loads((cv.run_dir / "folds.json").read_text())["folds"]
    for fold in folds:
        assert {int(rows[i]["fold"]) for i in fold["test"]} == {fold["index"]}
    assert [int(r["group"]) for r in rows] == data.clip_of
    scores = np.array([[float(r[f"output_{j}"]) for j in range(3)] for r in rows])
    np.testing.assert_allclose(scores, cv.oof, rtol=1e-6)


def test_train_with_cv_labels_give_named_per_class_scores_and_confusion_of_the_out_of_fold_predictions(
    tmp_path,
):
    # A classifier's researcher: per-class P/R/F1 and a confusion matrix over the out-of-fold predictions,
    # with the class names, in cv_scores.md/json, and true/predicted names in oof_predictions.csv.
    import csv

    from audiotrain import create_trainer
    from audiotrain.metrics import compute_confusion_matrix, compute_per_class_metrics

    data = Points()
    labels = [data[i][1] for i in range(len(data))]
    names = ["low", "high", "never"]  # (TinyNet scores 3 classes; the data has 2)
    trainer = create_trainer(TinyNet(), config="quick_test", batch_size=4, run_dir=str(tmp_path / "cv"))
    cv = trainer.train_with_cv(data, folds=3, labels=labels, class_names=names, log=lambda s: None)
    expected = compute_confusion_matrix(cv.oof, np.array(labels))
    np.testing.assert_array_equal(cv.confusion, expected)
    assert cv.class_names == names
    with open(cv.run_dir / "oof_predictions.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["sample", "fold", "true", "predicted", "output_0", "output_1", "output_2"]
    assert [r["true"] for r in rows] == [names[y] for y in labels]
    assert [r["predicted"] for r in rows] == [names[k] for k in cv.oof.argmax(-1)]
    record = json.loads((cv.run_dir / "cv_scores.json").read_text())["out_of_fold"]
    scores = compute_per_class_metrics(cv.oof, np.array(labels))
    assert record["classes"] == names and record["confusion_matrix"] == expected.tolist()
    assert [record["per_class"][n]["f1"] for n in names] == pytest.approx(scores["f1"].tolist())
    assert [record["per_class"][n]["support"] for n in names] == [labels.count(0), labels.count(1), 0]
    assert record["macro_f1"] == pytest.approx(scores["macro_f1"])
    table = (cv.run_dir / "cv_scores.md").read_text()
    assert "| true \\ predicted | low | high | never |" in table
    assert f"| high | {scores['precision'][1]:.4f} | {scores['recall'][1]:.4f} |" in table


class DivergedRowsNet(TinyNet):
    def predict_step(self, batch, batch_idx=0):
        x = batch[0]
        return mx.where(x[:, :1] > 1.0, mx.array(float("nan")), self(x))  # (as a diverged model's rows)


def test_train_with_cv_labels_leave_out_of_fold_rows_that_are_not_finite_with_a_warning(tmp_path):
    # A fold whose model diverged gives NaN scores: their argmax (0) counted as predictions of "low", so the
    # per-class table showed "low" predicted for samples that no model scored.
    import csv

    from audiotrain import create_trainer
    from audiotrain.metrics import compute_confusion_matrix

    data = Points()
    labels = np.array([data[i][1] for i in range(len(data))])
    names = ["low", "high", "never"]
    trainer = create_trainer(
        DivergedRowsNet(), config="quick_test", batch_size=4, run_dir=str(tmp_path / "cv")
    )
    with pytest.warns(UserWarning, match=r"samples' out-of-fold scores are not finite \(fold\(s\) \["):
        cv = trainer.train_with_cv(data, folds=3, labels=labels, class_names=names, log=lambda s: None)
    scored = np.isfinite(cv.oof).all(axis=1)
    assert 0 < scored.sum() < len(data)
    np.testing.assert_array_equal(
        cv.confusion, compute_confusion_matrix(cv.oof[scored], labels[scored], num_classes=3)
    )
    with open(cv.run_dir / "oof_predictions.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [r["predicted"] == "" for r in rows] == (~scored).tolist()


class ArgmaxNet(TinyNet):
    def predict_step(self, batch, batch_idx=0):
        return mx.argmax(self(batch[0]), -1)  # (one class per sample, not per-class scores)


@pytest.mark.parametrize(
    "module, given, error",
    [
        (TinyNet, {"labels": [0] * 39}, r"39 labels for 40 samples"),
        (
            TinyNet,
            {"labels": [0] * 39 + [3], "class_names": ["a", "b", "c"]},
            r"labels\[39\] is 3, outside 0..2",
        ),
        (TinyNet, {"labels": [0] * 39 + [5]}, r"labels\[39\] is 5, but predict_step returns 3 scores"),
        (TinyNet, {"labels": [0.5] * 40}, r"labels must be class indices"),
        (TinyNet, {"class_names": ["a", "b", "c"]}, r"class_names= needs labels="),
        (
            TinyNet,
            {"labels": [0] * 40, "class_names": ["a", "b"]},
            r"class_names has 2 names but predict_step",
        ),
        (TinyNet, {"labels": [0] * 40, "class_names": ["a", "b", "a"]}, r"names \['a'\] more than once"),
        (ArgmaxNet, {"labels": [0] * 40}, r"labels= needs predict_step to return per-class scores"),
    ],
)
def test_train_with_cv_refuses_labels_or_class_names_that_do_not_fit_before_writing(
    tmp_path, module, given, error
):
    from audiotrain import create_trainer

    trainer = create_trainer(module(), config="quick_test", batch_size=4)
    with pytest.raises(ValueError, match=error):
        trainer.train_with_cv(Points(), folds=3, run_dir=tmp_path / "cv", log=lambda s: None, **given)
    assert not (tmp_path / "cv").exists()


def test_train_with_cv_groups_are_folds_makes_fold_k_hold_out_the_datas_fold_k(tmp_path):
    from audiotrain import create_trainer

    data, lines = Points(), []
    esc_fold = [i % 4 + 1 for i in range(40)]  # the data's own folds, 1..4 (ESC-50's fold column)
    trainer = create_trainer(TinyNet(), config="quick_test", batch_size=4, run_dir=str(tmp_path / "cv"))
    cv = trainer.train_with_cv(data, groups=esc_fold, groups_are_folds=True, log=lines.append)
    assert len(cv.fold_scores) == 4  # (folds: one per data fold, not kaggle.cv_folds' 5)
    folds = json.loads((cv.run_dir / "folds.json").read_text())["folds"]
    assert [{esc_fold[i] for i in f["test"]} for f in folds] == [{1}, {2}, {3}, {4}]
    assert "held out: 1)" in lines[0] and "held out: 4)" in lines[3]
    with pytest.raises(ValueError, match="groups_are_folds=True needs groups="):
        trainer.train_with_cv(data, groups_are_folds=True, run_dir=tmp_path / "x")


@pytest.mark.parametrize("as_loader", [False, True])
def test_train_with_cv_train_sampler_draws_each_folds_training_samples(tmp_path, as_loader):
    # A rare class sampled more often inside CV: a DataLoader's own sampler is refused (the folds split the
    # order), so the sampler is made per fold from its training indices.
    from audiotrain import create_trainer
    from audiotrain.data import DataLoader

    data, made = Points(), []

    class Rare:  # (as torch's WeightedRandomSampler(weight[idx], len(idx)) would, drawing sample 0 alone)
        def __init__(self, indices):
            self.indices = indices
            made.append(self)
            self.drawn = []

        def __len__(self):
            return len(self.indices)

        def __iter__(self):
            first = self.indices.index(min(self.indices))
            self.drawn.append(first)
            return iter([first] * len(self.indices))

    given = DataLoader(data, batch_size=4) if as_loader else data
    trainer = create_trainer(TinyNet(), config="quick_test", batch_size=4, run_dir=str(tmp_path / "cv"))
    trainer.train_with_cv(given, folds=2, train_sampler=Rare, log=lambda s: None)
    folds = json.loads((tmp_path / "cv" / "folds.json").read_text())["folds"]
    trained = [m for m in made if m.drawn]  # (the check of each fold's first batch makes one too)
    assert [sorted(m.indices) for m in trained] == [sorted(f["train"]) for f in folds]
    with pytest.raises(TypeError, match="train_sampler must be a function of a fold's training indices"):
        trainer.train_with_cv(data, train_sampler=[0, 1], run_dir=tmp_path / "x")
    # A DataLoader with its own sampler (where a user first tries a WeightedRandomSampler) is refused, and the
    # refusal leads to train_sampler=, the way that works.
    with pytest.raises(TypeError, match=r"its own sampler.*train_sampler=lambda idx"):
        trainer.train_with_cv(
            DataLoader(data, batch_size=4, sampler=list(range(len(data)))), run_dir=tmp_path / "y"
        )


def test_train_with_cv_fold_loaders_keep_the_users_loader_settings(tmp_path):
    from audiotrain import create_trainer
    from audiotrain.data import DataLoader

    loader = DataLoader(Points(), batch_size=4, num_workers=1, worker_type="thread", persistent_workers=True)
    trainer = create_trainer(TinyNet(), config="quick_test", run_dir=str(tmp_path / "run"))
    dataset, fold_loader = trainer._fold_data(loader)
    fold = fold_loader([0, 1, 2, 3, 4], True)
    assert dataset is loader.dataset and len(fold.dataset) == 5
    assert (fold.batch_size, fold.num_workers, fold.worker_type) == (4, 1, "thread")
    assert fold.persistent_workers  # (each fold's loader spawned its workers again every epoch)


def test_train_with_cv_keeps_groups_whole_builds_each_fold_and_refuses_a_used_folder(tmp_path):
    from audiotrain import create_trainer

    data, built = Points(), []

    def factory():
        built.append(TinyNet())
        return built[-1]

    run_dir = tmp_path / "cv"
    trainer = create_trainer(TinyNet(), config="quick_test", batch_size=4, run_dir=str(run_dir))
    cv = trainer.train_with_cv(data, folds=3, groups=data.clip_of, module_factory=factory, log=lambda s: None)
    assert len(built) == 3 and all(built[k] is not built[k - 1] for k in (1, 2))
    folds = json.loads((run_dir / "folds.json").read_text())["folds"]
    held_out_by = {}
    for k, fold in enumerate(folds):
        parts = [{data.clip_of[i] for i in fold[p]} for p in ("train", "val", "test")]
        assert not (parts[0] & parts[2] or parts[1] & parts[2] or parts[0] & parts[1])
        for clip in parts[2]:
            assert held_out_by.setdefault(clip, k) == k
    assert len(held_out_by) == len(set(data.clip_of))  # every clip held out by exactly one fold
    assert cv.fold_dirs == [run_dir / f"fold{k}" for k in range(3)]

    with pytest.raises(FileExistsError, match="cv already holds files.*overwrite=True"):
        trainer.train_with_cv(data, folds=3, groups=data.clip_of, module_factory=factory)
    (run_dir / "notes.txt").write_text("mine")
    again = trainer.train_with_cv(data, folds=2, module_factory=factory, overwrite=True, log=lambda s: None)
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith("fold")) == [
        "fold0",
        "fold1",
        "folds.json",
    ]
    assert (run_dir / "notes.txt").read_text() == "mine" and len(again.fold_scores) == 2

    with pytest.raises(ValueError, match="train_with_cv: 3 groups cannot make 5 folds"):
        trainer.train_with_cv(data, groups=[k % 3 for k in range(40)], run_dir=tmp_path / "x")
    # A list is read by train() as batches: the refusal says how to give a list of samples.
    with pytest.raises(TypeError, match=r"reads as batches.*DataLoader\(samples, batch_size=\.\.\.\)"):
        trainer.train_with_cv(batches(), run_dir=tmp_path / "x")
    trainer.train(data, data, overwrite=True)  # (the folder holds the cross-validation)
    with pytest.raises(RuntimeError, match="trained by train\\(\\).*module_factory"):
        trainer.train_with_cv(data, run_dir=tmp_path / "x")


def test_seed003_yaml_as_written_trains_and_labels_the_run_with_the_competition(tmp_path, monkeypatch):
    from audiotrain import create_trainer

    from tests.test_trainer_config import SEED003_YAML

    monkeypatch.chdir(tmp_path)
    (tmp_path / "trainer_config.yaml").write_text(SEED003_YAML)
    trainer = create_trainer(
        TinyNet(), config="trainer_config.yaml", num_epochs=2, batch_size=8, num_workers=0, compile=False
    )
    stoppers = [cb for cb in trainer.trainer.callbacks if type(cb).__name__ == "EarlyStopping"]
    assert len(stoppers) == 1 and stoppers[0].monitor == "val_loss"  # training.early_stopping: true
    result = trainer.train(Points(), Points())
    assert result.run_dir.parent == Path("runs") and result.run_dir.name.startswith("titanic-")
    assert result.history["epoch"] == [0, 1] and len(result.history["val_loss"]) == 2  # eval_strategy: epoch


class CountValidations:
    def __init__(self):
        from audiotrain.train.callbacks import Callback

        class Counter(Callback):
            def on_validation_end(inner, trainer, module):
                if not trainer.sanity_checking:
                    self.steps.append(trainer.global_step)

        self.steps = []
        self.callback = Counter()


def test_eval_strategy_steps_validates_every_eval_steps_batches_across_epoch_ends(tmp_path):
    from audiotrain import create_trainer

    counter = CountValidations()
    trainer = create_trainer(
        TinyNet(),
        "quick_test",
        callbacks=[counter.callback],
        num_epochs=3,
        limit_train_batches=None,
        batch_size=8,  # 5 batches an epoch
        eval_strategy="steps",
        eval_steps=4,
        run_dir=tmp_path / "run",
    )
    trainer.train(Points(), Points())
    assert counter.steps == [4, 8, 12]  # not at the epoch ends (5, 10, 15)


def test_eval_strategy_no_never_validates_and_says_the_val_loader_is_unused(tmp_path):
    from audiotrain import create_trainer

    counter = CountValidations()
    with pytest.raises(ValueError, match="eval_strategy 'no' never validates.*train_loss"):
        create_trainer(TinyNet(), "quick_test", eval_strategy="no")
    trainer = create_trainer(
        TinyNet(),
        "quick_test",
        callbacks=[counter.callback],
        eval_strategy="no",
        monitor="train_loss",
        run_dir=tmp_path / "run",
    )
    with pytest.warns(UserWarning, match="val_loader is not used: training.eval_strategy is 'no'"):
        result = trainer.train(batches(), batches(seed=1))
    assert counter.steps == [] and "val_loss" not in result.history and result.best_checkpoint.is_dir()


@pytest.mark.parametrize("typed", ["no", "off"])
def test_an_unquoted_no_refused_without_a_train_monitor_is_shown_as_typed(tmp_path, typed):
    """``eval_strategy: no`` without a train_ monitor was refused "(you set training.eval_strategy: False in
    FILE; ...)": YAML 1.1's reading of the word, which the user never wrote."""
    from audiotrain import get_trainer_config

    path = tmp_path / "run.yaml"
    path.write_text(f"training:\n  eval_strategy: {typed}\n")
    with pytest.raises(ValueError) as refused:
        get_trainer_config(config_file=path)
    message = str(refused.value)
    assert f"{path} line 2: training.eval_strategy 'no' never validates" in message
    assert f"(you set training.eval_strategy: {typed} (YAML reads it as False) in {path};" in message


def test_train_without_a_val_loader_for_a_val_monitor_is_refused_before_training(tmp_path):
    # Refused up front, naming what to do: without the check a whole epoch trained before ModelCheckpoint
    # found no val_loss.
    from audiotrain import create_trainer

    trainer = create_trainer(TinyNet(), "quick_test", run_dir=tmp_path / "run")
    with pytest.raises(ValueError, match=r"train: no val_loader, but training.monitor is 'val_loss'; pass"):
        trainer.train(batches())
    assert trainer.trainer.global_step == 0 and not (tmp_path / "run").exists()
    # No training data at all is named as such, not as the validation data it also lacks.
    with pytest.raises(TypeError, match=r"^train: no training data: pass train_loader"):
        trainer.train(None)
    assert not (tmp_path / "run").exists()


def test_seed003_save_checkpoint_and_load_checkpoint(tmp_path, monkeypatch):
    from audiotrain import create_trainer
    from audiotrain.train import checkpoint as ckpt

    monkeypatch.chdir(tmp_path)
    trainer = create_trainer(TinyNet(), "quick_test", num_epochs=1, run_dir="run")
    with pytest.raises(RuntimeError, match="save_checkpoint: nothing trained yet"):
        trainer.save_checkpoint("manual")
    trainer.train(batches(), batches(seed=1))
    # --- seed 003's Trainer methods ------------------------------------------------------------------------
    path = trainer.save_checkpoint("manual")
    # --- end of seed code ---------------------------------------------------------------------------------
    assert path == Path("manual") and ckpt.read_state(path)["run_config"] == trainer.config.to_dict()
    (tmp_path / "notes").mkdir()
    with pytest.raises(FileExistsError, match="notes is a folder that is no checkpoint"):
        trainer.save_checkpoint("notes")

    again = create_trainer(TinyNet(), "quick_test", num_epochs=2, run_dir="run2")
    again.load_checkpoint("manual")  # the weights now; the rest at the next train()
    np.testing.assert_array_equal(
        np.array(again.module.linear.weight), np.array(trainer.module.linear.weight)
    )
    assert again.evaluate(batches(seed=1)) == trainer.evaluate(batches(seed=1))
    with pytest.warns(
        UserWarning, match="the resumed checkpoint's ModelCheckpoint saved to .*run/checkpoints"
    ):
        result = again.train(batches(), batches(seed=1))  # (another run's: it goes on in run2)
    assert result.history["epoch"] == [0, 1] and again.trainer.global_step == 4  # went on from epoch 1
    fresh = create_trainer(TinyNet(), "quick_test", run_dir="cv")
    fresh.load_checkpoint("manual")
    with pytest.raises(RuntimeError, match="loaded a checkpoint"):
        fresh.train_with_cv(Points(), folds=2)


def test_register_trainer_builds_a_trainer_class_by_name(monkeypatch):
    from audiotrain import create_trainer, declarative, register_trainer

    monkeypatch.setattr(declarative, "TRAINERS", dict(declarative.TRAINERS))

    class LoudTrainer(declarative.ConfiguredTrainer):
        pass

    register_trainer("loud", LoudTrainer)
    register_trainer("loud", LoudTrainer)  # again, as a re-run notebook cell does
    trainer = create_trainer(TinyNet(), "quick_test", trainer_type="loud", num_epochs=3)
    assert type(trainer) is LoudTrainer and trainer.config.training.num_epochs == 3
    with pytest.raises(ValueError, match="'loud' is already .*LoudTrainer; choose another name"):
        register_trainer("loud", type("Other", (declarative.ConfiguredTrainer,), {}))
    with pytest.raises(TypeError, match="expected a subclass of audiotrain.declarative.ConfiguredTrainer"):
        register_trainer("plain", object)
    with pytest.raises(ValueError, match="unknown trainer_type 'lound'; registered: default, kaggle, loud"):
        create_trainer(TinyNet(), "quick_test", trainer_type="lound")


# ---- run folders, cross-validation folds, schedules, data parallel ----------------------------------------


def test_train_refuses_a_run_folder_that_holds_an_earlier_run(tmp_path):
    from audiotrain import create_trainer

    first = create_trainer(TinyNet(), "quick_test", run_dir=tmp_path / "run").train(
        batches(), batches(seed=1)
    )
    history = (first.run_dir / "history.json").read_text()
    # Repeating the run from its config.yaml names the same folder: refused, saying how to go on.
    again = create_trainer(TinyNet(), config=first.run_dir / "config.yaml", num_epochs=2)
    with pytest.raises(FileExistsError, match=r"run already holds files.*run_dir=.*overwrite=True"):
        again.train(batches(), batches(seed=1))
    assert (first.run_dir / "history.json").read_text() == history
    elsewhere = create_trainer(TinyNet(), config=first.run_dir / "config.yaml", run_dir=tmp_path / "run2")
    assert elsewhere.train(batches(), batches(seed=1)).run_dir == tmp_path / "run2"
    (first.run_dir / "notes.txt").write_text("mine")
    replaced = again.train(batches(), batches(seed=1), overwrite=True)
    assert len(replaced.history["val_loss"]) == 2 and (first.run_dir / "notes.txt").read_text() == "mine"


class SteppedNet(TinyNet):
    def configure_optimizers(self):
        from audiotrain import OptimizerConfig

        import mlx.optimizers as optim

        return OptimizerConfig(optimizer=optim.SGD(learning_rate=0.1))


def test_train_overwrite_refuses_to_delete_another_trainers_checkpoints_of_the_same_names(tmp_path):
    # Seed 001 saves in ./checkpoints (ModelCheckpoint(dirpath="./checkpoints"), `last` with save_last); a
    # create_trainer run then given that folder as run_dir, overwrite=True, had deleted them as "the previous
    # run's checkpoints" though no create_trainer run wrote them.
    from audiotrain import Trainer, create_trainer
    from audiotrain.train.callbacks import ModelCheckpoint

    folder = tmp_path / "project"
    checkpoint = ModelCheckpoint(dirpath=folder / "checkpoints", save_last=True)
    Trainer(max_epochs=1, callbacks=[checkpoint], logger=False, enable_progress_bar=False).fit(
        SteppedNet(), batches(), batches(seed=1)
    )
    theirs = sorted(p.name for p in (folder / "checkpoints").iterdir())
    assert "last" in theirs
    trainer = create_trainer(TinyNet(), "quick_test", run_dir=folder)
    with pytest.raises(FileExistsError, match=r"no create_trainer run saved \(epoch=0-step=2, last: another"):
        trainer.train(batches(), batches(seed=1), overwrite=True)
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == theirs
    # A create_trainer run's own checkpoints there are still replaced by overwrite=True.
    again = create_trainer(TinyNet(), "quick_test", run_dir=tmp_path / "run")
    again.train(batches(), batches(seed=1))
    assert again.train(batches(), batches(seed=1), overwrite=True).history["epoch"] == [0]


class BrokenNet(TinyNet):
    def compute_loss(self, batch):
        raise KeyError("typo in compute_loss")


def test_a_train_that_failed_before_saving_leaves_nothing_and_the_fixed_rerun_uses_the_folder(tmp_path):
    from audiotrain import create_trainer

    run_dir = tmp_path / "run"
    with pytest.raises(KeyError, match="typo"):
        create_trainer(BrokenNet(), "quick_test", run_dir=run_dir).train(batches(), batches(seed=1))
    assert not run_dir.exists()  # (not the config.yaml of a run that never trained)
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="already holds files"):  # the user's files: still refused
        create_trainer(BrokenNet(), "quick_test", run_dir=run_dir).train(
            batches(), batches(seed=1), overwrite=False
        )
    (run_dir / "notes.txt").unlink()
    with pytest.raises(KeyError, match="typo"):
        create_trainer(BrokenNet(), "quick_test", run_dir=run_dir).train(batches(), batches(seed=1))
    assert run_dir.is_dir() and not any(run_dir.iterdir())  # a folder the user made stays
    fixed = create_trainer(TinyNet(), "quick_test", run_dir=run_dir).train(batches(), batches(seed=1))
    assert (fixed.run_dir / "history.json").is_file() and (fixed.run_dir / "config.yaml").is_file()


def test_a_refused_resume_leaves_the_runs_config_yaml_as_the_run_trained(tmp_path):
    from audiotrain import create_trainer
    from audiotrain.train.checkpoint import CheckpointError

    run = create_trainer(TinyNet(), "quick_test", run_dir=tmp_path / "run").train(batches(), batches(seed=1))
    record = run.run_dir / "config.yaml"
    trained = record.read_text()
    # A resume whose optimizer the checkpoint cannot fill (AdamW's moments for SGD) is refused...
    sgd = create_trainer(TinyNet(), config=record, num_epochs=2, optimizer={"type": "sgd"})
    with pytest.raises(CheckpointError, match="SGD optimizer state"):
        sgd.train(batches(), batches(seed=1), ckpt_path=run.last_checkpoint)
    # ...and the run's record still says how it trained, so the plain resume from it goes on.
    assert record.read_text() == trained
    resumed = create_trainer(TinyNet(), config=record, num_epochs=2).train(
        batches(), batches(seed=1), ckpt_path=run.last_checkpoint
    )
    assert len(resumed.history["val_loss"]) == 2
    assert yaml.safe_load(record.read_text())["training"]["num_epochs"] == 2


class PlainPoints:
    """A map-style dataset as torch users write one: ``__len__`` and ``__getitem__``, no audiotrain base."""

    def __init__(self, n=40):
        self.points = Points(n)

    def __len__(self):
        return len(self.points)

    def __getitem__(self, i):
        return self.points[i]


def test_train_batches_a_plain_map_style_dataset_as_train_with_cv_does(tmp_path):
    from audiotrain import create_trainer

    trainer = create_trainer(TinyNet(), "quick_test", batch_size=8, run_dir=tmp_path / "run")
    result = trainer.train(PlainPoints(), PlainPoints(16))
    assert result.history["val_loss"] and trainer.trainer.global_step > 0


def test_a_dataset_is_read_by_data_num_workers_workers(tmp_path):
    # data.num_workers reaches the loader that batches a Dataset (dropped, it was read on the main thread).
    import threading

    from audiotrain import create_trainer

    class ThreadNoted(Points):
        threads = set()

        def __getitem__(self, i):
            self.threads.add(threading.current_thread())
            return super().__getitem__(i)

    trainer = create_trainer(TinyNet(), "quick_test", batch_size=8, num_workers=2, run_dir=tmp_path / "run")
    trainer.train(ThreadNoted(), Points(16))
    assert ThreadNoted.threads and threading.main_thread() not in ThreadNoted.threads


def test_cross_validation_numbers_its_folds_as_its_folders_and_table_do(tmp_path):
    from audiotrain import create_trainer

    said = []
    trainer = create_trainer(TinyNet(), config="quick_test", batch_size=8, run_dir=str(tmp_path / "cv"))
    cv = trainer.train_with_cv(Points(), folds=2, log=said.append)
    folds = [line.split(":")[0] for line in said if line.startswith("fold ")]
    assert folds == ["fold 0 (1 of 2)", "fold 1 (2 of 2)"]
    assert cv.fold_dirs == [tmp_path / "cv" / "fold0", tmp_path / "cv" / "fold1"]
    assert "| fold 0 | fold 1 |" in cv.table()
    # Each fold's config.yaml names its own run (the name its MLflow run would take), not the whole cv's.
    names = [yaml.safe_load((d / "config.yaml").read_text())["run"]["run_name"] for d in cv.fold_dirs]
    assert names == ["tinynet-fold0", "tinynet-fold1"]


class EchoNet(TinyNet):
    """Predicts its inputs: each out-of-fold row shows which sample it was predicted for."""

    def predict_step(self, batch, batch_idx=0):
        return batch[0]


def test_out_of_fold_predictions_are_in_the_rows_of_their_samples(tmp_path):
    """`CVResult.oof` is what Kaggle stacking reads beside the training data, row for row: a row holding
    another sample's prediction would misalign every stacked model without an error."""
    from audiotrain import create_trainer

    data = Points()
    trainer = create_trainer(EchoNet(), config="quick_test", batch_size=8, run_dir=str(tmp_path / "cv"))
    cv = trainer.train_with_cv(data, folds=3, groups=data.clip_of, log=lambda s: None)
    folds = json.loads((cv.run_dir / "folds.json").read_text())["folds"]
    assert any(fold["test"] != sorted(fold["test"]) for fold in folds)  # held out in a shuffled order
    np.testing.assert_array_equal(cv.oof, data.x)


def test_a_drop_last_loaders_folds_score_and_predict_every_held_out_sample(tmp_path):
    """A loader's drop_last is for training: each fold's validation, scores and predictions over a partial
    last batch of held-out samples would leave samples out (and `oof` None, its rows short)."""
    from audiotrain import create_trainer
    from audiotrain.data import DataLoader

    data = Points()
    loader = DataLoader(data, batch_size=8, drop_last=True)
    trainer = create_trainer(EchoNet(), config="quick_test", batch_size=8, run_dir=str(tmp_path / "cv"))
    cv = trainer.train_with_cv(loader, folds=3, log=lambda s: None)
    folds = json.loads((cv.run_dir / "folds.json").read_text())["folds"]
    assert any(len(fold["test"]) % 8 for fold in folds)  # (a partial last batch to hold out)
    np.testing.assert_array_equal(cv.oof, data.x)


def test_the_folds_follow_the_training_seed(tmp_path):
    """Repeated cross-validation over seeds (create_trainer(..., seed=k)) needs another split for each."""
    from audiotrain import create_trainer, seed_everything

    made = {}
    for seed in (1, 2):
        seed_everything(seed)  # (before the module: its weights follow the seed too, unwarned)
        trainer = create_trainer(
            TinyNet(), config="quick_test", batch_size=8, seed=seed, run_dir=str(tmp_path / f"s{seed}")
        )
        cv = trainer.train_with_cv(Points(), folds=2, log=lambda s: None)
        record = json.loads((cv.run_dir / "folds.json").read_text())
        made[seed] = [fold["test"] for fold in record["folds"]]
        assert record["seed"] == seed
    assert made[1] != made[2]


FITS_SEEN = []  # what each fold's callback had counted at its fit's start (outside the callback: not copied)


def test_cross_validation_folds_do_not_share_callback_state(tmp_path):
    from audiotrain import create_trainer
    from audiotrain.train.callbacks import Callback, EarlyStopping

    class CountFits(Callback):
        def __init__(self):
            self.fits = 0

        def on_fit_start(self, trainer, module):
            self.fits += 1
            FITS_SEEN.append(self.fits)

    counter, stopper = CountFits(), EarlyStopping(monitor="val_loss", patience=1)
    trainer = create_trainer(
        TinyNet(), "quick_test", callbacks=[counter, stopper], num_epochs=2, run_dir=tmp_path / "cv"
    )
    trainer.train_with_cv(Points(), folds=3, log=lambda s: None)
    assert FITS_SEEN == [1, 1, 1]  # every fold starts from the callbacks as given, not as a fold left them
    assert counter.fits == 0 and (stopper.best_score, stopper.wait_count) == (
        None,
        0,
    )  # the user's: untouched


def test_a_cross_validations_own_model_checkpoint_saves_each_fold_in_a_folder_of_its_own(tmp_path):
    from audiotrain import create_trainer
    from audiotrain.train.callbacks import ModelCheckpoint

    mine = ModelCheckpoint(dirpath=tmp_path / "mine", save_last=True, save_top_k=0)
    trainer = create_trainer(TinyNet(), "quick_test", callbacks=[mine], num_epochs=1, run_dir=tmp_path / "cv")
    trainer.train_with_cv(Points(), folds=2, log=lambda s: None)
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["fold0", "fold1"]
    assert (tmp_path / "mine" / "fold1" / "last" / "model.safetensors").is_file()
    # overwrite=True replaces the earlier cross-validation, its own ModelCheckpoint's folders included
    trainer.train_with_cv(Points(), folds=2, log=lambda s: None, overwrite=True)
    assert (tmp_path / "cv" / "cv_scores.json").is_file()


def test_train_refuses_an_earlier_runs_checkpoints_in_a_checkpoint_folder_of_its_own_before_writing(tmp_path):
    from audiotrain import create_trainer
    from audiotrain.train.callbacks import ModelCheckpoint

    def trainer(run_dir):
        mine = ModelCheckpoint(dirpath=tmp_path / "mine", save_last=True, save_top_k=0)
        return create_trainer(
            TinyNet(), "quick_test", callbacks=[mine], num_epochs=1, run_dir=tmp_path / run_dir
        )

    trainer("first").train(Points(), Points())
    with pytest.raises(FileExistsError, match="already holds checkpoints of an earlier run"):
        trainer("second").train(Points(), Points())
    assert not any((tmp_path / "second").iterdir())  # refused before anything was written
    trainer("first").train(Points(), Points(), overwrite=True)  # replaces that run, its folder's too


def test_cross_validation_of_a_stream_is_refused_with_what_to_pass(tmp_path):
    from audiotrain import DataLoader, IterableDataset, create_trainer

    class Stream(IterableDataset):
        def __iter__(self):
            yield from Points()

    trainer = create_trainer(TinyNet(), "quick_test", run_dir=tmp_path / "cv")
    for data in (Stream(), DataLoader(Stream(), batch_size=4)):
        with pytest.raises(TypeError, match="train_with_cv: the data is a stream .* map-style dataset"):
            trainer.train_with_cv(data, folds=2)
    assert not (tmp_path / "cv").exists()


def test_cv_of_two_samples_is_refused_with_advice_that_can_help(tmp_path):
    """Two samples in two folds leave each fold one to train on and none to validate on: the refusal told a
    user who had passed val_fraction=0.1 to "pass val_fraction > 0"; it now says to add samples. One sample
    was "1 samples cannot make 2 folds"."""
    from audiotrain import DataLoader, create_trainer

    trainer = create_trainer(TinyNet(), "quick_test", run_dir=tmp_path / "cv")
    two = DataLoader(Points(2), batch_size=2)
    with pytest.raises(ValueError) as refused:
        trainer.train_with_cv(two, folds=2, val_fraction=0.1)
    message = str(refused.value)
    assert "val_fraction=0.1 with so few samples" in message and "; add samples, or set training" in message
    assert "pass val_fraction > 0" not in message
    with pytest.raises(ValueError, match="train_with_cv: 1 sample cannot make 2 folds"):
        trainer.train_with_cv(DataLoader(Points(1), batch_size=2), folds=2)
    assert not (tmp_path / "cv").exists()


def test_cv_without_validation_is_refused_before_anything_is_written(tmp_path):
    from audiotrain import create_trainer

    trainer = create_trainer(TinyNet(), "quick_test", run_dir=tmp_path / "cv")
    with pytest.raises(ValueError, match="val_fraction=0 leaves a fold without validation samples.*val_loss"):
        trainer.train_with_cv(Points(), folds=2, val_fraction=0)
    assert not (tmp_path / "cv").exists()  # so the rerun with a train_ monitor needs no overwrite
    trainer = create_trainer(TinyNet(), "quick_test", run_dir=tmp_path / "cv", monitor="train_loss")
    cv = trainer.train_with_cv(Points(), folds=2, val_fraction=0, log=lambda s: None)
    assert len(cv.fold_scores) == 2


class PointsAsDicts(Points):
    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        return {"x": x, "y": y}


class DictNet(TinyNet):
    """The README's model: dict batches, and no predict_step of its own."""

    def __call__(self, x):
        return self.linear(x)

    def compute_loss(self, batch):
        return super().compute_loss((batch["x"], batch["y"]))


def test_cv_with_a_predict_step_that_cannot_take_the_batches_fails_before_fold_0_trains(tmp_path):
    """The default predict_step failed on the dict batches only when fold 0's out-of-fold predict ran,
    after its training, leaving a half-written folder that the rerun was refused over."""
    from audiotrain import create_trainer

    trainer = create_trainer(DictNet(), "quick_test", run_dir=tmp_path / "cv", batch_size=8)
    with pytest.raises(
        TypeError, match=r"DictNet.predict_step \(TrainModule's default\) passed.*dict with keys "
    ):
        trainer.train_with_cv(PointsAsDicts(), folds=2, log=lambda s: None)
    assert not (tmp_path / "cv").exists()

    class Predicts(DictNet):
        def predict_step(self, batch, batch_idx):
            return self(batch["x"])

    def cv_scores(folder, check=True):
        mx.random.seed(0)
        trainer = create_trainer(Predicts(), "quick_test", run_dir=folder, batch_size=8)
        if not check:  # the folds train as they would without the check (its random draws are put back)
            trainer._check_predict_step = lambda loader: None
        return trainer.train_with_cv(PointsAsDicts(), folds=2, log=lambda s: None)

    checked, unchecked = cv_scores(tmp_path / "checked"), cv_scores(tmp_path / "unchecked", check=False)
    assert checked.oof.shape == (40, 3) and checked.fold_scores == unchecked.fold_scores
    np.testing.assert_array_equal(checked.oof, unchecked.oof)


def test_cv_checks_predict_step_at_the_trainers_precision_before_fold_0_trains(tmp_path):
    """The check before fold 0 ran predict_step in float32 whatever training.precision said (a mutation
    sweep): one that cannot take bfloat16 passed it and failed after fold 0 had trained."""
    from audiotrain import create_trainer

    class InvertsGram(TinyNet):
        def predict_step(self, batch, batch_idx):
            out = self(batch[0])
            return mx.linalg.inv(out.T @ out + mx.eye(3, dtype=out.dtype), stream=mx.cpu)  # (float32 only)

    trainer = create_trainer(InvertsGram(), "quick_test", run_dir=tmp_path / "cv", precision="bf16-mixed")
    with pytest.raises(ValueError, match=r"float32 or float64.*bfloat16"):
        trainer.train_with_cv(Points(), folds=2, log=lambda s: None)
    assert not (tmp_path / "cv").exists()


@pytest.mark.parametrize(
    "bias_correction, first_step", [(True, 1.0), (False, (1 - 0.9) / (1 - 0.999) ** 0.5)]
)
def test_adamw_bias_correction_sets_the_size_of_the_first_update(tmp_path, bias_correction, first_step):
    # optimizer.bias_correction dropped on the way to optim.AdamW left MLX's default, no correction: a first
    # step of ~3.16 x the learning rate where torch's AdamW takes 1 x (a mutation sweep).
    from audiotrain import create_trainer

    model = TinyNet()
    before = np.array(model.linear.weight)
    trainer = create_trainer(
        model,
        "quick_test",
        optimizer={
            "type": "adamw",
            "learning_rate": 1e-3,
            "weight_decay": 0.0,
            "bias_correction": bias_correction,
        },
        scheduler={"type": "constant", "warmup_ratio": 0.0},
        num_epochs=1,
        limit_train_batches=1,
        batch_size=8,
        run_dir=tmp_path / "run",
    )
    trainer.train(Points(), Points())
    step = np.abs(np.array(model.linear.weight) - before)
    assert step.max() == pytest.approx(1e-3 * first_step, rel=0.02), step


def test_a_constant_schedule_warms_up_first(tmp_path):
    from audiotrain import create_trainer

    trainer = create_trainer(
        TinyNet(),
        "quick_test",
        warmup_ratio=0.5,
        num_epochs=4,
        limit_train_batches=None,
        batch_size=8,
        run_dir=tmp_path / "run",
    )
    assert trainer.config.scheduler.type == "constant"
    result = trainer.train(Points(), Points())  # 5 steps an epoch: warmup 10 steps
    assert result.history["learning_rate"] == pytest.approx([5e-4, 1e-3, 1e-3, 1e-3])


def test_the_warmup_is_its_ratio_of_the_steps_rounded_up_as_in_hugging_faces_trainer(tmp_path):
    from audiotrain import create_trainer

    trainer = create_trainer(
        TinyNet(),
        "quick_test",
        warmup_ratio=0.31,
        num_epochs=4,
        limit_train_batches=None,
        batch_size=8,
        run_dir=tmp_path / "run",
    )
    result = trainer.train(Points(), Points())  # 5 steps an epoch, 20 in all: 6.2 warmup steps are 7
    assert result.history["learning_rate"][0] == pytest.approx(1e-3 * 5 / 7)


def test_a_cosine_schedule_ends_at_min_lr_ratio_of_the_peak(tmp_path):
    # scheduler.min_lr_ratio dropped on the way to the schedule let a cosine decay to 0 (a mutation sweep).
    from audiotrain import create_trainer

    trainer = create_trainer(
        TinyNet(),
        "quick_test",
        scheduler={"type": "cosine", "warmup_ratio": 0.0, "min_lr_ratio": 0.5},
        num_epochs=4,
        limit_train_batches=None,
        batch_size=8,
        run_dir=tmp_path / "run",
    )
    rates = trainer.train(Points(), Points()).history["learning_rate"]  # 20 steps from 1e-3 down to 5e-4
    assert len(rates) == 4 and rates[-1] < rates[0] <= 1e-3
    assert min(rates) >= 5e-4 * (1 - 1e-6), rates


def test_mlflow_without_its_package_names_the_setting(monkeypatch, tmp_path):
    import sys

    from audiotrain import create_trainer

    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ImportError, match="run.mlflow asks for mlflow: "):
        create_trainer(TinyNet(), "quick_test", mlflow=True, run_dir=tmp_path / "run")


# A data-parallel job's script: 2 ranks train a tiny module on 24 samples (rank 1 starts later, as on a busy
# machine). `mode` "train": each rank works in a folder of its own (as on two machines), so what rank 1
# writes shows; "cv": both in one folder, cross-validated twice.
# ---------------------------------------------------------------- the schedule's length; training.seed
class Stream:
    """Batches without a length (a generator-backed loader)."""

    def __iter__(self):
        return iter(batches(n=64))


def test_a_schedule_over_a_loader_without_a_length_is_refused_before_anything_is_written(tmp_path):
    from audiotrain import create_trainer

    settings = {"eval_strategy": "no", "monitor": "train_loss", "early_stopping": False, "num_epochs": 1}
    settings.update(progress_bar=False, scheduler={"type": "cosine", "warmup_ratio": 0.1})
    trainer = create_trainer(TinyNet(), "development", run_dir=tmp_path / "run", **settings)
    with pytest.raises(
        ValueError,
        match=r"training loader has no length \(len\(\)\), so the schedule of scheduler.type 'cosine'.*"
        r"Set training.max_steps.*create_trainer\(..., max_steps=N\)",
    ):
        trainer.train(Stream())
    assert not (tmp_path / "run").exists()  # (so the same run_dir works once it is fixed)
    trainer = create_trainer(TinyNet(), "development", run_dir=tmp_path / "run", max_steps=10, **settings)
    trainer.train(Stream())
    schedule = trainer.trainer.optimizer._schedulers["learning_rate"]
    assert (schedule.total_steps, schedule.warmup_steps, trainer.trainer.global_step) == (10, 1, 4)
    # training.limit_train_batches bounds the epoch as max_steps does: its schedule has a length.
    trainer = create_trainer(
        TinyNet(), "development", run_dir=tmp_path / "limited", limit_train_batches=3, **settings
    )
    trainer.train(Stream())
    schedule = trainer.trainer.optimizer._schedulers["learning_rate"]
    assert (schedule.total_steps, schedule.warmup_steps, trainer.trainer.global_step) == (3, 1, 3)
    settings["scheduler"] = {"type": "constant", "warmup_ratio": 0.0}  # a constant rate needs no length
    create_trainer(TinyNet(), "development", run_dir=tmp_path / "constant", **settings).train(Stream())


def seed_warnings(tmp_path, name, seed_first=None, **overrides):
    """The warnings about training.seed of two trainings of one `create_trainer`, `seed_everything(seed_first)`
    called before the module is built."""
    from audiotrain import create_trainer, seed_everything

    if seed_first is not None:
        seed_everything(seed_first)
    trainer = create_trainer(TinyNet(), "quick_test", run_dir=tmp_path / name, **overrides)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.train(batches(), batches(seed=1))
        trainer.train(batches(), batches(seed=1), overwrite=True)
    return [str(w.message) for w in caught if "training.seed" in str(w.message)]


def test_a_training_seed_that_did_not_draw_the_weights_is_warned_about_once(tmp_path):
    assert seed_warnings(tmp_path, "d") == []  # nothing seeded anywhere: no seed to repeat
    (unseeded,) = seed_warnings(tmp_path, "a", seed=5)
    assert unseeded.startswith(
        "create_trainer: training.seed is 5, but TinyNet's initial weights were drawn when it was built, before "
        "the config was read (audiotrain.seed_everything was never called)"
    )
    assert "audiotrain.seed_everything(config.training.seed); module = MyModule()" in unseeded
    (other,) = seed_warnings(tmp_path, "b", seed_first=3)  # training.seed the default 42
    assert "training.seed is 42" in other and "the last seed_everything seed was 3" in other
    assert seed_warnings(tmp_path, "c", seed_first=5, seed=5) == []


def test_the_readmes_seeding_before_building_repeats_a_config_weights_included(tmp_path):
    import audiotrain

    file = tmp_path / "run.yaml"
    file.write_text("preset: quick_test\ntraining:\n  seed: 5\n")
    runs = []
    for name in ("a", "b"):
        config = audiotrain.get_trainer_config(str(file), run_dir=str(tmp_path / name))
        audiotrain.seed_everything(config.training.seed)
        module = TinyNet()
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # (no warning about training.seed)
            audiotrain.create_trainer(module, config=config).train(batches(), batches(seed=1))
        runs.append(np.array(module.linear.weight))
    np.testing.assert_array_equal(*runs)
    resumed = audiotrain.create_trainer(TinyNet(), config=config, run_dir=str(tmp_path / "c"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed.train(batches(), batches(seed=1), ckpt_path=str(tmp_path / "b" / "checkpoints" / "last"))
    assert not [w for w in caught if "training.seed" in str(w.message)]  # (its weights are the checkpoint's)


DP_JOB = """
import os, sys, time

rank = int(os.environ["MLX_RANK"])
os.makedirs(f"rank{rank}")  # (train's run folder: each rank's own, to see that rank 1 writes none)
os.chdir(f"rank{rank}")
if rank == 1:
    time.sleep(1.2)  # the ranks' clocks read different seconds

import audiotrain
import mlx.core as mx
import mlx.nn as nn
import numpy as np
from audiotrain import TrainModule, create_trainer
from audiotrain.data import Dataset


class Points(Dataset):
    def __init__(self):
        self.x = np.random.default_rng(0).normal(size=(24, 8)).astype(np.float32)

    def __len__(self):
        return 24

    def __getitem__(self, i):
        return self.x[i], int(self.x[i, 0] > 0)


class Tiny(TrainModule):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 2)

    def __call__(self, x):
        return self.linear(x)

    def compute_loss(self, batch):
        x, y = batch
        return mx.mean(nn.losses.cross_entropy(self(x), y))


quiet = dict(limit_train_batches=None, batch_size=4)
trainer = create_trainer(Tiny(), "quick_test", **quiet)
print("run_dir", trainer.run_dir, flush=True)
trainer.train(Points(), Points())
os.chdir("..")  # cross-validation's folder, cvrun, is one folder the ranks share
trainer = create_trainer(Tiny(), "quick_test", run_dir="cvrun", **quiet)
cv = trainer.train_with_cv(Points(), folds=2, log=lambda s: None)
print("mean", cv.mean["test_loss"], flush=True)
try:
    trainer.train_with_cv(Points(), folds=2, log=lambda s: None)
except FileExistsError as error:
    print("refused", error, flush=True)
"""


@pytest.fixture(scope="module")
def data_parallel_job(tmp_path_factory):
    """One 2-rank launch of DP_JOB (a train, then a cross-validation), read by the two tests below: each
    launch spent seconds starting and importing in both ranks. Its folder and each rank's result."""
    from tests.distributed import run_ranks

    folder = tmp_path_factory.mktemp("dp")
    return folder, run_ranks(DP_JOB, cwd=folder, timeout=300)


@pytest.mark.serial
def test_data_parallel_train_has_one_run_folder_written_by_rank_0(data_parallel_job):
    from tests.distributed import describe

    tmp_path, ranks = data_parallel_job
    assert [r.returncode for r in ranks] == [0, 0], describe(ranks)
    assert ranks[0].lines()[0] == ranks[1].lines()[0]  # rank 0's run folder name
    (run,) = (tmp_path / "rank0" / "runs").iterdir()
    assert {p.name for p in run.iterdir()} == {"config.yaml", "history.json", "checkpoints"}
    assert not any(p.is_file() for p in (tmp_path / "rank1").rglob("*"))  # rank 1 wrote nothing


@pytest.mark.serial
def test_data_parallel_cross_validation_runs_and_refuses_its_folder_on_every_rank(data_parallel_job):
    from tests.distributed import describe

    tmp_path, ranks = data_parallel_job
    assert [r.returncode for r in ranks] == [0, 0], describe(ranks)
    assert ranks[0].lines()[1].startswith("mean ")
    assert ranks[0].lines()[1] == ranks[1].lines()[1]  # the same mean test loss
    for rank in ranks:  # the second run is refused on both ranks; none waits for the other
        assert rank.lines()[2].startswith("refused train_with_cv: run_dir cvrun already holds files")
    assert {p.name for p in (tmp_path / "cvrun").iterdir()} == {
        "fold0",
        "fold1",
        "folds.json",
        "cv_scores.json",
        "cv_scores.md",
    }


def test_an_edited_config_object_is_checked_by_create_trainer_and_the_trainer_class(tmp_path):
    # The README's pattern: edit the fields of a preset's config. It was not checked: adamax failed as a
    # KeyError in train(), a negative learning rate trained, and num_epochs 'abc' was named as max_epochs.
    import audiotrain
    from audiotrain.declarative import ConfiguredTrainer

    config = audiotrain.get_trainer_config("quick_test")
    config.optimizer.type = "adamax"
    with pytest.raises(ValueError, match="optimizer.type must be 'adamw', 'adam' or 'sgd', got 'adamax'"):
        audiotrain.create_trainer(TinyNet(), config=config, run_dir=str(tmp_path / "a"))
    with pytest.raises(ValueError, match=r"ConfiguredTrainer\(config=\.\.\.\): optimizer.type must be"):
        ConfiguredTrainer(TinyNet(), config)
    config.optimizer.type = "sgd"
    config.training.num_epochs = "abc"
    with pytest.raises(ValueError, match="field 'training.num_epochs' must be int, got 'abc'"):
        audiotrain.create_trainer(TinyNet(), config=config, run_dir=str(tmp_path / "a"))
    assert not (tmp_path / "a").exists()

    config.training.num_epochs = 2
    trainer = audiotrain.create_trainer(TinyNet(), config=config, run_dir=str(tmp_path / "a"))
    config.training.num_epochs = 7  # (a checked copy is used: a later edit cannot skip the checks)
    assert trainer.config.training.num_epochs == 2 and trainer.config.optimizer.type == "sgd"


def test_create_trainer_takes_a_dict_config_and_refuses_other_types(tmp_path):
    import audiotrain

    run_dir = tmp_path / "r21" / "a"
    trainer = audiotrain.create_trainer(
        TinyNet(), config={"training": {"num_epochs": 2}}, run_dir=str(run_dir)
    )
    assert trainer.config.training.num_epochs == 2 and trainer.run_dir == run_dir
    with pytest.raises(
        ValueError, match=r"^config dict: .*optimizer.learning_rate must be a finite number > 0"
    ):
        audiotrain.create_trainer(TinyNet(), config={"optimizer": {"learning_rate": -1}})
    with pytest.raises(
        TypeError, match=r"^create_trainer\(config=\.\.\.\): expected a preset name, .* got int"
    ):
        audiotrain.create_trainer(TinyNet(), config=3)
    # A dict as config_file (which takes a path), or an empty name, is named as the argument it was.
    with pytest.raises(TypeError, match=r"^create_trainer\(config_file=\.\.\.\): expected a YAML/JSON path"):
        audiotrain.create_trainer(TinyNet(), config="quick_test", config_file={"training": {}})
    for blank in ({"config": ""}, {"config_file": " "}):
        with pytest.raises(ValueError, match=r"^create_trainer\(config(_file)?=\.\.\.\): expected a preset"):
            audiotrain.create_trainer(TinyNet(), **blank)
    with pytest.raises(ValueError, match="training.monitor must name a metric"):
        audiotrain.create_trainer(TinyNet(), config="quick_test", monitor="")


def test_train_with_cv_overwrite_keeps_the_users_files_in_the_fold_folders(tmp_path):
    from audiotrain import create_trainer

    run_dir = tmp_path / "cv"

    def trainer():
        return create_trainer(TinyNet(), config="quick_test", batch_size=4, run_dir=str(run_dir))

    trainer().train_with_cv(Points(), folds=3, log=lambda s: None)
    (run_dir / "fold0" / "mine.txt").write_text("mine")
    (run_dir / "fold2" / "checkpoints" / "my-copy").mkdir()
    said = []
    again = trainer().train_with_cv(Points(), folds=2, overwrite=True, log=said.append)
    assert (run_dir / "fold0" / "mine.txt").read_text() == "mine"
    assert (run_dir / "fold2" / "checkpoints" / "my-copy").is_dir()
    # fold2's run (of the 3 folds before) is gone but for the user's folder; the new folds' runs are whole.
    assert [p.name for p in (run_dir / "fold2").rglob("*")] == ["checkpoints", "my-copy"]
    assert all(
        (d / "config.yaml").is_file() and (d / "checkpoints" / "best").is_dir() for d in again.fold_dirs
    )
    kept = [line for line in said if "kept what the previous run did not write" in line]
    assert len(kept) == 1 and "fold0/mine.txt" in kept[0] and "fold2/checkpoints/my-copy" in kept[0]


FOLD_FITS = []  # fits started, across the folds' copies of the callback below


def test_a_ctrl_c_in_a_fold_stops_the_cross_validation_and_scores_nothing_of_that_fold(tmp_path, capsys):
    from audiotrain import CrossValidationStopped, create_trainer
    from audiotrain.train.callbacks import Callback

    class CtrlCInFold1(Callback):
        def on_fit_start(self, trainer, module):
            FOLD_FITS.append(trainer)

        def on_train_epoch_end(self, trainer, module):
            if len(FOLD_FITS) == 2:  # fold 1's first epoch: as a Ctrl-C heard in a hook
                raise KeyboardInterrupt

    FOLD_FITS.clear()
    said = []
    trainer = create_trainer(
        TinyNet(),
        "quick_test",
        batch_size=8,
        num_epochs=3,
        run_dir=tmp_path / "cv",
        callbacks=[CtrlCInFold1()],
    )
    with pytest.raises(CrossValidationStopped) as stopped:
        trainer.train_with_cv(Points(), folds=3, log=said.append)
    assert isinstance(stopped.value, KeyboardInterrupt) and stopped.value.code == 130
    assert len(FOLD_FITS) == 2  # fold 2 never started
    assert (tmp_path / "cv" / "fold1" / "checkpoints" / "interrupted").is_dir()
    assert not (tmp_path / "cv" / "cv_scores.json").exists() and not (tmp_path / "cv" / "fold2").exists()
    assert "fold 1 was stopped" in said[-1] and "fold 0 trained and no scores written" in said[-1]
    # The fold's fit names no call to resume it with (a fold's trainer is not the user's): the line above
    # says what to do.
    assert "Resume with" not in capsys.readouterr().err


def test_a_cross_validation_that_failed_before_saving_leaves_nothing_and_the_fixed_rerun_uses_the_folder(
    tmp_path,
):
    from audiotrain import create_trainer

    run_dir = tmp_path / "cv"
    with pytest.raises(KeyError, match="typo"):
        create_trainer(BrokenNet(), "quick_test", batch_size=8).train_with_cv(
            Points(), folds=2, run_dir=run_dir, log=lambda line: None
        )
    assert not run_dir.exists()  # (not the folds.json of a cross-validation that never trained)
    cv = create_trainer(TinyNet(), "quick_test", batch_size=8).train_with_cv(
        Points(), folds=2, run_dir=run_dir, log=lambda line: None
    )
    assert (run_dir / "cv_scores.json").is_file() and len(cv.fold_scores) == 2


def ctrl_c_at_the_end_of_epoch(epoch: int):
    """A callback that stops the fit at the end of epoch `epoch` once, as a Ctrl-C heard there does."""
    from audiotrain.train.callbacks import Callback

    class CtrlC(Callback):
        heard = False

        def on_train_epoch_end(self, trainer, module):
            if trainer.current_epoch == epoch and not CtrlC.heard:
                CtrlC.heard = True
                raise KeyboardInterrupt

    return CtrlC()


def test_a_ctrl_c_in_train_skips_the_mlflow_registration_with_a_note_and_the_resumed_run_registers(
    tmp_path, monkeypatch, capsys
):
    from audiotrain import MLflowCallback, MLflowConfig, create_trainer

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    callback = MLflowCallback(MLflowConfig(log_models=True, register_model=True, model_name="mymodel"))
    run_dir = tmp_path / "run"
    trainer = create_trainer(
        TinyNet(),
        "quick_test",
        num_epochs=3,
        run_dir=str(run_dir),
        callbacks=[callback, ctrl_c_at_the_end_of_epoch(1)],
    )
    result = trainer.train(batches(), batches(seed=1))  # returns, as a stopped fit does: no RuntimeError
    assert trainer.trainer.interrupted and callback.registered_version is None
    assert result.best_checkpoint.is_dir() and (run_dir / "checkpoints" / "interrupted").is_dir()
    notes = [line for line in capsys.readouterr().err.splitlines() if "mymodel" in line]
    assert len(notes) == 1 and "not registered" in notes[0] and "was stopped" in notes[0]
    assert "trainer.train(" in notes[0] and str(trainer.trainer.interrupted_checkpoint) in notes[0]
    # What the note says: the resumed run, once it ends, registers its best checkpoint.
    trainer.train(batches(), batches(seed=1), ckpt_path=trainer.trainer.interrupted_checkpoint)
    assert not trainer.trainer.interrupted and trainer.trainer.current_epoch == 3
    assert callback.registered_version == "1"


def test_the_resume_hint_after_a_ctrl_c_in_train_is_a_call_that_continues_the_run(tmp_path, capsys):
    from audiotrain import create_trainer

    def run(name, stop):
        trainer = create_trainer(
            TinyNet(), "quick_test", num_epochs=3, seed=3, run_dir=str(tmp_path / name), callbacks=stop
        )
        trainer.module.update(TinyNet.initial)  # (the same weights in both runs)
        return trainer

    TinyNet.initial = TinyNet().parameters()
    train_loader, val_loader = batches(), batches(seed=1)
    whole = run("whole", [])
    whole.train(train_loader, val_loader)
    trainer = run("stopped", [ctrl_c_at_the_end_of_epoch(0)])
    trainer.train(train_loader, val_loader)
    (saved,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Saved ")]
    assert "Resume with trainer.train(" in saved and ".fit(" not in saved
    call = saved.split("Resume with ", 1)[1].rstrip(".")
    eval(call, {"trainer": trainer, "train_loader": train_loader, "val_loader": val_loader})  # as pasted
    assert trainer.trainer.current_epoch == 3
    # Without validation the call takes no val_loader.
    no_val = create_trainer(
        TinyNet(), "quick_test", eval_strategy="no", monitor="train_loss", run_dir=str(tmp_path / "no_val")
    )
    assert (
        no_val.trainer.resume_hint.format(path="p")
        == "Resume with trainer.train(train_loader, ckpt_path='p')"
    )
    history, whole_history = trainer.trainer.history, whole.trainer.history
    assert {k: v for k, v in history.items() if k != "time"} == {
        k: v for k, v in whole_history.items() if k != "time"
    }


def test_eval_steps_beyond_the_runs_batches_is_refused_naming_its_source_before_anything_is_written(tmp_path):
    """It never validated: no val_ metrics, no best checkpoint, and train_with_cv scored each fold's last
    weights, without a word."""
    from audiotrain import create_trainer

    file = tmp_path / "es.yaml"
    file.write_text(
        "preset: quick_test\ntraining:\n  eval_strategy: steps\n  eval_steps: 500\n  num_epochs: 2\n"
    )
    trainer = create_trainer(TinyNet(), config=str(file), batch_size=8, run_dir=tmp_path / "run")
    with pytest.raises(ValueError) as caught:
        trainer.train(Points(), Points())  # 2 epochs x 4 batches (quick_test's limit_train_batches)
    assert str(caught.value).startswith(
        f"{file}: training.eval_steps is 500, but the run trains 8 batches (2 epochs x 4 batches), so it "
        "would never validate: no val_ metrics, no best checkpoint."
    )
    assert "Set training.eval_steps to at most 8" in str(caught.value) and not (tmp_path / "run").exists()
    with pytest.raises(
        ValueError, match=r"^overrides: training.eval_steps is 7, but fold 0 trains 6 batches"
    ):
        create_trainer(TinyNet(), config=str(file), batch_size=8, eval_steps=7).train_with_cv(
            Points(), folds=2, run_dir=tmp_path / "cv", log=lambda line: None
        )
    assert not (tmp_path / "cv").exists()
    # training.max_steps bounds the run too, whatever the loader; eval_steps within the run trains.
    with pytest.raises(ValueError, match=r"trains 6 batches \(max_steps 3 x 2 accumulated\)"):
        create_trainer(
            TinyNet(), "quick_test", eval_strategy="steps", eval_steps=7, max_steps=3,
            accumulate_grad_batches=2, limit_train_batches=None, run_dir=tmp_path / "steps",
        ).train(Stream(), Points())  # fmt: skip
    trainer = create_trainer(TinyNet(), config=str(file), batch_size=8, eval_steps=8, run_dir=tmp_path / "ok")
    assert trainer.train(Points(), Points()).best_checkpoint is not None
    # With a length, an epoch's short last window is a step: 5 batches, 2 accumulated, are 3 steps (batches
    # 2, 4, 5), so max_steps 3 ends after 5 batches (6 was let through, and never validated).
    accumulating = dict(
        eval_strategy="steps",
        max_steps=3,
        accumulate_grad_batches=2,
        limit_train_batches=None,
        batch_size=4,
        num_epochs=3,
    )
    with pytest.raises(ValueError, match=r"trains 5 batches \(max_steps 3, 3 an epoch of 5 batches 2 acc"):
        create_trainer(TinyNet(), "quick_test", eval_steps=6, **accumulating).train(Points(20), Points())
    trainer = create_trainer(TinyNet(), "quick_test", eval_steps=5, run_dir=tmp_path / "acc", **accumulating)
    assert trainer.train(Points(20), Points()).history["val_loss"][-1] is not None


def test_a_misspelt_monitor_is_named_as_the_config_setting_at_the_sanity_check(tmp_path):
    """It was found after a whole epoch, by the EarlyStopping the user never made, naming neither
    training.monitor nor the file."""
    from audiotrain import create_trainer
    from audiotrain.train.callbacks import Callback

    class CountBatches(Callback):
        batches = 0

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            CountBatches.batches += 1

    file = tmp_path / "mon.yaml"
    file.write_text("preset: development\ntraining:\n  monitor: val_acc\n  mode: max\n")
    trainer = create_trainer(
        TinyNet(), config=str(file), batch_size=8, run_dir=tmp_path / "run", callbacks=[CountBatches()]
    )
    with pytest.raises(KeyError) as caught:
        trainer.train(Points(), Points())
    assert str(caught.value).startswith(
        f"{file}: training.monitor 'val_acc' was not logged (did you mean 'val_accuracy'?); validation logs: "
        "val_accuracy, val_loss. Found by the sanity check before training"
    )
    assert CountBatches.batches == 0 and not (tmp_path / "run").exists()
    # Without a sanity check (a val loader that is an iterator), at the first validation, named alike.
    trainer = create_trainer(TinyNet(), "quick_test", monitor="val_acc", mode="max", run_dir=tmp_path / "r2")
    with pytest.raises(KeyError) as caught:
        trainer.train(batches(), iter(batches(seed=1)))
    assert str(caught.value).startswith(
        "overrides: training.monitor 'val_acc' was not logged (did you mean 'val_accuracy'?)"
    )


def test_train_with_cv_needs_an_integer_number_of_folds():
    from audiotrain import create_trainer

    with pytest.raises(ValueError, match=r"^train_with_cv: folds must be an integer >= 2 .*got 2\.0"):
        create_trainer(TinyNet(), "quick_test").train_with_cv(Points(), folds=2.0)
    with pytest.raises(ValueError, match=r"^train_with_cv: cross-validation needs folds >= 2, got 1"):
        create_trainer(TinyNet(), "quick_test").train_with_cv(Points(), folds=1)


VAL_SEEN = []  # the samples each fold's validation batches held (outside the callback: not copied per fold)


def test_each_fold_validates_on_its_own_validation_samples_not_on_its_training_samples(tmp_path):
    """A fold's checkpoint choice and early stopping read its held-out validation part: validating on the
    samples it trains on would pick an optimistic 'best' without a word."""
    from audiotrain import create_trainer
    from audiotrain.train.callbacks import Callback

    class SeenInValidation(Callback):
        def on_fit_start(self, trainer, module):
            VAL_SEEN.append(set())

        def on_validation_batch_start(self, trainer, module, batch, batch_idx):
            VAL_SEEN[-1].update(tuple(row) for row in np.array(batch[0]).tolist())

    data = Points()
    index_of = {tuple(row): i for i, row in enumerate(data.x.tolist())}
    trainer = create_trainer(
        TinyNet(), "quick_test", batch_size=4, limit_val_batches=None, callbacks=[SeenInValidation()],
        run_dir=tmp_path / "cv",
    )  # fmt: skip
    cv = trainer.train_with_cv(data, folds=3, val_fraction=0.25, log=lambda s: None)
    folds = json.loads((cv.run_dir / "folds.json").read_text())["folds"]
    assert len(VAL_SEEN) == 3
    for fold, seen in zip(folds, VAL_SEEN):
        assert fold["val"] and {index_of[row] for row in seen} == set(fold["val"])


class GrowingBias(TinyNet):
    """Its training steps raise the bias every step, and its validation loss is that bias: the best
    checkpoint is the first epoch's, and the last epoch's weights score and predict otherwise."""

    def compute_loss(self, batch):
        return -mx.mean(self(batch[0]))

    def validation_step(self, batch, batch_idx=0):
        return mx.sum(self.linear.bias) + 0 * mx.mean(batch[0])


def test_each_fold_is_scored_and_predicts_its_held_out_samples_with_its_best_checkpoint(tmp_path):
    """README: each fold is scored with its best checkpoint, not with the weights its last epoch left."""
    from audiotrain import create_trainer

    data = Points()
    trainer = create_trainer(GrowingBias(), "quick_test", batch_size=4, num_epochs=2, run_dir=tmp_path / "cv")
    cv = trainer.train_with_cv(data, folds=2, log=lambda s: None)
    folds = json.loads((cv.run_dir / "folds.json").read_text())["folds"]
    for k, fold in enumerate(folds):
        assert np.argmin(cv.histories[k]["val_loss"]) == 0  # (the best is not the last)
        held_out = mx.array(data.x[fold["test"]])
        outputs = {}
        for which in ("best", "last"):
            module = GrowingBias()
            module.load_weights(str(cv.fold_dirs[k] / "checkpoints" / which / "model.safetensors"))
            outputs[which] = np.array(module(held_out))
        assert not np.allclose(outputs["best"], outputs["last"])
        assert cv.fold_scores[k]["test_loss"] == pytest.approx(-outputs["best"].mean(), rel=1e-5)
        np.testing.assert_allclose(cv.oof[fold["test"]], outputs["best"], rtol=1e-5)


@pytest.mark.parametrize("where", ["override", "yaml"])
def test_training_precision_reaches_the_trainer_and_bf16_true_trains_in_bfloat16(tmp_path, where):
    # Seed 003's "mixed precision": training.precision (an override, or a YAML file's training section)
    # is the shared Trainer's precision; dropped on the way, the run trained in float32 without a word.
    from audiotrain import create_trainer

    def make(precision, name):
        run_dir = str(tmp_path / name)
        if where == "override":
            return create_trainer(TinyNet(), "quick_test", run_dir=run_dir, precision=precision)
        file = tmp_path / f"{name}.yaml"
        file.write_text(f"preset: quick_test\ntraining:\n  precision: {precision}\n")
        return create_trainer(TinyNet(), config=file, run_dir=run_dir)

    assert make("bf16-mixed", "mixed").trainer.precision == "bf16-mixed"
    trainer = make("bf16-true", "true")
    assert trainer.trainer.precision == "bf16-true"
    trainer.train(batches(), batches(seed=1))
    assert trainer.module.linear.weight.dtype == mx.bfloat16


def test_the_production_preset_and_the_training_settings_reach_the_trainer_and_its_callbacks(tmp_path):
    # The production preset clips gradients at 1.0 and warms up over 5% of the steps; a training section's
    # accumulation, validation limit and monitor mode are the Trainer's and its callbacks'.
    from audiotrain import create_trainer
    from audiotrain.train.callbacks import EarlyStopping, ModelCheckpoint

    production = create_trainer(TinyNet(), "production", run_dir=str(tmp_path / "p"))
    assert production.trainer.gradient_clip_val == 1.0
    assert production.config.scheduler.warmup_ratio == 0.05
    for patience, trainer in [
        (5, production),
        (3, create_trainer(TinyNet(), "production", patience=3, run_dir=str(tmp_path / "p3"))),
    ]:
        (stopper,) = [cb for cb in trainer.trainer.callbacks if isinstance(cb, EarlyStopping)]
        assert stopper.patience == patience
    overrides = {
        "accumulate_grad_batches": 2,
        "limit_val_batches": 3,
        "monitor": "val_accuracy",
        "mode": "max",
    }
    trainer = create_trainer(TinyNet(), "production", run_dir=str(tmp_path / "o"), **overrides).trainer
    assert (trainer.accumulate_grad_batches, trainer.limit_val_batches) == (2, 3)
    callbacks = [cb for cb in trainer.callbacks if isinstance(cb, EarlyStopping | ModelCheckpoint)]
    assert len(callbacks) == 2 and {(cb.monitor, cb.mode) for cb in callbacks} == {("val_accuracy", "max")}


def test_a_monitor_that_rises_with_the_default_mode_min_is_refused_naming_its_line(tmp_path):
    """`monitor: val_accuracy` without `mode:` kept mode 'min': the best checkpoint was the least accurate
    epoch and early stopping stopped while accuracy rose, without a word (Hugging Face's Trainer takes such a
    name as greater-is-better). Such a monitor now needs its mode; a loss or an error rate keeps 'min'."""
    from audiotrain import create_trainer, get_trainer_config

    file = tmp_path / "run.yaml"
    file.write_text("optimizer:\n  learning_rate: 0.01\ntraining:\n  monitor: val_accuracy\n")
    with pytest.raises(ValueError) as caught:
        create_trainer(TinyNet(), config=str(file), run_dir=tmp_path / "run")
    message = str(caught.value)
    assert message.startswith(f"{file} line 4: training.monitor is 'val_accuracy'")
    assert "training.mode is 'min', the default" in message and "training.mode: max" in message
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match=r"^overrides: training.monitor is 'val_f1_macro'"):
        get_trainer_config("quick_test", monitor="val_f1_macro")
    file.write_text("training:\n  monitor: val_accuracy\n  mode: max\n")
    assert get_trainer_config(str(file)).training.mode == "max"
    assert get_trainer_config("quick_test", monitor="val_accuracy", mode="min").training.mode == "min"
    for falling in ("val_loss", "val_wer", "val_error_rate", "train_loss"):
        assert get_trainer_config("quick_test", monitor=falling).training.mode == "min"


def test_a_preset_given_as_a_keyword_is_pointed_to_config(tmp_path):
    """`create_trainer(model, preset="production")` (the recipes' --preset, a file's `preset:`) was refused as
    "unknown setting 'preset'" followed by the list of every setting, none of which is the way to name one."""
    from audiotrain import create_trainer, get_trainer_config

    for make in (create_trainer, lambda *a, **k: get_trainer_config(**k)):
        with pytest.raises(ValueError) as caught:
            make(TinyNet(), preset="production", run_dir=tmp_path / "run")
        message = str(caught.value)
        assert message.startswith("overrides: 'preset' is no setting: a preset is named as config=")
        assert "config='production'" in message and "quick_test, development, production, kaggle" in message
        assert "(settings:" not in message


def test_seed003_custom_callback_imports_from_audiotrain_callbacks(tmp_path, capsys):
    # Seed 003's `from training.callbacks import Callback`, read with training -> audiotrain, as its
    # `training.integrations` is `audiotrain.integrations` (it had been a ModuleNotFoundError).
    from audiotrain import create_trainer
    from audiotrain.callbacks import Callback, EarlyStopping, ModelCheckpoint, ProgressBar
    from audiotrain.train import callbacks

    assert (Callback, EarlyStopping, ModelCheckpoint, ProgressBar) == (
        callbacks.Callback,
        callbacks.EarlyStopping,
        callbacks.ModelCheckpoint,
        callbacks.ProgressBar,
    )

    class CustomCallback(Callback):
        def on_epoch_end(self, trainer, state):
            print(f"Epoch {state.epoch} completed!")

    trainer = create_trainer(
        TinyNet(), "quick_test", callbacks=[CustomCallback()], num_epochs=2, run_dir=tmp_path / "run"
    )
    trainer.train(Points(), Points(8))
    assert "Epoch 0 completed!\n" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("short", "meant"), [("bs", "batch_size"), ("wd", "weight_decay"), ("lr", "learning_rate")]
)
def test_create_trainer_reads_a_search_scripts_short_names_as_the_command_line_does(short, meant):
    """``create_trainer(model, lr=...)`` got "did you mean 'learning_rate'?", and the recipes' ``--bs`` and
    ``--wd`` their setting, but ``create_trainer(model, bs=8)`` and ``wd=`` named none: the Python API and
    the command line read short names from two tables."""
    from audiotrain import create_trainer

    with pytest.raises(ValueError, match=rf"unknown setting {short!r}; did you mean {meant!r}\?"):
        create_trainer(TinyNet(), **{short: 8})


def test_a_list_of_samples_given_as_the_loader_is_told_to_go_through_a_dataloader(tmp_path):
    """train(samples[:32], samples[32:]) with a plain list of (x, y) samples (train's docstring: "a Dataset is
    batched") failed in the sanity check with "batch[0] is a ndarray, but batch leaves must be mx.array",
    not saying that a list is taken as a list of batches. It is refused before the run folder is made."""
    from audiotrain import create_trainer

    samples = [Points()[i] for i in range(40)]
    trainer = create_trainer(TinyNet(), "quick_test", run_dir=str(tmp_path / "run"), batch_size=8)
    with pytest.raises(TypeError, match=r"train_loader is a list, taken as a list of batches.*DataLoader\("):
        trainer.train(samples[:32], samples[32:])
    assert not (tmp_path / "run").exists()
    assert trainer.train(Points(), Points()).run_dir == tmp_path / "run"  # a Dataset is batched


def test_train_with_cv_train_transforms_augment_only_the_folds_training_samples(tmp_path):
    # ESC-50 style: waveform augmentation must not reach validation or the held-out scores, while the
    # loader's own cpu_transforms (features) run everywhere, after the augmentation.
    from audiotrain import create_trainer
    from audiotrain.data import DataLoader

    def augment(sample):
        x, y = sample
        return x + 100.0, y

    def features(sample):
        x, y = sample
        return x * 2, y

    for data in (DataLoader(Points(), batch_size=4, cpu_transforms=[features]), Points()):
        trainer = create_trainer(TinyNet(), config="quick_test", run_dir=str(tmp_path / "run"))
        _, fold_loader = trainer._fold_data(data, train_transforms=augment)
        scale = 2 if isinstance(data, DataLoader) else 1
        train_x = np.concatenate([np.asarray(x) for x, _ in fold_loader([0, 1, 2, 3], True)])
        test_x = np.concatenate([np.asarray(x) for x, _ in fold_loader([0, 1, 2, 3], False)])
        assert sorted(train_x[:, 0]) == pytest.approx(sorted((Points().x[:4, 0] + 100) * scale))
        np.testing.assert_allclose(test_x, Points().x[:4] * scale)

    seen = []
    trainer = create_trainer(TinyNet(), config="quick_test", run_dir=str(tmp_path / "cv"))
    cv = trainer.train_with_cv(Points(), folds=2, train_transforms=[lambda s: seen.append(1) or s])
    assert len(cv.fold_scores) == 2 and seen  # ran, in training only (the loaders above)
    with pytest.raises(TypeError, match="train_transforms must be callables"):
        trainer.train_with_cv(Points(), folds=2, train_transforms=["gain"], run_dir=str(tmp_path / "x"))


def test_train_with_cv_with_the_datas_own_folds_as_groups_says_which_fold_each_one_holds_out(tmp_path):
    # ESC-50's meta CSV numbers its folds 1-5; given as groups, fold k of the cross-validation holds out
    # whichever data fold the seeded shuffle gave it, so each fold's line names its groups.
    from audiotrain import create_trainer

    data_fold = [i % 3 + 1 for i in range(40)]
    lines = []
    trainer = create_trainer(TinyNet(), config="quick_test", run_dir=str(tmp_path / "cv"))
    trainer.train_with_cv(Points(), folds=3, groups=data_fold, log=lines.append)
    folds = json.loads((tmp_path / "cv" / "folds.json").read_text())["folds"]
    for fold in folds:
        held_out, val = data_fold[fold["test"][0]], data_fold[fold["val"][0]]
        (line,) = [line for line in lines if line.startswith(f"fold {fold['index']} (")]
        assert line.endswith(f"held-out samples (groups val: {val}; held out: {held_out})")


def test_train_with_cv_names_the_groups_of_a_column_indexed_by_its_labels(tmp_path):
    # A pandas column of a filtered table (ESC-10's rows of ESC-50's meta CSV) keeps its row labels, and
    # groups[i] reads a label, not the i-th value: the fold lines stopped with a bare KeyError (or named
    # another row's group) after the folds were split by position.
    from audiotrain import create_trainer

    class Column:  # pandas.Series' indexing: by label, iterating over the values
        def __init__(self, values, labels):
            self.values, self.by_label = list(values), dict(zip(labels, values))

        def __len__(self):
            return len(self.values)

        def __iter__(self):
            return iter(self.values)

        def __getitem__(self, label):
            return self.by_label[label]

    data_fold = [i % 3 + 1 for i in range(40)]
    lines = []
    trainer = create_trainer(TinyNet(), config="quick_test", run_dir=str(tmp_path / "cv"))
    groups = Column(data_fold, labels=range(100, 140))
    trainer.train_with_cv(Points(), folds=3, groups=groups, log=lines.append)
    folds = json.loads((tmp_path / "cv" / "folds.json").read_text())["folds"]
    for fold in folds:
        held_out, val = data_fold[fold["test"][0]], data_fold[fold["val"][0]]
        (line,) = [line for line in lines if line.startswith(f"fold {fold['index']} (")]
        assert line.endswith(f"held-out samples (groups val: {val}; held out: {held_out})")
