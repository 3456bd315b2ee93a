"""Moving arrays between the two feature backends: "mlx" (batched, on MLX's default device) and "numpy".

Every feature function takes ``backend=`` and returns an ``mx.array`` for "mlx" and an ``np.ndarray`` for
"numpy". The numpy path is the reference the MLX path is tested against, and what data-loader workers use
when they must not touch MLX. The input's type does not decide it: `cqt(numpy_signal)` is an mx.array.
Their `@overload`s say so to type checkers (``backend="numpy"`` -> np.ndarray, the default -> mx.array,
a backend known only at run time -> either); `power_to_db` returns the type it is given, and
`chroma_cqt(C=...)` the type of `C`.
"""

from __future__ import annotations

import numbers
import threading

from audiotrain._system import usable_cores
from audiotrain._thread_streams import clear_streams_when_thread_ends

import mlx.core as mx
import numpy as np

BACKENDS = ("mlx", "numpy")


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return backend


def is_mlx(x) -> bool:
    return isinstance(x, mx.array)


def to_numpy(x, dtype=None) -> np.ndarray:
    """A numpy view or copy of an mx.array or array-like, optionally cast."""
    array = np.asarray(x)
    return array if dtype is None else array.astype(dtype, copy=False)


#: A last axis of at most this many samples, after an axis of at least `CHANNELS_HINT_MIN_SAMPLES`, is
#: most likely channels: ``soundfile.read`` returns stereo as [samples, 2], while the features read the
#: last axis as time ([..., samples], as librosa). A real batch of clips is never that short, so the
#: error only adds a hint where a [frames, channels] array would otherwise give wrong shapes silently.
CHANNELS_HINT_MAX = 8
CHANNELS_HINT_MIN_SAMPLES = 1024


def check_sample_rate(sr: float, name: str = "sr") -> float:
    """`sr` as a float, or ValueError naming it (as `name`: the keyword the caller took it by) when it is not
    a positive number of Hz."""
    # (A str such as "16000", from a config or the command line, would reach numpy's isfinite and fail
    # with a ufunc TypeError that names neither sr nor what it takes.)
    if isinstance(sr, bool) or not isinstance(sr, numbers.Real) or not np.isfinite(sr) or sr <= 0:
        shown = repr(sr) if isinstance(sr, str) else sr
        raise ValueError(f"{name} must be a positive sampling rate in Hz, got {shown}")
    return float(sr)


def as_float_signal(y, backend: str, name: str = "y", caller: str | None = None):
    """Validate a real signal [..., samples] and convert it to the backend's float array.

    numpy keeps float64 input as float64 (for references); everything else becomes float32. Refused, as
    librosa refuses them: integer samples (PCM as ``scipy.io.wavfile.read`` returns it: the features would
    be 32768 times too large), NaN or Inf samples (they spread over every frame of a CQT), no samples at
    all, and channels-last audio (see `CHANNELS_HINT_MAX`). An mx.array being traced (`being_traced`) is
    not checked for NaN (nothing can be read then); where it must go to the host, the error names
    `caller`, the function that needs it there.
    """
    check_backend(backend)
    xp = mx if is_mlx(y) else np
    if not is_mlx(y):
        y = np.asarray(y)
    if xp.issubdtype(y.dtype, xp.integer):
        raise TypeError(
            f"{name} holds integer samples ({y.dtype}); the features expect floating-point audio: scale "
            f"to [-1, 1] first, e.g. {_pcm_scaling(y.dtype, name)} for {y.dtype}"
        )
    if not xp.issubdtype(y.dtype, xp.floating):
        raise TypeError(f"{name} must be a real-valued signal, got dtype {y.dtype}")
    _check_shape(tuple(y.shape), name)
    if is_mlx(y) and backend == "mlx":
        y = y.astype(mx.float32) if y.dtype != mx.float32 else y
        if being_traced(y):
            return y
        if not mx.all(mx.isfinite(y)).item():  # one sync; the features evaluate on the host anyway
            _refuse_non_finite(np.array(y), name)
        return y
    y = _host_copy(y, name, caller) if is_mlx(y) else y
    if not np.isfinite(y).all():
        _refuse_non_finite(y, name)
    if backend == "numpy":
        return y if y.dtype in (np.float32, np.float64) else y.astype(np.float32)
    return mx.array(y.astype(np.float32, copy=False))


def _pcm_scaling(dtype, name: str) -> str:
    """The expression that scales integer PCM of `dtype` into [-1, 1]: its own full scale (int32's said
    'y / 32768 for int16', which left it 65536 times too large), unsigned PCM centred first (8-bit WAV's
    uint8 is offset by 128)."""
    dtype = np.dtype(str(dtype).removeprefix("mlx.core.") if isinstance(dtype, mx.Dtype) else dtype)
    half = 2 ** (8 * dtype.itemsize - 1)
    return f"{name} / {half}" if np.issubdtype(dtype, np.signedinteger) else f"({name} - {half}) / {half}"


def being_traced(y) -> bool:
    """Whether `y` is an mx.array being traced: an input of a function under ``mx.compile``,
    ``mx.grad`` / ``mx.value_and_grad`` or ``mx.vmap`` (the Trainer's step), or an array computed from one.
    Nothing can be evaluated then, so the features skip their host-side checks and evaluate nothing.

    Asked by trying: MLX refuses ``async_eval`` of a traced array, and starts evaluating any other one,
    which the features do next anyway.
    """
    if not is_mlx(y):
        return False
    try:
        mx.async_eval(y)
    except ValueError as err:
        if _TRACED_ASYNC_EVAL not in str(err):
            raise
        return True
    return False


# What MLX (0.32) raises for `async_eval` of a traced array, and for reading one on the host while
# mx.compile or mx.vmap traces it (mx.grad alone lets it be read).
_TRACED_ASYNC_EVAL = "inside a graph transformation"
_TRACED_EVAL = "during function transformations"


def _host_copy(y: mx.array, name: str, caller: str | None) -> np.ndarray:
    if y.dtype == mx.bfloat16:
        # numpy has no bfloat16 (np.array raises a PEP 3118 format error); float32 holds its values exactly.
        y = y.astype(mx.float32)
    try:
        return np.array(y)
    except ValueError as err:
        if _TRACED_EVAL not in str(err):
            raise
    if caller is None:
        what = f'backend="numpy" reads {name} on the host'
        instead = 'use backend="mlx" in a compiled step, or compute the features in the data loader'
    else:
        what = f"{caller} reads {name} on the host"
        instead = (
            f'compute {caller} in the data loader (backend="numpy", in the dataset\'s __getitem__), or train '
            "with Trainer(compile=False)"
        )
    raise ValueError(
        f"{what}, which cannot be done while mx.compile or mx.vmap traces {name} (a compiled training "
        f"step): {instead}"
    )


def _check_shape(shape: tuple[int, ...], name: str) -> None:
    if not shape:
        raise ValueError(f"{name} must have a samples axis, got a scalar")
    if 0 in shape:
        raise ValueError(f"{name} holds no samples (shape {shape})")
    if len(shape) >= 2 and shape[-1] <= CHANNELS_HINT_MAX and max(shape[:-1]) >= CHANNELS_HINT_MIN_SAMPLES:
        raise ValueError(
            f"{name} has shape {shape}: its last axis has {shape[-1]} samples: channels-last audio? The "
            f"features read the last axis as time ([..., samples]); pass {name}.T or a mono mix "
            f"{name}.mean(axis=-1)"
        )


def _refuse_non_finite(y: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(y)
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    where = first[0] if len(first) == 1 else first
    raise ValueError(
        f"{name} holds {int(bad.sum())} non-finite samples (NaN or Inf; the first at index {where}); "
        "every feature frame they reach would be NaN"
    )


def parallel_streams() -> list:
    """Streams to spread independent blocks of feature work over, this thread's own.

    On MLX's CPU backend each stream runs on its own thread, while one stream runs ops one at a time
    and several of them (the FFT among them) on one core: two streams ran two halves of a
    1292 x 2048 rfft in 2.6 ms against 5.0 ms on one, on 2 cores. On a GPU the default stream is
    already parallel, so there is one stream: the default.

    MLX streams belong to the thread that made them ("There is no Stream(cpu, 2) in current thread"
    elsewhere), so each thread makes its own (a data loader's thread workers), and a thread other than the
    main one releases them as it ends (`audiotrain._thread_streams`: MLX would abort the process at exit).
    """
    if mx.default_device() != mx.cpu:
        return [mx.default_stream(mx.default_device())]
    streams = getattr(_this_thread, "cpu_streams", None)
    if streams is None:
        streams = [mx.new_stream(mx.cpu) for _ in range(min(usable_cores(), 8))]
        _this_thread.cpu_streams = streams
        clear_streams_when_thread_ends()
    return streams


_this_thread = threading.local()
