"""Arrays in a checkpoint's JSON state, kept as arrays (Lightning's torch.save gives tensors back as tensors).

A callback's ``state_dict()`` or ``on_save_checkpoint``, a module's ``on_save_checkpoint`` and a DataModule's
``state_dict()`` may hold arrays (a Lightning EMA callback keeps its shadow weights there). trainer_state.json
stays readable JSON: each such array is written there as a small description, ``{"saved_array": "3",
"type": "mlx.array", "dtype": "float32", "shape": [4, 2]}``, its data in `ARRAYS_FILE` (safetensors, never
pickle) under that name, and the description's place listed under `ARRAYS_ENTRY`. Reading the state puts
the arrays back, bit for bit: an `mx.array` as an `mx.array`, a numpy array as a numpy array of its dtype.

An `mx.array` is stored as itself (safetensors holds its dtype). A numpy array, and an `mx.array` of a dtype
safetensors cannot hold (float64), is stored as its raw bytes (uint8) with its numpy dtype in the
description: float64, complex128 and byte order come back exact. A numpy array of strings or objects is
written as a list, as before; a numpy number (``np.float32(0.5)``) and a 0-d array (``mx.array(0.25)``, a loss
kept in a history) as the number, as before: a history of 10,000 such losses as arrays made each save write
10,000 tensors and their descriptions (0.85 s and 1.6 MB where the numbers take 48 ms). A checkpoint written
before this holds lists where arrays were, and they load as lists.
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import numpy as np

#: The checkpoint's file of the arrays found in its JSON state (written only where there are any).
ARRAYS_FILE = "state_arrays.safetensors"
#: The entry of trainer_state.json listing where each array's description is (a path of keys and indices).
ARRAYS_ENTRY = "arrays_in_state"
_MLX, _NUMPY = "mlx.array", "numpy.ndarray"
_PLAIN = {int, float, str, bool, type(None)}


def take_arrays(state: dict[str, Any], keys: list[str]) -> dict[str, mx.array]:
    """Replace the arrays under `state[key]` for each of `keys` by their descriptions, and return their data
    by name (for `ARRAYS_FILE`). Containers holding an array are copied, never changed: a callback's state
    may be its live dict. `state[ARRAYS_ENTRY]` lists the places; nothing is added where there is no array."""
    tensors: dict[str, mx.array] = {}
    places: list[list[Any]] = []
    for key in keys:
        if key in state:
            state[key] = _without_arrays(state[key], [key], tensors, places)
    if places:
        state[ARRAYS_ENTRY] = places
    return tensors


def _is_kept_array(value: Any) -> bool:
    # (a 0-d array is left to the JSON state, which gives back the number it holds)
    if isinstance(value, mx.array):
        return value.ndim > 0
    return isinstance(value, np.ndarray) and value.ndim > 0 and value.dtype.kind in "biufc"


def _without_arrays(value: Any, path: list[Any], tensors: dict[str, mx.array], places: list) -> Any:
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    elif _is_kept_array(value):
        name = str(len(tensors))
        tensors[name], description = _stored(value)
        places.append(path)
        return {"saved_array": name, **description}
    else:
        return value
    # A container of plain values only (most of a state: scores, names) is passed over at C speed.
    if set(map(type, value.values() if isinstance(value, dict) else value)) <= _PLAIN:
        return value
    changed = {}
    for key, item in items:
        if isinstance(item, (dict, list, mx.array, np.ndarray)):
            new = _without_arrays(item, [*path, key], tensors, places)
            if new is not item:
                changed[key] = new
    if not changed:
        return value
    if isinstance(value, dict):
        return {**value, **changed}
    return [changed.get(i, item) for i, item in enumerate(value)]


def _stored(value: Any) -> tuple[mx.array, dict[str, Any]]:
    """The tensor to write for the array `value`, and its description in the JSON state."""
    shape = list(value.shape)
    if isinstance(value, mx.array) and value.dtype != mx.float64:
        return value, {"type": _MLX, "dtype": str(value.dtype).removeprefix("mlx.core."), "shape": shape}
    data = np.ascontiguousarray(np.asarray(value))
    kind = _MLX if isinstance(value, mx.array) else _NUMPY
    return mx.array(data.reshape(-1).view(np.uint8)), {
        "type": kind,
        "bytes_of": data.dtype.str,
        "shape": shape,
    }


def put_back_arrays(state: dict[str, Any], read: Any, file: Any, error: type[Exception]) -> None:
    """Put the arrays `take_arrays` described back into `state` (read from JSON), each where its description
    is. `read()` gives `ARRAYS_FILE`'s tensors by name (called only where the state lists any); a description
    or tensor that is missing or does not match is refused with `error`, naming `file` and the place."""
    places = state.pop(ARRAYS_ENTRY, None)
    if not places:
        return  # (a checkpoint of a run without arrays in its state, or written before: lists stay lists)
    tensors = read()
    for path in places:
        node = state
        try:
            for step in path[:-1]:
                node = node[step]
            description = node[path[-1]]
            node[path[-1]] = _loaded(description, tensors)
        except (KeyError, IndexError, TypeError, ValueError) as err:
            where = "".join(f"[{step!r}]" for step in path) if isinstance(path, list) else repr(path)
            raise error(f"{file}: the array of the state at {where} cannot be read back ({err})") from None


def _loaded(description: dict[str, Any], tensors: dict[str, mx.array]) -> Any:
    tensor = tensors[description["saved_array"]]
    shape = tuple(description["shape"])
    if "bytes_of" not in description:
        if str(tensor.dtype).removeprefix("mlx.core.") != description["dtype"] or tensor.shape != shape:
            raise ValueError(
                f"expected {description['dtype']} {list(shape)}, the file holds {tensor.dtype} "
                f"{list(tensor.shape)}"
            )
        return tensor
    data = np.frombuffer(np.asarray(tensor).tobytes(), dtype=np.dtype(description["bytes_of"]))
    data = data.reshape(shape).copy()  # (a writable array of its own, as the one saved)
    if description["type"] == _MLX:
        return mx.array(data, dtype=getattr(mx, data.dtype.name))
    return data
