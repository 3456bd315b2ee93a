"""The held-out ``"independent"`` style of the demo songs: written separately from the training style.

Used only for evaluation (`benchmarks/chords.py`), so that a score measures generalisation beyond one
generator rather than memory of it. What differs from `audiotrain.datasets.chord_demo`:

- progressions: functional loops in a key (pop ``I V vi IV``, jazz ``ii7 V7 Imaj7``, blues, minor
  ``i bVI bIII bVII``, descending slash-chord lines ``I V/3 vi I/5 IV I/3 ii7 V7``, pedals), chords coloured
  into sevenths and extensions, in 4/4 or 3/4 with one or two chords per bar;
- voicings: guitar-like spread shapes (intervals of at least a minor third between neighbours, 4-6 notes)
  and shell voicings of seventh chords that leave the fifth out (as players do; the label keeps it);
- timbres: Karplus-Strong ``guitar`` strums, two-operator FM ``epiano``, bowed ``strings`` (sawtooth
  partials with vibrato); basses: Karplus-Strong ``bass_picked``, a sine ``bass_sub`` and an inharmonic
  ``bass_upright``, down to D1;
- bass patterns: rock eighths, 1-5-8 arpeggios, syncopated figures with an approach note, jazz walking,
  sparse whole notes; the labelled bass sounds on each downbeat;
- drums (a damped 55 Hz kick, clap, shaker sixteenths, a count-in), pink noise, mains hum, a reverb tail,
  and tunings drawn from a normal law (20 cents) up to +-48 cents.
"""

from __future__ import annotations

from audiotrain.chords.harte import parse_harte
from audiotrain.chords.lab import ChordSegment
from audiotrain.chords.vocabulary import CHORD_TYPES, decode_label

import numpy as np

#: Bump whenever this style's output changes (it started at 3, the training style's version when it was
#: split off, so that the sets measured then stay the same). 4: shell voicings leave out the chord's
#: perfect fifth (version 3 left out the note a fifth above the voicing's lowest note, which dropped the
#: seventh of a seventh chord voiced from its third: a Cmaj7 labelled so sounded as plain C), and the
#: electric piano keeps every note's pitch class (version 3 clamped notes above C6 to C6: a voicing's top
#: notes became a C, so a chord could lose its third or seventh and gain a C).
#: 5: the strings keep the shape's lowest note lowest (version 4 raised each note below G3 an octave on
#: its own, so a higher note of the shape could sound below it: in a song without a bass instrument a D:maj
#: voiced D3-F#3-A3 sounded A3-D4-F#4, a D:maj/5).
INDEPENDENT_VERSION = 5
#: The seed of the songs' random draws: still version 3's, so that versions 4 and 5 play the same songs and
#: labels, with only the fixes above (and, within a song, the draws after a changed voicing) changed.
_SONG_STREAM = 3
TIMBRES = ("guitar", "epiano", "strings")
BASS_TIMBRES = ("bass_picked", "bass_sub", "bass_upright")
BASS_PATTERNS = ("eighths", "arpeggio", "syncopated", "walking", "sparse")
_LOWEST_BASS = 26  # D1

# Progressions as (degree semitones above the key, chord type, bass interval above the root).
_MAJOR = (
    ((0, "maj", 0), (7, "maj", 0), (9, "min", 0), (5, "maj", 0)),
    ((0, "maj", 0), (9, "min", 0), (5, "maj", 0), (7, "maj", 0)),
    ((2, "min7", 0), (7, "7", 0), (0, "maj7", 0), (9, "min7", 0)),
    ((4, "min7", 0), (9, "min7", 0), (2, "min7", 0), (7, "7", 0)),
    ((0, "7", 0), (5, "7", 0), (0, "7", 0), (7, "7", 0)),
    ((0, "maj", 0), (7, "maj", 4), (9, "min", 0), (0, "maj", 7), (5, "maj", 0), (0, "maj", 4), (2, "min7", 0),
     (7, "7", 0)),
    ((0, "maj", 0), (5, "maj", 7), (0, "maj", 0), (7, "maj", 7)),
    ((5, "maj7", 0), (7, "sus4", 0), (7, "maj", 0), (0, "maj", 4)),
)  # fmt: skip
_MINOR = (
    ((0, "min", 0), (8, "maj", 0), (3, "maj", 0), (10, "maj", 0)),
    ((0, "min", 0), (5, "min", 0), (7, "7", 0), (0, "min", 0)),
    ((2, "hdim7", 0), (7, "7(b9)", 0), (0, "min7", 0), (0, "min7", 10)),
    ((0, "min", 0), (0, "min", 3), (5, "min", 0), (7, "7", 4)),
)
# Colourings: a chord type may be replaced by a richer one with the same function.
_COLOURS = {
    "maj": ("maj7", "maj6", "maj(9)", "maj9", "sus2", "maj6(9)", "5", "aug", "maj13"),
    "min": ("min7", "min6", "min(9)", "min9", "minmaj7", "min11", "min13"),
    "7": ("9", "13", "7(#9)", "7(b9)", "sus4(b7)", "11"),
    "maj7": ("maj9", "maj13"),
    "min7": ("min9", "min11", "dim7"),
}


def _pcs(type_name: str, root: int) -> list[int]:
    return sorted(parse_harte(decode_label(CHORD_TYPES.index(type_name), root)).pitch_classes)


def _progression(config, rng, bar: float, beats_per_bar: int, beat: float, start: float, end: float):
    key = int(rng.integers(12))
    loops = _MINOR if rng.random() < 0.35 else _MAJOR
    chords, t = [], start
    while t < end - beat:
        loop = loops[rng.integers(len(loops))]
        per_bar = 2 if rng.random() < 0.3 else 1
        for offset, type_name, bass_interval in loop:
            length = bar / per_bar if rng.random() < 0.85 else 2 * bar / per_bar
            stop = min(t + length, end)
            if stop - t < beat:
                break
            if rng.random() < 0.3 and type_name in _COLOURS:
                type_name = str(rng.choice(_COLOURS[type_name]))
            root = (key + offset) % 12
            tones = _pcs(type_name, root)
            bass = (root + bass_interval) % 12
            if bass not in tones:
                bass = root
            if bass == root and rng.random() < 0.08 and len(tones) > 2:
                bass = int(rng.choice([pc for pc in tones if pc != root]))
            chords.append((t, stop, type_name, root, bass))
            t = stop
        if rng.random() < 0.03:
            chords.append((t, min(t + bar, end), None, -1, -1))
            t = chords[-1][1]
    return chords


def _spread_voicing(
    tones: list[int], root: int, low_pc: int, rng: np.random.Generator, shell: bool
) -> list[int]:
    """A guitar-like spread voicing: `low_pc` lowest in MIDI 40-51, then a tone at least 3 semitones above
    the previous one, cycling through the chord tones, up to 4-6 notes below MIDI 80. A `shell` voicing of a
    chord of four or more tones leaves out its perfect fifth (unless that is the lowest note), as players
    do: the rest of the chord, its seventh included, still sounds."""
    if shell and len(tones) >= 4:
        fifth = (root + 7) % 12
        tones = [pc for pc in tones if pc != fifth or pc == low_pc]
    notes = [40 + (low_pc - 40) % 12]
    rest = [pc for pc in tones if pc != low_pc]
    order = list(rng.permutation(rest)) if rest else []
    wanted = int(rng.integers(4, 7))
    k = 0
    while len(notes) < max(wanted, len(tones)) and order:
        pc = int(order[k % len(order)])
        candidate = notes[-1] + 3 + (pc - notes[-1] - 3) % 12
        if candidate >= 80:
            break
        notes.append(candidate)
        k += 1
    missing = set(tones) - {n % 12 for n in notes}
    notes += [52 + (pc - 52) % 12 for pc in missing]
    return sorted(set(notes))


def _bass_part(pattern, start, end, beat, bass_pc, tones, next_bass, rng):
    base = _LOWEST_BASS + (bass_pc - _LOWEST_BASS) % 12
    fifth = base + 7
    out = []
    if pattern == "sparse":
        return [(start, end - 0.01, base, 1.0)]
    if pattern == "eighths":
        for k, t in enumerate(np.arange(start, end - 0.05, beat / 2)):
            out.append((t, min(t + 0.45 * beat, end), base, 1.0 if k % 2 == 0 else 0.7))
        return out
    if pattern == "arpeggio":  # 1 - 5 - 8 - 5 in eighths; the fifth is a chord tone of most chords
        figure = [base, fifth if (bass_pc + 7) % 12 in tones else base + 12, base + 12, base]
        for k, t in enumerate(np.arange(start, end - 0.05, beat / 2)):
            out.append(
                (t, min(t + 0.48 * beat, end), figure[k % 4] if k % 4 != 1 or k % 8 < 4 else base, 0.8)
            )
        return out
    if (
        pattern == "syncopated"
    ):  # dotted quarter, eighth, half; an approach note on the "and" of the last beat
        for t0 in np.arange(start, end - 0.05, 4 * beat):
            for rel, length in ((0.0, 1.5), (1.5, 0.5), (2.0, 1.5)):
                if t0 + rel * beat < end - 0.05:
                    out.append((t0 + rel * beat, min(t0 + (rel + length) * beat, end), base, 0.9))
        if next_bass is not None and end - start >= 2 * beat:
            t = end - 0.5 * beat
            out = [(a, min(b, t), m, v) for a, b, m, v in out if a < t]
            target = _LOWEST_BASS + (next_bass - _LOWEST_BASS) % 12
            out.append((t, end, target - 1, 0.7))
        return out
    # walking: quarter notes, labelled bass on 1 and 3, a chord tone on 2, an approach on 4
    others = [pc for pc in tones if pc != bass_pc] or [bass_pc]
    for k, t in enumerate(np.arange(start, end - 0.05, beat)):
        if k % 4 == 1:
            midi = _LOWEST_BASS + 12 + (int(rng.choice(others)) - _LOWEST_BASS) % 12
        elif k % 4 == 3 and next_bass is not None and t + beat >= end - 0.05:
            midi = _LOWEST_BASS + (next_bass - _LOWEST_BASS) % 12 + int(rng.choice([-1, 1]))
        else:
            midi = base if k % 4 == 0 else base + 12
        out.append((t, min(t + 0.9 * beat, end), int(midi), 1.0 if k % 4 == 0 else 0.75))
    return out


def plan_independent_song(config, index: int):
    """The score of song ``index`` of an independent-style set (see the module docstring)."""
    from audiotrain.datasets.chord_demo import DemoSong, Note

    rng = np.random.default_rng([config.seed, index, _SONG_STREAM, 23])
    tempo = float(rng.uniform(*config.tempo_range))
    beat = 60.0 / tempo
    beats_per_bar = 3 if rng.random() < 0.2 else 4
    bar = beats_per_bar * beat
    lead_in = bar * int(rng.integers(1, 3)) if 2 * bar < 5 else bar
    if lead_in >= config.song_seconds - 1.0 - beat:  # no chord would fit (a song near the least length)
        lead_in = beat
    chords = _progression(config, rng, bar, beats_per_bar, beat, lead_in, config.song_seconds - 1.0)
    end = chords[-1][1]
    duration = end + float(rng.uniform(0.5, 1.5))
    timbres = [str(t) for t in rng.choice(config.timbres, size=min(len(config.timbres), 2), replace=False)]
    timbres = timbres[: 1 if rng.random() < 0.4 else 2]
    bass_instrument = str(rng.choice(BASS_TIMBRES)) if rng.random() < 0.9 else None
    pattern = str(rng.choice(BASS_PATTERNS))
    strum = [0.0, 1.0, 1.5, 2.5, 3.0][: int(rng.integers(2, 6))]
    notes, segments = [], [ChordSegment(0.0, lead_in, "N")]
    for i, (start, stop, type_name, root, bass_pc) in enumerate(chords):
        if type_name is None:
            segments.append(ChordSegment(start, stop, "N"))
            continue
        label = decode_label(CHORD_TYPES.index(type_name), root, bass_pc)
        segments.append(ChordSegment(start, stop, label))
        tones = _pcs(type_name, root)
        low_pc = int(rng.choice(tones)) if bass_instrument and rng.random() < 0.6 else bass_pc
        voicing = _spread_voicing(
            tones, root, low_pc, rng, shell=bool(bass_instrument) and rng.random() < 0.3
        )
        last = stop - 0.003
        for timbre in timbres:
            if timbre == "guitar":
                hits = [
                    start + b * beat
                    for bar0 in np.arange(0, 16, beats_per_bar)
                    for b in bar0 + np.array(strum)
                ]
                hits = [h for h in hits if h < last - 0.08]
                for k, h in enumerate(hits):
                    off = hits[k + 1] if k + 1 < len(hits) else last
                    up = k % 2 == 1
                    for j, midi in enumerate(voicing[::-1] if up else voicing):
                        notes.append(Note(h + 0.008 * j, off, midi, float(rng.uniform(0.5, 0.9)), "guitar"))
            elif timbre == "epiano":
                hits = [start] + (
                    [start + bar / 2] if stop - start > bar * 0.75 and rng.random() < 0.5 else []
                )
                for k, h in enumerate(hits):
                    off = hits[k + 1] if k + 1 < len(hits) else last
                    for midi in voicing:  # an octave up where that stays at or below C6, else in place
                        up_octave = midi + 12 if midi + 12 <= 84 else midi
                        notes.append(Note(h, off, up_octave, float(rng.uniform(0.5, 0.9)), "epiano"))
            else:
                # Notes below G3 an octave up, and with them any note that would then sound below the
                # shape's lowest note, which stays lowest (and so the labelled bass without a bass part).
                raise_below = max(55, voicing[0] + 12) if voicing[0] < 55 else 0
                for midi in sorted({m + 12 if m < raise_below else m for m in voicing}):
                    notes.append(Note(start, last, midi, 0.7, "strings"))
        if bass_instrument:
            following = next((c for c in chords[i + 1 :] if c[2] is not None), None)
            for a, b, m, v in _bass_part(
                pattern, start, last, beat, bass_pc, tones, following and following[4], rng
            ):
                if b - a > 0.03:
                    notes.append(Note(float(a), float(b), int(m), v, bass_instrument))
    segments.append(ChordSegment(end, duration, "N"))
    return DemoSong(
        segments=[s for s in segments if s.end > s.start],
        notes=notes,
        duration=duration,
        tempo=tempo,
        tuning_cents=float(np.clip(rng.normal(0.0, 20.0), -48.0, 48.0)),
        noise_db=float(rng.uniform(*config.noise_db)),
        level=float(rng.uniform(0.3, 0.95)),
        beats=list(np.arange(lead_in - bar, end, beat)),
        percussion=config.percussion,
        bass_instrument=bass_instrument,
        bass_pattern=pattern if bass_instrument else None,
        style="independent",
    )


# ---------------------------------------------------------------------------------------------- rendering

_GAIN = {
    "guitar": 0.25,
    "epiano": 0.2,
    "strings": 0.1,
    "bass_picked": 0.7,
    "bass_sub": 0.5,
    "bass_upright": 0.6,
}


def _karplus_strong(freq: float, n: int, sr: int, rng: np.random.Generator, damping: float) -> np.ndarray:
    """A plucked string: a noise burst in a feedback loop whose delay (integer + linear interpolation)
    is exactly one period, so the pitch is exact."""
    import scipy.signal  # (here: ~0.5 s to import, which `cache info` paid via TIMBRES)

    period = sr / freq
    delay = int(period)
    frac = period - delay
    excitation = np.zeros(n)
    burst = rng.uniform(-1, 1, min(delay + 1, n))
    excitation[: len(burst)] = burst - burst.mean()
    # y[t] = x[t] + damping * ((1 - frac) * y[t - delay] + frac * y[t - delay - 1])
    a = np.zeros(delay + 2)
    a[0], a[delay], a[delay + 1] = 1.0, -damping * (1 - frac), -damping * frac
    return scipy.signal.lfilter([1.0], a, excitation)


def _note_wave(note, sr: int, tuning: float, rng: np.random.Generator) -> np.ndarray:
    import scipy.signal  # (here: ~0.5 s to import, which `cache info` paid via TIMBRES)

    n = max(1, int(round((note.offset - note.onset) * sr)))
    t = np.arange(n) / sr
    f = 440.0 * 2 ** ((note.midi - 69) / 12) * tuning
    kind = note.instrument
    if kind == "guitar":
        wave = _karplus_strong(f, n, sr, rng, 0.996)
    elif kind == "bass_picked":
        wave = _karplus_strong(f, n, sr, rng, 0.998)
        wave = scipy.signal.lfilter([0.5, 0.5], [1.0], wave)
    elif kind == "epiano":  # two-operator FM, modulator at the carrier frequency, index decaying
        index = 2.5 * np.exp(-t / 0.25) + 0.2
        wave = np.sin(2 * np.pi * f * t + index * np.sin(2 * np.pi * f * t)) * np.exp(-t / 1.8)
    elif kind == "strings":
        vibrato = 1 + 0.004 * np.sin(2 * np.pi * 5.5 * t + rng.uniform(0, 6.3))
        phase = 2 * np.pi * f * np.cumsum(vibrato) / sr
        k = np.arange(1, max(2, min(16, int(5000 / f))))
        wave = (np.sin(np.outer(phase, k)) / k**1.3).sum(axis=1) * np.minimum(1, t / 0.15)
    elif kind == "bass_sub":
        wave = np.sin(2 * np.pi * f * t) + 0.3 * np.sin(4 * np.pi * f * t) + 0.1 * np.sin(6 * np.pi * f * t)
        wave *= np.minimum(1, t / 0.008)
    else:  # bass_upright: slightly inharmonic partials that decay faster the higher they are
        k = np.arange(1, 7)
        partials = f * k * np.sqrt(1 + 4e-4 * k**2)
        decays = 0.9 / k
        wave = (np.sin(2 * np.pi * np.outer(t, partials)) * np.exp(-np.outer(t, 1 / decays)) / k).sum(axis=1)
    release = min(n, int(0.02 * sr))
    wave[n - release :] *= np.linspace(1, 0, release)
    return (wave / (np.max(np.abs(wave)) + 1e-9) * note.velocity).astype(np.float32)


def _kit(song, sr: int, n: int, rng: np.random.Generator) -> np.ndarray:
    import scipy.signal  # (here: ~0.5 s to import, which `cache info` paid via TIMBRES)

    out = np.zeros(n, np.float32)
    tk = np.arange(int(0.3 * sr)) / sr
    kick = np.sin(2 * np.pi * 55 * tk) * np.exp(-tk / 0.09) + 0.2 * rng.standard_normal(len(tk)) * np.exp(
        -tk / 0.005
    )
    four = rng.random() < 0.4
    beat = 60.0 / song.tempo
    count_in = song.beats[0] + 4 * beat if song.beats else 0.0
    for k, b in enumerate(song.beats):
        if b >= 0 and b >= count_in - 4 * beat:
            if b < count_in:
                hits = [(b, 0.3, "stick")]
            else:
                hits = [(b, 1.0, "kick")] if four or k % 2 == 0 else [(b, 0.9, "clap")]
                hits += [(b + q * beat / 4, 0.12, "shaker") for q in range(4)]
            for onset, gain, kind in hits:
                start = int(onset * sr)
                if kind == "kick":
                    wave = kick
                elif kind == "clap":
                    burst = rng.standard_normal(int(0.12 * sr))
                    wave = scipy.signal.lfilter([1, 0, -1], [1, -1.2, 0.5], burst) * np.exp(
                        -np.arange(len(burst)) / (0.03 * sr)
                    )
                else:
                    wave = np.diff(rng.standard_normal(int(0.03 * sr) + 1)) * np.exp(
                        -np.arange(int(0.03 * sr)) / 150
                    )
                m = min(len(wave), n - start)
                if m > 0 and start >= 0:
                    out[start : start + m] += gain * wave[:m]
    return out


def render_independent_song(song, sr: int, seed: int | list[int] = 0) -> np.ndarray:
    """Audio of an independent-style song: float32 [samples] in [-1, 1]."""
    import scipy.signal  # (here: ~0.5 s to import, which `cache info` paid via TIMBRES)

    rng = np.random.default_rng(seed)
    n = int(round(song.duration * sr))
    audio = np.zeros(n + sr, np.float32)
    tuning = 2 ** (song.tuning_cents / 1200)
    for note in song.notes:
        start = int(round(note.onset * sr))
        wave = _note_wave(note, sr, tuning, rng)
        audio[start : start + len(wave)] += _GAIN[note.instrument] * wave
    # Room: convolution with 0.5 s of exponentially decaying noise, mixed in at 10-30%.
    ir = rng.standard_normal(int(0.5 * sr)) * np.exp(-np.arange(int(0.5 * sr)) / (0.12 * sr))
    wet = scipy.signal.fftconvolve(audio, ir / np.sqrt(np.sum(ir**2)))[: len(audio)]
    audio = audio + float(rng.uniform(0.1, 0.3)) * wet.astype(np.float32)
    audio = audio[:n]
    rms = float(np.sqrt(np.mean(audio**2))) + 1e-6
    if song.percussion:
        audio += rms * float(rng.uniform(0.8, 2.5)) * _kit(song, sr, n, rng)
    # Pink-ish noise (white noise through a 3-pole filter) and mains hum at 50 or 60 Hz.
    pink = scipy.signal.lfilter([0.049922, -0.095993, 0.050612, -0.004408], [1, -2.494956, 2.017265, -0.522189],
                                rng.standard_normal(n))  # fmt: skip
    audio += rms * 10 ** (song.noise_db / 20) * (pink / (np.std(pink) + 1e-9)).astype(np.float32)
    hum_hz = float(rng.choice([50.0, 60.0]))
    t = np.arange(n) / sr
    audio += rms * 10 ** (rng.uniform(-40, -25) / 20) * np.sin(2 * np.pi * hum_hz * t).astype(np.float32)
    return (audio * (song.level / (np.max(np.abs(audio)) + 1e-9))).astype(np.float32)
