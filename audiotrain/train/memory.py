"""The memory training may use here, and `Trainer.fit`'s refusal of a model whose training alone needs more.

MLX does not raise where an allocation fails: under a ``ulimit -v`` it ends the process with a segmentation
fault, under a cgroup's limit the kernel's OOM killer ends it; either way without a word. So what is sure not
to fit is refused before the first step, from the arrays' sizes and dtypes (nothing is evaluated)."""

from __future__ import annotations

import contextlib
import contextvars
import math
import warnings
from collections.abc import Iterator
from typing import Any

from audiotrain import _cgroup
from audiotrain._proc import own_status_bytes
from audiotrain._text import byte_size

import mlx.core as mx
from mlx.utils import tree_flatten

__all__ = [
    "MLX_MEMORY_LIMIT",
    "TrainingMemoryError",
    "refuse_training_beyond_memory",
    "smaller_model_advice",
    "training_memory_limit",
]

#: The process limits that also bound what MLX can allocate, the `/proc/self/status` field of what each
#: already counts, and how a user sets each.
_PROCESS_MEMORY_LIMITS = (("RLIMIT_AS", "VmSize", "ulimit -v"), ("RLIMIT_DATA", "VmData", "ulimit -d"))


#: What a recipe that trains through the Trainer says in its refusal in place of "train in precision=...":
#: the Trainer's setting is no flag or field of a recipe that has none (`smaller_model_advice`).
_RECIPE_ADVICE: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "recipe_memory_advice", default=None
)


@contextlib.contextmanager
def smaller_model_advice(advice: str) -> Iterator[None]:
    """Within it, `refuse_training_beyond_memory` ends its refusal (and its warning) with ``choose a smaller
    model`` and `advice` (what the recipe's own flags can do, as "(--model.d_model, ...)"), not with the
    Trainer's ``precision='bf16-true'``, a setting the recipe's users cannot reach."""
    token = _RECIPE_ADVICE.set(advice)
    try:
        yield
    finally:
        _RECIPE_ADVICE.reset(token)


#: What `training_memory_limit` says of MLX's own limit (a soft one: `refuse_training_beyond_memory` warns).
MLX_MEMORY_LIMIT = "MLX may use on this machine"


class TrainingMemoryError(MemoryError):
    """`Trainer.fit` refused a model whose weights, gradients and optimizer state alone exceed the memory
    this process may use (`training_memory_limit`)."""


def training_memory_limit(mapped_already: int = 0) -> tuple[int, str]:
    """The bytes training may allocate here, and a phrase saying what sets them: MLX's limit
    (`mx.get_memory_limit`, from the device's memory), or less where the process's address-space or data
    limit leaves less (``ulimit -v`` / ``ulimit -d``, which MLX does not know of: it segfaults at the limit),
    or where its cgroup's memory limit is lower (`cgroup_memory_limit`: a container, Slurm job or systemd
    unit; the OOM killer ends the process there). What an rlimit leaves is the limit less what the process
    already maps, where Linux says; a cgroup limit counts whole, as what the cgroup holds includes page cache
    the kernel gives back. `mapped_already`: bytes of the need being measured that the process may map
    already (a model's weights, evaluated before `fit`), not taken off what an rlimit leaves a second time."""
    hard = _hard_memory_limit(mapped_already)
    return hard if hard[0] < mx.get_memory_limit() else (mx.get_memory_limit(), MLX_MEMORY_LIMIT)


def _hard_memory_limit(mapped_already: int = 0) -> tuple[int | float, str]:
    """`training_memory_limit` without MLX's own (soft) limit: the least a process rlimit leaves or the
    cgroup allows, past which the process ends (a segfault, the OOM killer); inf where none is set."""
    import resource  # (Unix only: imported where a limit is read)

    limit, what = math.inf, "no process or cgroup limit"
    for name, in_use_field, flag in _PROCESS_MEMORY_LIMITS:
        soft = resource.getrlimit(getattr(resource, name))[0]
        if soft == resource.RLIM_INFINITY:
            continue
        in_use = max(0, (own_status_bytes(in_use_field) or 0) - mapped_already)  # (None: not Linux)
        left = max(0, soft - in_use)
        if left < limit:
            limit, what = left, f"left under this process's {flag} limit of {soft / 1e9:.1f} GB"
    cgroup = _cgroup.cgroup_memory_limit()
    if cgroup is not None and cgroup[0] < limit:
        limit, what = (
            cgroup[0],
            f"this process's cgroup allows ({cgroup[1]}: a container's, job's or unit's limit)",
        )
    return limit, what


def _nbytes(tree: Any) -> int:
    """The bytes of the arrays in `tree`, from their sizes and dtypes (nothing evaluated)."""
    return sum(v.nbytes for _, v in tree_flatten(tree) if isinstance(v, mx.array))


def refuse_training_beyond_memory(module: Any, optimizer: Any, precision: str) -> None:
    """Refuse (`TrainingMemoryError`) to train `module` with `optimizer` (its state set up) where a lower
    bound of what training needs exceeds `training_memory_limit`: every weight (frozen ones too), a gradient
    for each trainable one and the optimizer's state (Adam's two moments, SGD's momentum), in their dtypes.
    Activations and MLX's buffers come on top, so what this refuses could never train; what it lets through
    may still not fit. Beyond MLX's own limit alone (soft: a Mac swaps) it is a warning, not a
    refusal. Under data parallel each rank checks its own copy."""
    weights = _nbytes(module.parameters())
    gradients = _nbytes(module.trainable_parameters())
    state = _nbytes(getattr(optimizer, "state", {}))
    need = weights + gradients + state
    limit, what = training_memory_limit(mapped_already=weights)
    if need <= limit:
        return
    # MLX's own limit is soft (past it MLX waits on its queue, then allocates anyway: a Mac swaps), so a fit
    # beyond it may still run, slowly: said, not refused. A process or cgroup limit ends it, also where it is
    # above MLX's: a need past both is refused under that one.
    if what == MLX_MEMORY_LIMIT:
        hard_limit, hard_what = _hard_memory_limit(mapped_already=weights)
        if need > hard_limit:
            limit, what = hard_limit, hard_what
    recipe_advice = _RECIPE_ADVICE.get()
    halves = (
        ", train in precision='bf16-true' (half the bytes of float32 weights, gradients and state)"
        if precision != "bf16-true"
        else ""
    )
    halves = halves if recipe_advice is None else f" {recipe_advice}"
    message = (
        f"Trainer.fit: training {type(module).__name__} needs at least {byte_size(need)} (its weights "
        f"{byte_size(weights)}, their gradients {byte_size(gradients)} and {type(optimizer).__name__}'s "
        f"state {byte_size(state)}; activations come on top), more than the {byte_size(limit)} {what}"
    )
    if what == MLX_MEMORY_LIMIT:
        smaller = " or train in precision='bf16-true' (half the bytes)" if precision != "bf16-true" else ""
        smaller = smaller if recipe_advice is None else f" {recipe_advice}"
        warnings.warn(
            f"{message}: it may swap or fail; to stay within it, choose a smaller model{smaller}",
            UserWarning,
            2,
        )
        return
    raise TrainingMemoryError(f"{message}; choose a smaller model{halves}, or raise that limit")
