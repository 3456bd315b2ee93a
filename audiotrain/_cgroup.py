"""The memory limit a Linux control group (cgroup) puts on this process. Containers (``docker run --memory``),
Slurm jobs (``--mem``) and systemd units (``MemoryMax=``) set one; neither MLX, which sizes its own limit from
the machine's memory, nor the process's rlimits know of it, and at it the kernel's OOM killer ends the
process without a word."""

from __future__ import annotations

from pathlib import Path

#: Where Linux mounts the cgroup file system, and the file listing the cgroups of this process.
CGROUP_ROOT = Path("/sys/fs/cgroup")
OWN_CGROUPS = Path("/proc/self/cgroup")
#: The file holding a cgroup's memory limit: cgroup v2 (the unified hierarchy), then v1.
LIMIT_FILES = ("memory.max", "memory.limit_in_bytes")
#: A limit at or above this means none: cgroup v1 writes "unlimited" as 2**63 - 1 rounded down to a page
#: (9223372036854771712), and no machine has an exbibyte of memory. v2 writes "max".
NO_LIMIT_FROM = 2**60

__all__ = ["cgroup_memory_limit"]


def cgroup_memory_limit(root: Path | None = None, own: Path | None = None) -> tuple[int, Path] | None:
    """The smallest memory limit, in bytes, of the cgroups this process is in, and the file that sets it;
    None where no limit is set (or no cgroup file system is mounted: macOS).

    Reads v2's ``memory.max`` and v1's ``memory.limit_in_bytes`` (under ``root/memory``) in the process's own
    cgroup (its line in `own`, default ``/proc/self/cgroup``) and in each cgroup above it, whose limit holds
    for it too, up to `root` (default ``/sys/fs/cgroup``): the container's own cgroup where the container has
    a cgroup namespace.
    Files that are missing or unreadable, and ``max`` or absurdly large values, count as no limit."""
    root, own = root or CGROUP_ROOT, own or OWN_CGROUPS
    limits = [
        (value, folder / name)
        for folder in _cgroup_folders(root, own)
        for name in LIMIT_FILES
        if (value := _limit_in(folder / name)) is not None
    ]
    return min(limits, default=None)


def _cgroup_folders(root: Path, own: Path) -> list[Path]:
    """The folders of this process's memory cgroups and the cgroups above them, each once: from `own`'s lines
    (``0::/path`` for v2, ``N:memory[,...]:/path`` for v1), and always the two mount points themselves (a
    container without a cgroup namespace lists a path of the host's that its mount does not hold)."""
    mounts = {"": root, "memory": root / "memory"}
    folders = list(mounts.values())
    try:
        lines = own.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        mount = (
            root if controllers == "" else mounts["memory"] if "memory" in controllers.split(",") else None
        )
        if mount is None:
            continue
        folder = mount / path.strip().lstrip("/")
        while folder != mount and folder.is_relative_to(mount):
            folders.append(folder)
            folder = folder.parent
    return list(dict.fromkeys(folders))


def _limit_in(file: Path) -> int | None:
    """The limit in bytes that `file` holds; None for none ("max", a huge value, a file missing or not a
    number)."""
    try:
        text = file.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not text.isdigit():
        return None  # "max" (v2's no limit), or not a limit at all
    value = int(text)
    return value if value < NO_LIMIT_FROM else None
