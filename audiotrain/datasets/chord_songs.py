"""Songs with chord annotations: folder scanning, song-level splits, frame targets and a training dataset.

A song folder holds audio files with their annotation beside them, same stem: ``song.wav`` + ``song.lab``
(or ``song.jams``, or gzipped ``song.jamz``), in any sub-folder. `scan_song_folder` pairs them (names
compared in Unicode's composed form: macOS writes them decomposed) and lists everything it could not use
(audio without annotation, annotation without audio, audio in a format the loader does not read, annotations
with errors or in a format no reader here reads, with a "did you mean" for a name nearly alike) in
`SongIndex.report`. Hidden files and folders (``.DS_Store``, ``._song.wav``, ``.Trashes``)
are ignored and counted. Symlinked folders are entered (each real folder once: a link to a folder above is
not followed round) and named in the report; so is an audio file reached a second way (a link to a song
of the folder), which is used once. The report also counts the annotated time in chords outside
the vocabulary's chord types (``C:(1,b3)``): they train as ``X``, so a dataset in a notation the vocabulary
does not read shows; and in those it reduces to a chord of other notes (``C:aug(b7)`` trains as ``C:aug``),
so that a dataset rich in extensions (jazz) shows how much of it was simplified. Annotations kept apart from
the audio pair through an annotations folder or a pairs file (`audiotrain.datasets._song_pairs`).

`ChordSongDataset` serves

- training items: random windows of ``window_frames`` frames within each song's annotated span (a song
  gets windows in proportion to that span), drawn deterministically, with pitch-shift augmentation over 12
  keys: the features are CQT frames with ``spare_bins`` extra bins on each side, and a shift of ``s``
  semitones crops the bins ``s * bins_per_semitone`` lower (content moves up) while the labels move up ``s``
  semitones;
- evaluation items: every song cut into consecutive chunks of ``eval_chunk_frames`` frames, the last one
  padded, with ``mask`` marking the real frames. All items then share one shape, so a compiled evaluation
  step compiles once; each chunk sees only its own context, as the training windows do. (Song-level
  decoding and scoring is `audiotrain.recipes.chords.predict`'s, over overlapping windows.)

Every item is a dict of numpy arrays: ``features`` float32 [frames, input_bins], ``chord_type``, ``root``,
``bass`` int32 [frames] (``-1`` = ignore: root and bass of N and of X without a root, and padding),
``mask`` float32 [frames] (1 on real frames), and for evaluation items ``song_index`` and ``start_frame``
(int32 scalars).
"""

from __future__ import annotations

import functools
import hashlib
import math
import mimetypes
import mmap
import numbers
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audiotrain._config_args import config_argument
from audiotrain._file_names import portable_name
from audiotrain._files import is_inside
from audiotrain._text import listed, plural, seconds_text, shell_word, without_control_characters
from audiotrain.audio import UNREADABLE_AUDIO_SUFFIXES, AudioError, header_length, too_short_detail
from audiotrain.chords.harte import UNKNOWN_CHORD
from audiotrain.chords.lab import (
    AnnotationError,
    ChordSegment,
    SeveralAnnotationsWarning,
    ZeroLengthSegmentsWarning,
    looks_like_lab,
    read_annotation,
)
from audiotrain.chords.vocabulary import IGNORE_INDEX, NUM_CHORD_TYPES, X_INDEX, encode_label, reduced_label
from audiotrain.data import Dataset
from audiotrain.datasets._folders import (
    AUDIO_FILE_SUFFIXES,
    as_stored,
    distinguishable,
    hidden_note,
    is_hidden,
    nfc,
    walk_visible_following_links,
)
from audiotrain.datasets._song_pairs import (
    annotations_under,
    loose_name,
    match_in_annotation_folder,
    near_misses,
    read_song_pairs,
    real,
    require_folder,
)

import numpy as np

#: Annotation suffixes, in order of preference when a song has several.
ANNOTATION_SUFFIXES = (".lab", ".jams", ".jamz")
#: Other suffixes of .lab-format annotations (`read_annotation` reads them): not paired, but named as a hint.
OTHER_LAB_SUFFIXES = (".txt", ".chords")
#: Suffixes datasets ship chord annotations under that no reader here reads (Schubert Winterreise's
#: ``;``-separated CSV): named in the scan, with how to convert them, rather than passed over.
UNREAD_ANNOTATION_SUFFIXES = (".csv", ".tsv", ".json", ".xml")
#: Suffixes of other tasks' labels (Ballroom's and GTZAN-rhythm's ``.beats``): beside an audio file without
#: an annotation they are named, as a folder of beat labels otherwise scanned as audio alone, said nothing.
OTHER_TASK_LABEL_SUFFIXES = (".beats", ".downbeats", ".onsets", ".bpm", ".tempo", ".key")
#: How to write a .lab of one: what the line naming such a file advises.
LAB_LINES = "one 'start end label' line per chord (seconds, Harte label), e.g. with Python's csv module"
#: An annotation that runs this many seconds past the end of its audio is not used: it belongs to another
#: version of the recording (or the audio is cut), so its labels would be misaligned.
MAX_ANNOTATION_OVERHANG_S = 2.0
_ANNOTATION_PRIORITY = {suffix: i for i, suffix in enumerate(ANNOTATION_SUFFIXES)}


@dataclass(frozen=True)
class SongEntry:
    """One annotated song: ``name`` is the path of the audio relative to the scanned folder, without suffix."""

    name: str
    audio_path: Path
    annotation_path: Path
    #: Which of a JAMS annotation's chord annotations is the song's (from 0; ``--data.jams_annotation``).
    jams_annotation: int = 0

    def read_segments(
        self,
        allow_gaps: bool = False,
        keep_starts: bool = False,
        filled_gaps: list[tuple[float, float]] | None = None,
    ) -> list[ChordSegment]:
        """The song's chord segments: its annotation read as the scan read it (`read_annotation`;
        `keep_starts` for scoring, as mir_eval reads a file; `filled_gaps` collects the gaps read as N)."""
        return read_annotation(
            self.annotation_path,
            allow_gaps=allow_gaps,
            keep_starts=keep_starts,
            jams_annotation=self.jams_annotation,
            filled_gaps=filled_gaps,
        )


@dataclass
class SongIndex:
    """The result of `scan_song_folder`: usable songs, and everything that was not used, with the reason."""

    root: Path
    songs: list[SongEntry] = field(default_factory=list)
    unpaired_audio: list[Path] = field(default_factory=list)
    unpaired_annotations: list[Path] = field(default_factory=list)
    #: Annotations that a pairs file does not name, and those of an annotations folder that no audio file
    #: matched: not used, but no song is missing (Billboard's other reductions of a song, another album's
    #: annotations), so counted apart from `unpaired_annotations`.
    unused_annotations: list[Path] = field(default_factory=list)
    invalid: list[tuple[Path, str]] = field(default_factory=list)
    unreadable_audio: list[tuple[Path, str]] = field(default_factory=list)
    mismatched: list[tuple[Path, str]] = field(default_factory=list)
    duplicates: list[tuple[Path, str]] = field(default_factory=list)
    unsupported_audio: list[tuple[Path, str]] = field(default_factory=list)
    several_annotations: list[tuple[Path, str]] = field(default_factory=list)  # used: not a problem
    #: Of each of those files, the number of the chord annotation used and its description ("chord by Bob"):
    #: a number picks by position in each file, so another order of the annotators mixes their chords.
    annotations_used: list[tuple[Path, int, str]] = field(default_factory=list)
    #: Annotations used with segments dropped as labelling no time (start = end: Audacity's point labels):
    #: ``(annotation, "line 2 (G:maj), ...")``. Used: not a problem, but each such chord is lost.
    zero_length: list[tuple[Path, str]] = field(default_factory=list)
    hidden: list[Path] = field(default_factory=list)  # .DS_Store, ._x.wav, .Trashes/...: ignored, counted
    #: Symlinked folders whose songs were scanned (albums linked in from another disk), and those not entered
    #: because their real folder was scanned already (a link to a folder above, or a second link to one).
    linked_folders: list[Path] = field(default_factory=list)
    links_not_entered: list[Path] = field(default_factory=list)
    #: Audio files not used because their real file is a song already under another name (a link to a song
    #: of the folder, or a file in a linked folder reached by a link of its own too): ``(audio, the path
    #: used)``, so that one recording is one song, never in training and in the test part at once.
    links_not_used: list[tuple[Path, Path]] = field(default_factory=list)
    near_misses: list[tuple[Path, Path]] = field(default_factory=list)  # (audio, annotation) nearly paired
    #: Audio files whose name matches several annotations of the annotations folder, or one that another
    #: audio file's matches too: not paired by a guess (``(audio, why)``).
    ambiguous: list[tuple[Path, str]] = field(default_factory=list)
    #: ``{annotation: audio}`` of the songs paired by the annotations folder or the pairs file, whose
    #: annotation may lie outside `root`: a skipped song is named after its audio.
    audio_of: dict[Path, Path] = field(default_factory=dict)
    #: ``{audio: part}`` where the pairs file names each song's part (its ``split`` column): a dataset's
    #: published split, which `split_songs_as_given` keeps. Empty otherwise.
    parts: dict[Path, str] = field(default_factory=dict)
    #: Songs paired by their name (an annotation beside them, or in the annotations folder) that a pairs file
    #: with a ``split`` column does not list, so puts in no part: ``(audio, why)``, not used (a song in no
    #: part is neither trained nor scored, where the user wrote which songs are which).
    not_in_a_part: list[tuple[Path, str]] = field(default_factory=list)
    #: The annotations folder searched for annotations not beside their audio (`scan_song_folder`).
    annotations_dir: Path | None = None
    #: The pairs file that paired songs (`scan_song_folder`).
    pairs_file: Path | None = None
    #: The folder the command writes to (its run folder) where it lies inside `root`: left out of the scan,
    #: so that a run's own predictions are never taken for the user's annotations (`scan_song_folder`).
    left_out_folder: Path | None = None
    #: Files in a chord annotation format no reader here reads (``.csv``): those of the annotations folder,
    #: and those named like audio without an annotation. Not used; named with how to convert them.
    unread_annotations: list[Path] = field(default_factory=list)
    #: Files of the annotations folder in such a format named like no audio file (a dataset's ``index.csv``,
    #: ``README.json``): not annotations, plainly; counted as not used, with no advice.
    other_files_apart: list[Path] = field(default_factory=list)
    #: Files of another task's labels (`OTHER_TASK_LABEL_SUFFIXES`: ``song.beats``) of the stem of an audio
    #: file without an annotation: not chord annotations, so not used; named in the report.
    other_task_labels: list[Path] = field(default_factory=list)
    #: Seconds annotated in the songs used (read when validating).
    annotated_seconds: float = 0.0
    #: Labels of those songs outside the chord types, which count as X: ``{label: (segments, seconds)}``.
    outside_vocabulary: dict[str, tuple[int, float]] = field(default_factory=dict)
    #: Labels of those songs that train as a chord of other notes (`reduced_label`): ``{label: (reduced
    #: label, segments, seconds)}``.
    reduced_labels: dict[str, tuple[str, int, float]] = field(default_factory=dict)
    #: Where each label of `outside_vocabulary` and `reduced_labels` is first found in each annotation that
    #: holds it: ``{label: [(annotation, start seconds), ...]}``, so that the report says where to look.
    label_places: dict[str, list[tuple[Path, float]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.songs)

    def __iter__(self):
        return iter(self.songs)

    @property
    def problems(self) -> int:
        """Number of files not used."""
        return (
            len(self.unpaired_audio)
            + len(self.unpaired_annotations)
            + len(self.invalid)
            + len(self.unreadable_audio)
            + len(self.mismatched)
            + len(self.duplicates)
            + len(self.unsupported_audio)
            + len(self.ambiguous)
            + len(self.unread_annotations)
            + len(self.not_in_a_part)
        )

    def vocabulary_lines(self) -> list[str]:
        """The report's lists of the labels the chord types change (`outside_vocabulary`, `reduced_labels`),
        alone: for `score`, which reads annotations without a scan."""
        lines = []
        outside = {label: ("", *counts) for label, counts in self.outside_vocabulary.items()}
        for labels, reduced in ((outside, False), (self.reduced_labels, True)):
            if labels:
                one, many, items = self._labels_group(labels, reduced)
                lines += [f"  {plural(len(items), one, many)}:", *("    " + item for item in items)]
        return lines

    def _label_place(self, label: str) -> str:
        """``", first at 2.00 s of a.lab, in 3 files"``: where the report's `label` is (`label_places`)."""
        places = self.label_places.get(label)
        if not places:
            return ""
        path, start = places[0]
        if len(places) == 1:
            return f", at {start:.2f} s of {path}"
        return f", first at {start:.2f} s of {path}, in {len(places)} files"

    def _labels_group(
        self, labels: dict[str, tuple[str, int, float]], reduced: bool
    ) -> tuple[str, str, list[str]]:
        """The report's group of the chord labels outside the chord types (`outside_vocabulary`, given with
        "" as their reduced label) or reduced to one (`reduced_labels`): their time and share of the annotated
        time, then each label with its segments and seconds, the longest first."""
        seconds = sum(s for _, _, s in labels.values())
        share = f", {100 * seconds / self.annotated_seconds:.1f}%" if self.annotated_seconds else ""
        kind = "reduced to one of" if reduced else "outside"
        where = f"{kind} the {NUM_CHORD_TYPES} chord types ({seconds:.1f} s{share} of the annotated time)"
        if reduced:
            how = "the chord after the arrow (extensions dropped, or an omitted fifth counted as played)"
        else:
            how = "X (unknown chord), keeping the root and bass"
        items = [
            f"{label}{f' → {to}' if to else ''}: {plural(n, 'segment')}, {s:.1f} s{self._label_place(label)}"
            for label, (to, n, s) in sorted(labels.items(), key=lambda item: (-item[1][2], item[0]))
        ]
        return (
            f"chord label {where}: it trains as {how}; mir_eval scores it as written",
            f"chord labels {where}: they train as {how}; mir_eval scores them as written",
            items,
        )

    def pairing_hint(self, annotations_flag: str, pairs_flag: str) -> str:
        """Where no annotations folder or pairs file was given (`annotations_flag`, `pairs_flag`: the
        command's flags, e.g. ``--data.annotations``), the line that names the one the layout needs: the pairs file
        where audio without an annotation shares its folder with annotations of other names (McGill
        Billboard's ``0003/audio.wav`` beside ``full.lab``, ``majmin.lab``), both where the scan found audio
        and not one annotation (Isophonics keeps its annotations in a tree of their own, ``chordlab/``, which
        a first run finds nothing of), and, with an annotations folder, the pairs file where audio files
        without an annotation share one name (`_shared_audio_name_hint`); else ``""``."""
        if self.pairs_file is not None:
            return ""
        kinds = self._annotation_kinds_hint(annotations_flag)
        if kinds or not self.unpaired_audio:
            return kinds
        csv_advice = f"list audio,annotation rows in a CSV file and pass {pairs_flag} FILE.csv"
        if self.annotations_dir is not None:
            return self._shared_audio_name_hint(csv_advice) or self._take_suffix_hint(csv_advice)
        sharing = self._audio_sharing_a_folder()
        if sharing:
            audio, beside = sharing[0]
            names = _first_names(beside)
            return (
                f"{plural(len(sharing), 'audio file shares its', 'audio files share their')} folder with "
                f"annotations of other names ({audio} beside {names}), a layout no name rule pairs (as "
                f"McGill Billboard's): {csv_advice} (README: 'Your dataset's layout')"
            )
        found_any = (
            self.songs,
            self.unpaired_annotations,
            self.unused_annotations,
            self.invalid,
            self.ambiguous,
            self.near_misses,
            self.audio_of,
        )
        if any(found_any):
            return ""
        if self.other_task_labels:
            # (neither flag helps: these are beat or tempo labels, which no chord task can train on)
            what = plural(
                len(self.other_task_labels), "file beside the audio holds", "files beside the audio hold"
            )
            return (
                f"the {what} another task's labels ({_first_names(self.other_task_labels)}), not chords: "
                "this needs chord annotations (.lab, .jams) of the songs"
            )
        return (
            f"no annotation lies beside the audio: where the annotations are kept in a folder of their own "
            f"(as Isophonics' chordlab/), pass {annotations_flag} DIR; for a layout no name matches, "
            f"{csv_advice}"
        )

    def _annotation_kinds_hint(self, annotations_flag: str) -> str:
        """Where audio matched several annotations and the annotations folder holds sub-folders side by side
        of which one is named for chords (Isophonics' chordlab/ beside keylab/ and seglab/, each with a
        ``.lab`` of every song's name), the line that names that folder; else ``""``."""
        if self.annotations_dir is None or not self.ambiguous:
            return ""
        folders = sorted(
            entry.name
            for entry in self.annotations_dir.iterdir()
            if entry.is_dir() and not is_hidden(entry.name)
        )
        chords = [name for name in folders if "chord" in name.lower()]
        if len(folders) < 2 or len(chords) != 1:
            return ""
        side_by_side = ", ".join(f"{name}/" for name in folders)
        return (
            f"the annotations folder {self.annotations_dir} holds {side_by_side} side by side, whose files "
            f"share the songs' names (as Isophonics'): pass {annotations_flag} "
            f"{self.annotations_dir / chords[0]}"
        )

    def _shared_audio_name_hint(self, csv_advice: str) -> str:
        """The pairs file's line where audio files without an annotation share one name, each in a folder of
        its own (Billboard's ``0003/audio.wav``, ``0004/audio.wav``, its LAB release apart from them): no
        annotation's name can pair them, and the scan alone calls the annotations another album's; else
        ``""``."""
        by_name: dict[str, list[Path]] = {}
        for path in self.unpaired_audio:
            by_name.setdefault(loose_name(path.name), []).append(path)
        same = max(by_name.values(), key=len)
        if len(same) < 2:
            return self._audio_named_as_folders_hint(csv_advice)
        return (
            f"{len(same)} audio files share the name {same[0].name}, each in a folder of its own (numbered "
            f"folders, as McGill Billboard's), which no annotation's name can pair: {csv_advice} "
            "(README: 'Your dataset's layout')"
        )

    def _take_suffix_hint(self, csv_advice: str) -> str:
        """The pairs file's line where audio files without an annotation are named as an annotation of the
        annotations folder with a word added (GuitarSet's ``00_BN1-129-Eb_comp_mic.wav`` and
        ``00_BN1-129-Eb_comp.jams``: one annotation for its ``_mic``, ``_mix`` and ``_hex`` recordings),
        which no name rule pairs; else ``""``."""
        stems = {loose_name(path.stem): path for path in self.unused_annotations}
        named = [
            (path, stems[head])
            for path in self.unpaired_audio
            for head in [loose_name(path.stem).rpartition("_")[0]]
            if head in stems
        ]
        if not named:
            return ""
        audio, annotation = named[0]
        return (
            f"{plural(len(named), 'audio file is', 'audio files are')} named as an annotation with a word "
            f"added ({audio.name} and {annotation.name}, as GuitarSet's _mic and _mix), a layout no name "
            f"rule pairs: {csv_advice} (README: 'Your dataset's layout')"
        )

    def _audio_named_as_folders_hint(self, csv_advice: str) -> str:
        """The pairs file's line where audio files without an annotation are named as folders of the
        annotations folder that hold annotations of other names (Billboard's ``audio/0003.wav`` and
        ``McGill-Billboard/0003/full.lab``, ``majmin.lab``): the song is the folder, and which of its files
        to pair is the user's choice; else ``""``."""
        by_folder: dict[str, list[Path]] = {}
        for path in self.unused_annotations:
            by_folder.setdefault(loose_name(path.parent.name), []).append(path)
        named = [
            (path, by_folder[loose_name(path.stem)])
            for path in self.unpaired_audio
            if loose_name(path.stem) in by_folder
        ]
        if not named:
            return ""
        audio, held = named[0]
        names = _first_names(held)
        return (
            f"{plural(len(named), 'audio file is', 'audio files are')} named as folders of annotations "
            f"({audio.name} and {held[0].parent}/: {names}), a layout no name rule pairs (as McGill "
            f"Billboard's): {csv_advice} (README: 'Your dataset's layout')"
        )

    def _audio_sharing_a_folder(self) -> list[tuple[Path, list[Path]]]:
        """``[(audio, annotations)]``: audio without an annotation, and no "did you mean", whose folder holds
        annotations without audio under other names (Billboard's ``audio.wav`` beside ``full.lab``)."""
        by_folder: dict[Path, list[Path]] = {}
        for path in self.unpaired_annotations:
            by_folder.setdefault(path.parent, []).append(path)
        hinted = {audio for audio, _ in self.near_misses}
        return [
            (path, by_folder[path.parent])
            for path in self.unpaired_audio
            if path.parent in by_folder and path not in hinted
        ]

    def skipped_songs(self) -> dict[str, str]:
        """``{song name: reason}`` of every song not used: audio without annotation or annotation without
        audio, an annotation with errors (a gap, without ``allow_gaps``), audio that cannot be read, is too
        short or in a format the loader does not read, an annotation far longer than its audio. Named like
        `SongEntry.name` (the path relative to the folder, without suffix). Ignored duplicates are not
        songs skipped: another file of the same song is used; nor is an annotation that an audio file's
        "did you mean" names (`Four.wav` beside `four.lab`): that is the audio's song, listed once."""
        hints = {audio: f"; {self._did_you_mean(audio, near)}" for audio, near in self.near_misses}
        found = [
            (path, f"{path}: no annotation ({self._sought()}){hints.get(path, '')}")
            for path in self.unpaired_audio
        ]
        # An annotation a "did you mean" names is that audio's song, already listed with the hint: one song.
        hinted = {near for _, near in self.near_misses}
        found += [
            (path, f"{path}: an annotation without an audio file")
            for path in self.unpaired_annotations
            if path not in hinted
        ]
        found += (
            self.invalid
            + self.unreadable_audio
            + self.mismatched
            + self.unsupported_audio
            + self.ambiguous
            + self.not_in_a_part
        )
        skipped: dict[str, str] = {}
        for path, reason in found:
            path = self.audio_of.get(path, path)
            # (an annotation of the annotations folder that no audio matched may lie outside the folder)
            relative = (
                path.relative_to(self.root)
                if path.is_relative_to(self.root)
                else Path(os.path.relpath(path, self.root))
            )
            skipped.setdefault(relative.with_suffix("").as_posix(), reason)
        return skipped

    def _did_you_mean(self, audio: Path, near: Path) -> str:
        """``did you mean NAME? (pairs as STEM.lab)``: `near` named as the user finds it (its path under the
        annotations folder, where it lies there), and what to do to pair it."""
        apart = self.annotations_dir is not None and near.is_relative_to(self.annotations_dir)
        shown = near.relative_to(self.annotations_dir) if apart else near.name
        if near.suffix.lower() in UNREAD_ANNOTATION_SUFFIXES:
            todo = f"a {near.suffix.lower()} file is not read: convert it to {audio.stem}.lab, {LAB_LINES}"
        elif apart:
            todo = f"pairs as {audio.stem}.lab, or list the pair in a pairs file"
        else:
            todo = f"pairs as {audio.stem}.lab"
        return f"did you mean {shown}? ({todo})"

    def _why_not_used(self) -> str:
        """Why `unused_annotations` are not used, in the words of the way the songs were paired; "no song is
        missing" only where no audio went without its annotation."""
        if self.pairs_file is not None:
            why = f"not named in the pairs file {self.pairs_file} (another reduction of a song, perhaps)"
        else:
            why = f"in the annotations folder {self.annotations_dir} matched by no audio file"
            why += " (another album's, perhaps)"
        missing = self.unpaired_audio or self.unsupported_audio or self.ambiguous or self.not_in_a_part
        return why if missing else f"{why}; no song is missing"

    def _sought(self) -> str:
        beside = ".lab/.jams/.jamz with the same stem"
        return f"{beside}, or named alike in {self.annotations_dir}" if self.annotations_dir else beside

    def pairs_listing(self) -> str:
        """For the run's data report, each song whose annotation an annotations folder or a pairs file gave
        (``\n  audio <- annotation``), so that which file annotates which recording can be checked: names
        alone can pair another song's (two albums' ``01 - Intro``); "" where each lies beside its audio."""
        apart = sorted((audio, annotation) for annotation, audio in self.audio_of.items())
        if not apart:
            return ""
        title = f"{plural(len(apart), 'song')} paired with an annotation kept apart (audio <- annotation):"
        lines = [f"\n{title}"]
        lines += [f"  {audio} <- {annotation}" for audio, annotation in apart]
        return "\n".join(lines)

    def report(self, max_listed: int | None = 20, listed_in: str = "") -> str:
        """A human-readable summary: counts, then up to ``max_listed`` files per kind of problem (None: every
        one). `listed_in` names where the full list is (``"RUN/data_report.txt"``), for the line that counts
        the files left out."""
        lines = [f"{self.root}: {plural(len(self.songs), 'annotated song')}"]
        if self.left_out_folder is not None:
            lines.append(f"  {self.left_out_folder}: this command's own output folder, left out of the scan")
        if self.hidden:
            lines.append(f"  {hidden_note(self.hidden, self.root)}")
        if self.other_files_apart:
            shown = ", ".join(p.name for p in self.other_files_apart[:3])
            more = ", ..." if len(self.other_files_apart) > 3 else ""
            what = plural(len(self.other_files_apart), "other file", "other files")
            lines.append(f"  {what} in the annotations folder not used, named like no audio ({shown}{more})")
        if self.linked_folders:
            shown = ", ".join(str(p.relative_to(self.root)) for p in self.linked_folders[:3])
            more = ", ..." if len(self.linked_folders) > 3 else ""
            what = plural(len(self.linked_folders), "symlinked folder")
            lines.append(f"  {what} entered ({shown}{more})")
        # (title for one, title for several, items): "1 audio file without an annotation", "2 audio files ..."
        groups = [
            (
                f"audio file without an annotation ({self._sought()})",
                f"audio files without an annotation ({self._sought()})",
                [str(p) for p in self.unpaired_audio],
            ),
            (
                "annotation without an audio file",
                "annotations without an audio file",
                [str(p) for p in self.unpaired_annotations],
            ),
            (
                f"annotation not used: {self._why_not_used()}",
                f"annotations not used: {self._why_not_used()}",
                [str(p) for p in self.unused_annotations],
            ),
            (
                f"file in an annotation format not read (convert it to .lab: {LAB_LINES})",
                f"files in an annotation format not read (convert each to .lab: {LAB_LINES})",
                [str(p) for p in self.unread_annotations],
            ),
            (
                "file of another task's labels beside audio without an annotation (not read: this scan pairs "
                "chord annotations alone)",
                "files of another task's labels beside audio without an annotation (not read: this scan "
                "pairs chord annotations alone)",
                [str(p) for p in self.other_task_labels],
            ),
            (
                "audio file in a format the loader does not read (song skipped)",
                "audio files in a format the loader does not read (songs skipped)",
                [message for _, message in self.unsupported_audio],
            ),
            (
                "audio file that matches several annotations, or shares one (song skipped, never guessed)",
                "audio files that match several annotations, or share one (song skipped, never guessed)",
                [message for _, message in self.ambiguous],
            ),
            (
                "song paired by its name that the pairs file's split column lists in no part (song skipped: "
                "neither trained nor scored; give it a row to use it)",
                "songs paired by their names that the pairs file's split column lists in no part (songs "
                "skipped: neither trained nor scored; give each a row to use it)",
                [message for _, message in self.not_in_a_part],
            ),
            (
                "annotation with errors (song skipped)",
                "annotations with errors (song skipped)",
                [message for _, message in self.invalid],
            ),
            (
                "audio file that cannot be read or is too short (song skipped)",
                "audio files that cannot be read or are too short (song skipped)",
                [message for _, message in self.unreadable_audio],
            ),
            (
                f"annotation longer than its audio by over {MAX_ANNOTATION_OVERHANG_S:g} s (song skipped)",
                f"annotations longer than their audio by over {MAX_ANNOTATION_OVERHANG_S:g} s (song skipped)",
                [message for _, message in self.mismatched],
            ),
            ("ignored duplicate", "ignored duplicates", [f"{p}: {why}" for p, why in self.duplicates]),
            (
                "folder reached through a symlink not entered: its real folder was scanned already (a link "
                "to a folder above, or a second link to one folder)",
                "folders reached through symlinks not entered: their real folder was scanned already (a link "
                "to a folder above, or a second link to one folder)",
                [f"{p} -> {os.path.realpath(p)}" for p in self.links_not_entered],
            ),
            (
                "audio file reached through a symlink not used: its real file is a song already under "
                "another name (a link to a song of the folder, or a second way to one file)",
                "audio files reached through symlinks not used: their real file is a song already under "
                "another name (a link to a song of the folder, or a second way to one file)",
                [f"{p} -> {os.path.realpath(p)}: the same file as {used}" for p, used in self.links_not_used],
            ),
            (
                "JAMS file with several chord annotations (counted from 0; --data.jams_annotation N, or "
                "evaluate's --jams_annotation N, picks another)",
                "JAMS files with several chord annotations (counted from 0; --data.jams_annotation N, or "
                "evaluate's --jams_annotation N, picks another)",
                [f"{p}: {who}" for p, who in self.several_annotations],
            ),
            (
                f"annotator's chords {self._mixed_annotators_heading()}",
                f"annotators' chords {self._mixed_annotators_heading()}",
                self._mixed_annotators(),
            ),
            (
                "annotation with zero-length segments, dropped (start = end labels no time: a point label, "
                "as Audacity writes one; give it an end time to keep its chord)",
                "annotations with zero-length segments, dropped (start = end labels no time: point labels, "
                "as Audacity writes them; give each an end time to keep its chord)",
                [f"{p}: {where}" for p, where in self.zero_length],
            ),
            (
                "audio file with an annotation named nearly like it (rename the annotation to pair them)",
                "audio files with an annotation named nearly like them (rename it to pair them)",
                [f"{a}: {self._did_you_mean(a, n)}" for a, n in self.near_misses],
            ),
        ]
        if self.outside_vocabulary:
            outside = {label: ("", *counts) for label, counts in self.outside_vocabulary.items()}
            groups.append(self._labels_group(outside, reduced=False))
        if self.reduced_labels:
            groups.append(self._labels_group(self.reduced_labels, reduced=True))
        for one, many, items in groups:
            if items:
                lines.append(f"  {plural(len(items), one, many)}:")
                # An item of several lines (every bad label of one annotation) stays indented under its file.
                shown = items if max_listed is None else items[:max_listed]
                lines += ["    " + item.replace("\n", "\n      ") for item in shown]
                if len(items) > len(shown):
                    where = f" (every one is listed in {listed_in})" if listed_in else ""
                    lines.append(f"    ... and {len(items) - len(shown)} more{where}")
        return without_control_characters("\n".join(lines))  # (file names may hold ESC, BEL, ...)

    def _mixed_annotators(self) -> list[str]:
        """Where the chord annotation used (a number: a position in each file) is another annotator's in
        some JAMS files than in others, one item per annotator, ``"chord by Bob: a.jams, c.jams"``; none
        where every such file gives one annotator's, or where none names who ("chord #1")."""
        files_of: dict[str, list[str]] = {}
        for path, _, who in self.annotations_used:
            if not re.search(r" #\d+$", who):  # (no annotator, source or version named: nothing to compare)
                files_of.setdefault(who, []).append(str(path))
        if len(files_of) < 2:
            return []
        return [f"{who}: {listed(paths, 5)}" for who, paths in sorted(files_of.items())]

    def _mixed_annotators_heading(self) -> str:
        used = self.annotations_used[0][1] if self.annotations_used else 0
        return (
            f"used as chord annotation {used}, which is not the same annotator's in every file: "
            "--data.jams_annotation N (evaluate's --jams_annotation N) counts in each file, so the songs "
            "train and score on a mix of annotators (to use one annotator's, store theirs at one position in "
            "every file)"
        )


def scan_song_folder(
    root: str | Path,
    *,
    validate: bool = True,
    allow_gaps: bool = False,
    min_duration: float = 0.0,
    jams_annotation: int = 0,
    annotations_dir: str | Path | None = None,
    pairs_file: str | Path | None = None,
    leave_out: str | Path | None = None,
) -> SongIndex:
    """Pair audio files with ``.lab`` / ``.jams`` / ``.jamz`` annotations of the same stem, recursively.
    Two audio files of one stem beside one annotation (``x.wav`` and ``x.flac``) pair neither, listed in
    `SongIndex.ambiguous`: which recording it annotates is not guessed.

    Audio in a format the loader does not read (``song.m4a``) is listed in `SongIndex.unsupported_audio`,
    naming the supported extensions and how to convert it: beside its annotation, paired with one of the
    annotations folder, or with none (then not as an annotation without audio, nor as another album's).
    Files in an annotation format no reader here reads (``.csv``) are listed in
    `SongIndex.unread_annotations` where they lie in the annotations folder or are named like audio without
    an annotation; audio without an annotation gets a "did you mean" for one named nearly like it
    (`near_misses`: ``RM-P001.CHORDS.TXT``, ``03. Anna`` for ``03_-_Anna``), never paired by it.

    Parameters
    ----------
    root : str or Path
        Folder to scan.
    validate : bool
        Read every annotation and every audio header. A song is skipped, with the reason, when its annotation
        has an error (`SongIndex.invalid`: file and line), its audio cannot be read (`unreadable_audio`:
        missing, empty, corrupt, truncated, shorter than ``min_duration``, ...), or its annotation runs
        more than `MAX_ANNOTATION_OVERHANG_S` past the end of its audio (`mismatched`).
    allow_gaps : bool
        Passed to the annotation reader: gaps between segments become ``N`` instead of errors.
    min_duration : float
        Shortest usable audio in seconds (what the features need; see `ChordFeatureConfig.min_seconds`).
    jams_annotation : int
        Which chord annotation of a JAMS file is a song's, from 0 (GuitarSet: 1, the performed chords). A file
        with fewer skips its song, listed in `SongIndex.invalid` with the annotations it holds.
    annotations_dir : str or Path, optional
        A folder of annotations kept apart from the audio (Isophonics' ``chordlab``): an audio file without an
        annotation beside it pairs with the one annotation anywhere under it whose stem matches loosely
        (`loose_name`); of annotations of one name, the one in the folder that mirrors the audio's
        (``Hits II/01 - Intro.wav``: ``Hits_II/01_-_Intro.lab``); a name two annotations that way or two
        audio files share pairs none, listed in `SongIndex.ambiguous`.
    pairs_file : str or Path, optional
        A CSV file of ``audio,annotation`` rows (`read_song_pairs`: paths relative to its folder): each row
        pairs an audio file under `root` with its annotation, before any rule above. Where it has a
        ``split`` column (`SongIndex.parts`), a song it does not list, paired by the rules above, is in no
        part: not used, listed in `SongIndex.not_in_a_part`.
    leave_out : str or Path, optional
        The folder the command writes to (train's and cv's ``--run_dir``, evaluate's ``-o``): where it lies
        inside `root`, nothing in it is scanned (a run's own ``evaluation/*.lab`` predictions are not the
        user's annotations), and it is named in the report (`SongIndex.left_out_folder`).

    Raises
    ------
    FileNotFoundError, NotADirectoryError
        If ``root`` does not exist, or is a file.
    """
    # (a folder typed composed is the decomposed one a Mac copied, as it is on the Mac)
    root = as_stored(Path(root))
    require_folder(
        root, "song folder", "the folder that holds the songs (audio files, .lab/.jams beside them)"
    )
    audio: dict[Path, Path] = {}
    annotations: dict[Path, Path] = {}
    other_files: dict[Path, list[Path]] = {}  # stem -> files of no suffix above: a media file, perhaps
    other_labs: list[Path] = []  # .txt / .chords files: annotations, perhaps, under a suffix not paired
    annotations_dir = as_stored(Path(annotations_dir)) if annotations_dir else None
    index = SongIndex(root=root, annotations_dir=annotations_dir)
    kept_apart = annotations_under(annotations_dir, ANNOTATION_SUFFIXES) if annotations_dir else []
    # Files of the annotations folder in a .lab format not paired, or a format not read: named, not used.
    other_apart = (
        annotations_under(annotations_dir, OTHER_LAB_SUFFIXES + UNREAD_ANNOTATION_SUFFIXES)
        if annotations_dir
        else []
    )
    # (the annotations folder may lie inside `root`)
    apart = {real(path) for path in kept_apart + other_apart}
    # Symlinked folders are entered, as predict on a folder enters them: a library's albums linked in from
    # another disk are songs like any other. Each real folder is scanned once, so a loop of links ends.
    entries, index.hidden, index.links_not_entered = walk_visible_following_links(root)
    if leave_out is not None and is_inside(leave_out, root) and not is_inside(root, leave_out):
        # The command's own outputs: a resumed run would list its evaluation/*.lab predictions as the
        # user's "annotations without an audio file", and a fresh run in it would scan other songs than its
        # resume. Compared by real path, as a link may lead into it.
        entries, index.hidden = (
            [p for p in paths if not is_inside(p, leave_out)] for paths in (entries, index.hidden)
        )
        index.left_out_folder = Path(leave_out)
    not_entered = set(index.links_not_entered)
    index.linked_folders = [p for p in entries if p.is_symlink() and p.is_dir() and p not in not_entered]
    not_files: dict[Path, Path] = {}  # stem -> a broken link, a folder, a FIFO or a device named like audio
    same_stem: dict[Path, list[Path]] = {}  # stem -> the audio files after the first of it (x.flac, x.wav)
    extra_annotations: list[tuple[Path, Path]] = []  # (an annotation, the one of its stem kept instead)
    for path in entries:
        suffix = path.suffix.lower()
        key = pairing_key(path)
        if not path.is_file():
            if suffix in AUDIO_FILE_SUFFIXES:  # (never opened: a FIFO would block the scan)
                not_files.setdefault(key, path)
            continue
        if suffix in AUDIO_FILE_SUFFIXES:
            if key in audio:
                same_stem.setdefault(key, []).append(path)
            else:
                audio[key] = path
        elif real(path) in apart:
            continue
        elif suffix in ANNOTATION_SUFFIXES:
            kept = annotations.get(key)
            if kept is not None and _ANNOTATION_PRIORITY[suffix] < _ANNOTATION_PRIORITY[kept.suffix.lower()]:
                kept, path = path, kept  # .lab wins over .jams whatever the file order
                annotations[key] = kept
            if kept is None:
                annotations[key] = path
            else:  # (said once it is known whether the one kept is used: `_ignored_annotations`)
                extra_annotations.append((path, kept))
        elif suffix in OTHER_LAB_SUFFIXES:
            other_labs.append(path)
        else:
            other_files.setdefault(key, []).append(path)
    for key, path in not_files.items():
        # Beside an annotation it is the song's audio, gone: the header read below names what it is (a link
        # to a missing file, a folder, a FIFO or a device, none of them opened), among the skipped songs,
        # rather than "an annotation without audio".
        if key in annotations and key not in audio:
            audio[key] = path
    paired, media_listed = (
        _explicit_pairs(pairs_file, root, audio, same_stem, other_files, annotations, index)
        if pairs_file
        else ({}, {})
    )
    index.pairs_file = Path(pairs_file) if pairs_file else None
    shared = _audio_sharing_a_name(audio, same_stem, annotations, index, by_name=not pairs_file)
    # Audio in a format the loader does not read, with no annotation beside it: offered to the annotations
    # folder too (an iTunes rip's .m4a), then named with the rest (never passed over: a song is missing).
    media_alone = []
    for key, files in other_files.items():
        for path in filter(_named_like_audio, files):
            if key in audio:  # (song.m4a beside the song.wav used)
                index.duplicates.append(
                    (path, f"another audio file with the same stem is used: {audio[key].name}")
                )
            elif key not in annotations and path not in media_listed:  # (those are named below)
                media_alone.append(path)
    media_apart: dict[Path, Path] = {}
    if annotations_dir:
        alone = [path for key, path in audio.items() if path not in paired and key not in annotations]
        alone += shared  # (two audio files of one name match the same annotation there: neither is paired)
        found, index.ambiguous, unmatched = match_in_annotation_folder(
            alone, root, kept_apart, annotations_dir, _ANNOTATION_PRIORITY
        )
        paired.update(found)
        media_apart, _, unmatched = match_in_annotation_folder(
            media_alone, root, unmatched, annotations_dir, _ANNOTATION_PRIORITY
        )
        # The folder's annotation of audio paired beside it is passed over, not another album's: say which.
        beside = {path: annotations[key] for key, path in audio.items() if key in annotations}
        overridden, _, unmatched = match_in_annotation_folder(
            [path for path in beside if path not in paired],
            root,
            unmatched,
            annotations_dir,
            _ANNOTATION_PRIORITY,
        )
        index.duplicates += [
            (apart, f"an annotation beside its audio ({path.name}) is used: {beside[path].name}")
            for path, apart in overridden.items()
        ]
        annotations.update({Path(real(path)): path for path in unmatched})  # (listed as not used below)
    # A pairs file names the songs, an annotations folder may hold other albums': what they leave is not used
    # rather than a song without its audio.
    not_used = set(annotations.values()) if pairs_file else set(unmatched if annotations_dir else ())
    unusable = {annotations[key] for key in same_stem if key in annotations}  # (beside ambiguous audio)
    not_paired = dict(index.duplicates)  # (annotations beside audio a pairs file pairs otherwise, so far)
    index.duplicates += _ignored_annotations(extra_annotations, unusable, not_paired, root)
    index.ambiguous += _ambiguous_beside(audio, same_stem, annotations, root)
    ambiguous = {path for path, _ in index.ambiguous}
    index.duplicates += [
        (path, _another_used(path, audio[pairing_key(path)], root))
        for path in shared
        if path not in ambiguous
    ]
    index.audio_of = {annotation: audio_path for audio_path, annotation in paired.items()}
    second_ways = _second_ways_to_a_file(audio, paired, annotations, ambiguous)
    for key, audio_path in audio.items():
        annotation_path = paired.get(audio_path) or annotations.pop(key, None)
        if audio_path in ambiguous:
            continue
        if audio_path in second_ways:  # (its annotation, if any, goes with it: not one without audio)
            index.links_not_used.append((audio_path, second_ways[audio_path]))
            continue
        if annotation_path is None:
            index.unpaired_audio.append(audio_path)
            continue
        if index.parts and audio_path not in index.parts:
            # The split column is the user's list of which song is which: one it does not list would be
            # trained or scored by a guess (and parted from its run's recorded parts on a resume).
            index.not_in_a_part.append((audio_path, _in_no_part(audio_path, annotation_path, index)))
            continue
        if validate:
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", SeveralAnnotationsWarning)
                    warnings.simplefilter("always", ZeroLengthSegmentsWarning)
                    segments = read_annotation(
                        annotation_path, allow_gaps=allow_gaps, jams_annotation=jams_annotation
                    )
            except AnnotationError as err:
                index.invalid.append((annotation_path, str(err)))
                continue
            for warning in caught:  # listed in the report, once, rather than warned at every read
                if isinstance(warning.message, SeveralAnnotationsWarning):
                    several = warning.message
                    index.several_annotations.append((annotation_path, _annotations_held(several)))
                    used = (annotation_path, several.used, several.annotators[several.used])
                    index.annotations_used.append(used)
                elif isinstance(warning.message, ZeroLengthSegmentsWarning):
                    dropped = warning.message.dropped
                    where = listed([f"{line} ({label})" for line, label in dropped], shown=5)
                    index.zero_length.append((annotation_path, where))
                else:
                    warnings.warn_explicit(
                        warning.message, warning.category, warning.filename, warning.lineno
                    )
            # A header read (no decoding), so a broken file is reported here rather than failing a
            # batch hours into training.
            try:
                frames, rate, _ = header_length(audio_path)
            except AudioError as err:
                index.unreadable_audio.append((audio_path, str(err)))
                continue
            duration = frames / rate
            if duration < min_duration:
                short = AudioError(audio_path, "too_short", too_short_detail(frames, rate, min_duration))
                index.unreadable_audio.append((audio_path, str(short)))
                continue
            annotated = segments[-1].end if segments else 0.0
            if annotated > duration + MAX_ANNOTATION_OVERHANG_S:
                index.mismatched.append(
                    (
                        annotation_path,
                        f"{annotation_path} ends at {seconds_text(annotated)} s but {audio_path.name} lasts "
                        f"{seconds_text(duration)} s {_overhang_cause(annotated, duration)}",
                    )
                )
                continue
            count_vocabulary_changes(segments, index, annotation_path)
        name = audio_path.relative_to(root).with_suffix("").as_posix()  # as on disk
        index.songs.append(SongEntry(name, audio_path, annotation_path, jams_annotation))
    for annotation_path in sorted(annotations.values()):
        # A file beside it under the same stem in a format the loader does not read is its audio: say so,
        # not "an annotation without an audio file" (only these few files are opened, to look at their head).
        beside = other_files.get(pairing_key(annotation_path), [])
        media = next((path for path in beside if _looks_like_unsupported_audio(path)), None)
        if media is None and annotation_path in not_used:
            index.unused_annotations.append(annotation_path)
        elif media is None:
            index.unpaired_annotations.append(annotation_path)
        else:
            index.unsupported_audio.append((media, _unsupported_audio(media, annotation_path.name)))
    for media, annotation_path in (media_apart | media_listed).items():
        index.unsupported_audio.append((media, _unsupported_audio(media, annotation_path.name)))
        index.audio_of[annotation_path] = media
    for media in media_alone:
        if media not in media_apart:
            index.unsupported_audio.append((media, _unsupported_audio(media, None)))
    index.unsupported_audio.sort()
    _find_near_misses(index, other_labs, other_files, other_apart)
    return index


def _first_names(paths: list[Path]) -> str:
    """The names of the first five of `paths`, "..." after them where there are more: a hint's example."""
    return ", ".join(path.name for path in paths[:5]) + (", ..." if len(paths) > 5 else "")


def _in_no_part(audio: Path, annotation: Path, index: SongIndex) -> str:
    """Why song `audio`, paired with `annotation` by its name, is not used: the pairs file's split column
    lists it in no part (`SongIndex.not_in_a_part`)."""
    shown = annotation.name if annotation.parent == audio.parent else str(annotation)
    pairs_name = index.pairs_file.name if index.pairs_file is not None else "the pairs file"
    return f"{audio}: paired with {shown} by its name, but {pairs_name}'s split column lists it in no part"


def _second_ways_to_a_file(
    audio: dict[Path, Path], paired: dict[Path, Path], annotations: dict[Path, Path], ambiguous: set[Path]
) -> dict[Path, Path]:
    """``{audio: the path used}`` of the audio files whose real file is found under another name too (a link
    ``d1_again.wav -> d1.wav``; ``single.wav -> ../lib/single.wav`` beside a linked folder ``lib``): one
    recording is one song, as a folder reached a second way is walked once. The path used is one that pairs
    (the one a pairs file names), else one that is not a link itself, else the first."""
    by_file: dict[str, list[Path]] = {}
    for path in audio.values():
        if path not in ambiguous and path.is_file():
            by_file.setdefault(real(path), []).append(path)
    second_ways = {}
    for paths in by_file.values():
        unpaired = [path not in paired and pairing_key(path) not in annotations for path in paths]
        used = min(zip(unpaired, (p.is_symlink() for p in paths), paths))[2]
        second_ways.update({path: used for path in paths if path != used})
    return second_ways


def _overhang_cause(annotated: float, duration: float) -> str:
    """Why an annotation may end far past its audio: times written in milliseconds where, read as such, it
    ends within the audio (``0 1500 C`` over 3 s; the guess of another recording sent the user the wrong
    way), else another version of the recording."""
    if duration / 2 <= annotated / 1000 <= duration + MAX_ANNOTATION_OVERHANG_S:
        return "(its times in milliseconds? A .lab's and a JAMS file's times are seconds)"
    if 0.9 * duration <= annotated / 100 <= duration + MAX_ANNOTATION_OVERHANG_S:
        # 10 ms units (a tool's frames): it ends with the audio, read so. Held closer than milliseconds,
        # as a ratio of 100 is nearer another recording's length than one of 1000.
        return (
            "(its times in hundredths of a second, 10 ms units? A .lab's and a JAMS file's times are seconds)"
        )
    return "(another version of the recording?)"


def _audio_sharing_a_name(
    audio: dict[Path, Path],
    same_stem: dict[Path, list[Path]],
    annotations: dict[Path, Path],
    index: SongIndex,
    by_name: bool,
) -> list[Path]:
    """The audio files after the first of their stem (`same_stem`) that no annotation beside them makes
    ambiguous (`_ambiguous_beside`): offered to the annotations folder, listed as ignored duplicates where it
    pairs them with nothing. Where a pairs file pairs the songs (not `by_name`), they are ignored duplicates
    at once, and the first of each stem is the one its rows can name, as before."""
    if not by_name:
        index.duplicates += [
            (path, _another_used(path, audio[key], index.root))
            for key, paths in same_stem.items()
            for path in paths
        ]
        same_stem.clear()
    return [path for key, paths in same_stem.items() if key not in annotations for path in paths]


def _ignored_annotations(
    extra: list[tuple[Path, Path]], unusable: set[Path], not_paired: dict[Path, str], root: Path
) -> list[tuple[Path, str]]:
    """``[(annotation, why)]`` of the annotations of a stem after the one kept (``x.jams`` beside ``x.lab``,
    or one name spelt in both Unicode forms, shown escaped to tell them apart): the kept one is used,
    unless the audio beside them is ambiguous (`unusable`, `_ambiguous_beside`), when neither is, or a pairs
    file pairs that audio with another annotation (`not_paired`: why the kept one is not used)."""
    ignored = []
    for path, kept in extra:
        ours, theirs = _told_apart([path, kept], root)
        if kept in not_paired:
            why = not_paired[kept]
        elif kept in unusable:
            why = (
                f"{theirs} has the same stem, and neither is used: the audio files of that stem are ambiguous "
                "(listed above)"
            )
        else:
            why = f"another annotation with the same stem is used: {theirs}"
        ignored.append((path, why if ours == path.name else f"spelt {ours}; {why}"))
    return ignored


def _ambiguous_beside(
    audio: dict[Path, Path], same_stem: dict[Path, list[Path]], annotations: dict[Path, Path], root: Path
) -> list[tuple[Path, str]]:
    """``[(audio, why)]`` of the audio files of one stem beside an annotation of it (``x.wav`` and ``x.flac``
    beside ``x.lab``): the annotation is of one recording, and which is not known, so neither is paired (as
    two audio files that match one annotation of the annotations folder pair none); each is taken out of
    `audio` and the annotation out of `annotations`, as used (not an annotation without audio)."""
    ambiguous = []
    for key, paths in same_stem.items():
        annotation = annotations.get(key)
        if annotation is None:
            continue
        del annotations[key]
        group = sorted([audio.pop(key), *paths])
        shown = dict(zip(group, _told_apart(group, root)))  # (é composed, decomposed; in a folder's name too)
        if all(path.parent == annotation.parent for path in group):
            which = f"{annotation.name} beside them"
        else:  # (folders whose names differ only in Unicode form: one stem to the scan)
            which = f"{_told_apart([annotation] * 2, root)[0]}, of that stem too,"  # (its path, escaped)
        for path in group:
            others = ", ".join(shown[other] for other in group if other != path)
            spelt = "" if shown[path] == path.name else f"spelt {shown[path]}; "
            ambiguous.append(
                (
                    path,
                    f"{path}: {spelt}{others} has the same stem, and {which} could annotate either: neither is "
                    "paired; rename the one it is not of, or list the right pair in a pairs file "
                    "(--data.pairs, evaluate's --pairs)",
                )
            )
    return ambiguous


def _unsupported_audio(media: Path, annotation_name: str | None) -> str:
    """Why `media` is not used: its format, the supported ones, how to convert it (`annotation_name`: the
    annotation it would pair with, if any)."""
    whose = (
        f"the audio of {annotation_name}" if annotation_name else "audio (no annotation found for it either)"
    )
    source = _pastable(media)
    return (
        f"{media}: {whose} is in a format the loader does not read ({media.suffix.lower()}); supported: "
        f"{', '.join(sorted(AUDIO_FILE_SUFFIXES))}. Convert it, e.g. ffmpeg -i {shell_word(source)} "
        f"{shell_word(str(Path(source).with_suffix('.flac')))}"
    )


def _pastable(path: Path) -> str:
    """`path` as a command pasted where this one ran finds it: relative to the current folder where it lies
    inside it (``audio/Queen/09 - Rip.m4a``), else absolute."""
    absolute = Path(os.path.abspath(path))
    cwd = Path(os.getcwd())
    return str(absolute.relative_to(cwd) if absolute.is_relative_to(cwd) else absolute)


def _lab_near_misses(
    audio: list[Path],
    audio_root: Path,
    candidates: list[Path],
    candidates_root: Path,
    same_folder: bool = False,
) -> list[tuple[Path, Path]]:
    """`near_misses`, leaving out a ``.txt`` or ``.chords`` file that is not in the .lab format
    (`looks_like_lab`): notes, or McGill Billboard's ``salami_chords.txt``, which renamed ``.lab`` as the
    hint said failed on its first line. Only the files a hint names are opened (their first 4 KB)."""
    found = near_misses(audio, audio_root, candidates, candidates_root, same_folder=same_folder)
    other_format = {
        near for _, near in found if near.suffix.lower() in OTHER_LAB_SUFFIXES and not looks_like_lab(near)
    }
    if not other_format:
        return found
    candidates = [path for path in candidates if path not in other_format]
    return near_misses(audio, audio_root, candidates, candidates_root, same_folder=same_folder)


def _find_near_misses(
    index: SongIndex, other_labs: list[Path], other_files: dict[Path, list[Path]], other_apart: list[Path]
) -> None:
    """Fill `index.near_misses` (a "did you mean" for audio without an annotation),
    `index.unread_annotations` (files in an annotation format not read that name themselves as one: those of
    the annotations folder, and those named like audio without an annotation) and `index.other_task_labels`
    (another task's labels of the stem of audio without an annotation)."""
    unread_beside = [
        path
        for files in other_files.values()
        for path in files
        if path.suffix.lower() in UNREAD_ANNOTATION_SUFFIXES
    ]
    candidates = index.unpaired_annotations + other_labs + unread_beside
    found = _lab_near_misses(index.unpaired_audio, index.root, candidates, index.root, same_folder=True)
    if index.annotations_dir is not None:
        hinted = {audio for audio, _ in found}
        rest = [path for path in index.unpaired_audio if path not in hinted]
        apart = index.unused_annotations + other_apart
        found += _lab_near_misses(rest, index.root, apart, index.annotations_dir)
    index.near_misses = sorted(found)
    # Of the annotations folder's, only those named like audio are chords to convert: the rest are a
    # dataset's index.csv or README.json, which advice to convert to .lab would only confuse.
    audio = [song.audio_path for song in index.songs] + index.unpaired_audio
    audio += [path for path, _ in index.unsupported_audio + index.ambiguous + index.unreadable_audio]
    audio_names = {loose_name(path.stem) for path in audio}
    unread = {near for _, near in found if near.suffix.lower() in UNREAD_ANNOTATION_SUFFIXES}
    others = set()
    for path in other_apart:
        if path.suffix.lower() not in UNREAD_ANNOTATION_SUFFIXES or path in unread:
            continue
        if loose_name(path.stem) in audio_names:
            unread.add(path)
        else:
            others.add(path)
    index.unread_annotations = sorted(unread)
    index.other_files_apart = sorted(others)
    alone = {pairing_key(path) for path in index.unpaired_audio}
    index.other_task_labels = sorted(
        path
        for key, files in other_files.items()
        if key in alone
        for path in files
        if path.suffix.lower() in OTHER_TASK_LABEL_SUFFIXES
    )


def _explicit_pairs(
    pairs_file: str | Path,
    root: Path,
    audio: dict[Path, Path],
    same_stem: dict[Path, list[Path]],
    other_files: dict[Path, list[Path]],
    annotations: dict[Path, Path],
    index: SongIndex,
) -> tuple[dict[Path, Path], dict[Path, Path]]:
    """``({audio: annotation}, {media: annotation})`` of `pairs_file`'s rows: the songs, and the rows whose
    audio is in a format the loader does not read (an ``.m4a`` of `other_files`), songs skipped as the scan
    skips one it pairs. An annotation of the same stem beside a listed audio file is not used, and listed as
    an ignored duplicate; one the file lists is no longer without audio. Of audio files whose names differ
    only in Unicode form (`same_stem`: one stem to the scan), the one a row names is the song, whichever the
    folder lists first; rows naming two of them are an error showing both names escaped."""
    others = {real(path): path for files in other_files.values() for path in files}

    def unsupported(real_path: str) -> Path | None:  # (only the files a row names are opened)
        path = others.get(real_path)
        return path if path is not None and _looks_like_unsupported_audio(path) else None

    scanned = [*audio.values(), *(path for paths in same_stem.values() for path in paths)]
    readable = {real(path): path for path in scanned}
    readable |= {os.path.abspath(path): path for path in scanned}  # (a row names a link: that name)
    rows = read_song_pairs(Path(pairs_file), readable, root, unsupported)
    pairs = [(audio_path, annotation) for audio_path, annotation, _ in rows]
    _audio_a_row_names(pairs_file, root, audio, same_stem, {audio_path for audio_path, _ in pairs})
    index.parts = {
        audio_path: part for audio_path, _, part in rows if part is not None and real(audio_path) in readable
    }
    listed = {real(annotation) for _, annotation in pairs}
    for key, path in list(annotations.items()):
        if real(path) in listed:
            del annotations[key]
    for audio_path, annotation in pairs:
        beside = annotations.pop(pairing_key(audio_path), None)
        if beside is not None:
            index.duplicates.append(
                (beside, f"{Path(pairs_file).name} pairs {audio_path.name} with {annotation}")
            )
    songs = {path: annotation for path, annotation in pairs if real(path) in readable}
    return songs, {path: annotation for path, annotation in pairs if path not in songs}


def _audio_a_row_names(
    pairs_file: str | Path,
    root: Path,
    audio: dict[Path, Path],
    same_stem: dict[Path, list[Path]],
    named: set[Path],
) -> None:
    """Make the audio file a pairs file names the one of its stem in `audio` (the others of `same_stem`, names
    that differ from it only in Unicode form, are then ignored duplicates). Raises ValueError where it names
    two of one stem: the scan pairs by a name in composed form, which holds one of them."""
    for key, paths in same_stem.items():
        group = [audio[key], *paths]
        chosen = [path for path in group if path in named]
        if len(chosen) > 1:
            shown = " and ".join(_told_apart(chosen, root))
            form = (
                " (their names differ only in Unicode form)"
                if len({nfc(str(p)) for p in chosen}) == 1
                else ""
            )
            raise ValueError(
                f"{pairs_file}: the audio files {shown} are named by two rows, and the scan reads them as one "
                f"stem{form}: rename one of them"
            )
        if chosen and chosen[0] != audio[key]:
            audio[key] = chosen[0]
            same_stem[key] = [path for path in group if path != chosen[0]]


def _told_apart(paths: Sequence[Path], root: Path) -> list[str]:
    """`paths` (one stem to the scan) as a message shows them: their names, or where the names are alike
    (``Café/x.wav`` in two folders whose names differ only in Unicode form) their paths under `root`; escaped
    beyond ASCII where they would print alike (`distinguishable`)."""
    names = [path.name for path in paths]
    if len(set(names)) == 1:
        names = [
            path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path) for path in paths
        ]
    return distinguishable(names)


def _another_used(path: Path, used: Path, root: Path) -> str:
    """Why `path` is an ignored duplicate of `used`, the audio file of its stem that is used."""
    ours, theirs = _told_apart([path, used], root)
    why = f"another audio file with the same stem is used: {theirs}"
    return why if ours == path.name else f"spelt {ours}; {why}"


def _annotations_held(several: SeveralAnnotationsWarning) -> str:
    """``"0: chord (data_source: leadsheet) (used), 1: chord (data_source: performed chords)"``."""
    return ", ".join(
        f"{n}: {who}" + (" (used)" if n == several.used else "") for n, who in enumerate(several.annotators)
    )


def count_vocabulary_changes(segments: Sequence[ChordSegment], index: SongIndex, annotation: Path) -> None:
    """Add a used song's annotated time to `index`, its chords that no chord type represents (they count as
    X) and those reduced to a chord of other notes, with where each is first found in `annotation`, so that
    what the vocabulary does to a dataset's labels (a notation it does not read, a jazz set's extensions)
    shows before training, and where to look."""
    for segment in segments:
        index.annotated_seconds += segment.duration
        changed = False
        if _outside_vocabulary(segment.label):
            count, seconds = index.outside_vocabulary.get(segment.label, (0, 0.0))
            index.outside_vocabulary[segment.label] = (count + 1, seconds + segment.duration)
            changed = True
        reduced = _reduced_label(segment.label)
        if reduced is not None:
            _, count, seconds = index.reduced_labels.get(segment.label, (reduced, 0, 0.0))
            index.reduced_labels[segment.label] = (reduced, count + 1, seconds + segment.duration)
            changed = True
        places = index.label_places.setdefault(segment.label, []) if changed else None
        if places is not None and (not places or places[-1][0] != annotation):  # (one annotation at a time)
            places.append((annotation, segment.start))


@functools.lru_cache(maxsize=4096)
def _outside_vocabulary(label: str) -> bool:
    """Whether no chord type represents `label` (a chord that counts as X; not X itself)."""
    return label != UNKNOWN_CHORD and encode_label(label).chord_type == X_INDEX


#: `reduced_label`, once per label: a dataset repeats a few hundred labels over its segments.
_reduced_label = functools.lru_cache(maxsize=4096)(reduced_label)


def pairing_key(path: Path) -> Path:
    """What pairs audio with its annotation: the path without its suffix, in Unicode's composed form (NFC).
    macOS writes file names decomposed (NFD: ``e`` + a combining accent), while a ``.lab`` written by a script
    or on another system is composed; the names look the same and would otherwise not pair."""
    return Path(nfc(str(path.with_suffix(""))))


#: How media files start (RIFF/RF64 WAV, AIFF, FLAC, Ogg, MP3, CAF, Sun audio, WavPack, Monkey's Audio, ASF,
#: Matroska; MP4's ``ftyp`` is at byte 4): a same-stem file under a suffix no list knows is still audio.
_MEDIA_MAGICS = (b"RIFF", b"RIFX", b"RF64", b"FORM", b"fLaC", b"OggS", b"ID3", b"caff", b".snd", b"wvpk")
_MEDIA_MAGICS += (b"MAC ", b"\x30\x26\xb2\x75", b"\x1a\x45\xdf\xa3")


#: Media types under ``audio/`` that hold no sound to convert: MIDI (RWC ships it beside the audio) and
#: playlists (``.m3u``, ``.pls``).
_NOT_SOUND_TYPES = ("midi", "mpegurl", "scpls")


def _media_type(path: Path) -> str:
    """The media type of `path` by its name (``"audio/mp4"``), ``""`` for none or for one of
    `_NOT_SOUND_TYPES`."""
    kind = mimetypes.guess_type(path.name)[0] or ""
    return "" if any(word in kind for word in _NOT_SOUND_TYPES) else kind


def _named_like_audio(path: Path) -> bool:
    """A file whose name says it is audio the loader does not decode (``.m4a``, ``.wma``, an ``audio/`` type):
    judged by the name alone, so that no file of a large folder is opened for it."""
    return path.suffix.lower() in UNREADABLE_AUDIO_SUFFIXES or _media_type(path).startswith("audio/")


def _looks_like_unsupported_audio(path: Path) -> bool:
    """A file named like audio (or video, which carries audio), or that starts like it, that the loader does
    not decode."""
    if _named_like_audio(path) or _media_type(path).startswith("video/"):
        return True
    if mimetypes.guess_type(path.name)[0] and not _media_type(path):  # MIDI, a playlist: no sound in it
        return False
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
    except OSError:
        return False
    return head.startswith(_MEDIA_MAGICS) or head[4:8] == b"ftyp"


#: How `split_songs` can group songs, so that a group lands whole in one part: ``song`` (each song alone),
#: ``folder`` (the songs of one folder together: an album of ``artist/album/track``), ``top_folder`` (those
#: under one folder of the data folder together: an artist). A song directly in the data folder is alone.
SPLIT_BY = ("song", "folder", "top_folder")


def split_group(name: str, by: str = "song", pattern: str | None = None) -> str:
    """The group `split_songs` keeps together for the song `name` (a `SongEntry.name`: its path under the data
    folder, without suffix): the song itself, its folder or its first folder (see `SPLIT_BY`); or, with
    `pattern` (a regular expression searched in the name), what it matches (its first group where it has
    one): ``/(\\d\\d)_`` groups GuitarSet's takes by player. A name it does not match is a group alone."""
    if by not in SPLIT_BY:
        raise ValueError(
            f"by must be one of {', '.join(SPLIT_BY)} (the recipes' --data.split_by), got {by!r}"
        )
    if pattern is not None:
        match = re.search(pattern, name)
        if match is not None:
            return "pattern:" + (match.group(1) if match.re.groups else match.group(0))
        return f"song:{name}"
    folders = name.split("/")[:-1]
    if by == "song" or not folders:
        return f"song:{name}"
    return "folder:" + "/".join(folders if by == "folder" else folders[:1])


def split_groups(names: Sequence[str], by: str = "song", pattern: str | None = None) -> list[str]:
    """`split_group` of each of `names`. Raises ValueError where `pattern` matches none of them (a pattern
    that groups nothing is a mistake, not a split by song)."""
    groups = [split_group(name, by, pattern) for name in names]
    if pattern is not None and names and not any(group.startswith("pattern:") for group in groups):
        raise ValueError(
            f"--data.group_pattern '{pattern}' matches none of the {len(names)} song names (such as "
            f"{sorted(names)[0]!r}: a song's path under the data folder, without suffix)"
        )
    return groups


def shared_annotations(songs: Sequence[SongEntry]) -> list[list[SongEntry]]:
    """The sets of two or more of `songs` whose annotation is one file (its real path: two spellings or a
    link are one file), each in name order, the sets in the order of their first names: recordings of one
    performance, which only a pairs file pairs so (GuitarSet's ``_mic`` and ``_mix`` of a take share its
    .jams); a split keeps each set in one part (`merged_groups`)."""
    by_file: dict[str, list[SongEntry]] = {}
    for song in sorted(songs, key=lambda s: s.name):
        if song.annotation_path is not None:  # (a song made in memory may have no file)
            by_file.setdefault(real(song.annotation_path), []).append(song)
    return sorted((same for same in by_file.values() if len(same) > 1), key=lambda same: same[0].name)


def merged_groups(annotation_paths: Sequence[Path | None], groups: Sequence[Any]) -> list[Any]:
    """`groups` (the split group of each song: `split_groups`' names, or any labels that sort) with the
    groups of songs whose annotation is one file merged (`annotation_paths`, each song's, compared as real
    paths: `shared_annotations`; None: no file, shared with none): two recordings of one take, one trained
    and the other tested, would score the model's memory of that take's chords, not what it learnt. A merged
    group is named by the smallest of its groups' names, so where no file is shared (or only within a group)
    every group keeps its name, and the split its songs' parts."""
    parent = {group: group for group in groups}

    def root(group: Any) -> Any:
        while parent[group] != group:
            group = parent[group]
        return group

    first_group_of: dict[str, Any] = {}
    for path, group in zip(annotation_paths, groups):
        if path is None:
            continue
        a, b = root(first_group_of.setdefault(real(path), group)), root(group)
        if a != b:  # (the smaller root stays one: each root is the smallest name of its merged group)
            parent[max(a, b)] = min(a, b)
    return [root(group) for group in groups]


def split_position(group: str, seed: int) -> float:
    """Where a group falls in [0, 1) for `split_songs`: a hash of the seed and the group's name alone, so that
    no other song moves it. Names are hashed as a UTF-8 locale reads them (`portable_name`: the same split in
    an ASCII or a Latin-1 locale), in Unicode's composed form: a folder copied off a Mac (which writes names
    decomposed) keeps its split."""
    name = nfc(portable_name(group))
    digest = hashlib.sha256(f"{seed}\0{name}".encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_songs(
    songs: Sequence[SongEntry],
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    by: str = "song",
    pattern: str | None = None,
) -> tuple[list[SongEntry], list[SongEntry], list[SongEntry]]:
    """Split songs (never windows of songs) into train, validation and test sets; each song's part stays the
    same as other songs come and go.

    Each group of songs (a song; with ``by``, a folder or a first folder: `SPLIT_BY`; with ``pattern``, what
    it matches in the names: `split_group`; the groups of songs that share an annotation file merged into
    the one of the smallest name: `merged_groups`) falls at a position in
    [0, 1), a hash of ``seed`` and the group's name (`split_position`): below ``test_fraction`` it is a test
    group, below ``test_fraction + val_fraction`` a validation group, else a training group. Adding or
    removing a song therefore moves no other song (an earlier test song never becomes a training song, and a
    ``--init_from`` run on the grown folder tests on none of its checkpoint's training songs), and the parts
    hold about the fractions asked for: 15 of 100 songs at 0.15, give or take 4. The split depends only on the
    names, ``by`` and ``seed``, not on the order of ``songs``.

    Small folders, where the hash's draw can be far from the fractions: the training part gets at least half
    of its share (4 songs at 0.15 and 0.15 never train on 1), a non-zero validation fraction a group once
    there are two, a non-zero test fraction one once there are three. A group is moved for that only when
    its part would fall short (the one nearest to that part's range), so it may move back as songs are
    added.

    Returns
    -------
    (train, val, test) : three lists of SongEntry, in name order
    """
    ordered = _checked_for_split(songs, val_fraction, test_fraction)
    groups: dict[str, list[SongEntry]] = {}
    named = split_groups([song.name for song in ordered], by, pattern)
    for song, group in zip(ordered, merged_groups([song.annotation_path for song in ordered], named)):
        groups.setdefault(group, []).append(song)
    position = {group: split_position(group, seed) for group in groups}
    parts: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for group in sorted(groups, key=lambda g: (position[g], g)):  # each part in order of position
        at = position[group]
        part = "test" if at < test_fraction else "val" if at < test_fraction + val_fraction else "train"
        parts[part].append(group)
    _fill_small_parts(parts, position, val_fraction, test_fraction)
    return tuple(sorted((s for g in parts[p] for s in groups[g]), key=lambda s: s.name) for p in parts)


def split_songs_as_given(
    songs: Sequence[SongEntry], parts: dict[Path, str], by: str = "song", pattern: str | None = None
) -> tuple[list[SongEntry], list[SongEntry], list[SongEntry]]:
    """Split songs into the parts `parts` names for their audio (``train``, ``val`` or ``test``: a pairs
    file's ``split`` column, a dataset's published split), in name order; every song has one (the scan
    leaves out a song the column lists in no part: `SongIndex.not_in_a_part`). Raises ValueError, naming two
    of its songs, where a group (``by``, ``pattern``: `split_group`) would straddle two parts."""
    ordered = sorted(songs, key=lambda s: s.name)
    first_of: dict[str, SongEntry] = {}
    for song, group in zip(ordered, split_groups([song.name for song in ordered], by, pattern)):
        first = first_of.setdefault(group, song)
        if parts[first.audio_path] != parts[song.audio_path]:
            raise ValueError(
                f"the pairs file puts {first.name} in {parts[first.audio_path]} and {song.name} in "
                f"{parts[song.audio_path]}, but they are one group ({group.split(':', 1)[1]!r}), which "
                "stays in one part: give them the same split, or group otherwise"
            )
    return tuple([song for song in ordered if parts[song.audio_path] == part] for part in _PART_ORDER_GIVEN)


#: The parts `split_songs_as_given` returns, in that order.
_PART_ORDER_GIVEN = ("train", "val", "test")


#: The parts of `split_songs` in the order of their ranges in [0, 1).
_PART_ORDER = {"test": 0, "val": 1, "train": 2}


def _fill_small_parts(
    parts: dict[str, list[str]], position: dict[str, float], val_fraction: float, test_fraction: float
) -> None:
    """Move the fewest groups that give every part asked for a group (validation once there are two, test
    once there are three) and the training part half its share (see `split_songs`). Each move takes, from
    the part most over its share that can spare one, its group nearest to the receiving part's range."""
    n = len(position)
    share = {"train": 1.0 - val_fraction - test_fraction, "val": val_fraction, "test": test_fraction}
    needed = {"train": n >= 1, "val": val_fraction > 0 and n >= 2, "test": test_fraction > 0 and n >= 3}

    def can_spare(part: str) -> bool:
        return len(parts[part]) > int(needed[part])

    def move_to(part: str, donors: Sequence[str]) -> None:
        donor = max(donors, key=lambda p: len(parts[p]) - n * share[p])
        nearest = -1 if _PART_ORDER[donor] < _PART_ORDER[part] else 0  # (each part is in order of position)
        parts[part].append(parts[donor].pop(nearest))
        parts[part].sort(key=lambda g: (position[g], g))

    for part in ("train", "test", "val"):
        if needed[part] and not parts[part]:  # (some other part can spare one: it holds two or more)
            move_to(part, [p for p in parts if p != part and can_spare(p)])
    while len(parts["train"]) < math.ceil(n * share["train"] / 2):
        donors = [p for p in ("val", "test") if can_spare(p)]
        if not donors:
            break
        move_to("train", donors)


def split_songs_shuffled(
    songs: Sequence[SongEntry], val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0
) -> tuple[list[SongEntry], list[SongEntry], list[SongEntry]]:
    """The split made before `split_songs` was stable, kept for the built-in demo songs (whose validation
    songs, and so the published demo figures, come from it): the songs in name order, shuffled with
    ``seed``, then cut into exact shares (a non-zero fraction gets at least one song when there are at least
    three, or two that leave one to train on). Every song's part depends on how many songs there are: a
    folder that changes would reshuffle (`split_songs` does not).

    Returns
    -------
    (train, val, test) : three lists of SongEntry
    """
    ordered = _checked_for_split(songs, val_fraction, test_fraction)
    order = np.random.default_rng(seed).permutation(len(ordered))
    n = len(ordered)

    def count(fraction: float, left: int) -> int:
        k = int(round(n * fraction))
        # Two songs also give a non-zero fraction one where the other still trains: `--data.demo_songs 2`,
        # the least it takes, "a training and a validation song", had no validation song.
        return max(k, 1) if fraction > 0 and (n >= 3 or left >= 2) else k

    n_test = count(test_fraction, n)
    n_val = count(val_fraction, n - n_test)
    test = [ordered[i] for i in order[:n_test]]
    val = [ordered[i] for i in order[n_test : n_test + n_val]]
    train = [ordered[i] for i in order[n_test + n_val :]]
    return train, val, test


def _checked_for_split(
    songs: Sequence[SongEntry], val_fraction: float, test_fraction: float
) -> list[SongEntry]:
    """`songs` in name order, once the fractions and the names are checked."""
    if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction >= 1:
        raise ValueError(
            f"val_fraction ({val_fraction}) and test_fraction ({test_fraction}) must be >= 0 and sum to less "
            "than 1"
        )
    ordered = sorted(songs, key=lambda s: s.name)
    names = [s.name for s in ordered]
    if len(set(names)) != len(names):
        raise ValueError("song names are not unique; split_songs needs one entry per song")
    return ordered


def frame_targets(
    segments: Sequence[ChordSegment], n_frames: int, frame_rate: float
) -> dict[str, np.ndarray]:
    """Per-frame vocabulary indices of an annotation.

    Frame ``i`` is centred at ``i / frame_rate`` seconds and takes the label of the segment containing that
    time. Frames outside the annotated span are ignored (-1 in every head), not ``N``: nobody said what
    plays there, and ``mir_eval`` scores only the annotated span too. (An annotation that marks silence
    says so with ``N`` segments.)

    Returns
    -------
    dict with ``chord_type``, ``root``, ``bass``: int32 [n_frames]; root and bass are -1 on N and on X
    without a root (a label outside the chord types keeps its root and bass: `encode_chord`), all
    three are -1 outside the annotated span.

    Raises
    ------
    ValueError
        For ``n_frames`` that is not a whole number >= 0, or ``frame_rate`` that is not a finite number > 0
        (0 put every frame at infinity, all ignored, and a negative rate labelled the frames at negative
        times, both without an error).
    """
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 0:
        raise ValueError(f"frame_targets: n_frames must be a whole number >= 0, got {n_frames!r}")
    if (
        isinstance(frame_rate, bool)
        or not isinstance(frame_rate, (int, float, np.integer, np.floating))
        or not math.isfinite(frame_rate)
        or frame_rate <= 0
    ):
        raise ValueError(
            f"frame_targets: frame_rate must be a finite number of frames per second > 0 (sample rate / hop "
            f"length), got {frame_rate!r}"
        )
    chord_type = np.full(n_frames, IGNORE_INDEX, dtype=np.int32)
    root = np.full(n_frames, IGNORE_INDEX, dtype=np.int32)
    bass = np.full(n_frames, IGNORE_INDEX, dtype=np.int32)
    if not segments or n_frames == 0:
        return {"chord_type": chord_type, "root": root, "bass": bass}
    starts = np.array([s.start for s in segments])
    ends = np.array([s.end for s in segments])
    times = np.arange(n_frames) / frame_rate
    seg = np.searchsorted(starts, times, side="right") - 1
    inside = (seg >= 0) & (times < ends[np.clip(seg, 0, None)])
    encoded = {label: encode_label(label) for label in {s.label for s in segments}}
    table = np.array(
        [[encoded[s.label].chord_type, encoded[s.label].root, encoded[s.label].bass] for s in segments]
    )
    chord_type[inside] = table[seg[inside], 0]
    root[inside] = table[seg[inside], 1]
    bass[inside] = table[seg[inside], 2]
    return {"chord_type": chord_type, "root": root, "bass": bass}


def whole_semitones(shifts: Sequence[float], name: str) -> tuple[int, ...]:
    """`shifts` as ints, refusing any that is not a whole number of semitones: `name` (the argument) and the
    value in the message. A shift moves the CQT crop by ``shift * bins_per_semitone`` bins, so a fraction
    would be cut to a whole semitone (-0.5, 0, 0.5 would be three unshifted passes). One number (as ``--tta 2``
    is written) or a string is refused too: a string was read a character at a time ("12" as shifts 1 and 2)."""
    if isinstance(shifts, (str, bytes)) or not isinstance(shifts, Iterable):
        raise TypeError(
            f"{name} must be a sequence of whole semitones, e.g. (-2, -1, 0, 1, 2) = tuple(range(-2, 3)), "
            f"got {shifts!r}"
        )
    whole = []
    for shift in shifts:
        try:
            exact = float(shift).is_integer()
        except (TypeError, ValueError):
            exact = False
        if not exact:
            raise ValueError(f"{name} must be whole semitones (..., -1, 0, 1, ...), got {shift!r}")
        whole.append(int(float(shift)))
    return tuple(whole)


def transpose_targets(targets: dict[str, np.ndarray], semitones: int) -> dict[str, np.ndarray]:
    """Move root and bass targets by ``semitones``; ignored entries (-1) stay ignored."""
    out = dict(targets)
    for key in ("root", "bass"):
        values = targets[key]
        out[key] = np.where(values >= 0, (values + semitones) % 12, values).astype(np.int32)
    return out


@dataclass
class ChordSongConfig:
    """How songs become training windows and evaluation chunks.

    Attributes:
        frame_rate: frames per second of the features (sample rate / hop length); used to place labels.
        n_bins: CQT bins the model sees per frame.
        bins_per_semitone: CQT resolution (bins per octave / 12).
        spare_bins: extra bins on *each* side of the ``n_bins`` in what ``feature_fn`` returns, so that
            ``feature_fn`` output has ``n_bins + 2 * spare_bins`` rows. Pitch shifts of up to
            ``spare_bins / bins_per_semitone`` semitones either way are possible.
        window_frames: frames per training window.
        eval_chunk_frames: frames per evaluation chunk; default ``window_frames``.
        pitch_shifts: semitone shifts drawn uniformly for training windows; default -5..+6 (all 12 keys,
            needs ``spare_bins >= 6 * bins_per_semitone``); ``()`` or ``(0,)`` turns augmentation off.
        allow_gaps: fill gaps in annotations with ``N`` instead of raising.
        cache_features: keep each song's features in memory after the first load (a memory-mapped array,
            as the feature cache returns, is copied: a map holds an open file, and one per song would stop
            1,000 songs under the usual ``ulimit -n`` of 1,024). Each loader process keeps its own copy.
        eq_db: reach in dB of a random equaliser applied to each training window (`random_eq_db`: a tilt,
            a bell and a low shelf over the bass range), so that the heads learn pitch, not one mix's
            balance; 0 turns it off. Features must be ``log1p(gain * |CQT|)`` (as the recipe computes them).
        bass_view_bins: bins of a second view of the lowest notes (the same bin grid from the same lowest
            bin, computed with shorter filters), stacked under the first in what ``feature_fn`` returns with
            its own ``spare_bins`` on each side; the model then reads ``n_bins + bass_view_bins`` per frame.
    """

    frame_rate: float
    n_bins: int = 216
    bins_per_semitone: int = 3
    spare_bins: int = 18
    window_frames: int = 256
    eval_chunk_frames: int | None = None
    pitch_shifts: tuple[int, ...] | None = None
    allow_gaps: bool = False
    cache_features: bool = True
    eq_db: float = 0.0
    bass_view_bins: int = 0

    def __post_init__(self):
        if self.frame_rate <= 0:
            raise ValueError(f"ChordSongConfig.frame_rate must be positive, got {self.frame_rate}")
        for name in ("n_bins", "bins_per_semitone", "window_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"ChordSongConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.eq_db <= 40.0:
            raise ValueError(f"ChordSongConfig.eq_db must be from 0 to 40 dB, got {self.eq_db}")
        if self.spare_bins < 0:
            raise ValueError(f"ChordSongConfig.spare_bins must be >= 0, got {self.spare_bins}")
        if not 0 <= self.bass_view_bins <= self.n_bins:
            raise ValueError(
                f"ChordSongConfig.bass_view_bins must be from 0 to n_bins = {self.n_bins}, "
                f"got {self.bass_view_bins}"
            )
        if self.eval_chunk_frames is None:
            self.eval_chunk_frames = self.window_frames
        if self.pitch_shifts is None:
            self.pitch_shifts = tuple(range(-5, 7))
        self.pitch_shifts = whole_semitones(self.pitch_shifts, "ChordSongConfig.pitch_shifts") or (0,)
        reach = max(abs(s) for s in self.pitch_shifts) * self.bins_per_semitone
        if reach > self.spare_bins:
            raise ValueError(
                f"ChordSongConfig: pitch shifts up to {max(abs(s) for s in self.pitch_shifts)} semitones need "
                f"spare_bins >= {reach} (= shift x bins_per_semitone), got spare_bins={self.spare_bins}; "
                "compute the CQT with more spare bins or pass fewer pitch_shifts"
            )

    @property
    def total_bins(self) -> int:
        """Rows ``feature_fn`` must return."""
        view = self.bass_view_bins + 2 * self.spare_bins if self.bass_view_bins else 0
        return self.n_bins + 2 * self.spare_bins + view

    @property
    def input_bins(self) -> int:
        """Values per frame the model reads: the ``n_bins`` window, then the bass view's."""
        return self.n_bins + self.bass_view_bins


def random_eq_db(rng: np.random.Generator, n_bins: int, bins_per_octave: int, reach_db: float) -> np.ndarray:
    """A random smooth equaliser curve over CQT bins, in dB: [n_bins] float.

    The sum of a tilt (up to ``reach_db / 2`` at either end), one bell (up to ``reach_db``, 0.3-1.5 octaves
    wide, anywhere) and a low shelf 1.5-3.5 octaves above the lowest bin (the bass range: from ``-reach_db``
    to ``+reach_db / 2``), each drawn from `rng`.
    """
    octave = np.arange(n_bins) / bins_per_octave
    span = max(float(octave[-1]), 1e-9)
    curve = rng.uniform(-1, 1) * reach_db * (octave / span - 0.5)
    centre, width = rng.uniform(0.0, span), rng.uniform(0.3, 1.5)
    curve += rng.uniform(-1, 1) * reach_db * np.exp(-0.5 * ((octave - centre) / width) ** 2)
    corner = rng.uniform(1.5, 3.5)
    curve += rng.uniform(-1.0, 0.5) * reach_db / (1.0 + np.exp((octave - corner) / 0.15))
    return curve


def apply_eq(features: np.ndarray, curve_db: np.ndarray) -> np.ndarray:
    """``log1p(gain * |CQT|)`` features [frames, bins] as if the audio had gone through `curve_db` [bins]:
    exact, since ``expm1`` recovers ``gain * |CQT|``."""
    return np.log1p(np.expm1(features) * (10.0 ** (curve_db / 20.0))).astype(np.float32)


def crop_bins(features: np.ndarray, config: ChordSongConfig, shift: int = 0) -> np.ndarray:
    """[total_bins, frames] features → [frames, input_bins] float32, shifted up by ``shift`` semitones.

    Content at bin ``b`` of the unshifted view appears at ``b + shift * bins_per_semitone``: the crop starts
    that many bins lower.
    """
    if abs(shift) * config.bins_per_semitone > config.spare_bins:
        raise ValueError(f"pitch shift {shift} needs more than the {config.spare_bins} spare bins")
    return crop_views(
        features, config.n_bins, config.spare_bins, config.bass_view_bins, shift * config.bins_per_semitone
    )


def crop_views(features, n_bins: int, spare_bins: int, bass_view_bins: int, shift_bins: int) -> np.ndarray:
    """[..., rows, frames] → [..., frames, n_bins + bass_view_bins], each view's window moved up.

    The rows are the first view's ``n_bins`` with ``spare_bins`` on each side, then (``bass_view_bins`` > 0)
    the bass view's, with as many spare bins: both views start at the same frequency, so one shift moves both.
    """
    if abs(shift_bins) > spare_bins:
        raise ValueError(f"a shift of {shift_bins} bins needs more than the {spare_bins} spare bins")
    start = spare_bins - shift_bins
    window = features[..., start : start + n_bins, :]
    if bass_view_bins:
        view_start = n_bins + 2 * spare_bins + start
        window = np.concatenate([window, features[..., view_start : view_start + bass_view_bins, :]], axis=-2)
    return np.ascontiguousarray(np.swapaxes(window, -1, -2), dtype=np.float32)


def _holds_open_file(array: np.ndarray) -> bool:
    """Whether `array` reads a memory map (`np.load(..., mmap_mode=...)`): Python's mmap keeps its own
    descriptor of the file open for as long as the map lives."""
    while array is not None:
        if isinstance(array, mmap.mmap):
            return True
        array = getattr(array, "base", None)
    return False


def _song_entries(songs: Sequence[SongEntry]) -> list[SongEntry]:
    """`songs` as a list, or a TypeError naming the argument: a folder is the likeliest slip (the
    recipe's ``--data DIR``), which used to fail with "'str' object has no attribute 'read_segments'"."""
    expected = "SongEntry objects, e.g. scan_song_folder(DIR).songs"
    if isinstance(songs, (str, os.PathLike)):
        raise TypeError(f"ChordSongDataset(songs=...): expected {expected}, got the path {str(songs)!r}")
    try:
        songs = list(songs)
    except TypeError:
        raise TypeError(
            f"ChordSongDataset(songs=...): expected {expected}, got {type(songs).__name__}"
        ) from None
    for i, song in enumerate(songs):
        if not isinstance(song, SongEntry):
            raise TypeError(
                f"ChordSongDataset(songs=...): item {i} is a {type(song).__name__}, expected {expected}"
            )
    return songs


class ChordSongDataset(Dataset):
    """Training windows or evaluation chunks of annotated songs (see the module docstring).

    Parameters
    ----------
    songs : sequence of SongEntry
        E.g. one part of `split_songs`.
    feature_fn : callable
        ``feature_fn(audio_path) -> np.ndarray [config.total_bins, frames]`` (CQT with spare bins, at
        ``config.frame_rate``). Called in loader workers; cache expensive features on disk yourself.
    config : ChordSongConfig or dict
        A dict is read as ``ChordSongConfig(**config)`` (an unknown field is refused by name).
    train : bool
        Random pitch-shifted windows (True) or every chunk of every song, unshifted (False).
    seed : int
        Seed of the window positions and shifts. The draws depend on (seed, epoch, index): the loader calls
        `set_epoch`, so each epoch sees new windows and a resumed run the same ones, whatever the batch size,
        worker or data-parallel rank.

    Raises
    ------
    AnnotationError
        If an annotation cannot be read (file and line in the message).
    """

    def __init__(
        self,
        songs: Sequence[SongEntry],
        feature_fn: Callable[[Path], np.ndarray],
        config: ChordSongConfig | Mapping[str, Any],
        train: bool = True,
        seed: int = 0,
    ):
        songs = _song_entries(songs)
        if len(songs) == 0:
            raise ValueError("ChordSongDataset needs at least one song")
        if not callable(feature_fn):
            raise TypeError(
                "ChordSongDataset(feature_fn=...): expected a function of an audio path returning its "
                f"features [total_bins, frames], got {type(feature_fn).__name__}"
            )
        config = config_argument(ChordSongConfig, config, "ChordSongDataset(config=...)")
        self.songs = songs
        self.feature_fn = feature_fn
        self.config = config
        self.train = train
        self.seed = int(seed)
        self.epoch = 0
        self.segments = [song.read_segments(allow_gaps=config.allow_gaps) for song in self.songs]
        self._features: dict[int, np.ndarray] = {}
        self._targets: dict[int, dict[str, np.ndarray]] = {}
        if train:
            # Windows per song in proportion to its annotated span (known without loading audio), where
            # `_window_starts` draws them: a song annotated on 10 s of 56 s of audio is 10 s of training.
            lengths = [
                max(1, math.ceil((s[-1].end - s[0].start) * config.frame_rate / config.window_frames))
                for s in self.segments
            ]
            self._song_of_item = np.repeat(np.arange(len(self.songs)), lengths)
        else:
            # (song, start frame) of every chunk; this loads every song's features once, to count frames.
            self._chunks = [
                (i, start)
                for i in range(len(self.songs))
                for start in range(0, self.n_frames(i), config.eval_chunk_frames)
            ]

    def __len__(self) -> int:
        return len(self._song_of_item) if self.train else len(self._chunks)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch used for window draws outside a `DataLoader`."""
        self.epoch = int(epoch)

    # -- per-song access (also what song-level evaluation uses) -----------------------------------------

    def song_features(self, i: int) -> np.ndarray:
        """Features of song ``i`` as returned by ``feature_fn``: [total_bins, frames]."""
        if i in self._features:
            return self._features[i]
        features = np.asarray(self.feature_fn(self.songs[i].audio_path))
        if features.ndim != 2 or features.shape[0] != self.config.total_bins:
            raise ValueError(
                f"{self.songs[i].audio_path}: feature_fn returned shape {features.shape}, expected "
                f"[{self.config.total_bins} (n_bins {self.config.n_bins} + 2 x spare_bins "
                f"{self.config.spare_bins}{self._bass_view_rows()}), frames]"
            )
        if self.config.cache_features:
            if _holds_open_file(features):
                features = np.array(features)  # in memory, so that the map and its file close
            self._features[i] = features
        return features

    def _bass_view_rows(self) -> str:
        view = self.config.bass_view_bins
        return f", then the bass view: {view} + 2 x {self.config.spare_bins}" if view else ""

    def n_frames(self, i: int) -> int:
        """Number of feature frames of song ``i``."""
        return self.song_features(i).shape[1]

    def song_targets(self, i: int) -> dict[str, np.ndarray]:
        """Frame targets of song ``i`` (see `frame_targets`)."""
        if i not in self._targets:
            n_frames = self.n_frames(i)
            audio_seconds = n_frames / self.config.frame_rate
            annotated = self.segments[i][-1].end
            if annotated > audio_seconds + MAX_ANNOTATION_OVERHANG_S:
                warnings.warn(
                    f"{self.songs[i].annotation_path} ends at {seconds_text(annotated)} s but the features "
                    f"of {self.songs[i].audio_path} cover {seconds_text(audio_seconds)} s: another version of "
                    "the recording, or a wrong frame_rate?",
                    stacklevel=2,
                )
            self._targets[i] = frame_targets(self.segments[i], n_frames, self.config.frame_rate)
        return self._targets[i]

    # -- items -----------------------------------------------------------------------------------------

    def _rng(self, index: int) -> np.random.Generator:
        # A function of (seed, epoch, item) only, not of the batch an item lands in: so an item draws the
        # same window and shift whatever the batch size, the worker or the data-parallel rank that loads it
        # (2 ranks of batch 16 then train exactly as one process of batch 32). The loader sets the epoch.
        return np.random.default_rng([self.seed, self.epoch, index])

    def _window_starts(self, song: int) -> tuple[int, int]:
        """The first and last start frame of song `song`'s training windows: each window lies within the
        annotated span (from its first labelled frame to its last), or covers all of a span shorter than a
        window; all within the audio. Frames outside the span are ignored by the loss, so a window drawn
        over the whole recording of a partly annotated song would mostly teach nothing. On a song annotated
        throughout, these are 0 and the last start in the audio."""
        n, window = self.n_frames(song), self.config.window_frames
        labelled = np.flatnonzero(self.song_targets(song)["chord_type"] != IGNORE_INDEX)
        last_start = max(0, n - window)
        if labelled.size == 0:  # (an annotation wholly past the audio's features: the audio, as it is)
            return 0, last_start
        span_first, span_last = int(labelled[0]), int(labelled[-1])
        if span_last - span_first + 1 >= window:
            first, last = span_first, span_last - window + 1
        else:
            first, last = span_last - window + 1, span_first
        return min(max(first, 0), last_start), min(max(last, 0), last_start)

    def _item(self, song: int, start: int, length: int, shift: int) -> dict[str, np.ndarray]:
        features = self.song_features(song)
        targets = self.song_targets(song)
        stop = min(start + length, features.shape[1])
        real = stop - start
        item = {"features": np.zeros((length, self.config.input_bins), np.float32)}
        item["features"][:real] = crop_bins(features[:, start:stop], self.config, shift)
        moved = transpose_targets({k: v[start:stop] for k, v in targets.items()}, shift)
        for key in ("chord_type", "root", "bass"):
            item[key] = np.full(length, IGNORE_INDEX, np.int32)
            item[key][:real] = moved[key]
        item["mask"] = np.zeros(length, np.float32)
        item["mask"][:real] = 1.0
        return item

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        # A float, a bool or a string got past the range check and failed deep in numpy with raw messages
        # ("only integers, slices ... are valid indices", "'<=' not supported between 'int' and 'str'").
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(
                f"ChordSongDataset index must be a whole number (one item), got {type(index).__name__}"
            )
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        if not self.train:
            song, start = self._chunks[index]
            item = self._item(song, start, self.config.eval_chunk_frames, 0)
            item["song_index"] = np.int32(song)
            item["start_frame"] = np.int32(start)
            return item
        song = int(self._song_of_item[index])
        rng = self._rng(index)
        first, last = self._window_starts(song)
        start = int(rng.integers(first, last + 1))
        shift = int(rng.choice(self.config.pitch_shifts))
        item = self._item(song, start, self.config.window_frames, shift)
        if self.config.eq_db:
            curve = random_eq_db(
                rng, self.config.n_bins, 12 * self.config.bins_per_semitone, self.config.eq_db
            )
            # The bass view's bins sit at the frequencies of the first view's lowest.
            curve = np.concatenate([curve, curve[: self.config.bass_view_bins]])
            item["features"] = apply_eq(item["features"], curve)
        return item
