"""The iterators `DataLoader.__iter__` returns: one epoch of a map-style dataset, or one pass over an iterable
dataset's stream; the stream readers; and the registry of live iterators that `close_epoch_iterators` ends."""

from __future__ import annotations

import contextlib
import itertools
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from audiotrain.data.sampler import shard_stream
from audiotrain.data.workers import STREAM_END, BatchJob, DataLoaderError, StreamState, WorkerPool

import numpy as np

if TYPE_CHECKING:
    from audiotrain.data.loader import DataLoader

# The epoch iterators not yet collected, for `close_epoch_iterators` (kept here rather than on each loader,
# which stays picklable).
_LIVE_ITERATORS: weakref.WeakSet[_LoaderIterator] = weakref.WeakSet()


def _live(iterator: _LoaderIterator) -> _LoaderIterator:
    _LIVE_ITERATORS.add(iterator)
    return iterator


def close_epoch_iterators(*loaders: Any) -> None:
    """End the epochs of these DataLoaders still being iterated (other loaders are left alone): each
    iterator stops, and the workers it started exit now (persistent workers stay, for the next epoch).

    The Trainer calls this when `fit` fails. An error raised by a step, a hook or a callback leaves the
    epoch's iterator in the frames of its traceback, which would keep its workers running as long as the
    exception is kept (a sweep's list of failed trials, IPython's ``sys.last_traceback``). Never raises:
    it runs while that error is on its way out.
    """
    # (a CombinedLoader's epoch is its loaders')
    loaders = tuple(x for loader in loaders for x in getattr(loader, "flattened", None) or (loader,))
    for iterator in list(_LIVE_ITERATORS):
        if any(iterator._loader is loader for loader in loaders):
            with contextlib.suppress(Exception):
                iterator.close()


class _LoaderIterator:
    """What the two epoch iterators share: the loader's position they update while they are its newest
    iterator, the workers they stop when done, and the refusal to go on once superseded.

    Each ``__next__`` calls ``loader._warn_user_generators`` itself rather than through a helper here: the
    warning's ``stacklevel`` counts the frames up to the code that asked for the batch."""

    def __init__(
        self,
        loader: DataLoader,
        start: int,
        seed: int,
        pool: WorkerPool | None,
        own: bool,
        check_user_generators: bool,
    ):
        self._loader = loader
        self._check_user_generators = check_user_generators and pool is not None  # (on the first batch)
        self._token = loader._token
        self._seed, self._epoch = seed, loader.epoch
        self._pool = pool
        # The finalizer holds the pool's method, never `self`, so the iterator can still be collected.
        self._finalizer = weakref.finalize(self, pool.close_when_collected) if own else None
        self._next = start  # position of the next batch handed out
        self._done = False

    def __iter__(self) -> _LoaderIterator:
        return self

    def _check_current(self) -> None:
        """Refuse to go on once a newer ``iter(loader)`` has taken over the persistent workers."""
        if self._pool is not None and self._finalizer is None and self._token != self._loader._token:
            raise RuntimeError(
                "this DataLoader iterator was superseded: a newer iter(loader) reuses the persistent workers"
            )

    def _advance(self) -> None:
        """A batch was handed out: move on, and record the position on the loader if still its newest."""
        self._next += 1
        if self._token == self._loader._token:
            self._loader._yielded = self._next

    def close(self) -> None:
        """Stop this epoch's workers (non-persistent pools); called at the end, on errors and on GC."""
        self._done = True
        # Closed here, not through the finalizer: a Ctrl-C while the workers end is raised to the caller.
        if self._finalizer is not None and self._finalizer.detach() is not None:
            self._pool.close()


class _EpochIterator(_LoaderIterator):
    """One pass over the batches ``start .. len(batches)-1`` of one epoch."""

    def __init__(
        self,
        loader: DataLoader,
        batches: list[np.ndarray],
        start: int,
        pool: WorkerPool | None,
        own: bool,
        check_user_generators: bool = False,
    ):
        super().__init__(loader, start, loader._augmentation_seed(), pool, own, check_user_generators)
        self._batches = batches
        self._end = len(batches)
        self._submitted = start  # next batch to submit to the pool
        self._job = loader._job() if pool is None else None
        self._in_flight = loader.num_workers * (loader.prefetch_factor or 0)  # (None without workers)

    def __next__(self) -> Any:
        loader = self._loader
        if self._done or self._next >= self._end:
            self.close()
            raise StopIteration
        self._check_current()
        b = self._next
        try:
            if self._pool is None:
                batch = self._job.load(b, self._batches[b], self._seed, self._epoch)
            else:
                while self._submitted < min(self._end, b + self._in_flight):
                    self._pool.submit(
                        self._submitted, self._batches[self._submitted], self._seed, self._epoch
                    )
                    self._submitted += 1
                batch = self._pool.get(b, loader.timeout or None)
                if self._check_user_generators:
                    self._check_user_generators = False
                    loader._warn_user_generators(self._pool, b)
            batch = loader._to_batch(batch, b)
        except BaseException:
            self.close()
            raise
        if self._token == loader._token:
            loader._current_batch = self._batches[b]  # (`DataLoader.current_batch_indices`)
        self._advance()
        return batch

    def __len__(self) -> int:
        return 0 if self._done else self._end - self._next


class _StreamIterator(_LoaderIterator):
    """One pass over an iterable dataset: its batches, read here or by the workers in turn, this rank's
    share of them (when sharded), from batch ``start`` of that share on."""

    def __init__(
        self,
        loader: DataLoader,
        start: int,
        pool: WorkerPool | None,
        own: bool,
        check_user_generators: bool = False,
    ):
        super().__init__(loader, start, loader.seed, pool, own, check_user_generators)
        self._start = start
        # The readers are module-level generators, given what they need rather than `self`: a generator
        # holding `self` would make a reference cycle, and a `for` loop left early would then leave this
        # iterator (and its workers) to a later cyclic garbage collection instead of stopping them at once.
        seed_epoch = (self._seed, self._epoch)
        batches = (
            _read_stream(loader._job(), *seed_epoch)
            if pool is None
            else _read_stream_from_workers(
                pool, loader.num_workers, loader.prefetch_factor, loader.timeout, *seed_epoch
            )
        )
        shard = loader._shard()
        if shard is not None:
            batches = shard_stream(
                batches,
                rank=shard[0],
                world_size=shard[1],
                drop_last=loader.drop_last,
                on_padding=_weak_call(weakref.WeakMethod(self._name_padding))
                if loader.pad_shards is False
                else None,
            )
        # A resume reads the stream again and skips what was yielded (not converted to MLX).
        self._batches = itertools.islice(batches, start, None)
        self._repeat_bound = loader._stream_batch_bound() if pool is not None and shard is None else None

    def _name_padding(self) -> None:
        """The batch about to be handed out repeats one from the stream's start (this rank was a batch
        short): `padding_batches` names it, so evaluation weighs it 0."""
        if self._token == self._loader._token:
            self._loader._padding_batches = frozenset({self._next})

    def __next__(self) -> Any:
        loader = self._loader
        if self._done:
            raise StopIteration
        self._check_current()
        try:
            position, batch = next(self._batches)
            if position == self._repeat_bound:
                loader._warn_stream_repeated(position)
            if self._check_user_generators:
                self._check_user_generators = False
                loader._warn_user_generators(self._pool, self._start)
            batch = loader._to_batch(batch, position)
        except StopIteration:
            self.close()
            if self._token == loader._token:
                loader._stream_length = self._next
            raise
        except BaseException:
            self.close()
            raise
        self._advance()
        return batch


def _weak_call(method: weakref.WeakMethod) -> Callable[[], None]:
    """A callable that calls `method` while its object lives: a generator given a bound method would hold
    its object, the reference cycle the stream readers avoid (see `_StreamIterator.__init__`)."""

    def call() -> None:
        bound = method()
        if bound is not None:
            bound()

    return call


def _read_stream(job: BatchJob, seed: int, epoch: int) -> Iterator[tuple[int, Any]]:
    """(position, batch) of every batch of an iterable dataset's stream, read in this thread."""
    stream = StreamState()
    for position in itertools.count():
        batch = _at(position, job.load_stream, stream, 0, seed, epoch)
        if batch is STREAM_END:
            return
        yield position, batch


def _read_stream_from_workers(
    pool: WorkerPool, num_workers: int, prefetch_factor: int, timeout: float, seed: int, epoch: int
) -> Iterator[tuple[int, Any]]:
    """(position, batch) of every batch, as PyTorch orders them: one from each worker in turn, each
    worker's in the order of its stream, skipping workers whose stream has ended. This order does not
    depend on timing, so a resume that skips the first batches skips the same ones."""
    n = num_workers
    pending: deque[tuple[int, int]] = deque()  # (request, worker), in the order they are due
    ended: set[int] = set()
    cursor = request = position = 0
    while True:
        while len(pending) < n * prefetch_factor and len(ended) < n:
            while cursor % n in ended:
                cursor += 1
            pool.submit(request, None, seed, epoch, worker=cursor % n)
            pending.append((request, cursor % n))
            cursor, request = cursor + 1, request + 1
        if not pending:
            return
        r, worker = pending.popleft()
        batch = _at(position, pool.get, r, timeout or None)
        if batch is STREAM_END:
            ended.add(worker)  # its requests still pending also answer STREAM_END
            continue
        yield position, batch
        position += 1


def _at(position: int, read: Callable, *args: Any) -> Any:
    """``read(*args)``, with a failure's `DataLoaderError.batch_index` set to ``position`` in the stream
    (a worker knows only its own share of the stream)."""
    try:
        return read(*args)
    except DataLoaderError as exc:
        if exc.batch_index is None:
            exc.batch_index = position
        raise
