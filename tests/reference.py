"""The reference implementations some tests compare against: PyTorch, transformers, scikit-learn.

They are not audiotrain's dependencies; they come with the `parity` extra:

    pip install -e ".[cpu,dev,parity]"      # then: python -m pytest -m parity

A test that needs one carries `@pytest.mark.parity` and gets the module with `require(name)`. Without
the extra it skips, with a reason that names the extra. With AUDIOTRAIN_REQUIRE_PARITY=1 (CI's reference
run) a missing reference fails instead, and conftest turns any skip of a parity test into a failure.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

PARITY_EXTRA = "pip install -e '.[parity]'"
# The words every skip for a missing reference starts with: conftest recognises such a skip by them.
SKIP_PREFIX = "needs the parity extra"


def strict() -> bool:
    """Whether a missing reference is an error (CI's reference run), not a skip."""
    return os.environ.get("AUDIOTRAIN_REQUIRE_PARITY", "") not in ("", "0")


def require(name: str) -> ModuleType:
    """Import the reference module `name`, or skip (fail under AUDIOTRAIN_REQUIRE_PARITY=1)."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        message = f"{SKIP_PREFIX} ({PARITY_EXTRA}): {name} is not installed ({err})"
        if strict():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
