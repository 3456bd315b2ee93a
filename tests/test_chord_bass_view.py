"""The bass view: the lowest notes computed again with shorter CQT filters, read by the bass head alone."""

from dataclasses import asdict

from audiotrain.models.chord_model import ChordModelConfig
from audiotrain.recipes.chords.config import ChordFeatureConfig

import numpy as np
import pytest

SR = 22050
E1, G1 = 4 * 3, 7 * 3  # bins above C1 at 36 bins per octave


def _tone(midi: float, start: float, stop: float, t: np.ndarray) -> np.ndarray:
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    on = (t >= start) & (t < stop)
    return np.where(on, sum(np.sin(2 * np.pi * k * f0 * t) / k for k in (1, 2, 3)), 0.0)


def _bass_line(cents: float = 0.0, with_chord: bool = False) -> np.ndarray:
    """E1 from 0.5 to 1.5 s, then G1 to 3.5 s (three harmonics each); optionally a C major triad above."""
    t = np.arange(4 * SR) / SR
    shift = cents / 100
    y = _tone(28 + shift, 0.5, 1.5, t) + _tone(31 + shift, 1.5, 3.5, t)
    if with_chord:
        y += sum(_tone(m + shift, 0.0, 4.0, t) for m in (48, 52, 55, 60)) * 0.5
    return (0.1 * y).astype(np.float32)


def test_the_bass_view_follows_the_chord_view_in_the_model_input():
    features = ChordFeatureConfig()
    assert features.bass_view_bins == 108  # three octaves from C1: the bass range
    full = features.compute(_bass_line())
    spare = features.spare_bins
    assert full.shape[0] == (216 + 2 * spare) + (108 + 2 * spare)
    frames = features.crop(full)
    assert frames.shape == (full.shape[1], features.input_bins) == (full.shape[1], 324)
    plain = ChordFeatureConfig(bass_view_bins=0)
    np.testing.assert_array_equal(frames[:, :216], plain.crop(plain.compute(_bass_line())))
    # Shifted, both views move by the same bins.
    up = features.crop(full, 2)
    np.testing.assert_array_equal(up[:, 6:216], frames[:, :210])
    np.testing.assert_array_equal(up[:, 216 + 6 :], frames[:, 216:-6])


def test_the_bass_view_lets_go_of_a_bass_note_sooner():
    """After E1 gives way to G1, the chord view's long low filters still hear E1 for a few tenths of a
    second (its filters at E1 last 1.5 s); the bass view's shorter ones let go within a few frames."""
    features = ChordFeatureConfig(bass_view_bins=108, tuning_correction=False)
    x = features.crop(features.compute(_bass_line()))
    after = slice(round(1.65 * features.frame_rate), round(1.85 * features.frame_rate) + 1)
    chord_view = x[after, G1] - x[after, E1]
    bass_view = x[after, 216 + G1] - x[after, 216 + E1]
    assert np.all(bass_view > chord_view + 1.0), (chord_view, bass_view)
    # While E1 sounds alone, both views hear it as the lowest note.
    during = slice(round(0.9 * features.frame_rate), round(1.2 * features.frame_rate))
    assert np.all(x[during, 216 + E1] > x[during, 216 + G1] + 1.0)


def test_a_detuned_recording_has_both_views_corrected():
    corrected = ChordFeatureConfig(bass_view_bins=108)
    plain = ChordFeatureConfig(bass_view_bins=108, tuning_correction=False)
    in_tune = plain.crop(plain.compute(_bass_line(with_chord=True)))[:, 216:]
    sharp = _bass_line(40.0, with_chord=True)  # 1.2 bins sharp
    error_plain = np.abs(plain.crop(plain.compute(sharp))[:, 216:] - in_tune).mean()
    error_corrected = np.abs(corrected.crop(corrected.compute(sharp))[:, 216:] - in_tune).mean()
    assert error_corrected < 0.5 * error_plain  # not corrected: the same error (0.31 of it measured)


def test_settings_are_checked_and_older_settings_have_no_bass_view():
    with pytest.raises(
        ValueError, match=r"features.bass_view_bins .* = 300 is above features.n_bins .* = 216"
    ):
        ChordFeatureConfig(bass_view_bins=300)
    with pytest.raises(ValueError, match=r"features.bass_view_filter_scale .* got 0"):
        ChordFeatureConfig(bass_view_bins=108, bass_view_filter_scale=0)
    assert ChordFeatureConfig(bass_view_bins=108).key() != ChordFeatureConfig(bass_view_bins=0).key()
    # The view's filter length names another cache folder only where there is a view to compute: without
    # one the features are the same, and a second folder would compute every song again.
    assert (
        ChordFeatureConfig(bass_view_bins=108, bass_view_filter_scale=0.25).key()
        != ChordFeatureConfig(bass_view_bins=108).key()
    )
    assert (
        ChordFeatureConfig(bass_view_bins=0, bass_view_filter_scale=0.25).key()
        == ChordFeatureConfig(bass_view_bins=0).key()
    )
    # A checkpoint written before the bass view has neither key: its model read no view.
    stored = {k: v for k, v in asdict(ChordFeatureConfig()).items() if not k.startswith("bass_view")}
    assert ChordFeatureConfig.from_stored(stored).input_bins == 216
    model = {k: v for k, v in ChordModelConfig().to_dict().items() if k != "bass_view_bins"}
    assert ChordModelConfig.from_dict(model).bass_view_bins == 0


def test_resuming_a_run_from_before_the_bass_view_names_the_feature_flag():
    """A checkpoint written before the bass view stored features without it; resumed under the new default,
    the refusal names the --features setting to pass (the model's input width has no flag of its own)."""
    from dataclasses import asdict

    from audiotrain.chords.decode import DecodeConfig
    from audiotrain.recipes.chords.predict import checkpoint_entries
    from audiotrain.recipes.chords.task import CHECKPOINT_KEY, ChordTask

    features = ChordFeatureConfig()
    task = ChordTask(ChordModelConfig(), extra_state=checkpoint_entries(features, DecodeConfig(), 96))
    old_features = {k: v for k, v in asdict(features).items() if not k.startswith("bass_view")}
    old_model = {k: v for k, v in ChordModelConfig().to_dict().items() if k != "bass_view_bins"}
    stored = {CHECKPOINT_KEY: {"model_config": old_model, "features": old_features}}
    with pytest.raises(ValueError, match=r"features.bass_view_bins \(0 there, 108 here\)"):
        task.on_load_checkpoint(stored)
