"""Warnings a run hides for its own duration, in a process whose other threads run on beside it.

`warnings.catch_warnings` puts back, as it ends, the whole filter list it found as it began, and that list is
the process's: two recipe runs in the threads of one sweep (Optuna's ``n_jobs=2``) that overlap, the first to
start ending first, left the second's "ignore" filters in place for good (the Trainer's short-epoch warning
was hidden from every later fit of the process), and a filter another thread added meanwhile was dropped.
`ignoring_warnings` takes out again only the filters it added, once no run of the process needs them.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator

_lock = threading.Lock()
_holders: dict[str, int] = {}  # message pattern -> runs of this process ignoring it now
_entries: dict[str, tuple] = {}  # message pattern -> the filter entry added for it


@contextlib.contextmanager
def ignoring_warnings(*messages: str) -> Iterator[None]:
    """Ignore the warnings whose message matches one of `messages` (regular expressions matched at the
    message's start, as `warnings.filterwarnings` matches them) until the block ends."""
    with _lock:
        for message in messages:
            if not _holders.get(message):
                before = list(warnings.filters)
                warnings.filterwarnings("ignore", message=message)
                _entries[message] = warnings.filters[0]
                if _entries[message] in before:
                    # filterwarnings took out an equal filter (the user's own) to put its own first: put
                    # the user's back where it was, as theirs, for it to outlive this block.
                    where = before.index(_entries[message])
                    warnings.filters.insert(where + 1, before[where])
            _holders[message] = _holders.get(message, 0) + 1
    try:
        yield
    finally:
        with _lock:
            for message in messages:
                _holders[message] -= 1
                if _holders[message]:
                    continue
                del _holders[message]
                entry = _entries.pop(message)
                kept = [f for f in warnings.filters if f is not entry]
                if len(kept) != len(warnings.filters):
                    warnings.filters[:] = kept
                    mutated = getattr(warnings, "_filters_mutated", None)
                    if mutated is not None:  # (what filterwarnings calls: the warn registries start afresh)
                        mutated()
