"""The forward-only pass over the training data that recomputes BatchNorm's running statistics under averaged
weights: Lightning's extra SWA epoch and torch's ``swa_utils.update_bn`` (statistics reset to 0 and 1, then
the cumulative mean over every batch: momentum None in torch, ``1 / (k + 1)`` at the k-th batch here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from audiotrain.distributed import collectives
from audiotrain.train import hooks
from audiotrain.train.outputs import StepLogs
from audiotrain.train.step import bf16_batch

import mlx.core as mx
import mlx.nn as nn

if TYPE_CHECKING:
    from audiotrain.train.module import TrainModule
    from audiotrain.train.trainer import Trainer


def batchnorm_layers(module: TrainModule) -> list[nn.BatchNorm]:
    """The module's BatchNorm layers that keep running statistics and train in training mode (the ones a
    pass can recompute). One the user put in eval mode (a frozen backbone's) kept its statistics through
    training, so the pass leaves it, and every layer's mode, as they are."""
    return [
        layer
        for _, layer in module.named_modules()
        if isinstance(layer, nn.BatchNorm) and getattr(layer, "track_running_stats", False) and layer.training
    ]


def recompute_batchnorm_statistics(trainer: Trainer, module: TrainModule, epoch: int) -> int:
    """Run the module's training step forward only (no gradient, no update, nothing logged by the Trainer)
    over the training loader as it iterates for `epoch` (its `set_epoch`, so a resumed fit sees the same
    batches), in the modes and precision the fit trained in (bf16: the batch cast as the step casts it),
    and leave each BatchNorm layer with the cumulative mean of the batches' statistics. Under data parallel
    each rank passes its own shard, then every rank takes rank 0's statistics (the model rank 0 saves).
    Returns the number of batches passed (0: nothing changed)."""
    layers = batchnorm_layers(module)
    loader = trainer.train_dataloader
    if not layers or loader is None:
        return 0
    saved = [(layer, layer.momentum, layer.running_mean, layer.running_var) for layer in layers]
    limit = trainer._training_batches(loader)  # (limit_train_batches, as the epochs trained)
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    for layer in layers:
        layer.running_mean = mx.zeros_like(layer.running_mean)
        layer.running_var = mx.ones_like(layer.running_var)
    passed = 0
    try:
        for batch in loader:
            if limit is not None and passed >= limit:
                break
            for layer in layers:
                layer.momentum = 1.0 / (passed + 1)  # the cumulative mean (torch: momentum=None)
            batch = hooks.transfer_batch(batch, module, trainer.datamodule)
            if trainer.precision != "32":  # as the step casts it: bf16-true's float32 batch ran in float32
                batch = bf16_batch(batch, module)
            # (what the step logs is dropped: the pass is not an epoch of the fit, see README)
            where = f"{type(module).__name__}.{module.training_step_name} (SWA's BatchNorm pass)"
            with module._collect_logs(StepLogs("train", where)):
                module._training_output(batch, mx.array(passed))
            mx.eval([(layer.running_mean, layer.running_var) for layer in layers])
            passed += 1
    finally:
        for layer, momentum, mean, var in saved:
            layer.momentum = momentum
            if passed == 0:  # (an empty loader: keep the statistics it had)
                layer.running_mean, layer.running_var = mean, var
    if trainer.world_size > 1:
        collectives.broadcast_running_statistics(module)
    return passed


__all__ = ["batchnorm_layers", "recompute_batchnorm_statistics"]
