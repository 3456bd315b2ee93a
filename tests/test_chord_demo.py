"""The demo song generator: labels exactly match what is synthesised, variety, caching, determinism."""

import json
from collections import Counter
from dataclasses import fields

from audiotrain._files import TMP_PREFIX
from audiotrain.chords.harte import parse_harte
from audiotrain.chords.lab import read_lab
from audiotrain.chords.vocabulary import encode_label
from audiotrain.datasets import chord_demo_independent, chord_demo_studio
from audiotrain.datasets.chord_demo import (
    BASS_PATTERNS,
    BASS_TIMBRES,
    STYLES,
    TIMBRES,
    DemoConfig,
    demo_set_name,
    generate_demo_songs,
    generator_version,
    is_bass_instrument,
    plan_demo_song,
    played_pitch_classes,
    render_demo_song,
)

import mir_eval
import numpy as np
import pytest
import soundfile as sf
from file_size_limit import files_cannot_grow_past, needs_file_size_limit

CONFIG = DemoConfig(n_songs=12, seed=3, song_seconds=20.0)


def _sounding(song, segment):
    return [n for n in song.notes if n.onset < segment.end and n.offset > segment.start]


@pytest.mark.parametrize(
    ("style", "index"),
    [("train", i) for i in range(12)]
    + [("studio", i) for i in range(24)]
    + [("patches", i) for i in range(8)],
)
def test_notes_of_each_segment_are_exactly_the_label(style, index):
    """Chord instruments play only the label's pitch classes, leaving out at most what players leave out (the
    perfect fifth of a chord of four or more notes; also the root when the bass instrument plays it); the
    bass instrument plays the labelled bass on the downbeat and for most of the segment (its passing and
    approach notes do not change the label)."""
    song = plan_demo_song(DemoConfig(n_songs=24, seed=3, song_seconds=20.0, style=style), index)
    assert song.segments[0].start == 0.0 and song.segments[-1].end == pytest.approx(song.duration)
    assert all(a.end == b.start for a, b in zip(song.segments, song.segments[1:]))
    for segment in song.segments:
        notes = _sounding(song, segment)
        chord = parse_harte(segment.label)
        if not chord.is_chord:
            assert notes == [], segment
            continue
        upper = [n for n in notes if not is_bass_instrument(n.instrument)]
        bass = [n for n in notes if is_bass_instrument(n.instrument)]
        played, labelled = {n.midi % 12 for n in upper}, set(chord.pitch_classes)
        assert played <= labelled, segment
        left_out = labelled - played
        if left_out:
            assert len(labelled) >= 4 and (chord.root + 7) % 12 in left_out, segment
            # The labelled bass always sounds: left out of the chord only when the bass instrument plays it.
            assert chord.bass_pitch_class not in left_out or (bass and chord.bass_pitch_class == chord.root)
            assert left_out <= {(chord.root + 7) % 12, chord.root}, segment
            if chord.root in left_out:
                assert bass and chord.bass_pitch_class == chord.root, segment
        if bass:
            first = min(bass, key=lambda n: n.onset)
            assert first.onset == segment.start and first.midi % 12 == chord.bass_pitch_class, segment
            time_on_bass = sum(n.offset - n.onset for n in bass if n.midi % 12 == chord.bass_pitch_class)
            # Half of the steps in a root-fifth alternation, most of them otherwise.
            share = 0.4 if song.bass_pattern == "fifths" else 0.6
            assert time_on_bass >= share * sum(n.offset - n.onset for n in bass), segment
            assert first.midi <= min(n.midi for n in upper), segment
        else:
            assert min(upper, key=lambda n: n.midi).midi % 12 == chord.bass_pitch_class, segment
        # no note rings into the next segment
        assert all(segment.start <= n.onset and n.offset <= segment.end for n in notes), segment
    assert sum(len(_sounding(song, s)) for s in song.segments) == len(song.notes)  # none outside a segment


def _salience(audio, sr, tuning_cents, midi_range=range(26, 96)):
    n_fft = max(len(audio), 2**17)  # zero-padded so that every semitone band holds bins
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio)), n_fft))
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    values = []
    for m in midi_range:
        f = 440 * 2 ** ((m - 69) / 12 + tuning_cents / 1200)
        band = (freqs > f * 0.985) & (freqs < f * 1.015)
        values.append(spectrum[band].max())
    return np.array(values), np.array(list(midi_range))


@pytest.mark.parametrize("style", STYLES)
def test_labelled_bass_dominates_the_low_band(style):
    """From the audio alone: in the bass range (MIDI 26-51) the labelled bass pitch class is the strongest
    (summed over octaves; one of the two strongest under a root-fifth alternation), and each chord tone has a
    spectral peak above it."""
    config = DemoConfig(
        n_songs=4, seed=11, song_seconds=15.0, noise_db=(-80.0, -80.0), percussion=False, style=style
    )
    checked = hits = 0
    for index in range(config.n_songs):
        song = plan_demo_song(config, index)
        audio = render_demo_song(song, config.sr, seed=0)
        for segment in song.segments:
            chord = parse_harte(segment.label)
            if not chord.is_chord or segment.duration < 0.8 or song.bass_instrument is None:
                continue
            a, b = int(segment.start * config.sr), int(segment.end * config.sr)
            salience, midi = _salience(audio[a:b], config.sr, song.tuning_cents)
            low = midi < 52
            by_pc = np.zeros(12)
            np.add.at(by_pc, midi[low] % 12, salience[low])
            if song.bass_pattern == "fifths":  # half its steps are the fifth: the bass is one of the two
                hits += chord.bass_pitch_class in np.argsort(by_pc)[-2:]
            else:
                hits += int(np.argmax(by_pc)) == chord.bass_pitch_class
            present = {int(m) % 12 for m in midi[salience > 0.02 * salience.max()]}
            assert set(chord.pitch_classes) <= present, segment
            checked += 1
    assert checked >= 8 and hits >= 0.85 * checked, (hits, checked)


@pytest.mark.parametrize("instrument", chord_demo_independent.TIMBRES + chord_demo_independent.BASS_TIMBRES)
def test_each_independent_instrument_sounds_its_note_in_the_songs_tuning(instrument):
    """Every timbre of the held-out style, not only those of the song the version fingerprint renders, plays
    the written note: audible, its fundamental the lowest partial (not an octave off), a steady line
    (vibrato of a few cents, not a wobble past the label) and in the song's tuning."""
    from audiotrain.chords.lab import ChordSegment
    from audiotrain.datasets.chord_demo import DemoSong, Note

    sr, midi, cents = 22050, (45 if is_bass_instrument(instrument) else 57), 30.0
    song = DemoSong(
        segments=[ChordSegment(0.0, 2.0, "A:maj")],
        notes=[Note(0.0, 1.5, midi, 0.8, instrument)],
        duration=2.0,
        tempo=120.0,
        tuning_cents=cents,
        noise_db=-80.0,
        level=0.9,
        percussion=False,
        style="independent",
    )
    audio = render_demo_song(song, sr, seed=0)
    note, after = audio[: int(1.5 * sr)], audio[int(1.8 * sr) :]
    assert np.sqrt(np.mean(note**2)) > 5 * np.sqrt(np.mean(after**2))  # the note, not the noise floor
    assert_sounds_the_note(note, sr, midi, cents)


def assert_sounds_the_note(note, sr, midi, cents, by_fundamental=False):
    """One note's audio sounds `midi` in a tuning of `cents`: its fundamental the lowest partial (no octave
    below or above), 80% of the power within 20 cents of it (a steady line) and the tuning within 4 cents.
    `by_fundamental` reads the tuning from the fundamental alone (its power-weighted offset, within 3
    cents): the partials of a just-tuned series pull the equal-tempered estimate off by several cents."""
    salience, midis = _salience(note, sr, cents)
    assert midis[salience > 0.1 * salience.max()].min() == midi  # its lowest partial: no octave off
    n_fft = max(len(note), 2**17)
    power = np.abs(np.fft.rfft(note * np.hanning(len(note)), n_fft)) ** 2
    off = 1200 * np.log2(np.maximum(np.fft.rfftfreq(n_fft, 1 / sr), 1e-9) / (440 * 2 ** ((midi - 69) / 12)))
    assert power[np.abs(off - cents) < 20].sum() > 0.8 * power[np.abs(off - cents) < 100].sum()
    if by_fundamental:
        near = np.abs(off - cents) < 50
        assert np.average(off[near], weights=power[near]) == pytest.approx(cents, abs=3.0)
    else:
        assert _tuning_cents(note, sr) == pytest.approx(cents, abs=4.0)


def _first_sound(audio, sr):
    """When a song starts to sound: its first sample above 1% of its peak, in seconds."""
    return int(np.argmax(np.abs(audio) > 0.01 * np.abs(audio).max())) / sr


def _tuning_cents(audio, sr):
    """A recording's tuning offset from A440 in cents (-50 to 50), from its spectral peaks: the circular mean
    of their deviations from the equal-tempered grid, weighted by power."""
    n_fft = max(len(audio), 2**17)
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio)), n_fft))
    k = np.arange(1, len(spectrum) - 1)
    freqs = k * sr / n_fft
    k = k[(spectrum[k] > spectrum[k - 1]) & (spectrum[k] >= spectrum[k + 1]) & (freqs > 30) & (freqs < 2000)]
    k = k[spectrum[k] > 0.05 * spectrum[k].max()]
    a, b, c = (np.log(spectrum[k + d] + 1e-12) for d in (-1, 0, 1))
    hz = (k + 0.5 * (a - c) / (a - 2 * b + c)) * sr / n_fft  # the peak between bins (parabolic)
    turn = np.sum(spectrum[k] ** 2 * np.exp(2j * np.pi * 12 * np.log2(hz / 440.0)))
    return 100 * float(np.angle(turn)) / (2 * np.pi)


_QUIET = {"song_seconds": 6.0, "noise_db": (-80.0, -80.0), "percussion": False}


@pytest.mark.parametrize("style", [s for s in STYLES if s != "band"])  # the band's: test_chord_demo_band.py
def test_the_audio_starts_where_the_first_chord_is_labelled(style):
    """The labels are the audio's: a song sounds nothing in its N lead-in and starts at the first chord's
    label (each style renders its notes itself)."""
    song = plan_demo_song(DemoConfig(n_songs=1, seed=0, style=style, **_QUIET), 0)
    assert song.segments[0].label == "N" and song.segments[1].label != "N"
    audio = render_demo_song(song, 22050, seed=0)
    assert _first_sound(audio, 22050) == pytest.approx(song.segments[1].start, abs=0.005)


@pytest.mark.parametrize(
    ("style", "index"), [("train", 0), ("studio", 3), ("independent", 3), ("patches", 1)]
)  # the first songs of seed 0 tuned 20-40 cents off A440 (the band's: test_chord_demo_band.py)
def test_the_audio_is_tuned_as_the_song_plan_says(style, index):
    song = plan_demo_song(DemoConfig(n_songs=index + 1, seed=0, style=style, **_QUIET), index)
    assert 20 <= abs(song.tuning_cents) <= 40
    audio = render_demo_song(song, 22050, seed=0)
    assert _tuning_cents(audio, 22050) == pytest.approx(song.tuning_cents, abs=4.0)


def test_a_set_rendered_at_another_sample_rate_has_the_labelled_length_onset_and_tuning(tmp_path):
    (entry,) = generate_demo_songs(tmp_path, n_songs=1, seed=0, sr=16000, **_QUIET)
    song = plan_demo_song(DemoConfig(n_songs=1, seed=0, sr=16000, **_QUIET), 0)
    audio, sr = sf.read(entry.audio_path)
    segments = read_lab(entry.annotation_path)
    assert sr == 16000 and len(audio) / sr == pytest.approx(segments[-1].end, abs=1e-3)
    assert _first_sound(audio, sr) == pytest.approx(segments[1].start, abs=0.005)
    assert _tuning_cents(audio, sr) == pytest.approx(song.tuning_cents, abs=4.0)


def test_the_songs_of_a_set_have_their_own_noise(tmp_path):
    """Each song's noise (and drums) are drawn from its own seed: two songs' silent lead-ins differ."""
    entries = generate_demo_songs(tmp_path, n_songs=2, seed=0, **{**_QUIET, "noise_db": (-40.0, -40.0)})
    lead_ins = [sf.read(e.audio_path)[0][: int(0.3 * 22050)] for e in entries]
    assert all(np.std(x) > 0 for x in lead_ins)
    assert abs(np.corrcoef(*lead_ins)[0, 1]) < 0.2


def test_a_player_leaves_the_root_out_only_over_a_bass_playing_it():
    """Shell and rootless voicings leave out the fifth, then the root, and never the labelled bass: over an
    inverted bass the root stays (else C:maj7/3's upper notes over E would be E:min)."""
    maj7 = [0, 4, 7, 11]

    def played(bass_pc, bass_plays_it=True):
        rng = np.random.default_rng(0)
        return played_pitch_classes(maj7, 0, bass_pc, bass_plays_it, rng, shell=1.0, rootless=1.0)

    assert played(0) == [4, 11]
    assert played(4) == [0, 4, 11]
    assert played(11) == [0, 4, 11]
    assert played(0, bass_plays_it=False) == [0, 4, 11]
    assert played(7) == maj7  # the fifth in the bass stays, and so does the root
    assert played_pitch_classes([0, 4, 7], 0, 0, True, np.random.default_rng(0), 1.0, 1.0) == [0, 4, 7]


def test_every_song_begins_and_ends_without_a_chord():
    """A lead-in and a tail of no chord (N), as the module docstring says."""
    config = DemoConfig(n_songs=12, seed=3, song_seconds=20.0)
    for index in range(config.n_songs):
        song = plan_demo_song(config, index)
        first, last = song.segments[0], song.segments[-1]
        assert first.label == last.label == "N", index
        assert first.duration >= 0.4 and last.duration >= 0.4, index


def test_each_style_draws_its_songs_from_its_own_stream(monkeypatch):
    """Song i of one style is no function of the random numbers song i of another drew (the held-out style's
    songs would otherwise be correlated with the training songs): no two styles seed a generator alike."""
    seeds = {}
    default_rng = np.random.default_rng

    def recording(seed=None):
        seeds.setdefault(style, set()).add(tuple(np.atleast_1d(seed).tolist()))
        return default_rng(seed)

    monkeypatch.setattr(np.random, "default_rng", recording)
    for style in STYLES:
        for index in range(3):
            plan_demo_song(DemoConfig(n_songs=3, seed=7, style=style, song_seconds=8.0), index)
    for a in STYLES:
        for b in STYLES[STYLES.index(a) + 1 :]:
            assert not seeds[a] & seeds[b], (a, b)


def test_variety_of_types_inversions_tempi_and_timbres():
    config = DemoConfig(n_songs=40, seed=0, song_seconds=30.0)
    types, inversions, tempi, instruments = Counter(), 0, [], Counter()
    for i in range(config.n_songs):
        song = plan_demo_song(config, i)
        tempi.append(song.tempo)
        instruments.update(n.instrument for n in song.notes)
        for segment in song.segments:
            index = encode_label(segment.label)
            types[index.chord_type] += 1
            inversions += index.root != index.bass
    assert len(types) >= 28  # N and nearly all of the 30 qualities
    common = [t for t, _ in types.most_common(5)]
    assert 2 in common and 3 in common  # maj and min among the most frequent
    assert inversions > 20
    assert max(tempi) - min(tempi) > 50
    assert set(instruments) == {*TIMBRES, *BASS_TIMBRES}


@pytest.mark.parametrize("style", STYLES)
def test_inversions_take_a_realistic_share_with_idioms(style):
    """In songs with a bass instrument a fifth to a third of the chord time is inverted (the share the module
    docstring states; the training style inverts more of the songs without one), and the slash idioms appear:
    thirds, fifths and sevenths in the bass. The band style's phrases invert a little less (17-23% of its
    chord time over 40 songs, as its progressions and idioms are written): its lower bound is 15%."""
    config = DemoConfig(n_songs=40, seed=0, style=style)
    inverted = total = 0.0
    intervals = Counter()
    for i in range(config.n_songs):
        song = plan_demo_song(config, i)
        for segment in song.segments:
            chord = parse_harte(segment.label)
            if chord.is_chord:
                if chord.bass_pitch_class != chord.root:
                    intervals[(chord.bass_pitch_class - chord.root) % 12] += 1
                if song.bass_instrument is not None:
                    total += segment.duration
                    inverted += segment.duration * (chord.bass_pitch_class != chord.root)
    assert (0.15 if style == "band" else 0.18) <= inverted / total <= 0.33
    assert {3, 4, 7, 10} <= set(intervals)


def test_bass_lines_move_and_tunings_spread():
    config = DemoConfig(n_songs=30, seed=2)
    songs = [plan_demo_song(config, i) for i in range(config.n_songs)]
    assert {s.bass_pattern for s in songs} >= set(BASS_PATTERNS)
    assert max(abs(s.tuning_cents) for s in songs) > 25
    walking = [s for s in songs if s.bass_pattern == "walk" and s.bass_instrument]
    assert max(len({n.midi for n in s.notes if is_bass_instrument(n.instrument)}) for s in walking) > 8


def _bass_notes_by_chord(pattern, n_songs=24):
    """(segment, its bass notes by onset, the labelled bass of the next chord or None) of every chord
    segment of the train songs whose bass instrument plays ``pattern``."""
    config = DemoConfig(n_songs=n_songs, seed=3, song_seconds=20.0)
    songs = [plan_demo_song(config, i) for i in range(n_songs)]
    for song in (s for s in songs if s.bass_instrument and s.bass_pattern == pattern):
        chords = [s for s in song.segments if parse_harte(s.label).is_chord]
        for segment, following in zip(chords, chords[1:] + [None]):
            bass = sorted((n for n in _sounding(song, segment) if is_bass_instrument(n.instrument)),
                          key=lambda n: n.onset)  # fmt: skip
            yield segment, bass, following and parse_harte(following.label).bass_pitch_class


def test_the_fifths_pattern_alternates_the_labelled_bass_with_its_fifth():
    """Where the chord has the perfect fifth above the labelled bass, every other bass note is that fifth
    (above, or a fourth below): the pattern's one other note."""
    checked = 0
    for segment, bass, _ in _bass_notes_by_chord("fifths"):
        chord = parse_harte(segment.label)
        fifth = (chord.bass_pitch_class + 7) % 12
        if fifth not in chord.pitch_classes or len(bass) < 2:
            continue
        assert {n.midi % 12 for n in bass} == {chord.bass_pitch_class, fifth}, segment
        checked += 1
    assert checked >= 10


def test_independent_style_is_another_generator():
    """The held-out style shares no instrument, bass pattern or song with the training style."""
    train = [plan_demo_song(DemoConfig(n_songs=10, seed=5), i) for i in range(10)]
    held_out = [plan_demo_song(DemoConfig(n_songs=10, seed=5, style="independent"), i) for i in range(10)]
    instruments = [{n.instrument for n in s.notes} for s in (train, held_out) for s in s]
    assert not set().union(*instruments[:10]) & set().union(*instruments[10:])
    assert not {s.bass_pattern for s in train} & {s.bass_pattern for s in held_out} - {None}
    assert all(a.segments != b.segments for a, b in zip(train, held_out))
    with pytest.raises(ValueError, match="timbres"):
        DemoConfig(style="independent", timbres=("piano",))


def test_independent_voicings_sound_every_tone_of_the_labelled_chord_but_its_fifth():
    """What the held-out style labels is what it plays: each chord instrument's notes under a label hold every
    tone of that chord, save the perfect fifth a shell voicing leaves out (the seventh always sounds), and
    nothing else but the labelled bass."""
    from audiotrain.chords.vocabulary import decode_label

    config = DemoConfig(n_songs=24, seed=5, style="independent")
    checked = shells = 0
    for song in (plan_demo_song(config, i) for i in range(24)):
        for segment in song.segments:
            if segment.label == "N":
                continue
            index = encode_label(segment.label)
            root = index.root
            tones = set(parse_harte(decode_label(index.chord_type, root)).pitch_classes)  # without the slash
            sounding = {
                n.midi % 12
                for n in song.notes
                if not is_bass_instrument(n.instrument) and segment.start <= n.onset < segment.end
            }
            missing = tones - sounding
            assert missing <= {(root + 7) % 12}, (segment, sorted(missing))
            assert sounding <= tones | {index.bass}, (segment, sorted(sounding - tones))  # nothing added
            checked += 1
            shells += bool(missing) and len(tones) >= 4
    assert checked > 100 and shells > 5  # shell voicings are there, and they drop only the fifth


@pytest.mark.parametrize("style", STYLES)
def test_without_a_bass_instrument_the_lowest_chord_note_is_the_labelled_bass(style):
    """With no bass instrument, the labelled bass is what sounds lowest: every chord instrument's lowest
    note under a label is its bass (the independent style's version 4 raised the strings' notes below G3 an
    octave one by one, so a D-F#-A shape sounded A-D-F# under the label D:maj). The band style promises it of
    its primary chord instrument (and that organ's 16' rows) only: its second chord instrument is voiced above
    the primary's lowest note, not on the bass (tests/test_chord_demo_band.py checks the lowest sounding note
    over all instruments); and it writes its labels to the millisecond while striking a chord's first notes
    0-4 ms after its exact start, so a note may start up to half a millisecond before its label."""
    config = DemoConfig(n_songs=60, seed=11, style=style)
    songs = [plan_demo_song(config, i) for i in range(config.n_songs)]
    bassless = [s for s in songs if s.bass_instrument is None]
    checked = 0
    for song in bassless:
        for segment in song.segments:
            if segment.label == "N":
                continue
            bass = encode_label(segment.label).bass
            instruments = {n.instrument for n in song.notes}
            early = 0.0
            if style == "band":
                primary = song.details["chord_instruments"][0]
                instruments &= {primary, "organ16" if primary == "organ" else primary}
                early = 5e-4  # labels to the millisecond: a chord's first note may start 0.5 ms before
            for instrument in instruments:
                played = [
                    n.midi
                    for n in song.notes
                    if n.instrument == instrument and segment.start - early <= n.onset < segment.end - early
                ]
                if played:
                    assert min(played) % 12 == bass, (style, instrument, segment, sorted(played))
                    checked += 1
    assert len(bassless) >= 3 and checked > 50


def test_version_9_leaves_more_songs_without_a_bass_instrument_and_inverts_their_chords():
    """A training-style set: 40% of the songs without a bass instrument (15% in version 8), their chord time
    inverted more than half of the time against a quarter with one; the patches style's train-style scores
    keep version 8's draws, and so does every song that keeps its bass instrument."""
    config = DemoConfig(n_songs=120, seed=0)
    songs = [plan_demo_song(config, i) for i in range(config.n_songs)]
    as_before = [plan_demo_song(config, i, unaccompanied_inversions=False) for i in range(config.n_songs)]

    def inverted_share(group):
        inverted = total = 0.0
        for song in group:
            for segment in song.segments:
                chord = parse_harte(segment.label)
                if chord.is_chord:
                    total += segment.duration
                    inverted += segment.duration * (chord.bass_pitch_class != chord.root)
        return inverted / total

    bassless = [s for s in songs if s.bass_instrument is None]
    assert 0.3 <= len(bassless) / len(songs) <= 0.55
    assert 0.08 <= sum(s.bass_instrument is None for s in as_before) / len(songs) <= 0.24
    assert 0.45 <= inverted_share(bassless) <= 0.65
    assert 0.18 <= inverted_share([s for s in songs if s.bass_instrument]) <= 0.3
    for song, before in zip(songs, as_before):
        if song.bass_instrument is not None:
            assert song == before


def test_sets_of_other_seeds_have_other_noise(tmp_path):
    """The noise (and drums) are drawn from the set's seed as well as the song's: song 0 of seed 0 and of
    seed 1 sharing one noise would make every set's noise floor the same recording."""
    settings = dict(n_songs=1, **{**_QUIET, "noise_db": (-40.0, -40.0)})
    lead_ins = [
        sf.read(generate_demo_songs(tmp_path / f"seed{seed}", seed=seed, **settings)[0].audio_path)[0][:6615]
        for seed in (0, 1)
    ]  # 0.3 s: every lead-in is at least 0.4 s of noise alone
    assert abs(np.corrcoef(*lead_ins)[0, 1]) < 0.2


def test_the_settings_of_a_set_shape_its_songs():
    """Each DemoConfig field is used, not the default in its place: tuning, tempo, and how often chords are
    inverted or played as slash-chord idioms (20 songs of seed 1: 35 of ~280 chords are slash chords with
    neither, from version 9's songs without a bass, 122 with idioms always and 274 with inversions always)."""

    def songs(**settings):
        return [plan_demo_song(DemoConfig(n_songs=20, seed=1, **settings), i) for i in range(20)]

    def slash_chords(**settings):
        return sum("/" in s.label for song in songs(**settings) for s in song.segments)

    assert {song.tuning_cents for song in songs(tuning_cents=(0.0, 0.0))} == {0.0}
    assert {song.tempo for song in songs(tempo_range=(100.0, 100.0))} == {100.0}
    assert slash_chords(inversion_probability=0.0, idiom_probability=0.0) < 50
    assert slash_chords(inversion_probability=1.0, idiom_probability=0.0) > 250
    assert slash_chords(inversion_probability=0.0, idiom_probability=1.0) > 100


@pytest.mark.parametrize("settings", [{"n_songs": 0}, {"song_seconds": 3.9}])
def test_a_set_needs_a_song_of_four_seconds_or_more(settings):
    with pytest.raises(ValueError, match=r"^DemoConfig needs n_songs >= 1 and song_seconds >= 4$"):
        DemoConfig(**settings)


def test_restricted_timbres_are_respected():
    song = plan_demo_song(DemoConfig(n_songs=1, timbres=("organ",)), 0)
    assert {n.instrument for n in song.notes} <= {"organ", *BASS_TIMBRES}
    with pytest.raises(ValueError, match="timbres"):
        DemoConfig(timbres=("violin",))


def test_generate_writes_parsable_files_and_caches(tmp_path):
    entries = generate_demo_songs(tmp_path, n_songs=2, seed=5, song_seconds=8.0)
    assert [e.name for e in entries] == ["song_000", "song_001"]
    for entry in entries:
        audio, sr = sf.read(entry.audio_path)
        assert sr == 22050 and audio.ndim == 1 and np.abs(audio).max() <= 1.0
        intervals, labels = mir_eval.io.load_labeled_intervals(str(entry.annotation_path))
        mir_eval.chord.validate(labels, labels)
        segments = read_lab(entry.annotation_path)
        assert segments[-1].end == pytest.approx(len(audio) / sr, abs=1e-3)
    mtime = entries[0].audio_path.stat().st_mtime_ns
    again = generate_demo_songs(tmp_path, n_songs=2, seed=5, song_seconds=8.0)
    assert again == entries and entries[0].audio_path.stat().st_mtime_ns == mtime
    # other parameters: regenerated, and the old extra song removed
    generate_demo_songs(tmp_path, n_songs=1, seed=6, song_seconds=8.0)
    assert entries[0].audio_path.stat().st_mtime_ns != mtime
    assert not entries[1].audio_path.exists()
    # its annotation too: one left behind would block a later set of two songs as a file not its own
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "song_000.lab", "song_000.wav"]


def test_a_render_interrupted_halfway_leaves_each_song_whole(tmp_path, monkeypatch):
    """A second run that finds no manifest yet (the first is still rendering) renders the set again under
    the first one's reader: songs are written to a temporary file and renamed, so a reader sees a whole
    song, and a write that stops halfway leaves the song as it was."""
    settings = dict(n_songs=1, seed=5, sr=8000, song_seconds=4.0)
    song = generate_demo_songs(tmp_path, **settings)[0].audio_path
    whole = song.read_bytes()
    (tmp_path / "manifest.json").unlink()
    write = sf.write

    def stopped_halfway(file, data, *args, **kwargs):
        write(file, data[: len(data) // 2], *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(sf, "write", stopped_halfway)
    with pytest.raises(KeyboardInterrupt):
        generate_demo_songs(tmp_path, **settings)
    assert song.read_bytes() == whole
    # no temporary file; the manifest says the render is not finished
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "song_000.lab", "song_000.wav"]


def _contents(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_folder_of_the_users_songs_is_refused_and_left_as_it_is(tmp_path):
    """generate_demo_songs(folder) rendered over a user's song_000.wav / .lab there, and deleted the files a
    manifest.json of another program listed (and replaced it); only overwrite=True writes over them now."""
    settings = dict(n_songs=1, seed=5, sr=8000, song_seconds=4.0)
    mine = tmp_path / "mysongs"
    mine.mkdir()
    for name in ("song_000", "song_007"):
        sf.write(mine / f"{name}.wav", np.zeros(8000, np.float32), 8000)
        (mine / f"{name}.lab").write_text("0 1 C:maj\n")
    before = _contents(mine)
    refused = "choose a new or empty folder, or pass overwrite=True to write the set over them"
    with pytest.raises(FileExistsError) as error:
        generate_demo_songs(mine, **settings)
    assert str(error.value) == (
        f"generate_demo_songs: {mine} holds songs without a manifest that are not songs of this demo set "
        f"(song_000.lab, song_000.wav, song_007.lab and 1 more): yours, or a render with other parameters "
        f"that an earlier version stopped halfway; {refused}"
    )
    assert _contents(mine) == before
    exported = tmp_path / "exported"
    exported.mkdir()
    (exported / "my_take.lab").write_text("0 1 C:maj\n")
    (exported / "song_000.lab").write_text("0 1 C:maj\n")
    (exported / "manifest.json").write_text('{"songs": ["my_take", "song_000"], "source": "my export"}')
    before = _contents(exported)
    with pytest.raises(
        FileExistsError, match=rf"^generate_demo_songs: {exported}/manifest.json is not a demo"
    ):
        generate_demo_songs(exported, **settings)
    assert _contents(exported) == before
    # overwrite=True writes the set over them; a file a foreign manifest lists is deleted only if it is named
    # as a song of a set (song_XXX), and other files stay.
    generate_demo_songs(exported, **settings, overwrite=True)
    assert sorted(_contents(exported)) == ["manifest.json", "my_take.lab", "song_000.lab", "song_000.wav"]
    assert (exported / "song_000.lab").read_bytes() != before["song_000.lab"]


def test_only_files_of_a_set_of_its_own_are_written_over(tmp_path):
    """The cache keeps working: a set made with other parameters is replaced, and the songs of a render of
    the same set stopped before its manifest was written are rendered again; a user's file in the way of a
    new song, or songs of another set without its manifest, are refused."""
    settings = dict(seed=5, sr=8000, song_seconds=4.0)
    generate_demo_songs(tmp_path, n_songs=1, **settings)
    (tmp_path / "song_001.wav").write_bytes(b"mine")
    with pytest.raises(FileExistsError, match=r"not songs of this demo set \(song_001\.wav\)"):
        generate_demo_songs(tmp_path, n_songs=2, **settings)
    (tmp_path / "song_001.wav").unlink()
    entries = generate_demo_songs(tmp_path, n_songs=2, **settings)  # a stale set of its own: replaced
    whole = _contents(tmp_path)
    (tmp_path / "manifest.json").unlink()  # as a render stopped before writing it leaves the set
    assert generate_demo_songs(tmp_path, n_songs=2, **settings) == entries
    assert _contents(tmp_path) == whole
    (tmp_path / "manifest.json").unlink()
    with pytest.raises(FileExistsError, match=r"not songs of this demo set \(song_000\.lab, song_000\.wav"):
        generate_demo_songs(tmp_path, n_songs=2, **{**settings, "seed": 6})


def test_a_set_made_with_another_seed_is_replaced_by_this_seeds_songs(tmp_path):
    """A parameter the manifest left out would make a set made with another value of it pass for this one:
    generate_demo_songs(folder, seed=1) over a seed-0 set would return seed 0's songs. The manifest holds
    every DemoConfig field, so each one that changes the songs renders the set again."""
    settings = dict(n_songs=1, sr=8000, song_seconds=4.0)
    fresh = generate_demo_songs(tmp_path / "fresh", seed=1, **settings)
    generate_demo_songs(tmp_path / "set", seed=0, **settings)
    again = generate_demo_songs(tmp_path / "set", seed=1, **settings)
    assert again[0].annotation_path.read_text() == fresh[0].annotation_path.read_text()
    assert _contents(tmp_path / "set") == _contents(tmp_path / "fresh")
    params = json.loads((tmp_path / "set" / "manifest.json").read_text())["params"]
    assert set(params) == {"generator_version", *(field.name for field in fields(DemoConfig))}
    assert params["seed"] == 1


def test_a_render_stopped_halfway_is_replaced_by_a_call_with_other_parameters(tmp_path, monkeypatch):
    """generate_demo_songs refused the songs of its own render, stopped halfway, when called again with
    other parameters ("too slow: make them shorter"): "holds files that are not songs of this demo set"."""
    settings = dict(n_songs=3, seed=5, sr=8000)
    write = sf.write
    written = []

    def stopped_at_the_third_song(*args, **kwargs):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(1)
        write(*args, **kwargs)

    monkeypatch.setattr(sf, "write", stopped_at_the_third_song)
    with pytest.raises(KeyboardInterrupt):
        generate_demo_songs(tmp_path, song_seconds=5.0, **settings)
    monkeypatch.setattr(sf, "write", write)
    assert (tmp_path / "song_001.wav").exists() and not (tmp_path / "song_002.wav").exists()
    entries = generate_demo_songs(tmp_path, n_songs=2, seed=5, sr=8000, song_seconds=4.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["manifest.json"] + [p.name for e in entries for p in (e.annotation_path, e.audio_path)]
    )
    assert generate_demo_songs(tmp_path, n_songs=2, seed=5, sr=8000, song_seconds=4.0) == entries


def test_a_render_stopped_under_the_older_write_order_is_rendered_again(tmp_path):
    """A render before the annotation was written first left a song's audio without its annotation: the
    set's own, where it follows the set's songs and nothing else is there; a lone song_000.wav is not."""
    settings = dict(n_songs=3, seed=5, sr=8000, song_seconds=4.0)
    entries = generate_demo_songs(tmp_path / "set", **settings)
    (tmp_path / "set" / "manifest.json").unlink()
    entries[1].annotation_path.unlink()
    entries[2].annotation_path.unlink()
    entries[2].audio_path.unlink()
    assert generate_demo_songs(tmp_path / "set", **settings) == entries
    assert all(e.annotation_path.exists() and e.audio_path.exists() for e in entries)
    mine = tmp_path / "mine"
    mine.mkdir()
    sf.write(mine / "song_000.wav", np.zeros(8000, np.float32), 8000)
    with pytest.raises(FileExistsError, match=r"not songs of this demo set \(song_000\.wav\)"):
        generate_demo_songs(mine, **settings)


def test_processes_rendering_a_set_together_write_the_set_one_process_writes(tmp_path):
    """Data parallel: each process renders every other song, process 0 clears a stale set first and writes
    the manifest once all are done (two threads with a real barrier stand in for two ranks)."""
    import threading

    settings = dict(n_songs=5, seed=3, sr=8000, song_seconds=4.0)
    alone = generate_demo_songs(tmp_path / "alone", **settings)
    shared = tmp_path / "shared"
    generate_demo_songs(shared, n_songs=2, seed=9, sr=8000, song_seconds=4.0)  # a stale set, to be replaced
    barrier = threading.Barrier(2)
    results, errors = {}, []

    def rank(r):
        try:
            results[r] = generate_demo_songs(shared, **settings, shard=(r, 2), barrier=barrier.wait)
        except Exception as error:  # surfaced below
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=rank, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and [e.name for e in results[0]] == [e.name for e in results[1]] == [
        e.name for e in alone
    ]
    for a, b in zip(alone, results[0]):
        assert a.audio_path.read_bytes() == b.audio_path.read_bytes()
        assert a.annotation_path.read_text() == b.annotation_path.read_text()
    mtime = results[0][0].audio_path.stat().st_mtime_ns
    assert generate_demo_songs(shared, **settings) == results[0]  # complete: reused as it is
    assert results[0][0].audio_path.stat().st_mtime_ns == mtime
    with pytest.raises(ValueError, match="barrier"):
        generate_demo_songs(tmp_path / "x", **settings, shard=(0, 2))


@pytest.mark.parametrize("style", STYLES)
def test_songs_are_deterministic(style):
    config = DemoConfig(n_songs=12, seed=3, song_seconds=20.0, style=style)
    a = plan_demo_song(config, 4)
    b = plan_demo_song(config, 4)
    assert a.segments == b.segments and a.notes == b.notes
    np.testing.assert_array_equal(render_demo_song(a, 22050, [1, 4]), render_demo_song(b, 22050, [1, 4]))
    assert plan_demo_song(DemoConfig(n_songs=12, seed=4, song_seconds=20.0), 4).segments != a.segments


def test_instruments_registers_and_levels_vary_between_songs():
    """No preset has one fixed sound, register or level: each song draws its own spectrum, envelope, chorus
    and level for every instrument, a bass register from E1 up to E2 (always an octave or more under the
    chords' lowest register), and how unevenly the chord tones are played."""
    config = DemoConfig(n_songs=30, seed=1)
    songs = [plan_demo_song(config, i) for i in range(config.n_songs)]
    variations = [v for s in songs for v in (s.variations or {}).values()]
    assert len({v["tilt"] for v in variations}) == len(variations) > 30
    assert any(v["fundamental"] < 0.5 for v in variations)  # a bass with a weak fundamental
    assert any(v["detune_cents"] > 0 for v in variations) and any(v["extra_partials"] for v in variations)
    bass_gains = [s.variations[s.bass_instrument]["gain_db"] for s in songs if s.bass_instrument]
    assert max(bass_gains) - min(bass_gains) > 8
    lowest = {
        min(n.midi for n in s.notes if is_bass_instrument(n.instrument)) for s in songs if s.bass_instrument
    }
    assert min(lowest) >= 26 and max(lowest) - min(lowest) >= 6  # 28 (E1), less a passing tone
    uneven = [
        s for s in songs if len({round(n.velocity, 6) for n in s.notes if n.onset == s.notes[0].onset}) > 1
    ]
    assert len(uneven) > len(songs) // 2


def test_varied_presets_change_the_sound():
    """The same note of the same preset sounds different under two songs' variations."""
    from audiotrain.datasets.chord_demo import Note, _curves_of, _render_note, _timbre_variation, _varied_spec

    note = Note(0.0, 0.5, 33, 1.0, "bass_pluck")
    spectra = []
    for seed in (0, 1):
        spec = _varied_spec("bass_pluck", _timbre_variation(np.random.default_rng(seed), bass=True))
        wave = _render_note(note, 22050, 1.0, (spec, _curves_of(spec, 22050), 0.0))
        spectrum = np.abs(np.fft.rfft(wave))
        spectra.append(spectrum / spectrum.max())
    assert np.abs(spectra[0] - spectra[1]).max() > 0.1


def test_voicings_are_played_as_players_play_them():
    """Across songs, four-note chords are played both with and without their fifth (shell voicings), some
    without their root over a bass on it (rootless), some with a doubled root, and some spread over more than
    an octave and a half; triads always keep every tone."""
    config = DemoConfig(n_songs=60, seed=7)  # rootless voicings are rare: half the songs, a few chords each
    with_fifth = shell = rootless = doubled_root = spread = 0
    for i in range(config.n_songs):
        song = plan_demo_song(config, i)
        for segment in song.segments:
            chord = parse_harte(segment.label)
            if not chord.is_chord:
                continue
            first = [
                n for n in _sounding(song, segment)
                if not is_bass_instrument(n.instrument) and n.onset == segment.start
            ]  # fmt: skip
            played = {n.midi % 12 for n in _sounding(song, segment) if not is_bass_instrument(n.instrument)}
            fifth = (chord.root + 7) % 12
            if len(chord.pitch_classes) == 3:
                assert played == set(chord.pitch_classes), segment
            elif fifth in chord.pitch_classes:
                with_fifth += fifth in played
                shell += fifth not in played
                rootless += chord.root not in played
            midis = sorted({n.midi for n in first})
            doubled_root += sum(m % 12 == chord.root for m in midis) >= 2
            spread += len(midis) >= 3 and midis[-1] - midis[0] > 18
    assert with_fifth > 20 and shell > 20 and rootless > 3
    assert doubled_root > 20 and spread > 20


@pytest.mark.parametrize(
    "damage",
    [
        ("song_000.wav", lambda p: p.write_bytes(p.read_bytes()[:5000])),  # cut short
        ("song_000.wav", lambda p: p.write_bytes(b"")),
        ("song_001.lab", lambda p: p.write_bytes(bytes(range(200, 256)) * 5)),  # not text
        ("song_001.lab", lambda p: p.write_text("")),
        ("song_001.lab", lambda p: p.unlink()),
    ],
    ids=["truncated", "empty wav", "garbage lab", "empty lab", "missing lab"],
)
def test_a_damaged_song_of_a_finished_set_is_rendered_again(tmp_path, damage):
    """A song whose audio did not decode or whose annotation did not parse stayed so for good: every later
    demo run failed ('too few songs left') or trained without it. The set is the cache's, not the user's."""
    settings = dict(n_songs=3, seed=5, sr=8000, song_seconds=4.0)
    generate_demo_songs(tmp_path, **settings)
    whole = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    name, spoil = damage
    spoil(tmp_path / name)
    # (the song's file named first, with the line where the reader gives one: "song_001.lab, line 1: ...")
    cannot = rf"demo set {tmp_path}: 1 of its 3 songs cannot be read \({name}(, line \d+)?: "
    with pytest.warns(UserWarning, match=cannot):
        generate_demo_songs(tmp_path, **settings)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == whole


@pytest.mark.parametrize("style", STYLES)
def test_a_set_is_named_by_its_own_styles_generator_version(style):
    assert demo_set_name(DemoConfig(style=style)).startswith(f"v{generator_version(style)}-{style}-")


def test_what_only_looks_like_a_set_is_refused_and_left_as_it_is(tmp_path):
    """Told from the files of a set only by the checks they fail: a manifest with parameters and songs but no
    generator version is another program's (its songs are not deleted as a stale set's); an interrupted
    render's lone audio does not make a user's file in the way of a song the set's; a file is no folder."""
    settings = dict(n_songs=3, seed=5, sr=8000, song_seconds=4.0)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "manifest.json").write_text(json.dumps({"params": {"seed": 5}, "songs": ["song_000"]}))
    (foreign / "song_000.lab").write_text("0 1 C:maj\n")
    before = _contents(foreign)
    with pytest.raises(FileExistsError, match=r"manifest\.json is not a demo set's manifest"):
        generate_demo_songs(foreign, **settings)
    assert _contents(foreign) == before
    stopped = tmp_path / "stopped"
    entries = generate_demo_songs(stopped, **settings)
    for path in (stopped / "manifest.json", entries[1].annotation_path, entries[2].audio_path):
        path.unlink()  # as a render stopped under the older write order (audio first) leaves it
    entries[2].annotation_path.unlink()
    (stopped / "song_002.lab").write_text("0 1 C:maj\n")  # the user's
    with pytest.raises(FileExistsError, match=r"\(song_001\.wav, song_002\.lab\)"):
        generate_demo_songs(stopped, **settings)
    assert (stopped / "song_002.lab").read_text() == "0 1 C:maj\n"
    (tmp_path / "a_file").write_text("")
    with pytest.raises(NotADirectoryError, match="a_file is a file; expected a folder for the demo set"):
        generate_demo_songs(tmp_path / "a_file", **settings)


def test_a_new_version_of_a_styles_generator_renders_its_sets_again(tmp_path, monkeypatch):
    """A style's sets are its generator's: one whose version moved on (its songs changed) is rendered again,
    not read as the old songs; each style has its own version (the studio's is not the train style's)."""
    settings = dict(n_songs=1, seed=2, sr=8000, song_seconds=4.0, style="studio")
    (entry,) = generate_demo_songs(tmp_path, **settings)
    mtime = entry.audio_path.stat().st_mtime_ns
    monkeypatch.setattr(chord_demo_studio, "STUDIO_VERSION", chord_demo_studio.STUDIO_VERSION + 1)
    generate_demo_songs(tmp_path, **settings)
    params = json.loads((tmp_path / "manifest.json").read_text())["params"]
    assert params["generator_version"] == chord_demo_studio.STUDIO_VERSION
    assert entry.audio_path.stat().st_mtime_ns != mtime


@pytest.mark.parametrize(
    "damaged", [b'{"params": {"generator_ver', b"\xff\xfe"], ids=["cut short", "not UTF-8"]
)
def test_a_damaged_manifest_is_refused_or_written_over(tmp_path, damaged):
    """A manifest.json that does not parse is no set's: refused in one line, and with overwrite=True (the
    recipes' cache) the set is rendered again, never a JSONDecodeError traceback."""
    settings = dict(n_songs=1, seed=5, sr=8000, song_seconds=4.0)
    generate_demo_songs(tmp_path, **settings)
    (tmp_path / "manifest.json").write_bytes(damaged)
    with pytest.raises(FileExistsError, match=r"manifest\.json is not a demo set's manifest"):
        generate_demo_songs(tmp_path, **settings)
    generate_demo_songs(tmp_path, **settings, overwrite=True)
    assert json.loads((tmp_path / "manifest.json").read_text())["songs"] == ["song_000"]


def test_temporary_files_a_stopped_render_left_do_not_block_it(tmp_path):
    """A render stopped before its manifest can leave temporary files (an older song_001.lab.tmp, an atomic
    write's .tmp-<hex>.wav): they are the set's own, so the next call renders the set, not refuses it."""
    settings = dict(n_songs=2, seed=5, sr=8000, song_seconds=4.0)
    entries = generate_demo_songs(tmp_path, **settings)
    (tmp_path / "manifest.json").unlink()
    (tmp_path / "song_001.lab.tmp").write_text("0 1 C:maj\n")
    (tmp_path / f"{TMP_PREFIX}{'0' * 32}.wav").write_bytes(b"")
    assert generate_demo_songs(tmp_path, **settings) == entries


def test_a_cache_folder_linked_to_a_folder_that_does_not_exist_is_named(tmp_path, capfd, monkeypatch):
    """AUDIOTRAIN_CACHE_DIR linked to a drive not mounted: "cannot write the demo songs to
    CACHE/demo/chords/... (File exists)", where nothing exists."""
    from audiotrain.recipes.chords import cli as chords

    cache = tmp_path / "cache"
    cache.symlink_to(tmp_path / "unmounted")
    monkeypatch.setenv("AUDIOTRAIN_CACHE_DIR", str(cache))
    flags = ["--data.demo_songs", "3", "--data.demo_test_songs", "1", "--data.demo_seconds", "6"]
    status = chords.main([*flags, "--run_dir", str(tmp_path / "run")])
    err = capfd.readouterr().err
    assert status == 2, err
    link = f"({cache} is a link to {tmp_path / 'unmounted'}, which does not exist): point --data.cache_dir"
    assert f"error: cannot write the demo songs to {cache}/demo/chords/train-" in err and link in err, err
    assert not (tmp_path / "unmounted").exists() and not (tmp_path / "run").exists()


@needs_file_size_limit
def test_a_full_disk_while_rendering_the_demo_is_one_line(tmp_path, capfd):
    """On a full disk soundfile printed 'Exception ignored from cffi callback ... OSError: [Errno 28]' for
    each song, then the run died on an AssertionError from inside soundfile, with a traceback."""
    from audiotrain.recipes.chords import cli as chords

    cache = tmp_path / "cache"
    flags = ["--data.demo_songs", "3", "--data.demo_test_songs", "1", "--data.demo_seconds", "6"]
    with files_cannot_grow_past(100_000):  # a demo song is 264 kB
        status = chords.main([*flags, "--data.cache_dir", str(cache), "--run_dir", str(tmp_path / "run")])
    err = capfd.readouterr().err
    assert status == 1, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert f"error: cannot write the demo songs to {cache}/demo/chords/train-" in err, err
    assert "(File too large): point --data.cache_dir" in err, err


@pytest.mark.parametrize("style", STYLES)
def test_every_style_plans_songs_of_the_least_length(style):
    """At song_seconds=4 (the least a config takes) a lead-in drawn longer than the song left no chord: the
    independent style failed on 118 of 200 songs (IndexError), the train and studio styles on a few."""
    config = DemoConfig(n_songs=300, seed=3, style=style, song_seconds=4.0)
    for index in range(300):
        song = plan_demo_song(config, index)
        assert any(segment.label != "N" for segment in song.segments), index


def test_a_misspelt_demo_setting_names_generate_demo_songs_and_its_settings(tmp_path):
    """`generate_demo_songs(out, song_second=4)` said only "DemoConfig.__init__() got an unexpected keyword
    argument", naming a class the user never called and not the settings it takes; nothing is written."""
    with pytest.raises(TypeError, match=r"generate_demo_songs: unknown setting 'song_second'.*song_seconds"):
        generate_demo_songs(tmp_path / "songs", n_songs=1, song_second=4)
    assert not (tmp_path / "songs").exists()
