"""The Trainer: `fit` → train epoch → train batch, around the compiled steps in `step.py`.

Its state lives in named objects (`state.py`): `Progress` (where the loop is), `RunningMeans` (the
weighted sums behind every reported mean), `History`, `RandomState`, plus the model, the optimizer,
the callbacks and the loggers. A checkpoint is the dict of their `state_dict()`s, which `RunState`
(`run_state.py`) assembles and loads back on resume. Two concerns live in objects of their own: the stop
requests and what a stop signal saves (`StopRequests`, `stopping.py`), and what each step reports to the
loggers and the progress bar (`StepLogging`, `step_logging.py`). Callbacks read a small view of that state:
`current_epoch`, `global_step`, `batch_in_epoch`,
`num_training_batches`, `num_val_batches`, `callback_metrics`, `validates_within_epochs`,
`should_stop`, `fitting`, `state` (Lightning's `.status` / `.fn` / `.stage`), `training`, `validating`,
`sanity_checking`, `fast_dev_run`, `optimizer`, `learning_rate()`,
`log_metrics()`, `is_logging_step()`, `progress_metrics()` (Lightning's `progress_bar_metrics`),
`epoch_progress_metrics()`, `save_checkpoint()`, `print()`.

Per batch the loop reads top to bottom: check the batch, run the compiled step (an accumulating
micro-step or the update that ends a window), schedule its evaluation (`mx.async_eval`, one step ahead
of the host), add its results to the running means, call the hooks. Host syncs (`.item()`) happen only
at the logging interval, at validation and at epoch end; each batch reads one number more, the step
before's non-finite streak, once it has waited for that step anyway.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import functools
import inspect
import json
import math
import numbers
import os
import sys
import warnings
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from audiotrain import _blas
from audiotrain._arguments import changed_arguments, home_expanded, path_argument, settings_repr
from audiotrain._caller import user_stacklevel
from audiotrain._omegaconf import plain_hyperparameters
from audiotrain._possible_user_warning import PossibleUserWarning
from audiotrain._system import read_platform_once, use_own_kernel_folder
from audiotrain._text import listed
from audiotrain.data.combined import CombinedLoader
from audiotrain.data.loader import (
    close_epoch_iterators,
    hint_workers_started_again,
    position_ends_epoch,
    stop_stage_workers,
)
from audiotrain.data.workers import DataLoaderError
from audiotrain.distributed import collectives
from audiotrain.train import checkpoint as ckpt
from audiotrain.train import (
    determinism,
    flags,
    hook_logs,
    hook_state,
    hooks,
    no_gradient,
    overfit,
    reporting,
    resume,
    state_arrays,
    threads,
    traced_reads,
)
from audiotrain.train.callback import Callback
from audiotrain.train.callback_list import CallbackList, _in_order, name_the_hook
from audiotrain.train.callbacks import EarlyStopping, ModelCheckpoint, ProgressBar, ReduceLROnPlateau
from audiotrain.train.callbacks._averaging import average_validated_with
from audiotrain.train.callers_random import CALLERS_GENERATORS
from audiotrain.train.evaluation import explaining_step_errors, naming_the_batch, prefixed
from audiotrain.train.evaluation_loop import EvaluationLoop, batch_count
from audiotrain.train.fit_loop_view import FitLoopLimits
from audiotrain.train.interrupt import SignalInterrupt, eval_compiling_again
from audiotrain.train.lazy import LazyScalar
from audiotrain.train.loader_reloads import LoaderReloads, first_epoch_of_loader, first_epoch_of_val_loader
from audiotrain.train.loaders import (
    STAGE_ARGUMENTS,
    as_given,
    check_batch,
    check_verbose,
    check_weights_only,
    checkpoint_argument,
    combine_training_loaders,
    datamodule_given_as_loader,
    defines_loader,
    evaluation_loaders,
    every_rank_has_a_batch,
    give_trainer_seed,
    loader_len,
    loader_source,
    loaders_from,
    missing_loader,
    one_loader,
    prepare_data,
    prepare_loader,
    ranks_read_own_streams,
    refuse_unequal_epochs,
    several_loaders,
    shown_type,
    warn_of_unsharded_user_order,
    why_no_batches,
)
from audiotrain.train.loggers import DummyLogger, Logger
from audiotrain.train.loggers._shared import share_next_version
from audiotrain.train.loggers.base import flatten_params, has_own_save
from audiotrain.train.loggers.resume_states import match_states
from audiotrain.train.loggers.trainer_argument import trainer_loggers
from audiotrain.train.loop_progress import EvaluationLoopView
from audiotrain.train.manual import (
    ManualStep,
    manual_optimizers,
    refuse_automatic_settings,
    refuse_counted_schedules,
)
from audiotrain.train.memory import refuse_training_beyond_memory
from audiotrain.train.metric_values import Metrics
from audiotrain.train.module import (
    LightningOptimizer,
    OptimizerConfig,
    TrainModule,
    has_learning_rate,
    rate_as_given,
    refuse_dataloader_iter,
    refuse_optimizer_idx,
    refuse_truncated_bptt,
)
from audiotrain.train.nonfinite import NonFiniteWatch, debug_check
from audiotrain.train.optimizer_settings import note_configured_rates
from audiotrain.train.outputs import split_logged_weights
from audiotrain.train.parameter_tree import multi_optimizer_groups, warn_weights_in_tuples
from audiotrain.train.profilers import Profiler, next_batch, trainer_profiler
from audiotrain.train.run_state import (
    RunState,
    load_optimizer_state,
    load_step_state,
    read_checkpoint,
    run_config,
)
from audiotrain.train.schedulers import held_rate_advice, schedules_ended_before
from audiotrain.train.seeding import (
    check_seed,
    default_seed,
    seed_everything_calls,
    seed_generators,
    seed_rank_apart,
)
from audiotrain.train.stale_attributes import StaleStepAttributes
from audiotrain.train.state import Progress, RandomState, RunningMeans
from audiotrain.train.step import StepConfig, StepState, TrainStep, names_to_train, trainable_names
from audiotrain.train.step_logging import StepLogging
from audiotrain.train.stopping import StopRequests, ranks_meet_every
from audiotrain.train.strategy import Strategy
from audiotrain.train.tied_weights import refuse_arrays_tied_across_modules
from audiotrain.train.trainer_state import StateTracker, TrainerState
from audiotrain.train.validation_schedule import ValidationSchedule
from audiotrain.train.weight_dtypes import (
    refuse_float16_weights_with_vanishing_eps,
    warn_bfloat16_weights_under_bf16_mixed,
)

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx.utils import tree_flatten

if TYPE_CHECKING:
    from audiotrain.data.loader import DataLoader

    # typing_extensions: Unpack is typing's from 3.11; checkers know typing_extensions without it installed.
    from typing_extensions import Unpack


#: The start of the warning a fit gives where an epoch is shorter than log_every_n_steps (Lightning's): a
#: recipe that logs nothing per step in hooks filters it.
SHORT_EPOCH_WARNING = (
    r"Trainer\.fit: an epoch has \d+ training batches(?: \([^)]*\))?, fewer than the logging interval"
)


class Trainer:
    """Orchestrates training of a `TrainModule` with compiled MLX steps.

    Duration: `max_epochs` and/or `max_steps` (optimizer steps; whichever ends first), `max_time`
    ("DD:HH:MM:SS", a timedelta or a dict), and `min_epochs` / `min_steps` (a stop request, e.g.
    EarlyStopping, waits for both). `fit` needs one of the first three; `Trainer()` without them validates, tests and predicts.
    Validation, as in Lightning: `val_check_interval` float = every int(fraction x batches) batches of
    an epoch (its end too where that lands there), int = every N batches of an epoch (at most the
    epoch's batches), in the epochs `check_val_every_n_epoch` picks; with `check_val_every_n_epoch=None`
    an int counts batches across epochs. `limit_val_batches=0` turns validation off. A stop request that
    ends the fit, or `max_time` (which sets `should_stop`, as Lightning's Timer), validates where it ends
    the loop, whatever the interval.
    Gradients: `gradient_clip_val` with `gradient_clip_algorithm` "norm"|"value",
    `accumulate_grad_batches` (mean over the window; a window the loader ends early is applied at the
    epoch's end), non-finite updates skipped in-graph; after `max_consecutive_nonfinite` non-finite
    steps in a row training stops with an error (with `nonfinite_guard=False` too, where those updates
    went through). The stop comes one training batch after the step that reached the limit (that
    batch trains too: its step runs while the loop reads the one before's streak, with no wait of its
    own), or at once where that step is a logging step or ends the epoch. The guard costs one read of
    all gradients (a BLAS matrix-vector product per matrix, train/transforms.py) plus, for Adam/AdamW,
    selects fused into the update kernel (train/guarded_update.py): a few kernels more a step, whatever
    the model's size, so it weighs on short steps. On the CPU backend a 256-1024-1024 MLP at batch 64
    runs at 0.98x the hand-written loop's steps/s with it and 1.01-1.06x without
    (benchmarks/trainer_overhead.py); a tiny host-bound one (32-64-64-10 at batch 16, ~0.3 ms a step)
    loses ~20% of its steps/s to it (3516 against 4486), as the batch-64 MLP does on an H100 (0.75x
    against 0.96x). Where steps take well under a
    millisecond and the loss stays finite, `nonfinite_guard=False` wins that back
    (`max_consecutive_nonfinite` still stops on a non-finite loss, but such updates are applied).
    `track_grad_norm=True` logs the gradient norm (L2; Lightning 1's -1 is off, its 2 on).
    Device: `accelerator` "auto" | "cpu" | "gpu" (Metal or CUDA), `devices` 1 per process (data parallel
    is several processes: mlx.launch), `precision` "32" | "bf16-mixed" | "bf16-true". "bf16-mixed" keeps
    float32 master weights and casts every float array of the batch to bfloat16 (unlike torch's autocast,
    which leaves batch tensors alone), targets too, unless the module names them in
    `TrainModule.float32_batch_fields`. "bf16-true" casts the weights and, as Lightning's does, the batch
    the same way (a float32 input would run the bf16 model in float32).
    Loggers: `logger` is one, a list, or True for a TensorBoard logger in `default_root_dir` (CSV where
    no SummaryWriter is installed), as in Lightning. Every `log_every_n_steps` optimizer steps (0: never,
    as Lightning's 0; the epoch means and validation values are still logged) the loggers
    get the interval means (`train_loss`, `train_<metric>`, values logged with `self.log`), the learning
    rate as `learning_rate` (unless a `LearningRateMonitor` logs it, as `lr-<Optimizer>`: one series, the
    name a Lightning user added), and `skipped_steps` (the non-finite updates skipped so far) once there
    is one; at each epoch end the epoch means as `train_<name>_epoch` (the history uses `train_<name>`,
    `callback_metrics` both). Interval and epoch means are both weighted by
    `TrainModule.batch_size(batch)`. Steps are global steps after the update (1-based). Under data parallel
    every rank keeps the loggers and rank 0 alone writes.
    Seeding: `seed` seeds MLX, numpy and Python (and torch where imported) at the start of `fit` (and a
    DataLoader without its own seed); None (the default) takes the seed of the last
    `audiotrain.seed_everything(seed)` call, else 42, so a Lightning-style `seed_everything(s)` decides the
    whole run. When `fit` ends (however it ends) those global generators are put back as they were before
    it, so the caller's own draws after it (a random search's next trial) go on as if it had drawn nothing.
    A model's initial weights are drawn when it is built, before that: call `seed_everything(seed)` first
    for a run that repeats exactly.
    A resumed fit (`ckpt_path`) says "Restored all states from the checkpoint at PATH" on stderr (as
    Lightning logs it; `trainer.says_restored = False` silences it), and keeps the checkpoint's seed, with a
    warning where this one differs: `trainer.seed`, the loaders it seeds and the later checkpoints take it.
    `deterministic=True`: on the CPU MLX is deterministic, on a GPU it warns (reductions with atomic adds
    are not).
    Sanity check: `num_sanity_val_steps` (default 2, -1 all) validation batches run before training
    starts, unlogged and leaving the random state as it was; a fit resumed mid-epoch runs none (as
    Lightning's).
    Debugging: `fast_dev_run` (n batches of train and val, no checkpoints; a `DummyLogger` stands in for
    the loggers, as in Lightning),
    `limit_train_batches` / `limit_val_batches` / `limit_test_batches` / `limit_predict_batches`,
    `overfit_batches` (Lightning 2's: an int N or a float fraction; every epoch trains on the same first
    N batches of the training loader, iterated unshuffled while `fit` runs, with a warning where it
    shuffles, and validation runs on the first N of its own loader, unshuffled too; it replaces
    `limit_train_batches` and `limit_val_batches`, with a warning where one was given, and is refused with
    `fast_dev_run`, which Lightning combines), `debug_lazy_eval` (no compile; evaluate every step eagerly
    and name the first parameter that turns non-finite).
    Model summary: `enable_model_summary` (True, as in Lightning) prints Lightning's table of the module's
    submodules and parameter counts as `fit` starts, from rank 0 (a `ModelSummary` callback; one passed in
    `callbacks` replaces the default, e.g. `ModelSummary(max_depth=-1)` for every level).
    `enable_autolog_hparams` (True, as in Lightning): each stage sends the loggers the hyperparameters (a
    fit also the Trainer's flags and the optimizer's settings); False sends none.
    Profiling: `profiler` ("simple", "advanced" or a `Profiler`; None records nothing) times the loop's
    actions and each hook, and reports them when each stage ends (train/profilers.py).
    Checkpoints and progress bar, as in Lightning: `enable_checkpointing` (True) adds a
    `ModelCheckpoint(save_last=True, save_top_k=0)` where `callbacks` holds none (saving `last` under
    `default_root_dir`/checkpoints); False saves nothing and `trainer.checkpoint_callback` is None.
    `enable_progress_bar` (True) adds a progress bar, drawn by rank 0, where `callbacks` holds none. Either
    set False beside such a callback in `callbacks` is refused as a contradiction. As in Lightning, None
    is the default for both, `log_every_n_steps`, `num_sanity_val_steps` and `val_check_interval`.
    `strategy`: "auto" (or "ddp", or Lightning's "ddp_find_unused_parameters_true", "ddp_spawn", ...): data
    parallel runs whenever the script is launched on several processes (mlx.launch, mpirun); sharded
    strategies (fsdp, deepspeed) are refused.

    `reload_dataloaders_every_n_epochs=N` (0: never), as Lightning's: the loaders a DataModule (or the
    module's `*_dataloader` methods) gives are asked for again every N epochs, the training loader at the
    epoch's start (before `on_train_epoch_start`; the epoch takes its length), the validation loader at
    that epoch's first validation; a curriculum reads `self.trainer.current_epoch` there. A fit resumed in
    epoch 3 with N=2 asks for them with `current_epoch` 2, as the straight run did (Lightning asks with 3),
    so it goes on with the straight run's loaders. Loaders passed to `fit` are not rebuilt.

    Lightning's flags without a counterpart (`benchmark`, `num_nodes`, ...) are accepted at
    the value that describes what happens anyway (`num_nodes=1`) and refused otherwise, with what to use
    instead.

    The short last batch of an epoch is kept (unless the loader drops it): MLX traces a compiled
    function once per input shape and caches it, so that batch costs one extra trace in the first
    epoch and none afterwards. A step traced for more than 8 input shapes (clips of many lengths)
    warns once (`RetraceWarning`, train/trace_guard.py): pad or bucket lengths to a few sizes.
    """

    def __init__(
        self,
        max_epochs: int | None = None,
        max_steps: int | None = None,
        val_check_interval: int | float | None = 1.0,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = "norm",
        default_root_dir: str | os.PathLike | None = "./logs",
        enable_checkpointing: bool | None = True,
        compile: bool = True,
        seed: int | None = None,
        callbacks: Callback | Iterable[Callback] | None = None,
        logger: Logger | Sequence[Logger] | bool | None = None,
        debug_lazy_eval: bool = False,
        accumulate_grad_batches: int = 1,
        precision: str | int | None = "32",
        limit_train_batches: int | float | None = None,
        limit_val_batches: int | float | None = None,
        limit_test_batches: int | float | None = None,
        limit_predict_batches: int | float | None = None,
        fast_dev_run: bool | int = False,
        log_every_n_steps: int | None = 50,
        enable_progress_bar: bool | None = True,
        max_consecutive_nonfinite: int = 10,
        nonfinite_guard: bool = True,
        track_grad_norm: bool = False,
        num_sanity_val_steps: int | None = 2,
        min_epochs: int | None = None,
        min_steps: int | None = None,
        max_time: Any = None,
        check_val_every_n_epoch: int | None = 1,
        accelerator: str = "auto",
        devices: Any = "auto",
        strategy: str = "auto",
        deterministic: bool | str | None = None,
        enable_model_summary: bool | None = True,
        overfit_batches: int | float = 0.0,
        profiler: Profiler | str | None = None,
        reload_dataloaders_every_n_epochs: int = 0,
        enable_autolog_hparams: bool = True,
        **lightning_flags: Unpack[flags.LightningOnlyFlags],
    ):
        self._settings = changed_arguments(Trainer.__init__, locals())  # (for repr: before any other name)
        read_platform_once()  # (now, not amid a fit's warnings: it resets the once-per-place registries)
        # Lightning's flags without a counterpart: accepted where the value is what happens anyway, else
        # refused with what to use instead (Python's "unexpected keyword argument" says neither).
        known = [name for name in inspect.signature(Trainer.__init__).parameters if name != "self"]
        # (an unknown one in Python's words, "Trainer.__init__() got an unexpected keyword argument", which
        # Lightning's subclassing test matches)
        flags.lightning_only(
            lightning_flags, known[:-1], called="Trainer.__init__()"
        )  # (less **lightning_flags)
        # Lightning's signature gives these None, its "the default" (a LightningCLI config's `null`, a dict of
        # its defaults): None turned checkpointing and the bar off here, and refused the others.
        if enable_checkpointing is None:
            enable_checkpointing = True
        if enable_progress_bar is None:
            enable_progress_bar = True
        log_every_n_steps = 50 if log_every_n_steps is None else log_every_n_steps
        num_sanity_val_steps = 2 if num_sanity_val_steps is None else num_sanity_val_steps
        val_check_interval = 1.0 if val_check_interval is None else val_check_interval
        # The batches of a smoke run (0: off); `trainer.fast_dev_run` shows the flag as Lightning keeps it:
        # True for True or 1, else as given (5, False, 0).
        self._fast_dev_batches = flags.fast_dev_run(fast_dev_run)
        shown = True if self._fast_dev_batches == 1 else self._fast_dev_batches or fast_dev_run
        self.fast_dev_run: bool | int | None = shown
        self._max_epochs = flags.training_length("max_epochs", max_epochs)
        self._max_steps = flags.training_length("max_steps", max_steps)
        # None where not given, as Lightning's `trainer.min_epochs` reads (the stop check reads None as 0)
        self.min_epochs = flags.non_negative_int_or_none("min_epochs", min_epochs)
        self.min_steps = flags.non_negative_int_or_none("min_steps", min_steps)
        self.reload_dataloaders_every_n_epochs = (
            flags.non_negative_int_or_none(
                "reload_dataloaders_every_n_epochs", reload_dataloaders_every_n_epochs
            )
            or 0
        )
        self._max_time = flags.max_time(max_time)
        if self.fast_dev_run:
            # Lightning's values (max_steps=n), so code reading them (a schedule's length, a callback) sees
            # what the smoke run does.
            self._max_epochs, self._max_steps, self._max_time = 1, self._fast_dev_batches, None
        self._validation_schedule = ValidationSchedule(
            flags.val_check_interval(val_check_interval),
            flags.check_val_every_n_epoch(check_val_every_n_epoch),
        )
        if self.fast_dev_run:  # as in Lightning: validation once, after its n batches
            self._validation_schedule = ValidationSchedule(1.0, 1)
        # None (Lightning's default, a config's `default_root_dir: null`) is the default folder.
        root = "./logs" if default_root_dir is None else default_root_dir
        path_argument(root, "Trainer", "default_root_dir")  # (a TypeError naming it where not a path)
        self.default_root_dir = home_expanded(root)
        self.enable_checkpointing = (
            flags.switch("enable_checkpointing", enable_checkpointing) and not self.fast_dev_run
        )
        self.compile = flags.switch("compile", compile) and not debug_lazy_eval
        if seed is not None:
            check_seed(seed, "Trainer(seed=...)")
        self._seed = None if seed is None else int(seed)
        # (the seed a resumed run kept, and `seed_everything_calls()` then: a Trainer without a seed of its
        # own keeps it until the next seed_everything, which decides later fits as before the resume)
        self._checkpoint_seed: tuple[int, int] | None = None
        self.deterministic = flags.deterministic(deterministic)
        self.accelerator = flags.accelerator(accelerator)
        self.device = mx.gpu if self.accelerator == "gpu" else mx.cpu
        self.world_size = collectives.world_size()
        self.is_global_zero = collectives.is_main_process()  # Lightning's name: rank 0 logs and writes
        self.global_rank = collectives.rank()  # Lightning's names for this process's ranks
        self.local_rank = collectives.local_rank()
        unread = flags.lightning_environment(os.environ)
        if unread is not None and self.is_global_zero:
            warnings.warn(unread, UserWarning, stacklevel=user_stacklevel())
        self.devices = flags.devices(devices, self.world_size)
        self.strategy = Strategy(flags.strategy(strategy), self.device, self)
        if self.deterministic and self.accelerator == "gpu":
            warnings.warn(
                "Trainer(deterministic=...): MLX on a GPU reduces with unordered atomic adds, so two runs agree "
                "to float32 rounding, not bitwise; on the CPU they agree bitwise",
                stacklevel=2,
            )
        self.debug_lazy_eval = flags.switch("debug_lazy_eval", debug_lazy_eval)
        self._accumulate_grad_batches = flags.accumulate_grad_batches(accumulate_grad_batches)
        self.precision = flags.precision(precision)
        self.limits = {
            "train": flags.limit("limit_train_batches", limit_train_batches),
            "val": flags.limit("limit_val_batches", limit_val_batches),
            "test": flags.limit("limit_test_batches", limit_test_batches),
            "predict": flags.limit("limit_predict_batches", limit_predict_batches),
        }
        # Lightning's overfit_batches sets the train and val limits (train/overfit.py); the flag a limit came
        # from is the one its errors name.
        self.overfit_batches = flags.overfit_batches(overfit_batches)
        self.limits = overfit.limits(self.overfit_batches, self.limits, self._fast_dev_batches)
        self._limit_flags = {stage: f"limit_{stage}_batches" for stage in self.limits}
        if self.overfit_batches:
            self._limit_flags.update(train="overfit_batches", val="overfit_batches")
        self.log_every_n_steps = flags.log_every_n_steps(log_every_n_steps)
        # (-1, "all of each loader", reads inf, as Lightning's: `trainer.num_sanity_val_steps > 0` holds)
        sanity = flags.sanity_steps(num_sanity_val_steps)
        self.num_sanity_val_steps: int | float = math.inf if sanity == -1 else sanity
        if self.fast_dev_run:  # (Lightning's 0: the smoke run's one validation is its sanity check)
            self.num_sanity_val_steps = 0
        self._nonfinite = NonFiniteWatch(
            flags.positive_int("max_consecutive_nonfinite", max_consecutive_nonfinite),
            flags.switch("nonfinite_guard", nonfinite_guard),
        )
        self.enable_progress_bar = flags.switch("enable_progress_bar", enable_progress_bar)
        self.enable_autolog_hparams = flags.switch("enable_autolog_hparams", enable_autolog_hparams)
        self.track_grad_norm = flags.track_grad_norm(track_grad_norm)
        # Under data parallel only rank 0 draws a progress bar and logs; every rank keeps the other callbacks,
        # so their decisions (EarlyStopping, which checkpoint is best) stay the same on all ranks.
        self.enable_model_summary = flags.enable_model_summary(enable_model_summary)
        switches = {
            "enable_progress_bar": enable_progress_bar,
            "enable_checkpointing": enable_checkpointing,
            "enable_model_summary": self.enable_model_summary,
        }
        self.callbacks = CallbackList(
            callbacks,
            self.enable_progress_bar,  # (on every rank, as Lightning's: ranks other than 0 disable theirs)
            self.enable_checkpointing,
            switched_off=[flag for flag, on in switches.items() if not on],
            model_summary=self.enable_model_summary,
            fast_dev_run=bool(self.fast_dev_run),
        )
        self.profiler = profiler  # (the property: the callbacks' hooks are timed by it too)
        value, algorithm = flags.clip(gradient_clip_val, gradient_clip_algorithm)
        self.gradient_clip_val, self.gradient_clip_algorithm = self.callbacks.clip(value, algorithm)
        # The same loggers on every rank, as in Lightning, so that `trainer.logger.log_metrics(...)` in a
        # callback runs under data parallel too; rank 0 alone writes (`_writing_loggers`, and a `Logger`'s
        # own methods do nothing on the other ranks).
        # fast_dev_run writes no logs; as in Lightning a DummyLogger stands in for the loggers given, so
        # code that calls `self.logger.log_metrics(...)` runs as in a real fit (None would crash it).
        self._loggers = trainer_loggers(logger, self.default_root_dir)
        # logger=False (or []): no logger asked for, where the default (None) is only none given; Lightning's
        # default logs, so its LearningRateMonitor's refusal of a logger-less Trainer is this case's here.
        self._logger_turned_off = logger is False or (isinstance(logger, (list, tuple)) and not logger)
        if self.fast_dev_run:
            self.loggers = [DummyLogger()] if self.loggers else []
        # Means over every rank's samples (one all_sum per reduction) under data parallel; this process's
        # alone otherwise.
        self._reduce = collectives.reduce_weighted_means if self.world_size > 1 else None

        # The state a checkpoint holds (train/run_state.py): `progress`, `running`, `callback_metrics`, ...
        self._run = RunState(self)
        # The stop requests (should_stop, a stop signal) and the checkpoint a signal saved: train/stopping.py.
        self._stopping = StopRequests(self)
        # Whether a ReduceLROnPlateau that configure_optimizers returns joins the fit's callbacks (not in
        # Tuner.lr_find's sweep, whose rates are its own: train/tuner.py).
        self._steps_configured_plateau = True
        # What training reports at each step, to the loggers and the progress bar: train/step_logging.py.
        self._step_logging = StepLogging(self)
        self._running_hook: tuple[str, Any] | None = None  # (hook name, its batch) for self.log in hooks
        # The index of the evaluation loader running now where a stage has several (None: one loader), for
        # what its batch hooks log (Lightning's "name/dataloader_idx_k").
        self._dataloader_idx: int | None = None
        # The checkpoint the running (or last) stage loaded, a str as Lightning's; None for one that loaded
        # none, set where Lightning sets it: after the `setup` hooks, when the checkpoint is restored.
        self._ckpt_path: str | os.PathLike | None = None
        # Set by the user (`trainer.ckpt_path = path`, Lightning's stateful form): the stages called without
        # a ckpt_path load it, until it is set to None or a stage is given another (`_chosen_ckpt_path`).
        self._ckpt_path_set_by_user = False
        # A resumed fit says which checkpoint it restored, on stderr; a command-line tool that says it its own
        # way sets False (as it sets `resume_hint`).
        self.says_restored = True
        # Lightning's `trainer.state` (`state`): the status ("running", ...), the method that runs or ran last
        # ("fit", ...) and what runs inside it now ("train", "sanity_check", ...; None between stages).
        self._state_tracker = StateTracker()
        self.fitting = False  # inside `fit` (a validation there is part of training)
        self.module: TrainModule | None = None
        self._fitted_module: weakref.ref | None = None  # the module the last fit trained (held weakly)
        # reload_dataloaders_every_n_epochs: when the fit's loaders are asked for again (loader_reloads.py),
        # and the estimated_stepping_batches configure_optimizers read (a longer rebuilt epoch outruns it).
        self._reloads: LoaderReloads | None = None
        self._stepping_estimate: int | float | None = None
        self.optimizer: optim.Optimizer | None = None
        self.optimizer_config: OptimizerConfig | None = None
        # The datamodule the running (or last) stage was given, None without one: a DataModule or any object
        # with its methods. Any, so that a module reads its own attributes (`self.trainer.datamodule.
        # num_classes`, as in Lightning) and `isinstance` narrows it to the user's class.
        self.datamodule: Any = None
        # inf until the fit loop counts them before on_train_start, as Lightning's (or until
        # `estimated_stepping_batches` is read: it counts them, as Lightning's does)
        self.num_training_batches: int | float = math.inf
        # Batches the last validation, test and predict ran on, or run on now (inf: the loader ends the
        # stage, as in Lightning); one number for the stage's one loader, where Lightning has a list of one,
        # and a list of each's for several loaders, as Lightning's.
        self.num_val_batches: int | float | list[int | float] = 0
        self.num_test_batches: int | float | list[int | float] = 0
        self.num_predict_batches: int | float | list[int | float] = 0  # (a list: one for each loader)
        # What validation's interval is sized from, once fit has its training loader (`_size_epochs`).
        self._val_sizing: tuple | None = None
        self._val_sized_for: tuple | None = None
        self._train_step: TrainStep | None = None
        self._bare_hooks: frozenset[str] = frozenset()  # module hooks written as Lightning's (no arguments)
        self.evaluation = EvaluationLoop(self)  # validation, test, predict and the sanity check
        # The loaders `fit` and `test` were given: a DataLoader or any iterable of batches (`prepare_loader`).
        self._train_loader: DataLoader | Iterable[Any] | None = None
        # The train loader passed to `fit`, from its start until `_train_loader` is set: what
        # `estimated_stepping_batches` counts in the `setup` hooks (Lightning's reads the loader there).
        self._passed_train_loader: Any = None
        # The datamodule (or module) whose train_dataloader() `estimated_stepping_batches` may ask for early,
        # in the `setup` hooks of a fit not resumed, as Lightning's does; what it made is used for the fit, so
        # the loader is made once (None: not in that window, or already made).
        self._early_train_source: Any = None
        self._early_train_loader: Any = None
        self._val_loader: DataLoader | Iterable[Any] | None = None
        # From fit's start until its loaders are made (its `setup` hooks; `on_fit_start` too where the
        # datamodule's val_dataloader() is asked for after it): whether it validates, with a
        # loader passed or one its datamodule or module defines (Lightning's `enable_validation` says so in
        # `setup` already); None otherwise, where `_val_loader` says.
        self._val_loader_coming: bool | None = None
        # (the datamodule or module whose val_dataloader() fit asks for after on_fit_start, and the counters
        # it is asked with; None otherwise)
        self._val_loader_asked_later: tuple[Any, dict[str, Any] | None] | None = None
        self._overfit_val_order: Any = None  # (overfit_batches' order, set with a val loader asked later)
        self._is_last_batch = False  # (Lightning's `is_last_batch`: set at each training batch)
        self._in_epoch = False  # from on_train_epoch_start to its end (fit_loop.epoch_progress reads it)
        self._last_epoch_batches: int | None = None  # (fit_loop.epoch_loop.batch_progress between epochs)
        # From a batch that stepped to the end of its validation: Lightning counts it in `_batches_that_stepped`
        # only then (fit_loop.epoch_loop reads it).
        self._ending_a_stepped_batch = False
        self._trainable_at_last_step: frozenset[str] | None = None  # (what the epoch's last step trained)
        self._test_loader: DataLoader | Iterable[Any] | None = None
        self._predict_loader: DataLoader | Iterable[Any] | None = None
        self._validate_loader: DataLoader | Iterable[Any] | None = None  # (the last `validate` call's)
        self._pending_ckpt: str | None = None
        self._loaders_on_trainer_seed: list = []  # `fit`'s loaders that had no seed of their own
        self._streak_in_flight: mx.array | None = None  # the last step's non-finite streak (maybe running)
        # On a shared server whose /tmp/mlx is another user's, this user's own kernel folder, before the first
        # compile of this Trainer's steps (MLX reads TMPDIR at each CPU compile, and at its first CUDA one);
        # here, not at `import audiotrain`, which changes nothing in the process's environment.
        use_own_kernel_folder(self._note)

    def __repr__(self) -> str:
        """The settings given (those other than the defaults), and once a stage ran where the Trainer is:
        ``Trainer(max_epochs=3, default_root_dir='r', current_epoch=3, global_step=48, state='finished')``."""
        where = {}
        if self.state.status != "initializing":
            where = {"current_epoch": self.current_epoch, "global_step": self.global_step}
            where["state"] = self.state.status
        return settings_repr("Trainer", {**self._settings, **where})

    # ---- the limits a notebook raises between two fits ---------------------------------------------------
    @property
    def ckpt_path(self) -> str | os.PathLike | None:
        """The checkpoint the running (or last) stage loaded; None where it loaded none."""
        return self._ckpt_path

    @ckpt_path.setter
    def ckpt_path(self, value: str | os.PathLike | None) -> None:
        """Lightning's stateful ckpt_path: `fit`, `validate`, `test` and `predict` called without one load
        `value` (a checkpoint folder, "last" or "best"), until it is set to None or a stage is given another."""
        if not (value is None or isinstance(value, str | os.PathLike)):
            raise TypeError(
                "Trainer.ckpt_path must be a checkpoint folder, 'last' or 'best' (a str or os.PathLike) or "
                f"None, got {type(value).__name__}"
            )
        self._ckpt_path = value
        self._ckpt_path_set_by_user = value is not None

    def _chosen_ckpt_path(self, method: str, ckpt_path: str | os.PathLike | None) -> str | os.PathLike | None:
        """The checkpoint `method` loads: the `ckpt_path` it was given, else the one the user set as
        `trainer.ckpt_path`. Given both, the argument wins and the set one is forgotten, with Lightning's
        warning."""
        if not self._ckpt_path_set_by_user:
            return ckpt_path
        if ckpt_path is None:
            return self._ckpt_path
        warnings.warn(
            f"`trainer.ckpt_path = {self._ckpt_path!r}` was called but then you passed "
            f"`trainer.{method}(ckpt_path={ckpt_path!r})`. The latter will be loaded.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        self._ckpt_path_set_by_user = False
        return ckpt_path

    @property
    def accumulate_grad_batches(self) -> int:
        return self._accumulate_grad_batches

    @accumulate_grad_batches.setter
    def accumulate_grad_batches(self, value: int) -> None:
        # Checked where it is set (a schedule callback, between fits), not where the step breaks on it.
        self._accumulate_grad_batches = flags.assigned_accumulate_grad_batches(value)

    @property
    def max_epochs(self) -> int | None:
        return self._max_epochs

    @max_epochs.setter
    def max_epochs(self, value: int | None) -> None:
        # Checked and -1 read as no limit, as Trainer(max_epochs=...) does; the repr shows the new value.
        self._max_epochs = flags.training_length("max_epochs", value, assigned=True)
        self._settings["max_epochs"] = value

    @property
    def max_steps(self) -> int | None:
        return self._max_steps

    @max_steps.setter
    def max_steps(self, value: int | None) -> None:
        self._max_steps = flags.training_length("max_steps", value, assigned=True)
        self._settings["max_steps"] = value

    @property
    def max_time(self) -> float | None:
        """`max_time` in seconds (None: no limit)."""
        return self._max_time

    @max_time.setter
    def max_time(self, value: Any) -> None:
        # Parsed as Trainer(max_time=...) is ("DD:HH:MM:SS", a timedelta, a dict): the loop compares seconds.
        # A number is taken as the seconds this property reads back (`t.max_time = t.max_time`; a callback's
        # `trainer.max_time = 0.0` to end the fit now), where Trainer(max_time=30) is refused as Lightning's.
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < math.inf:
            self._max_time = float(value)
        else:
            self._max_time = flags.max_time(value)
        self._settings["max_time"] = value

    @property
    def fit_loop(self) -> FitLoopLimits:
        """Lightning's `trainer.fit_loop.max_epochs = N` (and max_steps, min_epochs, min_steps): the same
        limits as the Trainer's own attributes."""
        return FitLoopLimits(self)

    # ---- the view callbacks read ---------------------------------------------------------------------
    # The run's named state, held by `RunState` (train/run_state.py).
    @property
    def progress(self) -> Progress:
        return self._run.progress

    @progress.setter
    def progress(self, value: Progress) -> None:
        self._run.progress = value

    @property
    def running(self) -> RunningMeans:
        return self._run.running

    @running.setter
    def running(self, value: RunningMeans) -> None:
        self._run.running = value

    @property
    def callback_metrics(self) -> dict[str, float]:
        """Lightning's: the latest value of every metric (floats, with Lightning's `.item()` as well)."""
        return self._run.callback_metrics

    @callback_metrics.setter
    def callback_metrics(self, value: dict[str, float]) -> None:
        self._run.callback_metrics = Metrics(value)

    # The stop requests, held by `StopRequests` (train/stopping.py).
    @property
    def should_stop(self) -> bool:
        """Set True to end `fit` at the next point it checks (after this step; once `min_epochs` and
        `min_steps` allow)."""
        return self._stopping.should_stop

    @should_stop.setter
    def should_stop(self, value: bool) -> None:
        self._stopping.should_stop = value

    @property
    def interrupted(self) -> bool:
        """A stop signal (Ctrl-C, SIGTERM) ended the last fit, or ends the current one after this step; or
        a Ctrl-C stopped the last `validate`, `test` or `predict`."""
        return self._stopping.interrupted

    @interrupted.setter
    def interrupted(self, value: bool) -> None:
        self._stopping.interrupted = value

    @property
    def interrupted_checkpoint(self) -> Path | None:
        """Where a stop signal saved the last fit (enable_checkpointing), once it has; else None."""
        return self._stopping.interrupted_checkpoint

    @interrupted_checkpoint.setter
    def interrupted_checkpoint(self, value: Path | None) -> None:
        self._stopping.interrupted_checkpoint = value

    @property
    def resume_hint(self) -> str | None:
        """Printed after a stop signal saves ({path} is the checkpoint); a command-line tool sets its own,
        or None."""
        return self._stopping.resume_hint

    @resume_hint.setter
    def resume_hint(self, value: str | None) -> None:
        self._stopping.resume_hint = value

    @property
    def logged_metrics(self) -> dict[str, float]:
        """The last value of each name sent to the loggers (`log_metrics`)."""
        return self._step_logging.logged_metrics

    @logged_metrics.setter
    def logged_metrics(self, value: dict[str, float]) -> None:
        self._step_logging.logged_metrics = Metrics(value)

    def _forget_reported_metrics(self) -> None:
        """As Lightning's `_run` when a stage starts (`reset_metrics`): `callback_metrics` and
        `logged_metrics` hold only what this stage reports, so a `validate` or `test` after `fit` does not
        show fit's training values, nor a `test` the `val_loss` of the validation before it. The bar's
        numbers too (`progress_bar_metrics`): fit's last step, hook values and last validation would
        otherwise show beside, or instead of, what `validate` has just computed."""
        self.callback_metrics = {}
        self.logged_metrics = {}
        self._step_logging.forget_shown()
        self._run.validation_metrics = {}  # (a resumed fit's comes back from its checkpoint)

    @property
    def current_epoch(self) -> int:
        epoch = self.progress.epoch
        self._note_a_read("current_epoch", epoch, count=True)
        return epoch

    @property
    def global_step(self) -> int:
        step = self.progress.global_step
        self._note_a_read("global_step", step, count=True)
        return step

    def _note_a_read(self, name: str, value: Any, count: bool = False) -> None:
        """`self.trainer.current_epoch` (or `.sanity_checking`) read by the user's compiled step as it is
        traced: a graph constant, where Lightning's step reads it afresh. Noted for the evaluation steps,
        which are traced again where it changed (a validation_step's `if self.trainer.sanity_checking`
        was the sanity check's at every validation), and, for a `count`, warned of in the training step
        (`TrainModule._warn_of_a_count_read_in_a_compiled_step`, as `self.current_epoch` is). (Costs two
        dict reads outside a step.)"""
        module = vars(self).get("module")
        held = vars(module) if module is not None else {}
        if held.get("_step_logs") is None and not held.get("_in_traced_hook", False):
            return
        if not traced_reads.is_users_file(sys._getframe(2).f_code.co_filename):
            return  # (the Trainer's own code)
        if count:
            module._warn_of_a_count_read_in_a_compiled_step(name, read_as=f"self.trainer.{name}")
        traced_reads.note_read(self, name, value, f"trainer.{name}")

    @property
    def batch_in_epoch(self) -> int:
        return self.progress.batch_in_epoch

    @property
    def state(self) -> TrainerState:
        """Lightning's `trainer.state`: `.status`, `.fn` and `.stage` (`train/trainer_state.py`); itself the
        status as a string ("initializing", "running", "finished", "interrupted", "failed"), as it was.
        Unlike Lightning's, `interrupted` stays False after a stage raised ("failed"): it means a stop signal
        (Ctrl-C) ended the fit, which a resume continues (`interrupted_checkpoint`)."""
        return self._state_tracker.snapshot()

    # Lightning's booleans over `state.stage`, with its setters (False leaves another stage as it is).
    @property
    def training(self) -> bool:
        """In `fit`, training (not in its sanity check or a validation)."""
        value = self._state_tracker.stage == "train"
        self._note_a_read("training", value)
        return value

    @training.setter
    def training(self, value: bool) -> None:
        self._state_tracker.set_stage("train", value)

    @property
    def sanity_checking(self) -> bool:
        """In `fit`'s sanity check (its validation hooks run, and nothing is logged)."""
        value = self._state_tracker.stage == "sanity_check"
        self._note_a_read("sanity_checking", value)
        return value

    @sanity_checking.setter
    def sanity_checking(self, value: bool) -> None:
        self._state_tracker.set_stage("sanity_check", value)

    @property
    def validating(self) -> bool:
        """In `validate`, or in a validation inside `fit`."""
        value = self._state_tracker.stage == "validate"
        self._note_a_read("validating", value)
        return value

    @validating.setter
    def validating(self, value: bool) -> None:
        self._state_tracker.set_stage("validate", value)

    @property
    def testing(self) -> bool:
        value = self._state_tracker.stage == "test"
        self._note_a_read("testing", value)
        return value

    @testing.setter
    def testing(self, value: bool) -> None:
        self._state_tracker.set_stage("test", value)

    @property
    def predicting(self) -> bool:
        value = self._state_tracker.stage == "predict"
        self._note_a_read("predicting", value)
        return value

    @predicting.setter
    def predicting(self, value: bool) -> None:
        self._state_tracker.set_stage("predict", value)

    @property
    def evaluating(self) -> bool:
        """Lightning's: validating, testing or sanity checking."""
        value = self._state_tracker.stage in ("validate", "test", "sanity_check")
        self._note_a_read("evaluating", value)
        return value

    @property
    def seed(self) -> int:
        """The seed `fit` starts from: `Trainer(seed=...)`, else the last `seed_everything` seed (read when
        `fit` starts), else 42; once a fit resumed from a checkpoint, the seed that run started with (for a
        Trainer without `seed=`, until the next `seed_everything`, as in Lightning)."""
        if self._seed is not None:
            return self._seed
        if self._checkpoint_seed is not None and self._checkpoint_seed[1] == seed_everything_calls():
            return self._checkpoint_seed[0]
        return default_seed()

    @property
    def logger(self) -> Logger | None:
        """The first logger (Lightning's), or None without one."""
        return self.loggers[0] if self.loggers else None

    @logger.setter
    def logger(self, value: Logger | None) -> None:
        # Lightning's setter: a script that swaps the logger between stages (`trainer.logger = None` before
        # a `test` that should write nothing) sets the whole list; False too is none, as Lightning's `not
        # logger`, and a value that is no logger is refused naming `trainer.logger`.
        no_logger = value is None or value is False
        self._loggers = trainer_loggers([] if no_logger else [value], self.default_root_dir, "trainer.logger")

    @property
    def loggers(self) -> list[Logger]:
        """The loggers, in the order given (Lightning's); `trainer.loggers = [...]` replaces them."""
        return self._loggers

    @loggers.setter
    def loggers(self, value: Sequence[Logger] | Mapping[str, Logger] | None) -> None:
        # As Lightning's: None, [] or {} is no logger, and a list is copied (the caller's list stays its
        # own); read as `Trainer(logger=...)` reads them, so a value that is no logger is refused here.
        self._loggers = trainer_loggers(value, self.default_root_dir, "trainer.loggers")

    @property
    def _writing_loggers(self) -> list:
        """The loggers the Trainer writes to: all of them on rank 0, none on the other ranks (a logger that
        is no `Logger` subclass has no rank guard of its own)."""
        return self.loggers if self.is_global_zero else []

    @property
    def checkpoint_callbacks(self) -> list[ModelCheckpoint]:
        """The ModelCheckpoint callbacks, in the order given (Lightning's name)."""
        return [cb for cb in self.callbacks if isinstance(cb, ModelCheckpoint)]

    @property
    def checkpoint_callback(self) -> ModelCheckpoint | None:
        """The first ModelCheckpoint, or None without checkpointing (Lightning's name): where
        `trainer.checkpoint_callback.best_model_path` / `.last_model_path` come from."""
        found = self.checkpoint_callbacks
        return found[0] if found else None

    @property
    def early_stopping_callbacks(self) -> list[EarlyStopping]:
        """The EarlyStopping callbacks, in the order given (Lightning's name)."""
        return [cb for cb in self.callbacks if isinstance(cb, EarlyStopping)]

    @property
    def early_stopping_callback(self) -> EarlyStopping | None:
        """The first EarlyStopping, or None (Lightning's name)."""
        found = self.early_stopping_callbacks
        return found[0] if found else None

    @property
    def log_dir(self) -> str | None:
        """Lightning's: the first logger's run folder (its `log_dir`: `version_<k>` of a TensorBoard or CSV
        logger, a logger of one's own's; else its `save_dir`, None where it writes nothing locally), or
        `default_root_dir` without loggers. (Lightning's is the `save_dir` of any logger but TensorBoard's and
        CSV's.)"""
        if not self.loggers or isinstance(self.loggers[0], DummyLogger):  # (fast_dev_run's: no folder)
            return str(self.default_root_dir)
        first = self.loggers[0]
        folder = getattr(first, "log_dir", None) or getattr(first, "save_dir", None)
        return str(folder) if folder is not None else None

    @property
    def lightning_module(self) -> TrainModule | None:
        """Lightning's name for `module`: the module attached by the last fit, validate, test or predict."""
        return self.module

    @property
    def model(self) -> TrainModule | None:
        """Lightning's other name for `module` (there is no wrapper around it here)."""
        return self.module

    @property
    def optimizers(self) -> list[LightningOptimizer]:
        """Lightning's list of optimizers: `[optimizer]` once `fit` configured it, else empty, each seen as
        `TrainModule.optimizers()` gives it (Lightning's habit `trainer.optimizers[0].param_groups[0]["lr"]`
        reads the rate; attributes read and set through to the MLX optimizer, `.optimizer` is that one)."""
        if self._manual:  # (a manual module's optimizers, each on its own parameters: Lightning's list)
            return _OptimizerList(list(self._train_step.handles))
        # (read inside a compiled step, a rate set through it would be the trace's: refused, as the module's)
        held = vars(self.module) if self.module is not None else {}
        traced = (held.get("_step_logs") is not None or held.get("_in_traced_hook", False)) and bool(
            self.compile
        )
        return _OptimizerList(
            [LightningOptimizer(self.optimizer, traced)] if self.optimizer is not None else []
        )

    @property
    def lr_scheduler_configs(self) -> list:
        """Lightning's list of the schedulers it steps: none here (`_no_scheduler_list`)."""
        raise _no_scheduler_list("lr_scheduler_configs")

    # Lightning's per-node device names. An MLX process drives one device and data parallel is one process per
    # device (mlx.launch -n N), so Lightning's devices x nodes is world_size: num_devices answers that and
    # num_nodes 1, their product what ported code reads them for (an effective batch size, a learning rate
    # scaled by it). The hosts of a multi-host launch are not told apart, so a device's index on its node and
    # the node's rank are not known: an AttributeError (hasattr stays False) saying what to read instead.
    @property
    def num_devices(self) -> int:
        """Lightning's devices on this node: here the job's processes, `world_size` (`num_nodes` is 1)."""
        return self.world_size

    @property
    def num_nodes(self) -> int:
        """Lightning's node count: 1 here, with `num_devices` the job's processes (as Trainer(num_nodes=1),
        the value taken, says), so that num_devices x num_nodes is `world_size` as in Lightning."""
        return 1

    @property
    def device_ids(self) -> list[int]:
        raise _no_device_count("device_ids")

    @property
    def node_rank(self) -> int:
        raise _no_device_count("node_rank")

    # Lightning's evaluation loop objects: an AttributeError (hasattr stays False) naming what to read.
    @property
    def validate_loop(self) -> EvaluationLoopView:
        """Lightning's loop object of `trainer.validate`: its `batch_progress` (train/loop_progress.py)."""
        return EvaluationLoopView(self, "val", "val", _no_evaluation_loop("validate_loop", "val"))

    @property
    def test_loop(self) -> EvaluationLoopView:
        """Lightning's loop object of `trainer.test`: its `batch_progress` (train/loop_progress.py)."""
        return EvaluationLoopView(self, "test", "test", _no_evaluation_loop("test_loop", "test"))

    @property
    def predict_loop(self) -> Any:
        raise _no_evaluation_loop("predict_loop", "predict")

    @property
    def received_sigterm(self) -> bool:
        """Lightning's flag for a SIGTERM received: here `interrupted` (Ctrl-C or a stop signal)."""
        raise AttributeError(
            "Trainer.received_sigterm: a stop signal (SIGTERM as Ctrl-C) sets trainer.interrupted here, and "
            "the fit saves a checkpoint to resume from (trainer.interrupted_checkpoint)"
        )

    @property
    def enable_validation(self) -> bool:
        """Lightning's: whether `fit` validates, with a validation loader and `limit_val_batches` above 0."""
        coming = self._val_loader_coming  # (None outside that window: the loader itself says)
        return (self._val_loader is not None if coming is None else coming) and self.limit_val_batches != 0

    @property
    def lr_schedulers(self) -> list:
        """Lightning 1's name for `lr_scheduler_configs`: none here either."""
        raise _no_scheduler_list("lr_schedulers")

    # The limits as Lightning's properties show them: 1.0 (every batch) where none was given, fast_dev_run's
    # number of batches under it.
    @property
    def limit_train_batches(self) -> int | float:
        return self._fast_dev_batches or _shown_limit(self.limits["train"])

    @property
    def limit_val_batches(self) -> int | float:
        return self._fast_dev_batches or _shown_limit(self.limits["val"])

    @property
    def limit_test_batches(self) -> int | float:
        return self._fast_dev_batches or _shown_limit(self.limits["test"])

    @property
    def limit_predict_batches(self) -> int | float:
        return self._fast_dev_batches or _shown_limit(self.limits["predict"])

    # The non-finite stop's settings, held by its watch: `train/nonfinite.py`.
    @property
    def max_consecutive_nonfinite(self) -> int:
        return self._nonfinite.limit

    @max_consecutive_nonfinite.setter
    def max_consecutive_nonfinite(self, value: int) -> None:
        self._nonfinite.limit = value

    @property
    def nonfinite_guard(self) -> bool:
        return self._nonfinite.guard

    @nonfinite_guard.setter
    def nonfinite_guard(self, value: bool) -> None:
        self._nonfinite.guard = value

    # The validation timing (Lightning's flags), held by the schedule: `train/validation_schedule.py`.
    @property
    def val_check_interval(self) -> int | float:
        return self._validation_schedule.val_check_interval

    @val_check_interval.setter
    def val_check_interval(self, value: int | float) -> None:
        # Checked as the constructor's argument: a callback sets it mid-fit (the loop reads it at every
        # batch), where 0 stopped the fit in a modulo by zero and np.int64(2) was taken as a fraction (2
        # epochs).
        value = flags.val_check_interval(value)
        if self.check_val_every_n_epoch is None and isinstance(value, float):
            raise ValueError(
                f"trainer.val_check_interval = {value!r}: with check_val_every_n_epoch=None validation runs "
                "only every val_check_interval batches; give an int"
            )
        self._validation_schedule.val_check_interval = value

    @property
    def check_val_every_n_epoch(self) -> int | None:
        return self._validation_schedule.check_val_every_n_epoch

    @check_val_every_n_epoch.setter
    def check_val_every_n_epoch(self, value: int | None) -> None:
        self._validation_schedule.check_val_every_n_epoch = value

    @property
    def val_check_batch(self) -> int | float:
        """Lightning's: the training batches between validations in `fit` (`val_check_interval` as an int,
        or int(fraction x the epoch's batches)); inf where a loader without a length validates at its
        epochs' ends. Known once `fit` has its training loader (in `on_train_start`), as Lightning's."""
        if self._val_sizing is None:
            raise AttributeError(
                "Trainer.val_check_batch is known once fit has its training loader (from on_train_start on); "
                f"before it, read trainer.val_check_interval ({self.val_check_interval!r})"
            )
        every = self._val_every_for(self._val_sizing)
        return math.inf if every is None else every

    @val_check_batch.setter
    def val_check_batch(self, value: int | float) -> None:
        # A callback's adaptive validation (Lightning's idiom) sets it mid-fit: here the schedule reads
        # val_check_interval, so an int becomes that, inf the epoch end; a value the loop would not read
        # is refused rather than kept as an attribute that changes nothing.
        if value == math.inf:
            if self.check_val_every_n_epoch is None:  # (named here: the interval's setter names 1.0)
                raise ValueError(
                    "trainer.val_check_batch = inf (validate at epoch ends): with "
                    "check_val_every_n_epoch=None validation runs only every val_check_batch batches; "
                    "give an int"
                )
            self.val_check_interval = 1.0
            return
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(
                f"trainer.val_check_batch = {value!r}: expected an int number of training batches >= 1, or "
                "math.inf (validate at epoch ends)"
            )
        self.val_check_interval = int(value)

    @property
    def validates_within_epochs(self) -> bool:
        """Whether this `fit` validates other than exactly once at each epoch end: `val_check_interval`
        below 1.0 (also mid-epoch) or an int (every N batches). Callbacks that
        monitor a validation metric then act after each validation instead of at epoch end, as in Lightning;
        a training metric they monitor is still checked at epoch ends, where its epoch mean is."""
        return self.fitting and self._has_val_loader() and not self._validation_schedule.once_per_epoch

    def _has_val_loader(self) -> bool:
        """Whether `fit` has a validation loader: made, or still to be asked for (`on_fit_start` runs before
        a datamodule's `val_dataloader()`, as in Lightning, where `trainer.val_dataloaders` is None still)."""
        return self._val_loader is not None or bool(self._val_loader_coming)

    @property
    def validated_at_epoch_end(self) -> bool:
        """Whether the epoch now ending validated at its end, after its means (a float `val_check_interval`
        whose check lands there, or a stop's validation). ModelCheckpoint saves that score there; an epoch
        end without one would save a mid-epoch validation's score again."""
        return self._validation_schedule.epoch_end_validated

    @property
    def val_dataloaders(self) -> DataLoader | Iterable[Any] | None:
        """The validation loader `fit` was given, or None (Lightning's name); in and after a `validate`
        call (until another method starts), the loader that call runs on, as Lightning's: a hook that
        reads it there (`padding_batches` under data parallel) found None."""
        if self._state_tracker.fn == "validate":
            return as_given(self._validate_loader)
        return as_given(self._val_loader)

    @property
    def train_dataloader(self) -> DataLoader | Iterable[Any] | None:
        """The training loader `fit` was given, or None (Lightning's name)."""
        return self._train_loader

    @property
    def progress_bar_callback(self) -> ProgressBar | None:
        """The progress bar among the callbacks (Lightning's), or None (`enable_progress_bar=False`)."""
        return next((cb for cb in self.callbacks if isinstance(cb, ProgressBar)), None)

    @property
    def is_last_batch(self) -> bool:
        """Whether the training batch running now (or the last that ran) is its epoch's last (Lightning's).
        False where the loader's length is unknown (an iterable without `len`): its end shows only after."""
        self._note_a_read("is_last_batch", self._is_last_batch, count=True)
        return self._is_last_batch

    @property
    def num_sanity_val_batches(self) -> Any:
        """The validation batches `fit`'s sanity check runs (Lightning's; one number for the one loader, as
        `num_val_batches`, a list for several): `num_sanity_val_steps` (-1: all) at most the loader's
        batches; inf where its length is unknown and -1 asks for all; 0 without a val loader."""
        loader = self._val_loader
        if loader is None or self.fast_dev_run:
            return 0
        wanted = math.inf if self.num_sanity_val_steps in (-1, math.inf) else self.num_sanity_val_steps
        total = self.evaluation.limit("val", loader)
        if isinstance(total, list):  # (each loader's, as Lightning's)
            return [wanted if each is None else min(wanted, each) for each in total]
        return wanted if total is None else min(wanted, total)

    @property
    def test_dataloaders(self) -> DataLoader | Iterable[Any] | None:
        """The loader the last `test` ran on, or None (Lightning's name; several: the list or dict given)."""
        return as_given(self._test_loader)

    @property
    def predict_dataloaders(self) -> DataLoader | Iterable[Any] | None:
        """The loader the last `predict` ran on, or None (Lightning's name; several: the list or dict
        given)."""
        return as_given(self._predict_loader)

    @property
    def validates_after_this_batch(self) -> bool:
        """In `on_train_batch_end`: whether a validation runs right after this batch, one due inside the
        epoch or the epoch's own at its end (also where `max_steps` ends it early). A ModelCheckpoint that
        saves every N steps with a `monitor` then saves after it, so that the step's new score counts."""
        if not self.fitting or not self._has_val_loader():  # (or one asked for at the first validation)
            return False
        max_steps_reached = self.max_steps is not None and self.global_step >= self.max_steps
        return self._validation_schedule.after_batch(
            self.progress, self.num_training_batches, max_steps_reached
        )

    @property
    def estimated_stepping_batches(self) -> int | float:
        """Optimizer steps the current `fit` will take (Lightning's name), for schedules that need
        the total, e.g. OneCycle in `configure_optimizers`; inf when nothing bounds it."""
        estimate = self._estimate_stepping_batches()
        batches = self._train_batches_per_epoch()
        if batches is not None:  # (Lightning's reading sets up the fit's train loader and its count)
            self.num_training_batches = batches
        # (a rebuilt loader's longer epochs warn of a schedule sized by it: _follow_rebuilt_epochs)
        self._stepping_estimate = estimate
        return estimate

    def _estimate_stepping_batches(self) -> int | float:
        """`estimated_stepping_batches`, read by the Trainer itself (not a schedule the user sized by it)."""
        return self._stepping_batches_breakdown()[0]

    def _stepping_batches_breakdown(self) -> tuple[int | float, str]:
        """`_estimate_stepping_batches` and how it came to its number, for a message: "max_steps=5" or
        "max_epochs=3 x 4 updates an epoch (7 batches / accumulate_grad_batches=2, rounded up)"."""
        batches = self._train_batches_per_epoch()
        max_steps = self.max_steps if self.max_steps is not None else math.inf
        if batches is None or self.max_epochs is None:
            return (max_steps, f"max_steps={self.max_steps}")
        accumulate = self.accumulate_grad_batches
        updates_per_epoch = math.ceil(batches / accumulate)
        if max_steps <= updates_per_epoch * self.max_epochs:
            return (max_steps, f"max_steps={self.max_steps}")
        per_epoch = f"{batches} batches an epoch"
        if accumulate > 1:
            per_epoch = (
                f"{updates_per_epoch} updates an epoch ({batches} batches / "
                f"accumulate_grad_batches={accumulate}, rounded up)"
            )
        return (updates_per_epoch * self.max_epochs, f"max_epochs={self.max_epochs} x {per_epoch}")

    def _warn_of_schedules_ending_early(self) -> None:
        """Warn, as a fit starts, of a learning-rate schedule that ends before the fit does and then holds a
        rate that trains next to nothing (a OneCycleScheduler sized by hand: epochs x len(loader) with
        accumulation, or a larger max_epochs later). torch's OneCycleLR raises there; a warning, because
        such a fit trains as the docs say. Every rank computes it (no collective), rank 0 says it."""
        fit_steps, how = self._stepping_batches_breakdown()
        if fit_steps == math.inf or self.global_step >= fit_steps or self.optimizer is None:
            return  # (a fit bounded by nothing, or by time alone, knows no total; a finished one says so)
        ended = schedules_ended_before(self.optimizer, int(fit_steps) - 1)
        if not ended or not self.is_global_zero:
            return
        for what, total, steps, rate, unit in ended:
            per_epoch = unit == "epochs"
            fix = "total_steps=" + (
                "self.trainer.max_epochs" if per_epoch else "self.trainer.estimated_stepping_batches"
            )
            warnings.warn(
                f"Trainer.fit: the learning-rate schedule {what}"
                + (", an lr_scheduler stepped per epoch," if per_epoch else "")
                + f" ends before this fit does: the fit takes {fit_steps} optimizer steps ({how}), the "
                f"schedule is stepped {steps} times, so its last "
                f"{steps - total} {unit} train at its final rate {rate:.3g}, next to nothing; "
                + held_rate_advice(
                    f"Size it with {fix} in configure_optimizers", "max_epochs" if per_epoch else "max_steps"
                ),
                stacklevel=user_stacklevel(),
            )

    def _train_batches_per_epoch(self) -> int | None:
        """Training batches an epoch of the current `fit` takes (limits and fast_dev_run applied); None for a
        loader without a length. Known from the start of `fit`, before configure_optimizers."""
        loader = self._train_loader if self._passed_train_loader is None else self._passed_train_loader
        if loader is None and self._early_train_source is not None:
            source, self._early_train_source = self._early_train_source, None
            self._early_train_loader = loaders_from(source, {"train": None})["train"]
        if loader is None:
            loader = self._early_train_loader
        total = loader_len(loader) if loader is not None else None
        return self._fast_dev_batches or flags.resolve_limit(
            self.limits["train"], total, self._limit_flags["train"], "train"
        )

    def _turned_off(self, stage: str) -> bool:
        """`limit_val_batches=0` (or `limit_test_batches=0`, ...): Lightning's way to turn a stage off."""
        return not self.fast_dev_run and self.limits[stage] == 0

    def _training_batches(self, loader: Any) -> int | None:
        """Batches an epoch of `loader` trains on (fast_dev_run, limit_train_batches); None: no length."""
        return self._fast_dev_batches or flags.resolve_limit(
            self.limits["train"], loader_len(loader), self._limit_flags["train"], "train"
        )

    def _reads_whole_stream(self, loader: Any, stage: str = "train") -> bool:
        """A loader over a stream that a stage reads until the stream ends: its `len(loader)` is an estimate
        (with workers each one's stream ends in a short batch), and stopping there would skip the rest of
        the stream every epoch (or leave samples out of a validation's means). Not where a limit
        (limit_<stage>_batches, overfit_batches, fast_dev_run) sets the batches."""
        return (
            bool(getattr(loader, "reads_stream", False))
            and self.limits[stage] is None
            and not self.fast_dev_run
        )

    def _training_limit_set_by(self, loader: Any) -> str | None:
        """The flag that made an epoch of `loader` shorter than the loader ("overfit_batches=4"), or None."""
        limit, total = self.limits["train"], loader_len(loader)
        if (
            self.fast_dev_run
            or limit is None
            or (total is not None and self._training_batches(loader) >= total)
        ):
            return None
        return f"{self._limit_flags['train']}={limit}"

    def print(
        self, *args: Any, sep: str = " ", end: str = "\n", file: Any = None, flush: bool = False
    ) -> None:
        """Print from rank 0 only under data parallel (as Lightning's), above any progress bar; `sep`,
        `end`, `file` and `flush` as ``print``'s (stdout by default)."""
        if not self.is_global_zero:
            return
        from audiotrain._tqdm import tqdm

        try:
            tqdm.write(sep.join(str(a) for a in args), file=file, end=end)
            stream = sys.stdout if file is None else file
            if flush and stream is not None:  # (tqdm.write takes no flush; Lightning's passes it to print)
                stream.flush()
        except BrokenPipeError:
            if file is None or file is not sys.stderr:  # (the user's own output: theirs to handle)
                raise
            self._stopping.output_lost()  # the trainer's lines (a summary, a stop's notes) had lost their reader

    @contextlib.contextmanager
    def init_module(self, empty_init: bool | None = None) -> Iterator[None]:
        """Lightning's ``with trainer.init_module(): model = MyModel()``: there it creates the weights on the
        device, in a "-true" precision's dtype. Here a module's arrays are in unified memory already, and
        `fit` / `validate` / `test` / `predict` cast them to the precision's dtype (bfloat16 under
        `precision="bf16-true"`) as they start: nothing to do before. `empty_init` (Lightning's: skip the
        initialisation, weights to be loaded) is accepted; MLX has no uninitialised arrays, so the weights
        are initialised all the same."""
        if empty_init is not None and not isinstance(empty_init, bool):
            raise TypeError(f"Trainer.init_module(empty_init={empty_init!r}): expected True, False or None")
        yield

    def _note(self, text: str) -> None:
        """A line about the run itself (a stop heard, the checkpoint it saved): on stderr, with the progress
        lines and warnings, so stdout holds what the user's code prints."""
        self.print(text, file=sys.stderr)

    # ---- fit -----------------------------------------------------------------------------------------
    def fit(
        self,
        model: TrainModule,
        train_loader: Any = None,
        val_loader: Any = None,
        datamodule: Any = None,
        ckpt_path: str | os.PathLike | None = None,
        weights_only: bool | None = None,
        *,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
    ) -> None:
        """Train `model`; resume everything from `ckpt_path` if given (a checkpoint folder, "last" or
        "best"). `train_dataloaders` / `val_dataloaders` are Lightning's names for the two loaders, and
        `datamodule` gives both. The arguments come in Lightning's order, so `fit(model, None, None, dm)`
        works; a path in the datamodule's place is taken as `ckpt_path` (audiotrain's order before:
        `fit(model, train_loader, val_loader, ckpt_path)`). `weights_only` (Lightning's: how torch unpickles
        the checkpoint) is accepted and changes nothing: a checkpoint here holds no pickle."""
        check_weights_only("fit", weights_only)
        if isinstance(datamodule, str | os.PathLike) and ckpt_path is None:
            datamodule, ckpt_path = None, datamodule
        ckpt_path = self._chosen_ckpt_path("fit", checkpoint_argument("fit", ckpt_path))
        if not isinstance(model, TrainModule):  # (first, as in Lightning: before what the Trainer lacks)
            raise TypeError(f"Trainer.fit: expected a TrainModule, got {type(model).__name__}")
        hooks.refuse_steps_set_to_none(model, "fit")
        refuse_dataloader_iter(model, "validation_step")  # (training_step's: with the optimizer's checks)
        flags.require_training_length(
            self.max_epochs, self.max_steps, self.max_time, bool(self.early_stopping_callbacks)
        )
        train_loader = one_loader("fit", "train_loader", train_loader, "train_dataloaders", train_dataloaders)
        # (Lightning's several training loaders: a batch of each per step)
        train_loader = combine_training_loaders(train_loader, "Trainer.fit: train_loader")
        train_loader, datamodule = datamodule_given_as_loader("fit", train_loader, datamodule)
        val_loader = one_loader("fit", "val_loader", val_loader, "val_dataloaders", val_dataloaders)
        # (Lightning's several validation loaders: each in turn, with its dataloader_idx)
        val_loader = evaluation_loaders(val_loader)
        source = loader_source("fit", datamodule, model, {"train": train_loader, "val": val_loader})
        if source is None:  # (the loaders passed: refused before anything runs, where they must be)
            train_loader, val_loader = self._fit_loaders(model, None, train_loader, val_loader)
        if str(ckpt_path or self._pending_ckpt) == "best":
            # Named before setup, where a ModelCheckpoint that ran in another Trainer's fit forgets that run
            # (its best included), and before the module's callbacks replace one: "best" is the best it
            # saved, as in Lightning.
            with contextlib.suppress(ValueError):  # nothing saved: refused below, with the reason
                ckpt_path = self.callbacks.checkpoint_path("best")
        self._attach_module_callbacks(model)
        prepare_data(self, datamodule, model)
        threads.warn_signals_do_not_reach_this_thread(stacklevel=2)
        if self.deterministic and source is None:  # (a DataModule's loaders are named once they are made)
            determinism.warn_thread_workers_share_generators(
                {"train_loader": train_loader, "val_loader": val_loader}
            )
        resume.warn_of_carried_counters(self, model, ckpt_path)
        threads.clear_streams_when_thread_ends()  # before MLX's random state is touched (threads.py)
        # The run is seeded, and the caller's global generators are put back when it ends however it ends:
        # code after fit (a random search's next draw, the next model's weights) goes on with its own
        # sequence, as if fit had drawn nothing from it (fits overlapping in threads: callers_random.py).
        callers_generators = CALLERS_GENERATORS.enter()
        outer_fit = None
        try:
            # (a daemon thread's fit as Python exits: threads.py; a sweep's fit gives the thread back after)
            outer_fit = threads.stop_fit_at_exit(self)
            seed_generators(self.seed)
            self._run.random_at_fit_end = None
            self.datamodule = datamodule
            self._state_tracker.begin("fit", "train")  # (before setup, as in Lightning)
            self._passed_train_loader = train_loader  # (with the module's val_dataloader() too)
            if source is not None and train_loader is None and not (ckpt_path or self._pending_ckpt):
                self._early_train_source = source
            self._val_loader_coming = val_loader is not None or (
                source is not None and defines_loader(source, "val")
            )
            # Any error from here on (a setup hook, a loader, a resume refused) gets on_exception and the
            # teardown hooks, as in Lightning, whose `fit` calls on_exception for every error it raises.
            with self._stage_fails_on_error(model, "fit"):
                seeded_with = self.seed
                self._attach(model, "fit")
                if source is None and self.seed != seeded_with:
                    # seed_everything in a setup hook or configure_model: it seeded the generators, and
                    # decides the data order too (Lightning's sampler draws from the generator it seeded).
                    # (Loaders a datamodule or the module gives are made after this, on the new seed.)
                    for loader in self._loaders_on_trainer_seed:
                        give_trainer_seed(loader, self.seed)
                resumed_progress = None  # (the checkpoint's counters, which the loaders are asked for at)
                self._early_restore = None  # (set below for this fit's resume alone)
                if ckpt_path or self._pending_ckpt:
                    # Lightning gives the datamodule its state back after `setup`, before it asks for the
                    # loaders: a loader built from that state (a curriculum's stage, a fold) is the resumed
                    # run's. Then the module's `on_load_checkpoint`, before `configure_optimizers` and the
                    # weights (Lightning's `restore_model`): a layer it rebuilds is the one trained and loaded
                    # into.
                    ckpt_path = resume.checkpoint_to_resume(self, ckpt_path or self._pending_ckpt)
                    self._pending_ckpt = None
                    if datamodule is not None:
                        hook_state.restore_datamodule_state(datamodule, ckpt_path, self.profiler)
                    if ckpt_path:
                        folder = ckpt.resolve_checkpoint(ckpt_path)
                        state = ckpt.read_state(folder)
                        resume.refuse_weights_only(folder, state)
                        resumed_progress = state["progress"]
                        as_read = _state_text(state)  # (what `_restore` reads again, to know it is this save)
                        with hook_logs.running_hook(self, "on_load_checkpoint"):
                            self._hook_added_weights = hook_state.load_module_state_before_weights(
                                model, state, folder / ckpt.MODEL_FILE
                            )
                        # The callbacks' next, before `configure_optimizers` too, as Lightning 2.6.6's
                        # `restore_callbacks`: one may set what it reads (a layer to freeze, a setting).
                        self._callbacks_load_hooks(model, folder, state)
                        self._early_restore = (as_read, state)
                self._reloads = None
                # (asked for once the datamodule and the module are set up, as in Lightning)
                if source is not None:
                    asked_at = val_asked_at = resumed_progress
                    every = self.reload_dataloaders_every_n_epochs
                    if every:
                        self._refuse_reloads_with_overfit_batches()
                        # Resumed, the loaders the straight run iterated in this epoch: those it asked for at
                        # the last reload epoch (loader_reloads.py).
                        epoch = (
                            self.progress.epoch
                            if resumed_progress is None
                            else int(resumed_progress["epoch"])
                        )
                        epochs = {"train": epoch, "val": epoch}
                        schedule = self._validation_schedule
                        if resumed_progress is not None:
                            epochs["train"] = first_epoch_of_loader(every, epoch)
                            asked_at = {**resumed_progress, "epoch": epochs["train"]}
                            if (
                                schedule.check_val_every_n_epoch is not None
                            ):  # (else its epochs are not known)
                                validated = int(resumed_progress["validated_epoch"])
                                epochs["val"] = first_epoch_of_val_loader(
                                    every, epoch, schedule.this_epoch, validated
                                )
                            else:
                                epochs["val"] = epochs["train"]
                        passed = {"train": train_loader, "val": val_loader}
                        self._reloads = LoaderReloads(every, source, passed, dict(epochs))
                        if asked_at is not None and epochs["val"] != epochs["train"]:
                            # (the validation loader the straight run validates with next, asked at its own
                            # epoch)
                            val_asked_at = {**asked_at, "epoch": epochs["val"]}
                    self._early_train_source = None
                    # (made once: estimated_stepping_batches may have asked for it in a setup hook)
                    if train_loader is None:
                        train_loader, self._early_train_loader = self._early_train_loader, None
                    # (a validation turned off, limit_val_batches=0, asks no val_dataloader(), as in Lightning)
                    asked = {"train": train_loader, "val": val_loader}
                    if val_loader is None and self._turned_off("val"):
                        del asked["val"]
                    elif val_loader is None and defines_loader(source, "val"):
                        # val_dataloader() is asked for after on_fit_start, as Lightning asks for it (at the
                        # sanity check, or before on_train_start): one may build on what that hook set.
                        del asked["val"]
                        self._val_loader_asked_later = (source, val_asked_at)
                    with self._counters_of(asked_at):
                        loaders = {"val": None, **loaders_from(source, asked)}
                    train_loader, val_loader = self._fit_loaders(
                        model,
                        source,
                        loaders["train"],
                        loaders["val"],
                        val_coming=self._val_loader_asked_later is not None,
                    )
                    if self.deterministic and self._val_loader_asked_later is None:  # (else with it, later)
                        determinism.warn_thread_workers_share_generators(
                            {"train_loader": train_loader, "val_loader": val_loader}
                        )
                self._fitted_module = weakref.ref(model)
                if self.accelerator == "cpu" and self.is_global_zero:
                    _blas.warn_if_training_on_bundled_blas()
                self._train_loader, self._val_loader = train_loader, val_loader  # before configure_optimizers
                self._passed_train_loader = None
                if self._val_loader_asked_later is None:  # (else coming still, until it is asked for)
                    self._val_loader_coming = None
                # Said before any epoch (under -W error, before the work): loaders iterated more than once.
                several_epochs = self.max_epochs != 1
                hint_workers_started_again(train_loader if several_epochs else None)
                hint_workers_started_again(
                    val_loader if several_epochs or self.num_sanity_val_steps else None
                )
                # Before the broadcast, which would untie them too.
                refuse_arrays_tied_across_modules(model)
                if self.is_global_zero:
                    warn_weights_in_tuples(model)
                if self.world_size > 1:
                    collectives.broadcast_parameters(model)
                    # Each rank's mx.random its own from here on (dropout, SpecAugment in the step), not in
                    # the setup above: a split or a projection drawn there must be the same on every rank.
                    seed_rank_apart(self.seed, self.global_rank)
            status = "failed"
            try:
                self._stepping_estimate = None  # (what configure_optimizers reads of it: the next line)
                self._setup_optimizer(model)
                # Before any step: MLX segfaults (or the OOM killer ends it) without a word where training
                # alone exceeds the memory limit; its weights, gradients and optimizer state are known now.
                refuse_training_beyond_memory(model, self.optimizer, self.precision)
                if self.precision != "bf16-mixed":  # (there the gradients and the update are float32)
                    refuse_float16_weights_with_vanishing_eps(model.trainable_parameters(), self.optimizer)
                elif self.is_global_zero:
                    warn_bfloat16_weights_under_bf16_mixed(model.trainable_parameters(), type(model).__name__)
                self._stopping.start_fit()
                self.progress.validation_pending = False
                ckpt_path = resume.checkpoint_to_resume(self, ckpt_path or self._pending_ckpt)
                self._pending_ckpt = None
                if not ckpt_path:  # (a fresh fit: what hooks logged in an earlier one is not this one's)
                    model._logged.clear()
                self._run.saved_log_options = {}
                self._run.trainable.start(names_to_train(model))
                self._train_step = self._new_step(model, self._step_config())
                self._stale_step_attributes = StaleStepAttributes()
                self._streak_in_flight = None
                self.evaluation.reset()
                self._forget_reported_metrics()  # (a resumed fit's come back from its checkpoint below)
                # (a fresh fit loads none: not an earlier stage's; set before the load, as in Lightning)
                self._ckpt_path = ckpt_path or None
                if ckpt_path:
                    self._restore(ckpt_path, full=True, hooks=False)  # (the hooks ran above)
                    if self.says_restored:  # (Lightning's line: the log records which run went on)
                        self._note(f"Restored all states from the checkpoint at {ckpt_path}")
                    resume.anchor_epoch_schedule(self.optimizer, self.progress, self.accumulate_grad_batches)
                self._warn_of_schedules_ending_early()  # (after the restore: the schedule's anchored epochs)
                if not ckpt_path:  # a resumed run goes on in its folders
                    self.callbacks.refuse_earlier_runs(self)
                    collectives.on_main_process(self._refuse_earlier_logger_runs)
                self._start_loggers(model)
                self._nonfinite.start_fit(self._train_step.state.arrays)
                self._run.start_clock()
                self.fitting = True
                # overfit_batches: the same first batches every epoch, so the loaders are read in order (with a
                # validation loader asked for after on_fit_start, from then: `_ask_val_loader_later`).
                in_order = (
                    overfit.in_order(
                        self.overfit_batches, {"training": train_loader, "validation": val_loader}
                    )
                    if self.overfit_batches and self._val_loader_asked_later is None
                    else contextlib.nullcontext()
                )
                with self._on_device(), self._stopping.handling_signals(), in_order:
                    self._call_hooks("on_fit_start")
                    # Not in a fit resumed mid-epoch (or with a validation due), as Lightning's ("it would
                    # mess up the loaded state"); one resumed at an epoch's end checks, as Lightning 2.6.6's.
                    mid_epoch = self.progress.batch_in_epoch > 0 or self.progress.validation_pending
                    checks = not (ckpt_path and mid_epoch)
                    if (
                        self._val_loader_asked_later is not None
                        and checks
                        and self.evaluation.sanity_checks()
                    ):
                        # Asked for in the sanity check, after on_sanity_check_start, as Lightning asks.
                        val_loader = self.evaluation.sanity_check(
                            model, None, ask=lambda: self._val_loader_of_fit(model, train_loader)
                        )
                    elif self._val_loader_asked_later is not None and self._first_epoch_skips_validation():
                        # Asked for at the first validation (after its batch's on_train_batch_end, before
                        # on_validation_start), as Lightning's fit loop asks only where the epoch it starts
                        # in validates: a loader built from what the first epochs set can be made there.
                        # (Every rank reaches that validation at the same batch: it asks there alike.)
                        self._val_loader_asked_later = (self._val_loader_asked_later[0], None)
                        val_loader = _VAL_LOADER_AT_FIRST_VALIDATION
                    else:
                        val_loader = self._val_loader_of_fit(model, train_loader, val_loader)
                        if val_loader is not None and checks:
                            self.evaluation.sanity_check(model, val_loader)
                    self._warn_of_eval_mode(model)
                    # Known before on_train_start, as Lightning's fit loop has it there: a callback that
                    # sizes a per-step schedule from it read 0.
                    n_batches = self._training_batches(train_loader)
                    self.num_training_batches = math.inf if n_batches is None else n_batches
                    # (and `val_check_batch`, which Lightning's on_train_start reads; _size_epochs checks)
                    self._val_sizing = (
                        n_batches,
                        self._reads_whole_stream(train_loader),
                        self._training_limit_set_by(train_loader),
                    )
                    # Nothing to train (a finished run fit again, limit_train_batches=0, a stop asked in
                    # on_fit_start or the sanity check): no on_train_start/end, as Lightning's `FitLoop.skip`.
                    skip = not self.interrupted and (self.limit_train_batches == 0 or self._done())
                    if not skip:
                        self._call_hooks("on_train_start")
                    self._fit_loop(model, train_loader, val_loader)
                    if self.world_size > 1:  # (the ranks end with one model: BatchNorm's running statistics)
                        collectives.broadcast_running_statistics(model)
                    if not self.interrupted:
                        if not skip:
                            self._call_hooks("on_train_end")
                        self._call_hooks("on_fit_end")
                        if self.interrupted:  # a Ctrl-C or KeyboardInterrupt in them: saved, as it says
                            self._stopping.save_on_interrupt()
                status = "interrupted" if self.interrupted else "success"
            except BaseException as err:
                # A second stop signal (or one raised as the first one's save ran) ends a fit that a first one
                # was stopping: a stop by hand, "interrupted" as Lightning 2.6.6 has it (and the loggers' runs
                # closed so: MLflow's KILLED), not a crash. (Before on_exception, as Lightning's status.)
                if isinstance(err, KeyboardInterrupt) and self._stopping.stop_was_requested():
                    status = "interrupted"
                self._state_tracker.status = status
                self._on_exception(model, err)
                # The epoch's iterator is a local of `_train_epoch`, whose frame the traceback keeps: its
                # workers would run as long as the error is kept. (Evaluation loops iterate in `for`
                # statements, whose iterators go as the error leaves their frame.)
                close_epoch_iterators(self._train_loader, self._val_loader)  # (those rebuilt last, too)
                if isinstance(err, SignalInterrupt) and self._stopping.stop_was_requested():
                    self._stopping.abort_before_save()  # a second Ctrl-C before the save: one line, 130
                raise
            finally:
                self.fitting = False
                self._val_loader_coming = None  # (a fit that failed before its loaders were made)
                self._val_loader_asked_later = None
                if self._overfit_val_order is not None:  # (the loaders' own order back)
                    order, self._overfit_val_order = self._overfit_val_order, None
                    order.__exit__(None, None, None)
                if status != "success":
                    self._state_tracker.status = status  # (before teardown, as Lightning's "interrupted")
                self._teardown(model, "fit", status, (self._train_loader, self._val_loader))
            self._state_tracker.status = "finished" if status == "success" else status  # (after teardown)
            self._stopping.raise_held()  # (a program's SIGTERM handler's sys.exit, after the save)
        finally:
            # A fit refused after the callbacks' setup claimed their folders, before its teardown could run
            # (two callbacks sharing a state_key, no train loader): the claim ends with the fit all the same.
            for checkpoint in self.checkpoint_callbacks:
                checkpoint._release_folder()
            self._passed_train_loader = None  # (a fit that failed before its loaders were made)
            self._early_train_source = self._early_train_loader = None
            self._val_loader_asked_later = None  # (one that failed before on_fit_start, too)
            self._state_tracker.end()
            self._run.random_at_fit_end = RandomState.capture()
            CALLERS_GENERATORS.leave(callers_generators)
            threads.fit_ended(outer_fit)

    @contextlib.contextmanager
    def _counters_of(self, progress: dict[str, Any] | None) -> Iterator[None]:
        """`current_epoch` and `global_step` as a resumed fit's checkpoint has them while its
        `train_dataloader()` / `val_dataloader()` run, as in Lightning, whose loops are restored before it
        asks for the loaders: a curriculum that reads `self.trainer.current_epoch` there (the clip length of
        the resumed epoch) builds the resumed epoch's loader, not epoch 0's. The run's full state comes back
        after `configure_optimizers` (`_restore`), which sees the counters as Lightning's does."""
        if progress is None:
            yield
            return
        was = self.progress.epoch, self.progress.global_step
        self.progress.epoch, self.progress.global_step = int(progress["epoch"]), int(progress["global_step"])
        try:
            yield
        finally:
            self.progress.epoch, self.progress.global_step = was

    def _first_epoch_skips_validation(self) -> bool:
        """Whether the epoch the fit starts in does not validate (check_val_every_n_epoch picks a later one)
        and none is pending: Lightning's fit loop then asks for val_dataloader() at the first validation
        (its `on_run_start` asks only where `_should_check_val_epoch()`). Not with reloaded loaders, whose
        own schedule asks for them."""
        schedule = self._validation_schedule
        return (
            self._reloads is None
            and schedule.check_val_every_n_epoch is not None
            and not schedule.this_epoch(self.progress.epoch)
            and not self.progress.validation_pending
        )

    def _val_loader_of_fit(self, model: TrainModule, train_loader: Any, val_loader: Any = None) -> Any:
        """The fit's validation loader (`val_loader`, or the one asked for after `on_fit_start`), with the
        fit's validation count set from it (Lightning's val loop `_max_batches`): in the sanity check too,
        whose own count is `num_sanity_val_batches`."""
        if self._val_loader_asked_later is not None:
            val_loader = self._ask_val_loader_later(model, train_loader)
        self.num_val_batches = (
            0 if val_loader is None else batch_count(self.evaluation.limit("val", val_loader))
        )
        return val_loader

    def _ask_val_loader_later(self, model: TrainModule, train_loader: Any) -> Any:
        """The validation loader of a datamodule (or module), asked for after `on_fit_start` and checked as
        `_fit_loaders` checks it; it joins what `fit` set up for its loaders before (a DataLoader without a
        seed takes the Trainer's, overfit_batches' order)."""
        source, counters = self._val_loader_asked_later
        self._val_loader_asked_later = None
        with self._counters_of(counters):
            val_loader = loaders_from(source, {"val": None})["val"]
        train_seeded = self._loaders_on_trainer_seed
        _, val_loader = self._fit_loaders(model, source, train_loader, val_loader, train_checked=True)
        self._loaders_on_trainer_seed = [*train_seeded, *self._loaders_on_trainer_seed]
        if self.deterministic:  # (from fit's caller's line: the frames of fit and this method between)
            determinism.warn_thread_workers_share_generators(
                {"train_loader": train_loader, "val_loader": val_loader}, stacklevel=user_stacklevel() + 1
            )
        several_epochs = self.max_epochs != 1
        hint_workers_started_again(val_loader if several_epochs or self.num_sanity_val_steps else None)
        if self.overfit_batches:
            loaders = {"training": train_loader, "validation": val_loader}
            self._overfit_val_order = overfit.in_order(self.overfit_batches, loaders)
            self._overfit_val_order.__enter__()
        self._val_loader, self._val_loader_coming = val_loader, None
        return val_loader

    def _fit_loaders(
        self,
        model: TrainModule,
        source: Any,
        train_loader: Any,
        val_loader: Any,
        val_coming: bool = False,
        train_checked: bool = False,
    ) -> tuple[Any, Any]:
        """`fit`'s loaders, checked (a schedule they cannot keep is refused before anything runs). With
        `val_coming` the validation loader is asked for later (checked then, with `train_checked`: the
        training loader's checks done)."""
        if train_loader is None:
            raise TypeError(missing_loader("fit", "train_loader", source, "train"))
        if (
            val_loader is None
            and not val_coming
            and hooks.overrides(model, "validation_step")
            and getattr(model, "validation_step", True) is not None
            and not self._turned_off("val")
            and self.is_global_zero
        ):
            # Lightning's configuration check: a validation_step written for this fit and a val loader left
            # out would otherwise train without a word, and no val_* metric would ever come. Not where
            # limit_val_batches=0 turned validation off (Lightning warns there too): the user chose it, and
            # lr_find's sweep, a fit of its own without validation, would warn of a loader that was given.
            warnings.warn(
                "Trainer.fit: you defined a `validation_step` but have no `val_dataloader` (val_loader=, "
                "val_dataloaders= or a datamodule's val_dataloader()). Skipping val loop.",
                PossibleUserWarning,
                stacklevel=user_stacklevel(),
            )
        if val_loader is not None and getattr(model, "validation_step", True) is None:
            # (`model.validation_step = None`: Lightning's way to take validation away, with this warning)
            warnings.warn(
                "Trainer.fit: you passed in a `val_dataloader` but have no `validation_step` (it is None). "
                "Skipping val loop.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
            val_loader = None
        if self._turned_off("val"):
            val_loader = None  # no sanity check, no validation hooks
        # The loaders that take the Trainer's seed (none of their own): a resumed run's, where it differs.
        self._loaders_on_trainer_seed = [
            loader
            for loader, name, evaluation in (
                (None if train_checked else train_loader, "train_loader", False),
                (val_loader, "val_loader", True),
            )
            if prepare_loader(loader, name, self.seed, evaluation=evaluation)
        ]
        if val_loader is not None and several_loaders(val_loader) is not None:
            hooks.refuse_missing_dataloader_idx(self.callbacks, model, "fit")
        elif val_loader is not None:  # (a fit that never validates never calls validation_step)
            hooks.refuse_required_dataloader_idx(self.callbacks, model, "fit")
        if val_loader is not None and (n_batches := self._training_batches(train_loader)) != 0:
            # A schedule it cannot keep is refused before anything runs.
            self._validation_schedule.interval(n_batches, self._training_limit_set_by(train_loader))
        if val_loader is train_loader and hasattr(train_loader, "state_dict"):
            # Its position is part of each checkpoint: after a validation it would be the validation
            # pass's, and a resumed epoch would continue from another epoch's order.
            raise ValueError(
                "Trainer.fit: train_loader and val_loader are the same DataLoader object. Its position "
                "in the epoch goes into checkpoints, so validation must iterate its own: pass a second "
                "DataLoader over the same dataset (e.g. DataLoader(dataset, batch_size=..., shuffle=False))"
            )
        return train_loader, val_loader

    def _warn_of_eval_mode(self, module: TrainModule) -> None:
        """`fit` trains each submodule in the mode it is in (as Lightning 2 does: a BatchNorm frozen with
        `.eval()` before `fit` or in `on_fit_start` stays frozen); like Lightning it says so once, before
        `on_train_start`, where some are in eval mode (a model loaded for inference often is)."""
        in_eval = [name or type(module).__name__ for name, m in module.named_modules() if not m.training]
        if not in_eval or not self.is_global_zero:
            return
        # Those the module's own `train()` keeps in eval are its design (CLAPTrainModule's BatchNorm under
        # batchnorm_eval), not a slip: "call model.train()" would change nothing for them.
        in_eval = [name for name in in_eval if name not in _kept_in_eval_by_train(module)]
        if not in_eval:
            return
        frozen, training = _eval_networks(module, set(in_eval))
        warnings.warn(
            f"Trainer.fit: found {len(in_eval)} module(s) in eval mode at the start of training "
            f"({listed(sorted(in_eval))}); "
            "they train in that mode (BatchNorm keeps its running statistics, Dropout is off), as in "
            "Lightning. If that is not intended, call model.train() before fit"
            + (
                f". {listed(frozen)}: every weight frozen, as a fixed teacher's or backbone's: eval mode "
                "keeps its Dropout off and its BatchNorm statistics fixed (model.train() would change them)"
                if frozen
                else ""
            )
            + (
                f". {listed(training)}: in eval mode with weights that train: a teacher read only under "
                "mx.stop_gradient changes all the same (an optimizer's weight decay moves weights no "
                "gradient reaches, where torch skips them): freeze() it"
                if training
                else ""
            ),
            PossibleUserWarning,  # (as Lightning's: a test suite ignoring those ignores this one too)
            stacklevel=3,
        )

    def _warn_of_a_longer_epoch(self, loader: Any, n_batches: int | None) -> None:
        """Once a fit: the loader has more batches this epoch (its dataset's `set_epoch` or an epoch-start hook
        changed its length) than the fit's epochs, whose length is read when it starts (and where
        `reload_dataloaders_every_n_epochs` rebuilds it), as Lightning's: the batches past it are left out."""
        now = self._training_batches(loader)
        if n_batches is None or now is None or now <= n_batches or self._warned_of_a_longer_epoch:
            return
        self._warned_of_a_longer_epoch = True
        warnings.warn(
            f"Trainer.fit: the training loader has {now} batches in epoch {self.progress.epoch}, but this "
            f"fit's epochs are {n_batches} batches long (the loader's length when fit started), so the rest of "
            "this epoch is left out (as in Lightning): keep the dataset's length the same every epoch, or "
            "return a loader of the new length from train_dataloader() with Trainer("
            "reload_dataloaders_every_n_epochs=N), which asks for it again every N epochs",
            stacklevel=user_stacklevel(),
        )

    def _warn_of_freezing_inside_the_epoch(self, module: TrainModule) -> None:
        """Once a fit: `freeze()`/`unfreeze()` in a batch or validation hook changed what trains inside the
        epoch, which takes effect at the next epoch start only (`_follow_freezing`): the rest of this epoch
        trained the parameters it started with. Lightning's `requires_grad_(False)` acts at the next step."""
        # What trained at the epoch's last step where that is known: a change after it (in its
        # on_train_batch_end, the validation after it) waits for no batch: the next step is the next epoch's.
        at_last_step, self._trainable_at_last_step = self._trainable_at_last_step, None
        now = at_last_step if at_last_step is not None else trainable_names(module)
        # A step that trained other than a hook asked, earlier in the epoch (the set may be back by its end)
        asked = self._train_step.trained_other_than_asked() if self._train_step is not None else None
        now = asked if asked is not None else now
        was = self._run.trainable.now
        if now == was or self._warned_of_freezing_inside_an_epoch:
            return
        self._warned_of_freezing_inside_an_epoch = True
        changed = sorted(was - now)[:3] or sorted(now - was)[:3]
        what = "frozen" if was - now else "unfrozen"
        warnings.warn(
            f"Trainer.fit: parameters were {what} inside epoch {self.progress.epoch} "
            f"(e.g. {', '.join(changed)}: freeze()/unfreeze() in a batch or validation hook), which takes "
            "effect at the next epoch start, where the compiled step is rebuilt: the epoch's batches after "
            "it trained what the epoch started with. Change what trains in on_train_epoch_start (as "
            "BaseFinetuning does)",
            stacklevel=user_stacklevel(),
        )

    def _fit_loop(self, module: TrainModule, train_loader: Any, val_loader: Any) -> None:
        if self.interrupted:
            # Ctrl-C before the first step (in the sanity validation or a start hook): a checkpoint of the
            # state it started from, so that the run can be resumed (and `last` exists) all the same.
            self._stopping.save_on_interrupt()
            return
        if self._done():
            at = f"epoch {self.current_epoch} / step {self.global_step}"
            limit = self._at_its_limits()
            why = (
                f"already at {at} (max_epochs={self.max_epochs}, max_steps={self.max_steps}); raise them to "
                "train further"
                if limit
                else f"a stop was asked before the first step, at {at} (max_time reached, or trainer."
                "should_stop set by a callback: an EarlyStopping whose patience had run out in the checkpoint "
                "resumed, a Timer past its duration)"
            )
            if collectives.is_main_process():  # every rank is as far: one warning for the job, from rank 0
                # (a PossibleUserWarning: a done run fit again is often meant, as README's first example
                # does; Lightning says it as an info line, and a strict suite ignores it by its category)
                warnings.warn(f"Trainer.fit: nothing to train, {why}", PossibleUserWarning, stacklevel=3)
            return
        self._warned_of_a_longer_epoch = self._warned_of_freezing_inside_an_epoch = False
        self._warned_of_estimate = False
        self._checked_ranks_orders = False
        self._warned_of_a_none_batch = False
        sizes = self._size_epochs(train_loader, val_loader)
        if sizes is None:
            return
        epoch_batches, val_every = sizes
        self._validation_schedule.start_fit()
        self._in_epoch = False  # (a fit an error ended inside an epoch left it set)
        self.evaluation.batches_done.pop(
            "fit", None
        )  # (Lightning's validation loop starts over after the check)
        while not self._done():
            if self._reloads is not None and self._reloads.due("train", self.progress.epoch):
                # As Lightning's fit loop: before on_train_epoch_start, which sees the new loader.
                train_loader = self._reload_train_loader()
                sizes = self._size_epochs(train_loader, val_loader)
                if sizes is None:
                    break
                epoch_batches, val_every = sizes
                self._follow_rebuilt_epochs(module)
            with self.profiler.profile("run_training_epoch"):
                cut_by_hook = self._train_epoch(module, train_loader, val_loader, epoch_batches, val_every)
                if self.interrupted:
                    # Noticed in the epoch: after a step or in a validation, but also after its last step (in
                    # the stream's final `next`, closing a window, while its workers shut down). Its end has
                    # not run, so the epoch stays open and the resumed fit ends it (validation, epoch means).
                    self.progress.epoch_complete = False
                    break
                # An epoch the module's on_train_batch_start ended (-1) does not validate at its end:
                # Lightning validates after a trained batch (its epoch loop's on_advance_end, which the -1
                # skips).
                self._end_epoch(module, None if cut_by_hook else val_loader, val_every)
            if val_loader is _VAL_LOADER_AT_FIRST_VALIDATION and self._val_loader_asked_later is None:
                val_loader = self._val_loader  # (asked for at the first validation: None, none from here)
        if self.interrupted:
            # Saved wherever the Ctrl-C was noticed. In the epoch-end callbacks or checkpointing the epoch
            # is complete and validated, so the checkpoint resumes at the next one; in the epoch-end
            # validation that stops it and leaves the epoch open: the resumed fit validates and ends it.
            self._stopping.save_on_interrupt()

    def _size_epochs(self, train_loader: Any, val_loader: Any) -> tuple[int | None, int | None] | None:
        """The batches an epoch of `train_loader` takes (None: until a stream ends) and the validation
        interval, checked as `fit` starts and where the loader is rebuilt (reload_dataloaders_every_n_epochs);
        None where it yields no batches (warned)."""
        # (a limit_val_batches fraction under one batch: refused now; a loader asked for later, then)
        if val_loader is not None and val_loader is not _VAL_LOADER_AT_FIRST_VALIDATION:
            self.evaluation.limit("val", val_loader)
        n_batches = self._training_batches(train_loader)
        refuse_unequal_epochs(n_batches)
        self.num_training_batches = n_batches if n_batches is not None else math.inf
        if n_batches == 0:
            why = why_no_batches(train_loader) or " (limit or empty loader)"
            warnings.warn(
                f"Trainer.fit: the training loader yields no batches{why}", stacklevel=user_stacklevel()
            )
            return None
        # log_every_n_steps counts optimizer steps (an epoch's last window steps at its end); Lightning's
        # warning compares batches, and so stays silent where accumulation leaves an epoch too few steps.
        steps = None if n_batches is None else math.ceil(n_batches / self.accumulate_grad_batches)
        if (
            steps is not None
            and steps < self.log_every_n_steps
            and self.loggers
            and not self.fast_dev_run  # (Lightning's check leaves it out: its logger writes nothing)
            and self.is_global_zero
        ):
            # As Lightning warns: values logged per step (a LearningRateMonitor's, a hook's on_step) never
            # reach the loggers; the epoch's means still do, at its end.
            as_steps = (
                f" ({steps} optimizer steps with accumulate_grad_batches={self.accumulate_grad_batches})"
                if steps != n_batches
                else ""
            )
            warnings.warn(  # (SHORT_EPOCH_WARNING matches it)
                f"Trainer.fit: an epoch has {n_batches} training batches{as_steps}, fewer than the logging "
                f"interval Trainer(log_every_n_steps={self.log_every_n_steps}): values logged per step (a "
                "LearningRateMonitor's with logging_interval='step', self.log(..., on_step=True) in a hook) "
                "reach the loggers only every that many steps; set a lower log_every_n_steps to see them",
                PossibleUserWarning,
                stacklevel=user_stacklevel(),  # (the user's fit call, or their create_trainer(...).train)
            )
        # A stream's len(loader) is an estimate (each worker's stream ends in its own short batch): its epochs
        # run until it ends, and validate there (and at a fraction of the estimate inside them).
        whole_stream = self._reads_whole_stream(train_loader)
        self._val_sizing = (n_batches, whole_stream, self._training_limit_set_by(train_loader))
        val_every = self._val_every_for(self._val_sizing) if val_loader is not None else None
        self._val_sized_for = (type(self.val_check_interval), self.val_check_interval)
        return (None if whole_stream else n_batches), val_every

    def _val_every_for(self, sizing: tuple) -> int | None:
        n_batches, whole_stream, set_by = sizing
        return self._validation_schedule.interval(
            None if whole_stream and self.val_check_interval == 1.0 else n_batches, set_by
        )

    def _current_val_every(self, val_every: int | None) -> int | None:
        """`val_every`, recomputed where a hook set `val_check_interval` (or Lightning's `val_check_batch`)
        since the epochs were sized: Lightning's loop reads it at every batch, so a callback's adaptive
        validation takes effect at once. (The type counts: an int 1 is every batch, 1.0 the epoch end.)"""
        if (type(self.val_check_interval), self.val_check_interval) == self._val_sized_for:
            return val_every
        return self._val_every_for(self._val_sizing)

    def _refuse_reloads_with_overfit_batches(self) -> None:
        if self.overfit_batches:
            # (its unshuffled first batches are set up on the loaders fit starts with)
            raise ValueError(
                f"Trainer(reload_dataloaders_every_n_epochs={self.reload_dataloaders_every_n_epochs}, "
                f"overfit_batches={self.overfit_batches}): overfit_batches trains on the same first batches "
                "every epoch, so there is nothing to rebuild: set reload_dataloaders_every_n_epochs=0"
            )

    def _reload_train_loader(self) -> Any:
        """The training loader asked for again at this epoch's start (reload_dataloaders_every_n_epochs),
        checked and seeded as `fit`'s first; the one it replaces stops its workers."""
        assert self._reloads is not None
        old = self._train_loader
        new = self._reloads.ask("train", self.progress.epoch)
        if new is None:
            raise TypeError(missing_loader("fit", "train_loader", self._reloads.source, "train"))
        if new is not old:
            self._replace_loader(old, new, "train_loader", evaluation=False)
            if new is self._val_loader and hasattr(new, "state_dict"):
                raise ValueError(  # (as fit refuses it at its start: the position goes into checkpoints)
                    "Trainer.fit: the rebuilt train_loader is the validation's DataLoader object: return a "
                    "second DataLoader over the same dataset from train_dataloader()"
                )
        self._train_loader = new
        return new

    def _replace_loader(self, old: Any, new: Any, name: str, evaluation: bool) -> None:
        self._loaders_on_trainer_seed = [x for x in self._loaders_on_trainer_seed if x is not old]
        if prepare_loader(new, name, self.seed, evaluation=evaluation):
            self._loaders_on_trainer_seed.append(new)
        close_epoch_iterators(old)
        stop_stage_workers(old)

    def _follow_rebuilt_epochs(self, module: TrainModule) -> None:
        """What the fit derived from the epochs' length when it started, for the rebuilt loader's epochs: a
        per-epoch lr_scheduler's epoch boundaries, and a warning where the fit now takes more optimizer
        steps than the `estimated_stepping_batches` that configure_optimizers read (Lightning sizes it from
        the first loader alone, and torch's OneCycleLR raises past its total)."""
        n_batches = self.num_training_batches
        if n_batches == math.inf:
            return
        if resume.resize_epoch_schedule(self.optimizer, self.progress, int(n_batches)):
            self._rebuild_step(module)
        estimate = self._stepping_estimate
        if estimate is None or estimate == math.inf or self._warned_of_estimate or self.max_epochs is None:
            return
        per_epoch = math.ceil(n_batches / self.accumulate_grad_batches)
        steps = self.global_step + per_epoch * (self.max_epochs - self.progress.epoch)
        if self.max_steps is not None:
            steps = min(steps, self.max_steps)
        if steps <= estimate:
            return
        self._warned_of_estimate = True
        if self.is_global_zero:
            warnings.warn(
                f"Trainer.fit: the training loader rebuilt for epoch {self.progress.epoch} "
                f"(reload_dataloaders_every_n_epochs={self.reload_dataloaders_every_n_epochs}) has "
                f"{int(n_batches)} batches, so this fit takes about {steps} optimizer steps, more than the "
                f"estimated_stepping_batches={estimate} read in configure_optimizers (from the first loader, "
                "as Lightning computes it): a schedule sized by it (OneCycleScheduler's or "
                "WarmupCosineScheduler's total_steps) ends before the fit does and holds its final rate "
                "from there; " + held_rate_advice("Size the schedule for the longest epochs"),
                stacklevel=user_stacklevel(),
            )

    def _validate_in_fit(self, module: TrainModule) -> dict[str, float] | None:
        """A validation inside `fit`, on the validation loader asked for again first where it is due
        (reload_dataloaders_every_n_epochs: Lightning's val loop asks at the first validation of such an
        epoch); the first one asks for it where the fit's first epoch did not validate."""
        if self._val_loader_asked_later is not None:
            self._val_loader_of_fit(module, self._train_loader)
        if self._val_loader is None:  # (val_dataloader() gave None there: no validation, as documented)
            return {}
        if self._reloads is not None and self._reloads.due("val", self.progress.epoch):
            old, new = self._val_loader, self._reloads.ask("val", self.progress.epoch)
            if new is None:
                raise TypeError(
                    f"Trainer.fit: {type(self._reloads.source).__name__}.val_dataloader() returned None in "
                    f"epoch {self.progress.epoch} (reload_dataloaders_every_n_epochs="
                    f"{self.reload_dataloaders_every_n_epochs}), where it gave a loader when fit started: "
                    "return a loader every time it is asked (Trainer(limit_val_batches=0) turns validation "
                    "off)"
                )
            if new is not old:
                self._replace_loader(old, new, "val_loader", evaluation=True)
                self._val_loader = new
                self.num_val_batches = batch_count(self.evaluation.limit("val", new))
        return self.evaluation.validate_in_fit(module, self._val_loader)

    def _at_its_limits(self) -> bool:
        """Whether the fit is at max_steps or max_epochs already (a second fit of a done run): it has nothing
        to train (`_fit_loop` warns so), and ModelSummary prints no table for it."""
        return (self.max_steps is not None and self.global_step >= self.max_steps) or (
            self.max_epochs is not None and self.current_epoch >= self.max_epochs
        )

    def _done(self) -> bool:
        if self.interrupted:
            return True
        if self.max_steps is not None and self.global_step >= self.max_steps:
            return True
        if self.max_epochs is not None and self.current_epoch >= self.max_epochs:
            return True
        if self.max_time is not None and self._time_is_up():
            if not self._stopping.time_out:  # (once: the loop asks again as the epoch ends)
                # Lightning's Timer's words: a log otherwise ends mid-epoch without saying why.
                elapsed = datetime.timedelta(seconds=int(self.elapsed()))
                self._note(f"Time limit reached. Elapsed time is {elapsed}. Signaling Trainer to stop.")
            self._stopping.time_ran_out()
            return True
        return self._stop_request_ends_fit()

    def _stop_request_ends_fit(self) -> bool:
        """A stop request (EarlyStopping, a callback) waits for min_epochs and min_steps, as in Lightning (met
        inside an epoch, the stop comes after that step). Under data parallel it counts once the ranks
        agreed on it (`_agree_across_ranks`): one rank stopping alone would leave the others waiting in
        their next all-reduce."""
        if not self._stopping.asked():
            return False
        if self.current_epoch >= (self.min_epochs or 0) and self.global_step >= (self.min_steps or 0):
            return True
        if not self._stopping.said_minimum_not_met:  # (Lightning's words, once: else a verbose
            self._stopping.said_minimum_not_met = True  # EarlyStopping's stop line is all the user sees)
            self._note(
                f"Trainer was signaled to stop but the required `min_epochs={self.min_epochs}` or "
                f"`min_steps={self.min_steps}` has not been met. Training will continue..."
            )
        return False

    def _time_is_up(self) -> bool:
        """`max_time` reached. Under data parallel the ranks decide together, at logging steps (a rank
        stopping alone would leave the others waiting in their next all-reduce)."""
        late = self.elapsed() >= self.max_time
        if self.world_size == 1:
            return late
        if not self._ranks_meet():
            return False
        return bool(collectives.all_reduce_sum(mx.array(float(late))).item())

    def _train_epoch(self, module, loader, val_loader, n_batches, val_every) -> bool:
        """The epoch's batches and the validations inside it. True where the module's on_train_batch_start
        ended it (-1)."""
        progress = self.progress
        resuming = progress.start_epoch()
        # (the previous epoch's last batch is not this epoch's; Lightning's is still True in
        # on_train_epoch_start: README says so)
        self._is_last_batch = False
        self._trainable_at_last_step = None
        self._run.loader_state_read_ahead = None
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(progress.epoch)
        # Every batch of the epoch trained before the checkpoint, but its end (validation, epoch means) not
        # run: it closes now without another batch, even where this run has more batches an epoch (fewer
        # processes than the checkpoint's).
        batches_done = False
        if self._run.pending_loader_state is not None and hasattr(loader, "load_state_dict"):
            with ckpt.named_source(
                self._run.pending_loader_source
            ):  # a hand-edited data_loader names its file
                loader.load_state_dict(self._run.pending_loader_state)
            batches_done = position_ends_epoch(self._run.pending_loader_state)
        if resuming and not batches_done:  # (a loader at its epoch's end closes it: fewer batches there now)
            ckpt.check_batch_in_epoch(
                progress.batch_in_epoch,
                None if self._reads_whole_stream(loader) else loader_len(loader),
                self._run.pending_loader_source,
            )
        self._run.pending_loader_state = None
        if not resuming:
            self.running.reset_epoch()
        # (before the hooks: a LearningRateMonitor there logs the rate of the re-anchored schedule)
        if resume.anchor_schedule_at_epoch_start(self.optimizer, progress):
            self._rebuild_step(module)  # (the traced update read the schedule as it was)
        self._in_epoch = True
        self._call_hooks("on_train_epoch_start", module_args=(progress.epoch,))
        self._follow_freezing(module)
        self._train_step.follow_replaced_submodules()
        if self.compile and self.is_global_zero:  # (a hook's new value for what the traced step read: warned)
            self._stale_step_attributes.check(module, self._train_step)
        iterator = iter(loader) if not batches_done else iter(())
        if isinstance(
            loader, CombinedLoader
        ):  # (it gives (batch, batch_idx, dataloader_idx), as Lightning's)
            iterator = (batch for batch, _, _ in iterator)
        # (after iter: a DataLoader calls its dataset's set_epoch there)
        self._warn_of_a_longer_epoch(loader, n_batches)
        if not self._checked_ranks_orders:  # (every rank: the check is a collective)
            self._checked_ranks_orders = True
            warn_of_unsharded_user_order(loader)
        if resuming and not hasattr(loader, "load_state_dict"):
            # A plain iterable cannot seek: replay and discard the batches already trained on.
            for _ in range(progress.batch_in_epoch):
                next(iterator, None)
        if progress.validation_pending and val_loader is not None:
            self._step_logging.hold_epoch_means_so_far()
            self._validate_in_fit(module)
            if self.interrupted:
                return False  # still pending: saved by the fit loop, rerun on resume
            self._validation_schedule.record_validation(progress)
        progress.validation_pending = False
        exhausted = skipped = False
        # A stop asked for in `on_train_epoch_start` (or by the pending validation above) ends the fit
        # before this epoch's first batch: Lightning's epoch loop checks `done` before each batch, too.
        stop_asked = self._stop_request_ends_fit()
        own_streams = ranks_read_own_streams(loader)
        # A loader without a length is read one batch ahead, as Lightning's prefetching fetcher does, so that
        # its last batch is known as such (is_last_batch, the step closing an accumulation window). One with
        # a position of its own has that position taken before each read ahead: a checkpoint saved at this
        # step resumes at the next batch, not one past it (Lightning saves the position read ahead).
        read_ahead = n_batches is None and not own_streams
        positioned = read_ahead and hasattr(loader, "state_dict")
        ahead: list[Any] = []  # (the batch read ahead; empty at the loader's end)
        ends_epoch = False
        # (the position before the batch trained next, a copy: the loader's own dict may change as it reads)
        held = copy.deepcopy(loader.state_dict()) if positioned else None
        while not (stop_asked or batches_done) and (n_batches is None or progress.batch_in_epoch < n_batches):
            try:
                if read_ahead and (ahead or ends_epoch):
                    if ends_epoch:
                        raise StopIteration
                    batch = ahead.pop()
                else:
                    batch = next_batch(iterator, self.profiler, "train")
                if read_ahead:
                    at_batch = copy.deepcopy(loader.state_dict()) if positioned else None
                    try:
                        ahead.append(next_batch(iterator, self.profiler, "train"))
                    except StopIteration:
                        ends_epoch = True
                        at_batch = None  # (nothing read past this batch: the loader's own position says so)
                    except BaseException:
                        # This batch is not trained (a Ctrl-C killed the worker reading the next one): a
                        # checkpoint resumes at it, with the counters before it.
                        self._run.loader_state_read_ahead = held
                        raise
                    if positioned:
                        self._run.loader_state_read_ahead = held = at_batch
            except StopIteration:
                exhausted = True
            except DataLoaderError as err:
                if self.interrupted and err.killed_by_stop_signal:
                    return False  # the same Ctrl-C (SIGTERM) reached a starting worker: the stop, no failure
                raise
            # (every rank asks, the one whose stream ended too, before any rank enters the step's all-reduce)
            if own_streams and not every_rank_has_a_batch(
                not exhausted, progress.epoch, progress.batch_in_epoch
            ):
                exhausted = True
            if exhausted:
                break
            with self.profiler.profile("run_training_batch"):
                ended = self._train_batch(module, batch, n_batches, val_loader, val_every, ends_epoch)
            if ended is _SKIP_REST_OF_EPOCH:
                skipped = True
                break
            if self.interrupted:
                return False  # saved by the fit loop, right after the step it stopped at
            if self._done():
                break
        self._step_logging.settled_outputs = {}  # the epoch's end shows its last step's numbers
        if (exhausted or skipped or batches_done) and progress.micro_batches:
            self._close_window()  # the epoch ended inside an accumulation window
        if exhausted and progress.batch_in_epoch == 0:
            self._no_batches_this_epoch(progress.epoch)
        # An epoch stopped early by max_steps or EarlyStopping-in-a-batch stays open, so a checkpoint
        # taken now resumes in the middle of it.
        progress.epoch_complete = (
            exhausted
            or skipped
            or batches_done
            or (n_batches is not None and progress.batch_in_epoch >= n_batches)
        )
        return skipped

    def _train_batch(self, module, batch, n_batches, val_loader, val_every, ends_epoch) -> object | None:
        """One batch: hooks, step, logging, a validation that is due. Returns `_SKIP_REST_OF_EPOCH` where
        the module's `on_train_batch_start` returned -1 (Lightning's way to end the epoch there)."""
        progress = self.progress
        if batch is None:
            self._none_batch(module, n_batches, val_loader, val_every, ends_epoch)
            return None
        batch = hooks.transfer_batch(batch, module, self.datamodule, profiler=self.profiler)
        # (a CombinedLoader's "max_size" gives None for a loader that has ended, as Lightning's)
        check_batch(batch, none_ok=isinstance(self._train_loader, CombinedLoader))
        batch_idx = progress.batch_in_epoch
        self._is_last_batch = ends_epoch or (n_batches is not None and batch_idx + 1 == n_batches)
        response = self._call_hooks("on_train_batch_start", batch, batch_idx)
        skip = type(response) is int and response == -1
        if self.world_size > 1 and hooks.overrides(module, "on_train_batch_start"):
            # The ranks end the epoch together: one that trained on would wait forever for the others'
            # gradients. (One all-reduce a batch, only for a module that defines the hook.)
            skip = collectives.all_reduce_sum(mx.array(float(skip))).item() > 0
        if skip:
            # This batch ends the epoch: the epoch-end hooks see is_last_batch True, as Lightning's do.
            self._is_last_batch = True
            return _SKIP_REST_OF_EPOCH  # (this batch untrained, as in Lightning)
        if self._is_last_batch:  # (once an epoch: for `_warn_of_freezing_inside_the_epoch`)
            self._trainable_at_last_step = trainable_names(module)
        step = self._train_step
        # Counted once the step ran: an exception inside it (the module's loss) leaves the counters at the
        # last completed step, so a checkpoint saved then (OnExceptionCheckpoint) resumes at this batch.
        micro_batches = progress.micro_batches + 1
        last_of_epoch = self._is_last_batch
        stepped = micro_batches == self.accumulate_grad_batches or last_of_epoch
        index = mx.array(batch_idx, mx.int32)
        where = f"{type(module).__name__}.{module.training_step_name} in training"
        with self.profiler.profile("[Trainer].training_step"), naming_the_batch(where, batch_idx, batch):
            if stepped:  # (the graph built: MLX evaluates lazily)
                n_micro = mx.array(micro_batches, mx.float32)
                # (a manual step counts its optimizer steps in global_step as it takes them, as Lightning's:
                # those taken before an error too; the batch itself reruns on resume)
                loss, metrics, logged, metric_weights = step.update(batch, index, n_micro)
            else:
                loss, metrics, logged, metric_weights = step.accumulate(batch, index)
        progress.micro_batches = 0 if stepped else micro_batches
        manual_steps = step.steps_taken if self._manual else None  # (its optimizer steps, counted already)
        # (a manual training_step may return nothing, as Lightning's: it logs what it reports)
        returned = {"loss": loss, **metrics} if loss is not None else dict(metrics)
        # A weight the device computes (ChordTask's real frames) stays an array: reading it here would wait
        # for the step before, and the step would be queued only then.
        step_logging = self._step_logging
        step_logging.last_weight = module.batch_size(batch)
        metric_weights, logged_weights = split_logged_weights(metric_weights)
        own_weights = {prefixed("train_", k): w for k, w in metric_weights.items()}
        own_weights = {k: w for k, w in own_weights.items() if k not in logged}  # (logged replaces it)
        own_weights.update(logged_weights)  # (`self.log(..., batch_size=<an array>)`)
        self.running.add(
            {**{prefixed("train_", k): v for k, v in returned.items()}, **logged},
            step_logging.last_weight,
            own_weights,
        )
        # (The weights with the step: evaluated, they no longer hold the batch they were computed from.)
        weights = (metric_weights, logged_weights, step_logging.last_weight)
        targets = (step.eval_targets, loss, metrics, logged, *weights)
        streak = step.state.arrays["nonfinite_streak"]  # this step's non-finite streak
        settled_streak = None  # an evaluated one: this step's, or the step before's
        # An error MLX raises running the step (float class labels in a loss) names the step and the batch.
        where = f"{type(module).__name__}.{module.training_step_name} in training"
        if self.debug_lazy_eval:
            with explaining_step_errors(where, f"batch {batch_idx}", batch_idx, batch):
                with self.profiler.profile("[Trainer].training_wait"):  # (the step runs in full here)
                    eval_compiling_again(mx.eval, targets)
            # (Only a step that updates sets the streak: one that accumulates holds the last update's, which a
            # resumed checkpoint may have saved above 0. Without the guard the update went through: the
            # parameter it made non-finite is named instead of a skip that did not happen.)
            judged = streak if stepped and self.nonfinite_guard else None
            debug_check(loss, self.module.parameters(), self.current_epoch, batch_idx, judged)
            settled_streak = streak
        else:
            # The device runs this step while Python fetches, checks and hooks the next batch (a GPU
            # would otherwise idle through that host time). Waiting for the step before keeps at most
            # two in flight, so batches cannot pile up in memory. Values read later (.item() at the
            # logging interval, a callback, a checkpoint) wait for what they need. The fit's first step is
            # waited for at once, as validation's first batch is: an error MLX raises in the graph (float
            # class labels) shows there and names that one batch; MLX may otherwise raise it only at the
            # next batch's dispatch (CI saw "batch 0 or 1" for the very first step's error).
            first_step = self._streak_in_flight is None  # (reset by each fit: a Trainer's second fit too)
            batches = f"batch {batch_idx}" if first_step else f"batch {batch_idx - 1} or {batch_idx}"
            with explaining_step_errors(where, batches, batch_idx, batch):
                with self.profiler.profile("[Trainer].training_dispatch"):
                    eval_compiling_again(mx.async_eval, targets)  # (a Ctrl-C may have ended MLX's compiler)
                if first_step:
                    with self.profiler.profile("[Trainer].training_wait"):
                        mx.eval(targets)
                else:
                    # The step before: done, or nearly. Its streak comes with it, so reading it below
                    # waits for nothing more: the non-finite stop needs no host sync of its own.
                    settled_streak = self._streak_in_flight
                    with self.profiler.profile("[Trainer].training_wait"):
                        mx.eval(step_logging.last_outputs, settled_streak)
                    step_logging.settled_outputs = step_logging.last_outputs
        self._streak_in_flight = streak
        streak_limit_reached = self._nonfinite.limit_reached(settled_streak)
        progress.batch_in_epoch += 1
        progress.total_batches += 1
        if manual_steps is not None:
            stepped = manual_steps > 0
        elif stepped:
            progress.global_step += 1
        step_logging.record_step(returned, logged, metric_weights, logged_weights)
        outputs = {**{k: LazyScalar(v) for k, v in {**returned, **logged}.items()}, "stepped": stepped}
        if manual_steps is not None:  # (the rest of what a manual step returned: Lightning's outputs hold it)
            outputs = {**step.extras, **outputs}
        val_due = self._validation_due_after_batch(val_loader, val_every, n_batches)
        # Taken before the hooks, so that they read this step's means in callback_metrics; the loggers get
        # them with what the hooks log with self.log, in one call at this same step (Lightning's row for
        # it, whose x axis a logged "step" sets), once the module's hook has run, and before ModelCheckpoint
        # saves: a checkpoint it takes now (every_n_train_steps) records the loggers past all of this step,
        # so resuming from it neither drops nor repeats a value.
        logging_step = stepped and self.is_logging_step()
        if logging_step:
            self._log_train_interval(hook_logs=False)
        if streak_limit_reached:
            self._check_nonfinite()  # raises: the streak up to this step is at least the one just read
        if stepped and (self._ranks_meet() or last_of_epoch):
            self._agree_across_ranks()
        batch_args = (outputs, batch, batch_idx)
        self._ending_a_stepped_batch = (
            stepped or manual_steps is not None
        )  # (manual: every batch, as Lightning)
        try:
            self._call_end_hooks(
                "on_train_batch_end",
                batch_args,
                step_logging.log_hook_steps if logging_step else None,
                batch_args,
            )
            if val_due:
                self._validate_after_batch(module)
        finally:
            self._ending_a_stepped_batch = False

    def _validation_due_after_batch(self, val_loader: Any, val_every: Any, n_batches: int | None) -> bool:
        """Whether a validation is due after this training batch, recorded as pending: a checkpoint saved by
        a batch-end hook (ModelCheckpoint(every_n_train_steps)) before it runs it first on resume."""
        due = val_loader is not None and self._validation_schedule.due(
            self.progress, self._current_val_every(val_every), n_batches
        )
        self.progress.validation_pending = due
        return due

    def _validate_after_batch(self, module: TrainModule) -> None:
        """The validation due after a training batch (its `on_train_batch_end` has run)."""
        progress = self.progress
        progress.validation_pending = False  # a checkpoint saved in on_validation_end has run it
        self._step_logging.hold_epoch_means_so_far()
        # Still pending when Ctrl-C stops it: saved below, rerun on resume. Still pending when an error
        # stops it, too: a checkpoint OnExceptionCheckpoint saves then reruns it, as Lightning's does.
        try:
            progress.validation_pending = self._validate_in_fit(module) is None
        except BaseException:
            progress.validation_pending = True
            raise
        self._validation_schedule.record_validation(progress)
        self._agree_across_ranks()  # EarlyStopping may have stopped one rank in on_validation_end

    def _none_batch(self, module, n_batches, val_loader, val_every, ends_epoch) -> None:
        """A batch the training loader yielded as None (a `collate_fn` that left all its samples out),
        skipped as Lightning's epoch loop skips it: its warning (once), no `on_train_batch_start` and no
        step, `on_train_batch_end` with None for the outputs and the batch. It is a batch of the epoch
        (its batch_idx, `limit_train_batches`, `val_check_interval`); the epoch's last closes the
        accumulation window still open."""
        progress = self.progress
        if self.world_size > 1:  # (the other ranks would wait forever in this step's all-reduce)
            raise ValueError(
                f"Trainer.fit: the training loader yielded None as batch {progress.batch_in_epoch} of epoch "
                f"{progress.epoch} under data parallel ({self.world_size} processes), where every rank "
                "must train on each batch: leave the samples out in the dataset (or a sampler), not by "
                "returning None from collate_fn"
            )
        if not self._warned_of_a_none_batch:
            self._warned_of_a_none_batch = True
            warnings.warn(
                "train_dataloader yielded None. If this was on purpose, ignore this warning...",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        batch_idx = progress.batch_in_epoch
        self._is_last_batch = ends_epoch or (n_batches is not None and batch_idx + 1 == n_batches)
        progress.batch_in_epoch += 1
        progress.total_batches += 1
        if self._is_last_batch and progress.micro_batches:
            self._close_window()
        val_due = self._validation_due_after_batch(val_loader, val_every, n_batches)
        args = (None, None, batch_idx)
        self._call_end_hooks("on_train_batch_end", args, None, args)
        if val_due:
            self._validate_after_batch(module)

    def _close_window(self) -> None:
        """Apply the gradients of an accumulation window that the end of the loader cut short."""
        progress = self.progress
        self._train_step.close_window(mx.array(progress.micro_batches, mx.float32))
        eval_compiling_again(mx.async_eval, self._train_step.eval_targets)
        progress.micro_batches = 0
        progress.global_step += 1
        if self.is_logging_step():
            self._log_train_interval()

    def _end_epoch(self, module: TrainModule, val_loader: Any, val_every: int | None) -> None:
        progress = self.progress
        self._warn_of_freezing_inside_the_epoch(module)  # (before the epoch-end hooks, which may freeze)
        epoch_means = self.running.epoch_means(self._reduce)
        train_options = self._step_logging.train_options()
        train_metrics = reporting.epoch_values(epoch_means, train_options)
        self._step_logging.epoch_train_means = train_metrics
        if self.running.has_interval_steps and self.log_every_n_steps:
            self._log_train_interval()
        elif self.running.has_interval_steps:  # (log_every_n_steps=0: no step row; the epoch's means follow)
            self.running.pop_interval()
        if progress.epoch_complete:  # (not one max_steps cut short: a resumed run goes on summing it)
            self.running.fold()
        self._check_nonfinite()
        self._nonfinite.warn_of_skipped_updates(
            self._train_step.state.arrays, progress.epoch, progress.global_step
        )
        val_metrics = {}
        # (As Lightning's: a stop validates where it ends the loop, whatever the interval.)
        stopping = self._stopping.time_out or self._stop_request_ends_fit()
        if val_loader is not None:
            val_every = self._current_val_every(val_every)
        if self._validation_schedule.end_epoch(progress, val_every, val_loader is not None, stopping):
            # (Lightning's runs after the epoch's last batch, which steps: counted in `_batches_that_stepped`
            # after it)
            self._ending_a_stepped_batch = progress.batch_in_epoch > 0
            try:
                val_metrics = self._validate_in_fit(module)
            except BaseException:
                progress.epoch_complete = False  # (as below: an error's checkpoint resumes with it)
                raise
            finally:
                self._ending_a_stepped_batch = False
            if val_metrics is None:
                # Ctrl-C stopped the validation: the epoch stays open at its last batch, so the
                # checkpoint resumes with this validation and the rest of the epoch's end.
                progress.epoch_complete = False
                return
        row = {
            "epoch": progress.epoch,
            "step": progress.global_step,
            "time": self.elapsed(),
            "learning_rate": self.learning_rate(),
            **train_metrics,
        }
        # A value the module logged as "epoch" goes to the loggers (below); the history's column stays the
        # epoch's number, which export_history, resume and the recipes read.
        row["epoch"] = progress.epoch
        if progress.validated_epoch == progress.epoch:  # not the values of an earlier epoch's validation
            # (Also a validation inside the loop, as an int val_check_interval's after the epoch's last batch:
            # the epoch-end hooks get what the history row gets.)
            epoch_validation = self._step_logging.epoch_validation_metrics()
            row.update(epoch_validation)
            val_metrics = {**epoch_validation, **val_metrics}
        # The history's step is the global step, also where `self.log("step", ...)` set the loggers' x axis
        # (callback_metrics holds that value).
        row["step"] = progress.global_step
        # An epoch that a stop cut short (max_steps, or EarlyStopping inside it) already has a row, and its
        # end went to the loggers then, as Lightning logs an epoch that max_steps ends. Resumed and now
        # complete, its row becomes the whole epoch's; the loggers, which cannot take a value back, get
        # one end per epoch.
        ended_before = self._run.history.has_epoch(progress.epoch)
        self._run.history.record(row)
        if not ended_before:
            epoch_logs = reporting.epoch_log_values(epoch_means, train_options)
            # Sent with what on_train_epoch_end logs (`take`): a "step" it logs is their x axis too.
            # (As Lightning's `setdefault`: an "epoch" the module logged is sent as it logged it.)
            self._step_logging.hold_for_hooks(epoch_logs, epoch=progress.epoch)

        def take() -> None:
            # What hooks logged per epoch in this epoch (on_epoch, by Lightning's rules: hook_logs): part of
            # it (the history, and what ModelCheckpoint/EarlyStopping see). An epoch max_steps ended early
            # keeps its sums, so a run resumed from it ends it with the means of the whole epoch.
            to_loggers, late, for_history = self._step_logging.hook_epoch_values(
                "train", clear=progress.epoch_complete
            )
            if late:
                row.update(for_history, step=progress.global_step, epoch=progress.epoch)  # (row's own)
                self.callback_metrics.update(late)
            if not ended_before:
                self._step_logging.send_with_hook_values(to_loggers)

        # What the batch and epoch-start hooks logged per epoch: the epoch-end hooks see this epoch's means, as
        # Lightning's do (those hooks' own logs join them in `take`).
        # The epoch's means only now, after its validation, as in Lightning: that validation's hooks see the
        # last step's values (`name`, `name_step`), not a mean of an epoch that has not ended.
        self.callback_metrics.update(reporting.epoch_callback_values(epoch_means, train_options))
        hook_loggers_so_far, hooks_so_far, _ = self._step_logging.hook_epoch_values("train", clear=False)
        self.callback_metrics.update(hooks_so_far)
        if not ended_before:  # (Lightning's logged_metrics is computed where it is read: the hooks see them)
            self.logged_metrics.update(hook_loggers_so_far)
        self._call_end_hooks(
            "on_train_epoch_end", (progress.epoch, {**train_metrics, **hooks_so_far, **val_metrics}), take
        )
        self._in_epoch = False
        if progress.epoch_complete:
            self._last_epoch_batches = progress.batch_in_epoch
            progress.finish_epoch()
        self._agree_across_ranks()  # a stop asked in the epoch-end hooks, before the next epoch starts

    def _no_batches_this_epoch(self, epoch: int) -> None:
        """An epoch without a single batch would repeat forever under max_steps (no step ever counts)."""
        if self.progress.total_batches > 0:
            raise ValueError(
                f"Trainer.fit: the training loader yielded no batches in epoch {epoch}, after "
                f"{self.progress.total_batches} in earlier epochs. A generator or iterator can be consumed "
                "only once: pass a list, a DataLoader, or an object whose __iter__ starts over"
            )
        warnings.warn("Trainer.fit: the training loader yielded no batches; stopping", stacklevel=4)
        self.should_stop = True

    def _follow_freezing(self, module: TrainModule) -> None:
        """Rebuild the compiled step when `freeze`/`unfreeze` changed what trains (checked at each
        epoch start, where fine-tuning schedules such as Lightning's BackboneFinetuning act).

        The step is traced once over the trainable parameters it saw, so without this a frozen
        layer kept training and an unfrozen one never did.
        """
        keys = names_to_train(module)
        # (A fine-tuning callback's new parameter group replaces the optimizer with a MultiOptimizer.)
        new_optimizer = self._train_step.optimizer is not self.optimizer
        # (a resume sets what trains after the step was built: the step must be built for that too)
        built_for = self._train_step.trains
        if keys == self._run.trainable.now and keys == built_for and not new_optimizer:
            self._follow_accumulation(module)
            return
        self.optimizer.init(module.trainable_parameters())  # state for newly trainable parameters
        self._rebuild_step(module)
        self._run.trainable.change(keys)

    def _follow_accumulation(self, module: TrainModule) -> None:
        """Rebuild the compiled step when `accumulate_grad_batches` changed (GradientAccumulationScheduler
        sets it at epoch starts): the window's gradient buffer is part of the step's state. Only between
        windows, where the buffer holds nothing. So for `gradient_clip_val` / `gradient_clip_algorithm`,
        which Lightning reads at every step: here the clip is traced into the step, so one a hook sets
        clips from the next epoch start (before, it was ignored for the rest of the fit); `track_grad_norm`
        too."""
        config = self._train_step.config
        gradients = self._gradient_settings_now()
        if config.accumulate_grad_batches == self.accumulate_grad_batches:
            if any(getattr(config, name) != value for name, value in gradients.items()):
                self._rebuild_step(module)
            return
        if self.progress.micro_batches:
            raise RuntimeError(
                f"Trainer: accumulate_grad_batches changed to {self.accumulate_grad_batches} inside an "
                f"accumulation window ({self.progress.micro_batches} of "
                f"{self._train_step.config.accumulate_grad_batches} micro-batches done); change it at an "
                "epoch start"
            )
        self._rebuild_step(module)

    def _gradient_settings_now(self) -> dict[str, Any]:
        """The Trainer's clip and `track_grad_norm` now, as the step's config names them, checked as
        `Trainer(...)` checks them (a hook may have set them)."""
        try:
            value, algorithm = flags.clip(self.gradient_clip_val, self.gradient_clip_algorithm)
            track = flags.track_grad_norm(self.track_grad_norm)
        except (ValueError, TypeError) as err:
            raise type(err)(
                f"trainer.gradient_clip_val={self.gradient_clip_val!r} / gradient_clip_algorithm="
                f"{self.gradient_clip_algorithm!r} / track_grad_norm={self.track_grad_norm!r}, set during "
                f"fit: {err}"
            ) from None
        self.gradient_clip_val, self.gradient_clip_algorithm, self.track_grad_norm = value, algorithm, track
        return {"clip_val": value, "clip_algorithm": algorithm, "track_grad_norm": track}

    def _rebuild_step(self, module: TrainModule) -> None:
        """A new compiled step over the module's trainable parameters and this `accumulate_grad_batches`;
        the step's counters carry on (the accumulated gradients start from zeros)."""
        old = self._train_step
        state = StepState(module, accumulate=self.accumulate_grad_batches > 1)
        state.arrays.update(
            {k: v for k, v in old.state.arrays.items() if k != "grad_accum"}
        )  # counters carry on
        config = dataclasses.replace(
            old.config, accumulate_grad_batches=self.accumulate_grad_batches, **self._gradient_settings_now()
        )
        self._train_step = self._new_step(module, config, state, previous=old)

    # ---- evaluation stages (the loop is in evaluation_loop.py) --------------------------------------
    def validate(
        self,
        model: TrainModule | None = None,
        val_loader: Any = None,
        ckpt_path: str | os.PathLike | None = None,
        verbose: bool = True,
        datamodule: Any = None,
        weights_only: bool | None = None,
        *,
        dataloaders: Any = None,
    ) -> list[dict[str, float]]:
        """Run validation once. Returns what Lightning returns: a list with one dict of `val_*` metrics
        (means weighted by batch size). `dataloaders` is Lightning's name for `val_loader`; `verbose` is
        accepted for Lightning's code: no results table is printed either way. The arguments come in
        Lightning's order. `weights_only` (Lightning's: how torch unpickles `ckpt_path`) is accepted and
        changes nothing: a checkpoint here holds no pickle."""
        check_verbose("validate", verbose)
        check_weights_only("validate", weights_only)
        return self.evaluation.standalone("val", model, val_loader, dataloaders, datamodule, ckpt_path)

    def test(
        self,
        model: TrainModule | None = None,
        test_loader: Any = None,
        ckpt_path: str | os.PathLike | None = None,
        verbose: bool = True,
        datamodule: Any = None,
        weights_only: bool | None = None,
        *,
        dataloaders: Any = None,
    ) -> list[dict[str, float]]:
        """Run `test_step` over `test_loader`. Returns a list with one dict of `test_*` metrics (`verbose`,
        `weights_only` and the order of the arguments: as in `validate`)."""
        check_verbose("test", verbose)
        check_weights_only("test", weights_only)
        return self.evaluation.standalone("test", model, test_loader, dataloaders, datamodule, ckpt_path)

    # The overloads tell a type checker what is returned: a list, None with `return_predictions=False`.
    @overload
    def predict(
        self,
        model: TrainModule | None,
        dataloaders: Any,
        datamodule: Any,
        return_predictions: Literal[False],
        ckpt_path: str | os.PathLike | None = None,
        weights_only: bool | None = None,
    ) -> None: ...
    @overload
    def predict(
        self,
        model: TrainModule | None = None,
        dataloaders: Any = None,
        datamodule: Any = None,
        *,
        return_predictions: Literal[False],
        ckpt_path: str | os.PathLike | None = None,
        weights_only: bool | None = None,
    ) -> None: ...
    @overload
    def predict(
        self,
        model: TrainModule | None = None,
        dataloaders: Any = None,
        datamodule: Any = None,
        return_predictions: Literal[True] | None | str | os.PathLike = True,
        ckpt_path: str | os.PathLike | None = None,
        weights_only: bool | None = None,
    ) -> list[Any]: ...
    @overload
    def predict(
        self,
        model: TrainModule | None = None,
        dataloaders: Any = None,
        datamodule: Any = None,
        return_predictions: bool | None = True,
        ckpt_path: str | os.PathLike | None = None,
        weights_only: bool | None = None,
    ) -> list[Any] | None: ...
    def predict(
        self,
        model: TrainModule | None = None,
        dataloaders: Any = None,
        datamodule: Any = None,
        return_predictions: bool | None | str | os.PathLike = True,
        ckpt_path: str | os.PathLike | None = None,
        weights_only: bool | None = None,
    ) -> list[Any] | None:
        """Run `predict_step` (compiled) over the loader; returns its output for each batch, in order, or
        None with `return_predictions=False` (None is Lightning's default, True here). Several loaders (a
        list or dict of them, as Lightning's) are predicted in turn, each batch's `dataloader_idx` passed to
        the step and the batch hooks: the return is a list of each loader's outputs.

        The arguments come in Lightning's order; a path in `return_predictions`' place is taken as
        `ckpt_path` (audiotrain's order before: `predict(model, dataloaders, datamodule, ckpt_path,
        return_predictions)`).

        Under data parallel each rank predicts its shard of the loader and returns its own outputs: a
        DataLoader that leaves `pad_shards` to the Trainer repeats no sample (as in validation), so the
        ranks' outputs together hold each sample once. Rank `r` of `W` has samples `r, r+W, r+2W, ...`
        of the loader's order; `audiotrain.distributed.all_gather_object` brings them together.

        `weights_only` (Lightning's: how torch unpickles `ckpt_path`) is accepted and changes nothing: a
        checkpoint here holds no pickle."""
        check_weights_only("predict", weights_only)
        if isinstance(return_predictions, str | os.PathLike) and not isinstance(ckpt_path, str | os.PathLike):
            return_predictions, ckpt_path = (True if ckpt_path is None else ckpt_path), return_predictions
        if return_predictions is None:
            return_predictions = True
        if not isinstance(return_predictions, bool):
            raise TypeError(
                "Trainer.predict: return_predictions must be True, False or None, got "
                f"{shown_type(return_predictions)} (the arguments in order: {STAGE_ARGUMENTS['predict']})"
            )
        return self.evaluation.standalone(
            "predict", model, dataloaders, None, datamodule, ckpt_path, return_predictions
        )

    # ---- hooks, setup and teardown ----------------------------------------------------------------------
    def _call_hooks(self, name: str, *args: Any, module_args: tuple | None = None) -> Any:
        """Lightning's order: the callbacks (in the order given), then the module. The module's hook gets
        `module_args` where audiotrain's takes others than the callbacks', none where it is written as
        Lightning's (`on_train_epoch_start(self)`). Returns what the module's hook returned. Every callback's
        `teardown` runs though one raises (the first error is raised after them): they release what the
        fit holds (ModelCheckpoint's claim on its folder), which a long-lived process would keep."""
        with self._stopping.taking_interrupts_in(name), hook_logs.running_hook(self, name, args):
            self.callbacks.call(name, self, self.module, *args, every=name == "teardown")
            return self._module_hook(name, *(args if module_args is None else module_args))

    def _call_end_hooks(self, name: str, module_args: tuple, take: Any, callback_args: tuple = ()) -> None:
        """`on_train_epoch_end` / `on_validation_end` / `on_test_end` / `on_train_batch_end`, in the order of
        Lightning's `on_train_epoch_end`: the callbacks, the module, then the callbacks that monitor metrics
        (ModelCheckpoint, EarlyStopping), so these see what the module logged there (`take()` reports it;
        None leaves it for the next logging point). A KeyboardInterrupt raised in one of them skips the rest
        of that one alone, and the others run, as they do for a Ctrl-C heard there: an epoch end whose
        EarlyStopping, ReduceLROnPlateau or ModelCheckpoint were skipped would be saved as done without
        them."""
        guard = functools.partial(self._stopping.taking_interrupts_in, name)
        with hook_logs.running_hook(self, name, callback_args):
            self.callbacks.call(name, self, self.module, *callback_args, monitoring=False, guard=guard)
            with guard():
                self._module_hook(name, *module_args)
            if take is not None:
                take()
            self.callbacks.call(name, self, self.module, *callback_args, monitoring=True, guard=guard)

    def _module_hook(self, name: str, *args: Any) -> Any:
        where = f"{type(self.module).__name__}.{name}"
        with reporting.explain_kept_step_arrays(where), self.profiler.profile(f"[LightningModule]{where}"):
            return getattr(self.module, name)(*(() if name in self._bare_hooks else args))

    def _attach(self, module: TrainModule, stage: str) -> None:
        if not isinstance(module, TrainModule):
            raise TypeError(f"Trainer.{stage}: expected a TrainModule, got {type(module).__name__}")
        no_gradient.refuse_compiled_modules(module, f"Trainer.{stage}")
        threads.check_parameters_evaluate_here(module, f"Trainer.{stage}")
        threads.clear_streams_when_thread_ends()  # (validate, test, predict: see threads.py)
        self.module = module
        module._attach(self)
        # (the report's folder, trainer.log_dir, is known once the loggers' runs started: given at teardown)
        self.profiler.setup(stage, self.local_rank if self.world_size > 1 else None, self._profile_folder())
        if self.precision == "bf16-true":
            module.set_dtype(mx.bfloat16)
        hooks.refuse_uncallable_hooks(self.callbacks, Callback)  # (before any hook runs: setup's too)
        if self.datamodule is not None:
            # (first, as in Lightning: then the callbacks', the module's)
            with hook_state.datamodule_hook_profiled(self.profiler, self.datamodule, "setup"):
                self.datamodule.setup(stage)
        self.callbacks.call("setup", self, module, stage)
        # Checked once the callbacks are set up: a ModelCheckpoint's state_key names its folder.
        hooks.refuse_shared_states(self.callbacks, Callback)
        hooks.refuse_unsupported([*self.callbacks, module], stage, manual=not module.automatic_optimization)
        hooks.warn_unknown_hooks(self.callbacks, Callback, module, TrainModule)
        hooks.warn_lightning_only_hooks(module)
        if self.is_global_zero:  # (said once a job, as Lightning's rank_zero_warn)
            hooks.warn_of_batch_hooks_beside_a_datamodule(module, self.datamodule)
        self._bare_hooks = hooks.bare_module_hooks(module)
        # (self.log there is refused naming it, as Lightning does; timed as Lightning's profiler times it)
        where = f"[LightningModule]{type(module).__name__}.setup"
        with hook_logs.running_hook(self, "setup"), self.profiler.profile(where):
            module.setup(stage)
        module.configure_model()  # (after setup, before configure_optimizers, as in Lightning)
        no_gradient.refuse_compiled_modules(
            module, f"{type(module).__name__}.configure_model"
        )  # (built there)

    def _attach_module_callbacks(self, module: TrainModule) -> None:
        """Lightning's `configure_callbacks`: the module's callbacks join the Trainer's before the stage's
        `prepare_data` (as Lightning 2.6.6's `_run` attaches them), with the module's `self.trainer` set."""
        if not isinstance(module, TrainModule):
            return  # (refused by `_attach`, naming the stage)
        module._attach(self)
        replaced = self.callbacks.merge_module_callbacks(module)  # (before the setup hooks, as in Lightning)
        if replaced:  # (Lightning's info line)
            self._note(
                "The following callbacks returned in `TrainModule.configure_callbacks` will override existing "
                f"callbacks passed to Trainer: {', '.join(replaced)}"
            )

    @contextlib.contextmanager
    def _stage_fails_on_error(self, module: TrainModule, stage: str) -> Iterator[None]:
        """For what a stage runs after `setup` but before its loaders (restoring the datamodule's state): an
        error there gets `on_exception` and the teardown hooks, as an error later in the stage does."""
        try:
            yield
        except BaseException as err:
            # (before on_exception, as Lightning's; a Ctrl-C in a long setup, before any stop handler is in
            # place, is a stop by hand, as it reads later in the stage, not a crash)
            stopped = isinstance(err, KeyboardInterrupt)
            self._state_tracker.status = "interrupted" if stopped else "failed"
            self._on_exception(module, err)
            self._teardown(module, stage, "failed")
            raise

    def _teardown(self, module: TrainModule, stage: str, status: str, loaders: tuple = ()) -> None:
        """Let the datamodule, every callback and the module clean up, then close the loggers' runs
        (Lightning's order, after every stage), and stop the persistent workers of the stage's `loaders`
        (Lightning's teardown of its data fetchers). After a failure nothing here may hide the error on its
        way out."""
        try:
            self._teardown_hooks(module, stage, status)
        finally:
            if stage == "fit":
                # Whatever raised above before ModelCheckpoint's teardown ran (a user's logger failing to
                # finish its run), the fit's claim on its checkpoint folder ends with the fit: kept, a sweep's
                # process held it open for good, and `audiotrain runs` listed that trial as running.
                for checkpoint in self.checkpoint_callbacks:
                    checkpoint._release_folder()
            # A Ctrl-C after a stopped fit's save (the first one's stop has happened) ends no more than it.
            stop_stage_workers(*loaders, hold_interrupts=status == "interrupted")

    def _on_exception(self, module: Any, err: BaseException) -> None:
        """The callbacks' `on_exception`, then the DataModule's, as Lightning's (`call._interrupt`): quietly,
        so that none of them hides the error on its way out."""
        self.callbacks.call_quietly("on_exception", self, module, err)
        self._datamodule_on_exception(err)

    def _datamodule_on_exception(self, err: BaseException) -> None:
        if callable(getattr(self.datamodule, "on_exception", None)):
            with contextlib.suppress(Exception):
                self.datamodule.on_exception(err)

    def _finalize_loggers(self, status: str) -> None:
        """Close the loggers' runs with `status`; after a failure quietly (nothing may hide the error)."""
        failed = status == "failed"
        for lg in self._writing_loggers:
            if failed and isinstance(lg, Logger) and not lg.started:
                # Failed before its run started (a refused fit, a bad ckpt_path): open no run; what was
                # logged before (hyperparameters) waits for the next stage's run.
                continue
            if hasattr(lg, "finalize"):
                with contextlib.suppress(Exception) if failed else contextlib.nullcontext():
                    lg.finalize(status)

    def _teardown_hooks(self, module: TrainModule, stage: str, status: str) -> None:
        failed = status == "failed"
        # Values held for an end hook that failed (or a stop cut short) were logged: they are written.
        with contextlib.suppress(Exception) if failed else contextlib.nullcontext():
            self._step_logging.send_with_hook_values({})
        # The datamodule's first, then the callbacks' and the module's, as Lightning's _call_teardown_hook,
        # and the loggers' runs closed after them, as there: what a teardown logs (a final score) goes to the
        # run, not to one that a closed run reopened (an MLflow run marked FAILED then ended FINISHED).
        try:
            if self.datamodule is not None and callable(getattr(self.datamodule, "teardown", None)):
                with (
                    contextlib.suppress(Exception) if failed else contextlib.nullcontext(),
                    hook_state.datamodule_hook_profiled(self.profiler, self.datamodule, "teardown"),
                ):
                    self.datamodule.teardown(stage)
            if failed:
                self.callbacks.call_quietly("teardown", self, module, stage)
                with contextlib.suppress(Exception):
                    module.teardown(stage)
            else:
                self._call_hooks("teardown", stage)
        except BaseException:
            self._finalize_loggers("failed")  # (a teardown that raised fails the stage, as in Lightning)
            raise
        self._finalize_loggers(status)
        # The stage's profile report (Lightning's describe): after a failure or a Ctrl-C too, where it shows
        # where the time went; its own failure then does not hide the error.
        self.profiler._set_log_dir(self._profile_folder())  # (a resumed logger's version is known now)
        with contextlib.suppress(Exception) if failed else contextlib.nullcontext():
            self.profiler.describe()

    def _profile_folder(self) -> str:
        """Where a profiler's report named by a filename alone goes (Lightning's `log_dir`)."""
        return self.log_dir or str(self.default_root_dir)

    @property
    def profiler(self) -> Profiler:
        """Lightning's `trainer.profiler`: the loop's actions timed (train/profilers.py); a
        PassThroughProfiler (nothing recorded, no cost) unless one was given. Set it to another (or "simple",
        "advanced", None) between stages: the callbacks' hooks are timed by the one set."""
        return self._profiler

    @profiler.setter
    def profiler(self, value: Profiler | str | None) -> None:
        self._profiler = trainer_profiler(value)
        self.callbacks.profiler = self._profiler

    @property
    def _manual(self) -> bool:
        """Whether the fit's module steps its optimizers itself (`automatic_optimization = False`)."""
        return isinstance(self._train_step, ManualStep)

    def _new_step(
        self, module: TrainModule, config: StepConfig, state: StepState | None = None, previous: Any = None
    ) -> Any:
        """The training step: compiled (`TrainStep`), or a manual module's own (`manual.ManualStep`, which
        takes over the handles of the `previous` one the fit rebuilds)."""
        if module.automatic_optimization:
            return TrainStep(module, self.optimizer, config, state)
        configured = self.optimizer_config.optimizer if self.optimizer_config is not None else None
        previous = previous if isinstance(previous, ManualStep) and previous.module is module else None
        return ManualStep(module, self.optimizer, config, state, configured, previous)

    def _setup_optimizer(self, module: TrainModule) -> None:
        if not module.automatic_optimization:
            refuse_automatic_settings(self, module)
        refuse_truncated_bptt(module)
        refuse_optimizer_idx(module)
        refuse_dataloader_iter(module)
        where = f"{type(module).__name__}.configure_optimizers"
        with self.profiler.profile(f"[LightningModule]{where}"):  # (Lightning's action name)
            configured = module.configure_optimizers()
        if not module.automatic_optimization:
            several = manual_optimizers(configured, module, where)
            configured = several[0] if several is not None else configured
        config = OptimizerConfig.from_module_output(configured, where, trainer=self)
        if not module.automatic_optimization:
            refuse_counted_schedules(config.optimizer, module, where)
        self.optimizer_config, self.optimizer = config, config.optimizer
        self._add_plateau_callback(getattr(config, "_plateau", None), module, where)
        if isinstance(self.optimizer, optim.MultiOptimizer) and module.automatic_optimization:
            for message in multi_optimizer_groups(
                self.optimizer, module.parameters(), module.trainable_parameters(), where
            ):
                warnings.warn(message, PossibleUserWarning, stacklevel=user_stacklevel())
        # Initialise the state before compiling: a compiled function must see the same state
        # structure on every call (lazy init on the first update would force a retrace).
        self.optimizer.init(module.trainable_parameters())
        # (the rate configured, recorded in each checkpoint: a resume keeping it has asked for no other)
        note_configured_rates(self.optimizer)

    def _add_plateau_callback(self, plateau: Any, module: TrainModule, where: str) -> None:
        """Lightning's ReduceLROnPlateau lr_scheduler runs as the callback it is, for this fit: the one an
        earlier fit's configure_optimizers gave is dropped first."""
        earlier = getattr(self, "_configured_plateau", None)
        self.callbacks[:] = [cb for cb in self.callbacks if cb is not earlier]
        self._configured_plateau = plateau
        if plateau is None or not self._steps_configured_plateau:
            return
        others = [cb for cb in self.callbacks if isinstance(cb, ReduceLROnPlateau)]
        if others:
            raise ValueError(
                f"{where} returned a ReduceLROnPlateau lr_scheduler and the Trainer has {others[0]!r} among "
                "its callbacks: each would lower the rate; keep one of them"
            )
        self.callbacks[:] = _in_order([*self.callbacks, plateau])  # (before the checkpointing, as a user's)
        plateau.setup(self, module, "fit")

    def _step_config(self) -> StepConfig:
        return StepConfig(
            clip_val=self.gradient_clip_val,
            clip_algorithm=self.gradient_clip_algorithm,
            clip_each_group=self.optimizer_config is not None and self.optimizer_config.clip_each_group,
            accumulate_grad_batches=self.accumulate_grad_batches,
            precision=self.precision,
            compile=self.compile,
            nonfinite_guard=self.nonfinite_guard,
            track_grad_norm=self.track_grad_norm,
        )

    def _refuse_earlier_logger_runs(self) -> None:
        """A fresh fit's loggers (CSV, TensorBoard) refuse a version folder that another run wrote, and claim
        theirs; where one refuses, the others' claims are given up (the fit writes nothing). Loggers of this
        fit given one version folder share it, as in Lightning (one's claim is not another run's logs)."""
        claimed, held = [], {}
        try:
            for lg in self.loggers:
                if callable(getattr(lg, "refuse_an_earlier_run", None)):
                    folder = lg.refuse_an_earlier_run(held_by_this_fit=held, trainer=self)
                    claimed.append(lg)
                    if folder is not None:
                        held.setdefault(folder.resolve(), type(lg).__name__)
        except BaseException:
            for lg in claimed:
                if callable(getattr(lg, "release_claim", None)):
                    lg.release_claim()
            raise
        share_next_version(self.loggers)

    def _logged_config(self, module: TrainModule) -> dict[str, Any]:
        """`run_config` less what save_hyperparameters(logger=False) keeps out of the loggers (checkpoints
        still hold it). The loggers get the hyperparameters as save_hyperparameters recorded them
        (`hparams_initial`), as Lightning's: a later `self.hparams.x = ...` reaches the checkpoints only."""
        config = run_config(self)
        if module is not None and "hparams" in config:
            config["hparams"] = plain_hyperparameters(module.hparams_initial)
        if "datamodule_hparams" in config and "_hparams_initial" in vars(self.datamodule):
            # (one whose `hparams` were assigned, save_hyperparameters never called, logs them as they are)
            config["datamodule_hparams"] = plain_hyperparameters(self.datamodule.hparams_initial)
        if getattr(module, "_log_hyperparams", True) is False:
            config.pop("hparams", None)
        if getattr(self.datamodule, "_log_hyperparams", True) is False:
            config.pop("datamodule_hparams", None)
        return config

    def _log_config(self, params: dict[str, Any]) -> None:
        """`params` flattened with '/' to every writing logger: also to one that overrides
        `log_hyperparams` itself (as written for Lightning), which `Logger.log_hyperparams` flattens not."""
        flat = flatten_params(params)
        for lg in self._writing_loggers:
            if hasattr(lg, "log_hyperparams"):
                lg.log_hyperparams(flat)
                if has_own_save(lg):
                    lg.save()  # (as Lightning's Trainer: a logger written for it writes its hparams there)

    def _log_scored_hyperparameters(self, module: TrainModule) -> None:
        """`validate` / `test`: the module's and the datamodule's hyperparameters to the loggers, as Lightning
        logs them at every stage (the Trainer's flags and optimizer are a fit's: a `test` after `fit` keeps
        the fit's values of those)."""
        config = self._logged_config(module)
        scored = {k: config[k] for k in ("hparams", "datamodule_hparams") if config.get(k)}
        if scored and self.enable_autolog_hparams:
            self._log_config(scored)

    def _start_loggers(self, module: TrainModule) -> None:
        if self.enable_autolog_hparams:  # (False: the user logs them, as Lightning's flag lets them)
            self._log_config(self._logged_config(module))
        for lg in self._writing_loggers:
            if isinstance(lg, Logger):
                lg.start()  # the checkpoint's run, now that it is loaded; a login failure shows at once
        if self.world_size > 1:
            # The other ranks' loggers (which write nothing) name rank 0's run: `trainer.logger.log_dir` or
            # `.version` read on any rank is the one rank 0 writes (a next free version_<k> found later on
            # another rank would be another folder).
            ours = [lg for lg in self.loggers if isinstance(lg, Logger)]
            states = collectives.broadcast_from_main([lg.state_dict() for lg in ours])
            if not self.is_global_zero:
                for lg, state in zip(ours, states):
                    lg.load_state_dict(state)

    def _on_device(self):
        """MLX's default stream on the chosen accelerator while the Trainer runs."""
        return mx.stream(self.device)

    def _ranks_meet(self) -> bool:
        """Whether the ranks meet after this step to agree on a stop (data parallel): at each logging step,
        or every `stopping.RANKS_MEET_EVERY_WITHOUT_LOGGING` steps where log_every_n_steps=0 has none."""
        return self.global_step % ranks_meet_every(self) == 0

    def _agree_across_ranks(self) -> None:
        """Data parallel, where every rank is at the same step: the ranks agree on the stop requests and
        the progress bar's numbers in one all-reduce (`StopRequests.agree_across_ranks`)."""
        if self.world_size == 1:
            return
        sums, weights = self._step_logging.bar_sums()
        self._step_logging.shown_across_ranks = self._stopping.agree_across_ranks(sums, weights)

    # ---- checkpoints -----------------------------------------------------------------------------------
    def save_checkpoint(
        self,
        path: str | os.PathLike | None = None,
        weights_only: bool | None = False,
        storage_options: Any = None,
        *,
        filepath: str | os.PathLike | None = None,
    ) -> Path:
        """Write a resumable checkpoint folder (atomically) at `path` (`filepath`, Lightning's name, works
        too): the model, the optimizer, the compiled step's counters, and every named state object (see the
        module docstring). It also holds the module's hyperparameters, so
        `TrainModule.load_from_checkpoint(path)` rebuilds it. `weights_only` (Lightning's; None as False)
        leaves out the optimizer and the step's state: such a checkpoint loads for
        `validate`/`test`/`load_from_checkpoint`, and resuming `fit` from it is refused. Lightning's
        `storage_options` (options for a checkpoint plugin) is accepted as None only: there is no plugin.
        Under data parallel every rank must call it (as in Lightning): rank 0 writes what they all hold."""
        if path is not None and filepath is not None:
            raise TypeError(
                "Trainer.save_checkpoint: give the path once, as path or as filepath (Lightning's)"
            )
        path = path if path is not None else filepath
        if path is None:
            raise TypeError("Trainer.save_checkpoint: missing the checkpoint's path (path= or filepath=)")
        if storage_options is not None:  # (TypeError, as Lightning's TorchCheckpointIO raises for it)
            raise TypeError(
                f"Trainer.save_checkpoint(storage_options={storage_options!r}): Lightning's options for a "
                "checkpoint IO plugin have no counterpart here (a checkpoint is a local folder of "
                "safetensors and JSON): leave it None"
            )
        if weights_only is None:
            weights_only = False
        if self.module is None:
            raise RuntimeError("Trainer.save_checkpoint: no module attached yet (call fit/validate first)")
        # A leading ~ is the home folder, as every load of a checkpoint (resolve_checkpoint) reads it: the
        # returned path, given back to load_checkpoint, must name the folder written.
        path = path_argument(path, "Trainer.save_checkpoint", "path").expanduser()
        with self.profiler.profile("save_checkpoint"):
            return self._save_checkpoint(path, weights_only)

    def _save_checkpoint(self, path: str | os.PathLike, weights_only: bool) -> Path:
        # Values held for an end hook's logs (a callback saving in on_train_batch_end/on_train_epoch_end runs
        # before the module's hook) go to the loggers first: the checkpoint's logger state must cover them,
        # or a run resumed from it drops them as logged after it and, past that step, never logs them again.
        self._step_logging.send_with_hook_values({})
        running = self.running.state_dict()
        # What hooks logged with self.log that waits for the next logging point, and the epoch's sums of
        # what they log per epoch: a resumed run reports them as an uninterrupted one would (under data
        # parallel every rank's sums added up, its step values averaged).
        waiting_logs = hook_logs.to_state(self.module, self.world_size)
        mlx_keys = None
        if self.world_size > 1:
            # Each rank's sums are its share of the job's means: all of them are saved (so every rank calls
            # this), and so is each rank's MLX key, which differs between the ranks (seeding.seed_rank_apart).
            gathered = collectives.all_gather_object({"running": running, "mlx": self._run.mlx_key()})
            running = {"ranks": [g["running"] for g in gathered]}
            mlx_keys = [g["mlx"] for g in gathered]
            # A buffer each rank updates from its own batches (a DINO centre the loss reads) is rank 0's on
            # every rank after a resume: so here too, or a resumed run trained other weights than this one.
            collectives.broadcast_running_statistics(self.module)
        if self.is_global_zero:  # (the loggers of the other ranks write nothing)
            for lg in self.loggers:
                if isinstance(lg, Logger):
                    lg.flush()  # on disk before the checkpoint that covers it (a crash later keeps it)
        # Every rank runs the checkpoint hooks, as Lightning's (a hook that calls a collective, or counts its
        # saves, stays in step on every rank); rank 0 alone writes.
        state = self._run.state_dict(running, waiting_logs, mlx_keys)
        if self._train_step is not None and self._train_step.frozen_written:
            state["step_frozen_written"] = self._train_step.frozen_written
        # The datamodule's first, under its class's name, as in Lightning: the callbacks see it (and may
        # edit it); filed under "datamodule" after them.
        datamodule_key = hook_state.save_datamodule_state(self.datamodule, state, self.profiler)
        added_by: dict[str, str] = {}
        for cb in self.callbacks:
            before = set(state)
            with (
                self._stopping.naming_interrupts_from(f"{type(cb).__name__}.on_save_checkpoint"),
                hook_logs.running_hook(self, "on_save_checkpoint"),  # (self.log there: refused, as Lightning)
                self.profiler.profile(f"[Callback]{cb.state_key}.on_save_checkpoint"),  # (as every hook)
            ):
                try:
                    cb.on_save_checkpoint(self, self.module, state)
                except Exception as error:
                    name_the_hook(error, cb, "on_save_checkpoint")
                    raise
            added_by.update({key: type(cb).__name__ for key in state if key not in before})
        ckpt.check_callback_state(state, added_by)
        editors = [type(cb).__name__ for cb in self.callbacks if _edits_checkpoints(cb)]
        if editors:  # (a history of many epochs takes a while to check: audiotrain's own are trusted)
            ckpt.check_state_after_callbacks(state, editors)
        hook_state.file_datamodule_state(self.datamodule, state, datamodule_key)
        # The module's after the callbacks, as in Lightning.
        with (
            self._stopping.naming_interrupts_from(f"{type(self.module).__name__}.on_save_checkpoint"),
            hook_logs.running_hook(self, "on_save_checkpoint"),
            self.profiler.profile(f"[LightningModule]{type(self.module).__name__}.on_save_checkpoint"),
        ):
            hook_state.save_module_state(self.module, state, self.current_epoch, self.global_step)
        # Their arrays come back as arrays (Lightning's tensors): data in a safetensors file of their own.
        arrays_in_state = state_arrays.take_arrays(
            state, ["callbacks", *added_by, "module_state", "datamodule"]
        )
        optimizer_arrays = ckpt.flat(self.optimizer.state) if self.optimizer is not None else {}
        step_arrays = self._train_step.state.flat() if self._train_step is not None else {}
        callback_arrays = self.callbacks.state_arrays()  # (callbacks.safetensors: checked before writing)
        average: dict[str, mx.array] = {}
        if weights_only:
            state["weights_only"] = True  # (its optimizer and step files are there, empty: a complete folder)
            optimizer_arrays, step_arrays, callback_arrays = {}, {}, {}
            # No callbacks.safetensors: the weights an EMA's validation ranked it by go in the model file.
            average = average_validated_with(self.callbacks)  # (float32 beside bfloat16 weights: theirs)
        # The module's `state_dict()` where it overrides it, as Lightning saves (checked before any write).
        model_arrays = hook_state.weights_to_save(self.module, Path(path) / ckpt.MODEL_FILE, average)
        # Every rank returns once rank 0 has written (Lightning's barrier after the write): a rank that loaded
        # the path at once read no folder, or the one an earlier save left there. Where rank 0's write
        # fails, the others raise MainProcessFailed.
        written = collectives.on_main_process(
            lambda: ckpt.write_checkpoint(
                path,
                model_arrays,
                optimizer_arrays,
                step_arrays,
                state,
                callback_arrays,
                row_texts=self._run.row_texts,
                arrays_in_state=arrays_in_state,
            )
        )
        return written if written is not None else Path(path)

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore from a checkpoint folder now (if a module is attached), else at the next `fit`, `validate`,
        `test` or `predict` (which score its weights)."""
        if self.module is None or self.optimizer is None:
            ckpt.read_state(ckpt.resolve_checkpoint(path))  # fail early on a bad folder
            self._pending_ckpt = str(path)
            return
        self._restore(path, full=True)

    _hook_added_weights: frozenset[str] = frozenset()  # (`fit`'s early load hook: see `read_checkpoint`)

    def _restore(self, path: str | os.PathLike, full: bool, hooks: bool = True) -> None:
        """Load a checkpoint into the attached module (`full`: the optimizer and the run's state too, and the
        datamodule's); `hooks=False` where `fit` gave the datamodule its state and called the module's
        `on_load_checkpoint` before it asked for loaders and configured the optimizer."""
        # Every file read before any is applied: a save of a running fit that replaces the folder meanwhile
        # makes the read again, so the weights and the state are of one save.
        # The module's `on_load_checkpoint` first, as Lightning's `restore_model`: it may rebuild a layer the
        # weights then load into (a head sized by what the checkpoint recorded).
        module = self.module

        def module_hook(state: dict[str, Any], model_file: Path) -> frozenset[str]:
            with hook_logs.running_hook(self, "on_load_checkpoint"):
                return hook_state.load_module_state_before_weights(module, state, model_file)

        contents = read_checkpoint(
            path, module, full, module_hook if hooks else None, self._hook_added_weights
        )
        folder, state = contents.folder, contents.state
        # `fit`'s resume ran the module's and the callbacks' `on_load_checkpoint` on its read of this save:
        # what they rewrote there (a logger's state, the run's progress, not only the callbacks' entries)
        # is what is restored, as Lightning restores from the one dict its hooks got. Only for `fit`'s own
        # restore, and only where the save read again is the one the hooks saw (a running fit may have
        # replaced the folder meanwhile; a fit that failed before this leaves it behind).
        early, self._early_restore = self._early_restore, None
        hooked = not hooks and early is not None and early[0] == _state_text(state)
        if hooked:
            state = early[1]
        if full:  # (before anything is loaded)
            resume.refuse_weights_only(folder, state)
            for cb in self.callbacks:  # (parameter groups, an accumulation schedule: as the run had them)
                cb.on_restore_structure(self, self.module, state)
            if self._train_step is not None:
                self._follow_accumulation(self.module)  # (a step for the window the checkpoint may hold open)
            resume.check_accumulation(folder, state, self.accumulate_grad_batches)
            if self.is_global_zero:  # (one warning for the job)
                resume.check_global_batch(
                    folder, state, resume.global_batch(self.world_size, self._train_loader)
                )
        # (A ModelCheckpoint resuming a moved run folder finds its checkpoints by it.)
        self._ckpt_path = str(folder)
        module = self.module
        if hook_state.overrides(module, "load_state_dict"):  # (Lightning's `strict_loading and strict`)
            hook_state.load_weights(module, contents.model, module.strict_loading, folder / ckpt.MODEL_FILE)
        else:
            module.update(ckpt.merge_flat(module.parameters(), contents.model))
        if not full:  # (evaluation: the weights it was validated with, an EMA's average, as in Lightning)
            module.update(ckpt.merge_flat(module.parameters(), contents.validated))
        mx.eval(module.parameters())
        fresh = self._run.load_trainable(folder, state) if full else frozenset()
        if not full:
            # Lightning's `restore_callbacks` runs in validate/test/predict too, after the module's hook: a
            # callback that swaps in what its save hook stored (an EMA's weights) would else do nothing.
            with ckpt.named_source(folder / ckpt.STATE_FILE), hook_state.datamodule_state_shown(state):
                for cb in self.callbacks if hooks else ():
                    with hook_logs.running_hook(self, "on_load_checkpoint"):
                        cb.on_load_checkpoint(self, module, hook_state.with_run_counters(state))
                # Then their `load_state_dict`, as Lightning 2.6.6's `restore_callbacks` does in these stages
                # too: a callback that evaluates with what it kept (an EMA's count, a best score) has it.
                saved = state.get("callbacks")
                if hooks and isinstance(saved, dict):
                    self.callbacks.load_state_dict(saved, how="loaded")
                    self.callbacks.load_state_arrays(
                        ckpt.read_callback_arrays(folder), saved, folder / ckpt.CALLBACKS_FILE
                    )
            return
        if hooks:
            hook_state.load_datamodule_state(self.datamodule, state, self.profiler)
        load_optimizer_state(contents, self.optimizer, fresh)
        load_step_state(contents, self._train_step)
        self._train_step.keep_frozen_written(state.get("step_frozen_written", ()))
        with ckpt.named_source(folder / ckpt.STATE_FILE):
            # Lightning's order: `on_load_checkpoint` first, so that it may rewrite the state that
            # `load_state_dict` gets (`checkpoint["callbacks"][state_key]` of an older release), and before
            # the run's counters come back (Lightning's `restore_training_state` follows it), so that it sees
            # the Trainer as the module's `on_load_checkpoint` did: epoch and step 0 in a new Trainer.
            # (`fit`'s early hooks only for `fit`'s own restore: a fit that failed before it leaves them
            # behind, and a later `load_checkpoint` of another checkpoint runs the hooks on its own)
            saved = (
                state.get("callbacks", {}) if hooked else self._callbacks_load_hooks(module, folder, state)
            )
            self._run.load_state_dict(state, folder / ckpt.STATE_FILE)
            self.callbacks.load_state_dict(saved)
            self.callbacks.load_state_arrays(contents.callbacks, saved, folder / ckpt.CALLBACKS_FILE)
            for cb in self.callbacks:
                if isinstance(cb, ModelCheckpoint):
                    cb.adopt_moved_state(self, state)
            saved_kinds = state.get("logger_kinds")
            for lg, lg_state in match_states(self.loggers, state.get("loggers", []), saved_kinds):
                if hasattr(lg, "load_state_dict"):
                    lg.load_state_dict(lg_state)
        self._keep_checkpoint_seed(folder, state)
        mx.eval(self._train_step.eval_targets)

    # (`fit`'s read of the checkpoint it resumes, as text, and its state as the load hooks left it)
    _early_restore: tuple[str, dict[str, Any]] | None = None

    def _callbacks_load_hooks(
        self, module: TrainModule, folder: Path, state: dict[str, Any]
    ) -> dict[str, Any]:
        """Every callback's `on_load_checkpoint` on the checkpoint's `state`; returns its callbacks' states,
        which a hook may have rewritten, for their `load_state_dict`."""
        # (the datamodule's state under its class's name too, as Lightning's dict has it for them)
        with ckpt.named_source(folder / ckpt.STATE_FILE), hook_state.datamodule_state_shown(state):
            for cb in self.callbacks:
                with (
                    hook_logs.running_hook(self, "on_load_checkpoint"),  # (self.log there: refused)
                    self.profiler.profile(f"[Callback]{cb.state_key}.on_load_checkpoint"),
                ):
                    cb.on_load_checkpoint(self, module, hook_state.with_run_counters(state))
        return state.get("callbacks", {})

    def _keep_checkpoint_seed(self, folder: Path, state: dict[str, Any]) -> None:
        """A resumed run goes on with the seed it started with (`resume.checkpoint_seed`): `trainer.seed` and
        the loaders that take the Trainer's seed take it."""
        saved, warning = resume.checkpoint_seed(folder, state, self.seed, seed_given=self._seed is not None)
        if saved is None:
            return  # the same seed, or a checkpoint that records none
        if self.is_global_zero:
            warnings.warn(warning, UserWarning, stacklevel=4)
        if self._seed is not None:
            self._seed = saved
        else:  # (not noted as the user's: `seed_given` of a later resume, and seed_everything, see it)
            self._checkpoint_seed = (saved, seed_everything_calls())
        for loader in self._loaders_on_trainer_seed:
            give_trainer_seed(loader, saved)

    # ---- reporting: interval and epoch means, history, loggers -----------------------------------------
    @property
    def history(self) -> dict[str, list]:
        """Per-epoch history as columns: epoch, step, time, learning_rate, train_*, and what the epoch's
        validation reported under the names it logged them with (None where absent)."""
        return self._run.history.columns()

    def export_history(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write `history` as JSON (columns of per-epoch values; for a `.csv` path, CSV: a header and a row
        per epoch, an empty cell where an epoch has no value), atomically; returns the path. An existing
        file there is replaced only with `overwrite` (else a `FileExistsError` naming it), or where it is a
        history this wrote. Under data parallel every rank writes its own (the same epochs; a shared folder
        ends with one of them whole), so each can read the file once this returns."""
        return reporting.write_history(self.history, path, overwrite=overwrite)

    def learning_rate(self) -> float:
        """The rate the optimizer's last update used (MLX's optimizer keeps it; its first scheduled value
        before any update), as a float: the history's and the progress bar's `learning_rate`. The coming
        update's rate, Lightning's `get_last_lr()`, is `module.optimizers().param_groups[0]["lr"]`. NaN
        before `fit` has set up an optimizer, and for one without a single rate (MLX's Adafactor with its
        default `relative_step=True` sets each parameter's). Reading it waits for the step in flight."""
        if self.optimizer is None or not has_learning_rate(self.optimizer):
            return float("nan")
        lr = self.optimizer.learning_rate
        return rate_as_given(float(lr.item() if isinstance(lr, mx.array) else lr))  # 0.1, not 0.10000000149

    # Per-step logging and the progress bar's numbers, held by `StepLogging` (train/step_logging.py).
    def is_logging_step(self) -> bool:
        """Whether the current global step is one the loggers get the interval means at (every
        `log_every_n_steps`)."""
        return self._step_logging.is_logging_step()

    def _logging_step(self) -> int:
        """The loggers' step now (`StepLogging.logging_step`): the global step, or a manual module's
        batches."""
        return self._step_logging.logging_step()

    def elapsed(self) -> float:
        """Seconds `fit` has run so far, plus those of the runs a resumed fit continues (what `max_time`
        counts)."""
        return self._run.elapsed()

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Write `metrics` (name → number) to every logger at `step` (rank 0 alone under data parallel),
        and keep them in `logged_metrics`. Not `callback_metrics`: what EarlyStopping or ModelCheckpoint
        monitor comes from `self.log` in the module, or a callback's own entry there."""
        self._step_logging.log_metrics(metrics, step)

    def progress_metrics(self) -> dict[str, float]:
        """Numbers for the progress bar: the loss and metrics of the last step already evaluated, and the
        validation metrics (`StepLogging.progress_metrics`)."""
        return self._step_logging.progress_metrics()

    def epoch_progress_metrics(self) -> dict[str, float]:
        """`progress_metrics()` as the summary of the epoch that is ending, read in `on_train_epoch_end`:
        each training value the bar shows per step shows its epoch mean
        (`StepLogging.epoch_progress_metrics`)."""
        return self._step_logging.epoch_progress_metrics()

    @property
    def progress_bar_metrics(self) -> dict[str, float]:
        """Lightning's name for `progress_metrics()`, with the last step's values (`StepLogging`)."""
        return self._step_logging.progress_bar_metrics()

    def _log_train_interval(self, hook_logs: bool = True) -> None:
        """The logging interval's means to the loggers and `callback_metrics` (`StepLogging`), then the
        non-finite stop's check of the steps they cover."""
        if self._step_logging.log_train_interval(hook_logs):
            self._check_nonfinite()

    def _check_nonfinite(self) -> None:
        """Stop with FloatingPointError after `max_consecutive_nonfinite` non-finite steps in a row (with
        checkpointing, the last good state saved first): `NonFiniteWatch.check`."""
        save = self._save_nonfinite if self.enable_checkpointing else None
        self._nonfinite.check(self._train_step.state.arrays, self.global_step, save)

    def _save_nonfinite(self) -> Path:
        # The stop comes before the epoch's end has run (validation, hooks, history row), also where the
        # streak is read at that end: the checkpoint keeps the epoch open at its last batch, so a resume runs
        # that end first, as after a Ctrl-C there (saved as done, it skipped to the next epoch).
        self.progress.epoch_complete = False
        return self.save_checkpoint(self.callbacks.checkpoint_folder(self.default_root_dir) / "nonfinite")


# What `_train_batch` returns where the module's `on_train_batch_start` returned -1.
_SKIP_REST_OF_EPOCH = object()
# `fit`'s validation loader until the first validation asks for it (`_first_epoch_skips_validation`).
_VAL_LOADER_AT_FIRST_VALIDATION = object()


def _no_evaluation_loop(name: str, stage: str) -> AttributeError:
    """What a callback ported from Lightning that reads `trainer.<name>` (its loop object) is told."""
    loaders = {"val": "val_dataloaders", "test": "test_dataloaders", "predict": "predict_dataloaders"}[stage]
    results = (
        "the predictions are what trainer.predict returns (or a BasePredictionWriter callback's)"
        if stage == "predict"
        else "the stage's means are in trainer.callback_metrics and what the call returns"
    )
    return AttributeError(
        f"Trainer.{name}: Lightning's loop object has no counterpart here (the Trainer runs the stage)"
        f"{'' if stage == 'predict' else ' but its batch_progress'}. "
        f"Read trainer.num_{stage}_batches (its batch count), trainer.{loaders} (its loader) and "
        f"trainer.state.stage; {results}"
    )


def _no_device_count(name: str) -> AttributeError:
    return AttributeError(
        f"Trainer.{name}: Lightning's per-node device index has no counterpart here: one MLX process drives "
        "one device (Trainer(devices=1)), data parallel runs one process per device (mlx.launch -n N), and "
        "the hosts of a launch are not told apart (num_devices is world_size, num_nodes 1). Read "
        "trainer.world_size (the processes), trainer.global_rank and trainer.local_rank (this one's), "
        "trainer.device (its mx.Device)"
    )


def _no_scheduler_list(name: str) -> AttributeError:
    """What a Lightning callback reading `trainer.<name>` (to log or adjust the rate) is told: an
    AttributeError, so that `hasattr` stays False, saying where the schedule is."""
    return AttributeError(
        f"Trainer.{name}: Lightning's list of torch schedulers that the loop steps has no counterpart here: "
        "a schedule is the optimizer's learning rate, a function of its step evaluated inside the compiled "
        "update (trainer.optimizer_config.optimizer holds it, and nothing steps it by hand). Read the rate "
        "the last update used with trainer.learning_rate(), or log it with a LearningRateMonitor"
    )


class _OptimizerList(list):
    """`trainer.optimizers`: a list, whose index past its end (`trainer.optimizers[1]`, a port of
    Lightning's two optimizers) raises an IndexError saying where a MultiOptimizer's optimizers are,
    instead of Python's bare "list index out of range"."""

    def __getitem__(self, index: Any) -> Any:
        try:
            return super().__getitem__(index)
        except IndexError:
            if not self:
                raise IndexError(
                    f"trainer.optimizers[{index}]: no optimizer yet; the Trainer configures it when fit "
                    "starts (configure_optimizers), as Lightning's list is empty before"
                ) from None
            raise IndexError(
                f"trainer.optimizers[{index}]: the Trainer steps one optimizer (MLX updates all parameters "
                "in one compiled step), so trainer.optimizers has one. Several optimizers or learning rates "
                "are one optim.MultiOptimizer: its optimizers are trainer.optimizers[0].optimizers[i] and "
                "their rates trainer.optimizers[0].param_groups[i]['lr']"
            ) from None


def _shown_limit(limit: int | float | None) -> int | float:
    return 1.0 if limit is None else limit


__all__ = ["Trainer"]


def _eval_networks(module: TrainModule, in_eval: set[str]) -> tuple[list[str], list[str]]:
    """Of the outermost submodules in eval mode that hold layers of their own (a teacher, a backbone; not a
    lone BatchNorm frozen on purpose), those whose weights are all frozen and those with weights that train,
    named as `Trainer._warn_of_eval_mode` names them: a teacher left trainable is updated by the optimizer
    (weight decay) although no gradient reaches it, which its eval mode hides."""
    frozen, training = [], []
    for name, sub in module.named_modules():
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        if not name or name not in in_eval or any(p in in_eval for p in parents):
            continue
        if len(sub.named_modules()) < 2:
            continue
        if tree_flatten(sub.trainable_parameters()):
            training.append(name)
        elif tree_flatten(sub.parameters()):
            frozen.append(name)
    return sorted(frozen), sorted(training)


def _kept_in_eval_by_train(module: TrainModule) -> set[str]:
    """The submodules (named as `Trainer._warn_of_eval_mode` names them) that ``module.train()`` itself leaves
    in eval mode, where the module overrides `train`; every module's mode is given back as it was."""
    if type(module).train is nn.Module.train:
        return set()
    modes = [(m, m.training) for _, m in module.named_modules()]
    try:
        module.train()
        return {name or type(module).__name__ for name, m in module.named_modules() if not m.training}
    except Exception:  # (an override that needs its mode given, or fails: nothing known, all are named)
        return set()
    finally:
        for m, training in modes:
            m._set_training_mode(training)


def _edits_checkpoints(callback: Callback) -> bool:
    """Whether `callback` is the user's and has an `on_save_checkpoint`, which may edit the Trainer's
    entries."""
    hook = getattr(type(callback), "on_save_checkpoint", None)
    return hook is not Callback.on_save_checkpoint and not type(callback).__module__.startswith("audiotrain.")


def _state_text(state: dict[str, Any]) -> str:
    """A checkpoint's state as text, to tell two reads of one save (NaN equal to NaN, unlike ==)."""
    return json.dumps(state, sort_keys=True, default=repr)
