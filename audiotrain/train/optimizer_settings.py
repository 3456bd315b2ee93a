"""The settings of the optimizer a run trained with (Adam's betas, SGD's momentum, ...), recorded in each
checkpoint so that a resume can say where `configure_optimizers` now gives other ones.

MLX's optimizers hold their settings as Python attributes, not in the state a checkpoint restores: a resume
keeps the moments, step count and learning rate it saved and updates with whatever class and settings the
module configures now (torch's `load_state_dict` takes the saved settings instead). An Adam checkpoint then
resumes as AdamW, or RMSprop's running mean of squared gradients becomes Adagrad's sum, without a word."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from audiotrain._caller import user_stacklevel
from audiotrain.train.module import _optimizers_in

import mlx.core as mx
import mlx.optimizers as optim

#: The key of `trainer_state.json` that holds them: one entry per optimizer (a MultiOptimizer's each).
STATE_KEY = "optimizer_settings"
#: The number rate `configure_optimizers` gave an optimizer as its run started, kept over its resumes: a
#: checkpoint's rate that differs from it was set by the run itself (a ReduceLROnPlateau cut, SWA's annealed
#: rate), and a resume whose module still gives it asked for no other rate.
CONFIGURED_RATE = "configured_learning_rate"
_CONFIGURED_ATTRIBUTE = "_audiotrain_configured_learning_rate"  # (on the optimizer; vars() skip it)


def note_configured_rates(optimizer: optim.Optimizer, saved: Any = None) -> None:
    """Record on each optimizer the rate its run was configured with: the one it has now (a fresh fit), or
    the one `saved` (a checkpoint's STATE_KEY list) records for it (a resume). A schedule records none."""
    saved_entries = saved if isinstance(saved, list) else []
    for index, part in enumerate(_optimizers_in(optimizer)):
        entry = saved_entries[index] if index < len(saved_entries) else None
        recorded = entry.get(CONFIGURED_RATE) if isinstance(entry, dict) else None
        setattr(part, _CONFIGURED_ATTRIBUTE, recorded if _is_number(recorded) else number_rate(part))


def number_rate(optimizer: optim.Optimizer) -> float | None:
    """The optimizer's learning rate where it is a number (None where a schedule sets it)."""
    if "learning_rate" in getattr(optimizer, "_schedulers", {}):
        return None
    rate = optimizer.state.get("learning_rate")
    return float(rate.item()) if isinstance(rate, mx.array) and rate.size == 1 else None


def configured_rate(entry: Any) -> float | None:
    """The CONFIGURED_RATE of one saved STATE_KEY entry (None where it records none: an older release)."""
    value = entry.get(CONFIGURED_RATE) if isinstance(entry, dict) else None
    return float(value) if _is_number(value) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def optimizer_settings(optimizer: optim.Optimizer) -> list[dict[str, Any]]:
    """Each optimizer's class and its plain settings (numbers, flags and tuples of them), as JSON holds
    them; its state (the learning rate included) is saved apart, in optimizer.safetensors."""
    return [_one(part) for part in _optimizers_in(optimizer)]


def _one(optimizer: optim.Optimizer) -> dict[str, Any]:
    settings = {
        name: value
        for name, value in sorted(vars(optimizer).items())
        if not name.startswith("_") and _plain(value)
    }
    rate = getattr(optimizer, _CONFIGURED_ATTRIBUTE, None)
    if rate is not None:
        settings[CONFIGURED_RATE] = rate
    return json.loads(json.dumps({"class": type(optimizer).__name__, **settings}))


def _plain(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return bool(value) and all(_plain(v) for v in value)
    return isinstance(value, (bool, int, float, str))


def warn_of_changed_settings(folder: Path, optimizer: optim.Optimizer, state: dict[str, Any]) -> None:
    """Say which optimizer class or setting differs from the run that saved `folder` (checkpoints that
    record none, of older releases, are not compared)."""
    saved = state.get(STATE_KEY)
    if not isinstance(saved, list):
        return
    now = optimizer_settings(optimizer)
    changes = []
    for index, (before, after) in enumerate(zip(saved, now)):
        group = f"group {index + 1}: " if len(now) > 1 else ""
        if not isinstance(before, dict):
            continue
        if before.get("class") != after["class"]:
            changes.append(f"{group}{before.get('class')} is now {after['class']}")
            continue
        changes += [
            f"{group}{after['class']}'s {name} {before[name]!r} is now {after.get(name)!r}"
            for name in before
            if name not in ("class", CONFIGURED_RATE) and before[name] != after.get(name)
        ]
    if changes:
        warnings.warn(
            f"resuming from {folder}: configure_optimizers gives another optimizer than the run that saved it"
            f" ({'; '.join(changes)}). The checkpoint's optimizer state (moments, step count, learning rate) "
            "is updated with the settings given now, so training does not go on as it was (torch's "
            "load_state_dict would take the saved settings). Resume with the optimizer it was saved with, "
            "or start a new fit from its weights (TrainModule.load_from_checkpoint, or load_weights)",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
