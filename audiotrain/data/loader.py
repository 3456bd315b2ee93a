"""`DataLoader`: batches from a map-style dataset, with workers, a resumable order and MLX conversion."""

from __future__ import annotations

import numbers
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from audiotrain.data.collate import default_collate, to_mlx
from audiotrain.data.dataset import check_dataset
from audiotrain.data.sampler import epoch_order, num_batches, sampler_order
from audiotrain.data.workers import BatchJob, DataLoaderError, WorkerPool

import numpy as np

_WORKER_TYPES = ("thread", "process")


def _as_callables(name: str, value: Any) -> tuple[Callable, ...]:
    """``None``, one callable, or a sequence of callables (applied in order) -> tuple of callables."""
    if value is None:
        return ()
    fns = (value,) if callable(value) else tuple(value) if isinstance(value, (list, tuple)) else None
    if fns is None or not all(callable(f) for f in fns):
        raise TypeError(f"{name} must be a callable or a list of callables, got {type(value).__name__}")
    return fns


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"DataLoader {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


class DataLoader:
    """Iterate over a dataset in batches, PyTorch style, ending in ``mx.array`` batches.

    Each batch goes through: ``dataset[i]`` -> ``cpu_transforms`` (per sample, numpy, in workers) ->
    ``collate_fn`` (in workers; default `default_collate` stacks into numpy arrays) -> on the main
    thread, ``mlx_transforms`` if given, otherwise numpy leaves become ``mx.array`` (float64 -> float32,
    int64 -> int32). Conversion to MLX happens once, on the thread that trains.

    The sample order is a pure function of ``(seed, epoch)``: epoch ``e`` visits
    ``np.random.default_rng([seed, e]).permutation(len(dataset))`` when ``shuffle`` (else ``0..n-1``).
    Every ``iter(loader)`` starts the next epoch unless `set_epoch` chose one; `state_dict` /
    `load_state_dict` resume in the middle of an epoch without loading the skipped samples.

    Parameters
    ----------
    dataset : Dataset or any object with ``__len__`` and ``__getitem__(int)``
    batch_size : int
        Samples per batch. The last batch of an epoch is shorter unless ``drop_last``.
    shuffle : bool
        Visit samples in a new random order each epoch.
    num_workers : int
        Worker threads or processes; 0 loads in the main thread.
    collate_fn : callable, optional
        ``list of samples -> batch``; runs in the workers. Default `default_collate`.
    drop_last : bool
        Drop the last batch when it is shorter than ``batch_size``.
    prefetch_factor : int
        Batches loaded ahead per worker (``num_workers * prefetch_factor`` in flight).
    worker_type : {"thread", "process"}
        Threads share memory and start instantly, good when ``__getitem__`` releases the GIL (numpy,
        soundfile, file I/O). Processes sidestep the GIL for Python-heavy transforms; the dataset, transforms
        and collate_fn are pickled to each worker, so they must be defined at module level, and scripts need
        an ``if __name__ == "__main__":`` guard (processes are started with ``multiprocessing_context``).
    persistent_workers : bool
        Keep the workers alive between epochs (requires ``num_workers > 0``).
    cpu_transforms : callable or list of callables, optional
        ``sample -> sample`` on numpy data, per sample, in the workers.
    mlx_transforms : callable or list of callables, optional
        ``batch -> batch`` on the main thread, replacing the automatic numpy -> MLX conversion; it must
        return ``mx.array`` leaves for the Trainer.
    seed : int, optional
        Seed of the shuffle order. None: the Trainer sets its seed with `set_seed`; a loader used on its
        own draws a random seed on first use (recorded in `state_dict`, so a resume is still exact).
    sampler : iterable of int, optional
        Custom order (a ``torch.utils.data.Sampler`` works); exclusive with ``shuffle``. If it has
        ``set_epoch``, it is called with the epoch.
    timeout : float
        Seconds to wait for one batch from the workers before raising; 0 waits forever.
    multiprocessing_context : str
        Start method for process workers: ``"spawn"`` (default, safe with MLX threads), ``"forkserver"``
        or ``"fork"``.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        num_workers: int = 0,
        collate_fn: Callable[[list], Any] | None = None,
        drop_last: bool = False,
        prefetch_factor: int = 2,
        worker_type: str = "thread",
        persistent_workers: bool = False,
        cpu_transforms: Callable | Sequence[Callable] | None = None,
        mlx_transforms: Callable | Sequence[Callable] | None = None,
        seed: int | None = None,
        sampler: Iterable[int] | None = None,
        timeout: float = 0,
        multiprocessing_context: str = "spawn",
    ) -> None:
        check_dataset(dataset)
        self.dataset = dataset
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.num_workers = _check_int("num_workers", num_workers, 0)
        self.prefetch_factor = _check_int("prefetch_factor", prefetch_factor, 1)
        if worker_type not in _WORKER_TYPES:
            raise ValueError(f"DataLoader worker_type must be 'thread' or 'process', got {worker_type!r}")
        if persistent_workers and self.num_workers == 0:
            raise ValueError(
                "DataLoader persistent_workers=True needs num_workers > 0 (there are no workers)"
            )
        if sampler is not None and shuffle:
            raise ValueError(
                "DataLoader sampler and shuffle=True are exclusive: the sampler defines the order"
            )
        if sampler is not None and not hasattr(sampler, "__len__"):
            raise TypeError(f"DataLoader sampler must have __len__, got {type(sampler).__name__}")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader collate_fn must be callable, got {type(collate_fn).__name__}")
        if not isinstance(timeout, numbers.Real) or timeout < 0:
            raise ValueError(f"DataLoader timeout must be a number of seconds >= 0, got {timeout!r}")
        if multiprocessing_context not in ("spawn", "forkserver", "fork"):
            raise ValueError(
                f"DataLoader multiprocessing_context must be 'spawn', 'forkserver' or 'fork', "
                f"got {multiprocessing_context!r}"
            )
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.worker_type = worker_type
        self.persistent_workers = bool(persistent_workers)
        self.sampler = sampler
        self.timeout = float(timeout)
        self.multiprocessing_context = multiprocessing_context
        self.collate_fn = collate_fn if collate_fn is not None else default_collate
        self.cpu_transforms = _as_callables("cpu_transforms", cpu_transforms)
        self.mlx_transforms = _as_callables("mlx_transforms", mlx_transforms)
        self._seed: int | None = None
        if seed is not None:
            self.set_seed(seed)
        self._epoch = 0
        self._started = False  # has an iteration of self._epoch begun?
        self._resume_at = 0  # batches of self._epoch to skip on the next iteration (after load_state_dict)
        self._yielded = 0  # batches of self._epoch handed out so far
        self._token = 0  # identifies the newest iterator; older ones stop updating the position
        self._pool: WorkerPool | None = None  # the persistent pool

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

    def __len__(self) -> int:
        """Number of batches in one epoch."""
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        return num_batches(n, self.batch_size, self.drop_last)

    def _epoch_indices(self, epoch: int) -> np.ndarray:
        n = len(self.dataset)
        if self.sampler is not None:
            return sampler_order(self.sampler, epoch, n)
        return epoch_order(n, shuffle=self.shuffle, seed=self._seed, epoch=epoch)

    # ------------------------------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable position: seed, epoch, batches yielded in it, and what the order depends on.

        ``seed`` is None only before the first iteration of a loader built without one.
        """
        return {
            "seed": self._seed,
            "epoch": self._epoch,
            "batches_yielded": self._yielded if self._started else self._resume_at,
            "num_batches": len(self),
            "num_samples": len(self.dataset),
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a position from `state_dict`: the next iteration continues that epoch at that batch.

        A finished epoch restores as the start of the next one. Raises ValueError when the dataset length,
        batch size, shuffle or drop_last differ from the saved ones (the order would not be the same).
        """
        missing = {"seed", "epoch", "batches_yielded"} - set(state)
        if missing:
            raise ValueError(f"DataLoader state is missing {sorted(missing)}; got keys {sorted(state)}")
        current = self.state_dict()
        for key in ("num_samples", "batch_size", "shuffle", "drop_last", "num_batches"):
            if key in state and state[key] != current[key]:
                raise ValueError(
                    f"cannot resume the DataLoader position: the checkpoint has {key}={state[key]!r}, this "
                    f"loader has {key}={current[key]!r}, so batches would not line up"
                )
        if state["seed"] is not None:
            self.set_seed(state["seed"])
        epoch = _check_int("state['epoch']", state["epoch"], 0)
        done = _check_int("state['batches_yielded']", state["batches_yielded"], 0)
        if done > len(self):
            raise ValueError(
                f"DataLoader state has batches_yielded={done} but an epoch has {len(self)} batches"
            )
        if done == len(self):
            epoch, done = epoch + 1, 0
        self._epoch, self._resume_at, self._started, self._yielded = epoch, done, False, 0

    def _draw_seed(self) -> None:
        # Fresh OS entropy, folded to 63 bits so that it is a JSON-safe non-negative int.
        self._seed = int(np.random.SeedSequence().entropy % (2**63))

    # ------------------------------------------------------------------------------------------ iteration

    def __iter__(self) -> Iterator[Any]:
        if self._seed is None:
            self._draw_seed()
        if self._started:
            self._epoch, self._resume_at = self._epoch + 1, 0
        self._started, self._token = True, self._token + 1
        start, self._resume_at = self._resume_at, 0
        self._yielded = start
        if hasattr(self.dataset, "set_epoch"):
            # Datasets that draw per-epoch choices (crops, captions) learn the epoch here. Persistent
            # process workers hold their own copy: such datasets should draw from `batch_rng()` instead.
            self.dataset.set_epoch(self._epoch)
        order = self._epoch_indices(self._epoch)
        pool, own_pool = None, False
        if self.num_workers > 0 and start < len(self):
            if self.persistent_workers:
                if self._pool is None or not self._pool.healthy():
                    self.close()
                    self._pool = self._new_pool()
                    weakref.finalize(self, self._pool.close)
                else:
                    self._pool.reset()
                pool = self._pool
            else:
                pool, own_pool = self._new_pool(), True
        return _EpochIterator(self, order, start, pool, own_pool)

    def _job(self) -> BatchJob:
        return BatchJob(self.dataset, self.cpu_transforms, self.collate_fn)

    def _new_pool(self) -> WorkerPool:
        return WorkerPool(self._job(), self.num_workers, self.worker_type, self.multiprocessing_context)

    def _to_batch(self, batch: Any, batch_index: int) -> Any:
        """Main-thread step: ``mlx_transforms`` if given, else numpy -> ``mx.array``."""
        if not self.mlx_transforms:
            return to_mlx(batch)
        for k, transform in enumerate(self.mlx_transforms):
            try:
                batch = transform(batch)
            except Exception as exc:
                stage = (
                    f"mlx_transforms[{k}] ({getattr(transform, '__qualname__', type(transform).__name__)})"
                )
                raise DataLoaderError(
                    f"{stage} failed on batch {batch_index}: {type(exc).__name__}: {exc}",
                    batch_index=batch_index,
                    stage=stage,
                ) from exc
        return batch

    def close(self) -> None:
        """Stop persistent workers now (they also stop when the loader is garbage collected)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __repr__(self) -> str:
        return (
            f"DataLoader({type(self.dataset).__name__}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"num_workers={self.num_workers}, worker_type={self.worker_type!r}, seed={self._seed})"
        )


class _EpochIterator:
    """One pass over the batches ``start .. len(loader)-1`` of one epoch."""

    def __init__(self, loader: DataLoader, order: np.ndarray, start: int, pool: WorkerPool | None, own: bool):
        self._loader = loader
        self._order = order
        self._token = loader._token
        self._seed, self._epoch = loader.seed, loader.epoch
        self._bs = loader.batch_size
        self._end = num_batches(len(order), self._bs, loader.drop_last)
        self._next = start  # next batch to hand out
        self._submitted = start  # next batch to submit to the pool
        self._pool = pool
        self._job = loader._job() if pool is None else None
        self._finalizer = weakref.finalize(self, pool.close) if own else None
        self._in_flight = loader.num_workers * loader.prefetch_factor

    def __iter__(self) -> _EpochIterator:
        return self

    def _indices(self, b: int) -> np.ndarray:
        return self._order[b * self._bs : (b + 1) * self._bs]

    def __next__(self) -> Any:
        loader = self._loader
        if self._next >= self._end:
            self.close()
            raise StopIteration
        if self._pool is not None and self._finalizer is None and self._token != loader._token:
            raise RuntimeError(
                "this DataLoader iterator was superseded: a newer iter(loader) reuses the persistent workers"
            )
        b = self._next
        try:
            if self._pool is None:
                batch = self._job.load(b, self._indices(b), self._seed, self._epoch)
            else:
                while self._submitted < min(self._end, b + self._in_flight):
                    self._pool.submit(
                        self._submitted, self._indices(self._submitted), self._seed, self._epoch
                    )
                    self._submitted += 1
                batch = self._pool.get(b, loader.timeout or None)
            batch = loader._to_batch(batch, b)
        except BaseException:
            self.close()
            raise
        self._next = b + 1
        if self._token == loader._token:
            loader._yielded = self._next
        return batch

    def __len__(self) -> int:
        return self._end - self._next

    def close(self) -> None:
        """Stop this epoch's workers (non-persistent pools); called at the end, on errors and on GC."""
        self._next = self._end
        if self._finalizer is not None:
            self._finalizer()
