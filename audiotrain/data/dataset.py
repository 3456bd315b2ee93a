"""Datasets: map-style (``__len__`` and ``__getitem__(int)``) and iterable-style (``__iter__``)."""

from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np


class Dataset:
    """Base class for map-style datasets, as in PyTorch.

    Subclasses implement ``__len__`` (number of samples) and ``__getitem__(index)`` (one sample: a numpy
    array, a scalar, or a dict / tuple / list of them). The `DataLoader` also accepts any other object with
    these two methods (a list, a numpy array, a ``torch.utils.data.Dataset``), so subclassing is optional.

    ``__getitem__`` runs in loader workers (threads or processes), so it should return numpy data, not
    ``mx.array``: conversion to MLX happens once, on the training thread.
    """

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__ (the number of samples)")

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__(index) (one sample)")


def check_dataset(dataset: Any, user: str = "DataLoader") -> int:
    """Return ``len(dataset)`` after checking that it is a map-style dataset, with an actionable error
    naming ``user``, what was given the dataset (a Subset's was blamed on a DataLoader never made)."""
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        kind = (
            "an iterable without __getitem__"
            if hasattr(dataset, "__iter__")
            else "without __len__"
            if hasattr(dataset, "__getitem__")
            else "not a dataset"
        )
        raise TypeError(
            f"{user} needs a map-style dataset (an object with __len__ and __getitem__(int)); got "
            f"{type(dataset).__name__}, which is {kind}. Wrap iterable data in a list or a Dataset subclass."
        )
    try:
        n = len(dataset)
    except NotImplementedError:
        raise
    except Exception as exc:  # e.g. a numpy 0-d array
        raise TypeError(f"len(dataset) failed for {type(dataset).__name__}: {exc}") from exc
    if not isinstance(n, int) or n < 0:
        raise TypeError(f"len(dataset) must be a non-negative int, got {n!r} from {type(dataset).__name__}")
    return n


class IterableDataset:
    """Base class for iterable-style datasets (streams), as in PyTorch.

    Subclasses implement ``__iter__``, which starts a new pass over the data and yields samples (the same
    kinds as `Dataset.__getitem__` returns). The `DataLoader` also accepts any other object with
    ``__iter__`` and no ``__getitem__``, and a ``torch.utils.data.IterableDataset``; subclassing marks a
    class that also has ``__getitem__`` as a stream. ``__len__`` is optional (``len(loader)`` needs it).

    With ``num_workers > 0`` every worker iterates its own copy of the dataset: split the stream in
    ``__iter__`` with `get_worker_info`, or every worker yields every sample. ``set_epoch(epoch)``, if
    defined, is called on each copy before the epoch's pass: draw per-epoch choices (a shuffle buffer's
    seed) from the epoch, so that a resumed epoch replays the same stream.
    """

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError(
            f"{type(self).__name__} must implement __iter__ (one pass over the samples)"
        )


def is_iterable_dataset(dataset: Any) -> bool:
    """Whether the `DataLoader` reads ``dataset`` as a stream (``iter(dataset)``) rather than by index."""
    for cls in type(dataset).__mro__:
        # torch's IterableDataset inherits the __getitem__ stub of torch's Dataset: recognised by its class.
        if cls is IterableDataset or (
            cls.__name__ == "IterableDataset" and cls.__module__.startswith("torch.utils.data")
        ):
            return True
    return hasattr(dataset, "__iter__") and not hasattr(dataset, "__getitem__")


def check_loader_dataset(dataset: Any) -> int | None:
    """``len(dataset)`` for a map-style dataset, None for an iterable-style one; else an actionable error."""
    if not is_iterable_dataset(dataset):
        if not hasattr(dataset, "__getitem__"):
            raise TypeError(
                f"DataLoader needs a map-style dataset (an object with __len__ and __getitem__(int)) or an "
                f"iterable-style one (an object with __iter__, such as an IterableDataset); got "
                f"{type(dataset).__name__}, which has neither __getitem__ nor __iter__"
            )
        return check_dataset(dataset)
    if isinstance(dataset, Iterator):
        raise TypeError(
            f"DataLoader got an iterator ({type(dataset).__name__}), which can be read only once, but the "
            f"loader starts a new pass over its dataset every epoch (and in every worker): pass an object "
            f"whose __iter__ starts a new pass (an IterableDataset subclass, a list)"
        )
    return None


def epoch_setters(dataset: Any, depth: int = 0, seen: dict[int, Any] | None = None) -> list[Any]:
    """The datasets whose ``set_epoch`` an epoch calls: `dataset` where it has one, else those inside a
    wrapper without one (torch's ``Subset`` holds ``.dataset``, ``ConcatDataset`` ``.datasets``), which would
    otherwise draw the same crops and augmentation every epoch. Each object once: ``ConcatDataset([d, d])``
    (oversampling) tells `d` the epoch once, and wrappers that refer back to each other are walked once
    (`seen` keeps each by its id, and the object itself alive, so that no id is reused meanwhile)."""
    seen = {} if seen is None else seen
    if id(dataset) in seen:
        return []
    seen[id(dataset)] = dataset
    if hasattr(dataset, "set_epoch"):
        return [dataset]
    if depth >= 8:  # (wrappers nested deeper are not datasets' wrappers)
        return []
    inner = getattr(dataset, "datasets", None)
    if not isinstance(inner, (list, tuple)):
        inner = [dataset.dataset] if hasattr(dataset, "dataset") else []
    return [setter for d in inner for setter in epoch_setters(d, depth + 1, seen)]


class Subset(Dataset):
    """The samples ``indices`` of ``dataset``, in that order (a cross-validation fold, a hold-out split).

    ``indices`` are whole numbers in ``0 .. len(dataset) - 1``; a float or a bool is a TypeError (a boolean
    mask: pass ``np.flatnonzero(mask)``).

    ``set_epoch`` is passed on to ``dataset`` when it has one (per-epoch crops and caption draws).
    """

    def __init__(self, dataset: Any, indices: Sequence[int]):
        n = check_dataset(dataset, "Subset")
        self.dataset = dataset
        self.indices = [_subset_index(i, position) for position, i in enumerate(indices)]
        bad = [i for i in self.indices if not 0 <= i < n]
        if bad:
            raise IndexError(f"Subset: indices {bad[:5]} out of range for a dataset of {n} samples")

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[self.indices[index]]

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)


def _subset_index(index: Any, position: int) -> int:
    """``index`` (item ``position`` of a Subset's indices) as an int; a float or a bool is refused, as torch's
    Subset refuses them when read: ``int()`` truncated 1.7 to 1 and read a boolean mask as indices 0 and 1."""
    if isinstance(index, (bool, np.bool_)):
        raise TypeError(
            f"Subset: index {position} is {index!r}, a bool: indices are sample positions, not a mask; "
            "for a boolean mask pass np.flatnonzero(mask)"
        )
    try:
        return operator.index(index)
    except TypeError:
        raise TypeError(
            f"Subset: index {position} is {index!r} ({type(index).__name__}), expected a whole number "
            "(a sample position)"
        ) from None
