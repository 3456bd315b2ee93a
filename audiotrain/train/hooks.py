"""Which Lightning hooks the Trainer calls, and how: the checks it makes when a stage starts.

Lightning code brings hooks audiotrain cannot call (they would run inside the compiled step, or Lightning
1.x removed them: `training_epoch_end`, `on_epoch_end`) and module hooks written with Lightning's
signatures (`on_train_epoch_end(self)`, no arguments). The first are refused with what to use instead,
rather than silently never called; the second are called as written. A callback method named like a hook
that is none (a misspelling) gets a warning, and a callback hook that cannot take the arguments the Trainer
passes (Lightning 1.x's `dataloader_idx`, `outputs`) is refused before anything runs.
"""

from __future__ import annotations

import difflib
import inspect
import warnings
from collections import Counter
from typing import Any

from audiotrain._signatures import known_signature
from audiotrain.train.datamodule import DataModule

import mlx.core as mx

_COMPILED = (
    "it would run inside the compiled training step (backward, gradient processing and the optimizer "
    "update are one mx.compile'd function, where no Python hook can run; a module with "
    "automatic_optimization = False steps by hand, where on_before_backward, on_after_backward and "
    "on_before_optimizer_step run)"
)
_CLIP = "Trainer(gradient_clip_val=...) or a GradientClipper callback for clipping"
# Lightning's docs teach these overrides for a rule that changes with the epoch (clip only after epoch 0) and
# a warm-up by hand: both have a place outside the compiled step that gives Lightning's weights.
_CLIP_BY_EPOCH = (
    "a rule that changes with the epoch (clip only after epoch 0): set self.trainer.gradient_clip_val and "
    "gradient_clip_algorithm in on_train_epoch_start, read as the epoch starts"
)
_WARMUP = (
    "for a learning-rate warm-up by hand, set self.optimizers().param_groups[i]['lr'] in "
    "on_train_batch_start (the update of that batch, or of the accumulation window it ends, uses it), or "
    "give a WarmupLinearScheduler / WarmupCosineScheduler as the learning rate"
)
_INSPECT = (
    "on_train_batch_end (the step's loss and metrics; Trainer(track_grad_norm=True) logs the gradient norm)"
)
_AFTER_UPDATE = (
    "for work once per optimizer update (a teacher's EMA), on_train_batch_end when outputs['stepped'] "
    "is true (under accumulate_grad_batches it is the window's last batch)"
)
_REMOVED = "a Lightning 1.x hook, removed in Lightning 2.0 (which raises for it too)"
_OUTPUTS = (
    "; for a mean over the {stage}, log it in the step with self.log(name, value, on_epoch=True) or return it "
    "as a metric (the Trainer averages it, weighted by batch size)"
)

# Lightning hooks (on a Callback or the module) the Trainer never calls: why, and what to use instead.
UNSUPPORTED = {
    "on_before_backward": (_COMPILED, f"on_train_batch_start, or {_INSPECT}"),
    "on_after_backward": (_COMPILED, f"{_CLIP}; {_INSPECT}"),
    "on_before_optimizer_step": (_COMPILED, f"{_CLIP}; {_INSPECT}"),
    # (Lightning code runs once-per-update work there, a teacher's EMA: on_train_batch_end alone runs it at
    # every batch of an accumulation window.)
    "on_before_zero_grad": (_COMPILED, f"{_INSPECT}; {_AFTER_UPDATE}"),
    "backward": (
        _COMPILED,
        "compute_loss / training_step returning the loss to differentiate (a scaled one, loss * s, with "
        "self.log('train_loss', loss) for the loss itself)",
    ),
    "optimizer_step": (
        _COMPILED,
        f"{_WARMUP}; TrainModule.on_after_optimizer_step for constraints after the update; {_AFTER_UPDATE}",
    ),
    "optimizer_zero_grad": (
        _COMPILED,
        "nothing: gradients are never accumulated between steps by accident (set_to_none changes nothing "
        "here); for gradients of several batches in one update, Trainer(accumulate_grad_batches=N)",
    ),
    "configure_gradient_clipping": (_COMPILED, f"{_CLIP}; {_CLIP_BY_EPOCH}"),
    "lr_scheduler_step": (
        "a schedule is an MLX function of the optimizer's step, evaluated inside the compiled training step, "
        "so there is no scheduler object for a Python hook to step",
        "a schedule in configure_optimizers ({'optimizer': opt, 'lr_scheduler': {'scheduler': schedule, "
        "'interval': 'step' or 'epoch'}}), or set self.optimizers().learning_rate in a hook "
        "(on_train_epoch_start, on_validation_end) for a rule that reads metrics",
    ),
    # Lightning 1.x hooks: defined, they would silently never run.
    "training_epoch_end": (_REMOVED, "on_train_epoch_end" + _OUTPUTS.format(stage="epoch")),
    "validation_epoch_end": (_REMOVED, "on_validation_epoch_end" + _OUTPUTS.format(stage="loader")),
    "test_epoch_end": (_REMOVED, "on_test_epoch_end" + _OUTPUTS.format(stage="loader")),
    "on_epoch_start": (_REMOVED, "on_train_epoch_start or on_validation_epoch_start"),
    "on_epoch_end": (_REMOVED, "on_train_epoch_end or on_validation_epoch_end"),
    "on_batch_start": (_REMOVED, "on_train_batch_start"),
    "on_batch_end": (_REMOVED, "on_train_batch_end"),
    "on_pretrain_routine_start": (_REMOVED, "on_fit_start"),
    "on_pretrain_routine_end": (_REMOVED, "on_fit_start"),
    "on_keyboard_interrupt": (_REMOVED, "on_exception (it gets the KeyboardInterrupt)"),
}

# LightningModule hooks audiotrain's TrainModule does not have: defined on a module, they would never run.
_LIGHTNING_ONLY_MODULE_HOOKS = (
    "configure_sharded_model",
    "on_validation_model_eval",
    "on_validation_model_train",
    "on_validation_model_zero_grad",
    "on_test_model_eval",
    "on_test_model_train",
    "on_predict_model_eval",
)

# Lightning's batch hooks, in the order it calls them for every batch of every stage.
BATCH_TRANSFER_HOOKS = ("on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer")

# audiotrain's module hooks that take arguments Lightning's do not (`on_train_epoch_end(self)` there).
_EXTRA_ARGUMENTS = ("on_train_epoch_start", "on_train_epoch_end", "on_validation_end", "on_test_end")


# Of those, the hooks of the training step only: Lightning calls them in `fit` alone, so in `validate`,
# `test` and `predict` they are never called there either, and a module ported with them evaluates as is.
_TRAINING_STEP_ONLY = frozenset(
    name for name, (why, _) in UNSUPPORTED.items() if why == _COMPILED or name == "lr_scheduler_step"
)


# The hooks a manual module's step calls (`manual.ManualStep`), as Lightning's manual loop does.
MANUAL_STEP_HOOKS = frozenset({"on_before_backward", "on_after_backward", "on_before_optimizer_step"})


def refuse_unsupported(objects: list[Any], stage: str = "fit", manual: bool = False) -> None:
    """Raise when a callback or the module defines a Lightning hook the Trainer would never call in
    `stage` (where Lightning would); `manual`: the module steps its optimizers itself, whose step calls
    `MANUAL_STEP_HOOKS`."""
    for obj in objects:
        for name, (why, instead) in UNSUPPORTED.items():
            if stage != "fit" and name in _TRAINING_STEP_ONLY:
                continue
            if manual and name in MANUAL_STEP_HOOKS:
                continue
            if callable(getattr(type(obj), name, None)):
                raise TypeError(
                    f"{type(obj).__name__}.{name} would never be called: {why}. Use instead: {instead} "
                    "(or remove it)"
                )


def refuse_uncallable_hooks(callbacks: list[Any], base: type) -> None:
    """Raise for a callback hook that cannot take the arguments the Trainer passes it, such as Lightning 1.x's
    `on_train_batch_end(..., batch_idx, dataloader_idx)` or `on_train_epoch_end(trainer, module, outputs)`:
    called, it would raise a bare TypeError at its first call, after a whole epoch maybe, with nothing saved.
    Checked as a LambdaCallback's functions are. `on_train_end` is left out: a callback given to
    `create_trainer` may define seed 003's form of it."""
    from audiotrain.train.callbacks.lambda_callback import hook_arguments, hook_names
    from audiotrain.train.prediction_writer import BasePredictionWriter, refuse_unwritable

    for cb in callbacks:
        if isinstance(cb, BasePredictionWriter):
            refuse_unwritable(cb)
        for name in hook_names():
            if name == "on_train_end" or getattr(type(cb), name, None) is getattr(base, name, None):
                continue
            signature = known_signature(getattr(cb, name))
            arguments = hook_arguments(name)
            if any(name in names for names in _EVALUATION_BATCH_HOOKS.values()):
                # (Lightning 2's own, not a 1.x signature: passed where the stage has several loaders, and
                # refused without a default where it has one, by `refuse_required_dataloader_idx`)
                if signature is not None and "dataloader_idx" in signature.parameters:
                    arguments = [*arguments, "dataloader_idx"]
            try:
                if signature is not None:
                    signature.bind(*arguments)
            except TypeError as err:
                raise TypeError(
                    f"{type(cb).__name__}.{name}{signature} cannot take the hook's arguments: the Trainer "
                    f"calls it as {name}({', '.join(arguments)}) ({err}). Write it as "
                    f"def {name}(self, {', '.join(arguments)}): ... (Lightning 2.0 removed dataloader_idx "
                    "from the training batch hooks and outputs from on_train_epoch_end)"
                ) from None


# A DataModule's hooks and the arguments the Trainer passes them, by position.
_DATAMODULE_HOOK_ARGUMENTS = {
    "prepare_data": (),
    "setup": ("stage",),
    "train_dataloader": (),
    "val_dataloader": (),
    "test_dataloader": (),
    "predict_dataloader": (),
    "state_dict": (),
    "load_state_dict": ("state_dict",),
    "on_before_batch_transfer": ("batch", "dataloader_idx"),
    "transfer_batch_to_device": ("batch", "device", "dataloader_idx"),
    "on_after_batch_transfer": ("batch", "dataloader_idx"),
    "on_exception": ("exception",),
    "teardown": ("stage",),
}


def refuse_uncallable_datamodule_hooks(datamodule: Any) -> None:
    """Raise, before a stage calls any of them, for a DataModule hook that cannot take the arguments the
    Trainer passes it (Lightning 1.x's `teardown(self)` without `stage`): called, it would raise a bare
    TypeError, for `teardown` only once the whole fit had run."""
    for name, arguments in _DATAMODULE_HOOK_ARGUMENTS.items():
        hook = getattr(datamodule, name, None)
        signature = known_signature(hook) if callable(hook) else None
        try:
            if signature is not None:
                signature.bind(*arguments)
        except TypeError as err:
            written = ", ".join(("self", *arguments))
            raise TypeError(
                f"{type(datamodule).__name__}.{name}{signature} cannot take the hook's arguments: the "
                f"Trainer calls it as {name}({', '.join(arguments)}) ({err}). Write it as "
                f"def {name}({written}): ..."
            ) from None


# The hooks of each stage's batches that Lightning passes `dataloader_idx` only where the stage has several
# loaders (its `_verify_dataloader_idx_requirement`).
_EVALUATION_BATCH_HOOKS = {
    "fit": ("validation_step", "on_validation_batch_start", "on_validation_batch_end"),
    "validate": ("validation_step", "on_validation_batch_start", "on_validation_batch_end"),
    "test": ("test_step", "on_test_batch_start", "on_test_batch_end"),
    "predict": ("predict_step", "on_predict_batch_start", "on_predict_batch_end"),
}


def refuse_required_dataloader_idx(callbacks: list[Any], module: Any, stage: str) -> None:
    """Raise, as Lightning does with one loader, for a step or batch hook of `stage`'s evaluation (on the
    module or a callback) whose `dataloader_idx` has no default: never passed, it would end the stage at its
    first batch with a bare "missing 1 required positional argument", after a training epoch in `fit`."""
    for owner in (module, *callbacks):
        for name in _EVALUATION_BATCH_HOOKS.get(stage, ()):
            _refuse_required_dataloader_idx(owner, name)


def _refuse_required_dataloader_idx(owner: Any, name: str) -> None:
    hook = getattr(type(owner), name, None)
    signature = known_signature(hook) if callable(hook) else None
    parameter = signature.parameters.get("dataloader_idx") if signature is not None else None
    if parameter is None or parameter.default is not inspect.Parameter.empty:
        return
    raise TypeError(
        f"{type(owner).__name__}.{name}{signature} requires dataloader_idx, which is passed only where a "
        "stage has several loaders (a list or dict of them; with one loader Lightning calls it without "
        "dataloader_idx too, and refuses it without a default): give it a default, dataloader_idx=0, or "
        "remove it"
    )


def refuse_missing_dataloader_idx(callbacks: list[Any], module: Any, stage: str) -> None:
    """Raise, as Lightning does for a stage given several loaders, for a step or batch hook of `stage` (the
    module's own, a callback's, or a LambdaCallback's function) that cannot take `dataloader_idx`: passed at
    every batch, it would end the stage at its first batch with a bare "takes 3 positional arguments but 4
    were given"."""
    for owner in (module, *callbacks):
        for name in _EVALUATION_BATCH_HOOKS.get(stage, ()):
            if owner is not module and callable(vars(owner).get(name)):
                _refuse_function_without_dataloader_idx(owner, name, stage)
                continue
            hook = getattr(type(owner), name, None)
            written = overrides(owner, name) if owner is module else user_written_hook(owner, name)
            signature = known_signature(hook) if callable(hook) and written else None  # (ours take it)
            if signature is None or "dataloader_idx" in signature.parameters:
                continue
            if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in signature.parameters.values()):
                continue
            if owner is not module and _takes_one_more_positional(signature, name):
                continue  # (Lightning checks the module's hooks by name; a callback's get the index positionally)
            raise TypeError(
                f"Trainer.{stage} was given several loaders, but {type(owner).__name__}.{name}{signature} "
                "takes no dataloader_idx, which each of its calls gets (the loader's index), as in "
                "Lightning: add dataloader_idx=0 to its signature"
            )


def _takes_one_more_positional(signature: inspect.Signature, name: str) -> bool:
    """Whether a callback's method of `signature` takes the loader's index after hook `name`'s arguments,
    under any name (`def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx, idx=0)`)."""
    from audiotrain.train.callbacks.lambda_callback import hook_arguments

    try:
        signature.bind("self", *hook_arguments(name), "dataloader_idx")
    except TypeError:
        return False
    return True


def _refuse_function_without_dataloader_idx(owner: Any, name: str, stage: str) -> None:
    """A LambdaCallback's function (an instance attribute), called with the loader's index after the hook's
    arguments (`LambdaCallback(on_validation_batch_end=lambda trainer, module, outputs, batch, batch_idx,
    dataloader_idx=0: ...)`)."""
    from audiotrain.train.callbacks.lambda_callback import hook_arguments

    arguments = [*hook_arguments(name), "dataloader_idx"]
    signature = known_signature(vars(owner)[name])
    try:
        if signature is not None:
            signature.bind(*arguments)
    except TypeError:
        raise TypeError(
            f"Trainer.{stage} was given several loaders, but {type(owner).__name__}({name}=...)'s function "
            f"of {signature} cannot take dataloader_idx, which each call gets after the hook's arguments, as "
            f"in Lightning: it is called as {name}({', '.join(arguments)})"
        ) from None


def warn_unknown_hooks(callbacks: list[Any], callback_base: type, module: Any, module_base: type) -> None:
    """Warn about a method named like a hook that is none, so that the Trainer never calls it (a
    misspelling such as `on_train_epoch_ends`): on a callback every `on_*` method, on the module only one
    close to a hook's name (a module may well have `on_*` helpers of its own)."""
    for obj, base, every in [*((cb, callback_base, True) for cb in callbacks), (module, module_base, False)]:
        hooks = [name for name in dir(base) if name.startswith("on_")]
        for name in dir(type(obj)):
            if not name.startswith("on_") or name in UNSUPPORTED or hasattr(base, name):
                continue
            if not callable(getattr(type(obj), name)):
                continue
            close = difflib.get_close_matches(name, hooks, n=1, cutoff=0.8)
            if close or every:
                hint = f" (did you mean {close[0]}?)" if close else ""
                warnings.warn(
                    f"{type(obj).__name__}.{name} is not a {base.__name__} hook, so the Trainer never calls "
                    f"it{hint}; the hooks are the methods of audiotrain's {base.__name__}",
                    stacklevel=4,
                )


def warn_lightning_only_hooks(module: Any) -> None:
    """Warn about a LightningModule hook on the module that the Trainer never calls (no TrainModule hook
    has its name, so the misspelling check above does not see it)."""
    for name in _LIGHTNING_ONLY_MODULE_HOOKS:
        if callable(getattr(type(module), name, None)):
            warnings.warn(
                f"{type(module).__name__}.{name} is a Lightning hook the audiotrain Trainer never calls; "
                "move what it does to setup / configure_model (model building) or on_validation_start / "
                "on_validation_end (switching modes), or remove it",
                stacklevel=4,
            )
    if callable(getattr(type(module), "on_exception", None)):
        # (Lightning's Trainer calls the callbacks' and the DataModule's on_exception, never the module's)
        warnings.warn(
            f"{type(module).__name__}.on_exception is a Callback and DataModule hook: the Trainer never "
            "calls a module's (nor does Lightning's). Put it in a Callback, def on_exception(self, trainer, "
            "pl_module, exception), and return that from configure_callbacks()",
            stacklevel=4,
        )


def transfer_batch(
    batch: Any, module: Any, datamodule: Any, dataloader_idx: int = 0, profiler: Any = None
) -> Any:
    """A batch from the loader through Lightning's batch hooks, in its order: `on_before_batch_transfer`,
    `transfer_batch_to_device`, `on_after_batch_transfer`. MLX memory is unified, so no transfer moves
    anything: `transfer_batch_to_device` gets the batch and the default device and gives back the batch,
    but the user's transforms in these hooks change what is trained. Where the datamodule overrides a hook,
    its own runs in the module's place, as in Lightning. Each is timed by `profiler` where given
    (Lightning's `[LightningModule]<class>.<hook>`, `[LightningDataModule]...` for the datamodule's)."""
    device = mx.default_device()
    for name in BATCH_TRANSFER_HOOKS:
        owner = datamodule if _overrides(datamodule, name) else module
        hook = getattr(owner, name, None)
        if not callable(hook):
            continue
        extra = (device,) if name == "transfer_batch_to_device" else ()
        if profiler is None:
            batch = hook(batch, *extra, dataloader_idx)
        else:
            kind = "LightningModule" if owner is module else "LightningDataModule"
            with profiler.profile(f"[{kind}]{type(owner).__name__}.{name}"):
                batch = hook(batch, *extra, dataloader_idx)
        if batch is None:
            raise TypeError(
                f"{type(owner).__name__}.{name} returned None: it must return the batch (the one it got, or "
                "the transformed one)"
            )
    return batch


def warn_of_batch_hooks_beside_a_datamodule(module: Any, datamodule: Any) -> None:
    """Lightning's warnings where a stage runs with a datamodule and the module defines a batch hook: only
    one of the two runs (`transfer_batch`), the datamodule's where both define it."""
    if datamodule is None:
        return
    from audiotrain._caller import user_stacklevel

    model, data = type(module).__name__, type(datamodule).__name__
    for name in BATCH_TRANSFER_HOOKS:
        if not overrides(module, name):
            continue
        if _overrides(datamodule, name):
            message = (
                f"You have overridden `{name}` in both the TrainModule ({model}) and the DataModule ({data}). "
                "The DataModule's runs, the TrainModule's is not called (as in Lightning)"
            )
        else:
            message = (
                f"You have overridden `{name}` in the TrainModule ({model}) but have passed in a DataModule "
                f"({data}) that does not. The TrainModule's runs (as in Lightning)"
            )
        warnings.warn(message, UserWarning, stacklevel=user_stacklevel())


def _overrides(datamodule: Any, name: str) -> bool:
    """The datamodule has its own `name` (not DataModule's default, which passes the batch on)."""
    if datamodule is None or not callable(getattr(datamodule, name, None)):
        return False
    return getattr(type(datamodule), name, None) is not getattr(DataModule, name, None)


def overrides(module: Any, name: str) -> bool:
    """The module's class defines hook `name` itself (not `TrainModule`'s default)."""
    from audiotrain.train.module import TrainModule

    return getattr(type(module), name, None) is not getattr(TrainModule, name, None)


#: The methods each stage needs (Lightning's configuration check): a module that set one to None has none.
_NEEDED = {
    "fit": ("training_step", "configure_optimizers"),
    "validate": ("validation_step",),
    "test": ("test_step",),
    "predict": ("predict_step",),
}


def refuse_steps_set_to_none(module: Any, stage: str) -> None:
    """`model.training_step = None` (Lightning's way to take a method away) is refused by the stage that needs
    it, naming it, as Lightning's "No `training_step()` method defined"; it failed inside the step as
    "'NoneType' object is not callable"."""
    for name in _NEEDED.get(stage, ()):
        if getattr(module, name, True) is None:
            raise TypeError(
                f"Trainer.{stage}: {type(module).__name__}.{name} is None: no `{name}()` method defined "
                f"to run `Trainer.{stage}` (delete the None to use the method, or define one)"
            )


def user_written_hook(callback: Any, name: str) -> bool:
    """`callback`'s class has hook `name` from code outside audiotrain (the user's own, or an override of a
    library callback's): what reads a step's outputs, and whose errors are worth naming the hook of (the
    library's own callbacks' errors name their cause)."""
    method = getattr(type(callback), name, None)
    return method is not None and not getattr(method, "__module__", "").startswith("audiotrain.")


def bare_module_hooks(module: Any) -> frozenset[str]:
    """The module hooks written as Lightning's, without audiotrain's extra arguments (inspected once, at
    the start of a stage), so the Trainer calls them without."""
    return frozenset(
        name for name in _EXTRA_ARGUMENTS if not inspect.signature(getattr(module, name)).parameters
    )


def refuse_shared_states(callbacks: list[Any], base: type) -> None:
    """Two stateful callbacks with one `state_key` would save into one entry (the second overwrites the
    first, and resuming gives both its state): refused, as Lightning does."""
    stateful = [cb for cb in callbacks if type(cb).state_dict is not base.state_dict]
    for cb in stateful:
        # One object listed twice (not two alike): the state_key advice would not fit, so name it.
        again = [j for j, other in enumerate(callbacks) if other is cb]
        if len(again) > 1:
            # (No positions: these are of the Trainer's list, reordered (ModelCheckpoint last) and joined
            # by configure_callbacks' callbacks, not of the list the user wrote.)
            raise ValueError(
                f"Trainer(callbacks=[...]) holds the same {cb!r} object {len(again)} times (counting the "
                "module's configure_callbacks): each entry would run its hooks (one object counted twice, "
                "its state saved once); pass it once"
            )
    for cb in stateful:
        if not isinstance(cb.state_key, str):
            # (Lightning's checkpoints, pickled, take any key; trainer_state.json's keys are strings, so a
            # `return type(self)`, Lightning's legacy key, failed mid-save with json's own TypeError.)
            raise TypeError(
                f"{type(cb).__name__}.state_key returned {cb.state_key!r} ({type(cb.state_key).__name__}): "
                "expected a str, the name its state_dict() is saved under in trainer_state.json, e.g. "
                f"return {type(cb).__name__!r} or self._generate_state_key(what=self.what)"
            )
    counts = Counter(cb.state_key for cb in stateful)
    for cb in stateful:
        if counts[cb.state_key] > 1:
            raise ValueError(
                f"Found more than one stateful callback of type {type(cb).__name__} with state_key "
                f"{cb.state_key!r}: their saved states would overwrite each other. Give each a distinct "
                "state_key (override the state_key property, e.g. from its settings: "
                "return self._generate_state_key(what=self.what))"
            )


__all__ = [
    "BATCH_TRANSFER_HOOKS",
    "UNSUPPORTED",
    "bare_module_hooks",
    "refuse_missing_dataloader_idx",
    "refuse_required_dataloader_idx",
    "refuse_shared_states",
    "refuse_uncallable_datamodule_hooks",
    "refuse_uncallable_hooks",
    "refuse_unsupported",
    "transfer_batch",
    "warn_lightning_only_hooks",
    "warn_unknown_hooks",
]
