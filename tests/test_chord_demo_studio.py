"""The "studio" demo style: variety, rendering, and its use as training data through
`ChordDataConfig.demo_styles`. Its labels are checked against the notes with the train style's in
`tests/test_chord_demo.py` (the label rules, the labelled bass in the low band, the lowest note without a bass
instrument, the share of inversions, determinism)."""

import dataclasses
from collections import Counter

from audiotrain.chords.lab import ChordSegment, read_lab
from audiotrain.datasets.chord_demo import (
    DemoConfig,
    DemoSong,
    Note,
    generate_demo_songs,
    generator_version,
    is_bass_instrument,
    plan_demo_song,
    render_demo_song,
    style_timbres,
)
from audiotrain.datasets.chord_demo_studio import BASS_PATTERNS, STUDIO_VERSION, TIMBRES, VOICINGS, voicing
from audiotrain.datasets.chord_demo_studio_harmony import GENRES
from audiotrain.datasets.chord_demo_studio_sound import (
    BASS_INSTRUMENTS,
    CHORD_INSTRUMENTS,
    DRUM_PATTERNS,
    instrument_sound,
)
from audiotrain.recipes.chords.cli import _config_from_args, _training_parser
from audiotrain.recipes.chords.config import ChordDataConfig
from audiotrain.recipes.chords.data import assign_demo_styles, demo_splits

import numpy as np
import pytest

from tests.test_chord_demo import assert_sounds_the_note

CONFIG = DemoConfig(n_songs=200, seed=3, song_seconds=12.0, style="studio")


def _songs(n, config=CONFIG):
    return [plan_demo_song(config, i) for i in range(n)]


@pytest.fixture(scope="module")
def songs():
    return _songs(60)


def test_the_style_is_dispatched_with_its_own_version():
    assert generator_version("studio") == STUDIO_VERSION
    assert style_timbres("studio") == TIMBRES
    assert all(song.style == "studio" for song in _songs(2))


def test_songs_are_deterministic_by_seed():
    a, b = plan_demo_song(CONFIG, 4), plan_demo_song(CONFIG, 4)
    assert a.notes == b.notes and a.segments == b.segments and a.details == b.details
    other = plan_demo_song(DemoConfig(n_songs=8, seed=4, song_seconds=12.0, style="studio"), 4)
    assert other.notes != a.notes
    np.testing.assert_array_equal(render_demo_song(a, 8000, [3, 4]), render_demo_song(b, 8000, [3, 4]))


def test_inversions_take_about_a_quarter_of_the_chord_time():
    inverted = total = 0.0
    for song in _songs(24, DemoConfig(n_songs=24, seed=0, song_seconds=30.0, style="studio")):
        for segment in song.segments:
            if segment.label != "N":
                total += segment.end - segment.start
                inverted += (segment.end - segment.start) * ("/" in segment.label)
    assert 0.15 < inverted / total < 0.35


def test_every_genre_instrument_pattern_voicing_and_drum_pattern_occurs(songs):
    details = [song.details for song in songs]
    assert {d["genre"] for d in details} == set(GENRES)
    assert {i for d in details for i in d["instruments"]} == set(TIMBRES)
    assert {s.bass_instrument for s in songs} == {*BASS_INSTRUMENTS, None}
    assert {s.bass_pattern for s in songs if s.bass_pattern} == set(BASS_PATTERNS)
    assert {v for d in details for shapes in d["voicings"].values() for v in shapes} == set(VOICINGS)
    assert {d["drums"] for d in details} == set(DRUM_PATTERNS)
    without_bass = sum(s.bass_instrument is None for s in songs) / len(songs)
    assert 0.08 < without_bass < 0.35
    assert Counter(len(d["instruments"]) for d in details).keys() == {1, 2}
    assert {s.tuning_cents > 0 for s in songs} == {True, False}
    assert max(abs(s.tuning_cents) for s in songs) <= 45


def test_voicings_keep_the_lowest_note_and_the_pitch_classes():
    pcs = [0, 4, 7, 11, 2]  # C:maj9
    for shape in VOICINGS:
        notes = voicing(pcs, 4, 50, shape)
        assert min(notes) % 12 == 4 and {n % 12 for n in notes} == set(pcs) and max(notes) <= 84, shape
    assert voicing(pcs, 0, 48, "close") == [48, 50, 52, 55, 59]
    assert voicing(pcs, 0, 48, "spread") == [48, 55, 59, 62, 64]


def test_render_gives_finite_audio_in_range():
    for index in range(3):
        song = plan_demo_song(DemoConfig(n_songs=3, seed=1, song_seconds=5.0, style="studio"), index)
        audio = render_demo_song(song, 11025, [1, index])
        assert audio.dtype == np.float32 and len(audio) == round(song.duration * 11025)
        assert np.all(np.isfinite(audio)) and 0.2 < np.max(np.abs(audio)) <= 1.0
        assert np.max(np.abs(audio)) == pytest.approx(song.level, rel=1e-4)  # the song's drawn level


def test_a_song_without_percussion_has_no_drums():
    """`percussion=False` leaves the drums out of a studio song; every other draw stays the same."""
    song = plan_demo_song(DemoConfig(n_songs=1, seed=2, song_seconds=5.0, style="studio"), 0)
    assert song.percussion
    quiet = dataclasses.replace(song, percussion=False)
    assert not np.allclose(render_demo_song(quiet, 11025, [2, 0]), render_demo_song(song, 11025, [2, 0]))


#: A mix that changes nothing: no reverb, tilt, saturation or hum (the drums are left out with percussion).
_DRY_MIX = {"wet": 0.0, "rt60": 1.0, "predelay_s": 0.0, "split_hz": 500.0, "low_db": 0.0, "high_db": 0.0,
            "drive": 0.0, "hum_hz": 0.0, "drums_level": 1.0}  # fmt: skip


def _one_note_song(instrument, midi, tuning_cents, draw, noise_db=-80.0):
    """A 2 s studio song of one 1.5 s note of `instrument` (its `draw`-th drawn version), dry, no drums."""
    return DemoSong(
        segments=[ChordSegment(0.0, 2.0, "A:maj")],
        notes=[Note(0.0, 1.5, midi, 0.8, instrument)],
        duration=2.0,
        tempo=120.0,
        tuning_cents=tuning_cents,
        noise_db=noise_db,
        level=0.9,
        percussion=False,
        style="studio",
        details={
            "sounds": {instrument: instrument_sound(instrument, np.random.default_rng([7, draw]))},
            "mix": _DRY_MIX,
            "drums": "rock",
            "swing": 0.0,
        },
    )


def test_the_noise_floor_is_the_songs_noise_db_below_the_music():
    """After the note has ended only the noise floor sounds, `noise_db` below the music's RMS."""
    audio = render_demo_song(_one_note_song("epiano", 57, 0.0, 0, noise_db=-30.0), 22050, seed=0)
    floor = np.sqrt(np.mean(audio[int(1.7 * 22050) :] ** 2)) / np.sqrt(np.mean(audio**2))
    assert 20 * np.log10(floor) == pytest.approx(-30.0, abs=1.5)


@pytest.mark.parametrize("instrument", CHORD_INSTRUMENTS + BASS_INSTRUMENTS)
def test_each_instrument_sounds_its_note_in_the_songs_tuning(instrument):
    """Every studio timbre, in two of its drawn versions, plays the written note: audible, its fundamental the
    lowest partial (not an octave off), a steady line (its voices' detune and vibrato a few cents, not a
    wobble past the label) and in the song's tuning. Only song 0's sound is pinned by the version
    fingerprint."""
    sr, midi, cents = 22050, (45 if is_bass_instrument(instrument) else 57), 30.0
    for draw in range(2):
        audio = render_demo_song(_one_note_song(instrument, midi, cents, draw), sr, seed=0)
        note, after = audio[: int(1.5 * sr)], audio[int(1.8 * sr) :]
        assert np.sqrt(np.mean(note**2)) > 5 * np.sqrt(np.mean(after**2))  # the note, not the noise floor
        assert_sounds_the_note(note, sr, midi, cents)


def test_restricted_instruments_are_respected():
    config = DemoConfig(n_songs=6, seed=0, song_seconds=6.0, style="studio", timbres=("choir",))
    for song in _songs(6, config):
        assert {n.instrument for n in song.notes if not is_bass_instrument(n.instrument)} == {"choir"}
    with pytest.raises(ValueError, match="timbres"):
        DemoConfig(style="studio", timbres=("piano",))


def test_generate_writes_a_cached_set(tmp_path):
    entries = generate_demo_songs(tmp_path, n_songs=2, seed=0, sr=8000, song_seconds=5.0, style="studio")
    assert [read_lab(e.annotation_path)[-1].label for e in entries] == ["N", "N"]
    stamp = entries[0].audio_path.stat().st_mtime_ns
    generate_demo_songs(tmp_path, n_songs=2, seed=0, sr=8000, song_seconds=5.0, style="studio")
    assert entries[0].audio_path.stat().st_mtime_ns == stamp


# ---------------------------------------------------------------------------------------------- the mix


@pytest.mark.parametrize(
    ("styles", "message"),
    [
        (("train", "rock"), r"data.demo_styles .*: unknown style 'rock'"),
        (("train", "independent"), r"data.demo_styles .*held-out"),
        (("band",), r"data.demo_styles .*may not hold 'band': it is a held-out style"),
        ((), r"data.demo_styles .*at least one"),
        (("train:2", "train"), r"data.demo_styles .*'train' twice"),
        (
            ("train:2", "studio:0"),
            r"data.demo_styles .*: the weight in 'studio:0' must be a finite number > 0",
        ),
        (("train:heavy",), r"data.demo_styles .*: the weight in 'train:heavy'"),
        (("studio:inf",), r"data.demo_styles .*: the weight in 'studio:inf'"),
    ],
)
def test_the_style_mix_is_validated(styles, message):
    with pytest.raises(ValueError, match=message):
        ChordDataConfig(demo_styles=styles)


def test_the_default_mix_is_a_third_each_of_train_studio_and_patches():
    assert ChordDataConfig().demo_style_shares() == {"train": 1.0, "studio": 1.0, "patches": 1.0}
    assert ChordDataConfig(demo_styles=("studio", "train:0.5")).demo_style_shares() == {
        "studio": 1.0,
        "train": 0.5,
    }


def test_the_mix_comes_from_flags_and_config_files(tmp_path):
    parser = _training_parser("chords", "", needs_data=False)
    args = parser.parse_args(["--data.demo_styles", "train:3,studio"])
    assert _config_from_args(args).data.demo_style_shares() == {"train": 3.0, "studio": 1.0}
    config_file = tmp_path / "mix.yaml"
    config_file.write_text("data:\n  demo_styles: [studio]\n")
    assert _config_from_args(parser.parse_args(["--config", str(config_file)])).data.demo_styles == (
        "studio",
    )
    with pytest.raises(ValueError, match="held-out"):
        _config_from_args(parser.parse_args(["--data.demo_styles", "independent"]))


def test_styles_are_assigned_by_largest_remainder_and_interleaved():
    assert assign_demo_styles(6, (1.0,)) == [0] * 6
    mixed = assign_demo_styles(9, (2.0, 1.0))
    assert Counter(mixed) == {0: 6, 1: 3}
    assert set(mixed[:3]) == {0, 1}  # a prefix is already a mix
    assert Counter(assign_demo_styles(128, (2.0, 1.0))) == {0: 85, 1: 43}
    assert Counter(assign_demo_styles(7, (1.0, 1.0))) == {0: 4, 1: 3}  # a tie goes to the earlier style


def test_a_mix_trains_on_both_styles_and_keeps_the_held_out_set(tmp_path):
    data = ChordDataConfig(
        cache_dir=str(tmp_path),
        demo_songs=6,
        demo_test_songs=1,
        demo_seconds=4.0,
        demo_styles=("train:2", "studio"),
    )
    splits = demo_splits(data, sr=8000)
    songs = splits.train + splits.val
    assert len(songs) == 6 and len({s.name for s in songs}) == 6
    assert Counter(s.name.split("-")[0] for s in songs) == {"train": 4, "studio": 2}
    assert all("-train-" in str(s.audio_path.parent.name) for s in splits.test)
    single = dict(cache_dir=str(tmp_path), demo_songs=4, demo_test_songs=1, demo_seconds=4.0)
    for style in ("train", "studio"):  # a single style's songs keep their plain names, from its own set
        plain = demo_splits(ChordDataConfig(**single, demo_styles=(style,)), 8000)
        assert sorted(s.name for s in plain.train + plain.val) == [f"song_{i:03d}" for i in range(4)]
        assert all(f"-{style}-" in s.audio_path.parent.name for s in plain.train + plain.val)
