"""An optimizer update that changes nothing when an in-graph flag says the gradients are not finite.

The step cannot branch in Python (it is one compiled graph), so a skipped update has to be
expressed in arrays. Two ways, both exact:

- **Select** (any optimizer): run the update, then `where(finite, new, old)` over the parameters
  and the whole optimizer state. Correct for everything, but on MLX's CPU backend selecting the
  state after the update is a second pass that also stops the fused update from writing in place:
  it doubled the step time of a small MLP (benchmarks/trainer_overhead.py).
- **Inline** (Adam and AdamW, with or without bias correction, the common case): MLX's own Adam
  arithmetic, operation for operation, with the selects written into it, so `mx.compile` fuses them
  into the one elementwise update kernel: m' = where(finite, b1·m + (1 − b1)·g, m), the same for v,
  and a learning rate of 0 on a skipped step, which leaves p' = p·(1 − 0·wd) − 0·m'/(√v' + ε) = p.
  Bias correction divides by 1 − b1^t with t the step the update would be (never 0, even when the
  first step is skipped), so a skipped step's correction is finite and multiplied by that 0. The
  betas stay Python floats, as in MLX: as arrays they become per-element loads in the fused kernel
  (an earlier version folded the flag into them; measured ~6% of the step slower). A finite step
  is bitwise `optimizer.update`, a skipped one bitwise a no-op (both tested).

Either way the optimizer state is written back into the containers the optimizer holds
(`write_state_in_place`): the compiled step captured them, and `MultiOptimizer.state` is a new dict
around its optimizers' states on every read, where an assignment at the top would be lost.
"""

from __future__ import annotations

from typing import Any

from audiotrain.train.module import TrainModule
from audiotrain.train.parameter_tree import multi_optimizer_parts
from audiotrain.train.trace_guard import call_traced_hook

import mlx.core as mx
import mlx.optimizers as optim
from mlx.utils import tree_flatten, tree_map, tree_unflatten


def select_tree(keep_new: mx.array, new: Any, old: Any) -> Any:
    """Elementwise `new if keep_new else old` over matching pytrees."""
    return tree_map(lambda n, o: mx.where(keep_new, n, o), new, old)


def can_inline(optimizer: optim.Optimizer) -> bool:
    """Whether `optimizer` takes the inlined fast path.

    Exact types only: a subclass may change the update rule. Only the learning rate may be
    scheduled (Adam schedules nothing else).
    """
    return type(optimizer) in (optim.Adam, optim.AdamW) and set(optimizer._schedulers) <= {"learning_rate"}


def write_state_in_place(optimizer: optim.Optimizer, values: dict) -> None:
    """Write `values`, a tree shaped like `optimizer.state`, into the containers the optimizer holds.

    Only leaves are assigned, inside the dicts and lists already there (new keys get their whole
    subtree): the compiled step captured those containers, and `MultiOptimizer.state` builds a new
    top-level dict on each read, so `optimizer.state[key] = ...` would be lost for it.
    """
    _assign_leaves(optimizer.state, values)


def _assign_leaves(target: dict | list, values: dict | list) -> None:
    items = values.items() if isinstance(values, dict) else enumerate(values)
    for key, value in items:
        present = key in target if isinstance(target, dict) else key < len(target)
        current = target[key] if present else None
        if isinstance(current, (dict, list)) and isinstance(value, (dict, list)):
            _assign_leaves(current, value)
        else:
            target[key] = value


def guarded_update(module: TrainModule, optimizer: optim.Optimizer, grads: Any, finite: mx.array) -> None:
    """`optimizer.update(module, grads)` followed by `module.on_after_optimizer_step()`, both
    undone in-graph when `finite` is False (the optimizer's step counter included, so a schedule
    does not advance on a skipped step)."""
    hook_overridden = type(module).on_after_optimizer_step is not TrainModule.on_after_optimizer_step
    params_before = module.trainable_parameters()
    if can_inline(optimizer):
        _inlined_adam_update(module, optimizer, grads, finite)
        if hook_overridden:
            # Constraints run on the (unchanged) weights too; selecting keeps a skip exact even
            # for a hook that is not idempotent. Parameters only: that select is cheap.
            call_traced_hook(module, "on_after_optimizer_step")
            module.update(select_tree(finite, module.trainable_parameters(), params_before))
        return
    # A structural copy: optimizers mutate their nested per-parameter dicts in place.
    state_before = tree_map(lambda x: x, dict(optimizer.state))
    update_weights(module, optimizer, grads)
    call_traced_hook(module, "on_after_optimizer_step")
    module.update(select_tree(finite, module.trainable_parameters(), params_before))
    write_state_in_place(optimizer, select_tree(finite, dict(optimizer.state), state_before))


def update_weights(module: TrainModule, optimizer: optim.Optimizer, grads: Any) -> None:
    """`optimizer.update(module, grads)`, where a MultiOptimizer's new weights are joined by their paths:
    MLX's own join (`tree_merge`, MLX 0.32) fails with "Trees contain elements at the same locations but no
    merge function was provided" where its filters split a list between its optimizers (nn.Sequential's
    `layers`, a layer without weights such as ReLU among them: `path.startswith("net.layers.0")`)."""
    if not isinstance(optimizer, optim.MultiOptimizer):
        optimizer.update(module, grads)
        return
    module.update(tree_unflatten(_new_weights(optimizer, grads, module.trainable_parameters())))


def _new_weights(optimizer: optim.Optimizer, grads: Any, parameters: Any) -> list[tuple[str, Any]]:
    """(path, new weight) for each weight `grads` has, as `optimizer.apply_gradients` computes them (each
    optimizer of a MultiOptimizer on its part, every one of them called, as MLX calls them)."""
    if not isinstance(optimizer, optim.MultiOptimizer):
        return tree_flatten(optimizer.apply_gradients(grads, parameters))
    parts = multi_optimizer_parts(optimizer, grads)
    return [
        pair
        for inner, part in zip(optimizer.optimizers, parts)
        for pair in _new_weights(inner, part, parameters)
    ]


def _inlined_adam_update(module: TrainModule, optimizer: optim.Adam, grads: Any, finite: mx.array) -> None:
    """MLX's `Optimizer.apply_gradients` + `Adam(W).apply_single` with the skip written in."""
    if not optimizer._initialized:
        optimizer.init(grads)
    state = optimizer.state
    step_before, lr_before = state["step"], state["learning_rate"]
    schedule = optimizer._schedulers.get("learning_rate")
    lr_now = schedule(step_before) if schedule is not None else lr_before
    state["learning_rate"] = mx.where(finite, lr_now, lr_before)
    state["step"] = mx.where(finite, step_before + 1, step_before)
    lr_applied = mx.where(finite, lr_now, 0.0)  # 0 on a skip: the parameters stay bitwise

    b1, b2 = optimizer.betas
    eps = optimizer.eps
    decay = optimizer.weight_decay if type(optimizer) is optim.AdamW else None
    # The step this update is (MLX's `self.step` after its increment): never 0, so the correction
    # stays finite on a skipped first step, where the rate of 0 cancels it.
    step = step_before + 1 if optimizer.bias_correction else None

    def update_one(gradient: mx.array, parameter: mx.array, slot: dict) -> mx.array:
        lr = lr_applied.astype(gradient.dtype)
        if decay is not None:
            parameter = parameter * (1 - lr * decay)
        # A NaN gradient only reaches the branch the select drops.
        m = mx.where(finite, b1 * slot["m"] + (1 - b1) * gradient, slot["m"])
        v = mx.where(finite, b2 * slot["v"] + (1 - b2) * mx.square(gradient), slot["v"])
        slot["m"], slot["v"] = m, v
        if optimizer.bias_correction:  # as MLX's Adam.apply_single, operation for operation
            c1 = (lr / (1 - b1**step)).astype(gradient.dtype)
            c2 = mx.rsqrt(1 - b2**step).astype(gradient.dtype)
            return parameter - c1 * m / (mx.sqrt(v) * c2 + eps)
        return parameter - lr * m / (mx.sqrt(v) + eps)

    module.update(tree_map(update_one, grads, module, state))
