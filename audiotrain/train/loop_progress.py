"""Lightning's loop progress counters (`trainer.fit_loop.epoch_progress`, `.epoch_loop.batch_progress`,
`.epoch_loop.batch_idx`, ...), as read-only views of the fit's own `Progress` (epoch, batch_in_epoch,
total_batches, global_step), so that a resumed fit reads them as the uninterrupted one does.

Lightning counts each batch (and epoch) four times: `ready` as it is fetched, `started` and `processed` around
its step, `completed` after its end hooks. Which of them has counted it yet depends on the hook that reads
them; the values below are the ones Lightning 2.6.6 shows in each hook (measured, tests/test_loop_progress.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from audiotrain.train.trainer import Trainer


@dataclass(frozen=True)
class Counts:
    """One of Lightning's `_ReadyCompletedTracker`s: how many were fetched, started, processed, completed."""

    ready: int
    started: int
    processed: int
    completed: int


@dataclass(frozen=True)
class LoopProgress:
    """Lightning's `_Progress`: `current` (this epoch's, or this fit's for the epochs) and `total`."""

    current: Counts
    total: Counts


@dataclass(frozen=True)
class BatchProgress(LoopProgress):
    is_last_batch: bool


def _hook(trainer: Trainer) -> str | None:
    running = trainer._running_hook
    return running[0] if running else None


def _last_epoch_batches(trainer: Trainer) -> int:
    if trainer._last_epoch_batches is not None:
        return trainer._last_epoch_batches
    n = trainer.num_training_batches  # (a fit resumed at an epoch's start)
    return int(n) if n != math.inf else 0


def epoch_progress(trainer: Trainer) -> LoopProgress:
    """The epoch on its way counts as ready (and started) from its `on_train_epoch_start`, processed in its
    `on_train_epoch_end`, completed once that has run. (An epoch max_steps cuts stays open here, where
    Lightning's counts it completed.)"""
    e = trainer.progress.epoch
    hook = _hook(trainer)
    # (an epoch left open by a stop inside it, a resumed fit's before it goes on: started, not processed,
    # as Lightning's restored counts read in on_train_start)
    if not (trainer._in_epoch or trainer.progress.batch_in_epoch > 0):
        counts = Counts(e, e, e, e)
    elif hook == "on_train_epoch_start":
        counts = Counts(e + 1, e, e, e)
    elif hook == "on_train_epoch_end":
        counts = Counts(e + 1, e + 1, e + 1, e)
    else:
        counts = Counts(e + 1, e + 1, e, e)
    return LoopProgress(counts, counts)  # (Lightning's `current` of a fit's epochs is its total)


def batch_progress(trainer: Trainer) -> BatchProgress:
    """A batch counts as ready from its `on_train_batch_start` and completed once its `on_train_batch_end`
    has run; the epoch's counts stay the last epoch's until the next one's first batch."""
    progress = trainer.progress
    b, t = progress.batch_in_epoch, progress.total_batches
    hook = _hook(trainer)
    if hook == "on_train_batch_start":  # (not yet counted in batch_in_epoch)
        current, total = Counts(b + 1, b, b, b), Counts(t + 1, t, t, t)
    elif hook == "on_train_batch_end":  # (counted, its end hooks running)
        current, total = Counts(b, b, b, b - 1), Counts(t, t, t, t - 1)
    else:
        if b == 0 and t > 0:  # between epochs: the last one's batches
            b = _last_epoch_batches(trainer)
        current, total = Counts(b, b, b, b), Counts(t, t, t, t)
    return BatchProgress(current, total, trainer._is_last_batch)


class EvaluationLoopView:
    """Lightning's evaluation loop (`trainer.validate_loop`, `trainer.test_loop`, and fit's
    `trainer.fit_loop.epoch_loop.val_loop`): its `batch_progress`, read-only. `current` counts the running
    (or last) run's batches, `total` every run's of this Trainer (a fit's validation: that run's)."""

    def __init__(self, trainer: Trainer, key: str, stage: str, missing: AttributeError):
        object.__setattr__(self, "_where", (trainer, key, stage, missing))

    @property
    def batch_progress(self) -> LoopProgress:
        trainer, key, stage, _ = self._where
        c, t = trainer.evaluation.batches_done.get(key, (0, 0))
        hook = _hook(trainer)
        name = {"val": "validation", "test": "test"}[stage]
        if hook == f"on_{name}_batch_start":
            current, total = Counts(c + 1, c, c, c), Counts(t + 1, t, t, t)
        elif hook == f"on_{name}_batch_end":  # (counted once its end hooks ran)
            current, total = Counts(c + 1, c + 1, c + 1, c), Counts(t + 1, t + 1, t + 1, t)
        else:
            current, total = Counts(c, c, c, c), Counts(t, t, t, t)
        return LoopProgress(current, total)

    def __getattr__(self, name: str):
        raise self._where[3]

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(f"{name} of Lightning's evaluation loop is read-only here: the stage counts it")


@dataclass(frozen=True)
class StepCounts:
    """Lightning's `_ReadyCompletedTracker` of optimizer steps (ready and completed differ only inside the
    step, in `on_before_optimizer_step`, which runs inside the compiled update here)."""

    ready: int
    completed: int


@dataclass(frozen=True)
class StepProgress:
    current: StepCounts  # this epoch's
    total: StepCounts


@dataclass(frozen=True)
class OptimizerSteps:
    step: StepProgress


@dataclass(frozen=True)
class OptimizerProgress:
    """Lightning's `automatic_optimization.optim_progress`: its `optimizer_steps` (the optimizer steps taken,
    `trainer.global_step` of an automatic fit; 0 in a manual one, as Lightning's) and `optimizer.step`."""

    optimizer_steps: int
    optimizer: OptimizerSteps


def _steps_this_epoch(trainer: Trainer) -> int:
    """The optimizer steps of the epoch's batches: its closed accumulation windows (a short last one is one
    update); between epochs the last one's, as Lightning's `current` until the next epoch's first batch."""
    progress = trainer.progress
    b = progress.batch_in_epoch
    if b == 0 and progress.total_batches > 0 and _hook(trainer) != "on_train_batch_start":
        b = _last_epoch_batches(trainer)
        return math.ceil(b / trainer.accumulate_grad_batches)
    return math.ceil((b - progress.micro_batches) / trainer.accumulate_grad_batches)


@dataclass(frozen=True)
class AutomaticOptimization:
    optim_progress: OptimizerProgress


@dataclass(frozen=True)
class ManualOptimization:
    """Lightning's `manual_optimization.optim_step_progress`: the `opt.step()` calls of a manual fit."""

    optim_step_progress: LoopProgress


class EpochLoopView:
    """`trainer.fit_loop.epoch_loop`: Lightning's training epoch loop's counters, read-only."""

    def __init__(self, trainer: Trainer):
        object.__setattr__(self, "_trainer", trainer)

    @property
    def batch_progress(self) -> BatchProgress:
        return batch_progress(self._trainer)

    @property
    def batch_idx(self) -> int:
        """The index of the batch in the epoch (the last one's after it; -1 before the fit's first)."""
        return self.batch_progress.current.ready - 1

    @property
    def total_batch_idx(self) -> int:
        """The index of the batch among every batch of the fit (its resumed run's too)."""
        return self.batch_progress.total.ready - 1

    @property
    def val_loop(self) -> EvaluationLoopView:
        """Lightning's validation loop inside fit (the sanity check's and each validation's batches)."""
        from audiotrain.train.trainer import _no_evaluation_loop

        missing = _no_evaluation_loop("fit_loop.epoch_loop.val_loop", "val")
        return EvaluationLoopView(self._trainer, "fit", "val", missing)

    @property
    def _batches_that_stepped(self) -> int:
        """Lightning's count of the batches that stepped (its loggers' step): a batch counts once its end
        hooks and the validation after it ran; every batch of a manual fit counts."""
        t = self._trainer
        stepped = t.progress.total_batches if t._manual else t.global_step
        return stepped - t._ending_a_stepped_batch

    @property
    def automatic_optimization(self) -> AutomaticOptimization:
        t = self._trainer
        if t._manual:
            steps = current = 0
        else:
            steps, current = t.global_step, _steps_this_epoch(t)
        counts = StepProgress(StepCounts(current, current), StepCounts(steps, steps))
        return AutomaticOptimization(OptimizerProgress(steps, OptimizerSteps(counts)))

    @property
    def manual_optimization(self) -> ManualOptimization:
        s = self._trainer.global_step if self._trainer._manual else 0
        counts = Counts(s, s, s, s)
        return ManualOptimization(LoopProgress(counts, counts))

    def __getattr__(self, name: str):
        if name == "scheduler_progress":  # (no scheduler steps to count: the schedule is the step's function)
            from audiotrain.train.trainer import _no_scheduler_list

            raise _no_scheduler_list("fit_loop.epoch_loop.scheduler_progress")
        raise AttributeError(
            f"trainer.fit_loop.epoch_loop has Lightning's batch_progress, batch_idx, total_batch_idx, val_loop, "
            f"automatic_optimization.optim_progress.optimizer_steps and manual_optimization"
            f".optim_step_progress here, not {name!r}: read trainer.current_epoch, trainer.global_step, "
            "trainer.batch_in_epoch"
        )

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(f"trainer.fit_loop.epoch_loop.{name} is read-only: the fit's progress sets it")
