"""Why a training step failed when the model's parameter tree changed shape while it trained.

MLX's `nn.Module` counts every list, dict and array attribute as part of the model: ``self.seen = []``
appended to in a hook (Lightning code keeps such lists: ``self.validation_step_outputs``) grows the tree the
gradients and the optimizer's state mirror, and the next update failed deep in `mlx.utils.tree_map` with a bare
``IndexError: list index out of range`` (an array appended even became a weight the optimizer trains). The
error is turned into one naming the attribute and the way out: a name starting with an underscore, which MLX
leaves out of the parameters.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx.utils import tree_flatten, tree_unflatten


class ParameterTreeChangedError(RuntimeError):
    """A list or dict attribute of the model grew or shrank after its optimizer started."""


def changed_containers(parameters: Any, state: Any, path: str = "") -> list[str]:
    """The dotted names of the lists and dicts of `parameters` (a module's ``trainable_parameters()``) whose
    length or keys differ from `state` (the optimizer's state, which mirrors the tree it was started on)."""
    if isinstance(parameters, dict):
        if not isinstance(state, dict):
            return [path.rstrip(".")] if path else []
        changed = []
        for key, value in parameters.items():
            if key not in state:
                if isinstance(value, (dict, list)):
                    changed.append(f"{path}{key}")
                continue
            changed += changed_containers(value, state[key], f"{path}{key}.")
        return changed
    if isinstance(parameters, list):
        if not isinstance(state, list) or len(state) != len(parameters):
            return [path.rstrip(".")]
        changed = []
        for index, (value, slot) in enumerate(zip(parameters, state)):
            changed += changed_containers(value, slot, f"{path}{index}.")
        return changed
    return []


def multi_optimizer_parts(optimizer: optim.MultiOptimizer, tree: Any) -> list[Any]:
    """`tree` (parameters or gradients) split as MLX's MultiOptimizer splits it: each leaf goes to the first
    of its optimizers whose filter takes the leaf's path, the last optimizer takes the rest; one tree per
    optimizer, {} for one that gets nothing."""
    parts: list[list] = [[] for _ in optimizer.optimizers]
    for path, value in tree_flatten(tree):
        picks = (i for i, keep in enumerate(optimizer.filters) if keep(path, value))
        parts[next(picks, len(parts) - 1)].append((path, value))
    return [tree_unflatten(part) if part else {} for part in parts]


def multi_optimizer_groups(
    optimizer: optim.MultiOptimizer, parameters: Any, trainable: Any, where: str
) -> list[str]:
    """Check a MultiOptimizer's filters on `parameters` (all of the model's, frozen ones too, so that a
    frozen encoder's group is not one that gets nothing) before MLX starts it on `trainable`: a filter that
    raises on a trainable parameter is refused naming its group (MLX never calls it on a frozen one, whose
    errors are passed over), and the groups that get no parameter are returned, described for a warning.
    MLX's `_split_dictionary` let a filter's error through as a bare traceback from its internals, and a
    filter that took nothing (torch's 'encoder.0.' where MLX names it 'encoder.layers.0.') silently trained
    those weights with the last group's rate and decay."""
    counts = [0] * len(optimizer.optimizers)
    flat = tree_flatten(parameters)
    trainable_paths = {path for path, _ in tree_flatten(trainable)}
    for path, value in flat:
        group = _filtered_group(optimizer, path, value, path in trainable_paths, where)
        if group is not None:
            counts[group] += 1
    names = ", ".join(repr(path) for path, _ in flat[:4]) + (", ..." if len(flat) > 4 else "")
    empty = []
    for index, count in enumerate(counts):
        if count:
            continue
        why = (
            "the filters before it took every parameter"
            if index == len(counts) - 1
            else "its filter took none of the model's parameters"
        )
        empty.append(f"group {index + 1} ({type(optimizer.optimizers[index]).__name__}): {why}")
    if empty and flat:
        return [
            f"{where}: the MultiOptimizer's {'; '.join(empty)}, so the parameters meant for it train with "
            f"another group's learning rate and weight decay. MLX names the parameters by their attribute "
            f"paths ({names}; an nn.Sequential's layers are 'name.layers.0.', not torch's 'name.0.')"
        ]
    return []


def _filtered_group(
    optimizer: optim.MultiOptimizer, path: str, value: Any, trainable: bool, where: str
) -> int | None:
    """The index of the group MLX gives the parameter at `path` (None: a frozen one a filter fails on)."""
    for index, keep in enumerate(optimizer.filters):
        try:
            taken = keep(path, value)
        except Exception as error:
            if not trainable:
                return None
            raise TypeError(
                f"{where}: the MultiOptimizer's filter {index + 1} (for group {index + 1}, "
                f"{type(optimizer.optimizers[index]).__name__}) raised {type(error).__name__}: {error}, on "
                f"the parameter {path!r}. MLX calls each filter as filter(path, array) with every "
                "parameter's dotted path and array, and gives the parameter to the first group whose filter "
                "returns True (the last group takes the rest), e.g. "
                "lambda path, _: path.startswith('encoder.')"
            ) from error
        if taken:
            return index
    return len(optimizer.optimizers) - 1


def _mirrored_by_state(parameters: Any, optimizer: optim.Optimizer) -> list[tuple[Any, dict]]:
    """(part of `parameters`, the state of the optimizer that started on it) pairs. MLX's MultiOptimizer has
    no state of its own ({"states": [...]}): each of its optimizers mirrors the part its filter picks (the
    first filter that takes a weight's path; the last optimizer takes the rest)."""
    if isinstance(optimizer, optim.MultiOptimizer):
        parts = multi_optimizer_parts(optimizer, parameters)
        return [
            pair
            for inner, part in zip(optimizer.optimizers, parts)
            for pair in _mirrored_by_state(part, inner)
        ]
    state = getattr(optimizer, "state", None)
    if not getattr(optimizer, "_initialized", False) or not isinstance(state, dict):
        return []
    return [(parameters, state)]


@contextlib.contextmanager
def explain_changed_parameter_tree(module: nn.Module, optimizer: optim.Optimizer) -> Iterator[None]:
    """Run a training step; where it fails as a changed tree fails (an IndexError, KeyError or ValueError of
    a tree walk), name the attributes that changed, else let the error through as it was."""
    try:
        yield
    except (IndexError, KeyError, ValueError) as error:
        changed = [
            name
            for parameters, state in _mirrored_by_state(module.trainable_parameters(), optimizer)
            for name in changed_containers(parameters, state)
        ]
        if not changed:
            raise
        owner = type(module).__name__
        layers = [(name, layer) for name in changed if isinstance(layer := held(module, name), nn.Module)]
        if layers:
            raise ParameterTreeChangedError(layers_created_while_training(owner, layers)) from error
        names = ", ".join(f"{owner}.{name}" for name in changed)
        # The attribute to rename is the one a module holds: for `rec.steps` (self.rec = {"steps": []}),
        # `rec`, as MLX leaves out a module's underscored attributes, not underscored keys of its dicts.
        parts = changed[0].split(".")
        at = max(k for k in range(len(parts)) if isinstance(held(module, ".".join(parts[:k])), nn.Module))
        hidden = ".".join([*parts[:at], "_" + parts[at]])
        kept = held(module, ".".join(parts[: at + 1]))
        empty = "{...}" if isinstance(kept, dict) else "[]" if isinstance(kept, list) else "..."
        raise ParameterTreeChangedError(
            f"the model's parameter tree changed while it trained: {names} grew or shrank after the optimizer "
            "started. MLX's nn.Module counts every list, dict and array attribute as part of the model (an array "
            "put in one becomes a weight the optimizer trains), so a list kept for bookkeeping (self.seen = [], "
            f"Lightning's self.validation_step_outputs) must not be one of its attributes: name it with a "
            f"leading underscore (self.{hidden} = {empty}), which MLX leaves out of the parameters, or keep "
            f"it outside the module ({type(error).__name__}: {error})"
        ) from error


def held(module: nn.Module, dotted: str) -> Any:
    """What `module` holds at the dotted path of its tree (`head`, `blocks.3`; '' for `module` itself), None
    where nothing."""
    node: Any = module
    for key in dotted.split(".") if dotted else ():
        try:
            node = node[int(key)] if isinstance(node, list) else node.get(key)
        except (ValueError, IndexError, AttributeError):
            return None
    return node


def layers_created_while_training(owner: str, layers: list[tuple[str, nn.Module]]) -> str:
    """Why a layer the model built on its first call (Keras' build, torch's Lazy modules) cannot train."""
    named = ", ".join(f"{owner}.{name} ({type(layer).__name__})" for name, layer in layers)
    first = layers[0][0]
    return (
        f"the model created a layer while it trained: {named}, new since the optimizer started (a layer "
        "built on the model's first call, once the input's size is known). The optimizer and the compiled "
        "step are set up over the parameters the model has before its first training step, so such a "
        f"layer would never train. Create it in __init__ (self.{first} = nn.Linear(in_features, ...), "
        "its input size given as an argument), or in configure_model(), which runs before "
        "configure_optimizers"
    )


def _holds_weights(value: Any) -> bool:
    if isinstance(value, (nn.Module, mx.array)):
        return True
    if isinstance(value, (tuple, list, dict)):
        return any(_holds_weights(item) for item in (value.values() if isinstance(value, dict) else value))
    return False


def weights_in_tuples(value: Any, name: str = "") -> list[str]:
    """The dotted names of the tuples in a module's tree (walked as MLX walks it: modules, dicts, lists,
    leaving out names that start with an underscore) that hold a layer or an array."""
    if isinstance(value, tuple):
        return [name] if _holds_weights(value) else []
    if isinstance(value, nn.Module):
        pairs = [(key, child) for key, child in value.items() if not str(key).startswith("_")]
    elif isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = list(enumerate(value))
    else:
        return []
    return [found for key, child in pairs for found in weights_in_tuples(child, f"{name}{key}.")]


def warn_weights_in_tuples(module: nn.Module) -> None:
    """Warn where a tuple attribute holds layers or arrays: MLX's `parameters()` takes lists and dicts but
    leaves tuples out, so `self.heads = (nn.Linear(...), ...)` was never trained, saved or counted, without
    a word (the summary and the checkpoint simply lacked it)."""
    found = [name.rstrip(".") for name in weights_in_tuples(module)]
    if found:
        shown = ", ".join(repr(n) for n in found[:3]) + (", ..." if len(found) > 3 else "")
        warnings.warn(
            f"{type(module).__name__}: {shown} is a tuple holding layers or arrays, which MLX leaves out of "
            "the parameters: they are not trained, saved in checkpoints or counted in the summary. Make it a "
            "list to train them; to keep them out on purpose, start the name with an underscore "
            "(`self._teacher = ...`), which silences this",
            UserWarning,
            stacklevel=3,
        )
