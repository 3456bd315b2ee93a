"""Recipe runs in the test process with their plots built but not rendered.

A tiny recipe run spent most of its time in matplotlib: a CLAP run 1.65 of its 2.34 s rendering its four
PNGs, a chord run most of its 3 s past the data on training_curves.png and confusion_matrix.png. A test whose
claim is not about the plots gets each figure built as the run builds it and written through the same atomic
write, as a file that holds a PNG signature alone (`plots._save` stands in); a test whose source names plots
or PNGs renders them as the run does (tests/conftest.py's `plots_built_but_not_rendered` decides), and so do
module- and session-scoped fixtures (set up before it) and runs in child processes. The drawing itself is
tested in tests/test_metrics_plots.py."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest


def _unrendered(figure, path, dpi):
    from audiotrain._files import write_atomically

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda handle: handle.write(b"\x89PNG\r\n\x1a\n"))  # (a PNG signature)
    return path


@contextlib.contextmanager
def plots_unrendered() -> Iterator[None]:
    """Within it, `audiotrain.metrics.plots` builds its figures but does not render them."""
    from audiotrain.metrics import plots

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plots, "_save", _unrendered)
        yield


def reads_plots(function) -> bool:
    """Whether a test's source names plots or PNGs (a run folder's listing, the figures drawn)."""
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return True
    return "plot" in source.lower() or "png" in source.lower()
