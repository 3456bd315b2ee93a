"""The numbers the Trainer reports (`callback_metrics`, `logged_metrics`, `progress_bar_metrics`, what
`validate`/`test` return): plain numbers that also answer Lightning's tensor idiom,
`trainer.callback_metrics["val_loss"].item()` (a sweep script or Optuna's pruning callback reads them so).
YAML (`yaml.safe_dump`) writes them as the numbers they are.

`Metrics` may also hold a training step's logged values before anyone has read them (`set_pending`): the
step's arrays, which the device may still be computing. Reading one (`m["loss"]`, `get`, `items()`,
`values()`, `dict(m)`, ...) makes it a number then; a batch nobody reads pays no host sync."""

from __future__ import annotations

from typing import Any

import mlx.core as mx


class MetricValue(float):
    """A float with the tensor methods Lightning code calls on a metric: `item()` and `tolist()`."""

    __slots__ = ()

    def item(self) -> float:
        return float(self)

    def tolist(self) -> float:
        return float(self)


class MetricCount(int):
    """An int metric (`epoch`, `skipped_steps`) with `item()` and `tolist()`, as a tensor has them."""

    __slots__ = ()

    def item(self) -> int:
        return int(self)

    def tolist(self) -> int:
        return int(self)


def metric_value(value: Any) -> Any:
    """A float as a `MetricValue`, an int as a `MetricCount`; anything else (a bool, None) as it is."""
    if type(value) is float:
        return MetricValue(value)
    if type(value) is int:
        return MetricCount(value)
    return value


class _Pending:
    """A step's logged value not read yet: its array, maybe still being computed."""

    __slots__ = ("array",)

    def __init__(self, array: mx.array):
        self.array = array


class Metrics(dict):
    """A dict of metrics whose numbers answer `.item()`, however they are set; pending values
    (`set_pending`) become numbers where they are read."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.update(*args, **kwargs)

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, metric_value(value))

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> Metrics:  # type: ignore[override,misc]
        self.update(other)
        return self

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def copy(self) -> Metrics:
        return Metrics(self)

    def set_pending(self, arrays: dict[str, mx.array]) -> None:
        """Hold `arrays` (name → a scalar mx.array, maybe still running) as these names' values, read (one
        host sync for all of them) only when a value is: the Trainer's callback_metrics gets each
        training step's logged values so, at every batch, at no cost to a batch nobody reads them in."""
        for key, array in arrays.items():
            dict.__setitem__(self, key, _Pending(array))

    def _settle(self, keys: Any = None) -> None:
        """The pending values among `keys` (default: all) as numbers."""
        keys = dict.keys(self) if keys is None else keys
        pending = {k: v.array for k in keys if type(v := dict.get(self, k)) is _Pending}
        if pending:
            mx.eval(list(pending.values()))
            for key, array in pending.items():
                self[key] = float(array.item())

    # Every way of reading a value goes through `_settle` (`__iter__` too: `dict(m)` and `{**m}` then read
    # through `__getitem__`, not dict's storage). Keys, `in` and `len` need no value.
    def __getitem__(self, key: str) -> Any:
        if type(dict.get(self, key)) is _Pending:
            self._settle((key,))
        return dict.__getitem__(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def __iter__(self):
        return dict.__iter__(self)

    def items(self):  # type: ignore[override]
        self._settle()
        return dict.items(self)

    def values(self):  # type: ignore[override]
        self._settle()
        return dict.values(self)

    def pop(self, key: str, *default: Any) -> Any:
        self._settle((key,))
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[str, Any]:
        self._settle()
        return dict.popitem(self)

    def __eq__(self, other: object) -> bool:
        self._settle()
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        self._settle()
        return dict.__repr__(self)

    def __or__(self, other: Any) -> Metrics:  # type: ignore[override]
        out = self.copy()
        out.update(other)
        return out

    def __ror__(self, other: Any) -> dict:  # type: ignore[override]
        return {**other, **self}


def _teach_yaml() -> None:
    """yaml's safe dumper takes exact types only: without this `yaml.safe_dump(trainer.test(...))` fails."""
    try:
        import yaml
    except ImportError:  # pragma: no cover (a dependency through the loggers; not needed here)
        return
    for dumper in (yaml.SafeDumper, yaml.Dumper):
        dumper.add_representer(MetricValue, lambda d, v: d.represent_float(float(v)))
        dumper.add_representer(MetricCount, lambda d, v: d.represent_int(int(v)))
        dumper.add_representer(Metrics, lambda d, v: d.represent_dict(dict(v)))


_teach_yaml()
