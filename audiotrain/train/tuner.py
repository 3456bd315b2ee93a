"""Lightning's `Tuner`: `Tuner(trainer).lr_find(model, ...)`, the learning-rate range test.

    tuner = Tuner(trainer)
    lr_finder = tuner.lr_find(model, train_dataloaders=loader)  # sets model.lr (or learning_rate)
    print(lr_finder.suggestion()); fig = lr_finder.plot(suggest=True)
    trainer.fit(model, loader)  # configure_optimizers reads the suggested rate

Where Lightning runs the sweep on the user's Trainer (its callbacks and logger swapped out, a temporary
`.lr_find_<uuid>.ckpt` written to `default_root_dir` and loaded back), here it runs in a second Trainer with
the first one's training settings (precision, accumulation, clipping, compile, limits and overfit_batches,
device, seed), its own `fit` and compiled step, no callbacks but the sweep's, no loggers and no
checkpointing. The user's Trainer, its callbacks, loggers, counters and history are never touched, and
nothing is written to disk; what the sweep does change (the module's weights and which are frozen, its
trainer, the optimizer a module keeps, the training loader's position, the datamodule's state, the random
generators) is put back when it ends, however it ends, so that a `fit` after `lr_find(update_attr=False)`
trains exactly as on a fresh Trainer.
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from collections.abc import Mapping
from typing import Any

from audiotrain._warning_filters import ignoring_warnings
from audiotrain.train.callbacks import LearningRateFinder
from audiotrain.train.interrupt import save_aborted, stopped_by
from audiotrain.train.loaders import datamodule_given_as_loader, loader_source
from audiotrain.train.lr_finder import MODES, LRFinder, LRSweep, sweep_rates
from audiotrain.train.module import TrainModule
from audiotrain.train.step import set_trainable, trainable_names
from audiotrain.train.trainer import Trainer

_LR_NAMES = ("lr", "learning_rate")  # Lightning's names, looked for where attr_name is not given


class Tuner:
    """Lightning's `Tuner(trainer)`: `lr_find` finds a starting learning rate. `scale_batch_size` is not
    provided (it raises, saying so)."""

    def __init__(self, trainer: Trainer) -> None:
        if not isinstance(trainer, Trainer):
            raise TypeError(f"Tuner(trainer): expected an audiotrain Trainer, got {type(trainer).__name__}")
        self._trainer = trainer

    def lr_find(
        self,
        model: TrainModule,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        dataloaders: Any = None,
        datamodule: Any = None,
        method: str = "fit",
        min_lr: float = 1e-8,
        max_lr: float = 1.0,
        num_training: int = 100,
        mode: str = "exponential",
        early_stop_threshold: float | None = 4.0,
        update_attr: bool = True,
        attr_name: str = "",
        *,
        _holders: list[tuple[Any, str, bool]] | None = None,
        _caller: str = "Tuner.lr_find",
    ) -> LRFinder | None:
        """Train `num_training` optimizer steps with the learning rate rising from `min_lr` to `max_lr`
        ("exponential": evenly in log scale, "linear"), record the smoothed loss of each, and return an
        `LRFinder` (`results`, `suggestion()`, `plot()`). The sweep stops early where the smoothed loss
        exceeds `early_stop_threshold` times the best so far, or is not finite (None: never).

        With `update_attr` (Lightning's default) the suggestion is written to the module's `lr` or
        `learning_rate` (or `attr_name`), as an attribute and/or a key of `model.hparams`, and to a
        datamodule that has it (as Lightning's `lightning_setattr`). Nothing else carries the rate to the
        optimizer: the next `fit` calls `configure_optimizers`, which must build the optimizer (or its
        schedule's peak) from that attribute, e.g. ``optim.AdamW(learning_rate=self.lr)``; a warning says
        where it did not (an optimizer whose rate differs from the attribute's value).

        The loaders are given as to `fit` (`train_dataloaders`, `datamodule`, or the module's
        `train_dataloader()`); `val_dataloaders` is accepted and unused: the sweep does not validate (nor
        does it run the sanity check). `dataloaders` and `method` other than "fit" are refused, as in
        Lightning. Unlike Lightning's sweep, which also ends at the Trainer's `max_epochs`, this one goes on
        through the loader's epochs until `num_training` steps. With `fast_dev_run` it is skipped (a
        warning, None), as in Lightning.

        Under data parallel every process must call it (it trains): each runs the same sweep in lock-step,
        on its shard of the data, with the loss averaged over the ranks (see `LRSweep`), so the results and
        the suggestion are the same on every rank.
        """
        trainer = self._trainer
        _check_sweep_arguments(
            min_lr, max_lr, num_training, mode, early_stop_threshold, update_attr, attr_name
        )
        min_lr, max_lr, num_training = float(min_lr), float(max_lr), int(num_training)
        if method != "fit":
            raise ValueError(f"Tuner.lr_find(method={method!r}): the learning-rate finder runs 'fit' only")
        if dataloaders is not None:
            raise TypeError(
                "Tuner.lr_find(dataloaders=...): with method='fit' pass train_dataloaders= (and "
                "val_dataloaders=, unused) instead, as in Lightning"
            )
        if _caller == "Tuner.lr_find" and any(isinstance(cb, LearningRateFinder) for cb in trainer.callbacks):
            # (as Lightning's: the callback's sweep at the next fit's start would replace this one's rate)
            raise ValueError(
                "Tuner.lr_find: the Trainer already has a LearningRateFinder among its callbacks, which "
                "sweeps again when fit starts and sets its own rate: remove it from Trainer(callbacks=...) "
                "to use the Tuner, or keep it and call fit alone"
            )
        if not isinstance(model, TrainModule):
            raise TypeError(f"Tuner.lr_find: expected a TrainModule, got {type(model).__name__}")
        if (
            train_dataloaders is None
            and datamodule is None
            and loader_source("fit", None, model, {"train": None}) is None
        ):
            raise TypeError(
                "Tuner.lr_find: no training batches: pass train_dataloaders= (a DataLoader or a list of "
                "batches) or datamodule=, or define train_dataloader on the module"
            )
        if trainer.fast_dev_run:
            warnings.warn(
                "Tuner.lr_find: skipped, since fast_dev_run is enabled (as in Lightning)", stacklevel=2
            )
            return None
        if datamodule is None:  # (Lightning's lr_find(model, dm): a DataModule in the loader's place)
            train_dataloaders, datamodule = datamodule_given_as_loader("fit", train_dataloaders, None)
        if _holders is not None:  # (LearningRateFinder's: found with its fit's datamodule, before the sweep)
            holders = _holders
        else:
            holders = _lr_holders(model, datamodule, attr_name) if update_attr else []

        rates = sweep_rates(min_lr, max_lr, num_training, mode)
        finder = LRFinder(mode, min_lr, max_lr, num_training)
        if _caller != "Tuner.lr_find":  # (the callback's user gave its count as num_training_steps)
            finder._steps_argument = "num_training_steps"
        sweep = LRSweep(rates, None if early_stop_threshold is None else float(early_stop_threshold))
        sweeper = _sweep_trainer(trainer, num_training, sweep)
        saved = _ModuleSnapshot(model, datamodule)
        if trainer.enable_progress_bar:
            # The progress lines that follow read as a fit's epochs (Lightning's bar says "Finding best
            # initial lr" instead).
            trainer._note(
                f"{_caller}: a sweep of {num_training} steps from learning rate {min_lr:g} to "
                f"{max_lr:g} ({mode}), not a fit: its epochs are the sweep's"
            )
        try:
            # A sweep is meant to diverge: the updates its last steps skip are no news. (Hidden for the sweep
            # alone, beside a sweep's other threads: `ignoring_warnings`.)
            with ignoring_warnings(r"Trainer\.fit: \d+ optimizer update\(s\)", category=UserWarning):
                sweeper.fit(model, train_dataloaders, None, datamodule)
        except BaseException as err:
            if hasattr(err, "add_note"):  # (Python 3.11)
                err.add_note("(raised in the learning-rate sweep of Tuner.lr_find, a fit of its own Trainer)")
            raise
        finally:
            sweep.restore()
            saved.restore()
        if sweeper.interrupted:
            # A sweep cut short says nothing of the rate (it stopped at the low end): the module keeps its
            # own, and the stop reaches the caller as an aborted fit's does (status 130 for a script, a
            # KeyboardInterrupt in a notebook), not a fit at a rate picked from a few steps.
            trainer._note(
                f"{_caller}: interrupted ({stopped_by()}) after {len(sweep.losses)} of {num_training} "
                "steps of the sweep; the learning rate was left as it was"
            )
            raise save_aborted()
        finder.results = {"lr": list(sweep.lrs), "loss": list(sweep.losses)}
        if sweep.jumped_to_nonfinite is not None:
            step, rate, before, best = sweep.jumped_to_nonfinite
            warnings.warn(
                f"Tuner.lr_find: the loss was non-finite (NaN or inf) at step {step} of {num_training} "
                f"(lr={rate:.3g}), from {before:.3g} (its best so far: {best:.3g}) the step before: a NaN in "
                "a batch or in the loss, more likely than a rate too high (a diverging loss grows first); "
                f"the suggestion comes from the steps before it. Check the data and the loss for NaN",
                UserWarning,
                stacklevel=2,
            )
        finder._stopped_early = sweep.stopped
        # (LearningRateFinder sets the suggestion on its fit's optimizer itself: no warning of the next fit)
        optimizer_rate = sweep.optimizer_rate if _caller == "Tuner.lr_find" else None
        lr = _update_lr(finder, holders, optimizer_rate) if holders else None
        finder._rate_set = lr
        if trainer.enable_progress_bar:
            trainer._note(_outcome(finder, num_training, holders, lr, model, _caller))
        return finder

    def scale_batch_size(self, *args: Any, **kwargs: Any) -> int | None:
        """Lightning's batch-size search: not provided."""
        raise NotImplementedError(
            "Tuner.scale_batch_size is not provided: choose the batch size yourself (the largest that fits "
            "in memory with room for the longest clips; under data parallel each process's DataLoader "
            "batch_size is its share of the global batch)"
        )


def _check_sweep_arguments(
    min_lr: Any,
    max_lr: Any,
    num_training: Any,
    mode: Any,
    early_stop_threshold: Any,
    update_attr: Any,
    attr_name: Any,
    caller: str = "Tuner.lr_find",
    steps_name: str = "num_training",
) -> None:
    """Refuse a sweep setting, named as `caller` takes it (`LearningRateFinder`'s `num_training_steps`)."""

    def number(value: Any) -> bool:  # (numpy's too, as a Trainer's flags take them)
        return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)

    if not number(min_lr) or min_lr <= 0:
        raise ValueError(f"{caller}(min_lr={min_lr!r}): expected a finite number > 0")
    if not number(max_lr) or max_lr <= min_lr:
        raise ValueError(f"{caller}(max_lr={max_lr!r}): expected a finite number > min_lr={min_lr!r}")
    if isinstance(num_training, bool) or not isinstance(num_training, numbers.Integral) or num_training < 2:
        raise ValueError(
            f"{caller}({steps_name}={num_training!r}): expected an int >= 2 (the optimizer steps of the "
            "sweep, one learning rate each)"
        )
    if mode not in MODES:
        raise ValueError(f"{caller}(mode={mode!r}): expected 'exponential' or 'linear'")
    if early_stop_threshold is not None and (not number(early_stop_threshold) or early_stop_threshold <= 0):
        raise ValueError(
            f"{caller}(early_stop_threshold={early_stop_threshold!r}): expected a finite number > 0 "
            "(the sweep stops where the smoothed loss exceeds it times the best), or None to run every step"
        )
    if not isinstance(update_attr, bool):
        raise TypeError(f"{caller}(update_attr={update_attr!r}): expected True or False")
    if not isinstance(attr_name, str):
        raise TypeError(f"{caller}(attr_name={attr_name!r}): expected the attribute's name, a str")


def _sweep_trainer(trainer: Trainer, num_training: int, sweep: LRSweep) -> Trainer:
    """A Trainer with `trainer`'s training settings that runs `num_training` steps with `sweep` alone.

    Under `overfit_batches` it sweeps the same unshuffled first batches the user's fit trains on (as
    Lightning's sweep, which runs in the user's fit loop); its validation stays off."""
    overfitting = bool(trainer.overfit_batches)
    sweeper = Trainer(
        max_steps=num_training,
        callbacks=[sweep],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=trainer.enable_progress_bar,
        default_root_dir=trainer.default_root_dir,  # (nothing is written there)
        # No validation, no sanity check (under overfit_batches set below: given here, it is warned of).
        limit_val_batches=None if overfitting else 0,
        limit_train_batches=None if overfitting else trainer.limits["train"],
        overfit_batches=trainer.overfit_batches,
        accumulate_grad_batches=trainer.accumulate_grad_batches,
        gradient_clip_val=trainer.gradient_clip_val,  # (a GradientClipper's too)
        gradient_clip_algorithm=trainer.gradient_clip_algorithm,
        precision=trainer.precision,
        compile=trainer.compile,
        debug_lazy_eval=trainer.debug_lazy_eval,
        nonfinite_guard=trainer.nonfinite_guard,
        # A diverging sweep is expected: it stops on the loss (LRSweep), not with FloatingPointError.
        max_consecutive_nonfinite=num_training + 1,
        track_grad_norm=False,
        # Each step a logging step: under data parallel the ranks agree on a stop at logging steps, so a
        # stop comes one step after the loss asked for it (no loggers: nothing is written).
        log_every_n_steps=1,
        seed=trainer.seed,
        accelerator=trainer.accelerator,
        strategy=trainer.strategy,
        deterministic=trainer.deterministic,
    )
    sweeper.limits["val"] = 0
    # Its stop saves nothing by design: lr_find says in one line what a stop leaves (its own Trainer's
    # "no checkpoint saved (enable_checkpointing=False)" named a setting the user never chose).
    sweeper._stopping.says_what_was_saved = False
    # Lightning's sweep swaps the fit's lr schedulers for its own: a ReduceLROnPlateau from
    # configure_optimizers would check a validation metric the sweep never logs (its issue #20355).
    sweeper._steps_configured_plateau = False
    return sweeper


class _ModuleSnapshot:
    """What the sweep's fit changes outside its own Trainer and the optimizer (`LRSweep.restore`): the
    module's arrays (weights, BatchNorm statistics; dtype under bf16-true), which of them are frozen (a hook
    may freeze or unfreeze layers during the sweep), its submodules' training flags, its trainer and pending
    `self.log` values, the state its `on_save_checkpoint` keeps (given back to `on_load_checkpoint`, as
    Lightning's restore from its checkpoint does), and the datamodule's `trainer` and `state_dict()`. The
    random generators are put back by `fit` itself."""

    def __init__(self, module: TrainModule, datamodule: Any) -> None:
        self.module, self.datamodule = module, datamodule
        self.arrays = module.parameters()  # (new containers; MLX arrays are immutable: a snapshot)
        self.trainable = trainable_names(module)
        # Parents before children: `train(mode)` sets a whole subtree, then each child gets its own back.
        named = sorted(module.named_modules(), key=lambda item: item[0].count(".") + bool(item[0]))
        self.training = [(m, m.training) for _, m in named]
        self.trainer = module._trainer
        self.logged = dict(module._logged)
        # What a checkpoint would keep of the module's own state, with the `epoch` and `global_step` a
        # checkpoint gives it (train/hook_state.py); its trainer's, where it has one.
        where = {
            "epoch": getattr(self.trainer, "current_epoch", 0),
            "global_step": getattr(self.trainer, "global_step", 0),
        }
        self.hook_state: dict[str, Any] = dict(where)
        module.on_save_checkpoint(self.hook_state)
        self.dm_trainer = getattr(datamodule, "trainer", None)
        state_dict = getattr(datamodule, "state_dict", None)
        self.dm_state = copy.deepcopy(state_dict()) if callable(state_dict) else None

    def restore(self) -> None:
        module = self.module
        module.update(self.arrays)
        if trainable_names(module) != self.trainable:  # (a hook froze or unfroze some in the sweep)
            set_trainable(module, self.trainable)
        for m, training in self.training:
            m.train(training)
        object.__setattr__(module, "_trainer", self.trainer)
        module._logged.clear()
        module._logged.update(self.logged)
        module.on_load_checkpoint(dict(self.hook_state))
        if self.datamodule is not None:
            if hasattr(self.datamodule, "trainer"):
                self.datamodule.trainer = self.dm_trainer
            load = getattr(self.datamodule, "load_state_dict", None)
            if self.dm_state and callable(load):
                load(copy.deepcopy(self.dm_state))


def _lr_holders(
    module: TrainModule, datamodule: Any, attr_name: str, caller: str = "Tuner.lr_find"
) -> list[tuple[Any, str, bool]]:
    """Where the learning rate is written (Lightning's `lightning_setattr`): the module (an attribute),
    `module.hparams` (a key), the datamodule (an attribute) and its `hparams` (a key), each that has the
    name. Refused where none has it, naming what was looked for. Returns (holder, name, whether it is a
    key) for each."""
    names = (attr_name,) if attr_name else _LR_NAMES
    for name in names:
        holders = [(module, name, False)] if _has_attribute(module, name) else []
        if name in module.hparams:
            holders.append((module.hparams, name, True))
        if datamodule is not None and _has_attribute(datamodule, name):
            holders.append((datamodule, name, False))
        # (Lightning looks in the datamodule's save_hyperparameters() too)
        dm_hparams = getattr(datamodule, "hparams", None) if datamodule is not None else None
        if isinstance(dm_hparams, Mapping) and name in dm_hparams:
            holders.append((dm_hparams, name, True))
        if holders:
            return holders
    looked_for = " or ".join(repr(n) for n in names)
    where = (
        "model, model.hparams, the datamodule or its hparams"
        if datamodule is not None
        else "model or model.hparams"
    )
    # (the callback's user wrote LearningRateFinder(...), and reads its result as optimal_lr)
    called, result = ("lr_find", "lr_finder") if caller == "Tuner.lr_find" else (caller, "optimal_lr")
    hint = (
        f"; check the spelling of attr_name={attr_name!r}"
        if attr_name
        else f"; name yours with {called}(attr_name=...)"
    )
    raise AttributeError(
        f"{caller}(update_attr=True): found no learning-rate attribute {looked_for} in {where}{hint}, "
        f"or pass update_attr=False and read {result}.suggestion()"
    )


def _has_attribute(holder: Any, name: str) -> bool:
    # (not a method or property of the class: a number the user keeps)
    return hasattr(holder, name) and not callable(getattr(holder, name))


def _outcome(
    finder: LRFinder,
    num_training: int,
    holders: list[tuple[Any, str, bool]],
    lr: Any,
    model: TrainModule,
    caller: str = "Tuner.lr_find",
) -> str:
    """lr_find's last line: how far the sweep went and what it set (Lightning logs "Learning rate set to")."""
    steps = len(finder.results["lr"])
    if finder._stopped_early:
        ran = (
            f"stopped early after {steps} of {num_training} steps, where the loss diverged "
            f"(lr={finder.results['lr'][-1]:.3g})"
        )
    else:
        ran = f"ran {steps} of {num_training} steps"
    if not holders:
        result = "lr_finder" if caller == "Tuner.lr_find" else "optimal_lr"
        return f"{caller}: {ran}; update_attr=False: nothing set ({result}.suggestion())"
    if lr is None:
        name = holders[0][1]
        return f"{caller}: {ran}; no rate suggested (the warning says why): {name} left as it was"

    def place(holder: Any, key: str, is_key: bool) -> str:
        if is_key:
            return f"{'model' if holder is model.hparams else 'datamodule'}.hparams[{key!r}]"
        return f"{'model' if isinstance(holder, TrainModule) else 'datamodule'}.{key}"

    where = ", ".join(place(*holder) for holder in holders)
    return f"{caller}: {ran}; {holders[0][1]} set to {lr:.3g} ({where})"


def _update_lr(
    finder: LRFinder, holders: list[tuple[Any, str, bool]], optimizer_rate: float | None
) -> float | None:
    """Write the suggestion where the rate lives (none: `suggestion()` has warned, nothing changes), and
    warn where the optimizer's rate did not come from there (`optimizer_rate`: configure_optimizers').
    Returns the rate written, or None."""
    lr = finder._suggestion(10, 1)  # (Lightning's defaults)
    if lr is None:
        return None
    name, before = holders[0][1], None
    for holder, key, is_key in holders:  # (a TrainModule is a dict too: `is_key` tells hparams apart)
        if is_key:
            before = holder[key] if before is None else before
            holder[key] = lr
        else:
            before = getattr(holder, key) if before is None else before
            setattr(holder, key, lr)
    if (
        optimizer_rate is not None
        and isinstance(before, (int, float))
        and not math.isclose(optimizer_rate, before, rel_tol=1e-6)
    ):
        warnings.warn(
            f"Tuner.lr_find: {name} is set to the suggested {lr:.3g}, but configure_optimizers gave the "
            f"optimizer learning_rate={optimizer_rate:.3g} while {name} was {before:.3g}: it may not read "
            f"{name}, and the next fit would not use the suggestion. Build the optimizer from it "
            f"(e.g. optim.AdamW(learning_rate=self.{name}))",
            UserWarning,
            stacklevel=3,
        )
    return lr
