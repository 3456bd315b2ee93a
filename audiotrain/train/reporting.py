"""How a fit's means are named for the history, the callbacks and the loggers (pure functions of the means
and the options `self.log` gave), and the history's JSON export.

Returned loss and metrics (`train_loss`, `train_acc`) go everywhere: the interval means to the loggers at
each logging step, the epoch means to the history and `callback_metrics`, and to the loggers as
`train_<name>_epoch` (Lightning's suffix: the epoch's last step already logged `train_<name>`). A value
logged with `self.log` follows its `on_step` / `on_epoch` / `logger` options (see `outputs.LogOptions`).
`callback_metrics` also holds every epoch mean under the name the loggers get (`train_loss_epoch`,
`<name>_epoch`), as Lightning's holds `name`, `name_step` and `name_epoch`, so any of them can be monitored.

A value logged under a returned value's name (`self.log("train_loss", loss)`, Lightning's habit) replaces
it: its options decide what the loggers get, and its epoch mean keeps the returned value's place in the
history and `callback_metrics` whatever its `on_epoch` (adding the line does not take the training curve
out of `history.json`).
"""

from __future__ import annotations

import contextlib
import math
import operator
import os
from pathlib import Path
from typing import Any

from audiotrain._files import json_text, read_json_file, write_export
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.history_csv import write_history_csv
from audiotrain.train.lazy import LazyScalar
from audiotrain.train.outputs import LogOptions, metric_object_hint

import mlx.core as mx
import numpy as np


def interval_values(means: dict[str, float], options: dict[str, LogOptions]) -> tuple[dict, dict]:
    """(for the loggers, for callback_metrics) from one logging interval's means."""
    to_loggers, to_callbacks = {}, {}
    for k, v in means.items():
        if k not in options:
            to_loggers[k] = to_callbacks[k] = v
        elif options[k].on_step:
            # `name_step` too, whatever `logger` (Lightning's callback_metrics in training): a monitor of it
            # must not depend on whether the loggers get it.
            to_callbacks[k] = to_callbacks[options[k].step_name(k)] = v
            if options[k].logger:
                to_loggers[options[k].step_name(k)] = v
    return to_loggers, to_callbacks


def epoch_values(means: dict[str, float], options: dict[str, LogOptions]) -> dict[str, float]:
    """An epoch's means as the history and callbacks name them (values logged per step only are left out,
    unless logged under a returned value's name: module docstring)."""
    return {
        k: v
        for k, v in means.items()
        if k not in options or options[k].on_epoch or options[k].replaces_returned
    }


def epoch_log_values(
    means: dict[str, float], options: dict[str, LogOptions], for_loggers: bool = True
) -> dict[str, float]:
    """The same means as the loggers get them at the epoch's end (`train_loss_epoch`, ...); with
    `for_loggers=False` also those logged with `logger=False` (`callback_metrics` holds them)."""
    out = {}
    for k, v in means.items():
        if k not in options:
            out[f"{k}_epoch"] = v
        elif options[k].on_epoch and (options[k].logger or not for_loggers):
            out[options[k].epoch_name(k)] = v
    return out


def epoch_callback_values(means: dict[str, float], options: dict[str, LogOptions]) -> dict[str, float]:
    """What `callback_metrics` gets at an epoch's end: the history's names and the loggers' (`loss` and
    `loss_epoch` for `self.log("loss", ..., on_step=True, on_epoch=True)`), as in Lightning, so that
    `ModelCheckpoint(monitor="loss_epoch")` finds the epoch mean."""
    return {**epoch_values(means, options), **epoch_log_values(means, options, for_loggers=False)}


def checked_hook_value(owner: str, name: str, value: Any) -> Any:
    """A value `self.log` got in a hook (outside a step), refused now if it is no number or one-element
    array, so that the error points at the user's line rather than the next logging point. mx arrays stay
    lazy (reading one is a host sync, left to the logging point); numpy values become floats."""
    try:
        if isinstance(value, LazyScalar):
            return value
        if isinstance(value, (mx.array, np.ndarray, np.generic)):
            if value.size != 1:
                raise ValueError(f"an array of shape {tuple(value.shape)}")
            return value if isinstance(value, mx.array) else float(value.item())
        # float("1.5") would read text: Lightning refuses a str, as a step here does
        if isinstance(value, (str, bytes)):
            raise TypeError(f"{type(value).__name__} values cannot be logged")
        return float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{owner}.log({name!r}, ...): expected a number or a scalar array, got {value!r:.60} ({err})"
            f"{metric_object_hint(value)}"
        ) from None


@contextlib.contextmanager
def explain_kept_step_arrays(where: str):
    """Turn MLX's "eval an array without a primitive" into what happened: an array made inside a compiled
    step was kept past it (Lightning 2's `self.validation_step_outputs.append(loss)`) and read later. In
    the trace it is a placeholder with no value of its own; MLX's message suggests a bug in MLX."""
    try:
        yield
    except RuntimeError as err:
        if "without a primitive" not in str(err):
            raise
        raise RuntimeError(
            f"{where}: it reads an array computed inside a compiled step and kept after it (e.g. Lightning's "
            "self.validation_step_outputs.append(loss) in validation_step, stacked in "
            "on_validation_epoch_end). Inside mx.compile such an array is a placeholder of the traced graph "
            "and has no value once the step has run. Return the value as a metric of the step, or log it "
            "there with self.log(name, value, on_epoch=True): the Trainer averages it over the epoch or "
            "the loader, weighted by batch size. Per-sample values (scores for ROC-AUC or mAP): return them "
            "in a dict from validation_step / test_step ({'preds': scores, 'target': y}), which "
            "on_validation_batch_end(outputs, batch, batch_idx) gets as arrays to keep. Or pass "
            "Trainer(compile=False)"
        ) from None


#: The first bytes of every history `write_history` writes: the opening brace and JSON whitespace, which
#: every JSON reader skips (the file holds the same columns for them). `_is_history` knows an export of its
#: own by these bytes alone, whatever its size: parsing the earlier export made each `export_history` of a
#: long run cost as much as reading all of it back.
EXPORT_MARK = b"{ \t \t\n"

#: The largest earlier file without `EXPORT_MARK` (an export from before it) that `_is_history` parses to
#: tell whether it is a history: a larger one (a user's data, most likely) is not read into memory.
PARSED_AT_MOST = 64 * 1024 * 1024


def write_history(columns: dict[str, list], path: str | os.PathLike, *, overwrite: bool) -> Path:
    """Write the history's columns as JSON (CSV for a `.csv` path: `history_csv`), atomically (a crash leaves
    the old file or the new one). A NaN
    (an accuracy over no frame) is written as null, as in scores.json (`read_history` reads it back). The
    file starts with `EXPORT_MARK`.

    An existing file at `path` is replaced with `overwrite`, or where it is itself a history this wrote
    (`_is_history`: a script run again, as the README's example is); any other file
    is a `FileExistsError` naming it and ``overwrite=True``, as `export_history`, the public writer, is told; a
    folder there is an `IsADirectoryError` (`write_given_path`)."""
    path = Path(path).expanduser()  # (~ as Trainer(default_root_dir=) and checkpoint paths read it)
    if path.suffix.lower() == ".csv":  # (pandas.read_csv, a spreadsheet: one row per epoch)
        return write_history_csv(columns, path, overwrite=overwrite)
    overwrite = overwrite or _is_history(path)
    text = _history_json(columns, path)
    data = EXPORT_MARK + text.removeprefix("{").lstrip("\n").encode()
    return write_export(
        path, data, overwrite, lambda: _is_history(path), writer="export_history", example="history.json"
    )


#: Immutable values whose JSON text depends on nothing but themselves: an exported value of these kinds,
#: still the same object at the next export, is written as before.
_PLAIN = (float, int, str, bool, type(None))

#: For each path `write_history` wrote (a few at most, the latest kept): per column, the values it exported
#: and their JSON texts. An export every epoch then encodes only the epochs added or changed since the
#: previous one: encoding every value again made each export of a long run cost more than its epoch (123 ms
#: at 10,000 epochs), the run's exports growing with the square of its epochs.
_EXPORTED: dict[str, dict[str, tuple[list, list[str]]]] = {}
_EXPORTED_PATHS_KEPT = 4


def _history_json(columns: dict[str, list], path: Path) -> str:
    """`json_text(columns)` (indent 1, non-finite floats as null), built from each value's own text and
    reusing the texts of the values the previous export to `path` wrote, where the column starts with the
    very same objects. Columns of other keys or values than plain ones are encoded whole, as before."""
    if not all(isinstance(name, str) for name in columns):
        return json_text(columns, default=ckpt._json_default)
    key = os.path.abspath(path)
    earlier = _EXPORTED.pop(key, {})
    exported: dict[str, tuple[list, list[str]]] = {}
    parts = []
    for name, values in columns.items():
        values = list(values)
        if not all(type(v) in _PLAIN for v in values):
            return json_text(columns, default=ckpt._json_default)
        done, texts = earlier.get(name, ([], []))
        kept = len(done) if len(done) <= len(values) and all(map(operator.is_, done, values)) else 0
        texts = texts[:kept] + [json_text(v, indent=None) for v in values[kept:]]
        exported[name] = (values, texts)
        items = ",\n".join("  " + text for text in texts)
        parts.append(f" {json_text(name)}: " + (f"[\n{items}\n ]" if texts else "[]"))
    _EXPORTED[key] = exported
    while len(_EXPORTED) > _EXPORTED_PATHS_KEPT:
        del _EXPORTED[next(iter(_EXPORTED))]
    return "{\n" + ",\n".join(parts) + "\n}" if parts else "{}"


def _is_history(path: Path) -> bool:
    """Whether `path` holds a history `Trainer.export_history` wrote (then not something a user made): one
    that starts with `EXPORT_MARK` (read alone), or, written before it, a JSON object of columns of one
    length, among them ``epoch``, ``step`` and ``time``, which every row of `Trainer.history` has (a Keras
    history, ``{}`` or a list of classes is not one), of at most `PARSED_AT_MOST` bytes."""
    try:
        if not path.is_file():
            return False
        if is_marked_export(path):
            return True
        if path.stat().st_size > PARSED_AT_MOST:
            return False
        columns = read_history(path)
    except (ValueError, OSError):
        return False
    lengths = {len(values) for values in columns.values()}
    return {"epoch", "step", "time"} <= columns.keys() and len(lengths) == 1


def is_marked_export(path: str | os.PathLike) -> bool:
    """Whether the file `path` starts with `EXPORT_MARK`: a history `write_history` wrote (its first bytes
    read, nothing more). `OSError` where it cannot be read."""
    with open(path, "rb") as file:
        return file.read(len(EXPORT_MARK)) == EXPORT_MARK


def read_history(path: str | os.PathLike) -> dict[str, list]:
    """The columns `write_history` wrote to `path`, each null read back as NaN: the history of a run that
    validated every epoch (a recipe's) has a value for every key in every epoch, so its nulls were NaN, and
    a resumed run's history then equals an uninterrupted one's. (A history with epochs that lack a key,
    None in `Trainer.history`, also reads those as NaN.) `ValueError` naming the file if unreadable."""
    columns = read_json_file(Path(path), ValueError)
    if not isinstance(columns, dict) or not all(isinstance(v, list) for v in columns.values()):
        raise ValueError(f"{path}: not a history (an object of columns, each a list)")
    return {key: [math.nan if v is None else v for v in values] for key, values in columns.items()}
