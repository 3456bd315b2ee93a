"""`TrainModule`: what a task defines (loss, optimizer, hooks); the `Trainer` runs it."""

from __future__ import annotations

import argparse
import contextlib
import copy
import inspect
import json
import math
import os
import sys
import types
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, overload

from audiotrain._caller import user_stacklevel
from audiotrain._omegaconf import as_omegaconf, config_views, is_omegaconf, plain_omegaconf
from audiotrain.train.class_methods import classmethod_of_the_class
from audiotrain.train.gathering import gather_over_ranks
from audiotrain.train.log_keywords import instead_of_reduction, refuse_log_keywords
from audiotrain.train.schedulers import IntervalSchedule, tried_schedule
from audiotrain.train.state_dict_loading import IncompatibleKeys, checked_arrays
from audiotrain.train.trace_guard import TRANSFORM_EVAL

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten

if TYPE_CHECKING:
    from pathlib import Path

    from audiotrain.train.loggers import Logger
    from audiotrain.train.trainer import Trainer

    # typing_extensions: typing.Self is 3.11+, and checkers know typing_extensions without it installed.
    from typing_extensions import Self


@dataclass
class OptimizerConfig:
    """The optimizer a module trains with.

    Attributes:
        optimizer: any `mlx.optimizers.Optimizer`. Its `learning_rate` may be a float or a schedule
            (a callable of the step, e.g. `WarmupCosineScheduler`); the schedule is evaluated inside
            the compiled step.
        lr_schedule_name: a label for logs and the checkpoint (e.g. "warmup_cosine").
        lr_log_name: the name a `LearningRateMonitor` logs the learning rate under (Lightning's
            lr_scheduler "name"); None: `lr-<Optimizer>`.
        clip_each_group: with norm clipping (`Trainer(gradient_clip_val=...)`), clip each optimizer of a
            `MultiOptimizer` by the norm of its own gradients, as Lightning clips each of several
            optimizers (a GAN's generator and discriminator). False: one norm of all the gradients, as
            Lightning's over one optimizer's parameter groups (a MultiOptimizer for per-group rates).
    """

    optimizer: optim.Optimizer
    lr_schedule_name: str | None = None
    lr_log_name: str | None = None
    clip_each_group: bool = False

    def __post_init__(self):
        if not isinstance(self.optimizer, optim.Optimizer):
            raise TypeError(
                "OptimizerConfig.optimizer must be an mlx.optimizers.Optimizer instance "
                f"(e.g. optim.AdamW(learning_rate=1e-3)), got {_type_name(self.optimizer)}"
                + _TORCH_OPTIMIZER
                * _from_torch(self.optimizer)
            )
        if not isinstance(self.clip_each_group, bool):
            raise TypeError(
                f"OptimizerConfig.clip_each_group must be True or False, got {self.clip_each_group!r}"
            )
        if self.lr_schedule_name is not None and not isinstance(self.lr_schedule_name, str):
            raise TypeError(
                "OptimizerConfig.lr_schedule_name must be a string (a label for logs and the checkpoint, "
                f"e.g. 'warmup_cosine') or None, got {self.lr_schedule_name!r}; the schedule itself is the "
                "optimizer's learning_rate (optim.AdamW(learning_rate=optim.cosine_decay(1e-3, 1000)))"
            )
        if self.lr_log_name is not None and not isinstance(self.lr_log_name, str):
            raise TypeError(
                "OptimizerConfig.lr_log_name must be a string (the name a LearningRateMonitor logs the "
                f"learning rate under) or None, got {self.lr_log_name!r}"
            )

    @classmethod
    def from_module_output(cls, value: Any, where: str, trainer: Trainer | None = None) -> OptimizerConfig:
        """What `configure_optimizers` returned, as an OptimizerConfig: one already, a bare optimizer,
        Lightning's dict `{"optimizer": opt, "lr_scheduler": schedule}` or `{"optimizer": opt,
        "lr_scheduler": {"scheduler": schedule, "interval": ..., "frequency": ..., "name": ...}}` (its
        "name" names the learning rate a LearningRateMonitor logs), or Lightning's lists of one optimizer:
        `[opt]`, `([opt], [schedule])`.

        A schedule is a callable (an audiotrain scheduler). As in Lightning, its interval is "epoch" unless
        the dict says "step", in all three forms: with "epoch" it is evaluated at the epoch index (stepped
        every `frequency` epochs), with "step" at the optimizer step. MLX evaluates a schedule inside the
        compiled update from the optimizer's step counter, so an epoch schedule is written as a function
        of that counter (`IntervalSchedule`), which needs the epoch's length: `trainer`'s training loader
        must have one. Metric-driven schedules ("monitor") have no counterpart and are refused.

        Every schedule of the optimizer (an lr_scheduler, or a learning_rate given as a schedule) is tried
        once on an mx.array step, compiled when `trainer` compiles (`tried_schedule`): one that cannot run
        inside the compiled update is refused here, and one that returns a Python number is wrapped to
        return an mx.array, which MLX's optimizers other than Adam need.
        """
        config = cls._parse_module_output(value, where, trainer)
        config.try_schedules(where, compiled=trainer.compile if trainer is not None else True)
        if config.lr_schedule_name is not None and not isinstance(value, cls):
            # The lr_scheduler set as its learning rate (as tried), which a later call may replace.
            for optimizer in _optimizers_in(config.optimizer):
                setattr(optimizer, _LR_SCHEDULER_ATTRIBUTE, optimizer._schedulers.get("learning_rate"))
        config.check_learning_rates(where)
        return config

    def check_learning_rates(self, where: str) -> None:
        """Refuse a number learning rate (not a schedule) below 0 or not finite: MLX's optimizers take any,
        and a negative rate climbs the loss with no error (the recipes' settings refuse it too). 0 is
        allowed, to run the loop without changing the weights."""
        for optimizer in _optimizers_in(self.optimizer):
            if isinstance(optimizer, optim.Adafactor):
                _check_adafactor_rate(optimizer, where)
            rate = optimizer.state.get("learning_rate")
            if "learning_rate" in optimizer._schedulers or not isinstance(rate, mx.array) or rate.size != 1:
                continue  # (a schedule's values are its own; an optimizer of its own making may have none)
            value = rate.item()
            if not math.isfinite(value) or value < 0:
                raise ValueError(
                    f"{where}: {type(optimizer).__name__} has learning_rate={value}: expected a finite number "
                    ">= 0; give configure_optimizers a positive rate (e.g. optim.AdamW(learning_rate=1e-3))"
                )

    def try_schedules(self, where: str, compiled: bool = True) -> None:
        """Try each schedule of the optimizer (a MultiOptimizer's too) as `tried_schedule` does, putting
        back wrapped the ones that return a number."""
        for optimizer in _optimizers_in(self.optimizer):
            for name, schedule in list(optimizer._schedulers.items()):
                what = "learning-rate" if name == "learning_rate" else name
                tried = tried_schedule(schedule, where, what, compiled)
                if tried is not schedule:
                    optimizer._maybe_schedule(name, tried)  # (the stored value too, as an array now)

    @classmethod
    def _parse_module_output(cls, value: Any, where: str, trainer: Trainer | None) -> OptimizerConfig:
        if isinstance(value, cls):
            return value
        if isinstance(value, optim.Optimizer):
            return cls(value)
        _refuse_torch_param_groups(value, where)
        if isinstance(value, (list, tuple)):
            return cls._parse_module_output(_one_optimizer(value, where), where, trainer)
        if value is None:
            # Mostly a `return` left out. Lightning warns and fits without an optimizer (every batch run, the
            # weights never change); a compiled step here always updates, and an unchanged model is no fit.
            raise TypeError(
                f"{where} returned None (is a `return` missing?): a fit needs an optimizer; return one, "
                "an OptimizerConfig or {'optimizer': ..., 'lr_scheduler': ...}. (Lightning warns and fits "
                "without an optimizer, leaving the weights as they are; to score a model without training "
                "it, call trainer.validate or trainer.test)"
            )
        if not isinstance(value, dict):
            raise TypeError(
                f"{where} must return an OptimizerConfig, an mlx.optimizers.Optimizer or Lightning's dict "
                f"{{'optimizer': ..., 'lr_scheduler': ...}}; got {_type_name(value)}"
                + _TORCH_OPTIMIZER
                * _from_torch(value)
            )
        # Lightning 1's optimizer "frequency": a lone optimizer steps at every batch whatever its
        # frequency (Lightning 1 cycles through the optimizers; Lightning 2 ignores the key), so taken.
        frequency = value.get("frequency", 1)
        if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 1:
            raise TypeError(
                f"{where}: the optimizer's 'frequency': {frequency!r}: expected an int >= 1 (Lightning 1's "
                "number of batches an optimizer steps before the next one's turn)"
            )
        unknown = sorted(set(value) - {"optimizer", "lr_scheduler", "monitor", "frequency"})
        if unknown or "optimizer" not in value:
            raise TypeError(
                f"{where} returned a dict with keys {sorted(value)}; expected 'optimizer' and optionally "
                "'lr_scheduler' and 'monitor'"
                + (f" (not {', '.join(map(repr, unknown))})" if unknown else "")
            )
        optimizer, scheduler = value["optimizer"], value.get("lr_scheduler")
        if isinstance(optimizer, cls):
            raise TypeError(
                f"{where} returned {{'optimizer': OptimizerConfig(...)}}: an OptimizerConfig takes the place "
                "of Lightning's dict, so return the OptimizerConfig itself (its lr_log_name is the "
                "lr_scheduler's 'name'; a schedule goes in as its optimizer's learning_rate, always per "
                "step), or the dict with the optimizer itself"
            )
        config = cls(optimizer)
        plateau = _plateau_callback(scheduler)
        if plateau is None:
            _refuse_monitor(value, where, "")
        if scheduler is None:
            return config
        interval, frequency, interval_given = "epoch", 1, False  # Lightning's defaults
        if isinstance(scheduler, dict):
            unknown = sorted(set(scheduler) - set(_SCHEDULER_KEYS))
            if unknown:
                raise TypeError(
                    f"{where}: the lr_scheduler dict has keys {unknown} that Lightning does not know either; "
                    f"expected {', '.join(_SCHEDULER_KEYS)}"
                )
            if plateau is None:
                _refuse_monitor(scheduler, where, "lr_scheduler ")
            if "scheduler" not in scheduler:
                raise TypeError(
                    f"{where}: the lr_scheduler dict {sorted(scheduler)} has no 'scheduler': give the schedule "
                    "itself as {'scheduler': schedule, 'interval': 'step' or 'epoch'}"
                )
            interval_given = "interval" in scheduler
            interval, frequency = scheduler.get("interval", "epoch"), scheduler.get("frequency", 1)
            if interval not in ("step", "epoch"):
                raise ValueError(
                    f"{where}: lr_scheduler 'interval': {interval!r}: expected 'step' or 'epoch'"
                )
            if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 1:
                raise ValueError(
                    f"{where}: lr_scheduler 'frequency': {frequency!r}: expected an int >= 1 (the schedule "
                    f"steps every `frequency` {interval}s)"
                )
            name = scheduler.get("name")
            if name is not None and not isinstance(name, str):
                # (refused here: a LearningRateMonitor builds its series' names from it in the first step)
                raise TypeError(
                    f"{where}: lr_scheduler 'name': {name!r}: expected a string (the name a "
                    "LearningRateMonitor logs the learning rate under) or None"
                )
            config.lr_log_name = name
        if plateau is not None:
            outer = scheduler if isinstance(scheduler, dict) else {}
            _configure_plateau(plateau, {**value, **outer}, interval, frequency, where)
            config._plateau = plateau  # (the Trainer adds it to its callbacks for this fit)
            return config
        if isinstance(scheduler, dict):
            scheduler = scheduler["scheduler"]
        if not callable(scheduler):
            torch = (
                ", a torch scheduler: it steps a torch optimizer. Give one of audiotrain's schedules "
                "(audiotrain.train.schedulers: StepLRScheduler, ExponentialLRScheduler, "
                "WarmupCosineScheduler, WarmupLinearScheduler, OneCycleScheduler) or mlx.optimizers' "
                "(step_decay, cosine_decay, ...)"
                if _from_torch(scheduler)
                else ""
            )
            raise TypeError(
                f"{where}: lr_scheduler must be a schedule, a callable of the step (e.g. "
                f"audiotrain.train.schedulers.WarmupCosineScheduler), got {_type_name(scheduler)}{torch}; "
                "a metric-driven schedule (torch's ReduceLROnPlateau) is audiotrain.train.callbacks."
                "ReduceLROnPlateau(mode=..., factor=..., patience=...), given here with a 'monitor' or in "
                "Trainer(callbacks=[...])"
            )
        if isinstance(optimizer, optim.MultiOptimizer):
            # Its optimizers each keep their own rate and apply their own schedule; one absolute schedule
            # would erase the difference between the groups (Lightning's scales each group's rate).
            raise TypeError(
                f"{where}: an lr_scheduler with a MultiOptimizer: each of its optimizers has its own "
                "learning rate, and the MultiOptimizer applies no schedule of its own. Give each optimizer "
                "its schedule as its learning rate, e.g. MultiOptimizer([optim.AdamW(learning_rate="
                "WarmupCosineScheduler(1e-4, ...)), optim.AdamW(learning_rate=WarmupCosineScheduler(1e-3, "
                "...))], filters), and return it without 'lr_scheduler'"
                + _counted_in_steps(interval, frequency)
            )
        own = optimizer._schedulers.get("learning_rate")
        ours = own is getattr(optimizer, _LR_SCHEDULER_ATTRIBUTE, None) or isinstance(own, IntervalSchedule)
        if own is not None and own is not scheduler and not ours:
            # (Setting the lr_scheduler would silently drop the optimizer's own schedule; the same schedule
            # given as both, one installed here by an earlier call with the same optimizer object (a second
            # fit's) or re-anchored by a resume (an IntervalSchedule) is replaced as before.)
            raise TypeError(
                f"{where}: the optimizer's learning_rate is already a schedule ({_type_name(own)}) and an "
                f"lr_scheduler ({_type_name(scheduler)}) is given too: one would silently replace the other. "
                "Give one schedule: as the lr_scheduler with a number learning rate "
                "(optim.SGD(learning_rate=0.0)), or as the learning rate without 'lr_scheduler'; compose two "
                "with mlx.optimizers.join_schedules (in sequence) or a product"
            )
        _warn_unused_rate(optimizer, scheduler, where)
        config.lr_schedule_name = getattr(scheduler, "name", None) or type(scheduler).__name__
        if interval != "step" or frequency != 1:
            scheduler = _stepped_as_lightning(scheduler, interval, frequency, interval_given, where, trainer)
        # MLX optimizers take a schedule in place of a learning rate; set it as their constructor would.
        optimizer._maybe_schedule("learning_rate", scheduler)
        return config


def _warn_unused_rate(optimizer: optim.Optimizer, scheduler: Any, where: str) -> None:
    """Warn where the optimizer's number rate differs from the `initial_lr` of the lr_scheduler that replaces
    it (StepLRScheduler, ExponentialLRScheduler): torch's StepLR and ExponentialLR start from the optimizer's
    lr, so a port that kept Lightning's `SGD(lr=0.5)` beside a schedule from 0.1 would train at 0.1 unsaid.
    0 is the placeholder the README's example gives; a schedule already there is not a number rate."""
    base, rate = getattr(scheduler, "initial_lr", None), optimizer.state.get("learning_rate")
    if "learning_rate" in optimizer._schedulers or not isinstance(base, (int, float)):
        return
    if not isinstance(rate, mx.array) or rate.size != 1 or rate.item() == 0:
        return
    if not math.isclose(rate.item(), base, rel_tol=1e-6):
        warnings.warn(
            f"{where}: {type(optimizer).__name__}(learning_rate={rate.item():.6g}) is not used: the "
            f"lr_scheduler {type(scheduler).__name__} starts from its own initial_lr={base:g} and replaces "
            "it (torch's schedulers start from the optimizer's lr); give the schedule the rate to start from",
            stacklevel=user_stacklevel(),  # (the user's fit call: the list form parses one level deeper)
        )


def _counted_in_steps(interval: str, frequency: int) -> str:
    """What to add where an lr_scheduler stepped per epoch (or every `frequency` steps) has to be rewritten
    as a learning rate schedule: that one is evaluated at every optimizer step, so a StepLRScheduler(1e-4,
    step_size=2) moved there unchanged halved the rate every 2 updates instead of every 2 epochs, unsaid."""
    if interval == "step" and frequency == 1:
        return ""
    if interval == "step":
        return (
            f". This lr_scheduler is stepped once every {frequency} steps, and a schedule given as a "
            f"learning rate at every step: multiply its step counts by {frequency} "
            f"(StepLRScheduler(1e-4, step_size=2 * {frequency}))"
        )
    every = f"{frequency} epochs" if frequency != 1 else "epoch"
    return (
        f". This lr_scheduler is stepped once every {every}, and a schedule given as a learning rate at "
        "every optimizer step: count it in steps (in configure_optimizers, an epoch is steps_per_epoch = "
        "math.ceil(len(self.trainer.train_dataloader) / self.trainer.accumulate_grad_batches) updates), "
        "e.g. torch's StepLR(step_size=2) stepped per epoch is StepLRScheduler(1e-4, step_size=2 * "
        "steps_per_epoch)"
    )


def _stepped_as_lightning(
    schedule: Any, interval: str, frequency: int, interval_given: bool, where: str, trainer: Trainer | None
) -> IntervalSchedule:
    """`schedule` as a function of the optimizer step that Lightning's `interval` and `frequency` step."""
    batches = trainer._train_batches_per_epoch() if trainer is not None else None
    setting = f"'interval': {interval!r}" if interval_given else f"Lightning's default interval {interval!r}"
    if batches is None:
        raise ValueError(
            f"{where}: an lr_scheduler with {setting}, 'frequency': {frequency} is evaluated at the epoch "
            "(or batch) index, derived here from the optimizer step and the number of batches in an epoch, "
            "and the training loader has no length (len(loader)). Give a loader with a length or "
            "limit_train_batches=N, or a per-step schedule as {'scheduler': schedule, 'interval': 'step'} "
            "(e.g. WarmupCosineScheduler with total_steps=trainer.estimated_stepping_batches)"
        )
    # (An empty loader trains nothing; one batch keeps the schedule well defined.)
    accumulate = trainer.accumulate_grad_batches
    stepped = IntervalSchedule(schedule, interval, frequency, max(batches, 1), accumulate)
    total = getattr(schedule, "total_steps", None)
    fit_steps = trainer._estimate_stepping_batches()  # (not the user's read: Trainer._follow_rebuilt_epochs)
    if interval == "epoch" and isinstance(total, int) and fit_steps != math.inf:
        epochs = math.ceil(fit_steps / stepped.steps_per_epoch)
        if total > epochs // frequency:
            # An audiotrain schedule counted in optimizer steps, in Lightning's epoch form: it would stay
            # in its warmup (or never decay) for the whole run.
            warnings.warn(
                f"{where}: the lr_scheduler {type(schedule).__name__}(total_steps={total}) is stepped once "
                f"per {'epoch' if frequency == 1 else f'{frequency} epochs'} ({setting}), and this fit runs "
                f"{epochs} epoch{'s' if epochs != 1 else ''}: it would use {epochs // frequency} of its {total} "
                "steps. For a schedule counted in optimizer steps return {'scheduler': schedule, 'interval': "
                "'step'}",
                stacklevel=4,
            )
    return stepped


#: What `configure_optimizers` may return (`OptimizerConfig.from_module_output` reads each form): an
#: `OptimizerConfig`, an optimizer, Lightning's dict, `[opt]`, or `([opt], [schedule])` (`([opt], schedule)`).
OptimizerReturn: TypeAlias = (
    OptimizerConfig
    | optim.Optimizer
    | dict[str, Any]
    | Sequence[optim.Optimizer]
    | tuple[Sequence[optim.Optimizer], Any]
)

# The keys of Lightning's lr_scheduler dict.
_SCHEDULER_KEYS = ("scheduler", "interval", "frequency", "name", "monitor", "strict", "reduce_on_plateau")


def _check_adafactor_rate(optimizer: optim.Adafactor, where: str) -> None:
    """MLX's Adafactor reads `learning_rate` only with `relative_step=False` (torch's caps its relative step
    at `lr`): without one there its first update fails with a bare KeyError, and one given alongside the
    default `relative_step=True` is unused, which the learning rate logged would hide."""
    given = "learning_rate" in optimizer.state
    if not optimizer.relative_step and not given:
        raise ValueError(
            f"{where}: Adafactor(relative_step=False) has no learning_rate to update with: give one "
            "(optim.Adafactor(learning_rate=1e-3, relative_step=False)), or leave relative_step at True"
        )
    if optimizer.relative_step and given:
        warnings.warn(
            f"{where}: Adafactor(learning_rate=...) with relative_step=True (MLX's default) does not use "
            "that rate: each update computes each parameter's from the step (min(1e-2, 1/sqrt(step)) times "
            "the parameter's scale). To train at the rate given, pass relative_step=False",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def has_learning_rate(optimizer: optim.Optimizer) -> bool:
    """Whether `optimizer` (a MultiOptimizer's first group) updates with one learning rate to read. MLX's
    Adafactor with `relative_step=True`, its default, has none: each update computes each parameter's rate
    from the step count and the parameter's scale (a `learning_rate` given is then unused)."""
    first = optimizer.optimizers[0] if isinstance(optimizer, optim.MultiOptimizer) else optimizer
    if isinstance(first, optim.MultiOptimizer):
        return has_learning_rate(first)
    relative = isinstance(first, optim.Adafactor) and first.relative_step
    return not relative and "learning_rate" in first.state


def _optimizers_in(optimizer: optim.Optimizer) -> list[optim.Optimizer]:
    """`optimizer`, or the optimizers a MultiOptimizer steps (each applies its own schedules)."""
    if isinstance(optimizer, optim.MultiOptimizer):
        return [inner for part in optimizer.optimizers for inner in _optimizers_in(part)]
    return [optimizer]


def _refuse_torch_param_groups(value: Any, where: str) -> None:
    """torch's parameter groups (`[{"params": ..., "weight_decay": 0.0}, ...]`, what a torch optimizer
    takes) returned as they are: say how MLX splits parameters, rather than that a dict lacks 'optimizer'."""
    items = value if isinstance(value, (list, tuple)) else [value]
    if not any(isinstance(item, dict) and "params" in item for item in items):
        return
    raise TypeError(
        f"{where} returned torch's parameter groups (dicts with 'params'); an MLX optimizer takes no "
        "parameters. Groups with their own settings are one optim.MultiOptimizer([...], filters), e.g. no "
        "weight decay on biases and norms: optim.MultiOptimizer([optim.AdamW(learning_rate=1e-3, "
        "weight_decay=0.0), optim.AdamW(learning_rate=1e-3, weight_decay=0.01)], [lambda path, _: "
        "path.endswith('bias') or '.norm' in path]) (a parameter goes to the first optimizer whose filter "
        "takes its dotted path, the last one takes the rest)"
    )


def _one_optimizer(value: list | tuple, where: str) -> Any:
    """Lightning's list forms of one optimizer, as the dict form: `[opt]` or `([opt], [schedule])`. As in
    Lightning, the second item of the two-list form may be one schedule (or schedule dict) not in a list."""
    if len(value) == 2 and isinstance(value[0], (list, tuple)):
        optimizers, schedulers = value
        if not isinstance(schedulers, (list, tuple)):
            schedulers = [schedulers]  # (Lightning: `sch if isinstance(sch, list) else [sch]`)
        if len(optimizers) == 1 and len(schedulers) > 1:
            raise TypeError(
                f"{where} returned ([opt], [{len(schedulers)} lr_schedulers]): one lr_scheduler per "
                "optimizer is supported (an MLX optimizer evaluates one schedule of its step). Compose them "
                "into one callable: in sequence with mlx.optimizers.join_schedules([first, second], "
                "[boundary]) (torch's SequentialLR), or as a product, lambda step: first(step) * "
                "second(step) / initial_lr (torch's chained schedulers), and return ([opt], [composed])"
            )
        if len(optimizers) == 1:
            return {"optimizer": optimizers[0], **({"lr_scheduler": schedulers[0]} if schedulers else {})}
        value = optimizers
    elif len(value) == 1:
        return value[0]
    elif (
        len(value) == 2
        and isinstance(value[0], optim.Optimizer)
        and not isinstance(value[1], optim.Optimizer)
    ):
        # (Lightning refuses this form too: "Unknown configuration".)
        raise TypeError(
            f"{where} returned the tuple (optimizer, {type(value[1]).__name__}): a schedule goes in "
            "Lightning's list or dict forms, ([opt], [schedule]) or {'optimizer': opt, 'lr_scheduler': "
            "schedule}, and a per-step one as {'optimizer': opt, 'lr_scheduler': {'scheduler': schedule, "
            "'interval': 'step'}}"
        )
    if any(isinstance(item, dict) and "frequency" in item for item in value):
        raise TypeError(
            f"{where} returned {len(value)} optimizers with Lightning 1's 'frequency' (alternating updates, "
            "each optimizer for its number of batches in turn): not supported, as in Lightning 2, which "
            "dropped optimizer frequencies; here every batch is one compiled update of one optimizer. "
            "Update every network at every batch instead: return one optim.MultiOptimizer([opt_g, opt_d], "
            "[lambda path, _: path.startswith('generator.')]) and have training_step return the sum of the "
            "losses, each reaching only its own network (the discriminator's on mx.stop_gradient(fake), the "
            "generator's through the discriminator's weights under mx.stop_gradient: the README's GAN "
            "paragraph shows it); for a network that rests for some batches set self.automatic_optimization "
            "= False and step each optimizer in training_step (manual optimization, as in Lightning 2)"
        )
    raise TypeError(
        f"{where} returned {len(value)} optimizers: one optimizer is supported by the automatic step; as "
        "in Lightning, several are stepped by a module with self.automatic_optimization = False (manual "
        'optimization: each as {"optimizer": opt, "params": self.discriminator}, stepped in '
        "training_step). Return one: it, an OptimizerConfig, {'optimizer': ...}, [opt] or ([opt], "
        "[schedule]). For parameter groups with their own optimizer or learning rate updated together: one "
        "optim.MultiOptimizer (returned as OptimizerConfig(multi, clip_each_group=True), gradient_clip_val "
        "clips each of its optimizers by its own norm, as Lightning clips each of several optimizers)"
    )


def _from_torch(value: Any) -> bool:
    return (type(value).__module__ or "").split(".")[0] == "torch"


def _type_name(value: Any) -> str:
    """`value`'s type as a user writes it: torch's optimizers and schedulers by their torch names
    (`torch.optim.SGD`, not `SGD`, which is also MLX's)."""
    cls = type(value)
    module = cls.__module__ or ""
    if module.startswith("torch.optim.lr_scheduler"):
        return f"torch.optim.lr_scheduler.{cls.__name__}"
    if module.startswith("torch.optim"):
        return f"torch.optim.{cls.__name__}"
    return f"{module}.{cls.__name__}" if module.split(".")[0] == "torch" else cls.__name__


# The lr_scheduler `from_module_output` set as an optimizer's learning rate (vars() settings skip it).
_LR_SCHEDULER_ATTRIBUTE = "_audiotrain_lr_scheduler"
_TORCH_OPTIMIZER = (
    ", a torch optimizer, which cannot update MLX arrays: return its mlx.optimizers counterpart, e.g. "
    "optim.SGD(learning_rate=0.1, momentum=0.9) for torch.optim.SGD(self.parameters(), lr=0.1, "
    "momentum=0.9) (no parameters: the Trainer's update gives them); for torch's Adam or AdamW numbers give "
    "optim.AdamW(..., bias_correction=True) (MLX's default skips it)"
)


def _plateau_callback(scheduler: Any) -> Any:
    """The `ReduceLROnPlateau` callback given as Lightning's lr_scheduler (bare or as the dict's
    "scheduler"), else None."""
    from audiotrain.train.callbacks.lr_plateau import ReduceLROnPlateau

    inner = scheduler.get("scheduler") if isinstance(scheduler, dict) else scheduler
    return inner if isinstance(inner, ReduceLROnPlateau) else None


def _configure_plateau(plateau: Any, keys: dict, interval: str, frequency: int, where: str) -> None:
    """Lightning's ``{"scheduler": ReduceLROnPlateau(...), "monitor": ..., "interval": "epoch", "frequency":
    n}``: the callback steps on `monitor` at every n-th training epoch's end (after that epoch's
    validation), once an epoch whatever `val_check_interval`, as Lightning steps it."""
    monitor = keys.get("monitor")
    if monitor is None:
        raise ValueError(
            f"{where}: a ReduceLROnPlateau lr_scheduler needs the metric it steps on, as in Lightning: "
            "{'scheduler': ReduceLROnPlateau(...), 'monitor': 'val_loss'}"
        )
    if not isinstance(monitor, str) or not monitor:
        raise TypeError(f"{where}: lr_scheduler 'monitor': expected a metric's name, got {monitor!r}")
    if "monitor" in plateau._settings and plateau.monitor != monitor:
        raise ValueError(
            f"{where}: lr_scheduler 'monitor': {monitor!r}, but its ReduceLROnPlateau was made with "
            f"monitor={plateau.monitor!r}: give the metric once"
        )
    if interval != "epoch":
        raise ValueError(
            f"{where}: a ReduceLROnPlateau lr_scheduler with 'interval': {interval!r}: it steps here at "
            "training epoch ends ('interval': 'epoch'); to check after every validation, pass it as "
            "Trainer(callbacks=[ReduceLROnPlateau(monitor=...)]) instead"
        )
    strict = keys.get("strict", True)
    if not isinstance(strict, bool):
        raise TypeError(f"{where}: lr_scheduler 'strict': expected True or False, got {strict!r}")
    plateau.monitor = monitor
    plateau._every_n_epochs, plateau._strict = frequency, strict


def _refuse_monitor(value: dict, where: str, inside: str) -> None:
    """Lightning's "monitor" names the metric a ReduceLROnPlateau steps on: none can run here."""
    if value.get("monitor") is not None or value.get("reduce_on_plateau"):  # (None: Lightning's default)
        key = "monitor" if value.get("monitor") is not None else "reduce_on_plateau"
        raise ValueError(
            f"{where}: {inside}{key!r}: {value[key]!r} is for a metric-driven schedule (ReduceLROnPlateau): "
            "a schedule here is a function of the optimizer step, evaluated inside the compiled update, "
            "where no metric is known. Give the optimizer a number as its learning rate and, as the "
            "'scheduler' beside this 'monitor', audiotrain.train.callbacks.ReduceLROnPlateau(mode=..., "
            "factor=..., patience=...) (torch's arguments, no optimizer), which lowers it between steps at "
            "epoch ends; or pass Trainer(callbacks=[audiotrain.train.callbacks.ReduceLROnPlateau("
            "monitor=..., ...)]), which checks after every validation"
        )


# What a module with automatic optimization is told where it makes a manual step's calls.
_ALTERNATING = (
    "set self.automatic_optimization = False and step each optimizer in training_step (manual optimization: "
    "self.manual_backward(loss_fn), which takes the function that computes the loss, then opt.step(); "
    "audiotrain.train.manual)"
)
_ONE_UPDATE_GAN = (
    "a GAN whose two networks both update at every step, return one optim.MultiOptimizer (the generator's "
    "optimizer and the discriminator's, split by parameter path) and one loss, the generator's plus the "
    "discriminator's, each reaching only its own network (the discriminator's on mx.stop_gradient(fake); "
    "the generator's through the discriminator with its weights under mx.stop_gradient: "
    "self.disc.update(tree_map(mx.stop_gradient, weights)) before, self.disc.update(weights) after)"
)
_MANUAL_OPTIMIZATION = (
    "with automatic optimization the Trainer's training step is one compiled function (forward, gradients "
    "of the returned loss, clipping, the non-finite check and one optimizer update) that steps the "
    "optimizer itself. Return the loss from training_step and let the Trainer update: it accumulates "
    "gradients with Trainer(accumulate_grad_batches=N) and clips them with Trainer(gradient_clip_val=...), "
    "each optimizer of a MultiOptimizer by its own norm with OptimizerConfig(multi, clip_each_group=True); "
    "for parameter groups with their own optimizer or learning rate return one optim.MultiOptimizer; for "
    "constraints after the update use on_after_optimizer_step; for " + _ONE_UPDATE_GAN + "; for alternating "
    "updates (GANs) " + _ALTERNATING
)

_TOGGLING = (
    "toggling optimizers is part of Lightning's manual optimization, inside training_step of a module with "
    "self.automatic_optimization = False; " + _MANUAL_OPTIMIZATION
)


# What Lightning's wrapper passes through to a torch optimizer and an MLX one lacks: where MLX holds it.
_STATE = (
    "its state is `.state`, a dict of arrays (the step counter, the learning rate, each parameter's "
    "moments), which the Trainer's checkpoints save and a fit with ckpt_path restores"
)
_TORCH_OPTIMIZER_ONLY = {
    "state_dict": f"state_dict(): an MLX optimizer has no state_dict: {_STATE}",
    "load_state_dict": (
        f"load_state_dict(): an MLX optimizer has no load_state_dict: {_STATE}; set it with `.state = saved`"
    ),
    "defaults": (
        "defaults: an MLX optimizer has no defaults: the settings it was built with are its attributes "
        "(self.optimizers().momentum, .betas, .weight_decay), its rate param_groups[i]['lr']"
    ),
}


class LightningOptimizer:
    """What `TrainModule.optimizers()` gives, as Lightning's wrapper of that name: the MLX optimizer the
    Trainer steps (`optimizer`), read and set through (`learning_rate`, `state`; `isinstance` sees its
    class, as Lightning's wrapper makes it), plus Lightning's `param_groups` to read and set the rate: one
    group per optimizer (each of a MultiOptimizer's), `{"lr": rate}` (set by item, or the list assigned
    whole). Lightning's manual-optimization calls (`step()`, `zero_grad()`, `toggle_model()`) are refused,
    saying why; MLX's step counter is `.optimizer.step`. A learning rate that is a schedule cannot be set
    (the next update would undo it), nor one rate for a MultiOptimizer whose groups' rates differ (set
    each of its `optimizers`', which come through this wrapper too), nor one inside a compiled step (the
    trace's rate would be every step's)."""

    def __init__(self, optimizer: optim.Optimizer, traced: bool = False):
        object.__setattr__(self, "optimizer", optimizer)
        # Whether that step is compiled: a rate set there would be the trace's for every step.
        object.__setattr__(self, "_traced", traced)

    @property
    def __class__(self) -> type:  # (isinstance(self.optimizers(), optim.SGD) holds, as in Lightning)
        return type(self.optimizer)

    def __getattr__(self, name: str) -> Any:
        if name == "optimizers" and isinstance(self.optimizer, optim.MultiOptimizer):
            # Each group seen through the wrapper too: its rate is set with the same checks.
            return [LightningOptimizer(part, self._traced) for part in self.optimizer.optimizers]
        if name in _TORCH_OPTIMIZER_ONLY and not hasattr(self.optimizer, name):
            raise AttributeError(f"self.optimizers().{_TORCH_OPTIMIZER_ONLY[name]}")
        return getattr(self.optimizer, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "learning_rate":
            if self._traced:
                raise TypeError(_rate_set_in_a_compiled_step(f"self.optimizers().learning_rate = {value!r}"))
            _refuse_setting_a_schedule(self.optimizer, value)
            _refuse_one_rate_for_groups_that_differ(self.optimizer, value)
        if name == "param_groups":
            # (torch's groups replaced: here each group's rate, which is all a group holds)
            groups = self.param_groups
            if (
                not isinstance(value, (list, tuple))
                or len(value) != len(groups)
                or not all(isinstance(new, dict) and set(new) == {"lr"} for new in value)
            ):
                raise TypeError(
                    f"self.optimizers().param_groups = {value!r}: expected a list of {len(groups)} dict(s) "
                    "with only their 'lr' (a group here holds only its rate), as param_groups gives them; "
                    "or set one group's rate: param_groups[i]['lr'] = ..."
                )
            for group, new in zip(groups, value):
                if not _same_rate(group["lr"], new["lr"]):  # (one given back unchanged is no setting)
                    group["lr"] = new["lr"]
            return
        setattr(self.optimizer, name, value)

    def __repr__(self) -> str:
        """As Lightning's: "Lightning" + the optimizer's name, then, as torch lists its groups, each group's
        rate (`param_groups`) and its optimizer's settings (one group per optimizer of a MultiOptimizer)."""
        parts = _optimizers_in(self.optimizer)
        lines = [f"Lightning{type(self.optimizer).__name__} ("]
        for index, (part, group) in enumerate(zip(parts, self.param_groups)):
            lines.append(f"Parameter Group {index}" + (f" ({type(part).__name__})" if len(parts) > 1 else ""))
            # (a rate read inside a compiled step is the traced array, which has no value to print)
            rate = group["lr"] if not isinstance(group["lr"], mx.array) else "(traced)"
            settings = {name: value for name, value in vars(part).items() if not name.startswith("_")}
            lines += [f"    {name}: {value}" for name, value in sorted({"lr": rate, **settings}.items())]
        return "\n".join([*lines, ")"])

    # Lightning's manual optimization, reached through the wrapper (`opt.step()` would otherwise call
    # MLX's step counter, an array, and a MultiOptimizer's raise KeyError: 'step').
    def step(self, closure: Any = None, **kwargs: Any) -> None:
        raise TypeError(_manual_call("step"))

    def zero_grad(self, set_to_none: bool = True) -> None:
        raise TypeError(_manual_call("zero_grad"))

    def toggle_model(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(_manual_call("toggle_model"))

    # Lightning's `opt_g, opt_d = self.optimizers()` (its list of several optimizers).
    def __iter__(self) -> Any:
        raise TypeError(_not_a_list(self.optimizer))

    def __getitem__(self, index: Any) -> Any:
        raise TypeError(_not_a_list(self.optimizer))

    @property
    def param_groups(self) -> list[dict[str, float]]:
        """The current learning rate of each optimizer, as torch's groups hold it (`["lr"] = ...` sets that
        optimizer's `learning_rate`); NaN for one without a single rate (Adafactor's relative step).
        As Lightning's, whose schedulers step right after the update (an "epoch" one after the epoch's last
        batch, before `on_train_epoch_end`): inside a step the rate its update uses, and in a hook the rate
        the next update will use, where MLX's `learning_rate` still holds the last update's."""
        return [
            _ParamGroup(
                part,
                self._traced,
                lr=_rate_as_read(coming_rate(part)) if has_learning_rate(part) else math.nan,
            )
            for part in _optimizers_in(self.optimizer)
        ]


def _no_torch_export(module: str, method: str) -> str:
    return (
        f"{module}.{method}() is Lightning's PyTorch export (torch.onnx / torch.jit); an MLX model has no "
        "ONNX or TorchScript form. Export the forward pass with mx.export_function(path, fn, "
        "*example_inputs) (mx.import_function loads it), or the weights with "
        "model.save_weights('model.safetensors')"
    )


def _rate_set_in_a_compiled_step(what: str) -> str:
    # (Lightning's warm-up by hand, `pg["lr"] = lr * min(1, (self.global_step + 1) / n)` in training_step, set
    # the rate once, at the trace, from the trace's global_step: every step then trained at that rate.)
    return (
        f"{what} inside a compiled step: the step is traced once and replayed, so a rate set here (and what "
        "it is computed from: self.global_step, self.current_epoch) would be the trace's at every step. "
        "Set it in on_train_batch_start (that batch's update uses it, as Lightning's set in training_step), "
        "or give the optimizer a schedule as its learning rate (a warm-up: WarmupLinearScheduler, "
        "WarmupCosineScheduler); Trainer(compile=False) runs the step as written"
    )


def _manual_call(name: str) -> str:
    return (
        f"self.optimizers().{name}(): only a module with self.automatic_optimization = False steps its "
        f"optimizers itself (from training_step); {_MANUAL_OPTIMIZATION}. (MLX's step counter is "
        "self.optimizers().optimizer.step; the update count is self.global_step)"
    )


def _optimizer_name(optimizer: optim.Optimizer) -> str:
    # MLX's own as users import them (mlx.optimizers.AdamW, not mlx.optimizers.optimizers.AdamW).
    cls = type(optimizer)
    return f"mlx.optimizers.{cls.__name__}" if getattr(optim, cls.__name__, None) is cls else cls.__qualname__


def _not_a_list(optimizer: optim.Optimizer) -> str:
    multi = isinstance(optimizer, optim.MultiOptimizer)
    parts = (
        f"it is a MultiOptimizer of {len(optimizer.optimizers)}: each of its optimizers is "
        "self.optimizers().optimizers[0], [1], ... (to read or set its learning_rate and state)"
        if multi
        else (
            f"it is one {_optimizer_name(optimizer)} (two or more, each on its "
            "own parameters: return a MultiOptimizer from configure_optimizers, whose optimizers are "
            "self.optimizers().optimizers[i])"
        )
    )
    return (
        "self.optimizers() is the one optimizer the Trainer steps, not Lightning's list of several "
        f"(which only manual optimization uses, not supported here): {parts}"
    )


def _refuse_setting_a_schedule(optimizer: optim.Optimizer, value: Any) -> None:
    """Setting the rate of an optimizer whose rate is a schedule changes nothing: MLX evaluates the schedule
    at every update and stores that rate, so the value set would be silently replaced."""
    scheduled = [part for part in _optimizers_in(optimizer) if "learning_rate" in part._schedulers]
    if scheduled:
        which = (
            f"the rate of {len(scheduled)} of its {len(_optimizers_in(optimizer))} optimizers"
            if isinstance(optimizer, optim.MultiOptimizer)
            else "its learning rate"
        )
        raise TypeError(
            f"self.optimizers().learning_rate = {value!r}: {which} is a schedule, which the next update "
            "evaluates and stores in its place, so the value set would be silently undone. Give the "
            "optimizer a number as its learning rate to set it from hooks (as ReduceLROnPlateau does), or "
            "write the rule into the schedule (mlx.optimizers.join_schedules for a change at a step)"
        )


def _refuse_one_rate_for_groups_that_differ(optimizer: optim.Optimizer, value: Any) -> None:
    """MLX's MultiOptimizer reads its first optimizer's rate and sets every optimizer's: halving it
    (`opt.learning_rate = opt.learning_rate * 0.5`) would give every group the first group's half."""
    if not isinstance(optimizer, optim.MultiOptimizer):
        return
    rates = [float(part.learning_rate) for part in _optimizers_in(optimizer)]
    if len(set(rates)) > 1:
        raise TypeError(
            f"self.optimizers().learning_rate = {value!r}: the MultiOptimizer's rates differ "
            f"({', '.join(f'{rate:g}' for rate in rates)}), and one rate set here would replace them all "
            "(MLX's MultiOptimizer reads its first optimizer's rate and sets every one's). Set each group's: "
            "self.optimizers().optimizers[0].learning_rate = ..., [1], ..."
        )


def _rate_as_read(rate: Any) -> Any:
    """A float, as torch's groups hold the rate; inside the compiled step (Lightning's
    ``self.log("lr", self.optimizers().param_groups[0]["lr"])`` in `training_step`) the traced array itself,
    which `self.log` takes there, where `float` would have to read the value of an array being traced."""
    try:
        return rate_as_given(float(rate))
    except ValueError as err:
        if TRANSFORM_EVAL not in str(err):
            raise
        return rate


def coming_rate(optimizer: optim.Optimizer) -> Any:
    """The rate the optimizer's next update will use, as torch's group "lr" reads it: a schedule's value at
    the step counter (what MLX's apply_gradients stores, at the same counter: inside a step, that step's;
    between steps, the next one's), where MLX's `learning_rate` still holds the last update's. A float or
    an mx.array, as the optimizer holds it."""
    schedule = optimizer._schedulers.get("learning_rate")
    return schedule(optimizer.step) if schedule is not None else optimizer.learning_rate


def rate_as_given(rate: float) -> float:
    """MLX holds a rate in float32: its shortest decimals (0.1, not 0.10000000149011612), the number a user
    gave, as torch's group holds it; the same float32 when set back."""
    return float(str(np.float32(rate))) if math.isfinite(rate) else rate


class _ParamGroup(dict):
    """One of `param_groups`: its "lr" read, and set as Lightning's habit sets it from a hook
    (`for pg in opt.param_groups: pg["lr"] = ...`): that sets its optimizer's `learning_rate`."""

    def __init__(self, optimizer: optim.Optimizer, traced: bool = False, **values: Any):
        super().__init__(**values)
        self._optimizer, self._traced = optimizer, traced

    def __setitem__(self, key: str, value: Any) -> None:
        if key != "lr":
            raise TypeError(
                f"optimizers().param_groups[...][{key!r}] = ...: a group here holds only its 'lr'; set "
                "other settings on the MLX optimizer (self.optimizers().optimizers[i] for a MultiOptimizer's)"
            )
        if self._traced:
            raise TypeError(_rate_set_in_a_compiled_step(f"optimizers().param_groups[...]['lr'] = {value!r}"))
        if not has_learning_rate(self._optimizer):
            raise TypeError(
                f"optimizers().param_groups[...]['lr'] = {value!r}: this group's "
                f"{type(self._optimizer).__name__} has no single learning rate (Adafactor's relative step "
                "sets each parameter's)"
            )
        # A one-value array (an MLX schedule's `schedule(step)`, a numpy float32) is a rate too, as torch's
        # groups take a tensor: its number (a hook runs outside the compiled step, so this reads no trace).
        if isinstance(value, (mx.array, np.ndarray, np.generic)) and value.size == 1 and not _is_bool(value):
            value = float(value.item())
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise TypeError(f"optimizers().param_groups[...]['lr'] = {value!r}: expected a number >= 0")
        # (The wrapper's checks: a rate that is a schedule would be evaluated again at the next update.)
        LightningOptimizer(self._optimizer).learning_rate = value
        super().__setitem__(key, value)


def _same_rate(held: Any, given: Any) -> bool:
    """Whether a rate given back to `param_groups` is the one it gave: a schedule's, or Adafactor's NaN,
    given back unchanged sets nothing (setting either is refused)."""
    if not all(isinstance(v, float) for v in (held, given)):
        return False
    return held == given or (math.isnan(held) and math.isnan(given))


def _is_bool(value: Any) -> bool:
    return value.dtype in (mx.bool_, np.bool_)


def _takes_batch_idx(fn: Callable) -> bool:
    """Whether a step method takes Lightning's `(batch, batch_idx)` rather than `(batch)`."""
    return _positional_parameters(fn) >= 2


def _positional_parameters(fn: Callable) -> float:
    """How many positional arguments a step method takes (inf with `*args`; 0 where its signature is
    unknown, as a step taking only the batch is called)."""
    try:
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
        ]
    except (TypeError, ValueError):
        return 0
    return math.inf if any(p.kind == p.VAR_POSITIONAL for p in params) else len(params)


def call_step(fn: Callable, batch: Any, batch_idx: mx.array) -> Any:
    """A step called as its signature takes it: Lightning 2 passes `batch_idx` only to a step that has
    the parameter (`training_step(self, batch)` is a step of its own)."""
    return fn(batch, batch_idx) if _takes_batch_idx(fn) else fn(batch)


def _batch_argument(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The batch a default step was given: first positional argument, or ``batch=`` (as Lightning's)."""
    if "batch" in kwargs:
        return kwargs["batch"]
    if not args:
        raise TypeError("a step of TrainModule takes the batch: step(batch, batch_idx)")
    return args[0]


def _manual_handles(module: TrainModule) -> list | None:
    """The optimizers a manual module steps (`audiotrain.train.manual`), or None for an automatic one."""
    step = getattr(module._trainer, "_train_step", None) if module._trainer is not None else None
    return getattr(step, "handles", None)


def refuse_optimizer_idx(module: TrainModule) -> None:
    """Lightning 1's `training_step(batch, batch_idx, optimizer_idx)` (its GAN API: one call per optimizer),
    refused when `fit` starts, as Lightning 2 refuses it: the step here is called once per batch, so the
    argument was "missing 1 required positional argument: 'optimizer_idx'" from inside the first step, or,
    given a default, one branch trained everything (the generator's loss moving the discriminator too)."""
    try:
        parameters = inspect.signature(module.training_step).parameters
    except (TypeError, ValueError):  # (a callable without a signature: nothing to tell from it)
        return
    if "optimizer_idx" in parameters:
        raise TypeError(
            f"{type(module).__name__}.training_step takes optimizer_idx: Lightning 1's step called once per "
            "optimizer is not supported (nor in Lightning 2): training_step(batch, batch_idx) is called once "
            f"a batch and returns one loss for one update. For {_ONE_UPDATE_GAN}; for updates that "
            f"alternate: {_ALTERNATING}"
        )


def refuse_dataloader_iter(module: TrainModule, step: str = "training_step") -> None:
    """Lightning 2's `training_step(self, dataloader_iter)` (or `validation_step`, `test_step`,
    `predict_step`), which draws its batches itself with `next`, refused when the stage starts: the step here
    is given one batch, so `next(dataloader_iter)` failed in the first step with "'array' object is not an
    iterator"."""
    try:
        parameters = list(inspect.signature(getattr(module, step)).parameters)
    except (TypeError, ValueError, AttributeError):  # (no such step, or one without a signature)
        return
    if parameters[:1] == ["dataloader_iter"]:
        how = "compiled and given one batch" if step == "training_step" else "given one batch"
        raise TypeError(
            f"{type(module).__name__}.{step} takes dataloader_iter: Lightning's step that draws its "
            f"own batches with next() is not supported: the step is {how}, as "
            f"{step}(self, batch, batch_idx). Combine batches in the loader (a collate_fn, a "
            "CombinedLoader) or in on_before_batch_transfer instead"
        )


_TRUNCATED_BPTT = (
    "the Trainer does not split batches in time nor pass `hiddens`. Do it in the data and the module: give "
    "the loader consecutive chunks of the same clips (batch k+1 continues batch k's sequences), keep the "
    "hidden state as a buffer (self.register_buffer('h', initial) in __init__), start each chunk from it "
    "and write self.h = mx.stop_gradient(last_hidden) in the step, and reset it where a new clip starts "
    "(on_train_epoch_start, or with a mask of the batch's first chunks)"
)


def refuse_truncated_bptt(module: TrainModule) -> None:
    """Lightning 1's `truncated_bptt_steps` on the module, refused when `fit` starts: left alone, it would
    train with full backpropagation through each batch, and a `training_step(batch, batch_idx, hiddens)`
    would never get its hidden state."""
    steps = getattr(module, "truncated_bptt_steps", None)
    if steps:
        raise TypeError(
            f"{type(module).__name__}.truncated_bptt_steps = {steps!r}: Lightning 1's truncated "
            f"backpropagation through time is not supported: {_TRUNCATED_BPTT}"
        )


class TrainModule(nn.Module):
    """Base class for a trainable task. Subclass it and define `compute_loss` and `configure_optimizers`.

    `compute_loss(batch)` returns `(loss, metrics)`: a scalar loss and a dict of scalar `mx.array`
    metrics, averaged weighted by `batch_size(batch)`; a metric over its own count of items is a
    `(value, count)` pair, averaged weighted by its count. It runs inside the compiled training step, so
    it must be pure MLX: no `.item()`, no numpy, no Python side effects that must happen every step.

    Validation and test default to `compute_loss` with the metric names prefixed by `val_`/`test_`.
    Hooks (`on_train_start`, ...) run outside the compiled graph, in Python.
    """

    #: Lightning's switch for manual optimization; only True (the Trainer updates) is supported: `fit`
    #: refuses False, saying why and what to use instead.
    automatic_optimization: bool = True

    #: Under `precision="bf16-mixed"` or `"bf16-true"` the Trainer casts every float array of a batch to
    #: bfloat16 before a step (the model's inputs run in bf16); the fields named here (keys of a dict batch,
    #: positions of a tuple batch) stay float32: regression targets, per-example weights, soft labels,
    #: e.g. ("target",).
    #: Set in the class body or in `__init__`.
    float32_batch_fields: tuple[str | int, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        # Plain attributes set through object.__setattr__ so nn.Module does not treat them as children.
        object.__setattr__(self, "_trainer", None)
        # self.log in hooks: (phase, name) -> hook_logs.HookLog, read at the logging points
        object.__setattr__(self, "_logged", {})
        object.__setattr__(self, "_step_logs", None)  # self.log inside a step (see outputs.StepLogs)
        object.__setattr__(self, "_hparams", AttributeDict())
        object.__setattr__(self, "_hparams_initial", AttributeDict())  # as save_hyperparameters left them
        # The __init__ argument `save_hyperparameters(config)` was given, and its type, so that
        # load_from_checkpoint passes the saved values back as that argument (as Lightning's hparams_name).
        object.__setattr__(self, "_hparams_origin", {})
        # The __init__ arguments given as OmegaConf configs (Hydra's DictConfig / ListConfig): saved as the
        # plain dicts and lists they hold, and made configs again by load_from_checkpoint.
        object.__setattr__(self, "_hparams_omegaconf", [])

    def __setattr__(self, key: str, value: Any) -> None:
        if key in ("device", "dtype"):
            # Read-only properties in Lightning; a module that sets its own (a config value) keeps it.
            object.__setattr__(self, f"_own_{key}", value)
        elif key == "example_input_array":
            # Lightning's plain attribute: nn.Module would keep an array here among the weights (trained,
            # weight-decayed, counted in the summary and saved in every checkpoint).
            object.__setattr__(self, "_example_input_array", value)
        elif key == "float32_batch_fields":
            # A setting, not a child: nn.Module would keep a tuple or list among the module's arrays.
            object.__setattr__(self, key, (value,) if isinstance(value, (str, int)) else tuple(value))
        elif key == "hparams":
            # (MLX's Module.__setattr__ would try to delete the property first: "has no deleter")
            raise AttributeError(
                f"{type(self).__name__}.hparams cannot be assigned, as in Lightning 2: record them with "
                "self.save_hyperparameters() in __init__ (or save_hyperparameters(config) for a dict or "
                "Namespace), or change one with self.hparams.lr = ..."
            )
        elif key == "trainer":
            # Lightning's setter (a Trainer, or None to detach; a hook tested outside fit attaches one so):
            # MLX's Module.__setattr__ gave "property 'trainer' of 'X' object has no setter". As Lightning's,
            # it sets the TrainModules that are direct children too (_attach does).
            self._attach(value)
        elif key == "hparams_initial":  # (the same "has no deleter" from MLX)
            raise AttributeError(
                f"{type(self).__name__}.hparams_initial is read-only, as in Lightning: it is what "
                "save_hyperparameters() recorded; change a value with self.hparams.lr = ..."
            )
        else:
            super().__setattr__(key, value)

    # ---- required: compute_loss (or Lightning's training_step) and configure_optimizers ---------
    # Mapping, not dict, in the return type: it accepts an override's `tuple[mx.array, dict[str, mx.array]]`
    # (dict's value type is invariant), as Lightning's STEP_OUTPUT does.
    def compute_loss(
        self, batch: Any
    ) -> mx.array | tuple[mx.array, Mapping[str, mx.array | tuple[mx.array, mx.array]]]:
        """The training loss of `batch` (define this or Lightning's `training_step`).

        Returns a scalar floating `mx.array` loss, alone or as `(loss, metrics)` with a dict of scalar
        `mx.array` metrics (`{"acc": ...}`): the Trainer reports those as `train_<name>` and, through the
        default `validation_step` / `test_step`, as `val_<name>` / `test_<name>`. A bare loss is fine;
        values may also be logged with `self.log`. Each metric's epoch mean is weighted by
        `batch_size(batch)`; one that counts its own items (an accuracy over the frames that have a
        target) is returned as `(value, weight)`, two scalar arrays, and averaged as
        Σ value·weight / Σ weight. It runs inside the compiled step: pure MLX, no `.item()` and no Python
        branch on array values.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must define compute_loss(self, batch) -> (loss, metrics_dict), or "
            "Lightning's training_step(self, batch, batch_idx) -> loss or {'loss': ..., **metrics}"
        )

    # The steps take `*args, **kwargs`, as Lightning declares them, so that any override
    # (`(self, batch, batch_idx: int)`, `(self, batch)`) type-checks: the Trainer calls them with
    # `(batch, batch_idx)`, or `(batch)` where the override takes one argument.
    def training_step(self, *args: Any, **kwargs: Any) -> Any:
        """Lightning's name for `compute_loss`: define either, as `training_step(self, batch, batch_idx)`.
        Returns a loss, `(loss, metrics)` or `{"loss": ..., **metrics}`. It runs inside the compiled step, so
        `batch_idx` is an `mx.array` (usable in MLX arithmetic, not in a Python `if`: a Python int would
        retrace every step)."""
        return self.compute_loss(_batch_argument(args, kwargs))

    def configure_optimizers(self) -> OptimizerReturn:
        """An `OptimizerConfig`, a bare `mlx.optimizers.Optimizer`, or Lightning's forms
        `{"optimizer": ..., "lr_scheduler": schedule}`, `[opt]` and `([opt], [schedule])`, where the schedule
        steps per epoch unless `{"scheduler": schedule, "interval": "step"}` says otherwise (see
        `OptimizerConfig.from_module_output`)."""
        raise NotImplementedError(
            f"{type(self).__name__} must define configure_optimizers(self) -> OptimizerConfig"
        )

    # ---- optional steps -------------------------------------------------------------------------
    def validation_step(self, *args: Any, **kwargs: Any) -> Any:
        """Loss and metrics on a validation batch; keys are prefixed with `val_` by the Trainer.
        Default: the training step's loss and metrics. Lightning code may instead log with
        `self.log("val_loss", loss)` and return nothing."""
        return self._training_step_of(args, kwargs)

    def test_step(self, *args: Any, **kwargs: Any) -> Any:
        """Loss and metrics on a test batch; keys are prefixed with `test_` by the Trainer."""
        return self._training_step_of(args, kwargs)

    def _training_step_of(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The training step on an evaluation batch, given `batch_idx` only where it takes one, and the
        `dataloader_idx` of one of several evaluation loaders only where it takes a third argument (a
        Lightning training step takes none: `training_step(self, batch, batch_idx)`)."""
        if not kwargs and len(args) == 3 and _positional_parameters(self.training_step) < 3:
            args = args[:2]
        if kwargs or len(args) != 2 or _takes_batch_idx(self.training_step):
            return self.training_step(*args, **kwargs)
        return self.training_step(args[0])

    def predict_step(self, *args: Any, **kwargs: Any) -> Any:
        """What `Trainer.predict` returns for a batch (any tree of arrays). Default: the model's output on
        the batch's inputs: `self(x)` for an `(x, y, ...)` tuple or list, `self(batch)` otherwise (as
        Lightning's). A dict batch (`{"x": ..., "y": ...}`) goes to the model whole: if the model fails on
        it, the error says that a `predict_step` picking the inputs is needed."""
        batch = _batch_argument(args, kwargs)
        inputs, given = batch, "the whole batch"
        if isinstance(batch, (tuple, list)) and batch:
            inputs, given = batch[0], f"batch[0] (the first of the batch's {len(batch)} items)"
        method = "__call__" if type(self).__call__ is not TrainModule.__call__ else "forward"
        if not isinstance(batch, (Mapping, tuple, list)) or getattr(type(self), method, None) is None:
            return self(inputs)  # (a model with neither method: __call__ says so)
        try:
            return self(inputs)
        except (TypeError, KeyError, IndexError, ValueError, AttributeError) as err:
            # The model's own error (a KeyError of (Ellipsis, None), addmm's arguments) does not say
            # that the default predict_step chose what the model was given.
            if isinstance(inputs, Mapping):
                what = f"{type(inputs).__name__} with keys {', '.join(map(repr, inputs))}"
                example = f"return self(batch[{next(iter(inputs), 'x')!r}])"
            else:
                shape = getattr(inputs, "shape", None)
                what = f"{type(inputs).__name__}{f' of shape {tuple(shape)}' if shape is not None else ''}"
                example = "unpack the batch as your training step does and return self(inputs)"
            name, cause = type(self).__name__, (str(err).splitlines() or [""])[0][:120]
            raise TypeError(
                f"{name}.predict_step (TrainModule's default) passed {name}.{method} {given}: {what}, and "
                f"it failed ({type(err).__name__}: {cause}). Define {name}.predict_step(self, batch, "
                f"batch_idx) returning the model's output on the batch's inputs, e.g. {example}"
            ) from err

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The model's output: define `__call__` (MLX's convention) or Lightning's `forward`, which this
        calls. `self(x)` in the steps and the default `predict_step` need one of them."""
        if getattr(type(self), "forward", None) is None:
            raise TypeError(
                f"{type(self).__name__} was called (self(x), or the default predict_step's self(batch[0])) "
                "but defines neither __call__ nor Lightning's forward: define __call__(self, x) returning "
                "the model's output, or predict_step(self, batch, batch_idx) for Trainer.predict"
            )
        return self.forward(*args, **kwargs)

    @property
    def training_step_name(self) -> str:
        """The method that defines the training loss, for messages."""
        return (
            "training_step" if type(self).training_step is not TrainModule.training_step else "compute_loss"
        )

    def _training_output(self, batch: Any, batch_idx: mx.array) -> Any:
        return call_step(self.training_step, batch, batch_idx)

    def on_after_optimizer_step(self) -> None:
        """Runs INSIDE the compiled update step, right after the optimizer update (and only when the
        update was applied). For parameter constraints: clamps, re-normalisation. Pure MLX only,
        e.g. `self.scale = mx.clip(self.scale, 0.0, 4.6)`."""

    def batch_size(self, batch: Any) -> int | mx.array:
        """Number of examples in `batch`, used to weight validation means. Default: the leading
        dimension of the first array in the batch. Override for padded or masked batches: a count the
        device computes (`mx.sum(batch["mask"])`) may be returned as a scalar `mx.array`, which the
        Trainer keeps on the device (`.item()` here would wait for the step in flight, every batch)."""
        leaves = [x for x in _leaves(batch) if isinstance(x, mx.array) and x.ndim > 0]
        sizes = sorted({int(x.shape[0]) for x in leaves}, key=[int(x.shape[0]) for x in leaves].index)
        if len(sizes) > 1 and not getattr(self, "_warned_ambiguous_batch_size", False):
            # (Lightning warns alike: "Trying to infer the batch_size from an ambiguous collection".) A batch
            # of two sets' batches ({"clean": ..., "noisy": ...}, a CombinedLoader by hand) weights the second
            # set's values by the first's sizes, and its means are wrong where the sizes differ.
            self._warned_ambiguous_batch_size = True
            warnings.warn(
                f"{type(self).__name__}.batch_size: the batch's arrays differ in their first dimension "
                f"({', '.join(map(str, sizes))}); every value the step returns or logs is weighted by the "
                f"first, {sizes[0]}. Override batch_size(self, batch) to count otherwise, or weight a value "
                "by its own count: self.log(name, value, batch_size=n), or return it as "
                "(value, count)",
                stacklevel=user_stacklevel(),  # (the user's fit or validate, not the Trainer's loop)
            )
        return sizes[0] if sizes else 1

    def evaluation_means(self, stage: str, means: dict[str, float]) -> dict[str, float]:
        """The means a validation or test reports (`stage` "val" or "test"; names prefixed by it), given
        those the Trainer computed over the loader (reduced across processes), before the history, the
        loggers and the monitoring callbacks see them. Default: as they are. Override to derive an epoch
        figure from the epoch's means where it is not a weighted mean of per-batch values: the chord
        task's loss is a weighted sum of head losses, each a mean over its own frames."""
        return means

    # ---- lifecycle hooks (called by the Trainer, outside the compiled step) ----------------------
    # After the callbacks' hook of the same name, as in Lightning. The hooks with arguments Lightning's
    # lack (epoch, metrics) may also be written as Lightning's, without them: the Trainer calls a hook
    # that takes no arguments without them. They are declared `(*args, **kwargs)`, as the steps are, so
    # that both forms of an override type-check.
    def prepare_data(self) -> None:
        """Download or write once what `setup` reads (Lightning's): called at the start of every stage, before
        `setup`, in local rank 0 of each machine only while the others wait; `self.trainer` is set. Assign no
        state here (the other processes never run it): that goes in `setup`."""

    def setup(self, stage: str) -> None:
        """Runs when a stage ("fit", "validate", "test", "predict") starts, after the callbacks' `setup`:
        build what depends on the data (e.g. from `self.trainer.datamodule`)."""

    def teardown(self, stage: str) -> None: ...
    def on_fit_start(self) -> None: ...
    def on_fit_end(self) -> None: ...
    def on_train_start(self) -> None: ...
    def on_train_end(self) -> None: ...
    def on_train_epoch_start(self, *args: Any, **kwargs: Any) -> None:
        """`on_train_epoch_start(self, epoch: int)`, or Lightning's `on_train_epoch_start(self)`."""

    def on_train_epoch_end(self, *args: Any, **kwargs: Any) -> None:
        """`on_train_epoch_end(self, epoch: int, metrics: dict[str, float])` (the epoch's means), or
        Lightning's `on_train_epoch_end(self)`."""

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> int | None:
        """Return -1 to end the epoch here (as in Lightning); None (or nothing) goes on."""
        return None

    def on_train_batch_end(self, outputs: dict[str, Any], batch: Any, batch_idx: int) -> None: ...
    def on_validation_start(self) -> None: ...
    def on_validation_epoch_start(self) -> None: ...
    def on_validation_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None: ...
    def on_validation_batch_end(
        self, outputs: dict[str, Any], batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None: ...
    def on_validation_epoch_end(self) -> None:
        """After the last batch, before `on_validation_end`; `self.trainer.callback_metrics` holds this
        validation's means, and what is logged here counts for it (as in Lightning)."""

    def on_validation_end(self, *args: Any, **kwargs: Any) -> None:
        """`on_validation_end(self, metrics: dict[str, float])` (the val_ means), or Lightning's
        `on_validation_end(self)`."""

    def on_test_start(self) -> None: ...
    def on_test_epoch_start(self) -> None: ...
    def on_test_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None: ...
    def on_test_batch_end(
        self, outputs: dict[str, Any], batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None: ...
    def on_test_epoch_end(self) -> None: ...
    def on_test_end(self, *args: Any, **kwargs: Any) -> None:
        """`on_test_end(self, metrics: dict[str, float])` (the test_ means), or Lightning's
        `on_test_end(self)`."""

    def on_predict_start(self) -> None: ...
    def on_predict_epoch_start(self) -> None: ...
    def on_predict_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None: ...
    def on_predict_batch_end(
        self, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None: ...
    def on_predict_epoch_end(self) -> None: ...
    def on_predict_end(self) -> None: ...
    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Change a batch as it comes from the loader, in every stage (Lightning's first batch hook)."""
        return batch

    def transfer_batch_to_device(self, batch: Any, device: mx.Device, dataloader_idx: int) -> Any:
        """Lightning's device transfer. MLX memory is unified, so the batch is already where the step uses
        it: the default gives it back; an override gets the batch and `mx.default_device()`."""
        return batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Change a batch before `on_*_batch_start` and the step see it (augmentation, normalisation)."""
        return batch

    def configure_callbacks(self) -> Any:
        """Callbacks the module brings (a Callback or a list of them), merged into the Trainer's when a
        stage starts, as in Lightning: one replaces a Trainer callback of the same type."""
        return []

    def configure_model(self) -> None:
        """Build layers here rather than in `__init__` if you like: called when a stage starts, after
        `setup` and before `configure_optimizers` (again in every stage: make it do nothing the second
        time, as in Lightning)."""

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Add entries to `checkpoint`, the module's own part of the checkpoint (``module_state`` in
        trainer_state.json). It holds the run's ``epoch`` and ``global_step`` (read-only: changing them is
        refused). What is added is JSON: a value JSON would not give back as it was (a tuple, a set, a
        key that is not a string) is refused at the first save. An `mx.array` or numpy array comes back as
        one of its dtype and shape, bit for bit, as Lightning gives tensors back (a 0-d one: its number)."""

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Read back what `on_save_checkpoint` stored, with the ``epoch`` and ``global_step`` it saw."""

    # ---- Lightning's optimizer access -----------------------------------------------------------
    @overload
    def optimizers(self, use_pl_optimizer: Literal[True] = True) -> LightningOptimizer: ...

    @overload
    def optimizers(self, use_pl_optimizer: Literal[False]) -> optim.Optimizer: ...

    def optimizers(self, use_pl_optimizer: bool = True) -> LightningOptimizer | optim.Optimizer:
        """The optimizer the Trainer steps (Lightning's name), to read or set from a hook: its
        `learning_rate`, its `state`, and Lightning's `param_groups[i]["lr"]` (read and set), through a
        `LightningOptimizer` as Lightning's; `use_pl_optimizer=False` gives the MLX optimizer itself. A module
        with `automatic_optimization = False` gets its optimizers to step (`manual.ManualOptimizer`: one, or
        Lightning's list of several), which it steps in training_step (see `manual_backward`)."""
        optimizer = self._trainer.optimizer if self._trainer is not None else None
        if optimizer is None:
            raise RuntimeError(
                f"{type(self).__name__}.optimizers(): no optimizer yet; it exists once Trainer.fit has "
                "called configure_optimizers (from on_fit_start on)"
            )
        handles = _manual_handles(self)
        if handles is not None:  # (a manual module's: each steps its own parameters)
            given = list(handles) if use_pl_optimizer else [handle.optimizer for handle in handles]
            return given[0] if len(given) == 1 else given
        if not use_pl_optimizer:
            return optimizer
        # (on_after_optimizer_step runs inside the compiled step too: a rate set there is the trace's as well)
        traced = self._step_logs is not None or vars(self).get("_in_traced_hook", False)
        return LightningOptimizer(optimizer, traced and bool(getattr(self._trainer, "compile", False)))

    def lr_schedulers(self) -> None:
        """Lightning's handle for stepping schedules by hand: None where the optimizer the Trainer steps has
        no schedule (Lightning's None without schedulers: a port's `if sch is not None: sch.step()` skips it);
        refused where it has one (the update steps it) or where configure_optimizers gave a ReduceLROnPlateau
        (the Trainer steps it as a callback). None too, as Lightning's, where the Trainer has no optimizer (a
        `validate`, `test` or `predict` without `fit`; `setup` before configure_optimizers); refused on a
        module no Trainer has (Lightning's "not attached to a Trainer")."""
        optimizer = self._trainer.optimizer if self._trainer is not None else None
        plateau = getattr(self._trainer, "_configured_plateau", None)
        if plateau is not None:
            # (None here was Lightning's "no scheduler": a port's `sch.step(metric)` then raised a bare
            # AttributeError, where Lightning 2.6.6 gives the ReduceLROnPlateau.)
            raise TypeError(
                f"{type(self).__name__}.lr_schedulers(): the ReduceLROnPlateau that configure_optimizers "
                f"returned (monitor={plateau.monitor!r}) runs as a callback: the Trainer steps it at the "
                "training epochs' ends, so there is nothing to step by hand (a second step would lower the "
                "rate again); read the rate the next update uses with self.optimizers().param_groups[0]['lr']"
            )
        if self._trainer is not None and optimizer is None:
            # (No optimizer, so no schedule: Lightning 2.6.6 gives None there; this said "a schedule here is
            # the optimizer's learning rate" in a validate-only run.)
            return None
        if optimizer is not None and not any(part._schedulers for part in _optimizers_in(optimizer)):
            return None
        if optimizer is not None and not self.automatic_optimization:  # (`sch.step()` in a manual step)
            raise TypeError(
                f"{type(self).__name__}.lr_schedulers(): a manual optimizer's schedule is its learning rate, "
                "a function of that optimizer's own step count, so each opt.step() steps it (as Lightning's "
                "sch.step() after it would) and there is nothing to step by hand: remove the sch.step() "
                "call; read the rate the next step uses with opt.param_groups[0]['lr']"
            )
        raise TypeError(
            f"{type(self).__name__}.lr_schedulers(): a schedule here is the optimizer's learning rate, a "
            "function of its step counter evaluated inside the compiled update, so there is nothing to step "
            "by hand; read the rate the next update uses (Lightning's get_last_lr()) with "
            "self.optimizers().param_groups[0]['lr'] (self.trainer.learning_rate() is the last update's). "
            "For a schedule stepped every N batches or epochs return "
            "{'optimizer': opt, 'lr_scheduler': {'scheduler': schedule, 'interval': 'step' or 'epoch', "
            "'frequency': N}} from configure_optimizers; for one per MultiOptimizer group give each "
            "optimizer its schedule as its learning_rate; for a ReduceLROnPlateau stepped on a metric use "
            "Trainer(callbacks=[audiotrain.train.callbacks.ReduceLROnPlateau(monitor=...)])"
        )

    def manual_backward(self, loss_fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Lightning's manual optimization (`automatic_optimization = False`), the MLX way: MLX differentiates
        a function, so this takes the function that computes the loss (called with `*args, **kwargs`),
        adds the gradients of its loss to those of the trainable parameters (the toggled optimizer's alone
        while one is toggled) since their optimizer's `zero_grad()`, and returns the loss (or what `loss_fn`
        returned where that holds more: `(loss, parts)`, a dict with "loss"; `audiotrain.train.manual`). Refused outside a manual module's training_step."""
        manual = vars(self).get("_manual_step")
        if manual is None:
            raise TypeError(
                f"{type(self).__name__}.manual_backward(): only inside training_step of a module with "
                "self.automatic_optimization = False (manual optimization); with automatic optimization "
                + _MANUAL_OPTIMIZATION
            )
        return manual.backward(loss_fn, args, kwargs)

    def toggle_optimizer(self, optimizer: Any) -> None:
        """Lightning's: while `optimizer` is toggled, manual_backward computes the gradients of its
        parameters alone (the others' are not needed for its update, and cost a backward through them)."""
        self._manual_call("toggle_optimizer", optimizer).toggle(optimizer._index)

    def untoggle_optimizer(self, optimizer: Any) -> None:
        """Lightning's: manual_backward computes every trainable parameter's gradients again."""
        self._manual_call("untoggle_optimizer", optimizer).untoggle(optimizer._index)

    def toggled_optimizer(self, optimizer: Any) -> Any:
        """Lightning 2.5's context manager around `toggle_optimizer` / `untoggle_optimizer`."""
        return self._manual_call("toggled_optimizer", optimizer).toggled(optimizer._index)

    def _manual_call(self, name: str, optimizer: Any) -> Any:
        manual = vars(self).get("_manual_step")
        if manual is None:
            raise TypeError(f"{type(self).__name__}.{name}(): " + _TOGGLING)
        if not any(optimizer is handle for handle in manual.handles):
            raise TypeError(
                f"{type(self).__name__}.{name}({optimizer!r}): expected one of self.optimizers() (the "
                "wrappers it gives, not the MLX optimizers inside them)"
            )
        return manual

    def clip_gradients(
        self, optimizer: Any, gradient_clip_val: Any = None, gradient_clip_algorithm: Any = None
    ) -> None:
        """Lightning's clipping call of a manual step: the gradients `optimizer` would apply, clipped by
        their global norm ("norm", the default) or each entry by value, before `optimizer.step()`. Refused
        with automatic optimization, where the compiled update clips."""
        if vars(self).get("_manual_step") is not None:
            manual = self._manual_call("clip_gradients", optimizer)
            if gradient_clip_val is None:
                return  # (Lightning's: nothing to clip by)
            if isinstance(gradient_clip_val, bool) or not isinstance(gradient_clip_val, (int, float)):
                raise TypeError(
                    f"clip_gradients(gradient_clip_val={gradient_clip_val!r}): expected a number >= 0"
                )
            algorithm = "norm" if gradient_clip_algorithm is None else gradient_clip_algorithm
            if algorithm not in ("norm", "value") or gradient_clip_val < 0:
                raise ValueError(
                    f"clip_gradients(gradient_clip_val={gradient_clip_val!r}, gradient_clip_algorithm="
                    f"{gradient_clip_algorithm!r}): expected a value >= 0 and 'norm' or 'value'"
                )
            if gradient_clip_val > 0:  # (0 clips nothing, as Lightning's)
                manual.clip(optimizer._index, float(gradient_clip_val), algorithm)
            return
        raise TypeError(
            f"{type(self).__name__}.clip_gradients(): the gradients exist only inside the compiled training "
            "step, which clips them itself: give Trainer(gradient_clip_val=..., gradient_clip_algorithm="
            "'norm' or 'value'), and to clip each optimizer of a MultiOptimizer by its own norm (Lightning's "
            "clip_gradients per optimizer of a GAN) return OptimizerConfig(multi, clip_each_group=True) "
            "from configure_optimizers; for a rule that changes with the epoch (clip only after epoch 0), "
            "set self.trainer.gradient_clip_val and gradient_clip_algorithm in on_train_epoch_start"
        )

    # ---- parameters ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, mx.array]:
        """Lightning's (torch's) name -> array dict of every weight, frozen ones and BatchNorm's running
        statistics included, named as checkpoints name them (`net.layers.0.weight`): what an EMA callback
        ported from Lightning copies. MLX arrays are immutable: a later update does not change it."""
        return dict(tree_flatten(self.parameters()))

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Lightning's (torch's): put the arrays of a `state_dict()` into the module (MLX's `load_weights`,
        whose `strict` refuses a missing or unknown name, or a shape that differs); `strict=False` loads
        the names given and keeps the others. Between steps, from a hook: the next step uses them. As
        torch copies into its parameters, each weight keeps its dtype (float16 values into a float32 model
        stay float32), numpy arrays are taken, and a shape that differs is refused whatever `strict` (which
        is about names: MLX's strict=False loaded it as it came). A strict mismatch names the missing and
        the unexpected keys (and a prefix such as Lightning's `model.` they all carry); strict=False ignores
        names the module lacks, as torch does, and returns torch's `(missing_keys, unexpected_keys)`."""
        own = dict(tree_flatten(self.parameters()))
        arrays, differences = checked_arrays(
            f"{type(self).__name__}.load_state_dict()", own, state_dict, strict
        )
        self.load_weights(arrays, strict=False)  # (names and shapes checked above, as torch checks them)
        return differences

    def parameters(self) -> ParameterTree:
        return ParameterTree(super().parameters())

    def trainable_parameters(self) -> ParameterTree:
        self._check_initialised()
        return ParameterTree(super().trainable_parameters())

    def freeze(
        self,
        *,
        recurse: bool | None = None,
        keys: str | list[str] | None = None,
        strict: bool | None = None,
    ) -> TrainModule:
        """Without arguments, Lightning's `freeze()`, the inference idiom after `load_from_checkpoint`: every
        parameter frozen and the module in eval mode (Dropout off, BatchNorm on its running statistics).
        With any of MLX's arguments (`recurse=`, `keys=`, `strict=`), MLX's `freeze` exactly: only which
        parameters train changes, not the mode (`self.freeze(keys=["beta"], recurse=False)` in a hook).
        A submodule's `freeze()` (`self.backbone.freeze()`, a plain `nn.Module`) is MLX's."""
        if recurse is None and keys is None and strict is None:
            super().freeze()
            self.eval()
            return self
        super().freeze(recurse=True if recurse is None else recurse, keys=keys, strict=bool(strict))
        return self

    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        """torch's ``register_buffer``: ``self.<name>`` holds `tensor` (an ``mx.array``; numpy, a list or a
        CPU torch tensor is converted) frozen, so that no optimizer trains it, and Lightning's `unfreeze()`
        leaves it frozen; it is saved in checkpoints and `state_dict()`, as a persistent buffer is. Where
        torch keeps a tensor attribute out of the parameters, MLX trains every ``mx.array`` attribute: class
        weights of a weighted cross-entropy (``self.class_weights = mx.array(w)``) were moved by the
        loss's gradient, to negative weights. ``persistent=False`` (kept out of torch's state_dict) is
        refused: the checkpoints hold every array of the module. A plain ``nn.Module`` inside it has no
        such method: `audiotrain.register_buffer(submodule, name, value)` does the same there."""
        register_buffer(self, name, tensor, persistent)

    def unfreeze(
        self,
        *,
        recurse: bool | None = None,
        keys: str | list[str] | None = None,
        strict: bool | None = None,
    ) -> TrainModule:
        """Without arguments, Lightning's `unfreeze()`: every parameter trainable (a BatchNorm's running
        statistics stay statistics, as MLX keeps them) and the module back in training mode. With any of
        MLX's arguments, MLX's `unfreeze` exactly (the mode does not change)."""
        if recurse is None and keys is None and strict is None:
            super().unfreeze()  # (MLX's recursive unfreeze makes BatchNorm statistics trainable too)
            for _, sub in self.named_modules():
                if isinstance(sub, nn.BatchNorm):
                    stats = [key for key in ("running_mean", "running_var") if key in sub]
                    sub.freeze(recurse=False, keys=stats, strict=False)
                buffers = sorted(vars(sub).get("_buffer_names", ()))  # (register_buffer's: never trained)
                if buffers:
                    nn.Module.freeze(sub, recurse=False, keys=buffers, strict=False)
            self.train()
            return self
        super().unfreeze(recurse=True if recurse is None else recurse, keys=keys, strict=bool(strict))
        return self

    def _check_initialised(self) -> None:
        """Refuse a module whose `__init__` did not call `super().__init__()` (as torch's nn.Module does).
        Building it works, nn.Module being a dict, and MLX then fails far from the cause: a missing
        `_no_grad` in `trainable_parameters`, a missing `_logged` in `self.log`."""
        if "_no_grad" in vars(self) and "_hparams" in vars(self):
            return
        cls = type(self)
        # The __init__ that should have called it: the nearest one defined below TrainModule.
        owner = next((c for c in cls.__mro__ if "__init__" in vars(c)), cls)
        raise AttributeError(
            f"{owner.__name__}.__init__ did not call super().__init__(): TrainModule (an mlx.nn.Module) "
            f"needs it before {cls.__name__} is used (its parameters, self.log, the Trainer). Call "
            "super().__init__() first thing in __init__, before setting any attribute"
        )

    def __getattr__(self, name: str) -> Any:
        """Only reached for a name not found. `_trainer` missing: `self.device`, `self.trainer`,
        `self.logger`, ... read before `super().__init__()` set it; say that, naming the property read."""
        if name == "_trainer" and "_hparams" not in vars(self):
            # The property that reads it (device, logger, ...), maybe through a helper of its own.
            frame, what = sys._getframe(1), "_trainer"
            for _ in range(3):
                if frame is None:
                    break
                reader = frame.f_code.co_name
                if not reader.startswith("_") and hasattr(type(self), reader):
                    what = reader
                    break
                frame = frame.f_back
            _refuse_before_init(self, what, "its link to the Trainer")
        return super().__getattr__(name)

    # ---- trainer-provided state -----------------------------------------------------------------
    @property
    def trainer(self) -> Trainer:
        if self._trainer is None:
            raise RuntimeError(
                f"{type(self).__name__}.trainer is only available once the module is attached to a "
                "Trainer (inside fit/validate/test, including configure_optimizers)."
            )
        return self._trainer

    @property
    def current_epoch(self) -> int:
        self._warn_of_a_count_read_in_a_compiled_step("current_epoch")
        return self._trainer.current_epoch if self._trainer is not None else 0

    @property
    def global_step(self) -> int:
        self._warn_of_a_count_read_in_a_compiled_step("global_step")
        return self._trainer.global_step if self._trainer is not None else 0

    @property
    def device(self) -> Any:
        """Lightning's `self.device`: the `mx.Device` the Trainer runs on (MLX's default one without a
        Trainer). MLX arrays have no device of their own: `mx.zeros(3)` needs no `device=`."""
        own = vars(self).get("_own_device")
        if own is not None:
            return own
        return mx.Device(self._trainer.device) if self._trainer is not None else mx.default_device()

    @property
    def on_gpu(self) -> bool:
        """Lightning's `self.on_gpu`: whether `self.device` is a GPU (Metal or CUDA)."""
        return self.device.type == mx.DeviceType.gpu

    @property
    def dtype(self) -> Any:
        """Lightning's `self.dtype`: the dtype of the module's floating parameters (the first one's;
        bfloat16 under `precision="bf16-true"`), float32 for a module without any."""
        own = vars(self).get("_own_dtype")
        if own is not None:
            return own
        _refuse_before_init(self, "dtype", "its parameters")  # (else float32, whatever it builds next)
        floating = (
            v.dtype for _, v in tree_flatten(self.parameters()) if mx.issubdtype(v.dtype, mx.floating)
        )
        return next(floating, mx.float32)

    def to_onnx(self, *args: Any, **kwargs: Any) -> None:
        """Lightning's PyTorch exporter, refused: an MLX model has no ONNX or TorchScript form."""
        raise TypeError(_no_torch_export(type(self).__name__, "to_onnx"))

    def to_torchscript(self, *args: Any, **kwargs: Any) -> None:
        """Lightning's PyTorch exporter, refused: an MLX model has no ONNX or TorchScript form."""
        raise TypeError(_no_torch_export(type(self).__name__, "to_torchscript"))

    @property
    def strict_loading(self) -> bool:
        """Lightning's `strict_loading` (True unless set False): how the Trainer's `ckpt_path` and
        `load_from_checkpoint` load the weights. False loads those whose names match, keeps the others as
        `__init__` made them, and warns naming them (a layer added since the checkpoint, a new head)."""
        return vars(self).get("_strict_loading") in (None, True)

    @strict_loading.setter
    def strict_loading(self, value: bool | None) -> None:
        if value is not None and not isinstance(value, bool):
            raise TypeError(
                f"{type(self).__name__}.strict_loading = {value!r}: expected True or False (False loads "
                "the checkpoint's weights whose names match)"
            )
        object.__setattr__(self, "_strict_loading", value)

    @property
    def example_input_array(self) -> Any:
        """Lightning's example input (None until set): an attribute, not a weight: nothing trains it and
        checkpoints do not hold it. Nothing runs it either (the model summary counts parameters only)."""
        return getattr(self, "_example_input_array", None)

    @property
    def global_rank(self) -> int:
        """This process's rank in the job (Lightning's; the Trainer's), 0 without a Trainer."""
        return self._trainer.global_rank if self._trainer is not None else 0

    @property
    def local_rank(self) -> int:
        """This process's rank on its machine (Lightning's; the Trainer's), 0 without a Trainer."""
        return self._trainer.local_rank if self._trainer is not None else 0

    def all_gather(self, data: Any, group: Any = None, sync_grads: bool = False) -> Any:
        """Lightning's `self.all_gather`: every rank's `data` (an array, a number, or a dict / list / tuple of
        them), each array stacked to ``(world_size, ...)`` in rank order; unchanged arrays in one process.
        For host code (an epoch-end hook's metric over every rank's predictions); every rank must call it,
        so not from a batch hook: a rank's padding batch (data parallel) runs without them, and it would wait.
        A process `group` and `sync_grads=True` (inside the compiled step the gradient flows through
        `audiotrain.distributed.all_gather`) are refused by name."""
        if group is not None:
            raise ValueError(
                f"self.all_gather(..., group={group!r}): audiotrain gathers over all processes of the job, "
                "not a group; leave group out"
            )
        if sync_grads:
            raise ValueError(
                "self.all_gather(..., sync_grads=True): this is for host code, outside the compiled step; "
                "in compute_loss use audiotrain.distributed.all_gather (differentiable)"
            )
        return gather_over_ranks(data)

    def print(self, *args: Any, **kwargs: Any) -> None:
        """Lightning's `self.print`: print on global rank 0 only (as `trainer.print`, above the progress
        bar); `sep`, `end`, `file`, `flush` as ``print``'s. Without a Trainer, Python's `print`."""
        if self._trainer is None:
            print(*args, **kwargs)
            return
        self._trainer.print(*args, **kwargs)

    def _warn_of_a_count_read_in_a_compiled_step(self, name: str, read_as: str | None = None) -> None:
        """A compiled step runs its Python once, when it is traced: `self.current_epoch` read there is the
        trace's number for every later step (a warm-up `min(1, epoch / 2)` stays 0, silently), where
        Lightning's step reads it afresh each time. Said once per module and name."""
        trainer = self._trainer
        in_step = self._step_logs is not None or vars(self).get("_in_traced_hook", False)
        if not in_step or trainer is None or not trainer.compile:
            return
        # (An evaluation step is traced again where a count it read has changed, `traced_reads`: its
        # validation in epoch 2 reads 2, as Lightning's does; only the training step keeps the trace's.)
        if trainer.evaluating or trainer.predicting:
            return
        if getattr(trainer, "_manual", False):  # (a manual module's training step runs eagerly: read afresh)
            return
        said = getattr(self, "_counts_said", None)
        if said is None:
            said = set()
            object.__setattr__(self, "_counts_said", said)
        read_as = read_as or f"self.{name}"
        if read_as in said:
            return
        said.add(read_as)
        # (an epoch's count is set once an epoch; a step's count or the last-batch flag before each batch)
        hook = "on_train_epoch_start" if name == "current_epoch" else "on_train_batch_start"
        warnings.warn(
            f"{type(self).__name__} reads {read_as} inside its compiled step: the step's Python runs once, "
            f"when it is traced, so the value ({getattr(trainer, name)}) stays that of the trace for every later "
            "step. Keep what the step needs as an array on the module, set in a hook (self.beta = "
            f"mx.array(...) in {hook}, frozen with self.freeze(keys=['beta'], recurse=False)): "
            "the compiled step reads it as state. Or train with Trainer(compile=False)",
            stacklevel=user_stacklevel(),
        )

    @property
    def logger(self) -> Logger | None:
        """The Trainer's first logger (Lightning's `self.logger`, e.g. `self.logger.experiment` in a hook);
        None without one, or before the module is attached to a Trainer."""
        return self._trainer.logger if self._trainer is not None else None

    @property
    def loggers(self) -> list[Logger]:
        """The Trainer's loggers (Lightning's `self.loggers`); empty before the module is attached."""
        return self._trainer.loggers if self._trainer is not None else []

    def log(
        self,
        name: str,
        value: Any,
        prog_bar: bool = False,
        logger: bool | None = None,
        on_step: bool | None = None,
        on_epoch: bool | None = None,
        reduce_fx: str = "mean",
        enable_graph: bool = False,
        sync_dist: bool = False,
        sync_dist_group: Any = None,
        add_dataloader_idx: bool = True,
        batch_size: int | mx.array | None = None,
        metric_attribute: str | None = None,
        rank_zero_only: bool = False,
        **unknown: Any,
    ) -> None:
        """Log a scalar, as Lightning's `self.log` (its arguments, in its order).

        Inside `compute_loss` / `training_step` / `validation_step` / `test_step` (compiled or not) the
        value becomes a metric of that step, reduced like the returned metrics (means weighted by
        `batch_size(batch)`): in training `on_step=True, on_epoch=False` by default (at each logging step
        that step's value, as in Lightning; `on_epoch` adds the epoch mean to the history), in validation
        and test its mean over the loader. `prog_bar` shows it in the progress bar; `logger=False` keeps it out
        of the loggers. Under data parallel every value is reduced across processes (`sync_dist` is
        accepted for Lightning code and always on) and only rank 0 writes to the loggers
        (`rank_zero_only` is accepted for the same reason).

        In a hook (outside a step; a callback's `pl_module.log` too) the value must be a number or a
        one-element array (refused here otherwise), and Lightning's rules apply (`train/hook_logs.py`). In
        `on_train_batch_start` / `on_train_batch_end` the defaults are `on_step=True, on_epoch=False`: the
        last value goes to the loggers at the next logging step (the row of its `train_loss`). In every
        other hook they are `on_step=False, on_epoch=True` (`on_step=True` there is a ValueError, as
        Lightning's MisconfigurationException): the mean over the training epoch, or over the validation or
        test loader, weighted by `batch_size` if given, else by `batch_size(batch)` in a batch hook, else 1,
        to `callback_metrics`, the history (training) and the loggers at the epoch's or the stage's end.
        Logged both ways, the loggers get `<name>_step` and `<name>_epoch`, `callback_metrics` those and
        `<name>`. A validation inside an epoch reports only what was logged during it; a checkpoint keeps
        the epoch's sums, so a run resumed inside the epoch ends it with the same means.

        In a step, `batch_size` weights that value alone in its mean, as in Lightning (the others keep
        `batch_size(batch)`): an int, or a scalar `mx.array` the step computes (`batch_size=mx.sum(mask)`,
        the frames a masked value is over), as a returned `(value, count)` metric is weighted.
        `reduce_fx` must be "mean" (or `mx.mean`; as in Lightning "avg" and any case too), the one reduction
        there is: Lightning's others ("sum", "max", a callable) are refused, each with what to do instead.

        Lightning's other keywords are accepted where they change nothing here: `logger=None` (its
        default, logged), `enable_graph` (an MLX value holds no graph to keep), `sync_dist_group=None` and
        `metric_attribute=None`. With several validation or test loaders a value logged in the step is
        reported as Lightning names it, `val_loss/dataloader_idx_0`, one name for each loader;
        `add_dataloader_idx=False` keeps the name as it is (logged from one loader only, as in Lightning).
        A process group or a metric attribute (a torchmetrics object) is refused, as is a keyword Lightning
        has not.

        A value logged as "step" (`self.log("step", self.current_epoch)`) is, as in Lightning, every
        logger's step (x axis, `int(value)`) for the values sent to the loggers with it (those of the same
        logging step, epoch end or evaluation end) and no series of its own; the others keep the global
        step. Logged with both `on_step` and `on_epoch` it becomes `step_step` / `step_epoch`, plain
        metrics, as in Lightning. `callback_metrics` and `logged_metrics` hold it; `history.json`'s
        `step` column stays the global step.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"log() needs a non-empty metric name, got {name!r}")
        refuse_log_keywords(name, unknown, sync_dist_group, metric_attribute)
        if add_dataloader_idx and "/dataloader_idx_" in name:
            # Lightning's suffix for a value of one of several loaders, refused by hand as Lightning does (the
            # Trainer adds it where a stage has several loaders).
            raise ValueError(
                f"self.log({name!r}, ...): the name should not hold '/dataloader_idx_' while "
                "add_dataloader_idx=True, as in Lightning (its suffix for one of several loaders); rename "
                "it, or pass add_dataloader_idx=False to log it as it is"
            )
        trainer = self._trainer
        if logger is True and trainer is not None and not trainer.loggers and trainer.is_global_zero:
            # As Lightning's: the call asks for the loggers by name and there is none, so the value goes to
            # callback_metrics alone; a run meant to be recorded would otherwise end with nothing written.
            # (Rank 0 alone, as Lightning's rank_zero_warn: once, not once per rank.)
            warnings.warn(
                f"self.log({name!r}, ..., logger=True) was called but the Trainer has no logger: the value "
                "reaches callback_metrics (and the bar) only. Give the Trainer one "
                "(Trainer(logger=CSVLogger('logs'))), or leave out logger=True to silence this, as Lightning "
                "says",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        if logger is None:  # (Lightning's default: log it)
            logger = True
        if isinstance(batch_size, mx.array) and self._step_logs is None:
            raise ValueError(
                f"self.log({name!r}, ..., batch_size={batch_size!r}) in a hook: the weight there is a number "
                "(an int); an array count weights a value logged inside a step"
            )
        if (
            batch_size is not None
            and not isinstance(batch_size, mx.array)
            and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 0)
        ):
            raise ValueError(
                f"self.log({name!r}, ..., batch_size={batch_size!r}): expected a non-negative int (the weight "
                f"of the value in the mean); to weight by a count in the batch, override "
                f"{type(self).__name__}.batch_size(self, batch)"
            )
        # As Lightning's: a name in any case, "avg" for "mean".
        kind = reduce_fx.lower() if isinstance(reduce_fx, str) else reduce_fx
        if kind not in ("mean", "avg", mx.mean):
            raise ValueError(
                f"self.log({name!r}, ..., reduce_fx={reduce_fx!r}): only 'mean' is supported (weighted by "
                f"batch_size(batch)); {instead_of_reduction(kind)}"
            )
        if self._step_logs is not None:
            options = {"prog_bar": prog_bar, "logger": logger, "on_step": on_step, "on_epoch": on_epoch}
            self._step_logs.record(name, value, options, batch_size, add_dataloader_idx=add_dataloader_idx)
        else:
            from audiotrain.train import hook_logs

            hook_logs.record(
                self,
                name,
                value,
                prog_bar=prog_bar,
                logger=logger,
                on_step=on_step,
                on_epoch=on_epoch,
                batch_size=batch_size,
                add_dataloader_idx=add_dataloader_idx,
            )

    def log_dict(
        self,
        dictionary: dict[str, Any],
        prog_bar: bool = False,
        logger: bool | None = None,
        on_step: bool | None = None,
        on_epoch: bool | None = None,
        reduce_fx: str = "mean",
        enable_graph: bool = False,
        sync_dist: bool = False,
        sync_dist_group: Any = None,
        add_dataloader_idx: bool = True,
        batch_size: int | mx.array | None = None,
        rank_zero_only: bool = False,
        **unknown: Any,
    ) -> None:
        """`self.log(name, value, ...)` for each item of `dictionary`, as Lightning's `log_dict` (its
        arguments, in its order): the same options (`prog_bar`, `on_step`, `on_epoch`, ...) apply to every
        value."""
        if not isinstance(dictionary, Mapping):
            raise TypeError(
                f"log_dict(...): expected a dict of metric name → value, got {type(dictionary).__name__}; "
                "for one value call self.log(name, value)"
            )
        options = dict(
            prog_bar=prog_bar,
            logger=logger,
            on_step=on_step,
            on_epoch=on_epoch,
            reduce_fx=reduce_fx,
            enable_graph=enable_graph,
            sync_dist=sync_dist,
            sync_dist_group=sync_dist_group,
            add_dataloader_idx=add_dataloader_idx,
            batch_size=batch_size,
            rank_zero_only=rank_zero_only,
        )
        for name, value in dictionary.items():
            self.log(name, value, **options, **unknown)

    @contextlib.contextmanager
    def _collect_logs(self, logs: Any):
        """While a step runs, `self.log` records into `logs` (the step returns those values)."""
        object.__setattr__(self, "_step_logs", logs)
        try:
            yield logs
        finally:
            object.__setattr__(self, "_step_logs", None)

    # ---- hyperparameters (Lightning's save_hyperparameters / load_from_checkpoint) ---------------
    @property
    def hparams(self) -> AttributeDict:
        """The `__init__` arguments `save_hyperparameters()` recorded (stored in every checkpoint); as in
        Lightning a dict whose keys read as attributes too (`self.hparams.lr`)."""
        _refuse_before_init(self, "hparams")
        return self._hparams

    @property
    def hparams_initial(self) -> AttributeDict:
        """Lightning's read-only copy of `hparams` as `save_hyperparameters` recorded them: later changes
        (`self.hparams.lr = ...`) do not reach it, nor do changes to what it returns."""
        return copy.deepcopy(self._hparams_initial)

    def save_hyperparameters(
        self,
        *names: Any,
        ignore: str | list[str] | tuple[str, ...] | None = (),
        frame: types.FrameType | None = None,
        logger: bool = True,
    ) -> None:
        """Record the arguments of the `__init__` that calls this (all, or only `names`): they go into
        `hparams`, every checkpoint's trainer_state.json and the loggers' hyperparameters, and
        `load_from_checkpoint` rebuilds the module from them. Values must be JSON-serialisable
        (numbers, strings, lists, tuples, dicts with string keys); leave others out with `ignore=`.
        Tuples are given back to `__init__` as tuples (the checkpoint records where they were), and
        OmegaConf configs (Hydra's DictConfig / ListConfig), saved resolved, as configs.

        As in Lightning, called in a base class's `__init__` it records the arguments of every `__init__`
        of the chain running for this module (the subclass's added arguments too; a subclass's value wins),
        and the entries of a `**kwargs` argument.

        As in Lightning, one dict or `argparse.Namespace` may be given instead of names
        (`save_hyperparameters(config)`): its entries become `hparams`, and when it is an `__init__`
        argument `load_from_checkpoint` passes them back as that argument.

        Lightning's `logger=False` keeps them out of the loggers' hyperparameters (checkpoints still hold
        them); `frame=` is the frame to look for the `__init__` from (a helper's caller), default the
        caller's."""
        _refuse_before_init(self, "save_hyperparameters()")
        frame = _caller_frame(frame, type(self).__name__, inspect.currentframe().f_back)
        try:
            init_arguments = _init_arguments(self, frame)
        finally:
            del frame
        object.__setattr__(self, "_log_hyperparams", _logger_flag(logger, type(self).__name__))
        ignored = ignored_names(ignore, type(self).__name__)
        name = type(self).__name__
        if init_arguments is None:  # not called from an __init__ of this module
            init_arguments = {}
            takes = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
            if names or takes:
                raise ValueError(
                    f"{name}.save_hyperparameters: call it inside {name}.__init__ (or a base class's "
                    "__init__): it records the arguments of the __init__ calls running, and none is"
                )
        if any(not isinstance(n, str) for n in names):
            hparams = self._hparams_from_object(names, init_arguments)
            hparams = chosen_hyperparameters(name, hparams, tuple(hparams), ignored)
            # (a whole OmegaConf config: its nested values read as configs, as Lightning's hparams, the config)
            configs = list(hparams) if is_omegaconf(names[0]) else []
        else:
            hparams = chosen_hyperparameters(name, init_arguments, names, ignored)
            configs = sorted(n for n in hparams if is_omegaconf(init_arguments[n]))
            object.__setattr__(self, "_hparams_omegaconf", configs)
        # Saved plain (JSON), kept here as configs: `self.hparams.net.depth` reads as on Lightning's.
        self._hparams.update(config_views(hparams, configs) if configs else hparams)
        object.__setattr__(self, "_hparams_initial", copy.deepcopy(self._hparams))

    def _hparams_from_object(self, given: tuple, init_arguments: dict[str, Any]) -> dict[str, Any]:
        """`save_hyperparameters(config)` with a dict or a Namespace: its entries, and which `__init__`
        argument it is (found by identity, as Lightning does) for load_from_checkpoint."""
        name = type(self).__name__
        if len(given) != 1 or not isinstance(given[0], (Mapping, argparse.Namespace)):
            shown = ", ".join(type(g).__name__ for g in given)
            raise _ConfigTypeError(
                f"{name}.save_hyperparameters({shown}): expected __init__ argument names, or one dict or "
                "argparse.Namespace of hyperparameters"
            )
        config = given[0]
        entries = vars(config) if isinstance(config, argparse.Namespace) else config
        entries = plain_omegaconf(entries, f"{name}.save_hyperparameters", "the config")
        if not all(isinstance(key, str) for key in entries):
            raise TypeError(
                f"{name}.save_hyperparameters(dict): the keys must be strings, got {list(entries)}"
            )
        argument = next((p for p, value in init_arguments.items() if value is config), None)
        origin = {"hparams_name": argument, "hparams_type": type(config).__name__} if argument else {}
        object.__setattr__(self, "_hparams_origin", origin)
        return dict(entries)

    @classmethod_of_the_class
    def load_from_checkpoint(
        cls,
        checkpoint_path: str | os.PathLike,
        map_location: Any = None,
        strict: bool | None = None,
        **overrides: Any,
    ) -> Self:
        """Rebuild the module from a checkpoint's hyperparameters (`save_hyperparameters`) and load its
        weights. `overrides` (any other keyword) go to `__init__`: they replace saved hyperparameters or
        give the ones left out. Saved ones `__init__` does not take (a base class's, recorded along the class
        chain) are left out, as in Lightning. `configure_model()` runs before the weights load, so the layers
        it builds take theirs (as in Lightning).

        `map_location` is Lightning's and accepted for its code, and ignored: MLX arrays live in unified
        memory, usable by the CPU and the GPU alike, so there is no device to map the weights to.
        `strict` (None: True, as Lightning's): every weight of the model must be in the checkpoint and
        every array of the checkpoint in the model. False loads the weights whose names match (their
        shapes must match too, as in PyTorch), keeps the others as `__init__` made them, and warns with
        the missing and unexpected names."""
        from audiotrain.train import checkpoint as ckpt
        from audiotrain.train import hook_state
        from audiotrain.train.callbacks._averaging import validated_average

        if strict is not None and not isinstance(strict, bool):
            raise TypeError(
                f"{cls.__name__}.load_from_checkpoint(strict={strict!r}): expected True, False or None"
            )

        if os.fspath(checkpoint_path) == "":
            raise ValueError(
                f"{cls.__name__}.load_from_checkpoint(''): the path is empty. A ModelCheckpoint's "
                "best_model_path stays empty until it saves (one with a monitor: until it keeps a top-k "
                "checkpoint; every_n_epochs may not have come yet): pass a checkpoint folder, or its "
                "last_model_path where it keeps a `last` (save_last=True)"
            )

        # A save of a running fit that replaces the folder between its state and its weights makes the whole
        # load again (`ckpt.read_unreplaced`): the hyperparameters and the weights are of one save.
        def resolve(path: Any) -> Path:
            return ckpt.resolve_checkpoint(path, required=ckpt.MODEL_FILES)  # weights alone

        def load(folder: Path) -> Self:
            state = ckpt.read_model_state(folder)  # (an older format too: nothing resumes)
            saved_hparams = with_hyperparameter_tuples(
                state.get("hyper_parameters", {}), state.get("hyper_parameter_tuples")
            )
            hparams = {**saved_hparams, **overrides}
            argument = state.get("hparams_name")
            if argument:  # saved from one dict or Namespace argument: given back as that argument
                arguments = inspect.signature(cls.__init__).parameters
                config = dict(saved_hparams)
                config.update({k: v for k, v in overrides.items() if k not in arguments})  # its entries
                if state.get("hparams_type") == "Namespace":
                    config = argparse.Namespace(**config)
                elif state.get("hparams_type") == "DictConfig":
                    config = as_omegaconf(config, f"{cls.__name__}.load_from_checkpoint", argument)
                hparams = {argument: config, **{k: v for k, v in overrides.items() if k in arguments}}
            for name in state.get("hyper_parameter_omegaconf") or ():
                if name in hparams and name not in overrides:
                    hparams[name] = as_omegaconf(hparams[name], f"{cls.__name__}.load_from_checkpoint", name)
            where = f"{cls.__name__}.load_from_checkpoint({str(folder)!r})"
            later = state.get("hyper_parameters_set_later") or []
            hparams = _arguments_taken(cls, hparams, set(overrides), where, set_later=set(later))
            try:
                inspect.signature(cls).bind(**hparams)
            except TypeError as err:
                saved = state.get("hyper_parameters", {})
                raise TypeError(
                    f"{where}: {_arguments_mismatch(cls, hparams, saved, overrides, err)}"
                ) from None
            try:
                module = cls(**hparams)
            except Exception as err:  # the arguments fit the signature; their values did not
                first_line = (str(err).splitlines() or [""])[0]
                # Each value cut short: one long dict (a record of settings) hid the others, the bad one too.
                shown = ", ".join(f"{k}={_cut(repr(v), 60)}" for k, v in sorted(hparams.items()))
                if len(shown) > 300:
                    shown = shown[:300] + " ..."
                raise (TypeError if isinstance(err, TypeError) else ValueError)(
                    f"{where}: {cls.__name__}({shown}) failed ({type(err).__name__}: {first_line}). The "
                    f"values come from hyper_parameters in {folder / ckpt.STATE_FILE} (was it edited, or __init__ "
                    "changed?) and the keywords given; pass corrected values as keywords"
                ) from err
            # Layers built in configure_model (rather than __init__) are there to take their weights, as in
            # Lightning; a Trainer's stage calls it again later, which the hook is written to expect.
            module.configure_model()
            # Then `on_load_checkpoint`, before the weights load, as Lightning's `_load_state`: it may rebuild
            # a layer the weights then load into.
            model_file = folder / ckpt.MODEL_FILE
            added = hook_state.load_module_state_before_weights(module, state, model_file)
            expected, header = hook_state.weights_to_load(module, model_file, added)
            chosen = vars(module).get("_strict_loading")
            if chosen is not None and strict is not None and strict != chosen:  # (Lightning's refusal)
                raise ValueError(
                    f"{where}: strict={strict!r} conflicts with {cls.__name__}.strict_loading={chosen!r} set "
                    "by the module: give the same value to both, or one of them"
                )
            strict_load = module.strict_loading if strict is None else strict
            if hook_state.overrides(module, "load_state_dict"):
                # Lightning's `obj.load_state_dict(checkpoint["state_dict"], strict=strict)`: its own names.
                hook_state.load_weights(
                    module, ckpt.read_arrays(model_file, header=header), strict_load, model_file
                )
                loaded = validated_average(folder, state, module, names=None)
            else:
                loaded = read_named_weights(
                    module, model_file, expected, header, strict_load, where, f"{cls.__name__} model"
                )
                # The weights the checkpoint was validated with: an EMA's average over the training
                # weights, as Lightning's checkpoint state_dict is that average.
                loaded.update(validated_average(folder, state, module, names=loaded))
            module.update(ckpt.merge_flat(module.parameters(), loaded))
            # The random key too: building the module split it for initial weights that were replaced
            # unevaluated, and the pending splits stayed in its graph (~2 KB each, a load in a loop grew).
            mx.eval(module.parameters(), mx.random.state)
            return module

        return ckpt.read_unreplaced(checkpoint_path, resolve, load)

    def _attach(self, trainer: Trainer | None) -> None:
        if trainer is not None:  # (every stage attaches first: fail there, not deep inside MLX)
            self._check_initialised()
        object.__setattr__(self, "_trainer", trainer)
        # A TrainModule inside this one (a pretrained encoder's own module) reads the same Trainer in its
        # hooks, as Lightning's trainer setter gives it to the LightningModules that are direct children.
        for child in self.children().values():
            if isinstance(child, TrainModule):
                child._attach(trainer)

    def _pop_logged(self) -> dict[str, Any]:
        logged = dict(self._logged)
        self._logged.clear()
        return logged


def _arguments_taken(
    cls: type,
    hparams: dict[str, Any],
    keywords: set[str],
    where: str,
    root: type | None = None,
    stacklevel: int = 4,
    set_later: set[str] = frozenset(),
) -> dict[str, Any]:
    """The saved hyperparameters `cls.__init__` takes, and the keywords given, as Lightning's `_load_state`
    passes them: all when it takes `**kwargs`. A base class's `save_hyperparameters()` records the arguments
    of the whole `__init__` chain, so a subclass that gives its base's arguments itself (`Wide(width)` calling
    `super().__init__(hidden=width * 2)`) leaves the base's out of its own `__init__`. A saved name no
    `__init__` of the class chain takes is left out with a warning: `__init__` was probably changed since the
    save, and a renamed argument now has its default. The keywords given are all kept, so that a misspelt one
    is refused (`_arguments_mismatch`). `root`: the library class the chain ends at (TrainModule, or
    DataModule for a datamodule's). `set_later`: keys set in `hparams` after save_hyperparameters, left
    out without a warning, as Lightning leaves them out."""
    root = root or TrainModule
    parameters = inspect.signature(cls).parameters
    if any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        return hparams
    dropped = [k for k in hparams if k not in parameters and k not in keywords]
    bases = [c for c in cls.__mro__[1:] if issubclass(c, root) and c is not root]
    stale = [k for k in dropped if k not in set_later and not any(_init_takes(base, k) for base in bases)]
    if stale:
        warnings.warn(
            f"{where}: the checkpoint's hyper_parameters hold {', '.join(stale)}, which no __init__ of "
            f"{cls.__name__} or its base classes takes (its arguments: {', '.join(parameters) or 'none'}): left "
            "out. Was __init__ changed since the checkpoint was saved?",
            UserWarning,
            stacklevel=stacklevel,
        )
    return {k: v for k, v in hparams.items() if k not in dropped}


def _init_takes(cls: type, name: str) -> bool:
    """Whether `cls`'s own `__init__` (not an inherited one) takes an argument `name`, or any (`**kwargs`)."""
    init = vars(cls).get("__init__")
    if init is None:
        return False
    parameters = inspect.signature(init).parameters
    return name in parameters or any(p.kind == p.VAR_KEYWORD for p in parameters.values())


def _arguments_mismatch(
    cls: type, hparams: dict[str, Any], saved: dict[str, Any], keywords: dict[str, Any], err: Exception
) -> str:
    """Why `cls(**hparams)` does not fit `cls.__init__` in load_from_checkpoint: which names came from the
    keywords given, which from the checkpoint's saved hyperparameters, and what to do about each."""
    name, parameters = cls.__name__, inspect.signature(cls).parameters
    takes = ", ".join(parameters) or "none"
    reasons = []
    if not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        unexpected = [k for k in hparams if k not in parameters]
        given = [k for k in unexpected if k in keywords]
        if given:
            reasons.append(
                f"{name}.__init__ takes no argument {', '.join(given)} (its arguments: {takes}); the keywords of "
                "load_from_checkpoint other than map_location and strict go to __init__"
            )
        if "hparams_file" in given and saved:
            reasons.append(
                "Lightning's hparams_file has no counterpart here: the checkpoint holds the hyperparameters "
                "(its trainer_state.json); give the ones to change as keywords "
                "(load_from_checkpoint(path, lr=...))"
            )
        elif "hparams_file" in given:  # (a module that never called save_hyperparameters: a ChordTask)
            first = next(iter(parameters), "lr")
            reasons.append(
                "Lightning's hparams_file has no counterpart here: this checkpoint holds no hyperparameters "
                f"({name}.__init__ does not call save_hyperparameters()); give __init__'s values as keywords "
                f"(load_from_checkpoint(path, {first}=...))"
            )
        if len(given) < len(unexpected):
            stale = ", ".join(k for k in unexpected if k not in keywords)
            reasons.append(
                f"the checkpoint's hyper_parameters hold {stale}, which {name}.__init__ no longer takes (its "
                f"arguments: {takes}): was __init__ changed since the checkpoint was saved?"
            )
    missing = [
        n
        for n, p in parameters.items()
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in hparams
    ]
    if missing:
        if saved:
            reasons.append(
                f"{', '.join(missing)} is not among the checkpoint's hyper_parameters ({', '.join(saved)}), "
                "e.g. left out with save_hyperparameters(ignore=...): pass it as a keyword"
            )
        else:
            reasons.append(
                f"the checkpoint holds no hyperparameters: pass {', '.join(missing)} as keywords, or call "
                f"self.save_hyperparameters() in {name}.__init__ so that checkpoints hold them"
            )
    return "; ".join(reasons) or f"{name}(**{sorted(hparams)}) does not fit {name}.__init__ ({err})"


def _cut(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 4] + " ..."


def read_named_weights(
    module: Any, model_file: Any, expected: dict, header: dict, strict: Any, where: str, what: str
) -> dict[str, mx.array]:
    """A checkpoint's weights under the module's own names (no `load_state_dict` override), checked against
    `expected`: with `strict` False only those whose names match (the module's own values stay for the
    rest, Lightning's); a mismatch a `state_dict()` override wrote says so."""
    from audiotrain.train import checkpoint as ckpt  # (imported where used, as load_from_checkpoint does)
    from audiotrain.train import hook_state

    if strict is False:
        header = _matching_weights(header, expected, where)
        expected = {k: v for k, v in expected.items() if k in header}
    with hook_state.naming_state_dict_override(module):
        return ckpt.read_checked(model_file, expected, what, header=header)


def _matching_weights(loaded: dict[str, Any], expected: dict[str, mx.array], where: str) -> dict[str, Any]:
    """`strict=False`: the entries of the checkpoint's (header) `loaded` that the model has; a warning names
    what was left out on either side."""
    missing = sorted(set(expected) - set(loaded))
    unexpected = sorted(set(loaded) - set(expected))
    resized = [
        f"{k}: checkpoint {tuple(loaded[k].shape)} vs model {tuple(v.shape)}"
        for k, v in sorted(expected.items())
        if k in loaded and tuple(loaded[k].shape) != tuple(v.shape)
    ]
    if resized:
        # As torch's load_state_dict(strict=False) (and so Lightning's) refuses a size mismatch; MLX's own
        # load_weights(strict=False) would take the wrong shape without a word, so the way is spelled out.
        from audiotrain.train import checkpoint as ckpt  # (imported where used, as load_from_checkpoint does)

        shown = "; ".join(resized[:3]) + ("; ..." if len(resized) > 3 else "")
        raise ckpt.CheckpointError(
            f"{where} with strict=False: {len(resized)} of the checkpoint's weights have another shape in "
            f"this model ({shown}); strict=False leaves out only the weights that one side lacks, as torch's "
            "load_state_dict does. To keep the others and start those layers afresh, load the checkpoint as "
            "it was trained (old), build the new model (new), and copy the weights whose shape matches: "
            "shapes = {k: v.shape for k, v in tree_flatten(new.parameters())}; "
            "new.load_weights([(k, v) for k, v in tree_flatten(old.parameters()) "
            "if v.shape == shapes.get(k)], strict=False)"
        )
    if missing or unexpected:

        def listed(names: list[str]) -> str:
            return ", ".join(names[:5]) + (f", ... ({len(names)} in all)" if len(names) > 5 else "")

        parts = [f"loaded {len(expected) - len(missing)} of the model's {len(expected)} weights"]
        if missing:
            parts.append(f"not in the checkpoint, kept as __init__ made them: {listed(missing)}")
        if unexpected:
            parts.append(f"in the checkpoint but not in the model, ignored: {listed(unexpected)}")
        warnings.warn(f"{where} with strict=False: {'; '.join(parts)}", stacklevel=3)
    return {k: v for k, v in loaded.items() if k in expected}


class _ConfigTypeError(TypeError, ValueError):
    """`save_hyperparameters(42)`: a value that is neither an argument name nor a dict/Namespace config.
    Also a ValueError, the type Lightning 2.6.6 raises there ("Primitives ... are not allowed"), so a ported
    `except ValueError` still catches it."""


class _UnknownHyperparameterError(ValueError, KeyError):
    """`save_hyperparameters("zzz")` naming no `__init__` argument. Also a KeyError, the type Lightning 2.6.6
    raises there (`KeyError: 'zzz'`), so a ported `except KeyError` still catches it."""

    __str__ = ValueError.__str__  # (KeyError's would show the message in quotes)


def chosen_hyperparameters(
    owner: str, init_arguments: dict[str, Any], names: tuple, ignored: set[str]
) -> dict[str, Any]:
    """`save_hyperparameters(*names, ignore=...)`'s choice among `init_arguments` (all where no names), each
    checked to be JSON-serialisable (a checkpoint holds them); `owner` names the class in errors."""
    wanted = list(names) or [n for n in init_arguments if n not in ignored]
    unknown = [n for n in wanted if n not in init_arguments]
    if unknown:
        raise _UnknownHyperparameterError(
            f"{owner}.save_hyperparameters: {', '.join(unknown)} is not an argument of {owner}.__init__ "
            f"or of a base class's __init__ it calls (arguments: {', '.join(init_arguments) or 'none'})"
        )
    from audiotrain.train.checkpoint import check_keeps  # (imported where used, as load_from_checkpoint does)

    hparams = {
        n: plain_omegaconf(init_arguments[n], f"{owner}.save_hyperparameters", n)
        for n in wanted
        if n not in ignored
    }
    for n, value in hparams.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise TypeError(
                f"{owner}.save_hyperparameters: {n}={type(value).__name__} is not JSON-serialisable, so no "
                f"checkpoint could hold it; pass ignore=[{n!r}] (and give it again where it is rebuilt)"
            ) from None
        # (a key that is not a string would reach __init__ from load_from_checkpoint as a string)
        check_keeps(value, f"{owner}.save_hyperparameters: ", n, tuples=True)
    return hparams


def hyperparameter_tuples(value: Any, here: tuple = ()) -> list[list]:
    """The paths (keys and indices) of the tuples among `value`, which a checkpoint (JSON) holds as lists:
    saved beside the hyperparameters so that `load_from_checkpoint` gives `__init__` the tuples it got
    (as Lightning's pickled hparams do), not lists."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return []
    found = [list(here)] if isinstance(value, tuple) else []
    for key, item in items:
        found += hyperparameter_tuples(item, (*here, key))
    return found


def with_hyperparameter_tuples(value: Any, paths: Any, here: tuple = ()) -> Any:
    """`value` read from a checkpoint with the lists at `paths` (`hyperparameter_tuples`) made tuples
    again."""
    wanted = paths if isinstance(paths, set) else {tuple(p) for p in paths or () if isinstance(p, list)}
    if isinstance(value, dict):
        return {k: with_hyperparameter_tuples(v, wanted, (*here, k)) for k, v in value.items()}
    if isinstance(value, list):
        items = [with_hyperparameter_tuples(v, wanted, (*here, i)) for i, v in enumerate(value)]
        return tuple(items) if here in wanted else items
    return value


def ignored_names(ignore: Any, owner: str) -> set[str]:
    """`save_hyperparameters(ignore=...)` as a set of names: one name, a list or tuple of them, or None
    (nothing, Lightning's default); anything else is named (it had been a bare "not iterable")."""
    if ignore is None:
        return set()
    names = [ignore] if isinstance(ignore, str) else ignore
    if not isinstance(names, (list, tuple, set, frozenset)) or not all(isinstance(n, str) for n in names):
        raise TypeError(
            f"{owner}.save_hyperparameters(ignore={ignore!r}): expected an argument name or a list of them "
            "(ignore=['net'])"
        )
    return set(names)


def register_buffer(module: nn.Module, name: str, value: Any, persistent: bool = True) -> None:
    """torch's ``module.register_buffer(name, value)`` for any MLX ``nn.Module`` (a plain submodule of a
    TrainModule, which has no such method): ``module.<name>`` holds `value` (an ``mx.array``; numpy, a list
    or a CPU torch tensor is converted) frozen, so that no optimizer trains it, and the TrainModule's
    `unfreeze()` leaves it frozen; checkpoints and `state_dict()` hold it. ``persistent=False`` is refused
    (the checkpoints hold every array of the module)."""
    if not persistent:
        raise ValueError(
            f"{type(module).__name__}.register_buffer({name!r}, ..., persistent=False): a buffer left out "
            "of the checkpoints is not supported here (they hold every array of the module); drop "
            "persistent=False, or hold the value as a Python number or a numpy array, which is no weight"
        )
    array = value if isinstance(value, mx.array) else mx.array(np.asarray(value))
    setattr(module, name, array)
    nn.Module.freeze(module, recurse=False, keys=[name])
    object.__setattr__(module, "_buffer_names", {*vars(module).get("_buffer_names", ()), name})


def _refuse_before_init(module: TrainModule, what: str, sets_up: str = "the hyperparameters") -> None:
    """`what` (the hyperparameters, the Trainer's `device`) used before `super().__init__()` made what it
    reads: MLX's nn.Module said only "no attribute '_hparams'" ('_trainer'). (Lightning's keeps them: a torch
    Module takes plain attributes before its __init__; an MLX Module is a dict that its __init__ sets up.)"""
    if "_hparams" not in vars(module):
        name = type(module).__name__
        raise AttributeError(
            f"{name}.{what} before super().__init__(): TrainModule (an mlx.nn.Module) sets up {sets_up} "
            f"there; call super().__init__() first thing in {name}.__init__"
        )


def _caller_frame(frame: Any, owner: str, caller: Any) -> Any:
    """`save_hyperparameters(frame=)`: the frame given (Lightning's), or the caller's."""
    if frame is None:
        return caller
    if not isinstance(frame, types.FrameType):
        raise TypeError(
            f"{owner}.save_hyperparameters(frame=...): expected a frame (inspect.currentframe()) or None, "
            f"got {type(frame).__name__}"
        )
    return frame


def _logger_flag(logger: Any, owner: str) -> bool:
    """`save_hyperparameters(logger=)`: whether the loggers get the hyperparameters (Lightning's)."""
    if not isinstance(logger, bool):
        raise TypeError(f"{owner}.save_hyperparameters(logger=...): expected True or False, got {logger!r}")
    return logger


def _init_arguments(module: TrainModule, frame: Any) -> dict[str, Any] | None:
    """The arguments of the `__init__` calls of `module` running from `frame` outwards (a base class's, then
    the subclass's that called it, ...), merged with the outer ones winning, as Lightning's
    `collect_init_args`; a `**kwargs` argument gives its entries. None when no `__init__` of `module` is
    running (the first frames may be helpers an `__init__` called)."""
    chain: list[dict[str, Any]] = []
    while frame is not None:
        code = frame.f_code
        arguments = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        of_module = code.co_name == "__init__" and arguments and frame.f_locals.get(arguments[0]) is module
        if of_module:
            local = frame.f_locals
            found = {n: local[n] for n in arguments[1:] if n in local}
            if code.co_flags & inspect.CO_VARKEYWORDS:
                keywords_name = code.co_varnames[len(arguments) + bool(code.co_flags & inspect.CO_VARARGS)]
                found.update(local.get(keywords_name) or {})
            chain.append(found)
        elif chain:
            break
        frame = frame.f_back
    if not chain:
        return None
    merged: dict[str, Any] = {}
    for found in chain:  # innermost (the base class's) first: the subclass's values replace its
        merged.update(found)
    return merged


class AttributeDict(dict):
    """Lightning's `hparams`: a dict whose keys also read and write as attributes (`hparams.lr`)."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            held = ", ".join(sorted(self)) or "nothing: call self.save_hyperparameters() in __init__"
            raise AttributeError(f"hparams has no {key!r} (it holds {held})") from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __delattr__(self, key: str) -> None:
        try:
            del self[key]
        except KeyError:
            raise AttributeError(key) from None


class ParameterTree(dict[str, Any]):
    """The nested parameter dict MLX returns, whose `.values()` yields every array (flattened).

    So the idiom `sum(p.size for p in model.parameters().values())` counts all parameters, as in
    PyTorch, while `items()`, indexing and MLX's tree utilities see the usual nested structure.
    """

    def values(self) -> list[mx.array]:  # type: ignore[override]
        return [leaf for _, leaf in tree_flatten(dict(self))]


def _leaves(tree: Any):
    if isinstance(tree, dict):
        for v in tree.values():
            yield from _leaves(v)
    elif isinstance(tree, (list, tuple)):
        for v in tree:
            yield from _leaves(v)
    else:
        yield tree
