"""Walking a data folder as its owner sees it in a file browser: hidden entries left out, and counted.

A folder copied from a Mac to a FAT or exFAT stick or a network share holds an AppleDouble twin ``._x.wav``
of every file, a ``.DS_Store``, and ``.Trashes`` / ``.Spotlight-V100`` folders, with deleted songs in the
trash. None of them is a song: names starting with ``.`` are hidden on every system, so they are left out
(a hidden folder is not entered) and listed apart, for a report to count in one line.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from audiotrain._files import COMMON_PATH_MAX, path_limit
from audiotrain.audio import AUDIO_SUFFIXES

#: The suffixes a folder scan takes as audio (the chord recipe's train, evaluate, cv and predict on a folder):
#: `audiotrain.audio.AUDIO_SUFFIXES` and the other formats libsndfile, the loader, reads: AIFF-C (macOS's
#: afconvert), Core Audio (Logic, GarageBand), Sony Wave64, RF64, Sun/NeXT audio and Broadcast WAV (``.bwf``:
#: field recorders and broadcast tools; a WAV with a ``bext`` chunk). A file `predict FILE` transcribes is
#: then found in a folder too, rather than passed over without a word.
AUDIO_FILE_SUFFIXES = AUDIO_SUFFIXES | frozenset({".aifc", ".caf", ".w64", ".rf64", ".au", ".snd", ".bwf"})

#: How many hidden names `hidden_note` shows.
HIDDEN_NAMES_SHOWN = 3


def is_hidden(name: str) -> bool:
    """A name the file browsers hide: it starts with ``.`` (``.DS_Store``, ``._x.wav``, ``.Trashes``)."""
    return name.startswith(".")


def nfc(name: str) -> str:
    """The form two names are compared in: macOS stores names decomposed (NFD), a name typed elsewhere
    (an annotation's, a metadata row's) is composed (NFC); both look alike and must pair."""
    return unicodedata.normalize("NFC", name)


def as_stored(path: Path) -> Path:
    """`path` as the disk spells it where it is missing as typed but each missing name is there in the other
    Unicode form, one entry of its folder alike in composed form (`nfc`): ``Café.wav`` typed composed for
    the decomposed file a Mac copied. macOS's file systems ignore the form, so a pairs file, ``--data`` or
    ``predict FILE`` that works there names the file here too. Else `path` as it is, to be named missing."""
    if os.path.lexists(path):
        return path
    stored = Path(path.anchor)
    for name in path.parts[1:] if path.anchor else path.parts:
        if not os.path.lexists(stored / name):
            try:
                alike = [entry for entry in os.listdir(stored) if nfc(entry) == nfc(name)]
            except OSError:  # (not a folder, or not readable: missing as typed)
                return path
            if len(alike) != 1:
                return path
            name = alike[0]
        stored /= name
    return stored


def one_file_kind(names: Sequence[str | Path]) -> str:
    """How names that would be one file (a group of predict's `sharing_one_file`) differ: ``"Unicode form"``
    where they are one name in composed form (`nfc`: one file on macOS whatever the case rules), else
    ``"case"``."""
    return "Unicode form" if len({nfc(str(name)) for name in names}) == 1 else "case"


def distinguishable(names: Sequence[str | Path]) -> list[str]:
    """`names` as a message shows them: escaped beyond ASCII (``Beyonc\\xe9``, ``Beyonce\\u0301``) where
    they are one name in composed form, and so would print alike; else as they are."""
    if len({nfc(str(name)) for name in names}) > 1:
        return [str(name) for name in names]
    return [str(name).encode("ascii", "backslashreplace").decode("ascii") for name in names]


def walk_visible_following_links(
    root: str | Path, *, only_within: bool = False
) -> tuple[list[Path], list[Path], list[Path]]:
    """(every visible entry under `root`: files, folders and links, sorted; the hidden entries, sorted; the
    folders not entered, sorted). A hidden folder is not entered. A link whose target is missing is listed,
    so that a caller can name it.

    Symlinked folders are entered too (a library whose albums are links to another disk), except those
    whose real folder was walked already (a link back up the tree, or a second way to one folder): those
    are the folders not entered, so that a loop of links ends and no folder is walked twice.
    With `only_within`, a link to a folder outside `root` is not entered either, and listed with them (CLAP's
    data folder, of which nothing outside is read).

    The folders under `root` itself are walked first, then those behind its links, then those behind the
    links found there, and so on: a folder reached both ways is walked under its own name.

    An entry whose path is longer than the system takes (``PATH_MAX``, 4096 bytes on Linux, with its NUL:
    folders nested that deep) is a ValueError naming it: no call can read it by that path, and each raised a
    raw "OSError: File name too long" (os.walk itself passed over such a folder without a word)."""
    visible, hidden, not_entered = [], [], []
    walked: set[str] = set()
    real_root = Path(os.path.realpath(root))
    path_max = path_limit(root, "PC_PATH_MAX", COMMON_PATH_MAX)
    tops = [Path(root)]
    for top in tops:  # (grows as links are found)
        for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
            here = Path(dirpath)
            real = os.path.realpath(here)
            if real in walked:
                not_entered.append(here)
                dirnames[:] = []
                continue
            walked.add(real)
            for name in dirnames + filenames:
                _refuse_a_path_too_long(here / name, path_max, root)
                (hidden if is_hidden(name) else visible).append(here / name)
            dirnames[:] = sorted(name for name in dirnames if not is_hidden(name))
            # os.walk lists a symlinked folder among the folders but does not enter it: it is walked later.
            for link in (here / name for name in dirnames if (here / name).is_symlink()):
                inside = Path(os.path.realpath(link)).is_relative_to(real_root)
                (tops if inside or not only_within else not_entered).append(link)
    return sorted(visible), sorted(hidden), sorted(not_entered)


def _refuse_a_path_too_long(path: Path, path_max: int, root: str | Path) -> None:
    """Raise a ValueError naming `path` where the system cannot take it (the path as given: a relative one
    is counted without the working folder, as the system counts it)."""
    size = len(os.fsencode(str(path)))
    if size >= path_max:  # (PATH_MAX counts the terminating NUL)
        raise ValueError(
            f"{path}: its path is {size} bytes, and this system reads paths of {path_max - 1} at most: "
            f"folders nested this deep in {root} cannot be read; move them nearer the top or shorten "
            "their names"
        )


def hidden_note(hidden: list[Path], root: Path) -> str:
    """``"3 hidden files and folders ignored (names starting with '.': ._a.wav, .DS_Store, .Trashes)"``;
    "" when there are none."""
    if not hidden:
        return ""
    names = [path.relative_to(root).as_posix() for path in hidden[:HIDDEN_NAMES_SHOWN]]
    more = ", ..." if len(hidden) > HIDDEN_NAMES_SHOWN else ""
    what = "file or folder" if len(hidden) == 1 else "files and folders"
    return f"{len(hidden)} hidden {what} ignored (names starting with '.': {', '.join(names)}{more})"
