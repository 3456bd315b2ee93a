"""The harmony of the ``"band"`` demo style: its chords, progressions, genres and song plan (`plan_song`).

A song draws a mode, a key, a tempo, a meter (3/4 or 4/4), up to three phrases of one genre's
`PROGRESSIONS` and a form (``AABB``, ``ABAC``...), then lays the phrases' chords on a beat grid from the
lead-in until a tail of 0.6-2 s before the song's end. Phrases are written as roman numerals of the major
scale (``"I:maj V:maj/3 VI:min IV:maj"``, ``@2``: two bars), some with their own slash chords; more come
from idiomatic bass motion (`add_inversions`: ``I/3`` before IV or ii, ``V/3`` before I, a long chord split
over a moving bass, the cadential ``I/5`` before a final V). Roots are spelled from the key (``Db:maj``,
``F#:min7/b3``) and labels are Harte syntax.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Harte shorthand -> semitones above the root. Ninths are written as 13 and 14 so that voicings can place
#: them above the octave; pitch classes use ``% 12``.
QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6), "aug": (0, 4, 8),
    "sus2": (0, 2, 7), "sus4": (0, 5, 7),
    "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11), "min7": (0, 3, 7, 10),
    "minmaj7": (0, 3, 7, 11), "dim7": (0, 3, 6, 9), "hdim7": (0, 3, 6, 10),
    "maj6": (0, 4, 7, 9), "min6": (0, 3, 7, 9), "sus4(b7)": (0, 5, 7, 10),
    "9": (0, 4, 7, 10, 14), "maj9": (0, 4, 7, 11, 14), "min9": (0, 3, 7, 10, 14),
    "maj(9)": (0, 4, 7, 14), "min(9)": (0, 3, 7, 14), "7(b9)": (0, 4, 7, 10, 13),
}  # fmt: skip

_DEGREES = {
    2: "2",
    3: "b3",
    4: "3",
    5: "4",
    6: "b5",
    7: "5",
    8: "#5",
    9: "6",
    10: "b7",
    11: "7",
    13: "b9",
    14: "9",
}
_SHARP_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
_FLAT_NAMES = ["C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B"]
_ROMAN = {"I": 0, "II": 2, "III": 4, "IV": 5, "V": 7, "VI": 9, "VII": 11}
_LETTERS = "CDEFGAB"
_LETTER_PC = [0, 2, 4, 5, 7, 9, 11]
_TONIC_MAJOR = ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
_TONIC_MINOR = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"]


def degree_name(quality: str, interval: int) -> str:
    """The Harte bass degree of chord tone `interval` (an entry of ``QUALITIES[quality]``)."""
    if quality == "dim7" and interval == 9:
        return "bb7"
    return _DEGREES[interval]


@dataclass
class Chord:
    """A chord of a phrase: `root` in semitones above the key's tonic, a Harte `quality`, the bass's
    interval above the root (0: root position), its length in bars and its scale degree (0-6, I-VII: how
    the root is spelled)."""

    root: int
    quality: str
    bass_interval: int = 0
    bars: float = 1.0
    degree: int = 0


def parse_token(token: str) -> Chord:
    """``"bVII:maj7/3@2"`` -> `Chord` (degrees are roman numerals of the major scale)."""
    bars = 1.0
    if "@" in token:
        token, length = token.split("@")
        bars = float(length)
    degree, rest = token.split(":", 1)
    accidental = 0
    while degree[0] in "b#":
        accidental += -1 if degree[0] == "b" else 1
        degree = degree[1:]
    quality, bass_degree = rest.split("/") if "/" in rest else (rest, None)
    bass_interval = 0
    if bass_degree is not None:
        hits = [t for t in QUALITIES[quality] if t != 0 and degree_name(quality, t) == bass_degree]
        assert hits, f"bass {bass_degree} is not a chord tone of {quality}"
        bass_interval = hits[0] % 12
    root = (_ROMAN[degree] + accidental) % 12
    return Chord(root, quality, bass_interval, bars, ["I", "II", "III", "IV", "V", "VI", "VII"].index(degree))


def chord_tone(quality: str, bass_interval: int) -> int:
    """The entry of ``QUALITIES[quality]`` whose pitch class is `bass_interval` above the root."""
    for tone in QUALITIES[quality]:
        if tone % 12 == bass_interval:
            return tone
    raise ValueError((quality, bass_interval))


#: Phrases per genre and mode, written for this style: one string a phrase, a chord one bar unless ``@bars``.
PROGRESSIONS = {
    "pop": {
        "maj": [
            "I:maj V:maj VI:min IV:maj",
            "I:maj V:maj/3 VI:min IV:maj",
            "VI:min IV:maj I:maj V:maj",
            "I:maj VI:min IV:maj V:maj",
            "I:maj V:maj/3 VI:min III:min IV:maj I:maj/3 II:min V:maj",
            "I:maj I:maj7/7 VI:min VI:min7/b7 IV:maj I:maj/3 II:min7 V:sus4",
            "I:maj(9)@2 IV:maj7@2 VI:min7 V:sus4@.5 V:maj@.5 IV:maj(9)@2",
            "IV:maj V:maj III:min VI:min",
            "I:maj III:min IV:maj V:maj",
            "I:maj IV:maj/5 I:maj IV:maj/5",
            "IV:maj I:maj/3 II:min7 V:maj",
            "I:maj III:7/3 VI:min IV:maj",
            "I:sus2 I:maj IV:maj(9) IV:maj",
            "I:maj VI:min7 II:min7 V:7",
            "I:maj@2 V:maj@2 VI:min@2 IV:maj@2",
            "II:min7 V:sus4(b7) I:maj@2",
            "VI:min V:maj IV:maj V:maj",
            "I:maj I:aug I:maj6 I:7",
            "IV:maj #IV:dim I:maj/5 V:7",
        ],
        "min": [
            "I:min bVI:maj bIII:maj bVII:maj",
            "I:min bVII:maj bVI:maj bVII:maj",
            "bVI:maj bVII:maj I:min I:min",
            "I:min I:minmaj7/7 I:min7/b7 I:min6/6",
            "I:min V:min/b3 bVI:maj bIII:maj/3 IV:min I:min/b3 II:hdim7 V:7",
            "I:min IV:min7 bVII:7 bIII:maj7",
            "I:min bVI:maj bVII:maj V:sus4@.5 V:maj@.5",
            "I:min@2 bVI:maj@2 bIII:maj@2 bVII:maj@2",
            "I:min(9) bVI:maj7 bIII:maj bVII:sus4",
        ],
    },
    "rock": {
        "maj": [
            "I:maj bVII:maj IV:maj I:maj",
            "I:maj IV:maj V:maj IV:maj",
            "I:maj IV:maj I:maj V:maj",
            "I:maj bIII:maj IV:maj I:maj",
            "I:maj@.5 I:sus4@.5 I:maj IV:maj@.5 IV:sus2@.5 IV:maj",
            "VI:min IV:maj I:maj V:maj",
            "I:maj V:maj/3 IV:maj/3 IV:min/b3 I:maj/5 II:7/3 IV:maj V:maj",
            "I:7@2 IV:7@2 I:7@2 V:7 IV:7",
            "IV:maj I:maj/3 V:maj VI:min",
            "I:maj I:7/b7 IV:maj/3 IV:min/b3 I:maj/5 V:7 I:maj@2",
            "I:sus4 I:maj bVII:maj IV:maj/3",
            "I:maj I:aug I:maj6 I:7",
        ],
        "min": [
            "I:min bVII:maj bVI:maj bVII:maj",
            "I:min bVI:maj bVII:maj I:min",
            "I:min bIII:maj bVII:maj IV:maj",
            "I:min7 IV:7 I:min7 IV:7",
            "I:min bVII:maj bVI:maj V:7",
            "I:min I:minmaj7/7 I:min7/b7 I:min6/6",
            "I:min bVI:maj bIII:maj bVII:maj",
            "I:min IV:min V:7 I:min",
            "I:min V:min/b3 bVI:maj bVII:maj",
        ],
    },
    "jazz": {
        "maj": [
            "II:min7 V:7 I:maj7@2",
            "I:maj7 VI:7 II:min7 V:7",
            "I:maj7 VI:min7 II:min7 V:7",
            "III:min7 VI:7 II:min7 V:7",
            "II:min9 V:9 I:maj9@2",
            "I:maj7 #I:dim7 II:min7 #II:dim7 III:min7 VI:7(b9) II:min7 V:7",
            "IV:maj7 #IV:dim7 I:maj7/5 VI:7 II:min7 V:7 I:maj6@2",
            "I:maj6 VI:7(b9) II:min7 V:7(b9)",
            "II:min7@.5 V:7@.5 I:maj7 III:min7@.5 VI:7@.5 II:min7@.5 V:7@.5",
            "I:maj7 I:7 IV:maj7 IV:min6 III:min7 VI:7 II:min7 V:7",
            "II:min7 bII:7 I:maj7@2",
            "III:hdim7 VI:7(b9) II:min7 V:7",
            "I:maj7 V:min7@.5 I:7@.5 IV:maj7 bVII:7",
            "II:min7 V:aug I:maj6@2",
        ],
        "min": [
            "II:hdim7 V:7(b9) I:min6@2",
            "I:min7 IV:7 bVII:maj7 bIII:maj7 bVI:maj7 II:hdim7 V:7(b9) I:min6",
            "I:min I:minmaj7 I:min7 I:min6",
            "I:min I:minmaj7/7 I:min7/b7 I:min6/6",
            "I:min6 II:hdim7 V:7(b9) I:min6",
            "IV:min7 bVII:7 bIII:maj7 bVI:maj7 II:hdim7 V:7 I:min7@2",
            "I:minmaj7@2 IV:min7 bVII:7",
        ],
    },
    "folk": {
        "maj": [
            "I:maj IV:maj I:maj V:maj",
            "I:maj V:maj VI:min IV:maj",
            "I:maj VI:min IV:maj V:maj",
            "I:maj IV:maj/5 I:maj V:maj",
            "I:maj V:maj/3 VI:min I:maj/5 IV:maj I:maj/3 II:min V:sus4",
            "I:maj@.5 I:sus4@.5 I:maj@.5 I:sus2@.5 IV:maj@.5 IV:sus2@.5 IV:maj",
            "IV:maj I:maj/3 V:maj I:maj",
            "VI:min IV:maj I:maj V:maj/3",
            "I:maj II:7 IV:maj I:maj",
            "I:maj bVII:maj IV:maj I:maj",
            "I:maj I:maj/3 IV:maj V:maj",
            "IV:maj #IV:dim I:maj/5 V:7",
        ],
        "min": [
            "I:min bVII:maj I:min bVII:maj",
            "I:min bIII:maj bVII:maj I:min",
            "I:min IV:maj I:min IV:maj",
            "I:min bVI:maj bVII:maj I:min",
            "I:min V:min I:min bVII:maj",
            "I:min V:min/b3 bVI:maj bIII:maj/3 IV:min I:min/b3 V:sus4 V:7",
        ],
    },
    "soul": {
        "maj": [
            "I:maj I:maj/3 IV:maj #IV:dim7 I:maj/5 VI:7 II:min7 V:7",
            "I:maj III:7/3 VI:min I:7/5 IV:maj #IV:dim7 I:maj/5 V:7",
            "I:maj7 IV:maj/5 I:maj7 IV:maj/5",
            "IV:maj9 III:min7 II:min7 I:maj7",
            "II:min9 V:sus4(b7) I:maj7@2",
            "I:maj I:7/b7 IV:maj/3 IV:min/b3 I:maj/5 VI:7 II:min7 V:7",
            "IV:maj #IV:dim7 I:maj/5 VI:7/3 II:min7 V:7 I:maj I:7/b7",
            "I:maj VI:min7 II:min9 V:7(b9)",
            "I:maj V:maj/3 VI:min7 I:7/5 IV:maj7 IV:min6 I:maj/5 V:sus4(b7)",
            "II:min7 III:min7 IV:maj7 V:sus4(b7)",
        ],
        "min": [
            "I:min7 IV:7 I:min7 IV:7",
            "I:min9 IV:9 I:min9 IV:9",
            "II:hdim7 V:7(b9) I:min9@2",
            "bVI:maj7 bVII:sus4(b7) I:min9@2",
            "I:min7 bIII:maj7 IV:min7 V:7(b9)",
            "I:min9@2 IV:min9 V:7(b9)",
        ],
    },
    "bossa": {
        "maj": [
            "I:maj7@2 II:7@2 II:min7 bII:7 I:maj7@2",
            "I:maj7 VI:7(b9) II:min7 V:7",
            "II:min9 V:7(b9) I:maj(9)@2",
            "I:maj6 #I:dim7 II:min7 V:7",
            "I:maj7 I:maj6 II:min7 V:7",
            "III:min7 VI:7(b9) II:min9 V:9",
            "IV:maj7 bVII:7 I:maj7 VI:7(b9)",
        ],
        "min": [
            "I:min6@2 II:hdim7 V:7(b9)",
            "I:min(9) IV:min7 II:hdim7 V:7(b9)",
            "I:min7 IV:min7 bVII:7 bIII:maj7 bVI:maj7 II:hdim7 V:7(b9) I:min6",
            "I:min I:minmaj7/7 I:min7/b7 I:min6/6",
            "I:min7 IV:7 I:min7 IV:7",
        ],
    },
}


@dataclass(frozen=True)
class Genre:
    """How one genre's songs are drawn.

    Attributes:
        tempo: BPM range.
        waltz: chance of 3/4 (else 4/4).
        minor: chance of a minor key.
        swing: where a swung off-beat eighth falls within the beat (0: straight).
        bass: chance of a bass instrument; drums: chance of drums.
        inversion: chance of each rule of `add_inversions`.
        primary, secondary: chord instruments to draw from (the secondary one, with chance `second`, is
            neither the primary nor a second guitar).
        basses: bass instruments; bass_styles: bass patterns with their weights.
    """

    tempo: tuple[float, float]
    waltz: float
    minor: float
    swing: float
    bass: float
    drums: float
    inversion: float
    primary: tuple[str, ...]
    secondary: tuple[str, ...]
    second: float
    basses: tuple[str, ...]
    bass_styles: dict[str, float]


GENRES = {
    "pop": Genre(
        (70, 130), 0.12, 0.35, 0.0, 0.8, 0.9, 0.38,
        ("piano", "guitar_steel", "epiano", "harp", "guitar_nylon"),
        ("pad", "organ", "epiano", "kalimba", "harp"), 0.5, ("bass_fingered", "bass_synth", "bass_picked"),
        {"held": 0.2, "eighths": 0.3, "root5": 0.2, "octave": 0.12, "syncop": 0.18}),
    "rock": Genre(
        (88, 170), 0.04, 0.45, 0.0, 0.9, 0.95, 0.28, ("guitar_steel", "guitar_steel", "piano", "organ"),
        ("organ", "pad", "piano"), 0.45, ("bass_picked", "bass_fingered"),
        {"eighths": 0.5, "held": 0.15, "root5": 0.2, "syncop": 0.15}),
    "jazz": Genre(
        (80, 170), 0.25, 0.3, 0.64, 0.9, 0.85, 0.15, ("piano", "epiano", "guitar_jazz"), ("organ", "pad"),
        0.2, ("bass_upright",), {"walk": 0.8, "twofeel": 0.2}),
    "folk": Genre(
        (70, 140), 0.4, 0.35, 0.0, 0.55, 0.5, 0.38, ("guitar_steel", "guitar_nylon", "harp", "piano"),
        ("kalimba", "harp", "organ", "guitar_steel"), 0.4, ("bass_upright", "bass_fingered"),
        {"root5": 0.45, "held": 0.35, "eighths": 0.2}),
    "soul": Genre(
        (60, 112), 0.08, 0.35, 0.0, 0.9, 0.9, 0.38, ("epiano", "organ", "piano"), ("organ", "pad", "epiano"),
        0.5, ("bass_fingered", "bass_synth"), {"funk": 0.3, "syncop": 0.3, "held": 0.2, "root5": 0.2}),
    "bossa": Genre(
        (100, 150), 0.0, 0.35, 0.0, 0.8, 0.85, 0.15, ("guitar_nylon", "guitar_nylon", "piano", "epiano"),
        ("pad", "epiano"), 0.35, ("bass_upright", "bass_fingered"), {"bossa": 1.0}),
}  # fmt: skip

#: Genres are drawn in shuffled blocks of 9 songs (pop, rock and folk twice; soul, jazz and bossa once), so
#: that every genre appears in any small set; a block's order depends only on the seed.
GENRE_BLOCK = ("pop", "pop", "rock", "rock", "folk", "folk", "soul", "jazz", "bossa")
_BLOCK_STREAM = 7919
_FORMS = ("AABB", "ABAB", "AB", "ABAC", "AABA", "ABCA")


def weighted_choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    """A key of `weights`, drawn with probability proportional to its weight."""
    keys = list(weights)
    p = np.array([weights[k] for k in keys], float)
    return keys[rng.choice(len(keys), p=p / p.sum())]


def add_inversions(chords: list[Chord], mode: str, p: float, rng: np.random.Generator) -> list[Chord]:
    """A phrase with slash chords added where the bass moves idiomatically (each rule with chance `p` or
    `p` / 2): ``I/3`` before IV or ii, ``V/3`` before I or vi (a leading-tone bass), ``i/b3``, a chord of
    two bars or more split into a root-position half and a half over a moving bass, and the cadential
    ``I/5`` before a phrase's final V."""
    out: list[Chord] = []
    n = len(chords)
    for i, chord in enumerate(chords):
        following = chords[(i + 1) % n]
        step = (following.root - chord.root) % 12
        chord = Chord(chord.root, chord.quality, chord.bass_interval, chord.bars, chord.degree)
        if chord.bass_interval == 0:
            # Each rule's chance is drawn only where the rules before it do not apply and its own
            # conditions hold (and in this order): the draws are the song's random stream.
            if chord.quality in ("maj", "maj7", "maj(9)", "maj6") and step in (2, 5) and rng.random() < p:
                chord.bass_interval = 4  # I/3 -> IV or ii
            elif (
                chord.root == 7
                and chord.quality in ("maj", "7")
                and following.root in (0, 9)
                and rng.random() < p
            ):
                chord.bass_interval = 4  # V/3 -> I or vi
            elif chord.quality in ("min", "min7") and step in (2, 5, 8) and rng.random() < p / 2:
                chord.bass_interval = 3  # i/b3
            elif chord.bars >= 2 and chord.quality in ("maj", "min") and rng.random() < p / 2:
                half = chord.bars / 2
                chord.bars = half
                out.append(chord)
                if chord.quality == "maj":
                    moving = (
                        Chord(chord.root, "maj7", 11, half, chord.degree)
                        if step == 9
                        else Chord(chord.root, "maj", 4, half, chord.degree)
                    )
                else:
                    moving = (
                        Chord(chord.root, "min7", 10, half, chord.degree)
                        if step in (8, 5)
                        else Chord(chord.root, "min", 7, half, chord.degree)
                    )
                out.append(moving)
                continue
            elif (
                i == n - 1
                and chord.root == 7
                and chord.quality in ("maj", "7")
                and chord.bars >= 1
                and rng.random() < p / 2
            ):
                half = chord.bars / 2
                out.append(Chord(0, "maj" if mode == "maj" else "min", 7, half, 0))  # the cadential I/5
                chord.bars = half
        out.append(chord)
    return out


@dataclass
class Segment:
    """One chord of the song: from beat `beat_start` to `beat_end` (and `start` to `end` in seconds), its
    root pitch class, quality, bass interval above the root, scale degree and Harte label."""

    beat_start: float
    beat_end: float
    root: int
    quality: str
    bass_interval: int
    degree: int = 0
    label: str = ""
    start: float = 0.0
    end: float = 0.0

    @property
    def tones(self) -> tuple[int, ...]:
        return QUALITIES[self.quality]

    @property
    def bass_pc(self) -> int:
        return (self.root + self.bass_interval) % 12


def spell_root(tonic_name: str, degree: int, pc: int) -> str:
    """A chord root's name, spelled from the key's tonic letter and the chord's scale degree (``Db`` in A flat
    major, ``C#`` in A major); double accidentals and ``Cb``, ``Fb``, ``E#``, ``B#`` fall back to a plain
    sharp or flat name."""
    letter = _LETTERS[(_LETTERS.index(tonic_name[0]) + degree) % 7]
    accidental = (pc - _LETTER_PC[_LETTERS.index(letter)] + 6) % 12 - 6
    name = letter + ("#" * accidental if accidental > 0 else "b" * -accidental)
    if abs(accidental) > 1 or name in ("Cb", "Fb", "E#", "B#"):
        name = _FLAT_NAMES[pc] if accidental < 0 else _SHARP_NAMES[pc]
    return name


def make_label(quality: str, bass_interval: int, root_name: str) -> str:
    """The Harte label: ``root_name:quality``, with ``/degree`` for an inverted chord."""
    label = f"{root_name}:{quality}"
    if bass_interval:
        label += "/" + degree_name(quality, chord_tone(quality, bass_interval))
    return label


@dataclass
class SongPlan:
    """What a song plays before its parts are written: genre, key, tempo, meter, chords and instruments.

    `swing` is where an off-beat eighth falls within the beat (0: straight, 0.5 would be even), `tuning` the
    song's detuning in cents, `seconds` its length.
    """

    genre: str
    mode: str
    tonic: int
    tonic_name: str
    bpm: float
    beats_per_bar: int
    swing: float
    lead_in: float
    segments: list[Segment]
    has_bass: bool
    has_drums: bool
    bass_instrument: str | None
    bass_style: str | None
    chord_instruments: list[str]
    tuning: float
    seconds: float

    @property
    def seconds_per_beat(self) -> float:
        return 60.0 / self.bpm

    def time_of(self, beat: float) -> float:
        """A beat position in seconds, with swung off-beat eighths."""
        if self.swing:
            whole = math.floor(beat + 1e-9)
            if abs(beat - whole - 0.5) < 1e-6:
                beat = whole + self.swing
        return self.lead_in + beat * self.seconds_per_beat


def block_genre(seed: int, index: int) -> str:
    """The genre of song `index`: its place in its block of `GENRE_BLOCK`, shuffled by the seed alone."""
    order = np.random.default_rng([seed, index // len(GENRE_BLOCK), _BLOCK_STREAM]).permutation(
        len(GENRE_BLOCK)
    )
    return GENRE_BLOCK[order[index % len(GENRE_BLOCK)]]


def scale_pitch_classes(song: SongPlan) -> set[int]:
    """The pitch classes of the song's key (natural minor in a minor key)."""
    steps = (0, 2, 4, 5, 7, 9, 11) if song.mode == "maj" else (0, 2, 3, 5, 7, 8, 10)
    return {(song.tonic + s) % 12 for s in steps}


def plan_song(rng: np.random.Generator, seconds: float, genre: str) -> SongPlan:
    """Draw a song's key, tempo, meter, chords (on the beat grid, with times) and instruments from `rng`."""
    style = GENRES[genre]
    mode = "min" if rng.random() < style.minor else "maj"
    tonic = int(rng.integers(12))
    bpm = float(rng.uniform(*style.tempo))
    beats_per_bar = 3 if rng.random() < style.waltz else 4
    lead_in = float(rng.uniform(0.5, 2.0))
    relative_major = tonic if mode == "maj" else (tonic + 3) % 12
    # F# major is as often spelled Gb (and D# minor Eb minor): one draw, only for that key.
    flats = relative_major in (5, 10, 3, 8, 1) or (relative_major == 6 and rng.random() < 0.5)

    # The harmonic rhythm: fast songs often hold each chord twice as long.
    rhythm = 2.0 if (bpm > 135 and genre in ("rock", "pop", "folk", "jazz") and rng.random() < 0.6) else 1.0
    if beats_per_bar == 3 and bpm > 120 and rng.random() < 0.6:
        rhythm = 2.0

    phrases_of_mode = PROGRESSIONS[genre][mode]
    n_phrases = min(len(phrases_of_mode), 3)
    picks = rng.choice(len(phrases_of_mode), size=n_phrases, replace=False)
    phrases = [
        add_inversions([parse_token(t) for t in phrases_of_mode[k].split()], mode, style.inversion, rng)
        for k in picks
    ]
    form = _FORMS[rng.integers(len(_FORMS))]
    order = [min("ABC".index(part), n_phrases - 1) for part in form]

    end_target = seconds - float(rng.uniform(0.6, 2.0))
    # At least one beat: a song of 4-5 s may draw a lead-in and a tail that leave none (a song without a
    # chord); one beat of at most 1 s after a lead-in of at most 2 s still ends before 4 s.
    max_beats = max(1, math.floor((end_target - lead_in) / (60.0 / bpm) + 1e-9))
    segments = _lay_out(phrases, order, rhythm, beats_per_bar, max_beats, tonic)
    tonic_name = (_TONIC_MAJOR if mode == "maj" else _TONIC_MINOR)[tonic]
    if tonic == 6 and mode == "maj" and flats:
        tonic_name = "Gb"
    if tonic == 3 and mode == "min" and not flats:
        tonic_name = "D#"
    for segment in segments:
        segment.label = make_label(
            segment.quality, segment.bass_interval, spell_root(tonic_name, segment.degree, segment.root)
        )

    has_bass = rng.random() < style.bass
    has_drums = rng.random() < style.drums
    bass_instrument = style.basses[rng.integers(len(style.basses))] if has_bass else None
    bass_style = weighted_choice(rng, style.bass_styles) if has_bass else None
    primary = style.primary[rng.integers(len(style.primary))]
    instruments = [primary]
    if rng.random() < style.second:
        others = [
            s
            for s in style.secondary
            if s != primary and not (primary.startswith("guitar") and s.startswith("guitar"))
        ]
        if others:
            instruments.append(others[rng.integers(len(others))])
    tuning = float(rng.uniform(-30, 30))
    song = SongPlan(
        genre, mode, tonic, tonic_name, bpm, beats_per_bar, style.swing, lead_in, segments, has_bass,
        has_drums, bass_instrument, bass_style, instruments, tuning, seconds,
    )  # fmt: skip
    for segment in song.segments:
        segment.start, segment.end = song.time_of(segment.beat_start), song.time_of(segment.beat_end)
    return song


def _lay_out(
    phrases: list[list[Chord]],
    order: list[int],
    rhythm: float,
    beats_per_bar: int,
    max_beats: int,
    tonic: int,
) -> list[Segment]:
    """The phrases' chords in `order`, repeated, on the beat grid (each chord's bars times `rhythm`, rounded
    to beats) until `max_beats`; a final chord of less than half a 4/4 bar is dropped."""
    segments: list[Segment] = []
    position = 0.0  # in bars
    k = 0
    while True:
        phrase = phrases[order[k % len(order)]]
        k += 1
        done = False
        for chord in phrase:
            start = math.floor(position * beats_per_bar + 0.5)
            position += chord.bars * rhythm
            end = math.floor(position * beats_per_bar + 0.5)
            if start >= max_beats:
                done = True
                break
            end = min(end, max_beats)
            if end - start < 1:
                continue
            segments.append(
                Segment(
                    start, end, (tonic + chord.root) % 12, chord.quality, chord.bass_interval, chord.degree
                )
            )
            if end >= max_beats:
                done = True
                break
        if done:
            return _without_short_ending(segments, beats_per_bar)


def _without_short_ending(segments: list[Segment], beats_per_bar: int) -> list[Segment]:
    if len(segments) > 1 and segments[-1].beat_end - segments[-1].beat_start < 2 and beats_per_bar == 4:
        segments.pop()
    return segments
