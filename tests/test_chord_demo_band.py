"""The "band" demo style: its labels follow its own convention (`audiotrain.datasets.chord_demo_band`: the
labelled bass is the lowest note sounding at each chord's start, sub-octave components included), on the
notes and on the audio; only the organ sounds below its written notes, and never below the labelled bass; a
set is varied; songs are a pure function of (seed, index). The rules every style shares are in
`tests/test_chord_demo.py`."""

import dataclasses
import json
from collections import Counter

from audiotrain.chords.harte import parse_harte
from audiotrain.chords.vocabulary import CHORD_TYPES, encode_label
from audiotrain.datasets import chord_demo_band_score
from audiotrain.datasets.chord_demo import (
    DemoConfig,
    Note,
    generator_version,
    is_bass_instrument,
    plan_demo_song,
    render_demo_song,
    style_timbres,
)
from audiotrain.datasets.chord_demo_band import (
    BAND_VERSION,
    BASS_PATTERNS,
    BASS_TIMBRES,
    TIMBRES,
    BandSound,
    plan_band_song,
    render_band_song,
)
from audiotrain.datasets.chord_demo_band_harmony import GENRES, QUALITIES
from audiotrain.datasets.chord_demo_band_sound import (
    MixDraws,
    Synth,
    apply_effects,
    draw_effects,
    draw_sound,
    drum_track,
    midi_hz,
    mix_tracks,
    render_track,
    sub_octave,
    without_sub_octave,
)

import numpy as np
import pytest
import scipy.signal

from tests.test_chord_demo import assert_sounds_the_note

SR = 22050
CONFIG = DemoConfig(n_songs=36, seed=0, song_seconds=10.0, style="band")
#: Songs of seed 5000 (10 s) whose audio is checked: the organ in each situation of the 16' rule (primary
#: without a bass instrument, its 16' kept; secondary without one, pushed in; over a bass, kept and pushed
#: in), a harp arpeggio alone, a walking jazz bass, a jazz electric piano alone in 3/4.
AUDIO_SONGS = {
    195: "organ primary", 27: "organ secondary", 21: "organ 16' over a bass", 3: "organ over a bass",
    46: "harp alone", 26: "walking bass", 0: "electric piano in 3/4",
}  # fmt: skip


@pytest.fixture(scope="module")
def songs():
    return [plan_demo_song(CONFIG, i) for i in range(CONFIG.n_songs)]


@pytest.fixture(scope="module")
def audio_songs():
    config = DemoConfig(n_songs=200, seed=5000, song_seconds=10.0, style="band")
    return {index: plan_demo_song(config, index) for index in AUDIO_SONGS}


def _chords(song):
    return [s for s in song.segments if s.label != "N"]


def _sounding_at(song, time):
    return [n for n in song.notes if n.onset <= time < n.offset]


def _overlapping(notes, segment):
    # Labels are written to the millisecond: a note of the previous chord may end half a millisecond in.
    return [n for n in notes if n.onset < segment.end - 1e-3 and n.offset > segment.start + 1e-3]


def _written(note):
    """The organ note an ``organ16`` row (its 16' drawbar, an octave below) belongs to."""
    return (
        Note(note.onset, note.offset, note.midi + 12, note.velocity, "organ")
        if note.instrument == "organ16"
        else note
    )


def test_the_style_is_dispatched_with_its_own_version(songs):
    """`chord_demo`'s functions send the style "band" here, with its own version and chord instruments, and a
    `DemoConfig` with the default fields (64 songs of 30 s) plans its songs."""
    assert generator_version("band") == BAND_VERSION
    assert style_timbres("band") == TIMBRES
    assert all(song.style == "band" for song in songs)
    song = plan_demo_song(DemoConfig(style="band"), 0)  # the default fields: 64 songs of 30 s
    assert song.duration == 30.0 and song.segments[-1].end == 30.0
    assert song == plan_band_song(DemoConfig(style="band"), 0)


def test_a_subset_of_its_instruments_is_refused_not_ignored():
    """The band style draws its instruments per genre: a `timbres` subset would be silently ignored, so it is
    refused with the field named; its own full set (in any order) is accepted."""
    with pytest.raises(ValueError, match="DemoConfig.timbres: the band style .* takes no subset"):
        DemoConfig(style="band", timbres=("piano",))
    assert DemoConfig(style="band", timbres=tuple(reversed(TIMBRES))).style == "band"


def test_labels_are_harte_chords_of_the_vocabulary_covering_the_song(songs):
    """Every label parses as Harte and encodes to its own quality, root and bass in the vocabulary; the labels
    are contiguous from 0 to the song's end, with a lead-in of 0.5-2 s and a tail of no chord."""
    for song in songs:
        segments = song.segments
        assert segments[0].start == 0.0 and segments[-1].end == song.duration
        assert all(a.end == b.start and a.end > a.start for a, b in zip(segments, segments[1:]))
        assert segments[0].label == segments[-1].label == "N" and 0.5 <= segments[0].end <= 2.0
        assert all(a.label != b.label for a, b in zip(segments, segments[1:]))  # equal chords are merged
        for segment in _chords(song):
            chord = parse_harte(segment.label)
            quality = segment.label.split(":")[1].split("/")[0]
            assert set(chord.pitch_classes) == {(chord.root + t) % 12 for t in QUALITIES[quality]}, segment
            index = encode_label(segment.label)
            assert (CHORD_TYPES[index.chord_type], index.root, index.bass) == (
                quality,
                chord.root,
                chord.bass_pitch_class,
            )
            assert chord.bass_pitch_class in chord.pitch_classes


def test_the_lowest_note_sounding_at_each_chord_start_is_the_labelled_bass(songs):
    """50 ms into every chord the lowest sounding note (an organ's 16' an octave under its key included) has
    the labelled bass's pitch class; with a bass instrument it is a bass note."""
    checked = 0
    for song in songs:
        for segment in _chords(song):
            lowest = min(_sounding_at(song, segment.start + 0.05), key=lambda n: n.midi)
            assert lowest.midi % 12 == parse_harte(segment.label).bass_pitch_class, (segment, lowest)
            if song.bass_instrument is not None:
                assert is_bass_instrument(lowest.instrument), (segment, lowest)
            checked += 1
    assert checked > 100


def test_chord_instruments_play_the_label_leaving_out_only_a_fifth_or_a_rootless_root(songs):
    """Chord instruments (the organ's 16' included) play only the label's pitch classes, and all of them but
    the perfect fifth of a chord of four or more notes and, over a bass on the root, the root (a rootless
    voicing): the bass at the chord's start completes the chord."""
    shells = 0
    for song in songs:
        chord_notes = [n for n in song.notes if not is_bass_instrument(n.instrument)]
        for segment in _chords(song):
            chord = parse_harte(segment.label)
            quality = segment.label.split(":")[1].split("/")[0]
            played = {n.midi % 12 for n in _overlapping(chord_notes, segment)}
            assert played <= set(chord.pitch_classes), segment
            required = {
                (chord.root + t) % 12 for t in QUALITIES[quality] if t != 7 or len(QUALITIES[quality]) == 3
            }
            if song.bass_instrument is not None:
                played.add(min(_sounding_at(song, segment.start + 0.05), key=lambda n: n.midi).midi % 12)
            assert required <= played, segment
            shells += len(required) < len(chord.pitch_classes) and (chord.root + 7) % 12 not in played
    assert shells > 0


def test_with_a_bass_instrument_every_chord_note_is_above_every_bass_note_it_sounds_with(songs):
    """Over a bass instrument, every chord-instrument note of a segment sounds above every bass note sounding
    with it (walking and approach notes included), and the registers hold: chord notes E2-C6, their 16' from
    E1, the bass E1-G3. (Checked on notes that sound together: a chord repeated in the next bar is one label,
    and its second bar may be voiced below the first bar's walking line, as in song 26 here.)"""
    with_bass = 0
    for song in songs:
        bass = [n for n in song.notes if is_bass_instrument(n.instrument)]
        chords = [n for n in song.notes if not is_bass_instrument(n.instrument)]
        assert all(28 <= n.midi <= 55 for n in bass)
        assert all(40 <= n.midi <= 84 for n in chords if n.instrument != "organ16")
        assert all(28 <= n.midi <= 72 for n in chords if n.instrument == "organ16")
        if song.bass_instrument is None:
            assert not bass
            continue
        with_bass += 1
        for segment in _chords(song):
            lower = _overlapping(bass, segment)
            for note in _overlapping(chords, segment):
                together = [n.midi for n in lower if n.onset < note.offset and note.onset < n.offset]
                assert note.midi > max(together, default=0), (segment, note)
    assert with_bass > 20


def _organ_16ft_below_the_bass(song):
    """The chords where an organ sounds its 16' row and the lowest note sounding at the start is not the
    labelled bass, or a 16' row sounds below that note or (over a bass instrument) not above every bass
    note."""
    bass = [n for n in song.notes if is_bass_instrument(n.instrument)]
    bad = []
    for segment in _chords(song):
        rows = _overlapping([n for n in song.notes if n.instrument == "organ16"], segment)
        lowest = min(_sounding_at(song, segment.start + 0.05), key=lambda n: n.midi)
        floor = max((n.midi for n in _overlapping(bass, segment)), default=lowest.midi - 1)
        if rows and (
            lowest.midi % 12 != parse_harte(segment.label).bass_pitch_class
            or min(n.midi for n in rows) <= floor
        ):
            bad.append(segment)
    return bad


def test_an_organ_16ft_never_sounds_below_the_labelled_bass(audio_songs, monkeypatch):
    """The regression the draft fixed: an organ's 16' drawbar sounds an octave under every key, so it is
    kept only where it cannot undercut the label (the primary organ without a bass instrument doubles the
    bass an octave down); every organ note then has its 16' row. With the drawbar always on, the secondary
    organ and an organ over a bass instrument undercut it."""
    organs = [audio_songs[i] for i in (195, 27, 21, 3)]
    kept = []
    for song in organs:
        organ = [(n.onset, n.offset, n.midi - 12) for n in song.notes if n.instrument == "organ"]
        rows = [(n.onset, n.offset, n.midi) for n in song.notes if n.instrument == "organ16"]
        assert rows == (organ if song.details["sub_octave"]["organ"] == 12 else [])
        assert song.details["sub_octave"]["organ"] == (12 if any(song.details["organ_drawbars"][:2]) else 0)
        assert _organ_16ft_below_the_bass(song) == []
        kept.append(bool(rows))
    assert kept == [True, False, True, False]
    monkeypatch.setattr(chord_demo_band_score, "without_sub_octave", lambda sound: sound)
    config = DemoConfig(n_songs=200, seed=5000, song_seconds=10.0, style="band")
    assert all(_organ_16ft_below_the_bass(plan_band_song(config, i)) for i in (27, 3))


def _lowest_pitch_heard(sound, note, tuning_cents):
    """The lowest pitch (fractional MIDI, less the song's tuning) of one note rendered alone through its
    track's effects: its lowest spectral peak within 20 dB of its strongest (20-3000 Hz, 600 ms from 5 ms
    in, parabolic interpolation; a peak less than 10 dB proud, like a tremolo's sideband, is no pitch)."""
    y = sound.render_notes([note], note.onset - 0.005, note.onset + 0.605, mixed=False)[int(0.01 * SR) :]
    return _lowest_peak(y, tuning_cents)


def _lowest_peak(y, tuning_cents):
    """The lowest spectral peak of `y` within 20 dB of its strongest (see `_lowest_pitch_heard`), as a
    fractional MIDI less the song's tuning."""
    n_fft = 1 << 16
    power = 20 * np.log10(np.abs(np.fft.rfft(y * np.hanning(len(y)), n_fft)) + 1e-12)
    freqs = np.fft.rfftfreq(n_fft, 1 / SR)
    k0, k1 = np.searchsorted(freqs, 20.0), np.searchsorted(freqs, 3000.0)
    peaks, _ = scipy.signal.find_peaks(power[k0:k1], height=power[k0:k1].max() - 20, prominence=10.0)
    k = k0 + peaks[0]
    a, b, c = power[k - 1 : k + 2]
    f = (k + 0.5 * (a - c) / (a - 2 * b + c)) * SR / n_fft
    return 69 + 12 * np.log2(f / 440.0) - tuning_cents / 100.0


@pytest.mark.parametrize("index", sorted(AUDIO_SONGS))
def test_the_lowest_pitch_heard_at_each_chord_start_is_the_labelled_bass(audio_songs, index):
    """From the audio: each note sounding in the first 100 ms of a chord, rendered alone, is heard at its
    lowest spectral peak; the lowest of them is the lowest sounding note of the score (within 0.4 semitone,
    so an organ's 16' shows an octave down) and has the labelled bass's pitch class."""
    song = audio_songs[index]
    sound = BandSound(song, SR)
    heard_offsets = {}  # (instrument, MIDI, length): heard pitch less the written one
    for segment in _chords(song):
        lowest = min(_sounding_at(song, segment.start + 0.05), key=lambda n: n.midi)
        heard = []
        for note in song.notes:
            if (
                note.instrument != "organ16"
                and note.onset < segment.start + 0.1
                and note.offset > segment.start + 0.02
            ):
                key = (note.instrument, note.midi, round(min(note.offset - note.onset, 0.6), 1))
                if key not in heard_offsets:
                    heard_offsets[key] = _lowest_pitch_heard(sound, note, song.tuning_cents) - note.midi
                heard.append(note.midi + heard_offsets[key])
        assert abs(min(heard) - lowest.midi) <= 0.4, (AUDIO_SONGS[index], segment, min(heard), lowest)
        assert round(min(heard)) % 12 == parse_harte(segment.label).bass_pitch_class, segment


def _low_band_energy(x, sr=SR):
    power = np.abs(np.fft.rfft(x * np.hanning(len(x)), 1 << 13)) ** 2
    freqs = np.fft.rfftfreq(1 << 13, 1 / sr)
    return power[(freqs >= 20) & (freqs <= 350)].sum()


@pytest.mark.parametrize("index", sorted(AUDIO_SONGS))
def test_the_new_bass_note_dominates_the_previous_chords_ringing_bass(audio_songs, index):
    """50-150 ms after each chord change the new bass note (rendered alone as in the mix: its track's effects,
    level and reverb) has at least 6 dB more energy in 20-350 Hz than the previous chord's bass notes of
    another pitch class (its bass instrument's notes, or without one its labelled bass note and its
    re-strikes) and than any note of the previous chord sounding lower, with their releases and reverb."""
    song = audio_songs[index]
    sound = BandSound(song, SR)
    chords = _chords(song)
    checked = 0
    for previous, segment in zip(chords, chords[1:]):
        if previous.end != segment.start:
            continue  # a break of no chord between them
        lowest = min(_sounding_at(song, segment.start + 0.05), key=lambda n: n.midi)
        new, new_pitch = _written(lowest), lowest.midi
        old = min(_sounding_at(song, previous.start + 0.05), key=lambda n: n.midi)
        struck = [n for n in song.notes if previous.start - 0.01 <= n.onset < segment.start - 1e-3]
        if song.bass_instrument is not None:
            bass = [n for n in struck if is_bass_instrument(n.instrument)]
        else:
            bass = [n for n in struck if n.instrument == old.instrument and n.midi == old.midi]
        lower = [n for n in struck if n.midi < new_pitch and n.offset <= segment.start + 1e-3]
        for notes in (bass, lower):
            notes = list(dict.fromkeys(_written(n) for n in notes if n.midi % 12 != new_pitch % 12))
            if not notes:
                continue
            start = min(min(n.onset for n in notes), new.onset) - 0.01
            a, b = (
                int(round((segment.start + 0.05 - start) * SR)),
                int(round((segment.start + 0.15 - start) * SR)),
            )
            energy_new = _low_band_energy(sound.render_notes([new], start, segment.start + 0.2)[a:b])
            energy_old = _low_band_energy(sound.render_notes(notes, start, segment.start + 0.2)[a:b])
            assert 10 * np.log10(energy_new / (energy_old + 1e-30)) >= 6, (AUDIO_SONGS[index], segment, notes)
            checked += 1
    assert checked >= 1


def _energy_below(y, f0, sr=SR):
    """The largest share (dB) of a note's energy below 0.8 f0: over its attack (0-100 ms, the band edge 20 Hz
    lower for the wider main lobe) and over 20-700 ms."""
    worst = -200.0
    for start, stop, guard in ((0.0, 0.1, 20.0), (0.02, 0.7, 0.0)):
        x = y[int(start * sr) : int(stop * sr)]
        power = np.abs(np.fft.rfft(x * scipy.signal.windows.blackmanharris(len(x)), 1 << 16)) ** 2
        freqs = np.fft.rfftfreq(1 << 16, 1 / sr)
        share = power[(freqs >= 15) & (freqs < 0.8 * f0 - guard)].sum() / (power[freqs >= 15].sum() + 1e-30)
        worst = max(worst, 10 * np.log10(share + 1e-20))
    return worst


def _partials_off_the_harmonics(y, f0, sr=SR):
    """Prominent partials (within 30 dB of the strongest, 6 dB proud) from 20 Hz to 4.2 f0 that are not
    within 3% of a multiple of f0 (an organ quint at 1.5 f0 makes the tone periodic at f0 / 2)."""
    x = y[int(0.02 * sr) : int(0.7 * sr)]
    power = 20 * np.log10(np.abs(np.fft.rfft(x * np.hanning(len(x)), 1 << 16)) + 1e-12)
    freqs = np.fft.rfftfreq(1 << 16, 1 / sr)
    peaks, _ = scipy.signal.find_peaks(power, height=power.max() - 30, prominence=6)
    ratios = [freqs[k] / f0 for k in peaks if 20 < freqs[k] < 4.2 * f0]
    return [r for r in ratios if r < 0.97 or abs(r - round(r)) > 0.03 * round(r)]


def test_only_the_organ_sounds_below_its_written_notes():
    """Timbre audit, over drawn sounds of every instrument at three pitches through their track effects: every
    sound keeps its energy below 0.8 f0 under -30 dB and has no prominent partial off the harmonics of its
    written note, except an organ with its 16' or 5 1/3' drawbar out (`sub_octave` > 0); pushed in, the
    organ passes too."""
    organ_with_16ft = 0
    for name in TIMBRES + BASS_TIMBRES:
        low = 28 if is_bass_instrument(name) else 40
        for trial in range(2 if name != "organ" else 4):
            rng = np.random.default_rng([31337, trial, len(name)])
            sound, effects = draw_sound(name, rng), draw_effects(name, rng)
            for variant in (sound, without_sub_octave(sound)) if name == "organ" else (sound,):
                synth = Synth(variant, SR, 0.0)
                below, off_grid = -200.0, []
                for midi in (low, low + 7, low + 24):
                    y = np.zeros(2 * SR, np.float32)
                    wave = synth.note(midi, 0.8, 0.8)
                    y[: len(wave)] = wave
                    # A tremolo is amplitude modulation, not a partial: left out where partials are counted.
                    linear = apply_effects(y, {k: v for k, v in effects.items() if k != "tremolo"}, SR)
                    heard = apply_effects(y, effects, SR, start=trial * 8000)
                    below = max(below, _energy_below(heard, midi_hz(midi, 0)))
                    off_grid += _partials_off_the_harmonics(linear, midi_hz(midi, 0))
                flagged = below > -30.0 or bool(off_grid)
                assert flagged == (sub_octave(variant) > 0), (name, trial, below, off_grid[:3])
                organ_with_16ft += sub_octave(variant) > 0
    assert organ_with_16ft >= 2


@pytest.mark.parametrize("instrument", TIMBRES + BASS_TIMBRES)
def test_each_instrument_sounds_its_note_in_the_songs_tuning(instrument):
    """Every band timbre (its sub-octave drawbars pushed in), in two drawn versions, plays the written note:
    its fundamental the lowest partial, heard so in its attack (0-100 ms) and after it (not an octave off), a
    steady line (a piano's second string a few cents off, not a wobble) and in the song's tuning. Only song
    0's sound is pinned by the version fingerprint."""
    midi, cents = (45 if is_bass_instrument(instrument) else 57), 30.0
    for draw in range(2):
        sound = without_sub_octave(draw_sound(instrument, np.random.default_rng([7, draw])))
        y = Synth(sound, SR, cents).note(midi, 1.5, 0.8)
        assert_sounds_the_note(y[: int(1.5 * SR)], SR, midi, cents)
        for start, stop in ((0.0, 0.1), (0.005, 0.605)):  # the attack too: not an octave up at first
            heard = _lowest_peak(y[int(start * SR) : int(stop * SR)], cents)
            assert abs(heard - midi) < 0.3, (draw, start, heard)


def test_a_notes_and_a_drum_hits_level_follow_their_velocity():
    """The timbre follows the velocity in steps of 0.1, the level exactly: two velocities of one step give the
    same note scaled by their ratio, on a track (`render_track`) as on a drum (`drum_track`)."""
    synth = Synth(draw_sound("piano", np.random.default_rng(3)), SR, 0.0)
    soft, loud = (render_track([(0.1, 0.6, 57, v)], synth, SR, SR) for v in (0.48, 0.52))
    np.testing.assert_allclose(loud, soft * 0.52 / 0.48, rtol=1e-4, atol=1e-7)
    kit = {"snare": np.hanning(100).astype(np.float32)}
    soft, loud = (drum_track([(0.1, "snare", v)], kit, SR, SR) for v in (0.4, 0.8))
    np.testing.assert_allclose(loud, 2 * soft, rtol=1e-6)


def test_the_noise_floor_is_its_drawn_level_below_the_mix():
    """`mix_tracks` adds the noise floor `noise_db` below the mix's RMS (here without reverb)."""
    rng = np.random.default_rng(0)
    tone = np.sin(2 * np.pi * 220 * np.arange(SR) / SR).astype(np.float32)

    def mixed(noise_db):
        draws = MixDraws(None, 1.0, 1.0, None, 1.0, 0.0, np.ones(1), rng.standard_normal(SR), noise_db)
        return mix_tracks([(1.0, tone)], draws, SR).astype(np.float64)

    with_floor, clean = mixed(-50.0), mixed(-300.0)
    floor = with_floor - clean * (with_floor @ clean) / (clean @ clean)
    assert 20 * np.log10(np.sqrt(np.mean(floor**2) / np.mean(with_floor**2))) == pytest.approx(-50.0, abs=1.0)


def test_a_set_has_every_genre_instrument_and_bass_style_and_a_fifth_of_its_chords_inverted(songs):
    """36 songs: every genre (drawn in blocks of nine), every chord instrument, one or two per song, every
    bass instrument, most bass patterns (a jazz two-feel is rare), both meters, a bass instrument in most
    songs but not all, tunings within +-30 cents, and about a fifth of the chord time inverted (its slash
    chords on the bass's thirds, fifths and sevenths)."""
    details = [song.details for song in songs]
    assert Counter(d["genre"] for d in details[:9]) == Counter(
        {"pop": 2, "rock": 2, "folk": 2, "soul": 1, "jazz": 1, "bossa": 1}
    )
    assert {d["genre"] for d in details} == set(GENRES)
    instruments = Counter(i for d in details for i in d["chord_instruments"])
    assert set(instruments) == set(TIMBRES)
    assert {len(d["chord_instruments"]) for d in details} == {1, 2}
    assert {s.bass_instrument for s in songs} == {*BASS_TIMBRES, None}
    patterns = {s.bass_pattern for s in songs if s.bass_instrument is not None}
    assert len(patterns) >= 7 and patterns <= set(BASS_PATTERNS)
    assert {d["meter"] for d in details} == {"3/4", "4/4"}
    assert 0.1 < sum(s.bass_instrument is None for s in songs) / len(songs) < 0.4
    assert max(abs(s.tuning_cents) for s in songs) <= 30 and len({s.tuning_cents > 0 for s in songs}) == 2
    inverted = total = 0.0
    intervals = Counter()
    for song in songs:
        for segment in _chords(song):
            chord = parse_harte(segment.label)
            total += segment.duration
            if chord.bass_pitch_class != chord.root:
                inverted += segment.duration
                intervals[(chord.bass_pitch_class - chord.root) % 12] += 1
    assert 0.15 <= inverted / total <= 0.3
    assert {3, 4, 7, 10} <= set(intervals)


def test_songs_are_a_pure_function_of_seed_and_index():
    """The same seed and index give the same song and audio (whatever seed `render_demo_song` is given: the
    sound is drawn from the song's own stream); another index or seed gives another song; without percussion
    the drums are left out and every other draw (notes, sounds, mix) is the same."""
    config = DemoConfig(n_songs=4, seed=7, song_seconds=6.0, style="band")
    song = plan_demo_song(config, 2)
    assert song == plan_demo_song(config, 2)
    assert song.segments != plan_demo_song(config, 3).segments
    other_seed = DemoConfig(n_songs=4, seed=8, song_seconds=6.0, style="band")
    assert song.notes != plan_demo_song(other_seed, 2).notes
    audio = render_demo_song(song, SR, [7, 2])
    assert audio.dtype == np.float32 and len(audio) == 6 * SR
    assert np.abs(audio).max() == pytest.approx(10 ** (-1 / 20), rel=1e-6)
    np.testing.assert_array_equal(audio, render_demo_song(plan_demo_song(config, 2), SR, seed=0))
    quiet = plan_demo_song(dataclasses.replace(config, percussion=False), 2)
    assert song.details["drums"] is not None and not quiet.percussion
    assert (quiet.notes, quiet.details, quiet.noise_db) == (song.notes, song.details, song.noise_db)
    assert "drums" in BandSound(song, SR).tracks() and "drums" not in BandSound(quiet, SR).tracks()
    assert not np.allclose(render_demo_song(quiet, SR), audio)


def test_a_song_is_rendered_only_as_it_was_planned():
    """Rendering re-draws the song from its seed and index: a song edited by hand, or asked for at another
    sample rate than it was planned at, is refused; its details survive a JSON round trip."""
    config = DemoConfig(n_songs=2, seed=3, song_seconds=5.0, style="band", sr=16000)
    song = plan_band_song(config, 1)
    audio = render_band_song(song, 16000)
    assert len(audio) == 5 * 16000
    from_json = dataclasses.replace(song, details=json.loads(json.dumps(song.details)))
    np.testing.assert_array_equal(render_band_song(from_json, 16000), audio)
    with pytest.raises(ValueError, match="planned at 16000 Hz"):
        render_band_song(song, SR)
    edited = [Note(n.onset, n.offset, n.midi + 1, n.velocity, n.instrument) for n in song.notes]
    with pytest.raises(ValueError, match="edited"):
        render_band_song(dataclasses.replace(song, notes=edited), 16000)


def test_songs_as_short_as_4_seconds_have_a_chord():
    """At the shortest length a demo set allows, a song whose lead-in and tail leave no whole beat still gets
    one beat of its first chord (seed 5000's songs 6 and 7: the draft generator failed on them)."""
    config = DemoConfig(n_songs=8, seed=5000, song_seconds=4.0, style="band")
    for index in (5, 6, 7):
        song = plan_demo_song(config, index)
        chords = _chords(song)
        assert chords and song.notes and song.segments[-1].end == 4.0
        if index in (6, 7):
            assert len(chords) == 1 and chords[0].duration == pytest.approx(60 / song.tempo, abs=1e-3)
        assert len(render_demo_song(song, SR)) == 4 * SR


def test_a_band_songs_filters_are_designed_once_per_setting_and_filter_as_before(monkeypatch):
    """Planning a band song draws its drum kit, whose noise bursts and cymbals asked scipy to design the same
    few Butterworth filters hundreds of times (a third of the time a plan took): each setting is designed
    once now, and a song planned again with the designs kept is the same song."""
    from scipy import signal  # (the band's sound module imports it where it filters: `cache info` is quick)

    designed = []
    butter = signal.butter

    def counted(*args, **kwargs):
        designed.append((args[:3], kwargs.get("fs")))
        return butter(*args, **kwargs)

    monkeypatch.setattr(signal, "butter", counted)
    # (a sample rate of its own: no filter of this process's earlier songs is designed for it)
    config = dataclasses.replace(CONFIG, song_seconds=4.0, sr=17000)
    songs = [plan_band_song(config, i) for i in range(3)]
    settings = [(args[0], tuple(np.atleast_1d(args[1]).tolist()), args[2], fs) for args, fs in designed]
    drawn_per_song = [s for s in settings if s[0] == 1]  # (the reverb's lowpass: its cutoff is random)
    fixed = [s for s in settings if s[0] != 1]
    assert len(drawn_per_song) == 3 and len(fixed) == len(set(fixed)) > 1, settings
    monkeypatch.undo()
    assert [plan_band_song(config, i) for i in range(3)] == songs  # (with the designs kept)
