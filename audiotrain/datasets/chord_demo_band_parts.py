"""The players of the ``"band"`` demo style: chord voicings, guitar shapes, bass lines and comping patterns.

- Keyboard-like instruments voice a chord from the candidates of `voicing_candidates` (close, drop-2,
  open, doubled, spread) in their own register, scored by the distance to their centre, the instrument's
  taste in shapes, voice leading from the previous chord and the size of the voicing, plus noise.
- Guitars play `guitar_shapes`: playable shapes in standard tuning (a four-fret window, at most four
  fingers or a barre), preferring many strings, low positions, open strings and small moves.
- The bass (`bass_line`) strikes the labelled bass at every chord's start, then plays a pattern of
  `BASS_FIGURES` (or a walking line with an approach note into the next chord).
- Chord instruments comp in one of `PLAYING_STYLES` (strums, finger-picking, block chords, arpeggios,
  held chords, jazz comping), picked per instrument, genre and tempo by `pick_style`.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

from audiotrain.datasets.chord_demo_band_harmony import Segment, SongPlan, scale_pitch_classes

import numpy as np

CHORD_LOW, CHORD_HIGH = 40, 84  # chord instruments stay within E2..C6

#: Per instrument: (lowest note, highest note, centre, its voicing shapes with a penalty each, target size).
VOICING_HABITS = {
    "piano": (40, 84, 62, {"spread": 0.0, "close": 0.3, "drop2": 0.2, "double": 0.4, "open": 0.3}, 5),
    "epiano": (45, 79, 61, {"close": 0.0, "drop2": 0.0, "spread": 0.3, "open": 0.2}, 4),
    "organ": (43, 79, 61, {"close": 0.0, "double": 0.2, "spread": 0.4, "drop2": 0.4}, 4),
    "pad": (43, 84, 64, {"open": 0.0, "drop2": 0.0, "close": 0.3, "spread": 0.2}, 4),
    "harp": (40, 84, 62, {"spread": 0.0, "double": 0.1, "open": 0.1, "close": 0.5}, 5),
    "kalimba": (55, 84, 70, {"close": 0.0, "double": 0.0, "open": 0.2}, 4),
}


def stack(order: list[int], start: int) -> list[int]:
    """MIDI notes of the pitch classes `order`, each the next one above the previous, from `start`."""
    notes = [start]
    for pc in order[1:]:
        n = notes[-1] + 1
        while n % 12 != pc:
            n += 1
        notes.append(n)
    return notes


def voicing_candidates(
    pcs: list[int], low: int, high: int, bottom_pc: int | None, shapes: dict[str, float]
) -> list[tuple[str, list[int]]]:
    """(shape, sorted MIDI notes) of every voicing of `pcs` in [low, high] in one of `shapes`, with
    `bottom_pc` lowest if given: close (every rotation), drop-2 and drop-3, open, doubled (the lowest note
    an octave up too), and spread (a bass note, sometimes its octave, then a close chord a fifth or an octave
    above)."""
    m = len(pcs)
    out = []
    for r in range(m):
        order = pcs[r:] + pcs[:r]
        for start in range(low - 12, high + 1):
            if start % 12 != order[0]:
                continue
            close = stack(order, start)
            out.append(("close", close))
            if m >= 4:
                out.append(("drop2", sorted(close[:-2] + [close[-2] - 12] + close[-1:])))
                out.append(("drop2", sorted(close[:-3] + [close[-3] - 12] + close[-2:])))
            if m == 3:
                out.append(("open", [close[0], close[2], close[1] + 12]))
            if m >= 3:
                out.append(("open", [close[0], close[1] + 12, close[2]] + [c + 12 for c in close[3:]]))
            out.append(("double", close + [close[0] + 12]))
    if "spread" in shapes:
        for bass_pc in [bottom_pc] if bottom_pc is not None else [pcs[0]]:
            for bass in range(low, low + 12):
                if bass % 12 != bass_pc:
                    continue
                for r in range(m):
                    order = pcs[r:] + pcs[:r]
                    for gap in (7, 12):
                        first = bass + gap
                        while first % 12 != order[0]:
                            first += 1
                        upper = stack(order, first)
                        out.append(("spread", [bass] + upper))
                        if bass + 12 < upper[0] - 2:
                            out.append(("spread", [bass, bass + 12] + upper))
    result = []
    seen = set()
    for shape, voicing in out:
        if shape not in shapes:
            continue
        voicing = sorted(voicing)
        if voicing[0] < low or voicing[-1] > high or len(set(voicing)) != len(voicing):
            continue
        if bottom_pc is not None and voicing[0] % 12 != bottom_pc:
            continue
        if tuple(voicing) in seen:
            continue
        seen.add(tuple(voicing))
        result.append((shape, voicing))
    return result


def voice_leading_distance(previous: list[int] | None, voicing: list[int]) -> float:
    """How far a voicing moves from the previous one: the mean distance of each note to the nearest note of
    the other voicing, both ways, averaged (0 for the first chord)."""
    if not previous:
        return 0.0
    # Integer sums divided once: the same float as numpy's mean of the distance matrix's minima.
    towards = sum(min(abs(p - v) for p in previous) for v in voicing) / len(voicing)
    back = sum(min(abs(p - v) for v in voicing) for p in previous) / len(previous)
    return 0.5 * (towards + back)


def choose_voicing(
    instrument: str,
    pcs: list[int],
    bottom_pc: int | None,
    floor: int,
    previous: list[int] | None,
    rng: np.random.Generator,
) -> list[int]:
    """The best-scoring voicing of `pcs` for `instrument`, every note above `floor` (one noise draw per
    candidate); with no candidate, a close voicing from the lowest `bottom_pc` (or the first pitch class)."""
    low, high, centre, shapes, target = VOICING_HABITS[instrument]
    low = max(low, floor + 1)
    if high - low < 14:  # keep room when the bass line climbs high
        high = min(CHORD_HIGH, low + 14)
    candidates = voicing_candidates(pcs, low, high, bottom_pc, shapes)
    if not candidates:
        bass_pc = bottom_pc if bottom_pc is not None else pcs[0]
        bass = low
        while bass % 12 != bass_pc:
            bass += 1
        return stack([bass_pc] + [p for p in pcs if p != bass_pc], bass)
    best, best_score = None, 1e9
    centre = max(centre, low + 8)
    for shape, voicing in candidates:
        score = (
            abs(sum(voicing) / len(voicing) - centre) / 4
            + shapes[shape]
            + voice_leading_distance(previous, voicing) * 0.6
            + abs(len(voicing) - target) * 0.4
            + rng.normal(0, 0.35)
        )
        if score < best_score:
            best, best_score = voicing, score
    return best


GUITAR_STRINGS = (40, 45, 50, 55, 59, 64)  # standard tuning, E2 to E4


@functools.lru_cache(maxsize=4096)
def guitar_shapes(
    required: frozenset[int], allowed: frozenset[int], bottom_pc: int | None, floor: int
) -> list[tuple[float, int, list[int]]]:
    """The 40 best (score, position, sorted MIDI notes) guitar shapes with every `required` pitch class and
    only `allowed` ones, `bottom_pc` lowest if given, every note above `floor`.

    A shape is played in a four-fret window at positions 0-9 (open strings up to position 3), on at least
    three adjacent strings from its lowest one with at most one muted string between, with at most four
    fingers or a barre; lower scores are better: more strings, lower positions, fewer mutes, more open
    strings. Cached: returned lists must not be changed.
    """
    scored = {}
    for position in range(0, 10):
        frets = list(range(max(position, 1), position + 4)) + ([0] if position <= 3 else [])
        options = [
            [(f, string + f) for f in frets if (string + f) % 12 in allowed and string + f > floor]
            for string in GUITAR_STRINGS
        ]
        for low in range(0, 4):
            lows = [x for x in options[low] if bottom_pc is None or x[1] % 12 == bottom_pc]
            for low_fret, low_note in lows:
                upper = [options[s] + [None] for s in range(low + 1, 6)]
                for combo in itertools.product(*upper):
                    played = [(low, low_fret, low_note)] + [
                        (low + 1 + j, c[0], c[1]) for j, c in enumerate(combo) if c
                    ]
                    if len(played) < 3:
                        continue
                    mutes = (played[-1][0] - low + 1) - len(played)
                    if mutes > 1:
                        continue
                    notes = [n for _, _, n in played]
                    if (
                        min(notes) != low_note
                        or len(set(notes)) < 3
                        or not required <= {n % 12 for n in notes}
                    ):
                        continue
                    fretted = [f for _, f, _ in played if f > 0]
                    if fretted:
                        lowest_fret = min(fretted)
                        if fretted.count(lowest_fret) >= 2:  # a barre on the lowest fret
                            fingers = 1 + sum(1 for f in fretted if f > lowest_fret)
                        else:
                            fingers = len(fretted)
                        if fingers > 4 or max(fretted) - lowest_fret > 3:
                            continue
                    opens = sum(1 for _, f, _ in played if f == 0)
                    score = -1.1 * len(played) + 0.12 * position + 1.6 * mutes - 0.25 * opens
                    key = tuple(sorted(notes))
                    if key not in scored or scored[key][0] > score:
                        scored[key] = (score, position)
    return sorted(((v[0], v[1], list(k)) for k, v in scored.items()), key=lambda x: x[0])[:40]


def choose_guitar_shape(
    required: list[int],
    pcs: list[int],
    bottom_pc: int | None,
    floor: int,
    previous_position: int | None,
    rng: np.random.Generator,
    root: int,
) -> tuple[list[int] | None, int | None]:
    """(notes, position) of a guitar shape for the chord: the best of `guitar_shapes` after noise (one draw
    per shape), a penalty for moving along the neck and, over a bass player, for a shape not on its root;
    (None, previous position) when no shape fits."""
    shapes = guitar_shapes(frozenset(required), frozenset(pcs), bottom_pc, floor)
    if not shapes:
        return None, previous_position
    best, best_score, best_position = None, 1e9, previous_position
    for score, position, notes in shapes:
        score = score + rng.normal(0, 0.5)
        if previous_position is not None:
            score += 0.25 * abs(position - previous_position)
        if bottom_pc is None and notes[0] % 12 != root:
            score += 0.8  # guitarists favour shapes on the root over a bass player
        if score < best_score:
            best, best_score, best_position = notes, score, position
    return best, best_position


def played_tones(
    segment: Segment,
    rng: np.random.Generator,
    rootless: bool = False,
    fifth_omission: float = 0.0,
    keep_pc=None,
) -> list[int]:
    """The pitch classes a chord instrument plays for a segment, root first in chord order: every chord
    tone, or without the root (`rootless`) and/or without a perfect fifth of a chord of four or more notes
    (chance `fifth_omission`); `keep_pc` is never left out, and a voicing thinned below three notes gets the
    fifth or root back."""
    tones = segment.tones
    out = []
    for tone in tones:
        pc = (segment.root + tone) % 12
        if tone == 0 and rootless and pc != keep_pc:
            continue
        if tone == 7 and len(tones) >= 4 and pc != keep_pc and rng.random() < fifth_omission:
            continue
        out.append(pc)
    if len(out) < 3:
        for tone in tones:
            pc = (segment.root + tone) % 12
            if pc not in out:
                out.append(pc)
            if len(out) >= 3:
                break
    order = [(segment.root + t) % 12 for t in tones]
    return sorted(set(out), key=order.index)


def required_tones(segment: Segment, pcs: list[int]) -> list[int]:
    """The tones of `pcs` a voicing must sound: all but the perfect fifth of a chord of four or more notes."""
    return [
        p for p in pcs if (p - segment.root) % 12 != 7 or segment.quality in ("maj", "min", "sus2", "sus4")
    ]


#: A bass figure per meter and pattern: (beat in the bar, role, length in beats). Roles: B the labelled bass,
#: F another chord tone (the fifth in root position, else the root), O the bass an octave up, S a 6th/7th.
BASS_FIGURES = {
    4: {
        "held": [(0, "B", 3.9)],
        "eighths": [(i * 0.5, "B", 0.42) for i in range(8)],
        "root5": [(0, "B", 1.85), (2, "F", 1.85)],
        "twofeel": [(0, "B", 1.85), (2, "F", 1.85)],
        "octave": [(i * 0.5, "B" if i % 2 == 0 else "O", 0.4) for i in range(8)],
        "syncop": [(0, "B", 1.4), (1.5, "B", 0.4), (2, "F", 0.9), (3, "B", 0.45), (3.5, "O", 0.4)],
        "funk": [(0, "B", 0.3), (0.75, "B", 0.2), (1.5, "O", 0.2), (1.75, "B", 0.2), (2.5, "F", 0.4),
                 (3, "S", 0.2), (3.25, "B", 0.2), (3.75, "O", 0.2)],
        "bossa": [(0, "B", 1.4), (1.5, "F", 0.45), (2, "F", 1.4), (3.5, "B", 0.45)],
    },
    3: {
        "held": [(0, "B", 2.9)],
        "eighths": [(i * 0.5, "B", 0.42) for i in range(6)],
        "root5": [(0, "B", 0.95), (1, "F", 0.9), (2, "F", 0.9)],
        "twofeel": [(0, "B", 1.9), (2, "F", 0.9)],
        "octave": [(0, "B", 0.9), (1, "O", 0.9), (2, "F", 0.9)],
        "syncop": [(0, "B", 1.4), (1.5, "F", 0.45), (2, "B", 0.9)],
        "funk": [(0, "B", 1.4), (1.5, "F", 0.45), (2, "B", 0.9)],
        "bossa": [(0, "B", 1.4), (1.5, "F", 0.45), (2, "F", 0.9)],
    },
}  # fmt: skip
BASS_LOW, BASS_HIGH = 28, 52  # E1 .. E3 (walking lines may reach 52)


def nearest_pitch(pc: int, reference: int, low: int, high: int) -> int:
    """The MIDI note of pitch class `pc` in [low, high] nearest to `reference` (the lower one on a tie)."""
    return min((m for m in range(low, high + 1) if m % 12 == pc), key=lambda m: (abs(m - reference), m))


def bass_line(song: SongPlan, rng: np.random.Generator) -> list[tuple[float, float, int, bool]]:
    """(beat on, beat off, MIDI note, whether it starts a chord) of the song's bass line.

    Each chord starts on its labelled bass, voice-led from the previous one (mostly E1-E2). A walking line
    then moves by chord tones and scale steps towards the next chord's bass, its last note a step or half
    step from it; the other styles play their `BASS_FIGURES`, sometimes resting on a note or approaching the
    next chord from a step away on the segment's last beat.
    """
    segments = song.segments
    starts = []
    previous = 36 + int(rng.integers(-3, 4))
    for segment in segments:
        m = nearest_pitch(segment.bass_pc, previous, BASS_LOW, 43)
        if m > 40 and m - 12 >= BASS_LOW and rng.random() < 0.5:
            m -= 12
        starts.append(m)
        previous = m
    notes = []
    style = song.bass_style
    beats_per_bar = song.beats_per_bar
    scale = scale_pitch_classes(song)
    for i, segment in enumerate(segments):
        start = starts[i]
        following = starts[i + 1] if i + 1 < len(segments) else start
        chord_pcs = [(segment.root + t) % 12 for t in segment.tones]
        if style == "walk":
            line = _walking_line(segment, start, following, chord_pcs, scale, rng)
            notes += [
                (segment.beat_start + k, segment.beat_start + k + 0.9, m, k == 0) for k, m in enumerate(line)
            ]
            continue
        notes += _figured_line(segment, style, beats_per_bar, start, following, rng)
    return notes


def _walking_line(
    segment: Segment,
    start: int,
    following: int,
    chord_pcs: list[int],
    scale: set[int],
    rng: np.random.Generator,
) -> list[int]:
    """One note a beat: the labelled bass, then steps towards the next chord's bass (chord tones twice as
    likely, nearer the straight line more likely, sometimes a fourth up first), ending a step away from it."""
    n_beats = int(round(segment.beat_end - segment.beat_start))
    line = [start]
    for k in range(1, n_beats):
        current = line[-1]
        if k == n_beats - 1:  # a chromatic or diatonic approach into the next chord's bass
            candidates = [following - 1, following + 1, following - 2, following + 2]
            candidates = [c for c in candidates if BASS_LOW <= c <= BASS_HIGH and c != current]
            m = candidates[0] if rng.random() < 0.6 else candidates[int(rng.integers(len(candidates)))]
        else:
            goal = start + (following - start) * k / n_beats + (5 if k == 1 and rng.random() < 0.5 else 0)
            # A scale tone's chance is drawn only for the scale tones in reach that are not chord tones.
            pool = [
                m for m in range(max(BASS_LOW, current - 7), min(BASS_HIGH, current + 7) + 1)
                if m != current and (m % 12 in chord_pcs or (m % 12 in scale and rng.random() < 0.5))
            ]  # fmt: skip
            if not pool:
                pool = [current + 2 if current + 2 <= BASS_HIGH else current - 2]
            weights = np.array(
                [1.0 / (1 + abs(m - goal)) * (2.0 if m % 12 in chord_pcs else 1.0) for m in pool]
            )
            m = pool[rng.choice(len(pool), p=weights / weights.sum())]
        line.append(int(m))
    return line


def _figured_line(
    segment: Segment, style: str, beats_per_bar: int, start: int, following: int, rng: np.random.Generator
) -> list[tuple[float, float, int, bool]]:
    """A segment's notes of a `BASS_FIGURES` pattern: bar by bar, starting on the labelled bass at the
    segment's start; each later note rests with chance 0.1, and with chance 0.3 a last note within a beat
    of the next chord approaches its bass from a step or half step away."""
    figure = BASS_FIGURES[beats_per_bar][style]
    if segment.bass_interval == 0:
        fifths = [t for t in segment.tones if t in (7, 6, 8)]
        other_pc = (segment.root + (fifths[0] if fifths else segment.tones[1])) % 12
    else:
        other_pc = segment.root
    other = nearest_pitch(other_pc, start + 4, BASS_LOW, BASS_HIGH)
    sixths = [t for t in segment.tones if t in (10, 11, 9)]
    sixth = (
        nearest_pitch((segment.root + sixths[0]) % 12, start + 8, BASS_LOW, BASS_HIGH) if sixths else other
    )
    octave = start + 12 if start + 12 <= BASS_HIGH else start
    pitches = {"B": start, "F": other, "O": octave, "S": sixth}
    events = []
    for bar in range(
        int(segment.beat_start // beats_per_bar), int(math.ceil(segment.beat_end / beats_per_bar)) + 1
    ):
        for position, role, length in figure:
            beat = bar * beats_per_bar + position
            if segment.beat_start - 1e-6 <= beat < segment.beat_end - 1e-6:
                events.append([beat, min(beat + length, segment.beat_end), pitches[role]])
    if not events or abs(events[0][0] - segment.beat_start) > 1e-6:
        events.insert(0, [segment.beat_start, min(segment.beat_start + 1.0, segment.beat_end), start])
    events[0][2] = start
    events = [e for j, e in enumerate(events) if j == 0 or rng.random() > 0.1]  # rests
    if (
        len(events) > 1
        and rng.random() < 0.3
        and events[-1][0] > segment.beat_start
        and segment.beat_end - events[-1][0] <= 1.01
    ):
        distance = following - events[-1][2]
        if distance != 0:
            approach = following - int(np.sign(distance)) * (1 if rng.random() < 0.5 else 2)
            if BASS_LOW <= approach <= BASS_HIGH:
                events[-1][2] = approach
    notes = []
    for j, (beat_on, beat_off, m) in enumerate(events):
        if j + 1 < len(events):
            beat_off = min(beat_off, events[j + 1][0])
        notes.append((beat_on, beat_off, int(m), j == 0))
    return notes


@dataclass(frozen=True)
class Comping:
    """A chord instrument's playing style: per meter (beats per bar) its events in a bar, (beat, kind,
    velocity), the event kinds forced at a chord's start, and how notes end: `ring` (until struck again or
    the chord ends), `hold` (one chord held for the whole segment) or a `legato` share of the gap to the next
    event. Kinds (see `select_notes`): ALL, strums D (down) / U (up), ROLL, LH / RH (a pianist's hands), An
    (arpeggio step n), Tn / Fn (a finger-picker's thumb and fingers), UP (the top notes)."""

    events: dict[int, list[tuple[float, str, float]]]
    onset: tuple[str, ...]
    ring: bool = False
    legato: float = 0.9
    hold: bool = False


def _comping(events_4, events_3, onset, ring=False, legato=0.9, hold=False) -> Comping:
    return Comping({4: events_4, 3: events_3}, tuple(onset), ring, legato, hold)


def _eighths(n: int, kind=lambda i: "D" if i % 2 == 0 else "U", velocity=lambda i: 1 if i % 2 == 0 else 0.6):
    return [(i * 0.5, kind(i), velocity(i)) for i in range(n)]


def _arpeggio(steps: list[int], step: float, accents: tuple[float, float]):
    return [(i * step, f"A{j}", accents[0] if i % 2 == 0 else accents[1]) for i, j in enumerate(steps)]


PLAYING_STYLES = {
    # strummed and picked guitar
    "quarters": _comping([(0, "D", 1), (1, "D", 0.75), (2, "D", 0.9), (3, "D", 0.75)],
                         [(0, "D", 1), (1, "D", 0.7), (2, "D", 0.7)], ["D"], ring=True),
    "ddu_udu": _comping([(0, "D", 1), (1, "D", 0.8), (1.5, "U", 0.6), (2.5, "U", 0.6), (3, "D", 0.8),
                         (3.5, "U", 0.6)],
                        [(0, "D", 1), (1, "D", 0.7), (1.5, "U", 0.5), (2, "D", 0.7), (2.5, "U", 0.5)],
                        ["D"], ring=True),
    "eighths": _comping(_eighths(8), _eighths(6), ["D"], ring=True),
    "rock8": _comping(_eighths(8, lambda i: "D", lambda i: 1 if i % 2 == 0 else 0.75),
                      _eighths(6, lambda i: "D", lambda i: 1 if i % 2 == 0 else 0.75), ["D"], ring=True),
    "sixteenth": _comping([(0, "D", 1), (0.5, "U", 0.5), (0.75, "D", 0.6), (1, "D", 0.8), (1.5, "U", 0.5),
                           (2, "D", 0.9), (2.25, "U", 0.4), (2.5, "U", 0.6), (3, "D", 0.8), (3.5, "U", 0.5),
                           (3.75, "U", 0.45)],
                          [(0, "D", 1), (0.5, "U", 0.5), (1, "D", 0.8), (1.5, "U", 0.5), (2, "D", 0.8),
                           (2.5, "U", 0.5)], ["D"], ring=True),
    "half": _comping([(0, "D", 1), (2, "D", 0.85)], [(0, "D", 1)], ["D"], ring=True),
    "fingerpick": _comping([(0, "T0", 1), (0.5, "F2", 0.6), (1, "T1", 0.8), (1.5, "F1", 0.6), (2, "T0", 0.9),
                            (2.5, "F2", 0.6), (3, "T1", 0.8), (3.5, "F0", 0.65)],
                           [(0, "T0", 1), (1, "F2", 0.6), (1.5, "F1", 0.6), (2, "F0", 0.65),
                            (2.5, "F1", 0.55)], ["T0"], ring=True),
    "bossa": _comping([(0, "T0", 0.9), (0, "UP", 0.8), (1.5, "UP", 0.7), (2, "T1", 0.8), (3, "UP", 0.75)],
                      [(0, "T0", 0.9), (1, "UP", 0.7), (2, "UP", 0.7)], ["T0", "UP"], legato=0.85),
    "fourfeel": _comping([(0, "ALL", 0.9), (1, "ALL", 0.7), (2, "ALL", 0.85), (3, "ALL", 0.7)],
                         [(0, "ALL", 0.9), (1, "ALL", 0.7), (2, "ALL", 0.7)], ["ALL"], legato=0.55),
    # keyboards, harp and kalimba
    "block": _comping([(0, "ALL", 1), (1, "RH", 0.7), (2, "ALL", 0.85), (3, "RH", 0.7)],
                      [(0, "ALL", 1), (1, "RH", 0.7), (2, "RH", 0.7)], ["ALL"], legato=0.92),
    "syncop": _comping([(0, "ALL", 1), (1.5, "RH", 0.75), (2.5, "RH", 0.7), (3, "LH", 0.7), (3.5, "RH", 0.6)],
                       [(0, "ALL", 1), (1.5, "RH", 0.7), (2, "RH", 0.7)], ["ALL"], legato=0.9),
    "ballad_arp": _comping([(0, "LH", 1), (0.5, "A1", 0.6), (1, "A2", 0.65), (1.5, "A3", 0.6), (2, "A4", 0.7),
                            (2.5, "A3", 0.6), (3, "A2", 0.6), (3.5, "A1", 0.55)],
                           [(0, "LH", 1), (0.5, "A1", 0.6), (1, "A2", 0.6), (1.5, "A3", 0.6), (2, "A4", 0.65),
                            (2.5, "A2", 0.55)], ["LH"], ring=True),
    "waltz": _comping([(0, "LH", 1), (1, "RH", 0.7), (2, "RH", 0.7), (3, "RH", 0.7)],
                      [(0, "LH", 1), (1, "RH", 0.7), (2, "RH", 0.7)], ["LH", "RH"], legato=0.85),
    "gospel": _comping([(0, "ALL", 1), (1, "RH", 0.7), (1.5, "RH", 0.55), (2, "ALL", 0.85), (3, "RH", 0.7),
                        (3.5, "RH", 0.55)],
                       [(0, "ALL", 1), (1, "RH", 0.7), (2, "RH", 0.7)], ["ALL"], legato=0.9),
    "held": _comping([(0, "ALL", 0.9)], [(0, "ALL", 0.9)], ["ALL"], legato=0.98),
    "hold": _comping([], [], ["ALL"], hold=True),
    "stabs": _comping([(0, "ALL", 1), (1.5, "ALL", 0.7), (2.5, "ALL", 0.75)],
                      [(0, "ALL", 1), (1.5, "ALL", 0.7)], ["ALL"], legato=0.45),
    "arp8": _comping(_arpeggio([0, 1, 2, 3, 4, 3, 2, 1], 0.5, (0.7, 0.55)),
                     _arpeggio([0, 1, 2, 3, 2, 1], 0.5, (0.7, 0.55)), ["A0"], ring=True),
    "arp16": _comping(_arpeggio([0, 1, 2, 3, 4, 3, 2, 1, 0, 2, 1, 3, 2, 4, 3, 1], 0.25, (0.7, 0.5)),
                      _arpeggio([0, 1, 2, 3, 4, 3, 2, 1, 0, 2, 3, 1], 0.25, (0.7, 0.5)), ["A0"], ring=True),
    "rolled": _comping([(0, "ROLL", 0.9), (2, "ROLL", 0.6)], [(0, "ROLL", 0.9)], ["ROLL"], ring=True),
    "bossa_comp": _comping([(0, "ALL", 0.85), (1.5, "RH", 0.7), (3, "RH", 0.7)],
                           [(0, "ALL", 0.85), (1.5, "RH", 0.7)], ["ALL"], legato=0.8),
    "jazz_comp": None,  # a bar of `JAZZ_COMP_BARS` drawn at random each bar (the Charleston and friends)
}  # fmt: skip
#: Jazz comping bars: (beat, velocity) of each chord.
JAZZ_COMP_BARS = [
    [(0, 0.9), (1.5, 0.75)], [(1.5, 0.8), (3, 0.6)], [(0, 0.85), (2.5, 0.7)],
    [(1, 0.7), (2.5, 0.75), (3.5, 0.55)], [(0.5, 0.7), (2, 0.75)], [(0, 0.8), (3.5, 0.7)],
]  # fmt: skip


def pick_style(instrument: str, song: SongPlan, primary: bool, rng: np.random.Generator) -> str:
    """A key of `PLAYING_STYLES` for a chord instrument of the song (the primary one or the second)."""
    genre = song.genre

    def one_of(options: list[str]) -> str:
        return options[int(rng.integers(len(options)))]

    if instrument in ("guitar_steel", "guitar_nylon"):
        if instrument == "guitar_nylon" and genre == "bossa":
            return "bossa"
        if not primary:
            return one_of(["half", "fingerpick", "quarters"])
        options = {
            "rock": ["rock8", "quarters", "ddu_udu", "half", "eighths"],
            "pop": ["ddu_udu", "eighths", "sixteenth", "fingerpick", "quarters"],
            "folk": ["ddu_udu", "fingerpick", "quarters", "eighths", "fingerpick"],
            "soul": ["sixteenth", "quarters"], "jazz": ["quarters"], "bossa": ["bossa"],
        }[genre]  # fmt: skip
        if instrument == "guitar_nylon":
            options = ["fingerpick", "fingerpick", "ddu_udu", "quarters"]
        return one_of(options)
    if instrument == "guitar_jazz":
        return one_of(["fourfeel", "jazz_comp"])
    if instrument == "piano":
        if genre == "jazz":
            return "jazz_comp"
        if genre == "bossa":
            return "bossa_comp"
        options = {
            "pop": ["ballad_arp", "block", "syncop", "ballad_arp"], "rock": ["block", "syncop"],
            "folk": ["ballad_arp", "block", "waltz"], "soul": ["gospel", "block", "syncop"],
        }[genre]  # fmt: skip
        style = one_of(options)
        if song.beats_per_bar == 3 and style in ("block", "syncop") and rng.random() < 0.6:
            style = "waltz"
        if style == "ballad_arp" and song.bpm > 115:
            style = "block"
        if not primary:
            style = one_of(["held", "ballad_arp"]) if song.bpm < 110 else "held"
        return style
    if instrument == "epiano":
        if not primary:
            return one_of(["held", "arp8"]) if song.bpm < 120 else "held"
        if genre == "jazz":
            return one_of(["jazz_comp", "jazz_comp", "held"])
        if genre == "bossa":
            return one_of(["bossa_comp", "held"])
        return one_of(["held", "syncop", "arp8", "held"] if song.bpm < 115 else ["held", "syncop"])
    if instrument == "organ":
        if primary and genre in ("rock", "soul") and rng.random() < 0.35:
            return "stabs"
        return "hold"
    if instrument == "pad":
        return "hold"
    if instrument == "harp":
        return one_of(["arp8", "rolled", "arp16"] if song.bpm < 100 else ["arp8", "rolled"])
    if instrument == "kalimba":
        return "arp16" if song.bpm < 95 else "arp8"
    raise ValueError(f"no playing style for chord instrument {instrument!r}")


def select_notes(kind: str, voicing: list[int]) -> list[int]:
    """The notes of a sorted voicing that an event of `kind` plays (see `Comping`): the left hand is the
    lowest one or two notes within a ninth of the lowest, the right hand the rest; an up-strum plays the top
    four notes from the top; a thumb plays the lowest note (T0) or a low one, a finger a high one."""
    n = len(voicing)
    left = max(1, min(2, sum(1 for x in voicing if x < voicing[0] + 10)))
    if n - left < 2:
        left = 1
    if kind in ("ALL", "D", "ROLL"):
        return list(voicing)
    if kind == "LH":
        return voicing[:left]
    if kind == "RH":
        return voicing[left:] if n > left else list(voicing)
    if kind == "U":
        return voicing[-min(4, n) :][::-1]
    if kind == "UP":
        return voicing[-min(3, n - 1) :] if n > 1 else list(voicing)
    if kind[0] == "A":
        return [voicing[int(kind[1:]) % n]]
    if kind[0] == "T":
        i = int(kind[1:])
        return [voicing[min(i, max(0, n - 4))]] if i else [voicing[0]]
    if kind[0] == "F":
        i = int(kind[1:])
        return [voicing[max(n - 1 - i, min(2, n - 1))]]
    raise ValueError(f"unknown comping event kind {kind!r}")
