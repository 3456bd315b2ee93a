"""The loaders a callback reads from the Trainer: the ones `fit` / `test` were given (a DataLoader or any
iterable of batches), or None before them."""

from collections.abc import Iterable
from typing import Any

from audiotrain import DataLoader, Trainer
from audiotrain.train import Callback

from typing_extensions import assert_type


class LoaderSizes(Callback):
    def on_fit_start(self, trainer: Trainer, module: object) -> None:
        assert_type(trainer.train_dataloader, DataLoader | Iterable[Any] | None)
        assert_type(trainer.val_dataloaders, DataLoader | Iterable[Any] | None)
        assert_type(trainer.test_dataloaders, DataLoader | Iterable[Any] | None)
        loader = trainer.train_dataloader
        if isinstance(loader, DataLoader):
            print(len(loader), loader.batch_size)
        len(trainer.val_dataloaders)  # type: ignore[arg-type]
