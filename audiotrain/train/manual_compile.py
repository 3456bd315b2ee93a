"""`manual_backward` compiled: one `mx.compile`d value-and-grad per loss function, reused across batches.

A manual step's loss function is a new closure every batch (`lambda: self.d_loss(batch)`), so compiling it
as it comes would trace every batch. What stays the same is its code: the compiled function is kept per
key = (the code, the parameters it differentiates, the non-array values it closes over and is given, the
submodules' `training` flags). The arrays it closes over or is given (the batch, lists / tuples / dicts of
arrays) are the compiled function's inputs: the closure is rebuilt around tracers at each call, so a
captured batch is never baked into the graph as a constant. The module's state (every weight, BatchNorm's
statistics) and MLX's random state are its state (inputs and outputs), as the automatic step's are.

A loss function that cannot be traced (`.item()`, `float()`, numpy, a branch on an array's value) or that
is traced again and again (a Python number it closes over changes every batch) runs eagerly for the rest of
the fit, said once (`Trainer(compile=False)` runs every one eagerly, without the warning). So does every
loss function of a module holding its own `mx.compile`d functions (`CompiledBackward._holds_compiled`).

What a trace bakes into its graph, as the automatic step's: the Python values the loss function reads from
the module or globals (an attribute read, a global array). Those read from the module's submodules, its
config objects and the plain objects it points to (`self.bank.queue`, an array no module holds) are
recorded (`traced_reads`): one changed since traces again. Each `opt.step()`'s update is compiled too
(`ManualStep._apply_gradients`).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import warnings
from collections.abc import Callable
from typing import Any

from audiotrain._caller import user_stacklevel
from audiotrain.train.no_gradient import compiled_functions
from audiotrain.train.step import _numbers_held, _warn_of_numbers_changed_while_traced, mode_signature
from audiotrain.train.traced_reads import changed_reads, recording_plain_reads

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_unflatten

# Calls in a row one loss function's code may be traced at before it runs eagerly: a value it closes over
# that changes every batch (a Python batch index) would trace at every call, slower than eager. A value
# that changes once an epoch (a schedule on `self.current_epoch`) traces at an epoch's first call and is
# reused after it: it stays compiled, the graphs of its last values kept.
MAX_TRACES_PER_CODE = 8

_ARRAY = "array"  # (the placeholder of an array in a split structure)


class _NotCompilable(Exception):
    """A value `_split` cannot key (a closure cell not yet assigned)."""


class _WritesTheModule(Exception):
    """A trace that changed the structure of the module's state (the compiled function's inputs and
    outputs): an array attribute added, an item appended to a list or dict attribute (every later call
    would be traced again, its inputs grown)."""


def _state_structure(modules: list) -> dict[tuple[int, str], tuple[Any, Any, Any]]:
    """Each submodule's attributes that MLX keeps in its state (arrays, lists, dicts, private ones too),
    with the keys of a list's or dict's items: an array reassigned is an output of the compiled function,
    what a trace adds to that structure changes its inputs."""
    held = {}
    for sub in modules:
        for name, value in sub.items():
            if isinstance(value, nn.Module):
                continue
            keys = (
                len(value) if isinstance(value, list) else tuple(value) if isinstance(value, dict) else None
            )
            held[(id(sub), name)] = (sub, value, keys)
    return held


def _put_back_added(held: dict, modules: list) -> list[str]:
    """What a trace added to the module's state since `_state_structure(modules)`, each taken out again."""
    added = []
    for key, (sub, value, keys) in _state_structure(modules).items():
        before = held.get(key)
        named = f"self.{key[1]}" if sub is modules[0] else f"{type(sub).__name__}.{key[1]}"
        if before is None:
            added.append(named)
            sub.pop(key[1])
        elif before[1] is value and before[2] != keys:
            added.append(named)
            if isinstance(value, list):
                del value[before[2] :]
            else:
                for k in set(value) - set(before[2]):
                    del value[k]
    return added


def _split(value: Any, arrays: list[mx.array], keep: list[Any]) -> Any:
    """`value`'s structure with its arrays taken out into `arrays`: lists, tuples, dicts, namedtuples and
    dataclasses of arrays are walked; a Python number, string or None is keyed by its value, anything else
    (a module, a function) by its identity, kept alive in `keep` so that its id is not reused by another
    object while cached."""
    if isinstance(value, mx.array):
        arrays.append(value)
        return _ARRAY
    if isinstance(value, (list, tuple)) and type(value) in (list, tuple):
        return (type(value).__name__, tuple(_split(v, arrays, keep) for v in value))
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # (a namedtuple batch)
        keep.append(type(value))
        return ("namedtuple", id(type(value)), tuple(_split(v, arrays, keep) for v in value))
    if type(value) is dict:
        return ("dict", tuple((k, _split(v, arrays, keep)) for k, v in value.items()))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # (a dataclass batch, by its fields)
        keep.append(type(value))
        # (every instance attribute: one __post_init__ sets beside the fields too; a slotted one's fields)
        names = (
            list(vars(value)) if hasattr(value, "__dict__") else [f.name for f in dataclasses.fields(value)]
        )
        fields = tuple((name, _split(getattr(value, name), arrays, keep)) for name in names)
        return ("dataclass", id(type(value)), fields)
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return ("value", type(value).__name__, value)
    keep.append(value)
    return ("object", id(value))


def _join(structure: Any, arrays: Any, objects: dict[int, Any]) -> Any:
    """`_split`'s inverse: the value rebuilt with the next arrays of the iterator `arrays`."""
    if structure == _ARRAY:
        return next(arrays)
    kind = structure[0]
    if kind in ("list", "tuple"):
        items = [_join(s, arrays, objects) for s in structure[1]]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {k: _join(s, arrays, objects) for k, s in structure[1]}
    if kind == "namedtuple":
        return objects[structure[1]](*(_join(s, arrays, objects) for s in structure[2]))
    if kind == "dataclass":  # (built without __init__: a field init=False, a __post_init__ are not rerun)
        cls = objects[structure[1]]
        out = cls.__new__(cls)
        for name, s in structure[2]:
            object.__setattr__(out, name, _join(s, arrays, objects))
        return out
    if kind == "value":
        return structure[2]
    return objects[structure[1]]


def _parts(loss_fn: Any) -> tuple[types.FunctionType, tuple, dict] | None:
    """The plain function under `loss_fn` with the arguments bound to it (a bound method's self, a
    functools.partial's), or None for another kind of callable (it runs eagerly)."""
    bound: tuple = ()
    keywords: dict = {}
    while True:
        if isinstance(loss_fn, types.MethodType):
            bound = (loss_fn.__self__, *bound)
            loss_fn = loss_fn.__func__
        elif isinstance(loss_fn, functools.partial):
            bound = (*loss_fn.args, *bound)
            keywords = {**loss_fn.keywords, **keywords}
            loss_fn = loss_fn.func
        elif isinstance(loss_fn, types.FunctionType):
            return loss_fn, bound, keywords
        else:
            return None


def _name(fn: types.FunctionType) -> str:
    code = fn.__code__
    return f"{fn.__qualname__} ({code.co_filename.rsplit('/', 1)[-1]}:{code.co_firstlineno})"


def _why_traced_again(changed: list) -> str:
    arrays = [read.label for read, _ in changed if isinstance(read.value, mx.array)]
    if arrays:  # (MoCo's queue in a plain object, reassigned every batch)
        name = arrays[0].rpartition(".")[2]
        return (
            f"it was traced anew at {MAX_TRACES_PER_CODE} calls in a row: it reads self.{arrays[0]}, an array "
            "held by an object that is no module, so no input of the compiled function, and it is reassigned "
            f"every batch. Put the array on the module (self.{name} = ..., frozen with "
            f"self.freeze(keys=['{name}'], recurse=False)) or give it to the loss function"
        )
    return (
        f"it was traced anew at {MAX_TRACES_PER_CODE} calls in a row (a Python number it closes "
        "over, is given or reads from the module, or a new object it is given, changes every "
        "batch: give arrays, or numbers as mx.array; a number computed in training_step from "
        "self.global_step or batch_idx, `w = 0.0 if self.global_step < start else 1.0`, and closed "
        "over is traced again only when it changes)"
    )


class _Entry:
    """One compiled value-and-grad, and what its trace recorded that the compiled call does not give back:
    the structure of what the loss function returned beside its loss, what it logged and how."""

    def __init__(self, paths: tuple[str, ...], objects: dict[int, Any]):
        self.paths, self.objects = paths, objects
        self.compiled: Callable | None = None
        self.traced = False
        self.layout: tuple = ((), (), None)  # (logged names, their weights' names, returned structure)
        self.returned_objects: dict[int, Any] = {}
        self.options: dict = {}
        self.unindexed: set[str] = set()
        self.reads: dict = {}  # (the plain values the trace read from the module: `traced_reads`)


class CompiledBackward:
    """The compiled `manual_backward`s of one module (kept across the ManualSteps of one fit).

    `loss_of(fn, args, kwargs, logs)` makes the function of the parameters to differentiate, as the eager
    step does. `__call__(fn, args, kwargs, paths, logs)` returns `(loss, (values, weights, returned)),
    grads` as `mx.value_and_grad` of it over the parameters at `paths` does, or None where `fn` runs
    eagerly (`logs`: the StepLogs that the loss function's `self.log` calls record into, or None)."""

    def __init__(self, module: Any, loss_of: Callable):
        self.module, self.loss_of = module, loss_of
        self._state = [module.state, mx.random.state]
        self._entries: dict[Any, dict[tuple, _Entry]] = {}  # code -> key -> entry
        self._eager: set[Any] = set()  # codes that run eagerly for the rest of the fit
        self._traces: dict[Any, int] = {}  # code -> how many calls in a row it was traced at
        self._logs: Any = None  # (the logs of the call now running: a trace records into them)
        self._numbers_warned: set[str] = set()
        self._untraced: tuple | None = None  # (the function whose trace failed at this call, and why)
        # A module holding a function mx.compile made without its state as input (`self._fwd =
        # mx.compile(...)`) runs eagerly: traced inside this compile, that function would read the live
        # weights and train them, where eagerly it keeps them as constants (NoGradientWatch says so): the
        # compiled and the eager fit would differ.
        self._holds_compiled = bool(compiled_functions(module))

    def __call__(self, loss_fn: Any, args: tuple, kwargs: dict, paths: tuple[str, ...], logs: Any) -> Any:
        self._untraced = None  # (a failed trace whose eager call raised is not told at a later call)
        parts = _parts(loss_fn) if not self._holds_compiled else None
        if parts is None:
            return None
        fn, bound, keywords = parts
        code = fn.__code__
        if code in self._eager:
            return None
        arrays: list[mx.array] = []
        keep: list[Any] = []
        try:
            cells = tuple(cell.cell_contents for cell in fn.__closure__ or ())
        except ValueError:  # (a cell not yet assigned: a closure over a name defined after it)
            return None
        # (defaults too: `lambda b=batch: ...` binds the batch there)
        defaults = (fn.__defaults__, fn.__kwdefaults__)
        structure = _split((cells, defaults, (*bound, *args), {**keywords, **kwargs}), arrays, keep)
        # (the submodules now, not the fit's first ones: one replaced mid-fit, `self.disc = NewDisc()` in a
        # hook, is keyed by its own `training` flags; a walk of the tree, small beside a step)
        modules = self.module.modules()
        key = (structure, paths, mode_signature(modules))
        entries = self._entries.setdefault(code, {})
        entry = entries.get(key)
        changed = changed_reads(entry.reads) if entry is not None and entry.traced else []
        if changed:
            # (a value the trace read from the module, a constant of its graph, changed since: eagerly the
            # loss function reads the new one, so it is traced again)
            del entries[key]
            entry = None
        if entry is None:
            self._traces[code] = self._traces.get(code, 0) + 1
            if self._traces[code] > MAX_TRACES_PER_CODE:
                self._run_eagerly(fn, code, _why_traced_again(changed))
                return None
            if len(entries) >= MAX_TRACES_PER_CODE:  # (the graph used longest ago: an old epoch's value)
                del entries[next(iter(entries))]
            entry = entries[key] = _Entry(paths, {id(o): o for o in keep})
            entry.compiled = self._compile(entry, fn, structure)
        elif entry.traced:
            self._traces[code] = 0
            entries[key] = entries.pop(key)  # (the most recently used last)
        self._logs = logs
        try:
            if entry.traced:
                return self._cached_call(entry, arrays, logs)
            return self._first_call(entry, entries, key, fn, arrays)
        finally:
            self._logs = None

    def _compile(self, entry: _Entry, fn: types.FunctionType, structure: Any) -> Callable:
        module = self.module
        # (what the key holds of `fn`, not `fn` itself: its closure and defaults hold its first call's
        # arrays, a batch, which the compiled function kept alive for the whole fit)
        code, globals_, name, qualname = fn.__code__, fn.__globals__, fn.__name__, fn.__qualname__
        del fn

        def traced(*arrays: mx.array) -> list[mx.array]:
            cells, (defaults, kwdefaults), args, kwargs = _join(structure, iter(arrays), entry.objects)
            # (the loss function's own closure, each captured array replaced by this call's input)
            rebuilt = types.FunctionType(
                code,
                globals_,
                name,
                defaults,
                tuple(types.CellType(v) for v in cells) or None,
            )
            rebuilt.__kwdefaults__ = kwdefaults
            master = module.trainable_parameters()
            params = dict(tree_flatten(master))
            subset = {path: params[path] for path in entry.paths}
            logs = self._logs
            numbers = _numbers_held(module)
            modules = module.modules()  # (at this trace: MLX traces again where the inputs' shapes change)
            held = _state_structure(modules)
            try:
                with recording_plain_reads(module, entry.reads):
                    (loss, (values, weights, returned)), grads = mx.value_and_grad(
                        self.loss_of(rebuilt, args, kwargs, logs)
                    )(subset)
            finally:
                module.update(master)  # (this trace's inputs, not value_and_grad's tracers: its outputs)
                added = _put_back_added(held, modules)
            if added:
                raise _WritesTheModule(
                    f"it adds to {', '.join(added[:3])} (a new array attribute, or an item appended to a "
                    "list or dict): the module's state, the compiled function's inputs, would change at "
                    "every call, each one traced again"
                )
            # (a value the trace itself wrote, `self.seen += 1`, is no read to trace again for; it counts
            # traces, not batches: said, as the automatic step's)
            written = {id(read) for read, _ in changed_reads(entry.reads)}
            entry.reads = {k: read for k, read in entry.reads.items() if id(read) not in written}
            where = f"{type(module).__name__}.training_step's manual_backward({qualname})"
            _warn_of_numbers_changed_while_traced(module, numbers, where, self._numbers_warned)
            returned_arrays: list[mx.array] = []
            returned_objects: list[Any] = []
            shape = _split(returned, returned_arrays, returned_objects)
            entry.layout = (tuple(values), tuple(weights), shape)
            entry.returned_objects = {id(o): o for o in returned_objects}
            if logs is not None:
                entry.options = {name: logs.options[name] for name in values if name in logs.options}
                entry.unindexed = set(logs.unindexed)
            return [
                loss,
                *(grads[p] for p in entry.paths),
                *values.values(),
                *weights.values(),
                *returned_arrays,
            ]

        return mx.compile(traced, inputs=self._state, outputs=self._state)

    def _first_call(
        self, entry: _Entry, entries: dict, key: tuple, fn: types.FunctionType, arrays: list
    ) -> Any:
        """The trace: where it fails (the loss function reads an array's value), the module's weights and
        MLX's random state are put back as they were, and the function runs eagerly from then on."""
        module = self.module
        weights = tree_flatten(module.parameters())
        hi, lo = (int(v) for v in mx.random.state[0].tolist())  # (a trace's host wait: once per key)
        logs = self._logs
        options = dict(logs.options) if logs is not None else {}
        try:
            out = entry.compiled(*arrays)
        except Exception as error:  # noqa: BLE001  (said once; the eager call meets a real mistake again)
            module.update(tree_unflatten(weights))
            mx.random.seed((hi << 32) | lo)  # (MLX's key exactly as it was: RandomState's restore)
            if logs is not None:  # (what the trace logged, taken back: the eager call logs it again)
                logs.options.clear()
                logs.options.update(options)
                logs.values.clear()
                logs.weights.clear()
                logs.unindexed.clear()
            del entries[key]
            # (said once the eager call has run: a mistake it meets too, a loss that is no scalar, is
            # raised by it as without compile, with no word of tracing)
            self._untraced = (fn, f"it cannot be traced ({type(error).__name__}: {error})")
            return None
        entry.traced = True
        return self._unpack(entry, out)

    def _cached_call(self, entry: _Entry, arrays: list, logs: Any) -> Any:
        out = entry.compiled(*arrays)
        if logs is not None:  # (what the trace's self.log calls said of each name, for this batch's logs)
            logs.options.update(entry.options)
            logs.unindexed |= entry.unindexed
        return self._unpack(entry, out)

    @staticmethod
    def _unpack(entry: _Entry, out: list[mx.array]) -> Any:
        value_names, weight_names, shape = entry.layout
        it = iter(out)
        loss = next(it)
        grads = {path: next(it) for path in entry.paths}
        values = {name: next(it) for name in value_names}
        weights = {name: next(it) for name in weight_names}
        returned = _join(shape, it, entry.returned_objects)
        return (loss, (values, weights, returned)), grads

    def ran_eagerly(self) -> None:
        """After the eager call `__call__` left a loss function to: where its trace failed, it runs eagerly
        from now on, said once."""
        if self._untraced is not None:
            fn, why = self._untraced
            self._untraced = None
            self._run_eagerly(fn, fn.__code__, why)

    def _run_eagerly(self, fn: types.FunctionType, code: Any, why: str) -> None:
        self._eager.add(code)
        self._entries.pop(code, None)
        warnings.warn(
            f"manual_backward({_name(fn)}) runs eagerly for the rest of the fit, not compiled: {why}. "
            "Keep .item(), float(), numpy and branches on an array's value out of the loss function to "
            "compile it; Trainer(compile=False) runs every manual_backward eagerly without this warning",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
