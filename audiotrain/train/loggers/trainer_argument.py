"""`trainer_loggers`: the loggers `Trainer(logger=...)` describes, as Lightning reads that argument."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from audiotrain.train.loggers.csv_logger import CSVLogger
from audiotrain.train.loggers.tensorboard_logger import TensorBoardLogger


def trainer_loggers(logger: Any, root: Path, where: str = "Trainer(logger=...)") -> list:
    """`logger` as a list: one logger, a list or tuple of them, a dict of named ones (its loggers, in its
    order), None, False or an empty list or dict for none, or True for a TensorBoard logger in `root` (the
    Trainer's `default_root_dir`). Each must have `log_metrics`; `where` names the setting in the error."""
    if logger is True:
        # As in Lightning: TensorBoard under default_root_dir where a SummaryWriter (tensorboardX, or
        # torch's) is installed, else CSV there.
        try:
            logger = TensorBoardLogger(root, name="")
        except ImportError:
            logger = CSVLogger(root, name="")
    if isinstance(logger, Mapping):  # (Lightning's `logger={}` is no logger; `{}` was refused as a logger)
        logger = list(logger.values())
    loggers = logger if isinstance(logger, (list, tuple)) else ([] if logger in (None, False) else [logger])
    for lg in loggers:
        if not callable(getattr(lg, "log_metrics", None)):
            raise TypeError(f"{where}: {lg!r} has no log_metrics(metrics, step) method")
    return list(loggers)


__all__ = ["trainer_loggers"]
