"""Checks of the arguments a user passes to the Python API, where pathlib and friends would answer with an
error that names no argument (`Path(None)`: "expected str, bytes or os.PathLike object, not NoneType")."""

from __future__ import annotations

import os
from pathlib import Path


def path_argument(value: object, owner: str, name: str) -> Path:
    """`value`, argument `name` of `owner` (a class or function), as a Path; else a TypeError naming both:
    "Trainer(default_root_dir=123): expected a path (a str or os.PathLike), got int"."""
    if isinstance(value, str | os.PathLike):
        return Path(value)
    raise TypeError(
        f"{owner}({name}={value!r}): expected a path (a str or os.PathLike), got {type(value).__name__}"
    )
