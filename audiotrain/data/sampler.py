"""The order in which a loader visits samples: a pure function of (seed, epoch), or a user (batch) sampler."""

from __future__ import annotations

import hashlib
import operator
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


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


def shard_order(order: np.ndarray, *, rank: int, world_size: int, drop_last: bool) -> np.ndarray:
    """This rank's share of an epoch's order, as PyTorch's ``DistributedSampler`` cuts it.

    The order is first made a multiple of ``world_size`` long: with ``drop_last`` its tail is dropped,
    otherwise it is padded by repeating it from its start. Rank ``r`` then takes every ``world_size``-th
    index from position ``r``. All ranks get the same number of samples, so they run the same number of
    batches of the same sizes; and batch ``b`` of all ranks together holds exactly the samples of batch
    ``b`` of one process with a ``world_size`` times larger batch (when nothing was padded).

    Parameters
    ----------
    order : np.ndarray, shape (n,)
        The epoch's order (the same on every rank).
    rank, world_size : int
        ``0 <= rank < world_size``.
    drop_last : bool
        Drop the ``n % world_size`` last samples instead of padding with the first ones.

    Returns
    -------
    np.ndarray, shape (n // world_size,) with ``drop_last``, else (ceil(n / world_size),)
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in 0 .. world_size - 1 = {world_size - 1}, got {rank}")
    n = len(order)
    total = (n // world_size if drop_last else -(-n // world_size)) * world_size
    # np.resize repeats the order from its start as often as needed (more than once if n < world_size).
    padded = order[:total] if total <= n else np.resize(order, total)
    return padded[rank:total:world_size]


def shard_padding(num_samples: int, *, rank: int, world_size: int) -> np.ndarray:
    """Which positions of this rank's `shard_order` (``drop_last=False``) are padding, repeats of the
    order's first samples: the positions past the end of the epoch's order.

    Returns
    -------
    np.ndarray, shape (ceil(num_samples / world_size),), bool
        True where the sample at that position of the shard is padding.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in 0 .. world_size - 1 = {world_size - 1}, got {rank}")
    positions = np.arange(
        rank, shard_length(num_samples, world_size, drop_last=False) * world_size, world_size
    )
    return positions >= num_samples


def shard_batches_unpadded(
    order: np.ndarray, *, rank: int, world_size: int, batch_size: int
) -> tuple[list[np.ndarray], int | None]:
    """This rank's batches of an epoch's order with no sample repeated, for evaluation: its samples of
    `shard_order` without the padding, in as many batches as every rank has (a short rank's last batch is
    shorter). A rank left a batch short gets a last batch of padding alone (the order's first sample), so
    that the ranks still run as many steps: the index of that batch is returned, to be weighed 0.

    Returns
    -------
    (list of np.ndarray, int or None)
        The batches, and the index of the padding batch (None when there is none).
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in 0 .. world_size - 1 = {world_size - 1}, got {rank}")
    batches = split_batches(order[rank::world_size], batch_size, drop_last=False)
    total = num_batches(shard_length(len(order), world_size, drop_last=False), batch_size, drop_last=False)
    if len(batches) < total:  # (a batch at most: this rank's share is at most one sample shorter)
        return [*batches, order[:1]], len(batches)
    return batches, None


def shard_stream(
    batches: Iterable[T],
    *,
    rank: int,
    world_size: int,
    drop_last: bool,
    on_padding: Callable[[], None] | None = None,
) -> Iterator[T]:
    """This rank's share of a stream of batches (an iterable dataset's): batch ``g`` goes to rank
    ``g % world_size``.

    Every rank reads the whole stream and keeps every ``world_size``-th batch, and all ranks get the same
    number of batches, as `shard_order` does for samples. Of a stream of ``T`` batches, with ``drop_last``
    the last ``T % world_size`` are dropped (a rank yields its batch of a step once the batches of all
    ranks for that step exist); otherwise ranks left without a batch at the end repeat one from the
    stream's start (rank ``r`` keeps the first ``r`` batches for that); ``on_padding()`` is called just
    before such a batch is yielded (evaluation weighs it 0).
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in 0 .. world_size - 1 = {world_size - 1}, got {rank}")
    head, mine, total = [], None, 0
    for g, batch in enumerate(batches):
        total, slot = g + 1, g % world_size
        if drop_last:
            mine = batch if slot == rank else mine
            if slot == world_size - 1:
                yield mine
        else:
            if g < rank:
                head.append(batch)
            if slot == rank:
                yield batch
    short = total % world_size
    if not drop_last and short and rank >= short:
        # Padding as np.resize in `shard_order`: position (total - short + rank) of the repeated stream.
        if on_padding is not None:
            on_padding()
        yield head[(total - short + rank) % total]


def shard_length(num_samples: int, world_size: int, drop_last: bool) -> int:
    """Samples per rank that `shard_order` gives."""
    return num_samples // world_size if drop_last else -(-num_samples // world_size)


def _set_epoch(sampler: object, epoch: int) -> None:
    # A torch BatchSampler has no set_epoch, but the sampler it wraps (a DistributedSampler) may.
    for obj in (sampler, getattr(sampler, "sampler", None)):
        if hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)
            return


def sampler_epoch(sampler: object) -> int | None:
    """The ``epoch`` attribute of the sampler whose ``set_epoch`` the loader calls (a ``DistributedSampler``
    keeps it), so the loader can see a ``sampler.set_epoch(e)`` of the user's; None where it keeps none."""
    for obj in (sampler, getattr(sampler, "sampler", None)):
        if hasattr(obj, "set_epoch"):
            epoch = getattr(obj, "epoch", None)
            return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0 else None
    return None


def _indices(values: Iterable[Any], source: str, num_samples: int) -> np.ndarray:
    """The keys a user sampler yields: int64 indices, checked against the dataset's length; or, where it
    yields other keys (a bucketing sampler's ``(index, crop_length)``, names), an object array of the keys
    as given, which ``dataset[key]`` receives unchanged, as in PyTorch."""
    keys = list(values)
    try:
        order = np.fromiter(map(operator.index, keys), dtype=np.int64, count=len(keys))
    except TypeError:
        order = np.empty(len(keys), dtype=object)
        for i, key in enumerate(keys):  # (one by one: numpy would unpack tuple keys into a second axis)
            order[i] = key
        return order
    bad = order[(order < 0) | (order >= num_samples)]
    if bad.size:
        raise IndexError(
            f"{source} yielded index {int(bad[0])}, outside the dataset (0 .. {num_samples - 1})"
        )
    return order


def sampler_order(sampler: Iterable[int], epoch: int, num_samples: int) -> np.ndarray:
    """Keys from a user sampler (ints, or any keys: see `_indices`); calls ``sampler.set_epoch(epoch)`` if
    it has one."""
    _set_epoch(sampler, epoch)
    order = _indices(sampler, f"sampler {type(sampler).__name__}", num_samples)
    _warn_of_a_wrong_length(sampler, len(order), "sampler", "indices")
    return order


def _warn_of_a_wrong_length(sampler: Any, drawn: int, kind: str, what: str) -> None:
    # len(loader) comes from len(sampler), before the epoch is drawn: a custom sampler whose __len__ says
    # another count than __iter__ yields made the progress bar and a per-epoch schedule's steps wrong,
    # silently.
    said = len(sampler)
    if said != drawn:
        warnings.warn(
            f"{kind} {type(sampler).__name__}: len() is {said} but it yielded {drawn} {what} this epoch; "
            "len(loader), and what counts on it (the progress bar, steps per epoch of a learning-rate "
            "schedule), use len(): make __len__ return what __iter__ yields (num_samples of a weighted "
            "sampler)",
            UserWarning,
            stacklevel=4,
        )


def batch_sampler_batches(batch_sampler: Iterable[Iterable[int]], epoch: int, num_samples: int) -> list:
    """Batches (index arrays) from a user batch sampler, after ``set_epoch(epoch)`` on it or its ``.sampler``."""
    _set_epoch(batch_sampler, epoch)
    source = f"batch_sampler {type(batch_sampler).__name__}"
    batches = []
    for position, batch in enumerate(batch_sampler):
        # A sampler of single indices passed as batch_sampler (torch's commonest mix-up of the two) yields
        # ints, which are not iterable, or name keys, which a string's characters would silently replace.
        if isinstance(batch, (str, bytes)) or not _is_iterable(batch):
            raise TypeError(
                f"{source} yielded {batch!r} as batch {position}, but each batch must be a list of sample "
                "indices (keys); a sampler that yields one index at a time goes in "
                "DataLoader(sampler=..., batch_size=...)"
            )
        batches.append(_indices(batch, source, num_samples))
    _warn_of_a_wrong_length(batch_sampler, len(batches), "batch_sampler", "batches")
    return batches


def _is_iterable(value: Any) -> bool:
    try:
        iter(value)
    except TypeError:
        return False
    return True


def split_batches(order: np.ndarray, batch_size: int, drop_last: bool) -> list:
    """``order`` cut into consecutive batches of ``batch_size`` (views, no copies)."""
    return [
        order[b * batch_size : (b + 1) * batch_size]
        for b in range(num_batches(len(order), batch_size, drop_last))
    ]


def order_digest(batches: Sequence[np.ndarray]) -> str:
    """A short fingerprint of an epoch's batches, to check on resume that a user sampler gave the same order.

    Keys other than ints are fingerprinted by their ``repr`` (a key whose repr changes from run to run makes
    a resume warn that the order differs)."""
    h = hashlib.sha1()
    for batch in batches:
        h.update(np.int64(len(batch)).tobytes())
        if batch.dtype == object:
            h.update(repr(batch.tolist()).encode())
        else:
            h.update(np.ascontiguousarray(batch, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def num_batches(num_samples: int, batch_size: int, drop_last: bool) -> int:
    """Batches in one epoch: ``floor`` with ``drop_last`` else ``ceil`` of ``num_samples / batch_size``."""
    if drop_last:
        return num_samples // batch_size
    return -(-num_samples // batch_size)
