"""Chord annotations on disk: ``.lab`` files (``start end label`` per line) and JAMS chord annotations.

Every problem is reported with the file and the line (``.lab``) or observation (JAMS) it comes from: a
malformed line, a label that is not Harte syntax, a time that is negative, NaN or infinite, a reversed
segment, a segment that starts before the one above it (out of order: both lines are named), two
segments that overlap, or a gap between segments. Real annotations are written with rounded
times, so overlaps and gaps smaller than ``tolerance`` seconds are snapped shut instead of reported, and
zero-length segments (common in published sets) are dropped, with a `ZeroLengthSegmentsWarning` naming them.

Labels come back in the canonical spelling `format_harte` writes, which ``mir_eval`` parses: a bass
written as a note (``C/E``, ``E:min/G``) becomes an interval (``C:maj/3``, ``E:min/b3``), spaces inside
degree lists go, and a bare root becomes ``:maj``.

``.lab`` lines: the start and end times are the first two whitespace-separated fields (tabs or spaces);
the label is the *rest of the line*, stripped, so it may contain inner spaces (``0.0 1.5 C:maj 7``). The
Harte parser then decides whether that label is valid (``C:(3, 5)`` is, ``C:maj 7`` is not); an invalid
label is an error naming the file and the line. A rest of the line that is a label followed by more fields
(`_fields_after_label`: a tab-separated field, or a number from 0 to 1 such as a confidence) is refused as a
line of too many fields, as ``mir_eval`` refuses it, rather than as a label with a tab inside.

JAMS files are read as ``.jams`` (JSON) or ``.jamz`` (gzip-compressed JSON), with the same checks. A ``.jamz``
may decompress to at most `MAX_JAMZ_BYTES`: a 1.5 MB file can hold 1.5 GB of whitespace.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import re
import warnings
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from audiotrain._files import UTF16_TEXT, is_utf16, not_utf8_text, parse_json, write_given_path
from audiotrain._lfs import MAX_POINTER_BYTES, file_pointer_text, pointer_text
from audiotrain._text import is_number, listed, plural
from audiotrain._warning_filters import ignoring_warnings
from audiotrain.chords.harte import (
    HARTE_GRAMMAR,
    NO_CHORD,
    HarteError,
    format_harte,
    parse_harte,
    spellings_text,
)

#: Default tolerance (seconds) for rounding differences between consecutive segment boundaries.
DEFAULT_TOLERANCE = 1e-3

#: Suffixes of JAMS files: plain JSON, and gzip-compressed JSON.
JAMS_SUFFIXES = (".jams", ".jamz")

_GZIP_MAGIC = b"\x1f\x8b"
# The most a .jamz may decompress to. A song's chord annotations (with their sandbox and metadata) take
# kilobytes; a dataset-wide JAMS with every annotator's take stays under a few MB.
MAX_JAMZ_BYTES = 64 * 2**20

#: JAMS namespaces whose values are Harte labels.
JAMS_CHORD_NAMESPACES = ("chord", "chord_harte")


#: Most characters of a file's text an error message quotes: a binary file (a ``._x.lab`` AppleDouble twin)
#: read as text has "lines" of many kilobytes.
QUOTED_CHARS = 48
#: Invalid chord labels an error lists, each with its line (the rest are counted).
LISTED_BAD_LABELS = 10
#: Longest chord label read: Harte labels are a few dozen characters at most (``C:(1,3,5,b7,9,11,13)/b7``).
MAX_LABEL_CHARS = 64


def quoted(value: object, limit: int = QUOTED_CHARS) -> str:
    """``repr(value)`` for an error message, in about `limit` characters: a longer string is cut (whole
    escapes kept: ``\\x00`` takes four) and its length said, anything else's repr is cut."""
    if not isinstance(value, str):
        shown = repr(value)
        return shown if len(shown) <= limit else f"{shown[:limit]}..."
    if len(repr(value)) <= limit + 2:
        return repr(value)
    kept = min(len(value), limit)
    while len(repr(value[:kept])) > limit + 2:
        kept -= 1
    return f"{value[:kept]!r}... ({len(value)} characters)"


#: The header keys that open McGill Billboard's ``salami_chords.txt`` (`is_salami_chords`).
SALAMI_HEADER = ("# title:", "# artist:", "# metre:", "# tonic:")
#: Lines of a file's head that `is_salami_chords` looks at.
_HEAD_LINES = 40
#: Bytes of a file's head `looks_like_lab` reads.
_HEAD_BYTES = 4096


class AnnotationError(ValueError):
    """A chord annotation file that cannot be used; the message names the file and the line."""


class EmptyAnnotationError(AnnotationError):
    """An annotation file that reads without error but labels no time (no line, or zero-length lines only):
    a song to leave out, where the other errors are a file to correct (``score`` lists it as not scored)."""


class AnnotationWarning(UserWarning):
    """A chord annotation that is used, with a choice the user should know about."""


class SeveralAnnotationsWarning(AnnotationWarning):
    """A JAMS file with several chord annotations: `path`, `annotators` (one description per chord annotation)
    and `used` (which of them is read, from 0), for a caller that lists such files itself."""

    def __init__(self, message: str, path: Path, annotators: list[str], used: int = 0):
        super().__init__(message)
        self.path, self.annotators, self.used = path, annotators, used


class ZeroLengthSegmentsWarning(AnnotationWarning):
    """An annotation with segments that label no time (start = end: Audacity's point labels), dropped:
    `path` and `dropped` (``(location, label)`` of each), for a caller that lists such files itself."""

    def __init__(self, message: str, path: str, dropped: list[tuple[str, str]]):
        super().__init__(message)
        self.path, self.dropped = path, dropped


@dataclass(frozen=True)
class ChordSegment:
    """One labelled time span: ``start`` and ``end`` in seconds, ``label`` in Harte syntax."""

    start: float
    end: float
    label: str

    @property
    def duration(self) -> float:
        return self.end - self.start


def _check_order(
    segments: Sequence[ChordSegment], source: str, locations: Sequence[str], tolerance: float
) -> None:
    """Raise if a segment starts before the one above it: the file is not sorted by time.

    Checked over the whole list before anything else, so an unsorted file is reported as such rather
    than as the gap or overlap its first misplaced segment leaves.
    """
    earlier: tuple[float, str] | None = None  # (start, location) of the previous segment in file order
    for segment, where in zip(segments, locations):
        if not math.isfinite(segment.start):
            continue  # reported, with its line, by the checks that follow
        if earlier is not None and segment.start < earlier[0] - tolerance:
            raise AnnotationError(
                f"{source}, {where}: segments out of order: this one starts at {segment.start}, before "
                f"the one at {earlier[1]}, which starts at {earlier[0]}; sort the segments by start time"
            )
        earlier = (segment.start, where)


def _canonical_labels(segments: Sequence[ChordSegment], source: str, locations: Sequence[str]) -> list[str]:
    """Each segment's label in the canonical spelling `format_harte` writes. Every label that is not Harte
    syntax is reported at once, each with its location (and the Harte spelling of a lead-sheet name such as
    ``Am``): a file written with such names has one on nearly every line, and one run per line to find
    them all was the old way."""
    labels, bad = [], []  # bad: (location, the whole error, the short line of a lead-sheet name or None)
    for segment, where in zip(segments, locations):
        if len(segment.label) > MAX_LABEL_CHARS:  # binary or run-on text, not a label the parser should quote
            bad.append((where, f"not a chord label: {quoted(segment.label)}", None))
            continue
        try:
            labels.append(format_harte(parse_harte(segment.label)))
        except HarteError as err:
            short = (
                f"{err.label!r} is {spellings_text(err.spellings)} in Harte spelling"
                if err.spellings
                else None
            )
            bad.append((where, str(err), short))
    if len(bad) == 1:
        where, why, _ = bad[0]
        raise AnnotationError(f"{source}, {where}: {why}")
    if bad:
        # The grammar once, then a line per label, a lead-sheet name (most of them) with its Harte spelling.
        listed = [f"{where}: {short or why}" for where, why, short in bad[:LISTED_BAD_LABELS]]
        more = f"\n  ... and {len(bad) - len(listed)} more" if len(bad) > len(listed) else ""
        raise AnnotationError(
            f"{source}: {len(bad)} chord labels are not Harte syntax ({HARTE_GRAMMAR}):\n  "
            + "\n  ".join(listed)
            + more
        )
    return labels


def validate_segments(
    segments: Sequence[ChordSegment],
    source: str,
    locations: Sequence[str] | None = None,
    *,
    allow_gaps: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
    keep_starts: bool = False,
    filled_gaps: list[tuple[float, float]] | None = None,
) -> list[ChordSegment]:
    """Check a segment list and return it with rounding-size gaps and overlaps snapped shut.

    Parameters
    ----------
    segments : sequence of ChordSegment
        In file order.
    source : str
        Where the segments come from (a path), used in error messages.
    locations : sequence of str, optional
        Per segment, where it is in the source (``"line 3"``); defaults to ``"segment i"``.
    allow_gaps : bool
        Fill gaps longer than ``tolerance`` with ``N`` instead of raising.
    filled_gaps : list, optional
        Where given, each gap filled with ``N`` is appended to it as ``(start, end)``: an evaluation lists
        those songs, since ``mir_eval`` on the file reads a gap as the chord before it going on.
    tolerance : float
        Largest gap or overlap, in seconds, treated as rounding.
    keep_starts : bool
        How such a gap or overlap is shut: by default a segment's start moves onto the previous end (training
        targets); with True the previous end moves onto the segment's start as written. That is how
        ``mir_eval`` scores a file (a segment lasts until the next one starts), which evaluation follows.

    Returns
    -------
    list of ChordSegment
        Labels in canonical Harte spelling (`format_harte`); zero-length segments dropped, named in a
        `ZeroLengthSegmentsWarning`.

    Raises
    ------
    AnnotationError
        Naming the source and the location of the first bad segment; or the source, when no segment is
        left once the zero-length ones are dropped.
    """
    locations = locations or [f"segment {i + 1}" for i in range(len(segments))]
    _check_order(segments, source, locations, tolerance)
    labels = _canonical_labels(segments, source, locations)
    result: list[ChordSegment] = []
    dropped: list[tuple[str, str]] = []  # (location, label) of each zero-length segment
    for segment, where, label in zip(segments, locations, labels):
        # NaN compares False with everything, so without this check it would pass every test below.
        if not (math.isfinite(segment.start) and math.isfinite(segment.end)):
            raise AnnotationError(
                f"{source}, {where}: times must be finite numbers of seconds, got ({segment.start}, {segment.end})"
            )
        if segment.start < 0 or segment.end < 0:
            raise AnnotationError(f"{source}, {where}: negative time ({segment.start}, {segment.end})")
        if segment.end < segment.start:
            raise AnnotationError(
                f"{source}, {where}: end time {segment.end} is before start time {segment.start}"
            )
        if segment.end == segment.start:
            dropped.append((where, label))  # covers no time
            continue
        segment = ChordSegment(segment.start, segment.end, label)
        if result:
            previous = result[-1]
            step = segment.start - previous.end
            if step < -tolerance:
                raise AnnotationError(
                    f"{source}, {where}: segment starting at {segment.start} overlaps the previous one, "
                    f"which ends at {previous.end}"
                )
            if step > tolerance:
                if not allow_gaps:
                    raise AnnotationError(
                        f"{source}, {where}: gap of {step:.4f} s before this segment (previous ends at "
                        f"{previous.end}, this starts at {segment.start}); label it 'N', or read gaps as N: "
                        "evaluate --allow_gaps, score --allow_gaps, train --data.allow_gaps true, or "
                        "allow_gaps=True"
                    )
                result.append(ChordSegment(previous.end, segment.start, NO_CHORD))
                if filled_gaps is not None:
                    filled_gaps.append((previous.end, segment.start))
            elif step != 0 and keep_starts:
                # Rounding in the file: the previous segment lasts until this one starts, as mir_eval reads it.
                if segment.start <= previous.start:
                    raise AnnotationError(
                        f"{source}, {where}: the segment before this one is shorter than the rounding tolerance"
                    )
                result[-1] = ChordSegment(previous.start, segment.start, previous.label)
            elif step != 0:
                # Rounding in the file: move this start onto the previous end so segments tile exactly.
                segment = ChordSegment(previous.end, segment.end, segment.label)
                if segment.end <= segment.start:
                    raise AnnotationError(
                        f"{source}, {where}: segment is shorter than the rounding tolerance"
                    )
        result.append(segment)
    if not result:
        # Checked after zero-length segments are dropped: a file of "0.0 0.0 C:maj" lines has lines but
        # labels no time, and would read as an empty annotation that training and scoring then fail on.
        why = {0: "", 1: " (its one segment is zero-length)"}.get(
            len(segments), f" (all {len(segments)} segments are zero-length)"
        )
        raise EmptyAnnotationError(f"{source}: no chord segments{why}")
    if dropped:  # said, not silent: a point label among regions loses its chord (mir_eval refuses the file)
        what = plural(len(dropped), "zero-length segment")
        lines = listed([f"{where} ({label})" for where, label in dropped])
        message = (
            f"{source}: {what} dropped ({lines}): start = end labels no time (a point label, as Audacity "
            "writes one); give it an end time to keep its chord"
        )
        warnings.warn(ZeroLengthSegmentsWarning(message, source, dropped), stacklevel=2)
    return result


def _decimal_comma_hint(times: list[str]) -> str:
    """Said where a start or end is a number with a decimal comma (``1,5``: a German or French spreadsheet's
    export), which float() does not read."""
    if not any(_DECIMAL_COMMA.fullmatch(time) for time in times):
        return ""
    return " (a decimal comma found: seconds are written with a decimal point, 1.5 not 1,5)"


_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+")


def _separator_hint(text: str) -> str:
    """Said where a line's fields are separated by commas or semicolons (``0.0,1.5,C:maj``: a spreadsheet's
    CSV export), as a pairs file's error says of its separators."""
    for separator in (",", ";"):
        fields = text.split(separator, 2)
        if len(fields) == 3 and _is_lab_line(" ".join(field.strip() or "?" for field in fields)):
            return (
                f" (its fields look separated by {separator!r}: a .lab separates them by tabs or spaces, "
                "start end label)"
            )
    return ""


def _header_hint(text: str, lines_after: Sequence[str]) -> str:
    """Said where the first line holds no number and the next starts with one: a header of column names
    (uspop2002's ``start_time end_time chord``, a CSV's ``"start";"end";"shorthand"``: Schubert
    Winterreise's), which a .lab does not have; mir_eval refuses it too."""
    # (the next line that is neither blank nor a comment: a header may have one below it)
    following = next((line.strip() for line in lines_after if line.strip()[:1] not in ("", "#")), "")
    cells = re.split(r"[\s,;]+", text.replace('"', ""))
    if any(is_number(cell) for cell in cells) or not is_number(re.split(r"[\s,;]+", following)[0]):
        return ""
    separator = next((mark for mark in (";", ",") if mark in text and len(text.split()) < 3), "")
    if separator:
        return (
            f" (a header of column names, separated by {separator!r}: a CSV file, as Schubert Winterreise's, "
            "not a 'start end label' .lab; convert it, README: 'Your dataset's layout')"
        )
    return " (a header of column names, which a .lab does not have: delete the line, or start it with '#')"


def _label_first_hint(text: str) -> str:
    """Said where a line is a label and then two times (``N  0.000  1.000``): the columns in another order
    than a .lab's."""
    fields = text.split()
    if len(fields) == 3 and not is_number(fields[0]) and all(is_number(field) for field in fields[1:]):
        return " (the label comes first: a .lab line is 'start end label', the label last)"
    return ""


#: A chord label alone on a line, as Essentia's ChordsDetection gives one a frame ('C', 'Bb', 'G#m'), or N.
_LABEL_ALONE_RE = re.compile(r"^(N|X|[A-G][b#]*(m|:\S*)?)$")


def _label_alone_hint(text: str) -> str:
    """Said where a line is a chord label without times (Essentia's per-frame labels written one a line)."""
    if not _LABEL_ALONE_RE.match(text.strip().strip('"')):
        return ""
    return (
        " (a label alone, as Essentia's ChordsDetection gives one a frame: a .lab line is a segment, "
        "'start end label'; give each run of equal frames its times, frame i at i * hopSize / sampleRate s, "
        "and its label in Harte syntax, 'Am' as 'A:min')"
    )


def _instant_hint(text: str) -> str:
    """Said where a line is a time and a label (``0.371519274<TAB>Am``, ``0.37,"Am"``): Chordino's chords as
    Sonic Visualiser or Sonic Annotator export a time-instant layer, each chord lasting until the next. Sonic
    Annotator's CSV writer puts the audio file's name first (an empty cell on the lines after the first)
    unless given --csv-omit-filename: such a line is named too."""
    for separator in (None, ",", ";"):
        fields = [field.strip().strip('"') for field in text.split(separator)]
        named = len(fields) == 3 and separator is not None and not is_number(fields[0])
        if named:
            fields = fields[1:]  # (the file name's column)
        if len(fields) != 2 or not fields[1] or any(c.isspace() for c in fields[1]):
            continue
        try:
            if math.isfinite(float(fields[0])) and not is_number(fields[1]):
                return (
                    " (a 'time label' instant, as Sonic Visualiser and Sonic Annotator export Chordino's "
                    "chords: a .lab line is a segment, 'start end label', each chord lasting until the next "
                    "one starts, its label in Harte syntax, e.g. '0.37 2.41 A:min'"
                    + (
                        "; its first column is the audio file's name, which Sonic Annotator's CSV writes "
                        "unless given --csv-omit-filename)"
                        if named
                        else ")"
                    )
                )
        except ValueError:
            continue
    return ""


def read_lab(
    path: str | Path,
    *,
    allow_gaps: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
    keep_starts: bool = False,
    filled_gaps: list[tuple[float, float]] | None = None,
) -> list[ChordSegment]:
    """Read a ``.lab`` file: one ``start end label`` per line, separated by tabs or spaces.

    The times are the first two whitespace-separated fields; the label is the rest of the line, stripped
    (it may contain inner spaces, and the Harte parser decides whether it is valid). A rest of the line
    that is a label and more fields (a tab-separated field, or a confidence: `_fields_after_label`) is an
    error naming the line and its fields. Blank lines and lines starting with ``#`` are skipped. See
    `validate_segments` for the checks.

    Returns
    -------
    list of ChordSegment
        In time order, tiling the annotated span without gaps.
    """
    path = Path(path).expanduser()  # (~ the home folder, as `write_lab` writes it)
    _refuse_lfs_pointer(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()  # -sig: tolerate a BOM
    except UnicodeDecodeError as err:
        if is_utf16(err.object):
            raise AnnotationError(f"{path}: {UTF16_TEXT}") from None
        raise AnnotationError(f"{path}, {not_utf8_text(err)}") from None  # (the line, as every error here)
    if is_salami_chords(lines):
        raise AnnotationError(
            f"{path}: McGill Billboard's salami_chords.txt format (a '# title:' header, then a time and "
            "bars '| A:min | ...' per line), not a .lab: pair the song's full.lab or majmin.lab instead, or "
            "another of its .lab reductions (README: 'Your dataset's layout')"
        )
    segments, locations = [], []

    def _header_hint_at(number: int, text: str) -> str:
        return "" if segments else _header_hint(text, lines[number:])  # (a header comes first)

    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = text.split(None, 2)  # start, end, and the rest of the line as the label
        if len(fields) != 3:
            raise AnnotationError(
                f"{path}, line {number}: expected 'start end label' (3 fields), got {len(fields)}: "
                f"{quoted(text)}"
                f"{_header_hint_at(number, text) or _separator_hint(text) or _instant_hint(text)}"
                f"{_label_alone_hint(text) if len(fields) == 1 else ''}"
            )
        label = fields[2].strip()
        more = _fields_after_label(label)
        if more:
            raise _too_many_fields(path, number, fields[:2] + more, lines[number:])
        try:
            start, end = float(fields[0]), float(fields[1])
        except ValueError:
            raise AnnotationError(
                f"{path}, line {number}: start and end must be numbers in seconds, got {quoted(text)}"
                f"{_header_hint_at(number, text) or _decimal_comma_hint(fields[:2]) or _separator_hint(text)}"
                f"{_label_first_hint(text)}"
            ) from None
        segments.append(ChordSegment(start, end, label))
        locations.append(f"line {number}")
    if not segments:
        raise EmptyAnnotationError(f"{path}: no chord segments")
    return validate_segments(
        segments,
        str(path),
        locations,
        allow_gaps=allow_gaps,
        tolerance=tolerance,
        keep_starts=keep_starts,
        filled_gaps=filled_gaps,
    )


def _refuse_lfs_pointer(path: Path) -> None:
    """A .lab left as a Git LFS pointer (a dataset cloned without Git LFS) is refused as one: read as a .lab,
    its first line was "expected 'start end label' (3 fields), got 2"."""
    pointer = file_pointer_text(path)
    if pointer:
        raise AnnotationError(f"{path}: {pointer}")


def is_salami_chords(lines: Sequence[str]) -> bool:
    """Whether a text file's `lines` (its first 40 will do) are McGill Billboard's ``salami_chords.txt``: a
    header of `SALAMI_HEADER` lines, then lines of a time and bars (``7.3e-2<TAB>A, intro, | A:min |``).
    Its chords are in the song's ``.lab`` reductions (``full.lab``, ``majmin.lab``) too."""
    head = [line.strip() for line in lines[:_HEAD_LINES]]
    header = any(line.lower().startswith(SALAMI_HEADER) for line in head)
    return header and any("|" in line for line in head if not line.startswith("#"))


def looks_like_lab(path: str | Path) -> bool:
    """Whether the head of `path` (its first 4 KB) is in the ``.lab`` format: its first lines that are not
    blank or comments are ``start end label``, with numbers for times. Not McGill Billboard's
    ``salami_chords.txt``, nor notes or a README kept as ``.txt``. Whether the labels are Harte syntax is
    left to reading the file, whose errors name them."""
    try:
        with open(path, "rb") as file:
            head = file.read(_HEAD_BYTES)
    except OSError:
        return False
    lines = head.decode("utf-8-sig", errors="replace").splitlines()
    if len(head) == _HEAD_BYTES:
        lines = lines[:-1]  # (the last may be cut)
    if is_salami_chords(lines):
        return False
    content = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")][:5]
    return bool(content) and all(_is_lab_line(line) for line in content)


def _is_lab_line(text: str) -> bool:
    fields = text.split(None, 2)
    try:
        return len(fields) == 3 and math.isfinite(float(fields[0])) and math.isfinite(float(fields[1]))
    except ValueError:
        return False


def _fields_after_label(rest: str) -> list[str]:
    """The fields of a ``.lab`` line's rest (after the times) where it is more than a label, else ``[]``:
    fields separated by tabs (no label holds a tab: ``N<TAB>0.9``), or a label then numbers from 0 to 1
    (``N 0.9``: a confidence, which no ``.lab`` reader takes). A rest that is a label (``C:(3, 5)``) or
    none of these (``C:maj 7``, a label with a space in it) is left to the Harte parser's error, and so is
    text far longer than a label (a binary file's "line")."""
    if len(rest) > MAX_LABEL_CHARS or not any(c.isspace() for c in rest) or _is_label(rest):
        return []
    if "\t" in rest:
        fields = [field.strip() for field in rest.split("\t") if field.strip()]
        return fields if len(fields) > 1 else []
    fields = rest.split()
    return fields if _is_label(fields[0]) and all(_is_share(field) for field in fields[1:]) else []


def _is_label(text: str) -> bool:
    try:
        parse_harte(text)
    except HarteError:
        return False
    return True


def _is_share(text: str) -> bool:
    """Whether `text` is a number from 0 to 1 (a confidence, a probability)."""
    try:
        return 0.0 <= float(text) <= 1.0
    except ValueError:
        return False


def _too_many_fields(path: Path, number: int, fields: list[str], lines_after: list[str]) -> AnnotationError:
    """The error of ``.lab`` line `number` whose `fields` are more than ``start end label``; it counts the
    lines after it with as many too (a confidence column is on every line)."""
    split = [line.strip().split(None, 2) for line in lines_after if not line.strip().startswith("#")]
    more = sum(1 for fields_after in split if len(fields_after) == 3 and _fields_after_label(fields_after[2]))
    also = f", and on {more} more line{'s' * (more != 1)} like it" if more else ""
    shown = ", ".join(quoted(field) for field in fields)
    extra = "the 4th field" if len(fields) == 4 else "the fields after the 3rd"
    return AnnotationError(
        f"{path}, line {number}: expected 'start end label' (3 fields), got {len(fields)}: {shown}. A .lab "
        f"line ends with its label (mir_eval refuses such a line too): remove {extra} (a confidence?) "
        f"here{also}"
    )


def _refuse_unreadable(path: Path, segments: Sequence[ChordSegment]) -> None:
    """Raise the `AnnotationError` that reading the file back would (`validate_segments`, naming `path` and
    the segment), before anything is written: a label that is not Harte syntax (``Am``), a time that is
    negative or not finite, an end before its start, segments out of order or overlapping. Found when a
    recipe reads the file, the mistake would be far from where it was made. Gaps pass (``allow_gaps``
    reads them as N), and so does an empty list (an empty transcription)."""
    if segments:
        _check_for_writing(segments, f"{path} (not written)")


def _check_for_writing(segments: Sequence[ChordSegment], source: str) -> None:
    """`validate_segments` of what is about to be written, without its `ZeroLengthSegmentsWarning`: the file
    is written with its zero-length lines, and whoever reads it is told of them then."""
    with ignoring_warnings(category=ZeroLengthSegmentsWarning):  # (catch_warnings resets the registries)
        validate_segments(segments, source, allow_gaps=True)


def lab_text(segments: Iterable[ChordSegment]) -> str:
    """Segments as the text of a ``.lab`` file (tab-separated, times with 6 decimals), as `write_lab`
    writes it (`write_lab` writes labels in canonical spelling)."""
    return "".join(f"{s.start:.6f}\t{s.end:.6f}\t{s.label}\n" for s in segments)


def with_lab_times(segments: Iterable[ChordSegment]) -> list[ChordSegment]:
    """`segments` with their times rounded to the 6 decimals `lab_text` writes, as `read_lab` reads them back:
    what is scored beside a written ``.lab`` is then what ``mir_eval`` scores on the file."""
    return [ChordSegment(float(f"{s.start:.6f}"), float(f"{s.end:.6f}"), s.label) for s in segments]


def _as_written(path: Path, segments: Sequence[ChordSegment]) -> list[ChordSegment]:
    """`segments` as a ``.lab`` holds them, checked as `read_lab` will read them: times rounded to the 6
    decimals `lab_text` writes, labels in canonical spelling (`format_harte`: no whitespace, so no line
    break inside one either). Rounding can make what passed unrounded unreadable: a segment shorter than
    0.5 µs becomes zero-length (read back as nothing), an overlap just under the tolerance one over it."""
    _refuse_unreadable(path, segments)  # (the times as given: a negative or reversed one is named as such)
    rounded = with_lab_times(segments)
    if rounded:
        _check_for_writing(rounded, f"{path} (not written; times rounded to a .lab's 6 decimals)")
    return [ChordSegment(s.start, s.end, format_harte(parse_harte(s.label))) for s in rounded]


def _file_path(path: str | Path, writer: str) -> Path:
    # Segments given first (writer(segments, path)) would end in pathlib's own TypeError, from inside it.
    if not isinstance(path, (str, PathLike)):
        raise TypeError(
            f"{writer}(path, segments): the path comes first, a str or Path; "
            f"got a {type(path).__name__} as the path"
        )
    return Path(path)


def _segments_given(segments: Iterable[ChordSegment], writer: str) -> list[ChordSegment]:
    # A (start, end, label) tuple, mir_eval's or a CSV's row, ended in an AttributeError from deep inside the
    # checks ("'tuple' object has no attribute 'start'"), which named neither the writer nor the fix.
    given = list(segments)
    for i, segment in enumerate(given):
        if not isinstance(segment, ChordSegment):
            raise TypeError(
                f"{writer}(path, segments): segment {i} is a {type(segment).__name__} ({segment!r:.60}), not a "
                "ChordSegment; make each one with audiotrain.chords.ChordSegment(start, end, label), e.g. "
                "[ChordSegment(s, e, label) for s, e, label in rows]"
            )
    return given


def write_lab(path: str | Path, segments: Iterable[ChordSegment], *, replace: bool = False) -> Path:
    """Write segments as a ``.lab`` file (`lab_text`); returns the path.

    Labels are written in the canonical spelling `read_lab` returns (`format_harte`: ``C:maj/E`` as
    ``C:maj/3``, which ``mir_eval`` reads too), times with 6 decimals. Segments that `read_lab` would refuse
    once so written are an `AnnotationError` naming the segment, and nothing is written (`_as_written`). An
    existing `path` (an annotation made by hand, perhaps) is a `FileExistsError` naming it, unless
    ``replace=True`` (checked as the file is put in place: one written meanwhile is never replaced); a
    folder there is an `IsADirectoryError`.
    """
    path = _file_path(path, "write_lab")
    segments = _as_written(path, _segments_given(segments, "write_lab"))
    data = lab_text(segments).encode("utf-8")
    return write_given_path(
        path,
        lambda tmp: tmp.write_bytes(data),
        replace,
        writer="write_lab",
        flag="replace",
        example="song.lab",
    )


def _jams_observations(data, path: Path, where: str) -> list[dict]:
    # JAMS ≥ 0.3 stores a list of observations; older files store a dict of parallel lists.
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and all(k in data for k in ("time", "duration", "value")):
        lengths = {
            k: len(data[k]) if isinstance(data[k], list) else None for k in ("time", "duration", "value")
        }
        if None in lengths.values() or len(set(lengths.values())) != 1:
            raise AnnotationError(
                f"{path}, {where}: 'time', 'duration' and 'value' must be lists of one length, got {lengths}"
            )
        return [
            {"time": t, "duration": d, "value": v}
            for t, d, v in zip(data["time"], data["duration"], data["value"])
        ]
    raise AnnotationError(f"{path}, {where}: 'data' is neither a list of observations nor a dict of lists")


def _jams_seconds(value) -> float:
    """A JAMS time or duration as a float; TypeError for a bool (JSON true is no number of seconds).
    float() raises OverflowError for an integer too large for a float, which JSON allows."""
    if isinstance(value, bool):
        raise TypeError("a bool is not a number of seconds")
    return float(value)


#: What tells a JAMS file's chord annotations apart where they have no annotator name, in order: GuitarSet's
#: two differ only in ``data_source`` (the lead sheet's chords, the performed ones).
_TELLING_METADATA = ("data_source", "annotation_rules", "version")


def _describe_annotation(annotation: dict, chord_number: int) -> str:
    """``"chord by Alice"``; without an annotator name ``"chord (data_source: performed chords)"`` (else
    ``annotation_rules``, else ``version``); without any of them ``"chord #1"`` (`chord_number`, from 0)."""
    namespace = annotation.get("namespace")
    metadata = annotation.get("annotation_metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    annotator = metadata.get("annotator")
    name = annotator.get("name") if isinstance(annotator, dict) else None
    if name:
        return f"{namespace} by {name}"
    for key in _TELLING_METADATA:
        value = metadata.get(key)
        if value not in (None, ""):
            return f"{namespace} ({key}: {value})"
    return f"{namespace} #{chord_number}"


def read_jams(
    path: str | Path,
    *,
    annotation_index: int | None = None,
    chord_annotation: int = 0,
    allow_gaps: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
    keep_starts: bool = False,
    filled_gaps: list[tuple[float, float]] | None = None,
) -> list[ChordSegment]:
    """Read the chord annotation of a JAMS file: ``.jams`` (JSON) or ``.jamz`` (gzip-compressed JSON).

    A gzip file is recognised by its content, whatever its suffix.

    Parameters
    ----------
    path : str or Path
        The ``.jams`` or ``.jamz`` file.
    annotation_index : int, optional
        Which annotation of the file to read, counting every namespace; default: the one `chord_annotation`
        picks.
    chord_annotation : int
        Which of the annotations in a chord namespace (``chord`` or ``chord_harte``) to read, counted from
        0 in file order (GuitarSet: 0 the lead sheet's chords, 1 the performed ones). A file with fewer is
        an `AnnotationError` that describes those it holds.
    allow_gaps : bool
        Fill gaps between observations longer than ``tolerance`` with ``N`` instead of raising.
    tolerance : float
        Largest gap or overlap, in seconds, treated as rounding and snapped shut.
    keep_starts : bool
        Shut those by moving the previous end, not the start (`validate_segments`).
    filled_gaps : list, optional
        Collects each gap read as ``N``, as ``(start, end)`` (`validate_segments`).

    Returns
    -------
    list of ChordSegment
        In time order, checked as `validate_segments` checks them.
    """
    path = Path(path).expanduser()  # (~ the home folder, as `write_lab` writes it)
    raw = path.read_bytes()
    pointer = pointer_text(raw[:MAX_POINTER_BYTES])  # (a dataset cloned without Git LFS)
    if pointer:
        raise AnnotationError(f"{path}: {pointer}")
    if raw[:2] == _GZIP_MAGIC:
        try:
            # Read one byte past the limit: only a larger file has it, and no more is ever decompressed.
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as packed:
                raw = packed.read(MAX_JAMZ_BYTES + 1)
        except (OSError, EOFError, zlib.error) as err:
            raise AnnotationError(f"{path}: a corrupt or truncated gzip (.jamz) file ({err})") from None
        if len(raw) > MAX_JAMZ_BYTES:
            raise AnnotationError(
                f"{path}: decompresses to more than {MAX_JAMZ_BYTES // 2**20} MB (the most a .jamz may hold); a "
                "chord annotation takes kilobytes, so the file is damaged or not an annotation"
            )
    elif path.suffix.lower() == ".jamz":
        raise AnnotationError(f"{path}: a .jamz file must be gzip-compressed JSON, but this is not gzip")
    try:
        text = raw.decode("utf-8-sig")  # -sig: tolerate a BOM
    except UnicodeDecodeError as err:
        if is_utf16(raw):
            raise AnnotationError(f"{path}: {UTF16_TEXT}") from None
        raise AnnotationError(f"{path}: not valid JSON ({err})") from None
    # unique_keys: json keeps the last of a key given twice ("value" twice: the chord silently the second)
    document = parse_json(text, path, AnnotationError, unique_keys=True)  # deep nesting, a long number too
    annotations = document.get("annotations") if isinstance(document, dict) else None
    if not isinstance(annotations, list) and isinstance(document, dict) and "chord" in document:
        # JAMS 0.1 (2014): a list per namespace at the top, observations {"start": {"value": ..}, ...}.
        # Half the datasets of marl/jams' data/datasets are still in it; the jams package has no converter.
        raise AnnotationError(
            f"{path}: a JAMS 0.1 file (its chords in a top-level 'chord' list, as in marl/jams' "
            "data/datasets), a layout not read here: JAMS 0.2 and later keep them in an 'annotations' list. "
            "Use the dataset's .lab files, or write each observation's start, end and label as a .lab line"
        )
    if not isinstance(annotations, list):
        raise AnnotationError(f"{path}: no 'annotations' list (is this a JAMS file?)")
    if annotation_index is None:
        chord_indices = [
            i
            for i, a in enumerate(annotations)
            if isinstance(a, dict) and a.get("namespace") in JAMS_CHORD_NAMESPACES
        ]
        if not chord_indices:
            found = sorted({str(a.get("namespace")) for a in annotations if isinstance(a, dict)})
            raise AnnotationError(
                f"{path}: no annotation in namespace {' or '.join(JAMS_CHORD_NAMESPACES)} (found: {found})"
            )
        who = [_describe_annotation(annotations[i], n) for n, i in enumerate(chord_indices)]
        if not 0 <= chord_annotation < len(chord_indices):
            held = listed([f"{n}: {description}" for n, description in enumerate(who)], 10, "; ")
            raise AnnotationError(
                f"{path}: chord annotation {chord_annotation} (counted from 0) asked for, but the file holds "
                f"{len(chord_indices)} ({held})"
            )
        annotation_index = chord_indices[chord_annotation]
        if len(chord_indices) > 1:
            # Several annotators (or versions): say which one is used rather than pick silently.
            used = "the first" if chord_annotation == 0 else f"number {chord_annotation} (counted from 0)"
            message = (
                f"{path}: {len(chord_indices)} chord annotations ({listed(who, 10)}); using {used}. "
                "read_jams(path, chord_annotation=n) reads another."
            )
            warnings.warn(SeveralAnnotationsWarning(message, path, who, chord_annotation), stacklevel=2)
    if not 0 <= annotation_index < len(annotations):
        raise AnnotationError(
            f"{path}: annotation {annotation_index} does not exist ({len(annotations)} annotations)"
        )
    where = f"annotation {annotation_index}"
    observations = _jams_observations(annotations[annotation_index].get("data"), path, where)
    segments, locations = [], []
    for i, obs in enumerate(observations):
        location = f"{where}, observation {i}"
        try:
            start, duration, value = _jams_seconds(obs["time"]), _jams_seconds(obs["duration"]), obs["value"]
        except (KeyError, TypeError, ValueError, OverflowError):  # Overflow: an integer of 400 digits
            raise AnnotationError(
                f"{path}, {location}: expected numeric 'time' and 'duration' and a 'value', got {quoted(obs)}"
            ) from None
        if not isinstance(value, str):
            raise AnnotationError(f"{path}, {location}: chord value must be a string, got {quoted(value)}")
        segments.append(ChordSegment(start, start + duration, value))
        locations.append(location)
    if not segments:
        raise AnnotationError(f"{path}, {where}: no chord observations")
    order = sorted(range(len(segments)), key=lambda k: segments[k].start)
    return validate_segments(
        [segments[k] for k in order],
        str(path),
        [locations[k] for k in order],
        allow_gaps=allow_gaps,
        tolerance=tolerance,
        keep_starts=keep_starts,
        filled_gaps=filled_gaps,
    )


def jams_text(segments: Sequence[ChordSegment], *, duration: float | None = None, title: str = "") -> str:
    """Segments as a minimal JAMS document (one ``chord`` annotation), as JSON text."""
    duration = duration if duration is not None else (segments[-1].end if segments else 0.0)
    document = {
        "file_metadata": {"duration": duration, "title": title},
        "annotations": [
            {
                "namespace": "chord",
                "annotation_metadata": {"annotation_tools": "audiotrain"},
                "data": [
                    {"time": s.start, "duration": s.duration, "value": s.label, "confidence": None}
                    for s in segments
                ],
                "sandbox": {},
                "time": 0,
                "duration": duration,
            }
        ],
        "sandbox": {},
    }
    return json.dumps(document, indent=1)


def write_jams(
    path: str | Path,
    segments: Sequence[ChordSegment],
    *,
    duration: float | None = None,
    title: str | None = None,
    replace: bool = False,
) -> Path:
    """Write segments as a minimal JAMS file with one ``chord`` annotation; returns the path.

    ``title`` (the song's name, e.g. its audio file's stem) defaults to the stem of ``path``. A ``.jamz``
    path is written gzip-compressed. Segments that `read_jams` would refuse are an error, and ``replace``
    means, as in `write_lab`.
    """
    path = _file_path(path, "write_jams")
    segments = _segments_given(segments, "write_jams")
    _refuse_unreadable(path, segments)
    text = jams_text(segments, duration=duration, title=path.stem if title is None else title)
    data = text.encode("utf-8")
    if path.suffix.lower() == ".jamz":
        data = gzip.compress(data, mtime=0)
    return write_given_path(
        path,
        lambda tmp: tmp.write_bytes(data),
        replace,
        writer="write_jams",
        flag="replace",
        example="song.jams",
    )


def read_annotation(
    path: str | Path,
    *,
    allow_gaps: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
    keep_starts: bool = False,
    jams_annotation: int = 0,
    filled_gaps: list[tuple[float, float]] | None = None,
) -> list[ChordSegment]:
    """Read a ``.lab`` or ``.jams`` / ``.jamz`` chord annotation, chosen by the file suffix (`keep_starts`:
    see `validate_segments`, as `filled_gaps`); of a JAMS file's chord annotations, number `jams_annotation`
    (from 0; see `read_jams`' ``chord_annotation``)."""
    path = Path(path).expanduser()  # (~ the home folder, as `write_lab` writes it)
    suffix = path.suffix.lower()
    options = {
        "allow_gaps": allow_gaps,
        "tolerance": tolerance,
        "keep_starts": keep_starts,
        "filled_gaps": filled_gaps,
    }
    if suffix in JAMS_SUFFIXES:
        return read_jams(path, chord_annotation=jams_annotation, **options)
    if suffix in (".lab", ".txt", ".chords"):
        return read_lab(path, **options)
    raise AnnotationError(f"{path}: unknown annotation format {suffix!r} (expected .lab, .jams or .jamz)")
