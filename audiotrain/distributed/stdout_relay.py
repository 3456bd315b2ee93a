"""The ranks' stdout of a recipe's local job, passed on through the launching process.

Open MPI forwards a rank's stdout through its own daemons to ``mpirun``'s stdout, and ignores a write there
that fails: with ``| head`` gone or ``> results.txt`` on a full disk, rank 0's results went nowhere and
the job still ended with status 0, where one process ends with 141 or with ``error: cannot write to stdout``
and 1. `StdoutRelay` reads ``mpirun``'s stdout and writes it on this process's, so a failed write is seen
here and the job ends as one process would.
"""

from __future__ import annotations

import codecs
import os
import signal
import sys
import threading
import time

from audiotrain._system import SIGPIPE, discard_stdout, stdout_write_error, write_whole

#: How long the end of a job waits for more of the ranks' output after ``mpirun`` ended (a process the job
#: left behind may hold the pipe open). A reader slower than the job (``| less``) is waited for however long.
DRAIN_TIMEOUT_S = 10.0


class StdoutRelay:
    """Copies what is written to the pipe `fd` to ``sys.stdout`` in a thread of its own, to the pipe's end.

    After the first write that fails, what comes is read and dropped (a job blocked on a full pipe would
    never end), and `status` says how the job should end instead of 0."""

    def __init__(self, fd: int):
        self._fd = fd
        self._broken_pipe = False
        self._error_line: str | None = None
        self._reading_since: float | None = None  # (None while a chunk is being written)
        # For a text stream in stdout's place: a character the ranks wrote may come in two reads.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._thread = threading.Thread(target=self._copy, name="audiotrain-stdout-relay", daemon=True)
        self._thread.start()

    def _copy(self) -> None:
        try:
            while True:
                self._reading_since = time.monotonic()
                chunk = os.read(self._fd, 65536)
                self._reading_since = None
                if not (self._broken_pipe or self._error_line):
                    self._write(chunk, final=not chunk)  # (final: a character left incomplete is said)
                if not chunk:
                    break
        finally:
            os.close(self._fd)

    def _write(self, data: bytes, final: bool = False) -> None:
        stream = sys.stdout
        if stream is None:  # a closed stdout (`>&-`): what the ranks print goes nowhere, as in one process
            return
        try:
            if hasattr(stream, "buffer"):
                if not data:
                    return
                write_whole(stream.buffer, data)  # (raw under `python -u`: it may take part of it)
            else:  # a text stream put in its place (a notebook, a test's capture)
                text = self._decoder.decode(data, final)
                if not text:
                    return
                stream.write(text)
            stream.flush()
        except BrokenPipeError:
            self._broken_pipe = True
            discard_stdout()
        except OSError as error:
            said = stdout_write_error(error)
            if said is None:  # (not the storage's: an I/O error of a terminal that went away)
                discard_stdout()
                said = f"error: cannot write to stdout: {error.strerror or error}"
            self._error_line = said

    def finish(self, log) -> int | None:
        """Wait for the last of the output; where a write failed, the job's exit status as one process's
        (141: the reader left, `| head`; 1, with its line given to `log`: the storage failed; 130, said, where
        a Ctrl-C ended the wait for a reader that had not taken it all), else None."""
        # Only a wait for output that may never come is bounded: a write blocked on a paused reader (a
        # pager, a terminal held by Ctrl-S) ends when it reads, and exiting first would lose the rest.
        # (a read that began before this call waited on the job, not on a process left behind)
        job_ended = time.monotonic()
        try:
            while self._thread.is_alive():
                since = self._reading_since
                waited = 0.0 if since is None else time.monotonic() - max(since, job_ended)
                if waited >= DRAIN_TIMEOUT_S:
                    break
                self._thread.join(DRAIN_TIMEOUT_S - waited)
        except KeyboardInterrupt:  # (the job is over: a Ctrl-C here ends the wait, not in a traceback)
            log("audiotrain: stopped by Ctrl-C before stdout's reader took the job's last output (dropped)")
            return 128 + signal.SIGINT
        if self._error_line is not None:
            log(self._error_line)
            return 1
        return 128 + SIGPIPE if self._broken_pipe else None
