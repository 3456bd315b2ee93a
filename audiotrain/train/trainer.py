"""The Trainer: fit / validate / test loops around the compiled steps in `step.py`.

The loop per batch reads top to bottom: check the batch, run the compiled step (an accumulating
micro-step or the update step that ends a window), schedule the state's evaluation (`mx.async_eval`,
one step ahead of the host), call the hooks. Host syncs (`.item()`) happen only at the logging
interval, at validation and at epoch end.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import signal
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from audiotrain.train import checkpoint as ckpt
from audiotrain.train import flags
from audiotrain.train.callback import Callback
from audiotrain.train.callbacks import GradientClipper, ModelCheckpoint, ProgressBar
from audiotrain.train.lazy import LazyScalar
from audiotrain.train.loggers import CSVLogger, Logger, TensorBoardLogger
from audiotrain.train.module import OptimizerConfig, TrainModule
from audiotrain.train.seeding import seed_everything
from audiotrain.train.step import EvalStep, StepConfig, TrainStep, all_finite

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten


def _is_loader(obj: Any) -> bool:
    """A loader rather than a batch: iterable, but not an array or a container of arrays."""
    return isinstance(obj, Iterable) and not isinstance(
        obj, mx.array | np.ndarray | list | tuple | dict | str
    )


class Trainer:
    """Orchestrates training of a `TrainModule` with compiled MLX steps.

    Duration: `max_epochs` and/or `max_steps` (optimizer steps; whichever ends first).
    Validation: `val_check_interval` float = fraction of an epoch, int = every N training batches.
    Gradients: `gradient_clip_val` with `gradient_clip_algorithm` "norm"|"value",
    `accumulate_grad_batches` (mean over the window), non-finite updates skipped in-graph; after
    `max_consecutive_nonfinite` skipped updates in a row training stops with an error.
    The guard costs a sum over all gradients plus, for Adam/AdamW, selects fused into the update
    kernel (other optimizers: a select over the parameters and the optimizer state, see
    train/guarded_update.py); on a small MLP on the CPU backend that is ~4% of the step
    (benchmarks/trainer_overhead.py).
    `nonfinite_guard=False` drops it (a non-finite update then goes through). `track_grad_norm=True`
    logs the gradient norm (always logged, for free, with norm clipping).
    Loggers: `logger` is one, a list, or True for a TensorBoard logger in `default_root_dir` (CSV where
    no SummaryWriter is installed), as in Lightning.
    Logging: every `log_every_n_steps` optimizer steps the loggers get the interval means
    (`train_loss`, `train_<metric>`), the learning rate and the skip count; at each epoch end the
    epoch means as `train_<name>_epoch` (the history and `callback_metrics` use `train_<name>`).
    Seeding: `seed` seeds MLX, numpy and Python at the start of `fit` (and a DataLoader without its own
    seed). A model's initial weights are drawn when it is built, before that: call
    `audiotrain.seed_everything(seed)` first for a run that repeats exactly.
    Precision: "32", "bf16-mixed" (bf16 compute, float32 master weights), "bf16-true".
    Sanity check: `num_sanity_val_steps` (default 2, -1 all) validation batches run before training
    starts, unlogged and leaving the random state as it was, so an error only validation reaches
    shows at once, not after an epoch.
    Debugging: `fast_dev_run` (n batches of train and val, no checkpoints or loggers),
    `limit_train_batches` / `limit_val_batches`, `debug_lazy_eval` (no compile; evaluate every
    step eagerly and name the first parameter that turns non-finite).

    The short last batch of an epoch is kept (unless the loader drops it): MLX traces a compiled
    function once per input shape and caches it, so that batch costs one extra trace in the first
    epoch and none afterwards.
    """

    def __init__(
        self,
        max_epochs: int | None = None,
        max_steps: int | None = None,
        val_check_interval: int | float = 1.0,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str = "norm",
        default_root_dir: str | os.PathLike = "./logs",
        enable_checkpointing: bool = True,
        compile: bool = True,
        seed: int | None = 42,
        callbacks: list[Callback] | None = None,
        logger: Any = None,
        debug_lazy_eval: bool = False,
        accumulate_grad_batches: int = 1,
        precision: str = "32",
        limit_train_batches: int | float | None = None,
        limit_val_batches: int | float | None = None,
        fast_dev_run: bool | int = False,
        log_every_n_steps: int = 50,
        enable_progress_bar: bool = True,
        max_consecutive_nonfinite: int = 10,
        nonfinite_guard: bool = True,
        track_grad_norm: bool = False,
        num_sanity_val_steps: int = 2,
    ):
        self.fast_dev_run = flags.fast_dev_run(fast_dev_run)
        self.max_epochs = flags.positive_int_or_none("max_epochs", max_epochs)
        self.max_steps = flags.positive_int_or_none("max_steps", max_steps)
        if self.fast_dev_run:
            self.max_epochs, self.max_steps = 1, None
        if self.max_epochs is None and self.max_steps is None:
            raise ValueError(
                "Trainer: set max_epochs or max_steps (or both; whichever ends first stops training)"
            )
        self.val_check_interval = flags.val_check_interval(val_check_interval)
        self.gradient_clip_val, self.gradient_clip_algorithm = flags.clip(
            gradient_clip_val, gradient_clip_algorithm
        )
        self.default_root_dir = Path(default_root_dir)
        self.enable_checkpointing = bool(enable_checkpointing) and not self.fast_dev_run
        self.compile = bool(compile) and not debug_lazy_eval
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"Trainer(seed={seed!r}): expected a non-negative int or None")
        self.seed = seed
        self.debug_lazy_eval = bool(debug_lazy_eval)
        self.accumulate_grad_batches = flags.positive_int("accumulate_grad_batches", accumulate_grad_batches)
        self.precision = flags.precision(precision)
        self.limit_train_batches = flags.limit("limit_train_batches", limit_train_batches)
        self.limit_val_batches = flags.limit("limit_val_batches", limit_val_batches)
        self.log_every_n_steps = flags.positive_int("log_every_n_steps", log_every_n_steps)
        self.num_sanity_val_steps = flags.sanity_steps(num_sanity_val_steps)
        self.sanity_checking = False
        self.max_consecutive_nonfinite = flags.positive_int(
            "max_consecutive_nonfinite", max_consecutive_nonfinite
        )
        self.enable_progress_bar = bool(enable_progress_bar)
        self.nonfinite_guard = bool(nonfinite_guard)
        self.track_grad_norm = bool(track_grad_norm)

        callbacks = [callbacks] if isinstance(callbacks, Callback) else list(callbacks or [])
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"Trainer(callbacks=...): {cb!r} is not an audiotrain Callback instance")
        if self.enable_progress_bar and not any(isinstance(c, ProgressBar) for c in callbacks):
            callbacks.append(ProgressBar())
        if not self.enable_progress_bar:
            callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
        if self.enable_checkpointing and not any(isinstance(c, ModelCheckpoint) for c in callbacks):
            callbacks.append(ModelCheckpoint(save_last=True, save_top_k=0))
        if not self.enable_checkpointing:
            callbacks = [c for c in callbacks if not isinstance(c, ModelCheckpoint)]
        # Checkpointing runs after every other callback at each hook, as in Lightning: a checkpoint
        # taken at an epoch end then holds EarlyStopping's (or any callback's) state for that epoch.
        self.callbacks = sorted(callbacks, key=lambda cb: isinstance(cb, ModelCheckpoint))
        if logger is True:
            logger = _default_logger(self.default_root_dir)
        loggers = (
            logger if isinstance(logger, (list, tuple)) else ([] if logger in (None, False) else [logger])
        )
        for lg in loggers:
            if not callable(getattr(lg, "log_metrics", None)):
                raise TypeError(f"Trainer(logger=...): {lg!r} has no log_metrics(metrics, step) method")
        self.loggers = [] if self.fast_dev_run else loggers
        self._configure_clipping()

        # Progress state (what a checkpoint stores).
        self.current_epoch = 0
        self.global_step = 0
        self.batch_in_epoch = 0
        self.total_train_batches = 0
        self.should_stop = False
        self.interrupted = False
        self.interrupted_checkpoint: Path | None = None  # where Ctrl-C saved, once it has
        # Printed after Ctrl-C saves ({path} is the checkpoint); a command-line tool sets its own, or None.
        self.resume_hint: str | None = (
            "Resume with trainer.fit(model, train_loader, val_loader, ckpt_path={path!r})"
        )
        self.state = "initializing"
        self.fitting = False  # inside `fit` (a validation there is part of training)
        self.callback_metrics: dict[str, float] = {}
        self.logged_metrics: dict[str, float] = {}
        self._history_rows: list[dict[str, Any]] = []
        self._elapsed_before = 0.0  # seconds spent in earlier runs of a resumed fit
        self._fit_started = 0.0
        self.module: TrainModule | None = None
        self.optimizer = None
        self.optimizer_config: OptimizerConfig | None = None
        self._train_step: TrainStep | None = None
        self._eval_steps: dict[str, EvalStep] = {}
        self._micro = 0  # micro-batches accumulated in the current window
        self._train_loader = None
        self._val_loader = None
        self._pending_loader_state: dict | None = None
        self._pending_ckpt: str | None = None
        self._epoch_complete = False
        # A mid-epoch validation that Ctrl-C stopped: the checkpoint records it and a resumed fit runs
        # it again before the next training batch, so the history matches an uninterrupted run.
        self._validation_pending = False
        self._trainable: frozenset[str] = frozenset()  # the parameter names the compiled step trains
        self._interval_sums: dict[str, mx.array] = {}
        self._interval_count = 0
        self._epoch_sums: dict[str, Any] = {}
        self._epoch_weight = 0.0
        self._last_outputs: dict[str, mx.array] = {}  # the last step's loss and metrics (maybe still running)
        self._settled_outputs: dict[str, mx.array] = {}  # the step before that one's (evaluated)
        self.num_training_batches: int | float = 0
        self.num_val_batches = 0

    # ---- configuration -----------------------------------------------------------------------------
    def _configure_clipping(self) -> None:
        for cb in self.callbacks:
            if isinstance(cb, GradientClipper):
                value, algorithm = cb.clip_settings()
                if self.gradient_clip_val is not None and (value, algorithm) != (
                    self.gradient_clip_val,
                    self.gradient_clip_algorithm,
                ):
                    raise ValueError(
                        f"GradientClipper({algorithm}={value}) conflicts with Trainer(gradient_clip_val="
                        f"{self.gradient_clip_val}, gradient_clip_algorithm={self.gradient_clip_algorithm!r}); "
                        "use one of them"
                    )
                self.gradient_clip_val, self.gradient_clip_algorithm = value, algorithm

    def print(self, *args: Any) -> None:
        from tqdm.auto import tqdm

        tqdm.write(" ".join(str(a) for a in args))

    @property
    def logger(self):
        return self.loggers[0] if self.loggers else None

    @property
    def history(self) -> dict[str, list]:
        """Per-epoch history as columns: epoch, step, time, learning_rate, train_*, val_* (None where absent)."""
        keys: list[str] = []
        for row in self._history_rows:
            keys.extend(k for k in row if k not in keys)
        return {k: [row.get(k) for row in self._history_rows] for k in keys}

    def export_history(self, path: str | os.PathLike) -> Path:
        """Write `history` as JSON (columns of per-epoch values); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(self.history, f, indent=1, default=ckpt._json_default)
        os.replace(tmp, path)
        return path

    @property
    def estimated_stepping_batches(self) -> int | float:
        """Optimizer steps the current `fit` will take (Lightning's name), for schedules that need
        the total, e.g. OneCycle in `configure_optimizers`; inf when nothing bounds it."""
        total = self._loader_len(self._train_loader) if self._train_loader is not None else None
        batches = self.fast_dev_run or flags.resolve_limit(
            self.limit_train_batches, total, "limit_train_batches"
        )
        by_epochs = math.inf
        if batches is not None and self.max_epochs is not None:
            by_epochs = math.ceil(batches / self.accumulate_grad_batches) * self.max_epochs
        if self.fast_dev_run:
            by_epochs = math.ceil(batches / self.accumulate_grad_batches)
        limit = min(by_epochs, self.max_steps if self.max_steps is not None else math.inf)
        return int(limit) if limit != math.inf else math.inf

    def learning_rate(self) -> float:
        if self.optimizer is None:
            return float("nan")
        return float(
            self.optimizer.learning_rate.item()
            if isinstance(self.optimizer.learning_rate, mx.array)
            else self.optimizer.learning_rate
        )

    def is_logging_step(self) -> bool:
        return self.global_step % self.log_every_n_steps == 0

    def progress_metrics(self) -> dict[str, float]:
        """Numbers for the progress bar: the loss and metrics of the last step already evaluated (inside an
        epoch the one before the step the device may still be running, so reading them does not wait for
        it; at the epoch's end the last)."""
        out = {k: float(v.item()) for k, v in (self._settled_outputs or self._last_outputs).items()}
        out.update({k: v for k, v in self.callback_metrics.items() if k.startswith("val_")})
        return out

    # ---- hooks -------------------------------------------------------------------------------------
    def _callbacks(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, self.module, *args)

    # ---- setup -------------------------------------------------------------------------------------
    def _attach(self, module: TrainModule, stage: str) -> None:
        if not isinstance(module, TrainModule):
            raise TypeError(f"Trainer.{stage}: expected a TrainModule, got {type(module).__name__}")
        self.module = module
        module._attach(self)
        if self.precision == "bf16-true":
            module.set_dtype(mx.bfloat16)
        for cb in self.callbacks:
            cb.setup(self, module, stage)

    def _setup_optimizer(self, module: TrainModule) -> None:
        config = module.configure_optimizers()
        if not isinstance(config, OptimizerConfig):
            raise TypeError(
                f"{type(module).__name__}.configure_optimizers must return an OptimizerConfig, "
                f"got {type(config).__name__}"
            )
        self.optimizer_config, self.optimizer = config, config.optimizer
        # Initialise the state before compiling: a compiled function must see the same state
        # structure on every call (lazy init on the first update would force a retrace).
        self.optimizer.init(module.trainable_parameters())

    def _prepare_loader(self, loader: Any, name: str) -> None:
        if loader is None:
            return
        if not isinstance(loader, Iterable):
            raise TypeError(
                f"Trainer: {name} must be iterable (a DataLoader or a list of batches), got {type(loader).__name__}"
            )
        if isinstance(loader, list | tuple) and any(_is_loader(item) for item in loader):
            raise TypeError(
                f"Trainer: {name} is a {type(loader).__name__} of {len(loader)} loaders; one loader is "
                "supported (Lightning's several validation loaders are not): pass one, or one DataLoader "
                "over the datasets joined together"
            )
        if self.seed is not None and getattr(loader, "seed", 0) is None and hasattr(loader, "set_seed"):
            loader.set_seed(self.seed)

    @staticmethod
    def _loader_len(loader: Any) -> int | None:
        try:
            return len(loader)
        except TypeError:
            return None

    # ---- batches -------------------------------------------------------------------------------------
    @staticmethod
    def _check_batch(batch: Any, path: str = "batch") -> None:
        """Batches enter a compiled function: every leaf must be an mx.array."""
        if isinstance(batch, mx.array):
            return
        if isinstance(batch, dict):
            for k, v in batch.items():
                Trainer._check_batch(v, f"{path}[{k!r}]")
            return
        if isinstance(batch, (list, tuple)):
            for i, v in enumerate(batch):
                Trainer._check_batch(v, f"{path}[{i}]")
            return
        kind = type(batch).__name__
        hint = (
            "convert it with the DataLoader's default collate or an mlx_transforms function "
            "(numpy → mx.array on the main thread)"
            if isinstance(batch, np.ndarray | np.generic | int | float)
            else "use audiotrain.DataLoader over the same dataset (it collates torch tensors into "
            "mx.array), or convert in an mlx_transforms function"
            if type(batch).__module__.startswith("torch")
            else "keep only arrays in batches that reach the Trainer (drop names and other metadata "
            "in collate_fn or before the batch leaves the dataset)"
        )
        raise TypeError(f"{path} is a {kind}, but batch leaves must be mx.array: {hint}")

    # ---- fit ---------------------------------------------------------------------------------------
    def fit(
        self,
        model: TrainModule,
        train_loader: Any = None,
        val_loader: Any = None,
        ckpt_path: str | None = None,
        *,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
    ) -> None:
        """Train `model`; resume everything from `ckpt_path` if given (a checkpoint folder, or "last").

        `train_dataloaders` / `val_dataloaders` are Lightning's names for the two loaders.
        """
        train_loader = _one_loader(
            "fit", "train_loader", train_loader, "train_dataloaders", train_dataloaders
        )
        val_loader = _one_loader("fit", "val_loader", val_loader, "val_dataloaders", val_dataloaders)
        if train_loader is None:
            raise TypeError("Trainer.fit: pass the training batches (train_loader, or train_dataloaders=)")
        self._prepare_loader(train_loader, "train_loader")
        self._prepare_loader(val_loader, "val_loader")
        if val_loader is train_loader and hasattr(train_loader, "state_dict"):
            # Its position is part of each checkpoint: after a validation it would be the validation
            # pass's, and a resumed epoch would continue from another epoch's order.
            raise ValueError(
                "Trainer.fit: train_loader and val_loader are the same DataLoader object. Its position "
                "in the epoch goes into checkpoints, so validation must iterate its own: pass a second "
                "DataLoader over the same dataset (e.g. DataLoader(dataset, batch_size=..., shuffle=False))"
            )
        if self.seed is not None:
            seed_everything(self.seed)
        self._attach(model, "fit")
        self._train_loader = train_loader  # before configure_optimizers: estimated_stepping_batches
        self._val_loader = val_loader
        self._setup_optimizer(model)
        self.state = "running"
        self.should_stop = self.interrupted = False
        self.interrupted_checkpoint = None
        self._validation_pending = False
        ckpt_path = self._checkpoint_alias(ckpt_path or self._pending_ckpt)
        self._pending_ckpt = None
        step_config = StepConfig(
            clip_val=self.gradient_clip_val,
            clip_algorithm=self.gradient_clip_algorithm,
            accumulate_grad_batches=self.accumulate_grad_batches,
            precision=self.precision,
            compile=self.compile,
            nonfinite_guard=self.nonfinite_guard,
            track_grad_norm=self.track_grad_norm,
        )
        self._trainable = _trainable_keys(model)
        self._train_step = TrainStep(model, self.optimizer, step_config)
        self._eval_steps = {}
        if ckpt_path:
            self._restore(ckpt_path, full=True)
        for lg in self.loggers:
            if hasattr(lg, "log_hyperparams"):
                lg.log_hyperparams(self._config())
            if isinstance(lg, Logger):
                lg.start()  # the checkpoint's run, now that it is loaded; a login failure shows at once
        self._fit_started = time.perf_counter()
        status = "failed"
        self.fitting = True
        try:
            with self._sigint_guard():
                self._callbacks("on_fit_start")
                model.on_fit_start()
                if val_loader is not None:
                    self._sanity_check(model, val_loader)
                self._callbacks("on_train_start")
                model.on_train_start()
                self._fit_loop(model, train_loader, val_loader)
                if not self.interrupted:
                    self._callbacks("on_train_end")
                    model.on_train_end()
                    self._callbacks("on_fit_end")
                    model.on_fit_end()
            status = "interrupted" if self.interrupted else "success"
        except BaseException as err:
            for cb in self.callbacks:
                with contextlib.suppress(Exception):
                    cb.on_exception(self, model, err)
            raise
        finally:
            self.fitting = False
            self.state = "finished" if status == "success" else status
            for lg in self.loggers:
                if hasattr(lg, "finalize"):
                    lg.finalize(status)
            for cb in self.callbacks:
                cb.teardown(self, model, "fit")
            model.train()

    @property
    def validates_within_epochs(self) -> bool:
        """Whether this `fit` validates other than exactly once at each epoch end: `val_check_interval`
        below 1.0 (also mid-epoch) or an int (every N batches, across epoch ends). Callbacks that
        monitor a metric then act after each validation instead of at epoch end, as in Lightning, so
        they never read a validation metric that is stale or not logged yet."""
        once_per_epoch = isinstance(self.val_check_interval, float) and self.val_check_interval == 1.0
        return self.fitting and self._val_loader is not None and not once_per_epoch

    def _done(self) -> bool:
        if self.should_stop or self.interrupted:
            return True
        if self.max_steps is not None and self.global_step >= self.max_steps:
            return True
        return self.max_epochs is not None and self.current_epoch >= self.max_epochs

    def _fit_loop(self, module: TrainModule, train_loader: Any, val_loader: Any) -> None:
        if self._done():
            warnings.warn(
                f"Trainer.fit: nothing to train, already at epoch {self.current_epoch} / step {self.global_step} "
                f"(max_epochs={self.max_epochs}, max_steps={self.max_steps}); raise them to train further",
                stacklevel=3,
            )
            return
        total = self._loader_len(train_loader)
        n_batches = self.fast_dev_run or flags.resolve_limit(
            self.limit_train_batches, total, "limit_train_batches"
        )
        self.num_training_batches = n_batches if n_batches is not None else math.inf
        if n_batches == 0:
            warnings.warn(
                "Trainer.fit: the training loader yields no batches (limit or empty loader)", stacklevel=3
            )
            return
        mid_epoch_every = None
        if isinstance(self.val_check_interval, float) and self.val_check_interval < 1.0:
            if n_batches is None:
                raise ValueError("Trainer(val_check_interval<1.0) needs a training loader with a length")
            mid_epoch_every = max(1, int(self.val_check_interval * n_batches))
        while not self._done():
            self._run_train_epoch(module, train_loader, val_loader, n_batches, mid_epoch_every)
            if self.interrupted:  # saved in the epoch, right after the step it stopped at
                return
            self._end_epoch(module, val_loader)
        if self.interrupted:
            # Ctrl-C during the epoch-end callbacks or checkpointing: the epoch is complete and
            # validated, so the checkpoint resumes at the next one. (One during the epoch-end
            # validation stops it and leaves the epoch open: the resumed fit validates and ends it.)
            self._save_on_interrupt()

    def _run_train_epoch(self, module, loader, val_loader, n_batches, mid_epoch_every) -> None:
        epoch = self.current_epoch
        resuming = self.batch_in_epoch > 0
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        if self._pending_loader_state is not None and hasattr(loader, "load_state_dict"):
            loader.load_state_dict(self._pending_loader_state)
        self._pending_loader_state = None
        if not resuming:
            self._epoch_sums, self._epoch_weight = {}, 0.0
        self._epoch_complete = False
        module.train()
        module.on_train_epoch_start(epoch)
        self._callbacks("on_train_epoch_start")
        self._follow_freezing(module)
        iterator = iter(loader)
        if resuming and not hasattr(loader, "load_state_dict"):
            # A plain iterable cannot seek: replay and discard the batches already trained on.
            for _ in range(self.batch_in_epoch):
                next(iterator, None)
        if self._validation_pending and val_loader is not None:
            self._run_validation(module, val_loader, during_fit=True)
            module.train()
            if self.interrupted:
                self._save_on_interrupt()
                return
        self._validation_pending = False
        step = self._train_step
        exhausted = False
        while n_batches is None or self.batch_in_epoch < n_batches:
            try:
                batch = next(iterator)
            except StopIteration:
                exhausted = True
                break
            self._check_batch(batch)
            batch_idx = self.batch_in_epoch
            module.on_train_batch_start(batch, batch_idx)
            self._callbacks("on_train_batch_start", batch, batch_idx)
            self._micro += 1
            last_of_epoch = n_batches is not None and batch_idx + 1 == n_batches
            stepped = self._micro == self.accumulate_grad_batches or last_of_epoch
            if stepped:
                loss, metrics = step.update(batch, mx.array(self._micro, mx.float32))
                self._micro = 0
            else:
                loss, metrics = step.accumulate(batch)
            weight = module.batch_size(batch)
            self._accumulate_train_metrics(loss, metrics, weight)
            targets = (step.eval_targets, loss, metrics, self._interval_sums, self._epoch_sums)
            if self.debug_lazy_eval:
                mx.eval(targets)
                self._debug_check(loss, batch_idx)
            else:
                # The device runs this step while Python fetches, checks and hooks the next batch (a GPU
                # would otherwise idle through that host time). Waiting for the step before keeps at most
                # two in flight, so batches cannot pile up in memory. Values read later (.item() at the
                # logging interval, a callback, a checkpoint) wait for what they need.
                mx.async_eval(targets)
                if self._last_outputs:
                    mx.eval(self._last_outputs)  # the step before: done, or nearly
                    self._settled_outputs = self._last_outputs
            self.batch_in_epoch += 1
            self.total_train_batches += 1
            if stepped:
                self.global_step += 1
            self._last_outputs = {"loss": loss, **metrics}
            outputs = {
                "loss": LazyScalar(loss),
                **{k: LazyScalar(v) for k, v in metrics.items()},
                "stepped": stepped,
            }
            # A checkpoint saved by a batch-end hook (ModelCheckpoint(every_n_train_steps)) before
            # this batch's validation records it as pending, so resuming from it runs it first.
            val_due = val_loader is not None and self._val_due(mid_epoch_every, n_batches)
            self._validation_pending = val_due
            module.on_train_batch_end(outputs, batch, batch_idx)
            # Logged before the callbacks: a checkpoint one saves now (every_n_train_steps) records
            # the loggers past this step, so resuming from it neither drops nor repeats its row.
            if stepped and self.is_logging_step():
                self._log_train_interval()
            self._callbacks("on_train_batch_end", outputs, batch, batch_idx)
            if val_due:
                self._validation_pending = False  # a checkpoint saved in on_validation_end has run it
                # Still pending when Ctrl-C stops it: saved below, rerun on resume.
                self._validation_pending = self._run_validation(module, val_loader, during_fit=True) is None
                module.train()
            if self.interrupted:
                self._save_on_interrupt()
                return
            if self._done():
                break
        self._settled_outputs = {}  # the epoch's end shows its last step's numbers
        if exhausted and self.batch_in_epoch == 0:
            self._no_batches_this_epoch(epoch)
        # An epoch stopped early by max_steps or EarlyStopping-in-a-batch stays open, so a checkpoint
        # taken now resumes in the middle of it.
        self._epoch_complete = exhausted or (n_batches is not None and self.batch_in_epoch >= n_batches)

    def _no_batches_this_epoch(self, epoch: int) -> None:
        """An epoch without a single batch would repeat forever under max_steps (no step ever counts)."""
        if self.total_train_batches > 0:
            raise ValueError(
                f"Trainer.fit: the training loader yielded no batches in epoch {epoch}, after "
                f"{self.total_train_batches} in earlier epochs. A generator or iterator can be consumed only "
                "once: pass a list, a DataLoader, or an object whose __iter__ starts over"
            )
        warnings.warn("Trainer.fit: the training loader yielded no batches; stopping", stacklevel=4)
        self.should_stop = True

    def _follow_freezing(self, module: TrainModule) -> None:
        """Rebuild the compiled step when `freeze`/`unfreeze` changed what trains (checked at each
        epoch start, where fine-tuning schedules such as Lightning's BackboneFinetuning act).

        The step is traced once over the trainable parameters it saw, so without this a frozen
        layer kept training and an unfrozen one never did.
        """
        keys = _trainable_keys(module)
        if keys == self._trainable:
            return
        old = self._train_step
        self.optimizer.init(module.trainable_parameters())  # state for newly trainable parameters
        self._train_step = TrainStep(module, self.optimizer, old.config)
        counters = {k: v for k, v in old.state.arrays.items() if k != "grad_accum"}
        self._train_step.state.arrays.update(counters)  # skip counts and norm carry on
        self._trainable = keys

    def _val_due(self, mid_epoch_every: int | None, n_batches: int | None) -> bool:
        if isinstance(self.val_check_interval, int):
            return self.total_train_batches % self.val_check_interval == 0
        if mid_epoch_every is None:
            return False
        return self.batch_in_epoch % mid_epoch_every == 0 and self.batch_in_epoch != n_batches

    def _accumulate_train_metrics(self, loss: mx.array, metrics: dict[str, mx.array], weight: int) -> None:
        values = {"loss": loss, **metrics}
        for k, v in values.items():
            self._interval_sums[k] = self._interval_sums.get(k, 0.0) + v
            self._epoch_sums[k] = self._epoch_sums.get(k, 0.0) + v * weight
        self._interval_count += 1
        self._epoch_weight += weight

    def _log_train_interval(self) -> None:
        if not self._interval_count:
            return
        n = self._interval_count
        values = {_prefixed("train_", k): float(v.item()) / n for k, v in self._interval_sums.items()}
        self._interval_sums, self._interval_count = {}, 0
        values["learning_rate"] = self.learning_rate()
        arrays = self._train_step.state.arrays
        if self._train_step.config.computes_norm:
            values["grad_norm"] = float(arrays["grad_norm"].item())
        if self.nonfinite_guard:
            values["skipped_steps"] = int(arrays["skipped_total"].item())
        values.update(self._pop_module_logs())
        self.callback_metrics.update(values)
        self.log_metrics(values, step=self.global_step)
        self._check_nonfinite()

    def _pop_module_logs(self) -> dict[str, float]:
        out = {}
        for name, value in self.module._pop_logged().items():
            try:
                if isinstance(value, mx.array) and value.size != 1:
                    raise ValueError(f"an array of shape {tuple(value.shape)}")
                out[name] = float(value.item()) if isinstance(value, (mx.array, LazyScalar)) else float(value)
            except (TypeError, ValueError) as err:
                raise ValueError(
                    f"{type(self.module).__name__}.log({name!r}, ...): expected a number or a scalar array, "
                    f"got {value!r:.60} ({err})"
                ) from None
        return out

    def _check_nonfinite(self) -> None:
        arrays = self._train_step.state.arrays
        streak = int(arrays["max_skip_streak"].item())
        if streak >= self.max_consecutive_nonfinite:
            path = None
            if self.enable_checkpointing:
                path = self.save_checkpoint(self.default_root_dir / "checkpoints" / "nonfinite")
            raise FloatingPointError(
                f"{streak} optimizer steps in a row had a non-finite loss or gradients (up to global step "
                f"{self.global_step}); those updates were skipped, so the weights are still finite. "
                "Lower the learning rate, set gradient_clip_val, or check the data for NaN/Inf."
                + (f" The last good state is saved in {path}." if path else "")
            )
        arrays["max_skip_streak"] = arrays["skip_streak"]

    def _debug_check(self, loss: mx.array, batch_idx: int) -> None:
        if not math.isfinite(loss.item()):
            raise FloatingPointError(
                f"debug_lazy_eval: loss is {loss.item()} at epoch {self.current_epoch}, batch {batch_idx}"
            )
        for name, value in ckpt.flat(self.module.parameters()).items():
            if not bool(all_finite(value).item()):
                raise FloatingPointError(
                    f"debug_lazy_eval: parameter {name!r} became non-finite after epoch {self.current_epoch}, "
                    f"batch {batch_idx}"
                )

    def _end_epoch(self, module: TrainModule, val_loader: Any) -> None:
        weight = self._epoch_weight or 1.0
        train_metrics = {
            _prefixed("train_", k): float(v.item()) / weight for k, v in self._epoch_sums.items()
        }
        if self._interval_count:
            self._log_train_interval()
        self._check_nonfinite()
        self.callback_metrics.update(train_metrics)
        val_metrics = {}
        if val_loader is not None and isinstance(self.val_check_interval, float):
            val_metrics = self._run_validation(module, val_loader, during_fit=True)
            module.train()
            if val_metrics is None:
                # Ctrl-C stopped the validation: the epoch stays open at its last batch, so the
                # checkpoint resumes with this validation and the rest of the epoch's end.
                self._epoch_complete = False
                return
        row = {
            "epoch": self.current_epoch,
            "step": self.global_step,
            "time": self.elapsed(),
            "learning_rate": self.learning_rate(),
            **train_metrics,
            **{k: v for k, v in self.callback_metrics.items() if k.startswith("val_")},
        }
        if self._history_rows and self._history_rows[-1]["epoch"] == row["epoch"]:
            self._history_rows[-1] = row  # an epoch closed early and then resumed: keep the full one
        else:
            self._history_rows.append(row)
        # `_epoch` as in Lightning: the epoch's last step already logged `train_loss` (the interval mean),
        # and a second value for one key at one step would replace it in W&B, CSV and TensorBoard.
        epoch_means = {f"{k}_epoch": v for k, v in train_metrics.items()}
        self.log_metrics({**epoch_means, "epoch": self.current_epoch}, step=self.global_step)
        module.on_train_epoch_end(self.current_epoch, {**train_metrics, **val_metrics})
        # Logged in the hook: part of this epoch (history, and what ModelCheckpoint/EarlyStopping see).
        late = self._pop_module_logs()
        if late:
            row.update(late)
            self.callback_metrics.update(late)
            self.log_metrics(late, step=self.global_step)
        self._callbacks("on_train_epoch_end")
        if self._epoch_complete:
            self.current_epoch += 1
            self.batch_in_epoch = 0
            self._epoch_complete = False

    def elapsed(self) -> float:
        return self._elapsed_before + (time.perf_counter() - self._fit_started if self._fit_started else 0.0)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.logged_metrics.update(metrics)
        for lg in self.loggers:
            lg.log_metrics(metrics, step)

    # ---- evaluation ----------------------------------------------------------------------------------
    def _eval_step(self, module: TrainModule, stage: str) -> EvalStep:
        if stage not in self._eval_steps:
            fn = module.validation_step if stage == "val" else module.test_step
            name = "validation_step" if stage == "val" else "test_step"
            self._eval_steps[stage] = EvalStep(
                module, fn, name, compile=self.compile, precision=self.precision
            )
        return self._eval_steps[stage]

    def _evaluate(
        self, module: TrainModule, loader: Any, stage: str, stoppable: bool = False
    ) -> dict[str, float] | None:
        """Means over the loader weighted by `module.batch_size(batch)`; keys prefixed `val_`/`test_`.

        With `stoppable` (validation inside `fit`), a Ctrl-C ends it after the current batch and the
        result is None: partial means would be biased, so nothing is logged or compared.
        """
        limit_value = self.fast_dev_run or self.limit_val_batches
        n_batches = flags.resolve_limit(limit_value, self._loader_len(loader), f"limit_{stage}_batches")
        self.num_val_batches = n_batches
        was_training = module.training
        module.eval()
        step = self._eval_step(module, stage)
        sums: dict[str, mx.array] = {}
        before = None  # the sums up to the batch before, while the device may still run this one
        total = 0
        hook = "on_validation_batch_end" if stage == "val" else "on_test_batch_end"
        for batch_idx, batch in enumerate(loader):
            if n_batches is not None and batch_idx >= n_batches:
                break
            if stoppable and self.interrupted:
                break
            self._check_batch(batch)
            loss, metrics = step(batch)
            weight = module.batch_size(batch)
            for k, v in {"loss": loss, **metrics}.items():
                sums[k] = sums.get(k, 0.0) + v * weight
            total += weight
            # As in training: the device evaluates this batch while the host fetches the next one, and
            # waiting for the batch before bounds what is in flight.
            mx.async_eval(sums)
            if before is not None:
                mx.eval(before)
            before = dict(sums)
            self._callbacks(
                hook,
                {"loss": LazyScalar(loss), **{k: LazyScalar(v) for k, v in metrics.items()}},
                batch,
                batch_idx,
            )
        if was_training:
            module.train()
        if stoppable and self.interrupted:
            return None
        if total == 0:
            warnings.warn(f"Trainer: the {stage} loader yielded no batches", stacklevel=3)
            return {}
        return {_prefixed(f"{stage}_", k): float(v.item()) / total for k, v in sums.items()}

    def _sanity_check(self, module: TrainModule, loader: Any) -> None:
        """Run the first `num_sanity_val_steps` validation batches before training, as Lightning does:
        a mistake only validation reaches (a bad batch, a broken `validation_step`) fails now, not
        after a whole training epoch. Nothing is logged or called back, and the random state is put
        back, so a run is the same with or without the check."""
        n = self.num_sanity_val_steps
        if n == 0 or self.fast_dev_run or isinstance(loader, Iterator):
            return  # (a generator would lose the batches the check drew)
        limit = flags.resolve_limit(self.limit_val_batches, self._loader_len(loader), "limit_val_batches")
        if limit is not None:
            n = limit if n == -1 else min(n, limit)
        rng_before = ckpt.rng_state()
        self.sanity_checking = True
        module.eval()
        iterator = iter(loader)
        try:
            step = self._eval_step(module, "val")
            for batch_idx, batch in enumerate(iterator):
                if n != -1 and batch_idx >= n:
                    break
                self._check_batch(batch)
                mx.eval(step(batch))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
            self.sanity_checking = False
            module.train()
            ckpt.restore_rng(rng_before)

    def _run_validation(
        self, module: TrainModule, loader: Any, during_fit: bool = False
    ) -> dict[str, float] | None:
        """Validate, log and run the validation-end hooks; None if Ctrl-C stopped it (in `fit`)."""
        rng_before = ckpt.rng_state() if during_fit else None
        module.on_validation_start()
        self._callbacks("on_validation_start")
        metrics = self._evaluate(module, loader, "val", stoppable=during_fit)
        if metrics is None:
            # Stopped: the checkpoint gets the random state the validation started from, so the
            # rerun after resuming draws what an uninterrupted one would have.
            ckpt.restore_rng(rng_before)
            return None
        metrics.update(self._pop_module_logs())
        self.callback_metrics.update(metrics)
        self.log_metrics(metrics, step=self.global_step)
        module.on_validation_end(metrics)
        # What the hook logged counts for this validation (callbacks below can monitor it).
        late = self._pop_module_logs()
        if late:
            metrics.update(late)
            self.callback_metrics.update(late)
            self.log_metrics(late, step=self.global_step)
        self._callbacks("on_validation_end")
        return metrics

    def validate(
        self,
        model: TrainModule,
        val_loader: Any = None,
        ckpt_path: str | None = None,
        *,
        dataloaders: Any = None,
    ) -> dict[str, float]:
        """Run validation once; returns `val_*` metrics (means weighted by batch size).
        `dataloaders` is Lightning's name for `val_loader`."""
        loader = _one_loader("validate", "val_loader", val_loader, "dataloaders", dataloaders, required=True)
        return self._standalone_eval(model, loader, ckpt_path, "val")

    def test(
        self,
        model: TrainModule,
        test_loader: Any = None,
        ckpt_path: str | None = None,
        *,
        dataloaders: Any = None,
    ) -> dict[str, float]:
        """Run `test_step` over `test_loader`; returns `test_*` metrics.
        `dataloaders` is Lightning's name for `test_loader`."""
        loader = _one_loader("test", "test_loader", test_loader, "dataloaders", dataloaders, required=True)
        return self._standalone_eval(model, loader, ckpt_path, "test")

    def _standalone_eval(
        self, model: TrainModule, loader: Any, ckpt_path: str | None, stage: str
    ) -> dict[str, float]:
        self._prepare_loader(loader, f"{stage}_loader")
        if self.module is not model:
            self._attach(model, "validate" if stage == "val" else "test")
            self._eval_steps = {}
        if ckpt_path:
            self._restore(self._checkpoint_alias(ckpt_path), full=False)
        if stage == "val":
            metrics = self._run_validation(model, loader)
        else:
            model.on_test_start()
            self._callbacks("on_test_start")
            metrics = self._evaluate(model, loader, "test")
            self.callback_metrics.update(metrics)
            self.log_metrics(metrics, step=self.global_step)
            model.on_test_end(metrics)
            self._callbacks("on_test_end")
        # As after fit (and as Lightning does): an MLflow run reopened for these metrics is closed.
        for lg in self.loggers:
            if hasattr(lg, "finalize"):
                lg.finalize("success")
        return metrics

    # ---- checkpoints ---------------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        opt = self.optimizer
        return {
            "trainer": {
                "max_epochs": self.max_epochs,
                "max_steps": self.max_steps,
                "val_check_interval": self.val_check_interval,
                "gradient_clip_val": self.gradient_clip_val,
                "gradient_clip_algorithm": self.gradient_clip_algorithm,
                "accumulate_grad_batches": self.accumulate_grad_batches,
                "precision": self.precision,
                "seed": self.seed,
                "compile": self.compile,
                "log_every_n_steps": self.log_every_n_steps,
            },
            "module": type(self.module).__name__ if self.module is not None else None,
            "optimizer": type(opt).__name__ if opt is not None else None,
            "lr_schedule_name": self.optimizer_config.lr_schedule_name if self.optimizer_config else None,
        }

    def save_checkpoint(self, path: str | os.PathLike) -> Path:
        """Write a resumable checkpoint folder (atomically) at `path`."""
        if self.module is None:
            raise RuntimeError("Trainer.save_checkpoint: no module attached yet (call fit/validate first)")
        loader = self._train_loader
        epoch_done = self._epoch_complete
        state: dict[str, Any] = {
            "epoch": self.current_epoch + 1 if epoch_done else self.current_epoch,
            "batch_in_epoch": 0 if epoch_done else self.batch_in_epoch,
            "global_step": self.global_step,
            "total_train_batches": self.total_train_batches,
            "micro_batches_in_window": self._micro,
            "rng": ckpt.rng_state(),
            "data_loader": (
                loader.state_dict() if hasattr(loader, "state_dict") and not epoch_done else None
            ),
            "epoch_sums": {k: float(v.item()) for k, v in self._epoch_sums.items()} if not epoch_done else {},
            "epoch_weight": self._epoch_weight if not epoch_done else 0.0,
            "validation_pending": self._validation_pending and not epoch_done,
            "callbacks": {cb.state_key: cb.state_dict() for cb in self.callbacks},
            "loggers": [lg.state_dict() if hasattr(lg, "state_dict") else {} for lg in self.loggers],
            "callback_metrics": self.callback_metrics,
            "history": self._history_rows,
            "elapsed": self.elapsed(),
            "config": self._config(),
            "versions": {
                "audiotrain": _version(),
                "mlx": getattr(mx, "__version__", "unknown"),
                "python": platform.python_version(),
            },
            "module_state": {},
        }
        self.module.on_save_checkpoint(state["module_state"])
        for cb in self.callbacks:
            cb.on_save_checkpoint(self, self.module, state)
        optimizer_arrays = ckpt.flat(self.optimizer.state) if self.optimizer is not None else {}
        step_arrays = self._train_step.state.flat() if self._train_step is not None else {}
        return ckpt.write_checkpoint(
            path, ckpt.flat(self.module.parameters()), optimizer_arrays, step_arrays, state
        )

    def _checkpoint_alias(self, path: str | os.PathLike | None) -> str | os.PathLike | None:
        """Lightning's ``ckpt_path="best"`` / ``"last"``: the first ModelCheckpoint's best or last."""
        if str(path) not in ("best", "last"):
            return path
        found = [cb for cb in self.callbacks if isinstance(cb, ModelCheckpoint)]
        attribute = "best_model_path" if str(path) == "best" else "last_model_path"
        target = getattr(found[0], attribute, "") if found else ""
        if not target:
            why = (
                "no ModelCheckpoint callback"
                if not found
                else f"its {attribute} is empty (nothing saved yet)"
            )
            raise ValueError(f'ckpt_path="{path}": this Trainer has {why}; pass a checkpoint folder')
        return target

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore from a checkpoint folder now (if a module is attached) or at the next `fit`."""
        if self.module is None or self.optimizer is None:
            ckpt.read_state(ckpt.resolve_checkpoint(path))  # fail early on a bad folder
            self._pending_ckpt = str(path)
            return
        self._restore(path, full=True)

    def _restore(self, path: str | os.PathLike, full: bool) -> None:
        folder = ckpt.resolve_checkpoint(path)
        state = ckpt.read_state(folder)
        module = self.module
        model_file = folder / ckpt.MODEL_FILE
        module.update(
            ckpt.checked_tree(
                ckpt.read_arrays(model_file),
                module.parameters(),
                f"{type(module).__name__} model",
                model_file,
            )
        )
        mx.eval(module.parameters())
        module.on_load_checkpoint(state.get("module_state", {}))
        if not full:
            return
        opt_file = folder / ckpt.OPTIMIZER_FILE
        opt_tree = ckpt.checked_tree(
            ckpt.read_arrays(opt_file),
            dict(self.optimizer.state),
            f"{type(self.optimizer).__name__} optimizer state",
            opt_file,
        )
        # Update in place: the compiled step holds a reference to this dict.
        self.optimizer.state.update(opt_tree)
        step_file = folder / ckpt.STEP_STATE_FILE
        step_arrays = ckpt.read_arrays(step_file)
        if step_arrays:
            arrays = self._train_step.state.arrays
            saved_accumulates = any(k.startswith("grad_accum.") for k in step_arrays)
            if saved_accumulates != ("grad_accum" in arrays):
                raise ckpt.CheckpointError(
                    f"{folder} was saved with accumulate_grad_batches "
                    f"{'> 1' if saved_accumulates else '= 1'}, this Trainer has {self.accumulate_grad_batches}: "
                    "resume with the same accumulation (the accumulated gradients are part of the state)"
                )
            arrays.update(ckpt.checked_tree(step_arrays, dict(arrays), "training step state", step_file))
        self.current_epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.global_step = int(state["global_step"])
        self.total_train_batches = int(state.get("total_train_batches", 0))
        self._micro = int(state.get("micro_batches_in_window", 0))
        self._pending_loader_state = state.get("data_loader") if self.batch_in_epoch else None
        self._epoch_sums = {k: mx.array(v, mx.float32) for k, v in state.get("epoch_sums", {}).items()}
        self._epoch_weight = float(state.get("epoch_weight", 0.0))
        self._validation_pending = bool(state.get("validation_pending", False))
        self.callback_metrics = dict(state.get("callback_metrics", {}))
        self._history_rows = list(state.get("history", []))
        self._elapsed_before = float(state.get("elapsed", 0.0))
        ckpt.restore_rng(state["rng"])
        saved_callbacks = state.get("callbacks", {})
        for cb in self.callbacks:
            if cb.state_key in saved_callbacks:
                cb.load_state_dict(saved_callbacks[cb.state_key])
            cb.on_load_checkpoint(self, module, state)
        for lg, lg_state in zip(self.loggers, state.get("loggers", [])):
            if hasattr(lg, "load_state_dict"):
                lg.load_state_dict(lg_state)
        mx.eval(self._train_step.eval_targets)

    # ---- Ctrl-C --------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _sigint_guard(self):
        """First Ctrl-C: finish the current step, save a checkpoint, return from fit. Second: abort."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self.interrupted:
                raise KeyboardInterrupt
            self.interrupted = True
            self.print(
                "\nInterrupted: saving a checkpoint after this step or validation batch "
                "(Ctrl-C again to abort without saving)"
            )

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _save_on_interrupt(self) -> None:
        # As in Lightning, callbacks hear of a Ctrl-C through on_exception (the progress bar closes).
        interrupt = KeyboardInterrupt()
        for cb in self.callbacks:
            with contextlib.suppress(Exception):
                cb.on_exception(self, self.module, interrupt)
        path = self.default_root_dir / "checkpoints" / "interrupted"
        # `last` stays the newest state, so ckpt_path="last" resumes from here, not from the last save.
        keep_last = [
            cb
            for cb in self.callbacks
            if isinstance(cb, ModelCheckpoint) and cb.save_last and not self.fast_dev_run
        ]
        for cb in keep_last:
            cb.last_model_path = cb.last_path  # before the save: the checkpoint records it
        self.save_checkpoint(path)
        self.interrupted_checkpoint = path
        for cb in keep_last:
            ckpt.copy_checkpoint(path, cb.last_path)
        saved = f"Saved {path} at epoch {self.current_epoch}, global step {self.global_step}."
        hint = self.resume_hint.format(path=str(path)) if self.resume_hint else ""
        self.print(f"{saved} {hint}".rstrip())


def _trainable_keys(module: TrainModule) -> frozenset[str]:
    keys = frozenset(name for name, _ in tree_flatten(module.trainable_parameters()))
    if not keys:
        raise ValueError(
            f"{type(module).__name__} has no trainable parameters (everything is frozen): unfreeze some "
            "before fit"
        )
    return keys


def _prefixed(prefix: str, name: str) -> str:
    """`name` under `prefix` (a metric already named `train_acc` stays `train_acc`)."""
    return name if name.startswith(prefix) else prefix + name


def _version() -> str:
    from audiotrain import __version__

    return __version__


__all__ = ["Trainer"]


def _one_loader(
    method: str, name: str, value: Any, alias: str, alias_value: Any, required: bool = False
) -> Any:
    """A loader given by our name or Lightning's (`train_dataloaders`, ...), not both."""
    if value is not None and alias_value is not None:
        raise TypeError(f"Trainer.{method}: got both {name} and {alias}= (Lightning's name for it); pass one")
    loader = alias_value if value is None else value
    if required and loader is None:
        raise TypeError(f"Trainer.{method}: pass the batches ({name}, or {alias}=)")
    return loader


def _default_logger(root: Path) -> Logger:
    """`Trainer(logger=True)`, as in Lightning: TensorBoard under `default_root_dir` where a SummaryWriter
    (tensorboardX, or torch's) is installed, else CSV there."""
    try:
        return TensorBoardLogger(root, name="")
    except ImportError:
        return CSVLogger(root, name="")
