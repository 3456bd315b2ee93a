"""The order in which a loader visits samples: a pure function of (seed, epoch)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def epoch_order(num_samples: int, *, shuffle: bool, seed: int, epoch: int) -> np.ndarray:
    """Sample indices for one epoch.

    Parameters
    ----------
    num_samples : int
        Length of the dataset.
    shuffle : bool
        False gives ``0 .. num_samples-1``; True a permutation drawn from
        ``np.random.default_rng([seed, epoch])``, so the same (seed, epoch) always gives the same order,
        in any process and after any resume, without replaying earlier epochs.
    seed, epoch : int
        Non-negative integers.

    Returns
    -------
    np.ndarray, shape (num_samples,), int64
    """
    if not shuffle:
        return np.arange(num_samples, dtype=np.int64)
    return np.random.default_rng([seed, epoch]).permutation(num_samples).astype(np.int64)


def sampler_order(sampler: Iterable[int], epoch: int, num_samples: int) -> np.ndarray:
    """Indices from a user sampler (any iterable of ints); calls ``sampler.set_epoch(epoch)`` if it has one."""
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    order = np.fromiter((int(i) for i in sampler), dtype=np.int64)
    bad = order[(order < 0) | (order >= num_samples)]
    if bad.size:
        raise IndexError(
            f"sampler {type(sampler).__name__} yielded index {int(bad[0])}, outside the dataset "
            f"(0 .. {num_samples - 1})"
        )
    return order


def num_batches(num_samples: int, batch_size: int, drop_last: bool) -> int:
    """Batches in one epoch: ``floor`` with ``drop_last`` else ``ceil`` of ``num_samples / batch_size``."""
    if drop_last:
        return num_samples // batch_size
    return -(-num_samples // batch_size)
