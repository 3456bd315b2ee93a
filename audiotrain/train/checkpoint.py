"""Checkpoint folders: safetensors for arrays, JSON for everything else, written atomically.

Layout of a checkpoint folder::

    model.safetensors        every module array (parameters and buffers such as BatchNorm stats)
    optimizer.safetensors    the optimizer state tree (step counter and learning rate included)
    step_state.safetensors   the compiled step's counters and gradient-accumulation buffer
    trainer_state.json       epoch, global step, position in the epoch, RNG state, data order,
                             callback / logger / module state, history, config, versions

A checkpoint is written to a temporary sibling folder, fsynced, then swapped in with renames, so
a crash at any moment leaves either the old or the new checkpoint loadable (never pickle).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlx.core as mx
from mlx.utils import tree_flatten, tree_map_with_path

FORMAT = "audiotrain-checkpoint"
FORMAT_VERSION = 2  # 2: the trainer state as named objects (progress, running_means, history, random)
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
STEP_STATE_FILE = "step_state.safetensors"
STATE_FILE = "trainer_state.json"
REQUIRED_FILES = (MODEL_FILE, OPTIMIZER_FILE, STATE_FILE)


class CheckpointError(RuntimeError):
    """A checkpoint folder is missing, incomplete, corrupt or was not written by audiotrain."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _save_arrays(path: Path, arrays: dict[str, mx.array]) -> None:
    mx.save_safetensors(str(path), arrays)
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def write_checkpoint(
    path: str | os.PathLike,
    model_arrays: dict[str, mx.array],
    optimizer_arrays: dict[str, mx.array],
    step_arrays: dict[str, mx.array],
    state: dict[str, Any],
) -> Path:
    """Write a checkpoint folder at `path` atomically; returns the final path."""
    with _atomic_folder(path) as tmp:
        _save_arrays(tmp / MODEL_FILE, model_arrays)
        _save_arrays(tmp / OPTIMIZER_FILE, optimizer_arrays)
        _save_arrays(tmp / STEP_STATE_FILE, step_arrays)
        payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
        with open(tmp / STATE_FILE, "w") as f:
            json.dump(payload, f, indent=1, default=_json_default)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def copy_checkpoint(source: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Make `path` a checkpoint equal to the folder `source`, atomically like `write_checkpoint`.

    Files are hard-linked where the file system allows (no second write of the weights) and copied
    otherwise. Linked files stay safe: a checkpoint is never written in place, only replaced.
    """
    with _atomic_folder(path) as tmp:
        for file in Path(source).iterdir():
            try:
                os.link(file, tmp / file.name)
            except OSError:
                shutil.copy2(file, tmp / file.name)
    return Path(path)


@contextlib.contextmanager
def _atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary sibling folder to fill; swapped in at `path` when the block ends, removed on error."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        _fsync_dir(tmp)
        _swap_in(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp: Path, final: Path) -> None:
    """Swap: old → .prev, tmp → final, drop .prev. Between the two renames only .prev exists, and
    read_checkpoint falls back to it."""
    prev = final.with_name(final.name + ".prev")
    if prev.exists():
        shutil.rmtree(prev)
    if final.exists():
        os.replace(final, prev)
    os.replace(tmp, final)
    _fsync_dir(final.parent)
    if prev.exists():
        shutil.rmtree(prev, ignore_errors=True)


def _json_default(obj: Any):
    if isinstance(obj, mx.array):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"value of type {type(obj).__name__} is not JSON serialisable: {obj!r}")


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The folder to read for `path`, falling back to `<path>.prev` left by an interrupted swap."""
    folder = Path(path)
    if not folder.exists():
        prev = folder.with_name(folder.name + ".prev")
        if prev.is_dir():
            warnings.warn(f"{folder} is missing; loading {prev} left by an interrupted save", stacklevel=3)
            return prev
        raise CheckpointError(f"checkpoint folder {folder} does not exist")
    if not folder.is_dir():
        raise CheckpointError(
            f"{folder} is a file, but an audiotrain checkpoint is a folder holding {', '.join(REQUIRED_FILES)}"
        )
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if len(missing) == len(REQUIRED_FILES):
        raise CheckpointError(
            f"{folder} is not a complete audiotrain checkpoint: it holds none of {', '.join(REQUIRED_FILES)}"
        )
    if missing:
        raise CheckpointError(
            f"{folder} is not a complete audiotrain checkpoint: missing {', '.join(missing)} "
            f"(expected {', '.join(REQUIRED_FILES)})"
        )
    return folder


def read_state(folder: Path) -> dict[str, Any]:
    try:
        with open(folder / STATE_FILE) as f:
            state = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{folder / STATE_FILE} is unreadable or not valid JSON: {err}") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f'{folder / STATE_FILE} was not written by audiotrain (expected "format": "{FORMAT}")'
        )
    version = state.get("format_version", 0)
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{folder} uses checkpoint format {version}, newer than this audiotrain ({FORMAT_VERSION}); "
            "upgrade audiotrain"
        )
    if version < FORMAT_VERSION:
        raise CheckpointError(
            f"{folder} uses checkpoint format {version}, written by an older audiotrain before the trainer "
            f"state was split into named objects (format {FORMAT_VERSION}); its weights load with "
            "load_weights(model.safetensors), but it cannot resume training"
        )
    _check_progress_fields(state, folder / STATE_FILE)
    return state


def _check_progress_fields(state: dict[str, Any], path: Path) -> None:
    """The fields a resume reads, with their types: a hand-edited file fails here, by name."""
    progress = state.get("progress")
    if not isinstance(progress, dict):
        raise CheckpointError(
            f"{path}: 'progress' must be an object with epoch, global_step, ..., got {progress!r}"
        )
    for name in ("epoch", "batch_in_epoch", "global_step", "total_batches", "micro_batches"):
        value = progress.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CheckpointError(f"{path}: 'progress.{name}' must be an int >= 0, got {value!r}")
    rng = (state.get("random") or {}).get("mlx") if isinstance(state.get("random"), dict) else None
    if not (isinstance(rng, list) and len(rng) == 2 and all(isinstance(v, int) and v >= 0 for v in rng)):
        raise CheckpointError(f"{path}: 'random.mlx' must be two unsigned ints (the PRNG key), got {rng!r}")


@contextlib.contextmanager
def named_source(path: Path):
    """Errors from loading the state saved in `path` name that file as their source."""
    try:
        yield
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise CheckpointError(f"{path} holds a value this audiotrain cannot restore: {err}") from err


def read_arrays(file: Path) -> dict[str, mx.array]:
    if not file.is_file():
        return {}
    try:
        return mx.load(str(file), format="safetensors")
    except Exception as err:  # MLX raises RuntimeError/ValueError for truncated or foreign files
        raise CheckpointError(f"{file} is not a readable safetensors file: {err}") from err


def check_arrays(loaded: dict[str, mx.array], expected: dict[str, mx.array], what: str, file: Path) -> Any:
    """Compare names and shapes of `loaded` against `expected` (flat dicts); returns the flat arrays
    in the expected dtypes, ready for `merge_flat`."""
    missing = sorted(set(expected) - set(loaded))
    unexpected = sorted(set(loaded) - set(expected))
    shapes = [
        f"{k}: checkpoint {tuple(loaded[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(loaded))
        if tuple(loaded[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or shapes:

        def examples(items: list[str], sep: str = ", ") -> str:
            # A few names are enough to recognise another model; hundreds would bury the message.
            return sep.join(items[:3]) + (f"{sep}..." if len(items) > 3 else "")

        parts = [f"{len(loaded)} arrays in the checkpoint, {len(expected)} expected"]
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {examples(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {examples(unexpected)})")
        if shapes:
            parts.append(f"{len(shapes)} mis-shaped (e.g. {examples(shapes, '; ')})")
        raise CheckpointError(f"{file} does not match this {what}: {'; '.join(parts)}")
    return {k: v.astype(expected[k].dtype) if v.dtype != expected[k].dtype else v for k, v in loaded.items()}


def checked_tree(loaded: dict[str, mx.array], tree: Any, what: str, file: Path) -> Any:
    """`tree` (a parameter or state tree) with its arrays replaced by `loaded`, after checking that
    names and shapes match exactly (an error lists every missing, unexpected and mis-shaped one)."""
    return merge_flat(tree, check_arrays(loaded, flat(tree), what, file))


def merge_flat(tree: Any, flat_values: dict[str, mx.array]) -> Any:
    """`tree` with its array leaves replaced by `flat_values` (keyed like `tree_flatten`).

    Unlike `tree_unflatten`, this keeps the structure exactly, including the empty subtrees that
    parameter-free layers (Dropout) leave in parameter and optimizer-state trees: a compiled step
    must see the same structure after a resume as before.
    """
    return tree_map_with_path(lambda path, x: flat_values.get(path, x), tree)


def flat(tree: Any) -> dict[str, mx.array]:
    return {k: v for k, v in tree_flatten(tree) if isinstance(v, mx.array)}
