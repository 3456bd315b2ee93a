"""`create_trainer`: a configured run of the shared Trainer from a preset, a file and overrides (seed 003).

>>> trainer = audiotrain.create_trainer(module, config="production", learning_rate=1e-5, num_epochs=20)
>>> result = trainer.train(train_loader, val_loader)      # history, best checkpoint, run folder
>>> trainer.evaluate(test_loader)                          # {"test_loss": ..., ...}
>>> outputs = trainer.predict(loader)                      # one output per batch
>>> cv = trainer.train_with_cv(dataset, folds=5, groups=song_of_sample)   # cv.mean, cv.std, cv.table(), cv.oof
>>> trainer.save_checkpoint("manual"); trainer.load_checkpoint("manual")   # the next train() resumes there

The settings are a `audiotrain.trainer_config.TrainerConfig` (see there for presets and precedence). The run
folder (``run.run_dir``, default ``runs/<run_name or module>-<date>-<time>``) receives ``config.yaml`` (the
resolved config: ``create_trainer(module, config="RUN/config.yaml", run_dir="RUN2")`` repeats the run),
``checkpoints/`` (``best`` by ``training.monitor`` and ``last``, each holding the resolved config too, under
``run_config`` in its trainer_state.json, which ``config=`` also reads) and ``history.json``. A run folder
that already holds files is refused unless ``train(..., overwrite=True)``: a config.yaml names its own run's
folder, so a repeat needs another ``run_dir``, or ``overwrite=True`` to replace that run. ``training.seed``
seeds data order, dropout and augmentation when `train` starts; the module's weights come from the seed only
when ``seed_everything(training.seed)`` ran before the module was built (a fresh `train` warns otherwise,
see `ConfiguredTrainer._warn_if_weights_unseeded`).

Data parallel (``python -m audiotrain launch -n N -- python script.py``): every rank runs the same script;
rank 0 picks the default run folder's name and alone writes the run files, as the Trainer writes
checkpoints; a refused run folder is refused on every rank.

The optimizer and schedule come from the ``optimizer`` and ``scheduler`` sections unless the module defines
its own ``configure_optimizers``; then the module's wins and those two sections are reported as unused.

``training.eval_strategy`` says when the run validates: ``epoch`` (each epoch's end), ``steps`` (every
``training.eval_steps`` training batches, across epoch ends; the best checkpoint and early stopping then act
after each validation) or ``no`` (never: ``training.monitor`` must be a ``train_`` metric). Callbacks written
for seed 003 (``on_epoch_end(trainer, state)``) are called through `audiotrain.training_hooks`. Other trainer
classes are built by name: ``register_trainer("mine", MyTrainer)``, then
``create_trainer(module, trainer_type="mine")``.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import dataclasses
import difflib
import importlib
import json
import math
import os
import warnings
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audiotrain._arguments import settings_repr
from audiotrain._build import build_version
from audiotrain._caller import user_stacklevel
from audiotrain._files import write_text_atomically
from audiotrain._warning_filters import ignoring_warnings
from audiotrain.cross_validation import (
    CV_FILES,
    CVResult,
    check_labels,
    cv_outputs,
    fold_folders,
    grouped_folds,
    write_out_of_fold,
)
from audiotrain.data import DataLoader, Dataset, Subset
from audiotrain.data.dataset import check_dataset, is_iterable_dataset
from audiotrain.distributed import collectives
from audiotrain.integrations import MLflowCallback
from audiotrain.metrics.classification import compute_confusion_matrix
from audiotrain.recipes._run import (
    RUN_FOLDER_ENTRIES,
    OwnEntries,
    clear_run_outputs,
    create_run_folder,
    holds_files,
    holds_run_record,
    is_inside,
    shared_run_folder_name,
)
from audiotrain.recipes.config_cli import RUN_CONFIG_KEY, ConfigInCheckpoint
from audiotrain.train import checkpoint as ckpt
from audiotrain.train import hook_state, seeding
from audiotrain.train.callbacks import Callback, EarlyStopping, ModelCheckpoint
from audiotrain.train.callbacks._monitor import MetricNotLoggedError
from audiotrain.train.evaluation import eval_mode
from audiotrain.train.interrupt import interactive_session, stop_exit_status
from audiotrain.train.loaders import check_batch, loader_len
from audiotrain.train.module import OptimizerConfig, TrainModule
from audiotrain.train.schedulers import WarmupCosineScheduler, WarmupLinearScheduler
from audiotrain.train.state import RandomState
from audiotrain.train.step import EvalStep
from audiotrain.train.trainer import Trainer
from audiotrain.trainer_config import (
    TrainerConfig,
    TrainingSettings,
    checked_config,
    recorded_builds,
    resolve_config,
    setting_source,
    write_config,
)
from audiotrain.training_hooks import TrainingHookAdapter, wrap_training_hooks

import mlx.core as mx
import mlx.optimizers as optim
import numpy as np


class CrossValidationStopped(SystemExit, KeyboardInterrupt):
    """A stop signal (Ctrl-C, SIGTERM) stopped a fold of `train_with_cv`, which saved that fold and scored
    nothing of it. Code that catches KeyboardInterrupt (a sweep loop, an app) catches it; met by nothing, a
    script ends with the status a shell gives a command that signal stopped (130 for Ctrl-C, 143 for
    SIGTERM), without a traceback, as `SaveAborted` does."""


def cross_validation_stopped() -> KeyboardInterrupt:
    """A plain KeyboardInterrupt in an interactive session (where a SystemExit would end it), else
    `CrossValidationStopped`."""
    return KeyboardInterrupt() if interactive_session() else CrossValidationStopped(stop_exit_status())


def _batches_of_max_steps(max_steps: int, accumulate: int, per_epoch: int | None) -> tuple[int, str]:
    """The training batches a run of `max_steps` optimizer steps reads, and how that was counted. An epoch's
    last window may be short (its step is taken at the epoch's end), so with accumulation an epoch of
    `per_epoch` batches takes ceil(per_epoch / accumulate) steps; without its length, the most it can be."""
    if accumulate == 1:
        return max_steps, f"max_steps {max_steps}"
    if per_epoch is None:
        return max_steps * accumulate, f"max_steps {max_steps} x {accumulate} accumulated"
    steps_per_epoch = -(-per_epoch // accumulate)
    epochs, steps_left = divmod(max_steps, steps_per_epoch)
    batches = epochs * per_epoch + min(steps_left * accumulate, per_epoch)
    return batches, (
        f"max_steps {max_steps}, {steps_per_epoch} an epoch of {per_epoch} batches {accumulate} accumulated"
    )


class MonitorCheck(Callback):
    """``training.monitor`` against what validation logs, named as the setting from its source (a file,
    ``overrides``): the run's ModelCheckpoint and EarlyStopping, which the user never made, would name
    themselves. Checked at the sanity check (before training) where one runs; `as_setting` renames their
    error at the first validation otherwise."""

    def __init__(self, monitor: str, source: str):
        self.monitor, self.source = monitor, source

    def on_sanity_check_end(self, trainer: Trainer, module: TrainModule) -> None:
        logged = trainer.evaluation.sanity_check_names
        if not logged or not self.monitor.startswith("val_") or self.monitor in logged:
            return
        close = difflib.get_close_matches(self.monitor, sorted(logged), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise MetricNotLoggedError(
            f"{self._unlogged()}{hint}; validation logs: {', '.join(sorted(logged))}. Found by the sanity "
            "check before training"
        )

    def _unlogged(self) -> str:
        return f"{self.source}: training.monitor {self.monitor!r} was not logged"

    def as_setting(self, error: BaseException) -> MetricNotLoggedError | None:
        """ModelCheckpoint's or EarlyStopping's error for the monitored metric, naming training.monitor and
        its source instead; None for any other error."""
        if not isinstance(error, MetricNotLoggedError):
            return None
        message = str(error)
        for owner in ("ModelCheckpoint", "EarlyStopping"):
            head = f"{owner}: monitored metric {self.monitor!r} was not logged"
            if message.startswith(head):
                return MetricNotLoggedError(f"{self._unlogged()}{message[len(head) :]}")
        return None


@dataclass
class TrainResult:
    """What `ConfiguredTrainer.train` produced."""

    run_dir: Path
    history: dict[str, list]
    best_checkpoint: Path | None
    last_checkpoint: Path | None


def optimizer_from_config(config: TrainerConfig, total_steps: int | None) -> OptimizerConfig:
    """The optimizer and per-step schedule of the ``optimizer`` / ``scheduler`` sections, spread over
    `total_steps` optimizer steps (None: unknown, refused unless the rate is constant)."""
    o, s = config.optimizer, config.scheduler
    if total_steps is None:
        if needs_schedule_length(config):
            raise ValueError(_UNKNOWN_SCHEDULE_LENGTH.format(type=s.type, warmup=s.warmup_ratio))
        total_steps = 1  # (a constant rate: no step count enters it)
    # Rounded up, as Hugging Face's Trainer does (TrainingArguments.get_warmup_steps), whose warmup_ratio this
    # is: the same ratio and step count give the same schedule there and here.
    warmup = math.ceil(s.warmup_ratio * total_steps)
    if s.type == "cosine":
        lr = WarmupCosineScheduler(
            o.learning_rate, warmup, total_steps, min_lr=o.learning_rate * s.min_lr_ratio
        )
    elif s.type == "linear":
        lr = WarmupLinearScheduler(peak_lr=o.learning_rate, warmup_steps=warmup, total_steps=total_steps)
    elif warmup > 0:  # constant after the warmup: a decay from the peak to the peak
        lr = WarmupLinearScheduler(o.learning_rate, warmup, total_steps, min_lr=o.learning_rate)
    else:
        lr = o.learning_rate
    # torch.optim's AdamW / Adam / SGD, which a PyTorch-style config means (MLX's Adam leaves out the bias
    # correction unless asked: its first updates are about 3x the learning rate).
    if o.type == "adamw":
        optimizer = optim.AdamW(lr, weight_decay=o.resolved_weight_decay, bias_correction=o.bias_correction)
    elif o.type == "adam":
        optimizer = optim.Adam(lr, bias_correction=o.bias_correction)
    else:
        optimizer = optim.SGD(lr, momentum=o.momentum, weight_decay=o.resolved_weight_decay)
    return OptimizerConfig(optimizer=optimizer, lr_schedule_name=f"warmup_{s.type}")


def needs_schedule_length(config: TrainerConfig) -> bool:
    """Whether the config's schedule is spread over the run's optimizer steps (a warmup or a decay)."""
    return config.scheduler.type != "constant" or config.scheduler.warmup_ratio > 0


# Refused rather than guessed (as HF's Trainer refuses it): a guessed length puts the warmup and the decay
# where the user never asked.
_UNKNOWN_SCHEDULE_LENGTH = (
    "create_trainer: the training loader has no length (len()), so the schedule of scheduler.type {type!r} "
    "(scheduler.warmup_ratio {warmup}) has no number of optimizer steps to spread its warmup and decay over. "
    "Set training.max_steps to the optimizer steps the run takes (create_trainer(..., max_steps=N), or "
    "max_steps: N under training: in the config file), or training.limit_train_batches (batches per "
    "epoch), or give a loader with a length; or train at a constant rate (scheduler.type 'constant', "
    "scheduler.warmup_ratio 0)"
)


class ConfiguredTrainer:
    """The shared Trainer set up from a `TrainerConfig`, with seed 003's ``train`` / ``evaluate`` / ``predict``.

    Attributes:
        module: the TrainModule.
        config: the resolved config.
        trainer: the shared `audiotrain.Trainer` (after `train`; `evaluate` / `predict` use it too).
    """

    def __init__(
        self, module: TrainModule, config: TrainerConfig, callbacks: Sequence[Callback | Any] | None = None
    ):
        if not isinstance(module, TrainModule):
            raise TypeError(f"create_trainer: expected a TrainModule, got {type(module).__name__}")
        if not isinstance(config, TrainerConfig):
            raise TypeError(f"{type(self).__name__}: expected a TrainerConfig, got {type(config).__name__}")
        self.module = module
        # Checked again (a copy): one edited field by field, or built here directly, skipped the checks that
        # a file's or an override's value gets, and would fail in training (a KeyError for its optimizer).
        given = config
        self.config = config = checked_config(config, f"{type(self).__name__}(config=...)")
        if hasattr(given, "_sources"):  # where each setting came from (`setting_source`)
            config._sources = given._sources
        # One callback alone is taken, as the shared Trainer (and Lightning's callbacks=) takes it; a seed 003
        # callback need not subclass Callback, so anything that is not a collection of them is one.
        single = isinstance(callbacks, Callback) or not (callbacks is None or isinstance(callbacks, Iterable))
        self.extra_callbacks = [callbacks] if single else list(callbacks or [])
        self._trained = False  # set by `train`: the module's weights have then seen the training data
        self._resume_from: str | None = None  # set by `load_checkpoint`: the next `train` resumes there
        self.run_dir = Path(config.run.run_dir) if config.run.run_dir else self._default_run_dir()
        self.trainer = self._make_trainer()
        # The module exists already, so training.seed (which the Trainer seeds at fit) cannot have drawn its
        # weights; a seed_everything(training.seed) before it was built did (`_warn_if_weights_unseeded`).
        self._seeded_before = seeding._last_seed  # (read through the module: seed_everything rebinds it)
        self._weights_seed_checked = False
        self._loader_batch_size_said = False  # (train_with_cv says it once for all of its folds)
        self._overwrite_log: Callable[[str], None] = print  # (train_with_cv's folds: said by it instead)
        self._config_optimizer = type(module).configure_optimizers is TrainModule.configure_optimizers
        if self._config_optimizer:
            # No optimizer of its own: the config's. (An instance attribute, so the class is untouched.)
            object.__setattr__(
                module,
                "configure_optimizers",
                lambda: optimizer_from_config(self.config, self._total_steps()),
            )
        else:
            warnings.warn(
                f"create_trainer: {type(module).__name__} defines configure_optimizers, which is used; the "
                "config's optimizer and scheduler sections are not",
                stacklevel=user_stacklevel(),
            )

    def __repr__(self) -> str:
        """The module, the run folder and the config's training length and monitor, and where its Trainer
        is: ``ConfiguredTrainer(MyModel, run_dir='runs/mymodel-...', num_epochs=10, monitor='val_loss',
        mode='min', current_epoch=10, global_step=130, state='finished')``."""
        t = self.config.training
        settings = {"run_dir": str(self.run_dir), "num_epochs": t.num_epochs}
        settings.update({"max_steps": t.max_steps} if t.max_steps is not None else {})
        settings.update(monitor=t.monitor, mode=t.mode)
        if self.trainer.state.status != "initializing":
            settings.update(current_epoch=self.trainer.current_epoch, global_step=self.trainer.global_step)
            settings["state"] = self.trainer.state.status
        return settings_repr("ConfiguredTrainer", settings, type(self.module).__name__)

    def _name(self) -> str:
        label = self.config.run.run_name or self.config.kaggle.competition_name
        return label or type(self.module).__name__.lower()

    def _default_run_dir(self) -> Path:
        """``runs/<name>-<date>-<time>`` not taken yet (created by `train`), the same on every rank."""
        return shared_run_folder_name(self._name())

    def _total_steps(self) -> int | None:
        """Optimizer steps the fit takes, for the config's schedule; None for a loader without a length and
        no training.max_steps (`optimizer_from_config` refuses a schedule then)."""
        steps = self.trainer.estimated_stepping_batches
        return int(steps) if steps != float("inf") else None

    def _check_schedule_length(self, train_loader: Any) -> None:
        """`_UNKNOWN_SCHEDULE_LENGTH`, before the run folder is written (fit would find it only after)."""
        t = self.config.training
        bounded = t.max_steps is not None or t.limit_train_batches is not None
        unknown = not bounded and loader_len(train_loader) is None
        if self._config_optimizer and unknown and needs_schedule_length(self.config):
            s = self.config.scheduler
            raise ValueError(_UNKNOWN_SCHEDULE_LENGTH.format(type=s.type, warmup=s.warmup_ratio))

    def _source(self, name: str) -> str:
        """Where the setting `name` came from, for its errors: a file, ``overrides``, a preset."""
        return setting_source(self.config, name, f"{type(self).__name__}(config=...)")

    def _check_eval_steps(self, train_loader: Any, run: str = "the run") -> None:
        """Refuse ``training.eval_strategy: steps`` whose ``eval_steps`` exceeds the training batches of the
        run (known once the loader's length is, or from training.max_steps): it would never validate, so
        there would be no val_ metrics and no best checkpoint, without a word. Before the run folder."""
        t = self.config.training
        if t.eval_strategy != "steps":
            return
        per_epoch = loader_len(train_loader)
        if t.limit_train_batches is not None:
            per_epoch = t.limit_train_batches if per_epoch is None else min(per_epoch, t.limit_train_batches)
        lengths = []
        if per_epoch is not None:
            epochs = f"{t.num_epochs} epoch{'s' if t.num_epochs > 1 else ''}"
            lengths.append((per_epoch * t.num_epochs, f"{epochs} x {per_epoch} batches"))
        if t.max_steps is not None:  # (optimizer steps, of at most accumulate_grad_batches batches each)
            lengths.append(_batches_of_max_steps(t.max_steps, t.accumulate_grad_batches, per_epoch))
        if not lengths:
            return  # (a loader without a length: its end is not known)
        total, how = min(lengths)
        if t.eval_steps <= total:
            return
        raise ValueError(
            f"{self._source('training.eval_steps')}: training.eval_steps is {t.eval_steps}, but {run} trains "
            f"{total} batches ({how}), so it would never validate: no val_ metrics, no best checkpoint"
            f"{' and no early stopping' if t.early_stopping else ''}. Set training.eval_steps to at most "
            f"{total} (it counts training batches across epochs), or training.eval_strategy to 'epoch'"
        )

    def _warn_if_weights_unseeded(self) -> None:
        """Once: training.seed did not draw the module's weights, so config.yaml cannot repeat the run. Said
        where a seed was asked for: training.seed other than the default, or seed_everything with another
        seed (a run that never seeds anything has no seed to repeat)."""
        seed, before = self.config.training.seed, self._seeded_before
        if self._weights_seed_checked or before == seed:
            return
        self._weights_seed_checked = True
        if before is None and seed == TrainingSettings.seed:
            return
        last = (
            "audiotrain.seed_everything was never called"
            if before is None
            else f"the last seed_everything seed was {before}"
        )
        warnings.warn(
            f"create_trainer: training.seed is {seed}, but {type(self.module).__name__}'s initial weights were "
            f"drawn when it was built, before the config was read ({last}): training.seed decides the data "
            "order, dropout and augmentation, not the weights, so two runs of this config start from other "
            "weights. To repeat a run, seed before building the module: config = "
            "audiotrain.get_trainer_config(...); audiotrain.seed_everything(config.training.seed); module = "
            "MyModule(); audiotrain.create_trainer(module, config=config)",
            stacklevel=user_stacklevel(),
        )

    def _make_trainer(self) -> Trainer:
        t = self.config.training
        checkpoints = self.run_dir / "checkpoints"
        callbacks: list[Callback] = [
            ModelCheckpoint(
                dirpath=checkpoints,
                filename="best",
                monitor=t.monitor,
                mode=t.mode,
                save_top_k=1,
                save_last=True,
            ),
            ConfigInCheckpoint(self.config.to_dict()),  # a checkpoint alone says how to repeat its run
            MonitorCheck(t.monitor, self._source("training.monitor")),
        ]
        if t.early_stopping:
            callbacks.append(EarlyStopping(monitor=t.monitor, mode=t.mode, patience=t.patience))
        logger = None
        tracking = self._mlflow_callback()
        if tracking is not None:  # seed 003's MLflowCallback: the run's MLflow tracking
            logger = tracking.make_logger(
                os.environ.get("MLFLOW_TRACKING_URI") or str(self.run_dir / "mlflow.db")
            )
        elif self.config.run.mlflow:
            from audiotrain.train.loggers import LoggerConfig, build_loggers

            # The run's params and metrics, and its best checkpoint as an artifact when training ends.
            run = self.config.run
            settings = LoggerConfig(
                names="mlflow",
                experiment=run.experiment_name,
                run_name=run.run_name or self.config.kaggle.competition_name,
                tracking_uri=run.tracking_uri,
                log_model="true",
            )
            logger = build_loggers(settings, self.run_dir, setting="run.mlflow")
        # The run's settings (config.yaml's) beside the Trainer's own flags, as the recipes log theirs.
        for lg in [] if logger is None else logger if isinstance(logger, list) else [logger]:
            lg.log_hyperparams(self.config.to_dict())
        # eval_strategy "steps": every eval_steps batches, counted across epoch ends (not only within one).
        steps = t.eval_strategy == "steps"
        trainer = Trainer(
            val_check_interval=t.eval_steps if steps else 1.0,
            check_val_every_n_epoch=None if steps else 1,
            max_epochs=t.num_epochs,
            max_steps=t.max_steps,
            gradient_clip_val=t.gradient_clip,
            accumulate_grad_batches=t.accumulate_grad_batches,
            precision=t.precision,
            limit_train_batches=t.limit_train_batches,
            limit_val_batches=t.limit_val_batches,
            seed=t.seed,
            compile=t.compile,
            enable_progress_bar=t.progress_bar,
            default_root_dir=self.run_dir,
            callbacks=[*callbacks, *wrap_training_hooks(self.extra_callbacks, self)],
            logger=logger,
        )
        # Printed after Ctrl-C saves: this class resumes with `train` (the Trainer's own hint names `fit`).
        trainer.resume_hint = self._resume_call("{path!r}")
        return trainer

    def _resume_call(self, path: str) -> str:
        """The call that continues this run from the checkpoint `path` (a Python expression)."""
        val = "" if self.config.training.eval_strategy == "no" else "val_loader, "
        return f"Resume with trainer.train(train_loader, {val}ckpt_path={path})"

    def _mlflow_callback(self) -> MLflowCallback | None:
        """The one `MLflowCallback` among the extra callbacks, if any (two, or one beside ``run.mlflow``, are
        two trackings of one run: refused)."""
        found = [c for c in self.extra_callbacks if isinstance(c, MLflowCallback)]
        if len(found) > 1:
            raise ValueError("create_trainer: give one MLflowCallback (one run is tracked in one MLflow run)")
        if found and self.config.run.mlflow:
            raise ValueError(
                "create_trainer: an MLflowCallback and run.mlflow: true both track this run in MLflow; keep "
                "one (the callback's MLflowConfig, or the config's run.experiment_name / run_name)"
            )
        return found[0] if found else None

    def _loader(
        self,
        data: Any,
        shuffle: bool,
        name: str = "loader",
        cpu_transforms: Sequence[Callable] = (),
        sampler: Iterable | None = None,
    ) -> Iterable | None:
        """`data` batched with ``data.batch_size`` where it is a dataset of samples: an `audiotrain.Dataset`, or
        any map-style one (``__len__`` and ``__getitem__``, no ``__iter__``: a torch Dataset), as
        `train_with_cv` batches it (its folds' training samples through `cpu_transforms`). Anything iterable
        (a DataLoader, a list of batches) is used as it is."""
        if isinstance(data, list) and data and not _transfers_batches(self.module):
            _refuse_a_list_of_samples(data[0], name)
        map_style = (
            hasattr(data, "__len__") and hasattr(data, "__getitem__") and not hasattr(data, "__iter__")
        )
        if isinstance(data, Dataset) or map_style:
            d = self.config.data
            return DataLoader(
                data,
                batch_size=d.batch_size,
                shuffle=shuffle,
                sampler=sampler,
                num_workers=d.num_workers,
                cpu_transforms=list(cpu_transforms),
            )
        return data

    def train(
        self,
        train_loader: Any,
        val_loader: Any = None,
        ckpt_path: str | None = None,
        *,
        overwrite: bool = False,
    ) -> TrainResult:
        """Fit (a Dataset is batched with ``data.batch_size``); the config is written to the run folder first.

        A run folder that already holds files (an earlier run's) is refused unless ``overwrite=True``, which
        removes only what a run writes there (`RUN_OUTPUTS`), or ``ckpt_path`` is a checkpoint inside it
        (resuming that run, which goes on there; one refused before it saved a checkpoint leaves the run's
        config.yaml as it was). Without ``ckpt_path``, a checkpoint given to
        `load_checkpoint` is resumed. With ``training.eval_strategy: no`` ``val_loader`` is not used.
        """
        if ckpt_path is None:
            ckpt_path = self._resume_from
        if train_loader is None and not callable(getattr(self.module, "train_dataloader", None)):
            # (checked first: the missing validation data would otherwise be named instead)
            raise TypeError(
                "train: no training data: pass train_loader (a DataLoader, a Dataset or a list of batches), "
                "or define train_dataloader on the module"
            )
        train = self._loader(train_loader, shuffle=True, name="train_loader")
        self._check_schedule_length(train)
        self._check_eval_steps(train)
        if val_loader is not None and self.config.training.eval_strategy == "no":
            warnings.warn(
                "train: val_loader is not used: training.eval_strategy is 'no' (set it to 'epoch' or "
                "'steps' to validate)",
                stacklevel=user_stacklevel(),
            )
            val_loader = None
        val = self._loader(val_loader, shuffle=False, name="val_loader")
        if val is None and self.config.training.monitor.startswith("val_"):
            raise ValueError(
                f"train: no val_loader, but training.monitor is {self.config.training.monitor!r}; pass "
                "validation data or set training.monitor to a train_ metric"
            )
        # Resuming ("last", "best" or a checkpoint in the run folder) goes on writing there.
        resuming = ckpt_path in ("last", "best") or (ckpt_path and is_inside(ckpt_path, self.run_dir))
        folder_existed = self.run_dir.exists()
        _open_run_folder(
            self.run_dir,
            _run_outputs_of_this_kind,
            overwrite,
            "train",
            "pass another run_dir to create_trainer (a run's config.yaml names that run's folder: add "
            "run_dir=...), or train(..., overwrite=True) to replace that run",
            keep=bool(resuming),
            log=self._overwrite_log,
            other_kind=_recipe_run_record,
        )
        if not resuming:
            if overwrite:  # the user's own ModelCheckpoint folders too
                for callback in self.trainer.callbacks:
                    if isinstance(callback, ModelCheckpoint):
                        callback.overwrite = True
            else:  # before anything is written: an earlier run's checkpoints where a ModelCheckpoint saves
                self.trainer.callbacks.refuse_earlier_runs(self.trainer)
        if ckpt_path is None and not self._trained:  # (a resumed or continued run's weights are not drawn)
            self._warn_if_weights_unseeded()
        resumed = self._resumed_checkpoint(ckpt_path)
        if resumed is not None:
            self._resume_as_trained(resumed)
        recorded = self._config_as_trained(train_loader)
        record = self.run_dir / "config.yaml"
        # A resume writes its settings over the run's record; kept to put back if the resume is refused.
        earlier = (
            (record.read_bytes(), _saved_checkpoints(self.run_dir))
            if resuming and _main() and record.is_file()
            else None
        )
        if _main():
            write_config(recorded, record, self._builds(resumed, bool(resuming)))
        self._trained = True
        self._resume_from = None  # (kept until now: a refused run folder leaves it for the next train)
        try:
            self.trainer.fit(self.module, train, val, ckpt_path=ckpt_path)
        except BaseException as error:
            # A run that failed before it saved anything (a bug in compute_loss at the first step) leaves
            # nothing behind: its config.yaml alone would make the fixed re-run refuse the folder.
            if _main() and not resuming:
                _remove_untrained_run(self.run_dir, created=not folder_existed)
            elif _main() and earlier is not None and _saved_checkpoints(self.run_dir) == earlier[1]:
                # Refused before it saved a checkpoint (one of another optimizer or model): the run was not
                # trained with these settings, so its config.yaml goes back to the settings it was.
                record.write_bytes(earlier[0])
            unlogged = MonitorCheck(self.config.training.monitor, self._source("training.monitor"))
            named = unlogged.as_setting(error)
            if named is not None:
                raise named from None
            raise
        if _main():
            # The run's own file: a resumed run rewrites the one its first part wrote.
            self.trainer.export_history(self.run_dir / "history.json", overwrite=True)
        # Data parallel: rank 0 wrote the checkpoints that the result names (and `evaluate` may read).
        collectives.barrier()
        checkpoint = next(cb for cb in self.trainer.callbacks if isinstance(cb, ModelCheckpoint))
        result = TrainResult(
            self.run_dir,
            self.trainer.history,
            Path(checkpoint.best_model_path) if checkpoint.best_model_path else None,
            Path(checkpoint.last_model_path) if checkpoint.last_model_path else None,
        )
        tracking = self._mlflow_callback()
        if tracking is not None and _main():  # the best checkpoint is uploaded when fit ends: register it
            if not self.trainer.interrupted:
                tracking.register(self.trainer.logger)
            elif tracking.config.register_model:
                # A fit stopped by Ctrl-C (or SIGTERM) saved and returned, but uploads nothing: there is no
                # checkpoint in the MLflow run to register. The resumed run registers when it ends.
                resume = self._resume_call(repr(str(self.trainer.interrupted_checkpoint)))
                self.trainer._note(
                    f"MLflowCallback: not registered as {tracking.config.model_name!r}: the fit was stopped "
                    "before its end, where the best checkpoint is uploaded to MLflow. "
                    f"{resume} to finish it; the model is registered when it ends"
                )
        for callback in self.trainer.callbacks:  # seed 003's on_train_end(trainer, state, result)
            if isinstance(callback, TrainingHookAdapter):
                callback.train_finished(self.trainer, result)
        return result

    def _resumed_checkpoint(self, ckpt_path: str | os.PathLike | None) -> Path | None:
        """The checkpoint folder `train` resumes (``"last"``, ``"best"`` or a path), or None; one it cannot
        find is left for `fit` to refuse, naming it."""
        if ckpt_path is None:
            return None
        try:
            folder = ckpt.resolve_checkpoint(self.trainer.callbacks.checkpoint_path(ckpt_path))
            ckpt.read_state(folder)
        except (OSError, ValueError):  # (CheckpointError is a ValueError)
            return None
        return folder

    def _resume_as_trained(self, folder: Path) -> None:
        """Go on with the optimizer the checkpoint's run trained with where its record (``run_config``, of a
        build before optimizer.bias_correction existed: Adam and AdamW corrected no bias then) lacks the
        setting and this config holds it only as a default (no file or override chose it): a resume with
        it trains otherwise than the run it continues, and config.yaml would claim the whole run used it.
        Said in one line, as a chosen value that differs is."""
        run_config = ckpt.read_state(folder).get(RUN_CONFIG_KEY)
        optimizer = run_config.get("optimizer") if isinstance(run_config, dict) else None
        settings = self.config.optimizer
        if not isinstance(optimizer, dict) or "bias_correction" in optimizer:
            return
        if settings.type == "sgd" or not settings.bias_correction:
            return
        name, source = "optimizer.bias_correction", self._source("optimizer.bias_correction")
        said = (
            f"note: {folder} was written by an older audiotrain, without {name} (its Adam and AdamW "
            "corrected no bias)"
        )
        unchosen = ("TrainerConfig default", "TrainerConfig object", f"{type(self).__name__}(config=...)")
        if source not in unchosen and not source.startswith("preset "):
            self.trainer._note(f"{said}; this resume uses {name} true, from {source}: it trains otherwise")
            return
        sources = getattr(self.config, "_sources", None)
        self.config = dataclasses.replace(
            self.config, optimizer=dataclasses.replace(settings, bias_correction=False)
        )
        if sources is not None:
            self.config._sources = {**sources, name: f"{folder} (read as its version ran)"}
        self.trainer._note(
            f"{said}; resumed as that version ran: {name} false (create_trainer(..., bias_correction=True) "
            "sets it)"
        )

    def _builds(self, resumed: Path | None, in_run_folder: bool) -> list[str]:
        """The audiotrain builds that trained this run, oldest first, for config.yaml: those of the run it
        resumes (its config.yaml's, else the build that wrote the checkpoint), then this one."""
        earlier = None
        if resumed is not None:
            if in_run_folder:
                earlier = recorded_builds(self.run_dir / "config.yaml")
            earlier = earlier or recorded_builds(resumed)
        builds = list(earlier or [])
        return builds if builds[-1:] == [build_version()] else [*builds, build_version()]

    def _other_loader_batch_size(self, loader: Any) -> int | None:
        """The batch size of a loader (not a Dataset) that batches otherwise than ``data.batch_size``."""
        size = None if isinstance(loader, Dataset) else getattr(loader, "batch_size", None)
        return size if isinstance(size, int) and size != self.config.data.batch_size else None

    def _config_as_trained(self, train_loader: Any) -> TrainerConfig:
        """The config that config.yaml and the checkpoints record for this run: ``self.config``, with
        ``data.batch_size`` the loader's own where ``train`` was given a DataLoader of another batch size
        (its batches are what trains, so a repeat of the run from config.yaml gets the same ones); said."""
        loader_batch = self._other_loader_batch_size(train_loader)
        recorded = self.config if loader_batch is None else self._with_loader_batch(loader_batch)
        for callback in self.trainer.callbacks:  # (and the optimizer a resume goes on with)
            if isinstance(callback, ConfigInCheckpoint):
                callback.settings = json.loads(json.dumps(recorded.to_dict()))
        return recorded

    def _with_loader_batch(self, loader_batch: int) -> TrainerConfig:
        """The config with the loader's batch size, said once (`_config_as_trained`)."""
        if not self._loader_batch_size_said:
            warnings.warn(
                f"train: config data.batch_size is {self.config.data.batch_size} but train_loader gives "
                f"batches of {loader_batch}; the loader's size is used (data.batch_size batches a Dataset "
                f"given to train), and config.yaml records {loader_batch}",
                stacklevel=user_stacklevel(),
            )
        return dataclasses.replace(
            self.config, data=dataclasses.replace(self.config.data, batch_size=loader_batch)
        )

    def export_history(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """The run's history (as in its history.json) as JSON at ``path``: the shared Trainer's
        `export_history`, as seed 002's Trainer and the core Trainer give it (another file there is replaced
        only with ``overwrite``)."""
        return self.trainer.export_history(path, overwrite=overwrite)

    def save_checkpoint(self, path: str | Path) -> Path:
        """Write a resumable checkpoint folder at ``path`` (the shared Trainer's: safetensors + JSON, with the
        resolved config under ``run_config``), as trained so far; returns it. A checkpoint already there is
        replaced; anything else there is refused."""
        if self.trainer.optimizer is None:  # (evaluate and predict attach the module, not an optimizer)
            raise RuntimeError(
                "save_checkpoint: nothing trained yet; a checkpoint holds the optimizer and the training "
                "state, which train() creates (to keep the weights alone: module.save_weights(path))"
            )
        path = Path(path)
        if path.exists() and not (path / ckpt.STATE_FILE).is_file():
            kind = "folder that is no checkpoint" if path.is_dir() else "file"
            raise FileExistsError(f"save_checkpoint: {path} is a {kind}; name a new folder")
        return self.trainer.save_checkpoint(path)

    def load_checkpoint(self, path: str | Path) -> None:
        """Load a checkpoint folder's weights into the module now (`evaluate` and `predict` use them) and
        resume from it at the next `train` (optimizer, schedule, epoch and step, random state)."""
        folder = ckpt.resolve_checkpoint(path)
        state = ckpt.read_state(folder)
        model_file = folder / ckpt.MODEL_FILE
        module = self.module
        what = f"{type(module).__name__} model"
        module.update(ckpt.read_tree(model_file, module.parameters(), what))
        mx.eval(module.parameters())
        hook_state.load_module_state(module, state)
        self._trained = True  # (its weights have seen training data: see train_with_cv)
        self._resume_from = str(folder)

    def evaluate(self, loader: Any, ckpt_path: str | None = None) -> dict[str, float]:
        """``test_*`` means over ``loader`` (``ckpt_path``: "best", "last" or a folder; default: as trained)."""
        (metrics,) = self.trainer.test(self.module, self._loader(loader, shuffle=False), ckpt_path=ckpt_path)
        return metrics

    def predict(self, loader: Any, ckpt_path: str | None = None) -> list[Any]:
        """The module's `predict_step` output per batch (compiled, in eval mode; default `module(batch)`)."""
        return self.trainer.predict(self.module, self._loader(loader, shuffle=False), ckpt_path=ckpt_path)

    def train_with_cv(
        self,
        data: Any,
        folds: int | None = None,
        groups: Sequence[Hashable] | None = None,
        *,
        test_loader: Any = None,
        module_factory: Callable[[], TrainModule] | None = None,
        val_fraction: float = 0.1,
        seed: int | None = None,
        run_dir: str | Path | None = None,
        overwrite: bool = False,
        log: Callable[[str], None] = print,
        train_transforms: Callable | Sequence[Callable] | None = None,
        groups_are_folds: bool = False,
        train_sampler: Callable[[list[int]], Iterable] | None = None,
        labels: Sequence[int] | None = None,
        class_names: Sequence[str] | None = None,
    ) -> CVResult:
        """K-fold cross-validation: every sample is scored by the one fold that did not train on it.

        Each fold trains a fresh module with this trainer's config on the other folds' samples (less the
        validation groups that pick its best checkpoint and stop it early), then `evaluate` scores that
        best checkpoint on the held-out fold and `predict` gives the out-of-fold outputs.

        Args:
            data: the samples: a Dataset (batched with ``data.batch_size`` / ``data.num_workers``), any
                object with ``__len__`` and ``__getitem__`` (one sample), or a DataLoader over one (each
                fold is batched like it: batch size, collate_fn, workers, transforms). A list or tuple is
                refused: `train` reads it as batches, which cannot be split by sample (a list of samples:
                ``DataLoader(samples, batch_size=...)``).
            folds: number of folds (at least 2; default ``kaggle.cv_folds``, 5).
            groups: one label per sample (a song, a clip, a speaker); no group is split between folds, or
                between a fold's train, val and test parts. Default: every sample its own group.
            test_loader: data to predict with every fold's best checkpoint, averaged into ``ensemble``
                (needs ``kaggle.enable_ensemble``; a Dataset is batched as ``data`` is).
            module_factory: builds each fold's module. Default: a copy of this trainer's module as it is now
                (so every fold starts from the same weights), refused once `train` has trained it.
            val_fraction: share of the training groups each fold validates on (0: none; then
                ``training.monitor`` must be a ``train_`` metric).
            seed: of the fold assignment (default ``training.seed``).
            run_dir: the cross-validation's folder (default ``run.run_dir``, else a new
                ``runs/<name>-cv-<date>-<time>``). A folder that already holds files is refused unless
                ``overwrite=True``, which removes only what a cross-validation writes there (in a
                ``fold<k>/``, what its `train` wrote: a user's own files there stay, and are named).
            log: where the per-fold progress lines go (default `print`; ``lambda line: None`` silences them).
            train_transforms: ``sample -> sample`` callables (a DataLoader's ``cpu_transforms``) run only in
                the folds' training loaders, before the given DataLoader's own ``cpu_transforms``, which every
                part (train, val, held-out) runs: augmentation (gain, shift, noise; drawn from `batch_rng`)
                goes here, so that validation and the scores see the samples as they are.
            groups_are_folds: the groups are the data's own folds (ESC-50's fold column): fold ``k`` holds
                out the ``k``-th group in sorted order (fold 0 the data's fold 1), as the dataset's papers
                report per fold, instead of a seeded order. ``folds`` defaults to their number.
            train_sampler: ``train_indices -> sampler`` for each fold's training loader (a DataLoader's
                own sampler is refused: the folds split its order), called with the fold's training sample
                indices (into ``data``); the sampler gives positions in that list (``0 .. len - 1``). For a
                rare class: ``lambda idx: WeightedRandomSampler(weight[idx], len(idx))``. The val and
                held-out parts are read in order, each sample once.
            labels: each sample's class index (``data``'s order), for a classifier whose `predict_step`
                returns per-class scores ``[batch, classes]``: the out-of-fold predictions (their argmax)
                get per-class precision, recall, F1 and a confusion matrix (`CVResult.class_table`, in
                ``cv_scores.md``; ``out_of_fold`` in ``cv_scores.json``) and ``oof_predictions.csv`` gets
                ``true`` and ``predicted`` columns. Checked before anything is written: one per sample,
                whole numbers within the classes, and a `predict_step` giving a score per class.
            class_names: the classes' names, in index order (needs ``labels``), for those tables and columns
                (default: the class indices).

        Each fold's Trainer gets its own copy of the callbacks given to `create_trainer` (copied as they are
        when `train_with_cv` starts), so what one fold's EarlyStopping or ModelCheckpoint has seen does not
        carry into the next; the objects passed to `create_trainer` are left untouched. A ModelCheckpoint
        with a ``dirpath`` of its own saves each fold's checkpoints to ``dirpath/fold<k>``.

        Returns:
            a `CVResult`: ``fold_scores`` (the ``test_*`` metrics of each fold), ``mean``, ``std``, ``table()``,
            ``histories``, ``fold_dirs``, ``oof`` (one `predict` output row per sample, in sample order,
            when `predict` returns arrays; else None) and ``ensemble`` (the folds' mean `predict` output on
            ``test_loader``, one row per test sample; None without one). The folder holds ``fold<k>/``
            (config.yaml, checkpoints/best and last, history.json), ``folds.json`` (each fold's sample
            indices), ``cv_scores.json`` and ``cv_scores.md`` (each metric per fold, mean and std) and,
            where there is an ``oof``, ``oof_predictions.csv`` (``sample``, ``fold``, ``group`` where groups
            are given, ``true`` and ``predicted`` where labels are, ``output_0 ..``: each sample's row of
            ``oof``). With ``labels``: ``class_names`` and ``confusion`` (``per_class`` reads it).
        """
        dataset, fold_loader = self._fold_data(data, train_transforms, train_sampler)
        if groups_are_folds and groups is None:
            raise ValueError(
                "train_with_cv: groups_are_folds=True needs groups=, the data's fold of each sample "
                "(ESC-50's fold column)"
            )
        if folds is None:
            # (By position, as grouped_folds reads them: a pandas column may be indexed by its labels.)
            try:
                folds = len(set(list(groups))) if groups_are_folds else self.config.kaggle.cv_folds
            except TypeError:  # (an unhashable group: grouped_folds names it)
                folds = self.config.kaggle.cv_folds
        test_loader = self._ensemble_loader(test_loader)
        n = len(dataset)
        if groups is not None and len(groups) != n:
            raise ValueError(
                f"train_with_cv: {len(groups)} groups for {n} samples; give one group per sample"
            )
        labels, class_names = check_labels(labels, class_names, n)
        if module_factory is None and self._trained:
            raise RuntimeError(
                "train_with_cv: this trainer's module was trained by train() (or loaded a checkpoint), so "
                "every fold would start from weights that have seen its held-out samples. Call train_with_cv "
                "before train, or pass module_factory=lambda: MyModule(...) to build each fold's module "
                "afresh"
            )
        seed = self.config.training.seed if seed is None else seed
        unit = "samples" if groups is None else "groups"
        parts = grouped_folds(
            range(n) if groups is None else groups,
            folds,
            seed,
            val_fraction,
            unit,
            source="train_with_cv",
            groups_are_folds=groups_are_folds,
        )
        monitor = self.config.training.monitor
        if monitor.startswith("val_") and not all(f.val for f in parts):  # before anything is written
            why = "val_fraction=0" if val_fraction == 0 else f"val_fraction={val_fraction} with so few {unit}"
            # (A fraction above 0 given takes none where a fold keeps one to train on: only data helps.)
            fix = f"pass val_fraction > 0 (and enough {unit})" if val_fraction == 0 else f"add {unit}"
            raise ValueError(
                f"train_with_cv: {why} leaves a fold without validation samples, but training.monitor is "
                f"{monitor!r}; {fix}, or set training.monitor to a train_ metric "
                "(create_trainer(..., monitor='train_loss'))"
            )
        for fold in parts:  # (before anything is written)
            self._check_eval_steps(fold_loader(fold.train, True), f"fold {fold.index}")
        scores = self._check_predict_step(fold_loader(parts[0].test, False))
        if labels is not None:
            _check_class_scores(scores, labels, class_names)
        self._warn_if_weights_unseeded()  # (every fold's module is a copy of it, or built after it)
        loader_batch = self._other_loader_batch_size(data)
        if loader_batch is not None:
            warnings.warn(
                f"train_with_cv: config data.batch_size is {self.config.data.batch_size} but the folds' "
                f"loaders keep the given DataLoader's batches of {loader_batch}; that size is used, and "
                "each fold's config.yaml records it",
                stacklevel=user_stacklevel(),
            )
        folder = Path(run_dir) if run_dir is not None else None
        if folder is None and self.config.run.run_dir:
            folder = Path(self.config.run.run_dir)
        folder_existed = folder is not None and folder.is_dir()
        folder = _open_run_folder(
            folder,
            cv_outputs,
            overwrite,
            "train_with_cv",
            "pass another run_dir, or overwrite=True to replace the cross-validation outputs there",
            log=log,
            prefix=f"{self._name()}-cv",
            own_entries=_fold_own_entries,
            other_kind=_recipe_cv_record,
        )
        if _main():
            write_text_atomically(
                folder / "folds.json",
                json.dumps({"seed": seed, "folds": [dataclasses.asdict(f) for f in parts]}, indent=1),
            )
        try:
            return self._run_folds(
                parts,
                folder,
                fold_loader,
                test_loader,
                n,
                groups,
                overwrite,
                log,
                module_factory,
                labels,
                class_names,
            )
        except BaseException:
            # Failed before any fold saved anything (a bug in compute_loss at fold 0's first step): the
            # fold's `train` removed its config.yaml; folds.json alone would make the fixed re-run refuse
            # the folder.
            if _main():
                _remove_untrained_run(folder, created=not folder_existed, written=("folds.json",))
            raise

    def _run_folds(
        self,
        parts,
        folder,
        fold_loader,
        test_loader,
        n,
        groups,
        overwrite,
        log,
        module_factory,
        labels=None,
        class_names=None,
    ) -> CVResult:
        """`train_with_cv`'s folds, trained and scored one after the other, then the CVResult written."""
        folds = len(parts)
        name = self._name()
        fold_scores, histories, fold_dirs, oof_parts, test_parts = [], [], [], [], []
        for fold in parts:
            log(
                f"fold {fold.index} ({fold.index + 1} of {folds}): {len(fold.train)} train / {len(fold.val)} val / "
                f"{len(fold.test)} held-out samples{_groups_said(groups, fold)}"
            )
            fold_dir = folder / f"fold{fold.index}"
            run = dataclasses.replace(
                self.config.run, run_dir=str(fold_dir), run_name=f"{name}-fold{fold.index}"
            )
            fold_config = dataclasses.replace(self.config, run=run)
            if hasattr(self.config, "_sources"):  # (its errors name where a setting came from)
                fold_config._sources = self.config._sources
            # (Said once already, by create_trainer. Hidden while the fold's trainer is built alone, beside a
            # sweep's other threads: `ignoring_warnings`.)
            with ignoring_warnings("create_trainer: .* defines configure_optimizers"):
                trainer = ConfiguredTrainer(
                    module_factory() if module_factory else self._fresh_module(),
                    fold_config,
                    self._fresh_callbacks(fold.index, overwrite),
                )
            trainer._weights_seed_checked = True  # (said once for the folds, below)
            trainer._loader_batch_size_said = True  # (said once for the folds, above)
            # With overwrite, a fold folder may still hold the user's files (the run's were removed and the
            # kept ones named above): the fold's run goes on beside them, as train(overwrite=True) would.
            trainer._overwrite_log = lambda line: None
            trainer.trainer.resume_hint = None  # (a stopped fold is not resumed: said below, with what to do)
            val = fold_loader(fold.val, False) if fold.val else None
            result = trainer.train(fold_loader(fold.train, True), val, overwrite=overwrite)
            if trainer.trainer.interrupted:
                # A Ctrl-C (or SIGTERM) stopped this fold's fit, which saved and returned as `fit` does: its
                # best checkpoint is not a trained fold's, so nothing of it is scored, and no later fold runs.
                done = (
                    f"folds 0-{fold.index - 1} trained"
                    if fold.index > 1
                    else ("fold 0 trained" if fold.index == 1 else "no fold trained")
                )
                log(
                    f"train_with_cv: fold {fold.index} was stopped (saved at "
                    f"{trainer.trainer.interrupted_checkpoint}); "
                    f"the cross-validation stops with {done} and no scores written. Rerun it with "
                    "overwrite=True (or another run_dir) to cross-validate from the start"
                )
                raise cross_validation_stopped()
            best = str(result.best_checkpoint) if result.best_checkpoint else None
            fold_scores.append(trainer.evaluate(fold_loader(fold.test, False), ckpt_path=best))
            oof_parts.append(trainer.predict(fold_loader(fold.test, False), ckpt_path=best))
            if test_loader is not None:
                test_parts.append(trainer.predict(test_loader, ckpt_path=best))
            histories.append(result.history)
            fold_dirs.append(fold_dir)
        cv = CVResult(
            folder,
            fold_scores,
            histories,
            fold_dirs,
            oof=out_of_fold(parts, oof_parts, n),
            ensemble=fold_mean(test_parts) if test_loader is not None else None,
        )
        if labels is not None and cv.oof is not None and cv.oof.ndim == 2:
            # (argmax of each sample's row, as compute_confusion_matrix reads scores; checked before fold 0
            # that the rows are per-class scores wide enough for every label)
            cv.class_names = class_names
            # A row with NaN (a fold that diverged) has no class: its argmax (0) would count as a prediction.
            scored = np.isfinite(cv.oof).all(axis=1)
            width = cv.oof.shape[1]
            cv.confusion = np.zeros((width, width), np.int64)
            if scored.any():
                cv.confusion = compute_confusion_matrix(
                    cv.oof[scored], labels[scored], num_classes=width, ignore_index=None
                )
            if not scored.all() and _main():
                unscored = sorted({fold.index for fold in parts for i in fold.test if not scored[i]})
                warnings.warn(
                    f"train_with_cv: {int((~scored).sum())} of {n} samples' out-of-fold scores are not "
                    f"finite (fold(s) {unscored}); left out of the per-class scores and confusion matrix, "
                    "and their 'predicted' is empty in oof_predictions.csv",
                    stacklevel=user_stacklevel(),
                )
        n_groups = n if groups is None else len(set(groups))
        if _main():
            cv.write(samples=n, groups=n_groups)
            if cv.oof is not None:  # (predict_step gave one array row per held-out sample)
                named = cv.confusion is not None
                write_out_of_fold(
                    folder / "oof_predictions.csv",
                    cv.oof,
                    parts,
                    groups,
                    labels if named else None,
                    class_names,
                )
        grouping = "each sample its own group" if groups is None else f"grouped: {n_groups} groups"
        classes = f"\n{cv.class_table()}" if cv.confusion is not None else ""
        log(
            f"{folds}-fold cross-validation over {n} samples ({grouping}):\n{cv.table()}{classes}\n"
            f"run folder: {folder}"
        )
        return cv

    def _check_predict_step(self, loader: Any) -> Any:
        """Run the module's `predict_step` on the first held-out batch, as each fold's `predict` will (in
        eval mode, compiled or not as the trainer is), before the folder is opened: a predict_step that
        cannot take the batches fails now, not after fold 0 has trained and left a half-written folder
        that a rerun is refused over. The random state is put back, so the folds train as without it.
        Returns its output (None without a batch)."""
        iterator = iter(loader)
        try:
            batch = next(iterator, None)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        if batch is None:
            return
        check_batch(batch)
        trainer = self.trainer
        random_before = RandomState.capture()
        try:
            with eval_mode(self.module):
                step = EvalStep(self.module, "predict", compile=trainer.compile, precision=trainer.precision)
                output = step(batch, mx.array(0, mx.int32))
                mx.eval(output)
        except Exception as error:
            if hasattr(error, "add_note"):  # (Python 3.11)
                error.add_note(
                    "train_with_cv: predict_step was tried on the first held-out batch before fold 0 "
                    "trained; nothing was written"
                )
            raise
        finally:
            RandomState.restore(random_before)
        return output

    def _ensemble_loader(self, test_loader: Any) -> Iterable | None:
        """The test batches the folds' models predict for ``kaggle.enable_ensemble``, or None (said why)."""
        enabled = self.config.kaggle.enable_ensemble
        if test_loader is not None and not enabled:
            raise ValueError(
                "train_with_cv: test_loader is given, but kaggle.enable_ensemble is false; set it "
                "(create_trainer(..., enable_ensemble=True)) to average the fold models' predictions of it"
            )
        if test_loader is None and enabled:
            warnings.warn(
                "train_with_cv: kaggle.enable_ensemble is set but there is no test data to predict; pass "
                "test_loader= (or test_dataloader= to create_kaggle_trainer). No ensemble is made",
                stacklevel=user_stacklevel(),
            )
        if isinstance(test_loader, DataLoader) and (test_loader.shuffle or test_loader._user_order):
            raise ValueError(
                "train_with_cv: test_loader shuffles (or has a sampler): each fold would predict the test "
                "samples in another order, and their average would mix samples; pass shuffle=False"
            )
        return self._loader(test_loader, shuffle=False)

    def _fold_data(
        self,
        data: Any,
        train_transforms: Callable | Sequence[Callable] | None = None,
        train_sampler: Callable[[list[int]], Iterable] | None = None,
    ) -> tuple[Any, Callable[[list[int], bool], Iterable]]:
        """(the samples, a function giving the loader of some of them for training or evaluation)."""
        if train_sampler is not None and not callable(train_sampler):
            raise TypeError(
                "train_with_cv: train_sampler must be a function of a fold's training indices that returns "
                "its sampler (lambda idx: WeightedRandomSampler(weight[idx], len(idx))), got "
                f"{train_sampler!r}"
            )

        def sampler(indices: list[int], train: bool) -> dict[str, Any]:
            """The loader's order: the fold's own sampler for training where one is given, else shuffled."""
            if train and train_sampler is not None:
                return {"shuffle": False, "sampler": train_sampler(list(indices))}
            return {"shuffle": train}

        if train_transforms is None:
            augment: list[Callable] = []
        elif callable(train_transforms):
            augment = [train_transforms]
        else:
            augment = list(train_transforms)
        for transform in augment:
            if not callable(transform):
                raise TypeError(
                    f"train_with_cv: train_transforms must be callables (sample -> sample), got {transform!r}"
                )
        if is_iterable_dataset(data.dataset if isinstance(data, DataLoader) else data):
            raise TypeError(
                "train_with_cv: the data is a stream (an iterable dataset); folds split samples by index, so "
                "pass a map-style dataset (__len__ and __getitem__), e.g. DataLoader(list_of_the_samples, "
                "batch_size=...)"
            )
        if isinstance(data, DataLoader):
            if data._user_order:
                raise TypeError(
                    "train_with_cv: the DataLoader has its own sampler, whose order the folds cannot split; "
                    "pass a DataLoader without sampler (or its dataset) and make each fold's sampler from "
                    "its training indices: train_with_cv(..., train_sampler=lambda idx: "
                    "WeightedRandomSampler(weight[idx], len(idx)))"
                )

            def from_loader(indices: list[int], train: bool) -> DataLoader:
                return DataLoader(
                    Subset(data.dataset, indices),
                    batch_size=data.batch_size,
                    **sampler(indices, train),
                    num_workers=data.num_workers,
                    persistent_workers=data.persistent_workers,
                    collate_fn=data.collate_fn,
                    drop_last=data.drop_last and train,
                    prefetch_factor=data.prefetch_factor,
                    worker_type=data.worker_type,
                    cpu_transforms=(augment if train else []) + list(data.cpu_transforms),
                    mlx_transforms=list(data.mlx_transforms),
                    seed=data.seed,
                    # (a thread loader's is unused, and passing it would warn)
                    multiprocessing_context=(
                        data.multiprocessing_context if data.worker_type == "process" else None
                    ),
                    worker_init_fn=data.worker_init_fn,
                    timeout=data.timeout,
                )

            return data.dataset, from_loader
        if isinstance(data, (list, tuple)):
            raise TypeError(
                f"train_with_cv: got a {type(data).__name__}, which train() reads as batches; the folds split "
                "samples: for a list of samples pass audiotrain.DataLoader(samples, batch_size=...), or pass "
                "a Dataset (one sample per index)"
            )
        try:
            check_dataset(data)
        except TypeError as error:
            raise TypeError(f"train_with_cv: {error}") from None

        def from_dataset(indices: list[int], train: bool) -> Iterable:
            return self._loader(
                Subset(data, indices), cpu_transforms=augment if train else (), **sampler(indices, train)
            )

        return data, from_dataset

    def _fresh_module(self) -> TrainModule:
        """A copy of the module as it is now; the trainer it was last used by is not copied along."""
        memo = {}
        attached = getattr(self.module, "_trainer", None)
        if attached is not None:
            memo[id(attached)] = None
        try:
            return copy.deepcopy(self.module, memo)
        except Exception as error:
            raise TypeError(
                f"train_with_cv: cannot copy {type(self.module).__name__} for each fold ({error}); pass "
                "module_factory=lambda: MyModule(...)"
            ) from error

    def _fresh_callbacks(self, fold: int, overwrite: bool) -> list[Callback]:
        """A copy of the callbacks given to `create_trainer`, for one fold: no state from an earlier fold.
        A ModelCheckpoint given a ``dirpath`` saves to ``dirpath/fold<k>`` (one folder would be refused
        from the second fold on: it holds the first fold's checkpoints), over an earlier cross-validation's
        there when ``overwrite``."""
        try:
            callbacks = copy.deepcopy(self.extra_callbacks)
        except Exception as error:
            raise TypeError(
                f"train_with_cv: cannot copy the callbacks for each fold ({error}); every fold needs its "
                "own, so that one fold's state (an EarlyStopping's patience count) does not stop the next"
            ) from error
        for callback in callbacks:
            if isinstance(callback, ModelCheckpoint) and callback._dirpath_given:
                callback.dirpath = callback.dirpath / f"fold{fold}"
                callback.overwrite = callback.overwrite or overwrite
        return callbacks


#: What `ConfiguredTrainer.train` writes in its run folder: what ``overwrite=True`` removes (other files
#: stay).
RUN_OUTPUTS = ("config.yaml", "history.json", "checkpoints", "mlflow.db", "mlruns")


def _run_outputs_of_this_kind(run_dir: Path) -> tuple[str, ...]:
    """`RUN_OUTPUTS`, for an overwrite; refused (FileExistsError) where ``checkpoints/`` holds a checkpoint of
    another Trainer under a run's name (seed 001's ``ModelCheckpoint(dirpath="./checkpoints")`` with
    ``run_dir="."``): its ``trainer_state.json`` has no run config, so no `create_trainer` run saved it, and
    overwrite would have deleted it as the previous run's."""
    folder = run_dir / "checkpoints"
    if folder.is_dir():
        others = [path.name for path in RUN_FOLDER_ENTRIES["checkpoints"](folder) if _saved_elsewhere(path)]
        if others:
            raise FileExistsError(
                f"train(overwrite=True): {folder} holds checkpoints that no create_trainer run saved "
                f"({', '.join(sorted(others))}: another Trainer's); nothing was removed. Move them, or pass "
                "another run_dir to create_trainer"
            )
    return RUN_OUTPUTS


def _saved_elsewhere(checkpoint: Path) -> bool:
    """A checkpoint folder whose trainer_state.json is a whole record without a run config (the core
    Trainer's); anything unreadable stays the run's own, as before."""
    try:
        state = json.loads((checkpoint / ckpt.STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and "progress" in state and RUN_CONFIG_KEY not in state


def run_own_paths(run_dir: Path) -> list[Path]:
    """What `ConfiguredTrainer.train` wrote in `run_dir`: `RUN_OUTPUTS`, and of its ``checkpoints/`` and
    logger folders their own entries only (`clear_run_outputs` keeps a user's file there, as here)."""
    paths = []
    for name in RUN_OUTPUTS:
        path = run_dir / name
        if name in RUN_FOLDER_ENTRIES and path.is_dir() and not path.is_symlink():
            paths += RUN_FOLDER_ENTRIES[name](path)
        elif path.exists() or path.is_symlink():
            paths.append(path)
    return paths


def _groups_said(groups: Sequence[Hashable] | None, fold: Any) -> str:
    """The groups of a fold's val and held-out parts, for its log line, where they are few: with a dataset's
    own folds as groups (ESC-50's fold column), fold k of the cross-validation is not the data's fold k."""
    if groups is None:
        return ""
    # By position, as grouped_folds reads them: a pandas column of a filtered table indexes by its labels.
    labels, said = list(groups), []
    for part, indices in (("val", fold.val), ("held out", fold.test)):
        if not indices:  # (val_fraction=0)
            continue
        names = sorted({labels[i] for i in indices}, key=str)
        if len(names) > 3:
            return ""
        said.append(f"{part}: {', '.join(map(str, names))}")
    return " (groups " + "; ".join(said) + ")"


def _fold_own_entries(folder: Path) -> dict[str, OwnEntries]:
    """A cross-validation's ``fold<k>/`` folders are runs of `ConfiguredTrainer.train`: an overwrite removes
    what such a run wrote there (`run_own_paths`), and a user's own files there stay (and are named)."""
    return {name: run_own_paths for name in cv_outputs(folder) if name not in CV_FILES}


def _recipe_run_record(folder: Path) -> str | None:
    """``config.json`` where `folder` holds a recipe run's record (`chords train`'s, a cv fold's), else None:
    its checkpoints and history.json have the names of `train`'s own, and no create_trainer run saved them."""
    return "config.json" if holds_run_record(folder) else None


def _recipe_cv_record(folder: Path) -> str | None:
    """The record of a recipe's cross-validation in `folder` (`chords cv`'s cv_progress.json, or a fold's
    config.json that a recipe run wrote, as `clap cv`'s folds hold), else None. Its folds' checkpoints,
    histories and scores have the names of `train_with_cv`'s own, so an overwrite would have removed them
    as an earlier run's (and the recipes' --overwrite refuses a train_with_cv folder likewise)."""
    if (folder / "cv_progress.json").is_file():
        return "cv_progress.json"
    return next((f"{fold.name}/config.json" for fold in fold_folders(folder) if holds_run_record(fold)), None)


def _main() -> bool:
    return collectives.is_main_process()


def _saved_checkpoints(run_dir: Path) -> dict[Path, int]:
    """The files of the checkpoints in `run_dir` with their modification times: whether a run saved one."""
    folder = run_dir / "checkpoints"
    return {path: path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()}


def _remove_untrained_run(folder: Path, created: bool, written: tuple[str, ...] = ("config.yaml",)) -> None:
    """Remove the files `written` (the config.yaml `ConfiguredTrainer.train` wrote; `train_with_cv`'s
    folds.json) in `folder`, where the run left nothing else there (empty folders aside): no checkpoint, no
    history. `folder` itself goes too when `created` (this run made it) and it is then empty. Anything else
    there is left as it is."""
    if not folder.is_dir():
        return
    others = [p for p in folder.rglob("*") if p.is_file() and p not in {folder / w for w in written}]
    if others:
        return
    for name in written:
        (folder / name).unlink(missing_ok=True)
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            sub.rmdir()
    if created:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _open_run_folder(
    folder: Path | None,
    outputs: Callable[[Path], Iterable[str]],
    overwrite: bool,
    source: str,
    remedy: str,
    *,
    keep: bool = False,
    log: Callable[[str], None] = print,
    prefix: str = "run",
    own_entries: Callable[[Path], Mapping[str, OwnEntries]] | None = None,
    other_kind: Callable[[Path], str | None] | None = None,
) -> Path:
    """The run folder, created (``runs/<prefix>-<date>-<time>`` when `folder` is None). One that holds files
    is refused, naming `remedy`, unless `overwrite` (which first removes ``outputs(folder)``, nothing else;
    of a folder among them that ``own_entries(folder)`` names, only the entries it gives) or `keep` (a
    resumed run goes on there). Where ``other_kind(folder)`` names a record (another kind of run's), the
    folder is refused, overwrite or not, and nothing is removed.

    Data parallel: rank 0 alone checks and creates it, before any rank writes there (so no rank sees
    another's files), and every rank returns rank 0's folder or raises rank 0's error (so none waits).
    """
    outcome: dict[str, Any] = {}
    if _main():
        try:
            if folder is not None and folder.exists() and not folder.is_dir():
                raise FileExistsError(f"{source}: run_dir {folder} is a file; expected a folder")
            if folder is not None and holds_files(folder) and not keep:
                record = other_kind(folder) if other_kind else None
                if record is not None:
                    # (the overwrite clause only where it was asked: otherwise nothing was to be removed)
                    removed = (
                        f"; overwrite=True replaces only an earlier {source} run, so nothing was removed"
                        if overwrite
                        else ""
                    )
                    raise FileExistsError(
                        f"{source}: run_dir {folder} holds a run of another kind (its {record}){removed}: "
                        "pass another run_dir"
                    )
                if not overwrite:
                    raise FileExistsError(
                        f"{source}: run_dir {folder} already holds files (an earlier run?); {remedy}"
                    )
                clear_run_outputs(
                    folder,
                    outputs(folder),
                    log=log,
                    asked_by=f"{source}(overwrite=True)",
                    own_entries=own_entries(folder) if own_entries else None,
                )
            outcome["folder"] = str(create_run_folder(folder, prefix))
        except OSError as error:
            outcome["error"] = [type(error).__name__, str(error)]
    outcome = collectives.broadcast_from_main(outcome)
    if "error" in outcome:
        kind, message = outcome["error"]
        raise getattr(builtins, kind, OSError)(message)  # rank 0's type: FileExistsError, PermissionError...
    return Path(outcome["folder"])


def _check_class_scores(scores: Any, labels: np.ndarray, class_names: list[str] | None) -> None:
    """Refuse ``train_with_cv(labels=...)`` before fold 0 where `predict_step`'s output on the first held-out
    batch (``scores``) is not per-class scores ``[batch, classes]`` that every label and name fits."""
    shape = tuple(scores.shape) if isinstance(scores, (mx.array, np.ndarray)) else None
    if shape is None or len(shape) != 2:
        got = f"shape {shape}" if shape is not None else type(scores).__name__
        raise ValueError(
            f"train_with_cv: labels= needs predict_step to return per-class scores [batch, classes], one row "
            f"per sample, whose argmax is the predicted class; on the first held-out batch it returned {got}"
        )
    width = shape[1]
    if class_names is not None and len(class_names) != width:
        raise ValueError(
            f"train_with_cv: class_names has {len(class_names)} names but predict_step returns {width} "
            "scores per sample; give one name per class, in index order"
        )
    if labels.size and labels.max() >= width:
        i = int(np.argmax(labels >= width))
        raise ValueError(
            f"train_with_cv: labels[{i}] is {int(labels[i])}, but predict_step returns {width} scores per "
            f"sample (classes 0..{width - 1})"
        )


def out_of_fold(parts: list, outputs: list[list[Any]], n: int) -> np.ndarray | None:
    """Each fold's `predict` outputs (one per batch) as one array in sample order, or None when they are not
    arrays with one row per held-out sample (a dict, a tuple, ...)."""
    rows: list[np.ndarray | None] = [None] * n
    for fold, batches in zip(parts, outputs):
        if not batches or not all(isinstance(b, (mx.array, np.ndarray)) and b.ndim >= 1 for b in batches):
            return None
        stacked = np.concatenate([np.asarray(b) for b in batches])
        if len(stacked) != len(fold.test):
            return None
        for i, row in zip(fold.test, stacked):
            rows[i] = row
    return np.stack(rows)


def fold_mean(outputs: list[list[Any]]) -> np.ndarray | None:
    """The mean over folds of each fold's `predict` outputs (one per batch) of the same data, or None (with
    a warning) when they are not arrays."""
    stacked = []
    for batches in outputs:
        if not batches or not all(isinstance(b, (mx.array, np.ndarray)) for b in batches):
            kinds = sorted({type(b).__name__ for b in batches}) or ["nothing"]
            warnings.warn(
                f"train_with_cv: predict_step returned {', '.join(kinds)}, not arrays, so the folds' test "
                "predictions cannot be averaged: no ensemble is made",
                stacklevel=user_stacklevel(),
            )
            return None
        stacked.append(np.concatenate([np.asarray(b) for b in batches]))
    return np.mean(np.stack(stacked), axis=0)


#: The trainer classes `create_trainer` builds by name (``trainer_type``); see `register_trainer`. A built-in
#: one in a module of its own is named as ``"module:Class"``, imported when first asked for.
TRAINERS: dict[str, type[ConfiguredTrainer] | str] = {
    "default": ConfiguredTrainer,
    "kaggle": "audiotrain.kaggle:KaggleTrainer",
}


def _trainer_class(name: str) -> type[ConfiguredTrainer]:
    if name not in TRAINERS:
        raise ValueError(
            f"create_trainer: unknown trainer_type {name!r}; registered: {', '.join(TRAINERS)} "
            "(register_trainer(name, cls) adds one)"
        )
    found = TRAINERS[name]
    if isinstance(found, str):
        module, _, attribute = found.partition(":")
        found = TRAINERS[name] = getattr(importlib.import_module(module), attribute)
    return found


def register_trainer(name: str, trainer_class: type[ConfiguredTrainer]) -> None:
    """Make ``create_trainer(module, trainer_type=name)`` build ``trainer_class(module, config, callbacks)``.

    ``trainer_class`` is a subclass of `ConfiguredTrainer`. A name already taken by another class is refused
    (registering the same class again is allowed, as a re-run cell of a notebook does).
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"register_trainer: name must be a non-empty str, got {name!r}")
    if not (isinstance(trainer_class, type) and issubclass(trainer_class, ConfiguredTrainer)):
        raise TypeError(
            f"register_trainer({name!r}, ...): expected a subclass of "
            "audiotrain.declarative.ConfiguredTrainer (it is built as cls(module, config, callbacks)), got "
            f"{trainer_class!r}"
        )
    taken = _trainer_class(name) if name in TRAINERS else None
    if taken is not None and taken is not trainer_class:
        raise ValueError(
            f"register_trainer: {name!r} is already {taken.__module__}.{taken.__qualname__}; choose another "
            "name"
        )
    TRAINERS[name] = trainer_class


def create_trainer(
    module: TrainModule,
    config: str | Path | Mapping[str, Any] | TrainerConfig | None = "development",
    *,
    config_file: str | Path | None = None,
    # Any: seed 003's callbacks need not subclass Callback; a Sequence, as a list of a subclass is no
    # list[Callback] to a type checker (lists are invariant).
    callbacks: Sequence[Callback | Any] | None = None,
    trainer_type: str = "default",
    **overrides: Any,
) -> ConfiguredTrainer:
    """A `ConfiguredTrainer` for ``module``: preset (or file) < ``config_file`` < ``overrides``.

    Args:
        config: a preset name (``quick_test``, ``development``, ``production``, ``kaggle``), a YAML/JSON file,
            a dict laid out as that file, or a `TrainerConfig` (checked as a file's settings are: an edited
            field is refused by name); None starts from `TrainerConfig()`'s own defaults, which are no preset
            (10 epochs and patience 5, where the default ``development`` has 5 and 2).
        config_file: a YAML/JSON file applied over the preset.
        callbacks: extra callbacks for the shared Trainer, a list or one (audiotrain Callbacks, or seed 003
            callbacks: see `audiotrain.training_hooks`).
        trainer_type: the class to build, by its `register_trainer` name (``default``: `ConfiguredTrainer`).
        overrides: settings by name (``learning_rate=1e-5``, ``num_epochs=20``, ``batch_size=64``).
    """
    trainer_class = _trainer_class(trainer_type)
    return trainer_class(module, resolve_config(config, config_file, overrides), callbacks)


def _transfers_batches(module: Any) -> bool:
    """Whether the module overrides a batch transfer hook, which runs before the batch is checked (and may
    turn numpy leaves into mx.array)."""
    from audiotrain.train.hooks import BATCH_TRANSFER_HOOKS
    from audiotrain.train.module import TrainModule

    return any(
        getattr(type(module), hook, None) is not getattr(TrainModule, hook) for hook in BATCH_TRANSFER_HOOKS
    )


def _refuse_a_list_of_samples(first: Any, name: str) -> None:
    """A plain list is a list of batches (mx.array leaves); one of numpy samples (``[(x, y), ...]``) failed
    only in the sanity check, naming a batch leaf and not the list the user passed."""
    from audiotrain.train.loaders import check_batch

    try:
        check_batch(first, f"{name}[0]")
    except TypeError as error:
        raise TypeError(
            f"{name} is a list, taken as a list of batches, but its first item is not one ({error}); for "
            "a list of samples pass audiotrain.DataLoader(samples, batch_size=...) (or a Dataset, batched "
            "with data.batch_size)"
        ) from None
