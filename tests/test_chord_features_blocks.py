"""A long recording's chord features are computed in blocks (`FEATURE_BLOCK_FRAMES` frames, each with its
context of audio around it), so that its memory does not grow with every frame's samples: the features, and
what `predict` makes of them, are the whole recording's."""

from audiotrain.models.chord_model import ChordModelConfig, ChordRecognitionModel
from audiotrain.recipes.chords import config as chord_config
from audiotrain.recipes.chords.config import ChordFeatureConfig
from audiotrain.recipes.chords.predict import ChordPredictor

import mlx.core as mx
import numpy as np
import pytest
import soundfile as sf

SR = 22050


def song(seconds: float) -> np.ndarray:
    """C, Am, F, G (2 s each, with a bass note), 30 cents sharp so that the tuning correction moves the CQT,
    over a little noise."""
    t = np.arange(int(2.0 * SR)) / SR
    sharp = 2 ** (30 / 1200)
    chords = [(48, 60, 64, 67), (45, 57, 60, 64), (41, 53, 57, 60), (43, 55, 59, 62)]
    bars = [
        sum(np.sin(2 * np.pi * 440.0 * 2 ** ((m - 69) / 12) * sharp * t) for m in notes) * np.exp(-t)
        for notes in chords
    ]
    y = np.concatenate(bars * int(np.ceil(seconds / 8.0)))[: int(seconds * SR)]
    return (0.1 * y + 0.003 * np.random.default_rng(0).standard_normal(len(y))).astype(np.float32)


@pytest.mark.parametrize("block_frames", [16, 61, 200])
def test_features_in_blocks_equal_the_whole_recordings(block_frames):
    features = ChordFeatureConfig()
    y = song(25.0)  # 270 frames: within one default block, so computed whole
    whole = features.compute(y)
    blocks = features.compute(y, block_frames=block_frames)
    assert blocks.shape == whole.shape == (features.feature_rows, 1 + len(y) // features.hop_length)
    # The CQTs agree to float32 rounding (about 1e-7 of their largest values); log(1 + 100 |CQT|) turns that
    # into up to about 5e-5 at quiet bins, where its slope is near 100. Too little context (the lowest
    # octave's half frame alone) is off by 2e-3.
    np.testing.assert_allclose(blocks, whole, rtol=0, atol=1e-4)


def test_predictions_from_features_in_blocks_are_the_whole_recordings(tmp_path, monkeypatch):
    path = tmp_path / "song.wav"
    sf.write(path, song(25.0), SR)
    mx.random.seed(0)  # the same weights whatever tests ran before
    model = ChordRecognitionModel(ChordModelConfig(d_model=32, n_layers=1, n_heads=2, ff_dim=64, dropout=0.0))
    predictor = ChordPredictor(model, ChordFeatureConfig(), window_frames=32)
    whole = predictor.posteriors(path)
    whole_segments = predictor.segments(whole)
    monkeypatch.setattr(chord_config, "FEATURE_BLOCK_FRAMES", 40)  # what `predict` computes with
    blocks = predictor.posteriors(path)
    for key, probs in whole.probs.items():
        np.testing.assert_allclose(blocks.probs[key], probs, rtol=0, atol=1e-4)
    segments = predictor.segments(blocks)
    assert [s.label for s in segments] == [s.label for s in whole_segments]
    # Boundaries are placed between frames by the posteriors (`refine_boundaries`): they agree to well under
    # a millisecond, not to every bit.
    starts = np.array([[s.start, s.end] for s in segments])
    np.testing.assert_allclose(starts, [[s.start, s.end] for s in whole_segments], rtol=0, atol=1e-4)
