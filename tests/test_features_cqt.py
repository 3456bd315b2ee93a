"""CQT, HCQT, chroma and CQTConfig against librosa, in MLX and numpy."""

from audiotrain.features import C1_HZ, CQTConfig, chroma_cqt, cqt, hcqt
from audiotrain.features.signals import signal_set

import librosa
import mlx.core as mx
import numpy as np
import pytest

SR = 22050
SIGNALS = signal_set(SR, 3.0)

SETTINGS = [
    {},  # librosa's defaults: C1, 84 bins, 12 per octave, hop 512
    # the chord recipe's layout: 36 bins per octave, hop 2048, 7 octaves from a quarter-tone under C1
    {"hop_length": 2048, "fmin": C1_HZ * 2 ** (-18 / 36), "n_bins": 252, "bins_per_octave": 36},
    # a high fmin triggers librosa's early downsampling; filter_scale shortens the filters
    {"hop_length": 256, "fmin": 220.0, "n_bins": 36, "bins_per_octave": 12, "filter_scale": 0.8},
    # n_bins not a whole number of octaves: the bottom octave's kernels are fewer and shorter than the
    # next one's, and must sit centred in the frame as librosa's do
    {"n_bins": 78},
    # the least hop 7 octaves allow (2**6): halved at every octave, the last computed at 1/64 of the rate
    {"hop_length": 64},
    # a hop with no factor of two (100 = 4 x 25): no octave may halve the signal, or the frames collapse
    {"hop_length": 100},
    # the hop's three factors of two, not the cutoff, bound early downsampling here (one before the octaves)
    {"hop_length": 24, "fmin": 220.0, "n_bins": 36},
    # one octave far under Nyquist: the hop's two factors of two bound early downsampling to x4, not x8
    {"hop_length": 12, "fmin": 100.0, "n_bins": 12},
    # a single bin has no neighbours to take its bandwidth from; sparsity 0 keeps every filter coefficient
    {"n_bins": 1, "fmin": 440.0, "sparsity": 0.0},
]


def rel_err(ours, ref) -> float:
    """max |ours - ref| / max |ref| (absolute error when the reference is silent)."""
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    scale = np.abs(ref).max()
    return np.abs(ours - ref).max() / scale if scale > 0 else np.abs(ours - ref).max()


@pytest.fixture(scope="module")
def references():
    return {
        (i, name): np.abs(librosa.cqt(y, sr=SR, **settings))
        for i, settings in enumerate(SETTINGS)
        for name, y in SIGNALS.items()
    }


@pytest.mark.parametrize("backend", ["mlx", "numpy"])
@pytest.mark.parametrize("index", range(len(SETTINGS)))
def test_cqt_magnitude_matches_librosa(references, backend, index):
    for name, y in SIGNALS.items():
        C = cqt(y, sr=SR, backend=backend, **SETTINGS[index])
        assert isinstance(C, mx.array if backend == "mlx" else np.ndarray)
        ref = references[index, name]
        assert C.shape == ref.shape and C.dtype in (mx.float32, np.float32)
        assert rel_err(C, ref) <= 1e-3, name
        if name == "silence":
            assert np.abs(np.asarray(C)).max() == 0.0


def test_batched_cqt_equals_clip_by_clip():
    batch = np.stack([SIGNALS["chord"], SIGNALS["chirp"], SIGNALS["mix"]])
    C = np.asarray(cqt(mx.array(batch), sr=SR))
    assert C.shape == (3, 84, 1 + batch.shape[1] // 512)
    for i in range(3):
        assert rel_err(C[i], cqt(batch[i], sr=SR, backend="numpy")) <= 1e-5


def test_the_gpu_path_frames_in_mlx_and_gives_the_host_paths_numbers(monkeypatch):
    """On a GPU the decimated signals are framed on the device, in blocks of clips; forced here on the CPU
    device (small blocks, so several are joined), it equals the numpy path."""
    import importlib

    cqt_module = importlib.import_module("audiotrain.features.cqt")  # the package re-exports the function

    batch = np.stack([SIGNALS["chord"], SIGNALS["chirp"], SIGNALS["mix"]])
    host = cqt(batch, sr=SR, backend="numpy")
    monkeypatch.setattr(cqt_module, "_products_on_device", lambda: True)
    monkeypatch.setattr(cqt_module, "DEVICE_CHUNK_FRAMES", 200)  # 130 frames a clip: one clip a block
    device = cqt(mx.array(batch), sr=SR)
    assert isinstance(device, mx.array) and device.shape == host.shape
    assert rel_err(np.asarray(device), host) <= 1e-5
    fmin = cqt(batch[0], sr=SR, fmin=55.0, n_bins=60, bins_per_octave=24)  # another plan, one clip
    assert (
        rel_err(
            np.asarray(fmin), cqt(batch[0], sr=SR, fmin=55.0, n_bins=60, bins_per_octave=24, backend="numpy")
        )
        <= 1e-5
    )


def test_octave_products_are_the_same_in_mlx_and_numpy():
    # On a CPU device cqt(backend="mlx") runs these products in numpy; on a GPU in MLX: both agree.
    from audiotrain.features.cqt import _octave_products

    rng = np.random.default_rng(0)
    frames = rng.normal(size=(3, 2 * 11, 40)).astype(np.float32)  # [octaves, clips * frames, rows]
    kernels = rng.normal(size=(3, 40, 2 * 12)).astype(np.float32)
    ours = _octave_products(mx.array(frames), mx.array(kernels), n_frames=11, n_bins=30)
    ref = _octave_products(frames, kernels, n_frames=11, n_bins=30)
    assert isinstance(ours, mx.array) and ours.shape == ref.shape == (2, 30, 11)
    np.testing.assert_allclose(np.asarray(ours), ref, rtol=1e-5, atol=1e-5)


def test_hcqt_stacks_harmonics_as_channels():
    y = SIGNALS["mix"][: SR * 2]
    H = np.asarray(hcqt(y, sr=SR, harmonics=(0.5, 1, 2), n_bins=48, fmin=65.0))
    assert H.shape == (3, 48, 1 + len(y) // 512)
    for channel, h in enumerate((0.5, 1, 2)):  # a sub-harmonic too: the chord recipe's HCQT starts at 0.5
        np.testing.assert_allclose(H[channel], np.asarray(cqt(y, sr=SR, n_bins=48, fmin=65.0 * h)), rtol=1e-6)
    with pytest.raises(ValueError, match="harmonics"):
        hcqt(y, sr=SR, harmonics=(0, 1))


def test_hcqt_works_with_its_own_defaults_and_names_a_harmonic_past_nyquist():
    """hcqt(y) failed with its defaults (84 bins from C1 * 3 pass Nyquist at 22050 Hz), and the error named
    neither the harmonic nor its fmin, and suggested a lower fmin to a user who had given none."""
    y = SIGNALS["mix"][:SR]
    H = np.asarray(hcqt(y, sr=SR))
    assert H.shape == (6, 72, 1 + len(y) // 512)
    np.testing.assert_allclose(H[-1], np.asarray(cqt(y, sr=SR, fmin=5 * C1_HZ, n_bins=72)), rtol=1e-6)
    with pytest.raises(
        ValueError,
        match=r"hcqt: harmonic 3 \(fmin 3 x 32.7 = 98.1 Hz, 84 bins\): its CQT filters reach 12366.2 Hz .*"
        r"Nyquist frequency 11025.0 Hz of sr=22050: keep harmonics up to 2 \(drop 3, 4, 5\), or use "
        r"n_bins <= 73 \(for every harmonic up to 5\), or raise sr",
    ):
        hcqt(y, sr=SR, n_bins=84)
    assert np.asarray(hcqt(y[:4096], sr=SR, n_bins=73)).shape[-2] == 73  # the bound it names holds
    with pytest.raises(ValueError, match=r"hcqt: harmonic 5 .*73 bins.*n_bins <= 72"):
        hcqt(y[:4096], sr=SR, n_bins=73, tuning=0.49)  # a tuning raises every bin: the advice counts it
    with pytest.raises(ValueError, match=r"CQTConfig: harmonic 3 \(fmin 3 x 32.7"):
        CQTConfig(harmonics=(0.5, 1, 2, 3, 4, 5))  # (cqt's 84 bins)
    with pytest.raises(
        ValueError, match=r"CQTConfig \(from its lowest spare bin\).*n_bins \+ spare bins <= "
    ):
        CQTConfig.for_pitch_shift(6, harmonics=(1, 2, 3, 4, 5), n_bins=72)


def test_chroma_matches_librosa_with_zero_tuning():
    y = SIGNALS["chord"]
    ref = librosa.feature.chroma_cqt(y=y, sr=SR, tuning=0.0)
    for backend in ("mlx", "numpy"):
        ours = np.asarray(chroma_cqt(y, sr=SR, backend=backend))
        assert ours.shape == ref.shape
        assert rel_err(ours, ref) <= 1e-3
    # A, C and E (the chord's notes) are the loudest pitch classes.
    assert set(np.argsort(ref.mean(axis=1))[-3:]) == {9, 0, 4}
    silent = np.asarray(chroma_cqt(SIGNALS["silence"], sr=SR))
    assert np.abs(silent).max() == 0.0  # silent frames stay zero rather than dividing by zero


def test_chroma_from_a_cqt_that_starts_on_another_note_than_c_still_has_c_first():
    """With fmin a C (the default) the fold needs no rotation; from A1 its first bin is an A, and the A C E
    chord must still land on pitch classes 9, 0 and 4, as librosa's does."""
    y = SIGNALS["chord"]
    fmin = librosa.note_to_hz("A1")
    ref = librosa.feature.chroma_cqt(y=y, sr=SR, tuning=0.0, fmin=fmin, n_octaves=6)
    for backend in ("mlx", "numpy"):
        ours = np.asarray(chroma_cqt(y, sr=SR, fmin=fmin, n_octaves=6, backend=backend))
        assert rel_err(ours, ref) <= 1e-3
        assert set(np.argsort(ours.mean(axis=1))[-3:]) == {9, 0, 4}


@pytest.mark.parametrize(
    "settings",
    [
        {"norm": 2},
        {"norm": 1},
        {"norm": None},
        {"threshold": 0.3, "norm": None},
        {"tuning": 0.3},
        {"tuning": -0.4},
        # 0.3 semitone flat of C1: its first bin is nearer C than B, so the fold must round, not floor
        {"fmin": C1_HZ * 2 ** (-0.3 / 12)},
        {"n_chroma": 24, "bins_per_octave": 24},
        {"bins_per_octave": 12},
    ],
)
def test_chroma_settings_match_librosa(settings):
    """Only the defaults were compared with librosa: a p-norm without its root, norm=None normalised anyway,
    the threshold or the tuning ignored, or an fmin just flat of a C folded one pitch class off went
    unseen."""
    y = SIGNALS["chord"]
    ref = librosa.feature.chroma_cqt(y=y, sr=SR, **{"tuning": 0.0, **settings})
    ours = chroma_cqt(y, sr=SR, backend="numpy", **settings)
    assert ours.shape == ref.shape
    assert rel_err(ours, ref) <= 1e-3
    if "threshold" in settings:  # (the threshold does zero some values of this signal)
        unthresholded = librosa.feature.chroma_cqt(y=y, sr=SR, tuning=0.0, norm=None)
        assert (ref == 0).sum() > (unthresholded == 0).sum()


@pytest.mark.parametrize("backend", ["mlx", "numpy"])
def test_chroma_of_a_given_cqt_matches_librosa_and_takes_its_type(backend):
    """A precomputed CQT (here 78 bins: not a whole number of octaves, nor n_octaves x bins_per_octave) is
    folded whole, and the result is of C's type whatever `backend` says."""
    C = np.abs(librosa.cqt(SIGNALS["chord"], sr=SR, n_bins=78, bins_per_octave=12)).astype(np.float32)
    ref = librosa.feature.chroma_cqt(C=C, bins_per_octave=12)
    given = mx.array(C) if backend == "mlx" else C
    other = "numpy" if backend == "mlx" else "mlx"
    ours = chroma_cqt(None, bins_per_octave=12, backend=other, C=given)
    assert isinstance(ours, type(given))
    assert rel_err(ours, ref) <= 1e-5


def test_config_spare_bins_let_pitch_shift_crop_a_shifted_window():
    config = CQTConfig.for_pitch_shift(6, sr=SR, hop_length=512, n_bins=60, fmin=65.40639132514966)
    assert config.spare_bins_below == config.spare_bins_above == 6
    assert config.total_bins == 72 and config.computed_fmin == pytest.approx(65.40639132514966 / 2**0.5)
    assert config.frame_rate == pytest.approx(SR / 512)
    t = np.arange(SR) / SR
    a4 = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    C = np.asarray(config.compute(a4))
    assert C.shape == (72, config.n_frames(len(a4)))
    peak = int(np.argmax(config.crop(C, 0).mean(axis=-1)))
    assert config.frequencies()[peak] == pytest.approx(440.0)
    for shift in (-6, -1, 3, 6):  # the crop looks like the CQT of the tone shifted by `shift` semitones
        assert int(np.argmax(config.crop(C, shift).mean(axis=-1))) == peak + shift
    for shift in (7, -7):  # one bin past the bottom, and one past the top, of the computed bins
        with pytest.raises(ValueError, match="spare bins"):
            config.crop(C, shift)
    with pytest.raises(ValueError, match="whole number of bins"):
        config.crop(C, 0.5)


def test_config_key_and_dict_round_trip():
    config = CQTConfig(hop_length=1024, harmonics=(0.5, 1, 2), log=True)
    again = CQTConfig.from_dict(config.to_dict())
    assert again == config and again.key() == config.key()
    assert config.to_dict()["kind"] == "cqt"
    assert CQTConfig(hop_length=1024).key() != config.key()
    with pytest.raises(ValueError, match="unknown CQTConfig fields"):
        CQTConfig.from_dict({"n_bin": 12})
    H = np.asarray(config.compute(SIGNALS["chord"][:SR]))
    assert H.shape == (3, 84, 1 + SR // 1024) and H.min() >= 0.0


@pytest.mark.parametrize("backend", ["mlx", "numpy"])
def test_config_log_compresses_on_both_backends(backend):
    """The data loader computes features on the numpy backend: `log=True` must scale them as on MLX."""
    y = SIGNALS["chord"][:SR]
    raw = np.asarray(CQTConfig(hop_length=1024).compute(y, backend=backend))
    logged = CQTConfig(hop_length=1024, log=True).compute(y, backend=backend)
    assert isinstance(logged, mx.array if backend == "mlx" else np.ndarray)
    np.testing.assert_allclose(np.asarray(logged), np.log1p(raw), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: cqt(np.zeros(SR), sr=SR, n_bins=120), "Nyquist"),
        (lambda: CQTConfig(n_bins=100, spare_bins_above=12), "Nyquist"),
        (lambda: cqt(np.zeros(16), sr=SR), "too short"),
        (lambda: cqt(np.zeros(SR), sr=SR, hop_length=0), "hop_length"),
        # a fractional hop would run as its integer part
        (
            lambda: cqt(np.zeros(SR), sr=SR, hop_length=1.5),
            r"^hop_length must be a positive integer, got 1\.5",
        ),
        (lambda: CQTConfig(hop_length=1.5), r"CQTConfig\.hop_length must be a positive integer, got 1\.5"),
        (lambda: cqt(np.zeros(SR), sr=SR, fmin=-1.0), "fmin"),
        (lambda: cqt(np.zeros(SR), sr=SR, backend="cuda"), "backend"),
        (lambda: CQTConfig(spare_bins_below=-1), "spare bins"),
        (lambda: CQTConfig(spare_bins_above=-1), "spare bins"),
        # CQTConfig used its fields before checking them: numpy's "zero-size array" error, a
        # ZeroDivisionError, the Nyquist advice for a zero filter_scale, and a config built from a negative
        # fmin or a zero hop, refused only when computed.
        (lambda: CQTConfig(n_bins=0), r"CQTConfig\.n_bins must be a positive integer, got 0"),
        (lambda: CQTConfig(n_bins=-1), r"CQTConfig\.n_bins must be a positive integer, got -1"),
        (
            lambda: CQTConfig(bins_per_octave=0),
            r"CQTConfig\.bins_per_octave must be a positive integer, got 0",
        ),
        (lambda: CQTConfig(filter_scale=0), r"CQTConfig\.filter_scale must be a positive number, got 0"),
        (lambda: CQTConfig(fmin=-1.0), r"CQTConfig\.fmin must be a positive frequency in Hz, got -1\.0"),
        (lambda: CQTConfig(hop_length=0), r"CQTConfig\.hop_length must be a positive integer, got 0"),
        (lambda: cqt(np.zeros(SR), sr=SR, n_bins=0), r"^n_bins must be a positive integer, got 0"),
        # librosa refuses a sparsity outside [0, 1) ("Invalid quantile"); it was accepted.
        (lambda: cqt(np.zeros(SR), sr=SR, sparsity=2), r"sparsity must be in \[0, 1\), got 2"),
        (lambda: cqt(np.zeros(SR), sr=SR, sparsity=-0.1), r"sparsity must be in \[0, 1\), got -0\.1"),
        (lambda: cqt(np.zeros(0), sr=SR), r"y holds no samples \(shape \(0,\)\)"),
        (lambda: cqt(np.zeros(SR), sr=-SR), "sr must be a positive sampling rate in Hz, got -22050"),
        (lambda: chroma_cqt(np.zeros(SR), sr=SR, n_chroma=0), "n_chroma must be a positive"),
        (
            lambda: chroma_cqt(np.zeros(SR), sr=SR, n_chroma=24),
            "bins_per_octave=36 must be a multiple of n_chroma=24",
        ),
        (lambda: cqt(np.zeros((SR, 2)), sr=SR), r"last axis has 2 samples: channels-last audio\?"),
    ],
)
def test_user_errors_are_explained(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "config",
    [CQTConfig(), CQTConfig(hop_length=256, fmin=220.0, n_bins=36)],  # the second decimates early, by 2
    ids=["seven-octaves", "early-decimation"],
)
def test_the_shortest_signal_a_config_computes_is_its_min_samples(config):
    """`min_samples` (by which the chord recipe skips recordings) is the limit `compute` enforces: one
    sample left after every halving, 2**6 for librosa's seven octaves."""
    n = config.min_samples
    assert n == {84: 64, 36: 8}[config.n_bins]
    assert np.asarray(config.compute(np.zeros(n, np.float32))).shape == (config.n_bins, config.n_frames(n))
    with pytest.raises(ValueError, match=f"signal of {n - 1} samples is too short"):
        config.compute(np.zeros(n - 1, np.float32))


@pytest.mark.parametrize("feature", [cqt, chroma_cqt])
def test_nan_and_integer_samples_are_refused_naming_y(feature):
    """A NaN made every CQT frame NaN (the decimation spreads it); int16 gave magnitudes 32768 times too
    large."""
    y = np.zeros(SR, np.float32)
    y[1000] = np.nan
    with pytest.raises(
        ValueError, match=r"y holds 1 non-finite samples \(NaN or Inf; the first at index 1000\)"
    ):
        feature(y, sr=SR)
    with pytest.raises(TypeError, match=r"integer samples .*scale to \[-1, 1\] first"):
        feature(np.zeros(SR, np.int16), sr=SR)


@pytest.mark.parametrize(
    "config",
    [
        CQTConfig(hop_length=2048, n_bins=216, bins_per_octave=36, spare_bins_below=18, spare_bins_above=18),
        CQTConfig(hop_length=512, fmin=130.0, n_bins=36, harmonics=(0.5, 1, 2)),  # the lowest one's reach
        CQTConfig(hop_length=256, fmin=220.0, n_bins=36, filter_scale=0.8, log=True),  # early decimation
    ],
)
def test_blocks_of_a_long_signal_equal_the_whole_signal(config, monkeypatch):
    """`compute(..., block_frames=)` reads every block with its context (`context_samples`) around it: the
    frames equal the whole signal's to float32 rounding, for any block size, and no CQT sees more than a
    block and its context."""
    rng = np.random.default_rng(0)
    y = np.concatenate([SIGNALS["chord"], SIGNALS["noise"], SIGNALS["chord"]] * 2)
    y = np.stack([y, rng.permutation(y)]).astype(np.float32)  # a batch of two recordings, 18 s each
    whole = np.asarray(config.compute(y, backend="numpy", tuning=0.2))
    hop, context = config.hop_length, config.context_samples(tuning=0.2)
    import importlib

    cqt_module = importlib.import_module("audiotrain.features.cqt")  # the package re-exports the function
    lengths = []

    def spy(signal, *args, **kwargs):
        lengths.append(signal.shape[-1])
        return cqt(signal, *args, **kwargs)

    monkeypatch.setattr(cqt_module, "cqt", spy)
    for block_frames in (7, 100, 10**6):
        lengths.clear()
        blocks = config.compute(y, backend="numpy", tuning=0.2, block_frames=block_frames)
        assert blocks.shape == whole.shape
        assert rel_err(blocks, whole) <= 2e-6
        assert max(lengths) <= (block_frames + 2 * (-(-context // hop))) * hop or len(lengths) == 1
    with pytest.raises(ValueError, match="block_frames must be a positive integer, got 0"):
        config.compute(y, block_frames=0)
    y[0, 300_000] = np.nan  # named by its index in the signal, not in a block
    with pytest.raises(ValueError, match=r"non-finite samples \(NaN or Inf; the first at index 300000\)"):
        config.compute(y[0], block_frames=7)


@pytest.mark.parametrize("factor", [2, 4, 8, 16, 32])
def test_decimation_reaches_no_further_than_the_blocks_context_allows(factor):
    """`context_samples` counts on a decimation by f reading at most `_DECIMATION_REACH_PER_FACTOR` * f input
    samples either side of each output sample: measured here from soxr's impulse response."""
    from audiotrain.features.cqt import _DECIMATION_REACH_PER_FACTOR, _halve

    impulse = np.zeros(40 * 1024 * factor, np.float32)
    centre = len(impulse) // 2
    impulse[centre] = 1.0
    touched = np.flatnonzero(_halve(impulse, factor)) * factor  # output samples' times, in input samples
    assert len(touched) > 0
    assert max(centre - touched[0], touched[-1] - centre) <= _DECIMATION_REACH_PER_FACTOR * factor


@pytest.mark.parametrize(
    "feature",
    [
        lambda y: cqt(y, sr=SR),
        lambda y: cqt(y, sr=SR, backend="numpy"),
        lambda y: chroma_cqt(y, sr=SR),
        lambda y: hcqt(y, sr=SR, n_bins=36, fmin=110.0),
        lambda y: CQTConfig().compute(y),
    ],
    ids=["cqt", "cqt-numpy", "chroma_cqt", "hcqt", "CQTConfig.compute"],
)
def test_bfloat16_mlx_audio_gives_the_features_of_its_float32_values(feature):
    """An mx.array of bfloat16 (a model's output under bf16-mixed) stopped every CQT with numpy's
    "'bfloat16' is not a valid PEP 3118 buffer format string" as it went to the host, while float16 and
    the STFT and mel features took it: its values are read as float32, which holds them exactly."""
    audio = mx.array(SIGNALS["chord"]).astype(mx.bfloat16)
    expected = np.asarray(feature(audio.astype(mx.float32)))
    np.testing.assert_array_equal(np.asarray(feature(audio)), expected)


@pytest.mark.parametrize(
    "feature",
    [
        lambda tuning: cqt(SIGNALS["chord"], sr=SR, tuning=tuning),
        lambda tuning: chroma_cqt(SIGNALS["chord"], sr=SR, tuning=tuning),
        lambda tuning: hcqt(SIGNALS["chord"], sr=SR, n_bins=36, fmin=110.0, tuning=tuning),
        lambda tuning: CQTConfig().compute(SIGNALS["chord"], tuning=tuning),
        lambda tuning: CQTConfig().compute(SIGNALS["chord"], tuning=tuning, block_frames=64),
    ],
    ids=["cqt", "chroma_cqt", "hcqt", "CQTConfig.compute", "CQTConfig.compute-blocks"],
)
def test_a_tuning_that_is_not_a_number_is_refused_naming_it(feature):
    """librosa's tuning=None (estimate it) stopped with float()'s or a division's bare TypeError, a NaN
    with "cannot convert float NaN to integer", and the string "0.1" was read as 0.1."""
    with pytest.raises(ValueError, match=r"tuning must be a finite number of bins, got None: librosa's"):
        feature(None)
    with pytest.raises(ValueError, match=r"tuning must be a finite number of bins, got nan$"):
        feature(float("nan"))
    with pytest.raises(ValueError, match=r"tuning must be a finite number of bins, got '0\.1'$"):
        feature("0.1")


def test_chroma_of_a_given_cqt_needs_no_audio_as_librosas_does():
    """chroma_cqt(C=C), as librosa.feature.chroma_cqt is called, stopped with "missing 1 required
    positional argument: 'y'" though y is ignored when C is given; with neither, the error names both."""
    C = np.abs(librosa.cqt(SIGNALS["chord"], sr=SR, n_bins=84, bins_per_octave=12)).astype(np.float32)
    ref = librosa.feature.chroma_cqt(C=C, bins_per_octave=12)
    assert rel_err(chroma_cqt(C=C, bins_per_octave=12), ref) <= 1e-5
    with pytest.raises(
        ValueError, match=r"chroma_cqt needs audio y \[\.\.\., samples\] or a CQT magnitude C"
    ):
        chroma_cqt()


def test_a_signal_too_short_for_the_cqt_is_told_the_fewest_samples_it_takes():
    """The error "signal of 10 samples is too short for a 7-octave CQT" left the user to work out the least
    length (librosa gives frames, with warnings, for as little as one sample)."""
    with pytest.raises(
        ValueError, match=r"^signal of 10 samples is too short for a 7-octave CQT: it takes 64 or more"
    ):
        cqt(np.zeros(10, np.float32), sr=SR)
    with pytest.raises(ValueError, match=r"it takes 8 or more \(each octave halves the signal"):
        cqt(np.zeros(7, np.float32), sr=SR, hop_length=256, fmin=220.0, n_bins=36)


def test_a_long_batch_of_short_clips_halved_to_a_few_samples_is_not_taken_for_channels_last_audio():
    # The CQT halves its own signal once per octave; `resample` refuses a last axis of <= 8 samples after an
    # axis of >= 1024 as channels-last audio, and so refused the CQT of 1024 clips of 64 samples (7 octaves
    # halve them to 8) though its input was checked as it came in.
    y = np.random.default_rng(0).standard_normal((1024, 64)).astype(np.float32) * 0.1
    spectra = np.asarray(cqt(y, sr=22050, hop_length=64, fmin=C1_HZ, n_bins=84, bins_per_octave=12))
    assert spectra.shape[:2] == (1024, 84) and np.isfinite(spectra).all()
