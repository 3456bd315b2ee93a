"""The caller's random generators and seed, put back when a fit or a recipe's run ends.

`Trainer.fit` seeds MLX's, numpy's, Python's (and torch's) global generators and puts them back as it found
them when it ends (`CALLERS_GENERATORS`): the code after it (a random search's next draw, the next model's
weights) goes on with its own sequence. A recipe's run (the chord recipe's `run_training`, the CLAP
recipe's `run_job`) also calls `seed_everything`, which sets ``PL_GLOBAL_SEED`` and the seed of a Trainer
given none: `keeping_callers_random` puts those back too (`CALLERS_SEED`), so that a search calling a
recipe trial after trial draws its next trial from its own sequence.

numpy's, Python's and torch's generators are the process's, so fits running at the same time in several
threads share them. Each putting back what it found would leave the process where the first to end found
it: the second fit's seeded generators. So the first of overlapping runs saves them and the last to end
puts them back; a run inside another in the same thread (a recipe's fit) puts back what it found, for the
run around it to go on from its own numbers. MLX's generator is each thread's own (a thread starts with a
key of its own): each run puts back the key of its thread.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

from audiotrain.train import seeding
from audiotrain.train.state import RandomState

import mlx.core as mx


class _Kept:
    """`kept()`: `enter` as a run starts, `leave` with what it returned as the run ends, however it ends."""

    def enter(self) -> Any:
        raise NotImplementedError

    def leave(self, token: Any) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def kept(self) -> Iterator[None]:
        token = self.enter()
        try:
            yield
        finally:
            self.leave(token)


class SharedSave(_Kept):
    """A piece of process-wide state that runs change and put back when they end (see the module's notes):
    `enter` as a run starts, `leave` with what it returned as it ends (or `kept()` around it)."""

    def __init__(self, capture: Callable[[], Any], restore: Callable[[Any], None]):
        self._capture, self._restore = capture, restore
        self._lock = threading.Lock()
        self._threads = 0  # threads with a run in progress
        self._saved: Any = None  # what the first of them found
        self._depth = threading.local()  # runs in progress in this thread (one inside another)

    def enter(self) -> Any:
        """A run starts: returns what `leave` takes when it ends."""
        depth = getattr(self._depth, "runs", 0)
        if depth:  # inside a run of this thread: what that run goes on from
            own = self._capture()
        else:
            own = None
            with self._lock:
                if self._threads == 0:
                    self._saved = self._capture()
                self._threads += 1
        self._depth.runs = depth + 1
        return own

    def leave(self, own: Any) -> None:
        """The run that `enter` returned `own` to ends, however it ends."""
        self._depth.runs -= 1
        if self._depth.runs:
            self._restore(own)
            return
        with self._lock:
            self._threads -= 1
            if self._threads == 0:
                saved, self._saved = self._saved, None
                self._restore(saved)


def _seed_settings() -> tuple[str | None, str | None, int | None]:
    env = os.environ.get
    return env(seeding.SEED_ENV_VAR), env(seeding.WORKERS_ENV_VAR), seeding._last_seed


def _restore_seed_settings(settings: tuple[str | None, str | None, int | None]) -> None:
    variable, workers, seeding._last_seed = settings
    for name, value in ((seeding.SEED_ENV_VAR, variable), (seeding.WORKERS_ENV_VAR, workers)):
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _mlx_key() -> list[int]:
    return [int(v) for v in mx.random.state[0].tolist()]


def _restore_mlx_key(key: list[int]) -> None:
    hi, lo = key
    mx.random.seed((hi << 32) | lo)  # (the key cannot be assigned; this seed sets it exactly)


def _process_generators() -> dict[str, Any]:
    """numpy's, Python's and torch's states (`RandomState`'s, without MLX's key: the thread's own)."""
    return RandomState.capture()


def _restore_process_generators(state: dict[str, Any]) -> None:
    RandomState.restore({**state, "mlx": _mlx_key()})  # (this thread's MLX key stays as it is)


class CallersGenerators(_Kept):
    """The generators a fit seeds: numpy's, Python's and torch's shared by the runs in progress in the
    process (`SharedSave`), and MLX's key of the thread, which each run puts back itself."""

    def __init__(self) -> None:
        self._shared = SharedSave(_process_generators, _restore_process_generators)

    def enter(self) -> Any:
        return _mlx_key(), self._shared.enter()

    def leave(self, token: Any) -> None:
        key, own = token
        try:
            self._shared.leave(own)
        finally:
            _restore_mlx_key(key)


#: MLX's, numpy's, Python's and (when imported) torch's global generators.
CALLERS_GENERATORS = CallersGenerators()
#: What `seed_everything` sets besides the generators: ``PL_GLOBAL_SEED``, ``PL_SEED_WORKERS`` and
#: `seeding.default_seed`.
CALLERS_SEED = SharedSave(_seed_settings, _restore_seed_settings)


@contextlib.contextmanager
def keeping_callers_random() -> Iterator[None]:
    """A recipe's run, which calls `seed_everything`: the caller's generators, ``PL_GLOBAL_SEED`` and the
    seed of a Trainer given none are put back as they were when it ends, however it ends. Inside, the run
    is seeded as before (the same weights, data order and scores for the same seed)."""
    with CALLERS_SEED.kept(), CALLERS_GENERATORS.kept():
        yield
