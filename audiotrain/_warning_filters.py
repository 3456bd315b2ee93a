"""Warnings a run hides for its own duration, in a process whose other threads run on beside it.

`warnings.catch_warnings` puts back, as it ends, the whole filter list it found as it began, and that list is
the process's: two recipe runs in the threads of one sweep (Optuna's ``n_jobs=2``) that overlap, the first to
start ending first, left the second's "ignore" filters in place for good (the Trainer's short-epoch warning
was hidden from every later fit of the process), and a filter another thread added meanwhile was dropped.
`ignoring_warnings` takes out again only the filters it added, once no run of the process needs them.
"""

from __future__ import annotations

import contextlib
import re
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
                # The entry warnings.filterwarnings makes, put first without it: it (as every change through
                # the warnings module) starts each module's once-per-place registry afresh, and every run of
                # a sweep showed the process's earlier warnings again. An "ignore" filter needs no fresh
                # start: an ignored warning is not recorded as shown. (A user's equal filter stays theirs.)
                pattern = re.compile(key[0], re.I) if key[0] else None
                _entries[key] = ("ignore", pattern, category, re.compile(module) if module else None, 0)
                warnings.filters.insert(0, _entries[key])
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
                    warnings.filters[:] = kept  # (no fresh start of the registries either: see above)
