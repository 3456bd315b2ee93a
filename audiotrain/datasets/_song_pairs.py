"""Pairing audio with annotations kept apart from it: an annotations folder, or a pairing file.

Datasets keep their annotations in a tree of their own, named after the audio only loosely: Isophonics'
``The Beatles/Abbey Road/01 - Come Together.wav`` is annotated in
``chordlab/The Beatles/11_-_Abbey_Road/01_-_Come_Together.lab``. `match_in_annotation_folder` pairs each
audio file with the one annotation anywhere under a folder whose stem matches loosely (`loose_name`: case,
Unicode form and typographic quotes ignored, each run of spaces, underscores and hyphens read as one
separator); where several share the name, the one in the folder that mirrors the audio's (``Album I/01 -
Intro.wav``, ``chordlab/Album_I/01_-_Intro.lab``), and it never guesses between two. Names that differ more
(``03. Anna``, ``03_-_Anna``) are never paired: `near_misses` finds them for a "did you mean". Layouts no rule
fits (McGill Billboard's ``0003/audio.wav`` + ``0003/majmin7inv.lab``, GuitarSet's ``_mic`` audio) list their
pairs in a CSV file that `read_song_pairs` reads; a third column may name each song's part of a dataset's
published split (``train``, ``val``, ``test``), used in place of the recipe's own.
"""

from __future__ import annotations

import csv
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PureWindowsPath

from audiotrain._file_names import local_name
from audiotrain._files import unusable_path
from audiotrain.datasets._folders import as_stored, nfc, walk_visible_following_links
from audiotrain.datasets._text import csv_error_text, read_utf8_text

#: Suffixes `read_song_pairs` accepts for an annotation (what `read_annotation` reads).
PAIRED_ANNOTATION_SUFFIXES = (".lab", ".jams", ".jamz", ".txt", ".chords")

#: The parts a pairs file's third column may name (`read_song_pairs`).
PAIR_PARTS = ("train", "val", "test")
#: Other names of those parts, as datasets publish them (Hugging Face's ``validation``, the CLAP recipe's
#: ``--dataset.eval_split validation``, ``dev``): read as the part, case ignored.
PART_ALIASES = {"validation": "val", "valid": "val", "dev": "val"}

_HEADERS = (["audio", "annotation"], ["audio", "annotation", "split"])


#: Typographic quotes and dashes (what MusicBrainz-tagged rips and iTunes write) and the ASCII ones a
#: dataset's annotations use: ``It Won’t Be Long`` is ``It_Won't_Be_Long``. Two songs never differ in these.
_TYPOGRAPHIC = str.maketrans(
    dict.fromkeys("\u2018\u2019\u201a\u201b\u2032", "'")
    | dict.fromkeys("\u201c\u201d\u201e\u2033", '"')
    | dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-")
)


def loose_name(name: str) -> str:
    """`name` with case, Unicode form and typographic quotes and dashes ignored (``’`` as ``'``, ``–`` as
    ``-``), and each run of spaces, underscores and hyphens read as one separator (``"Song_00"`` does not
    match ``"song00"``): ``"01 - Come Together"`` and ``"01_-_Come_Together"`` both give
    ``"01_come_together"``."""
    return re.sub(r"[\s_-]+", "_", nfc(name).translate(_TYPOGRAPHIC).lower())


def _letters_and_digits(name: str) -> str:
    """`loose_name` with all but letters and digits left out: ``"03. Anna (Go To Him)"`` and
    ``"03_-_Anna_(Go_To_Him)"`` both give ``"03annagotohim"``; the letters without their accents and in
    their plain width (`_plain_letters`: ``"Canção"`` gives ``"cancao"``, full-width ``"Ｆｕｌｌ"`` ``"full"``).
    For hints only: it could pair two songs."""
    return re.sub(r"[\W_]+", "", loose_name(_plain_letters(name)))


def _plain_letters(name: str) -> str:
    """`name` with Latin letters' accents left out (``ç`` as ``c``: an annotation typed on a keyboard without
    them) and compatibility forms read as what they stand for (a Japanese input method's full-width
    ``Ｆｕｌｌ　Ｗｉｄｔｈ`` as ``Full Width``). Only the combining diacritics of U+0300 to U+036F go: a kana's
    voicing mark (``ブ``, ``フ`` with U+3099) makes another word, and stays."""
    return unicodedata.normalize("NFC", re.sub("[\u0300-\u036f]+", "", unicodedata.normalize("NFKD", name)))


#: A disc before a track number: Isophonics' ``CD1_-_01_-_Back_in_the_U.S.S.R``, iTunes' ``1-02 Dear
#: Prudence``.
_DISC = r"(?:(?:cd|disc|disk)\s*\d{1,2}[\s._-]+|\d{1,2}-(?=\d{2}))?"


def _without_track_number(name: str) -> str:
    """`_letters_and_digits` of `name` without a leading track number (``"03 - Anna"``, ``"03. Anna"``), and
    the disc before it (`_DISC`)."""
    track = rf"^\s*{_DISC}\d{{1,3}}(?:[\s._-]+|(?=[^\W\d_]))"
    return _letters_and_digits(re.sub(track, "", name, flags=re.IGNORECASE))


def _stems(path: Path) -> list[str]:
    """The names an annotation `path` may have been given after its audio: without its suffix
    (``song.wav.lab``: ``song.wav``), and without each of its dotted suffixes (RWC's ``RM-P001.CHORDS.TXT``:
    ``RM-P001``; a dot followed by a space, as in ``03. Anna``, is no suffix)."""
    name = path.name
    cuts = [match.start() for match in re.finditer(r"\.(?=[^.\s]+(?:\.|$))", name) if match.start() > 0]
    return [name[:cut] for cut in reversed(cuts)]


def near_misses(
    audio: list[Path],
    audio_root: Path,
    annotations: list[Path],
    annotations_root: Path,
    same_folder: bool = False,
) -> list[tuple[Path, Path]]:
    """``[(audio, annotation)]``: each of `audio` with the one of `annotations` named nearly like it, for a
    "did you mean" (never paired: two songs could have such names). Compared loosely (`loose_name`), then on
    letters and digits only (``03. Anna``, ``03_-_Anna``), then without a leading track number (``Anna``,
    ``03 - Anna``); an annotation also by its name without each dotted suffix (``RM-P001.CHORDS.TXT``) and
    the audio by its name with its suffix (``song.wav.lab``) before its stem. Of several at the first of
    these that finds any, the one in the folder that mirrors the audio's (relative to `audio_root` and
    `annotations_root`); `same_folder`: only those in the audio's own folder. None where that leaves more
    than one."""
    levels = (loose_name, _letters_and_digits, _without_track_number)
    by_key: list[dict[str, list[Path]]] = [{} for _ in levels]
    for path in annotations:
        for level, key_of in zip(by_key, levels):
            for key in {key_of(stem) for stem in _stems(path)} - {""}:
                level.setdefault(key, []).append(path)
    found = []
    for path in audio:
        # The audio's whole name first: predict names the outputs of tune.flac and tune.wav tune.flac.lab and
        # tune.wav.lab, both of the stem tune, so the stem alone found two and named neither.
        for level, key_of in zip(by_key, levels):
            candidates = set()
            for name in (path.name, path.stem):
                candidates = set(level.get(key_of(name), []))
                if same_folder:
                    candidates = {match for match in candidates if match.parent == path.parent}
                if candidates:
                    break
            if candidates:
                chosen = _mirrored(path, audio_root, sorted(candidates), annotations_root)
                if len(chosen) == 1:
                    found.append((path, chosen[0]))
                break
    return found


def _folder_parts(path: Path, root: Path) -> tuple[str, ...]:
    """The folders between `root` and `path`, each loosely (`loose_name`)."""
    return tuple(loose_name(part) for part in path.parent.relative_to(root).parts)


def _mirrored(audio: Path, audio_root: Path, annotations: list[Path], annotations_root: Path) -> list[Path]:
    """Of several `annotations`, those whose folder mirrors the audio's: one folder path ends the other
    (loosely compared, so ``Greatest Hits I`` is ``Greatest_Hits_I``; the annotations folder may hold an
    artist's folder above the albums the audio folder holds). All of them where none does."""
    if len(annotations) < 2:
        return annotations
    mine = _folder_parts(audio, audio_root)
    mirrored = []
    for path in annotations:
        theirs = _folder_parts(path, annotations_root)
        shorter = min(len(mine), len(theirs))
        if shorter and mine[len(mine) - shorter :] == theirs[len(theirs) - shorter :]:
            mirrored.append(path)
    return mirrored or annotations


def _folders_agree(audio: Path, audio_root: Path, annotation: Path, annotations_root: Path) -> bool:
    """Whether `annotation`, the one annotation of the audio's name, may be its own by their folders: where
    both lie in sub-folders named by more than a number, some folder name along one path (each root's own
    name counted against the other's sub-folders: ``--data "The Beatles"``) is one along the other, or
    holds it (``Please Please Me`` in ``01_-_Please_Please_Me``), their leading numbers (a year, an
    album's place) aside. Queen's ``Greatest_Hits_II/01_-_Intro.wav`` is not Zweieck's
    ``Zwielicht/01_-_Intro.lab``; the names alone cannot tell another artist's song of one title."""
    theirs = _named_folders(annotation.parent.relative_to(annotations_root).parts)
    mine = _named_folders(audio.parent.relative_to(audio_root).parts)
    if not theirs or not mine:
        return True  # a folder without sub-folders, or numbered ones (0012/), tells nothing either way
    # (a root's name against the other side's sub-folders, never the two roots': both "data" tell nothing)
    mine_all = [_letters_and_digits(audio_root.resolve().name), *mine]
    theirs_root = _letters_and_digits(annotations_root.resolve().name)
    return any(_folder_names_alike(one, other) for one in mine_all for other in theirs) or any(
        _folder_names_alike(one, theirs_root) for one in mine
    )


def _named_folders(parts: tuple[str, ...]) -> list[str]:
    """The folder names (`_letters_and_digits`) of `parts` that are more than a number."""
    return [name for name in map(_letters_and_digits, parts) if name and not name.isdigit()]


def _folder_names_alike(one: str, other: str) -> bool:
    """Two folder names (`_letters_and_digits`) that are one, or where the longer holds the shorter of at
    least 4 characters (so a track or disc number, ``01``, ``cd1``, is not an album's name); also with
    their leading numbers left out (``1963 - Please Please Me`` and ``01_-_Please_Please_Me``)."""
    for first, second in ((one, other), (one.lstrip("0123456789"), other.lstrip("0123456789"))):
        shorter, longer = sorted((first, second), key=len)
        if shorter and (shorter == longer or (len(shorter) >= 4 and shorter in longer)):
            return True
    return False


def real(path: Path) -> str:
    """The real path of `path`, to compare two spellings of one file (``./a/x.wav``, a link, an absolute
    path)."""
    return os.path.realpath(path)


def require_folder(folder: Path, what: str, expected: str) -> None:
    """Refuse a `folder` argument that is missing or is a file, saying which (`what` names the argument,
    `expected` what to pass instead): FileNotFoundError, NotADirectoryError."""
    if folder.is_dir():
        return
    if folder.exists():
        raise NotADirectoryError(f"{what} {folder} is a file, not a folder: pass {expected}")
    raise FileNotFoundError(f"{what} {folder} does not exist: pass {expected}")


def annotations_under(folder: Path, suffixes: Iterable[str]) -> list[Path]:
    """Every visible annotation file under `folder` (symlinked folders entered), sorted."""
    require_folder(folder, "annotations folder", "the folder that holds the .lab/.jams files")
    wanted = tuple(suffixes)
    entries, _, _ = walk_visible_following_links(folder)
    return [path for path in entries if path.suffix.lower() in wanted and path.is_file()]


def _names_of(annotations: list[Path]) -> set[str]:
    """The names of `annotations` without their suffixes, in one Unicode form."""
    return {nfc(annotation.stem) for annotation in annotations}


def _own_names(audio: Path, annotations: list[Path]) -> list[Path]:
    """Of `annotations` that match `audio` loosely, those of exactly its name where some folder holds
    several names that differ in case or separators alone (``Song.lab`` beside ``song.lab``: two songs
    where the file system tells case apart, as `predict` writes them); all of them otherwise."""
    by_folder: dict[Path, set[str]] = {}
    for annotation in annotations:
        by_folder.setdefault(annotation.parent, set()).add(nfc(annotation.stem))
    if all(len(stems) == 1 for stems in by_folder.values()):
        return annotations
    return [
        annotation for annotation in annotations if nfc(annotation.stem) == nfc(audio.stem)
    ] or annotations


def match_in_annotation_folder(
    audio: list[Path], audio_root: Path, annotations: list[Path], folder: Path, priority: dict[str, int]
) -> tuple[dict[Path, Path], list[tuple[Path, str]], list[Path]]:
    """Pair each of `audio` (under `audio_root`) with the one of `annotations` (those under `folder`) whose
    stem matches loosely.

    Returns ``(pairs {audio: annotation}, ambiguous [(audio, why)], annotations not paired)``. Where several
    annotations share the name (in different folders: one folder's ``x.lab`` and ``x.jams`` are one
    annotation, the suffix earlier in `priority` used; ``Song.lab`` beside ``song.lab`` are two, each the
    own of the audio of exactly its name: `_own_names`), the one whose folder mirrors the audio's
    (`_mirrored`: ``Hits_II/01_-_Intro.lab`` for ``Hits II/01 - Intro.wav``) is its own. One that still leaves several, or
    that two audio files share (unless one of them has exactly its name: ``Song.wav`` beside ``song.wav``,
    which then has none), pairs none of them: each audio file is listed in `ambiguous`, naming the
    others, and never paired by a guess."""
    by_name: dict[str, list[Path]] = {}
    for path in annotations:
        by_name.setdefault(loose_name(path.stem), []).append(path)
    chosen: dict[Path, list[Path]] = {}  # audio -> its annotations (one, or several: ambiguous)
    for path in audio:
        found = _own_names(path, by_name.get(loose_name(path.stem), []))
        if len({annotation.parent for annotation in found}) == 1 and len(_names_of(found)) == 1:
            # one folder, one name: x.lab beside x.jams is one annotation
            found = [
                min(found, key=lambda annotation: priority.get(annotation.suffix.lower(), len(priority)))
            ]
        if found:
            chosen[path] = _mirrored(path, audio_root, found, folder)
    sharing: dict[Path, list[Path]] = {}
    for path, found in chosen.items():
        if len(found) == 1:
            sharing.setdefault(found[0], []).append(path)
    for annotation, sharers in sharing.items():
        # Song.wav and song.wav beside one Song.lab: two songs where case tells names apart, the annotation
        # Song.wav's; song.wav has none of its name.
        exact = [path for path in sharers if nfc(path.stem) == nfc(annotation.stem)]
        if len(sharers) > 1 and len(exact) == 1:
            for path in sharers:
                if path != exact[0]:
                    del chosen[path]
            sharing[annotation] = exact
    pairs: dict[Path, Path] = {}
    ambiguous: list[tuple[Path, str]] = []
    advice = "list its pair in a pairs file (--data.pairs, evaluate's --pairs)"
    for path, found in chosen.items():
        listed = ", ".join(str(annotation.relative_to(folder)) for annotation in found)
        if len(found) > 1:
            why = f"its name matches {len(found)} annotations in {folder} ({listed})"
            ambiguous.append((path, f"{path}: {why}: not paired; {advice}"))
        elif not _folders_agree(path, audio_root, found[0], folder):
            why = (
                f"its name matches {listed} in {folder}, in a folder that shares no folder name with its "
                "own (another artist's song of that title?)"
            )
            ambiguous.append((path, f"{path}: {why}: not paired; {advice}"))
        elif len(sharing[found[0]]) > 1:
            others = ", ".join(str(other) for other in sharing[found[0]] if other != path)
            ambiguous.append(
                (
                    path,
                    f"{path}: {others} matches the same annotation in {folder} ({listed}): neither is "
                    "paired; list the right pair in a pairs file (--data.pairs, evaluate's --pairs)",
                )
            )
        else:
            pairs[path] = found[0]
    # Not unmatched either: an annotation an ambiguous match names, and one of the same name beside the
    # one used (its .jams beside its .lab); another album's of the same name is.
    used = {
        same
        for path, found in chosen.items()
        for same in by_name[loose_name(path.stem)]
        if same.parent in {annotation.parent for annotation in found}
        and _names_of([same]) <= _names_of(found)
    }
    return pairs, sorted(ambiguous), [path for path in annotations if path not in used]


def read_song_pairs(
    csv_path: Path,
    audio_by_real_path: dict[str, Path],
    data_dir: Path,
    unsupported_audio: Callable[[str], Path | None] = lambda real_path: None,
) -> list[tuple[Path, Path, str | None]]:
    """``[(audio, annotation, part)]`` from a CSV file of ``audio,annotation`` rows, one song a row, paths
    relative to the CSV's folder (or absolute); an optional first row ``audio,annotation`` is a header, and
    blank lines and lines starting with ``#`` are skipped (a quoted name, ``"#1 Hit.wav"``, is a name). A
    relative path written on Windows (``audio\\song1.wav``) is read with its backslashes as separators where
    no file has that name as written (`_row_path`).

    A third column, ``split`` in the header, names the song's part (`PAIR_PARTS`, or one of `PART_ALIASES`,
    case ignored: a dataset's published split): then every row has it. Without it, each part is None (the recipe splits the songs itself).

    `audio_by_real_path` maps the real path of every audio file the scan of `data_dir` found to the path it
    found it under (and that path, made absolute, to itself: a row naming a link to a file of the folder
    pairs it under the name the row gives); the audio of a row must be one of them.

    Raises
    ------
    ValueError
        Naming the file and line: a row with another number of columns than the first (an unquoted comma
        in a name: the message says to quote it), a part not in `PAIR_PARTS`, audio that is not an audio
        file under `data_dir`, a missing annotation or one in a format not read, audio listed twice, a byte
        that is not UTF-8 (with its offset in the file).
    """
    csv_path = as_stored(csv_path)  # (typed composed, a Mac's decomposed name on disk)
    if not csv_path.is_file():
        raise FileNotFoundError(f"pairs file {csv_path} does not exist or is not a file")
    try:
        return _read_rows(csv_path, audio_by_real_path, data_dir, unsupported_audio)
    except UnicodeDecodeError:
        # The decoder's own position counts from the chunk it was reading (byte 2238 of the one holding line
        # 1001 at offset 35006), so the whole file is decoded again to name the line and the offset.
        read_utf8_text(csv_path, ValueError, "the pairs file")
        raise  # (only if the file changed in between and now decodes)


def _read_rows(
    csv_path: Path,
    audio_by_real_path: dict[str, Path],
    data_dir: Path,
    unsupported_audio: Callable[[str], Path | None],
) -> list[tuple[Path, Path, str | None]]:
    base = csv_path.parent
    pairs: list[tuple[Path, Path, str | None]] = []
    line_of: dict[str, tuple[Path, int]] = {}
    columns: int | None = None  # 2 or 3, as the header or the first row has them
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        lines = _RowLines(handle)
        first_row = True
        for row in _csv_rows(lines, csv_path):
            line_num, lines.at_row_start = lines.row_start, True
            where = f"{csv_path}, line {line_num}"
            cells = [cell.strip() for cell in row]
            if not any(cells):
                continue
            if first_row and [cell.lower() for cell in cells] in _HEADERS:
                first_row, columns = False, len(cells)
                continue
            first_row = False
            columns = columns or (3 if len(cells) == 3 else 2)
            _check_columns(cells, row, columns, where)
            # (a row typed composed names the decomposed files a Mac copied, as it does on the Mac)
            audio_path, annotation_path = (as_stored(_row_path(base, cell)) for cell in cells[:2])
            for name, path in (("audio", audio_path), ("annotation", annotation_path)):
                problem = unusable_path(path)
                if problem:
                    raise ValueError(f"{where}: the {name} path {path} cannot be used ({problem})")
            audio = (
                audio_by_real_path.get(os.path.abspath(audio_path))
                or audio_by_real_path.get(real(audio_path))
                or unsupported_audio(real(audio_path))
            )
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
            # (by the real file: two names of one recording, a link and its file, are one song)
            if real(audio) in line_of:
                first, line = line_of[real(audio)]
                same = "" if first == audio else f" (the same file as {first})"
                raise ValueError(f"{where}: {audio}{same} is paired on line {line} already")
            line_of[real(audio)] = (audio, line_num)
            pairs.append((audio, annotation_path, _part(cells[2]) if columns == 3 else None))
    return pairs


def _csv_rows(lines: _RowLines, csv_path: Path) -> Iterator[list[str]]:
    """`csv.reader`'s rows of `lines`; its error (a quote left open, a cell over 128 KB) names the file and
    the line the row starts on. A quote left open in the last rows, which swallows the rest of the file
    into one cell, is "unexpected end of data" (`_RowLines`), as a strict reader says: a lax one gave no
    error, and the row was refused as "expected two columns" (or its annotation as a file named with the
    next rows). Not strict itself: that also refuses a space after a closing quote (``"a.wav" ,a.lab``, or
    at a line's end), which the cells' stripping reads as meant."""
    reader = csv.reader(lines)
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise ValueError(f"{csv_path}, line {lines.row_start}: {csv_error_text(str(error))}") from None


class _RowLines:
    """The lines of a pairs file as `csv.reader` reads them, without the comments: a line that starts with
    ``#`` where a row starts (a quoted cell, ``"#1 Hit.wav"``, does not: it starts with ``"``), dropped before
    CSV reads it, so that a quote in a comment cannot swallow the rows after it. `row_start` is the number of
    the line the last row began on; the reader of the rows sets `at_row_start` before asking for the next."""

    def __init__(self, handle):
        self._handle = handle
        self.number = self.row_start = 0
        self.at_row_start = True
        self._ended_line = False  # whether the last line read ended with a line break

    def __iter__(self):
        return self

    def __next__(self) -> str:
        try:
            line = next(self._handle)
        except StopIteration:
            # The file ends in a row that spans lines or whose line ended: only a quoted cell goes on past a
            # line's end. (A lax reader would return it whole, with the rest of the file in one cell.)
            if not self.at_row_start and (self.number > self.row_start or self._ended_line):
                raise csv.Error("unexpected end of data") from None
            raise
        self.number += 1
        while self.at_row_start and line.lstrip().startswith("#"):
            line = next(self._handle)
            self.number += 1
        self._ended_line = line.endswith(("\n", "\r"))
        if self.at_row_start:
            self.row_start, self.at_row_start = self.number, False
        return line


#: Said where a row has more columns than it should: the usual cause is a name with a comma (the Beatles'
#: "Ob-La-Di, Ob-La-Da"), which CSV reads as two cells unless quoted.
_QUOTE_HINT = ' (a name that holds a comma must be quoted: "a/Ob-La-Di, Ob-La-Da.wav")'


def _check_columns(cells: list[str], row: list[str], columns: int, where: str) -> None:
    """Refuse a row without the file's `columns` (2: ``audio,annotation``; 3: and ``split``), an empty
    cell, a cell holding a NUL character, or a part that is not one of `PAIR_PARTS`."""
    expected = "two columns, audio,annotation" if columns == 2 else "three columns, audio,annotation,split"
    for name, cell in zip(("audio", "annotation", "split"), cells):
        if "\x00" in cell:  # (no path holds one: os.path would raise a bare "embedded null byte")
            raise ValueError(f"{where}: the {name} cell {cell!r} contains a NUL character (a damaged file?)")
    if len(cells) == columns and not all(cells):  # (the columns are there: say which cell is empty)
        name = ("audio", "annotation", "split")[cells.index("")]
        what = "train, val or test (a song in no part: remove its row)" if name == "split" else "a path"
        raise ValueError(f"{where}: the {name} cell is empty; expected {what}; got {row}")
    if len(cells) != columns or not all(cells):
        quote = _QUOTE_HINT if len(cells) > columns else ""
        if columns == 3 and len(cells) == 2:
            quote = " (the first row names a split, so every row must: train, val or test)"
        if len(cells) == 1:
            quote = _separator_hint(cells[0])
        raise ValueError(f"{where}: expected {expected}; got {row}{quote}")
    if columns == 3 and _part(cells[2]) not in PAIR_PARTS:
        raise ValueError(
            f"{where}: the split {cells[2]!r} is not one of {', '.join(PAIR_PARTS)} (or "
            f"{', '.join(PART_ALIASES)}){_QUOTE_HINT if '.' in cells[2] else ''}"
        )


def _separator_hint(cell: str) -> str:
    """Said where a row is one cell that holds a ';' or a tab: a spreadsheet saved in a German or French
    locale separates columns by ';'. Refused, not read so, as the header is optional and a file name may hold
    a ';': which separator a file uses is not guessed."""
    separator = next((s for s in (";", "\t") if s in cell), None)
    if separator is None:
        return ""
    return (
        f" (its columns look separated by {separator!r}: a pairs file is comma-separated; save it as 'CSV "
        "(comma delimited)', or replace the separators by commas)"
    )


def _part(cell: str) -> str:
    """The part a split cell names: ``Validation`` is ``val``."""
    return PART_ALIASES.get(cell.lower(), cell.lower())


def _row_path(base: Path, cell: str) -> Path:
    """The path a pairs file's `cell` names, relative to `base` (the file's folder) unless absolute.

    A pairs file written on Windows separates with backslashes, which are plain characters of a name on
    Linux and macOS: where no file has the name as written, a relative path is read with its backslashes as
    separators (``audio\\song1.wav`` as ``audio/song1.wav``). A Windows drive or root (``C:\\``, ``\\x``)
    means nothing here, so such a path stays as written, to be reported as missing. The cell, UTF-8 text, is
    spelt as this process's file names are (`local_name`: surrogate escapes in an ASCII locale, a cron job's).
    """
    cell = local_name(cell)
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
