"""`TrainModule.all_gather`: Lightning's `LightningModule.all_gather` for host-side code (an epoch-end hook
that computes a metric over every rank's predictions)."""

from __future__ import annotations

from typing import Any

from audiotrain.distributed import collectives

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten, tree_map


def gather_over_ranks(data: Any, *, where: str = "self.all_gather") -> Any:
    """`data` (an array, a number, or a dict / list / tuple of them) with each array stacked over the ranks:
    shape ``(world_size, ...)`` in rank order on every rank. In one process the arrays come back without the
    extra axis, as Lightning's. Every rank must call it, with arrays of the same shapes and dtypes: the
    shapes are compared first (one small exchange), so that a mismatch is an error on every rank, naming
    each rank's shape, rather than a collective that waits for ever."""
    arrays = tree_map(lambda leaf: _as_array(leaf, where), data)
    if collectives.world_size() == 1:
        return arrays
    leaves = tree_flatten(arrays)
    described = [[name, list(a.shape), str(a.dtype)] for name, a in leaves]
    every_rank = collectives.all_gather_object(described)
    if any(other != described for other in every_rank):
        for i, (name, _) in enumerate(leaves):
            seen = [f"{tuple(d[i][1])} {d[i][2]}" if i < len(d) else "nothing" for d in every_rank]
            if len(set(seen)) > 1:
                per_rank = ", ".join(f"rank {r}: {shape}" for r, shape in enumerate(seen))
                what = f"'{name}'" if name else "the array"
                raise ValueError(
                    f"{where}: {what} must have the same shape and dtype on every rank to be stacked "
                    f"({per_rank}); pad it to one length (and gather the lengths too), or gather host values "
                    "with audiotrain.distributed.all_gather_object"
                )
        raise ValueError(f"{where}: the ranks passed different structures ({every_rank})")
    gathered = tree_map(lambda a: collectives.all_gather(a[None]), arrays)
    mx.eval(gathered)  # (every rank evaluates the collective now: one left lazy would stall the others)
    return gathered


def _as_array(leaf: Any, where: str) -> mx.array:
    if isinstance(leaf, mx.array):
        return leaf
    if isinstance(leaf, (bool, int, float, np.ndarray, np.generic)):
        return mx.array(leaf)
    raise TypeError(
        f"{where}: expected an mx.array, a number, or a dict / list / tuple of them, "
        f"got {type(leaf).__name__}"
    )
