"""`logsumexp` and `softmax` over many classes, with an `exp` that MLX's CPU backend computes 4x faster.

MLX's CPU `exp` is scalar: about 12 ns per float32 on the 2-core machines here, so the 362-way softmax of
the chord model's joint chord head (forward and backward) took 13 ms of a 115 ms training step. `fast_exp`
is the textbook range reduction: ``exp(x) = 2^n * exp(r)`` with ``n = round(x / ln 2)`` and
``r = x - n ln 2`` (Cody-Waite), ``exp(r)`` from its Taylor polynomial to degree 7 and ``2^n`` written
straight into a float's exponent bits.
All of it is elementwise arithmetic that `mx.compile` fuses into one vectorised pass (1.6 ms against 6.6 ms
for 556k values); its error is within about two float32 ulps (relative 2e-7). On a GPU `mx.exp` is
already fast, so `logsumexp` uses the fast path on the CPU only.
"""

from __future__ import annotations

import mlx.core as mx

_LOG2_E = 1.4426950408889634
_LN_2_HIGH = 0.693359375  # ln 2 to 9 significant bits (exact in float32) ...
_LN_2_LOW = -2.12194440e-4  # ... and the rest
#: Below this, exp underflows float32's normal range: the result is clamped to exp(-87) ~ 1.6e-38.
_LOWEST = -87.0
#: ln of float32's largest value: above it exp overflows (inf); a larger n would wrap into the sign bit.
_HIGHEST = 88.72


def fast_exp(x: mx.array) -> mx.array:
    """``exp(x)`` of float32 `x`, relative error within about 2e-7 (NaN stays NaN).

    Values below -87 give exp(-87) rather than a subnormal or 0; values near or above 88.7 give inf.
    """
    x = mx.minimum(mx.maximum(x, _LOWEST), _HIGHEST)
    n = mx.round(x * _LOG2_E)
    # r = x - n ln 2 in two steps (Cody and Waite): n * _LN_2_HIGH is exact in float32, so r keeps its
    # precision where x * log2(e) alone would lose up to 4e-6 of it near |x| = 87.
    r = (x - n * _LN_2_HIGH) - n * _LN_2_LOW  # in [-ln2/2, ln2/2]
    poly = 1.0 + r * (1.0 + r * (0.5 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (1 / 720 + r / 5040))))))
    # Behind stop_gradient: MLX has no gradient for `view` ("[Primitive::vjp] Not implemented for View"),
    # which made fast_exp and softmax fail under mx.grad; 2^n is piecewise constant in x, so its gradient
    # is 0 and d/dx = poly'(r) 2^n, exp(x) to the polynomial's precision.
    two_to_n = mx.stop_gradient(mx.view(mx.left_shift(n.astype(mx.int32) + 127, 23), mx.float32))
    return poly * two_to_n


@mx.custom_function
def _logsumexp_last_axis(x: mx.array) -> mx.array:
    top = mx.stop_gradient(mx.max(x, axis=-1, keepdims=True))
    return (top + mx.log(mx.sum(fast_exp(x - top), axis=-1, keepdims=True)))[..., 0]


@_logsumexp_last_axis.vjp
def _logsumexp_vjp(x, cotangent, output):
    # d logsumexp / dx = softmax(x) = exp(x - logsumexp(x)); every exponent is <= 0 (within rounding).
    return cotangent[..., None] * fast_exp(x - output[..., None])


def logsumexp(x: mx.array) -> mx.array:
    """``log(sum(exp(x), axis=-1))`` of float32 `x`, stable (the row maximum is taken out first), with its
    gradient; through `fast_exp` on the CPU, `mx.logsumexp` elsewhere."""
    if x.dtype != mx.float32 or mx.default_device() != mx.cpu:
        return mx.logsumexp(x, axis=-1)
    return _logsumexp_last_axis(x)


def softmax(x: mx.array) -> mx.array:
    """``softmax(x, axis=-1)`` of float32 `x` through `fast_exp` on the CPU (`mx.softmax` elsewhere): for
    inference (the chord model's 362-way joint head made the posteriors' exps about a sixth of a forward pass)
    and in the chord loss's own gradient (`chord_loss.smoothed_cross_entropy`)."""
    if x.dtype != mx.float32 or mx.default_device() != mx.cpu:
        return mx.softmax(x, axis=-1)
    e = fast_exp(x - mx.max(x, axis=-1, keepdims=True))
    return e / mx.sum(e, axis=-1, keepdims=True)
