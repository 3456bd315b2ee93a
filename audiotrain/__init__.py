"""audiotrain: train audio models on MLX.

`import audiotrain` loads an optimized BLAS before `mlx.core` on Linux (see `audiotrain._blas`),
and keeps float32 matmuls on CUDA in full precision unless ``MLX_ENABLE_TF32`` is set (see
`audiotrain._precision`), so import it before `mlx`. The public names are imported lazily so
that `import audiotrain.audio` does not pull in the trainer.
"""

from typing import TYPE_CHECKING

from audiotrain._blas import load_optimized_blas
from audiotrain._deleted_cwd import check_imports_work_here
from audiotrain._dependency_versions import warn_of_dependencies_out_of_range
from audiotrain._lazy import lazy_attributes
from audiotrain._precision import default_full_float32

check_imports_work_here()
default_full_float32()
load_optimized_blas()
warn_of_dependencies_out_of_range()

__version__ = "0.1.0"

_PUBLIC = {
    "TrainModule": "audiotrain.train.module",
    "Callback": "audiotrain.train.callback",  # (Lightning's `L.Callback` beside `L.LightningModule`)
    "OptimizerConfig": "audiotrain.train.module",
    "register_buffer": "audiotrain.train.module",
    "Trainer": "audiotrain.train.trainer",
    "Tuner": "audiotrain.train.tuner",
    "DataModule": "audiotrain.train.datamodule",
    "DataLoader": "audiotrain.data",
    "CombinedLoader": "audiotrain.data",
    "Dataset": "audiotrain.data",
    "IterableDataset": "audiotrain.data",
    "get_worker_info": "audiotrain.data",
    "seed_everything": "audiotrain.train.seeding",
    "isolate_rng": "audiotrain.train.seeding",
    "rank_zero_only": "audiotrain.distributed",
    "grad_norm": "audiotrain.train.gradient_norms",  # (Lightning's `lightning.pytorch.utilities.grad_norm`)
    "create_trainer": "audiotrain.declarative",
    "register_trainer": "audiotrain.declarative",
    "create_kaggle_trainer": "audiotrain.kaggle",
    "TrainerConfig": "audiotrain.trainer_config",
    "get_trainer_config": "audiotrain.trainer_config",
    # Seed 003's names: BaseTrainerConfig and KaggleTrainerConfig are TrainerConfig, SchedulerConfig its
    # scheduler section.
    "BaseTrainerConfig": "audiotrain.trainer_config",
    "KaggleTrainerConfig": "audiotrain.trainer_config",
    "SchedulerConfig": "audiotrain.trainer_config",
    "MLflowConfig": "audiotrain.integrations",
    "MLflowCallback": "audiotrain.integrations",
    # The exceptions and warnings the README names, to catch or filter: `except audiotrain.CheckpointError`.
    "AudioError": "audiotrain.audio",
    "CheckpointError": "audiotrain.train.checkpoint",
    "CheckpointWriteError": "audiotrain.train.checkpoint",
    "NoFileLocksWarning": "audiotrain.train.checkpoint",
    "DataLoaderError": "audiotrain.data",
    "KernelCompileError": "audiotrain._system",
    "LoggerWarning": "audiotrain.train.loggers.base",
    "MetricNotLoggedError": "audiotrain.train.callbacks",
    "LoggerNotStarted": "audiotrain.train.loggers.base",
    "RetraceWarning": "audiotrain.train.trace_guard",
    "LowPrecisionLossWarning": "audiotrain.train.step",
    "PossibleUserWarning": "audiotrain._possible_user_warning",
    "SaveAborted": "audiotrain.train.interrupt",
    "CrossValidationStopped": "audiotrain.declarative",
    "SlowBlasWarning": "audiotrain._blas",
    "MLXImportedFirstWarning": "audiotrain._blas",
    "BlasLoadWarning": "audiotrain._blas",
    "TokenizerError": "audiotrain.models.clap.tokenizer",
    "StandInCheckpointWarning": "audiotrain.recipes.chords.model_checkpoint",
}


if TYPE_CHECKING:
    # The lazy names spelled out for type checkers and editors, which do not run `__getattr__`
    # (`X as X`: an explicit re-export, also under mypy --strict). tests/test_typing.py keeps them
    # equal to `_PUBLIC`.
    from audiotrain._blas import BlasLoadWarning as BlasLoadWarning
    from audiotrain._blas import MLXImportedFirstWarning as MLXImportedFirstWarning
    from audiotrain._blas import SlowBlasWarning as SlowBlasWarning
    from audiotrain._possible_user_warning import PossibleUserWarning as PossibleUserWarning
    from audiotrain._system import KernelCompileError as KernelCompileError
    from audiotrain.audio import AudioError as AudioError
    from audiotrain.data import CombinedLoader as CombinedLoader
    from audiotrain.data import DataLoader as DataLoader
    from audiotrain.data import DataLoaderError as DataLoaderError
    from audiotrain.data import Dataset as Dataset
    from audiotrain.data import IterableDataset as IterableDataset
    from audiotrain.data import get_worker_info as get_worker_info
    from audiotrain.declarative import CrossValidationStopped as CrossValidationStopped
    from audiotrain.declarative import create_trainer as create_trainer
    from audiotrain.declarative import register_trainer as register_trainer
    from audiotrain.distributed import rank_zero_only as rank_zero_only
    from audiotrain.integrations import MLflowCallback as MLflowCallback
    from audiotrain.integrations import MLflowConfig as MLflowConfig
    from audiotrain.kaggle import create_kaggle_trainer as create_kaggle_trainer
    from audiotrain.models.clap.tokenizer import TokenizerError as TokenizerError
    from audiotrain.recipes.chords.model_checkpoint import (
        StandInCheckpointWarning as StandInCheckpointWarning,
    )
    from audiotrain.train.callback import Callback as Callback
    from audiotrain.train.callbacks import MetricNotLoggedError as MetricNotLoggedError
    from audiotrain.train.checkpoint import CheckpointError as CheckpointError
    from audiotrain.train.checkpoint import CheckpointWriteError as CheckpointWriteError
    from audiotrain.train.checkpoint import NoFileLocksWarning as NoFileLocksWarning
    from audiotrain.train.datamodule import DataModule as DataModule
    from audiotrain.train.gradient_norms import grad_norm as grad_norm
    from audiotrain.train.interrupt import SaveAborted as SaveAborted
    from audiotrain.train.loggers.base import LoggerNotStarted as LoggerNotStarted
    from audiotrain.train.loggers.base import LoggerWarning as LoggerWarning
    from audiotrain.train.module import OptimizerConfig as OptimizerConfig
    from audiotrain.train.module import TrainModule as TrainModule
    from audiotrain.train.module import register_buffer as register_buffer
    from audiotrain.train.seeding import isolate_rng as isolate_rng
    from audiotrain.train.seeding import seed_everything as seed_everything
    from audiotrain.train.step import LowPrecisionLossWarning as LowPrecisionLossWarning
    from audiotrain.train.trace_guard import RetraceWarning as RetraceWarning
    from audiotrain.train.trainer import Trainer as Trainer
    from audiotrain.train.tuner import Tuner as Tuner
    from audiotrain.trainer_config import BaseTrainerConfig as BaseTrainerConfig
    from audiotrain.trainer_config import KaggleTrainerConfig as KaggleTrainerConfig
    from audiotrain.trainer_config import SchedulerConfig as SchedulerConfig
    from audiotrain.trainer_config import TrainerConfig as TrainerConfig
    from audiotrain.trainer_config import get_trainer_config as get_trainer_config

__all__ = [*_PUBLIC, "__version__"]


# Hidden from type checkers, which would take any name from a module `__getattr__` (a typo included).
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_attributes(__name__, _PUBLIC)
