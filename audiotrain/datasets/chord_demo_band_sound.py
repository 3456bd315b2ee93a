"""The sound of the ``"band"`` demo style: its instruments, track effects, drum kit, reverb and mix.

Each song draws every instrument's parameters (`draw_sound`) and renders its notes with a `Synth`:
plucked and struck strings from inharmonic partials (guitars, harp, basses), a piano with a detuned
second string and a two-stage decay, an FM electric piano with a tine, a drawbar organ (the only timbre
with energy below the written note: its 16' drawbar, see `SUB_OCTAVE`), saw pads and brass with a filter
envelope, a kalimba. Tracks get their effects (guitar body resonances, tremolo, an upright's peak), a level,
a reverb whose send is high-passed so that its tails do not blur the bass at chord changes, a reddish noise
floor, and the mix is normalised to -1 dBFS.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

F32 = np.float32
#: Timbres that sound a component below the written note: instrument -> (semitones below, name of that
#: component's note rows). Only the organ's 16' drawbar (harmonic 1 of f/2 in `ORGAN_HARMONICS`) does; its
#: 5 1/3' quint (harmonic 3 of f/2) belongs to the same sub-octave series (see `sub_octave`).
SUB_OCTAVE = {"organ": (12, "organ16")}
#: The organ's drawbars as harmonics of half the written note's frequency (16' .. 1').
ORGAN_HARMONICS = np.array([1, 3, 2, 4, 6, 8, 10, 12, 16])
#: Reverb decay times (RT60) drawn per song, in seconds; the send is high-passed here so that the reverb of
#: the previous chord's bass does not blur the new one (a full-band send with a harp release of 250 ms left
#: the previous harp bass within 6 dB of the new bass note 50-150 ms after a chord change).
RT60_RANGE = (0.4, 1.6)
REVERB_LOWCUT_HZ = 150.0
HARP_RELEASE = 0.10


def midi_hz(midi: float, cents: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69 + cents / 100.0) / 12.0)


def _time(n: int, sr: int) -> np.ndarray:
    return np.arange(n, dtype=F32) / F32(sr)


def add_partials(y, t, freqs, amps, taus, phases, sr) -> None:
    """Add exponentially decaying sines to `y` in place (each stopped once it is ~60 dB down; partials above
    0.45 sr or weaker than 1e-4 are skipped)."""
    nyquist = 0.45 * sr
    for f, a, tau, phase in zip(freqs, amps, taus, phases):
        if f >= nyquist or a < 1e-4:
            continue
        m = min(len(t), int(tau * 7 * sr) + 1)
        tt = t[:m]
        y[:m] += F32(a) * np.exp(tt * F32(-1.0 / tau)) * np.sin(tt * F32(2 * np.pi * f) + F32(phase))


def wavetable_lookup(table: np.ndarray, cycles: np.ndarray) -> np.ndarray:
    """`table` read at phases `cycles` (in periods), with linear interpolation."""
    size = len(table)
    index = (cycles % 1.0) * size
    i0 = index.astype(np.int64)
    fraction = (index - i0).astype(F32)
    i0 %= size
    i1 = (i0 + 1) % size
    return table[i0] * (1 - fraction) + table[i1] * fraction


def saw_table(f, cutoff, sr, order=2.0, resonance=0.0, size=2048) -> np.ndarray:
    """One period of a band-limited saw at `f` Hz through a smooth low-pass at `cutoff` Hz (applied to its
    harmonics), with a resonant bump there."""
    n_harmonics = int(min(0.45 * sr / f, size // 2 - 1))
    h = np.arange(1, n_harmonics + 1)
    amp = (1.0 / h) / np.sqrt(1 + (h * f / cutoff) ** (2 * order))
    if resonance:
        amp *= 1 + resonance * np.exp(-0.5 * ((h * f - cutoff) / (0.25 * cutoff + 1)) ** 2)
    spectrum = np.zeros(size // 2 + 1, complex)
    spectrum[1 : n_harmonics + 1] = -1j * amp * size / 2
    return np.fft.irfft(spectrum, size).astype(F32)


def wavetable_morph(cycles, key_times, tables, sr) -> np.ndarray:
    """Crossfade between wavetables at keyframe times (piecewise-linear weights)."""
    n = len(cycles)
    t = np.arange(n) / sr
    out = np.zeros(n, F32)
    k_count = len(key_times)
    for k in range(k_count):
        lo_t = key_times[k - 1] if k > 0 else -1.0
        hi_t = key_times[k + 1] if k + 1 < k_count else 1e9
        a = max(0, int(lo_t * sr))
        b = min(n, int(math.ceil(hi_t * sr)) + 1)
        if a >= b:
            continue
        tt = t[a:b]
        w = np.ones(b - a)
        if k > 0:
            w = np.where(tt < key_times[k], (tt - lo_t) / max(key_times[k] - lo_t, 1e-6), w)
        if k + 1 < k_count:
            w = np.where(tt >= key_times[k], 1 - (tt - key_times[k]) / max(hi_t - key_times[k], 1e-6), w)
        w = np.clip(w, 0, 1).astype(F32)
        out[a:b] += w * wavetable_lookup(tables[k], cycles[a:b])
    return out


@functools.lru_cache(maxsize=256)
def _butter_sos(order: int, cutoff_hz: float | tuple[float, float], kind: str, sr: int) -> np.ndarray:
    """``scipy.signal.butter(..., output="sos")``, designed once per setting: a band song's kit and notes ask
    for the same few filters hundreds of times, and their design took a third of planning a band song. The
    array is shared by every caller: only read it (as ``sosfilt`` does)."""
    from scipy import signal  # (here: ~0.5 s to import, which `cache info` paid via TIMBRES)

    cutoff = list(cutoff_hz) if isinstance(cutoff_hz, tuple) else cutoff_hz
    return signal.butter(order, cutoff, kind, fs=sr, output="sos")


def noise_burst(rng, n, tau_s, sr, lowpass=None, highpass=None) -> np.ndarray:
    """`n` samples of filtered white noise decaying with time constant `tau_s`, peak 1."""
    from scipy import signal  # (here: ~0.5 s to import, which `cache info` paid via TIMBRES)

    x = rng.standard_normal(n)
    if lowpass or highpass:
        if lowpass and highpass:
            sos = _butter_sos(2, (highpass, lowpass), "bandpass", sr)
        elif lowpass:
            sos = _butter_sos(2, lowpass, "lowpass", sr)
        else:
            sos = _butter_sos(2, highpass, "highpass", sr)
        x = signal.sosfilt(sos, x)
    x *= np.exp(-np.arange(n) / (tau_s * sr))
    return (x / (np.abs(x).max() + 1e-9)).astype(F32)


# Each raw synth returns a note of n samples (no release) at amplitude ~1, for a velocity step `vel` (0.2-1)
# and the instrument's parameters `p`; `rng` is the note's own stream.


def raw_string(f, n, vel, p, sr, rng):
    """A plucked string: stretched partials (stiffness), shaped by where it is plucked and how bright it is,
    each decaying faster the higher it is, and a burst of pick noise."""
    t = _time(n, sr)
    k_max = max(1, int(min(p["max_partials"], 0.45 * sr / f)))
    k = np.arange(1, k_max + 1)
    fk = f * k * np.sqrt(1 + p["stiffness"] * k * k)
    amps = np.abs(np.sin(np.pi * k * p["pluck_position"])) / k ** p["rolloff"] + 1e-3
    amps *= np.exp(-(k * f) / (p["brightness_hz"] * (0.45 + 0.55 * vel)))
    amps /= amps.sum()
    tau0 = p["decay_s"] * (110.0 / f) ** p["decay_exponent"]
    taus = tau0 / (1 + p["damping"] * (k - 1) ** 1.3)
    y = np.zeros(n, F32)
    add_partials(y, t, fk, amps, taus, rng.uniform(0, 2 * np.pi, k_max), sr)
    n_attack = max(2, int(p["attack_s"] * sr))
    y[:n_attack] *= np.linspace(0, 1, n_attack, dtype=F32)
    n_burst = min(n, int(0.012 * sr))
    pick = noise_burst(rng, n_burst, 0.002, sr, highpass=p["pick_noise_hz"])
    y[:n_burst] += F32(p["pick_noise"] * vel) * pick[:n_burst]
    return y


def raw_piano(f, n, vel, p, sr, rng):
    """A piano string: up to 16 stretched partials under a hammer's comb, a detuned second string on the
    lowest two (beating), a two-stage decay and a thump."""
    t = _time(n, sr)
    k_max = max(1, int(min(16, 0.45 * sr / f, 7000 / f)))
    k = np.arange(1, k_max + 1)
    stiffness = float(np.clip(p["stiffness"] * (f / 261.6) ** 0.8, 2e-5, 2e-3))
    fk = f * k * np.sqrt(1 + stiffness * k * k)
    hammer = 0.35 + 0.65 * np.abs(np.sin(np.pi * k / 7.3))
    amps = hammer / k ** (2.0 - 1.2 * vel)
    amps /= amps.sum()
    tau = float(np.clip(p["decay_s"] * (261.6 / f) ** 0.65, 0.5, 14.0))
    taus = tau / (1 + 0.15 * (k - 1) * (f / 261.6) ** 0.3)
    y = np.zeros(n, F32)
    add_partials(y, t, fk, amps, taus, rng.uniform(0, 2 * np.pi, k_max), sr)
    detune = 2 ** (p["detune_cents"] / 1200.0)
    add_partials(y, t, fk[:2] * detune, amps[:2] * 0.6, taus[:2], rng.uniform(0, 2 * np.pi, 2), sr)
    # Two-stage decay: the prompt sound, then the aftersound.
    prompt = p["prompt_share"]
    y *= prompt * np.exp(t * F32(-1.0 / (0.3 * (261.6 / f) ** 0.3))) + (1 - prompt)
    n_attack = max(2, int(0.002 * sr))
    y[:n_attack] *= np.linspace(0, 1, n_attack, dtype=F32)
    n_burst = min(n, int(0.03 * sr))
    y[:n_burst] += (
        F32(0.06 * vel * vel) * noise_burst(rng, n_burst, 0.004, sr, lowpass=2500 + 3000 * vel)[:n_burst]
    )
    return y / 1.4


def raw_epiano(f, n, vel, p, sr, rng):
    """An FM electric piano (carrier = modulator, a decaying index) with a short inharmonic tine."""
    t = _time(n, sr)
    index = p["fm_index"] * (0.3 + 0.7 * vel) * np.exp(t * F32(-1.0 / p["fm_decay_s"])) + F32(p["fm_sustain"])
    index *= F32(min(1.0, (500.0 / f) ** 0.5))
    phase = t * F32(2 * np.pi * f)
    y = np.sin(phase + index * np.sin(phase))
    tau = float(np.clip(p["decay_s"] * (261.6 / f) ** 0.5, 0.4, 6.0))
    y *= np.exp(t * F32(-1.0 / tau)) * F32(0.8) + F32(0.2) * np.exp(t * F32(-1.0 / (3 * tau)))
    tine = f * p["tine_ratio"]
    if tine < 0.45 * sr:
        m = min(n, int(0.25 * sr))
        decay = np.exp(t[:m] * F32(-1 / 0.03))
        y[:m] += F32(p["tine_level"] * vel) * decay * np.sin(t[:m] * F32(2 * np.pi * tine))
    n_attack = max(2, int(0.0015 * sr))
    y[:n_attack] *= np.linspace(0, 1, n_attack, dtype=F32)
    return y


@functools.lru_cache(maxsize=256)
def _organ_table(drawbars: tuple[int, ...], keep: tuple[bool, ...]) -> np.ndarray:
    """One period (of half the written frequency) of the drawbars' sum, the harmonics in `keep` only."""
    x = np.arange(2048) / 2048
    table = np.zeros(2048)
    for h, level, kept in zip(ORGAN_HARMONICS, drawbars, keep):
        if level > 0 and kept:
            table += 10 ** ((level - 8) * 3 / 20) * np.sin(2 * np.pi * h * x)
    return (table / (np.abs(table).max() + 1e-9)).astype(F32)


def raw_organ(f, n, vel, p, sr, rng):
    """A drawbar organ (harmonics of f/2 under Nyquist), sometimes a decaying percussion harmonic, a key
    click."""
    t = _time(n, sr)
    keep = tuple(bool(k) for k in ORGAN_HARMONICS * f / 2 < 0.45 * sr)
    y = wavetable_lookup(_organ_table(tuple(p["drawbars"]), keep), (f / 2) * np.arange(n) / sr)
    if p["percussion"] > 0 and 3 * f < 0.45 * sr:
        percussion = np.sin(t * F32(2 * np.pi * f * p["percussion_harmonic"]))
        y += F32(p["percussion"]) * np.exp(t * F32(-1 / 0.25)) * percussion
    n_attack = max(2, int(0.005 * sr))
    y[:n_attack] *= np.linspace(0, 1, n_attack, dtype=F32)
    n_click = min(n, int(0.006 * sr))
    y[:n_click] += F32(p["click"]) * noise_burst(rng, n_click, 0.0015, sr, highpass=1000)[:n_click]
    return y * F32(0.75 + 0.25 * vel)


def raw_pad(f, n, vel, p, sr, rng):
    """A brass or saw pad (and the synth bass, with a sine under it): two detuned saws through a filter
    envelope (start, peak, sustain cut-offs) and an amplitude envelope."""
    duration = n / sr
    attack, decay = p["filter_attack_s"], p["filter_decay_s"]
    key_times = [0.0, attack, attack + decay, max(duration, attack + decay + 0.01)]
    sustain = p["cutoff_sustain_hz"]
    cutoffs = [p["cutoff_start_hz"], p["cutoff_peak_hz"] * (0.5 + 0.5 * vel), sustain, sustain]
    y = np.zeros(n, F32)
    for d in (-1, 1):
        fd = f * 2 ** (d * p["detune_cents"] / 1200)
        tables = [
            saw_table(fd, max(fc, fd * 1.2), sr, order=p["filter_order"], resonance=p["resonance"])
            for fc in cutoffs
        ]
        y += wavetable_morph(fd * np.arange(n) / sr + rng.random(), key_times, tables, sr)
    t = _time(n, sr)
    attack, level = p["attack_s"], p["sustain"]
    envelope = np.minimum(1.0, t / F32(attack)) * (
        level + (1 - level) * np.exp(-np.maximum(t - attack, 0) / p["decay_s"])
    )
    if p["sine_level"]:
        y += F32(p["sine_level"]) * np.sin(t * F32(2 * np.pi * f))
    return (y * envelope.astype(F32)) * F32(0.35)


def raw_kalimba(f, n, vel, p, sr, rng):
    """A kalimba: the fundamental, a weak octave and a short inharmonic overtone, a click."""
    t = _time(n, sr)
    y = np.zeros(n, F32)
    tau = float(np.clip(p["decay_s"] * (261.6 / f) ** 0.3, 0.3, 3.0))
    freqs, amps, taus = [f, 2 * f, p["overtone_ratio"] * f], [1.0, 0.06, 0.25 * vel], [tau, tau * 0.3, 0.05]
    add_partials(y, t, freqs, amps, taus, rng.uniform(0, 2 * np.pi, 3), sr)
    n_attack = max(2, int(0.001 * sr))
    y[:n_attack] *= np.linspace(0, 1, n_attack, dtype=F32)
    n_burst = min(n, int(0.008 * sr))
    y[:n_burst] += F32(0.15 * vel) * noise_burst(rng, n_burst, 0.001, sr, highpass=2000)[:n_burst]
    return y


_RAW = {
    "string": raw_string, "piano": raw_piano, "epiano": raw_epiano, "organ": raw_organ, "pad": raw_pad,
    "kalimba": raw_kalimba,
}  # fmt: skip
_ORGAN_PRESETS = (
    [8, 8, 8, 0, 0, 0, 0, 0, 0], [8, 8, 8, 8, 8, 8, 8, 8, 8], [8, 3, 8, 0, 0, 0, 0, 0, 0],
    [6, 8, 8, 6, 0, 0, 0, 0, 0], [8, 8, 8, 8, 0, 0, 0, 0, 6], [0, 0, 8, 8, 6, 4, 0, 0, 0],
)  # fmt: skip


#: Per instrument: (synth, release in seconds, parameters). A parameter given as a (low, high) pair is drawn
#: uniformly per song and a list is a choice, each in the order written (the order of the song's draws).
_INSTRUMENTS = {
    "guitar_steel": ("string", 0.08, dict(
        max_partials=30, stiffness=2e-5, pluck_position=(0.1, 0.2), rolloff=(0.8, 1.1),
        brightness_hz=(2500, 5000), decay_s=(2.0, 3.5), decay_exponent=0.5, damping=(0.08, 0.2),
        attack_s=0.001, pick_noise=(0.05, 0.15), pick_noise_hz=1500)),
    "guitar_nylon": ("string", 0.1, dict(
        max_partials=20, stiffness=1e-5, pluck_position=(0.15, 0.25), rolloff=(1.1, 1.5),
        brightness_hz=(1200, 2200), decay_s=(1.5, 2.5), decay_exponent=0.5, damping=(0.15, 0.3),
        attack_s=0.002, pick_noise=(0.02, 0.06), pick_noise_hz=1500)),
    "guitar_jazz": ("string", 0.06, dict(
        max_partials=16, stiffness=1e-5, pluck_position=(0.2, 0.3), rolloff=(1.3, 1.7),
        brightness_hz=(900, 1500), decay_s=(1.2, 2.0), decay_exponent=0.4, damping=(0.2, 0.4), attack_s=0.002,
        pick_noise=0.03, pick_noise_hz=1500)),
    "harp": ("string", HARP_RELEASE, dict(
        max_partials=14, stiffness=1e-5, pluck_position=(0.3, 0.45), rolloff=(1.3, 1.8),
        brightness_hz=(2000, 4000), decay_s=(3.0, 5.0), decay_exponent=0.6, damping=(0.05, 0.15),
        attack_s=0.002, pick_noise=0.02, pick_noise_hz=1500)),
    "piano": ("piano", 0.12, dict(
        stiffness=(2e-4, 5e-4), decay_s=(2.5, 4.5), detune_cents=(0.8, 2.5), prompt_share=(0.4, 0.7))),
    "epiano": ("epiano", 0.15, dict(
        fm_index=(1.0, 2.2), fm_decay_s=(0.15, 0.4), fm_sustain=(0.05, 0.25), decay_s=(1.2, 2.5),
        tine_ratio=[7.0, 13.0], tine_level=(0.1, 0.3))),
    "organ": ("organ", 0.04, dict(
        drawbars=_ORGAN_PRESETS, percussion=[0, 0, 0.3], percussion_harmonic=[2, 3], click=(0.05, 0.15))),
    "brass": ("pad", 0.15, dict(
        filter_attack_s=(0.04, 0.1), filter_decay_s=(0.2, 0.5), cutoff_start_hz=(300, 500),
        cutoff_peak_hz=(2500, 4500), cutoff_sustain_hz=(900, 1600), filter_order=2.0, resonance=0.3,
        detune_cents=(3, 8), attack_s=(0.02, 0.06), decay_s=0.3, sustain=0.8, sine_level=0.0)),
    "pad": ("pad", 0.35, dict(
        filter_attack_s=(0.3, 0.8), filter_decay_s=(0.5, 1.5), cutoff_start_hz=(300, 600),
        cutoff_peak_hz=(1500, 3000), cutoff_sustain_hz=(700, 1300), filter_order=1.5, resonance=0.0,
        detune_cents=(6, 14), attack_s=(0.15, 0.4), decay_s=1.0, sustain=0.85, sine_level=0.0)),
    "kalimba": ("kalimba", 0.2, dict(decay_s=(0.8, 1.6), overtone_ratio=(5.6, 6.4))),
    "bass_fingered": ("string", 0.04, dict(
        max_partials=20, stiffness=1e-5, pluck_position=(0.2, 0.28), rolloff=(1.0, 1.4),
        brightness_hz=(600, 1200), decay_s=(1.0, 1.8), decay_exponent=0.2, damping=(0.2, 0.4), attack_s=0.004,
        pick_noise=0.02, pick_noise_hz=1500)),
    "bass_picked": ("string", 0.04, dict(
        max_partials=25, stiffness=2e-5, pluck_position=(0.08, 0.14), rolloff=(0.8, 1.1),
        brightness_hz=(1200, 2200), decay_s=(1.0, 1.6), decay_exponent=0.2, damping=(0.15, 0.3),
        attack_s=0.002, pick_noise=0.06, pick_noise_hz=1500)),
    "bass_upright": ("string", 0.05, dict(
        max_partials=14, stiffness=1e-5, pluck_position=(0.25, 0.35), rolloff=(1.4, 1.8),
        brightness_hz=(500, 900), decay_s=(0.6, 1.0), decay_exponent=0.1, damping=(0.4, 0.7), attack_s=0.008,
        pick_noise=0.02, pick_noise_hz=400)),
    "bass_synth": ("pad", 0.05, dict(
        filter_attack_s=0.005, filter_decay_s=(0.08, 0.2), cutoff_start_hz=(200, 400),
        cutoff_peak_hz=(900, 2000), cutoff_sustain_hz=(250, 450), filter_order=2.0, resonance=(0.3, 1.0),
        detune_cents=(0, 4), attack_s=0.004, decay_s=(0.4, 1.0), sustain=0.6, sine_level=0.8)),
}  # fmt: skip


def draw_sound(name: str, rng: np.random.Generator) -> dict:
    """One song's version of an instrument (JSON-able): its synth ``kind``, ``params``, ``release`` in seconds
    and the ``seed`` of its notes' own streams. A pad is soft or (half the time) brass."""
    if name == "pad" and rng.random() < 0.5:
        name = "brass"
    kind, release, spec = _INSTRUMENTS[name]
    params = {}
    for key, value in spec.items():
        if isinstance(value, tuple) and key == "drawbars":
            params[key] = list(value[int(rng.integers(len(value)))])
        elif isinstance(value, tuple):
            params[key] = float(rng.uniform(*value))
        elif isinstance(value, list):
            params[key] = float(rng.choice(value))
        else:
            params[key] = value
    return {"kind": kind, "params": params, "release": release, "seed": int(rng.integers(1 << 30))}


def sub_octave(sound: dict) -> int:
    """Semitones below the written note at which a sound has a component (0: none).

    The organ's 16' drawbar (f/2), and also its 5 1/3' quint (3 f/2): without the 16' the quint makes the
    tone periodic at f/2 (partials f/2 x {2, 3, 4, ...}: a "resultant", missing-fundamental sub-octave), so
    either counts as the sub-octave component."""
    if sound["kind"] == "organ" and (
        sound["params"]["drawbars"][0] > 0 or sound["params"]["drawbars"][1] > 0
    ):
        return SUB_OCTAVE["organ"][0]
    return 0


def without_sub_octave(sound: dict) -> dict:
    """The sound with the organ's 16' and 5 1/3' drawbars pushed in: every partial left is then a multiple of
    the written note's fundamental."""
    if sound["kind"] != "organ":
        return sound
    params = dict(sound["params"], drawbars=[0, 0] + list(sound["params"]["drawbars"][2:]))
    return dict(sound, params=params)


class Synth:
    """Renders one track's notes for a song, caching each (pitch, velocity step)'s raw note."""

    def __init__(self, sound: dict, sr: int, cents: float):
        self.kind, self.params, self.release, self.seed = (
            sound["kind"],
            sound["params"],
            sound["release"],
            sound["seed"],
        )
        self.sr = sr
        self.cents = cents
        self.cache: dict[tuple[int, float], np.ndarray] = {}

    def note(self, midi: int, duration: float, velocity: float) -> np.ndarray:
        """A note of `duration` seconds plus its release (a raised-cosine fade). The timbre follows the
        velocity in steps of 0.1 (from 0.2 to 1), the level exactly."""
        sr = self.sr
        step = round(min(1.0, max(0.2, velocity)) * 10) / 10
        n_held = max(8, int(duration * sr))
        n_release = int(self.release * sr)
        need = n_held + n_release
        raw = self.cache.get((midi, step))
        if raw is None or len(raw) < need:
            # Raw notes are rendered in whole seconds, at least 2, from the note's own stream: a longer one
            # replaces a shorter one in the cache (the song's notes are rendered in order).
            n = int(math.ceil(max(need / sr, 2.0)) * sr)
            rng = np.random.default_rng([self.seed, midi, int(step * 10)])
            raw = _RAW[self.kind](midi_hz(midi, self.cents), n, step, self.params, sr, rng)
            self.cache[(midi, step)] = raw
        y = raw[:need].copy()
        if n_release:
            y[n_held:] *= (0.5 * (1 + np.cos(np.linspace(0, np.pi, n_release)))).astype(F32)
        return y * F32(velocity / step)


def render_track(
    notes: list[tuple[float, float, int, float]], synth: Synth, n_samples: int, sr: int
) -> np.ndarray:
    """(onset, offset, MIDI, velocity) notes played by `synth` into `n_samples` (releases cut at the end)."""
    out = np.zeros(n_samples + sr * 2, F32)
    for onset, offset, midi, velocity in notes:
        y = synth.note(midi, offset - onset, velocity)
        a = int(round(onset * sr))
        out[a : a + len(y)] += y[: len(out) - a]
    return out[:n_samples]


def draw_effects(instrument: str, rng: np.random.Generator) -> dict:
    """A track's effects (JSON-able): a guitar's body resonances, the organ's rotary-speaker-like tremolo,
    sometimes an electric piano's tremolo, the upright bass's body peak."""
    effects = {}
    if instrument.startswith("guitar"):
        effects["body"] = [[float(rng.uniform(95, 120)), 0.5], [float(rng.uniform(190, 240)), 0.35],
                           [float(rng.uniform(380, 480)), 0.2]]  # fmt: skip
    if instrument == "organ":
        effects["tremolo"] = [float(rng.choice([0.8, 6.5])), 0.12]
    if instrument == "epiano" and rng.random() < 0.5:
        effects["tremolo"] = [float(rng.uniform(3, 6)), 0.15]
    if instrument == "bass_upright":
        effects["peak"] = float(rng.uniform(90, 130))
    return effects


def apply_effects(y: np.ndarray, effects: dict, sr: int, start: int = 0) -> np.ndarray:
    """A track through its (linear) effects; `start`: the song's sample index of ``y[0]`` (tremolo phase)."""
    from scipy import signal  # (here: ~0.5 s to import, which `cache info` paid via TIMBRES)

    for f0, gain in effects.get("body", ()):
        b, a = signal.iirpeak(f0, 4.0, fs=sr)
        y = y + gain * signal.lfilter(b, a, y).astype(F32)
    if "tremolo" in effects:
        rate, depth = effects["tremolo"]
        t = (np.arange(len(y)) + start) / sr
        y = y * (1 + depth * np.sin(2 * np.pi * rate * t)).astype(F32)
    if "peak" in effects:
        b, a = signal.iirpeak(effects["peak"], 3.0, fs=sr)
        y = y + 0.4 * signal.lfilter(b, a, y).astype(F32)
    return y


# ---------------------------------------------------------------------------------------------- drums


def draw_kit(rng: np.random.Generator, sr: int) -> dict[str, np.ndarray]:
    """A song's drum kit: each drum's sample (peak 1), synthesised from drawn tunings and decays."""
    from scipy import signal  # (here: ~0.5 s to import, which `cache info` paid via TIMBRES)

    u = rng.uniform  # the order of the draws below is the song's random stream: keep it
    kit = {}
    n = int(0.5 * sr)
    t = np.arange(n) / sr
    f0, f1 = u(45, 60), u(110, 170)
    sweep = f0 + (f1 - f0) * np.exp(-t / u(0.025, 0.045))
    kit["kick"] = np.sin(2 * np.pi * np.cumsum(sweep) / sr) * np.exp(-t / u(0.15, 0.3)) + 0.3 * noise_burst(
        rng, n, 0.002, sr, lowpass=4000
    )
    n = int(0.4 * sr)
    t = np.arange(n) / sr
    kit["snare"] = (
        0.5 * np.sin(2 * np.pi * u(170, 210) * t) * np.exp(-t / 0.06)
        + 0.25 * np.sin(2 * np.pi * u(310, 350) * t) * np.exp(-t / 0.05)
        + 0.9 * noise_burst(rng, n, u(0.08, 0.17), sr, lowpass=7000, highpass=1200)
    )
    n = int(0.1 * sr)
    t = np.arange(n) / sr
    kit["rim"] = (np.sin(2 * np.pi * u(1600, 2000) * t) * 0.6 + 0.4 * np.sin(2 * np.pi * 800 * t)) * np.exp(
        -t / 0.008
    ) + 0.3 * noise_burst(rng, n, 0.003, sr, highpass=2000)
    metal = [u(3000, 3500), u(4100, 4600), u(5200, 5800), u(6500, 7200), u(7600, 8300), u(8800, 9800)]

    def cymbal(duration, tau, noise_amount, highpass):
        """Six square waves at inharmonic frequencies and noise, high-passed (the 808's metal)."""
        nn = int(duration * sr)
        tt = np.arange(nn) / sr
        x = sum(np.sign(np.sin(2 * np.pi * m * tt + u(0, 6))) for m in metal) / 6.0
        x = signal.sosfilt(_butter_sos(2, highpass, "highpass", sr), x)
        x = x * 0.5 + noise_amount * noise_burst(rng, nn, 10, sr, highpass=highpass)
        return x * np.exp(-tt / tau)

    kit["hat"] = cymbal(0.15, u(0.025, 0.05), 0.8, 7000)
    kit["ohat"] = cymbal(0.6, u(0.2, 0.35), 0.8, 6000)
    kit["ride"] = cymbal(1.5, u(0.6, 1.0), 0.4, 3000)
    kit["crash"] = cymbal(2.0, u(0.9, 1.4), 1.0, 2500)
    for name, base in (("tom_lo", u(85, 105)), ("tom_mid", u(115, 140)), ("tom_hi", u(150, 190))):
        nn = int(0.5 * sr)
        tt = np.arange(nn) / sr
        pitch = base * (1 + 0.4 * np.exp(-tt / 0.03))
        kit[name] = np.sin(2 * np.pi * np.cumsum(pitch) / sr) * np.exp(-tt / 0.22) + 0.15 * noise_burst(
            rng, nn, 0.01, sr, lowpass=3000
        )
    nn = int(0.12 * sr)
    tt = np.arange(nn) / sr
    kit["shaker"] = noise_burst(rng, nn, 10, sr, highpass=4500) * (tt / 0.015).clip(0, 1) * np.exp(-tt / 0.04)
    nn = int(0.3 * sr)
    tt = np.arange(nn) / sr
    kit["brush"] = (
        noise_burst(rng, nn, 10, sr, lowpass=5000, highpass=600) * (tt / 0.02).clip(0, 1) * np.exp(-tt / 0.1)
    )
    return {name: (x / (np.abs(x).max() + 1e-9)).astype(F32) for name, x in kit.items()}


# ---------------------------------------------------------------------------------------------- the mix


def reverb_impulse_response(rng: np.random.Generator, sr: int, rt60: float) -> np.ndarray:
    """A room: low-passed exponentially decaying noise after an 8 ms pre-delay, with five early reflections,
    unit energy."""
    from scipy import signal  # (here: ~0.5 s to import, which `cache info` paid via TIMBRES)

    n = int(rt60 * sr)
    t = np.arange(n) / sr
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    ir = signal.sosfilt(signal.butter(1, float(rng.uniform(3000, 6000)), "lowpass", fs=sr, output="sos"), ir)
    ir[: int(0.008 * sr)] = 0
    for d in rng.uniform(0.01, 0.04, 5):
        ir[int(d * sr)] += rng.uniform(0.3, 0.8) * rng.choice([-1, 1])
    return ir / np.sqrt((ir**2).sum())


def reverb_send(x: np.ndarray, sr: int) -> np.ndarray:
    from scipy import signal  # (here: ~0.5 s to import, which `cache info` paid via TIMBRES)

    return signal.sosfilt(_butter_sos(2, REVERB_LOWCUT_HZ, "highpass", sr), x)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-12)


@dataclass
class MixDraws:
    """What a song draws after its score: the drum kit (None without drum hits), the bass and drum levels
    relative to the primary chord instrument, the secondary chord instrument's (None without one), the reverb
    (RT60, wet share, impulse response), the noise floor's white noise and its level in dB."""

    kit: dict[str, np.ndarray] | None
    bass_gain: float
    drums_gain: float
    secondary_gain: float | None
    rt60: float
    wet: float
    impulse_response: np.ndarray
    noise: np.ndarray
    noise_db: float

    def settings(self) -> dict:
        """The scalar draws, JSON-able."""
        return {
            "bass_gain": self.bass_gain, "drums_gain": self.drums_gain, "secondary_gain": self.secondary_gain,
            "reverb_rt60": self.rt60, "reverb_wet": self.wet,
        }  # fmt: skip


def draw_mix(
    rng: np.random.Generator, sr: int, n_samples: int, with_kit: bool, with_secondary: bool
) -> MixDraws:
    """Draw the mix in the stream's order. The kit's noise comes first, so every draw after it depends on the
    sample rate."""
    kit = draw_kit(rng, sr) if with_kit else None
    bass_gain, drums_gain = float(rng.uniform(0.7, 1.1)), float(rng.uniform(0.45, 0.8))
    secondary_gain = float(rng.uniform(0.45, 0.75)) if with_secondary else None
    rt60 = float(rng.uniform(*RT60_RANGE))
    wet = float(rng.uniform(0.08, 0.25))
    impulse_response = reverb_impulse_response(rng, sr, rt60)
    noise = rng.standard_normal(n_samples)
    noise_db = float(rng.uniform(-55, -42))
    return MixDraws(kit, bass_gain, drums_gain, secondary_gain, rt60, wet, impulse_response, noise, noise_db)


def drum_track(
    hits: list[tuple[float, str, float]], kit: dict[str, np.ndarray], n_samples: int, sr: int
) -> np.ndarray:
    """(time, drum, velocity) hits played on `kit`."""
    y = np.zeros(n_samples + sr * 3, F32)
    for time, drum, velocity in hits:
        a = int(round(time * sr))
        sample = kit[drum]
        y[a : a + len(sample)] += F32(velocity) * sample
    return y[:n_samples]


def reverberate(x: np.ndarray, draws: MixDraws, sr: int) -> np.ndarray:
    """The dry signal mixed with its reverb (the send high-passed at `REVERB_LOWCUT_HZ`)."""
    from scipy import signal  # (here: ~0.5 s to import, which `cache info` paid via TIMBRES)

    wet = draws.wet
    return (1 - wet) * x + wet * signal.fftconvolve(reverb_send(x, sr), draws.impulse_response)[: len(x)]


def mix_tracks(tracks: list[tuple[float, np.ndarray]], draws: MixDraws, sr: int) -> np.ndarray:
    """The song from its (gain, track) pairs: each track at its gain over its own RMS (of its non-silent
    samples), the reverb, the noise floor at `draws.noise_db` below the mix, peak at -1 dBFS; float32."""
    from scipy import signal  # (here: ~0.5 s to import, which `cache info` paid via TIMBRES)

    mix = np.zeros(len(draws.noise), np.float64)
    for gain, y in tracks:
        mix += gain * 0.1 * y / rms(y[y != 0]) if np.any(y) else 0
    mix = reverberate(mix, draws, sr)
    noise = signal.lfilter([1.0], [1.0, -0.95], draws.noise)  # a reddish noise floor
    mix += noise / rms(noise) * rms(mix) * 10 ** (draws.noise_db / 20)
    mix *= 10 ** (-1 / 20) / (np.abs(mix).max() + 1e-12)
    return mix.astype(np.float32)
