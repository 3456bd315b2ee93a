"""Lightning 2's `overfit_batches`: train on the same first batches every epoch, and validate on as many.

A debugging run: a model that cannot drive the loss of a few batches towards zero has a bug. The Trainer
sets the training and validation limits to `overfit_batches` (`limits`) and iterates the training loader
unshuffled while `fit` runs (`unshuffled`), so that those batches are the same ones in every epoch.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any


def limits(
    overfit_batches: int | float,
    given: dict[str, int | float | None],
    fast_dev_run: int,
) -> dict[str, int | float | None]:
    """The stages' batch limits under `overfit_batches` (0: `given` as they are). As in Lightning it replaces
    `limit_train_batches` and `limit_val_batches` (a warning names one that was given); test and predict keep
    theirs."""
    if not overfit_batches:
        return given
    if fast_dev_run:
        # Lightning runs fast_dev_run's steps over the overfit batches; two debugging modes at once is more
        # likely a leftover than a plan, and each says alone what it does.
        raise ValueError(
            f"Trainer(overfit_batches={overfit_batches}, fast_dev_run=...): use one of them (fast_dev_run runs "
            "n batches once, overfit_batches trains on the same first batches every epoch)"
        )
    replaced = [f"{name}={given[stage]}" for stage, name in _LIMITED.items() if given[stage] is not None]
    if replaced:
        warnings.warn(
            f"Trainer(overfit_batches={overfit_batches}) replaces {' and '.join(replaced)}, as in Lightning: "
            f"training and validation both run on {_described(overfit_batches)}",
            UserWarning,
            stacklevel=3,
        )
    return {**given, "train": overfit_batches, "val": overfit_batches}


_LIMITED = {"train": "limit_train_batches", "val": "limit_val_batches"}


def _described(overfit_batches: int | float) -> str:
    if isinstance(overfit_batches, int):
        return f"their loader's first {overfit_batches} batch{'es' if overfit_batches != 1 else ''}"
    return f"the first {overfit_batches:g} of their loader's batches"


@contextlib.contextmanager
def unshuffled(loader: Any) -> Iterator[None]:
    """Iterate `loader` in its dataset's order while the block runs: an audiotrain DataLoader (or a loader
    with a `shuffle` attribute) that shuffles is switched to its unshuffled order, warned as Lightning warns,
    and put back afterwards. A loader with its own sampler keeps it (it may shuffle: not known here)."""
    # (Its own attribute: a wrapper that hands its loader's attributes on would take the setting itself.)
    if getattr(loader, "__dict__", {}).get("shuffle") is not True:
        yield
        return
    warnings.warn(
        "Trainer(overfit_batches=...): the training loader shuffles (shuffle=True); it is iterated in its "
        "dataset's order while fit runs, so that every epoch trains on the same batches (as Lightning turns "
        "the shuffling off)",
        UserWarning,
        stacklevel=4,
    )
    loader.shuffle = False
    try:
        yield
    finally:
        loader.shuffle = True


__all__ = ["limits", "unshuffled"]
