"""A module's hooks written as Lightning's or as audiotrain's: `on_train_epoch_end(self)` and
`on_train_epoch_end(self, epoch, metrics)` are both overrides (the Trainer calls each as it is written),
`on_train_batch_start` may return -1 to end the epoch, and `configure_optimizers` may return each form
the Trainer reads: an OptimizerConfig, an optimizer, Lightning's dict, `[opt]` and `([opt], [schedule])`."""

from collections.abc import Callable
from typing import Any

from audiotrain import OptimizerConfig, TrainModule

import mlx.core as mx
import mlx.optimizers as optim


class LightningForms(TrainModule):
    def on_train_epoch_start(self) -> None: ...
    def on_train_epoch_end(self) -> None: ...
    def on_validation_end(self) -> None: ...
    def on_test_end(self) -> None: ...

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> int | None:
        return -1 if batch_idx > 10 else None

    def configure_optimizers(self) -> tuple[list[optim.Optimizer], list[Callable[[mx.array], mx.array]]]:
        opt = optim.SGD(learning_rate=0.1)
        return [opt], [optim.step_decay(0.1, 0.5, 10)]


class AudiotrainForms(TrainModule):
    def on_train_epoch_start(self, epoch: int) -> None: ...
    def on_train_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None: ...
    def on_validation_end(self, metrics: dict[str, float]) -> None: ...
    def on_test_end(self, metrics: dict[str, float]) -> None: ...

    def configure_optimizers(self) -> list[optim.Optimizer]:
        return [optim.AdamW(learning_rate=1e-3)]


class Unannotated(TrainModule):
    # A Lightning module pasted as it is: pyright infers the return types.
    def on_train_epoch_end(self):
        pass

    def on_train_batch_start(self, batch, batch_idx):
        if batch_idx == 3:
            return -1

    def configure_optimizers(self):
        opt = optim.Adam(learning_rate=1e-3)
        return [opt], [optim.cosine_decay(1e-3, 100)]


class OtherForms(TrainModule):
    def configure_optimizers(self) -> OptimizerConfig | optim.Optimizer | dict[str, Any]:
        return {"optimizer": optim.SGD(learning_rate=0.1), "lr_scheduler": optim.step_decay(0.1, 0.5, 10)}


# Mistakes are still caught.
class Mistakes(TrainModule):
    def on_train_epoch_end(self) -> int:  # type: ignore[override]
        return 0

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> str:  # type: ignore[override]
        return "stop"

    def configure_optimizers(self) -> str:  # type: ignore[override]
        return "adam"
