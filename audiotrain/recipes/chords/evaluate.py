"""Song-level evaluation of a chord model: transcribe songs, write ``.lab`` files, score with ``mir_eval``.

`evaluate_songs` runs the same path as `predict` (audio → features → windows → posteriors → decoding) on
annotated songs, writes one ``.lab`` per song, and returns the `mir_eval.chord` scores (pooled and per-song
median), a frame-level chord-type confusion matrix, the reference chords whose misreading costs the most
time (`audiotrain.metrics.chord_errors`: for majmin, and for the bass where majmin is right) and the
transcription speed. `compare_results` sets two checkpoints' results on the same songs side by side, with
each difference's bootstrap interval paired over songs (`evaluate --against`).

A song whose audio does not decode (NaN/Inf samples, data truncated past the header: an `AudioError`),
or is digital silence under an annotation with chords (`silent_song_reason`), is skipped, named with the
reason in `ChordScores.skipped`, ``scores.json`` and ``scores.md``, and the others are scored; if no song is
left, `evaluate_songs` raises `ValueError`. Songs that the folder scan left out before
(`SongIndex.skipped_songs`) are passed in as `skipped` and listed the same way.

Beside the ``mir_eval`` scores, ``scores.json`` holds frame-level figures (`FRAME_METRICS_DOC`): each
head's accuracy on the transcription, the top-k accuracy of the posteriors, per-class precision, recall
and F1 of the chord type with its confusion counts. Frames whose reference is ``X`` are left out of them,
as ``mir_eval`` leaves ``X`` out of every comparison, and so are frames outside the annotated span.

A reference that runs past the end of its audio by at most `MAX_REFERENCE_OVERHANG_S` is trimmed to the
audio (see `trim_reference`) and listed (`EvaluationResult.trimmed`: in scores.md, scores.json's
``trimmed_references`` and `trimmed_note`), since ``mir_eval`` on the files as they are scores the overhang
too; a longer overhang is scored as it is, warned about and listed in `ChordScores.overhanging`. With
``trim_reference=False`` (``--trim_reference false``) no reference is trimmed: every song is scored as
``mir_eval.chord.evaluate`` scores its annotation and written ``.lab``, for comparisons with published
figures (`reference_span_words` says which way in the output, scores.json's ``trim_reference`` records it). A
reference whose gaps were read as N (``allow_gaps``) is listed too (`EvaluationResult.gap_filled`,
``gap_filled_references``, `gap_filled_note`): ``mir_eval`` on the file reads a gap as the chord before it.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from audiotrain._file_names import local_path, portable_name, stored_name
from audiotrain._files import OutputWriteError, json_text, once_writable, read_json_file, write_output
from audiotrain._overlap import work_behind
from audiotrain._system import versions
from audiotrain._text import listed, plural, without_control_characters
from audiotrain.audio import AudioError
from audiotrain.chords.decode import decode_frames_and_offsets, frames_to_segments
from audiotrain.chords.harte import NO_CHORD, PITCH_CLASS_NAMES, UNKNOWN_CHORD
from audiotrain.chords.lab import DEFAULT_TOLERANCE, ChordSegment, with_lab_times, write_lab
from audiotrain.chords.vocabulary import (
    CHORD_TYPES,
    IGNORE_INDEX,
    X_INDEX,
)
from audiotrain.datasets._folders import distinguishable
from audiotrain.datasets.chord_demo import DEMO_FOLDER
from audiotrain.datasets.chord_songs import SongEntry, frame_targets
from audiotrain.metrics.chord_errors import LostTime, costliest_errors, format_errors
from audiotrain.metrics.chord_scores import (
    CHORD_METRICS,
    INTERVAL_CONFIDENCE,
    MAX_REFERENCE_OVERHANG_S,
    ChordScores,
    difference_interval,
    percent_or_dash,
    score_songs,
    uncovered_note,
)
from audiotrain.metrics.chord_scores import (
    trim_reference as trim_reference_to,  # (evaluate_songs's flag has the plain name)
)
from audiotrain.metrics.classification import compute_confusion_matrix, per_class_metrics_from_confusion
from audiotrain.metrics.plot_loading import load_plots, plots_wanted
from audiotrain.metrics.tracker import MetricsTracker
from audiotrain.models.chord_model import joint_chord_index
from audiotrain.recipes._run import is_inside, name_too_long
from audiotrain.recipes.chords.config import DIGITAL_SILENCE, default_cache_dir, silent_song_reason
from audiotrain.recipes.chords.data import TranscriptionProgress, header_seconds
from audiotrain.recipes.chords.model_checkpoint import refuse_cv_run, resolve_model_checkpoint
from audiotrain.recipes.chords.predict import (
    ChordPredictor,
    SongPosteriors,
    folds_case,
    one_file_reason,
    sharing_one_file,
)
from audiotrain.recipes.chords.song_record import checkpoint_run_record, stored_song_record
from audiotrain.recipes.chords.task import stored_settings
from audiotrain.recipes.config_cli import RUN_CONFIG_KEY
from audiotrain.recipes.split_record import run_record_of
from audiotrain.train import checkpoint as ckpt

import mlx.core as mx
import numpy as np

#: What `evaluate_songs` writes into its output folder besides one ``<song>.lab`` per song.
EVALUATION_FILES = ("scores.json", "scores.md", "confusion_matrix.png")
#: What ``evaluate --against`` writes there too (`Comparison.to_dict` and `Comparison.table`).
COMPARISON_FILES = ("comparison.json", "comparison.md")

#: Comparisons printed in the summary table (all of `CHORD_METRICS` go to scores.json).
SUMMARY_METRICS = ("root", "majmin", "majmin_inv", "mirex", "triads", "sevenths", "sevenths_inv", "tetrads")


def not_shown_note(metrics: Sequence[str], where: str, written: bool = True) -> str | None:
    """One line naming the scores of `CHORD_METRICS` a table leaves out and `where` they are; None if none.
    Not `written` (no ``-o``): that ``-o DIR`` writes them there, not that they are in files never written."""
    others = [metric for metric in CHORD_METRICS if metric not in metrics]
    if not others:
        return None
    found = f"are in {where}" if written else f"are not printed: -o DIR writes them to {where} in DIR"
    return f"the other scores ({', '.join(others)}) {found}"


#: How many of the costliest errors scores.json and scores.md list, per kind.
ERRORS_LISTED = 10
#: How many references trimmed to their audio's end the printed output lists (scores.md lists every one).
TRIMMED_LISTED = 10
#: How many of the scored songs the checkpoint trained on the output names (scores.json lists every one).
TRAINED_ON_LISTED = 3
#: The k of the top-k accuracies of the chord heads' posteriors in scores.json.
TOP_K = (1, 2, 3, 4, 5)
#: Decoded heads scored frame by frame, with their classes: a root or bass column for "none" counts the
#: frames the transcription reads as N or X where the reference has a chord.
FRAME_HEADS = {
    "chord_type": list(CHORD_TYPES),
    "root": [*PITCH_CLASS_NAMES, "none"],
    "bass": [*PITCH_CLASS_NAMES, "none"],
}
FRAME_METRICS_DOC = (
    "frames of the reference's annotated span, those labelled X left out (as mir_eval leaves X out); "
    "root and bass also leave out N, and keep a chord outside the 32 types (which counts as X) with its "
    "root and bass, as mir_eval's root scores it. 'transcription': accuracy of the decoded .lab per frame; "
    "'posteriors': top-k accuracy of each head's posteriors before decoding (top1: its argmax); "
    "'chord_type': per-class precision, recall, F1 and support (reference frames) of the transcription's chord type, for "
    "every class in the reference or the transcription (F1 0 for one never in the reference), with "
    "macro_f1 over those classes; 'confusion': frame counts [reference][transcription] of each head (the "
    "root's and bass's 'none' column: read as N or X; their 'none' row stays 0). Accuracies are 0-1, null "
    "where they cover no frame (root and bass of all-N references)"
)


@dataclass
class TrimmedReference:
    """A reference that ran past the end of its audio by more than the rounding of its times
    (`DEFAULT_TOLERANCE`) and at most `MAX_REFERENCE_OVERHANG_S`, and was scored up to the audio's end
    (`trim_reference`): the files and both ends, in seconds. ``mir_eval`` on the
    files as they are scores the overhang too, against an estimate padded with N there: these are the songs
    whose scores differ from plain ``mir_eval``'s."""

    annotation: str
    audio: str
    reference_end: float
    audio_end: float
    #: What the reference was trimmed to, as the notes say it: the audio's end, or (``score``, which reads
    #: no audio) the transcription's, which is the audio's where ``predict`` wrote it.
    end_of: str = "audio"

    @property
    def overhang(self) -> float:
        return self.reference_end - self.audio_end

    def describe(self) -> str:
        return f"{self.annotation} runs {self.overhang:.3f} s past {self.audio}: scored up to {self.audio_end:.3f} s"


def reference_span_words(trim_reference: bool, end_of: str = "audio") -> str:
    """How the references were scored, as the line above the score table and scores.md say it: trimmed to
    the `end_of`'s end (the audio's; ``score``: the transcription's), or as their files hold them."""
    if trim_reference:
        return (
            f"references up to {MAX_REFERENCE_OVERHANG_S:g} s past the {end_of}'s end trimmed to the "
            f"{end_of}'s end (--trim_reference true)"
        )
    return (
        "references scored as their files hold them, as mir_eval.chord.evaluate scores them "
        "(--trim_reference false)"
    )


def _songs_note(songs: Mapping[str, Any], headline: str, listed: int | None) -> str:
    """`headline`, then a line per song (`describe()` of each; the first `listed`, all by default)."""
    items = list(songs.items())
    shown = items if listed is None else items[:listed]
    # (an entry of several lines, a file named with a line break, continues indented, as in the scores' list)
    lines = [headline, *(f"- {name}: {song.describe()}".replace("\n", "\n  ") for name, song in shown)]
    if len(shown) < len(items):
        lines.append(f"- ... and {len(items) - len(shown)} more (scores.md and scores.json list them all)")
    return without_control_characters("\n".join(lines))  # (the songs' names are their files': ESC, BEL, ...)


def trimmed_note(trimmed: Mapping[str, TrimmedReference], listed: int | None = None) -> str:
    """What the output and scores.md say of the references scored up to their audio's end: a count, then a
    line per song (the first `listed` of them; all by default). "" when there is none."""
    if not trimmed:
        return ""
    several = len(trimmed) != 1
    end_of = next(iter(trimmed.values())).end_of
    headline = (
        f"{len(trimmed)} reference{'s' * several} {'run' if several else 'runs'} past the end of the "
        f"{end_of} (by {MAX_REFERENCE_OVERHANG_S:g} s at most), scored up to the {end_of}'s end; mir_eval on "
        "the files as "
        f"they are scores the overhang too (against N), so its figures for {'these songs' if several else 'it'} "
        "differ:"
    )
    return _songs_note(trimmed, headline, listed)


@dataclass
class GapFilledReference:
    """A reference with gaps between its segments, read as N (``allow_gaps``, ``--allow_gaps``): the file,
    the gaps' number and their seconds. ``mir_eval`` on the file as it is reads a gap as the chord before it
    going on: these songs' scores differ from plain ``mir_eval``'s too."""

    annotation: str
    gaps: int
    seconds: float

    def describe(self) -> str:
        return f"{self.annotation}: {plural(self.gaps, 'gap')} ({self.seconds:.3f} s) read as N"


def gap_filled_note(filled: Mapping[str, GapFilledReference], listed: int | None = None) -> str:
    """What the output and scores.md say of the references whose gaps were read as N: a count, then a line
    per song (the first `listed`; all by default). "" when there is none."""
    if not filled:
        return ""
    several = len(filled) != 1
    headline = (
        f"{len(filled)} reference{'s' * several} with gaps between segments, read as N (allow_gaps); mir_eval on "
        f"the files as they are reads a gap as the chord before it going on, so its figures for "
        f"{'these songs' if several else 'this song'} differ:"
    )
    return _songs_note(filled, headline, listed)


@dataclass
class EvaluationResult:
    """Scores of a set of songs, the chord-type confusion [true, predicted] over frames, and speed."""

    scores: ChordScores
    confusion: np.ndarray
    audio_seconds: float
    wall_seconds: float
    #: (reference, estimate) segments of every scored song.
    pairs: dict[str, tuple[list[ChordSegment], list[ChordSegment]]] = field(default_factory=dict)
    #: Frame counts [reference, transcription] of each of `FRAME_HEADS` (``confusion`` is the chord type's).
    confusions: dict[str, np.ndarray] = field(default_factory=dict)
    #: Accuracy (percent) of each head's posteriors, and top-k of the chord heads (`MetricsTracker`).
    posteriors: dict[str, float] = field(default_factory=dict)
    #: The songs whose reference was scored up to the end of their audio (`TrimmedReference`).
    trimmed: dict[str, TrimmedReference] = field(default_factory=dict)
    #: The scored songs whose reference had gaps, read as N (`GapFilledReference`).
    gap_filled: dict[str, GapFilledReference] = field(default_factory=dict)
    #: The scored songs the checkpoint trained on, per part (`songs_trained_on`); None: not known.
    trained_on: dict[str, list[str]] | None = None
    #: What was scored (`scored_record`: checkpoint, data, build, decoding, date); None: not known.
    scored: dict[str, Any] | None = None
    #: False: no reference was trimmed to its audio's end (``--trim_reference false``): the scores are
    #: mir_eval.chord.evaluate's on the files.
    trim_reference: bool = True

    def costliest_errors(self, top: int = ERRORS_LISTED) -> dict[str, list[LostTime]]:
        """The reference chords whose misreading costs majmin the most time, and those whose bass costs
        majmin_inv the most where majmin is right."""
        return {
            "majmin": costliest_errors(self.pairs, "majmin", top=top),
            "majmin_inv_bass": costliest_errors(self.pairs, "majmin_inv", given="majmin", top=top),
        }

    @cached_property
    def listed_errors(self) -> dict[str, list[LostTime]]:
        """The `ERRORS_LISTED` costliest errors of each kind, as scores.json and scores.md list them."""
        return self.costliest_errors()

    @property
    def unknown_chord_note(self) -> str:
        """Where the transcriptions say X, how long: mir_eval's mirex counts an estimated X as right against
        any chord, so a mirex far above root says so ("" where no transcription says X)."""
        said = scored = 0.0
        for reference, estimate in self.pairs.values():
            if not reference:
                continue
            start, end = reference[0].start, reference[-1].end
            scored += end - start
            said += sum(
                max(0.0, min(s.end, end) - max(s.start, start)) for s in estimate if s.label == UNKNOWN_CHORD
            )
        if said <= 0:
            return ""
        return (
            f"note: the transcriptions say X (unknown chord) over {said:.1f} s, "
            f"{100 * said / scored:.1f}% of the time scored: mir_eval's mirex counts an estimated X as right "
            "against any chord (and root against N), the other scores as wrong"
        )

    @property
    def frames_note(self) -> str:
        """Why the frame figures and the confusion plot are empty, when they are ("" otherwise)."""
        if self.confusion.sum():
            return ""
        return (
            "no reference frame to score frame by frame (every annotated frame is X, or a chord outside the "
            "32 chord types, which counts as X): the chord-type figures cover nothing (root and bass only "
            "the chords' roots and basses) and no confusion matrix is drawn"
        )

    def report(self) -> str:
        """scores.md: the score table, each chord type's precision, recall and F1, the costliest errors."""
        errors = self.listed_errors
        lines = [scored_line(self.scored), ""] if self.scored else []
        end_of = "transcription" if (self.scored or {}).get("predictions") else "audio"  # (score's: no audio)
        lines += [f"Scored with {reference_span_words(self.trim_reference, end_of)}.", ""]
        lines += [self.scores.table(), ""]
        if self.trimmed:
            lines += [trimmed_note(self.trimmed), ""]
        if self.gap_filled:
            lines += [gap_filled_note(self.gap_filled), ""]
        if self.unknown_chord_note:
            lines += [self.unknown_chord_note, ""]
        if self.frames_note:
            lines += [f"Note: {self.frames_note}.", ""]
        else:
            lines += [*chord_type_table(self.frame_metrics()["chord_type"]), ""]
        for title, kind in (
            ("Where majmin is lost (% of its scored time)", "majmin"),
            ("Where the bass costs majmin_inv, majmin right (% of its scored time)", "majmin_inv_bass"),
        ):
            lines += [f"{title}:", "", "```text", format_errors(errors[kind]) or "  (nothing)", "```", ""]
        return "\n".join(lines)

    @property
    def realtime_factor(self) -> float:
        """Seconds of audio transcribed per second of wall time."""
        return self.audio_seconds / max(self.wall_seconds, 1e-9)

    def frame_metrics(self) -> dict:
        """scores.json's ``frames``: see `FRAME_METRICS_DOC`."""
        per_class = per_class_metrics_from_confusion(self.confusion)
        predicted = self.confusion.sum(axis=0)
        posteriors: dict[str, dict[str, float]] = {}
        for key, percent in self.posteriors.items():  # "<head>_acc", "<head>_top<k>_acc"
            head, _, kind = key[: -len("_acc")].rpartition("_top")
            head, kind = (head, f"top{kind}") if head else (kind, "top1")
            posteriors.setdefault(head, {})[kind] = _fraction(percent)
        return {
            "about": FRAME_METRICS_DOC,
            "scored_frames": int(self.confusion.sum()),
            "transcription": {
                f"{head}_accuracy": _fraction(per_class_metrics_from_confusion(counts)["accuracy"])
                for head, counts in self.confusions.items()
            },
            "posteriors": {head: dict(sorted(ks.items())) for head, ks in posteriors.items()},
            "chord_type": {
                "macro_f1": None if np.isnan(per_class["macro_f1"]) else per_class["macro_f1"],
                "per_class": {
                    name: {
                        "precision": float(per_class["precision"][i]),
                        "recall": float(per_class["recall"][i]),
                        "f1": float(per_class["f1"][i]),
                        "support": int(per_class["support"][i]),
                        "predicted": int(predicted[i]),
                    }
                    for i, name in enumerate(CHORD_TYPES)
                    if per_class["support"][i] or predicted[i]
                },
            },
            "confusion": {
                head: {"classes": FRAME_HEADS[head], "counts": counts.tolist()}
                for head, counts in self.confusions.items()
            },
        }

    def summary(self) -> dict:
        return {
            "scored": self.scored,
            "trim_reference": self.trim_reference,
            **self.scores.to_dict(),
            "frames": self.frame_metrics(),
            "audio_seconds": self.audio_seconds,
            "wall_seconds": self.wall_seconds,
            "audio_seconds_per_second": self.realtime_factor,
            "costliest_errors": {
                kind: [asdict(error) for error in errors] for kind, errors in self.listed_errors.items()
            },
            "trimmed_references": {
                name: {**asdict(reference), "overhang": reference.overhang}
                for name, reference in self.trimmed.items()
            },
            "gap_filled_references": {name: asdict(reference) for name, reference in self.gap_filled.items()},
            "songs_trained_on": self.trained_on,
        }


def chord_type_table(chord_type: Mapping[str, Any]) -> list[str]:
    """scores.md's table of each chord type's precision, recall and F1 over frames (in %) with its frames in
    the reference and the transcription, from `frame_metrics`'s ``chord_type``: a musician reads there which
    qualities the model confuses, without opening scores.json."""
    macro = chord_type["macro_f1"]
    lines = [
        "Chord types frame by frame (% of frames; reference X left out, as mir_eval leaves it out; "
        f"macro F1 {'-' if macro is None else f'{100 * macro:.2f}'}):",
        "",
        "| chord type | precision | recall | F1 | reference frames | transcribed frames |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in chord_type["per_class"].items():
        figures = " | ".join(f"{100 * row[key]:.2f}" for key in ("precision", "recall", "f1"))
        lines.append(f"| {name} | {figures} | {row['support']} | {row['predicted']} |")
    return lines


def scored_record(predictor: ChordPredictor, data: str | Path | None) -> dict[str, Any]:
    """What an evaluation scores, as scores.json and comparison.json record it (``scored``): so that scores
    re-made over weeks, with other builds, checkpoints or decoding, say which is which. The checkpoint
    (absolute; None for a model not loaded from one), the epochs it had trained when saved (``epoch``: a
    count, so 1 more than history.json's number of the epoch it was saved at) and its step, the data folder,
    the audiotrain build, the decoding and test-time pitch shifts, and the date (UTC, ISO 8601)."""
    checkpoint = predictor.checkpoint
    progress: dict[str, Any] = {}
    if checkpoint is not None:
        with contextlib.suppress(OSError, ValueError, ckpt.CheckpointError, AttributeError):
            progress = ckpt.read_state(checkpoint).get("progress") or {}
    return {
        "checkpoint": None if checkpoint is None else os.path.abspath(checkpoint),
        "epoch": progress.get("epoch"),
        "step": progress.get("global_step"),
        "data": None if data is None else os.path.abspath(data),
        "audiotrain": versions()["audiotrain"],
        "decode": asdict(predictor.decode),
        "tta_shifts": list(predictor.tta_shifts),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def trained_for(scored: dict[str, Any]) -> str:
    """How far the scored checkpoint had trained, "after 2 epochs, step 24". ``scored["epoch"]`` counts the
    epochs done, where history.json and the ``epoch=NNN`` folders number them from 0: "epoch 2" read
    there names the epoch after the one this checkpoint was saved at."""
    epochs = scored["epoch"]
    done = plural(epochs, "epoch") if isinstance(epochs, int) else f"{epochs} epochs"
    return f"after {done}, step {scored.get('step')}"


def scored_line(scored: dict[str, Any]) -> str:
    """scores.md's first line: what was scored (`scored_record`; the ``score`` command's: ``predictions``)."""
    if scored.get("predictions"):  # transcriptions read from .lab files, no model run
        return (
            f"Scored: the transcriptions in {scored['predictions']} against the annotations in "
            f"{scored.get('data')}; audiotrain {scored.get('audiotrain')}; {scored.get('date')}"
        )
    where = "" if scored.get("epoch") is None else f" ({trained_for(scored)})"
    decode = ", ".join(f"{name} {value}" for name, value in (scored.get("decode") or {}).items())
    return (
        f"Scored: {scored.get('checkpoint') or 'a model not loaded from a checkpoint'}{where} on "
        f"{scored.get('data') or 'songs given one by one'}; audiotrain {scored.get('audiotrain')}; decoding "
        f"{decode}; {scored.get('date')}"
    )


def songs_trained_on(checkpoint: Path | None, scored: Iterable[str]) -> dict[str, list[str]] | None:
    """The songs of `scored` that checkpoint folder `checkpoint` trained on: ``{"train": [...], "val":
    [...]}`` (its validation songs chose it as best, so their scores are not held-out ones either), from
    the song names the checkpoint or its run folder's ``config.json`` records (`stored_song_record`).
    None where they are not known: no checkpoint, none recorded, or a record that does not read (a
    hand-edited one is --resume's error, not the evaluation's), or the demo songs, named alike
    (``song_000``...) in every demo set."""
    if checkpoint is None:
        return None
    try:
        record, names = stored_song_record(checkpoint, ckpt.read_model_state(checkpoint))
    except (OSError, ValueError, ckpt.CheckpointError):
        return None
    if names is None or not isinstance(record, dict) or record.get("demo") is not None:
        return None
    # (A scored song is named as this process reads its file name; the record, as a UTF-8 locale does.)
    return {
        part: sorted(song for song in set(scored) if portable_name(song) in set(names[part]))
        for part in ("train", "val")
    }


def training_folder_elsewhere(checkpoint: Path | None, data: Path | None) -> Path | None:
    """The data folder `checkpoint`'s run trained on (its recorded ``data.data_dir``) where that is another
    folder than `data`, the one scored (neither inside the other): its songs are then matched by name alone,
    and a held-out folder named as the training one (a class's ``song_000``... beside its training songs)
    holds other songs under the same names. None where not recorded, or the same folder."""
    if checkpoint is None or data is None:
        return None
    try:
        state = ckpt.read_model_state(checkpoint)
    except (OSError, ValueError, ckpt.CheckpointError):
        return None
    recorded = state.get(RUN_CONFIG_KEY)
    recorded = recorded.get("data") if isinstance(recorded, dict) else None
    trained = recorded.get("data_dir") if isinstance(recorded, dict) else None
    if not isinstance(trained, str) or not trained or not Path(trained).is_absolute():
        return None
    if is_inside(data, trained) or is_inside(trained, data):
        return None
    return Path(trained)


def trained_on_note(
    trained_on: dict[str, list[str]] | None,
    checkpoint: Path | None,
    scored: int,
    written: bool = True,
    elsewhere: Path | None = None,
) -> str:
    """One line saying how many of the `scored` songs `checkpoint` trained on (`songs_trained_on`), naming
    a few, so that training-set scores are not reported as held-out ones; "" when none. `written`: a
    scores.json that lists them is written (``-o``), and the line says where. `elsewhere`: the folder the
    checkpoint trained on, where another than the one scored (`training_folder_elsewhere`): the line says the
    songs were matched by name alone."""
    if not trained_on or not (trained_on["train"] or trained_on["val"]):
        return ""
    parts = [
        f"{len(names)} of the {scored} songs scored {what[len(names) == 1]} ({listed(names, TRAINED_ON_LISTED)})"
        for names, what in (
            (
                trained_on["train"],
                (f"are songs {checkpoint} trained on", f"is a song {checkpoint} trained on"),
            ),
            (
                trained_on["val"],
                (
                    f"are validation songs of {checkpoint}, which chose it",
                    f"is a validation song of {checkpoint}, which chose it",
                ),
            ),
        )
        if names
    ]
    where = " (scores.json: songs_trained_on)" if written else ""
    if elsewhere is not None:
        return "; ".join(parts) + (
            f", by name alone: it trained on {elsewhere}, another folder; if they are the same songs, their "
            f"scores are not held-out ones{where}"
        )
    return "; ".join(parts) + f": their scores are not held-out ones{where}"


def _fraction(percent: float) -> float | None:
    """A percent as scores.json's 0-1 fraction; None (null) where it covers no frame (NaN), as the mir_eval
    scores say "covers nothing"."""
    return None if np.isnan(percent) else percent / 100.0


def evaluate_songs(
    predictor: ChordPredictor,
    songs: Sequence[SongEntry],
    out_dir: str | Path | None = None,
    allow_gaps: bool = False,
    skipped: Mapping[str, str] | None = None,
    scored: dict[str, Any] | None = None,
    trim_reference: bool = True,
) -> EvaluationResult:
    """Transcribe `songs`, compare with their annotations, and (if `out_dir`) write ``<name>.lab`` files,
    ``scores.json``, ``scores.md`` and ``confusion_matrix.png`` there.

    `skipped` names songs left out before (e.g. by the folder scan: `SongIndex.skipped_songs`) with the
    reason; they are listed in the scores with those whose audio does not decode here. `scored`: what is
    scored, as the written files record it (`scored_record`). `trim_reference` False: no reference is
    trimmed to its audio's end, every song scored as mir_eval.chord.evaluate scores the files."""
    if not songs:
        raise ValueError("evaluate_songs needs at least one song")
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        check_output_folder(songs, out)
    pairs = {}
    left_out_before = dict(skipped or {})
    skipped = dict(left_out_before)
    overhanging: dict[str, float] = {}
    trimmed: dict[str, TrimmedReference] = {}
    confusions = {head: np.zeros((len(c), len(c)), dtype=np.int64) for head, c in FRAME_HEADS.items()}
    tracker = MetricsTracker(topk={"chord_type": TOP_K[1:], "chord": TOP_K[1:]})
    audio_seconds = 0.0
    # Every reference is read before the first song is transcribed: an annotation that cannot be used
    # (named with its file) stops the evaluation before minutes of transcription, not after.
    # Scored as written, as mir_eval scores them: a rounding-size gap or overlap between two segments ends
    # the first where the second starts (training's targets move the second's start instead).
    gaps: dict[str, list[tuple[float, float]]] = {song.name: [] for song in songs}
    references = [
        song.read_segments(allow_gaps=allow_gaps, keep_starts=True, filled_gaps=gaps[song.name])
        for song in songs
    ]

    def transcribed() -> Iterator[tuple[SongEntry, list[ChordSegment], SongPosteriors]]:
        """Each song's posteriors, with its reference trimmed to its audio (songs left out: `skipped`)."""
        # (the time left by audio, not songs: a 3-hour concert among 2-minute songs is not one song of many)
        progress = TranscriptionProgress(
            len(songs), "song", header_seconds([song.audio_path for song in songs])
        )
        for count, (song, reference) in enumerate(zip(songs, references)):
            progress.done(count)
            try:
                post = predictor.posteriors(song.audio_path)
            except AudioError as err:  # one song whose audio does not decode must not cost the others
                skipped[song.name] = str(err)
                continue
            if post.silent and any(segment.label != NO_CHORD for segment in reference):
                # No score says anything of it.
                skipped[song.name] = f"{song.audio_path}: {silent_song_reason(song.audio_path)}"
                continue
            reference_end = reference[-1].end
            # Under a millisecond is the rounding of the file's times (a .lab written with 6 decimals ends a
            # few microseconds past its audio): scored as it is, as mir_eval scores the files, so not listed.
            overhang = max(0.0, reference_end - post.duration)
            if trim_reference:
                reference, overhang = trim_reference_to(
                    reference, post.duration, MAX_REFERENCE_OVERHANG_S, min_overhang=DEFAULT_TOLERANCE
                )
            if trim_reference and DEFAULT_TOLERANCE < overhang <= MAX_REFERENCE_OVERHANG_S:
                trimmed[song.name] = TrimmedReference(
                    song.annotation_path.name, song.audio_path.name, reference_end, post.duration
                )
            if overhang > MAX_REFERENCE_OVERHANG_S:
                overhanging[song.name] = overhang
                warnings.warn(
                    f"{song.annotation_path} runs {overhang:.2f} s past the end of {song.audio_path.name} "
                    f"(more than {MAX_REFERENCE_OVERHANG_S:g} s: another version of the recording?); the "
                    "overhang is scored as wrong",
                    stacklevel=4,  # (this generator, work_behind, evaluate_songs, its caller)
                )
            yield song, reference, post

    def decoded(item: tuple[SongEntry, list[ChordSegment], SongPosteriors]) -> tuple[Any, ...]:
        p = item[2].probs
        chord_type, root, bass, offsets = decode_frames_and_offsets(
            p["chord_type"], p["root"], p["bass"], predictor.decode, p.get("chord"), item[2].level_db
        )
        estimate = frames_to_segments(chord_type, root, bass, item[2].frame_rate, item[2].duration, offsets)
        # Scored with the times its .lab is written with: mir_eval on the written file gives the same scores.
        return chord_type, root, bass, with_lab_times(estimate)

    # A song is decoded while the model reads the next (`work_behind`). The transcription's wall time is the
    # loop's but for the scoring below, as it was when each song's posteriors and decoding were timed alone.
    start = time.perf_counter()
    scoring = 0.0
    for (song, reference, post), (chord_type, root, bass, estimate) in work_behind(
        transcribed(), decoded, "audiotrain-decode"
    ):
        scoring_start = time.perf_counter()
        audio_seconds += post.duration
        pairs[song.name] = (reference, estimate)
        targets = scored_frame_targets(reference, len(chord_type), post.frame_rate)
        add_frame_counts(confusions, targets, {"chord_type": chord_type, "root": root, "bass": bass})
        tracker.update({}, post.probs, targets)
        scoring += time.perf_counter() - scoring_start
    wall = time.perf_counter() - start - scoring
    if not pairs:
        # Counted and listed apart: the songs given, whose audio fails here, and those left out before.
        def listed(reasons) -> str:
            return "".join(f"\n  {name}: {why}" for name, why in reasons)

        failed = [(name, why) for name, why in skipped.items() if name not in left_out_before]
        which = "the one song" if len(songs) == 1 else f"all {len(songs)} songs"
        why = (
            "fails to decode or is silent"
            if any(DIGITAL_SILENCE in r for _, r in failed)
            else "fails to decode"
        )
        message = f"no song left to score: the audio of {which} {why}:{listed(failed)}"
        if left_out_before:
            message += f"\n{len(left_out_before)} more left out before:{listed(left_out_before.items())}"
        raise ValueError(message)
    scores = score_songs(pairs)
    scores.skipped = skipped
    scores.overhanging = overhanging
    confusion = confusions["chord_type"]
    result = EvaluationResult(
        scores, confusion, audio_seconds, wall, pairs, confusions, tracker.get_metrics(), trimmed
    )
    result.trim_reference = trim_reference
    result.gap_filled = {
        song.name: GapFilledReference(
            song.annotation_path.name,
            len(gaps[song.name]),
            sum(end - start for start, end in gaps[song.name]),
        )
        for song in songs
        if gaps[song.name] and song.name in pairs
    }
    result.scored = scored
    if out is not None:
        write_evaluation(result, out)
    return result


def add_frame_counts(
    confusions: dict[str, np.ndarray], targets: dict[str, np.ndarray], decoded: dict[str, np.ndarray]
) -> None:
    """Add one song's frames to `confusions` (one [reference, transcription] count matrix per head of
    `FRAME_HEADS`): `targets` of its reference (`scored_frame_targets`), `decoded` its transcription's
    per-frame class of each head, -1 for a root or bass of N or X (their "none" column)."""
    for head, counts in confusions.items():
        none = len(FRAME_HEADS[head]) - 1
        predicted = np.where(decoded[head] < 0, none, decoded[head])
        counts += compute_confusion_matrix(predicted, targets[head], num_classes=len(counts))


def say_what_is_left(error: OSError, out: Path, replace: bool) -> OSError:
    """`error` (a full disk, a quota: an `OutputWriteError` that stopped `write_evaluation` into `out` after
    its ``scores.json``) saying that `out` holds part of this evaluation's files and the command that writes
    them all once there is room: without ``--overwrite`` the same command was refused for them ("refusing to
    replace OUT/scores.json: written earlier")."""
    if isinstance(error, OutputWriteError) and not error.note and (out / "scores.json").is_file():
        again = (
            "the same command again" if replace else "the same command with --overwrite (it replaces them)"
        )
        error.note = f"{out} holds part of this evaluation's files; {once_writable(error)}, run {again}"
    return error


def write_evaluation(result: EvaluationResult, out: Path, replace: bool = True) -> list[str]:
    """`EVALUATION_FILES` and one ``<song>.lab`` per scored song into `out` (no confusion matrix where no
    frame is scored: `EvaluationResult.frames_note`).

    Written only once every song is scored, and ``scores.json`` first: it lists the songs whose ``.lab``
    is written here, so that ``evaluate --overwrite`` can remove all of them whatever stopped the writing.
    Songs whose ``.lab`` files would be one file in `out` (`shared_lab_files`: ``Song`` and ``song`` on a
    case-insensitive file system), or whose ``.lab`` name or path is too long to be written there
    (`unwritable_lab_files`), have none written, and are listed with the reason in ``not_written``.
    An evaluation that stopped before (an error, Ctrl-C) leaves no ``.lab`` without the ``scores.json``
    that claims it.

    Without `replace` (``evaluate -o`` without ``--overwrite``, whose start found none of these names) each
    file is created only if its name is still free (`_write_new`): a ``scores.json`` that appeared meanwhile
    (another evaluation writing there) is a `FileExistsError` and nothing is written; the names of the other
    files that appeared, left as they are, are returned, and listed with the reason in ``scores.json``
    (``not_written``, counted in ``files_not_written``; an ``--overwrite`` later leaves those ``.lab`` files,
    not this evaluation's, alone) and in ``scores.md``."""
    out.mkdir(parents=True, exist_ok=True)
    # Songs whose .lab would be one file there (Song and song where case is folded), or whose name or path
    # is too long for the system: none is written.
    shared = unwritable_lab_files(result.pairs, out)
    not_written = [{"file": f"{name}.lab", "reason": why} for name, why in shared.items()]
    summary = {**result.summary(), "files_not_written": len(not_written), "not_written": not_written}
    if not _write_new(out / "scores.json", _json_writer(summary), replace):
        raise FileExistsError(
            f"{out / 'scores.json'} appeared while evaluating (another evaluation writing to {out}?); not "
            "replaced, and nothing was written there: write elsewhere with -o, or pass --overwrite"
        )
    # (write_lab replaces _write_new's temporary file, created empty; _write_new decides about the .lab)
    taken = [
        f"{name}.lab"
        for name, (_, estimate) in result.pairs.items()
        if name not in shared
        and not _write_new(
            out / f"{name}.lab", lambda tmp, e=estimate: write_lab(tmp, e, replace=True), replace
        )
    ]
    report = result.report()
    if shared:
        report += "\n\nNot written:" + "".join(f"\n- {name}.lab: {why}" for name, why in shared.items())
    if taken:  # (scores.md, written after the .lab files, can say which of them are not this evaluation's)
        report += f"\n\nNot written ({_NOT_WRITTEN}): {', '.join(taken)}"
    # UTF-8 whatever the locale; a song name from a file name the locale could not decode as its bytes.
    report_bytes = (report + "\n").encode("utf-8", errors="surrogateescape")
    if not _write_new(out / "scores.md", lambda tmp: tmp.write_bytes(report_bytes), replace):
        taken.append("scores.md")
    # (no plot where `frames_note` says why, in scores.md and the output; matplotlib only when plotting)
    if not result.frames_note and (plots := load_plots()):

        def plot(tmp: Path) -> None:
            plots.plot_confusion_matrix(
                result.confusion, CHORD_TYPES, tmp, title="Chord type (frames)", unit="frames"
            )

        if not _write_new(out / "confusion_matrix.png", plot, replace):
            taken.append("confusion_matrix.png")
    elif replace and not plots_wanted():  # (AUDIOTRAIN_PLOTS=0: an earlier one would pass for this one's)
        (out / "confusion_matrix.png").unlink(missing_ok=True)
    if taken:  # scores.json (this evaluation's own, created above) must not claim them as written
        not_written += [{"file": name, "reason": _NOT_WRITTEN} for name in taken]
        summary["files_not_written"] = len(not_written)
        _write_new(out / "scores.json", _json_writer(summary), replace=True)
    return taken


def shared_lab_files(names: Iterable[str], out: Path) -> dict[str, str]:
    """Song -> why its ``<song>.lab`` is not written into `out`, for the songs whose files would be one there
    (`sharing_one_file`, as predict's outputs): names that differ only in case where the file system of `out`
    ignores it (`folds_case`: macOS, Windows, exFAT, an SMB share), or only in Unicode form. Each would
    replace the other's, so none is written; their scores are kept. Empty for most song sets (the file
    system is probed only where names would fold to one)."""
    targets = {name: out / f"{name}.lab" for name in names}
    if not sharing_one_file(targets, fold_case=True):
        return {}
    reasons = {}
    for group in sharing_one_file(targets, fold_case=folds_case(out)):
        songs = ", ".join(distinguishable(group))
        reasons.update({name: f"songs {songs}: {one_file_reason(group, out)}" for name in group})
    return reasons


def unwritable_lab_files(names: Iterable[str], out: Path) -> dict[str, str]:
    """Song -> why its ``<song>.lab`` is not written into `out`: `shared_lab_files`, and the songs whose
    ``.lab`` name or path is too long for the system there (`name_too_long`: a song deep in sub-folders,
    mirrored under a longer output folder), as predict skips them. Their scores are kept."""
    names = list(names)
    reasons = shared_lab_files(names, out)
    for name in names:
        if name not in reasons and (why := name_too_long(out / f"{name}.lab")) is not None:
            reasons[name] = f"song {name}: cannot write its .lab: {why}"
    return reasons


def shared_lab_note(shared: Mapping[str, str]) -> str:
    """The note that the ``.lab`` files of `shared` (`unwritable_lab_files`) are not written."""
    reasons = sorted(set(shared.values()))
    return (
        f"the .lab files of {plural(len(shared), 'song')} are not written (their scores are kept): "
        + "; ".join(reasons)
    )


#: Why `write_evaluation` left a file as it is (``scores.json``'s ``not_written``).
_NOT_WRITTEN = (
    "appeared while evaluating (written by another program since the start) and left as it is "
    "(--overwrite replaces it)"
)


def _json_writer(document: dict) -> Callable[[Path], object]:
    data = json_text(document).encode()  # non-finite figures as null: strict JSON
    return lambda tmp: tmp.write_bytes(data)


def _write_new(path: Path, write_to: Callable[[Path], object], replace: bool) -> bool:
    """Write `path` through ``write_to(tmp)`` (`write_output`); False, and nothing written, where `replace`
    is off and the name was taken since the command's start."""
    path.parent.mkdir(parents=True, exist_ok=True)  # a song of a sub-folder (album/song.lab)
    try:
        write_output(path, write_to, replace)
    except FileExistsError:
        if replace or not (path.exists() or path.is_symlink()):
            raise
        return False
    return True


def scored_frame_targets(
    reference: Sequence[ChordSegment], n_frames: int, frame_rate: float
) -> dict[str, np.ndarray]:
    """`frame_targets` with the reference's ``X`` frames ignored, as ``mir_eval`` leaves ``X`` out, and the
    joint ``chord`` (type, root) target of a joint chord head."""
    targets = frame_targets(reference, n_frames, frame_rate)
    targets["chord_type"] = np.where(targets["chord_type"] == X_INDEX, IGNORE_INDEX, targets["chord_type"])
    targets["chord"] = np.array(joint_chord_index(mx.array(targets["chord_type"]), mx.array(targets["root"])))
    return targets


@dataclass
class Comparison:
    """Two transcriptions' scores on the songs both scored, and the difference of each pooled score with
    its bootstrap interval paired over songs (`difference_interval`): how much better one checkpoint
    reads these songs than the other, and whether that could be the songs' draw."""

    scores: ChordScores
    baseline: ChordScores
    #: Songs that only one of the two scored (e.g. too short for one checkpoint's features), left out.
    left_out: list[str] = field(default_factory=list)
    #: What each of the two scored (`scored_record`; the results' own).
    this: dict[str, Any] | None = None
    against: dict[str, Any] | None = None
    #: Both sides' `EvaluationResult.trim_reference` (`compare_results` refuses two that differ).
    trim_reference: bool = True

    @cached_property
    def differences(self) -> dict[str, tuple[float, float, float]]:
        """``{metric: (difference, low, high)}`` of every comparison, 0-1 units."""
        return {m: difference_interval(self.scores, self.baseline, m) for m in CHORD_METRICS}

    def table(self, metrics: Sequence[str] = SUMMARY_METRICS, written: bool = True) -> str:
        """A Markdown table in percent: each pooled score, the difference and its interval. `written`: the
        files that hold the scores it leaves out are written (``-o``); without, the line says how to get them
        rather than naming files that are not there."""
        percent = round(100 * INTERVAL_CONFIDENCE)
        lines = [
            f"| metric | this | against | difference | {percent}% interval, paired over songs |",
            "|---|---|---|---|---|",
        ]
        for metric in metrics:
            difference, low, high = self.differences[metric]
            spread = "-" if np.isnan(low) else f"{100 * low:+.2f} to {100 * high:+.2f}"
            this, against = (
                percent_or_dash(self.scores.pooled[metric]),
                percent_or_dash(self.baseline.pooled[metric]),
            )
            change = "-" if np.isnan(difference) else f"{100 * difference:+.2f}"
            lines.append(f"| {metric} | {this} | {against} | {change} | {spread} |")
        uncovered = [metric for metric in metrics if np.isnan(self.scores.pooled[metric])]
        if uncovered:
            lines += ["", uncovered_note(uncovered)]
        if self.left_out:
            lines += ["", f"left out, scored by only one of the two: {', '.join(self.left_out)}"]
        rest = not_shown_note(metrics, "comparison.json and scores.json", written)
        if rest:
            lines += ["", rest]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-able (0-1 units; NaN as None)."""

        def number(x: float) -> float | None:
            return None if np.isnan(x) else x

        return {
            "scored": {"this": self.this, "against": self.against},
            "trim_reference": self.trim_reference,
            "songs": sorted(self.scores.per_song),
            "left_out": list(self.left_out),
            "interval_confidence": INTERVAL_CONFIDENCE,
            "metrics": {
                metric: {
                    "this": number(self.scores.pooled[metric]),
                    "against": number(self.baseline.pooled[metric]),
                    "difference": number(difference),
                    "interval": None if np.isnan(low) else [low, high],
                }
                for metric, (difference, low, high) in self.differences.items()
            },
        }

    def _scored_lines(self) -> str:
        """comparison.md's lines naming what each column scored (`scored_line`), "" where not known."""
        lines = [
            f"{name}: {scored_line(scored)}"
            for name, scored in (("this", self.this), ("against", self.against))
            if scored
        ]
        return "".join(f"{line}\n\n" for line in lines)

    def write(self, folder: str | Path, replace: bool = True) -> list[str]:
        """`COMPARISON_FILES` into `folder`: ``comparison.json`` (`to_dict`) and ``comparison.md`` (`table`).
        Without `replace`, as `write_evaluation`: returns the names taken meanwhile, left as they are."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        texts = {
            "comparison.json": json_text(self.to_dict()).encode(),
            "comparison.md": (self._scored_lines() + self.table() + "\n").encode(
                "utf-8", errors="surrogateescape"
            ),
        }
        return [
            name
            for name, data in texts.items()
            if not _write_new(folder / name, lambda tmp, d=data: tmp.write_bytes(d), replace)
        ]


def compare_results(result: EvaluationResult, baseline: EvaluationResult) -> Comparison:
    """`result` against `baseline` on the songs both scored; `ValueError` if they share none, or if one
    trimmed its references to the audio and the other did not (their differences would be the trimming's)."""
    if result.trim_reference != baseline.trim_reference:
        raise ValueError(
            f"the two results were scored with trim_reference {result.trim_reference} and "
            f"{baseline.trim_reference}: score both the same way to compare them"
        )
    common = sorted(set(result.pairs) & set(baseline.pairs))
    if not common:
        raise ValueError("the two checkpoints scored no song in common: nothing to compare")
    left_out = sorted(set(result.pairs) ^ set(baseline.pairs))
    return Comparison(
        score_songs({name: result.pairs[name] for name in common}),
        score_songs({name: baseline.pairs[name] for name in common}),
        left_out,
        result.scored,
        baseline.scored,
        result.trim_reference,
    )


def evaluation_outputs(folder: Path) -> list[str]:
    """What an earlier evaluation wrote in `folder` (`evaluate --overwrite` removes it and nothing else):
    `EVALUATION_FILES`, `COMPARISON_FILES` and the ``.lab`` of every song its ``scores.json`` scored, but
    those it lists as not written (``not_written``: `write_evaluation`)."""
    try:
        scores = read_json_file(folder / "scores.json", ValueError)
        earlier = scores["per_song"]
        # Those it left as they were (another program's, written meanwhile) are not its own to remove.
        theirs = {entry.get("file") for entry in scores.get("not_written") or [] if isinstance(entry, dict)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # none, or not an evaluation's
        earlier, theirs = {}, set()
    labs = [f"{song}.lab" for song in earlier if isinstance(song, str) and f"{song}.lab" not in theirs]
    # A hand-edited name must not reach outside the folder ("../x").
    return [*EVALUATION_FILES, *COMPARISON_FILES, *(lab for lab in labs if is_inside(folder / lab, folder))]


def run_test_songs(
    run: Path, data: Path, songs: list[SongEntry], skipped: dict[str, str]
) -> tuple[list[SongEntry], dict[str, str]]:
    """(the songs of `data` that the train run in folder `run` held out for its final evaluation, those of
    them not scored with the reason), for ``evaluate --test_songs_of RUN``: the test songs its config.json
    lists, by name; one missing from `data` is listed as skipped. `run` may be one of its checkpoints, also
    away from the run folder: the checkpoint lists them too.

    A run on a data folder names each song by its path there. A demo run's test songs are a demo set of their
    own (``song_000``, ...): the run is refused unless `data` is one (a folder of songs named so elsewhere
    was scored as that evaluation); so is a run that held out no test songs."""
    record, run_record = _test_run_record(run)
    try:
        names = run_record["songs"]["test"]
        data_dir = (run_record.get("config") or {}).get("data", {}).get("data_dir")
    except (KeyError, TypeError, AttributeError):
        raise ValueError(
            f"--test_songs_of {run}: {record} is missing or lists no test songs; give the folder of a train "
            "run (its config.json lists the songs of each split), or one of its checkpoints"
        ) from None
    if not names:
        raise ValueError(
            f"--test_songs_of {run}: that run held out no test songs ({record} lists none), so it has no final "
            f"evaluation to repeat; leave --test_songs_of out to score every song of {data}"
        )
    if not data_dir and not _is_demo_test_set(data):
        raise ValueError(
            f"--test_songs_of {run}: that run trained on the demo songs ({record} names no data folder, "
            f"data.data_dir), whose test songs are a demo set of their own, not songs of {data}: give that "
            f"set's folder as --data, without --test_songs_of (its songs are all test songs): "
            + demo_test_set_hint(run_record, run)
        )
    names = [stored_name(name) if isinstance(name, str) else name for name in names]
    wanted = set(names)
    found = [song for song in songs if portable_name(song.name) in wanted]
    left_out = {name: reason for name, reason in skipped.items() if portable_name(name) in wanted}
    skipped_names = {portable_name(name) for name in left_out}
    if not found and left_out:  # (in the folder, each skipped: an annotation edited since, unreadable audio)
        missing = [name for name in names if name not in skipped_names]
        raise ValueError(
            f"--test_songs_of {run}: none of its {plural(len(names), 'test song')} can be scored: "
            f"{plural(len(left_out), 'song')} of {data} skipped ({listed(list(left_out.values()), sep='; ')})"
            + (f"; {len(missing)} not in {data} (e.g. {missing[0]})" if missing else "")
        )
    if not found:
        raise ValueError(
            f"--test_songs_of {run}: none of its {len(names)} test songs (e.g. {names[0]}) is in {data}; "
            f"give --data the folder that run trained on{f' ({data_dir})' if data_dir else ''}"
            + run_pairing_hint(run_pairing(run))
        )
    here = {portable_name(song.name) for song in found}
    for name in names:
        if name not in here and name not in skipped_names:
            left_out[name] = f"a test song of {run}, not found in {data}"  # (listed after its name)
    return found, left_out


#: The record a cv run keeps beside its ``fold<k>/`` run folders (`audiotrain.recipes.chords.cv`, which
#: imports this module: named here too).
CV_PROGRESS_FILE = "cv_progress.json"


def held_out_data(checkpoint: Path) -> tuple[Path, bool]:
    """For ``evaluate --checkpoint RUN`` without ``--data``: (the folder of the held-out songs of the train
    run `checkpoint` is (a run folder) or belongs to (RUN/checkpoints/NAME), whether only the run's test
    songs of it are to be scored), from its config.json: a demo run's test set (``demo_test_set``, a set of
    its own: every song of it), or its data folder (its test songs, as ``--test_songs_of``). A ValueError
    naming the ``--data`` to pass where the record does not tell, or the folder is gone.

    A recorded ``demo_test_set`` is used only where it is one (``test-*``): a cv fold of an earlier version
    recorded the cache folder, which holds every demo set, training songs among them."""
    if checkpoint.is_dir() and not (checkpoint / "config.json").exists():
        try:  # (first: a cv run folder has no config.json of its own, and --data would not make it one)
            refuse_cv_run(checkpoint)
        except ckpt.CheckpointError as error:
            raise ValueError(f"evaluate: {error}") from None
    record = checkpoint / "config.json"
    run_record = None
    try:
        if record.is_file():
            run_record = read_json_file(record, ValueError)
        elif (checkpoint / ckpt.STATE_FILE).is_file():
            record, run_record = checkpoint.parent.parent / "config.json", run_record_of(checkpoint)
    except (OSError, ValueError):
        run_record = None
    if not isinstance(run_record, dict):
        raise ValueError(
            f"evaluate: --data is needed: {record} is not there to say which songs {checkpoint} held out (give "
            "the folder of songs to score as --data)"
        )
    settings = run_record.get("config") if isinstance(run_record.get("config"), dict) else {}
    data_dir = (settings.get("data") or {}).get("data_dir")
    demo_set = run_record.get("demo_test_set")
    in_cv_run = (record.parent.parent / CV_PROGRESS_FILE).is_file()
    if not data_dir and (demo_set and not _is_demo_test_set(Path(demo_set)) or not demo_set and in_cv_run):
        songs = run_record.get("songs") if isinstance(run_record.get("songs"), dict) else {}
        test_songs = songs.get("test") if isinstance(songs.get("test"), list) else []
        raise ValueError(
            f"evaluate: --data is needed: {checkpoint} held out songs of the demo's training sets (a "
            f"cross-validation fold's: {listed(test_songs) or 'none listed'}; songs.test in {record}), not "
            "a demo test set (test-*) that --data could name"
            + (f" ({record} records {demo_set})" if demo_set else "")
            + f"; their scores are in {record.parent / 'evaluation' / 'scores.json'}; give a folder of songs "
            "to score as --data"
        )
    folder = Path(data_dir or demo_set or "")
    if not (data_dir or demo_set):
        raise ValueError(
            f"evaluate: --data is needed: {record} does not record where the run's demo test set is (a run of "
            f"an earlier version); give that set's folder as --data: "
            + demo_test_set_hint(run_record, checkpoint)
        )
    if not folder.is_dir():
        what = "data folder" if data_dir else "demo test set"
        # (An older audiotrain recorded the folder as typed: relative to where the run started, not here.)
        where = (
            f"is not in {Path.cwd()} (a relative path, as an older audiotrain recorded it, is read from the "
            "folder the command runs in: run it from the folder the run started in)"
            if not folder.expanduser().is_absolute()
            else "is gone" + ("" if data_dir else " (the cache cleared?)")
        )
        raise ValueError(
            f"evaluate: --data is needed: the run's {what}, {folder} (as {record} records it), {where}; give "
            "the folder of the songs to score as --data"
        )
    return folder, bool(data_dir)


def demo_test_set_hint(run_record: Mapping[str, Any], run: Path) -> str:
    """Which folder of the demo cache holds the test set of demo run `run` (a run or checkpoint folder) whose
    record `run_record` does not name it (a run of an earlier version): a glob narrowed by what the run
    records (its seed, test songs and seconds; the generator version its checkpoint records), its test songs,
    and the file that lists them. ``test-*`` matched the sets of every generator version, which hold other
    songs under the same names (``song_000``): one scored the run on songs it was never evaluated on."""
    from audiotrain.recipes.chords.data import HELD_OUT_SEED_OFFSET

    settings = run_record.get("config") if isinstance(run_record.get("config"), dict) else {}
    data = settings.get("data") if isinstance(settings.get("data"), dict) else {}
    seed, count, seconds = data.get("demo_seed"), data.get("demo_test_songs"), data.get("demo_seconds")
    version = _recorded_test_set_generator(run)
    parts = (  # (`demo_set_name`; the recipe's test set is of the "train" style, at seed + 1000)
        f"v{version if version is not None else '*'}",
        "train",
        f"seed{seed + HELD_OUT_SEED_OFFSET}" if _is_count(seed) else "seed*",
        f"n{count}" if _is_count(count) else "n*",
        f"{float(seconds):g}s"
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
        else "*s",
    )
    cache = data.get("cache_dir") or default_cache_dir()
    songs = run_record.get("songs") if isinstance(run_record.get("songs"), dict) else {}
    names = songs.get("test") if isinstance(songs.get("test"), list) else []
    # (The run folder's evaluation: RUN/checkpoints/NAME/evaluation was named, which is never there.)
    run_folder = run.parent.parent if run.parent.name == "checkpoints" else run
    scores = run_folder / "evaluation" / "scores.json"
    listing = [listed(names)] if names else []
    listing += [f"{scores} lists them"] if scores.is_file() else []
    versions = (
        f"generator v{version}, as its checkpoint records: a set of another version holds other songs under "
        "the same names"
        if version is not None
        else "the one the audiotrain that trained it rendered: its generator version is not recorded, and a "
        "test-vN- set of another version holds other songs under the same names"
    )
    return (
        f"one of {Path(cache) / DEMO_FOLDER}/test-{'-'.join(parts)}-* ({versions}), holding its test songs"
        + (f" ({'; '.join(listing)})" if listing else "")
    )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _recorded_test_set_generator(run: Path) -> int | None:
    """The version of the demo generator that made the test set of demo run `run` (a run or checkpoint
    folder), as its checkpoint records it (its "train" style's: the test set's), or None where it does not
    (before 2026-11-25) or cannot be read."""
    try:
        folder = resolve_model_checkpoint(run)
        songs = (stored_settings(folder, ckpt.read_state(folder)) or {}).get("songs")
        version = songs["demo"]["generators"]["train"]
    except (OSError, ValueError, RuntimeError, KeyError, TypeError):
        return None
    return version if _is_count(version) else None


def _test_run_record(run: Path) -> tuple[Path, dict[str, Any]]:
    """(the file that records the train run `run` (its config.json, or a checkpoint's trainer state), what
    it records); a ValueError naming ``--test_songs_of`` where there is none."""
    if not run.exists():  # (a relative path pasted in another folder: not the run's record's fault)
        raise ValueError(
            f"--test_songs_of {run}: no such folder; give the folder of a train run, or one of its checkpoints"
        )
    record = run / "config.json"
    try:
        if not record.exists() and (run / ckpt.STATE_FILE).is_file():  # a checkpoint, moved or not
            return run / ckpt.STATE_FILE, checkpoint_run_record(run)
        run_record = read_json_file(record, ValueError)
        if not isinstance(run_record, dict):
            raise ValueError(record)
        return record, run_record
    except (OSError, ValueError):
        raise ValueError(
            f"--test_songs_of {run}: {record} is missing or lists no test songs; give the folder of a train "
            "run (its config.json lists the songs of each split), or one of its checkpoints"
        ) from None


#: evaluate's flag of each pairing setting of a run (``data.<key>``): ``(key, flag)``. ``allow_gaps`` is one:
#: without it a test song whose annotation has a gap is skipped, not scored as the run scored it.
PAIRING_FLAGS = (
    ("annotations", "--annotations"),
    ("pairs", "--pairs"),
    ("jams_annotation", "--jams_annotation"),
    ("allow_gaps", "--allow_gaps"),
)

#: The keys of `PAIRING_FLAGS` whose values are paths (compared resolved).
_PATH_SETTINGS = ("annotations", "pairs")


def run_pairing(run: Path) -> dict[str, Any]:
    """How the train run `run` paired its songs with their annotations: ``{annotations, pairs,
    jams_annotation, allow_gaps}`` of its record (None, None, 0, False where it records none)."""
    data = (_test_run_record(run)[1].get("config") or {}).get("data") or {}
    if not isinstance(data, dict):
        data = {}
    return {  # (the folders' names as this locale's file names spell them: recorded as UTF-8 text)
        "annotations": local_path(data.get("annotations")),
        "pairs": local_path(data.get("pairs")),
        "jams_annotation": data.get("jams_annotation") or 0,
        "allow_gaps": data.get("allow_gaps") is True,
    }


def _setting(flag: str, value: Any) -> str:
    """``--pairs FILE``; a switch (``allow_gaps``) as ``--allow_gaps true``, as a run's flags take it."""
    return f"{flag} {str(value).lower() if isinstance(value, bool) else value}"


def run_pairing_hint(pairing: dict[str, Any]) -> str:
    """``"; that run paired its songs with --data.annotations DIR"`` where it used a pairing setting."""
    used = [_setting(f"--data.{key}", pairing[key]) for key, _ in PAIRING_FLAGS if pairing.get(key)]
    return f"; that run paired its songs with {', '.join(used)}" if used else ""


def take_run_pairing(args: Any, run: Path) -> list[str]:
    """Set evaluate's pairing flags that `args` leaves unset (None) to those of the train run `run`, so that
    its test songs are found and scored against the annotation it held out, read as it read them (gaps as N
    where it allowed them); returns the lines that say so: one for the settings taken, one per flag given
    that differs from the run's."""
    pairing = run_pairing(run)
    taken, notes = [], []
    for key, flag in PAIRING_FLAGS:
        given, recorded, is_path = getattr(args, key), pairing[key], key in _PATH_SETTINGS
        if given is None:
            setattr(args, key, Path(recorded) if recorded and is_path else recorded)
            if recorded:
                taken.append(flag if recorded is True else f"{flag} {recorded}")
        elif (Path(given).resolve() if is_path else given) != (
            Path(recorded).resolve() if is_path and recorded else recorded
        ):
            was = _setting(f"--data.{key}", recorded) if recorded else f"no --data.{key}"
            shown = flag if given is True else f"{flag} {given}"
            notes.append(f"note: {shown} differs from the run's {was} ({run})")
    if taken:
        notes.insert(0, f"--test_songs_of {run}: paired as that run did: {', '.join(taken)}")
    return notes


def _is_demo_test_set(folder: Path) -> bool:
    """Whether `folder` is a held-out set of the chord demo (``<cache>/demo/chords/test-...``)."""
    folder = folder.resolve()
    return (
        folder.name.startswith("test-")
        and folder.parent.parts[-len(DEMO_FOLDER.parts) :] == DEMO_FOLDER.parts
    )


def check_output_folder(songs: Sequence[SongEntry], out: Path) -> None:
    """Refuse an output folder that puts a song's predicted ``.lab`` beside its audio: there it would
    replace the reference annotation being scored, or be read as the annotation from then on. So is one
    where it would replace the annotation kept apart (``--annotations`` or ``--pairs``), with or without
    ``--overwrite``, which replaces only what an earlier evaluation wrote."""
    for song in songs:
        target = (out / f"{song.name}.lab").resolve()
        if target == song.annotation_path.resolve() and target.parent != song.audio_path.parent.resolve():
            raise ValueError(
                f"output folder {out}: the prediction for {song.name} would be written to {target}, the "
                "annotation it is scored against, and overwrite it; choose an output folder outside the "
                "annotations folder"
            )
        if target.parent == song.audio_path.parent.resolve():
            harm = (
                "overwrite the annotation it is scored against"
                if target == song.annotation_path.resolve()
                else "be read as its annotation from then on"
            )
            raise ValueError(
                f"output folder {out}: the prediction for {song.name} would be written to {target}, beside "
                f"{song.audio_path.name}, and {harm}; choose an output folder outside the data folder"
            )


def format_table(
    columns: dict[str, ChordScores],
    metrics: Sequence[str] = SUMMARY_METRICS,
    intervals: bool = False,
    others_in: str | None = None,
) -> str:
    """A text table of pooled scores in percent, one column per system (e.g. model and baseline); with
    `intervals`, each followed by its bootstrap interval over songs (`ChordScores.interval`); with
    `others_in` (where the rest are written), a line naming the scores of `CHORD_METRICS` it leaves out."""
    names = list(columns)
    width = max(12, *(len(n) + 2 for n in names))
    interval_title = f"{round(100 * INTERVAL_CONFIDENCE)}% over songs"
    header = "".join(n.rjust(width) + (interval_title.rjust(18) if intervals else "") for n in names)
    lines = ["metric".ljust(14) + header]
    for metric in metrics:
        cells = ""
        for n in names:
            cells += percent_or_dash(columns[n].pooled[metric]).rjust(width)
            if intervals:
                low, high = columns[n].interval(metric)
                cells += ("-" if np.isnan(low) else f"{100 * low:.1f}-{100 * high:.1f}").rjust(18)
        lines.append(metric.ljust(14) + cells)
    uncovered = [m for m in metrics if all(np.isnan(columns[n].pooled[m]) for n in names)]
    if uncovered:
        lines.append(uncovered_note(uncovered))
    rest = not_shown_note(metrics, others_in) if others_in else None
    if rest:
        lines.append(rest)
    return "\n".join(lines)
