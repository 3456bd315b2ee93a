"""A batch weight the device computes (`TrainModule.batch_size` returning a scalar `mx.array`, as the chord
task's real frames) stays on the device: the fit loop neither reads it per batch (that host sync would wait
for the step in flight before the next is queued) nor logs other numbers than with the weight read as an int.
"""

import json

from audiotrain.recipes.chords.task import ChordTask
from audiotrain.train.trainer import Trainer

import mlx.core as mx
import numpy as np
import pytest
from tasks import RecordingLogger, TinyClassifier, make_batches
from test_recipe_chords import synthetic_batches, tiny_model

_READS = ("item", "tolist", "__float__", "__int__", "__index__", "__bool__")


class DeviceWeighted(TinyClassifier):
    """Each batch weighs its rows with a large first feature: a count only the device knows."""

    returned: list[mx.array] = []

    def batch_size(self, batch):
        weight = mx.sum(mx.abs(batch[0][:, 0]) > 0.3).astype(mx.float32)
        self.returned.append(weight)  # (kept: ids stay unique while the test looks for them)
        return weight


class HostWeighted(TinyClassifier):
    """The same weights read on the host, as an int."""

    def batch_size(self, batch):
        return int(mx.sum(mx.abs(batch[0][:, 0]) > 0.3).item())


@pytest.fixture
def weight_reads(monkeypatch):
    """The host reads of the arrays `DeviceWeighted.batch_size` returned (by the method that read them)."""
    DeviceWeighted.returned = []
    reads: list[str] = []
    for name in _READS:
        original = getattr(mx.array, name)

        def read(self, *args, _name=name, _original=original):
            if any(self is weight for weight in DeviceWeighted.returned):
                reads.append(_name)
            return _original(self, *args)

        monkeypatch.setattr(mx.array, name, read)
    return reads


def _without_time(history: dict) -> dict:
    return {k: v for k, v in history.items() if k != "time"}


def _fit(module, tmp_path, name):
    mx.random.seed(0)
    logger = RecordingLogger()
    trainer = Trainer(
        max_epochs=2,
        log_every_n_steps=2,
        default_root_dir=tmp_path / name,
        logger=logger,
        enable_progress_bar=False,
        enable_checkpointing=False,
    )
    trainer.fit(module, make_batches(96, 16), make_batches(48, 16, seed=1))
    return logger.metrics, _without_time(trainer.history)


def test_a_fit_never_reads_a_batch_weight_the_device_computes(tmp_path, weight_reads):
    mx.random.seed(0)
    module = DeviceWeighted()
    on_device = _fit(module, tmp_path, "device")
    assert len(DeviceWeighted.returned) >= 2 * (6 + 3)  # every training and validation batch
    assert weight_reads == []
    mx.random.seed(0)
    on_host = _fit(HostWeighted(), tmp_path, "host")
    assert on_device == on_host  # the same logged numbers, to the last bit


def test_the_chord_task_counts_its_frames_on_the_device(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    batches = synthetic_batches(4, rng)
    for i, batch in enumerate(batches):  # padded windows: a few frames of each are not real
        batch["mask"] = mx.array(np.tile(np.arange(16) < 10 + i, (4, 1)), mx.float32)

    class HostFrames(ChordTask):  # the frames read on the host, as the task did
        def batch_size(self, batch):
            return int(mx.sum(batch["mask"]).item())

    def fit(task_type):
        mx.random.seed(0)
        task = task_type(tiny_model(bass_view_bins=0), learning_rate=1e-3, scheduler=None)
        logger = RecordingLogger()
        trainer = Trainer(
            max_epochs=1,
            log_every_n_steps=2,
            default_root_dir=tmp_path / task_type.__name__,
            logger=logger,
            enable_progress_bar=False,
            enable_checkpointing=False,
        )
        trainer.fit(task, batches, batches[:2])
        return json.dumps(logger.metrics), _without_time(trainer.history)

    host = fit(HostFrames)
    reads = []
    original = mx.array.item
    monkeypatch.setattr(mx.array, "item", lambda self: reads.append(self.shape) or original(self))
    task = ChordTask(tiny_model(bass_view_bins=0))
    frames = task.batch_size(batches[0])
    assert reads == [] and isinstance(frames, mx.array)
    monkeypatch.undo()
    assert frames.item() == 4 * 10
    assert fit(ChordTask) == host  # the same logged numbers, to the last bit


def test_a_negative_weight_the_device_computes_makes_the_mean_nan_not_a_finite_wrong_one(tmp_path):
    """`self.log(..., batch_size=w)` with a weight the step computed below 0 (a count of voiced frames
    less an offset it should not have taken): the value was left out of the weighted sum while its weight
    still counted in the total, and the mean came out finite and wrong (-0.0 for all-negative weights) with
    no word; `batch_size=-3` given as an int is refused. A negative weight now makes the mean NaN."""

    class NegativeCount(TinyClassifier):
        def compute_loss(self, batch):
            x, y = batch
            loss = mx.mean(mx.square(self(x)))
            self.log("c", mx.mean(x), batch_size=mx.sum(y > 0) - 100, on_epoch=True)
            return loss

    trainer = Trainer(
        max_epochs=1,
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(NegativeCount(), make_batches(32, 16), make_batches(32, 16, seed=1))
    assert np.isnan(trainer.callback_metrics["c_epoch"])
    assert np.isnan(trainer.callback_metrics["val_c"])
    assert np.isfinite(trainer.callback_metrics["train_loss"])
