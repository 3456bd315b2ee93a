"""Lightning's `grad_norm(module, norm_type)`: each parameter's gradient norm and their total, to log in a
manual step (`self.log_dict(grad_norm(self.generator, norm_type=2))` in `on_before_optimizer_step`).

The gradients it reads are the running manual step's, summed since each optimizer's `zero_grad()`: with
automatic optimization they exist only inside the compiled step, whose total `Trainer(track_grad_norm=True)`
logs as `grad_norm`.
"""

from __future__ import annotations

from typing import Any

from audiotrain.train.manual import running_manual_step

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten


def grad_norm(
    module: nn.Module, norm_type: float | int | str, group_separator: str = "/"
) -> dict[str, mx.array]:
    """The p-norm of each parameter's gradient and of all of them as one vector, as Lightning's.

    Parameters
    ----------
    module : nn.Module
        The module being trained, or one of its submodules (`self.generator`); names are relative to it
        (MLX's: ``layers.0.weight``), as Lightning's are relative to the module given.
    norm_type : float, int or str
        The p of the norm (> 0), or ``"inf"`` for the largest absolute value.
    group_separator : str
        Between ``grad_{p}_norm`` and a parameter's name, so loggers group them (``"/"``).

    Returns
    -------
    dict[str, mx.array]
        ``grad_{p}_norm{group_separator}{name}`` for each parameter with a gradient (float32 scalars),
        and ``grad_{p}_norm_total`` where there is any (an empty dict after ``zero_grad()``), where p is
        ``float(norm_type)`` as written by Python: ``grad_2.0_norm/layers.0.weight``, ``grad_inf_norm_total``.
    """
    where = f"grad_norm({type(module).__name__}, norm_type={norm_type!r})"
    if not isinstance(module, nn.Module):
        raise TypeError(f"{where}: expected an mlx.nn.Module (self, or a submodule such as self.generator)")
    try:
        p = float(norm_type)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: `norm_type` must be a positive number or 'inf' (infinity norm)") from None
    if not p > 0:
        raise ValueError(f"{where}: `norm_type` must be a positive number or 'inf' (infinity norm). Got {p}")
    grads = _gradients_of(module, where)
    norms = {f"grad_{p}_norm{group_separator}{name}": _norm(g, p) for name, g in grads.items()}
    if norms:
        norms[f"grad_{p}_norm_total"] = _norm(mx.stack(list(norms.values())), p)
    return norms


def _gradients_of(module: nn.Module, where: str) -> dict[str, mx.array]:
    """`module`'s parameters' gradients in the running manual step, by their names relative to `module`."""
    step = running_manual_step()
    if step is None:
        raise RuntimeError(
            f"{where}: no manual step is running: gradients exist in Python only in a manual step "
            "(automatic_optimization = False), in training_step after self.manual_backward(...) or in the "
            "hooks it runs (on_after_backward, on_before_optimizer_step); with automatic optimization they "
            "exist only inside the compiled step: Trainer(track_grad_norm=True) logs their total as 'grad_norm'"
        )
    root = step.module
    prefixes = [""] if module is root else [name for name, sub in root.named_modules() if sub is module]
    if not prefixes:
        raise ValueError(
            f"{where}: a {type(module).__name__} that is not {type(root).__name__} or one of its submodules "
            "(the module being trained): give self or a layer of it, e.g. self.generator"
        )
    found = {}
    for name, _ in tree_flatten(module.parameters()):
        for prefix in prefixes:
            grad = step.gradient(f"{prefix}.{name}" if prefix else name)
            if grad is not None:
                found[name] = grad
                break
    return found


def _norm(values: Any, p: float) -> mx.array:
    x = mx.abs(values.astype(mx.float32)).reshape(-1)
    if x.size == 0:
        return mx.array(0.0)
    if p == float("inf"):
        return mx.max(x)
    if p == 2.0:
        return mx.sqrt(mx.sum(x * x))
    if p == 1.0:
        return mx.sum(x)
    return mx.power(mx.sum(mx.power(x, p)), 1.0 / p)
