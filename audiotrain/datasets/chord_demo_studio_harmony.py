"""The harmony of the ``"studio"`` demo style: six genres, each with its tempo range, progression habits,
chord colours and slash-chord idioms (`plan_studio_chords`).

A progression is a loop of (degree, function) steps in a major or minor key; a genre colours each function
with a chord type drawn from its own weights (a funk dominant is a 9 or a 7(#9), a rock one a plain major),
so every chord quality of the vocabulary but ``1`` appears in some genre (``1`` only rarely, in rock).
Inverted chords come from idioms (a descending bass line, the ``I/5`` and ``IV/1`` pedals, ``I/3``, a
``ii7`` over the tonic) and from single chords played over their third, fifth or seventh.
"""

from __future__ import annotations

from dataclasses import dataclass

from audiotrain.chords.vocabulary import TYPE_INTERVALS

import numpy as np

#: Chord types per function, with a weight; a genre scales these by its own `colours`.
FUNCTIONS: dict[str, dict[str, float]] = {
    "M": {"maj": 10, "maj7": 5, "maj9": 2, "maj6": 2, "maj6(9)": 1.5, "maj(9)": 2, "maj13": 1, "sus2": 2,
          "sus4": 2, "5": 1.5, "1": 0.2},
    "m": {"min": 10, "min7": 6, "min9": 2, "min11": 1.5, "min6": 1.5, "min(9)": 1.5, "min13": 1, "minmaj7": 0.7,
          "5": 0.5},
    "D": {"7": 8, "9": 3, "13": 2, "7(b9)": 1.5, "7(#9)": 1.5, "sus4(b7)": 2, "11": 1, "maj": 4, "sus4": 1},
    "h": {"hdim7": 6, "dim": 3, "min7": 1},
    "o": {"dim7": 5, "dim": 2},
    "+": {"aug": 3},
}  # fmt: skip


@dataclass(frozen=True)
class Genre:
    """How one genre writes its chords.

    Attributes:
        tempo: BPM range.
        minor: chance of a minor key.
        loops_major, loops_minor: progressions, each a tuple of (semitones above the key, function) steps.
        colours: per function, multipliers of `FUNCTIONS` weights (a type not named keeps weight 1, one
            named with 0 is never drawn).
        beats: (chord lengths in beats, their weights).
        inversion: chance that a single chord is played over its third, fifth or seventh.
        idiom: chance, at each loop start, of a slash-chord idiom instead of the loop.
        swing: share of an eighth note by which off-beats are late (0: straight).
    """

    tempo: tuple[float, float]
    minor: float
    loops_major: tuple[tuple[tuple[int, str], ...], ...]
    loops_minor: tuple[tuple[tuple[int, str], ...], ...]
    colours: dict[str, dict[str, float]]
    beats: tuple[tuple[int, ...], tuple[float, ...]]
    inversion: float
    idiom: float
    swing: float


GENRES: dict[str, Genre] = {
    "ballad": Genre(
        tempo=(58, 84), minor=0.3,
        loops_major=(((0, "M"), (7, "M"), (9, "m"), (5, "M")), ((9, "m"), (5, "M"), (0, "M"), (7, "M")),
                     ((0, "M"), (9, "m"), (5, "M"), (7, "D")), ((5, "M"), (7, "M"), (4, "m"), (9, "m"))),
        loops_minor=(((0, "m"), (8, "M"), (3, "M"), (10, "M")), ((0, "m"), (5, "m"), (10, "M"), (3, "M"))),
        colours={"M": {"5": 0, "1": 0, "maj(9)": 3, "sus2": 2}, "D": {"maj": 3, "sus4": 3, "7(#9)": 0}},
        beats=((2, 4, 8), (0.3, 0.5, 0.2)), inversion=0.2, idiom=0.3, swing=0.0,
    ),
    "funk": Genre(
        tempo=(92, 122), minor=0.55,
        loops_major=(((0, "D"), (5, "D")), ((0, "D"), (10, "M")), ((0, "m"), (5, "D")), ((0, "m"), (3, "M"), (5, "D"))),
        loops_minor=(((0, "m"), (5, "D")), ((0, "m"), (10, "D")), ((0, "m"), (3, "M"), (5, "m"))),
        colours={"D": {"9": 4, "13": 2, "7(#9)": 3, "maj": 0.5}, "m": {"min7": 3, "min9": 3, "min11": 3, "min": 0.5},
                 "M": {"maj7": 2, "maj9": 2, "5": 0}},
        beats=((2, 4, 8), (0.25, 0.5, 0.25)), inversion=0.16, idiom=0.12, swing=0.15,
    ),
    "jazz": Genre(
        tempo=(68, 112), minor=0.35,
        loops_major=(((2, "m"), (7, "D"), (0, "M")), ((2, "m"), (7, "D"), (0, "M"), (9, "D")),
                     ((4, "m"), (9, "D"), (2, "m"), (7, "D")), ((5, "M"), (4, "m"), (2, "m"), (0, "M"))),
        loops_minor=(((2, "h"), (7, "D"), (0, "m")), ((0, "m"), (5, "m"), (2, "h"), (7, "D"))),
        colours={"M": {"maj": 0.3, "maj7": 3, "maj9": 3, "maj13": 3, "maj6(9)": 3, "5": 0, "1": 0, "sus4": 0},
                 "m": {"min": 0.3, "min9": 3, "min11": 3, "min13": 3, "minmaj7": 3},
                 "D": {"maj": 0, "9": 2, "13": 3, "7(b9)": 3}},
        beats=((2, 4), (0.5, 0.5)), inversion=0.22, idiom=0.2, swing=0.6,
    ),
    "rock": Genre(
        tempo=(100, 152), minor=0.35,
        loops_major=(((0, "M"), (10, "M"), (5, "M")), ((0, "M"), (5, "M"), (7, "M")), ((9, "m"), (5, "M"), (0, "M"), (7, "M")),
                     ((0, "M"), (7, "M"), (5, "M"), (0, "M"))),
        loops_minor=(((0, "m"), (10, "M"), (8, "M"), (10, "M")), ((0, "m"), (8, "M"), (10, "M"))),
        colours={"M": {"maj": 3, "5": 5, "1": 1, "sus4": 2, "maj7": 0.2, "maj9": 0, "maj13": 0, "maj6(9)": 0},
                 "m": {"min": 3, "5": 4, "min9": 0, "min11": 0, "min13": 0, "minmaj7": 0},
                 "D": {"maj": 6, "13": 0, "7(b9)": 0, "11": 0}},
        beats=((2, 4, 8), (0.25, 0.5, 0.25)), inversion=0.14, idiom=0.25, swing=0.0,
    ),
    "bossa": Genre(
        tempo=(112, 144), minor=0.35,
        loops_major=(((0, "M"), (2, "D"), (2, "m"), (7, "D")), ((0, "M"), (1, "o"), (2, "m"), (7, "D")),
                     ((2, "m"), (7, "D"), (0, "M"), (0, "M"))),
        loops_minor=(((0, "m"), (2, "h"), (7, "D"), (0, "m")), ((0, "m"), (5, "m"), (10, "D"), (3, "M"))),
        colours={"M": {"maj": 0.3, "maj7": 3, "maj6(9)": 3, "maj6": 2, "5": 0, "1": 0},
                 "m": {"min": 0.3, "min7": 2, "min6": 3, "min(9)": 2}, "D": {"maj": 0, "7(b9)": 3, "9": 2}},
        beats=((4, 8), (0.6, 0.4)), inversion=0.22, idiom=0.2, swing=0.0,
    ),
    "gospel": Genre(
        tempo=(62, 100), minor=0.2,
        loops_major=(((0, "M"), (4, "m"), (5, "M"), (6, "o")), ((5, "M"), (6, "o"), (0, "M"), (9, "D")),
                     ((0, "M"), (0, "D"), (5, "M"), (5, "m")), ((2, "m"), (7, "D"), (0, "M"), (8, "+"))),
        loops_minor=(((0, "m"), (5, "m"), (7, "D"), (0, "m")), ((0, "m"), (8, "M"), (7, "D"))),
        colours={"M": {"maj7": 2, "maj9": 2, "maj6": 2, "5": 0, "1": 0}, "D": {"9": 2, "13": 2, "11": 2},
                 "m": {"min7": 2, "min9": 2, "min11": 2}},
        beats=((2, 4), (0.5, 0.5)), inversion=0.22, idiom=0.35, swing=0.3,
    ),
}  # fmt: skip

#: Slash-chord idioms: (semitones above the key, function, bass interval above the chord's root) steps.
IDIOMS_MAJOR = (
    ((0, "M", 0), (7, "M", 4), (9, "m", 0), (9, "m", 10), (5, "M", 0)),  # descending line: I V/3 vi vi/b7 IV
    ((0, "M", 0), (5, "M", 7), (0, "M", 0)),  # IV/1 pedal
    ((5, "M", 0), (0, "M", 7), (7, "D", 0), (0, "M", 0)),  # cadential I/5
    ((0, "M", 0), (0, "M", 4), (5, "M", 0)),  # I I/3 IV
    ((0, "M", 0), (2, "m", 10), (0, "M", 0)),  # ii7 over the tonic
    ((0, "M", 0), (9, "m", 3), (5, "M", 7), (0, "M", 0)),  # tonic pedal: I vi/1 IV/1 I
)
IDIOMS_MINOR = (
    ((0, "m", 0), (0, "m", 10), (8, "M", 4), (5, "m", 3)),  # descending line: i i/b7 VI/3 iv/b3
    ((0, "m", 0), (5, "m", 7), (0, "m", 0)),  # iv/1 pedal
    ((8, "M", 0), (0, "m", 7), (7, "D", 0), (0, "m", 0)),  # cadential i/5
    ((0, "m", 0), (7, "D", 4), (0, "m", 0)),  # i V/3 i
)


@dataclass(frozen=True)
class PlannedChord:
    """A chord segment: [start, end) in seconds; ``type_name`` None for a break (N)."""

    start: float
    end: float
    type_name: str | None
    root: int
    bass: int


def _genre_types(genre: Genre, function: str) -> tuple[list[str], np.ndarray]:
    weights = {t: w * genre.colours.get(function, {}).get(t, 1.0) for t, w in FUNCTIONS[function].items()}
    names = [t for t, w in weights.items() if w > 0]
    p = np.array([weights[t] for t in names])
    return names, p / p.sum()


def _draw_type(genre: Genre, function: str, rng: np.random.Generator, needs: int | None = None) -> str:
    """A chord type for a function in this genre; `needs` an interval the type must contain (a slash chord's
    bass), falling back to the function's types that have it."""
    names, p = _genre_types(genre, function)
    if needs is not None:
        keep = [i for i, t in enumerate(names) if needs in TYPE_INTERVALS[t]]
        if not keep:
            names, p = _genre_types(GENRES["ballad"], function)  # a plainer colour
            keep = [i for i, t in enumerate(names) if needs in TYPE_INTERVALS[t]]
        names, p = [names[i] for i in keep], p[keep] / p[keep].sum()
    return str(rng.choice(names, p=p))


def plan_studio_chords(
    genre_name: str,
    rng: np.random.Generator,
    beat: float,
    start: float,
    end: float,
    pedal_idioms: bool = False,
) -> list[PlannedChord]:
    """Chords filling [start, end) on the beat grid in a drawn key: the genre's loops (sometimes with a chord
    swapped for another degree or function), its idioms, inversions, and a rare break.

    `pedal_idioms` (a bass playing a pedal pattern) makes the tonic-pedal idioms more likely.
    """
    genre = GENRES[genre_name]
    key = int(rng.integers(12))
    minor = rng.random() < genre.minor
    loops = genre.loops_minor if minor else genre.loops_major
    idioms = IDIOMS_MINOR if minor else IDIOMS_MAJOR
    lengths, length_p = genre.beats
    loop = loops[rng.integers(len(loops))]
    loop_beats = [int(rng.choice(lengths, p=length_p)) for _ in loop]
    chords: list[PlannedChord] = []
    queue: list[tuple[int, str, int, int]] = []  # (degree, function, bass interval, beats)
    t, previous = start, None
    while t < end - beat:
        if not queue:
            if rng.random() < genre.idiom * (2.0 if pedal_idioms else 1.0):
                pedals = [i for i in idioms if all(s[0] == 0 or s[2] for s in i)] if pedal_idioms else []
                pool = pedals if pedals and rng.random() < 0.6 else idioms
                idiom = pool[rng.integers(len(pool))]
                queue = [(d, f, b, int(rng.choice((2, 4)))) for d, f, b in idiom]
            else:
                if rng.random() < 0.15:  # a new loop for the next section
                    loop = loops[rng.integers(len(loops))]
                    loop_beats = [int(rng.choice(lengths, p=length_p)) for _ in loop]
                queue = [(d, f, -1, n) for (d, f), n in zip(loop, loop_beats)]
                if rng.random() < 0.3:  # a substitution somewhere in the loop
                    k = int(rng.integers(len(queue)))
                    degree = int(rng.choice([0, 2, 4, 5, 7, 9, 10, 3, 8, 1, 6]))
                    queue[k] = (degree, str(rng.choice(["M", "m", "D", "h", "o", "+"], p=[0.3, 0.3, 0.25, 0.06, 0.06, 0.03])), -1, queue[k][3])  # fmt: skip
        degree, function, bass_interval, beats = queue.pop(0)
        stop = min(t + beats * beat, end)
        if stop - t < beat:
            break
        if rng.random() < 0.03 and chords and bass_interval < 0:
            chords.append(PlannedChord(t, stop, None, -1, -1))  # a break
            t, previous = stop, None
            continue
        root = (key + degree) % 12
        type_name = _draw_type(genre, function, rng, needs=bass_interval if bass_interval > 0 else None)
        intervals = sorted(TYPE_INTERVALS[type_name])
        if bass_interval >= 0:
            bass = (root + bass_interval) % 12
        elif len(intervals) > 1 and rng.random() < genre.inversion:
            # over the third most often, then the fifth, then the seventh or another tone
            others = [i for i in intervals if i]
            p = np.array([3.0 if i in (3, 4) else 2.0 if i in (6, 7, 8) else 1.0 for i in others])
            bass = (root + int(rng.choice(others, p=p / p.sum()))) % 12
        else:
            bass = root
        if (type_name, root, bass) == previous:  # the same chord again: hold it longer instead
            chords[-1] = PlannedChord(chords[-1].start, stop, type_name, root, bass)
        else:
            chords.append(PlannedChord(t, stop, type_name, root, bass))
        previous = (type_name, root, bass)
        t = stop
    return chords
