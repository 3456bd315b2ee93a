"""Reading the text files users write by hand or export from spreadsheets (metadata tables)."""

from __future__ import annotations

import csv
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from audiotrain._files import UTF16_TEXT, is_utf16


def read_utf8_text(path: Path, error: type[Exception] = ValueError, what: str = "the metadata") -> str:
    """The file's text. A leading BOM (Excel's "CSV UTF-8", Notepad) is dropped; anything but UTF-8 raises
    `error` naming the file, the line and the offending byte (`what`: how the message calls the file). A path
    that is a folder, a FIFO or another non-file, or that cannot be read, raises `error` naming it too."""
    expected = f"a UTF-8 {what.removeprefix('the ').removesuffix(' file')} file"
    # Looked at before opening: a folder would raise a bare IsADirectoryError, and a FIFO would block forever.
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        raise error(f"{path}: cannot be read ({err.strerror or err}), expected {expected}") from None
    if stat.S_ISDIR(mode):
        raise error(f"{path}: is a folder, expected {expected}")
    if not stat.S_ISREG(mode):
        kinds = {stat.S_IFIFO: "a named pipe (FIFO)", stat.S_IFSOCK: "a socket"}
        kind = kinds.get(stat.S_IFMT(mode), "a device")
        raise error(f"{path}: is {kind}, not a file; expected {expected}")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise error(f"{path}: cannot be read ({err.strerror or err}), expected {expected}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        if is_utf16(data):
            raise error(f"{path}: {UTF16_TEXT}") from None
        line = data.count(b"\n", 0, err.start) + 1
        raise error(
            f"{path}, line {line}: the byte 0x{data[err.start]:02x} at offset {err.start} is not UTF-8; "
            f'{what} must be saved as UTF-8 (Excel: "CSV UTF-8")'
        ) from None


def csv_rows(reader: Any, failed: Callable[[int, str], Exception]) -> Iterator[tuple[int, Any]]:
    """Each row of the `csv` `reader` with the line it starts on (`reader.line_num` is the line a row ends on:
    a quoted cell may hold line breaks). A row the reader cannot read (a cell over 128 KB, a quote left open)
    raises ``failed(line, what it means)``: the reader cannot go on past it."""
    while True:
        first_line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise failed(first_line, csv_error_text(str(error))) from None
        yield first_line, row


def csv_error_text(message: str) -> str:
    """What `csv.Error`'s `message` means in a table written by hand, for a message that names the file and
    the line its row starts on: the reader cannot go on past it."""
    if message == "unexpected end of data":
        problem = "the file ends inside a quoted cell"
    elif "expected after" in message:  # text after a closing quote
        problem = (
            f"a quoted cell goes on after its closing quote ({message}; a quote inside a cell is written "
            "twice)"
        )
    else:  # (a cell over csv.field_size_limit(), 128 KB: a quote left open swallows the rest of the file)
        problem = f"not valid CSV ({message})"
    return f"{problem} (a quote left open or stray in the row that starts on this line?)"
