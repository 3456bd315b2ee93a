"""What `fit`, `validate` and `test` accept as loaders and batches, checked with messages a user can act on.

Separate from the loops in `trainer.py` and `evaluation.py`, which both use these checks: a loader is
prepared (checked, seeded) once per call, every batch is checked before it enters a compiled step, and
Lightning's loader keywords are accepted in place of ours. `BatchChecksMixin` is one of the classes
`Trainer` is made of.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import mlx.core as mx
import numpy as np


def _is_loader(obj: Any) -> bool:
    """A loader rather than a batch: iterable, but not an array or a container of arrays."""
    return isinstance(obj, Iterable) and not isinstance(
        obj, mx.array | np.ndarray | list | tuple | dict | str
    )


def one_loader(
    method: str, name: str, value: Any, alias: str, alias_value: Any, required: bool = False
) -> Any:
    """A loader given by our name or Lightning's (`train_dataloaders`, ...), not both."""
    if value is not None and alias_value is not None:
        raise TypeError(f"Trainer.{method}: got both {name} and {alias}= (Lightning's name for it); pass one")
    loader = alias_value if value is None else value
    if required and loader is None:
        raise TypeError(f"Trainer.{method}: pass the batches ({name}, or {alias}=)")
    return loader


class BatchChecksMixin:
    """The Trainer's checks on loaders and batches (it sets `seed`, read here)."""

    def _prepare_loader(self, loader: Any, name: str) -> None:
        if loader is None:
            return
        if not isinstance(loader, Iterable):
            raise TypeError(
                f"Trainer: {name} must be iterable (a DataLoader or a list of batches), got {type(loader).__name__}"
            )
        if isinstance(loader, list | tuple) and any(_is_loader(item) for item in loader):
            raise TypeError(
                f"Trainer: {name} is a {type(loader).__name__} of {len(loader)} loaders; one loader is "
                "supported (Lightning's several validation loaders are not): pass one, or one DataLoader "
                "over the datasets joined together"
            )
        if self.seed is not None and getattr(loader, "seed", 0) is None and hasattr(loader, "set_seed"):
            loader.set_seed(self.seed)

    @staticmethod
    def _loader_len(loader: Any) -> int | None:
        try:
            return len(loader)
        except TypeError:
            return None

    @staticmethod
    def _check_batch(batch: Any, path: str = "batch") -> None:
        """Batches enter a compiled function: every leaf must be an mx.array."""
        if isinstance(batch, mx.array):
            return
        if isinstance(batch, dict):
            for k, v in batch.items():
                BatchChecksMixin._check_batch(v, f"{path}[{k!r}]")
            return
        if isinstance(batch, (list, tuple)):
            for i, v in enumerate(batch):
                BatchChecksMixin._check_batch(v, f"{path}[{i}]")
            return
        kind = type(batch).__name__
        hint = (
            "convert it with the DataLoader's default collate or an mlx_transforms function "
            "(numpy → mx.array on the main thread)"
            if isinstance(batch, np.ndarray | np.generic | int | float)
            else "use audiotrain.DataLoader over the same dataset (it collates torch tensors into "
            "mx.array), or convert in an mlx_transforms function"
            if type(batch).__module__.startswith("torch")
            else "keep only arrays in batches that reach the Trainer (drop names and other metadata "
            "in collate_fn or before the batch leaves the dataset)"
        )
        raise TypeError(f"{path} is a {kind}, but batch leaves must be mx.array: {hint}")
