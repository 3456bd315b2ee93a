"""Loading the plots (matplotlib) only where a run can do without them."""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType


def load_plots() -> ModuleType | None:
    """`audiotrain.metrics.plots`, or None after a warning where matplotlib cannot be loaded: under a memory
    limit (``ulimit -v``) its compiled libraries fail to map ("failed to map segment from shared object") once
    training has taken the memory, and a run's checkpoints, history and scores matter more than its pictures
    (the run ended in that ImportError after its checkpoints were saved, before its evaluation)."""
    try:
        return importlib.import_module("audiotrain.metrics.plots")
    except (ImportError, OSError, MemoryError) as error:
        warnings.warn(
            f"plots not written: matplotlib could not be loaded ({type(error).__name__}: {error}); a memory "
            "limit (ulimit -v) does this",
            stacklevel=2,
        )
        return None
