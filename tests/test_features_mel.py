"""STFT, mel filterbank, (log-)mel spectrogram and MelConfig against librosa, in MLX and numpy."""

import sys

from audiotrain.features import MelConfig, mel_filterbank, melspectrogram, power_to_db, spectrogram, stft
from audiotrain.features.signals import signal_set

import librosa
import mlx.core as mx
import numpy as np
import pytest

SR = 22050
SIGNALS = signal_set(SR, 2.0)


def rel_err(ours, ref) -> float:
    """max |ours - ref| / max |ref|: the error relative to the signal's peak (0 when both are silent)."""
    ours, ref = np.asarray(ours).astype(np.complex128), np.asarray(ref).astype(np.complex128)
    scale = np.abs(ref).max()
    err = np.abs(ours - ref).max()
    return err / scale if scale > 0 else err


@pytest.mark.parametrize("htk,norm", [(False, "slaney"), (True, None), (False, None), (True, "slaney")])
def test_filterbank_equals_librosa_bit_for_bit(htk, norm):
    ours = mel_filterbank(SR, 2048, 128, fmin=30.0, fmax=8000.0, htk=htk, norm=norm)
    ref = librosa.filters.mel(sr=SR, n_fft=2048, n_mels=128, fmin=30.0, fmax=8000.0, htk=htk, norm=norm)
    np.testing.assert_array_equal(ours, ref)
    assert not ours.flags.writeable  # cached: callers must not modify it in place
    # the defaults (128 mels up to Nyquist) too: melspectrogram passes its own fmax, so only this tests it
    np.testing.assert_array_equal(mel_filterbank(SR, 2048), librosa.filters.mel(sr=SR, n_fft=2048))


SETTINGS = [
    {},  # librosa's defaults: n_fft 2048, hop 512, 128 Slaney mels, zero ("constant") padding
    {"n_fft": 1024, "hop_length": 480, "n_mels": 64, "fmin": 50.0, "fmax": 14000.0, "pad_mode": "reflect"},
    {
        "n_fft": 512,
        "hop_length": 128,
        "win_length": 400,
        "n_mels": 40,
        "htk": True,
        "norm": None,
        "power": 1.0,
    },
]


@pytest.fixture(scope="module")
def references():
    refs = {}
    for i, settings in enumerate(SETTINGS):
        for name, y in SIGNALS.items():
            mel = librosa.feature.melspectrogram(y=y, sr=SR, **settings)
            refs[i, name] = (mel, librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=80.0))
    return refs


@pytest.mark.parametrize("backend", ["mlx", "numpy"])
@pytest.mark.parametrize("index", range(len(SETTINGS)))
def test_mel_and_log_mel_match_librosa(references, backend, index):
    for name, y in SIGNALS.items():
        mel = melspectrogram(y, sr=SR, backend=backend, **SETTINGS[index])
        assert isinstance(mel, mx.array if backend == "mlx" else np.ndarray)
        ref_mel, ref_db = references[index, name]
        assert mel.shape == ref_mel.shape
        assert rel_err(mel, ref_mel) <= 1e-5, name
        db = np.asarray(power_to_db(mel, ref=1.0, amin=1e-10, top_db=80.0))
        if backend == "numpy":  # float64 FFT, like librosa
            assert rel_err(db, ref_db) <= 1e-5, name
        else:
            # MLX's FFT is float32: its rounding noise (~-130 dB of a frame's energy) shows in bins more
            # than 70 dB (of power) below the peak. Above that: within 1e-5; down to 80 dB: within 2e-3 dB.
            db_per_power_db = SETTINGS[index].get("power", 2.0) / 2
            loud = ref_db >= ref_db.max() - 70.0 * db_per_power_db
            assert rel_err(np.where(loud, db, ref_db), ref_db) <= 1e-5, name
            kept = ref_db >= ref_db.max() - 80.0 * db_per_power_db
            assert np.abs(np.where(kept, db - ref_db, 0.0)).max() <= 2e-3, name


def test_batched_mel_equals_clip_by_clip():
    batch = np.stack([SIGNALS["chord"], SIGNALS["chirp"], SIGNALS["mix"]])
    mel = np.asarray(melspectrogram(mx.array(batch), sr=SR))
    assert mel.shape[0] == 3
    for i in range(3):
        np.testing.assert_allclose(mel[i], np.asarray(melspectrogram(batch[i], sr=SR)), rtol=1e-5, atol=1e-6)
    nested = np.asarray(melspectrogram(batch.reshape(3, 1, -1), sr=SR, backend="numpy"))
    assert nested.shape == (3, 1, *mel.shape[1:])


@pytest.mark.parametrize("backend", ["mlx", "numpy"])
@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_stft_matches_librosa(backend, pad_mode):
    y = SIGNALS["mix"]
    ref = librosa.stft(y, n_fft=1024, hop_length=256, pad_mode=pad_mode)
    ours = np.asarray(stft(y, n_fft=1024, hop_length=256, pad_mode=pad_mode, backend=backend))
    assert ours.shape == ref.shape and np.iscomplexobj(ours)
    assert rel_err(ours, ref) <= 1e-5
    power = np.asarray(spectrogram(y, n_fft=1024, hop_length=256, pad_mode=pad_mode, backend=backend))
    assert rel_err(power, np.abs(ref) ** 2) <= 1e-5


STFT_SETTINGS = {
    "default hop": {"n_fft": 1024},  # hop_length left out: win_length // 4 (win_length: n_fft)
    "uncentred": {"n_fft": 1024, "hop_length": 256, "center": False},
    "win_length": {"n_fft": 512, "hop_length": 128, "win_length": 400},
    "win_length, default hop": {"n_fft": 512, "win_length": 400},  # librosa's hop: win_length // 4
    # an odd n_fft - win_length: the window's left pad rounds down
    "odd win_length": {"n_fft": 512, "hop_length": 128, "win_length": 401},
    "array window": {"n_fft": 512, "hop_length": 128, "win_length": 400, "window": np.hamming(400)},
    "odd n_fft": {"n_fft": 401, "hop_length": 100},  # n_fft // 2 padding: 441 frames of 44100 samples
}


@pytest.mark.parametrize("backend", ["mlx", "numpy"])
@pytest.mark.parametrize("name", STFT_SETTINGS)
def test_stft_and_spectrogram_settings_match_librosa(backend, name):
    """Only n_fft, hop_length and pad_mode were compared: a default hop, center=False, a win_length, an array
    window or an odd size could have been ignored or framed apart from librosa with the suite green."""
    y, settings = SIGNALS["mix"], STFT_SETTINGS[name]
    ref = librosa.stft(y, **settings)
    ours = stft(y, backend=backend, **settings)
    assert ours.shape == ref.shape
    assert rel_err(ours, ref) <= 1e-5
    # spectrogram's own power and centring: power=1 is the magnitude
    magnitude = spectrogram(y, power=1.0, backend=backend, **settings)
    assert magnitude.shape == ref.shape
    assert rel_err(magnitude, np.abs(ref)) <= 1e-5
    if backend == "numpy":  # complex64 for float32 samples, as documented
        assert ours.dtype == np.complex64


def test_frame_counts_of_odd_sizes_and_a_clip_of_exactly_one_frame():
    """MelConfig.n_frames sizes labels and caches: it must be the frame count the features have."""
    config = MelConfig(sr=SR, n_fft=401, hop_length=100, n_mels=20)
    assert config.n_frames(44100) == librosa.stft(SIGNALS["mix"], n_fft=401, hop_length=100).shape[-1] == 441
    assert np.asarray(config.compute(SIGNALS["mix"])).shape == (20, 441)
    # a clip of exactly n_fft samples, uncentred, is one frame (as in librosa), not "shorter than n_fft"
    for backend in ("mlx", "numpy"):
        assert stft(SIGNALS["mix"][:512], n_fft=512, center=False, backend=backend).shape == (257, 1)


@pytest.mark.parametrize("n_fft", [np.int64(256), 256.0], ids=["numpy-int", "whole-float"])
def test_an_n_fft_given_as_a_numpy_integer_or_a_whole_float_computes_as_an_int(n_fft):
    """A multi-resolution loop over ``np.array([256, 512])`` failed with "RuntimeError: std::bad_cast", and
    ``n_fft=256.0`` (a config's number) with MLX's raw "pad(): incompatible function arguments"."""
    y = SIGNALS["mix"][:4000]
    for backend in ("mlx", "numpy"):
        np.testing.assert_array_equal(
            np.asarray(stft(y, n_fft=n_fft, backend=backend)), np.asarray(stft(y, n_fft=256, backend=backend))
        )
        np.testing.assert_array_equal(
            np.asarray(melspectrogram(y, sr=SR, n_fft=n_fft, n_mels=20, backend=backend)),
            np.asarray(melspectrogram(y, sr=SR, n_fft=256, n_mels=20, backend=backend)),
        )
    traced = mx.compile(lambda y: spectrogram(y, n_fft=n_fft, hop_length=64))(mx.array(y))
    np.testing.assert_allclose(
        np.asarray(traced), np.asarray(spectrogram(y, n_fft=256, hop_length=64)), rtol=1e-5
    )


def test_numpy_backend_keeps_float64():
    mel = melspectrogram(SIGNALS["chord"].astype(np.float64), sr=SR, backend="numpy")
    assert mel.dtype == np.float64


def test_power_to_db_per_example_and_callable_ref():
    quiet = np.full((4, 5), 1e-6)
    loud = np.full((4, 5), 1.0)
    loud[0, 0] = 1e-12
    batch = np.stack([quiet, loud])
    # librosa's rule before 1.0: top_db is measured from the peak of the whole array (librosa 1.0, for
    # Python >= 3.12, measures each channel by default; `axes=None` keeps the whole-array rule there)...
    whole = {"axes": None} if int(librosa.__version__.split(".")[0]) >= 1 else {}
    np.testing.assert_allclose(
        power_to_db(batch, top_db=40.0), librosa.power_to_db(batch, top_db=40.0, **whole)
    )
    # ...per example, a quiet clip keeps its own level.
    per_example = power_to_db(batch, top_db=40.0, axis=(-2, -1))
    np.testing.assert_allclose(per_example[0], -60.0)
    assert per_example[1, 0, 0] == pytest.approx(-40.0)
    np.testing.assert_allclose(power_to_db(loud, ref=np.max), librosa.power_to_db(loud, ref=np.max, **whole))
    # a callable ref over (-2, -1) keeps its axes: each example's peak is its own 0 dB, also when the batch
    # size equals the frame count (where a [B] reference would broadcast along the frames without an error)
    peaks = np.random.default_rng(0).uniform(0.1, 10.0, size=(3, 4, 3))
    np.testing.assert_allclose(
        power_to_db(peaks, ref=np.max, axis=(-2, -1), top_db=None).max(axis=(-2, -1)), 0.0, atol=1e-12
    )
    # a number as ref is taken as librosa takes it: its magnitude, floored at amin
    for ref in (0.0, -1.0, 1e-3):
        np.testing.assert_allclose(power_to_db(loud, ref=ref), librosa.power_to_db(loud, ref=ref, **whole))
    as_mlx = power_to_db(mx.array(batch.astype(np.float32)), top_db=40.0, axis=(-2, -1))
    assert isinstance(as_mlx, mx.array)
    np.testing.assert_allclose(np.asarray(as_mlx), per_example, rtol=1e-5)
    with pytest.raises(ValueError, match="amin"):
        power_to_db(batch, amin=0.0)
    with pytest.raises(TypeError, match=r"real.*np.abs\(S\) \*\* 2"):
        power_to_db(np.ones(3, dtype=np.complex64))


def test_power_to_db_takes_numpy_reductions_as_ref_on_an_mlx_array():
    """`power_to_db(melspectrogram(y), ref=np.max)`, librosa's idiom on the default (MLX) output, raised a
    TypeError from inside numpy."""
    mel = melspectrogram(np.random.default_rng(0).normal(size=4000).astype(np.float32), sr=16000)
    assert isinstance(mel, mx.array)
    power = np.asarray(mel)
    whole = {"axes": None} if int(librosa.__version__.split(".")[0]) >= 1 else {}
    for ref in (np.max, np.amax, np.min, np.amin, np.mean, np.median):
        db = power_to_db(mel, ref=ref)
        assert isinstance(db, mx.array)
        np.testing.assert_allclose(np.asarray(db), librosa.power_to_db(power, ref=ref, **whole), atol=1e-3)
    per_column = power_to_db(mel, ref=np.max, axis=0, top_db=None)
    np.testing.assert_allclose(np.asarray(per_column).max(axis=0), 0.0, atol=1e-4)


def test_power_to_db_refuses_a_complex_stft_on_both_backends():
    """The numpy path refused a complex STFT; the MLX one (stft's default) returned complex "dB"."""
    y = np.random.default_rng(0).normal(size=4000).astype(np.float32)
    for backend, hint in (("numpy", "np.abs"), ("mlx", "mx.abs")):
        with pytest.raises(TypeError, match=rf"expects power \(real\) values, got a complex array.*{hint}"):
            power_to_db(stft(y, n_fft=512, backend=backend))


def test_mel_config_key_dict_and_compute():
    config = MelConfig(sr=16000, n_fft=1024, hop_length=160, n_mels=80, log=True, top_db=80.0)
    assert config.frame_rate == 100.0
    assert config.key() == MelConfig.from_dict(config.to_dict()).key()
    assert config.key() != MelConfig(sr=16000, n_fft=1024, hop_length=160, n_mels=64, log=True).key()
    assert config.to_dict()["kind"] == "mel"
    y = np.stack([SIGNALS["chord"][:16000], 1e-3 * SIGNALS["noise"][:16000]])
    features = np.asarray(config.compute(y))
    assert features.shape == (2, 80, config.n_frames(16000))
    raw = np.asarray(melspectrogram(y, sr=16000, n_fft=1024, hop_length=160, n_mels=80))
    np.testing.assert_allclose(features[1], power_to_db(raw[1], top_db=80.0), atol=1e-3)
    # its own top_db and amin, not power_to_db's defaults: a 40 dB range, and silence at 10 log10(1e-3)
    quiet = MelConfig(sr=16000, n_fft=1024, hop_length=160, n_mels=80, log=True, top_db=40.0, amin=1e-3)
    y = np.stack([SIGNALS["chord"][:16000], SIGNALS["silence"][:16000]])
    features = np.asarray(quiet.compute(y))
    raw = np.asarray(melspectrogram(y, sr=16000, n_fft=1024, hop_length=160, n_mels=80))
    np.testing.assert_allclose(features, power_to_db(raw, amin=1e-3, top_db=40.0, axis=(-2, -1)), atol=1e-3)
    assert features[0].max() - features[0].min() == pytest.approx(40.0, abs=1e-3)
    np.testing.assert_allclose(features[1], -30.0, atol=1e-3)
    # without centring, the frame count config.n_frames promises (to size labels and caches) is what it gives
    uncentred = MelConfig(sr=16000, n_fft=1024, hop_length=160, n_mels=80, center=False)
    frames = np.asarray(uncentred.compute(y)).shape[-1]
    assert frames == uncentred.n_frames(16000) == 1 + (16000 - 1024) // 160


def test_mel_config_frame_rate_and_power():
    """A frame rate rounded to whole frames per second would put labels 0.15% apart per frame at
    22050 / 512, and compute() could have dropped `power` (the settings it keeps back are listed by name)."""
    assert MelConfig().frame_rate == pytest.approx(22050 / 512)
    config = MelConfig(sr=16000, n_fft=1024, hop_length=160, n_mels=40, power=1.0)
    y = SIGNALS["chord"][:16000]
    magnitude = melspectrogram(y, sr=16000, n_fft=1024, hop_length=160, n_mels=40, power=1.0)
    np.testing.assert_allclose(np.asarray(config.compute(y)), np.asarray(magnitude), rtol=1e-6)


def test_power_to_db_top_db_zero_flattens_to_the_peak():
    """As librosa: top_db=0 is allowed and clips everything to the peak (not "no clipping")."""
    np.testing.assert_array_equal(power_to_db(np.array([1.0, 0.1]), top_db=0.0), [0.0, 0.0])


def test_mel_filterbank_dtype_and_empty_filter_warning():
    assert mel_filterbank(SR, 512, 10, dtype=np.float64).dtype == np.float64
    with pytest.warns(UserWarning, match="Empty filters detected"):
        mel_filterbank(SR, 512, 256)  # 256 mels over 257 bins: some fall between two bins


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: MelConfig(pad_mode="wrap"), "pad_mode"),
        (lambda: MelConfig(fmin=9000.0, fmax=8000.0), "fmin"),
        (lambda: MelConfig.from_dict({"n_mel": 64}), "unknown MelConfig fields"),
        (lambda: melspectrogram(np.zeros(4096), backend="torch"), "backend"),
        (lambda: melspectrogram(np.zeros(4096), n_fft=1000.5), "n_fft"),
        (lambda: melspectrogram(np.zeros(4096), hop_length=0), "hop_length"),
        (lambda: melspectrogram(np.zeros(100), n_fft=2048, center=False), "shorter than n_fft"),
        (lambda: stft(np.zeros(100), n_fft=2048, pad_mode="reflect", backend="numpy"), "reflect"),
        (lambda: stft(np.zeros(100), n_fft=2048, pad_mode="reflect", backend="mlx"), "reflect"),
        (lambda: melspectrogram(np.zeros(0)), r"y holds no samples \(shape \(0,\)\)"),
        (lambda: melspectrogram(np.zeros(4096), n_fft=0), "n_fft must be an integer >= 2, got 0"),
        (lambda: melspectrogram(np.zeros(4096), 0), "sr must be a positive sampling rate in Hz, got 0"),
        (lambda: melspectrogram(np.zeros(4096), sr="16000"), "sr must be a positive .* got '16000'"),
        (lambda: mel_filterbank(-16000, 512), "sr must be a positive"),
        (
            lambda: stft(np.zeros(4096), n_fft=512, win_length=0),
            r"win_length must be in \[1, n_fft=512\], got 0",
        ),
        (lambda: stft(np.zeros(4096), n_fft=512, win_length=400, window=np.ones(300)), r"shape \(400,\)"),
        (lambda: stft(np.zeros(4096), n_fft=1), "n_fft must be an integer >= 2, got 1"),
        (lambda: stft(np.zeros(4096), n_fft=512, hop_length=2.5), "hop_length must be a positive integer"),
        (lambda: stft(np.zeros(4096), pad_mode="wrap", backend="numpy"), "pad_mode must be one of"),
        (lambda: melspectrogram(np.zeros(4096), pad_mode="wrap"), "pad_mode must be one of"),
        (lambda: spectrogram(np.zeros(4096), power=0), "power must be positive and finite .*, got 0"),
        (
            lambda: spectrogram(np.ones(4096), power=float("nan")),
            "power must be positive and finite .*, got nan",
        ),
        (lambda: melspectrogram(np.ones(4096), power=float("inf")), "power must be .*, got inf"),
        (lambda: melspectrogram(np.zeros(100), pad_mode="reflect"), "reflect padding needs more than 1024"),
        (lambda: spectrogram(np.zeros(100), pad_mode="reflect"), "reflect padding needs more than 1024"),
        (lambda: stft(np.zeros(1024), pad_mode="reflect", backend="numpy"), "reflect padding needs more"),
        (lambda: mel_filterbank(SR, 512, 10, norm="l1"), "norm must be 'slaney' or None"),
        (lambda: mel_filterbank(SR, 512, 10, fmin=1000.0, fmax=1000.0), "fmin < fmax"),
        (lambda: mel_filterbank(SR, 512, 10, fmin=-10.0), "0 <= fmin"),
        (lambda: mel_filterbank(SR, 512, 0), "n_mels must be >= 1, got 0"),
        (lambda: power_to_db(np.ones(3), top_db=-1.0), "top_db must be non-negative"),
        (lambda: MelConfig(hop_length=0), "MelConfig needs .* hop_length >= 1"),
        (lambda: MelConfig(n_fft=1), "MelConfig needs n_fft >= 2"),
    ],
)
def test_user_errors_are_explained(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("backend", ["mlx", "numpy"])
@pytest.mark.parametrize("wrap", [np.asarray, mx.array])
def test_nan_inf_and_integer_samples_are_refused_naming_y(backend, wrap):
    """As librosa: one NaN would spread over frames, and int16 PCM would give features 32768 times too
    large."""
    y = np.zeros(4096, np.float32)
    y[[100, 3000]] = [np.nan, np.inf]
    for feature in (melspectrogram, stft, spectrogram):
        with pytest.raises(
            ValueError, match=r"y holds 2 non-finite samples \(NaN or Inf; the first at index 100\)"
        ):
            feature(wrap(y), backend=backend)
        with pytest.raises(
            TypeError, match=r"y holds integer samples .*scale to \[-1, 1\] first, e.g. y / 32768"
        ):
            feature(wrap(np.zeros(4096, np.int16)), backend=backend)


def test_channels_last_stereo_is_refused_with_a_hint_and_batches_still_work():
    """soundfile.read returns stereo as [samples, 2]; read as [..., samples] it gave 44100 clips of 2
    samples."""
    stereo = np.zeros((44100, 2), np.float32)
    with pytest.raises(
        ValueError, match=r"last axis has 2 samples: channels-last audio\? .*pass y.T or a mono mix"
    ):
        melspectrogram(stereo)
    assert np.asarray(melspectrogram(stereo.T)).shape == (2, 128, 87)  # channels first: a batch of two
    assert np.asarray(melspectrogram(np.zeros((3, 8)), n_fft=4, hop_length=2, n_mels=2)).shape == (3, 2, 5)


@pytest.mark.parametrize("shape", [(1024, 8), (1024, 2), (2048, 3, 1)], ids=str)
def test_channels_last_is_refused_from_8_channels_of_1024_frames(shape):
    """The hint's bounds: up to 8 channels (7.1 audio) after at least 1024 frames (a real clip is longer)."""
    with pytest.raises(ValueError, match=rf"last axis has {shape[-1]} samples: channels-last audio\?"):
        melspectrogram(np.full(shape, 0.1, np.float32), n_fft=4, hop_length=2, n_mels=2)


def test_complex_input_is_rejected():
    with pytest.raises(TypeError, match="real"):
        melspectrogram(np.ones(4096, dtype=np.complex64))


@pytest.mark.parametrize("backend", ["mlx", "mlx-products", "numpy"])
def test_block_processing_does_not_change_results(monkeypatch, backend):
    stft_module = sys.modules["audiotrain.features.stft"]  # the package attribute `stft` is the function
    if backend == "mlx-products":  # the filterbank product in MLX, as on a GPU
        monkeypatch.setattr(stft_module, "_project_on_host", lambda: False)
        backend = "mlx"
    batch = np.stack([SIGNALS["chord"], SIGNALS["chirp"], SIGNALS["mix"]])
    whole = np.asarray(melspectrogram(batch, sr=SR, backend=backend))
    for frames_per_block in (7, 40, 100):  # splits in time, then several clips per block
        monkeypatch.setattr(stft_module, "CHUNK_FRAMES", frames_per_block)
        blocked = np.asarray(melspectrogram(batch, sr=SR, backend=backend))
        np.testing.assert_allclose(blocked, whole, rtol=1e-5, atol=1e-7 * whole.max())  # BLAS rounding only


@pytest.mark.parametrize(
    "window",
    [("kaiser", 8.0), ("gaussian", 400.0), 8.0, np.hamming],
    ids=["tuple", "tuple2", "beta", "callable"],
)
@pytest.mark.parametrize("backend", ["mlx", "numpy"])
def test_windows_given_as_librosa_takes_them_match_librosa(window, backend):
    """librosa (through scipy.signal.get_window) takes a window as a (name, parameter) tuple, a Kaiser
    beta or a function of the length; each stopped stft and melspectrogram with "could not convert string
    to float: 'kaiser'" or a float() TypeError, naming neither the window nor what it takes."""
    y = SIGNALS["chord"]
    ref = librosa.feature.melspectrogram(y=y, sr=SR, window=window)
    assert rel_err(melspectrogram(y, sr=SR, window=window, backend=backend), ref) <= 1e-5
    ref = librosa.stft(y, n_fft=1024, win_length=800, window=window)
    assert rel_err(stft(y, n_fft=1024, win_length=800, window=window, backend=backend), ref) <= 1e-5


def test_a_mel_config_with_a_parametrised_window_round_trips_through_its_dict():
    """A config file holds a (name, parameter) window as a list: from_dict's config computes as the
    tuple's."""
    config = MelConfig(window=("kaiser", 8.0))
    again = MelConfig.from_dict(config.to_dict())
    assert again.key() == config.key()
    y = SIGNALS["chord"]
    np.testing.assert_array_equal(again.compute(y, backend="numpy"), config.compute(y, backend="numpy"))


def test_a_mel_config_read_back_from_json_equals_itself_and_refuses_windows_it_cannot_record():
    """MelConfig(window=("kaiser", 8.0)) read back from its JSON (a config file, a checkpoint) held a list:
    a config unequal to the one written and unhashable. A window function or the samples, which the Window
    type offered MelConfig, computed but stopped key() and to_dict()'s JSON with "Object of type function is
    not JSON serializable": the key names its feature cache. Both are refused where the config is made."""
    import json

    config = MelConfig(window=("kaiser", 8.0))
    again = MelConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and hash(again) == hash(config) and again.key() == config.key()
    beta, same_beta = MelConfig(window=8), MelConfig(window=8.0)
    assert beta == same_beta and beta.key() == same_beta.key()
    for window, named in ((np.hamming, "function"), (np.hamming(2048), "ndarray")):
        expected = rf"MelConfig.window .*got {named}.*melspectrogram\(window="
        with pytest.raises(ValueError, match=expected) as error:
            MelConfig(window=window)
        assert "key" in str(error.value)


def test_a_window_parameter_given_as_a_list_computes_as_librosas_and_its_mel_config_hashes():
    """scipy's ("general_cosine", [0.5, 0.5]), which librosa takes, stopped get_window's cache with a bare
    "unhashable type: 'list'" (and its MelConfig's hash with the same)."""
    from audiotrain.features.stft import get_window

    window = ("general_cosine", [0.5, 0.5])
    np.testing.assert_allclose(get_window(window, 16), librosa.filters.get_window(window, 16))
    import json

    config = MelConfig(window=window)
    again = MelConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and hash(again) == hash(config) and again.key() == config.key()


@pytest.mark.parametrize("ref", [1.0, 2.0, np.max], ids=["ref=1", "ref=2", "ref=np.max"])
def test_power_to_db_keeps_a_float32_spectrogram_float32_as_librosa(ref):
    """`power_to_db(melspectrogram(y, backend="numpy"))`, the float32 mel the docstring promises, came back
    float64 (twice the memory, a dtype librosa's in-place subtraction never gives) for a number `ref`."""
    mel = melspectrogram(np.random.default_rng(0).standard_normal(4096).astype(np.float32), backend="numpy")
    db = power_to_db(mel, ref=ref)
    assert db.dtype == librosa.power_to_db(mel, ref=ref).dtype == np.float32
    np.testing.assert_allclose(db, librosa.power_to_db(mel, ref=ref), atol=1e-4)


@pytest.mark.parity
@pytest.mark.parametrize("power", [2.0, 1.0])
@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_mel_gradient_through_the_traced_front_end_equals_torch_autograd(power, pad_mode):
    """The gradient a model-side mel front end passes back to the audio (mx.grad, eager and compiled) is
    torch.stft's through librosa's filterbank, to float32 rounding: the tests above check values only."""
    from reference import require

    torch = require("torch")
    rng = np.random.default_rng(0)
    sr, n_fft, hop, n_mels = 8000, 256, 64, 20
    y = (0.1 * rng.standard_normal(2048)).astype(np.float32)
    upstream = rng.standard_normal((n_mels, 1 + len(y) // hop)).astype(np.float32)

    def ours(clip):
        mel = melspectrogram(
            clip, sr=sr, n_fft=n_fft, hop_length=hop, n_mels=n_mels, power=power, pad_mode=pad_mode
        )
        return mx.sum(mel * mx.array(upstream))

    clip = torch.tensor(y, dtype=torch.float64, requires_grad=True)
    window = torch.tensor(librosa.filters.get_window("hann", n_fft, fftbins=True))
    spectrum = torch.stft(
        clip, n_fft, hop, window=window, center=True, pad_mode=pad_mode, return_complex=True
    )
    bank = torch.tensor(librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels), dtype=torch.float64)
    (torch.tensor(upstream, dtype=torch.float64) * (bank @ spectrum.abs() ** power)).sum().backward()
    want = clip.grad.numpy()
    for grad_fn in (mx.grad(ours), mx.compile(mx.grad(ours))):
        got = np.asarray(grad_fn(mx.array(y)))
        assert rel_err(got, want) <= 1e-5
