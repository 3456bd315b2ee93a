"""Data parallel on MLX's distributed engine (``mx.distributed``): ranks, reductions, failure handling.

In one process every function is the identity and costs nothing. Under ``mlx.launch``, ``mpirun`` or the
NCCL backend, the first call joins the job (``mx.distributed.init()``) and installs `install_failure_hook`.
"""

from audiotrain.distributed.collectives import (
    MainProcessFailed,
    all_gather_object,
    all_reduce_sum,
    barrier,
    broadcast_from_main,
    group,
    is_main_process,
    local_rank,
    on_main_process,
    rank,
    rank_zero_only,
    reduce_weighted_means,
    world_size,
)
from audiotrain.distributed.failures import exit_rank, install_failure_hook, launch, run_guarded

__all__ = [
    "MainProcessFailed",
    "all_gather_object",
    "all_reduce_sum",
    "barrier",
    "broadcast_from_main",
    "exit_rank",
    "group",
    "install_failure_hook",
    "is_main_process",
    "launch",
    "on_main_process",
    "local_rank",
    "rank",
    "rank_zero_only",
    "reduce_weighted_means",
    "run_guarded",
    "world_size",
]
