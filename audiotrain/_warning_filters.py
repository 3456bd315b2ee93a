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
_holders: dict[tuple, int] = {}  # (message, category, module) -> runs of this process ignoring it now
_entries: dict[tuple, tuple] = {}  # (message, category, module) -> the filter entry added for it


@contextlib.contextmanager
def ignoring_warnings(*messages: str, category: type[Warning] = Warning, module: str = "") -> Iterator[None]:
    """Ignore the warnings of `category` from `module` whose message matches one of `messages` (regular
    expressions matched at the start, as `warnings.filterwarnings` matches them; none given: any message)
    until the block ends."""
    keys = [(message, category, module) for message in messages or ("",)]
    with _lock:
        for key in keys:
            if not _holders.get(key):
                before = list(warnings.filters)
                warnings.filterwarnings("ignore", message=key[0], category=category, module=module)
                _entries[key] = warnings.filters[0]
                if _entries[key] in before:
                    # filterwarnings took out an equal filter (the user's own) to put its own first: put
                    # the user's back where it was, as theirs, for it to outlive this block (as main's
                    # afbe791d does for messages alone).
                    where = before.index(_entries[key])
                    warnings.filters.insert(where + 1, before[where])
            _holders[key] = _holders.get(key, 0) + 1
    try:
        yield
    finally:
        with _lock:
            for key in keys:
                _holders[key] -= 1
                if _holders[key]:
                    continue
                del _holders[key]
                entry = _entries.pop(key)
                kept = [f for f in warnings.filters if f is not entry]
                if len(kept) != len(warnings.filters):
                    warnings.filters[:] = kept
                    mutated = getattr(warnings, "_filters_mutated", None)
                    if mutated is not None:  # (what filterwarnings calls: the warn registries start afresh)
                        mutated()
