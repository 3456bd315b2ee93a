"""`WeightAveraging` and `EMAWeightAveraging`: Lightning's callbacks (2.5+) that keep an average of the
weights, updated after optimizer steps, validated with, and put into the module when fit ends."""

from __future__ import annotations

import math
import numbers
import warnings
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from audiotrain._arguments import changed_arguments, settings_repr
from audiotrain._signatures import known_signature
from audiotrain.train.callbacks._averaging import (
    AVG_FN_CALL,
    VALIDATED_WITH_AVERAGE,
    AverageFunction,
    AveragingCallback,
    changed_settings,
    check_avg_fn_arity,
    check_device,
    floating,
    function_name,
    put_average_into,
    put_into,
    widened,
)

import mlx.core as mx

if TYPE_CHECKING:
    from audiotrain.train.module import TrainModule
    from audiotrain.train.trainer import Trainer


def _ema_tree(average: dict, current: dict, decay: mx.array) -> dict:
    """torch's ``get_ema_multi_avg_fn``: ``average + (current - average) * (1 - decay)`` (its lerp), in
    float32 at least, in each array's dtype (an average of bfloat16 weights is kept in float32)."""
    weight = 1 - decay
    return {k: (a + (current[k] - a) * weight).astype(a.dtype) for k, a in average.items()}


def _mean_tree(average: dict, current: dict, n_averaged: mx.array) -> dict:
    """torch's default: the running equal-weight mean (SWA)."""
    return {k: (a + (current[k] - a) / (n_averaged + 1)).astype(a.dtype) for k, a in average.items()}


# One compiled elementwise graph for the whole tree, shared by every instance: traced once per tree
# structure (and dtypes), then one call a step.
_compiled_ema = mx.compile(_ema_tree)
_compiled_mean = mx.compile(_mean_tree)


class WeightAveraging(AveragingCallback):
    """An average of the module's weights, updated after optimizer steps, as Lightning's `WeightAveraging`
    (torch's `AveragedModel`): equal-weight (SWA) by default, exponential with `decay` (Lightning's
    ``WeightAveraging(multi_avg_fn=get_ema_multi_avg_fn(decay))``, or `EMAWeightAveraging`), or any
    ``avg_fn(average, current, n_averaged)``.

    After each optimizer step (`on_train_batch_end` where `trainer.global_step` advanced: once per
    gradient-accumulation window; a window that the end of an iterable loader closes is counted at the
    epoch's end) `should_update(step_idx=trainer.global_step - 1)` decides whether the average is
    updated; at each epoch's end `should_update(epoch_idx=trainer.current_epoch)` decides whether it is
    updated there too (Lightning's calls; override `should_update` to choose). The first update copies the
    weights, later ones are ``average + (current - average) * (1 - decay)`` (EMA), the running mean, or
    `avg_fn`, as one compiled elementwise function of (average tree, parameter tree, decay or count), so a
    step costs a few fused kernels (see benchmarks/weight_averaging.py).

    What is averaged: every floating array of ``module.parameters()`` with ``use_buffers=True`` (BatchNorm's
    running statistics too, Lightning's default); with ``use_buffers=False`` every parameter but the
    buffers (BatchNorm's running_mean and running_var, which stay as trained). Frozen parameters are
    averaged too, as torch's `AveragedModel` does, so freezing or unfreezing layers during fit
    (`BackboneFinetuning`) changes nothing in what the average holds.

    Two weight-averaging callbacks in one Trainer (this and `StochasticWeightAveraging`, or two of these)
    are refused when fit starts: each puts its own average into the module when fit ends.

    Validation during fit runs with the average: it is put into the module at `on_validation_start` and
    the training weights (the same arrays, bitwise) are put back at `on_validation_end`, before a
    `ModelCheckpoint` saves (it runs after every other callback), so training goes on from them. When fit
    ends the module keeps the average, as in Lightning: `validate`/`test`/`predict` after `fit`,
    `trainer.save_checkpoint` and `module.save_weights` use it. It is put in at `on_fit_end` (Lightning:
    `on_train_end`), after the `last` checkpoint that ModelCheckpoint saves in `on_train_end`, which so
    holds the training weights like every other checkpoint of the fit; a fit that fails or is interrupted
    keeps its training weights.

    Checkpoints saved during training hold the training weights in model.safetensors and the average in
    callbacks.safetensors, with the counters in trainer_state.json (as `StochasticWeightAveraging`), so a
    fit resumed from one, mid-epoch too, ends with the same weights and average as an uninterrupted one.
    `validate`/`test`/`predict(ckpt_path=...)` and `load_from_checkpoint` load the average (the weights
    the checkpoint was validated with, Lightning's checkpoint ``state_dict``), with or without this callback.
    A weights-only checkpoint (``ModelCheckpoint(save_weights_only=True)``, ``save_checkpoint(...,
    weights_only=True)``) has no callbacks.safetensors: its model.safetensors holds the average, so that it
    too scores what ranked it (Lightning skips its callbacks' ``on_save_checkpoint`` for a weights-only
    checkpoint, which then holds the training weights though the average ranked it). Resuming a checkpoint
    whose average was made with other settings (decay, avg_fn, the schedule, the class, use_buffers) is
    refused, naming what differs.

    Where it differs from Lightning: Lightning saves the average as the checkpoint's ``state_dict`` and the
    training weights beside it (``current_model_state``); here model.safetensors keeps the training
    weights and the average goes in callbacks.safetensors. Arguments are named, not passed on to an
    `AveragedModel` (`multi_avg_fn` is `decay`, `avg_fn` is called once per array inside a compiled
    function: it must be made of MLX operations, no ``.item()``). `device` is accepted as None or the CPU
    only, and does nothing (MLX has no per-array device). Lightning swaps the average in at
    `on_validation_epoch_start` and out at `on_validation_epoch_end`; here it is the whole validation
    (`on_validation_start` to `on_validation_end`), so the module's own `on_validation_end` sees the
    training weights, and the average goes into the module at `on_fit_end` (see above). Before the first
    update nothing is swapped (Lightning's average starts as a copy of
    the weights, the same thing). The schedule arguments (`update_every_n_steps`, `update_starting_at_step`,
    `update_starting_at_epoch`) are those of Lightning's newer `EMAWeightAveraging`, offered here on the base
    class too; `update_starting_at_epoch` starts the per-step updates at that epoch's first step (rather
    than adding updates at epoch ends), and giving both start arguments is refused.

    Data parallel: every process holds the same parameters after each step (the gradients are averaged in
    the step), so each averages its own copy; no communication is added, and rank 0 saves the average.
    Warnings are given on rank 0 alone.

    Args:
        device: None or "cpu" (Lightning's default, and `mx.cpu`): accepted, changes nothing.
        use_buffers: average BatchNorm's running statistics (every floating array of
            ``module.parameters()``) too; False: every parameter but those (they stay as trained).
        avg_fn: ``avg_fn(average, current, n_averaged) -> new average`` for each array (None: the mean, or
            the EMA with `decay`); one whose signature cannot take those three positional arguments is
            refused here.
        decay: the EMA decay, a float in (0, 1) (Lightning's ``get_ema_multi_avg_fn(decay)``); not with
            `avg_fn`.
        update_every_n_steps: update after steps whose 0-based index is a multiple of it (an int >= 1).
        update_starting_at_step: the first 0-based step index updated (an int >= 0; None: from the start).
        update_starting_at_epoch: the first epoch (0-based) whose steps update it (an int >= 0).
    """

    def __init__(
        self,
        device: Any = None,
        use_buffers: bool = True,
        avg_fn: AverageFunction | None = None,
        decay: float | None = None,
        update_every_n_steps: int = 1,
        update_starting_at_step: int | None = None,
        update_starting_at_epoch: int | None = None,
        **averaged_model_args: Any,
    ):
        owner = type(self).__name__
        _refuse_averaged_model_args(owner, averaged_model_args)
        self._settings = changed_arguments(WeightAveraging.__init__, locals())  # (for repr)
        check_device(owner, device)
        if not isinstance(use_buffers, bool):
            raise TypeError(f"{owner}: use_buffers must be True or False, got {use_buffers!r}")
        if avg_fn is not None and not callable(avg_fn):
            raise TypeError(f"{owner}: avg_fn must be callable or None, got {avg_fn!r}")
        if avg_fn is not None:
            check_avg_fn_arity(owner, avg_fn, "updates")
        if decay is not None:
            if isinstance(decay, bool) or not isinstance(decay, numbers.Real):
                raise TypeError(f"{owner}: decay must be a float in (0, 1), got {decay!r}")
            if not (math.isfinite(decay) and 0 < decay < 1):
                raise ValueError(f"{owner}: decay must be a float in (0, 1), got {decay!r}")
            if avg_fn is not None:
                raise ValueError(
                    f"{owner}: give decay (the EMA) or avg_fn, not both: decay={decay!r}, "
                    f"avg_fn={function_name(avg_fn)}"
                )
        self.update_every_n_steps = _checked_int(owner, "update_every_n_steps", update_every_n_steps, 1)
        self.update_starting_at_step = _checked_int(
            owner, "update_starting_at_step", update_starting_at_step, 0, none=True
        )
        self.update_starting_at_epoch = _checked_int(
            owner, "update_starting_at_epoch", update_starting_at_epoch, 0, none=True
        )
        if update_starting_at_step is not None and update_starting_at_epoch is not None:
            raise ValueError(
                f"{owner}: give update_starting_at_step ({update_starting_at_step}) or "
                f"update_starting_at_epoch ({update_starting_at_epoch}), not both"
            )
        self._use_buffers, self._avg_fn = use_buffers, avg_fn
        self.decay = None if decay is None else float(decay)
        self._decay_array = None if decay is None else mx.array(self.decay, mx.float32)
        self._compiled_avg_fn: Callable | None = None
        self._epoch = 0  # the epoch of the step being decided (for update_starting_at_epoch)
        self._module: weakref.ref | None = None  # the module of this fit (`load_state_arrays` checks by it)
        self._fitted_in: weakref.ref | None = None  # the Trainer whose fit the state below belongs to
        self._reset()

    def _reset(self) -> None:
        self.n_averaged = 0  # updates in the average (AveragedModel's name)
        self._latest_update_step = 0  # global_step of the latest step decided (Lightning's name)
        self._latest_update_epoch = -1
        self._average: dict[str, mx.array] = {}  # array name -> its average
        self._training_weights: dict[str, mx.array] | None = None  # held while validation uses the average
        self._fitting = False

    def __repr__(self) -> str:
        return settings_repr(type(self).__name__, self._settings)

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        """Whether to update the average after the optimizer step of 0-based index `step_idx` (0 after
        the first step), or at the end of epoch `epoch_idx`: it is called with one of them (Lightning's
        method: override it to choose). Default: after every `update_every_n_steps`-th step from the start
        step (or the start epoch's first step) on, and at no epoch end."""
        if step_idx is None:
            return False
        if self.update_starting_at_step is not None and step_idx < self.update_starting_at_step:
            return False
        if self.update_starting_at_epoch is not None and self._epoch < self.update_starting_at_epoch:
            return False
        return step_idx % self.update_every_n_steps == 0

    # -- the fit -------------------------------------------------------------------------------------
    def on_train_start(self, trainer: Trainer, module: TrainModule) -> None:
        self._fitting = True
        self._epoch = trainer.current_epoch

    def on_train_epoch_start(self, trainer: Trainer, module: TrainModule) -> None:
        self._epoch = trainer.current_epoch

    def on_train_batch_end(
        self, trainer: Trainer, module: TrainModule, outputs: dict[str, Any], batch: Any, batch_idx: int
    ) -> None:
        self._after_step(trainer, module)

    def on_train_epoch_end(self, trainer: Trainer, module: TrainModule) -> None:
        self._after_step(trainer, module)  # a window the end of an iterable loader closed
        epoch = trainer.current_epoch
        if epoch > self._latest_update_epoch and self.should_update(epoch_idx=epoch):
            self._update(module)
            self._latest_update_epoch = epoch

    def _after_step(self, trainer: Trainer, module: TrainModule) -> None:
        step = trainer.global_step
        if step <= self._latest_update_step:
            return  # no optimizer step since the latest decided (gradient accumulation)
        self._latest_update_step = step
        if self.should_update(step_idx=step - 1):
            self._update(module)

    def on_validation_start(self, trainer: Trainer, module: TrainModule) -> None:
        if self._fitting and self.n_averaged > 0 and self._training_weights is None:
            self._training_weights = self._averaged_arrays(module)
            put_average_into(trainer, module, self._average)

    def on_validation_end(self, trainer: Trainer, module: TrainModule) -> None:
        self._restore_training_weights(module)

    def on_exception(self, trainer: Trainer, module: TrainModule, exception: BaseException) -> None:
        # An exception in validation leaves the average in the module: the training weights go back, so
        # that the fit's error leaves them there, and an `OnExceptionCheckpoint` (whose on_exception runs
        # after every other callback's) saves them, not the average, as the weights to resume from.
        self._restore_training_weights(module)
        self._fitting = False

    def on_train_end(self, trainer: Trainer, module: TrainModule) -> None:
        self._restore_training_weights(module)
        self._fitting = False
        if self.n_averaged == 0 and trainer.is_global_zero:
            warnings.warn(
                f"{type(self).__name__}: fit ended at step {trainer.global_step} without updating the "
                "average (should_update allowed no step): the module keeps its trained weights",
                UserWarning,
                stacklevel=2,
            )

    def on_fit_end(self, trainer: Trainer, module: TrainModule) -> None:
        # After on_train_end, where ModelCheckpoint saves its `last`: that one holds the training weights
        # (and the average beside them), so resuming from it is exact too.
        if self.n_averaged > 0:
            put_average_into(trainer, module, self._average)
            mx.eval(module.parameters())

    def _restore_training_weights(self, module: TrainModule) -> None:
        if self._training_weights is not None:
            put_into(module, self._training_weights)
            self._training_weights = None

    # -- the update ----------------------------------------------------------------------------------
    def _averaged_arrays(self, module: TrainModule) -> dict[str, mx.array]:
        return floating(module, buffers=self._use_buffers)

    def _update(self, module: TrainModule) -> None:
        current = self._averaged_arrays(module)
        if self.n_averaged == 0:
            # (MLX arrays are values: a later update makes new ones; bfloat16 ones are kept as float32)
            self._average = {k: widened(v) for k, v in current.items()}
            return self._updated()
        if current.keys() != self._average.keys():
            missing, added = (
                sorted(self._average.keys() - current.keys()),
                sorted(current.keys() - self._average),
            )
            raise ValueError(
                f"{type(self).__name__}: the module's arrays changed during fit (gone: {missing[:3]}, new: "
                f"{added[:3]}): the average holds those of the first update; keep the module's layers as "
                "they are during fit"
            )
        if self._avg_fn is not None:
            self._average = self._call_avg_fn(current)
        elif self._decay_array is not None:
            self._average = _compiled_ema(self._average, current, self._decay_array)
        else:
            self._average = _compiled_mean(self._average, current, mx.array(self.n_averaged, mx.int32))
        self._updated()

    def _updated(self) -> None:
        # Queued beside the step's own work: no host sync, and no graph grows across steps. Each process
        # averages its own copy (the same parameters on every rank): no communication.
        mx.async_eval(list(self._average.values()))
        self.n_averaged += 1

    def _call_avg_fn(self, current: dict[str, mx.array]) -> dict[str, mx.array]:
        owner, avg_fn = type(self).__name__, self._avg_fn
        assert avg_fn is not None
        if self._compiled_avg_fn is None:

            def tree_fn(average: dict, now: dict, n: mx.array) -> dict:
                return {k: avg_fn(a, now[k], n) for k, a in average.items()}

            self._compiled_avg_fn = mx.compile(tree_fn)
        try:
            new = self._compiled_avg_fn(self._average, current, mx.array(self.n_averaged, mx.int32))
        except TypeError as err:
            if known_signature(avg_fn) is not None:
                raise  # (its arity was checked: an error of its own)
            raise TypeError(
                f"{owner}: avg_fn {function_name(avg_fn)} failed, called as {AVG_FN_CALL}: {err}"
            ) from err
        for name, value in current.items():
            got = new.get(name) if isinstance(new, dict) else None
            if not isinstance(got, mx.array) or got.shape != value.shape:
                what = f"shape {tuple(got.shape)}" if isinstance(got, mx.array) else type(got).__name__
                raise ValueError(
                    f"{owner}: avg_fn returned a {what} for {name!r}, whose average is an mx.array of shape "
                    f"{tuple(value.shape)}"
                )
            if got.dtype != self._average[name].dtype:
                new[name] = got.astype(self._average[name].dtype)
        return new

    def _resolved_settings(self) -> dict[str, Any]:
        """The settings that decide the average (JSON): a resume with others is refused."""
        return {
            "class": type(self).__qualname__,
            "use_buffers": self._use_buffers,
            "avg_fn": None if self._avg_fn is None else function_name(self._avg_fn),
            "decay": self.decay,
            "update_every_n_steps": self.update_every_n_steps,
            "update_starting_at_step": self.update_starting_at_step,
            "update_starting_at_epoch": self.update_starting_at_epoch,
        }

    # -- state ---------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "n_averaged": self.n_averaged,
            "latest_update_step": self._latest_update_step,
            "latest_update_epoch": self._latest_update_epoch,
            "settings": self._resolved_settings(),
            # Validation during fit ran with the average: validate/test/predict(ckpt_path=...) and
            # load_from_checkpoint load it over model.safetensors (`validated_average`), as in Lightning.
            VALIDATED_WITH_AVERAGE: True,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        owner = type(self).__name__
        if not isinstance(state, dict):
            raise ValueError(f"the {owner} state must be an object, got {type(state).__name__}")
        n = state.get("n_averaged", 0)
        step = state.get("latest_update_step", 0)
        epoch = state.get("latest_update_epoch", -1)
        for name, value, least in (
            ("n_averaged", n, 0),
            ("latest_update_step", step, 0),
            ("latest_update_epoch", epoch, -1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"the {owner} state's {name!r} must be an int >= {least}, got {value!r}")
        settings = state.get("settings")
        if settings is not None and not isinstance(settings, dict):
            raise ValueError(f"the {owner} state's 'settings' must be an object, got {settings!r}")
        if n > 0 and settings is not None:
            differ = changed_settings(settings, self._resolved_settings())
            if differ:
                raise ValueError(
                    f"{owner}: the checkpoint resumed holds an average of {n} update(s) made with other "
                    f"settings: {'; '.join(differ)}. Resume with those, or start a new fit from its weights"
                )
        self.n_averaged, self._latest_update_step, self._latest_update_epoch = n, step, epoch
        self._average, self._training_weights = {}, None


class EMAWeightAveraging(WeightAveraging):
    """Exponential moving average of the weights, as Lightning's `EMAWeightAveraging` (its newer
    versions): `WeightAveraging` with ``decay=0.999`` by default, updated after every
    `update_every_n_steps`-th optimizer step from `update_starting_at_step` (or `update_starting_at_epoch`)
    on. See `WeightAveraging` for validation, the end of fit, checkpoints and where it differs from
    Lightning."""

    def __init__(
        self,
        device: Any = None,
        use_buffers: bool = True,
        decay: float = 0.999,
        update_every_n_steps: int = 1,
        update_starting_at_step: int | None = None,
        update_starting_at_epoch: int | None = None,
    ):
        super().__init__(
            device=device,
            use_buffers=use_buffers,
            decay=decay,
            update_every_n_steps=update_every_n_steps,
            update_starting_at_step=update_starting_at_step,
            update_starting_at_epoch=update_starting_at_epoch,
        )
        self._settings = changed_arguments(EMAWeightAveraging.__init__, locals())


def _refuse_averaged_model_args(owner: str, given: dict[str, Any]) -> None:
    """Lightning passes WeightAveraging's other keywords on to torch's AveragedModel; here each is refused
    with what stands for it (a Lightning script's ``multi_avg_fn=get_ema_multi_avg_fn(0.999)`` was a bare
    "unexpected keyword argument")."""
    for name, value in given.items():
        if name == "multi_avg_fn":
            raise TypeError(
                f"{owner}(multi_avg_fn={function_name(value)}): torch's multi_avg_fn updates torch tensors in "
                "place; pass decay=D for get_ema_multi_avg_fn(D), or avg_fn=f(average, current, n_averaged) "
                "made of elementwise arithmetic on MLX arrays"
            )
        raise TypeError(
            f"{owner}({name}=...): an argument of torch's AveragedModel, which Lightning passes on; it has no "
            "counterpart here (the arguments are device, use_buffers, avg_fn, decay, update_every_n_steps, "
            "update_starting_at_step, update_starting_at_epoch)"
        )


def _checked_int(owner: str, name: str, value: Any, least: int, none: bool = False) -> int | None:
    if value is None and none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        kind = f"an int >= {least}" + (" or None" if none else "")
        raise TypeError(f"{owner}: {name} must be {kind}, got {value!r}")
    if value < least:
        raise ValueError(f"{owner}: {name} must be an int >= {least}, got {value!r}")
    return int(value)


__all__ = ["EMAWeightAveraging", "WeightAveraging"]
