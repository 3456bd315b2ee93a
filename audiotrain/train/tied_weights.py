"""Refuse a weight array set on two different modules (torch's way of tying weights), which MLX trains apart.

``self.out.weight = self.emb.weight`` ties the two in torch: one Parameter, whose gradient is the sum of both
uses. In MLX a module's parameters are a tree of arrays by name, so the same array under two names is two
parameters: each got the gradient of its own use and its own update, and after the first step the two held
different values without a word (the result no longer matched torch's). One module reached by two names
(``self.b = self.a``) is a real tie: both names set the same attribute of one module, which holds the last
update, and it matches torch.
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten


def _holders(
    value: Any, owner: int, inner: str, name: str, found: dict[int, list[tuple[int, str, str]]]
) -> None:
    """Record (id of the module holding it, its name inside that module, its full name) of each array under
    `value`. Walked, not parsed from the dotted names: a dict's keys may be ints or hold dots."""
    if isinstance(value, mx.array):
        found.setdefault(id(value), []).append((owner, inner, name))
    elif isinstance(value, nn.Module):
        for key, child in value.items():
            if not str(key).startswith("_"):  # (MLX leaves these out of the parameters)
                _holders(child, id(value), str(key), f"{name}.{key}" if name else str(key), found)
    elif isinstance(value, (dict, list)):
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in pairs:
            _holders(child, owner, f"{inner}.{key}", f"{name}.{key}", found)


def arrays_tied_across_modules(module: nn.Module) -> list[list[str]]:
    """The names of each array that more than one module (or attribute) holds, one of them trainable (one
    frozen where the other trains parts them too; an array frozen everywhere, a shared constant, stays
    one)."""
    trainable = {id(array) for _, array in tree_flatten(module.trainable_parameters())}
    found: dict[int, list[tuple[int, str, str]]] = {}
    _holders(module, id(module), "", "", found)
    return [
        [name for _, _, name in holders]
        for key, holders in found.items()
        if key in trainable and len({(owner, inner) for owner, inner, _ in holders}) > 1
    ]


def refuse_arrays_tied_across_modules(module: nn.Module) -> None:
    """Raise ValueError naming the weights that are one array in several modules (see the module's doc)."""
    tied = arrays_tied_across_modules(module)
    if not tied:
        return
    shown = "; ".join(" = ".join(repr(name) for name in group) for group in tied[:3])
    raise ValueError(
        f"Trainer.fit: {type(module).__name__} holds one weight array under several modules ({shown}), "
        "as torch ties weights. MLX trains each name as its own parameter: each would get only its own "
        "use's gradient and the two would part after the first step. To train one weight, keep it in one "
        "module and use that module in both places (an embedding tied to the output projection: "
        "`self.emb.as_linear(x)` in place of the output layer; a layer used twice: `self.b = self.a`). "
        "To train them apart, give each its own copy (`mx.array(w)`)."
    )
