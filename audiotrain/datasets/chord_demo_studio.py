"""The ``"studio"`` demo style: a third generator of synthetic songs, an extra source of training data.

Written without looking at the held-out ``"independent"`` style, and sounding unlike the ``"train"`` style:

- six genres (`chord_demo_studio_harmony.GENRES`: ballad, funk, jazz/neo-soul, rock, bossa, gospel), each
  with its tempo range, loops, chord colours, slash-chord idioms and swing, and its own habits below;
- one or two chord instruments (FM electric piano, vibraphone, brass section, reed section, nylon guitar
  strummed or picked, choir; `chord_demo_studio_sound`) comping in a rhythm of the genre, each chord voiced
  close, open, drop-2, drop-3 or spread, in a register drawn per song and instrument;
- a bass instrument (picked, upright, 808, acid) playing one of eight `BASS_PATTERNS` (in about 20% of
  songs none: the chord instruments' lowest note is then the bass);
- one of seven drum patterns, a mix, a noise floor and a tuning offset of up to +-45 cents.

Labels follow the rules of `audiotrain.datasets.chord_demo` (its docstring): within a chord segment the
chord instruments play only the chord's pitch classes (a chord of four or more notes may lose its perfect
fifth, and over a bass instrument playing the root its root too); the labelled bass is never left out: the
bass instrument plays it for at least 60% of its note time in the segment (its other notes are chord tones,
neighbours or a chromatic approach to the next chord's bass), and without a bass instrument every chord
instrument's lowest note is the labelled bass; every note ends before its segment does. About a quarter of
the chord time is inverted (over 40 songs).

The style draws its tempo from its genres and its tuning from +-45 cents: of `DemoConfig`'s fields it uses
`n_songs`, `seed`, `song_seconds`, `timbres` (the chord instruments), `noise_db` and `percussion`.
"""

from __future__ import annotations

from audiotrain.chords.harte import parse_harte
from audiotrain.chords.lab import ChordSegment
from audiotrain.chords.vocabulary import CHORD_TYPES, decode_label
from audiotrain.datasets.chord_demo import DemoConfig, DemoSong, Note, played_pitch_classes
from audiotrain.datasets.chord_demo_studio_harmony import GENRES, plan_studio_chords
from audiotrain.datasets.chord_demo_studio_sound import (
    BASS_INSTRUMENTS,
    CHORD_INSTRUMENTS,
    DRUM_PATTERNS,
    instrument_sound,
    mix_settings,
    swung,
)

import numpy as np

STUDIO_VERSION = 1  # bump whenever the output changes: cached sets are then regenerated
TIMBRES = CHORD_INSTRUMENTS
BASS_PATTERNS = ("hold", "eighths", "root_fifth", "octaves", "walking", "funk", "arpeggio", "pedal")
VOICINGS = ("close", "open", "drop2", "drop3", "spread")
NO_BASS_SHARE = 0.2
_TOP_NOTE = 84  # the brightest tables' 10th harmonic stays under Nyquist at 22.05 kHz

#: A bass figure per pattern, over a 4-beat bar: (beat, length in beats, role). Roles: R the labelled bass,
#: O its octave, 5 the fifth (or another chord tone), C a chord tone, N a neighbour, A an approach to the
#: next chord's bass (a chord tone unless it is the segment's last note).
_BASS_FIGURES = {
    "hold": ((0, 4, "R"),),
    "eighths": tuple((k / 2, 0.45, "R") for k in range(8)),
    "root_fifth": ((0, 1.4, "R"), (1.5, 0.45, "5"), (2, 1.4, "R"), (3.5, 0.45, "5")),
    "octaves": tuple((k / 2, 0.45 if k % 2 == 0 else 0.3, "R" if k % 2 == 0 else "O") for k in range(8)),
    "walking": ((0, 0.95, "R"), (1, 0.5, "C"), (2, 0.95, "R"), (3, 0.5, "A")),
    "funk": ((0, 0.7, "R"), (0.75, 0.2, "O"), (1.5, 0.25, "R"), (2, 0.45, "R"), (2.75, 0.2, "N"), (3, 0.2, "O"),
             (3.5, 0.4, "C")),
    "arpeggio": ((0, 1, "R"), (1, 0.5, "C"), (1.5, 0.5, "5"), (2, 1, "O"), (3, 0.5, "C"), (3.5, 0.5, "A")),
    "pedal": ((0, 1.9, "R"), (2, 1.9, "R")),
}  # fmt: skip
#: Comping rhythms: beats of a 4-beat bar where a chord instrument plays.
_COMPS = {
    "whole": (0,), "half": (0, 2), "quarters": (0, 1, 2, 3), "eighths": tuple(k / 2 for k in range(8)),
    "charleston": (0, 1.5), "anticipation": (0, 2.5), "skank": (0, 0.5, 1.5, 2.5, 3.5),
    "funk16": (0, 0.75, 1.5, 2.25, 2.5, 3.5), "bossa": (0, 1.5, 2.5, 3),
}  # fmt: skip
#: Per genre: weights of chord instruments, bass instruments, bass patterns, drum patterns (anything not
#: named: 0.3, so every choice can occur in every genre), and the comping rhythms it uses.
_FEEL = {
    "ballad": ({"epiano": 3, "nylon": 2, "choir": 2, "vibraphone": 1}, {"bass_picked": 3, "bass_808": 1.5},
               {"hold": 3, "arpeggio": 2, "pedal": 2, "root_fifth": 1}, {"ballad": 4, "trap": 1, "gospel": 1},
               ("whole", "half", "quarters", "eighths")),
    "funk": ({"epiano": 3, "brass": 3, "reeds": 2}, {"bass_picked": 3, "bass_acid": 2, "bass_808": 1},
             {"funk": 4, "octaves": 3, "eighths": 1}, {"funk": 4, "rock": 1, "trap": 1},
             ("skank", "funk16", "anticipation", "charleston")),
    "jazz": ({"epiano": 3, "vibraphone": 3, "reeds": 2, "brass": 1}, {"bass_upright": 4, "bass_picked": 1},
             {"walking": 4, "root_fifth": 1, "hold": 1}, {"shuffle": 4, "ballad": 1},
             ("charleston", "anticipation", "half", "whole")),
    "rock": ({"nylon": 2, "brass": 1.5, "epiano": 1, "choir": 1}, {"bass_picked": 4, "bass_acid": 0.5},
             {"eighths": 4, "root_fifth": 1.5, "octaves": 1.5, "pedal": 1}, {"rock": 4, "shuffle": 0.5},
             ("quarters", "half", "eighths", "whole")),
    "bossa": ({"nylon": 4, "epiano": 1.5, "vibraphone": 1.5, "reeds": 1}, {"bass_upright": 3, "bass_picked": 2},
              {"root_fifth": 4, "hold": 1, "walking": 1}, {"bossa": 5}, ("bossa", "charleston", "half")),
    "gospel": ({"choir": 4, "epiano": 3, "brass": 1.5}, {"bass_picked": 2, "bass_808": 2},
               {"pedal": 2, "walking": 1.5, "arpeggio": 1.5, "hold": 1.5, "octaves": 1}, {"gospel": 4, "shuffle": 1.5},
               ("quarters", "half", "anticipation", "whole")),
}  # fmt: skip
#: Lowest-note range (MIDI) of each chord instrument's voicings.
_FLOORS = {"epiano": (48, 57), "vibraphone": (53, 62), "brass": (50, 58), "reeds": (48, 57), "nylon": (40, 50),
           "choir": (50, 57)}  # fmt: skip
_SUSTAINED = ("brass", "reeds", "choir")  # may hold the chord for the whole segment


def _pick(
    rng: np.random.Generator, options: tuple[str, ...], weights: dict[str, float], size: int = 1
) -> list[str]:
    p = np.array([weights.get(o, 0.3) for o in options])
    return [str(x) for x in rng.choice(options, size=size, replace=False, p=p / p.sum())]


def voicing(played: list[int], low_pc: int, floor: int, shape: str) -> list[int]:
    """MIDI notes of `played` with `low_pc` lowest (in the octave from `floor`) and every other pitch class
    above it, in one of `VOICINGS`: close (within the octave above the lowest note), open (every other upper
    note an octave up), drop-2 / drop-3 (the second / third note from the top of the close shape an octave
    down, still above the lowest note) or spread (the lowest note alone, the rest a fifth or more above it).
    Notes above MIDI 84 come down by octaves, staying above the lowest note."""
    low = floor + (low_pc - floor) % 12
    upper = sorted(low + 1 + (pc - low - 1) % 12 for pc in set(played) if pc != low_pc)
    if shape == "open":
        upper = [n + 12 if k % 2 else n for k, n in enumerate(upper)]
    elif shape in ("drop2", "drop3"):
        k = 2 if shape == "drop2" else 3
        if len(upper) >= k + 1 and upper[-k] - 12 > low:
            upper[-k] -= 12
    elif shape == "spread":
        upper = [n + 12 if n < low + 7 else n for n in upper]
    notes = [low, *upper]
    return sorted({n - 12 * max(0, -(-(n - _TOP_NOTE) // 12)) if n > _TOP_NOTE else n for n in notes})


def _bass_line(
    pattern: str, start: float, end: float, beat: float, swing: float, bass_pc: int, pcs: list[int],
    next_bass: int | None, low: int, chord_floor: int, rng: np.random.Generator,
) -> list[tuple[float, float, int, float]]:  # fmt: skip
    """(onset, offset, midi, velocity) bass notes of one segment [start, end): the pattern's figure, then as
    many of its other notes turned into the labelled bass as it takes for that to hold >= 60% of the note
    time."""
    base = low + (bass_pc - low) % 12
    octave = base + 12 if base + 12 < chord_floor else base
    others = [pc for pc in pcs if pc != bass_pc] or [bass_pc]
    fifth = (bass_pc + 7) % 12
    events = []
    bars = int(np.ceil((end - start) / (4 * beat) - 1e-9))
    for bar in range(bars):
        for position, length, role in _BASS_FIGURES[pattern]:
            onset = start + swung(4 * bar + position, swing) * beat
            if onset < end - 0.05:
                events.append([onset, min(onset + length * beat, end), role])
    notes = []
    for k, (onset, offset, role) in enumerate(events):
        last = k == len(events) - 1
        if role == "R":
            midi = base
        elif role == "O":
            midi = octave
        elif role == "5":
            pc = fifth if fifth in pcs else int(rng.choice(others))
            midi = base + (pc - base) % 12
            midi -= 12 if midi - 12 >= low and rng.random() < 0.5 else 0
        elif role == "N":
            midi = base + int(rng.choice([-2, -1, 1, 2]))
        elif role == "A" and last and next_bass is not None:
            midi = low + (next_bass - low) % 12 + int(rng.choice([-1, 1]))
        else:  # C, or an approach with nothing to approach
            midi = base + (int(rng.choice(others)) - base) % 12
        velocity = 1.0 if k == 0 else 0.45 if role == "N" else float(rng.uniform(0.6, 0.9))
        notes.append([onset, offset, int(midi), velocity])
    for note in notes[1:]:
        on_bass = sum(b - a for a, b, m, _ in notes if m % 12 == bass_pc)
        if on_bass >= 0.6 * sum(b - a for a, b, _, _ in notes) + 1e-9:
            break
        if note[2] % 12 != bass_pc:
            note[2] = base
    return [(a, b, m, v) for a, b, m, v in notes]


def plan_studio_song(config: DemoConfig, index: int) -> DemoSong:
    """The score of song ``index`` of a studio-style set (a pure function of the config and the index)."""
    rng = np.random.default_rng([config.seed, index, STUDIO_VERSION])
    genre = str(rng.choice(list(GENRES)))
    instrument_weights, bass_weights, pattern_weights, drum_weights, comps = _FEEL[genre]
    tempo = float(rng.uniform(*GENRES[genre].tempo))
    beat = 60.0 / tempo
    swing = GENRES[genre].swing * float(rng.uniform(0.5, 1.0))
    lead_in, tail = float(rng.uniform(0.4, 2.0)), float(rng.uniform(0.4, 1.5))
    bass_instrument = _pick(rng, BASS_INSTRUMENTS, bass_weights)[0] if rng.random() >= NO_BASS_SHARE else None
    bass_pattern = _pick(rng, BASS_PATTERNS, pattern_weights)[0]
    chords = plan_studio_chords(
        genre, rng, beat, lead_in, config.song_seconds - tail, pedal_idioms=bass_instrument is not None and bass_pattern == "pedal"
    )  # fmt: skip
    if not chords:  # no chord fitted after this lead-in (a song near the least length): one beat of lead-in
        lead_in = beat
        chords = plan_studio_chords(
            genre, rng, beat, lead_in, config.song_seconds - tail, pedal_idioms=bass_instrument is not None and bass_pattern == "pedal"
        )  # fmt: skip
    duration = chords[-1].end + tail
    timbres = tuple(config.timbres)
    n_instruments = 1 if len(timbres) == 1 or rng.random() < 0.55 else 2
    instruments = _pick(rng, timbres, instrument_weights, n_instruments)
    bass_low = int(rng.integers(28, 36))
    floors = {}
    for name in instruments:
        floor = int(rng.integers(_FLOORS[name][0], _FLOORS[name][1] + 1))
        floors[name] = max(floor, bass_low + 13) if bass_instrument else floor
    shapes = {
        name: _pick(rng, VOICINGS, {"close": 1, "open": 1, "drop2": 1, "drop3": 1, "spread": 1}, 2)
        for name in instruments
    }
    parts = {}  # instrument -> (comp rhythm, legato share of the gap, strum or pick for the nylon)
    for name in instruments:
        comp = (
            "whole"
            if name == "choir" or (name in _SUSTAINED and rng.random() < 0.5)
            else str(rng.choice(comps))
        )
        parts[name] = (
            comp,
            float(rng.uniform(0.35, 1.0)),
            "picked" if name == "nylon" and rng.random() < 0.4 else "strum",
        )
    shell = float(rng.uniform(0.2, 0.9))
    rootless = float(rng.uniform(0.0, 0.6)) if rng.random() < 0.5 else 0.0
    notes: list[Note] = []
    segments = [ChordSegment(0.0, lead_in, "N")]
    for i, chord in enumerate(chords):
        if chord.type_name is None:
            segments.append(ChordSegment(chord.start, chord.end, "N"))
            continue
        label = decode_label(CHORD_TYPES.index(chord.type_name), chord.root, chord.bass)
        segments.append(ChordSegment(chord.start, chord.end, label))
        pcs = sorted(parse_harte(label).pitch_classes)
        note_end = chord.end - 0.002  # every note is silent before the segment ends
        for name in instruments:
            played = played_pitch_classes(
                pcs, chord.root, chord.bass, bass_instrument is not None, rng, shell, rootless
            )
            low_pc = chord.bass if bass_instrument is None or rng.random() < 0.5 else int(rng.choice(played))
            shape = shapes[name][0] if rng.random() < 0.7 else shapes[name][1]
            notes += _chord_part(name, parts[name], voicing(played, low_pc, floors[name], shape), chord.start, note_end, beat, swing, rng)  # fmt: skip
        if bass_instrument is not None:
            following = next((c for c in chords[i + 1 :] if c.type_name is not None), None)
            line = _bass_line(
                bass_pattern, chord.start, note_end, beat, swing, chord.bass, pcs,
                following.bass if following else None, bass_low, min(floors.values()), rng,
            )  # fmt: skip
            notes += [Note(a, b, m, v, bass_instrument) for a, b, m, v in line if b - a > 0.03]
    segments.append(ChordSegment(chords[-1].end, duration, "N"))
    sounds = {
        name: instrument_sound(name, rng)
        for name in instruments + ([bass_instrument] if bass_instrument else [])
    }
    details = {
        "genre": genre,
        "instruments": instruments,
        "voicings": shapes,
        "parts": parts,
        "drums": _pick(rng, DRUM_PATTERNS, drum_weights)[0],
        "swing": swing,
        "sounds": sounds,
        "mix": mix_settings(rng),
    }
    return DemoSong(
        segments=[s for s in segments if s.end > s.start],
        notes=notes,
        duration=duration,
        tempo=tempo,
        tuning_cents=float(rng.uniform(-45.0, 45.0)),
        noise_db=float(rng.uniform(*config.noise_db)),
        level=float(rng.uniform(0.3, 0.95)),
        beats=[float(b) for b in np.arange(lead_in, chords[-1].end, beat)],
        percussion=config.percussion,
        bass_instrument=bass_instrument,
        bass_pattern=bass_pattern if bass_instrument else None,
        style="studio",
        details=details,
    )


def _chord_part(
    name: str, part: tuple[str, float, str], notes: list[int], start: float, end: float, beat: float, swing: float,
    rng: np.random.Generator,
) -> list[Note]:  # fmt: skip
    """One chord instrument's notes in a segment [start, end): its comping rhythm, a strum (nylon: strings
    a few ms apart, up-strokes on off-beats) or a picked pattern (nylon: the low note on the beats, the
    others on eighths, ringing)."""
    comp, legato, technique = part
    if name == "nylon" and technique == "picked":
        onsets = [start + swung(k / 2, swing) * beat for k in range(int((end - start) / (beat / 2)) + 1)]
        onsets = [o for o in onsets if o < end - 0.05]
        upper = notes[1:] or notes
        # The first pluck sounds the whole shape (a pinch), so a short chord still sounds every tone.
        out = [
            Note(onsets[0], min(onsets[0] + 1.5 * beat, end), m, float(rng.uniform(0.5, 0.9)), name)
            for m in notes
        ]
        for k, onset in enumerate(onsets[1:], start=1):
            midi = notes[0] if k % 2 == 0 else upper[(k // 2) % len(upper)]
            out.append(Note(onset, min(onset + 1.5 * beat, end), midi, float(rng.uniform(0.5, 0.9)), name))
        return out
    positions = _COMPS[comp]
    bars = int(np.ceil((end - start) / (4 * beat) - 1e-9))
    onsets = [start + swung(4 * bar + p, swing) * beat for bar in range(bars) for p in positions]
    onsets = [start] + [o for o in onsets[1:] if o < end - 0.15]
    out = []
    for k, onset in enumerate(onsets):
        gap = (onsets[k + 1] if k + 1 < len(onsets) else end) - onset
        off = min(end, onset + max(0.08, legato * gap))
        velocity = float(rng.uniform(0.55, 1.0))
        order = notes if name != "nylon" or k % 2 == 0 else notes[::-1]  # up-strokes
        stagger = float(rng.uniform(0.006, 0.02)) if name == "nylon" else 0.0
        for j, midi in enumerate(order):
            out.append(
                Note(
                    onset + j * stagger,
                    min(end, max(off, onset + j * stagger + 0.05)),
                    midi,
                    velocity * float(rng.uniform(0.75, 1.0)),
                    name,
                )
            )
    return out
