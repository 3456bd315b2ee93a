"""What "the same numbers" means on the device the tests run on.

On the CPU backend audiotrain's equalities are bitwise (compiled vs eager, guarded vs plain update, a
repeated run). On a GPU they hold to float32 rounding only: a fused (compiled) kernel contracts
multiply-adds differently from separate kernels, and atomic adds in scatter and reduction kernels are
unordered, so two runs of the same graph can differ in the last bits. The tests run on the default
device, so on a CUDA machine they check the GPU's own guarantee instead of failing on rounding.
"""

import math

import audiotrain  # noqa: F401  (before mlx)

import mlx.core as mx
import numpy as np

ON_GPU = mx.default_device() != mx.cpu

#: Tolerances on a GPU: a few float32 ulps, compounded over a few training steps. The absolute one covers
#: Adam-updated weights near zero, where a last-bit change in a tiny gradient moves the step by ~lr * 1e-4.
GPU_RTOL, GPU_ATOL = 2e-5, 1e-6


def assert_same_numbers(actual, desired, err_msg: str = "") -> None:
    """Bitwise equal on the CPU; equal to float32 rounding on a GPU."""
    if ON_GPU:
        np.testing.assert_allclose(actual, desired, rtol=GPU_RTOL, atol=GPU_ATOL, err_msg=err_msg)
    else:
        np.testing.assert_array_equal(actual, desired, err_msg=err_msg)


def same_values(a, b) -> bool:
    """`a == b` on the CPU; on a GPU, floats (in nested dicts and lists too) compared to float32 rounding."""
    if not ON_GPU:
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_values(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_values(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=GPU_RTOL, abs_tol=GPU_ATOL)
    return a == b
