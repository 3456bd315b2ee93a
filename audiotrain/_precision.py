"""Full float32 matmuls on CUDA unless the user asks for TF32.

MLX's CUDA backend runs float32 matmuls (and cuDNN convolutions) on TF32 tensor cores by default: a
10-bit mantissa, so a 512x512 product is off by about 3e-4 relative instead of 3e-7. That is 30-100x
outside the tolerances audiotrain promises (mel and log-mel within 1e-5 of librosa, CLAP within 1e-4 of
`transformers`), and it is not what a PyTorch user expects of ``precision="32"``: PyTorch keeps float32
matmuls in full precision unless ``torch.backends.cuda.matmul.allow_tf32`` (or
``torch.set_float32_matmul_precision("high")``) says otherwise.

MLX reads ``MLX_ENABLE_TF32`` once, at the first float32 matmul, so `import audiotrain` sets it to ``0``
(full precision) when the user has not set it. ``MLX_ENABLE_TF32=1`` in the environment keeps MLX's
TF32 default (float32 matmuls on tensor cores, at that precision); ``precision="bf16-mixed"`` is the
Trainer's own way to trade precision for speed. Metal and the CPU backend ignore the variable.
"""

from __future__ import annotations

import os
import sys

ENV_VAR = "MLX_ENABLE_TF32"

#: Whether the user set MLX_ENABLE_TF32 before audiotrain was imported (None until `default_full_float32`).
USER_SET: bool | None = None
#: Whether mlx.core was already imported then: a float32 matmul before that point fixed MLX's choice.
MLX_FIRST = False


def default_full_float32() -> None:
    """Set ``MLX_ENABLE_TF32=0`` unless the user chose a value. Idempotent."""
    global USER_SET, MLX_FIRST
    if USER_SET is None:
        USER_SET = ENV_VAR in os.environ
        MLX_FIRST = "mlx.core" in sys.modules
    os.environ.setdefault(ENV_VAR, "0")


def tf32_enabled() -> bool:
    """Whether MLX's CUDA backend runs float32 matmuls in TF32 (MLX's own default is on)."""
    return os.environ.get(ENV_VAR, "1").strip() not in ("0", "")


def describe() -> str:
    """One line for `python -m audiotrain info` (meaningful on the CUDA backend)."""
    who = "set by the user" if USER_SET else "audiotrain's default"
    if tf32_enabled():
        return f"TF32 ({ENV_VAR}={os.environ.get(ENV_VAR)}, {who}; about 1e-3 relative error)"
    caveat = (
        "; mlx.core was imported before audiotrain, so a float32 matmul run before that kept MLX's TF32"
        if MLX_FIRST and not USER_SET
        else ""
    )
    return f"full float32 ({ENV_VAR}={os.environ.get(ENV_VAR)}, {who}; {ENV_VAR}=1 for TF32{caveat})"
