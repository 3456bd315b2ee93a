"""The CPU-fast exp, logsumexp (losses) and softmax (inference): values and gradients against MLX's own,
compiled too."""

from audiotrain.models.fast_math import fast_exp, logsumexp, softmax

import mlx.core as mx
import numpy as np
import pytest


def test_fast_exp_is_within_a_float32_ulp_of_exp_over_its_range():
    x = mx.array(np.linspace(-87.0, 88.0, 200_001, dtype=np.float32))
    got, want = np.array(fast_exp(x), np.float64), np.exp(np.array(x, np.float64))
    # (9.6e-8 with the degree-7 term; 2.4e-7 without it)
    assert np.max(np.abs(got - want) / want) < 2e-7  # (a GPU may round its steps otherwise: some room)
    assert np.isnan(np.array(fast_exp(mx.array([float("nan")])))).all()
    assert 0.0 < float(fast_exp(mx.array(-1000.0))) < 2e-38  # clamped at exp(-87), not a subnormal
    assert np.array(fast_exp(mx.array([89.0, 1000.0]))).tolist() == [np.inf, np.inf]  # never wraps negative


@pytest.mark.parametrize("compiled", [False, True])
def test_logsumexp_and_its_gradient_match_mlx(compiled):
    rng = np.random.default_rng(0)
    x = mx.array((rng.standard_normal((7, 5, 362)) * 8).astype(np.float32))
    weights = mx.array(rng.standard_normal((7, 5)).astype(np.float32))

    def loss(f):
        return lambda x: mx.sum(f(x) * weights)

    fast = mx.value_and_grad(loss(logsumexp))
    reference = mx.value_and_grad(loss(lambda x: mx.logsumexp(x, axis=-1)))
    if compiled:
        fast = mx.compile(fast)
    (value, grad), (want_value, want_grad) = fast(x), reference(x)
    np.testing.assert_allclose(np.array(logsumexp(x)), np.array(mx.logsumexp(x, axis=-1)), rtol=1e-6)
    np.testing.assert_allclose(value.item(), want_value.item(), rtol=1e-5)
    np.testing.assert_allclose(np.array(grad), np.array(want_grad), rtol=1e-4, atol=1e-6)


def test_logsumexp_keeps_non_finite_rows_non_finite_and_others_exact():
    x = mx.array(
        [[0.0, float("nan"), 1.0], [float("inf"), 0.0, 0.0], [-float("inf"), 0.0, 0.0], [3.0, 3.0, 3.0]]
    )
    got = np.array(logsumexp(x))
    assert np.isnan(got[0]) and not np.isfinite(got[1])  # a NaN or +inf logit never looks finite to the guard
    np.testing.assert_allclose(got[2:], [np.log(2.0), 3.0 + np.log(3.0)], rtol=1e-6)


@pytest.mark.parametrize("compiled", [False, True])
def test_softmax_matches_mlx_rows_sum_to_one(compiled):
    rng = np.random.default_rng(1)
    x = mx.array((rng.standard_normal((4, 9, 362)) * 20).astype(np.float32))
    fast = mx.compile(softmax) if compiled else softmax
    got = np.array(fast(x))
    np.testing.assert_allclose(got, np.array(mx.softmax(x, axis=-1)), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, rtol=1e-6)
    # Rows far from 0 (all very negative or very positive) are shifted by their maximum first; a class 500
    # below the row's maximum gets exp(-87) ~ 1e-38 (fast_exp's floor) rather than 0.
    far = mx.array([[-1000.0, -1001.0, -1002.0], [500.0, 499.0, 0.0]])
    np.testing.assert_allclose(
        np.array(softmax(far)), np.array(mx.softmax(far, axis=-1)), rtol=1e-6, atol=1e-37
    )


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
def test_softmax_and_logsumexp_of_half_precision_keep_its_dtype(dtype):
    """fast_exp is float32 arithmetic: half-precision input takes MLX's own functions and stays in its
    dtype."""
    x = mx.array([[1.0, 2.0, 3.0], [-4.0, 0.0, 4.0]], dtype=dtype)
    assert softmax(x).dtype == dtype and logsumexp(x).dtype == dtype
    np.testing.assert_allclose(
        np.array(softmax(x).astype(mx.float32)), np.array(mx.softmax(x, axis=-1).astype(mx.float32))
    )


@pytest.mark.parametrize("compiled", [False, True])
def test_fast_exp_and_softmax_have_gradients_as_mlxs_own(compiled):
    """Both are public, and softmax's docstring offers it for a model's many-class heads; under mx.grad
    both raised "[Primitive::vjp] Not implemented for View float32" (the 2^n bits are a view)."""
    rng = np.random.default_rng(3)
    x = mx.array(5.0 * rng.standard_normal((4, 362)).astype(np.float32))
    w = mx.array(rng.standard_normal((4, 362)).astype(np.float32))
    for ours, theirs, tolerance in (
        (fast_exp, mx.exp, 2e-6),
        (softmax, lambda v: mx.softmax(v, axis=-1), 2e-6),
    ):
        grad = mx.grad(lambda v, f=ours: mx.sum(f(v) * w))
        grad = mx.compile(grad) if compiled else grad
        want = np.array(mx.grad(lambda v, f=theirs: mx.sum(f(v) * w))(x))
        got = np.array(grad(x))
        assert np.abs(got - want).max() <= tolerance * np.abs(want).max()
