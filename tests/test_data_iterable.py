"""DataLoader without automatic batching (batch_size=None) and over iterable-style datasets (streams)."""

import gc
import json
import multiprocessing as mp
import threading
import time

import audiotrain  # noqa: F401
from audiotrain.data import (
    DataLoader,
    DataLoaderError,
    Dataset,
    IterableDataset,
    batch_rng,
    default_convert,
    get_worker_info,
)

import mlx.core as mx
import numpy as np
import pytest
from reference import require

# ------------------------------------------ datasets (module level: process workers pickle them)


class Batches(Dataset):
    """Item i is already a batch of 3 samples: {"x": (3, 2) float64, "y": (3,) int64}, all valued i."""

    def __init__(self, n=5):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"x": np.full((3, 2), i, dtype=np.float64), "y": np.full(3, i, dtype=np.int64)}


class Count(IterableDataset):
    """Yields {"y": 0 .. n-1}; every worker yields all of it (no split), as in PyTorch."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return ({"y": i} for i in range(self.n))


class CountLen(Count):
    def __len__(self):
        return self.n


class Split:
    """A plain iterable (no base class) that gives worker k the items k, k + W, ...; records what it sees."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        first, step = (0, 1) if info is None else (info.id, info.num_workers)
        for i in range(first, self.n, step):
            yield {"y": i, "worker": -1 if info is None else info.id}


class SplitLen(Split):
    def __len__(self):
        return self.n


class LongerInLaterWorkers:
    """Worker k yields the k + 1 items {"y": 10 * k + j}: the workers' streams end one after another.
    Reading item ``fails_at`` raises OSError."""

    def __init__(self, fails_at=None):
        self.fails_at = fails_at

    def __iter__(self):
        info = get_worker_info()
        k = 0 if info is None else info.id
        for y in range(10 * k, 10 * k + k + 1):
            if y == self.fails_at:
                raise OSError(f"item {y} is truncated")
            yield {"y": y}


class EpochShuffled(IterableDataset):
    """A shuffled stream of n items whose order is drawn from the epoch set by the loader (a resumable
    stream), split across workers; cpu_transforms add batch_rng noise."""

    def __init__(self, n=11):
        self.n, self.epoch = n, None

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        order = np.random.default_rng([5, self.epoch]).permutation(self.n)
        info = get_worker_info()
        if info is not None:
            order = order[info.id :: info.num_workers]
        for i in order:
            yield {"x": np.float32(i), "y": int(i)}


def jitter(item):
    item["x"] = item["x"] + np.float32(batch_rng().standard_normal())
    return item


class RaggedAt4(IterableDataset):
    """Item 4 has another shape: the batch holding it cannot be stacked."""

    def __iter__(self):
        for i in range(8):
            yield {"x": np.zeros(3 if i == 4 else 2)}


class BrokenAt3(IterableDataset):
    def __iter__(self):
        for i in range(6):
            if i == 3:
                raise OSError("truncated file")
            yield np.float32(i)


class WhoAmI(IterableDataset):
    """Each worker yields one item describing its WorkerInfo, and marks its own copy of the dataset."""

    marked = None

    def __iter__(self):
        info = get_worker_info()
        info.dataset.marked = info.id
        yield {
            "id": info.id,
            "num_workers": info.num_workers,
            "seed": str(info.seed),
            "same_copy": info.dataset is self,
        }


def ys(loader):
    return [np.array(b["y"]).tolist() for b in loader]


# ------------------------------------------------------------------ batch_size=None


def test_batch_size_none_gives_each_sample_as_a_batch():
    loader = DataLoader(Batches(5), batch_size=None)
    assert loader.batch_size is None and len(loader) == 5
    batches = list(loader)
    assert len(batches) == 5
    assert batches[2]["x"].shape == (3, 2) and batches[2]["x"].dtype == mx.float32  # not stacked, converted
    assert batches[2]["y"].dtype == mx.int32 and np.array(batches[2]["y"]).tolist() == [2, 2, 2]
    seen = []

    def collate_one(item):  # gets the sample itself, not a list of one
        seen.append(type(item))
        return item["y"] * 10

    assert [
        np.array(b).tolist() for b in DataLoader(Batches(2), batch_size=None, collate_fn=collate_one)
    ] == [
        [0, 0, 0],
        [10, 10, 10],
    ]
    assert seen == [dict, dict]
    with pytest.raises(
        ValueError, match="batch_size=None option disables auto-batching and is mutually excl"
    ):
        DataLoader(Batches(5), batch_size=None, drop_last=True)


def test_default_convert_keeps_structure_and_converts_array_likes():
    class ArrayLike:  # a torch tensor stands in: __array__ and shape
        shape = (2,)

        def __array__(self, dtype=None, copy=None):
            return np.array([1.0, 2.0])

    item = {"a": (ArrayLike(), "name"), "b": [np.zeros(2), 3]}
    out = default_convert(item)
    assert isinstance(out["a"][0], np.ndarray) and out["a"][1] == "name"
    assert out["b"][0] is item["b"][0] and out["b"][1] == 3


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_batch_size_none_follows_shuffle_sampler_and_workers(worker_type):
    expected = np.random.default_rng([3, 0]).permutation(6).tolist()
    loader = DataLoader(Batches(6), batch_size=None, shuffle=True, seed=3)
    assert [y[0] for y in ys(loader)] == expected
    workers = DataLoader(
        Batches(6), batch_size=None, shuffle=True, seed=3, num_workers=2, worker_type=worker_type
    )
    assert [y[0] for y in ys(workers)] == expected
    sampled = DataLoader(Batches(6), batch_size=None, sampler=[4, 1, 1])
    assert len(sampled) == 3 and [y[0] for y in ys(sampled)] == [4, 1, 1]


def test_batch_size_none_resumes_mid_epoch():
    full = DataLoader(Batches(7), batch_size=None, shuffle=True, seed=2)
    expected = ys(full)
    first = DataLoader(Batches(7), batch_size=None, shuffle=True, seed=2)
    it = iter(first)
    head = [np.array(next(it)["y"]).tolist() for _ in range(3)]
    state = json.loads(json.dumps(first.state_dict()))
    resumed = DataLoader(Batches(7), batch_size=None, shuffle=True)
    resumed.load_state_dict(state)
    assert head + ys(resumed) == expected
    with pytest.raises(ValueError, match="checkpoint has batch_size=None, this loader has batch_size=1"):
        DataLoader(Batches(7), shuffle=True).load_state_dict(state)


# ------------------------------------------------------------------ iterable datasets: batching and len


def test_a_stream_is_cut_into_batches_of_consecutive_items():
    assert ys(DataLoader(Count(7), batch_size=3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert ys(DataLoader(Count(7), batch_size=3, drop_last=True)) == [[0, 1, 2], [3, 4, 5]]
    assert ys(DataLoader(Count(0), batch_size=3)) == []
    assert list(DataLoader(Count(3), batch_size=None)) == [{"y": 0}, {"y": 1}, {"y": 2}]  # not stacked
    assert isinstance(next(iter(DataLoader(Count(3), batch_size=2)))["y"], mx.array)


def test_len_of_a_stream_loader_needs_len_of_the_dataset():
    with pytest.raises(
        TypeError, match="len\\(DataLoader\\) is unknown: the iterable dataset Count has no __len__"
    ):
        len(DataLoader(Count(7), batch_size=3))
    assert len(DataLoader(CountLen(7), batch_size=3)) == 3  # ceil, as PyTorch computes it
    assert len(DataLoader(CountLen(7), batch_size=3, drop_last=True)) == 2
    assert len(DataLoader(CountLen(7), batch_size=None)) == 7


def test_any_iterable_without_getitem_is_a_stream_and_other_objects_are_explained():
    class Plain:
        def __iter__(self):
            return iter([{"y": 1}, {"y": 2}])

    assert ys(DataLoader(Plain(), batch_size=2)) == [[1, 2]]
    with pytest.raises(TypeError, match="iterator .* can be read only once.* __iter__ starts a new pass"):
        DataLoader(x for x in range(3))
    with pytest.raises(
        TypeError, match="map-style dataset .* or an iterable-style one .* got int, which has nei"
    ):
        DataLoader(3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(shuffle=True), "expected unspecified shuffle option, but got shuffle=True"),
        (dict(sampler=[0, 1]), r"expected unspecified sampler option, but got sampler=\[0, 1\]"),
        (
            dict(batch_sampler=[[0]]),
            r"expected unspecified batch_sampler option, but got batch_sampler=\[\[0\]\]",
        ),
    ],
)
def test_a_stream_refuses_shuffle_and_samplers_as_pytorch_does(kwargs, match):
    with pytest.raises(ValueError, match="DataLoader with IterableDataset: " + match):
        DataLoader(Count(4), **kwargs)


# ------------------------------------------------------------------ iterable datasets: workers


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_workers_take_their_share_with_get_worker_info_and_batches_alternate(worker_type):
    assert get_worker_info() is None  # the main thread
    batches = list(DataLoader(Split(11), batch_size=2, num_workers=3, worker_type=worker_type))
    # Worker k reads k, k+3, ...; one batch from each worker in turn, skipping those whose stream ended,
    # each stream ending in its own short batch (PyTorch's order).
    assert [np.array(b["y"]).tolist() for b in batches] == [[0, 3], [1, 4], [2, 5], [6, 9], [7, 10], [8]]
    assert [np.array(b["worker"]).tolist()[0] for b in batches] == [0, 1, 2, 0, 1, 2]
    assert ys(DataLoader(Split(5), batch_size=2)) == [[0, 1], [2, 3], [4]]  # no workers: the whole stream


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_the_other_workers_go_on_once_a_workers_stream_ends(worker_type):
    # Worker 0's stream ends first; PyTorch then skips it and reads on from the others, dropping nothing.
    got = ys(DataLoader(LongerInLaterWorkers(), batch_size=1, num_workers=3, worker_type=worker_type))
    assert got == [[0], [10], [20], [11], [21], [22]]
    # A failure names its batch's place in that stream, the ended worker's requests not counted.
    loader = DataLoader(
        LongerInLaterWorkers(fails_at=22), batch_size=1, num_workers=3, worker_type=worker_type
    )
    with pytest.raises(DataLoaderError, match="item 22 is truncated") as info:
        list(loader)
    assert info.value.batch_index == 5


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_workers_without_a_split_each_yield_the_whole_stream(worker_type):
    got = ys(DataLoader(Count(3), batch_size=2, num_workers=2, worker_type=worker_type))
    assert got == [[0, 1], [0, 1], [2], [2]]


def test_workers_that_repeat_a_stream_with_a_len_warn_as_torchs_loader_does(recwarn):
    # 2 workers over CountLen(3), unsplit, give 6 samples for a len of 3 (torch warns "Length of
    # IterableDataset ... was reported to be 3"); split streams give at most one short batch per worker.
    with pytest.warns(UserWarning, match=r"\(len 3\) gave more than 3 batches.*get_worker_info"):
        assert ys(DataLoader(CountLen(3), batch_size=2, num_workers=2)) == [[0, 1], [0, 1], [2], [2]]
    for loader in [
        DataLoader(SplitLen(11), batch_size=2, num_workers=3),  # 6 batches for a len of 6
        DataLoader(SplitLen(8), batch_size=3, num_workers=2),  # [0, 2, 4] [1, 3, 5] [6] [7]: 4 for 3
        DataLoader(SplitLen(5), batch_size=None, num_workers=2),
    ]:
        list(loader)
    assert [str(w.message) for w in recwarn if "gave more than" in str(w.message)] == []


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_worker_info_has_the_fields_and_each_worker_its_own_dataset_copy(worker_type):
    dataset = WhoAmI()
    loader = DataLoader(dataset, batch_size=None, num_workers=2, worker_type=worker_type, seed=1)
    infos = list(loader)  # plain Python values: batch_size=None stacks nothing
    assert [(i["id"], i["num_workers"], i["same_copy"]) for i in infos] == [(0, 2, True), (1, 2, True)]
    assert dataset.marked is None  # info.dataset is the worker's own copy, not the loader's dataset
    again = DataLoader(WhoAmI(), batch_size=None, num_workers=2, worker_type=worker_type, seed=1)
    seeds = [i["seed"] for i in infos]
    assert seeds[0] != seeds[1] and seeds == [i["seed"] for i in again]  # per worker, reproducible
    loader.set_epoch(1)
    assert [i["seed"] for i in loader] != seeds  # and per epoch, as PyTorch's


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_persistent_stream_workers_see_each_epoch(worker_type):
    loader = DataLoader(
        EpochShuffled(6), batch_size=3, num_workers=2, worker_type=worker_type, persistent_workers=True
    )
    epochs = [sorted(sum(ys(loader), [])) for _ in range(2)]
    assert epochs == [list(range(6))] * 2
    loader.set_epoch(4)
    got = ys(loader)
    order = np.random.default_rng([5, 4]).permutation(6)
    assert got == [order[0::2].tolist(), order[1::2].tolist()]  # each worker its share of epoch 4's order
    loader.close()


class SeedsAndDraws(IterableDataset):
    """Two items per worker: its WorkerInfo.seed and a draw from the global np.random."""

    def __iter__(self):
        info = get_worker_info()
        for _ in range(2):
            yield {"seed": np.int64(info.seed % 1000), "draw": np.float64(np.random.random())}


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_persistent_stream_workers_are_seeded_again_each_epoch_as_a_resume_is(worker_type):
    # WorkerInfo.seed is per worker and per epoch, with persistent workers too; process workers seed
    # np.random from it, so epoch 1 draws what a run resumed at the start of epoch 1 draws.
    def epochs(loader, count):
        out = [[{k: np.array(v).tolist() for k, v in b.items()} for b in loader] for _ in range(count)]
        loader.close()
        return out

    kwargs = dict(batch_size=2, num_workers=2, worker_type=worker_type, persistent_workers=True, seed=3)
    straight = epochs(DataLoader(SeedsAndDraws(), **kwargs), 2)
    resumed = DataLoader(SeedsAndDraws(), **kwargs)
    resumed.set_epoch(1)
    (epoch_1,) = epochs(resumed, 1)
    assert [b["seed"] for b in straight[0]] != [b["seed"] for b in straight[1]]
    if worker_type == "thread":  # (threads share np.random: only the seeds are comparable)
        assert [b["seed"] for b in straight[1]] == [b["seed"] for b in epoch_1]
    else:
        assert straight[1] == epoch_1


def test_set_epoch_reaches_the_stream_without_workers():
    dataset = EpochShuffled(5)
    loader = DataLoader(dataset, batch_size=5)
    loader.set_epoch(3)
    assert ys(loader) == [np.random.default_rng([5, 3]).permutation(5).tolist()] and dataset.epoch == 3


def loader_threads():
    return [t for t in threading.enumerate() if t.name.startswith("audiotrain-data")]


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_leaving_a_stream_epoch_early_stops_its_workers_at_once(worker_type):
    # As for a map-style dataset: the epoch's iterator goes when the loop is left, and its workers with it,
    # without waiting for a cyclic garbage collection (with limit_val_batches, the Trainer leaves every
    # validation of a stream this way).
    loader = DataLoader(Split(100), batch_size=2, num_workers=2, worker_type=worker_type)
    gc.disable()
    try:
        for _ in range(2):
            for k, _batch in enumerate(loader):
                if k == 1:
                    break
            alive = [p for p in mp.active_children() if p.name.startswith("audiotrain-data")]
            assert not alive and eventually(lambda: not loader_threads()), (alive, loader_threads())
    finally:
        gc.enable()


def eventually(condition, timeout=5.0):
    """Whether ``condition()`` holds within ``timeout`` s (thread workers exit after their current task)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# torch's layout where `torch.utils.data.get_worker_info` keeps its answer, and the PyTorch docs' dataset
# that splits its stream by it: enough of torch to run where it is not installed (the parity test below
# runs the same checks on the real one).
TORCH_STUB = {
    "torch/__init__.py": "from torch import utils\n",
    "torch/utils/__init__.py": "from torch.utils import data\n",
    "torch/utils/data/__init__.py": (
        "from torch.utils.data._utils.worker import get_worker_info\n\n\nclass IterableDataset:\n    pass\n"
    ),
    "torch/utils/data/_utils/__init__.py": "from torch.utils.data._utils import worker\n",
    "torch/utils/data/_utils/worker.py": (
        "_worker_info = None\n\n\nclass WorkerInfo:\n    def __init__(self, **kwargs):\n"
        "        self.__dict__.update(kwargs)\n\n\ndef get_worker_info():\n    return _worker_info\n"
    ),
    "torch_docs_stream.py": (
        "import torch.utils.data\n\n\nclass TorchDocsStream(torch.utils.data.IterableDataset):\n"
        "    def __init__(self, n):\n        self.n = n\n\n    def __iter__(self):\n"
        "        info = torch.utils.data.get_worker_info()\n"
        "        if info is None:\n            return iter(range(self.n))\n"
        "        return iter(range(info.id, self.n, info.num_workers))\n"
    ),
}


@pytest.fixture
def torch_not_imported(monkeypatch):
    """Where torch is installed (the parity extra) and an earlier test of this process imported it, the real
    torch hidden from `sys.modules` for the test (monkeypatch puts it back after): the tests of what happens
    before torch's import then hold wherever they run."""
    import sys

    for name in [n for n in sys.modules if n == "torch" or n.startswith("torch.")]:
        monkeypatch.delitem(sys.modules, name)


@pytest.fixture
def torch_stub(tmp_path, monkeypatch, torch_not_imported):
    """A folder on sys.path with the stub of torch and the modules of `TORCH_STUB`, none imported yet."""
    import sys

    for name, text in TORCH_STUB.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    # A module of the same name an earlier test imported (test_torchs_get_worker_info_with_torch's
    # torch_docs_stream, over the real torch) would be taken in place of the stub's, calling a torch that is
    # no longer in sys.modules: the threads' refusal, which watches sys.modules' torch, never came.
    for name in ("torch_docs_stream", "late_torch_stream"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))  # (spawned workers start with this sys.path too)
    yield tmp_path
    for name, module in list(sys.modules.items()):  # only the stub's: a real torch cannot be imported twice
        if str(getattr(module, "__file__", "")).startswith(str(tmp_path)):
            del sys.modules[name]


@pytest.fixture
def torch_docs_stream(torch_stub):
    """The class `TorchDocsStream`, over the stub of torch where torch is not imported yet."""
    import torch_docs_stream

    return torch_docs_stream.TorchDocsStream


def check_torch_get_worker_info(stream_class):
    def items(loader):
        return sorted(int(v) for b in loader for v in np.asarray(b))

    assert items(DataLoader(stream_class(8), batch_size=2)) == list(range(8))
    process = DataLoader(stream_class(8), batch_size=2, num_workers=2, worker_type="process")
    assert items(process) == list(range(8))  # each worker its share: every item once, as in PyTorch
    # torch's answer is one per process: in threads it would be None, and every item came twice.
    with pytest.raises(
        DataLoaderError, match=r"get_worker_info\(\) was called in DataLoader worker \d, a thread"
    ):
        items(DataLoader(stream_class(8), batch_size=2, num_workers=2))


def test_torchs_get_worker_info_answers_in_process_workers_and_is_refused_in_threads(torch_docs_stream):
    check_torch_get_worker_info(torch_docs_stream)


LATE_TORCH_STREAM = """\
class LateTorchStream:
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        from torch.utils.data import get_worker_info  # torch imported here, in the worker, first

        info = get_worker_info()
        return iter(range(self.n) if info is None else range(info.id, self.n, info.num_workers))
"""


def test_torchs_get_worker_info_imported_inside_iter_answers_in_processes_and_is_refused_in_threads(
    torch_stub,
):
    # A stream that imports torch's get_worker_info inside __iter__ found it None in process workers (torch
    # was not imported when the worker set it) and was let through in threads: every item came twice.
    import sys

    (torch_stub / "late_torch_stream.py").write_text(LATE_TORCH_STREAM)
    import late_torch_stream

    assert "torch" not in sys.modules  # (threads share this process's modules: the threads' case first)
    with pytest.raises(
        DataLoaderError, match=r"get_worker_info\(\) was called in DataLoader worker \d, a thread"
    ):
        list(DataLoader(late_torch_stream.LateTorchStream(8), batch_size=2, num_workers=2))
    process = DataLoader(
        late_torch_stream.LateTorchStream(8), batch_size=2, num_workers=2, worker_type="process"
    )
    assert sorted(int(v) for b in process for v in np.asarray(b)) == list(range(8))


def test_a_lone_thread_worker_that_imports_torch_late_is_refused(torch_stub):
    # One worker, so no other thread starts its watch after torch is imported: the refusal comes from the
    # watch the import itself starts (_OnTorchLoad), the only one a thread worker has where torch was not
    # imported.
    import sys

    (torch_stub / "late_torch_stream.py").write_text(LATE_TORCH_STREAM)
    import late_torch_stream

    assert "torch" not in sys.modules
    refused = r"get_worker_info\(\) was called in DataLoader worker 0, a thread"
    with pytest.raises(DataLoaderError, match=refused):
        list(DataLoader(late_torch_stream.LateTorchStream(8), batch_size=2, num_workers=1))


TORCH_INFO_STREAM = """\
import torch.utils.data

from audiotrain.data import get_worker_info

seen_in_worker_init_fn = None


def remember_torchs_worker_id(worker_id):
    global seen_in_worker_init_fn
    info = torch.utils.data.get_worker_info()
    seen_in_worker_init_fn = -1 if info is None else info.id


class TorchInfoStream(torch.utils.data.IterableDataset):
    def __iter__(self):
        theirs, ours = torch.utils.data.get_worker_info(), get_worker_info()
        yield {
            "id": theirs.id,
            "seed_is_ours": int(theirs.seed == ours.seed),
            "id_in_worker_init_fn": seen_in_worker_init_fn,
        }
"""


def test_torchs_get_worker_info_in_process_workers_answers_in_worker_init_fn_and_each_epoch(
    torch_docs_stream, tmp_path
):
    # As in PyTorch, where worker_init_fn is the documented place to split a stream by torch's worker info,
    # and each epoch of persistent workers has its own seed there as in audiotrain.data.get_worker_info().
    (tmp_path / "torch_info_stream.py").write_text(TORCH_INFO_STREAM)  # (the stub's folder: on sys.path)
    import torch_info_stream

    loader = DataLoader(
        torch_info_stream.TorchInfoStream(), batch_size=None, num_workers=2, worker_type="process",
        persistent_workers=True, worker_init_fn=torch_info_stream.remember_torchs_worker_id, seed=3,
    )  # fmt: skip
    epochs = [[{k: int(v) for k, v in b.items()} for b in loader] for _ in range(2)]
    loader.close()
    assert epochs == [[{"id": w, "seed_is_ours": 1, "id_in_worker_init_fn": w} for w in (0, 1)]] * 2


@pytest.mark.parity
def test_torchs_get_worker_info_with_torch(tmp_path, monkeypatch):
    require("torch")
    (tmp_path / "torch_docs_stream.py").write_text(TORCH_STUB["torch_docs_stream.py"])
    monkeypatch.syspath_prepend(str(tmp_path))
    import torch_docs_stream

    check_torch_get_worker_info(torch_docs_stream.TorchDocsStream)


# ------------------------------------------------------------------ iterable datasets: resume


def run_epochs(loader, stop_epoch, stop_batch, start_epoch=0, state=None):
    """Train-like iteration (as the Trainer does it): set_epoch, load a state, iterate; stop at a batch."""
    out = []
    for epoch in range(start_epoch, stop_epoch + 1):
        loader.set_epoch(epoch)
        if state is not None:
            loader.load_state_dict(state)
            state = None
        for batch in loader:
            out.append((epoch, np.array(batch["y"]).tolist(), np.array(batch["x"]).tolist()))
            if epoch == stop_epoch and loader.state_dict()["batches_yielded"] == stop_batch:
                return out
    return out


@pytest.mark.parametrize("num_workers, worker_type", [(0, "thread"), (2, "thread"), (2, "process")])
def test_a_stream_resumes_mid_epoch_exactly(num_workers, worker_type):
    def make():
        return DataLoader(
            EpochShuffled(11), batch_size=2, num_workers=num_workers, worker_type=worker_type,
            cpu_transforms=jitter, seed=4,
        )  # fmt: skip

    straight = run_epochs(make(), stop_epoch=2, stop_batch=3)  # 2.5 epochs (6 batches each)
    first_loader = make()
    first = run_epochs(first_loader, stop_epoch=1, stop_batch=2)
    state = json.loads(json.dumps(first_loader.state_dict()))
    assert state["epoch"] == 1 and state["batches_yielded"] == 2 and state["iterable"] is True
    resumed = run_epochs(make(), stop_epoch=2, stop_batch=3, start_epoch=1, state=state)
    assert first + resumed == straight


def test_a_stream_refuses_to_resume_mid_epoch_with_another_num_workers():
    # Each worker reads its own share: with another count, skipping the batches already trained on would
    # skip other samples (it used to go on silently). At an epoch boundary the count may change.
    first = DataLoader(EpochShuffled(11), batch_size=2, num_workers=2, seed=4)
    run_epochs(first, stop_epoch=0, stop_batch=3)
    state = json.loads(json.dumps(first.state_dict()))
    assert state["num_workers"] == 2
    for num_workers in (0, 3):
        with pytest.raises(
            ValueError, match=r"stream was read by num_workers=2, this loader has num_workers="
        ):
            DataLoader(EpochShuffled(11), batch_size=2, num_workers=num_workers).load_state_dict(state)
    DataLoader(EpochShuffled(11), batch_size=2, num_workers=2).load_state_dict(state)
    whole = DataLoader(EpochShuffled(11), batch_size=2, num_workers=2, seed=4)
    ys(whole)  # the epoch's end
    other = DataLoader(EpochShuffled(11), batch_size=2, num_workers=3)
    other.load_state_dict(whole.state_dict())
    assert other.epoch == 1


def test_a_finished_stream_epoch_resumes_at_the_next_epoch():
    loader = DataLoader(EpochShuffled(5), batch_size=2, seed=0)
    ys(loader)
    state = loader.state_dict()
    assert state["num_batches"] == 3 and state["batches_yielded"] == 3
    resumed = DataLoader(EpochShuffled(5), batch_size=2)
    resumed.load_state_dict(state)
    assert resumed.epoch == 1
    assert sum(ys(resumed), []) == np.random.default_rng([5, 1]).permutation(5).tolist()
    with pytest.raises(ValueError, match="checkpoint has iterable=True, this loader has iterable=False"):
        DataLoader(Batches(5), batch_size=2).load_state_dict(state)


def test_a_stream_position_set_to_the_next_epoch_resumes_that_epoch_not_the_one_after():
    # The Trainer sets the next epoch before iterating it: a checkpoint then has not begun that epoch,
    # though the previous one's stream ended.
    loader = DataLoader(EpochShuffled(5), batch_size=2, seed=0)
    ys(loader)
    loader.set_epoch(1)
    state = loader.state_dict()
    assert (state["epoch"], state["batches_yielded"], state["stream_ended"]) == (1, 0, False)
    resumed = DataLoader(EpochShuffled(5), batch_size=2)
    resumed.load_state_dict(state)
    assert resumed.epoch == 1
    assert sum(ys(resumed), []) == np.random.default_rng([5, 1]).permutation(5).tolist()


# ------------------------------------------------------------------ iterable datasets: errors


class Stuck(IterableDataset):
    """Yields nothing until `release` is set (a thread worker's copy shares the Event)."""

    def __init__(self):
        self.release = threading.Event()

    def __iter__(self):
        self.release.wait(20)
        yield 1


def test_a_stuck_stream_times_out_instead_of_hanging():
    dataset = Stuck()
    loader = DataLoader(dataset, batch_size=1, num_workers=1, timeout=0.3)
    try:
        with pytest.raises(DataLoaderError, match=r"timed out after 0.3 s waiting for batch 0"):
            next(iter(loader))
    finally:
        dataset.release.set()
        loader.close()


class Pulled:
    """The items a stream's workers have pulled (shared by thread workers: copy.copy keeps this object)."""

    def __init__(self):
        self.items = []


class CountPulled(IterableDataset):
    def __init__(self, n):
        self.n, self.pulled = n, Pulled()

    def __iter__(self):
        for i in range(self.n):
            self.pulled.items.append(i)
            yield np.float32(i)


def test_a_streams_workers_read_prefetch_factor_batches_ahead():
    dataset = CountPulled(10)
    it = iter(DataLoader(dataset, batch_size=1, num_workers=1, prefetch_factor=3))
    next(it)  # batches 0, 1 and 2 were asked for
    deadline = time.monotonic() + 30  # (only so that a broken loader cannot hang the test)
    while len(dataset.pulled.items) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert dataset.pulled.items == [0, 1, 2]
    del it


@pytest.mark.parametrize("num_workers, worker_type", [(0, "thread"), (2, "thread"), (2, "process")])
def test_a_stream_batch_that_cannot_be_collated_is_named(num_workers, worker_type):
    loader = DataLoader(RaggedAt4(), batch_size=2, num_workers=num_workers, worker_type=worker_type)
    source = r"the stream \(items 4..5\)" if num_workers == 0 else r"worker 0's stream \(items 4..5\)"
    with pytest.raises(
        DataLoaderError, match=rf"collate_fn \(default_collate\) failed on batch 2 of {source}: Val"
    ) as info:
        list(loader)
    assert info.value.batch_index == (2 if num_workers == 0 else 4)  # in the stream of all workers


@pytest.mark.parametrize("num_workers, worker_type", [(0, "thread"), (1, "thread"), (1, "process")])
def test_a_stream_that_fails_names_the_item_and_the_batch(num_workers, worker_type):
    loader = DataLoader(BrokenAt3(), batch_size=2, num_workers=num_workers, worker_type=worker_type)
    with pytest.raises(
        DataLoaderError, match=r"loading item 3 of .*stream failed in iter\(dataset\): OSError: trunc"
    ) as info:
        list(loader)
    assert info.value.stage == "iter(dataset)" and info.value.batch_index == 1


def test_a_stream_through_threads_needs_a_copyable_dataset():
    class Uncopyable(Count):
        def __copy__(self):
            raise RuntimeError("holds an open connection")

    with pytest.raises(TypeError, match="its own copy.copy of the iterable dataset Uncopyable, which failed"):
        iter(DataLoader(Uncopyable(3), batch_size=2, num_workers=1))


def test_a_sampler_without_len_is_still_refused_with_what_to_do():
    with pytest.raises(TypeError, match="sampler must have __len__ .* pass an iterable dataset"):
        DataLoader(Batches(3), sampler=iter([0, 1]))


def test_get_worker_info_in_map_style_thread_workers():
    seen = []

    def record(item):
        info = get_worker_info()
        seen.append((threading.current_thread().name, info.id, info.num_workers))
        return item

    list(DataLoader(Batches(4), batch_size=None, num_workers=2, cpu_transforms=record))
    assert sorted({(w, n) for _, w, n in seen}) == [(0, 2), (1, 2)]


# ------------------------------------------------------------------ the Trainer over a stream


class TinyStream(IterableDataset):
    """48 samples for tests/tasks.TinyClassifier, shuffled per epoch (so resumable), no __len__."""

    def __init__(self):
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(48, 8)).astype(np.float32)
        self.y = ((self.x[:, 0] > 0).astype(np.int32) + (self.x[:, 1] > 0.5)).astype(np.int32)
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        for i in np.random.default_rng([1, self.epoch]).permutation(48):
            yield self.x[i], self.y[i]


def test_the_trainer_resumes_a_stream_mid_epoch_exactly(tmp_path):
    from audiotrain import Trainer, seed_everything

    from tasks import TinyClassifier, weights

    def fit(root, max_steps, ckpt_path=None):
        seed_everything(0)
        trainer = Trainer(max_steps=max_steps, default_root_dir=root, enable_progress_bar=False, logger=False)
        module = TinyClassifier()
        trainer.fit(module, DataLoader(TinyStream(), batch_size=16), ckpt_path=ckpt_path)
        return trainer, module

    straight = fit(tmp_path / "a", 8)  # 3 batches an epoch: 2 epochs and 2 steps
    fit(tmp_path / "b", 4)
    resumed = fit(tmp_path / "b", 8, ckpt_path=tmp_path / "b" / "checkpoints" / "last")
    assert straight[0].global_step == resumed[0].global_step == 8
    for name, value in weights(straight[1]).items():
        np.testing.assert_array_equal(value, weights(resumed[1])[name], err_msg=name)


class EstimatedStream(TinyStream):
    """TinyStream's first 30 samples, split among workers with get_worker_info, with a `__len__` (an
    estimate, as the README allows) of `estimate` samples."""

    def __init__(self, estimate):
        super().__init__()
        self.estimate = estimate

    def __len__(self):
        return self.estimate

    def __iter__(self):
        info = get_worker_info()
        first, step = (0, 1) if info is None else (info.id, info.num_workers)
        order = np.random.default_rng([1, self.epoch]).permutation(30)
        for i in order[first::step]:
            yield self.x[i], self.y[i]


@pytest.mark.parametrize(
    "estimate, stop_after, accumulate, num_workers",
    [
        (20, 5, 1, 0),  # the estimate says 5 batches, the stream has 8: stopped at the estimate
        (30, 8, 1, 3),  # exact len, but each of 3 workers' streams ends in a short batch: 9 batches
        (30, 8, 3, 0),  # stopped at the stream's last batch, inside an accumulation window (2 of 3)
    ],
)
def test_a_stream_resumed_at_or_past_its_estimated_len_trains_the_rest_of_the_epoch(
    tmp_path, estimate, stop_after, accumulate, num_workers
):
    from audiotrain import Trainer, seed_everything
    from audiotrain.train.callbacks import Callback

    from tasks import TinyClassifier, weights

    class CtrlC(Callback):
        def __init__(self):
            self.batches = 0

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.batches += 1
            if self.batches == stop_after:
                raise KeyboardInterrupt

    def fit(root, callbacks=(), ckpt_path=None):
        seed_everything(0)
        trainer = Trainer(
            max_epochs=2, default_root_dir=root, enable_progress_bar=False, logger=False,
            accumulate_grad_batches=accumulate, callbacks=list(callbacks),
        )  # fmt: skip
        module = TinyClassifier()
        loader = DataLoader(EstimatedStream(estimate), batch_size=4, num_workers=num_workers)
        trainer.fit(module, loader, ckpt_path=ckpt_path)
        return trainer, module

    straight = fit(tmp_path / "a")
    stopped = fit(tmp_path / "b", callbacks=[CtrlC()])[0]
    assert stopped.interrupted and stopped.global_step < straight[0].global_step
    resumed = fit(tmp_path / "b", ckpt_path=stopped.interrupted_checkpoint)
    assert resumed[0].history["step"] == straight[0].history["step"]
    assert resumed[0].global_step == straight[0].global_step
    for name, value in weights(straight[1]).items():
        np.testing.assert_array_equal(value, weights(resumed[1])[name], err_msg=name)


class ProfilerSeen(IterableDataset):
    """Yields 1 where its first item is read under a profile hook (`sys.getprofile()`), else 0."""

    def __iter__(self):
        import sys

        yield {"y": int(sys.getprofile() is not None)}


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_a_workers_first_batch_runs_under_no_profile_hook_where_torch_is_not_imported(
    worker_type, torch_not_imported
):
    # Since 0d05b4b2 every worker (torch imported or not) loaded each epoch's first batch under a profile
    # hook watching for torch's get_worker_info: a Python call took about twice as long there. Torch's
    # import is watched instead, which costs a call nothing (a thread watches the calls once torch loads).
    import sys

    assert "torch" not in sys.modules
    loader = DataLoader(ProfilerSeen(), batch_size=1, num_workers=2, worker_type=worker_type)
    for epoch in range(2):
        assert [int(np.asarray(b["y"])[0]) for b in loader] == [0, 0], epoch


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_a_loader_run_under_cprofile_reads_its_stream(worker_type):
    # Under `python -m cProfile` (a C profiler, which forked process workers inherit), every process worker
    # died at its start with "TypeError: 'Profile' object is not callable": the watch for torch's
    # get_worker_info chained the profiler it found as a Python function.
    import cProfile

    context = {"multiprocessing_context": "fork"} if worker_type == "process" else {}
    loader = DataLoader(CountLen(8), batch_size=2, num_workers=2, worker_type=worker_type, **context)
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        read = sorted(int(v) for b in loader for v in np.asarray(b["y"]))
    finally:
        profiler.disable()
    assert read == sorted(list(range(8)) * 2)  # (each worker yields all of it: no split, as in PyTorch)
