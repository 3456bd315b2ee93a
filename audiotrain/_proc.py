"""What this package reads of Linux's ``/proc``: a process's ``stat`` fields and this process's ``status``
sizes.

Both files hold the process's name (its "comm"): raw bytes that any program sets (``prctl(PR_SET_NAME)``, or
a script's own file name, which the kernel cuts at 15 bytes, perhaps in the middle of a character). So they
are read as bytes and only their ASCII fields decoded: a name that is not text in the locale's encoding,
anywhere on the machine, must not make the launcher's watchdog or a memory reading fail."""

from __future__ import annotations

from pathlib import Path

#: Where Linux mounts the process file system (absent on macOS).
PROC = Path("/proc")

__all__ = ["PROC", "own_status_bytes", "stat_fields"]


def stat_fields(pid: int | str, proc: Path = PROC) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the process's name (state, ppid, pgrp, ...); None where the
    process is gone (or there is no /proc). The file reads "pid (name) state ppid ...", whose name may hold
    spaces and parentheses too: what follows the last ")" is the fields."""
    try:
        stat = (proc / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    return stat.rpartition(b")")[2].decode("ascii", errors="replace").split()


def own_status_bytes(field: str, proc: Path = PROC) -> int | None:
    """A size in ``/proc/self/status`` (``VmRSS``, ``VmSize``: in kB there) in bytes; None where the file or
    the field is missing (macOS)."""
    try:
        status = (proc / "self" / "status").read_bytes()
    except OSError:
        return None
    prefix = f"{field}:".encode()
    for line in status.splitlines():
        words = line.split()
        if line.startswith(prefix) and len(words) > 1 and words[1].isdigit():
            return int(words[1]) * 1024
    return None
