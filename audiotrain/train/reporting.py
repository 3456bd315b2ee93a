"""What a fit reports: the training loss and metrics summed as the steps run, their means over each
logging interval (sent to the loggers with the learning rate and the skip count), the per-epoch history
and its export, the values a module logs with `self.log`, and the check of the non-finite guard's
counters made at the logging interval's host sync.

Separate from the training loop in `trainer.py`, which adds each step's lazy results to these sums and,
at an epoch's end, turns the epoch's sums into its history row. `ReportingMixin` is one of the classes
`Trainer` is made of; its state (`_interval_sums`, `_epoch_sums`, `_history_rows`, ...) is set in
`Trainer.__init__`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from audiotrain.train import checkpoint as ckpt
from audiotrain.train.lazy import LazyScalar

import mlx.core as mx


def prefixed(prefix: str, name: str) -> str:
    """`name` under `prefix` (a metric already named `train_acc` stays `train_acc`)."""
    return name if name.startswith(prefix) else prefix + name


class ReportingMixin:
    """The Trainer's history, logging and learning-rate read-outs."""

    @property
    def history(self) -> dict[str, list]:
        """Per-epoch history as columns: epoch, step, time, learning_rate, train_*, val_* (None where absent)."""
        keys: list[str] = []
        for row in self._history_rows:
            keys.extend(k for k in row if k not in keys)
        return {k: [row.get(k) for row in self._history_rows] for k in keys}

    def export_history(self, path: str | os.PathLike) -> Path:
        """Write `history` as JSON (columns of per-epoch values); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(self.history, f, indent=1, default=ckpt._json_default)
        os.replace(tmp, path)
        return path

    def learning_rate(self) -> float:
        if self.optimizer is None:
            return float("nan")
        return float(
            self.optimizer.learning_rate.item()
            if isinstance(self.optimizer.learning_rate, mx.array)
            else self.optimizer.learning_rate
        )

    def is_logging_step(self) -> bool:
        return self.global_step % self.log_every_n_steps == 0

    def progress_metrics(self) -> dict[str, float]:
        """Numbers for the progress bar: the loss and metrics of the last step already evaluated (inside an
        epoch the one before the step the device may still be running, so reading them does not wait for
        it; at the epoch's end the last)."""
        out = {k: float(v.item()) for k, v in (self._settled_outputs or self._last_outputs).items()}
        out.update({k: v for k, v in self.callback_metrics.items() if k.startswith("val_")})
        return out

    def _accumulate_train_metrics(self, loss: mx.array, metrics: dict[str, mx.array], weight: int) -> None:
        values = {"loss": loss, **metrics}
        for k, v in values.items():
            self._interval_sums[k] = self._interval_sums.get(k, 0.0) + v
            self._epoch_sums[k] = self._epoch_sums.get(k, 0.0) + v * weight
        self._interval_count += 1
        self._epoch_weight += weight

    def _log_train_interval(self) -> None:
        if not self._interval_count:
            return
        n = self._interval_count
        values = {prefixed("train_", k): float(v.item()) / n for k, v in self._interval_sums.items()}
        self._interval_sums, self._interval_count = {}, 0
        values["learning_rate"] = self.learning_rate()
        arrays = self._train_step.state.arrays
        if self._train_step.config.computes_norm:
            values["grad_norm"] = float(arrays["grad_norm"].item())
        if self.nonfinite_guard:
            values["skipped_steps"] = int(arrays["skipped_total"].item())
        values.update(self._pop_module_logs())
        self.callback_metrics.update(values)
        self.log_metrics(values, step=self.global_step)
        self._check_nonfinite()

    def _pop_module_logs(self) -> dict[str, float]:
        out = {}
        for name, value in self.module._pop_logged().items():
            try:
                if isinstance(value, mx.array) and value.size != 1:
                    raise ValueError(f"an array of shape {tuple(value.shape)}")
                out[name] = float(value.item()) if isinstance(value, (mx.array, LazyScalar)) else float(value)
            except (TypeError, ValueError) as err:
                raise ValueError(
                    f"{type(self.module).__name__}.log({name!r}, ...): expected a number or a scalar array, "
                    f"got {value!r:.60} ({err})"
                ) from None
        return out

    def _check_nonfinite(self) -> None:
        arrays = self._train_step.state.arrays
        streak = int(arrays["max_skip_streak"].item())
        if streak >= self.max_consecutive_nonfinite:
            path = None
            if self.enable_checkpointing:
                path = self.save_checkpoint(self.default_root_dir / "checkpoints" / "nonfinite")
            raise FloatingPointError(
                f"{streak} optimizer steps in a row had a non-finite loss or gradients (up to global step "
                f"{self.global_step}); those updates were skipped, so the weights are still finite. "
                "Lower the learning rate, set gradient_clip_val, or check the data for NaN/Inf."
                + (f" The last good state is saved in {path}." if path else "")
            )
        arrays["max_skip_streak"] = arrays["skip_streak"]

    def elapsed(self) -> float:
        return self._elapsed_before + (time.perf_counter() - self._fit_started if self._fit_started else 0.0)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.logged_metrics.update(metrics)
        for lg in self.loggers:
            lg.log_metrics(metrics, step)
