"""`LazyScalar`: a step result handed to callbacks without forcing a host sync.

Callbacks receive `outputs["loss"]` every batch. Converting it to a float would sync with the
device every step; wrapping it lets a callback that only formats it every 100 steps pay for the
sync only then (`f"{outputs['loss']:.4f}"`, `float(...)`, comparisons all work).
"""

from __future__ import annotations

import mlx.core as mx


class LazyScalar:
    __slots__ = ("_array", "_value")

    def __init__(self, array: mx.array):
        self._array = array
        self._value: float | None = None

    @property
    def array(self) -> mx.array:
        return self._array

    def item(self) -> float:
        if self._value is None:
            self._value = float(self._array.item())
        return self._value

    def __float__(self) -> float:
        return self.item()

    def __format__(self, spec: str) -> str:
        return format(self.item(), spec)

    def __repr__(self) -> str:
        return f"LazyScalar({self.item():.6g})"

    def __lt__(self, other) -> bool:
        return self.item() < float(other)

    def __le__(self, other) -> bool:
        return self.item() <= float(other)

    def __gt__(self, other) -> bool:
        return self.item() > float(other)

    def __ge__(self, other) -> bool:
        return self.item() >= float(other)

    def __eq__(self, other) -> bool:
        try:
            return self.item() == float(other)
        except (TypeError, ValueError):
            return NotImplemented

    def __hash__(self) -> int:
        return hash(self.item())
