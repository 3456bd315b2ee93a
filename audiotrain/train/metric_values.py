"""The numbers the Trainer reports (`callback_metrics`, `logged_metrics`, what `validate`/`test` return):
floats that also answer Lightning's tensor idiom, `trainer.callback_metrics["val_loss"].item()` (a sweep
script or Optuna's pruning callback reads them so)."""

from __future__ import annotations

from typing import Any


class MetricValue(float):
    """A float with the tensor methods Lightning code calls on a metric: `item()` and `tolist()`."""

    __slots__ = ()

    def item(self) -> float:
        return float(self)

    def tolist(self) -> float:
        return float(self)


def metric_value(value: Any) -> Any:
    """A float as a `MetricValue`; anything else (an int, None) as it is."""
    return MetricValue(value) if type(value) is float else value


class Metrics(dict):
    """A dict of metrics whose float values are `MetricValue`s, however they are set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.update(*args, **kwargs)

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, metric_value(value))

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def copy(self) -> Metrics:
        return Metrics(self)
