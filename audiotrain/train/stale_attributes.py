"""Plain Python values a compiled training step read from its module when it was traced and that a hook
changed since (a curriculum's `self.mix = epoch / 10` in `on_train_epoch_start`): the step's Python ran once,
so it keeps the traced value for every later step, where Lightning's step reads the attribute afresh. Nothing
said so: the loss curve was simply that of the first value. `StaleStepAttributes` warns, once per attribute.

What the step read is recorded while it is traced (`traced_reads`): in the step, in a helper method it calls,
in a submodule, in a dict attribute such as `self.hparams`. A hook's bookkeeping (`self.epochs_seen += 1`)
that the step never reads is no concern."""

from __future__ import annotations

import warnings
from typing import Any

from audiotrain._caller import user_stacklevel
from audiotrain.train.traced_reads import TracedRead, changed_reads, counts_property

import mlx.core as mx


class StaleStepAttributes:
    """One fit's watch: `check(module, step)` at each epoch start warns of what the compiled `step` read while
    traced and a hook changed since."""

    def __init__(self) -> None:
        self._said: set[tuple[int, str]] = set()

    def check(self, module: Any, step: Any) -> None:
        for read, value in changed_reads(step.traced_reads):
            # (A count the step read, `self.current_epoch`, is warned of as the step is traced: `module.py`.)
            if read.key is None and counts_property(type(read.owner), read.name):
                continue
            if (id(read.owner), read.label) in self._said:
                continue
            self._said.add((id(read.owner), read.label))
            if isinstance(read.value, mx.array):
                name = read.label.rpartition(".")[2]
                warnings.warn(
                    f"{type(module).__name__}.{read.label}, an array held by an object that is no module "
                    f"({type(getattr(read.owner, read.name)).__name__}), was reassigned since the compiled "
                    f"training step was traced, and the step reads it: the traced graph holds the array it "
                    "read then as a constant, so every step still uses that one (Lightning's step reads the "
                    f"new one). Put the array on the module (self.{name} = ..., frozen with "
                    f"self.freeze(keys=['{name}'], recurse=False)) or pass it to the step, or train with "
                    "Trainer(compile=False)",
                    stacklevel=user_stacklevel(),
                )
                continue
            warnings.warn(
                f"{type(module).__name__}.{read.label} changed from {read.value!r} to {value!r} since the "
                f"compiled training step was traced, and the step reads self.{read.label}: its Python ran "
                f"once, when it was traced, so every step still uses {read.value!r} (Lightning's step reads "
                f"it afresh). {_what_to_do(read)}, or train with Trainer(compile=False)",
                stacklevel=user_stacklevel(),
            )


def _what_to_do(read: TracedRead) -> str:
    owner, _, name = read.label.rpartition(".")
    if read.key is not None:  # (an item of a dict: hparams, a dict of loss weights)
        name = read.key if isinstance(read.key, str) and read.key.isidentifier() else f"{read.name}_now"
        return (
            f"Keep what the step needs as an array attribute the hook sets (self.{name} = mx.array(...), "
            f"frozen with self.freeze(keys=['{name}'], recurse=False)) and read that in the step"
        )
    holder = f"self.{owner}" if owner else "self"
    return (
        f"Keep what the step needs as an array on the module (self.{read.label} = mx.array(...), frozen with "
        f"{holder}.freeze(keys=['{name}'], recurse=False))"
    )
