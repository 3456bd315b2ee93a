"""`EarlyStopping`: stop `fit` when the monitored metric stops improving."""

from __future__ import annotations

import math
import warnings
import weakref
from enum import Enum
from typing import TYPE_CHECKING, Any

from audiotrain._arguments import changed_arguments, settings_repr
from audiotrain._text import plural
from audiotrain.train import flags
from audiotrain.train.callback import Callback
from audiotrain.train.callbacks._monitor import (
    _arguments,
    _check_mode,
    _check_state,
    _checks_at_epoch_end,
    _fit_of_another_trainer,
    _is_better,
    _is_score,
    _metric,
    _plain,
    _score,
    _warn_validation_metric_without_validation,
    _whole_number,
)
from audiotrain.train.metric_values import MetricValue

if TYPE_CHECKING:
    from audiotrain.train.trainer import Trainer


class EarlyStoppingReason(Enum):
    """Why an `EarlyStopping` stopped the fit (`es.stopping_reason`), Lightning's enum (2.6) and values."""

    NOT_STOPPED = 0
    STOPPING_THRESHOLD = 1
    DIVERGENCE_THRESHOLD = 2
    PATIENCE_EXHAUSTED = 3
    NON_FINITE_METRIC = 4


class EarlyStopping(Callback):
    """Stop `fit` when `monitor` has not improved by more than `min_delta` for `patience` checks.

    The check runs at the end of every training epoch (after that epoch's validation). When `fit`
    validates other than once at every epoch end (`val_check_interval` below 1.0 or an int number of
    batches, or `check_val_every_n_epoch` above 1) it runs after each validation instead, as Lightning
    does, so `patience` counts validations: it never counts one validation twice nor looks for a
    validation metric before the first validation. A training metric (``train_loss``, what
    `training_step` logs) is still checked at epoch ends when `fit` validates inside epochs: a validation
    there sees no epoch mean of it. `check_on_train_epoch_end=True` or `False` forces either.

    `min_delta` is used as given, as in Lightning: a value counts as an improvement when it beats the best
    by more than `min_delta` in the direction of `mode` (below `best - min_delta` for "min", above
    `best + min_delta` for "max"). A negative `min_delta` therefore loosens the test: a value up to
    `|min_delta|` worse than the best still counts as an improvement and becomes the new best. Pass a
    positive value to require a minimum improvement whatever the mode (a warning says so when it is
    negative). A NaN is never an improvement (with `check_finite=False`; by default it stops the fit).

    Lightning's other arguments: `strict=False` skips a check where `monitor` was not logged, with one
    warning (True: an error naming the cause); `stopping_threshold` stops as soon as the value is better
    than it, `divergence_threshold` as soon as it is worse. `verbose=True` prints each improvement and
    the reason of a stop, as Lightning's; `stop_reason` holds that reason after a stop, `stopped_epoch`
    its epoch (0 until a stop, as in Lightning), and Lightning's `stopping_reason` (an
    `EarlyStoppingReason`, NOT_STOPPED until a stop) and `stopping_reason_message` (Lightning's words, None
    until a stop) say it as Lightning's do; the two are in its checkpointed state, as Lightning's.

    The arguments come in Lightning's order, `EarlyStopping(monitor, min_delta, patience, verbose, mode,
    strict, check_finite, stopping_threshold, divergence_threshold, check_on_train_epoch_end,
    log_rank_zero_only)`, so Lightning's positional spelling means what it means there:
    `EarlyStopping("val_loss", 0.001, 5)` is min_delta=0.001, patience=5. A `patience` that is not an int
    is refused.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 3,
        verbose: bool = False,
        mode: str = "min",
        strict: bool = True,
        check_finite: bool = True,
        stopping_threshold: float | None = None,
        divergence_threshold: float | None = None,
        check_on_train_epoch_end: bool | None = None,
        log_rank_zero_only: bool | None = None,
        **lightning_args: Any,
    ):
        self._settings = changed_arguments(EarlyStopping.__init__, locals())  # (for repr)
        if log_rank_zero_only is not None:  # (a parameter only to keep Lightning's positional order)
            lightning_args = {"log_rank_zero_only": log_rank_zero_only, **lightning_args}
        flags.lightning_only(
            lightning_args,
            _arguments(EarlyStopping),
            "EarlyStopping",
            _EARLY_STOPPING_LIGHTNING_ONLY,
            "argument",
        )
        if not isinstance(monitor, str) or not monitor:
            # (ModelCheckpoint's monitor=None means "no metric"; EarlyStopping has nothing to go by then.)
            raise TypeError(
                "EarlyStopping: monitor must be the name of a logged metric, e.g. 'val_loss', "
                f"got {monitor!r}"
            )
        _check_mode(mode, "EarlyStopping")
        if not isinstance(verbose, (bool, int)):  # (an int: as Python's truth; a mode in the 4th place: not)
            raise TypeError(
                f"EarlyStopping: verbose must be True or False, got {verbose!r}; the positional order is "
                "Lightning's, EarlyStopping(monitor, min_delta, patience, verbose, mode, ...)"
            )
        if min_delta is None or not _is_score(min_delta):
            raise TypeError(f"EarlyStopping: min_delta must be a number, got {min_delta!r}")
        if _whole_number(patience) is None:
            raise TypeError(
                f"EarlyStopping: patience must be an int (a number of checks), got {patience!r}; the "
                "positional order is Lightning's, EarlyStopping(monitor, min_delta, patience, ...): pass "
                "patience=... by name"
            )
        patience = _whole_number(patience)
        if patience < 0:
            raise ValueError(f"EarlyStopping: patience must be >= 0, got {patience}")
        for name, value in (
            ("stopping_threshold", stopping_threshold),
            ("divergence_threshold", divergence_threshold),
        ):
            if value is not None and not (_is_score(value) and math.isfinite(value)):
                raise ValueError(f"EarlyStopping: {name} must be a finite number or None, got {value!r}")
        if min_delta < 0:
            better = "below best + " if mode == "min" else "above best - "
            warnings.warn(
                f"EarlyStopping(min_delta={min_delta}): a negative min_delta counts values up to "
                f"{-min_delta} worse than the best as improvements (any value {better}{-min_delta}), as in "
                f"Lightning; pass min_delta={-min_delta} to require an improvement of at least {-min_delta}",
                stacklevel=2,
            )
        self.monitor, self.patience, self.min_delta, self.mode = monitor, patience, float(min_delta), mode
        self.verbose, self.check_finite, self.strict = verbose, check_finite, bool(strict)
        self.stopping_threshold, self.divergence_threshold = stopping_threshold, divergence_threshold
        self.check_on_train_epoch_end = check_on_train_epoch_end
        self.wait_count = 0
        self._best_score: MetricValue | None = None  # None: nothing yet (Lightning's +-inf)
        self.stopped_epoch = 0  # Lightning's: the epoch of the stop, 0 until one (`if es.stopped_epoch > 0:`)
        self.stop_reason = ""
        self._stopping_reason_none()
        self._resumed_a_stop = False  # a resumed checkpoint's patience had run out: its stop ends the fit
        self._saved_run_had_stopped = False  # ... and the run that saved it had stopped there too
        self._warned_missing = False
        self._fitted_in: weakref.ref | None = None  # the Trainer whose fit the state above belongs to

    @property
    def best_score(self) -> MetricValue | None:
        """The best value of `monitor` so far (None before the first check): a float that answers `.item()`,
        as Lightning's tensor."""
        return self._best_score

    @best_score.setter
    def best_score(self, value: float | None) -> None:
        self._best_score = _score(value)

    @property
    def state_key(self) -> str:
        return f"EarlyStopping[{self.monitor},{self.mode}]"

    def __repr__(self) -> str:
        """What it watches and the other settings given, and once it checked, its best and patience used:
        ``EarlyStopping(monitor='val_acc', mode='max', patience=5, best_score=0.91, wait_count=2)``."""
        progress = {}
        if self.best_score is not None:
            progress = {"best_score": self.best_score, "wait_count": self.wait_count}
        if self.stopped_epoch or self.stop_reason:  # (a stop in epoch 0 has a reason)
            progress["stopped_epoch"] = self.stopped_epoch
        return settings_repr(
            "EarlyStopping", {"monitor": self.monitor, "mode": self.mode, **self._settings, **progress}
        )

    def setup(self, trainer, module, stage) -> None:
        self._warned_missing = False
        self._resumed_a_stop = False  # (set by load_state_dict, which comes after setup in a resumed fit)
        if stage == "fit" and _fit_of_another_trainer(self, trainer):
            # Another Trainer's run: its best score and patience must not stop this one at its first check.
            self.wait_count, self.best_score, self.stopped_epoch, self.stop_reason = 0, None, 0, ""
            self._stopping_reason_none()

    def on_fit_start(self, trainer, module) -> None:
        if self._resumed_a_stop:
            # The checkpoint was saved after this callback's patience ran out (the fit it ended, or a fit
            # whose max_epochs came at that very check): the uninterrupted run stops there, so a resumed one
            # trains nothing, as one past max_epochs or a Timer's duration (Lightning trains one more epoch:
            # #8278).
            self._resumed_a_stop = False
            trainer.should_stop = True
            if self._saved_run_had_stopped:
                said = (
                    "EarlyStopping: the checkpoint resumed was saved after this run stopped early "
                    f"({self.monitor} did not improve by more than {self.min_delta} for {self.wait_count} "
                    f"checks, patience {self.patience}); raise patience (or lower min_delta) to train further"
                )
            else:  # (the saved run went on: only the patience given now has run out, a stop of this fit)
                self.stopped_epoch = trainer.current_epoch
                self._set_stopping_reason(EarlyStoppingReason.PATIENCE_EXHAUSTED)
                self.stop_reason = (
                    f"{self.monitor} did not improve by more than {self.min_delta} for "
                    f"{plural(self.wait_count, 'check')} counted before the checkpoint resumed "
                    f"(best {self._best()})"
                )
                said = (
                    f"EarlyStopping(patience={self.patience}): the checkpoint resumed had counted "
                    f"{self.wait_count} checks without an improvement of {self.monitor} by more than "
                    f"{self.min_delta}, so this patience has run out and the fit stops at once, as an "
                    f"uninterrupted run with patience={self.patience} would have; raise patience to train "
                    "further"
                )
            warnings.warn(said, UserWarning, stacklevel=2)
        # strict=False skips checks while the metric is missing; check_on_train_epoch_end=False checks only
        # after validations, so a fit without any checks nothing (the seed guide's train_epoch), as in Lightning.
        if self.strict and self.check_on_train_epoch_end is not False:
            _warn_validation_metric_without_validation(trainer, self.monitor, "EarlyStopping")

    def _checks_at_epoch_end(self, trainer: Trainer) -> bool:
        return _checks_at_epoch_end(trainer, self.monitor, self.check_on_train_epoch_end)

    def on_train_epoch_end(self, trainer, module) -> None:
        if not trainer.fast_dev_run and self._checks_at_epoch_end(trainer):
            self._check(trainer, "epoch")

    def on_validation_end(self, trainer, module) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run or not trainer.fitting:
            return
        if not self._checks_at_epoch_end(trainer):
            self._check(trainer, "validation")

    def _check(self, trainer: Trainer, unit: str) -> None:
        if not self.strict and self.monitor not in trainer.callback_metrics:
            if not self._warned_missing:
                self._warned_missing = True
                warnings.warn(
                    f"EarlyStopping(monitor={self.monitor!r}, strict=False): {self.monitor!r} was not logged "
                    f"(available: {', '.join(sorted(trainer.callback_metrics)) or 'none yet'}); checks are "
                    "skipped while it is missing",
                    stacklevel=2,
                )
            return
        forced = "check_on_train_epoch_end=True" if self.check_on_train_epoch_end else ""
        value = _metric(trainer, self.monitor, "EarlyStopping", forced, "check_on_train_epoch_end")
        better, worse = ("<", ">") if self.mode == "min" else (">", "<")
        stop, diverge = self.stopping_threshold, self.divergence_threshold
        # In Lightning's order: a stop for a non-finite value or a threshold before any improvement.
        if self.check_finite and not math.isfinite(value):
            self._stop(
                trainer,
                f"{self.monitor} = {value} is not finite",
                EarlyStoppingReason.NON_FINITE_METRIC,
                value,
            )
        elif stop is not None and _is_better(value, stop, self.mode):
            self._stop(
                trainer,
                f"stopping threshold reached: {self.monitor} = {value:.6g} {better} {stop}",
                EarlyStoppingReason.STOPPING_THRESHOLD,
                value,
            )
        elif diverge is not None and _is_better(diverge, value, self.mode):
            self._stop(
                trainer,
                f"divergence threshold reached: {self.monitor} = {value:.6g} {worse} {diverge}",
                EarlyStoppingReason.DIVERGENCE_THRESHOLD,
                value,
            )
        elif _is_better(value, self.best_score, self.mode, self.min_delta):
            if self.verbose:  # (Lightning's words)
                trainer._note(
                    f"Metric {self.monitor} improved. New best score: {value:.3f}"
                    if self.best_score is None
                    else f"Metric {self.monitor} improved by {abs(self.best_score - value):.3f} >= "
                    f"min_delta = {abs(self.min_delta)}. New best score: {value:.3f}"
                )
            self.best_score, self.wait_count = value, 0
        else:
            self.wait_count += 1
            if self.wait_count >= self.patience:
                self._stop(
                    trainer,
                    f"{self.monitor} did not improve by more than {self.min_delta} for "
                    f"{plural(self.wait_count, unit)} (best {self._best()})",
                    EarlyStoppingReason.PATIENCE_EXHAUSTED,
                )

    def _best(self) -> str:
        return "none yet" if self.best_score is None else f"{self.best_score:.6g}"

    def _stop(self, trainer: Trainer, reason: str, why: EarlyStoppingReason, value: float = math.nan) -> None:
        trainer.should_stop = True
        self.stopped_epoch = trainer.current_epoch
        self.stop_reason = reason
        self._set_stopping_reason(why, value)
        if self.verbose:
            trainer._note(f"EarlyStopping at epoch {trainer.current_epoch}: {reason}")

    def _stopping_reason_none(self) -> None:
        self.stopping_reason = EarlyStoppingReason.NOT_STOPPED
        self.stopping_reason_message: str | None = None

    def _set_stopping_reason(self, why: EarlyStoppingReason, value: float = math.nan) -> None:
        """Lightning's `stopping_reason` and its message, in Lightning's words (its best starts at +-inf)."""
        best = (
            self.best_score
            if self.best_score is not None
            else (math.inf if self.mode == "min" else -math.inf)
        )
        better, worse = ("<", ">") if self.mode == "min" else (">", "<")
        name, end = self.monitor, "Signaling Trainer to stop."
        self.stopping_reason = why
        if why is EarlyStoppingReason.NON_FINITE_METRIC:
            said = f"Monitored metric {name} = {value} is not finite. Previous best value was {best:.3f}."
        elif why is EarlyStoppingReason.STOPPING_THRESHOLD:
            said = f"Stopping threshold reached: {name} = {value} {better} {self.stopping_threshold}."
        elif why is EarlyStoppingReason.DIVERGENCE_THRESHOLD:
            # (Lightning writes the mode's "<" here too, though the value is past the threshold the other way)
            said = f"Divergence threshold reached: {name} = {value} {worse} {self.divergence_threshold}."
        else:
            said = f"Monitored metric {name} did not improve in the last {self.wait_count} records."
            said += f" Best score: {best:.3f}."
        self.stopping_reason_message = f"{said} {end}"

    def state_dict(self) -> dict[str, Any]:
        state = {
            "wait_count": self.wait_count,
            "best_score": _plain(self.best_score),
            "stopped_epoch": self.stopped_epoch,
        }
        if self.stopping_reason is not EarlyStoppingReason.NOT_STOPPED:  # (as Lightning's state holds them)
            state["stopping_reason"] = self.stopping_reason.value
            state["stopping_reason_message"] = self.stopping_reason_message
        if self._patience_ran_out():
            state["min_delta"] = self.min_delta  # what that stop measured by: a lower one may train on
        return state

    def _patience_ran_out(self) -> bool:
        return self.wait_count > 0 and self.wait_count >= self.patience

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check_state(
            "EarlyStopping",
            state,
            wait_count="count",
            best_score="score",
            stopped_epoch="epoch",
            min_delta="score",
        )
        self.wait_count = state.get("wait_count", 0)
        self.best_score = state.get("best_score")
        self.stopped_epoch = state.get("stopped_epoch") or 0  # (null: a checkpoint from before it was 0)
        reason, message = state.get("stopping_reason", 0), state.get("stopping_reason_message")
        if reason not in [r.value for r in EarlyStoppingReason] or isinstance(reason, bool):
            raise ValueError(
                f"the EarlyStopping state's 'stopping_reason' must be one of EarlyStoppingReason's values "
                f"(0-4), got {reason!r}"
            )
        if message is not None and not isinstance(message, str):
            raise ValueError(
                f"the EarlyStopping state's 'stopping_reason_message' must be a str, got {message!r}"
            )
        self.stopping_reason, self.stopping_reason_message = EarlyStoppingReason(reason), message
        # Patience ran out at the check before the save: the stop it asked for ends the resumed fit too,
        # unless a lower min_delta than that stop's may count the epochs since the best as improvements.
        stopped_with = state.get("min_delta")
        # (min_delta is saved only where the saving run's own patience ran out; without it, as in a checkpoint
        # from before it was saved, the warning says only what holds either way)
        self._saved_run_had_stopped = stopped_with is not None
        self._resumed_a_stop = self._patience_ran_out() and not (
            stopped_with is not None and self.min_delta < stopped_with
        )


# Lightning's EarlyStopping arguments without a counterpart here (as `flags.lightning_only`'s).
_EARLY_STOPPING_LIGHTNING_ONLY: dict[str, tuple[tuple, str]] = {
    "log_rank_zero_only": (
        (True,),
        "EarlyStopping prints from rank 0 only (trainer.print); every rank takes the stop decision together",
    ),
}
