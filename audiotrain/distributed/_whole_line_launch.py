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
import sys
import warnings


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


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or os.curdir) == here:
        del sys.path[0]  # (this file's folder, audiotrain/distributed: its modules are not mlx's to import)
    from mlx._distributed_utils import common, launch

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
    return launch.main()


if __name__ == "__main__":
    sys.exit(main())
