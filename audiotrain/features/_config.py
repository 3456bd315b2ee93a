"""What the feature configs (`CQTConfig`, `MelConfig`) share: dict round trip and a stable cache key."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import fields
from typing import Any


class FeatureConfigMixin:
    """For frozen dataclasses whose `to_dict()` returns their fields plus ``"kind"``."""

    def to_dict(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: dict):
        data = {k: v for k, v in data.items() if k != "kind"}
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {sorted(unknown)}")
        return cls(**data)

    def key(self) -> str:
        """A stable 16-hex-digit hash of the settings (same settings, same key, across processes; numbers as
        their fields' types, `key_settings`)."""
        return hashlib.sha256(json.dumps(key_settings(self), sort_keys=True).encode()).hexdigest()[:16]


def key_settings(config) -> dict[str, Any]:
    """`config.to_dict()` with each number written as its field's annotated type: an int in a float field
    as a float, an int-valued float in an int field as an int. `MelConfig(sr=22050.0)` equals `MelConfig()`
    (and a config file's ``fmin: 0`` the default ``0.0``), but json writes 22050.0 and 22050 apart: equal
    configs would fill two cache folders. The defaults hold their fields' types, so their keys are the ones
    written before this rule."""
    settings = config.to_dict()
    for f in fields(config):
        if f.name in settings:
            settings[f.name] = _as_annotated(settings[f.name], str(f.type))
    return settings


def _as_annotated(value: Any, annotation: str) -> Any:
    names = set(re.findall(r"\w+", annotation))
    if "float" in names and "int" not in names:
        number = float
    elif "int" in names and "float" not in names:
        number = int
    else:
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_as_number(v, number) for v in value)
    return _as_number(value, number)


def _as_number(value: Any, number: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if number is float:
        return float(value)
    return int(value) if isinstance(value, float) and value.is_integer() else value
