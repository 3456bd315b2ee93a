"""Data parallel with no code change: the same script under 2 ranks (ring on loopback) equals one process
over the combined batch, the ranks stay bitwise identical, resume is exact, only rank 0 writes, and a
failing rank ends the job with a message naming it."""

import subprocess
import sys
from pathlib import Path

import numpy as np
from distributed import describe, run_ranks

JOB = Path(__file__).resolve().parent / "dp_job.py"


def _single(tmp_path, name, *args):
    out = subprocess.run(
        [sys.executable, str(JOB), *args], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return np.load(f"{tmp_path / name}-rank0.npz")


def _ranks(tmp_path, name, *args):
    results = run_ranks(JOB, 2, args=list(args), timeout=120, cwd=tmp_path)
    assert all(r.returncode == 0 for r in results), describe(results)
    return [np.load(f"{tmp_path / name}-rank{r}.npz") for r in (0, 1)]


def _weights(saved):
    return {k: saved[k] for k in saved.files if k.startswith("w.")}


def test_two_ranks_equal_one_process_over_the_combined_batch_and_each_other(tmp_path):
    one = _single(tmp_path, "one", "16", str(tmp_path / "one"), "6", "-", str(tmp_path / "root-one"))
    r0, r1 = _ranks(tmp_path, "dp", "8", str(tmp_path / "dp"), "6", "-", str(tmp_path / "root-dp"))
    for k in _weights(one):
        np.testing.assert_array_equal(r0[k], r1[k], err_msg=k)  # ranks bitwise identical
        np.testing.assert_allclose(r0[k], one[k], atol=1e-5, err_msg=k)
    assert int(r0["step"]) == int(one["step"]) == 6
    # validation means weighted over both ranks' samples: the one-process value
    assert float(r0["val_loss"]) == float(r1["val_loss"])
    np.testing.assert_allclose(float(r0["val_loss"]), float(one["val_loss"]), rtol=1e-5)
    # only rank 0 wrote checkpoints and logs
    root = tmp_path / "root-dp"
    assert (root / "checkpoints" / "last").is_dir()
    assert len(list(root.rglob("metrics.csv"))) == 1


def test_a_resumed_two_rank_run_equals_an_uninterrupted_one(tmp_path):
    straight = _ranks(tmp_path, "a", "8", str(tmp_path / "a"), "6", "-", str(tmp_path / "root-a"))
    _ranks(tmp_path, "b", "8", str(tmp_path / "b"), "3", "-", str(tmp_path / "root-b"))  # stops mid-epoch
    last = tmp_path / "root-b" / "checkpoints" / "last"
    resumed = _ranks(tmp_path, "c", "8", str(tmp_path / "c"), "6", str(last), str(tmp_path / "root-c"))
    for k in _weights(straight[0]):
        np.testing.assert_array_equal(resumed[0][k], straight[0][k], err_msg=k)
        np.testing.assert_array_equal(resumed[1][k], straight[0][k], err_msg=k)


def test_a_rank_that_raises_ends_every_rank_with_a_message_naming_it(tmp_path):
    results = run_ranks(
        JOB,
        2,
        args=["8", str(tmp_path / "x"), "6", "-", str(tmp_path / "root"), "raise"],
        timeout=120,
        cwd=tmp_path,
    )
    assert all(r.returncode not in (0, None) for r in results), describe(results)
    assert "rank 1 failed: RuntimeError: a bug that only rank 1 meets" in results[1].stderr
