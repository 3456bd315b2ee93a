"""What the CLAP loaders say of a folder a training run wrote that is no Hugging Face CLAP folder: a run
folder (its model is its hf_model/) or a trainer checkpoint (exported first). A script loads the run folder,
or its checkpoints/last, after fine-tuning as naturally as the model; the loaders named neither what to load
instead ("no weights file", "config.json: no such file")."""

from __future__ import annotations

import shlex
from pathlib import Path

# (audiotrain.train.checkpoint.STATE_FILE; importing the trainer here would load it for every model load)
TRAINER_STATE_FILE = "trainer_state.json"
#: ({} is the checkpoint, quoted for a shell: a path with a space is pasted whole)
EXPORT_COMMAND = "python -m audiotrain.recipes.clap export --checkpoint {} --out DIR"
NOT_A_MODEL = "not a Hugging Face CLAP folder"


def training_output_note(folder: Path) -> str | None:
    """Why `folder` is no model to load and what to load instead, or None where it is not a run's output.

    A trainer checkpoint (it holds ``trainer_state.json``) is exported first; a run folder (its
    ``config.json`` beside ``checkpoints/``) holds its fine-tuned model in ``hf_model/``, or, where the run
    did not finish, exports one of its checkpoints.
    """
    if (folder / TRAINER_STATE_FILE).is_file():
        return (
            f"{folder} is a trainer checkpoint (it holds {TRAINER_STATE_FILE}), {NOT_A_MODEL}; export it "
            f"first: {EXPORT_COMMAND.format(shlex.quote(str(folder)))}, then load DIR"
        )
    if not ((folder / "config.json").is_file() and (folder / "checkpoints").is_dir()):
        return None
    own = folder / "hf_model"
    if (own / "config.json").is_file():
        return f"{folder} is a training run's folder, {NOT_A_MODEL}; its fine-tuned model is {own}: load that"
    return (
        f"{folder} is a training run's folder without hf_model/ (the run did not finish); export one of its "
        f"checkpoints first: {EXPORT_COMMAND.format(shlex.quote(str(folder / 'checkpoints' / 'last')))}, "
        "then load DIR"
    )
