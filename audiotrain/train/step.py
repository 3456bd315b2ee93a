"""The compiled steps: training (accumulate, update, close a window) and evaluation (validation, test,
predict).

Each is one pure function compiled over explicit state: the model, the optimizer, MLX's random state and
the step's own counters. No Python number enters it (MLX keys its compile cache on Python scalars and
would retrace every step): the batch index and the window size arrive as `mx.array`s.

Everything that changes what the graph computes decides when a function is rebuilt: the trainable set
(the Trainer rebuilds the `TrainStep`), and every submodule's `training` flag, checked at each call here
(a `submodule.eval()` in a hook must not be ignored by a graph traced in training mode). One compiled
function is kept per flag pattern, so switching back and forth traces each pattern once.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Collection, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Any

from audiotrain._caller import user_stacklevel
from audiotrain.distributed import collectives
from audiotrain.train.guarded_update import guarded_update, update_weights
from audiotrain.train.module import TrainModule, call_step
from audiotrain.train.no_gradient import NoGradientWatch, compiled_functions
from audiotrain.train.outputs import (
    StepLogs,
    as_float32,
    check_loss_output,
    split_eval_outputs,
    with_logged_weights,
)
from audiotrain.train.parameter_tree import explain_changed_parameter_tree, held, multi_optimizer_parts
from audiotrain.train.schedulers import count_skipped_update, skip_counters
from audiotrain.train.trace_guard import StateGuard, call_traced_hook
from audiotrain.train.traced_reads import changed_reads
from audiotrain.train.transforms import (
    all_finite,
    average_across_processes,
    clip_by_global_norm,
    clip_by_value,
    clip_each_group_by_norm,
    global_norm,
)

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx.utils import tree_flatten, tree_map, tree_unflatten

PRECISIONS = ("32", "bf16-mixed", "bf16-true")


class LowPrecisionLossWarning(UserWarning):
    """`precision="bf16-mixed"` or `"bf16-true"` and a training loss computed in bfloat16."""


def warn_low_precision_loss(where: str, precision: str) -> None:
    """MLX has no autocast: under bf16-mixed (and bf16-true) the model's outputs are bfloat16, and a loss
    computed on them is too (torch's autocast computes losses in float32). Its logged values then move on
    bfloat16's grid (steps of 0.03 near 4), and EarlyStopping or a monitored checkpoint sees ties where the
    loss still falls."""
    warnings.warn(
        f"{where} returned a bfloat16 loss under precision={precision!r}: its logged values (and what "
        "EarlyStopping and ModelCheckpoint compare) have bfloat16's 3 significant digits. Compute the loss on "
        "float32 outputs, e.g. nn.losses.cross_entropy(self(x).astype(mx.float32), y), as torch's autocast "
        "does for losses; the model still runs in bfloat16",
        LowPrecisionLossWarning,
        stacklevel=user_stacklevel(),  # (the user's fit / validate line, not the step's internals)
    )


def _returns_bfloat16_loss(out: Any) -> bool:
    """Whether the loss a step returned, in any of its forms, is a bfloat16 array. (A step that returns
    None and only logs has no loss: `None == mx.bfloat16` would raise, MLX's Dtype takes no None.)"""
    loss = out.get("loss") if isinstance(out, dict) else out[0] if isinstance(out, tuple) and out else out
    return isinstance(loss, mx.array) and loss.dtype == mx.bfloat16


def _numbers_held(module: nn.Module) -> dict[str, int | float]:
    """The module's own public int and float attributes (`self.seen = 0`): what a Lightning port counts
    or sums by hand across a loader's batches."""
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("_") and isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def _warn_of_numbers_changed_while_traced(
    module: nn.Module, before: dict[str, int | float], where: str, warned: set[str]
) -> None:
    """A compiled step's Python code runs only while MLX traces it (its first batch, and each new batch
    shape), so `self.seen += len(y)` there counts one batch where Lightning's counts them all: said once
    per attribute (a warning: a value set from the batch's shape, the same at every trace, is harmless)."""
    after = _numbers_held(module)
    changed = [n for n, v in before.items() if n in after and after[n] != v and n not in warned]
    if not changed:
        return
    warned.update(changed)
    name = changed[0]
    warnings.warn(
        f"{where} changed self.{name} ({before[name]!r} -> {after[name]!r}) inside the compiled step: its "
        "Python code runs only when MLX traces the step (the first batch, and each new batch shape), not at "
        "every batch as in Lightning, so a count or sum kept on the module this way misses batches. Log "
        "the value instead (self.log(name, value, on_epoch=True) gives its mean over the epoch or loader, "
        "weighted by batch size), count in a batch hook (on_validation_batch_end runs every batch), or "
        "pass Trainer(compile=False)",
        UserWarning,
        stacklevel=user_stacklevel(),
    )


def mode_signature(modules: list) -> tuple[bool, ...]:
    """Every submodule's `training` flag, in a fixed order (`module.modules()`): what a traced graph
    depends on besides its inputs (dropout on or off, BatchNorm batch statistics or running ones)."""
    return tuple(m.training for m in modules)


def trainable_names(module: nn.Module) -> frozenset[str]:
    """The dotted names (as `tree_flatten` gives them) of the parameters `module` trains now."""
    return frozenset(name for name, _ in tree_flatten(module.trainable_parameters()))


def names_to_train(module: nn.Module) -> frozenset[str]:
    """`trainable_names` of a module `fit` is to train: one with none (everything frozen) is refused."""
    # (one flatten for the names and the integer check: every epoch start's freeze check comes here)
    trainable = tree_flatten(module.trainable_parameters())
    keys = frozenset(name for name, _ in trainable)
    if not keys:
        raise ValueError(
            f"{type(module).__name__} has no trainable parameters (everything is frozen): "
            "unfreeze some before fit"
        )
    _refuse_trainable_integer_arrays(module, trainable)
    return keys


def _refuse_trainable_integer_arrays(module: nn.Module, trainable: list[tuple[str, mx.array]]) -> None:
    """MLX has no gradient for an integer (or boolean) array: the backward pass stops at a quantized layer's
    packed weight (`nn.quantize`'s uint32, made trainable by an `unfreeze()` after it) with MLX's
    "[QuantizedMatmul::vjp] no gradient wrt the quantized weights", deep in the step, and at any other (a
    position index, a mask kept as `self.pos = mx.arange(n)`) with MLX's bare "[eval] Attempting to eval an
    array without a primitive". Each kind is told its own way to keep it out of training. `trainable`:
    `tree_flatten(module.trainable_parameters())`, which the caller has already made."""
    integer = [(name, value) for name, value in trainable if not mx.issubdtype(value.dtype, mx.inexact)]
    if not integer:  # (every epoch start comes here: the module tree is walked only for a refusal)
        return
    owners = dict(module.named_modules())
    packed, other = [], []
    for name, value in integer:
        owner, _, key = name.rpartition(".")
        quantized = key == "weight" and isinstance(getattr(owners.get(owner), "bits", None), int)
        (packed if quantized else other).append(
            (owner, key, f"{name} ({value.dtype})".replace("mlx.core.", ""))
        )
    named = [shown for _, _, shown in packed + other]
    advice = []
    if packed:
        advice.append(
            "a quantized layer's packed weight (nn.quantize) must stay frozen: after unfreeze(), freeze "
            "each (self.fc.freeze(keys='weight', recurse=False); its scales, biases and bias may train), or "
            "freeze the whole model and unfreeze only what trains (LoRA adapters)"
        )
    if other:
        owner, key, _ = other[0]
        where = f"self.{owner}" if owner else "self"
        # (register_buffer is the TrainModule's own; one already registered was unfrozen by MLX's arguments)
        can_register = not owner and hasattr(module, "register_buffer")
        if can_register and key not in getattr(module, "_buffer_names", ()):
            held = (
                f"hold it with self.register_buffer({key!r}, value) (torch's buffer: saved, never trained), "
            )
        else:
            held = ""
        advice.append(
            f"an index, mask or counter is no weight: {held}freeze it ({where}.freeze(keys={key!r}, "
            "recurse=False)), or name it with a leading underscore (MLX leaves such attributes out of the "
            "parameters)"
        )
    raise ValueError(
        f"{type(module).__name__}: {', '.join(named[:3])}{' ...' if len(named) > 3 else ''} "
        f"{'is' if len(named) == 1 else 'are'} trainable, but MLX has no gradient for an integer or boolean "
        f"array: {'; '.join(advice)}"
    )


def set_trainable(module: nn.Module, names: frozenset[str]) -> None:
    """Freeze every parameter of `module` but `names` (dotted, as `trainable_names` gives them), with
    MLX's own `freeze` / `unfreeze` of each submodule's keys.

    Raises ValueError naming what could not be set (a name the module does not have)."""
    unknown = sorted(names - {name for name, _ in tree_flatten(module.parameters())})
    if unknown:
        raise ValueError(f"{type(module).__name__} has no parameter {', '.join(unknown[:3])}")

    def set_local(prefix: str, sub: nn.Module) -> None:
        # The keys MLX's freeze() takes for this submodule: its own arrays, not its children's.
        local = sub.filter_and_map(
            lambda m, k, v: not isinstance(v, nn.Module) and m.valid_parameter_filter(m, k, v)
        )
        keys = [key for key, _ in tree_flatten(local)]
        wanted = [key for key in keys if (f"{prefix}.{key}" if prefix else key) in names]
        sub.freeze(recurse=False, keys=[key for key in keys if key not in wanted])
        sub.unfreeze(recurse=False, keys=wanted)

    module.apply_to_modules(set_local)
    if trainable_names(module) != names:  # (a parameter MLX's freeze cannot address alone)
        raise ValueError(
            f"{type(module).__name__}: its trainable parameters cannot be set to {sorted(names)}"
        )


def _unnoted(method: Callable) -> Callable:
    """`method` without `_FreezingNoted`'s wrapper: what it puts back. Were two Trainers' first steps in
    threads to overlap, one putting back the other's noting wrapper would leave it in place for the process;
    not MLX's methods as imported either, which would drop a patch of the user's own made since."""
    return getattr(method, "_freezing_noted_original", method)


class _FreezingNoted:
    """Warn, once per model, of `freeze()` / `unfreeze()` called on the model or one of its submodules while
    the training step runs: its gradients are of the parameters trainable as it started (value_and_grad
    has them already), so Lightning's toggle_optimizer ported as `self.disc.freeze()` ... `unfreeze()`
    around the generator's loss stops nothing, and that loss trains the discriminator too, without a word
    (compiled or not). A warning: an unpaired call does change what trains, from the next epoch start.
    (A class, not contextlib's: the warning then names the user's line, not contextlib's.) It patches
    `nn.Module`'s methods while the step runs, so a `TrainStep` uses it on its first step only (the trace,
    compiled): a toggle written into the step shows there, and later steps run without the patch."""

    def __init__(self, module: nn.Module, where: str) -> None:
        self.module, self.where = module, where
        self.calls: list[tuple[str, nn.Module]] = []
        self.originals: tuple[Callable, Callable] | None = None

    def _noted(self, original: Callable, verb: str) -> Callable:
        def call(sub: nn.Module, *args: Any, **kwargs: Any) -> Any:
            self.calls.append((verb, sub))
            return original(sub, *args, **kwargs)

        call._freezing_noted_original = original  # type: ignore[attr-defined]
        return call

    def __enter__(self) -> None:
        if vars(self.module).get("_freezing_in_step_said"):
            return
        # (MLX's own layers and TrainModule's freeze reach these through super(): one patch sees them all)
        self.originals = _unnoted(nn.Module.freeze), _unnoted(nn.Module.unfreeze)
        nn.Module.freeze = self._noted(self.originals[0], "freeze")
        nn.Module.unfreeze = self._noted(self.originals[1], "unfreeze")

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        if self.originals is None:
            return
        nn.Module.freeze, nn.Module.unfreeze = self.originals
        if kind is not None or not self.calls:
            return
        # The model's own modules only: a layer built inside the step freezes its own in __init__ (BatchNorm).
        names = {id(sub): name for name, sub in self.module.named_modules()}
        ours = [(verb, names[id(sub)]) for verb, sub in self.calls if id(sub) in names]
        if not ours:
            return
        object.__setattr__(self.module, "_freezing_in_step_said", True)
        verb, name = ours[0]
        warnings.warn(
            f"{self.where} called {'self.' + name if name else 'self'}.{verb}() while the step ran: the "
            "step's gradients are of the parameters trainable as it started, so freezing inside it stops no "
            "gradient (a generator's loss still trains the discriminator, as it would without Lightning's "
            "toggle_optimizer). Keep a loss term from a network with mx.stop_gradient (the discriminator's "
            "weights under it for the generator's term: README, 'Coming from PyTorch Lightning', GAN), or "
            "change what trains in on_train_epoch_start",
            stacklevel=user_stacklevel(),
        )


def _warn_of_written_parameters(module: nn.Module, given: Any, where: str) -> None:
    """A trainable parameter the step itself assigned (`self.h = new_hidden`, an RNN's state carried between
    truncated-BPTT chunks) is put back to the weights after the step and moved by the optimizer: the value
    written is lost without a word. Compared by identity within this one call (the arrays `given` were set
    just before the step ran), so it holds in a compiled trace too. Not where the model holds a function
    mx.compile made: calling one gives the module new array objects of the same weights, which identity
    cannot tell from a write (`no_gradient` warns of that pitfall instead).

    A warning, said once per model, not a refusal: identity cannot tell every deliberate write from a lost
    one (a forward that recomputes a weight from others each step, as weight normalisation does, trains as
    meant, though the checkpoints keep a stale copy of that weight), and a refusal stopped such models from
    training at all."""
    if vars(module).get("_written_parameters_said"):
        return
    now = dict(tree_flatten(module.trainable_parameters()))
    flat = tree_flatten(given)
    # A layer held under two names (`self.again = {"first": self.heads[0]}`) was set twice, and holds the
    # array given under its later name: that is no write (the step's own arrays are none of `given`'s).
    given_ids = {id(array) for _, array in flat}
    written = [name for name, array in flat if name in now and id(now[name]) not in given_ids]
    if written:
        written = _not_set_again_whole(module, written, now, dict(flat))
    if written and not compiled_functions(module):
        object.__setattr__(module, "_written_parameters_said", True)
        names = ", ".join(f"self.{name}" for name in written)
        owner, _, first = written[0].rpartition(".")
        # (a plain nn.Module has no register_buffer: `self.register_buffer` failed in such a layer's __init__)
        register = (
            f"self.register_buffer({first!r}, initial)"
            if hasattr(held(module, owner), "register_buffer")
            else f"audiotrain.register_buffer(self, {first!r}, initial)"
        )
        layer = f"self.{owner}" if owner else "self"
        warnings.warn(
            f"{where} assigned {names}, a trainable parameter of the model (MLX trains every mx.array "
            "attribute): the Trainer puts the weights back after the step and the optimizer moves them, so "
            "the value written is lost. Keep what a step carries to the next (an RNN's hidden state, a "
            f"power iteration's vector) as a buffer, {register} in {layer}'s __init__, or in a private "
            f"attribute (self._{first}); both are kept as the step writes them, compiled or not. A weight "
            "the forward recomputes from others (weight normalisation: g * v / norm(v)) is lost too: the "
            "checkpoints and state_dict keep a stale copy; compute it into a local variable and call the "
            "functional op with it (mx.conv1d(x, w, ...), x @ w.T), and delete the parameter.",
            UserWarning,
            stacklevel=2,
        )


def _refuse_arrays_added_by_step(module: nn.Module, before: set[str], where: str) -> None:
    """Refuse an array attribute the step itself created on a layer that had weights before it: torch's weight
    normalisation habit (`del self.weight` in __init__, `self.weight = g * v / norm(v)` in the forward).
    MLX makes every array attribute a trainable parameter, so the next step trained one more weight than
    the optimizer had state for: uncompiled, a bare `KeyError: 'weight'` in the optimizer's update; compiled,
    an error about Lightning's `training_step_outputs`; a validation before training left a placeholder of its
    trace there, which the first step failed to evaluate. `before`: the trainable names before the step.
    Checked on the tree's names alone (at trace time when compiled). A layer built on the first call (all its
    arrays new) is left to `layers_created_while_training`. The arrays added are removed again, so the model
    is as it was before the step (a private attribute is no way out: a compiled step would leave a placeholder
    of its trace there)."""
    added = [name for name, _ in tree_flatten(module.trainable_parameters()) if name not in before]
    owners = {name.rpartition(".")[0] for name in before}
    # (On a layer alone: an array appended to a list, Lightning's `self.validation_step_outputs.append(loss)`,
    # is another habit, which `StateGuard` keeps or explains.)
    added = [
        name
        for name in added
        if name.rpartition(".")[0] in owners and isinstance(held(module, name.rpartition(".")[0]), nn.Module)
    ]
    if not added:
        return
    for name in added:
        owner, _, key = name.rpartition(".")
        layer = held(module, owner)
        if isinstance(layer, dict) and key in layer:
            del layer[key]
    names = ", ".join(f"self.{name}" for name in added)
    owner, _, key = added[0].rpartition(".")
    layer = f"self.{owner}" if owner else "self"
    raise ValueError(
        f"{where} set {names}, an mx.array attribute its layer did not have before the step (a weight "
        "recomputed in the forward, as torch's weight_norm / spectral_norm do): MLX makes every array "
        "attribute a trainable parameter, so it would be trained, saved and exported as a weight of its own. "
        f"Compute it into a local variable in {layer}'s __call__ and call the functional op with it "
        f"(w = g * v / norm(v); mx.conv1d(x, w, stride=..., padding=...) + bias, or x @ w.T + bias) in place "
        f"of setting {layer}.{key}. An array {layer} caches on its first call (a window, a positional "
        "table) is created in __init__, where the trainer sees it before the optimizer starts"
    )


def _not_set_again_whole(module: nn.Module, written: list[str], now: dict, given: dict) -> list[str]:
    """`written` less the names of each layer whose trainable arrays were all replaced by arrays of the
    same shapes and dtypes: gradient checkpointing (`nn.utils.checkpoint(self.block)(x)`) calls
    `block.update(...)` with new array objects of the same weights, and such models were refused as having
    assigned every weight of the block. A real write (`self.h = new_hidden`) replaces one array, not a
    whole layer's (the model's other weights stay)."""
    replaced = {
        name
        for name in written
        if now[name].shape == given[name].shape and now[name].dtype == given[name].dtype
    }
    whole: set[str] = set()
    for prefix, _ in module.named_modules():
        inner = [name for name in now if not prefix or name.startswith(f"{prefix}.")]
        if inner and replaced.issuperset(inner):
            whole.update(inner)
    return [name for name in written if name not in whole]


def _cast_floats(tree: Any, dtype: mx.Dtype) -> Any:
    def cast(x):
        if isinstance(x, mx.array) and mx.issubdtype(x.dtype, mx.floating) and x.dtype != dtype:
            return x.astype(dtype)
        return x

    return tree_map(cast, tree)


def frozen_weights(module: TrainModule, leave: Collection[str] = ()) -> dict[str, mx.array]:
    """The module's frozen floating weights by dotted name, BatchNorm's running statistics and the names in
    `leave` left out (a training forward updates those itself, in their float32). Under bf16-mixed they get a
    bfloat16 copy for the step as the trainable ones do: left float32, a frozen backbone ran in float32 and
    promoted the layers after it, where validation ran it in bfloat16."""
    trainable = {name for name, _ in tree_flatten(module.trainable_parameters())}
    statistics = {
        f"{prefix}.{name}" if prefix else name
        for prefix, layer in module.named_modules()
        if isinstance(layer, nn.BatchNorm)
        for name in ("running_mean", "running_var")
    }
    return {
        name: value
        for name, value in tree_flatten(module.parameters())
        if name not in trainable
        and name not in statistics
        and name not in leave
        and mx.issubdtype(value.dtype, mx.floating)
    }


def bf16_batch(batch: Any, module: TrainModule) -> Any:
    """The batch as `precision="bf16-mixed"` and `"bf16-true"` give it to a step (Lightning's bf16-true
    casts its inputs too): every float array cast to bfloat16, so the model's inputs run in bf16 (a float32
    input would promote the bf16 weights' products back to float32),
    except the top-level fields named in `module.float32_batch_fields` (keys of a dict batch, positions of
    a tuple or list batch), which stay as they are: targets and weights that bf16's 8 significant bits
    would round (Hz, seconds, per-example weights).

    Raises TypeError for a name the batch does not have (a typo would otherwise cast it silently)."""
    kept = module.float32_batch_fields
    kept = (kept,) if isinstance(kept, (str, int)) else tuple(kept)
    if not kept:
        return _cast_floats(batch, mx.bfloat16)
    if isinstance(batch, Mapping):
        fields = list(batch)
    elif isinstance(batch, (tuple, list)):
        fields = list(range(len(batch)))
    else:
        fields = []
    unknown = [name for name in kept if name not in fields]
    if unknown:
        held = f"a {type(batch).__name__} with fields {fields}" if fields else f"a {type(batch).__name__}"
        raise TypeError(
            f"{type(module).__name__}.float32_batch_fields names {', '.join(map(repr, unknown))}, which the "
            f"batch does not have (it is {held}): name keys of a dict batch or positions of a tuple batch"
        )
    cast = {f: batch[f] if f in kept else _cast_floats(batch[f], mx.bfloat16) for f in fields}
    if isinstance(batch, Mapping):
        return cast
    values = [cast[f] for f in fields]
    return type(batch)(*values) if hasattr(batch, "_fields") else type(batch)(values)


def frozen_signature(modules: list) -> tuple | None:
    """Each submodule's frozen names, in a fixed order: MLX keeps them in each `nn.Module`'s `_no_grad` (what
    `freeze`/`unfreeze` change), so equal signatures mean the same trainable parameters for the same
    submodules. None where an MLX version keeps them elsewhere (the tree is walked then)."""
    try:
        return tuple(frozenset(module._no_grad) for module in modules)
    except (AttributeError, TypeError):
        return None


class _PerMode:
    """One compiled version of `impl` per `mode_signature` of the module (built on first use)."""

    def __init__(
        self,
        module: TrainModule,
        impl: Callable,
        state: list,
        outputs: list | None,
        compile: bool,
        trains: frozenset[str] | None = None,
    ):
        self.module, self.impl, self.state, self.outputs, self.compile = module, impl, state, outputs, compile
        # The parameters the step was built to train (a training step's; None: an evaluation step's).
        self.trains = trains
        self._built: dict[tuple[bool, ...], Callable] = {}
        # Walking the module tree costs ~60 us a step on a small MLP; the submodules are fixed once a
        # step is built (freezing rebuilds it), so only their flags are read per call.
        self._modules = module.modules()
        # What each submodule had frozen when the step was built: read per call in place of walking the
        # parameter tree (`trainable_names`: 1.35 ms a step on a 288-array model), which is needed only
        # where a hook froze or unfroze something since.
        self._frozen_as_built = frozen_signature(self._modules) if trains is not None else None
        # The first trainable set a hook asked for (freeze()/unfreeze() in a batch hook) that a call trained
        # otherwise, read and reset by the trainer at each epoch end: comparing only the epoch's last step
        # missed an alternation that ends the epoch as it began (a generator resting every other batch).
        self.asked_otherwise: frozenset[str] | None = None

    def forget(self) -> None:
        """Trace again at the next call (`TrainStep.trace_again`)."""
        self._built.clear()

    def follow_replaced_submodules(self) -> None:
        """Key the compiled versions by the `training` flags of the submodules now: one a hook replaced
        (`self.disc = NewDisc()`, its dropout in eval mode) ran in the mode of the one it replaced."""
        modules = self.module.modules()
        if len(modules) == len(self._modules) and all(a is b for a, b in zip(modules, self._modules)):
            return
        self._modules = modules
        if self._frozen_as_built is not None:  # (what trains is unchanged: else the step was rebuilt)
            self._frozen_as_built = frozen_signature(modules)

    def __call__(self, *args: Any):
        if self.trains is not None and self.asked_otherwise is None:
            self._note_a_hooks_freezing()
        signature = mode_signature(self._modules)
        fn = self._built.get(signature)
        if fn is None:
            if self.compile:
                # A fresh wrapper per pattern: MLX keys its trace cache on the function object. Each trace
                # (the first, and MLX's again for a new batch shape: a short last batch) runs over what the
                # step was built to train, not what a batch hook froze since.
                fn = mx.compile(partial(self._impl_as_built), inputs=self.state, outputs=self.outputs)
            else:
                fn = self.impl
            self._built[signature] = fn
        if not self.compile:
            return self._training_what_it_was_built_for(fn, args)
        return fn(*args)

    def _note_a_hooks_freezing(self) -> None:
        if self._frozen_as_built is not None and frozen_signature(self._modules) == self._frozen_as_built:
            return
        now = trainable_names(self.module)
        if now != self.trains:
            self.asked_otherwise = now

    def _impl_as_built(self, *args: Any) -> Any:
        return self._training_what_it_was_built_for(self.impl, args)

    def _training_what_it_was_built_for(self, fn: Callable, args: tuple) -> Any:
        """Run `fn` (an eager call, or a compiled one's trace) over the parameters the step was built to
        train, whatever a batch hook has frozen or unfrozen since: a compiled step's trace keeps those
        until the step is rebuilt at the next epoch start, so an eager step must too, or the two train
        different parameters (a discriminator frozen every other batch rested only in the eager fit)."""
        if self.trains is None:
            return fn(*args)
        if self._frozen_as_built is not None and frozen_signature(self._modules) == self._frozen_as_built:
            return fn(*args)
        now = trainable_names(self.module)
        if now == self.trains:
            return fn(*args)
        set_trainable(self.module, self.trains)
        try:
            return fn(*args)
        finally:
            set_trainable(self.module, now)  # (the freezing the hook asked for, for the next epoch start)


@dataclass(frozen=True)
class StepConfig:
    """What the compiled training step does besides forward/backward."""

    clip_val: float | None = None
    clip_algorithm: str = "norm"  # "norm" | "value"
    # Norm clipping of a MultiOptimizer's groups, each by its own norm (`OptimizerConfig.clip_each_group`).
    clip_each_group: bool = False
    accumulate_grad_batches: int = 1
    precision: str = "32"
    compile: bool = True
    # Skip updates with a non-finite loss or gradient. Costs one read of all gradients (transforms.py)
    # and selects fused into the update (guarded_update.py): a few kernels a step, a few percent of a
    # 256-1024-1024 MLP's step on the CPU but ~20% of a tiny host-bound one's steps/s (see Trainer).
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
            "skipped_total": mx.array(0, mx.int32),  # updates the guard skipped
            "nonfinite_streak": mx.array(0, mx.int32),  # current run of non-finite steps
            "max_nonfinite_streak": mx.array(0, mx.int32),  # longest run since the trainer last looked
            # Norm of the last applied gradient (before clip). 0.0 until one is applied (a NaN here would be
            # saved in every checkpoint of a run that computes no norm, and resuming refuses non-finite
            # state): the logging says NaN while no update has gone through (`StepLogging`).
            "grad_norm": mx.array(0.0, mx.float32),
        }
        if accumulate:
            self.arrays["grad_accum"] = tree_map(
                lambda p: mx.zeros(p.shape, mx.float32), module.trainable_parameters()
            )

    def flat(self) -> dict[str, mx.array]:
        return dict(tree_flatten(self.arrays))


class TrainStep:
    """The compiled training step of a module + optimizer.

    `accumulate(batch, batch_idx)` for a micro-batch that does not end an accumulation window,
    `update(batch, batch_idx, n_micro)` for the one that does, and `close_window(n_micro)` to apply a
    window that the loader ended early (a loader without a length cannot say which batch is its last).
    `n_micro` is an mx.array: how many micro-batches the window held, so a short window still averages
    right. The first two return `(loss, metrics, logged, metric_weights)` as lazy arrays; `logged` holds
    what `self.log` recorded, with its options in `log_options`, and `metric_weights` the own weights of
    metrics returned as `(value, weight)`.
    """

    def __init__(
        self,
        module: TrainModule,
        optimizer: optim.Optimizer,
        config: StepConfig,
        state: StepState | None = None,
    ):
        self.module, self.optimizer, self.config = module, optimizer, config
        self.state = state or StepState(module, accumulate=config.accumulate_grad_batches > 1)
        self.traces = 0  # how many times Python traced a step (tests use it to prove no retracing)
        self.log_options: dict = {}
        self._warned_precision = False  # LowPrecisionLossWarning, once a fit
        self._no_gradient = NoGradientWatch()  # (an eager fit's first steps)
        self._frozen_written: set[str] = set()  # frozen arrays the step assigns: not cast under bf16-mixed
        self._freezing_noted = False  # (`_FreezingNoted` has watched a step: the first's, not every one)
        self._numbers_warned: set[str] = set()  # (attributes a compiled step changed, warned of)
        self._trace_again_after_call = False
        self._data_parallel = collectives.world_size() > 1
        # An epoch-stepped schedule's count of skipped updates (it places the update in its epoch).
        self._skip_counters = skip_counters(optimizer)
        self._trains = trainable_names(module)  # what every call trains, frozen in a hook since or not
        # The compiled functions' state: everything the step reads and writes.
        self._graph_state = [
            module.state,
            optimizer.state,
            mx.random.state,
            self.state.arrays,
            self._skip_counters,
        ]
        per_mode = partial(
            _PerMode,
            module,
            state=self._graph_state,
            outputs=self._graph_state,
            compile=config.compile,
            trains=self._trains,
        )
        self._accumulate = per_mode(self._accumulate_impl)
        self._update = per_mode(self._update_impl)
        self._close = per_mode(self._close_impl)
        self._guard = StateGuard(
            self._graph_state,
            f"{type(module).__name__}.{module.training_step_name}",
            config.compile,
            refuse_module_writes=True,
        )

    @property
    def trains(self) -> frozenset[str]:
        """The parameters the step was built to train (`_PerMode.trains`)."""
        return self._trains

    def follow_replaced_submodules(self) -> None:
        """At an epoch start: a submodule a hook replaced runs in its own mode (`_PerMode`'s). Not per
        call: walking the module tree costs about as much as a small model's step."""
        for call in (self._accumulate, self._update, self._close):
            call.follow_replaced_submodules()

    @property
    def traced_reads(self) -> dict:
        """The plain values (`traced_reads.TracedRead`) the traces read from the module: graph constants."""
        return self._guard.plain_reads

    @property
    def eval_targets(self) -> list:
        """What to `mx.eval` after each call to materialise the step."""
        return self._graph_state

    # -- pieces ---------------------------------------------------------------------------------
    def _loss_and_grads(self, batch: Any, batch_idx: mx.array) -> tuple[mx.array, dict, dict, dict, Any]:
        module, precision = self.module, self.config.precision
        master = module.trainable_parameters()
        frozen = frozen_weights(module, self._frozen_written) if precision == "bf16-mixed" else {}
        copies = _cast_floats(frozen, mx.bfloat16)  # (flat: dotted name -> its bfloat16 copy)
        written: dict[str, mx.array] = {}  # frozen arrays the step itself assigned (a buffer it updates)
        where = f"{type(module).__name__}.{module.training_step_name}"

        def loss_fn(params):
            # (cast=False: the metrics are cast to float32 after value_and_grad: `as_float32` says why)
            logs = StepLogs("train", where, lambda: module.batch_size(batch), cast=False)
            numbers = _numbers_held(module) if self.config.compile else None
            first = not self._freezing_noted
            self._freezing_noted = True
            with module._collect_logs(logs), _FreezingNoted(module, where) if first else nullcontext():
                if precision == "bf16-mixed":
                    # Forward and backward in bf16 on a bf16 copy; gradients flow back through the
                    # cast, so they arrive in float32 for the float32 master weights.
                    if copies:  # (frozen layers too: `frozen_weights`)
                        module.update(tree_unflatten(list(copies.items())))
                    given = _cast_floats(params, mx.bfloat16)
                    module.update(given)
                    out = module._training_output(bf16_batch(batch, module), batch_idx)
                    if copies:  # (a step that assigns a frozen array keeps what it wrote, as before)
                        now = dict(tree_flatten(module.parameters()))
                        written.update({n: now[n] for n, copy in copies.items() if now.get(n) is not copy})
                elif precision == "bf16-true":  # bf16 weights: the batch in bf16 too, or it runs in float32
                    given = params
                    module.update(params)
                    out = module._training_output(bf16_batch(batch, module), batch_idx)
                else:
                    given = params
                    module.update(params)
                    out = module._training_output(batch, batch_idx)
            _warn_of_written_parameters(module, given, where)
            if numbers is not None:
                _warn_of_numbers_changed_while_traced(module, numbers, where, self._numbers_warned)
            if (
                precision in ("bf16-mixed", "bf16-true")
                and _returns_bfloat16_loss(out)
                and not self._warned_precision
            ):
                self._warned_precision = True  # (read at trace time: free in a compiled step)
                warn_low_precision_loss(where, precision)
            loss, metrics, metric_weights = check_loss_output(out, where, cast=False)  # (the loss: float32)
            # Kept across calls: a value an eager step logs on some batches only is still named by its
            # options (`odd_step` at the interval) after a batch that did not log it.
            self.log_options = {**self.log_options, **logs.options_beside(metrics)}
            # Logged values leave value_and_grad as auxiliary outputs: kept inside, they would stay
            # tracers of the gradient transform ("an array without a primitive" when read).
            return loss, (metrics, logs.values, with_logged_weights(metric_weights, logs))

        try:
            (loss, (metrics, logged, metric_weights)), grads = mx.value_and_grad(loss_fn)(master)
            metrics, logged, metric_weights = (
                as_float32(metrics),
                as_float32(logged),
                as_float32(metric_weights),
            )
        finally:
            module.update(master)  # the master weights, not value_and_grad's tracers (also on error)
            if frozen:  # the float32 frozen weights back; what the step wrote stays, in its dtype as before
                kept = {n: written[n].astype(a.dtype) if n in written else a for n, a in frozen.items()}
                module.update(tree_unflatten(list(kept.items())))
        _refuse_arrays_added_by_step(module, {name for name, _ in tree_flatten(master)}, where)
        if written.keys() - self._frozen_written:
            # Such an array (a step counter, a queue, a custom layer's running statistics) ran on its
            # bfloat16 copy this step, and updating it there rounds each step's change away: later steps,
            # traced again, leave it float32 (as BatchNorm's statistics are).
            self._frozen_written |= written.keys()
            self._trace_again_after_call = True
        if precision == "bf16-mixed":
            grads = _cast_floats(grads, mx.float32)
        if not self.config.compile and not self._no_gradient.done:
            self._no_gradient.see(module, grads, where)
        return loss, metrics, logged, metric_weights, grads

    def _group_of(self, grads: Any) -> dict[str, int]:
        """Each gradient's path -> the index of the MultiOptimizer optimizer that updates it (one group for
        another optimizer), as its update splits them."""
        if not isinstance(self.optimizer, optim.MultiOptimizer):
            return {path: 0 for path, _ in tree_flatten(grads)}
        parts = multi_optimizer_parts(self.optimizer, grads)
        return {path: i for i, part in enumerate(parts) for path, _ in tree_flatten(part)}

    def _apply(self, grads: Any, loss: mx.array | None) -> None:
        """The window's mean gradients → cross-process mean → clip → guard → one optimizer update."""
        cfg, arrays = self.config, self.state.arrays
        grads = average_across_processes(grads)
        # One reduction serves norm clipping, logging and the guard; without them the guard needs
        # only the cheaper plain sum (all_finite).
        norm = global_norm(grads) if cfg.computes_norm else None
        if cfg.clip_val is not None:
            if cfg.clip_algorithm == "norm" and cfg.clip_each_group:
                # (which group a gradient is in is found while tracing: the compiled step runs none of it)
                grads = clip_each_group_by_norm(grads, self._group_of(grads), cfg.clip_val)
            elif cfg.clip_algorithm == "norm":
                grads, _ = clip_by_global_norm(grads, cfg.clip_val, norm)
            else:
                grads = clip_by_value(grads, cfg.clip_val)
        if cfg.nonfinite_guard:
            finite = mx.isfinite(norm) if norm is not None else all_finite(grads)
        else:
            # Without the guard the update goes through; the streak still counts non-finite steps (from
            # what is already computed: the loss, the norm) so max_consecutive_nonfinite can stop the run.
            finite = mx.isfinite(norm) if norm is not None else mx.array(True)
        if loss is not None and not self._data_parallel:
            # (Under data parallel only the averaged gradients decide, the same on every rank: one rank's
            # own loss must not make it skip an update the others apply. A non-finite loss there shows
            # in the gradients.)
            finite = mx.logical_and(finite, mx.isfinite(loss))
        if cfg.nonfinite_guard:
            # Skip the update in-graph when anything is non-finite: the weights, the optimizer state
            # (its step counter too) and what on_after_optimizer_step did all stay as they were.
            guarded_update(self.module, self.optimizer, grads, finite)
            arrays["skipped_total"] = arrays["skipped_total"] + mx.logical_not(finite).astype(mx.int32)
            count_skipped_update(self._skip_counters, mx.logical_not(finite))
        else:
            update_weights(self.module, self.optimizer, grads)
            call_traced_hook(self.module, "on_after_optimizer_step")
        nonfinite = mx.logical_not(finite).astype(mx.int32)
        streak = (arrays["nonfinite_streak"] + 1) * nonfinite
        arrays["nonfinite_streak"] = streak
        arrays["max_nonfinite_streak"] = mx.maximum(arrays["max_nonfinite_streak"], streak)
        if norm is not None:
            arrays["grad_norm"] = mx.where(finite, norm, arrays["grad_norm"]) if cfg.nonfinite_guard else norm

    def _window_mean(self, grads: Any, n_micro: mx.array) -> Any:
        # Mean, not sum, over the window: the effective batch is n_micro times larger, and the
        # learning rate should not have to know about it. Summed in float32, handed to the update in
        # each parameter's dtype: a float32 gradient would promote bf16-true weights (and the
        # optimizer's moments) to float32 at the first update.
        arrays = self.state.arrays

        def mean(acc: mx.array, grad: mx.array, param: mx.array) -> mx.array:
            total = (acc + grad.astype(mx.float32)) / n_micro
            return total if total.dtype == param.dtype else total.astype(param.dtype)

        means = tree_map(mean, arrays["grad_accum"], grads, self.module.trainable_parameters())
        arrays["grad_accum"] = tree_map(mx.zeros_like, arrays["grad_accum"])
        return means

    def _accumulate_impl(self, batch: Any, batch_idx: mx.array):
        self.traces += 1
        loss, metrics, logged, metric_weights, grads = self._loss_and_grads(batch, batch_idx)
        acc = self.state.arrays["grad_accum"]
        self.state.arrays["grad_accum"] = tree_map(lambda a, g: a + g.astype(mx.float32), acc, grads)
        return loss, metrics, logged, metric_weights

    def _update_impl(self, batch: Any, batch_idx: mx.array, n_micro: mx.array):
        self.traces += 1
        loss, metrics, logged, metric_weights, grads = self._loss_and_grads(batch, batch_idx)
        if "grad_accum" in self.state.arrays:
            grads = self._window_mean(grads, n_micro)
        self._apply(grads, loss)
        return loss, metrics, logged, metric_weights

    def _close_impl(self, n_micro: mx.array):
        self.traces += 1
        zeros = tree_map(mx.zeros_like, self.state.arrays["grad_accum"])
        self._apply(self._window_mean(zeros, n_micro), None)
        return mx.array(0.0)

    # -- public ---------------------------------------------------------------------------------
    def trained_other_than_asked(self) -> frozenset[str] | None:
        """The first trainable set a hook asked for since the last call that a step trained otherwise (it
        trains what it was built for until it is rebuilt at the next epoch start), or None."""
        asked = None
        for per_mode in (self._accumulate, self._update, self._close):
            asked = asked if asked is not None else per_mode.asked_otherwise
            per_mode.asked_otherwise = None
        return asked

    def trace_again(self) -> None:
        """Trace the step again at its next call, for a change that the traced graph holds but its state does
        not: an optimizer's learning-rate schedule taken away (StochasticWeightAveraging sets the rate per
        epoch from there on; the old trace would go on writing the schedule's value at every update)."""
        for per_mode in (self._accumulate, self._update, self._close):
            per_mode.forget()
        self._guard.forget()

    @property
    def frozen_written(self) -> list[str]:
        """The frozen arrays this step was found to assign (a buffer it updates), which bf16-mixed leaves in
        float32: saved with a checkpoint, so that a resumed step does not run its first step on their
        bfloat16 copies again (the uninterrupted run did so at its first step only: other weights)."""
        return sorted(self._frozen_written)

    def keep_frozen_written(self, names: Collection[str]) -> None:
        """Leave `names` (a checkpoint's `frozen_written`) in float32 under bf16-mixed from the next step."""
        if set(names) - self._frozen_written:
            self._frozen_written |= set(names)
            self.trace_again()

    def _trace_again_if_asked(self) -> None:
        if self._trace_again_after_call:  # (`_loss_and_grads` found a frozen array the step writes)
            self._trace_again_after_call = False
            self.trace_again()

    def accumulate(self, batch: Any, batch_idx: mx.array):
        with explain_changed_parameter_tree(self.module, self.optimizer):
            out = self._guard(self._accumulate, batch, batch_idx)
        self._trace_again_if_asked()
        return out

    def update(self, batch: Any, batch_idx: mx.array, n_micro: mx.array):
        with explain_changed_parameter_tree(self.module, self.optimizer):
            out = self._guard(self._update, batch, batch_idx, n_micro)
        self._trace_again_if_asked()
        return out

    def close_window(self, n_micro: mx.array) -> None:
        with explain_changed_parameter_tree(self.module, self.optimizer):
            self._guard(self._close, n_micro)


STAGE_METHODS = {"val": "validation_step", "test": "test_step", "predict": "predict_step"}


def _user_method(module: TrainModule, name: str) -> str:
    """The method whose output an error is about, for messages: the default validation_step and
    test_step run the training step, which is the code the user wrote."""
    if name != "predict_step" and getattr(type(module), name) is getattr(TrainModule, name):
        return f"{module.training_step_name} (run by the default {name})"
    return name


def _array_ids(module: nn.Module) -> dict[str, int]:
    """The identity of each array the module holds, by dotted name."""
    return {name: id(value) for name, value in tree_flatten(module.parameters())}


class EvalStep:
    """Compiled evaluation: `validation_step`, `test_step` or `predict_step`, without gradients.

    Compiled over the model and MLX's random state, so random draws in the step advance the key on
    every batch as they do eagerly (a graph traced without it would replay one draw forever).
    Validation and test return `(loss or None, metrics, logged, metric_weights, outputs)` (outputs: what
    the step returned for the batch-end hooks, `split_eval_outputs`; None: nothing); predict returns the
    step's output.
    """

    def __init__(
        self,
        module: TrainModule,
        stage: str,
        compile: bool,
        precision: str,
        in_fit: bool = False,
        dataloader_idx: int | None = None,
    ):
        self.module, self.stage, self.precision = module, stage, precision
        # Inside `fit` (its sanity check and validations) an array the step adds is refused, as the training
        # step's: the next training step would train it. A stand-alone validate/test/predict trains nothing,
        # and a layer that caches an array on its first call (a window, a positional table) ran there.
        self.refuses_added_arrays = in_fit
        # A stand-alone validate/test warns of a bfloat16 loss as fit's training step does (inside fit that
        # one has said it): its scores move on bfloat16's grid (a cents error of 1172 read 1056).
        self._warned_precision = in_fit or stage == "predict"
        self.name = STAGE_METHODS[stage]
        self.fn = getattr(module, self.name)
        self.dataloader_idx = dataloader_idx
        self.unindexed: set[str] = set()  # (what the step logged with add_dataloader_idx=False)
        if dataloader_idx is not None:
            # One of a stage's several loaders: its step gets the loader's index as Lightning passes it, a
            # Python int, fixed in this loader's own trace (one EvalStep for each loader: no retracing).
            step = self.fn
            self.fn = lambda batch, batch_idx: step(batch, batch_idx, dataloader_idx)
        self.traces = 0
        self.log_options: dict = {}
        state = [module.state, mx.random.state]
        # The module's arrays the step assigns (a queue the default validation_step's training code
        # updates), by dotted name: outputs of the compiled step, put back into the module after each call.
        # Left out, the module kept a placeholder of the trace, which its next read (a checkpoint's save)
        # failed on with MLX's "eval an array without a primitive".
        self._written: dict[str, mx.array] = {}
        self.compiled = compile
        self._numbers_warned: set[str] = set()  # (attributes a compiled step changed, warned of)
        self._call = _PerMode(
            module, self._impl, state=state, outputs=[mx.random.state, self._written], compile=compile
        )
        self.where = f"{type(module).__name__}.{_user_method(module, self.name)}"
        # The default validation_step / test_step run the training code: what it logs with self.log
        # ("acc") is named for the stage ("val_acc") as its returned metrics are, or a validation would
        # overwrite the training value under the same name (and a monitor of "acc" would watch it).
        self.prefixes_logged_names = stage != "predict" and getattr(type(module), self.name) is getattr(
            TrainModule, self.name
        )
        self._guard = StateGuard(state, self.where, compile)

    def _impl(self, batch: Any, batch_idx: mx.array):
        self.traces += 1
        where = self.where
        logs = StepLogs(self.stage, where, lambda: self.module.batch_size(batch))
        before = _array_ids(self.module) if self.compiled else {}
        trainable = (
            {name for name, _ in tree_flatten(self.module.trainable_parameters())}
            if self.refuses_added_arrays
            else None
        )
        numbers = _numbers_held(self.module) if self.compiled else None
        with self.module._collect_logs(logs):
            if self.precision == "bf16-mixed":
                master = self.module.parameters()
                self.module.update(_cast_floats(master, mx.bfloat16))
                try:
                    out = call_step(self.fn, bf16_batch(batch, self.module), batch_idx)
                finally:
                    self.module.update(master)
            elif self.precision == "bf16-true":  # bf16 weights: the batch in bf16 too, or it runs in float32
                out = call_step(self.fn, bf16_batch(batch, self.module), batch_idx)
            else:
                out = call_step(self.fn, batch, batch_idx)
        if trainable is not None:
            _refuse_arrays_added_by_step(self.module, trainable, where)
        if numbers is not None:
            _warn_of_numbers_changed_while_traced(self.module, numbers, where, self._numbers_warned)
        if self.compiled:  # (bf16-mixed put the master weights back: what its step assigned is dropped)
            self._note_written(before)
        if self.stage == "predict":
            return out
        if (
            self.precision in ("bf16-mixed", "bf16-true")
            and not self._warned_precision
            and _returns_bfloat16_loss(out)
        ):
            self._warned_precision = True  # (read at trace time: free in a compiled step)
            warn_low_precision_loss(where, self.precision)
        out, outputs = split_eval_outputs(out, where)
        loss, metrics, metric_weights = check_loss_output(out, where, allow_none=True)
        if loss is None and not logs.values and outputs is None:
            raise TypeError(
                f"{where} returned None and logged nothing: return (loss, metrics_dict), or log values "
                "with self.log(...)"
            )
        self.log_options = {**self.log_options, **logs.options}  # (as TrainStep's)
        self.unindexed |= logs.unindexed
        if outputs is not None:
            # numpy has no bfloat16 (np.array(outputs["preds"]) in a hook failed): float32 holds it exactly.
            outputs = tree_map(lambda a: a.astype(mx.float32) if a.dtype == mx.bfloat16 else a, outputs)
        return loss, metrics, logs.values, with_logged_weights(metric_weights, logs), outputs

    def _note_written(self, before: dict[str, int]) -> None:
        """While traced: the arrays the step assigned in place of ones the module held (not what it
        appended to a list: `StateGuard` explains those) become outputs of the trace. A name new to
        `_written` after an earlier trace traces the step again, so that every trace returns the same
        outputs (MLX fills `_written` from each call's outputs in order)."""
        now = dict(tree_flatten(self.module.parameters()))
        written = {name: now[name] for name, old in before.items() if name in now and id(now[name]) != old}
        if written.keys() - self._written.keys() and self.traces > 1:
            self._call.forget()
            self._guard.forget()
        self._written.update(written)

    def trace_again_if_reads_changed(self) -> None:
        """Trace again at the next call where a plain value the traces read (a temperature a training hook
        sets) changed since: the traced graph holds the old one as a constant, an eager step the new one."""
        if changed_reads(self._guard.plain_reads):
            self._call.forget()
            self._guard.forget()

    def drop_kept_placeholders(self) -> None:
        """At the stage's end: what the traces appended to the module's lists (`StateGuard`'s)."""
        self._guard.drop_kept_placeholders()

    def __call__(self, batch: Any, batch_idx: mx.array):
        out = self._guard(self._call, batch, batch_idx)
        if self._written:  # (the compiled call's values of what the step assigned)
            self.module.update(tree_unflatten(list(self._written.items())))
        return out


__all__ = [
    "EvalStep",
    "PRECISIONS",
    "StepConfig",
    "StepState",
    "TrainStep",
    "mode_signature",
    "set_trainable",
    "names_to_train",
    "trainable_names",
]
