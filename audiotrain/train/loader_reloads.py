"""`Trainer(reload_dataloaders_every_n_epochs=N)`, as Lightning's: the loaders a DataModule (or the module)
gives are asked for again every N epochs, the training loader at the start of the epoch (before
`on_train_epoch_start`), the validation loader at the first validation of such an epoch; an epoch's length
is that of the loader it iterates. Loaders passed to `fit` are the same objects every epoch (Lightning
"reloads" them from the instance)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from audiotrain.train.loaders import loaders_from


def first_epoch_of_loader(every: int, epoch: int) -> int:
    """The epoch at which a straight run asked for the loader that `epoch` iterates: the last multiple of
    `every` (the loaders are asked for at epochs 0, N, 2N, ...). A fit resumed in epoch 3 with N=2 asks
    with `current_epoch` 2, so it rebuilds the loader the straight run iterated there (Lightning asks with
    the resumed epoch and rebuilds N epochs later, another curriculum than the straight run's)."""
    return epoch - epoch % every


def first_epoch_of_val_loader(
    every: int, epoch: int, validates_in: Callable[[int], bool], validated_epoch: int
) -> int:
    """The epoch at which a straight run asked for the validation loader it validates with next in `epoch`:
    at fit's start (0), then at the first validation of an epoch `every` or more after its last ask, in the
    epochs `validates_in` picks (check_val_every_n_epoch) before `epoch`, and `epoch` itself where it
    validated already (a checkpoint saved after a mid-epoch validation). With N=2 and
    check_val_every_n_epoch=3 (validations in epochs 2 and 5) a fit resumed in epoch 4 asks with
    `current_epoch` 2, and again in 5."""
    asked = 0
    for past in range(epoch + 1 if validated_epoch >= epoch else epoch):
        if validates_in(past) and past - asked >= every:
            asked = past
    return asked


@dataclass
class LoaderReloads:
    """When `source` (the DataModule or module that gave the fit's loaders) is asked again, per stage."""

    every: int
    source: Any
    passed: dict[str, Any]  # the loaders given to `fit` (None: asked from `source`)
    built_at: dict[str, int] = field(default_factory=dict)  # the epoch each loader was asked for at

    def due(self, stage: str, epoch: int) -> bool:
        """Lightning's `current_epoch - last_reload_epoch >= N`; never for a loader passed to `fit`."""
        return self.passed[stage] is None and epoch - self.built_at[stage] >= self.every

    def ask(self, stage: str, epoch: int) -> Any:
        """The stage's loader from `source` (its `train_dataloader()` / `val_dataloader()`), now."""
        self.built_at[stage] = epoch
        return loaders_from(self.source, {stage: None})[stage]


__all__ = ["LoaderReloads", "first_epoch_of_loader", "first_epoch_of_val_loader"]
