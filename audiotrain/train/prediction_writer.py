"""`BasePredictionWriter`: Lightning's callback for writing `Trainer.predict`'s outputs as they come, so
that a large prediction run needs not hold them all (`trainer.predict(..., return_predictions=False)`)."""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any

from audiotrain._signatures import known_signature
from audiotrain.train.callback import Callback

if TYPE_CHECKING:
    from audiotrain.train.module import TrainModule
    from audiotrain.train.trainer import Trainer


class WriteInterval(str, Enum):
    """When a `BasePredictionWriter` writes (Lightning's enum: ``writer.interval.on_batch``)."""

    BATCH = "batch"
    EPOCH = "epoch"
    BATCH_AND_EPOCH = "batch_and_epoch"

    @property
    def on_batch(self) -> bool:
        return self in (WriteInterval.BATCH, WriteInterval.BATCH_AND_EPOCH)

    @property
    def on_epoch(self) -> bool:
        return self in (WriteInterval.EPOCH, WriteInterval.BATCH_AND_EPOCH)


class BasePredictionWriter(Callback):
    """Override `write_on_batch_end` (``write_interval="batch"``, the default), `write_on_epoch_end`
    (``"epoch"``) or both (``"batch_and_epoch"``), with Lightning's signatures.

    With ``write_interval="batch"`` and ``trainer.predict(model, loader, return_predictions=False)`` each
    batch's output is written and then dropped: memory stays flat however many batches there are. An
    ``"epoch"`` writer gets every output at the end, so they are kept until then (as in Lightning).

    ``batch_indices`` are the dataset indices of the batch's samples, as in Lightning: from an audiotrain
    `DataLoader` over a map-style dataset (`DataLoader.current_batch_indices`: after shuffling, the sampler
    or batch_sampler, under data parallel from this rank's shard). None for an iterable dataset or another
    kind of loader (a list of batches), where Lightning passes an empty list. The epoch's ``batch_indices``
    has Lightning's shape, one list for the loader with an entry for each batch.

    Example::

        import os

        import numpy as np

        class EmbeddingWriter(BasePredictionWriter):
            def __init__(self, folder):
                super().__init__(write_interval="batch")
                self.folder = folder
                os.makedirs(folder, exist_ok=True)  # np.savez makes no folder (every rank may call it)

            def write_on_batch_end(self, trainer, module, prediction, batch_indices, batch, batch_idx,
                                   dataloader_idx):
                # Under data parallel every rank predicts its own shard with batch_idx from 0: the rank in
                # the name keeps rank 1's files from replacing rank 0's; the indices say which samples.
                name = f"{self.folder}/rank{trainer.global_rank}-{batch_idx}.npz"
                np.savez(name, prediction=np.array(prediction), indices=np.array(batch_indices))

        trainer = Trainer(callbacks=[EmbeddingWriter("embeddings")])
        trainer.predict(model, loader, return_predictions=False)
    """

    def __init__(self, write_interval: str = "batch") -> None:
        intervals = [i.value for i in WriteInterval]
        if write_interval not in intervals:
            raise ValueError(
                f"{type(self).__name__}: write_interval must be one of {intervals}, got {write_interval!r}"
            )
        self.interval = WriteInterval(write_interval)

    def write_on_batch_end(
        self,
        trainer: Trainer,
        pl_module: TrainModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
        /,
    ) -> None:
        """Override with the writing of one batch's output."""
        raise NotImplementedError(
            f"{type(self).__name__}(write_interval={self.interval.value!r}) writes each batch: "
            "override write_on_batch_end"
        )

    def write_on_epoch_end(
        self,
        trainer: Trainer,
        pl_module: TrainModule,
        predictions: Sequence[Any],
        batch_indices: Sequence[Any],
        /,
    ) -> None:
        """Override with the writing of every batch's output (in order)."""
        raise NotImplementedError(
            f"{type(self).__name__}(write_interval={self.interval.value!r}) writes at the end: "
            "override write_on_epoch_end"
        )

    def on_predict_batch_end(
        self,
        trainer: Trainer,
        pl_module: TrainModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
        /,
    ) -> None:
        if self.interval.on_batch:
            indices = trainer.evaluation.current_batch_indices
            self.write_on_batch_end(trainer, pl_module, outputs, indices, batch, batch_idx, dataloader_idx)

    def on_predict_epoch_end(self, trainer: Trainer, pl_module: TrainModule, /) -> None:
        if self.interval.on_epoch:
            predictions = trainer.evaluation.predictions
            # (Lightning's shape: one list for each loader, of one entry for each batch; the predictions of
            # a stage's only loader are that loader's list, those of several loaders a list of each's)
            indices = trainer.evaluation.batch_indices
            several = isinstance(trainer.num_predict_batches, list)
            self.write_on_epoch_end(trainer, pl_module, predictions, indices if several else [list(indices)])


__all__ = ["BasePredictionWriter", "WriteInterval"]


# What the writer's methods are called with, by position (Lightning's signatures).
_WRITE_ARGUMENTS = {
    "write_on_batch_end": (
        "trainer",
        "pl_module",
        "prediction",
        "batch_indices",
        "batch",
        "batch_idx",
        "dataloader_idx",
    ),
    "write_on_epoch_end": ("trainer", "pl_module", "predictions", "batch_indices"),
}


def refuse_unwritable(writer: BasePredictionWriter) -> None:
    """Raise, when a stage starts, for an overridden write method that cannot take Lightning's arguments
    (`write_on_batch_end` without `dataloader_idx`): called, it would raise a bare TypeError ("takes 7
    positional arguments but 8 were given") at the first batch; and for a writer whose __init__ did not
    call BasePredictionWriter's (a bare "no attribute 'interval'" there)."""
    if not isinstance(vars(writer).get("interval"), WriteInterval):
        raise TypeError(
            f"{type(writer).__name__} has no write_interval: its __init__ must call "
            "super().__init__(write_interval=...) ('batch', 'epoch' or 'batch_and_epoch'), as in Lightning"
        )
    for name, arguments in _WRITE_ARGUMENTS.items():
        if getattr(type(writer), name) is getattr(BasePredictionWriter, name):
            continue
        signature = known_signature(getattr(writer, name))
        try:
            if signature is not None:
                signature.bind(*arguments)
        except TypeError as err:
            raise TypeError(
                f"{type(writer).__name__}.{name}{signature} cannot take the arguments the Trainer passes "
                f"({err}): write it as def {name}(self, {', '.join(arguments)}): ..., as in Lightning"
            ) from None
