"""A new chord run that starts from another checkpoint's model weights (``train --init_from CHECKPOINT``):
fine-tuning the demo model, say, on one's own songs.

Only the weights come along: the optimizer, the learning-rate schedule, the epochs and the songs are the new
run's, in a run folder of its own. The weights fit only the model and features they were trained with, so
the command line starts from the checkpoint's model and feature settings (`with_checkpoint_model`), and a
preset, ``--config`` file or flag that changes one of them is refused, naming it (`check_init_from`); only
`INIT_FROM_FREE_MODEL_FIELDS` may differ. The run's config.json, and each of its checkpoints, record where it
started (``init_from``: the checkpoint folder, and the epoch and step it had reached).

A ``--resume`` of such a run goes on with the resumed checkpoint's own weights, and takes its model and
feature settings, and its ``init_from`` record, from that checkpoint too (`model_settings_checkpoint`,
`started_from`): the folder ``--init_from`` named is not read again, so the run resumes whether it still
holds that model, holds another one since, or is gone.
"""

from __future__ import annotations

from dataclasses import asdict, fields, replace
from pathlib import Path

from audiotrain.models.chord_model import ChordModelConfig
from audiotrain.recipes._run import is_inside
from audiotrain.recipes.chords.config import ChordFeatureConfig, TrainingConfig
from audiotrain.recipes.chords.model_checkpoint import (
    network_entries,
    not_a_chord_checkpoint,
    resolve_model_checkpoint,
    stand_in_for_best,
)
from audiotrain.recipes.chords.own_model import refuse_own_model_checkpoint
from audiotrain.recipes.chords.task import CHECKPOINT_KEY, ChordTask, stored_settings
from audiotrain.train import checkpoint as ckpt

import mlx.core as mx

__all__ = [
    "INIT_FROM_FREE_MODEL_FIELDS",
    "check_init_from",
    "check_resumed_init_from",
    "load_initial_weights",
    "model_settings_checkpoint",
    "started_from",
    "with_checkpoint_model",
]


#: Model settings that may differ from an ``--init_from`` checkpoint's: they change how the network trains,
#: not what its weights compute.
INIT_FROM_FREE_MODEL_FIELDS = frozenset({"dropout"})


def _init_settings(init_from: str | Path) -> tuple[Path, dict, ChordModelConfig, ChordFeatureConfig]:
    """(checkpoint folder, trainer state, model settings, feature settings) of ``--init_from`` `init_from`:
    a checkpoint folder, or a run folder (its best checkpoint, else its last)."""
    folder = resolve_model_checkpoint(init_from)
    state = ckpt.read_model_state(folder)
    stored = stored_settings(folder, state) or {}  # a hand-edited setting is named with its file
    refuse_own_model_checkpoint(folder, stored)  # (its weights would be refused name by name)
    if "model_config" not in stored or "features" not in stored:
        error = not_a_chord_checkpoint(folder, state, "no chord model and feature settings", CHECKPOINT_KEY)
        raise ckpt.CheckpointError(f"--init_from {init_from}: {error}")
    model = ChordModelConfig.from_dict(stored["model_config"])
    return folder, state, model, ChordFeatureConfig.from_stored(stored["features"])


def with_checkpoint_model(config: TrainingConfig, checkpoint: str | Path) -> TrainingConfig:
    """`config` with the model and feature settings and ``data.window_frames`` of `checkpoint` (see
    `model_settings_checkpoint`): the base that ``train --init_from`` applies its preset, ``--config`` file
    and flags to, so that a run started from a checkpoint's weights, and its resume, has its model and
    windows without repeating the flags it was trained with."""
    folder, state, model, features = _init_settings(checkpoint)
    # The checkpoint's window length too, as `song_loaders` and `ChordPredictor.from_checkpoint` take it:
    # a fine-tune of a 32-frame run trained on 96-frame windows (the default), which 6 s songs could not fill.
    window = (stored_settings(folder, state) or {}).get("window_frames")
    data = replace(config.data, window_frames=window) if isinstance(window, int) else config.data
    return replace(config, model=model, features=features, data=data)


def started_from(state: dict) -> dict | None:
    """The ``init_from`` record of a checkpoint (`state`, its trainer state) whose run started from another
    checkpoint's weights (that checkpoint, and the epoch and step it had reached), or None for a run that
    started from random weights."""
    stored = (state.get("module_state") or {}).get(CHECKPOINT_KEY)
    started = stored.get("init_from") if isinstance(stored, dict) else None
    return started if isinstance(started, dict) and isinstance(started.get("checkpoint"), str) else None


def model_settings_checkpoint(resume: str | Path | None, init_from: str | Path | None) -> Path | None:
    """The checkpoint whose model and feature settings a ``train`` command starts from
    (`with_checkpoint_model`), or None where its preset, ``--config`` file and flags give them (a run from
    random weights, and the resume of one: its resume command repeats them).

    A new run with ``--init_from`` takes that checkpoint's. The ``--resume`` of a run that started with
    ``--init_from`` (its checkpoint records it; `started_from`), and a ``--resume`` given with one, take the
    resumed checkpoint's own: it holds them beside the weights the run goes on with, whereas the folder
    ``--init_from`` names may hold another model since, or be gone (moved, deleted), and is not read. A
    checkpoint to resume that cannot be read, or holds no chord settings, gives None: the resume's checks
    say what is wrong with it."""
    if resume is None:
        return Path(init_from) if init_from is not None else None
    try:
        folder = ckpt.resolve_checkpoint(resume)
        state = ckpt.read_state(folder)
        stored = stored_settings(folder, state) or {}
    except (OSError, ValueError, ckpt.CheckpointError):
        return None
    if "model_config" not in stored or "features" not in stored:
        return None
    return folder if init_from is not None or started_from(state) is not None else None


def check_resumed_init_from(resume: str | Path, state: dict, init_from: str | Path) -> None:
    """Refuse an ``--init_from`` beside ``--resume`` (checkpoint state `state`) that names another start than
    the resumed run's: a resume trains the checkpoint's own weights, so it only repeats where the run started
    (the resume command an interrupted run prints keeps it). It is compared by its path, not read: that
    checkpoint, or a folder holding it (its run folder), passes, also where it holds another model since or
    is gone."""
    recorded = (started_from(state) or {}).get("checkpoint")
    given = Path(init_from).expanduser().resolve()
    if recorded is not None and Path(recorded).resolve().is_relative_to(given):
        return
    where, that_one = (
        (f"the weights of {recorded}", " (or give that one)") if recorded else ("random weights", "")
    )
    raise ValueError(
        f"--init_from {init_from} with --resume {resume}: the resumed run started from {where}, and a resume "
        "trains the checkpoint's own weights, with its model and feature settings. Leave --init_from out to "
        f"resume it{that_one}; to fine-tune from {init_from}, start a new run folder with --init_from and "
        "without --resume"
    )


def check_init_from(
    config: TrainingConfig, init_from: str | Path, run_dir: Path | None
) -> tuple[Path, dict[str, object]]:
    """The checks of ``--init_from`` (a new run whose model starts from a checkpoint's weights), before any
    data is read or anything written; returns the checkpoint folder and what the run's config.json records
    of it. Refused: a checkpoint inside `run_dir` (the new run gets a folder of its own; ``--overwrite``
    would remove the weights it starts from), and any model or feature setting of `config` other than the
    checkpoint's, each named (the weights were trained for those: another input width or model shape does
    not load, and other features or attention would feed the model inputs it never saw). Only the model's
    `INIT_FROM_FREE_MODEL_FIELDS` may differ."""
    folder, state, model, features = _init_settings(init_from)
    if run_dir is not None and is_inside(folder, run_dir):
        raise ValueError(
            f"--init_from {init_from} lies inside --run_dir {run_dir}: a run started from a checkpoint's "
            "weights gets a folder of its own (pass another --run_dir); to go on with that checkpoint's own "
            "run, use --resume instead"
        )
    there, here = asdict(features), asdict(config.features)
    feature_changes, kind_hint = ChordFeatureConfig.differences(there, here)
    changed = [
        f"features.{k} ({there[k]!r} there, {here[k]!r} here" + (f": {kind_hint})" if k == "kind" else ")")
        for k in feature_changes
    ] + [
        f"model.{f.name} ({getattr(model, f.name)!r} there, {getattr(config.model, f.name)!r} here)"
        for f in fields(ChordModelConfig)
        if f.name not in INIT_FROM_FREE_MODEL_FIELDS
        and getattr(model, f.name) != getattr(config.model, f.name)
    ]
    if changed:
        raise ValueError(
            f"--init_from {folder}: its weights were trained with other settings than this run's: "
            + ", ".join(changed)
            + ". A run started from a checkpoint takes its model and feature settings; drop the --preset, "
            "--config entries or flags that change them (only --model.dropout may differ)"
        )
    model_file = folder / ckpt.MODEL_FILE
    expected = ckpt.flat(ChordTask(config.model).parameters())
    header = network_entries(ckpt.read_header(model_file))  # (not a distillation's teacher)
    ckpt.check_matches(header, expected, "ChordTask model", model_file)
    progress = state.get("progress") or {}
    record = {"checkpoint": str(folder.resolve())}
    record.update({k: progress[k] for k in ("epoch", "global_step") if isinstance(progress.get(k), int)})
    return folder, record


def load_initial_weights(task: ChordTask, folder: Path, record: dict, log) -> None:
    """The weights of checkpoint `folder` into `task`'s model (checked by `check_init_from`): nothing else of
    that run (its optimizer moments, schedule position, epochs and songs) comes along."""
    model_file = folder / ckpt.MODEL_FILE
    header = network_entries(ckpt.read_header(model_file))
    task.update(ckpt.read_tree(model_file, task.parameters(), "chord model", header=header))
    mx.eval(task.parameters())
    epochs = record.get("epoch")
    after = f" (after {epochs} epoch{'s' * (epochs != 1)} of its run)" if epochs is not None else ""
    # As predict says it: a run folder's last standing in for its best is other weights than those meant.
    stand_in = stand_in_for_best(folder, ckpt.read_model_state(folder))
    log(
        f"model: weights from {folder}{after}{f', {stand_in}' if stand_in else ''}; a new optimizer and "
        "learning-rate schedule, epochs counted from 0"
    )
