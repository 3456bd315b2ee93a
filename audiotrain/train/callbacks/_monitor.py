"""What ModelCheckpoint, EarlyStopping and ReduceLROnPlateau share: checking their arguments and saved
state, when to check the monitored metric, finding it, and ranking its values.
"""

from __future__ import annotations

import difflib
import inspect
import math
import numbers
import warnings
from typing import TYPE_CHECKING, Any

from audiotrain._validation_monitor import validation_off_refusal
from audiotrain.train.callback import Callback, _RunReference
from audiotrain.train.loaders import loader_len, several_loaders, why_no_batches
from audiotrain.train.metric_values import MetricValue

if TYPE_CHECKING:
    from audiotrain.train.trainer import Trainer


def _score(value: Any) -> MetricValue | None:
    """A score as the callbacks report it (`best_model_score`, `best_score`): a float that also answers
    Lightning's `.item()` (`trainer.checkpoint_callback.best_model_score.item()`, an Optuna objective's end),
    as `callback_metrics`' values do; None stays None."""
    return None if value is None else MetricValue(value)


def _plain(value: float | None) -> float | None:
    """A score as a state file holds it: a plain JSON number (or null)."""
    return None if value is None else float(value)


def _is_score(value: Any) -> bool:
    # (numbers.Real: numpy's numbers too, as a sweep over np.linspace gives them; bool is not a score)
    return value is None or (isinstance(value, numbers.Real) and not isinstance(value, bool))


def _whole_number(value: Any) -> int | None:
    """`value` as an int where it is one (Python's or numpy's: np.arange gives those), else None (bool,
    floats, anything else: an argument in another's place)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return None


#: What `_check_state` accepts for each kind of field, and how it says so.
_STATE_KINDS = {
    "path": (lambda v: v is None or isinstance(v, str), "a path (a string) or null"),
    "score": (_is_score, "a number or null"),
    "count": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an int >= 0"),
    "epoch": (
        lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0),
        "an int >= 0 or null",
    ),
}


def _check_state(owner: str, state: Any, **kinds: str) -> None:
    """Refuse a callback state of the wrong shape now, naming the field (the Trainer names the file it came
    from), rather than restoring it unchecked to fail mid-fit, an epoch later, in a comparison."""
    if not isinstance(state, dict):
        raise ValueError(f"the {owner} state must be an object, got {type(state).__name__}")
    for name, kind in kinds.items():
        accepts, what = _STATE_KINDS[kind]
        if name in state and not accepts(state[name]):
            raise ValueError(f"the {owner} state's {name!r} must be {what}, got {state[name]!r}")


def _check_mode(mode: str, owner: str) -> None:
    if mode not in ("min", "max"):
        raise ValueError(f"{owner}: mode must be 'min' or 'max', got {mode!r}")


def _fit_of_another_trainer(callback: Callback, trainer: Trainer) -> bool:
    """Whether `callback`, now set up for a fit of `trainer`, last ran in the fit of another Trainer (a
    notebook cell re-run with the callback object an earlier cell made): the run state it holds (best
    scores, tracked checkpoints, patience) is that other run's. Records `trainer` as the one it runs in.
    A fit of the same Trainer again (after raising max_epochs) continues its run, state and all."""
    previous = getattr(callback, "_fitted_in", None)
    callback._fitted_in = _RunReference(trainer)
    return previous is not None and previous() is not trainer


def _is_better(value: float, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    if best is None:  # (as Lightning's start from +-inf: a NaN is never an improvement, not even the first)
        return not math.isnan(value)
    return value < best - min_delta if mode == "min" else value > best + min_delta


def _acts_after_validations(trainer: Trainer) -> bool:
    """Whether callbacks that monitor a metric act after each validation rather than at each epoch end, as
    Lightning's do: when `fit` validates other than once at every epoch end (`val_check_interval` below 1.0
    or an int, or `check_val_every_n_epoch` above 1). An epoch end without a validation would find no
    validation metric yet, or rank the previous validation's score a second time."""
    skips_epochs = trainer._has_val_loader() and trainer.check_val_every_n_epoch != 1
    return trainer.validates_within_epochs or (trainer.fitting and skips_epochs)


def _is_training_metric(trainer: Trainer, name: str) -> bool:
    """Whether `name` is a value of the training steps: a returned metric (``train_loss``, ``train_acc``)
    or what `training_step` logs (``name``, ``name_step``, ``name_epoch``), and not what the last
    validation reported under the same name."""
    if name in trainer._run.validation_metrics:
        return False
    stem = name.removesuffix("_epoch").removesuffix("_step")
    return name.startswith("train_") or stem in trainer._step_logging.train_options()


def _checks_at_epoch_end(trainer: Trainer, monitor: str, option: bool | None) -> bool:
    """Whether a callback monitoring `monitor` acts at each training epoch's end rather than after each
    validation. `option` is the callback's own (`check_on_train_epoch_end`, `save_on_train_epoch_end`):
    given, it decides. Left at None, a training metric is checked at epoch ends even when `fit` validates
    inside epochs: at a validation there `callback_metrics` holds no epoch mean of it, only nothing (before
    the first logging step) or the last logging interval's mean (`log_every_n_steps`), which ranked
    against epoch means would pick a best on a few batches. Anything else is checked where Lightning
    checks it (`_acts_after_validations`)."""
    if option is not None:
        return option
    if trainer.validates_within_epochs and _is_training_metric(trainer, monitor):
        return True
    return not _acts_after_validations(trainer)


def _warn_validation_metric_without_validation(trainer: Trainer, monitor: str | None, owner: str) -> None:
    """As `fit` starts: a validation metric as `monitor` where the fit never validates (no val_loader, or
    `limit_val_batches=0`) is named in one warning, rather than first at the check a training epoch later
    (which fails where it is still missing). Not refused: a module may log a ``val_`` metric itself from a
    training hook, which Lightning accepts too (`create_trainer` refuses it in a config, where no module
    code logs)."""
    if trainer.fast_dev_run:  # (which checks nothing)
        return
    if trainer.limit_val_batches == 0:
        off = "Trainer(limit_val_batches=0) turns validation off"
        fix = "set limit_val_batches to the batches to validate on (None: all)"
    elif not trainer._has_val_loader():  # (one a datamodule gives is asked for after on_fit_start)
        off = "fit has no val_loader, so it never validates"
        fix = "pass a val_loader to fit"
    else:
        return
    said = validation_off_refusal(
        monitor,
        off,
        f"{owner}'s monitor",
        f"{fix}, or monitor a training metric such as 'train_loss' (unless the module logs it itself from a "
        "training hook, the first check fails)",
    )
    if said:
        warnings.warn(f"{owner}: {said}", UserWarning, stacklevel=2)


def _metric(trainer: Trainer, name: str, owner: str, forced: str = "", option: str = "") -> float:
    """`name`'s value now, or a KeyError naming the cause. `forced`: the owner's argument that makes it act
    at every epoch end (`check_on_train_epoch_end=True`), where a validation metric can be missing;
    `option`: that argument's name, for a training metric missing at a validation inside an epoch."""
    metrics = trainer.callback_metrics
    if name not in metrics:
        available = ", ".join(sorted(metrics)) or "none yet"
        close = difflib.get_close_matches(name, sorted(metrics), n=1)
        stem = name.removesuffix("_epoch")
        no_validation_yet = name.startswith("val_") and not any(m.startswith("val_") for m in metrics)
        if no_validation_yet and trainer.limit_val_batches == 0:
            hint = " (it is a validation metric, and Trainer(limit_val_batches=0) turns validation off)"
        elif no_validation_yet and not trainer._has_val_loader():  # (not one still to be asked for)
            hint = " (it is a validation metric: pass a val_loader to fit)"
        elif (loader := _val_loader_of(trainer, name)) is not None and (
            no_validation_yet or loader[1] is not None
        ):
            which = "" if loader[1] is None else f" {loader[1]}"
            hint = f" (it is a validation metric, and the val loader{which} yields no batches{loader[0]})"
        elif no_validation_yet and _acts_after_validations(trainer):
            hint = f" (it is a validation metric and no validation has run yet: {_schedule(trainer)}"
            hint += f"; {owner}({forced}) acts at every epoch end: leave it out)" if forced else ")"
        elif trainer.validates_within_epochs and _is_training_metric(trainer, name):
            # A validation inside an epoch: what it can see of a training metric, and where its mean is.
            if stem != name:
                hint = (
                    f" (it is the epoch mean of the training metric {stem!r}, there once an epoch has ended"
                )
            else:
                hint = (
                    " (it is a training metric, which a validation inside an epoch sees only after a logging "
                    f"step, every Trainer(log_every_n_steps={trainer.log_every_n_steps}) steps, as the mean "
                    "over those steps, and as its epoch mean once the epoch has ended"
                )
            hint += (
                f": check it there with {owner}({option}=True) or leave {option} unset)" if option else ")"
            )
        elif stem != name and (stem in metrics or f"{stem}_step" in metrics):
            # Not `<stem>_step`, the closest name: the per-step value is not what an epoch mean monitors.
            hint = f" (the epoch mean of {stem!r}: it is there once a training epoch has ended"
            if option and trainer.validating:
                # The validation that ends an epoch runs before its mean is in (as Lightning's): "once an
                # epoch has ended" alone reads as wrong to a user whose first epoch just did.
                hint += (
                    ", from that epoch's end hooks on, after the validation that ends it (as in Lightning): "
                    f"check it at epoch ends with {owner}({option}=True)"
                )
            hint += ")"
        elif per_loader := [m for m in sorted(metrics) if m.startswith(f"{name}/dataloader_idx_")]:
            # Several validation loaders: the closest name by spelling ('train_loss' for 'val_loss') is not
            # the one meant.
            hint = (
                f" (with several validation loaders each loader's value has its own name, as in Lightning: "
                f"{', '.join(map(repr, per_loader))}; monitor one of them)"
            )
        else:
            hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise MetricNotLoggedError(
            f"{owner}: monitored metric {name!r} was not logged{hint}; available: {available}"
        )
    return float(metrics[name])


class MetricNotLoggedError(KeyError, RuntimeError):
    """A KeyError (what code that looks a metric up expects) whose message prints as written: a plain
    KeyError shows its message as a quoted repr. `field`: the missing name, where a checkpoint name's.
    Also a RuntimeError, what Lightning's EarlyStopping raises there: a sweep ported from Lightning that
    catches it (`except RuntimeError`) catches this."""

    field: str = ""

    def __str__(self) -> str:
        return str(self.args[0])


def _val_loader_of(trainer: Trainer, name: str) -> tuple[str, int | None] | None:
    """Where the val loader that `name` comes from yields no batches: why (`why_no_batches`) and its index
    among several (`val_loss/dataloader_idx_1`: 1; None for the only loader); None where it yields some."""
    given = trainer.val_dataloaders
    several = several_loaders(given)
    index = None
    if several is not None:
        stem, _, number = name.rpartition("/dataloader_idx_")
        if not stem or not number.isdigit() or int(number) >= len(several):
            return None
        index = int(number)
        given = several[index]
    return (why_no_batches(given), index) if given is not None and loader_len(given) == 0 else None


def _schedule(trainer: Trainer) -> str:
    """When `fit` validates, in the Trainer's arguments."""
    interval, every = trainer.val_check_interval, trainer.check_val_every_n_epoch
    if every is None:
        return f"Trainer(val_check_interval={interval}) validates every {interval} training batches"
    return (
        f"Trainer(check_val_every_n_epoch={every}) validates in one epoch out of {every}, the first time in "
        f"epoch {every - 1}"
    )


def _arguments(cls: type) -> list[str]:
    """The keyword arguments `cls()` takes by name (for "did you mean")."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in parameters if p.name != "self" and p.kind is not p.VAR_KEYWORD]
