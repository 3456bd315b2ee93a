"""`TrainerConfig`: a whole run of the shared Trainer as nested dataclasses, with presets (seed 003).

A run's settings resolve in this order, later wins::

    preset ("quick_test", "development", "production")  <  a YAML/JSON file  <  overrides (keyword arguments)

>>> config = resolve_config("production", file="run.yaml", overrides={"learning_rate": 1e-5, "num_epochs": 20})

The file has the nested layout of `TrainerConfig` (``optimizer:``, ``scheduler:``, ``data:``, ``training:``,
``run:``); it may name its own starting preset with a top-level ``preset: development``. Overrides are field
names, plain (``learning_rate``: the one section that has it) or dotted (``optimizer.learning_rate``). Unknown
keys and wrongly typed values are errors that name the source and the field, and suggest the closest name.
YAML is read with ``yaml.safe_load`` only.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audiotrain.recipes.config_cli import load_config_data, merge_config, preset_settings, settings_of


@dataclass
class OptimizerSettings:
    type: str = field(default="adamw", metadata={"help": "adamw, adam or sgd"})
    learning_rate: float = field(default=1e-3, metadata={"help": "peak learning rate"})
    weight_decay: float = field(default=0.01, metadata={"help": "decoupled weight decay (adamw)"})

    def __post_init__(self):
        if self.type not in ("adamw", "adam", "sgd"):
            raise ValueError(f"optimizer.type must be 'adamw', 'adam' or 'sgd', got {self.type!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"optimizer.learning_rate must be > 0, got {self.learning_rate!r}")


@dataclass
class SchedulerSettings:
    type: str = field(default="cosine", metadata={"help": "cosine, linear or constant (after warmup)"})
    warmup_ratio: float = field(
        default=0.1, metadata={"help": "share of the optimizer steps spent warming up"}
    )
    min_lr_ratio: float = field(default=0.01, metadata={"help": "final learning rate / peak (cosine)"})

    def __post_init__(self):
        if self.type not in ("cosine", "linear", "constant"):
            raise ValueError(f"scheduler.type must be 'cosine', 'linear' or 'constant', got {self.type!r}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"scheduler.warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}")


@dataclass
class DataSettings:
    batch_size: int = field(default=32, metadata={"help": "batch size when train() is given a Dataset"})
    num_workers: int = field(default=0, metadata={"help": "DataLoader workers when given a Dataset"})


@dataclass
class TrainingSettings:
    num_epochs: int = field(default=10, metadata={"help": "epochs"})
    max_steps: int | None = field(default=None, metadata={"help": "stop after this many optimizer steps"})
    early_stopping: bool = field(default=True, metadata={"help": "stop when `monitor` stops improving"})
    monitor: str = field(default="val_loss", metadata={"help": "metric for early stopping and best"})
    mode: str = field(default="min", metadata={"help": "min or max: which way `monitor` improves"})
    patience: int = field(default=5, metadata={"help": "validations without improvement before stopping"})
    gradient_clip: float | None = field(default=1.0, metadata={"help": "max gradient norm (None: off)"})
    accumulate_grad_batches: int = field(default=1, metadata={"help": "batches per optimizer step"})
    precision: str = field(default="32", metadata={"help": "32, bf16-mixed or bf16-true"})
    limit_train_batches: int | None = field(default=None, metadata={"help": "batches per epoch (None: all)"})
    limit_val_batches: int | None = field(default=None, metadata={"help": "validation batches (None: all)"})
    seed: int = field(default=42, metadata={"help": "seed of weights order, data order and dropout"})
    compile: bool = field(default=True, metadata={"help": "compile the training and evaluation steps"})
    progress_bar: bool = field(default=True, metadata={"help": "show a progress bar"})

    def __post_init__(self):
        if self.mode not in ("min", "max"):
            raise ValueError(f"training.mode must be 'min' or 'max', got {self.mode!r}")
        if self.num_epochs < 1 or self.patience < 0 or self.accumulate_grad_batches < 1:
            raise ValueError("training.num_epochs and accumulate_grad_batches must be >= 1, patience >= 0")


@dataclass
class RunSettings:
    run_dir: str | None = field(default=None, metadata={"help": "output folder (default runs/<name>-<time>)"})
    experiment_name: str = field(default="audiotrain", metadata={"help": "MLflow experiment"})
    run_name: str | None = field(default=None, metadata={"help": "MLflow run and run folder name"})
    mlflow: bool = field(default=False, metadata={"help": "log params, metrics and checkpoints to MLflow"})
    tracking_uri: str | None = field(
        default=None,
        metadata={
            "help": "MLflow store: a server URI, sqlite:///path.db or a path (default: $MLFLOW_TRACKING_URI, "
            "else <run_dir>/mlflow.db)"
        },
    )


@dataclass
class TrainerConfig:
    """Everything `audiotrain.create_trainer` needs besides the module and the data."""

    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    data: DataSettings = field(default_factory=DataSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    run: RunSettings = field(default_factory=RunSettings)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: The shipped presets: nested changes to the defaults of `TrainerConfig`.
PRESETS: dict[str, dict[str, Any]] = {
    "quick_test": {
        "training": {
            "num_epochs": 1,
            "limit_train_batches": 4,
            "limit_val_batches": 2,
            "early_stopping": False,
            "compile": False,
            "progress_bar": False,
        },
        "scheduler": {"type": "constant", "warmup_ratio": 0.0},
    },
    "development": {"training": {"num_epochs": 5, "patience": 2}},
    "production": {
        "training": {"num_epochs": 50, "patience": 5, "gradient_clip": 1.0},
        "scheduler": {"type": "cosine", "warmup_ratio": 0.05},
    },
}


def preset(name: str) -> TrainerConfig:
    """The config of a shipped preset; an unknown name is an error listing the presets."""
    return merge_config(TrainerConfig(), preset_settings(PRESETS, name), source=f"preset {name!r}")


def _section_of(config: TrainerConfig, key: str, source: str) -> str:
    """``section.key`` for a plain override ``key``; an error suggesting the closest field if none has it."""
    if "." in key:
        return key
    owners = [
        f.name
        for f in dataclasses.fields(config)
        if key in {g.name for g in dataclasses.fields(getattr(config, f.name))}
    ]
    if len(owners) == 1:
        return f"{owners[0]}.{key}"
    every = [
        f"{f.name}.{g.name}"
        for f in dataclasses.fields(config)
        for g in dataclasses.fields(getattr(config, f.name))
    ]
    close = difflib.get_close_matches(key, [name.split(".")[1] for name in every], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"{source}: unknown setting {key!r}{hint} (settings: {', '.join(every)})")


def apply_overrides(
    config: TrainerConfig, overrides: dict[str, Any], source: str = "overrides"
) -> TrainerConfig:
    """`config` with ``{name or section.name: value}`` applied (see the module docstring)."""
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        section, _, name = _section_of(config, key, source).partition(".")
        nested.setdefault(section, {})[name] = value
    return merge_config(config, nested, source=source)


def resolve_config(
    config: str | Path | TrainerConfig | None = None,
    file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainerConfig:
    """Preset < file < overrides. ``config`` is a preset name, a YAML/JSON file, or a `TrainerConfig`."""
    if isinstance(config, TrainerConfig):
        resolved = config
    elif config is None:
        resolved = TrainerConfig()
    elif str(config) in PRESETS or not Path(config).suffix:
        resolved = preset(str(config))
    else:
        if file is not None:
            raise ValueError(f"pass one config file: config={config!r} and file={file!r}")
        resolved, file = TrainerConfig(), config
    if file is not None:
        data = settings_of(load_config_data(file))
        if isinstance(data, dict) and "preset" in data:
            data = dict(data)
            resolved = preset(str(data.pop("preset")))
        resolved = merge_config(resolved, data, source=str(file))
    if overrides:
        resolved = apply_overrides(resolved, overrides)
    return resolved


def write_config(config: TrainerConfig, path: str | Path) -> Path:
    """The resolved config as YAML (``.yaml``/``.yml``) or JSON: a file `resolve_config(file=...)` reads back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    else:
        path.write_text(json.dumps(config.to_dict(), indent=1))
    return path
