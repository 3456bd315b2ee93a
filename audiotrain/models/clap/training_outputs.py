"""What the CLAP loaders say of a folder a training run wrote that is no Hugging Face CLAP folder: a run
folder (its model is its hf_model/) or a trainer checkpoint (exported first). A script loads the run folder,
or its checkpoints/last, after fine-tuning as naturally as the model; the loaders named neither what to load
instead ("no weights file", "config.json: no such file")."""

from __future__ import annotations

import json
from pathlib import Path

from audiotrain._text import shell_word

# (audiotrain.train.checkpoint.STATE_FILE; importing the trainer here would load it for every model load)
TRAINER_STATE_FILE = "trainer_state.json"
#: ({} is the checkpoint, quoted for a shell: a path with a space is pasted whole)
EXPORT_COMMAND = "python -m audiotrain.recipes.clap export --checkpoint {} --out DIR"
NOT_A_MODEL = "not a Hugging Face CLAP folder"
#: The chord recipe's key in a checkpoint's module_state (audiotrain.recipes.chords.task.CHECKPOINT_KEY).
CHORD_TASK_KEY = "chord_recognition"


def holds_chord_state(state: object) -> bool:
    """Whether `state` (a trainer_state.json's content) is a chord recipe checkpoint's: its task's key."""
    module_state = state.get("module_state") if isinstance(state, dict) else None
    return isinstance(module_state, dict) and CHORD_TASK_KEY in module_state


def _is_chord_checkpoint(folder: Path) -> bool:
    state_file = folder / TRAINER_STATE_FILE
    if not state_file.is_file():  # (a FIFO in its place is not opened: a read waited for a writer forever)
        return False
    try:
        return holds_chord_state(json.loads(state_file.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, ValueError):  # an unreadable one is left to the load to name
        return False


def chord_recipe_output(folder: Path) -> str | None:
    """Which chord recipe output `folder` is: "checkpoint" (an export too), "run", or None for neither.
    A chord run looks like a CLAP run (config.json beside checkpoints/) but holds no CLAP model: the
    loaders' advice for a CLAP run "that did not finish" (a CLAP export) fails on it."""
    if _is_chord_checkpoint(folder):
        return "checkpoint"
    checkpoints = folder / "checkpoints"
    if (folder / "config.json").is_file() and checkpoints.is_dir():
        if any(_is_chord_checkpoint(inside) for inside in checkpoints.iterdir() if inside.is_dir()):
            return "run"
    return None


def cache_repository_note(folder: Path) -> str | None:
    """What to pass instead of a Hugging Face cache repository folder (``models--owner--name/``, the name
    ``ls ~/.cache/huggingface/hub`` shows), which holds its model only in ``snapshots/<commit>/``; else
    None."""
    if not (folder.name.startswith("models--") and (folder / "snapshots").is_dir()):
        return None
    hub_id = folder.name.removeprefix("models--").replace("--", "/", 1)
    try:
        commit = (folder / "refs" / "main").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        commit = ""
    snapshots = sorted(p.name for p in (folder / "snapshots").iterdir() if p.is_dir())
    snapshot = folder / "snapshots" / (commit if commit in snapshots else "COMMIT")
    held = f" (it holds {', '.join(snapshots)})" if commit not in snapshots else " (the one refs/main names)"
    return (
        f"{folder} is a Hugging Face cache repository folder, {NOT_A_MODEL}: its model is a snapshot: pass "
        f"{snapshot}{held}, or the hub id {hub_id}, which loads from this cache offline "
        f"(HF_HUB_OFFLINE=1 HF_HUB_CACHE={folder.parent})"
    )


def training_output_note(folder: Path) -> str | None:
    """Why `folder` is no model to load and what to load instead, or None where it is not a run's output.

    A trainer checkpoint (it holds ``trainer_state.json``) is exported first; a run folder (its
    ``config.json`` beside ``checkpoints/``) holds its fine-tuned model in ``hf_model/``, or, where the run
    did not finish, exports one of its checkpoints. A chord recipe's run or checkpoint is named as one.
    """
    repository = cache_repository_note(folder)
    if repository:
        return repository
    chords = chord_recipe_output(folder)
    if chords:
        return (
            f"{folder} is a chord recipe {chords}, not a CLAP model; load it with the chord recipe "
            "(audiotrain.recipes.chords: ChordPredictor.from_checkpoint, ChordTask.load_from_checkpoint)"
        )
    if (folder / TRAINER_STATE_FILE).is_file():
        return (
            f"{folder} is a trainer checkpoint (it holds {TRAINER_STATE_FILE}), {NOT_A_MODEL}; export it "
            f"first: {EXPORT_COMMAND.format(shell_word(str(folder)))}, then load DIR"
        )
    if not ((folder / "config.json").is_file() and (folder / "checkpoints").is_dir()):
        return None
    own = folder / "hf_model"
    if (own / "config.json").is_file():
        return f"{folder} is a training run's folder, {NOT_A_MODEL}; its fine-tuned model is {own}: load that"
    return (
        f"{folder} is a training run's folder without hf_model/ (the run did not finish); export one of its "
        f"checkpoints first: {EXPORT_COMMAND.format(shell_word(str(folder / 'checkpoints' / 'last')))}, "
        "then load DIR"
    )
