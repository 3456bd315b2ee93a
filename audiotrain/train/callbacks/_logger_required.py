"""What DeviceStatsMonitor and LearningRateMonitor share: a fit that would log to no logger is refused."""

from __future__ import annotations


def refuse_a_fit_without_logger(trainer, stage: str, callback: str, what: str) -> None:
    """Raise where `trainer` fits with no logger for `callback` to log `what` to (Lightning's monitors raise
    a MisconfigurationException; here a ValueError), before any batch: the run would train and log nothing.
    Validate, test and predict are not refused (nothing of theirs is logged by it, as in Lightning), nor
    `fast_dev_run`, which logs nothing by design."""
    if stage != "fit" or trainer.fast_dev_run or trainer.loggers:
        return
    raise ValueError(
        f"{callback}: the Trainer has no logger to log {what} to; pass one, e.g. "
        "Trainer(logger=CSVLogger('logs'), ...), or remove the callback (Lightning refuses "
        "Trainer(logger=False) alike)"
    )
