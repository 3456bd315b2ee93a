"""Short clips with one chord each (the clip format of the original chord-training guide).

A folder holds audio clips and ``metadata.csv`` or ``metadata.jsonl``, one row per clip:

- ``file_name`` (or ``audio`` / ``path``): the clip, relative to the folder;
- either ``chord_type``, ``root`` and ``bass_note`` (``bass`` is accepted too): class indices, or names
  (``chord_type`` a vocabulary type such as ``min7``; ``root`` / ``bass_note`` note names such as ``F#``);
  root and bass may be empty or -1 for ``N`` and ``X``;
- or ``label``: a Harte label (``C:maj7/3``), mapped through the vocabulary.

Items are numpy dicts: ``audio`` float32 [samples] (padded with zeros / cut to ``clip_seconds``),
``chord_type``, ``root``, ``bass`` int32 scalars (``bass`` is the guide's ``bass_note``), and ``features``
when a ``feature_fn`` is given. Every bad row is reported with the metadata file and line.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from audiotrain import audio as audio_io
from audiotrain.chords.harte import HarteError, note_to_pitch_class
from audiotrain.chords.vocabulary import CHORD_TYPES, IGNORE_INDEX, N_INDEX, X_INDEX, encode_label
from audiotrain.data import Dataset

import numpy as np

METADATA_FILES = ("metadata.csv", "metadata.jsonl")
_PATH_KEYS = ("file_name", "audio", "path")


@dataclass(frozen=True)
class ChordClip:
    """One clip: its audio file and its targets (root and bass -1 for N and X)."""

    audio_path: Path
    chord_type: int
    root: int
    bass: int


def _class_index(value, field: str) -> int:
    """An int (or int-like string), a chord-type name, or a note name → class index."""
    text = str(value).strip() if value is not None else ""
    if field != "chord_type" and text in ("", "-1", "None", "none"):
        return IGNORE_INDEX
    try:
        index = int(text)
    except ValueError:
        if field == "chord_type":
            if text not in CHORD_TYPES:
                raise ValueError(f"chord_type {text!r} is not one of {list(CHORD_TYPES)}") from None
            return CHORD_TYPES.index(text)
        try:
            return note_to_pitch_class(text)
        except HarteError:
            raise ValueError(f"{field} {text!r} is neither a pitch class 0-11 nor a note name") from None
    upper = len(CHORD_TYPES) if field == "chord_type" else 12
    if not 0 <= index < upper:
        raise ValueError(f"{field} {index} is outside 0..{upper - 1}")
    return index


def _read_rows(path: Path) -> list[tuple[int, dict]]:
    if path.suffix == ".jsonl":
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}, line {number}: not valid JSON ({err})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}, line {number}: expected a JSON object, got {type(row).__name__}")
            rows.append((number, row))
        return rows
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return [(number, row) for number, row in enumerate(reader, start=2)]  # line 1 is the header


def read_clip_metadata(root: str | Path) -> list[ChordClip]:
    """Read and check the metadata of a clip folder.

    Raises
    ------
    FileNotFoundError
        If the folder has no ``metadata.csv`` / ``metadata.jsonl``.
    ValueError
        Listing every bad row as ``file, line N: problem``.
    """
    root = Path(root)
    metadata = next((root / name for name in METADATA_FILES if (root / name).is_file()), None)
    if metadata is None:
        raise FileNotFoundError(f"{root}: no {' or '.join(METADATA_FILES)} describing the clips")
    clips, problems = [], []
    for number, row in _read_rows(metadata):
        where = f"{metadata}, line {number}"
        path_key = next((k for k in _PATH_KEYS if row.get(k)), None)
        if path_key is None:
            problems.append(f"{where}: no clip path (one of {', '.join(_PATH_KEYS)})")
            continue
        audio_path = root / str(row[path_key])
        if not audio_path.is_file():
            problems.append(f"{where}: audio file {audio_path} does not exist")
            continue
        try:
            if row.get("label"):
                index = encode_label(str(row["label"]))
                chord_type, chord_root, bass = index.chord_type, index.root, index.bass
            else:
                bass_key = "bass_note" if "bass_note" in row else "bass"
                missing = [k for k in ("chord_type", "root", bass_key) if k not in row]
                if missing:
                    raise ValueError(f"missing {', '.join(missing)} (or give a Harte 'label')")
                chord_type = _class_index(row["chord_type"], "chord_type")
                chord_root = _class_index(row["root"], "root")
                bass = _class_index(row[bass_key], "bass_note")
                if bass == IGNORE_INDEX:
                    bass = chord_root
                if chord_type in (N_INDEX, X_INDEX):
                    chord_root = bass = IGNORE_INDEX
                elif chord_root == IGNORE_INDEX:
                    raise ValueError(f"chord type {CHORD_TYPES[chord_type]!r} needs a root")
        except (ValueError, HarteError) as err:
            problems.append(f"{where}: {err}")
            continue
        clips.append(ChordClip(audio_path, chord_type, chord_root, bass))
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ValueError(f"{len(problems)} bad rows in the clip metadata:\n  {shown}{more}")
    if not clips:
        raise ValueError(f"{metadata}: no clips")
    return clips


class ChordClipDataset(Dataset):
    """Fixed-length chord clips with per-clip targets (see the module docstring).

    Parameters
    ----------
    root : str or Path
        The clip folder.
    sr : int
        Sample rate the audio is resampled to.
    clip_seconds : float, optional
        Every clip is padded or cut to this length; default: the longest clip.
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
