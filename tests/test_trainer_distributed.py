"""Data parallel with no code change: the same script under 2 ranks (ring on loopback) equals one process
over the combined batch, the ranks stay bitwise identical, resume is exact, only rank 0 writes, and a
failing rank ends the job with a message naming it."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from built_once import built_once
from distributed import child_env, describe, run_launcher, run_ranks

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


@pytest.fixture(scope="module")
def dp_runs(tmp_path_factory):
    """Two 2-rank fits of dp_job (ranks of 8), shared by the tests below, which only read them: "a", 6 steps
    that also keep a checkpoint every 4 (at epoch 0's last batch, before its end has run), rank 0's root
    `root-a`; "b", stopped mid-epoch at step 3 (its root `root-b`). The folder, and both ranks' results
    of a. Built once per test run (`built_once`), whatever the workers."""

    def build(tmp_path):
        # 64 samples, 2 ranks x 8: 4 steps an epoch.
        root_a = str(tmp_path / "root-a")
        _ranks(tmp_path, "a", "8", str(tmp_path / "a"), "6", "-", root_a, "every=4")
        _ranks(tmp_path, "b", "8", str(tmp_path / "b"), "3", "-", str(tmp_path / "root-b"))  # stops mid-epoch

    tmp_path, _ = built_once(tmp_path_factory, "dp_runs", build)
    return tmp_path, [np.load(f"{tmp_path / 'a'}-rank{r}.npz") for r in (0, 1)]


def test_two_ranks_equal_one_process_over_the_combined_batch_and_each_other(dp_runs, tmp_path):
    one = _single(tmp_path, "one", "16", str(tmp_path / "one"), "6", "-", str(tmp_path / "root-one"))
    runs, (r0, r1) = dp_runs  # (its checkpoints every 4 steps change no weight)
    for k in _weights(one):
        np.testing.assert_array_equal(r0[k], r1[k], err_msg=k)  # ranks bitwise identical
        np.testing.assert_allclose(r0[k], one[k], atol=1e-5, err_msg=k)
    assert int(r0["step"]) == int(one["step"]) == 6
    # validation means weighted over both ranks' samples: the one-process value
    assert float(r0["val_loss"]) == float(r1["val_loss"])
    np.testing.assert_allclose(float(r0["val_loss"]), float(one["val_loss"]), rtol=1e-5)
    # only rank 0 wrote checkpoints and logs
    root = runs / "root-a"
    assert (root / "checkpoints" / "last").is_dir()
    assert len(list(root.rglob("metrics.csv"))) == 1


def _history(saved):
    columns = json.loads(str(saved["history"]))
    return {k: v for k, v in columns.items() if k != "time"}


def test_a_resumed_two_rank_run_equals_an_uninterrupted_one(dp_runs, tmp_path):
    # The straight run a keeps a checkpoint every 4 steps; b stopped mid-epoch (`dp_runs`).
    runs, straight = dp_runs
    root_a = runs / "root-a"
    last = runs / "root-b" / "checkpoints" / "last"
    resumed = _ranks(tmp_path, "c", "8", str(tmp_path / "c"), "6", str(last), str(tmp_path / "root-c"))
    for k in _weights(straight[0]):
        np.testing.assert_array_equal(resumed[0][k], straight[0][k], err_msg=k)
        np.testing.assert_array_equal(resumed[1][k], straight[0][k], err_msg=k)
    # The epoch means count every rank's steps once, before and after the resume: each rank resumes
    # with its own share of the running sums.
    assert _history(resumed[0]) == _history(resumed[1]) == _history(straight[0])

    # In one process with the global batch (16), from the checkpoint at epoch 0's last batch: that epoch
    # closes (validation, its means) without another batch, and epoch 1 reads its order in one process.
    epoch_end = next((root_a / "checkpoints").glob("epoch=0-step=4*"))
    one = _single(tmp_path, "d", "16", str(tmp_path / "d"), "6", str(epoch_end), str(tmp_path / "root-d"))
    for k in _weights(straight[0]):
        np.testing.assert_allclose(one[k], straight[0][k], atol=1e-5, err_msg=k)
    a, d = _history(straight[0]), _history(one)
    assert a.keys() == d.keys() and a["step"] == d["step"] == [4, 6]
    for key in a.keys() - {"epoch", "step"}:
        np.testing.assert_allclose(d[key], a[key], rtol=1e-5, err_msg=key)
    # With the per-rank batch (8) one process has 8 batches an epoch: epoch 0 still ends where it was.
    e = _history(_single(tmp_path, "e", "8", str(tmp_path / "e"), "5", str(epoch_end), str(tmp_path / "e")))
    assert e["step"] == [4, 5]
    np.testing.assert_allclose([e[k][0] for k in sorted(a)], [a[k][0] for k in sorted(a)], rtol=1e-5)


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


def test_prepare_data_runs_in_one_rank_and_lightnings_rank_names(tmp_path):
    code = f"""
import json, sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
import audiotrain
from audiotrain import DataLoader, DataModule, Trainer, rank_zero_only
from tasks import TinyClassifier, make_data

class Data(DataModule):
    def prepare_data(self):  # downloads or writes files: one process, the others wait for it
        time.sleep(0.5)  # (a download takes a while: a rank that did not wait would find no file)
        with open("prepared.txt", "a") as f:
            f.write(str(trainer.global_rank))

    def setup(self, stage):
        self.rows = open("prepared.txt").read()  # written before any rank gets here

    def val_dataloader(self):
        x, y = make_data(16)
        return DataLoader(list(zip(x, y)), batch_size=4)

@rank_zero_only
def report(what):
    return what

trainer = Trainer(max_epochs=1, enable_progress_bar=False, default_root_dir="run")
data = Data()
trainer.validate(TinyClassifier(), datamodule=data)
print(json.dumps([trainer.global_rank, trainer.local_rank, data.rows, report("zero")]))
"""
    results = run_ranks(code, 2, timeout=120, cwd=tmp_path)
    assert all(r.returncode == 0 for r in results), describe(results)
    assert [json.loads(r.lines()[-1]) for r in results] == [[0, 0, "0", "zero"], [1, 1, "0", None]]


TESTS = str(Path(__file__).resolve().parent)


def _job(body: str) -> str:
    """A job's code: the tiny tasks importable, then `body`, which prints one JSON line per rank."""
    return f"import json, sys\nsys.path.insert(0, {TESTS!r})\nimport audiotrain\n{body}"


def _last_json(results) -> list:
    assert all(r.returncode == 0 for r in results), describe(results)
    return [json.loads(r.lines()[-1]) for r in results]


def test_rank_0_alone_writes_to_loggers_checkpoints_and_removes_rotated_ones(tmp_path):
    """Rank 0 alone writes (README "Data parallel"): every rank writing would have two ranks appending to one
    log, swapping one checkpoint folder in, or removing the folder top-k rotates out while rank 0 writes the
    new best. A logger with no rank guard of its own (log_metrics alone, Lightning's duck typing), the
    rotation's removals and Trainer.save_checkpoint, which every rank calls (here each names its own path)."""
    body = """
from pathlib import Path
from audiotrain import Trainer, seed_everything
from audiotrain.distributed import collectives
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.callbacks import ModelCheckpoint
from tasks import TinyClassifier, make_batches

rank = collectives.rank()

class Duck:
    def log_metrics(self, metrics, step):
        with open(f"logged-by-rank-{rank}.txt", "a") as f:
            f.write(f"{step}\\n")

removing = ckpt.remove_checkpoint
def remove_checkpoint(path):
    with open(f"removed-by-rank-{rank}.txt", "a") as f:
        f.write(f"{path}\\n")
    return removing(path)
ckpt.remove_checkpoint = remove_checkpoint

seed_everything(0)
trainer = Trainer(max_epochs=3, enable_progress_bar=False, num_sanity_val_steps=0, logger=Duck(),
                  log_every_n_steps=1, callbacks=[ModelCheckpoint(dirpath="ck", save_top_k=1)],
                  default_root_dir="root")
trainer.fit(TinyClassifier(), make_batches(16, batch_size=8))
trainer.save_checkpoint(Path("saved") / f"by-rank-{rank}")
print(json.dumps(rank))
"""
    assert _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path)) == [0, 1]
    written = sorted(p.name for p in tmp_path.glob("*-by-rank-*"))
    assert written == ["logged-by-rank-0.txt", "removed-by-rank-0.txt"], written
    assert [p.name for p in (tmp_path / "saved").iterdir()] == ["by-rank-0"]


def test_a_logged_step_is_the_x_axis_rank_0_writes_under_data_parallel(tmp_path):
    """`self.log("step", self.current_epoch)` in the training hooks (Lightning's epoch x axis) sets the step
    of the values rank 0 writes, as in one process; the other rank writes nothing and takes the same path."""
    body = """
from audiotrain import Trainer
from audiotrain.distributed import collectives
from tasks import TinyClassifier, make_batches

rank = collectives.rank()

class Duck:
    def log_metrics(self, metrics, step):
        with open(f"logged-by-rank-{rank}.txt", "a") as f:
            f.write(json.dumps([step, sorted(metrics)]) + "\\n")

class EpochAsStep(TinyClassifier):
    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.log("step", 100.0 + self.current_epoch)

    def on_train_epoch_end(self):
        self.log("step", 100.0 + self.current_epoch)

trainer = Trainer(max_epochs=2, enable_progress_bar=False, num_sanity_val_steps=0, logger=Duck(),
                  log_every_n_steps=1, enable_checkpointing=False, default_root_dir="root")
trainer.fit(EpochAsStep(), make_batches(32, batch_size=8))
print(json.dumps(trainer.logged_metrics["step"]))
"""
    assert _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path)) == [101.0, 101.0]
    assert sorted(p.name for p in tmp_path.glob("logged-by-rank-*")) == ["logged-by-rank-0.txt"]
    logged = [json.loads(line) for line in (tmp_path / "logged-by-rank-0.txt").read_text().splitlines()]
    assert [step for step, names in logged if "train_loss" in names] == [100] * 4 + [101] * 4  # 4 steps each
    assert [step for step, names in logged if "train_loss_epoch" in names] == [100, 101]
    assert not any("step" in names for _, names in logged)


def test_a_value_logged_in_a_hook_is_averaged_over_ranks_so_every_rank_decides_alike(tmp_path):
    # Each rank logs a number of its own (an F1 over its predictions, say). On rank 0 alone val_f1 never
    # improves (EarlyStopping would stop it after epoch 1, its best checkpoint would stay the first); the
    # mean over the ranks improves every epoch. Decided per rank, the ranks parted ways and the job failed.
    body = """
from audiotrain import DataLoader, Trainer
from audiotrain.train.callbacks import EarlyStopping, ModelCheckpoint
from tasks import TinyClassifier, make_data

class HostMetric(TinyClassifier):
    def on_validation_epoch_end(self):
        self.log("val_f1", float(self.trainer.global_rank * (self.current_epoch + 1)), sync_dist=True)
        if self.trainer.is_global_zero:
            self.log("val_rank0_only", 7.0, rank_zero_only=True)

x, y = make_data(32)
best = ModelCheckpoint(monitor="val_f1", mode="max", save_top_k=1)
early = EarlyStopping(monitor="val_f1", mode="max", patience=0)
trainer = Trainer(max_epochs=3, enable_progress_bar=False, num_sanity_val_steps=0, logger=False,
                  default_root_dir="run", callbacks=[best, early])
trainer.fit(HostMetric(), DataLoader(list(zip(x, y)), batch_size=4), DataLoader(list(zip(x, y)), batch_size=4))
m = trainer.callback_metrics
print(json.dumps([m["val_f1"], m["val_rank0_only"], trainer.current_epoch, best.best_model_score]))
"""
    assert _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path)) == [[1.5, 7.0, 3, 1.5]] * 2


def test_should_stop_set_on_one_rank_stops_every_rank_at_the_same_step(tmp_path):
    # A callback that decides on its own rank's clock, file or numbers: rank 0 at an epoch's end, rank 1
    # inside an epoch (taken up at the next logging step, as Ctrl-C is).
    body = """
from audiotrain import DataLoader, Trainer
from audiotrain.train.callback import Callback
from tasks import TinyClassifier, make_data

class StopOnOneRank(Callback):
    def __init__(self, where):
        self.where = where

    def on_train_epoch_end(self, trainer, module):
        if self.where == "epoch end" and trainer.global_rank == 0 and trainer.current_epoch == 1:
            trainer.should_stop = True

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self.where == "batch" and trainer.global_rank == 1 and trainer.global_step == 5:
            trainer.should_stop = True

x, y = make_data(32)
stopped = []
for where in ("epoch end", "batch"):
    trainer = Trainer(max_epochs=6, enable_progress_bar=False, num_sanity_val_steps=0, logger=False,
                      log_every_n_steps=2, enable_checkpointing=False, callbacks=[StopOnOneRank(where)])
    trainer.fit(TinyClassifier(), DataLoader(list(zip(x, y)), batch_size=4))
    stopped.append([trainer.current_epoch, trainer.global_step])
print(json.dumps(stopped))
"""
    # 4 steps an epoch: rank 0 stops both after epoch 1; rank 1's request at step 5 counts at step 6.
    assert _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path)) == [[[2, 8], [1, 6]]] * 2


def test_minus_one_from_on_train_batch_start_on_one_rank_ends_the_epoch_on_every_rank(tmp_path):
    # Lightning's "skip the rest of this epoch", decided on one rank's data: the other rank, training on,
    # waited forever for its gradients. Rank 1 ends epoch 0 at its batch 1; both ranks do.
    body = """
from audiotrain import DataLoader, Trainer
from tasks import TinyClassifier, make_data

class EndsOnOneRank(TinyClassifier):
    def on_train_batch_start(self, batch, batch_idx):
        if self.trainer.global_rank == 1 and self.current_epoch == 0 and batch_idx == 1:
            return -1

x, y = make_data(32)
trainer = Trainer(max_epochs=2, enable_progress_bar=False, num_sanity_val_steps=0, logger=False,
                  enable_checkpointing=False)
trainer.fit(EndsOnOneRank(), DataLoader(list(zip(x, y)), batch_size=4))
print(json.dumps([trainer.current_epoch, trainer.global_step]))
"""
    # 4 steps an epoch per rank: epoch 0 ends after 1 step, epoch 1 runs its 4.
    assert _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path)) == [[2, 5]] * 2


def test_the_progress_bar_shows_the_last_steps_values_over_all_ranks(tmp_path):
    # The loggers get means over every rank's batch; so does the bar now (it showed rank 0's own).
    body = """
from audiotrain import DataLoader, Trainer
from audiotrain.distributed import all_gather_object
from audiotrain.train.callback import Callback
from tasks import TinyClassifier, make_data

class LastLoss(Callback):
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.loss = float(outputs["loss"])

x, y = make_data(24)
last = LastLoss()
trainer = Trainer(max_epochs=1, enable_progress_bar=False, num_sanity_val_steps=0, logger=False,
                  enable_checkpointing=False, callbacks=[last])
trainer.fit(TinyClassifier(), DataLoader(list(zip(x, y)), batch_size=4))
losses = all_gather_object(last.loss)
print(json.dumps([abs(trainer.progress_metrics()["loss"] - sum(losses) / 2) < 1e-6, losses[0] != losses[1]]))
"""
    assert _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path)) == [[True, True]] * 2


def test_predict_on_two_ranks_returns_each_sample_once_between_them(tmp_path):
    # 5 samples in batches of 2: rank 0 predicts samples 0, 2, 4, rank 1 samples 1, 3 and a batch of
    # padding alone (it runs, as the ranks step together, but returns nothing: it repeated sample 0).
    body = """
import mlx.core as mx
from audiotrain import DataLoader, Trainer
from audiotrain.distributed import all_gather_object
from tasks import TinyClassifier, make_data

class Labels(TinyClassifier):
    def predict_step(self, batch, batch_idx=None):
        return batch[1]

x, _ = make_data(5)
trainer = Trainer(max_epochs=1, enable_progress_bar=False, logger=False)
predicted = trainer.predict(Labels(), DataLoader(list(zip(x, mx.arange(5))), batch_size=2))
mine = [[int(v) for v in out.tolist()] for out in predicted]
print(json.dumps(all_gather_object(mine)))
"""
    assert _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path)) == [[[[0, 2], [4]], [[1, 3]]]] * 2


def test_several_prediction_loaders_on_two_ranks_shard_each_loader(tmp_path):
    # Each loader sharded by its own sampler, as Lightning's: 5 samples (rank 1's last batch padding alone:
    # run, not returned) and 3 samples, in batches of 2.
    body = """
import mlx.core as mx
from audiotrain import DataLoader, Trainer
from audiotrain.distributed import all_gather_object
from tasks import TinyClassifier, make_data

class Labels(TinyClassifier):
    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        return batch[1]

x, _ = make_data(5)
loaders = [DataLoader(list(zip(x[:n], mx.arange(n) + 10 * i)), batch_size=2) for i, n in enumerate((5, 3))]
trainer = Trainer(max_epochs=1, enable_progress_bar=False, logger=False)
predicted = trainer.predict(Labels(), loaders)
mine = [[[int(v) for v in out.tolist()] for out in each] for each in predicted]
print(json.dumps([all_gather_object(mine), trainer.num_predict_batches]))
"""
    ranks = [[[[0, 2], [4]], [[10, 12]]], [[[1, 3]], [[11]]]]
    assert (
        _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path)) == [[ranks, [2, 1]]] * 2
    )  # (per rank)


def test_several_validation_loaders_on_two_ranks_score_every_sample_of_each_once(tmp_path):
    # Each loader sharded by its own sampler (5 samples: rank 1's last batch padding alone, weighed 0; 3
    # samples), every rank the same batches per loader: each loader's mean over its samples, on both ranks.
    body = """
import mlx.core as mx
from audiotrain import DataLoader, Trainer
from tasks import TinyClassifier, make_data

class MeanId(TinyClassifier):
    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        self.log("id", mx.mean(batch[1].astype(mx.float32)))

x, _ = make_data(5)
loaders = [DataLoader(list(zip(x[:n], mx.arange(n) + 10 * i)), batch_size=2) for i, n in enumerate((5, 3))]
trainer = Trainer(max_epochs=1, enable_progress_bar=False, logger=False)
results = trainer.validate(MeanId(), loaders)
print(json.dumps([[dict(r) for r in results], trainer.num_val_batches]))
"""
    expected = [[{"id/dataloader_idx_0": 2.0}, {"id/dataloader_idx_1": 11.0}], [2, 1]]  # (counts per rank)
    assert _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path)) == [expected] * 2


def test_a_batch_hook_calling_a_collective_on_every_batch_stays_in_step_over_a_padding_batch(tmp_path):
    # 5 samples in batches of 2: rank 1's last batch is padding alone (a repeat of sample 0), weighed 0 in the
    # means. Its batch hooks run too, as Lightning's run on its sampler's repeats: with them skipped there, a
    # hook that all-reduces on every batch waited for ever on rank 0 (the ranks' collectives out of step).
    body = """
import numpy as np
import mlx.core as mx
from audiotrain import DataLoader, Trainer
from audiotrain.distributed import all_gather_object, all_reduce_sum
from tasks import TinyClassifier, make_data

class SumsEveryBatch(TinyClassifier):
    def __init__(self):
        super().__init__()
        self._seen, self._sums, self._kept = [], [], []

    def on_validation_batch_end(self, outputs, batch, batch_idx, dataloader_idx=0):
        self._seen += np.array(batch[1]).tolist()
        if batch_idx not in self.trainer.val_dataloaders.padding_batches:  # (README: a whole-set score)
            self._kept += np.array(batch[1]).tolist()
        self._sums.append(int(all_reduce_sum(mx.array(len(batch[1])))))

    def on_test_batch_end(self, outputs, batch, batch_idx, dataloader_idx=0):
        self._sums.append(int(all_reduce_sum(mx.array(len(batch[1])))))

x, _ = make_data(5)
labels = np.arange(1, 6, dtype=np.int32)  # 1..5: the padding batch repeats the 1
loader = DataLoader(list(zip(x, labels)), batch_size=2)
module, trainer = SumsEveryBatch(), Trainer(max_epochs=1, enable_progress_bar=False, logger=False)
[val] = trainer.validate(module, loader)
seen = sorted(sum(all_gather_object(module._seen), []))
kept = sorted(sum(all_gather_object(module._kept), []))
trainer.test(module, loader)
print(json.dumps([seen, module._sums, "val_loss" in val, kept]))
"""
    out = _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path))
    # Both ranks ran the hook on 2 batches a stage (rank 1's second the padding), in step: 2+2, then 1+1;
    # leaving out the loader's padding_batches, as the README says for a whole-set score, counts each once.
    assert out == [[[1, 1, 2, 3, 4, 5], [4, 2, 4, 2], True, [1, 2, 3, 4, 5]]] * 2


def test_each_rank_gets_its_own_batches_outputs_from_a_validation_step_that_returns_them(tmp_path):
    # Lightning's `return {"target": y}` without a loss: each rank's batch-end hook gets its own batch's
    # arrays (no collective over them: a rank with a padding batch stays in step); the epoch end gathers.
    body = """
import numpy as np
import mlx.core as mx
from audiotrain import DataLoader, Trainer
from audiotrain.distributed import all_gather_object
from tasks import TinyClassifier, make_data

class ReturnsTargets(TinyClassifier):
    def validation_step(self, batch, batch_idx):
        return {"target": batch[1], "nested": [mx.softmax(self(batch[0]), axis=-1)]}

    def on_validation_batch_end(self, outputs, batch, batch_idx, dataloader_idx=0):
        if batch_idx not in self.trainer.val_dataloaders.padding_batches:
            self._mine += np.array(outputs["target"]).tolist()
            assert outputs["nested"][0].shape == (len(batch[1]), 3)

x, _ = make_data(5)
module = ReturnsTargets()
module._mine = []
trainer = Trainer(max_epochs=1, enable_progress_bar=False, logger=False)
[val] = trainer.validate(module, DataLoader(list(zip(x, np.arange(1, 6, dtype=np.int32))), batch_size=2))
print(json.dumps([all_gather_object(module._mine), val]))
"""
    out = _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path))
    assert out == [[[[1, 3, 5], [2, 4]], {}]] * 2


def test_the_progress_bar_shows_a_metric_with_its_own_count_as_the_loggers_do(tmp_path):
    # An accuracy over the items that have a target (returned as (value, count)): rank 0's batches (the
    # even samples) have 1 such item, rank 1's (the odd ones) 3. The loggers weight each rank's value by
    # its count; the bar weighted it by the batch's size and showed another number than the CSV or
    # TensorBoard log at the same step.
    body = """
import mlx.core as mx
from audiotrain import DataLoader, Trainer
from audiotrain.train.callback import Callback
from tasks import TinyClassifier, make_data

class MaskedAccuracy(TinyClassifier):
    def compute_loss(self, batch):
        x, y, has_target = batch
        loss, metrics = super().compute_loss((x, y))
        hits = (mx.argmax(self(x), axis=-1) == y) * has_target
        count = mx.sum(has_target)
        return loss, {**metrics, "masked_acc": (mx.sum(hits) / count, count)}

class Compare(Callback):
    seen = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        shown, logged = trainer.progress_metrics()["masked_acc"], trainer.logged_metrics["train_masked_acc"]
        self.seen.append(round(shown, 5) == round(logged, 5))

x, y = make_data(32)
# Rank r reads samples r, r + 2, ...: rank 0's batches of 4 hold 1 with a target, rank 1's 3.
has_target = [float(i % 8 == 0) if i % 2 == 0 else float(i % 8 != 7) for i in range(32)]
data = [(x[i], y[i], has_target[i]) for i in range(32)]
trainer = Trainer(max_epochs=2, enable_progress_bar=False, num_sanity_val_steps=0, logger=False,
                  log_every_n_steps=1, enable_checkpointing=False, callbacks=[Compare()])
trainer.fit(MaskedAccuracy(), DataLoader(data, batch_size=4))
print(json.dumps(Compare.seen))
"""
    assert _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path)) == [[True] * 8] * 2


def test_the_progress_line_lists_the_metrics_in_one_order_whatever_the_process_count(tmp_path):
    # Under data parallel the validation metrics came in alphabetical order (val_accuracy before val_loss),
    # one process kept the step's (val_loss first): the plain line read differently with the process count.
    body = """
from audiotrain import DataLoader, Trainer
from tasks import TinyClassifier, make_data

x, y = make_data(16)
trainer = Trainer(max_epochs=1, enable_progress_bar=False, num_sanity_val_steps=0, logger=False,
                  enable_checkpointing=False)
trainer.fit(TinyClassifier(), DataLoader(list(zip(x, y)), batch_size=4), DataLoader(list(zip(x, y)), batch_size=4))
print(json.dumps(list(trainer.progress_metrics())))
"""
    single = subprocess.run(
        [sys.executable, "-c", _job(body)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert single.returncode == 0, single.stderr[-3000:]
    one = json.loads(single.stdout.splitlines()[-1])
    assert one == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path)) == [one] * 2


def test_resuming_a_mid_epoch_two_rank_checkpoint_in_one_process_says_it_is_the_process_count(
    dp_runs, tmp_path
):
    """It said the file "holds a value this audiotrain cannot restore", which reads as a damaged file."""
    last = dp_runs[0] / "root-b" / "checkpoints" / "last"  # (stopped mid-epoch)
    one = subprocess.run(
        [sys.executable, str(JOB), "16", str(tmp_path / "c"), "6", str(last), str(tmp_path / "root-c")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=child_env(),
    )  # fmt: skip
    assert one.returncode != 0
    said = one.stderr.strip().splitlines()[-1]
    assert "cannot restore" not in said, said
    assert said.startswith(
        f"audiotrain.train.checkpoint.CheckpointError: {last / 'trainer_state.json'}: the checkpoint was saved in "
        "the middle of epoch 0 by 2 processes and this run has 1 process:"
    ), said
    assert "Resume with 2 processes (e.g. python -m audiotrain launch -n 2 -- python ...)" in said


@pytest.mark.slow  # (two processes: about 5 s)
def test_a_value_logged_on_step_is_that_steps_mean_over_the_ranks(tmp_path):
    # Rank r reads samples r, r + 2, ...: at step k the two ranks' batches of 2 hold 4k .. 4k + 3, whose
    # mean is 4k + 1.5. At each logging step (every 2) the loggers and callbacks get that step's value over
    # both ranks, as one process over the combined batch would (not the interval's mean, 2 less).
    body = """
import mlx.core as mx
import numpy as np
from audiotrain import DataLoader, Trainer
from audiotrain.train.callback import Callback
from tasks import TinyClassifier

class LogsInput(TinyClassifier):
    def compute_loss(self, batch):
        self.log("x_mean", mx.mean(batch[0][:, 0]))
        return super().compute_loss(batch)

class Record(Callback):
    seen = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step % 2 == 0:
            self.seen.append(trainer.callback_metrics["x_mean"])

data = [(np.full((8,), i, np.float32), i % 3) for i in range(16)]
trainer = Trainer(max_epochs=1, enable_progress_bar=False, num_sanity_val_steps=0, logger=False,
                  log_every_n_steps=2, enable_checkpointing=False, callbacks=[Record()])
trainer.fit(LogsInput(), DataLoader(data, batch_size=2))
print(json.dumps(Record.seen))
"""
    assert _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path)) == [[5.5, 13.5]] * 2


# 2-rank jobs and signal timing: with -n, no other test runs beside these (tests/conftest.py).
pytestmark = pytest.mark.serial


def test_every_rank_validates_and_ends_with_rank_0s_batchnorm_statistics(tmp_path):
    """Each rank updates BatchNorm's running statistics from its own batches, so they drifted apart: the
    reduced val_loss (what EarlyStopping and the best checkpoint go by) belonged to no model, and not to the
    one rank 0 saved. As Lightning's DDP broadcasts rank 0's buffers, every rank validates and ends with
    rank 0's statistics."""
    code = f"""
import json, sys
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
import audiotrain
import mlx.core as mx, mlx.nn as nn, mlx.optimizers as optim
import numpy as np
from audiotrain import DataLoader, TrainModule, Trainer, seed_everything

class Normed(TrainModule):
    def __init__(self):
        super().__init__()
        self.norm = nn.BatchNorm(4)
        self.out = nn.Linear(4, 1)

    def compute_loss(self, batch):
        x, y = batch
        return mx.mean((self.out(self.norm(x))[:, 0] - y) ** 2), {{}}

    def configure_optimizers(self):
        return optim.SGD(learning_rate=0.01)

seed_everything(0)
rng = np.random.default_rng(0)
x = (rng.normal(size=(64, 4)) * [1, 2, 3, 4] + [0, 1, 2, 3]).astype(np.float32)
data = list(zip(x, x.sum(1).astype(np.float32)))
trainer = Trainer(max_epochs=2, enable_progress_bar=False, enable_model_summary=False, default_root_dir="run")
module = Normed()
trainer.fit(module, DataLoader(data, batch_size=8, shuffle=True), DataLoader(data[:16], batch_size=8))
print(json.dumps([trainer.callback_metrics["val_loss"], np.array(module.norm.running_mean).tolist()]))
"""
    results = run_ranks(code, 2, timeout=120, cwd=tmp_path)
    assert all(r.returncode == 0 for r in results), describe(results)
    (loss0, stats0), (loss1, stats1) = (json.loads(r.lines()[-1]) for r in results)
    assert stats0 == stats1 and loss0 == loss1
    check = (
        f"""
import json, sys
sys.path.insert(0, {str(tmp_path)!r})
"""
        + code.split("seed_everything(0)")[0]
        + """
rng = np.random.default_rng(0)
x = (rng.normal(size=(64, 4)) * [1, 2, 3, 4] + [0, 1, 2, 3]).astype(np.float32)
data = list(zip(x, x.sum(1).astype(np.float32)))
trainer = Trainer(enable_progress_bar=False, enable_model_summary=False, default_root_dir="check")
[scores] = trainer.validate(Normed(), DataLoader(data[:16], batch_size=8), ckpt_path="run/checkpoints/last")
print(json.dumps(scores["val_loss"]))
"""
    )
    saved = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert saved.returncode == 0, saved.stderr[-3000:]
    # the saved model's val_loss is the one the ranks logged (one process sums the batches in another order)
    assert float(saved.stdout.strip().splitlines()[-1]) == pytest.approx(loss0, rel=1e-5)


def test_a_hooks_epoch_mean_is_weighted_over_every_ranks_batches_also_across_a_resume(tmp_path):
    # Each rank logs batch_idx + rank with its own weight (rank + 1): the epoch mean is Σ value·weight /
    # Σ weight over both ranks' batches (26 / 12), not the mean of the ranks' means. Resumed from a
    # checkpoint inside the epoch, rank 0 takes the saved sums and rank 1 none: the same mean.
    body = """
import numpy as np
from audiotrain import DataLoader, Trainer
from audiotrain.distributed import collectives
from tasks import TinyClassifier

class LogsWeighted(TinyClassifier):
    def on_train_batch_end(self, outputs, batch, batch_idx):
        rank = self.trainer.global_rank
        self.log("r", float(batch_idx + rank), on_step=False, on_epoch=True, batch_size=rank + 1)

data = [(np.full((8,), i, np.float32), i % 3) for i in range(16)]

def trainer(**kwargs):
    return Trainer(max_epochs=1, enable_progress_bar=False, num_sanity_val_steps=0, logger=False,
                   enable_checkpointing=False, **kwargs)

whole = trainer()
whole.fit(LogsWeighted(), DataLoader(data, batch_size=2))
first = trainer(max_steps=2)
first.fit(LogsWeighted(), DataLoader(data, batch_size=2))
first.save_checkpoint("mid.ckpt")
collectives.barrier()
resumed = trainer()
resumed.fit(LogsWeighted(), DataLoader(data, batch_size=2), ckpt_path="mid.ckpt")
print(json.dumps([round(t.callback_metrics["r"], 6) for t in (whole, first, resumed)]))
"""
    assert (
        _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path))
        == [[2.166667, 1.166667, 2.166667]] * 2
    )


def test_ranks_whose_loaders_give_different_numbers_of_batches_are_refused_by_name(tmp_path):
    # A user's own split by rank (lists of batches): rank 1 has a batch more. Its last step waited for
    # rank 0's gradients, and the job ended in "[ring] connection to a peer was lost". Validation may be
    # unequal (its means are weighted over every rank's batches).
    body = """
import mlx.core as mx
from audiotrain import Trainer
from audiotrain.distributed import collectives
from tasks import TinyClassifier, make_data

x, y = make_data(40)
batches = [(mx.array(x[i : i + 4]), mx.array(y[i : i + 4])) for i in range(0, 40, 4)]
r = collectives.rank()
trainer = Trainer(max_epochs=1, enable_progress_bar=False, num_sanity_val_steps=0, logger=False,
                  enable_checkpointing=False, enable_model_summary=False)
trainer.fit(TinyClassifier(), batches[:4], batches[: 2 + r])
print(json.dumps(trainer.global_step))
trainer = Trainer(max_epochs=1, enable_progress_bar=False, logger=False, enable_checkpointing=False,
                  enable_model_summary=False)
try:
    trainer.fit(TinyClassifier(), batches[: 4 + r])
except ValueError as err:
    print(json.dumps(str(err)))
"""
    results = run_ranks(_job(body), 2, timeout=120, cwd=tmp_path)
    said = _last_json(results)
    assert [json.loads(r.lines()[-2]) for r in results] == [4, 4]  # unequal validation: trained
    assert said[0] == said[1]
    assert said[0].startswith(
        "Trainer.fit: the ranks' training loaders give different numbers of batches an epoch "
        "(rank 0: 4, rank 1: 5)"
    )


def test_a_rank_whose_loader_has_no_length_is_refused_where_another_ranks_has_one(tmp_path):
    # Only loaders without a length on every rank are left unchecked: one rank's length against another's
    # unknown end may well differ, so it is refused as unequal numbers are.
    body = """
import mlx.core as mx
from audiotrain import Trainer
from audiotrain.distributed import collectives
from tasks import TinyClassifier, make_data

class Stream:  # an iterable of batches without a length
    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

x, y = make_data(16)
batches = [(mx.array(x[i : i + 4]), mx.array(y[i : i + 4])) for i in range(0, 16, 4)]
trainer = Trainer(max_epochs=1, enable_progress_bar=False, logger=False, enable_checkpointing=False,
                  enable_model_summary=False)
try:
    trainer.fit(TinyClassifier(), batches if collectives.rank() == 0 else Stream(batches))
    print(json.dumps(trainer.global_step))
except ValueError as err:
    print(json.dumps(str(err)))
"""
    said = _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path))
    assert said[0] == said[1]
    assert said[0].startswith(
        "Trainer.fit: the ranks' training loaders give different numbers of batches an epoch "
        "(rank 0: 4, rank 1: no length)"
    )


def test_streams_split_by_rank_that_end_at_different_steps_end_the_epoch_together(tmp_path):
    # A stream split by rank (WebDataset-style shards, 7 of them over 2 ranks, distributed=False) gave
    # rank 0 more batches: rank 1 took its epoch's end into a collective while rank 0 was in a step's
    # all-reduce, and the job failed with "ValueError: negative dimensions are not allowed".
    body = """
import warnings
import numpy as np
from audiotrain import DataLoader, IterableDataset, Trainer
from audiotrain.distributed import collectives
from tasks import TinyClassifier, make_data

x, y = make_data(28)

class Shards(IterableDataset):
    def __iter__(self):
        for shard in range(collectives.rank(), 7, 2):  # rank 0: shards 0, 2, 4, 6; rank 1: 1, 3, 5
            for i in range(4 * shard, 4 * shard + 4):
                yield x[i], y[i]

loader = DataLoader(Shards(), batch_size=2, distributed=False)
trainer = Trainer(max_epochs=2, enable_progress_bar=False, logger=False, enable_checkpointing=False,
                  enable_model_summary=False)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    trainer.fit(TinyClassifier(), loader)
said = [str(w.message) for w in caught if "ended after" in str(w.message)]
limited = Trainer(max_epochs=1, limit_train_batches=7, enable_progress_bar=False, logger=False,
                  enable_checkpointing=False, enable_model_summary=False)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    limited.fit(TinyClassifier(), loader)  # rank 1's stream ends before the limit too
print(json.dumps([trainer.global_step, said[0] if said else None, len(said), limited.global_step]))
"""
    said = _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path))
    assert [s[0] for s in said] == [12, 12]  # 6 steps an epoch, rank 1's share of 3 shards
    assert [s[3] for s in said] == [6, 6]
    assert said[0][1].startswith(
        "Trainer.fit: epoch 0: the training streams of rank(s) 1 ended after 6 batches while the other "
        "ranks still had batches"
    )
    assert said[0][2] == 2 and said[1][1] is None  # once an epoch, on rank 0 alone


def test_ranks_seeded_apart_all_train_from_rank_0s_initial_weights(tmp_path):
    """A script that seeds each rank otherwise (or not at all, as Lightning's DDP allows) builds another
    model on each rank: fit starts every rank from rank 0's weights. With learning rate 0 the weights after
    fit are the ones it started from."""
    body = """
import mlx.core as mx, numpy as np
from mlx.utils import tree_flatten
import audiotrain.distributed as dist
from audiotrain import DataLoader, Trainer
from tasks import TinyClassifier, make_data

mx.random.seed(dist.rank())
module = TinyClassifier(lr=0.0)
weights = lambda: {k: np.array(v).tolist() for k, v in tree_flatten(module.parameters())}
before = weights()
x, y = make_data(16)
trainer = Trainer(max_steps=1, enable_progress_bar=False, enable_model_summary=False, logger=False,
                  enable_checkpointing=False)
trainer.fit(module, DataLoader(list(zip(x, y)), batch_size=4))
print(json.dumps([before, weights()]))
"""
    (before0, after0), (before1, after1) = _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path))
    assert before0 != before1  # the ranks built different models
    assert after0 == after1 == before0


def test_batchnorm_statistics_are_rank_0s_on_every_rank_when_fit_ends_without_validating(tmp_path):
    """Without a validation at the last epoch's end (here no val loader), nothing else made the ranks' running
    statistics, each updated from its own batches, agree: fit ends by giving every rank rank 0's."""
    body = """
import numpy as np
from audiotrain import DataLoader, Trainer, seed_everything
from tasks import TinyClassifier, make_data

seed_everything(0)
module = TinyClassifier(batchnorm=True)
x, y = make_data(32)
trainer = Trainer(max_epochs=1, enable_progress_bar=False, enable_model_summary=False, logger=False,
                  enable_checkpointing=False)
trainer.fit(module, DataLoader(list(zip(x, y)), batch_size=4, shuffle=True))
print(json.dumps([np.array(module.norm.running_mean).tolist(), np.array(module.norm.running_var).tolist()]))
"""
    stats0, stats1 = _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path))
    assert stats0 == stats1


def test_registered_buffers_are_rank_0s_on_every_rank_when_fit_ends(tmp_path):
    """A DINO-style centering buffer (`register_buffer`) updated in the step from each rank's own teacher
    outputs drifted apart between the ranks, while BatchNorm's statistics were made rank 0's: rank 1 ended
    (and validated) with a centre rank 0 never had. As Lightning's DDP broadcasts every buffer, fit ends with
    rank 0's on every rank."""
    body = """
import mlx.core as mx, numpy as np
from audiotrain import DataLoader, Trainer, seed_everything
from tasks import TinyClassifier, make_data


class Centred(TinyClassifier):
    def __init__(self):
        super().__init__()
        self.register_buffer("center", mx.zeros((4,)))

    def compute_loss(self, batch):
        loss, logs = super().compute_loss(batch)
        x = batch[0]
        self.center = 0.9 * self.center + 0.1 * mx.mean(x[:, :4], axis=0)
        return loss, logs


seed_everything(0)
module = Centred()
x, y = make_data(32)
trainer = Trainer(max_epochs=1, enable_progress_bar=False, enable_model_summary=False, logger=False,
                  enable_checkpointing=False)
trainer.fit(module, DataLoader(list(zip(x, y)), batch_size=4, shuffle=True))
print(json.dumps(np.array(module.center).tolist()))
"""
    center0, center1 = _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path))
    assert any(v != 0.0 for v in center0)  # the step did update it
    assert center0 == center1


def test_a_resumed_two_rank_run_equals_an_uninterrupted_one_with_a_buffer_each_rank_updates(tmp_path):
    """A DINO-style centre (`register_buffer`) that the step updates from each rank's own outputs, and that
    the loss reads: rank 1's was its own until the checkpoint, and rank 0's after a resume, so the resumed
    2-rank run's weights differed from the uninterrupted one's (by 0.04 in a tiny audio DINO). Every rank
    now takes rank 0's buffers where a checkpoint is saved, what a resume restores on every rank."""
    body = """
import mlx.core as mx, numpy as np
from mlx.utils import tree_flatten
from audiotrain import DataLoader, Trainer, seed_everything
from tasks import TinyClassifier, make_data


class Centred(TinyClassifier):
    def __init__(self):
        super().__init__()
        self.register_buffer("center", mx.zeros((3,)))

    def compute_loss(self, batch):
        x, y = batch
        logits = self(x)
        loss = mx.mean(nn.losses.cross_entropy(logits - self.center, y))
        self.center = 0.5 * self.center + 0.5 * mx.mean(mx.stop_gradient(logits), axis=0)
        return loss, {}


epochs, root, resume = int(sys.argv[1]), sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None
seed_everything(0)
module = Centred()
x, y = make_data(32)
trainer = Trainer(max_epochs=epochs, enable_progress_bar=False, enable_model_summary=False, logger=False,
                  default_root_dir=root)
trainer.fit(module, DataLoader(list(zip(x, y)), batch_size=4, shuffle=True), ckpt_path=resume)
print(json.dumps({k: np.array(v).tolist() for k, v in tree_flatten(module.trainable_parameters())}))
""".replace("import mlx.core as mx,", "import mlx.nn as nn, mlx.core as mx,")
    job = _job(body)
    straight = _last_json(run_ranks(job, 2, args=["2", str(tmp_path / "a")], timeout=120, cwd=tmp_path))
    _last_json(run_ranks(job, 2, args=["1", str(tmp_path / "b")], timeout=120, cwd=tmp_path))
    last = str(tmp_path / "b" / "checkpoints" / "last")
    resumed = _last_json(run_ranks(job, 2, args=["2", str(tmp_path / "b"), last], timeout=120, cwd=tmp_path))
    assert straight[0] == straight[1]
    assert resumed[0] == straight[0]


def test_max_time_reached_on_one_ranks_clock_stops_every_rank_at_the_same_step(tmp_path):
    """From step 2 rank 1's clock says an hour has passed, rank 0's a second: the ranks decide together (at
    logging steps), so both stop at step 3. One rank stopping alone left the other waiting in its next
    all-reduce."""
    body = """
import audiotrain.distributed as dist
from audiotrain import DataLoader, Trainer
from tasks import TinyClassifier, make_data

if dist.rank() == 1:
    elapsed = Trainer.elapsed
    Trainer.elapsed = lambda self: elapsed(self) + (3600.0 if self.global_step >= 2 else 0.0)
x, y = make_data(32)
trainer = Trainer(max_time={"minutes": 30}, max_epochs=10, log_every_n_steps=3, enable_progress_bar=False,
                  enable_model_summary=False, logger=False, enable_checkpointing=False)
trainer.fit(TinyClassifier(), DataLoader(list(zip(x, y)), batch_size=4))
print(json.dumps([trainer.current_epoch, trainer.global_step]))
"""
    assert _last_json(run_ranks(_job(body), 2, timeout=60, cwd=tmp_path)) == [[0, 3]] * 2


def test_one_ranks_non_finite_loss_does_not_make_it_skip_an_update_the_others_apply(tmp_path):
    """Rank 1's loss is infinite (its gradients finite): under data parallel only the averaged gradients
    decide whether a step is skipped, the same on every rank, so both ranks apply the same updates and end
    with the same weights. Rank 1 deciding from its own loss skipped updates rank 0 applied, and the ranks
    drifted apart without a word."""
    body = """
import mlx.core as mx, numpy as np
from mlx.utils import tree_flatten
import audiotrain.distributed as dist
from audiotrain import DataLoader, Trainer, seed_everything
from tasks import TinyClassifier, make_data


class InfiniteLossOnRank1(TinyClassifier):
    def compute_loss(self, batch):
        loss, logs = super().compute_loss(batch)
        return loss + mx.stop_gradient(mx.array(float("inf") if dist.rank() == 1 else 0.0)), logs


seed_everything(0)
module = InfiniteLossOnRank1()
x, y = make_data(16)
trainer = Trainer(max_steps=2, enable_progress_bar=False, enable_model_summary=False, logger=False,
                  enable_checkpointing=False)
trainer.fit(module, DataLoader(list(zip(x, y)), batch_size=4))
print(json.dumps({k: np.array(v).tolist() for k, v in tree_flatten(module.parameters())}))
"""
    weights0, weights1 = _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path))
    assert weights0 == weights1


@pytest.mark.parametrize(
    "averaging",
    ["EMAWeightAveraging(decay=0.9)", "StochasticWeightAveraging(swa_lrs=1e-3, swa_epoch_start=1)"],
)
def test_batchnorm_statistics_of_the_average_are_rank_0s_in_validation_and_when_fit_ends(tmp_path, averaging):
    """An averaging callback averages each rank's own running statistics (updated from its own batches) and
    put that average into the module after the Trainer had given every rank rank 0's: the ranks validated
    (EMA) and ended with different BatchNorm statistics, not the model rank 0 saves (README "Data parallel").
    Now the average's statistics are rank 0's on every rank too."""
    body = f"""
import numpy as np
from audiotrain import DataLoader, Trainer, seed_everything
from audiotrain.train import EMAWeightAveraging, StochasticWeightAveraging
from audiotrain.train.callback import Callback
from tasks import TinyClassifier, make_data

class Seen(Callback):
    def __init__(self):
        self.stats = []

    def on_validation_epoch_start(self, trainer, module):
        self.stats.append(np.array(module.norm.running_mean).tolist())

seed_everything(0)
module, seen = TinyClassifier(batchnorm=True), Seen()
x, y = make_data(32)
trainer = Trainer(max_epochs=2, enable_progress_bar=False, enable_model_summary=False, logger=False,
                  enable_checkpointing=False, num_sanity_val_steps=0, check_val_every_n_epoch=2,
                  callbacks=[{averaging}, seen])
data = list(zip(x, y))
trainer.fit(module, DataLoader(data, batch_size=4, shuffle=True), DataLoader(data[:8], batch_size=4))
print(json.dumps([seen.stats, np.array(module.norm.running_mean).tolist()]))
"""
    (seen0, end0), (seen1, end1) = _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path))
    assert seen0 == seen1 and end0 == end1


def test_a_window_resumed_under_another_schedule_is_warned_of_once_for_the_job(tmp_path):
    """GradientAccumulationScheduler's warning for a checkpoint whose open window differs from its schedule
    came from every rank: the job's output said it once per process, where the callbacks' other warnings
    (StochasticWeightAveraging's) come from rank 0 alone."""
    body = f"""
import warnings
from pathlib import Path
from audiotrain import DataLoader, Trainer, seed_everything
from audiotrain.train import GradientAccumulationScheduler
from audiotrain.train.callback import Callback
from tasks import TinyClassifier, make_data

class SaveInsideAWindow(Callback):
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if batch_idx == 1:  # 2 of the window's 3 batches
            trainer.save_checkpoint(Path({str(tmp_path)!r}) / "saved")

def fit(accumulate, callbacks, max_epochs, ckpt_path=None):
    seed_everything(0)
    x, y = make_data(48)
    trainer = Trainer(max_epochs=max_epochs, enable_progress_bar=False, enable_model_summary=False,
                      logger=False, enable_checkpointing=False, accumulate_grad_batches=accumulate,
                      callbacks=callbacks, default_root_dir={str(tmp_path)!r})
    trainer.fit(TinyClassifier(), DataLoader(list(zip(x, y)), batch_size=4), ckpt_path=ckpt_path)

fit(3, [SaveInsideAWindow()], max_epochs=1)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    fit(1, [GradientAccumulationScheduler({{0: 2}})], 2, Path({str(tmp_path)!r}) / "saved")
print(json.dumps(sum("GradientAccumulationScheduler's 2 differs" in str(w.message) for w in caught)))
"""
    assert _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path)) == [1, 0]


def test_each_rank_draws_its_own_augmentation_in_the_step_and_a_resume_goes_on_with_it(tmp_path):
    """SpecAugment or mixup drawn with mx.random in compute_loss: under data parallel every rank drew the same
    masks for its different samples (the loader's workers are seeded apart by rank for that reason). Each
    rank draws its own now, rank 0 what one process draws, and a resume mid-run goes on with each rank's."""
    body = """
import mlx.core as mx
import audiotrain.distributed as dist
from audiotrain import DataLoader, Trainer
from audiotrain.callbacks import Callback
from tasks import TinyClassifier, make_data

class Masked(TinyClassifier):
    def compute_loss(self, batch):
        loss, metrics = super().compute_loss(batch)
        return loss, {**metrics, "drawn": mx.random.uniform()}

class Record(Callback):
    drawn = []
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        Record.drawn.append(float(outputs["drawn"]))

def fit(steps, ckpt=None):
    x, y = make_data(32)
    trainer = Trainer(max_steps=steps, seed=3, enable_progress_bar=False, enable_model_summary=False,
                      logger=False, default_root_dir=sys.argv[1], callbacks=[Record()])
    trainer.fit(Masked(), DataLoader(list(zip(x, y)), batch_size=4), ckpt_path=ckpt)
    return trainer.checkpoint_callback.last_model_path

fit(5)
straight, Record.drawn = Record.drawn, []
fit(5, fit(2))
print(json.dumps([straight, Record.drawn]))
"""
    job = _job(body)
    (s0, r0), (s1, r1) = _last_json(run_ranks(job, 2, args=[str(tmp_path / "dp")], timeout=120, cwd=tmp_path))
    assert len(s0) == len(s1) == 5
    assert all(a != b for a, b in zip(s0, s1)), (s0, s1)  # each rank its own draws, at every step
    assert (r0, r1) == (s0, s1)  # the resumed run drew what the uninterrupted one did, on each rank
    out = subprocess.run(
        [sys.executable, "-c", job, str(tmp_path / "one")],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(),
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.splitlines()[-1])[0] == s0  # rank 0 draws what one process draws


def test_what_setup_draws_with_mx_random_is_the_same_on_every_rank(tmp_path):
    """A split or a fixed random projection drawn with mx.random in `setup` or `configure_model` (host code
    that must agree across ranks, as a datamodule's split must) was drawn from each rank's own key: rank 1
    held another split than rank 0. The ranks draw apart from the first step on, not in setup."""
    body = """
import mlx.core as mx
from audiotrain import DataLoader, Trainer
from tasks import TinyClassifier, make_data

class Split(TinyClassifier):
    def setup(self, stage):
        self.order = mx.random.permutation(32).tolist()

x, y = make_data(32)
module = Split()
trainer = Trainer(max_steps=1, seed=3, enable_progress_bar=False, enable_model_summary=False,
                  logger=False, enable_checkpointing=False, default_root_dir=sys.argv[1])
trainer.fit(module, DataLoader(list(zip(x, y)), batch_size=4))
print(json.dumps(module.order))
"""
    job = _job(body)
    order0, order1 = _last_json(run_ranks(job, 2, args=[str(tmp_path / "dp")], timeout=120, cwd=tmp_path))
    assert order0 == order1


def test_reload_dataloaders_every_n_epochs_under_the_launcher(tmp_path):
    """Two ranks started by `python -m audiotrain launch` each ask their DataModule for a longer loader at
    epoch 2 (reload_dataloaders_every_n_epochs=2, refused before): every rank's rebuilt loader is sharded
    (32 samples: 2 batches of 8 a rank, then 48: 3), the ranks take the same steps and end identical."""
    body = """
from pathlib import Path
import mlx.core as mx
from mlx.utils import tree_flatten
from audiotrain import DataLoader, DataModule, Trainer
from audiotrain.distributed import collectives
from tasks import TinyClassifier, make_data

class Curriculum(DataModule):
    asked = []
    def train_dataloader(self):
        self.asked.append(self.trainer.current_epoch)
        x, y = make_data(32 + 8 * self.trainer.current_epoch)
        return DataLoader(list(zip(x, y)), batch_size=8, shuffle=True)

batches = []
class Counted(TinyClassifier):
    def on_train_epoch_start(self):
        batches.append(self.trainer.num_training_batches)

module = Counted()
trainer = Trainer(max_epochs=3, reload_dataloaders_every_n_epochs=2, enable_progress_bar=False, logger=False,
                  enable_model_summary=False, enable_checkpointing=False, default_root_dir="root")
trainer.fit(module, datamodule=Curriculum())
total = float(sum(mx.sum(v).item() for _, v in tree_flatten(module.parameters())))
rank = collectives.rank()
out = [rank, Curriculum.asked, batches, trainer.global_step, total]
Path(f"rank{rank}.json").write_text(json.dumps(out))
"""
    proc = run_launcher(_job(body), n=2, timeout=120, tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0[1:4] == r1[1:4] == [[0, 2], [2, 2, 3], 7]
    assert r0[4] == r1[4]


def test_a_batch_sampler_that_gives_every_rank_the_same_batches_is_warned_of_on_rank_0(tmp_path):
    # Training: a torch user's P x K (class-balanced) batch sampler, which the DataLoader leaves unsharded,
    # drew the same batches on both ranks: every step trained on two copies of one batch, and nothing said
    # so. One that splits itself by rank, and distributed=False (every rank meant to read all), are not
    # warned of. Validation and test: the means were right (every rank's alike), but the embeddings a hook
    # gathered from both ranks for the equal error rate held every clip twice, and the EER of 2 ranks was
    # 0.099 where one process's was 0.108 for the same weights. (One job for both: a launch costs seconds.)
    body = """
import warnings
from audiotrain import DataLoader, Trainer
from audiotrain.distributed import collectives
from tasks import TinyClassifier, make_data

x, y = make_data(32)
data = [(x[i], y[i]) for i in range(32)]

class PK:
    def __init__(self, by_rank=False):
        self.by_rank = by_rank
    def __len__(self):
        return 2
    def __iter__(self):
        start = 16 * collectives.rank() if self.by_rank else 0
        return iter([list(range(start, start + 8)), list(range(start + 8, start + 16))])

said = []
for sampler, distributed in ((PK(), None), (PK(by_rank=True), None), (PK(), False)):
    trainer = Trainer(max_epochs=2, enable_progress_bar=False, logger=False, enable_checkpointing=False,
                      enable_model_summary=False, num_sanity_val_steps=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(TinyClassifier(), DataLoader(data, batch_sampler=sampler, distributed=distributed))
    said.append([str(w.message) for w in caught if "same batches" in str(w.message)])

trainer = Trainer(max_epochs=2, enable_progress_bar=False, logger=False, enable_checkpointing=False,
                  enable_model_summary=False)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    model = TinyClassifier()
    trainer.fit(model, DataLoader(data, batch_size=8), DataLoader(data, batch_sampler=PK()))
    trainer.validate(model, DataLoader(data, batch_sampler=PK()), verbose=False)
    trainer.test(model, DataLoader(data, batch_sampler=PK(by_rank=True)), verbose=False)
said.append([str(w.message) for w in caught if "same batches" in str(w.message)])
print(json.dumps(said))
"""
    said = _last_json(run_ranks(_job(body), 2, timeout=180, cwd=tmp_path))
    assert said[1] == [[], [], [], []]  # rank 0 alone warns
    training, evaluation = said[0][:3], said[0][3]
    assert training[1:] == [[], []]
    assert training[0] == [
        "Trainer.fit: the training DataLoader's batch_sampler PK gave all 2 ranks the same batches of "
        "indices this epoch (a batch_sampler you pass is not sharded by the DataLoader), so each step trains "
        "on 2 copies of one batch. Shard it by rank (audiotrain.distributed.rank() and world_size(): each "
        "rank its own batches, as torch's DistributedSampler does), or pass DataLoader(..., "
        "distributed=False) where every rank is meant to read these indices (the same batches, or a dataset "
        "of each rank's own)"
    ]
    # Once in fit (two validations), once for validate; test's sampler splits itself by rank.
    assert [s[: s.index(" DataLoader's")] for s in evaluation] == [
        "Trainer.fit: the validation",
        "Trainer.validate: the validation",
    ]
    assert evaluation[0].startswith(
        "Trainer.fit: the validation DataLoader's batch_sampler PK gave all 2 ranks the same batches of "
        "indices (a batch_sampler you pass is not sharded by the DataLoader), so every rank reads the same "
        "samples: what a hook gathers from the ranks (all_gather_object, self.all_gather: the embeddings "
        "behind a whole-set score) holds each sample 2 times. Shard it by rank"
    )


def test_a_rank_whose_own_validation_loader_yields_no_batches_takes_the_other_ranks_means(tmp_path):
    """A loader the user sharded by hand, unevenly: rank 1's two samples make no batch of 4 with drop_last.
    That rank returned before the means' collective, on which rank 0 waited for ever; now every rank agrees
    the job's batch count, rank 1 takes rank 0's means (and is warned), and a loader empty on every rank is
    the one-process warning on each."""
    body = """
import warnings
from audiotrain import DataLoader, Trainer
from audiotrain.distributed import collectives
from tasks import TinyClassifier, make_data

rank = collectives.rank()
x, y = make_data(32)
mine = 8 if rank == 0 else 2
val = DataLoader(list(zip(x[:mine], y[:mine])), batch_size=4, drop_last=True, distributed=False)
empty = DataLoader(list(zip(x[:2], y[:2])), batch_size=4, drop_last=True, distributed=False)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    trainer = Trainer(max_epochs=2, enable_progress_bar=False, num_sanity_val_steps=0, logger=False,
                      enable_checkpointing=False)
    trainer.fit(TinyClassifier(), DataLoader(list(zip(x, y)), batch_size=4), val)
    fitted = trainer.callback_metrics["val_loss"]
    validated = trainer.validate(trainer.lightning_module, val, verbose=False)[0]["val_loss"]
    nothing = trainer.validate(trainer.lightning_module, empty, verbose=False)
said = sorted({str(w.message).split(":")[1].split(",")[0].strip() for w in caught
               if "no batches" in str(w.message)})
print(json.dumps([fitted, validated, nothing, said]))
"""
    (f0, v0, n0, said0), (f1, v1, n1, said1) = _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path))
    assert f0 == f1 and v0 == v1 and np.isfinite(f0) and np.isfinite(v0)
    assert n0 == n1 == [{}]
    assert said0 == ["the val loader yielded no batches"]  # (the loader empty on every rank)
    assert said1 == [
        "the val loader yielded no batches",
        "the val loader yielded no batches on rank 1 (of 2)",
    ]


def test_trainer_strategy_reduce_all_gather_and_boolean_decision_over_two_ranks(tmp_path):
    """Lightning's `trainer.strategy.reduce(tensor, reduce_op=...)`, `all_gather` and
    `reduce_boolean_decision` (its test_results: a SUM of [1.0] is the world size) were AttributeErrors.
    Lightning 2.6.6 on 2 gloo ranks, measured: reduce of [1 + rank] gives [3.] for "sum" ("SUM" too), [1.5]
    for "mean" and "avg", [2.] "max", [1.] "min"; a Python number comes back unreduced (its DDP reduces
    tensors only); all_gather stacks (2, ...); reduce_boolean_decision(rank == 0) is False, with
    all=False True. (reduce_op=None, its documented default's spelling, is a TypeError there: the mean
    here.)"""
    body = """
import mlx.core as mx
from audiotrain import Trainer
from audiotrain.distributed import collectives

rank = collectives.rank()
s = Trainer(enable_progress_bar=False, logger=False, default_root_dir="root").strategy
x = mx.array([1.0 + rank])
out = [s.reduce(x, reduce_op=op).tolist() for op in ("sum", "SUM", "mean", "avg", None, "max", "min")]
out += [s.reduce(1.0 + rank, reduce_op="sum"), s.all_gather(mx.array([rank, 2 * rank])).tolist()]
out += [s.reduce_boolean_decision(rank == 0), s.reduce_boolean_decision(rank == 0, all=False)]
out += [s.distributed_sampler_kwargs, s.num_nodes]
print(json.dumps(out))
"""
    r0, r1 = _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path))
    expected = [[3.0], [3.0], [1.5], [1.5], [1.5], [2.0], [1.0]]
    # (Lightning's DDPStrategy.distributed_sampler_kwargs: num_nodes * devices replicas, the global rank)
    assert r0 == [*expected, 1.0, [[0, 0], [1, 2]], False, True, {"num_replicas": 2, "rank": 0}, 1]
    assert r1 == [*expected, 2.0, [[0, 0], [1, 2]], False, True, {"num_replicas": 2, "rank": 1}, 1]


def test_every_rank_can_load_a_checkpoint_as_soon_as_save_checkpoint_returns(tmp_path):
    """Lightning's DDP tests save with `trainer.save_checkpoint(path)` on every rank and load the path at once
    (`Model.load_from_checkpoint(path)`): Lightning's save_checkpoint ends in a barrier. Here the other ranks
    returned before rank 0 had written it, and rank 1 read "checkpoint folder model.ckpt does not exist"
    (or would read an earlier save's folder at that path). Now every rank returns once it is written."""
    body = """
import numpy as np
from audiotrain import Trainer
from tasks import TinyClassifier, make_batches, weights

model = TinyClassifier()
trainer = Trainer(max_steps=1, enable_progress_bar=False, logger=False, enable_checkpointing=False,
                  enable_model_summary=False, default_root_dir="root")
trainer.fit(model, make_batches(32, batch_size=8))
path = trainer.strategy.broadcast(f"model-{trainer.global_rank}.ckpt")  # (rank 0's path on every rank)
trainer.save_checkpoint(path)
loaded = TinyClassifier.load_from_checkpoint(path)
print(json.dumps([np.array_equal(a, b) for a, b in zip(weights(model).values(), weights(loaded).values())]))
"""
    assert _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path)) == [[True] * 4] * 2


def test_checkpoint_hooks_run_on_every_rank_as_lightnings(tmp_path):
    """Lightning 2.6.6 (2 gloo ranks, measured) calls a callback's and the module's `on_save_checkpoint` on
    every rank (its dump_checkpoint runs on each; rank 0 writes). Here rank 0 alone ran them: a hook that
    counts its saves, or calls a collective there (`trainer.strategy.reduce`), left rank 1 out of step.
    Two ModelCheckpoint saves (max_epochs=2), each hook once per save on each rank; what rank 0's hook adds
    is in the checkpoint."""
    body = """
import mlx.core as mx
from audiotrain import Trainer
from audiotrain.train.callback import Callback
from tasks import TinyClassifier, make_batches

class Counts(Callback):
    saves = 0
    def on_save_checkpoint(self, trainer, module, checkpoint):
        Counts.saves += 1
        checkpoint["ranks_summed"] = trainer.strategy.reduce(mx.array(1.0), reduce_op="sum").item()

class Module(TinyClassifier):
    saves = 0
    def on_save_checkpoint(self, checkpoint):
        Module.saves += 1

trainer = Trainer(max_epochs=2, enable_progress_bar=False, logger=False, enable_model_summary=False,
                  callbacks=[Counts()], default_root_dir="root")
trainer.fit(Module(), make_batches(32, batch_size=8))
print(json.dumps([Counts.saves, Module.saves]))
"""
    assert _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path)) == [[2, 2]] * 2
    state = json.loads(next((tmp_path / "root").rglob("trainer_state.json")).read_text())
    assert state["ranks_summed"] == 2.0


def test_batch_hooks_beside_a_datamodule_are_warned_of_on_rank_0_alone(tmp_path):
    """Lightning says it with rank_zero_warn: one warning a job, not one a rank."""
    body = """
import warnings
from audiotrain import DataModule, Trainer
from tasks import TinyClassifier, make_batches

class Transforms(TinyClassifier):
    def on_before_batch_transfer(self, batch, dataloader_idx):
        return batch

class Batches(DataModule):
    def train_dataloader(self):
        return make_batches(16, batch_size=8)

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    Trainer(max_epochs=1, enable_progress_bar=False, logger=False, enable_checkpointing=False).fit(
        Transforms(), datamodule=Batches())
print(json.dumps(sum("You have overridden" in str(w.message) for w in caught)))
"""
    assert _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path)) == [1, 0]


def test_every_rank_hears_in_on_exception_the_signal_one_rank_heard(tmp_path):
    """Lightning 2.6.6 gives `on_exception` a SIGTERMException on every rank of a preempted job, so a callback
    that requeues (or saves with a barrier) runs alike on all. Here the rank that heard the SIGTERM got a
    KeyboardInterrupt naming it (`signum` 15) and the rank that stopped on the ranks' agreement a bare one
    (no `signum`): a callback branching on it ran different code, and different collectives, per rank."""
    body = """
import signal
from audiotrain import Callback, Trainer
from audiotrain.distributed import collectives
from tasks import TinyClassifier, make_batches

class SigtermOnRank0(Callback):
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == 2 and collectives.rank() == 0:
            signal.raise_signal(signal.SIGTERM)

    def on_exception(self, trainer, module, error):
        self.heard = getattr(error, "signum", None)

cb = SigtermOnRank0()
t = Trainer(max_epochs=1, enable_progress_bar=False, logger=False, enable_checkpointing=False,
            log_every_n_steps=1, callbacks=[cb])
t.fit(TinyClassifier(), make_batches(64, batch_size=8))
print(json.dumps([t.interrupted, cb.heard]))
"""
    assert _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path)) == [[True, 15], [True, 15]]


def test_a_val_dataloader_asked_for_at_the_first_validation_is_asked_alike_on_every_rank(tmp_path):
    """With check_val_every_n_epoch=2 and no sanity check a datamodule's val_dataloader() is asked for at the
    first validation, as Lightning 2.6.6 asks (tests/test_hooks.py): every rank asks there, after the same
    batch, and the ranks' validations agree (a vocabulary the first epoch built is there on each)."""
    body = """
from audiotrain import DataLoader, DataModule, Trainer, seed_everything
from tasks import TinyClassifier, make_data

class Vocabulary(DataModule):
    asked = []
    def train_dataloader(self):
        x, y = make_data(32)
        return DataLoader(list(zip(x, y)), batch_size=4, shuffle=True)
    def val_dataloader(self):
        self.asked.append([self.trainer.current_epoch, self.trainer.global_step])
        x, y = make_data(16, seed=1)
        return DataLoader(list(zip(x, y))[: len(self.vocabulary) * 4], batch_size=4)

class BuildsIt(TinyClassifier):
    def on_train_epoch_start(self):
        self.trainer.datamodule.vocabulary = ["a", "b", "c"]

seed_everything(0)
trainer = Trainer(max_epochs=2, check_val_every_n_epoch=2, num_sanity_val_steps=0, enable_progress_bar=False,
                  enable_model_summary=False, logger=False, enable_checkpointing=False)
trainer.fit(BuildsIt(), datamodule=Vocabulary())
print(json.dumps([Vocabulary.asked, trainer.history["val_loss"]]))
"""
    (asked0, val0), (asked1, val1) = _last_json(run_ranks(_job(body), 2, timeout=120, cwd=tmp_path))
    assert asked0 == asked1 == [[1, 8]]  # (4 steps an epoch on each rank's half of the 8 batches)
    assert val0 == val1 and val0[0] is None and val0[1] is not None
