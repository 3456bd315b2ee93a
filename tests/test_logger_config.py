"""LoggerConfig and build_loggers: the loggers a recipe run names, made for its run folder."""

import re
import sys

import audiotrain  # noqa: F401
from audiotrain.train.loggers import (
    LOGGER_NAMES,
    CSVLogger,
    LoggerConfig,
    MissingLoggerPackage,
    MLflowLogger,
    TensorBoardLogger,
    WandbLogger,
    build_loggers,
)

import pytest


def test_no_names_no_loggers(tmp_path):
    assert build_loggers(LoggerConfig(), tmp_path) == []
    assert LoggerConfig(names=" , ").selected() == []


def test_every_logger_writes_under_the_run_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run = tmp_path / "runs" / "demo"
    config = LoggerConfig(names="csv, MLflow,tensorboard,wandb,csv", offline=True, log_model="all")
    tb, wandb, mlflow, csv = build_loggers(config, run)  # in LOGGER_NAMES' order, each once
    assert isinstance(tb, TensorBoardLogger) and tb.log_dir == run / "tensorboard" / "version_0"
    assert isinstance(csv, CSVLogger) and csv.metrics_file == run / "csv" / "version_0" / "metrics.csv"
    assert isinstance(wandb, WandbLogger) and wandb.save_dir == run and wandb.offline
    assert wandb.name == "demo" and wandb.project == "audiotrain" and wandb.log_model == "all"
    assert isinstance(mlflow, MLflowLogger) and mlflow.tracking_uri == f"sqlite:///{run / 'mlflow.db'}"
    assert mlflow.experiment_name == "audiotrain" and mlflow.run_name == "demo" and mlflow.log_model == "all"
    assert not run.exists()  # nothing is written before the run starts


def test_mlflow_settings_and_the_environments_store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.internal:5000")
    (mlflow,) = build_loggers(LoggerConfig(names="mlflow", experiment="chords", run_name="r1"), tmp_path)
    assert mlflow.tracking_uri == "http://tracking.internal:5000"
    assert mlflow.experiment_name == "chords" and mlflow.run_name == "r1" and mlflow.log_model is True
    config = LoggerConfig(names="mlflow", tracking_uri="https://mlflow.example.com", log_model="false")
    (mlflow,) = build_loggers(config, tmp_path)
    assert mlflow.tracking_uri == "https://mlflow.example.com" and mlflow.log_model is False


def test_unknown_logger_names_the_valid_ones_and_the_closest(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"unknown logger 'tensorbord' in logger.names \(--logger\) \(did you mean 'tensorboard'\?\); the loggers are tensorboard, wandb, mlflow, csv",
    ):
        LoggerConfig(names="csv,tensorbord")
    with pytest.raises(ValueError, match="logger.log_model .* must be false, true or all, got 'sometimes'"):
        LoggerConfig(log_model="sometimes")
    assert LoggerConfig(log_model=False).model_logging is False  # from Python, a bool is fine too
    assert set(LOGGER_NAMES) == {"tensorboard", "wandb", "mlflow", "csv"}


def test_the_package_check_names_the_runs_own_store_and_the_extra_first(tmp_path, monkeypatch):
    """The check named a placeholder store (``<cwd>/run/mlflow.db``) as if it were the run's, and its first
    advice, ``pip install mlflow-skinny``, led only to the next error (sqlalchemy and alembic)."""
    from audiotrain.train.loggers import mlflow_logger

    real = mlflow_logger.importlib.util.find_spec
    monkeypatch.setattr(
        mlflow_logger.importlib.util, "find_spec", lambda name: None if name == "sqlalchemy" else real(name)
    )
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run = tmp_path / "runs" / "ms1"
    with pytest.raises(
        MissingLoggerPackage,
        match=re.escape(f"the local store sqlite:///{run / 'mlflow.db'} needs sqlalchemy"),
    ):
        LoggerConfig(names="mlflow").check_packages(run)
    with pytest.raises(MissingLoggerPackage, match=r"sqlite:///\S*/runs/<the new run folder>/mlflow\.db"):
        LoggerConfig(names="mlflow").check_packages()  # a default folder, not named yet
    assert not run.exists()
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(MissingLoggerPackage) as missing:
        LoggerConfig(names="mlflow").check_packages(run)
    assert str(missing.value).endswith(
        "not installed: pip install 'audiotrain[loggers]' (or pip install mlflow-skinny sqlalchemy alembic)"
    )
    monkeypatch.setitem(sys.modules, "wandb", None)  # a dependency, not in the extra: uninstalled by hand
    with pytest.raises(
        MissingLoggerPackage, match=r"needs the 'wandb' package, which is not installed: pip install wandb$"
    ):
        LoggerConfig(names="wandb").check_packages(run)


def test_a_package_installed_but_failing_to_import_is_not_called_missing(tmp_path, monkeypatch):
    # wandb 0.16 imports pkg_resources, which setuptools 82 dropped: "not installed: pip install wandb"
    # sent the user to a pip that answered "Requirement already satisfied".
    fake = tmp_path / "site" / "wandb"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("import pkg_resources_that_is_gone\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "wandb", raising=False)
    with pytest.raises(MissingLoggerPackage) as failed:
        LoggerConfig(names="wandb").check_packages(tmp_path / "run")
    said = str(failed.value)
    assert "'wandb' package, which is installed but failed to import" in said
    assert "No module named 'pkg_resources_that_is_gone'" in said and "not installed" not in said


def test_a_missing_package_names_the_logger_and_what_to_install(tmp_path, monkeypatch):
    for module in ("tensorboardX", "torch.utils.tensorboard"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(
        MissingLoggerPackage,
        match=r"logger.names \(--logger\) asks for tensorboard: .*pip install tensorboardX",
    ):
        build_loggers(LoggerConfig(names="csv,tensorboard"), tmp_path)
    with pytest.raises(MissingLoggerPackage, match=r"\(--logger\) asks for tensorboard"):
        LoggerConfig(names="tensorboard").check_packages()  # what the recipes ask before reading any data
    LoggerConfig(names="csv").check_packages()
    with pytest.raises(ValueError):  # a setting the user can change: the recipes print it as one line
        build_loggers(LoggerConfig(names="tensorboard"), tmp_path)


def test_log_artifacts_sends_what_exists_and_closes_the_runs_again(tmp_path, monkeypatch):
    from audiotrain.train.loggers import log_artifacts

    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "curves.png").write_bytes(b"png")
    loggers = build_loggers(LoggerConfig(names="mlflow,csv"), tmp_path)
    loggers[0].log_metrics({"loss": 1.0}, step=1)
    loggers[0].finalize("success")  # as fit leaves it
    paths = {"plots": tmp_path / "plots", "absent": tmp_path / "nope", "none": None}
    sent = log_artifacts(loggers, paths, metrics={"test_acc": 0.5, "test_nan": float("nan")}, step=1)
    assert sent == ["plots"]
    run = MlflowClient(loggers[0].tracking_uri).get_run(loggers[0].version)
    assert run.info.status == "FINISHED" and run.data.metrics == {"loss": 1.0, "test_acc": 0.5}
    assert (loggers[0].log_dir / "plots" / "curves.png").read_bytes() == b"png"
    csv = loggers[1]
    assert [p.name for p in csv.log_dir.iterdir()] == ["metrics.csv"]  # the scores, no artifact
    assert "test_acc" in csv.metrics_file.read_text()


@pytest.mark.parametrize(("written", "expected"), [("false", False), ("true", True), ("all", "all")])
def test_a_config_files_log_model_may_be_a_yaml_bool(written, expected, tmp_path):
    """``logger: {log_model: false}`` in a --config file, as the help says ("false, true or all") and as
    Lightning's loggers take it, was refused: "field 'logger.log_model' must be str, got False"."""
    from audiotrain.recipes.chords.config import TrainingConfig
    from audiotrain.recipes.config_cli import load_config_file

    path = tmp_path / "run.yaml"
    path.write_text(f"logger:\n  names: csv\n  log_model: {written}\n")
    config = load_config_file(TrainingConfig(), path)
    assert config.logger.model_logging == expected
    path.write_text("logger:\n  log_model: 3\n")  # a number is still no choice of these
    with pytest.raises(ValueError, match=r"run\.yaml: field 'logger.log_model' must be str, got 3"):
        load_config_file(TrainingConfig(), path)


@pytest.mark.parametrize(
    "settings, said",
    [
        (
            {"names": "csv", "tracking_uri": "http://tracking:5000"},
            "logger.tracking_uri (--logger.tracking_uri) is an MLflow setting and changes nothing here: "
            "logger.names (--logger) is 'csv', without mlflow; add mlflow to --logger",
        ),
        (
            {"project": "chords"},
            "logger.project (--logger.project) is a W&B and MLflow setting and changes nothing here: "
            "logger.names (--logger) is '', without wandb or mlflow",
        ),
        (
            {"names": "tensorboard", "log_model": "all"},
            "logger.log_model (--logger.log_model) is a W&B and MLflow setting",
        ),
        (
            {"required": True},
            "logger.required (--logger.required) is a setting of the loggers and changes nothing here: "
            "logger.names (--logger) is '', no logger; name one with --logger",
        ),
    ],
)
def test_a_setting_without_a_logger_that_reads_it_is_refused_where_a_run_starts(settings, said, tmp_path):
    """``--logger.tracking_uri URI`` without mlflow (or ``--logger.project`` without any logger) ran without a
    word, and config.json recorded a setting that did nothing; only --logger.offline was refused so."""
    config = LoggerConfig(**settings)  # (a recorded run's config still loads)
    with pytest.raises(ValueError, match=re.escape(said)):
        config.check_packages(tmp_path / "run")
    assert not (tmp_path / "run").exists()
