"""The chord recipe's features are pinned to `FEATURES_VERSION`, which is part of the feature cache's key.

The cache finds entries by the settings and this version, not by the code: a change to the features that
keeps the version would serve every warm cache's old features after an upgrade (as happened when the tuning
estimate stopped moving noise). So the features of a small fixed signal are pinned here with the version they
belong to: a change fails this test until the version is bumped and the fingerprint renewed.
"""

import importlib

from audiotrain.features.cache import FeatureCache
from audiotrain.recipes.chords import config as chord_config
from audiotrain.recipes.chords.config import FEATURES_VERSION, ChordFeatureConfig

import numpy as np

SR = 22050

#: (FEATURES_VERSION, fingerprint of the default settings' features: see `fingerprint`). Renew with
#: ``python -c "from tests.test_chord_features_version import fingerprint; print(fingerprint())"``
#: after bumping the version.
PINNED = (
    2,
    [
        [-173.5441, -0.0912, -62.8135, 81.1518, 24.1744, 192.9134, 26.2586, -12.996],
        [-203.2561, -199.0084, -592.1297, -127.3574, -78.1654, 335.9553, -339.9247, 181.0168],
    ],
)


def fingerprint() -> list[list[float]]:
    """Features (default settings) of 3 s of a chord played 30 cents sharp (the tuning correction moves it)
    and of 3 s of noise (left in tune), each as eight fixed random weightings of all its values: a change to
    any bin of any frame moves them."""
    t = np.arange(3 * SR) / SR
    sharp = 2 ** (30 / 1200)
    chord = sum(np.sin(2 * np.pi * f * sharp * t) for f in (110.0, 220 * 2 ** (4 / 12), 220 * 2 ** (7 / 12)))
    noise = np.random.default_rng(0).standard_normal(len(t))
    features = ChordFeatureConfig().compute(np.stack([0.2 * chord, 0.1 * noise]).astype(np.float32))
    weights = np.random.default_rng(1).standard_normal((8, *features.shape[1:]))
    return np.einsum("rbt,kbt->rk", features.astype(np.float64), weights).round(4).tolist()


def test_changed_features_have_a_new_version():
    version, pinned = PINNED
    renew = "renew the fingerprint in tests/test_chord_features_version.py"
    assert FEATURES_VERSION == version, (
        f"FEATURES_VERSION is now {FEATURES_VERSION} (pinned: {version}): {renew}"
    )
    # The CQT runs float32 maths whose last bits differ between machines and backends (about 1e-4 on these
    # sums of 13,000 values here); the tolerance is ten times that, and a change to the features moves them
    # by far more (the tuning change that prompted this test moved single values by up to 2.9).
    np.testing.assert_allclose(
        fingerprint(),
        pinned,
        rtol=1e-3,
        atol=5e-2,
        err_msg=f"the chord features changed but FEATURES_VERSION is still {FEATURES_VERSION}: bump it in "
        "audiotrain/recipes/chords/config.py (or a warm feature cache keeps serving the old features) and "
        + renew,
    )


def test_a_cache_filled_by_another_feature_version_is_not_served(tmp_path, monkeypatch):
    song = tmp_path / "song.wav"
    song.write_bytes(b"the cache reads only the file's status")
    FeatureCache(tmp_path / "cache", ChordFeatureConfig()).get_or_compute(song, lambda: np.zeros((2, 3)))
    monkeypatch.setattr(chord_config, "FEATURES_VERSION", FEATURES_VERSION + 1)
    upgraded = FeatureCache(tmp_path / "cache", ChordFeatureConfig())
    np.testing.assert_array_equal(upgraded.get_or_compute(song, lambda: np.ones((2, 3))), 1)
    assert (upgraded.hits, upgraded.misses) == (0, 1)


def test_the_hann_window_is_scipys_bit_for_bit_at_every_length_the_features_use(monkeypatch):
    """The CQT's window was ``scipy.signal.get_window("hann", n)``, whose import took half of every chords
    command's start. Its numpy replacement must give the same bits: the pinned fingerprint above is rounded,
    and the cache, whose keys do not change, must not serve features that differ from what it would compute."""
    import scipy.signal

    # (The modules: `audiotrain.features` exports functions of the same names.)
    cqt_module = importlib.import_module("audiotrain.features.cqt")
    stft = importlib.import_module("audiotrain.features.stft")
    lengths = set()

    def recording(length):
        lengths.add(length)
        return stft.hann_window(length)

    monkeypatch.setattr(cqt_module, "hann_window", recording)
    cqt_module._plan.cache_clear()  # (designed again, with `recording`)
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    for features in (ChordFeatureConfig(), ChordFeatureConfig(hop_length=256, bass_view_filter_scale=0.8)):
        features.compute(noise)  # every octave's filters, the tuning's and the bass view's
    cqt_module._plan.cache_clear()
    assert len(lengths) > 50  # (each octave's filter lengths: 197 to 773 samples at the defaults)
    stft_sizes = {400, 512, 1024, 2048, 4096}  # the CLAP and mel n_fft
    for length in sorted(lengths | stft_sizes | set(range(1, 10))):
        expected = scipy.signal.get_window("hann", length, fftbins=True)
        assert stft.hann_window(length).tobytes() == expected.tobytes(), length
    centred = np.pad(scipy.signal.get_window("hann", 6, fftbins=True), (1, 1))  # stft's, padded to n_fft
    assert stft.get_window("hann", 8, win_length=6).tobytes() == centred.tobytes()
