"""audiotrain: train audio models on MLX.

`import audiotrain` loads an optimized BLAS before `mlx.core` on Linux (see `audiotrain._blas`),
and keeps float32 matmuls on CUDA in full precision unless ``MLX_ENABLE_TF32`` is set (see
`audiotrain._precision`), so import it before `mlx`. The public names are imported lazily so
that `import audiotrain.audio` does not pull in the trainer.
"""

from audiotrain._blas import load_optimized_blas
from audiotrain._lazy import lazy_attributes
from audiotrain._precision import default_full_float32

default_full_float32()
load_optimized_blas()

__version__ = "0.1.0"

_PUBLIC = {
    "TrainModule": "audiotrain.train.module",
    "OptimizerConfig": "audiotrain.train.module",
    "Trainer": "audiotrain.train.trainer",
    "DataModule": "audiotrain.train.datamodule",
    "DataLoader": "audiotrain.data",
    "Dataset": "audiotrain.data",
    "IterableDataset": "audiotrain.data",
    "get_worker_info": "audiotrain.data",
    "seed_everything": "audiotrain.train.seeding",
    "rank_zero_only": "audiotrain.distributed",
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
    "CheckpointError": "audiotrain.train.checkpoint",
    "CheckpointWriteError": "audiotrain.train.checkpoint",
    "DataLoaderError": "audiotrain.data",
    "KernelCompileError": "audiotrain._system",
    "LoggerWarning": "audiotrain.train.loggers.base",
    "RetraceWarning": "audiotrain.train.trace_guard",
    "SaveAborted": "audiotrain.train.interrupt",
    "SlowBlasWarning": "audiotrain._blas",
}

__all__ = [*_PUBLIC, "__version__"]


__getattr__, __dir__ = lazy_attributes(__name__, _PUBLIC)
