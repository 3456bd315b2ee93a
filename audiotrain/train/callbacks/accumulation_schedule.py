"""`GradientAccumulationScheduler`: Lightning's `accumulate_grad_batches` set per epoch."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from audiotrain.train.callback import Callback
from audiotrain.train.schedulers import IntervalSchedule

if TYPE_CHECKING:
    from audiotrain.train.module import TrainModule
    from audiotrain.train.trainer import Trainer


class GradientAccumulationScheduler(Callback):
    """Change `accumulate_grad_batches` at epoch starts: `scheduling={0: 8, 4: 4}` averages the gradients of
    8 batches per optimizer step in epochs 0-3 and of 4 from epoch 4 on (Lightning's callback, its
    `scheduling` argument and `get_accumulate_grad_batches(epoch)`). Without an entry for epoch 0 the
    first epochs accumulate 1 batch, as in Lightning.

    Lightning sets `trainer.accumulate_grad_batches` in `on_train_epoch_start`; so does this callback, and
    the Trainer rebuilds its compiled step there (the accumulation window lives in the graph, as a changed
    trainable set does). A resumed fit takes the value of the checkpoint's epoch from the schedule, so a
    checkpoint saved inside a window resumes exactly; one whose open window has another size than the
    schedule's (a schedule changed for the resume) ends that epoch with the checkpoint's. What Lightning
    refuses is refused: a Trainer whose own `accumulate_grad_batches` is not 1 (one of the two would be
    ignored), an epoch that is not an int >= 0, a factor that is not an int >= 1. Where it differs: an
    `lr_scheduler` stepped per epoch (or with a `frequency`), which audiotrain derives from the optimizer
    step at a fixed number of updates an epoch, is refused with it; and
    `trainer.estimated_stepping_batches` counts the Trainer's `accumulate_grad_batches` (1), as Lightning's
    does.
    """

    def __init__(self, scheduling: dict[int, int]):
        if not isinstance(scheduling, dict):
            raise TypeError(
                "GradientAccumulationScheduler: scheduling must be a dict {epoch: accumulate_grad_batches}, "
                f"e.g. {{0: 8, 4: 4}}, got {type(scheduling).__name__}"
            )
        if not scheduling:
            raise TypeError(
                "GradientAccumulationScheduler: scheduling is empty; give {epoch: accumulate_grad_batches}, "
                "e.g. {0: 8, 4: 4}"
            )
        epochs = [key for key in scheduling if type(key) is not int or key < 0]
        if epochs:
            raise ValueError(
                "GradientAccumulationScheduler: scheduling's keys are epochs, ints >= 0; got "
                f"{', '.join(map(repr, epochs))} (in {scheduling})"
            )
        factors = [value for value in scheduling.values() if type(value) is not int or value < 1]
        if factors:
            raise ValueError(
                "GradientAccumulationScheduler: scheduling's values are accumulate_grad_batches, ints >= 1; "
                f"got {', '.join(map(repr, factors))} (in {scheduling})"
            )
        self.scheduling = dict(scheduling)
        self.scheduling.setdefault(0, 1)  # (Lightning's: the epochs before the first key accumulate 1)
        self.epochs = sorted(self.scheduling)

    def going_to_accumulate_grad_batches(self) -> bool:
        """Whether any epoch accumulates more than one batch (Lightning's name)."""
        return any(value > 1 for value in self.scheduling.values())

    def get_accumulate_grad_batches(self, epoch: int) -> int:
        """The `accumulate_grad_batches` of `epoch` (0-based)."""
        return self.scheduling[max(e for e in self.epochs if e <= epoch)]

    def setup(self, trainer: Trainer, module: TrainModule, stage: str) -> None:
        if stage != "fit":
            return
        if not module.automatic_optimization:
            raise RuntimeError(
                f"GradientAccumulationScheduler with {type(module).__name__}.automatic_optimization = False: "
                "a manual step accumulates by itself (gradients add up until opt.zero_grad()), as Lightning "
                "says; remove the callback, or step every N batches in training_step"
            )
        if trainer.accumulate_grad_batches != 1:
            raise ValueError(
                f"Trainer(accumulate_grad_batches={trainer.accumulate_grad_batches}) and a "
                "GradientAccumulationScheduler: the callback sets it at each epoch. Either remove the "
                "callback or set accumulate_grad_batches=1 (as Lightning asks)"
            )

    def on_fit_start(self, trainer: Trainer, module: TrainModule) -> None:
        optimizer = trainer.optimizer
        parts = getattr(optimizer, "optimizers", None) or [optimizer]
        for part in parts:
            schedule = getattr(part, "_schedulers", {}).get("learning_rate")
            if isinstance(schedule, IntervalSchedule) and schedule.needs_epoch_length:
                raise ValueError(
                    f"GradientAccumulationScheduler with an lr_scheduler stepped with 'interval': "
                    f"{schedule.interval!r}, 'frequency': {schedule.frequency}: audiotrain derives that "
                    "schedule's epoch from the optimizer step at a fixed number of updates an epoch, which "
                    "the callback changes. Return a per-step schedule ({'scheduler': s, 'interval': 'step'}) "
                    "or set the rate per epoch in a callback"
                )

    def on_restore_structure(self, trainer: Trainer, module: TrainModule, checkpoint: dict[str, Any]) -> None:
        """The window the checkpoint's run trained with when it saved (the step's saved state may hold one
        open); the next epoch start sets the schedule's."""
        saved = checkpoint.get("config", {}).get("trainer", {}).get("accumulate_grad_batches")
        if type(saved) is int and saved >= 1:
            trainer.accumulate_grad_batches = saved

    def on_train_epoch_start(self, trainer: Trainer, module: TrainModule) -> None:
        scheduled = self.get_accumulate_grad_batches(trainer.current_epoch)
        done = trainer.progress.micro_batches  # > 0 only in a fit resumed inside a window
        if done and scheduled != trainer.accumulate_grad_batches:
            # The open window's gradients are summed for its own size: it ends its epoch with the
            # checkpoint's value, as the README promises, and the schedule takes over at the next epoch.
            # (Every rank is as far: one warning for the job, from rank 0.)
            if trainer.is_global_zero:
                warnings.warn(
                    f"GradientAccumulationScheduler: the checkpoint resumed holds a window of "
                    f"{trainer.accumulate_grad_batches} batches ({done} done) in epoch "
                    f"{trainer.current_epoch}, where the GradientAccumulationScheduler's {scheduled} "
                    f"differs: epoch {trainer.current_epoch} ends with {trainer.accumulate_grad_batches} "
                    f"batches a step, the schedule's values start from epoch {trainer.current_epoch + 1}",
                    stacklevel=2,
                )
            return
        trainer.accumulate_grad_batches = scheduled

    def teardown(self, trainer: Trainer, module: TrainModule, stage: str) -> None:
        if stage == "fit":
            trainer.accumulate_grad_batches = 1  # the Trainer's own, for its next fit


__all__ = ["GradientAccumulationScheduler"]
