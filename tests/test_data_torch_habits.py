"""A PyTorch user's DataLoader habits that went wrong here: streams whose `len` is an estimate, torch's
`seed_worker` idiom in thread workers, a shuffle buffer kept on the dataset, numpy strings, and torch
tensors out of a user's collate_fn."""

import warnings

import audiotrain  # noqa: F401  (before mlx)
from audiotrain import DataLoader, IterableDataset, Trainer, TrainModule, get_worker_info

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from reference import require


class SplitStream(IterableDataset):
    """`n` samples, each worker reading every num_workers-th (the loader docstring's split), with a length:
    with workers each one's stream ends in its own short batch, so `len(loader)` is an estimate."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __iter__(self):
        info = get_worker_info()
        start, step = (info.id, info.num_workers) if info is not None else (0, 1)
        for i in range(start, self.n, step):
            yield np.array([float(i)], np.float32)


class Seen(TrainModule):
    def __init__(self):
        super().__init__()
        self.w = nn.Linear(1, 1)
        object.__setattr__(self, "seen", [])  # (a plain attribute: a list would join the parameter tree)

    def training_step(self, batch, batch_idx):
        return mx.mean(self.w(batch) ** 2)

    def validation_step(self, batch, batch_idx):
        return mx.mean(self.w(batch) ** 2)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.seen.extend(np.array(batch)[:, 0].astype(int).tolist())

    def on_validation_batch_end(self, outputs, batch, batch_idx):
        self.seen.extend(np.array(batch)[:, 0].astype(int).tolist())

    def configure_optimizers(self):
        return optim.SGD(learning_rate=0.0)


def quiet(tmp_path, **flags):
    return Trainer(
        enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
        num_sanity_val_steps=0, default_root_dir=tmp_path, **flags,
    )  # fmt: skip


def test_a_stream_trains_and_validates_until_it_ends_not_at_its_estimated_length(tmp_path):
    """10 samples in batches of 4 over 2 workers: [0,2,4,6], [1,3,5,7], [8], [9], where len(loader) says 3.
    The Trainer stopped at 3 batches and skipped sample 9 (and sample 7 in validation) every epoch."""
    loader = DataLoader(SplitStream(10), batch_size=4, num_workers=2)
    assert len(loader) == 3
    module = Seen()
    trainer = quiet(tmp_path, max_epochs=1, log_every_n_steps=1)
    trainer.fit(module, loader)
    assert sorted(module.seen) == list(range(10)) and trainer.global_step == 4
    module.seen.clear()
    trainer.validate(module, DataLoader(SplitStream(8), batch_size=2, num_workers=3))
    assert sorted(module.seen) == list(range(8))
    # A limit still ends the epoch where it says
    limited = quiet(tmp_path / "limited", max_epochs=1, limit_train_batches=2)
    limited.fit(Seen(), DataLoader(SplitStream(10), batch_size=4, num_workers=2))
    assert limited.global_step == 2


class Noisy:
    """A map-style dataset drawing augmentation from numpy's global generator."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return np.float32(np.random.rand())


def seed_worker(worker_id):  # torch's Reproducibility notes, with a fixed "initial seed"
    np.random.seed(1234)


def test_seeding_the_global_generator_in_thread_workers_says_it_repeats(monkeypatch):
    import audiotrain.data.workers as workers

    # Said once a process: as if no test before this one in the process had a worker_init_fn seed them.
    monkeypatch.setattr(workers, "_said_thread_seeding", False)
    monkeypatch.setattr(workers, "_states_after_thread_init", set())
    # And from a state other than seed_worker's: a test before this one in the process may have left numpy's
    # generator seeded with 1234 and not drawn since, so that the first epoch's seeding changed nothing (CI
    # failed so, in a worker process that ran another test first).
    np.random.seed(4321)
    loader = DataLoader(Noisy(), batch_size=2, num_workers=2, worker_init_fn=seed_worker)
    # Said at the workers' second start: the second epoch (no thread draws while a worker_init_fn still runs).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            list(loader)
    said = [str(w.message) for w in caught if "worker_init_fn (seed_worker)" in str(w.message)]
    assert len(said) == 1 and "worker_type='process'" in said[0] and "batch_rng()" in said[0]


def test_no_thread_worker_loads_while_another_s_worker_init_fn_runs():
    """Worker 1 loaded (and drew from numpy's shared generator) while worker 0's worker_init_fn was still
    running: the seeding warning above, which reads the generators as a worker_init_fn returns, then read
    worker 1's draws and stayed silent (7 runs in 200 of 2 epochs; CI missed it once). Now every worker's
    worker_init_fn has run before a thread worker loads a batch."""
    import threading

    in_init, loaded_during_init, worker_1_ready, loaded = set(), [], threading.Event(), threading.Event()

    def slow_init_in_worker_0(worker_id):
        in_init.add(worker_id)
        if worker_id == 0:
            worker_1_ready.wait(10)
            loaded.wait(1)  # (a load that the loader would let worker 1 start comes meanwhile)
        else:
            worker_1_ready.set()
        in_init.discard(worker_id)

    class Records:
        def __len__(self):
            return 4

        def __getitem__(self, i):
            loaded_during_init.append(sorted(in_init))
            loaded.set()
            return np.float32(i)

    loader = DataLoader(Records(), batch_size=2, num_workers=2, worker_init_fn=slow_init_in_worker_0)
    assert sorted(float(x) for batch in loader for x in np.asarray(batch)) == [0, 1, 2, 3]
    assert loaded_during_init == [[], [], [], []]


class Buffered(IterableDataset):
    """Keeps its shuffle buffer on self, filled and cleared in __iter__ (fine in torch's workers)."""

    def __init__(self, n):
        self.n, self.buf = n, []

    def __iter__(self):
        info = get_worker_info()
        self.buf.clear()
        for i in range(info.id if info else 0, self.n, info.num_workers if info else 1):
            self.buf.append(i)
            if len(self.buf) == 3:
                yield from self.buf
                self.buf.clear()
        yield from self.buf


def test_thread_workers_do_not_share_a_buffer_kept_on_the_dataset():
    loader = DataLoader(Buffered(20), batch_size=2, num_workers=3)
    got = sorted(int(x) for batch in loader for x in np.array(batch))
    assert got == list(range(20))


def test_numpy_strings_collate_to_a_list_of_strings_as_str_does():
    labels = np.array(["kick", "snare", "hat"])
    loader = DataLoader([(np.float32(i), labels[i]) for i in range(3)], batch_size=3)
    (x, names) = next(iter(loader))
    assert names == ["kick", "snare", "hat"] and all(isinstance(n, str) for n in names)


@pytest.mark.parity
def test_a_collate_fn_that_returns_torch_tensors_gives_mlx_batches():
    """pad_sequence in a user's collate_fn: the batch's leaves were torch tensors, and fit refused them
    telling the user to use audiotrain.DataLoader, which they were."""
    torch = require("torch")
    from torch.nn.utils.rnn import pad_sequence

    clips = [torch.ones(n) * n for n in (2, 3, 1, 4)]

    def pad(items):
        return pad_sequence(items, batch_first=True), torch.tensor([len(x) for x in items])

    x, lengths = next(iter(DataLoader(clips, batch_size=2, collate_fn=pad)))
    assert isinstance(x, mx.array) and x.shape == (2, 3) and lengths.tolist() == [2, 3]
    bf16 = next(iter(DataLoader([torch.ones(2, dtype=torch.bfloat16)] * 2, batch_size=2)))
    grad = next(iter(DataLoader([torch.ones(2, requires_grad=True)] * 2, batch_size=2)))
    assert bf16.shape == grad.shape == (2, 2)


def test_sampler_and_batch_sampler_are_there_without_being_passed_as_in_torch():
    # torch users read len(loader.sampler) for the samples an epoch and call loader.sampler.set_epoch (a
    # DistributedSampler's habit); both were None here unless passed.
    data = list(range(10))
    plain = DataLoader(data, batch_size=4)
    assert len(plain.sampler) == 10 and list(plain.sampler) == data
    assert len(plain.batch_sampler) == 3 and list(plain.batch_sampler) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert (plain.batch_sampler.batch_size, plain.batch_sampler.drop_last) == (4, False)

    shuffled = DataLoader(data, batch_size=4, shuffle=True, seed=3, drop_last=True)
    assert len(shuffled.sampler) == 8 and len(shuffled.batch_sampler) == len(shuffled) == 2
    shuffled.sampler.set_epoch(2)
    assert shuffled.epoch == 2
    order = list(shuffled.sampler)
    assert [i for batch in shuffled.batch_sampler for i in batch] == order
    assert [int(i) for batch in shuffled for i in np.asarray(batch)] == order  # the order the loader gives
    assert sorted(order) != order and set(order) <= set(data)
    assert shuffled.batch_sampler.drop_last is True
    shuffled.batch_sampler.set_epoch(4)  # (torch's BatchSampler users call it there too)
    assert shuffled.epoch == 4

    unseeded = DataLoader(data, batch_size=4, shuffle=True)
    assert len(unseeded.sampler) == 10 and unseeded.seed is None  # (a length draws no seed)
    order = list(unseeded.sampler)  # (draws the seed, as iterating the loader would, and keeps it)
    assert [int(i) for batch in unseeded for i in np.asarray(batch)] == order
    assert DataLoader(data, batch_size=None).batch_sampler is None  # (no automatic batching, as in torch)

    mine = [9, 8, 7]
    given = DataLoader(data, batch_size=2, sampler=mine)
    assert given.sampler is mine and list(given.batch_sampler) == [[9, 8], [7]]
    assert DataLoader(SplitStream(4), batch_size=2).sampler is None  # (a stream has no indices)


def test_every_argument_of_torchs_loader_reads_back_as_an_attribute():
    # Code that builds a second loader from the first's attributes (as Lightning re-creates loaders) met an
    # AttributeError for `generator` and `in_order`, which torch's DataLoader keeps as it was given.
    generator = np.random.default_rng(0)
    loader = DataLoader(list(range(4)), batch_size=2, shuffle=True, generator=generator, num_workers=1)
    again = DataLoader(
        loader.dataset, batch_size=loader.batch_size, shuffle=True, num_workers=loader.num_workers,
        generator=loader.generator, in_order=loader.in_order, pin_memory=loader.pin_memory,
        timeout=loader.timeout, worker_init_fn=loader.worker_init_fn, prefetch_factor=loader.prefetch_factor,
        persistent_workers=loader.persistent_workers, collate_fn=loader.collate_fn,
        drop_last=loader.drop_last,
    )  # fmt: skip
    assert loader.generator is generator and again.generator is generator and again.in_order is True


class EpochSeededSampler:
    """As torch's DistributedSampler (one replica): the order of epoch `epoch`, set by set_epoch."""

    def __init__(self, n):
        self.n, self.epoch = n, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.n

    def __iter__(self):
        return iter(np.random.default_rng(self.epoch).permutation(self.n).tolist())


def test_a_sampler_set_epoch_called_by_the_user_chooses_the_epoch_as_in_torch():
    # torch code resumed at epoch 5 calls sampler.set_epoch(epoch) before each epoch; the loader then set
    # the sampler's epoch again with its own count (0, 1, ...), giving epoch 0's order where 5's was asked.
    def order(epoch):
        return np.random.default_rng(epoch).permutation(6).tolist()

    sampler = EpochSeededSampler(6)
    loader = DataLoader(list(range(6)), batch_size=6, sampler=sampler)
    seen = []
    for epoch in (5, 6):
        sampler.set_epoch(epoch)
        seen += [np.asarray(b).tolist() for b in loader]
    assert seen == [order(5), order(6)] and loader.epoch == 6
    assert [np.asarray(b).tolist() for b in loader] == [order(7)]  # (uncalled, the loader counts on)
    loader.set_epoch(2)  # (the loader's own set_epoch still chooses too)
    assert [np.asarray(b).tolist() for b in loader] == [order(2)] and sampler.epoch == 2


class EpochCrops:
    """Draws its items from the epoch `set_epoch` gives (a ChordSongDataset's windows and pitch shifts)."""

    def __init__(self):
        self.epoch = 0

    def __len__(self):
        return 6

    def __getitem__(self, i):
        return np.random.default_rng([self.epoch, i]).random(3).astype(np.float32)

    def set_epoch(self, epoch):
        self.epoch = epoch


@pytest.mark.parity
@pytest.mark.parametrize("num_workers, worker_type", [(0, "thread"), (2, "process")])
def test_a_dataset_in_torchs_subset_or_concat_dataset_gets_new_draws_each_epoch(num_workers, worker_type):
    # torch's Subset and ConcatDataset have no set_epoch: the loader never told the dataset inside them the
    # epoch, so every epoch drew the same windows, pitch shifts and EQ curves, with nothing said.
    torch_data = require("torch").utils.data
    for wrapped in (torch_data.Subset(EpochCrops(), [0, 2, 4]), torch_data.ConcatDataset([EpochCrops()] * 2)):
        loader = DataLoader(wrapped, batch_size=3, num_workers=num_workers, worker_type=worker_type)
        epochs = [np.concatenate([np.array(b) for b in loader]) for _ in range(2)]
        assert not np.array_equal(*epochs), type(wrapped).__name__
        first = wrapped.dataset if hasattr(wrapped, "dataset") else wrapped.datasets[0]
        expected = [first[i] for i in ([0, 2, 4] if hasattr(wrapped, "dataset") else range(3))]
        np.testing.assert_array_equal(epochs[1][:3], expected)  # epoch 1's draws
        loader.close()


class ReshufflingSongs:
    """A user's dataset whose set_epoch draws the next order of its songs from its own generator (one draw a
    call), as a researcher's curriculum might: called twice an epoch, it skips an order."""

    def __init__(self):
        self.rng, self.epochs = np.random.default_rng(0), []

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return np.float32(i)

    def set_epoch(self, epoch):
        self.epochs.append(epoch)
        self.order = self.rng.permutation(4)


class SongView:
    """A user's view of one song, holding the collection it came from (a back-reference, no set_epoch)."""

    def __init__(self, collection, i):
        self.dataset, self.i = collection, i

    def __len__(self):
        return 1

    def __getitem__(self, _):
        return np.float32(self.i)


class SongCollection:
    """The collection: `.datasets` lists its views (counted: how often the loader walks it)."""

    def __init__(self, n):
        self.views, self.walked = [SongView(self, i) for i in range(n)], 0

    @property
    def datasets(self):
        self.walked += 1
        return self.views


@pytest.mark.parity
def test_each_dataset_inside_wrappers_is_told_the_epoch_once():
    # epoch_setters walked every path to a dataset: ConcatDataset([songs, songs]) (oversampling) called
    # songs.set_epoch twice an epoch, and wrappers that refer back to each other were walked again at each
    # level, 8 levels deep (views of a collection of 6: the collection walked 258 times an epoch, of 20:
    # 8420).
    torch_data = require("torch").utils.data
    songs = ReshufflingSongs()
    loader = DataLoader(torch_data.ConcatDataset([songs, songs]), batch_size=4)
    for _ in range(2):
        list(loader)
    assert songs.epochs == [0, 1]
    collection = SongCollection(6)
    list(DataLoader(torch_data.ConcatDataset(collection.views), batch_size=3))
    assert collection.walked == 1
