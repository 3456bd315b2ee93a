"""`Timer`: stop training after a duration, and time each stage (Lightning's)."""

from __future__ import annotations

import datetime
import math
import time
from typing import TYPE_CHECKING, Any

from audiotrain.train import flags
from audiotrain.train.callback import Callback

if TYPE_CHECKING:
    from audiotrain.train.trainer import Trainer

#: The stages a Timer times (Lightning's `RunningStage` values with hooks that start and end them).
STAGES = ("train", "validate", "test", "predict")

_clock = time.monotonic  # (a module attribute: tests put a clock of their own here)


class Timer(Callback):
    """Lightning's: stop training once `duration` has elapsed, and time the stages.

    `duration`: "DD:HH:MM:SS", a `datetime.timedelta`, a dict of timedelta's keywords (``{"hours": 2}``), or
    None (only timing). `interval`: "step" checks after every training batch, "epoch" after each training
    epoch's end (and both at `fit` start, so a fit resumed past the duration stops at once). `verbose`
    prints "Time limit reached..." when it stops training (rank 0 under data parallel).

    `time_elapsed(stage)`, `time_remaining(stage)`, `start_time(stage)` and `end_time(stage)` take a stage of
    `STAGES` ("train" by default; "validate" includes the sanity check, as in Lightning). Training time
    includes the validations inside `fit`, and is carried over a resume in the checkpoint (this callback's
    `state_dict`, as Lightning's); the other stages' start again.

    The duration is parsed as `Trainer(max_time=...)` is, and the stop is a stop request
    (`trainer.should_stop`): under data parallel the ranks agree on it where they agree on every stop
    request (any rank's stops them all, at the next logging step or epoch end), and it waits for
    `min_epochs`, as Lightning's Timer does. `Trainer(max_time=...)` stays the Trainer's own limit (it
    counts the same training time but stops regardless of `min_epochs`); the two can be used together.
    Times are `time.monotonic()` seconds.
    """

    def __init__(
        self,
        duration: str | datetime.timedelta | dict[str, int] | None = None,
        interval: str = "step",
        verbose: bool = True,
    ):
        self._duration = flags.max_time(duration, owner="Timer", name="duration")
        if interval not in ("step", "epoch"):
            raise ValueError(
                f"Timer(interval={interval!r}): expected 'step' or 'epoch' (Lightning's Interval)"
            )
        if not isinstance(verbose, bool):
            raise ValueError(f"Timer(verbose={verbose!r}): expected True or False")
        self._interval, self._verbose = interval, verbose
        self._start_time: dict[str, float | None] = dict.fromkeys(STAGES)
        self._end_time: dict[str, float | None] = dict.fromkeys(STAGES)
        self._offset = 0.0  # training seconds of the runs a resumed fit continues

    @staticmethod
    def _stage(stage: str) -> str:
        if stage not in STAGES:
            raise ValueError(f"Timer: stage must be one of {', '.join(map(repr, STAGES))}, got {stage!r}")
        return stage

    def start_time(self, stage: str = "train") -> float | None:
        """When `stage` last started (`time.monotonic()` seconds), None if it has not."""
        return self._start_time[self._stage(stage)]

    def end_time(self, stage: str = "train") -> float | None:
        """When `stage` last ended (`time.monotonic()` seconds), None while it runs or if it has not."""
        return self._end_time[self._stage(stage)]

    def time_elapsed(self, stage: str = "train") -> float:
        """Seconds `stage` has run (to its end, or to now while it runs); training's include the runs a
        resumed fit continues."""
        start, end = self.start_time(stage), self.end_time(stage)
        offset = self._offset if stage == "train" else 0.0
        if start is None:
            return offset
        return (end if end is not None else _clock()) - start + offset

    def time_remaining(self, stage: str = "train") -> float | None:
        """Seconds of `duration` left (negative once past it), None without a duration."""
        if self._duration is None:
            return None
        return self._duration - self.time_elapsed(stage)

    def _start(self, stage: str) -> None:
        self._start_time[stage], self._end_time[stage] = _clock(), None

    def _end(self, stage: str) -> None:
        self._end_time[stage] = _clock()

    def on_train_start(self, trainer, module) -> None:
        self._start("train")

    def on_train_end(self, trainer, module) -> None:
        self._end("train")

    def on_validation_start(self, trainer, module) -> None:
        self._start("validate")

    def on_validation_end(self, trainer, module) -> None:
        self._end("validate")

    def on_test_start(self, trainer, module) -> None:
        self._start("test")

    def on_test_end(self, trainer, module) -> None:
        self._end("test")

    def on_predict_start(self, trainer, module) -> None:
        self._start("predict")

    def on_predict_end(self, trainer, module) -> None:
        self._end("predict")

    def on_fit_start(self, trainer, module) -> None:
        # After a resume's state is loaded, whatever the interval: a fit resumed past the duration stops.
        self._check_time_remaining(trainer)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self._interval == "step":
            self._check_time_remaining(trainer)

    def on_train_epoch_end(self, trainer, module) -> None:
        if self._interval == "epoch":
            self._check_time_remaining(trainer)

    def _check_time_remaining(self, trainer: Trainer) -> None:
        if self._duration is None or trainer.should_stop:
            return
        elapsed = self.time_elapsed("train")
        if elapsed >= self._duration:
            # A stop request: agreed across ranks with the others (StopRequests.agree_across_ranks).
            trainer.should_stop = True
            if self._verbose:
                shown = datetime.timedelta(seconds=int(elapsed))
                trainer._note(f"Time limit reached. Elapsed time is {shown}. Signaling Trainer to stop.")

    def state_dict(self) -> dict[str, Any]:
        return {"time_elapsed": {stage: self.time_elapsed(stage) for stage in STAGES}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("time_elapsed") if isinstance(state, dict) else None
        train = saved.get("train", 0.0) if isinstance(saved, dict) else None
        # Every stage's, though only train's is read: a damaged one is a damaged record, not to be passed on.
        seconds = list(saved.values()) if isinstance(saved, dict) else [None]
        if not all(
            not isinstance(v, bool) and isinstance(v, int | float) and 0 <= v < math.inf for v in seconds
        ):
            raise ValueError(
                "Timer: the checkpoint's Timer state must be {'time_elapsed': {'train': seconds >= 0, ...}}, "
                f"got {state!r}"
            )
        self._offset = float(train)
