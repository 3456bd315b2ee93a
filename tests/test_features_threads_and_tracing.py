"""The mlx feature functions in a data loader's thread workers, and inside a compiled or differentiated step
(a model-side front end)."""

import subprocess
import sys
from pathlib import Path

from audiotrain import Trainer, TrainModule, seed_everything
from audiotrain.features import cqt, melspectrogram, spectrogram, stft

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from child_processes import child_env

LOADER_THREADS = """
import numpy as np
from audiotrain import DataLoader
from audiotrain.features import cqt, melspectrogram, stft

def clip(i):
    return (0.1 * np.random.default_rng(i).standard_normal(8000)).astype(np.float32)

def features(y):  # the default backend, "mlx"
    mel = melspectrogram(y, sr=16000, n_fft=512, hop_length=256, n_mels=40)
    spectrum = abs(np.asarray(stft(y, n_fft=512, hop_length=256)))
    return mel, spectrum, cqt(y, sr=16000, hop_length=256, n_bins=36)

class Clips:
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return features(clip(i))

results = {}
for persistent in (False, True):  # new threads every epoch, or the same two
    loader = DataLoader(Clips(), 4, num_workers=2, persistent_workers=persistent)
    results[persistent] = [[np.asarray(x) for x in batch] for epoch in range(2) for batch in loader]
# The main thread after the workers (a fresh process: here the workers used MLX first).
reference = [[np.asarray(x) for x in features(clip(i))] for i in range(8)]
expected = [[np.stack([reference[i][k] for i in range(b, b + 4)]) for k in range(3)] for b in (0, 4)]
for persistent, batches in results.items():
    assert len(batches) == 4, len(batches)
    for n, batch in enumerate(batches):
        for k, got in enumerate(batch):
            np.testing.assert_allclose(got, expected[n % 2][k], rtol=1e-5, atol=1e-6)
print("SAME", flush=True)
"""


def test_features_in_thread_workers_equal_the_main_threads_and_the_process_exits_cleanly(tmp_path):
    """With the default backend="mlx", a dataset computing features in the default thread workers failed
    ("There is no Stream(cpu, 2) in current thread": the streams of the first thread that computed one
    were used in every thread), from the second epoch on when persistent, and MLX then aborted the process
    at exit ("terminate called without an active exception", status 134)."""
    env = child_env()
    done = subprocess.run(
        [sys.executable, "-c", LOADER_THREADS],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "SAME" in done.stdout and "terminate called" not in out


def run_to_a_clean_exit(script: str, tmp_path, said: str, *, env=None, timeout: int = 120) -> None:
    """Run `script` in a new Python process and check that it printed `said` and exited 0, MLX not having
    aborted it as it exited ("terminate called without an active exception", status 134)."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=child_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0 and said in done.stdout, out
    assert "terminate called" not in out, out


def waves(n: int = 2, samples: int = 8000, seed: int = 0) -> mx.array:
    rng = np.random.default_rng(seed)
    return mx.array((0.1 * rng.standard_normal((n, samples))).astype(np.float32))


@pytest.mark.parametrize(
    "feature",
    [
        lambda y: melspectrogram(y, sr=16000, n_fft=512, hop_length=256, n_mels=40),
        lambda y: melspectrogram(y, sr=16000, pad_mode="reflect", power=1.0),
        lambda y: spectrogram(y, n_fft=400, hop_length=160, center=False),
        lambda y: mx.abs(stft(y, n_fft=512, hop_length=128)),
    ],
    ids=["mel", "mel-reflect-magnitude", "spectrogram", "stft"],
)
def test_mlx_features_run_inside_mx_compile_and_equal_the_eager_result(feature):
    """Under mx.compile (and mx.grad) each failed: a host-side NaN check and block-by-block evaluation
    ("Attempting to eval an array during function transformations")."""
    y = waves()
    eager = np.asarray(feature(y))
    compiled = np.asarray(mx.compile(feature)(y))
    np.testing.assert_allclose(compiled, eager, rtol=1e-5, atol=1e-6 * eager.max())
    # Differentiated through the front end, as a model's first layer is.
    grad = mx.grad(lambda scale, y: mx.sum(feature(y * scale)))(mx.array(1.0), y)
    assert np.isfinite(np.asarray(grad)).all()


@pytest.mark.parametrize("power", [1.0, 0.5, 3.0])
def test_a_magnitude_front_end_has_a_finite_gradient_over_silent_frames(power):
    """With power != 2 the gradient of a clip with a silent stretch (or all-zero audio) was NaN: the
    derivative of p ** (power / 2) at a 0 bin is infinite. Silent bins now give the subgradient 0."""
    rng = np.random.default_rng(0)
    y = np.concatenate([np.zeros(2048), 0.1 * rng.standard_normal(2048)]).astype(np.float32)
    weights = mx.array(rng.standard_normal((20, 1)).astype(np.float32))

    def front_end(y):
        return mx.sum(weights * melspectrogram(y, sr=8000, n_fft=256, hop_length=64, n_mels=20, power=power))

    for clip in (mx.array(y), mx.zeros(4096)):
        value, grad = mx.value_and_grad(front_end)(clip)
        assert np.isfinite(np.asarray(grad)).all()
        # The traced value is still the untraced (block by block) one.
        assert value.item() == pytest.approx(front_end(clip).item(), rel=1e-5, abs=1e-6)


def test_cqt_under_mx_compile_says_to_compute_it_in_the_loader():
    """The CQT decimates on the host (soxr): it cannot be traced, and said so only as MLX's eval error,
    which the Trainer then blamed on the user's step."""
    with pytest.raises(ValueError, match=r"cqt reads y on the host.*mx\.compile") as caught:
        mx.compile(lambda y: cqt(y, sr=16000, hop_length=256, n_bins=36))(waves())
    assert 'backend="numpy"' in str(caught.value) and "Trainer(compile=False)" in str(caught.value)
    # Under mx.grad alone (a Trainer(compile=False) step) it still runs.
    grad = mx.grad(lambda s, y: mx.sum(cqt(y, sr=16000, hop_length=256, n_bins=36)) * s)(
        mx.array(1.0), waves()
    )
    assert np.isfinite(np.asarray(grad)).all()


class MelFrontEnd(TrainModule):
    """A log-mel front end inside the model, as torch users write one with torchaudio."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(40, 2)

    def __call__(self, y):
        mel = melspectrogram(y, sr=16000, n_fft=512, hop_length=256, n_mels=40)
        return self.fc(mx.mean(mx.log(mel + 1e-6), axis=-1))

    def compute_loss(self, batch):
        y, label = batch
        logits = self(y)
        loss = mx.mean(nn.losses.cross_entropy(logits, label))
        return loss, {"acc": mx.mean(mx.argmax(logits, axis=-1) == label)}

    def configure_optimizers(self):
        return optim.Adam(learning_rate=0.05)


def test_a_model_with_a_mel_front_end_trains_under_the_compiled_trainer(tmp_path):
    """The default Trainer compiles its step; a mel front end failed there with "MelFrontEnd.compute_loss
    read an array's value while being traced", though the model read none."""
    rng = np.random.default_rng(0)
    t = np.arange(8000) / 16000
    label = rng.integers(0, 2, 32)
    freq = np.where(label == 1, 3000.0, 300.0)  # high tone or low tone
    y = (0.3 * np.sin(2 * np.pi * freq[:, None] * t) + 0.01 * rng.standard_normal((32, 8000))).astype(
        np.float32
    )
    batches = [(mx.array(y[i : i + 8]), mx.array(label[i : i + 8])) for i in range(0, 32, 8)]
    seed_everything(0)
    model = MelFrontEnd()
    trainer = Trainer(
        max_epochs=5,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_checkpointing=False,
        logger=False,
    )
    trainer.fit(model, batches, batches)
    assert trainer.callback_metrics["val_acc"] >= 0.9  # (chance: 0.5)


THREAD_ENDS_WHILE_ANOTHER_DELETES_ITS_COMPILED_FUNCTIONS = """
import threading

import audiotrain
from audiotrain._thread_streams import clear_streams_when_thread_ends

import mlx.core as mx

@mx.custom_function
def doubled(x):
    return 2 * x

@doubled.vjp
def doubled_vjp(primals, cotangent, output):  # (a Python function each compiled graph holds)
    return 2 * cotangent

compiled, made = [], threading.Event()

def trial():  # (a sweep's thread: its compiled steps outlive it, kept by the objects of its run)
    clear_streams_when_thread_ends()
    for _ in range(2000):  # (200 hung 0 runs in 8 on the old code here, 2000 4 in 4; 0.4 s each now)
        step = mx.compile(lambda x: doubled(x))
        mx.eval(step(mx.ones((2,))))
        compiled.append(step)
    made.set()

thread = threading.Thread(target=trial)
thread.start()
made.wait()
while compiled:  # (another thread's garbage collection, deleting them as the trial's thread ends)
    compiled.pop()
thread.join()
print("JOINED")
"""


def test_a_thread_ending_while_another_deletes_its_compiled_functions_ends(tmp_path):
    """Two runs of a sweep in threads (Optuna's n_jobs=2): the first to end released its MLX streams as it
    ended (`mx.clear_streams`), which let go of the GIL and held MLX's compile-cache lock, waiting for the GIL
    to drop a compiled graph's Python function; the other run's garbage collector, holding the GIL, deleted a
    compiled function and waited for that lock. Neither moved again: a CI run hung for 75 minutes."""
    run_to_a_clean_exit(THREAD_ENDS_WHILE_ANOTHER_DELETES_ITS_COMPILED_FUNCTIONS, tmp_path, "JOINED")


def test_an_older_mlx_folder_earlier_on_the_path_leaves_the_deadlock_guarded(tmp_path):
    """An older `mlx/lib/libmlx.so` in a folder earlier on PYTHONPATH (MLX is a namespace package: each such
    `mlx` folder joins it, and the first one's library was taken): MLX's C++ `clear_streams` was called in
    that second copy, which has no streams or compiled graphs of this process, so the real ones were dropped
    by MLX's binding, letting go of the GIL, and the test above hung again (3 runs in 3)."""
    import os
    import shutil

    import mlx.core

    older = tmp_path / "older" / "mlx" / "lib"
    older.mkdir(parents=True)
    for library in (Path(mlx.core.__file__).parent / "lib").glob("libmlx.*"):
        shutil.copy(library, older / library.name)
    env = child_env()
    env["PYTHONPATH"] += os.pathsep + str(tmp_path / "older")  # (still before site-packages, where MLX is)
    run_to_a_clean_exit(THREAD_ENDS_WHILE_ANOTHER_DELETES_ITS_COMPILED_FUNCTIONS, tmp_path, "JOINED", env=env)


FITS_IN_A_BACKGROUND_THREAD = """
import tempfile
import threading

import audiotrain
import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from audiotrain import DataLoader, OptimizerConfig, TrainModule, Trainer

class Tiny(TrainModule):
    def __init__(self):
        super().__init__()
        self.hidden, self.out = nn.Linear(8, 8), nn.Linear(8, 2)

    def __call__(self, x):
        return self.out(nn.Dropout(0.1)(nn.relu(self.hidden(x))))

    def compute_loss(self, batch):
        return mx.mean(nn.losses.cross_entropy(self(batch["x"]), batch["y"])), {}

    def configure_optimizers(self):
        return OptimizerConfig(optimizer=optim.AdamW(learning_rate=1e-3))

samples = [{"x": np.random.rand(8).astype(np.float32), "y": i % 2} for i in range(32)]

def fit(folder):  # (a notebook cell's background training)
    trainer = Trainer(max_epochs=1, default_root_dir=folder, enable_progress_bar=False)
    trainer.fit(Tiny(), DataLoader(samples, batch_size=8, shuffle=True))

for _ in range(2):
    thread = threading.Thread(target=fit, args=(tempfile.mkdtemp(dir="."),))
    thread.start()
    thread.join()
print("FITTED", flush=True)
"""


def test_a_process_that_fitted_in_background_threads_exits_cleanly(tmp_path):
    """Two fits, one after the other, each in a thread of its own (a notebook cell training in the
    background), then the end of the script: MLX aborted the process as it exited (\"terminate called without
    an active exception\", status 134; 7 runs in 8): the thread's streams were released by MLX's C++
    `clear_streams`, which keeps the thread's `mx.random` state (MLX's Python binding drops it first), and the
    ended thread was still dropping it as Python exited. Three runs: each failed alone now and then."""
    for _ in range(3):
        run_to_a_clean_exit(FITS_IN_A_BACKGROUND_THREAD, tmp_path, "FITTED", timeout=240)


THREADS_DRAWING_RANDOM_NUMBERS_END = """
import threading

import audiotrain
from audiotrain._thread_streams import clear_streams_when_thread_ends

import mlx.core as mx

def trial():  # (a sweep's thread, a notebook's background fit: each draws from MLX's random key)
    clear_streams_when_thread_ends()
    mx.eval(mx.random.uniform(shape=(3,)))

for _ in range(10):
    thread = threading.Thread(target=trial)
    thread.start()
    thread.join()
print("JOINED")
"""


def test_threads_that_drew_random_numbers_leave_the_process_to_exit_cleanly(tmp_path):
    """Since a2e4faed each thread's MLX streams were released by MLX's C++ clear_streams alone, which leaves
    the thread's random key (a Python object the binding keeps per thread) to be dropped as the thread's C++
    side ends, without the GIL: the process aborted at exit ("terminate called without an active exception",
    134) or crashed (139), 4 runs in 6 of tests/test_long_lived_process.py's threaded fits. Three processes
    here: the old code failed 5 runs in 6 of one (ten threads), so all three passing was 1 chance in 200."""
    for _ in range(3):
        run_to_a_clean_exit(THREADS_DRAWING_RANDOM_NUMBERS_END, tmp_path, "JOINED")
