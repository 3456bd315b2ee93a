"""What the weight-averaging callbacks share (`StochasticWeightAveraging`, `WeightAveraging`): the arrays
averaged, putting arrays into the module, checks of `avg_fn` and `device`, the check that a saved
average fits the module it is loaded for, and the weights a checkpoint was validated with."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audiotrain._signatures import known_signature
from audiotrain.distributed import collectives
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.callback import Callback, _RunReference
from audiotrain.train.callbacks._monitor import _fit_of_another_trainer

import mlx.core as mx
import mlx.nn as nn

#: What an `avg_fn` is called with: the average so far, the module's array now, and how many updates (SWA:
#: epochs) the average holds (an int32 scalar `mx.array`, as torch's `AveragedModel` passes a tensor).
AverageFunction = Callable[[mx.array, mx.array, mx.array], mx.array]

if TYPE_CHECKING:
    from audiotrain.train.module import TrainModule

#: How `avg_fn` is called, for the messages that name it.
AVG_FN_CALL = "avg_fn(average, current, n_averaged)"


def changed_settings(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """``"<name> <saved> there, <now> here"`` for each setting in `now` that the checkpoint resumed saved
    otherwise: a saved average holds only with the settings that made it."""
    return [
        f"{name} {saved.get(name)!r} there, {value!r} here"
        for name, value in now.items()
        if saved.get(name) != value
    ]


def floating(module: TrainModule, buffers: bool = True) -> dict[str, mx.array]:
    """The module's floating arrays by dotted name: what is averaged. All of ``module.parameters()``
    (BatchNorm's running statistics too: Lightning's ``use_buffers=True``), or (`buffers` False) all but
    the buffers: frozen parameters are kept, as torch's `AveragedModel` averages every parameter, so the
    set never changes when a layer is frozen or unfrozen during fit."""
    left_out = buffer_names(module) if not buffers else set()
    return {
        k: v
        for k, v in ckpt.flat(module.parameters()).items()
        if mx.issubdtype(v.dtype, mx.floating) and k not in left_out
    }


#: The arrays of a layer that are buffers in torch (running statistics, not parameters): MLX keeps them
#: among ``parameters()``, frozen.
_BUFFERS = {nn.BatchNorm: ("running_mean", "running_var")}


def buffer_names(module: TrainModule) -> set[str]:
    """The dotted names of the module's buffers: BatchNorm's running_mean and running_var (found by the
    layer's type and the arrays' names)."""
    found = set()
    for prefix, layer in module.named_modules():
        for kind, names in _BUFFERS.items():
            if isinstance(layer, kind):
                found.update(f"{prefix}.{n}" if prefix else n for n in names if n in layer)
    return found


class AveragingCallback(Callback):
    """What the callbacks that put an average of the weights into the module share (StochasticWeightAveraging,
    WeightAveraging): two of them in one Trainer are refused (Lightning keeps one averaging model per
    callback; both writing the module at the end of fit, one discards the other's work); the fit's module,
    and the average as checkpoint arrays. A subclass keeps `n_averaged`, `_average`, `_reset()`, names what it
    counts (`_AVERAGE_UNIT`) and says which of a module's arrays it averages (`_averaged_arrays`)."""

    _AVERAGE_UNIT = "update"
    n_averaged: int
    _average: dict[str, mx.array]
    _module: weakref.ref | None

    def _reset(self) -> None:
        raise NotImplementedError

    def _averaged_arrays(self, module: TrainModule) -> dict[str, mx.array]:
        raise NotImplementedError

    def refuse_another_averaging(self, trainer: Any) -> None:
        others = [
            cb
            for cb in getattr(trainer, "callbacks", ())
            if isinstance(cb, AveragingCallback) and cb is not self
        ]
        if others:
            names = ", ".join(type(cb).__name__ for cb in [self, *others])
            raise ValueError(
                f"Trainer(callbacks=[...]) holds {len(others) + 1} weight-averaging callbacks ({names}): "
                "each puts its own average into the module when fit ends, so one would discard the other's "
                "work; keep one of them"
            )

    def setup(self, trainer: Any, module: TrainModule, stage: str) -> None:
        if stage != "fit":
            return
        self.refuse_another_averaging(trainer)
        if _fit_of_another_trainer(self, trainer):
            self._reset()
        self._module = _RunReference(module)

    def state_arrays(self) -> dict[str, mx.array]:
        return dict(self._average)

    def load_state_arrays(self, arrays: dict[str, mx.array]) -> None:
        owner = type(self).__name__
        module = self._module() if self._module is not None else None
        if self.n_averaged == 0:
            if arrays:
                raise ValueError(
                    f"{owner}: {len(arrays)} averaged arrays (e.g. {next(iter(arrays))!r}) beside a state "
                    f"that has averaged no {self._AVERAGE_UNIT} (n_averaged 0)"
                )
            return
        counted = f"{self.n_averaged} {self._AVERAGE_UNIT}(s)"
        if not arrays:
            raise ValueError(
                f"{owner}: its state has averaged {counted}, but the checkpoint holds no average of them (its "
                f"{ckpt.CALLBACKS_FILE} is missing, or holds nothing of this callback): was it copied without "
                "that file?"
            )
        if module is not None:  # (load_checkpoint outside fit: nothing to compare with)
            what = f"the average of {counted}"
            check_average_fits(owner, what, arrays, self._averaged_arrays(module), module)
        self._average = {k: widened(a) for k, a in arrays.items()}  # (one saved before averages were widened)


#: The dtypes whose average is kept in float32: bfloat16 and float16 keep 8 and 11 significant bits, so an
#: average stored in them rounds away each update's small share of the change (an EMA's 1 - decay): under
#: precision="bf16-true" it lagged the EMA of the weights it averaged by up to 17% of them.
_WIDENED = (mx.bfloat16, mx.float16)


def widened(array: mx.array) -> mx.array:
    """`array` in the dtype its average is kept in: float32 for bfloat16 and float16, else its own."""
    return array.astype(mx.float32) if array.dtype in _WIDENED else array


def put_into(module: TrainModule, arrays: dict[str, mx.array]) -> None:
    """Put `arrays` (dotted name -> array) into the module, keeping its tree's structure and dtypes exactly
    (a float32 average goes into bfloat16 weights as bfloat16)."""
    now = ckpt.flat(module.parameters())
    # (astype is a no-op where the dtypes agree)
    arrays = {k: a.astype(now[k].dtype) if k in now else a for k, a in arrays.items()}
    module.update(ckpt.merge_flat(module.parameters(), arrays))


def put_average_into(trainer: Any, module: TrainModule, average: dict[str, mx.array]) -> None:
    """Put the average into the module, for a validation or as the fit's result. Under data parallel each
    rank averaged its own BatchNorm running statistics (updated from its own batches), so every rank then
    takes rank 0's, as the Trainer gives them before each validation and when fit ends: every rank
    validates, and ends with, the model rank 0 saves. Every rank calls this at the same hook."""
    put_into(module, average)
    if trainer.world_size > 1:
        collectives.broadcast_running_statistics(module)


def function_name(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def check_avg_fn_arity(owner: str, avg_fn: Callable, counted: str) -> None:
    """Refuse an `avg_fn` that cannot take the three positional arguments it is called with (`counted`:
    what `n_averaged` counts, for the message)."""
    found = known_signature(avg_fn)
    if found is None:
        return  # (checked when it is called: a TypeError there names it)
    try:
        found.bind(None, None, None)
    except TypeError as err:
        raise TypeError(
            f"{owner}: avg_fn {function_name(avg_fn)}{found} cannot be called as {AVG_FN_CALL} (the average "
            f"so far, the parameter now, how many {counted} the average holds): {err}"
        ) from None


def check_device(owner: str, device: Any) -> None:
    """Accept Lightning's `device` only where it is None or the CPU: MLX places no array on a device."""
    cpu = device is None or (isinstance(device, str) and device.strip().lower() == "cpu")
    cpu = cpu or device == mx.cpu or (isinstance(device, mx.Device) and device.type == mx.cpu)
    if not cpu:
        raise ValueError(
            f"{owner}(device={device!r}): the average is kept as MLX arrays beside the model's (MLX places "
            "no array on a device); device is accepted only as None or 'cpu' (Lightning's default), which "
            "change nothing: leave it out"
        )


def dtype_name(array: mx.array) -> str:
    return str(array.dtype).removeprefix("mlx.core.")


def _average_dtype_fits(saved: mx.Dtype, now: mx.Dtype) -> bool:
    """Whether an average saved in `saved` goes into weights of `now`: their own dtype; float32 for bfloat16
    or float16 weights (`widened`); or, from a bf16-true checkpoint saved before averages were widened, a
    bfloat16 average for the float32 weights of a model built anew to evaluate it (`validate(ckpt_path=...)`,
    `load_from_checkpoint`), which takes that checkpoint's bfloat16 model file too."""
    return saved in (now, widened(mx.zeros((), now)).dtype) or (saved == mx.bfloat16 and now == mx.float32)


def check_average_fits(
    owner: str, what: str, arrays: dict[str, mx.array], expected: dict[str, mx.array], module: TrainModule
) -> None:
    """Refuse a saved average (`what`: "the average of 3 epoch(s)") whose names, shapes or dtypes differ
    from the module's arrays it averages (`expected`), naming them."""
    problems = [f"missing {name!r}" for name in sorted(set(expected) - set(arrays))]
    problems += [f"unexpected {name!r}" for name in sorted(set(arrays) - set(expected))]
    for name in sorted(set(expected) & set(arrays)):
        saved, now = arrays[name], expected[name]
        if tuple(saved.shape) != tuple(now.shape):
            problems.append(f"{name!r} of shape {tuple(saved.shape)}, the parameter's {tuple(now.shape)}")
        elif not _average_dtype_fits(saved.dtype, now.dtype):
            problems.append(f"{name!r} in {dtype_name(saved)}, the parameter in {dtype_name(now)}")
    if problems:
        shown = "; ".join(problems[:4]) + ("; ..." if len(problems) > 4 else "")
        raise ValueError(
            f"{owner}: {what} does not fit {type(module).__name__}'s parameters ({len(problems)} problem(s): "
            f"{shown})"
        )


#: The entry of an averaging callback's checkpoint state that says validation during its fit ran with the
#: average (`WeightAveraging`'s; SWA validates the training weights): what `validated_average` looks for.
VALIDATED_WITH_AVERAGE = "validated_with_average"


def average_validated_with(callbacks: Any) -> dict[str, mx.array]:
    """The average validation during fit ran with (dotted name -> array): that of an averaging callback whose
    state says `VALIDATED_WITH_AVERAGE` and that has averaged at least one update; {} where validation used
    the training weights. A weights-only checkpoint holds it as its model.safetensors (it has no
    callbacks.safetensors), so that it scores what ranked it, as a full checkpoint does (Lightning's
    weights-only checkpoint skips its callbacks' ``on_save_checkpoint``: the training weights)."""
    for cb in callbacks:
        if (
            isinstance(cb, AveragingCallback)
            and cb.n_averaged > 0
            and cb.state_dict().get(VALIDATED_WITH_AVERAGE)
        ):
            return cb.state_arrays()
    return {}


def validated_average(
    folder: Path, state: dict[str, Any], module: TrainModule, names: Collection[str] | None = None
) -> dict[str, mx.array]:
    """The weights the checkpoint at `folder` (its trainer state `state`) was validated with, where they
    are not its model.safetensors: the average of an averaging callback whose validation ran with it (its
    state says `VALIDATED_WITH_AVERAGE`) and that has averaged at least one update, read from the folder's
    callbacks.safetensors and checked against `module` (dotted name -> array, to put in after the model's
    weights); {} where validation used the training weights. Lightning's checkpoint holds this average as
    its ``state_dict``, so `validate`/`test`/`predict(ckpt_path=...)` and `load_from_checkpoint` evaluate the
    weights that ranked it. `names`: only those of the module's arrays (a non-strict load)."""
    if state.get("weights_only"):
        return {}  # (its model.safetensors holds that average: `average_validated_with`)
    found = [
        (key, saved)
        for key, saved in (state.get("callbacks") or {}).items()
        if isinstance(saved, dict) and saved.get(VALIDATED_WITH_AVERAGE) and saved.get("n_averaged", 0) > 0
    ]
    if not found:
        return {}
    file = folder / ckpt.CALLBACKS_FILE
    if len(found) > 1:
        raise ckpt.CheckpointError(
            f"{folder / ckpt.STATE_FILE}: {len(found)} averaging callbacks validated with their average "
            f"({', '.join(key for key, _ in found)}); a fit keeps one"
        )
    key, saved = found[0]
    if not file.is_file():
        raise ckpt.CheckpointError(
            f"{file} is missing: the checkpoint was validated with the average of {key} "
            f"({saved['n_averaged']} update(s)), which that file holds (was the folder copied without it?)"
        )
    prefix = f"{key}/"
    arrays = {
        n[len(prefix) :]: a for n, a in ckpt.read_callback_arrays(folder).items() if n.startswith(prefix)
    }
    settings = saved.get("settings") if isinstance(saved.get("settings"), dict) else {}
    expected = floating(module, buffers=settings.get("use_buffers", True) is not False)
    if names is not None:
        names = set(names)
        arrays = {n: a for n, a in arrays.items() if n in names}
        expected = {n: a for n, a in expected.items() if n in names}
    with ckpt.named_source(file):
        check_average_fits(key, f"the average of {saved['n_averaged']} update(s)", arrays, expected, module)
    return {n: a.astype(expected[n].dtype) for n, a in arrays.items()}  # (float32 average, bfloat16 weights)
