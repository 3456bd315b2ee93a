"""Which checkpoint folder a chord model is loaded from (``predict``, ``evaluate``, ``--init_from``,
`ChordTask.load_from_checkpoint`, ``export``), and what of it must be there.

Loading a model reads its weights (``model.safetensors``) and its record (``trainer_state.json``: the model,
feature and decoding settings and the vocabulary): only those two files must be there, so a folder shared
without the optimizer's moments (``python -m audiotrain.recipes.chords export``) loads as any checkpoint.
Resuming a run reads the optimizer too, and asks for it elsewhere (`audiotrain.train.checkpoint`).

Loading reads nothing outside the folder it was given: a run folder whose ``checkpoints/best`` is a link to
a folder elsewhere is refused, naming where it leads, as a linked file inside a checkpoint is. A run trained
with a relative ``--checkpoint_dir`` (its ``config.json`` records it) keeps its checkpoints there, inside the
run folder, and is read from there; a cross-validation run folder holds one run per fold (``fold<k>/``), and
is refused naming them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

from audiotrain._text import plural
from audiotrain.train import checkpoint as ckpt

V = TypeVar("V")

#: Name of the run sub-folder `resolve_model_checkpoint` looks in when given a run folder.
CHECKPOINTS_SUBDIR = "checkpoints"
#: How to make a folder that holds a model alone (said where one is incomplete).
EXPORT_HINT = (
    "to share a model, python -m audiotrain.recipes.chords export --checkpoint RUN --out DIR writes a folder "
    "with its weights and the settings predict needs"
)


#: What the chord recipe loads, said where it was given a CLAP model instead.
CHORD_MODELS = (
    "the chord recipe loads a chord recipe run, checkpoint or export (a CLAP model is the CLAP recipe's: "
    "python -m audiotrain.recipes.clap)"
)


#: Where a `ChordTask` keeps its network: a checkpoint's weights of it are named ``model.<layer>...``.
TASK_NETWORK_PREFIX = "model."


def network_entries(entries: Mapping[str, V]) -> dict[str, V]:
    """The entries of a task checkpoint's `model.safetensors` (its header, or its arrays) that are the chord
    network's (``model.``), under their names. A `ChordTask` subclass's other submodules are saved beside it
    (a distillation's frozen ``self.teacher``, an auxiliary head): they are no part of the network that
    ``predict``, ``evaluate``, ``export`` and ``--init_from`` load, which refused the checkpoint for them ("26
    unexpected (e.g. teacher.bass_front.bias, ...)"). A file without ``model.`` entries (the network's own
    `save_weights`) is the network's whole."""
    if not any(name.startswith(TASK_NETWORK_PREFIX) for name in entries):
        return dict(entries)
    return {name: entry for name, entry in entries.items() if name.startswith(TASK_NETWORK_PREFIX)}


def not_a_chord_checkpoint(folder: Path, state: dict, missing: str, key: str) -> ckpt.CheckpointError:
    """The error for checkpoint `folder` (trainer state `state`) whose record lacks `missing` (the chord
    task's, under module_state.`key`): a CLAP recipe checkpoint is named as one (its record of the model
    it trained from, with the front end), any other asked about."""
    record = state.get("model")
    if isinstance(record, dict) and "front_end" in record:
        return ckpt.CheckpointError(
            f"{folder} is a CLAP recipe checkpoint, not a chord model; {CHORD_MODELS}"
        )
    return ckpt.CheckpointError(
        f"{folder} holds {missing} (module_state.{key} in {ckpt.STATE_FILE}); was it written by the chord "
        "recipe?"
    )


def _is_hugging_face_clap(folder: Path) -> bool:
    """Whether `folder` holds a Hugging Face CLAP config.json (a CLAP export, a CLAP run's hf_model/)."""
    config = folder / "config.json"
    try:  # (is_file first: a FIFO in its place is not opened)
        return config.is_file() and json.loads(config.read_text(encoding="utf-8")).get("model_type") == "clap"
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return False


#: How `stand_in_for_best` begins (`loaded_checkpoint_note` holds it where last stands in for best).
NOT_BEST = "not the run's best"


class StandInCheckpointWarning(UserWarning):
    """A run folder's ``last`` checkpoint was loaded in place of its ``best`` (missing, or damaged)."""


def resolve_model_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder from `path`: a checkpoint itself, or a run folder (its ``checkpoints/best``, else
    ``checkpoints/last``; ``checkpoints`` being the relative ``checkpoint_dir`` its config.json records),
    holding at least ``model.safetensors`` and ``trainer_state.json``. A ``best`` that the run's save is
    swapping in (briefly missing) is waited for, not passed over for ``last``; one whose save was killed
    midway is read from what it left, with a warning, as ``RUN/checkpoints/best`` is. A folder this user
    may not read (another user's run, made under ``umask 077``) is a `ckpt.CheckpointError` naming it. A
    leading ``~`` is the home folder, as in the commands' ``--checkpoint`` and
    Trainer(default_root_dir=...)."""
    path = Path(path).expanduser()
    try:
        return _resolved_model_checkpoint(path)
    except PermissionError as error:  # (pathlib's exists() raised it, a traceback naming no fix)
        cause = error.strerror or error
        closed = _closed_folder_above(path)
        if closed is None:
            raise ckpt.CheckpointError(
                f"{path}: cannot read it ({cause}): another user's run, made under a umask such as 077? Its "
                f"owner can share it: chmod -R go+rX {path}"
            ) from None
        # (chmod -R of `path` alone leaves the folders on its way closed: each needs go+x, not all its files)
        way = [closed, *(p for p in reversed(path.parents) if p.is_relative_to(closed) and p != closed)]
        raise ckpt.CheckpointError(
            f"{path}: cannot look into {closed} ({cause}): another user's folder, made under a umask such as "
            f"077? Its owner can share the run: chmod go+x {' '.join(map(str, way))} && chmod -R go+rX {path}"
        ) from None


def _closed_folder_above(path: Path) -> Path | None:
    """The first folder on the way to `path` that this user may not look into, or None (`path` itself
    answers: what is closed is inside it)."""
    for place in [*reversed(path.parents), path]:
        try:
            os.lstat(place)
        except PermissionError:
            return place.parent
        except OSError:
            return None
    return None


def _resolved_model_checkpoint(path: Path) -> Path:
    """`resolve_model_checkpoint`'s work."""
    if path.is_dir() and not (path / ckpt.STATE_FILE).exists():
        for name in ("best", "last"):
            candidate = run_checkpoints(path) / name
            if (
                (candidate / ckpt.STATE_FILE).exists()
                or ckpt.being_saved(candidate)
                or ckpt.left_by_interrupted_save(candidate)
            ):
                _refuse_link_out_of(path, candidate)
                _refuse_several_runs(path, candidate)
                return _model_folder(candidate)
        refuse_cv_run(path)
        _refuse_run_without_checkpoints(path)
    return _model_folder(path)


def _refuse_run_without_checkpoints(path: Path) -> None:
    """Refuse a run folder (one with its checkpoints folder: a Hugging Face model has a config.json too)
    that kept no best or last: a run stopped before its first save, or one whose checkpoints were moved.
    Taken for a checkpoint itself, it was "not a complete audiotrain checkpoint", naming neither the run
    nor where its checkpoints were sought."""
    checkpoints = run_checkpoints(path)
    if not checkpoints.is_dir():
        return
    others = sorted(p.parent.name for p in checkpoints.glob(f"*/{ckpt.STATE_FILE}"))[:3]
    found = f" (it holds {', '.join(others)}: give one of them)" if others else ""
    raise ckpt.CheckpointError(
        f"{path} is a run folder, but {checkpoints} holds no best or last checkpoint{found}: a training "
        "stopped before its first save, or its checkpoints moved elsewhere? Give a checkpoint folder"
    )


def run_checkpoints(run_folder: Path) -> Path:
    """Where the run in `run_folder` saved its checkpoints: the relative ``checkpoint_dir`` its
    ``config.json`` records, where that lies inside the run folder, else ``checkpoints`` (an absolute one
    lies elsewhere, and is not read: `ckpt.resolve_checkpoint`'s error names it). A ``config.json`` that is
    a link leading out of the run folder, or not JSON, is refused (`ckpt.CheckpointError`): it chooses the
    checkpoint."""
    recorded = ckpt.recorded_checkpoint_dir(run_folder)
    if isinstance(recorded, str) and recorded.strip() and not Path(recorded).expanduser().is_absolute():
        folder = run_folder / recorded
        if folder.resolve().is_relative_to(run_folder.resolve()):
            return folder
    return run_folder / CHECKPOINTS_SUBDIR


#: The run folders a cross-validation run keeps, one per fold (`audiotrain.recipes.chords.cv`).
_FOLD_FOLDER = re.compile(r"fold\d+")


def refuse_cv_run(path: Path) -> None:
    """Refuse a cross-validation run folder `path` (one run per fold, no model of its own), naming its folds:
    "not a complete checkpoint" named none of them."""
    try:
        entries = list(path.iterdir())
    except FileNotFoundError:
        return  # (removed meanwhile, as a deploy replacing it does: the checkpoint's own check names it)
    folds = sorted(
        (p for p in entries if p.is_dir() and _FOLD_FOLDER.fullmatch(p.name)), key=lambda p: int(p.name[4:])
    )
    if not folds:
        return
    raise ckpt.CheckpointError(
        f"{path} is a cross-validation run, with a model per fold and none of its own: use one fold's run "
        f"folder, e.g. {folds[0]} (its folds: {', '.join(p.name for p in folds)})"
    )


def _refuse_several_runs(run_folder: Path, candidate: Path) -> None:
    """Refuse a folder where the core Trainer saved several runs (a fine-tuning script run twice with one
    ``default_root_dir``: ``checkpoints/last``, then ``checkpoints/version_1/last``): its ``checkpoints/last``
    is the first run's, and loading it gave the older model with nothing said."""
    later = sorted(
        (
            version / name
            for version in candidate.parent.glob("version_*")
            for name in ("best", "last")
            if (version / name / ckpt.STATE_FILE).exists()
        ),
        key=lambda folder: int(folder.parent.name[8:]) if folder.parent.name[8:].isdigit() else 0,
    )
    if later:
        raise ckpt.CheckpointError(
            f"{run_folder} holds the checkpoints of several Trainer runs ({candidate}, "
            f"{', '.join(str(folder) for folder in later)}): give the checkpoint folder you mean"
        )


def loaded_checkpoint_note(given: Path, folder: Path) -> str | None:
    """One line naming the checkpoint `folder` that run folder `given` was loaded from, with how far its run
    had trained, and saying so where the run's best checkpoint (chosen on validation) is missing, or cannot
    be loaded, and its last one stands in for it; None where `given` is the checkpoint itself."""
    if folder.resolve() == given.resolve():
        return None
    try:
        state = ckpt.read_model_state(folder)
    except ckpt.CheckpointError:  # (it was just loaded: a save may have replaced it since)
        state = {}
    progress = state.get("progress") or {}
    epochs, steps = progress.get("epoch"), progress.get("global_step")
    trained = ""
    if isinstance(epochs, int) and isinstance(steps, int):
        trained = f" (after {plural(epochs, 'epoch')}, {plural(steps, 'step')})"
    stand_in = stand_in_for_best(folder, state)
    return f"using {folder}{trained}" + (f", {stand_in}" if stand_in else "")


def stand_in_for_best(folder: Path, state: dict) -> str | None:
    """Where `folder` is a run's ``last`` checkpoint (trainer state `state`) loaded because the run's
    ``best``, which its validation chose, is missing or cannot be loaded: that, in words; else None."""
    best = folder.with_name("best")
    # A best without its record (emptied, a copy cut short) is passed over for last as a missing one is.
    if folder.name == "last" and not (best / ckpt.STATE_FILE).exists() and _had_best(state):
        gone = "is missing" if not best.exists() else f"cannot be loaded (it holds no {ckpt.STATE_FILE})"
        return f"{NOT_BEST}: {best}, which its validation chose, {gone}"
    return None


def _had_best(state: dict) -> bool:
    """Whether the trainer state `state` records a ``best`` checkpoint (its run validated, and kept one)."""
    for callback in (state.get("callbacks") or {}).values():
        best = callback.get("best_model_path") if isinstance(callback, dict) else None
        if isinstance(best, str) and Path(best).name == "best":
            return True
    return False


def _model_folder(path: Path) -> Path:
    try:
        return ckpt.resolve_checkpoint(path, required=ckpt.MODEL_FILES)
    except ckpt.CheckpointError as error:
        if _is_hugging_face_clap(path):  # (the export hint below would not make it one)
            raise ckpt.CheckpointError(
                f"{path} is a Hugging Face CLAP model, not a chord model; {CHORD_MODELS}"
            ) from None
        if (path / ckpt.MODEL_FILE).is_file() and not (path / ckpt.STATE_FILE).exists():  # (their record)
            raise ckpt.CheckpointError(f"{error}; {EXPORT_HINT}") from None
        raise


def _refuse_link_out_of(run_folder: Path, checkpoint: Path) -> None:
    """Refuse `checkpoint` (found in `run_folder`) when it, or ``checkpoints``, is a link leading outside
    `run_folder`: given a run folder, the model read must be that run's."""
    target = checkpoint.resolve()
    if not target.is_relative_to(run_folder.resolve()):
        raise ckpt.CheckpointError(
            f"{checkpoint} leads outside the run folder {run_folder} (a link to {target}); loading reads "
            f"nothing outside the folder it was given: name that checkpoint itself ({target}), or copy it "
            "into the run folder (cp -rL) instead of linking it"
        )
