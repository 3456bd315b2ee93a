"""Constant-Q transform (multi-resolution, like ``librosa.cqt``), harmonic CQT, and `CQTConfig`.

The algorithm is librosa's recursive sub-sampling (Schörkhuber & Klapuri 2010): the top octave is
filtered at the full rate; then the signal is halved in rate (soxr, exactly as librosa) and the same
short kernel serves the next octave down, and so on. librosa applies each octave's kernel as an STFT
followed by a sparse frequency-domain basis; that product is a fixed linear map on each frame, so we
fold it back into time-domain filters once (in float64) and apply it as one real matmul
``frames [.., T, n_fft] @ H [n_fft, 2 * bins]`` per octave — the same numbers, no FFT per frame.

Frame ``t`` is centred at sample ``t * hop_length``; there are ``1 + len(y) // hop_length`` frames.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import lru_cache, partial
from typing import Any, Literal, overload

from audiotrain.audio import resample_checked_audio
from audiotrain.features._backend import as_float_signal, check_backend, check_sample_rate, to_numpy
from audiotrain.features._config import FeatureConfigMixin
from audiotrain.features.stft import CHUNK_FRAMES, frames_mlx, frames_numpy, hann_window, n_frames

import mlx.core as mx
import numpy as np

__all__ = ["CQTConfig", "cqt", "hcqt", "cqt_frequencies", "C1_HZ"]

C1_HZ = 32.70319566257483  # librosa.note_to_hz("C1"), librosa's default fmin
_HANN_BANDWIDTH = 1.50018310546875  # librosa.filters.window_bandwidth("hann")


def cqt_frequencies(n_bins: int, fmin: float, bins_per_octave: int = 12, tuning: float = 0.0) -> np.ndarray:
    """Centre frequencies in Hz: ``fmin * 2 ** ((k + tuning) / bins_per_octave)``."""
    return fmin * 2.0 ** ((np.arange(n_bins) + tuning) / bins_per_octave)


def _relative_bandwidth(freqs: np.ndarray) -> np.ndarray:
    # librosa.filters._relative_bandwidth: local octave resolution, reflected at both ends.
    logf = np.log2(freqs)
    bpo = np.empty_like(freqs)
    bpo[0] = 1 / (logf[1] - logf[0])
    bpo[-1] = 1 / (logf[-1] - logf[-2])
    bpo[1:-1] = 2 / (logf[2:] - logf[:-2])
    return (2.0 ** (2 / bpo) - 1) / (2.0 ** (2 / bpo) + 1)


def _sparsify_rows(x: np.ndarray, quantile: float) -> np.ndarray:
    # librosa.util.sparsify_rows, kept dense: zero the smallest coefficients holding `quantile` of the mass.
    mags = np.abs(x)
    mag_sort = np.sort(mags, axis=1)
    cumulative = np.cumsum(mag_sort / mags.sum(axis=1, keepdims=True), axis=1)
    threshold = mag_sort[np.arange(len(x)), np.argmin(cumulative < quantile, axis=1)]
    return np.where(mags >= threshold[:, None], x, 0)


@dataclass(frozen=True)
class _Plan:
    early_factor: int  # the signal is decimated by this before the first octave
    hops: tuple[int, ...]  # hop of each octave at its own rate, top octave first
    n_fft: int  # frame length shared by all octaves (shorter kernels are zero-padded, centred)
    # Rows [row_start, row_start + kernel rows) of each n_fft frame are the only ones any kernel
    # touches: the frames are cut to them (the longest filter is ~70% of n_fft, so ~30% less work).
    row_start: int
    # [octaves, rows, 2 * bins_per_octave] float32, top octave first; per octave the real parts of its
    # bins (ascending), then the imaginary parts; a partial bottom octave has zero columns at the low end.
    kernels: np.ndarray
    inv_sqrt_lengths: np.ndarray  # [n_bins, 1] length normalisation (librosa's scale=True)


def _octave_kernel(sr, freqs, alpha, filter_scale, norm, sparsity, gain) -> np.ndarray:
    """Time-domain kernel equal to librosa's STFT (box window) followed by its sparse fft basis."""
    q = filter_scale / alpha
    lengths = q * sr / freqs
    n_fft = int(2.0 ** np.ceil(np.log2(lengths.max())))
    basis = np.zeros((len(freqs), n_fft), dtype=np.complex128)
    for i, (ilen, freq) in enumerate(zip(lengths, freqs)):
        sig = np.exp(1j * np.arange(-ilen // 2, ilen // 2, dtype=float) * 2 * np.pi * freq / sr)
        n_min = int(np.floor(len(sig)))
        window = np.zeros(len(sig))
        window[:n_min] = hann_window(n_min)
        sig = sig * window
        if norm is not None:
            sig = sig / np.linalg.norm(sig, ord=norm)
        left = (n_fft - len(sig)) // 2
        basis[i, left : left + len(sig)] = sig
    basis *= (lengths / n_fft)[:, None]
    fft_basis = np.fft.fft(basis, n=n_fft, axis=1)[:, : n_fft // 2 + 1]
    if sparsity > 0:
        fft_basis = _sparsify_rows(fft_basis, sparsity)
    fft_basis *= gain
    # out[f, t] = sum_k B[f, k] * sum_n frame_t[n] e^{-2 pi i k n / n_fft} = sum_n frame_t[n] h_f[n], where
    # h_f[n] = sum_k B[f, k] e^{-2 pi i k n / n_fft} is the DFT of B's row zero-padded to n_fft (an FFT: the
    # explicit DFT matrix made a plan cost ~0.1 s, paid again for every recording's tuning).
    h = np.fft.fft(fft_basis, n=n_fft, axis=1)  # [bins, n_fft]
    return np.concatenate([h.real.T, h.imag.T], axis=1)  # [n_fft, 2 * bins]


def _num_two_factors(x: int) -> int:
    count = 0
    while x > 0 and x % 2 == 0:
        count += 1
        x //= 2
    return count


def _bandwidths(freqs: np.ndarray, bins_per_octave: int) -> np.ndarray:
    """Each bin's relative bandwidth (alpha), librosa's."""
    if len(freqs) > 1:
        return _relative_bandwidth(freqs)
    return np.atleast_1d(((2 ** (1 / bins_per_octave)) ** 2 - 1) / ((2 ** (1 / bins_per_octave)) ** 2 + 1))


def _filters_reach(fmin, n_bins, bins_per_octave, filter_scale, tuning) -> tuple[float, float]:
    """(the highest frequency the CQT filters reach, the top bin's centre), in Hz."""
    freqs = cqt_frequencies(n_bins, fmin, bins_per_octave, tuning)
    q = filter_scale / _bandwidths(freqs, bins_per_octave)
    return float(np.max(freqs * (1 + 0.5 * _HANN_BANDWIDTH / q))), float(freqs[-1])


def check_settings(
    where: str, sr, hop_length, fmin, n_bins, bins_per_octave, filter_scale, sparsity=0.01
) -> None:
    """ValueError naming the first CQT setting out of range (prefixed with `where`, e.g. "CQTConfig."),
    before anything computes with them (a division by bins_per_octave, a maximum over no bins)."""
    check_sample_rate(sr)
    checks = [
        ("hop_length", hop_length, _positive(hop_length, whole=True), "a positive integer"),
        ("fmin", fmin, _positive(fmin), "a positive frequency in Hz"),
        ("n_bins", n_bins, _positive(n_bins, whole=True), "a positive integer"),
        ("bins_per_octave", bins_per_octave, _positive(bins_per_octave, whole=True), "a positive integer"),
        ("filter_scale", filter_scale, _positive(filter_scale), "a positive number"),
        # (librosa refuses it too: "Invalid quantile")
        ("sparsity", sparsity, _number(sparsity) and 0 <= sparsity < 1, "in [0, 1)"),
    ]
    for name, value, ok, expected in checks:
        if not ok:
            raise ValueError(f"{where}{name} must be {expected}, got {value!r}")


def check_tuning(tuning, where: str = "") -> float:
    """`tuning` as a float, or ValueError naming it: a NaN reached the kernels' design as "cannot convert
    float NaN to integer", and None (librosa's "estimate it") a bare TypeError of float() or of a division."""
    if _number(tuning):
        return float(tuning)
    advice = (
        ": librosa's tuning=None (estimate it) is not done here; pass 0.0 (librosa.cqt's default) or an "
        "estimate (audiotrain.features.tuning.estimate_tuning gives one from a CQT)"
        if tuning is None
        else ""
    )
    raise ValueError(f"{where}tuning must be a finite number of bins, got {tuning!r}{advice}")


def _number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value, whole: bool = False) -> bool:
    return _number(value) and value > 0 and (not whole or float(value).is_integer())


def _hz(frequency: float) -> str:
    """`frequency` for a message, in Hz: to 0.1 Hz below a MHz, else as 5.8e35 (n_bins 4096 reach that far,
    which ``.1f`` wrote as 36 digits)."""
    return f"{frequency:.1f}" if abs(frequency) < 1e6 else f"{frequency:.1e}".replace("e+", "e")


def _check_filters_fit(sr, fmin, n_bins, bins_per_octave, filter_scale, tuning) -> float:
    """Raise unless the filters stay below Nyquist at `sr`; return the highest frequency they reach."""
    check_sample_rate(sr)  # before the Nyquist check, which would blame the bins for a negative sr
    cutoff, top = _filters_reach(fmin, n_bins, bins_per_octave, filter_scale, tuning)
    nyquist = sr / 2.0
    if cutoff > nyquist:
        raise ValueError(
            f"CQT filters reach {_hz(cutoff)} Hz (top bin {_hz(top)} Hz), above the Nyquist frequency "
            f"{nyquist:.1f} Hz of sr={sr}: use fewer bins, a lower fmin or a higher sr"
        )
    return cutoff


@lru_cache(maxsize=64)
def _plan(sr, hop_length, fmin, n_bins, bins_per_octave, filter_scale, norm, sparsity, tuning) -> _Plan:
    cutoff = _check_filters_fit(sr, fmin, n_bins, bins_per_octave, filter_scale, tuning)
    freqs = cqt_frequencies(n_bins, fmin, bins_per_octave, tuning)
    alpha = _bandwidths(freqs, bins_per_octave)
    q = filter_scale / alpha
    nyquist = sr / 2.0
    n_octaves = int(np.ceil(n_bins / bins_per_octave))
    n_filters = min(bins_per_octave, n_bins)
    # librosa's early downsampling: decimate first when even the top octave sits far below Nyquist.
    count1 = max(0, int(np.ceil(np.log2(nyquist / cutoff)) - 1) - 1)
    count2 = max(0, _num_two_factors(hop_length) - n_octaves + 1)
    early = 2 ** min(count1, count2)
    sr_e, hop = sr / early, hop_length // early
    kernels, hops = [], []
    my_sr = sr_e
    for i in range(n_octaves):
        sl = slice(-n_filters, None) if i == 0 else slice(-n_filters * (i + 1), -n_filters * i)
        # librosa's per-octave gain, times the sqrt(2) per halving that its resample(scale=True)
        # applies to the signal (sqrt(sr / my_sr) in all, early downsampling included): folded
        # into the kernel once instead of a multiply pass over every decimated signal.
        gain = np.sqrt(sr_e / my_sr) * np.sqrt(sr / my_sr)
        kernels.append(_octave_kernel(my_sr, freqs[sl], alpha[sl], filter_scale, norm, sparsity, gain))
        hops.append(hop)
        if hop % 2 == 0:
            hop //= 2
            my_sr /= 2.0
    n_fft = max(k.shape[0] for k in kernels)
    stacked = np.zeros((n_octaves, n_fft, 2 * n_filters), dtype=np.float32)
    for i, kernel in enumerate(kernels):
        rows, bins = kernel.shape[0], kernel.shape[1] // 2
        top = (n_fft - rows) // 2  # a shorter kernel sits in the middle of the longer, equally centred frame
        stacked[i, top : top + rows, n_filters - bins : n_filters] = kernel[:, :bins]
        stacked[i, top : top + rows, 2 * n_filters - bins :] = kernel[:, bins:]
    used = np.flatnonzero(np.any(stacked != 0, axis=(0, 2)))
    first, last = int(used[0]), int(used[-1]) + 1
    lengths = q * sr_e / freqs
    return _Plan(
        early,
        tuple(hops),
        n_fft,
        first,
        np.ascontiguousarray(stacked[:, first:last]),
        (1.0 / np.sqrt(lengths)).astype(np.float32)[:, None],
    )


#: How far a decimation by f (soxr_hq, `_halve`) reaches: each output sample depends on the input samples within
#: this many times f of its time, on either side. Measured from impulse responses (pinned in
#: tests/test_features_cqt.py): about 850 f for f = 2 and 4, 436 f for 8, 915 f for 32.
_DECIMATION_REACH_PER_FACTOR = 1024


def _context_samples(plan: _Plan, hop_length: int) -> int:
    """Input samples on either side of a frame's centre that its values depend on: the reach of every
    decimation on the way to the lowest octave, then half a frame there (its filters are the longest)."""
    decimations = [hop_length // hop for hop in plan.hops]  # input samples per sample of each octave
    reach = _DECIMATION_REACH_PER_FACTOR * plan.early_factor if plan.early_factor > 1 else 0
    for before, after in zip(decimations, decimations[1:]):
        if after > before:  # halved: 1024 * 2 samples at the rate before are 1024 * after input samples
            reach += _DECIMATION_REACH_PER_FACTOR * after
    return reach + plan.n_fft // 2 * decimations[-1]


def _in_blocks(compute: Callable, y, hop_length: int, context_samples: int, block_frames: int):
    """`compute(y)` ([..., frames], frame t centred at sample t * hop_length), `block_frames` frames at a time.

    Each block is computed from its own samples and at least `context_samples` more on either side, in
    whole hops: its frames then sit on the signal's frame grid, and its decimated signals on theirs (every
    decimation factor divides the hop). A block keeps the frames whose context it holds; the first and
    last blocks also those next to the signal's own ends, which they see as the whole signal does. A
    signal within one block and its context is computed whole, exactly as without blocks.
    """
    if int(block_frames) != block_frames or block_frames < 1:
        raise ValueError(f"block_frames must be a positive integer, got {block_frames!r}")
    margin = -(-context_samples // hop_length)  # frames of context on each side
    n_samples = y.shape[-1]
    pieces, first = [], 0
    while True:
        start = max(0, first - margin)
        stop = min(n_samples, (first + block_frames + margin) * hop_length)
        frames = compute(y[..., start * hop_length : stop])
        if stop == n_samples:
            pieces.append(frames[..., first - start :])
            break
        pieces.append(frames[..., first - start : first + block_frames - start])
        first += block_frames
    if len(pieces) == 1:
        return pieces[0]
    return (mx if isinstance(pieces[0], mx.array) else np).concatenate(pieces, axis=-1)


def _halve(y: np.ndarray, factor: int = 2) -> np.ndarray:
    # librosa.resample(..., res_type="soxr_hq", scale=True) without the scale: its sqrt(factor)
    # is folded into the next octaves' kernels (_plan).
    # (checked audio: the CQT's input was; a long batch halved to a few samples is not channels-last audio)
    return resample_checked_audio(y, factor, 1, "soxr_hq")


@overload
def cqt(
    y,
    sr: float = 22050,
    hop_length: int = 512,
    fmin: float | None = None,
    n_bins: int = 84,
    bins_per_octave: int = 12,
    filter_scale: float = 1.0,
    norm: float | None = 1,
    sparsity: float = 0.01,
    tuning: float = 0.0,
    backend: Literal["mlx"] = "mlx",
) -> mx.array: ...
@overload
def cqt(
    y,
    sr: float = 22050,
    hop_length: int = 512,
    fmin: float | None = None,
    n_bins: int = 84,
    bins_per_octave: int = 12,
    filter_scale: float = 1.0,
    norm: float | None = 1,
    sparsity: float = 0.01,
    tuning: float = 0.0,
    *,
    backend: Literal["numpy"],
) -> np.ndarray: ...
@overload
def cqt(
    y,
    sr: float = 22050,
    hop_length: int = 512,
    fmin: float | None = None,
    n_bins: int = 84,
    bins_per_octave: int = 12,
    filter_scale: float = 1.0,
    norm: float | None = 1,
    sparsity: float = 0.01,
    tuning: float = 0.0,
    backend: str = "mlx",
) -> mx.array | np.ndarray: ...
def cqt(
    y,
    sr: float = 22050,
    hop_length: int = 512,
    fmin: float | None = None,
    n_bins: int = 84,
    bins_per_octave: int = 12,
    filter_scale: float = 1.0,
    norm: float | None = 1,
    sparsity: float = 0.01,
    tuning: float = 0.0,
    backend: str = "mlx",
) -> mx.array | np.ndarray:
    """CQT magnitude, like ``np.abs(librosa.cqt(...))`` (Hann window, ``scale=True``, zero padding).

    Not traceable: its decimation between octaves runs soxr on the host, so inside ``mx.compile`` (the
    Trainer's compiled step) it raises a ValueError saying so. Compute it in the data loader
    (``backend="numpy"``), or train with ``Trainer(compile=False)`` (under ``mx.grad`` alone it runs, as a
    constant of the graph).

    Parameters
    ----------
    y : array [samples] or [batch, samples]
        Audio (numpy or mlx); any leading axes are kept.
    sr : float
        Sampling rate in Hz.
    hop_length : int
        Hop in samples; must be divisible by ``2 ** (n_octaves - 1)`` for all octaves to be decimated.
    fmin : float
        Frequency of the lowest bin in Hz (default C1, 32.70 Hz).
    n_bins, bins_per_octave : int
        Number of bins and bins per octave.
    filter_scale : float
        Filter length factor (smaller: shorter filters, better time resolution).
    norm : float or None
        Norm (1: L1) each filter is normalised with, as librosa.
    sparsity : float
        Fraction of each filter's frequency-domain mass librosa discards (0.01), kept for exactness.
    tuning : float
        Tuning offset in fractions of a bin (librosa.cqt's default is 0.0 as well).
    backend : {"mlx", "numpy"}
        What the result is and where the per-octave products run: "mlx" returns an mx.array and runs
        them in MLX on a GPU, framing the decimated signals there (on the CPU device numpy's BLAS runs
        them, which measured faster there); the decimation between octaves uses soxr on the host in both.

    Returns
    -------
    array float32, shape [..., n_bins, frames], frames = 1 + samples // hop_length
    """
    check_backend(backend)
    fmin = C1_HZ if fmin is None else fmin
    check_settings("", sr, hop_length, fmin, n_bins, bins_per_octave, filter_scale, sparsity)
    tuning = check_tuning(tuning)
    plan = _plan(
        float(sr),
        int(hop_length),
        fmin,
        int(n_bins),
        int(bins_per_octave),
        float(filter_scale),
        norm,
        float(sparsity),
        float(tuning),
    )
    signal = to_numpy(as_float_signal(y, "numpy", caller="cqt"), np.float32)  # (soxr decimates on the host)
    lead, n_samples = signal.shape[:-1], signal.shape[-1]
    signal = signal.reshape(-1, n_samples)
    n_octaves = len(plan.hops)
    fewest = plan.early_factor * 2 ** (n_octaves - 1)
    if n_samples < fewest:
        raise ValueError(
            f"signal of {n_samples} samples is too short for a {n_octaves}-octave CQT: it takes {fewest} or "
            "more (each octave halves the signal and the last must keep a sample: CQTConfig.min_samples)"
        )
    # Decimation (soxr, exactly librosa's) runs on the host: one signal per octave, each at half the rate
    # of the one before. Frame t of an octave is centred at t * hop and cut to the rows the kernels use.
    if plan.early_factor > 1:
        signal = _halve(signal, plan.early_factor)
    octave_signals = []
    for i, hop in enumerate(plan.hops):
        octave_signals.append(signal)
        if i + 1 < n_octaves and hop % 2 == 0:
            signal = _halve(signal)
    count = min(n_frames(x.shape[-1], plan.n_fft, hop) for x, hop in zip(octave_signals, plan.hops))
    # The octave products run in MLX on a GPU, framed there from the decimated signals (a fraction of the
    # frames' size crosses to the device). On the CPU device numpy's BLAS does the same products on views
    # of the same memory without copying frames into MLX arrays: measured 25-35% faster for the whole CQT
    # (benchmarks/features.py); the result is still returned as an mx.array.
    if backend == "mlx" and _products_on_device():
        C = _cqt_on_device(octave_signals, plan, count, n_bins)
    else:
        C = _cqt_on_host(octave_signals, plan, count, n_bins)
    C = C.reshape(*lead, n_bins, count)
    return mx.array(C) if backend == "mlx" and not isinstance(C, mx.array) else C


def _products_on_device() -> bool:
    """Whether the "mlx" backend runs the octave products in MLX (on a GPU) rather than in numpy."""
    return mx.default_device() != mx.cpu


def _cqt_on_host(octave_signals: list, plan: _Plan, count: int, n_bins: int) -> np.ndarray:
    n_octaves, n_rows = len(plan.hops), plan.kernels.shape[1]
    views = [
        frames_numpy(x, plan.n_fft, hop, True, "constant")[..., plan.row_start : plan.row_start + n_rows]
        for x, hop in zip(octave_signals, plan.hops)
    ]
    blocks = []
    # A few clips at a time keep the stacked frames (octaves x frames x rows floats) in cache.
    clips_per_block = max(1, CHUNK_FRAMES // count)
    for b0 in range(0, len(views[0]), clips_per_block):
        nb = min(clips_per_block, len(views[0]) - b0)
        frames = np.empty((n_octaves, nb, count, n_rows), np.float32)
        for i, view in enumerate(views):
            frames[i] = view[b0 : b0 + nb, :count]
        frames = frames.reshape(n_octaves, -1, n_rows)  # [octaves, clips * frames, rows]
        blocks.append(_octave_products(frames, plan.kernels, count, n_bins))
    C = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=0)
    return C * plan.inv_sqrt_lengths


# Frames per block on a GPU: large blocks amortise the launches; 2**16 frames of 7 octaves x 256 rows is
# about 470 MB of float32 frames at the default settings.
DEVICE_CHUNK_FRAMES = 2**16


def _cqt_on_device(octave_signals: list, plan: _Plan, count: int, n_bins: int) -> mx.array:
    n_octaves, n_rows = len(plan.hops), plan.kernels.shape[1]
    kernels = mx.array(plan.kernels)
    signals = [mx.array(x) for x in octave_signals]
    blocks = []
    clips_per_block = max(1, DEVICE_CHUNK_FRAMES // count)
    for b0 in range(0, signals[0].shape[0], clips_per_block):
        frames = mx.stack(
            [
                frames_mlx(x[b0 : b0 + clips_per_block], plan.n_fft, hop, True, "constant")[
                    :, :count, plan.row_start : plan.row_start + n_rows
                ]
                for x, hop in zip(signals, plan.hops)
            ]
        )
        block = _octave_products(frames.reshape(n_octaves, -1, n_rows), kernels, count, n_bins)
        mx.eval(block)  # bounds the memory held at once to one block's frames
        blocks.append(block)
    C = blocks[0] if len(blocks) == 1 else mx.concatenate(blocks, axis=0)
    return C * mx.array(plan.inv_sqrt_lengths)


def _octave_products(frames, kernels, n_frames: int, n_bins: int):
    """[octaves, clips * frames, rows] frames -> magnitudes [clips, n_bins, frames] (numpy or mlx)."""
    xp = mx if isinstance(frames, mx.array) else np
    n_octaves, half = kernels.shape[0], kernels.shape[-1] // 2
    out = xp.matmul(frames, kernels)  # one batched product for all octaves
    magnitude = xp.sqrt(out[..., :half] * out[..., :half] + out[..., half:] * out[..., half:])
    # [octaves (top first), clips, frames, bins] -> [clips, octaves (bottom first), bins, frames]
    magnitude = magnitude.reshape(n_octaves, -1, n_frames, half)[::-1]
    return xp.transpose(magnitude, (1, 0, 3, 2)).reshape(-1, n_octaves * half, n_frames)[:, -n_bins:]


@overload
def hcqt(
    y,
    sr: float = 22050,
    harmonics: tuple[float, ...] = (0.5, 1, 2, 3, 4, 5),
    hop_length: int = 512,
    fmin: float | None = None,
    n_bins: int = 72,
    bins_per_octave: int = 12,
    filter_scale: float = 1.0,
    backend: Literal["mlx"] = "mlx",
    **kwargs: Any,
) -> mx.array: ...
@overload
def hcqt(
    y,
    sr: float = 22050,
    harmonics: tuple[float, ...] = (0.5, 1, 2, 3, 4, 5),
    hop_length: int = 512,
    fmin: float | None = None,
    n_bins: int = 72,
    bins_per_octave: int = 12,
    filter_scale: float = 1.0,
    *,
    backend: Literal["numpy"],
    **kwargs: Any,
) -> np.ndarray: ...
@overload
def hcqt(
    y,
    sr: float = 22050,
    harmonics: tuple[float, ...] = (0.5, 1, 2, 3, 4, 5),
    hop_length: int = 512,
    fmin: float | None = None,
    n_bins: int = 72,
    bins_per_octave: int = 12,
    filter_scale: float = 1.0,
    backend: str = "mlx",
    **kwargs: Any,
) -> mx.array | np.ndarray: ...
def hcqt(
    y,
    sr: float = 22050,
    harmonics: tuple[float, ...] = (0.5, 1, 2, 3, 4, 5),
    hop_length: int = 512,
    fmin: float | None = None,
    n_bins: int = 72,
    bins_per_octave: int = 12,
    filter_scale: float = 1.0,
    backend: str = "mlx",
    **kwargs: Any,
) -> mx.array | np.ndarray:
    """Harmonic CQT: one CQT per harmonic ``h`` with ``fmin * h``, stacked as channels.

    The defaults are the HCQT of Bittner et al. (2017): six octaves from C1 (``n_bins=72``, where `cqt`
    has 84: seven octaves from C1 * 5 would pass the Nyquist frequency of 22050 Hz) for harmonics 0.5 to 5.
    Settings whose highest harmonics pass Nyquist are refused, naming the first such harmonic, the
    harmonics that fit and the most bins that would.

    Returns
    -------
    array float32, shape [..., len(harmonics), n_bins, frames]
    """
    fmin = C1_HZ if fmin is None else float(fmin)
    if not harmonics or any(h <= 0 for h in harmonics):
        raise ValueError(f"harmonics must be positive numbers, got {harmonics}")
    tuning = check_tuning(kwargs.get("tuning", 0.0))
    check_harmonics_fit("hcqt", sr, fmin, harmonics, n_bins, bins_per_octave, filter_scale, tuning)
    outs = [
        cqt(y, sr, hop_length, fmin * h, n_bins, bins_per_octave, filter_scale, backend=backend, **kwargs)
        for h in harmonics
    ]
    n_frames = min(o.shape[-1] for o in outs)
    xp = mx if backend == "mlx" else np
    return xp.stack([o[..., :n_frames] for o in outs], axis=-3)


def check_harmonics_fit(
    where: str,
    sr: float,
    fmin: float,
    harmonics: tuple[float, ...],
    n_bins: int,
    bins_per_octave: int,
    filter_scale: float,
    tuning: float = 0.0,
    bins: str = "n_bins",
) -> None:
    """ValueError unless every harmonic's CQT (from ``fmin * h``) keeps its filters under the Nyquist
    frequency. It names the first harmonic that does not, with its fmin (the user gave the base fmin, or
    none), and what would fit: the harmonics below it, or the most bins (`bins` names the setting)."""
    nyquist = check_sample_rate(sr) / 2.0

    def fits(harmonic: float, n: int) -> bool:
        return _filters_reach(fmin * harmonic, n, bins_per_octave, filter_scale, tuning)[0] <= nyquist

    too_high = [h for h in harmonics if not fits(h, n_bins)]
    if not too_high:
        return
    first = min(too_high)
    reach, top = _filters_reach(fmin * first, n_bins, bins_per_octave, filter_scale, tuning)
    most_bins, highest = n_bins, max(harmonics)
    while most_bins > 0 and not fits(highest, most_bins):
        most_bins -= 1
    fitting = [h for h in harmonics if h not in too_high]
    remedies = []
    if fitting:
        dropped = ", ".join(f"{h:g}" for h in sorted(too_high))
        remedies.append(f"keep harmonics up to {max(fitting):g} (drop {dropped})")
    if most_bins > 0:
        remedies.append(f"use {bins} <= {most_bins} (for every harmonic up to {highest:g})")
    remedies.append("raise sr")
    raise ValueError(
        f"{where}: harmonic {first:g} (fmin {first:g} x {fmin:.1f} = {_hz(fmin * first)} Hz, {n_bins} bins): "
        f"its CQT filters reach {_hz(reach)} Hz (top bin {_hz(top)} Hz), above the Nyquist frequency "
        f"{nyquist:.1f} Hz of sr={sr:g}: {', or '.join(remedies)}"
    )


@dataclass(frozen=True)
class CQTConfig(FeatureConfigMixin):
    """CQT settings, with spare bins so pitch-shift augmentation can crop a shifted window.

    `compute` returns ``n_bins + spare_bins_below + spare_bins_above`` bins starting
    ``spare_bins_below`` bins under ``fmin``; `crop` cuts the ``n_bins`` window, optionally shifted.
    `for_pitch_shift(6)` adds the spare bins ±6 semitones need.
    """

    sr: int = 22050
    hop_length: int = 512
    fmin: float = C1_HZ
    n_bins: int = 84
    bins_per_octave: int = 12
    filter_scale: float = 1.0
    spare_bins_below: int = 0
    spare_bins_above: int = 0
    harmonics: tuple[float, ...] | None = None  # None: plain CQT; else HCQT channels
    log: bool = False  # log(1 + C) compression after the magnitude

    def __post_init__(self):
        if self.spare_bins_below < 0 or self.spare_bins_above < 0:
            raise ValueError("CQTConfig spare bins must be >= 0")
        check_settings(
            "CQTConfig.",
            self.sr,
            self.hop_length,
            self.fmin,
            self.n_bins,
            self.bins_per_octave,
            self.filter_scale,
        )
        if self.harmonics is not None:
            object.__setattr__(self, "harmonics", tuple(float(h) for h in self.harmonics))
            check_harmonics_fit(
                "CQTConfig" + (" (from its lowest spare bin)" if self.spare_bins_below else ""),
                self.sr,
                self.computed_fmin,
                self.harmonics,
                self.total_bins,
                self.bins_per_octave,
                self.filter_scale,
                bins="n_bins + spare bins" if self.total_bins != self.n_bins else "n_bins",
            )
        # The highest harmonic's bins are the ones that must fit under Nyquist. Checked without designing
        # the kernels (`_plan`): a config is built where none is computed (every command's flags and --help).
        _check_filters_fit(
            float(self.sr),
            float(self.computed_fmin * max(self.harmonics or (1.0,))),
            int(self.total_bins),
            int(self.bins_per_octave),
            float(self.filter_scale),
            0.0,
        )

    def _plan(self, harmonic: float | None = None, tuning: float = 0.0) -> _Plan:
        # Default: the highest harmonic's, whose bins are the ones that must fit under Nyquist.
        harmonic = max(self.harmonics or (1.0,)) if harmonic is None else harmonic
        return _plan(
            float(self.sr),
            int(self.hop_length),
            float(self.computed_fmin * harmonic),
            int(self.total_bins),
            int(self.bins_per_octave),
            float(self.filter_scale),
            1,
            0.01,
            float(tuning),
        )

    def context_samples(self, tuning: float = 0.0) -> int:
        """Samples on either side of a frame's centre that its values depend on (the decimation filters and
        the longest CQT filter): what `compute` in blocks reads around each block."""
        harmonics = self.harmonics or (1.0,)
        return max(_context_samples(self._plan(h, tuning), self.hop_length) for h in harmonics)

    @property
    def min_samples(self) -> int:
        """The shortest signal `compute` accepts: one sample left after the last octave's halving."""
        plan = self._plan()
        return plan.early_factor * 2 ** (len(plan.hops) - 1)

    @classmethod
    def for_pitch_shift(cls, semitones: int = 6, **settings) -> CQTConfig:
        """A config with enough spare bins for shifts of up to ±``semitones``."""
        config = cls(**settings)
        spare = int(math.ceil(semitones * config.bins_per_octave / 12))
        return replace(config, spare_bins_below=spare, spare_bins_above=spare)

    @property
    def total_bins(self) -> int:
        return self.n_bins + self.spare_bins_below + self.spare_bins_above

    @property
    def computed_fmin(self) -> float:
        """Frequency of the lowest computed (spare) bin in Hz."""
        return self.fmin * 2.0 ** (-self.spare_bins_below / self.bins_per_octave)

    @property
    def frame_rate(self) -> float:
        """Frames per second (Hz)."""
        return self.sr / self.hop_length

    def n_frames(self, n_samples: int) -> int:
        return 1 + n_samples // self.hop_length

    def frequencies(self) -> np.ndarray:
        """Centre frequencies in Hz of the ``n_bins`` bins of an unshifted crop."""
        return cqt_frequencies(self.n_bins, self.fmin, self.bins_per_octave)

    def compute(self, y, backend: str = "mlx", tuning: float = 0.0, block_frames: int | None = None):
        """[..., total_bins, frames] (or [..., harmonics, total_bins, frames]) for ``y`` at ``self.sr``.

        `tuning` moves every bin by that fraction of a bin (a recording's tuning offset, so that its notes
        fall on the bins' centres: `audiotrain.features.tuning`).

        `block_frames` computes a long signal that many frames at a time, each block with `context_samples`
        of audio around it, so that memory is bounded by the block rather than the signal (the whole-signal
        CQT holds every frame's samples at once: the chord recipe's, about 35 MB per minute of audio). The
        frames equal the whole signal's to float32 rounding; a signal within one block and its context is
        computed whole.
        """
        tuning = check_tuning(tuning, "CQTConfig.compute's ")
        if block_frames is not None:
            signal = as_float_signal(
                y, "numpy"
            )  # checked whole: an error names the index in `y`, not in a block
            compute = partial(self.compute, backend=backend, tuning=tuning)
            return _in_blocks(compute, signal, self.hop_length, self.context_samples(tuning), block_frames)
        args: dict[str, Any] = dict(
            sr=self.sr,
            hop_length=self.hop_length,
            fmin=self.computed_fmin,
            n_bins=self.total_bins,
            bins_per_octave=self.bins_per_octave,
            filter_scale=self.filter_scale,
            tuning=tuning,
            backend=backend,
        )
        C = cqt(y, **args) if self.harmonics is None else hcqt(y, harmonics=self.harmonics, **args)
        if self.log:
            C = mx.log1p(C) if backend == "mlx" else np.log1p(C)
        return C

    def crop(self, C, shift_semitones: float = 0):
        """The ``n_bins`` window of ``C`` [..., total_bins, frames] as if the audio were shifted.

        A shift of ``+s`` semitones (pitch up) returns the window whose bin ``b`` holds what the original
        audio had at ``b - s * bins_per_octave / 12``, i.e. the spectrum of the audio shifted up by ``s``.
        """
        shift = shift_semitones * self.bins_per_octave / 12
        if shift != int(shift):
            raise ValueError(f"a shift of {shift_semitones} semitones is not a whole number of bins")
        start = self.spare_bins_below - int(shift)
        if start < 0 or start + self.n_bins > self.total_bins:
            raise ValueError(
                f"shift of {shift_semitones} semitones needs spare bins; have below={self.spare_bins_below}, "
                f"above={self.spare_bins_above} (use CQTConfig.for_pitch_shift)"
            )
        if C.shape[-2] != self.total_bins:
            raise ValueError(f"expected {self.total_bins} bins on axis -2, got shape {tuple(C.shape)}")
        return C[..., start : start + self.n_bins, :]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["harmonics"] = list(self.harmonics) if self.harmonics is not None else None
        return {"kind": "cqt", **data}
