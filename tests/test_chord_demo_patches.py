"""The "patches" demo style: its scores come from the studio and train planners (on other seeds), its sound
from random synthesizer patches that keep the labels true (nothing below a note's fundamental, nothing off
its harmonic series, nothing over Nyquist). Its label rules are checked note by note with the other styles'
in `tests/test_chord_demo.py`."""

from collections import Counter
from dataclasses import replace

from audiotrain.datasets.chord_demo import (
    DemoConfig,
    Note,
    generator_version,
    is_bass_instrument,
    plan_demo_song,
    render_demo_song,
    style_timbres,
)
from audiotrain.datasets.chord_demo_patches import PATCHES_VERSION, SCORE_SEED_OFFSET, TIMBRES
from audiotrain.datasets.chord_demo_patches_sound import (
    BASS_FAMILIES,
    CHORD_FAMILIES,
    FM_RATIOS,
    draw_patch,
    highest_harmonic,
    patch_curves,
    render_note,
    table_bank,
)
from audiotrain.recipes.chords.config import ChordDataConfig
from audiotrain.recipes.chords.data import demo_splits

import numpy as np
import pytest

CONFIG = DemoConfig(n_songs=40, seed=3, song_seconds=6.0, style="patches")
FAMILIES = CHORD_FAMILIES + BASS_FAMILIES


def _songs(n, config=CONFIG):
    return [plan_demo_song(config, i) for i in range(n)]


def _note_audio(patch, midi, sr=22050, seconds=1.0):
    """One note of a patch at A440 tuning, velocity 0.8."""
    note = Note(0.0, seconds, midi, 0.8, "x")
    bank = table_bank(patch, 440.0 * 2 ** ((midi - 69) / 12), sr)
    return render_note(note, patch, bank, patch_curves(patch, sr), sr, 1.0)


def _hz(midi):
    return 440.0 * 2 ** ((midi - 69) / 12)


def _patches(family, n=6):
    return [draw_patch(family, np.random.default_rng([seed, 7])) for seed in range(n)]


def test_the_style_is_dispatched_with_its_own_version():
    assert generator_version("patches") == PATCHES_VERSION
    assert style_timbres("patches") == TIMBRES == CHORD_FAMILIES
    assert all(song.style == "patches" for song in _songs(2))


def test_songs_are_deterministic_and_differ_by_index():
    a, b = plan_demo_song(CONFIG, 4), plan_demo_song(CONFIG, 4)
    assert a.notes == b.notes and a.segments == b.segments and a.details == b.details
    np.testing.assert_array_equal(render_demo_song(a, 8000, [3, 4]), render_demo_song(b, 8000, [3, 4]))
    other = plan_demo_song(CONFIG, 5)
    assert other.details["patches"] != a.details["patches"] and other.notes != a.notes


def test_scores_are_the_planners_on_another_seed():
    """A patches song is its planner's score for seed + SCORE_SEED_OFFSET, labels and notes unchanged, and
    another score than the studio or train song of the same seed and index. Train scores are planned
    without version 9's draws (more songs without a bass instrument, more often inverted), as measured."""
    without_v9 = 0  # train scores that version 9's draws would have changed
    for index, song in enumerate(_songs(26)):
        planner = song.details["planner"]
        score_config = replace(CONFIG, style=planner, seed=CONFIG.seed + SCORE_SEED_OFFSET, timbres=None)
        score = plan_demo_song(score_config, index, unaccompanied_inversions=False)  # studio: no such draws
        assert song.segments == score.segments and song.notes == score.notes
        assert song.tuning_cents == score.tuning_cents and song.tempo == score.tempo
        if planner == "train":
            v9 = plan_demo_song(score_config, index)
            without_v9 += (v9.segments, v9.notes) != (score.segments, score.notes)
        for style in ("studio", "train"):
            same_seed = plan_demo_song(replace(CONFIG, style=style, timbres=None), index)
            assert same_seed.segments != song.segments, (index, style)
    assert without_v9 >= 1


def test_every_family_and_both_planners_are_drawn():
    songs = _songs(40)
    families = Counter(p["family"] for s in songs for p in s.details["patches"].values())
    assert set(families) == set(FAMILIES)
    assert {s.details["planner"] for s in songs} == {"studio", "train"}
    for song in songs:
        for name, patch in song.details["patches"].items():
            assert is_bass_instrument(name) == (patch["family"] in BASS_FAMILIES), (name, patch["family"])
    assert {s.tuning_cents > 0 for s in songs} == {True, False}
    assert max(abs(s.tuning_cents) for s in songs) <= 45


def test_restricted_families_are_respected():
    config = DemoConfig(n_songs=4, seed=0, song_seconds=6.0, style="patches", timbres=("fm",))
    for song in _songs(4, config):
        chord = {p["family"] for name, p in song.details["patches"].items() if not is_bass_instrument(name)}
        assert chord == {"fm"}
    with pytest.raises(ValueError, match="timbres"):
        DemoConfig(style="patches", timbres=("piano",))


def _energy_shares(audio, f0, sr, vibrato_hz=0.0):
    """(share of the energy below 0.9 f0, share between the first eight harmonics outside +-3% of each, and
    beyond the first two sidebands of a vibrato)."""
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio)), 4 * len(audio))) ** 2
    freqs = np.fft.rfftfreq(4 * len(audio), 1 / sr)
    total = spectrum.sum()
    below = spectrum[freqs < 0.9 * f0].sum() / total
    low_band = (freqs >= 0.9 * f0) & (freqs < 8.5 * f0)
    ratio = freqs / f0
    off_series = low_band & (np.abs(ratio - np.round(ratio)) > 0.03 * np.round(ratio) + 2.5 * vibrato_hz / f0)
    return below, spectrum[off_series].sum() / total


@pytest.mark.parametrize("family", FAMILIES)
def test_no_energy_below_the_fundamental_or_off_the_harmonic_series(family):
    """The labelled bass stays the lowest sounding pitch and no patch adds other pitch classes: under 1% of a
    note's energy lies below 0.9 f0, and under 1% between its first eight harmonics (measured on the note
    held steady: a fast decay widens every harmonic's line, which is no other pitch)."""
    low, high = (33, 45) if family in BASS_FAMILIES else (55, 55)
    for patch in _patches(family):
        below, _ = _energy_shares(_note_audio(patch, low), _hz(low), 22050)
        steady = {**patch, "sustain": 1.0, "tremolo": 0.0, "timbre_to": patch["timbre_from"]}
        vibrato_hz = patch["vibrato_hz"] if patch["vibrato_cents"] else 0.0
        _, off = _energy_shares(_note_audio(steady, high), _hz(high), 22050, vibrato_hz)
        assert below < 0.01 and off < 0.01, (family, below, off, patch)


@pytest.mark.parametrize(("carrier", "modulator"), FM_RATIOS)
def test_fm_sidebands_stay_on_the_harmonic_series(carrier, modulator):
    patch = {**draw_patch("fm", np.random.default_rng(0)), "carrier": carrier, "modulator": modulator}
    patch.update(index_low=6.0, index_high=6.0, vibrato_cents=0.0, voices=1, detune_cents=0.0)
    f0 = 440.0 * 2 ** ((48 - 69) / 12)
    below, off = _energy_shares(_note_audio(patch, 48), f0, 22050)
    assert below < 0.01 and off < 0.01, (carrier, modulator, below, off)
    fundamental = np.abs(np.fft.rfft(table_bank(patch, f0, 22050)[-1]))
    assert fundamental[1] >= 0.29 * fundamental.max()  # the note's pitch, not an octave above it


@pytest.mark.parametrize("sr", [22050, 8000])
def test_every_partial_stays_under_nyquist(sr):
    for family in FAMILIES:
        for patch in _patches(family, 3):
            for midi in (28, 60, 84):
                f0 = 440.0 * 2 ** ((midi - 69 + 0.45) / 12)  # tuned 45 cents sharp
                bank = table_bank(patch, f0, sr)
                k = highest_harmonic(patch, f0, sr)
                highest = k * f0 * 2 ** ((patch["vibrato_cents"] + patch["detune_cents"] / 2) / 1200)
                assert highest < sr / 2, (family, midi)
                spectrum = np.abs(np.fft.rfft(bank, axis=1))
                assert spectrum[:, k + 1 :].max() < 1e-6 * spectrum.max(), (family, midi)
                assert spectrum[:, 0].max() < 1e-6 * spectrum.max()  # no DC


def test_render_gives_finite_peak_normalised_audio():
    for index, song in enumerate(_songs(3, replace(CONFIG, song_seconds=6.0))):
        audio = render_demo_song(song, 8000, [1, index])
        assert audio.dtype == np.float32 and len(audio) == round(song.duration * 8000)
        assert np.all(np.isfinite(audio))
        assert np.max(np.abs(audio)) == pytest.approx(song.level, rel=1e-5) and song.level <= 1.0


def test_a_mix_of_three_styles_names_its_songs_by_style(tmp_path):
    data = ChordDataConfig(
        cache_dir=str(tmp_path),
        demo_songs=4,
        demo_test_songs=1,
        demo_seconds=4.0,
        demo_styles=("train:2", "studio:1", "patches:1"),
    )
    splits = demo_splits(data, sr=8000)
    names = sorted(s.name for s in splits.train + splits.val)
    assert Counter(name.split("-")[0] for name in names) == {"train": 2, "studio": 1, "patches": 1}
    assert "patches-song_000" in names
    patches = next(s for s in splits.train + splits.val if s.name.startswith("patches-"))
    assert "-patches-" in patches.audio_path.parent.name and patches.audio_path.exists()
