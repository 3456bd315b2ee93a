"""The score of a ``"band"`` demo song: every note its instruments play, and every draw before its mix.

`draw_score` replays a song's random stream from its seed and index: the plan (`chord_demo_band_harmony`),
a velocity, the bass line, each chord instrument's playing style and notes (`chord_demo_band_parts`), the drum
hits, and each instrument's sound and effects (`chord_demo_band_sound`), the organ's 16' drawbar pushed in
where it could sound below the labelled bass. It returns the stream where the mix's draws begin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from audiotrain.datasets.chord_demo_band_harmony import Segment, SongPlan, block_genre, plan_song
from audiotrain.datasets.chord_demo_band_parts import (
    CHORD_LOW,
    JAZZ_COMP_BARS,
    PLAYING_STYLES,
    Comping,
    bass_line,
    choose_guitar_shape,
    choose_voicing,
    pick_style,
    played_tones,
    required_tones,
    select_notes,
)
from audiotrain.datasets.chord_demo_band_sound import SUB_OCTAVE, draw_effects, draw_sound, without_sub_octave

import numpy as np

#: The labelled bass's note is struck first at a chord's start: within 4 ms, the others 5-12 ms after it.
_FIRST_LAG, _OTHERS_LAG = (0, 0.004), (0.005, 0.012)

Track = list[tuple[float, float, int, float]]  # (onset s, offset s, MIDI, velocity) notes


@dataclass
class Score:
    """Everything a song draws before its mix: the plan, each track's notes (the bass first, then the chord
    instruments in order), each chord instrument's playing style, the drums, and each track's sound and
    effects (with the organ's sub-octave decided)."""

    plan: SongPlan
    tracks: dict[str, Track]
    styles: dict[str, str]
    drum_style: str | None
    drum_hits: list[tuple[float, str, float]]
    sounds: dict[str, dict]
    effects: dict[str, dict]


def draw_score(seed: int, index: int, seconds: float) -> tuple[Score, np.random.Generator]:
    """Song `index`'s score, and its random stream where the score leaves it (at the mix's draws)."""
    rng = np.random.default_rng([seed, index])
    plan = plan_song(rng, seconds, block_genre(seed, index))
    velocity = float(rng.uniform(0.65, 0.9))
    tracks: dict[str, Track] = {}
    highest_bass: list[int | None] = [None] * len(plan.segments)
    if plan.has_bass:
        tracks[plan.bass_instrument] = _bass_track(plan, velocity, highest_bass, rng)
    primary_bottom: list[int | None] = [None] * len(plan.segments)
    strum_gap = float(rng.uniform(0.006, 0.025))  # between strings, in seconds
    styles = {}
    for k, instrument in enumerate(plan.chord_instruments):
        styles[instrument] = pick_style(instrument, plan, k == 0, rng)
        tracks[instrument] = _chord_track(
            plan,
            instrument,
            styles[instrument],
            k == 0,
            velocity,
            strum_gap,
            highest_bass,
            primary_bottom,
            rng,
        )
    drum_style, drum_hits = _drums(plan, velocity, rng) if plan.has_drums else (None, [])
    sub_octave_allowed = {
        instrument: _sub_octave_allowed(
            plan, instrument, k == 0, tracks, primary_bottom, SUB_OCTAVE[instrument][0]
        )
        for k, instrument in enumerate(plan.chord_instruments)
        if instrument in SUB_OCTAVE
    }
    sounds, effects = {}, {}
    for instrument in tracks:
        sounds[instrument] = draw_sound(instrument, rng)
        if not sub_octave_allowed.get(instrument, True):
            sounds[instrument] = without_sub_octave(sounds[instrument])
        effects[instrument] = draw_effects(instrument, rng)
    return Score(plan, tracks, styles, drum_style, drum_hits, sounds, effects), rng


def _bass_track(plan: SongPlan, velocity: float, highest_bass: list, rng: np.random.Generator) -> Track:
    """The bass line in seconds: a chord's first note a little after its start (within 4 ms), the others
    +-8 ms around their beat, cut at the segment's end; `highest_bass` gets each segment's highest note."""
    track = []
    k = 0
    for beat_on, beat_off, midi, starts_chord in bass_line(plan, rng):
        while plan.segments[k].beat_end <= beat_on + 1e-6:
            k += 1
        segment = plan.segments[k]
        onset = plan.time_of(beat_on) + (
            float(rng.uniform(*_FIRST_LAG)) if starts_chord else float(rng.uniform(-0.008, 0.008))
        )
        offset = min(plan.time_of(beat_off), segment.end)
        if onset >= segment.end - 0.01:
            continue
        onset = max(onset, segment.start)
        level = velocity * (1.0 if starts_chord else float(rng.uniform(0.7, 0.95)))
        track.append((onset, offset, midi, level))
        highest_bass[k] = midi if highest_bass[k] is None else max(highest_bass[k], midi)
    return track


def _chord_track(
    plan: SongPlan,
    instrument: str,
    style_name: str,
    primary: bool,
    velocity: float,
    strum_gap: float,
    highest_bass: list,
    primary_bottom: list,
    rng: np.random.Generator,
) -> Track:
    """One chord instrument's notes, segment by segment: a voicing (`_voicing`), its comping events in the
    segment (`_events`), which notes each event plays, and the notes as struck (`_strike`).
    `primary_bottom` gets the primary instrument's lowest notes."""
    style = PLAYING_STYLES[style_name]
    ring, legato, hold = (False, 0.7, False) if style is None else (style.ring, style.legato, style.hold)
    track: Track = []
    previous: tuple[list[int] | None, int | None] = (None, None)  # voicing, guitar position
    for k, segment in enumerate(plan.segments):
        if plan.has_bass:  # above the bass line
            floor, bottom_pc = max(highest_bass[k] or 40, 39), None
        elif primary:  # on the labelled bass
            floor, bottom_pc = CHORD_LOW - 1, segment.bass_pc
        else:  # above the primary instrument's lowest note
            floor, bottom_pc = primary_bottom[k], None
        voicing, pcs, previous = _voicing(plan, instrument, segment, floor, bottom_pc, previous, rng)
        if primary:
            primary_bottom[k] = voicing[0]
        events = _events(plan, style, segment, rng)
        selections = [select_notes(kind, voicing) for _, kind, _ in events]
        # An arpeggio or finger-picking pattern may not reach every voiced note of a short segment: the
        # missing required tones join the last event at the segment's start (a pinch), so that every segment
        # sounds its chord.
        required = set(required_tones(segment, pcs))
        played = {m % 12 for selection in selections for m in selection}
        missing = [m for m in voicing if m % 12 in required - played]
        if missing:
            last = max(j for j, e in enumerate(events) if abs(e[0] - segment.beat_start) < 1e-6)
            for m in missing:
                if m % 12 not in {x % 12 for x in selections[last]}:
                    selections[last] = selections[last] + [m]
        # The note giving the labelled bass (the primary instrument's, in songs without a bass) sounds first.
        lag = _FIRST_LAG if (primary and not plan.has_bass) else _OTHERS_LAG
        level = velocity * (1.0 if primary else 0.8)
        _strike(track, plan, segment, events, selections, lag, level, strum_gap, hold or ring, legato, rng)
    return track


def _voicing(
    plan: SongPlan,
    instrument: str,
    segment: Segment,
    floor: int,
    bottom_pc: int | None,
    previous: tuple[list[int] | None, int | None],
    rng: np.random.Generator,
) -> tuple[list[int], list[int], tuple[list[int], int | None]]:
    """(voicing, the pitch classes it plays, (voicing, guitar position) for the next chord): the tones
    (rootless with chance 0.5 in a jazz, bossa or soul keyboard or jazz guitar part over a bass on the root
    of a four-note chord; a four-note chord's fifth left out with chance 0.35, never the labelled bass
    without a bass instrument), then a guitar shape, or a keyboard voicing (also for a guitar with no shape
    for the chord: it plays it as a pianist would)."""
    previous_voicing, previous_position = previous
    guitar = instrument.startswith("guitar")
    rootless = (
        plan.genre in ("jazz", "bossa", "soul") and instrument in ("piano", "epiano", "guitar_jazz")
        and plan.has_bass and segment.bass_interval == 0 and len(segment.tones) >= 4 and rng.random() < 0.5
    )  # fmt: skip
    pcs = played_tones(
        segment, rng, rootless=rootless, fifth_omission=0.35 if len(segment.tones) >= 4 else 0,
        keep_pc=segment.bass_pc if not plan.has_bass else None,
    )  # fmt: skip
    voicing = None
    if guitar:
        voicing, previous_position = choose_guitar_shape(
            required_tones(segment, pcs), pcs, bottom_pc, floor, previous_position, rng, segment.root
        )
    if voicing is None:
        voicing = choose_voicing(
            "piano" if guitar else instrument, pcs, bottom_pc, floor, previous_voicing, rng
        )
    return voicing, pcs, (voicing, previous_position)


def _events(plan: SongPlan, style: Comping | None, segment: Segment, rng: np.random.Generator) -> list:
    """(beat, kind, velocity) comping events of a segment, sorted: the style's forced kinds at its start, then
    the style's bars (jazz comping: a bar of `JAZZ_COMP_BARS` drawn per bar) inside it."""
    meter = plan.beats_per_bar
    bars = range(int(segment.beat_start // meter), int(math.ceil(segment.beat_end / meter)))
    if style is None:
        events = [
            (bar * meter + position, "ALL", velocity)
            for bar in bars
            for position, velocity in JAZZ_COMP_BARS[int(rng.integers(len(JAZZ_COMP_BARS)))]
            if position < meter
        ]
        onset_kinds = ("ALL",)
    else:
        onset_kinds = style.onset
        events = (
            []
            if style.hold
            else [(bar * meter + p, kind, v) for bar in bars for p, kind, v in style.events[meter]]
        )
    events = [e for e in events if segment.beat_start + 1e-6 < e[0] < segment.beat_end - 1e-6]
    events = [(segment.beat_start, kind, 1.0) for kind in onset_kinds] + events
    events.sort(key=lambda e: e[0])
    return events


def _strike(
    track: Track,
    plan: SongPlan,
    segment: Segment,
    events: list,
    selections: list[list[int]],
    lag: tuple[float, float],
    level: float,
    strum_gap: float,
    sustain: bool,
    legato: float,
    rng: np.random.Generator,
) -> None:
    """Append a segment's notes to `track`: the first event `lag` after the segment's start, the others
    +-8 ms around their beat; a strum's strings `strum_gap` apart (an up-strum softer), a roll's 35 ms apart,
    other notes within 4 ms. Notes ring to the segment's end (`sustain`) or for a `legato` share of the gap
    to the next event; a note struck again ends the one before; none starts in the segment's last 20 ms."""
    beats = sorted({e[0] for e in events})
    sounding = {}  # MIDI -> the index of its note in `track`
    for (beat, kind, event_velocity), selection in zip(events, selections):
        if abs(beat - segment.beat_start) < 1e-6:
            time = segment.start + float(rng.uniform(*lag))
        else:
            time = segment.start + ((plan.time_of(beat) - segment.start) + float(rng.uniform(-0.008, 0.008)))
        if kind in ("D", "U"):
            gap = strum_gap * float(rng.uniform(0.8, 1.25))
            offsets = [j * gap for j in range(len(selection))]
        elif kind == "ROLL":
            offsets = [j * 0.035 for j in range(len(selection))]
        else:
            offsets = [float(rng.uniform(0, 0.004)) for _ in selection]
        if sustain:
            end = segment.end
        else:
            later = [x for x in beats if x > beat + 1e-6]
            next_beat = later[0] if later else segment.beat_end
            end = min(
                segment.end, plan.time_of(beat) + (plan.time_of(next_beat) - plan.time_of(beat)) * legato
            )
        for midi, offset in zip(selection, offsets):
            onset = time + offset
            if onset >= segment.end - 0.02:
                continue
            if midi in sounding:
                j = sounding[midi]
                start, stop, _, earlier_velocity = track[j]
                track[j] = (start, min(stop, onset), midi, earlier_velocity)
            velocity = (
                level * event_velocity * float(rng.uniform(0.85, 1.05)) * (0.75 if kind == "U" else 1.0)
            )
            track.append((onset, max(onset + 0.03, end), midi, velocity))
            sounding[midi] = len(track) - 1


def _drums(
    plan: SongPlan, velocity: float, rng: np.random.Generator
) -> tuple[str, list[tuple[float, str, float]]]:
    """(drum style, (time, drum, velocity) hits) from the lead-in to the last chord: the genre's pattern
    (a fast rock song rides), a fill with chance 0.35 every fourth bar, a crash with chance 0.6 every eighth
    (not in jazz), each hit +-5 ms off the grid."""
    style = "rockfast" if plan.genre == "rock" and plan.bpm > 150 else plan.genre
    meter = plan.beats_per_bar
    end = plan.segments[-1].end
    hits = []
    for bar in range(int(math.ceil(plan.segments[-1].beat_end / meter))):
        fill = (bar % 4 == 3) and rng.random() < 0.35
        for position, drum, hit_velocity in drum_bar(plan, style, bar, fill, rng):
            time = plan.time_of(bar * meter + position) + float(rng.uniform(-0.005, 0.005))
            if time < plan.lead_in or time >= end - 0.02:
                continue
            hits.append(
                (max(time, plan.lead_in), drum, hit_velocity * velocity * float(rng.uniform(0.85, 1.1)))
            )
        if bar % 8 == 0 and bar > 0 and rng.random() < 0.6 and plan.genre != "jazz":
            hits.append((plan.time_of(bar * meter), "crash", 0.6 * velocity))
    return style, hits


def _sub_octave_allowed(
    plan: SongPlan, instrument: str, primary: bool, tracks: dict[str, Track], primary_bottom: list, shift: int
) -> bool:
    """Whether a chord instrument's sub-octave component (`shift` semitones below its notes) may sound.

    Yes when the instrument gives the labelled bass itself (no bass instrument, the primary instrument: the
    component doubles the bass an octave lower, same pitch class), or when in every segment its lowest note
    less `shift` is still above every bass-instrument note of the segment (with a bass instrument) or the
    primary instrument's labelled bass note (without one).
    """
    if not plan.has_bass and primary:
        return True
    for k, segment in enumerate(plan.segments):
        mine = [
            m
            for on, off, m, _ in tracks[instrument]
            if on < segment.end - 1e-3 and off > segment.start + 1e-3
        ]
        if not mine:
            continue
        if plan.has_bass:
            bass = tracks[plan.bass_instrument]
            reference = [
                m for on, off, m, _ in bass if on < segment.end - 1e-3 and off > segment.start + 1e-3
            ]
        else:
            reference = [primary_bottom[k]]
        if reference and min(mine) - shift <= max(reference):
            return False
    return True


def drum_bar(song: SongPlan, style: str, bar: int, fill: bool, rng: np.random.Generator) -> list:
    """The hits of one bar of a drum `style`: (beat in the bar, drum, velocity); a fill replaces its last two
    beats with sixteenths on the snare and toms."""
    beats_per_bar = song.beats_per_bar
    hits = []
    r = rng.random
    if style in ("pop", "rock", "soul", "folk"):
        if beats_per_bar == 4:
            pop_extra_kick = r() < 0.3  # drawn in every one of these styles, as the stream has it
            kick = {
                "pop": [0, 2.5] + ([1.75] if pop_extra_kick else []), "rock": [0, 2, 2.5],
                "soul": [0, 0.75, 2.5], "folk": [0, 2],
            }[style]  # fmt: skip
            back = [1, 3]
        else:
            kick, back = [0], [1, 2] if style != "folk" else [2]
        hits += [(p, "kick", 0.95) for p in kick]
        snare = "rim" if style == "folk" and r() < 0.6 else "snare"
        hits += [(p, snare, 0.85) for p in back]
        if style == "soul":
            hits += [(p, "snare", 0.18) for p in (1.75, 3.25) if p < beats_per_bar]  # ghost notes
        if style == "folk":
            hits += [(i * 0.5, "shaker", 0.6 if i % 2 == 0 else 0.4) for i in range(beats_per_bar * 2)]
        elif style == "soul" or (style == "pop" and song.bpm < 100 and r() < 0.5):
            hits += [(i * 0.25, "hat", 0.55 if i % 2 == 0 else 0.3) for i in range(beats_per_bar * 4)]
        else:
            hits += [(i * 0.5, "hat", 0.6 if i % 2 == 0 else 0.4) for i in range(beats_per_bar * 2)]
            if style == "rock" and r() < 0.3:
                hits.append((beats_per_bar - 0.5, "ohat", 0.5))
    elif style == "rockfast":
        hits += [(0, "kick", 0.95), (2 if beats_per_bar == 4 else 1.5, "kick", 0.8)]
        hits += [(p, "snare", 0.85) for p in ([1, 3] if beats_per_bar == 4 else [1, 2])]
        hits += [(i, "ride", 0.5) for i in range(beats_per_bar)]
    elif style == "jazz":
        swung = [0, 1, 1.5, 2, 3, 3.5] if beats_per_bar == 4 else [0, 1, 1.5, 2]
        hits += [(p, "ride", 0.55 if p % 1 == 0 else 0.35) for p in swung]
        hits += [(p, "hat", 0.35) for p in ([1, 3] if beats_per_bar == 4 else [1, 2])]
        hits += [(p, "kick", 0.15) for p in range(beats_per_bar)]
        for _ in range(int(rng.integers(0, 3))):  # comping on the snare or brush
            beat = int(rng.integers(beats_per_bar * 2)) * 0.5
            hits.append((beat, "brush" if r() < 0.5 else "snare", 0.25))
    elif style == "bossa":
        hits += [(p, "kick", 0.8) for p in ([0, 1.5, 2, 3.5])]
        clave = [0, 1.5, 3] if bar % 2 == 0 else [1, 2.5]
        hits += [(p, "rim", 0.7) for p in clave]
        hits += [(i * 0.5, "hat", 0.45 if i % 2 == 0 else 0.3) for i in range(8)]
    if fill:
        hits = [x for x in hits if x[0] < beats_per_bar - 2]
        toms = ["snare", "tom_hi", "tom_mid", "tom_lo"]
        for j in range(8):
            hits.append(
                (
                    beats_per_bar - 2 + j * 0.25,
                    toms[min(3, j // 2)] if style != "jazz" else "snare",
                    0.5 + 0.05 * j,
                )
            )
    return hits
