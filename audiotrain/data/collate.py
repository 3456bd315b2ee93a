"""Batch collation (numpy, runs in workers) and numpy -> MLX conversion (runs on the training thread)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

import numpy as np

# Narrowed on conversion to MLX: float64 is unsupported on GPUs and int64 labels/indices fit in int32. MLX has
# no long double (float128 on Linux: mx.array raised a bare "std::bad_cast"), so it narrows as float64 does.
_NARROW = {
    np.dtype(np.float64): np.float32,
    np.dtype(np.longdouble): np.float32,
    np.dtype(np.int64): np.int32,
    np.dtype(np.uint64): np.uint32,
}


def _is_mx_array(x: Any) -> bool:
    # Checked by module name so that workers never need to import mlx.
    return type(x).__module__.startswith("mlx") and hasattr(x, "__array__")


def default_collate(items: Sequence[Any], _path: str = "batch") -> Any:
    """Stack a list of samples into one batch of numpy arrays.

    Samples may be numpy arrays (or anything with ``__array__``: MLX arrays, torch tensors), numbers, bools,
    strings, or dicts / tuples / lists of these (nested).
    Arrays and numbers are stacked along a new leading axis; dicts (of the sample's mapping type, as in
    PyTorch), tuples (including namedtuples) and lists are collated field by field; strings and other objects
    become a list. A field whose samples are all MLX arrays stacks into one ``mx.array`` of their dtype
    (bfloat16 included, which numpy has not); MLX arrays mixed with other arrays go through numpy.

    Parameters
    ----------
    items : sequence
        The samples of one batch, all with the same structure.

    Returns
    -------
    The batch, with the structure of one sample and a leading batch axis on every array:
    ``[(x (T,), y int), ...]`` -> ``(x (B, T), y (B,))``.

    Raises
    ------
    ValueError
        If samples differ in structure, keys or array shape, or give one field a number or an array in some
        samples and text or None in others (a missing label, a number read from a CSV as text: numpy would
        turn the whole field into text or objects, where PyTorch's collate raises); the message names the
        field and the sample.
    """
    if len(items) == 0:
        raise ValueError("default_collate got an empty batch")
    first = items[0]
    stacked = _is_stacked(first)
    if stacked or isinstance(first, (str, bytes)) or first is None:
        for i, item in enumerate(items):
            # Text or None beside numbers or arrays (either way round); a list of numbers after an array
            # stacks with it, as in PyTorch.
            if _is_text_or_none(item) if stacked else _is_stacked(item):
                raise ValueError(
                    f"cannot collate {_path}: sample {i} is {_describe(item)}, but sample 0 is "
                    f"{_describe(first)}; every sample must give this field the same kind of value (a missing "
                    "value? a number read as text?)"
                )
    # Other array types (torch tensors from a TensorDataset, jax, cupy on host) through __array__.
    array_like = (
        hasattr(first, "__array__") and hasattr(first, "shape") and not isinstance(first, (str, bytes))
    )
    if isinstance(first, np.ndarray) or _is_mx_array(first) or array_like:
        # MLX arrays stack in MLX, keeping their dtype as a batch_size=None loader keeps it: numpy has no
        # bfloat16, and the batch is an mx.array in the end anyway.
        in_mlx = all(_is_mx_array(x) for x in items)
        arrays = list(items) if in_mlx else [as_numpy(x) for x in items]
        shapes = {tuple(a.shape) for a in arrays}
        if len(shapes) > 1:
            raise ValueError(
                f"cannot stack {_path}: samples have different shapes {sorted(shapes)}; pad them to one "
                f"shape in the dataset or cpu_transforms, or pass a collate_fn that pads"
            )
        if in_mlx:
            import mlx.core as mx  # (imported already: the samples are MLX arrays)

            # Computed here, on the thread that collates: a thread worker's arrays are graphs on that thread's
            # MLX streams, which the training thread cannot run ("There is no Stream(cpu, 0) in current
            # thread"); the numpy path computed them here too.
            stacked = mx.stack(arrays)
            mx.eval(stacked)
            return stacked
        return np.stack(arrays)
    if isinstance(first, (str, bytes)) or first is None:  # (np.str_ too: a list, as for str)
        return list(items)
    if isinstance(first, (bool, int, float, complex, np.generic)):
        try:
            return np.asarray(items)
        except ValueError:  # (looked for only then: a batch of numbers pays nothing for the message)
            for i, item in enumerate(items):
                # An array or list after a number: numpy's own error ("inhomogeneous shape") names no field.
                if not isinstance(item, (bool, int, float, complex, np.generic)) and np.ndim(item) != 0:
                    raise ValueError(
                        f"cannot collate {_path}: sample {i} is {_describe(item)}, but sample 0 is "
                        f"{_describe(first)}; every sample must give this field the same shape"
                    ) from None
            raise
    if isinstance(first, Mapping):
        keys = list(first.keys())
        for i, item in enumerate(items):
            if not isinstance(item, Mapping) or set(item.keys()) != set(keys):
                got = sorted(item.keys()) if isinstance(item, Mapping) else type(item).__name__
                raise ValueError(
                    f"sample {i} of {_path} has keys {got}, expected {sorted(keys)} like sample 0"
                )
        return _rebuild_mapping(
            first, {k: default_collate([d[k] for d in items], f"{_path}[{k!r}]") for k in keys}
        )
    if _is_sequence(first):
        n = len(first)
        for i, item in enumerate(items):
            if not _is_sequence(item):
                raise ValueError(
                    f"sample {i} of {_path} is a {type(item).__name__}, expected a "
                    f"{type(first).__name__} of {n} fields like sample 0"
                )
            if len(item) != n:
                raise ValueError(_lengths_differ(items, i, _path))
        fields = [default_collate([item[j] for item in items], f"{_path}[{j}]") for j in range(n)]
        if hasattr(first, "_fields"):  # namedtuple
            return type(first)(*fields)
        return type(first)(fields) if isinstance(first, tuple) else fields
    return list(items)


def _lengths_differ(items: Sequence[Any], i: int, path: str) -> str:
    """The message for lists or tuples of different lengths in one batch: which, how long, and the fix."""
    lengths = [len(item) if _is_sequence(item) else None for item in items]
    shown = str(lengths) if len(lengths) <= 16 else f"{str(lengths[:16])[:-1]}, ...]"
    what = "items" if isinstance(items[0], list) else "fields"
    return (
        f"sample {i} of {path} has {lengths[i]} {what}, expected {len(items[0])} like sample 0 (lengths "
        f"{shown} in this batch): default_collate stacks lists and tuples position by position, so they "
        f"must have one length. For sequences of varying length (token ids, labels), pad them to one length "
        f"in the dataset or cpu_transforms (an array then), or pass a collate_fn that pads them or keeps "
        f"them as lists"
    )


def _is_sequence(x: Any) -> bool:
    """Collated position by position: lists, tuples and other sequences (a ``range``, a ``UserList``), as
    PyTorch's collate takes every ``collections.abc.Sequence``; text is a leaf."""
    return isinstance(x, Sequence) and not isinstance(x, (str, bytes))


def _is_stacked(x: Any) -> bool:
    """A number or an array-like: what `default_collate` stacks into one numpy array (text is not)."""
    if isinstance(x, (str, bytes)):  # (np.str_ too, which is also an np.generic)
        return False
    return isinstance(x, (bool, int, float, complex, np.generic)) or (
        hasattr(x, "__array__") and hasattr(x, "shape")
    )


def _is_text_or_none(x: Any) -> bool:
    return x is None or isinstance(x, (str, bytes))


def _describe(x: Any) -> str:
    """A field's value in an error message: its type, and its value or shape."""
    if x is None:
        return "None"
    if hasattr(x, "shape") and not isinstance(x, np.generic):
        return f"{type(x).__name__} of shape {tuple(x.shape)}"
    shown = repr(x)
    return f"{type(x).__name__} {shown if len(shown) <= 40 else shown[:37] + '...'}"


def default_convert(item: Any) -> Any:
    """The ``collate_fn`` of a loader with ``batch_size=None``: one item, already a batch, is not stacked.

    Array-likes other than numpy and MLX arrays (torch tensors) become numpy arrays, field by field through
    dicts, tuples and lists; everything else is kept as it is. As for batches, numpy leaves become
    ``mx.array`` afterwards, on the training thread (PyTorch's ``default_convert`` makes them tensors).
    """
    if isinstance(item, np.ndarray) or _is_mx_array(item):
        return item
    if hasattr(item, "__array__") and hasattr(item, "shape"):
        return as_numpy(item)
    if isinstance(item, Mapping):
        return _rebuild_mapping(item, {k: default_convert(v) for k, v in item.items()})
    if isinstance(item, tuple):
        fields = [default_convert(v) for v in item]
        return type(item)(*fields) if hasattr(item, "_fields") else tuple(fields)
    if isinstance(item, list):
        return [default_convert(v) for v in item]
    return item


def to_mlx(batch: Any, _path: str = "batch") -> Any:
    """Convert every numpy leaf of a batch to ``mx.array`` (float64 and long double -> float32, int64 ->
    int32, uint64 -> uint32).

    Dicts, tuples, namedtuples and lists are rebuilt with the same structure; ``mx.array`` leaves pass
    through; strings and other objects are kept as they are. Numeric arrays of other dtypes keep their dtype.

    Raises
    ------
    ValueError
        If an int64 (uint64) array holds values outside int32 (uint32), naming the field.
    """
    import mlx.core as mx

    if isinstance(batch, (str, bytes)):  # (np.str_ too: text stays text)
        return batch
    if isinstance(batch, (np.ndarray, np.generic)):
        arr = np.asarray(batch)
        if arr.dtype.kind not in "biuf":
            if arr.dtype.kind == "c":
                return mx.array(arr.astype(np.complex64))
            return arr  # strings / objects stay numpy; compute_loss cannot use them in a compiled graph
        target = _NARROW.get(arr.dtype)
        if target is not None:
            if arr.dtype.kind in "iu" and arr.size:
                info = np.iinfo(target)
                lo, hi = arr.min(), arr.max()
                if lo < info.min or hi > info.max:
                    raise ValueError(
                        f"{_path} holds {arr.dtype} values in [{lo}, {hi}], outside {np.dtype(target).name}; "
                        f"convert it yourself with mlx_transforms"
                    )
            arr = arr.astype(target)
        return mx.array(arr)
    if _is_torch_tensor(batch):  # (a collate_fn of the user's that builds torch tensors: pad_sequence)
        return to_mlx(as_numpy(batch), _path)
    if isinstance(batch, Mapping):
        return _rebuild_mapping(batch, {k: to_mlx(v, f"{_path}[{k!r}]") for k, v in batch.items()})
    if isinstance(batch, tuple):
        fields = [to_mlx(v, f"{_path}[{i}]") for i, v in enumerate(batch)]
        return type(batch)(*fields) if hasattr(batch, "_fields") else tuple(fields)
    if isinstance(batch, list):
        return [to_mlx(v, f"{_path}[{i}]") for i, v in enumerate(batch)]
    return batch


def _is_torch_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach") and hasattr(x, "numpy")


def as_numpy(x: Any) -> np.ndarray:
    """An array-like as a numpy array: a torch tensor detached from its graph and moved to the CPU, its
    bfloat16 (which numpy has not) as float32, an MLX bfloat16 array as float32 too; anything else through
    ``np.asarray``."""
    if _is_torch_tensor(x):
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        return x.numpy()
    if _is_mx_array(x) and str(x.dtype) == "mlx.core.bfloat16":
        import mlx.core as mx  # (imported already: x is an MLX array)

        x = x.astype(mx.float32)
    return np.asarray(x)


def _rebuild_mapping(original: Mapping, values: dict) -> Mapping:
    """A mapping of the original's type (OrderedDict, a dict subclass) when it can be built from a dict; a
    mutable one that cannot (a defaultdict) is copied and refilled, as torch's collate does, keeping its
    default. (Not torch's plain `update` on the copy: a Counter would add the batch to its first sample.)"""
    if type(original) is dict:
        return values
    try:
        return type(original)(values)
    except TypeError:
        if not isinstance(original, MutableMapping):
            return values
    try:
        clone = copy.copy(original)
        clone.clear()
        clone.update(values)
    except Exception:  # (a mapping that cannot be copied: a plain dict, as before)
        return values
    return clone
