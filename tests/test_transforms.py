"""The gradient transforms (train/transforms.py): the norm, the finite check and clipping, on pytrees shaped
like real models' gradients (matrices, 4-d kernels, vectors, 0-d scalars, float16 and bfloat16)."""

import json
import warnings

from audiotrain import OptimizerConfig, Trainer, TrainModule
from audiotrain.train.transforms import (
    all_finite,
    clip_by_global_norm,
    clip_by_value,
    clip_each_group_by_norm,
    global_norm,
)

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from distributed import describe, run_ranks
from mlx.utils import tree_flatten

SHAPES = {
    "dense": (1024, 256),  # float32 matrices: a matrix-vector product with ones
    "conv": (8, 3, 3, 5),  # rows summed, then flattened
    "bias": (1000,),
    "scale": (),  # a 0-d parameter (CLAP's logit scale)
}


def gradients(seed: int = 0, dtype=mx.float32) -> dict[str, mx.array]:
    rng = np.random.default_rng(seed)
    return {k: mx.array(rng.normal(size=s).astype(np.float32)).astype(dtype) for k, s in SHAPES.items()}


def tree_map_f32(tree):
    return {k: v.astype(mx.float32) for k, v in tree.items()}


def numpy_norm(tree) -> float:
    return float(np.sqrt(sum(np.sum(np.asarray(v, np.float64) ** 2) for _, v in tree_flatten(tree))))


@pytest.mark.parametrize("compiled", [False, True])
def test_global_norm_equals_numpy_for_every_kind_of_leaf(compiled):
    grads = gradients()
    norm = (mx.compile(global_norm) if compiled else global_norm)(grads)
    assert norm.dtype == mx.float32
    assert float(norm) == pytest.approx(numpy_norm(grads), rel=1e-6)


def test_global_norm_of_bfloat16_gradients_is_accumulated_in_float32():
    grads = gradients(dtype=mx.bfloat16)
    assert float(global_norm(grads)) == pytest.approx(numpy_norm(tree_map_f32(grads)), rel=1e-3)


@pytest.mark.parametrize("leaf", list(SHAPES))
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_one_non_finite_entry_anywhere_is_found(leaf, bad):
    grads = gradients()
    values = np.array(grads[leaf], copy=True)
    values.reshape(-1)[-1] = bad  # the last entry: the end of the last column or row
    grads[leaf] = mx.array(values)
    assert not bool(all_finite(grads))
    assert not bool(mx.compile(all_finite)(grads))
    assert not np.isfinite(float(global_norm(grads)))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_entry_in_a_transposed_view_is_found(bad):
    # Gradients of a Linear weight often arrive as transposed views; the check must not depend on layout.
    values = np.random.default_rng(1).normal(size=(256, 1024)).astype(np.float32)
    values[200, 3] = bad
    view = mx.array(values).T
    assert not bool(all_finite({"w": view}))
    assert not bool(mx.compile(all_finite)({"w": view}))
    assert bool(all_finite({"w": mx.array(np.nan_to_num(values, posinf=0.0, neginf=0.0, nan=0.0)).T}))


def test_finite_gradients_pass_and_float16_sums_past_its_range_do_not_fake_a_non_finite_step():
    assert bool(all_finite(gradients()))
    big = {"w": mx.full((256, 64), 60000.0, mx.float16)}  # each entry finite, the sum far past 65504
    assert bool(all_finite(big))
    assert bool(all_finite({}))


def test_clip_by_global_norm_scales_to_the_limit_and_keeps_direction():
    grads = gradients()
    clipped, norm_before = clip_by_global_norm(grads, 1.0)
    assert float(norm_before) == pytest.approx(numpy_norm(grads), rel=1e-6)
    assert numpy_norm(clipped) == pytest.approx(1.0, rel=1e-5)
    scale = float(clipped["dense"][0, 0] / grads["dense"][0, 0])
    for key in SHAPES:
        np.testing.assert_allclose(np.asarray(clipped[key]), np.asarray(grads[key]) * scale, rtol=1e-5)
    small, _ = clip_by_global_norm(grads, 1e6)  # under the limit: unchanged
    for key in SHAPES:
        np.testing.assert_array_equal(np.asarray(small[key]), np.asarray(grads[key]))


def test_clip_each_group_by_norm_scales_each_group_by_its_own_norm():
    """Lightning's clip_grad_norm_ over each optimizer's parameters: a small group keeps its gradients."""
    grads = {"g": {"w": mx.array([3.0, 4.0])}, "d": [{"w": mx.array([[0.0, 30.0], [40.0, 0.0]])}]}
    clipped = clip_each_group_by_norm(grads, {"g.w": 0, "d.0.w": 1}, 10.0)
    np.testing.assert_array_equal(np.asarray(clipped["g"]["w"]), [3.0, 4.0])  # (norm 5: under the limit)
    expected = np.array([[0.0, 30.0], [40.0, 0.0]]) * (10.0 / (50.0 + 1e-6))
    np.testing.assert_allclose(np.asarray(clipped["d"][0]["w"]), expected, rtol=1e-7)


def test_clip_by_value_clamps_every_entry():
    # As torch's clip_grad_value_: entries beyond ±0.5 become ±0.5, the others stay as they are (a bound
    # alone passed a clamp to [0, 0.5] that zeroed every negative gradient).
    grads = gradients()
    clipped = clip_by_value(grads, 0.5)
    for k, v in clipped.items():
        np.testing.assert_array_equal(np.asarray(v), np.clip(np.asarray(grads[k]), -0.5, 0.5))


@pytest.mark.parametrize("compiled", [False, True])
def test_float16_gradients_above_256_give_their_true_norm_not_inf(compiled):
    # 300 is exact and finite in float16, its square (90000) is not: squared in float16 the norm was inf,
    # and clipping or track_grad_norm then skipped every step as non-finite.
    grads = {"w": mx.full((4, 4), 300.0, mx.float16), "b": mx.full((4,), 300.0, mx.float16)}
    norm = (mx.compile(global_norm) if compiled else global_norm)(grads)
    assert norm.dtype == mx.float32
    assert float(norm) == pytest.approx(300.0 * np.sqrt(20), rel=1e-6)
    clipped, _ = clip_by_global_norm(grads, 1.0)
    assert numpy_norm(tree_map_f32(clipped)) == pytest.approx(1.0, rel=1e-3)


def test_float16_gradients_in_range_give_the_numpy_norm():
    grads = gradients(dtype=mx.float16)
    assert float(global_norm(grads)) == pytest.approx(numpy_norm(tree_map_f32(grads)), rel=1e-6)


class Float16Linear(TrainModule):
    """A float16 model whose weight gradients are 300 on inputs of 300: finite, with squares past float16's
    range (the bias gradient is 1)."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)
        self.linear.set_dtype(mx.float16)

    def compute_loss(self, batch):
        return mx.mean(self.linear(batch["x"]).astype(mx.float32)), {}

    def configure_optimizers(self):
        return OptimizerConfig(optimizer=optim.SGD(learning_rate=1e-2))


@pytest.mark.parametrize("flags", [{"gradient_clip_val": 1.0}, {"track_grad_norm": True}])
def test_a_float16_model_with_clipping_or_norm_logging_still_learns(tmp_path, flags):
    module = Float16Linear()
    before = np.array(module.linear.weight.astype(mx.float32))
    batches = [{"x": mx.full((2, 4), 300.0, mx.float16)} for _ in range(3)]
    trainer = Trainer(
        max_epochs=1,
        enable_checkpointing=False,
        logger=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
        **flags,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the skipped-updates warning would say every step was skipped
        trainer.fit(module, batches)
    assert float(trainer.callback_metrics["skipped_steps"]) == 0
    assert float(trainer.callback_metrics["grad_norm"]) == pytest.approx(np.sqrt(4 * 300.0**2 + 1), rel=1e-3)
    assert not np.array_equal(before, np.array(module.linear.weight.astype(mx.float32)))


@pytest.mark.serial
def test_float16_gradients_whose_sum_over_the_ranks_passes_65504_average_to_their_finite_mean():
    results = run_ranks(
        """
        import json
        import audiotrain
        import mlx.core as mx
        from audiotrain.train.transforms import average_across_processes

        r = mx.distributed.init().rank()
        grads = {"w": mx.full((3,), 40000.0 + 2048.0 * r, mx.float16), "b": mx.array([1.0, 3.0 * r])}
        mean = average_across_processes(grads)
        print(json.dumps({"w": mean["w"].tolist(), "w_dtype": str(mean["w"].dtype), "b": mean["b"].tolist()}))
        """
    )
    assert all(r.returncode == 0 for r in results), describe(results)
    for result in results:
        out = json.loads(result.lines()[-1])
        assert out == {"w": [41024.0] * 3, "w_dtype": "mlx.core.float16", "b": [1.0, 1.5]}
