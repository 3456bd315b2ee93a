"""Callback hooks overridden with Lightning's parameter names (`pl_module`, `current_epoch`) or with
audiotrain's (`module`, `epoch`): the base hooks' parameters are positional-only, so both are overrides.
Seed 003's `on_train_end(self, trainer, state, result)` (a callback given to `create_trainer`) is one too."""

from typing import Any

from audiotrain import Trainer, TrainModule
from audiotrain.declarative import ConfiguredTrainer
from audiotrain.train import Callback
from audiotrain.train.callbacks import BaseFinetuning, BasePredictionWriter
from audiotrain.training_hooks import TrainingState


class LightningNames(Callback):
    def setup(self, trainer: Trainer, pl_module: TrainModule, stage: str) -> None: ...
    def on_train_start(self, trainer: Trainer, pl_module: TrainModule) -> None: ...
    def on_train_end(self, trainer: Trainer, pl_module: TrainModule) -> None: ...
    def on_train_batch_end(
        self, trainer: Trainer, pl_module: TrainModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None: ...
    def on_save_checkpoint(
        self, trainer: Trainer, pl_module: TrainModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["mine"] = 1


class AudiotrainNames(Callback):
    def on_train_start(self, trainer: Trainer, module: TrainModule) -> None: ...
    def on_train_end(self, trainer: Trainer, module: TrainModule) -> None: ...


class Unannotated(Callback):
    def on_train_epoch_end(self, trainer, pl_module):
        print(trainer.current_epoch)

    def on_validation_end(self, trainer, pl_module):
        pass


class LightningFinetuning(BaseFinetuning):
    def freeze_before_training(self, pl_module: TrainModule) -> None: ...
    def finetune_function(self, pl_module: TrainModule, current_epoch: int, optimizer: Any) -> None: ...


class AudiotrainFinetuning(BaseFinetuning):
    def freeze_before_training(self, module: TrainModule) -> None: ...
    def finetune_function(self, module: TrainModule, epoch: int, optimizer: Any) -> None: ...


class Writer(BasePredictionWriter):
    def write_on_batch_end(
        self,
        trainer: Trainer,
        module: TrainModule,
        prediction: Any,
        batch_indices: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None: ...


class SeedCallback(Callback):
    def on_epoch_end(self, trainer, state):
        print(state.epoch)

    def on_train_end(self, trainer, state, result):
        print(result)


class AnnotatedSeedCallback(Callback):
    def on_train_end(self, trainer: ConfiguredTrainer, state: TrainingState, result: Any) -> None:
        print(state.global_step)


# Mistakes are still caught: a hook that cannot take its arguments, or takes another type. (`on_train_end`,
# which takes seed 003's form too, is checked by mypy alone: pyright reads its `*args` as any arguments.)
class Mistakes(Callback):
    def on_train_start(self, trainer: Trainer) -> None: ...  # type: ignore[override]
    def on_fit_start(self, trainer: int, pl_module: TrainModule) -> None: ...  # type: ignore[override]


class SeedOnlyCallback:  # seed 003's callbacks need not subclass Callback (audiotrain.training_hooks)
    def on_epoch_end(self, trainer: Any, state: TrainingState) -> None: ...


def build_with_callbacks(module: TrainModule) -> None:
    from audiotrain import create_trainer

    create_trainer(module, callbacks=[SeedOnlyCallback()])
    mine: list[SeedCallback] = [SeedCallback()]  # a list of a subclass (lists are invariant)
    create_trainer(module, callbacks=mine)
