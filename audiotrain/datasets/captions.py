"""A folder of audio clips with text captions, for CLAP fine-tuning and retrieval evaluation.

Accepted layouts (the first that applies wins):

1. A metadata file at the top of the folder (at most one of them):

   - ``metadata.jsonl``: one JSON object per line with ``file_name`` (a path relative to the folder) and
     ``caption`` (a string or a list of strings; ``caption_1``, ``caption_2``, ... as in a CSV header, else
     ``captions`` or ``text``, are accepted too), optionally
     ``split`` and ``label`` (a class name, used for zero-shot classification).
   - ``metadata.json``: the same objects in one JSON array.
   - ``metadata.csv`` (comma-, semicolon- or tab-separated: the delimiter that makes the header hold
     ``file_name`` is used) or ``metadata.tsv``: a header with ``file_name`` and ``caption`` and/or
     ``caption_1``, ``caption_2``, ... (the Clotho layout), or ``text`` (Hugging Face AudioFolder's name),
     optionally ``split`` and ``label``.

   A row without a split cell takes its file's top-level folder as the split, as in layout 2
   (``train/a.wav``; Hugging Face AudioFolder's layout with one metadata file at the top). Where the top holds
   none, one in each top-level split folder is read (AudioFolder's per-split layout: ``train/metadata.csv``
   naming ``a.wav`` beside it, the clip ``train/a.wav`` of split ``train``).
   Column and field names are case-insensitive (``File_Name``, ``Caption``), and one given twice is an
   error. The file must be UTF-8 (a BOM is allowed).
2. Side by side: every audio file ``clip.wav`` with ``clip.txt`` next to it, one caption per non-empty line.
   A top-level folder named ``train``, ``val``/``valid``/``validation``/``dev`` or ``test`` sets the split.
   Other metadata-like files at the top (``captions.csv``, ``Metadata.parquet``, ...) are not read; the
   report names them, so a misnamed metadata file does not pass unnoticed.

In the metadata layouts several rows may name the same file: their captions are merged (rows naming it by two
paths, through a link, are a note). An empty caption cell is left out and a caption repeating another of the same clip is kept (Clotho's and AudioCaps' published
scores count every caption); the report names each (`CaptionFolder.caption_notes`). Split names are
normalised (``val``, ``valid``, ``dev`` → ``validation``; ``eval``, ``evaluation`` → ``test``;
``training`` → ``train``); other names (Clotho's ``development``) are kept, lower-cased.

Bad input never stops the scan and is never silently dropped: each problem (missing or empty caption, file
listed but absent, a path that leaves the folder through ``..``, an absolute path or a symlink, unreadable
audio) becomes a `Skip` naming the file (and the metadata line) and the cause, and
`CaptionFolder.report()` summarises them. Nothing outside the folder is read: paths are checked after
resolving symlinks, before anything is opened, and a symlinked sub-folder leading out of the folder is not
entered (a `Skip` names it). Those inside it are entered, each real folder once (a second way to one is a
note); a clip reached a second way (a link to a clip of the folder) is one clip, the other path a `Skip`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from audiotrain._file_names import local_name
from audiotrain._files import UTF16_TEXT, is_utf16, not_utf8_text, parse_json
from audiotrain._text import listed, lone_surrogate, plural, without_control_characters
from audiotrain.data import Dataset
from audiotrain.datasets._folders import hidden_note, is_hidden, nfc, walk_visible_following_links
from audiotrain.datasets._text import csv_error_text, csv_rows, read_utf8_text
from audiotrain.datasets.caption_demo import is_demo_record

import numpy as np

# Audio the loader reads, plus common containers it cannot (those are reported as skips, not ignored).
AUDIO_EXTENSIONS = (
    ".wav",
    ".wave",
    ".flac",
    ".ogg",
    ".oga",
    ".mp3",
    ".aif",
    ".aiff",
    ".opus",
    ".m4a",
    ".aac",
    ".wma",
)
METADATA_FILES = ("metadata.jsonl", "metadata.json", "metadata.csv", "metadata.tsv")
# Top-level files with these suffixes look like caption metadata: when they are not read, the report says so.
METADATA_LIKE_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".parquet", ".xlsx", ".xls", ".ods")
CSV_DELIMITERS = (",", ";", "\t")
UNLISTED_SHOWN = 5  # audio files not named in the metadata that the report lists by name
#: Shortest clip kept, in seconds (ten hops of CLAP's front end): the front end repeats a shorter clip to fill
#: its window (10 s), so a 1-sample or 5 ms file would train as seconds of DC or buzz against its caption.
MIN_CLIP_SECONDS = 0.1
#: A clip longer than this many crops is read in part (`audiotrain.audio.load_span`, to float32 rounding the
#: same samples) rather than decoded and resampled whole each time a crop of it is drawn: an hour-long clip
#: cost 14 times the memory of a folder of short ones, every epoch. Shorter clips are read whole, as before.
SPAN_READ_CROPS = 4
_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "validation",
    "valid": "validation",
    "validation": "validation",
    "dev": "validation",
    "test": "test",
    "eval": "test",
    "evaluation": "test",
}
_CAPTION_COLUMN = re.compile(r"^caption(_\d+)?$")
TEXT_COLUMN = "text"  # Hugging Face AudioFolder's caption column, used when there is no caption column


class CaptionFolderError(ValueError):
    """The folder as a whole cannot be used (no such folder, unusable metadata header, no clips)."""


@dataclass(frozen=True)
class CaptionedClip:
    """One audio file and its captions.

    Attributes
    ----------
    path : Path
        Absolute, symlink-resolved path, inside the folder.
    name : str
        Path relative to the folder, with ``/`` separators (as written in metadata).
    captions : tuple of str
        One or more non-empty captions, stripped of surrounding whitespace.
    split : str or None
        Normalised split name, or None when the folder does not say.
    label : str or None
        Optional class name (metadata ``label``, stripped of surrounding whitespace; blank: None), for
        zero-shot classification.
    num_samples : int or None
        Length after resampling, filled in by `CaptionFolder.check_audio`.
    listed_at : str or None
        The metadata line that names the clip (``"metadata.csv:5"``; its first, when several do), for
        messages; None in the side-by-side layout.
    """

    path: Path
    name: str
    captions: tuple[str, ...]
    split: str | None = None
    label: str | None = None
    num_samples: int | None = None
    listed_at: str | None = None

    @property
    def where(self) -> str:
        """How a message names the clip: ``"metadata.csv:5 (a.wav)"``, or its name."""
        return f"{self.listed_at} ({self.name})" if self.listed_at else self.name


@dataclass(frozen=True)
class Skip:
    """Something in the folder that was left out, and why."""

    file: str  # relative path, or "metadata.csv:12" for a metadata line ("metadata.csv:12 (a.wav)")
    reason: str
    #: The audio file a skipped metadata row names, as written: listed, so not "not named in the metadata".
    names: str | None = None

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


@dataclass(frozen=True)
class CaptionNote:
    """A caption cell of a kept clip that was left out (empty) or kept though it repeats another caption of the
    same clip, so the report's caption count adds up."""

    clip: str  # `CaptionedClip.name`
    text: str  # "metadata.csv:3 (c1.wav): caption_3, caption_4 empty (left out)"
    kind: str  # "empty" or "repeat"
    count: int = 1  # captions it stands for


@dataclass
class CaptionFolder:
    """The usable clips of a folder and everything that was skipped.

    Build it with `scan_caption_folder`.
    """

    root: Path
    layout: str
    clips: list[CaptionedClip]
    skipped: list[Skip] = field(default_factory=list)
    unlisted_audio: list[str] = field(default_factory=list)  # audio not named in the metadata (not an error)
    notes: list[str] = field(default_factory=list)  # e.g. metadata-like files that were not read
    caption_notes: list[CaptionNote] = field(default_factory=list)  # empty caption cells, repeated captions

    @property
    def splits(self) -> list[str]:
        """Split names present, sorted (empty when the folder has no split information)."""
        return sorted({c.split for c in self.clips if c.split is not None})

    def split(self, name: str) -> list[CaptionedClip]:
        """The clips of one split (``val``/``dev`` etc. are accepted for ``validation``)."""
        key = normalise_split(name)
        if key not in self.splits:
            raise CaptionFolderError(
                f"{self.root}: no clips in split {name!r}; splits present: {self.splits or 'none'}"
            )
        return [c for c in self.clips if c.split == key]

    def check_audio(self, sampling_rate: int, load: Callable | None = None) -> None:
        """Decode every clip once at `sampling_rate` (mono) and move unreadable, empty or too short
        (`MIN_CLIP_SECONDS`) ones to `skipped`.

        Finding a broken file here costs one decode per clip at start-up; finding it mid-training would
        cost the run. The clips are decoded at their own rate, a block at a time
        (`audiotrain.audio.decoded_length`; whole, with a `load` of your own); their lengths at
        `sampling_rate` (what `audiotrain.audio.resample` makes of them) are kept in
        `CaptionedClip.num_samples`.
        """
        from audiotrain.audio import AudioError, decoded_length

        def measure(path: Path) -> tuple[int, int]:
            if load is None:
                return decoded_length(path)
            wave, rate = load(path, sr=None, mono=True)
            return wave.shape[-1], rate

        kept = []
        for clip in self.clips:
            try:
                frames, file_sr = measure(clip.path)
            except (AudioError, OSError, ValueError, RuntimeError) as error:
                self.skipped.append(_unreadable(clip, error))
                continue
            if frames == 0:
                self.skipped.append(Skip(clip.where, "audio has no samples"))
                continue
            if frames < MIN_CLIP_SECONDS * file_sr:
                self.skipped.append(_too_short(clip, frames / file_sr))
                continue
            num_samples = math.ceil(frames * sampling_rate / file_sr)  # `resample`'s length rule
            kept.append(replace(clip, num_samples=num_samples))
        self.clips = kept

    def check_headers(self) -> None:
        """Read every clip's header (no decoding) and move the ones `check_audio` would find unreadable or too
        short to `skipped`; what only decoding finds (NaN samples, data cut short inside) is left to it."""
        from audiotrain.audio import AudioError, get_duration

        kept = []
        for clip in self.clips:
            try:
                seconds = get_duration(clip.path)
            except AudioError as error:
                self.skipped.append(_unreadable(clip, error))
                continue
            if seconds < MIN_CLIP_SECONDS:
                self.skipped.append(_too_short(clip, seconds))
                continue
            kept.append(clip)
        self.clips = kept

    def report(self, max_listed: int | None = 20, listed_in: str = "") -> str:
        """A human-readable summary: clips kept, skips counted by cause and the first ``max_listed`` listed
        (None: every one). `listed_in` names where the full list is (``"RUN/data_report.txt"``), for the line
        that counts the skips left out."""
        lines = [
            f"{self.root} ({self.layout}): {plural(len(self.clips), 'clip')}, "
            f"{plural(sum(len(c.captions) for c in self.clips), 'caption')}"
        ]
        if self.splits:
            counts = Counter(c.split for c in self.clips)
            lines.append("  splits: " + ", ".join(f"{s}={counts[s]}" for s in self.splits))
        if self.unlisted_audio:
            shown = len(self.unlisted_audio) if max_listed is None else UNLISTED_SHOWN
            lines.append(
                f"  {plural(len(self.unlisted_audio), 'audio file')} in the folder "
                f"{'is' if len(self.unlisted_audio) == 1 else 'are'} not named in the metadata "
                f"(ignored): {listed(self.unlisted_audio, shown)}"
            )
        lines.extend(f"  note: {note}" for note in self.notes)
        kept = {c.name for c in self.clips}
        caption_notes = [n for n in self.caption_notes if n.clip in kept]  # not those of skipped clips
        if caption_notes:
            empty = sum(n.count for n in caption_notes if n.kind == "empty")
            repeats = sum(n.count for n in caption_notes if n.kind == "repeat")
            parts = [f"{empty} empty left out"] if empty else []
            if repeats:
                parts.append(
                    f"{repeats} repeating another caption of the same clip kept (every caption counts, as in "
                    "Clotho's and AudioCaps' evaluation)"
                )
            lines.append(f"  captions: {', '.join(parts)}")
            shown = caption_notes if max_listed is None else caption_notes[:max_listed]
            lines.extend(f"    {note.text}" for note in shown)
            if len(caption_notes) > len(shown):
                where = f" (every one is listed in {listed_in})" if listed_in else ""
                lines.append(f"    ... and {len(caption_notes) - len(shown)} more{where}")
        if self.skipped:
            causes = Counter(_cause(s.reason) for s in self.skipped)
            lines.append(
                f"  skipped {len(self.skipped)}: "
                + ", ".join(f"{n} {cause}" for cause, n in causes.most_common())
            )
            shown = self.skipped if max_listed is None else self.skipped[:max_listed]
            lines.extend(f"    {skip}" for skip in shown)
            if len(self.skipped) > len(shown):
                where = f" (every one is listed in {listed_in})" if listed_in else ""
                lines.append(f"    ... and {len(self.skipped) - len(shown)} more{where}")
        return without_control_characters("\n".join(lines))  # (file names may hold ESC, BEL, ...)


def _unreadable(clip: CaptionedClip, error: Exception) -> Skip:
    from audiotrain.audio import CAUSES, AudioError

    if not isinstance(error, AudioError):
        return Skip(clip.where, f"unreadable audio ({error})")
    detail = f": {error.detail}" if error.detail else ""  # (its message starts with the path: named already)
    return Skip(clip.where, f"unreadable audio ({CAUSES[error.cause]}{detail})")


def _too_short(clip: CaptionedClip, seconds: float) -> Skip:
    return Skip(
        clip.where, f"too short ({seconds * 1000:.3g} ms; a clip needs at least {MIN_CLIP_SECONDS:g} s)"
    )


def _cause(reason: str) -> str:
    # (the text after a ';' names this file's look-alikes: grouping by it gave every absent file its own
    # group)
    return reason.split(" (")[0].split(":")[0].split(";")[0]


def normalise_split(name: str) -> str:
    """``"Val"`` → ``"validation"``, ``"TRAIN"`` → ``"train"``; unknown names are lower-cased and kept."""
    key = str(name).strip().lower()
    return _SPLIT_ALIASES.get(key, key)


def _folder_split(name: str) -> str | None:
    """The split a clip's top-level folder names (``train/a.wav`` → ``"train"``, ``Val/b.wav`` →
    ``"validation"``), or None: the side-by-side layout's split, and a metadata row's without a split cell."""
    parts = PurePosixPath(name).parts
    return _SPLIT_ALIASES.get(parts[0].lower()) if len(parts) > 1 else None


def _audio_load() -> Callable:
    from audiotrain.audio import load

    return load


# ---------------------------------------------------------------------------------------------- paths
def _inside(root: Path, relative: str) -> tuple[Path | None, str | None]:
    """Resolve `relative` under `root`; (path, None) when it stays inside, else (None, why not)."""
    if not relative or not relative.strip():
        return None, "empty file_name"
    if "\x00" in relative:
        return None, "file_name contains a NUL character"
    posix, windows = PurePosixPath(relative), PureWindowsPath(relative)
    if posix.is_absolute() or windows.is_absolute() or windows.drive:
        return None, "absolute path; file_name must be relative to the data folder"
    if ".." in posix.parts or ".." in windows.parts:
        return None, "path escapes the data folder ('..')"
    candidate = root / Path(*map(local_name, windows.parts))  # (UTF-8 text: the locale's spelling)
    resolved = Path(os.path.realpath(candidate))
    if not resolved.is_relative_to(root):
        return None, f"path escapes the data folder (a symlink to {resolved})"
    return resolved, None


def _has_text(caption: str) -> bool:
    """Whether a caption has a visible character: one of only whitespace, zero-width and format characters
    (U+200B, a byte-order mark) or control characters looks empty, and is an empty caption, not one to
    train and score on."""
    return any(not c.isspace() and unicodedata.category(c) not in ("Cc", "Cf") for c in caption)


def _read_caption_file(path: Path, root: Path) -> tuple[list[str] | None, str | None]:
    resolved = Path(os.path.realpath(path))
    if not resolved.is_relative_to(root):
        return None, f"caption file is a symlink out of the data folder (to {resolved})"
    try:
        text = resolved.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        if is_utf16(err.object):
            return None, f"caption file is {UTF16_TEXT}"
        return None, f"caption file, {not_utf8_text(err)}"
    except OSError as error:
        return None, f"caption file unreadable ({error.strerror or error})"
    return [line.strip() for line in text.splitlines()], None


# ---------------------------------------------------------------------------------------------- scan
def scan_caption_folder(
    root: str | Path,
    *,
    sampling_rate: int | None = None,
    audio_extensions: Sequence[str] = AUDIO_EXTENSIONS,
) -> CaptionFolder:
    """Find the captioned clips in `root` (see the module docstring for the layouts).

    Parameters
    ----------
    root : str or Path
        The data folder.
    sampling_rate : int, optional
        When given, every clip is decoded once at this rate (`CaptionFolder.check_audio`) so unreadable
        audio is reported now rather than mid-training.
    audio_extensions : sequence of str
        File suffixes taken as audio in the side-by-side layout (case-insensitive).

    Raises
    ------
    CaptionFolderError
        When the folder does not exist, a metadata header lacks the needed columns, or no usable clip
        remains (the message then lists the skips).
    """
    given = Path(root)
    if not given.is_dir():
        raise CaptionFolderError(f"{given}: not a folder (expected a folder of audio files with captions)")
    root = Path(os.path.realpath(given))
    # A dangling link counts as present: skipping it would read the folder in another layout and blame the
    # missing .txt captions, not the link.
    present = [name for name in METADATA_FILES if (root / name).exists() or (root / name).is_symlink()]
    if len(present) > 1:
        raise CaptionFolderError(
            f"{root}: both {' and '.join(present)} exist; keep one so it is clear which captions to use"
        )
    extensions = tuple(e.lower() for e in audio_extensions)
    files, hidden, not_entered = _visible_files(root)
    # Hugging Face AudioFolder's per-split layout, read where the top holds no metadata file.
    split_metadata = [] if present else _split_metadata(root, files)
    if split_metadata:
        _refuse_split_folders_without_metadata(root, _audio_files(files, extensions), split_metadata)
    if present or split_metadata:
        if present:
            used = present[0]
            rows, skipped = _METADATA_READERS[used](_metadata_path(root / used, root), used)
        else:
            used = ", ".join(p.relative_to(root).as_posix() for p in split_metadata)
            rows, skipped = _read_split_metadata(root, split_metadata)
        folder, listed = _clips_from_rows(root, used, rows, skipped)
        # A file its skipped row names is listed too: the skip says why it is left out.
        listed |= {os.path.normpath(s.names.replace("\\", "/").strip()) for s in skipped if s.names}
        folder.unlisted_audio = sorted(
            p.relative_to(root).as_posix()
            for p in _audio_files(files, extensions)
            if Path(os.path.realpath(p)) not in listed and p.relative_to(root).as_posix() not in listed
        )
    else:
        folder = _scan_side_by_side(root, files, extensions)
    _name_links_not_entered(folder, not_entered)
    _note_hidden(folder, hidden)
    unread = _unread_metadata_like(root, present[0] if present else None)
    if unread and (present or split_metadata):
        folder.notes.append(f"not read: {', '.join(unread)} (the captions come from {used} only)")
    elif unread:
        folder.notes.append(
            f"not read: {', '.join(unread)}. Captions come from .txt files beside the audio because the folder "
            f"has none of {', '.join(METADATA_FILES)}; to use a metadata file, give it one of these names "
            "(columns file_name and caption)"
        )
    nested = [name for name in _nested_metadata(root, files) if root / name not in split_metadata]
    if nested:  # (Hugging Face AudioFolder's per-split layout: train/metadata.csv, test/metadata.csv)
        more = f" and {len(nested) - 5} more" if len(nested) > 5 else ""
        folder.notes.append(
            f"not read: {', '.join(nested[:5])}{more}: only a metadata file at the top of the data folder is "
            "read, or where it has none, those of its split folders (train/, test/: AudioFolder's layout); "
            "for other folders, one file at the top naming train/a.wav, test/b.wav, with a split column"
        )
    if sampling_rate is not None:
        folder.check_audio(sampling_rate)
    if not folder.clips:
        raise CaptionFolderError(f"no usable captioned clips found.\n{folder.report()}")
    return folder


def _metadata_path(meta: Path, root: Path) -> Path:
    """The metadata file `meta` resolved; a link that dangles, loops or leads out of `root` is refused."""
    resolved = Path(os.path.realpath(meta))
    if meta.is_symlink():
        try:
            os.stat(meta)
        except FileNotFoundError:
            raise CaptionFolderError(
                f"{meta}: a symlink to {os.readlink(meta)}, which does not exist"
            ) from None
        except OSError as error:  # a loop of links
            raise CaptionFolderError(
                f"{meta}: a symlink to {os.readlink(meta)}, which cannot be followed ({error.strerror})"
            ) from None
    if not resolved.is_relative_to(root):
        raise CaptionFolderError(
            f"{meta}: is a symlink out of the data folder (to {resolved}); refusing to read it"
        )
    return resolved


def _split_metadata(root: Path, files: list[Path]) -> list[Path]:
    """Metadata files in top-level split folders (``train/metadata.jsonl``, ``test/metadata.csv``): Hugging
    Face AudioFolder's per-split layout. Two in one folder are an error, as two at the top are."""
    found = sorted(
        p
        for p in files
        if p.parent.parent == root and p.name in METADATA_FILES and p.parent.name.lower() in _SPLIT_ALIASES
    )
    for folder in sorted({p.parent for p in found}):
        if len(names := [p.name for p in found if p.parent == folder]) > 1:
            raise CaptionFolderError(
                f"{folder}: both {' and '.join(names)} exist; keep one so it is clear which captions to use"
            )
    return found


def _refuse_split_folders_without_metadata(root: Path, audio: list[Path], metadata: list[Path]) -> None:
    """Refuse a per-split layout where a split folder holding audio has no metadata file: its clips would be
    left out without a word, and a folder of .txt captions beside the audio (read as such before the per-split
    files were) with one stray train/metadata.csv would lose its other splits and their captions."""
    read = {p.parent.name for p in metadata}
    left: dict[str, int] = {}
    for path in audio:
        parts = path.relative_to(root).parts
        if len(parts) > 1 and parts[0].lower() in _SPLIT_ALIASES and parts[0] not in read:
            left[parts[0]] = left.get(parts[0], 0) + 1
    if left:
        folders = ", ".join(f"{name}/ ({plural(n, 'audio file')})" for name, n in sorted(left.items()))
        used = ", ".join(p.relative_to(root).as_posix() for p in metadata)
        gives = "gives its split folder's captions" if len(metadata) == 1 else "give their folders' captions"
        has = "has" if len(left) == 1 else "have"
        raise CaptionFolderError(
            f"{root}: {used} {gives} (Hugging Face AudioFolder's layout), but {folders} {has} no "
            "metadata file: add one there (file_name naming the files beside it, and caption), or, for the "
            f".txt captions beside the audio, move {used} out of the data folder"
        )


def _read_split_metadata(root: Path, metadata: list[Path]) -> tuple[list[_Row], list[Skip]]:
    """The rows of every per-split metadata file, each file_name made a path from `root` (AudioFolder's
    names are relative to the metadata file's folder); the rows' split is that folder's unless a cell says."""
    rows, skipped = [], []
    for meta in metadata:
        folder = meta.parent.name

        def from_root(name: str, folder: str = folder) -> str:  # (bound: the loop goes on)
            bare = name.strip()
            absolute = PurePosixPath(bare).is_absolute() or PureWindowsPath(bare).is_absolute()
            return name if absolute or not name.strip() else f"{folder}/{name.strip()}"

        label = f"{folder}/{meta.name}"
        read, left = _METADATA_READERS[meta.name](_metadata_path(meta, root), label)
        rows += [replace(row, file_name=from_root(row.file_name)) for row in read]
        skipped += [replace(skip, names=from_root(skip.names)) if skip.names else skip for skip in left]
    return rows, skipped


def _nested_metadata(root: Path, files: list[Path]) -> list[str]:
    """Metadata files (`METADATA_FILES` names) below the top level of `root`, which the scan does not read."""
    return sorted(
        p.relative_to(root).as_posix() for p in files if p.parent != root and p.name in METADATA_FILES
    )


def _visible_files(root: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """(the files under `root` the scan reads, in folder order; the hidden files and folders; the symlinked
    folders it did not enter).

    Hidden files and folders are left out (and returned, for the report to count). Symlinked sub-folders
    are entered, each real folder once, as the chord recipe's scan enters them; one leading out of the folder
    is not (nothing outside it is read), nor one whose real folder was read already (a second way to it, a
    link back up the tree)."""
    entries, hidden, not_entered = walk_visible_following_links(root, only_within=True)
    files = [path for path in entries if not path.is_dir()]  # (a broken link is listed: a caller names it)
    # Root's files first, then each folder's, depth first (os.walk's order, which the clip order followed).
    return sorted(files, key=lambda path: (path.parent.parts, path.name)), hidden, not_entered


def _note_hidden(folder: CaptionFolder, hidden: list[Path]) -> None:
    """Count the hidden files and folders the scan left out in one note, as the chord recipe's scan does: a
    clip named `.intro.wav` (or `._c1.wav`, `.DS_Store`) was passed over without a word. Those a clip was
    read from after all (a metadata row naming `.intro.wav`, a link to a hidden folder) are not counted."""
    used = [clip.path for clip in folder.clips]
    ignored = []
    for path in hidden:
        real = Path(os.path.realpath(path))
        if not any(clip == real or clip.is_relative_to(real) for clip in used):
            ignored.append(path)
    note = hidden_note(ignored, folder.root)
    if note:
        folder.notes.append(note)


def _name_links_not_entered(folder: CaptionFolder, not_entered: list[Path]) -> None:
    """A symlinked folder leading out of the data folder is a skip, as a linked file leading out is; one
    whose real folder was read under another name is a note."""
    again = []
    for link in not_entered:
        name, target = link.relative_to(folder.root).as_posix(), os.path.realpath(link)
        if Path(target).is_relative_to(folder.root):
            again.append(f"{name} -> {target}")
        else:
            why = f"folder is a symlink out of the data folder (to {target}): not entered, its clips not read"
            folder.skipped.append(Skip(f"{name}/", f"{why}; copy them in (cp -rL) to use them"))
    if again:
        folder.notes.append(
            f"{plural(len(again), 'folder')} reached through a symlink not entered: its real folder was read "
            f"already (a link to a folder above, or a second link to one folder): {', '.join(again)}"
        )


def _unread_metadata_like(root: Path, used: str | None) -> list[str]:
    """Top-level files that look like caption metadata (by suffix) other than the one read, and other than a
    demo set's own record of how it was made (every demo run noted its ``demo.json`` as not read)."""
    return sorted(
        p.name
        for p in root.iterdir()
        if p.name != used
        and not is_hidden(p.name)
        and p.suffix.lower() in METADATA_LIKE_SUFFIXES
        and p.is_file()
        and not is_demo_record(p)
    )


def _audio_files(files: list[Path], extensions: tuple[str, ...]) -> list[Path]:
    return [path for path in files if path.suffix.lower() in extensions]


def _scan_side_by_side(root: Path, files: list[Path], extensions: tuple[str, ...]) -> CaptionFolder:
    clips, skipped = [], []
    listed: dict[str, Path] = {nfc(str(p)): p for p in files}
    listed_folded: dict[str, list[Path]] = {}
    for key, p in listed.items():
        listed_folded.setdefault(key.casefold(), []).append(p)
    by_stem: dict[Path, list[Path]] = {}
    for path in _audio_files(files, extensions):
        by_stem.setdefault(path.with_suffix(""), []).append(path)
    for stem, paths in by_stem.items():
        rel = [p.relative_to(root).as_posix() for p in paths]
        if len(paths) > 1:
            for r in rel:
                skipped.append(Skip(r, f"ambiguous: {', '.join(rel)} would share {stem.name}.txt"))
            continue
        path, name = paths[0], rel[0]
        resolved = Path(os.path.realpath(path))
        if not resolved.is_relative_to(root):
            skipped.append(Skip(name, f"path escapes the data folder (a symlink to {resolved})"))
            continue
        # Found among the names listed, in any Unicode form (macOS writes names as NFD), not by asking the
        # file system: a case-insensitive one (macOS, Windows, exFAT) opened rain.txt for Rain.wav, and the
        # same folder paired otherwise on Linux, while rain.txt was also reported as a caption without audio.
        caption_path = listed.get(nfc(str(stem.with_suffix(".txt"))))
        if caption_path is None:
            wanted = stem.with_suffix(".txt").name
            other_case = [
                p.name for p in listed_folded.get(nfc(str(stem.with_suffix(".txt"))).casefold(), [])
            ]
            hint = f"; {', '.join(other_case)} differs in letter case only: rename it" if other_case else ""
            skipped.append(Skip(name, f"missing caption (no {wanted} next to it{hint})"))
            continue
        lines, error = _read_caption_file(caption_path, root)
        if error:
            skipped.append(Skip(caption_path.relative_to(root).as_posix(), error))
            continue
        captions = tuple(line for line in lines if _has_text(line))
        if not captions:
            skipped.append(Skip(name, f"empty caption ({caption_path.name} has no text)"))
            continue
        clips.append(CaptionedClip(path=resolved, name=name, captions=captions, split=_folder_split(name)))
    clips = _one_clip_per_file(root, clips, skipped)
    # Caption files without audio are reported: usually a typo in a file name or a missing download.
    stems = {nfc(str(stem)) for stem in by_stem}
    stems_folded: dict[str, list[str]] = {}
    for stem, paths in by_stem.items():
        stems_folded.setdefault(nfc(str(stem)).casefold(), []).extend(path.name for path in paths)
    for p in files:
        if p.name.endswith(".txt") and nfc(str(p.with_suffix(""))) not in stems:
            why = "caption file without a matching audio file"
            if audio := stems_folded.get(nfc(str(p.with_suffix(""))).casefold()):
                why += f" ({', '.join(audio)} differs in letter case only)"
            skipped.append(Skip(p.relative_to(root).as_posix(), why))
    return CaptionFolder(root=root, layout="side-by-side (clip.wav + clip.txt)", clips=clips, skipped=skipped)


def _one_clip_per_file(root: Path, clips: list[CaptionedClip], skipped: list[Skip]) -> list[CaptionedClip]:
    """`clips` with one clip per real file: a link to a clip of the folder (``c1_again.wav -> c1.wav``), or a
    linked file a linked folder holds too, is the same recording, which must not be trained on and held out
    to score at once. The clip kept is one that is not a link itself, else the first; the others are
    skipped, naming it (the metadata layouts merge the rows of one file into one clip)."""
    by_file: dict[Path, list[CaptionedClip]] = {}
    for clip in clips:
        by_file.setdefault(clip.path, []).append(clip)
    second_ways = set()
    for same in by_file.values():
        used = min(same, key=lambda clip: (root / clip.name).is_symlink())  # (the first of those alike)
        for clip in same:
            if clip is not used:
                second_ways.add(clip.name)
                why = f"reached through a symlink, not used: the same file as {used.name}, a clip already"
                skipped.append(Skip(clip.name, why))
    return [clip for clip in clips if clip.name not in second_ways]


@dataclass
class _Row:
    where: str  # "metadata.csv:3"
    file_name: str
    captions: list[str]
    split: str | None
    label: str | None
    caption_names: list[str]  # where each caption is in the row, for messages: "caption_2", "captions[1]"
    # Header columns that look like captions but are not read (`caption5`, `captions_2`), for the report.
    unread_columns: tuple[str, ...] = ()
    # Columns under another dataset's names for the class or fold (ESC-50's `category`, `fold`), not read.
    unread_meaning: tuple[str, ...] = ()


def _column(name: str) -> str:
    """Header and field names match case-insensitively: ``File_Name``, ``file name`` → ``file_name``."""
    return re.sub(r"[\s-]+", "_", str(name).strip().lower())


class _JsonFields(dict):
    """A JSON object that keeps its field names as written, repeats included (json's dict keeps the last)."""

    def __init__(self, pairs: list[tuple[str, Any]]):
        super().__init__(pairs)
        self.names_as_written = [name for name, _ in pairs]


def _row_from_object(obj: object, where: str, source: str) -> _Row | Skip:
    """A metadata row from one JSON object (a line of metadata.jsonl or an item of metadata.json); `source`
    names it with the file's full path in an error. A caption is ``caption``, ``caption_1``, ``caption_2``,
    ... (as in a CSV header), else ``captions`` or ``text``, each a string or a list of strings."""
    if not isinstance(obj, dict):
        return Skip(where, f"expected a JSON object, got {type(obj).__name__}")
    written = list(getattr(obj, "names_as_written", obj))
    names = [_column(k) for k in written]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:  # one of them would be dropped unsaid: refused as a CSV header repeating a column is
        raise CaptionFolderError(
            f"{source}: fields {repeated} appear more than once (names are case-insensitive); "
            f"found fields {written}"
        )
    obj = {_column(k): v for k, v in obj.items()}
    if "file_name" not in obj:
        return Skip(where, f"no 'file_name' field (fields: {sorted(obj)})")
    if not isinstance(obj["file_name"], str):  # str() of null or 7 would be looked up as a file "None" or "7"
        got = json.dumps(obj["file_name"], ensure_ascii=False)
        return Skip(where, f"file_name must be a string (a path relative to the data folder), got {got}")
    named_where = f"{where} ({obj['file_name']})"
    keys = sorted((k for k in obj if _CAPTION_COLUMN.match(k)), key=_caption_column_order)
    keys = keys or [k for k in ("captions", TEXT_COLUMN) if k in obj][:1]
    if not keys:
        return Skip(named_where, "missing caption (no 'caption' field)", obj["file_name"])
    if all(obj[k] is None for k in keys):
        return Skip(
            named_where,
            f"missing caption ({keys[0]} is null; expected a string or a list of strings)",
            obj["file_name"],
        )
    captions, caption_names = [], []
    for key in keys:
        # A null beside other captions is an empty cell, as in a CSV row: left out, and the report notes it.
        value = "" if obj[key] is None else obj[key]
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(c, str) for c in values):
            # (which item, and what it held: a list's number or a dict of languages was not named)
            bad = next(i for i, c in enumerate(values) if not isinstance(c, str))
            got = json.dumps(values[bad], ensure_ascii=False)[:80]
            what = f"{key}[{bad}] is {got}" if isinstance(value, list) else f"got {got}"
            return Skip(
                named_where, f"{key} must be a string or a list of strings ({what})", obj["file_name"]
            )
        for i, text in enumerate(values):  # (the tokenizer failed on it mid-run with a raw TypeError)
            if (surrogate := lone_surrogate(text)) is not None:
                field_name = f"{key}[{i}]" if isinstance(value, list) else key
                return Skip(named_where, f"{field_name} holds {surrogate}", obj["file_name"])
        captions += values
        caption_names += [f"{key}[{i}]" for i in range(len(values))] if isinstance(value, list) else [key]
    split, lab = obj.get("split"), obj.get("label")
    for key, value, what in (("label", lab, "a class name"), ("split", split, "a split name")):
        # str() of a list or an object was a class (or split) named "['dog', 'bark']"; a number stays one,
        # as a CSV cell holds it; true would be "True".
        if isinstance(value, (list, dict, bool)):
            got = json.dumps(value, ensure_ascii=False)[:80]
            return Skip(named_where, f"{key} must be a string ({what}), got {got}", obj["file_name"])
    return _Row(
        where,
        obj["file_name"],
        captions,
        None if split in (None, "") else str(split),
        # Stripped as a CSV cell is: "dog " beside "dog" is one class, not two with one prompt.
        None if lab is None else (str(lab).strip() or None),
        caption_names,
    )


def _collect(items) -> tuple[list[_Row], list[Skip]]:
    rows, skipped = [], []
    for item in items:
        (rows if isinstance(item, _Row) else skipped).append(item)
    return rows, skipped


class _BadLine(ValueError):
    """JSON metadata that `parse_json` refused (a skip in JSON Lines, a `CaptionFolderError` otherwise)."""


def _read_jsonl(path: Path, label: str) -> tuple[list[_Row], list[Skip]]:
    items = []
    # Split on newlines only: str.splitlines would also split inside strings holding U+2028 and the like.
    for lineno, line in enumerate(read_utf8_text(path, CaptionFolderError).split("\n"), start=1):
        where = f"{label}:{lineno}"
        if not line.strip():
            continue
        try:
            obj = parse_json(line, where, _BadLine, pairs_hook=_JsonFields)
        except _BadLine as error:  # (a syntax error, nesting too deep, a number of 4300 digits and more)
            items.append(Skip(where, str(error).removeprefix(f"{where}: ").replace(" at line 1:", ":", 1)))
            continue
        items.append(_row_from_object(obj, where, f"{path}:{lineno}"))
    return _collect(items)


def _read_json(path: Path, label: str) -> tuple[list[_Row], list[Skip]]:
    expected = 'a JSON array of objects: [{"file_name": "a.wav", "caption": "..."}, ...]'
    try:
        data = parse_json(read_utf8_text(path, CaptionFolderError), path, _BadLine, pairs_hook=_JsonFields)
    except _BadLine as error:
        hint = ""
        if str(error).endswith(": Extra data"):
            hint = "; one object per line is JSON Lines: name the file metadata.jsonl"
        raise CaptionFolderError(f"{error}; expected {expected}{hint}") from None
    if not isinstance(data, list):
        kind = "dict" if isinstance(data, dict) else type(data).__name__  # (not _JsonFields)
        raise CaptionFolderError(f"{path}: expected {expected}; got a JSON {kind}")
    return _collect(
        _row_from_object(obj, f"{label} item {i}", f"{path} item {i}") for i, obj in enumerate(data, start=1)
    )


def _delimiter(header_line: str, preferred: str, path: Path) -> str:
    """The delimiter (among `CSV_DELIMITERS`, `preferred` first) that makes the header hold ``file_name``."""
    for delimiter in (preferred, *(d for d in CSV_DELIMITERS if d != preferred)):
        try:
            names = next(csv.reader([header_line], delimiter=delimiter), [])
        except csv.Error as error:  # (a header over csv.field_size_limit(), 128 KB)
            raise CaptionFolderError(f"{path}:1: {csv_error_text(str(error))}") from None
        if "file_name" in (_column(n) for n in names):
            return delimiter
    return preferred


def _read_csv(path: Path, label: str, preferred: str = ",") -> tuple[list[_Row], list[Skip]]:
    rows, skipped = [], []
    # Universal newlines, as open() reads text: Excel for Mac's "CSV (Macintosh)" and older Mac tools end
    # lines with a lone CR, and a CRLF file's line breaks inside quoted captions read as the LF ones do.
    text = read_utf8_text(path, CaptionFolderError).replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise CaptionFolderError(
            f"{path}: the file is empty; expected a header line with file_name and caption (or caption_1, "
            "caption_2, ..., or text), then a row per clip"
        )
    delimiter = _delimiter(text.split("\n", 1)[0], preferred, path)
    # strict: a stray quote is an error, and so is the end of the file inside a quoted cell (which the default
    # reader takes as the rest of the file, every later row swallowed into one caption).
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    as_written = list(reader.fieldnames or [])
    header = [_column(h) for h in as_written]
    reader.fieldnames = header
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        repeated = [name for name, h in zip(as_written, header) if h in duplicates]
        raise CaptionFolderError(
            f"{path}: line 1: columns {repeated} name the same column (names are case-insensitive); "
            f"found columns {as_written}"
        )
    caption_columns = sorted((h for h in header if _CAPTION_COLUMN.match(h)), key=_caption_column_order)
    if not caption_columns and TEXT_COLUMN in header:
        caption_columns = [TEXT_COLUMN]
    if "file_name" not in header or not caption_columns:
        how = {",": "comma", ";": "semicolon", "\t": "tab"}[delimiter] + "-separated"
        if "file_name" not in header:
            how += "; no delimiter among comma, semicolon and tab gives a 'file_name' column"
        if "file_name" not in header and "youtube_id" in header:
            how += (
                "; AudioCaps' CSV names no audio file: add a file_name column naming each clip's file "
                "from the data folder, e.g. train/<youtube_id>.wav"
            )
        named_file = [n for n, h in zip(as_written, header) if h in FILE_LIKE_COLUMNS]
        if "file_name" not in header and named_file:
            # ESC-50's meta CSV names its clips in `filename`: "found columns" alone left the user guessing
            how += f"; rename {named_file[0]!r} to file_name (the path from the data folder: audio/x.wav)"
        classes = [n for n, h in zip(as_written, header) if h == "label" or h in CLASS_LIKE_COLUMNS]
        if not caption_columns and classes:
            # a classification folder (ESC-50, UrbanSound8K) has classes but no captions, which evaluate
            # and training read even for zero-shot scores: say how to make them from the classes
            how += (
                f"; {classes[0]!r} holds classes, not captions: for zero-shot scores add a caption column, "
                "e.g. each clip's class prompt (This is a sound of dog barking.), and keep the class in a "
                "label column"
            )
        raise CaptionFolderError(
            f"{path}: line 1: the header needs 'file_name' and 'caption' (or caption_1, caption_2, ..., or "
            f"text); found columns {header} ({how})"
        )
    extensions = tuple(e.lower() for e in AUDIO_EXTENSIONS)
    # A misspelt caption column would otherwise lose its captions without a word (and change every score).
    unread = tuple(
        name
        for name, h in zip(as_written, header)
        if h not in caption_columns and ("caption" in h or h == TEXT_COLUMN)
    )

    meaning = _unread_meaning(as_written, header)

    def unreadable(line: int, problem: str) -> CaptionFolderError:
        return CaptionFolderError(f"{path}:{line}: {problem}")

    for first_line, record in csv_rows(reader, unreadable):
        where = f"{label}:{first_line}"
        if reader.line_num > first_line:
            _check_row_span(record, path, first_line, reader.line_num, delimiter, extensions)
        if None in record:  # more cells than header columns
            # (the cause first: the report's count line groups skips by the text before a ':')
            cells = (
                f"more cells than columns: {len(header) + len(record[None])} cells but {len(header)} columns"
            )
            named = record.get("file_name") or None
            if named:  # (the usual cause: a caption with a comma, unquoted)
                cells += f"; a cell holding the delimiter {delimiter!r} must be in double quotes"
            skipped.append(Skip(f"{where} ({named})" if named else where, cells, named))
            continue
        file_name = record.get("file_name") or ""  # as written: `_clips_from_rows` strips it only if need be
        captions = [record.get(c) or "" for c in caption_columns]
        split = (record.get("split") or "").strip() or None
        lab = (record.get("label") or "").strip() or None
        rows.append(_Row(where, file_name, captions, split, lab, caption_columns, unread, meaning))
    return rows, skipped


#: Header names other datasets give the zero-shot class (ESC-50's `category`, UrbanSound8K's `class`) and the
#: split (their official `fold`), which are read only as `label` and `split`.
CLASS_LIKE_COLUMNS = ("category", "class", "class_name", "classname")
#: ... and the clip's file (ESC-50's `filename`, UrbanSound8K's `slice_file_name`), named in the header error.
FILE_LIKE_COLUMNS = (
    "filename",
    "fname",
    "file",
    "filepath",
    "file_path",
    "audio_path",
    "path",
    "slice_file_name",
)
SPLIT_LIKE_COLUMNS = ("fold",)


def _unread_meaning(as_written: list[str], header: list[str]) -> tuple[str, ...]:
    """What the report says of a CSV's class-like or fold-like column, where the header has no `label` or
    `split`: ESC-50's meta CSV turned into metadata.csv kept `category`, and zero-shot was then not scored
    (no clip had a class) without a word."""
    said = []
    for name, h in zip(as_written, header):
        if h in CLASS_LIKE_COLUMNS and "label" not in header:
            said.append(f"{name!r} (the zero-shot class column is named label)")
        elif h in SPLIT_LIKE_COLUMNS and "split" not in header:
            said.append(
                f"{name!r} (splits come from a split column: fold1 ... fold5 there, and cv "
                "--folds_by_split holds each out in turn)"
            )
    return tuple(said)


def _check_row_span(
    record: dict, path: Path, first: int, last: int, delimiter: str, extensions: tuple[str, ...]
) -> None:
    """A row over several lines is a quoted cell holding line breaks: legitimate in a caption, but not when a
    line inside it reads like another row of the file (a quote left open swallowed them), nor in another
    column."""
    for column, cell in record.items():
        if column is None or not isinstance(cell, str) or "\n" not in cell:
            continue
        swallowed = [
            line
            for line in cell.split("\n")[1:]
            if any(
                c.strip().lower().endswith(extensions)
                for c in next(csv.reader([line], delimiter=delimiter), [])
            )
        ]
        if swallowed or not _CAPTION_COLUMN.match(column) and column != TEXT_COLUMN:
            what = f"lines that read like rows ({swallowed[0]!r}...)" if swallowed else "line breaks"
            raise CaptionFolderError(
                f"{path}:{first}: the quoted {column!r} cell runs over lines {first}-{last} and holds "
                f'{what}: a quote left open? Close it (a quote inside a cell is written twice: "")'
            )


def _read_tsv(path: Path, label: str) -> tuple[list[_Row], list[Skip]]:
    return _read_csv(path, label, preferred="\t")


_METADATA_READERS = {
    "metadata.jsonl": _read_jsonl,
    "metadata.json": _read_json,
    "metadata.csv": _read_csv,
    "metadata.tsv": _read_tsv,
}


def _caption_column_order(name: str) -> int:
    return 0 if name == "caption" else int(name.split("_")[1])


def _as_listed(file_name: str) -> str:
    """A metadata row's file_name as a path, for comparing: ``sub\\a.wav``, ``./sub/a.wav`` are ``sub/a.wav``."""
    return os.path.normpath(file_name.replace("\\", "/"))


def _clips_from_rows(
    root: Path, layout: str, rows: list[_Row], skipped: list[Skip]
) -> tuple[CaptionFolder, set]:
    merged: dict[Path, dict] = {}
    caption_notes: list[CaptionNote] = []
    listed: set = {_as_listed(row.file_name) for row in rows}
    on_disk = _NamesOnDisk(root)
    spaced_names: list[str] = []  # rows whose file_name matched only without its surrounding spaces
    second_names: list[str] = []  # rows naming a file another row named otherwise
    for row in rows:
        written = row.file_name
        row, spaces = _file_name_as_found(root, row)
        if spaces == "stripped":
            spaced_names.append(f"{row.where} ({written!r})")
        path, error = _inside(root, row.file_name)
        if error:
            skipped.append(Skip(f"{row.where} ({row.file_name})", error))
            continue
        if not path.exists() and (spelled := on_disk.find(path.relative_to(root).as_posix())) is not None:
            path, error = _inside(root, spelled)  # the same name in another Unicode form (NFD from macOS)
            if error:
                skipped.append(Skip(f"{row.where} ({row.file_name})", error))
                continue
        listed.add(path)
        name = path.relative_to(root).as_posix()
        if not path.exists():
            why = "file listed but absent"
            if spaces == "absent":
                why += f" (with or without the spaces around {row.file_name!r} in the metadata)"
            if others := on_disk.in_another_case(name):
                why += f"; the folder has {', '.join(others)}: names are case-sensitive here"
            elif others := on_disk.in_other_folders(name):
                shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
                why += f"; the folder has {shown}: a file_name is the path from the data folder"
            skipped.append(Skip(f"{row.where} ({row.file_name})", why))
            continue
        if not path.is_file():
            skipped.append(Skip(f"{row.where} ({row.file_name})", "not a file"))
            continue
        captions = [(n, c.strip()) for n, c in zip(row.caption_names, row.captions) if _has_text(c)]
        empty = [n for n, c in zip(row.caption_names, row.captions) if not _has_text(c)]
        if not captions:
            skipped.append(Skip(f"{row.where} ({row.file_name})", "empty caption"))
            continue
        # No split cell: the clip's top folder (train/, test/) says, as Hugging Face AudioFolder reads it.
        split = normalise_split(row.split) if row.split else _folder_split(name)
        entry = merged.setdefault(
            path,
            {
                "name": name,
                "captions": [],
                "first": {},
                "split": split,
                "label": row.label,
                "where": row.where,
                "written": row.file_name,
            },
        )
        if entry["split"] != split:
            skipped.append(
                Skip(
                    f"{row.where} ({row.file_name})",
                    f"conflicting split {split!r}: {entry['where']} put this file in {entry['split']!r} (row ignored)",
                )
            )
            continue
        if entry["label"] != row.label:
            skipped.append(
                Skip(
                    f"{row.where} ({row.file_name})",
                    f"conflicting label {row.label!r}: {entry['where']} says {entry['label']!r} (row ignored)",
                )
            )
            continue
        if nfc(_as_listed(row.file_name)) != nfc(_as_listed(entry["written"])):  # (a link, most likely)
            second_names.append(f"{row.where} ({row.file_name}) = {entry['where']} ({entry['written']})")
        # Every caption cell counts, a repeated one too: Clotho's and AudioCaps' published scores average over
        # all 5 captions of each clip (text→audio ranks each as a query), so dropping one would change them.
        where = f"{row.where} ({row.file_name})"
        if empty:
            text = f"{where}: {', '.join(empty)} empty (left out)"
            caption_notes.append(CaptionNote(name, text, "empty", len(empty)))
        for column, caption in captions:
            if caption not in entry["first"]:
                entry["first"][caption] = (row.where, column)
            else:
                first_row, first_column = entry["first"][caption]
                first = first_column if first_row == row.where else f"{first_row} {first_column}"
                text = f"{where}: {column} repeats {first} ({caption!r}; kept)"
                caption_notes.append(CaptionNote(name, text, "repeat"))
            entry["captions"].append(caption)
    notes = []
    if unread := next((row.unread_columns for row in rows if row.unread_columns), ()):
        row_file = next(row.where for row in rows if row.unread_columns).rsplit(":", 1)[0]
        notes.append(
            f"{row_file} columns not read as captions: {', '.join(unread)} (caption columns are named "
            "caption, caption_1, caption_2, ..., else text; rename a column to use it)"
        )
    if meaning := next((row.unread_meaning for row in rows if row.unread_meaning), ()):
        row_file = next(row.where for row in rows if row.unread_meaning).rsplit(":", 1)[0]
        notes.append(f"{row_file} columns not read: {'; '.join(meaning)}; rename a column to use it")
    if spaced_names:
        notes.append(
            "file_name with spaces around it matched the file without them: " + ", ".join(spaced_names)
        )
    if second_names:
        notes.append(
            "rows naming one file under two names, their captions merged into one clip: "
            + ", ".join(second_names)
        )
    clips = [
        CaptionedClip(
            path=p,
            name=e["name"],
            captions=tuple(e["captions"]),
            split=e["split"],
            label=e["label"],
            listed_at=e["where"],
        )
        for p, e in merged.items()
    ]
    folder = CaptionFolder(
        root=root, layout=layout, clips=clips, skipped=skipped, notes=notes, caption_notes=caption_notes
    )
    return folder, listed


def _file_name_as_found(root: Path, row: _Row) -> tuple[_Row, str]:
    """`row` with the file_name that names a file: as written when a file has that name (a Freesound name may
    begin or end with a space), else stripped of surrounding spaces (a cell padded by hand). The second value
    says which mattered: "" (no surrounding spaces, or the name as written exists), "stripped" (only the
    stripped name exists) or "absent" (neither does)."""
    stripped = row.file_name.strip()
    if stripped == row.file_name or not stripped:
        return row, ""
    exact, error = _inside(root, row.file_name)
    if error is None and exact.exists():
        return row, ""
    found, error = _inside(root, stripped)
    if error is None and found.exists():
        return replace(row, file_name=stripped), "stripped"
    return row, "absent"


class _NamesOnDisk:
    """The folder's paths by their composed Unicode form (NFC), read once when first asked: macOS writes file
    names decomposed (NFD), while a metadata file or a caption file written by a script or on another system
    is composed, so a name that looks the same would otherwise not be found."""

    def __init__(self, root: Path):
        self.root = root
        self._by_name: dict[str, str] | None = None
        self._by_folded: dict[str, list[str]] = {}
        self._by_basename: dict[str, list[str]] = {}

    def find(self, relative: str) -> str | None:
        """The path as spelled on disk (relative, ``/``-separated) of `relative` in any Unicode form."""
        return self._names().get(nfc(relative))

    def in_another_case(self, relative: str) -> list[str]:
        """The paths on disk that differ from `relative` only in letter case (``car.WAV`` for ``car.wav``):
        named in the skip, since a folder written on macOS or Windows, whose file systems ignore case,
        finds them there and not on Linux."""
        if not self._by_folded:
            for spelled in self._names().values():
                self._by_folded.setdefault(nfc(spelled).casefold(), []).append(spelled)
        return sorted(self._by_folded.get(nfc(relative).casefold(), []))

    def in_other_folders(self, relative: str) -> list[str]:
        """The paths on disk with the file name of `relative` in another folder (``water/drip.wav`` for
        ``drip.wav``): metadata written with bare names for a folder sorted into sub-folders found none."""
        if not self._by_basename:
            for spelled in self._names().values():
                self._by_basename.setdefault(nfc(spelled).rsplit("/", 1)[-1], []).append(spelled)
        found = self._by_basename.get(nfc(relative).rsplit("/", 1)[-1], [])
        return sorted(path for path in found if nfc(path) != nfc(relative))

    def _names(self) -> dict[str, str]:
        if self._by_name is None:
            self._by_name = {}
            for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
                for name in dirnames + filenames:
                    spelled = (Path(dirpath) / name).relative_to(self.root).as_posix()
                    self._by_name.setdefault(nfc(spelled), spelled)
        return self._by_name


def holdout_split(
    clips: Sequence[CaptionedClip], fraction: float, seed: int = 0
) -> tuple[list[CaptionedClip], list[CaptionedClip]]:
    """Deterministic (train, held-out) split for folders without split information.

    The held-out part is ``round(fraction * n)`` clips (at least 1 and leaving at least 1 for training when
    there are 2 or more clips), chosen by a permutation seeded with `seed` over the clips sorted by name, so
    the same folder and seed always give the same split.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the held-out fraction must be between 0 and 1, got {fraction}")
    ordered = sorted(clips, key=lambda c: c.name)
    n = len(ordered)
    if n < 2:
        raise CaptionFolderError(f"need at least 2 clips to hold some out for evaluation, got {n}")
    n_eval = min(max(1, round(fraction * n)), n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    held = set(perm[:n_eval].tolist())
    return [c for i, c in enumerate(ordered) if i not in held], [
        c for i, c in enumerate(ordered) if i in held
    ]


# ---------------------------------------------------------------------------------------------- dataset
Tokenize = Callable[[list[str]], dict[str, np.ndarray]]


class CaptionDataset(Dataset):
    """Waveform crops and tokenized captions of a list of clips, for the `DataLoader`.

    Each item is a dict of numpy arrays:

    - ``waveform``: float32 [n], mono at `sampling_rate`, n ≤ `crop_samples` (shorter clips are returned
      whole; the CLAP front end pads them).
    - ``input_ids``, ``attention_mask``: int32 [max_length], one caption.
    - ``index``: int64 scalar, the clip's position in `clips`.
    - ``seed``: uint64 [4], (seed, epoch, index, 0): the front end draws its own random choices from it, so
      a batch is reproducible whichever worker builds it.
    - ``longer``: bool scalar, whether the clip was longer than `crop_samples` (cut here): the front end
      sees only the crop, so it cannot flag the clip itself (`with_cropped_flags` adds it to ``is_longer``).

    In training (``train=True``) the crop start and the caption are drawn from
    ``np.random.default_rng((seed, epoch, index))``: different every epoch, identical on a rerun or resume.
    In evaluation the crop is the centre of the clip and the caption is the first one. A clip whose length
    `CaptionFolder.check_audio` measured and that is longer than `SPAN_READ_CROPS` crops is read in part,
    only its crop (with the default loader, without ``cache_audio``).

    Parameters
    ----------
    clips : sequence of CaptionedClip
    tokenize : callable
        ``tokenize(list_of_captions) -> {"input_ids": int [n, L], "attention_mask": int [n, L]}``, padded to
        a fixed L. All captions are tokenized once, here.
    sampling_rate : int
        Rate the audio is resampled to (the checkpoint's front end rate).
    crop_samples : int or None
        Longest waveform returned; None returns whole clips (the fusion front end picks its own chunks).
    train : bool
    seed : int
    load : callable, optional
        ``load(path, sr=, mono=) -> (waveform, sr)`` like `audiotrain.audio.load` (the default).
    cache_audio : bool
        Keep decoded waveforms in memory (for small folders; costs 4 bytes per sample).
    """

    def __init__(
        self,
        clips: Sequence[CaptionedClip],
        tokenize: Tokenize,
        *,
        sampling_rate: int,
        crop_samples: int | None,
        train: bool,
        seed: int = 0,
        load: Callable | None = None,
        cache_audio: bool = False,
    ):
        if not clips:
            raise CaptionFolderError("CaptionDataset needs at least one clip")
        if crop_samples is not None and crop_samples < 1:
            raise ValueError(f"crop_samples must be positive or None, got {crop_samples}")
        self.clips = list(clips)
        self.sampling_rate = int(sampling_rate)
        self.crop_samples = crop_samples
        self.train = bool(train)
        self.seed = int(seed)
        self.epoch = 0
        self._load = load or _audio_load()
        self._load_given = load
        self._cache: dict[int, np.ndarray] | None = {} if cache_audio else None
        captions = [c for clip in self.clips for c in clip.captions]
        self.caption_to_clip = np.repeat(np.arange(len(self.clips)), [len(c.captions) for c in self.clips])
        self._first_caption = np.concatenate([[0], np.cumsum([len(c.captions) for c in self.clips])[:-1]])
        tokens = tokenize(captions)
        self.input_ids = np.asarray(tokens["input_ids"], dtype=np.int32)
        self.attention_mask = np.asarray(tokens["attention_mask"], dtype=np.int32)
        if self.input_ids.shape[0] != len(captions) or self.input_ids.shape != self.attention_mask.shape:
            raise ValueError(
                f"tokenize returned input_ids {self.input_ids.shape} and attention_mask "
                f"{self.attention_mask.shape} for {len(captions)} captions; expected [n_captions, length] each"
            )

    def __len__(self) -> int:
        return len(self.clips)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose crops and captions `__getitem__` draws (call before each epoch)."""
        self.epoch = int(epoch)

    @property
    def captions(self) -> list[str]:
        """Every caption of every clip, in clip order (see `caption_to_clip`)."""
        return [c for clip in self.clips for c in clip.captions]

    def waveform(self, index: int) -> np.ndarray:
        """The whole clip, mono float32 at `sampling_rate`."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        clip = self.clips[index]
        wave, _ = self._load(clip.path, sr=self.sampling_rate, mono=True)
        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 1:
            raise ValueError(f"{clip.name}: the audio loader returned shape {wave.shape}, expected mono [n]")
        if self._cache is not None:
            self._cache[index] = wave
        return wave

    def _reads_a_span(self, clip: CaptionedClip) -> bool:
        """Whether `__getitem__` decodes only its crop of `clip`: a clip of known length (`check_audio`) far
        longer than the crop, read by the default loader without the in-memory cache."""
        crop, n = self.crop_samples, clip.num_samples
        if crop is None or n is None or self._load_given is not None or self._cache is not None:
            return False
        return n > SPAN_READ_CROPS * crop

    def _span(self, clip: CaptionedClip, start: int) -> np.ndarray:
        from audiotrain.audio import load_span

        return np.asarray(
            load_span(clip.path, self.sampling_rate, start, self.crop_samples), dtype=np.float32
        )

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        index = int(index)
        if not 0 <= index < len(self.clips):
            raise IndexError(f"clip index {index} out of range for {len(self.clips)} clips")
        clip, crop = self.clips[index], self.crop_samples
        rng = np.random.default_rng((self.seed, self.epoch, index))
        if self._reads_a_span(clip):
            # The same draw from the same length as below: the crop a whole read would give, decoded alone.
            n = clip.num_samples
            start = int(rng.integers(0, n - crop + 1)) if self.train else (n - crop) // 2
            wave = self._span(clip, start)
            longer = True
        else:
            wave = self.waveform(index)
            n = wave.shape[0]
            longer = crop is not None and n > crop
            if longer:
                start = int(rng.integers(0, n - crop + 1)) if self.train else (n - crop) // 2
                wave = wave[start : start + crop]
        n_caps = len(self.clips[index].captions)
        caption = self._first_caption[index] + (int(rng.integers(0, n_caps)) if self.train else 0)
        return {
            "waveform": wave,
            "input_ids": self.input_ids[caption],
            "attention_mask": self.attention_mask[caption],
            "index": np.int64(index),
            "seed": np.array([self.seed, self.epoch if self.train else 0, index, 0], dtype=np.uint64),
            "longer": np.bool_(longer),
        }


def with_cropped_flags(is_longer, items: Sequence[dict]) -> np.ndarray:
    """The front end's ``is_longer`` of a batch of `CaptionDataset` items, with the clips the dataset cut to
    the window flagged too: transformers' extractor, handed the whole clip, flags them, and a fused model
    fuses (zero local views, with "rand_trunc") only the clips flagged. Keeps `is_longer`'s shape."""
    flags = np.asarray(is_longer, dtype=bool)
    cropped = np.array([bool(item.get("longer", False)) for item in items]).reshape(flags.shape)
    return flags | cropped
