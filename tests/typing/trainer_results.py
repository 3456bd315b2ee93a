"""What a Trainer gives back: `predict` a list (None with `return_predictions=False`), `datamodule` the
object `fit` was given (read as the user's own class), `parameters().values()` the arrays; and the
per-class metrics, a TypedDict of arrays and floats."""

from typing import Any

from audiotrain import DataModule, Trainer, TrainModule
from audiotrain.metrics import MetricsTracker, PerClassMetrics, compute_per_class_metrics

import mlx.core as mx
import numpy as np
from typing_extensions import assert_type


def predictions(trainer: Trainer, model: TrainModule, loader: Any, keep: bool) -> None:
    assert_type(trainer.predict(model, loader), list[Any])
    assert_type(trainer.predict(model, loader, return_predictions=True), list[Any])
    assert_type(trainer.predict(model, loader, return_predictions=False), None)
    assert_type(trainer.predict(model, loader, None, False), None)
    assert_type(trainer.predict(model, dataloaders=loader), list[Any])
    assert_type(trainer.predict(model, loader, return_predictions=keep), list[Any] | None)
    for batch in trainer.predict(model, loader):
        print(batch)
    len(trainer.predict(model, loader, return_predictions=False))  # type: ignore[arg-type]


class MyData(DataModule):
    def __init__(self) -> None:
        self.num_classes = 5


class ReadsItsData(TrainModule):
    def configure_model(self) -> None:
        self.classes: int = self.trainer.datamodule.num_classes  # (Lightning's idiom)

    def setup(self, stage: str) -> None:
        data = self.trainer.datamodule
        assert isinstance(data, MyData)
        assert_type(data, MyData)
        print(data.num_clases)  # type: ignore[attr-defined]


def attach(trainer: Trainer) -> None:
    trainer.datamodule = MyData()


def parameter_count(model: TrainModule) -> int:
    assert_type(model.parameters().values(), list[mx.array])
    return sum(p.size for p in model.parameters().values())


def per_class(scores: np.ndarray, targets: np.ndarray, tracker: MetricsTracker) -> None:
    metrics = compute_per_class_metrics(scores, targets)
    assert_type(metrics, PerClassMetrics)
    assert_type(tracker.per_class_metrics("root"), PerClassMetrics)
    for precision, recall in zip(metrics["precision"], metrics["recall"]):
        print(precision, recall)
    print(metrics["f1"].round(2), metrics["support"].sum(), metrics["macro_f1"] + 1.0)
    assert_type(metrics["accuracy"], float)
    metrics["precison"]  # type: ignore[typeddict-item]
    metrics["weighted_f1"].sum()  # type: ignore[attr-defined]
