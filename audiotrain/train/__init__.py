"""The trainer package: `Trainer`, `TrainModule`, `DataModule`, and the public callbacks, loggers and LR
schedules under one name (`from audiotrain.train import ModelCheckpoint, WandbLogger, WarmupCosineScheduler`).

Imported lazily: `import audiotrain.train.checkpoint` does not pull in the loggers.
"""

_PUBLIC = {
    "Trainer": "audiotrain.train.trainer",
    "TrainModule": "audiotrain.train.module",
    "OptimizerConfig": "audiotrain.train.module",
    "DataModule": "audiotrain.train.datamodule",
    "seed_everything": "audiotrain.train.seeding",
    "RetraceWarning": "audiotrain.train.trace_guard",  # (a compiled step traced for many input shapes)
    # callbacks
    "Callback": "audiotrain.train.callback",
    "BasePredictionWriter": "audiotrain.train.prediction_writer",
    "EarlyStopping": "audiotrain.train.callbacks",
    "GradientClipper": "audiotrain.train.callbacks",
    "LearningRateMonitor": "audiotrain.train.callbacks",
    "ModelCheckpoint": "audiotrain.train.callbacks",
    "ProgressBar": "audiotrain.train.callbacks",
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

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        import importlib

        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'audiotrain.train' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
