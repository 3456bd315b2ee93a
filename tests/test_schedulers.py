"""Learning-rate schedules: closed forms, PyTorch's numbers (a committed fixture), and use inside a compiled
optimizer step."""

import itertools
import json
import math
import sys
from functools import partial
from pathlib import Path

import audiotrain  # noqa: F401
from audiotrain.train.schedulers import (
    ExponentialLRScheduler,
    IntervalSchedule,
    OneCycleScheduler,
    StepLRScheduler,
    WarmupCosineScheduler,
    WarmupLinearScheduler,
)

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from reference import require

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import make_scheduler_fixture  # noqa: E402

# The learning rates PyTorch's schedulers give (scripts/make_scheduler_fixture.py wrote them from torch).
TORCH_LRS = json.loads(make_scheduler_fixture.FIXTURE.read_text())["learning_rates"]

# audiotrain's schedule for each case of the fixture, with the same settings as PyTorch's there.
OURS = {
    "warmup_cosine": WarmupCosineScheduler(1e-3, 10, 50, 1e-5),
    "warmup_linear": WarmupLinearScheduler(5e-5, 6, 40, 1e-6),
    "step": StepLRScheduler(0.1, step_size=7, gamma=0.5),
    "exponential": ExponentialLRScheduler(0.1, decay_rate=0.97),
    "one_cycle_cos": OneCycleScheduler(
        max_lr=0.1,
        total_steps=100,
        pct_start=0.25,
        div_factor=10.0,
        final_div_factor=100.0,
        anneal_strategy="cos",
    ),
    "one_cycle_linear": OneCycleScheduler(
        max_lr=0.1,
        total_steps=100,
        pct_start=0.25,
        div_factor=10.0,
        final_div_factor=100.0,
        anneal_strategy="linear",
    ),
}
RTOL = {"step": 1e-6}  # float32 schedules: 1e-5 relative, exact where only halvings happen


def ours(schedule, n):
    return np.array([float(schedule(i)) for i in range(n)])


def test_warmup_cosine_closed_form():
    s = WarmupCosineScheduler(peak_lr=1e-3, warmup_steps=4, total_steps=20, min_lr=1e-5)
    lrs = ours(s, 30)
    np.testing.assert_allclose(lrs[:4], [2.5e-4, 5e-4, 7.5e-4, 1e-3], rtol=1e-6)
    mid = 4 + 8  # halfway through the decay: the mean of peak and min
    np.testing.assert_allclose(lrs[mid], (1e-3 + 1e-5) / 2, rtol=1e-6)
    np.testing.assert_allclose(lrs[20:], 1e-5, rtol=1e-6)  # held after total_steps
    expected = [1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + math.cos(math.pi * (k - 4) / 16)) for k in range(4, 21)]
    np.testing.assert_allclose(lrs[4:21], expected, rtol=1e-5)


def test_the_fixture_covers_every_case():
    assert sorted(TORCH_LRS) == sorted(OURS)


@pytest.mark.parametrize("case", sorted(OURS))
def test_schedules_match_the_learning_rates_pytorch_gives(case):
    reference = np.array(TORCH_LRS[case])
    np.testing.assert_allclose(ours(OURS[case], len(reference)), reference, rtol=RTOL.get(case, 2e-5))


@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_one_cycle_holds_the_final_rate_after_its_steps(strategy):
    lrs = ours(OURS[f"one_cycle_{strategy}"], 105)
    np.testing.assert_allclose(lrs[100:], 0.1 / 10 / 100, rtol=1e-5)


@pytest.mark.parity
def test_the_fixture_is_what_this_pytorch_gives():
    """The committed numbers are still PyTorch's: recomputed with the installed torch."""
    require("torch")
    live = make_scheduler_fixture.torch_learning_rates()
    assert sorted(live) == sorted(TORCH_LRS)
    for case, rates in live.items():
        np.testing.assert_allclose(rates, TORCH_LRS[case], rtol=1e-12, err_msg=case)


def test_no_warmup_and_all_warmup():
    np.testing.assert_allclose(float(WarmupCosineScheduler(1.0, 0, 10)(0)), 1.0)
    # One warmup step: the (step + 1) / warmup_steps ramp is at the peak from the first update on (a
    # warmup_ratio rounded up to one step gives this).
    one_step = WarmupCosineScheduler(1.0, 1, 10)
    np.testing.assert_allclose(ours(one_step, 3), [1.0, 1.0, 0.5 * (1 + np.cos(np.pi / 9))], rtol=1e-6)
    s = WarmupLinearScheduler(1.0, 10, 10)
    np.testing.assert_allclose(ours(s, 12), [0.1 * (k + 1) for k in range(10)] + [0.0, 0.0], atol=1e-6)


def test_array_steps_of_any_integer_dtype():
    s = WarmupCosineScheduler(1e-3, 100, 1000)
    for dtype in (mx.uint64, mx.int32, mx.float32):
        np.testing.assert_allclose(float(s(mx.array(350, dtype))), float(s(350)), rtol=1e-7)


def test_usable_inside_compiled_optimizer_update():
    """The schedule is evaluated in-graph from the optimizer's step: no retrace, the right rate each step."""
    schedule = WarmupCosineScheduler(peak_lr=0.1, warmup_steps=3, total_steps=10, min_lr=0.01)
    model = nn.Linear(2, 1)
    model.update({"weight": mx.zeros((1, 2)), "bias": mx.zeros((1,))})
    opt = optim.SGD(learning_rate=schedule)
    opt.init(model.trainable_parameters())  # state must exist before compiling over it
    state = [model.state, opt.state]
    traces = []

    @partial(mx.compile, inputs=state, outputs=state)
    def step(x):
        traces.append(1)  # runs only while tracing
        grads = {"weight": mx.ones((1, 2)), "bias": mx.ones((1,))}  # constant gradient: w -= lr each step
        opt.update(model, grads)
        return opt.learning_rate

    seen = []
    for _ in range(12):
        seen.append(float(step(mx.zeros(1))))
        mx.eval(state)
    assert len(traces) == 1
    # learning_rate after update k is schedule(k) (MLX evaluates the schedule before incrementing step)
    np.testing.assert_allclose(seen, ours(schedule, 12), rtol=1e-6)
    np.testing.assert_allclose(float(model.bias[0]), -ours(schedule, 12).sum(), rtol=1e-5)


def lightning_scheduler_steps(interval, frequency, batches_per_epoch, accumulate, epochs):
    """Lightning's loop, walked: before each optimizer update, how many times it has stepped the schedule.

    An update closes each window of `accumulate` batches and the epoch's last, shorter one. After an update
    a "step" schedule is stepped when ``(batch_idx + 1) % frequency == 0`` (batches, not updates); after an
    epoch an "epoch" schedule when ``(epoch + 1) % frequency == 0``."""
    stepped, before_each_update = 0, []
    for epoch in range(epochs):
        for batch_idx in range(batches_per_epoch):
            if (batch_idx + 1) % accumulate == 0 or batch_idx + 1 == batches_per_epoch:
                before_each_update.append(stepped)
                stepped += interval == "step" and (batch_idx + 1) % frequency == 0
        stepped += interval == "epoch" and (epoch + 1) % frequency == 0
    return before_each_update


@pytest.mark.parametrize("interval", ["step", "epoch"])
def test_an_interval_schedule_steps_where_lightnings_loop_would(interval):
    """Epochs that accumulation does not divide end with a short window (one update more than a floor
    division counts), and the epoch's last window, which ends at its last batch, steps a "step" schedule
    when the epoch's batches are a multiple of the frequency."""
    for batches_per_epoch, accumulate, frequency in itertools.product((6, 7, 8), (1, 2, 3, 4), (1, 2, 3)):
        schedule = IntervalSchedule(
            lambda n: n, interval, frequency, batches_per_epoch, accumulate_grad_batches=accumulate
        )
        expected = lightning_scheduler_steps(interval, frequency, batches_per_epoch, accumulate, epochs=3)
        got = [schedule.scheduler_steps(step) for step in range(len(expected))]
        assert got == expected, (batches_per_epoch, accumulate, frequency)


def test_an_interval_schedule_called_with_an_int_counts_the_skipped_updates_as_the_compiled_step_does():
    # Epochs of 2 updates; one update skipped (non-finite gradients): optimizer step 1 is the third batch
    # window tried, in epoch 1. A rate read on the host (schedule(step), to print or plot it) is the one the
    # compiled update uses, from its mx.array step counter.
    schedule = IntervalSchedule(StepLRScheduler(1.0, 1, 0.5), "epoch", batches_per_epoch=2)
    schedule.skipped_updates["count"] = mx.array(1, mx.uint64)
    assert float(schedule(1)) == float(schedule(mx.array(1, mx.uint64))) == 0.5


def test_to_dict_is_json_and_names_the_schedule():
    d = OneCycleScheduler(0.1, 100).to_dict()
    assert d["name"] == "one_cycle" and d["max_lr"] == 0.1 and d["total_steps"] == 100
    json.dumps([s.to_dict() for s in (WarmupCosineScheduler(1, 1, 2), StepLRScheduler(1, 1, 0.5))])


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: WarmupCosineScheduler(1e-3, 200, 100), "warmup_steps .200. must be <= total_steps .100."),
        (lambda: WarmupCosineScheduler(1e-3, -1, 100), "warmup_steps must be an int >= 0"),
        (lambda: WarmupLinearScheduler(1e-3, 0, 0), "total_steps must be an int >= 1"),
        (lambda: WarmupLinearScheduler(0.0, 0, 10), "peak_lr must be a finite number > 0"),
        (lambda: WarmupCosineScheduler(1e-3, 1, 10, min_lr=1e-2), "min_lr .0.01. must be <= peak_lr"),
        (lambda: WarmupCosineScheduler(float("nan"), 1, 10), "peak_lr must be a finite number"),
        (lambda: StepLRScheduler(0.1, 0, 0.5), "step_size must be an int >= 1"),
        (lambda: StepLRScheduler(0.1, 2.5, 0.5), "step_size must be an int"),
        (lambda: ExponentialLRScheduler(0.1, 0.0), "decay_rate must be a finite number > 0"),
        (lambda: OneCycleScheduler(0.1, 100, pct_start=1.0), r"pct_start must be in \(0, 1\)"),
        (lambda: OneCycleScheduler(0.1, 3, pct_start=0.3), "empty phase"),
        # The rise would end at step 0 (pct_start * total_steps - 1): a NaN rate at step 0 (torch divides
        # by 0 there).
        (lambda: OneCycleScheduler(1.0, 10, pct_start=0.1), "empty phase .warm-up ends at step 0"),
        (lambda: OneCycleScheduler(0.1, 100, anneal_strategy="cosine"), "'cos' or 'linear'"),
    ],
)
def test_bad_arguments_are_explained(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_steps_are_explained():
    s = StepLRScheduler(0.1, 10, 0.5)
    with pytest.raises(ValueError, match="step must be >= 0, got -1"):
        s(-1)
    with pytest.raises(TypeError, match="step must be an int or an mx.array"):
        s(1.5)
