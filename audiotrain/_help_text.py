"""The recipes' help text wrapped to the terminal, apart from their parsers' modules so that ``--help``
prints before those modules load (`audiotrain.recipes.chords.cli_help`); `audiotrain.recipes.config_cli`
re-exports these names."""

from __future__ import annotations

import functools
import re
import shutil
import textwrap
from collections.abc import Sequence

#: The exit statuses of a stopped recipe command, the same in both recipes (`exit_status_help`).
STOP_EXIT_STATUSES = (
    ("130", "stopped by Ctrl-C: what was saved, and the command that goes on, are said"),
    ("138", "stopped by SIGUSR1 (`sbatch --signal=USR1@120`: a job scheduler's warning), as by Ctrl-C"),
    ("141", "its output's reader quit early (`| head`): what came after is not done"),
    ("143", "stopped by SIGTERM (a job scheduler's end of time), as by Ctrl-C"),
)


def exit_status_help(statuses: Sequence[tuple[str, str]]) -> str:
    """A recipe's ``exit status:`` block of its ``--help``, one (status, meaning) a row, the meanings wrapped
    to the terminal in a column of their own, as `help_text` wraps the rest."""
    width = max(shutil.get_terminal_size().columns - 2, 40)
    rows = (
        textwrap.fill(
            text, width, initial_indent=f"  {code:<5}", subsequent_indent=" " * 7, break_long_words=False
        )
        for code, text in statuses
    )
    return "exit status:\n" + "\n".join(rows)


def help_text(text: str, width: int | None = None) -> str:
    """Plain-text help (the description or epilog of a parser with argparse's `RawDescriptionHelpFormatter`)
    wrapped to the terminal, as argparse wraps the flags' help (`width`: its columns less 2).

    Blocks are separated by blank lines. A block of lines starting with "- " is a list: each item (its lines
    up to the next "- ") is wrapped under its dash. A block indented by two spaces holds commands, one a line
    (or several lines joined by a shell's " \\"), broken with " \\" where too long, so that they still paste.
    Any other block is a paragraph.
    """
    width = max(width or shutil.get_terminal_size().columns - 2, 40)
    fill = functools.partial(textwrap.fill, width=width, break_long_words=False, break_on_hyphens=False)
    blocks = []
    for block in text.strip("\n").split("\n\n"):
        if block.startswith("  "):
            commands = block.replace("\\\n", " ").splitlines()  # (a line may go on past a " \\")
            blocks.append("\n".join(_command_lines(" ".join(c.split()), width) for c in commands))
        elif block.startswith("- "):
            items = re.split(r"\n(?=- )", block)
            blocks.append(
                "\n".join(
                    fill(" ".join(item[2:].split()), initial_indent="- ", subsequent_indent="  ")
                    for item in items
                )
            )
        else:
            blocks.append(fill(" ".join(block.split())))
    return "\n\n".join(blocks)


def _command_lines(command: str, width: int) -> str:
    """`command` indented by two spaces, its continuation lines by six, broken between words with " \\"."""
    pieces = textwrap.wrap(command, width - 8, break_long_words=False, break_on_hyphens=False)
    return "  " + " \\\n      ".join(pieces)
