"""Eager training steps whose loss reached no trainable weight: every gradient exactly zero.

The way a user new to MLX gets there: a forward wrapped in `mx.compile` inside the module
(``self._fwd = mx.compile(self.forward)``, as MLX's inference examples do) without ``inputs=self.state``.
Such a function keeps the weights it was traced with as constants, so gradients never reach them. The
Trainer's compiled step traces through it and trains; with `Trainer(compile=False)`, the way out its own
messages suggest for other pitfalls, the loss stayed flat from the first epoch on and nothing said why.
Checked on an eager fit's first steps, one host wait each, until a gradient is not zero."""

from __future__ import annotations

import warnings
from typing import Any

from audiotrain._caller import user_stacklevel

import mlx.core as mx
from mlx.utils import tree_flatten


def compiled_functions(module: Any) -> list[str]:
    """'Model._fwd' for each function the module or a submodule holds that mx.compile made."""
    found = []
    for path, sub in [("", module), *module.named_modules()]:
        for name, value in vars(sub).items():
            if type(value).__module__ == "mlx.core" and type(value).__name__ == "_gc_func":
                found.append(".".join(p for p in (type(module).__name__, path, name) if p))
    return sorted(set(found))


def refuse_compiled_modules(module: Any, where: str) -> None:
    """A layer kept as `mx.compile(layer)` (torch's `self.net = torch.compile(Net())` habit): MLX's compiled
    function poses as the module it wraps, so it is walked as a submodule and fails deep inside with
    "argument of type '_gc_func' is not iterable"; and its weights are its constants, never trained. Refused
    at once, naming the attribute and the fix."""
    for path, sub in module.named_modules():
        if type(sub).__module__ == "mlx.core" and type(sub).__name__ == "_gc_func":
            layer = sub.__class__.__name__  # (the compiled function answers with the wrapped layer's class)
            raise TypeError(
                f"{where}: {type(module).__name__}.{path} is mx.compile({layer}(...)), as torch.compile(net) is "
                "kept: MLX's compiled function is not a layer, and keeps the weights it was traced with as "
                f"constants, so they would never train. Keep the layer (self.{path} = {layer}(...)) and, where "
                "speed matters, compile a function of it with its state as input: functools.partial(mx.compile, "
                f"inputs=self.{path}.state)(lambda x: self.{path}(x))"
            )


# Steps in a row with no gradient before it is said: a first step may rightly have none (a loss weighted 0
# at batch 0, a batch whose samples are all masked out).
STEPS_WITHOUT_GRADIENT = 3


class NoGradientWatch:
    """An eager fit's first steps: `see(module, grads, where)` after each, until a gradient is not zero or
    `STEPS_WITHOUT_GRADIENT` in a row were (then it warns). One host wait a step while it watches."""

    def __init__(self, manual: bool = False) -> None:
        self.done, self._zero_steps = False, 0
        self.manual = manual  # (a manual step's manual_backward calls, which no Trainer(compile=) compiles)

    def see(self, module: Any, grads: Any, where: str) -> None:
        leaves = [g for _, g in tree_flatten(grads) if isinstance(g, mx.array)]
        # (mx.any(g), not mx.any(g != 0): the same answer, NaN included, with one op a leaf instead of two;
        # the two were a sixth of an eager first step's time in a model of 400 small layers)
        try:
            some_gradient = not leaves or mx.any(mx.stack([mx.any(g) for g in leaves])).item()
        except (RuntimeError, ValueError):  # (MLX's error in the step's graph: float class labels in a loss)
            return  # the Trainer's wait for the step meets it again, naming the step and the batch
        if some_gradient:
            self.done = True
            return
        self._zero_steps += 1
        if self._zero_steps < STEPS_WITHOUT_GRADIENT:
            return
        self.done = True
        compiled = compiled_functions(module)
        held = f" ({', '.join(compiled)} is one)" if compiled else ""
        if self.manual:
            warnings.warn(
                f"{where}: manual_backward's loss reached no weight it differentiates in its first "
                f"{STEPS_WITHOUT_GRADIENT} calls (every gradient exactly zero), so opt.step() changes nothing. "
                f"A network wrapped in mx.compile{held} without its state as input keeps the weights it was "
                "traced with as constants: write functools.partial(mx.compile, inputs=self.generator.state)"
                "(fn) (the network the function calls), or drop that mx.compile. A loss that does not depend "
                "on the weights (mx.stop_gradient, a constant) does the same",
                stacklevel=user_stacklevel(),
            )
            return
        warnings.warn(
            f"{where}: no trainable weight got a gradient in the first {STEPS_WITHOUT_GRADIENT} training "
            "steps (every gradient exactly zero), so the weights do not change. A forward wrapped in "
            f"mx.compile inside the module{held} without inputs=self.state keeps the weights it was traced "
            "with as constants: drop that mx.compile (Trainer(compile=True), the default, compiles the whole "
            "step) or write functools.partial(mx.compile, inputs=self.state)(fn). A loss that does not "
            "depend on the weights (mx.stop_gradient, a constant) does the same",
            stacklevel=user_stacklevel(),
        )
