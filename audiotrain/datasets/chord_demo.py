"""A built-in demo data set: synthetic songs of chord progressions, written as audio + ``.lab``.

Five styles share the set writer (`generate_demo_songs`), four of them independently written:

- ``"train"`` (this module): tempo 70-160 BPM, a key and a mode, a lead-in and a tail of no chord (``N``),
  chords of 1-8 beats drawn from all 30 chord qualities of the vocabulary (triads and sevenths common,
  extended chords rarer). Inversions come from two sources: a chord tone other than the root in the bass
  (``inversion_probability``) and slash-chord idioms in the key (``idiom_probability``: descending bass
  lines ``C G/B Am Am7/G F``, ``I I/3 IV``, the cadential ``I/5 V7 I``, ``IV/1`` and ``V/5`` pedals). Over 40
  songs about 40% of the chord time is inverted (a quarter in songs with a bass instrument). The chords are played by one or two of five
  timbres built from harmonic spectra with decay -- ``piano`` (struck on a rhythm), ``organ`` (sustained),
  ``pluck`` (arpeggiated), ``pad`` (slow attack, detuned voices) and ``additive`` (a random spectrum,
  envelope and vibrato drawn per song) -- in a register drawn per song (lowest note from MIDI 40 to 61),
  over a bass instrument one or two octaves below (``bass_pluck``, ``bass_fretless`` with vibrato,
  ``bass_synth`` with a filter envelope) playing a moving line: held notes, pulses, octave jumps, walking
  lines with chord tones, neighbour and passing tones, root-fifth
  alternations, and rests. No preset
  has one fixed sound: each song draws, for every instrument it uses, a spectral tilt and per-partial
  weights (sometimes extra partials, weak even partials, or for a bass a weak fundamental), scaled attack
  and decay times, a chorus detune and a level (`_timbre_variation`); the bass register (lowest note E1 to
  E2, an octave or more under the chords) and how unevenly the chord tones are played. Drums (a
  pitch-swept kick that masks the low end, snare, hats), a low rumble, a noise floor, a mix drawn per
  song (tilt, a peaking EQ band, comb reverb), a tuning offset of up to +-40 cents and a random level.
- ``"independent"`` (`audiotrain.datasets.chord_demo_independent`): other progressions, voicings, timbres,
  bass patterns and drums, written separately; used only to evaluate generalisation.
- ``"studio"`` (`audiotrain.datasets.chord_demo_studio`): six genres, other instruments, bass patterns and
  drums, written without looking at the independent style; a third of the recipe's training songs by
  default (``data.demo_styles``), as are the patches songs.
- ``"patches"`` (`audiotrain.datasets.chord_demo_patches`): domain randomisation of timbre: studio or train
  scores (on another seed) whose every instrument is a randomly drawn synthesizer patch (additive, FM,
  subtractive, supersaw, plucked, organ, pad; four bass families).
- ``"band"`` (`audiotrain.datasets.chord_demo_band`): a second held-out style, written without reading
  any of the others: six genres of a small band (pop, rock, folk, soul, jazz, bossa), seven chord
  instruments over four basses, and its own labelling rule (the bass is the lowest note sounding at the
  chord's start); used only to evaluate generalisation.

Labels follow what annotators write: within a chord segment the chord instruments play only the chord's
pitch classes, and all of them except where players leave a tone out while the label keeps it: chords of
four or more notes often lose their perfect fifth (shell voicings; how often is drawn per song, 20-90%), and
in half the songs, over a bass instrument playing the root, sometimes the root as well (rootless voicings).
The labelled bass is never left out. Voicings are close, open, drop-2 or split (a low note, then the rest a
fifth or more above), sometimes with the root doubled. The bass instrument plays the labelled bass on the
downbeat and for most of the segment (at least 60% of the bass-note time; half of the steps in a
root-fifth alternation, whose other half is the chord's fifth); its passing, neighbour and approach notes
are not chord tones and do not change the label. Without a bass instrument (40% of songs, and their chords
inverted more often: about 55% of their chord time against 25%) the lowest chord note is the bass; with one,
the chord voicing may put any chord tone lowest. Every note
ends before its segment does.
`plan_demo_song` returns the notes and the segments so that this can be checked.

`generate_demo_songs` writes ``song_XXX.wav`` + ``song_XXX.lab`` and a ``manifest.json`` with the
parameters; called again with the same parameters on that folder it renders again only the songs whose audio
header or annotation cannot be read (with a warning), and otherwise does nothing. A folder holding anything
it did not write (a user's songs, another program's ``manifest.json``) is refused unless ``overwrite=True``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from audiotrain._files import TMP_PREFIX, write_atomically
from audiotrain._text import listed
from audiotrain.chords.harte import parse_harte
from audiotrain.chords.lab import ChordSegment, lab_text, write_lab
from audiotrain.chords.vocabulary import CHORD_TYPES, decode_label
from audiotrain.datasets.chord_songs import SongEntry

import numpy as np
import soundfile as sf

#: Bump whenever the output changes: cached sets are then regenerated (pinned in
#: tests/test_chord_demo_versions.py).
GENERATOR_VERSION = 9
#: The seed part of a song's main random stream: version 8's, which version 9 kept so that its songs with a
#: bass instrument are note for note version 8's (its own draws come from a second stream).
_MAIN_STREAM = 8
#: Version 9: the share of songs without a bass instrument is 40% (15% before), and in those songs a chord
#: in root position is played over another of its tones with this probability (on top of the set's
#: `inversion_probability`): there the labelled bass is the lowest chord note, which the model learned
#: worst (`benchmarks/chords_rounds.md`, thirteenth round).
_UNACCOMPANIED_EXTRA = 0.3
_UNACCOMPANIED_INVERSIONS = 0.45
#: The seed part of those draws' own stream.
_UNACCOMPANIED_STREAM = (9, 1)
STYLES = ("train", "independent", "studio", "patches", "band")
TIMBRES = ("piano", "organ", "pluck", "pad", "additive")
BASS_TIMBRES = ("bass_pluck", "bass_fretless", "bass_synth")
BASS_PATTERNS = ("hold", "pulse", "octaves", "walk", "passing", "fifths")
MANIFEST = "manifest.json"
#: Where the recipes keep demo sets under their cache folder (beside the feature cache's ``features``).
DEMO_FOLDER = Path("demo") / "chords"
#: What `generate_demo_songs` writes in a set's folder: songs, annotations, the manifest and temporary files
#: a crash left (``song_000.lab.tmp`` from before `write_lab` used `write_atomically`): all `python -m
#: audiotrain cache clear` deletes.
_SONG_NAME = re.compile(r"song_\d{3,}")
_TEMPORARY_FILE = re.compile(
    rf"{_SONG_NAME.pattern}\.lab\.tmp|{re.escape(TMP_PREFIX)}[0-9a-f]+\.(wav|json|lab)"
)
_SONG_FILE = re.compile(rf"{_SONG_NAME.pattern}\.(wav|lab)")
_SET_FILE = re.compile(rf"{_SONG_FILE.pattern}|{re.escape(MANIFEST)}|{_TEMPORARY_FILE.pattern}")

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

#: Slash-chord idioms: (semitones of the root above the key, chord type, semitones of the bass above the
#: root) per chord. Major keys first, then minor keys.
IDIOMS_MAJOR = (
    ((0, "maj", 0), (7, "maj", 4), (9, "min", 0), (9, "min7", 10), (5, "maj", 0)),  # C G/B Am Am7/G F
    ((0, "maj", 0), (0, "maj", 4), (5, "maj", 0)),  # I I/3 IV
    ((5, "maj", 0), (0, "maj", 7), (7, "7", 0), (0, "maj", 0)),  # IV I/5 V7 I (cadential 6-4)
    ((0, "maj", 0), (5, "maj", 7), (0, "maj", 0)),  # IV/1 pedal
    ((7, "maj", 0), (2, "min7", 7), (7, "maj", 0)),  # pedal on V: ii7/5
    ((0, "maj", 0), (2, "min", 0), (0, "maj", 4), (5, "maj", 0), (7, "maj", 7)),  # line up, V/5
)
IDIOMS_MINOR = (
    ((0, "min", 0), (0, "min7", 10), (8, "maj", 4), (8, "maj", 0)),  # Am Am7/G F/A... descending
    ((0, "min", 0), (7, "7", 4), (0, "min", 0)),  # i V7/3 i
    ((0, "min", 0), (5, "min", 7), (0, "min", 0)),  # iv/1 pedal
    ((8, "maj", 0), (0, "min", 7), (7, "7", 0), (0, "min", 0)),  # VI i/5 V7 i
)

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
        style: ``"train"`` (this module), ``"independent"`` and ``"band"`` (the held-out styles),
            ``"studio"`` or ``"patches"`` (extra training data).
        timbres: chord timbres to draw from (a subset of the style's; default all of them; for
            ``"patches"`` the chord patch families).
        tempo_range: BPM range.
        noise_db: range of the noise floor relative to the music, in dB.
        tuning_cents: range of a song's tuning offset from A440, in cents.
        inversion_probability: chance that a chord is played with a chord tone other than the root in the bass.
        idiom_probability: chance, at each chord, of a slash-chord idiom (descending line, pedal, I/3) instead.
        percussion: add drums.
    """

    n_songs: int = 64
    seed: int = 0
    sr: int = 22050
    song_seconds: float = 30.0
    style: str = "train"
    timbres: tuple[str, ...] | None = None
    tempo_range: tuple[float, float] = (70.0, 160.0)
    noise_db: tuple[float, float] = (-45.0, -25.0)
    tuning_cents: tuple[float, float] = (-40.0, 40.0)
    inversion_probability: float = 0.15
    idiom_probability: float = 0.2
    percussion: bool = True

    def __post_init__(self):
        if self.style not in STYLES:
            raise ValueError(f"DemoConfig.style must be one of {STYLES}, got {self.style!r}")
        allowed = style_timbres(self.style)
        self.timbres = tuple(self.timbres) if self.timbres else allowed
        unknown = set(self.timbres) - set(allowed)
        if unknown:
            raise ValueError(
                f"DemoConfig.timbres of style {self.style!r} must be a non-empty subset of {allowed}, "
                f"got {self.timbres}"
            )
        if self.style == "band" and set(self.timbres) != set(allowed):
            # The band style's genres draw their own instruments: a subset would be silently ignored.
            raise ValueError(
                f"DemoConfig.timbres: the band style draws its instruments per genre and takes no subset; "
                f"leave timbres unset (got {self.timbres})"
            )
        if self.n_songs < 1 or self.song_seconds < 4:
            raise ValueError("DemoConfig needs n_songs >= 1 and song_seconds >= 4")
        self.tempo_range = tuple(float(x) for x in self.tempo_range)
        self.noise_db = tuple(float(x) for x in self.noise_db)
        self.tuning_cents = tuple(float(x) for x in self.tuning_cents)


def generator_version(style: str) -> int:
    """The version of a style's generator: each style has its own, so changing one keeps the other's sets."""
    if style == "independent":
        from audiotrain.datasets.chord_demo_independent import INDEPENDENT_VERSION

        return INDEPENDENT_VERSION
    if style == "studio":
        from audiotrain.datasets.chord_demo_studio import STUDIO_VERSION

        return STUDIO_VERSION
    if style == "patches":
        from audiotrain.datasets.chord_demo_patches import PATCHES_VERSION

        return PATCHES_VERSION
    if style == "band":
        from audiotrain.datasets.chord_demo_band import BAND_VERSION

        return BAND_VERSION
    return GENERATOR_VERSION


def style_timbres(style: str) -> tuple[str, ...]:
    """The chord timbres a style draws from."""
    if style == "independent":
        from audiotrain.datasets.chord_demo_independent import TIMBRES as INDEPENDENT_TIMBRES

        return INDEPENDENT_TIMBRES
    if style == "studio":
        from audiotrain.datasets.chord_demo_studio import TIMBRES as STUDIO_TIMBRES

        return STUDIO_TIMBRES
    if style == "patches":
        from audiotrain.datasets.chord_demo_patches import TIMBRES as PATCH_FAMILIES

        return PATCH_FAMILIES
    if style == "band":
        from audiotrain.datasets.chord_demo_band import TIMBRES as BAND_TIMBRES

        return BAND_TIMBRES
    return TIMBRES


@dataclass(frozen=True)
class Note:
    """A note event: times in seconds, ``midi`` pitch (69 = A4), ``instrument`` a timbre name."""

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
    bass_instrument: str | None = None
    bass_pattern: str | None = None
    additive: dict | None = None  # the song's "additive" timbre (see `_additive_timbre`)
    variations: dict | None = (
        None  # instrument -> how the song's preset departs from it (`_timbre_variation`)
    )
    room: dict | None = None  # the mix: EQ and reverb (see `_room`)
    style: str = "train"  # which generator wrote (and renders) it
    details: dict | None = None  # a style's own settings (the studio style's genre, sounds, mix...)


def chord_pitch_classes(type_name: str, root: int) -> list[int]:
    """Sorted pitch classes of a chord type on a root."""
    return sorted(parse_harte(decode_label(CHORD_TYPES.index(type_name), root)).pitch_classes)


def is_bass_instrument(instrument: str) -> bool:
    return instrument.startswith("bass")


# ---------------------------------------------------------------------------------------------- the score


def played_pitch_classes(
    pitch_classes: list[int],
    root: int,
    bass_pc: int,
    bass_plays_it: bool,
    rng: np.random.Generator,
    shell: float,
    rootless: float,
) -> list[int]:
    """The pitch classes a player's chord instrument sounds for a chord: all of them, or (chords of four or
    more notes) without the perfect fifth with probability `shell` (a shell voicing: the third and seventh
    carry the quality), and then without the root as well with probability `rootless` when the bass
    instrument plays that root (a seventh chord's upper part is then its third and seventh). The labelled bass is never left out, so a chord without a bass instrument keeps it."""
    played = list(pitch_classes)
    fifth = (root + 7) % 12
    if len(played) >= 4 and fifth in played and fifth != bass_pc and rng.random() < shell:
        played.remove(fifth)
        if bass_plays_it and bass_pc == root and rng.random() < rootless:
            played.remove(root)
    return played


def _voicing(
    pitch_classes: list[int],
    low_pc: int,
    rng: np.random.Generator,
    chord_low: int = _CHORD_LOW,
    root: int | None = None,
) -> list[int]:
    """MIDI notes with `low_pc` lowest (in the octave from `chord_low`) and every other pitch class above it.

    One of four shapes: close (every note within the octave above the lowest), open (some notes an octave
    higher), drop-2 (the close shape with its second-highest note an octave lower, kept above the lowest
    note) or split (the lowest note alone, like a pianist's left hand, and the others in close position a
    fifth or more above it). Sometimes an upper note is doubled an octave higher, and sometimes the `root`
    (when played) is doubled above the lowest note. Notes stay at or below MIDI 84 so that the 10 harmonics
    of the brightest timbre stay under the Nyquist frequency at 22.05 kHz.
    """
    low = chord_low + (low_pc - chord_low) % 12
    shape = rng.choice(("close", "open", "drop2", "split"), p=[0.4, 0.25, 0.2, 0.15])
    upper = sorted(low + 1 + (pc - low - 1) % 12 for pc in pitch_classes if pc != low_pc)
    if shape == "open":
        upper = [n + 12 if rng.random() < 0.5 else n for n in upper]
    elif shape == "drop2" and len(upper) >= 3 and upper[-2] - 12 > low:
        upper[-2] -= 12
    elif shape == "split" and upper and upper[0] < low + 7:
        upper = [n + 12 if n < low + 7 else n for n in upper]
    notes = [low, *upper]
    if rng.random() < 0.5:  # double a random upper note an octave higher
        notes.append(int(rng.choice(notes[1:] or notes)) + 12)
    if root is not None and root in {n % 12 for n in notes} and rng.random() < 0.35:
        lowest_root = min(n for n in notes if n % 12 == root)
        notes.append(lowest_root + 12)  # the root doubled, as guitar shapes and pianists' hands do
    return sorted({n if n <= _TOP_NOTE else n - 12 * ((n - _TOP_NOTE + 11) // 12) for n in notes})


def _plan_chords(config: DemoConfig, rng: np.random.Generator, beat: float, start: float, end: float):
    """(start, end, type name, root, bass) chords filling [start, end) on the beat grid, plus N breaks."""
    key = int(rng.integers(12))
    minor = rng.random() < 0.4
    scale = [0, 2, 3, 5, 7, 8, 10] if minor else [0, 2, 4, 5, 7, 9, 11]
    idioms = IDIOMS_MINOR if minor else IDIOMS_MAJOR
    chords = []
    t, previous, queued = start, None, []
    while t < end - beat:
        beats = int(rng.choice([1, 2, 4, 8], p=[0.1, 0.35, 0.4, 0.15]))
        stop = min(t + beats * beat, end)
        if not queued and rng.random() < config.idiom_probability:
            queued = list(idioms[rng.integers(len(idioms))])
        if queued:
            offset, type_name, bass_interval = queued.pop(0)
            root = (key + offset) % 12
            previous = (type_name, root, (root + bass_interval) % 12)
            chords.append((t, max(stop, min(t + 2 * beat, end)), *previous))
            t = chords[-1][1]
            continue
        if rng.random() < 0.04 and chords:
            chords.append((t, stop, None, -1, -1))  # a break
        else:
            while True:
                type_name = str(rng.choice(_TYPE_NAMES, p=_TYPE_P))
                root = (key + int(rng.choice(scale))) % 12 if rng.random() < 0.8 else int(rng.integers(12))
                pcs = chord_pitch_classes(type_name, root)
                bass = root
                if len(pcs) > 1 and rng.random() < config.inversion_probability:
                    bass = int(rng.choice([pc for pc in pcs if pc != root]))
                if (type_name, root, bass) != previous:
                    break
            previous = (type_name, root, bass)
            chords.append((t, stop, type_name, root, bass))
        t = stop
    return chords


def _bass_midi(pc: int, low: int = _BASS_LOW) -> int:
    return low + (pc - low) % 12


def _bass_line(
    pattern: str,
    start: float,
    end: float,
    step: float,
    bass_pc: int,
    pcs: list[int],
    next_bass: int | None,
    rng: np.random.Generator,
    legato: float,
    low: int = _BASS_LOW,
) -> list[tuple[float, float, int, float]]:
    """(onset, offset, midi, velocity) bass notes of one chord segment [start, end).

    The labelled bass sounds on the downbeat and on at least 60% of the steps; other notes (chord tones,
    neighbour/passing tones) only on off-steps. (A walk's chromatic approach to the next chord's bass on its
    last step is never played: the off-steps' budget, int(0.3 n) of n steps, is spent before the last step
    where n is even, and where n is odd the last step is on the beat. Playing it would change the demo's
    songs, which `GENERATOR_VERSION` pins, so the branch stays as the songs were made.) The
    ``"fifths"`` pattern (a bassist's root-fifth alternation) plays on every off-step the chord tone a fifth
    above or a fourth below the labelled bass (another chord tone where the chord has none there), so the
    labelled bass is the note on the beat, not the one that sounds longest: it has half the steps.
    """
    base = _bass_midi(bass_pc, low)
    if pattern == "hold":
        octave = 12 if rng.random() < 0.3 and end - start > 4 * step else 0
        mid = start + step * max(1, int((end - start) / step) // 2)
        if octave:
            return [(start, mid - 0.01, base, 1.0), (mid, end, base + octave, 0.85)]
        return [(start, end, base, 1.0)]
    onsets = list(start + step * np.arange(int(np.ceil((end - start) / step - 1e-9))))
    n = len(onsets)
    others = int(0.3 * n)  # at most this many steps off the labelled bass
    other_tones = [pc for pc in pcs if pc != bass_pc]
    notes = []
    for k, onset in enumerate(onsets):
        midi = base
        off_step = k % 2 == 1 and others > 0
        if pattern == "octaves" and k % 2:
            midi = base + 12
        elif pattern == "fifths" and k % 2:
            fifth = (bass_pc + 7) % 12
            pc = fifth if fifth in pcs or not other_tones else int(rng.choice(other_tones))
            midi = _bass_midi(pc, base)  # above the bass
            if pc == fifth and midi - 12 >= low and rng.random() < 0.5:
                midi -= 12  # the fifth below: a fourth under the bass
        elif pattern == "walk" and off_step:
            last = k == n - 1
            if last and next_bass is not None:
                target = _bass_midi(next_bass, low)
                midi = target + int(rng.choice([-1, 1]))  # chromatic approach to the next chord's bass
            elif other_tones:
                midi = _bass_midi(int(rng.choice(other_tones)), base)
            others -= 1
        elif pattern == "passing" and off_step and rng.random() < 0.6:
            midi = base + int(rng.choice([-2, -1, 1, 2]))  # neighbour / passing tone
            others -= 1
        elif k > 0 and k % 2 and rng.random() < 0.1:
            continue  # a rest
        velocity = 1.0 if k == 0 else float(rng.uniform(0.6, 0.9))
        notes.append((onset, min(onset + legato * step, end), int(midi), velocity))
    return notes


def _more_unaccompanied(
    config: DemoConfig, index: int, chords: list, bass_instrument: str | None
) -> tuple[list, str | None]:
    """Version 9's draws, from a stream of their own: some songs lose their bass instrument, and the chords
    of songs without one are inverted more often (`_UNACCOMPANIED_EXTRA`, `_UNACCOMPANIED_INVERSIONS`)."""
    rng = np.random.default_rng([config.seed, index, *_UNACCOMPANIED_STREAM])
    if bass_instrument is not None and rng.random() < _UNACCOMPANIED_EXTRA:
        bass_instrument = None
    if bass_instrument is not None:
        return chords, bass_instrument
    inverted = []
    for start, stop, type_name, root, bass_pc in chords:
        if type_name is not None and bass_pc == root:
            others = [pc for pc in chord_pitch_classes(type_name, root) if pc != root]
            if others and rng.random() < _UNACCOMPANIED_INVERSIONS:
                bass_pc = int(rng.choice(others))
        inverted.append((start, stop, type_name, root, bass_pc))
    return inverted, None


def plan_demo_song(config: DemoConfig, index: int, unaccompanied_inversions: bool = True) -> DemoSong:
    """The score of song ``index`` of a demo set (a pure function of the config and the index).

    `unaccompanied_inversions`: version 9's more songs without a bass instrument, more often inverted
    (`_more_unaccompanied`); the patches style plans its train-style scores without them, as measured.
    """
    if config.style == "independent":
        from audiotrain.datasets.chord_demo_independent import plan_independent_song

        return plan_independent_song(config, index)
    if config.style == "studio":
        from audiotrain.datasets.chord_demo_studio import plan_studio_song

        return plan_studio_song(config, index)
    if config.style == "patches":
        from audiotrain.datasets.chord_demo_patches import plan_patches_song

        return plan_patches_song(config, index)
    if config.style == "band":
        from audiotrain.datasets.chord_demo_band import plan_band_song

        return plan_band_song(config, index)
    rng = np.random.default_rng([config.seed, index, _MAIN_STREAM])
    tempo = float(rng.uniform(*config.tempo_range))
    beat = 60.0 / tempo
    lead_in = float(rng.uniform(0.4, 2.0))
    tail = float(rng.uniform(0.4, 1.5))
    chords = _plan_chords(config, rng, beat, lead_in, config.song_seconds - tail)
    if not chords:  # no chord fitted after this lead-in (a song near the least length): one beat of lead-in
        lead_in = beat
        chords = _plan_chords(config, rng, beat, lead_in, config.song_seconds - tail)
    duration = chords[-1][1] + tail
    n_timbres = 1 if len(config.timbres) == 1 or rng.random() < 0.5 else 2
    timbres = [str(t) for t in rng.choice(config.timbres, size=n_timbres, replace=False)]
    bass_instrument = str(rng.choice(BASS_TIMBRES)) if rng.random() < 0.85 else None
    if unaccompanied_inversions:
        chords, bass_instrument = _more_unaccompanied(config, index, chords, bass_instrument)
    bass_pattern = str(rng.choice(BASS_PATTERNS, p=[0.13, 0.17, 0.17, 0.2, 0.15, 0.18]))
    bass_step = 1.0 if bass_pattern == "walk" else float(rng.choice([0.5, 1.0, 2.0]))
    legato = 1.0 if bass_instrument == "bass_fretless" else float(rng.uniform(0.55, 1.0))
    # The register of the chords: from the usual octave above middle C's neighbour down to the guitar's.
    chord_low = _CHORD_LOW if rng.random() < 0.5 else int(rng.integers(40, 56))
    additive = _additive_timbre(rng) if "additive" in timbres else None
    # The bass register: its lowest note from E1 up to E2, always an octave or more below the chords.
    bass_low = int(rng.integers(_BASS_LOW, max(_BASS_LOW, min(_BASS_LOW + 12, chord_low - 12)) + 1))
    presets = [t for t in timbres if t != "additive"] + ([bass_instrument] if bass_instrument else [])
    variations = {name: _timbre_variation(rng, is_bass_instrument(name)) for name in presets}
    # How unevenly the chord tones are played (0: all at one level): a player's touch, not the label.
    voice_spread = float(rng.uniform(0.0, 0.6))
    # How often this player leaves the fifth out of four-note chords, and the root too over a bass on it.
    shell = float(rng.uniform(0.2, 0.9))
    rootless = float(rng.uniform(0.0, 0.5)) if rng.random() < 0.5 else 0.0
    piano_pattern = [[0.0, 1.0, 2.0, 3.0], [0.0, 1.5, 2.0, 3.0], [0.0, 2.0], [0.0, 0.5, 1.5, 2.5, 3.0]][
        rng.integers(4)
    ]
    notes: list[Note] = []
    segments = [ChordSegment(0.0, lead_in, "N")]
    for i, (start, stop, type_name, root, bass_pc) in enumerate(chords):
        if type_name is None:
            segments.append(ChordSegment(start, stop, "N"))
            continue
        label = decode_label(CHORD_TYPES.index(type_name), root, bass_pc)
        segments.append(ChordSegment(start, stop, label))
        pcs = sorted(parse_harte(label).pitch_classes)
        played = played_pitch_classes(pcs, root, bass_pc, bass_instrument is not None, rng, shell, rootless)
        # With a bass instrument below, the chord voicing is free to put any chord tone lowest.
        low_pc = bass_pc if bass_instrument is None or rng.random() < 0.5 else int(rng.choice(played))
        voicing = _voicing(played, low_pc, rng, chord_low, root)
        voice_levels = [float(x) for x in 1.0 - voice_spread * rng.random(len(voicing))]
        note_end = stop - 0.002  # every note is silent before the segment ends
        for timbre in timbres:
            if timbre in ("organ", "pad") or (timbre == "additive" and additive["decay"] == 0.0):
                onsets = [start]
            elif timbre in ("piano", "additive"):
                onsets = [start + (bar + b) * beat for bar in range(0, 16, 4) for b in piano_pattern]
            else:  # pluck: the whole chord strummed, then an arpeggio on eighth notes
                onsets = list(start + 0.5 * beat * np.arange(int((stop - start) / (0.5 * beat)) + 1))
            onsets = [o for o in onsets if o < note_end - 0.05]
            for k, onset in enumerate(onsets):
                off = onsets[k + 1] if k + 1 < len(onsets) and timbre != "pluck" else note_end
                velocity = float(rng.uniform(0.6, 1.0))
                if timbre == "pluck" and k > 0:
                    midi = voicing[k % len(voicing)]
                    level = velocity * voice_levels[k % len(voicing)]
                    notes.append(Note(onset, min(onset + 4 * beat, note_end), midi, level, timbre))
                else:
                    strum = 0.012 * rng.random() if timbre in ("piano", "pluck") else 0.0
                    for j, midi in enumerate(voicing):
                        notes.append(Note(onset + j * strum, off, midi, velocity * voice_levels[j], timbre))
        if bass_instrument is not None:
            following = next((c for c in chords[i + 1 :] if c[2] is not None), None)
            line = _bass_line(
                bass_pattern, start, note_end, bass_step * beat, bass_pc, pcs,
                following[4] if following else None, rng, legato, bass_low,
            )  # fmt: skip
            notes += [Note(a, b, m, v, bass_instrument) for a, b, m, v in line if b - a > 0.03]
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
        bass_instrument=bass_instrument,
        bass_pattern=bass_pattern if bass_instrument else None,
        additive=additive,
        variations=variations,
        room=_room(rng),
    )


# ---------------------------------------------------------------------------------------------- rendering


def _table(amplitudes: list[float]) -> np.ndarray:
    phase = np.arange(_TABLE_SIZE) / _TABLE_SIZE
    wave = sum(a * np.sin(2 * np.pi * (k + 1) * phase) for k, a in enumerate(amplitudes))
    return (wave / np.max(np.abs(wave))).astype(np.float32)


# (bright partials, dull partials or None, brightness decay s, amplitude decay s, attack s) per preset
_PRESETS = {
    "piano": ([1 / (k + 1) ** 1.1 for k in range(10)], [1, 0.4, 0.15], 0.25, 1.2, 0.004),
    "organ": ([1, 0.8, 0.6, 0.5, 0, 0.3, 0, 0.25], None, 0.0, 0.0, 0.02),
    "pluck": ([1 / (k + 1) for k in range(10)], [1, 0.3], 0.06, 0.45, 0.002),
    "pad": ([1 / (k + 1) ** 2 for k in range(6)], None, 0.0, 0.0, 0.25),
    "bass_pluck": ([1, 0.6, 0.35, 0.2, 0.1], [1, 0.2], 0.12, 0.9, 0.004),
    "bass_fretless": ([1, 0.45, 0.18, 0.08], [1, 0.25], 0.6, 2.5, 0.03),
    "bass_synth": ([1 / (k + 1) for k in range(12)], [1, 0.3, 0.1], 0.09, 0.0, 0.003),
}
#: Partials a varied preset may have: chords stay under Nyquist at 22.05 kHz up to MIDI 84 (10 partials of
#: 1047 Hz), the bass (at most MIDI 63 = 311 Hz) can be much brighter.
_MAX_PARTIALS = {"chord": 10, "bass": 24}
# (bright table, dull table, brightness decay s, amplitude decay s, attack s) per instrument
_TIMBRE_TABLES = {
    name: (_table(bright), _table(dull) if dull else None, *rest)
    for name, (bright, dull, *rest) in _PRESETS.items()
}
_GAINS = {"piano": 0.22, "organ": 0.12, "pluck": 0.3, "pad": 0.18, "additive": 0.2}
_BASS_GAIN = {"bass_pluck": 0.5, "bass_fretless": 0.45, "bass_synth": 0.35}

_CURVE_SECONDS = 12.0
_curves: dict[tuple[str, int], tuple[np.ndarray, np.ndarray | None]] = {}


def _curves_of(spec: tuple, sr: int) -> tuple[np.ndarray, np.ndarray | None]:
    _, dull, bright_decay, decay, attack = spec
    t = np.arange(int(_CURVE_SECONDS * sr), dtype=np.float64) / sr
    envelope = np.minimum(1.0, t / attack) * (np.exp(-t / decay) if decay > 0 else 1.0)
    brightness = np.exp(-t / bright_decay).astype(np.float32) if dull is not None else None
    return envelope.astype(np.float32), brightness


def _timbre_curves(instrument: str, sr: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(amplitude envelope without release, brightness curve or None), long enough for any note, cached."""
    key = (instrument, sr)
    if key not in _curves:
        _curves[key] = _curves_of(_TIMBRE_TABLES[instrument], sr)
    return _curves[key]


def _additive_timbre(rng: np.random.Generator) -> dict:
    """A random harmonic timbre for one song: partial amplitudes k^-tilt with random weights (sometimes odd
    partials only), a random attack, decay (0: sustained) and brightness decay, sometimes vibrato."""
    tilt = rng.uniform(0.5, 2.2)
    amplitudes = [float((k + 1) ** -tilt * rng.uniform(0.3, 1.0)) for k in range(10)]
    if rng.random() < 0.25:
        amplitudes = [a if k % 2 == 0 else 0.0 for k, a in enumerate(amplitudes)]
    return {
        "amplitudes": amplitudes,
        "attack": float(np.exp(rng.uniform(np.log(0.002), np.log(0.15)))),
        "decay": 0.0 if rng.random() < 0.3 else float(np.exp(rng.uniform(np.log(0.3), np.log(4.0)))),
        "bright_decay": float(rng.uniform(0.05, 1.0)),
        "vibrato_cents": float(rng.uniform(5, 15)) if rng.random() < 0.3 else 0.0,
    }


def _timbre_variation(rng: np.random.Generator, bass: bool) -> dict:
    """How one song's instrument departs from its preset, so that no instrument has one fixed sound: a
    spectral tilt and per-partial weights (sometimes more partials, sometimes weak even partials, for a bass
    sometimes a weak fundamental as through small speakers), scaled attack and decay times, a chorus detune
    and a level (a bass from well below the chords to above them)."""
    n = _MAX_PARTIALS["bass" if bass else "chord"]
    return {
        "tilt": float(rng.uniform(-0.6, 0.8)),  # partial k (from 0) times (k + 1) ** -tilt
        "weights": [float(w) for w in rng.uniform(0.5, 1.5, n)],
        "extra_partials": int(rng.integers(0, n + 1)) if rng.random() < 0.3 else 0,
        "even": float(rng.uniform(0.0, 0.5)) if rng.random() < 0.2 else 1.0,
        "fundamental": float(rng.uniform(0.15, 0.7)) if bass and rng.random() < 0.35 else 1.0,
        "attack_scale": float(np.exp(rng.uniform(np.log(0.5), np.log(4.0)))),
        "decay_scale": float(np.exp(rng.uniform(np.log(0.4), np.log(2.5)))),
        "detune_cents": float(rng.uniform(3.0, 12.0)) if rng.random() < 0.25 else 0.0,
        "gain_db": float(rng.uniform(-9.0, 4.0) if bass else rng.uniform(-4.0, 4.0)),
    }


def _varied_spec(instrument: str, variation: dict) -> tuple:
    """The (bright table, dull table, brightness decay, decay, attack) of a preset under a variation."""
    bright, dull, bright_decay, decay, attack = _PRESETS[instrument]
    n = min(len(variation["weights"]), len(bright) + variation["extra_partials"])
    tail = bright[-1] if bright[-1] else 0.1
    partials = [bright[k] if k < len(bright) else tail * (len(bright) / (k + 1)) ** 2 for k in range(n)]
    partials = [
        a * (k + 1) ** -variation["tilt"] * w * (variation["even"] if k % 2 else 1.0)
        for k, (a, w) in enumerate(zip(partials, variation["weights"]))
    ]
    partials[0] *= variation["fundamental"]
    dull_table = None
    if dull:
        dull = list(dull)
        dull[0] *= variation["fundamental"]
        dull_table = _table(dull)
    scale = variation["decay_scale"]
    return (
        _table(partials),
        dull_table,
        bright_decay * scale,
        decay * scale,
        attack * variation["attack_scale"],
    )


def _room(rng: np.random.Generator) -> dict:
    """The mix of a song: a spectral tilt, one peaking EQ band, and a Schroeder reverb (wet share, decay)."""
    return {
        "tilt": float(rng.uniform(-0.5, 0.5)),
        "peak_hz": float(np.exp(rng.uniform(np.log(80.0), np.log(4000.0)))),
        "peak_db": float(rng.uniform(-9.0, 9.0)),
        "wet": float(rng.uniform(0.0, 0.35)) if rng.random() < 0.7 else 0.0,
        "rt60": float(rng.uniform(0.4, 2.0)),
    }


def _render_note(
    note: Note, sr: int, tuning: float, custom: tuple | None = None, detune_cents: float = 0.0
) -> np.ndarray:
    """One note; `custom` = (spec, curves, vibrato cents) of a song's own timbre, else the fixed table;
    `detune_cents` > 0 plays two voices that far apart (a chorus)."""
    if custom is not None:
        (bright, dull, _, _, _), (envelope, brightness), vibrato_cents = custom
    else:
        bright, dull, _, _, _ = _TIMBRE_TABLES[note.instrument]
        envelope, brightness = _timbre_curves(note.instrument, sr)
        vibrato_cents = 10.0 if note.instrument == "bass_fretless" else 0.0
    n = min(int(round((note.offset - note.onset) * sr)), len(envelope))
    freq = 440.0 * 2 ** ((note.midi - 69) / 12) * tuning
    if note.instrument == "pad":
        detune_cents = max(detune_cents, 8.7)  # the pad's own two voices (0.9975, 1.0025)
    spread = 2 ** (detune_cents / 2400)
    voices = [1 / spread, spread] if detune_cents else [1.0]
    # Free-running oscillators (phase from the song's clock, not the note's): a note struck again keeps its
    # phase, so fast repeated notes do not smear the pitch with phase resets.
    first = int(round(note.onset * sr))
    steps = np.arange(first, first + n, dtype=np.float64)
    wave = np.zeros(n, np.float32)
    for detune in voices:
        phase = steps * (freq * detune * _TABLE_SIZE / sr)
        if vibrato_cents:  # at 5 Hz, fading in
            t = np.arange(n) / sr
            depth = vibrato_cents * 6e-4 * freq * _TABLE_SIZE / (2 * np.pi * 5.0) * np.minimum(1.0, t / 0.3)
            phase += depth * np.sin(2 * np.pi * 5.0 * t)
        index = phase.astype(np.int64) & (_TABLE_SIZE - 1)
        if dull is None:
            wave += bright[index]
        else:
            low = dull[index]
            wave += low + (bright[index] - low) * brightness[:n]
    wave *= envelope[:n]
    release = max(1, min(n, int(_RELEASE_S * sr)))
    wave[n - release :] *= np.linspace(1.0, 0.0, release, dtype=np.float32)
    return wave * (note.velocity / len(voices))


def _drums(song: DemoSong, sr: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Kick (a sine swept 110 -> 45 Hz, in the bass range), snare (noise + 190 Hz) and hats, unit level."""
    out = np.zeros(n, np.float32)
    beat = 60.0 / song.tempo
    t = np.arange(int(0.35 * sr)) / sr
    kick = np.sin(2 * np.pi * (45 * t + 65 * 0.04 * (1 - np.exp(-t / 0.04)))) * np.exp(-t / 0.12)
    ts = np.arange(int(0.15 * sr)) / sr
    snare_tone = 0.5 * np.sin(2 * np.pi * 190 * ts) * np.exp(-ts / 0.04)
    extra_kicks = rng.random() < 0.5
    for k, b in enumerate(song.beats):
        hits = [(b, kick, 1.0)] if k % 2 == 0 or (extra_kicks and rng.random() < 0.3) else []
        if k % 2:
            snare = snare_tone + 0.6 * rng.standard_normal(len(ts)) * np.exp(-ts / 0.05)
            hits.append((b, snare, 0.8))
        hat = np.diff(rng.standard_normal(int(0.04 * sr) + 1)) * np.exp(-np.arange(int(0.04 * sr)) / 200)
        hits += [(b, hat, 0.2), (b + beat / 2, hat, 0.15)]
        for onset, wave, gain in hits:
            start = int(onset * sr)
            m = min(len(wave), n - start)
            if m > 0:
                out[start : start + m] += gain * wave[:m]
    return out


def _comb(x: np.ndarray, delay: int, gain: float) -> np.ndarray:
    """Feedback comb ``y[n] = x[n] + g y[n - d]``, a block of `delay` samples at a time (each block only needs
    the one before it: far faster than `scipy.signal.lfilter` with a denominator of d + 1 taps)."""
    n = len(x)
    blocks = -(-n // delay)
    xp = np.zeros(blocks * delay)
    xp[:n] = x
    y = xp.reshape(blocks, delay)
    for k in range(1, blocks):
        y[k] += gain * y[k - 1]
    return y.reshape(-1)[:n]


def _mix(audio: np.ndarray, room: dict, sr: int) -> np.ndarray:
    """Reverb (4 parallel feedback combs into an all-pass, after Schroeder 1962), then the EQ of `_room`."""
    import scipy.signal  # here: scipy.signal takes ~0.5 s to import, which every recipe command paid

    if room["wet"] > 0:
        wet = sum(
            _comb(audio, int(d * sr), 10 ** (-3 * d / room["rt60"])) for d in (0.0297, 0.0371, 0.0411, 0.0437)
        )
        for d in (0.0017,):  # a short all-pass: y[n] = -g x[n] + x[n - d] + g y[n - d]
            b, a = np.zeros(int(d * sr) + 1), np.zeros(int(d * sr) + 1)
            b[0], b[-1], a[0], a[-1] = -0.7, 1.0, 1.0, -0.7
            wet = scipy.signal.lfilter(b, a, wet)
        audio = audio + room["wet"] * (wet / 4).astype(np.float32)
    # Peaking EQ (RBJ cookbook biquad, Q = 1) and a first-order tilt (+ highs for tilt > 0).
    w = 2 * np.pi * room["peak_hz"] / sr
    gain, alpha = 10 ** (room["peak_db"] / 40), np.sin(w) / 2
    b = [1 + alpha * gain, -2 * np.cos(w), 1 - alpha * gain]
    a = [1 + alpha / gain, -2 * np.cos(w), 1 - alpha / gain]
    audio = scipy.signal.lfilter(b, a, audio)
    audio = audio + room["tilt"] * np.diff(audio, prepend=0.0)
    return audio.astype(np.float32)


def render_demo_song(song: DemoSong, sr: int, seed: int | list[int] = 0) -> np.ndarray:
    """Audio of a `DemoSong`: float32 [samples] in [-1, 1]; ``seed`` drives the noise and drums."""
    if song.style == "independent":
        from audiotrain.datasets.chord_demo_independent import render_independent_song

        return render_independent_song(song, sr, seed)
    if song.style == "studio":
        from audiotrain.datasets.chord_demo_studio_sound import render_studio_song

        return render_studio_song(song, sr, seed)
    if song.style == "patches":
        from audiotrain.datasets.chord_demo_patches_sound import render_patches_song

        return render_patches_song(song, sr, seed)
    if song.style == "band":
        from audiotrain.datasets.chord_demo_band import render_band_song

        return render_band_song(song, sr, seed)
    rng = np.random.default_rng(seed)
    n = int(round(song.duration * sr))
    audio = np.zeros(n + sr, np.float32)
    tuning = 2 ** (song.tuning_cents / 1200)
    custom = {}
    if song.additive is not None:
        a = song.additive
        dull = _table(a["amplitudes"][:2]) if a["amplitudes"][1] else _table(a["amplitudes"][:1])
        spec = (_table(a["amplitudes"]), dull, a["bright_decay"], a["decay"], a["attack"])
        custom["additive"] = (spec, _curves_of(spec, sr), a["vibrato_cents"])
    variations = song.variations or {}
    for name, variation in variations.items():
        spec = _varied_spec(name, variation)
        custom[name] = (spec, _curves_of(spec, sr), 10.0 if name == "bass_fretless" else 0.0)
    for note in song.notes:
        start = int(round(note.onset * sr))
        variation = variations.get(note.instrument, {})
        wave = _render_note(note, sr, tuning, custom.get(note.instrument), variation.get("detune_cents", 0.0))
        gain = _BASS_GAIN.get(note.instrument) or _GAINS[note.instrument]
        gain *= 10 ** (variation.get("gain_db", 0.0) / 20)
        audio[start : start + len(wave)] += gain * wave
    audio = _mix(audio, song.room, sr)[:n] if song.room else audio[:n]
    music_rms = float(np.sqrt(np.mean(audio**2))) + 1e-6
    if song.percussion:
        audio += music_rms * float(rng.uniform(0.6, 2.0)) * _drums(song, sr, n, rng)
        # A low rumble (white noise through a one-pole low-pass at ~60 Hz) that masks the bass range.
        pole = np.exp(-2 * np.pi * 60.0 / sr)
        import scipy.signal

        rumble = scipy.signal.lfilter([1 - pole], [1, -pole], rng.standard_normal(n)).astype(np.float32)
        rumble *= music_rms * 10 ** (rng.uniform(-30, -12) / 20) / (np.std(rumble) + 1e-9)
        audio += rumble
    noise = rng.standard_normal(n).astype(np.float32)
    audio += music_rms * 10 ** (song.noise_db / 20) * noise
    return (audio * (song.level / (np.max(np.abs(audio)) + 1e-9))).astype(np.float32)


# ---------------------------------------------------------------------------------------------- the set


def _refuse_unknown_settings(settings: dict) -> None:
    """A misspelt setting named with what `generate_demo_songs` takes (DemoConfig's own TypeError names a
    class the caller never called)."""
    known = {f.name for f in fields(DemoConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise TypeError(
            f"generate_demo_songs: unknown setting {listed([repr(name) for name in unknown])}; it takes "
            "out_dir, shard, barrier, overwrite and the fields of audiotrain.datasets.chord_demo.DemoConfig: "
            + ", ".join(sorted(known))
        )


def generate_demo_songs(
    out_dir: str | Path,
    n_songs: int = 64,
    seed: int = 0,
    sr: int = 22050,
    song_seconds: float = 30.0,
    timbres: tuple[str, ...] | None = None,
    style: str = "train",
    *,
    shard: tuple[int, int] = (0, 1),
    barrier: Callable[[], None] | None = None,
    overwrite: bool = False,
    **kwargs,
) -> list[SongEntry]:
    """Write a demo set (``song_XXX.wav`` + ``.lab``) to ``out_dir``, or reuse it if already there.

    A set made there with other parameters is replaced (its songs, those its ``manifest.json`` lists, are
    deleted). Nothing else is replaced or deleted: a folder holding files this function did not write (a
    user's ``song_000.wav``, a ``manifest.json`` of another program, anything where no set is) is a
    `FileExistsError` naming them, before anything is written. The manifest is written first, marked as
    rendering until every song is: a render stopped halfway is a set like any other, rendered again or
    replaced whatever the parameters of the next call. The songs a render of this same set left without a
    manifest (before it was written first) are recognised by their annotations and rendered again, as is
    the audio of the song after them alone (when the audio was written first).

    Parameters
    ----------
    out_dir : str or Path
    n_songs, seed, sr, song_seconds, timbres, style, **kwargs
        Fields of `DemoConfig` (``audiotrain.datasets.chord_demo.DemoConfig``); an unknown one is a
        ``TypeError`` naming them.
    shard, barrier : (rank, world) and a function that waits for every process
        Several processes writing one set together (data parallel): every one calls this with its
        ``(rank, world)`` and the job's barrier. Process 0 clears a stale set, each renders the songs
        ``rank, rank + world, ...`` (each song is drawn from its own seed, so the set is the same however
        many render it), and process 0 writes the manifest once all are done.
    overwrite : bool
        Write the set over whatever is in ``out_dir``: its ``song_XXX.wav`` / ``.lab`` files are replaced, a
        foreign ``manifest.json`` too, and the ``song_XXX`` files it lists are deleted; files of other names
        stay. For a folder that is the caller's own cache (the recipes').

    Returns
    -------
    list of SongEntry
        The songs, in order.
    """
    rank, world = shard
    if world > 1 and barrier is None:
        raise ValueError("generate_demo_songs: shard across processes needs their barrier")
    wait = barrier or (lambda: None)
    _refuse_unknown_settings(kwargs)
    config = DemoConfig(
        n_songs=n_songs, seed=seed, sr=sr, song_seconds=song_seconds, timbres=timbres, style=style, **kwargs
    )
    out_dir = Path(out_dir)
    params = demo_set_params(config)
    entries = [
        SongEntry(f"song_{i:03d}", out_dir / f"song_{i:03d}.wav", out_dir / f"song_{i:03d}.lab")
        for i in range(config.n_songs)
    ]
    manifest_path = out_dir / MANIFEST
    if not overwrite:  # (every process: they all see the folder as it is, so all refuse or none)
        _refuse_what_others_made(out_dir, config, entries)
    wait()
    if rank == 0 and not _made_with(manifest_path, params):
        _clear_stale_set(out_dir, manifest_path)
        # A manifest marked as rendering goes first: a render stopped halfway leaves its songs named as a
        # set's, so a call with other parameters clears them as a stale set's (they were anyone's files).
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_manifest(manifest_path, params, entries, rendering=True)
    elif rank == 0 and not _is_rendering(manifest_path):
        _render_damaged_songs_again(config, entries)
    wait()  # every process now sees the same set: complete, or marked as rendering
    if _is_complete(manifest_path, params, entries):
        return entries
    out_dir.mkdir(parents=True, exist_ok=True)
    from audiotrain.train.interrupt import stop_point

    for first in range(0, len(entries), world):  # a round: one song of each process's share
        if first + rank < len(entries):
            _render_song(config, first + rank, entries[first + rank])
        # The recipes' processes (under `stopping_together`) stop together here on a stop signal, after a
        # round, not once the whole set is rendered: a minute or more, past a container's 10 s of grace.
        # Only when every rank renders its share: a rank rendering the whole set alone (rank 0 under a
        # launcher, the others in a barrier) would meet the others' barrier in stop_point's all-reduce.
        if world > 1:
            stop_point()
    wait()
    if rank == 0:
        _write_manifest(manifest_path, params, entries, rendering=False)  # (last: the set is whole)
    wait()
    return entries


def _write_manifest(manifest_path: Path, params: dict, entries: list[SongEntry], rendering: bool) -> None:
    """A set's manifest: its parameters, its songs, and ``"rendering": true`` until they are all written."""
    manifest = {"params": params, "songs": [e.name for e in entries]} | (
        {"rendering": True} if rendering else {}
    )
    text = json.dumps(manifest, indent=1)
    write_atomically(manifest_path, lambda handle: handle.write(text.encode()))


def _is_rendering(manifest_path: Path) -> bool:
    """Whether the manifest is that of a render not finished (stopped, or under way in another process)."""
    manifest = _read_manifest(manifest_path)
    return isinstance(manifest, dict) and manifest.get("rendering") is True


def _render_song(config: DemoConfig, i: int, entry: SongEntry) -> None:
    """Write song `i` of a set: its audio and its annotation."""
    song = plan_demo_song(config, i)
    audio = render_demo_song(song, config.sr, seed=[config.seed, i])
    # Encoded in memory first: soundfile writing into a file on a full disk printed an "Exception ignored
    # from cffi callback" per song, then failed on an AssertionError; a plain write fails with the OSError
    # (ENOSPC) the recipe reports in one line.
    wav = io.BytesIO()
    sf.write(wav, audio, config.sr, subtype="PCM_16", format="WAV")
    # Atomically (as the manifest, and `write_lab`): a run reading this set while another renders it again
    # (before its manifest is finished) reads the whole song, never part of it. The annotation first: what
    # a render stopped before it wrote a manifest left is told by its annotations (`_not_own_song_files`).
    write_lab(entry.annotation_path, song.segments, replace=True)
    write_atomically(entry.audio_path, lambda handle: handle.write(wav.getbuffer()))


def _damage(entry: SongEntry) -> str:
    """Why a song of a finished set cannot be read ("" when it can): its audio header or its annotation.

    A set is the cache's, never the user's, so a damaged song (a disk that filled up, a copy cut short, an
    edit) is rendered again rather than left out of every later run; as the feature cache recomputes a
    damaged entry. The header and the annotation are read, not the samples: a few milliseconds a song."""
    from audiotrain.audio import AudioError, get_duration
    from audiotrain.chords.lab import AnnotationError, read_lab

    try:
        get_duration(entry.audio_path)
        read_lab(entry.annotation_path)
    except (AudioError, AnnotationError) as error:
        return str(error)
    except OSError as error:  # an annotation missing or unreadable
        return f"{error.filename}: {error.strerror or error}"
    return ""


def _render_damaged_songs_again(config: DemoConfig, entries: list[SongEntry]) -> None:
    """Render again, with a warning naming them, the songs of a finished set that cannot be read."""
    damaged = {i: why for i, entry in enumerate(entries) if (why := _damage(entry))}
    if not damaged:
        return
    folder = entries[0].audio_path.parent
    reasons = [why.replace(f"{folder}{os.sep}", "") for why in damaged.values()]  # (the folder named once)
    warnings.warn(
        f"demo set {folder}: {len(damaged)} of its {len(entries)} songs cannot be read "
        f"({listed(reasons, sep='; ')}); rendering them again",
        stacklevel=3,
    )
    for i in damaged:
        _render_song(config, i, entries[i])


def demo_set_params(config: DemoConfig) -> dict:
    """What a set is made from, as its manifest holds it: its generator's version and every `DemoConfig`
    field."""
    params = {"generator_version": generator_version(config.style), **asdict(config)}
    return json.loads(json.dumps(params))  # tuples → lists, as they are read back


def demo_set_name(config: DemoConfig) -> str:
    """A folder name for the set: its main settings, readable, then a hash of all of them (`demo_set_params`).

    A set found with other parameters is cleared and rendered again: every parameter the manifest compares
    is in the name, so sets made otherwise (another ``sr``, ...) live side by side instead of replacing each
    other, under a run that is reading them too.
    """
    params = demo_set_params(config)
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]
    return (
        f"v{params['generator_version']}-{config.style}-seed{config.seed}-n{config.n_songs}-"
        f"{config.song_seconds:g}s-{config.sr}Hz-{'+'.join(config.timbres)}-{digest}"
    )


def demo_set_files(folder: Path) -> list[Path]:
    """The files of a demo set that `generate_demo_songs` wrote in ``folder`` (none if it is no set)."""
    return (
        [p for p in folder.iterdir() if _SET_FILE.fullmatch(p.name) and p.is_file()]
        if folder.is_dir()
        else []
    )


def _read_manifest(manifest_path: Path) -> object:
    """The JSON in `manifest_path`; None when it is absent or unreadable."""
    try:
        return json.loads(manifest_path.read_text())
    except (OSError, ValueError, RecursionError):  # (ValueError: not JSON, not UTF-8)
        return None


def _made_with(manifest_path: Path, params: dict) -> bool:
    """Whether a set's manifest is there and says it was made with `params`."""
    cached = _read_manifest(manifest_path)
    return isinstance(cached, dict) and cached.get("params") == params


def _is_complete(manifest_path: Path, params: dict, entries: list[SongEntry]) -> bool:
    """A set made with `params` whose files are all there, its render finished."""
    return (
        _made_with(manifest_path, params)
        and not _is_rendering(manifest_path)
        and all(e.audio_path.exists() and e.annotation_path.exists() for e in entries)
    )


def _listed_songs(manifest: object) -> list[str]:
    """The songs a manifest lists, those named as this function names them (a name such as ``../x``, from
    a manifest written by hand, is none of a set's)."""
    songs = manifest.get("songs") if isinstance(manifest, dict) else None
    return (
        [n for n in songs if isinstance(n, str) and _SONG_NAME.fullmatch(n)]
        if isinstance(songs, list)
        else []
    )


def _is_set_manifest(manifest: object) -> bool:
    """Whether `manifest` is one `generate_demo_songs` writes: its parameters and its list of songs."""
    return (
        isinstance(manifest, dict)
        and isinstance(manifest.get("params"), dict)
        and "generator_version" in manifest["params"]
        and isinstance(manifest.get("songs"), list)
        and len(_listed_songs(manifest)) == len(manifest["songs"])
    )


def _refuse_what_others_made(out_dir: Path, config: DemoConfig, entries: list[SongEntry]) -> None:
    """A one-line `FileExistsError` where writing the set of `config` into `out_dir` would replace or delete
    something `generate_demo_songs` did not write: a ``manifest.json`` that is not a set's (its songs are
    what a stale set's clearing deletes), a file in the way of one of the set's songs, and, in a folder
    without a manifest, anything but the files of an interrupted render of this very set."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise NotADirectoryError(
            f"generate_demo_songs: {out_dir} is a file; expected a folder for the demo set"
        )
    manifest_path = out_dir / MANIFEST
    advice = "choose a new or empty folder, or pass overwrite=True to write the set over them"
    if manifest_path.exists() or manifest_path.is_symlink():
        manifest = _read_manifest(manifest_path)
        if not _is_set_manifest(manifest):
            raise FileExistsError(
                f"generate_demo_songs: {manifest_path} is not a demo set's manifest (none written by "
                f"generate_demo_songs), so {out_dir} holds files it did not make; {advice}"
            )
        if manifest["params"] == demo_set_params(config):
            return  # this set (a damaged song of it is rendered again)
        # Another set, to be cleared: only the files in the way of this one's songs that it does not list.
        listed_songs = set(_listed_songs(manifest))
        candidates = [
            path
            for entry in entries
            if entry.name not in listed_songs
            for path in (entry.annotation_path, entry.audio_path)
            if path.exists() or path.is_symlink()
        ]
    else:
        candidates = [p for p in sorted(out_dir.iterdir()) if not _TEMPORARY_FILE.fullmatch(p.name)]
    no_manifest = not (manifest_path.exists() or manifest_path.is_symlink())
    others = _not_own_song_files(candidates, config, entries, audio_alone_may_be_own=no_manifest)
    if others and no_manifest and all(_SONG_FILE.fullmatch(name) for name in others):
        # Told from a user's songs only by a manifest, which a render of an earlier version, stopped before
        # its end, did not leave: said, rather than only that they are not this set's.
        raise FileExistsError(
            f"generate_demo_songs: {out_dir} holds songs without a manifest that are not songs of this demo "
            f"set ({listed(others)}): yours, or a render with other parameters that an earlier version "
            f"stopped halfway; choose a new or empty folder, or pass overwrite=True to write the set over them"
        )
    if others:
        raise FileExistsError(
            f"generate_demo_songs: {out_dir} holds files that are not songs of this demo set "
            f"({listed(others)}); {advice}"
        )


def _not_own_song_files(
    paths: list[Path], config: DemoConfig, entries: list[SongEntry], audio_alone_may_be_own: bool = False
) -> list[str]:
    """The names of those `paths` that are not songs of the set of `config` as `_render_song` writes them:
    an annotation that is the one planned for its song, or an audio file beside one (the annotation is
    written first). Those are what a render of this set left before its manifest was written, rendered
    again at no loss. Each song is planned once, and only where a file of it is found."""
    index = {e.audio_path.name: i for i, e in enumerate(entries)}
    index.update({e.annotation_path.name: i for i, e in enumerate(entries)})
    planned: dict[int, bool] = {}

    def is_own(path: Path) -> bool:
        i = index.get(path.name)
        if i is None or path.is_symlink() or not path.is_file():
            return False
        if i not in planned:
            try:
                written = entries[i].annotation_path.read_bytes()
            except OSError:
                written = None
            planned[i] = written == lab_text(plan_demo_song(config, i).segments).encode("utf-8")
        return planned[i]

    others = [p for p in paths if not is_own(p)]
    # Before the annotation went first, a song's audio did: a render stopped between the two left the audio
    # of the song after the last whole one alone. Its own only where it follows one of its songs and the
    # folder holds nothing else (`audio_alone_may_be_own`: no manifest; a user's lone song_000.wav, or one
    # in the way of a new song of a finished set, stays refused).
    if (
        audio_alone_may_be_own
        and len(others) == 1
        and others[0].suffix == ".wav"
        and not others[0].with_suffix(".lab").exists()
    ):
        i = index.get(others[0].name)
        if i and is_own(entries[i - 1].annotation_path) and others[0].is_file():
            return []
    return [p.name for p in others]


def _clear_stale_set(out_dir: Path, manifest_path: Path) -> None:
    """Remove the songs of a set made otherwise (those its manifest lists: a new set would not overwrite
    them all), then its manifest: a clearing stopped halfway leaves the manifest, and the next call clears
    the rest."""
    if not (manifest_path.exists() or manifest_path.is_symlink()):
        return
    for name in _listed_songs(_read_manifest(manifest_path)):
        for suffix in (".wav", ".lab"):
            (out_dir / f"{name}{suffix}").unlink(missing_ok=True)
    manifest_path.unlink()
