"""audiotrain.audio: reading every supported format, slicing, resampling, and every kind of bad file."""

import gc
import os
import pickle
import re
import subprocess
import sys
import threading
import warnings
from pathlib import Path

from audiotrain.audio import (
    AudioError,
    SkipCounter,
    channel_peaks,
    decoded_length,
    get_duration,
    header_length,
    load,
    load_span,
    resample,
    save,
)

import numpy as np
import pytest
import soundfile as sf

SR = 16000


@pytest.fixture
def stereo():
    t = np.arange(2 * SR) / SR
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    right = 0.25 * np.sin(2 * np.pi * 660 * t)
    return np.stack([left, right], axis=1).astype(np.float32)  # [samples, channels]


def _write(path, data, sr=SR, **kwargs):
    sf.write(str(path), data, sr, **kwargs)
    return path


@pytest.mark.parametrize("suffix", ["wav", "flac", "ogg", "mp3"])
def test_load_reads_each_format_as_float32(tmp_path, stereo, suffix):
    path = _write(tmp_path / f"a.{suffix}", stereo)
    y, sr = load(path)
    assert sr == SR and y.dtype == np.float32 and y.ndim == 1
    expected = stereo.mean(axis=1)
    # Lossy codecs shift and smear samples; the lossless ones return the 16-bit PCM values.
    if suffix in ("wav", "flac"):
        assert y.shape == expected.shape
        np.testing.assert_allclose(y, expected, atol=1.0 / 2**15)
    else:
        assert abs(len(y) - len(expected)) < 0.05 * SR
        assert 0.1 < np.abs(y).max() < 1.0
    both, _ = load(path, mono=False)
    assert both.shape[0] == 2 and both.dtype == np.float32


def test_offset_and_duration_read_the_same_samples_as_slicing(tmp_path, stereo):
    for suffix in ("wav", "flac"):
        path = _write(tmp_path / f"s.{suffix}", stereo)
        full, _ = load(path, mono=False)
        part, sr = load(path, mono=False, offset=0.25, duration=0.5)
        np.testing.assert_array_equal(part, full[:, 4000:12000])
        tail, _ = load(path, offset=1.5)
        np.testing.assert_array_equal(tail, full.mean(axis=0)[24000:])


# librosa.load reaches audioread (Python < 3.13), which imports the deprecated aifc, audioop and sunau: the
# reference's warnings, not audiotrain's (`load` does not use audioread), failed this test under -W error.
@pytest.mark.filterwarnings("ignore:'(aifc|audioop|sunau)' is deprecated:DeprecationWarning")
def test_load_resamples_like_librosa(tmp_path, stereo):
    import librosa

    path = _write(tmp_path / "r.wav", stereo)
    y, sr = load(path, sr=22050)
    ref, ref_sr = librosa.load(str(path), sr=22050)
    assert sr == ref_sr == 22050
    np.testing.assert_allclose(y, ref, atol=1e-6)
    np.testing.assert_allclose(
        resample(stereo.T, SR, 48000), librosa.resample(stereo.T, orig_sr=SR, target_sr=48000), atol=1e-6
    )


def test_resample_keeps_dtype_and_leading_axes(stereo):
    batch = np.stack([stereo.T, stereo.T])  # [2, 2, samples]
    out = resample(batch, SR, 8000)
    assert out.shape == (2, 2, SR) and out.dtype == np.float32
    assert resample(stereo[:, 0].astype(np.float64), SR, 8000).dtype == np.float64
    assert resample(stereo[:, 0], SR, SR) is not None
    with pytest.raises(ValueError, match="res_type"):
        resample(stereo[:, 0], SR, 8000, res_type="kaiser_best")


def test_a_resampled_length_is_rounded_up_where_soxr_gives_a_sample_fewer(tmp_path):
    """`resample`'s length rule is librosa's, ceil(samples * target / orig), the count `decoded_length` and the
    chord feature cache expect: soxr gives a sample fewer for many lengths (16001 samples from 16000 to 22050
    Hz: 22051 of 22052), and the last is a zero, as librosa pads."""
    data = (0.3 * np.random.default_rng(0).standard_normal((16001, 2))).astype(np.float32)
    path = _write(tmp_path / "odd.wav", data, subtype="FLOAT")
    mixed = resample(np.ascontiguousarray(data.mean(axis=1)), SR, 22050)
    assert mixed.shape == (22052,) and mixed[-1] == 0.0
    np.testing.assert_array_equal(load(path, sr=22050)[0], mixed)  # (mixed and resampled a block at a time)
    both, _ = load(path, sr=22050, mono=False)  # (resampled whole)
    assert both.shape == (2, 22052) and both[:, -1].tolist() == [0.0, 0.0]


def test_the_header_length_is_exact_for_wav_aiff_and_flac_and_an_estimate_for_mp3_and_ogg(tmp_path, stereo):
    """The chord feature cache checks an entry's frames against the header's count only where it is exact."""
    for suffix, exact in (("wav", True), ("aiff", True), ("flac", True), ("mp3", False), ("ogg", False)):
        frames, rate, is_exact = header_length(_write(tmp_path / f"a.{suffix}", stereo))
        assert (rate, is_exact) == (SR, exact), suffix
        if exact:
            assert frames == len(stereo), suffix


def test_get_duration_reads_the_header(tmp_path, stereo):
    assert get_duration(_write(tmp_path / "d.flac", stereo)) == pytest.approx(2.0)


def test_get_duration_rejects_files_that_cannot_be_read(tmp_path, stereo):
    # Song scans check headers only, so a truncated WAV must be caught here and not at loading.
    files = _bad_files(tmp_path, stereo)
    header_checkable = (
        "missing",
        "empty",
        "zero_length",
        "corrupt",
        "corrupt_noise",
        "not_audio",
        "not_a_file",
    )
    for label in header_checkable:
        with pytest.raises(AudioError) as info:
            get_duration(files[label])
        assert info.value.cause == label.split("_noise")[0], label


def _bad_files(tmp_path, stereo):
    good = (_write(tmp_path / "good.wav", stereo)).read_bytes()
    flac = (_write(tmp_path / "good.flac", stereo)).read_bytes()
    files = {
        "missing": tmp_path / "nope.wav",
        "empty": tmp_path / "empty.wav",
        "zero_length": tmp_path / "header_only.wav",
        "corrupt": tmp_path / "truncated.wav",
        "corrupt_flac": tmp_path / "truncated.flac",
        "corrupt_noise": tmp_path / "noise.wav",
        "not_audio": tmp_path / "notes.txt",
        "unsupported_format": tmp_path / "song.m4a",
        "non_finite": tmp_path / "nan.wav",
        "not_a_file": tmp_path / "folder.wav",
    }
    files["empty"].write_bytes(b"")
    files["zero_length"].write_bytes(good[:44])
    files["corrupt"].write_bytes(good[: len(good) // 2])
    files["corrupt_flac"].write_bytes(flac[: len(flac) // 2])
    files["corrupt_noise"].write_bytes(np.random.default_rng(0).bytes(4000))
    files["not_audio"].write_text("a shopping list, not a song\n")
    files["unsupported_format"].write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(100))
    _write(files["non_finite"], np.array([0.0, np.nan, 0.5, np.inf], dtype=np.float32), subtype="FLOAT")
    files["not_a_file"].mkdir()
    return files


def test_every_bad_file_raises_audio_error_naming_file_and_cause(tmp_path, stereo):
    for label, path in _bad_files(tmp_path, stereo).items():
        with pytest.raises(AudioError) as info:
            load(path)
        assert info.value.cause == label.split("_flac")[0].split("_noise")[0], label
        assert info.value.path == path
        assert str(path) in str(info.value)


def test_non_finite_samples_are_found_however_the_file_is_read(tmp_path):
    """A NaN or Inf sample is refused on every path of `load`: a stereo file mixed down, and a file
    resampled, are decoded a block at a time, and each block's non-finite samples count as the whole
    file's do (one NaN spreads over hundreds of samples once resampled)."""
    bad = np.zeros((SR, 2), dtype=np.float32)
    bad[100, 1] = np.nan
    stereo_path = _write(tmp_path / "nan_stereo.wav", bad, subtype="FLOAT")
    mono_path = _write(tmp_path / "nan_mono.wav", bad[:, 1], subtype="FLOAT")
    for path, kwargs in (
        (stereo_path, {}),
        (stereo_path, {"sr": 8000}),
        (stereo_path, {"mono": False}),
        (mono_path, {"sr": 8000}),
    ):
        with pytest.raises(AudioError) as info:
            load(path, **kwargs)
        assert info.value.cause == "non_finite", (path.name, kwargs)


def test_offset_past_the_end_and_bad_arguments(tmp_path, stereo):
    path = _write(tmp_path / "short.wav", stereo)
    with pytest.raises(AudioError, match="beyond the end") as info:
        load(path, offset=5.0)
    assert info.value.cause == "out_of_range"
    # An offset at the very end is out of range too: there is no sample to read, yet the file is sound.
    mono = _write(tmp_path / "short_mono.wav", stereo[:, 0])
    for read, kwargs in ((path, {}), (path, {"sr": 8000}), (mono, {}), (mono, {"mono": False})):
        with pytest.raises(AudioError) as info:
            load(read, offset=2.0, **kwargs)
        assert info.value.cause == "out_of_range", (read.name, kwargs)
    for kwargs in ({"offset": -1.0}, {"duration": 0.0}, {"sr": -8000}, {"sr": 22050.5}):
        with pytest.raises(ValueError):
            load(path, **kwargs)
    # Not a number of seconds to seek: the same ValueError, not an OverflowError from the frame count.
    for kwargs in ({"offset": float("inf")}, {"offset": float("nan")}, {"duration": float("inf")}):
        with pytest.raises(ValueError, match="offset must be a finite|duration must be a positive"):
            load(path, **kwargs)
    # A sample rate that is no positive whole number is named, with its type: int(sr) raised its own
    # errors ("cannot convert float NaN to integer", OverflowError for inf), sr=True loaded at 1 Hz, and
    # the text "16000" read as "got 16000".
    for sr, shown in ((float("nan"), "nan"), (float("inf"), "inf"), (True, "True"), ("16000", "'16000'")):
        with pytest.raises(ValueError, match=f"sr must be a positive integer or None, got {shown}$"):
            load(path, sr=sr)


def test_skip_counter_counts_and_reports_by_cause(tmp_path, stereo):
    files = _bad_files(tmp_path, stereo)
    skips = SkipCounter(max_examples=1)
    good = skips.try_load(tmp_path / "good.wav")
    assert good is not None and len(skips) == 0
    assert skips.report() == "skipped 0 audio files"
    for path in files.values():
        assert skips.try_load(path) is None
    assert skips.total == len(files)
    assert skips.to_dict()["corrupt"] == 3 and skips.to_dict()["missing"] == 1
    report = skips.report()
    assert report.startswith(f"skipped {len(files)} audio files:")
    assert "3 corrupt" in report and str(files["missing"]) in report

    other = SkipCounter()
    other.record(AudioError(tmp_path / "x.wav", "missing"))
    skips.merge(other)
    assert skips.to_dict()["missing"] == 2


def test_skip_counter_keeps_max_examples_per_cause_and_reports_the_commonest_cause_first(tmp_path):
    """A run over thousands of bad files reports `max_examples` of each cause, merged from workers too, and
    the cause that skipped most files first (not the first in the alphabet)."""
    skips = SkipCounter(max_examples=2)
    for name in "abc":
        skips.record(AudioError(tmp_path / f"{name}.wav", "too_short"))
    skips.record(AudioError(tmp_path / "d.wav", "corrupt"))
    worker = SkipCounter(max_examples=2)
    for name in "ef":
        worker.record(AudioError(tmp_path / f"{name}.wav", "too_short"))
    skips.merge(worker)
    assert skips.examples["too_short"] == [f"{tmp_path / name}.wav: audio is too short" for name in "ab"]
    lines = skips.report().splitlines()
    assert lines[0] == "skipped 6 audio files:" and len(lines) == 3
    assert lines[1] == "  5 too_short: " + "; ".join(skips.examples["too_short"])
    assert lines[2] == f"  1 corrupt: {tmp_path / 'd.wav'}: file is corrupt or truncated"


def test_skip_counter_docstring_example_runs_and_prints_what_it_shows(tmp_path, monkeypatch):
    """help(SkipCounter)'s example used an undefined `paths` and showed no report: a user copying it got a
    NameError. Run it as doctest does, in a folder without the file it names."""
    import doctest

    import audiotrain.audio

    monkeypatch.chdir(tmp_path)
    tests = doctest.DocTestFinder().find(SkipCounter, globs=vars(audiotrain.audio).copy())
    runner = doctest.DocTestRunner()
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False) == doctest.TestResults(failed=0, attempted=3)


def test_load_returns_a_float_files_samples_as_stored_and_scales_pcm_to_one(tmp_path):
    """load's docstring said "float32 in [-1, 1]"; a float WAV beyond 1 comes back as stored (librosa's
    reading too), only integer formats are scaled."""
    samples = np.array([0.1, 3.0, -0.2] * 100, np.float32)
    y, _ = load(_write(tmp_path / "float.wav", samples, subtype="FLOAT"))
    assert y.max() == np.float32(3.0)
    y, _ = load(_write(tmp_path / "pcm.wav", samples / 4, subtype="PCM_16"))
    assert np.abs(y).max() <= 1.0


def test_skip_counter_is_thread_safe(tmp_path):
    skips = SkipCounter()
    error = AudioError(tmp_path / "x.wav", "corrupt")

    def work():
        for _ in range(2000):
            skips.record(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert skips.total == 8000


def test_errors_and_counters_survive_pickling_from_worker_processes(tmp_path):
    error = AudioError(tmp_path / "x.wav", "corrupt", "flac decoder lost sync")
    again = pickle.loads(pickle.dumps(error))
    assert (again.path, again.cause, again.detail, str(again)) == (
        error.path,
        error.cause,
        error.detail,
        str(error),
    )
    skips = SkipCounter()
    skips.record(error)
    copy = pickle.loads(pickle.dumps(skips))
    copy.record(error)
    assert copy.to_dict() == {"corrupt": 2} and skips.total == 1


def test_audio_error_rejects_unknown_causes(tmp_path):
    with pytest.raises(ValueError, match="unknown AudioError cause"):
        AudioError(tmp_path, "haunted")


def test_the_files_load_opens_are_closed_by_it_not_by_the_garbage_collector(tmp_path, stereo):
    """A loader reading thousands of files holds no descriptor past each call ("ResourceWarning: unclosed
    file"), a file read through a patched header too."""
    good = _write(tmp_path / "good.wav", stereo)
    raw = bytearray(good.read_bytes())
    data = raw.find(b"data")
    raw[4:8] = raw[data + 4 : data + 8] = bytes(4)  # (unfinalised: read through `_PatchedFile`)
    (tmp_path / "unfinalised.wav").write_bytes(bytes(raw))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for path in (good, tmp_path / "unfinalised.wav"):
            load(path)
            get_duration(path)
            decoded_length(path)
        gc.collect()
    assert [str(warning.message) for warning in caught if warning.category is ResourceWarning] == []


def test_a_broken_symlink_is_missing_saying_where_it_points(tmp_path):
    """A link into an unmounted drive or a moved folder: the error names its target, as `ls -l` would."""
    link = tmp_path / "song.wav"
    link.symlink_to(tmp_path / "unmounted" / "song.wav")
    with pytest.raises(AudioError) as info:
        load(link)
    assert info.value.cause == "missing"
    assert f"a symlink to {tmp_path / 'unmounted' / 'song.wav'}, which does not exist" in str(info.value)


def test_the_lowest_sample_rate_accepted_is_1000_hz(tmp_path, stereo):
    at_least = _write(tmp_path / "1000.wav", stereo[:1000], sr=1000)
    assert load(at_least)[0].shape == (1000,) and load(at_least)[1] == 1000
    with pytest.raises(AudioError) as info:
        load(_write(tmp_path / "999.wav", stereo[:999], sr=999))
    assert info.value.cause == "low_sample_rate"


def test_channel_peaks_are_the_largest_absolute_sample_of_each_channel(tmp_path, stereo):
    """What predict's silence note states in dBFS: a channel's negative excursion counts as its positive one."""
    data = stereo.copy()
    data[100, 0] = -0.75  # (the channel's positive peak is 0.5)
    path = _write(tmp_path / "peaks.wav", data, subtype="FLOAT")
    np.testing.assert_array_equal(channel_peaks(path), [0.75, np.abs(stereo[:, 1]).max()])
    # A FLAC that fails while it decodes is corrupt, as `load` says, not the decoder's own error.
    with pytest.raises(AudioError) as info:
        channel_peaks(_bad_files(tmp_path, stereo)["corrupt_flac"])
    assert info.value.cause == "corrupt"


def test_unreadable_permissions_are_reported(tmp_path, stereo, monkeypatch):
    path = _write(tmp_path / "locked.wav", stereo)
    path.chmod(0)
    if os.geteuid() == 0:  # root reads any file: the permission check is what a user account would see
        import audiotrain.audio

        real_access = os.access
        monkeypatch.setattr(
            audiotrain.audio.os, "access", lambda p, mode: False if Path(p) == path else real_access(p, mode)
        )
    with pytest.raises(AudioError) as info:
        load(path)
    assert info.value.cause == "unreadable"


# short rows go interleaved (in one call, or one per core when there are many), long rows to threads
@pytest.mark.parametrize("n_rows, n_samples", [(5, 3_000), (25, 5_000), (5, 25_000)])
def test_batched_resample_equals_resampling_each_row(n_rows, n_samples):
    from audiotrain.audio import resample

    import soxr

    rows = np.random.default_rng(0).normal(size=(n_rows, n_samples)).astype(np.float32)
    batched = resample(rows, 44100, 22050)
    for row, out in zip(rows, batched):
        np.testing.assert_array_equal(
            out, soxr.resample(row, 44100, 22050, quality="soxr_hq")[: out.shape[-1]]
        )
    np.testing.assert_array_equal(resample(rows[:1], 44100, 22050)[0], batched[0])


def test_a_flac_whose_header_gives_no_length_reads_as_the_same_flac_with_it(tmp_path, stereo):
    """STREAMINFO total samples 0 means "unknown" (an encoder writing to a pipe cannot go back to fill it in):
    libsndfile took it for 2^63 - 1 frames, so get_duration gave 5.8e14 s and load was "corrupt or
    truncated (Internal psf_fseek() failed.)"."""
    good = _write(tmp_path / "good.flac", stereo)
    raw = bytearray(good.read_bytes())
    assert raw[:4] == b"fLaC" and raw[4] & 0x7F == 0  # STREAMINFO first; its total samples end at byte 26
    raw[21] &= 0xF0
    raw[22:26] = bytes(4)
    streamed = tmp_path / "streamed.flac"
    streamed.write_bytes(bytes(raw))
    assert get_duration(streamed) == get_duration(good) == 2.0
    np.testing.assert_array_equal(load(streamed)[0], load(good)[0])
    np.testing.assert_array_equal(load(streamed, mono=False)[0], load(good, mono=False)[0])
    np.testing.assert_array_equal(load(streamed, sr=8000)[0], load(good, sr=8000)[0])
    np.testing.assert_array_equal(load(streamed, offset=0.5, duration=0.25)[0], load(good)[0][8000:12000])
    np.testing.assert_array_equal(load_span(streamed, 8000, 100, 4000), load_span(good, 8000, 100, 4000))
    assert decoded_length(streamed) == decoded_length(good)


def test_an_unfinalised_wav_reads_to_the_end_of_the_file(tmp_path, stereo):
    """A recorder killed before it wrote its sizes leaves 0 in the header, with every sample after it: that
    was 'audio stream has no samples' (the 0xFFFFFFFF that streaming writers leave already read to the end)."""
    for subtype in ("PCM_16", "IMA_ADPCM"):
        good = _write(tmp_path / f"good_{subtype}.wav", stereo, subtype=subtype)
        raw = bytearray(good.read_bytes())
        data = raw.find(b"data")
        raw[4:8] = raw[data + 4 : data + 8] = bytes(4)
        unfinalised = tmp_path / f"unfinalised_{subtype}.wav"
        unfinalised.write_bytes(bytes(raw))
        np.testing.assert_array_equal(load(unfinalised)[0], load(good)[0])
        assert get_duration(unfinalised) == get_duration(good)
        np.testing.assert_array_equal(
            load(unfinalised, offset=0.5, duration=0.25)[0], load(good)[0][8000:12000]
        )
        # A streaming writer (ffmpeg to a pipe, a live recording) leaves 0xFFFFFFFF: unknown, not truncated.
        raw[4:8] = raw[data + 4 : data + 8] = b"\xff\xff\xff\xff"
        streamed = tmp_path / f"streamed_{subtype}.wav"
        streamed.write_bytes(bytes(raw))
        np.testing.assert_array_equal(load(streamed)[0], load(good)[0])
        assert get_duration(streamed) == get_duration(good)
        # A header whose data chunk is empty, followed by another chunk, is an empty file still: the chunk's
        # 12 bytes are not 3 frames of 16-bit stereo (ADPCM's 2048-byte blocks hold none of them anyway).
        empty = bytearray(good.read_bytes()[: data + 8]) + b"LIST" + (4).to_bytes(4, "little") + b"INFO"
        empty[data + 4 : data + 8] = bytes(4)
        (tmp_path / f"empty_{subtype}.wav").write_bytes(bytes(empty))
        with pytest.raises(AudioError) as info:
            load(tmp_path / f"empty_{subtype}.wav")
        assert info.value.cause == "zero_length", subtype


@pytest.mark.parametrize("suffix", ["wav", "flac", "mp3", "ogg"])
def test_load_span_gives_the_samples_of_the_whole_file_it_cuts(tmp_path, stereo, suffix):
    noise = np.random.default_rng(0).uniform(-0.3, 0.3, (6 * SR, 2)).astype(np.float32)
    path = _write(tmp_path / f"x.{suffix}", np.concatenate([stereo, noise]))
    for sr in (SR, 22050, 48000):
        whole = load(path, sr=sr)[0]
        for start in (0, sr + 17, len(whole) - sr // 2, len(whole) - 10):
            span = load_span(path, sr, start, sr // 4)
            assert span.dtype == np.float32 and len(span) == len(whole[start : start + sr // 4])
            np.testing.assert_allclose(span, whole[start : start + sr // 4], atol=1e-6)
            if sr == SR and suffix in ("wav", "flac"):
                np.testing.assert_array_equal(span, whole[start : start + sr // 4])


def test_load_span_takes_the_sample_rates_load_takes_and_names_a_bad_argument(tmp_path):
    """``load_span(path, sr=16000.0, ...)``, which ``load`` takes, failed with "TypeError: slice indices must
    be integers"; sr=0 with a ZeroDivisionError, sr=None and sr="16000" with TypeErrors naming no
    argument; a start of 1.5 samples read from a fractional offset."""
    path = _write(tmp_path / "x.wav", np.random.default_rng(0).uniform(-0.3, 0.3, SR).astype(np.float32))
    expected = load(path, sr=8000)[0][100:600]
    for sr in (8000.0, np.int64(8000)):
        np.testing.assert_array_equal(load_span(path, sr, 100, 500), expected)
    np.testing.assert_array_equal(load_span(path, 8000, 100.0, np.int64(500)), expected)
    for sr in (0, -8000, None, "8000", 8000.5, float("nan"), True):
        with pytest.raises(ValueError, match=re.escape(f"sr must be a positive integer, got {sr!r}")):
            load_span(path, sr, 0, 100)
    for start, length, name in ((1.5, 100, "start"), ("0", 100, "start"), (0, float("inf"), "length")):
        with pytest.raises(ValueError, match=f"{name} must be a whole number of samples"):
            load_span(path, 8000, start, length)


@pytest.mark.parametrize("suffix", ["wav", "flac", "aiff"])
def test_save_writes_what_load_reads_back_and_refuses_what_it_would_clip_or_replace(tmp_path, stereo, suffix):
    """Writing a separated stem had no function here: soundfile took a model's [channels, samples] output
    as thousands of channels ("Format not recognised") and clipped samples beyond 1 in PCM without a word."""
    import mlx.core as mx

    stems = stereo.T  # [channels, samples], as load(mono=False) returns it
    path = save(tmp_path / f"stems.{suffix}", mx.array(stems), SR)  # a model's output, an mx.array
    back, sr = load(path, mono=False)
    assert sr == SR and back.shape == stems.shape
    np.testing.assert_allclose(back, stems, atol=1 / 32768)  # PCM_16 by default
    mono = load(save(tmp_path / f"mono.{suffix}", stems[0], float(SR)))[0]
    np.testing.assert_allclose(mono, stems[0], atol=1 / 32768)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save(path, stems, SR)  # nothing a user made is replaced unasked
    save(path, 0.5 * stems, SR, overwrite=True)
    np.testing.assert_allclose(load(path, mono=False)[0], 0.5 * stems, atol=1 / 32768)
    loud = 3 * stems  # peaks at 1.5
    with pytest.raises(ValueError, match=r"y peaks at 1\.5, beyond \[-1, 1\], which .* would clip"):
        save(tmp_path / f"loud.{suffix}", loud, SR)
    with pytest.raises(ValueError, match=r"pass y\.T"):
        save(tmp_path / f"x.{suffix}", stereo, SR)  # channels-last
    bad = stems.copy()
    bad[1, 7] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN or Inf samples, the first at index \(1, 7\)"):
        save(tmp_path / f"x.{suffix}", bad, SR)
    for sr in (0, None, 16000.5, "16000"):
        with pytest.raises(ValueError, match=re.escape(f"sr must be a positive integer, got {sr!r}")):
            save(tmp_path / f"x.{suffix}", stems, sr)
    with pytest.raises(TypeError, match="float samples"):
        save(tmp_path / f"x.{suffix}", (stems * 32767).astype(np.int16), SR)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"stems.{suffix}", f"mono.{suffix}"])
    if suffix != "flac":  # a float subtype keeps samples beyond 1
        save(tmp_path / f"loud.{suffix}", loud, SR, subtype="float")
        np.testing.assert_array_equal(load(tmp_path / f"loud.{suffix}", mono=False)[0], loud)


def test_save_names_a_suffix_or_subtype_it_cannot_write(tmp_path):
    with pytest.raises(ValueError, match=r"suffix must be one of .*got '\.mp4'"):
        save(tmp_path / "x.mp4", np.zeros(100, np.float32), SR)
    with pytest.raises(ValueError, match=r"FLAC files cannot hold subtype 'FLOAT'"):
        save(tmp_path / "x.flac", np.zeros(100, np.float32), SR, subtype="FLOAT")
    assert not list(tmp_path.iterdir())


def test_save_into_a_new_folder_creates_it_and_names_a_file_in_the_way(tmp_path):
    """`save(tmp_path / "stems" / "a.wav", ...)` failed with the OS's "No such file or directory:
    '.../stems/.tmp-67f42a69....wav'", naming a file the user never asked for, where the chord writers
    (`write_lab`, `write_jams`) create the folder."""
    y = np.zeros(100, np.float32)
    path = save(tmp_path / "stems" / "song1" / "a.wav", y, SR)
    assert load(path, sr=None)[0].shape == y.shape
    (tmp_path / "taken").write_text("notes")
    with pytest.raises(
        NotADirectoryError,
        match=re.escape(f"save: cannot write {tmp_path / 'taken' / 'x' / 'a.wav'}")
        + r": .*taken is a file, not a folder",
    ):
        save(tmp_path / "taken" / "x" / "a.wav", y, SR)
    assert (tmp_path / "taken").read_text() == "notes"
    # A link to a drive that is not plugged in raised a bare StopIteration.
    (tmp_path / "drive").symlink_to(tmp_path / "unplugged")
    with pytest.raises(NotADirectoryError, match=r"drive is a link to .*unplugged, which does not exist"):
        save(tmp_path / "drive" / "stems" / "a.wav", y, SR)


def test_a_leading_tilde_is_the_home_folder_for_save_and_the_readers(tmp_path, monkeypatch):
    """`save("~/take.wav", ...)` writes in the home folder (as export_history and checkpoint paths read ~),
    and `load("~/take.wav")` said "~/take.wav: file does not exist" for the file just written."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    y = np.linspace(-0.5, 0.5, 800, dtype=np.float32)
    assert save("~/take.wav", y, SR) == tmp_path / "home" / "take.wav"
    np.testing.assert_allclose(load("~/take.wav", sr=None)[0], y, atol=1 / 32768)
    np.testing.assert_allclose(load_span("~/take.wav", SR, 100, 50), y[100:150], atol=1 / 32768)
    assert get_duration("~/take.wav") == 800 / SR
    assert decoded_length("~/take.wav")[0] == 800 and channel_peaks("~/take.wav").shape == (1,)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]  # no folder named ~ here


def test_save_writes_a_half_precision_models_output(tmp_path, stereo):
    """A Trainer(precision="bf16-true") model's stems are bfloat16 mx.arrays and a float16 model's float16:
    save raised numpy's "'bfloat16' is not a valid PEP 3118 buffer format string" and soundfile's "dtype
    must be one of ['float32', 'float64', 'int16', 'int32'] and not 'float16'"."""
    import mlx.core as mx

    stems = stereo.T[:, :4000]
    for name, y in (
        ("bf16.wav", mx.array(stems).astype(mx.bfloat16)),
        ("f16.wav", stems.astype(np.float16)),
    ):
        back = load(save(tmp_path / name, y, SR), mono=False)[0]
        np.testing.assert_allclose(back, stems, atol=1 / 128)  # bfloat16 keeps 8 bits of mantissa


def test_offsets_and_durations_in_seconds_round_to_the_nearest_sample_at_44100_hz(tmp_path):
    """At 44.1 kHz, k / 44100 * 44100 falls just below k for many k (15 among them): truncating it read from
    one sample early and one sample short, and `load_span` (whose offsets are such fractions) then differed
    from the whole file's resample by far more than float32 rounding."""
    noise = np.random.default_rng(0).uniform(-0.3, 0.3, (3 * 44100, 2)).astype(np.float32)
    path = _write(tmp_path / "cd.wav", noise, sr=44100)
    assert 15 / 44100 * 44100 < 15
    full = load(path)[0]
    np.testing.assert_array_equal(load(path, offset=15 / 44100)[0], full[15:])
    np.testing.assert_array_equal(load(path, duration=15 / 44100)[0], full[:15])
    np.testing.assert_array_equal(load(path, offset=1 / 3, duration=1 / 3)[0], full[14700:29400])
    for sr in (22050, 16000):
        whole = load(path, sr=sr)[0]
        for start in range(0, sr, 997):
            np.testing.assert_allclose(load_span(path, sr, start, 500), whole[start : start + 500], atol=1e-6)


def test_decoded_length_finds_what_load_finds_a_block_at_a_time(tmp_path, stereo):
    """The CLAP scan decoded (and resampled) every clip whole to check it: 1.3 GB for an hour of stereo."""
    path = _write(tmp_path / "good.flac", stereo)
    assert decoded_length(path) == (len(load(path)[0]), SR)
    for label, bad in _bad_files(tmp_path, stereo).items():
        with pytest.raises(AudioError) as from_load:
            load(bad)
        with pytest.raises(AudioError) as from_blocks:
            decoded_length(bad)
        assert from_blocks.value.cause == from_load.value.cause, label


def test_text_or_mac_metadata_named_like_audio_is_not_audio_rather_than_corrupt(tmp_path):
    """Every file with an audio suffix that failed to decode was 'corrupt or truncated', a text file renamed
    .wav and an AppleDouble ._x.wav twin too, while cover.jpg was 'not audio'."""
    text = tmp_path / "text.wav"
    text.write_text("a shopping list, not a song\n")
    twin = tmp_path / "._song.wav"
    twin.write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(4000))
    for path, fragment in (
        (text, "text, 'a shopping list, not a song', though named .wav"),
        (twin, "AppleDouble"),
    ):
        for read in (load, get_duration):
            with pytest.raises(AudioError) as info:
                read(path)
            assert info.value.cause == "not_audio" and fragment in str(info.value)


#: The first bytes of formats libsndfile does not read, as such files start: an iTunes M4A, a Windows Media
#: file, a WebM from a video site, raw AAC (ADTS frames).
_UNREAD_CONTAINERS = {
    "M4A/MP4": b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isomiso2" + bytes(3000),
    "Windows Media": bytes.fromhex("3026B2758E66CF11A6D900AA0062CE6C") + bytes(3000),
    "WebM or Matroska": bytes.fromhex("1A45DFA3A3428681") + bytes(3000),
    "raw AAC": bytes([0xFF, 0xF1, 0x50, 0x80, 0x2E, 0x7F, 0xFC]) * 400,
}


@pytest.mark.parametrize("container", sorted(_UNREAD_CONTAINERS))
@pytest.mark.parametrize("suffix", [".mp3", ".wav", ".ogg", ".flac"])
def test_a_format_not_read_under_an_audio_suffix_is_named_with_its_conversion_not_called_corrupt(
    tmp_path, container, suffix
):
    """An iTunes rip renamed .mp3, a WMA renamed .wav, a video site's WebM saved as .ogg were 'corrupt or
    truncated' (the decoder's 'Format not recognised'): a sound file of a format the loader does not read,
    which ffmpeg converts, as the same file named .m4a is said to be."""
    path = tmp_path / f"song{suffix}"
    path.write_bytes(_UNREAD_CONTAINERS[container])
    for read in (load, get_duration):
        with pytest.raises(AudioError) as info:
            read(path)
        assert info.value.cause == "unsupported_format", (container, suffix, str(info.value))
        message = str(info.value)
        assert f"{container}" in message and f"though named {suffix}" in message
        # ffmpeg reads by content: the command converts the file as named, never onto itself.
        output = path.with_suffix(".wav" if suffix == ".flac" else ".flac")
        assert f"ffmpeg -i {path} {output}" in message


def test_the_mp3_decoders_own_warning_is_not_printed_without_a_file_name(tmp_path, stereo, capfd):
    """libmpg123 printed 'Warning: Xing stream size off by more than 1%, fuzzy seeking may be even more fuzzy
    than by design!' straight to stderr for a truncated MP3, naming no file; the AudioError says it all."""
    whole = _write(tmp_path / "whole.mp3", np.concatenate([stereo] * 3)).read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(whole[: len(whole) // 3])
    capfd.readouterr()
    with pytest.raises(AudioError, match="truncated"):
        load(cut)
    assert get_duration(cut) > 0
    err = capfd.readouterr().err
    assert "Xing" not in err and "fuzzy seeking" not in err, err


def test_an_mp3_that_lost_its_last_few_percent_is_truncated_and_one_that_lost_a_frame_loads(tmp_path):
    """An MP3 decodes to fewer samples than its header announces when cut short; the slack allowed for the
    decoder is an MP3 frame or 1%, so a download that lost its last 5% is refused, not loaded short; by
    `decoded_length` too, which counted the frames the header announces (`SoundFile.blocks` yields them all)."""
    t = np.arange(10 * SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    whole = _write(tmp_path / "whole.mp3", tone).read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(whole[: int(len(whole) * 0.95)])
    for read in (load, decoded_length):  # (the CLAP scan's check, a block at a time, refuses it too)
        with pytest.raises(AudioError, match="truncated: header announces") as info:
            read(cut)
        assert info.value.cause == "corrupt", read.__name__
    cut.write_bytes(whole[:-20])  # less than one frame's bytes
    assert abs(len(load(cut)[0]) - len(t)) <= 2304


def _joined_mp3(tmp_path):
    """Two MP3s of 2 and 8 s written one after the other into one file, as `cat a.mp3 b.mp3` joins them."""
    t = np.arange(10 * SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    first = _write(tmp_path / "first.mp3", tone[: 2 * SR]).read_bytes()
    rest = _write(tmp_path / "rest.mp3", tone[2 * SR :]).read_bytes()
    (tmp_path / "joined.mp3").write_bytes(first + rest)
    return tmp_path / "joined.mp3"


def _vbr_mp3_without_its_xing_frame(tmp_path):
    """A 10 s VBR MP3 whose first frame, the Xing header, is cut off; its first 2 s are quiet, so its next
    frame's low bitrate makes the decoder's estimate of the length short."""
    t = np.arange(10 * SR) / SR
    noise = np.random.default_rng(0).standard_normal(len(t)) * (t >= 2)
    signal = (0.01 * np.sin(2 * np.pi * 220 * t) + 0.3 * noise).astype(np.float32)
    data = _write(tmp_path / "vbr.mp3", signal).read_bytes()
    xing = data.find(b"Xing")
    assert xing > 0
    path = tmp_path / "no_xing.mp3"
    path.write_bytes(data[data.find(b"\xff", xing) :])  # from the next frame's sync on
    return path


@pytest.mark.parametrize("make", [_joined_mp3, _vbr_mp3_without_its_xing_frame])
def test_an_mp3_whose_decoder_would_stop_before_its_last_frame_is_refused_not_loaded_short(tmp_path, make):
    """MP3s joined into one (the first's Xing header counts only its own frames) loaded as the first file
    alone, and a VBR MP3 without a Xing header as far as its first frame's bitrate estimates: 2 of 10 s,
    without a word (the scan said the annotation ran past the audio, predict transcribed the first part)."""
    path = make(tmp_path)
    for read in (load, get_duration, decoded_length):
        with pytest.raises(AudioError) as info:
            read(path)
        assert info.value.cause == "corrupt", read.__name__
        message = str(info.value)
        assert re.search(r"its frames hold 10\.\d s of audio, but the decoder stops at [0-9]\.\d s", message)
        assert f"ffmpeg -i {path} {path.with_suffix('.flac')}" in message, message
    for whole in tmp_path.glob("*.mp3"):  # the MP3s as written load: no false alarm
        if whole != path:
            assert len(load(whole)[0]) == round(get_duration(whole) * SR)


def test_an_mp3_is_walked_once_for_its_frames_and_again_when_it_changes(tmp_path, monkeypatch):
    """The frame walk that catches an MP3 read short reads the whole file: a CLAP run crops its clips from
    the same files every epoch, and the scan asks each file's length more than once. It is done once for a
    file as it is, and again where the file was replaced (here by the joined MP3 that it refuses)."""
    import audiotrain.audio as audio

    walked, walk = [], audio.mp3_samples
    monkeypatch.setattr(audio, "mp3_samples", lambda path: walked.append(path) or walk(path))
    joined = _joined_mp3(tmp_path)
    whole = tmp_path / "first.mp3"
    for _ in range(3):
        load(whole)
        get_duration(whole)
        load_span(whole, SR, 0, SR)
    assert walked == [whole]
    os.replace(joined, whole)  # (another file under the same name: its size differs)
    with pytest.raises(AudioError, match="its frames hold"):
        load(whole)
    assert walked == [whole, whole]


def _in_a_non_utf8_locale(code: str, cwd: Path) -> subprocess.CompletedProcess:
    """`code` run by a Python whose file-system encoding is ASCII (``LC_ALL=C`` with UTF-8 mode off): it finds
    the non-ASCII names it is given by listing `cwd`, as Python decodes them there (surrogate escapes)."""
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(repo), env.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, "-X", "utf8=0", "-c", code], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_audio_under_a_name_the_locale_cannot_encode_loads(tmp_path, stereo):
    """Under ``LC_ALL=C`` with Python's UTF-8 mode off, every song in a folder named ``My Songs ☃`` was 'corrupt
    or truncated': soundfile encoded the name as ASCII, strictly. Python itself opens it."""
    folder = tmp_path / "My Songs ☃"
    folder.mkdir()
    _write(folder / "é.flac", stereo)
    done = _in_a_non_utf8_locale(
        "import os, sys; from pathlib import Path; from audiotrain.audio import get_duration, load\n"
        "assert sys.getfilesystemencoding() == 'ascii', sys.getfilesystemencoding()\n"
        "folder = Path(next(n for n in os.listdir('.') if n.startswith('My Songs')))\n"
        "path = next(folder.iterdir())\n"
        "print(load(path, sr=8000)[0].shape, get_duration(path))\n",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["(16000,)", "2.0"]


@pytest.mark.parametrize("channels, sr", [(2, None), (2, 22050), (6, 22050), (1, 22050)])
def test_a_long_file_is_mixed_and_resampled_in_the_memory_of_its_result(tmp_path, channels, sr):
    """An hour of 44.1 kHz stereo peaked at 2.3 GB in predict: the whole file was decoded as float32
    [samples, channels] (1.27 GB) before the mix to mono and the resampling. Now only the result is held
    whole, and it is the same, bit for bit, as the mean and `resample` of the whole file."""
    import tracemalloc

    rng = np.random.default_rng(0)
    # Seven of load's blocks and a part; for one channel more, so that reading it whole (4 bytes a frame) would
    # outgrow the slack below.
    frames = 2_000_000 if channels > 1 else 6_000_000
    data = (0.3 * rng.standard_normal((frames, channels))).astype(np.float32)
    path = _write(tmp_path / "long.wav", data, sr=44100)
    tracemalloc.start()
    try:
        y, rate = load(path, sr=sr)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    whole = sf.read(str(path), dtype="float32", always_2d=True)[0]
    expected = np.ascontiguousarray(whole.T.mean(axis=0) if channels > 1 else whole[:, 0])
    expected = resample(expected, 44100, sr) if sr is not None else expected
    assert rate == (sr or 44100) and np.array_equal(y, expected)
    block = (1 << 18) * channels * 4  # bytes of one block as decoded
    assert peak < y.nbytes + 2 * block + 4_000_000, (peak, y.nbytes)  # was 3 to 15 times y.nbytes


def test_an_mp3_is_decoded_in_one_read_as_libsndfile_decodes_it_otherwise_in_blocks(tmp_path):
    """libsndfile decodes an MP3 read a block at a time otherwise than in one read (off by up to 0.3 after
    each block's end): `load` reads MP3 whole, whatever it mixes or resamples."""
    t = np.arange(600_000) / 44100
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.5 * t))
    path = _write(tmp_path / "a.mp3", np.stack([tone, -0.5 * tone], axis=1).astype(np.float32), sr=44100)
    whole = sf.read(str(path), dtype="float32", always_2d=True)[0]
    mono = np.ascontiguousarray(whole.T.mean(axis=0))
    assert np.array_equal(load(path)[0], mono)
    assert np.array_equal(load(path, sr=22050)[0], resample(mono, 44100, 22050))


def test_a_damaged_file_is_not_said_to_be_missing(tmp_path):
    """libsndfile's "File does not exist or is not a regular file (possibly a pipe?)" was passed on for a
    garbage .mp3 that exists: the user looked for a missing file."""
    damaged = tmp_path / "damaged.mp3"
    damaged.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)))
    with pytest.raises(AudioError) as raised:
        load(damaged, 16000)
    message = str(raised.value)
    assert "does not exist" not in message and "possibly a pipe" not in message
    # (opened by name libsndfile said the above, which audio.py rewrote; by descriptor it says this)
    assert message.startswith(f"{damaged}: file is corrupt or truncated (Error opening '{damaged}': ")
    assert message.endswith(
        ("libsndfile found no audio format it can decode in it.)", "Format not recognised.)")
    )


def test_a_file_whose_path_is_longer_than_libsndfiles_buffer_loads(tmp_path):
    """libsndfile keeps a file name in 1024 bytes: a readable file whose path was longer (Linux allows 4096)
    was skipped as "file is corrupt or truncated"."""
    deep = tmp_path.joinpath(*["folder-" + "x" * 200] * 5)
    deep.mkdir(parents=True)
    song = deep / ("y" * 200 + ".wav")
    assert len(os.fsencode(song)) > 1024
    with open(song, "wb") as file:  # (soundfile, writing by name, meets the same limit)
        sf.write(file, np.full(1600, 0.25, np.float32), 16000, format="WAV")
    wave, sr = load(song, sr=None)
    assert sr == 16000 and wave.shape == (1600,)
    assert get_duration(song) == pytest.approx(0.1)
    # A damaged file there is still named by its path, as any other.
    song.write_bytes(b"RIFF" + bytes(100))
    with pytest.raises(
        AudioError, match=re.escape(f"{song}: file is corrupt or truncated (Error opening '{song}'")
    ):
        load(song, sr=None)


def _claim_frames(path: Path, frames: int) -> Path:
    """FLAC `path` with the total-samples field of its STREAMINFO (36 bits, after the rate, channels and bits
    per sample) set to `frames`, as a damaged or crafted file may claim."""
    raw = bytearray(path.read_bytes())
    assert raw[:4] == b"fLaC" and raw[4] & 0x7F == 0  # STREAMINFO comes first
    packed = int.from_bytes(raw[18:26], "big")
    packed = (packed & ~((1 << 36) - 1)) | frames
    raw[18:26] = packed.to_bytes(8, "big")
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize("mono, sr", [(True, None), (True, 22050), (False, None), (False, 22050)])
def test_a_flac_claiming_2_36_frames_is_corrupt_without_setting_memory_aside_for_them(
    tmp_path, stereo, mono, sr
):
    """A 2 s FLAC whose header claims 2^36 - 1 frames: load set aside 256 GiB for them before decoding one
    (a raw MemoryError); now room for what its bytes can hold, and the short decode says it is truncated."""
    import tracemalloc

    path = _claim_frames(_write(tmp_path / "liar.flac", stereo[:, :1] if mono else stereo), (1 << 36) - 1)
    tracemalloc.start()
    try:
        with pytest.raises(AudioError, match=r"liar.flac: file is corrupt or truncated") as caught:
            load(path, sr=sr, mono=mono)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.cause == "corrupt"
    assert peak < 100_000_000, peak


def test_audio_longer_than_memory_allows_is_too_long_naming_the_file(tmp_path):
    """20 minutes of silence (a 60 KB FLAC) under an address-space limit 20 MB above what the process holds:
    a clear 'too long to load' naming the file, as a 3-hour file under a memory cap, not a raw MemoryError."""
    path = tmp_path / "long.flac"
    with sf.SoundFile(str(path), "w", 8000, 1, format="FLAC") as out:
        for _ in range(20 * 60 // 10):
            out.write(np.zeros(80_000, dtype=np.float32))
    code = (
        "import resource, sys\n"
        "from audiotrain.audio import AudioError, load\n"
        f"load({str(path)!r}, duration=1.0)\n"  # (every library loaded before the limit)
        "held = int(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmSize'))) * 1024\n"
        "resource.setrlimit(resource.RLIMIT_AS, (held + 20_000_000, resource.RLIM_INFINITY))\n"
        "for mono, sr in ((True, None), (False, None), (True, 22050)):\n"
        "    try:\n"
        f"        load({str(path)!r}, mono=mono, sr=sr)\n"
        "    except AudioError as error:\n"
        "        print(error.cause, error)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3, done.stdout
    for line in lines:
        assert re.fullmatch(
            r"too_long .*long.flac: audio is too long to load into memory \(1200 s .*\)", line
        )


@pytest.mark.parametrize("channels, mono, sr", [(1, True, None), (2, False, None), (2, True, 16000)])
def test_a_file_that_decodes_to_more_than_its_bytes_suggest_loads_whole(tmp_path, channels, mono, sr):
    """Minutes of near-silence compress to a few bytes a second in FLAC: the room `load` sets aside from the
    file's size grows as it decodes, giving the samples `soundfile` reads whole."""
    data = np.zeros((8000 * 300, channels), np.float32)
    data[[0, 1_000_000, -1]] = 0.25  # (a few clicks in five minutes of silence)
    path = _write(tmp_path / "quiet.flac", data, sr=8000)
    assert path.stat().st_size * 64 < len(data)  # (so the room grows)
    y, rate = load(path, mono=mono, sr=sr)
    whole = sf.read(str(path), dtype="float32", always_2d=True)[0]
    expected = whole.mean(axis=1) if mono and channels > 1 else (whole[:, 0] if mono else whole.T)
    expected = resample(np.ascontiguousarray(expected), 8000, sr) if sr else expected
    assert rate == (sr or 8000) and np.array_equal(y, expected)


def test_ogg_files_joined_into_one_are_refused_naming_the_join_not_an_absurd_length(tmp_path):
    """Two Ogg Vorbis files joined into one (a chained stream, as `cat` or a recorded radio stream makes)
    decode as the first alone: these two (one serial number) loaded as 3 of their 6 s without a word, and
    `predict` transcribed those; two of other lengths had the length 2^63 - 1 frames (get_duration 2.1e14 s,
    'computing the features of 4 songs (58096320657.6 h of audio)') and were refused as 'truncated: header
    announces 9223372036854775807 samples, decoded 441000'."""
    t = np.arange(3 * SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    parts = [_write(tmp_path / f"part{i}.ogg", tone).read_bytes() for i in range(2)]
    path = tmp_path / "joined.ogg"
    path.write_bytes(b"".join(parts))
    for read in (load, get_duration, decoded_length):
        with pytest.raises(AudioError) as info:
            read(path)
        message = str(info.value)
        assert info.value.cause == "corrupt" and "9223372036854775807" not in message, message
        assert "2 Ogg streams one after another (Ogg files joined into one" in message, message
        assert f"ffmpeg -i {path} {path.with_suffix('.flac')}" in message, message
    assert get_duration(tmp_path / "part0.ogg") == pytest.approx(3.0)


def test_a_file_libsndfile_1_2_0_cannot_read_is_corrupt_not_a_bad_descriptor(tmp_path, monkeypatch):
    """The libsndfile 1.2.0 of soundfile 0.12.1 (the declared minimum) closes the descriptor it is given when
    it cannot read a file, closefd=False or not; closing it again raised a bare 'OSError: [Errno 9] Bad file
    descriptor' from get_duration and load, which a song scan does not skip. Here libsndfile is made to do
    that on any soundfile."""
    opened = sf.SoundFile._open

    def closes_what_it_cannot_read(self, file, mode_int, closefd):
        try:
            return opened(self, file, mode_int, closefd)
        except sf.LibsndfileError:
            if isinstance(file, int):
                try:
                    os.close(file)
                except OSError:  # (already closed: libsndfile did, as asked)
                    pass
            raise

    monkeypatch.setattr(sf.SoundFile, "_open", closes_what_it_cannot_read)
    noise = tmp_path / "noise.wav"
    noise.write_bytes(np.random.default_rng(0).bytes(4000))
    for read in (get_duration, load):
        with pytest.raises(AudioError, match="corrupt or truncated"):
            read(noise)


def test_resample_refuses_int16_and_channels_last_audio_as_the_features_do():
    """A CLAP user resampling 44.1 kHz audio to 48 kHz got int16 PCM back as float32 values up to 32767,
    which ClapFeatureExtractor then took as float audio 32768 times too loud (librosa.resample refuses
    integer samples), and soundfile's stereo [samples, 2] came back as [samples, 3]: two channels
    "resampled" to three, which the extractor, told to take `.T`, read as three clips. Both are refused."""
    pcm = (np.sin(np.arange(44_100) / 10.0) * 20_000).astype(np.int16)
    with pytest.raises(TypeError, match=r"integer samples \(int16\).*32768"):
        resample(pcm, 44_100, 48_000)
    stereo = np.stack([pcm, pcm], axis=1).astype(np.float32) / 32768
    with pytest.raises(ValueError, match=r"shape \(44100, 2\).*channels-last.*\.T"):
        resample(stereo, 44_100, 48_000)
    assert resample(stereo.T, 44_100, 48_000).shape == (2, 48_000)  # channels first still works


def test_a_file_object_or_bytes_is_refused_naming_the_function_and_a_way_on(tmp_path):
    # A member of a tar shard (tarfile's extractfile, or its bytes) gave Path()'s "TypeError: expected str,
    # bytes or os.PathLike object, not BytesIO", naming neither load nor what to do.
    import io

    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(800, np.float32), 8000)
    data = path.read_bytes()
    for given, kind in ((io.BytesIO(data), "BytesIO"), (data, "bytes")):
        with pytest.raises(
            TypeError, match=rf"audiotrain\.audio\.load reads .* by its path .*, got {kind}\. "
        ):
            load(given)
        with pytest.raises(TypeError, match=rf"audiotrain\.audio\.load_span reads .*, got {kind}\. "):
            load_span(given, 8000, 0, 100)
    with pytest.raises(TypeError, match=r"by its path \(a str or pathlib.Path\), got NoneType$"):
        load(None)
    assert load(str(path))[0].shape == (800,)  # paths as before
    # save too: Path()'s same TypeError, naming neither save nor a way on.
    with pytest.raises(
        TypeError, match=r"audio\.save writes .* at a path .*, got BytesIO\. .*soundfile\.write"
    ):
        save(io.BytesIO(), np.zeros(800, np.float32), 8000)
    with pytest.raises(
        TypeError, match=r"audio\.save writes .* at a path \(a str or pathlib.Path\), got NoneType$"
    ):
        save(None, np.zeros(800, np.float32), 8000)
