"""What a module's checkpoint hooks and a datamodule's `state_dict()` put in a checkpoint.

Lightning hands `LightningModule.on_save_checkpoint` the checkpoint itself and stores
`LightningDataModule.state_dict()` in it. audiotrain's checkpoints are JSON (plus safetensors for the
weights, never pickle), so both go through the rule callbacks already follow: a value that JSON would
not give back exactly (a tuple, a set, a non-string key) is refused at the first save, naming the hook
and the field, instead of coming back changed.

The module's hook gets its own entry of the checkpoint (``module_state`` in trainer_state.json) with the
run's ``epoch`` and ``global_step`` and the saved ``hyper_parameters`` in it, as Lightning code reads them.
Those are the Trainer's: a save hook that changes them is refused; what a load hook does to them is not
kept anywhere.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

from audiotrain._caller import user_stacklevel
from audiotrain.train import checkpoint as ckpt

import mlx.core as mx
import mlx.nn as nn
import numpy as np

#: The keys of the module hook's dict that the Trainer fills and owns.
RUN_KEYS = ("epoch", "global_step")
#: Lightning's key of the saved hyperparameters, given to both hooks to read where there are some.
HPARAMS_KEY = "hyper_parameters"


#: Entries of Lightning's checkpoint that Lightning code reads in a module's hooks, and where they are here.
LIGHTNING_ENTRIES = {
    "state_dict": "the weights are in model.safetensors: the module's own state_dict() / load_state_dict()",
    "optimizer_states": "the optimizer's state is in optimizer.safetensors, restored by a resumed fit",
    "lr_schedulers": "the schedule is part of the optimizer's state, restored by a resumed fit",
    "callbacks": "each callback's state_dict() is its own, given to its load_state_dict()",
}


class MissingCheckpointEntry(KeyError):
    """A key the module hook's dict lacks, said with what that dict is (a KeyError, as a dict's)."""

    def __str__(self) -> str:
        return str(self.args[0])


class ModuleCheckpoint(dict):
    """The dict a module's checkpoint hooks get: what its save hook stored, `epoch` and `global_step`.
    Lightning's hooks get the whole checkpoint: a key of it read here says where that part is."""

    def __init__(self, entries: dict[str, Any], hook: str) -> None:
        super().__init__(entries)
        self._hook = hook

    def __missing__(self, key: Any) -> Any:
        where = LIGHTNING_ENTRIES.get(key, "nothing was stored under it")
        raise MissingCheckpointEntry(
            f"checkpoint[{key!r}] in {self._hook}: this dict holds what the module's on_save_checkpoint "
            f"stored ({', '.join(map(repr, self)) or 'nothing'}), not Lightning's whole checkpoint; {where}"
        )


def save_module_state(module: Any, state: dict[str, Any], epoch: int, global_step: int) -> None:
    """Call `module.on_save_checkpoint` with its dict (its entry plus `epoch`, `global_step` and a copy
    of the saved `hyper_parameters`) and keep what it added in ``state["module_state"]``, after checking
    that JSON gives it back as it was."""
    hook = f"{type(module).__name__}.on_save_checkpoint"
    run = {"epoch": epoch, "global_step": global_step}
    # As in Lightning, only where there are some (the hook may edit what it gets: a copy, checked below).
    saved = state.get("hyper_parameters") or None
    hparams = {HPARAMS_KEY: copy.deepcopy(saved)} if saved else {}
    checkpoint = ModuleCheckpoint({**state.get("module_state", {}), **run, **hparams}, hook)
    module.on_save_checkpoint(checkpoint)
    # (repr too: a NaN hyperparameter is not == itself, and must not read as a change)
    if checkpoint.get(HPARAMS_KEY) != saved and repr(checkpoint.get(HPARAMS_KEY)) != repr(saved):
        raise ValueError(
            f"{hook}: checkpoint['hyper_parameters'] is read-only here (what save_hyperparameters recorded, "
            "which load_from_checkpoint rebuilds the module with), but the hook changed it: change "
            "self.hparams instead (every checkpoint saves them), or store your own value under another key"
        )
    for key, value in run.items():
        if key not in checkpoint or checkpoint[key] != value:
            now = repr(checkpoint[key]) if key in checkpoint else "deleted"
            raise ValueError(
                f"{hook}: checkpoint[{key!r}] is the Trainer's and read-only ({value}), but the hook "
                f"changed it ({now}): store your own value under another key"
            )
    own = {key: value for key, value in checkpoint.items() if key not in (*RUN_KEYS, HPARAMS_KEY)}
    ckpt.check_keeps(own, f"{hook}: checkpoint", "")
    state["module_state"] = own
    state["module_state_run"] = run  # what the load hook sees as epoch and global_step


def load_module_state(module: Any, state: dict[str, Any]) -> None:
    """Call `module.on_load_checkpoint` with what its save hook stored, plus the saved `epoch` and
    `global_step` (a checkpoint from before they were saved: the progress it resumes at, and an `epoch`
    its module stored itself then is what it stored) and the saved `hyper_parameters` (tuples as tuples,
    as load_from_checkpoint gives them to `__init__`; an entry of that name its save hook stored in an
    older checkpoint is what it stored)."""
    from audiotrain.train.module import with_hyperparameter_tuples  # (module.py imports this module)

    own, hook = state.get("module_state", {}), f"{type(module).__name__}.on_load_checkpoint"
    hparams = state.get("hyper_parameters")  # (as in Lightning, none where there are none)
    saved = {HPARAMS_KEY: with_hyperparameter_tuples(hparams, state.get("hyper_parameter_tuples"))}
    saved = saved if hparams else {}
    if "module_state_run" in state:
        module.on_load_checkpoint(ModuleCheckpoint({**saved, **own, **state["module_state_run"]}, hook))
        return
    progress = state.get("progress") or {}
    module.on_load_checkpoint(
        ModuleCheckpoint({**{key: progress.get(key, 0) for key in RUN_KEYS}, **saved, **own}, hook)
    )


def with_run_counters(state: dict[str, Any]) -> dict[str, Any]:
    """`state` (changed in place, so that a callback's rewrite of its entry reaches `load_state_dict`) with
    the saved `epoch` and `global_step` at its top, as Lightning's checkpoint dict holds them for the
    callbacks' `on_load_checkpoint` (what the module's hook sees; the progress before they were saved)."""
    progress = state.get("progress") or {}
    run = state.get("module_state_run") or {key: progress.get(key, 0) for key in RUN_KEYS}
    for key in RUN_KEYS:
        state.setdefault(key, run.get(key, 0))
    return state


@contextlib.contextmanager
def datamodule_state_shown(state: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """`state` with the datamodule's saved state also under its class's qualified name, Lightning's key, for
    the callbacks' `on_load_checkpoint` (Lightning's dict holds it there); taken out again after them (the
    datamodule has its state already, as in Lightning, where a callback's edit of it reaches nothing)."""
    key = state.get("datamodule_class")
    shown = "datamodule" in state and isinstance(key, str) and key not in state
    if shown:
        state[key] = state["datamodule"]
    try:
        yield state
    finally:
        if shown:
            state.pop(key, None)


def load_module_state_before_weights(module: Any, state: dict[str, Any], model_file: Any) -> frozenset[str]:
    """`load_module_state` where Lightning calls the hook, before the weights load (it may rebuild a layer
    they load into). Arrays it stores on the module (`self.ema = checkpoint["ema"]`) become MLX parameters,
    where torch's tensors in a dict or list attribute are none: those the checkpoint's `model_file` lacks
    are frozen (kept as the hook gave them, never trained) and their names returned: the weights to load
    need not hold them (`weights_to_load`)."""
    # (what an earlier load's hook added counts as the hook's again: validate then test with one module)
    before = set(ckpt.flat(module.parameters())) - getattr(module, "_load_hook_added", frozenset())
    load_module_state(module, state)
    header = ckpt.read_header(model_file)
    added = frozenset(k for k in ckpt.flat(module.parameters()) if k not in before and k not in header)
    for name in added:
        _freeze_at(module, name.split("."))
    module._load_hook_added = added
    return added


def _freeze_at(module: Any, path: list[str]) -> None:
    """Freeze the attribute `path` leads to, at the deepest submodule on that path (MLX freezes by key),
    through lists and dicts too: `blocks.0.stat` freezes `stat` of `blocks[0]`, not the list of layers."""
    owner, rest, node = module, path, module
    for depth, key in enumerate(path[:-1]):
        node = _child(node, key)
        if isinstance(node, nn.Module):
            owner, rest = node, path[depth + 1 :]
        elif not isinstance(node, (list, tuple, dict)):
            break
    owner.freeze(keys=[rest[0]], recurse=False, strict=False)


def _child(owner: Any, key: str) -> Any:
    return owner[int(key)] if isinstance(owner, (list, tuple)) else owner.get(key)


def weights_to_load(module: Any, model_file: Any, added: frozenset[str]) -> tuple[dict[str, Any], Any]:
    """The module's arrays the checkpoint's `model_file` must hold, and the file's header: all but those
    its load hook `added` (`load_module_state_before_weights`)."""
    header = ckpt.read_header(model_file)
    return {k: v for k, v in ckpt.flat(module.parameters()).items() if k not in added}, header


def datamodule_hook_profiled(profiler: Any, datamodule: Any, name: str) -> Any:
    """Lightning's profiler record of a datamodule hook, `[LightningDataModule]<class>.<hook>` (nothing
    where no profiler is given: `DataModule.load_from_checkpoint`)."""
    if profiler is None:
        return contextlib.nullcontext()
    return profiler.profile(f"[LightningDataModule]{type(datamodule).__name__}.{name}")


def save_datamodule_state(datamodule: Any, state: dict[str, Any], profiler: Any = None) -> str | None:
    """Lightning's: a datamodule's non-empty `state_dict()` goes into every checkpoint. Put in `state` under
    its class's qualified name, Lightning's key, before the callbacks' `on_save_checkpoint` (as Lightning's
    `dump_checkpoint`): they see it there, and may edit it; `file_datamodule_state` then files it under
    "datamodule". Returns that key (None where nothing, or a name the Trainer's own entries use, went in)."""
    state_dict = getattr(datamodule, "state_dict", None)
    if not callable(state_dict):
        return None
    with datamodule_hook_profiled(profiler, datamodule, "state_dict"):
        saved = state_dict()
    if not saved:
        return None
    _check_datamodule_state(saved, f"{type(datamodule).__name__}.state_dict()")
    key = type(datamodule).__qualname__  # (Lightning keys the state by it)
    if key in state:  # (a class named as one of the Trainer's entries: filed at once)
        state["datamodule"], state["datamodule_class"] = saved, key
        return None
    state[key] = saved
    return key


def file_datamodule_state(datamodule: Any, state: dict[str, Any], key: str | None) -> None:
    """After the callbacks' `on_save_checkpoint`: the datamodule's state that `save_datamodule_state` put
    under `key`, as they left it (none where one removed it, as in Lightning), under "datamodule"."""
    if key is None:
        return
    saved = state.pop(key, None)
    if not saved:
        return
    where = f"{type(datamodule).__name__}.state_dict() as the callbacks' on_save_checkpoint left it"
    _check_datamodule_state(saved, where)
    state["datamodule"], state["datamodule_class"] = saved, key


def _check_datamodule_state(saved: Any, where: str) -> None:
    """A datamodule's state to save: a dict a checkpoint keeps (`where` names it in the error)."""
    if not isinstance(saved, dict):
        raise TypeError(f"{where}: expected a dict, got {type(saved).__name__}")
    ckpt.check_keeps(saved, where, "")


def load_datamodule_state(datamodule: Any, state: dict[str, Any], profiler: Any = None) -> None:
    """Give a datamodule back what its `state_dict()` saved (Lightning calls `load_state_dict` only for a
    checkpoint that holds the state of the datamodule's class: another class's is left out, with a warning
    here; a checkpoint saved before the class was recorded gives its state to any)."""
    load = getattr(datamodule, "load_state_dict", None)
    if "datamodule" not in state or not callable(load):
        return
    saved_by, name = state.get("datamodule_class"), type(datamodule).__qualname__
    if saved_by is not None and saved_by != name:
        # (named as written, `Folds`, unless only their qualified names differ)
        saved_name, short = saved_by.rsplit(".", 1)[-1], type(datamodule).__name__
        if saved_name == short:
            saved_name, short = saved_by, name
        warnings.warn(
            f"The checkpoint holds the state of the DataModule {saved_name}, not of {short}: it is not given "
            f"to {short}.load_state_dict (as Lightning keys it by the class). Was the class renamed, or is "
            "this the checkpoint of another task?",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        return
    with datamodule_hook_profiled(profiler, datamodule, "load_state_dict"):
        load(state["datamodule"])


def restore_datamodule_state(datamodule: Any, path: Any, profiler: Any = None) -> None:
    """Lightning's `restore_datamodule`, in every stage given a `ckpt_path`: the datamodule's state from the
    checkpoint at `path` (a folder; None: nothing to restore), given to it after its `setup` and before the
    stage asks it for loaders, which may be built from that state."""
    if path is None or not callable(getattr(datamodule, "load_state_dict", None)):
        return
    load_datamodule_state(datamodule, ckpt.read_state(ckpt.resolve_checkpoint(path)), profiler)


def overrides(module: Any, method: str) -> bool:
    """Whether `module`'s class overrides TrainModule's `method` (`state_dict`, `load_state_dict`): then
    checkpoints save what its `state_dict()` returns and load through its `load_state_dict`, as Lightning's
    do; a module without overrides saves and loads its parameters exactly as before."""
    from audiotrain.train.module import TrainModule

    return isinstance(module, TrainModule) and getattr(type(module), method) is not getattr(
        TrainModule, method
    )


def weights_to_save(module: Any, model_file: Any, average: dict[str, mx.array]) -> dict[str, mx.array]:
    """The arrays of a checkpoint's `model_file`: Lightning saves `model.state_dict()`, so a module that
    overrides it (a frozen encoder left out, old names) saves what it returns, checked to be a flat dict of
    name -> array; else every parameter. `average`: the weights validation ran with, saved in place of the
    training weights (a weights-only checkpoint), put into the module while its `state_dict()` runs."""
    arrays = ckpt.flat(module.parameters())
    if not overrides(module, "state_dict"):
        arrays.update({k: a.astype(arrays[k].dtype) for k, a in average.items()})
        return arrays
    owner = f"{type(module).__name__}.state_dict()"
    if not average:
        return _checked_state_dict(module.state_dict(), owner, model_file)
    own = module.parameters()
    module.update(ckpt.merge_flat(own, {k: a.astype(arrays[k].dtype) for k, a in average.items()}))
    try:
        return _checked_state_dict(module.state_dict(), owner, model_file)
    finally:
        module.update(own)


def _checked_state_dict(saved: Any, owner: str, model_file: Any) -> dict[str, mx.array]:
    expected = (
        "expected a flat dict of name (str) -> mx.array, as TrainModule.state_dict() returns "
        "(dict(mlx.utils.tree_flatten(self.parameters())), then keys left out or renamed)"
    )
    where = f"{owner} (the weights saved in {model_file})"
    if not isinstance(saved, Mapping):
        raise TypeError(f"{where} returned a {type(saved).__name__}: {expected}")
    arrays = {}
    for key, value in saved.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"{where}: the key {key!r} is not a name (a non-empty str): {expected}")
        if isinstance(value, (Mapping, list, tuple)):
            raise TypeError(
                f"{where}: {key!r} holds a nested {type(value).__name__}, not an array: {expected}; "
                "flatten it with dict(mlx.utils.tree_flatten(...))"
            )
        if isinstance(value, np.ndarray):
            value = mx.array(value)
        if not isinstance(value, mx.array):
            raise TypeError(f"{where}: {key!r} is a {type(value).__name__}, not an mx.array: {expected}")
        arrays[key] = value
    return arrays


def load_weights(module: Any, arrays: dict[str, mx.array], strict: bool, model_file: Any) -> None:
    """Lightning's load of a checkpoint's weights, `model.load_state_dict(checkpoint["state_dict"],
    strict=...)`, for a module that overrides `load_state_dict` (old names mapped, a frozen encoder its
    `state_dict()` left out accepted); an error it raises is told which file it was given."""
    try:
        module.load_state_dict(arrays, strict=strict)
    except Exception as error:
        error.add_note(f"(loading {model_file} through {type(module).__name__}.load_state_dict)")
        raise


@contextlib.contextmanager
def naming_state_dict_override(module: Any) -> Iterator[None]:
    """A checkpoint's weights that do not match `module` whose `state_dict()` override wrote them, and which
    has no `load_state_dict` to read them back: the error says so (Lightning's strict load of such a
    checkpoint fails on the missing keys too)."""
    try:
        yield
    except ckpt.CheckpointError as error:
        if type(error) is not ckpt.CheckpointError or not overrides(module, "state_dict"):
            raise
        raise ckpt.CheckpointError(
            f"{error}. {type(module).__name__} overrides state_dict(), which chose the weights saved: "
            "override load_state_dict too to read them back (checkpoints load through it, as Lightning's), "
            "or set strict_loading=False to keep the module's own values where names are missing"
        ) from None
