"""Learning-rate schedules: callables ``schedule(step) -> lr`` usable as an MLX optimizer's learning_rate.

Each schedule is built from pure ``mlx.core`` ops with no Python branching on the step, so it runs inside
``mx.compile`` when the optimizer calls it with its ``step`` array (an MLX optimizer evaluates
``learning_rate(step)`` *before* incrementing ``step``: the first update uses ``schedule(0)``). Called with
a Python int it returns a scalar ``mx.array`` too; ``float(schedule(step))`` gives a number.

The step is converted to float32 (exact up to 2**24 = 16.7 M steps). Past ``total_steps`` the
schedules hold their final value (torch's OneCycleLR raises there instead). `Trainer.fit` warns when it
starts where a `OneCycleScheduler` (or a warmup schedule with ``min_lr=0``) would end before the fit: its
final rate trains next to nothing. Size it with ``total_steps=self.trainer.estimated_stepping_batches`` in
``configure_optimizers``.

What a "step" is depends on where the schedule is used: as an optimizer's ``learning_rate`` (or a Lightning
``lr_scheduler`` with ``"interval": "step"``) it is the optimizer step; as a Lightning ``lr_scheduler``
without an interval (``([opt], [schedule])``, ``{"lr_scheduler": schedule}``: Lightning's default
``"interval": "epoch"``) it is the epoch, as for a torch scheduler stepped once per epoch (`IntervalSchedule`).

>>> schedule = WarmupCosineScheduler(peak_lr=1e-3, warmup_steps=100, total_steps=1000, min_lr=1e-5)
>>> optimizer = optim.AdamW(learning_rate=schedule)
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mlx.core as mx


def _step_array(step: Any) -> mx.array:
    """The step as a float32 scalar array; a negative Python step is an error (arrays are clamped at 0)."""
    if isinstance(step, mx.array):
        return mx.maximum(step.astype(mx.float32), 0.0)
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"a schedule's step must be an int or an mx.array, got {type(step).__name__}")
    if step < 0:
        raise ValueError(f"a schedule's step must be >= 0, got {step}")
    return mx.array(float(step), dtype=mx.float32)


def _check(
    name: str, value: Any, *, minimum: float = 0.0, integer: bool = False, strict: bool = False
) -> None:
    ok_type = (
        isinstance(value, numbers.Integral) if integer else isinstance(value, numbers.Real)
    ) and not isinstance(value, bool)
    if not ok_type or not math.isfinite(value) or value < minimum or (strict and value == minimum):
        kind = "an int" if integer else "a finite number"
        bound = f"> {minimum}" if strict else f">= {minimum}"
        raise ValueError(f"{name} must be {kind} {bound}, got {value!r}")


class LRScheduler:
    """Base class: a schedule is ``__call__(step) -> lr`` plus `to_dict` for logging."""

    name: str = "schedule"

    def __call__(self, step: Any) -> mx.array:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The schedule's name and arguments, for hyperparameter logging."""
        return {"name": self.name, **dataclasses.asdict(self)}  # type: ignore[call-overload]


def _warmup(step: mx.array, peak_lr: float, warmup_steps: int) -> mx.array:
    # Linear ramp (step + 1) / warmup_steps: the first update already moves the weights (a ramp starting
    # at exactly 0 wastes step 0), and the rate reaches peak_lr at step warmup_steps - 1.
    return peak_lr * mx.minimum((step + 1.0) / max(warmup_steps, 1), 1.0)


def _decay_progress(step: mx.array, warmup_steps: int, total_steps: int) -> mx.array:
    # Fraction of the decay phase done, in [0, 1]; it reaches 1 at total_steps.
    if total_steps == warmup_steps:  # no decay phase: drop to the final value at total_steps
        return (step >= total_steps).astype(mx.float32)
    return mx.clip((step - warmup_steps) / (total_steps - warmup_steps), 0.0, 1.0)


@dataclass(frozen=True)
class _WarmupDecay(LRScheduler):
    peak_lr: float
    warmup_steps: int
    total_steps: int
    min_lr: float = 0.0

    def __post_init__(self) -> None:
        cls = type(self).__name__
        _check(f"{cls} peak_lr", self.peak_lr, strict=True)
        _check(f"{cls} warmup_steps", self.warmup_steps, integer=True)
        _check(f"{cls} total_steps", self.total_steps, integer=True, minimum=1)
        _check(f"{cls} min_lr", self.min_lr)
        if self.warmup_steps > self.total_steps:
            raise ValueError(
                f"{cls} warmup_steps ({self.warmup_steps}) must be <= total_steps ({self.total_steps})"
            )
        if self.min_lr > self.peak_lr:
            raise ValueError(f"{cls} min_lr ({self.min_lr}) must be <= peak_lr ({self.peak_lr})")

    def _decay(self, progress: mx.array) -> mx.array:
        raise NotImplementedError

    def __call__(self, step: Any) -> mx.array:
        s = _step_array(step)
        decayed = self.min_lr + (self.peak_lr - self.min_lr) * self._decay(
            _decay_progress(s, self.warmup_steps, self.total_steps)
        )
        return mx.where(s < self.warmup_steps, _warmup(s, self.peak_lr, self.warmup_steps), decayed)


@dataclass(frozen=True)
class WarmupCosineScheduler(_WarmupDecay):
    """Linear warmup to ``peak_lr``, then cosine decay to ``min_lr`` at ``total_steps``.

    ``lr(s) = peak_lr * (s + 1) / warmup_steps`` for ``s < warmup_steps``, then
    ``min_lr + (peak_lr - min_lr) * (1 + cos(pi * p)) / 2`` with
    ``p = clip((s - warmup_steps) / (total_steps - warmup_steps), 0, 1)``.

    Parameters
    ----------
    peak_lr : float
        Rate at the end of warmup (> 0).
    warmup_steps : int
        Optimizer steps of linear warmup (0: none); at most ``total_steps``.
    total_steps : int
        Step at which the decay reaches ``min_lr`` (held afterwards).
    min_lr : float
        Final rate, in ``[0, peak_lr]``.
    """

    name = "warmup_cosine"

    def _decay(self, progress: mx.array) -> mx.array:
        return 0.5 * (1.0 + mx.cos(math.pi * progress))


@dataclass(frozen=True)
class WarmupLinearScheduler(_WarmupDecay):
    """Linear warmup to ``peak_lr``, then linear decay to ``min_lr`` at ``total_steps``.

    Same warmup and arguments as `WarmupCosineScheduler`; the decay is ``1 - p``.
    """

    name = "warmup_linear"

    def _decay(self, progress: mx.array) -> mx.array:
        return 1.0 - progress


@dataclass(frozen=True)
class StepLRScheduler(LRScheduler):
    """``initial_lr * gamma ** floor(step / step_size)``, as ``torch.optim.lr_scheduler.StepLR``.

    As the optimizer's learning rate its step is the optimizer step; returned as Lightning's
    ``([opt], [schedule])`` (interval "epoch", as torch's StepLR is usually stepped) it is the epoch.

    Parameters
    ----------
    initial_lr : float
        Rate for steps ``0 .. step_size-1`` (> 0).
    step_size : int
        Steps between decays (>= 1).
    gamma : float
        Multiplier applied every ``step_size`` steps (> 0).
    """

    initial_lr: float
    step_size: int
    gamma: float = 0.1
    name = "step"

    def __post_init__(self) -> None:
        _check("StepLRScheduler initial_lr", self.initial_lr, strict=True)
        _check("StepLRScheduler step_size", self.step_size, integer=True, minimum=1)
        _check("StepLRScheduler gamma", self.gamma, strict=True)

    def __call__(self, step: Any) -> mx.array:
        s = _step_array(step)
        return self.initial_lr * mx.power(mx.array(self.gamma, mx.float32), mx.floor(s / self.step_size))


@dataclass(frozen=True)
class ExponentialLRScheduler(LRScheduler):
    """``initial_lr * decay_rate ** step``, as ``torch.optim.lr_scheduler.ExponentialLR``; the step is the
    optimizer step or, returned as Lightning's ``([opt], [schedule])``, the epoch (as for `StepLRScheduler`).

    Parameters
    ----------
    initial_lr : float
        Rate at step 0 (> 0).
    decay_rate : float
        Per-step multiplier (> 0; below 1 decays, above 1 grows, e.g. for a learning-rate range test).
    """

    initial_lr: float
    decay_rate: float
    name = "exponential"

    def __post_init__(self) -> None:
        _check("ExponentialLRScheduler initial_lr", self.initial_lr, strict=True)
        _check("ExponentialLRScheduler decay_rate", self.decay_rate, strict=True)

    def __call__(self, step: Any) -> mx.array:
        # exp(step * log(rate)) rather than rate ** step: one fused elementwise op, same float32 result.
        return self.initial_lr * mx.exp(_step_array(step) * math.log(self.decay_rate))


@dataclass(frozen=True)
class OneCycleScheduler(LRScheduler):
    """The 1cycle policy (Smith & Topin 2018), as ``torch.optim.lr_scheduler.OneCycleLR`` (two phases).

    The rate rises from ``max_lr / div_factor`` to ``max_lr`` over the first ``pct_start`` of
    ``total_steps``, then anneals to ``max_lr / div_factor / final_div_factor`` at step ``total_steps - 1``
    (held afterwards). Momentum cycling is not included.

    Parameters
    ----------
    max_lr : float
        Peak rate (> 0).
    total_steps : int
        Length of the cycle in optimizer steps.
    pct_start : float
        Fraction of the cycle spent increasing, in (0, 1).
    div_factor : float
        ``initial_lr = max_lr / div_factor`` (> 0).
    final_div_factor : float
        ``final_lr = initial_lr / final_div_factor`` (> 0).
    anneal_strategy : {"cos", "linear"}
    """

    max_lr: float
    total_steps: int
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    anneal_strategy: str = "cos"
    name = "one_cycle"

    def __post_init__(self) -> None:
        _check("OneCycleScheduler max_lr", self.max_lr, strict=True)
        _check("OneCycleScheduler total_steps", self.total_steps, integer=True, minimum=1)
        _check("OneCycleScheduler div_factor", self.div_factor, strict=True)
        _check("OneCycleScheduler final_div_factor", self.final_div_factor, strict=True)
        if not (isinstance(self.pct_start, numbers.Real) and 0.0 < self.pct_start < 1.0):
            raise ValueError(f"OneCycleScheduler pct_start must be in (0, 1), got {self.pct_start!r}")
        if self.anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"OneCycleScheduler anneal_strategy must be 'cos' or 'linear', got {self.anneal_strategy!r}"
            )
        up, end = self._phase_ends()
        if not 0 < up < end:
            raise ValueError(
                f"OneCycleScheduler: total_steps={self.total_steps} with pct_start={self.pct_start} leaves "
                f"an empty phase (warm-up ends at step {up:g}, the cycle at {end}); use more steps or "
                f"another pct_start"
            )

    def _phase_ends(self) -> tuple[float, int]:
        # The same phase boundaries as PyTorch: the rise ends at pct_start * total - 1, the cycle at total - 1.
        return float(self.pct_start * self.total_steps) - 1.0, self.total_steps - 1

    def _anneal(self, start: float, end: float, pct: mx.array) -> mx.array:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (mx.cos(math.pi * pct) + 1.0)
        # Weighted sum, not start + (end - start) * pct: exact at both ends in float32 even when end << start.
        return start * (1.0 - pct) + end * pct

    def __call__(self, step: Any) -> mx.array:
        s = _step_array(step)
        up, end = self._phase_ends()
        initial = self.max_lr / self.div_factor
        final = initial / self.final_div_factor
        rise = self._anneal(initial, self.max_lr, mx.clip(s / up, 0.0, 1.0))
        fall = self._anneal(self.max_lr, final, mx.clip((s - up) / (end - up), 0.0, 1.0))
        return mx.where(s <= up, rise, fall)


@dataclass(frozen=True)
class IntervalSchedule(LRScheduler):
    """`schedule` stepped as Lightning steps an ``lr_scheduler`` with ``interval`` and ``frequency``, written
    as a function of the optimizer step (MLX evaluates a schedule inside the compiled update, from the
    optimizer's step counter, so the epoch is derived from it rather than counted by the loop).

    ``schedule(n)`` is used with ``n`` the number of times Lightning would have called ``scheduler.step()``
    before this update:

    - ``interval="epoch"``: once after every ``frequency``-th epoch, so ``n = epoch // frequency`` with
      ``epoch = step // steps_per_epoch``.
    - ``interval="step"``: after each update whose last batch has a 1-based index in the epoch that is a
      multiple of ``frequency`` (Lightning counts batches in the epoch, accumulated ones included); with
      ``frequency=1`` that is every update and ``n = step``.

    Parameters
    ----------
    schedule : callable
        ``schedule(n) -> lr`` (an audiotrain scheduler or any MLX-traceable callable).
    interval : {"epoch", "step"}
    frequency : int
        Lightning's ``frequency`` (>= 1).
    batches_per_epoch : int or None
        Training batches in an epoch (limits applied): needed unless ``interval="step"`` and
        ``frequency=1``. The epoch boundaries come from it, so a loader whose length changes between
        epochs shifts them.
    accumulate_grad_batches : int
        Batches per optimizer update (an epoch's last window may be shorter; it is one update).

    first_step, first_epoch : int
        The optimizer step at which epoch `first_epoch` began (0, 0 for a fit from scratch). A resumed fit
        counts its epochs from the one it resumes in (`Trainer` sets them after loading the checkpoint), so
        a resume whose epochs have another length (more data, other ranks or batch size) still evaluates
        the schedule at the epoch index, as Lightning's epoch counter does.

    skipped_updates : dict
        ``{"count": mx.array}``: the updates the Trainer's non-finite guard skipped since `first_step`. A
        skipped update does not advance the optimizer's step counter, but Lightning's loop still counts its
        batches (and its epoch), so the epoch and the batch position are derived from the updates tried,
        the counter's and the step's sum: every update of epoch ``e`` uses the rate of epoch ``e``, in a
        straight fit as in a resumed one. The compiled step counts into it (`skip_counters`); a plain
        per-step schedule (``interval="step"``, ``frequency=1``) reads only the step, so a skipped update
        delays it by one.
    """

    schedule: Callable[[Any], Any]
    interval: str = "epoch"
    frequency: int = 1
    batches_per_epoch: int | None = None
    accumulate_grad_batches: int = 1
    first_step: int = 0
    first_epoch: int = 0
    skipped_updates: dict = field(default_factory=lambda: {"count": mx.array(0, mx.uint64)}, compare=False)

    def __post_init__(self) -> None:
        if self.interval not in ("epoch", "step"):
            raise ValueError(f"IntervalSchedule interval must be 'epoch' or 'step', got {self.interval!r}")
        _check("IntervalSchedule frequency", self.frequency, integer=True, minimum=1)
        _check(
            "IntervalSchedule accumulate_grad_batches", self.accumulate_grad_batches, integer=True, minimum=1
        )
        if self.batches_per_epoch is None:
            if self.needs_epoch_length:
                raise ValueError(
                    f"IntervalSchedule(interval={self.interval!r}, frequency={self.frequency}) needs "
                    "batches_per_epoch (the epoch is derived from the optimizer step)"
                )
        else:
            _check("IntervalSchedule batches_per_epoch", self.batches_per_epoch, integer=True, minimum=1)

    @property
    def name(self) -> str:  # type: ignore[override]
        return getattr(self.schedule, "name", None) or type(self.schedule).__name__

    @property
    def needs_epoch_length(self) -> bool:
        return self.interval == "epoch" or self.frequency > 1

    @property
    def steps_per_epoch(self) -> int | None:
        """Optimizer updates in an epoch: every full window and a last, shorter one."""
        if self.batches_per_epoch is None:
            return None
        return -(-self.batches_per_epoch // self.accumulate_grad_batches)

    def scheduler_steps(self, step: Any) -> Any:
        """How many times Lightning would have stepped the schedule before update `step` (0-based)."""
        if not self.needs_epoch_length:
            return step
        per_epoch = self.steps_per_epoch
        since = self._updates_tried(step) - self.first_step
        epoch, update_in_epoch = self.first_epoch + since // per_epoch, since % per_epoch
        if self.interval == "epoch":
            return epoch // self.frequency
        # Full windows end at batch (i + 1) * accumulate: a multiple of frequency every `period` windows.
        # The epoch's last window ends at its last batch, which counts when that is a multiple too.
        period = self.frequency // math.gcd(self.accumulate_grad_batches, self.frequency)
        last_counts = int(self.batches_per_epoch % self.frequency == 0)
        steps_per_epoch = (per_epoch - 1) // period + last_counts
        return epoch * steps_per_epoch + update_in_epoch // period

    def _updates_tried(self, step: Any) -> Any:
        """Optimizer step `step` plus the updates skipped before it: the windows the loop has closed."""
        skipped = self.skipped_updates["count"]
        if isinstance(step, mx.array):
            return step + skipped.astype(step.dtype)
        return step + int(skipped.item())  # (a host-side read: the rate of the coming update)

    def __call__(self, step: Any) -> mx.array:
        return self.schedule(self.scheduler_steps(step))

    def anchored(self, first_step: int, first_epoch: int) -> IntervalSchedule:
        """This schedule with epoch `first_epoch` beginning at optimizer step `first_step`, counting skipped
        updates from there. The counter is this schedule's own container, emptied in place: a compiled step
        built before the anchoring holds it."""
        self.skipped_updates["count"] = mx.array(0, mx.uint64)
        return dataclasses.replace(self, first_step=int(first_step), first_epoch=int(first_epoch))

    def to_dict(self) -> dict[str, Any]:
        inner = self.schedule.to_dict() if hasattr(self.schedule, "to_dict") else {"name": self.name}
        return {**inner, "interval": self.interval, "frequency": self.frequency}


def skip_counters(optimizer: Any) -> list[dict]:
    """The `IntervalSchedule.skipped_updates` counters of `optimizer`'s learning-rate schedules (of each
    optimizer of a MultiOptimizer): state the compiled training step reads and counts its skipped updates
    into (`count_skipped_update`)."""
    parts = getattr(optimizer, "optimizers", None) or [optimizer]
    schedules = [getattr(part, "_schedulers", {}).get("learning_rate") for part in parts]
    return [s.skipped_updates for s in schedules if isinstance(s, IntervalSchedule) and s.needs_epoch_length]


def count_skipped_update(counters: list[dict], skipped: mx.array) -> None:
    """Add `skipped` (an int array, 1 when the guard skipped this update) to each of `counters`."""
    for counter in counters:
        counter["count"] = counter["count"] + skipped.astype(mx.uint64)


def held_rate_advice(fix: str, bound: str = "max_steps") -> str:
    """The end of a warning that a fit outlasts a learning-rate schedule (which holds its final rate from
    there): what torch does instead, `fix` (how to size the schedule), and the other way out."""
    return (
        "torch's OneCycleLR raises there ('Tried to step N times. The specified number of total steps is "
        f"M'). {fix}, or end the fit with the schedule (Trainer({bound}=total_steps))"
    )


def schedules_ended_before(optimizer: Any, last_step: int) -> list[tuple[str, int, int, float, str]]:
    """The learning-rate schedules of `optimizer` (each of a MultiOptimizer's) that end before its update
    `last_step` (0-based optimizer step) and then hold a rate that trains next to nothing: a
    `OneCycleScheduler` (its final rate is ``max_lr / div_factor / final_div_factor``), a warmup schedule
    with ``min_lr=0``. One that holds a ``min_lr > 0`` is left out: training on at a small rate after the
    decay is a common intent. Each as ``(description, total_steps, steps taken, rate held, unit)``, its steps
    counted as it is stepped: the unit is "epochs" for a Lightning ``interval: "epoch"`` lr_scheduler,
    "scheduler steps" for one stepped every ``frequency`` > 1 steps, else "optimizer steps"."""
    parts = getattr(optimizer, "optimizers", None) or [optimizer]
    ended = []
    for index, part in enumerate(parts):
        schedule = getattr(part, "_schedulers", {}).get("learning_rate")
        inner, steps = schedule, last_step
        if isinstance(inner, IntervalSchedule):
            inner, steps = inner.schedule, inner.scheduler_steps(last_step)
        if isinstance(inner, ArrayValuedSchedule):
            inner = inner.schedule
        if not isinstance(inner, OneCycleScheduler | _WarmupDecay):
            continue
        if isinstance(inner, _WarmupDecay) and inner.min_lr > 0:
            continue
        steps += 1  # (times it is evaluated: step 0 included)
        if steps > inner.total_steps:
            where = f" of {type(optimizer).__name__}'s optimizer {index}" if len(parts) > 1 else ""
            unit = "optimizer steps"
            if isinstance(schedule, IntervalSchedule) and schedule.needs_epoch_length:
                unit = "epochs" if schedule.interval == "epoch" else "scheduler steps"
            what = f"{type(inner).__name__}(total_steps={inner.total_steps}){where}"
            rate = float(inner(inner.total_steps).item())
            ended.append((what, inner.total_steps, int(steps), rate, unit))
    return ended


def schedule_name(schedule: Any) -> str:
    """What a message calls `schedule`: its ``name`` (an audiotrain schedule), else its function's or class's."""
    return (
        getattr(schedule, "name", None) or getattr(schedule, "__qualname__", None) or type(schedule).__name__
    )


@dataclass(frozen=True)
class ArrayValuedSchedule(LRScheduler):
    """`schedule`, a schedule that returns a Python number (a ``LambdaLR`` port such as ``lambda step: 0.1``),
    with its value as an ``mx.array``. MLX's optimizers store the rate as the schedule returns it, and all
    but Adam's update call ``.astype`` on it, so a number would fail there (`tried_schedule` wraps it)."""

    schedule: Callable[[Any], Any]

    @property
    def name(self) -> str:  # type: ignore[override]
        return schedule_name(self.schedule)

    def __call__(self, step: Any) -> mx.array:
        return mx.array(self.schedule(step), dtype=mx.float32)

    def to_dict(self) -> dict[str, Any]:
        return self.schedule.to_dict() if hasattr(self.schedule, "to_dict") else {"name": self.name}


# What MLX says when traced code reads an array's value (trace_guard's test too).
_TRACED_READ = "during function transformations"


def tried_schedule(schedule: Any, where: str, what: str = "learning-rate", compiled: bool = True) -> Any:
    """`schedule` called once as the optimizer will call it, on an ``mx.array`` step (traced by `mx.compile`
    when the training step is compiled), so that a schedule that cannot run there fails when `fit` starts,
    named, rather than inside the first training step.

    Returns `schedule` itself, or `ArrayValuedSchedule(schedule)` when it returns a number (an
    `IntervalSchedule` keeps its type, with its inner schedule wrapped). A schedule that reads its step's
    value (a Python ``if``, ``math.cos``, builtin ``min`` on the step) is refused with the ``mx`` ops to
    write it with; `where` (e.g. ``"M.configure_optimizers"``) and `what` (the scheduled parameter) name it.
    """
    if isinstance(schedule, IntervalSchedule):
        inner = tried_schedule(schedule.schedule, where, what, compiled)
        return schedule if inner is schedule.schedule else dataclasses.replace(schedule, schedule=inner)
    name = schedule_name(schedule)
    returned: list[type] = []

    def call(step: mx.array) -> mx.array:
        value = schedule(step)
        returned.append(type(value))
        return value if isinstance(value, mx.array) else mx.array(0.0)  # (a compiled function returns arrays)

    try:
        (mx.compile(call) if compiled else call)(mx.array(0, mx.uint64))  # MLX optimizers' step counter
    except Exception as error:
        if _TRACED_READ in str(error):
            raise TypeError(
                f"{where}: the {what} schedule {name} reads its step's value (a Python if/while, math.cos, "
                "builtin min/max, float() or int() on the step). MLX evaluates the schedule inside the "
                "compiled training step, where the step is an mx.array whose value is not known yet, so a "
                "schedule is written with mx ops: mx.where(step < 5, 0.1, 0.01) for a branch, mx.cos / "
                "mx.exp for math, mx.minimum / mx.maximum for min / max. Or use an audiotrain.train "
                "schedule (WarmupCosineScheduler, StepLRScheduler, ...) or mlx.optimizers' (cosine_decay, "
                "join_schedules, ...), or train with Trainer(compile=False)"
            ) from error
        if hasattr(error, "add_note"):  # (Python 3.11)
            error.add_note(f"{where}: raised by the {what} schedule {name}, called on step 0 as fit started")
        raise
    kind = returned[0]
    if issubclass(kind, mx.array):
        return schedule
    if issubclass(kind, numbers.Real):
        return ArrayValuedSchedule(schedule)
    raise TypeError(
        f"{where}: the {what} schedule {name} returned a {kind.__name__} for step 0; a schedule returns its "
        "value as an mx.array (or a number)"
    )
