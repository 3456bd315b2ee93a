"""`trainer.strategy`: Lightning's Strategy object, for what a user's code calls on it (`barrier()`,
`broadcast(obj)`, `root_device`, the ranks). audiotrain has one strategy, data parallel over however many
processes the script was launched on (one process: everything is free), so this is its name ("auto"),
which it still equals, with those calls added."""

from __future__ import annotations

import weakref
from typing import Any

from audiotrain.distributed import collectives

import mlx.core as mx


class Strategy(str):
    """The Trainer's strategy: equal to its name (`trainer.strategy == "auto"`), with Lightning's
    `root_device`, `world_size`, `global_rank`, `local_rank`, `is_global_zero`, `barrier(name=None)`,
    `broadcast(obj, src=0)` (a small host value, from rank 0), `reduce(tensor, reduce_op="mean")`,
    `all_gather(tensor)`, `reduce_boolean_decision(decision, all=True)`, `optimizers`,
    `lightning_module`, `num_nodes` and `distributed_sampler_kwargs`."""

    _device: Any
    _trainer: Any  # (a weakref.ref to the Trainer, or None: a Strategy keeps no Trainer alive)

    def __new__(cls, name: str, device: Any, trainer: Any = None) -> Strategy:
        made = super().__new__(cls, name)
        made._device = device
        made._trainer = weakref.ref(trainer) if trainer is not None else None
        return made

    @property
    def optimizers(self) -> list:
        """Lightning's `strategy.optimizers`, which its `trainer.optimizers` reads: the same list."""
        trainer = self._trainer() if self._trainer is not None else None
        return trainer.optimizers if trainer is not None else []

    @property
    def lightning_module(self) -> Any:
        """Lightning's `strategy.lightning_module`: the Trainer's (None before a module is attached)."""
        trainer = self._trainer() if self._trainer is not None else None
        return trainer.lightning_module if trainer is not None else None

    model = lightning_module  # (Lightning's: the module, wrapped where a strategy wraps it; none is here)

    @property
    def root_device(self) -> mx.Device:
        return mx.Device(self._device)

    @property
    def world_size(self) -> int:
        return collectives.world_size()

    @property
    def global_rank(self) -> int:
        return collectives.rank()

    @property
    def local_rank(self) -> int:
        return collectives.local_rank()

    @property
    def is_global_zero(self) -> bool:
        return collectives.rank() == 0

    @property
    def num_nodes(self) -> int:
        """Lightning's DDP node count: 1 here, as `trainer.num_nodes` (the hosts of a launch are not told
        apart: `world_size` counts the processes)."""
        return 1

    @property
    def distributed_sampler_kwargs(self) -> dict[str, int]:
        """Lightning's DDP `{"num_replicas": world_size, "rank": global_rank}`, what ported code passes to a
        sampler that shards the data by rank (`DistributedSampler(dataset, **...)`). In one process
        `{"num_replicas": 1, "rank": 0}` (Lightning's single-device strategy has no such attribute)."""
        return {"num_replicas": collectives.world_size(), "rank": collectives.rank()}

    def barrier(self, name: str | None = None) -> None:
        """Every process waits here for the others (free in one process)."""
        collectives.barrier()

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        """Rank 0's `obj` on every process: a small host value (a path, a seed, an array), sent as
        `audiotrain.distributed.all_gather_object` sends one (JSON, or pickled)."""
        if src != 0:
            raise ValueError(
                f"trainer.strategy.broadcast(obj, src={src!r}): audiotrain broadcasts from rank 0 only; "
                "leave src out"
            )
        return collectives.broadcast_from_main(obj)

    def reduce(self, tensor: Any, group: Any = None, reduce_op: str | None = "mean") -> Any:
        """Lightning's `strategy.reduce`: an ``mx.array`` reduced element-wise over the ranks, the same on
        every rank; `reduce_op` "mean" (or "avg", None), "sum", "max" or "min", in any case. Anything else
        than an array comes back unchanged, as in Lightning (whose DDP reduces tensors only); in one
        process the array too. The mean of integers is a float (Lightning's truncates it to an integer).
        Every rank must call it with an array of the same shape and dtype."""
        where = "trainer.strategy.reduce"
        _refuse_a_group(where, group)
        op = "mean" if reduce_op is None else str(reduce_op).lower()
        op = {"avg": "mean"}.get(op, op)
        if op not in _REDUCTIONS:
            raise ValueError(
                f"{where}(..., reduce_op={reduce_op!r}): expected one of 'mean' (or 'avg'), 'sum', 'max', "
                "'min'"
            )
        if not isinstance(tensor, mx.array) or collectives.world_size() == 1:
            return tensor
        reduced = _REDUCTIONS[op](tensor, group=collectives.group())
        reduced = reduced / collectives.world_size() if op == "mean" else reduced
        mx.eval(reduced)  # (every rank evaluates the collective now: one left lazy would stall the others)
        return reduced

    def all_gather(self, tensor: Any, group: Any = None, sync_grads: bool = False) -> Any:
        """Lightning's `strategy.all_gather`: as the module's `self.all_gather`, each array of `tensor`
        stacked over the ranks, ``(world_size, ...)`` in rank order (unchanged in one process)."""
        from audiotrain.train.gathering import gather_over_ranks

        where = "trainer.strategy.all_gather"
        _refuse_a_group(where, group)
        if sync_grads:
            raise ValueError(
                f"{where}(..., sync_grads=True): this is for host code, outside the compiled step; in "
                "compute_loss use audiotrain.distributed.all_gather (differentiable)"
            )
        return gather_over_ranks(tensor, where=where)

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:  # noqa: A002 - Lightning's
        """Lightning's: True where every rank decided True (`all=False`: where any rank did)."""
        if collectives.world_size() == 1:
            return bool(decision)
        votes = int(collectives.all_reduce_sum(mx.array(int(bool(decision)))).item())
        return votes == collectives.world_size() if all else votes > 0

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # (copy, pickle and the like look for these)
            raise AttributeError(name)
        raise AttributeError(
            f"trainer.strategy ({str(self)!r}) has no {name!r}: audiotrain's strategy is data parallel over "
            "the processes the script was launched on, with Lightning's root_device, world_size, "
            "global_rank, local_rank, is_global_zero, barrier(), broadcast(obj), reduce(tensor), "
            "all_gather(tensor), reduce_boolean_decision(decision), optimizers, lightning_module, num_nodes "
            "and distributed_sampler_kwargs; "
            "audiotrain.distributed has the other collectives (all_reduce_sum, all_gather_object)"
        )

    def __reduce__(self) -> Any:  # (pickled as its name and device, as a str subclass with state must be)
        return (Strategy, (str(self), self._device))


#: `Strategy.reduce`'s operations on MLX's collectives (a mean is the sum divided by the ranks).
_REDUCTIONS = {
    "mean": mx.distributed.all_sum,
    "sum": mx.distributed.all_sum,
    "max": mx.distributed.all_max,
    "min": mx.distributed.all_min,
}


def _refuse_a_group(where: str, group: Any) -> None:
    if group is not None:
        raise ValueError(
            f"{where}(..., group={group!r}): audiotrain reduces over all processes of the job, not a group; "
            "leave group out"
        )
