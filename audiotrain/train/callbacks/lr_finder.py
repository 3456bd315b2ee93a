"""Lightning's `LearningRateFinder` callback: `Tuner.lr_find`'s sweep at the start of `fit`.

    trainer = Trainer(max_epochs=5, callbacks=[LearningRateFinder(min_lr=1e-4, max_lr=0.1)])
    trainer.fit(model, loader)  # sweeps in on_fit_start, then trains at the suggested rate

The sweep is `Tuner.lr_find`'s (train/tuner.py: a second Trainer with this one's settings, the module's
weights, loader position and random generators put back after it); this callback only runs it from the
fit's `on_fit_start` and, as Lightning 2.6's, writes the suggestion to the module's rate attribute and to
the running optimizer, whose `configure_optimizers` ran before `on_fit_start` (Lightning's too: it sets
each param group's `lr`).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from audiotrain._caller import user_stacklevel
from audiotrain.train.callback import Callback
from audiotrain.train.module import _optimizers_in

import mlx.core as mx

if TYPE_CHECKING:
    from audiotrain.train.lr_finder import LRFinder
    from audiotrain.train.module import TrainModule
    from audiotrain.train.trainer import Trainer


class LearningRateFinder(Callback):
    """Lightning's `LearningRateFinder(min_lr=1e-8, max_lr=1, num_training_steps=100, mode="exponential",
    early_stop_threshold=4.0, update_attr=True, attr_name="")`: runs `Tuner.lr_find` (see it and README's
    Tuner paragraph for the sweep) in `on_fit_start` and keeps its `LRFinder` as `optimal_lr` (`results`,
    `suggestion()`, `plot()`). With `update_attr` the suggestion is written to the module's `lr` or
    `learning_rate` (or `attr_name`; the module's `hparams` and the datamodule's, as `lr_find` does) and
    to the optimizer `configure_optimizers` gave this fit, which then trains at it. An optimizer whose rate
    is a schedule keeps its schedule (a warning says so).

    To sweep at other epochs (Lightning's fine-tuning example), override `on_fit_start` to do nothing and
    call `self.lr_find(trainer, pl_module)` from `on_train_epoch_start`. A resumed fit sweeps again, as
    Lightning's does; under `fast_dev_run` the sweep is skipped with a warning.
    """

    SUPPORTED_MODES = ("linear", "exponential")

    def __init__(
        self,
        min_lr: float = 1e-8,
        max_lr: float = 1,
        num_training_steps: int = 100,
        mode: str = "exponential",
        early_stop_threshold: float | None = 4.0,
        update_attr: bool = True,
        attr_name: str = "",
    ) -> None:
        from audiotrain.train.tuner import _check_sweep_arguments  # (tuner imports the Trainer)

        mode = mode.lower() if isinstance(mode, str) else mode
        _check_sweep_arguments(
            min_lr,
            max_lr,
            num_training_steps,
            mode,
            early_stop_threshold,
            update_attr,
            attr_name,
            caller="LearningRateFinder",
            steps_name="num_training_steps",
        )
        self._min_lr = min_lr
        self._max_lr = max_lr
        self._num_training_steps = num_training_steps
        self._mode = mode
        self._early_stop_threshold = early_stop_threshold
        self._update_attr = update_attr
        self._attr_name = attr_name
        self.optimal_lr: LRFinder | None = None

    def lr_find(self, trainer: Trainer, pl_module: TrainModule) -> None:
        """Run the sweep on this fit's training loader now, keep it as `optimal_lr` and, with `update_attr`,
        set the suggested rate on the module's attribute and on the fit's optimizer."""
        from audiotrain.train.tuner import Tuner, _lr_holders

        if trainer.fast_dev_run:  # (said here: lr_find's own warning names a Tuner.lr_find never called)
            warnings.warn(
                "LearningRateFinder: the sweep is skipped, since fast_dev_run is enabled (as in Lightning); "
                "optimal_lr stays None and the fit trains at the rate configure_optimizers gave",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
            return
        # Refused before the sweep where there is no rate to set, as Lightning's (its error names the names).
        holders = (
            _lr_holders(pl_module, trainer.datamodule, self._attr_name, "LearningRateFinder")
            if self._update_attr
            else []
        )
        self.optimal_lr = Tuner(trainer).lr_find(
            pl_module,
            train_dataloaders=trainer.train_dataloader,
            min_lr=self._min_lr,
            max_lr=self._max_lr,
            num_training=self._num_training_steps,
            mode=self._mode,
            early_stop_threshold=self._early_stop_threshold,
            update_attr=self._update_attr,
            _holders=holders,
            _caller="LearningRateFinder",
        )
        if self.optimal_lr is not None and self.optimal_lr._rate_set is not None:
            self._set_optimizer_rate(trainer, self.optimal_lr._rate_set, holders[0][1])

    @staticmethod
    def _set_optimizer_rate(trainer: Trainer, lr: float, name: str) -> None:
        if trainer.optimizer is None:
            return
        for optimizer in _optimizers_in(trainer.optimizer):
            if "learning_rate" in optimizer._schedulers:
                warnings.warn(
                    f"LearningRateFinder: {name} is set to the suggested {lr:.3g}, but this fit's optimizer "
                    "takes its rate from a schedule, which goes on as configure_optimizers made it; the "
                    f"next fit's configure_optimizers can build the schedule from {name}",
                    UserWarning,
                    stacklevel=user_stacklevel(),
                )
                continue
            # In place: the compiled step holds the optimizer's state dict and reads the rate from it.
            optimizer.state["learning_rate"] = mx.array(lr, dtype=optimizer.state["learning_rate"].dtype)

    def on_fit_start(self, trainer: Trainer, pl_module: TrainModule) -> None:
        self.lr_find(trainer, pl_module)
