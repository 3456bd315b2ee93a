"""The plain Python values (numbers, strings, bools) a compiled step's user code read from the model while
it was traced: the graph holds them as constants, so a later change (a curriculum's `self.noise = ...` in
`on_train_epoch_start`, `self.hparams.aux_weight`, a submodule's `self.dropout_level`, a temperature read
in `validation_step`) does not reach the step, where Lightning's and an uncompiled step read it afresh.

Reading the step's source for `self.<name>` missed every value read elsewhere: in a helper method the
step calls, in a submodule's `__call__`, in a dict attribute (`self.hparams`, `self.weights["aux"]`).
Here the reads themselves are recorded, while the step is traced: each module of the model gets, for the
trace alone, a subclass whose `__getattribute__` notes the instance's plain values that code outside
audiotrain and MLX reads (the Trainer's own bookkeeping is not the user's concern)."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

import mlx.nn as nn

_PLAIN = (bool, int, float, str)
# Code in these folders reading the module is the Trainer's or MLX's, not the step's author's.
_NOT_USERS = tuple(
    os.path.dirname(os.path.abspath(module.__file__)) + os.sep
    for module in (sys.modules["audiotrain"], sys.modules["mlx.nn"])
)
_recording = threading.local()  # .reads: the dict a trace in this thread fills, absent when none records
_recorders: dict[type, type] = {}


class TracedRead:
    """One plain value the trace read: `owner`'s attribute `name`, or the item `key` of its dict or list
    attribute `name`, with the value it had then; `label` names it as the user wrote it
    (``noisy.std``, ``weights['aux']``)."""

    def __init__(self, owner: Any, name: str, key: Any, value: Any, label: str):
        self.owner, self.name, self.key, self.value, self.label = owner, name, key, value, label

    def now(self) -> Any:
        """The value it holds now (`self.value` where it is gone: nothing to tell)."""
        try:
            holder = getattr(self.owner, self.name)
            return holder if self.key is None else holder[self.key]
        except (AttributeError, KeyError, IndexError, TypeError):
            return self.value


def _users_code(depth: int = 2) -> bool:
    filename = os.path.abspath(sys._getframe(depth).f_code.co_filename)
    return not filename.startswith(_NOT_USERS)


def _has_own_init_subclass(cls: type) -> bool:
    """Whether a class `cls` derives from (the user's, MLX's) defines `__init_subclass__`."""
    return any("__init_subclass__" in vars(base) for base in cls.__mro__ if base is not object)


def _recorder(cls: type) -> type:
    """`cls` with a `__getattribute__` that notes plain values its instance's attributes hold."""
    if cls in _recorders:
        return _recorders[cls]

    def __getattribute__(self, name: str) -> Any:
        try:
            value = super(recorder, self).__getattribute__(name)
        except AttributeError:  # (MLX keeps dicts and lists as items, read by __getattr__ next)
            reads = getattr(_recording, "reads", None)
            if reads is not None and not name.startswith("__") and _users_code():
                held = dict.get(self, name)
                if isinstance(held, dict | list) and not isinstance(held, nn.Module):
                    _note_items(reads, self, name, held)
            raise
        reads = getattr(_recording, "reads", None)
        if reads is None or name.startswith("__") or not _users_code():
            return value
        if isinstance(value, _PLAIN) and (  # (an instance's value, or a class-level default it may replace)
            name in object.__getattribute__(self, "__dict__") or isinstance(getattr(cls, name, None), _PLAIN)
        ):
            reads.setdefault((id(self), name, None), TracedRead(self, name, None, value, name))
        elif isinstance(value, dict | list) and not isinstance(value, nn.Module):  # (a property's: hparams)
            _note_items(reads, self, name, value)
        return value

    recorder = type(cls.__name__, (cls,), {"__getattribute__": __getattribute__})
    recorder.__qualname__, recorder.__module__ = cls.__qualname__, cls.__module__
    _recorders[cls] = recorder
    return recorder


def _note_items(reads: dict, owner: Any, name: str, held: dict | list) -> None:
    """The plain items of a dict or list attribute the step read (`self.hparams`, `self.weights`)."""
    items = held.items() if isinstance(held, dict) else enumerate(held)
    for key, value in items:
        if isinstance(value, _PLAIN):
            reads.setdefault((id(owner), name, key), TracedRead(owner, name, key, value, f"{name}[{key!r}]"))


@contextlib.contextmanager
def recording_plain_reads(model: nn.Module, reads: dict) -> Iterator[None]:
    """Note into `reads` the plain values user code reads from `model` and its submodules meanwhile, each
    labelled with its path from `model` (``noisy.std``)."""
    if getattr(_recording, "reads", None) is not None:  # (a trace inside a trace: the outer one records)
        yield
        return
    swapped, seen = [], set()
    for path, module in [("", model), *model.named_modules()]:
        if id(module) in seen:
            continue
        seen.add(id(module))
        cls = type(module)
        if _has_own_init_subclass(cls):  # (making the recorder would run it: a registry of subclasses by
            continue  # name would get the recorder in the user's class's place; its reads go unnoted)
        try:
            module.__class__ = _recorder(cls)
        except Exception:  # (a class whose layout or metaclass forbids it: its reads go unnoted)
            continue
        swapped.append((module, cls, path))
    _recording.reads = found = {}
    try:
        yield
    finally:
        del _recording.reads
        for module, cls, _ in swapped:
            module.__class__ = cls
        paths = {id(module): path for module, _, path in swapped}
        for key, read in found.items():
            path = paths.get(id(read.owner), "")
            read.label = f"{path}.{read.label}" if path else read.label
            reads.setdefault(key, read)


def changed_reads(reads: dict) -> list[tuple[TracedRead, Any]]:
    """The reads whose value differs now, each with its value now."""
    changed = []
    for read in reads.values():
        now = read.now()
        if type(now) is not type(read.value) or now != read.value:
            changed.append((read, now))
    return changed
