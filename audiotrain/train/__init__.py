"""The trainer package: `Trainer`, `TrainModule`, `DataModule`, and the public callbacks, loggers and LR
schedules under one name (`from audiotrain.train import ModelCheckpoint, WandbLogger, WarmupCosineScheduler`).

Imported lazily: `import audiotrain.train.checkpoint` does not pull in the loggers.
"""

from typing import TYPE_CHECKING

_PUBLIC = {
    "Trainer": "audiotrain.train.trainer",
    "Tuner": "audiotrain.train.tuner",  # (Tuner(trainer).lr_find; its result, LRFinder)
    "LRFinder": "audiotrain.train.lr_finder",
    "TrainModule": "audiotrain.train.module",
    "OptimizerConfig": "audiotrain.train.module",
    "DataModule": "audiotrain.train.datamodule",
    "seed_everything": "audiotrain.train.seeding",
    "isolate_rng": "audiotrain.train.seeding",
    "grad_norm": "audiotrain.train.gradient_norms",  # (Lightning's, for a manual step's gradients)
    "RetraceWarning": "audiotrain.train.trace_guard",  # (a compiled step traced for many input shapes)
    "PossibleUserWarning": "audiotrain._possible_user_warning",  # (a short epoch under log_every_n_steps)
    # profilers (Trainer(profiler=...))
    "Profiler": "audiotrain.train.profilers",
    "SimpleProfiler": "audiotrain.train.profilers",
    "AdvancedProfiler": "audiotrain.train.profilers",
    "PassThroughProfiler": "audiotrain.train.profilers",
    # callbacks
    "Callback": "audiotrain.train.callback",
    "BasePredictionWriter": "audiotrain.train.prediction_writer",
    "EarlyStopping": "audiotrain.train.callbacks",
    "GradientAccumulationScheduler": "audiotrain.train.callbacks",
    "BackboneFinetuning": "audiotrain.train.callbacks",
    "BaseFinetuning": "audiotrain.train.callbacks",
    "GradientClipper": "audiotrain.train.callbacks",
    "LambdaCallback": "audiotrain.train.callbacks",
    "OnExceptionCheckpoint": "audiotrain.train.callbacks",
    "DeviceStatsMonitor": "audiotrain.train.callbacks",
    "TQDMProgressBar": "audiotrain.train.callbacks",
    "Timer": "audiotrain.train.callbacks",
    "ThroughputMonitor": "audiotrain.train.callbacks",
    "LearningRateFinder": "audiotrain.train.callbacks",
    "LearningRateMonitor": "audiotrain.train.callbacks",
    "ModelCheckpoint": "audiotrain.train.callbacks",
    "ModelSummary": "audiotrain.train.callbacks",
    "ReduceLROnPlateau": "audiotrain.train.callbacks",
    "ProgressBar": "audiotrain.train.callbacks",
    "StochasticWeightAveraging": "audiotrain.train.callbacks",
    "WeightAveraging": "audiotrain.train.callbacks",
    "EMAWeightAveraging": "audiotrain.train.callbacks",
    # loggers
    "Logger": "audiotrain.train.loggers",
    "CSVLogger": "audiotrain.train.loggers",
    "MLflowLogger": "audiotrain.train.loggers",
    "MLFlowLogger": "audiotrain.train.loggers",  # (Lightning's spelling)
    "TensorBoardLogger": "audiotrain.train.loggers",
    "WandbLogger": "audiotrain.train.loggers",
    "LoggerConfig": "audiotrain.train.loggers",
    "build_loggers": "audiotrain.train.loggers",
    # learning-rate schedules
    "LRScheduler": "audiotrain.train.schedulers",
    "WarmupCosineScheduler": "audiotrain.train.schedulers",
    "WarmupLinearScheduler": "audiotrain.train.schedulers",
    "StepLRScheduler": "audiotrain.train.schedulers",
    "ExponentialLRScheduler": "audiotrain.train.schedulers",
    "OneCycleScheduler": "audiotrain.train.schedulers",
}


if TYPE_CHECKING:
    # The lazy names spelled out for type checkers and editors, which do not run `__getattr__`
    # (`X as X`: an explicit re-export, also under mypy --strict). tests/test_typing.py keeps them
    # equal to `_PUBLIC`.
    from audiotrain._possible_user_warning import PossibleUserWarning as PossibleUserWarning
    from audiotrain.train.callback import Callback as Callback
    from audiotrain.train.callbacks import BackboneFinetuning as BackboneFinetuning
    from audiotrain.train.callbacks import BaseFinetuning as BaseFinetuning
    from audiotrain.train.callbacks import DeviceStatsMonitor as DeviceStatsMonitor
    from audiotrain.train.callbacks import EarlyStopping as EarlyStopping
    from audiotrain.train.callbacks import EMAWeightAveraging as EMAWeightAveraging
    from audiotrain.train.callbacks import GradientAccumulationScheduler as GradientAccumulationScheduler
    from audiotrain.train.callbacks import GradientClipper as GradientClipper
    from audiotrain.train.callbacks import LambdaCallback as LambdaCallback
    from audiotrain.train.callbacks import LearningRateFinder as LearningRateFinder
    from audiotrain.train.callbacks import LearningRateMonitor as LearningRateMonitor
    from audiotrain.train.callbacks import ModelCheckpoint as ModelCheckpoint
    from audiotrain.train.callbacks import ModelSummary as ModelSummary
    from audiotrain.train.callbacks import OnExceptionCheckpoint as OnExceptionCheckpoint
    from audiotrain.train.callbacks import ProgressBar as ProgressBar
    from audiotrain.train.callbacks import ReduceLROnPlateau as ReduceLROnPlateau
    from audiotrain.train.callbacks import StochasticWeightAveraging as StochasticWeightAveraging
    from audiotrain.train.callbacks import ThroughputMonitor as ThroughputMonitor
    from audiotrain.train.callbacks import Timer as Timer
    from audiotrain.train.callbacks import TQDMProgressBar as TQDMProgressBar
    from audiotrain.train.callbacks import WeightAveraging as WeightAveraging
    from audiotrain.train.datamodule import DataModule as DataModule
    from audiotrain.train.gradient_norms import grad_norm as grad_norm
    from audiotrain.train.loggers import CSVLogger as CSVLogger
    from audiotrain.train.loggers import Logger as Logger
    from audiotrain.train.loggers import LoggerConfig as LoggerConfig
    from audiotrain.train.loggers import MLFlowLogger as MLFlowLogger
    from audiotrain.train.loggers import MLflowLogger as MLflowLogger
    from audiotrain.train.loggers import TensorBoardLogger as TensorBoardLogger
    from audiotrain.train.loggers import WandbLogger as WandbLogger
    from audiotrain.train.loggers import build_loggers as build_loggers
    from audiotrain.train.lr_finder import LRFinder as LRFinder
    from audiotrain.train.module import OptimizerConfig as OptimizerConfig
    from audiotrain.train.module import TrainModule as TrainModule
    from audiotrain.train.prediction_writer import BasePredictionWriter as BasePredictionWriter
    from audiotrain.train.profilers import AdvancedProfiler as AdvancedProfiler
    from audiotrain.train.profilers import PassThroughProfiler as PassThroughProfiler
    from audiotrain.train.profilers import Profiler as Profiler
    from audiotrain.train.profilers import SimpleProfiler as SimpleProfiler
    from audiotrain.train.schedulers import ExponentialLRScheduler as ExponentialLRScheduler
    from audiotrain.train.schedulers import LRScheduler as LRScheduler
    from audiotrain.train.schedulers import OneCycleScheduler as OneCycleScheduler
    from audiotrain.train.schedulers import StepLRScheduler as StepLRScheduler
    from audiotrain.train.schedulers import WarmupCosineScheduler as WarmupCosineScheduler
    from audiotrain.train.schedulers import WarmupLinearScheduler as WarmupLinearScheduler
    from audiotrain.train.seeding import isolate_rng as isolate_rng
    from audiotrain.train.seeding import seed_everything as seed_everything
    from audiotrain.train.trace_guard import RetraceWarning as RetraceWarning
    from audiotrain.train.trainer import Trainer as Trainer
    from audiotrain.train.tuner import Tuner as Tuner

__all__ = sorted(_PUBLIC)


# Hidden from type checkers, which would take any name from a module `__getattr__` (a typo included).
if not TYPE_CHECKING:

    def __getattr__(name: str):
        if name in _PUBLIC:
            import importlib

            value = getattr(importlib.import_module(_PUBLIC[name]), name)
            globals()[name] = value
            return value
        raise AttributeError(f"module 'audiotrain.train' has no attribute {name!r}")

    def __dir__():
        return sorted(__all__)
