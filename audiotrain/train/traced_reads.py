"""The plain Python values (numbers, strings, bools) a compiled step's user code read from the model while
it was traced: the graph holds them as constants, so a later change (a curriculum's `self.noise = ...` in
`on_train_epoch_start`, `self.hparams.aux_weight`, a submodule's `self.dropout_level`, a temperature read
in `validation_step`) does not reach the step, where Lightning's and an uncompiled step read it afresh.

Reading the step's source for `self.<name>` missed every value read elsewhere: in a helper method the
step calls, in a submodule's `__call__`, in a dict attribute (`self.hparams`, `self.weights["aux"]`).
Here the reads themselves are recorded, while the step is traced: each class of the model's modules gets,
for the trace alone, a `__getattribute__` that notes the plain values of the model's modules that code
outside audiotrain and MLX reads (the Trainer's own bookkeeping is not the user's concern).

An array held by a plain object the module points to (`self.bank = MemoryBank()`, its `.queue` reassigned
by a hook, MoCo's) is no state of the module, so no input of the compiled step: its trace holds the array
as a constant too. The arrays of such an object the step reads are recorded, compared by identity."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import sys
import threading
import types
from collections.abc import Iterator
from typing import Any

import mlx.core as mx
import mlx.nn as nn

_PLAIN = (bool, int, float, str)
# Code in these folders reading the module is the Trainer's or MLX's, not the step's author's.
_NOT_USERS = tuple(
    os.path.dirname(os.path.abspath(module.__file__)) + os.sep
    for module in (sys.modules["audiotrain"], sys.modules["mlx.nn"])
)
# .reads: the dict a trace in this thread fills (absent when none records); .ids: the model's modules
_recording = threading.local()
_patching = threading.Lock()
_patched: dict[type, list] = {}  # class -> [traces patching it now, its own __getattribute__ or None]


class _Field(str):
    """The key of a read that names a field of the object an attribute holds (`self.cfg.beta`)."""


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
            if isinstance(self.key, _Field):
                return getattr(holder, self.key)
            return holder if self.key is None else holder[self.key]
        except (AttributeError, KeyError, IndexError, TypeError):
            return self.value


@functools.cache
def is_users_file(filename: str) -> bool:
    return not os.path.abspath(filename).startswith(_NOT_USERS)


def _users_code(depth: int = 2) -> bool:
    # (Cached by file name: every attribute read of a traced module asks, and abspath was a third of the
    # recording's cost in the trace of a model with 400 submodules.)
    return is_users_file(sys._getframe(depth).f_code.co_filename)


def _reads_of(module: Any, name: str) -> dict | None:
    """The dict to note `module`'s attribute `name` in: None where no trace in this thread records, for a
    dunder, a module outside the traced model, or a read by audiotrain's or MLX's code."""
    reads = getattr(_recording, "reads", None)
    if reads is None or name.startswith("__") or id(module) not in _recording.ids:
        return None
    return reads if _users_code(depth=3) else None


def _recording_getattribute(cls: type, own: Any) -> Any:
    """A `__getattribute__` for `cls` that notes the plain values its instances in the model hold. Set on the
    class itself (not a subclass made for the trace: `type(m) is nn.Linear` in the step, a metaclass's or an
    `__init_subclass__`'s registry and `__subclasses__()` would see that subclass)."""

    def __getattribute__(self, name: str) -> Any:
        try:
            value = own(self, name) if own is not None else super(cls, self).__getattribute__(name)
        except AttributeError:  # (MLX keeps dicts and lists as items, read by __getattr__ next)
            reads = _reads_of(self, name)
            if reads is not None:
                held = dict.get(self, name)
                if isinstance(held, dict | list) and not isinstance(held, nn.Module):
                    _note_items(reads, self, name, held)
            raise
        reads = _reads_of(self, name)
        if reads is None:
            return value
        if isinstance(value, _PLAIN) and (  # (an instance's value, or a class-level default it may replace)
            name in object.__getattribute__(self, "__dict__")
            or isinstance(getattr(cls, name, None), _PLAIN)
            or counts_property(cls, name)
        ):
            reads.setdefault((id(self), name, None), TracedRead(self, name, None, value, name))
        elif isinstance(value, dict | list) and not isinstance(value, nn.Module):  # (a property's: hparams)
            _note_items(reads, self, name, value)
        elif _holds_fields(value):  # (a config object: `self.cfg.beta`)
            _note_fields(reads, self, name, value)
        elif _users_object(value):  # (an object of the user's holding arrays: `self.bank.queue`)
            _note_arrays(reads, self, name, vars(value))
        return value

    return __getattribute__


@functools.cache
def counts_property(cls: type, name: str) -> bool:
    """Whether `name` is a property audiotrain's TrainModule defines (`current_epoch`, `global_step`): the
    Trainer's counts, which a validation step reads as Lightning's does (`if self.current_epoch % 5 == 0`),
    and which its trace held at the first validation's value for the whole fit. (A property of the user's
    own is followed inside: the plain values its code reads are noted there.)"""
    attr = getattr(cls, name, None)
    getter = getattr(attr, "fget", None) if isinstance(attr, property) else None
    code = getattr(getter, "__code__", None)
    return (
        code is not None
        and os.path.abspath(code.co_filename).startswith(_NOT_USERS[0])
        and name not in vars(nn.Module)
    )


def _patch(classes: list[type]) -> list[type]:
    """Give each class its recording `__getattribute__` (one already patched by a trace in another thread
    keeps it: counted, so the last trace to end restores it); the classes patched, to `_unpatch`."""
    done = []
    with _patching:
        for cls in classes:
            if cls in _patched:
                _patched[cls][0] += 1
                done.append(cls)
                continue
            own = vars(cls).get("__getattribute__")
            try:
                cls.__getattribute__ = _recording_getattribute(cls, own)
            except (TypeError, AttributeError):  # (a class that takes no attributes: its reads go unnoted)
                continue
            _patched[cls] = [1, own]
            done.append(cls)
    return done


def _unpatch(classes: list[type]) -> None:
    with _patching:
        for cls in classes:
            entry = _patched[cls]
            entry[0] -= 1
            if entry[0]:
                continue
            del _patched[cls]
            if entry[1] is None:
                del cls.__getattribute__
            else:
                cls.__getattribute__ = entry[1]


def _note_items(reads: dict, owner: Any, name: str, held: dict | list) -> None:
    """The plain items of a dict or list attribute the step read (`self.hparams`, `self.weights`)."""
    items = held.items() if isinstance(held, dict) else enumerate(held)
    for key, value in items:
        if isinstance(value, _PLAIN):
            reads.setdefault((id(owner), name, key), TracedRead(owner, name, key, value, f"{name}[{key!r}]"))


def _holds_fields(value: Any) -> bool:
    """A dataclass instance or a SimpleNamespace: a config object whose plain fields a step reads."""
    return (dataclasses.is_dataclass(value) and not isinstance(value, type)) or isinstance(
        value, types.SimpleNamespace
    )


def _note_fields(reads: dict, owner: Any, name: str, held: Any) -> None:
    """The plain fields of a dataclass or SimpleNamespace attribute the step read (`self.cfg`): the trace
    may read any of them (`self.cfg.beta`); one changed since traces again."""
    fields = (
        vars(held)
        if hasattr(held, "__dict__")
        else {f.name: getattr(held, f.name) for f in dataclasses.fields(held)}
    )
    for key, value in fields.items():
        if isinstance(value, _PLAIN):
            field = _Field(key)
            reads.setdefault((id(owner), name, field), TracedRead(owner, name, field, value, f"{name}.{key}"))
    _note_arrays(reads, owner, name, fields)


# (the top-level packages whose objects are no user's array holders: a method, the Trainer, a logger)
_NOT_HOLDERS = frozenset({"builtins", "audiotrain", "mlx", "numpy", "functools", "types", "collections"})


def _users_object(value: Any) -> bool:
    """An instance of a user's own class, not a module (`self.bank = MemoryBank()`): the arrays it holds
    are no state of the module, so a trace reading them holds them as constants."""
    cls = type(value)
    return (
        not isinstance(value, nn.Module | mx.array | type)
        and (cls.__module__ or "").partition(".")[0] not in _NOT_HOLDERS
        and isinstance(getattr(value, "__dict__", None), dict)
    )


def _note_arrays(reads: dict, owner: Any, name: str, fields: dict) -> None:
    """The arrays held by an object the step read that is not a module (`self.bank.queue`, a config's
    array): the traced graph holds each as a constant, where the step reads the array reassigned since
    (MoCo's queue, set in `on_train_batch_end`). Compared by identity: a new array is a change."""
    for key, value in fields.items():
        if isinstance(value, mx.array):
            field = _Field(key)
            reads.setdefault((id(owner), name, field), TracedRead(owner, name, field, value, f"{name}.{key}"))


def note_read(owner: Any, name: str, value: Any, label: str) -> None:
    """Note a plain value the step read from outside the model's modules (`self.trainer.current_epoch`) into
    the trace being recorded in this thread, if any."""
    reads = getattr(_recording, "reads", None)
    if reads is not None:
        reads.setdefault((id(owner), name, None), TracedRead(owner, name, None, value, label))


@contextlib.contextmanager
def recording_plain_reads(model: nn.Module, reads: dict) -> Iterator[None]:
    """Note into `reads` the plain values user code reads from `model` and its submodules meanwhile, each
    labelled with its path from `model` (``noisy.std``)."""
    if getattr(_recording, "reads", None) is not None:  # (a trace inside a trace: the outer one records)
        yield
        return
    paths: dict[int, str] = {}  # (by id: a check by == would be quadratic in the modules, 457 in CLAP)
    classes: dict[type, None] = {}
    for path, module in [("", model), *model.named_modules()]:
        paths.setdefault(id(module), path)
        classes[type(module)] = None
    patched = _patch(list(classes))
    found: dict = {}
    _recording.reads, _recording.ids = found, frozenset(paths)
    try:
        yield
    finally:
        del _recording.reads, _recording.ids
        _unpatch(patched)
        for key, read in found.items():
            path = paths.get(id(read.owner), "")
            read.label = f"{path}.{read.label}" if path else read.label
            reads.setdefault(key, read)


def changed_reads(reads: dict) -> list[tuple[TracedRead, Any]]:
    """The reads whose value differs now, each with its value now."""
    changed = []
    for read in reads.values():
        now = read.now()
        if isinstance(read.value, mx.array):  # (an array held outside the module: a new one is a change)
            if now is not read.value:
                changed.append((read, now))
        elif type(now) is not type(read.value) or (now != read.value and not _both_nan(now, read.value)):
            changed.append((read, now))
    return changed


def _both_nan(a: Any, b: Any) -> bool:
    """A float left NaN (an unset setting) is unchanged, though NaN != NaN."""
    return isinstance(a, float) and a != a and b != b
