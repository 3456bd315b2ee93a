"""The tqdm class audiotrain's bars use: ``tqdm.auto``'s (a widget bar in Jupyter) where ipywidgets is
installed, else the text bar, as Lightning chooses. ``tqdm.auto`` in a Jupyter kernel without ipywidgets
printed "IProgress not found. Please update jupyter and ipywidgets" for a bar that is plain text anyway
there (a kernel's stderr is no terminal: `ProgressBar` writes a line per epoch)."""

from __future__ import annotations

import importlib.util
import os

if importlib.util.find_spec("ipywidgets") is not None:
    from tqdm.auto import tqdm
else:
    from tqdm.std import tqdm

__all__ = ["draws_live_bars", "tqdm"]


def draws_live_bars(stream) -> bool:
    """Whether `stream` is a terminal a live bar can be drawn on, so that progress is a bar rather than lines
    of text: a terminal that moves the cursor (not ``TERM=dumb``: Emacs's shell, which cannot go up a line)
    and has a width. A pseudo-terminal nobody sized (``script`` started by cron or a CI job, some ``docker
    exec -t``) reports 0 columns, where tqdm draws nothing at all: no number of the run showed."""
    isatty = getattr(stream, "isatty", None)
    if isatty is None or not isatty() or os.environ.get("TERM") == "dumb":
        return False
    try:
        return os.get_terminal_size(stream.fileno()).columns > 0
    except (AttributeError, OSError, ValueError):  # (a stream put in a terminal's place: no descriptor)
        return True
