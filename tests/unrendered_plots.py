"""Recipe runs without their figures where a test's claim is not about them.

A tiny recipe run spent most of its time in matplotlib: a CLAP run 1.65 of its 2.34 s rendering its four
PNGs, a chord run most of its 3 s past the data on training_curves.png and confusion_matrix.png. A test whose
source names plots or PNGs (`reads_plots`) gets them as a user does; any other test runs with
``AUDIOTRAIN_PLOTS=0`` (tests/conftest.py's `plots_off_unless_the_test_reads_them`): the runs in its process
and in the processes it starts (they inherit ``os.environ``, as `child_env` copies it) write no figure and do
not import matplotlib, which the variable's own tests check. Module- and session-scoped fixtures, set up
before it, write them as the run does, or build them unrendered (`plots_unrendered`: each figure built and
written through the same atomic write as a file that holds a PNG signature alone). The drawing itself is
tested in tests/test_metrics_plots.py, and the figures of real runs by the tests that read them."""

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
