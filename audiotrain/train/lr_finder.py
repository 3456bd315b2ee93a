"""The learning-rate range test behind `Tuner.lr_find`: the rates it sweeps, the callback that sets them
and records the loss at each step (`LRSweep`), and the result (`LRFinder`: `results`, `suggestion()`,
`plot()`), with Lightning's names and defaults.

The sweep trains with the Trainer's own compiled step; `LRSweep` only sets the optimizer's learning rate
between steps, as `ReduceLROnPlateau` does (the rate is part of the optimizer's state, which the compiled
update reads). `Tuner` (train/tuner.py) runs it and puts back what it changed.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import TYPE_CHECKING, Any

from audiotrain._caller import user_stacklevel
from audiotrain.distributed import collectives
from audiotrain.train.callback import Callback
from audiotrain.train.callbacks import ProgressBar
from audiotrain.train.module import _optimizers_in

import mlx.core as mx
import numpy as np
from mlx.utils import tree_map

if TYPE_CHECKING:
    from audiotrain.train.module import TrainModule
    from audiotrain.train.trainer import Trainer

MODES = ("exponential", "linear")


def sweep_rates(min_lr: float, max_lr: float, num_training: int, mode: str) -> list[float]:
    """The learning rate of each of the `num_training` steps: `min_lr` at the first, `max_lr` at the last,
    evenly spaced in log scale ("exponential") or linearly ("linear"). (Lightning's schedulers skip the
    second point, `min_lr * (max_lr / min_lr) ** (1 / num_training)`, and space the rest by 1 / num_training;
    here the `num_training` rates are evenly spaced over the whole range.)"""
    fractions = [k / (num_training - 1) for k in range(num_training)]
    if mode == "exponential":
        return [min_lr * (max_lr / min_lr) ** r for r in fractions]
    return [min_lr + r * (max_lr - min_lr) for r in fractions]


class LRFinder:
    """What `Tuner.lr_find` found (Lightning's `_LRFinder`): `results` is ``{"lr": [...], "loss": [...]}``,
    one entry per optimizer step of the sweep, the loss smoothed (an exponential moving average, beta 0.98,
    bias-corrected). `suggestion()` picks the rate where the loss falls fastest; `plot()` draws the curve
    (matplotlib, imported when called).

    `mode`, `lr_min`, `lr_max` and `num_training` are the sweep's settings, as Lightning names them.
    """

    def __init__(self, mode: str, lr_min: float, lr_max: float, num_training: int) -> None:
        if mode not in MODES:
            raise ValueError(f"LRFinder(mode={mode!r}): expected 'exponential' or 'linear'")
        self.mode = mode
        self.lr_min = lr_min
        self.lr_max = lr_max
        self.num_training = int(num_training)
        self.results: dict[str, list[float]] = {"lr": [], "loss": []}
        self._optimal_idx: int | None = None
        self._stopped_early = False  # (set by Tuner.lr_find: the sweep stopped where the loss diverged)
        self._rate_set: float | None = None  # (set by Tuner.lr_find: the rate update_attr wrote, if any)
        # The step count's name in the user's call, which the warnings name: LearningRateFinder's is
        # num_training_steps (its user has no num_training to raise).
        self._steps_argument = "num_training"

    def __repr__(self) -> str:
        return (
            f"LRFinder(mode={self.mode!r}, lr_min={self.lr_min}, lr_max={self.lr_max}, "
            f"num_training={self.num_training}, steps_run={len(self.results['lr'])})"
        )

    def suggestion(self, skip_begin: int = 10, skip_end: int = 1) -> float | None:
        """The learning rate at the steepest descent of the loss: where the gradient of the (smoothed) loss
        with respect to the learning rate is most negative (numpy's `gradient` over the rates' logarithms in
        an "exponential" sweep, the rates in a "linear" one; Lightning 2.5.3 and later differentiate against
        the rates in both, and suggest the lowest rates), leaving out the first `skip_begin` points (a
        loss still settling) and the last `skip_end` (a loss about to diverge), and every non-finite loss.

        Returns None, with a warning that says why, where fewer than 2 finite points remain (Lightning logs
        an error there): the loader yielded no batches, `num_training` is too short for the skips, the
        sweep stopped early where the loss diverged, or its losses were non-finite. (`skip_end=0` keeps every
        point to the end; Lightning's slice `[skip_begin:-0]` would keep none.)
        """
        return self._suggestion(skip_begin, skip_end)

    def _suggestion(self, skip_begin: int, skip_end: int) -> float | None:
        """`suggestion()`, its warning at the user's line (also through lr_find and a fit's callback)."""
        for name, value in (("skip_begin", skip_begin), ("skip_end", skip_end)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise ValueError(f"LRFinder.suggestion({name}={value!r}): expected an int >= 0")
        skip_begin, skip_end = int(skip_begin), int(skip_end)
        lrs = np.asarray(self.results["lr"], dtype=np.float64)
        losses = np.asarray(self.results["loss"], dtype=np.float64)
        kept = np.arange(skip_begin, max(len(losses) - skip_end, skip_begin))
        kept = kept[np.isfinite(losses[kept])]
        self._optimal_idx = None
        if len(kept) < 2:
            why, remedy = self._why_too_few(len(kept), skip_begin, skip_end)
            warnings.warn(
                f"LRFinder.suggestion: no learning rate suggested: {why}; {remedy}",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
            return None
        # An exponential sweep is read per decade of rate (the plot's log axis), as Lightning before 2.5.3
        # and its open fix (#21171) of its issue #21141: against the rates themselves, the batches' loss
        # differences where the rates are 1e-7 apart outweigh any real fall, and the suggestion is the
        # lowest rates' noise (3.2e-4 on a least-squares problem that trains best at 0.1-1).
        spacing = np.log(lrs[kept]) if self.mode == "exponential" else lrs[kept]
        gradients = np.gradient(losses[kept], spacing)
        self._optimal_idx = int(kept[int(np.argmin(gradients))])
        return self.results["lr"][self._optimal_idx]

    def _why_too_few(self, finite: int, skip_begin: int, skip_end: int) -> tuple[str, str]:
        """Why fewer than 2 finite points remain for `suggestion()` (its real causes), and what to do."""
        losses = np.asarray(self.results["loss"], dtype=np.float64)
        steps = len(losses)
        if not steps:
            return (
                "the sweep ran no steps: its training loader yielded no batches",
                "give lr_find a training loader with batches (and limit_train_batches / overfit_batches "
                "that leave some)",
            )
        if not np.isfinite(losses).any():
            return (
                f"every loss of the sweep's {steps} steps was non-finite (NaN or inf)",
                "lower max_lr and min_lr, and check the data and the loss for NaN",
            )
        causes, remedies, steps_argument = [], [], self._steps_argument
        if self._stopped_early:
            causes.append(
                f"the sweep stopped early at step {steps} of {steps_argument}={self.num_training} "
                f"(lr={self.results['lr'][-1]:.3g}), where the loss diverged (early_stop_threshold)"
            )
            remedies.append("lower max_lr, or raise early_stop_threshold (None: never stop)")
        elif steps < self.num_training:
            causes.append(f"the sweep ran {steps} of its {steps_argument}={self.num_training} steps")
        window = max(steps - skip_begin - skip_end, 0)
        if window < 2:
            ran = (
                f"its {steps} steps leave"
                if steps < self.num_training
                else f"{steps_argument}={steps} leaves"
            )
            causes.append(
                f"{ran} {window} point(s) after skip_begin={skip_begin} at the start and skip_end={skip_end} "
                "at the end (2 are needed: more than skip_begin + skip_end + 1 = "
                f"{skip_begin + skip_end + 1} steps)"
            )
            remedies.append(f"raise {steps_argument}, or pass smaller skip_begin / skip_end")
        else:
            causes.append(
                f"only {finite} of the {window} losses left after the skips are finite (NaN or inf)"
            )
            remedies.append("lower max_lr, and check the data and the loss for NaN")
        return (
            f"{finite} finite loss(es) remain of {steps}: " + "; ".join(causes),
            ", or ".join(remedies),
        )

    def plot(self, suggest: bool = False, show: bool = False, ax: Any = None) -> Any:
        """Draw the loss against the learning rate (a log axis for an "exponential" sweep) on `ax`, or on a
        new figure, and return the figure; `suggest` marks `suggestion()`'s point in red, `show` calls
        `plt.show()`. Needs matplotlib (Lightning's arguments)."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as err:
            raise ImportError(
                "LRFinder.plot needs matplotlib, which is not installed: pip install matplotlib (the "
                "curve itself is in lr_finder.results, and the suggested rate in lr_finder.suggestion())"
            ) from err
        lrs, losses = self.results["lr"], self.results["loss"]
        if ax is None:
            fig, ax = plt.subplots()
        else:
            fig = ax.figure
        ax.plot(lrs, losses)
        if self.mode == "exponential":
            ax.set_xscale("log")
        ax.set_xlabel("Learning rate")
        ax.set_ylabel("Loss")
        if suggest and self.suggestion() is not None:
            # (`is not None`: Lightning's `if self._optimal_idx` leaves out a suggestion at index 0)
            index = self._optimal_idx
            ax.plot(lrs[index], losses[index], markersize=10, marker="o", color="red")
        if show:
            plt.show()
        return fig


class LRSweep(Callback):
    """Sets the learning rate of each step of the sweep and records the smoothed loss after it
    (Lightning's `_LRCallback`). The only callback of the sweep's Trainer besides its progress bar: the
    user's callbacks and the module's `configure_callbacks()` do not run (as in Lightning, which swaps
    the Trainer's callbacks for this one).

    Smoothing: ``avg = beta * avg + (1 - beta) * loss``, ``smoothed = avg / (1 - beta ** n)`` at the
    sweep's n-th step (1-based), so a constant loss reads as itself from the first step (Lightning divides
    by ``1 - beta ** (n + 1)``, which halves the first points). With `early_stop_threshold` the sweep
    stops after a step whose smoothed loss exceeds the threshold times the best so far, or is not finite
    (a loss that turned NaN stays NaN in the average; Lightning would run the remaining steps on it).
    With gradient accumulation a step's loss is the mean over its window, and a short window at an epoch's
    end is a step too (Lightning 2.6's is its last micro-batch's loss divided by the accumulation, and it
    leaves that short window's step out of its results while its rate moves on).

    Under data parallel the loss is averaged over the ranks before it is smoothed, so every rank records
    the same curve, stops at the same step and suggests the same rate; their weights stay equal through
    the step's gradient all-reduce. A stop is agreed at the next step's check (the Trainer's rule: no
    rank stops alone), so the ranks run one step more, unrecorded.
    """

    def __init__(self, rates: list[float], early_stop_threshold: float | None, beta: float = 0.98) -> None:
        self.rates = rates
        self.early_stop_threshold = early_stop_threshold
        self.beta = beta
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self._avg_loss = 0.0
        self._best_loss = 0.0
        self._window: list[Any] = []  # the losses of the accumulation window so far
        self._rate_set_for: int | None = None  # the step whose rate the optimizer holds
        self.stopped = False
        # (step, rate, smoothed loss before it, best) where a loss near its best turned NaN or inf at once
        self.jumped_to_nonfinite: tuple[int, float, float, float] | None = None
        self.optimizer_rate: float | None = None  # the rate configure_optimizers gave (None: a schedule)
        self._optimizers: list[tuple[Any, Any, dict, bool]] = []  # (optimizer, state, schedules, initialized)
        self._loader: tuple[Any, dict, bool] | None = None  # (loader, its position, seeded by the sweep)

    def setup(self, trainer: Trainer, module: TrainModule, stage: str) -> None:
        # The module's configure_callbacks() joined the Trainer's just before: they would write (a
        # ModelCheckpoint) or keep counting (an EarlyStopping) through a sweep that is not training.
        # The progress bar stays (the sweep Trainer's, or one the module gave in its place).
        trainer.callbacks[:] = [cb for cb in trainer.callbacks if cb is self or isinstance(cb, ProgressBar)]

    def on_fit_start(self, trainer: Trainer, module: TrainModule) -> None:
        optimizers = _optimizers_in(trainer.optimizer)
        if trainer._manual and len(optimizers) > 1:
            raise ValueError(
                f"{type(module).__name__}.configure_optimizers() returned {len(optimizers)} optimizers for "
                "manual optimization, but the learning-rate finder sweeps one optimizer's rate (as "
                "Lightning's); find each network's rate with a module that trains it alone"
            )
        rate = optimizers[0].state.get("learning_rate")
        if "learning_rate" not in optimizers[0]._schedulers and isinstance(rate, mx.array) and rate.size == 1:
            self.optimizer_rate = float(rate.item())
        for optimizer in optimizers:
            # An optimizer kept by the module (made in __init__) is the next fit's too: its state and its
            # schedule are put back after the sweep (`restore`). Arrays are immutable: a copy of the
            # tree's containers is a snapshot.
            state = tree_map(lambda x: x, optimizer.state)
            self._optimizers.append((optimizer, state, dict(optimizer._schedulers), optimizer._initialized))
            # A schedule would set the rate again at every update (as ReduceLROnPlateau says of it).
            optimizer._schedulers.pop("learning_rate", None)
        loader = trainer.train_dataloader
        if callable(getattr(loader, "state_dict", None)) and callable(
            getattr(loader, "load_state_dict", None)
        ):
            # Its position (and a seed the sweep's Trainer gave it) is put back, so the next fit starts its
            # epoch 0 as it would have.
            seeded = any(loader is seeded for seeded in trainer._loaders_on_trainer_seed)
            self._loader = (loader, loader.state_dict(), seeded)

    def restore(self) -> None:
        """Put back the optimizer's state and schedules and the training loader's position (after the
        sweep's fit, however it ended)."""
        for optimizer, state, schedules, initialized in self._optimizers:
            # In place: a fit whose LearningRateFinder sweeps in on_fit_start built its compiled step on this
            # dict already (a new one would leave that step reading the sweep's traced arrays).
            optimizer.state.clear()
            optimizer.state.update(state)
            optimizer._initialized = initialized
            optimizer._schedulers.clear()
            optimizer._schedulers.update(schedules)
        if self._loader is not None:
            loader, position, seeded = self._loader
            if "shuffle" in position and isinstance(getattr(loader, "shuffle", None), bool):
                # Taken while overfit_batches had the loader unshuffled (train/overfit.py), which the fit
                # has put back since: the same loader's position, with its own setting.
                position = {**position, "shuffle": loader.shuffle}
            if seeded:
                position = {**position, "seed": None}
            loader.load_state_dict(position)
            if seeded:
                loader._seed = None  # (load_state_dict keeps a seed it is not given; set_seed takes no None)

    def on_train_epoch_start(self, trainer: Trainer, module: TrainModule) -> None:
        self._window = []

    def on_train_batch_start(self, trainer: Trainer, module: TrainModule, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if step != self._rate_set_for and step < len(self.rates):
            for optimizer in _optimizers_in(trainer.optimizer):
                optimizer.learning_rate = self.rates[step]  # the next compiled update reads it
            self._rate_set_for = step

    def on_train_batch_end(
        self, trainer: Trainer, module: TrainModule, outputs: dict[str, Any], batch: Any, batch_idx: int
    ) -> None:
        if self.stopped or outputs is None:  # (None: a batch the loader yielded as None, not trained)
            return  # (data parallel: the step that runs before the ranks agree to stop)
        if "loss" not in outputs:  # (a manual step may return none; every rank's step is the same code)
            raise ValueError(
                f"{type(module).__name__}.training_step returned no loss, which the learning-rate finder "
                "sweeps: return the loss (return loss, or a dict with 'loss') from the manual step"
            )
        self._window.append(outputs["loss"].array)
        if not outputs["stepped"]:
            return
        loss = mx.mean(mx.stack(self._window)) if len(self._window) > 1 else self._window[0]
        self._window = []
        loss = float(collectives.mean_across_ranks(loss.astype(mx.float32)).item())
        n = len(self.losses) + 1
        if not math.isfinite(loss) and self.jumped_to_nonfinite is None and n > 1:
            before = self.losses[-1]
            # A divergence grows before it overflows; a NaN from one step at a loss near its best is more
            # likely a batch or a loss with a NaN in it (Tuner.lr_find warns).
            if math.isfinite(before) and before <= 1.5 * self._best_loss:
                self.jumped_to_nonfinite = (n, self.rates[self._rate_set_for], before, self._best_loss)
        self._avg_loss = self.beta * self._avg_loss + (1 - self.beta) * loss
        smoothed = self._avg_loss / (1 - self.beta**n)
        self.lrs.append(self.rates[self._rate_set_for])
        self.losses.append(smoothed)
        threshold = self.early_stop_threshold
        if threshold is not None and n > 1:
            if not math.isfinite(smoothed) or smoothed > threshold * self._best_loss:
                self.stopped = trainer.should_stop = True
        if n == 1 or smoothed < self._best_loss:
            self._best_loss = smoothed
