"""One seed for every random number generator a training run draws from.

`Trainer(seed=...)` seeds these when `fit` starts, which fixes dropout, data order and augmentation,
but a model's initial weights are drawn when the model is *built*, usually before the Trainer exists.
Call `seed_everything(seed)` before building the model (as Lightning's `seed_everything`) so that two
runs of the same script give the same weights, losses and scores.
"""

from __future__ import annotations

import random
import sys

import mlx.core as mx
import numpy as np


def seed_everything(seed: int) -> int:
    """Seed MLX's global generator (`mx.random`), numpy's legacy global one, Python's `random` and, when
    it is already imported, torch's (a torch `RandomSampler` in a DataLoader draws from it).

    Returns the seed, so `seed = seed_everything(cfg.seed)` reads naturally. Generators a library owns
    (a `DataLoader`'s, a dataset's `np.random.default_rng(seed)`) are seeded by their own arguments."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed_everything(seed={seed!r}): expected a non-negative int")
    seed = int(seed)
    mx.random.seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    torch = sys.modules.get("torch")  # only when already imported: torch samplers in a DataLoader
    if torch is not None and hasattr(torch, "manual_seed"):
        torch.manual_seed(seed)
    return seed
