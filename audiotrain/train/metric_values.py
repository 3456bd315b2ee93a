"""The numbers the Trainer reports (`callback_metrics`, `logged_metrics`, `progress_bar_metrics`, what
`validate`/`test` return): plain numbers that also answer Lightning's tensor idiom,
`trainer.callback_metrics["val_loss"].item()` (a sweep script or Optuna's pruning callback reads them so).
YAML (`yaml.safe_dump`) writes them as the numbers they are."""

from __future__ import annotations

from typing import Any


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


class Metrics(dict):
    """A dict of metrics whose numbers answer `.item()`, however they are set."""

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
