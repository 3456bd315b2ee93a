"""Lightning's `CombinedLoader`: several loaders read together, a dict or list of batches per step, with a
position that resumes in the middle of an epoch."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from audiotrain.data.loader import position_ends_epoch

MODES = ("min_size", "max_size_cycle", "max_size", "sequential")


class CombinedLoader:
    """Several loaders (a dict of named ones or a list, nested too, or a single loader) iterated together, as
    Lightning's ``lightning.pytorch.utilities.CombinedLoader``; iterating gives ``(batch, batch_idx,
    dataloader_idx)``, the batch in the loaders' structure. A list or tuple of numbers or strings alone is a
    loader (its items the batches), as Lightning's.

    Modes: ``"max_size_cycle"`` (what `Trainer.fit` makes of a dict or list of loaders) gives a batch of each
    loader per step, ``{"a": batch_a, "b": batch_b}`` (a list for a list), until the longest ends, starting
    the shorter ones again as they end; ``"min_size"`` (the default, as Lightning's) ends with the shortest;
    ``"max_size"`` gives None for a loader that has ended; ``"sequential"`` gives each loader's batches in
    turn, alone, with its ``dataloader_idx`` (evaluation only: `fit` refuses it, as Lightning's does). ``len`` is the epoch's
    batches (the longest's, the shortest's, or their sum).

    `set_epoch` sets each loader's epoch; `state_dict` holds each loader's position (a DataLoader's
    ``state_dict``; for another loader, the batches taken, replayed on resume), so that a fit resumed in the
    middle of an epoch continues with the batches of the uninterrupted run. Under data parallel each
    DataLoader reads its own rank's shard, so the ranks' steps hold equally many batches.
    """

    def __init__(self, iterables: Any, mode: str = "min_size"):
        if mode not in MODES:
            raise ValueError(f"Unsupported mode {mode!r}, please select one of: {list(MODES)}")
        self._spec, paths = _flatten(iterables, "")
        loaders = [loader for loader, _ in paths]
        for loader, path in paths:
            if not isinstance(loader, Iterable):
                raise TypeError(
                    f"CombinedLoader: iterables{path} is a {type(loader).__name__}, not a loader (an "
                    "iterable of batches); it takes a loader, or a dict or list (nested too) of loaders"
                )
        self.iterables = iterables
        self._mode = mode
        self._loaders = loaders
        # Position in the epoch: batches yielded, per loader the batches taken from its current pass, which
        # loaders have ended (max_size) and which loader is read (sequential).
        self._yielded = 0
        self._taken = [0] * len(loaders)
        self._ended: set[int] = set()
        self._current = 0
        self._restored = False
        self._epoch_over = False
        self._trainer_seeded: list[int] = []  # (the loaders without a seed of their own: the Trainer's)

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def flattened(self) -> list[Any]:
        """The loaders, in order (Lightning's name)."""
        return list(self._loaders)

    def __len__(self) -> int:
        lengths = [len(loader) for loader in self._loaders]  # (TypeError for a loader without a length)
        if not lengths:
            return 0
        if self._mode == "min_size":
            return min(lengths)
        if self._mode == "sequential":
            return sum(lengths)
        return max(lengths)

    def set_epoch(self, epoch: int) -> None:
        """Call each loader's ``set_epoch`` (those that have one). A restored position at its epoch's end is
        left behind: the epoch set starts from its first batch."""
        if self._epoch_over:
            self._restored = self._epoch_over = False
        for loader in self._loaders:
            if callable(getattr(loader, "set_epoch", None)):
                loader.set_epoch(epoch)

    def set_seed(self, seed: int) -> None:
        """Give the loaders that took the Trainer's seed (none of their own) `seed`, the i-th ``seed + i``."""
        for i in self._trainer_seeded:
            self._loaders[i].set_seed(seed + i)

    def _pack(self, batches: list[Any]) -> Any:
        return _unflatten(self._spec, iter(batches))

    def _open(self, i: int, resumed: bool) -> Iterator[Any]:
        """A new pass over loader `i`; on resume, one without a position of its own skips what was taken."""
        iterator = iter(self._loaders[i])
        if not resumed:
            self._taken[i] = 0
        elif not callable(getattr(self._loaders[i], "load_state_dict", None)):
            for _ in range(self._taken[i]):
                next(iterator, None)
        return iterator

    def _next(self, iterators: list[Any], i: int) -> Any:
        batch = next(iterators[i])
        self._taken[i] += 1
        return batch

    def __iter__(self) -> Iterator[tuple[Any, int, int]]:
        resumed, self._restored = self._restored, False
        if resumed and self._epoch_over:
            self._epoch_over = False
            return
        if not resumed:
            self._yielded, self._ended, self._current = 0, set(), 0
        if self._mode == "sequential":
            yield from self._sequential(resumed)
            return
        cycle = self._mode == "max_size_cycle"  # (an ended loader starts again, until every one has ended)
        iterators: list[Any] = [
            None if i in self._ended and not cycle else self._open(i, resumed)
            for i in range(len(self._loaders))
        ]
        while True:
            batches = []
            for i in range(len(self._loaders)):
                if iterators[i] is None:
                    batches.append(None)  # (max_size: this loader has ended)
                    continue
                try:
                    batches.append(self._next(iterators, i))
                except StopIteration:
                    if self._mode == "min_size":
                        return
                    self._ended.add(i)
                    if len(self._ended) == len(self._loaders):
                        return
                    if cycle:
                        # (a new pass: a DataLoader goes on to its next epoch's order, as torch's reshuffles)
                        iterators[i] = self._open(i, False)
                        try:
                            batches.append(self._next(iterators, i))
                        except StopIteration:  # (an empty loader: no batch of it ever, the epoch is over)
                            return
                    else:
                        iterators[i] = None
                        batches.append(None)
            if not batches:
                return
            self._yielded += 1
            yield self._pack(batches), self._yielded - 1, 0

    def _sequential(self, resumed: bool) -> Iterator[tuple[Any, int, int]]:
        first = self._current
        for i in range(first, len(self._loaders)):
            self._current = i
            iterator = self._open(i, resumed and i == first)
            for batch in iterator:
                self._taken[i] += 1
                self._yielded += 1
                yield batch, self._taken[i] - 1, i
            resumed = False

    def state_dict(self) -> dict[str, Any]:
        """The epoch's position (JSON): batches yielded, each loader's own state (None for a loader without
        one) and batches taken from its current pass, which loaders have ended, and the loader read now."""
        try:
            total = len(self)
        except TypeError:
            total = None
        return {
            "mode": self._mode,
            "batches_yielded": self._yielded,
            "num_batches": total,
            "iterable": False,
            "loaders": [
                loader.state_dict() if callable(getattr(loader, "state_dict", None)) else None
                for loader in self._loaders
            ],
            "taken": list(self._taken),
            "ended": sorted(self._ended),
            "current": self._current,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict`'s position: the next iteration continues that epoch."""
        if not isinstance(state, Mapping) or "loaders" not in state:
            raise TypeError(
                "CombinedLoader.load_state_dict needs the dict that its state_dict() returned, got "
                f"{type(state).__name__}"
                + (f" with keys {sorted(state)}" if isinstance(state, Mapping) else "")
            )
        if state.get("mode") != self._mode or len(state["loaders"]) != len(self._loaders):
            raise ValueError(
                f"cannot resume the CombinedLoader position: the checkpoint's is mode={state.get('mode')!r} "
                f"over {len(state['loaders'])} loaders, this one mode={self._mode!r} over "
                f"{len(self._loaders)}, so batches would not line up"
            )
        for loader, saved in zip(self._loaders, state["loaders"], strict=True):
            if saved is not None and callable(getattr(loader, "load_state_dict", None)):
                loader.load_state_dict(saved)
        self._yielded = int(state["batches_yielded"])
        self._taken = [int(n) for n in state["taken"]]
        self._ended = {int(i) for i in state["ended"]}
        if self._mode in ("max_size", "max_size_cycle"):
            # A loader saved at its epoch's end has ended, though its end was not read yet: restored, it
            # starts its next epoch, where the uninterrupted run gives None (max_size) or counts it as
            # ended before it starts it again (max_size_cycle: the epoch ends with the last loader to end).
            self._ended |= {
                i
                for i, saved in enumerate(state["loaders"])
                if saved is not None and position_ends_epoch(saved)
            }
        self._current = int(state["current"])
        finished = [saved is not None and position_ends_epoch(saved) for saved in state["loaders"]]
        if self._mode == "sequential":
            # (the loader read last may be at its end, unread: the next one's turn)
            while self._current < len(self._loaders) and finished[self._current]:
                self._current += 1
        # The epoch's last batch was given: the rest of it is empty, as the Trainer reads such a position.
        self._epoch_over = position_ends_epoch(state) or (self._mode == "min_size" and any(finished))
        self._restored = True


def _is_leaf(tree: Any) -> bool:
    """A loader, as Lightning's `_tree_flatten` tells one: anything but a dict, list or tuple, and one of
    these that holds only numbers and strings (a list of samples)."""
    if not isinstance(tree, Mapping | list | tuple):
        return True
    children = tree.values() if isinstance(tree, Mapping) else tree
    return all(isinstance(child, int | float | str) for child in children)


def _flatten(tree: Any, path: str) -> tuple[Any, list[tuple[Any, str]]]:
    """The loaders of a (nested) dict / list / tuple of them, in order, with where each is (``["a"][0]``),
    and the structure to put their batches back into (None for a loader)."""
    if _is_leaf(tree):
        return None, [(tree, path)]
    keys = list(tree) if isinstance(tree, Mapping) else range(len(tree))
    specs, leaves = [], []
    for key in keys:
        spec, found = _flatten(tree[key], f"{path}[{key!r}]")
        specs.append(spec)
        leaves += found
    return (type(tree), list(keys), specs), leaves


def _unflatten(spec: Any, batches: Iterator[Any]) -> Any:
    """`_flatten`'s structure with the next of `batches` in each loader's place."""
    if spec is None:
        return next(batches)
    kind, keys, specs = spec
    children = [_unflatten(child, batches) for child in specs]
    if issubclass(kind, Mapping):
        return dict(zip(keys, children, strict=True))
    if issubclass(kind, tuple):
        return kind(*children) if hasattr(kind, "_fields") else tuple(children)
    return children
