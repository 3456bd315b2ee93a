"""`create_trainer`: a configured run of the shared Trainer from a preset, a file and overrides (seed 003).

>>> trainer = audiotrain.create_trainer(module, config="production", learning_rate=1e-5, num_epochs=20)
>>> result = trainer.train(train_loader, val_loader)      # history, best checkpoint, run folder
>>> trainer.evaluate(test_loader)                          # {"test_loss": ..., ...}
>>> outputs = trainer.predict(loader)                      # one output per batch

The settings are a `audiotrain.trainer_config.TrainerConfig` (see there for presets and precedence). The run
folder (``run.run_dir``, default ``runs/<run_name or module>-<date>-<time>``) receives ``config.yaml`` (the
resolved config: ``create_trainer(module, config="RUN/config.yaml")`` repeats the run), ``checkpoints/``
(``best`` by ``training.monitor`` and ``last``, each holding the resolved config too, under ``run_config`` in its
trainer_state.json, which ``config=`` also reads) and ``history.json``.

The optimizer and schedule come from the ``optimizer`` and ``scheduler`` sections unless the module defines
its own ``configure_optimizers``; then the module's wins and those two sections are reported as unused.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audiotrain.data import DataLoader, Dataset
from audiotrain.recipes.config_cli import ConfigInCheckpoint
from audiotrain.train.callbacks import Callback, EarlyStopping, ModelCheckpoint
from audiotrain.train.module import OptimizerConfig, TrainModule
from audiotrain.train.schedulers import WarmupCosineScheduler, WarmupLinearScheduler
from audiotrain.train.trainer import Trainer
from audiotrain.trainer_config import TrainerConfig, resolve_config, write_config

import mlx.optimizers as optim


@dataclass
class TrainResult:
    """What `ConfiguredTrainer.train` produced."""

    run_dir: Path
    history: dict[str, list]
    best_checkpoint: Path | None
    last_checkpoint: Path | None


def optimizer_from_config(config: TrainerConfig, total_steps: int) -> OptimizerConfig:
    """The optimizer and per-step schedule of the ``optimizer`` / ``scheduler`` sections."""
    o, s = config.optimizer, config.scheduler
    warmup = int(round(s.warmup_ratio * total_steps))
    if s.type == "cosine":
        lr = WarmupCosineScheduler(
            o.learning_rate, warmup, total_steps, min_lr=o.learning_rate * s.min_lr_ratio
        )
    elif s.type == "linear":
        lr = WarmupLinearScheduler(peak_lr=o.learning_rate, warmup_steps=warmup, total_steps=total_steps)
    else:
        lr = o.learning_rate
    if o.type == "adamw":
        optimizer = optim.AdamW(learning_rate=lr, weight_decay=o.weight_decay)
    elif o.type == "adam":
        optimizer = optim.Adam(learning_rate=lr)
    else:
        optimizer = optim.SGD(learning_rate=lr, weight_decay=o.weight_decay)
    return OptimizerConfig(optimizer=optimizer, lr_schedule_name=f"warmup_{s.type}")


class ConfiguredTrainer:
    """The shared Trainer set up from a `TrainerConfig`, with seed 003's ``train`` / ``evaluate`` / ``predict``.

    Attributes:
        module: the TrainModule.
        config: the resolved config.
        trainer: the shared `audiotrain.Trainer` (after `train`; `evaluate` / `predict` use it too).
    """

    def __init__(self, module: TrainModule, config: TrainerConfig, callbacks: list[Callback] | None = None):
        if not isinstance(module, TrainModule):
            raise TypeError(f"create_trainer: expected a TrainModule, got {type(module).__name__}")
        self.module = module
        self.config = config
        self.extra_callbacks = list(callbacks or [])
        name = config.run.run_name or type(module).__name__.lower()
        self.run_dir = Path(config.run.run_dir or Path("runs") / time.strftime(f"{name}-%Y%m%d-%H%M%S"))
        self.trainer = self._make_trainer()
        if type(module).configure_optimizers is TrainModule.configure_optimizers:
            # No optimizer of its own: the config's. (An instance attribute, so the class is untouched.)
            object.__setattr__(
                module,
                "configure_optimizers",
                lambda: optimizer_from_config(config, self._total_steps()),
            )
        else:
            warnings.warn(
                f"create_trainer: {type(module).__name__} defines configure_optimizers, which is used; the "
                "config's optimizer and scheduler sections are not",
                stacklevel=3,
            )

    def _total_steps(self) -> int:
        steps = self.trainer.estimated_stepping_batches
        return int(steps) if steps != float("inf") else 1000

    def _make_trainer(self) -> Trainer:
        t = self.config.training
        checkpoints = self.run_dir / "checkpoints"
        callbacks: list[Callback] = [
            ModelCheckpoint(
                dirpath=checkpoints,
                filename="best",
                monitor=t.monitor,
                mode=t.mode,
                save_top_k=1,
                save_last=True,
            ),
            ConfigInCheckpoint(self.config.to_dict()),  # a checkpoint alone says how to repeat its run
        ]
        if t.early_stopping:
            callbacks.append(EarlyStopping(monitor=t.monitor, mode=t.mode, patience=t.patience))
        logger = None
        if self.config.run.mlflow:
            from audiotrain.train.loggers import LoggerConfig, build_loggers

            # The run's params and metrics, and its best checkpoint as an artifact when training ends.
            run = self.config.run
            settings = LoggerConfig(
                names="mlflow",
                experiment=run.experiment_name,
                run_name=run.run_name,
                tracking_uri=run.tracking_uri,
                log_model="true",
            )
            logger = build_loggers(settings, self.run_dir)
        return Trainer(
            max_epochs=t.num_epochs,
            max_steps=t.max_steps,
            gradient_clip_val=t.gradient_clip,
            accumulate_grad_batches=t.accumulate_grad_batches,
            precision=t.precision,
            limit_train_batches=t.limit_train_batches,
            limit_val_batches=t.limit_val_batches,
            seed=t.seed,
            compile=t.compile,
            enable_progress_bar=t.progress_bar,
            default_root_dir=self.run_dir,
            callbacks=[*callbacks, *self.extra_callbacks],
            logger=logger,
        )

    def _loader(self, data: Any, shuffle: bool) -> Iterable | None:
        if isinstance(data, Dataset):
            d = self.config.data
            return DataLoader(data, batch_size=d.batch_size, shuffle=shuffle, num_workers=d.num_workers)
        return data

    def train(self, train_loader: Any, val_loader: Any = None, ckpt_path: str | None = None) -> TrainResult:
        """Fit (a Dataset is batched with ``data.batch_size``); the config is written to the run folder first."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_config(self.config, self.run_dir / "config.yaml")
        train = self._loader(train_loader, shuffle=True)
        val = self._loader(val_loader, shuffle=False)
        if val is None and self.config.training.monitor.startswith("val_"):
            raise ValueError(
                f"train: no val_loader, but training.monitor is {self.config.training.monitor!r}; pass "
                "validation data or set training.monitor to a train_ metric"
            )
        self.trainer.fit(self.module, train, val, ckpt_path=ckpt_path)
        self.trainer.export_history(self.run_dir / "history.json")
        checkpoint = next(cb for cb in self.trainer.callbacks if isinstance(cb, ModelCheckpoint))
        return TrainResult(
            self.run_dir,
            self.trainer.history,
            Path(checkpoint.best_model_path) if checkpoint.best_model_path else None,
            Path(checkpoint.last_model_path) if checkpoint.last_model_path else None,
        )

    def evaluate(self, loader: Any, ckpt_path: str | None = None) -> dict[str, float]:
        """``test_*`` means over ``loader`` (``ckpt_path``: "best", "last" or a folder; default: as trained)."""
        (metrics,) = self.trainer.test(self.module, self._loader(loader, shuffle=False), ckpt_path=ckpt_path)
        return metrics

    def predict(self, loader: Any, ckpt_path: str | None = None) -> list[Any]:
        """The module's `predict_step` output per batch (compiled, in eval mode; default `module(batch)`)."""
        return self.trainer.predict(self.module, self._loader(loader, shuffle=False), ckpt_path=ckpt_path)


def create_trainer(
    module: TrainModule,
    config: str | Path | TrainerConfig | None = "development",
    *,
    config_file: str | Path | None = None,
    callbacks: list[Callback] | None = None,
    **overrides: Any,
) -> ConfiguredTrainer:
    """A `ConfiguredTrainer` for ``module``: preset (or file) < ``config_file`` < ``overrides``.

    Args:
        config: a preset name (``quick_test``, ``development``, ``production``), a YAML/JSON file, or a
            `TrainerConfig`.
        config_file: a YAML/JSON file applied over the preset.
        callbacks: extra callbacks for the shared Trainer.
        overrides: settings by name (``learning_rate=1e-5``, ``num_epochs=20``, ``batch_size=64``).
    """
    return ConfiguredTrainer(module, resolve_config(config, config_file, overrides), callbacks)
