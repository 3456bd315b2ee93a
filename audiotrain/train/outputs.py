"""What a step returns and logs: the checks on `compute_loss` / `training_step` / `validation_step`
outputs, and the values `self.log` records while a step runs.

Both run while a step is traced (once per input shape when compiled), so they cost nothing afterwards.
Values logged inside a step become outputs of the compiled function: the trace records their names and
options here, and every later call returns their new values without running Python.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import mlx.core as mx


def split_eval_outputs(out: Any, where: str) -> tuple[Any, Any]:
    """An evaluation step's return split, as Lightning reads it, into (what `check_loss_output` takes, the
    outputs passed on to the batch-end hooks; None: none).

    A dict without "loss" is outputs alone (nothing logged: Lightning's `{"preds": p, "target": y}`). In a
    dict with "loss", an array with dimensions (a batch's scores, of shape (B,) even where B is 1), a
    dict, a list or a tuple other than a metric's `(value, weight)` is an output; the loss and the scalars
    (shape ()) are its metrics, as before. Every leaf of the outputs must be an mx.array: a Python value
    in a compiled step is the one it had while traced, on every later batch."""
    if not isinstance(out, dict):
        return out, None
    if "loss" not in out:
        outputs = out
        kept: Any = None
    else:
        outputs = {k: v for k, v in out.items() if k != "loss" and _is_output(v)}
        kept = {k: v for k, v in out.items() if k not in outputs}
    _check_output_leaves(outputs, where, "")
    return kept, outputs


def _is_output(value: Any) -> bool:
    if isinstance(value, mx.array):
        return value.ndim > 0
    if isinstance(value, tuple) and len(value) == 2:  # (a metric's (value, weight), unless value is one)
        return isinstance(value[0], (dict, list, tuple)) or (
            isinstance(value[0], mx.array) and value[0].ndim > 0
        )
    return isinstance(value, (dict, list, tuple))


def _check_output_leaves(tree: Any, where: str, at: str) -> None:
    if isinstance(tree, dict):
        for k, v in tree.items():
            _check_output_leaves(v, where, f"{at}[{k!r}]")
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            _check_output_leaves(v, where, f"{at}[{i}]")
    elif not isinstance(tree, mx.array):
        raise TypeError(
            f"{where} returned outputs{at} = {type(tree).__name__}, not an mx.array: the outputs an "
            "evaluation step passes on to its batch-end hooks are arrays (a Python value in a compiled step "
            "is the one it had while traced, on every later batch); log a number with self.log, or make it "
            "an array (mx.array(value))"
        )


def check_loss_output(
    out: Any, where: str, allow_none: bool = False, cast: bool = True
) -> tuple[mx.array | None, dict[str, mx.array], dict[str, mx.array]]:
    """Validate what a step returned and normalise it to (loss, metrics, metric_weights).

    Accepted: `(loss, metrics_dict)`, a dict with "loss" (the rest are metrics), a bare loss; and with
    `allow_none` (evaluation, where Lightning code logs instead of returning), None. A metric is a scalar
    or a `(value, weight)` pair of scalars: its means are then weighted by `weight` (a count the step
    computed, such as the frames an accuracy is over) instead of `batch_size(batch)`; `metric_weights`
    holds those weights. `cast=False` leaves the metrics and weights in their own dtype (each a scalar of
    shape ()), for the caller to cast to float32 after `mx.value_and_grad` (see `as_float32`).
    """
    if out is None and allow_none:
        return None, {}, {}
    if isinstance(out, dict):
        if "loss" not in out:
            # Lightning's evaluation step may return any dict (outputs for a batch-end hook): say what does.
            nothing = " (or log its values with self.log and return nothing)" if allow_none else ""
            raise TypeError(
                f"{where} returned a dict without a 'loss' key (keys: {sorted(out)}); return "
                f"(loss, metrics_dict) or a dict with 'loss'{nothing}"
            )
        out = dict(out)
        loss, metrics = out.pop("loss"), out
    elif isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict):
        loss, metrics = out
    elif isinstance(out, mx.array):
        loss, metrics = out, {}
    else:
        nothing = " (or log its values with self.log and return nothing)" if allow_none else ""
        # Lightning skips a batch whose training_step returns None; a compiled step is traced once and
        # replayed, so it cannot leave out a batch by what the batch holds.
        skip = (
            ". Lightning's `return None` to skip a batch has no counterpart in a compiled step: leave such "
            "samples out in the dataset or collate_fn, or weight the loss by a 0/1 mask computed in the step"
            if out is None and not allow_none
            else ""
        )
        raise TypeError(
            f"{where} must return (loss, metrics_dict) with a scalar mx.array loss and a dict of scalar "
            f"mx.array metrics, a dict with 'loss' or a bare mx.array loss{nothing}; "
            f"got {type(out).__name__}{skip}"
        )
    if not isinstance(loss, mx.array):
        raise TypeError(f"{where}: the loss must be an mx.array scalar, got {type(loss).__name__}")
    if loss.size != 1:
        raise ValueError(
            f"{where}: the loss must be a scalar, got shape {tuple(loss.shape)}; reduce it (e.g. mx.mean)"
        )
    if not mx.issubdtype(loss.dtype, mx.floating):
        raise TypeError(f"{where}: the loss must be floating point, got {loss.dtype}")
    values, weights = {}, {}
    for name, value in metrics.items():
        if not isinstance(name, str):
            raise TypeError(f"{where}: metric names must be strings, got {name!r}")
        if name in _LOSS_NAMES:
            # Prefixed for its stage (`val_` + "loss"; `val_loss` and `train_loss` keep or change their own
            # prefix), it is the name the loss is reported under: EarlyStopping and ModelCheckpoint would
            # track the metric instead.
            raise ValueError(
                f"{where}: a metric is named {name!r}, which would replace the loss itself in logs, history "
                "and callbacks (train_loss, val_loss, test_loss); give it another name"
            )
        if isinstance(value, tuple) and len(value) == 2:
            value, weights[name] = (
                value[0],
                _metric_scalar(value[1], f"{where}: the weight of metric {name!r}", cast),
            )
        values[name] = _metric_scalar(value, f"{where}: metric {name!r}", cast)
    return loss.reshape(()).astype(mx.float32), values, weights


#: Metric names that a stage's prefix turns into the name the Trainer reports that stage's loss under.
_LOSS_NAMES = frozenset({"loss", "train_loss", "val_loss", "test_loss"})


def as_float32(tree: dict[str, mx.array]) -> dict[str, mx.array]:
    """`tree`'s scalars in float32: what `check_loss_output(cast=False)` and `StepLogs(cast=False)` left.

    The training step casts after `mx.value_and_grad`, not inside it: an int count returned as a weight
    (`n = mx.sum(mask)`, `(acc, n)`) that the loss divides by (`mx.sum(ce * mask) / n`, where MLX casts n to
    float32) was then one expression both in the gradient's graph and, cast again, in its auxiliary outputs,
    and `mx.compile` failed with MLX's internal "IndexError: _Map_base::at"."""
    return {name: value.astype(mx.float32) for name, value in tree.items()}


def _metric_scalar(value: Any, what: str, cast: bool = True) -> mx.array:
    if not isinstance(value, mx.array):
        raise TypeError(
            f"{what} must be a scalar mx.array, got {type(value).__name__} (Python numbers inside the "
            "compiled step would be frozen at trace time; a metric with its own weight is a (value, "
            "weight) pair)"
        )
    if value.size != 1:
        # An evaluation step's dict passes such arrays on to the batch-end hooks (`split_eval_outputs`);
        # what reaches here is a training step's metric or one of the (loss, metrics) form.
        raise ValueError(
            f"{what} must be a scalar, got shape {tuple(value.shape)}: the metrics of (loss, metrics) and a "
            "training step's are each averaged over the batches (mx.mean(...) of a per-item value). A "
            "validation_step or test_step returning a dict ({'loss': loss, 'preds': scores}, or without "
            "'loss') passes its arrays on to on_validation_batch_end(outputs, batch, batch_idx) / "
            "on_test_batch_end, as Lightning does, for a score over the whole set (ROC-AUC, mAP)"
        )
    return value.reshape(()).astype(mx.float32) if cast else value.reshape(())


@dataclass(frozen=True)
class LogOptions:
    """Lightning's `self.log` options, resolved for where the value was logged.

    on_step: the value goes to the loggers at the logging interval (its mean over the interval);
    on_epoch: its mean over the epoch (training) or the loader (validation, test) goes to the loggers,
    the history and `callback_metrics`. With both, the loggers see `<name>_step` and `<name>_epoch`.
    prog_bar: the progress bar shows it. logger: False keeps it out of the loggers.
    replaces_returned: logged in training under the name the Trainer gives a returned value (`train_loss`):
    it replaces that value, and its epoch mean keeps the returned value's place in the history and
    `callback_metrics` whatever `on_epoch` (see `reporting`).
    """

    on_step: bool
    on_epoch: bool
    prog_bar: bool = False
    logger: bool = True
    replaces_returned: bool = False

    def step_name(self, name: str) -> str:
        return f"{name}_step" if self.on_epoch else name

    def epoch_name(self, name: str) -> str:
        return f"{name}_epoch" if self.on_step else name


def options_text(options: LogOptions) -> str:
    """The options as a `self.log` call spells them, for an error naming two calls that differ."""
    return (
        f"on_step={options.on_step}, on_epoch={options.on_epoch}, prog_bar={options.prog_bar}, "
        f"logger={options.logger}"
    )


class StepLogs:
    """Collects what `self.log` records while one step (training, validation or test) runs.

    Values stay arrays (tracers while compiling); the step returns them as outputs of its graph.
    """

    def __init__(
        self, stage: str, where: str, batch_weight: Callable[[], Any] | None = None, cast: bool = True
    ):
        self.stage, self.where, self.cast = stage, where, cast
        self.batch_weight = batch_weight  # the weight the step's values get: TrainModule.batch_size(batch)
        self.values: dict[str, mx.array] = {}
        self.options: dict[str, LogOptions] = {}
        # Values logged with an array `batch_size` (a count the step computes): each one's own weight.
        self.weights: dict[str, mx.array] = {}
        self.unindexed: set[str] = set()  # (names logged with add_dataloader_idx=False)

    def record(
        self,
        name: str,
        value: Any,
        options: dict[str, Any],
        batch_size: int | mx.array | None = None,
        add_dataloader_idx: bool = True,
    ) -> None:
        if self.stage == "predict":
            # The value went nowhere (predict reports no metrics); Lightning 2.6 raises here too.
            from audiotrain.train.hook_logs import LogRefused

            raise LogRefused(
                f"{self.where}: self.log({name!r}, ...): you can't self.log() in predict, as in Lightning "
                '("it doesn\'t support logging"): predict reports no metrics. Return the value from '
                "predict_step (Trainer.predict gives back each batch's output), or log it in "
                "validation_step / test_step"
            )
        training = self.stage == "train"
        on_step = training if options["on_step"] is None else bool(options["on_step"])
        on_epoch = (not training) if options["on_epoch"] is None else bool(options["on_epoch"])
        if not training and on_step:
            # (`_user_method`'s words: a module without this stage's step gets the training step run for it,
            # whose training-style logging is no mistake of its own; the user's fix is the missing step)
            default_step = " (run by the default " in self.where
            method = "validation_step" if self.stage == "val" else f"{self.stage}_step"
            raise ValueError(
                f"{self.where}: self.log({name!r}, ..., on_step=True): in {self.stage} a logged value is its "
                "mean over the loader (on_epoch); per-batch values would need a host sync every batch"
                + (
                    f". The module has no {method} of its own, so the training step runs for it: define "
                    f"{method} (computing and logging what {self.stage} should report)"
                    if default_step
                    else ""
                )
            )
        if not (on_step or on_epoch):
            raise ValueError(
                f"{self.where}: self.log({name!r}, ...) with on_step=False and on_epoch=False logs nothing"
            )
        if isinstance(batch_size, mx.array):
            where = f"{self.where}: self.log({name!r}, ..., batch_size=)"
            self.weights[name] = _scalar(batch_size, where, self.cast)
        elif (
            batch_size is not None and self.batch_weight is not None and self._weighs_alone(name, batch_size)
        ):
            self.weights[name] = mx.array(float(batch_size), mx.float32)
        resolved = LogOptions(on_step, on_epoch, bool(options["prog_bar"]), bool(options["logger"]))
        if name in self.options and self.options[name] != resolved:
            # As Lightning's: one name is one series, reported one way; the later call silently decided
            # where the value went (the bar, the loggers, per step or per epoch).
            raise ValueError(
                f"{self.where}: self.log({name!r}, ...) was called twice in this step with different "
                f"arguments ({options_text(self.options[name])}, then {options_text(resolved)}); as in "
                "Lightning this is not allowed: log it once, or under two names"
            )
        self.values[name] = _scalar(value, f"{self.where}: self.log({name!r}, ...)", self.cast)
        self.options[name] = resolved
        if (
            not add_dataloader_idx
        ):  # (its name keeps no '/dataloader_idx_k' where a stage has several loaders)
            self.unindexed.add(name)

    def options_beside(self, metrics: dict[str, Any]) -> dict[str, LogOptions]:
        """`options`, each marked `replaces_returned` where its name is one a returned value gets in training
        (`train_loss`, `train_<metric>`; the loss and `metrics` the step returned)."""
        prefix = f"{self.stage}_"
        returned = {k if k.startswith(prefix) else prefix + k for k in ("loss", *metrics)}
        return {
            k: replace(o, replaces_returned=True) if k in returned else o for k, o in self.options.items()
        }

    def _weighs_alone(self, name: str, batch_size: int) -> bool:
        """Lightning's `self.log(..., batch_size=)` weights its one value: so does an int here, by a weight
        of its own, unless it is the weight every value of the step already gets, `batch_size(batch)`.
        (It used to be refused where it differed, when a step had one weight for all its values.) Checked
        while the step is traced: the batch's shapes, and so its weight, are those of every call of that
        trace. True: it weights its value alone."""
        try:
            weight = self.batch_weight()
        except Exception:  # an override that counts from the values (a host read): no number to compare
            return True
        return not isinstance(weight, numbers.Real) or batch_size != weight


# A step returns the own weights of its returned metrics and of the values `self.log` weighted by an array
# in one dict (its graph's outputs), the latter under this prefix: a logged name may equal a returned one.
_LOGGED_WEIGHT = "self.log "


def with_logged_weights(metric_weights: dict[str, mx.array], logs: StepLogs) -> dict[str, mx.array]:
    """`metric_weights` and the own weights of the values `logs` holds, as one dict for a step to return."""
    return {**metric_weights, **{_LOGGED_WEIGHT + name: w for name, w in logs.weights.items()}}


def split_logged_weights(weights: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A step's returned weights (`with_logged_weights`) → (the returned metrics', the logged values')."""
    logged = {k[len(_LOGGED_WEIGHT) :]: w for k, w in weights.items() if k.startswith(_LOGGED_WEIGHT)}
    return {k: w for k, w in weights.items() if not k.startswith(_LOGGED_WEIGHT)}, logged


class NotANumber(TypeError, ValueError):
    """`self.log` in a step given no number: a TypeError, and the ValueError Lightning raises there."""


def _scalar(value: Any, where: str, cast: bool = True) -> mx.array:
    if isinstance(value, mx.array):
        if value.size != 1:
            raise ValueError(f"{where}: expected a scalar, got an array of shape {tuple(value.shape)}")
        return value.reshape(()).astype(mx.float32) if cast else value.reshape(())
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return mx.array(float(value), mx.float32)
    raise NotANumber(
        f"{where}: expected a number or a scalar mx.array, got {type(value).__name__}{metric_object_hint(value)}"
    )


def metric_object_hint(value: Any) -> str:
    """For a torchmetrics-style metric object given to `self.log` (Lightning computes and resets one
    itself; here a logged value is a number): how to log its value instead. Empty for anything else."""
    if not callable(getattr(value, "compute", None)):
        return ""
    return (
        " (a metric object: log its value, self.log(name, metric.compute()), and call metric.reset() where "
        "its epoch ends; the Trainer does not compute or reset metric objects as Lightning does)"
    )


__all__ = [
    "LogOptions",
    "StepLogs",
    "check_loss_output",
    "metric_object_hint",
    "split_eval_outputs",
    "split_logged_weights",
    "with_logged_weights",
]
