"""How much this process has read, for tests that show a loader refuses a file without reading its data."""

from pathlib import Path


def bytes_read() -> int | None:
    """Bytes this process has read so far (Linux's /proc/self/io; None elsewhere)."""
    io_file = Path("/proc/self/io")
    if not io_file.is_file():
        return None
    return next(
        int(line.split()[1]) for line in io_file.read_text().splitlines() if line.startswith("rchar:")
    )
