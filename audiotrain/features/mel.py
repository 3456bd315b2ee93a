"""Mel scale, mel filterbank, mel spectrogram and decibels, matching librosa (and transformers' CLAP).

The filterbank is built in float64 with librosa's formulas and operation order, then cast, so
``mel_filterbank(...)`` equals ``librosa.filters.mel(...)`` bit for bit in float32.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Literal, overload

from audiotrain.features._backend import check_backend, check_sample_rate, is_mlx
from audiotrain.features._banded import BandedMatrix
from audiotrain.features._config import FeatureConfigMixin
from audiotrain.features.stft import (
    PAD_MODES,
    Window,
    check_stft_args,
    fft_frequencies,
    power_frames,
    window_setting,
)

import mlx.core as mx
import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "hz_to_mel",
    "mel_to_hz",
    "mel_frequencies",
    "mel_filterbank",
    "melspectrogram",
    "power_to_db",
    "MelConfig",
]

_F_SP = 200.0 / 3  # Slaney: linear below 1 kHz, 3 mels per 200 Hz
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0  # Slaney: log spacing above 1 kHz


def hz_to_mel(frequencies, htk: bool = False) -> np.ndarray:
    """Hz to mels (Slaney's Auditory Toolbox scale, or HTK's ``2595 log10(1 + f / 700)``)."""
    frequencies = np.asanyarray(frequencies, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + frequencies / 700.0)
    mels = frequencies / _F_SP
    return np.where(
        frequencies >= _MIN_LOG_HZ,
        _MIN_LOG_MEL + np.log(np.maximum(frequencies, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP,
        mels,
    )


def mel_to_hz(mels, htk: bool = False) -> np.ndarray:
    """Mels to Hz, the inverse of `hz_to_mel`."""
    mels = np.asanyarray(mels, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    return np.where(
        mels >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels - _MIN_LOG_MEL)), _F_SP * mels
    )


def mel_frequencies(
    n_mels: int = 128, fmin: float = 0.0, fmax: float = 11025.0, htk: bool = False
) -> np.ndarray:
    """``n_mels`` frequencies in Hz, evenly spaced on the mel scale from ``fmin`` to ``fmax``."""
    mels = np.linspace(hz_to_mel(fmin, htk=htk), hz_to_mel(fmax, htk=htk), n_mels)
    return mel_to_hz(mels, htk=htk)


@lru_cache(maxsize=32)
def _filterbank(sr, n_fft, n_mels, fmin, fmax, htk, norm, dtype_name) -> np.ndarray:
    fftfreqs = fft_frequencies(sr, n_fft)
    mel_f = mel_frequencies(n_mels + 2, fmin=fmin, fmax=fmax, htk=htk)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=dtype_name)
    for i in range(n_mels):
        # Each filter is a triangle: rising on the lower slope, falling on the upper one.
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    if not np.all((mel_f[:-2] == 0) | (weights.max(axis=1) > 0)):
        # Same warning as librosa: some bands fall between FFT bins and will always be zero.
        warnings.warn(
            f"Empty filters detected in mel frequency basis (sr={sr}, n_fft={n_fft}, n_mels={n_mels}, "
            f"fmin={fmin}, fmax={fmax}): some channels will always be zero. Increase n_fft or reduce n_mels.",
            UserWarning,
            stacklevel=4,
        )
    if norm == "slaney":
        # Constant energy per channel (the triangle's area is 1 in Hz).
        weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]
    weights.setflags(write=False)
    return weights


@lru_cache(maxsize=32)
def _projection(*key) -> BandedMatrix:
    """The transposed filterbank [bins, n_mels] as a `BandedMatrix`: each filter touches a few bins."""
    return BandedMatrix.from_dense(_filterbank(*key).T)


def mel_filterbank(
    sr: float,
    n_fft: int,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
    dtype=np.float32,
) -> np.ndarray:
    """Triangular mel filters, like ``librosa.filters.mel``.

    Parameters
    ----------
    sr : float
        Sampling rate in Hz.
    n_fft : int
        FFT size; the filters cover its ``n_fft // 2 + 1`` bins.
    n_mels : int
        Number of filters.
    fmin, fmax : float
        Lowest and highest frequency in Hz (``fmax`` defaults to ``sr / 2``).
    htk : bool
        HTK mel scale instead of Slaney's.
    norm : {"slaney", None}
        "slaney" divides each triangle by its width in Hz (area 1); None leaves peaks at 1.
    dtype : numpy dtype

    Returns
    -------
    np.ndarray, read-only, shape [n_mels, n_fft // 2 + 1]
    """
    sr = check_sample_rate(sr)
    fmax = sr / 2.0 if fmax is None else float(fmax)
    if norm not in ("slaney", None):
        raise ValueError(f"norm must be 'slaney' or None, got {norm!r}")
    if not 0 <= fmin < fmax:
        raise ValueError(f"need 0 <= fmin < fmax, got fmin={fmin}, fmax={fmax}")
    if n_mels < 1:
        raise ValueError(f"n_mels must be >= 1, got {n_mels}")
    return _filterbank(
        float(sr), int(n_fft), int(n_mels), float(fmin), fmax, bool(htk), norm, np.dtype(dtype).name
    )


@overload
def melspectrogram(
    y,
    sr: float = 22050,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Window = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    power: float = 2.0,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
    backend: Literal["mlx"] = "mlx",
) -> mx.array: ...
@overload
def melspectrogram(
    y,
    sr: float = 22050,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Window = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    power: float = 2.0,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
    *,
    backend: Literal["numpy"],
) -> np.ndarray: ...
@overload
def melspectrogram(
    y,
    sr: float = 22050,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Window = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    power: float = 2.0,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
    backend: str = "mlx",
) -> mx.array | np.ndarray: ...
def melspectrogram(
    y,
    sr: float = 22050,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Window = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    power: float = 2.0,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
    backend: str = "mlx",
) -> mx.array | np.ndarray:
    """Mel spectrogram like ``librosa.feature.melspectrogram`` (same defaults).

    With the default backend it also runs on the model side, inside ``mx.compile`` and ``mx.grad`` (the
    Trainer's compiled step): an input being traced is not checked for NaN and is computed as one graph.

    Parameters
    ----------
    y : array [..., samples]
        A clip or a batch of clips of equal length (numpy or mlx).
    sr : float
        Sampling rate in Hz.
    n_fft, hop_length, win_length, window, center, pad_mode :
        STFT settings, see `audiotrain.features.stft.stft`.
    power : float
        2 for power, 1 for magnitude.
    n_mels, fmin, fmax, htk, norm :
        Filterbank settings, see `mel_filterbank`.
    backend : {"mlx", "numpy"}

    Returns
    -------
    array, float32 (float64 for float64 input with backend='numpy'), shape [..., n_mels, frames]
    """
    check_backend(backend)
    # first: the filterbank would divide by n_fft = 0
    check_stft_args(n_fft, hop_length, pad_mode, win_length)
    fmax_hz = check_sample_rate(sr) / 2.0 if fmax is None else float(fmax)
    mel_filterbank(sr, n_fft, n_mels, fmin, fmax_hz, htk, norm)  # validates the arguments
    exact = backend == "numpy" and getattr(y, "dtype", None) == np.float64  # float64 reference
    key = (
        float(sr),
        int(n_fft),
        int(n_mels),
        float(fmin),
        fmax_hz,
        bool(htk),
        norm,
        "float64" if exact else "float32",
    )
    S = power_frames(
        y, n_fft, hop_length, win_length, window, center, pad_mode, power, backend, project=_projection(*key)
    )
    return np.swapaxes(S, -1, -2) if backend == "numpy" else mx.swapaxes(S, -1, -2)


# (An mx.array is ArrayLike too, by its __array__: the first overload that takes it, this one, decides.)
@overload
def power_to_db(  # pyright: ignore[reportOverlappingOverload]
    S: mx.array, ref: float = 1.0, amin: float = 1e-10, top_db: float | None = 80.0, axis=None
) -> mx.array: ...
@overload
def power_to_db(
    S: ArrayLike, ref: float = 1.0, amin: float = 1e-10, top_db: float | None = 80.0, axis=None
) -> np.ndarray: ...
def power_to_db(
    S, ref: float = 1.0, amin: float = 1e-10, top_db: float | None = 80.0, axis=None
) -> mx.array | np.ndarray:
    """Power to decibels, ``10 log10(max(amin, S) / ref)``, like ``librosa.power_to_db``.

    Parameters
    ----------
    S : array (numpy or mlx)
        Power values, >= 0.
    ref : float or callable
        Reference power (0 dB); a callable such as ``np.max`` or ``mx.max`` is applied to ``S`` (with
        ``axis`` and ``keepdims=True`` when ``axis`` is given). On an mx.array, numpy's max, min and mean
        run as MLX's; another numpy function (``np.median``) is applied to a numpy copy of ``S``.
    amin : float
        Floor on ``S`` and ``ref`` before the log.
    top_db : float, optional
        Clip to at most ``top_db`` below the peak.
    axis : int, tuple or None
        Axes the peak (for ``top_db`` and callable ``ref``) is taken over. None: the whole array, as
        librosa before 1.0 does; ``(-2, -1)``: each example of a batch on its own, as librosa 1.0's
        default ``axes="auto"`` does for arrays of two or more dimensions.

    Returns
    -------
    array of the same type and shape as ``S``
    """
    if amin <= 0:
        raise ValueError(f"amin must be strictly positive, got {amin}")
    if top_db is not None and top_db < 0:
        raise ValueError(f"top_db must be non-negative, got {top_db}")
    xp = mx if is_mlx(S) else np
    if xp is np:
        S = np.asarray(S)
    # An STFT (complex) passed as it comes would give complex numbers that look like dB values.
    if np.iscomplexobj(S) if xp is np else mx.issubdtype(S.dtype, mx.complexfloating):
        name = "np" if xp is np else "mx"
        raise TypeError(
            f"power_to_db expects power (real) values, got a complex array (an STFT?); take "
            f"{name}.abs(S) ** 2 first"
        )
    if callable(ref):
        ref_value = _reference_power(ref, S, axis)
    else:
        ref_value = abs(ref)
    log_spec = 10.0 * xp.log10(xp.maximum(S, amin))
    ref_db = 10.0 * xp.log10(xp.maximum(ref_value, amin))
    if xp is np:
        # A number `ref` gives a float64 scalar, which NumPy 2 lets promote float32 dB to float64; librosa
        # subtracts in place, so its dB keep the spectrogram's dtype.
        ref_db = np.asarray(ref_db, dtype=log_spec.dtype)
    log_spec = log_spec - ref_db
    if top_db is not None:
        peak = xp.max(log_spec) if axis is None else xp.max(log_spec, axis=axis, keepdims=True)
        log_spec = xp.maximum(log_spec, peak - top_db)
    return log_spec


# numpy's reductions and their MLX counterparts: `power_to_db(S, ref=np.max)`, librosa's idiom, on an mx.array
# (`melspectrogram`'s default output) runs in MLX, where it stays traceable.
_MLX_REDUCTIONS = {np.max: mx.max, np.amax: mx.max, np.min: mx.min, np.amin: mx.min, np.mean: mx.mean}


def _reference_power(ref, S, axis):
    """`power_to_db`'s callable `ref` applied to `S`, over `axis` with ``keepdims=True`` when given."""
    kwargs = {} if axis is None else {"axis": axis, "keepdims": True}
    if not is_mlx(S):
        return ref(S, **kwargs)
    if ref in _MLX_REDUCTIONS:
        return _MLX_REDUCTIONS[ref](S, **kwargs)
    try:
        return ref(S, **kwargs)
    except TypeError:  # another numpy function (np.median, np.percentile via partial): on a numpy view
        return mx.array(ref(np.asarray(S), **kwargs))


#: The windows a `MelConfig` takes: those its key and a checkpoint's JSON can record (a name, a
#: (name, parameter) tuple, a Kaiser beta); a window function or the samples go to `melspectrogram` itself.
RecordedWindow = str | tuple | float


def _recorded_window(window: Window) -> RecordedWindow:
    """`window` as a MelConfig holds it: a list (JSON's form of a tuple: a config file, a checkpoint) as the
    tuple (`window_setting`), so the config read back equals and hashes as the one written; a Kaiser beta
    as a float, so 8 and 8.0 share a key as they compare equal."""
    window = window_setting(window)
    if isinstance(window, list):  # (one whose first item names no window: the samples, refused below)
        window = np.asarray(window)
    if isinstance(window, (str, tuple)):
        return window
    if isinstance(window, numbers.Real) and not isinstance(window, bool):
        return float(window)
    raise ValueError(
        "MelConfig.window must be a window name ('hann'), a (name, parameter) tuple such as "
        "('kaiser', 8.0), or a Kaiser beta, which its key (the feature cache's name) and a checkpoint "
        f"record; got {type(window).__name__}: pass a window function or the samples to "
        "melspectrogram(window=...) itself"
    )


@dataclass(frozen=True)
class MelConfig(FeatureConfigMixin):
    """Settings of a (log-)mel spectrogram; its `key` names a feature cache and goes into checkpoints.

    ``log=True`` applies `power_to_db` per example with ``ref=1``, ``amin`` and ``top_db``.
    """

    sr: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    win_length: int | None = None
    window: RecordedWindow = "hann"
    center: bool = True
    pad_mode: str = "constant"
    power: float = 2.0
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = None
    htk: bool = False
    norm: str | None = "slaney"
    log: bool = False
    amin: float = 1e-10
    top_db: float | None = 80.0

    def __post_init__(self):
        object.__setattr__(self, "window", _recorded_window(self.window))
        if self.pad_mode not in PAD_MODES:
            raise ValueError(f"MelConfig.pad_mode must be one of {PAD_MODES}, got {self.pad_mode!r}")
        if self.hop_length < 1 or self.n_fft < 2:
            raise ValueError(
                f"MelConfig needs n_fft >= 2 and hop_length >= 1, got {self.n_fft}, {self.hop_length}"
            )
        mel_filterbank(self.sr, self.n_fft, self.n_mels, self.fmin, self.fmax, self.htk, self.norm)

    @property
    def frame_rate(self) -> float:
        """Frames per second (Hz)."""
        return self.sr / self.hop_length

    def n_frames(self, n_samples: int) -> int:
        """Frames produced for a signal of ``n_samples``."""
        from audiotrain.features.stft import n_frames

        return n_frames(n_samples, self.n_fft, self.hop_length, self.center)

    def to_dict(self) -> dict:
        return {"kind": "mel", **asdict(self)}

    def compute(self, y, backend: str = "mlx"):
        """Features of ``y`` [..., samples] at ``self.sr``: [..., n_mels, frames]."""
        settings = {k: v for k, v in asdict(self).items() if k not in ("log", "amin", "top_db")}
        S = melspectrogram(y, backend=backend, **settings)
        if self.log:
            S = power_to_db(S, ref=1.0, amin=self.amin, top_db=self.top_db, axis=(-2, -1))
        return S
