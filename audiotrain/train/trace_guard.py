"""Undoing what a failed trace leaves behind in a compiled step's state, and saying when a step keeps
being traced for new input shapes.

`mx.compile` (and `mx.value_and_grad`) swap tracer placeholders into the model, optimizer and random
state while they trace; when user code raises mid-trace (or a Ctrl-C lands there) those stay, and every
later use of the arrays fails ("Attempting to eval an array without a primitive"), the trained weights
included. `StateGuard` snapshots the containers before a call that will trace and puts the real arrays back
on any exception, KeyboardInterrupt included.
"""

from __future__ import annotations

import linecache
import os
import site
import sysconfig
import traceback
import warnings
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from typing import Any

from audiotrain._caller import user_stacklevel
from audiotrain.train.parameter_tree import layers_created_while_training
from audiotrain.train.traced_reads import recording_plain_reads

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

TRANSFORM_EVAL = "during function transformations"
# What MLX's compiler raises (a C++ std::unordered_map::at) for some graphs that use one expression twice:
# a batch-only one in the loss (under value_and_grad) and as an output of the compiled function, or two
# outputs that are the same expression (MLX 0.32.4: `mx.compile(mx.value_and_grad(f))` whose f returns
# ``mx.exp(x)`` twice beside its loss).
_COMPILE_MAP_BUG = "_Map_base::at"

# How many different inputs (batch shapes, dtypes, non-array values) one compiled step may be traced for
# before `RetraceWarning` (once a step). The normal cases stay well below: a short last batch, the
# accumulation variants and a short accumulation window give at most 5. (torch.compile's recompile limit
# is 8 too.)
RETRACE_WARNING_LIMIT = 8


class RetraceWarning(UserWarning):
    """A compiled step was traced for more than `RETRACE_WARNING_LIMIT` different input shapes."""


def _structure_copy(tree: Any) -> Any:
    """The dicts and lists of `tree` copied, its leaves (arrays) shared."""
    if tree is mx.random.state:
        return list(tree)  # [key]
    if isinstance(tree, dict):
        return {k: _structure_copy(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_structure_copy(v) for v in tree]
    return tree


def _restore_in_place(container: Any, saved: Any, drop_added: bool = False) -> None:
    """Put `saved`'s leaves back into `container`'s own dicts and lists (compiled functions hold
    references to those containers, so they must be refilled, not replaced). `drop_added`: also remove
    what was added since (a failed trace's `self.outputs.append(loss)`: a placeholder, which every later
    use of the module would fail to evaluate)."""
    if container is mx.random.state:  # not assignable: reseeding with the saved key restores it
        hi, lo = (int(v) for v in saved[0].tolist())
        mx.random.seed((hi << 32) | lo)
        return
    if drop_added and isinstance(container, list) and isinstance(saved, list):
        del container[len(saved) :]
    elif drop_added and isinstance(container, dict) and isinstance(saved, dict):
        for key in [key for key in container if key not in saved]:
            del container[key]
    for key, value in saved.items() if isinstance(saved, dict) else enumerate(saved):
        current = container.get(key) if isinstance(container, dict) else container[key]
        same_kind = (isinstance(value, dict) and isinstance(current, dict)) or (
            isinstance(value, list) and isinstance(current, list)
        )
        if same_kind:
            _restore_in_place(current, value, drop_added)
        else:
            container[key] = value


class TracedReadError(RuntimeError):
    """User code inside the compiled step read an array's value; the message names the function."""


def _read_while_traced(where: str, err: BaseException, compiled: bool = False) -> str:
    # (Uncompiled, the step runs as plain Python where it can: the way out the user has if a rewrite is
    # not worth it, which the message left unsaid, though the same step trained with compile=False.)
    instead = " (or train with Trainer(compile=False), where the step's Python runs at every step)"
    return (
        f"{where} read an array's value while being traced (.item(), float(), numpy conversion, or Python "
        f"if/while on an array){_users_line(err)}. It runs under mx.compile (and mx.grad when training), so "
        f"it must stay pure MLX: use mx.where for branches and return values as metrics"
        f"{instead if compiled else ''}. ({err})"
    )


def _users_line(err: BaseException) -> str:
    """' at FILE:LINE: `code`' for the innermost frame of `err`'s traceback outside audiotrain, Python's own
    library and installed packages (MLX, numpy): the user's line that read the value (in a long step, or a
    notebook that shows the last line alone, the chained traceback was the only place that named it)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    libraries = {sysconfig.get_path(name) for name in ("stdlib", "purelib", "platlib")}
    # (and the folders sysconfig does not name: `pip install --user`'s, a Debian Python's dist-packages)
    libraries |= {*getattr(site, "getsitepackages", list)(), site.getusersitepackages()}
    found = ""
    for frame, line in traceback.walk_tb(err.__traceback__):
        path = os.path.abspath(frame.f_code.co_filename)
        if any(path.startswith(os.path.abspath(root) + os.sep) for root in (package, *libraries) if root):
            continue
        code = linecache.getline(frame.f_code.co_filename, line).strip()
        found = f" at {os.path.basename(path)}:{line}" + (f": `{code}`" if code else "")
    return found


def call_traced_hook(module: Any, name: str) -> None:
    """Call the module's hook `name` (`on_after_optimizer_step`), which runs inside the compiled step: a
    value read there is named as that hook's, where StateGuard would name the step (`compute_loss`)."""
    # (Marked, so that a step count read there warns as one read in compute_loss does: a momentum schedule
    # from self.global_step was otherwise the trace's value for every step, silently.)
    object.__setattr__(module, "_in_traced_hook", True)
    try:
        getattr(module, name)()
    except (TypeError, ValueError, IndexError) as err:
        if isinstance(err, ValueError) and TRANSFORM_EVAL in str(err):
            raise TracedReadError(_read_while_traced(f"{type(module).__name__}.{name}", err)) from err
        if type(err) not in (TypeError, ValueError, IndexError):
            raise
        # Named as the hook's: the step's `naming_the_batch` would name the loss and the batch's arrays.
        named = type(err)(
            f"{err} ({type(module).__name__}.{name}, which runs inside the training step after the optimizer "
            "update)"
        )
        named.names_its_source = True  # (`naming_the_batch` passes it as it is)
        raise named from err
    finally:
        object.__setattr__(module, "_in_traced_hook", False)


class StateGuard:
    """Undo what a failed trace left in the step's state.

    `mx.compile` (and `mx.value_and_grad`) swap tracer placeholders into the model, optimizer and
    RNG state while tracing; when user code raises mid-trace (or Ctrl-C interrupts it) they stay there,
    and every later use of those arrays in the process fails ("Attempting to eval an array without a
    primitive"), the trained weights included. Tracing happens on a call with a batch structure not seen
    before, or after the module's tree changed (a hook, or the step itself, appended an array to a list
    attribute: Lightning's ``self.training_step_outputs.append(loss)``), so only such calls pay for a
    snapshot (a Python walk over the state); the rest cost one signature and a look at the lengths of the
    module's dicts and lists (`state[0]` is the module's).
    """

    def __init__(self, state: list, where: str, compiled: bool, refuse_module_writes: bool = False):
        self.state, self.where, self.compiled = state, where, compiled
        # (The training step: an evaluation step's kept values are explained where a hook reads them.)
        self.refuse_module_writes = refuse_module_writes
        self._traced: dict[tuple, None] = {}  # the signatures traced, in order (a set that keeps order)
        self._module_containers: list[tuple[Any, int]] = []  # (dict or list, its length) at the last snapshot
        # The plain values (a curriculum's self.noise) the traces read from the module: graph constants.
        self.plain_reads: dict = {}
        # id -> (list, its length before the first trace that appended arrays to it): an evaluation step's
        # self.outputs.append(loss), whose placeholders `drop_kept_placeholders` drops when the stage ends.
        self._kept: dict[int, tuple[list, int]] = {}

    def forget(self) -> None:
        """The step's functions will be traced again (`TrainStep.trace_again`): snapshot before each."""
        self._traced.clear()
        self.plain_reads.clear()

    def drop_kept_placeholders(self) -> None:
        """Remove from the module's lists the arrays the traces appended: placeholders of the trace, which
        a hook cannot read (`reporting.explain_kept_step_arrays` says so) and which would make every later
        use of the module fail with MLX's "eval an array without a primitive"."""
        # (Found by evaluating them: a later trace swaps the list's arrays for other Python objects, so the
        # ones appended are not known by identity; a real array a batch hook appended is kept.)
        for container, start in self._kept.values():
            container[start:] = [value for value in container[start:] if not _is_placeholder(value)]
        self._kept.clear()
        if self.compiled and not self.refuse_module_writes and _is_placeholder(self.state[0]):
            # A new attribute the step set (a decoder's KV cache, `self._cache = [...]` in a greedy loop in
            # validation_step) is no list that grew: its placeholders stayed on the module, and the next
            # training step, compiled over the module's whole tree, failed with "eval an array without a
            # primitive" naming training_step.
            _drop_placeholders(self.state[0])

    def _may_hold_other_arrays(self) -> bool:
        """Whether the module's tree may hold other arrays than at the last snapshot (MLX then traces the step
        again). A list or dict that only gained plain values (a hook's ``self.losses.append(float(loss))`` at
        every batch) holds none more: its new length is noted without the snapshot that would otherwise be
        taken at every step."""
        if not _grown(self._module_containers):
            return False
        noted = []
        for container, length, path in self._module_containers:
            if len(container) != length:
                if not _only_plain_values_added(container, length):
                    return True
                length = len(container)
            noted.append((container, length, path))
        self._module_containers = noted
        return False

    def __call__(self, fn: Callable, *args: Any):
        saved = signature = None
        watched: list[tuple[Any, int, str]] = []
        if self.compiled:  # uncompiled steps undo value_and_grad's swap themselves (try/finally)
            signature = _signature(args)
            if signature not in self._traced or self._may_hold_other_arrays():
                saved = [_structure_copy(s) for s in self.state]
                # (as the trace sees the tree: a step that appends to a list while traced is traced again)
                watched = _containers(self.state[0])
                keys_before = {id(node): set(node) for node, _, _ in watched if isinstance(node, dict)}
        recording = (
            recording_plain_reads(self.state[0], self.plain_reads) if saved is not None else nullcontext()
        )
        try:
            with recording:
                out = fn(*args)
        except BaseException as err:
            # Any exception: a KeyboardInterrupt (Ctrl-C, a notebook's "interrupt kernel") while a big
            # step traces leaves the same placeholders as an error, and the session goes on after it.
            for container, snapshot in zip(self.state, saved or ()):
                _restore_in_place(container, snapshot, drop_added=True)
            if self.compiled and isinstance(err, IndexError) and _COMPILE_MAP_BUG in str(err):
                raise RuntimeError(
                    f"{self.where}: mx.compile failed on this step with MLX's internal 'IndexError: "
                    f"{_COMPILE_MAP_BUG}', a bug in MLX's compiler rather than in the step. It is hit when the "
                    "step returns one expression twice: an expression of the batch alone written in the loss "
                    "and in a returned metric or logged value (e.g. loss = mx.sum(err * batch['w']) / "
                    "mx.sum(batch['w']) and {'weight': mx.sum(batch['w'])}), or two returned values that "
                    "are the same at this batch's shape only (at batch size 1, argmax along the rows of a "
                    "1x1 matrix and of its transpose). Compute such a value once and use that array in both "
                    "(n = mx.sum(batch['w'])), or train with Trainer(compile=False)"
                ) from err
            if TRANSFORM_EVAL in str(err) and not isinstance(err, TracedReadError):
                raise TracedReadError(_read_while_traced(self.where, err, self.compiled)) from err
            raise
        if saved is not None:
            # Only arrays added are refused: a step noting plain values at its trace (the dtypes of the
            # batch it was traced with, a shape) keeps them rightly; MLX traces again for arrays alone.
            grown = [
                path
                for container, length, path in watched
                if len(container) > length
                and _holds_arrays(_added(container, length, keys_before.get(id(container))))
            ]
            if grown and self.refuse_module_writes:
                # The step's own Python appended to the module while traced (Lightning's
                # self.training_step_outputs.append(loss)): what it kept are placeholders of the trace, and
                # the grown tree is traced again at every later call.
                for container, snapshot in zip(self.state, saved):
                    _restore_in_place(container, snapshot)
                if layers := _layers_added(watched, keys_before):  # (a layer built lazily, on the first call)
                    owner = type(self.state[0]).__name__
                    raise TracedWriteError(layers_created_while_training(owner, layers))
                raise TracedWriteError(_written_while_traced(self.where, grown))
            if grown:  # (an evaluation step's: explained where a hook reads them, dropped at the stage's end)
                for container, length, _ in watched:
                    if isinstance(container, list) and _holds_arrays(container[length:]):
                        self._kept.setdefault(id(container), (container, length))
            self._module_containers = watched
            self._traced[signature] = None
            if len(self._traced) == RETRACE_WARNING_LIMIT + 1:
                warnings.warn(
                    _retrace_message(self.where, self._traced), RetraceWarning, stacklevel=user_stacklevel()
                )
        return out


def _containers(tree: Any, path: str = "") -> list[tuple[Any, int, str]]:
    """Every dict and list of `tree` (itself included), each with its length now and its dotted path."""
    found, pending = [], [(tree, path)]
    while pending:
        node, where = pending.pop()
        if isinstance(node, dict | list):
            found.append((node, len(node), where))
            items = node.items() if isinstance(node, dict) else enumerate(node)
            pending.extend((value, f"{where}.{key}" if where else str(key)) for key, value in items)
    return found


def _grown(containers: list[tuple[Any, int, str]]) -> bool:
    """Whether one of `containers` (as `_containers` listed them) has another length now: MLX traces a
    compiled function again when the tree it captures changed."""
    return any(len(container) != length for container, length, _ in containers)


def _only_plain_values_added(container: Any, length: int) -> bool:
    """Whether `container`, `length` long at the last snapshot, only gained values that are neither arrays nor
    containers (which may hold arrays). One that shrank may have lost arrays."""
    if len(container) < length:
        return False
    added = container[length:] if isinstance(container, list) else container.values()
    return not any(isinstance(value, mx.array | dict | list | tuple) for value in added)


def _added(container: Any, length: int, keys_before: set | None) -> list:
    """The values `container` (a list `length` long before, or a dict with `keys_before`) gained."""
    if isinstance(container, list):
        return container[length:]
    return [value for key, value in container.items() if key not in (keys_before or ())]


def _layers_added(watched: list[tuple[Any, int, str]], keys_before: dict[int, set]) -> list[tuple[str, Any]]:
    """(dotted name, layer) for each nn.Module the module's dicts and lists gained since `watched`."""
    found = []
    for container, length, path in watched:
        if isinstance(container, dict):
            added = [
                (key, value)
                for key, value in container.items()
                if key not in keys_before.get(id(container), ())
            ]
        else:
            added = list(enumerate(container[length:], start=length))
        for key, value in added:
            if isinstance(value, nn.Module):
                found.append((f"{path}.{key}" if path else str(key), value))
    return found


def _is_placeholder(value: Any) -> bool:
    """Whether `value` holds an array a compiled trace left, which MLX cannot evaluate."""
    if not _holds_arrays(value):
        return False
    try:
        mx.eval(value)
    except RuntimeError as err:
        return "without a primitive" in str(err)
    return False


def _drop_placeholders(tree: Any) -> None:
    """Remove from `tree`'s dicts and lists every array a compiled trace left (`_is_placeholder`)."""
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            for key in [key for key, value in node.items() if isinstance(value, mx.array)]:
                if _is_placeholder(node[key]):
                    del node[key]
            pending.extend(value for value in node.values() if isinstance(value, dict | list))
        elif isinstance(node, list):
            node[:] = [
                value for value in node if not (isinstance(value, mx.array) and _is_placeholder(value))
            ]
            pending.extend(value for value in node if isinstance(value, dict | list))


def _holds_arrays(values: Any) -> bool:
    """Whether `values` holds an mx.array, in containers too."""
    pending = [values]
    while pending:
        node = pending.pop()
        if isinstance(node, mx.array):
            return True
        if isinstance(node, dict):
            pending.extend(node.values())
        elif isinstance(node, list | tuple):
            pending.extend(node)
    return False


class TracedWriteError(RuntimeError):
    """User code inside the compiled step added to a list or dict attribute of the module."""


def _written_while_traced(where: str, paths: list[str]) -> str:
    names = ", ".join(f"self.{path}" for path in paths)
    return (
        f"{where} added to {names} while the compiled step was traced (Lightning's "
        "self.training_step_outputs.append(loss)): the step's Python runs only when it is traced, so what it "
        "keeps there are placeholders of the trace, not each step's values, and the grown module is traced "
        "again at every step. Log the value with self.log(name, value, on_epoch=True) and read its epoch "
        "mean from self.trainer.callback_metrics in on_train_epoch_end, return it as a metric, or pass "
        "Trainer(compile=False), where the module may keep the step's arrays (the weights are those before "
        "this step)"
    )


def _retrace_message(where: str, signatures: Iterable[tuple]) -> str:
    return (
        f"The compiled step {where} has been traced for {RETRACE_WARNING_LIMIT + 1} different inputs"
        f"{_varying_inputs(signatures)}. MLX traces a compiled step again for every new input shape and "
        "keeps every trace (on the CPU each also builds a new kernel: about 0.2 s, and 0.16 MB kept for the "
        "life of the process). Pad or bucket lengths to a few sizes (a collate_fn that pads each batch up "
        "to a multiple of a fixed length, the padding masked in the loss), or pass Trainer(compile=False) "
        "for truly variable shapes. (Warned once for this step.)"
    )


def _varying_inputs(signatures: Iterable[tuple], shown: int = 3) -> str:
    """' (batch[0] has shapes (1, 200), (1, 201), ...)': the inputs whose shape, dtype or value differs
    between `signatures` (as `_signature` gives them), or '' where only the structure differs."""
    seen: dict[str, list] = {}
    for signature in signatures:
        for path, kind, detail in signature:
            keys = seen.setdefault(path, [])
            if (kind, detail) not in keys:
                keys.append((kind, detail))
    parts = []
    for path, keys in seen.items():
        if len(keys) < 2:
            continue
        arrays = isinstance(keys[0][0], tuple)
        if arrays and len({shape for shape, _ in keys}) > 1:
            what, values = "shapes", [str(shape) for shape, _ in keys]
        elif arrays:
            what, values = "dtypes", [str(dtype).removeprefix("mlx.core.") for _, dtype in keys]
        else:
            what, values = "values", [value for _, value in keys]
        more = ", ..." if len(values) > shown else ""
        parts.append(f"{_input_name(path)} has {what} {', '.join(values[:shown])}{more}")
    return f" ({'; '.join(parts[:2])})" if parts else ""


def _input_name(path: str) -> str:
    """'0.audio' -> "batch['audio']", '0.0' -> 'batch[0]': a flattened path of a step's arguments, whose
    first is the batch."""
    first, *keys = path.split(".")
    name = "batch" if first == "0" else f"argument {first}"
    return name + "".join(f"[{key}]" if key.isdigit() else f"[{key!r}]" for key in keys)


def _signature(args: Any) -> tuple:
    """What MLX keys a compiled function's traces on: the structure, shapes and dtypes of array
    leaves and the values of everything else."""
    return tuple(
        (path, tuple(v.shape), v.dtype) if isinstance(v, mx.array) else (path, type(v), repr(v))
        for path, v in tree_flatten(args)
    )
