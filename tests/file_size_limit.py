"""A disk that fills up in the middle of a write, for tests: files of this process cannot grow past a size.

Writing to ``/dev/full`` fails at the first byte, where Python raises the error itself; a disk that fills up
takes part of a write and fails inside a library's C code (numpy's ``tofile``, libsndfile's callbacks),
whose own reports were the problem. ``RLIMIT_FSIZE`` does that (with EFBIG, "File too large", for ENOSPC).
"""

import contextlib
import signal
import sys

import pytest

if sys.platform == "win32":
    resource = None
else:
    import resource

needs_file_size_limit = pytest.mark.skipif(resource is None, reason="needs RLIMIT_FSIZE (POSIX)")


@contextlib.contextmanager
def files_cannot_grow_past(n_bytes: int):
    """While inside, a write that would make a file longer than `n_bytes` fails with EFBIG."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # (its default ends the process)
    resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
