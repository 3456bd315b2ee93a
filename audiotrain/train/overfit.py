"""Lightning 2's `overfit_batches`: train on the same first batches every epoch, and validate on as many.

A debugging run: a model that cannot drive the loss of a few batches towards zero has a bug. The Trainer
sets the training and validation limits to `overfit_batches` (`limits`) and iterates the training and
validation loaders unshuffled while `fit` runs (`in_order`), so that those batches are the same ones in every
epoch.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

from audiotrain.data.loader import DataLoader
from audiotrain.distributed import collectives


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
def in_order(overfit_batches: int | float, loaders: dict[str, Any]) -> Iterator[None]:
    """Iterate each of `loaders` ("training" / "validation" -> a loader or None) in its dataset's order while
    the block runs, so that every epoch trains and validates on the same batches: an audiotrain DataLoader
    (or a loader with a `shuffle` attribute) that shuffles is switched to its unshuffled order, warned as
    Lightning warns, and put back afterwards. One whose order is not this setting's (an iterable dataset's,
    its own sampler's, a loader other than an audiotrain DataLoader or a list of batches) keeps it, with a
    warning that it may differ each epoch. The warnings are rank 0's alone: every rank's loaders are alike."""
    switched = []
    problems = []
    for stage, loader in loaders.items():
        if loader is None:
            continue
        # (Its own attribute: a wrapper that hands its loader's attributes on would take the setting itself.)
        if getattr(loader, "__dict__", {}).get("shuffle") is True:
            switched.append((stage, loader))
        elif (reason := _own_order(loader)) is not None:
            problems.append((stage, reason))
    if collectives.is_main_process():
        _warn(overfit_batches, [stage for stage, _ in switched], problems)
    for _, loader in switched:
        loader.shuffle = False
    try:
        yield
    finally:
        for _, loader in switched:
            loader.shuffle = True


def _own_order(loader: Any) -> str | None:
    """Why `loader`'s order is its own, not one the Trainer can hold the same each epoch (None: it is)."""
    if isinstance(loader, list | tuple):
        return None  # (a list of batches: the same order every time)
    if isinstance(loader, DataLoader):
        if loader._iterable:
            return f"reads an iterable dataset ({type(loader.dataset).__name__}), whose order is its own"
        user = loader._batch_sampler if loader._batch_sampler is not None else loader._sampler
        if user is not None:
            kind = "batch_sampler" if loader._batch_sampler is not None else "sampler"
            return f"has its own {kind} ({type(user).__name__}), whose order is its own (it may shuffle)"
        return None
    own = getattr(loader, "__dict__", {})
    if own.get("shuffle") is False and getattr(loader, "sampler", None) is None:
        return None  # (a loader of its own whose order its `shuffle` setting decides: off)
    if type(getattr(loader, "sampler", None)).__name__ == "SequentialSampler":
        return None  # (torch's DataLoader without shuffle)
    return f"is a {type(loader).__name__}, not an audiotrain DataLoader: its order is its own"


def _warn(overfit_batches: int | float, switched: list[str], problems: list[tuple[str, str]]) -> None:
    flag = f"Trainer(overfit_batches={overfit_batches})"
    verbs = {"training": "trains", "validation": "validates"}
    for stage in switched:
        warnings.warn(
            f"{flag}: the {stage} loader shuffles (shuffle=True); it is iterated in its dataset's order "
            f"while fit runs, so that every epoch {verbs[stage]} on the same batches (as Lightning turns "
            "the shuffling off)",
            UserWarning,
            stacklevel=5,
        )
    for stage, reason in problems:
        warnings.warn(
            f"{flag}: the {stage} loader {reason}: overfit_batches cannot set it, so each epoch "
            f"{verbs[stage]} on the first batches of that order, which may be other batches every epoch. "
            "Make it yield the same samples in the same order every epoch (or pass a list of the batches)",
            UserWarning,
            stacklevel=5,
        )


__all__ = ["in_order", "limits"]
