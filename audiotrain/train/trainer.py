"""The Trainer: the `fit` loop around the compiled steps in `step.py`.

The loop per batch reads top to bottom: check the batch, run the compiled step (an accumulating
micro-step or the update step that ends a window), schedule the state's evaluation (`mx.async_eval`,
one step ahead of the host), call the hooks. Host syncs (`.item()`) happen only at the logging
interval, at validation and at epoch end.

This file holds the Trainer's construction, its flags and the training loop. The rest of the class
comes from mixins, one concern each: the evaluation loops (`evaluation.py`), checkpoints and Ctrl-C
(`resume.py`), the metrics a fit reports and logs (`reporting.py`) and the checks on loaders and
batches (`batches.py`).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

from audiotrain.train import checkpoint as ckpt
from audiotrain.train import flags
from audiotrain.train.batches import BatchChecksMixin, one_loader
from audiotrain.train.callback import Callback
from audiotrain.train.callbacks import GradientClipper, ModelCheckpoint, ProgressBar
from audiotrain.train.evaluation import EvaluationMixin
from audiotrain.train.lazy import LazyScalar
from audiotrain.train.loggers import CSVLogger, Logger, TensorBoardLogger
from audiotrain.train.module import OptimizerConfig, TrainModule
from audiotrain.train.reporting import ReportingMixin, prefixed
from audiotrain.train.resume import ResumeMixin
from audiotrain.train.seeding import seed_everything
from audiotrain.train.step import EvalStep, StepConfig, TrainStep, all_finite

import mlx.core as mx
from mlx.utils import tree_flatten


class Trainer(EvaluationMixin, ResumeMixin, ReportingMixin, BatchChecksMixin):
    """Orchestrates training of a `TrainModule` with compiled MLX steps.

    Duration: `max_epochs` and/or `max_steps` (optimizer steps; whichever ends first).
    Validation: `val_check_interval` float = fraction of an epoch, int = every N training batches.
    Gradients: `gradient_clip_val` with `gradient_clip_algorithm` "norm"|"value",
    `accumulate_grad_batches` (mean over the window), non-finite updates skipped in-graph; after
    `max_consecutive_nonfinite` skipped updates in a row training stops with an error.
    The guard costs a sum over all gradients plus, for Adam/AdamW, selects fused into the update
    kernel (other optimizers: a select over the parameters and the optimizer state, see
    train/guarded_update.py); on a small MLP on the CPU backend that is 4-6% of the step
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
        train_loader = one_loader("fit", "train_loader", train_loader, "train_dataloaders", train_dataloaders)
        val_loader = one_loader("fit", "val_loader", val_loader, "val_dataloaders", val_dataloaders)
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
        train_metrics = {prefixed("train_", k): float(v.item()) / weight for k, v in self._epoch_sums.items()}
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
        # An epoch that a stop cut short (max_steps, or EarlyStopping inside it) already has a row, and its
        # end went to the loggers then, as Lightning logs an epoch that max_steps ends. Resumed and now
        # complete, its row becomes the whole epoch's; the loggers, which cannot take a value back, get
        # one end per epoch (a second one at another step was a second CSV row and chart point).
        ended_before = bool(self._history_rows) and self._history_rows[-1]["epoch"] == row["epoch"]
        if ended_before:
            self._history_rows[-1] = row
        else:
            self._history_rows.append(row)
            # `_epoch` as in Lightning: the epoch's last step already logged `train_loss` (the interval
            # mean), and a second value for one key at one step would replace it in W&B, CSV and TensorBoard.
            epoch_means = {f"{k}_epoch": v for k, v in train_metrics.items()}
            self.log_metrics({**epoch_means, "epoch": self.current_epoch}, step=self.global_step)
        module.on_train_epoch_end(self.current_epoch, {**train_metrics, **val_metrics})
        # Logged in the hook: part of this epoch (history, and what ModelCheckpoint/EarlyStopping see).
        late = self._pop_module_logs()
        if late:
            row.update(late)
            self.callback_metrics.update(late)
            if not ended_before:
                self.log_metrics(late, step=self.global_step)
        self._callbacks("on_train_epoch_end")
        if self._epoch_complete:
            self.current_epoch += 1
            self.batch_in_epoch = 0
            self._epoch_complete = False


def _trainable_keys(module: TrainModule) -> frozenset[str]:
    keys = frozenset(name for name, _ in tree_flatten(module.trainable_parameters()))
    if not keys:
        raise ValueError(
            f"{type(module).__name__} has no trainable parameters (everything is frozen): unfreeze some "
            "before fit"
        )
    return keys


def _default_logger(root: Path) -> Logger:
    """`Trainer(logger=True)`, as in Lightning: TensorBoard under `default_root_dir` where a SummaryWriter
    (tensorboardX, or torch's) is installed, else CSV there."""
    try:
        return TensorBoardLogger(root, name="")
    except ImportError:
        return CSVLogger(root, name="")


__all__ = ["Trainer"]
