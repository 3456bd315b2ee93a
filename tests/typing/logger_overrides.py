"""A logger of one's own annotated as Lightning's base Logger annotates its methods
(`log_metrics(self, metrics: dict[str, float], step: int | None = None)`,
`log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any)`): both override
audiotrain's `Logger`."""

import argparse
from typing import Any

from audiotrain.train.loggers import Logger


class PrintLogger(Logger):
    @property
    def name(self) -> str:
        return "print"

    @property
    def version(self) -> int:
        return 0

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        print(step, metrics)

    def log_hyperparams(self, params: dict[str, Any] | argparse.Namespace, *args: Any, **kwargs: Any) -> None:
        print(params)


PrintLogger().log_metrics({"loss": 0.5, "step": 3}, step=1)
PrintLogger().log_hyperparams({"lr": 1e-3})
