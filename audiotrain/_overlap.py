"""Run each item's follow-up work on a second thread while the next item is made.

The chord recipe transcribes songs in two halves: the model's frame posteriors (MLX, which keeps about one and
a half of a small machine's cores busy) and their decoding into segments (numpy, one core, about a tenth of
the time). Decoding one song while the model reads the next keeps both cores at work: `evaluate` and
`predict` over many songs transcribe 6-11% more audio a second on a 2-core Zen 3 (benchmarks/chords_rounds.md,
twenty-sixth round). The model's half stays on the calling thread: MLX and signals (Ctrl-C) are the main
thread's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def work_behind(
    items: Iterable[Item], work: Callable[[Item], Result], name: str = "audiotrain-behind"
) -> Iterator[tuple[Item, Result]]:
    """``(item, work(item))`` for each of `items`, in their order; ``work(item)`` runs on one worker thread
    while the next item is made (the iteration of `items` stays on the calling thread). An exception of
    `work` is raised in its item's turn. One raised while an item is made (a second Ctrl-C in the model's
    half) is raised after the item made before it has had its turn, as it had when each item's work was
    done before the next was made. The worker is never left running: leaving the loop waits for the work
    under way. At most one item waits for its work."""
    iterator = iter(items)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as worker:
        pending: tuple[Item, Future[Result]] | None = None
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                break
            except BaseException:
                if pending is not None:
                    yield pending[0], pending[1].result()
                raise
            future = worker.submit(work, item)
            if pending is not None:
                yield pending[0], pending[1].result()
            pending = (item, future)
        if pending is not None:
            yield pending[0], pending[1].result()
