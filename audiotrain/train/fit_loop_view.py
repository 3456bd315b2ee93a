"""`trainer.fit_loop`: Lightning's place for a fit's limits, which a notebook raises between two fits of
one Trainer (`trainer.fit_loop.max_epochs = 10`, the idiom Lightning's issues give, since its
`trainer.max_epochs` cannot be set). Here the limits live on the Trainer itself; this view reads and sets
them there, checked as `Trainer(...)` checks them. Its loop counters (`epoch_progress`, `epoch_loop`) are
read-only views of the fit's progress (train/loop_progress.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from audiotrain.train import flags
from audiotrain.train.loop_progress import EpochLoopView, LoopProgress, epoch_progress

if TYPE_CHECKING:
    from audiotrain.train.trainer import Trainer

_LIMITS = ("max_epochs", "max_steps", "min_epochs", "min_steps")


class FitLoopLimits:
    """The four limits of Lightning's `FitLoop`, as the Trainer's own attributes of the same names."""

    def __init__(self, trainer: Trainer):
        object.__setattr__(self, "_trainer", trainer)

    @property
    def epoch_progress(self) -> LoopProgress:
        """Lightning's counts of the fit's epochs (train/loop_progress.py), read-only."""
        return epoch_progress(self._trainer)

    @property
    def epoch_loop(self) -> EpochLoopView:
        """Lightning's training epoch loop: its batch counters (train/loop_progress.py), read-only."""
        return EpochLoopView(self._trainer)

    def __getattr__(self, name: str):
        if name in _LIMITS:
            return getattr(self._trainer, name)
        raise AttributeError(
            f"trainer.fit_loop has Lightning's limits ({', '.join(_LIMITS)}), epoch_progress and epoch_loop "
            f"here, not {name!r}: the Trainer's own attributes hold the rest (trainer.current_epoch, "
            "trainer.global_step, trainer.batch_in_epoch)"
        )

    def __setattr__(self, name: str, value) -> None:
        if name not in _LIMITS:
            raise AttributeError(f"trainer.fit_loop.{name}: only {', '.join(_LIMITS)} can be set here")
        if name.startswith("min_"):  # (checked as Trainer(min_epochs=...) does; None: no minimum)
            value = flags.non_negative_int_or_none(name, value)
        setattr(self._trainer, name, value)

    def __repr__(self) -> str:
        return "FitLoopLimits(" + ", ".join(f"{n}={getattr(self._trainer, n)!r}" for n in _LIMITS) + ")"
