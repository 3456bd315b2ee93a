"""`export_history` to a `.csv` path: one row per epoch under a header of the columns, which pandas'
`read_csv` and a spreadsheet read as they are. It used to write the JSON export under the `.csv` name, which
`pandas.read_csv` turned into a table of brackets."""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

from audiotrain._files import write_export


def write_history_csv(columns: dict[str, list], path: Path, *, overwrite: bool) -> Path:
    """Write the history's columns as CSV, atomically. A value an epoch lacks (null in the JSON export) and a
    NaN are an empty cell, which `read_csv` reads as NaN; floats keep every digit (their `repr`). A file there
    is replaced with `overwrite` or where its header is these columns (an earlier export: a script run
    again), else a `FileExistsError` naming `overwrite=True`."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(zip(*([_cell(v) for v in values] for values in columns.values()), strict=True))
    header = text.getvalue().split("\n", 1)[0]
    data = text.getvalue().encode()
    exported = Path(os.path.abspath(path))
    replace = overwrite or exported in _exported or _first_line(path) == header

    written = write_export(
        path,
        data,
        replace,
        lambda: _first_line(path) == header,
        writer="export_history",
        example="history.csv",
    )
    _exported.add(exported)
    return written


#: The paths this process exported a history to: replaced at its next export whatever the header, which grows
#: within a fit (an export every epoch gains val_loss at the first validation, a metric when first logged).
_exported: set[Path] = set()


def _cell(value: object) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(value) if isinstance(value, float) else value


def _first_line(path: Path) -> str | None:
    if not path.is_file():
        return None
    try:
        with path.open(encoding="utf-8", newline="") as file:
            return file.readline(1 << 16).rstrip("\r\n")
    except (OSError, UnicodeDecodeError):
        return None
