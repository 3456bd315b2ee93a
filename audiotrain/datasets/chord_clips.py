"""Short clips with one chord each (the clip format of the original chord-training guide).

A folder holds audio clips and ``metadata.csv`` or ``metadata.jsonl``, one row per clip:

- ``file_name`` (or ``audio`` / ``path`` / ``file``): the clip, relative to the folder (an absolute path, or
  one that ``..`` or a symlink leads out of it, is a bad row: nothing outside the folder is read);
- either ``chord_type``, ``root`` and ``bass_note`` (``bass`` is accepted too; a row filling in both must
  have them agree): class indices, or names (``chord_type`` a vocabulary type such as ``min7``; ``root`` /
  ``bass_note`` note names such as ``F#``);
  root and bass may be empty or -1 for ``N`` and ``X``. Six type names are numerals (``1``, ``5``, ``7``,
  ``9``, ``11``, ``13``), so a chord_type is told apart by its form, never by its value: in
  ``metadata.jsonl`` a JSON number is an index and a string a name (``"7"`` is the dominant seventh); in
  ``metadata.csv`` the column is read as indices only when every cell of it is a whole number, and as names
  otherwise. A CSV column of such numerals alone (``7``, ``9``) could be either and is refused: give a
  ``label`` or use ``metadata.jsonl``;
- or ``label``: a Harte label (``C:maj7/3``), mapped through the vocabulary; target columns filled in on
  the same row must agree with it.

The file is UTF-8 (a BOM is fine); only one of the two may exist.

Items are numpy dicts: ``audio`` float32 [samples] (padded with zeros / cut to ``clip_seconds``),
``chord_type``, ``root``, ``bass`` int32 scalars (``bass`` is the guide's ``bass_note``), and ``features``
when a ``feature_fn`` is given. Every bad row is reported with the metadata file and line: among them a
CSV row with more or fewer cells than the header, an ``N`` or ``X`` row given a root (a sign of a vocabulary
numbered otherwise), and a clip listed again with another chord. Labels that train as another chord (the
vocabulary's reduction: ``A:7(b13)`` as ``A:7``, notes no type holds as ``X``) are warned about, counted.
"""

from __future__ import annotations

import csv
import io
import math
import numbers
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from audiotrain import audio as audio_io
from audiotrain._files import parse_json, unusable_path
from audiotrain._text import is_number
from audiotrain.chords.harte import PITCH_CLASS_NAMES, HarteError, note_to_pitch_class
from audiotrain.chords.vocabulary import (
    CHORD_TYPES,
    IGNORE_INDEX,
    N_INDEX,
    X_INDEX,
    encode_label,
    reduced_label,
)
from audiotrain.data import Dataset
from audiotrain.datasets._folders import AUDIO_FILE_SUFFIXES
from audiotrain.datasets._text import csv_error_text, csv_rows, read_utf8_text

import numpy as np

METADATA_FILES = ("metadata.csv", "metadata.jsonl")
_PATH_KEYS = ("file_name", "audio", "path", "file")


@dataclass(frozen=True)
class ChordClip:
    """One clip: its audio file and its targets (root and bass -1 for N and X)."""

    audio_path: Path
    chord_type: int
    root: int
    bass: int

    @property
    def targets(self) -> tuple[int, int, int]:
        return self.chord_type, self.root, self.bass


# How a file gives its chord types: JSON numbers are indices and strings names; a CSV column is one or the other.
JSON_TYPES, CSV_INDICES, CSV_NAMES = "json", "csv indices", "csv names"
_NUMERAL_NAMES = tuple(t for t in CHORD_TYPES if t.isdigit())  # ("5", "1", "7", "9", "11", "13")


def _chord_type_reading(path: Path, rows: list[tuple[int, dict | str]]) -> str:
    """How ``path`` spells its chord types: decided for the whole file, since "7" is both index 7 and a name.

    Raises
    ------
    ValueError
        If a CSV column holds only numerals that are type names too, which no cell can settle.
    """
    if path.suffix == ".jsonl":
        return JSON_TYPES
    cells = [r["chord_type"] for _, r in rows if isinstance(r, dict) and (r.get("chord_type") or "").strip()]
    if not cells or not all(is_number(c) for c in cells):
        return CSV_NAMES
    if all(c in _NUMERAL_NAMES for c in cells):
        raise ValueError(
            f"{path}: every chord_type is a number that is a type name too ({', '.join(sorted(set(cells)))}), "
            "so it could be an index or a name; give a Harte 'label' column (G:7), or use metadata.jsonl, "
            'where 7 is an index and "7" a name'
        )
    return CSV_INDICES


def _chord_type_index(value, reading: str) -> int:
    """A chord-type name, or a class index where the file gives indices (see ``_chord_type_reading``)."""
    if isinstance(value, str) and reading != CSV_INDICES:
        text = value.strip()
        if text in CHORD_TYPES:
            return CHORD_TYPES.index(text)
        hint = ""
        if is_number(text):
            hint = (
                f"; a class index is a JSON number ({text}), not a string"
                if reading == JSON_TYPES
                else "; this file's chord_type column holds names, so every cell is read as a name"
            )
        raise ValueError(f"chord_type {text!r} is not one of {list(CHORD_TYPES)}{hint}")
    return _class_index(value, "chord_type")


def _class_index(value, field: str) -> int:
    """An index (an int, or an int-like string or float, as pandas writes) or, for root and bass, a note name."""
    text = str(value).strip() if value is not None else ""
    # "nan" is how a missing float prints (json.dumps writes NaN for pandas' gaps).
    if field != "chord_type" and text in ("", "None", "none", "nan"):
        return IGNORE_INDEX
    try:
        number = float(text)
    except ValueError:
        if field == "chord_type":
            raise ValueError(f"chord_type {text!r} is neither a class index nor a type name") from None
        try:
            return note_to_pitch_class(text)
        except HarteError:
            raise ValueError(f"{field} {text!r} is neither a pitch class 0-11 nor a note name") from None
    # pandas turns an int column with a gap into floats (2.0), which are still indices; 2.5 is not.
    if not number.is_integer():
        raise ValueError(f"{field} {text!r} is not a whole class index")
    index = int(number)
    if field != "chord_type" and index == IGNORE_INDEX:
        return IGNORE_INDEX
    upper = len(CHORD_TYPES) if field == "chord_type" else 12
    if not 0 <= index < upper:
        raise ValueError(f"{field} {index} is outside 0..{upper - 1}")
    return index


def _read_rows(path: Path) -> list[tuple[int, dict | str]]:
    """(line number, row) pairs; a line that is no row at all (bad JSON) comes as a problem string."""
    text = read_utf8_text(path, ValueError)
    if path.suffix == ".jsonl":
        rows = []
        # Split on newlines only: str.splitlines would also split inside strings holding U+2028 and the like.
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                row = parse_json(line, "", ValueError)
            except ValueError as err:  # (a syntax error, nesting too deep, a number of 4300 digits and more)
                rows.append((number, str(err).removeprefix(": ").replace(" at line 1:", ":", 1)))
                continue
            if not isinstance(row, dict):
                row = f"expected a JSON object, got {type(row).__name__}"
            rows.append((number, row))
        return rows
    reader = csv.DictReader(io.StringIO(text, newline=""))
    # Spaces after the commas ("file_name, chord_type") are layout, not part of the names or values.
    first_line = 1
    try:
        reader.fieldnames = [name.strip() for name in reader.fieldnames or []]
    except csv.Error as error:  # (the reader cannot go on: a cell over 128 KB, a quote left open)
        raise ValueError(f"{path}, line {first_line}: {csv_error_text(str(error))}") from None
    columns = len(reader.fieldnames)
    rows = []
    for _, row in csv_rows(reader, lambda line, problem: ValueError(f"{path}, line {line}: {problem}")):
        # line_num is the line the row ends on, so blank lines and quoted line breaks do not shift the count.
        cells = sum(v is not None for k, v in row.items() if k is not None) + len(row.get(None) or [])
        if cells != columns:  # DictReader fills a short row with None and keeps a long one's extras
            problem = f"{cells} cells but {columns} columns (a comma missing, extra or unquoted?)"
            rows.append((reader.line_num, problem))
            continue
        rows.append((reader.line_num, {k: v.strip() if isinstance(v, str) else v for k, v in row.items()}))
    return rows


def _column_targets(row: dict, reading: str) -> tuple[int, int, int]:
    """(chord_type, root, bass) from the chord_type, root and bass_note (or bass) columns."""
    bass_keys = [k for k in ("bass_note", "bass") if k in row] or ["bass_note"]
    missing = [k for k in ("chord_type", "root", bass_keys[0]) if k not in row]
    if missing:
        raise ValueError(f"missing {', '.join(missing)} (or give a Harte 'label')")
    chord_type = _chord_type_index(row["chord_type"], reading)
    chord_root = _class_index(row["root"], "root")
    # A table with both columns: the one filled in on this row, and two filled in must agree (silently
    # preferring one would train on whichever is stale, as with a label and its columns).
    given = {k: _class_index(row[k], k) for k in bass_keys}
    filled = [k for k in bass_keys if given[k] != IGNORE_INDEX]
    if len({given[k] for k in filled}) > 1:
        raise ValueError(
            f"bass_note {row['bass_note']!r} and bass {row['bass']!r} disagree; keep one or make them agree"
        )
    bass_key = filled[0] if filled else bass_keys[0]
    bass = given[bass_key]
    if chord_type in (N_INDEX, X_INDEX):
        if chord_root != IGNORE_INDEX or bass != IGNORE_INDEX:
            # Dropping it would turn every row of a vocabulary numbered from maj = 0 into N or X unnoticed.
            raise ValueError(
                f"chord_type {row['chord_type']!r} is {CHORD_TYPES[chord_type]!r}, which takes no root or "
                f"bass, but root {row['root']!r} / bass {row[bass_key]!r} are given; leave them empty (or "
                f"-1), or number the types as {', '.join(f'{i}={t}' for i, t in enumerate(CHORD_TYPES[:4]))}"
                ", ..."
            )
        return chord_type, IGNORE_INDEX, IGNORE_INDEX
    if bass == IGNORE_INDEX:
        bass = chord_root
    if chord_root == IGNORE_INDEX:
        raise ValueError(f"chord type {CHORD_TYPES[chord_type]!r} needs a root")
    return chord_type, chord_root, bass


def _index_name(field: str, index: int) -> str:
    if field == "chord_type":
        return CHORD_TYPES[index]
    return PITCH_CLASS_NAMES[index] if index != IGNORE_INDEX else "none"


def _describe(clip: ChordClip) -> str:
    """A clip's targets by name: ``min root A bass A``."""
    names = [_index_name(field, index) for field, index in zip(("chord_type", "root", "bass"), clip.targets)]
    return "{} root {} bass {}".format(*names)


def _label_targets(row: dict, reading: str) -> tuple[int, int, int]:
    """(chord_type, root, bass) from the Harte ``label``, checked against any filled-in target columns.

    A column left empty (or -1 for root / bass) is not compared: a table can hold both kinds of rows.
    """
    label = str(row["label"])
    index = encode_label(label)
    targets = {
        "chord_type": index.chord_type,
        "root": index.root,
        "bass_note": index.bass,
        "bass": index.bass,
    }
    conflicts = []
    for key, expected in targets.items():
        raw = row.get(key)
        if raw is None or str(raw).strip() == "":
            continue
        value = _chord_type_index(raw, reading) if key == "chord_type" else _class_index(raw, key)
        if value == IGNORE_INDEX:  # -1 root / bass: not given, as when empty
            continue
        if value != expected:
            conflicts.append(f"{key} {raw!r} (label: {_index_name(key, expected)})")
    # Silently preferring one of two disagreeing sources would train on whichever is stale.
    if conflicts:
        raise ValueError(
            f"label {label!r} disagrees with {', '.join(conflicts)}; keep one or make them agree"
        )
    return index.chord_type, index.root, index.bass


def _layout_hint(root: Path) -> str:
    """What a clip folder without metadata holds instead, said with what to write: a table under another
    name (``labels.csv``), or a folder per chord (``Am/``, ``G7/``), which is not read as labels."""
    try:
        entries = list(root.iterdir())
        tables = sorted(p.name for p in entries if p.suffix.lower() in (".csv", ".jsonl") and p.is_file())
        chord_folders = sorted(
            d.name
            for d in entries
            if d.is_dir() and any(f.suffix.lower() in AUDIO_FILE_SUFFIXES for f in d.iterdir())
        )
    except OSError:  # (a folder missing or unreadable: the error names the folder, with no hint)
        return ""
    hints = []
    if tables:
        hints.append(f"{', '.join(tables[:3])} is not read: only those two names are")
    if chord_folders:
        shown = ", ".join(chord_folders[:4]) + (", ..." if len(chord_folders) > 4 else "")
        hints.append(f"the names of its folders of audio ({shown}) are not read as chords")
    if not hints:
        return ""
    return (
        f" ({'; '.join(hints)}): list the clips in metadata.csv, a header file_name,label and a row per clip "
        "such as Am/take1.wav,A:min (a Harte label)"
    )


def _metadata_file(root: Path) -> Path:
    found = [root / name for name in METADATA_FILES if (root / name).is_file()]
    if not found:
        raise FileNotFoundError(
            f"{root}: no {' or '.join(METADATA_FILES)} describing the clips{_layout_hint(root)}"
        )
    if len(found) > 1:
        raise ValueError(
            f"{root}: both {' and '.join(p.name for p in found)} describe the clips; keep only one of them"
        )
    return found[0]


def read_clip_metadata(root: str | Path) -> list[ChordClip]:
    """Read and check the metadata of a clip folder.

    The metadata must be UTF-8 (a BOM is fine). CSV header names and values may have spaces around them.

    Raises
    ------
    FileNotFoundError
        If the folder has no ``metadata.csv`` / ``metadata.jsonl``.
    ValueError
        If the folder has both, or the file is not UTF-8, or listing every bad row (bad JSON included) as
        ``file, line N: problem``. A row whose ``label`` disagrees with its target columns is a bad row.
    """
    root = Path(root)
    real_root = Path(os.path.realpath(root))
    metadata = _metadata_file(root)
    clips, problems = [], []
    first_seen: dict[Path, tuple[int, ChordClip]] = {}  # resolved clip path → (line, clip)
    changed: dict[str, list] = {}  # label → [what it trains as, clips, first line]
    rows = _read_rows(metadata)
    columns = {key for _, row in rows if isinstance(row, dict) for key in row if isinstance(key, str)}
    if columns and not columns & set(_PATH_KEYS):
        # Said once for the file: per row, a "file_path" header was the same error on every line.
        raise ValueError(
            f"{metadata}: no column names the clips' audio files: expected one of {', '.join(_PATH_KEYS)}, "
            f"got {', '.join(sorted(columns))}"
        )
    reading = _chord_type_reading(metadata, rows)
    for number, row in rows:
        where = f"{metadata}, line {number}"
        if isinstance(row, str):
            problems.append(f"{where}: {row}")
            continue
        path_key = next((k for k in _PATH_KEYS if row.get(k)), None)
        if path_key is None:
            problems.append(f"{where}: no clip path (one of {', '.join(_PATH_KEYS)})")
            continue
        audio_path = root / str(row[path_key])
        outside = _outside(real_root, str(row[path_key]), path_key)
        if outside:  # (nothing outside the clip folder is read)
            problems.append(f"{where}: the audio path {row[path_key]} cannot be used ({outside})")
            continue
        problem = unusable_path(audio_path)
        if problem:
            problems.append(f"{where}: the audio path {audio_path} cannot be used ({problem})")
            continue
        if not audio_path.is_file():
            # Said as `audiotrain.audio.load` says it: "does not exist" of a folder the user sees, or of a
            # link whose target is gone, sent them looking for a file that is there.
            if audio_path.is_dir():
                problems.append(f"{where}: the audio path {audio_path} is a folder, not an audio file")
            elif audio_path.is_symlink():
                problems.append(
                    f"{where}: audio file {audio_path} does not exist (a symlink to "
                    f"{os.readlink(audio_path)}, which does not exist)"
                )
            else:
                problems.append(f"{where}: audio file {audio_path} does not exist")
            continue
        try:
            targets = _label_targets(row, reading) if row.get("label") else _column_targets(row, reading)
        except (ValueError, HarteError) as err:
            problems.append(f"{where}: {err}")
            continue
        clip = ChordClip(audio_path, *targets)
        earlier = first_seen.setdefault(audio_path.resolve(), (number, clip))
        if earlier[1].targets != clip.targets:  # (the same chord twice only weighs the clip twice)
            problems.append(
                f"{where}: {row[path_key]} is listed on line {earlier[0]} too, with another chord "
                f"({_describe(earlier[1])} there, {_describe(clip)} here); keep one"
            )
            continue
        clips.append(clip)
        if row.get("label"):
            label = str(row["label"]).strip()
            becomes = "X" if clip.chord_type == X_INDEX and label != "X" else reduced_label(label)
            if becomes:
                changed.setdefault(label, [becomes, 0, number])[1] += 1
    if problems:
        grouped = _grouped_problems(metadata, problems)
        shown = "\n  ".join(grouped[:20])
        more = f"\n  ... and {len(grouped) - 20} more" if len(grouped) > 20 else ""
        raise ValueError(f"{len(problems)} bad rows in the clip metadata:\n  {shown}{more}")
    if not clips:
        raise ValueError(f"{metadata}: no clips")
    if changed:
        # Said, not silent: a clip labelled A:7(b13) trains as A:7 and one of notes no type holds as X (the
        # unknown chord), and the per-class scores then name those, not the labels the user wrote.
        count = sum(n for _, n, _ in changed.values())
        shown = "; ".join(
            f"{label} as {becomes} ({n} clip{'s' if n > 1 else ''}, line {line} first)"
            for label, (becomes, n, line) in list(changed.items())[:10]
        )
        more = f"; and {len(changed) - 10} more labels" if len(changed) > 10 else ""
        warnings.warn(
            f"{metadata}: {count} clip{'s' if count > 1 else ''} train as another chord than their label "
            f"(the vocabulary has {len(CHORD_TYPES)} chord types; X is the unknown chord): {shown}{more}",
            UserWarning,
            stacklevel=3,
        )
    return clips


def _grouped_problems(metadata: Path, problems: list[str]) -> list[str]:
    """``metadata, line N: problem`` lines, those of one problem said once with all their lines
    (``lines 10-17, 40``): a label spelled the same wrong way on 56 rows filled the 20 lines shown with 3
    of its spellings, hiding the others the user had to fix."""
    prefix = f"{metadata}, line "
    lines: dict[str, list[int]] = {}
    for problem in problems:
        number, _, text = problem.removeprefix(prefix).partition(": ")
        lines.setdefault(text, []).append(int(number))
    out = []
    for text, rows in lines.items():
        spans = []  # runs of consecutive lines: [first, last]
        for number in rows:
            if spans and number == spans[-1][1] + 1:
                spans[-1][1] = number
            else:
                spans.append([number, number])
        shown = [str(a) if a == b else f"{a}-{b}" for a, b in spans[:6]]
        more = f" and {len(spans) - 6} more" if len(spans) > 6 else ""
        word = "line" if len(rows) == 1 else "lines"
        out.append(f"{prefix.removesuffix('line ')}{word} {', '.join(shown)}{more}: {text}")
    return out


def _outside(real_root: Path, relative: str, field: str) -> str | None:
    """Why the clip path `relative` (a row's `field`) leads out of the folder `real_root` (a real path): an
    absolute path, or one that a ``..`` or a symlink takes outside; None when it stays inside."""
    if PurePosixPath(relative).is_absolute() or PureWindowsPath(relative).is_absolute():
        return f"absolute path; {field} must be relative to the clip folder"
    resolved = Path(os.path.realpath(real_root / relative))
    if not resolved.is_relative_to(real_root):
        return f"it leads out of the clip folder, to {resolved}"
    return None


class ChordClipDataset(Dataset):
    """Fixed-length chord clips with per-clip targets (see the module docstring).

    Parameters
    ----------
    root : str or Path
        The clip folder.
    sr : int
        Sample rate the audio is resampled to (a positive whole number).
    clip_seconds : float, optional
        Every clip is padded or cut to this length (at least one sample); default: the longest clip.
        A bad ``sr`` or ``clip_seconds`` is a ``ValueError`` naming it, before the folder is read.
    feature_fn : callable, optional
        ``feature_fn(audio [samples], sr) -> np.ndarray``, stored as ``features``.
    """

    def __init__(
        self,
        root: str | Path,
        sr: int = 22050,
        clip_seconds: float | None = None,
        feature_fn: Callable[[np.ndarray, int], np.ndarray] | None = None,
    ):
        # Checked here, not at the first item in a loader worker: there sr=0 was a ZeroDivisionError and
        # clip_seconds=0 a complaint about a `duration` the user never passed.
        if not audio_io.is_sample_rate(sr):
            raise ValueError(
                f"ChordClipDataset(sr={sr!r}): expected a positive whole number of samples per second"
            )
        if clip_seconds is not None and (
            isinstance(clip_seconds, bool)
            or not isinstance(clip_seconds, numbers.Real)
            or not (math.isfinite(clip_seconds) and round(clip_seconds * sr) >= 1)
        ):
            raise ValueError(
                f"ChordClipDataset(clip_seconds={clip_seconds!r}): expected a positive number of seconds (at "
                f"least one sample at sr={sr}), or None for the longest clip"
            )
        self.root = Path(root)
        self.clips = read_clip_metadata(self.root)
        self.sr = sr
        if clip_seconds is None:
            clip_seconds = max(audio_io.get_duration(c.audio_path) for c in self.clips)
        self.clip_samples = int(round(clip_seconds * sr))
        self.feature_fn = feature_fn

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        # Checked here: the list's own errors named neither the dataset nor the index ("list index out of
        # range"), and a slice failed later as "'list' object has no attribute 'audio_path'".
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(
                f"ChordClipDataset index must be a whole number (one clip), got {type(index).__name__}"
            )
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} clips")
        clip = self.clips[index]
        samples, _ = audio_io.load(clip.audio_path, sr=self.sr, duration=self.clip_samples / self.sr)
        audio = np.zeros(self.clip_samples, np.float32)
        audio[: min(len(samples), self.clip_samples)] = samples[: self.clip_samples]
        item = {
            "audio": audio,
            "chord_type": np.int32(clip.chord_type),
            "root": np.int32(clip.root),
            "bass": np.int32(clip.bass),
        }
        if self.feature_fn is not None:
            item["features"] = np.asarray(self.feature_fn(audio, self.sr), dtype=np.float32)
        return item
