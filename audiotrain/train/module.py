"""`TrainModule`: what a task defines (loss, optimizer, hooks); the `Trainer` runs it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx.utils import tree_flatten

if TYPE_CHECKING:
    from audiotrain.train.trainer import Trainer


@dataclass
class OptimizerConfig:
    """The optimizer a module trains with.

    Attributes:
        optimizer: any `mlx.optimizers.Optimizer`. Its `learning_rate` may be a float or a schedule
            (a callable of the step, e.g. `WarmupCosineScheduler`); the schedule is evaluated inside
            the compiled step.
        lr_schedule_name: a label for logs and the checkpoint (e.g. "warmup_cosine").
    """

    optimizer: optim.Optimizer
    lr_schedule_name: str | None = None

    def __post_init__(self):
        if not isinstance(self.optimizer, optim.Optimizer):
            raise TypeError(
                "OptimizerConfig.optimizer must be an mlx.optimizers.Optimizer instance "
                f"(e.g. optim.AdamW(learning_rate=1e-3)), got {type(self.optimizer).__name__}"
            )


class TrainModule(nn.Module):
    """Base class for a trainable task. Subclass it and define `compute_loss` and `configure_optimizers`.

    `compute_loss(batch)` returns `(loss, metrics)`: a scalar loss and a dict of scalar `mx.array`
    metrics. It runs inside the compiled training step, so it must be pure MLX: no `.item()`, no
    numpy, no Python side effects that must happen every step.

    Validation and test default to `compute_loss` with the metric names prefixed by `val_`/`test_`.
    Hooks (`on_train_start`, ...) run outside the compiled graph, in Python.
    """

    def __init__(self):
        super().__init__()
        # Plain attributes set through object.__setattr__ so nn.Module does not treat them as children.
        object.__setattr__(self, "_trainer", None)
        object.__setattr__(self, "_logged", {})

    # ---- required -------------------------------------------------------------------------------
    def compute_loss(self, batch: Any) -> tuple[mx.array, dict[str, mx.array]]:
        raise NotImplementedError(
            f"{type(self).__name__} must define compute_loss(self, batch) -> (loss, metrics_dict)"
        )

    def configure_optimizers(self) -> OptimizerConfig:
        raise NotImplementedError(
            f"{type(self).__name__} must define configure_optimizers(self) -> OptimizerConfig"
        )

    # ---- optional steps -------------------------------------------------------------------------
    def validation_step(self, batch: Any) -> tuple[mx.array, dict[str, mx.array]] | dict[str, mx.array]:
        """Loss and metrics on a validation batch; keys are prefixed with `val_` by the Trainer."""
        return self.compute_loss(batch)

    def test_step(self, batch: Any) -> tuple[mx.array, dict[str, mx.array]] | dict[str, mx.array]:
        """Loss and metrics on a test batch; keys are prefixed with `test_` by the Trainer."""
        return self.compute_loss(batch)

    def on_after_optimizer_step(self) -> None:
        """Runs INSIDE the compiled update step, right after the optimizer update (and only when the
        update was applied). For parameter constraints: clamps, re-normalisation. Pure MLX only,
        e.g. `self.scale = mx.clip(self.scale, 0.0, 4.6)`."""

    def batch_size(self, batch: Any) -> int:
        """Number of examples in `batch`, used to weight validation means. Default: the leading
        dimension of the first array in the batch. Override for padded or masked batches."""
        leaves = [x for x in _leaves(batch) if isinstance(x, mx.array) and x.ndim > 0]
        return int(leaves[0].shape[0]) if leaves else 1

    # ---- lifecycle hooks (called by the Trainer, outside the compiled step) ----------------------
    def on_fit_start(self) -> None: ...
    def on_fit_end(self) -> None: ...
    def on_train_start(self) -> None: ...
    def on_train_end(self) -> None: ...
    def on_train_epoch_start(self, epoch: int) -> None: ...
    def on_train_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None: ...
    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None: ...
    def on_train_batch_end(self, outputs: dict[str, Any], batch: Any, batch_idx: int) -> None: ...
    def on_validation_start(self) -> None: ...
    def on_validation_end(self, metrics: dict[str, float]) -> None: ...
    def on_test_start(self) -> None: ...
    def on_test_end(self, metrics: dict[str, float]) -> None: ...
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Add JSON-serialisable entries to `checkpoint` (stored in trainer_state.json)."""

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Read back what `on_save_checkpoint` stored."""

    # ---- parameters ---------------------------------------------------------------------------
    def parameters(self) -> ParameterTree:
        return ParameterTree(super().parameters())

    def trainable_parameters(self) -> ParameterTree:
        return ParameterTree(super().trainable_parameters())

    # ---- trainer-provided state -----------------------------------------------------------------
    @property
    def trainer(self) -> Trainer:
        if self._trainer is None:
            raise RuntimeError(
                f"{type(self).__name__}.trainer is only available once the module is attached to a "
                "Trainer (inside fit/validate/test, including configure_optimizers)."
            )
        return self._trainer

    @property
    def current_epoch(self) -> int:
        return self._trainer.current_epoch if self._trainer is not None else 0

    @property
    def global_step(self) -> int:
        return self._trainer.global_step if self._trainer is not None else 0

    def log(self, name: str, value: Any) -> None:
        """Log a scalar from a hook (outside the compiled step). Values stay lazy until logging time.

        Inside `compute_loss`, return metrics in the dict instead: the compiled step cannot call
        back into Python every step.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"log() needs a non-empty metric name, got {name!r}")
        self._logged[name] = value

    def log_dict(self, metrics: dict[str, Any]) -> None:
        for name, value in metrics.items():
            self.log(name, value)

    def _attach(self, trainer: Trainer | None) -> None:
        object.__setattr__(self, "_trainer", trainer)

    def _pop_logged(self) -> dict[str, Any]:
        logged = dict(self._logged)
        self._logged.clear()
        return logged


class ParameterTree(dict):
    """The nested parameter dict MLX returns, whose `.values()` yields every array (flattened).

    So the idiom `sum(p.size for p in model.parameters().values())` counts all parameters, as in
    PyTorch, while `items()`, indexing and MLX's tree utilities see the usual nested structure.
    """

    def values(self):  # type: ignore[override]
        return [leaf for _, leaf in tree_flatten(dict(self))]


def _leaves(tree: Any):
    if isinstance(tree, dict):
        for v in tree.values():
            yield from _leaves(v)
    elif isinstance(tree, (list, tuple)):
        for v in tree:
            yield from _leaves(v)
    else:
        yield tree
