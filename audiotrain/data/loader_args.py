"""The checks of `DataLoader`'s arguments, with PyTorch's rules (and its messages where it has them)."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

_WORKER_TYPES = ("thread", "process")
_START_METHODS = ("spawn", "forkserver", "fork")
# What multiprocessing_context=None starts process workers with: forking a process that runs MLX and BLAS
# threads can deadlock.
DEFAULT_START_METHOD = "spawn"


def _as_callables(name: str, value: Any) -> tuple[Callable, ...]:
    """``None``, one callable, or a sequence of callables (applied in order) -> tuple of callables."""
    if value is None:
        return ()
    fns = (value,) if callable(value) else tuple(value) if isinstance(value, (list, tuple)) else None
    if fns is None or not all(callable(f) for f in fns):
        raise TypeError(f"{name} must be a callable or a list of callables, got {type(value).__name__}")
    return fns


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"DataLoader {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _generator_seed(generator: Any) -> int:
    """The shuffle seed a ``generator=`` argument stands for (see `DataLoader`)."""
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        return _check_int("generator", generator, 0)
    if isinstance(generator, np.random.Generator):
        return int(generator.integers(2**63))
    if callable(getattr(generator, "initial_seed", None)):  # torch.Generator
        return _check_int("generator.initial_seed()", generator.initial_seed(), 0)
    raise TypeError(
        f"DataLoader generator must be a torch.Generator, a numpy Generator or an int seed, "
        f"got {type(generator).__name__}"
    )


class CheckedLoaderArguments(NamedTuple):
    """What `check_loader_arguments` normalises for `DataLoader` to store (the rest it only checks)."""

    batch_size: int | None  # None: a batch_sampler gives the batches, or automatic batching is off
    num_workers: int
    prefetch_factor: int | None  # None without workers


def check_loader_arguments(
    *,
    iterable: bool,
    batch_size: Any,
    shuffle: Any,
    num_workers: Any,
    drop_last: Any,
    prefetch_factor: Any,
    worker_type: Any,
    persistent_workers: Any,
    sampler: Any,
    batch_sampler: Any,
    collate_fn: Any,
    worker_init_fn: Any,
    timeout: Any,
    multiprocessing_context: Any,
    in_order: Any,
    distributed: Any,
    seed: Any,
    generator: Any,
) -> CheckedLoaderArguments:
    """Check `DataLoader`'s arguments (``iterable``: its dataset is read as a stream) and return the ones it
    stores normalised. Raises ValueError or TypeError naming the argument: PyTorch's rules, in its words
    where it has them, and this loader's own. The checks run in a fixed order, so that of several wrong
    arguments the same one is named first."""
    if isinstance(shuffle, (str, bytes)):
        # Stricter than PyTorch, which shuffles for any true value: shuffle="False" read from a config
        # shuffled a prediction loader, whose outputs then no longer lined up with the files.
        raise ValueError(
            f"shuffle should be a boolean value, but got shuffle={shuffle!r} (text, true whatever it says)"
        )
    if iterable:
        # PyTorch's rules and messages: a stream has no indices to shuffle or sample.
        if shuffle:
            raise ValueError(
                f"DataLoader with IterableDataset: expected unspecified shuffle option, but got "
                f"shuffle={shuffle}"
            )
        for name, value in (("sampler", sampler), ("batch_sampler", batch_sampler)):
            if value is not None:
                raise ValueError(
                    f"DataLoader with IterableDataset: expected unspecified {name} option, but got "
                    f"{name}={value}"
                )
    if not isinstance(drop_last, (bool, np.bool_)):
        # PyTorch's rule and message: drop_last="False" (a value read from text) was read as true, and 0 or 1
        # by their truthiness, dropping a short last batch without a word.
        raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last!r}")
    if batch_size is None and batch_sampler is None and drop_last:
        raise ValueError(
            "batch_size=None option disables auto-batching and is mutually exclusive with drop_last"
        )
    if batch_sampler is not None:
        # PyTorch's rule and message; batch_size=1 is its default, so it counts as not given.
        if batch_size != 1 or shuffle or sampler is not None or drop_last:
            raise ValueError(
                "batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and drop_last"
            )
        if not hasattr(batch_sampler, "__len__"):
            raise TypeError(
                f"DataLoader batch_sampler must have __len__ (len(loader) is its length, and each epoch's "
                f"batches are drawn when the epoch starts), got {type(batch_sampler).__name__}; pass a list "
                f"of batches or a class with __iter__ and __len__ (a generator is read once: a second epoch "
                f"would have no batches)"
            )
    if batch_sampler is not None or batch_size is None:
        checked_batch_size = None
    else:
        checked_batch_size = _check_int("batch_size", batch_size, 1)
    num_workers = _check_int("num_workers", num_workers, 0)
    if prefetch_factor is not None and num_workers == 0:
        # PyTorch's rule (a setting that would do nothing), as persistent_workers below.
        raise ValueError(
            f"DataLoader prefetch_factor={prefetch_factor!r} needs num_workers > 0 (it counts batches "
            "each worker loads ahead; with num_workers=0 batches load as they are asked for): leave "
            "prefetch_factor unset, or pass num_workers"
        )
    # As PyTorch: None without workers, else 2 batches ahead per worker unless given.
    checked_prefetch_factor = (
        None
        if num_workers == 0
        else 2
        if prefetch_factor is None
        else _check_int("prefetch_factor", prefetch_factor, 1)
    )
    if in_order is not True:
        raise ValueError(
            f"DataLoader in_order={in_order!r}: batches always come in order here (the position that "
            "state_dict saves counts them, and the order does not depend on worker timing); leave "
            "in_order at True"
        )
    if worker_type not in _WORKER_TYPES:
        raise ValueError(f"DataLoader worker_type must be 'thread' or 'process', got {worker_type!r}")
    if persistent_workers and num_workers == 0:
        raise ValueError("DataLoader persistent_workers=True needs num_workers > 0 (there are no workers)")
    if sampler is not None and shuffle:
        raise ValueError(
            "sampler option is mutually exclusive with shuffle (DataLoader sampler and shuffle=True are "
            "exclusive: the sampler defines the order)"
        )
    if sampler is not None and not hasattr(sampler, "__len__"):
        raise TypeError(
            f"DataLoader sampler must have __len__ (the loader draws each epoch's order when the epoch "
            f"starts), got {type(sampler).__name__}; for an endless or unsized stream of samples, pass "
            f"an iterable dataset (an object with __iter__) instead"
        )
    for name, fn in (("collate_fn", collate_fn), ("worker_init_fn", worker_init_fn)):
        if fn is not None and not callable(fn):
            raise TypeError(f"DataLoader {name} must be callable, got {type(fn).__name__}")
    # `not timeout >= 0` refuses NaN too, which `timeout < 0` let through to a wait that never timed out.
    if not isinstance(timeout, numbers.Real) or isinstance(timeout, bool) or not timeout >= 0:
        raise ValueError(f"DataLoader timeout must be a number of seconds >= 0, got {timeout!r}")
    if multiprocessing_context is not None and worker_type == "thread" and num_workers > 0:
        # A PyTorch habit: there the workers are always processes, here threads unless asked.
        warnings.warn(
            f"DataLoader multiprocessing_context={multiprocessing_context!r} is unused: these "
            f"{num_workers} workers are threads (worker_type='thread', the default); pass "
            "worker_type='process' for worker processes started that way",
            UserWarning,
            stacklevel=3,
        )
    if multiprocessing_context is None:  # (the loader keeps None, and starts processes with the default)
        multiprocessing_context = DEFAULT_START_METHOD
    is_context = hasattr(multiprocessing_context, "Process") and hasattr(multiprocessing_context, "Queue")
    if multiprocessing_context not in _START_METHODS and not is_context:
        raise ValueError(
            f"DataLoader multiprocessing_context must be 'spawn', 'forkserver', 'fork' or a "
            f"multiprocessing context, got {multiprocessing_context!r}"
        )
    if distributed not in (None, True, False):
        raise TypeError(f"DataLoader distributed must be None, True or False, got {distributed!r}")
    if distributed and (sampler is not None or batch_sampler is not None):
        raise ValueError(
            "DataLoader distributed=True shards the loader's own order, but a sampler / batch_sampler "
            "decides the order: shard it in the sampler (torch.utils.data.DistributedSampler) and leave "
            "distributed unset"
        )
    if seed is not None and generator is not None:
        raise ValueError("DataLoader seed and generator both give the shuffle seed; pass only one")
    return CheckedLoaderArguments(checked_batch_size, num_workers, checked_prefetch_factor)
