"""The arguments a user passes to the Python API: checks, where pathlib and friends would answer with an
error that names no argument (`Path(None)`: "expected str, bytes or os.PathLike object, not NoneType"), and
the settings a user set, as the objects' `repr` shows them."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def path_argument(value: object, owner: str, name: str) -> Path:
    """`value`, argument `name` of `owner` (a class or function), as a Path; else a TypeError naming both:
    "Trainer(default_root_dir=123): expected a path (a str or os.PathLike), got int"."""
    if isinstance(value, str | os.PathLike):
        return Path(value)
    raise TypeError(
        f"{owner}({name}={value!r}): expected a path (a str or os.PathLike), got {type(value).__name__}"
    )


def home_expanded(path: str | os.PathLike) -> Path:
    """`path` with a leading ``~`` as the home folder, where the path as given starts with it: Path's own
    `expanduser` also takes ``./~/runs`` for ``~/runs`` (Path drops the ``./``), so a folder named ``~`` in
    the working folder, asked for by that spelling (as Lightning's ModelCheckpoint reads it), became the
    home's.
    Such a path comes back absolute, since no relative Path can tell it from the home's spelling."""
    expanded = Path(os.path.expanduser(os.fspath(path)))
    if expanded.parts and expanded.parts[0].startswith("~"):
        return Path.cwd() / expanded
    return expanded


def folder_argument(value: object, owner: str, name: str) -> Path:
    """`path_argument`, for a folder that is made later if it is not there: refused now where it, or a folder
    above it, is a file, which would otherwise fail only when the first file is written into it (a logger
    then turns itself off and the run trains unlogged). As `ModelCheckpoint(dirpath=...)`'s: "CSVLogger(
    save_dir='notes.txt'): notes.txt is a file, not a folder". A leading ``~`` is the home folder, as in
    Trainer(default_root_dir=...) and ModelCheckpoint(dirpath=...): left as it is, the files would go into a
    folder named ``~`` in the working folder."""
    path = home_expanded(value if isinstance(value, str) else path_argument(value, owner, name))
    for place in (path, *path.parents):
        if place.is_dir():
            break
        if place.exists() or place.is_symlink():
            made = "" if place == path else f", so {path} cannot be made there"
            raise NotADirectoryError(f"{owner}({name}={str(value)!r}): {place} is a file, not a folder{made}")
    return path


def resolved_path(path: str | os.PathLike, what: str) -> Path:
    """`path` made absolute (`Path.resolve`, after ``~``). Where it is relative and the current folder no
    longer exists (deleted under the shell that started the process), a FileNotFoundError saying so and
    naming `what`, in place of Python's bare "[Errno 2] No such file or directory", which names nothing."""
    path = home_expanded(path)
    try:
        return path.resolve()
    except FileNotFoundError as error:
        if error.filename is not None or path.is_absolute():
            raise
        raise FileNotFoundError(
            f"the current directory no longer exists (deleted?), and {what} {str(path)!r} is relative to "
            "it: cd to an existing folder or give absolute paths"
        ) from None


def changed_arguments(function: Callable, arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a call to `function` (`arguments`: its ``locals()`` before anything else is bound)
    that differ from the signature's defaults, in the signature's order, a ``**kwargs``' own included: the
    settings a user set, for a `repr`."""
    changed = {}
    for name, parameter in inspect.signature(function).parameters.items():
        if name == "self" or name not in arguments:
            continue
        value = arguments[name]
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            changed.update(value)
        elif not _same(value, parameter.default):
            changed[name] = value
    return changed


def _same(value: Any, default: Any) -> bool:
    if value is default:
        return True
    try:  # (an array's == is not a bool)
        return type(value) is type(default) and bool(value == default)
    except (TypeError, ValueError):
        return False


def settings_repr(owner: str, settings: dict[str, Any], *leading: str) -> str:
    """``owner(leading..., name=value, ...)`` on one line, each value short (`short_repr`)."""
    named = [f"{name}={short_repr(value)}" for name, value in settings.items()]
    return f"{owner}({', '.join([*leading, *named])})"


def short_repr(value: Any, limit: int = 60) -> str:
    """`value`'s repr, short: a float to 4 digits; a str or a path in full; an object of Python's default
    repr (``<... object at 0x...>``) or one longer than `limit` as its class's name, and so the objects in a
    list or tuple (the Trainer's callbacks, loggers)."""
    if isinstance(value, list | tuple):
        inner = ", ".join(short_repr(v, limit) if _plain(v) else type(v).__name__ for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, float):
        return repr(float(f"{value:.4g}"))
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    text = repr(value)
    if isinstance(value, str):  # (a path, a name: in full)
        return text
    if text.startswith("<") or len(text) > limit:
        return type(value).__name__
    return text


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str | os.PathLike)
