"""Validation of Trainer flags: every wrong value gets a message naming the flag and what it takes."""

from __future__ import annotations

import datetime
import difflib
import math
import numbers
import os
import re
from collections.abc import Hashable, Iterable, Mapping
from typing import Any, TypedDict

from audiotrain._system import GPU_BACKEND_HINT
from audiotrain.train.step import PRECISIONS

import mlx.core as mx


def _fail(name: str, value: Any, expected: str, owner: str = "Trainer") -> None:
    raise ValueError(f"{owner}({name}={value!r}): expected {expected}")


def require_training_length(
    max_epochs: int | None, max_steps: int | None, max_time: float | None, early_stopping: bool = False
) -> None:
    """`fit` needs something that ends it; `validate`, `test` and `predict` do not, so `Trainer()` is
    built without one and `fit` checks, before anything is written. No default length is taken (Lightning
    takes max_epochs=1000): a run as long as nobody chose would be a surprise, not a convenience.
    `early_stopping`: the Trainer has an EarlyStopping, which Lightning's max_epochs=-1 trains until."""
    if max_epochs is None and max_steps is None and max_time is None:
        # (EarlyStopping is no bound: a metric that keeps improving, or one strict=False skips, never stops.)
        until_stopped = (
            "; EarlyStopping does not end a fit by itself here (Lightning's max_epochs=-1 trains until it "
            "stops): bound it, e.g. Trainer(max_epochs=1000) as Lightning's default, and EarlyStopping "
            "still stops it first"
            if early_stopping
            else ""
        )
        raise ValueError(
            "Trainer.fit: set max_epochs, max_steps or max_time on the Trainer (or several; whichever ends "
            "first stops training), e.g. Trainer(max_epochs=10); -1 and None mean no limit. A Trainer "
            f"without them can only validate, test and predict{until_stopped}"
        )


def training_length(name: str, value: Any, assigned: bool = False) -> int | None:
    """`max_epochs` / `max_steps`: a positive int, or None or Lightning's -1 for no limit. `assigned`: set
    on a built Trainer (`trainer.max_epochs = 10` between two fits in a notebook), named so."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value == 0 or value < -1:
        expected = "a positive int, or None or -1 for no limit"
        if assigned:
            raise ValueError(f"trainer.{name} = {value!r}: expected {expected}")
        _fail(name, value, expected)
    return None if value == -1 else int(value)


def positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        _fail(name, value, "a positive int")
    return int(value)


def accumulate_grad_batches(value: Any) -> int:
    """An int >= 1. Lightning 1 also took a dict {epoch: n}, which Lightning 2 (and audiotrain) moved to
    a callback: a ported Trainer call is told where the schedule goes now."""
    if isinstance(value, Mapping):
        _fail(
            "accumulate_grad_batches",
            value,
            f"a positive int; a schedule by epoch is a callback, as in Lightning 2: Trainer("
            f"callbacks=[GradientAccumulationScheduler(scheduling={dict(value)!r})]) "
            "(from audiotrain.train.callbacks)",
        )
    return positive_int("accumulate_grad_batches", value)


def assigned_accumulate_grad_batches(value: Any) -> int:
    """`trainer.accumulate_grad_batches = n` from a callback or between fits (as Lightning's schedule
    callback does): 0 or a string broke the compiled step far from where it was set, and 2.5 or True
    trained with a window no batch count reaches. A whole float (`64 / 16`) counts as its int."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(
            f"trainer.accumulate_grad_batches = {value!r}: expected a positive int (the batches whose "
            "gradients one optimizer step averages; a callback sets it in on_train_epoch_start)"
        )
    return int(value)


def log_every_n_steps(value: Any) -> int:
    """Optimizer steps between the loggers' per-step rows; 0 for none (Lightning's: the epoch's means and
    the validation values are still logged)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        _fail("log_every_n_steps", value, "an int >= 0 (0: no per-step logging, epoch values only)")
    return int(value)


def sanity_steps(value: Any) -> int:
    """`num_sanity_val_steps`: batches checked before training, -1 for the whole loader."""
    if isinstance(value, bool) or not isinstance(value, int) or value < -1:
        _fail("num_sanity_val_steps", value, "an int >= 0, or -1 for the whole validation loader")
    return value


def _whole(value: Any) -> Any:
    """A float above 1 with no fraction (``2.0``, ``1e50``) as the int it is, as Lightning reads a batch count
    (`_determine_batch_limits`); any other value as given."""
    if isinstance(value, float) and value > 1 and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def limit(name: str, value: Any) -> int | float | None:
    """`limit_*_batches`: None (all), an int count >= 0 (a whole float above 1 too: 1e50), or a float
    fraction in [0, 1]."""
    value = _whole(value)
    if value is None:
        return None
    if isinstance(value, bool):
        _fail(name, value, "None, an int number of batches, or a float fraction in [0.0, 1.0]")
    if isinstance(value, numbers.Integral):
        if value < 0:
            _fail(name, value, "a number of batches >= 0")
        return int(value)
    if isinstance(value, numbers.Real) and 0.0 <= value <= 1.0:
        # 1.0 is every batch, as no limit (Lightning's default): a stream without a length too, read to its
        # end (a fraction of it was refused, and len(loader), an estimate there, would cut it short).
        return None if value == 1.0 else float(value)
    _fail(name, value, "None, an int number of batches, or a float fraction in [0.0, 1.0]")


def val_check_interval(value: Any) -> int | float:
    value = _whole(value)
    if isinstance(value, (str, dict, datetime.timedelta)):
        # Lightning 2.6's time-based interval ("DD:HH:MM:SS", a timedelta or a dict).
        _fail(
            "val_check_interval",
            value,
            "a float fraction of an epoch in (0, 1] or an int number of batches >= 1: a time-based interval "
            "(Lightning 2.6's 'DD:HH:MM:SS', timedelta or dict) is not supported. Validate every N batches "
            "(about the batches trained in that time), and for time: max_time or callbacks.Timer end the "
            "fit, ModelCheckpoint(train_time_interval=...) saves by training time",
        )
    if isinstance(value, bool):
        _fail(
            "val_check_interval", value, "a float fraction of an epoch in (0, 1] or an int number of batches"
        )
    if isinstance(value, numbers.Integral):
        if value < 1:
            _fail("val_check_interval", value, "an int number of training batches >= 1")
        return int(value)
    if isinstance(value, numbers.Real) and 0.0 < value <= 1.0:
        return float(value)
    _fail(
        "val_check_interval", value, "a float fraction of an epoch in (0, 1] or an int number of batches >= 1"
    )


def clip(value: Any, algorithm: Any) -> tuple[float | None, str]:
    """`gradient_clip_val` (0 or None: no clipping, as in Lightning) and `gradient_clip_algorithm` in any
    case ("NORM", as Lightning lower-cases it); None is "norm", Lightning's default (its signature's None,
    which a LightningCLI config writes as `gradient_clip_algorithm: null`)."""
    if algorithm is None:
        algorithm = "norm"
    algorithm = algorithm.lower() if isinstance(algorithm, str) else algorithm
    if algorithm not in ("norm", "value"):
        _fail("gradient_clip_algorithm", algorithm, "'norm' or 'value'")
    # (`value >= 0` rather than `not value < 0`: NaN fails it; a NaN threshold makes every clipped gradient
    # NaN, so each update would be skipped as non-finite)
    expected = "a number > 0, or None (or 0) to disable clipping"
    if isinstance(value, bool) or not (value is None or isinstance(value, numbers.Real)):
        # (not a number at all, `(1, 2)` or "1": a TypeError, as Lightning's)
        raise TypeError(f"Trainer(gradient_clip_val={value!r}): expected {expected}")
    if value is not None and not value >= 0:
        _fail("gradient_clip_val", value, expected)
    return (float(value) if value else None), algorithm


def precision(value: Any) -> str:
    aliases = {
        None: "32",  # Lightning's default: 32-true
        "32": "32",
        32: "32",
        "32-true": "32",
        "fp32": "32",
        "bf16-mixed": "bf16-mixed",
        "bf16-true": "bf16-true",
        "bf16": "bf16-mixed",  # as in Lightning: "bf16" means mixed (float32 master weights)
    }
    # Lightning's settings MLX cannot run, each with the setting here that comes closest: asking for 64 bits
    # and being pointed to bfloat16 first (one message for all) sent users the wrong way.
    mixed = (
        "MLX has no float16 autocast or loss scaling; Lightning's own Trainer runs it as 'bf16-mixed' on "
        "a CPU. Use precision='bf16-mixed' (bfloat16 compute with float32 master weights: no loss scaling "
        "needed)"
    )
    unavailable = {
        "16-mixed": mixed,
        "16": mixed,
        16: mixed,
        "fp16": mixed,
        "half": mixed,
        "16-true": "the Trainer has no float16 mode. Use precision='bf16-true' (bfloat16 weights, optimizer "
        "state and batch: float16's range overflows where bfloat16's does not), or 'bf16-mixed'",
        "64": "64-true",
        64: "64-true",
        "64-true": "MLX computes float64 on the CPU only (no GPU kernels) and the Trainer has no 64-bit "
        "mode. Use precision='32' (float32, the widest it trains in)",
        "transformer-engine": "Transformer Engine's FP8 layers are NVIDIA's, for torch. Use "
        "precision='bf16-mixed', or 'bf16-true'",
        "transformer-engine-float16": "transformer-engine",
    }
    # (a list or dict is no key: looked up, it raised "unhashable type: 'list'"; numpy's ints are keys; a
    # tuple is Hashable as a type yet holding a list it is not: hashed to know)
    try:
        hashable = isinstance(value, Hashable) and hash(value) is not None
    except TypeError:
        hashable = False
    if hashable and value in unavailable:
        reason = unavailable[value]
        reason = unavailable.get(reason, reason)  # (64 and "64" read 64-true's)
        raise ValueError(f"Trainer(precision={value!r}): not available on MLX: {reason}")
    if not (hashable and value in aliases):
        close = difflib.get_close_matches(str(value), [str(k) for k in aliases if k is not None], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        _fail("precision", value, f"one of {', '.join(repr(p) for p in PRECISIONS)}{hint}")
    return aliases[value]


def accelerator(value: Any) -> str:
    """Lightning's `accelerator`, as MLX's device: "cpu", or "gpu" (Metal on a Mac, CUDA on Linux)."""
    names = {"auto": "auto", "cpu": "cpu", "gpu": "gpu", "cuda": "gpu", "mps": "gpu", "metal": "gpu"}
    if not isinstance(value, str) or value.lower() not in names:
        _fail("accelerator", value, "'auto', 'cpu' or 'gpu' ('cuda', 'mps' and 'metal' mean 'gpu')")
    choice = names[value.lower()]
    has_gpu = mx.metal.is_available() or (getattr(mx, "cuda", None) is not None and mx.cuda.is_available())
    if choice == "gpu" and not has_gpu:
        raise ValueError(
            f"Trainer(accelerator={value!r}): this MLX has no GPU backend ({GPU_BACKEND_HINT}); use "
            "accelerator='cpu' or 'auto'"
        )
    if choice == "auto":
        choice = "gpu" if has_gpu else "cpu"
    return choice


def devices(value: Any, world_size: int) -> int:
    """Devices per process: MLX drives one; more are more processes (`mlx.launch -n N`)."""
    given = value
    # Lightning reads a count given as text ("2" or "-1", as a YAML config may give it) as the number: "2"
    # under a launch of 2 processes was told to launch 2 processes.
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        value = int(value)
    elif (
        isinstance(value, str) and "," in value and re.fullmatch(r"\s*[0-9]+(\s*,\s*[0-9]+)*\s*,?\s*", value)
    ):
        value = [int(i) for i in value.split(",") if i.strip()]  # (Lightning's GPU ids as text: "0,", "1, 3")
    if value in ("auto", -1, None, 1) or value == world_size:
        return 1
    # A value that counts no device (0, -2, 1.5, "abc") is a mistake, not a request for data parallel, which
    # the message below would suggest (Lightning: "`devices` selected with `CPUAccelerator` should be an
    # int > 0").
    is_count = isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 1
    is_id_list = (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(i, numbers.Integral) and not isinstance(i, bool) and i >= 0 for i in value)
    )
    if not (is_count or is_id_list):
        _fail(
            "devices",
            given,
            "'auto', -1 or 1 (one process uses one device), or the number of processes "
            "of a data-parallel launch (an int > 1)",
        )
    if is_id_list and len(value) == 1:
        # Lightning's devices=[0] (a list of GPU ids) is one device, its first GPU: the one MLX uses. It was
        # told to launch N processes for data parallel.
        if value[0] == 0:
            return 1
        raise ValueError(
            f"Trainer(devices={given!r}): MLX uses the first GPU it sees, one per process; to run on GPU "
            f"{value[0]} make it the first: CUDA_VISIBLE_DEVICES={value[0]} python train.py (with devices=1 "
            "or [0])"
        )
    # Lightning's devices=N starts N processes itself; MLX needs a launcher to start them. Name the one the
    # README recommends (mlx.launch exits 0 when a rank fails) with the user's own N where it is a count
    # (or a list of that many GPU ids).
    n = value if isinstance(value, int) and not isinstance(value, bool) and value > 1 else "N"
    n = len(value) if is_id_list else n
    job = f"this job has {world_size} processes" if world_size > 1 else "this is one process"
    raise ValueError(
        f"Trainer(devices={given!r}): {job}, and one MLX process uses one device. For data parallel over "
        f"{n} devices launch {n} processes: python -m audiotrain launch -n {n} -- python train.py (or "
        f"mlx.launch -n {n} python train.py, or mpirun); there devices={n}, 1 or 'auto' all work"
    )


# Lightning's names of its DDP strategy with a setting MLX's data parallel has no use for: every gradient is
# all-reduced (an unused parameter's is zero), and the processes come from the launcher, whichever way
# Lightning would start them (the devices flag names the launcher where a count asks for more than one).
_DDP_VARIANTS = (
    "ddp_find_unused_parameters_true",
    "ddp_find_unused_parameters_false",
    "ddp_spawn",
    "ddp_fork",
    "ddp_notebook",
)


def strategy(value: Any) -> str:
    if value in ("auto", "ddp", None, *_DDP_VARIANTS):
        return "auto"
    _fail(
        "strategy",
        value,
        "'auto' or 'ddp' (data parallel runs whenever the script is launched on several processes with "
        "mlx.launch or mpirun); sharded strategies (fsdp, deepspeed) are not available on MLX",
    )


def non_negative_int_or_none(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        _fail(name, value, "an int >= 0 or None")
    return int(value)


_TIMEDELTA_KEYS = ("weeks", "days", "hours", "minutes", "seconds", "milliseconds", "microseconds")


def max_time(value: Any, owner: str = "Trainer", name: str = "max_time") -> float | None:
    """Lightning's `max_time` (and `Timer(duration=...)`, `owner` "Timer", `name` "duration"): "DD:HH:MM:SS"
    (surrounding whitespace stripped, as Lightning's Timer does: a budget read from a file ends in a newline),
    a timedelta, or a dict of timedelta's keywords -> seconds."""
    if value is None:
        return None
    expected = "'DD:HH:MM:SS', a datetime.timedelta, or a dict such as {'hours': 2}"
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        # Lightning refuses a number too; say how to write the seconds that were probably meant.
        hint = f"; for seconds, {{'seconds': {value:g}}}" if 0 < value < math.inf else ""
        _fail(name, value, expected + hint, owner)
    unknown = [key for key in value if key not in _TIMEDELTA_KEYS] if isinstance(value, Mapping) else []
    if unknown:  # ({'minute': 1}: say which key, as timedelta's own TypeError does)
        _fail(name, value, f"a dict of {', '.join(_TIMEDELTA_KEYS)}; {unknown[0]!r} is none", owner)
    try:
        if isinstance(value, datetime.timedelta):
            seconds = value.total_seconds()
        elif isinstance(value, Mapping):  # a dict, or a config's (Hydra's DictConfig is a Mapping only)
            seconds = datetime.timedelta(**dict(value)).total_seconds()
        elif isinstance(value, str) and re.fullmatch(r"\d+:\d{1,2}:\d{1,2}:\d{1,2}", value.strip()):
            days, hours, minutes, secs = (int(part) for part in value.strip().split(":"))
            seconds = datetime.timedelta(
                days=days, hours=hours, minutes=minutes, seconds=secs
            ).total_seconds()
        else:
            raise TypeError
    except TypeError:
        _fail(name, value, expected, owner)
    except (OverflowError, ValueError):  # timedelta's: past its 999999999 days, or a NaN or infinite part
        _fail(
            name,
            value,
            "a finite duration (timedelta's range: under 999999999 days); None for no limit",
            owner,
        )
    if seconds <= 0:
        _fail(name, value, "a positive duration", owner)
    return seconds


def check_val_every_n_epoch(value: Any) -> int | None:
    if value is None:
        return None
    return positive_int("check_val_every_n_epoch", value)


def deterministic(value: Any) -> bool | str:
    if value in (True, False, None, "warn"):
        return bool(value) if value != "warn" else "warn"
    _fail("deterministic", value, "True, False, None or 'warn'")


def track_grad_norm(value: Any) -> bool:
    """Whether to log the L2 norm of the gradients (`grad_norm`). Lightning 1's p-norm values keep their
    meaning: -1 (its default) is off and 2 is the L2 norm; another p is refused, since only the L2 norm is
    computed (read as a bool, -1 turned the tracking on and 1 or 'inf' logged an L2 norm under their name)."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, numbers.Real) and value in (-1, 0, 2):
        return value == 2
    _fail(
        "track_grad_norm",
        value,
        "True or False (the gradients' L2 norm, logged as grad_norm); Lightning 1's -1 (off) and 2 (the L2 "
        "norm) are taken too, another p-norm is not computed here",
    )


def fast_dev_run(value: Any) -> int:
    """Number of batches for a smoke run (0 = off, as False or None: Lightning's 0 too)."""
    if value is True:
        return 1
    if value is False or value is None:
        return 0
    if isinstance(value, numbers.Integral) and value >= 0:
        return int(value)
    _fail("fast_dev_run", value, "a bool or an int number of batches >= 0 (0: off)")


def overfit_batches(value: Any) -> int | float:
    """Lightning's `overfit_batches`: 0 (off), an int number of batches, or a float fraction in [0, 1]."""
    expected = "an int number of batches >= 0 or a float fraction in [0.0, 1.0] (0 turns it off)"
    value = _whole(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail("overfit_batches", value, expected)
    if isinstance(value, numbers.Integral) and value >= 0:
        return int(value)
    if not isinstance(value, numbers.Integral) and 0.0 <= value <= 1.0:
        return float(value) if value > 0 else 0  # (0.0, Lightning's default, is off as 0 is)
    _fail("overfit_batches", value, expected)


def switch(name: str, value: Any) -> bool:
    """An on/off flag (`compile`, `enable_checkpointing`, `enable_progress_bar`, ...): True or False (None as
    False, as before; the integers 0 and 1 as False and True, as scripts written before this check pass
    them). Text was taken by its truth: Trainer(compile="false") compiled."""
    # (numpy's bool is np.bool_, named "bool" from numpy 2)
    if value is None or isinstance(value, bool) or type(value).__name__ in ("bool_", "bool"):
        return bool(value)
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    _fail(name, value, "True or False")


def enable_model_summary(value: Any) -> bool:
    """Lightning's `enable_model_summary`: True (or None, Lightning's default) prints the summary at fit."""
    if value is None:
        return True
    if not isinstance(value, bool):
        _fail("enable_model_summary", value, "True or False (None means True, as in Lightning)")
    return value


_LOADER_NAMES = {"train": "training", "val": "validation", "test": "test", "predict": "predict"}


def resolve_limit(limit_value: int | float | None, total: int | None, name: str, stage: str) -> int | None:
    """The number of batches the `stage` loader ("train", "val", ...) of `total` batches contributes under
    `limit_value`, which the Trainer's flag `name` set."""
    if limit_value is None:
        return total
    if isinstance(limit_value, int):
        return limit_value if total is None else min(limit_value, total)
    if total is None:
        raise ValueError(
            f"Trainer({name}={limit_value}): a fraction needs a loader with a length (len(loader)); give an "
            "int number of batches, or 1.0 for all of them"
        )
    count = int(limit_value * total)
    if count == 0 and limit_value > 0 and total > 0:
        # As Lightning: a fraction that rounds to no batch is a mistake, not a request to skip.
        raise ValueError(
            f"Trainer({name}={limit_value}): {limit_value} x the {_LOADER_NAMES[stage]} loader's {total} "
            "batches is less than one batch; use a larger fraction, an int number of batches, or 0 to turn "
            "it off"
        )
    return count


# Lightning Trainer flags with no counterpart here: the values that describe what this Trainer does anyway
# (accepted, so Lightning code runs unchanged) and, for any other value, what to do instead. Any other
# value is refused rather than ignored: a flag that is accepted and does nothing misleads.
_LIGHTNING_ONLY: dict[str, tuple[tuple, str]] = {
    "weights_summary": (
        (None,),
        "Lightning 1.x's flag, which Lightning 2 replaced: enable_model_summary=True (the default) prints "
        "the summary, callbacks=[ModelSummary(max_depth=-1)] every level of it ('full')",
    ),
    "benchmark": ((None, False), "cuDNN's autotuner has no MLX counterpart (MLX chooses its kernels itself)"),
    "inference_mode": (
        (True, False),
        "give True or False: either describes evaluation here (MLX computes gradients only where asked to)",
    ),
    "num_nodes": (
        (1,),
        "data parallel runs one process per device, started by mlx.launch (--hostfile for several "
        "machines); the Trainer reads the processes from mx.distributed",
    ),
    "detect_anomaly": (
        (False,),
        "use debug_lazy_eval=True: it evaluates every step and stops at the first whose loss or gradients "
        "are not finite, naming the batch (non-finite updates are skipped anyway: nonfinite_guard)",
    ),
    "use_distributed_sampler": (
        (True,),
        "an audiotrain DataLoader shards its samples across processes itself; DataLoader(..., "
        "distributed=False) turns that off for one loader",
    ),
    "sync_batchnorm": (
        (False,),
        "there is no synchronised BatchNorm: each process normalises with its own batch's statistics (the "
        "running statistics are rank 0's at each validation and when fit ends)",
    ),
    "barebones": (
        (False,),
        # (Lightning's barebones=True turns off each of these, and self.log; self.log still logs here)
        "the closest is enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, "
        "num_sanity_val_steps=0 and log_every_n_steps=0, with no logger (the default) and no profiler",
    ),
    "plugins": (
        (None, []),  # (Lightning takes an empty list too: no plugins)
        "there are no plugins: precision is Trainer(precision=...), data parallel mlx.launch",
    ),
    "model_registry": (
        (None,),
        "there is no model registry upload: a checkpoint is a folder (model.safetensors and JSON) to copy or "
        "upload yourself, e.g. trainer.checkpoint_callback.last_model_path once fit ends",
    ),
    "truncated_bptt_steps": (
        (None, 0),
        "Lightning 1's truncated backpropagation through time is not supported: "
        "the Trainer does not split batches in time nor pass `hiddens`: give the loader consecutive chunks "
        "of the same clips, keep the hidden state in a buffer (register_buffer) that the step writes with "
        "mx.stop_gradient, and reset it where a new clip starts",
    ),
    "resume_from_checkpoint": ((None,), "Lightning 2 removed it too: pass trainer.fit(..., ckpt_path=...)"),
    "gpus": ((None,), "Lightning 2 removed it too: pass accelerator='gpu' (one device per process)"),
    "progress_bar_refresh_rate": (
        (None,),
        "Lightning 2 removed it too: pass callbacks=[ProgressBar(refresh_rate=...)]",
    ),
    "terminate_on_nan": (
        (None, False),
        "non-finite updates are skipped, and max_consecutive_nonfinite of them in a row stop training",
    ),
    "auto_lr_find": (
        (None, False),
        "Lightning 2 removed it too: use audiotrain.Tuner(trainer).lr_find(module), which sets the module's "
        "lr (or learning_rate) for the next fit",
    ),
    "auto_scale_batch_size": (
        (None, False),
        "Lightning 2 removed it too, and Tuner.scale_batch_size is not provided: choose the batch size "
        "yourself",
    ),
}


class LightningOnlyFlags(TypedDict, total=False):
    """The names of `_LIGHTNING_ONLY` with the types Lightning gives them: `Trainer(**flags)`'s keywords, so a
    type checker knows every flag and flags a misspelt one. The values `_LIGHTNING_ONLY` accepts are checked
    at run time, where the message says what to use instead (a `Literal` of them here would refuse a
    variable that holds one). tests/test_typing.py keeps the names equal to `_LIGHTNING_ONLY`'s."""

    weights_summary: str | None
    benchmark: bool | None
    inference_mode: bool
    num_nodes: int
    detect_anomaly: bool
    use_distributed_sampler: bool
    sync_batchnorm: bool
    barebones: bool
    plugins: Any  # (Lightning plugin objects)
    model_registry: str | None
    truncated_bptt_steps: int | None
    resume_from_checkpoint: str | os.PathLike | None
    gpus: int | str | list[int] | None
    progress_bar_refresh_rate: int | None
    terminate_on_nan: bool | None
    auto_lr_find: bool | str | None
    auto_scale_batch_size: bool | str | None


def lightning_environment(environ: Mapping[str, str]) -> str | None:
    """The warning's text where Lightning's `PL_TRAINER_<FLAG>` environment variables are set (None where
    none is): Lightning's Trainer takes them as its flags' defaults (`PL_TRAINER_MAX_STEPS=7` trains 7 steps
    unless `max_steps` is passed); this one does not read them, so a run would quietly differ."""
    names = sorted(name for name in environ if name.startswith("PL_TRAINER_"))
    if not names:
        return None
    given = ", ".join(f"{name}={environ[name]!r}" for name in names)
    use = ", ".join(f"{name.removeprefix('PL_TRAINER_').lower()}=..." for name in names)
    return (
        f"Trainer: the environment sets {given}, which Lightning's Trainer takes as its flags' defaults; "
        f"audiotrain does not read them: pass Trainer({use})"
    )


def lightning_only(
    given: Mapping[str, object],
    known: Iterable[str],
    owner: str = "Trainer",
    table: dict[str, tuple[tuple, str]] = _LIGHTNING_ONLY,
    what: str = "flag",
    called: str | None = None,
) -> None:
    """Keyword arguments `owner` does not take: a Lightning flag's value that describes what `owner` does
    anyway passes; any other says what to use instead; an unknown name, which one was meant.

    `table`: Lightning's flags without a counterpart -> (the values accepted, what to do instead), as
    `_LIGHTNING_ONLY` (the Trainer's; the loggers have their own). `called`: the name an unknown argument's
    TypeError gives the call (`owner()` unless given)."""
    for name, value in given.items():
        if name not in table:
            close = difflib.get_close_matches(name, [*known, *table], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TypeError(f"{called or owner + '()'} got an unexpected keyword argument {name!r}{hint}")
        harmless, instead = table[name]
        if not any(type(value) is type(ok) and value == ok for ok in harmless):
            accepted = " or ".join(repr(ok) for ok in harmless)
            raise ValueError(
                f"{owner}({name}={value!r}): Lightning's {what} has no counterpart here ({name}={accepted} "
                f"is accepted, as what happens anyway): {instead}"
            )
