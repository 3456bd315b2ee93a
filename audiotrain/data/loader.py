"""`DataLoader`: batches from a map-style or iterable dataset, with workers, resumable, converted to MLX."""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from audiotrain._caller import user_stacklevel
from audiotrain._keywords import suggesting_keywords
from audiotrain.data.collate import default_collate, default_convert, to_mlx
from audiotrain.data.dataset import check_loader_dataset, epoch_setters
from audiotrain.data.iterators import _EpochIterator, _live, _StreamIterator
from audiotrain.data.iterators import (  # re-exported: the Trainer imports it from here
    close_epoch_iterators as close_epoch_iterators,
)
from audiotrain.data.loader_args import (
    DEFAULT_START_METHOD,
    _as_callables,
    _check_int,
    _generator_seed,
    check_loader_arguments,
)
from audiotrain.data.sampler import (
    batch_sampler_batches,
    epoch_order,
    num_batches,
    order_digest,
    sampler_epoch,
    sampler_order,
    shard_batches_unpadded,
    shard_length,
    shard_order,
    split_batches,
)
from audiotrain.data.workers import BatchJob, WorkerPool, loader_error
from audiotrain.distributed import collectives

import numpy as np

_persistent_workers_hint_given = False  # once per process (`_hint_persistent_workers`)


class ResumeMismatchError(ValueError):
    """A sound checkpoint whose epoch this loader cannot continue with the run's settings (its processes, its
    workers): `audiotrain.train.checkpoint.named_source` names the file without calling its value unreadable."""


@suggesting_keywords()
class DataLoader:
    """Iterate over a dataset in batches, PyTorch style, ending in ``mx.array`` batches.

    Each batch goes through: ``dataset[i]`` -> ``cpu_transforms`` (per sample, numpy, in workers) ->
    ``collate_fn`` (in workers; default `default_collate` stacks into numpy arrays, MLX samples into
    ``mx.array`` of their dtype) -> on the main thread, ``mlx_transforms`` if given, otherwise numpy leaves
    become ``mx.array`` (float64 and long double -> float32, int64 -> int32, uint64 -> uint32). Conversion to
    MLX happens once, on the thread that trains.

    The sample order is a pure function of ``(seed, epoch)``: epoch ``e`` visits
    ``np.random.default_rng([seed, e]).permutation(len(dataset))`` when ``shuffle`` (else ``0..n-1``).
    Every ``iter(loader)`` starts the next epoch unless `set_epoch` chose one; `state_dict` /
    `load_state_dict` resume in the middle of an epoch without loading the skipped samples.

    A user ``sampler`` or ``batch_sampler`` has no state the loader can save. On a mid-epoch resume the
    loader re-creates the epoch's order (after ``set_epoch(epoch)`` on the sampler, if it has one) and
    skips the batches already consumed. That is exact only when the sampler gives the same order for the
    same epoch (a list, ``SequentialSampler``, ``DistributedSampler`` with its ``set_epoch``). `state_dict`
    stores a fingerprint of the epoch's order, and the resumed iteration warns (``UserWarning``) when the
    re-created order differs (a ``RandomSampler`` without a seeded generator): the rest of that epoch then
    repeats some samples and misses others, and every later epoch's order differs from an uninterrupted
    run's too (the sampler's generator goes on from another state).

    **Data parallel.** Under ``mlx.launch``, ``mpirun`` or the NCCL backend (more than one process in
    ``mx.distributed``), each rank reads its own shard of the epoch's order, as with PyTorch's
    ``DistributedSampler``. Every rank draws the same order from ``(seed, epoch)`` (a seed drawn on first
    use is rank 0's, sent to the others; so all ranks must start iterating together), then rank ``r`` of
    ``W`` takes the indices at positions ``r, r + W, r + 2W, ...``, so the shards are disjoint and
    together cover the epoch. So that all ranks run the same number of batches of the same
    sizes (each step's gradient average needs every rank):

    - ``drop_last=False``: the order is padded to a multiple of ``W`` by repeating it from its start;
      up to ``W - 1`` samples are seen twice per epoch in training. Each rank gets ``ceil(n / W)``
      samples; its last batch may be short. In the Trainer's validation and test nothing counts twice
      (``pad_shards``).
    - ``drop_last=True``: the order's last ``n % W`` samples are dropped, then each rank drops its short
      last batch: ``n // (W * batch_size)`` full batches per rank, the same samples as one process with
      batch size ``W * batch_size`` and ``drop_last``.

    Batch ``b`` of all ranks together holds the samples of batch ``b`` of one process with a ``W``-times
    larger batch (when nothing was padded), so the averaged gradient is the same. ``len(loader)`` is the
    number of batches of this rank. `state_dict` is the same on every rank, so rank 0's checkpoint resumes
    all of them exactly; it records ``world_size``, and resuming mid-epoch under another world size raises
    (at an epoch boundary it is allowed; from the end of an epoch ``batch_size`` may change too, as the
    next epoch starts over). A user ``sampler`` or ``batch_sampler`` is left alone: it decides the order,
    so it must shard itself (``torch.utils.data.DistributedSampler``). ``distributed=False`` turns
    sharding off (every rank reads everything, e.g. to evaluate on the full set on every rank).

    **Iterable datasets** (an `IterableDataset`, a ``torch.utils.data.IterableDataset``, any object with
    ``__iter__`` and no ``__getitem__``) are read as streams, as in PyTorch: each epoch calls
    ``iter(dataset)`` (after ``dataset.set_epoch(epoch)`` if it has one) and cuts consecutive items into
    batches of ``batch_size``, the last one short unless ``drop_last``. ``shuffle``, ``sampler`` and
    ``batch_sampler`` raise ValueError. With ``num_workers > 0`` each worker iterates its own copy (a
    process's unpickled one; a ``copy.copy`` per thread) and can take its share of the stream with
    `get_worker_info`, otherwise every worker yields the whole stream; batches come from the workers in
    turn, one each, skipping workers whose stream has ended (PyTorch's order), so with ``drop_last=False``
    each worker's stream can end in a short batch. ``len(loader)`` needs ``len(dataset)`` (TypeError
    without it; the Trainer then trains until the stream ends) and is then, as in PyTorch, an estimate;
    workers giving more batches than they could by splitting ``len(dataset)`` items warn (UserWarning, as
    PyTorch's "Length of IterableDataset ... was reported to be" does): most often an unsplit stream.
    A mid-epoch resume (`load_state_dict`) reads the epoch's stream again and skips the batches already
    yielded (they are read and collated, not converted to MLX): exact when the dataset gives the same
    stream for the same epoch (seed any shuffling with the epoch from ``set_epoch``), otherwise the rest
    of the epoch repeats some samples and misses others. `state_dict` records ``num_workers`` (how the
    stream was split and interleaved), and resuming mid-epoch with another count raises ValueError.
    Under data parallel a stream cannot be sharded by index: every rank reads the whole stream (the cost:
    each rank loads ``W`` times the data it trains on) and keeps batches ``r, r + W, r + 2W, ...``; all
    ranks run the same number of batches: with ``drop_last`` the last ``T % W`` of ``T`` batches are dropped,
    otherwise ranks left without a last batch repeat one from the stream's start (a short last batch then
    meets full ones in the same step). A dataset that splits itself by rank (cheaper: each rank reads only
    its share) needs ``distributed=False``, and must then give every rank the same number of batches, or the
    ranks will wait on each other at the end of the epoch.

    **Errors.** An exception in the dataset, a transform, ``collate_fn`` or ``worker_init_fn`` reaches the
    caller as a `DataLoaderError` that names the sample, the batch and the stage, with the worker's
    traceback. It is also an instance of the original exception's type (``except KeyError`` around the
    loop still catches it, as in PyTorch, which re-raises the original type); see
    `DataLoaderError.original_type`.

    The arguments from ``dataset`` to ``generator`` may be given by position, in PyTorch's order (``dataset,
    batch_size, shuffle, sampler, batch_sampler, num_workers, collate_fn, pin_memory, drop_last, timeout,
    worker_init_fn, multiprocessing_context, generator``); the others by keyword only.

    Parameters
    ----------
    dataset : Dataset, IterableDataset, or an object with ``__len__`` and ``__getitem__(int)`` or ``__iter__``
    batch_size : int or None
        Samples per batch. The last batch of an epoch is shorter unless ``drop_last``. None turns
        automatic batching off, as in PyTorch: each sample (``dataset[i]`` for each index of the order, or
        each item of the stream) is already a batch and goes to ``collate_fn`` on its own (the default,
        `default_convert`, keeps it as it is; its numpy arrays become ``mx.array`` as batches' do), and
        ``len(loader)`` counts samples. Exclusive with ``drop_last``.
    shuffle : bool
        Visit samples in a new random order each epoch. Text (``"False"`` read from a config) is a
        ValueError, where PyTorch would shuffle.
    num_workers : int
        Worker threads or processes; 0 loads in the main thread.
    collate_fn : callable, optional
        ``list of samples -> batch`` (``sample -> batch`` with ``batch_size=None``); runs in the workers.
        Default `default_collate` (`default_convert` with ``batch_size=None``).
    drop_last : bool
        Drop the last batch when it is shorter than ``batch_size``. A bool (numpy's too): anything else is a
        ValueError, as in PyTorch (``"False"`` read from text would be true).
    prefetch_factor : int, optional
        Batches loaded ahead per worker (``num_workers * prefetch_factor`` in flight); None (default): 2.
        As in PyTorch, only with ``num_workers > 0`` (ValueError otherwise); the attribute is None without
        workers.
    worker_type : {"thread", "process"}
        Threads share memory and start instantly, good when ``__getitem__`` releases the GIL (numpy,
        soundfile, file I/O). Processes sidestep the GIL for Python-heavy transforms; the dataset, transforms
        and collate_fn are pickled to each worker, so they must be defined at module level, and scripts need
        an ``if __name__ == "__main__":`` guard (processes are started with ``multiprocessing_context``).
        As PyTorch's, each worker process seeds Python's ``random``, ``np.random``, MLX's ``mx.random``
        and (if imported) torch's generator apart from the others': from its `WorkerInfo.seed` when it starts and at each
        epoch, and for a map-style dataset again before each batch, from (seed, epoch, batch), so that a
        resume in the middle of an epoch draws what an uninterrupted run drew (import torch at the top of
        the dataset's module: imported first inside ``__getitem__``, it seeds itself at random). It answers
        ``torch.utils.data.get_worker_info()`` as `get_worker_info`. Thread workers share the training
        thread's generators (draw augmentation from `batch_rng`), and torch's worker info, one per process,
        cannot tell threads apart: a dataset that calls it in a thread worker gets `DataLoaderError`.
    persistent_workers : bool
        Keep the workers alive between epochs (requires ``num_workers > 0``). Without it, process workers
        are started anew for every epoch (and a validation loader's for every validation), each importing
        MLX again: a second or more every time, so a loader iterated again warns once to suggest it.
    cpu_transforms : callable or list of callables, optional
        ``sample -> sample`` on numpy data, per sample, in the workers.
    mlx_transforms : callable or list of callables, optional
        ``batch -> batch`` on the main thread, replacing the automatic numpy -> MLX conversion; it must
        return ``mx.array`` leaves for the Trainer.
    seed : int, optional
        Seed of the shuffle order and of the workers (`WorkerInfo.seed`). None: the Trainer sets its seed
        with `set_seed`; a loader used on its own draws one from numpy's global generator on first use (so
        ``seed_everything`` decides it; recorded in `state_dict`, so a resume is still exact). A position
        restored by `load_state_dict` brings its seed, which replaces this one (with a warning where it
        differs).
    sampler : iterable of int, optional
        Custom order (a ``torch.utils.data.Sampler`` works); exclusive with ``shuffle``. If it has
        ``set_epoch``, it is called with the epoch; where its ``epoch`` changed since (the user's own
        ``sampler.set_epoch(e)``, as torch code does each epoch), the loader's epoch becomes ``e``. Its
        keys are usually indices (checked against ``len(dataset)``); other keys, such as
        ``(index, crop_length)`` tuples or names, reach ``dataset[key]`` as they are, as in PyTorch.
    batch_sampler : iterable of lists of int, optional
        Custom batches (a ``torch.utils.data.BatchSampler``, a bucketing sampler, a list of index lists;
        keys as for ``sampler``);
        ``len(loader)`` is ``len(batch_sampler)``. Exclusive with ``batch_size``, ``shuffle``, ``sampler``
        and ``drop_last``, as in PyTorch (``batch_size`` is then None). ``set_epoch`` is called on it, or
        on its ``.sampler`` if only that has one. Its batches for an epoch are drawn when the epoch starts.
    timeout : float
        Seconds to wait for one batch from the workers before raising `DataLoaderError`; 0 waits forever.
        With ``num_workers=0`` batches load in the calling thread and there is nothing to time out.
    multiprocessing_context : str or multiprocessing context, optional
        Start method for process workers: ``"spawn"`` (for None, the default, which the attribute keeps:
        forking a process that runs MLX and BLAS threads can deadlock), ``"forkserver"``, ``"fork"``, or a
        context object (``multiprocessing.get_context(...)``). Thread workers start no process: one given
        with them warns that it is unused (PyTorch's loader always starts processes; here
        ``worker_type="process"`` does).
    worker_init_fn : callable, optional
        ``worker_init_fn(worker_id)`` runs once at the start of each worker (thread or process, ids
        ``0 .. num_workers-1``), as in PyTorch, with `get_worker_info` available; not called with
        ``num_workers=0``. If it raises, iterating raises `DataLoaderError` with
        ``stage="worker_init_fn"``, the ``worker_id`` and its traceback. In a process worker, a global
        generator it seeds (or draws from: ``np.random.seed(1000 + worker_id)``) is its own from then on,
        as in PyTorch: the loader no longer seeds it, and a persistent worker draws on from it epoch after
        epoch. A checkpoint cannot restore those draws, so a resume in the middle of an epoch (with
        persistent workers, any resume after the first epoch) warns that they differ from an uninterrupted
        run's; augmentation drawn from `batch_rng`, or left to the loader's seeding, resumes exactly.
        Thread workers, which share those generators, load nothing until every worker's has run.
    generator : torch.Generator, numpy.random.Generator or int, optional
        Another way to give ``seed``, for PyTorch code: a ``torch.Generator`` gives its
        ``initial_seed()``; a numpy ``Generator`` gives one 63-bit integer drawn from it when the loader
        is built; an int is the seed. Only the seed is used: epoch ``e`` is still drawn from
        ``(seed, e)`` (the generator is not advanced each epoch, unlike PyTorch), so a resume is exact.
        Exclusive with ``seed``. A user sampler keeps its own randomness.
    distributed : bool, optional
        Shard the order across ``mx.distributed`` ranks (see above). None (default): when there is more
        than one rank and no user ``sampler`` / ``batch_sampler``. True: the same, but a user sampler is an
        error. False: never; every rank reads the whole epoch.
    pad_shards : bool, optional
        How a rank whose shard is a sample short keeps step with the others (sharded, ``drop_last=False``).
        True: its shard is padded as above (training: every step's batches are full). False: nothing is
        repeated; its last batch is a sample shorter, or, where that leaves it a batch short, a batch of
        padding alone that `padding_batches` names (evaluation weighs it 0, so validation and test means
        are those of one process). None (default): True, except that the Trainer sets False on the
        loaders it validates, tests and predicts with. A stream repeats a whole batch from its start for
        a rank left a batch short; with False `padding_batches` names it.
    in_order : bool
        PyTorch's switch for letting batches come as workers finish them. Only True (the default) is
        accepted: batches always come in order, which exact resume relies on.
    pin_memory, pin_memory_device : optional
        Accepted for PyTorch compatibility and ignored: pinning copies host tensors to page-locked memory
        for faster CUDA transfers, while ``mx.array`` batches live in memory the GPU reads directly
        (Apple unified memory) or are placed by MLX itself, so there is no transfer to speed up.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int | None = 1,
        shuffle: bool = False,
        # PyTorch's positional order up to generator (torch's own keyword-only ones follow the `*`), so
        # DataLoader(ds, 4, False, sampler) lands its sampler where torch does.
        sampler: Iterable[int] | None = None,
        batch_sampler: Iterable[Sequence[int]] | None = None,
        num_workers: int = 0,
        collate_fn: Callable[[list], Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable[[int], Any] | None = None,
        multiprocessing_context: Any = None,
        generator: Any = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
        worker_type: str = "thread",
        cpu_transforms: Callable | Sequence[Callable] | None = None,
        mlx_transforms: Callable | Sequence[Callable] | None = None,
        seed: int | None = None,
        distributed: bool | None = None,
        pad_shards: bool | None = None,
    ) -> None:
        self._iterable = check_loader_dataset(dataset) is None
        self.dataset = dataset
        checked = check_loader_arguments(
            iterable=self._iterable,
            batch_size=batch_size,
            shuffle=shuffle,
            num_workers=num_workers,
            drop_last=drop_last,
            prefetch_factor=prefetch_factor,
            worker_type=worker_type,
            persistent_workers=persistent_workers,
            sampler=sampler,
            batch_sampler=batch_sampler,
            collate_fn=collate_fn,
            worker_init_fn=worker_init_fn,
            timeout=timeout,
            multiprocessing_context=multiprocessing_context,
            in_order=in_order,
            distributed=distributed,
            seed=seed,
            generator=generator,
        )
        self.batch_size = checked.batch_size
        # batch_size=None turns automatic batching off: every sample is a batch, collated on its own.
        self._auto_collation = batch_size is not None or batch_sampler is not None
        self.num_workers = checked.num_workers
        self.prefetch_factor = checked.prefetch_factor
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.worker_type = worker_type
        self.persistent_workers = bool(persistent_workers)
        self._sampler = sampler  # the user's (None: the loader's own order, `sampler` shows it)
        self._batch_sampler = batch_sampler
        self._sampler_epoch_seen = sampler_epoch(self._user_sampler)  # (see __iter__)
        self.distributed = distributed
        self.pad_shards = pad_shards
        self._padding_batches: frozenset[int] = frozenset()
        self.timeout = float(timeout)
        # As given (None where it was not), as PyTorch keeps it: a loader rebuilt from its attributes
        # (Lightning's way) then gets what this one got, not a "spawn" that warns with thread workers.
        self.multiprocessing_context = multiprocessing_context
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self.worker_init_fn = worker_init_fn
        self.pin_memory = bool(pin_memory)  # no-op, see the class docstring
        self.pin_memory_device = pin_memory_device
        # As PyTorch's attributes, so code that reads a loader's arguments back (to build another) finds them.
        self.generator = generator
        self.in_order = bool(in_order)
        self.cpu_transforms = _as_callables("cpu_transforms", cpu_transforms)
        self.mlx_transforms = _as_callables("mlx_transforms", mlx_transforms)
        self._seed: int | None = None
        if generator is not None:
            seed = _generator_seed(generator)
        if seed is not None:
            self.set_seed(seed)
        self._given_seed = self._seed  # (a resume from another seed's position keeps that one: it warns)
        self._epoch = 0
        self._started = False  # has an iteration of self._epoch begun?
        self._resume_at = 0  # batches of self._epoch to skip on the next iteration (after load_state_dict)
        self._yielded = 0  # batches of self._epoch handed out so far
        self._current_batch: np.ndarray | None = None  # the sample indices of the last batch handed out
        self._stream_length: int | None = None  # batches of an iterable dataset's epoch, once it ended
        self._token = 0  # identifies the newest iterator; older ones stop updating the position
        self._pool: WorkerPool | None = None  # the persistent pool
        self._pool_finalizer: weakref.finalize | None = None  # (closes it if the loader is collected)
        self._process_pools_started = 0  # without persistent workers (`_hint_persistent_workers`)
        # Fingerprints of a user sampler's order: of the running epoch, and of the epoch a checkpoint was in.
        self._digest: str | None = None
        self._resume_digest: str | None = None
        # The global generators (`RandomState`) as they were when a user sampler drew the running epoch's
        # order, and as a checkpoint's position recorded them: a resume draws that order from them again.
        self._order_random: dict[str, Any] | None = None
        self._resume_order_random: dict[str, Any] | None = None
        self._restored = False  # has load_state_dict set the position the next iteration starts from?

    # ------------------------------------------------------------------------------------------ order

    @property
    def seed(self) -> int | None:
        """Seed of the shuffle order (None until set or first drawn)."""
        return self._seed

    def set_seed(self, seed: int) -> None:
        """Set the shuffle seed (the Trainer calls this with its own seed when the loader has none)."""
        self._seed = _check_int("seed", seed, 0)

    @property
    def epoch(self) -> int:
        """The epoch of the current (or next, after `set_epoch` / `load_state_dict`) iteration."""
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``iter(loader)`` run epoch ``epoch``.

        A position restored by `load_state_dict` is kept when ``epoch`` is the restored epoch.
        """
        epoch = _check_int("epoch", epoch, 0)
        if epoch != self._epoch:
            self._resume_at = 0
        self._epoch = epoch
        self._started = False

    @property
    def reads_stream(self) -> bool:
        """Whether the dataset is read as a stream (an iterable dataset): `len(loader)` is then an estimate,
        and the Trainer runs its epochs until the stream ends."""
        return self._iterable

    def __len__(self) -> int:
        """Number of batches in one epoch (of this rank, when sharded).

        For an iterable dataset, computed from ``len(dataset)`` as PyTorch does (TypeError without it): an
        estimate, since each worker's stream ends in its own short batch (unless ``drop_last``).
        """
        if self._batch_sampler is not None:
            return len(self._batch_sampler)
        shard = self._shard()
        if self._iterable:
            if not hasattr(self.dataset, "__len__"):
                raise TypeError(
                    f"len(DataLoader) is unknown: the iterable dataset {type(self.dataset).__name__} has no "
                    f"__len__ (the loader reads it until it ends)"
                )
            n = num_batches(len(self.dataset), self.batch_size or 1, self.drop_last)
            return n if shard is None else shard_length(n, shard[1], self.drop_last)  # batches are sharded
        n = len(self._sampler) if self._sampler is not None else len(self.dataset)
        if shard is not None:
            n = shard_length(n, shard[1], self.drop_last)
        return num_batches(n, self.batch_size or 1, self.drop_last)

    def _stream_batch_bound(self) -> int | None:
        """The most batches workers can give when they split a stream of ``len(dataset)`` items between
        them (each worker's share may end in its own short batch), None without a length."""
        try:
            n = len(self)
        except TypeError:
            return None
        return n + (self.num_workers - 1 if self.batch_size is not None and not self.drop_last else 0)

    def _warn_stream_repeated(self, bound: int) -> None:
        """PyTorch warns when a stream gives more than its length: most often every worker yielding the
        whole dataset, each sample ``num_workers`` times per epoch, unnoticed."""
        warnings.warn(
            f"DataLoader over the iterable dataset {type(self.dataset).__name__} (len {len(self.dataset)}) "
            f"gave more than {bound} batches this epoch, more than its {self.num_workers} workers can give "
            f"when they split it: each worker iterates its own copy of the dataset and yields the whole "
            f"stream unless __iter__ takes its share with get_worker_info() (worker id, num_workers), so "
            f"every sample comes {self.num_workers} times; or __len__ is less than the stream holds",
            UserWarning,
            stacklevel=user_stacklevel(),
        )

    def _shard(self) -> tuple[int, int] | None:
        """(rank, world_size) when this loader reads one rank's shard, else None."""
        if self.distributed is False or self._user_order:
            return None
        world = collectives.world_size()
        return (collectives.rank(), world) if world > 1 else None

    def _world_size(self) -> int:
        shard = self._shard()
        return 1 if shard is None else shard[1]

    @property
    def sampler(self) -> Any:
        """The order's source, as torch's ``loader.sampler`` gives it: the ``sampler`` passed, else (a
        map-style dataset) a view of the loader's own order: ``len`` is the samples this rank reads an epoch,
        iterating gives them in the current epoch's order (this rank's shard under data parallel), and
        ``set_epoch`` sets the loader's epoch (as on a ``DistributedSampler``). None for an iterable
        dataset, which has no order of indices, and with a ``batch_sampler`` (torch gives its own there)."""
        if self._sampler is not None or self._batch_sampler is not None or self._iterable:
            return self._sampler
        return LoaderOrder(self)

    @property
    def batch_sampler(self) -> Any:
        """The ``batch_sampler`` passed, else (a map-style dataset with a ``batch_size``) a view of the
        loader's batches, as torch's ``BatchSampler``: ``len`` is ``len(loader)``, iterating gives each batch's
        indices as a list, with ``batch_size``, ``drop_last`` and ``sampler``. None otherwise."""
        if self._batch_sampler is not None or self._iterable or self.batch_size is None:
            return self._batch_sampler
        return LoaderBatches(self)

    @property
    def _user_order(self) -> bool:
        return self._sampler is not None or self._batch_sampler is not None

    @property
    def _user_sampler(self) -> Any:
        return self._batch_sampler if self._batch_sampler is not None else self._sampler

    @property
    def padding_batches(self) -> frozenset[int]:
        """Batches of this rank's current epoch that hold padding alone (``pad_shards=False``): the Trainer's
        evaluation weighs them 0."""
        return self._padding_batches

    @property
    def current_batch_indices(self) -> list[int] | None:
        """The dataset indices of the samples of the batch the newest iterator handed out last, in the
        batch's order (after ``shuffle``, the sampler or batch_sampler; under data parallel, from this rank's
        shard): what Lightning gives a `BasePredictionWriter` as ``batch_indices``. None for an iterable
        dataset, whose samples have no index, and before the epoch's first batch."""
        return None if self._current_batch is None else [int(i) for i in self._current_batch]

    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """The sample indices of each batch of ``epoch``."""
        self._padding_batches = frozenset()
        n = len(self.dataset)
        if self._batch_sampler is not None:
            batches = batch_sampler_batches(self._batch_sampler, epoch, n)
            self._sampler_epoch_seen = sampler_epoch(self._batch_sampler)
            return batches
        if self._sampler is not None:
            order = sampler_order(self._sampler, epoch, n)
            self._sampler_epoch_seen = sampler_epoch(self._sampler)
        else:
            order = epoch_order(n, shuffle=self.shuffle, seed=self._seed, epoch=epoch)
            shard = self._shard()
            if shard is not None and self.pad_shards is False and not self.drop_last:
                batches, padding = shard_batches_unpadded(
                    order, rank=shard[0], world_size=shard[1], batch_size=self.batch_size or 1
                )
                self._padding_batches = frozenset(() if padding is None else (padding,))
                return batches
            if shard is not None:
                order = shard_order(order, rank=shard[0], world_size=shard[1], drop_last=self.drop_last)
        return split_batches(order, self.batch_size or 1, self.drop_last)

    # ------------------------------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable position: seed, epoch, batches yielded in it, and what the order depends on.

        ``seed`` is None only before the first iteration of a loader built without one. ``order_digest``
        fingerprints the epoch's order from a user sampler / batch_sampler (None otherwise), so that a
        resume can tell whether the re-created order is the same, and ``order_random`` holds the global
        generators it drew from as they were when it was drawn (None otherwise, or where it drew from none),
        which the resume draws it from again (a checkpoint's own `RandomState` is that of its step). For an
        iterable dataset,
        ``num_batches`` is the epoch's count once its stream has ended, else ``len(loader)`` if the
        dataset has a length, else None; ``num_samples`` is None; ``num_workers`` is recorded (None for a
        map-style dataset, whose batches do not depend on it); ``stream_ended`` says whether the epoch's
        stream has ended (False for a map-style dataset).
        """
        return {
            "seed": self._seed,
            "epoch": self._epoch,
            "batches_yielded": self._yielded if self._started else self._resume_at,
            "num_batches": self._num_batches(),
            "num_samples": None if self._iterable else len(self.dataset),
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
            "order_digest": self._digest if self._started else self._resume_digest,
            "order_random": self._order_random if self._started else self._resume_order_random,
            "world_size": self._world_size(),
            "iterable": self._iterable,
            "num_workers": self.num_workers if self._iterable else None,
            "stream_ended": self._iterable and self._started and self._stream_length is not None,
        }

    def _num_batches(self) -> int | None:
        """Batches of the epoch, where known (an iterable dataset's are known when its stream ends)."""
        if not self._iterable:
            return len(self)
        if self._started and self._stream_length is not None:
            return self._stream_length
        try:
            return len(self)
        except TypeError:  # (no length, or a __len__ that says it has none)
            return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a position from `state_dict`: the next iteration continues that epoch at that batch.

        A finished epoch restores as the start of the next one. Raises ValueError when the dataset length,
        batch size, shuffle or drop_last differ from the saved ones (the order would not be the same), and
        in the middle of an iterable dataset's epoch when ``num_workers`` differs.
        An iterable dataset's epoch is resumed by reading its stream again and skipping the batches
        already yielded: exact when the dataset gives the same stream for the same epoch.
        """
        if not isinstance(state, Mapping):  # (a checkpoint entry that is missing: None)
            raise TypeError(
                "DataLoader.load_state_dict needs the dict that state_dict() returned, got "
                f"{type(state).__name__}"
            )
        missing = {"seed", "epoch", "batches_yielded"} - set(state)
        if missing:
            raise ValueError(f"DataLoader state is missing {sorted(missing)}; got keys {sorted(state)}")
        current = self.state_dict()
        keys = ["iterable", "num_samples", "batch_size", "shuffle", "drop_last", "num_batches"]
        if self._iterable:
            keys.remove("num_batches")  # a stream's length is an estimate until it ends
        saved_world = state.get("world_size", 1)
        finished = position_ends_epoch(state)
        if saved_world != current["world_size"]:
            if 0 < state["batches_yielded"] and not finished:
                now = current["world_size"]
                raise ResumeMismatchError(
                    f"the checkpoint was saved in the middle of epoch {state['epoch']} by {_processes(saved_world)}"
                    f" and this run has {_processes(now)}: each process's share of the epoch's samples depends "
                    f"on the count, so {'it' if now == 1 else 'they'} cannot continue that epoch. Resume with "
                    f"{_processes(saved_world)} (e.g. python -m audiotrain launch -n {saved_world} -- python ...), "
                    "or from a checkpoint saved at an epoch's end (a checkpoint is mid-epoch where a stop, "
                    "max_steps or Ctrl-C, came inside the epoch; `last` is at an epoch's end only where the run "
                    "stopped there)"
                )
        saved_workers = state.get("num_workers")  # (None: map-style, or a checkpoint without it)
        mid_epoch = 0 < state["batches_yielded"] and not finished
        if self._iterable and mid_epoch and saved_workers not in (None, self.num_workers):
            raise ResumeMismatchError(
                f"cannot resume the DataLoader in the middle of epoch {state['epoch']}: the checkpoint's "
                f"stream was read by num_workers={saved_workers}, this loader has "
                f"num_workers={self.num_workers}. Each worker reads its own copy of the iterable dataset "
                "(its share, with get_worker_info) and the batches interleave by worker, so skipping the "
                f"{state['batches_yielded']} batches already trained on would skip other samples. Resume "
                f"with num_workers={saved_workers}, or from a checkpoint at an epoch boundary"
            )
        if finished or saved_world != current["world_size"]:
            # The next epoch starts from its first batch: its batches need not line up with the saved ones
            # (batches per rank change with the world size, and a data-parallel run's global batch is kept
            # in one process by a batch_size W times larger).
            keys = [k for k in keys if k not in ("num_batches", "batch_size" if finished else "")]
        for key in keys:
            if key in state and state[key] != current[key]:
                raise ValueError(
                    f"cannot resume the DataLoader position: the checkpoint has {key}={state[key]!r}, this "
                    f"loader has {key}={current[key]!r}, so batches would not line up"
                )
        if state["seed"] is not None:
            given = self._given_seed
            if given is not None and self._seed == given != state["seed"] and collectives.is_main_process():
                _warn_of_kept_seed(given, state["seed"])  # (one warning for a data-parallel job)
            self.set_seed(state["seed"])
        epoch = _check_int("state['epoch']", state["epoch"], 0)
        done = _check_int("state['batches_yielded']", state["batches_yielded"], 0)
        if not (finished or self._iterable):  # (a checkpoint written without num_batches)
            if done > len(self):
                raise ValueError(
                    f"DataLoader state has batches_yielded={done} but an epoch has {len(self)} batches"
                )
            finished = done == len(self)
        if finished:
            epoch, done = epoch + 1, 0
        self._epoch, self._resume_at, self._started, self._yielded = epoch, done, False, 0
        self._resume_digest = state.get("order_digest") if done else None
        self._resume_order_random = state.get("order_random") if done else None
        self._restored = True

    def _draw_seed(self) -> None:
        # From numpy's global generator, as PyTorch draws its base seed from torch's: random unless
        # `seed_everything` (or np.random.seed) seeded it, and then the same in every run. 63 bits, so that
        # it is a JSON-safe non-negative int.
        seed = int(np.random.randint(0, 2**63, dtype=np.int64))
        if self._shard() is not None:  # the shards are disjoint only if every rank shuffles alike
            seed = collectives.broadcast_from_main(seed)
        self._seed = seed

    # ------------------------------------------------------------------------------------------ iteration

    def __iter__(self) -> Iterator[Any]:
        if self._seed is None:
            self._draw_seed()
        if self._started:
            self._epoch, self._resume_at = self._epoch + 1, 0
        self._started, self._token = True, self._token + 1
        start, self._resume_at = self._resume_at, 0
        resumed, self._restored = self._restored, False
        if self._user_order and not resumed:
            # PyTorch's habit, sampler.set_epoch(epoch) before each epoch (a DistributedSampler's, from a
            # start epoch of the user's): that epoch it is, not the loader's count, which would overwrite it.
            chosen = sampler_epoch(self._user_sampler)
            if chosen is not None and chosen != self._sampler_epoch_seen:
                self._epoch = chosen
        # Where a worker_init_fn seeds global generators, a resumed run cannot draw what an uninterrupted one
        # drew from them: after batches it skipped, or in persistent workers started epochs before.
        check = resumed and (self.persistent_workers and self._epoch > 0 or start > 0 and not self._iterable)
        check = check and self.worker_type == "process" and self.worker_init_fn is not None
        self._yielded = start
        self._current_batch = None
        self._stream_length = None
        # Datasets that draw per-epoch choices (crops, captions) learn the epoch here, also inside torch's
        # Subset or ConcatDataset. Process workers hold their own copy of the dataset and repeat the call
        # when a batch of a new epoch arrives.
        for dataset in epoch_setters(self.dataset):
            dataset.set_epoch(self._epoch)
        if self._iterable:
            self._padding_batches = frozenset()  # (the stream's padding is named when it comes)
            return _live(_StreamIterator(self, start, *self._epoch_pool(), check_user_generators=check))
        order_random, self._resume_order_random = self._resume_order_random, None
        batches = self._user_order_batches(order_random if start else None) if self._user_order else None
        batches = self._epoch_batches(self._epoch) if batches is None else batches
        saved, self._resume_digest = self._resume_digest, None
        self._digest = order_digest(batches) if self._user_order else None
        if start and self._user_order and saved != self._digest:
            kind = "batch_sampler" if self._batch_sampler is not None else "sampler"
            user = self._batch_sampler if self._batch_sampler is not None else self._sampler
            why = (
                "the checkpoint has no fingerprint of the order to check against"
                if saved is None
                else "it now gives a different order than before the checkpoint"
            )
            warnings.warn(
                f"DataLoader resumes epoch {self._epoch} at batch {start} by skipping the first {start} "
                f"batches of the {kind} {type(user).__name__}'s order, but {why}: for the rest of this epoch "
                f"some samples may be repeated and others missed, and every later epoch's order differs from "
                f"an uninterrupted run's too: the {kind}'s own generator goes on from another state (the "
                f"global ones of numpy, random, torch and MLX are put back as they were when this epoch's "
                f"order was drawn). A {kind} that gives the same order for the same epoch (set_epoch, a "
                f"generator seeded with the epoch, or the global generators) resumes exactly.",
                UserWarning,
                stacklevel=2,
            )
        pool, own_pool = self._epoch_pool() if start < len(batches) else (None, False)
        return _live(_EpochIterator(self, batches, start, pool, own_pool, check_user_generators=check))

    def _user_order_batches(self, random_before: dict[str, Any] | None) -> list[np.ndarray]:
        """The running epoch's batches from a user sampler, which may draw from the global generators (a
        torch RandomSampler without a generator draws from torch's). A checkpoint restores those as they
        were at its step, after the order was drawn: a resume puts them back as they were before
        (`random_before`, from the checkpoint's position), draws the order again and then restores them, so
        that the epoch goes on in the uninterrupted run's order."""
        from audiotrain.train.state import RandomState  # (here: audiotrain.train imports this module)

        if random_before is None:
            before = RandomState.capture()
            batches = self._epoch_batches(self._epoch)
            # Only the generators the sampler drew from (a torch RandomSampler: torch's, 6.8 KB of JSON, not
            # 21.6 KB with numpy's, Python's and MLX's), none for a fixed order or a sampler's own generator,
            # whose order is drawn again the same from any state: every checkpoint holds them.
            after = RandomState.capture()
            drawn = {name: state for name, state in before.items() if after.get(name) != state}
            self._order_random = drawn or None
            return batches
        at_step = RandomState.capture()
        RandomState.restore({**at_step, **random_before})  # (a checkpoint of a661a90b holds all of them)
        try:
            return self._epoch_batches(self._epoch)
        finally:
            RandomState.restore(at_step)
            self._order_random = random_before

    def _epoch_pool(self) -> tuple[WorkerPool | None, bool]:
        """The workers for the epoch starting now (None: load here), and whether they are the epoch's own."""
        if self.num_workers == 0:
            return None, False
        if not self.persistent_workers:
            if self.worker_type == "process":
                self._process_pools_started += 1
                if self._process_pools_started == 2:
                    _hint_persistent_workers(self.num_workers, self._start_method())
            return self._new_pool(), True
        if self._pool is None or not self._pool.healthy():
            self.close()
            self._pool = self._new_pool()
            self._pool_finalizer = weakref.finalize(self, self._pool.close_when_collected)
        else:
            self._pool.reset()
        return self._pool, False

    def _warn_user_generators(self, pool: WorkerPool, start: int) -> None:
        """On the first batch of a resumed epoch (`__iter__` says when): warn if the process workers'
        worker_init_fn seeded global generators, whose draws a checkpoint cannot restore."""
        if not pool.user_generators:
            return
        names = " and ".join(sorted(pool.user_generators))
        where = f"epoch {self._epoch}" + (f" at batch {start}" if start else "")
        warnings.warn(
            f"DataLoader resumes {where}, but its worker_init_fn "
            f"({getattr(self.worker_init_fn, '__qualname__', type(self.worker_init_fn).__name__)}) seeded "
            f"{names} in the worker processes, which then draw on from the state it left, as PyTorch's "
            "workers do. A checkpoint cannot restore those draws: from here on this run's augmentation "
            "drawn from them differs from an uninterrupted run's, and its weights with it. For augmentation "
            "that resumes exactly, draw it from audiotrain.data.batch_rng(), or leave the seeding to the "
            "loader (it seeds the generators that worker_init_fn leaves alone before each batch)",
            UserWarning,
            stacklevel=3,
        )

    def _job(self) -> BatchJob:
        return BatchJob(
            self.dataset,
            self.cpu_transforms,
            self.collate_fn,
            self.worker_init_fn,
            auto_collation=self._auto_collation,
            stream_batch_size=(self.batch_size or 1) if self._iterable else None,
            drop_last=self.drop_last,
        )

    def _start_method(self) -> Any:
        """What process workers start with: ``multiprocessing_context``, or "spawn" where it is None."""
        given = self.multiprocessing_context
        return DEFAULT_START_METHOD if given is None else given

    def _new_pool(self) -> WorkerPool:
        return WorkerPool(
            self._job(),
            self.num_workers,
            self.worker_type,
            self._start_method(),
            seed=self._augmentation_seed(),
            epoch=self._epoch,
        )

    def _augmentation_seed(self) -> int:
        """The seed of the workers' random numbers (`batch_rng`, a process worker's `np.random` and
        `random`). Under data parallel each rank of a map-style loader draws its own, as Lightning mixes the
        rank into worker seeds: with one seed the ranks would give their different samples the same
        augmentations. Rank 0 keeps the loader's seed (one process draws what it drew before). A stream keeps
        it on every rank: each rank reads the whole stream and keeps its share of the batches, so a stream
        that shuffles with these numbers must read the same on every rank."""
        rank = collectives.rank()
        if self._iterable or rank == 0:
            return self._seed
        return int(np.random.SeedSequence([self._seed, rank]).generate_state(1, np.uint64)[0]) >> 1

    def _to_batch(self, batch: Any, batch_index: int) -> Any:
        """Main-thread step: ``mlx_transforms`` if given, else numpy -> ``mx.array``."""
        if not self.mlx_transforms:
            try:
                return to_mlx(batch)
            except ValueError as exc:  # e.g. int64 values that do not fit in int32
                raise loader_error(
                    f"converting batch {batch_index} to MLX failed: {exc}",
                    type(exc),
                    batch_index=batch_index,
                    stage="to_mlx",
                ) from exc
        for k, transform in enumerate(self.mlx_transforms):
            try:
                batch = transform(batch)
            except Exception as exc:
                stage = (
                    f"mlx_transforms[{k}] ({getattr(transform, '__qualname__', type(transform).__name__)})"
                )
                raise loader_error(
                    f"{stage} failed on batch {batch_index}: {type(exc).__name__}: {exc}",
                    type(exc),
                    batch_index=batch_index,
                    stage=stage,
                ) from exc
        return batch

    def close(self) -> None:
        """Stop persistent workers now (they also stop when the loader is garbage collected, and when a
        Trainer stage that iterated it ends: `stop_stage_workers`); the next `iter` starts them again."""
        if self._pool_finalizer is not None:
            self._pool_finalizer.detach()  # (it would keep the closed pool as long as the loader)
            self._pool_finalizer = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.close()  # (a Ctrl-C as it waits still ends its workers, then comes out: `WorkerPool.close`)

    def __repr__(self) -> str:
        return (
            f"DataLoader({type(self.dataset).__name__}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"num_workers={self.num_workers}, worker_type={self.worker_type!r}, seed={self._seed})"
        )


def stop_stage_workers(*loaders: Any, hold_interrupts: bool = False) -> None:
    """A Trainer stage that iterated these loaders ended: their epochs still being iterated end, and the
    persistent workers of the DataLoaders among them stop, as Lightning stops them when a stage ends (the
    next stage or `iter` starts them again). Kept, they would run as long as the module that keeps the
    Trainer, which keeps its loaders: a search that keeps each trial's model kept each trial's workers, and
    a copy of the dataset in each. Other loaders are left alone. Raises no error of its own (it also runs
    while an error is on its way out); a Ctrl-C that lands while a pool closes (`KeyboardInterrupt`) is
    raised once every loader's workers are stopped, unless `hold_interrupts` (a fit a stop signal already
    ended and saved: the stop it asks for has happened), so no loader's workers outlive it either way."""
    interrupt: BaseException | None = None
    try:
        close_epoch_iterators(*loaders)
    except KeyboardInterrupt as error:
        interrupt = error
    # (a CombinedLoader's workers are its loaders')
    loaders = tuple(x for loader in loaders for x in getattr(loader, "flattened", None) or (loader,))
    for loader in loaders:
        if isinstance(loader, DataLoader):
            try:
                loader.close()
            except KeyboardInterrupt as error:  # (its workers ended all the same: `WorkerPool.close`)
                interrupt = interrupt or error
            except Exception:
                pass
    if interrupt is not None and not hold_interrupts:
        raise interrupt


def hint_workers_started_again(loader: Any) -> None:
    """Before a loop that iterates `loader` more than once (a `Trainer.fit` of several epochs, its validation
    loader): `_hint_persistent_workers` where its process workers would start again, rather than at the
    second epoch, after a whole epoch's work (Lightning warns as the fit sets its loaders up). A loop of the
    user's own still gets it at its second pass (`DataLoader._epoch_pool`)."""
    if (
        isinstance(loader, DataLoader)
        and loader.worker_type == "process"
        and loader.num_workers > 0
        and not loader.persistent_workers
    ):
        _hint_persistent_workers(loader.num_workers, loader._start_method())


def _hint_persistent_workers(num_workers: int, context: Any) -> None:
    """Once per process: a loader iterated again starts its worker processes again (`DataLoader`'s
    ``persistent_workers``), which PyTorch users, whose workers fork almost for free, do not expect.
    `context`: the loader's start method, or a context object: a worker started by "spawn" or
    "forkserver" imports MLX again (a second or more), a forked one does not."""
    global _persistent_workers_hint_given
    if _persistent_workers_hint_given:
        return
    _persistent_workers_hint_given = True
    workers = f"{num_workers} worker process{'es' if num_workers > 1 else ''}"
    if isinstance(context, str):
        method = context
    else:  # (allow_none: asking the default context must not fix its start method)
        method = getattr(context, "get_start_method", lambda allow_none: None)(allow_none=True)
    cost = (
        "each new worker is started (forked)"
        if method == "fork"
        else "each new worker is started and imports MLX again, a second or more"
    )
    warnings.warn(
        f"DataLoader(worker_type='process') starts its {workers} again for every epoch, since "
        f"persistent_workers is False; {cost} every epoch (and every validation, for a validation loader). "
        "Pass persistent_workers=True to keep them between epochs (or use worker_type='thread' where "
        "__getitem__ mostly releases the GIL: numpy, file reads). This hint is shown once.",
        UserWarning,
        stacklevel=user_stacklevel(),  # (the user's loop, or their fit call: not the Trainer's line)
    )


def _warn_of_kept_seed(given: int, saved: int) -> None:
    """A loader built with `given` as its seed resumes a position drawn with `saved`: that one is kept, as a
    changed Trainer seed is (said once per loader: it keeps `saved` from then on)."""
    warnings.warn(
        f"DataLoader(seed={given}) resumes a position saved with seed {saved}: seed {saved} is kept, for the "
        f"rest of the epoch and the epochs after it, so that the resume is exact (the order of seed {given} "
        f"would repeat some samples and skip others). To train with seed {given}, start a new run (no "
        "ckpt_path)",
        UserWarning,
        stacklevel=user_stacklevel(),  # (the user's fit call, or their loop)
    )


def position_ends_epoch(state: dict[str, Any]) -> bool:
    """Whether a saved `DataLoader.state_dict` is at the end of its epoch (every batch of it yielded):
    resuming from it starts the next epoch, whatever the batches of the run that resumes. A stream's epoch
    ends where the stream ended, not at its estimated ``num_batches``: a position at or past the estimate
    (with workers each one's stream ends in a short batch) resumes by reading the rest of the stream. (A
    checkpoint from before ``stream_ended`` was saved reads the stream again too: if it had ended, nothing
    is left.)"""
    if state.get("iterable"):
        return bool(state.get("stream_ended"))
    total = state.get("num_batches")
    return total is not None and state.get("batches_yielded", 0) >= total


def _processes(count: int) -> str:
    return "1 process" if count == 1 else f"{count} processes"


class LoaderOrder:
    """`DataLoader.sampler` where none was passed: the loader's own order, read only (see there)."""

    def __init__(self, loader: DataLoader):
        self._loader = loader

    def __len__(self) -> int:
        return sum(len(batch) for batch in self._batches(lengths_only=True))

    def __iter__(self) -> Iterator[int]:
        return (int(i) for batch in self._batches() for i in batch)

    def set_epoch(self, epoch: int) -> None:
        self._loader.set_epoch(epoch)

    def _batches(self, lengths_only: bool = False) -> list[np.ndarray]:
        loader = self._loader
        padding, seed = loader._padding_batches, loader._seed  # (a view changes neither)
        try:
            if seed is None and loader.shuffle:
                if lengths_only:
                    loader._seed = 0  # (any seed: the lengths do not depend on the order)
                else:
                    loader._draw_seed()  # (the first use: as iterating the loader draws it)
                    seed = loader._seed
            return loader._epoch_batches(loader.epoch)
        finally:
            loader._padding_batches, loader._seed = padding, seed


class LoaderBatches:
    """`DataLoader.batch_sampler` where none was passed: the loader's batches, read only (see there)."""

    def __init__(self, loader: DataLoader):
        self._loader = loader
        self.batch_size, self.drop_last = loader.batch_size, loader.drop_last

    @property
    def sampler(self) -> LoaderOrder:
        return LoaderOrder(self._loader)

    def __len__(self) -> int:
        return len(self._loader)

    def __iter__(self) -> Iterator[list[int]]:
        return ([int(i) for i in batch] for batch in LoaderOrder(self._loader)._batches())

    def set_epoch(self, epoch: int) -> None:
        self._loader.set_epoch(epoch)
