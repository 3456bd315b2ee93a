"""Short-time Fourier transform and power spectrogram, in MLX and numpy, framed exactly like librosa.

Frame ``t`` covers samples ``[t * hop_length - n_fft // 2, t * hop_length + n_fft // 2)`` of the signal when
``center=True`` (padded with ``pad_mode``: librosa's default "constant" pads zeros, "reflect" mirrors like
torch and transformers), so there are ``1 + len(y) // hop_length`` frames.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from functools import lru_cache
from typing import Literal, overload

from audiotrain.features._backend import as_float_signal, being_traced, check_backend, parallel_streams
from audiotrain.features._banded import BandedMatrix

import mlx.core as mx
import numpy as np

__all__ = ["get_window", "stft", "spectrogram", "n_frames", "fft_frequencies"]

PAD_MODES = ("constant", "reflect")

#: A window as librosa takes one: a scipy name ("hann"), a (name, parameter) tuple (("kaiser", 8.0); a
#: config file's list), a Kaiser beta, a function of the length (np.hamming), or the samples.
Window = str | tuple | list | float | Callable[[int], np.ndarray] | np.ndarray


def hann_window(length: int) -> np.ndarray:
    """The periodic Hann window of `length` samples, float64: ``scipy.signal.get_window("hann", length)``
    bit for bit (the same operations: features, and the feature cache keyed on their settings, must not
    change), without importing scipy.signal, which took ~0.5 s of every chords command's start."""
    if length <= 1:
        return np.ones(length)
    # scipy: 0.5 * cos(0 * x) + 0.5 * cos(1 * x) over `length + 1` points, the last one dropped.
    return (0.5 + 0.5 * np.cos(np.linspace(-np.pi, np.pi, length + 1)))[:-1]


@lru_cache(maxsize=64)
def _window_cached(window: str | tuple | float, win_length: int, n_fft: int) -> np.ndarray:
    if window == "hann":
        w = hann_window(win_length)
    else:
        import scipy.signal  # here: it takes ~0.5 s to import (`get_window` only)

        w = scipy.signal.get_window(window, win_length, fftbins=True)
    left = (n_fft - win_length) // 2
    return np.pad(w, (left, n_fft - win_length - left))


def window_setting(window: Window) -> Window:
    """`window` with a (name, parameter...) list as the tuple, and a list among its parameters (scipy's
    ``("general_cosine", [0.5, 0.5])``, as JSON gives it back) as a tuple: hashable, for the window cache and
    a frozen config. Other windows as they are."""
    if isinstance(window, list) and window and isinstance(window[0], str):
        window = tuple(window)
    if isinstance(window, tuple):
        return tuple(tuple(value) if isinstance(value, list) else value for value in window)
    return window


def get_window(window: Window, n_fft: int, win_length: int | None = None) -> np.ndarray:
    """The analysis window, periodic (``fftbins=True``) and centred in ``n_fft`` like librosa.

    Parameters
    ----------
    window : str, tuple, float, callable or np.ndarray
        As librosa: a scipy window name ("hann", "hamming", ...), a name with its parameter
        (``("kaiser", 8.0)``; a list too, as a config file holds it), a Kaiser beta, a function of the
        length (``np.hamming``), or the window samples [win_length].
    n_fft : int
        FFT size; the window is zero-padded on both sides to this length.
    win_length : int, optional
        Window length (default ``n_fft``).

    Returns
    -------
    np.ndarray, float64, shape [n_fft]
    """
    win_length = n_fft if win_length is None else int(win_length)
    if not 0 < win_length <= n_fft:
        raise ValueError(f"win_length must be in [1, n_fft={n_fft}], got {win_length}")
    window = window_setting(window)
    if isinstance(window, (str, tuple)) or (
        isinstance(window, numbers.Real) and not isinstance(window, bool)
    ):
        return _window_cached(window, win_length, n_fft)
    w = np.asarray(window(win_length) if callable(window) else window, dtype=np.float64)
    if w.shape != (win_length,):
        raise ValueError(f"window array must have shape ({win_length},), got {w.shape}")
    left = (n_fft - win_length) // 2
    return np.pad(w, (left, n_fft - win_length - left))


def fft_frequencies(sr: float, n_fft: int) -> np.ndarray:
    """Centre frequencies in Hz of the ``n_fft // 2 + 1`` rfft bins."""
    return np.fft.rfftfreq(n=n_fft, d=1.0 / sr)


def n_frames(n_samples: int, n_fft: int, hop_length: int, center: bool = True) -> int:
    """Number of STFT frames for a signal of ``n_samples``."""
    padded = n_samples + 2 * (n_fft // 2) if center else n_samples
    if padded < n_fft:
        raise ValueError(f"signal of {n_samples} samples is shorter than n_fft={n_fft} (center={center})")
    return 1 + (padded - n_fft) // hop_length


def check_stft_args(n_fft: int, hop_length: int | None, pad_mode: str, win_length: int | None = None) -> int:
    """The hop length (default ``win_length // 4``, as librosa's; ``win_length`` defaults to ``n_fft``) after
    checking the STFT settings, naming a bad one."""
    if int(n_fft) != n_fft or n_fft < 2:
        raise ValueError(f"n_fft must be an integer >= 2, got {n_fft}")
    if hop_length is None:
        window_length = n_fft if win_length is None else win_length
        # A win_length out of range is named by `get_window`, not by the hop it would give.
        hop_length = (window_length if 0 < window_length <= n_fft else n_fft) // 4
    if int(hop_length) != hop_length or hop_length < 1:
        raise ValueError(f"hop_length must be a positive integer, got {hop_length}")
    if pad_mode not in PAD_MODES:
        raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
    return int(hop_length)


def frames_numpy(y: np.ndarray, n_fft: int, hop_length: int, center: bool, pad_mode: str) -> np.ndarray:
    """Strided frames [..., frames, n_fft] of ``y`` [..., samples] (a view after padding)."""
    if center:
        pad = n_fft // 2
        if pad_mode == "reflect" and y.shape[-1] <= pad:
            raise ValueError(f"reflect padding needs more than {pad} samples, got {y.shape[-1]}")
        y = np.pad(y, [(0, 0)] * (y.ndim - 1) + [(pad, pad)], mode=pad_mode)
    count = n_frames(y.shape[-1], n_fft, hop_length, center=False)
    return np.lib.stride_tricks.sliding_window_view(y, n_fft, axis=-1)[
        ..., : count * hop_length : hop_length, :
    ]


def frames_mlx(y: mx.array, n_fft: int, hop_length: int, center: bool, pad_mode: str) -> mx.array:
    """Strided frames [..., frames, n_fft] of ``y`` [..., samples] in MLX."""
    lead = y.shape[:-1]
    y = y.reshape(-1, y.shape[-1])
    if center:
        pad = n_fft // 2
        if pad_mode == "constant":
            y = mx.pad(y, [(0, 0), (pad, pad)])
        else:
            if y.shape[-1] <= pad:
                raise ValueError(f"reflect padding needs more than {pad} samples, got {y.shape[-1]}")
            left = y[:, pad:0:-1]
            right = y[:, -2 : -pad - 2 : -1]
            y = mx.concatenate([left, y, right], axis=1)
    count = n_frames(y.shape[-1], n_fft, hop_length, center=False)
    batch, length = y.shape
    framed = mx.as_strided(y, shape=(batch, count, n_fft), strides=(length, hop_length, 1))
    return framed.reshape(*lead, count, n_fft)


def _windowed_rfft_numpy(frames: np.ndarray, window: np.ndarray) -> np.ndarray:
    """rfft of ``frames * window`` [..., n_fft // 2 + 1], complex64 for float32 frames.

    Like librosa, the float64 window promotes the frames so the FFT runs in float64; only the result is
    rounded. A float32 FFT's rounding noise (~1e-7 of the frame's energy) would show in log-mel bins
    70-80 dB below the peak.
    """
    import scipy.fft  # here: ~0.3 s to import (with scipy.special), which only the numpy backend needs

    spec = scipy.fft.rfft(frames * window, axis=-1)
    return spec.astype(np.complex64) if frames.dtype == np.float32 else spec


def _complex_to_power_fn(power: float):
    def fn(x: mx.array) -> mx.array:
        # Reading the complex result as interleaved floats and squaring is far faster on MLX's CPU
        # backend than mx.abs on complex64 (measured 0.6 ms vs 14 ms for 1292 x 1025 bins).
        pairs = mx.view(x, mx.float32).reshape(*x.shape, 2)
        p = pairs[..., 0] * pairs[..., 0] + pairs[..., 1] * pairs[..., 1]
        return p if power == 2.0 else mx.power(p, power / 2.0)

    return fn


@lru_cache(maxsize=8)
def _power_mlx(power: float):
    return mx.compile(_complex_to_power_fn(power))


def _pad_mlx(y: mx.array, n_fft: int, center: bool, pad_mode: str) -> mx.array:
    if not center:
        return y
    pad = n_fft // 2
    if pad_mode == "constant":
        return mx.pad(y, [(0, 0), (pad, pad)])
    if y.shape[-1] <= pad:
        raise ValueError(f"reflect padding needs more than {pad} samples, got {y.shape[-1]}")
    return mx.concatenate([y[:, pad:0:-1], y, y[:, -2 : -pad - 2 : -1]], axis=1)


# Frames per block. Small blocks keep buffers in cache and reused: a 32 x 5 s batch took 2.7x longer as
# one 57 MB block of frames than clip by clip on the CPU backend; 256 frames measured best (64-1024 tried).
CHUNK_FRAMES = 256


def _chunks(n_clips: int, n_frames_: int, max_frames: int):
    """(first clip, clips, first frame, frames) blocks of at most about ``max_frames`` frames."""
    clips = max(1, max_frames // n_frames_)
    step = min(n_frames_, max_frames)
    for b0 in range(0, n_clips, clips):
        for t0 in range(0, n_frames_, step):
            yield b0, min(clips, n_clips - b0), t0, min(step, n_frames_ - t0)


def power_frames(
    y,
    n_fft: int = 2048,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: Window = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    power: float = 2.0,
    backend: str = "mlx",
    project: np.ndarray | BandedMatrix | None = None,
):
    """|STFT|**power, time-major: [..., frames, n_fft // 2 + 1], or its product with ``project``.

    ``project`` [n_fft // 2 + 1, K] (e.g. a transposed mel filterbank) is applied block by block, so the
    full power spectrogram never exists at once; the result is then [..., frames, K]. A `BandedMatrix`
    skips its zeros. The MLX path evaluates block by block for the same reason, except on an input being
    traced (inside ``mx.compile``, ``mx.grad`` or ``mx.vmap``: a model-side front end), where it builds
    one graph of the whole batch and evaluates nothing.
    """
    hop_length = check_stft_args(n_fft, hop_length, pad_mode, win_length)
    # A whole-number float or numpy integer (a config's 512.0, np.array([512, 1024]) of resolutions) as a
    # Python int: MLX's pad and as_strided refused them with a raw TypeError or "std::bad_cast".
    n_fft = int(n_fft)
    # `not power > 0` rather than `power <= 0`: NaN passed that and made every feature NaN, as did inf.
    if not power > 0 or power == float("inf"):
        raise ValueError(f"power must be positive and finite (2: power, 1: magnitude), got {power}")
    w = get_window(window, n_fft, win_length)
    y = as_float_signal(y, check_backend(backend))
    lead, n_samples = y.shape[:-1], y.shape[-1]
    y = y.reshape(-1, n_samples)
    count = n_frames(n_samples, n_fft, hop_length, center)
    if project is not None and not isinstance(project, BandedMatrix):
        project = BandedMatrix.from_dense(project)
    if backend == "numpy":
        out = _power_frames_numpy(y, n_fft, hop_length, w, center, pad_mode, power, count, project)
    elif being_traced(y):
        out = _power_frames_traced(y, n_fft, hop_length, w, center, pad_mode, power, count, project)
    else:
        out = _power_frames_mlx(y, n_fft, hop_length, w, center, pad_mode, power, count, project)
    return out.reshape(*lead, count, out.shape[-1])


def _power_frames_numpy(y, n_fft, hop_length, w, center, pad_mode, power, count, project):
    frames = frames_numpy(y, n_fft, hop_length, center, pad_mode)
    blocks = []
    for b0, nb, t0, nt in _chunks(len(y), count, CHUNK_FRAMES):
        spec = _windowed_rfft_numpy(frames[b0 : b0 + nb, t0 : t0 + nt], w)
        p = spec.real**2 + spec.imag**2
        p = p if power == 2.0 else p ** (power / 2.0)
        blocks.append((b0, p if project is None else project.product(p)))
    return _assemble(blocks, np.concatenate)


def _power_frames_mlx(y, n_fft, hop_length, w, center, pad_mode, power, count, project):
    padded = _pad_mlx(y, n_fft, center, pad_mode)
    mx.eval(padded)
    length = padded.shape[-1]
    w_mx = mx.array(w.astype(np.float32))
    to_power = _power_mlx(float(power))
    streams = parallel_streams()
    # On the CPU device the projection runs in numpy's BLAS, skipping the filterbank's zeros, while
    # MLX computes the next blocks' spectra (measured 25-35% faster for a mel spectrogram than the
    # dense product in MLX); on a GPU it stays in MLX.
    on_host = project is not None and _project_on_host()
    proj = None if project is None or on_host else mx.array(project.dense.astype(np.float32))
    host_out = np.empty((len(y), count, project.shape[1]), np.float32) if on_host else None
    blocks: list = []
    wave: list = []
    previous: list = []

    def finish(done: list) -> None:  # project evaluated blocks on the host
        for (b0, nb, t0, nt), p in done:
            host_out[b0 : b0 + nb, t0 : t0 + nt] = project.product(np.asarray(p))

    def launch(current: list) -> list:
        if not on_host:
            mx.eval(*(p for _, p in current))
            blocks.extend((chunk[0], p) for chunk, p in current)
            return []
        mx.async_eval(*(p for _, p in current))
        finish(previous)
        return current

    for i, (b0, nb, t0, nt) in enumerate(_chunks(len(y), count, CHUNK_FRAMES)):
        with mx.stream(streams[i % len(streams)]):
            view = mx.as_strided(
                padded,
                shape=(nb, nt, n_fft),
                strides=(length, hop_length, 1),
                offset=b0 * length + t0 * hop_length,
            )
            p = to_power(mx.fft.rfft(view * w_mx, axis=-1))
            # 2-D product: a [1, frames, bins] @ [bins, K] batched matmul ran 2x slower than 2-D.
            p = p if proj is None else (p.reshape(-1, p.shape[-1]) @ proj).reshape(nb, nt, -1)
        wave.append(((b0, nb, t0, nt), p))
        if len(wave) == len(streams):  # one block per stream at a time, evaluated side by side
            previous, wave = launch(wave), []
    if wave:
        previous = launch(wave)
    if on_host:
        finish(previous)
        return mx.array(host_out)
    return _assemble(blocks, mx.concatenate)


def _power_frames_traced(y, n_fft, hop_length, w, center, pad_mode, power, count, project):
    """`_power_frames_mlx` as one graph on the default stream, for a traced input: no block is
    evaluated (nothing may be, then), the projection is a dense MLX product, and gradients reach `y`."""
    padded = _pad_mlx(y, n_fft, center, pad_mode)
    length = padded.shape[-1]
    frames = mx.as_strided(padded, shape=(len(y), count, n_fft), strides=(length, hop_length, 1))
    spec = mx.fft.rfft(frames * mx.array(w.astype(np.float32)), axis=-1)
    # (Not `_complex_to_power_fn`'s float view of the complex result: MLX has no gradient through a view,
    # and a front end may sit behind a learned layer.)
    re, im = mx.real(spec), mx.imag(spec)
    p = re * re + im * im
    if power != 2.0:
        # Where the bin is 0 (silence, zero padding) the derivative of p ** (power / 2) is infinite and,
        # times the 0 derivative of p there, NaN: a magnitude front end's gradient was NaN for any clip
        # with a silent frame. The subgradient 0 there, as torch's abs gives; the inner where keeps the
        # untaken branch finite, or its NaN would still reach the gradient.
        positive = p > 0
        p = mx.where(positive, mx.power(mx.where(positive, p, 1.0), power / 2.0), 0.0)
    if project is None:
        return p
    return (p.reshape(-1, p.shape[-1]) @ mx.array(project.dense.astype(np.float32))).reshape(
        len(y), count, -1
    )


def _project_on_host() -> bool:
    return mx.default_device() == mx.cpu


def _assemble(blocks: list, cat):
    """[clips, frames, K] from (first clip, block) pairs: blocks of the same clips side by side in
    time, then the groups of clips stacked."""
    groups: dict[int, list] = {}
    for b0, p in blocks:
        groups.setdefault(b0, []).append(p)
    rows = [parts[0] if len(parts) == 1 else cat(parts, axis=1) for parts in groups.values()]
    return rows[0] if len(rows) == 1 else cat(rows, axis=0)


@overload
def stft(
    y,
    n_fft: int = 2048,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: Window = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    backend: Literal["mlx"] = "mlx",
) -> mx.array: ...
@overload
def stft(
    y,
    n_fft: int = 2048,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: Window = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    *,
    backend: Literal["numpy"],
) -> np.ndarray: ...
@overload
def stft(
    y,
    n_fft: int = 2048,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: Window = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    backend: str = "mlx",
) -> mx.array | np.ndarray: ...
def stft(
    y,
    n_fft: int = 2048,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: Window = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    backend: str = "mlx",
) -> mx.array | np.ndarray:
    """Complex STFT like ``librosa.stft``.

    With the default backend it also runs on the model side, inside ``mx.compile`` and ``mx.grad`` (the
    Trainer's compiled step): an input being traced is not checked for NaN and is computed as one graph.

    Parameters
    ----------
    y : array [..., samples]
        One signal or a batch (numpy or mlx).
    n_fft, hop_length, win_length : int
        FFT size, hop in samples (default ``win_length // 4``, as librosa), window length (default
        ``n_fft``).
    window : str or np.ndarray
        scipy window name or samples; periodic.
    center : bool
        Pad ``n_fft // 2`` samples on both sides so frame ``t`` is centred at ``t * hop_length``.
    pad_mode : {"constant", "reflect"}
        librosa >= 0.10 defaults to "constant"; torch/transformers reflect.
    backend : {"mlx", "numpy"}

    Returns
    -------
    complex64 array (complex128 for float64 input with backend='numpy'), shape [..., n_fft // 2 + 1, frames]
    """
    hop_length = check_stft_args(n_fft, hop_length, pad_mode, win_length)
    n_fft = int(n_fft)  # as in power_frames
    w = get_window(window, n_fft, win_length)
    y = as_float_signal(y, check_backend(backend))
    if backend == "numpy":
        frames = frames_numpy(y, n_fft, hop_length, center, pad_mode)
        return np.swapaxes(_windowed_rfft_numpy(frames, w), -1, -2)
    frames = frames_mlx(y, n_fft, hop_length, center, pad_mode)
    return mx.swapaxes(mx.fft.rfft(frames * mx.array(w.astype(np.float32)), axis=-1), -1, -2)


@overload
def spectrogram(
    y,
    n_fft: int = 2048,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: Window = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    power: float = 2.0,
    backend: Literal["mlx"] = "mlx",
) -> mx.array: ...
@overload
def spectrogram(
    y,
    n_fft: int = 2048,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: Window = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    power: float = 2.0,
    *,
    backend: Literal["numpy"],
) -> np.ndarray: ...
@overload
def spectrogram(
    y,
    n_fft: int = 2048,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: Window = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    power: float = 2.0,
    backend: str = "mlx",
) -> mx.array | np.ndarray: ...
def spectrogram(
    y,
    n_fft: int = 2048,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: Window = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    power: float = 2.0,
    backend: str = "mlx",
) -> mx.array | np.ndarray:
    """|STFT|**power, shape [..., n_fft // 2 + 1, frames] (``power=2``: power, ``1``: magnitude).

    Runs inside ``mx.compile`` and ``mx.grad`` as `melspectrogram` does."""
    p = power_frames(y, n_fft, hop_length, win_length, window, center, pad_mode, power, backend)
    return np.swapaxes(p, -1, -2) if backend == "numpy" else mx.swapaxes(p, -1, -2)
