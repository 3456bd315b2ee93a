"""The "patches" demo style: its scores come from the studio and train planners (on other seeds), its sound
from random synthesizer patches that keep the labels true (nothing below a note's fundamental, nothing off
its harmonic series, nothing over Nyquist). Its label rules are checked note by note with the other styles'
in `tests/test_chord_demo.py`."""

import os
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

from audiotrain.chords.lab import ChordSegment
from audiotrain.datasets import chord_demo_patches_sound
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
    MAX_DETUNE_CENTS,
    draw_patch,
    highest_harmonic,
    patch_curves,
    render_note,
    render_patches_song,
    table_bank,
)
from audiotrain.recipes.chords.config import ChordDataConfig
from audiotrain.recipes.chords.data import demo_splits

import numpy as np
import pytest
from test_chord_demo import assert_sounds_the_note

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
    # the render seed drives the drums, the reverb and the noise
    assert not np.array_equal(render_demo_song(a, 8000, [3, 4]), render_demo_song(a, 8000, [5, 4]))
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
        # no tape saturation or mains hum: they add tones of no note, some below the labelled bass
        assert song.details["mix"]["drive"] == 0.0 and song.details["mix"]["hum_hz"] == 0.0
    assert {s.tuning_cents > 0 for s in songs} == {True, False}
    assert max(abs(s.tuning_cents) for s in songs) <= 45


def test_the_patches_do_not_depend_on_the_process_hash_seed():
    """A song's patches are a function of the config and the index, not of the process: processes with other
    string hash seeds (the order of a set of instrument names) draw the same patch for each instrument."""
    code = (
        "from audiotrain.datasets.chord_demo import DemoConfig, plan_demo_song\n"
        "config = DemoConfig(n_songs=4, seed=3, song_seconds=6.0, style='patches')\n"
        "print([plan_demo_song(config, i).details['patches'] for i in range(4)])"
    )
    root = Path(__file__).resolve().parents[1]
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=root,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        for hash_seed in ("1", "2", "3")
    }
    assert len(outputs) == 1


def test_restricted_families_are_respected():
    config = DemoConfig(n_songs=4, seed=0, song_seconds=6.0, style="patches", timbres=("fm",))
    for song in _songs(4, config):
        chord = {p["family"] for name, p in song.details["patches"].items() if not is_bass_instrument(name)}
        assert chord == {"fm"}
    with pytest.raises(ValueError, match="timbres"):
        DemoConfig(style="patches", timbres=("piano",))


def _one_note_song(patches, notes, tuning_cents=0.0, duration=2.0):
    """A quiet patches song (no drums, no noise) of the given notes and patches (instrument -> patch)."""
    song = plan_demo_song(replace(CONFIG, noise_db=(-80.0, -80.0), percussion=False), 0)
    return replace(
        song,
        segments=[ChordSegment(0.0, duration, "A:maj")],
        notes=notes,
        duration=duration,
        tuning_cents=tuning_cents,
        details={**song.details, "patches": patches},
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_each_patch_family_sounds_its_note_in_the_songs_tuning(family):
    """Like the independent style's instruments (tests/test_chord_demo.py), every patch family plays the
    written note: audible, its fundamental the lowest partial, a steady line and in the song's tuning, also
    with its voices detuned as far as a patch may (all within MAX_DETUNE_CENTS / 2 of the note)."""
    sr, cents = 22050, 30.0
    midi = 45 if family in BASS_FAMILIES else 57
    patches = _patches(family, 4)
    patches.append({**patches[0], "voices": 3, "detune_cents": MAX_DETUNE_CENTS, "vibrato_cents": 0.0})
    for patch in patches:
        song = _one_note_song({"x": patch}, [Note(0.0, 1.5, midi, 0.8, "x")], cents)
        audio = render_demo_song(song, sr, seed=0)
        note, after = audio[: int(1.5 * sr)], audio[int(1.8 * sr) :]
        assert np.sqrt(np.mean(note**2)) > 5 * np.sqrt(np.mean(after**2)), patch  # the note, not the noise
        assert_sounds_the_note(note, sr, midi, cents, by_fundamental=True)


def test_each_instrument_sounds_its_own_patch(monkeypatch):
    """Two instruments playing the same note sound their own patches: without the mix (reverb, noise,
    normalisation) a song's audio is the sum of its instruments' audio."""
    monkeypatch.setattr(chord_demo_patches_sound, "mixdown", lambda audio, song, sr, rng: audio)
    patches = {"a": _patches("organ", 1)[0], "b": _patches("fm", 1)[0]}
    first, second = Note(0.0, 0.5, 60, 0.8, "a"), Note(0.5, 1.0, 60, 0.8, "b")

    def render(*notes):
        return render_patches_song(_one_note_song(patches, list(notes)), 8000)

    np.testing.assert_array_equal(render(first, second), render(first) + render(second))


@pytest.mark.parametrize(
    ("family", "dies_away"), [("plucked", True), ("bass_picked", True), ("organ", False)]
)
def test_plucked_notes_die_away_and_organ_notes_hold(family, dies_away):
    """A plucked string fades (sustain at most 0.15) while an organ holds its note: the RMS of a 4 s note's
    last 0.3 s before its release against its first 0.3 s (measured: 0.07-0.26 and 0.65-1.0)."""
    sr, midi = 22050, (45 if family in BASS_FAMILIES else 57)
    for patch in _patches(family, 8):
        audio = _note_audio({**patch, "tremolo": 0.0}, midi, sr, seconds=4.0)
        late, early = audio[int(3.3 * sr) : int(3.6 * sr)], audio[: int(0.3 * sr)]
        ratio = np.sqrt(np.mean(late**2) / np.mean(early**2))
        assert ratio < 0.4 if dies_away else ratio > 0.5, (family, ratio, patch)


def test_chord_and_bass_patches_play_at_their_levels(monkeypatch):
    """Without the mix, a held note at full velocity sounds at the studio style's level of its kind (chord
    0.22, bass 0.5 of a sine's RMS) moved by its patch's ``gain_db``: never above it (its loudest table is at
    a sine's RMS and voices share the level, a five-voice supersaw is not five notes loud), and not far
    below (measured: 0.23-1.0 of it)."""
    monkeypatch.setattr(chord_demo_patches_sound, "mixdown", lambda audio, song, sr, rng: audio)
    sr = 8000
    for family in FAMILIES:
        bass = family in BASS_FAMILIES
        for patch in _patches(family, 8):
            patch = {**patch, "sustain": 1.0, "tremolo": 0.0}
            assert -5.0 <= patch["gain_db"] <= (4.0 if bass else 3.0)
            audio = render_patches_song(
                _one_note_song({"x": patch}, [Note(0.0, 1.5, 45 if bass else 57, 1.0, "x")]), sr
            )
            level = np.sqrt(0.5) * (0.5 if bass else 0.22) * 10 ** (patch["gain_db"] / 20)
            rms = np.sqrt(np.mean(audio[int(0.8 * sr) : int(1.2 * sr)] ** 2))
            assert 0.2 * level < rms < 1.05 * level, (family, rms / level, patch)


@pytest.mark.parametrize("family", [f for f in FAMILIES if f not in ("organ", "bass_sub")])
def test_a_patch_bank_goes_from_dull_to_bright(family):
    """The timbre curve has somewhere to go: a bank's first table is duller (a lower spectral centroid) than
    its last (a filter or index envelope, a string's upper harmonics dying sooner, a pad's swell). The organ's
    percussion bank may be duller when struck on the 2nd harmonic, and the sub bass is a single table."""
    for patch in _patches(family, 12):
        power = np.abs(np.fft.rfft(table_bank(patch, _hz(45 if family in BASS_FAMILIES else 57), 22050))) ** 2
        centroid = (power * np.arange(power.shape[1])).sum(axis=1) / power.sum(axis=1)
        assert centroid[0] < centroid[-1], (family, centroid, patch)
        if patch.get("wave") == "square":  # a square wave: odd harmonics only
            assert power[:, 2::2].max() < 1e-9 * power.max(), patch


def test_detuned_families_draw_their_voices():
    """A supersaw is three to five detuned voices, a pad two or three, as documented."""
    assert {p["voices"] for p in _patches("supersaw", 30)} == {3, 4, 5}
    assert {p["voices"] for p in _patches("pad", 30)} == {2, 3}
    assert all(
        0 < p["detune_cents"] <= MAX_DETUNE_CENTS for p in _patches("supersaw", 30) + _patches("pad", 30)
    )


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
