"""Facts about the machine the process runs on."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def versions() -> dict[str, str | None]:
    """What a run was made with, as recorded in every run folder's ``config.json`` and every checkpoint's
    ``trainer_state.json``: audiotrain, MLX, numpy, Python, the platform, and ``OPENBLAS_CORETYPE`` (which
    picks OpenBLAS's kernels, so it can change the numbers; None when unset)."""
    import platform

    from audiotrain import __version__

    import mlx.core as mx
    import numpy as np

    return {
        "audiotrain": __version__,
        "mlx": getattr(mx, "__version__", "unknown"),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
    }


def installed_versions(names: tuple[str, ...]) -> dict[str, str | None]:
    """Each named distribution's installed version (package metadata), None where it is not installed."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
