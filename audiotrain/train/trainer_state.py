"""`TrainerState`: what `Trainer.state` returns, Lightning's `TrainerState` that is still the string it was.

Lightning's callbacks read `trainer.state.fn` ("fit", "validate", "test", "predict"), `.status`
("initializing", "running", "finished", "interrupted") and `.stage` ("train", "sanity_check", "validate",
"test", "predict" or None). `Trainer.state` was the status as a plain string ("finished"), so the state is a
`str` whose value is the status: `trainer.state == "finished"`, `str(trainer.state)`, a dict keyed by it
and JSON keep working. audiotrain's status has one value more than Lightning's: "failed" (a stage that
raised), where Lightning says "interrupted" for any exception; "interrupted" here is a stop signal (Ctrl-C)
that `fit` handled.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

#: Lightning's `TrainerStatus` values, and audiotrain's "failed".
STATUSES = ("initializing", "running", "finished", "interrupted", "failed")
#: Lightning's `TrainerFn` values: the Trainer method that runs (or ran last).
FUNCTIONS = ("fit", "validate", "test", "predict")
#: Lightning's `RunningStage` values: what runs now inside that method (None between stages).
STAGES = ("train", "sanity_check", "validate", "test", "predict")


class _EnumValue(str):
    """A status, fn or stage: the string, which also answers `.value` as Lightning's enums
    (`trainer.state.stage.value == "validate"` in a callback ported from Lightning)."""

    __slots__ = ()

    @property
    def value(self) -> str:
        return str.__str__(self)


def _enum_value(name: str | None) -> _EnumValue | None:
    return None if name is None else _EnumValue(name)


class TrainerState(str):
    """The Trainer's state when it was read: a `str` equal to `status`, with Lightning's `status`, `fn`
    and `stage` beside it. A snapshot: read `trainer.state` again for a later one."""

    __slots__ = ("_fn", "_stage")

    def __new__(cls, status: str = "initializing", fn: str | None = None, stage: str | None = None):
        if status not in STATUSES or fn not in (None, *FUNCTIONS) or stage not in (None, *STAGES):
            raise ValueError(f"TrainerState: no such state (status={status!r}, fn={fn!r}, stage={stage!r})")
        state = super().__new__(cls, status)
        state._fn, state._stage = fn, stage
        return state

    @property
    def status(self) -> str:
        return _EnumValue(str.__str__(self))

    @property
    def fn(self) -> str | None:
        return _enum_value(self._fn)

    @property
    def stage(self) -> str | None:
        return _enum_value(self._stage)

    @property
    def finished(self) -> bool:
        """Lightning's: the last stage ended without an error."""
        return self.status == "finished"

    @property
    def stopped(self) -> bool:
        """Lightning's: the last stage ended, however (audiotrain's "failed" too)."""
        return self.status in ("finished", "interrupted", "failed")

    def __str__(self) -> str:
        return self.status

    def __repr__(self) -> str:
        return f"TrainerState(status={self.status!r}, fn={self.fn!r}, stage={self.stage!r})"

    def __reduce__(self):  # (a copy or a pickle keeps fn and stage)
        return TrainerState, (self.status, self.fn, self.stage)


class StateTracker:
    """The Trainer's state as it changes, at the points Lightning 2.6 changes it: a method ("fit", ...)
    sets its `fn` and first `stage` and is "running" from before its `setup` hooks to after its `teardown`
    ones; it then is "finished", or where it raised "failed" (set before `on_exception`, as Lightning's
    "interrupted"), with no stage. A sanity check or a validation inside `fit` is a stage `within` it."""

    def __init__(self) -> None:
        self.status, self.fn, self.stage = "initializing", None, None

    def snapshot(self) -> TrainerState:
        return TrainerState(self.status, self.fn, self.stage)

    def begin(self, fn: str, stage: str) -> None:
        self.status, self.fn, self.stage = "running", fn, stage

    def end(self) -> None:
        """The method ends, however: a status still "running" (its `setup` or `teardown` raised) is
        "failed"."""
        self.stage = None
        if self.status == "running":
            self.status = "failed"

    def set_stage(self, stage: str, value: bool) -> None:
        """Lightning's setters (`trainer.training = True`): False leaves another stage as it is."""
        if value:
            self.stage = stage
        elif self.stage == stage:
            self.stage = None

    @contextlib.contextmanager
    def within(self, stage: str) -> Iterator[None]:
        """`stage` while the block runs, then the stage before it (a validation inside `fit` goes back to
        "train", as in Lightning)."""
        before, self.stage = self.stage, stage
        try:
            yield
        finally:
            self.stage = before


__all__ = ["FUNCTIONS", "STAGES", "STATUSES", "StateTracker", "TrainerState"]
