"""Test-time augmentation of chord prediction: posteriors averaged over pitch-shifted CQT crops."""

from audiotrain.models.chord_model import ChordModelConfig, ChordRecognitionModel
from audiotrain.recipes.chords.config import ChordFeatureConfig
from audiotrain.recipes.chords.predict import ChordPredictor

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
    model = ChordRecognitionModel(
        ChordModelConfig(d_model=32, n_layers=1, n_heads=2, ff_dim=64, dropout=0.0, chord_head=chord_head)
    )
    features = ChordFeatureConfig()
    plain = ChordPredictor(model, features, window_frames=16)
    tta = ChordPredictor(model, features, window_frames=16, tta_shifts=(-1, 0, 1))
    full = features.compute(features.load(path))
    expected = {"chord_type": 0.0, "root": 0.0, "bass": 0.0, **({"chord": 0.0} if chord_head else {})}
    for shift in (-1, 0, 1):
        start = features.spare_bins - shift * features.bins_per_semitone
        p = plain.posteriors_from_features(np.ascontiguousarray(full[start : start + features.n_bins].T))
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
