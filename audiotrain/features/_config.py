"""What the feature configs (`CQTConfig`, `MelConfig`) share: dict round trip and a stable cache key."""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields


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
        """A stable 16-hex-digit hash of the settings (same settings, same key, across processes)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]
