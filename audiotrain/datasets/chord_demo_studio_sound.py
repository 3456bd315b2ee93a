"""The instruments, drums and mix of the ``"studio"`` demo style (`render_studio_song`).

Every instrument is a wavetable oscillator (free-running: its phase follows the song's clock) that crossfades
from a bright to a dull table, under an amplitude envelope, with optional vibrato, tremolo, a pitch glide at
the onset and detuned voices. What makes each instrument is its tables and curves:

- ``epiano``: two-operator FM (modulator at the carrier's frequency) whose index falls after the strike.
- ``vibraphone``: a bar's partials 1, 4 and 10, long decay, the motor's tremolo.
- ``brass``: a bright saw-like spectrum that swells in after a soft attack, a section of detuned voices.
- ``reeds``: odd partials strong (a clarinet/sax blend), breathy attack, vibrato, two or three voices.
- ``nylon``: a plucked string: bright attack decaying to a round tone within a second or two.
- ``choir``: harmonics weighted by a vowel's formants (built per note, since formants do not move with
  the pitch), slow attack, vibrato, three voices.
- ``bass_picked``, ``bass_upright`` (short decay, sometimes sliding into the note), ``bass_808`` (a sine
  dropping a few semitones onto the note, long) and ``bass_acid`` (a saw through a resonant filter whose
  cutoff closes after each note).

Drums follow one of `DRUM_PATTERNS` on a 16-step grid (with the song's swing); the mix adds a convolution
reverb, a two-band tilt, sometimes tape saturation, a noise floor and sometimes mains hum.
"""

from __future__ import annotations

import functools

from audiotrain.datasets.chord_demo import DemoSong, Note

import numpy as np

CHORD_INSTRUMENTS = ("epiano", "vibraphone", "brass", "reeds", "nylon", "choir")
BASS_INSTRUMENTS = ("bass_picked", "bass_upright", "bass_808", "bass_acid")
DRUM_PATTERNS = ("rock", "funk", "ballad", "bossa", "trap", "shuffle", "gospel")
VOWELS = {"a": (800, 1150, 2900), "o": (450, 800, 2830), "u": (325, 700, 2700), "e": (400, 1600, 2700)}

_TABLE = 4096
_RELEASE_S = 0.025
_CURVE_S = 10.0
_GAINS = {"epiano": 0.25, "vibraphone": 0.25, "brass": 0.18, "reeds": 0.18, "nylon": 0.3, "choir": 0.22,
          "bass_picked": 0.5, "bass_upright": 0.55, "bass_808": 0.45, "bass_acid": 0.3}  # fmt: skip


def _harmonic_table(amplitudes: dict[int, float] | list[float]) -> np.ndarray:
    """One period of a sum of harmonics (harmonic number → amplitude), peak-normalised, float32 [_TABLE]."""
    items = amplitudes.items() if isinstance(amplitudes, dict) else enumerate(amplitudes, start=1)
    phase = 2 * np.pi * np.arange(_TABLE) / _TABLE
    wave = sum(a * np.sin(k * phase) for k, a in items if a)
    return (wave / np.max(np.abs(wave))).astype(np.float32)


def _fm_table(index: float) -> np.ndarray:
    phase = 2 * np.pi * np.arange(_TABLE) / _TABLE
    return np.sin(phase + index * np.sin(phase)).astype(np.float32)


@functools.lru_cache(maxsize=512)
def _vowel_table(midi: int, vowel: str) -> np.ndarray:
    """Harmonics of a sung note (slope -6 dB/octave) shaped by a vowel's three formants, up to 5 kHz."""
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    formants = VOWELS[vowel]
    amplitudes = {}
    for k in range(1, int(5000 / f0) + 1):
        f = k * f0
        peak = sum(
            g * np.exp(-0.5 * ((f - fc) / (0.12 * fc + 60)) ** 2) for fc, g in zip(formants, (1, 0.6, 0.25))
        )
        amplitudes[k] = float((0.05 + peak) / k**0.5)
    return _harmonic_table(amplitudes)


def instrument_sound(name: str, rng: np.random.Generator) -> dict:
    """A song's version of an instrument: its table parameters, curves, modulation and level."""
    u = rng.uniform
    sound = {"gain_db": float(u(-3, 3)), "detune_cents": 0.0, "voices": 1, "vibrato_cents": 0.0,
             "tremolo": 0.0, "tremolo_hz": float(u(4, 7)), "glide_semitones": 0.0, "glide_s": 0.03}  # fmt: skip
    if name == "epiano":
        sound.update(index=float(u(1.2, 3.5)), bright_s=float(u(0.1, 0.5)), decay_s=float(u(1.2, 3.5)),
                     attack_s=0.003, tremolo=float(u(0.1, 0.35)) if rng.random() < 0.4 else 0.0)  # fmt: skip
    elif name == "vibraphone":
        sound.update(tone=float(u(0.2, 0.6)), bright_s=float(u(0.05, 0.15)), decay_s=float(u(2.0, 5.0)),
                     attack_s=0.002, tremolo=float(u(0.2, 0.5)) if rng.random() < 0.6 else 0.0)  # fmt: skip
    elif name == "brass":
        sound.update(tilt=float(u(0.6, 1.1)), swell_s=float(u(0.03, 0.12)), bright_s=float(u(0.2, 0.8)),
                     sustain=float(u(0.4, 0.8)), decay_s=0.0, attack_s=float(u(0.02, 0.06)),
                     voices=int(rng.integers(2, 4)), detune_cents=float(u(4, 12)), vibrato_cents=float(u(0, 8)))  # fmt: skip
    elif name == "reeds":
        sound.update(even=float(u(0.15, 0.5)), bright_s=float(u(0.3, 1.0)), sustain=float(u(0.5, 0.9)),
                     decay_s=0.0, attack_s=float(u(0.04, 0.12)), voices=int(rng.integers(2, 4)),
                     detune_cents=float(u(5, 15)), vibrato_cents=float(u(6, 16)))  # fmt: skip
    elif name == "nylon":
        sound.update(pluck=float(u(0.1, 0.3)), bright_s=float(u(0.08, 0.3)), decay_s=float(u(0.8, 2.5)),
                     attack_s=0.002)  # fmt: skip
    elif name == "choir":
        sound.update(vowel=str(rng.choice(list(VOWELS))), decay_s=0.0, attack_s=float(u(0.12, 0.4)),
                     voices=3, detune_cents=float(u(8, 20)), vibrato_cents=float(u(8, 20)))  # fmt: skip
    elif name == "bass_picked":
        sound.update(bright_s=float(u(0.08, 0.3)), decay_s=float(u(0.8, 2.0)), attack_s=0.003)
    elif name == "bass_upright":
        sound.update(bright_s=float(u(0.03, 0.08)), decay_s=float(u(0.35, 0.8)), attack_s=0.006,
                     slide=float(u(0.15, 0.4)), glide_s=float(u(0.02, 0.05)))  # fmt: skip
    elif name == "bass_808":
        sound.update(drive=float(u(0.15, 0.45)), decay_s=float(u(1.2, 3.0)), attack_s=0.002,
                     glide_semitones=float(u(2, 7)), glide_s=float(u(0.02, 0.06)))  # fmt: skip
    elif name == "bass_acid":
        sound.update(resonance=int(rng.integers(3, 8)), bright_s=float(u(0.06, 0.3)), decay_s=0.0,
                     attack_s=0.003, sustain=float(u(0.0, 0.3)))  # fmt: skip
    else:
        raise ValueError(f"unknown studio instrument {name!r}")
    return sound


def _tables(name: str, sound: dict, midi: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(bright table, dull table or None) of one note."""
    if name == "epiano":
        return _fm_table(sound["index"]), _fm_table(0.8)
    if name == "vibraphone":
        return _harmonic_table({1: 1, 4: sound["tone"], 10: 0.15}), _harmonic_table({1: 1, 4: 0.08})
    if name == "brass":
        return _harmonic_table([k ** -sound["tilt"] for k in range(1, 11)]), _harmonic_table([1, 0.3, 0.1])
    if name == "reeds":
        bright = [(1 if k % 2 else sound["even"]) / k for k in range(1, 11)]
        return _harmonic_table(bright), _harmonic_table([1, 0.1, 0.3])
    if name == "nylon":
        p = sound["pluck"]  # the plucking point: harmonics near multiples of 1/p are weak
        return _harmonic_table([abs(np.sin(np.pi * k * p)) / k for k in range(1, 11)]), _harmonic_table(
            [1, 0.25]
        )
    if name == "choir":
        return _vowel_table(midi, sound["vowel"]), None
    if name == "bass_picked":
        return _harmonic_table([1, 0.7, 0.5, 0.35, 0.25, 0.15, 0.1, 0.08]), _harmonic_table([1, 0.35, 0.15])
    if name == "bass_upright":
        return _harmonic_table([1, 0.5, 0.3, 0.1]), _harmonic_table([1, 0.3, 0.15])
    if name == "bass_808":
        d = sound["drive"]
        return _harmonic_table([1, 0, d / 3, 0, d / 5]), None
    if name == "bass_acid":
        r = sound["resonance"]
        bright = [(3.0 if k == r else 1.0) / k for k in range(1, 21)]
        return _harmonic_table(bright), _harmonic_table([1, 0.3, 0.12])
    raise ValueError(f"unknown studio instrument {name!r}")


def _curves(name: str, sound: dict, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """(amplitude envelope without release, brightness 1 → 0) over `_CURVE_S` seconds."""
    t = np.arange(int(_CURVE_S * sr)) / sr
    envelope = np.minimum(1.0, t / sound["attack_s"])
    if sound["decay_s"]:
        envelope = envelope * np.exp(-t / sound["decay_s"])
    sustain = sound.get("sustain", 0.0)
    brightness = sustain + (1 - sustain) * np.exp(-t / sound.get("bright_s", 1.0))
    if name == "brass":  # the swell: the bright spectrum comes in after the attack
        brightness = brightness * (1 - np.exp(-t / sound["swell_s"]))
    return envelope.astype(np.float32), brightness.astype(np.float32)


def render_note(
    note: Note, sound: dict, tables: tuple, curves: tuple, sr: int, tuning: float, glide: float = 0.0
) -> np.ndarray:
    """One note, float32 [samples], from its (bright, dull or None) `tables` and its instrument's (envelope,
    brightness) `curves`; `glide` semitones above the note at its onset, gliding onto it."""
    envelope, brightness = curves
    n = min(int(round((note.offset - note.onset) * sr)), len(envelope))
    freq = 440.0 * 2 ** ((note.midi - 69) / 12) * tuning
    bright, dull = tables
    first = int(round(note.onset * sr))
    steps = np.arange(first, first + n, dtype=np.float64)
    t = np.arange(n) / sr
    extra = np.zeros(n)
    if glide:  # instantaneous frequency f (1 + (r - 1) e^(-t/tau)), integrated
        tau = sound["glide_s"]
        extra += freq * (2 ** (glide / 12) - 1) * tau * (1 - np.exp(-t / tau)) * _TABLE
    if sound["vibrato_cents"]:  # 5.5 Hz, fading in over 0.4 s
        depth = sound["vibrato_cents"] * 5.8e-4 * freq * _TABLE / (2 * np.pi * 5.5)
        extra += depth * np.minimum(1.0, t / 0.4) * np.sin(2 * np.pi * 5.5 * t)
    voices = sound["voices"]
    spread = sound["detune_cents"] / 1200 * np.linspace(-0.5, 0.5, voices) if voices > 1 else [0.0]
    wave = np.zeros(n, np.float32)
    for cents in spread:
        phase = steps * (freq * 2**cents * _TABLE / sr) + extra
        index = phase.astype(np.int64) & (_TABLE - 1)
        wave += (
            bright[index] if dull is None else dull[index] + (bright[index] - dull[index]) * brightness[:n]
        )
    wave *= envelope[:n]
    if sound["tremolo"]:
        wave *= (
            1 - sound["tremolo"] * (0.5 + 0.5 * np.sin(2 * np.pi * sound["tremolo_hz"] * steps / sr))
        ).astype(np.float32)
    release = max(1, min(n, int(_RELEASE_S * sr)))
    wave[n - release :] *= np.linspace(1.0, 0.0, release, dtype=np.float32)
    return wave * (note.velocity / voices)


# ---------------------------------------------------------------------------------------------- drums

#: Steps (of 16 per bar) of kick, snare (or rim, or clap), closed hat, and a percussion voice.
_GRIDS = {
    "rock": ((0, 8, 10), (4, 12), tuple(range(0, 16, 2)), ()),
    "funk": ((0, 3, 7, 10), (4, 12, 7, 14), tuple(range(16)), (6,)),
    "ballad": ((0, 10), (4, 12), tuple(range(0, 16, 2)), tuple(range(16))),
    "bossa": ((0, 6, 8, 14), (0, 3, 6, 10, 13), tuple(range(0, 16, 2)), ()),
    "trap": ((0, 7, 10), (8,), tuple(range(16)), (14, 15)),
    "shuffle": ((0, 8), (4, 12), tuple(range(0, 16, 2)), (2, 6, 10, 14)),
    "gospel": ((0, 6, 8), (4, 12), tuple(range(0, 16, 4)), tuple(range(2, 16, 4))),
}
_SNARE_KIND = {"rock": "snare", "funk": "snare", "ballad": "rim", "bossa": "rim", "trap": "clap",
               "shuffle": "snare", "gospel": "clap"}  # fmt: skip
_PERC_KIND = {
    "funk": "open_hat",
    "ballad": "shaker",
    "trap": "hat_roll",
    "shuffle": "ride",
    "gospel": "tambourine",
}


def _decaying_noise(
    rng: np.random.Generator, seconds: float, decay_s: float, sr: int, order: int
) -> np.ndarray:
    n = int(seconds * sr)
    noise = rng.standard_normal(n + order)
    for _ in range(order):  # each difference tilts the noise up by 6 dB/octave
        noise = np.diff(noise)
    return noise[:n] * np.exp(-np.arange(n) / (decay_s * sr)) / 2**order


def _drum_sounds(rng: np.random.Generator, sr: int) -> dict[str, np.ndarray]:
    u = rng.uniform
    t = np.arange(int(0.5 * sr)) / sr
    top, low, drop = u(100, 160), u(42, 55), u(0.02, 0.05)
    kick = np.sin(2 * np.pi * (low * t + (top - low) * drop * (1 - np.exp(-t / drop)))) * np.exp(
        -t / u(0.12, 0.35)
    )
    ts = t[: int(0.2 * sr)]
    sounds = {
        "kick": kick,
        "snare": 0.6 * np.sin(2 * np.pi * u(170, 230) * ts) * np.exp(-ts / 0.05) + _decaying_noise(rng, 0.2, 0.06, sr, 1),
        "rim": np.sin(2 * np.pi * u(700, 1000) * ts[: int(0.05 * sr)]) * np.exp(-ts[: int(0.05 * sr)] / 0.01),
        "hat": _decaying_noise(rng, 0.06, u(0.01, 0.03), sr, 2),
        "open_hat": _decaying_noise(rng, 0.3, 0.12, sr, 2),
        "ride": _decaying_noise(rng, 0.4, 0.2, sr, 2) + 0.05 * np.sin(2 * np.pi * 3100 * t[: int(0.4 * sr)]),
        "shaker": _decaying_noise(rng, 0.08, 0.03, sr, 2) * np.minimum(1, np.arange(int(0.08 * sr)) / (0.02 * sr)),
        "tambourine": _decaying_noise(rng, 0.15, 0.06, sr, 2) * (1 + np.sin(2 * np.pi * 5200 * t[: int(0.15 * sr)])),
    }  # fmt: skip
    clap = np.zeros(int(0.2 * sr))
    for k in range(3):  # three hands, 10 ms apart
        burst = _decaying_noise(rng, 0.2 - 0.01 * k, 0.015 if k < 2 else 0.06, sr, 1)
        clap[int(0.01 * k * sr) : int(0.01 * k * sr) + len(burst)] += burst
    sounds["clap"] = clap
    sounds["hat_roll"] = sounds["hat"]
    return {name: wave.astype(np.float32) for name, wave in sounds.items()}


def swung(step_beats: float, swing: float) -> float:
    """A position in beats moved by the swing: off-beat eighths late by `swing` / 6 of a beat (a triplet feel
    at 1), off-beat sixteenths by half that."""
    fraction = step_beats % 1.0
    if abs(fraction - 0.5) < 1e-6:
        return step_beats + swing / 6
    if abs(fraction - 0.25) < 1e-6 or abs(fraction - 0.75) < 1e-6:
        return step_beats + swing / 12
    return step_beats


def _drums(song: DemoSong, sr: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """The song's drum pattern over its beats, unit level."""
    details = song.details
    pattern, swing = details["drums"], details["swing"]
    kicks, snares, hats, percs = _GRIDS[pattern]
    sounds = _drum_sounds(rng, sr)
    beat = 60.0 / song.tempo
    out = np.zeros(n, np.float32)
    first_beats = song.beats[::4]  # bar starts
    voices = (
        (kicks, "kick", 1.0),
        (snares, _SNARE_KIND[pattern], 0.7),
        (hats, "hat", 0.25),
        (percs, _PERC_KIND.get(pattern, "shaker"), 0.2),
    )
    for bar_start in first_beats:
        for steps, kind, gain in voices:
            for step in steps:
                onset = bar_start + swung(step / 4, swing) * beat
                level = gain * (0.35 if kind == "snare" and step % 4 else 1.0) * rng.uniform(0.7, 1.0)
                wave = sounds[kind]
                start = int(onset * sr)
                m = min(len(wave), n - start)
                if m > 0:
                    out[start : start + m] += level * wave[:m]
                if kind == "hat_roll":  # a 32nd-note roll
                    start += int(beat / 8 * sr)
                    m = min(len(wave), n - start)
                    if m > 0:
                        out[start : start + m] += level * wave[:m]
    return out


# ---------------------------------------------------------------------------------------------- the mix


def mix_settings(rng: np.random.Generator) -> dict:
    """A song's mix: reverb (wet share, RT60, pre-delay), a two-band tilt, saturation, hum, drum level."""
    return {
        "wet": float(rng.uniform(0.05, 0.4)) if rng.random() < 0.8 else 0.0,
        "rt60": float(rng.uniform(0.3, 2.5)),
        "predelay_s": float(rng.uniform(0.0, 0.03)),
        "split_hz": float(np.exp(rng.uniform(np.log(150), np.log(2500)))),
        "low_db": float(rng.uniform(-6, 6)),
        "high_db": float(rng.uniform(-8, 5)),
        "drive": float(rng.uniform(1.0, 3.0)) if rng.random() < 0.3 else 0.0,
        "hum_hz": float(rng.choice([50.0, 60.0])) if rng.random() < 0.15 else 0.0,
        "drums_level": float(rng.uniform(0.5, 1.8)),
    }


def _mix(audio: np.ndarray, mix: dict, sr: int, rng: np.random.Generator) -> np.ndarray:
    import scipy.signal  # (here: ~0.5 s to import, which `cache info` paid via TIMBRES)

    if mix["wet"] > 0:  # a convolution reverb: exponentially decaying noise (-60 dB at rt60)
        length = int(min(mix["rt60"], 2.0) * sr)
        response = rng.standard_normal(length) * 10 ** (-3 * np.arange(length) / (mix["rt60"] * sr))
        response = np.concatenate(
            [np.zeros(int(mix["predelay_s"] * sr)), response / np.sqrt(np.sum(response**2))]
        )
        audio = audio + mix["wet"] * scipy.signal.fftconvolve(audio, response)[: len(audio)].astype(
            np.float32
        )
    pole = np.exp(-2 * np.pi * mix["split_hz"] / sr)
    low = scipy.signal.lfilter([1 - pole], [1, -pole], audio)
    audio = 10 ** (mix["low_db"] / 20) * low + 10 ** (mix["high_db"] / 20) * (audio - low)
    if mix["drive"]:
        peak = np.max(np.abs(audio)) + 1e-9
        audio = np.tanh(mix["drive"] * audio / peak) * peak / mix["drive"]
    return audio.astype(np.float32)


def render_studio_song(song: DemoSong, sr: int, seed: int | list[int] = 0) -> np.ndarray:
    """Audio of a studio-style `DemoSong`: float32 [samples] in [-1, 1]; `seed` drives the drums, the reverb,
    the noise, and which upright-bass notes slide."""
    rng = np.random.default_rng(seed)
    n = int(round(song.duration * sr))
    audio = np.zeros(n + sr, np.float32)
    tuning = 2 ** (song.tuning_cents / 1200)
    sounds = song.details["sounds"]
    curves = {name: _curves(name, sound, sr) for name, sound in sounds.items()}
    tables = {}  # (instrument, midi): only the choir's tables depend on the note
    for note in song.notes:
        sound = sounds[note.instrument]
        key = (note.instrument, note.midi if note.instrument == "choir" else None)
        if key not in tables:
            tables[key] = _tables(note.instrument, sound, note.midi)
        glide = sound["glide_semitones"]
        if note.instrument == "bass_upright" and rng.random() < sound["slide"]:
            glide = -1.0  # sliding up a semitone into the note
        wave = render_note(note, sound, tables[key], curves[note.instrument], sr, tuning, glide)
        start = int(round(note.onset * sr))
        audio[start : start + len(wave)] += _GAINS[note.instrument] * 10 ** (sound["gain_db"] / 20) * wave
    return mixdown(audio[:n], song, sr, rng)


def mixdown(audio: np.ndarray, song: DemoSong, sr: int, rng: np.random.Generator) -> np.ndarray:
    """The song's instruments (float32 [samples], the song's length) through the mix of ``song.details``
    (``"mix"`` from `mix_settings`, ``"drums"`` one of `DRUM_PATTERNS`, ``"swing"``), with its drums, hum and
    noise floor, scaled to ``song.level``: float32 [samples] in [-1, 1]. `rng` drives the reverb, drums, hum
    and noise."""
    import scipy.signal  # (here: ~0.5 s to import, which `cache info` paid via TIMBRES)

    n = len(audio)
    mix = song.details["mix"]
    audio = _mix(audio, mix, sr, rng)
    music_rms = float(np.sqrt(np.mean(audio**2))) + 1e-6
    if song.percussion:
        drums = _drums(song, sr, n, rng)
        audio += music_rms * mix["drums_level"] * drums / (np.sqrt(np.mean(drums**2)) + 1e-9) * 0.5
    if mix["hum_hz"]:
        t = np.arange(n) / sr
        hum = sum(np.sin(2 * np.pi * k * mix["hum_hz"] * t) / k for k in (1, 2, 3))
        audio += music_rms * 10 ** (rng.uniform(-40, -25) / 20) * hum.astype(np.float32)
    pole = np.exp(-2 * np.pi * 1000.0 / sr)  # a noise floor tilted down (pink-ish) plus some white
    noise = scipy.signal.lfilter([1 - pole], [1, -pole], rng.standard_normal(n)) + 0.3 * rng.standard_normal(
        n
    )
    noise /= np.std(noise) + 1e-9
    audio += music_rms * 10 ** (song.noise_db / 20) * noise.astype(np.float32)
    return (audio * (song.level / (np.max(np.abs(audio)) + 1e-9))).astype(np.float32)
