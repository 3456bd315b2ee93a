"""`TrainerConfig`: a whole run of the shared Trainer as nested dataclasses, with presets (seed 003).

A run's settings resolve in this order, later wins::

    preset ("quick_test", "development", "production")  <  a YAML/JSON file  <  overrides (keyword arguments)

>>> config = resolve_config("production", file="run.yaml", overrides={"learning_rate": 1e-5, "num_epochs": 20})

The file has the nested layout of `TrainerConfig` (``optimizer:``, ``scheduler:``, ``data:``, ``training:``,
``run:``, ``kaggle:``); it may name its own starting preset with a top-level ``preset: development``. It
is YAML (``.yaml``, ``.yml`` or no suffix, read once by ``audiotrain._yaml.parse_yaml``: by libyaml where
PyYAML has it, safe types only, at most 100,000 values) or JSON (``.json``); a name without suffix or folder
that is no existing file is a preset's, and a preset's own name always means the preset (``"./production"`` or
a `Path` reads a file of that name). Overrides are field names, plain
(``learning_rate``: the one section that has it), dotted (``optimizer.learning_rate``) or a section's dict
(``optimizer={"type": "sgd"}``).
Unknown keys, wrongly typed values and values out of range are errors that name the source and the field
(and suggest the closest name), when the config is resolved rather than when training starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audiotrain._files import json_text
from audiotrain._omegaconf import plain_omegaconf
from audiotrain._validation_monitor import validation_off_refusal
from audiotrain._yaml import parse_yaml
from audiotrain.recipes.config_cli import (
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MAX_STEPS,
    MAX_WORKERS,
    OTHER_LIBRARIES_NAMES,
    PROGRESS_BAR_HELP,
    SEED_MAX,
    SettingError,
    check_setting,
    file_settings,
    merge_config,
    preset_settings,
    read_older_record,
    with_key_line,
)
from audiotrain.train import flags
from audiotrain.train.step import PRECISIONS


def _check(section: str, name: str, value: Any, **bounds: Any) -> None:
    """`check_setting`'s test, in this module's message form: ``training.seed must be ..., got -1``
    (`merge_config` adds the file; there are no command-line flags to name here)."""
    try:
        check_setting(f"{section}.{name}", value, **bounds)
    except SettingError as err:
        raise ValueError(str(err)) from None


def _refuse_nul(section: str, name: str, value: str | None) -> None:
    """A run label names the MLflow run even where it names no folder: a NUL fits neither."""
    if isinstance(value, str) and "\0" in value:
        raise ValueError(f"{section}.{name} must not contain NUL, got {value!r}")


def _run_folder_label(config: TrainerConfig) -> tuple[str, str] | None:
    """The setting that names the run folder ``runs/<name>-<date>-<time>`` (run.run_name, else
    kaggle.competition_name) and its value; None where run.run_dir names the folder or neither is set."""
    if config.run.run_dir:
        return None
    if config.run.run_name is not None:
        return "run.run_name", config.run.run_name
    if config.kaggle.competition_name is not None:
        return "kaggle.competition_name", config.kaggle.competition_name
    return None


def _check_run_folder_label(config: TrainerConfig, source: str) -> None:
    """A label that names the run folder must be one folder name: a path separator would put the run
    elsewhere (``../..`` outside ``runs/``), and a blank name makes no folder name at all. Checked on the
    resolved config, as a file's name may only label the run once the overrides set run.run_dir."""
    label = _run_folder_label(config)
    if label is None:
        return
    name, value = label
    if not value.strip() or any(c in value for c in "/\\\0"):
        raise ValueError(
            f"{source}: {name} must be a folder name for runs/<name>-<date>-<time> (not blank, no '/', '\\' "
            f"or NUL), got {value!r}: it names the run folder while run.run_dir is unset (set run.run_dir to "
            "choose the folder; the name then only labels the run)"
        )


#: What `weight_decay: null` means for each optimizer type: torch.optim's defaults.
DEFAULT_WEIGHT_DECAY = {"adamw": 0.01, "adam": 0.0, "sgd": 0.0}


@dataclass
class OptimizerSettings:
    """The optimizer, as `torch.optim`'s of the same name with its defaults (betas 0.9/0.999, eps 1e-8)."""

    type: str = field(
        default="adamw", metadata={"help": "adamw, adam or sgd (torch.optim's AdamW, Adam, SGD)"}
    )
    learning_rate: float = field(default=1e-3, metadata={"help": "peak learning rate"})
    weight_decay: float | None = field(
        default=None,
        metadata={
            "help": "adamw: decoupled weight decay (default 0.01); sgd: L2 penalty (default 0); adam: none "
            "(use adamw)"
        },
    )
    momentum: float = field(default=0.0, metadata={"help": "sgd momentum"})
    bias_correction: bool = field(
        default=True,
        metadata={
            "help": "adam/adamw: correct the moments' bias, as torch.optim (false: MLX's default, which "
            "audiotrain used before; its first updates are ~3x larger)"
        },
    )

    def __post_init__(self):
        if self.type not in ("adamw", "adam", "sgd"):
            raise ValueError(f"optimizer.type must be 'adamw', 'adam' or 'sgd', got {self.type!r}")
        _check("optimizer", "learning_rate", self.learning_rate, above=0)
        _check("optimizer", "weight_decay", self.weight_decay, at_least=0, optional=True)
        _check("optimizer", "momentum", self.momentum, at_least=0, below=1)
        if self.type == "adam" and self.weight_decay:
            # (audiotrain used to drop it without a word; an old config.yaml may hold its former default 0.01)
            raise ValueError(
                f"optimizer.weight_decay is {self.weight_decay} with optimizer.type 'adam', which has no "
                "weight decay in MLX: use type 'adamw' (decoupled, as torch.optim.AdamW), or weight_decay 0 "
                "or null"
            )
        if self.type != "sgd" and self.momentum:
            raise ValueError(
                f"optimizer.momentum is {self.momentum} with optimizer.type {self.type!r}: momentum is "
                "sgd's; Adam's moments decay with its betas (0.9, 0.999)"
            )

    @property
    def resolved_weight_decay(self) -> float:
        """`weight_decay`, or the type's default (torch.optim's) where it is null."""
        return DEFAULT_WEIGHT_DECAY[self.type] if self.weight_decay is None else self.weight_decay


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
        _check("scheduler", "warmup_ratio", self.warmup_ratio, at_least=0, below=1)
        _check("scheduler", "min_lr_ratio", self.min_lr_ratio, at_least=0, at_most=1)


@dataclass
class DataSettings:
    batch_size: int = field(default=32, metadata={"help": "batch size when train() is given a Dataset"})
    num_workers: int = field(default=0, metadata={"help": "DataLoader workers when given a Dataset"})

    def __post_init__(self):
        # The recipes' bounds: far above any real run, so that only a slip (extra zeros) meets them.
        _check("data", "batch_size", self.batch_size, integer=True, at_least=1, at_most=MAX_BATCH_SIZE)
        _check("data", "num_workers", self.num_workers, integer=True, at_least=0, at_most=MAX_WORKERS)


@dataclass
class TrainingSettings:
    num_epochs: int = field(default=10, metadata={"help": "epochs"})
    max_steps: int | None = field(default=None, metadata={"help": "stop after this many optimizer steps"})
    early_stopping: bool = field(default=True, metadata={"help": "stop when `monitor` stops improving"})
    # str | bool: YAML 1.1 (PyYAML) reads an unquoted `eval_strategy: no` as false (kept as "no").
    eval_strategy: str | bool = field(
        default="epoch",
        metadata={"help": "when to validate: epoch (each epoch's end), steps (every eval_steps) or no"},
    )
    eval_steps: int | None = field(
        default=None, metadata={"help": "eval_strategy steps: validate every N training batches"}
    )
    monitor: str = field(default="val_loss", metadata={"help": "metric for early stopping and best"})
    mode: str = field(default="min", metadata={"help": "min or max: which way `monitor` improves"})
    patience: int = field(default=5, metadata={"help": "validations without improvement before stopping"})
    gradient_clip: float | None = field(default=1.0, metadata={"help": "max gradient norm (None: off)"})
    accumulate_grad_batches: int = field(default=1, metadata={"help": "batches per optimizer step"})
    # str | int: `precision: 32` in YAML is an int, which the Trainer takes too (kept as "32").
    precision: str | int = field(default="32", metadata={"help": "32, bf16-mixed or bf16-true"})
    limit_train_batches: int | None = field(default=None, metadata={"help": "batches per epoch (None: all)"})
    limit_val_batches: int | None = field(default=None, metadata={"help": "validation batches (None: all)"})
    seed: int = field(
        default=42,
        metadata={
            "help": "seed of data order, dropout and augmentation (seeded when training starts); the "
            "module's weights are drawn when it is built: seed_everything(seed) before building it"
        },
    )
    compile: bool = field(default=True, metadata={"help": "compile the training and evaluation steps"})
    progress_bar: bool = field(default=True, metadata={"help": PROGRESS_BAR_HELP})

    def __post_init__(self):
        if not isinstance(self.monitor, str) or not self.monitor.strip():
            # (a blank name matches no metric: the best checkpoint and early stopping would never act)
            raise ValueError(
                f"training.monitor must name a metric (e.g. 'val_loss', or 'train_loss' without validation), "
                f"got {self.monitor!r}"
            )
        if self.mode not in ("min", "max"):
            raise ValueError(f"training.mode must be 'min' or 'max', got {self.mode!r}")
        self._check_eval_strategy()
        # The recipes' upper bounds (`MAX_EPOCHS` and the like): far above any real run, so that only a slip
        # (extra zeros, 2**63) meets them, here rather than as a hang or an overflow in training.
        for name, least, most, optional in (
            ("num_epochs", 1, MAX_EPOCHS, False),
            ("max_steps", 1, MAX_STEPS, True),
            ("eval_steps", 1, MAX_STEPS, True),
            ("patience", 0, MAX_EPOCHS, False),
            ("accumulate_grad_batches", 1, MAX_BATCH_SIZE, False),
            ("limit_train_batches", 1, MAX_STEPS, True),
            ("limit_val_batches", 0, MAX_STEPS, True),
        ):
            _check(
                "training",
                name,
                getattr(self, name),
                integer=True,
                at_least=least,
                at_most=most,
                optional=optional,
            )
        _check("training", "gradient_clip", self.gradient_clip, above=0, optional=True)
        _check("training", "seed", self.seed, integer=True, at_least=0, at_most=SEED_MAX)
        try:  # the Trainer's own reading of it (aliases such as 32 and "bf16")
            self.precision = flags.precision(self.precision)
        except (TypeError, ValueError):
            raise ValueError(
                f"training.precision must be one of {', '.join(map(repr, PRECISIONS))} (float16 and float64 "
                f"are not available on MLX), got {self.precision!r}"
            ) from None

    def _check_eval_strategy(self) -> None:
        """eval_strategy and eval_steps agree, and `monitor` is a metric the run will have."""
        if self.eval_strategy is False:
            self.eval_strategy = "no"
        if self.eval_strategy not in ("epoch", "steps", "no"):
            raise ValueError(
                f"training.eval_strategy must be 'epoch', 'steps' or 'no', got {self.eval_strategy!r}"
            )
        if self.eval_strategy == "steps" and self.eval_steps is None:
            raise ValueError(
                "training.eval_strategy 'steps' needs training.eval_steps (validate every N training batches)"
            )
        if self.eval_strategy != "steps" and self.eval_steps is not None:
            raise ValueError(
                f"training.eval_steps is {self.eval_steps}, but training.eval_strategy is "
                f"{self.eval_strategy!r}: eval_steps counts only with eval_strategy 'steps'"
            )
        if self.eval_strategy == "no" and self.monitor.startswith("val_"):
            raise ValueError(
                f"training.eval_strategy 'no' never validates, but training.monitor is {self.monitor!r} (it "
                "picks the best checkpoint and drives early stopping): set training.monitor to a train_ "
                "metric, e.g. train_loss"
            )
        refusal = validation_off_refusal(
            self.monitor,
            "training.limit_val_batches 0 turns validation off",
            "training.monitor",
            "set training.monitor (it picks the best checkpoint and drives early stopping) to a train_ metric, "
            "e.g. train_loss, or training.limit_val_batches to the batches to validate on (null: all)",
        )
        if self.limit_val_batches == 0 and refusal:
            raise ValueError(refusal)


@dataclass
class RunSettings:
    run_dir: str | None = field(
        default=None, metadata={"help": "output folder (default runs/<name>-<time>)", "path": True}
    )
    experiment_name: str = field(default="audiotrain", metadata={"help": "MLflow experiment"})
    run_name: str | None = field(default=None, metadata={"help": "MLflow run and run folder name"})
    mlflow: bool = field(default=False, metadata={"help": "log params, metrics and checkpoints to MLflow"})
    tracking_uri: str | None = field(
        default=None,
        metadata={
            "help": "MLflow store: a server URI, sqlite:///path.db or a path (default: $MLFLOW_TRACKING_URI, "
            "else <run_dir>/mlflow.db)",
            "path": True,
        },
    )

    def __post_init__(self):
        _refuse_nul("run", "run_name", self.run_name)


@dataclass
class KaggleSettings:
    """Seed 003's ``kaggle:`` section, as the features it maps onto: a run label, the folds of
    `ConfiguredTrainer.train_with_cv`, and the average of the fold models' test predictions."""

    competition_name: str | None = field(
        default=None,
        metadata={"help": "run label: names the run folder and MLflow run when run_name is unset"},
    )
    cv_folds: int = field(default=5, metadata={"help": "folds of train_with_cv when it is given none"})
    enable_ensemble: bool = field(
        default=False,
        metadata={"help": "train_with_cv averages every fold's best-checkpoint predictions of the test data"},
    )

    def __post_init__(self):
        _refuse_nul("kaggle", "competition_name", self.competition_name)
        _check("kaggle", "cv_folds", self.cv_folds, integer=True, at_least=2)


@dataclass
class TrainerConfig:
    """Everything `audiotrain.create_trainer` needs besides the module and the data."""

    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    data: DataSettings = field(default_factory=DataSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    run: RunSettings = field(default_factory=RunSettings)
    kaggle: KaggleSettings = field(default_factory=KaggleSettings)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Seed 003's names for these classes. One config class holds every section (the ``kaggle`` one included), so
# its "standard" and "Kaggle-specific" configurations are the same class.
BaseTrainerConfig = TrainerConfig
KaggleTrainerConfig = TrainerConfig
SchedulerConfig = SchedulerSettings


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
    # development's training, with the fold models' test predictions averaged (`create_kaggle_trainer`).
    "kaggle": {"training": {"num_epochs": 5, "patience": 2}, "kaggle": {"enable_ensemble": True}},
}


#: Settings added to `TrainerConfig` since `create_trainer` began writing a run's config.yaml, with what a
#: run written before each ran with. A run record (config.yaml, or a checkpoint's ``run_config``) without
#: one is read so, not with today's default (`_read_older_record`): Adam and AdamW corrected no bias before
#: optimizer.bias_correction came (4e30f65). The others did then what their defaults do now: not named.
OLDER_RECORD_MEANINGS: dict[str, Any] = {
    "optimizer.bias_correction": False,
    "optimizer.momentum": 0.0,
    "training.eval_strategy": "epoch",
    "training.eval_steps": None,
    "kaggle.competition_name": None,
    "kaggle.cv_folds": 5,
    "kaggle.enable_ensemble": False,
}
#: The entries of config.yaml that are no settings (`write_config`'s ``builds``): ``versions``, what wrote
#: it (as a recipe's config.json records them), and ``builds``, every audiotrain build that trained the run,
#: oldest first (a resume by another build adds its own).
RECORD_ENTRIES = ("versions", "builds")


def _is_whole_record(data: Any) -> bool:
    """Whether the settings `data` of a config file are a whole run's, as `create_trainer` records them
    (config.yaml, a checkpoint's run_config): every setting of every section, or, of an older build, all but
    some of those added since (`OLDER_RECORD_MEANINGS`). A config a user writes holds what it changes."""
    if not isinstance(data, Mapping) or "preset" in data:
        return False
    held = set(_dotted_settings({k: v for k, v in data.items() if k not in RECORD_ENTRIES}))
    return all(
        name in held or name in OLDER_RECORD_MEANINGS for name in _dotted_settings(TrainerConfig().to_dict())
    )


def _read_older_record(
    config: TrainerConfig, file: str | Path, given: Sequence[str], whole: bool, names_builds: bool = False
) -> tuple[TrainerConfig, str | None]:
    """`config` with the settings that the run record `file` lacks read as its older build ran, and the note
    that says so (`read_older_record`, as the chord and CLAP recipes read their older records); None where
    `file` is no such record. `given`: the settings overrides set, which stay; `whole`: `file` holds a whole
    run's settings (`_is_whole_record`). `names_builds`: it records what wrote it (`RECORD_ENTRIES`), which
    builds did only since every setting of `OLDER_RECORD_MEANINGS` was there: one of them it lacks was
    deleted by hand (an edited copy), and takes today's default, as in any settings file."""
    if names_builds:
        return config, None
    meanings = {k: v for k, v in OLDER_RECORD_MEANINGS.items() if v != _default_of(k)}
    skip = [k for k in OLDER_RECORD_MEANINGS if k not in meanings]
    if config.optimizer.type == "sgd":  # (no moments, no bias to correct)
        skip.append("optimizer.bias_correction")
    return read_older_record(
        config,
        file,
        given,
        meanings,
        skip=skip,
        plain_record=whole,
        remedy="the file or create_trainer's overrides can set them, e.g. bias_correction=True",
    )


def _default_of(name: str) -> Any:
    """The `TrainerConfig` default of the dotted setting `name`."""
    section, _, field_name = name.partition(".")
    return getattr(getattr(TrainerConfig(), section), field_name)


def preset(name: str) -> TrainerConfig:
    """The config of a shipped preset; an unknown name is an error listing the presets."""
    return merge_config(TrainerConfig(), preset_settings(PRESETS, name), source=f"preset {name!r}")


def _section_of(config: TrainerConfig, key: str, source: str) -> str:
    """``section.key`` for a plain override ``key``; an error naming the sections when several have it, or
    suggesting the closest field when none has it."""
    if "." in key:
        return key
    every = [
        f"{f.name}.{g.name}"
        for f in dataclasses.fields(config)
        for g in dataclasses.fields(getattr(config, f.name))
    ]
    owners = [name for name in every if name.split(".")[1] == key]
    if len(owners) == 1:
        return owners[0]
    if owners:
        section = owners[0].split(".")[0]
        raise ValueError(
            f"{source}: {key!r} is a setting of {' and '.join(o.split('.')[0] for o in owners)}: write "
            f"{' or '.join(owners)} (in Python: {section}={{{key!r}: ...}})"
        )
    hint = ""
    # A section's name too: a misspelt one (`trainig={...}`) is a key here, as a misspelt setting is.
    sections = [f.name for f in dataclasses.fields(config)]
    close = difflib.get_close_matches(key, sorted({name.split(".")[1] for name in every}) + sections, n=1)
    if key in OTHER_LIBRARIES_NAMES:
        close = [OTHER_LIBRARIES_NAMES[key]]
    if close:  # the plain name, or the dotted ones where it is ambiguous
        matches = [name for name in every if name.split(".")[1] == close[0]]
        hint = f"; did you mean {' or '.join(map(repr, matches)) if len(matches) > 1 else repr(close[0])}?"
    raise ValueError(f"{source}: unknown setting {key!r}{hint} (settings: {', '.join(every)})")


def apply_overrides(
    config: TrainerConfig, overrides: dict[str, Any], source: str = "overrides"
) -> TrainerConfig:
    """`config` with ``{name or section.name: value}`` applied, or ``{section: {name: value}}`` (see the
    module docstring)."""
    sections = {f.name for f in dataclasses.fields(config)}
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        value = _plain_value(value)
        if key in sections:  # optimizer={"type": "sgd"}: a section's settings (checked by merge_config)
            if isinstance(value, type(getattr(config, key))):  # scheduler=SchedulerConfig(type="linear")
                value = dataclasses.asdict(value)
            if not isinstance(value, dict):  # scheduler="cosine": the section's type, given as the section
                raise ValueError(_section_given_a_value(config, key, value, source))
            value = {name: _plain_value(v) for name, v in value.items()}
            nested[key] = {**nested.get(key, {}), **value}
            continue
        if key == "preset":  # (the recipes' --preset, a file's `preset:`): not a setting, the starting point
            raise ValueError(
                f"{source}: 'preset' is no setting: a preset is named as config= (create_trainer(module, "
                f"config={value!r}), or a `preset:` line in the config file); the presets are "
                f"{', '.join(PRESETS)}"
            )
        section, _, name = _section_of(config, key, source).partition(".")
        nested.setdefault(section, {})[name] = value
    return merge_config(config, nested, source=source)


def _section_given_a_value(config: TrainerConfig, section: str, value: Any, source: str) -> str:
    """The error for an override that gives a section (``scheduler="cosine"``) one value: the dict that sets
    what was meant (the section's ``type`` where it has one) and the section's settings."""
    fields = [f.name for f in dataclasses.fields(getattr(config, section))]
    if value is None:  # (no "off" value for a section: its defaults apply where it is not given)
        return (
            f"{source}: {section}=None gives the section no settings; leave {section} out for its defaults, "
            f"or give its settings as a dict ({section}'s settings: {', '.join(fields)})"
        )
    meant = f"{section}={{'type': {value!r}}}" if "type" in fields else f"{section}={{'{fields[0]}': ...}}"
    return (
        f"{source}: {section}={value!r} gives a whole section one value; give its settings as a dict: "
        f"{meant} ({section}'s settings: {', '.join(fields)})"
    )


def _plain_value(value: Any) -> Any:
    """A numpy scalar (``np.int64(8)`` from a sweep over an array) as the Python value it holds, checked as
    that one is (a numpy float for an int setting is refused, as a float is); anything else as it is."""
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    return value


def _dotted_settings(data: Any, prefix: str = "") -> list[str]:
    """The dotted names of the settings in the nested dict `data` (``training.eval_steps``)."""
    if not isinstance(data, Mapping):
        return [prefix.rstrip(".")] if prefix else []
    return [name for key, value in data.items() for name in _dotted_settings(value, f"{prefix}{key}.")]


def _override_settings(config: TrainerConfig, overrides: Mapping[str, Any]) -> list[str]:
    """The dotted names of the settings `overrides` (plain, dotted or a section's dict) set."""
    sections = {f.name for f in dataclasses.fields(config)}
    names = []
    for key, value in overrides.items():
        if key in sections:
            value = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
            names += [f"{key}.{name}" for name in value] if isinstance(value, Mapping) else []
        else:
            names.append(_section_of(config, key, "overrides"))
    return names


def setting_source(config: TrainerConfig, name: str, default: str = "config") -> str:
    """Where the setting `name` (``training.eval_steps``) of a config made by `resolve_config` was last set:
    the file's path, ``overrides``, ``preset 'quick_test'``, ``config dict``, ``TrainerConfig object``, or
    ``TrainerConfig default`` where nothing set it; `default` for a config made otherwise."""
    sources = getattr(config, "_sources", None)
    if sources is None:
        return default
    return sources.get(name, "TrainerConfig default")


def _is_preset_name(config: str | Path) -> bool:
    """A preset's name, or a name meant as one (misspelt): a str without a suffix or a folder in it that is
    no existing file. Anything else is a file path. A preset's own name is the preset even beside a file of
    that name: `create_trainer`'s default ("development") must not read whatever file the working folder
    happens to hold under that name."""
    if isinstance(config, str) and config in PRESETS:
        return True
    text = str(config)
    return (
        isinstance(config, str)
        and not Path(text).suffix
        and not any(sep in text for sep in ("/", os.sep))
        and not Path(text).exists()
    )


def checked_config(config: TrainerConfig, source: str = "TrainerConfig object") -> TrainerConfig:
    """A copy of `config` read as a config file's settings would be: a `TrainerConfig` edited field by field
    (``config.optimizer.type = "adamax"``) skips the checks its sections run when built, so its values go
    through `merge_config` again, and a wrong one is refused naming `source` and the field."""
    settings = {
        f.name: dataclasses.asdict(section) if dataclasses.is_dataclass(section) else section
        for f in dataclasses.fields(config)
        for section in [getattr(config, f.name)]
    }
    return merge_config(TrainerConfig(), settings, source=source)


def _dict_config(data: Mapping[str, Any], source: str = "config dict") -> TrainerConfig:
    """The config of a dict laid out as a config file (a top-level ``preset:`` included)."""
    data = dict(data)
    name = data.pop("preset", None)
    if name is not None and not isinstance(name, str):
        raise ValueError(f"{source}: preset must be one of {', '.join(PRESETS)}, got {name!r}")
    return merge_config(preset(name) if name is not None else TrainerConfig(), data, source=source)


# Words of a metric's name that say it rises as the model improves, and words that say it falls (a loss or an
# error rate wins: `val_accuracy_loss` falls). Hugging Face's Trainer takes every name that does not end in
# "loss" as greater-is-better; here only a name that says so needs `mode: max`, so `val_wer` keeps 'min'.
_RISING_WORDS = frozenset(
    "acc accuracy f1 auc auroc precision recall iou miou dice r2 map ap score top1 top5 sdr snr psnr ssim "
    "bleu".split()
)
_FALLING_WORDS = frozenset("loss error err wer cer mae mse rmse eer perplexity ppl".split())


def _check_monitor_direction(config: TrainerConfig, sources: Mapping[str, str]) -> None:
    """Refuse a monitor named as a score that rises (``val_accuracy``) where nothing set `training.mode`: its
    default 'min' would keep the worst epoch's checkpoint as the best and stop early while the score rises,
    without a word. A mode set anywhere (file, overrides, preset, a run's record) is taken as meant."""
    monitor = config.training.monitor
    words = set(re.split(r"[^a-z0-9]+", monitor.lower()))
    if "training.mode" in sources or not words & _RISING_WORDS or words & _FALLING_WORDS:
        return
    raise ValueError(
        f"{sources.get('training.monitor', 'config')}: training.monitor is {monitor!r}, a score that rises "
        "as the model improves, but training.mode is 'min', the default: the best checkpoint would be the "
        f"epoch of the lowest {monitor} and early stopping would stop while it rises. Set training.mode: max "
        "(mode='max'), or training.mode: min where lower is better"
    )


def resolve_config(
    config: str | Path | Mapping[str, Any] | TrainerConfig | None = None,
    file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    caller: str = "create_trainer",
) -> TrainerConfig:
    """Preset < file < overrides. ``config`` is a preset name, a YAML/JSON file, a dict laid out as that
    file, a `TrainerConfig` (checked again: see `checked_config`), or None for `TrainerConfig()`'s own
    defaults. `caller` names the function in the error for a ``config`` of another type."""
    if file is not None and not isinstance(file, (str, os.PathLike)):
        raise TypeError(
            f"{caller}(config_file=...): expected a YAML/JSON path, got {type(file).__name__} (settings as a "
            "dict go in config= or as overrides)"
        )
    for name, given in (("config", config), ("config_file", file)):
        # (an empty name is the path "", which Path reads as the working folder: "config file . is a folder")
        if isinstance(given, str) and not given.strip():
            raise ValueError(
                f"{caller}({name}=...): expected a preset name ({', '.join(PRESETS)}) or a YAML/JSON path, "
                f"got {given!r}"
            )
    # A Hydra / OmegaConf config (DictConfig) is read as the plain dicts it holds, `${...}` resolved: it
    # is a Mapping but no dict, and its sections had been refused as "must be a mapping of fields".
    config = plain_omegaconf(config, f"{caller}(config=...)", "the config")
    overrides = {k: plain_omegaconf(v, f"{caller}({k}=...)", k) for k, v in (overrides or {}).items()}
    label_source = "config"  # the last place that changed the run folder's label, for its error
    sources: dict[str, str] = {}  # dotted setting -> where it was last set (`setting_source`)
    if isinstance(config, TrainerConfig):
        resolved = checked_config(config)
        every = _dotted_settings(resolved.to_dict())
        sources.update(getattr(config, "_sources", None) or dict.fromkeys(every, "TrainerConfig object"))
    elif isinstance(config, Mapping):
        resolved = _dict_config(config)
        label_source = "config dict"
        named = config.get("preset")
        if isinstance(named, str):
            sources.update(dict.fromkeys(_dotted_settings(PRESETS[named]), f"preset {named!r}"))
        sources.update(
            dict.fromkeys(_dotted_settings({k: v for k, v in config.items() if k != "preset"}), "config dict")
        )
    elif config is None:
        resolved = TrainerConfig()
    elif not isinstance(config, (str, os.PathLike)):
        raise TypeError(
            f"{caller}(config=...): expected a preset name, a YAML/JSON path, a dict or a TrainerConfig, got "
            f"{type(config).__name__}"
        )
    elif _is_preset_name(config):
        resolved = preset(str(config))
        sources.update(dict.fromkeys(_dotted_settings(PRESETS[str(config)]), f"preset {str(config)!r}"))
    else:
        if file is not None:
            raise ValueError(
                f"{caller}(config=..., config_file=...): pass one config file, got config={config!r} and "
                f"config_file={file!r}"
            )
        resolved, file = TrainerConfig(), config
    whole = False  # the file is a run's record (config.yaml, a checkpoint's run_config)
    names_builds = False  # ... one that says which builds wrote it (none before all of today's settings)
    if file is not None:
        # ~ is the home folder, as in Trainer(default_root_dir=...) and every checkpoint path: the messages
        # and the run's record name the file read.
        file = Path(file).expanduser() if str(file).startswith("~") else file
        own, data = file_settings(file, PRESETS)
        whole = own is None and _is_whole_record(data)
        names_builds = whole and any(key in data for key in RECORD_ENTRIES)
        if whole:  # (what wrote the record, not settings)
            data = {k: v for k, v in data.items() if k not in RECORD_ENTRIES}
        if own is not None:  # (it replaces the preset given as config=)
            resolved = preset(own)
            sources = dict.fromkeys(_dotted_settings(PRESETS[own]), f"preset {own!r}")
        try:
            resolved, before = merge_config(resolved, data, source=str(file)), resolved
        except ValueError as error:
            raise with_key_line(error, file) from None
        sources.update(dict.fromkeys(_dotted_settings(data), str(file)))
        if _run_folder_label(resolved) != _run_folder_label(before):
            label_source = str(file)
    given: list[str] = []
    if overrides:
        resolved, before = apply_overrides(resolved, overrides), resolved
        given = _override_settings(resolved, overrides)
        sources.update(dict.fromkeys(given, "overrides"))
        if _run_folder_label(resolved) != _run_folder_label(before):
            label_source = "overrides"
    if file is not None:
        # A run record of an older build (a replay or resume from its config.yaml) trains as that build did.
        resolved, note = _read_older_record(resolved, file, given, whole, names_builds)
        if note is not None:
            lacked = [name for name in OLDER_RECORD_MEANINGS if name not in sources]
            sources.update(dict.fromkeys(lacked, f"{file} (read as its version ran)"))
            from audiotrain.distributed import collectives

            if collectives.is_main_process():  # (said once for a data-parallel job)
                print(note, file=sys.stderr)
    _check_run_folder_label(resolved, label_source)
    try:
        _check_monitor_direction(resolved, sources)
    except ValueError as error:
        raise (with_key_line(error, file) if file is not None else error) from None
    resolved._sources = sources  # (not a field: to_dict and config.yaml leave it out)
    return resolved


def get_trainer_config(
    config: str | Path | Mapping[str, Any] | TrainerConfig | None = "development",
    config_file: str | Path | None = None,
    **overrides: Any,
) -> TrainerConfig:
    """Seed 003's name for `resolve_config`: the config `create_trainer` would use (preset < file <
    overrides). ``config`` is as in `create_trainer`: a preset name, a YAML/JSON file, a dict laid out as
    that file, a `TrainerConfig`, or None for `TrainerConfig()`'s own defaults, which are no preset (``get_trainer_config()`` is the
    ``development`` preset: 5 epochs and patience 2, where ``get_trainer_config(None)`` has 10 and 5).
    ``config_file`` is applied over it, ``overrides`` (settings by name) over both.

    >>> get_trainer_config("production", num_epochs=20).training.num_epochs
    20
    """
    return resolve_config(config, config_file, overrides, caller="get_trainer_config")


def write_config(config: TrainerConfig, path: str | Path, builds: Sequence[str] | None = None) -> Path:
    """The resolved config as YAML (``.yaml``/``.yml``) or JSON: a file `resolve_config(file=...)` reads back.
    With `builds` (a run's record: the audiotrain builds that trained it, oldest first) it also records
    ``versions`` (this audiotrain build, MLX, numpy, Python, the platform, as a recipe's config.json) and
    ``builds`` (`RECORD_ENTRIES`)."""
    from audiotrain._system import versions

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = config.to_dict()
    if builds is not None:
        data.update(versions=versions(), builds=list(builds))
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        path.write_text(yaml.safe_dump(data, sort_keys=False))
    else:
        path.write_text(json_text(data))
    return path


def recorded_builds(record: str | Path) -> list[str] | None:
    """The audiotrain builds that trained the run whose record is `record` (a config.yaml `write_config`
    wrote with its builds, or a checkpoint folder: the build that wrote it), oldest first; None where it
    names none (a config.yaml of a build before they were recorded, an unreadable file, one that holds more
    values than a config could)."""
    record = Path(record)
    try:
        if record.is_dir():
            state = json.loads((record / "trainer_state.json").read_text())
            build = (state.get("versions") or {}).get("audiotrain")
            return [build] if isinstance(build, str) else None
        builds = (parse_yaml(record.read_text(), record) or {}).get("builds")
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(builds, list) and builds and all(isinstance(b, str) for b in builds):
        return builds
    return None
