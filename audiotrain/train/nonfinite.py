"""`NonFiniteWatch`: the Trainer's checks on non-finite training steps, outside the compiled step.

The step itself counts (train/step.py): with the guard (`nonfinite_guard=True`) a non-finite update is
skipped in-graph and `skipped_total` counts it; either way `nonfinite_streak` counts the non-finite steps in
a row and `max_nonfinite_streak` the longest streak since the last check. The watch reads those arrays
where the loop reads values anyway (a settled step, a logging step, an epoch's end), and stops the run once
`max_consecutive_nonfinite` steps in a row were non-finite. It reads the step's arrays each time it is
asked, since the Trainer rebuilds its step when freezing changes what trains.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from audiotrain._text import plural
from audiotrain.distributed import collectives
from audiotrain.train.checkpoint import flat
from audiotrain.train.transforms import all_finite

import mlx.core as mx

# What finds the batch: the compiled step only counts, and compile=False alone raises nothing for a NaN (it
# was the only advice here, and ran on with the same warning).
FINDING_THE_BATCH = (
    "Trainer(debug_lazy_eval=True) stops at the first batch whose loss is not finite, naming its epoch and "
    "index."
)


class NonFiniteStop(FloatingPointError):
    """The stop after `max_consecutive_nonfinite` non-finite steps: `where` says which steps, `checkpoint` is
    the last good state it saved (None without the guard or without checkpointing), so that a command line
    can say it in its own flags."""

    def __init__(self, message: str, where: str, checkpoint: Path | None):
        super().__init__(message)
        self.where, self.checkpoint = where, checkpoint

    def __reduce__(self) -> tuple:
        # An exception pickles as cls(*args), and args holds the message alone: a fit in a worker process
        # (a sweep's ProcessPoolExecutor) sent back a stop that failed to unpickle; copy.copy failed alike.
        return type(self), (str(self), self.where, self.checkpoint)


class NonFiniteWatch:
    """Stops a fit after `limit` non-finite steps in a row (`max_consecutive_nonfinite`), and says once a fit
    that updates were skipped. `guard`: `nonfinite_guard` (the step skips non-finite updates)."""

    def __init__(self, limit: int, guard: bool):
        self.limit = limit
        self.guard = guard
        # The updates skipped before the running fit; None once the fit has warned of its own skips.
        self._skips_before_fit: int | None = None

    def limit_reached(self, settled_streak: mx.array | None) -> bool:
        """Whether an evaluated step's streak (None: no step has settled yet) reached the limit."""
        return settled_streak is not None and settled_streak.item() >= self.limit

    def skipped_total(self, arrays: dict[str, mx.array]) -> int | None:
        """The non-finite updates the guard has skipped so far (None without the guard)."""
        if not self.guard:
            return None
        return int(arrays["skipped_total"].item())

    def start_fit(self, arrays: dict[str, mx.array]) -> None:
        """Count the skips of this fit from here (a resumed run's earlier skips were warned of then)."""
        self._skips_before_fit = self.skipped_total(arrays)

    def warn_of_skipped_updates(self, arrays: dict[str, mx.array], epoch: int, global_step: int) -> None:
        """Once a fit, at the first epoch end after a skipped update: a run whose updates are all skipped
        (NaN in the data, ids outside an embedding table under compile, too high a learning rate) shows
        only `loss=nan` otherwise, until `max_consecutive_nonfinite` steps in a row stop it."""
        before = self._skips_before_fit
        if before is None:
            return
        total = self.skipped_total(arrays)
        if total is None or total == before:
            return
        self._skips_before_fit = None  # once a fit
        if not collectives.is_main_process():
            return  # (the ranks skip the same updates, as they agree on them: one warning a job)
        warnings.warn(
            f"Trainer.fit: {total - before} optimizer update(s) up to epoch {epoch} (global step "
            f"{global_step}) were skipped because their loss or gradients were not finite; the "
            "`skipped_steps` series counts them. Check the data for NaN/Inf and out-of-range indices, lower "
            f"the learning rate, or set gradient_clip_val. {FINDING_THE_BATCH} (A check of your own that "
            "reads values in the step, of ids against a table's size, raises only under compile=False.)",
            stacklevel=2,  # (the line that asks: the Trainer's epoch end)
        )

    def check(self, arrays: dict[str, mx.array], global_step: int, save: Callable[[], Path] | None) -> None:
        """Raise FloatingPointError where the longest streak since the last check reached the limit. With the
        guard the weights are still finite then: `save` (None without checkpointing) writes the last good
        state first, and the message names where."""
        streak = int(arrays["max_nonfinite_streak"].item())
        arrays["max_nonfinite_streak"] = arrays["nonfinite_streak"]
        if streak < self.limit:
            return
        where = (
            f"{plural(streak, 'optimizer step')} in a row had a non-finite loss or gradients "
            f"(max_consecutive_nonfinite={self.limit}; found at global step {global_step})"
        )
        fixes = "Lower the learning rate, set gradient_clip_val, or check the data for NaN/Inf. "
        fixes += FINDING_THE_BATCH
        if not self.guard:
            raise NonFiniteStop(
                f"{where}, and with nonfinite_guard=False those updates were applied: the weights are likely "
                f"non-finite now. {fixes} Trainer(nonfinite_guard=True) skips such updates instead.",
                where,
                None,
            )
        path = None
        if save is not None:
            # The streak starts again in a run resumed from this checkpoint (with a lower learning rate or
            # mended data): counted on, it would stop that run again at its first step.
            arrays["nonfinite_streak"] = arrays["max_nonfinite_streak"] = mx.array(0, mx.int32)
            path = save()
        raise NonFiniteStop(
            f"{where}; those updates were skipped, so the weights are still finite. {fixes}"
            + (f" The last good state is saved in {path}." if path else ""),
            where,
            path,
        )


def debug_check(
    loss: mx.array, parameters: Any, epoch: int, batch_idx: int, streak: mx.array | None = None
) -> None:
    """`debug_lazy_eval`: after an eagerly evaluated step, name a non-finite loss, gradients that were not
    finite (`streak`, the step's non-finite streak, above 0 with a finite loss), or the first parameter that
    turned non-finite."""
    if not math.isfinite(loss.item()):
        raise FloatingPointError(
            f"debug_lazy_eval: loss is {loss.item()} at epoch {epoch}, batch {batch_idx}"
        )
    # A NaN made in the backward alone (sqrt or log of 0, 0/0 in a custom op) leaves the loss finite, and the
    # guard skips its update, so no parameter turns non-finite: without this the debug run trained on.
    if streak is not None and streak.item() > 0:
        raise FloatingPointError(
            f"debug_lazy_eval: the gradients are not finite at epoch {epoch}, batch {batch_idx} (the loss, "
            f"{loss.item():.6g}, is); the update was skipped. Look in the step for a sqrt, log or division "
            "whose input can be 0, as Lightning's detect_anomaly would name"
        )
    for name, value in flat(parameters).items():
        if not bool(all_finite(value).item()):
            raise FloatingPointError(
                f"debug_lazy_eval: parameter {name!r} became non-finite after epoch {epoch}, "
                f"batch {batch_idx}"
            )


__all__ = ["NonFiniteStop", "NonFiniteWatch", "debug_check"]
