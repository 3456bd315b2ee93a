"""The demo song generator: labels exactly match what is synthesised, variety, caching, determinism."""

from collections import Counter

from audiotrain.chords.harte import parse_harte
from audiotrain.chords.lab import read_lab
from audiotrain.chords.vocabulary import encode_label
from audiotrain.datasets.chord_demo import (
    TIMBRES,
    DemoConfig,
    generate_demo_songs,
    plan_demo_song,
    render_demo_song,
)

import mir_eval
import numpy as np
import pytest
import soundfile as sf

CONFIG = DemoConfig(n_songs=12, seed=3, song_seconds=20.0)


def _sounding(song, segment):
    return [n for n in song.notes if n.onset < segment.end and n.offset > segment.start]


@pytest.mark.parametrize("index", range(12))
def test_notes_of_each_segment_are_exactly_the_label(index):
    song = plan_demo_song(CONFIG, index)
    assert song.segments[0].start == 0.0 and song.segments[-1].end == pytest.approx(song.duration)
    assert all(a.end == b.start for a, b in zip(song.segments, song.segments[1:]))
    for segment in song.segments:
        notes = _sounding(song, segment)
        chord = parse_harte(segment.label)
        if not chord.is_chord:
            assert notes == [], segment
            continue
        assert {n.midi % 12 for n in notes} == set(chord.pitch_classes), segment
        assert min(notes, key=lambda n: n.midi).midi % 12 == chord.bass_pitch_class, segment
        # no note rings into the next segment
        assert all(segment.start <= n.onset and n.offset <= segment.end for n in notes), segment


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


@pytest.mark.parametrize("index", range(4))
def test_rendered_audio_has_the_label_pitch_classes_and_bass(index):
    """From the audio alone: each chord tone has a spectral peak, and the lowest peak is the bass."""
    config = DemoConfig(n_songs=4, seed=11, song_seconds=15.0, noise_db=(-80.0, -80.0), percussion=False)
    song = plan_demo_song(config, index)
    audio = render_demo_song(song, config.sr, seed=0)
    checked = 0
    for segment in song.segments:
        chord = parse_harte(segment.label)
        if not chord.is_chord or segment.duration < 0.4:
            continue
        a, b = int(segment.start * config.sr), int(segment.end * config.sr)
        salience, midi = _salience(audio[a:b], config.sr, song.tuning_cents)
        # a peak on the semitone grid (leakage of a low note into its neighbour's band is not a note)
        peak = np.r_[True, salience[1:] > salience[:-1]] & np.r_[salience[:-1] > salience[1:], True]
        strong = peak & (salience > 0.3 * salience.max())
        assert midi[strong].min() % 12 == chord.bass_pitch_class, segment
        present = {int(m) % 12 for m in midi[salience > 0.02 * salience.max()]}
        assert set(chord.pitch_classes) <= present, segment
        checked += 1
    assert checked >= 3


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
    assert set(instruments) == {*TIMBRES, "bass"}


def test_restricted_timbres_are_respected():
    song = plan_demo_song(DemoConfig(n_songs=1, timbres=("organ",)), 0)
    assert {n.instrument for n in song.notes} <= {"organ", "bass"}
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


def test_songs_are_deterministic():
    a = plan_demo_song(CONFIG, 4)
    b = plan_demo_song(CONFIG, 4)
    assert a.segments == b.segments and a.notes == b.notes
    np.testing.assert_array_equal(render_demo_song(a, 22050, [1, 4]), render_demo_song(b, 22050, [1, 4]))
    assert plan_demo_song(DemoConfig(n_songs=12, seed=4, song_seconds=20.0), 4).segments != a.segments
