"""The tqdm class audiotrain's bars use: ``tqdm.auto``'s (a widget bar in Jupyter) where ipywidgets is
installed, else the text bar, as Lightning chooses. ``tqdm.auto`` in a Jupyter kernel without ipywidgets
printed "IProgress not found. Please update jupyter and ipywidgets" for a bar that is plain text anyway
there (a kernel's stderr is no terminal: `ProgressBar` writes a line per epoch)."""

from __future__ import annotations

import importlib.util

if importlib.util.find_spec("ipywidgets") is not None:
    from tqdm.auto import tqdm
else:
    from tqdm.std import tqdm

__all__ = ["tqdm"]
