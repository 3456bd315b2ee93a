"""Loading the plots (matplotlib) only where a run can do without them, and not at all where the user turned
them off (``AUDIOTRAIN_PLOTS=0``: sweeps and headless clusters, where the figures cost seconds per run)."""

from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType

#: "0", "false", "no" or "off" (any case): the recipes write no PNG figures and do not import matplotlib;
#: "1", "true", "yes", "on", empty or unset: they write them. Another value is refused as the run starts.
PLOTS_ENV = "AUDIOTRAIN_PLOTS"
_OFF_WORDS = ("0", "false", "no", "off")
_ON_WORDS = ("1", "true", "yes", "on")


def plots_wanted() -> bool:
    """Whether the recipes write their PNG figures (`PLOTS_ENV`); a `ValueError` naming the variable, its
    value and the accepted ones for another value (a typo must not cost a sweep its figures, or keep them)."""
    value = os.environ.get(PLOTS_ENV, "")
    word = value.strip().lower()
    if not word or word in _ON_WORDS:
        return True
    if word in _OFF_WORDS:
        return False
    raise ValueError(
        f"{PLOTS_ENV}={value!r} is neither on ({', '.join(_ON_WORDS)}) nor off ({', '.join(_OFF_WORDS)}); "
        f"set one of those, or unset it to write the plots"
    )


def plots_off_note() -> str | None:
    """The line a run logs once where `PLOTS_ENV` turned its figures off, else None; refuses a value that is
    neither (`plots_wanted`): called where a run or command starts, before any work."""
    if plots_wanted():
        return None
    return f"note: plots not written ({PLOTS_ENV}={os.environ[PLOTS_ENV]}); everything else is as usual"


def load_plots() -> ModuleType | None:
    """`audiotrain.metrics.plots`, or None where `PLOTS_ENV` turned the plots off (matplotlib is not
    imported), or after a warning where matplotlib cannot be loaded: under a memory limit (``ulimit -v``) its
    compiled libraries fail to map ("failed to map segment from shared object") once training has taken the
    memory, and a run's checkpoints, history and scores matter more than its pictures (the run ended in that
    ImportError after its checkpoints were saved, before its evaluation)."""
    if not plots_wanted():
        return None
    try:
        return importlib.import_module("audiotrain.metrics.plots")
    except (ImportError, OSError, MemoryError) as error:
        warnings.warn(
            f"plots not written: matplotlib could not be loaded ({type(error).__name__}: {error}); a memory "
            "limit (ulimit -v) does this",
            stacklevel=2,
        )
        return None
