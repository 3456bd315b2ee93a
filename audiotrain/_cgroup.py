"""The memory and CPU limits a Linux control group (cgroup) puts on this process. Containers
(``docker run --memory`` / ``--cpus``), Slurm jobs (``--mem``) and systemd units (``MemoryMax=`` /
``CPUQuota=``) set them.

Memory: neither MLX, which sizes its own limit from the machine's memory, nor the process's rlimits know of
it, and at it the kernel's OOM killer ends the process without a word. CPU: a quota is not an affinity mask,
so ``os.sched_getaffinity`` still lists every core of the host; processes started one per listed core share
the quota's few cores and run slower than fewer would."""

from __future__ import annotations

import os
from pathlib import Path

#: Where Linux mounts the cgroup file system, and the file listing the cgroups of this process.
CGROUP_ROOT = Path("/sys/fs/cgroup")
OWN_CGROUPS = Path("/proc/self/cgroup")
#: The file holding a cgroup's memory limit: cgroup v2 (the unified hierarchy), then v1.
LIMIT_FILES = ("memory.max", "memory.limit_in_bytes")
#: A limit at or above this means none: cgroup v1 writes "unlimited" as 2**63 - 1 rounded down to a page
#: (9223372036854771712), and no machine has an exbibyte of memory. v2 writes "max".
NO_LIMIT_FROM = 2**60

#: The files holding a cgroup's CPU quota: v2's ``cpu.max`` ("QUOTA PERIOD" in microseconds, or "max
#: PERIOD"), then v1's quota and period (quota -1: none).
CPU_MAX_FILE = "cpu.max"
V1_CPU_FILES = ("cpu.cfs_quota_us", "cpu.cfs_period_us")

__all__ = ["cgroup_cpu_limit", "cgroup_memory_limit"]


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
        for folder in _cgroup_folders(root, own, "memory")
        for name in LIMIT_FILES
        if (value := _limit_in(folder / name)) is not None
    ]
    return min(limits, default=None)


def cgroup_cpu_limit(root: Path | None = None, own: Path | None = None) -> float | None:
    """The smallest CPU quota, in cores (a fraction where the quota is one: ``--cpus 1.5``), of the cgroups
    this process is in and those above it (as `cgroup_memory_limit` finds them; v1's under ``root/cpu``);
    None where none sets a quota (or no cgroup file system is mounted: macOS)."""
    root, own = root or CGROUP_ROOT, own or OWN_CGROUPS
    quotas = []
    for folder in _cgroup_folders(root, own, "cpu"):
        v2 = _text_of(folder / CPU_MAX_FILE).split()
        v1 = [_text_of(folder / name) for name in V1_CPU_FILES]
        for quota, period in (v2[:2] if len(v2) >= 2 else ["", ""], v1):
            if quota.isdigit() and period.isdigit() and int(quota) > 0 and int(period) > 0:
                quotas.append(int(quota) / int(period))  # "max" (v2) and -1 (v1): no quota
    return min(quotas, default=None)


def _text_of(file: Path) -> str:
    """The stripped text of `file`; "" where it is missing or unreadable."""
    try:
        return file.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _cgroup_folders(root: Path, own: Path, controller: str) -> list[Path]:
    """The folders of this process's `controller` ("memory", "cpu") cgroups and the cgroups above them, each
    once: from `own`'s lines (``0::/path`` for v2, ``N:controller[,...]:/path`` for v1, mounted at
    ``root/controller``), and always the two mount points themselves (a container without a cgroup namespace
    lists a path of the host's that its mount does not hold)."""
    mounts = {"": root, controller: root / controller}
    folders = list(mounts.values())
    try:  # (a cgroup's path is a file name's bytes, which systemd's units and Slurm's jobs may make non-ASCII)
        lines = os.fsdecode(own.read_bytes()).splitlines()
    except OSError:
        lines = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        mount = (
            root
            if controllers == ""
            else mounts[controller]
            if controller in controllers.split(",")
            else None
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
    text = _text_of(file)
    if not text.isdigit():
        return None  # "max" (v2's no limit), or not a limit at all
    value = int(text)
    return value if value < NO_LIMIT_FROM else None
