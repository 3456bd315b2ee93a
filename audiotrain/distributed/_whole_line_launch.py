"""mlx.launch, with each of its log lines written in one write: what `audiotrain launch` runs.

mlx.launch logs a rank's end from that rank's thread with ``print("\\033[33m[WARN]", message, "\\033[0m")``,
which writes the tag, the separators, the message, the reset and the newline one by one, while its main
thread passes on the ranks' own output: the writes of two ranks' lines and a rank's output interleave (each
a CI failure of the launcher's log: ``[WARN] Node with rank 1 exited with code 3[WARN]``). Written whole, a
log line can only end a line of the stream, where the launcher cuts it out (`failures._cut_log_line`).

Run as a script (``python this-file mlx.launch-arguments``), not imported: it imports nothing of audiotrain,
so it runs wherever mlx.launch does. Where mlx's launcher has another layout, the names it lacks are left as
they are (their lines are still read, by guesswork, `failures._InLaunchTerms`).
"""

import os
import shlex
import sys
import warnings

#: A folder `audiotrain launch` removes after the job, however it ended (its job folder), for the files
#: mlx.launch (0.32) leaves in the user's TMPDIR: each local rank's hostfile and pidfile, made with mktemp by
#: the rank's launch script and never deleted (91 in one run of the test suite). Taken out of the
#: environment here, so that the ranks do not inherit it; they keep the user's TMPDIR.
TEMP_FOLDER_ENV = "AUDIOTRAIN_LAUNCHER_TEMP"


def _temporary_files_in(folder: str, launch) -> None:
    """Make mlx.launch's temporary files in `folder`: its MPI hostfile (Python's tempfile, in this process)
    and, for the ranks on this machine, the files their launch script makes with mktemp. A launcher of
    another layout is left as it is."""
    import tempfile

    tempfile.tempdir = folder
    remote = getattr(launch, "RemoteProcess", None)
    make = getattr(remote, "make_launch_script", None)
    if not callable(make):
        return

    def make_launch_script(rank, python, cwd, files, env, command, is_local):
        script = make(rank, python, cwd, files, env, command, is_local)
        # (TMPDIR for mktemp alone, GNU's and BSD's: the rank's own environment is the user's)
        return script.replace("$(mktemp)", f"$(TMPDIR={shlex.quote(folder)} mktemp)") if is_local else script

    remote.make_launch_script = staticmethod(make_launch_script)


def _whole_line_logger(colour: str, tag: str, with_verbose: bool):
    """A stand-in for mlx's `log`/`log_warning`/`log_error` that writes the same text in one write."""

    def write(*args, sep=" ", end="\n", **_ignored):
        if with_verbose:
            verbose, *args = args
            if not verbose:
                return
        text = sep.join(str(part) for part in (f"\033[{colour}m[{tag}]", *args, "\033[0m")) + end
        sys.stderr.flush()  # (anything written through the text layer before it goes first)
        sys.stderr.buffer.write(text.encode(errors="replace"))  # (one write, under the buffer's lock)
        sys.stderr.buffer.flush()

    return write


def _write_whole(binary, data: bytes) -> None:
    """`audiotrain._system.write_whole`, here since this file imports nothing of audiotrain: under
    ``python -u`` stdout's ``.buffer`` is the raw file, whose write may take part of `data` (a signal cut it
    short) and says how much; the rest of the ranks' output was lost."""
    while data:
        written = binary.write(data)
        if written is None or written >= len(data):  # (None: a stand-in that does not count, taken as whole)
            return
        data = data[written:]


class _StdoutThatMayFail:
    """mlx.launch's ``sys.stdout.buffer``, through which it passes the ranks' output: a write that fails
    (``| head`` gone, ``> results.txt`` on a full disk) ended it in a raw traceback (status 1) while the ranks
    ran on. What comes after is dropped, and `main` ends as a one-process command does (141, or one line)."""

    def __init__(self, buffer):
        self._buffer, self.error = buffer, None

    def write(self, data: bytes) -> int:
        if self.error is None:
            try:
                _write_whole(self._buffer, data)
                self._buffer.flush()
            except OSError as error:
                self.error = error
        return len(data)

    def flush(self) -> None:
        pass

    def __getattr__(self, name):
        return getattr(self._buffer, name)


def _ended_as_one_process(status: int, output: _StdoutThatMayFail) -> int:
    """The status of a job whose stdout `output` failed, as one process's: 141 where the reader left, else 1
    and the one line that says why (the job's own failure, a status other than 0, stays)."""
    if output.error is None or status != 0:
        return status
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # (Python's flush at exit would fail the same way)
    os.close(devnull)
    if isinstance(output.error, BrokenPipeError):
        return 141  # (128 + SIGPIPE, as a shell reports a command the reader's leaving ended)
    why = os.strerror(output.error.errno).lower() if output.error.errno else str(output.error)
    sys.stderr.write(f"error: cannot write to stdout: {why}\n")
    return 1


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or os.curdir) == here:
        del sys.path[0]  # (this file's folder, audiotrain/distributed: its modules are not mlx's to import)
    from mlx._distributed_utils import common, launch

    temp = os.environ.pop(TEMP_FOLDER_ENV, None)
    if temp and os.path.isdir(temp):
        _temporary_files_in(temp, launch)

    for name, colour, tag, with_verbose in (
        ("log", "32", "INFO", True),
        ("log_warning", "33", "WARN", False),
        ("log_error", "31", "ERROR", False),
    ):
        for module in (common, launch):  # (where they are defined, and where launch imported them)
            if callable(getattr(module, name, None)):
                setattr(module, name, _whole_line_logger(colour, tag, with_verbose))
    sys.argv[0] = "mlx.launch"  # (its usage and errors name it: the launcher puts its own name there)
    # mlx.launch's thread per rank leaves the rank's three pipes to the collector: under a user's
    # PYTHONWARNINGS=error (which the ranks inherit, as they should) each was an "Exception ignored ...
    # ResourceWarning: unclosed file" traceback in the job's log. Those are mlx.launch's, not the job's.
    warnings.simplefilter("ignore", ResourceWarning)
    output = None
    if sys.stdout is not None and hasattr(sys.stdout, "buffer"):
        output = _StdoutThatMayFail(sys.stdout.buffer)
        sys.stdout = _TextWith(sys.stdout, output)
    try:
        status = launch.main()
    except SystemExit as exit_:  # (how it ends where a rank failed)
        if output is None or not isinstance(exit_.code, (int, type(None))):
            raise
        status = exit_.code
    return status if output is None else _ended_as_one_process(status or 0, output)


class _TextWith:
    """``sys.stdout`` with `buffer` in place of its own binary layer (the text layer's is read-only)."""

    def __init__(self, text, buffer):
        self._text, self.buffer = text, buffer

    def __getattr__(self, name):
        return getattr(self._text, name)


if __name__ == "__main__":
    sys.exit(main())
