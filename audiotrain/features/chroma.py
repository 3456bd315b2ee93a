"""Chromagram from the CQT, like ``librosa.feature.chroma_cqt`` (with ``tuning=0.0``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal, overload

from audiotrain.features.cqt import C1_HZ, check_tuning, cqt

import mlx.core as mx
import numpy as np

__all__ = ["cq_to_chroma", "chroma_cqt"]


@lru_cache(maxsize=16)
def _cq_to_chroma(n_input: int, bins_per_octave: int, n_chroma: int, fmin: float) -> np.ndarray:
    if n_chroma < 1:
        raise ValueError(f"n_chroma must be a positive number of pitch classes, got {n_chroma}")
    n_merge = bins_per_octave / n_chroma
    if n_merge != int(n_merge):
        raise ValueError(f"bins_per_octave={bins_per_octave} must be a multiple of n_chroma={n_chroma}")
    n_merge = int(n_merge)
    # Each chroma bin sums n_merge CQT bins centred on it (hence the half-merge roll).
    matrix = np.roll(np.repeat(np.eye(n_chroma), n_merge, axis=1), -(n_merge // 2), axis=1)
    matrix = np.tile(matrix, int(np.ceil(n_input / bins_per_octave)))[:, :n_input]
    # Rotate so that chroma bin 0 is C whatever note fmin is.
    midi_0 = np.mod(12 * (np.log2(fmin) - np.log2(440.0)) + 69, 12)
    matrix = np.roll(matrix, int(np.round(midi_0 * (n_chroma / 12.0))), axis=0).astype(np.float32)
    matrix.setflags(write=False)
    return matrix


def cq_to_chroma(
    n_input: int, bins_per_octave: int = 12, n_chroma: int = 12, fmin: float | None = None
) -> np.ndarray:
    """Matrix [n_chroma, n_input] folding CQT bins (lowest at ``fmin``) into pitch classes, C first."""
    return _cq_to_chroma(int(n_input), int(bins_per_octave), int(n_chroma), float(fmin or C1_HZ))


@overload
def chroma_cqt(
    y=None,
    sr: float = 22050,
    hop_length: int = 512,
    fmin: float | None = None,
    n_chroma: int = 12,
    n_octaves: int = 7,
    bins_per_octave: int = 36,
    norm: float | None = np.inf,
    threshold: float = 0.0,
    tuning: float = 0.0,
    backend: Literal["mlx"] = "mlx",
    C: None = None,
) -> mx.array: ...
@overload
def chroma_cqt(
    y=None,
    sr: float = 22050,
    hop_length: int = 512,
    fmin: float | None = None,
    n_chroma: int = 12,
    n_octaves: int = 7,
    bins_per_octave: int = 36,
    norm: float | None = np.inf,
    threshold: float = 0.0,
    tuning: float = 0.0,
    *,
    backend: Literal["numpy"],
    C: None = None,
) -> np.ndarray: ...
@overload
def chroma_cqt(
    y=None,
    sr: float = 22050,
    hop_length: int = 512,
    fmin: float | None = None,
    n_chroma: int = 12,
    n_octaves: int = 7,
    bins_per_octave: int = 36,
    norm: float | None = np.inf,
    threshold: float = 0.0,
    tuning: float = 0.0,
    backend: str = "mlx",
    *,
    C: mx.array,
) -> mx.array: ...
@overload
def chroma_cqt(
    y=None,
    sr: float = 22050,
    hop_length: int = 512,
    fmin: float | None = None,
    n_chroma: int = 12,
    n_octaves: int = 7,
    bins_per_octave: int = 36,
    norm: float | None = np.inf,
    threshold: float = 0.0,
    tuning: float = 0.0,
    backend: str = "mlx",
    *,
    C: np.ndarray,
) -> np.ndarray: ...
@overload
def chroma_cqt(
    y=None,
    sr: float = 22050,
    hop_length: int = 512,
    fmin: float | None = None,
    n_chroma: int = 12,
    n_octaves: int = 7,
    bins_per_octave: int = 36,
    norm: float | None = np.inf,
    threshold: float = 0.0,
    tuning: float = 0.0,
    backend: str = "mlx",
    C: mx.array | np.ndarray | None = None,
) -> mx.array | np.ndarray: ...
def chroma_cqt(
    y=None,
    sr: float = 22050,
    hop_length: int = 512,
    fmin: float | None = None,
    n_chroma: int = 12,
    n_octaves: int = 7,
    bins_per_octave: int = 36,
    norm: float | None = np.inf,
    threshold: float = 0.0,
    tuning: float = 0.0,
    backend: str = "mlx",
    C: mx.array | np.ndarray | None = None,
) -> mx.array | np.ndarray:
    """Chroma from a CQT magnitude.

    Parameters
    ----------
    y : array [..., samples], optional
        Audio (ignored when ``C`` is given: ``chroma_cqt(C=C)``, as librosa's).
    sr, hop_length, fmin, n_octaves, bins_per_octave, tuning :
        CQT settings (``n_bins = n_octaves * bins_per_octave``). librosa's default ``tuning=None``
        estimates it; here it is a number, 0.0 by default: compare with ``librosa.feature.chroma_cqt(...,
        tuning=0.0)``.
    n_chroma : int
        Pitch classes.
    norm : float or None
        Per-frame norm (inf: max = 1, as librosa); silent frames stay zero.
    threshold : float
        Values below this are zeroed before normalising.
    backend : {"mlx", "numpy"}
        Where the CQT runs (see `cqt`), and so what the result is: an mx.array or a numpy array. With
        ``C`` given the result takes its type instead.
    C : array [..., n_bins, frames], optional
        A precomputed CQT magnitude to fold instead of computing one.

    Returns
    -------
    array float32, shape [..., n_chroma, frames]
    """
    fmin = C1_HZ if fmin is None else float(fmin)
    tuning = check_tuning(tuning)
    if y is None and C is None:
        raise ValueError("chroma_cqt needs audio y [..., samples] or a CQT magnitude C [..., n_bins, frames]")
    # The fold first: it checks n_chroma and bins_per_octave before a CQT is computed for nothing.
    n_input = n_octaves * bins_per_octave if C is None else C.shape[-2]
    fold = cq_to_chroma(n_input, bins_per_octave, n_chroma, fmin * 2.0 ** (tuning / bins_per_octave))
    if C is None:
        C = cqt(
            y,
            sr,
            hop_length,
            fmin,
            n_octaves * bins_per_octave,
            bins_per_octave,
            tuning=tuning,
            backend=backend,
        )
    xp = mx if isinstance(C, mx.array) else np
    chroma = (mx.array(fold) if xp is mx else fold) @ C
    if threshold is not None:
        chroma = xp.where(chroma < threshold, 0.0, chroma)
    if norm is None:
        return chroma
    mag = xp.abs(chroma)
    if norm == np.inf:
        length = xp.max(mag, axis=-2, keepdims=True)
    else:
        length = xp.sum(mag**norm, axis=-2, keepdims=True) ** (1.0 / norm)
    # librosa leaves frames whose norm is below the dtype's tiny value unnormalised (all zeros).
    tiny = float(np.finfo(np.float32).tiny)
    return chroma / xp.where(length < tiny, 1.0, length)
