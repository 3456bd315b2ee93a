"""A run folder that several tests only read, built once per test run, not once per xdist worker.

Under ``-n`` a module- or session-scoped fixture runs in each worker that runs one of its tests, and xdist
spreads a module's tests over the workers: a fixture's 2-rank launches (tens of seconds, all of them in
``serial`` tests, which hold the whole run) were made twice. The workers share the run's temporary folder
(tests/conftest.py's serial lock lies there too), so the first worker to need the folder builds it under a
file lock and the others read it.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any


def built_once(tmp_path_factory, name: str, build: Callable[[Path], Any]) -> tuple[Path, Any]:
    """The folder `build` filled and what it returned (pickled for the other workers), made once per run.

    A build that raised is made again by the next worker that needs it (its tests then fail on their own
    error, not on a missing file): only a finished build leaves its result file."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        folder = tmp_path_factory.mktemp(name)
        return folder, build(folder)
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID", "run")
    shared = tmp_path_factory.getbasetemp().parent / f"audiotrain-{run_id}-built"
    shared.mkdir(exist_ok=True)
    folder, done = shared / name, shared / f"{name}.pickle"
    with open(shared / f"{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not done.is_file():
                shutil.rmtree(folder, ignore_errors=True)  # (a build that raised in another worker)
                folder.mkdir()
                result = build(folder)
                partial = shared / f"{name}.pickle.{worker}"
                partial.write_bytes(pickle.dumps(result))
                os.replace(partial, done)
            return folder, pickle.loads(done.read_bytes())
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
