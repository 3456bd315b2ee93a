"""Strict, offline test settings. audiotrain is imported before mlx so the optimized BLAS loads."""

import os

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import audiotrain  # noqa: E402,F401  (must precede mlx)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from reference import SKIP_PREFIX, strict  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def one_process_unless_asked():
    """The recipes' automatic local processes (`audiotrain.distributed.local`) would start an MPI job for
    every training a test runs in this process: one process here, unless a test asks with --processes N
    (tests/test_local_processes.py does). Session-wide, so that module fixtures that train see it too."""
    from audiotrain.distributed import local

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local, "MAX_AUTO_PROCESSES", 1)
        yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep the parity tests honest (see tests/reference.py).

    A test that skips for a missing reference must be marked `parity`, or CI's reference run (which
    selects `-m parity`) would never run it. And under AUDIOTRAIN_REQUIRE_PARITY=1 a parity test that
    skips, for whatever reason, fails: that run exists to prove every comparison ran.
    """
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr)
    marked = item.get_closest_marker("parity") is not None
    if SKIP_PREFIX in reason and not marked:
        report.outcome, report.longrepr = (
            "failed",
            f"{item.nodeid} needs a reference but is not marked parity",
        )
    elif marked and strict():
        report.outcome, report.longrepr = (
            "failed",
            f"parity test skipped under AUDIOTRAIN_REQUIRE_PARITY=1: {reason}",
        )
