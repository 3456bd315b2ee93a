"""`RunFolder`: the folders a logger reports (`log_dir`, `save_dir`, `root_dir`) as a `pathlib.Path` that also
joins a str with `+`, as Lightning's str does: its tutorials and notebooks read a run back with
`pd.read_csv(logger.log_dir + "/metrics.csv")`, which a plain Path refuses (TypeError)."""

from __future__ import annotations

import os
from pathlib import Path

# (Path itself is subclassable from Python 3.12 only: its concrete class here, PosixPath or WindowsPath)
_CONCRETE_PATH = type(Path())


class RunFolder(_CONCRETE_PATH):
    """A Path (`/`, `.exists()`, `open`) whose `+` with a str gives the str Lightning's `log_dir + "..."`
    gives."""

    def __add__(self, other: str) -> str:
        if not isinstance(other, str):
            return NotImplemented
        return os.fspath(self) + other

    def __radd__(self, other: str) -> str:
        if not isinstance(other, str):
            return NotImplemented
        return other + os.fspath(self)


def run_folder(path: Path | None) -> RunFolder | None:
    """`path` as a RunFolder (None stays None)."""
    return None if path is None else RunFolder(path)
