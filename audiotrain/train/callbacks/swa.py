"""`StochasticWeightAveraging`: Lightning's SWA callback: anneal the learning rate to `swa_lrs` and average
the weights of the last epochs, then train on with (and save) the average."""

from __future__ import annotations

import inspect
import logging
import math
import numbers
import warnings
import weakref
from typing import TYPE_CHECKING, Any

from audiotrain._arguments import changed_arguments, settings_repr
from audiotrain._signatures import known_signature
from audiotrain._text import plural
from audiotrain.train.callbacks._averaging import AVG_FN_CALL as _AVG_FN_CALL
from audiotrain.train.callbacks._averaging import (
    AverageFunction,
    AveragingCallback,
    changed_settings,
    check_avg_fn_arity,
    check_device,
    floating,
    function_name,
    put_average_into,
    widened,
)
from audiotrain.train.callbacks._batchnorm_pass import recompute_batchnorm_statistics
from audiotrain.train.callbacks.lr_plateau import ReduceLROnPlateau, _groups
from audiotrain.train.module import has_learning_rate
from audiotrain.train.schedulers import ArrayValuedSchedule, IntervalSchedule

import mlx.core as mx

if TYPE_CHECKING:
    from audiotrain.train.module import TrainModule
    from audiotrain.train.trainer import Trainer

log = logging.getLogger(__name__)


_START_MESSAGE = "swa_epoch_start should be a >0 integer or a float between 0 and 1"  # (Lightning's)


class StochasticWeightAveraging(AveragingCallback):
    """Stochastic Weight Averaging (Izmailov et al., 2018) as Lightning's callback of that name, with its
    arguments and defaults: ``StochasticWeightAveraging(swa_lrs=1e-2)``.

    From the SWA start epoch to the last one (`max_epochs`), the learning rate anneals from the rate it had
    when SWA started to `swa_lrs` over `annealing_epochs` epochs, as torch's ``SWALR`` stepped once an epoch:
    in the k-th SWA epoch (k = 0 at the start) the rate is ``swa_lr * a + lr_start * (1 - a)`` with
    ``a = (1 - cos(pi * t)) / 2`` ("cos") or ``a = t`` ("linear"), ``t = min(1, k / annealing_epochs)``
    (``annealing_epochs=0``: `swa_lrs` from the first SWA epoch on). It replaces the optimizer's
    learning-rate schedule for the rest of training (Lightning swaps its lr_scheduler for SWALR): the rate
    is set between epochs, on the host, as `ReduceLROnPlateau` sets it; a schedule (a function of the step,
    evaluated in the compiled update) is taken off the optimizer and the training step traced again once.
    `lr_start` is the schedule's value for the next update where the rate was a schedule (as Lightning's
    group ``lr`` after the scheduler's last step). A `MultiOptimizer`'s groups each anneal from their own
    rate, to one `swa_lrs` or to one value per group.

    At the end of each SWA epoch (after its validation hooks' training, before a `ModelCheckpoint` saves)
    the running average of the module's parameters is updated: ``avg_fn(average, current, n_averaged)``,
    by default the equal-weight mean ``average + (current - average) / (n_averaged + 1)``; the first epoch
    starts it. Every floating array of ``module.parameters()`` is averaged (frozen ones stay as they are).
    When the fit reaches the last epoch's end, `on_train_end` puts the average into the module, as
    Lightning does: `validate`/`test`/`predict` after `fit`, `trainer.save_checkpoint` and
    `module.save_weights` use the averaged weights. A module with BatchNorm layers then gets their running
    statistics recomputed under the averaged weights, as Lightning's extra epoch and torch's ``update_bn``
    do: reset to 0 and 1, one forward-only pass of the training step over the training loader (its
    ``set_epoch(max_epochs)``, `limit_train_batches`; no gradient, no update, nothing logged) leaves each
    layer in training mode with the cumulative mean of the batches' statistics, and its momentum and mode
    as they were (one the user put in eval mode keeps its statistics).

    Checkpoints: a `ModelCheckpoint` save during training holds the current (trained, not averaged)
    weights in model.safetensors, as in Lightning, and the average in callbacks.safetensors with this
    callback's counters in trainer_state.json, so a fit resumed from it ends with the same weights as an
    uninterrupted one. `last` too holds the trained weights (ModelCheckpoint writes it at the last
    epoch's end, before `on_train_end` puts the average in): save the SWA model with
    `trainer.save_checkpoint` after `fit`. Resuming a checkpoint saved after SWA started with other
    settings (`swa_lrs`, the start epoch, `annealing_*`, `avg_fn`) is refused, naming what differs.

    Where it differs from Lightning: the average is updated at each SWA epoch's end, as torch's SWA recipe
    does (Lightning updates it at the start of each SWA epoch, from the weights before that epoch, so its
    average leaves the last epoch's training out); the BatchNorm pass runs inside `on_train_end`, not as an
    extra epoch of the fit (no epoch or step is counted, no hook or logger sees it, and no checkpoint is
    saved after it: `last` holds the trained weights; `trainer.save_checkpoint` after `fit` saves the
    average); `max_epochs` must be set (`fit` ends SWA there); a `swa_epoch_start` after the last epoch is
    refused rather than never started; a fit that stops before the last epoch's end (EarlyStopping,
    `max_steps`, `max_time`) keeps its trained weights, as in Lightning, and says so in a warning that
    names which of them stopped it.

    Data parallel: every process holds the same parameters after each update (the gradients are averaged
    in the step), so each averages its own copy, and rank 0 saves the average; the BatchNorm pass runs on
    each rank's own batches, then every rank takes rank 0's statistics.

    Args:
        swa_lrs: the SWA learning rate: a number > 0 for every parameter group, or a list with one per group.
        swa_epoch_start: an int n >= 1: SWA starts in the n-th epoch (counted from 1, Lightning's rule: epoch
            index n - 1); a float f in [0, 1]: in epoch ``int(f * max_epochs)`` counted the same way.
        annealing_epochs: epochs over which the rate anneals to `swa_lrs` (an int >= 0).
        annealing_strategy: "cos" or "linear".
        avg_fn: ``avg_fn(average, current, n_averaged) -> new average`` for each parameter (None: the mean);
            one whose signature cannot take those three positional arguments is refused here.
        device: accepted for compatibility where it is None or the CPU ("cpu", ``mx.cpu``, Lightning's
            default), and does nothing: the average is kept as MLX arrays beside the model's (MLX has no
            per-array device). Any other device is refused.
    """

    _AVERAGE_UNIT = "epoch"

    def _averaged_arrays(self, module: TrainModule) -> dict[str, mx.array]:
        return floating(module)

    def __init__(
        self,
        swa_lrs: float | list[float],
        swa_epoch_start: int | float = 0.8,
        annealing_epochs: int = 10,
        annealing_strategy: str = "cos",
        avg_fn: AverageFunction | None = None,
        device: Any = None,
    ):
        self._settings = changed_arguments(StochasticWeightAveraging.__init__, locals())  # (for repr)
        self._swa_lrs = _checked_rates(swa_lrs)
        # (A list: one rate per group, exactly, as torch's SWALR takes it.)
        self._one_rate_per_group = isinstance(swa_lrs, list | tuple)
        self._swa_epoch_start = _checked_start(swa_epoch_start)
        if (
            isinstance(annealing_epochs, bool)
            or not isinstance(annealing_epochs, int)
            or annealing_epochs < 0
        ):
            raise ValueError(
                f"StochasticWeightAveraging: annealing_epochs must be an int >= 0, got {annealing_epochs!r}"
            )
        if annealing_strategy not in ("cos", "linear"):
            raise ValueError(
                "StochasticWeightAveraging: annealing_strategy must be 'cos' or 'linear', got "
                f"{annealing_strategy!r}"
            )
        if avg_fn is not None and not callable(avg_fn):
            raise TypeError(f"StochasticWeightAveraging: avg_fn must be callable or None, got {avg_fn!r}")
        if avg_fn is not None:
            check_avg_fn_arity("StochasticWeightAveraging", avg_fn, "epochs")
        check_device("StochasticWeightAveraging", device)
        self._annealing_epochs, self._annealing_strategy = annealing_epochs, annealing_strategy
        self._avg_fn = avg_fn
        self._start: int | None = None  # the first SWA epoch (0-based), set when fit starts
        self._end: int | None = None  # the last one: max_epochs - 1
        self._module: weakref.ref | None = None  # the module of this fit (`load_state_arrays` checks by it)
        self._fitted_in: weakref.ref | None = None  # the Trainer whose fit the state below belongs to
        self._reset()

    def _reset(self) -> None:
        self.n_averaged = 0  # epochs in the average (Lightning's name)
        self._latest_update_epoch = -1
        self._initial_lrs: list[float] | None = None  # each group's rate when SWA started (None: not yet)
        self._started_epoch: int | None = None  # the epoch it started in: swa_start, or a later one
        # The epoch each group added after SWA started (a fine-tuning callback's) appeared in: its rate
        # anneals from there, from its own rate then (groups there at the start: none here).
        self._group_started: list[int] = []
        self._average: dict[str, mx.array] = {}  # parameter name -> its average
        self._saved_settings: dict[str, Any] | None = None  # those of the checkpoint resumed, to compare
        self._put_at_step: int | None = None  # the step the average went into the module at (None: not yet)

    @property
    def swa_start(self) -> int:
        """The first SWA epoch, 0-based (Lightning's property), known once `fit` has started."""
        if self._start is None:
            raise RuntimeError("StochasticWeightAveraging.swa_start is known once fit has started")
        return self._start

    @property
    def swa_end(self) -> int:
        """The last SWA epoch, 0-based: max_epochs - 1 (Lightning's property)."""
        if self._end is None:
            raise RuntimeError("StochasticWeightAveraging.swa_end is known once fit has started")
        return self._end

    def __repr__(self) -> str:
        return settings_repr("StochasticWeightAveraging", {"swa_lrs": self._swa_lrs, **self._settings})

    # -- the fit -------------------------------------------------------------------------------------
    def on_fit_start(self, trainer: Trainer, module: TrainModule) -> None:
        max_epochs = trainer.max_epochs
        if max_epochs is None:
            raise ValueError(
                f"StochasticWeightAveraging(swa_epoch_start={self._swa_epoch_start!r}) needs "
                "Trainer(max_epochs=...): SWA runs from its start epoch to the last epoch, whose end puts "
                "the average into the module (max_epochs is unset: None or -1)"
            )
        if isinstance(self._swa_epoch_start, float):
            first = int(max_epochs * self._swa_epoch_start)  # (Lightning's, 1-based as an int start)
        else:
            first = self._swa_epoch_start
            if first > max_epochs:
                raise ValueError(
                    f"StochasticWeightAveraging: swa_epoch_start={first} is after the last epoch "
                    f"(max_epochs={max_epochs}): SWA would never start; give an epoch <= {max_epochs} "
                    "(counted from 1), or a float fraction of max_epochs"
                )
        self._start, self._end = max(first - 1, 0), max_epochs - 1
        groups = _groups(trainer.optimizer)
        if not all(has_learning_rate(group) for group in groups):
            raise ValueError(
                "StochasticWeightAveraging: the optimizer has no learning rate to anneal to swa_lrs (MLX's "
                "Adafactor with relative_step=True, its default, computes each parameter's): give it one "
                "(optim.Adafactor(learning_rate=1e-3, relative_step=False)) or use another optimizer"
            )
        if self._one_rate_per_group and len(self._swa_lrs) != len(groups):
            raise ValueError(
                f"StochasticWeightAveraging: swa_lrs has {plural(len(self._swa_lrs), 'value')}, the "
                f"optimizer {plural(len(groups), 'parameter group')}: give one number, or a list "
                "with one per group (a MultiOptimizer's optimizers are its groups)"
            )
        self._refuse_other_settings(trainer)
        self._warn_of_a_plateau(trainer)

    def _warn_of_a_plateau(self, trainer: Trainer) -> None:
        """Both set the optimizer's rate: SWA's, set at each SWA epoch's start, replaces any cut the plateau
        made during SWA, so those cuts never train (Lightning swaps the plateau scheduler for SWALR when SWA
        starts). Said once a fit, from rank 0, where SWA has epochs left to run."""
        plateaus = [cb for cb in trainer.callbacks if isinstance(cb, ReduceLROnPlateau)]
        if not plateaus or trainer.current_epoch > self.swa_end or not trainer.is_global_zero:
            return
        warnings.warn(
            f"{plateaus[0]!r} and StochasticWeightAveraging both set the learning rate: from SWA's first "
            f"epoch (epoch {self.swa_start + 1} counted from 1) to the last, SWA sets its annealed rate at "
            "each epoch's start, so the plateau's cuts in those epochs never train (it still acts before "
            "SWA; Lightning swaps the plateau scheduler out for SWALR when SWA starts). To keep its cuts, "
            "leave out one of the two, or start SWA later (swa_epoch_start)",
            UserWarning,
            stacklevel=2,
        )

    def on_train_epoch_start(self, trainer: Trainer, module: TrainModule) -> None:
        epoch = trainer.current_epoch
        if not self.swa_start <= epoch <= self.swa_end:
            return
        groups = _groups(trainer.optimizer)
        if self._initial_lrs is None:  # SWA starts now
            if epoch != self.swa_start and trainer.is_global_zero:
                warnings.warn(
                    f"StochasticWeightAveraging starts in epoch {epoch}, after its start epoch "
                    f"{self.swa_start}, without state from a checkpoint (it was not among the callbacks of "
                    "the run resumed): the rate anneals, and the average counts, from this epoch",
                    UserWarning,
                    stacklevel=2,
                )
            self._initial_lrs = [_rate_of_next_update(group) for group in groups]
            self._started_epoch = epoch
            self._group_started = []
        self._groups_added(epoch, groups)
        self._take_over_schedules(trainer, groups)
        for index, group in enumerate(groups):
            # The optimizer's state: the next compiled update reads it (as ReduceLROnPlateau's).
            group.learning_rate = self._epoch_rate(epoch, index)

    def _epoch_rate(self, epoch: int, index: int) -> float | None:
        """The annealed rate parameter group `index` trains with in `epoch` (set at that epoch's start), or
        None where SWA has not started, `epoch` is outside SWA, or the group is not known to it yet. A
        `LearningRateMonitor` reads it at an epoch's start, so it logs that epoch's rate whichever of the
        two callbacks comes first (Lightning's SWALR is stepped at the previous epoch's end)."""
        if self._initial_lrs is None or self._start is None or not self.swa_start <= epoch <= self.swa_end:
            return None
        if index >= len(self._initial_lrs):
            return None
        start = self.swa_start if self._started_epoch is None else self._started_epoch
        first = len(self._initial_lrs) - len(self._group_started)  # (the groups there when SWA started)
        began = ([start] * first + self._group_started)[index]
        swa_lr = self._swa_lrs[0] if len(self._swa_lrs) == 1 else self._swa_lrs[index]
        return _annealed_rate(
            epoch - began, self._initial_lrs[index], swa_lr, self._annealing_epochs, self._annealing_strategy
        )

    def _groups_added(self, epoch: int, groups: list) -> None:
        """Groups a fine-tuning callback added after SWA started (`BackboneFinetuning` unfreezing its
        backbone): each anneals from its own rate, from the epoch it appears in, to `swa_lrs` (one number:
        every group's, as in Lightning; a list must have one per group)."""
        assert self._initial_lrs is not None
        known = len(self._initial_lrs)
        if self._one_rate_per_group and len(groups) != len(self._swa_lrs):
            raise ValueError(
                f"StochasticWeightAveraging: swa_lrs has {plural(len(self._swa_lrs), 'value')}, one per "
                f"parameter group when SWA started, but the optimizer now has "
                f"{plural(len(groups), 'parameter group')} (in epoch {epoch}: groups were "
                f"{'added' if len(groups) > known else 'removed'} by a fine-tuning callback, such as "
                "BackboneFinetuning unfreezing its backbone): give one number for every group, or a list "
                "with one per group the optimizer will have"
            )
        if len(groups) < known:
            raise ValueError(
                f"StochasticWeightAveraging: the optimizer has {plural(len(groups), 'parameter group')} in "
                f"epoch {epoch}, {known} when SWA started: a group was removed during SWA, whose rates "
                "anneal per group"
            )
        for group in groups[known:]:
            self._initial_lrs.append(_rate_of_next_update(group))
            self._group_started.append(epoch)

    def on_train_epoch_end(self, trainer: Trainer, module: TrainModule) -> None:
        epoch = trainer.current_epoch
        # Only an epoch that trained to its end: one that max_steps cut short is averaged when a resumed fit
        # completes it, as an uninterrupted run would (the update is idempotent per epoch).
        if (
            self.swa_start <= epoch <= self.swa_end
            and epoch > self._latest_update_epoch
            and trainer.progress.epoch_complete
        ):
            self._update_average(module)
            self._latest_update_epoch = epoch

    def on_train_end(self, trainer: Trainer, module: TrainModule) -> None:
        if trainer.current_epoch > self.swa_end and self.n_averaged > 0:
            self._put_average(trainer, module)
        elif self._initial_lrs is not None and trainer.is_global_zero:
            cause, advice = _why_fit_ended(trainer)
            warnings.warn(
                # (current_epoch counts the complete epochs, whether the fit stopped inside one or at its end)
                f"StochasticWeightAveraging: fit ended at step {trainer.global_step}, after "
                f"{plural(trainer.current_epoch, 'complete epoch')}, before the end of the last SWA epoch "
                f"(epoch {self.swa_end + 1} counted from 1, max_epochs={self.swa_end + 1}), as {cause}: the "
                f"module keeps its trained weights, as in Lightning; the average of "
                f"{plural(self.n_averaged, 'epoch')} is not "
                f"applied. {advice[0].upper()}{advice[1:]}",
                UserWarning,
                stacklevel=2,
            )
        elif trainer.current_epoch <= self.swa_start and trainer.is_global_zero:
            # (a stop before the start epoch: without a word the user would take the weights for SWA's)
            cause, advice = _why_fit_ended(trainer)
            warnings.warn(
                f"StochasticWeightAveraging: fit ended at step {trainer.global_step}, before SWA's first "
                f"epoch (epoch {self.swa_start + 1} counted from 1, "
                f"swa_epoch_start={self._swa_epoch_start!r}), as {cause}: SWA never started; the module "
                "keeps its trained weights. "
                f"{advice[0].upper()}{advice[1:]}",
                UserWarning,
                stacklevel=2,
            )

    def on_fit_end(self, trainer: Trainer, module: TrainModule) -> None:
        # A fit with nothing left to train calls no on_train_end (as Lightning's FitLoop.skip): resumed from
        # the last epoch's checkpoint, saved before the average went in, it puts it in here, to end as the
        # uninterrupted run did. (A finished Trainer fit again already holds it: left as it is.)
        if self._put_at_step is None and trainer.current_epoch > self.swa_end and self.n_averaged > 0:
            self._put_average(trainer, module)

    def _put_average(self, trainer: Trainer, module: TrainModule) -> None:
        put_average_into(trainer, module, self._average)
        # BatchNorm's statistics for the averaged weights, as Lightning's extra epoch computes them
        recompute_batchnorm_statistics(trainer, module, epoch=self.swa_end + 1)
        mx.eval(module.parameters())
        self._put_at_step = trainer.global_step

    # -- the two halves ------------------------------------------------------------------------------
    def _take_over_schedules(self, trainer: Trainer, groups: list) -> None:
        """Take each group's learning-rate schedule off the optimizer: from now on the rate is this callback's
        (Lightning's swap of the lr_scheduler for SWALR). The compiled step evaluates the schedule in its
        graph, so it is traced again once; an optimizer whose rate is a number needs nothing."""
        taken = [group._schedulers.pop("learning_rate", None) for group in groups]
        schedules = [schedule for schedule in taken if schedule is not None]
        step = getattr(trainer, "_train_step", None)
        if schedules and step is not None:
            step.trace_again()
        if schedules and trainer.is_global_zero:
            _say_schedule_taken_over(schedules[0], trainer.current_epoch)

    def _update_average(self, module: TrainModule) -> None:
        current = floating(module)
        if self.n_averaged == 0:
            # (MLX arrays are values: a later update makes new ones; bfloat16 ones are kept as float32)
            self._average = {k: widened(v) for k, v in current.items()}
        else:
            n = mx.array(self.n_averaged, mx.int32)
            average_fn = self._avg_fn or _mean
            updated = {}
            for name, value in current.items():
                try:
                    new = average_fn(self._average[name], value, n)
                except TypeError as err:
                    if self._avg_fn is None or known_signature(self._avg_fn) is not None:
                        raise  # (its arity was checked: an error of its own)
                    raise TypeError(
                        f"StochasticWeightAveraging: avg_fn {function_name(self._avg_fn)} failed, called as "
                        f"{_AVG_FN_CALL} for {name!r}: {err}"
                    ) from err
                if not isinstance(new, mx.array) or new.shape != value.shape:
                    got = f"shape {tuple(new.shape)}" if isinstance(new, mx.array) else type(new).__name__
                    raise ValueError(
                        f"StochasticWeightAveraging: avg_fn returned a {got} for {name!r}, whose average is "
                        f"an mx.array of shape {tuple(value.shape)}"
                    )
                kept = self._average[name].dtype
                updated[name] = new.astype(kept) if new.dtype != kept else new
            self._average = updated
        # Each process averages its own copy: under data parallel the parameters are the same on every
        # rank after each update (averaged gradients), so no communication is needed.
        mx.eval(list(self._average.values()))  # once an epoch: no graph grows across epochs
        self.n_averaged += 1

    def _refuse_other_settings(self, trainer: Trainer) -> None:
        saved, now = self._saved_settings, self._resolved_settings()
        self._saved_settings = None
        if saved is None or self._initial_lrs is None:
            return  # nothing saved, or saved before SWA started: these settings start it
        differ = changed_settings(saved, now)
        if differ:
            raise ValueError(
                f"StochasticWeightAveraging: the checkpoint resumed ({trainer.ckpt_path}) was saved after "
                f"SWA started, with other settings: {'; '.join(differ)}. Its average and annealed rate "
                "hold only with its settings: resume with those, or start a new fit from its weights"
            )

    def _resolved_settings(self) -> dict[str, Any]:
        """The settings that decide the rates and the average, as this fit resolved them (JSON)."""
        return {
            "swa_lrs": list(self._swa_lrs),
            "swa_start": self._start,  # (0-based: a float start resolved with this fit's max_epochs)
            "annealing_epochs": self._annealing_epochs,
            "annealing_strategy": self._annealing_strategy,
            "avg_fn": None if self._avg_fn is None else function_name(self._avg_fn),
        }

    # -- state ---------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "n_averaged": self.n_averaged,
            "latest_update_epoch": self._latest_update_epoch,
            "initial_lrs": self._initial_lrs,
            "started_epoch": self._started_epoch,
            "group_started_epochs": list(self._group_started),
            "settings": self._resolved_settings(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict):
            raise ValueError(
                f"the StochasticWeightAveraging state must be an object, got {type(state).__name__}"
            )
        self._put_at_step = None  # (a checkpoint's module holds the trained weights: see on_fit_end)
        n, latest, initial, settings = (
            state.get("n_averaged", 0),
            state.get("latest_update_epoch", -1),
            state.get("initial_lrs"),
            state.get("settings"),
        )
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(
                f"the StochasticWeightAveraging state's 'n_averaged' must be an int >= 0, got {n!r}"
            )
        if isinstance(latest, bool) or not isinstance(latest, int) or latest < -1:
            raise ValueError(
                "the StochasticWeightAveraging state's 'latest_update_epoch' must be an int >= -1, got "
                f"{latest!r}"
            )
        if initial is not None and not (
            isinstance(initial, list) and initial and all(_is_rate(v, allow_zero=True) for v in initial)
        ):
            raise ValueError(
                "the StochasticWeightAveraging state's 'initial_lrs' must be null or a list of numbers >= 0, "
                f"got {initial!r}"
            )
        started = state.get("started_epoch")
        if started is not None and (isinstance(started, bool) or not isinstance(started, int) or started < 0):
            raise ValueError(
                f"the StochasticWeightAveraging state's 'started_epoch' must be null or an int >= 0, got "
                f"{started!r}"
            )
        if settings is not None and not isinstance(settings, dict):
            raise ValueError(
                f"the StochasticWeightAveraging state's 'settings' must be an object, got {settings!r}"
            )
        self.n_averaged, self._latest_update_epoch = n, latest
        self._initial_lrs = None if initial is None else [float(v) for v in initial]
        added = state.get("group_started_epochs", [])
        if not (
            isinstance(added, list)
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in added)
            and len(added) <= len(initial or [])
        ):
            raise ValueError(
                "the StochasticWeightAveraging state's 'group_started_epochs' must be a list of ints >= 0, "
                f"at most one per entry of 'initial_lrs', got {added!r}"
            )
        self._started_epoch = started
        self._group_started = list(added)
        self._saved_settings = settings
        self._average = {}


def _why_fit_ended(trainer: Trainer) -> tuple[str, str]:
    """What ended `trainer`'s fit before max_epochs, and what would let SWA finish (for the warning)."""
    if trainer.max_steps is not None and trainer.global_step >= trainer.max_steps:
        return (
            f"max_steps={trainer.max_steps} was reached",
            "resume from a checkpoint with a higher max_steps to finish SWA",
        )
    if (
        trainer.max_time is not None and trainer.elapsed() >= trainer.max_time
    ):  # (before should_stop: it sets it)
        return (
            "max_time ran out",
            "resume from a checkpoint with a higher max_time to finish SWA",
        )
    if trainer.should_stop:
        return (
            "a stop was requested (EarlyStopping, or a callback setting trainer.should_stop)",
            "SWA averages up to the last epoch: set max_epochs to where training should end, or leave out "
            "the early stop",
        )
    return "it stopped early", "resume from a checkpoint to finish SWA"


def _mean(average: mx.array, current: mx.array, n_averaged: mx.array) -> mx.array:
    """torch's default `avg_fn`: the running equal-weight mean."""
    return average + (current - average) / (n_averaged + 1)


def _say_schedule_taken_over(schedule: Any, epoch: int) -> None:
    """Lightning's messages as SWA swaps the lr_scheduler for SWALR: a warning where the schedule was not
    stepped once an epoch ("SWA is currently only supported every epoch. Found ..."), and, at INFO,
    "Swapping scheduler `StepLR` for `SWALR`". A schedule given as the optimizer's learning_rate is stepped
    every step."""
    interval, frequency = "step", 1
    if isinstance(schedule, IntervalSchedule):
        interval, frequency, schedule = schedule.interval, schedule.frequency, schedule.schedule
    if isinstance(schedule, ArrayValuedSchedule):
        schedule = schedule.schedule
    # The class, as Lightning names it (`StepLRScheduler`); a function by its name (MLX's cosine_decay's).
    name = schedule.__qualname__ if inspect.isfunction(schedule) else type(schedule).__name__
    if (interval, frequency) != ("epoch", 1):
        every = {"step": "optimizer step", "epoch": "epoch"}[interval]
        every = f"{frequency} {every}s" if frequency > 1 else every
        warnings.warn(
            f"StochasticWeightAveraging: SWA is only supported every epoch (its annealed rate is set at each "
            f"epoch's start). Found the learning-rate schedule {name} stepped every {every} ('interval': "
            f"{interval!r}, 'frequency': {frequency}): from epoch {epoch + 1} (counted from 1) SWA's rate "
            "replaces it",
            UserWarning,
            stacklevel=4,  # (the Trainer's hook call)
        )
    log.info("Swapping scheduler `%s` for SWA's annealed rate (Lightning's `SWALR`)", name)


def _annealed_rate(k: int, initial: float, swa_lr: float, annealing_epochs: int, strategy: str) -> float:
    """torch's ``SWALR`` after k epoch steps (its ``get_lr``, without the reconstruction of the initial
    rate that it does from the previous one)."""
    step = max(1, k) if annealing_epochs == 0 else k
    t = max(0.0, min(1.0, step / max(1, annealing_epochs)))
    alpha = (1 - math.cos(math.pi * t)) / 2 if strategy == "cos" else t
    return swa_lr * alpha + initial * (1 - alpha)


def _rate_of_next_update(group: Any) -> float:
    """The rate the group's next update would use: its schedule's value at its step, or its number."""
    schedule = group._schedulers.get("learning_rate")
    rate = schedule(group.step) if schedule is not None else group.learning_rate
    return float(rate.item() if isinstance(rate, mx.array) else rate)


def _is_rate(value: Any, allow_zero: bool = False) -> bool:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        return False
    return value >= 0 if allow_zero else value > 0


def _checked_rates(swa_lrs: Any) -> list[float]:
    rates = list(swa_lrs) if isinstance(swa_lrs, list | tuple) else [swa_lrs]
    if not rates or not all(_is_rate(rate) for rate in rates):
        raise ValueError(
            "StochasticWeightAveraging: swa_lrs must be a positive number, or a list of positive numbers "
            f"(one per parameter group), got {swa_lrs!r}"
        )
    return [float(rate) for rate in rates]


def _checked_start(start: Any) -> int | float:
    if isinstance(start, numbers.Integral) and not isinstance(start, bool):
        if start < 1:
            raise ValueError(
                f"StochasticWeightAveraging: {_START_MESSAGE} (an epoch counted from 1), got {start!r}"
            )
        return int(start)
    if isinstance(start, float):
        if not 0 <= start <= 1:  # (NaN too)
            raise ValueError(
                f"StochasticWeightAveraging: {_START_MESSAGE} (a fraction of max_epochs), got {start!r}"
            )
        return start
    raise TypeError(f"StochasticWeightAveraging: {_START_MESSAGE}, got {start!r}")


__all__ = ["StochasticWeightAveraging"]
