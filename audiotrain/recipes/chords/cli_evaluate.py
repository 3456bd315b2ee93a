"""The ``evaluate`` command: score a checkpoint on annotated songs with mir_eval.chord."""

from __future__ import annotations

import sys
from pathlib import Path

from audiotrain._text import audio_speed, listed, plural
from audiotrain.metrics.plot_loading import plots_off_note
from audiotrain.recipes._run import (
    TRANSCRIPTION_COMPILE_WAIT,
    check_can_write,
    check_kernel_cache,
    clear_run_outputs,
    path_flag,
    refuse_a_folder_not_searchable,
    refuse_outputs_of_a_live_run,
)

# SettingsParser, scan_song_folder and refuse_existing_outputs are looked up in the cli module,
# where the tests patch them.
from audiotrain.recipes.chords import cli
from audiotrain.recipes.chords.cli_predictor import _load_predictor, _predictor_arguments, _print_to_stderr
from audiotrain.recipes.chords.data import RUN_OUTPUTS
from audiotrain.recipes.chords.evaluate import (
    COMPARISON_FILES,
    EVALUATION_FILES,
    TRIMMED_LISTED,
    check_output_folder,
    compare_results,
    evaluate_songs,
    evaluation_outputs,
    gap_filled_note,
    held_out_data,
    reference_span_words,
    run_pairing,
    run_pairing_hint,
    run_test_songs,
    say_what_is_left,
    scored_record,
    shared_lab_note,
    songs_trained_on,
    take_run_pairing,
    trained_on_note,
    training_folder_elsewhere,
    trimmed_note,
    unwritable_lab_files,
    write_evaluation,
)
from audiotrain.recipes.config_cli import add_overwrite_argument, parse_bool


def _annotation_number(text: str) -> int:
    """--jams_annotation's value: a whole number from 0 (argparse names the flag when this raises)."""
    number = int(text)
    if number < 0:
        raise ValueError(text)
    return number


_annotation_number.__name__ = "whole number from 0"  # (what argparse's error calls the expected value)


def add_trim_reference_argument(parser, end_of: str) -> None:
    """``--trim_reference true|false``, as evaluate and score both take it (`end_of`: what a reference is
    trimmed to, "audio" or "transcription"). Named after what it switches, the trimming scores.json's
    ``trimmed_references`` lists; false gives mir_eval.chord.evaluate's figures on the files."""
    parser.add_argument(
        "--trim_reference",
        type=parse_bool,
        default=True,
        metavar="true|false",
        help=f"true (the default): a reference running up to 2 s past the {end_of}'s end is scored up to "
        f"the {end_of}'s end, and listed; false: every reference is scored as its file holds it, as "
        "mir_eval.chord.evaluate scores the annotation and the .lab (the estimate padded with N to the "
        "reference's end): the figures to compare with published (MIREX) results. --against's side is "
        "scored the same way; scores.json's trim_reference records it",
    )


def _cmd_evaluate(argv: list[str]) -> int:
    parser = cli.SettingsParser(
        prog="python -m audiotrain.recipes.chords evaluate",
        description="Transcribe every annotated song of a folder with a checkpoint and score it with "
        "mir_eval.chord. Songs that cannot be scored (audio without annotation or the reverse, unreadable, "
        "truncated or too short audio, annotation errors such as gaps without --allow_gaps, an annotation "
        "running over 2 s past its audio) are skipped and listed with the reason, in scores.json and "
        "scores.md too, and the exit status is then 1, as predict's on a folder.",
    )
    parser.add_argument(
        "--data",
        type=path_flag,
        default=None,
        help="folder of audio files with .lab/.jams/.jamz annotations beside them (default: the held-out songs "
        "of the train run --checkpoint is, or is a checkpoint of, as its config.json records them: a demo "
        "run's test set, or its data folder's test songs, as --test_songs_of: the run's own evaluation again)",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=path_flag,
        default=None,
        help="where to write .lab files and scores (default: no files)",
    )
    parser.add_argument(
        "--allow_gaps",
        action="store_true",
        default=None,  # off, or with --test_songs_of the run's
        help="fill gaps in annotations with N instead of failing (with --test_songs_of: as the run did)",
    )
    parser.add_argument(
        "--annotations",
        type=path_flag,
        default=None,
        metavar="DIR",
        help="folder of annotations kept apart from the audio (Isophonics' chordlab/): an audio file with no "
        "annotation beside it pairs with the one anywhere under DIR whose name matches, case ignored and "
        "each run of spaces, underscores and hyphens read as one separator (typographic quotes as ASCII); of "
        "several of one name, the one in the folder that mirrors the audio's; a name two files share "
        "otherwise, or one whose sub-folders share no folder name with the audio's (another artist's song "
        "of that title), pairs none (listed)",
    )
    parser.add_argument(
        "--pairs",
        type=path_flag,
        default=None,
        metavar="FILE.csv",
        help="CSV file of audio,annotation rows, paths relative to its folder, for layouts no name rule fits "
        "(McGill Billboard, GuitarSet)",
    )
    parser.add_argument(
        "--jams_annotation",
        type=_annotation_number,
        default=None,  # 0, or with --test_songs_of the run's
        metavar="N",
        help="which chord annotation of a JAMS file is the reference, counted from 0 (GuitarSet: 0 the lead "
        "sheet's chords, 1 the performed ones); a song whose file has fewer is skipped and listed. With "
        "--test_songs_of, this, --annotations, --pairs and --allow_gaps default to the run's",
    )
    add_overwrite_argument(
        parser,
        help="replace an earlier evaluation in the -o folder: first remove what it wrote there (scores, "
        "plots, comparison, and the .lab files of the songs its scores.json lists); other files stay",
    )
    parser.add_argument(
        "--against",
        type=path_flag,
        default=None,
        metavar="CHECKPOINT",
        help="also score this checkpoint (or run folder) on the same songs, with the same --tta and decoding "
        "flags, and print each score's difference with a 95%% interval paired over songs (-o: "
        "comparison.md and comparison.json; its .lab files are not written)",
    )
    parser.add_argument(
        "--test_songs_of",
        type=path_flag,
        default=None,
        metavar="RUN",
        help="score only the songs of --data that the train run in folder RUN held out for its final "
        "evaluation (its config.json lists them; they lie among its training songs): that evaluation again. "
        "RUN may be one of its checkpoints, also one moved out of the run folder (it lists them too)",
    )
    add_trim_reference_argument(parser, "audio")
    _predictor_arguments(parser)
    args = parser.parse_args(argv)
    check_kernel_cache(log=_print_to_stderr, wait=TRANSCRIPTION_COMPILE_WAIT)
    if args.output is not None:
        # Found now, not when the first .lab is written after transcribing every song.
        refuse_a_folder_not_searchable(args.output, f"-o {args.output}")
        if args.output.exists() and not args.output.is_dir():
            raise FileExistsError(
                f"-o {args.output} is a file; evaluate writes a .lab per song and the scores into a folder"
            )
        check_can_write(args.output, f"-o {args.output}")
    data_of_the_run = args.data is None
    if args.data is None:  # the run's held-out songs, as its own evaluation scored them
        args.data, test_songs_only = held_out_data(args.test_songs_of or args.checkpoint)
        if test_songs_only and args.test_songs_of is None:
            args.test_songs_of = args.checkpoint
        which = "its test songs in" if test_songs_only else "its demo test set,"
        print(
            f"--data not given: scoring the held-out songs of {args.checkpoint}: {which} {args.data}",
            file=sys.stderr,
        )
    if args.test_songs_of is not None:  # its test songs, paired and scored as that run did
        for line in take_run_pairing(args, args.test_songs_of):
            print(line, file=sys.stderr)
    args.jams_annotation = args.jams_annotation or 0
    args.allow_gaps = bool(args.allow_gaps)
    predictor = _load_predictor(args)
    against = _load_predictor(args, args.against) if args.against is not None else None
    if against is not None and None not in (predictor.checkpoint, against.checkpoint):
        if Path(predictor.checkpoint).resolve() == Path(against.checkpoint).resolve():
            print(
                f"note: --against {args.against} is the checkpoint scored ({predictor.checkpoint}), with the "
                "same settings: every difference is 0",
                file=sys.stderr,
            )
    try:
        index = cli.scan_song_folder(
            args.data,
            allow_gaps=args.allow_gaps,
            min_duration=max(p.features.min_seconds for p in (predictor, against) if p is not None),
            jams_annotation=args.jams_annotation,
            annotations_dir=args.annotations,
            pairs_file=args.pairs,
            leave_out=args.output,  # (an -o inside the data folder: its earlier .lab files are not songs)
        )
    except ValueError as error:
        if not (data_of_the_run and args.pairs is not None):
            raise
        # A pairs file of other songs was refused row by row ("not an audio file the scan of <the run's
        # folder> found"), the missing --data said only in the line before.
        raise ValueError(
            f"{error} (--data not given: the folder scanned is the one {args.checkpoint} records; give "
            "--data DIR, the folder of the pairs file's audio)"
        ) from None
    # (Linked folders too: which folders were scanned is part of what was scored.)
    noted = (
        index.several_annotations,
        index.zero_length,
        index.outside_vocabulary,
        index.reduced_labels,
        index.linked_folders,
        index.links_not_entered,
        index.links_not_used,
        index.unused_annotations,
        index.left_out_folder,
    )
    if index.problems or any(noted):
        print(index.report(), file=sys.stderr)
    if not index.songs:
        hint = run_pairing_hint(run_pairing(args.test_songs_of)) if args.test_songs_of is not None else ""
        pairing = index.pairing_hint("--annotations", "--pairs")
        print(
            f"error: no annotated songs in {args.data}{hint}{f'; {pairing}' if pairing else ''}",
            file=sys.stderr,
        )
        return 2
    skipped = index.skipped_songs()
    if args.test_songs_of is not None:
        index.songs, skipped = run_test_songs(args.test_songs_of, args.data, index.songs, skipped)
    if args.output is not None:  # before any song is transcribed; an annotation in the way first
        check_output_folder(index.songs, args.output)
        written = [f"{song.name}.lab" for song in index.songs] + list(EVALUATION_FILES)
        written += list(COMPARISON_FILES) if against is not None else []
        targets = [args.output / name for name in written]
        refuse_outputs_of_a_live_run(targets, f"-o {args.output}", RUN_OUTPUTS)  # (--overwrite too)
        cli.refuse_existing_outputs(targets, args.overwrite)
        shared = unwritable_lab_files([song.name for song in index.songs], args.output)
        if shared:  # (said before minutes of transcription, and in scores.json)
            print(f"note: {shared_lab_note(shared)}", file=sys.stderr)
        if args.overwrite:  # an earlier evaluation's .lab files of other songs would pass for this one's
            clear_run_outputs(args.output, evaluation_outputs(args.output), _print_to_stderr)
    result = evaluate_songs(
        predictor,
        index.songs,
        allow_gaps=args.allow_gaps,
        skipped=skipped,
        scored=scored_record(predictor, args.data),
        trim_reference=args.trim_reference,
    )
    result.trained_on = songs_trained_on(predictor.checkpoint, result.scores.per_song)
    comparison = None
    if against is not None:
        baseline = evaluate_songs(
            against,
            index.songs,
            allow_gaps=args.allow_gaps,
            scored=scored_record(against, args.data),
            trim_reference=args.trim_reference,  # (both sides alike: the differences are the models')
        )
        comparison = compare_results(result, baseline)
        # The checkpoint compared with may have trained on these songs too (an older run scored on its own
        # data folder): its side of the difference is then no held-out score either.
        against_trained_on = trained_on_note(
            songs_trained_on(against.checkpoint, baseline.scores.per_song),
            against.checkpoint,
            len(baseline.scores.per_song),
            written=False,
            elsewhere=training_folder_elsewhere(against.checkpoint, args.data),
        )
    # Written before anything is printed: a reader that leaves early (`| head -3`) ends the printing, and must
    # not cost the files of minutes of transcription. A write that fails (a scores.json another evaluation
    # wrote there meanwhile) is raised once the scores are printed, which it must not cost either.
    not_replaced, write_error = [], None
    if args.output is not None:
        if (note := plots_off_note()) is not None:  # (AUDIOTRAIN_PLOTS=0: no confusion_matrix.png)
            print(note, file=sys.stderr)
        try:
            not_replaced = write_evaluation(result, args.output, args.overwrite)
            if comparison is not None:
                not_replaced += comparison.write(args.output, args.overwrite)
        except OSError as error:
            write_error = error
    songs = plural(len(result.scores.per_song), "song")
    span = reference_span_words(args.trim_reference)
    print(
        f"{songs} scored, mir_eval.chord scores in % (pooled over time / median over "
        f"songs; {span}; songs skipped are listed below the table):"
        if result.scores.skipped
        else f"{songs}, mir_eval.chord scores in % (pooled over time / median over songs; {span}):"
    )
    print(result.scores.table())
    if result.trimmed:
        print(trimmed_note(result.trimmed, listed=TRIMMED_LISTED))
    if result.unknown_chord_note:
        print(result.unknown_chord_note)
    if result.gap_filled:
        print(gap_filled_note(result.gap_filled, listed=TRIMMED_LISTED))
    if result.frames_note:
        print(f"note: {result.frames_note}")
    print(f"transcription speed: {audio_speed(result.audio_seconds, result.wall_seconds)}")
    trained_on = trained_on_note(
        result.trained_on,
        predictor.checkpoint,
        len(result.scores.per_song),
        written=args.output is not None,
        elsewhere=training_folder_elsewhere(predictor.checkpoint, args.data),
    )
    if (
        trained_on
    ):  # not an error (scoring the training songs can be the point), but not to be taken as held out
        print(f"note: {trained_on}")
    if comparison is not None:
        print(
            f"\nagainst {args.against}, on the {len(comparison.scores.per_song)} songs both scored "
            "(mir_eval.chord, % pooled over time):"
        )
        print(comparison.table(written=args.output is not None))
        if against_trained_on:
            print(f"note: {against_trained_on}")
    if write_error is not None:
        raise say_what_is_left(write_error, args.output, args.overwrite)
    if args.output is not None:
        print(f"wrote .lab files and scores to {args.output}")
    if not_replaced:
        print(
            f"not written: {listed(not_replaced)} appeared in {args.output} while evaluating (written by another "
            "program since the start) and were not replaced: pass --overwrite to replace them; exit status 1",
            file=sys.stderr,
        )
    if result.scores.skipped:  # as predict on a folder: the scores do not cover every song given
        # Where the list is, not "above": stdout may go to a file (`> results.txt`), and the songs skipped
        # while transcribing are listed there alone; scores.json only with -o.
        scores_json = f", and in {args.output / 'scores.json'}" if args.output is not None else ""
        print(
            f"{plural(len(result.scores.skipped), 'song')} skipped (listed on standard output, below the "
            f"scores{scores_json}): exit status 1",
            file=sys.stderr,
        )
    return 1 if result.scores.skipped or not_replaced else 0
