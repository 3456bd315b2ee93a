"""A built-in demo data set: synthetic songs of chord progressions, written as audio + ``.lab``.

Each song has a tempo (70-160 BPM), a key and a mode, a lead-in and a tail of no chord (``N``), and chords of
1-8 beats drawn from all 30 chord qualities of the vocabulary (triads and sevenths common, extended chords
rarer), a fifth of them inverted. The chords are played by one or two of four timbres built from harmonic
spectra with decay -- ``piano`` (struck on a rhythm, bright attack that dulls), ``organ`` (sustained, drawbar
harmonics), ``pluck`` (arpeggiated, fast decay) and ``pad`` (slow attack, two detuned voices) -- over a
``bass`` line on the bass note of each chord in two octaves, with noise hits on the beats, a noise floor, a
random tuning offset of a few cents and a random level.

The labels are exact by construction: within a chord segment the notes sounding are exactly the chord's
pitch classes, the lowest note is its bass, and every note ends (with a short release) before the segment
does. `plan_demo_song` returns the notes and the segments so that this can be checked.

`generate_demo_songs` writes ``song_XXX.wav`` + ``song_XXX.lab`` and a ``manifest.json`` with the
parameters; called again with the same parameters on that folder it does nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from audiotrain.chords.harte import parse_harte
from audiotrain.chords.lab import ChordSegment, write_lab
from audiotrain.chords.vocabulary import CHORD_TYPES, decode_label
from audiotrain.datasets.chord_songs import SongEntry

import numpy as np
import soundfile as sf

GENERATOR_VERSION = 2  # bump whenever the output changes: cached sets are then regenerated
TIMBRES = ("piano", "organ", "pluck", "pad")
MANIFEST = "manifest.json"

#: Relative frequency of each chord type in the demo songs.
TYPE_WEIGHTS = {
    "maj": 14, "min": 12, "7": 8, "maj7": 6, "min7": 7, "dim": 2, "aug": 1.5, "sus2": 2, "sus4": 2.5,
    "5": 1.5, "1": 0.5, "minmaj7": 1, "dim7": 1.5, "hdim7": 2, "maj6": 2, "min6": 1.5, "sus4(b7)": 2,
    "9": 1.5, "maj9": 1, "min9": 1, "11": 0.6, "min11": 0.6, "13": 0.6, "maj13": 0.5, "min13": 0.5,
    "maj(9)": 1, "min(9)": 0.8, "maj6(9)": 0.7, "7(b9)": 0.7, "7(#9)": 0.7,
}  # fmt: skip
_TYPE_NAMES = tuple(TYPE_WEIGHTS)
_TYPE_P = np.array([TYPE_WEIGHTS[t] for t in _TYPE_NAMES]) / sum(TYPE_WEIGHTS.values())
assert set(_TYPE_NAMES) == set(CHORD_TYPES[2:]), "every chord quality of the vocabulary has a weight"

_TABLE_SIZE = 4096
_RELEASE_S = 0.03
_BASS_LOW, _CHORD_LOW, _TOP_NOTE = 28, 50, 84  # MIDI: bass in 28-51, chord voicings from 50-61 up to 84


@dataclass
class DemoConfig:
    """Parameters of a demo set; everything that changes the output is here (and in the manifest).

    Attributes:
        n_songs: songs to generate.
        seed: songs are a pure function of (seed, song number) and the other fields.
        sr: sample rate in Hz.
        song_seconds: approximate length of a song in seconds.
        timbres: chord timbres to draw from (a subset of `TIMBRES`); held-out sets can use other ones.
        tempo_range: BPM range.
        noise_db: range of the noise floor relative to the music, in dB.
        tuning_cents: range of a song's tuning offset from A440, in cents.
        inversion_probability: chance that a chord is played with a chord tone other than the root in the bass.
        percussion: add unpitched noise hits on the beats.
    """

    n_songs: int = 64
    seed: int = 0
    sr: int = 22050
    song_seconds: float = 30.0
    timbres: tuple[str, ...] = TIMBRES
    tempo_range: tuple[float, float] = (70.0, 160.0)
    noise_db: tuple[float, float] = (-45.0, -25.0)
    tuning_cents: tuple[float, float] = (-10.0, 10.0)
    inversion_probability: float = 0.2
    percussion: bool = True

    def __post_init__(self):
        self.timbres = tuple(self.timbres)
        unknown = set(self.timbres) - set(TIMBRES)
        if unknown or not self.timbres:
            raise ValueError(
                f"DemoConfig.timbres must be a non-empty subset of {TIMBRES}, got {self.timbres}"
            )
        if self.n_songs < 1 or self.song_seconds < 4:
            raise ValueError("DemoConfig needs n_songs >= 1 and song_seconds >= 4")
        self.tempo_range = tuple(float(x) for x in self.tempo_range)
        self.noise_db = tuple(float(x) for x in self.noise_db)
        self.tuning_cents = tuple(float(x) for x in self.tuning_cents)


@dataclass(frozen=True)
class Note:
    """A note event: times in seconds, ``midi`` pitch (69 = A4), ``instrument`` a timbre or ``bass``."""

    onset: float
    offset: float
    midi: int
    velocity: float
    instrument: str


@dataclass
class DemoSong:
    """The score of one song: its segments (labels) and notes, before rendering."""

    segments: list[ChordSegment]
    notes: list[Note]
    duration: float
    tempo: float
    tuning_cents: float
    noise_db: float
    level: float
    beats: list[float] = field(default_factory=list)
    percussion: bool = True


# ---------------------------------------------------------------------------------------------- the score


def _voicing(pitch_classes: list[int], bass_pc: int, rng: np.random.Generator) -> list[int]:
    """MIDI notes with the bass pitch class lowest and every other pitch class once above it.

    Close voicing within the octave above the lowest note, or (a third of the time) open voicing with some
    notes an octave higher; sometimes an upper note doubled. Notes stay at or below MIDI 84 so that the
    10 harmonics of the brightest timbre stay under the Nyquist frequency at 22.05 kHz.
    """
    low = _CHORD_LOW + (bass_pc - _CHORD_LOW) % 12
    open_voicing = rng.random() < 1 / 3
    notes = [low]
    for pc in pitch_classes:
        if pc == bass_pc:
            continue
        note = low + 1 + (pc - low - 1) % 12
        notes.append(note + 12 if open_voicing and rng.random() < 0.5 else note)
    if rng.random() < 0.5:  # double a random upper note an octave higher
        notes.append(int(rng.choice(notes[1:] or notes)) + 12)
    return sorted({n if n <= _TOP_NOTE else n - 12 * ((n - _TOP_NOTE + 11) // 12) for n in notes})


def _plan_chords(config: DemoConfig, rng: np.random.Generator, beat: float, start: float, end: float):
    """(start, end, type name, root, bass) chords filling [start, end) on the beat grid, plus N breaks."""
    key = int(rng.integers(12))
    minor = rng.random() < 0.4
    scale = [0, 2, 3, 5, 7, 8, 10] if minor else [0, 2, 4, 5, 7, 9, 11]
    chords = []
    t, previous = start, None
    while t < end - beat:
        beats = int(rng.choice([1, 2, 4, 8], p=[0.1, 0.35, 0.4, 0.15]))
        stop = min(t + beats * beat, end)
        if rng.random() < 0.04 and chords:
            chords.append((t, stop, None, -1, -1))  # a break
        else:
            while True:
                type_name = str(rng.choice(_TYPE_NAMES, p=_TYPE_P))
                root = (key + int(rng.choice(scale))) % 12 if rng.random() < 0.8 else int(rng.integers(12))
                pcs = sorted(parse_harte(decode_label(CHORD_TYPES.index(type_name), root)).pitch_classes)
                bass = root
                if len(pcs) > 1 and rng.random() < config.inversion_probability:
                    bass = int(rng.choice([pc for pc in pcs if pc != root]))
                if (type_name, root, bass) != previous:
                    break
            previous = (type_name, root, bass)
            chords.append((t, stop, type_name, root, bass))
        t = stop
    return chords


def plan_demo_song(config: DemoConfig, index: int) -> DemoSong:
    """The score of song ``index`` of a demo set (a pure function of the config and the index)."""
    rng = np.random.default_rng([config.seed, index, GENERATOR_VERSION])
    tempo = float(rng.uniform(*config.tempo_range))
    beat = 60.0 / tempo
    lead_in = float(rng.uniform(0.4, 2.0))
    tail = float(rng.uniform(0.4, 1.5))
    chords = _plan_chords(config, rng, beat, lead_in, config.song_seconds - tail)
    duration = chords[-1][1] + tail
    n_timbres = 1 if len(config.timbres) == 1 or rng.random() < 0.5 else 2
    timbres = [str(t) for t in rng.choice(config.timbres, size=n_timbres, replace=False)]
    has_bass = rng.random() < 0.85
    piano_pattern = [[0.0, 1.0, 2.0, 3.0], [0.0, 1.5, 2.0, 3.0], [0.0, 2.0], [0.0, 0.5, 1.5, 2.5, 3.0]][
        rng.integers(4)
    ]
    bass_step = float(rng.choice([0.5, 1.0, 2.0]))
    notes: list[Note] = []
    segments = [ChordSegment(0.0, lead_in, "N")]
    for start, stop, type_name, root, bass_pc in chords:
        if type_name is None:
            segments.append(ChordSegment(start, stop, "N"))
            continue
        label = decode_label(CHORD_TYPES.index(type_name), root, bass_pc)
        segments.append(ChordSegment(start, stop, label))
        pcs = sorted(parse_harte(label).pitch_classes)
        voicing = _voicing(pcs, bass_pc, rng)
        note_end = stop - 0.002  # every note is silent before the segment ends
        for timbre in timbres:
            if timbre in ("organ", "pad"):
                onsets = [start]
            elif timbre == "piano":
                onsets = [start + (bar + b) * beat for bar in range(0, 16, 4) for b in piano_pattern]
            else:  # pluck: the whole chord strummed, then an arpeggio on eighth notes
                onsets = list(start + 0.5 * beat * np.arange(int((stop - start) / (0.5 * beat)) + 1))
            onsets = [o for o in onsets if o < note_end - 0.05]
            for k, onset in enumerate(onsets):
                off = onsets[k + 1] if k + 1 < len(onsets) and timbre == "piano" else note_end
                velocity = float(rng.uniform(0.6, 1.0))
                if timbre == "pluck" and k > 0:
                    midi = voicing[k % len(voicing)]
                    notes.append(Note(onset, min(onset + 4 * beat, note_end), midi, velocity, timbre))
                else:
                    strum = 0.012 * rng.random() if timbre in ("piano", "pluck") else 0.0
                    for j, midi in enumerate(voicing):
                        notes.append(Note(onset + j * strum, off, midi, velocity, timbre))
        if has_bass:
            t = start
            while t < note_end - 0.05:
                octave = 12 if rng.random() < 0.25 else 0  # octave jumps on the same pitch class
                midi = _BASS_LOW + (bass_pc - _BASS_LOW) % 12 + octave
                notes.append(
                    Note(t, min(t + bass_step * beat, note_end), midi, float(rng.uniform(0.7, 1.0)), "bass")
                )
                t += bass_step * beat
    segments.append(ChordSegment(chords[-1][1], duration, "N"))
    segments = [s for s in segments if s.end > s.start]
    beats = list(np.arange(lead_in, chords[-1][1], beat))
    return DemoSong(
        segments=segments,
        notes=notes,
        duration=duration,
        tempo=tempo,
        tuning_cents=float(rng.uniform(*config.tuning_cents)),
        noise_db=float(rng.uniform(*config.noise_db)),
        level=float(rng.uniform(0.3, 0.95)),
        beats=beats,
        percussion=config.percussion,
    )


# ---------------------------------------------------------------------------------------------- rendering


def _table(amplitudes: list[float]) -> np.ndarray:
    phase = np.arange(_TABLE_SIZE) / _TABLE_SIZE
    wave = sum(a * np.sin(2 * np.pi * (k + 1) * phase) for k, a in enumerate(amplitudes))
    return (wave / np.max(np.abs(wave))).astype(np.float32)


# (bright table, dull table, brightness decay s, amplitude decay s, attack s) per instrument
_TIMBRE_TABLES = {
    "piano": (_table([1 / (k + 1) ** 1.1 for k in range(10)]), _table([1, 0.4, 0.15]), 0.25, 1.2, 0.004),
    "organ": (_table([1, 0.8, 0.6, 0.5, 0, 0.3, 0, 0.25]), None, 0.0, 0.0, 0.02),
    "pluck": (_table([1 / (k + 1) for k in range(10)]), _table([1, 0.3]), 0.06, 0.45, 0.002),
    "pad": (_table([1 / (k + 1) ** 2 for k in range(6)]), None, 0.0, 0.0, 0.25),
    "bass": (_table([1, 0.5, 0.25, 0.1]), _table([1, 0.2]), 0.15, 0.9, 0.005),
}


_CURVE_SECONDS = 12.0
_curves: dict[tuple[str, int], tuple[np.ndarray, np.ndarray | None]] = {}


def _timbre_curves(instrument: str, sr: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(amplitude envelope without release, brightness curve or None), long enough for any note, cached."""
    key = (instrument, sr)
    if key not in _curves:
        _, dull, bright_decay, decay, attack = _TIMBRE_TABLES[instrument]
        t = np.arange(int(_CURVE_SECONDS * sr), dtype=np.float64) / sr
        envelope = np.minimum(1.0, t / attack) * (np.exp(-t / decay) if decay > 0 else 1.0)
        brightness = np.exp(-t / bright_decay).astype(np.float32) if dull is not None else None
        _curves[key] = (envelope.astype(np.float32), brightness)
    return _curves[key]


def _render_note(note: Note, sr: int, tuning: float) -> np.ndarray:
    bright, dull, _, _, _ = _TIMBRE_TABLES[note.instrument]
    envelope, brightness = _timbre_curves(note.instrument, sr)
    n = min(int(round((note.offset - note.onset) * sr)), len(envelope))
    freq = 440.0 * 2 ** ((note.midi - 69) / 12) * tuning
    voices = [1.0] if note.instrument != "pad" else [0.9975, 1.0025]
    # Free-running oscillators (phase from the song's clock, not the note's): a note struck again keeps its
    # phase, so fast repeated notes do not smear the pitch with phase resets.
    first = int(round(note.onset * sr))
    steps = np.arange(first, first + n, dtype=np.float64)
    wave = np.zeros(n, np.float32)
    for detune in voices:
        index = (steps * (freq * detune * _TABLE_SIZE / sr)).astype(np.int64) & (_TABLE_SIZE - 1)
        if dull is None:
            wave += bright[index]
        else:
            low = dull[index]
            wave += low + (bright[index] - low) * brightness[:n]
    wave *= envelope[:n]
    release = max(1, min(n, int(_RELEASE_S * sr)))
    wave[n - release :] *= np.linspace(1.0, 0.0, release, dtype=np.float32)
    return wave * (note.velocity / len(voices))


def render_demo_song(song: DemoSong, sr: int, seed: int | list[int] = 0) -> np.ndarray:
    """Audio of a `DemoSong`: float32 [samples] in [-1, 1]; ``seed`` drives the noise."""
    rng = np.random.default_rng(seed)
    n = int(round(song.duration * sr))
    audio = np.zeros(n + sr, np.float32)
    tuning = 2 ** (song.tuning_cents / 1200)
    gains = {"bass": 0.5, "piano": 0.22, "organ": 0.12, "pluck": 0.3, "pad": 0.18}
    for note in song.notes:
        start = int(round(note.onset * sr))
        wave = _render_note(note, sr, tuning)
        audio[start : start + len(wave)] += gains[note.instrument] * wave
    audio = audio[:n]
    music_rms = float(np.sqrt(np.mean(audio**2))) + 1e-6
    # Unpitched hits: short noise bursts on each beat (louder on the off-beats, like a snare), hi-hat-like
    # differenced noise on eighths.
    beat = 60.0 / song.tempo
    for k, b in enumerate(song.beats if song.percussion else []):
        for offset, length, colour, gain in (
            (0.0, 0.12, "mid", 0.6 if k % 2 else 0.25),
            (beat / 2, 0.04, "high", 0.15),
        ):
            start = int((b + offset) * sr)
            m = min(int(length * sr), n - start)
            if m <= 0:
                continue
            burst = rng.standard_normal(m).astype(np.float32)
            if colour == "high":
                burst = np.diff(burst, prepend=0.0)
            audio[start : start + m] += (
                gain * music_rms * burst * np.exp(-np.arange(m) / (0.2 * m)).astype(np.float32)
            )
    noise = rng.standard_normal(n).astype(np.float32)
    audio += music_rms * 10 ** (song.noise_db / 20) * noise
    return (audio * (song.level / (np.max(np.abs(audio)) + 1e-9))).astype(np.float32)


# ---------------------------------------------------------------------------------------------- the set


def generate_demo_songs(
    out_dir: str | Path,
    n_songs: int = 64,
    seed: int = 0,
    sr: int = 22050,
    song_seconds: float = 30.0,
    timbres: tuple[str, ...] = TIMBRES,
    **kwargs,
) -> list[SongEntry]:
    """Write a demo set (``song_XXX.wav`` + ``.lab``) to ``out_dir``, or reuse it if already there.

    Parameters
    ----------
    out_dir : str or Path
    n_songs, seed, sr, song_seconds, timbres, **kwargs
        Fields of `DemoConfig`.

    Returns
    -------
    list of SongEntry
        The songs, in order.
    """
    config = DemoConfig(
        n_songs=n_songs, seed=seed, sr=sr, song_seconds=song_seconds, timbres=timbres, **kwargs
    )
    out_dir = Path(out_dir)
    params = {"generator_version": GENERATOR_VERSION, **asdict(config)}
    params = json.loads(json.dumps(params))  # tuples → lists, as they are read back
    entries = [
        SongEntry(f"song_{i:03d}", out_dir / f"song_{i:03d}.wav", out_dir / f"song_{i:03d}.lab")
        for i in range(config.n_songs)
    ]
    manifest_path = out_dir / MANIFEST
    if manifest_path.exists():
        try:
            cached = json.loads(manifest_path.read_text())
        except json.JSONDecodeError:
            cached = None
        if (
            cached
            and cached.get("params") == params
            and all(e.audio_path.exists() and e.annotation_path.exists() for e in entries)
        ):
            return entries
        manifest_path.unlink()
        for name in (cached or {}).get(
            "songs", []
        ):  # files of the previous set that this one does not overwrite
            for suffix in (".wav", ".lab"):
                (out_dir / f"{name}{suffix}").unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, entry in enumerate(entries):
        song = plan_demo_song(config, i)
        audio = render_demo_song(song, config.sr, seed=[config.seed, i])
        sf.write(entry.audio_path, audio, config.sr, subtype="PCM_16")
        write_lab(entry.annotation_path, song.segments)
    # The manifest is written last: a set interrupted halfway is regenerated next time.
    manifest = {"params": params, "songs": [e.name for e in entries]}
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return entries
