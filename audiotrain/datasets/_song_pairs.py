"""Pairing audio with annotations kept apart from it: an annotations folder, or a pairing file.

Datasets keep their annotations in a tree of their own, named after the audio only loosely: Isophonics'
``The Beatles/Abbey Road/01 - Come Together.wav`` is annotated in
``chordlab/The Beatles/11_-_Abbey_Road/01_-_Come_Together.lab``. `match_in_annotation_folder` pairs each
audio file with the one annotation anywhere under a folder whose stem matches loosely (`loose_name`: case,
Unicode form ignored, each run of spaces, underscores and hyphens read as one separator), and never guesses between two. Layouts no rule
fits (McGill Billboard's ``0003/audio.wav`` + ``0003/majmin7inv.lab``, GuitarSet's ``_mic`` audio) list their
pairs in a CSV file that `read_song_pairs` reads; a third column may name each song's part of a dataset's
published split (``train``, ``val``, ``test``), used in place of the recipe's own.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable
from pathlib import Path, PureWindowsPath

from audiotrain.datasets._folders import nfc, walk_visible_following_links

#: Suffixes `read_song_pairs` accepts for an annotation (what `read_annotation` reads).
PAIRED_ANNOTATION_SUFFIXES = (".lab", ".jams", ".jamz", ".txt", ".chords")

#: The parts a pairs file's third column may name (`read_song_pairs`).
PAIR_PARTS = ("train", "val", "test")

_HEADERS = (["audio", "annotation"], ["audio", "annotation", "split"])


def loose_name(name: str) -> str:
    """`name` with case and Unicode form ignored, and each run of spaces, underscores and hyphens read as one
    separator (``"Song_00"`` does not match ``"song00"``):
    ``"01 - Come Together"`` and ``"01_-_Come_Together"`` both give ``"01_come_together"``."""
    return re.sub(r"[\s_-]+", "_", nfc(name).lower())


def real(path: Path) -> str:
    """The real path of `path`, to compare two spellings of one file (``./a/x.wav``, a link, an absolute
    path)."""
    return os.path.realpath(path)


def annotations_under(folder: Path, suffixes: Iterable[str]) -> list[Path]:
    """Every visible annotation file under `folder` (symlinked folders entered), sorted."""
    if not folder.is_dir():
        raise FileNotFoundError(f"annotations folder {folder} does not exist or is not a folder")
    wanted = tuple(suffixes)
    entries, _, _ = walk_visible_following_links(folder)
    return [path for path in entries if path.suffix.lower() in wanted and path.is_file()]


def match_in_annotation_folder(
    audio: list[Path], annotations: list[Path], folder: Path, priority: dict[str, int]
) -> tuple[dict[Path, Path], list[tuple[Path, str]], list[Path]]:
    """Pair each of `audio` with the one of `annotations` (those under `folder`) whose stem matches loosely.

    Returns ``(pairs {audio: annotation}, ambiguous [(audio, why)], annotations not paired)``. A name that
    two annotations share (in different folders: one folder's ``x.lab`` and ``x.jams`` are one annotation,
    the suffix earlier in `priority` used), or that two audio files share, pairs none of them: each audio
    file is listed in `ambiguous`, naming the others, and never paired by a guess."""
    by_name: dict[str, list[Path]] = {}
    for path in annotations:
        by_name.setdefault(loose_name(path.stem), []).append(path)
    audio_by_name: dict[str, list[Path]] = {}
    for path in audio:
        audio_by_name.setdefault(loose_name(path.stem), []).append(path)
    pairs: dict[Path, Path] = {}
    ambiguous: list[tuple[Path, str]] = []
    used: set[Path] = set()
    for name, audio_files in audio_by_name.items():
        found = by_name.get(name, [])
        if not found:
            continue
        if len({path.parent for path in found}) == 1:  # one folder: x.lab beside x.jams is one annotation
            found = [min(found, key=lambda path: priority.get(path.suffix.lower(), len(priority)))]
        listed = ", ".join(str(path.relative_to(folder)) for path in found)
        if len(found) > 1:
            for path in audio_files:
                why = f"its name matches {len(found)} annotations in {folder} ({listed})"
                ambiguous.append(
                    (
                        path,
                        f"{path}: {why}: not paired; list its pair in a pairs file (--data.pairs, evaluate's --pairs)",
                    )
                )
        elif len(audio_files) > 1:
            for path in audio_files:
                others = ", ".join(str(other) for other in audio_files if other != path)
                ambiguous.append(
                    (
                        path,
                        f"{path}: {others} matches the same annotation in {folder} ({listed}): neither is "
                        "paired; list the right pair in a pairs file (--data.pairs, evaluate's --pairs)",
                    )
                )
        else:
            pairs[audio_files[0]] = found[0]
            used.add(found[0])
        used.update(by_name[name])  # (an annotation an ambiguous match names is not unmatched either)
    return pairs, sorted(ambiguous), [path for path in annotations if path not in used]


def read_song_pairs(
    csv_path: Path, audio_by_real_path: dict[str, Path], data_dir: Path
) -> list[tuple[Path, Path, str | None]]:
    """``[(audio, annotation, part)]`` from a CSV file of ``audio,annotation`` rows, one song a row, paths
    relative to the CSV's folder (or absolute); an optional first row ``audio,annotation`` is a header, and
    blank lines and lines starting with ``#`` are skipped. A relative path written on Windows
    (``audio\\song1.wav``) is read with its backslashes as separators where no file has that name as
    written (`_row_path`).

    A third column, ``split`` in the header, names the song's part (`PAIR_PARTS`: a dataset's published
    split): then every row has it. Without it, each part is None (the recipe splits the songs itself).

    `audio_by_real_path` maps the real path of every audio file the scan of `data_dir` found to the path it
    found it under; the audio of a row must be one of them.

    Raises
    ------
    ValueError
        Naming the file and line: a row with another number of columns than the first (an unquoted comma
        in a name: the message says to quote it), a part not in `PAIR_PARTS`, audio that is not an audio
        file under `data_dir`, a missing annotation or one in a format not read, audio listed twice.
    """
    if not csv_path.is_file():
        raise FileNotFoundError(f"pairs file {csv_path} does not exist or is not a file")
    try:
        return _read_rows(csv_path, audio_by_real_path, data_dir)
    except UnicodeDecodeError as error:
        raise ValueError(f"{csv_path}: not UTF-8 text ({error}); save it as UTF-8 CSV") from None


def _read_rows(
    csv_path: Path, audio_by_real_path: dict[str, Path], data_dir: Path
) -> list[tuple[Path, Path, str | None]]:
    base = csv_path.parent
    pairs: list[tuple[Path, Path, str | None]] = []
    line_of: dict[Path, int] = {}
    columns: int | None = None  # 2 or 3, as the header or the first row has them
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        for row in reader:
            where = f"{csv_path}, line {reader.line_num}"
            cells = [cell.strip() for cell in row]
            if not any(cells) or cells[0].startswith("#"):
                continue
            if reader.line_num == 1 and [cell.lower() for cell in cells] in _HEADERS:
                columns = len(cells)
                continue
            columns = columns or (3 if len(cells) == 3 else 2)
            _check_columns(cells, row, columns, where)
            audio_path, annotation_path = (_row_path(base, cell) for cell in cells[:2])
            audio = audio_by_real_path.get(real(audio_path))
            if audio is None:
                why = (
                    "does not exist"
                    if not audio_path.exists()
                    else f"is not an audio file the scan of {data_dir} found"
                )
                raise ValueError(f"{where}: the audio {audio_path} {why}{_windows_hint(cells[0])}")
            if not annotation_path.is_file():
                raise ValueError(
                    f"{where}: the annotation {annotation_path} does not exist or is not a file"
                    f"{_windows_hint(cells[1])}"
                )
            if annotation_path.suffix.lower() not in PAIRED_ANNOTATION_SUFFIXES:
                raise ValueError(
                    f"{where}: the annotation {annotation_path} is not one of "
                    f"{', '.join(PAIRED_ANNOTATION_SUFFIXES)}"
                )
            if audio in line_of:
                raise ValueError(f"{where}: {audio} is paired on line {line_of[audio]} already")
            line_of[audio] = reader.line_num
            pairs.append((audio, annotation_path, cells[2].lower() if columns == 3 else None))
    return pairs


#: Said where a row has more columns than it should: the usual cause is a name with a comma (the Beatles'
#: "Ob-La-Di, Ob-La-Da"), which CSV reads as two cells unless quoted.
_QUOTE_HINT = ' (a name that holds a comma must be quoted: "a/Ob-La-Di, Ob-La-Da.wav")'


def _check_columns(cells: list[str], row: list[str], columns: int, where: str) -> None:
    """Refuse a row without the file's `columns` (2: ``audio,annotation``; 3: and ``split``), an empty
    cell, or a part that is not one of `PAIR_PARTS`."""
    expected = "two columns, audio,annotation" if columns == 2 else "three columns, audio,annotation,split"
    if len(cells) != columns or not all(cells):
        quote = _QUOTE_HINT if len(cells) > columns else ""
        if columns == 3 and len(cells) == 2:
            quote = " (the first row names a split, so every row must: train, val or test)"
        raise ValueError(f"{where}: expected {expected}; got {row}{quote}")
    if columns == 3 and cells[2].lower() not in PAIR_PARTS:
        raise ValueError(
            f"{where}: the split {cells[2]!r} is not one of {', '.join(PAIR_PARTS)}"
            f"{_QUOTE_HINT if '.' in cells[2] else ''}"
        )


def _row_path(base: Path, cell: str) -> Path:
    """The path a pairs file's `cell` names, relative to `base` (the file's folder) unless absolute.

    A pairs file written on Windows separates with backslashes, which are plain characters of a name on
    Linux and macOS: where no file has the name as written, a relative path is read with its backslashes as
    separators (``audio\\song1.wav`` as ``audio/song1.wav``). A Windows drive or root (``C:\\``, ``\\x``)
    means nothing here, so such a path stays as written, to be reported as missing."""
    as_written = base / cell
    if "\\" not in cell or os.sep == "\\" or as_written.exists():
        return as_written
    windows = PureWindowsPath(cell)
    return as_written if windows.anchor else base.joinpath(*windows.parts)


def _windows_hint(cell: str) -> str:
    """For the error of a path that does not resolve: where it is an absolute Windows path (``C:\\...``),
    which no other system can follow, what to write instead."""
    if os.sep == "\\" or not PureWindowsPath(cell).anchor or cell.startswith("/"):
        return ""
    return " (a Windows path from its drive or root: write it relative to the pairs file's folder)"
