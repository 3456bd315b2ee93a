"""The DataLoader under data parallel: each rank reads its own shard of the epoch's order."""

import json

from audiotrain.data import DataLoader, get_worker_info
from audiotrain.data.sampler import epoch_order, shard_length, shard_order, shard_padding
from audiotrain.distributed import collectives

import numpy as np
import pytest

from tests.distributed import FakeGroup, describe, run_ranks


class Samples:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.int64(i)


def rank_batches(monkeypatch, rank, world, epoch=0, **kwargs):
    monkeypatch.setattr(collectives, "_GROUP", FakeGroup(rank, world))
    loader = DataLoader(Samples(kwargs.pop("n", 11)), **{"batch_size": 2, "seed": 3, **kwargs})
    loader.set_epoch(epoch)
    return [np.array(b).tolist() for b in loader], len(loader)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 10, 11])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_shards_are_disjoint_cover_the_order_and_have_equal_lengths(n, world):
    order = epoch_order(n, shuffle=True, seed=5, epoch=2)
    for drop_last in (False, True):
        shards = [shard_order(order, rank=r, world_size=world, drop_last=drop_last) for r in range(world)]
        assert {len(s) for s in shards} == {shard_length(n, world, drop_last)}
        flat = np.concatenate(shards)
        if drop_last:  # no sample twice; only the last n % world dropped
            assert len(set(flat.tolist())) == len(flat)
            assert set(flat.tolist()) == set(order[: n - n % world].tolist())
        else:  # every sample, and the padding repeats the order from its start
            assert set(flat.tolist()) == set(order.tolist())
            assert len(flat) == -(-n // world) * world


def test_padding_repeats_the_order_from_its_start():
    order = np.array([7, 1, 4, 0, 9])
    assert shard_order(order, rank=0, world_size=2, drop_last=False).tolist() == [7, 4, 9]
    assert shard_order(order, rank=1, world_size=2, drop_last=False).tolist() == [1, 0, 7]
    assert shard_order(order, rank=1, world_size=2, drop_last=True).tolist() == [1, 0]
    with pytest.raises(ValueError, match="rank must be in 0 .. world_size - 1"):
        shard_order(order, rank=2, world_size=2, drop_last=False)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 11])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shard_padding_names_the_repeats_so_the_rest_is_the_order_once(n, world):
    """A loss over the whole job's rows (CLAP's contrastive batch) leaves the repeats out with this mask."""
    order = epoch_order(n, shuffle=True, seed=5, epoch=1)
    shards = [shard_order(order, rank=r, world_size=world, drop_last=False) for r in range(world)]
    masks = [shard_padding(n, rank=r, world_size=world) for r in range(world)]
    assert [m.shape for m in masks] == [s.shape for s in shards]
    real = np.concatenate([s[~m] for s, m in zip(shards, masks)])
    assert sorted(real.tolist()) == sorted(order.tolist())  # each sample once
    assert sum(int(m.sum()) for m in masks) == -(-n // world) * world - n
    assert shard_padding(5, rank=1, world_size=2).tolist() == [False, False, True]  # [1, 0, 7] above


@pytest.mark.parametrize("drop_last", [False, True])
def test_ranks_read_disjoint_shards_with_equal_batches(monkeypatch, drop_last):
    ranks = [rank_batches(monkeypatch, r, 2, shuffle=True, drop_last=drop_last) for r in range(2)]
    (b0, len0), (b1, len1) = ranks
    assert len0 == len1 == len(b0) == len(b1) == (2 if drop_last else 3)
    assert [len(b) for b in b0] == [len(b) for b in b1]
    seen0, seen1 = sum(b0, []), sum(b1, [])
    if drop_last:  # 11 samples, global batch 4: two full steps, no sample twice
        assert len(set(seen0 + seen1)) == len(seen0 + seen1) == 8
    else:  # padded to 12: every sample, one of them twice
        assert set(seen0 + seen1) == set(range(11)) and len(seen0 + seen1) == 12


def test_a_step_of_all_ranks_holds_the_batch_of_one_process_with_a_larger_batch(monkeypatch):
    per_rank = [rank_batches(monkeypatch, r, 2, n=12, shuffle=True, batch_size=3)[0] for r in range(2)]
    single, _ = rank_batches(monkeypatch, 0, 1, n=12, shuffle=True, batch_size=6)
    for step, batch in enumerate(single):
        assert sorted(per_rank[0][step] + per_rank[1][step]) == sorted(batch)


def test_the_order_is_fixed_by_seed_and_epoch(monkeypatch):
    assert rank_batches(monkeypatch, 1, 2, shuffle=True) == rank_batches(monkeypatch, 1, 2, shuffle=True)
    assert rank_batches(monkeypatch, 1, 2, shuffle=True, epoch=1) != rank_batches(
        monkeypatch, 1, 2, shuffle=True
    )
    assert rank_batches(monkeypatch, 1, 2, shuffle=True, seed=4) != rank_batches(
        monkeypatch, 1, 2, shuffle=True
    )


def test_distributed_false_reads_everything_and_user_samplers_are_left_alone(monkeypatch):
    batches, length = rank_batches(monkeypatch, 1, 2, distributed=False)
    assert sum(batches, []) == list(range(11)) and length == 6
    monkeypatch.setattr(collectives, "_GROUP", FakeGroup(1, 2))
    loader = DataLoader(Samples(5), batch_size=2, sampler=[4, 3, 2, 1, 0])
    assert [np.array(b).tolist() for b in loader] == [[4, 3], [2, 1], [0]]
    with pytest.raises(ValueError, match="distributed=True shards the loader's own order"):
        DataLoader(Samples(5), sampler=[0, 1], distributed=True)
    with pytest.raises(TypeError, match="distributed must be None, True or False"):
        DataLoader(Samples(5), distributed="yes")


def test_mid_epoch_resume_is_exact_on_each_rank(monkeypatch):
    monkeypatch.setattr(collectives, "_GROUP", FakeGroup(1, 2))
    full = [np.array(b).tolist() for b in DataLoader(Samples(11), batch_size=2, shuffle=True, seed=9)]
    loader = DataLoader(Samples(11), batch_size=2, shuffle=True, seed=9)
    it = iter(loader)
    head = [np.array(next(it)).tolist() for _ in range(2)]
    state = json.loads(json.dumps(loader.state_dict()))
    assert state["world_size"] == 2 and state["num_batches"] == 3
    resumed = DataLoader(Samples(11), batch_size=2, shuffle=True)
    resumed.load_state_dict(state)
    assert head + [np.array(b).tolist() for b in resumed] == full


def test_resume_under_another_world_size(monkeypatch):
    monkeypatch.setattr(collectives, "_GROUP", FakeGroup(0, 2))
    loader = DataLoader(Samples(11), batch_size=2, shuffle=True, seed=9)
    it = iter(loader)
    next(it)
    mid = loader.state_dict()
    for _ in it:
        pass
    end = loader.state_dict()
    monkeypatch.setattr(collectives, "_GROUP", FakeGroup(0, 1))
    single = DataLoader(Samples(11), batch_size=2, shuffle=True)
    with pytest.raises(ValueError, match="by 2 processes and this run has 1 process"):
        single.load_state_dict(mid)
    single.load_state_dict(end)  # at an epoch boundary: the next epoch, whole
    assert single.epoch == 1 and len(list(single)) == 6


def test_a_position_at_an_epochs_start_resumes_under_another_world_size(monkeypatch):
    # Saved before the epoch's first batch (set_epoch, then a checkpoint): nothing to continue, so it is an
    # epoch boundary too, and the whole epoch runs in the new world size.
    monkeypatch.setattr(collectives, "_GROUP", FakeGroup(0, 2))
    loader = DataLoader(Samples(11), batch_size=2, shuffle=True, seed=9)
    loader.set_epoch(1)
    start = loader.state_dict()
    assert (start["epoch"], start["batches_yielded"], start["world_size"]) == (1, 0, 2)
    batches, _ = rank_batches(monkeypatch, 0, 1, epoch=1, shuffle=True, seed=9)
    single = DataLoader(Samples(11), batch_size=2, shuffle=True)
    single.load_state_dict(start)
    assert single.epoch == 1 and [np.array(b).tolist() for b in single] == batches


def test_two_ranks_read_disjoint_shards_of_a_shared_drawn_order():
    results = run_ranks(
        """
        import json
        import audiotrain
        import numpy as np
        from audiotrain.data import DataLoader

        class Samples:
            def __len__(self):
                return 9
            def __getitem__(self, i):
                return np.int64(i)

        loader = DataLoader(Samples(), batch_size=2, shuffle=True)  # no seed: rank 0 draws it
        print(json.dumps({"len": len(loader), "seed": loader.seed, "batches": [np.array(b).tolist() for b in loader]}))
        """,
        timeout=120,
    )
    assert all(r.returncode == 0 for r in results), describe(results)
    out = [json.loads(r.lines()[-1]) for r in results]
    assert out[0]["seed"] == out[1]["seed"]
    assert out[0]["len"] == out[1]["len"] == len(out[0]["batches"]) == 3
    seen = [sum(o["batches"], []) for o in out]
    assert len(seen[0]) == len(seen[1]) == 5
    assert set(seen[0]) | set(seen[1]) == set(range(9))
    assert len(set(seen[0]) & set(seen[1])) == 1  # the one padded sample: 9 samples over 2 ranks


# ------------------------------------------------------------------ batch_size=None and iterable datasets


class Stream:
    """An iterable dataset of the ints 0 .. n-1 (the same stream on every rank). The loaders below get a
    seed: one drawn on first use would be sent from rank 0, and these ranks are faked."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return (np.int64(i) for i in range(self.n))


class SizedStream(Stream):
    def __len__(self):
        return self.n


class WorkerShares(Stream):
    """Worker k of W reads k, k + W, ... (get_worker_info), as a stream of shards would."""

    def __iter__(self):
        info = get_worker_info()
        return (np.int64(i) for i in range(info.id, self.n, info.num_workers))


def test_without_automatic_batching_each_rank_reads_its_shard_of_the_samples(monkeypatch):
    order = epoch_order(11, shuffle=True, seed=3, epoch=0)
    for rank in range(2):
        batches, length = rank_batches(monkeypatch, rank, 2, batch_size=None, shuffle=True)
        assert batches == shard_order(order, rank=rank, world_size=2, drop_last=False).tolist()
        assert length == len(batches) == 6


@pytest.mark.parametrize("n", [0, 1, 3, 5, 6, 7, 12])
@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("drop_last", [False, True])
def test_a_stream_is_sharded_by_batch_and_every_rank_gets_as_many(monkeypatch, n, world, drop_last):
    """Rank r keeps batches r, r+W, ... of the whole stream, cut (drop_last) or padded from the stream's
    start as `shard_order` cuts or pads samples; len(loader) says how many."""
    stream = [list(range(i, min(i + 2, n))) for i in range(0, n, 2)]
    if drop_last and stream and len(stream[-1]) < 2:
        stream.pop()
    per_rank = []
    for rank in range(world):
        monkeypatch.setattr(collectives, "_GROUP", FakeGroup(rank, world))
        loader = DataLoader(SizedStream(n), batch_size=2, drop_last=drop_last, seed=0)
        per_rank.append([np.array(b).tolist() for b in loader])
        assert len(loader) == len(per_rank[-1])
    positions = np.arange(len(stream))
    expected = [
        [stream[g] for g in shard_order(positions, rank=r, world_size=world, drop_last=drop_last)]
        for r in range(world)
    ]
    assert per_rank == expected
    assert len({len(batches) for batches in per_rank}) == 1


def test_a_stream_resumes_mid_epoch_on_each_rank(monkeypatch):
    monkeypatch.setattr(collectives, "_GROUP", FakeGroup(1, 2))
    full = [np.array(b).tolist() for b in DataLoader(WorkerShares(13), batch_size=2, num_workers=2, seed=0)]
    # The stream: [0, 2] [1, 3] [4, 6] [5, 7] [8, 10] [9, 11] [12] (the workers in turn); rank 1 takes every
    # second batch and, with 7 batches for 2 ranks, repeats the stream's first batch at the end.
    assert full == [[1, 3], [5, 7], [9, 11], [0, 2]]
    loader = DataLoader(WorkerShares(13), batch_size=2, num_workers=2, seed=0)
    it = iter(loader)
    head = [np.array(next(it)).tolist() for _ in range(2)]
    state = json.loads(json.dumps(loader.state_dict()))
    assert state["world_size"] == 2 and state["batches_yielded"] == 2 and state["num_batches"] is None
    resumed = DataLoader(WorkerShares(13), batch_size=2, num_workers=2, seed=0)
    resumed.load_state_dict(state)
    assert head + [np.array(b).tolist() for b in resumed] == full
    monkeypatch.setattr(collectives, "_GROUP", FakeGroup(0, 1))
    with pytest.raises(ValueError, match="by 2 processes and this run has 1 process"):
        DataLoader(Stream(11), batch_size=2, seed=0).load_state_dict(state)


def test_a_stream_that_splits_itself_reads_everything_with_distributed_false(monkeypatch):
    monkeypatch.setattr(collectives, "_GROUP", FakeGroup(1, 2))
    loader = DataLoader(SizedStream(5), batch_size=2, distributed=False, seed=0)
    assert [np.array(b).tolist() for b in loader] == [[0, 1], [2, 3], [4]] and len(loader) == 3


def test_evaluation_shards_repeat_no_sample_and_name_their_padding_batch(monkeypatch):
    # pad_shards=False (what the Trainer sets on its validation and test loaders): the ranks still run as
    # many batches, but no sample is read twice; a rank left a batch short gets one of padding alone.
    for n, padding in ((11, [set(), set()]), (9, [set(), {2}])):
        seen, lengths = [], set()
        for r in range(2):
            monkeypatch.setattr(collectives, "_GROUP", FakeGroup(r, 2))
            loader = DataLoader(Samples(n), batch_size=2, shuffle=True, seed=3, pad_shards=False)
            batches = [np.array(b).tolist() for b in loader]
            assert loader.padding_batches == padding[r] and len(batches) == len(loader)
            lengths.add(len(batches))
            seen += sum((b for i, b in enumerate(batches) if i not in padding[r]), [])
        assert len(lengths) == 1 and sorted(seen) == list(range(n)), n


@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_streams_padding_batch_is_named_for_evaluation(monkeypatch, num_workers):
    # 5 samples in batches of 2 make 3 batches (with 2 workers: [0, 2] [1, 3] [4]): rank 1 is a batch
    # short and repeats the stream's first.
    # With pad_shards=False (the Trainer's evaluation loaders) `padding_batches` names it as it comes, so
    # validation weighs it 0 and its means are one process's; in training it counts as before.
    for pad_shards, named in ((False, [[False, False], [False, True]]), (None, [[False, False]] * 2)):
        seen = []
        for r in range(2):
            monkeypatch.setattr(collectives, "_GROUP", FakeGroup(r, 2))
            stream = WorkerShares(5) if num_workers else Stream(5)
            loader = DataLoader(stream, batch_size=2, seed=0, pad_shards=pad_shards, num_workers=num_workers)
            batches = [(np.array(b).tolist(), i in loader.padding_batches) for i, b in enumerate(loader)]
            assert [padding for _, padding in batches] == named[r]
            seen += sum((b for b, padding in batches if not padding), [])
        repeated = [0, 2] if num_workers else [0, 1]
        assert sorted(seen) == sorted([0, 1, 2, 3, 4] + ([] if pad_shards is False else repeated))


class Draws:
    """Each sample is an augmentation draw: batch_rng's and, in process workers, np.random's."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        from audiotrain.data import batch_rng

        return np.array([batch_rng().random(), np.random.random()])


def rank_draws(monkeypatch, rank, world, **kwargs):
    monkeypatch.setattr(collectives, "_GROUP", FakeGroup(rank, world))
    loader = DataLoader(Draws(), batch_size=2, seed=3, **kwargs)
    return np.concatenate([np.array(b) for b in loader])


@pytest.mark.parametrize("workers", [{}, {"num_workers": 2, "worker_type": "process"}])
def test_ranks_draw_their_own_augmentations_and_rank_zero_draws_what_one_process_does(monkeypatch, workers):
    # One seed on every rank gave each rank's different samples the same augmentations (Lightning mixes
    # the rank into worker seeds for this); rank 0 keeps one process's draws.
    single, rank0, rank1 = (rank_draws(monkeypatch, r, w, **workers) for r, w in [(0, 1), (0, 2), (1, 2)])
    assert np.array_equal(rank0[:, 0], single[: len(rank0), 0])
    assert not np.allclose(rank0[:, 0], rank1[:, 0])
    if workers:  # np.random is seeded per worker in process workers only
        assert not np.allclose(rank0[:, 1], rank1[:, 1])
    columns = slice(None) if workers else slice(0, 1)  # (np.random in the main thread is the user's)
    assert np.array_equal(rank1[:, columns], rank_draws(monkeypatch, 1, 2, **workers)[:, columns])


# 2-rank jobs and signal timing: with -n, no other test runs beside these (tests/conftest.py).
pytestmark = pytest.mark.serial
