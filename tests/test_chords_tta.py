"""Test-time augmentation of chord prediction: posteriors averaged over pitch-shifted CQT crops."""

from audiotrain.datasets.chord_songs import ChordSongConfig
from audiotrain.models.chord_model import ChordModelConfig, ChordRecognitionModel
from audiotrain.recipes.chords.config import ChordFeatureConfig
from audiotrain.recipes.chords.predict import DEFAULT_TTA_SEMITONES, ChordPredictor

import mlx.core as mx
import numpy as np
import pytest
import soundfile as sf


@pytest.mark.parametrize("chord_head", [False, True])
def test_tta_averages_shifted_crops_with_roots_rotated_back(tmp_path, chord_head):
    sr = 22050
    t = np.arange(3 * sr) / sr
    audio = sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)) * 0.1  # C major
    path = tmp_path / "c.wav"
    sf.write(path, audio.astype(np.float32), sr)
    mx.random.seed(0)  # the same weights whatever tests ran before
    model = ChordRecognitionModel(
        ChordModelConfig(d_model=32, n_layers=1, n_heads=2, ff_dim=64, dropout=0.0, chord_head=chord_head)
    )
    features = ChordFeatureConfig()
    plain = ChordPredictor(model, features, window_frames=16, tta_shifts=(0,))
    tta = ChordPredictor(model, features, window_frames=16, tta_shifts=(-1, 0, 1))
    full = features.compute(features.load(path))
    expected = {"chord_type": 0.0, "root": 0.0, "bass": 0.0, **({"chord": 0.0} if chord_head else {})}
    for shift in (-1, 0, 1):
        p = plain.posteriors_from_features(features.crop(full, shift))
        expected["chord_type"] = expected["chord_type"] + p["chord_type"] / 3
        for key in ("root", "bass"):
            expected[key] = expected[key] + np.roll(p[key], -shift, axis=1) / 3
        if chord_head:  # N and X stay; each chord type's 12 roots rotate back like the root head's
            chords = p["chord"].copy()
            for first in range(2, chords.shape[1], 12):
                chords[:, first : first + 12] = np.roll(chords[:, first : first + 12], -shift, axis=1)
            expected["chord"] = expected["chord"] + chords / 3
    got = tta.posteriors(path).probs
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-5, atol=1e-6)
    assert not np.allclose(got["root"], plain.posteriors(path).probs["root"])  # it changes something
    with pytest.raises(ValueError, match="tta shift 7 needs more spare bins"):
        ChordPredictor(model, features, window_frames=16, tta_shifts=(7,)).posteriors(path)


def test_tta_is_on_by_default_as_far_as_the_spare_bins_reach():
    model = ChordRecognitionModel(ChordModelConfig(d_model=32, n_layers=1, n_heads=2, ff_dim=64))
    assert DEFAULT_TTA_SEMITONES == 2
    assert ChordPredictor(model, ChordFeatureConfig()).tta_shifts == (-2, -1, 0, 1, 2)
    # A model trained with less pitch-shift reach has fewer spare bins to move its crop into.
    assert ChordPredictor(model, ChordFeatureConfig(max_pitch_shift=1)).tta_shifts == (-1, 0, 1)
    assert ChordPredictor(model, ChordFeatureConfig(max_pitch_shift=0)).tta_shifts == (0,)
    assert ChordPredictor(model, ChordFeatureConfig(), tta_shifts=()).tta_shifts == (0,)


def test_fractional_tta_shifts_are_refused_naming_the_argument():
    """(-0.5, 0, 0.5) became (0, 0, 0): three unshifted passes at three times the cost; -1.9 became -1."""
    model = ChordRecognitionModel(ChordModelConfig(d_model=32, n_layers=1, n_heads=2, ff_dim=64))
    for shifts, bad in (((-0.5, 0, 0.5), "-0.5"), ((-1.9, 1.9), "-1.9")):
        with pytest.raises(ValueError, match=f"ChordPredictor tta_shifts must be whole semitones.*got {bad}"):
            ChordPredictor(model, ChordFeatureConfig(), tta_shifts=shifts)
    assert ChordPredictor(model, ChordFeatureConfig(), tta_shifts=(-1.0, 0, 1.0)).tta_shifts == (-1, 0, 1)


def test_tta_shifts_given_as_one_number_or_a_string_are_refused_naming_the_argument():
    """tta_shifts="12" averaged shifts 1 and 2 (the string read a character at a time), and tta_shifts=2 (as
    --tta 2 is written) was a bare "'int' object is not iterable"; training's pitch_shifts alike."""
    model = ChordRecognitionModel(ChordModelConfig(d_model=32, n_layers=1, n_heads=2, ff_dim=64))
    for shifts in ("12", 2):
        with pytest.raises(TypeError, match=r"ChordPredictor tta_shifts must be a sequence.*tuple\(range"):
            ChordPredictor(model, ChordFeatureConfig(), tta_shifts=shifts)
    with pytest.raises(TypeError, match="ChordSongConfig.pitch_shifts must be a sequence.*got '12'"):
        ChordSongConfig(frame_rate=10.0, pitch_shifts="12")
    assert ChordPredictor(model, ChordFeatureConfig(), tta_shifts=range(-1, 2)).tta_shifts == (-1, 0, 1)


def test_views_batched_together_average_to_each_views_own_posteriors_rotated_back():
    """The shifted crops' windows share forward passes and one running sum (13 sums of an hour's song held
    2.7 GB under --tta 6); the result is still the mean of each crop's own posteriors, each rotated back by
    its shift, for any length (shorter than a window, a window, longer) and any hop."""
    mx.random.seed(0)  # the weights, whatever tests ran before: batched and alone agree to float32 rounding
    model = ChordRecognitionModel(ChordModelConfig(d_model=32, n_layers=1, n_heads=2, ff_dim=64, dropout=0.0))
    rng = np.random.default_rng(0)
    shifts = (-1, 0, 2)

    def rotated_back(key, probs, shift):  # a chord heard s semitones up has its root and bass s up
        if key in ("root", "bass"):
            return np.roll(probs, -shift, axis=1)
        if key == "chord":  # the 12 roots of each chord type, after N and X
            roots = probs[:, 2:].reshape(len(probs), -1, 12)
            return np.concatenate([probs[:, :2], np.roll(roots, -shift, axis=2).reshape(len(probs), -1)], 1)
        return probs

    for frames in (5, 16, 57):
        views = [rng.standard_normal((frames, 216 + 108)).astype(np.float32) for _ in shifts]
        for hop in (None, 1, 8, 16):
            predictor = ChordPredictor(
                model, ChordFeatureConfig(), window_frames=16, batch_windows=3, window_hop=hop
            )
            together = predictor._windowed_posteriors(views, shifts)
            alone = [predictor.posteriors_from_features(view) for view in views]
            for key in together:
                expected = np.mean([rotated_back(key, a[key], s) for a, s in zip(alone, shifts)], axis=0)
                assert together[key].shape == expected.shape == (frames, alone[0][key].shape[1])
                np.testing.assert_allclose(together[key], expected, rtol=1e-5, atol=1e-6)
    assert ChordPredictor(model, ChordFeatureConfig(), window_frames=16).window_hop == 12
    with pytest.raises(ValueError, match="window_hop must be 1 to window_frames = 16, got 17"):
        ChordPredictor(model, ChordFeatureConfig(), window_frames=16, window_hop=17)


def test_a_song_run_trained_without_pitch_shifts_records_none_for_predict():
    """--data.pitch_shift false trains a model in its songs' keys only, as the clip Trainer does: its
    checkpoint records that, so that predict's default test-time shifts stay off for it."""
    from audiotrain.recipes.chords.config import TrainingConfig
    from audiotrain.recipes.chords.train import build_task

    config = TrainingConfig()
    assert "pitch_shifts" not in build_task(config, [], steps_per_epoch=1).extra_state
    config.data.pitch_shift = False
    assert build_task(config, [], steps_per_epoch=1).extra_state["pitch_shifts"] == [0]
