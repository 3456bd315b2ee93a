"""Reading the text files users write by hand or export from spreadsheets (metadata tables)."""

from __future__ import annotations

from pathlib import Path


def read_utf8_text(path: Path, error: type[Exception] = ValueError, what: str = "the metadata") -> str:
    """The file's text. A leading BOM (Excel's "CSV UTF-8", Notepad) is dropped; anything but UTF-8 raises
    `error` naming the file, the line and the offending byte (`what`: how the message calls the file)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise error(
            f"{path}, line {line}: the byte 0x{data[err.start]:02x} at offset {err.start} is not UTF-8; "
            f'{what} must be saved as UTF-8 (Excel: "CSV UTF-8")'
        ) from None
