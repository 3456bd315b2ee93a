"""The compiled training and evaluation steps, and the gradient transforms they chain.

One optimizer update is: mean of accumulated micro-batch gradients → (cross-process average) →
clip (norm or value) → non-finite guard → a single `optimizer.update`. Everything happens inside
one compiled graph over explicit state, so no Python number ever enters it (MLX keys its compile
cache on Python scalars and would retrace every step).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from audiotrain.train.guarded_update import guarded_update
from audiotrain.train.module import TrainModule

import mlx.core as mx
import mlx.optimizers as optim
from mlx.utils import tree_flatten, tree_map

PRECISIONS = ("32", "bf16-mixed", "bf16-true")


# ---- gradient transforms: small pure functions of pytrees ----------------------------------------
def clip_by_global_norm(grads: Any, max_norm: float, norm: mx.array | None = None) -> tuple[Any, mx.array]:
    """Scale `grads` so their global L2 norm is at most `max_norm`; returns (grads, norm before).

    Pass `norm` when it is already computed (the step computes it once for the guard and logging).
    """
    norm = global_norm(grads) if norm is None else norm
    scale = mx.minimum(max_norm / (norm + 1e-6), 1.0)
    return tree_map(lambda g: g * scale.astype(g.dtype), grads), norm


def clip_by_value(grads: Any, max_value: float) -> Any:
    """Clamp every gradient entry to [-max_value, max_value]."""
    return tree_map(lambda g: mx.clip(g, -max_value, max_value), grads)


def global_norm(grads: Any) -> mx.array:
    """The L2 norm of all gradients together (float32 scalar, in-graph)."""
    leaves = [g for _, g in tree_flatten(grads)]
    if not leaves:
        return mx.array(0.0)
    return mx.sqrt(mx.sum(mx.stack([_sum_all(g * g) for g in leaves])))


def all_finite(tree: Any) -> mx.array:
    """True when every entry of every array in `tree` is finite (a bool scalar, in-graph).

    Checks the plain sum of all entries: a NaN anywhere makes it NaN, an Inf makes it Inf (or NaN
    next to a -Inf). That is one read of the gradients, where an `isfinite` pass per tensor costs
    more than the whole backward pass on MLX's CPU backend and the norm needs a multiply pass too.
    Finite entries whose sum overflows float32 (~3e38) also count as non-finite, the right call
    for an update that large.
    """
    leaves = [g for _, g in tree_flatten(tree)]
    if not leaves:
        return mx.array(True)
    return mx.isfinite(mx.sum(mx.stack([_sum_all(g) for g in leaves])))


def _sum_all(x: mx.array) -> mx.array:
    """Sum of every entry of `x` as a float32 scalar.

    A matrix is reduced along its last axis first: MLX's CPU backend runs that row reduction much
    faster than one reduction over a large matrix (which cost ~15% of a small MLP's step). A
    matrix-vector product with ones is 3x faster on its own but measured slower inside the step.
    float16 is widened first so that a row sum cannot overflow its 65504 range and fake a
    non-finite step.
    """
    if x.dtype == mx.float16:
        x = x.astype(mx.float32)
    if x.ndim > 1:
        x = mx.sum(x, axis=-1)
    return mx.sum(x).astype(mx.float32)


def average_across_processes(grads: Any) -> Any:
    """Data-parallel hook: average gradients over `mx.distributed` ranks (identity for one process)."""
    group = mx.distributed.init() if mx.distributed.is_available() else None
    if group is None or group.size() == 1:
        return grads
    import mlx.nn as nn

    return nn.average_gradients(grads, group=group)


def _cast_floats(tree: Any, dtype: mx.Dtype) -> Any:
    def cast(x):
        if isinstance(x, mx.array) and mx.issubdtype(x.dtype, mx.floating) and x.dtype != dtype:
            return x.astype(dtype)
        return x

    return tree_map(cast, tree)


# ---- output checks (run at trace time, so they cost nothing once compiled) ----------------------
def check_loss_output(out: Any, where: str) -> tuple[mx.array, dict[str, mx.array]]:
    """Validate what `compute_loss`/`validation_step` returned and normalise it to (loss, metrics)."""
    if isinstance(out, dict):
        if "loss" not in out:
            raise TypeError(
                f"{where} returned a dict without a 'loss' key (keys: {sorted(out)}); return "
                "(loss, metrics_dict) or a dict with 'loss'"
            )
        out = dict(out)
        loss, metrics = out.pop("loss"), out
    elif isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict):
        loss, metrics = out
    elif isinstance(out, mx.array):
        loss, metrics = out, {}
    else:
        raise TypeError(
            f"{where} must return (loss, metrics_dict) with a scalar mx.array loss and a dict of scalar "
            f"mx.array metrics; got {type(out).__name__}"
        )
    if not isinstance(loss, mx.array):
        raise TypeError(f"{where}: the loss must be an mx.array scalar, got {type(loss).__name__}")
    if loss.size != 1:
        raise ValueError(
            f"{where}: the loss must be a scalar, got shape {tuple(loss.shape)}; reduce it (e.g. mx.mean)"
        )
    if not mx.issubdtype(loss.dtype, mx.floating):
        raise TypeError(f"{where}: the loss must be floating point, got {loss.dtype}")
    for name, value in metrics.items():
        if not isinstance(name, str):
            raise TypeError(f"{where}: metric names must be strings, got {name!r}")
        if name == "loss":
            raise ValueError(
                f"{where}: a metric is named 'loss', which would replace the loss itself in logs, history "
                "and callbacks (val_loss, ...); give it another name"
            )
        if not isinstance(value, mx.array):
            raise TypeError(
                f"{where}: metric {name!r} must be a scalar mx.array, got {type(value).__name__} "
                "(Python numbers inside the compiled step would be frozen at trace time)"
            )
        if value.size != 1:
            raise ValueError(f"{where}: metric {name!r} must be a scalar, got shape {tuple(value.shape)}")
    return loss.reshape(()), {k: v.reshape(()).astype(mx.float32) for k, v in metrics.items()}


# ---- failures while tracing ---------------------------------------------------------------------
_TRANSFORM_EVAL = "during function transformations"


def _structure_copy(tree: Any) -> Any:
    """The dicts and lists of `tree` copied, its leaves (arrays) shared."""
    if tree is mx.random.state:
        return list(tree)  # [key]
    if isinstance(tree, dict):
        return {k: _structure_copy(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_structure_copy(v) for v in tree]
    return tree


def _restore_in_place(container: Any, saved: Any) -> None:
    """Put `saved`'s leaves back into `container`'s own dicts and lists (compiled functions hold
    references to those containers, so they must be refilled, not replaced)."""
    if container is mx.random.state:  # not assignable: reseeding with the saved key restores it
        hi, lo = (int(v) for v in saved[0].tolist())
        mx.random.seed((hi << 32) | lo)
        return
    for key, value in saved.items() if isinstance(saved, dict) else enumerate(saved):
        current = container.get(key) if isinstance(container, dict) else container[key]
        same_kind = (isinstance(value, dict) and isinstance(current, dict)) or (
            isinstance(value, list) and isinstance(current, list)
        )
        if same_kind:
            _restore_in_place(current, value)
        else:
            container[key] = value


class StateGuard:
    """Undo what a failed trace left in the step's state.

    `mx.compile` (and `mx.value_and_grad`) swap tracer placeholders into the model, optimizer and
    RNG state while tracing; when user code raises mid-trace they stay there, and every later use
    of those arrays in the process fails ("Attempting to eval an array without a primitive"), the
    trained weights included. Tracing happens on a call with a batch structure not seen before, so
    only such calls pay for a snapshot (a Python walk over the state); the rest cost one signature.
    """

    def __init__(self, state: list, where: str, compiled: bool):
        self.state, self.where, self.compiled = state, where, compiled
        self._traced: set = set()

    def __call__(self, fn: Callable, *args: Any):
        saved = signature = None
        if self.compiled:  # uncompiled steps undo value_and_grad's swap themselves (try/finally)
            signature = _signature(args)
            if signature not in self._traced:
                saved = [_structure_copy(s) for s in self.state]
        try:
            out = fn(*args)
        except Exception as err:
            for container, snapshot in zip(self.state, saved or ()):
                _restore_in_place(container, snapshot)
            if _TRANSFORM_EVAL in str(err):
                raise RuntimeError(
                    f"{self.where} read an array's value while being traced (.item(), float(), numpy "
                    "conversion, or Python if/while on an array). It runs under mx.grad and mx.compile, "
                    f"so it must stay pure MLX: use mx.where for branches and return values as metrics. ({err})"
                ) from err
            raise
        if saved is not None:
            self._traced.add(signature)
        return out


def _signature(args: Any) -> tuple:
    """What MLX keys a compiled function's traces on: the structure, shapes and dtypes of array
    leaves and the values of everything else."""
    return tuple(
        (path, tuple(v.shape), v.dtype) if isinstance(v, mx.array) else (path, type(v), repr(v))
        for path, v in tree_flatten(args)
    )


@dataclass(frozen=True)
class StepConfig:
    """What the compiled training step does besides forward/backward."""

    clip_val: float | None = None
    clip_algorithm: str = "norm"  # "norm" | "value"
    accumulate_grad_batches: int = 1
    precision: str = "32"
    compile: bool = True
    # Skip updates with a non-finite loss or gradient. Costs a sum over all gradients and selects
    # fused into the update (guarded_update.py; 4-6% of a small MLP's step on the CPU backend).
    nonfinite_guard: bool = True
    # Compute and log the gradient norm even when norm clipping does not need it.
    track_grad_norm: bool = False

    @property
    def computes_norm(self) -> bool:
        """Whether the step computes the global gradient norm (and the trainer can log it)."""
        return self.track_grad_norm or (self.clip_val is not None and self.clip_algorithm == "norm")


class StepState:
    """In-graph counters and buffers the step carries between calls (saved in checkpoints)."""

    def __init__(self, module: TrainModule, accumulate: bool):
        self.arrays: dict[str, Any] = {
            "skipped_total": mx.array(0, mx.int32),  # updates skipped for non-finite gradients
            "skip_streak": mx.array(0, mx.int32),  # current run of consecutive skips
            "max_skip_streak": mx.array(0, mx.int32),  # longest run since the trainer last looked
            "grad_norm": mx.array(0.0, mx.float32),  # norm of the last applied gradient (before clip)
        }
        if accumulate:
            self.arrays["grad_accum"] = tree_map(
                lambda p: mx.zeros(p.shape, mx.float32), module.trainable_parameters()
            )

    def flat(self) -> dict[str, mx.array]:
        return dict(tree_flatten(self.arrays))


class TrainStep:
    """Builds the compiled micro-step (accumulate only) and update step for a module + optimizer.

    Call `accumulate(batch)` for micro-batches that do not end an accumulation window and
    `update(batch, n_micro)` for the one that does (`n_micro` is an mx.array: how many
    micro-batches the window held, so a short window at the end of an epoch still averages right).
    Both return (loss, metrics) as lazy arrays.
    """

    def __init__(self, module: TrainModule, optimizer: optim.Optimizer, config: StepConfig):
        self.module, self.optimizer, self.config = module, optimizer, config
        self.state = StepState(module, accumulate=config.accumulate_grad_batches > 1)
        self.traces = 0  # how many times Python traced a step (tests use it to prove no retracing)
        # The compiled function's state: everything the step reads and writes.
        self._graph_state = [module.state, optimizer.state, mx.random.state, self.state.arrays]
        if config.compile:
            wrap = partial(mx.compile, inputs=self._graph_state, outputs=self._graph_state)
            self._accumulate = wrap(self._accumulate_impl)
            self._update = wrap(self._update_impl)
        else:
            self._accumulate, self._update = self._accumulate_impl, self._update_impl
        self._guard = StateGuard(self._graph_state, f"{type(module).__name__}.compute_loss", config.compile)

    @property
    def eval_targets(self) -> list:
        """What to `mx.eval` after each call to materialise the step."""
        return self._graph_state

    # -- pieces ---------------------------------------------------------------------------------
    def _loss_and_grads(self, batch: Any) -> tuple[mx.array, dict, Any]:
        module, precision = self.module, self.config.precision
        master = module.trainable_parameters()

        def loss_fn(params):
            if precision == "bf16-mixed":
                # Forward and backward in bf16 on a bf16 copy; gradients flow back through the
                # cast, so they arrive in float32 for the float32 master weights.
                module.update(_cast_floats(params, mx.bfloat16))
                out = module.compute_loss(_cast_floats(batch, mx.bfloat16))
            else:
                module.update(params)
                out = module.compute_loss(batch)
            loss, metrics = check_loss_output(out, f"{type(module).__name__}.compute_loss")
            return loss.astype(mx.float32), metrics

        try:
            (loss, metrics), grads = mx.value_and_grad(loss_fn)(master)
        finally:
            module.update(master)  # the master weights, not value_and_grad's tracers (also on error)
        if precision == "bf16-mixed":
            grads = _cast_floats(grads, mx.float32)
        return loss, metrics, grads

    def _accumulate_impl(self, batch: Any):
        self.traces += 1
        loss, metrics, grads = self._loss_and_grads(batch)
        acc = self.state.arrays["grad_accum"]
        self.state.arrays["grad_accum"] = tree_map(lambda a, g: a + g.astype(mx.float32), acc, grads)
        return loss, metrics

    def _update_impl(self, batch: Any, n_micro: mx.array):
        self.traces += 1
        cfg, arrays = self.config, self.state.arrays
        loss, metrics, grads = self._loss_and_grads(batch)
        if "grad_accum" in arrays:
            # Mean, not sum, over the window: the effective batch is n_micro times larger, and the
            # learning rate should not have to know about it.
            grads = tree_map(lambda a, g: (a + g.astype(mx.float32)) / n_micro, arrays["grad_accum"], grads)
            arrays["grad_accum"] = tree_map(mx.zeros_like, arrays["grad_accum"])
        grads = average_across_processes(grads)
        # One reduction serves norm clipping, logging and the guard; without them the guard needs
        # only the cheaper plain sum (all_finite).
        norm = global_norm(grads) if cfg.computes_norm else None
        if cfg.clip_val is not None:
            if cfg.clip_algorithm == "norm":
                grads, _ = clip_by_global_norm(grads, cfg.clip_val, norm)
            else:
                grads = clip_by_value(grads, cfg.clip_val)
        if not cfg.nonfinite_guard:
            self.optimizer.update(self.module, grads)
            self.module.on_after_optimizer_step()
            if norm is not None:
                arrays["grad_norm"] = norm
            return loss, metrics
        grads_finite = mx.isfinite(norm) if norm is not None else all_finite(grads)
        finite = mx.logical_and(grads_finite, mx.isfinite(loss))
        # Skip the update in-graph when anything is non-finite: the weights, the optimizer state
        # (its step counter too) and what on_after_optimizer_step did all stay as they were.
        guarded_update(self.module, self.optimizer, grads, finite)
        skipped = mx.logical_not(finite).astype(mx.int32)
        streak = (arrays["skip_streak"] + 1) * skipped
        arrays["skip_streak"] = streak
        arrays["max_skip_streak"] = mx.maximum(arrays["max_skip_streak"], streak)
        arrays["skipped_total"] = arrays["skipped_total"] + skipped
        if norm is not None:
            arrays["grad_norm"] = mx.where(finite, norm, arrays["grad_norm"])
        return loss, metrics

    # -- public ---------------------------------------------------------------------------------
    def accumulate(self, batch: Any):
        return self._guard(self._accumulate, batch)

    def update(self, batch: Any, n_micro: mx.array):
        return self._guard(self._update, batch, n_micro)


class EvalStep:
    """Compiled evaluation of `validation_step`/`test_step`, traced with the module in eval mode."""

    def __init__(
        self, module: TrainModule, fn: Callable[[Any], Any], name: str, compile: bool, precision: str
    ):
        self.module, self.fn, self.name, self.precision = module, fn, name, precision
        self.traces = 0
        # Parameters are inputs (not constants baked in at trace time); eval writes no state.
        self._call = mx.compile(self._impl, inputs=[module.state]) if compile else self._impl
        self._guard = StateGuard([module.state], f"{type(module).__name__}.{name}", compile)

    def _impl(self, batch: Any):
        self.traces += 1
        if self.precision == "bf16-mixed":
            master = self.module.parameters()
            self.module.update(_cast_floats(master, mx.bfloat16))
            try:
                out = self.fn(_cast_floats(batch, mx.bfloat16))
            finally:
                self.module.update(master)
        else:
            out = self.fn(batch)
        loss, metrics = check_loss_output(out, f"{type(self.module).__name__}.{self.name}")
        return loss.astype(mx.float32), metrics

    def __call__(self, batch: Any):
        return self._guard(self._call, batch)
