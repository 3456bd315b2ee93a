"""ClapFeatureExtractor: settings from preprocessor_config.json, numerically equal to transformers'.

The committed fixture (tests/fixtures/features/clap_reference.npz, ~30 KB) holds transformers' output for
a deterministic signal, subsampled, so these tests check numbers even where transformers is missing.
Regenerate it with ``python tests/test_features_clap.py``.
"""

import json
import os
import re
import warnings
from pathlib import Path

from audiotrain.features.clap import ClapFeatureExtractor
from audiotrain.features.signals import chirp

import numpy as np
import pytest
from file_size_limit import files_cannot_grow_past, needs_file_size_limit
from reference import require

# Most tests here call the front end on arrays made at its own rate without saying so: its warning of a
# left-out sampling_rate (test_features_without_a_sampling_rate_warn_as_transformers_does) would be noise
# in each.
pytestmark = pytest.mark.filterwarnings("ignore:ClapFeatureExtractor. no sampling_rate given:UserWarning")

SR = 48000
FIXTURE = Path(__file__).parent / "fixtures" / "features" / "clap_reference.npz"
# laion/clap-htsat-unfused's preprocessor_config.json (the keys transformers writes, derived ones included)
UNFUSED = {
    "chunk_length_s": 10,
    "feature_extractor_type": "ClapFeatureExtractor",
    "feature_size": 64,
    "fft_window_size": 1024,
    "frequency_max": 14000,
    "frequency_min": 50,
    "hop_length": 480,
    "max_length_s": 10,
    "n_fft": 1024,
    "nb_frequency_bins": 513,
    "nb_max_frames": 1000,
    "nb_max_samples": 480000,
    "padding": "repeatpad",
    "padding_side": "right",
    "padding_value": 0.0,
    "processor_class": "ClapProcessor",
    "return_attention_mask": False,
    "sampling_rate": 48000,
    "top_db": None,
    "truncation": "rand_trunc",
}
FUSED = {**UNFUSED, "truncation": "fusion", "frequency_min": 0}


def _signal(seconds: float) -> np.ndarray:
    """Deterministic test audio: a sweep plus a tone (no random generator involved)."""
    t = np.arange(int(SR * seconds)) / SR
    return (chirp(SR, seconds, 50.0, 20000.0) + 0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)


def _write_config(folder: Path, config: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "preprocessor_config.json").write_text(json.dumps(config, indent=2))
    return folder


def test_settings_are_read_from_the_checkpoint(tmp_path):
    extractor = ClapFeatureExtractor.from_pretrained(_write_config(tmp_path / "ckpt", UNFUSED))
    assert (extractor.frequency_min, extractor.frequency_max, extractor.feature_size) == (50, 14000, 64)
    assert extractor.truncation == "rand_trunc" and extractor.n_frames == 1001
    other = ClapFeatureExtractor.from_dict({**UNFUSED, "frequency_min": 0})
    y = [_signal(1.0)]
    assert not np.allclose(
        extractor(y, train=False)["input_features"], other(y, train=False)["input_features"]
    )
    again = ClapFeatureExtractor.from_dict(extractor.to_dict())
    assert again.to_dict() == extractor.to_dict()
    saved = again.save_pretrained(tmp_path / "copy")
    assert ClapFeatureExtractor.from_pretrained(saved).to_dict() == extractor.to_dict()


def _write_processor_config(folder: Path, config: dict) -> Path:
    """What transformers 5's ``ClapProcessor.save_pretrained`` writes: no preprocessor_config.json."""
    folder.mkdir(parents=True, exist_ok=True)
    block = {k: v for k, v in config.items() if k != "processor_class"}
    (folder / "processor_config.json").write_text(
        json.dumps({"feature_extractor": block, "processor_class": "ClapProcessor"}, indent=2)
    )
    return folder


def test_settings_are_read_from_a_transformers_5_processor_config(tmp_path):
    folder = _write_processor_config(tmp_path / "hf5", UNFUSED)
    extractor = ClapFeatureExtractor.from_pretrained(folder)
    assert extractor.to_dict() == ClapFeatureExtractor.from_dict(UNFUSED).to_dict()
    assert ClapFeatureExtractor.from_pretrained(folder / "processor_config.json") == extractor
    # Both files present: the block wins, as transformers 5 reads them (a processor re-saved into a folder
    # downloaded with an older preprocessor_config.json); a processor_config.json without one is passed over.
    _write_config(folder, FUSED)
    assert ClapFeatureExtractor.from_pretrained(folder).truncation == "rand_trunc"
    (folder / "processor_config.json").write_text(json.dumps({"processor_class": "ClapProcessor"}))
    assert ClapFeatureExtractor.from_pretrained(folder).truncation == "fusion"


@pytest.mark.parametrize("name", ["processor_config.json", "preprocessor_config.json"])
def test_a_front_end_file_that_is_a_fifo_beside_the_other_is_refused_naming_it(tmp_path, name):
    """A processor_config.json that was a FIFO beside a preprocessor_config.json was passed over without a
    word (the front end came from the other file), and a FIFO preprocessor_config.json beside a
    processor_config.json without a block was that file's "no 'feature_extractor' object". Neither is
    opened."""
    _write_config(tmp_path, FUSED)
    (tmp_path / "processor_config.json").write_text(json.dumps({"processor_class": "ClapProcessor"}))
    (tmp_path / name).unlink()
    os.mkfifo(tmp_path / name)
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / name}: is a FIFO, not a regular file")):
        ClapFeatureExtractor.from_pretrained(tmp_path)


def test_processor_config_without_a_feature_extractor_block_is_explained(tmp_path):
    (tmp_path / "processor_config.json").write_text(json.dumps({"processor_class": "ClapProcessor"}))
    with pytest.raises(ValueError, match="processor_config.json: no 'feature_extractor' object"):
        ClapFeatureExtractor.from_pretrained(tmp_path)
    _write_processor_config(tmp_path, {**UNFUSED, "truncation": "middle"})
    with pytest.raises(
        ValueError, match="processor_config.json: feature_extractor: truncation: must be one of"
    ):
        ClapFeatureExtractor.from_pretrained(tmp_path)
    _write_processor_config(tmp_path, {**UNFUSED, "mel_bins": 64})
    with pytest.raises(ValueError, match="processor_config.json: feature_extractor: unknown keys"):
        ClapFeatureExtractor.from_pretrained(tmp_path)


@pytest.mark.parametrize("writer", [_write_config, _write_processor_config])
def test_a_settings_file_linked_from_outside_the_folder_is_refused(tmp_path, writer):
    """The rule load_pretrained follows (README: loading reads nothing outside the folder it was given), for
    the front end loaded on its own."""
    from audiotrain.models.clap import CheckpointError

    elsewhere = writer(tmp_path / "elsewhere", UNFUSED)
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (name,) = [p.name for p in elsewhere.iterdir()]
    (folder / name).symlink_to(elsewhere / name)
    with pytest.raises(CheckpointError, match=f"{folder / name} leads outside {folder}"):
        ClapFeatureExtractor.from_pretrained(folder)
    assert ClapFeatureExtractor.from_pretrained(folder / name).to_dict() == (
        ClapFeatureExtractor.from_dict(UNFUSED).to_dict()
    )  # a file named on its own is read as named


@pytest.mark.parity
def test_reads_what_transformers_clap_processor_saves(tmp_path):
    transformers = require("transformers")
    require("torch")
    tokenizer = transformers.AutoTokenizer.from_pretrained(Path(__file__).parent / "fixtures" / "clap_tiny")
    theirs = _transformers_extractor(UNFUSED)
    transformers.ClapProcessor(feature_extractor=theirs, tokenizer=tokenizer).save_pretrained(tmp_path)
    ours = ClapFeatureExtractor.from_pretrained(tmp_path)
    assert ours.to_dict() == ClapFeatureExtractor.from_dict(UNFUSED).to_dict()
    waves = [_signal(1.5)]
    expected = np.asarray(theirs(waves, sampling_rate=SR)["input_features"], dtype=np.float32)
    np.testing.assert_allclose(ours(waves, train=False)["input_features"], expected, atol=5e-5)


def test_matches_committed_transformers_fixture():
    ref = np.load(FIXTURE)
    unfused = ClapFeatureExtractor.from_dict(UNFUSED)
    # (the fixture's long clip was cut at its start for transformers, whose crop is random)
    out = unfused([_signal(3.0), _signal(12.5)], train=False, window="start")
    assert out["input_features"].shape == (2, 1, 1001, 64) and out["input_features"].dtype == np.float32
    np.testing.assert_array_equal(out["is_longer"], [False, True])
    np.testing.assert_allclose(out["input_features"][:, 0, ::20], ref["unfused"], atol=1e-4)
    fused = ClapFeatureExtractor.from_dict(FUSED)
    out = fused([_signal(3.0)], train=False)
    assert out["input_features"].shape == (1, 4, 1001, 64)
    np.testing.assert_allclose(out["input_features"][0, :, ::50], ref["fused"], atol=1e-4)


def _transformers_extractor(config: dict):
    transformers = require("transformers")
    require("torch")
    known = {k: v for k, v in config.items() if k not in ("feature_extractor_type", "processor_class")}
    return transformers.ClapFeatureExtractor(**known)


@pytest.mark.parity
@pytest.mark.parametrize("config", [UNFUSED, FUSED], ids=["rand_trunc", "fusion"])
def test_matches_transformers_including_random_crops(config):
    theirs = _transformers_extractor(config)
    ours = ClapFeatureExtractor.from_dict(config)
    # short (repeat-padded), exactly 10 s, longer by less than a hop, and long clips (cropped)
    waves = [_signal(s) for s in (0.7, 10.0, 12.5)] + [_signal(10.0 + 100 / SR), _signal(21.0)[::-1].copy()]
    for seed in (0, 1):
        np.random.seed(seed)  # transformers draws its crops from numpy's global generator
        expected = theirs(waves, sampling_rate=SR)
        got = ours(waves, rng=np.random.RandomState(seed), train=True)
        features = np.asarray(expected["input_features"], dtype=np.float32)
        assert got["input_features"].shape == features.shape
        np.testing.assert_allclose(got["input_features"], features, atol=5e-5)
        np.testing.assert_array_equal(got["is_longer"], np.asarray(expected["is_longer"])[:, 0])


def test_fusion_marks_one_clip_longer_in_training_only():
    fused = ClapFeatureExtractor.from_dict(FUSED)
    short = [_signal(1.0), _signal(2.0)]
    assert fused(short, rng=np.random.default_rng(0), train=True)["is_longer"].sum() == 1
    assert fused(short, train=False)["is_longer"].sum() == 0


def test_fusion_evaluation_views_are_windows_from_the_middle_of_each_third():
    """What README and ``__call__`` say of a fusion front end's evaluation: besides the whole clip squeezed
    into the window (view 0), views 1-3 are windows from the middle of each third of the clip's possible
    starts (taken from each third's start, the scores would follow the clip's first seconds more)."""
    fused = ClapFeatureExtractor.from_dict(FUSED)
    wave = _signal(21.0)
    got = fused([wave], train=False)
    assert got["is_longer"].tolist() == [True]
    mel = fused.log_mel(wave.astype(np.float64)).astype(np.float32)
    window = fused.n_frames
    for third, view in zip(
        np.array_split(np.arange(mel.shape[0] - window + 1), 3), got["input_features"][0][1:]
    ):
        middle = int(third[len(third) // 2])
        np.testing.assert_array_equal(view, mel[middle : middle + window], err_msg=f"third from {third[0]}")
    assert got["input_features"].shape == (1, 4, window, fused.feature_size)


def test_fusion_training_views_are_random_windows_of_each_third_as_transformers_draws_them():
    """In training views 1-3 are windows starting anywhere in each third of the clip's possible starts, one
    ``choice`` per third from the clip's generator, as transformers draws them (so a seeded RandomState gives
    transformers' views): new views each epoch. Checked here without transformers, which the parity test
    `test_matches_transformers_including_random_crops` needs."""
    fused = ClapFeatureExtractor.from_dict(FUSED)
    wave = _signal(21.0)
    mel = fused.log_mel(wave.astype(np.float64)).astype(np.float32)
    window = fused.n_frames
    thirds = np.array_split(np.arange(mel.shape[0] - window + 1), 3)
    drawn = []
    for seed in range(4):
        draw = np.random.RandomState(seed)
        starts = [int(draw.choice(third)) for third in thirds]  # transformers' draws for this clip
        got = fused([wave], rng=np.random.RandomState(seed), train=True)
        assert got["is_longer"].tolist() == [True]
        for start, view in zip(starts, got["input_features"][0][1:]):
            np.testing.assert_array_equal(view, mel[start : start + window], err_msg=f"seed {seed}")
        drawn.append(starts)
    assert all(len({starts[k] for starts in drawn}) > 1 for k in range(3))


def test_eval_mode_is_deterministic_and_generator_seedable():
    unfused = ClapFeatureExtractor.from_dict(UNFUSED)
    long = [_signal(15.0)]
    a = unfused(long, train=False)["input_features"]
    np.testing.assert_array_equal(a, unfused(long, train=False)["input_features"])
    centre = long[0][int(2.5 * SR) : int(12.5 * SR)]
    np.testing.assert_allclose(a, unfused([centre], train=False)["input_features"], atol=0)
    x = unfused(long, rng=np.random.default_rng(3))["input_features"]
    np.testing.assert_array_equal(x, unfused(long, rng=np.random.default_rng(3))["input_features"])
    assert not np.array_equal(x, a)


@pytest.mark.parametrize(
    "change,match",
    [
        ({"truncation": "middle"}, "truncation"),
        ({"padding": "mirror"}, "padding"),
        ({"nb_max_samples": 441000}, "nb_max_samples"),
        # Both derived settings in one message (a fix of the first was refused for the next).
        (
            {"nb_max_samples": 441000, "n_fft": 2048},
            r"nb_max_samples=441000 contradicts .*; n_fft=2048 contradicts the other settings \(expected 1024\)",
        ),
        ({"feature_extractor_type": "WhisperFeatureExtractor"}, "feature_extractor_type"),
        ({"mel_bins": 64}, "unknown keys"),
    ],
)
def test_bad_configs_name_the_field(tmp_path, change, match):
    folder = _write_config(tmp_path / "ckpt", {**UNFUSED, **change})
    with pytest.raises(ValueError, match=match) as info:
        ClapFeatureExtractor.from_pretrained(folder)
    assert "preprocessor_config.json" in str(info.value)


def test_bad_inputs_are_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither processor_config.json nor preprocessor_config.json"):
        ClapFeatureExtractor.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere.json: no such file"):
        ClapFeatureExtractor.from_pretrained(tmp_path / "nowhere.json")
    (tmp_path / "preprocessor_config.json").write_text("{ not json")
    with pytest.raises(ValueError, match="line 1"):
        ClapFeatureExtractor.from_pretrained(tmp_path)
    unfused = ClapFeatureExtractor.from_dict(UNFUSED)
    with pytest.raises(ValueError, match="48000 Hz"):
        unfused([_signal(1.0)], sampling_rate=44100)
    with pytest.raises(ValueError, match="waveform 1"):
        unfused([_signal(1.0), np.zeros((2, 100))])
    with pytest.raises(ValueError, match="NaN"):
        unfused([np.array([0.0, np.nan])])
    with pytest.raises(ValueError, match="no waveforms"):
        unfused([])


def test_the_extractor_takes_transformers_keywords_from_audiotrain_models_clap():
    """As transformers' ClapFeatureExtractor is called (from ClapProcessor and its docs): it was not in
    audiotrain.models.clap (ImportError), and return_tensors= was a TypeError."""
    from audiotrain.models.clap import ClapFeatureExtractor as exported

    import mlx.core as mx

    assert exported is ClapFeatureExtractor
    unfused = exported.from_dict(UNFUSED)
    clip = [_signal(1.0)]
    plain = unfused(clip, train=False)
    as_numpy = unfused(clip, train=False, sampling_rate=SR, return_tensors="np")
    as_mlx = unfused(clip, train=False, sampling_rate=SR, return_tensors="mlx")
    assert isinstance(as_mlx["input_features"], mx.array) and isinstance(as_mlx["is_longer"], mx.array)
    for name, value in plain.items():
        np.testing.assert_array_equal(as_numpy[name], value)
        np.testing.assert_array_equal(np.array(as_mlx[name]), value)
    with pytest.raises(ValueError, match=r"return_tensors='pt' is not available: use None or 'np'.*'mlx'"):
        unfused(clip, return_tensors="pt")
    # This call's patterns, as transformers takes them: the same features as an extractor built with them.
    for padding in ("repeat", "pad"):
        np.testing.assert_array_equal(
            unfused(clip, train=False, padding=padding)["input_features"],
            ClapFeatureExtractor.from_dict({**UNFUSED, "padding": padding})(clip, train=False)[
                "input_features"
            ],
        )
    fused = ClapFeatureExtractor.from_dict({**UNFUSED, "truncation": "fusion"})
    np.testing.assert_array_equal(
        unfused(clip, train=False, truncation="fusion")["input_features"],
        fused(clip, train=False)["input_features"],
    )
    np.testing.assert_array_equal(
        unfused(clip, train=False, padding=True)["input_features"], plain["input_features"]
    )
    with pytest.raises(ValueError, match="padding must be one of"):
        unfused(clip, padding=False)


def _regenerate_fixture() -> None:
    import transformers

    unfused = transformers.ClapFeatureExtractor(
        **{k: v for k, v in UNFUSED.items() if k != "processor_class"}
    )
    fused = transformers.ClapFeatureExtractor(**{k: v for k, v in FUSED.items() if k != "processor_class"})
    # The long clip is cut at the start, which is what our extractor does with train=False, window="start".
    clips = [_signal(3.0), _signal(12.5)[: 10 * SR]]
    a = np.asarray(unfused(clips, sampling_rate=SR)["input_features"], dtype=np.float32)[:, 0, ::20]
    b = np.asarray(fused([_signal(3.0)], sampling_rate=SR)["input_features"], dtype=np.float32)[0, :, ::50]
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(FIXTURE, unfused=a, fused=b)
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size} bytes)")


if __name__ == "__main__":
    _regenerate_fixture()


@pytest.mark.parametrize(
    "content, expected",
    [
        (b'{"sampling_rate": 48000, "x": "caf\xe9"}', r"preprocessor_config.json: not UTF-8 text"),
        (
            b'{"sampling_rate": "fast"}',
            r"preprocessor_config.json: sampling_rate: expected an integer, got 'fast'",
        ),
        (b'{"max_length_s": "10"}', r"preprocessor_config.json: max_length_s: expected a number, got '10'"),
        (b'{"truncation": 3}', r"preprocessor_config.json: truncation: expected a string, got 3"),
        (
            b'{"truncation": "chop"}',
            r"preprocessor_config.json: truncation: must be one of \('rand_trunc', 'fusion'\), got 'chop'",
        ),
        (b'{"padding": "zeros"}', r"preprocessor_config.json: padding: must be one of .*, got 'zeros'"),
        (b'{"hop_length": 0}', r"preprocessor_config.json: hop_length: expected a positive number, got 0"),
        (b'{"top_db": "loud"}', r"preprocessor_config.json: top_db: expected a number, got 'loud'"),
        # Mel band edges: an infinite one gave NaN features, found only as NaN embeddings after loading.
        (
            b'{"frequency_max": Infinity}',
            r"preprocessor_config.json: frequency_max: expected a finite number of Hz, 0 or more, got inf",
        ),
        (b'{"frequency_max": NaN}', r"preprocessor_config.json: frequency_max: expected a finite .*got nan"),
        (b'{"frequency_min": -5000}', r"preprocessor_config.json: frequency_min: expected .*got -5000"),
        (
            b'{"frequency_min": 9000, "frequency_max": 8000}',
            r"preprocessor_config.json: frequency_min \(9000\) must be below frequency_max \(8000\)",
        ),
        (
            b'{"frequency_min": 8000, "frequency_max": 8000}',
            r"preprocessor_config.json: frequency_min \(8000\) must be below frequency_max \(8000\)",
        ),
        (b'{"max_length_s": NaN}', r"preprocessor_config.json: max_length_s: expected at most 3600, got nan"),
        (
            b'{"sampling_rate": 0}',
            r"preprocessor_config.json: sampling_rate: expected a positive number, got 0",
        ),
        (
            b'{"sampling_rate": 10000000}',
            r"preprocessor_config.json: sampling_rate: expected at most 768000, got 10000000",
        ),
    ],
)
def test_preprocessor_config_errors_name_the_file_and_field(tmp_path, content, expected):
    (tmp_path / "preprocessor_config.json").write_bytes(content)
    with pytest.raises(ValueError, match=expected):
        ClapFeatureExtractor.from_pretrained(tmp_path)
    assert ClapFeatureExtractor.from_dict({"top_db": None}).top_db is None  # null stays allowed


def test_a_frequency_max_above_nyquist_is_named_in_a_warning(tmp_path):
    """frequency_max 1e300 trained on empty mel bands, said only by a warning naming no file."""
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({**UNFUSED, "frequency_max": 1e300}))
    with pytest.warns(
        UserWarning, match=r"preprocessor_config.json: frequency_max: 1e\+300 Hz is above the Nyquist"
    ):
        ClapFeatureExtractor.from_pretrained(tmp_path)


def test_a_frequency_max_at_the_nyquist_frequency_is_no_warning_and_one_hertz_above_is():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ClapFeatureExtractor.from_dict({**UNFUSED, "frequency_max": SR // 2})
    with pytest.warns(UserWarning, match=r"frequency_max: 24001 Hz is above the Nyquist frequency"):
        ClapFeatureExtractor.from_dict({**UNFUSED, "frequency_max": SR // 2 + 1})


def test_an_extractor_made_in_python_refuses_a_window_of_one_sample():
    """from_dict's checks are for files; the constructor itself refuses an FFT window too small to hold a
    frequency (fft_window_size 1), as it refuses a hop or a mel count of 0."""
    for bad in ({"fft_window_size": 1}, {"hop_length": 0}, {"feature_size": 0}):
        with pytest.raises(ValueError, match="must be positive"):
            ClapFeatureExtractor(**bad)


def test_a_bfloat16_mlx_clip_gives_the_features_of_its_float32_values():
    """An mx.array of bfloat16 stopped the front end with numpy's "'bfloat16' is not a valid PEP 3118 buffer
    format string"; float32 holds its values exactly."""
    import mlx.core as mx

    clip = mx.array(_signal(2.0)).astype(mx.bfloat16)
    extractor = ClapFeatureExtractor.from_dict(UNFUSED)
    expected = extractor(clip.astype(mx.float32), train=False)["input_features"]
    np.testing.assert_array_equal(extractor(clip, train=False)["input_features"], expected)


@pytest.mark.parametrize(
    "waveforms, error, match",
    [
        # soundfile.read's stereo: every row was taken as a 2-sample clip (hours, and about 126 GiB).
        (np.zeros((132300, 2), np.float32), ValueError, r"shape \(132300, 2\).*channels-last audio\?.*\.T"),
        (
            np.zeros(48000, np.int16),
            TypeError,
            r"waveforms holds integer samples \(int16\).*scale to \[-1, 1\]",
        ),
        ([np.zeros(48000, np.int16)], TypeError, r"waveform 0 holds integer samples \(int16\)"),
        (np.zeros(48000, bool), TypeError, "must be a real-valued signal, got dtype bool"),
        (np.zeros(48000, np.complex64), TypeError, "must be a real-valued signal, got dtype complex64"),
        (np.float32(0.5), ValueError, "waveforms must have a samples axis, got a scalar"),
    ],
)
def test_the_extractor_refuses_what_the_other_feature_functions_refuse(waveforms, error, match):
    with pytest.raises(error, match=match):
        ClapFeatureExtractor.from_dict(UNFUSED)(waveforms, train=False)


@needs_file_size_limit
def test_a_full_disk_while_saving_leaves_the_earlier_settings_whole(tmp_path: Path):
    """preprocessor_config.json (part of an exported bundle) was written in place: a disk that filled up
    mid-write left half a JSON file that no loader reads."""
    saved = ClapFeatureExtractor().save_pretrained(tmp_path)
    earlier = saved.read_bytes()
    with files_cannot_grow_past(len(earlier) // 2), pytest.raises(OSError, match="File too large"):
        ClapFeatureExtractor(max_length_s=5).save_pretrained(tmp_path)
    assert saved.read_bytes() == earlier
    assert ClapFeatureExtractor.from_pretrained(tmp_path) == ClapFeatureExtractor()


def test_saved_settings_have_the_json_types_of_transformers_own_files(tmp_path: Path):
    """ "max_length_s": 2.0 (read through from_dict, which makes numbers floats) made transformers'
    ClapFeatureExtractor pad to 32000.0 samples: ClapProcessor and the pipeline failed on every clip not
    exactly 2 s long. Whole numbers are written as ints, as transformers writes them; other values exactly."""
    settings = {**UNFUSED, "max_length_s": 2, "nb_max_samples": 96000, "frequency_max": 8000, "top_db": 80}
    saved = json.loads(ClapFeatureExtractor.from_dict(settings).save_pretrained(tmp_path).read_text())
    for name in ("feature_size", "sampling_rate", "hop_length", "fft_window_size", "max_length_s"):
        assert type(saved[name]) is int, (name, saved[name])
    for name in ("nb_max_samples", "nb_frequency_bins", "frequency_min", "frequency_max", "top_db"):
        assert type(saved[name]) is int, (name, saved[name])
    assert saved["max_length_s"] == 2 and saved["nb_max_samples"] == 2 * saved["sampling_rate"]
    assert type(saved["padding_value"]) is float  # 0.0, as in transformers' files
    assert ClapFeatureExtractor.from_pretrained(tmp_path) == ClapFeatureExtractor.from_dict(settings)
    with pytest.warns(UserWarning, match=r"max_length_s 2\.5 is not a whole number.*transformers"):
        half = ClapFeatureExtractor(max_length_s=2.5, frequency_max=7999.5)
    saved = json.loads(half.save_pretrained(tmp_path).read_text())
    assert saved["max_length_s"] == 2.5 and saved["frequency_max"] == 7999.5  # kept exact


def test_numpy_numbers_in_the_settings_are_saved_as_transformers_json_numbers(tmp_path: Path):
    """Settings computed with numpy (np.float32(2.0) seconds, an np.int64 rate) are written as the plain
    JSON ints transformers writes, not refused by the JSON writer nor kept as 2.0."""
    made = ClapFeatureExtractor(
        max_length_s=np.float32(2.0), sampling_rate=np.int64(16000), frequency_max=np.float32(8000.0)
    )
    saved = json.loads(made.save_pretrained(tmp_path).read_text())
    for name, value in (("max_length_s", 2), ("sampling_rate", 16000), ("frequency_max", 8000)):
        assert type(saved[name]) is int and saved[name] == value, (name, saved[name])


@pytest.mark.parametrize("padding", ["pad", "repeat", "repeatpad"])
def test_each_padding_fills_a_short_clip_to_the_window_as_transformers_does(padding):
    """The three paddings a preprocessor_config.json may name (transformers' ClapFeatureExtractor._np_extract_
    fbank_features): "pad" follows the clip with padding_value, "repeat" repeats it until the window is full
    (its last copy cut), "repeatpad" repeats it whole as often as it fits, then pads. Only "repeatpad" is in
    the committed fixture and the parity configs, so the other two gave repeatpad's features unnoticed."""
    extractor = ClapFeatureExtractor.from_dict({**UNFUSED, "padding": padding})
    wave = _signal(1.3).astype(np.float64)
    window = extractor.nb_max_samples
    copies = {"pad": 1, "repeat": window // len(wave) + 1, "repeatpad": window // len(wave)}[padding]
    filled = np.tile(wave, copies)[:window]
    filled = np.pad(filled, (0, window - len(filled)))
    got = extractor([wave], train=False)["input_features"][0, 0]
    np.testing.assert_array_equal(got, extractor.log_mel(filled).astype(np.float32))


def test_a_list_of_generators_gives_each_clip_its_own_crops_whatever_its_batch():
    """`__call__`'s promise for data parallel runs: with one generator per clip, a clip's random crop
    depends on its own generator alone, not on the clips before it in the batch."""
    unfused = ClapFeatureExtractor.from_dict(UNFUSED)
    a, b = _signal(12.0), _signal(13.0)[::-1].copy()
    together = unfused([a, b], rng=[np.random.default_rng(1), np.random.default_rng(2)])["input_features"]
    alone = unfused([b], rng=[np.random.default_rng(2)])["input_features"]
    np.testing.assert_array_equal(together[1], alone[0])


def test_a_random_crop_may_start_at_any_sample_a_window_fits_as_transformers_draws_it():
    """rand_trunc in training draws its start from [0, len - window] with one randint, as transformers does, so
    a seeded RandomState gives transformers' crop; a clip one sample over the window starts at 0 or 1."""
    unfused = ClapFeatureExtractor.from_dict(UNFUSED)
    window = unfused.nb_max_samples
    wave = _signal(11.0)[: window + 1].astype(np.float64)
    starts = set()
    for seed in range(8):
        start = np.random.RandomState(seed).randint(0, 2)  # transformers' draw for this clip
        got = unfused([wave], rng=np.random.RandomState(seed), train=True)["input_features"][0, 0]
        np.testing.assert_array_equal(got, unfused.log_mel(wave[start : start + window]).astype(np.float32))
        starts.add(start)
    assert starts == {0, 1}


def test_fusion_views_of_clips_just_over_the_window_without_transformers():
    """The fusion cases `test_matches_transformers_including_random_crops` pins only where transformers is
    installed: a clip longer than the window by less than a hop is one view four times and not marked
    longer; one with three possible window starts gets windows from each of them (the last start too); and
    the first view is the whole clip resized as torch's bilinear interpolation (align_corners=False) does."""
    fused = ClapFeatureExtractor.from_dict(FUSED)
    window, hop = fused.n_frames, fused.hop_length
    barely = _signal(11.0)[: fused.nb_max_samples + 100]  # 100 samples over: the same 1001 frames
    got = fused([barely], train=False)
    assert got["is_longer"].tolist() == [False]
    mel = fused.log_mel(barely.astype(np.float64)).astype(np.float32)
    for view in got["input_features"][0]:
        np.testing.assert_array_equal(view, mel)

    three_starts = _signal(11.0)[: (window + 1) * hop]  # 1003 frames: windows from 0, 1 and 2
    got = fused([three_starts], train=False)
    mel = fused.log_mel(three_starts.astype(np.float64)).astype(np.float32)
    assert mel.shape[0] == window + 2 and got["is_longer"].tolist() == [True]
    for start, view in enumerate(got["input_features"][0][1:]):
        np.testing.assert_array_equal(view, mel[start : start + window], err_msg=f"start {start}")

    long = _signal(23.0)
    mel = fused.log_mel(long.astype(np.float64))
    src = np.maximum((np.arange(window) + 0.5) * mel.shape[0] / window - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(int), mel.shape[0] - 1)
    i1 = np.minimum(i0 + 1, mel.shape[0] - 1)
    weight = (src - i0)[:, None]
    resized = (1 - weight) * mel[i0] + weight * mel[i1]
    got = fused([long], train=False)["input_features"][0, 0]
    # (torch's float32 source positions move a blend by up to ~1e-4 of a frame: a few thousandths of a dB)
    np.testing.assert_allclose(got, resized, atol=0.05)


def test_fusion_views_of_a_clip_with_two_window_starts_fill_the_empty_third_with_the_first():
    """A clip one hop over the window (1002 frames) has two window starts, so the third of the starts is
    empty: transformers takes start 0 for it. Without that, every such clip (10.01 s at 48 kHz) raised an
    IndexError, in evaluation and in training."""
    fused = ClapFeatureExtractor.from_dict(FUSED)
    window = fused.n_frames
    wave = _signal(11.0)[: fused.nb_max_samples + fused.hop_length]
    mel = fused.log_mel(wave.astype(np.float64)).astype(np.float32)
    assert mel.shape[0] == window + 1
    expected = [mel[0:window], mel[1 : 1 + window], mel[0:window]]
    for train in (False, True):
        got = fused([wave], rng=np.random.RandomState(0), train=train)
        assert got["is_longer"].tolist() == [True]
        for third, (view, want) in enumerate(zip(got["input_features"][0][1:], expected)):
            np.testing.assert_array_equal(view, want, err_msg=f"train={train}, third {third}")


def test_one_waveform_array_or_a_tuple_of_clips_is_a_batch_as_a_list_is():
    """`__call__` takes one array [samples] (a batch of one), an array [batch, samples], or a list or tuple
    of clips of any lengths: each gives what the list of the same clips gives."""
    unfused = ClapFeatureExtractor.from_dict(UNFUSED)
    a, b = _signal(1.0), _signal(0.5)
    as_list = unfused([a], train=False)
    one = unfused(a, train=False)
    np.testing.assert_array_equal(one["input_features"], as_list["input_features"])
    assert one["is_longer"].tolist() == [False]
    rows = np.stack([a, a[::-1]])
    np.testing.assert_array_equal(
        unfused(rows, train=False)["input_features"], unfused(list(rows), train=False)["input_features"]
    )
    np.testing.assert_array_equal(
        unfused((a, b), train=False)["input_features"], unfused([a, b], train=False)["input_features"]
    )


def test_a_numpy_generator_draws_crops_and_the_fusion_flag_as_a_random_state_does():
    """`rng` may be a ``np.random.Generator`` (``default_rng``): its draws are as uniform over the same
    range as a RandomState's. A rand_trunc clip one sample over the window starts at 0 or 1; fusion training
    on a batch of one short clip marks that clip longer (transformers' trick) rather than failing."""
    unfused = ClapFeatureExtractor.from_dict(UNFUSED)
    window = unfused.nb_max_samples
    wave = _signal(11.0)[: window + 1].astype(np.float64)
    crops = {start: unfused.log_mel(wave[start : start + window]).astype(np.float32) for start in (0, 1)}
    starts = set()
    for seed in range(16):
        got = unfused([wave], rng=np.random.default_rng(seed), train=True)["input_features"][0, 0]
        starts |= {start for start, crop in crops.items() if np.array_equal(got, crop)}
    assert starts == {0, 1}
    fused = ClapFeatureExtractor.from_dict(FUSED)
    assert fused([_signal(1.0)], rng=np.random.default_rng(0), train=True)["is_longer"].tolist() == [True]


def test_a_list_of_generators_must_have_one_generator_per_clip():
    """Fewer generators than clips would drop the clips left over from the batch without a word."""
    unfused = ClapFeatureExtractor.from_dict(UNFUSED)
    generators = [np.random.default_rng(0), np.random.default_rng(1)]
    with pytest.raises(ValueError, match="rng is a list of 2 generators for 3 waveforms"):
        unfused([_signal(1.0)] * 3, rng=generators)


def test_rand_trunc_marks_only_clips_longer_than_the_window_as_longer():
    """As transformers: a clip is longer only when it has more samples than the window (one of exactly 10 s
    is not), and only fusion marks a random clip longer in training when none is."""
    unfused = ClapFeatureExtractor.from_dict(UNFUSED)
    exact = _signal(11.0)[: unfused.nb_max_samples]
    for train in (False, True):
        got = unfused([exact, _signal(1.0)], rng=np.random.RandomState(0), train=train)
        assert got["is_longer"].tolist() == [False, False], train
    over = _signal(11.0)[: unfused.nb_max_samples + 1]
    assert unfused([over], train=False)["is_longer"].tolist() == [True]


@pytest.mark.parametrize("padding", ["pad", "repeatpad"])
def test_a_short_clip_is_padded_with_padding_value(padding):
    """`padding_value` of the settings fills what the clip (or its whole repeats) leaves of the window."""
    extractor = ClapFeatureExtractor.from_dict({**UNFUSED, "padding": padding, "padding_value": 0.5})
    wave = _signal(0.7).astype(np.float64)
    window = extractor.nb_max_samples
    filled = np.tile(wave, 1 if padding == "pad" else window // len(wave))
    filled = np.pad(filled, (0, window - len(filled)), constant_values=0.5)
    got = extractor([wave], train=False)["input_features"][0, 0]
    np.testing.assert_array_equal(got, extractor.log_mel(filled).astype(np.float32))


def test_features_without_a_sampling_rate_warn_as_transformers_does():
    # transformers' ClapFeatureExtractor warns when sampling_rate is left out ("strongly recommended ...
    # silent errors"); here a 44.1 kHz file read with soundfile and passed without it was taken as 48 kHz,
    # unsaid.
    extractor = ClapFeatureExtractor.from_dict(UNFUSED)
    wave = np.zeros(44100, np.float32)
    with pytest.warns(UserWarning, match=f"no sampling_rate given: the waveforms are taken to be at {SR} Hz"):
        extractor([wave], train=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        extractor([wave], train=False, sampling_rate=SR)
        extractor([wave], train=False, sampling_rate=SR, truncation="fusion")


def test_waveforms_at_another_rate_are_refused_saying_how_to_resample_an_array_in_memory():
    """An app holding 44.1 kHz audio in memory was told only 'waveforms are at 44100 Hz; this extractor
    expects 48000 Hz', with no way named to get there short of writing a file for `audiotrain.audio.load`."""
    from audiotrain.audio import resample

    extractor = ClapFeatureExtractor.from_dict(UNFUSED)
    wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(44100) / 44100)).astype(np.float32)
    with pytest.raises(ValueError) as refused:
        extractor([wave], train=False, sampling_rate=44100)
    hint = re.search(r"resample\(waveform, 44100, \d+\)", str(refused.value))
    assert "waveforms are at 44100 Hz; this extractor expects 48000 Hz" in str(refused.value) and hint
    advised = eval(hint.group(0), {"resample": resample, "waveform": wave})  # the call it names works
    assert extractor([advised], train=False, sampling_rate=SR)["input_features"].shape[0] == 1


def test_a_long_recording_in_memory_is_not_copied_whole_to_embed_its_first_window():
    """An app embedding a 5-minute recording it holds (float32, 58 MB) with the default rand_trunc front end
    reads only its centre 10 s (train=False), but a float64 copy of the whole recording (115 MB) was made
    first, for every clip of the batch."""
    import tracemalloc

    extractor = ClapFeatureExtractor.from_dict(UNFUSED)
    wave = np.zeros(SR * 300, np.float32)
    wave[SR * 145 : SR * 155] = 0.3 * np.sin(2 * np.pi * 440 * np.arange(SR * 10) / SR)
    tracemalloc.start()
    try:
        got = extractor([wave], train=False, sampling_rate=SR)["input_features"]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < wave.nbytes, f"{peak / 1e6:.0f} MB traced for a {wave.nbytes / 1e6:.0f} MB recording"
    window = extractor([wave[SR * 145 : SR * 155]], train=False, sampling_rate=SR)["input_features"]
    np.testing.assert_array_equal(got, window)  # the same features as its centre window alone


def test_an_int_seed_as_rng_is_refused_naming_rng():
    """A seed (`rng=0`, as many libraries take it) was a raw AttributeError ("'int' object has no attribute
    'choice'") from inside the crop; now a TypeError naming `rng` and the generator to pass instead."""
    extractor = ClapFeatureExtractor(truncation="fusion")
    long_clip = np.full(12 * 48_000, 0.1, dtype=np.float32)
    with pytest.raises(TypeError, match=r"rng.*RandomState\(0\)"):
        extractor(long_clip, rng=0, sampling_rate=48_000)
    with pytest.raises(TypeError, match=r"rng"):
        extractor([long_clip], rng=[0], sampling_rate=48_000)


def test_a_flat_list_of_samples_is_one_clip_as_in_transformers():
    """transformers takes a plain list of numbers as one clip; here it was refused as "waveform 0 must be a
    non-empty mono array [samples], got shape ()", which named no list."""
    extractor = ClapFeatureExtractor(truncation="rand_trunc")
    samples = list(np.sin(np.arange(4_000) / 7.0) * 0.5)
    got = extractor(samples, sampling_rate=48_000, train=False)
    want = extractor(np.asarray(samples), sampling_rate=48_000, train=False)
    np.testing.assert_array_equal(got["input_features"], want["input_features"])


def test_eval_mode_embeds_the_centre_window_the_recipe_scores_and_start_stays_reachable():
    """A user embedding a long clip with train=False (README) gets the window the CLAP recipe's evaluation
    scored (the centre: `CaptionDataset` crops it, train=False), not its first seconds."""
    from audiotrain.datasets.captions import CaptionDataset, CaptionedClip

    unfused = ClapFeatureExtractor.from_dict(UNFUSED)
    wave = _signal(13.0)
    clip = CaptionedClip(path=Path("long.wav"), name="long.wav", captions=("a sweep",))
    dataset = CaptionDataset(
        [clip],
        lambda caps: {
            "input_ids": np.zeros((len(caps), 4), int),
            "attention_mask": np.ones((len(caps), 4), int),
        },
        sampling_rate=SR,
        crop_samples=unfused.nb_max_samples,
        train=False,
        load=lambda path, sr, mono: (wave, sr),
    )
    scored = unfused([dataset[0]["waveform"]], sampling_rate=SR, train=False)["input_features"]
    user = unfused([wave], sampling_rate=SR, train=False)
    np.testing.assert_array_equal(user["input_features"], scored)
    assert user["is_longer"].tolist() == [True]
    start = unfused([wave], sampling_rate=SR, train=False, window="start")["input_features"]
    np.testing.assert_array_equal(
        start, unfused([wave[: 10 * SR]], sampling_rate=SR, train=False)["input_features"]
    )
    with pytest.raises(ValueError, match="window must be one of"):
        unfused([wave], sampling_rate=SR, train=False, window="middle")
