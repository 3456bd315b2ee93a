"""Lightning's manual optimization (`automatic_optimization = False`), the MLX way: a GAN's alternating updates.

MLX differentiates a function, not a loss already computed, so `self.manual_backward` takes what Lightning's
takes the result of: the function that computes the loss (a closure over the batch), and returns the loss::

    def training_step(self, batch, batch_idx):
        opt_g, opt_d = self.optimizers()
        d_loss = self.manual_backward(lambda: self.discriminator_loss(batch))
        opt_d.step()
        opt_d.zero_grad()
        ...

Each optimizer updates only its own parameters (`configure_optimizers` says which: `{"optimizer": opt,
"params": self.discriminator}`), with the gradients `manual_backward` computed for them since its last
`zero_grad()`, summed as torch's `.grad` sums them. Under `Trainer(compile=True)` each `manual_backward` is
compiled per loss function's code, the arrays it closes over its inputs (`manual_compile`), and each
`opt.step()`'s update per optimizer; the rest of the step (the hooks, the guard, clipping) runs eagerly.
What the Trainer keeps doing: logging (`self.log`), checkpoints with exact resume (every optimizer's state),
the non-finite guard (an update whose gradients are not finite is skipped), Lightning's hooks of a manual
step (`on_before_backward(loss)`, `on_after_backward()`, `on_before_optimizer_step(optimizer)`, on the
callbacks and the module), data parallel (`manual_backward`
averages the gradients across processes: every rank calls it the same number of times) and
`self.global_step`, which counts optimizer steps, as Lightning's (two per batch for a GAN stepping both).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from functools import partial
from typing import Any

from audiotrain.distributed import collectives
from audiotrain.train.manual_compile import CompiledBackward
from audiotrain.train.module import LightningOptimizer, TrainModule
from audiotrain.train.no_gradient import NoGradientWatch
from audiotrain.train.outputs import StepLogs, check_loss_output, with_logged_weights
from audiotrain.train.parameter_tree import held
from audiotrain.train.schedulers import IntervalSchedule
from audiotrain.train.step import StepConfig, StepState, trainable_names
from audiotrain.train.transforms import (
    average_across_processes,
    clip_by_global_norm,
    clip_by_value,
    global_norm,
)

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx.utils import tree_flatten, tree_unflatten

Owner = Callable[[str, mx.array], bool]

# The manual step whose gradients `grad_norm` reads: set while its training_step and its hooks run.
_RUNNING: ContextVar[ManualStep | None] = ContextVar("audiotrain_manual_step", default=None)


def running_manual_step() -> ManualStep | None:
    return _RUNNING.get()


@contextlib.contextmanager
def _running(step: ManualStep) -> Iterator[None]:
    token = _RUNNING.set(step)
    try:
        yield
    finally:
        _RUNNING.reset(token)


# Trainer settings of the automatic step that a manual step does itself (Lightning refuses the first two too).
_AUTOMATIC_ONLY = {
    "gradient_clip_val": "clip in training_step with self.clip_gradients(opt, gradient_clip_val=..., "
    "gradient_clip_algorithm='norm' or 'value') before opt.step()",
    "accumulate_grad_batches": "sum gradients over several batches by calling manual_backward on each and "
    "opt.step() / opt.zero_grad() every N batches (gradients add up until zero_grad)",
}


def refuse_automatic_settings(trainer: Any, module: TrainModule) -> None:
    """The Trainer's flags that only the automatic step reads, refused for a manual module as Lightning
    refuses them ("Automatic gradient clipping is not supported for manual optimization")."""
    name = type(module).__name__
    given = {
        "gradient_clip_val": trainer.gradient_clip_val is not None,
        "accumulate_grad_batches": trainer.accumulate_grad_batches != 1,
    }
    for flag, how in _AUTOMATIC_ONLY.items():
        if given[flag]:
            raise ValueError(
                f"Trainer({flag}={getattr(trainer, flag)!r}) with {name}.automatic_optimization = False: the "
                f"Trainer does not {'clip' if flag.startswith('gradient') else 'accumulate'} for a manual "
                f"step (as in Lightning); {how}"
            )
    if trainer.precision == "bf16-mixed":
        raise ValueError(
            f"Trainer(precision='bf16-mixed') with {name}.automatic_optimization = False: a manual step's "
            "loss functions run on the float32 weights as written; use precision='32', or 'bf16-true' "
            "(bfloat16 weights), or cast inside the loss function"
        )


def refuse_counted_schedules(optimizer: optim.Optimizer, module: TrainModule, where: str) -> None:
    """An lr_scheduler stepped per epoch or every N batches, refused for a manual module: its epochs are
    derived from the optimizer's steps as if one stepped each batch, and a manual step's steps are its own
    (two a batch: the "epoch" rate changed mid-epoch). Lightning steps no scheduler of a manual module."""
    schedule = optimizer._schedulers.get("learning_rate")
    if isinstance(schedule, IntervalSchedule) and schedule.needs_epoch_length:
        counted = "epoch" if schedule.interval == "epoch" else f"{schedule.frequency} steps"
        raise ValueError(
            f"{where}: an lr_scheduler stepped once every {counted} ('interval': {schedule.interval!r}, "
            f"'frequency': {schedule.frequency}; Lightning's default interval is 'epoch') with "
            f"{type(module).__name__}.automatic_optimization = False: a manual step's optimizer steps are "
            "not the batches, so its epochs cannot be counted from them (Lightning steps no scheduler of a "
            "manual module; yours would call sch.step()). Give {'scheduler': schedule, 'interval': 'step'}, "
            "evaluated at this optimizer's own steps (sch.step() after each opt.step()), with the schedule "
            "counted in those steps"
        )


# ---- which parameters each optimizer updates ---------------------------------------------------------
def _submodule_paths(module: TrainModule, sub: nn.Module, where: str) -> list[str]:
    """Every path `sub` is at: a submodule kept under a second name too (`self._gen = self.generator`, whose
    private name MLX leaves out of the parameters) updates under either."""
    if sub is module:
        return [""]
    paths = [name for name, candidate in module.named_modules() if candidate is sub]
    if paths:
        return paths
    raise ValueError(
        f"{where}: 'params' is a {type(sub).__name__} that is not a submodule of {type(module).__name__} "
        "(give one of its own layers, e.g. self.discriminator, or a parameter-name prefix)"
    )


def _owner(params: Any, module: TrainModule, where: str) -> Owner:
    if isinstance(params, nn.Module):
        params = _submodule_paths(module, params, where)
    if isinstance(params, str):
        prefix = params
        return lambda path, _: not prefix or path == prefix or path.startswith(prefix + ".")
    if isinstance(params, (list, tuple)) and all(isinstance(p, (str, nn.Module)) for p in params):
        parts = [_owner(p, module, where) for p in params]
        return lambda path, value: any(part(path, value) for part in parts)
    if callable(params):
        return params
    raise TypeError(
        f"{where}: 'params' must be a submodule (self.generator), a parameter-name prefix ('generator'), a "
        f"list of those, or a filter (path, array) -> bool as MLX's MultiOptimizer takes; got {params!r}"
    )


def manual_optimizers(configured: Any, module: TrainModule, where: str) -> tuple[Any, list[Owner]] | None:
    """Several optimizers from a manual module's `configure_optimizers`, each with the parameters it
    updates: `[{"optimizer": opt_g, "params": self.generator}, {"optimizer": opt_d, "params":
    self.discriminator}]` (Lightning's list, each optimizer built on its own parameters there). Returns one
    MultiOptimizer of them (its state is every optimizer's: checkpoints save it as a MultiOptimizer's) and
    the owners; None for a single optimizer or a MultiOptimizer, which the usual configuration takes."""
    if isinstance(configured, tuple) and len(configured) == 2 and isinstance(configured[0], (list, tuple)):
        if not _with_params(configured[0]):
            return None  # (one optimizer and its schedules: Lightning's ([opt], [sch]), the usual form)
        if configured[1]:
            raise TypeError(_no_scheduler_objects(where))
        configured = configured[0]
    if isinstance(configured, dict) and "params" in configured:
        configured = [configured]  # (one optimizer on some of the parameters)
    if not _with_params(configured):
        return None
    optimizers, owners = [], []
    for i, item in enumerate(configured):
        at = f"{where} item {i}"
        if isinstance(item, optim.Optimizer):
            raise TypeError(
                f"{at}: a bare {type(item).__name__} among several optimizers: say which parameters each "
                "updates (an MLX optimizer is not built on its parameters, as torch's is): "
                '{"optimizer": opt, "params": self.discriminator} (a submodule, a parameter-name prefix, '
                "a list of those, or a filter (path, array) -> bool)"
            )
        if not isinstance(item, dict) or "optimizer" not in item:
            raise TypeError(f'{at}: expected {{"optimizer": opt, "params": ...}}, got {item!r}')
        unknown = set(item) - {"optimizer", "params"}
        if "lr_scheduler" in unknown:
            raise TypeError(_no_scheduler_objects(at))
        if unknown:
            raise TypeError(f"{at}: unknown keys {sorted(unknown)} (expected 'optimizer' and 'params')")
        if not isinstance(item["optimizer"], optim.Optimizer):
            raise TypeError(
                f"{at}: 'optimizer' must be an mlx.optimizers optimizer, got {item['optimizer']!r}"
            )
        if "params" not in item:
            raise TypeError(f"{at}: no 'params': say which parameters this optimizer updates")
        if any(item["optimizer"] is seen for seen in optimizers):
            raise ValueError(f"{at}: the same optimizer object twice; give each its own")
        optimizers.append(item["optimizer"])
        owners.append(_owner(item["params"], module, at))
    _refuse_shared_parameters(module, owners, where)
    for i, owns in enumerate(owners):
        if not any(owns(path, value) for path, value in tree_flatten(module.parameters())):
            raise ValueError(
                f"{where} item {i}: its 'params' take none of {type(module).__name__}'s parameters (MLX "
                "names them by attribute path: 'generator.layers.0.weight', not torch's 'generator.0.weight')"
            )
    multi = ManualMultiOptimizer(optimizers, owners[:-1])
    multi.filters[-1] = owners[-1]  # (MLX's last takes the rest: here only its own; the others train not)
    return multi, owners


class ManualMultiOptimizer(optim.MultiOptimizer):
    """A manual module's optimizers (Lightning's list) as one MLX MultiOptimizer, each optimizer given only
    the parameters its filter takes: MLX's gives a lone optimizer every parameter (its state would hold the
    ones it never updates). Its name is the one a checkpoint's mismatch message shows."""

    def _split_dictionary(self, gradients: dict) -> list:
        flat = tree_flatten(gradients)
        parts = [[(k, g) for k, g in flat if owns(k, g)] for owns in self.filters]
        return [tree_unflatten(part) if part else {} for part in parts]


def _with_params(configured: Any) -> bool:
    """Whether `configure_optimizers` returned optimizers each on its parameters: several, or one as
    `{"optimizer": opt, "params": ...}` (a bare optimizer, or a list of one, updates every parameter)."""
    if not isinstance(configured, (list, tuple)) or not configured:
        return False
    return len(configured) > 1 or (isinstance(configured[0], dict) and "params" in configured[0])


def _no_scheduler_objects(where: str) -> str:
    return (
        f"{where}: learning-rate schedulers beside manual optimizers given with 'params': give each "
        "optimizer its schedule as its learning rate (optim.Adam(learning_rate=optim.cosine_decay(2e-4, "
        "10_000))), a function of that optimizer's own update count, so opt.step() steps it (Lightning's "
        "sch.step() after it)"
    )


def _refuse_shared_parameters(module: TrainModule, owners: list[Owner], where: str) -> None:
    for path, value in tree_flatten(module.trainable_parameters()):
        holders = [i for i, owns in enumerate(owners) if owns(path, value)]
        if len(holders) > 1:
            raise ValueError(
                f"{where}: parameter {path!r} is in the 'params' of optimizers {holders}; each parameter "
                "may be updated by one optimizer only (torch refuses a parameter in two groups too)"
            )


def owners_of(optimizer: optim.Optimizer) -> list[Owner]:
    """The parameters each optimizer of a manual step updates: a MultiOptimizer's by its filters (the last
    one's is its own, or MLX's "the rest"), one optimizer all."""
    if isinstance(optimizer, optim.MultiOptimizer):
        return list(optimizer.filters)
    return [lambda path, value: True]


# ---- the handle a manual step steps ----------------------------------------------------------------
class ManualOptimizer(LightningOptimizer):
    """What `self.optimizers()` gives a manual module: Lightning's wrapper, whose `step()` updates this
    optimizer's parameters with the gradients `manual_backward` gave them since `zero_grad()`."""

    def __init__(self, optimizer: optim.Optimizer, manual: ManualStep, index: int):
        super().__init__(optimizer)
        object.__setattr__(self, "_manual", manual)
        object.__setattr__(self, "_index", index)

    def step(self, closure: Callable[[], Any] | None = None, **kwargs: Any) -> Any:
        """Lightning's `opt.step(closure=...)`: the closure (which calls manual_backward) first, then the
        update; returns what the closure returned."""
        if kwargs:
            raise TypeError(f"step(): unexpected arguments {sorted(kwargs)} (only closure=)")
        out = closure() if closure is not None else None
        self._manual.apply(self._index)
        return out

    def zero_grad(self, set_to_none: bool = True) -> None:
        self._manual.zero_grad(self._index)

    def toggle_model(self, *args: Any, **kwargs: Any) -> Any:
        return self._manual.toggled(self._index)

    def __iter__(self) -> Any:  # (one optimizer: Lightning's `opt = self.optimizers()` is not a list either)
        raise TypeError("self.optimizers() is one optimizer here: configure_optimizers returned one")

    def __getitem__(self, index: Any) -> Any:
        raise TypeError("self.optimizers() is one optimizer here: configure_optimizers returned one")


class _Toggled:
    def __init__(self, manual: ManualStep, index: int):
        self.manual, self.index = manual, index

    def __enter__(self) -> None:
        self.manual.toggle(self.index)

    def __exit__(self, *exc: Any) -> None:
        self.manual.untoggle(self.index)


class ManualStep:
    """The training step of a manual module, with `TrainStep`'s interface for the Trainer: `update` runs
    `training_step` eagerly and returns what it returned and logged; `steps_taken` says how many optimizer
    steps it took (each counted in the Trainer's global step as it was taken)."""

    def __init__(
        self,
        module: TrainModule,
        optimizer: optim.Optimizer,
        config: StepConfig,
        state=None,
        configured: optim.Optimizer | None = None,
        previous: ManualStep | None = None,
    ):
        self.module, self.optimizer, self.config = module, optimizer, config
        self.state = state or StepState(module, accumulate=False)
        self.log_options: dict = {}
        self.traced_reads: dict = {}  # (nothing is traced: the step reads the module as it is each batch)
        self.frozen_written: list[str] = []
        self.steps_taken = 0
        self._trains = trainable_names(module)
        # (every array the module holds, frozen too: one unfrozen since is no array appended to a list)
        # (since the fit's first step: a rebuild for what trains changed keeps it)
        self._held = (
            previous._held
            if previous is not None
            else frozenset(n for n, _ in tree_flatten(module.parameters()))
        )
        self._filters = owners_of(optimizer)
        parts = optimizer.optimizers if isinstance(optimizer, optim.MultiOptimizer) else [optimizer]
        self._parts = parts  # (each filter's optimizer, by index: `apply` steps them)
        # One handle for each optimizer configure_optimizers returned. A fine-tuning callback's parameter
        # groups (BackboneFinetuning's add_param_group: the Trainer's optimizer becomes a MultiOptimizer with
        # a group more) belong to the first, as Lightning adds them to trainer.optimizers[0]: its step
        # updates them too, and self.optimizers() stays what it was.
        n = len(owners_of(configured)) if configured is not None else len(parts)
        n = n if 0 < n <= len(parts) else len(parts)
        self._groups = [[i] for i in range(n)]
        self._groups[0] += list(range(n, len(parts)))
        self._owners = [self._any_of(group) for group in self._groups]
        self.handles = [ManualOptimizer(parts[i], self, i) for i in range(n)]
        self._grads: dict[str, mx.array] = {}  # dotted name -> the gradient summed since its zero_grad
        if previous is not None:
            if len(self._trains) > len(previous._trains):  # (arrays appended to a list between steps)
                _refuse_arrays_appended(module, tree_flatten(module.trainable_parameters()), self._held)
            self._take_over(previous)
        self._toggled: int | None = None
        self._skips = 0  # updates the guard skipped in this batch
        self._nonfinite = mx.array(False)  # whether an update applied without the guard was not finite
        self._where = f"{type(module).__name__}.training_step"
        # (the first manual_backward calls of each toggled optimizer, or of none: a loss reaching no weight)
        self._no_gradient: dict[int | None, NoGradientWatch] = {}
        self.extras: dict[str, Any] = {}  # what the last training_step returned besides its loss and metrics
        # manual_backward compiled per loss function's code (Trainer(compile=True)), kept across rebuilds
        self._compiled: CompiledBackward | None = None
        self._compiled_updates: dict[tuple, tuple[Callable, list]] = {}  # (optimizer, paths) -> update
        if config.compile:
            reused = previous._compiled if previous is not None else None
            self._compiled = reused or CompiledBackward(module, partial(_loss_function, module))

    def _take_over(self, previous: ManualStep) -> None:
        """The step the Trainer rebuilt mid-fit (what trains changed at an epoch start): its handles step
        this one (a module may keep `self.optimizers()` from on_train_start, as Lightning's go on
        working), and the gradients summed since their zero_grad carry on."""
        same = len(previous.handles) == len(self.handles) and all(
            old.optimizer is new.optimizer for old, new in zip(previous.handles, self.handles, strict=True)
        )
        if not same:
            return
        for handle in previous.handles:
            object.__setattr__(handle, "_manual", self)
        self.handles = previous.handles
        self._grads = dict(previous._grads)

    # -- TrainStep's interface ---------------------------------------------------------------------
    @property
    def trains(self) -> frozenset[str]:
        return self._trains

    @property
    def eval_targets(self) -> list:
        return [self.module.state, self.optimizer.state, mx.random.state, self.state.arrays]

    def trained_other_than_asked(self) -> None:
        return None  # (each manual_backward differentiates what is trainable then)

    def follow_replaced_submodules(self) -> None:
        return None  # (each compiled manual_backward walks the submodules: `CompiledBackward`)

    def trace_again(self) -> None:
        """Trace the compiled updates again at their next call: a learning-rate schedule taken off an
        optimizer (StochasticWeightAveraging's) is evaluated in their graphs."""
        self._compiled_updates.clear()

    def keep_frozen_written(self, names: Any) -> None:
        pass

    def accumulate(self, batch: Any, batch_idx: mx.array):
        raise RuntimeError("a manual step has no accumulation window (accumulate_grad_batches is refused)")

    def close_window(self, n_micro: mx.array) -> None:
        pass

    def update(self, batch: Any, batch_idx: mx.array, n_micro: mx.array):
        module = self.module
        self.steps_taken, self._skips, self._nonfinite = 0, 0, mx.array(False)
        logs = StepLogs("train", self._where, lambda: module.batch_size(batch))
        object.__setattr__(module, "_manual_step", self)
        try:
            with module._collect_logs(logs), _running(self):
                # (Lightning passes the batch index as an int: `if batch_idx % 2 == 0` reads it eagerly here)
                out = module.training_step(batch, int(batch_idx.item()))
        finally:
            object.__setattr__(module, "_manual_step", None)
            self._toggled = None
        self.extras = {}
        if isinstance(out, dict):
            # Lightning's manual step may return any dict, its batch-end hooks' `outputs`: what is not a
            # metric (a scalar, or a (value, weight) pair) goes there as it is (a string, the batch's
            # predictions for a callback), the metrics are reported as an automatic step's.
            self.extras = {k: v for k, v in out.items() if k != "loss" and not _is_metric(v)}
            out = {k: v for k, v in out.items() if k not in self.extras}
        if isinstance(out, dict) and "loss" not in out:
            _, metrics, metric_weights = check_loss_output({**out, "loss": mx.array(0.0)}, self._where)
            loss = None
        else:
            loss, metrics, metric_weights = check_loss_output(out, self._where, allow_none=True)
        self.log_options = {**self.log_options, **logs.options_beside(metrics)}
        self._count_skips()
        return loss, metrics, logs.values, with_logged_weights(metric_weights, logs)

    # -- what the module's manual calls do ----------------------------------------------------------
    def _any_of(self, group: list[int]) -> Owner:
        filters = [self._filters[i] for i in group]
        return filters[0] if len(filters) == 1 else lambda path, value: any(f(path, value) for f in filters)

    def _owned(self, index: int | None) -> Callable[[str, mx.array], bool]:
        if index is None:
            return lambda path, value: any(owns(path, value) for owns in self._owners)
        return self._owners[index]

    def backward(self, loss_fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        """`manual_backward(loss_fn, *args)`: the loss and its gradients for the trainable parameters (those
        of the toggled optimizer alone while one is toggled), added to what they hold since zero_grad.
        Returns the loss, or what loss_fn returned where that holds more: `(loss, parts)`, a dict with
        'loss'."""
        module = self.module
        if isinstance(loss_fn, mx.array) or not callable(loss_fn):
            raise TypeError(
                f"{type(module).__name__}.manual_backward({type(loss_fn).__name__}): MLX differentiates a "
                "function, not a loss already computed: pass the function that computes the loss, e.g. "
                "self.manual_backward(lambda: self.d_loss(batch)) (it returns the loss)"
            )
        master = module.trainable_parameters()
        flat = tree_flatten(master)
        if len(flat) != len(self._trains):
            _refuse_arrays_appended(module, flat, self._held)
        owned = self._owned(self._toggled)
        subset = {path: value for path, value in flat if owned(path, value)}
        outer = module._step_logs
        inner = StepLogs(outer.stage, outer.where, outer.batch_weight) if outer is not None else None
        if inner is not None:
            inner.options = outer.options  # (one name logged two ways is refused across both)

        compiled = None
        if self._compiled is not None:
            compiled = self._compiled(loss_fn, args, kwargs, tuple(subset), inner)
        if compiled is None:
            try:
                compiled = mx.value_and_grad(_loss_function(module, loss_fn, args, kwargs, inner))(subset)
            finally:
                module.update(master)
            if self._compiled is not None:
                self._compiled.ran_eagerly()
        (loss, (values, weights, returned)), grads = compiled
        self._hook("on_before_backward", loss)  # (after the loss: MLX computes it with its gradients)
        if outer is not None:
            outer.values.update(values)
            outer.weights.update(weights)
            outer.unindexed |= inner.unindexed
        if collectives.world_size() > 1:  # (MLX's averaging takes the nested tree)
            grads = dict(tree_flatten(average_across_processes(tree_unflatten(list(grads.items())))))
        watch = self._no_gradient.setdefault(self._toggled, NoGradientWatch(manual=True))
        if not watch.done:
            watch.see(module, grads, self._where)
        for path, grad in grads.items():
            self._grads[path] = self._grads[path] + grad if path in self._grads else grad
        self._hook("on_after_backward")
        # (fn's other outputs, (loss, parts) or a dict, come back with it, as value_and_grad gives them)
        return loss if returned is None else returned

    def apply(self, index: int) -> None:
        """`opt.step()`: this optimizer's summed gradients applied to its parameters (skipped, the weights
        and its state as they were, where one is not finite and the Trainer's guard is on). A step of
        training_step counts at once in `trainer.global_step`, as Lightning's (one in another hook does not
        count there either)."""
        self._hook("on_before_optimizer_step", self.handles[index].optimizer)
        self._update(index)
        if vars(self.module).get("_manual_step") is self:
            self.steps_taken += 1
            self.module._trainer.progress.global_step += 1

    def _update(self, index: int) -> None:
        module = self.module
        owns = self._owners[index]
        trainable = dict(tree_flatten(module.trainable_parameters()))
        grads = {p: g for p, g in self._grads.items() if p in trainable and owns(p, trainable[p])}
        if not grads:
            return  # (Lightning's step without gradients changes nothing either; it still counts)
        norm = global_norm(grads)
        if self.config.nonfinite_guard and not bool(mx.isfinite(norm).item()):
            self._skips += 1
            return
        # (without the guard the update goes through; the streak still counts it, as the automatic step's,
        # so max_consecutive_nonfinite stops the run: read lazily, at the Trainer's check)
        self._nonfinite = mx.logical_or(self._nonfinite, mx.logical_not(mx.isfinite(norm)))
        for group in self._groups[index]:  # (its own parameters, then those of groups added to it)
            mine = {p: g for p, g in grads.items() if self._filters[group](p, trainable[p])}
            if mine:
                self._apply_gradients(group, mine)
        if self.config.track_grad_norm or self.config.nonfinite_guard:
            self.state.arrays["grad_norm"] = norm.astype(mx.float32)
        module.on_after_optimizer_step()

    def _apply_gradients(self, group: int, grads: dict[str, mx.array]) -> None:
        """One optimizer's update of the parameters `grads` names, compiled per optimizer and parameter set
        (Trainer(compile=True)) over the module's state and that optimizer's: a few fused kernels where
        eagerly each parameter's update is a dozen small ones."""
        paths = tuple(grads)
        if not self.config.compile:
            _apply(self.module, self._parts[group], paths, *grads.values())
            return
        compiled = self._compiled_updates.get((group, paths))
        if compiled is None:
            state: list = []
            fn = mx.compile(
                partial(_apply, self.module, self._parts[group], paths), inputs=state, outputs=state
            )
            compiled = self._compiled_updates[(group, paths)] = (fn, state)
        fn, state = compiled
        # (read at each call: a checkpoint's load may give the optimizer a new state dict)
        state[:] = [self.module.state, self._parts[group].state]
        fn(*grads.values())

    def gradient(self, path: str) -> mx.array | None:
        """The gradient parameter `path` (a dotted MLX name) holds since its zero_grad, or None."""
        return self._grads.get(path)

    def _hook(self, name: str, *args: Any) -> None:
        """A backward or optimizer-step hook of Lightning's manual loop, on the callbacks that define it,
        then the module (neither base class has them: the compiled automatic step calls none). `grad_norm`
        reads this step's gradients there, also where a handle is stepped outside training_step."""
        with _running(self):
            self._hooks(name, *args)

    def _hooks(self, name: str, *args: Any) -> None:
        module = self.module
        trainer = module._trainer
        for callback in getattr(trainer, "callbacks", ()):
            if callable(getattr(type(callback), name, None)):
                getattr(callback, name)(trainer, module, *args)
        if callable(getattr(type(module), name, None)):
            getattr(module, name)(*args)

    def zero_grad(self, index: int) -> None:
        owns = self._owners[index]
        trainable = dict(tree_flatten(self.module.trainable_parameters()))
        self._grads = {p: g for p, g in self._grads.items() if not owns(p, trainable.get(p, g))}

    def clip(self, index: int, value: float, algorithm: str) -> None:
        owns = self._owners[index]
        trainable = dict(tree_flatten(self.module.trainable_parameters()))  # (a filter reads the parameter)
        mine = {p: g for p, g in self._grads.items() if owns(p, trainable.get(p, g))}
        if not mine:
            return
        if algorithm == "norm":
            mine, _ = clip_by_global_norm(mine, value)
        else:
            mine = clip_by_value(mine, value)
        self._grads.update(mine)

    def toggle(self, index: int) -> None:
        self._toggled = index

    def untoggle(self, index: int) -> None:
        self._toggled = None

    def toggled(self, index: int) -> _Toggled:
        return _Toggled(self, index)

    def _count_skips(self) -> None:
        arrays = self.state.arrays
        arrays["skipped_total"] = arrays["skipped_total"] + self._skips
        nonfinite = mx.logical_or(self._nonfinite, self._skips > 0).astype(mx.int32)
        streak = (arrays["nonfinite_streak"] + 1) * nonfinite
        arrays["nonfinite_streak"] = streak
        arrays["max_nonfinite_streak"] = mx.maximum(arrays["max_nonfinite_streak"], streak)


def _apply(module: TrainModule, optimizer: optim.Optimizer, paths: tuple[str, ...], *grads: mx.array) -> None:
    trainable = dict(tree_flatten(module.trainable_parameters()))
    tree = tree_unflatten(list(zip(paths, grads, strict=True)))
    params = tree_unflatten([(p, trainable[p]) for p in paths])
    module.update(optimizer.apply_gradients(tree, params))


def _loss_function(
    module: TrainModule, loss_fn: Callable[..., Any], args: tuple, kwargs: dict, inner: StepLogs | None
) -> Callable[[dict[str, mx.array]], Any]:
    """The function of the differentiated parameters `manual_backward` takes the value and gradients of:
    `loss_fn(*args, **kwargs)` on the module holding them, its `self.log` calls recorded in `inner`."""

    def loss_of(params: dict[str, mx.array]):
        outer = module._step_logs
        module.update(tree_unflatten(list(params.items())))
        object.__setattr__(module, "_step_logs", inner)
        try:
            out = loss_fn(*args, **kwargs)
        finally:
            object.__setattr__(module, "_step_logs", outer)
        loss = _scalar_loss(out, module)
        # (values logged inside leave as auxiliary outputs: kept inside they stay the transform's tracers;
        # so does what fn returned beside its loss, given back as fn returned it)
        logged = (dict(inner.values), dict(inner.weights)) if inner is not None else ({}, {})
        return loss, (*logged, None if isinstance(out, mx.array) else out)

    return loss_of


def _refuse_arrays_appended(module: TrainModule, flat: list, held_before: frozenset[str]) -> None:
    """Refuse arrays appended to a public list attribute since the step was built (`self.outputs.append(
    loss)`): MLX makes every array in a module's list a trainable parameter, so the next `opt.step()` met a
    weight its optimizer has no state for (a bare IndexError in mlx's tree_map), and it would be trained
    and saved as a weight."""
    added = [
        name
        for name, value in flat
        if name not in held_before and isinstance(held(module, name.rpartition(".")[0]), list)
    ]
    if not added:
        return
    owner = added[0].rpartition(".")[0]
    raise ValueError(
        f"{type(module).__name__}.{owner} (a list attribute) gained mx.arrays during training "
        f"({', '.join(added[:3])}{', ...' if len(added) > 3 else ''}): MLX makes every array held in a "
        "module's list a trainable parameter, which the optimizers would update and checkpoints save as "
        f"weights. Keep such values in a private attribute (self._{owner.rpartition('.')[2]}: a name "
        "starting with '_' is no parameter), or as numbers (float(loss))"
    )


def _is_metric(value: Any) -> bool:
    """A value an automatic step's dict reports as a metric: a scalar array, or a (value, weight) pair."""
    if isinstance(value, tuple) and len(value) == 2:
        return all(isinstance(v, mx.array) and v.size == 1 for v in value)
    return isinstance(value, mx.array) and value.size == 1


def _scalar_loss(out: Any, module: TrainModule) -> mx.array:
    if isinstance(out, tuple) and out and isinstance(out[0], mx.array):
        out = out[0]
    if isinstance(out, dict) and "loss" in out:
        out = out["loss"]
    if not isinstance(out, mx.array) or out.size != 1:
        raise TypeError(
            f"{type(module).__name__}.manual_backward(fn): fn must return the loss, a scalar mx.array "
            f"(or a dict with 'loss'); got {type(out).__name__}"
            + (f" of shape {tuple(out.shape)}" if isinstance(out, mx.array) else "")
        )
    return out.reshape(()).astype(mx.float32) if out.dtype != mx.float32 else out.reshape(())
