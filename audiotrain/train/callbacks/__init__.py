"""Callbacks: behaviour that runs after the compiled step, at named points of the loop.

A callback sees results, never the graph: the Trainer calls its hooks in Python between steps.
Hooks receive `(trainer, module, ...)`; any state a callback needs after a resume goes through
`state_dict()` / `load_state_dict()` and is stored in the checkpoint's trainer_state.json (arrays,
through `state_arrays()` / `load_state_arrays()`, in its callbacks.safetensors).
"""

from audiotrain.train.callback import Callback, Checkpoint
from audiotrain.train.callbacks._monitor import MetricNotLoggedError
from audiotrain.train.callbacks.accumulation_schedule import GradientAccumulationScheduler
from audiotrain.train.callbacks.device_stats import DeviceStatsMonitor
from audiotrain.train.callbacks.early_stopping import EarlyStopping
from audiotrain.train.callbacks.finetuning import BackboneFinetuning, BaseFinetuning
from audiotrain.train.callbacks.gradient_clipper import GradientClipper
from audiotrain.train.callbacks.lambda_callback import LambdaCallback
from audiotrain.train.callbacks.lr_finder import LearningRateFinder
from audiotrain.train.callbacks.lr_monitor import LearningRateMonitor
from audiotrain.train.callbacks.lr_plateau import ReduceLROnPlateau
from audiotrain.train.callbacks.model_checkpoint import ModelCheckpoint
from audiotrain.train.callbacks.model_summary import ModelSummary
from audiotrain.train.callbacks.on_exception_checkpoint import OnExceptionCheckpoint
from audiotrain.train.callbacks.rich import RichModelSummary, RichProgressBar
from audiotrain.train.callbacks.swa import StochasticWeightAveraging
from audiotrain.train.callbacks.throughput import ThroughputMonitor
from audiotrain.train.callbacks.timer import Timer
from audiotrain.train.callbacks.tqdm_progress import TQDMProgressBar
from audiotrain.train.callbacks.weight_averaging import EMAWeightAveraging, WeightAveraging
from audiotrain.train.prediction_writer import BasePredictionWriter
from audiotrain.train.progress import ProgressBar

__all__ = [
    "BackboneFinetuning",
    "BaseFinetuning",
    "BasePredictionWriter",
    "Callback",
    "Checkpoint",
    "DeviceStatsMonitor",
    "EMAWeightAveraging",
    "EarlyStopping",
    "GradientAccumulationScheduler",
    "GradientClipper",
    "LambdaCallback",
    "LearningRateFinder",
    "LearningRateMonitor",
    "MetricNotLoggedError",
    "ModelCheckpoint",
    "ModelSummary",
    "OnExceptionCheckpoint",
    "ProgressBar",
    "ReduceLROnPlateau",
    "RichModelSummary",
    "RichProgressBar",
    "StochasticWeightAveraging",
    "TQDMProgressBar",
    "ThroughputMonitor",
    "Timer",
    "WeightAveraging",
]
