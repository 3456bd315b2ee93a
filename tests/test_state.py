"""The Trainer's named state objects (train/state.py): each saves and restores itself exactly, and resume
restores all of them."""

import importlib
import json
import math
import os
import random
import sys
import types
from pathlib import Path

import audiotrain  # noqa: F401  (before mlx)
from audiotrain import Trainer
from audiotrain.data import DataLoader, Dataset
from audiotrain.train.state import History, Progress, RandomState, RunningMeans, StateError, TrainableSets

import mlx.core as mx
import numpy as np
import pytest
from tasks import TinyClassifier, make_batches, make_data, quiet_trainer, weights


def test_progress_round_trips_and_an_ended_epoch_resumes_at_the_next():
    p = Progress(
        epoch=2, global_step=9, batch_in_epoch=4, total_batches=20, micro_batches=1, validation_pending=True
    )
    p.validated_epoch = 2  # (not its default: a resume keeps the epoch's validation in its history row)
    q = Progress()
    q.load_state_dict(json.loads(json.dumps(p.state_dict())))
    assert q == p
    p.epoch_complete = True
    saved = p.state_dict()
    assert (saved["epoch"], saved["batch_in_epoch"], saved["validation_pending"]) == (3, 0, False)
    with pytest.raises(StateError, match="Progress state is missing micro_batches"):
        Progress().load_state_dict({k: v for k, v in saved.items() if k != "micro_batches"})


def test_running_means_weigh_both_scopes_the_same_way_and_round_trip():
    means = RunningMeans()
    means.add({"loss": mx.array(1.0)}, 16)
    means.add({"loss": mx.array(4.0)}, 4)
    assert means.epoch_means() == {"loss": pytest.approx((16 + 16) / 20)}
    restored = RunningMeans()
    restored.load_state_dict(json.loads(json.dumps(means.state_dict())))
    assert restored.pop_interval() == means.pop_interval() == {"loss": pytest.approx(1.6)}
    assert means.pop_interval() == {}  # a new interval


def test_running_means_saved_before_their_steps_are_folded_count_them_and_resume_again():
    """A checkpoint in the middle of a logging interval holds steps not folded into the sums yet: its
    weights count them too, so the resumed run's own next checkpoint counts them once more (it said 0.0,
    then -32.0, and that checkpoint was refused: 'interval_weight' must be a number >= 0)."""
    means = RunningMeans()
    means.add({"loss": mx.array(1.0)}, 16)
    means.add({"loss": mx.array(4.0)}, 16)
    saved = json.loads(json.dumps(means.state_dict()))
    assert len(saved["pending"]) == 2 and saved["interval_weight"] == saved["epoch_weight"] == 32.0
    resumed = RunningMeans()
    resumed.load_state_dict(saved)
    resumed.add({"loss": mx.array(7.0)}, 16)
    again = json.loads(json.dumps(resumed.state_dict()))
    assert again["interval_weight"] == again["epoch_weight"] == 48.0
    twice = RunningMeans()
    twice.load_state_dict(again)
    assert (twice.interval_weight, twice.epoch_weight) == (48.0, 48.0)
    assert twice.pop_interval() == {"loss": pytest.approx((1 + 4 + 7) / 3)}


@pytest.mark.parametrize("fold_every", [3, 256])
def test_running_means_resumed_between_folds_equal_an_uninterrupted_run_bitwise(monkeypatch, fold_every):
    monkeypatch.setattr(RunningMeans, "FOLD_EVERY", fold_every)
    rng = np.random.default_rng(0)
    steps = [
        (
            {"loss": mx.array(float(rng.normal())), "acc": mx.array(float(rng.uniform()))},
            int(rng.integers(1, 9)),
        )
        for _ in range(10)
    ]
    whole, first = RunningMeans(), RunningMeans()
    for values, weight in steps:
        whole.add(values, weight)
    for values, weight in steps[:7]:
        first.add(values, weight)
    resumed = RunningMeans()
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    for values, weight in steps[7:]:
        resumed.add(values, weight)
    assert resumed.epoch_means() == whole.epoch_means()
    assert resumed.pop_interval() == whole.pop_interval()
    expected = sum(float(v["loss"]) * w for v, w in steps) / sum(w for _, w in steps)
    assert whole.epoch_means()["loss"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("fold_every", [3, 256])
def test_running_means_with_weights_on_the_device_equal_number_weights_and_resume_bitwise(
    monkeypatch, fold_every
):
    """A weight the device computes (a scalar array: a masked batch's frames) gives the same means, to the
    last bit, as the same weight given as a number, and resumes exactly; it is not read when added."""
    monkeypatch.setattr(RunningMeans, "FOLD_EVERY", fold_every)
    rng = np.random.default_rng(1)
    steps = [({"loss": mx.array(float(rng.normal()))}, int(rng.integers(0, 9))) for _ in range(10)]
    numbers, whole, first = RunningMeans(), RunningMeans(), RunningMeans()
    for values, weight in steps:
        numbers.add(values, weight)
        whole.add(values, mx.array(weight, mx.float32))
    assert whole.has_interval_steps and whole.interval_weight == numbers.interval_weight
    for values, weight in steps[:7]:
        first.add(values, mx.array(weight, mx.float32))
    resumed = RunningMeans()
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    for values, weight in steps[7:]:
        resumed.add(values, mx.array(weight, mx.float32))
    assert resumed.epoch_means() == whole.epoch_means() == numbers.epoch_means()
    assert resumed.pop_interval() == whole.pop_interval() == numbers.pop_interval()
    assert not whole.has_interval_steps and whole.epoch_weight == numbers.epoch_weight


def test_running_means_average_each_value_over_the_steps_that_reported_it():
    """As Lightning: a value logged on some steps only is not divided by the other steps' weight, and a value
    with its own weight (a count the step computed) is weighted by it, a step counting nothing included."""
    means = RunningMeans()
    means.add({"loss": mx.array(1.0), "aux": mx.array(3.0)}, 4)
    means.add({"loss": mx.array(2.0)}, 4)
    means.add({"loss": mx.array(3.0), "acc": mx.array(0.5)}, 2, {"acc": mx.array(6.0)})
    means.add({"loss": mx.array(4.0), "acc": mx.array(0.0)}, 2, {"acc": mx.array(0.0)})  # counted none
    means.add({"loss": mx.array(5.0), "acc": mx.array(1.0)}, 2, {"acc": mx.array(2.0)})
    expected = {"loss": pytest.approx(36 / 14), "aux": pytest.approx(3.0), "acc": pytest.approx(5 / 8)}
    assert means.epoch_means() == expected
    assert means.pop_interval() == expected


@pytest.mark.parametrize("fold_every", [2, 256])
def test_running_means_with_own_weights_and_missing_values_resume_bitwise(monkeypatch, fold_every):
    monkeypatch.setattr(RunningMeans, "FOLD_EVERY", fold_every)
    rng = np.random.default_rng(1)
    steps = []
    for i in range(10):
        values = {"loss": mx.array(float(rng.normal())), "acc": mx.array(float(rng.uniform()))}
        if i % 3 == 0:
            values["sometimes"] = mx.array(float(rng.normal()))
        steps.append((values, int(rng.integers(1, 9)), {"acc": mx.array(float(rng.integers(0, 5)))}))
    whole, first = RunningMeans(), RunningMeans()
    for step in steps:
        whole.add(*step)
    for step in steps[:7]:
        first.add(*step)
    resumed = RunningMeans()
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    for step in steps[7:]:
        resumed.add(*step)
    assert resumed.epoch_means() == whole.epoch_means()
    assert resumed.pop_interval() == whole.pop_interval()
    acc = sum(float(v["acc"]) * float(own["acc"]) for v, _, own in steps) / sum(
        float(o["acc"]) for *_, o in steps
    )
    sometimes = [(float(v["sometimes"]), w) for v, w, _ in steps if "sometimes" in v]
    assert whole.epoch_means()["acc"] == pytest.approx(acc, rel=1e-6)
    assert whole.epoch_means()["sometimes"] == pytest.approx(
        sum(v * w for v, w in sometimes) / sum(w for _, w in sometimes), rel=1e-6
    )


def test_running_means_of_a_checkpoint_without_per_value_weights_resume_as_they_were_saved():
    """A checkpoint from before each value had its own total weight: its weights count every step, the
    unfolded ones too. Each value it folded is taken as reported by every folded step (which it was unless
    the step logged it on some steps only); the unfolded steps say what they hold."""
    old = {  # 20 of weight folded into the epoch's sums (4 of it in the interval's), 4 pending
        "interval": {"loss": 6.0},
        "interval_weight": 8.0,
        "epoch": {"loss": 30.0, "acc": 8.0},
        "epoch_weight": 24.0,
        "pending": [[{"loss": 2.0}, 4.0]],
    }
    means = RunningMeans()
    means.load_state_dict(old)
    assert means.epoch_means() == {"loss": pytest.approx(38 / 24), "acc": pytest.approx(8 / 20)}
    assert means.pop_interval() == {"loss": pytest.approx(14 / 8)}
    assert (means.interval_weight, means.epoch_weight) == (0.0, 24.0)


def test_a_metric_of_a_batch_that_counts_nothing_leaves_the_mean_and_one_that_never_counts_is_nan():
    """A `(value, count)` metric of a batch that counts nothing is 0/0, NaN, with weight 0: it weighs nothing
    in the mean (NaN x 0 would have made the epoch's mean NaN), and a value whose every count is 0 has no mean
    (NaN, as across processes), not 0.0, which would read as a measured accuracy of 0."""
    means = RunningMeans()
    means.add({"loss": mx.array(1.0), "acc": mx.array(0.5)}, 2, {"acc": mx.array(4.0)})
    means.add({"loss": mx.array(3.0), "acc": mx.array(float("nan"))}, 2, {"acc": mx.array(0.0)})
    assert means.epoch_means() == {"loss": pytest.approx(2.0), "acc": pytest.approx(0.5)}
    none_counted = RunningMeans()
    none_counted.add({"loss": mx.array(1.0), "acc": mx.array(float("nan"))}, 2, {"acc": mx.array(0.0)})
    means = none_counted.epoch_means()
    assert means["loss"] == pytest.approx(1.0) and math.isnan(means["acc"])


def test_running_means_of_every_rank_resume_on_their_own_rank_or_together_on_rank_0():
    """A data-parallel checkpoint holds each rank's sums: resumed on as many ranks, each takes its own; on
    another number of ranks, rank 0 takes them all (the job's means still cover every step once)."""
    first, second = RunningMeans(), RunningMeans()
    first.add({"loss": mx.array(1.0)}, 4)
    second.add({"loss": mx.array(3.0)}, 4)
    saved = json.loads(json.dumps({"ranks": [first.state_dict(), second.state_dict()]}))
    on_rank = [RunningMeans(), RunningMeans()]
    for rank, means in enumerate(on_rank):
        means.load_state_dict(saved, rank=rank, world_size=2)
    assert [(m.epoch_means(), m.epoch_weight) for m in on_rank] == [
        ({"loss": 1.0}, 4.0),
        ({"loss": 3.0}, 4.0),
    ]
    alone = RunningMeans()
    alone.load_state_dict(saved, rank=0, world_size=1)
    assert (alone.epoch_means(), alone.epoch_weight) == ({"loss": pytest.approx(2.0)}, 8.0)


class LogsItsEpoch(TinyClassifier):
    """Logs the epoch it trains in at every step (eager: the number is read in Python)."""

    def training_step(self, batch, batch_idx):
        self.log("epoch_seen", mx.array(float(self.trainer.current_epoch)), on_step=False, on_epoch=True)
        return self.compute_loss(batch)[0]


def test_each_epochs_means_in_the_history_are_over_that_epochs_steps_alone(tmp_path):
    """An epoch that starts (not one resumed in its middle) starts its sums again: the history's row of
    epoch 1 is not also the mean of epoch 0's steps."""
    t = quiet_trainer(tmp_path, max_epochs=3, compile=False)
    t.fit(LogsItsEpoch(), make_batches(64))
    assert t.history["epoch_seen"] == [0.0, 1.0, 2.0]


def test_trainable_sets_keep_what_the_optimizer_holds_state_for_across_freezing_and_resume():
    """The optimizer's state only grows: a parameter unfrozen and frozen again keeps its state in the
    checkpoint (a resume re-initialising it would change the run), and a resume takes the saved run's sets,
    saying which parameters the optimizer holds fresh state for."""
    sets = TrainableSets()
    sets.start(frozenset({"head.weight"}))
    sets.change(frozenset({"body.weight"}))  # an unfreeze, then the head frozen
    saved = json.loads(json.dumps(sets.state_dict()))
    assert saved == {
        "at_start": ["head.weight"],
        "now": ["body.weight"],
        "optimizer": ["body.weight", "head.weight"],
    }
    resumed = TrainableSets()
    resumed.start(frozenset({"head.weight", "extra.weight"}))  # the module as built for the resumed fit
    assert resumed.resume(TrainableSets.from_state_dict(saved)) == {"extra.weight"}
    assert resumed.at_start == {"head.weight"}
    assert resumed.optimized == {"head.weight", "body.weight", "extra.weight"}
    # (a hand-written state whose trained set is missing from the optimizer's: what trains has state)
    edited = TrainableSets.from_state_dict({**saved, "optimizer": ["head.weight"]})
    assert edited.optimized == {"head.weight", "body.weight"}


def test_history_replaces_the_row_of_an_epoch_recorded_again():
    h = History()
    h.record({"epoch": 0, "loss": 2.0})
    h.record({"epoch": 1, "loss": 1.5})
    h.record({"epoch": 1, "loss": 1.0, "val_loss": 1.2})
    assert h.columns() == {"epoch": [0, 1], "loss": [2.0, 1.0], "val_loss": [None, 1.2]}
    copy = History()
    copy.load_state_dict(h.state_dict())
    assert copy.columns() == h.columns()


def test_random_state_restores_mlx_numpy_and_python_exactly():
    mx.random.seed(1), np.random.seed(2), random.seed(3)
    np.random.normal()  # a cached gaussian is part of numpy's state
    random.gauss(0, 1)  # and of Python's (gauss draws two at a time and keeps the second)
    mx.random.uniform()  # a drawn-from key: both of its 32-bit words in use (a fresh seed's high word is 0)
    saved = json.loads(json.dumps(RandomState.capture()))
    assert saved["mlx"][0] != 0
    first = (float(mx.random.uniform()), np.random.normal(), random.gauss(0, 1), random.random())
    mx.random.seed(9), np.random.seed(9), random.seed(9)
    random.gauss(0, 1)  # (another cached one, which the restore replaces)
    RandomState.restore(saved)
    assert (float(mx.random.uniform()), np.random.normal(), random.gauss(0, 1), random.random()) == first


class GlobalNumpyNoise(Dataset):
    """As in the seed tutorial: augmentation drawn from numpy's (and Python's) global generators."""

    def __init__(self):
        self.x, self.y = make_data(96)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        noise = np.random.normal(scale=0.1, size=self.x[i].shape).astype(np.float32)
        scale = np.float32(1.0 + 0.01 * random.random())
        return self.x[i] * scale + noise, self.y[i]


def _fit(tmp_path, name, max_steps, ckpt_path=None):
    mx.random.seed(0)
    module = TinyClassifier()
    t = Trainer(
        max_steps=max_steps,
        enable_progress_bar=False,
        default_root_dir=tmp_path / name,
        num_sanity_val_steps=0,
    )
    t.fit(module, DataLoader(GlobalNumpyNoise(), batch_size=16, shuffle=True), ckpt_path=ckpt_path)
    return t, module


def test_resume_restores_numpy_and_python_generators_not_reseeds_them(tmp_path):
    """Resume re-seeded numpy's and Python's global generators: a dataset drawing from np.random resumed
    to other numbers than an uninterrupted run."""
    _, straight = _fit(tmp_path, "straight", 9)
    stopped, _ = _fit(tmp_path, "stopped", 4)
    last = stopped.callbacks.checkpoint_path("last")
    _, resumed = _fit(tmp_path, "resumed", 9, ckpt_path=last)
    a, b = weights(straight), weights(resumed)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


class FakeTorch(types.ModuleType):
    """The part of torch's global generator that audiotrain and a torch `RandomSampler` use, for machines
    without torch: its state is bytes (a uint8 tensor in torch), here 8 of a counter."""

    uint8 = "uint8"

    def __init__(self):
        super().__init__("torch")
        self._state = 0

    def manual_seed(self, seed):
        self._state = int(seed)

    def randperm(self, n):
        self._state += 1
        return np.random.default_rng(self._state).permutation(n)  # (.tolist() as a tensor's)

    def get_rng_state(self):
        return np.frombuffer(self._state.to_bytes(8, "little"), np.uint8).copy()

    def tensor(self, data, dtype):
        assert dtype == self.uint8
        return np.array(data, np.uint8)

    def set_rng_state(self, state):
        if len(state) != 8:
            raise RuntimeError("RNG state is wrong size")
        self._state = int.from_bytes(bytes(state.tolist()), "little")


@pytest.fixture
def torch_module(monkeypatch):
    """torch where it is installed (imported, as a program that uses it has), else `FakeTorch`."""
    try:
        return importlib.import_module("torch")
    except ImportError:
        fake = FakeTorch()
        monkeypatch.setitem(sys.modules, "torch", fake)
        return fake


class TorchOrder:
    """A torch `RandomSampler`'s habit: each epoch's order drawn from torch's global generator."""

    def __init__(self, torch, n):
        self.torch, self.n = torch, n

    def __len__(self):
        return self.n

    def __iter__(self):
        return iter(self.torch.randperm(self.n).tolist())


class Fetched(Dataset):
    def __init__(self, fetched):
        self.x, self.y = make_data(32)
        self.fetched = fetched

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        self.fetched.append(int(i))
        return self.x[i], self.y[i]


def test_resume_continues_torchs_global_generator_when_torch_is_imported(tmp_path, torch_module):
    """torch was seeded at fit but not saved: resumed at an epoch's end, a torch RandomSampler replayed
    epoch 0's order as epoch 1's (and every later epoch shifted)."""

    def fit(name, max_steps, ckpt_path=None):
        fetched = []
        mx.random.seed(0)
        loader = DataLoader(Fetched(fetched), batch_size=8, sampler=TorchOrder(torch_module, 32))
        t = Trainer(max_steps=max_steps, enable_progress_bar=False, default_root_dir=tmp_path / name)
        t.fit(TinyClassifier(), loader, ckpt_path=ckpt_path)
        return t, fetched

    _, straight = fit("straight", 12)  # 3 epochs of 4 steps
    stopped, first = fit("stopped", 4)
    assert first == straight[:32]
    state = json.loads((Path(stopped.callbacks.checkpoint_path("last")) / "trainer_state.json").read_text())
    assert isinstance(state["random"]["torch"], str)  # (base64 of its bytes)
    _, resumed = fit("resumed", 12, stopped.callbacks.checkpoint_path("last"))
    assert resumed == straight[32:] and resumed[:32] != straight[:32]
    broken = {**state["random"], "torch": "AAAA"}
    with pytest.raises(StateError, match="RandomState: 'torch' is not a state torch can restore"):
        RandomState.restore(broken)


def test_running_means_keep_constant_memory_over_an_epoch_that_never_ends():
    """An endless stream never ends its epoch: the epoch's sums must not pile up as one lazy graph (it grew
    about 1 KB a logging point, and evaluating a long chain at the end costs more than linear time)."""

    def resident_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    means = RunningMeans()
    for _ in range(200):  # warm the allocator
        means.add({"loss": mx.array(1.0)}, 8)
        means.pop_interval()
    before = resident_mb()
    for i in range(20000):  # log_every_n_steps=1: a fold and an interval mean at every step
        means.add({"loss": mx.array(float(i % 7))}, 8)
        means.pop_interval()
    assert resident_mb() - before < 8.0  # about 20 MB when the chain grew
    expected = (200 * 1.0 + sum(i % 7 for i in range(20000))) / 20200
    assert means.epoch_means()["loss"] == pytest.approx(expected, rel=1e-6)


def test_running_means_of_a_run_stopped_between_logging_steps_resume_to_the_straight_runs_bitwise():
    """A stop at step 5 of an epoch logged every 2 steps (max_steps=5, then a fit resumed with a larger
    max_steps) reads the epoch's means and logs its last interval there. The resumed run's epoch means were
    those of steps 1-4, 5 and 6-... summed in other groups than the straight run's (5 with 6), and differed
    from them in the last bits (a pitch tracker's history: train_voicing_loss 0.729150899251302 against
    0.7291509840223525 straight)."""
    rng = np.random.default_rng(0)
    steps = [
        (
            {"loss": mx.array(float(rng.normal()) * 100), "acc": mx.array(float(rng.uniform()))},
            float(rng.integers(1, 9)),
        )
        for _ in range(12)
    ]

    def run(means, first, last):
        for i in range(first, last):
            means.add(*steps[i])
            if (i + 1) % 2 == 0:
                means.pop_interval()

    whole = RunningMeans()
    run(whole, 0, 12)
    stopped = RunningMeans()
    run(stopped, 0, 5)
    stopped.epoch_means()  # (the stop's history row, and its last interval to the loggers)
    stopped.pop_interval()
    resumed = RunningMeans()
    resumed.load_state_dict(json.loads(json.dumps(stopped.state_dict())))
    run(resumed, 5, 12)
    assert resumed.epoch_means() == whole.epoch_means()
    assert resumed.epoch_weight == whole.epoch_weight
    assert resumed.pop_interval() == {}
