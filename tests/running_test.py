"""The test this process runs now, for the helpers that must know how it is marked.

tests/distributed.py starts multi-process jobs on ports picked free a moment before (bound, then let go):
beside another xdist worker's test, that test's ``bind(0)`` can take the same port in between, and a rank
fails with "Address already in use". So a test that starts a job is marked ``serial`` (tests/conftest.py
runs it with no other test beside it), and `require_serial` fails one that is not, so that the mark cannot
be forgotten. conftest.py sets `item`.
"""

from __future__ import annotations

import pytest

#: The test running in this process, through its setup, call and teardown; None between tests.
item: pytest.Item | None = None


def require_serial(what: str) -> None:
    """Fail the running test, unless it is marked ``serial``, before it starts `what` (a job of processes)."""
    if item is not None and item.get_closest_marker("serial") is None:
        pytest.fail(
            f"{item.nodeid} starts {what} but is not marked serial: mark it @pytest.mark.serial (or its "
            "module: pytestmark = pytest.mark.serial), so that under -n no other test picks its ports beside it"
        )
