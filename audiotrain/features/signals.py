"""Real-looking test signals (chords of harmonic tones, noise, chirps, silence) for tests and benchmarks."""

from __future__ import annotations

import numpy as np

__all__ = ["harmonic_chord", "chirp", "signal_set"]


def harmonic_chord(
    sr: float, seconds: float, midi_notes=(57, 60, 64), n_harmonics: int = 8, rng=None
) -> np.ndarray:
    """A chord of harmonic tones (1/h amplitudes, random phases) with a 10 ms fade in and out, float32."""
    rng = np.random.default_rng(0) if rng is None else rng
    t = np.arange(int(sr * seconds)) / sr
    y = np.zeros_like(t)
    for note in midi_notes:
        f0 = 440.0 * 2 ** ((note - 69) / 12)
        for h in range(1, n_harmonics + 1):
            if f0 * h < sr / 2 * 0.95:
                y += np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi)) / h
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.01) if len(t) > 1 else np.ones_like(t)
    return (0.3 * y * fade / max(1.0, np.abs(y).max())).astype(np.float32)


def chirp(sr: float, seconds: float, f0: float = 40.0, f1: float | None = None) -> np.ndarray:
    """An exponential sine sweep from ``f0`` to ``f1`` (default 0.45 sr), float32."""
    f1 = 0.45 * sr if f1 is None else f1
    t = np.arange(int(sr * seconds)) / sr
    k = np.log(f1 / f0) / seconds
    return (0.5 * np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k)).astype(np.float32)


def signal_set(sr: float, seconds: float, rng=None) -> dict[str, np.ndarray]:
    """Named signals of equal length: chord, noise, chirp, silence, and a mix with a silent gap."""
    rng = np.random.default_rng(0) if rng is None else rng
    n = int(sr * seconds)
    chord = harmonic_chord(sr, seconds, rng=rng)
    noise = (0.1 * rng.standard_normal(n)).astype(np.float32)
    sweep = chirp(sr, seconds)
    mix = chord + 0.2 * sweep + 0.02 * noise
    mix[n // 3 : n // 2] = 0.0  # a silent gap inside music
    return {
        "chord": chord,
        "noise": noise,
        "chirp": sweep,
        "silence": np.zeros(n, dtype=np.float32),
        "mix": mix.astype(np.float32),
    }
