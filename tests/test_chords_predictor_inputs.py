"""What `ChordPredictor` takes from a Python user: decoding settings as a `DecodeConfig` or a dict of its
fields (as recipe config sections are), and a song as a file or as a waveform already in memory (numpy
array and sample rate), with a one-line error naming the argument for anything else. A tiny untrained model
stands in for a trained one: what is checked is what reaches the decoder and the features."""

import subprocess
import sys
import warnings
from dataclasses import replace

from audiotrain.chords.decode import DecodeConfig
from audiotrain.chords.vocabulary import NUM_CHORD_TYPES
from audiotrain.models.chord_model import ChordModelConfig, ChordRecognitionModel
from audiotrain.recipes.chords.config import ChordFeatureConfig
from audiotrain.recipes.chords.predict import ChordPredictor, SongPosteriors, checkpoint_entries
from audiotrain.recipes.chords.task import CHECKPOINT_KEY
from audiotrain.train import checkpoint as ckpt

import mlx.core as mx
import numpy as np
import pytest
import soundfile as sf
from child_processes import child_env

from tests import deadlines

MODEL = ChordModelConfig(d_model=16, n_layers=1, n_heads=2, ff_dim=32, dropout=0.0)
SR = 22050


def _model() -> ChordRecognitionModel:
    mx.random.seed(0)  # the same weights whatever tests ran before
    model = ChordRecognitionModel(MODEL)
    mx.eval(model.parameters())
    return model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint folder as the chord recipe writes it, its decoding with silence_db 30."""
    folder = tmp_path_factory.mktemp("chord_predictor") / "best"
    record = {
        "model_config": MODEL.to_dict(),
        **checkpoint_entries(ChordFeatureConfig(), DecodeConfig(silence_db=30.0), 16),
    }
    progress = {"epoch": 1, "batch_in_epoch": 0, "global_step": 1, "total_batches": 1, "micro_batches": 0}
    state = {"progress": progress, "random": {"mlx": [0, 0]}, "module_state": {CHECKPOINT_KEY: record}}
    arrays = {f"model.{k}": v for k, v in ckpt.flat(_model().parameters()).items()}
    ckpt.write_checkpoint(folder, arrays, {}, {}, state)
    return folder


def _triad(seconds: float = 1.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return sum(0.2 * np.sin(2 * np.pi * f * t) for f in (261.63, 329.63, 392.0)).astype(np.float32)


def test_decode_as_a_dict_changes_the_named_fields_of_the_checkpoints_decoding(checkpoint):
    """`decode={"silence_db": 0}` (the README's advice for classical music, as a dict like a config
    section) was kept as a dict and failed at the first song: 'dict' object has no attribute 'silence_db'."""
    predictor = ChordPredictor.from_checkpoint(checkpoint, decode={"method": "argmax"})
    assert predictor.decode == DecodeConfig(silence_db=30.0, method="argmax")  # the rest stays the run's
    assert ChordPredictor.from_checkpoint(checkpoint).decode.silence_db == 30.0
    assert ChordPredictor(_model(), ChordFeatureConfig(), {"silence_db": 0}).decode.silence_db == 0.0
    with pytest.raises(
        ValueError, match=r"from_checkpoint\(decode=\.\.\.\): unknown field 'decode.silnce_db'"
    ):
        ChordPredictor.from_checkpoint(checkpoint, decode={"silnce_db": 0})
    with pytest.raises(
        TypeError, match=r"ChordPredictor\(decode=\.\.\.\): expected a DecodeConfig .*got str"
    ):
        ChordPredictor(_model(), ChordFeatureConfig(), "viterbi")


def test_from_checkpoint_names_its_path_argument_when_it_is_not_a_path():
    with pytest.raises(TypeError, match=r"from_checkpoint\(path=\.\.\.\): expected .* got NoneType"):
        ChordPredictor.from_checkpoint(None)


def test_a_waveform_in_memory_is_transcribed_as_the_same_audio_in_a_file(tmp_path):
    """A notebook user holds audio (librosa.load, soundfile.read): it used to need writing to a file first
    (an array gave pathlib's 'expected str, bytes or os.PathLike object, not ndarray')."""
    predictor = ChordPredictor(_model(), ChordFeatureConfig(), window_frames=16, tta_shifts=(0,))
    audio = _triad()
    sf.write(tmp_path / "song.wav", audio, SR, subtype="FLOAT")
    from_file = predictor.posteriors(tmp_path / "song.wav")
    assert predictor.transcribe(audio, sample_rate=SR) == predictor.segments(from_file)
    # Stereo [channels, samples] at another rate is mixed and resampled as a file's samples are.
    stereo = np.stack([audio, 0.5 * audio]).astype(np.float64)
    sf.write(tmp_path / "stereo.wav", stereo.T, SR, subtype="FLOAT")
    features, seconds = predictor.song_features(stereo, sample_rate=SR)
    expected, expected_seconds = predictor.song_features(tmp_path / "stereo.wav")
    np.testing.assert_allclose(features, expected, atol=1e-5)
    assert seconds == expected_seconds
    resampled, _ = predictor.song_features(_triad(sr=44100), sample_rate=44100)
    assert abs(len(resampled) - len(expected)) <= 1


def test_a_near_silent_lead_in_of_a_waveform_is_no_chord_as_its_decoding_says(checkpoint):
    """The frame levels of a waveform in memory reach the decoder: frames 100 dB down are N under the
    checkpoint's silence_db 30, and decoded as whatever the model hears under silence_db 0."""
    lead_in = 1e-5 * np.random.default_rng(0).standard_normal(3 * SR).astype(np.float32)  # -100 dB
    audio = np.concatenate([lead_in, 2.5 * _triad(3.0)])
    quiet = ChordPredictor.from_checkpoint(checkpoint).transcribe(audio, sample_rate=SR)
    assert quiet[0].label == "N" and quiet[0].end == pytest.approx(3.0, abs=0.2), quiet
    heard = ChordPredictor.from_checkpoint(checkpoint, decode={"silence_db": 0}).transcribe(
        audio, sample_rate=SR
    )
    assert heard != quiet


def test_a_frames_level_is_measured_where_its_features_are_centred():
    """Frame t's features are centred at t * hop_length; its level must be too. One hop late, the silence
    gate would call N a frame (93 ms) early at every fade-out and a frame late at every entry."""
    features = ChordFeatureConfig()
    hop = features.hop_length
    y = np.zeros(30 * hop, dtype=np.float32)
    y[10 * hop - hop // 4 : 10 * hop + hop // 4] = 0.5  # a burst half a hop long, centred on frame 10
    level = features.frame_levels_db(y, 1 + len(y) // hop)
    assert int(np.argmax(level)) == 10
    assert level[10] > level[8] + 3 and level[10] > level[12] + 3


def _levels_from_a_padded_copy(y, frames, hop):
    """frame_levels_db as it was: the song copied whole into zeros, a hop before it and to the last frame."""
    padded = np.zeros(hop * (frames + 1), dtype=np.float32)
    n = max(0, min(len(y), len(padded) - hop))
    padded[hop : hop + n] = y[:n]
    blocks = padded.reshape(frames + 1, hop)
    energy = np.einsum("ij,ij->i", blocks, blocks, dtype=np.float64)
    return 10.0 * np.log10(np.maximum((energy[:-1] + energy[1:]) / (2 * hop), 1e-12))


@pytest.mark.parametrize("extra_frames", [-700, -1, 0, 3])
def test_frame_levels_of_a_long_song_hold_no_copy_of_it(extra_frames):
    """An hour's predict peaked at 1.1 GB, 250 MB of it a zero-padded copy of the whole song that
    frame_levels_db made after the posteriors. The levels are read from the song in blocks: the same values
    (frames past its end, a last part block, frames fewer than the song's), no song-sized allocation."""
    import tracemalloc

    features = ChordFeatureConfig()
    hop = features.hop_length
    y = np.random.default_rng(0).standard_normal(2600 * hop + hop // 3).astype(np.float32)
    frames = 1 + len(y) // hop + extra_frames
    tracemalloc.start()
    try:
        level = features.frame_levels_db(y, frames)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(level, _levels_from_a_padded_copy(y, frames, hop))
    assert peak < y.nbytes / 2, f"{peak / 1e6:.1f} MB allocated for a {y.nbytes / 1e6:.1f} MB song"


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ((np.zeros(SR, np.float32),), {}, TypeError, r"audio is an array: give its sample_rate="),
        ((["a.wav", "b.wav"],), {}, TypeError, r"audio: expected .* got list: transcribe each file in turn"),
        (("song.wav",), {"sample_rate": SR}, TypeError, r"sample_rate is for a waveform given as an array"),
        ((np.zeros(SR, np.int16),), {"sample_rate": SR}, TypeError, r"audio holds integer samples"),
        ((np.zeros((SR, 2), np.float32),), {"sample_rate": SR}, ValueError, r"channels-last audio\?"),
        # More channels than the features' own check names (8): 16 were "too short: 16 samples", and 64 a
        # song of 2.9 ms, transcribed without a word.
        ((np.zeros((SR, 16), np.float32),), {"sample_rate": SR}, ValueError, r"\(22050, 16\): more channels"),
        (
            (np.ones((SR, 64), np.float32),),
            {"sample_rate": SR},
            ValueError,
            r"channels-last audio\? .*audio.T",
        ),
        # A list of samples was told to "transcribe each file in turn"; an mx.array was "got array".
        (([0.0] * SR,), {"sample_rate": SR}, TypeError, r"got list: a waveform is a numpy array, np.asarray"),
        ((mx.zeros(SR),), {"sample_rate": SR}, TypeError, r"got mlx.core.array: pass np.array\(audio\)$"),
        # (named by the keyword the user gave, not by librosa's `sr` the check was written for)
        (
            (np.zeros(SR, np.float32),),
            {"sample_rate": 0},
            ValueError,
            r"^sample_rate must be a positive .* 0$",
        ),
        ((np.zeros(SR, np.float32),), {"sample_rate": "48000"}, ValueError, r"^sample_rate must .* '48000'$"),
        ((np.zeros(10, np.float32),), {"sample_rate": SR}, ValueError, r"audio is too short: 10 samples"),
    ],
)
def test_other_audio_inputs_are_refused_naming_the_argument(args, kwargs, error, message):
    predictor = ChordPredictor(_model(), ChordFeatureConfig(), window_frames=16, tta_shifts=(0,))
    with pytest.raises(error, match=message):
        predictor.transcribe(*args, **kwargs)


def test_a_song_whose_features_do_not_fit_in_memory_is_too_long_naming_its_file(tmp_path, monkeypatch):
    """A 3-hour file under a memory cap ended predict with a raw MemoryError from the features (np.log1p),
    not one line naming the file that predict skips and goes past."""
    from audiotrain.audio import AudioError

    predictor = ChordPredictor(_model(), ChordFeatureConfig(), window_frames=16, tta_shifts=(0,))
    sf.write(tmp_path / "long.wav", _triad(), SR)

    def out_of_memory(self, y):
        raise MemoryError

    monkeypatch.setattr(ChordFeatureConfig, "compute", out_of_memory)
    with pytest.raises(
        AudioError, match=r"long.wav: audio is too long to load into memory \(its features"
    ) as err:
        predictor.posteriors(tmp_path / "long.wav")
    assert err.value.cause == "too_long"
    with pytest.raises(MemoryError):  # (an array in memory is the caller's: no file to name)
        predictor.posteriors(_triad(), sample_rate=SR)


def test_posteriors_of_a_song_longer_than_a_window_are_distributions_in_every_frame():
    """Windows overlap and each is weighted by a taper: the frames they share are the weighted mean, so each
    head's posteriors still sum to 1 per frame (the decoder, and a user reading `probs`, take them so), with
    and without test-time augmentation."""
    for shifts in ((0,), (-1, 0, 1)):
        predictor = ChordPredictor(_model(), ChordFeatureConfig(), window_frames=16, tta_shifts=shifts)
        post = predictor.posteriors(_triad(3.0), sample_rate=SR)
        assert len(post.probs["root"]) > 2 * predictor.window_frames  # (several windows, overlapping)
        for head, probs in post.probs.items():
            np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4, err_msg=head)


def test_a_song_that_does_not_fit_under_a_process_memory_limit_names_the_limit(tmp_path, monkeypatch):
    """Under ulimit -v 1 GB the demo's 6 s test song failed with "audio is too long to load into memory
    (...; cut it into shorter files)": a short song cannot be cut, the process's limit was the cause."""
    import resource

    from audiotrain.audio import AudioError

    predictor = ChordPredictor(_model(), ChordFeatureConfig(), window_frames=16, tta_shifts=(0,))
    sf.write(tmp_path / "short.wav", _triad(), SR)

    def out_of_memory(self, y):
        raise MemoryError

    as_limited = {resource.RLIMIT_AS: (10**9, resource.RLIM_INFINITY)}
    real_getrlimit = resource.getrlimit
    monkeypatch.setattr(resource, "getrlimit", lambda which: as_limited.get(which) or real_getrlimit(which))
    monkeypatch.setattr(ChordFeatureConfig, "compute", out_of_memory)
    with pytest.raises(
        AudioError,
        match=r"short.wav: .*did not fit in memory \(under this process's ulimit -v limit of 1.0 GB\); raise",
    ):
        predictor.posteriors(tmp_path / "short.wav")
    # With no process limit below the machine's memory the song is what is long: MLX's limit (the device's
    # memory) is no limit a user raises, so the message does not send them to raise it.
    from audiotrain import _cgroup

    no_limit = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
    monkeypatch.setattr(resource, "getrlimit", lambda which: no_limit)
    monkeypatch.setattr(_cgroup, "cgroup_memory_limit", lambda: None)
    with pytest.raises(AudioError) as too_long:
        predictor.posteriors(tmp_path / "short.wav")
    assert str(too_long.value).endswith("did not fit in memory; cut it into shorter files)")


PREDICT_IN_THREADS = """
import threading

import audiotrain  # (first, as README says: before MLX)
from concurrent.futures import ThreadPoolExecutor
import mlx.core as mx
import numpy as np
from audiotrain.models.chord_model import ChordModelConfig, ChordRecognitionModel
from audiotrain.recipes.chords.config import ChordFeatureConfig
from audiotrain.recipes.chords.predict import ChordPredictor

model = ChordRecognitionModel(ChordModelConfig(d_model=16, n_layers=1, n_heads=2, ff_dim=32, dropout=0.0))
mx.eval(model.parameters())
predictor = ChordPredictor(model, ChordFeatureConfig(), tta_shifts=(0,))
t = np.arange(22050) / 22050
song = (0.2 * np.sin(2 * np.pi * 261.63 * t)).astype(np.float32)
# A service's request threads: the first call in one of them, then a pool; never the main thread.
alone = []
worker = threading.Thread(target=lambda: alone.append(predictor.transcribe(song, sample_rate=22050)))
worker.start()
worker.join()
with ThreadPoolExecutor(2) as pool:
    in_threads = list(pool.map(lambda _: predictor.transcribe(song, sample_rate=22050), range(4)))
assert alone and all(segments == alone[0] for segments in in_threads)
print("SAME", flush=True)
"""


def _run_script(code: str, folder, timeout: int) -> tuple[subprocess.CompletedProcess, str]:
    """`code` run by a fresh Python in `folder`, and all it printed (stdout then stderr)."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=folder,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done, done.stdout + done.stderr


def test_a_predictor_used_from_request_threads_lets_the_process_exit_cleanly(tmp_path):
    """A service transcribing in its request threads (a thread pool, one thread per request) got its
    results, then MLX aborted the process as it exited ("terminate called without an active exception",
    status 134): the predictor's compiled forward pass left MLX streams in threads that had ended."""
    done, out = _run_script(PREDICT_IN_THREADS, tmp_path, timeout=240)
    assert done.returncode == 0, out
    assert "SAME" in done.stdout and "terminate called" not in out


def test_two_request_threads_calling_a_new_predictor_at_once_both_get_their_segments():
    """A service's shared predictor failed now and then (5 runs in 10 of a pool of 4 threads, new threads
    each round) with MLX's 'RuntimeError: [eval] Attempting to eval an array without a primitive': each new
    thread traces the compiled forward pass again, and while one traced, the model's weights were MLX's
    stand-ins for them, which a second request's forward pass took. Here the second comes during the first's
    trace."""
    import threading

    tracing, second_ended = threading.Event(), threading.Event()

    class TracedSlowlyInFirst(ChordRecognitionModel):
        def __call__(self, features, mask=None):
            if threading.current_thread().name == "first" and not tracing.is_set():
                tracing.set()
                second_ended.wait(3)  # (the second request comes meanwhile; with the fix it waits for this)
            return super().__call__(features, mask)

    mx.random.seed(0)
    model = TracedSlowlyInFirst(MODEL)
    mx.eval(model.parameters())
    predictor = ChordPredictor(model, ChordFeatureConfig(), tta_shifts=(0,))
    song, results, errors = _triad(), {}, []

    def request():
        try:
            results[threading.current_thread().name] = predictor.transcribe(song, sample_rate=SR)
        except Exception as error:  # (said by the assertion below)
            errors.append(error)

    first = threading.Thread(target=request, name="first")
    first.start()
    assert tracing.wait(120)
    second = threading.Thread(target=request, name="second")
    second.start()
    # (a lock the second waits on while the first holds it for ever would hang the run: a deadline)
    deadlines.join(second, "the second request's transcribe, made during the first's trace", 240)
    second_ended.set()
    deadlines.join(first, "the first request's transcribe", 240)
    assert not errors, errors
    alone = ChordPredictor(_model(), ChordFeatureConfig(), tta_shifts=(0,)).transcribe(song, sample_rate=SR)
    assert results["first"] == results["second"] == alone


def test_features_with_nan_frames_are_refused_naming_the_first_frame(checkpoint):
    """`posteriors_from_features` of frames holding a NaN (features a service computed or edited itself)
    returned NaN posteriors for every frame of the windows that reached it, without a word; `segments`
    then failed on 'type_probs holds 3072 non-finite values', a name the caller never gave."""
    predictor = ChordPredictor.from_checkpoint(checkpoint)
    frames, _ = predictor.song_features(_triad(2.0), sample_rate=SR)
    frames[10:20, 5] = np.nan
    with pytest.raises(ValueError, match=r"features hold 10 frames with NaN or Inf \(the first: frame 10\)"):
        predictor.posteriors_from_features(frames)
    frames[10:20, 5] = 0.0
    assert np.isfinite(predictor.posteriors_from_features(frames)["root"]).all()


def test_a_run_folder_removed_as_it_is_loaded_is_a_checkpoint_error(checkpoint, tmp_path, monkeypatch):
    """A service reloading a run folder that a deploy was replacing (removed, then copied again) got, now
    and then, a bare "FileNotFoundError: [Errno 2] No such file or directory: 'live'" from the check for a
    cross-validation run, not the `CheckpointError` its handler for a bad checkpoint catches."""
    import shutil

    from audiotrain.recipes.chords import model_checkpoint

    run = tmp_path / "live"
    shutil.copytree(checkpoint, run / "checkpoints" / "best")
    looked_up = model_checkpoint.run_checkpoints

    def removed_meanwhile(run_folder):
        shutil.rmtree(run_folder, ignore_errors=True)  # (the deploy, between two of the loader's looks)
        return looked_up(run_folder)

    monkeypatch.setattr(model_checkpoint, "run_checkpoints", removed_meanwhile)
    with pytest.raises(ckpt.CheckpointError, match="live does not exist"):
        ChordPredictor.from_checkpoint(run)


@pytest.mark.parametrize("rate", [22.05, 1])
def test_a_waveform_below_the_lowest_file_rate_is_refused_as_a_file_is(checkpoint, rate):
    """A file under 1000 Hz is refused ('sample rate too low'), but an array at `sample_rate=22.05` (kHz
    given for Hz) was resampled into a 50-minute song and transcribed, 20 s of CPU for labels of nothing;
    at 1 Hz, 100000 samples ended in a bare 'MemoryError: std::bad_alloc' (or the OOM killer)."""
    predictor = ChordPredictor.from_checkpoint(checkpoint)
    with pytest.raises(ValueError, match=rf"sample_rate {rate:g} Hz is below 1000 Hz.*Hz, not kHz"):
        predictor.waveform(np.zeros(3000, np.float32), sample_rate=rate)
    assert abs(len(predictor.waveform(np.zeros(3000, np.float32), sample_rate=8000)) - 3000 * SR / 8000) < 1


PREDICT_IN_FORKED_CHILD = """
import os
import sys

import audiotrain  # (first, as README says: before MLX)
import mlx.core as mx
import numpy as np
from audiotrain.models.chord_model import ChordModelConfig, ChordRecognitionModel
from audiotrain.recipes.chords.config import ChordFeatureConfig
from audiotrain.recipes.chords.predict import ChordPredictor

model = ChordRecognitionModel(ChordModelConfig(d_model=16, n_layers=1, n_heads=2, ff_dim=32, dropout=0.0))
mx.eval(model.parameters())
predictor = ChordPredictor(model, ChordFeatureConfig(), tta_shifts=(0,))
# (a tone: silence is decoded as no chord without the model)
song = (0.2 * np.sin(2 * np.pi * 261.63 * np.arange(22050) / 22050)).astype(np.float32)
# As multiprocessing's 'fork' start method or gunicorn's --preload hand a loaded predictor to a worker.
child = os.fork()
if child == 0:
    try:
        predictor.transcribe(song, sample_rate=22050)
    except RuntimeError as error:
        print("REFUSED", error, flush=True)
    os._exit(0)
os.waitpid(child, 0)
"""


def test_a_predictor_used_in_a_forked_child_is_refused_not_a_hang(tmp_path):
    """A service that loaded a predictor and then forked its workers (multiprocessing's default start
    method on Linux, gunicorn --preload) hung for good in each worker's first transcribe: MLX does not run
    in a child forked after its parent evaluated arrays. It is now a RuntimeError saying what to do."""
    done, out = _run_script(PREDICT_IN_FORKED_CHILD, tmp_path, timeout=60)
    assert done.returncode == 0, out
    assert "REFUSED ChordPredictor: this process was forked from process" in done.stdout, out
    assert "'spawn' start method" in done.stdout, out


@pytest.mark.parametrize("stereo", [np.full((2, SR), 1e19, np.float32), np.full((2, SR), 3e38, np.float32)])
def test_a_waveform_too_loud_for_the_features_is_refused_naming_its_peak(stereo):
    """A live input's buffer 1e19 times full scale ended in a raw 'cannot convert float NaN to integer'
    from the features' tuning estimate; finite samples at 3e38 were called 'y holds 22050 non-finite
    samples' (their channel mix overflowed float32), naming a `y` the user never gave."""
    predictor = ChordPredictor(_model(), ChordFeatureConfig(), window_frames=16, tta_shifts=(0,))
    with pytest.raises(ValueError, match=r"^audio peaks at \d\.\de\+\d\d, .* full scale is 1\.0"):
        predictor.transcribe(stereo, sample_rate=SR)


def test_integer_samples_cast_to_float_unscaled_are_warned_of_as_integer_samples_are_refused():
    """A sound card's int16 buffer cast with .astype(np.float32) (peaks near 32768) was transcribed
    without a word, its labels not those of the same audio scaled to [-1, 1], where int16 itself is refused
    with the scaling to do."""
    predictor = ChordPredictor(_model(), ChordFeatureConfig(), window_frames=16, tta_shifts=(0,))
    pcm = (_triad() * 32767).astype(np.int16)
    scaling = r"audio peaks above 64 times full scale .* divide by 32768 for int16"
    with pytest.warns(UserWarning, match=scaling):
        predictor.transcribe(pcm.astype(np.float32), sample_rate=SR)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # overs of a float mix (4 times full scale) are audio, not PCM
        predictor.transcribe(_triad() * 4, sample_rate=SR)


def test_the_peak_check_of_a_waveform_copies_none_of_it():
    """The peak check that refuses a waveform too loud took np.abs of the whole waveform first: a copy as
    large as the song given (float64 stereo: 8 bytes a sample), on top of the mono mix that follows."""
    import tracemalloc

    from audiotrain.recipes.chords.predict import _check_peak

    audio = np.random.default_rng(0).uniform(-1, 1, (2, 500_000))
    size = audio.nbytes
    tracemalloc.start()
    try:
        _check_peak(audio)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < size // 100, f"{peak} bytes allocated to check {size} bytes of audio"


def test_the_readmes_live_input_note_says_what_a_buffer_resampled_alone_becomes(checkpoint):
    """A live tool feeds 512-sample buffers of a 48 kHz sound card: resampled one by one each is rounded up
    (236 samples, not 235.2), so they drift against the song, as README's live-input note says (the README
    had no word of live input, nor of how to keep a song's time with buffers)."""
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    note = readme[readme.index("- Live input has no streaming call") :].split("\n- ")[0]
    assert "(a 512-sample 48 kHz buffer gives 236 samples, not 235.2)" in note
    assert "at its own rate: `sample_rate=48000`" in note
    predictor = ChordPredictor.from_checkpoint(checkpoint)
    assert predictor.waveform(_triad(512 / 48000, 48000), sample_rate=48000).shape == (236,)


@pytest.mark.parametrize(
    ("dtype", "scaling"),
    [(np.int16, "audio / 32768"), (np.int32, "audio / 2147483648"), (np.uint8, r"\(audio - 128\) / 128")],
)
def test_integer_samples_are_refused_with_the_scaling_of_their_own_type(dtype, scaling):
    """A 32-bit sound card buffer (int32) was told 'e.g. y / 32768 for int16': followed, its samples stayed
    65536 times too large; 8-bit PCM (uint8) is offset by 128, which no division undoes."""
    predictor = ChordPredictor(_model(), ChordFeatureConfig(), window_frames=16, tta_shifts=(0,))
    with pytest.raises(TypeError, match=rf"scale to \[-1, 1\] first, e.g. {scaling} for {np.dtype(dtype)}$"):
        predictor.transcribe(np.zeros((2, SR), dtype), sample_rate=SR)


def test_segment_times_are_python_floats_as_chord_segment_declares():
    """A live tool printing or sending each buffer's segments got ChordSegment(start=np.float64(1.936...),
    ...) for every time but the first segment's start and the last's end, which were Python floats."""
    predictor = ChordPredictor(_model(), ChordFeatureConfig(), window_frames=16, tta_shifts=(0,))
    frames = 40  # 4 s of C major, then G major
    chord_type = np.full((frames, NUM_CHORD_TYPES), 1e-3, np.float32)
    chord_type[:, 2] = 1.0
    root = np.full((frames, 12), 1e-3, np.float32)
    root[:20, 0] = root[20:, 7] = 1.0
    posteriors = SongPosteriors({"chord_type": chord_type, "root": root, "bass": root.copy()}, 10.0, 4.0)
    segments = predictor.segments(posteriors)
    assert [s.label for s in segments] == ["C:maj", "G:maj"]
    assert {type(t) for s in segments for t in (s.start, s.end)} == {float}
    assert "np.float64" not in repr(segments)


def test_posteriors_of_another_frame_rate_than_they_were_made_at_are_refused_not_stretched():
    """An ensemble of models with other hop lengths (2048 and 1024 samples) that gave one model's
    posteriors the other's frame_rate got chords with no message: at half the rate, the first half of
    the song's frames spread over all of it and the last segment stretched to the end; at twice the
    rate, the second half cut off. Each of `frames` must be centred at `i / frame_rate` within the
    song's `duration`."""
    predictor = ChordPredictor(_model(), ChordFeatureConfig(), window_frames=16, tta_shifts=(0,))
    post = predictor.posteriors(_triad(4.0), sample_rate=SR)
    assert predictor.segments(post)[-1].end == pytest.approx(4.0)
    frames = len(post.probs["root"])
    for rate in (post.frame_rate / 2, post.frame_rate * 2):
        other = replace(post, frame_rate=rate)
        with pytest.raises(ValueError, match=rf"^posteriors of {frames} frames at {rate:.2f} frames per s"):
            predictor.segments(other)
    song_made_here = SongPosteriors(post.probs, post.frame_rate, post.duration)  # level_db optional
    assert predictor.segments(song_made_here)


def test_tta_shifts_of_a_mel_model_are_refused_as_the_predict_command_refuses_them():
    """`predict --tta 2` of a mel run says pitch shifting is for CQT features only; ChordPredictor said
    'tta shift -1 needs more spare bins than features.max_pitch_shift 0 semitones', which sent the user to
    raise a setting that mel features cannot have."""
    features = ChordFeatureConfig(
        kind="mel", n_bins=128, max_pitch_shift=0, bass_view_bins=0, tuning_correction=False
    )
    model = ChordRecognitionModel(ChordModelConfig(**{**MODEL.to_dict(), "n_bins": 128, "bass_view_bins": 0}))
    assert ChordPredictor(model, features).tta_shifts == (0,)
    with pytest.raises(ValueError, match=r"^ChordPredictor tta_shifts \(-1, 0, 1\): features\.kind mel"):
        ChordPredictor(model, features, tta_shifts=(-1, 0, 1))


def test_a_model_assigned_to_a_predictor_is_the_one_it_transcribes_with():
    """A callback scoring the model in training set `predictor.model = task.model` and got the first model's
    posteriors every epoch: the compiled forward pass kept the weights it was built with. The assigned model
    now gives what a predictor built with it gives, in eval mode; one that does not read the features is
    refused as the constructor refuses it."""
    predictor = ChordPredictor(_model(), ChordFeatureConfig(), window_frames=16, tta_shifts=(0,))
    first = predictor.posteriors(_triad(), sample_rate=SR).probs["root"]
    mx.random.seed(1)
    other = ChordRecognitionModel(replace(MODEL, dropout=0.5))
    other.train()
    predictor.model = other
    swapped = predictor.posteriors(_triad(), sample_rate=SR).probs["root"]
    # Run in eval mode (the same posteriors on every call: no Dropout), its own mode left as it was: a
    # callback scoring a model in training must not switch its Dropout off for the rest of the fit.
    assert predictor.model is other and all(m.training for _, m in other.named_modules())
    np.testing.assert_array_equal(predictor.posteriors(_triad(), sample_rate=SR).probs["root"], swapped)
    other.eval()
    built = ChordPredictor(other, ChordFeatureConfig(), window_frames=16, tta_shifts=(0,))
    np.testing.assert_allclose(swapped, built.posteriors(_triad(), sample_rate=SR).probs["root"], atol=1e-6)
    assert not np.allclose(swapped, first, atol=1e-3)
    with pytest.raises(ValueError, match="the model reads 84 bins"):
        predictor.model = ChordRecognitionModel(replace(MODEL, n_bins=84))
    assert predictor.model is other
