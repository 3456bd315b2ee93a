"""Seed 003's callbacks in `create_trainer`: hooks called with ``(trainer, state)`` rather than Lightning's
``(trainer, module)``.

>>> class CustomCallback(Callback):
...     def on_epoch_end(self, trainer, state):
...         print(f"Epoch {state.epoch} completed!")
>>> trainer = audiotrain.create_trainer(model, callbacks=[CustomCallback()])

`create_trainer` wraps every callback that defines one of `SEED_HOOKS` in a `TrainingHookAdapter`, an
audiotrain `Callback` that the shared Trainer calls at its own hooks and that calls the seed's from there:

========================================  ================================================================
seed 003 hook                             called at
========================================  ================================================================
``on_train_begin(trainer, state)``        ``on_train_start``: after the sanity check, before epoch 0
``on_epoch_begin(trainer, state)``        ``on_train_epoch_start``
``on_batch_begin(trainer, state, batch)`` ``on_train_batch_start``
``on_batch_end(trainer, state, loss)``    ``on_train_batch_end``; ``loss`` is read (a host sync) when used
``on_evaluate_begin(trainer, state)``     ``on_validation_start`` (not the sanity check) and ``on_test_start``
``on_evaluate_end(trainer, state, m)``    ``on_validation_end`` / ``on_test_end``; ``m``: the val_/test_ means
``on_epoch_end(trainer, state)``          ``on_train_epoch_end``, after the epoch's validation
``on_train_end(trainer, state, result)``  when `ConfiguredTrainer.train` returns (``result``: its result)
========================================  ================================================================

``trainer`` is the `ConfiguredTrainer`; ``state`` a `TrainingState`: ``epoch`` (from 0, as in the history),
``global_step`` (also ``step``), ``metrics`` (the latest means, ``train_loss``, ``val_loss``, ...) and
``should_stop`` (set it to stop training, as EarlyStopping does). ``on_epoch_end(trainer, state)`` here is
seed 003's: a Lightning 1.x ``on_epoch_end(trainer, pl_module)`` would get the state. An ``on_train_end``
that takes ``(trainer, module)`` is Lightning's and is called as such. The seed's ``on_checkpoint_save``,
``on_checkpoint_load`` and ``on_log`` are refused with what to use instead. Lightning hooks the same
object defines (``on_fit_start``, ``on_validation_end``, ...) are called as usual.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from audiotrain.train import hooks
from audiotrain.train.callback import Callback

#: Seed 003's hooks that `TrainingHookAdapter` calls, with the arguments each is called with.
HOOK_ARGUMENTS = {
    "on_train_begin": ("trainer", "state"),
    "on_epoch_begin": ("trainer", "state"),
    "on_batch_begin": ("trainer", "state", "batch"),
    "on_batch_end": ("trainer", "state", "loss"),
    "on_evaluate_begin": ("trainer", "state"),
    "on_evaluate_end": ("trainer", "state", "metrics"),
    "on_epoch_end": ("trainer", "state"),
    "on_train_end": ("trainer", "state", "result"),
}
SEED_HOOKS = tuple(HOOK_ARGUMENTS)

#: Seed 003's hooks without a place in the shared Trainer: what to use instead.
REFUSED = {
    "on_checkpoint_save": "on_save_checkpoint(self, trainer, module, checkpoint) (before the checkpoint is "
    "written; the dict it gets is saved in trainer_state.json)",
    "on_checkpoint_load": "on_load_checkpoint(self, trainer, module, checkpoint)",
    "on_log": "on_epoch_end(self, trainer, state) (state.metrics), or trainer.trainer.callback_metrics",
}


@dataclass
class TrainingState:
    """What seed 003's hooks are told about the run, read from the shared Trainer at the hook."""

    epoch: int
    global_step: int
    metrics: dict[str, float] = field(default_factory=dict)
    should_stop: bool = False  # set by a hook: the run stops, as EarlyStopping stops it

    @property
    def step(self) -> int:
        return self.global_step

    @property
    def train_loss(self) -> float | None:
        return self.metrics.get("train_loss")

    @property
    def val_loss(self) -> float | None:
        return self.metrics.get("val_loss")


def _lightning_train_end(method: Any) -> bool:
    """Whether an ``on_train_end`` is Lightning's ``(trainer, module)`` rather than seed 003's
    ``(trainer, state, result)``."""
    try:
        inspect.signature(method).bind(None, None, None)
    except TypeError:
        return True
    except ValueError:  # no signature to read (a builtin): taken as Lightning's, the Trainer's own
        return True
    return False


def seed_hooks(obj: Any) -> frozenset[str]:
    """The seed 003 hooks `obj` defines (``on_train_end`` only in the seed's form)."""
    found = set()
    for name in SEED_HOOKS:
        method = getattr(obj, name, None)
        if not callable(method) or getattr(Callback, name, None) is getattr(type(obj), name, None):
            continue  # absent, or audiotrain's base Callback's own
        if name == "on_train_end" and _lightning_train_end(method):
            continue
        found.add(name)
    return frozenset(found)


def _refuse(obj: Any, translated: frozenset[str]) -> None:
    """Hooks of `obj` that would never be called: seed 003's without a place (`REFUSED`), and Lightning's
    that the Trainer refuses (which it sees only on the adapter, not on `obj`)."""
    name_of = type(obj).__name__
    for name, instead in REFUSED.items():
        if callable(getattr(type(obj), name, None)):
            raise TypeError(
                f"{name_of}.{name} (a seed 003 hook) would never be called: the shared Trainer has no such "
                f"point. Use {instead} instead (or remove it)"
            )
    for name, (why, instead) in hooks.UNSUPPORTED.items():
        if name not in translated and callable(getattr(type(obj), name, None)):
            raise TypeError(
                f"{name_of}.{name} would never be called: {why}. Use {instead} instead (or remove it)"
            )


def _check_arguments(obj: Any, found: frozenset[str]) -> None:
    """Refuse a seed hook of `obj` that cannot take the arguments it is called with (``on_batch_end(self,
    trainer, state)``): now, naming them, rather than with a bare TypeError at the first batch of a fit."""
    for name in sorted(found):
        method = getattr(obj, name)
        arguments = HOOK_ARGUMENTS[name]
        try:
            signature = inspect.signature(method)
        except (TypeError, ValueError):  # no signature to read (a builtin): left to the call
            continue
        try:
            signature.bind(*arguments)
        except TypeError:
            raise TypeError(
                f"{type(obj).__name__}.{name}{signature} cannot take the arguments it is called with: "
                f"{name}(self, {', '.join(arguments)}) (a seed 003 hook; see audiotrain.training_hooks)"
            ) from None


def wrap_training_hooks(callbacks: list[Any], owner: Any) -> list[Any]:
    """`callbacks` with each one that defines a seed 003 hook wrapped in a `TrainingHookAdapter` whose hooks
    get `owner` (the `ConfiguredTrainer`) as ``trainer``; the others as they are. A hook that cannot take
    its arguments (`HOOK_ARGUMENTS`) is refused."""
    out = []
    for cb in callbacks:
        found = seed_hooks(cb)
        _refuse(cb, found)
        _check_arguments(cb, found)
        out.append(_adapter(cb, owner, found) if found else cb)
    return out


class TrainingHookAdapter(Callback):
    """An audiotrain Callback that calls a seed 003 callback's hooks (see the module docstring) and the
    Lightning hooks it also defines."""

    def __init__(self, callback: Any, owner: Any, found: frozenset[str] | None = None):
        self.callback = callback
        self.owner = owner
        self.found = seed_hooks(callback) if found is None else found
        self._began = False  # the seed's on_train_begin called in this `train` (see `train_finished`)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.callback!r})"

    # ---- the seed's hooks, from the Trainer's ---------------------------------------------------------
    def _seed(self, name: str, trainer: Any, *args: Any) -> None:
        if name not in self.found:
            return
        state = TrainingState(trainer.current_epoch, trainer.global_step, dict(trainer.callback_metrics))
        getattr(self.callback, name)(self.owner, state, *args)
        if state.should_stop:
            trainer.should_stop = True

    def _lightning(self, name: str, *args: Any) -> None:
        if name == "on_train_end" and "on_train_end" in self.found:
            return  # the seed's, called by ConfiguredTrainer.train with its result
        method = getattr(self.callback, name, None)
        if callable(method):
            method(*args)

    def on_fit_start(self, trainer, module) -> None:
        self._lightning("on_fit_start", trainer, module)
        self._began = False  # (a `train` that raised after on_train_start left it set)

    def on_train_start(self, trainer, module) -> None:
        self._lightning("on_train_start", trainer, module)
        self._seed("on_train_begin", trainer)
        self._began = True

    def on_train_epoch_start(self, trainer, module) -> None:
        self._lightning("on_train_epoch_start", trainer, module)
        self._seed("on_epoch_begin", trainer)

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self._lightning("on_train_batch_start", trainer, module, batch, batch_idx)
        self._seed("on_batch_begin", trainer, batch)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self._lightning("on_train_batch_end", trainer, module, outputs, batch, batch_idx)
        if outputs is not None:  # (None: a batch the loader yielded as None, which had no on_batch_begin)
            # (a LazyScalar: no sync until it is read; None for a manual step that returned no loss)
            self._seed("on_batch_end", trainer, outputs.get("loss"))

    def on_validation_start(self, trainer, module) -> None:
        self._lightning("on_validation_start", trainer, module)
        if not trainer.sanity_checking:
            self._seed("on_evaluate_begin", trainer)

    def on_validation_end(self, trainer, module) -> None:
        self._lightning("on_validation_end", trainer, module)
        if not trainer.sanity_checking:
            self._seed("on_evaluate_end", trainer, _means(trainer, "val_"))

    def on_test_start(self, trainer, module) -> None:
        self._lightning("on_test_start", trainer, module)
        self._seed("on_evaluate_begin", trainer)

    def on_test_end(self, trainer, module) -> None:
        self._lightning("on_test_end", trainer, module)
        self._seed("on_evaluate_end", trainer, _means(trainer, "test_"))

    def on_train_epoch_end(self, trainer, module) -> None:
        self._lightning("on_train_epoch_end", trainer, module)
        self._seed("on_epoch_end", trainer)

    def train_finished(self, trainer: Any, result: Any) -> None:
        """Seed 003's ``on_train_end(trainer, state, result)``, called by `ConfiguredTrainer.train`."""
        if not self._began:
            # A train with nothing to train (a finished run resumed) has no on_train_start, as Lightning's
            # fit; the seed's hooks still come in a pair, as the Hugging Face-style loop they come from calls
            # them, so that an on_train_end reading what on_train_begin set up finds it.
            self._seed("on_train_begin", trainer)
        self._began = False
        self._seed("on_train_end", trainer, result)


class StatefulTrainingHookAdapter(TrainingHookAdapter):
    """The adapter of a callback with a state of its own: saved and restored with checkpoints under the
    wrapped callback's ``state_key``. (A separate class: the Trainer takes a callback whose class overrides
    ``state_dict`` as stateful, and refuses two of those with one ``state_key``.)"""

    @property
    def state_key(self) -> str:
        return getattr(self.callback, "state_key", type(self.callback).__name__)

    def state_dict(self) -> dict[str, Any]:
        return self.callback.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.callback.load_state_dict(state)


def _adapter(callback: Any, owner: Any, found: frozenset[str]) -> TrainingHookAdapter:
    own = getattr(type(callback), "state_dict", None)
    stateful = callable(own) and own is not Callback.state_dict
    return (StatefulTrainingHookAdapter if stateful else TrainingHookAdapter)(callback, owner, found)


def _means(trainer: Any, prefix: str) -> dict[str, float]:
    return {k: v for k, v in trainer.callback_metrics.items() if k.startswith(prefix)}


def _forward(name: str):
    def hook(self: TrainingHookAdapter, *args: Any) -> None:
        self._lightning(name, *args)

    hook.__name__ = name
    return hook


# Every other hook of the base Callback goes to the wrapped object's own, where it has one (a seed callback
# that subclasses audiotrain's Callback may define Lightning hooks too).
for _name, _value in vars(Callback).items():
    if callable(_value) and (_name.startswith("on_") or _name in ("setup", "teardown")):
        if _name not in vars(TrainingHookAdapter):
            setattr(TrainingHookAdapter, _name, _forward(_name))

__all__ = ["HOOK_ARGUMENTS", "SEED_HOOKS", "TrainingHookAdapter", "TrainingState", "wrap_training_hooks"]
