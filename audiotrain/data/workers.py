"""Loading batches: the per-batch job, and thread / process worker pools that return results in order.

Design
------
A `BatchJob` (dataset + cpu_transforms + collate_fn) turns a list of sample indices into one collated
numpy batch. Workers run it; the loader submits batch ``b`` to worker ``b % num_workers`` (round robin,
so which worker loads which batch is deterministic) and reads results back in submission order.
For an iterable dataset a task carries no indices: the worker reads its next batch from its own pass
over its own copy of the dataset (`StreamState`), or answers "end" once that pass is over.
Every task and result carries a *generation* number: starting a new epoch on a persistent pool bumps it,
so results still in flight from an abandoned epoch are dropped instead of being mistaken for new ones.

Failures never hang the main process: workers catch every exception from user code and send the sample
index and the formatted traceback back as data (an exception object may not survive pickling); the main
process polls worker liveness while it waits, so a worker killed by the OS is reported too.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import copy
import dataclasses
import errno
import multiprocessing as mp
import multiprocessing.util  # noqa: F401  (its exit handler registered before `_end_process_workers_at_exit`)
import numbers
import os
import pickle
import queue
import random
import resource
import signal
import sys
import threading
import time
import traceback
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from audiotrain._stop_signals import STOP_SIGNALS
from audiotrain._thread_streams import clear_streams_when_thread_ends
from audiotrain.data.dataset import epoch_setters

import numpy as np

# How often a blocked worker checks whether it should exit, and how often the main process checks
# worker liveness while waiting for a batch (seconds). Results arrive without waiting for these.
_WORKER_POLL_S = 1.0
_MAIN_POLL_S = 0.5
# How long `close` waits for workers to exit on their own before terminating them (seconds).
_JOIN_TIMEOUT_S = 5.0


def _too_many_files_message(num_workers: int, processes: bool) -> str:
    """Why `num_workers` workers could not start: the process (or the system) has no file descriptor left
    for their pipes; the raw OSError came from deep inside multiprocessing and named none of this."""
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    kind = "worker processes" if processes else "worker threads"
    fewer = "use fewer workers (num_workers) or worker_type='thread'" if processes else "use fewer workers"
    return (
        f"DataLoader: cannot start {num_workers} {kind}: too many open files (this process may hold {limit}; "
        f"ulimit -n); close files, raise the limit (ulimit -n), or {fewer}"
    )


class DataLoaderError(RuntimeError):
    """A sample, transform or collate function failed while loading a batch, or a worker died.

    Attributes
    ----------
    index : int or None
        Dataset index of the failing sample, or the key a user sampler yielded for it (None when the whole
        batch failed, e.g. in ``collate_fn``, and for iterable datasets, whose items the message names by
        their position in the stream).
    batch_index : int or None
        Position of the batch in its epoch (for iterable datasets, in the stream of all ranks).
    stage : str or None
        Where it failed: ``"dataset[i]"``, ``"cpu_transforms[k]"``, ``"collate_fn"``, ``"mlx_transforms"``,
        ``"worker"`` (the worker itself died or timed out), ``"worker_init_fn"``, ``"dataset.set_epoch"``,
        ``"to_mlx"``, for iterable datasets ``"iter(dataset)"`` (starting or reading the stream), and
        ``"torch.utils.data.get_worker_info"`` (called in a thread worker, where it cannot answer).
    worker_id : int or None
        The worker that failed (its ``get_worker_info().id``): a worker's ``worker_init_fn``, a sample or
        batch it loaded, or the worker that died (the one the message names); None where the main process
        loaded the batch (``num_workers=0``).
    exit_code : int or None
        A worker process's exit code when it died (negative: the signal that ended it), else None.
    worker_traceback : str or None
        The traceback text from the worker process (process workers only; with threads and
        ``num_workers=0`` the original exception is chained as ``__cause__``).
    original_type : type or None
        The type of the exception raised by the dataset, transform, collate_fn or worker_init_fn. The error
        is an instance of that type too (a class made for it, named ``DataLoaderError[KeyError]``), so code
        that catches the dataset's own errors (``except KeyError``) still does, as with PyTorch, which
        re-raises the original type (a ``RuntimeError`` or ``Exception`` is kept here too: the error already
        is one). None where there is no such exception (a dead worker, a timeout), or where no class can
        derive from both (``StopIteration``, which would end the epoch in silence).
    """

    original_type: type[Exception] | None = None
    # The message as given, also when the error is a KeyError, whose str() would show its repr.
    __str__ = BaseException.__str__

    def __init__(
        self,
        message: str,
        *,
        index: int | None = None,
        batch_index: int | None = None,
        stage: str | None = None,
        worker_traceback: str | None = None,
        worker_id: int | None = None,
        exit_code: int | None = None,
    ) -> None:
        # RuntimeError's, not the next class's in the MRO: an original type's __init__ may want other
        # arguments.
        RuntimeError.__init__(self, message)
        self.index = index
        self.batch_index = batch_index
        self.stage = stage
        self.worker_traceback = worker_traceback
        self.worker_id = worker_id
        self.exit_code = exit_code

    @property
    def killed_by_stop_signal(self) -> bool:
        """A worker process died of a stop signal (Ctrl-C, SIGTERM, SIGUSR1: `STOP_SIGNALS`), one sent to the
        whole process group that reached it before it could ignore it: during a stop, the stop itself."""
        return self.exit_code is not None and -self.exit_code in STOP_SIGNALS

    def __reduce__(self) -> tuple:
        # A class made for an original type cannot be pickled by name: rebuild it from that type.
        return (_unpickle_error, (self.original_type, self.args), self.__dict__)


_ERROR_TYPES: dict[type, type[DataLoaderError]] = {}


def error_type(original: type | None) -> type[DataLoaderError]:
    """`DataLoaderError`, made also a subclass of ``original`` (the dataset's exception type) where it can."""
    if (
        not isinstance(original, type)
        or not issubclass(original, Exception)
        or issubclass(DataLoaderError, original)  # Exception, RuntimeError
        or issubclass(original, DataLoaderError | StopIteration | StopAsyncIteration)
    ):
        return DataLoaderError
    made = _ERROR_TYPES.get(original)
    if made is None:
        name = f"DataLoaderError[{original.__name__}]"
        try:
            made = type(name, (DataLoaderError, original), {"__qualname__": name, "original_type": original})
        except TypeError:  # a class that cannot be subclassed, or whose instances cannot also be ours
            made = DataLoaderError
        _ERROR_TYPES[original] = made
    return made


def loader_error(message: str, original: type | None = None, **fields: Any) -> DataLoaderError:
    """A `DataLoaderError` that is also an ``original`` (see `DataLoaderError.original_type`)."""
    err = error_type(original)(message, **fields)
    if isinstance(original, type) and issubclass(DataLoaderError, original):
        # RuntimeError, Exception: no class is made for them (the error already is one), but the type
        # the user's code raised is still worth keeping.
        err.original_type = original
    return err


def _unpickle_error(original: type | None, args: tuple) -> DataLoaderError:
    cls = error_type(original)
    err = cls.__new__(cls, *args)
    RuntimeError.__init__(err, *args)
    return err


# ---------------------------------------------------------------------------------------------- batch rng

_local = threading.local()


def batch_rng() -> np.random.Generator:
    """A random generator for augmentation, seeded from (loader seed, epoch, batch index).

    Call it inside ``dataset.__getitem__``, ``cpu_transforms`` or ``collate_fn``: within one batch the
    calls share one generator, and the numbers are the same for any ``num_workers`` and ``worker_type``
    and after a resume (global ``np.random`` in threads is shared and racy, so it cannot give this).
    For an iterable dataset (also inside its ``__iter__``) the generator is seeded from (loader seed,
    epoch, batch of the worker's stream, worker): the same after a resume, but not across ``num_workers``,
    which changes how the stream is split anyway.
    """
    key = getattr(_local, "key", None)
    if key is None:
        raise RuntimeError(
            "batch_rng() is only available while a DataLoader loads a batch (inside dataset.__getitem__, "
            "cpu_transforms or collate_fn)"
        )
    if _local.rng is None:
        _local.rng = np.random.default_rng(list(key))
    return _local.rng


@dataclass(frozen=True)
class WorkerInfo:
    """What `get_worker_info` tells the code running in a loader worker (as PyTorch's ``WorkerInfo``).

    Attributes
    ----------
    id : int
        This worker, ``0 .. num_workers - 1``.
    num_workers : int
    seed : int
        A seed for this worker, drawn from (loader seed, epoch, id): different per worker and per epoch,
        the same after a resume (PyTorch's is ``base_seed + id``, with a fresh base seed per epoch). A
        process worker seeds ``random``, ``np.random``, ``mx.random`` and torch's generator from it when it
        starts (before ``worker_init_fn``) and at each epoch; before each batch of a map-style dataset it
        seeds them again from (loader seed, epoch, batch) (`batch_seed`), so that a resume that skips batches
        draws what an uninterrupted run drew. A generator that ``worker_init_fn`` seeded (or drew from) is
        left to it from then on, as in PyTorch.
    dataset : object
        This worker's copy of the dataset: a process worker's unpickled copy; for an iterable dataset
        in thread workers a ``copy.copy`` per worker, so that setting attributes on it (a start and end
        of the worker's share) stays in the worker; for a map-style dataset in threads, the dataset itself.
    """

    id: int
    num_workers: int
    seed: int
    dataset: Any


def get_worker_info() -> WorkerInfo | None:
    """In a `DataLoader` worker (thread or process), its `WorkerInfo`; None in the main thread.

    Call it in an iterable dataset's ``__iter__`` to give each worker its own share of the stream::

        def __iter__(self):
            info = get_worker_info()
            files = self.files if info is None else self.files[info.id :: info.num_workers]
            ...

    Also available in ``worker_init_fn``, ``__getitem__``, ``cpu_transforms`` and ``collate_fn``.
    """
    return getattr(_local, "worker_info", None)


def worker_seed(seed: int, epoch: int, worker_id: int) -> int:
    """`WorkerInfo.seed`: a non-negative 63-bit int, a pure function of its arguments."""
    return int(np.random.SeedSequence([seed, epoch, worker_id]).generate_state(1, np.uint64)[0]) >> 1


# torch's worker info lives in this module (`torch.utils.data.get_worker_info` returns its `_worker_info`).
_TORCH_WORKER_MODULE = "torch.utils.data._utils.worker"


def batch_seed(seed: int, epoch: int, batch_index: int) -> int:
    """The seed a process worker gives its global generators before it loads batch ``batch_index`` of a
    map-style dataset: a pure function of (loader seed, epoch, batch), whichever worker loads the batch."""
    # (A spawn key keeps it apart from batch_rng's generator, which is seeded from the same three numbers.)
    sequence = np.random.SeedSequence([seed, epoch, batch_index], spawn_key=(1,))
    return int(sequence.generate_state(1, np.uint64)[0]) >> 1


def _set_worker_info(info: WorkerInfo, is_process: bool, user_seeded: frozenset[str] = frozenset()) -> None:
    """Make ``info`` what `get_worker_info` answers in this worker, at its start and at each new epoch.

    A process worker also seeds its own global generators from ``info.seed`` (except those
    ``user_seeded``, see `seed_global_generators`), as PyTorch's workers do: otherwise forked workers
    would all draw the same numbers, and spawned ones numbers no seed repeats. Reseeding at every epoch
    makes what ``worker_init_fn``, ``dataset.set_epoch`` and a stream draw a function of (loader seed,
    epoch, worker), with persistent workers or not, and after a resume. Thread workers share these
    generators with the training thread, whose state a checkpoint saves: they are left alone (use
    `batch_rng` there).
    """
    _local.worker_info = info
    if not is_process:
        return
    seed_global_generators(info.seed, user_seeded)
    _publish_to_torch(info)


#: A process's global generators, which a process worker seeds: Python's, numpy's legacy one, MLX's,
#: torch's. (MLX's as PyTorch's workers seed torch's: the framework's own, which augmentation draws from.)
GLOBAL_GENERATORS = ("random", "np.random", "mx.random", "torch")


def seed_global_generators(seed: int, user_seeded: frozenset[str] = frozenset()) -> None:
    """Seed this process's `GLOBAL_GENERATORS` from ``seed`` (torch's when it is imported), except those
    in ``user_seeded``: the ones ``worker_init_fn`` seeded or drew from, the user's from then on."""
    if "random" not in user_seeded:
        random.seed(seed)
    if "np.random" not in user_seeded:
        np.random.seed(np.random.SeedSequence(seed).generate_state(4))
    if "mx.random" not in user_seeded:
        # Imported, not looked up in sys.modules as torch is: a worker has mlx.core already (audiotrain.data
        # imports it, and the import makes MLX's global key array, so no device memory is new here), and a
        # dataset that imports mlx lazily still draws seeded numbers.
        import mlx.core as mx

        mx.random.seed(seed)
    torch = sys.modules.get("torch")
    if "torch" not in user_seeded and torch is not None and callable(getattr(torch, "manual_seed", None)):
        torch.manual_seed(seed)


def _generator_states() -> dict[str, Any]:
    """Comparable snapshots of `GLOBAL_GENERATORS` (torch's where it is imported)."""
    import mlx.core as mx

    states = {
        "random": random.getstate(),
        "np.random": pickle.dumps(np.random.get_state()),
        "mx.random": bytes(memoryview(mx.random.state[0])),
    }
    torch = sys.modules.get("torch")
    if torch is not None and callable(getattr(torch, "get_rng_state", None)):
        states["torch"] = bytes(torch.get_rng_state().numpy())
    return states


_said_thread_seeding = False
_states_after_thread_init: set[tuple[str, Any]] = set()
_thread_init_lock = threading.Lock()


def _watch_global_seeding_in_threads(worker_init_fn: Callable, changed: frozenset[str]) -> None:
    """PyTorch's `seed_worker` idiom (``np.random.seed(torch.initial_seed() % 2**32)`` in worker_init_fn)
    in a thread worker: the global generators are the process's, shared by every worker and the training
    loop, and ``torch.initial_seed()`` is the process's too, so each worker, each time the workers start,
    puts them back to one state. Said (once a process) where a thread worker's worker_init_fn leaves a
    generator in a state one left it in before: a seeding, not draws another thread made meanwhile."""
    global _said_thread_seeding
    states = _generator_states()
    with _thread_init_lock:
        repeated = sorted(name for name in changed if (name, states.get(name)) in _states_after_thread_init)
        _states_after_thread_init.update((name, states.get(name)) for name in changed)
        if not repeated or _said_thread_seeding:
            return
        _said_thread_seeding = True
    names = repeated
    warnings.warn(
        f"DataLoader: worker_init_fn ({_name(worker_init_fn)}) seeds {', '.join(names)}'s global generator "
        "to the same state in thread workers. Thread workers share the process's global generators with each other "
        "and with the training loop, so every worker, each time the workers start, and the training loop's "
        "own draws begin again from that seed (an augmentation that repeats every epoch). Use "
        "DataLoader(..., worker_type='process') for a generator per worker as in PyTorch, or draw "
        "augmentation from audiotrain.data.batch_rng() (the same numbers for any workers and after a resume)",
        stacklevel=2,
    )


#: Set in a DataLoader worker process's environment: its imports (the main script's again, under spawn)
#: do not repeat the parent's import-order warning (audiotrain._blas) once per worker.
WORKER_ENV_VAR = "AUDIOTRAIN_DATA_WORKER"


@contextlib.contextmanager
def _in_worker_environment(is_process: bool):
    """While worker processes start, they inherit `WORKER_ENV_VAR` (the parent's own environment after is
    as before)."""
    if not is_process:
        yield
        return
    before = os.environ.get(WORKER_ENV_VAR)
    os.environ[WORKER_ENV_VAR] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(WORKER_ENV_VAR, None)
        else:
            os.environ[WORKER_ENV_VAR] = before


def generators_changed(before: dict[str, Any]) -> frozenset[str]:
    """The global generators whose state is no longer ``before`` (`_generator_states`). Not torch's if it
    was imported since: torch seeds itself at random when imported, so its state says nothing of a seed."""
    after = _generator_states()
    return frozenset(name for name, state in after.items() if name in before and state != before[name])


def _publish_to_torch(info: WorkerInfo) -> None:
    """In a process worker, where torch is imported: let ``torch.utils.data.get_worker_info()`` answer
    ``info`` too, so that a torch ``IterableDataset`` written as the PyTorch docs show (splitting its
    stream by torch's worker info) reads its share, not the whole stream. torch is never imported here."""
    module = sys.modules.get(_TORCH_WORKER_MODULE)
    if module is None or getattr(_local, "torch_info_of", None) is info:
        return
    _local.torch_info_of = info
    try:
        module._worker_info = module.WorkerInfo(
            id=info.id, num_workers=info.num_workers, seed=info.seed, dataset=info.dataset
        )
    except Exception as exc:  # torch's internals changed: say so rather than split nothing in silence
        warnings.warn(
            f"DataLoader worker {info.id} could not set torch.utils.data.get_worker_info() "
            f"({type(exc).__name__}: {exc}); it returns None in this worker: use "
            "audiotrain.data.get_worker_info() instead",
            RuntimeWarning,
            stacklevel=2,
        )


@contextlib.contextmanager
def _watch_torch_worker_info(on_call: Callable[[], None]):
    """Call ``on_call()`` (in this thread only, with a profile hook) when the code run here calls
    ``torch.utils.data.get_worker_info``, before its body runs. Known by its name and module, not by a
    function looked up now: a dataset that imports torch while it loads (inside ``__iter__``) is seen too."""
    previous = sys.getprofile()
    if previous is not None and not callable(previous):
        # A C profiler (cProfile, which forked process workers inherit) can be neither chained from a Python
        # hook nor set back by sys.setprofile: the worker is left unwatched rather than made to fail.
        yield
        return

    def profile(frame: Any, event: str, arg: Any) -> None:
        if (
            event == "call"
            and frame.f_code.co_name == "get_worker_info"
            and frame.f_globals.get("__name__") == _TORCH_WORKER_MODULE
        ):
            on_call()
        if previous is not None:
            previous(frame, event, arg)

    sys.setprofile(profile)
    try:
        yield
    finally:
        sys.setprofile(previous)


class _OnTorchLoad:
    """A `sys.meta_path` finder: once ``torch.utils.data._utils.worker`` has loaded (a dataset importing
    torch late, ``from torch.utils.data import get_worker_info`` in ``__iter__``), it calls the importing
    thread's ``_local.on_torch_load``, before the import returns. Watching the import, where torch is not
    imported yet, costs the worker's Python nothing, where a profile hook doubles the time of each call."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != _TORCH_WORKER_MODULE:
            return None
        others = (f for f in sys.meta_path if f is not self and hasattr(f, "find_spec"))
        spec = next((s for f in others if (s := f.find_spec(name, path, target)) is not None), None)
        run = getattr(getattr(spec, "loader", None), "exec_module", None)
        if run is not None:

            def exec_then_tell(module: Any) -> None:
                run(module)
                if (on_load := getattr(_local, "on_torch_load", None)) is not None:
                    on_load()

            spec.loader.exec_module = exec_then_tell  # (this module's loader alone)
        return spec


def _watch_torch_load() -> None:
    if not any(isinstance(f, _OnTorchLoad) for f in sys.meta_path):
        sys.meta_path.insert(0, _OnTorchLoad())


def _publish_to_torch_when_asked():
    """In a process worker: set torch's worker info as soon as the dataset imports torch late
    (`_OnTorchLoad`); where it is imported already, it is published before each batch."""
    if _TORCH_WORKER_MODULE not in sys.modules:
        _local.on_torch_load = lambda: _publish_to_torch(_local.worker_info)
        _watch_torch_load()
    return contextlib.nullcontext()


@contextlib.contextmanager
def _watch_torch_worker_info_once_loaded(on_call: Callable[[], None]):
    """`_watch_torch_worker_info` here, from now on if torch is imported, else from the moment this thread
    imports it (`_OnTorchLoad`): a thread worker of a dataset that never imports torch runs unwatched."""
    if _TORCH_WORKER_MODULE in sys.modules:
        with _watch_torch_worker_info(on_call):
            yield
        return
    with contextlib.ExitStack() as watching:
        _local.on_torch_load = lambda: watching.enter_context(_watch_torch_worker_info(on_call))
        _watch_torch_load()
        try:
            yield
        finally:
            _local.on_torch_load = None


@contextlib.contextmanager
def _no_torch_worker_info_in_threads(worker_id: int):
    """In a thread worker: raise `DataLoaderError` if the code run here called torch's ``get_worker_info``.

    torch keeps one worker info per process, so in a thread it answers None, "the main process": a torch
    ``IterableDataset`` that splits its stream by it would have every worker yield the whole stream, every
    sample ``num_workers`` times. Watched while a worker starts and while it loads the first batch of each
    epoch, where datasets ask, whether torch was imported before or is imported there.
    """
    called = []
    try:
        with _watch_torch_worker_info_once_loaded(lambda: called.append(True)):
            yield
    except Exception as exc:
        if called:
            raise _torch_worker_info_error(worker_id) from exc
        raise
    if called:
        raise _torch_worker_info_error(worker_id)


def _torch_worker_info_error(worker_id: int) -> DataLoaderError:
    return DataLoaderError(
        f"torch.utils.data.get_worker_info() was called in DataLoader worker {worker_id}, a thread, where it "
        "returns None (torch keeps one worker info per process, so it cannot tell threads apart): a dataset "
        "that splits its stream by it would give every worker the whole stream. Call "
        "audiotrain.data.get_worker_info() instead (the same fields, in threads and processes), or pass "
        "worker_type='process' (whose workers set torch's worker info too)",
        stage="torch.utils.data.get_worker_info",
        worker_id=worker_id,
    )


# ---------------------------------------------------------------------------------------------- the job


def _name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def _key(index: Any) -> Any:
    """What ``dataset[...]`` receives: an int for an index (numpy's int64 made a Python int), else the key a
    user sampler yielded, as it is."""
    return int(index) if isinstance(index, numbers.Integral) else index


# What a worker's stream gives once it has ended (sent between processes as the status "end").
STREAM_END = object()


class StreamState:
    """Where one pass over an iterable dataset stands, in one worker (or the main thread)."""

    def __init__(self) -> None:
        self.generation: int | None = None  # the pass (epoch) this iterator belongs to
        self.iterator: Any = None  # None once the pass has ended
        self.items = 0  # items read so far
        self.batches = 0  # batches made so far


@dataclass
class BatchJob:
    """Everything a worker needs to turn sample indices (or its next stream items) into one batch.

    ``auto_collation=False`` (``batch_size=None``): each batch is one sample, given to ``collate_fn`` on
    its own. ``stream_batch_size``: items per batch read from ``iter(dataset)`` (iterable datasets).
    """

    dataset: Any
    cpu_transforms: Sequence[Callable[[Any], Any]]
    collate_fn: Callable[[list], Any]
    worker_init_fn: Callable[[int], Any] | None = None
    auto_collation: bool = True
    stream_batch_size: int | None = None
    drop_last: bool = False

    def replica(self) -> BatchJob:
        """This job over a shallow copy of the dataset: a thread worker's own copy of an iterable dataset.
        Its containers (lists, dicts, sets, deques, bytearrays: a shuffle buffer kept on ``self``) are copied
        too, a level deep, so one worker filling or clearing its own does not change another's; arrays and
        other objects are shared (as read-only data, a copy per worker would cost memory)."""
        try:
            dataset = copy.copy(self.dataset)
            if hasattr(dataset, "__dict__"):
                for name, value in list(vars(dataset).items()):
                    if type(value) in (list, dict, set, collections.deque, bytearray):
                        setattr(dataset, name, copy.copy(value))
        except Exception as exc:
            raise TypeError(
                f"thread workers give each worker its own copy.copy of the iterable dataset "
                f"{type(self.dataset).__name__}, which failed: {type(exc).__name__}: {exc}. Define __copy__, "
                f"or use worker_type='process' or num_workers=0"
            ) from exc
        return dataclasses.replace(self, dataset=dataset)

    def init_worker(self, worker_id: int) -> None:
        """Run ``worker_init_fn(worker_id)`` once, at the start of a worker; raises `DataLoaderError`."""
        if self.worker_init_fn is None:
            return
        try:
            self.worker_init_fn(worker_id)
        except Exception as exc:
            raise loader_error(
                f"worker_init_fn ({_name(self.worker_init_fn)}) failed in DataLoader worker {worker_id}: "
                f"{type(exc).__name__}: {exc}",
                type(exc),
                stage="worker_init_fn",
                worker_id=worker_id,
            ) from exc

    def set_epoch(self, epoch: int, batch_index: int) -> None:
        """``dataset.set_epoch(epoch)`` on a worker's copy of the dataset, which the loader cannot reach."""
        try:
            for dataset in epoch_setters(self.dataset):
                dataset.set_epoch(epoch)
        except Exception as exc:
            raise loader_error(
                f"dataset.set_epoch({epoch}) failed in a DataLoader worker: {type(exc).__name__}: {exc}",
                type(exc),
                batch_index=batch_index,
                stage="dataset.set_epoch",
            ) from exc

    def load(self, batch_index: int, indices: Sequence[int], seed: int, epoch: int) -> Any:
        """Load, transform and collate the samples ``indices``; raises `DataLoaderError` naming the sample."""
        _local.key, _local.rng = (seed, epoch, batch_index), None
        try:
            items = []
            for index in indices:
                index = _key(index)
                what = f"sample {index} (batch {batch_index})"
                try:
                    item = self.dataset[index]
                except Exception as exc:
                    raise self._error(what, "dataset[i]", exc, index=index, batch_index=batch_index) from exc
                items.append(self._transform(item, what, index=index, batch_index=batch_index))
            shown = [_key(i) for i in indices[:8]]
            more = ", ..." if len(indices) > 8 else ""
            samples = f"samples {str(shown)[1:-1]}{more}" if self.auto_collation else f"sample {shown[0]}"
            if len(indices) == 0:  # (only a batch_sampler gives one; a collate_fn of the user's may take it)
                samples = "no samples: the batch_sampler gave an empty batch"
            return self._collate(items, f"batch {batch_index} ({samples})", batch_index)
        finally:
            _local.key, _local.rng = None, None

    def load_stream(self, stream: StreamState, generation: int, seed: int, epoch: int) -> Any:
        """The next batch of ``stream_batch_size`` items of this worker's pass over the dataset, or
        `STREAM_END` when the pass is over (or its last batch is short and ``drop_last``).

        A new ``generation`` (the loader's next epoch) starts a new pass with ``iter(dataset)``.
        """
        if stream.generation != generation:
            stream.generation, stream.iterator, stream.items, stream.batches = generation, None, 0, 0
            info = get_worker_info()
            _local.key, _local.rng = (seed, epoch, 0, 0 if info is None else info.id + 1), None
            try:
                stream.iterator = iter(self.dataset)
            except Exception as exc:
                raise self._error(f"the stream of {self._source()}", "iter(dataset)", exc) from exc
            finally:
                _local.key, _local.rng = None, None
        if stream.iterator is None:
            return STREAM_END
        k, first, source = stream.batches, stream.items, self._source()
        info = get_worker_info()
        _local.key, _local.rng = (seed, epoch, k, 0 if info is None else info.id + 1), None
        try:
            items = []
            while len(items) < self.stream_batch_size:
                what = f"item {stream.items} of {source}"
                try:
                    item = next(stream.iterator)
                except StopIteration:
                    stream.iterator = None
                    break
                except Exception as exc:
                    stream.iterator = None  # a generator that raised is finished
                    raise self._error(what, "iter(dataset)", exc) from exc
                stream.items += 1
                items.append(self._transform(item, what))
            if not items or (self.drop_last and len(items) < self.stream_batch_size):
                stream.iterator = None
                return STREAM_END
            stream.batches += 1
            span = f"item {first}" if len(items) == 1 else f"items {first}..{first + len(items) - 1}"
            return self._collate(items, f"batch {k} of {source} ({span})", None)
        except BaseException:
            stream.iterator = None
            raise
        finally:
            _local.key, _local.rng = None, None

    @staticmethod
    def _source() -> str:
        info = get_worker_info()
        return "the stream" if info is None else f"worker {info.id}'s stream"

    @staticmethod
    def _error(what: str, stage: str, exc: Exception, **fields: Any) -> DataLoaderError:
        return loader_error(
            f"loading {what} failed in {stage}: {type(exc).__name__}: {exc}", type(exc), stage=stage, **fields
        )

    def _transform(self, item: Any, what: str, **fields: Any) -> Any:
        for k, transform in enumerate(self.cpu_transforms):
            try:
                item = transform(item)
            except Exception as exc:
                raise self._error(what, f"cpu_transforms[{k}] ({_name(transform)})", exc, **fields) from exc
        return item

    def _collate(self, items: list, what: str, batch_index: int | None) -> Any:
        try:
            return self.collate_fn(items if self.auto_collation else items[0])
        except Exception as exc:
            raise loader_error(
                f"collate_fn ({_name(self.collate_fn)}) failed on {what}: {type(exc).__name__}: {exc}",
                type(exc),
                batch_index=batch_index,
                stage="collate_fn",
            ) from exc


# ---------------------------------------------------------------------------------------------- workers


def _format_cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    return "".join(traceback.format_exception(type(cause), cause, cause.__traceback__))


def _type_to_send(original: type | None) -> bytes | None:
    """`DataLoaderError.original_type`, pickled for the main process (by name: None for a local class)."""
    try:
        return None if original is None else pickle.dumps(original)
    except Exception:
        return None


def _type_received(payload: bytes | None) -> type | None:
    try:
        return None if payload is None else pickle.loads(payload)
    except Exception:
        return None


def _send_fatal(result_q: Any, exc: DataLoaderError, is_process: bool) -> None:
    """Report a failure that ends this worker (it cannot load the job, or worker_init_fn failed)."""
    # An exception object may not survive pickling: processes send its fields and traceback text.
    fields = (exc.stage, exc.worker_id, _format_cause(exc), _type_to_send(exc.original_type))
    payload = (str(exc), *fields) if is_process else exc
    result_q.put((None, None, "fatal", payload))
    if is_process:
        result_q.close()
        result_q.join_thread()


def _after_every_init(
    inits_done: Sequence[threading.Event], worker_id: int, stop: threading.Event | None
) -> bool:
    """Say this thread worker's worker_init_fn has run, and wait until every worker's has (False: the pool
    was closed meanwhile). Thread workers share the global generators: one that loaded a batch while another
    was still in its worker_init_fn drew between that one's seeding and `_watch_global_seeding_in_threads`'s
    reading of it, which then missed the seeding it is there to see (3-6% of 2-epoch runs in the test)."""
    inits_done[worker_id].set()
    for done in inits_done:
        while not done.wait(_WORKER_POLL_S):
            if stop is not None and stop.is_set():
                return False
    return True


def _worker_loop(
    job: Any,
    task_q: Any,
    result_q: Any,
    stop: threading.Event | None,
    is_process: bool,
    worker_id: int = 0,
    num_workers: int = 1,
    seed_epoch: tuple[int, int] = (0, 0),
    inits_done: Sequence[threading.Event] = (),
) -> None:
    """Run tasks ``(generation, batch_index, indices, seed, epoch)`` until a ``None`` task arrives.

    ``indices`` None asks for the next batch of this worker's pass over an iterable dataset. Thread workers
    with a ``worker_init_fn`` are given ``inits_done``, one event a worker (`_after_every_init`).
    """
    epoch_seen = None
    stream = StreamState()
    if not is_process:
        # A thread that used MLX (a dataset computing features with the default backend="mlx") must
        # release its streams as it ends, or MLX aborts the process at exit (`_end_thread_workers_at_exit`).
        clear_streams_when_thread_ends()
    if is_process:
        # Ctrl-C reaches the whole process group, and so does SIGTERM or SIGUSR1 from `timeout`, `scancel`
        # or a cluster's time limit: the main process handles them as a stop and shuts the workers down
        # (`WorkerPool.close`, which kills one that does not exit), and a worker whose main process died
        # exits by itself (it watches its parent). They were held back since the fork
        # (`_stop_signals_held`): once ignored, they are let through again.
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_UNBLOCK, set(STOP_SIGNALS))
        parent = mp.parent_process()
        try:
            # ``job`` is where the pickled payload comes from (`WorkerPool._start`): emptied or closed here,
            # the bytes are freed once loaded, and no part of the spawn pipe's message (see `_start`).
            job = _receive_payload(job, parent)
            if job is None:
                return  # the main process ended before sending it
        except Exception as exc:
            # Typically a class defined in a notebook or in an unguarded script: report it, do not just die.
            err = DataLoaderError(
                f"a worker process could not load the dataset / transforms: {type(exc).__name__}: {exc}. "
                f"Process workers import the dataset's module: define the dataset, transforms and "
                f"collate_fn in an importable module (not a notebook cell), or use worker_type='thread'",
                stage="worker",
                worker_id=worker_id,
            )
            err.__cause__ = exc
            _send_fatal(result_q, err, is_process)
            return
    info_key = seed_epoch
    info = WorkerInfo(worker_id, num_workers, worker_seed(*seed_epoch, worker_id), job.dataset)
    _set_worker_info(info, is_process)
    before_init = _generator_states() if is_process or job.worker_init_fn is not None else {}
    # Workers watch for torch's get_worker_info while they start and load each epoch's first batch: a thread
    # refuses it, a process answers it (setting it there if the dataset imported torch only then).
    if is_process:
        watch = _publish_to_torch_when_asked
    else:
        watch = lambda: _no_torch_worker_info_in_threads(worker_id)  # noqa: E731
    watched_key = None
    try:
        with watch():
            job.init_worker(worker_id)
    except DataLoaderError as exc:
        _send_fatal(result_q, exc, is_process)
        if inits_done:
            inits_done[worker_id].set()  # (the others go on: the loader reports this one's failure)
        return
    except BaseException:  # (a KeyboardInterrupt or SystemExit in worker_init_fn: the others still go on)
        if inits_done:
            inits_done[worker_id].set()
        raise
    # The generators worker_init_fn seeded (or drew from) are the user's from then on: a PyTorch worker seeds
    # them once, before worker_init_fn, and a persistent one goes on drawing from where it left them.
    user_seeded = generators_changed(before_init) if job.worker_init_fn is not None else frozenset()
    if user_seeded and not is_process:
        _watch_global_seeding_in_threads(job.worker_init_fn, user_seeded)
        user_seeded = frozenset()
    if inits_done and not _after_every_init(inits_done, worker_id, stop):
        return
    if user_seeded:  # (before any result, so the loader knows when this worker's first batch arrives)
        result_q.put((None, None, "user_generators", sorted(user_seeded)))
    while True:
        try:
            task = task_q.get(timeout=_WORKER_POLL_S)
        except queue.Empty:
            if (stop is not None and stop.is_set()) or (
                is_process and parent is not None and not parent.is_alive()
            ):
                break  # orphaned or abandoned: exit instead of lingering
            continue
        if task is None:
            break
        generation, batch_index, indices, seed, epoch = task
        if (seed, epoch) != info_key:
            info_key = (seed, epoch)
            info = dataclasses.replace(info, seed=worker_seed(seed, epoch, worker_id))
            _set_worker_info(info, is_process, user_seeded)
        if is_process:
            _publish_to_torch(_local.worker_info)  # (once torch is imported: the dataset may do it late)
        first_of_epoch, watched_key = watched_key != info_key, info_key
        try:
            if (is_process or indices is None) and epoch != epoch_seen:
                # A process worker (and a thread worker of an iterable dataset) has its own copy of the
                # dataset: the loader's dataset.set_epoch in the main process does not reach it.
                job.set_epoch(epoch, batch_index if indices is not None else None)
                epoch_seen = epoch
            with watch() if first_of_epoch else contextlib.nullcontext():
                if indices is None:
                    batch = job.load_stream(stream, generation, seed, epoch)
                else:
                    if is_process:
                        # Seeded per batch, a resume that skips batches draws as an uninterrupted run (a
                        # stream is read again from its start instead: its epoch's seeding is enough).
                        seed_global_generators(batch_seed(seed, epoch, batch_index), user_seeded)
                    batch = job.load(batch_index, indices, seed, epoch)
            if batch is STREAM_END:
                result = ("end", None)
            elif is_process:  # pickled here, not in the queue's feeder thread, where an error would be lost
                result = ("ok", pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
            else:
                result = ("ok", batch)
        except Exception as exc:
            if isinstance(exc, DataLoaderError) and exc.worker_id is None:
                exc.worker_id = worker_id  # (as PyTorch's "Caught KeyError in DataLoader worker process 1")
            if not is_process:
                err = exc
            elif isinstance(exc, DataLoaderError):
                cause = _format_cause(exc)
                err = (
                    str(exc),
                    exc.index,
                    exc.batch_index,
                    exc.stage,
                    cause,
                    _type_to_send(exc.original_type),
                    exc.worker_id,
                )
            else:  # the batch itself could not be pickled
                tb = traceback.format_exc()
                err = (
                    f"batch {batch_index} could not be sent from the worker process: {type(exc).__name__}: {exc}",
                    None,
                    batch_index,
                    "worker",
                    tb,
                    None,
                    worker_id,
                )
            result = ("err", err)
        except BaseException as exc:
            # A KeyboardInterrupt or SystemExit the dataset raised (a notebook's own "stop now", a helper's
            # sys.exit()): a thread worker hands it to the caller, which raises it as without workers, instead
            # of ending with a raw traceback and leaving the loader to call its exit unexpected.
            if is_process:
                raise
            result = ("err", exc)
        result_q.put((generation, batch_index, *result))
        if stop is not None and stop.is_set():
            break
        if is_process and parent is not None and not parent.is_alive():
            break  # orphaned (a SIGTERM to the process group ended the main process alone): no more tasks
    if is_process:
        # Do not block this process's exit on flushing results nobody will read.
        result_q.cancel_join_thread()


def _receive_payload(source: Any, parent: Any) -> Any:
    """The worker's job, unpickled from its payload: ``source`` is a one-item list a forked worker empties
    (so that it keeps one copy of the dataset), or the read end of the pipe a spawned one gets it on
    (`_send_payload`); None if the main process died or closed the pool before sending it."""
    if isinstance(source, list):
        return pickle.loads(source.pop())
    with source:
        while not source.poll(_WORKER_POLL_S):
            if parent is not None and not parent.is_alive():
                return None
        try:
            payload = source.recv_bytes()
        except EOFError:
            return None
    return pickle.loads(payload)


def _send_payload(conn: Any, payload: bytes) -> None:
    """Write ``payload`` to a spawned worker's pipe, from a thread of its own: the bytes themselves, not a
    copy (a queue's feeder pickles each item again, one more dataset in the main process per worker
    while it writes). A worker that died before reading it all has closed its end: the write fails, and the
    loader reports the dead worker (`get`)."""
    with contextlib.suppress(OSError), conn:
        conn.send_bytes(payload)


@contextlib.contextmanager
def _stop_signals_held():
    """The stop signals (SIGINT, SIGTERM, SIGUSR1) held back (blocked, not lost) in this thread while it
    starts worker processes.

    A new process inherits the blocked signals through fork and exec, so a Ctrl-C or a SIGTERM to the
    process group cannot kill a worker while it imports numpy and the dataset's module (a second or so after
    a spawn, at every epoch of a non-persistent pool); the worker ignores them and then lets them through.
    Here a signal that arrived meanwhile is delivered when the mask is restored. (A forkserver's workers
    inherit its server's mask instead; the Trainer takes a worker that a stop signal killed during a stop as
    the stop: `DataLoaderError.killed_by_stop_signal`.)
    """
    if not hasattr(signal, "pthread_sigmask"):  # (not on Windows)
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, set(STOP_SIGNALS))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _exit_cause(code: int | None) -> tuple[str, str]:
    """What a dead worker process's exit code says, for `DataLoaderError`'s message: (the code, why)."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why = {
            signal.SIGKILL: "out of memory, or killed",
            signal.SIGINT: "a Ctrl-C reached it before it could ignore it",
        }.get(-code, "killed by the system or another process")
        return f"exit code {code}, {name}", f": {why}"
    return f"exit code {code}", (
        ". If it failed while starting, its traceback is printed above (process workers re-import the "
        "main script: it needs an `if __name__ == '__main__':` guard and cannot be stdin)"
    )


class WorkerPool:
    """``num_workers`` threads or processes running a `BatchJob`, with ordered results.

    Parameters
    ----------
    job : BatchJob
    num_workers : int
    worker_type : {"thread", "process"}
    mp_context : str or multiprocessing context
        Start method for processes (``"spawn"`` by default: forking a process that has MLX and BLAS
        threads running can deadlock), or a context object such as ``multiprocessing.get_context("spawn")``.
    seed, epoch : int
        The loader's seed and epoch when the pool starts, for `WorkerInfo.seed` in ``worker_init_fn``
        (each task carries the current ones).
    """

    def __init__(
        self,
        job: BatchJob,
        num_workers: int,
        worker_type: str,
        mp_context: Any = "spawn",
        seed: int = 0,
        epoch: int = 0,
    ) -> None:
        self.num_workers = num_workers
        self.is_process = worker_type == "process"
        self.generation = 0
        # The global generators worker_init_fn seeded in the process workers (`seed_global_generators`), as
        # far as their reports have come: each worker's comes before its first result.
        self.user_generators: set[str] = set()
        self._buffer: dict[int, tuple] = {}
        self._closed = False
        self._task_qs: list = []
        self._workers: list = []
        self._payload_pipes: list = []  # (a spawned worker's: `_start`)
        try:
            self._start(job, num_workers, mp_context, seed, epoch)
        except OSError as error:
            if error.errno not in (errno.EMFILE, errno.ENFILE):
                raise
            self._abandon_start()
            raise DataLoaderError(
                _too_many_files_message(num_workers, self.is_process), stage="worker"
            ) from None

    def _start(self, job: BatchJob, num_workers: int, mp_context: Any, seed: int, epoch: int) -> None:
        """Make the queues and start the workers (each queue and process takes file descriptors)."""
        if self.is_process:
            try:
                payload = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                raise TypeError(
                    f"worker_type='process' sends the dataset, cpu_transforms, collate_fn and worker_init_fn "
                    f"to each worker by pickling, which failed: {type(exc).__name__}: {exc}. Define them at module level "
                    f"(no lambdas or local functions), or use worker_type='thread'."
                ) from exc
            ctx = mp.get_context(mp_context) if isinstance(mp_context, str) else mp_context
            # The first queue starts multiprocessing's resource tracker, a process of the same group, which
            # ignores SIGINT and SIGTERM alone: started with the stop signals held, it keeps SIGUSR1 blocked
            # (a SIGUSR1 to the group killed it, and its replacement printed KeyErrors at exit). (A hold of
            # its own: starting the tracker lets SIGINT and SIGTERM through again in this thread.)
            with _stop_signals_held():
                self._task_qs = [ctx.Queue() for _ in range(num_workers)]
                self._result_q = ctx.Queue()
            # A forked worker has the payload already (its memory is the main process's): no copy is written.
            forked = getattr(ctx, "get_start_method", lambda: None)() == "fork"
            self._payload_pipes = [] if forked else [mp.Pipe(duplex=False) for _ in range(num_workers)]
            # ([payload]: a list the forked worker empties, so that it keeps one copy of the dataset)
            sources = (
                [[payload] for _ in range(num_workers)] if forked else [r for r, _ in self._payload_pipes]
            )
            self._stop = None
            _process_pools.add(self)
            self._workers = [
                ctx.Process(
                    target=_worker_loop,
                    args=(sources[i], q, self._result_q, None, True, i, num_workers, (seed, epoch)),
                    name=f"audiotrain-data-{i}",
                    daemon=True,
                )
                for i, q in enumerate(self._task_qs)
            ]
        else:
            self._task_qs = [queue.Queue() for _ in range(num_workers)]
            self._result_q = queue.Queue()
            self._stop = threading.Event()
            # Each thread reads its own copy of an iterable dataset, as each process does.
            jobs = [job.replica() if job.stream_batch_size else job for _ in range(num_workers)]
            # With a worker_init_fn, no thread loads (and draws) until every worker_init_fn has run.
            inits_done = [threading.Event() for _ in range(num_workers)] if job.worker_init_fn else []
            _thread_pools.add(self)
            self._workers = [
                threading.Thread(
                    target=_worker_loop,
                    args=(jobs[i], q, self._result_q, self._stop, False, i, num_workers, (seed, epoch)),
                    kwargs={"inits_done": inits_done},
                    name=f"audiotrain-data-{i}",
                    daemon=True,
                )
                for i, q in enumerate(self._task_qs)
            ]
        with (
            _stop_signals_held() if self.is_process else contextlib.nullcontext(),
            _in_worker_environment(self.is_process),
        ):
            for w in self._workers:
                w.start()
                if not self.is_process:
                    _keep_until_ended(w)
        # The dataset goes to a spawned worker on a pipe of its own, written by a thread, not in the spawn
        # pipe's message: `Process.start` writes that message whole before it returns, and a worker that dies
        # reading it (an unguarded main script, re-run as the worker imports it) left a dataset larger than
        # the pipe's buffer (64 KiB) blocking the main process for ever, where the loader is to report the
        # dead worker (`get`). The main process closes its read ends (the workers have theirs), so that
        # such a worker's death ends the write.
        for reader, writer in self._payload_pipes:
            reader.close()
            threading.Thread(target=_send_payload, args=(writer, payload), daemon=True).start()

    def _abandon_start(self) -> None:
        """End what a start that failed midway made: the workers started, and the queues (their pipes)."""
        self._closed = True
        for w in self._workers:
            if self.is_process and w.pid is not None and w.is_alive():
                w.kill()  # (a worker ignores SIGTERM, and holds it back while it starts)
                w.join(_JOIN_TIMEOUT_S)
        for q in [*self._task_qs, getattr(self, "_result_q", None)]:
            if self.is_process and q is not None:
                with contextlib.suppress(OSError, ValueError):
                    q.close()
        for conn in [c for pipe in self._payload_pipes for c in pipe]:
            conn.close()  # (no thread writes yet: they start once every worker has)

    @property
    def closed(self) -> bool:
        return self._closed

    def healthy(self) -> bool:
        """Not closed, and every worker still alive (a persistent pool is replaced when this is False)."""
        return not self._closed and all(w.is_alive() for w in self._workers)

    def submit(
        self, batch_index: int, indices: np.ndarray | None, seed: int, epoch: int, worker: int | None = None
    ) -> None:
        """Queue batch ``batch_index`` on ``worker`` (default ``batch_index % num_workers``).

        ``indices`` None asks the worker for the next batch of its pass over an iterable dataset.
        """
        worker = batch_index % self.num_workers if worker is None else worker
        self._task_qs[worker].put((self.generation, batch_index, indices, seed, epoch))

    def get(self, batch_index: int, timeout: float | None = None) -> Any:
        """Wait for batch ``batch_index`` (`STREAM_END` when the worker's stream has ended); raises
        `DataLoaderError` on a failure, a dead worker or a timeout."""
        deadline = None if not timeout else time.monotonic() + timeout
        saw_dead = False
        while batch_index not in self._buffer:
            try:
                generation, index, status, payload = self._result_q.get(timeout=_MAIN_POLL_S)
            except queue.Empty:
                # A worker that cannot start sends its "fatal" report just before exiting: give that report
                # one more poll to arrive before calling the exit unexpected.
                if saw_dead:
                    self._check_workers(batch_index)
                saw_dead = not all(w.is_alive() for w in self._workers)
                if deadline is not None and time.monotonic() > deadline:
                    raise DataLoaderError(
                        f"timed out after {timeout} s waiting for batch {batch_index} from the DataLoader "
                        f"workers (a slow or stuck dataset.__getitem__? the first batch's wait includes starting "
                        f"the workers: spawned processes import the main script's modules first); raise "
                        f"`timeout` or fix the dataset",
                        batch_index=batch_index,
                        stage="worker",
                    ) from None
                continue
            if status == "user_generators":  # (a worker's report after its worker_init_fn, see below)
                self.user_generators |= set(payload)
                continue
            if status == "fatal":  # a worker could not start: it has exited
                if not self.is_process:
                    raise payload
                message, stage, worker_id, tb, original = payload
                raise loader_error(
                    f"{message}\n\nTraceback in the DataLoader worker process:\n{tb}",
                    _type_received(original),
                    batch_index=batch_index,
                    stage=stage,
                    worker_traceback=tb,
                    worker_id=worker_id,
                )
            if generation == self.generation:
                self._buffer[index] = (status, payload)
        status, payload = self._buffer.pop(batch_index)
        if status == "ok":
            return pickle.loads(payload) if self.is_process else payload
        if status == "end":
            return STREAM_END
        if not self.is_process:
            raise payload
        message, index, b, stage, tb, original, worker_id = payload
        raise loader_error(
            f"{message}\n\nTraceback in the DataLoader worker process:\n{tb}",
            _type_received(original),
            index=index,
            batch_index=b,
            stage=stage,
            worker_traceback=tb,
            worker_id=worker_id,
        )

    def _check_workers(self, batch_index: int) -> None:
        for i, w in enumerate(self._workers):
            if not w.is_alive():
                code = w.exitcode if self.is_process else None
                cause, why = _exit_cause(code) if self.is_process else ("no exit code", "")
                raise DataLoaderError(
                    f"DataLoader worker {i} ({'pid ' + str(w.pid) if self.is_process else 'thread'}) exited "
                    f"unexpectedly ({cause}) while batch {batch_index} was pending{why}",
                    batch_index=batch_index,
                    stage="worker",
                    worker_id=i,
                    exit_code=code,
                ) from None

    def reset(self) -> None:
        """Forget queued and in-flight tasks (a new epoch on a persistent pool)."""
        self.generation += 1
        self._buffer.clear()
        self._drop_queued_tasks()

    def _drop_queued_tasks(self, queues: list | None = None) -> None:
        for q in self._task_qs if queues is None else queues:
            try:
                while True:
                    q.get_nowait()
            except (queue.Empty, OSError, ValueError):
                pass

    def close(self, timeout: float = _JOIN_TIMEOUT_S) -> None:
        """Stop the workers: queued tasks are dropped and each worker exits after its current sample.

        Threads are daemons and are not waited for (a thread stuck in user code cannot be killed, and
        waiting would block the caller, possibly inside garbage collection), except at interpreter exit
        (`_end_thread_workers_at_exit`). Processes get up to
        ``timeout`` s to exit, then are killed, so none is left behind.
        """
        self._close(timeout, in_finalizer=False)

    def _close(self, timeout: float, in_finalizer: bool) -> None:
        """`close`; ``in_finalizer``: the garbage collector runs it, inside an allocation of any thread, also
        one that holds the lock of one of this pool's task queues further up its stack (a thread worker
        taking its next task, the feeder thread of a process worker's queue): a queue whose lock is not
        free at once is left alone then, never waited for (waiting would wait for ever). Its worker still
        ends: a thread worker sees the stop flag after its current task or within `_WORKER_POLL_S`, a
        process worker is killed after ``timeout`` s."""
        if self._closed:
            return
        self._closed = True  # (before the stop's set(), whose lock an allocation there may need again)
        if self._stop is not None:
            self._stop.set()  # (its lock is taken only inside the Event's own methods, never by a caller)
        queues = [q for q in self._task_qs if not in_finalizer or _free_at_once(_lock_of(q))]
        self._drop_queued_tasks(queues)
        for q in queues:
            try:
                q.put(None)
            except (OSError, ValueError):
                pass
        if self.is_process:
            stop = None
            deadline = time.monotonic() + timeout
            try:
                for w in self._workers:
                    while w.is_alive() and time.monotonic() < deadline:
                        self._drain_results()  # a worker blocked writing a result to a full pipe cannot exit
                        w.join(0.05)
            except KeyboardInterrupt as stopped:
                # A (second) Ctrl-C while the workers end their batches: they are killed now rather than
                # waited for, and the stop goes on once they are (not from a pool half closed, whose
                # workers would run on).
                stop = stopped
            for w in self._workers:
                if w.is_alive():
                    w.kill()  # (a worker ignores SIGTERM: `terminate` would not end it)
                    w.join(1.0)
            for q in [*self._task_qs, self._result_q]:
                q.cancel_join_thread()
                if q is self._result_q or q in queues:  # (`close` takes the lock a put takes)
                    q.close()
            if stop is not None:
                self._buffer.clear()
                raise stop
        self._buffer.clear()

    def close_when_collected(self) -> None:
        """`close`, as the finalizer of the iterator or loader that owned the pool runs it (they were
        collected). Python prints an exception raised in a finalizer ("Exception ignored in: <finalize
        ...>") and drops it: a stop signal's `SignalInterrupt` (a second Ctrl-C while the workers of a
        stopped epoch end) is not raised from here. The handler that raised it noted the signal, and its
        owner acts on it (a fit aborts before its save: `StopRequests.request`; `stop_at_once` raises it as
        its block ends). A plain KeyboardInterrupt (Python's own handler) goes on, as any exception."""
        try:
            self._close(_JOIN_TIMEOUT_S, in_finalizer=True)
        except KeyboardInterrupt as stop:
            from audiotrain.train.interrupt import SignalInterrupt  # (loaded: its handler raised it)

            if not isinstance(stop, SignalInterrupt):
                raise

    def _drain_results(self) -> None:
        try:
            while True:
                self._result_q.get_nowait()
        except (queue.Empty, OSError, ValueError, EOFError):
            pass


def _lock_of(q: Any) -> Any:
    """The lock a put to task queue ``q`` takes (a `queue.Queue`'s mutex; a multiprocessing queue's
    buffer lock, which its feeder thread holds too while it waits for the next task)."""
    return q.mutex if isinstance(q, queue.Queue) else q._notempty


def _free_at_once(lock: Any) -> bool:
    """Whether ``lock`` is free now: taken without waiting and given back. Where it is, no frame of this
    thread holds it, so taking it again cannot wait for this thread itself."""
    if not lock.acquire(blocking=False):
        return False
    lock.release()
    return True


# The pools of thread workers and their threads, closed and waited for at interpreter exit (a closed pool
# may be gone while its threads are still ending).
_thread_pools: weakref.WeakSet[WorkerPool] = weakref.WeakSet()
# Held, not weakly: a thread whose Python code is done is dropped from `threading` and may be collected
# while it still releases its MLX streams, whose binding lets go of the GIL; Python's exit, not waiting
# for it, then stops it there and MLX aborts the process (status 134, 1 run in 5 of a script iterating a
# thread-worker loader). `join` returns only once it has released them.
_worker_threads: set[threading.Thread] = set()


def _keep_until_ended(thread: threading.Thread) -> None:
    """Keep `thread` for `_end_thread_workers_at_exit`, letting go of those that have ended."""
    _worker_threads.difference_update([ended for ended in list(_worker_threads) if not ended.is_alive()])
    _worker_threads.add(thread)


# The pools of process workers, closed at interpreter exit.
_process_pools: weakref.WeakSet[WorkerPool] = weakref.WeakSet()


@atexit.register  # (after multiprocessing's own, imported above: atexit runs it first)
def _end_process_workers_at_exit() -> None:
    """Close the process pools still open (a persistent loader's, an epoch's iterator not yet collected).

    Left to multiprocessing, its exit handler would `terminate` (SIGTERM) the workers, which ignore it, and
    then wait for them for ever: they exit only on their pool's word or once the main process is gone."""
    for pool in list(_process_pools):
        with contextlib.suppress(Exception):
            pool.close()


@atexit.register
def _end_thread_workers_at_exit(timeout: float = _JOIN_TIMEOUT_S) -> None:
    """Stop the thread workers still running (a persistent pool, or the last epoch's pool whose threads
    have not yet seen their stop) and wait up to `timeout` s in all for them to end.

    A daemon thread still alive when Python finalizes never runs its thread-end cleanup, so one that used
    MLX would keep its streams, and MLX would abort the process ("terminate called without an active
    exception", status 134). Ended here, each releases them (`clear_streams_when_thread_ends`). A worker
    stuck in user code past the timeout is left as before.
    """
    for pool in list(_thread_pools):
        with contextlib.suppress(Exception):
            pool.close()
    deadline = time.monotonic() + timeout
    for thread in list(_worker_threads):
        if thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
