"""A current folder deleted under a Python whose imports then fail. Python 3.13.0 to 3.13.2, run as ``python
-c``, from standard input or at the interactive prompt (where the first folder of the module search is the
current one), raises "SystemError: error return without exception set" from every failed module attribute
lookup once the current folder no longer exists (CPython issue 130932, fixed in 3.13.3), so ``import numpy``
fails that way. `import audiotrain` names the cause instead."""

from __future__ import annotations

import os
import platform
import sys


def check_imports_work_here() -> None:
    """Raise FileNotFoundError where the current folder no longer exists and this Python's imports fail for
    it; return where it exists (the usual case: one ``getcwd``), or where this Python is not affected."""
    try:
        os.getcwd()
        return
    except FileNotFoundError:
        pass
    try:  # (a module of a file without a module __getattr__: the lookup that fails on such a Python)
        sys.modules[__name__]._no_such_attribute  # noqa: B018
    except AttributeError:
        return
    except SystemError:
        raise FileNotFoundError(
            "the current directory no longer exists (deleted?), and in it Python "
            f"{platform.python_version()} fails to import modules under python -c, from standard input and "
            "at the interactive prompt ('SystemError: error return without exception set': CPython issue "
            "130932, fixed in 3.13.3): cd to an existing folder, or run a script file"
        ) from None
