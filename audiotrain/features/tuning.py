"""Tuning: how far a recording's pitches sit from the A440 grid.

A song tuned 40 cents sharp puts every note 40 cents above its equal-tempered frequency: on a CQT with
3 bins per semitone, 1.2 bins up. A model then sees notes between its bins, and at +-50 cents a note is as
near one semitone as the next. Estimating the song's offset once and computing its CQT with the bins moved
by it (`CQTConfig.compute(..., tuning=)`; `audiotrain.recipes.chords.config.ChordFeatureConfig`) gives the
model every song in tune.

`estimate_tuning` reads the offset from the spectrum summed over time. With ``b`` bins per semitone the
energy of in-tune notes repeats with period ``b`` along the bins; the phase of that period's Fourier
coefficient is where the peaks sit within a semitone (the tuning estimator of Mauch's NNLS-chroma). Bins
below `min_hz` are left out: mains hum (50/60 Hz) and the low end of kick drums sit off the grid. The
coefficient's size against the spectrum's total says how clearly the energy sits on one grid: 0.14-0.21 for
the demo songs, about 0.01 for noise; under `min_concentration` the recording is left as it is (noise, or
drums alone, have no tuning to correct, and a random one would move every bin).
"""

from __future__ import annotations

import numpy as np

__all__ = ["estimate_tuning"]


def estimate_tuning(
    magnitude: np.ndarray,
    bins_per_octave: int,
    frequencies: np.ndarray,
    min_hz: float = 120.0,
    min_concentration: float = 0.03,
) -> float:
    """The recording's offset from the grid in bins, in ``(-b/2, b/2]`` for ``b`` bins per semitone.

    Args:
        magnitude: CQT magnitude [bins, frames] (linear, not log-compressed).
        bins_per_octave: a multiple of 12; under 36 no offset can be read (0.0).
        frequencies: the bins' centre frequencies in Hz (tuned to the grid), [bins].
        min_hz: bins centred below this are ignored.
        min_concentration: the smallest share of the spectrum's energy on one grid that is read as tuning.

    Returns 0.0 for a recording with no energy above `min_hz` (silence has no tuning) or none on a grid.
    Multiply by ``100 * 12 / bins_per_octave`` for cents.
    """
    per_semitone = bins_per_octave // 12
    if per_semitone < 3:
        # One bin per semitone cannot place a peak within it; with two, the period-2 coefficient is real
        # (its phase is 0 or pi), so it cannot either.
        return 0.0
    spectrum = np.asarray(magnitude, dtype=np.float64).sum(axis=-1)
    spectrum = np.where(np.asarray(frequencies) >= min_hz, spectrum, 0.0)
    total = spectrum.sum()
    if not total > 0:
        return 0.0
    k = np.arange(len(spectrum))
    coefficient = np.sum(spectrum * np.exp(-2j * np.pi * k / per_semitone))
    if abs(coefficient) < min_concentration * total:
        return 0.0
    return float(-np.angle(coefficient) * per_semitone / (2 * np.pi))
