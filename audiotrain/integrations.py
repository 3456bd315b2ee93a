"""Seed 003's MLflow integration: `MLflowConfig` and `MLflowCallback` for `create_trainer`.

    mlflow_config = MLflowConfig(experiment_name="bert-experiments", run_name="titanic-v2",
                                 log_models=True, register_model=True, model_name="titanic-bert")
    trainer = create_trainer(model, callbacks=[MLflowCallback(mlflow_config)])

The callback is the run's MLflow tracking: `create_trainer` builds the shared Trainer's `MLflowLogger` from
its config (params, metrics, and with ``log_models`` the best checkpoint as an artifact when training
ends), and with ``register_model`` `ConfiguredTrainer.train` then registers that checkpoint as a new version
of ``model_name`` in MLflow's model registry. It is the same tracking as the config's ``run.mlflow: true``,
which takes its names from the config file instead; giving both is refused (one run, one tracking).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from audiotrain.train.callback import Callback

if TYPE_CHECKING:
    from audiotrain.train.loggers.mlflow_logger import MLflowLogger


@dataclass
class MLflowConfig:
    """Where and how a `create_trainer` run is tracked in MLflow.

    Attributes:
        experiment_name: the MLflow experiment (created if missing).
        run_name: the run's name (default: MLflow's own).
        tracking_uri: a server, ``sqlite:///path.db`` or a folder; default: the run folder's
            ``sqlite:///mlflow.db``, as ``run.mlflow`` uses.
        tags: tags set on the run.
        log_models: upload the best checkpoint (safetensors + JSON) as the run's ``checkpoints/<name>``.
        register_model: register that checkpoint as a new version of ``model_name`` (needs ``log_models``).
        model_name: the registered model's name.
    """

    experiment_name: str = "default"
    run_name: str | None = None
    tracking_uri: str | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    log_models: bool = True
    register_model: bool = False
    model_name: str | None = None

    def __post_init__(self):
        for name in ("experiment_name", "run_name", "tracking_uri", "model_name"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"MLflowConfig.{name} must be a non-empty string, got {value!r}")
        for name in ("log_models", "register_model"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"MLflowConfig.{name} must be True or False, got {getattr(self, name)!r}")
        if not isinstance(self.tags, dict):
            raise TypeError(f"MLflowConfig.tags must be a dict, got {type(self.tags).__name__}")
        if self.register_model and not self.log_models:
            raise ValueError(
                "MLflowConfig: register_model=True registers the checkpoint that log_models uploads; set "
                "log_models=True too"
            )
        if self.register_model and self.model_name is None:
            raise ValueError(
                "MLflowConfig: register_model=True needs model_name (the registered model's name)"
            )


class MLflowCallback(Callback):
    """Seed 003's MLflow tracking for `create_trainer(model, callbacks=[MLflowCallback(config)])` (see the
    module docstring). Given to a plain `Trainer`, it is refused when the fit starts: there, pass
    ``logger=MLflowLogger(...)``."""

    def __init__(self, config: MLflowConfig | None = None, **settings: Any):
        if config is not None and settings:
            raise TypeError("MLflowCallback: give an MLflowConfig or its fields as keywords, not both")
        if config is not None and not isinstance(config, MLflowConfig):
            raise TypeError(f"MLflowCallback: expected an MLflowConfig, got {type(config).__name__}")
        self.config = config if config is not None else MLflowConfig(**settings)
        self.registered_version: str | None = None  # set by `register` (the model registry's version)
        self._logger: MLflowLogger | None = None  # the Trainer's logger `make_logger` built from the config

    def setup(self, trainer, module, stage: str) -> None:
        if self._logger is None or not any(lg is self._logger for lg in trainer.loggers):
            raise TypeError(
                "MLflowCallback is seed 003's tracking for create_trainer(model, callbacks=[...]); with a "
                "Trainer, pass logger=audiotrain.train.loggers.MLflowLogger(experiment_name=..., "
                "log_model=True) instead"
            )

    def make_logger(self, default_tracking_uri: str) -> MLflowLogger:
        """The Trainer's logger for this config (the run folder's store unless ``tracking_uri`` is set)."""
        from audiotrain.train.loggers.mlflow_logger import MLflowLogger

        c = self.config
        self._logger = MLflowLogger(
            experiment_name=c.experiment_name,
            run_name=c.run_name,
            tracking_uri=c.tracking_uri or default_tracking_uri,
            tags=c.tags,
            log_model=c.log_models,
        )
        return self._logger

    def register(self, logger: MLflowLogger) -> str | None:
        """After training: register the run's uploaded best checkpoint as a new version of ``model_name``;
        returns the version (None when ``register_model`` is off)."""
        if not self.config.register_model:
            return None
        run_id = logger.version
        if run_id is None:
            raise RuntimeError(
                "MLflowCallback: the MLflow run never started (see the logger's warning above), so there is "
                f"no checkpoint to register as {self.config.model_name!r}"
            )
        from mlflow.tracking import MlflowClient

        # A client of its own: the logger's `experiment` would reopen the finished run.
        client = MlflowClient(tracking_uri=logger.tracking_uri)
        run = client.get_run(run_id)
        checkpoint = run.data.tags.get("best_checkpoint")
        if checkpoint is None:
            raise RuntimeError(
                f"MLflowCallback: run {run_id} holds no uploaded checkpoint to register as "
                f"{self.config.model_name!r} (no checkpoint was saved?)"
            )
        from mlflow.exceptions import MlflowException

        name = self.config.model_name
        try:
            client.get_registered_model(name)
        except MlflowException:
            client.create_registered_model(name)
        version = client.create_model_version(
            name, f"{run.info.artifact_uri}/{checkpoint}", run_id=run_id, tags={"checkpoint": checkpoint}
        )
        self.registered_version = str(version.version)
        return self.registered_version
