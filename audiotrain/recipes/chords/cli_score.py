"""The ``score`` command: ``evaluate`` without the model. Transcriptions already written as ``.lab`` files (by
``predict``, Chordino, another tool) are paired with the annotations of the same name and scored with the
same mir_eval.chord scores, tables and files (`write_evaluation`, `Comparison`)."""

from __future__ import annotations

import argparse
import datetime
import os
import re
import sys
import time
from pathlib import Path

from audiotrain._system import versions
from audiotrain._text import listed, plural
from audiotrain.chords.harte import format_harte, parse_harte
from audiotrain.chords.lab import (
    DEFAULT_TOLERANCE,
    AnnotationError,
    ChordSegment,
    EmptyAnnotationError,
    read_annotation,
    read_lab,
)
from audiotrain.chords.vocabulary import N_INDEX
from audiotrain.datasets._song_pairs import annotations_under, match_in_annotation_folder, near_misses
from audiotrain.datasets.chord_songs import (
    _ANNOTATION_PRIORITY,
    ANNOTATION_SUFFIXES,
    SongIndex,
    count_vocabulary_changes,
    frame_targets,
)
from audiotrain.metrics.chord_scores import MAX_REFERENCE_OVERHANG_S, score_songs
from audiotrain.metrics.chord_scores import (
    trim_reference as trim_reference_to,  # (the flag has the plain name)
)
from audiotrain.metrics.plot_loading import plots_off_note
from audiotrain.recipes._run import (
    check_can_write,
    clear_run_outputs,
    is_inside,
    path_flag,
    refuse_a_folder_not_searchable,
    refuse_outputs_of_a_live_run,
)
from audiotrain.recipes.chords import cli
from audiotrain.recipes.chords.cli_evaluate import _annotation_number, add_trim_reference_argument
from audiotrain.recipes.chords.cli_predictor import _print_to_stderr
from audiotrain.recipes.chords.data import RUN_OUTPUTS
from audiotrain.recipes.chords.evaluate import (
    COMPARISON_FILES,
    EVALUATION_FILES,
    FRAME_HEADS,
    TRIMMED_LISTED,
    EvaluationResult,
    GapFilledReference,
    TrimmedReference,
    add_frame_counts,
    compare_results,
    evaluation_outputs,
    gap_filled_note,
    reference_span_words,
    say_what_is_left,
    scored_frame_targets,
    trimmed_note,
    write_evaluation,
)
from audiotrain.recipes.config_cli import add_overwrite_argument

import numpy as np

#: Transcriptions score does not read (README: `.jams` transcriptions are not read) but names as such.
_JAMS_SUFFIXES = (".jams", ".jamz")
#: Other tools' text outputs (Sonic Annotator's Chordino CSV, a tool's .txt): named where no .lab pairs.
_OTHER_TOOL_SUFFIXES = (".csv", ".tsv", ".txt")
#: What score reads instead, said where it meets a file it does not read.
_LAB_ADVICE = (
    ": it reads .lab transcriptions, one 'start end label' line per chord in Harte syntax (e.g. "
    "'0.37 2.41 A:min'), which predict writes with --format lab, its default; write another tool's "
    "output so, each chord ending where the next starts"
)

#: Files that cannot be read named in score's one error, the rest counted.
UNREADABLE_LISTED = 10

#: What `EmptyAnnotationError` says of a file, to count those songs apart in the line on stderr.
_NO_SEGMENTS = ": no chord segments"

#: Frames per second of the frame-level figures (scores.json's ``frames``, the confusion matrix): finer than
#: any model's hop, so that a transcription's boundaries move them as little as they move mir_eval's scores.
FRAME_RATE = 100.0
#: Longest annotated span (seconds) scored: a day. The frame figures cost memory in proportion to it (a day:
#: about 0.5 GB); an annotation past it is one whose times are not seconds (samples, milliseconds).
MAX_SCORED_SECONDS = 24 * 3600.0


def _read(path: Path, read, **settings) -> list[ChordSegment]:
    """`read` (`read_lab` or `read_annotation`) of `path`; a file that cannot be opened is a ValueError
    naming it (the readers' AnnotationError names the file and line)."""
    try:
        return read(path, keep_starts=True, **settings)
    except OSError as error:
        raise ValueError(f"{path}: cannot read it: {error.strerror or error}") from None


def _pairs(
    predictions: Path, data: Path, leave_out: Path | None, transcriptions: tuple[Path, ...] = ()
) -> tuple[dict, dict[str, str]]:
    """({song: (prediction, annotation)}, {song: why it is not scored}): each ``.lab`` under `predictions`
    (or the one file) with the annotation under `data` (or the one file) of the same name, paired as
    ``evaluate --annotations`` pairs audio with an annotations folder (`match_in_annotation_folder`: case,
    spaces, underscores and hyphens ignored; of several, the one in the mirrored folder; never a guess).
    Songs are named by their annotation's path under `data` without its suffix, so that two folders of
    transcriptions laid out otherwise (``--against``) name the same songs alike (a prediction alone: by its
    path under `predictions`). Nothing under `leave_out` (-o) is read, nor read as an annotation what lies
    under `transcriptions` (--against's folder, say, inside `data`)."""
    if predictions.is_file():
        if predictions.suffix.lower() in _JAMS_SUFFIXES:  # (read as a .lab: "line 1: start and end must be")
            raise ValueError(f"{predictions}: a JAMS file, which score does not read{_LAB_ADVICE}")
        found, root = [predictions], predictions.parent
    else:
        found = annotations_under(predictions, (".lab",))
        root = predictions
    if data.is_file():  # one transcription against one annotation: whatever their names
        if len(found) != 1:
            raise ValueError(
                f"--data {data} is one file: give one .lab file as PREDICTIONS, not {predictions}"
            )
        return {data.stem: (found[0], data)}, {}
    # (a folder of transcriptions inside the annotations' holds no annotation: evaluate -o DIR/eval)
    folders = (predictions, *(folder for folder in transcriptions if folder.is_dir()))
    annotations = [
        p for p in annotations_under(data, ANNOTATION_SUFFIXES) if not any(is_inside(p, f) for f in folders)
    ]
    if leave_out is not None:
        found = [path for path in found if not is_inside(path, leave_out)]
        annotations = [path for path in annotations if not is_inside(path, leave_out)]
    paired, ambiguous, alone = match_in_annotation_folder(
        found, root, annotations, data, _ANNOTATION_PRIORITY
    )
    name = lambda path, under: path.relative_to(under).with_suffix("").as_posix()  # noqa: E731
    # (evaluate's advice, a pairs file, is not score's: a folder of transcriptions mirrors the annotations')
    advice = "put it in the folder under PREDICTIONS that mirrors its annotation's, or rename it"
    left_out = {name(path, root): f"{why.split('; list ')[0]}; {advice}" for path, why in ambiguous}
    ambiguous_paths = {path for path, _ in ambiguous}
    unpaired = [path for path in found if path not in paired and path not in ambiguous_paths]
    # (annotations named song.wav.lab, as predict names the outputs of audio sharing a stem: evaluate hints;
    # each prediction taken as the audio its name without .lab names, so song.wav.lab hints song.lab too)
    as_audio = {path.with_suffix(""): path for path in unpaired}
    hints = {as_audio[audio]: near for audio, near in near_misses(list(as_audio), root, alone, data)}
    for path in unpaired:
        hint = f"; did you mean {hints[path].relative_to(data).as_posix()}?" if path in hints else ""
        left_out[name(path, root)] = f"prediction {path} has no annotation of its name in {data}{hint}"
    unread = _unread_formats(predictions) if alone and predictions.is_dir() else ""
    named = set(hints.values())  # (the song of a prediction the hint names: listed once, there, as evaluate)
    for path in [p for p in alone if p not in named] if predictions.is_dir() else ():  # (one: none missing)
        left_out[name(path, data)] = (
            f"annotation {path} has no prediction of its name in {predictions}{unread}"
        )
    return {name(annotation, data): (path, annotation) for path, annotation in paired.items()}, left_out


def _no_name_pairs_advice(predictions: Path) -> str:
    """What scores transcriptions that no name pairs with their annotations (Billboard's ``0003/audio.lab``
    beside ``0003/majmin.lab``): score takes no pairs file, so one file at a time, or evaluate's --pairs."""
    found = annotations_under(predictions, (".lab",)) if predictions.is_dir() else []
    if not found:
        return ""
    return (
        ". score pairs files by name: where no name pairs them (McGill Billboard's NNNN/majmin.lab), score "
        f"each alone (score {found[0]} --data ANNOTATION.lab), or evaluate the checkpoint with --pairs "
        "FILE.csv (README: 'Your dataset's layout')"
    )


def _unread_formats(predictions: Path) -> str:
    """Where the folder `predictions` holds JAMS files (``predict --format jams`` writes them) or another
    tool's text files (Sonic Annotator's Chordino CSVs), the words that say they are not read, to follow "has
    no prediction of its name": they may be, but not as a .lab; else ""."""
    held = []
    for suffixes, what in ((_JAMS_SUFFIXES, ".jams/.jamz file"), (_OTHER_TOOL_SUFFIXES, "")):
        files = annotations_under(predictions, suffixes)
        # (named by the suffix it has: "1 .csv file"; several kinds: ".csv/.txt file")
        kinds = what or "/".join(sorted({path.suffix.lower() for path in files})) + " file"
        held += [plural(len(files), kinds)] if files else []
    if not held:
        return ""
    return f" ({predictions} holds {' and '.join(held)}, which score does not read{_LAB_ADVICE})"


#: A slash chord's bass written as a note (Chordino's 'Bb/D'): read here as its interval, refused by mir_eval.
_BASS_NOTE_RE = re.compile(r"/\s*[A-G](b*|#*)\s*$")


def _bass_notes(prediction: Path) -> list[tuple[int, str, str]]:
    """(line, label, the label read) of each label of the .lab `prediction`, read already, that writes its
    bass as a note: read_lab takes 'Bb/D' as 'Bb:maj/3', which mir_eval.chord refuses as it stands."""
    found = []
    text = prediction.read_text(encoding="utf-8-sig", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split(None, 2)
        if len(fields) == 3 and not line.lstrip().startswith("#") and _BASS_NOTE_RE.search(fields[2]):
            label = fields[2].strip()
            found.append((number, label, format_harte(parse_harte(label))))
    return found


def _refuse_endless(reference: list[ChordSegment], annotation: Path, prediction: Path, estimate) -> None:
    """An AnnotationError naming `annotation` where it ends past `MAX_SCORED_SECONDS`: framed over its span,
    it was numpy's MemoryError (1e9 s), or minutes and gigabytes of memory (1e7 s)."""
    end = reference[-1].end if reference else 0.0
    if end <= MAX_SCORED_SECONDS:
        return
    transcription = f"{prediction} ends at {estimate[-1].end:g} s" if estimate else f"{prediction} is empty"
    raise AnnotationError(
        f"{annotation}: its last segment ends at {end:g} s, past a day ({MAX_SCORED_SECONDS:g} s), the "
        f"longest span score reads; {transcription}: its times in samples or milliseconds? An annotation's "
        "times are seconds"
    )


def score_predictions(
    predictions: Path,
    data: Path,
    leave_out: Path | None = None,
    allow_gaps: bool = False,
    jams_annotation: int = 0,
    transcriptions: tuple[Path, ...] = (),
    trim_reference: bool = True,
    labels: SongIndex | None = None,
    transcription_gaps: dict[str, list[tuple[float, float]]] | None = None,
    bass_notes: dict[str, list[tuple[int, str, str]]] | None = None,
) -> EvaluationResult:
    """Score the ``.lab`` transcriptions `predictions` (a folder, or one file with one annotation file as
    `data`) against the annotations of `data` (`_pairs`), as `evaluate_songs` scores a model's: the songs
    not paired are `ChordScores.skipped`, with the reason; the folders of other `transcriptions` (--against's)
    are not read as annotations. The span scored is the annotation's (no audio is read), up to the
    transcription's end where the annotation runs past it by 2 s at most (`trim_reference`,
    `EvaluationResult.trimmed`, as evaluate trims it to the audio; `trim_reference` False: never, every song
    scored as mir_eval.chord.evaluate scores the two files); the frame figures are counted at
    `FRAME_RATE`, a transcription's part outside its span as N. `labels` collects the annotations' labels
    that the chord types change (`count_vocabulary_changes`), which the frame figures read so.
    `transcription_gaps` collects, by transcription path, the gaps `allow_gaps` read as N in transcriptions
    (where mir_eval on the file reads the chord before going on), and `bass_notes` their labels that write
    the bass as a note (`_bass_notes`)."""
    start = time.perf_counter()
    paired, skipped = _pairs(predictions, data, leave_out, transcriptions)
    if not paired:
        unread = _unread_formats(predictions) if predictions.is_dir() else ""
        raise ValueError(
            f"no transcription in {predictions} pairs with an annotation in {data}: "
            # (the files of other formats are said once, after the list: each song's reason ends with it)
            + "; ".join(f"{song}: {why.replace(unread, '')}" for song, why in list(skipped.items())[:3])
            + (f" ({len(skipped) - 3} more)" if len(skipped) > 3 else "")
            + unread
            + _no_name_pairs_advice(predictions)
        )
    pairs, gaps, trimmed = {}, {}, {}
    unreadable: list[str] = []  # (each file's AnnotationError)
    confusions = {head: np.zeros((len(c), len(c)), dtype=np.int64) for head, c in FRAME_HEADS.items()}
    for song, (prediction, annotation) in sorted(paired.items()):
        filled: list[tuple[float, float]] = []
        try:
            reference = _read(
                annotation,
                read_annotation,
                allow_gaps=allow_gaps,
                jams_annotation=jams_annotation,
                filled_gaps=filled,
            )
            estimate_gaps: list[tuple[float, float]] = []
            estimate = _read(prediction, read_lab, allow_gaps=allow_gaps, filled_gaps=estimate_gaps)
            if estimate_gaps and transcription_gaps is not None:
                transcription_gaps[str(prediction)] = estimate_gaps
            if bass_notes is not None and (written_so := _bass_notes(prediction)):
                bass_notes[str(prediction)] = written_so
        except EmptyAnnotationError as error:  # a song left out, as evaluate leaves it out; not the others
            skipped[song] = str(error)
            continue
        except AnnotationError as error:  # (all said at once: another tool's folder is corrected in one go)
            unreadable.append(str(error))
            continue
        if labels is not None:
            count_vocabulary_changes(reference, labels, annotation)
        if estimate and trim_reference:
            # A transcription ends where its audio does (predict's): a reference past it by 2 s at most is
            # trimmed there, as evaluate trims it to the audio: both score the same transcription alike.
            reference_end, end = reference[-1].end, estimate[-1].end
            # (by under a millisecond, the rounding of the files' times: scored as mir_eval scores the files)
            reference, overhang = trim_reference_to(reference, end, min_overhang=DEFAULT_TOLERANCE)
            if DEFAULT_TOLERANCE < overhang <= MAX_REFERENCE_OVERHANG_S:
                trimmed[song] = TrimmedReference(
                    annotation.name, str(prediction), reference_end, end, end_of="transcription"
                )
        _refuse_endless(reference, annotation, prediction, estimate)
        pairs[song] = (reference, estimate)
        if filled:
            gaps[song] = GapFilledReference(annotation.name, len(filled), sum(end - s for s, end in filled))
        frames = int(np.ceil(reference[-1].end * FRAME_RATE)) if reference else 0
        decoded = frame_targets(estimate, frames, FRAME_RATE)
        decoded["chord_type"] = np.where(decoded["chord_type"] < 0, N_INDEX, decoded["chord_type"])
        add_frame_counts(confusions, scored_frame_targets(reference, frames, FRAME_RATE), decoded)
    if unreadable:
        more = len(unreadable) - UNREADABLE_LISTED
        listed_here = "\n".join(unreadable[:UNREADABLE_LISTED])
        raise AnnotationError(listed_here + (f"\n... and {plural(more, 'more file')}" if more > 0 else ""))
    if not pairs:
        raise ValueError(f"no song of {predictions} to score: " + "; ".join(skipped.values()))
    scores = score_songs(pairs)
    scores.skipped = dict(sorted(skipped.items()))
    seconds = sum(reference[-1].end - reference[0].start for reference, _ in pairs.values() if reference)
    result = EvaluationResult(
        scores, confusions["chord_type"], seconds, time.perf_counter() - start, pairs, confusions
    )
    result.gap_filled = gaps
    result.trimmed = trimmed
    result.trim_reference = trim_reference
    result.scored = {
        "predictions": os.path.abspath(predictions),
        "data": os.path.abspath(data),
        "audiotrain": versions()["audiotrain"],
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return result


def _far_past_notes(pairs: dict[str, tuple[list[ChordSegment], list[ChordSegment]]]) -> list[str]:
    """Notes of the transcriptions ending past twice their annotation's end (and 2 s past it): scored over
    the annotation's span only, one whose times are milliseconds ('1500 3000 A:min') scored its first
    segment over the whole song, without a word; the likely cause is said."""
    far = {
        song: (estimate[-1].end, reference[-1].end)
        for song, (reference, estimate) in pairs.items()
        if reference
        and estimate
        and estimate[-1].end > max(2 * reference[-1].end, reference[-1].end + MAX_REFERENCE_OVERHANG_S)
    }
    if not far:
        return []
    lines = [
        f"note: {plural(len(far), 'transcription')} far past {'its' if len(far) == 1 else 'their'} "
        "annotation's end, scored over the annotation's span only (a transcription of another song, or "
        "times not in seconds?):"
    ]
    for song, (end, annotated) in sorted(far.items()):
        unit = (
            " (its times in milliseconds? A .lab's times are seconds)" if end / 1000 <= 2 * annotated else ""
        )
        lines.append(
            f"  {song}: its transcription ends at {end:g} s, its annotation at {annotated:g} s{unit}"
        )
    return lines


def _cmd_score(argv: list[str]) -> int:
    parser = cli.SettingsParser(
        prog="python -m audiotrain.recipes.chords score",
        description="Score chord transcriptions already written as .lab files (by predict, Chordino, another "
        "tool) against your annotations with mir_eval.chord: evaluate without the model, with its scores, "
        "tables and files. Each .lab under PREDICTIONS pairs with the annotation of the same name under "
        "--data, as evaluate --annotations pairs audio (case, spaces, underscores and hyphens ignored). No "
        "audio is read: the span scored is each annotation's (up to its transcription's end, where the "
        "annotation runs past it by 2 s at most, as evaluate trims it to the audio; --trim_reference false: "
        "the whole annotation, as mir_eval.chord.evaluate scores the files). A transcription without "
        "an annotation, an annotation without a transcription, or an empty one (no chord segments) is listed "
        "with the reason (in scores.json and scores.md too), the others are scored, and the exit status is "
        "then 1; a .lab that cannot be read is an error naming the file and line (exit status 2).",
    )
    parser.add_argument(
        "predictions", type=path_flag, metavar="PREDICTIONS", help="folder of .lab files, or one .lab file"
    )
    # (several folders, three tools' transcriptions, are named with what compares them, not "unrecognized")
    parser.add_argument("more_predictions", type=path_flag, nargs="*", help=argparse.SUPPRESS)
    parser.add_argument(
        "--data",
        type=path_flag,
        required=True,
        metavar="DIR",
        help="folder of .lab/.jams/.jamz annotations (audio beside them is not read), or one annotation file "
        "when PREDICTIONS is one .lab",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=path_flag,
        default=None,
        metavar="OUT",
        help="where to write the scores (default: no files)",
    )
    parser.add_argument(
        "--against",
        type=path_flag,
        default=None,
        metavar="PREDICTIONS2",
        help="also score these transcriptions on the same annotations and print each score's difference with "
        "a 95%% interval paired over songs (-o: comparison.md and comparison.json)",
    )
    parser.add_argument(
        "--allow_gaps", action="store_true", help="read gaps between segments as N instead of failing"
    )
    parser.add_argument(
        "--jams_annotation",
        type=_annotation_number,
        default=0,
        metavar="N",
        help="which chord annotation of a JAMS file is the reference, counted from 0",
    )
    add_trim_reference_argument(parser, "transcription")
    add_overwrite_argument(parser, help="replace an earlier evaluation's or score's files in the -o folder")
    args = parser.parse_args(argv)
    if args.more_predictions:
        given = " ".join(str(path) for path in (args.predictions, *args.more_predictions))
        parser.error(
            f"score takes one PREDICTIONS (a folder of .lab files, or one .lab), got {given}: compare two "
            f"with score {args.predictions} --data DIR --against {args.more_predictions[0]}; for more, score "
            "each with -o OUT and set their OUT/scores.json side by side"
        )
    for path, flag in ((args.predictions, "PREDICTIONS"), (args.data, "--data"), (args.against, "--against")):
        if path is not None and not path.exists():
            raise FileNotFoundError(f"{flag} {path} does not exist")
    for path, flag in ((args.predictions, "PREDICTIONS"), (args.against, "--against")):
        if path is not None and path.is_dir() and path.resolve() == args.data.resolve():
            # (each .lab there is an annotation: every one was said to have "no annotation of its name")
            raise ValueError(
                f"{flag} {path} is the --data folder: its .lab files are the annotations scored against; "
                "give the folder of the transcriptions to score (predict -o DIR writes one)"
            )
    out = args.output
    if out is not None:
        for path, flag in (
            (args.predictions, "PREDICTIONS"),
            (args.data, "--data"),
            (args.against, "--against"),
        ):
            if path is not None and path.is_dir() and out.resolve() == path.resolve():
                # (--overwrite would remove the .lab files of the songs an earlier scores.json lists: theirs)
                raise ValueError(f"-o {out} is the {flag} folder: write the scores to a folder of their own")
            if path is not None and path.is_dir() and is_inside(path, out):
                # (nothing under -o is read: the files under it would all be said to have no pair)
                raise ValueError(
                    f"-o {out} holds the {flag} {path}, and nothing under -o is read (the scores' own .lab "
                    "copies are there): write the scores to a folder of their own"
                )
        refuse_a_folder_not_searchable(out, f"-o {out}")
        if out.exists() and not out.is_dir():
            raise FileExistsError(
                f"-o {out} is a file; score writes a .lab per song and the scores into a folder"
            )
        check_can_write(out, f"-o {out}")
    transcription_gaps: dict[str, list[tuple[float, float]]] = {}  # (--against's too)
    bass_notes: dict[str, list[tuple[int, str, str]]] = {}
    # (--against's transcriptions are read and trimmed alike: the differences are the transcriptions')
    settings = {
        "transcription_gaps": transcription_gaps,
        "bass_notes": bass_notes,
        "leave_out": out,
        "allow_gaps": args.allow_gaps,
        "jams_annotation": args.jams_annotation,
        "trim_reference": args.trim_reference,
    }
    against = () if args.against is None else (args.against,)
    labels = SongIndex(args.data)
    result = score_predictions(args.predictions, args.data, transcriptions=against, labels=labels, **settings)
    if labels.vocabulary_lines():
        # (as evaluate's scan lists them: the chord types' figures count these as another chord, or as X)
        print(
            f"{args.data}: the frame figures read these annotation labels as the chord types train them; "
            "mir_eval scores them as written",
            *labels.vocabulary_lines(),
            sep="\n",
            file=sys.stderr,
        )
    comparison = None
    if args.against is not None:
        other = score_predictions(args.against, args.data, transcriptions=(args.predictions,), **settings)
        if not set(result.pairs) & set(other.pairs):
            raise ValueError(
                f"{args.predictions} and --against {args.against} pair with no annotation of {args.data} in "
                "common: nothing to compare"
            )
        comparison = compare_results(result, other)
    if out is not None:
        written = [f"{song}.lab" for song in result.pairs] + list(EVALUATION_FILES)
        written += list(COMPARISON_FILES) if comparison is not None else []
        refuse_outputs_of_a_live_run([out / name for name in written], f"-o {args.output}", RUN_OUTPUTS)
        cli.refuse_existing_outputs((out / name for name in written), args.overwrite)
        if args.overwrite:
            clear_run_outputs(out, evaluation_outputs(out), _print_to_stderr)
        if (note := plots_off_note()) is not None:  # (AUDIOTRAIN_PLOTS=0: no confusion_matrix.png)
            print(note, file=sys.stderr)
        try:
            write_evaluation(result, out, args.overwrite)
            if comparison is not None:
                comparison.write(out, args.overwrite)
        except OSError as error:  # (a full disk: what is left in OUT, and the command that writes it all)
            say_what_is_left(error, out, args.overwrite)
            raise
    span = reference_span_words(args.trim_reference, "transcription")
    print(f"{plural(len(result.scores.per_song), 'song')} scored, mir_eval.chord scores in % ({span}):")
    print(result.scores.table())
    if result.trimmed:
        print(trimmed_note(result.trimmed, listed=TRIMMED_LISTED))
    if result.unknown_chord_note:
        print(result.unknown_chord_note)
    if result.gap_filled:
        print(gap_filled_note(result.gap_filled))
    for prediction, labels_read in bass_notes.items():
        number, label, read_as = labels_read[0]
        verb = "writes" if len(labels_read) == 1 else "write"
        print(
            f"note: {prediction}: {plural(len(labels_read), 'label')} {verb} the bass as a note "
            f"(line {number}: {label!r} as {read_as!r}), read here as its interval; mir_eval refuses such a "
            "label: the scores are mir_eval's on the interval form (-o's copy of the .lab holds it)",
            file=sys.stderr,
        )
    for prediction, filled in transcription_gaps.items():  # (the annotations' are listed above)
        print(
            f"note: {prediction}: {plural(len(filled), 'gap')} "
            f"({sum(end - start for start, end in filled):.3f} s) read as N (--allow_gaps); mir_eval on the "
            "file as it is reads a gap as the chord before it going on, so its figures for this song differ",
            file=sys.stderr,
        )
    for line in _far_past_notes(result.pairs):
        print(line, file=sys.stderr)
    if comparison is not None:
        print(f"\nagainst {args.against} (mir_eval.chord, % pooled over time):")
        print(comparison.table(written=out is not None))
    if out is not None:
        print(f"wrote the scores (and a copy of each .lab scored) to {out}")
    if result.scores.skipped:
        reasons = list(result.scores.skipped.values())
        no_annotation = sum(why.startswith("prediction ") for why in reasons)
        no_prediction = sum(why.startswith("annotation ") for why in reasons)
        empty = sum(_NO_SEGMENTS in why for why in reasons)
        other = len(reasons) - no_annotation - no_prediction - empty
        counts = [
            f"{plural(no_prediction, 'annotation')} without a prediction" if no_prediction else "",
            f"{plural(no_annotation, 'prediction')} without an annotation" if no_annotation else "",
            f"{plural(empty, 'empty .lab file')}" if empty else "",
            f"{plural(other, 'prediction')} paired with several annotations" if other else "",
        ]
        print(
            f"not scored: {listed([c for c in counts if c])} (listed on standard output, below the scores"
            + (f", and in {out / 'scores.json'}" if out is not None else "")
            + "): exit status 1",
            file=sys.stderr,
        )
        return 1
    return 0
