"""The in-graph skip of non-finite updates: the inlined Adam path is bitwise MLX's update on finite
steps and bitwise a no-op on skipped ones, compiled or not, for every optimizer it claims."""

from functools import partial

from audiotrain import TrainModule
from audiotrain.train.guarded_update import can_inline, guarded_update

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from exactness import assert_same_numbers
from mlx.utils import tree_flatten


class Net(TrainModule):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 8)
        self.b = nn.Linear(8, 3, bias=False)

    def __call__(self, x):
        return self.b(nn.relu(self.a(x)))


def schedule(step):
    return 1e-2 * mx.minimum(step.astype(mx.float32) + 1, 4.0) / 4.0


OPTIMIZERS = {
    "adamw": lambda: optim.AdamW(learning_rate=1e-2, weight_decay=0.05),
    "adam": lambda: optim.Adam(learning_rate=3e-3, betas=[0.8, 0.95]),
    # A non-default eps: the inlined arithmetic must take the optimizer's, with and without bias correction.
    "adam-eps": lambda: optim.Adam(learning_rate=1e-2, eps=1e-3),
    "adamw-bias-corrected-eps": lambda: optim.AdamW(1e-2, eps=1e-3, bias_correction=True),
    "adamw-scheduled": lambda: optim.AdamW(learning_rate=schedule),
    "adam-bias-corrected": lambda: optim.Adam(learning_rate=1e-2, bias_correction=True),
    # torch.optim.AdamW's update (what the declarative config builds): on the inlined path too.
    "adamw-bias-corrected-scheduled": lambda: optim.AdamW(schedule, weight_decay=0.01, bias_correction=True),
    "multi": lambda: optim.MultiOptimizer(
        [optim.Adam(1e-3, bias_correction=True), optim.SGD(1e-2, momentum=0.9)],
        [lambda path, _: path.startswith("a.")],
    ),
    "sgd-momentum": lambda: optim.SGD(learning_rate=1e-2, momentum=0.9, weight_decay=1e-3),
    "lion": lambda: optim.Lion(learning_rate=1e-3),
}


def snapshot(model, opt):
    flat = dict(tree_flatten(model.trainable_parameters()))
    flat.update({f"opt.{k}": v for k, v in tree_flatten(opt.state)})
    # bf16 has no numpy dtype: compare its bits
    return {k: np.array(v.view(mx.uint16) if v.dtype == mx.bfloat16 else v) for k, v in flat.items()}


def run(make_opt, guarded: bool, poisoned_steps=(), compile_=True, steps=6, dtype=mx.float32):
    mx.random.seed(0)
    model = Net()
    model.set_dtype(dtype)
    opt = make_opt()
    opt.init(model.trainable_parameters())
    xs = mx.random.normal((6, 5, 6)).astype(dtype)  # the same data whatever `steps` is
    state = [model.state, opt.state]

    def step(x, poison):
        def loss_fn(m):
            return mx.mean(m(x) ** 2) * poison

        loss, grads = nn.value_and_grad(model, loss_fn)(model)
        if guarded:
            finite = mx.isfinite(loss)
            guarded_update(model, opt, grads, finite)
        else:
            opt.update(model, grads)
        return loss

    if compile_:
        step = partial(mx.compile, inputs=state, outputs=state)(step)
    for i in range(steps):
        poison = mx.array(float("nan") if i in poisoned_steps else 1.0, dtype)
        mx.eval(step(xs[i], poison), state)
    return snapshot(model, opt)


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert_same_numbers(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("compile_", [False, True])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_finite_steps_equal_the_optimizers_own_update(name, compile_):
    make = OPTIMIZERS[name]
    assert_same(run(make, guarded=True, compile_=compile_), run(make, guarded=False, compile_=compile_))


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_a_skipped_step_changes_nothing(name):
    make = OPTIMIZERS[name]
    # Steps 0,1 then a poisoned step 2: the state after 3 calls equals the state after 2 clean steps.
    skipped = run(make, guarded=True, poisoned_steps={2}, steps=3)
    clean = run(make, guarded=False, steps=2)
    assert_same(skipped, clean)


@pytest.mark.parametrize("name", ["adam-bias-corrected", "adamw-bias-corrected-scheduled", "multi"])
def test_a_skipped_first_step_changes_nothing(name):
    # Bias correction divides by 1 - b1^t: t must not be the skipped step's 0 (0 * inf would be NaN).
    make = OPTIMIZERS[name]
    assert_same(run(make, guarded=True, poisoned_steps={0}, steps=1), run(make, guarded=False, steps=0))
    later = run(make, guarded=True, poisoned_steps={0}, steps=3)
    assert all(np.isfinite(v).all() for v in later.values())
    assert not np.array_equal(later["a.weight"], run(make, guarded=False, steps=0)["a.weight"])


@pytest.mark.parametrize("name", ["adamw", "adam"])
@pytest.mark.slow
def test_bf16_true_parameters_take_the_inlined_path_exactly(name):
    make = OPTIMIZERS[name]
    bf16 = dict(dtype=mx.bfloat16)
    assert_same(run(make, guarded=True, **bf16), run(make, guarded=False, **bf16))
    assert_same(
        run(make, guarded=True, poisoned_steps={2}, steps=3, **bf16),
        run(make, guarded=False, steps=2, **bf16),
    )
    moments = {k: v for k, v in run(make, guarded=True, **bf16).items() if k.endswith((".m", ".v"))}
    assert moments and all(v.dtype.itemsize == 2 for v in moments.values())  # not promoted


def test_inlined_path_is_taken_only_where_it_is_exact():
    assert can_inline(optim.AdamW(1e-3))
    assert can_inline(optim.Adam(1e-3))
    assert can_inline(optim.AdamW(schedule))
    assert can_inline(optim.Adam(1e-3, bias_correction=True))
    assert not can_inline(optim.MultiOptimizer([optim.Adam(1e-3), optim.Adam(1e-2)], [lambda *_: True]))
    assert not can_inline(optim.SGD(1e-3, momentum=0.9))

    class MyAdam(optim.Adam):
        pass

    assert not can_inline(MyAdam(1e-3))  # a subclass may change the rule


def test_constraint_hook_is_undone_on_a_skipped_step():
    class Clamped(Net):
        def on_after_optimizer_step(self):
            self.b.weight = self.b.weight * 0.5  # not idempotent: must not run on a skip

    mx.random.seed(0)
    model = Clamped()
    opt = optim.AdamW(1e-2)
    opt.init(model.trainable_parameters())
    before = snapshot(model, opt)
    grads = {"a": {"weight": mx.ones((8, 6)), "bias": mx.ones((8,))}, "b": {"weight": mx.ones((3, 8))}}
    guarded_update(model, opt, grads, mx.array(False))
    mx.eval(model.state, opt.state)
    assert_same(snapshot(model, opt), before)
    guarded_update(model, opt, grads, mx.array(True))
    assert not np.array_equal(np.array(model.b.weight), before["b.weight"])
