"""``python -m audiotrain.recipes.chords --help``, answered before the recipe's modules load.

Every chords command imported the whole recipe (the trainer, the model, the data pipeline, ~1 s of CPU) before
reading its command line, so ``--help`` took as long to print as a command to start. `main` prints the help
itself and hands every other command line to `audiotrain.recipes.chords.cli.main`.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from collections.abc import Sequence

from audiotrain._help_text import STOP_EXIT_STATUSES, exit_status_help, help_text
from audiotrain._invocation import as_started

#: What ``--help`` prints, in parts wrapped to the terminal by `top_help` (it was fixed at 110 columns).
_TOP_ABOUT = """\
Chord recognition on MLX: train a model on songs with chord annotations, score it with mir_eval, and
transcribe audio to .lab files."""

_TOP_COMMANDS = (
    ("(none) / demo", "generate or reuse synthetic demo songs, train, evaluate on held-out songs, and write "
     "checkpoints, history.json, plots and .lab predictions to a run folder"),
    ("train", "train on your songs: --data DIR (audio files with .lab/.jams beside them, same stem); "
     "--init_from RUN starts from a trained model's weights (fine-tuning)"),
    ("evaluate", "score a checkpoint on annotated songs: --checkpoint CKPT --data DIR [-o OUT] "
     "[--against CKPT2: each score's difference from CKPT2's, paired over songs]"),
    ("score", "score .lab transcriptions you already have (predict's, Chordino's, another tool's) without a "
     "model or audio: PREDICTIONS --data DIR [-o OUT] [--against PREDICTIONS2]; evaluate's scores and files"),
    ("predict", "transcribe audio: --checkpoint CKPT song.wav|folder [-o out.lab|dir]"),
    ("cv", "k-fold cross-validation grouped by song: [--data DIR] --folds 5 (demo songs without --data); "
     "per-fold runs, out-of-fold .lab predictions, mean and std of every score"),
    ("export", "the model alone, to share: --checkpoint RUN --out DIR (weights and settings, without the "
     "optimizer's state); predict, evaluate and --init_from load DIR as a checkpoint"),
)  # fmt: skip

_TOP_AFTER = """\
Each command has its own --help; `demo --help` and `train --help` list every training setting (learning
rate, epochs, model size, features, decoding, ...)."""

#: What a script that runs a command can branch on (the same under `audiotrain chords`).
_TOP_EXIT_STATUSES = (
    ("0", "done"),
    (
        "1",
        "done, but songs were skipped or outputs not written (evaluate, score, predict on a folder: each one "
        "listed); or stopped, not done: by a full disk, by too little memory (a model too big for what is "
        "left, a ulimit -v), or by an unforeseen error (its traceback)",
    ),
    ("2", "refused, or stopped by an error it names (a flag, a setting, a file, a checkpoint)"),
    *STOP_EXIT_STATUSES,
)

_TOP_EXAMPLES = """\
  python -m audiotrain.recipes.chords
  python -m audiotrain.recipes.chords --num_epochs 10 --model.d_model 96
  python -m audiotrain.recipes.chords train --data ~/songs --run_dir runs/mine
  python -m audiotrain.recipes.chords train --data ~/songs --init_from runs/demo --run_dir runs/mine
  python -m audiotrain.recipes.chords evaluate --checkpoint runs/mine/checkpoints/best --data ~/songs_test
  python -m audiotrain.recipes.chords predict --checkpoint runs/mine song.wav -o song.lab"""


def top_help() -> str:
    """The recipe's ``--help``, wrapped to the terminal as CLAP's (`help_text`); the commands' descriptions
    hang under their column."""
    width = max(shutil.get_terminal_size().columns - 2, 40)
    commands = "\n".join(
        textwrap.fill(
            text,
            width,
            initial_indent=f"  {name:<14}  ",
            subsequent_indent=" " * 18,
            break_long_words=False,
            break_on_hyphens=False,
        )
        for name, text in _TOP_COMMANDS
    )
    return "\n\n".join(
        [
            as_started("usage: python -m audiotrain.recipes.chords [COMMAND] [options]"),
            help_text(_TOP_ABOUT),
            f"commands:\n{commands}",
            help_text(_TOP_AFTER),
            exit_status_help(_TOP_EXIT_STATUSES),
            f"examples:\n{help_text(as_started(_TOP_EXAMPLES))}",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`audiotrain.recipes.chords.cli.main`, whose modules load only for a command line other than ``--help``
    (what ``python -m audiotrain.recipes.chords`` runs)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(top_help())
        return 0
    from audiotrain.recipes.chords.cli import main as run_command

    return run_command(argv)
