"""Plain Python values a compiled training step read from its module when it was traced and that a hook
changed since (a curriculum's `self.mix = epoch / 10` in `on_train_epoch_start`): the step's Python ran once,
so it keeps the traced value for every later step, where Lightning's step reads the attribute afresh. Nothing
said so: the loss curve was simply that of the first value. `StaleStepAttributes` warns, once per attribute.

Which attributes the step reads is taken from the source of the module's own `compute_loss`,
`training_step` and `__call__` (`self.<name>`): a hook's bookkeeping (`self.epochs_seen += 1`) that the step
never reads is no concern. Where the source cannot be read (a class typed at a bare `python` prompt), nothing
is watched."""

from __future__ import annotations

import inspect
import re
import warnings
from typing import Any

from audiotrain._caller import user_stacklevel

_STEP_METHODS = ("compute_loss", "training_step", "__call__")
_PLAIN = (bool, int, float, str)


def attributes_the_step_reads(module: Any) -> set[str]:
    """The names the module's own step methods read as ``self.<name>`` (its class's, not TrainModule's)."""
    names: set[str] = set()
    for method in _STEP_METHODS:
        function = getattr(type(module), method, None)
        if function is None or (getattr(function, "__module__", None) or "").startswith("audiotrain.train"):
            continue
        try:
            source = inspect.getsource(function)
        except Exception:  # (no source: exec'd code, a C function, a class typed at a prompt)
            continue
        names.update(re.findall(r"\bself\.([A-Za-z]\w*)\b(?!\s*\()", source))
    return names


def _plain_values(module: Any, names: set[str]) -> dict[str, Any]:
    values = {}
    for name in names:
        value = inspect.getattr_static(module, name, None)
        if isinstance(value, _PLAIN):
            values[name] = value
    return values


class StaleStepAttributes:
    """One fit's watch: `check(module, step)` at each epoch start takes the values a new compiled `step`
    is traced with (the first epoch start it sees it) and warns of any changed since."""

    def __init__(self) -> None:
        self._step: Any = None
        self._names: set[str] = set()
        self._traced: dict[str, Any] = {}
        self._said: set[str] = set()

    def check(self, module: Any, step: Any) -> None:
        if step is not self._step:  # (a new step, rebuilt after a freeze: traced with today's values)
            self._step = step
            self._names = attributes_the_step_reads(module)
            self._traced = _plain_values(module, self._names)
            return
        now = _plain_values(module, self._names)
        changed = {k: (v, now[k]) for k, v in self._traced.items() if k in now and now[k] != v}
        for name, (traced, value) in changed.items():
            if name in self._said:
                continue
            self._said.add(name)
            warnings.warn(
                f"{type(module).__name__}.{name} changed from {traced!r} to {value!r} since the compiled "
                f"training step was traced, and the step reads self.{name}: its Python ran once, when it was "
                f"traced, so every step still uses {traced!r} (Lightning's step reads it afresh). Keep what "
                f"the step needs as an array on the module (self.{name} = mx.array(...), frozen with "
                f"self.freeze(keys=['{name}'], recurse=False)), or train with Trainer(compile=False)",
                stacklevel=user_stacklevel(),
            )
