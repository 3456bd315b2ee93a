"""The synthesizer patches of the ``"patches"`` demo style (`render_patches_song`).

Every patch is a morphing wavetable: a bank of one to five single-cycle tables of the note's harmonic
series, read by a free-running oscillator (its phase follows the song's clock, as in the studio style) while a
timbre curve moves through the bank (a filter or FM-index envelope, a pluck's damping, a pad's swell). The
families differ in what the bank holds:

- ``additive``: harmonic amplitudes with a random slope, odd/even balance, per-partial jitter and formant
  bumps (fixed in Hz, so they do not move with the pitch), dulling as the note goes on;
- ``fm``: two-operator FM with carrier and modulator at whole multiples of the note (`FM_RATIOS`), the
  index falling from its peak over an envelope;
- ``subtractive``: saw, square or pulse through a resonant two-pole low-pass whose cutoff (a multiple of the
  note: key tracking) follows an envelope;
- ``supersaw``: a saw, gently filtered, as three to five voices detuned around the note;
- ``plucked``: a string's spectrum (weak harmonics near multiples of the plucking point) whose upper
  harmonics die sooner;
- ``organ``: drawbar mixes on the 8' to 1' drawbars, sometimes a decaying percussion harmonic and a
  Leslie-like tremolo;
- ``pad``: a soft spectrum swelling in after a slow attack, two or three detuned voices;
- bass: ``bass_sub`` (sine or triangle), ``bass_picked`` (a plucked string), ``bass_filter`` (a synth bass
  through a resonant filter envelope) and ``bass_fretless`` (slow attack, vibrato, no glide).

Each patch also draws an ADSR envelope (percussive to sustained), vibrato, tremolo, voices and how velocity
moves loudness and brightness. What keeps the labels true: every table holds only the note's harmonics 1, 2,
3, ... (built by inverse FFT from those bins: FM sidebands that would fall at or below zero frequency fold
onto harmonics, the organ has no 16' or 5 1/3' drawbar), so nothing sounds below a note's fundamental or off
its harmonic series; the fundamental is kept at a share of the strongest harmonic (`_FUNDAMENTAL_SHARE`), so
a note's pitch, not its octave or fifth, is what it sounds; detuned voices stay within
``MAX_DETUNE_CENTS / 2`` of the note and vibrato within ``MAX_VIBRATO_CENTS``; and a table holds only the
harmonics that stay under 95% of the Nyquist frequency at the note's highest (tuned, vibrato, detuned) pitch.
The drums, reverb, tilt EQ and noise floor are the studio style's (`chord_demo_studio_sound.mixdown`), without
its tape saturation and mains hum, which would add tones that belong to no note.
"""

from __future__ import annotations

from audiotrain.datasets.chord_demo import DemoSong, Note
from audiotrain.datasets.chord_demo_studio_sound import mixdown

import numpy as np

CHORD_FAMILIES = ("additive", "fm", "subtractive", "supersaw", "plucked", "organ", "pad")
BASS_FAMILIES = ("bass_sub", "bass_picked", "bass_filter", "bass_fretless")
#: (carrier, modulator) as multiples of the note's frequency: modulator:carrier ratios 1, 2, 3, 4, 5, 7,
#: 1/2, 3/2, 1/3, 2/3. Whole multiples keep every sideband on the note's harmonic series.
FM_RATIOS = ((1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (1, 7), (2, 1), (2, 3), (3, 1), (3, 2))
#: Harmonics of the organ's 8', 4', 2 2/3', 2', 1 3/5', 1 1/3' and 1' drawbars (the 16' and 5 1/3' are left
#: out: they sound an octave below the note and a fifth above that, off its harmonic series).
DRAWBARS = (1, 2, 3, 4, 5, 6, 8)
MAX_DETUNE_CENTS = 20.0  # the spread of a patch's voices, all within half of it of the note
MAX_VIBRATO_CENTS = 15.0

_TABLE = 4096
_CURVE_S = 10.0
_MAX_HARMONICS = 64
_NYQUIST_SHARE = 0.95
_FUNDAMENTAL_SHARE = {"chord": 0.3, "bass": 0.8}  # the fundamental's least amplitude, of the strongest one's
_GAINS = {"chord": 0.22, "bass": 0.5}  # the studio style's levels of chord and bass instruments
_PERCUSSIVE = ("plucked", "bass_picked")


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def is_bass_family(family: str) -> bool:
    return family in BASS_FAMILIES


# ---------------------------------------------------------------------------------------------- drawing


def _envelope(family: str, rng: np.random.Generator) -> dict:
    """ADSR of a patch: the decay is a time constant towards the sustain level; the release fades the note's
    last samples (it never rings past the note, whose end the labels rely on)."""
    u = rng.uniform
    if family in _PERCUSSIVE:
        attack, decay, sustain = u(0.001, 0.005), _log_uniform(rng, 0.3, 2.5), u(0.0, 0.15)
    elif family == "organ":
        attack, decay, sustain = u(0.004, 0.02), 1.0, 1.0
    elif family == "pad":
        attack, decay, sustain = u(0.15, 0.8), _log_uniform(rng, 0.5, 3.0), u(0.6, 1.0)
    elif family == "bass_fretless":
        attack, decay, sustain = u(0.03, 0.12), _log_uniform(rng, 0.5, 3.0), u(0.5, 0.9)
    else:  # anything from percussive to sustained
        attack = _log_uniform(rng, 0.002, 0.15 if not is_bass_family(family) else 0.03)
        decay = _log_uniform(rng, 0.15, 3.0)
        sustain = 0.0 if rng.random() < 0.3 else u(0.0, 1.0)
    release = u(0.05, 0.25) if family == "pad" else u(0.01, 0.08)
    return {
        "attack_s": float(attack),
        "decay_s": float(decay),
        "sustain": float(sustain),
        "release_s": float(release),
    }


def _timbre(family: str, rng: np.random.Generator) -> dict:
    """The timbre curve through the bank (1: its brightest table): it starts at ``timbre_from`` and settles
    at ``timbre_to`` with time constant ``timbre_s``."""
    u = rng.uniform
    if family == "pad":  # swelling in
        start, end, tau = u(0.0, 0.4), u(0.5, 1.0), u(0.3, 2.0)
    elif family == "organ":  # the percussion harmonic dies away
        start, end, tau = 1.0, 0.0, u(0.1, 0.5)
    elif family in _PERCUSSIVE:
        start, end, tau = 1.0, 0.0, _log_uniform(rng, 0.05, 0.6)
    else:  # a filter or index envelope; sometimes opening instead of closing
        start, end, tau = 1.0, u(0.0, 0.6), _log_uniform(rng, 0.05, 1.5)
        if rng.random() < 0.15:
            start, end = end, start
    return {"timbre_from": float(start), "timbre_to": float(end), "timbre_s": float(tau)}


def _modulation(family: str, rng: np.random.Generator) -> dict:
    """Vibrato, tremolo, detuned voices and the velocity's pull on loudness and brightness."""
    u = rng.uniform
    bass = is_bass_family(family)
    vibrato = u(3.0, MAX_VIBRATO_CENTS) if family == "bass_fretless" or rng.random() < 0.3 else 0.0
    # No tremolo on a bass: its sidebands (f0 - rate) would sound below the fundamental of a low note.
    tremolo = u(0.05, 0.4) if not bass and rng.random() < (0.4 if family == "organ" else 0.2) else 0.0
    if family == "supersaw":
        voices, detune = int(rng.integers(3, 6)), u(8.0, MAX_DETUNE_CENTS)
    elif family == "pad":
        voices, detune = int(rng.integers(2, 4)), u(5.0, 16.0)
    elif rng.random() < (0.1 if bass else 0.2):
        voices, detune = 2, u(3.0, 8.0 if bass else 12.0)
    else:
        voices, detune = 1, 0.0
    return {
        "vibrato_cents": float(vibrato),
        "vibrato_hz": float(u(4.0, 7.0)),
        "tremolo": float(tremolo),
        "tremolo_hz": float(u(2.0, 8.0)),
        "voices": voices,
        "detune_cents": float(detune),
        "velocity_loudness": float(u(0.3, 1.5)),  # amplitude = velocity ** this
        "velocity_brightness": float(u(0.0, 1.5)),  # timbre curve scaled by velocity ** this
        "gain_db": float(u(-5.0, 4.0) if bass else u(-5.0, 3.0)),
    }


def _resonant_filter(rng: np.random.Generator, low: tuple[float, float], span: tuple[float, float]) -> dict:
    cutoff = _log_uniform(rng, *low)
    return {"cutoff_low": cutoff, "cutoff_high": cutoff * _log_uniform(rng, *span)}


def _sound(family: str, rng: np.random.Generator) -> dict:
    """The family's own parameters (what its bank holds, `_spectra`)."""
    u = rng.uniform
    if family == "additive":
        formants = [
            [_log_uniform(rng, 300.0, 4000.0), float(u(0.15, 0.8)), float(u(1.0, 6.0))]
            for _ in range(int(rng.integers(0, 4)))
        ]  # [centre Hz, width in octaves, gain]
        return {"slope": float(u(0.4, 2.2)), "even": float(u(0.05, 1.0)) if rng.random() < 0.35 else 1.0,
                "odd": float(u(0.1, 1.0)) if rng.random() < 0.15 else 1.0, "formants": formants,
                "jitter_seed": int(rng.integers(2**31)), "dull_slope": float(u(0.5, 2.5))}  # fmt: skip
    if family == "fm":
        carrier, modulator = FM_RATIOS[rng.integers(len(FM_RATIOS))]
        peak = float(u(0.5, 6.0))
        return {
            "carrier": carrier,
            "modulator": modulator,
            "index_high": peak,
            "index_low": peak * float(u(0.0, 0.4)),
        }
    if family in ("subtractive", "bass_filter"):
        wave = str(rng.choice(["saw", "square", "pulse"]))
        low = (1.0, 4.0) if family == "subtractive" else (1.0, 2.5)
        return {"wave": wave, "width": float(u(0.1, 0.45)), "q": _log_uniform(rng, 0.7, 8.0),
                **_resonant_filter(rng, low, (2.0, 30.0))}  # fmt: skip
    if family == "supersaw":
        return {"wave": "saw", "width": 0.5, "q": 0.707, **_resonant_filter(rng, (3.0, 12.0), (1.5, 6.0))}
    if family in _PERCUSSIVE:
        position = (0.08, 0.45) if family == "plucked" else (0.1, 0.3)
        return {"position": float(u(*position)), "slope": float(u(0.6, 1.4)), "damping": float(u(0.05, 0.4))}
    if family == "organ":
        drawbars = [int(rng.integers(3, 9))] + [
            int(rng.integers(0, 9)) if rng.random() < 0.6 else 0 for _ in DRAWBARS[1:]
        ]
        percussion = int(rng.choice([0, 2, 3]))
        return {"drawbars": drawbars, "percussion": percussion, "percussion_level": float(u(0.5, 2.0))}
    if family == "pad":
        return {"slope": float(u(1.2, 3.0)), "even": float(u(0.3, 1.0))}
    if family == "bass_sub":
        return {"shape": str(rng.choice(["sine", "triangle"])), "second": float(u(0.0, 0.3))}
    if family == "bass_fretless":
        return {"slope": float(u(1.0, 2.0))}
    raise ValueError(f"unknown patch family {family!r}; choose from {CHORD_FAMILIES + BASS_FAMILIES}")


def draw_patch(family: str, rng: np.random.Generator) -> dict:
    """A random patch of a family (one of `CHORD_FAMILIES` or `BASS_FAMILIES`): plain numbers, kept in the
    song's ``details`` so that the score says how it sounds."""
    return {"family": family, **_sound(family, rng), **_envelope(family, rng), **_timbre(family, rng),
            **_modulation(family, rng)}  # fmt: skip


# ---------------------------------------------------------------------------------------------- the banks


def _oscillator(wave: str, width: float, k: np.ndarray) -> np.ndarray:
    if wave == "saw":
        return 1.0 / k
    if wave == "square":
        return np.where(k % 2 == 1, 1.0 / k, 0.0)
    return np.abs(np.sin(np.pi * k * width)) / k  # a pulse `width` of the period high


def _lowpass(k: np.ndarray, cutoff: float, q: float) -> np.ndarray:
    """Gain of a resonant two-pole low-pass at harmonics `k`, `cutoff` in multiples of the note."""
    x = k / cutoff
    return 1.0 / np.sqrt((1 - x**2) ** 2 + (x / q) ** 2)


def _spectra(patch: dict, f0_hz: float, k: np.ndarray) -> np.ndarray:
    """Harmonic amplitudes [stages, harmonics] of a patch's bank, dullest stage first; complex for FM."""
    family = patch["family"]
    if family == "additive":
        weights = np.random.default_rng(patch["jitter_seed"]).uniform(0.5, 1.5, _MAX_HARMONICS)[: len(k)]
        base = k ** -patch["slope"] * weights * np.where(k % 2 == 0, patch["even"], 1.0)
        base = np.where((k % 2 == 1) & (k > 1), base * patch["odd"], base)
        for centre, width, gain in patch["formants"]:
            base = base * (1 + gain * np.exp(-0.5 * (np.log2(k * f0_hz / centre) / width) ** 2))
        return np.stack([base * k ** -patch["dull_slope"], base])
    if family == "fm":  # one period of sin(c x + I sin(m x)) at four indices, analysed into its harmonics
        x = 2 * np.pi * np.arange(_TABLE) / _TABLE
        indices = np.linspace(patch["index_low"], patch["index_high"], 4)
        waves = np.sin(patch["carrier"] * x + indices[:, None] * np.sin(patch["modulator"] * x))
        return np.fft.rfft(waves, axis=1)[:, 1 : len(k) + 1] / (_TABLE / 2)
    if family in ("subtractive", "bass_filter", "supersaw"):
        source = _oscillator(patch["wave"], patch["width"], k)
        stages = 2 if family == "supersaw" else 5
        cutoffs = patch["cutoff_low"] * (patch["cutoff_high"] / patch["cutoff_low"]) ** np.linspace(
            0, 1, stages
        )
        return np.stack([source * _lowpass(k, c, patch["q"]) for c in cutoffs])
    if family in _PERCUSSIVE:  # upper harmonics of a string die sooner: stage s damps them less
        bright = np.abs(np.sin(np.pi * k * patch["position"])) / k ** patch["slope"]
        return np.stack([bright * np.exp(-patch["damping"] * (k - 1) * (1 - s / 3)) for s in range(4)])
    if family == "organ":
        base = np.zeros(len(k))
        for harmonic, level in zip(DRAWBARS, patch["drawbars"]):
            if harmonic <= len(k):
                base[harmonic - 1] += level / 8
        struck = base.copy()
        if patch["percussion"] and patch["percussion"] <= len(k):
            struck[patch["percussion"] - 1] += patch["percussion_level"]
        return np.stack([base, struck])
    if family == "pad":
        base = k ** -patch["slope"] * np.where(k % 2 == 0, patch["even"], 1.0)
        return np.stack([base * k**-2.0, base])
    if family == "bass_sub":
        if patch["shape"] == "sine":
            return np.stack([np.where(k == 1, 1.0, np.where(k == 2, patch["second"], 0.0))])
        return np.stack([np.where(k % 2 == 1, 1.0 / k**2, 0.0)])
    if family == "bass_fretless":
        base = k ** -patch["slope"]
        return np.stack([base * k**-1.5, base])
    raise ValueError(f"unknown patch family {family!r}")


def highest_harmonic(patch: dict, f0_hz: float, sr: int) -> int:
    """How many harmonics of a note at `f0_hz` (tuned) a patch may play: all stay under 95% of the Nyquist
    frequency with its vibrato and its highest detuned voice."""
    highest = f0_hz * 2 ** ((patch["vibrato_cents"] + patch["detune_cents"] / 2) / 1200)
    return int(np.clip(_NYQUIST_SHARE * (sr / 2) / highest, 1, _MAX_HARMONICS))


def table_bank(patch: dict, f0_hz: float, sr: int) -> np.ndarray:
    """The patch's tables for a note at `f0_hz` (tuned): float32 [stages, _TABLE], dullest first, built from
    harmonics 1 to `highest_harmonic` only, the fundamental at least `_FUNDAMENTAL_SHARE` of the strongest."""
    k = np.arange(1, highest_harmonic(patch, f0_hz, sr) + 1)
    spectra = np.array(_spectra(patch, f0_hz, k), dtype=np.complex128)
    share = _FUNDAMENTAL_SHARE["bass" if is_bass_family(patch["family"]) else "chord"]
    strongest = np.abs(spectra).max(axis=1)
    fundamental = np.abs(spectra[:, 0])
    weak = fundamental < share * strongest
    # A weak fundamental is raised (in its own phase, or in sine phase where there is none).
    phase = np.where(fundamental > 0, spectra[:, 0] / np.maximum(fundamental, 1e-12), -1j)
    spectra[weak, 0] = share * strongest[weak] * phase[weak]
    bins = np.zeros((len(spectra), _TABLE // 2 + 1), np.complex128)
    bins[:, 1 : len(k) + 1] = spectra
    tables = np.fft.irfft(bins, _TABLE, axis=1)
    # One scale for the whole bank (a closing filter gets quieter): its loudest table at a sine's RMS.
    loudest = np.sqrt(np.mean(tables**2, axis=1)).max()
    return (tables * (np.sqrt(0.5) / (loudest + 1e-12))).astype(np.float32)


# ---------------------------------------------------------------------------------------------- rendering


def patch_curves(patch: dict, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """(amplitude envelope without release, timbre curve from 0 to 1) over `_CURVE_S` seconds."""
    t = np.arange(int(_CURVE_S * sr)) / sr
    attack, sustain = patch["attack_s"], patch["sustain"]
    decay = sustain + (1 - sustain) * np.exp(-np.maximum(0.0, t - attack) / patch["decay_s"])
    envelope = np.minimum(1.0, t / attack) * decay
    timbre = patch["timbre_to"] + (patch["timbre_from"] - patch["timbre_to"]) * np.exp(-t / patch["timbre_s"])
    return envelope.astype(np.float32), timbre.astype(np.float32)


def render_note(
    note: Note, patch: dict, bank: np.ndarray, curves: tuple, sr: int, tuning: float
) -> np.ndarray:
    """One note, float32 [samples]: the patch's voices read through its bank along the timbre curve."""
    envelope, timbre = curves
    n = min(int(round((note.offset - note.onset) * sr)), len(envelope))
    freq = 440.0 * 2 ** ((note.midi - 69) / 12) * tuning
    first = int(round(note.onset * sr))
    steps = np.arange(first, first + n, dtype=np.float64)
    t = np.arange(n) / sr
    wobble = 0.0
    if patch["vibrato_cents"]:  # fading in over 0.3 s
        depth = patch["vibrato_cents"] * 5.8e-4 * freq * _TABLE / (2 * np.pi * patch["vibrato_hz"])
        wobble = depth * np.minimum(1.0, t / 0.3) * np.sin(2 * np.pi * patch["vibrato_hz"] * t)
    stages = len(bank)
    if stages > 1:  # where in the bank each sample reads: two neighbouring tables and the blend
        position = timbre[:n] * (min(1.0, note.velocity) ** patch["velocity_brightness"] * (stages - 1))
        lower = np.minimum(position.astype(np.int64), stages - 2)
        blend = (position - lower).astype(np.float32)
        offset = lower * _TABLE
    flat = bank.reshape(-1)
    voices = patch["voices"]
    spread = patch["detune_cents"] * np.linspace(-0.5, 0.5, voices) if voices > 1 else [0.0]
    wave = np.zeros(n, np.float32)
    for cents in spread:
        index = (steps * (freq * 2 ** (cents / 1200) * _TABLE / sr) + wobble).astype(np.int64) & (_TABLE - 1)
        if stages == 1:
            wave += flat[index]
        else:
            low = flat[offset + index]
            wave += low + (flat[offset + index + _TABLE] - low) * blend
    wave *= envelope[:n]
    if patch["tremolo"]:
        wave *= (1 - patch["tremolo"] * (0.5 + 0.5 * np.sin(2 * np.pi * patch["tremolo_hz"] * t))).astype(
            np.float32
        )
    release = max(1, min(n, int(patch["release_s"] * sr)))
    wave[n - release :] *= np.linspace(1.0, 0.0, release, dtype=np.float32)
    return wave * (note.velocity ** patch["velocity_loudness"] / voices)


def render_patches_song(song: DemoSong, sr: int, seed: int | list[int] = 0) -> np.ndarray:
    """Audio of a patches-style `DemoSong`: float32 [samples] in [-1, 1], peak-normalised to the song's
    level; ``song.details["patches"]`` maps each instrument to its patch. `seed` drives the drums, the reverb
    and the noise."""
    rng = np.random.default_rng(seed)
    n = int(round(song.duration * sr))
    audio = np.zeros(n + sr, np.float32)
    tuning = 2 ** (song.tuning_cents / 1200)
    patches = song.details["patches"]
    curves = {name: patch_curves(patch, sr) for name, patch in patches.items()}
    banks = {}  # (instrument, midi) -> table bank
    for note in song.notes:
        patch = patches[note.instrument]
        key = (note.instrument, note.midi)
        if key not in banks:
            banks[key] = table_bank(patch, 440.0 * 2 ** ((note.midi - 69) / 12) * tuning, sr)
        wave = render_note(note, patch, banks[key], curves[note.instrument], sr, tuning)
        gain = _GAINS["bass" if is_bass_family(patch["family"]) else "chord"] * 10 ** (patch["gain_db"] / 20)
        start = int(round(note.onset * sr))
        audio[start : start + len(wave)] += gain * wave
    return mixdown(audio[:n], song, sr, rng)
