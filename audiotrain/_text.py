"""Pieces of user-facing messages that many of them share."""

from __future__ import annotations

import math
import os
import re
import shlex
import sys
import unicodedata
from collections.abc import Sequence


def byte_size(n: float) -> str:
    """`n` bytes for a reader: "512 B", "4.0 kB", "1.6 MB", "2.3 GB" (decimal units, as the other messages
    that give sizes in MB or GB, and as file managers count)."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def listed(items: Sequence[object], shown: int = 3, sep: str = ", ") -> str:
    """The first `shown` of `items` joined with `sep`, then " and <n> more" for the rest: a message names a
    few and counts the others, staying one readable line however many there are."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return sep.join(str(item) for item in items[:shown]) + more


# Control characters but the line break and the tab (C0, DEL and C1): a file name in a folder from someone
# else that holds ESC or BEL would recolour or clear the terminal, or ring it, where a report lists the file.
# Also the characters that change how the text around them shows without showing themselves: the bidi
# controls (a right-to-left override displayed the rest of the line reversed, "Trojan source") and the
# invisible spaces (a zero-width space made "t\u200b.lab" look like "t.lab"). The joiners (U+200C, U+200D)
# are left as they are: Persian words and emoji sequences need them.
_CONTROL_CHARACTERS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]"
)


def without_control_characters(text: str) -> str:
    """`text` with its control characters but line breaks and tabs, and its bidi controls and invisible
    spaces, written as escapes, as ``repr`` writes them (``s0\\x1b[31m.wav``, ``t\\u200b.lab``): for a report
    that lists file names, which may hold any character but ``/``."""
    return _CONTROL_CHARACTERS.sub(_escape, text)


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def seconds_text(seconds: float) -> str:
    """`seconds` to a tenth, as a message gives a time; a time beyond a year (a damaged annotation's 1e308)
    in six significant digits, not the hundreds that ``:.1f`` writes."""
    return f"{seconds:.1f}" if abs(seconds) < 3.2e7 else f"{seconds:.6g}"


def audio_speed(audio_seconds: float, wall_seconds: float) -> str:
    """Seconds of audio transcribed per second of wall time ("115 s of audio per second"), whole from 10 up,
    below that to two significant digits, so a run of a few milliseconds of audio (model loading dominates)
    is not said to go at 0 s per second."""
    speed = audio_seconds / max(wall_seconds, 1e-9)
    if speed >= 9.5 or speed <= 0:
        return f"{speed:.0f} s of audio per second"
    speed = float(f"{speed:.2g}")  # (0.999 -> 1.0, not 1.00)
    decimals = max(1, 1 - math.floor(math.log10(speed)))  # (0.00045 -> 5 decimals: no "4.5e-04")
    return f"{speed:.{decimals}f} s of audio per second"


def plural(n: int, word: str, many: str | None = None) -> str:
    """`n` and `word` for a reader: "1 clip", "2 clips", "0 clips"; `many` is the plural where adding an
    "s" is wrong ("1 batch" / "2 batches")."""
    return f"{n} {word}" if n == 1 else f"{n} {many or word + 's'}"


def display_width(text: str, encoding: str | None = None, errors: str = "strict") -> int:
    """The terminal columns `text` takes: 2 for a wide character (CJK, ``unicodedata.east_asian_width`` W
    or F), 0 for a combining one, else 1. With the `encoding` and `errors` of the stream it is printed on, a
    character that stream cannot encode counts as what it becomes there: its escape under
    ``backslashreplace`` (``\\u4e2d``, an ASCII locale), one byte otherwise (a name's undecodable byte,
    written back as it was)."""
    width = 0
    for char in text:
        if encoding is not None:
            try:
                char.encode(encoding)
            except UnicodeEncodeError:
                width += len(char.encode(encoding, "backslashreplace")) if errors == "backslashreplace" else 1
                continue
            except LookupError:
                encoding = None
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def lone_surrogate(text: str) -> str | None:
    """Where `text` holds a lone surrogate (half a UTF-16 pair, which a JSON ``\\ud800`` escape decodes to and
    no UTF-8 text can hold), a message part naming it and its character index; None for text that encodes.
    `tokenizers` refused such text with a bare TypeError naming nothing."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return (
            f"a lone surrogate ({text[error.start]!r} at character {error.start}: half of a UTF-16 pair, as a "
            "JSON \\u escape writes it; write the whole character)"
        )
    return None


def is_number(text: str) -> bool:
    """Whether `text` reads as a float (``"2.5"``, ``"1e3"``, ``"nan"``): numbers told from names."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def shell_word(word: str) -> str:
    """`word` quoted for a shell, in a command line printed for the user to paste. A word the streams it may
    be printed on cannot carry as text is written in ANSI-C quotes, ``$'...\\xc3\\xa7...'`` (bash, zsh, ksh;
    POSIX sh since 2024), which give the shell the name's very bytes in ASCII any stream carries:
    - a path whose bytes the locale could not decode holds surrogate escapes (``os.fsdecode(b"\\xff")``);
      written as is, it fails to encode to a UTF-8 stream, or comes out as a literal ``\\udcff``;
    - on an ASCII terminal (``PYTHONIOENCODING=ascii``) a name such as ``実験 ação`` came out escaped by
      the stream (``'\\u5b9f\\u9a13 a\\xe7\\xe3o'``), which a shell reads as those backslashes."""
    if not any("\udc80" <= ch <= "\udcff" for ch in word) and _streams_carry(word):
        return shlex.quote(word)
    escaped = []
    for ch in word:
        if "\udc80" <= ch <= "\udcff":
            escaped.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ch in "\\'":
            escaped.append("\\" + ch)
        elif not ch.isprintable() or not _streams_carry(ch):
            escaped.append("".join(f"\\x{byte:02x}" for byte in _file_name_bytes(ch)))
        else:
            escaped.append(ch)
    return "$'" + "".join(escaped) + "'"


def _streams_carry(text: str) -> bool:
    """Whether stdout and stderr both encode `text` as it is (not escaped by their error handler)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            text.encode(getattr(stream, "encoding", None) or "utf-8")
        except UnicodeEncodeError:
            return False
        except LookupError:  # (a caller's stream naming an encoding Python lacks)
            continue
    return True


def _file_name_bytes(char: str) -> bytes:
    """`char` as the file system spells it (UTF-8 but in a non-UTF-8 locale), UTF-8 where it cannot."""
    try:
        return os.fsencode(char)
    except UnicodeEncodeError:
        return char.encode("utf-8", "backslashreplace")
