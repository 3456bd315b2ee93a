"""Tuning estimation and correction: a detuned recording's features land on the same bins as an in-tune one."""

from dataclasses import asdict

from audiotrain.features.cqt import cqt_frequencies
from audiotrain.features.tuning import estimate_tuning
from audiotrain.recipes.chords.config import ChordFeatureConfig, older_record_meanings

import numpy as np
import pytest

SR = 22050


def _chord(cents: float, seconds: float = 3.0, hum_hz: float | None = None) -> np.ndarray:
    """A C major triad (C3 E3 G3 + C4) of harmonic tones, every note `cents` off A440."""
    t = np.arange(int(seconds * SR)) / SR
    y = np.zeros_like(t)
    for midi in (48, 52, 55, 60):
        f0 = 440.0 * 2 ** ((midi - 69 + cents / 100) / 12)
        for k in range(1, 6):
            y += np.sin(2 * np.pi * k * f0 * t) / k
    if hum_hz:
        y += 3.0 * np.sin(2 * np.pi * hum_hz * t)  # loud mains hum, off the grid
    return (0.1 * y).astype(np.float32)


def _magnitude(features: ChordFeatureConfig, y: np.ndarray):
    cqt = features.cqt_config()
    magnitude = np.asarray(cqt.compute(y, backend="numpy"))
    return magnitude, cqt_frequencies(cqt.total_bins, cqt.computed_fmin, cqt.bins_per_octave)


@pytest.mark.parametrize("cents", [-45.0, -20.0, 0.0, 12.0, 33.0, 48.0])
def test_estimate_tuning_finds_the_offset_in_bins(cents):
    features = ChordFeatureConfig(tuning_correction=False)
    magnitude, frequencies = _magnitude(features, _chord(cents))
    offset = estimate_tuning(magnitude, features.bins_per_octave, frequencies)
    # 36 bins per octave: a bin is 33.3 cents. Within 5 cents of the truth.
    assert offset * 100 / 3 == pytest.approx(cents, abs=5.0)


def test_estimate_tuning_ignores_hum_and_silence():
    features = ChordFeatureConfig(tuning_correction=False)
    magnitude, frequencies = _magnitude(features, _chord(20.0, hum_hz=60.0))
    assert estimate_tuning(magnitude, 36, frequencies) * 100 / 3 == pytest.approx(20.0, abs=5.0)
    # with the hum counted (min_hz below 60 Hz), a hum 49 cents flat of B1 pulls the estimate away
    assert abs(estimate_tuning(magnitude, 36, frequencies, min_hz=40.0) * 100 / 3 - 20.0) > 5.0
    assert estimate_tuning(np.zeros_like(magnitude), 36, frequencies) == 0.0
    noise = np.random.default_rng(0).standard_normal(3 * SR).astype(np.float32)
    assert estimate_tuning(_magnitude(features, noise)[0], 36, frequencies) == 0.0  # no grid: left as it is
    assert estimate_tuning(magnitude, 12, frequencies) == 0.0  # one bin per semitone: no estimate


@pytest.mark.parametrize("bins_per_octave", [12, 24])
def test_tuning_correction_under_three_bins_per_semitone_is_refused(bins_per_octave):
    # At 2 bins per semitone the period-2 coefficient is real: a +40-cent triad read as 0 (or 50) cents.
    with pytest.raises(ValueError) as refused:
        ChordFeatureConfig(bins_per_octave=bins_per_octave, n_bins=3 * bins_per_octave)
    message = str(refused.value)
    assert "--features.tuning_correction" in message and "--features.bins_per_octave" in message
    assert "at least 36" in message and f"got {bins_per_octave}" in message
    features = ChordFeatureConfig(
        bins_per_octave=bins_per_octave, n_bins=3 * bins_per_octave, bass_view_bins=0, tuning_correction=False
    )
    magnitude, frequencies = _magnitude(features, _chord(40.0))
    assert estimate_tuning(magnitude, bins_per_octave, frequencies) == 0.0  # never a guess of half a semitone
    # Nor for energy on every second bin, whose period-2 coefficient has phase pi: a whole bin of offset read.
    every_second_bin = (np.arange(len(frequencies)) % 2 == 1)[:, None] * np.ones((1, 5))
    assert estimate_tuning(every_second_bin, bins_per_octave, frequencies, min_hz=0.0) == 0.0


def test_the_features_estimate_tuning_from_the_bins_they_compute(monkeypatch):
    """The CQT starts `spare_bins` under fmin. Labelled from fmin, every bin would sit half an octave too high
    and the 120 Hz hum cut-off at 85 Hz: 100 Hz hum and the low end of kick drums would pull the estimate."""
    from audiotrain.recipes.chords import config as chord_config

    given = []

    def spy(magnitude, bins_per_octave, frequencies, *args, **kwargs):
        given.append((len(magnitude), np.asarray(frequencies)))
        return estimate_tuning(magnitude, bins_per_octave, frequencies, *args, **kwargs)

    monkeypatch.setattr(chord_config, "estimate_tuning", spy)
    features = ChordFeatureConfig(bass_view_bins=0)
    features.compute(_chord(20.0, seconds=1.0))
    cqt = features.cqt_config()
    [(bins, frequencies)] = given
    np.testing.assert_allclose(frequencies, cqt_frequencies(bins, cqt.computed_fmin, cqt.bins_per_octave))
    assert bins == cqt.total_bins and frequencies[cqt.spare_bins_below] == pytest.approx(features.fmin)


def test_features_of_a_detuned_recording_match_the_in_tune_one():
    corrected, plain = ChordFeatureConfig(), ChordFeatureConfig(tuning_correction=False)
    in_tune = plain.compute(_chord(0.0))
    sharp = _chord(40.0)  # 1.2 bins sharp: nearer the next bin than its own
    error_plain = np.abs(plain.compute(sharp) - in_tune).mean()
    error_corrected = np.abs(corrected.compute(sharp) - in_tune).mean()
    assert error_corrected < 0.2 * error_plain  # what is left: the estimate's error of a few cents
    # the strongest bins are the same ones
    top = np.argsort(in_tune.mean(axis=1))[-8:]
    assert set(np.argsort(corrected.compute(sharp).mean(axis=1))[-8:]) == set(top)


def test_tuning_correction_changes_the_feature_cache_key():
    assert ChordFeatureConfig().key() != ChordFeatureConfig(tuning_correction=False).key()


def test_settings_stored_before_tuning_correction_are_read_without_it():
    """A checkpoint or run record written before tuning correction existed has no such key: its model was
    trained on uncorrected features, and predict or a replay must compute them so (not today's default)."""
    stored = {k: v for k, v in asdict(ChordFeatureConfig()).items() if k != "tuning_correction"}
    assert ChordFeatureConfig.from_stored(stored).tuning_correction is False
    assert ChordFeatureConfig.from_stored(asdict(ChordFeatureConfig())).tuning_correction is True
    assert older_record_meanings()["features.tuning_correction"] is False


def test_cqt_at_a_tuning_equals_the_cqt_of_the_retuned_audio():
    # Moving the bins by t bins up measures what a recording t bins sharp puts on them.
    features = ChordFeatureConfig(tuning_correction=False)
    cqt = features.cqt_config()
    sharp = np.asarray(cqt.compute(_chord(20.0), backend="numpy"))
    moved = np.asarray(cqt.compute(_chord(20.0), backend="numpy", tuning=0.6))  # 20 cents = 0.6 bins
    in_tune = np.asarray(cqt.compute(_chord(0.0), backend="numpy"))

    def error(x):  # frames away from the ends, where the zero padding meets filters of other lengths
        return np.abs(x - in_tune)[:, 8:-8].mean() / in_tune.mean()

    assert error(moved) < 0.03 and error(sharp) > 0.3


def test_each_recording_of_a_batch_is_corrected_on_its_own():
    features = ChordFeatureConfig()
    recordings = [_chord(0.0), _chord(30.0), _chord(-45.0)]
    batch = features.compute(np.stack(recordings))
    assert batch.shape[0] == 3
    for one, recording in zip(batch, recordings):
        # Not bit-equal: numpy's FFT may round a batch and a single transform differently (seen with numpy
        # 2.4.6: 1.5e-4 at most); a recording corrected with another clip's tuning is off by far more.
        np.testing.assert_allclose(one, features.compute(recording), rtol=0, atol=1e-3)
