"""``python -m audiotrain.recipes.chords export --checkpoint RUN --out DIR``: a trained chord model alone, to
share or to keep.

A training checkpoint holds the AdamW moments beside the weights (twice their size) and the run's songs and
paths. The export holds the weights and the record ``predict`` reads (model, features, vocabulary, decoding,
window length), as a weights-only checkpoint folder: ``predict`` / ``evaluate --checkpoint DIR``,
``train --init_from DIR``, `ChordPredictor.from_checkpoint(DIR)` and `ChordTask.load_from_checkpoint(DIR)`
load it, and ``--resume`` refuses it (there is no optimizer state to go on with). It is written atomically
(a crash leaves no half-written folder); an existing ``--out`` is replaced only with ``--overwrite``, and
only when it is an earlier export.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from audiotrain._files import is_finder_metadata
from audiotrain._text import listed
from audiotrain.recipes._run import check_can_write, is_inside, nonempty_path, shell_command
from audiotrain.recipes.chords.model_checkpoint import (
    CHECKPOINTS_SUBDIR,
    loaded_checkpoint_note,
    network_entries,
    resolve_model_checkpoint,
    run_checkpoints,
)
from audiotrain.recipes.chords.own_model import refuse_own_model_checkpoint
from audiotrain.recipes.chords.task import CHECKPOINT_KEY, PREDICT_ENTRIES, ChordTask, stored_settings
from audiotrain.recipes.config_cli import SettingsParser, add_overwrite_argument
from audiotrain.train import checkpoint as ckpt

import mlx.core as mx

#: Marks a checkpoint folder as an export (in its trainer_state.json): the only kind --overwrite replaces.
EXPORT_KEY = "exported_from"


def export_model(checkpoint: str | Path, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Write the model of `checkpoint` (a checkpoint or run folder of the chord recipe) to `out_dir`: its
    weights and the settings `predict` needs, without the optimizer state. Returns `out_dir`.

    Refused before anything is written: a checkpoint without the chord record, weights that do not fit its
    model, an `out_dir` that exists (unless `overwrite` and it is an earlier export), one inside a
    checkpoint or a run's checkpoints folder."""
    out = Path(out_dir)

    def read(folder: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, mx.array]]:
        state = ckpt.read_model_state(folder)
        stored = stored_settings(folder, state) or {}  # each part checked, a hand-edited one named
        refuse_own_model_checkpoint(folder, stored)  # (its weights would be refused name by name)
        lacking = [name for name in ("model_config", "features", "vocabulary") if name not in stored]
        if lacking:
            raise ckpt.CheckpointError(
                f"{folder} holds no chord {', '.join(lacking)} (module_state.{CHECKPOINT_KEY} in "
                f"{ckpt.STATE_FILE}): nothing to export that predict could use; was it written by the chord "
                "recipe?"
            )
        _check_out(out, folder, overwrite)
        model_file = folder / ckpt.MODEL_FILE
        expected = ckpt.flat(ChordTask(stored["model_config"]).parameters())
        header = network_entries(ckpt.read_header(model_file))  # (not a distillation's teacher)
        ckpt.check_matches(header, expected, "ChordTask model", model_file)  # refused here, not at first use
        arrays = ckpt.read_arrays(model_file, header=header)  # (as saved: a bfloat16 export stays one)
        mx.eval(arrays)  # (MLX reads lazily: here, while the folder is known to be the one of the state)
        return state, stored, arrays

    # A save of a running fit that replaces the checkpoint between its state and its weights makes the read
    # again: the export's epoch and step are those of its weights.
    state, stored, arrays = ckpt.read_unreplaced(checkpoint, resolve_model_checkpoint, read)
    progress = state["progress"]
    exported = {
        "progress": progress,  # (read by every loader; --init_from records the epoch and step it reached)
        "random": {"mlx": state["random"]["mlx"]},  # (read_state checks it; nothing resumes from an export)
        "versions": state.get("versions"),
        "module_state": {
            CHECKPOINT_KEY: {
                "model_config": stored["model_config"],
                **{k: stored[k] for k in PREDICT_ENTRIES if k in stored},
            }
        },
        "weights_only": True,  # (the Trainer then refuses to resume from it, and says why)
        EXPORT_KEY: {"epoch": progress["epoch"], "global_step": progress["global_step"]},
    }
    # Empty optimizer and step files, as Trainer.save_checkpoint(weights_only=True) writes: a complete
    # folder, which an interrupted replacement of it is healed back to.
    return ckpt.write_checkpoint(out, arrays, {}, {}, exported)


def _run_checkpoints_folder(folder: Path) -> bool:
    """Whether `folder` is a run's checkpoints folder: ``checkpoints/``, or the relative ``--checkpoint_dir``
    the ``config.json`` above it records (one that cannot be read records none)."""
    if folder.name == CHECKPOINTS_SUBDIR:
        return True
    try:
        return run_checkpoints(folder.parent).resolve() == folder
    except ckpt.CheckpointError:
        return False


def _check_out(out: Path, folder: Path, overwrite: bool) -> None:
    """Refuse an `out` the export would damage or that holds something else, before any work."""
    if is_inside(out, folder) or is_inside(folder, out):
        raise ValueError(
            f"--out {out}: it is, or holds, or lies inside the checkpoint {folder}; choose a separate folder"
        )
    held_in = folder.resolve().parent
    if _run_checkpoints_folder(held_in):
        if is_inside(out, held_in):
            raise ValueError(
                f"--out {out} lies in the run's checkpoints folder {held_in}, whose checkpoints "
                "the run replaces and removes; choose a folder outside it, such as RUN/model or a new one"
            )
    if os.path.lexists(out):
        if not overwrite:
            raise FileExistsError(
                f"--out {out} exists; choose a new folder, or pass --overwrite to replace an earlier export "
                "there"
            )
        if not _is_export(out):
            what = ckpt.foreign_entry(out) or "a training checkpoint"
            raise FileExistsError(
                f"--out {out} is {what}, not an earlier export: --overwrite replaces only an export; "
                "choose a new folder"
            )
        # The export is replaced whole: what else the folder holds (a note, an export put inside it) would go;
        # not what macOS wrote there as the folder was opened in the Finder (.DS_Store, ._model.safetensors).
        others = sorted(
            p.name
            for p in out.iterdir()
            if p.name not in ckpt.CHECKPOINT_FILES and not is_finder_metadata(p.name)
        )
        if others:
            raise FileExistsError(
                f"--out {out} is an earlier export, but it also holds {listed(others, 10)}, which --overwrite "
                "would delete with it (it replaces the folder whole); move them out, or choose a new folder"
            )
    check_can_write(out.parent, f"--out {out}")


def _is_export(path: Path) -> bool:
    """Whether `path` is a checkpoint folder an earlier export wrote."""
    if not ckpt.is_checkpoint_folder(path):
        return False
    try:
        return EXPORT_KEY in ckpt.read_state(path)
    except ckpt.CheckpointError:
        return False


def build_parser() -> argparse.ArgumentParser:
    parser = SettingsParser(
        prog="python -m audiotrain.recipes.chords export",
        description="Write a trained chord model alone (weights and the settings predict needs, without the "
        "optimizer's state: about a third of a checkpoint) to a new folder, which predict, evaluate "
        "--checkpoint and train --init_from load as a checkpoint.",
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        type=nonempty_path,
        help="a checkpoint folder, or a run folder (its checkpoints/best, else checkpoints/last)",
    )
    parser.add_argument("--out", required=True, type=nonempty_path, help="the folder to write (new)")
    add_overwrite_argument(
        parser,
        help="replace an earlier export at --out (never anything else: a training checkpoint, another "
        "folder)",
    )
    return parser


#: The commands an export serves, with their flag for it.
USES = (("predict", "--checkpoint"), ("evaluate", "--checkpoint"), ("train", "--init_from"))


def main(argv: list[str]) -> int:
    """The ``export`` command (its errors are printed by the recipe's `cli.main`, as every command's)."""
    args = build_parser().parse_args(argv)
    out = export_model(args.checkpoint, args.out, args.overwrite)
    # Given a run folder, which of its checkpoints was exported (best, or last where best is missing), as
    # predict and evaluate say which they use.
    note = loaded_checkpoint_note(Path(args.checkpoint), resolve_model_checkpoint(args.checkpoint))
    if note:
        print(note, file=sys.stderr)
    size = (out / ckpt.MODEL_FILE).stat().st_size
    use = [shell_command(command, flag, out) for command, flag in USES]  # (quoted, so a use can be pasted)
    print(
        f"exported the model of {args.checkpoint} to {out} ({size / 1e6:.1f} MB of weights); use it with "
        f"{', '.join(use[:-1])} or {use[-1]}"
    )
    return 0
