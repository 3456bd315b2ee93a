"""One seed for every random number generator a training run draws from.

`Trainer(seed=...)` seeds these when `fit` starts, which fixes dropout, data order and augmentation (and
puts the caller's back as they were when it ends, so the code after `fit` draws as if it had not run),
but a model's initial weights are drawn when the model is *built*, usually before the Trainer exists.
Call `seed_everything(seed)` before building the model (as Lightning's `seed_everything`) so that two
runs of the same script give the same weights, losses and scores. A Trainer given no seed takes the one
`seed_everything` set last (`default_seed`), so a Lightning-style seed sweep (`seed_everything(s)`, then
`Trainer()`) decides the data order and dropout too, not only the weights.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import mlx.core as mx
import numpy as np

# The seed a Trainer without one uses when `seed_everything` was never called.
DEFAULT_SEED = 42
#: Where `seed_everything` leaves its seed for subprocesses, and where ``seed_everything()`` reads one
#: (Lightning's variable, so a Lightning script's subprocess finds it under the same name).
SEED_ENV_VAR = "PL_GLOBAL_SEED"
#: Where `seed_everything` leaves its ``workers`` switch ("1" or "0"), as Lightning's does (a script or
#: library that reads it to seed its own workers finds it).
WORKERS_ENV_VAR = "PL_SEED_WORKERS"
#: The largest seed taken (`seed_everything`, `Trainer(seed=)`, the recipes' ``--seed``): MLX takes 64 bits,
#: and a checkpoint stores the seed as an int64.
SEED_MAX = 2**63 - 1
log = logging.getLogger(__name__)
_last_seed: int | None = None  # what the user's last seed_everything call set
_calls = 0  # how many seed_everything calls this process made (`seed_everything_calls`)


def seed_everything(seed: int | None = None, workers: bool = False, verbose: bool = True) -> int:
    """Seed MLX's global generator (`mx.random`), numpy's legacy global one, Python's `random` and, when
    it is already imported, torch's (a torch `RandomSampler` in a DataLoader draws from it). A Trainer
    created without `seed=` seeds them with this seed again when `fit` starts (`default_seed`).

    Lightning's signature and habits: ``seed=None`` takes the seed in the ``PL_GLOBAL_SEED`` environment
    variable (a parent's `seed_everything` set it), else 0 with a warning; a variable that holds no seed from
    0 to 2**63 - 1 is a ValueError naming it. The seed is put in ``PL_GLOBAL_SEED`` for subprocesses, and
    ``workers`` in ``PL_SEED_WORKERS`` ("1" or "0").
    ``verbose`` logs "Seed set to N" (logger ``audiotrain.train.seeding``, INFO; "[rank: R] Seed set to N"
    in a rank a launcher started, as Lightning's) and lets the warnings through.

    Returns the seed, so `seed = seed_everything(cfg.seed)` reads naturally. Generators a library owns
    (a `DataLoader`'s, a dataset's `np.random.default_rng(seed)`) are seeded by their own arguments.
    `workers` is Lightning's switch for seeding loader workers apart; an audiotrain DataLoader always
    does (each worker and sample draws from its own generator of the loader's seed), so either value
    gives that. Unlike Lightning's, a seed that is not an int from 0 to 2**63 - 1 (`SEED_MAX`) is refused
    (Lightning takes ``int(seed)``, and 0 in place of a seed outside numpy's 32 bits; here every seed in
    that range is one of its own, numpy's too: a seed of 2**32 or more seeds it with its two 32-bit words,
    one below draws numpy's numbers of ``np.random.seed(seed)``)."""
    global _last_seed, _calls
    for name, value in (("workers", workers), ("verbose", verbose)):
        if not isinstance(value, bool):
            raise ValueError(f"seed_everything({name}={value!r}): expected True or False")
    if seed is None:
        seed = _seed_from_environment(verbose)
    _last_seed = seed_generators(seed)
    _calls += 1
    os.environ[SEED_ENV_VAR] = str(_last_seed)
    os.environ[WORKERS_ENV_VAR] = str(int(workers))
    if verbose:
        from audiotrain.distributed.local import launcher_rank

        # Lightning's `rank_prefixed_message`: each rank of a job says which it is.
        rank = launcher_rank()
        log.info("%sSeed set to %d", "" if rank is None else f"[rank: {rank}] ", _last_seed)
    return _last_seed


@contextlib.contextmanager
def isolate_rng(include_cuda: bool = True) -> Iterator[None]:
    """Lightning's `isolate_rng` (``lightning.pytorch.utilities.seed``): what the block draws from MLX's,
    numpy's, Python's and (when imported) torch's global generators leaves them as it found them, however
    it ends, so the code after it draws as if it had not run (a sample generated mid-training, a random
    probe)::

        with isolate_rng():
            noise = mx.random.normal((4, 16000))

    ``include_cuda`` is Lightning's switch for torch's CUDA generators; MLX has one key for every device,
    which is always put back."""
    from audiotrain.train.state import RandomState  # (state.py imports this module)

    if not isinstance(include_cuda, bool):
        raise ValueError(f"isolate_rng(include_cuda={include_cuda!r}): expected True or False")
    saved = RandomState.capture()
    try:
        yield
    finally:
        RandomState.restore(saved)


def _seed_from_environment(verbose: bool) -> int:
    """Lightning's ``seed_everything()``: the seed in `SEED_ENV_VAR`, else 0 (with a warning if verbose); a
    variable that holds no seed is an error, as in Lightning 2 (training on seed 0 instead, with a warning
    that a log can bury, gave a run other than the one asked for)."""
    text = os.environ.get(SEED_ENV_VAR)
    if text is None:
        if verbose:
            warnings.warn("seed_everything(): no seed found, seed set to 0", UserWarning, stacklevel=3)
        return 0
    # isdecimal, not isdigit: int() refuses some digits ("²"), which raised its ValueError here.
    if text.strip().isdecimal() and int(text) <= SEED_MAX:
        return int(text)
    raise ValueError(
        f"seed_everything(): invalid seed specified via {SEED_ENV_VAR}: {text!r} (expected an int from 0 to "
        f"2**63 - 1): set it to a seed, unset it, or pass seed_everything(seed)"
    )


def seed_generators(seed: int) -> int:
    """`seed_everything` without making `seed` the default of later Trainers (the Trainer's own seeding)."""
    check_seed(seed, "seed_everything(seed=...)")
    seed = int(seed)
    mx.random.seed(seed)
    # numpy's legacy seed takes 32 bits: a larger seed goes in as its words (5 + 2**32 drew 5's numbers).
    np.random.seed(seed if seed < 2**32 else [seed & 0xFFFFFFFF, seed >> 32])
    random.seed(seed)
    torch = imported_torch()  # torch samplers in a DataLoader draw from it
    if torch is not None:
        torch.manual_seed(seed)
    return seed


def check_seed(seed: Any, where: str) -> None:
    """Refuse a `seed` that is not an int from 0 to `SEED_MAX` (a bool, a float, 2**64, where MLX's own
    TypeError named neither the seed nor the range), naming `where` it was given."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed <= SEED_MAX:
        raise ValueError(f"{where}: expected a non-negative int, at most 2**63 - 1, got {seed!r}")


def imported_torch() -> Any:
    """The `torch` module when the program has imported it, else None: its global generator is seeded and
    saved with the others then (a torch `RandomSampler` or `torch.rand` augmentation draws from it), and
    torch is never imported for it (seconds, and a program without torch does not draw from it)."""
    torch = sys.modules.get("torch")
    needed = ("manual_seed", "get_rng_state", "set_rng_state")
    return torch if torch is not None and all(callable(getattr(torch, n, None)) for n in needed) else None


def seed_everything_calls() -> int:
    """How many `seed_everything` calls this process made: a Trainer that resumed a run keeps its seed until
    the next one (a seed sweep's `seed_everything(s)` decides the fits after it, even one of the same `s`)."""
    return _calls


def default_seed() -> int:
    """The seed of a Trainer given none: the last `seed_everything` seed, else `DEFAULT_SEED`."""
    return DEFAULT_SEED if _last_seed is None else _last_seed


def _rank_word(words: list[int], rank: int) -> int:
    """A 63-bit seed of `words` and `rank`, drawn as the DataLoader mixes the rank into its workers' seed."""
    return int(np.random.SeedSequence([*words, rank]).generate_state(1, np.uint64)[0]) >> 1


def seed_rank_apart(seed: int, rank: int) -> None:
    """Under data parallel, give rank `rank` an MLX key of its own after `seed_generators(seed)`, so that what
    a step draws with `mx.random` (SpecAugment masks, mixup, dropout) differs between the ranks' different
    samples, as the loader's workers are seeded apart by rank. Rank 0 keeps the seed's key: one process, and
    rank 0 of a job, draw what they drew before. numpy's and Python's generators stay the same on every rank
    (the host code that draws from them, a loader's seed, must agree across ranks)."""
    if rank > 0:
        mx.random.seed(_rank_word([seed], rank))


def rank_key(saved: list[list[int]] | None, key: list[int], rank: int, world_size: int) -> int | None:
    """The MLX seed rank `rank` resumes with: its own key where the checkpoint saved one for each of
    `world_size` ranks (`saved`, `random.mlx_ranks`), else (a checkpoint of another process count, or of an
    audiotrain that saved rank 0's key alone) one drawn from the saved `key` and the rank; None on rank 0,
    which keeps `key`."""
    if isinstance(saved, list) and len(saved) == world_size:
        hi, lo = saved[rank]
        return (int(hi) << 32) | int(lo)
    return None if rank == 0 else _rank_word([int(v) for v in key], rank)
