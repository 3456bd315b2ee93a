"""A configuration dataclass given as an argument, or a dict of its fields in its place.

Recipe configs take a section as a dict (`audiotrain.recipes.config_cli.settle_fields`); the functions and
classes below the recipes that take a config (`ChordSongDataset`, the chord decoder) take one the same way
here, so that a user's dict is read as the config or refused by name, not kept to fail at first use.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any, TypeVar

Config = TypeVar("Config")


def config_argument(cls: type[Config], value: Any, where: str) -> Config:
    """`value` as a `cls` (a dataclass): itself, or ``cls(**value)`` for a dict of its fields. An unknown
    field (with the closest name), a missing required one, or another type is refused naming `where`
    (``"ChordSongDataset(config=...)"``); the dataclass's own checks name a bad value."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(
            f"{where}: expected a {cls.__name__} (or a dict of its fields), got {type(value).__name__}"
        )
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields if f.init]
    for key in value:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{where}: unknown field {key!r}{hint} (expected one of {names})")
    missing = [
        f.name
        for f in fields
        if f.init
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
        and f.name not in value
    ]
    if missing:
        raise ValueError(f"{where}: the dict needs {', '.join(map(repr, missing))}")
    return cls(**value)
