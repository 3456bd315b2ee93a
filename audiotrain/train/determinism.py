"""What `Trainer(deterministic=True)` cannot make reproducible, said when `fit` starts."""

from __future__ import annotations

import warnings
from typing import Any


def warn_thread_workers_share_generators(loaders: dict[str, Any], stacklevel: int = 3) -> None:
    """Warn once per fit when a loader loads with thread workers under `deterministic=True`.

    Thread workers run the dataset's `__getitem__` in threads of this process, so augmentation drawn from
    the global generators (`np.random`, `random`, `mx.random`) interleaves with the other workers' draws in
    whatever order the threads happen to run: each run draws differently. Process workers seed their own copies per
    batch, and `batch_rng()` is a generator of the batch's own; making the shared ones per-thread would
    need a lock around every draw, so the default path stays as fast as it is and the user is told.
    """
    names = [
        name
        for name, loader in loaders.items()
        if loader is not None
        and getattr(loader, "worker_type", None) == "thread"
        and (getattr(loader, "num_workers", 0) or 0) > 0
    ]
    if not names:
        return
    which = " and ".join(names)
    warnings.warn(
        f"Trainer(deterministic=True): {which} load{'s' * (len(names) == 1)} batches in thread workers "
        "(DataLoader(num_workers>0), "
        "worker_type='thread', the default), which share the training thread's np.random, random and "
        "mx.random: augmentation drawn from them differs from run to run. Draw it from "
        "audiotrain.data.batch_rng() (a generator per batch), or load with DataLoader(worker_type='process') "
        "(each worker process seeds its own np.random, random and mx.random per batch) or num_workers=0",
        stacklevel=stacklevel,
    )
