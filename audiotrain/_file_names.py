"""File names as text that reads the same in every locale, for the records that store them.

Python decodes a file name's bytes with the locale's encoding. ``Café`` (its UTF-8 bytes on disk) is
``'Café'`` in a UTF-8 locale, ``'Caf\\udcc3\\udca9'`` (surrogate escapes) in an ASCII one
(``LC_ALL=C PYTHONUTF8=0``) and ``'CafÃ©'`` in a Latin-1 one. A name a run stores (a checkpoint's song
list) and another process compares (a resume, an evaluation) in another locale must not depend on the
locale that wrote it: it is stored as a UTF-8 locale reads it (`portable_name`), which is what it always was
in the common case, and a stored name is read back with `stored_name`, which also reads the surrogate
escapes of a record written in an ASCII locale as the characters they encode; `local_name` turns it back
into this process's form, to open the file it names.
"""

from __future__ import annotations

import os


def portable_name(name: str | os.PathLike[str]) -> str:
    """`name`, a name this process got from the file system (or the command line), as a UTF-8 locale reads
    it: its bytes decoded as UTF-8, a byte that is not UTF-8 kept as a surrogate escape. Text no file name of
    this locale can hold (typed in Python, not encodable in an ASCII locale) is kept as it is."""
    try:
        return os.fsencode(name).decode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return os.fspath(name)


def stored_name(text: str) -> str:
    """A name read back from a record (`portable_name`'s form). The surrogate escapes of one written in an
    ASCII locale (by an audiotrain of before the names were portable) become the characters their bytes
    encode in UTF-8; a portable name is kept as it is, in every locale."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # (a surrogate no decoding gives: a hand-edited record's; compared as it is)
        return text


def local_path(recorded: object) -> object:
    """A path a run record holds (UTF-8 text) as this process's file functions take it (`local_name`:
    surrogate escapes in an ASCII locale, a cron job's), or None for none; a value that is no text as it
    is."""
    return (local_name(recorded) if isinstance(recorded, str) else recorded) or None


def local_name(text: str) -> str:
    """A stored name (`portable_name`'s form) as this process's file functions take it: the inverse of
    `portable_name`, to open or remove the file a record names."""
    try:
        return os.fsdecode(text.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        return text
