"""Data parallel on MLX's distributed engine (``mx.distributed``): ranks, reductions, failure handling.

In one process every function is the identity and costs nothing. Under ``mlx.launch``, ``mpirun`` or the
NCCL backend, the first call joins the job (``mx.distributed.init()``) and installs `install_failure_hook`.
"""

from typing import TYPE_CHECKING

from audiotrain._lazy import lazy_attributes

# Imported on first use: `collectives` imports mlx and numpy, which a command's ``--help`` (whose exit goes
# through `exit_rank`) does not need.
_PUBLIC = {
    "MainProcessFailed": "audiotrain.distributed.collectives",
    "all_gather_object": "audiotrain.distributed.collectives",
    "all_reduce_sum": "audiotrain.distributed.collectives",
    "barrier": "audiotrain.distributed.collectives",
    "broadcast_from_main": "audiotrain.distributed.collectives",
    "group": "audiotrain.distributed.collectives",
    "is_main_process": "audiotrain.distributed.collectives",
    "local_rank": "audiotrain.distributed.collectives",
    "on_main_process": "audiotrain.distributed.collectives",
    "rank": "audiotrain.distributed.collectives",
    "rank_zero_debug": "audiotrain.distributed.collectives",
    "rank_zero_info": "audiotrain.distributed.collectives",
    "rank_zero_only": "audiotrain.distributed.collectives",
    "rank_zero_warn": "audiotrain.distributed.collectives",
    "reduce_weighted_means": "audiotrain.distributed.collectives",
    "world_size": "audiotrain.distributed.collectives",
    "exit_rank": "audiotrain.distributed.failures",
    "install_failure_hook": "audiotrain.distributed.failures",
    "launch": "audiotrain.distributed.failures",
    "run_guarded": "audiotrain.distributed.failures",
}

if TYPE_CHECKING:
    # The lazy names spelled out for type checkers and editors, which do not run `__getattr__`
    # (`X as X`: an explicit re-export, also under mypy --strict). tests/test_typing.py keeps them
    # equal to `_PUBLIC`.
    from audiotrain.distributed.collectives import MainProcessFailed as MainProcessFailed
    from audiotrain.distributed.collectives import all_gather_object as all_gather_object
    from audiotrain.distributed.collectives import all_reduce_sum as all_reduce_sum
    from audiotrain.distributed.collectives import barrier as barrier
    from audiotrain.distributed.collectives import broadcast_from_main as broadcast_from_main
    from audiotrain.distributed.collectives import group as group
    from audiotrain.distributed.collectives import is_main_process as is_main_process
    from audiotrain.distributed.collectives import local_rank as local_rank
    from audiotrain.distributed.collectives import on_main_process as on_main_process
    from audiotrain.distributed.collectives import rank as rank
    from audiotrain.distributed.collectives import rank_zero_debug as rank_zero_debug
    from audiotrain.distributed.collectives import rank_zero_info as rank_zero_info
    from audiotrain.distributed.collectives import rank_zero_only as rank_zero_only
    from audiotrain.distributed.collectives import rank_zero_warn as rank_zero_warn
    from audiotrain.distributed.collectives import reduce_weighted_means as reduce_weighted_means
    from audiotrain.distributed.collectives import world_size as world_size
    from audiotrain.distributed.failures import exit_rank as exit_rank
    from audiotrain.distributed.failures import install_failure_hook as install_failure_hook
    from audiotrain.distributed.failures import launch as launch
    from audiotrain.distributed.failures import run_guarded as run_guarded

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
    "rank_zero_debug",
    "rank_zero_info",
    "rank_zero_only",
    "rank_zero_warn",
    "reduce_weighted_means",
    "run_guarded",
    "world_size",
]

# Hidden from type checkers, which would take any name from a module `__getattr__` (a typo included).
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_attributes(__name__, _PUBLIC)
