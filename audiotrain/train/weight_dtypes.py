"""`Trainer.fit`'s checks of the weights' dtypes against its precision, before the first step.

Float16 weights that their optimizer's eps cannot train are refused. A model the user cast to float16
trains in float16 under precision '32' (Lightning's '16-true', which MLX has no loss scaling for). Adam-like
optimizers divide by ``sqrt(v) + eps``: their eps (1e-8 by default) is 0 in float16, and a squared gradient
below 6e-8 (|g| < 2.4e-4) is 0 too, so the first update makes the weights inf. The non-finite guard checks
the loss and gradients, which are finite, so nothing stopped it: the fit ended later on "non-finite loss or
gradients", with advice that could not help and infinite weights. Weights already bfloat16 under
bf16-mixed are warned about: its float32 master weights make them float32.
"""

from __future__ import annotations

import warnings
from typing import Any

from audiotrain.train.parameter_tree import multi_optimizer_parts

import mlx.core as mx
import mlx.optimizers as optim
from mlx.utils import tree_flatten

#: float16's smallest normal number: an eps below it is 0 or a subnormal that cannot steady the division.
FLOAT16_TINY = 6.1e-5


def _optimizers_and_parameters(optimizer: Any, parameters: Any) -> list[tuple[Any, Any]]:
    if isinstance(optimizer, optim.MultiOptimizer):
        return list(zip(optimizer.optimizers, multi_optimizer_parts(optimizer, parameters)))
    return [(optimizer, parameters)]


def _eps_vanishes(optimizer: Any, eps: float) -> bool:
    """Whether float16 weights cannot be trained by `optimizer` for its `eps`. AdaDelta adds eps inside its
    roots, sqrt(u + eps) / sqrt(v + eps): any eps float16 holds at all (a subnormal, down to 6e-8; its
    default 1e-6 is one) keeps both away from 0, as it trained before this check; the others divide by
    sqrt(v) + eps (Adamax by v + eps), which float16 makes 0 for an eps below its smallest normal."""
    if isinstance(optimizer, optim.AdaDelta):
        return mx.array(eps, mx.float16).item() == 0
    return eps < FLOAT16_TINY


def refuse_float16_weights_with_vanishing_eps(trainable: Any, optimizer: Any) -> None:
    """Raise ValueError where trainable float16 weights go to an optimizer whose eps float16 cannot hold."""
    for part_optimizer, part in _optimizers_and_parameters(optimizer, trainable):
        eps = getattr(part_optimizer, "eps", None)
        smallest = min(eps) if isinstance(eps, (tuple, list)) else eps
        if not isinstance(smallest, (int, float)) or not _eps_vanishes(part_optimizer, smallest):
            continue
        names = [name for name, value in tree_flatten(part) if value.dtype == mx.float16]
        if not names:
            continue
        shown = ", ".join(repr(n) for n in names[:3]) + (", ..." if len(names) > 3 else "")
        raise ValueError(
            f"Trainer.fit: {len(names)} trainable weight(s) are float16 ({shown}), and "
            f"{type(part_optimizer).__name__}'s eps={eps!r} is below float16's smallest normal "
            f"{FLOAT16_TINY:g}: its update divides by sqrt(v) + eps, so the first step would make the "
            "weights inf (MLX has no loss scaling for float16). Train them as bfloat16 with "
            "precision='bf16-true', or cast the model to float32 (model.set_dtype(mx.float32)) and use "
            "precision='bf16-mixed'"
        )


def warn_bfloat16_weights_under_bf16_mixed(trainable: Any, owner: str) -> None:
    """Warn where `precision="bf16-mixed"` gets weights that are already bfloat16 or float16: it keeps
    float32 master weights (its gradients are float32), so the first update made them float32, twice their
    memory, without a word (torch's autocast leaves such weights in their dtype)."""
    low = {
        name: value.dtype
        for name, value in tree_flatten(trainable)
        if value.dtype in (mx.bfloat16, mx.float16)
    }
    if low:
        shown = ", ".join(repr(n) for n in list(low)[:3]) + (", ..." if len(low) > 3 else "")
        dtypes = " and ".join(sorted({str(d).removeprefix("mlx.core.") for d in low.values()}))
        warnings.warn(
            f"Trainer(precision='bf16-mixed'): {len(low)} trainable weight(s) of {owner} are {dtypes} "
            f"({shown}); "
            "bf16-mixed keeps float32 master weights, so the first update makes them float32 (twice the "
            "memory). For bfloat16 weights use precision='bf16-true'; to train float32 ones, "
            "model.set_dtype(mx.float32) first silences this",
            UserWarning,
            stacklevel=3,
        )
