"""`LearningRateMonitor`: log the optimizer's learning rate (and momentum, weight decay)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from audiotrain.train.callback import Callback
from audiotrain.train.callbacks._logger_required import refuse_a_fit_without_logger
from audiotrain.train.callbacks.lr_plateau import ReduceLROnPlateau
from audiotrain.train.callbacks.swa import StochasticWeightAveraging
from audiotrain.train.module import coming_rate, has_learning_rate, rate_as_given
from audiotrain.train.schedulers import IntervalSchedule

import mlx.core as mx
import mlx.optimizers as optim

if TYPE_CHECKING:
    from audiotrain.train.trainer import Trainer


class LearningRateMonitor(Callback):
    """Log the optimizer's learning rate as `lr-<Optimizer>`, or under the "name" of the lr_scheduler dict
    `configure_optimizers` returned (as in Lightning).

    `logging_interval`: "step" logs at every logging interval the rate the last update used; "epoch" logs
    at each epoch's start the rate its first update will use; None (Lightning's default) logs each
    optimizer at its lr_scheduler's interval, as Lightning's: one whose lr_scheduler has
    ``"interval": "epoch"`` (a `ReduceLROnPlateau` given there too) at epoch starts, one with a per-step
    schedule at steps, and one without lr_scheduler at both (Lightning logs it at either interval). Once
    `StochasticWeightAveraging` has started it sets the rate once an epoch (Lightning's SWALR): logged at
    epoch starts, its annealed rate of that epoch. A group that a fine-tuning callback adds is logged at
    the interval of the optimizer configured.
    `log_momentum` adds
    `<name>-momentum` (Adam's first beta, SGD's momentum, 0 for an optimizer without) and
    `log_weight_decay` adds `<name>-weight_decay`, as Lightning's. The optimizers of a `MultiOptimizer`
    are its parameter groups: `<name>/pg1`, `<name>/pg2`, ... (Lightning's names for parameter groups),
    each `<name>` that group's optimizer's (`lr-AdamW/pg1`, `lr-SGD/pg2`),
    with `<name>/pg1-momentum` and `<name>/pg1-weight_decay` (Lightning's too).
    A group that a fine-tuning callback adds (`BackboneFinetuning`) keeps the name of the optimizer
    configured: `lr-Adam` becomes `lr-Adam/pg1` and `lr-Adam/pg2` from the epoch the group is added on
    (Lightning's series gain `/pgN` alike).

    With a monitor attached the Trainer leaves out its own `learning_rate` series, so that loggers hold
    the learning rate once, under this name (as in Lightning, where only the monitor logs it). The
    history's `learning_rate` column stays. A fit with `Trainer(logger=False)` is refused before any
    batch, as Lightning's monitor refuses it (there a MisconfigurationException at train start; here a
    ValueError); the default Trainer, without a logger here, is not (Lightning's default logs).

    As Lightning's, it keeps what it logged: `lrs` maps each name to the list of rates logged under it,
    `last_momentum_values` and `last_weight_decay_values` each `<name>-momentum` / `<name>-weight_decay`
    to its last value (None until logged, and without `log_momentum` / `log_weight_decay`); each fit
    starts them afresh.
    """

    logs_learning_rate = True  # the Trainer's cue to leave out its own `learning_rate` series

    def __init__(
        self, logging_interval: str | None = None, log_momentum: bool = False, log_weight_decay: bool = False
    ):
        if logging_interval not in (None, "step", "epoch"):
            raise ValueError(
                "LearningRateMonitor: logging_interval must be 'step', 'epoch' or None (Lightning's "
                f"default: each optimizer at its lr_scheduler's interval), got {logging_interval!r}"
            )
        self.logging_interval = logging_interval
        self.log_momentum, self.log_weight_decay = bool(log_momentum), bool(log_weight_decay)
        self.lrs: dict[str, list[float]] = {}
        self.last_momentum_values: dict[str, float | None] = {}
        self.last_weight_decay_values: dict[str, float | None] = {}

    def _keep(self, group_name: str, values: dict) -> None:
        # Lightning's record of what was logged (`lrs`, `last_*_values`), its keys made on a name's first
        # logging: a group a fine-tuning callback adds gets its own from then on.
        base = group_name.removesuffix("/pg1")
        if base != group_name and base in self.lrs and group_name not in self.lrs:
            # A group added: Lightning's series of the one optimizer goes on as its first group's.
            self.lrs[group_name] = self.lrs.pop(base)
        if group_name in values:
            self.lrs.setdefault(group_name, []).append(values[group_name])
        for suffix, last in (
            ("-momentum", self.last_momentum_values),
            ("-weight_decay", self.last_weight_decay_values),
        ):
            last[group_name + suffix] = values.get(group_name + suffix, last.get(group_name + suffix))

    def _log(self, trainer: Trainer, upcoming: bool, interval: str | None = None) -> None:
        optimizer, config = trainer.optimizer, trainer.optimizer_config
        # (A fine-tuning callback's groups keep the name of the optimizer configured: its `log_name`.)
        kind = getattr(optimizer, "log_name", None)
        name = config.lr_log_name if config else None
        groups = optimizer.optimizers if isinstance(optimizer, optim.MultiOptimizer) else [optimizer]
        values = {}
        for i, group in enumerate(groups):
            if interval is not None and _scheduler_interval(trainer, group, groups) not in (interval, "any"):
                continue  # (logging_interval=None: this group is logged at its lr_scheduler's interval)
            # Lightning's `_add_suffix`: "/pgN" with several groups (MLX's groups have no "name" to use
            # instead); the momentum and weight decay follow it: lr-Adam/pg1-momentum, as Lightning's.
            # Each group is named by its own optimizer's class, as Lightning names a torch optimizer's
            # groups by that optimizer's (lr-AdamW/pg1), not by the MultiOptimizer that holds them.
            # (A manual module's several optimizers are Lightning's several: lr-Adam, lr-SGD.)
            if trainer._manual and len(groups) > 1:
                group_name = _optimizer_series(groups, i)
            else:
                group_name = (name or f"lr-{kind or type(group).__name__}") + (
                    f"/pg{i + 1}" if len(groups) > 1 else ""
                )
            if has_learning_rate(group):  # (not Adafactor's relative step: each parameter has its own)
                values[group_name] = _learning_rate(group, upcoming)
                annealed = _swa_rate(trainer, i) if upcoming else None
                if annealed is not None:
                    values[group_name] = rate_as_given(annealed)
            if self.log_momentum:
                betas = getattr(group, "betas", None)
                values[f"{group_name}-momentum"] = float(
                    betas[0] if betas else getattr(group, "momentum", 0.0)
                )
            if self.log_weight_decay:
                values[f"{group_name}-weight_decay"] = float(getattr(group, "weight_decay", 0.0))
            self._keep(group_name, values)
        if not values:
            return
        trainer.log_metrics(values, step=trainer._logging_step())
        trainer.callback_metrics.update(values)  # (as Lightning's: EarlyStopping can monitor "lr-Adam")

    def on_train_start(self, trainer, module) -> None:
        self.lrs, self.last_momentum_values, self.last_weight_decay_values = {}, {}, {}  # (each fit anew)
        optimizer = trainer.optimizer
        groups = optimizer.optimizers if isinstance(optimizer, optim.MultiOptimizer) else [optimizer]
        no_momentum = [
            g for g in groups if g is not None and not hasattr(g, "betas") and not hasattr(g, "momentum")
        ]
        if self.log_momentum and no_momentum and trainer.is_global_zero:
            # Lightning's warning and words: the 0 logged for such an optimizer is not a momentum it has.
            # (Rank 0 alone, as Lightning's rank_zero_warn: once, not once per rank.)
            warnings.warn(
                "You have set log_momentum=True, but some optimizers do not have momentum. This will log a "
                "value 0 for the momentum.",
                RuntimeWarning,
                stacklevel=2,
            )

    def setup(self, trainer, module, stage: str) -> None:
        # Only Trainer(logger=False): the default Trainer has no logger here (Lightning's logs), and the
        # rates still reach `callback_metrics` for EarlyStopping or ModelCheckpoint to watch.
        if trainer._logger_turned_off:
            refuse_a_fit_without_logger(trainer, stage, "LearningRateMonitor", "the learning rate")

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self.logging_interval != "epoch" and (outputs or {}).get("stepped") and trainer.is_logging_step():
            self._log(trainer, upcoming=False, interval="step" if self.logging_interval is None else None)

    def on_train_epoch_start(self, trainer, module) -> None:
        if self.logging_interval != "step":
            self._log(trainer, upcoming=True, interval="epoch" if self.logging_interval is None else None)


def _swa_rate(trainer: Trainer, index: int) -> float | None:
    """The rate a `StochasticWeightAveraging` sets for group `index` in the epoch starting now, where it has
    started: its own `on_train_epoch_start` sets it, which may come after this monitor's."""
    for callback in trainer.callbacks:
        if isinstance(callback, StochasticWeightAveraging):
            return callback._epoch_rate(trainer.current_epoch, index)
    return None


def _scheduler_interval(trainer: Trainer, group: optim.Optimizer, groups: list[optim.Optimizer]) -> str:
    """Lightning's interval of the lr_scheduler of `group`: "epoch" for one configured so (a schedule, or a
    ReduceLROnPlateau given as the lr_scheduler), "step" for a per-step schedule, "any" for none (Lightning
    logs an optimizer without lr_scheduler at either interval). A group without a schedule of its own
    beside groups with one (a group a fine-tuning callback added) is a parameter group of an optimizer
    with an lr_scheduler in Lightning, logged at its interval: that of the first group's schedule. Once
    `StochasticWeightAveraging` has started, "epoch": it sets the rate once an epoch, as the SWALR that
    Lightning swaps in for the lr_scheduler (interval "epoch")."""
    callbacks = trainer.callbacks
    if any(isinstance(c, StochasticWeightAveraging) and c._initial_lrs is not None for c in callbacks):
        return "epoch"
    schedules = [getattr(g, "_schedulers", {}).get("learning_rate") for g in [group, *groups]]
    schedule = next((s for s in schedules if s is not None), None)
    if isinstance(schedule, IntervalSchedule):
        return schedule.interval
    plateaus = [c for c in callbacks if isinstance(c, ReduceLROnPlateau)]
    if plateaus:
        return "epoch" if any(c._every_n_epochs is not None for c in plateaus) else "step"
    return "step" if schedule is not None else "any"


def _learning_rate(optimizer: optim.Optimizer, upcoming: bool) -> float:
    """The rate the optimizer's last update used, or (`upcoming`) the rate its next update will use: MLX
    evaluates a schedule at the step counter before incrementing it, so until the next update the state
    holds the last one's."""
    rate = coming_rate(optimizer) if upcoming else optimizer.learning_rate
    # As the user gave it (0.1, not float32's 0.10000000149011612), as Lightning logs torch's group "lr".
    return rate_as_given(float(rate.item() if isinstance(rate, mx.array) else rate))


def _optimizer_series(optimizers: list, index: int) -> str:
    """Lightning's name for the rate of each of several optimizers (a manual module's): `lr-<class>`, and
    `lr-<class>-1`, `-2` for the later ones of a class already named."""
    kind = type(optimizers[index]).__name__
    earlier = sum(type(o).__name__ == kind for o in optimizers[:index])
    return f"lr-{kind}" + (f"-{earlier}" if earlier else "")
