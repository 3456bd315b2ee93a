"""Exact resume: k steps + resume in a new process + N-k steps == N steps straight, bitwise."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent


def run(*args, **kw):
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run(
        [sys.executable, str(HERE / "resume_worker.py"), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


@pytest.mark.slow
def test_resume_mid_epoch_in_new_process_is_bitwise_exact(tmp_path):
    # 100 items / batch 12 = 9 batches per epoch (last one short); accumulation 2 → 5 steps per epoch.
    # Checkpoints every 3 steps: step 3 is mid-epoch (batch 6 of 9), step 6 is in epoch 1.
    straight = run(tmp_path / "a.npz", tmp_path / "a", 11, "-", "-")
    assert straight.returncode == 0, straight.stderr
    part = run(tmp_path / "b.npz", tmp_path / "b", 3, "-", 3)
    assert part.returncode == 0, part.stderr
    ckpt = tmp_path / "b" / "ckpt" / "epoch=0-step=3"
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert (state["epoch"], state["batch_in_epoch"], state["global_step"]) == (0, 6, 3)  # mid-epoch
    resumed = run(tmp_path / "c.npz", tmp_path / "c", 11, ckpt, "-")
    assert resumed.returncode == 0, resumed.stderr
    a, c = np.load(tmp_path / "a.npz"), np.load(tmp_path / "c.npz")
    assert int(a["step"]) == int(c["step"]) == 11
    for k in a.files:
        np.testing.assert_array_equal(a[k], c[k], err_msg=k)


SIGINT_SCRIPT = """
import sys, time
sys.path.insert(0, {here!r})
import audiotrain
import mlx.core as mx
from tasks import TinyClassifier, make_batches
from audiotrain import Trainer

class Slow(TinyClassifier):
    def on_train_batch_end(self, outputs, batch, batch_idx):
        if self.global_step == 3:
            print("READY", flush=True)
        time.sleep(0.05)

t = Trainer(max_epochs=1000, default_root_dir={root!r}, enable_progress_bar=False, compile=False)
t.fit(Slow(), make_batches())
print("RETURNED", t.interrupted, t.global_step, flush=True)
"""


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    script = SIGINT_SCRIPT.format(here=str(HERE), root=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "READY"
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "RETURNED True" in out
    assert "Resume with" in out + err and "ckpt_path=" in out + err
    assert (tmp_path / "checkpoints" / "interrupted" / "model.safetensors").exists()


def test_ctrl_c_during_epoch_end_validation_still_saves_and_resumes_exactly(tmp_path):
    """A Ctrl-C that lands in the epoch-end validation (not in a training step) saves at the epoch
    boundary, and resuming from that checkpoint gives the weights of an uninterrupted run."""
    from audiotrain import Trainer, seed_everything
    from audiotrain.train.callbacks import Callback

    from tasks import TinyClassifier, make_batches, weights

    class CtrlCInValidation(Callback):
        def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.current_epoch == 1 and batch_idx == 0:
                signal.raise_signal(signal.SIGINT)  # the Trainer's handler: stop and save

    def trainer(root, *callbacks):
        return Trainer(
            max_epochs=3, default_root_dir=root, enable_progress_bar=False, seed=1, callbacks=list(callbacks)
        )

    seed_everything(0)
    straight = TinyClassifier(dropout=0.2)
    trainer(tmp_path / "a").fit(straight, make_batches(), make_batches(32))

    seed_everything(0)
    stopped = trainer(tmp_path / "b", CtrlCInValidation())
    stopped.fit(TinyClassifier(dropout=0.2), make_batches(), make_batches(32))
    saved = tmp_path / "b" / "checkpoints" / "interrupted"
    assert stopped.interrupted and stopped.interrupted_checkpoint == saved
    state = json.loads((saved / "trainer_state.json").read_text())
    assert (state["epoch"], state["batch_in_epoch"]) == (2, 0)  # epoch 1 complete, validated

    resumed = TinyClassifier(dropout=0.2)
    trainer(tmp_path / "c").fit(resumed, make_batches(), make_batches(32), ckpt_path=str(saved))
    for name, value in weights(straight).items():
        np.testing.assert_array_equal(value, weights(resumed)[name], err_msg=name)
