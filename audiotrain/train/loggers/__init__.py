"""Experiment loggers: Weights & Biases, TensorBoard, MLflow and CSV behind one small interface.

- `Logger`, `LoggerWarning`, `LoggerNotStarted`, `STATUSES`, `flatten_params`, `rank_zero_experiment`
  (``loggers.base``: the interface, how a failing backend is handled, a required one, lazy runs and resuming,
  Lightning's decorator for a custom logger's ``experiment``)
- `WandbLogger` (``loggers.wandb_logger``), `TensorBoardLogger` (``loggers.tensorboard_logger``),
  `MLflowLogger` (``loggers.mlflow_logger``; also as Lightning's `MLFlowLogger`), `CSVLogger`
  (``loggers.csv_logger``)
- `LoggerConfig`, `build_loggers`, `LOGGER_NAMES`, `log_artifacts`, `finish_loggers`, `describe_loggers`
  (``loggers.config``: the loggers a run names, made for its run folder, the outputs sent to them, ending
  their runs, where they are),
  `resolve_tracking_uri` (which MLflow store a setting means)
- ``loggers._shared``: what several backends share (importing the package, ``version_<k>`` folders)

Importing this package imports no backend: each logger imports its own when it is constructed.
"""

from audiotrain.train.loggers.base import (
    STATUSES,
    DummyLogger,
    Logger,
    LoggerNotStarted,
    LoggerWarning,
    flatten_params,
    rank_zero_experiment,
)
from audiotrain.train.loggers.config import (
    LOGGER_NAMES,
    LoggerConfig,
    MissingLoggerPackage,
    build_loggers,
    describe_loggers,
    finish_loggers,
    log_artifacts,
)
from audiotrain.train.loggers.csv_logger import CSVLogger
from audiotrain.train.loggers.mlflow_logger import MLflowLogger, resolve_tracking_uri
from audiotrain.train.loggers.tensorboard_logger import TensorBoardLogger
from audiotrain.train.loggers.wandb_logger import WandbLogger

MLFlowLogger = MLflowLogger  # Lightning's spelling of the name

__all__ = [
    "Logger",
    "DummyLogger",
    "LoggerWarning",
    "LoggerNotStarted",
    "STATUSES",
    "flatten_params",
    "rank_zero_experiment",
    "WandbLogger",
    "TensorBoardLogger",
    "MLflowLogger",
    "MLFlowLogger",
    "CSVLogger",
    "LoggerConfig",
    "LOGGER_NAMES",
    "MissingLoggerPackage",
    "build_loggers",
    "log_artifacts",
    "describe_loggers",
    "finish_loggers",
    "resolve_tracking_uri",
]
