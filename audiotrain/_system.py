"""Facts about the machine the process runs on."""

from __future__ import annotations

import concurrent.futures
import os


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_pid = 0


def host_pool() -> concurrent.futures.ThreadPoolExecutor:
    """One thread per usable core for host-side numeric work (resampling, spectra on the CPU device).

    The work is numpy, scipy and soxr calls that release the GIL. Created on first use, and again in a
    forked child (a pool's threads do not survive a fork; the inherited one would never run a job).
    """
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():
        _pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=usable_cores(), thread_name_prefix="audiotrain-host"
        )
        _pool_pid = os.getpid()
    return _pool
