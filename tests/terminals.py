"""A real pseudo-terminal for the tests of what a user sees in one (progress bars, lines)."""

import fcntl
import os
import struct
import termios


def a_terminal(columns: int):
    """A real pseudo-terminal `columns` wide (0: one nobody sized, as ``script`` started by cron gets): the
    file its programs write to, and a function that gives what they wrote."""
    controller, side = os.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    stream = open(side, "w", buffering=1)  # noqa: SIM115 (closed by `written`)

    def written() -> str:
        stream.close()
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # (EIO: the other side is closed and all is read)
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(controller)
        return b"".join(chunks).decode().replace("\r\n", "\n")

    return stream, written
