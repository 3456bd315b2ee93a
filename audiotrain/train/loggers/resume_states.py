"""Which saved logger state a resumed fit's logger takes: the one of its own kind (class), not the one at its
place in the list. Matched by place, `[CSVLogger, WandbLogger]` resumed from a checkpoint of `[WandbLogger]`
gave the CSV logger the W&B run's state and the W&B logger none, which started a new W&B run; a list in
another order gave TensorBoard the CSV logger's version (another folder, whose steps it purged)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def logger_kinds(loggers: Sequence[Any]) -> list[str]:
    """The kind of each logger, saved beside their states (`match_states` reads it back)."""
    return [f"{type(lg).__module__}.{type(lg).__qualname__}" for lg in loggers]


def match_states(
    loggers: Sequence[Any], states: Sequence[Any], kinds: Sequence[str] | None
) -> list[tuple[Any, Any]]:
    """(logger, its saved state) pairs: each logger takes the first unused state of its kind, in order, else
    the first unused one of its class name (a class the script now imports by another module path: saved
    as `__main__.MyLogger` by `python train.py`, resumed as `pkg.train.MyLogger` by `python -m pkg.train`);
    a logger of a kind the checkpoint has no state of takes none (a new run). A checkpoint that saved no
    kinds (an older audiotrain) pairs them by place, as it was written."""
    if kinds is None or len(kinds) != len(states):
        return list(zip(loggers, states))
    unused = list(range(len(states)))
    taken: dict[int, int] = {}
    own_kinds = logger_kinds(loggers)
    for same in (lambda a, b: a == b, lambda a, b: a.rpartition(".")[2] == b.rpartition(".")[2]):
        for place, kind in enumerate(own_kinds):
            index = next((i for i in unused if same(str(kinds[i]), kind)), None)
            if place not in taken and index is not None:
                unused.remove(index)
                taken[place] = index
    return [(loggers[place], states[taken[place]]) for place in sorted(taken)]
