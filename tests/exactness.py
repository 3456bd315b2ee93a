"""What "the same numbers" means on the device the tests run on.

On the CPU backend audiotrain's equalities are bitwise (compiled vs eager, guarded vs plain update, a
repeated run). On a GPU they hold to float32 rounding only: a fused (compiled) kernel contracts
multiply-adds differently from separate kernels, and atomic adds in scatter and reduction kernels are
unordered, so two runs of the same graph can differ in the last bits. The tests run on the default
device, so on a CUDA machine they check the GPU's own guarantee instead of failing on rounding.
"""

import audiotrain  # noqa: F401  (before mlx)

import mlx.core as mx
import numpy as np
import pytest

ON_GPU = mx.default_device() != mx.cpu

#: Relative and absolute tolerances on a GPU: a few float32 ulps, compounded over a few training steps.
GPU_RTOL, GPU_ATOL = 2e-5, 1e-7


def assert_same_numbers(actual, desired, err_msg: str = "") -> None:
    """Bitwise equal on the CPU; equal to float32 rounding on a GPU."""
    if ON_GPU:
        np.testing.assert_allclose(actual, desired, rtol=GPU_RTOL, atol=GPU_ATOL, err_msg=err_msg)
    else:
        np.testing.assert_array_equal(actual, desired, err_msg=err_msg)


def same_values(a, b):
    """`a == b` on the CPU; on a GPU, numbers (in dicts and lists too) compared to float32 rounding."""
    return a == (pytest.approx(b, rel=GPU_RTOL, abs=GPU_ATOL) if ON_GPU else b)
