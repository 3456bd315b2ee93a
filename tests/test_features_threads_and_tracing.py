"""The mlx feature functions in a data loader's thread workers, and inside a compiled or differentiated step
(a model-side front end)."""

import os
import subprocess
import sys
from pathlib import Path

LOADER_THREADS = """
import numpy as np
from audiotrain import DataLoader
from audiotrain.features import cqt, melspectrogram, stft

def clip(i):
    return (0.1 * np.random.default_rng(i).standard_normal(8000)).astype(np.float32)

def features(y):  # the default backend, "mlx"
    mel = melspectrogram(y, sr=16000, n_fft=512, hop_length=256, n_mels=40)
    return mel, abs(np.asarray(stft(y, n_fft=512, hop_length=256))), cqt(y, sr=16000, hop_length=256, n_bins=36)

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
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
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
