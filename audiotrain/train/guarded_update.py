"""An optimizer update that changes nothing when an in-graph flag says the gradients are not finite.

The step cannot branch in Python (it is one compiled graph), so a skipped update has to be
expressed in arrays. Two ways, both exact:

- **Select** (any optimizer): run the update, then `where(finite, new, old)` over the parameters
  and the whole optimizer state. Correct for everything, but on MLX's CPU backend selecting the
  moments after the update keeps both buffers alive and stops the fused update from writing in
  place: it doubled the step time of a small MLP (benchmarks/trainer_overhead.py).
- **Fold** (Adam and AdamW without bias correction, float32 parameters — the common case): with
  zero gradients, betas of 1 and a learning rate of 0 the Adam update is the identity
  (m' = 1·m + 0·0, v' = 1·v + 0·0², p' = p·(1 − 0·wd) − 0·m/(√v + ε)). Folding the flag into those
  scalars costs one select on the gradients. The arithmetic below is MLX's Adam/AdamW, operation
  for operation, so a finite step gives bitwise the same result as `optimizer.update` (tested
  against it, and against the select path on skipped steps).
"""

from __future__ import annotations

from typing import Any

from audiotrain.train.module import TrainModule

import mlx.core as mx
import mlx.optimizers as optim
from mlx.utils import tree_flatten, tree_map


def select_tree(keep_new: mx.array, new: Any, old: Any) -> Any:
    """Elementwise `new if keep_new else old` over matching pytrees."""
    return tree_map(lambda n, o: mx.where(keep_new, n, o), new, old)


def can_fold(optimizer: optim.Optimizer, grads: Any) -> bool:
    """Whether `optimizer` takes the folded fast path for these gradients.

    Exact types only: a subclass may change the update rule. Only the learning rate may be
    scheduled (Adam schedules nothing else); float32 only, because an array-valued beta would
    promote bf16 moments to float32 where MLX's Python-float beta keeps them bf16.
    """
    return (
        type(optimizer) in (optim.Adam, optim.AdamW)
        and not optimizer.bias_correction
        and set(optimizer._schedulers) <= {"learning_rate"}
        and all(g.dtype == mx.float32 for _, g in tree_flatten(grads))
    )


def guarded_update(module: TrainModule, optimizer: optim.Optimizer, grads: Any, finite: mx.array) -> None:
    """`optimizer.update(module, grads)` followed by `module.on_after_optimizer_step()`, both
    undone in-graph when `finite` is False (the optimizer's step counter included, so a schedule
    does not advance on a skipped step)."""
    hook_overridden = type(module).on_after_optimizer_step is not TrainModule.on_after_optimizer_step
    params_before = module.trainable_parameters()
    if can_fold(optimizer, grads):
        _folded_adam_update(module, optimizer, grads, finite)
        if hook_overridden:
            # Constraints run on the (unchanged) weights too; selecting keeps a skip exact even
            # for a hook that is not idempotent. Parameters only: that select is cheap.
            module.on_after_optimizer_step()
            module.update(select_tree(finite, module.trainable_parameters(), params_before))
        return
    # A structural copy: optimizers mutate their nested per-parameter dicts in place.
    state_before = tree_map(lambda x: x, dict(optimizer.state))
    optimizer.update(module, grads)
    module.on_after_optimizer_step()
    module.update(select_tree(finite, module.trainable_parameters(), params_before))
    for key, value in select_tree(finite, dict(optimizer.state), state_before).items():
        optimizer.state[key] = value


def _folded_adam_update(module: TrainModule, optimizer: optim.Adam, grads: Any, finite: mx.array) -> None:
    """MLX's `Optimizer.apply_gradients` + `Adam(W).apply_single`, with `finite` folded into the
    scalars so that a non-finite step is the identity."""
    if not optimizer._initialized:
        optimizer.init(grads)
    state = optimizer.state
    step_before, lr_before = state["step"], state["learning_rate"]
    schedule = optimizer._schedulers.get("learning_rate")
    lr_now = schedule(step_before) if schedule is not None else lr_before
    state["learning_rate"] = mx.where(finite, lr_now, lr_before)
    state["step"] = mx.where(finite, step_before + 1, step_before)

    b1, b2 = optimizer.betas
    eps = optimizer.eps
    decay = optimizer.weight_decay if type(optimizer) is optim.AdamW else None
    # float32 scalars equal to what MLX gets from its Python floats (b1 and 1 - b1 rounded once).
    b1_keep = mx.where(finite, mx.array(b1, mx.float32), 1.0)
    b1_new = mx.where(finite, mx.array(1 - b1, mx.float32), 0.0)
    b2_keep = mx.where(finite, mx.array(b2, mx.float32), 1.0)
    b2_new = mx.where(finite, mx.array(1 - b2, mx.float32), 0.0)
    lr = mx.where(finite, lr_now, 0.0).astype(mx.float32)

    def update_one(gradient: mx.array, parameter: mx.array, slot: dict) -> mx.array:
        gradient = mx.where(finite, gradient, 0.0)  # NaN·0 is NaN: zero them, do not scale them
        if decay is not None:
            parameter = parameter * (1 - lr * decay)
        m = b1_keep * slot["m"] + b1_new * gradient
        v = b2_keep * slot["v"] + b2_new * mx.square(gradient)
        slot["m"], slot["v"] = m, v
        return parameter - lr * m / (mx.sqrt(v) + eps)

    module.update(tree_map(update_one, grads, module, state))
