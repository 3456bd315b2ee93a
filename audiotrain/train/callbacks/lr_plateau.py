"""`ReduceLROnPlateau`: lower the optimizer's learning rate when the monitored metric stops improving."""

from __future__ import annotations

import math
import warnings
import weakref
from typing import TYPE_CHECKING, Any

from audiotrain._arguments import changed_arguments, settings_repr
from audiotrain.train.callback import Callback
from audiotrain.train.callbacks._monitor import (
    _check_mode,
    _check_state,
    _checks_at_epoch_end,
    _fit_of_another_trainer,
    _metric,
    _warn_validation_metric_without_validation,
)

import mlx.optimizers as optim

if TYPE_CHECKING:
    from audiotrain.train.trainer import Trainer


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by `factor` when `monitor` has not improved for `patience` checks, as
    torch's `ReduceLROnPlateau` (same arguments, same arithmetic) stepped by Lightning with
    ``{"scheduler": ..., "monitor": ...}``.

    A check runs where EarlyStopping's does: at the end of every training epoch, after its validation, or
    after each validation when `fit` validates other than once per epoch (`val_check_interval`,
    `check_val_every_n_epoch` > 1); a training metric (``train_loss``) at epoch ends all the same, where its
    epoch mean is (a validation inside an epoch sees none). It sets the optimizer's rate on the host, between steps: the compiled
    update reads it from the optimizer's state, so the next update uses the new rate. An improvement is a
    value below ``best * (1 - threshold)`` ("min", `threshold_mode="rel"`) or ``best - threshold`` ("abs"),
    above ``best * (1 + threshold)`` / ``best + threshold`` for "max"; a NaN never is. After a reduction
    `cooldown` checks pass before bad ones count again. The rate never goes below `min_lr` (one number, or
    one per parameter group of a `MultiOptimizer`), and a change smaller than `eps` is skipped.

    The rate is in the optimizer's state, and the best value and counters are this callback's
    `state_dict()`, so both are in each checkpoint: a resumed fit reduces where the uninterrupted one would.
    The optimizer's learning rate must be a number: a schedule (a function of the step) sets it again at
    every update, and `fit` refuses the pair.
    Returned by `configure_optimizers` as Lightning returns torch's (``{"optimizer": opt, "lr_scheduler":
    {"scheduler": ReduceLROnPlateau(mode="min"), "monitor": "val_loss", "frequency": n}}``), it joins
    that fit's callbacks and checks at every n-th training epoch's end only, as Lightning steps it.
    `mode` is "min" (a lower `monitor` is better) or "max". With `verbose=True` each reduction prints a line
    naming the metric, its best value and the old and new rate.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | list[float] = 0.0,
        eps: float = 1e-8,
        verbose: bool = False,
    ):
        self._settings = changed_arguments(ReduceLROnPlateau.__init__, locals())  # (for repr)
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(
                f"ReduceLROnPlateau: monitor must be the name of a logged metric, e.g. 'val_loss', got {monitor!r}"
            )
        _check_mode(mode, "ReduceLROnPlateau")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(
                f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}"
            )
        _check_number("factor", factor, "a number in (0, 1)", lambda v: 0 < v < 1)
        _check_number("threshold", threshold, "a number >= 0", lambda v: v >= 0)
        _check_number("eps", eps, "a number >= 0", lambda v: v >= 0)
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"ReduceLROnPlateau: {name} must be an int >= 0, got {value!r}")
        min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr]
        for value in min_lrs:
            _check_number(
                "min_lr", value, "a number >= 0, or a list of them (one per group)", lambda v: v >= 0
            )
        self.monitor, self.mode, self.factor, self.patience = monitor, mode, float(factor), patience
        self.threshold, self.threshold_mode, self.cooldown = float(threshold), threshold_mode, cooldown
        self.min_lrs, self.eps, self.verbose = [float(v) for v in min_lrs], float(eps), bool(verbose)
        self.best: float | None = None  # None: nothing yet (torch's +-inf)
        self.num_bad_epochs = 0  # torch's name: checks without an improvement (validations, or epochs)
        self.cooldown_counter = 0
        self._fitted_in: weakref.ref | None = None  # the Trainer whose fit the state above belongs to
        # Given as Lightning's lr_scheduler dict (configure_optimizers): checked at every n-th training
        # epoch's end only, as Lightning steps it, and with strict=False a missing metric skips the check.
        self._every_n_epochs: int | None = None
        self._strict = True

    @property
    def state_key(self) -> str:
        return f"ReduceLROnPlateau[{self.monitor},{self.mode}]"

    def __repr__(self) -> str:
        progress = {} if self.best is None else {"best": self.best, "num_bad_epochs": self.num_bad_epochs}
        return settings_repr(
            "ReduceLROnPlateau", {"monitor": self.monitor, "mode": self.mode, **self._settings, **progress}
        )

    def setup(self, trainer, module, stage) -> None:
        if stage == "fit" and _fit_of_another_trainer(self, trainer):
            self.best, self.num_bad_epochs, self.cooldown_counter = None, 0, 0

    def on_fit_start(self, trainer, module) -> None:
        _warn_validation_metric_without_validation(trainer, self.monitor, "ReduceLROnPlateau")
        groups = _groups(trainer.optimizer)
        scheduled = [i for i, g in enumerate(groups) if "learning_rate" in getattr(g, "_schedulers", {})]
        if scheduled:
            raise ValueError(
                "ReduceLROnPlateau: the optimizer's learning rate is a schedule (a function of the step), "
                "which sets the rate again at every update and would undo each reduction; give the "
                "optimizer a number (optim.AdamW(learning_rate=1e-3)) and let ReduceLROnPlateau lower it"
            )
        if len(self.min_lrs) not in (1, len(groups)):
            raise ValueError(
                f"ReduceLROnPlateau: min_lr has {len(self.min_lrs)} values, the optimizer "
                f"{len(groups)} parameter groups: give one number, or one per group"
            )

    def on_train_epoch_end(self, trainer, module) -> None:
        if trainer.fast_dev_run:
            return
        if self._every_n_epochs is not None:
            # As Lightning's, only at the end of an epoch whose batches all ran: not one that max_steps
            # (or a stop inside it) cut short, which a resumed fit ends later.
            if not trainer.progress.epoch_complete:
                return
            if (trainer.current_epoch + 1) % self._every_n_epochs == 0:
                if self._strict or self.monitor in trainer.callback_metrics:
                    self._check(trainer)
                else:
                    warnings.warn(
                        f"ReduceLROnPlateau conditioned on metric {self.monitor!r}, which is not available: "
                        "skipping this check (its lr_scheduler has 'strict': False)",
                        RuntimeWarning,
                        stacklevel=2,
                    )
        elif _checks_at_epoch_end(trainer, self.monitor, None):
            self._check(trainer)

    def on_validation_end(self, trainer, module) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run or not trainer.fitting:
            return
        if self._every_n_epochs is not None:  # (Lightning's lr_scheduler dict: at epoch ends only)
            return
        if not _checks_at_epoch_end(trainer, self.monitor, None):
            self._check(trainer)

    def _is_better(self, value: float) -> bool:
        if self.best is None:
            return not math.isnan(value)
        relative = self.threshold_mode == "rel"
        if self.mode == "min":
            return value < (self.best * (1 - self.threshold) if relative else self.best - self.threshold)
        return value > (self.best * (1 + self.threshold) if relative else self.best + self.threshold)

    def _check(self, trainer: Trainer) -> None:
        # torch's `ReduceLROnPlateau.step`, in its order.
        value = _metric(trainer, self.monitor, "ReduceLROnPlateau")
        if self._is_better(value):
            self.best, self.num_bad_epochs = value, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce(trainer)
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0

    def _reduce(self, trainer: Trainer) -> None:
        groups = _groups(trainer.optimizer)
        min_lrs = self.min_lrs * len(groups) if len(self.min_lrs) == 1 else self.min_lrs
        for i, (group, min_lr) in enumerate(zip(groups, min_lrs, strict=True)):
            old = float(group.learning_rate.item())
            new = max(old * self.factor, min_lr)
            if old - new > self.eps:
                group.learning_rate = new  # the optimizer's state: the next compiled update reads it
                if self.verbose:
                    which = f" of group {i}" if len(groups) > 1 else ""
                    trainer._note(
                        f"ReduceLROnPlateau: {self.monitor} did not improve for {self.num_bad_epochs} checks "
                        f"(best {self.best}); learning rate{which} {old:.4g} -> {new:.4g}"
                    )

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "num_bad_epochs": self.num_bad_epochs,
            "cooldown_counter": self.cooldown_counter,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check_state(
            "ReduceLROnPlateau", state, best="score", num_bad_epochs="count", cooldown_counter="count"
        )
        self.best = state.get("best")
        self.num_bad_epochs = state.get("num_bad_epochs", 0)
        self.cooldown_counter = state.get("cooldown_counter", 0)


def _groups(optimizer: optim.Optimizer) -> list[optim.Optimizer]:
    """The optimizers whose rates it lowers: a `MultiOptimizer`'s, one per parameter group, as torch
    lowers each param group's."""
    return list(optimizer.optimizers) if isinstance(optimizer, optim.MultiOptimizer) else [optimizer]


def _check_number(name: str, value: Any, expected: str, accepts) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not accepts(value):
        raise ValueError(f"ReduceLROnPlateau: {name} must be {expected}, got {value!r}")
