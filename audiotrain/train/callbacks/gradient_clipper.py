"""`GradientClipper`: configure the clip the compiled training step applies."""

from __future__ import annotations

from audiotrain.train.callback import Callback


class GradientClipper(Callback):
    """Clip gradients by global norm (`max_norm`) or elementwise (`max_value`).

    This configures the clip that the compiled training step applies before its one optimizer
    update; it never updates the model itself. Equivalent to `Trainer(gradient_clip_val=...,
    gradient_clip_algorithm="norm"|"value")`; giving both with different values is an error.
    """

    def __init__(self, max_norm: float | None = None, max_value: float | None = None):
        if (max_norm is None) == (max_value is None):
            raise ValueError("GradientClipper: give exactly one of max_norm or max_value")
        value = max_norm if max_norm is not None else max_value
        if not value > 0:
            raise ValueError(f"GradientClipper: the clip threshold must be > 0, got {value}")
        self.value = float(value)
        self.algorithm = "norm" if max_norm is not None else "value"

    def clip_settings(self) -> tuple[float, str]:
        return self.value, self.algorithm
