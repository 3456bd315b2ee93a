"""Small building blocks both CLAP towers share: activations, dropout, stochastic depth, the projection head."""

from __future__ import annotations

from collections.abc import Callable

import mlx.core as mx
import mlx.nn as nn
import numpy as np


def activation(name: str) -> Callable[[mx.array], mx.array]:
    """The activation transformers' ``ACT2FN[name]`` applies.

    ``"gelu"`` is the exact erf GELU (what CLAP was trained with), not an approximation: the tanh form differs by
    up to 1e-3 and would break parity with the PyTorch model. It is slow on MLX's CPU backend (see PLATFORM.md).
    """
    table: dict[str, Callable[[mx.array], mx.array]] = {
        "gelu": nn.gelu,
        "gelu_new": nn.gelu_approx,
        "gelu_pytorch_tanh": nn.gelu_approx,
        "relu": nn.relu,
        "tanh": mx.tanh,
        "silu": nn.silu,
        "swish": nn.silu,
    }
    if name not in table:
        raise ValueError(f"activation {name!r} is not supported (one of {', '.join(table)})")
    return table[name]


class Dropout(nn.Module):
    """``nn.Dropout`` that costs nothing when its probability is zero (the audio attention's default)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def __call__(self, x: mx.array) -> mx.array:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        return x * mx.random.bernoulli(keep, x.shape, key=_draw_key()) * (1.0 / keep)


class DropPath(nn.Module):
    """Stochastic depth: drops a whole residual branch per sample while training (Swin's ``drop_path_rate``)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def __call__(self, x: mx.array) -> mx.array:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        mask = mx.floor(mx.random.uniform(shape=shape, dtype=x.dtype, key=_draw_key()) + keep)
        return x / keep * mask


class ClapProjection(nn.Module):
    """``linear1 -> activation -> linear2``: maps a tower's pooled vector into the shared embedding space.

    Parameters
    ----------
    hidden_size : int
        Width of the tower's pooled output.
    projection_dim : int
        Width of the joint audio-text space (512 for the LAION checkpoints).
    act : str
        ``projection_hidden_act`` (``"relu"`` in every LAION config).
    """

    def __init__(self, hidden_size: int, projection_dim: int, act: str = "relu") -> None:
        super().__init__()
        self.linear1 = nn.Linear(hidden_size, projection_dim)
        self.linear2 = nn.Linear(projection_dim, projection_dim)
        self._act = activation(act)

    def __call__(self, x: mx.array) -> mx.array:
        return self.linear2(self._act(self.linear1(x)))


def model_input(value: mx.array | np.ndarray, name: str) -> mx.array:
    """`value` as an mx.array: a numpy array, what `ClapTokenizer` and `ClapFeatureExtractor` return (as
    transformers' ``return_tensors="np"``), is converted here, once; anything else is refused naming the
    argument (numpy input met raw MLX errors deep in the towers, a list "has no attribute 'ndim'")."""
    if isinstance(value, mx.array):
        return value
    if isinstance(value, np.ndarray):
        return mx.array(value)
    hint = f": wrap it in np.array({name})" if isinstance(value, (list, tuple)) else ""
    raise TypeError(f"{name} must be an mx.array or a numpy array, got {type(value).__name__}{hint}")


#: The random key of the training block `run_block` is running (a one-item list, or None): Dropout and
#: DropPath draw from it in place of the global random state, so that the backward pass's recomputation of
#: the block draws the masks its forward drew (the global state has moved on by then: other masks, other
#: gradients).
_block_key: list[mx.array] | None = None


def _draw_key() -> mx.array | None:
    """The next key of the checkpointed block running now, or None (draw from the global random state)."""
    if _block_key is None:
        return None
    _block_key[0], key = mx.random.split(_block_key[0])
    return key


def run_block(block: nn.Module, checkpointed: bool, *args: mx.array) -> mx.array:
    """``block(*args)``, under activation checkpointing (``nn.utils.checkpoint``) when ``checkpointed`` and
    the block trains: its activations are recomputed in the backward pass instead of kept, less memory for
    about one more forward of the block.

    A training block's Dropout and DropPath masks come from one key drawn here, checkpointed or not: the
    recomputation draws the forward's masks, and a run draws the same masks with checkpointing on or off
    (the same gradients). The key is held by the checkpointed call, not an input: a draw has no gradient."""
    if not block.training:
        return block(*args)
    # A key is two uint32; these are drawn from the global random state, which moves on as for a plain draw.
    key = mx.random.randint(0, 2**31 - 1, (2,)).astype(mx.uint32)

    def call(*inputs: mx.array) -> mx.array:
        global _block_key
        outer, _block_key = _block_key, [key]
        try:
            return block(*inputs)
        finally:
            _block_key = outer

    return nn.utils.checkpoint(block, call)(*args) if checkpointed else call(*args)
