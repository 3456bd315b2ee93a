"""The one rule for a monitored metric that only a validation gives: a ``val_`` metric, where validation is
off. `create_trainer` refuses it in a config (`TrainingSettings`); the monitoring callbacks name it in a warning
as a fit starts (a module may log such a metric itself from a training hook), rather than first at a check a
whole training epoch later. (Kept free of MLX: the config module imports it.)"""

from __future__ import annotations


def is_validation_metric(monitor: str | None) -> bool:
    """Whether `monitor` names a validation metric (``val_loss``, ``val_acc``): one only a validation logs."""
    return isinstance(monitor, str) and monitor.startswith("val_")


def validation_off_refusal(monitor: str | None, off: str, monitored: str, fixes: str) -> str | None:
    """The message refusing `monitor` where `off` (e.g. ``"Trainer(limit_val_batches=0) turns validation
    off"``) holds, or None where `monitor` is no validation metric. `monitored` names the setting or
    callback that monitors it, `fixes` what to do instead."""
    if not is_validation_metric(monitor):
        return None
    return (
        f"{off}, but {monitored} is {monitor!r}, a validation metric, which no validation will log: {fixes}"
    )
