"""A tqdm progress bar: one bar per training epoch, a transient one for validation."""

from __future__ import annotations

import sys

from audiotrain.train.callback import Callback

from tqdm.auto import tqdm


class ProgressBar(Callback):
    """Show training progress with the loss and metrics.

    Args:
        refresh_rate: update the bar's numbers every `refresh_rate` batches. Reading the numbers
            is a host sync, so a larger value keeps the device busier.

    The validation bar is transient (`leave=False`) and is not drawn when stderr is not a terminal,
    so validation never spills extra lines into logs.
    """

    def __init__(self, refresh_rate: int = 1):
        if not isinstance(refresh_rate, int) or refresh_rate < 1:
            raise ValueError(f"ProgressBar: refresh_rate must be a positive int, got {refresh_rate!r}")
        self.refresh_rate = refresh_rate
        self._train_bar: tqdm | None = None
        self._val_bar: tqdm | None = None

    @property
    def state_key(self) -> str:
        return "ProgressBar"

    def on_train_epoch_start(self, trainer, module) -> None:
        self._close_train()
        total = trainer.num_training_batches
        self._train_bar = tqdm(
            total=total if total and total != float("inf") else None,
            initial=trainer.batch_in_epoch,
            desc=f"Epoch {trainer.current_epoch}",
            file=sys.stderr,
            dynamic_ncols=True,
            leave=True,
        )

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self._train_bar is None:
            return
        self._train_bar.update(1)
        if (batch_idx + 1) % self.refresh_rate == 0:
            self._train_bar.set_postfix(_fmt(trainer.progress_metrics()), refresh=False)

    def on_train_epoch_end(self, trainer, module) -> None:
        if self._train_bar is not None:
            self._train_bar.set_postfix(_fmt(trainer.progress_metrics()), refresh=True)
        self._close_train()

    def on_train_end(self, trainer, module) -> None:
        self._close_train()

    def on_validation_start(self, trainer, module) -> None:
        self._val_bar = tqdm(
            total=trainer.num_val_batches or None,
            desc="Validating",
            file=sys.stderr,
            dynamic_ncols=True,
            leave=False,
            position=1 if self._train_bar is not None else 0,
            disable=None,  # off when stderr is not a TTY: no extra lines in log files
        )

    def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self._val_bar is not None:
            self._val_bar.update(1)

    def on_validation_end(self, trainer, module) -> None:
        if self._val_bar is not None:
            self._val_bar.close()
            self._val_bar = None
        if self._train_bar is not None:
            self._train_bar.set_postfix(_fmt(trainer.progress_metrics()), refresh=True)

    def on_exception(self, trainer, module, exception) -> None:
        if self._val_bar is not None:
            self._val_bar.close()
            self._val_bar = None
        self._close_train()

    def _close_train(self) -> None:
        if self._train_bar is not None:
            self._train_bar.close()
            self._train_bar = None


def _fmt(metrics: dict[str, float]) -> dict[str, str]:
    return {k: f"{v:.4g}" for k, v in metrics.items()}
