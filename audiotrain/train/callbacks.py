"""Callbacks: behaviour that runs after the compiled step, at named points of the loop.

A callback sees results, never the graph: the Trainer calls its hooks in Python between steps.
Hooks receive `(trainer, module, ...)`; any state a callback needs after a resume goes through
`state_dict()` / `load_state_dict()` and is stored in the checkpoint's trainer_state.json.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audiotrain.train.callback import Callback
from audiotrain.train.progress import ProgressBar

if TYPE_CHECKING:
    from audiotrain.train.module import TrainModule
    from audiotrain.train.trainer import Trainer

__all__ = [
    "Callback",
    "EarlyStopping",
    "GradientClipper",
    "LearningRateMonitor",
    "ModelCheckpoint",
    "ProgressBar",
]


def _check_mode(mode: str, owner: str) -> None:
    if mode not in ("min", "max"):
        raise ValueError(f"{owner}: mode must be 'min' or 'max', got {mode!r}")


def _is_better(value: float, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def _metric(trainer: Trainer, name: str, owner: str) -> float:
    metrics = trainer.callback_metrics
    if name not in metrics:
        available = ", ".join(sorted(metrics)) or "none yet"
        hint = " (it is a validation metric: pass a val_loader to fit)" if name.startswith("val_") else ""
        raise KeyError(f"{owner}: monitored metric {name!r} was not logged{hint}; available: {available}")
    return float(metrics[name])


class ModelCheckpoint(Callback):
    """Save checkpoint folders during `fit`.

    Args:
        dirpath: where to save; default `<default_root_dir>/checkpoints`.
        filename: a `str.format` template over `epoch`, `step` and any logged metric, e.g.
            "model-{epoch:02d}-{val_loss:.2f}". Default "epoch={epoch}-step={step}".
        monitor: metric deciding the top-k; None keeps the most recent checkpoints.
        mode: "min" or "max" for `monitor`.
        save_top_k: how many checkpoints to keep (-1 all, 0 none besides `last`).
        save_last: also keep an always-current `last` folder (what `ckpt_path=".../last"` resumes).
        every_n_epochs: save at the end of every n-th epoch (after its validation).
        every_n_train_steps: save every n optimizer steps instead of per epoch.

    Saves happen at epoch end (after that epoch's validation) or every n steps, so it works with or
    without a validation loader as long as `monitor` names a metric that exists.
    """

    def __init__(
        self,
        dirpath: str | Path | None = None,
        filename: str | None = None,
        monitor: str | None = None,
        mode: str = "min",
        save_last: bool | None = None,
        save_top_k: int = 1,
        every_n_epochs: int | None = None,
        every_n_train_steps: int | None = None,
        verbose: bool = False,
    ):
        _check_mode(mode, "ModelCheckpoint")
        if save_top_k < -1:
            raise ValueError(f"ModelCheckpoint: save_top_k must be >= -1, got {save_top_k}")
        for name, value in (("every_n_epochs", every_n_epochs), ("every_n_train_steps", every_n_train_steps)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"ModelCheckpoint: {name} must be a positive int or None, got {value!r}")
        if every_n_epochs is not None and every_n_train_steps is not None:
            raise ValueError("ModelCheckpoint: set every_n_epochs or every_n_train_steps, not both")
        self.dirpath = Path(dirpath) if dirpath is not None else None
        self.filename = filename or "epoch={epoch}-step={step}"
        self.monitor, self.mode, self.save_last, self.save_top_k = monitor, mode, save_last, save_top_k
        self.every_n_epochs = every_n_epochs if every_n_train_steps is None else None
        if self.every_n_epochs is None and every_n_train_steps is None:
            self.every_n_epochs = 1
        self.every_n_train_steps = every_n_train_steps
        self.verbose = verbose
        self.best_k_models: dict[str, float | None] = {}  # path -> score (None without monitor)
        self.best_model_path = ""
        self.best_model_score: float | None = None
        self.last_model_path = ""
        self._last_saved_step = -1

    @property
    def state_key(self) -> str:
        return f"ModelCheckpoint[{self.monitor},{self.mode},{self.filename}]"

    def setup(self, trainer: Trainer, module: TrainModule, stage: str) -> None:
        if self.dirpath is None:
            self.dirpath = Path(trainer.default_root_dir) / "checkpoints"

    # -- when to save ---------------------------------------------------------------------------
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        n = self.every_n_train_steps
        if n and trainer.global_step > 0 and trainer.global_step % n == 0 and outputs.get("stepped"):
            self._save(trainer)

    def on_train_epoch_end(self, trainer, module) -> None:
        n = self.every_n_epochs
        if n and (trainer.current_epoch + 1) % n == 0:
            self._save(trainer)

    # -- how --------------------------------------------------------------------------------------
    def format_name(self, trainer: Trainer) -> str:
        fields = {"epoch": trainer.current_epoch, "step": trainer.global_step, **trainer.callback_metrics}
        try:
            name = self.filename.format(**fields)
        except KeyError as err:
            raise KeyError(
                f"ModelCheckpoint filename {self.filename!r} uses {err.args[0]!r}, which was not logged; "
                f"available: {', '.join(sorted(fields))}"
            ) from None
        return re.sub(r"[\\/]", "_", name)

    def _save(self, trainer: Trainer) -> None:
        if trainer.global_step == self._last_saved_step or trainer.fast_dev_run:
            return
        self._last_saved_step = trainer.global_step
        score = _metric(trainer, self.monitor, "ModelCheckpoint") if self.monitor else None
        if score is not None and math.isnan(score):
            score = math.inf if self.mode == "min" else -math.inf
        if self.save_top_k != 0 and self._qualifies(score):
            path = str(self.dirpath / self.format_name(trainer))
            trainer.save_checkpoint(path)
            self.best_k_models[path] = score
            self._prune(current=path)
            if self.verbose:
                trainer.print(
                    f"ModelCheckpoint: saved {path}"
                    + (f" ({self.monitor}={score:.5g})" if self.monitor else "")
                )
        if self.save_last:
            self.last_model_path = str(self.dirpath / "last")
            trainer.save_checkpoint(self.last_model_path)

    def _qualifies(self, score: float | None) -> bool:
        if self.save_top_k == -1 or len(self.best_k_models) < self.save_top_k or score is None:
            return True
        return _is_better(score, self._worst()[1], self.mode)

    def _worst(self) -> tuple[str, float | None]:
        if self.monitor is None:  # oldest first
            path = next(iter(self.best_k_models))
            return path, None
        pick = max if self.mode == "min" else min
        path = pick(self.best_k_models, key=lambda p: self.best_k_models[p])
        return path, self.best_k_models[path]

    def _prune(self, current: str) -> None:
        while self.save_top_k != -1 and len(self.best_k_models) > self.save_top_k:
            path, _ = self._worst()
            del self.best_k_models[path]
            if path != current:
                shutil.rmtree(path, ignore_errors=True)
        if self.monitor is None:
            self.best_model_path, self.best_model_score = current, None
        else:
            pick = min if self.mode == "min" else max
            self.best_model_path = pick(self.best_k_models, key=lambda p: self.best_k_models[p])
            self.best_model_score = self.best_k_models[self.best_model_path]

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_k_models": self.best_k_models,
            "best_model_path": self.best_model_path,
            "best_model_score": self.best_model_score,
            "last_model_path": self.last_model_path,
            "dirpath": str(self.dirpath) if self.dirpath else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_k_models = dict(state.get("best_k_models", {}))
        self.best_model_path = state.get("best_model_path", "")
        self.best_model_score = state.get("best_model_score")
        self.last_model_path = state.get("last_model_path", "")


class EarlyStopping(Callback):
    """Stop `fit` when `monitor` has not improved by more than `min_delta` for `patience` checks.

    The check runs at the end of every training epoch (after that epoch's validation).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 3,
        min_delta: float = 0.0,
        mode: str = "min",
        verbose: bool = False,
        check_finite: bool = True,
    ):
        _check_mode(mode, "EarlyStopping")
        if patience < 0:
            raise ValueError(f"EarlyStopping: patience must be >= 0, got {patience}")
        self.monitor, self.patience, self.min_delta, self.mode = monitor, patience, abs(min_delta), mode
        self.verbose, self.check_finite = verbose, check_finite
        self.wait_count = 0
        self.best_score: float | None = None
        self.stopped_epoch: int | None = None
        self.stop_reason = ""

    @property
    def state_key(self) -> str:
        return f"EarlyStopping[{self.monitor},{self.mode}]"

    def on_train_epoch_end(self, trainer, module) -> None:
        if trainer.fast_dev_run:
            return
        value = _metric(trainer, self.monitor, "EarlyStopping")
        if self.check_finite and not math.isfinite(value):
            self._stop(trainer, f"{self.monitor} = {value} is not finite")
        elif _is_better(value, self.best_score, self.mode, self.min_delta):
            self.best_score, self.wait_count = value, 0
        else:
            self.wait_count += 1
            if self.wait_count >= self.patience:
                self._stop(
                    trainer,
                    f"{self.monitor} did not improve by more than {self.min_delta} for {self.wait_count} "
                    f"epochs (best {self.best_score:.6g})",
                )

    def _stop(self, trainer: Trainer, reason: str) -> None:
        trainer.should_stop = True
        self.stopped_epoch = trainer.current_epoch
        self.stop_reason = reason
        if self.verbose:
            trainer.print(f"EarlyStopping at epoch {trainer.current_epoch}: {reason}")

    def state_dict(self) -> dict[str, Any]:
        return {
            "wait_count": self.wait_count,
            "best_score": self.best_score,
            "stopped_epoch": self.stopped_epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.wait_count = state.get("wait_count", 0)
        self.best_score = state.get("best_score")
        self.stopped_epoch = state.get("stopped_epoch")


class LearningRateMonitor(Callback):
    """Log the optimizer's learning rate as `lr-<Optimizer>` every logging interval or every epoch."""

    def __init__(self, logging_interval: str = "step"):
        if logging_interval not in ("step", "epoch"):
            raise ValueError(
                f"LearningRateMonitor: logging_interval must be 'step' or 'epoch', got {logging_interval!r}"
            )
        self.logging_interval = logging_interval

    def _log(self, trainer: Trainer) -> None:
        name = f"lr-{type(trainer.optimizer).__name__}"
        trainer.log_metrics({name: trainer.learning_rate()}, step=trainer.global_step)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self.logging_interval == "step" and outputs.get("stepped") and trainer.is_logging_step():
            self._log(trainer)

    def on_train_epoch_start(self, trainer, module) -> None:
        if self.logging_interval == "epoch":
            self._log(trainer)


class GradientClipper(Callback):
    """Clip gradients by global norm (`max_norm`) or elementwise (`max_value`).

    This configures the clip that the compiled training step applies before its one optimizer
    update; it never updates the model itself. Equivalent to `Trainer(gradient_clip_val=...,
    gradient_clip_algorithm="norm"|"value")`; giving both with different values is an error.
    """

    def __init__(self, max_norm: float | None = None, max_value: float | None = None):
        if (max_norm is None) == (max_value is None):
            raise ValueError("GradientClipper: give exactly one of max_norm or max_value")
        value = max_norm if max_norm is not None else max_value
        if not value > 0:
            raise ValueError(f"GradientClipper: the clip threshold must be > 0, got {value}")
        self.value = float(value)
        self.algorithm = "norm" if max_norm is not None else "value"

    def clip_settings(self) -> tuple[float, str]:
        return self.value, self.algorithm
