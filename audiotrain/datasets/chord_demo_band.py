"""The ``"band"`` demo style: a second held-out generator of synthetic songs, a small band in six genres.

Written without reading the repository's other generators, for one measurement of how chord recognition
carries over to songs it was not trained on (`benchmarks/chords_rounds.md`, eighteenth round):

- six genres (`chord_demo_band_harmony.GENRES`: pop, rock, folk, soul, jazz, bossa), drawn in shuffled
  blocks of nine songs so that every genre is in any small set, each with its own phrases of roman-numeral
  progressions (with slash chords), tempo range, meter (3/4 or 4/4), swing and instruments;
- one or two chord instruments of `TIMBRES` (piano, FM electric piano, drawbar organ, pad or brass, harp,
  kalimba, steel, nylon or jazz guitar; `chord_demo_band_sound`) comping in one of
  `chord_demo_band_parts.PLAYING_STYLES`: strums, finger-picking, block chords, arpeggios, held chords;
  guitars play playable shapes, the others voicings scored by register, voice leading and taste;
- a bass instrument of `BASS_TIMBRES` playing one of `BASS_PATTERNS` (none in 10-45% of a genre's songs),
  drums in the genre's pattern with fills and crashes, a reverb, a noise floor 42-55 dB down, a tuning
  offset of up to +-30 cents, the mix at -1 dBFS.

Labels follow this convention (checked on notes and on audio by ``tests/test_chord_demo_band.py``):

- A chord segment's labelled bass is the pitch class of the LOWEST note SOUNDING at the segment's start
  (its first ~100 ms), sub-octave timbre components included. With a bass instrument that is the bass note
  struck at the start, and every chord-instrument note of the chord (at its sounding pitch) is strictly
  above every bass note of it (a chord repeated in the next bar is one label, each bar voiced over its own
  bass line). Without one it is the lowest note of the primary chord instrument's voicing, struck at the
  start; a secondary chord instrument is voiced strictly above it. The note giving the labelled bass is
  struck 0-4 ms after the chord's start, the others 5-12 ms; labels are written to the millisecond.
- Sub-octave components: only the organ has one (its 16' drawbar sounds an octave below every written note;
  every other timbre has less than -30 dB of its energy below 0.8 f0). The 16' sounds only where it cannot
  become the lowest sounding pitch against the label: without a bass instrument with the organ as the
  primary instrument (it gives the labelled bass itself, and its 16' doubles it an octave lower), or where
  in every segment the organ's lowest note less an octave is still above every bass-instrument note (with a
  bass) or the labelled bass note (without one). Otherwise the 16' and the 5 1/3' quint are pushed in for
  the whole song (the quint alone would make the tone periodic an octave below: a resultant sub-octave).
  ``details["sub_octave"]`` and ``details["organ_drawbars"]`` record it, and the component has its own
  note rows (``"organ16"``, an octave below, same times) in `DemoSong.notes`, which lists sounding pitches.
- Chord instruments play only chord tones of the label: all of them, or leaving out only the perfect fifth
  of a chord of four or more notes and, in rootless jazz, soul and bossa voicings over a bass playing the
  root, the root. Bass-line walking and approach notes after the chord's start do not change the label.
  About a fifth of the chord time is inverted (17-23% over 40 songs).
- Notes end at the key release; the audio adds a short release (40-350 ms by timbre) and a reverb (RT60
  0.4-1.6 s, its send high-passed at 150 Hz). At every chord change the new bass note dominates the 20-350 Hz
  band 50-150 ms after the start by at least 6 dB over the previous chord's ringing bass note.

Every song is a pure function of (seed, index): all its draws come, in one order, from
``np.random.default_rng([seed, index])`` (and notes' own streams seeded from it), its genre from the seed
and the block. The style draws its own tempo, tuning (+-30 cents), noise floor and inversions: of
`DemoConfig`'s fields it uses `n_songs`, `seed`, `song_seconds`, `sr` and `percussion` (without percussion
the drums are drawn but not played, so everything else is the same song). A song too short for the lead-in
and tail it draws (`song_seconds` near 4) keeps one beat of its first chord.

`plan_band_song` draws the whole stream: the score (`chord_demo_band_score`: notes, sounds, drums), then
the mix (`chord_demo_band_sound.draw_mix`: levels, reverb, noise floor), which comes after the drum kit's
noise and so depends on the sample rate. `render_band_song` draws it again from the song's seed and index,
checks that this gives the song back, and synthesises it (`BandSound`).
"""

from __future__ import annotations

from audiotrain.chords.lab import ChordSegment
from audiotrain.datasets.chord_demo import DemoConfig, DemoSong, Note, is_bass_instrument
from audiotrain.datasets.chord_demo_band_harmony import GENRES, SongPlan
from audiotrain.datasets.chord_demo_band_score import Score, draw_score
from audiotrain.datasets.chord_demo_band_sound import (
    SUB_OCTAVE,
    MixDraws,
    Synth,
    apply_effects,
    draw_mix,
    drum_track,
    mix_tracks,
    render_track,
    reverberate,
    rms,
    sub_octave,
)

import numpy as np

#: Bump whenever the output changes: cached sets are then regenerated (pinned in
#: tests/test_chord_demo_versions.py).
BAND_VERSION = 1
#: The chord instruments (an organ's 16' drawbar has its own note rows, ``"organ16"``), the bass instruments
#: and the bass patterns, drawn per genre (`chord_demo_band_harmony.GENRES`).
TIMBRES = (
    "piano", "epiano", "organ", "pad", "harp", "kalimba", "guitar_steel", "guitar_nylon", "guitar_jazz",
)  # fmt: skip
BASS_TIMBRES = ("bass_fingered", "bass_picked", "bass_upright", "bass_synth")
BASS_PATTERNS = ("held", "eighths", "root5", "octave", "syncop", "funk", "bossa", "walk", "twofeel")
assert set(TIMBRES) == {i for g in GENRES.values() for i in g.primary + g.secondary}
assert set(BASS_TIMBRES) == {b for g in GENRES.values() for b in g.basses}
assert set(BASS_PATTERNS) == {p for g in GENRES.values() for p in g.bass_styles}

_LEVEL = 10 ** (-1 / 20)  # the mix's peak


def _segments(plan: SongPlan) -> list[ChordSegment]:
    """The labels as written to the ``.lab``: times rounded to the millisecond, a chord repeated across
    segments merged into one, ``N`` before the first chord and after the last one until the song's end."""
    rows = [[0.0, round(plan.segments[0].start, 3), "N"]]
    for segment in plan.segments:
        end = round(segment.end, 3)
        if rows[-1][2] == segment.label:
            rows[-1][1] = end
        else:
            rows.append([rows[-1][1], end, segment.label])
    rows.append([rows[-1][1], round(plan.seconds, 3), "N"])
    return [ChordSegment(start, end, label) for start, end, label in rows]


def _demo_song(score: Score, mix: MixDraws, seed: int, index: int, sr: int, percussion: bool) -> DemoSong:
    """The `DemoSong` of a drawn score and mix: notes at sounding pitch (the organ's 16' as ``organ16`` rows),
    no drum rows, sorted by onset and pitch."""
    plan = score.plan
    rows = [
        (on, off, m, instrument, v) for instrument, track in score.tracks.items() for on, off, m, v in track
    ]
    sub_octaves = {}
    for instrument, (shift, name) in SUB_OCTAVE.items():
        if instrument in score.tracks:
            sub_octaves[instrument] = sub_octave(score.sounds[instrument])
            if sub_octaves[instrument]:
                rows += [(on, off, m - shift, name, v) for on, off, m, v in score.tracks[instrument]]
    rows.sort(key=lambda row: (row[0], row[2]))
    details = {
        "seed": seed,
        "index": index,
        "seconds": plan.seconds,
        "sr": sr,
        "genre": plan.genre,
        "key": plan.tonic_name,
        "mode": plan.mode,
        "meter": f"{plan.beats_per_bar}/4",
        "swing": plan.swing,
        "lead_in": plan.lead_in,
        "chord_instruments": list(plan.chord_instruments),
        "playing_styles": dict(score.styles),
        "drums": score.drum_style,
        "sounds": score.sounds,
        "effects": score.effects,
        "mix": mix.settings(),
    }
    if sub_octaves:
        details["sub_octave"] = sub_octaves  # semitones below the written note of a sounding component
        details["organ_drawbars"] = list(score.sounds["organ"]["params"]["drawbars"])
    return DemoSong(
        segments=_segments(plan),
        notes=[Note(on, off, m, v, instrument) for on, off, m, instrument, v in rows],
        duration=plan.seconds,
        tempo=plan.bpm,
        tuning_cents=plan.tuning,
        noise_db=mix.noise_db,
        level=_LEVEL,
        beats=[plan.time_of(b) for b in range(int(plan.segments[-1].beat_end))],
        percussion=percussion,
        bass_instrument=plan.bass_instrument,
        bass_pattern=plan.bass_style,
        style="band",
        details=details,
    )


def _n_samples(seconds: float, sr: int) -> int:
    return int(round(seconds * sr))


def plan_band_song(config: DemoConfig, index: int) -> DemoSong:
    """The score of song ``index`` of a band-style set (a pure function of the config's seed, song length,
    sample rate and the index; see the module docstring for what it holds)."""
    score, rng = draw_score(config.seed, index, config.song_seconds)
    n_samples = _n_samples(config.song_seconds, config.sr)
    mix = draw_mix(rng, config.sr, n_samples, bool(score.drum_hits), len(score.plan.chord_instruments) > 1)
    return _demo_song(score, mix, config.seed, index, config.sr, config.percussion)


def render_band_song(song: DemoSong, sr: int, seed: int | list[int] | None = None) -> np.ndarray:
    """Audio of a band-style `DemoSong`: float32 [samples], peak at -1 dBFS.

    The style's sound is drawn from the song's own random stream (its seed and index, in ``song.details``),
    not from `seed`, which is accepted for `audiotrain.datasets.chord_demo.render_demo_song`'s signature.
    Raises ValueError for a song this style did not plan as it is (one edited by hand), or for a sample rate
    other than the one it was planned with.
    """
    return BandSound(song, sr).render()


class BandSound:
    """A band-style song's instruments as drawn for it: renders the song, or some of its notes alone.

    Re-draws the song's score from its seed and index, which must give `song` back exactly: the score
    stage leaves the song's random stream where its mix is drawn.
    """

    def __init__(self, song: DemoSong, sr: int):
        details = song.details or {}
        if song.style != "band" or not {"seed", "index", "seconds", "sr"} <= set(details):
            raise ValueError("BandSound renders band-style songs, as plan_band_song returns them")
        if sr != details["sr"]:
            raise ValueError(
                f"this band-style song was planned at {details['sr']} Hz and cannot be rendered at {sr} Hz: "
                "its mix is drawn after its drum kit, whose noise depends on the sample rate; plan it with "
                f"DemoConfig(sr={sr}, style='band')"
            )
        self.score, rng = draw_score(details["seed"], details["index"], details["seconds"])
        plan = self.score.plan
        self.n_samples = _n_samples(plan.seconds, sr)
        self.mix = draw_mix(
            rng, sr, self.n_samples, bool(self.score.drum_hits), len(plan.chord_instruments) > 1
        )
        if _demo_song(self.score, self.mix, details["seed"], details["index"], sr, song.percussion) != song:
            raise ValueError(
                f"band song {details['index']} of seed {details['seed']} differs from the one its seed "
                "draws: a band-style song is rendered from its own draws, so an edited one cannot be rendered"
            )
        self.sr = sr
        self.percussion = song.percussion
        self.synths = {name: Synth(sound, sr, plan.tuning) for name, sound in self.score.sounds.items()}
        self._tracks: dict[str, np.ndarray] | None = None

    def _gain(self, instrument: str) -> float:
        """A track's level before its normalisation by its own RMS."""
        if instrument == "drums":
            return self.mix.drums_gain
        if is_bass_instrument(instrument):
            return self.mix.bass_gain
        return 1.0 if instrument == self.score.plan.chord_instruments[0] else self.mix.secondary_gain

    def tracks(self) -> dict[str, np.ndarray]:
        """Each instrument's track through its effects, and the drums (if played), before the mix."""
        if self._tracks is None:
            self._tracks = {
                name: apply_effects(
                    render_track(notes, self.synths[name], self.n_samples, self.sr),
                    self.score.effects[name],
                    self.sr,
                )
                for name, notes in self.score.tracks.items()
            }
            if self.mix.kit is not None and self.percussion:
                self._tracks["drums"] = drum_track(
                    self.score.drum_hits, self.mix.kit, self.n_samples, self.sr
                )
        return self._tracks

    def render(self) -> np.ndarray:
        """The song: float32 [samples], peak at -1 dBFS."""
        return mix_tracks([(self._gain(name), y) for name, y in self.tracks().items()], self.mix, self.sr)

    def render_notes(self, notes: list[Note], start: float, stop: float, mixed: bool = True) -> np.ndarray:
        """Only `notes` (rows of the song's notes; an ``organ16`` row is part of its organ note, render that)
        over [start, stop) seconds, float64: each note by its instrument's synth, through the track's effects,
        and if `mixed` at the track's level in the mix and through the reverb, before the noise floor and the
        normalisation. Notes should start at or after `start`."""
        first = int(round(start * self.sr))
        n = int(round(stop * self.sr)) - first
        out = np.zeros(n, np.float64)
        for instrument in sorted({note.instrument for note in notes}):
            if instrument not in self.synths:
                raise ValueError(
                    f"no {instrument!r} track in this song (organ16 rows sound with their organ note)"
                )
            y = np.zeros(n + 3 * self.sr, np.float32)
            for note in notes:
                if note.instrument == instrument:
                    wave = self.synths[instrument].note(note.midi, note.offset - note.onset, note.velocity)
                    a = int(round(note.onset * self.sr)) - first
                    if a < 0:
                        wave, a = wave[-a:], 0
                    y[a : a + len(wave)] += wave[: len(y) - a]
            y = apply_effects(y[:n], self.score.effects[instrument], self.sr, start=first)
            if mixed:
                track = self.tracks()[instrument]
                y = self._gain(instrument) * 0.1 * y / rms(track[track != 0]) if np.any(track) else 0 * y
            out += y
        return reverberate(out, self.mix, self.sr) if mixed else out
