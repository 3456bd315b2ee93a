"""DataLoader, collation and the resumable order, from the user's side (threads, processes, main thread)."""

import gc
import json
import multiprocessing as mp
import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
import traceback
import warnings
from collections import OrderedDict, UserList, defaultdict, namedtuple
from types import SimpleNamespace

import audiotrain  # noqa: F401
from audiotrain import DataLoader, Dataset
from audiotrain.data import DataLoaderError, batch_rng, default_collate, default_convert, to_mlx

import mlx.core as mx
import numpy as np
import pytest
from reference import require

# ------------------------------------------------------------------ datasets (module level: process workers pickle them)


class Squares(Dataset):
    """Sample i is {"x": [i, i*i] float64, "y": i}; records which indices were loaded (in this process)."""

    def __init__(self, n=20):
        self.n = n
        self.loaded = []

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.loaded.append(i)
        return {"x": np.array([i, i * i], dtype=np.float64), "y": i}


class FailsAt7(Squares):
    def __getitem__(self, i):
        if i == 7:
            raise_from_dataset(i)
        return super().__getitem__(i)


def worker_traceback_text(err, worker_type: str) -> str:
    """The traceback a DataLoaderError carries: text from a process worker, the chained cause from a thread."""
    if worker_type == "process":
        return err.worker_traceback
    return "".join(traceback.format_exception(err.__cause__))


def raise_from_dataset(i):
    raise KeyError(f"no sample {i} on disk")


class DiesAt5(Squares):
    def __getitem__(self, i):
        if i == 5:
            os._exit(3)  # the worker process vanishes without a Python exception
        return super().__getitem__(i)


class KilledBySigintAt5(Squares):
    def __getitem__(self, i):
        if i == 5:  # as a Ctrl-C that reaches a worker still starting, before it ignores SIGINT
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        return super().__getitem__(i)


class Noisy(Squares):
    """Augmentation drawn from batch_rng(): must not depend on worker count or type."""

    def __getitem__(self, i):
        return {"x": np.float32(i) + batch_rng().standard_normal(3).astype(np.float32), "y": i}


class GlobalRandom(Squares):
    """Augmentation as most PyTorch code draws it: from the global np.random and random (and mx.random)."""

    def __getitem__(self, i):
        return np.array([np.random.random(), random.random(), mx.random.uniform().item()])


class Slow(Squares):
    def __getitem__(self, i):
        time.sleep(2.0)
        return super().__getitem__(i)


def add_one(item):
    item["x"] = item["x"] + 1
    return item


def whose_thread(item):
    item["thread"] = threading.current_thread().name
    return item


def collect(loader):
    return [{k: np.array(v) for k, v in b.items()} for b in loader]


def ys(loader):
    return [np.array(b["y"]).tolist() for b in loader]


def no_loader_workers_left(timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        threads = [t for t in threading.enumerate() if t.name.startswith("audiotrain-data")]
        procs = [p for p in mp.active_children() if p.name.startswith("audiotrain-data")]
        if not threads and not procs:
            return True
        time.sleep(0.05)
    return False


# ------------------------------------------------------------------ collation and conversion


def test_default_collate_stacks_nested_structures():
    Pair = namedtuple("Pair", "a b")
    items = [
        {"x": np.full((2, 3), i, np.float32), "y": i, "meta": (float(i), "name"), "p": Pair(i, True)}
        for i in range(4)
    ]
    batch = default_collate(items)
    assert batch["x"].shape == (4, 2, 3) and batch["x"].dtype == np.float32
    assert batch["y"].tolist() == [0, 1, 2, 3]
    assert batch["meta"][0].tolist() == [0.0, 1.0, 2.0, 3.0] and batch["meta"][1] == ["name"] * 4
    # A tuple stays a tuple, as documented (PyTorch's own collate gives a list here).
    assert type(batch["meta"]) is tuple
    assert isinstance(batch["p"], Pair) and batch["p"].b.dtype == bool


def test_default_collate_names_the_bad_field():
    with pytest.raises(
        ValueError, match=r"cannot stack batch\['x'\]: samples have different shapes \[\(3,\), \(4,\)\]"
    ):
        default_collate([{"x": np.zeros(3)}, {"x": np.zeros(4)}])
    with pytest.raises(ValueError, match=r"sample 1 of batch has keys \['z'\], expected \['x'\]"):
        default_collate([{"x": 1}, {"z": 2}])
    # More keys or fields than sample 0 are refused too, not dropped.
    with pytest.raises(ValueError, match=r"sample 1 of batch has keys \['extra', 'x'\], expected \['x'\]"):
        default_collate([{"x": 1}, {"x": 2, "extra": 3}])
    with pytest.raises(ValueError, match=r"sample 1 of batch has 3 fields, expected 2 like sample 0"):
        default_collate([(1, 2), (3, 4, 5)])


def test_lists_of_different_lengths_name_the_lengths_and_the_fix():
    # Token ids or labels of varying length: the message names the field, the lengths and what to do.
    with pytest.raises(ValueError) as info:
        default_collate([{"tokens": [1, 2]}, {"tokens": [3, 4, 5]}, {"tokens": [6]}])
    message = str(info.value)
    assert "batch['tokens']" in message and "lengths [2, 3, 1]" in message
    assert "pad" in message and "collate_fn" in message
    with pytest.raises(
        ValueError, match=r"sample 1 of batch is a dict, expected a tuple of 2 fields like sample 0"
    ):
        default_collate([(1, 2), {"x": 1}])


def test_an_empty_batch_is_refused_by_name_not_with_an_index_error():
    # A custom batch_sampler that yields an empty list (a bucket left empty) gets a message that says so.
    with pytest.raises(ValueError, match="default_collate got an empty batch"):
        default_collate([])
    loader = DataLoader([np.float32(i) for i in range(4)], batch_sampler=[[0, 1], [], [2, 3]])
    with pytest.raises(DataLoaderError, match=r"failed on batch 1 .*empty batch"):
        list(loader)


class Record(dict):
    """A dict subclass built from a dict, as OrderedDict is."""


def test_a_mapping_sample_keeps_its_type_as_in_pytorch():
    # torch's default_collate rebuilds a mapping as `type(sample)({key: ...})`, and so do these.
    for kind in (OrderedDict, Record):
        items = [kind(b=np.float32(i), a=i) for i in range(2)]
        batch = default_collate(items)
        assert type(batch) is kind and list(batch) == ["b", "a"] and batch["a"].tolist() == [0, 1]
        assert type(to_mlx(batch)) is kind and type(default_convert(items[0])) is kind
    # A mutable mapping that cannot be built from a dict alone (defaultdict) is copied and filled, as torch's
    # collate.py does (`copy.copy(elem)` then `update`): it keeps its default (it was a plain dict).
    batches = list(DataLoader([defaultdict(int, a=np.float32(i)) for i in range(2)], batch_size=2))
    assert type(batches[0]) is defaultdict and batches[0]["missing"] == 0
    assert np.array(batches[0]["a"]).tolist() == [0.0, 1.0]


def test_a_namedtuple_item_stays_one_without_automatic_batching_as_in_pytorch():
    Pair = namedtuple("Pair", "x y")
    batches = list(DataLoader([Pair(np.full(2, i), i) for i in range(2)], batch_size=None))
    assert [type(b) for b in batches] == [Pair, Pair]
    assert isinstance(batches[1].x, mx.array) and np.array(batches[1].x).tolist() == [1, 1]


@pytest.mark.parametrize(
    "labels, match",
    [
        ([1, "3 "], r"sample 1 is str '3 ', but sample 0 is int 1"),  # a CSV cell read as text
        ([2, None], r"sample 1 is None, but sample 0 is int 2"),  # a missing label
        ([2, 3, None], r"sample 2 is None, but sample 0 is int 2"),  # (the sample that differs is named)
        ([np.zeros(3), None], r"sample 1 is None, but sample 0 is ndarray of shape \(3,\)"),
        ([None, np.zeros(3)], r"sample 1 is ndarray of shape \(3,\), but sample 0 is None"),
    ],
)
def test_default_collate_refuses_a_field_of_numbers_and_text_or_none(labels, match):
    # numpy would make the whole field text or objects (labels 1 -> '1'); PyTorch's collate raises.
    with pytest.raises(ValueError, match=r"cannot collate batch\['y'\]: " + match):
        default_collate([{"y": y} for y in labels])
    assert default_collate([{"name": "a"}, {"name": None}])["name"] == ["a", None]  # text stays a list


def test_default_collate_stacks_an_array_and_a_list_of_numbers_as_pytorch_does():
    batch = default_collate([{"y": np.zeros(2)}, {"y": [1.0, 2.0]}])["y"]
    assert batch.tolist() == [[0.0, 0.0], [1.0, 2.0]]


def test_default_collate_collates_any_sequence_position_by_position_as_pytorch_does():
    # torch's collate takes every collections.abc.Sequence (a range, a UserList) field by field, as a list.
    batch = default_collate([{"ids": range(1, 3)}, {"ids": UserList([5, 6])}])["ids"]
    assert isinstance(batch, list) and [b.tolist() for b in batch] == [[1, 5], [2, 6]]
    with pytest.raises(ValueError, match=r"sample 1 of batch has 1 items, expected 2 like sample 0"):
        default_collate([[1, 2], range(1)])


def test_to_mlx_converts_and_narrows_numpy_leaves():
    batch = to_mlx(
        {"x": np.zeros((2, 3)), "y": np.arange(2), "m": np.array([True, False]), "names": ["a", "b"]}
    )
    assert batch["x"].dtype == mx.float32 and batch["y"].dtype == mx.int32 and batch["m"].dtype == mx.bool_
    assert batch["names"] == ["a", "b"]
    with pytest.raises(ValueError, match=r"batch\['ids'\] holds int64 values .* outside int32"):
        to_mlx({"ids": np.array([2**40])})
    # int32's own bounds still fit; complex (an STFT made in cpu_transforms) becomes MLX complex64.
    ids = to_mlx(np.array([2**31 - 1, -(2**31)]))
    assert ids.dtype == mx.int32 and np.array(ids).tolist() == [2**31 - 1, -(2**31)]
    spec = to_mlx({"spec": np.array([1 + 2j])})["spec"]
    assert isinstance(spec, mx.array) and spec.dtype == mx.complex64


@pytest.mark.parametrize(
    "ids, match",
    [
        (np.array([2**40]), r"int64 values in \[1099511627776, 1099511627776\], outside int32"),
        (np.array([-(2**40)]), r"int64 values in \[-1099511627776, -1099511627776\], outside int32"),
        (np.array([2**33], np.uint64), r"uint64 values in \[8589934592, 8589934592\], outside uint32"),
    ],
)
def test_to_mlx_refuses_integers_outside_the_narrower_type_either_way(ids, match):
    # (narrowed without the check they would wrap to other labels, silently)
    with pytest.raises(ValueError, match=r"batch\['ids'\] holds " + match):
        to_mlx({"ids": ids})


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16, mx.int64], ids=["float16", "bfloat16", "int64"])
def test_mlx_array_samples_stack_in_mlx_keeping_their_dtype(dtype):
    # numpy has no bfloat16: such samples used to fail ("'bfloat16' is not a valid PEP 3118 buffer format")
    data = [{"x": mx.full((3,), i, dtype=dtype), "y": i} for i in range(4)]
    batches = list(DataLoader(data, batch_size=2))
    assert [b["x"].dtype for b in batches] == [dtype, dtype] and batches[1]["x"].shape == (2, 3)
    assert np.array(batches[1]["x"].astype(mx.float32)).tolist() == [[2.0] * 3, [3.0] * 3]
    assert [b["x"].dtype for b in DataLoader(data, batch_size=None)] == [dtype] * 4  # (as it was)


def test_mlx_bfloat16_samples_collate_in_process_workers_and_beside_numpy_arrays():
    # Beside a numpy array, an MLX bfloat16 array goes through numpy as float32 (as a torch one does).
    assert default_collate([mx.ones(2, dtype=mx.bfloat16), np.zeros(2, np.float32)]).dtype == np.float32
    data = [mx.full((3,), i, dtype=mx.bfloat16) for i in range(4)]
    loader = DataLoader(data, batch_size=2, num_workers=2, worker_type="process")
    batches = list(loader)
    assert [b.dtype for b in batches] == [mx.bfloat16] * 2
    assert np.array(batches[1].astype(mx.float32))[:, 0].tolist() == [2.0, 3.0]


# ------------------------------------------------------------------ batches and order


def test_batches_are_mx_arrays_and_len_counts_batches():
    loader = DataLoader(Squares(10), batch_size=4)
    assert len(loader) == 3 and len(DataLoader(Squares(10), batch_size=4, drop_last=True)) == 2
    batches = list(loader)
    assert len(batches) == 3 and batches[-1]["x"].shape == (2, 2)
    assert batches[0]["x"].dtype == mx.float32 and batches[0]["y"].dtype == mx.int32
    np.testing.assert_array_equal(np.array(batches[1]["x"]), [[4, 16], [5, 25], [6, 36], [7, 49]])


def test_any_sequence_is_a_dataset():
    assert ys(DataLoader([{"y": i} for i in range(5)], batch_size=2)) == [[0, 1], [2, 3], [4]]
    with pytest.raises(TypeError, match="map-style dataset .* or an iterable-style one"):
        DataLoader(object())
    with pytest.raises(TypeError, match=r"an iterator \(range_iterator\), which can be read only once"):
        DataLoader(iter(range(3)))


def test_shuffle_order_is_a_pure_function_of_seed_and_epoch():
    loader = DataLoader(Squares(20), batch_size=5, shuffle=True, seed=3)
    loader.set_epoch(4)
    order = np.concatenate(ys(loader))
    np.testing.assert_array_equal(order, np.random.default_rng([3, 4]).permutation(20))
    again = DataLoader(Squares(20), batch_size=5, shuffle=True, seed=3)
    again.set_epoch(4)
    np.testing.assert_array_equal(np.concatenate(ys(again)), order)
    loader.set_epoch(5)
    assert not np.array_equal(np.concatenate(ys(loader)), order)


def test_each_iteration_starts_the_next_epoch():
    loader = DataLoader(Squares(8), batch_size=8, shuffle=True, seed=0)
    orders = [ys(loader)[0] for _ in range(3)]
    assert loader.epoch == 2
    assert orders == [np.random.default_rng([0, e]).permutation(8).tolist() for e in range(3)]


def test_seed_none_is_set_by_trainer_or_drawn_and_recorded():
    loader = DataLoader(Squares(8), batch_size=8, shuffle=True)
    assert loader.seed is None
    loader.set_seed(11)
    assert ys(loader)[0] == np.random.default_rng([11, 0]).permutation(8).tolist()
    drawn = DataLoader(Squares(8), batch_size=8, shuffle=True)
    first = ys(drawn)
    assert isinstance(drawn.seed, int) and drawn.state_dict()["seed"] == drawn.seed
    replay = DataLoader(Squares(8), batch_size=8, shuffle=True, seed=drawn.seed)
    assert ys(replay) == first


def test_user_sampler_defines_the_order():
    loader = DataLoader(Squares(6), batch_size=2, sampler=[5, 4, 3, 2, 1, 0])
    assert len(loader) == 3 and ys(loader) == [[5, 4], [3, 2], [1, 0]]
    with pytest.raises(ValueError, match="sampler and shuffle=True are exclusive"):
        DataLoader(Squares(6), sampler=[0], shuffle=True)


# ------------------------------------------------------------------ resume


def test_resume_mid_epoch_continues_without_loading_skipped_samples():
    full = DataLoader(Squares(23), batch_size=4, shuffle=True, seed=7)
    full.set_epoch(2)
    expected = ys(full)

    first = DataLoader(Squares(23), batch_size=4, shuffle=True, seed=7)
    first.set_epoch(2)
    it = iter(first)
    head = [np.array(next(it)["y"]).tolist() for _ in range(3)]
    state = json.loads(json.dumps(first.state_dict()))
    assert state["seed"] == 7 and state["epoch"] == 2 and state["batches_yielded"] == 3

    dataset = Squares(23)
    resumed = DataLoader(dataset, batch_size=4, shuffle=True)
    resumed.load_state_dict(state)
    resumed.set_epoch(2)  # the trainer sets the epoch explicitly: the restored position is kept
    tail = ys(resumed)
    assert head + tail == expected
    assert sorted(dataset.loaded) == sorted(
        np.concatenate(expected[3:]).tolist()
    )  # nothing skipped was loaded
    assert resumed.state_dict()["batches_yielded"] == len(expected)


def shuffled_23(**kwargs):
    return DataLoader(Squares(23), batch_size=4, shuffle=True, **kwargs)


def epoch_of_shuffled_23(epoch):
    loader = shuffled_23(seed=7)
    loader.set_epoch(epoch)
    return ys(loader)


def state_after_3_batches_of_epoch_2():
    loader = shuffled_23(seed=7)
    loader.set_epoch(2)
    it = iter(loader)
    for _ in range(3):
        next(it)
    return json.loads(json.dumps(loader.state_dict()))


def test_set_epoch_to_another_epoch_after_a_mid_epoch_restore_runs_that_whole_epoch():
    # (a Lightning-style loop that sets the epoch itself, and goes on to the next one)
    resumed = shuffled_23()
    resumed.load_state_dict(state_after_3_batches_of_epoch_2())
    resumed.set_epoch(3)
    assert ys(resumed) == epoch_of_shuffled_23(3)


def test_a_checkpoint_between_a_restore_and_the_resumed_epochs_first_batch_keeps_the_position():
    # As where a Ctrl-C comes while process workers start: that checkpoint must not restart the epoch.
    resumed = shuffled_23()
    resumed.load_state_dict(state_after_3_batches_of_epoch_2())
    before_iter = resumed.state_dict()
    iter(resumed)
    before_first_batch = resumed.state_dict()
    for state in (before_iter, before_first_batch):
        assert (state["epoch"], state["batches_yielded"]) == (2, 3)
        again = shuffled_23()
        again.load_state_dict(json.loads(json.dumps(state)))
        assert ys(again) == epoch_of_shuffled_23(2)[3:]


def test_an_iterator_of_an_earlier_epoch_does_not_move_the_position_of_the_new_one():
    loader = shuffled_23(seed=7)
    old = iter(loader)
    next(old)
    iter(loader)  # epoch 1 begins, nothing of it yielded yet; the old iterator is still read
    next(old), next(old)
    state = loader.state_dict()
    assert (state["epoch"], state["batches_yielded"]) == (1, 0)
    resumed = shuffled_23()
    resumed.load_state_dict(state)
    assert ys(resumed) == epoch_of_shuffled_23(1)
    # Nor the indices of the batch handed out last, which a prediction writer gets.
    newest_batch = next(iter(loader))
    next(old)
    assert loader.current_batch_indices == np.array(newest_batch["y"]).tolist()


def test_a_new_epoch_has_no_current_batch_before_its_first_one():
    # A prediction writer asked between epochs must not get the last epoch's indices.
    loader = DataLoader(Squares(6), batch_size=2)
    it = iter(loader)
    next(it), next(it)
    assert loader.current_batch_indices == [2, 3]
    iter(loader)
    assert loader.current_batch_indices is None


def test_the_same_epoch_set_again_after_a_resumed_epoch_runs_whole():
    # (a second fit after a mid-epoch stop calls set_epoch(progress.epoch) with the epoch it resumed)
    resumed = shuffled_23()
    resumed.load_state_dict(state_after_3_batches_of_epoch_2())
    it = iter(resumed)
    assert len(it) == 3  # 6 batches, 3 of them trained on before the checkpoint
    assert ys(it) == epoch_of_shuffled_23(2)[3:]
    resumed.set_epoch(2)
    assert ys(resumed) == epoch_of_shuffled_23(2)


def test_an_older_state_saved_at_the_epochs_end_resumes_at_the_next_epoch():
    # A checkpoint written before loaders saved num_batches, at the end of epoch 0 (4 batches of 4).
    resumed = DataLoader(Squares(8), batch_size=2, shuffle=True)
    resumed.load_state_dict({"seed": 1, "epoch": 0, "batches_yielded": 4})
    assert resumed.epoch == 1
    assert np.concatenate(ys(resumed)).tolist() == np.random.default_rng([1, 1]).permutation(8).tolist()


def test_finished_epoch_resumes_at_the_next_epoch():
    loader = DataLoader(Squares(6), batch_size=3, shuffle=True, seed=1)
    ys(loader)
    # The next epoch starts over, so its batches need not line up with the saved ones: batch_size may change.
    for batch_size in (3, 2):
        resumed = DataLoader(Squares(6), batch_size=batch_size, shuffle=True)
        resumed.load_state_dict(loader.state_dict())
        assert resumed.epoch == 1
        assert np.concatenate(ys(resumed)).tolist() == np.random.default_rng([1, 1]).permutation(6).tolist()


def test_resume_refuses_a_different_batching():
    state = DataLoader(Squares(10), batch_size=2, seed=0).state_dict()
    with pytest.raises(ValueError, match="checkpoint has batch_size=2, this loader has batch_size=3"):
        DataLoader(Squares(10), batch_size=3).load_state_dict(state)
    with pytest.raises(ValueError, match="missing"):
        DataLoader(Squares(10)).load_state_dict({"seed": 1})
    with pytest.raises(ValueError, match=r"missing \['batches_yielded'\]"):
        DataLoader(Squares(10)).load_state_dict({"seed": 1, "epoch": 0})
    # A checkpoint entry that is not there (None) is named as such, not "'NoneType' object is not iterable".
    with pytest.raises(
        TypeError, match="load_state_dict needs the dict that state_dict.. returned, got NoneType"
    ):
        DataLoader(Squares(10)).load_state_dict(None)
    # Mid-epoch, with the same number of batches: only the saved shuffle and dataset length tell that the
    # rest of the epoch would be another order, or other samples.
    loader = DataLoader(Squares(10), batch_size=5, shuffle=True, seed=3)
    next(iter(loader))
    state = loader.state_dict()
    with pytest.raises(ValueError, match="checkpoint has shuffle=True, this loader has shuffle=False"):
        DataLoader(Squares(10), batch_size=5).load_state_dict(state)
    with pytest.raises(ValueError, match="checkpoint has num_samples=10, this loader has num_samples=9"):
        DataLoader(Squares(9), batch_size=5, shuffle=True).load_state_dict(state)


def test_an_older_state_past_the_epochs_end_is_refused():
    # A checkpoint written before loaders saved num_batches: its position is checked against this epoch's
    # batches, one past the end included (a dataset one batch shorter than the checkpoint's).
    state = {"seed": 0, "epoch": 0, "batches_yielded": 4}
    with pytest.raises(ValueError, match="batches_yielded=4 but an epoch has 3 batches"):
        DataLoader(Squares(6), batch_size=2).load_state_dict(state)


# ------------------------------------------------------------------ transforms and collate


def test_seed_001_list_collate_with_mlx_transforms():
    def to_mlx_batch(batch):
        return mx.array(np.stack([item["x"] for item in batch])), mx.array([item["y"] for item in batch])

    loader = DataLoader(
        Squares(5), batch_size=2, shuffle=True, seed=0, collate_fn=lambda x: x, mlx_transforms=to_mlx_batch
    )
    batches = list(loader)
    assert [b[0].shape for b in batches] == [(2, 2), (2, 2), (1, 2)]
    assert isinstance(batches[0][1], mx.array)


def test_cpu_transforms_run_in_workers_and_mlx_transforms_on_main_thread():
    seen = []

    def mlx_step(batch):
        seen.append(threading.current_thread().name)
        return {"x": mx.array(batch["x"]), "thread": batch["thread"]}

    loader = DataLoader(
        Squares(6),
        batch_size=2,
        num_workers=2,
        cpu_transforms=[add_one, whose_thread],
        mlx_transforms=mlx_step,
    )
    batches = list(loader)
    np.testing.assert_array_equal(np.array(batches[0]["x"]), [[1, 1], [2, 2]])
    assert all(name.startswith("audiotrain-data") for b in batches for name in b["thread"])
    assert seen == [threading.current_thread().name] * 3


def test_a_list_of_mlx_transforms_runs_every_one_in_order():
    def to_mx(batch):
        return {"y": mx.array(batch["y"])}

    def then_scaled(batch):
        assert isinstance(batch["y"], mx.array)  # the first one's output
        return {"y": batch["y"] * 10}

    loader = DataLoader(Squares(4), batch_size=2, mlx_transforms=[to_mx, then_scaled])
    assert [b["y"].tolist() for b in loader] == [[0, 10], [20, 30]]


def test_a_tuple_of_cpu_transforms_runs_every_one_in_order():
    # A tuple of transforms is a sequence of them too, as a list is.
    twice = DataLoader(Squares(4), batch_size=2, cpu_transforms=(add_one, add_one))
    assert [np.array(b["x"]).tolist() for b in twice] == [[[2, 2], [3, 3]], [[4, 6], [5, 11]]]  # x + 2


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_workers_give_the_same_batches_as_the_main_thread(worker_type):
    reference = DataLoader(Noisy(21), batch_size=4, shuffle=True, seed=5)
    expected = [collect(reference) for _ in range(2)]
    loader = DataLoader(
        Noisy(21), batch_size=4, shuffle=True, seed=5, num_workers=2, prefetch_factor=2,
        worker_type=worker_type, persistent_workers=True, cpu_transforms=add_one,
    )  # fmt: skip
    for epoch in range(2):
        got = collect(loader)
        assert len(got) == len(expected[epoch])
        for a, b in zip(got, expected[epoch]):
            np.testing.assert_array_equal(a["y"], b["y"])
            np.testing.assert_allclose(a["x"], b["x"] + 1, rtol=1e-6)  # same batch_rng numbers everywhere
    loader.close()
    assert no_loader_workers_left()


class Loads20ms(Squares):
    def __getitem__(self, i):
        time.sleep(0.02)
        return super().__getitem__(i)


class Draws(Squares):
    """Each sample is one number from batch_rng()."""

    def __getitem__(self, i):
        return np.float64(batch_rng().random())


@pytest.mark.parametrize("num_workers", [0, 2])
def test_batch_rng_draws_other_numbers_for_each_batch_and_epoch(num_workers):
    loader = DataLoader(Draws(8), batch_size=2, num_workers=num_workers)
    draws = np.concatenate([np.asarray(b) for _ in range(2) for b in loader])
    assert len(np.unique(draws)) == 16  # (not the same augmentation for every batch of an epoch)


class LoadsRecorded(Squares):
    """Sample i is i; `loaded` (shared by thread workers) lists the samples loaded so far."""

    def __getitem__(self, i):
        self.loaded.append(i)
        return np.float32(i)


def wait_until(condition, timeout=30.0):
    """Poll until condition() holds (the deadline only keeps a broken loader from hanging the test)."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_prefetch_factor_batches_per_worker_load_ahead():
    dataset = LoadsRecorded(10)
    it = iter(DataLoader(dataset, batch_size=1, num_workers=1, prefetch_factor=3))
    next(it)  # batches 0, 1 and 2 were asked for
    assert wait_until(lambda: len(dataset.loaded) == 3)
    del it


def test_persistent_workers_survive_an_abandoned_epoch():
    loader = DataLoader(
        Loads20ms(16), batch_size=2, shuffle=True, seed=1, num_workers=2, persistent_workers=True
    )
    it = iter(loader)
    next(it)
    next(it)  # abandon the epoch with batches still loading: they are done after the next epoch has begun
    pool = loader._pool
    # Shuffled, so that a late batch of epoch 0 differs from the batch of epoch 1 it could pass for.
    fresh = DataLoader(Squares(16), batch_size=2, shuffle=True, seed=1)
    fresh.set_epoch(1)
    assert ys(loader) == ys(fresh)  # nothing stale leaks into the new epoch
    assert loader._pool is pool
    del loader, it
    gc.collect()
    assert no_loader_workers_left()


class Sample1WaitsForGate(LoadsRecorded):
    """`LoadsRecorded` whose sample 1, the first time, waits until `gate` is set (thread workers only)."""

    def __init__(self, n):
        super().__init__(n)
        self.gate = threading.Event()

    def __getitem__(self, i):
        if i == 1 and 1 not in self.loaded:
            self.gate.wait(timeout=30)  # (the timeout only keeps a broken loader from hanging the test)
        return super().__getitem__(i)


def test_a_new_epoch_on_persistent_workers_drops_the_abandoned_epochs_queued_batches():
    # Batches 2..4 of epoch 0 are still queued when epoch 1 begins: they are never loaded, so the new epoch
    # does not wait behind them and the dataset sees only the samples it is asked for.
    dataset = Sample1WaitsForGate(6)
    loader = DataLoader(dataset, batch_size=1, num_workers=1, prefetch_factor=4, persistent_workers=True)
    abandoned = iter(loader)
    next(abandoned)  # the worker is held in sample 1; batches 2, 3 and 4 wait in its queue
    epoch_1 = iter(loader)
    dataset.gate.set()
    assert [np.array(b).item() for b in epoch_1] == list(range(6))
    loader.close()
    assert dataset.loaded == [0, 1, *range(6)]


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_an_iterator_superseded_on_persistent_workers_refuses_to_go_on(worker_type):
    # Both iterators would read the one pool's results: the old one would take the new epoch's batches
    # from it, and the new one would miss them.
    loader = DataLoader(
        Squares(8), batch_size=2, num_workers=2, worker_type=worker_type, persistent_workers=True
    )
    old = iter(loader)
    next(old)
    new = iter(loader)
    with pytest.raises(RuntimeError, match="this DataLoader iterator was superseded"):
        next(old)
    assert [np.array(b["y"]).tolist() for b in new] == [[0, 1], [2, 3], [4, 5], [6, 7]]


class Batch1WaitsForBatch4(Dataset):
    """Sample i is {"y": i, "epoch": the dataset's epoch}. In epoch 0 (batch_size 2, two workers, in order)
    batch 1 is held until batch 4 has begun, so that its worker has finished batch 2 by then: batch 2 is
    done before batch 1 and waits in the pool's reorder buffer. Marker files work across processes."""

    def __init__(self, folder):
        self.folder, self.epoch = str(folder), 0

    def __len__(self):
        return 12

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __getitem__(self, i):
        marker = os.path.join(self.folder, "batch4")
        if self.epoch == 0 and i == 8:
            open(marker, "w").close()
        if self.epoch == 0 and i in (2, 3):
            deadline = time.monotonic() + 30  # (only so that a broken loader cannot hang the test)
            while not os.path.exists(marker) and time.monotonic() < deadline:
                time.sleep(0.01)
        return {"y": i, "epoch": self.epoch}


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_an_abandoned_epoch_leaves_no_finished_batch_to_the_next_one_of_persistent_workers(
    tmp_path, worker_type
):
    loader = DataLoader(
        Batch1WaitsForBatch4(tmp_path), batch_size=2, num_workers=2, worker_type=worker_type,
        persistent_workers=True,
    )  # fmt: skip
    it = iter(loader)
    next(it), next(it)  # batch 2 came in while batch 1 was awaited; the epoch is abandoned here
    epoch_1 = [(np.array(b["y"]).tolist(), np.array(b["epoch"]).tolist()) for b in loader]
    loader.close()
    assert epoch_1 == [([2 * b, 2 * b + 1], [1, 1]) for b in range(6)]


class DiesOnceAt5(Squares):
    """Sample 5 kills its worker process the first time it is loaded (a flag file marks that)."""

    def __init__(self, flag):
        super().__init__(8)
        self.flag = str(flag)

    def __getitem__(self, i):
        if i == 5 and not os.path.exists(self.flag):
            open(self.flag, "w").close()
            os._exit(3)
        return super().__getitem__(i)


def test_a_persistent_pool_with_a_dead_worker_is_replaced_at_the_next_epoch(tmp_path):
    # (a worker the OOM killer ended, the error caught by a retry loop: the next epoch must not fail again)
    loader = DataLoader(
        DiesOnceAt5(tmp_path / "died"), batch_size=2, num_workers=2, worker_type="process",
        persistent_workers=True,
    )  # fmt: skip
    with pytest.raises(DataLoaderError, match=r"exited unexpectedly \(exit code 3\)"):
        list(loader)
    assert ys(loader) == [[0, 1], [2, 3], [4, 5], [6, 7]]
    loader.close()


# ------------------------------------------------------------------ failures


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_worker_exception_names_the_sample_and_carries_the_traceback(worker_type):
    loader = DataLoader(FailsAt7(12), batch_size=2, num_workers=2, worker_type=worker_type)
    with pytest.raises(
        DataLoaderError, match=r"loading sample 7 \(batch 3\) failed in dataset\[i\]: KeyError"
    ) as info:
        list(loader)
    err = info.value
    # batch 3 is worker 1's (batches go to the workers in turn), named as PyTorch's "in DataLoader worker 1"
    assert err.index == 7 and err.batch_index == 3 and err.worker_id == 1
    text = worker_traceback_text(err, worker_type)
    assert "raise_from_dataset" in text and "no sample 7 on disk" in text
    if worker_type == "process":
        # Uncaught, the error is all a user sees: its message carries the worker's traceback, which the main
        # process's own traceback (ending in the loader) does not show.
        assert str(err).endswith(f"\n\nTraceback in the DataLoader worker process:\n{text}")
    assert no_loader_workers_left()


def test_main_thread_exception_names_the_sample():
    batches = iter(DataLoader(FailsAt7(12), batch_size=2))
    with pytest.raises(DataLoaderError, match="loading sample 7") as info:
        list(batches)
    assert isinstance(info.value.__cause__, KeyError) and info.value.worker_id is None  # (no worker)
    # The iterator that raised is closed, as its workers are: it ends rather than loading batch 3 again.
    with pytest.raises(StopIteration):
        next(batches)
    assert len(batches) == 0


class StopsAt1(Squares):
    def __getitem__(self, i):
        if i == 1:
            raise StopIteration  # the old iteration protocol: must not end the epoch in silence
        return super().__getitem__(i)


class StopsTheRunAt5(Squares):
    """A notebook's "stop now" (or a helper's sys.exit()) raised by the dataset itself."""

    def __init__(self, n, stop):
        super().__init__(n)
        self.stop = stop

    def __getitem__(self, i):
        if i == 5:
            raise self.stop
        return super().__getitem__(i)


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_keyboard_interrupt_in_a_thread_workers_dataset_reaches_the_caller_as_without_workers(
    num_workers, stop, monkeypatch
):
    # With thread workers it ended the worker with a raw "Exception in thread" traceback on stderr, and the
    # loop then failed with "worker 0 (thread) exited unexpectedly (no exit code)", naming neither the
    # interrupt nor the sample; without workers the caller gets the dataset's KeyboardInterrupt itself.
    thread_errors = []
    monkeypatch.setattr(threading, "excepthook", thread_errors.append)
    loader = DataLoader(StopsTheRunAt5(12, stop), batch_size=2, num_workers=num_workers, worker_type="thread")
    with pytest.raises(stop):
        list(loader)
    assert thread_errors == []


@pytest.mark.parametrize("num_workers, worker_type", [(0, "thread"), (2, "thread"), (2, "process")])
def test_the_datasets_own_exception_type_is_still_caught(num_workers, worker_type):
    # As PyTorch re-raises the original type: code around the loop that catches the dataset's KeyError
    # still does, and the error is still a DataLoaderError with its message and fields.
    loader = DataLoader(FailsAt7(12), batch_size=2, num_workers=num_workers, worker_type=worker_type)
    with pytest.raises(KeyError) as info:
        list(loader)
    err = info.value
    assert isinstance(err, DataLoaderError) and err.original_type is KeyError and err.index == 7
    assert type(err).__name__ == "DataLoaderError[KeyError]"
    assert str(err).startswith("loading sample 7 (batch 3) failed in dataset[i]: KeyError")  # not a repr
    again = pickle.loads(pickle.dumps(err))  # (a sweep may send failures between processes)
    assert isinstance(again, KeyError) and str(again) == str(err) and again.index == 7
    stops = DataLoader(StopsAt1(4), batch_size=1, num_workers=num_workers, worker_type=worker_type)
    with pytest.raises(DataLoaderError, match="StopIteration") as info:
        list(stops)
    assert not isinstance(info.value, StopIteration)


def test_collate_and_transform_failures_name_the_stage():
    def bad_transform(item):
        raise ValueError("bad augmentation")

    with pytest.raises(DataLoaderError, match=r"cpu_transforms\[1\] \(.*bad_transform\)"):
        list(DataLoader(Squares(4), batch_size=2, num_workers=1, cpu_transforms=[add_one, bad_transform]))
    with pytest.raises(DataLoaderError, match=r"collate_fn .* failed on batch 0 \(samples 0, 1\)"):
        list(DataLoader(Squares(4), batch_size=2, collate_fn=lambda items: 1 / 0))


def test_a_dead_worker_process_is_reported_not_waited_for():
    loader = DataLoader(DiesAt5(8), batch_size=2, num_workers=2, worker_type="process")
    with pytest.raises(DataLoaderError, match=r"exited unexpectedly \(exit code 3\)"):
        list(loader)
    assert no_loader_workers_left()


class SigkilledAt3(Squares):
    def __getitem__(self, i):
        if i == 3:  # as the OOM killer ends a worker: no exception, no exit handler
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__getitem__(i)


def test_a_worker_killed_by_sigkill_is_named_with_its_id_and_signal_not_waited_for():
    # Sample 3 is in batch 1, worker 1's: the error names that worker, not another one's log or pid.
    loader = DataLoader(SigkilledAt3(8), batch_size=2, num_workers=2, worker_type="process")
    with pytest.raises(
        DataLoaderError,
        match=r"DataLoader worker 1 \(pid \d+\) exited unexpectedly \(exit code -9, SIGKILL\) while batch 1 "
        r"was pending: out of memory, or killed",
    ) as info:
        list(loader)
    err = info.value
    assert (err.worker_id, err.exit_code, err.batch_index, err.stage) == (1, -signal.SIGKILL, 1, "worker")
    assert no_loader_workers_left()


def test_a_worker_a_ctrl_c_killed_is_named_as_such_not_out_of_memory():
    loader = DataLoader(KilledBySigintAt5(8), batch_size=2, num_workers=2, worker_type="process")
    with pytest.raises(DataLoaderError, match=r"\(exit code -2, SIGINT\) .*: a Ctrl-C reached it") as info:
        list(loader)
    assert info.value.killed_by_stop_signal and info.value.exit_code == -2
    assert "out of memory" not in str(info.value) and "__main__" not in str(info.value)
    assert no_loader_workers_left()


def test_timeout_raises_instead_of_hanging():
    with pytest.raises(DataLoaderError, match="timed out after 0.3 s waiting for batch 0"):
        next(iter(DataLoader(Slow(2), batch_size=1, num_workers=1, timeout=0.3)))


def test_unpicklable_collate_with_process_workers_is_explained():
    loader = DataLoader(
        Squares(4), batch_size=2, num_workers=1, worker_type="process", collate_fn=lambda x: x
    )
    with pytest.raises(TypeError, match="Define them at module level .* or use worker_type='thread'"):
        iter(loader)


def test_breaking_out_early_and_gc_stop_the_workers():
    for worker_type in ("thread", "process"):
        loader = DataLoader(Squares(50), batch_size=2, num_workers=2, worker_type=worker_type)
        for k, _ in enumerate(loader):
            if k == 1:
                break
        del loader
        gc.collect()
        assert no_loader_workers_left(), worker_type


def test_a_loader_collected_while_its_thread_worker_takes_a_task_does_not_hang_the_worker(monkeypatch):
    """The garbage collector runs in whatever thread allocates, also in a thread worker that holds its task
    queue's lock (taking its next task): a loader collected there closed its persistent workers from that
    worker, and the close waited for that lock, held further up the worker's own stack, for ever. The
    collector is made to run at that point here; the worker goes on, and ends."""
    import queue

    from audiotrain.data import workers

    collect_in_worker: list[bool] = []

    class CollectingQueue(queue.Queue):
        def _get(self):  # (runs with the queue's lock held)
            if collect_in_worker and threading.current_thread().name.startswith("audiotrain-data"):
                collect_in_worker.pop()
                gc.collect()  # (as an allocation here may)
            return super()._get()

    monkeypatch.setattr(workers, "queue", type("queue", (), {"Queue": CollectingQueue, "Empty": queue.Empty}))
    loader = DataLoader(
        Squares(4), batch_size=2, num_workers=1, worker_type="thread", persistent_workers=True
    )
    assert len(list(loader)) == 2
    pool = loader._pool
    (worker,) = pool._workers
    loader.cycle = loader  # (unreachable only through the collector, as a run's objects often are)
    del loader
    collect_in_worker.append(True)
    pool.submit(0, np.arange(2), seed=0, epoch=1)  # the worker takes it, and collects the loader meanwhile
    worker.join(timeout=60)
    assert not worker.is_alive(), "the worker waited for ever for the lock of its own task queue"
    assert pool.closed and not collect_in_worker


def test_a_loader_collected_in_its_process_workers_feeder_thread_does_not_hang_that_thread(monkeypatch):
    """A process worker's task queue sends its tasks from a feeder thread, which holds the queue's buffer
    lock while it starts waiting for the next task (the wait allocates there, so the collector may run): a
    loader collected there closed its persistent workers from that thread, and the close's put of the
    workers' stop waited for that lock, held further up the same thread's stack, for ever. The collector
    is made to run at that point here; the feeder goes on, and the worker process is ended."""
    from audiotrain.data import workers

    collect_in_feeder: list[bool] = []
    collected = threading.Event()
    feeder_locks: list[threading.Lock] = []  # (each queue's own: one shared by several is no real queue's)

    class CollectingCondition(threading.Condition):
        def wait(self, timeout=None):  # (the feeder calls it with the lock held, when no task is left)
            if collect_in_feeder and threading.current_thread().name == "QueueFeederThread":
                collect_in_feeder.pop()
                gc.collect()  # (as the allocation of the wait's own lock, below, may)
                collected.set()
            return super().wait(timeout)

    class CollectingContext:
        """Spawns the workers; the task queue's feeder thread runs the collector as it next waits."""

        ctx = mp.get_context("spawn")
        Process = ctx.Process

        def Queue(self):
            q = self.ctx.Queue()
            feeder_locks.append(threading.Lock())
            q._notempty = CollectingCondition(feeder_locks[-1])  # (made before the feeder's start)
            return q

    monkeypatch.setattr(workers, "_JOIN_TIMEOUT_S", 0.5)  # (the worker is killed after it: no None task)
    loader = DataLoader(
        Squares(4), batch_size=2, num_workers=1, worker_type="process", persistent_workers=True,
        multiprocessing_context=CollectingContext(),
    )  # fmt: skip
    assert len(list(loader)) == 2
    pool = loader._pool
    (worker,) = pool._workers
    loader.cycle = loader  # (unreachable only through the collector, as a run's objects often are)
    del loader
    collect_in_feeder.append(True)
    pool.submit(0, np.arange(2), seed=0, epoch=1)  # the feeder sends it, then collects the loader
    try:
        assert collected.wait(timeout=60), "the feeder thread waited for ever for the lock of its own queue"
    finally:
        if not collected.is_set():  # (let it go on: the exit would wait for that lock too, for ever)
            for lock in feeder_locks:
                if lock.locked():
                    lock.release()
    worker.join(timeout=60)
    assert not worker.is_alive() and pool.closed


class HoldsFourMegabytes(Squares):
    """A dataset with 4 MB of data; each sample is the largest bytes object still referenced in its worker."""

    def __init__(self, n=2):
        super().__init__(n)
        self.data = np.ones(4 * 2**20, dtype=np.uint8)

    def __getitem__(self, i):
        referenced = (o for c in gc.get_objects() for o in gc.get_referents(c) if type(o) is bytes)
        return max(map(len, referenced), default=0)


def test_a_process_worker_holds_one_copy_of_the_dataset_not_also_its_pickled_bytes():
    # The dataset travels to a worker process pickled: kept referenced after loading (as the Process
    # argument), the bytes made each worker hold the dataset twice, for as long as it ran.
    loader = DataLoader(HoldsFourMegabytes(), batch_size=1, num_workers=1, worker_type="process")
    (largest,) = next(iter(loader)).tolist()
    assert largest < 2**20, f"a worker still references a {largest / 2**20:.1f} MB bytes object"


def test_process_workers_started_again_each_epoch_suggest_persistent_workers_once(monkeypatch):
    # Each epoch's new pool spawns processes that import MLX again (about 1.5 s a pool, twice an epoch with
    # a validation loader): 93 s against 4 s with persistent workers for 30 tiny epochs.
    import audiotrain.data.loader as loader_module

    monkeypatch.setattr(loader_module, "_persistent_workers_hint_given", False, raising=False)
    loader = DataLoader(Squares(4), batch_size=2, num_workers=1, worker_type="process")
    hints = []
    for _ in range(3):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert ys(loader) == [[0, 1], [2, 3]]
        hints.append([str(w.message) for w in caught if "persistent_workers" in str(w.message)])
    assert hints[0] == [] and hints[2] == []  # not on the first epoch, and once
    (hint,) = hints[1]
    assert "starts its 1 worker process again for every epoch" in hint
    assert "each new worker is started and imports MLX again" in hint  # (spawned, by default)
    assert "Pass persistent_workers=True" in hint


@pytest.mark.parametrize(
    "context, imports",
    [("fork", False), ("forkserver", True), (mp.get_context("fork"), False)],
)
def test_the_persistent_workers_hint_says_what_a_new_worker_costs_by_its_start_method(
    monkeypatch, context, imports
):
    """It said "each new worker is spawned and imports MLX again" of forked workers too. (Called directly:
    forking this process, which runs MLX, is what the loader's default avoids.)"""
    import audiotrain.data.loader as loader_module

    monkeypatch.setattr(loader_module, "_persistent_workers_hint_given", False, raising=False)
    with pytest.warns(UserWarning, match="starts its 2 worker processes again for every epoch") as caught:
        loader_module._hint_persistent_workers(2, context)
    (hint,) = [str(w.message) for w in caught]
    assert ("imports MLX again" in hint) is imports and "spawned" not in hint
    assert "each new worker is started" in hint


class EightFeatures(Dataset):
    """(x, y) samples of `tasks.make_data`, for a TinyClassifier fit over process workers."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        from tasks import make_data

        x, y = make_data(8)
        return x[i], y[i]


def test_the_persistent_workers_hint_names_the_users_line_not_the_trainers(monkeypatch, tmp_path):
    """Given in a fit's second epoch, it named audiotrain/train/trainer.py's `iter(loader)` line (a
    notebook showed the library's source line): it names the line of the user's code that called fit."""
    import audiotrain.data.loader as loader_module

    from tasks import TinyClassifier, quiet_trainer

    monkeypatch.setattr(loader_module, "_persistent_workers_hint_given", False, raising=False)
    loader = DataLoader(EightFeatures(), batch_size=4, num_workers=1, worker_type="process")
    trainer = quiet_trainer(tmp_path, max_epochs=2, logger=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(TinyClassifier(), loader)
    (hint,) = [w for w in caught if "persistent_workers" in str(w.message)]
    assert hint.filename == __file__, hint.filename


def test_the_persistent_workers_hint_comes_before_a_fits_first_epoch(monkeypatch, tmp_path):
    """It came at the second epoch: under `python -W error` the run died after a whole epoch of work.
    Lightning warns as the fit sets its loaders up: here before the first epoch of a fit of several, and
    not for a fit that starts the loader's workers once."""
    import audiotrain.data.loader as loader_module

    from tasks import TinyClassifier, quiet_trainer

    monkeypatch.setattr(loader_module, "_persistent_workers_hint_given", False, raising=False)
    loader = DataLoader(EightFeatures(), batch_size=4, num_workers=1, worker_type="process")
    trainer = quiet_trainer(tmp_path, max_epochs=2, logger=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*persistent_workers")
        with pytest.raises(UserWarning, match="starts its 1 worker process again for every epoch"):
            trainer.fit(TinyClassifier(), loader)
    assert trainer.global_step == 0
    monkeypatch.setattr(loader_module, "_persistent_workers_hint_given", False, raising=False)
    once = quiet_trainer(tmp_path / "once", max_epochs=1, logger=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*persistent_workers")
        once.fit(TinyClassifier(), loader)
    assert once.global_step == 2


@pytest.mark.parametrize(
    "failing, worker_type", [("train", "process"), ("train", "thread"), ("validation", "thread")]
)
def test_a_failed_fit_stops_its_epochs_workers_while_the_error_is_kept(tmp_path, failing, worker_type):
    # The epoch's iterator is in the frames of the traceback: a sweep keeping its failed trials' errors (or
    # IPython's sys.last_traceback) kept every failed epoch's workers running.
    from audiotrain import OptimizerConfig, TrainModule
    from audiotrain.train.callback import Callback

    import mlx.nn as nn
    import mlx.optimizers as optim
    from tasks import quiet_trainer

    class Regression(TrainModule):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 1)

        def compute_loss(self, batch):
            return mx.mean((self.fc(batch["x"])[:, 0] - batch["y"]) ** 2), {}

        def configure_optimizers(self):
            return OptimizerConfig(optimizer=optim.SGD(learning_rate=1e-4))

    class FailsAtTheSecondBatch(Callback):
        def fail(self, trainer, module, outputs, batch, batch_idx):
            if batch_idx == 1:
                raise RuntimeError("a callback failed")

    setattr(FailsAtTheSecondBatch, f"on_{failing}_batch_end", FailsAtTheSecondBatch.fail)
    train, val = (
        DataLoader(Squares(40), batch_size=2, num_workers=2, worker_type=worker_type) for _ in range(2)
    )
    trainer = quiet_trainer(
        tmp_path, max_epochs=1, val_check_interval=0.5, callbacks=[FailsAtTheSecondBatch()], logger=False
    )
    others_batches = iter(DataLoader(Squares(6), batch_size=2))  # a loader of the user's, not the fit's
    next(others_batches)
    with pytest.raises(RuntimeError, match="a callback failed") as failure:
        trainer.fit(Regression(), train, val)  # (a validation fails in the middle of the epoch)
    gc.collect()  # the error is still referenced: only other tests' leftovers go
    assert no_loader_workers_left(timeout=5.0)
    assert failure.value.__traceback__ is not None
    assert np.array(next(others_batches)["y"]).tolist() == [2, 3]  # only the fit's loaders were stopped


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(batch_size=0), "batch_size must be an int >= 1, got 0"),
        (dict(batch_size=True), "batch_size must be an int >= 1, got True"),  # (a bool is no count)
        (dict(num_workers=-1), "num_workers must be an int >= 0"),
        (dict(worker_type="fiber"), "worker_type must be 'thread' or 'process'"),
        (dict(persistent_workers=True), "persistent_workers=True needs num_workers > 0"),
        (dict(prefetch_factor=0, num_workers=1), "prefetch_factor must be an int >= 1"),
        # As PyTorch: a setting that would do nothing is refused (as persistent_workers without workers).
        (dict(prefetch_factor=4), "prefetch_factor=4 needs num_workers > 0"),
        (dict(seed=-3), "seed must be an int >= 0"),
        (dict(timeout=-1), "timeout must be a number of seconds >= 0"),
        # NaN passed the old `timeout < 0` check and then never timed out; a bool is no number of seconds.
        (dict(timeout=float("nan"), num_workers=1), "timeout must be a number of seconds >= 0, got nan"),
        (dict(timeout=True, num_workers=1), "timeout must be a number of seconds >= 0, got True"),
        # PyTorch's rule: "False" (read from text) dropped the last batch, as 1 did; 0 kept it.
        # PyTorch's rule and words, with the value as it is: drop_last=False would have read as a bool.
        (dict(drop_last="False"), "drop_last should be a boolean value, but got drop_last='False'"),
        # Stricter than PyTorch, which shuffles: "False" read from a config shuffled a prediction loader.
        (dict(shuffle="False"), "shuffle should be a boolean value, but got shuffle='False'"),
        (dict(drop_last=1), "drop_last should be a boolean value, but got drop_last=1"),
        (dict(drop_last=0), "drop_last should be a boolean value, but got drop_last=0"),
    ],
)
def test_bad_arguments_are_explained(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DataLoader(Squares(4), **kwargs)
    with pytest.raises(TypeError, match="cpu_transforms must be a callable or a list of callables"):
        DataLoader(Squares(4), cpu_transforms=3)


def test_batch_rng_outside_a_loader_is_explained():
    with pytest.raises(RuntimeError, match="only available while a DataLoader loads a batch"):
        batch_rng()


def test_seed_tutorial_import_path_is_the_same_dataset():
    from audiotrain.data.data.dataset import Dataset as TutorialDataset

    assert TutorialDataset is Dataset


ORPHAN_SCRIPT = """
import os, sys
sys.path.insert(0, {tests!r})
import audiotrain
from audiotrain import DataLoader
from test_data import Squares

if __name__ == "__main__":
    loader = DataLoader(Squares(40), batch_size=2, num_workers=2, worker_type="process", persistent_workers=True)
    next(iter(loader))
    print(" ".join(str(w.pid) for w in loader._pool._workers), flush=True)
    os._exit(0)  # die without any cleanup, as after a SIGKILL
"""


def process_gone(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(line.split()[:2] == ["State:", "Z"] for line in f)  # a zombie has exited
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_worker_processes_exit_when_the_main_process_dies(tmp_path):
    script = tmp_path / "orphan.py"
    script.write_text(ORPHAN_SCRIPT.format(tests=os.path.dirname(__file__)))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == 2, out.stderr
    deadline = time.monotonic() + 15
    while not all(process_gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(process_gone(p) for p in pids)


UNGUARDED_SCRIPT = """
import numpy as np
import audiotrain
from audiotrain import DataLoader

# A dataset of 256 KiB: larger than a pipe's buffer, and no `if __name__ == "__main__":` guard
clips = [np.zeros(16000, np.float32) for _ in range(4)]
list(DataLoader(clips, batch_size=2, num_workers=2, worker_type="process"))
"""


def test_an_unguarded_script_with_a_large_dataset_gets_the_error_not_a_hang(tmp_path):
    # Each worker re-ran the script and died while reading the spawn message, in which the dataset was: the
    # main process then waited for ever writing the rest of it (timed out here) instead of raising.
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED_SCRIPT)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=90)
    assert out.returncode == 1
    assert "DataLoaderError: DataLoader worker" in out.stderr
    assert "it needs an `if __name__ == '__main__':` guard" in out.stderr


PEAK_MEMORY_SCRIPT = """
import resource, sys
import numpy as np
from audiotrain import DataLoader

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

if __name__ == "__main__":
    clips = [np.ones(160_000, np.float32) for _ in range(100)]  # 64 MB
    list(DataLoader(clips[:4], batch_size=2, num_workers=2, worker_type="process"))  # (its imports)
    before = peak_mb()
    context = sys.argv[1]
    loader = DataLoader(clips, batch_size=2, num_workers=4, worker_type="process",
                        multiprocessing_context=context)
    list(loader)
    print(peak_mb() - before)
"""


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_process_workers_start_without_a_second_copy_of_the_dataset_in_the_main_process(tmp_path, context):
    # The dataset pickled once for the workers is the one copy they need. A queue's feeder thread pickled it
    # again as it wrote it to each worker (64 MB more at the main process's peak, and a forked worker, which
    # has it already, was sent it through a pipe).
    script = tmp_path / "peak_memory.py"
    script.write_text(PEAK_MEMORY_SCRIPT)
    out = subprocess.run([sys.executable, str(script), context], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    grew_mb = float(out.stdout.split()[-1])
    assert grew_mb < 64 * 1.5, f"the main process's peak grew {grew_mb:.0f} MB for a dataset of 64 MB"


def test_a_dataset_workers_cannot_import_is_explained(monkeypatch):
    """As with a class defined in a notebook: the parent can pickle it, spawned workers cannot import it."""
    monkeypatch.setattr(Squares, "__module__", "module_only_the_parent_has")
    monkeypatch.setitem(sys.modules, "module_only_the_parent_has", sys.modules[__name__])
    loader = DataLoader(Squares(4), batch_size=2, num_workers=1, worker_type="process")
    with pytest.raises(DataLoaderError, match="could not load the dataset .*ModuleNotFoundError") as info:
        list(loader)
    assert "module_only_the_parent_has" in info.value.worker_traceback
    assert no_loader_workers_left()


def test_datasets_with_set_epoch_learn_the_epoch_from_the_loader():
    class EpochAware(Dataset):
        def __init__(self):
            self.epoch = None

        def set_epoch(self, epoch):
            self.epoch = epoch

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return np.float32(self.epoch)

    ds = EpochAware()
    loader = DataLoader(ds, batch_size=4, seed=0)
    loader.set_epoch(3)
    (batch,) = list(loader)
    assert np.asarray(batch).tolist() == [3.0] * 4
    (batch,) = list(loader)
    assert np.asarray(batch).tolist() == [4.0] * 4


@pytest.mark.parity
def test_a_torch_tensor_dataset_collates_to_arrays():
    torch = require("torch")
    from audiotrain import DataLoader

    dataset = torch.utils.data.TensorDataset(torch.arange(12.0).reshape(6, 2), torch.arange(6))
    x, y = next(iter(DataLoader(dataset, batch_size=4)))
    assert tuple(x.shape) == (4, 2) and tuple(y.shape) == (4,)
    np.testing.assert_array_equal(np.array(y), [0, 1, 2, 3])


# ------------------------------------------------------------------ PyTorch arguments


class EpochBatches:
    """A batch sampler whose batches are a pure function of the epoch (like a DistributedSampler)."""

    def __init__(self, n=12, batch=3):
        self.n, self.batch, self.epoch = n, batch, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.n // self.batch

    def __iter__(self):
        order = np.random.default_rng([99, self.epoch]).permutation(self.n)
        return iter(order.reshape(-1, self.batch).tolist())


class FreshRandomOrder:
    """A sampler that draws a new order on every pass (a RandomSampler without a seeded generator)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __iter__(self):
        return iter(np.random.default_rng().permutation(self.n).tolist())


class EpochOrder:
    """A sampler whose order is a function of the epoch set on it (like a DistributedSampler)."""

    def __init__(self, n):
        self.n, self.epoch = n, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.n

    def __iter__(self):
        return iter(np.random.default_rng([99, self.epoch]).permutation(self.n).tolist())


class BatchesOf:
    """Cuts its sampler's order into batches, as torch's BatchSampler, which has no set_epoch of its own."""

    def __init__(self, sampler, batch_size):
        self.sampler, self.batch_size = sampler, batch_size

    def __len__(self):
        return len(self.sampler) // self.batch_size

    def __iter__(self):
        return iter(np.reshape(list(self.sampler), (-1, self.batch_size)).tolist())


@pytest.mark.parametrize("batching", ["sampler", "batch_sampler"])
def test_the_epoch_reaches_the_sampler_a_batch_sampler_wraps(batching):
    # torch's BatchSampler(DistributedSampler(...)) or DataLoader(sampler=DistributedSampler(...)): without
    # the epoch, every epoch would have one order.
    if batching == "sampler":
        loader = DataLoader(Squares(12), sampler=EpochOrder(12), batch_size=3)
    else:
        loader = DataLoader(Squares(12), batch_sampler=BatchesOf(EpochOrder(12), 3))
    for epoch in range(3):
        order = np.random.default_rng([99, epoch]).permutation(12)
        assert ys(loader) == order.reshape(-1, 3).tolist()


def test_batch_sampler_gives_the_batches_and_len():
    loader = DataLoader(Squares(6), batch_sampler=[[3, 1], [0], [5, 4, 2]])
    assert len(loader) == 3 and loader.batch_size is None
    assert ys(loader) == [[3, 1], [0], [5, 4, 2]]
    with pytest.raises(IndexError, match="batch_sampler list yielded index 9"):
        list(DataLoader(Squares(6), batch_sampler=[[9]]))


@pytest.mark.parametrize("batch_sampler", [EpochOrder(6), [0, 1], ["a", "b"]])
def test_a_sampler_of_single_indices_passed_as_batch_sampler_is_named(batch_sampler):
    # torch's commonest mix-up of the two arguments (a sampler that yields one index at a time, as
    # EpochOrder does): it used to fail with a bare "'int' object is not iterable" (or split each name key
    # into its characters) that named neither argument.
    with pytest.raises(
        TypeError,
        match=r"batch_sampler \w+ yielded .* as batch 0, but each batch must be a "
        r"list of sample indices.*sampler=",
    ):
        list(DataLoader(Squares(6), batch_sampler=batch_sampler))


def test_a_sampler_index_equal_to_the_datasets_length_is_refused_not_loaded():
    # The classic off-by-one of a hand-written sampler: Squares computes any index, so only the check stops it.
    dataset = Squares(6)
    with pytest.raises(IndexError, match=r"yielded index 6, outside the dataset \(0 \.\. 5\)"):
        list(DataLoader(dataset, sampler=[0, 6]))
    assert 6 not in dataset.loaded
    # A negative index would read from the end (Python's indexing) instead of failing.
    with pytest.raises(IndexError, match=r"yielded index -1, outside the dataset \(0 \.\. 5\)"):
        list(DataLoader(dataset, sampler=[0, -1]))
    assert -1 not in dataset.loaded


@pytest.mark.parity
def test_a_torch_batch_sampler_gives_its_batches():
    torch = require("torch")
    batches = torch.utils.data.BatchSampler(torch.utils.data.SequentialSampler(range(5)), 2, drop_last=True)
    assert ys(DataLoader(Squares(5), batch_sampler=batches, num_workers=2)) == [[0, 1], [2, 3]]


@pytest.mark.parametrize(
    "kwargs", [dict(batch_size=2), dict(shuffle=True), dict(sampler=[0, 1]), dict(drop_last=True)]
)
@pytest.mark.parity
def test_batch_sampler_is_exclusive_with_batching_arguments_as_in_torch(kwargs):
    torch = require("torch")
    with pytest.raises(ValueError) as theirs:
        torch.utils.data.DataLoader(list(range(4)), batch_sampler=[[0, 1]], **kwargs)
    with pytest.raises(ValueError) as ours:
        DataLoader(Squares(4), batch_sampler=[[0, 1]], **kwargs)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(batch_size=2),
        dict(shuffle=True),
        dict(sampler=[0, 1]),
        dict(drop_last=True),
        # PyTorch's rule: batch_size=None is not its default 1 either, and with drop_last this rule is named,
        # not batch_size=None's own.
        dict(batch_size=None),
        dict(batch_size=None, drop_last=True),
    ],
)
def test_batch_sampler_with_a_batching_argument_is_refused_without_torch_installed(kwargs):
    # The test above skips where torch is missing; a batch_size=2 beside a batch_sampler must not be
    # silently ignored there either.
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive with batch_size"):
        DataLoader(Squares(4), batch_sampler=[[0, 1]], **kwargs)


def test_a_batch_sampler_sets_no_batch_size_and_must_be_sized_and_sharded_by_itself():
    assert DataLoader(Squares(4), batch_sampler=[[0, 1], [2, 3]]).batch_size is None  # as in PyTorch
    # (The message said only that, where a torch user had passed a generator of batches, as torch allows.)
    with pytest.raises(
        TypeError, match=r"batch_sampler must have __len__ \(.*got list_iterator; pass a list"
    ):
        DataLoader(Squares(4), batch_sampler=iter([[0, 1]]))
    with pytest.raises(ValueError, match="distributed=True shards the loader's own order, but a sampler / b"):
        DataLoader(Squares(4), batch_sampler=[[0, 1]], distributed=True)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_batch_sampler_resumes_mid_epoch_exactly_when_its_order_is_a_function_of_the_epoch(num_workers):
    full = DataLoader(Squares(12), batch_sampler=EpochBatches())
    full.set_epoch(3)
    expected = ys(full)
    first = DataLoader(Squares(12), batch_sampler=EpochBatches(), num_workers=num_workers)
    first.set_epoch(3)
    it = iter(first)
    head = [np.array(next(it)["y"]).tolist() for _ in range(2)]
    state = json.loads(json.dumps(first.state_dict()))
    dataset = Squares(12)
    resumed = DataLoader(dataset, batch_sampler=EpochBatches(), num_workers=num_workers)
    resumed.load_state_dict(state)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the order is checked and found the same: no warning
        tail = ys(resumed)
    assert head + tail == expected and resumed.epoch == 3
    if num_workers == 0:
        assert sorted(dataset.loaded) == sorted(np.concatenate(expected[2:]).tolist())


class Crops(Dataset):
    """Sample ``(i, n)`` is n values i: a crop of length n, as a bucketing sampler asks for."""

    def __len__(self):
        return 4

    def __getitem__(self, key):
        i, n = key
        return np.full(n, i, np.float32)


class CropBuckets:
    """Batches of ``(index, crop_length)`` keys, one crop length per batch (audio bucketing)."""

    def __len__(self):
        return 2

    def __iter__(self):
        return iter([[(0, 3), (1, 3)], [(2, 5), (3, 5)]])


@pytest.mark.parametrize("num_workers, worker_type", [(0, "thread"), (2, "thread"), (2, "process")])
def test_sampler_keys_other_than_ints_reach_the_dataset_as_they_are(num_workers, worker_type):
    # As in PyTorch: a bucketing sampler's (index, crop_length) keys, or names, are the dataset's to answer.
    loader = DataLoader(
        Crops(), batch_sampler=CropBuckets(), num_workers=num_workers, worker_type=worker_type
    )
    assert [np.array(b).tolist() for b in loader] == [[[0.0] * 3, [1.0] * 3], [[2.0] * 5, [3.0] * 5]]
    named = DataLoader({"a": np.zeros(2), "b": np.ones(2)}, sampler=["b", "a"], batch_size=2)
    assert np.array(next(iter(named))).tolist() == [[1.0, 1.0], [0.0, 0.0]]
    # A resume checks such an order too (it fingerprints the keys), and finds it the same.
    first = DataLoader(Crops(), batch_sampler=CropBuckets())
    next(iter(first))
    resumed = DataLoader(Crops(), batch_sampler=CropBuckets())
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [np.array(b).shape for b in resumed] == [(2, 5)]
    # ... and finds it changed where the keys did (other crops of the same samples, in batches as long).
    other_crops = DataLoader(Crops(), batch_sampler=[[(0, 3), (1, 3)], [(2, 4), (3, 4)]])
    other_crops.load_state_dict(json.loads(json.dumps(first.state_dict())))
    with pytest.warns(UserWarning, match="gives a different order"):
        assert [np.array(b).shape for b in other_crops] == [(2, 4)]


def test_resuming_a_sampler_whose_order_changed_warns():
    first = DataLoader(Squares(40), batch_size=4, sampler=FreshRandomOrder(40))
    it = iter(first)
    next(it)
    state = first.state_dict()
    resumed = DataLoader(Squares(40), batch_size=4, sampler=FreshRandomOrder(40))
    resumed.load_state_dict(state)
    with pytest.warns(UserWarning, match="skipping the first 1 batches .* gives a different order") as got:
        assert len(ys(resumed)) == 9
    # Not only this epoch: the sampler's generator goes on from another state (numpy's global one is
    # restored as it was after this epoch's order was drawn, so the resumed epoch gets the next one's).
    assert "every later epoch's order differs from an uninterrupted run's too" in str(got[0].message)


class GlobalGeneratorOrder:
    """A sampler drawing each epoch's order from numpy's global generator, as a torch RandomSampler or
    WeightedRandomSampler without a generator draws from torch's: the Trainer's checkpoint restores it."""

    def __len__(self):
        return 12

    def __iter__(self):
        return iter(np.random.permutation(12).tolist())


def test_a_sampler_drawing_from_the_global_generators_resumes_mid_epoch_exactly():
    # A checkpoint holds the loader's position and the global generators as they are at the step
    # (RandomState): after this epoch's order was drawn. The resume drew the order again from there, so
    # it trained on another order than the uninterrupted run, with a warning, where README promises that
    # such a sampler goes on as it would have.
    from audiotrain.train.state import RandomState

    np.random.seed(0)
    full = DataLoader(Squares(12), batch_size=3, sampler=GlobalGeneratorOrder())
    ys(full)  # epoch 0
    it = iter(full)  # epoch 1
    head = [np.array(next(it)["y"]).tolist() for _ in range(2)]
    state, random_at_step = json.loads(json.dumps(full.state_dict())), RandomState.capture()
    tail = [np.array(b["y"]).tolist() for b in it]
    after_epoch = np.random.random()
    np.random.seed(123)  # (a new process)
    RandomState.restore(random_at_step)
    resumed = DataLoader(Squares(12), batch_size=3, sampler=GlobalGeneratorOrder())
    resumed.load_state_dict(state)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ys(resumed) == tail and len(head + tail) == 4
    assert np.random.random() == after_epoch  # the generators go on as the uninterrupted run's did


def test_a_sampler_that_draws_from_no_global_generator_adds_none_of_their_states_to_the_checkpoint():
    # order_random held the global generators' states (numpy, random, MLX, torch: about 22 KB of JSON, which
    # nearly doubled trainer_state.json) for every user sampler, also one that draws nothing from them (a
    # fixed order, a DistributedSampler or a sampler with its own seeded generator), whose order a resume
    # draws again the same from any state.
    fixed = DataLoader(Squares(12), batch_size=3, sampler=[3, 1, 4, 0, 5, 9, 2, 6, 8, 7, 11, 10])
    it = iter(fixed)
    next(it)
    assert fixed.state_dict()["order_random"] is None
    drawing = DataLoader(Squares(12), batch_size=3, sampler=GlobalGeneratorOrder())
    it = iter(drawing)
    next(it)
    assert set(drawing.state_dict()["order_random"]) == {"numpy"}  # (the one it drew from)


@pytest.mark.parity
def test_a_torch_random_sampler_keeps_only_torchs_state_and_resumes_mid_epoch_exactly():
    # order_random held every global generator's state (numpy's and Python's 624 numbers each, MLX's, torch's)
    # where a torch RandomSampler draws from torch's alone: 21.6 KB of JSON in each checkpoint, not 6.8 KB.
    from audiotrain.train.state import RandomState

    torch = require("torch")
    torch.manual_seed(0)
    full = DataLoader(Squares(12), batch_size=3, sampler=torch.utils.data.RandomSampler(range(12)))
    ys(full)  # epoch 0
    it = iter(full)  # epoch 1
    next(it)
    state, random_at_step = json.loads(json.dumps(full.state_dict())), RandomState.capture()
    assert set(state["order_random"]) == {"torch"}
    tail = [np.array(b["y"]).tolist() for b in it]
    after_epoch = torch.rand(1).item()
    torch.manual_seed(123)  # (a new process)
    RandomState.restore(random_at_step)
    resumed = DataLoader(Squares(12), batch_size=3, sampler=torch.utils.data.RandomSampler(range(12)))
    resumed.load_state_dict(state)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ys(resumed) == tail and len(tail) == 3
    assert torch.rand(1).item() == after_epoch


def test_resuming_a_batch_sampler_that_cuts_the_same_order_into_other_batches_warns():
    # The same indices in the same order, batched otherwise (a bucketing sampler's boundaries moved): the
    # resumed epoch trains on batches an uninterrupted run would not have seen.
    first = DataLoader(Squares(6), batch_sampler=[[0, 1], [2, 3], [4, 5]])
    next(iter(first))
    resumed = DataLoader(Squares(6), batch_sampler=[[0, 1], [2], [3, 4, 5]])
    resumed.load_state_dict(first.state_dict())
    with pytest.warns(UserWarning, match="gives a different order"):
        assert ys(resumed) == [[2], [3, 4, 5]]


_worker_state = threading.local()


def remember_worker_id(worker_id):
    _worker_state.calls = getattr(_worker_state, "calls", 0) + 1
    _worker_state.worker_id = worker_id


def tag_with_worker(item):
    item["worker"] = np.array([_worker_state.worker_id, _worker_state.calls])
    return item


def fail_in_worker_1(worker_id):
    if worker_id == 1:
        raise ValueError("no GPU for worker 1")


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_worker_init_fn_runs_once_in_each_worker(worker_type):
    loader = DataLoader(
        Squares(12), batch_size=2, num_workers=2, worker_type=worker_type,
        worker_init_fn=remember_worker_id, cpu_transforms=tag_with_worker,
    )  # fmt: skip
    for b, batch in enumerate(loader):
        # batch b is loaded by worker b % 2, which ran worker_init_fn once, with its own id
        assert np.array(batch["worker"]).tolist() == [[b % 2, 1]] * 2
    assert no_loader_workers_left()


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_worker_init_fn_failure_names_the_worker_and_carries_the_traceback(worker_type):
    loader = DataLoader(
        Squares(12), batch_size=2, num_workers=2, worker_type=worker_type, worker_init_fn=fail_in_worker_1
    )
    with pytest.raises(
        DataLoaderError,
        match=r"worker_init_fn \(fail_in_worker_1\) failed in DataLoader worker 1: ValueError",
    ) as info:
        list(loader)
    err = info.value
    assert err.worker_id == 1 and err.stage == "worker_init_fn"
    text = worker_traceback_text(err, worker_type)
    assert "fail_in_worker_1" in text and "no GPU for worker 1" in text
    assert no_loader_workers_left()


def runtime_error_in_worker_0(worker_id):
    raise RuntimeError("CUDA not available in worker")


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_a_runtime_error_in_worker_init_fn_keeps_its_type(worker_type):
    # DataLoaderError is a RuntimeError already: original_type still says what the user's code raised.
    loader = DataLoader(
        Squares(4),
        batch_size=2,
        num_workers=1,
        worker_type=worker_type,
        worker_init_fn=runtime_error_in_worker_0,
    )
    with pytest.raises(DataLoaderError) as info:
        list(loader)
    assert info.value.original_type is RuntimeError
    assert pickle.loads(pickle.dumps(info.value)).original_type is RuntimeError


def draws(loader):
    return [np.array(b).ravel().round(6).tolist() for b in loader]


def test_process_workers_seed_the_global_generators_apart_and_repeatably():
    # As PyTorch's workers: np.random and random are seeded per worker from the loader's seed and the epoch,
    # so workers draw different numbers, and a run with the same seed draws the same ones again.
    persistent = DataLoader(
        GlobalRandom(4), num_workers=2, worker_type="process", persistent_workers=True, seed=3
    )
    epochs = [draws(persistent) for _ in range(2)]
    persistent.close()
    assert epochs[0][0] != epochs[0][1]  # batches 0 and 1: workers 0 and 1
    assert epochs[0] != epochs[1]  # a new epoch, new numbers
    again = DataLoader(GlobalRandom(4), num_workers=2, worker_type="process", seed=3)
    again.set_epoch(1)
    assert draws(again) == epochs[1]  # another run, without persistent workers


def test_process_workers_global_random_numbers_resume_mid_epoch_exactly():
    # Seeded before each batch from (seed, epoch, batch): a resume that skips batches draws what the
    # uninterrupted run drew (most PyTorch code augments with np.random and random), with any worker count.
    loader = DataLoader(
        GlobalRandom(8), batch_size=2, shuffle=True, seed=3, num_workers=2, worker_type="process",
        persistent_workers=True,
    )  # fmt: skip
    uninterrupted = []
    for b, batch in enumerate(loader):
        uninterrupted.append(np.array(batch).ravel().round(6).tolist())
        if b == 2:
            state = loader.state_dict()  # three batches trained on
    loader.close()
    resumed = DataLoader(GlobalRandom(8), batch_size=2, shuffle=True, num_workers=1, worker_type="process")
    resumed.load_state_dict(state)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert draws(resumed) == uninterrupted[3:]


class NumpyDraws(Squares):
    def __getitem__(self, i):
        return np.random.random()


def seed_numpy_by_worker(worker_id):
    np.random.seed(1000 + worker_id)


def test_a_worker_init_fn_that_seeds_np_random_keeps_its_stream_in_persistent_workers():
    # As in PyTorch: a worker seeds np.random once, before worker_init_fn, and a persistent worker draws on
    # from where worker_init_fn left it, epoch after epoch (the loader no longer seeds what it seeded).
    loader = DataLoader(
        NumpyDraws(8), batch_size=2, num_workers=2, worker_type="process", persistent_workers=True,
        worker_init_fn=seed_numpy_by_worker, seed=0,
    )  # fmt: skip
    epochs = [draws(loader) for _ in range(2)]
    loader.close()
    streams = [np.float32(np.random.RandomState(1000 + w).random_sample(8)).round(6).tolist() for w in (0, 1)]
    # Batch b is worker b % 2's; each batch takes 2 numbers of its worker's stream, 2 batches per epoch.
    first = [[4 * e + 2 * (b // 2) for b in range(4)] for e in range(2)]
    assert epochs == [[streams[b % 2][k : k + 2] for b, k in enumerate(row)] for row in first]


def test_resuming_mid_epoch_warns_where_worker_init_fn_seeded_a_global_generator():
    def loader(worker_init_fn):
        made = DataLoader(
            NumpyDraws(8), batch_size=2, num_workers=2, worker_type="process", worker_init_fn=worker_init_fn,
            seed=0,
        )  # fmt: skip
        made.load_state_dict({**made.state_dict(), "batches_yielded": 1})  # (a checkpoint's, mid-epoch)
        return made

    with pytest.warns(
        UserWarning,
        match=r"resumes epoch 0 at batch 1, but its worker_init_fn \(seed_numpy_by_worker\) seeded np.random "
        r"in the worker processes.*batch_rng\(\)",
    ):
        assert len(draws(loader(seed_numpy_by_worker))) == 3
    with warnings.catch_warnings():  # a worker_init_fn that leaves the generators alone: exact, no warning
        warnings.simplefilter("error")
        assert len(draws(loader(remember_worker_id))) == 3


def test_a_loader_without_a_seed_draws_it_from_numpys_global_generator():
    # So seed_everything decides the order of a loader used on its own, as torch.manual_seed does in PyTorch.
    orders = []
    for _ in range(2):
        np.random.seed(5)
        orders.append(ys(DataLoader(Squares(8), batch_size=8, shuffle=True)))
    assert orders[0] == orders[1]
    np.random.seed(6)  # (another global seed: another order, not one fixed seed for every loader)
    assert ys(DataLoader(Squares(8), batch_size=8, shuffle=True)) != orders[0]


@pytest.mark.parity
def test_a_torch_generator_gives_the_shuffle_seed():
    torch = require("torch")
    order = np.concatenate(
        ys(DataLoader(Squares(10), batch_size=5, shuffle=True, generator=torch.Generator().manual_seed(3)))
    )
    assert order.tolist() == np.random.default_rng([3, 0]).permutation(10).tolist()


def test_generator_gives_the_shuffle_seed():
    order = np.concatenate(ys(DataLoader(Squares(10), batch_size=5, shuffle=True, generator=3)))
    assert order.tolist() == np.random.default_rng([3, 0]).permutation(10).tolist()
    assert DataLoader(Squares(10), generator=4).seed == 4
    from_numpy = DataLoader(Squares(10), generator=np.random.default_rng(1))
    assert from_numpy.seed == int(np.random.default_rng(1).integers(2**63))
    with pytest.raises(ValueError, match="seed and generator both give the shuffle seed"):
        DataLoader(Squares(10), seed=1, generator=1)
    with pytest.raises(TypeError, match="generator must be a torch.Generator, a numpy Generator or an int"):
        DataLoader(Squares(10), generator="7")
    with pytest.raises(TypeError, match="generator must be a torch.Generator, .* got bool"):
        DataLoader(Squares(10), generator=True)  # (a bool is no seed)
    # A torch.Generator's seed is 64-bit: kept whole (torch is not needed to show it).
    torch_like = SimpleNamespace(initial_seed=lambda: 2**40 + 3)
    assert DataLoader(Squares(10), generator=torch_like).seed == 2**40 + 3


class CountingContext:
    """A multiprocessing context that counts the worker processes it starts."""

    def __init__(self):
        self.ctx = mp.get_context("spawn")
        self.started = 0

    def Process(self, *args, **kwargs):
        self.started += 1
        return self.ctx.Process(*args, **kwargs)

    def Queue(self):
        return self.ctx.Queue()


def test_torch_loader_arguments_are_accepted():
    ctx = CountingContext()
    loader = DataLoader(
        Squares(6), batch_size=2, num_workers=2, worker_type="process", multiprocessing_context=ctx,
        pin_memory=True, pin_memory_device="cuda", timeout=30,
    )  # fmt: skip
    batches = list(loader)
    assert ctx.started == 2 and isinstance(batches[0]["x"], mx.array)
    # PyTorch's defaults where they are not given, and its timeout in seconds as a float.
    defaults = DataLoader(Squares(6), num_workers=2, timeout=2.5)
    assert (defaults.prefetch_factor, defaults.multiprocessing_context, defaults.timeout) == (2, None, 2.5)
    assert DataLoader(Squares(6)).prefetch_factor is None
    assert ys(
        DataLoader(
            Squares(4), batch_size=2, num_workers=1, worker_type="process", multiprocessing_context=None
        )
    ) == [[0, 1], [2, 3]]
    with pytest.raises(
        ValueError, match="multiprocessing_context must be 'spawn', 'forkserver', 'fork' or a"
    ):
        DataLoader(Squares(4), multiprocessing_context="threads")


def test_a_start_method_given_with_thread_workers_warns_that_it_is_unused():
    """A PyTorch user's multiprocessing_context="spawn" was dropped without a word: the workers were threads."""
    with pytest.warns(UserWarning, match=r"multiprocessing_context='spawn' is unused: these 2 workers are"):
        loader = DataLoader(Squares(4), batch_size=2, num_workers=2, multiprocessing_context="spawn")
    assert ys(loader) == [[0, 1], [2, 3]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DataLoader(Squares(4), batch_size=2, num_workers=2)  # (no start method given: nothing to say)
        DataLoader(Squares(4), batch_size=2, multiprocessing_context="spawn")  # (no workers)


def test_pytorch_2_calls_start_or_fail_plainly():
    # prefetch_factor=None is PyTorch 2's default, which it requires without workers.
    for num_workers in (0, 2):
        loader = DataLoader(Squares(4), batch_size=2, num_workers=num_workers, prefetch_factor=None)
        assert ys(loader) == [[0, 1], [2, 3]]
        assert loader.prefetch_factor == (None if num_workers == 0 else 2)  # as torch's attribute
    assert ys(DataLoader(Squares(4), 2, False, in_order=True)) == [[0, 1], [2, 3]]
    with pytest.raises(ValueError, match="in_order=False: batches always come in order"):
        DataLoader(Squares(4), in_order=False)


def test_pytorchs_positional_arguments_land_where_pytorch_puts_them():
    # DataLoader(ds, 4, False, sampler) got Python's bare "takes from 2 to 4 positional arguments": the
    # parameters after shuffle were keyword-only. They now follow torch's order, up to generator.
    assert ys(DataLoader(Squares(6), 4, False, [5, 4, 3, 2, 1, 0])) == [[5, 4, 3, 2], [1, 0]]
    loader = DataLoader(Squares(5), 1, False, None, [[0, 1], [4]], 0, None, False, False, 0, None, None, 7)
    assert ys(loader) == [[0, 1], [4]] and loader.batch_size is None and loader.seed == 7
    loader = DataLoader(Squares(5), 2, False, None, None, 1, None, False, True, 5.0, None, None, None)
    assert (loader.num_workers, loader.drop_last, loader.timeout) == (1, True, 5.0)
    assert ys(loader) == [[0, 1], [2, 3]]
    # Past generator, keyword-only as in torch (prefetch_factor, persistent_workers, ...).
    with pytest.raises(TypeError, match="positional arguments"):
        DataLoader(Squares(4), 2, False, None, None, 1, None, False, False, 0, None, None, None, 2)


class EpochValued(Dataset):
    """Every sample is the epoch the dataset was last told (via set_epoch) in this process."""

    def __init__(self):
        self.epoch = -1

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return np.float32(self.epoch)


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_persistent_workers_see_the_dataset_epoch(worker_type):
    loader = DataLoader(
        EpochValued(), batch_size=2, num_workers=2, worker_type=worker_type, persistent_workers=True
    )
    seen = [np.concatenate([np.asarray(b) for b in loader]).tolist() for _ in range(2)]
    loader.set_epoch(5)
    seen.append(np.concatenate([np.asarray(b) for b in loader]).tolist())
    assert seen == [[0.0] * 4, [1.0] * 4, [5.0] * 4]
    loader.close()


class SetEpochCalls(Dataset):
    """Every sample is how many times this process told this copy of the dataset its current epoch (a
    process worker's copy comes pickled with the main process's calls, made in another process)."""

    def __init__(self):
        self.calls = []

    def set_epoch(self, epoch):
        self.calls.append((os.getpid(), epoch))

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return np.float32(self.calls.count((os.getpid(), self.calls[-1][1])))


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_a_worker_tells_its_dataset_copy_the_epoch_once_per_epoch_not_per_batch(worker_type):
    # dataset.set_epoch may reshuffle shards or rebuild a cache: a worker calls it on its own copy when the
    # epoch changes, not again before each batch (each worker loads 4 batches of an epoch here).
    loader = DataLoader(
        SetEpochCalls(), batch_size=1, num_workers=2, worker_type=worker_type, persistent_workers=True
    )
    seen = [np.concatenate([np.asarray(b) for b in loader]).tolist() for _ in range(2)]
    assert seen == [[1.0] * 8, [1.0] * 8]
    loader.close()


class SignalsItselfAt3(Squares):
    """Sends a stop signal to its own worker process at sample 3, as a Ctrl-C or a SIGTERM to the
    process group (`timeout`, `scancel`) reaches the workers too."""

    def __init__(self, n, signum):
        super().__init__(n)
        self.signum = signum

    def __getitem__(self, i):
        if i == 3:
            os.kill(os.getpid(), self.signum)
            time.sleep(0.2)  # (a signal not ignored is delivered by now)
        return super().__getitem__(i)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGUSR1])
def test_a_started_worker_process_ignores_the_stop_signals_the_main_process_handles(signum):
    # The main process handles the stop and shuts its workers down; a worker that died of the signal
    # (or raised KeyboardInterrupt) would turn a clean stop into a DataLoaderError.
    loader = DataLoader(SignalsItselfAt3(6, signum), batch_size=2, num_workers=2, worker_type="process")
    assert ys(loader) == [[0, 1], [2, 3], [4, 5]]
    assert no_loader_workers_left()


def test_int64_overflow_names_the_batch():
    data = [{"ids": np.int64(i if i < 2 else 2**40)} for i in range(4)]
    with pytest.raises(
        DataLoaderError, match=r"batch 1 to MLX failed: batch\['ids'\] holds int64 values"
    ) as info:
        list(DataLoader(data, batch_size=2))
    assert info.value.batch_index == 1 and isinstance(info.value.__cause__, ValueError)


def test_subset_reads_its_indices_in_order_and_passes_the_epoch_on():
    from audiotrain.data import IterableDataset, Subset

    class Epochs(Dataset):
        epoch = 0

        def __len__(self):
            return 5

        def __getitem__(self, i):
            return i * 10 + self.epoch

        def set_epoch(self, epoch):
            self.epoch = epoch

    base = Epochs()
    part = Subset(base, [4, 0, 2])
    assert len(part) == 3 and [part[i] for i in range(3)] == [40, 0, 20]
    part.set_epoch(3)
    assert part[0] == 43
    with pytest.raises(IndexError, match=r"indices \[5\] out of range for a dataset of 5 samples"):
        Subset(base, [1, 5])

    class Stream(IterableDataset):
        def __iter__(self):
            return iter(range(3))

    # Its error named the DataLoader, which the user never made.
    with pytest.raises(
        TypeError, match=r"^Subset needs a map-style dataset .*got Stream, which is an iterable"
    ):
        Subset(Stream(), [0])


def test_process_workers_without_file_descriptors_left_say_so_and_how_to_go_on(tmp_path):
    """Starting process workers with the process's file descriptors nearly used up was a raw
    `OSError: [Errno 24] Too many open files` from inside multiprocessing, naming neither the DataLoader,
    its workers nor the limit."""
    script = textwrap.dedent(
        """
        import os, resource
        import numpy as np
        from audiotrain import DataLoader
        from audiotrain.data import DataLoaderError

        class Numbers:
            def __len__(self):
                return 16

            def __getitem__(self, i):
                return {"x": np.full((2,), i, np.float32)}

        open_now = len(os.listdir("/proc/self/fd"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (open_now + 6, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        try:
            list(DataLoader(Numbers(), batch_size=4, num_workers=2, worker_type="process"))
        except DataLoaderError as error:
            print("error:", error)
        import multiprocessing
        print("alive:", len(multiprocessing.active_children()))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "error: DataLoader: cannot start 2 worker processes: too many open files" in done.stdout
    assert "ulimit -n" in done.stdout and "worker_type='thread'" in done.stdout
    assert "alive: 0" in done.stdout


@pytest.mark.parametrize(
    "indices, match",
    [
        # A numpy boolean mask was read as indices 1 and 0: [1, 1, 1, 0, 0, ...] for the first three samples.
        # (numpy 2 writes the value np.True_, numpy 1 True: the declared range holds both.)
        (np.arange(5) < 3, r"index 0 is (np\.)?True_?, a bool.*np\.flatnonzero\(mask\)"),
        ([True, False], r"index 0 is True, a bool"),
        # Floats were truncated (1.7 read sample 1), where torch's Subset raises TypeError.
        ([0, 1.7], r"index 1 is 1\.7 \(float\), expected a whole number"),
    ],
)
def test_subset_refuses_a_boolean_mask_and_float_indices(indices, match):
    from audiotrain.data import Subset

    with pytest.raises(TypeError, match=match):
        Subset(list(range(5)), indices)
    assert list(Subset(list(range(5)), np.array([3, 1]))) == [3, 1]  # numpy integers are indices


def test_a_thread_loader_rebuilt_from_its_attributes_does_not_warn():
    # Lightning rebuilds a loader from its attributes: a multiprocessing_context never given reads None, as
    # PyTorch's does, and passing it back is not an unused one; a process loader still starts with spawn.
    loader = DataLoader(Squares(4), batch_size=2, num_workers=2)
    assert loader.multiprocessing_context is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rebuilt = DataLoader(
            Squares(4), batch_size=2, num_workers=2, multiprocessing_context=loader.multiprocessing_context
        )
    assert ys(rebuilt) == ys(loader)
    ctx = CountingContext()
    given = DataLoader(Squares(4), num_workers=1, worker_type="process", multiprocessing_context=ctx)
    assert given.multiprocessing_context is ctx


def test_long_double_samples_become_float32_batches_as_float64_ones_do():
    # np.longdouble (float128 on Linux) reached mx.array as it was: a bare "RuntimeError: std::bad_cast".
    batches = list(DataLoader([np.longdouble(1.5), np.longdouble(2.5)], batch_size=2))
    assert batches[0].dtype == mx.float32 and np.array(batches[0]).tolist() == [1.5, 2.5]
    arrays = list(DataLoader([np.ones(2, dtype=np.longdouble)] * 2, batch_size=None))
    assert arrays[0].dtype == mx.float32


@pytest.mark.parametrize("second", [np.ones(2), [1.0, 2.0]])
def test_a_field_of_a_number_and_then_an_array_names_the_field_and_the_sample(second):
    # numpy's own "setting an array element with a sequence ... inhomogeneous shape" named neither.
    loader = DataLoader([{"y": 1}, {"y": second}], batch_size=2)
    with pytest.raises(
        DataLoaderError, match=r"cannot collate batch\['y'\]: sample 1 is (ndarray|list) .*sample 0 is int 1"
    ):
        list(loader)
    assert default_collate([{"y": 1}, {"y": np.array(2)}])["y"].tolist() == [1, 2]  # a 0-d array is a number


def test_an_empty_batch_from_a_batch_sampler_says_so():
    loader = DataLoader(list(range(4)), batch_sampler=[[0, 1], []])
    with pytest.raises(
        DataLoaderError, match=r"batch 1 \(no samples: the batch_sampler gave an empty batch\)"
    ):
        list(loader)
    # A collate_fn of the user's gets the empty list, as in PyTorch.
    assert list(DataLoader(list(range(4)), batch_sampler=[[0], []], collate_fn=len)) == [1, 0]
