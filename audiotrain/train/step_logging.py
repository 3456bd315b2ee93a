"""What training reports as it goes: `StepLogging`, which the Trainer holds.

The loggers get the logging interval's means every `log_every_n_steps` optimizer steps (a value the step
logged with `self.log(..., on_step=True)`: that step's value, as in Lightning), what hooks logged with
`self.log` by Lightning's rules (`hook_logs`: step values at the next logging step, epoch and loader means
at the epoch's or the validation's end), and each epoch's means at its end; the progress bar reads the
last evaluated step's numbers (`progress_metrics`) and, at an epoch's end, the epoch's means
(`epoch_progress_metrics`). The batch loop records each step's outputs here (`record_step`). The means
themselves are the run's named state (`RunningMeans`, held by `RunState`); this object keeps only what a
checkpoint need not: the last steps' outputs and what the bar and the loggers were last shown.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from audiotrain.train import hook_logs, reporting
from audiotrain.train.evaluation import prefixed
from audiotrain.train.loggers.base import has_own_save
from audiotrain.train.metric_values import Metrics
from audiotrain.train.outputs import LogOptions
from audiotrain.train.state import local_means

import mlx.core as mx

if TYPE_CHECKING:
    from audiotrain.train.trainer import Trainer


class StepLogging:
    """The Trainer's per-step reporting to its loggers, `callback_metrics` and the progress bar."""

    def __init__(self, trainer: Trainer):
        self._trainer = trainer
        self.logged_metrics: dict[str, float] = Metrics()  # the last value of each name sent to the loggers
        self.last_outputs: dict[str, mx.array] = {}  # the last step's loss and metrics (maybe still running)
        self.last_logged: dict[str, mx.array] = {}  # what it logged with `self.log` (maybe still running)
        self.last_weight: Any = 1.0  # its weight, `TrainModule.batch_size(batch)`
        self.last_weights: dict[str, Any] = {}  # each of its values' weight (a metric's own count)
        self.settled_outputs: dict[str, mx.array] = {}  # the step before that one's (evaluated)
        self.shown_across_ranks: dict[str, float] = {}  # data parallel: the bar's numbers, over all ranks
        # The last epoch's means as the history has them; the open epoch's so far at a validation inside it.
        self.epoch_train_means: dict[str, float] = {}
        self.hook_bar: dict[str, float] = {}  # the last values hooks logged with prog_bar=True
        # A logging step's or an epoch's values for the loggers, sent once the module's end hook has run
        # (`send_with_hook_values`): one call, as Lightning's, so a "step" that hook logs is their x axis.
        self.held_for_hooks: dict[str, float] = {}
        self.held_epoch: int | None = None  # the Trainer's epoch, sent with them (`hold_for_hooks`)

    def forget_shown(self) -> None:
        """A stage starts: no number of the one before it stays in the bar (`progress_metrics`)."""
        self.last_outputs = {}
        self.settled_outputs = {}
        self.shown_across_ranks = {}
        self.hook_bar = {}

    def record_step(
        self,
        returned: dict[str, mx.array],
        logged: dict[str, mx.array],
        metric_weights: dict[str, Any],
        logged_weights: dict[str, Any],
    ) -> None:
        """A training step's returned and logged values: for the bar, the returned ones and the logged ones
        it shows per step (one logged with on_step=False shows its last epoch mean: `progress_metrics`); for
        the loggers, the logged ones (`step_values`)."""
        options = self.train_options()
        shown = {k: v for k, v in logged.items() if options[k].prog_bar and options[k].on_step}
        self.last_logged = logged
        if self._trainer.world_size == 1:
            # As Lightning's: `callback_metrics` holds this step's on_step values in its batch-end hooks, at
            # every batch, under `<name>` and `<name>_step`. Pending: read (a host sync) only where someone
            # reads them. (Data parallel: at logging steps only, where the ranks meet to average them.)
            step_values = {k: v for k, v in logged.items() if options[k].on_step}
            self._trainer.callback_metrics.set_pending(
                {**step_values, **{options[k].step_name(k): v for k, v in step_values.items()}}
            )
            # `logged_metrics` too, under the loggers' names (Lightning's is computed where it is read: the
            # batch's values, whether or not this step writes them).
            self.logged_metrics.set_pending(
                {options[k].step_name(k): v for k, v in step_values.items() if options[k].logger}
            )
        self.last_outputs = {**returned, **shown}
        # Each value's weight as the running means have it (a metric's own count, else the batch's), so that
        # the bar's means over the ranks are the loggers' (`bar_sums`).
        self.last_weights = {
            **{k: metric_weights.get(k, self.last_weight) for k in returned},
            **{k: logged_weights.get(k, self.last_weight) for k in shown},
        }

    def bar_sums(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The last step's values times their weights, and the weights: what the ranks reduce so that the
        bar shows means over every rank's batch (`StopRequests.agree_across_ranks`)."""
        own = {name: self.last_weights.get(name, self.last_weight) for name in self.last_outputs}
        return {name: value * own[name] for name, value in self.last_outputs.items()}, own

    def is_logging_step(self) -> bool:
        """Whether the current global step is one the loggers get the interval means at (every
        `log_every_n_steps`; never at 0, Lightning's "no per-step logging")."""
        t = self._trainer
        return t.log_every_n_steps > 0 and self.logging_step() % t.log_every_n_steps == 0

    def logging_step(self) -> int:
        """The loggers' step: the global step (optimizer updates), or, for a manual module (whose batch
        may take several optimizer steps, a GAN's two), the batches trained, as Lightning's
        `_batches_that_stepped` counts them there: its logging interval is in batches either way."""
        t = self._trainer
        return t.progress.total_batches if t._manual else t.global_step

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Write `metrics` (name → number) to every logger at `step` (rank 0 alone under data parallel),
        and keep them in `logged_metrics`. Not `callback_metrics`: what EarlyStopping or ModelCheckpoint
        monitor comes from `self.log` in the module, or a callback's own entry there."""
        self.logged_metrics.update(metrics)
        for lg in self._trainer._writing_loggers:
            lg.log_metrics(metrics, step)
            if has_own_save(lg):
                lg.save()  # (as Lightning's Trainer: a logger written for it writes its rows there)

    def log_at_logged_step(self, metrics: dict[str, float], epoch: int | None = None) -> None:
        """`log_metrics` for what `self.log` gave at a training logging step, a training epoch's end or an
        evaluation's end, by Lightning's rule (`_LoggerConnector.log_metrics` with step=None): a value
        logged as "step" (`self.log("step", self.current_epoch)`) is every logger's step for the values
        sent with it, as `int(value)`, and no series of its own; without one, the global step.
        `logged_metrics` keeps it, as Lightning's does."""
        values = dict(metrics)
        logged = values.pop("step", None)
        step = self.logging_step() if logged is None else _logged_step(logged)
        self.logged_metrics.update(metrics)
        if epoch is not None and logged is None and "epoch" not in values:
            values = {**values, "epoch": epoch}  # (as Lightning's: only where no "step" was logged)
        for lg in self._trainer._writing_loggers:
            lg.log_metrics(values, step)
            if has_own_save(lg):
                lg.save()

    def progress_metrics(self) -> dict[str, float]:
        """Numbers for the progress bar: the loss and metrics of the last step already evaluated (inside an
        epoch the one before the step the device may still be running, so reading them does not wait for
        it; at the epoch's end the last), and the validation metrics.

        Under data parallel the step's values are their means over every rank's batch, as the loggers' are
        (one process over the combined batch shows the same), taken where the ranks already meet: at each
        logging step, an epoch's last step and after a validation. Between those the bar keeps them.

        A value logged with `prog_bar=True, on_step=False` shows its mean over the last epoch that ended,
        as in Lightning (none before the first): the epoch mean asked for, not a step's value. One logged
        with both `on_step` and `on_epoch` shows as `<name>_step` and, once an epoch has ended,
        `<name>_epoch`, Lightning's names (as a hook's value does)."""
        return self._step_and_epoch_names(self._shown())

    def progress_bar_metrics(self) -> Metrics:
        """Lightning's `progress_bar_metrics`: `progress_metrics()` with the last step's own values, where
        the bar shows the step before's (not to wait for the device): pending entries, read (a host sync)
        only where someone reads them, as Lightning's hold the batch's values in its batch-end hooks."""
        if self._trainer.world_size > 1 or not self.last_outputs:  # (data parallel: the ranks' means)
            return Metrics(self.progress_metrics())
        out = Metrics(self._step_and_epoch_names(self._shown(self.last_outputs)))
        out.set_pending({k: v for k, v in out.items() if isinstance(v, mx.array)})
        return out

    def _shown(self, step_values: dict[str, mx.array] | None = None) -> dict[str, float]:
        """`progress_metrics` before `_step_and_epoch_names`: each training value under its logged name
        (`step_values`' arrays, where given, instead of the bar's numbers)."""
        t = self._trainer
        if step_values is not None:
            out = dict(step_values)
        elif t.world_size > 1:
            out = dict(self.shown_across_ranks)
        else:
            out = {k: float(v.item()) for k, v in (self.settled_outputs or self.last_outputs).items()}
        for name, options in self.train_options().items():
            if options.prog_bar and not options.on_step and name in t.callback_metrics:
                out[name] = t.callback_metrics[name]
        out.update(self.hook_bar)
        out.update(self.epoch_validation_metrics())
        return out

    def _step_and_epoch_names(
        self, out: dict[str, float], epoch_means: dict | None = None
    ) -> dict[str, float]:
        """A step value logged with `on_step=True, on_epoch=True, prog_bar=True` under Lightning's names:
        `<name>_step`, and `<name>_epoch` (the last epoch's mean, or `epoch_means`' where given)."""
        t = self._trainer
        for name, options in self.train_options().items():
            if not (options.prog_bar and options.on_step and options.on_epoch) or name not in out:
                continue
            out[f"{name}_step"] = out.pop(name)
            epoch = (epoch_means or {}).get(name, t.callback_metrics.get(f"{name}_epoch"))
            if epoch is not None:
                out[f"{name}_epoch"] = float(epoch)
        return out

    def epoch_progress_metrics(self) -> dict[str, float]:
        """`progress_metrics()` as the summary of the epoch that is ending (the bar left on screen, the line
        in a log), read in `on_train_epoch_end`: each training value the bar shows per step shows its mean
        over the epoch instead, the number `history` and `callback_metrics` hold (`loss` is `train_loss`'s).
        After a validation inside an epoch, its means so far. A value logged per step only (`on_epoch=False`)
        keeps its last step's value."""
        out = self._shown()
        options = self.train_options()
        means = {}
        for name in self.last_outputs:
            history_name = name if name in options else prefixed("train_", name)  # logged, or returned
            if name in out and history_name in self.epoch_train_means:
                means[name] = self.epoch_train_means[history_name]
        both = {n for n, o in options.items() if o.prog_bar and o.on_step and o.on_epoch}
        # (a value logged both ways keeps its last step's value as `<name>_step`, its mean as `_epoch`)
        out.update({n: m for n, m in means.items() if n not in both})
        return self._step_and_epoch_names(out, means)

    def epoch_validation_metrics(self) -> dict[str, float]:
        """What the last validation reported under any name, and the ``val_*`` values a callback wrote into
        `callback_metrics` itself (as the CLAP recipe's retrieval callback does, outside `self.log`)."""
        t = self._trainer
        # (By key: reading every value would wait for the step in flight, `Metrics.set_pending`.)
        direct = {k: t.callback_metrics[k] for k in list(t.callback_metrics.keys()) if k.startswith("val_")}
        return {**direct, **t._run.validation_metrics}

    def train_options(self) -> dict[str, LogOptions]:
        """How each value the training step logs with `self.log` is reported (`prog_bar`, `on_step`, ...)."""
        step = self._trainer._train_step
        traced = step.log_options if step is not None else {}
        return traced or self._trainer._run.saved_log_options  # (the checkpoint's until the step is traced)

    def hold_epoch_means_so_far(self) -> None:
        """Before a validation inside an epoch: the epoch's means so far, for `epoch_progress_metrics` (the
        progress line after it shows them, as the epoch's own line shows its means). Read on every rank (a
        reduction under data parallel) where the validation makes the ranks meet anyway."""
        t = self._trainer
        means = t.running.epoch_means(t._reduce)
        self.epoch_train_means = reporting.epoch_values(means, self.train_options())

    def log_train_interval(self, hook_logs: bool = True) -> bool:
        """The logging interval's means (and, with `hook_logs`, what hooks logged since the last logging
        point) to the loggers and `callback_metrics`, at this step. False where the interval had no step."""
        t = self._trainer
        if not t.running.has_interval_steps:
            return False
        means = self.with_step_values(t.running.pop_interval(t._reduce))
        values, seen = reporting.interval_values(means, self.train_options())
        t.callback_metrics.update(seen)
        values["learning_rate"] = t.learning_rate()
        arrays = t._train_step.state.arrays
        if t._train_step.config.computes_norm:
            # NaN, not the state's 0.0, while the guard has skipped every update so far: no gradient was
            # applied, and a 0.0 read as vanishing gradients to a user hunting the NaN.
            skipped = t._nonfinite.skipped_total(arrays)
            applied = skipped is None or t.global_step > skipped
            values["grad_norm"] = float(arrays["grad_norm"].item()) if applied else math.nan
        if t.nonfinite_guard:
            values["skipped_steps"] = t._nonfinite.skipped_total(arrays)
        t.callback_metrics.update(values)
        if hook_logs:
            values.update(self.hook_step_values())
        # One series per quantity (the Trainer's docstring): a LearningRateMonitor owns the learning rate's,
        # and a skip count that is still 0 (a running total) is no series yet.
        unlogged = (
            {"learning_rate"}
            if any(getattr(cb, "logs_learning_rate", False) for cb in t.callbacks)
            else set()
        )
        if not values.get("skipped_steps"):
            unlogged.add("skipped_steps")
        values = {k: v for k, v in values.items() if k not in unlogged}
        if hook_logs:
            self.log_at_logged_step(values)
        else:  # (sent with what on_train_batch_end logs: `log_hook_steps`)
            self.hold_for_hooks(values)
        return True

    def with_step_values(self, means: dict[str, float]) -> dict[str, float]:
        """The interval's `means` with each value the training step logged with `self.log(..., on_step=True)`
        as Lightning writes it at a logging step: the last step's value (not the interval's mean, which
        smooths a one-step spike away), and left out where that step did not log it (an eager step that
        logs under an `if`). Read at a logging point, where the means wait for that step anyway; under data
        parallel each is its mean over the ranks' batches, as the means are. Before this process ran a step
        (a resumed run ending its restored interval) the means stay."""
        if not self.last_outputs:
            return means
        options = self.train_options()
        per_step = {k for k in means if k in options and options[k].on_step}
        logged = {k: v for k, v in self.last_logged.items() if k in per_step}
        kept = {k: v for k, v in means.items() if k not in per_step}
        weight, reduce = self.last_weight, self._trainer._reduce
        if reduce is None:
            return {**kept, **local_means({k: v * weight for k, v in logged.items()}, weight)}
        # Every rank reduces, also one whose step logged none of them: a name only some ranks logged is the
        # mean over those.
        return {**kept, **reduce({k: v * weight for k, v in logged.items()}, weight)}

    def log_hook_steps(self) -> None:
        """The step values the training hooks logged (`on_step`), to `callback_metrics` and the loggers at
        this logging step, with the interval's values held for them."""
        self.send_with_hook_values(self.hook_step_values())

    def hold_for_hooks(self, values: dict[str, float], epoch: int | None = None) -> None:
        """Keep `values` for the loggers until the module's end hook has run (`send_with_hook_values`);
        `logged_metrics` has them now, as it had when they were sent before the hooks. `epoch`, the
        Trainer's, goes with them where nothing logged "epoch": to the loggers only, as Lightning adds it
        (its `setdefault` after `logged_metrics` took the values, which hold only what was logged)."""
        self.logged_metrics.update(values)
        self.held_for_hooks, self.held_epoch = values, epoch

    def send_with_hook_values(self, hook_values: dict[str, float]) -> None:
        """The values held for the hooks and what the hooks logged, to the loggers in one call, as
        Lightning logs a step's or an epoch's results after its end hooks: a "step" logged in
        `on_train_batch_end` or `on_train_epoch_end` is the step of them all (`log_at_logged_step`). Also
        called when the fit fails, so that a failing hook loses none of them."""
        values, self.held_for_hooks = {**self.held_for_hooks, **hook_values}, {}
        epoch, self.held_epoch = self.held_epoch, None
        if values:  # (none: nothing to send, not even the epoch, as Lightning's `if not metrics: return`)
            self.log_at_logged_step(values, epoch)

    def hook_step_values(self) -> dict[str, float]:
        """The step values training hooks logged with `self.log` since the last logging step
        (`hook_logs.step_values`): into `callback_metrics` and the bar; returned as the loggers get them.

        Under data parallel each is its mean over the ranks (`sync_dist`, always on), and an epoch mean
        is Σ value·weight / Σ weight over every rank's: a value a rank computed on its own (an F1 over its
        predictions in `on_validation_epoch_end`) is then the same on every rank, and so are the decisions
        callbacks take on it (EarlyStopping, ModelCheckpoint). Every rank comes here at the same points (a
        logging step, a validation's or an epoch's end), where the values are read anyway: the training
        step itself gains no host sync."""
        t = self._trainer
        to_loggers, to_callbacks, bar, _ = hook_logs.step_values(t.module, t.world_size)
        t.callback_metrics.update(to_callbacks)
        self.hook_bar.update(bar)
        return to_loggers

    def hook_epoch_values(self, phase: str, clear: bool = True) -> tuple[dict, dict, dict]:
        """The means of what hooks logged per epoch in `phase` ("train", "val", "test"), as (for the
        loggers, for `callback_metrics`, for the history: one name each, where callback_metrics has
        `name` and `name_epoch` of a value logged both ways); the bar gets its own
        (`hook_logs.epoch_values`). The caller puts them in `callback_metrics`."""
        t = self._trainer
        to_loggers, to_callbacks, bar, plain = hook_logs.epoch_values(t.module, phase, t.world_size, clear)
        if not t.sanity_checking:
            self.hook_bar.update(bar)
        return to_loggers, to_callbacks, plain


def _logged_step(value: float) -> int:
    """A value logged as "step", as the loggers' step (Lightning's `int(value)`): refused where no logger
    could take it (negative, NaN or infinite), naming the call."""
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            f"self.log('step', {value!r}): a value logged as 'step' is every logger's step (x axis) for the "
            "values logged with it, as in Lightning: expected a number >= 0 (e.g. self.current_epoch)"
        )
    return int(value)
