"""Evaluation: one function over (compiled eval step, loader, limit) that serves the validation inside
`fit`, `validate`, `test` and the sanity check; and the eval-mode switch around it.
"""

from __future__ import annotations

import contextlib
import itertools
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from audiotrain._caller import user_stacklevel
from audiotrain.distributed.failures import peer_was_lost
from audiotrain.train.interrupt import eval_compiling_again
from audiotrain.train.lazy import LazyScalar
from audiotrain.train.loaders import check_batch
from audiotrain.train.module import TrainModule
from audiotrain.train.outputs import split_logged_weights
from audiotrain.train.profilers import PassThroughProfiler, Profiler, profiled_batches
from audiotrain.train.state import weighted_values
from audiotrain.train.step import EvalStep

import mlx.core as mx


def prefixed(prefix: str, name: str) -> str:
    """`name` under `prefix` (a metric already named `train_acc` stays `train_acc`)."""
    return name if name.startswith(prefix) else prefix + name


@contextlib.contextmanager
def eval_mode(module: TrainModule):
    """The module in eval mode inside, and afterwards every submodule's own mode back (as Lightning
    does): a `submodule.eval()` made in a training hook survives a validation."""
    before = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in before:
            m._set_training_mode(training)


@contextlib.contextmanager
def explaining_step_errors(where: str, batches: str, batch_idx: int, batch: Any):
    """Inside, an error MLX raises evaluating a step's outputs names the step, the batches it may come from
    (`batches`: "batch 3", or "batch 2 or 3" where the one before was still being evaluated) and the dtypes
    and shapes of `batch` (number `batch_idx`), with MLX's message. MLX's own ("[GatherAxis::eval_cpu]
    Cannot gather with indices type.", from float class labels) names none of them, and its traceback ends
    in the loop, not in the step that built the graph. MLX's plain RuntimeError or ValueError only, raised
    again as the same type, chained."""
    try:
        yield
    except (RuntimeError, ValueError) as err:
        if type(err) not in (RuntimeError, ValueError):  # (ours, already explained: KernelCompileError)
            raise
        if peer_was_lost(
            err
        ):  # (another rank's failure, not this batch's: said as such where it is reported)
            raise
        raise type(err)(
            f"{where}, {batches}: MLX failed evaluating its outputs: {err} (the arrays of batch {batch_idx}: "
            f"{describe_batch(batch)}; a dtype the operation does not take, such as float class labels "
            "in an index or a loss, is a common cause)"
        ) from err


@contextlib.contextmanager
def naming_the_batch(where: str, batch_idx: int, batch: Any):
    """Inside, a TypeError, ValueError or IndexError the step's own code raises while it is traced (a
    collate_fn's list where the loss reads ``batch["features"]``: "list indices must be integers or slices,
    not str"; features of another width than the model's first layer) is raised again, as the same type and
    chained, with the step, the batch and its arrays' dtypes and shapes after its message: Python's and
    MLX's name none of them. Subclasses (ours, already explained) pass as they are."""
    try:
        yield
    except (TypeError, ValueError, IndexError) as err:
        if type(err) not in (TypeError, ValueError, IndexError) or peer_was_lost(err):
            raise
        if getattr(err, "names_its_source", False):  # (a hook's, already named: `call_traced_hook`)
            raise
        raise type(err)(
            f"{err} ({where}, batch {batch_idx}; the arrays of batch {batch_idx}: {describe_batch(batch)})"
        ) from err


def describe_batch(batch: Any, path: str = "batch", most: int = 8) -> str:
    """The dtype and shape of each array in `batch` (the first `most`), e.g.
    "batch[0]: float32 (16, 8), batch[1]: int32 (16,)"."""
    leaves: list[str] = []

    def walk(tree: Any, at: str) -> None:
        if isinstance(tree, dict):
            for k, v in tree.items():
                walk(v, f"{at}[{k!r}]")
        elif isinstance(tree, (list, tuple)):
            for i, v in enumerate(tree):
                walk(v, f"{at}[{i}]")
        elif hasattr(tree, "dtype") and hasattr(tree, "shape"):
            leaves.append(f"{at}: {str(tree.dtype).removeprefix('mlx.core.')} {tuple(tree.shape)}")
        else:
            leaves.append(f"{at}: {type(tree).__name__}")

    walk(batch, path)
    more = f", ... ({len(leaves)} arrays in all)" if len(leaves) > most else ""
    return ", ".join(leaves[:most]) + more


@dataclass
class EvalSums:
    """Weighted sums of an evaluation's results, by the name they are reported under, and each name's
    total weight: a value reported by some batches only is averaged over those (as Lightning does)."""

    sums: dict[str, mx.array] = field(default_factory=dict)
    weights: dict[str, float | mx.array] = field(default_factory=dict)
    batches: int = 0
    stopped: bool = False  # a stop request (Ctrl-C) ended it early: its means would be biased

    def add(
        self,
        values: dict[str, mx.array],
        weight: float | mx.array,
        own_weights: dict[str, mx.array] | None = None,
    ) -> None:
        """Add a batch's `values`, each weighted by `weight` (a number, or a scalar array the device
        computes: summed there, not read) or by its entry in `own_weights`."""
        own_weights = own_weights or {}
        for name, value in values.items():
            w = own_weights.get(name, weight)
            weighted = weighted_values(value, w)
            self.sums[name] = self.sums[name] + weighted if name in self.sums else weighted
            self.weights[name] = self.weights.get(name, 0.0) + w
        self.batches += 1

    def arrays(self) -> list[mx.array]:
        """The sums and the weights the device computes (own weights)."""
        return [*self.sums.values(), *(w for w in self.weights.values() if isinstance(w, mx.array))]


def _warn_of_unread_outputs(where: str, outputs: dict, hook: str) -> None:
    """An array with dimensions beside the loss is an output for `hook` (`split_eval_outputs`), not a
    metric: a metric kept as shape (1,) (`keepdims=True`), logged before outputs were passed on, is then
    neither logged nor read by anything, silently."""
    shapes = ", ".join(
        f"{k!r} (shape {tuple(v.shape)})" if isinstance(v, mx.array) else repr(k) for k, v in outputs.items()
    )
    warnings.warn(
        f"{where} returned {shapes} beside its loss: an array with dimensions there is not a metric (a "
        "metric has shape (): mx.mean(...) without keepdims, or value.reshape(())) but an output for "
        f"{hook}(outputs, batch, batch_idx), which no callback or hook of yours defines: it is not "
        "logged, and dropped",
        UserWarning,
        stacklevel=user_stacklevel(),
    )


def evaluate(
    step: EvalStep,
    loader: Any,
    limit: int | None,
    prefix: str,
    batch_size: Callable[[Any], float | mx.array],
    on_batch: Callable[[dict, Any, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_batch_start: Callable[[Any, int], None] | None = None,
    transfer: Callable[[Any], Any] | None = None,
    stage_name: str = "evaluation",
    *,
    profiler: Profiler | None = None,
    profile_as: str = "validation",
    pass_outputs: bool = True,
) -> EvalSums:
    """Run `step` over at most `limit` batches of `loader`, summing each result weighted by
    `batch_size(batch)`, or a metric returned as `(value, weight)` by its own weight (0 for a batch the
    loader names as padding, `DataLoader.padding_batches`, whose batch hooks are still called). Returned loss
    and metrics are reported under `prefix` (`val_loss`), values the step logged with `self.log` under
    their own names (also under `prefix` when the step is the default one that runs the training code).
    `stage_name` names the stage in an error MLX raises evaluating a batch ("sanity-check validation").
    `profiler` times the loader, the step and the waits as the stage's `profilers.NEXT_BATCH_ACTIONS`,
    `[Trainer].<profile_as>_step`, `_dispatch` and `_wait`. The outputs the step returned beside its
    metrics (`split_eval_outputs`: a batch's scores) join `on_batch`'s dict as arrays, dispatched with the
    batch's sums, where `pass_outputs` (a batch-end hook of the user's reads them); else they are dropped."""
    timer = profiler if profiler is not None else PassThroughProfiler()
    out = EvalSums()
    before = None  # the sums up to the batch before, while the device may still run this one
    where = f"{step.where} in {stage_name}"
    warned_unread = False  # (outputs beside a loss that no hook reads: said once a stage)
    # (a limit stops the reading: no batch past it is fetched, or timed as one)
    batches = loader if limit is None else itertools.islice(loader, limit)
    for batch_idx, batch in enumerate(profiled_batches(batches, timer, profile_as)):
        if limit is not None and batch_idx >= limit:
            break
        if should_stop is not None and should_stop():
            out.stopped = True
            break
        if transfer is not None:
            batch = transfer(batch)  # (Lightning's batch hooks)
        check_batch(batch)
        # A padding batch repeats a sample another rank evaluates: it runs, weighed 0 in the means, and its
        # batch hooks run too (as Lightning's see DistributedSampler's repeats): the ranks step together, and
        # a hook that calls a collective on every batch (an all_reduce, self.all_gather) waited for ever on
        # the rank whose hook was skipped.
        padding = batch_idx in getattr(loader, "padding_batches", ())
        if on_batch_start is not None:
            on_batch_start(batch, batch_idx)
        with timer.profile(f"[Trainer].{profile_as}_step"), naming_the_batch(where, batch_idx, batch):
            loss, metrics, logged, metric_weights, outputs = step(batch, mx.array(batch_idx, mx.int32))
        if not pass_outputs:
            if outputs and loss is not None and not warned_unread:
                warned_unread = True
                _warn_of_unread_outputs(where, outputs, f"on_{profile_as}_batch_end")
            outputs = None  # (no hook reads them: left unevaluated)
        returned = {"loss": loss, **metrics} if loss is not None else dict(metrics)
        values = {for_stage(prefix, k): v for k, v in returned.items()}
        metric_weights, logged_weights = split_logged_weights(metric_weights)
        own_weights = {for_stage(prefix, k): w for k, w in metric_weights.items()}
        for name, value in logged.items():  # (a logged value replaces a returned one of its name)
            values[logged_name(step, prefix, name)] = value
            own_weights.pop(logged_name(step, prefix, name), None)
            if name in logged_weights:  # (`self.log(..., batch_size=<an array>)`)
                own_weights[logged_name(step, prefix, name)] = logged_weights[name]
        if padding:
            out.add(values, 0.0)
        else:
            out.add(values, batch_size(batch), own_weights)
        # The device evaluates this batch while the host fetches the next; waiting for the batch before
        # bounds what is in flight. The first batch is waited for at once: an error MLX raises in a graph
        # (a dtype it cannot take) shows there and names one batch; a later batch's surfaces at its own
        # async_eval or at the next one's wait for it.
        batches = "batch 0" if batch_idx == 0 else f"batch {batch_idx - 1} or {batch_idx}"
        with explaining_step_errors(where, batches, batch_idx, batch):
            with timer.profile(f"[Trainer].{profile_as}_dispatch"):
                # (a Ctrl-C may have ended MLX's compiler; outputs in the same dispatch: no sync of their own)
                eval_compiling_again(mx.async_eval, [*out.arrays(), *([outputs] if outputs else [])])
            with timer.profile(f"[Trainer].{profile_as}_wait"):
                if batch_idx == 0:
                    mx.eval(out.arrays())
                if before is not None:
                    mx.eval(before)
        before, last = out.arrays(), (batch_idx, batch)
        if on_batch is not None:
            scalars = {k: LazyScalar(v) for k, v in {**returned, **logged}.items()}
            on_batch({**scalars, **outputs} if outputs is not None else scalars, batch, batch_idx)
    if before is not None:
        with (
            explaining_step_errors(where, f"batch {last[0]}", *last),
            timer.profile(f"[Trainer].{profile_as}_wait"),
        ):
            mx.eval(before)  # (the means read it next anyway)
    return out


def logged_name(step: EvalStep, prefix: str, name: str) -> str:
    """The name a value `step` logged as `name` is reported under (`prefix` "val_": the default step's
    `acc` as `val_acc`)."""
    return for_stage(prefix, name) if step.prefixes_logged_names else name


def for_stage(prefix: str, name: str) -> str:
    """An evaluation metric's name: `acc` and the training code's `train_acc` become `val_acc` (with
    `prefix` "val_"); `val_acc` stays."""
    return prefixed(prefix, name.removeprefix("train_") if prefix != "train_" else name)


__all__ = [
    "EvalSums",
    "describe_batch",
    "eval_mode",
    "evaluate",
    "explaining_step_errors",
    "naming_the_batch",
    "for_stage",
    "prefixed",
]
