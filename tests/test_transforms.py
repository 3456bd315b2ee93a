"""The gradient transforms (train/transforms.py): the norm, the finite check and clipping, on pytrees shaped
like real models' gradients (matrices, 4-d kernels, vectors, 0-d scalars, float16 and bfloat16)."""

import audiotrain  # noqa: F401  (before mlx)
from audiotrain.train.transforms import all_finite, clip_by_global_norm, clip_by_value, global_norm

import mlx.core as mx
import numpy as np
import pytest
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


def test_clip_by_value_clamps_every_entry():
    clipped = clip_by_value(gradients(), 0.5)
    for _, v in tree_flatten(clipped):
        assert float(mx.max(mx.abs(v))) <= 0.5
