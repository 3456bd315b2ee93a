"""`seed_everything`: one call makes model construction, numpy and Python draws repeatable."""

import random

from audiotrain import seed_everything

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from reference import require


def _draws(seed):
    assert seed_everything(seed) == seed
    layer = nn.Linear(4, 3)
    return np.array(layer.weight), np.random.rand(2), random.random()


def test_same_seed_same_weights_and_draws():
    first, second, other = _draws(7), _draws(7), _draws(8)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0]) and first[2] != other[2]


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True, None])
def test_bad_seed_is_rejected(bad):
    with pytest.raises(ValueError, match="non-negative int"):
        seed_everything(bad)


def test_numpy_integer_seeds_are_accepted():
    seed_everything(np.int64(3))
    a = mx.random.uniform(shape=(2,))
    seed_everything(3)
    np.testing.assert_array_equal(np.array(a), np.array(mx.random.uniform(shape=(2,))))


@pytest.mark.parity
def test_torch_is_seeded_when_it_is_imported():
    torch = require("torch")
    seed_everything(3)
    first = torch.randperm(10).tolist()
    seed_everything(3)
    assert torch.randperm(10).tolist() == first
