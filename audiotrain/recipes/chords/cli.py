"""Chord recognition, end to end: songs with chord labels → a trained model → ``.lab`` predictions and scores.

Command line (``python -m audiotrain.recipes.chords --help``)::

    python -m audiotrain.recipes.chords                      # demo: synthesise songs, train, evaluate
    python -m audiotrain.recipes.chords train --data DIR     # your songs: audio + .lab/.jams/.jamz beside them
    python -m audiotrain.recipes.chords train --data DIR --init_from RUN   # fine-tune RUN's model on them
    python -m audiotrain.recipes.chords evaluate --checkpoint RUN/checkpoints/best --data DIR
    python -m audiotrain.recipes.chords predict --checkpoint RUN/checkpoints/best song.wav -o song.lab

Settings: defaults < ``--preset`` (``quick_test``: seconds; ``development``; ``production``: real data; see
`audiotrain.recipes.chords.config.PRESETS`) < ``--config FILE`` (YAML/JSON, or a run's ``config.json``, which
repeats that run) < flags.

A run folder holds ``config.json`` (the resolved config, versions, command), ``checkpoints/`` (``best`` by
validation loss, ``last``, and one every ``save_every`` epochs: each a resumable Trainer checkpoint that
also carries the model, feature and decoding settings and the vocabulary, so ``predict`` needs nothing
else), ``history.json`` and ``training_curves.png``, and ``evaluation/`` with one ``.lab`` per held-out
song, ``scores.json`` / ``scores.md`` (``mir_eval.chord`` scores) and ``confusion_matrix.png``.

From Python: `audiotrain.recipes.chords.train.run_training(config, run_dir)` does what the ``train`` / demo
commands do, and ``Trainer(...).train_with_cv(folds=5, data_dir=DIR)`` what ``cv`` does.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from audiotrain.audio import UNREADABLE_AUDIO_SUFFIXES, AudioError, SkipCounter
from audiotrain.chords.lab import SeveralAnnotationsWarning, jams_text, write_jams, write_lab
from audiotrain.datasets._folders import AUDIO_FILE_SUFFIXES, hidden_note, walk_visible_following_links
from audiotrain.datasets.chord_songs import scan_song_folder
from audiotrain.distributed import collectives
from audiotrain.distributed.failures import error_left_to_main
from audiotrain.distributed.local import (
    in_launched_job,
    install_rank_stop_signal,
    plan_local_processes,
    run_local_job,
)
from audiotrain.recipes._run import (
    check_can_write,
    check_kernel_cache,
    checkpoint_processes,
    clear_run_outputs,
    is_inside,
    name_too_long,
    nonempty_path,
    path_flag,
    refuse_existing_outputs,
    resume_command,
    resume_processes_note,
    shell_command,
)
from audiotrain.recipes.chords.config import (
    PRESETS,
    TrainingConfig,
    benchmark_config,
    check_model_fits_memory,
    derived_settings,
    older_record_meanings,
)
from audiotrain.recipes.chords.data import check_cache_writable, folder_splits
from audiotrain.recipes.chords.evaluate import (
    COMPARISON_FILES,
    EVALUATION_FILES,
    TRIMMED_LISTED,
    check_output_folder,
    compare_results,
    evaluate_songs,
    evaluation_outputs,
    run_test_songs,
    trimmed_note,
    write_evaluation,
)
from audiotrain.recipes.chords.export import main as export_main
from audiotrain.recipes.chords.init_from import check_init_from, with_checkpoint_model
from audiotrain.recipes.chords.predict import (
    DEFAULT_TTA_SEMITONES,
    ChordPredictor,
    annotation_in_the_way,
    folds_case,
    output_paths,
    silence_note,
)
from audiotrain.recipes.chords.song_record import UNRECORDED_DEMO_FLAG, unrecorded_demo_note
from audiotrain.recipes.chords.task import CHECKPOINT_KEY
from audiotrain.recipes.chords.train import check_output_folders, check_resume_settings, run_training
from audiotrain.recipes.config_cli import (
    USER_ERRORS,
    SettingsParser,
    add_dataclass_arguments,
    add_preset_argument,
    load_config_data,
    merge_config,
    parse_bool,
    read_older_record,
    resolve_settings,
    unknown_command_message,
)
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.interrupt import (
    stop_exit_status,
    stop_on_signals,
    stop_signal_name,
    stop_status,
    stopped_by,
)

__all__ = ["COMMANDS", "main"]

COMMANDS = ("demo", "train", "evaluate", "predict", "cv", "export")
#: Config fields without a flag: the model's input width follows the features, its head the vocabulary.
DERIVED_FIELDS = frozenset(derived_settings(TrainingConfig()))
DECODE_HELP = {
    "decode.method": "smoothing of frame posteriors: viterbi (HMM), median or argmax",
    "decode.self_transition": "viterbi: probability of staying in the same chord from frame to frame",
    "decode.median_frames": "median: filter width in frames (odd)",
    "decode.joint_bass": "viterbi over (chord, bass) pairs (the bass is a chord tone); off: separate paths",
    "decode.chord_head_weight": "weight of the joint chord head against the type x root heads (1: head alone)",
    "decode.unknown_chords": "output X (unknown chord) labels; off: the most likely real chord (or N) instead",
    "decode.refine_boundaries": "viterbi: put each chord change where the two chords' frame log-probabilities "
    "cross; off: halfway between the frames",
    "decode.bass_onset_frames": "joint viterbi: each segment's bass is the chord tone heard most as it starts "
    "(bass posteriors weighted by exp(-t / this), t frames from its start); 0: the path's own bass",
    "decode.silence_db": "frames quieter than the song's median frame by more than this many dB are N "
    "(a chord's fading tail after its notes stop); 0: off",
}
DECODE_CHOICES = {"decode.method": ("viterbi", "median", "argmax")}
#: What predict takes from a folder: every suffix the loader reads, and the audio containers it does not (m4a,
#: wma, ...), which are then skipped and listed with how to convert them rather than passed over unsaid.
PREDICTED_SUFFIXES = AUDIO_FILE_SUFFIXES | UNREADABLE_AUDIO_SUFFIXES
#: Path flags that a printed resume command writes absolute, so that it continues the run pasted in any folder
#: (not --checkpoint_dir: a relative one lies inside the run folder, wherever that is).
RESUME_PATH_FLAGS = ("--data", "--data.data_dir", "--data.cache_dir", "--config", "--init_from", "--run_dir")


RESUME_HELP = "resume training from this checkpoint folder (e.g. RUN/checkpoints/last)"
INIT_FROM_HELP = (
    "start a new run from this checkpoint's model weights (a checkpoint folder, or a run folder: its best), "
    "e.g. fine-tune the demo model on your songs: a new optimizer, learning-rate schedule and epoch count, "
    "this run's songs, a run folder of its own. The model and feature settings are the checkpoint's; a "
    "--preset, --config or flag that changes one is refused (--model.dropout may differ). With --resume "
    "(the command an interrupted run prints) the resumed checkpoint's weights are used"
)
OVERWRITE_HELP = (
    "replace a previous run in --run_dir (its checkpoints, config.json, history.json, plots and evaluation; "
    "other files stay); without it a --run_dir that holds files is refused, unless --resume names a "
    "checkpoint inside it"
)


def _training_parser(
    prog: str,
    description: str,
    needs_data: bool,
    resume_help: str = RESUME_HELP,
    overwrite_help: str = OVERWRITE_HELP,
    init_from: bool = False,
    help_command: str | None = None,
) -> argparse.ArgumentParser:
    parser = SettingsParser(prog=prog, description=description, help_command=help_command)
    if needs_data:
        parser.add_argument(
            "--data", dest="data_folder", default=None, type=path_flag, metavar="DIR",
            help="folder of audio files with .lab/.jams/.jamz annotations beside them (same stem); the same as "
            "--data.data_dir, and may instead come from the --config file's data.data_dir",
        )  # fmt: skip
    parser.add_argument(
        "--run_dir", type=path_flag, default=None, help="output folder (default: runs/chords-<date>-<time>)"
    )
    parser.add_argument(
        "--config",
        type=path_flag,
        default=None,
        help="YAML/JSON file with TrainingConfig fields (flags override it), or a run's config.json (repeats it)",
    )
    add_preset_argument(parser, PRESETS)
    parser.add_argument("--resume", type=path_flag, default=None, help=resume_help)
    if init_from:
        parser.add_argument(
            "--init_from", type=path_flag, default=None, metavar="CHECKPOINT", help=INIT_FROM_HELP
        )
        parser.add_argument(
            UNRECORDED_DEMO_FLAG,
            action="store_true",
            help="resume a demo run whose checkpoint records no demo generator versions (written by an older "
            "audiotrain) on the demo songs as this version renders them, though a generator changed since "
            "would make them other songs",
        )
    parser.add_argument("--overwrite", action="store_true", help=overwrite_help)
    parser.add_argument(
        "--benchmark",
        action="store_true",
        help="start from the longer benchmark config instead of the defaults",
    )
    add_dataclass_arguments(
        parser, TrainingConfig(), skip=DERIVED_FIELDS, help_texts=DECODE_HELP, choices=DECODE_CHOICES
    )
    return parser


def _predictor_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments `_load_predictor` reads: the checkpoint and decoding overrides."""
    parser.add_argument("--checkpoint", required=True, type=path_flag,
                        help="checkpoint folder (or a run folder: uses its best checkpoint)")  # fmt: skip
    parser.add_argument("--decode.method", dest="decode_method", choices=DECODE_CHOICES["decode.method"], default=None,
                        help="smoothing of frame posteriors (default: the checkpoint's)")  # fmt: skip
    parser.add_argument("--decode.self_transition", dest="decode_self_transition", type=float, default=None, metavar="P",
                        help="viterbi: probability of staying in the same chord per frame (default: the checkpoint's)")  # fmt: skip
    parser.add_argument("--decode.median_frames", dest="decode_median_frames", type=int, default=None, metavar="FRAMES",
                        help="median: filter width in frames, odd (default: the checkpoint's)")  # fmt: skip
    parser.add_argument("--decode.joint_bass", dest="decode_joint_bass", type=parse_bool, default=None,
                        metavar="BOOL", help="viterbi over (chord, bass) pairs, the bass a chord tone; "
                        "false: separate chord and bass paths (default: the checkpoint's)")  # fmt: skip
    parser.add_argument("--decode.refine_boundaries", dest="decode_refine_boundaries", type=parse_bool, default=None,
                        metavar="BOOL", help="viterbi: place each chord change where the two chords' frame "
                        "log-probabilities cross, not halfway between frames (default: the checkpoint's)")  # fmt: skip
    parser.add_argument("--decode.bass_onset_frames", dest="decode_bass_onset_frames", type=float, default=None, metavar="FRAMES",
                        help="joint viterbi: each segment's bass is the chord tone heard most as it starts, "
                        "weighted by exp(-t / this) t frames in; 0: the path's own (default: the checkpoint's)")  # fmt: skip
    parser.add_argument("--decode.silence_db", dest="decode_silence_db", type=float, default=None, metavar="DB",
                        help="frames quieter than the song's median frame by more than this many dB are N; "
                        "0: off (default: the checkpoint's)")  # fmt: skip
    parser.add_argument("--decode.unknown_chords", dest="decode_unknown_chords", type=parse_bool, default=None,
                        metavar="BOOL", help="output X (unknown chord) labels (default: the checkpoint's)")  # fmt: skip
    parser.add_argument("--tta", type=int, default=None, metavar="SEMITONES",
                        help="test-time augmentation: average the posteriors of the audio shifted by -N..N "
                        f"semitones (default {DEFAULT_TTA_SEMITONES}, or the checkpoint's features.max_pitch_shift "
                        "if smaller; at most that max_pitch_shift, as far as its spare bins reach: 6 covers all 12 "
                        "keys; 0: off, about twice as fast; costs 2N+1 forward passes)")  # fmt: skip


def _load_predictor(args: argparse.Namespace, checkpoint: Path | None = None) -> ChordPredictor:
    """The predictor of `checkpoint` (default ``--checkpoint``) with the ``--tta`` and decoding flags."""
    checkpoint = checkpoint if checkpoint is not None else args.checkpoint
    if args.tta is not None and args.tta < 0:  # (the upper bound is the checkpoint's, checked below)
        raise ValueError(f"--tta must be 0 semitones (off) or more, got {args.tta}")
    predictor = ChordPredictor.from_checkpoint(checkpoint)  # the default shifts always fit its features
    reach = predictor.features.max_pitch_shift
    if args.tta is not None and args.tta > reach:
        raise ValueError(
            f"--tta {args.tta}: {checkpoint} was trained with features.max_pitch_shift {reach}, so its "
            f"features reach {reach} semitones either way; use --tta {reach}" + (" or less" if reach else "")
        )
    if args.tta is not None:
        predictor.tta_shifts = tuple(range(-args.tta, args.tta + 1))
    changes = {
        k: v
        for k, v in (
            ("method", args.decode_method),
            ("self_transition", args.decode_self_transition),
            ("median_frames", args.decode_median_frames),
            ("unknown_chords", args.decode_unknown_chords),
            ("joint_bass", args.decode_joint_bass),
            ("refine_boundaries", args.decode_refine_boundaries),
            ("bass_onset_frames", args.decode_bass_onset_frames),
            ("silence_db", args.decode_silence_db),
        )
        if v is not None
    }
    if changes:  # validated as the training flags are, and named as the flags
        predictor.decode = merge_config(predictor.decode, changes, source="command line", path="decode.")
    return predictor


def _config_from_args(args: argparse.Namespace) -> TrainingConfig:
    """Defaults (or the benchmark's) < ``--preset`` < the ``--config`` file < flags; a cache or data folder
    given relative to the working folder is made absolute, so that the run's config.json repeats it from
    any folder rather than filling a new cache there (or finding no songs). (An empty one means the default
    cache, or the demo songs.)"""
    from dataclasses import replace

    config = benchmark_config() if args.benchmark else TrainingConfig()
    if getattr(args, "init_from", None) is not None:  # its model and features, unless told otherwise
        config = with_checkpoint_model(config, args.init_from)
    config = resolve_settings(config, PRESETS, args.preset, args.config, args, derived=derived_settings)
    if args.config is not None:
        config = _with_older_record_meanings(config, args)
    check_model_fits_memory(config)
    for name in ("cache_dir", "data_dir"):
        folder = getattr(config.data, name)
        if folder:
            absolute = str(Path(folder).expanduser().resolve())
            config = replace(config, data=replace(config.data, **{name: absolute}))
    return config


def _with_older_record_meanings(config: TrainingConfig, args: argparse.Namespace) -> TrainingConfig:
    """`config` with the settings that a ``--config`` run record of an older audiotrain lacks read as that
    version ran where that is known (`older_record_meanings`: no bass view, no tuning correction, the train
    style alone, one process), and one line that says so (`read_older_record`). Filled silently with today's
    defaults, they trained another model size on other demo songs in another process count."""
    meanings = older_record_meanings()
    if getattr(args, "init_from", None) is not None:  # the model and features are the checkpoint's
        meanings = {k: v for k, v in meanings.items() if not k.startswith(("model.", "features."))}
    resuming = getattr(args, "resume", None) is not None
    config, note = read_older_record(
        config, args.config, vars(args), meanings, skip=DERIVED_FIELDS, resuming=resuming
    )
    if note and not in_launched_job():  # (the command the user ran says it, not each of its processes)
        print(note)
    return config


def _with_data_folder(
    parser: argparse.ArgumentParser, args: argparse.Namespace, config: TrainingConfig
) -> TrainingConfig:
    """`config` with the data folder of `train`: ``--data`` or ``--data.data_dir`` on the command line (they
    must agree when both are given), else ``data.data_dir`` of the ``--config`` file; an error if none."""
    from dataclasses import replace

    flag_dir = getattr(args, "data.data_dir", None)
    if flag_dir is not None and not flag_dir.strip():  # an empty path is no folder (nor the current one)
        parser.error("--data.data_dir is an empty path (an unset shell variable?); give the song folder")
    if args.data_folder is not None and flag_dir is not None and Path(flag_dir) != args.data_folder:
        parser.error(
            f"--data {args.data_folder} and --data.data_dir {flag_dir} name different folders; give one"
        )
    if args.data_folder is not None:
        folder, source = args.data_folder, f"--data {args.data_folder}"
    elif flag_dir is not None:
        folder, source = Path(flag_dir), f"--data.data_dir {flag_dir}"
    elif config.data.data_dir:
        folder, source = (
            Path(config.data.data_dir),
            f"data.data_dir {config.data.data_dir} (in {args.config})",
        )
    else:
        where = f"; {args.config} has no data.data_dir" if args.config is not None else ""
        parser.error(
            "no data folder: pass --data DIR (or --data.data_dir DIR), or set data.data_dir in the file given "
            f"with --config{where}"
        )
    if not folder.is_dir():
        parser.error(f"{source}: no such folder")
    # Absolute: the run's config.json then repeats the run (--config RUN/config.json) from any folder.
    return replace(config, data=replace(config.data, data_dir=str(folder.resolve())))


def _cmd_train(argv: list[str], demo: bool) -> int:
    prog = "python -m audiotrain.recipes.chords" + ("" if demo else " train")
    description = (
        "Demo: generate (or reuse) synthetic songs, train, evaluate on held-out songs, write everything to a run folder."
        if demo
        else "Train on a folder of songs (split by song, or by folder with --data.split_by, into "
        "train/val/test), then evaluate on the test songs; every file the folder's scan leaves out is listed "
        "in the run folder's data_report.txt."
    )
    # The demo's flags need no command, but `--help` without one is the overview of the commands.
    help_command = "python -m audiotrain.recipes.chords demo --help" if demo else None
    parser = _training_parser(
        prog, description, needs_data=not demo, init_from=True, help_command=help_command
    )
    args = parser.parse_args(argv)
    try:
        config = _config_from_args(args)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    if args.config is not None and args.init_from is None:
        _note_a_run_started_from_weights(args.config)
    if not demo:
        config = _with_data_folder(parser, args, config)
    check_kernel_cache(on_cpu=config.training_device() == "cpu")  # (MLX's own folder, as the run's below)
    resumed_processes = checkpoint_processes(args.resume)
    try:
        plan = plan_local_processes(
            config.processes,
            config.batch_size,
            resumed_processes=resumed_processes,
            on_cpu=config.training_device() == "cpu",  # --device cpu on a machine with a GPU too
        )
    except ValueError as error:
        parser.error(str(error))
    if not in_launched_job():  # (said once, by the command the user ran)
        if args.config is not None:
            _note_another_process_count(args.config, plan.processes)
        note = resume_processes_note(
            args.resume, resumed_processes, config.processes, plan.processes, "--processes"
        )
        if note:
            print(note)
        if args.resume and args.resume_unrecorded_demo:
            note = unrecorded_demo_note(args.resume, config.data, from_demo=not config.data.data_dir)
            if note:
                print(note)
    if plan.processes > 1:
        # Refusals of the run folder and of the checkpoint to resume come once, from here, not from each rank.
        check_output_folders(
            config, Path(args.run_dir) if args.run_dir else None, args.resume, args.overwrite
        )
        if args.resume:
            own = Path(args.run_dir) if args.run_dir and is_inside(args.resume, args.run_dir) else None
            check_resume_settings(
                config, args.resume, resume_unrecorded_demo=args.resume_unrecorded_demo, run_dir=own
            )
        if args.init_from:
            check_init_from(config, args.init_from, Path(args.run_dir) if args.run_dir else None)
        if config.data.data_dir:  # so is a data folder with too few usable songs (its headers are read twice)
            folder_splits(config.data, config.seed, min_seconds=config.features.min_seconds)
        check_cache_writable(config.data)  # (each rank would meet it, after starting MPI)
        return run_local_job(plan, "audiotrain.recipes.chords", ([] if demo else ["train"]) + argv)
    if plan.note:
        print(plan.note)
    unrecorded_demo = {"resume_unrecorded_demo": True} if args.resume_unrecorded_demo else {}
    result = run_training(
        config,
        args.run_dir,
        resume=args.resume,
        overwrite=args.overwrite,
        init_from=args.init_from,
        **unrecorded_demo,
    )
    if not collectives.is_main_process():
        return 0  # rank 0 reports for a data-parallel job
    if result.checkpoint is None:  # run_training said that Ctrl-C came before anything was saved
        return stop_exit_status()
    print(f"\nrun folder: {result.run_dir}")
    print(f"  checkpoint:  {result.checkpoint}")
    print(f"  history:     {result.run_dir / 'history.json'} (+ training_curves.png)")
    if result.evaluation is not None:
        # No confusion matrix where no frame was scored (the evaluation's note said why).
        plot = "" if result.evaluation.frames_note else ", confusion_matrix.png"
        print(f"  predictions: {result.run_dir / 'evaluation'} (.lab per song, scores.json, scores.md{plot})")
    predict = shell_command(
        "python", "-m", "audiotrain.recipes.chords", "predict", "--checkpoint", result.checkpoint, "SONG.wav",
        "-o", "SONG.lab",
    )  # fmt: skip
    print(f"predict with: {predict}")
    if result.interrupted_checkpoint is not None:
        command = resume_command(
            "audiotrain.recipes.chords",
            ([] if demo else ["train"]) + argv,
            result.interrupted_checkpoint,
            run_dir=result.run_dir,  # goes on in this folder, keeping its best checkpoint
            path_flags=RESUME_PATH_FLAGS,
        )
        print(f"training was interrupted ({stopped_by()}); continue it with:\n  {command}")
        return stop_exit_status()  # as a shell reports a command that signal stopped (130 for Ctrl-C)
    return stop_exit_status() if result.interrupted else 0  # (Ctrl-C after training: plots, evaluation)


def _run_record(config_file: Path) -> dict | None:
    """The ``--config`` file's settings as a dict, or None where it is not one (resolve_settings read it
    already: its errors are said there)."""
    try:
        record = load_config_data(config_file)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _note_a_run_started_from_weights(config_file: Path) -> None:
    """Say so when ``--config`` names a run record (config.json, or a checkpoint's trainer_state.json) of a
    run that started from a checkpoint's weights, and ``--init_from`` is not given: the settings repeat
    that run, but the weights would start random."""
    record = _run_record(config_file)
    if record is None:
        return
    stored = (record.get("module_state") or {}).get(CHECKPOINT_KEY) or {}
    started = record.get("init_from") or (stored.get("init_from") if isinstance(stored, dict) else None)
    if isinstance(started, dict) and started.get("checkpoint"):
        print(
            f"note: the run of {config_file} started from the weights of {started['checkpoint']} "
            f"(--init_from); this one starts from random weights unless you pass --init_from too"
        )


def _note_another_process_count(config_file: Path, processes: int) -> None:
    """Say so when ``--config`` names the record of a run (config.json, or a checkpoint's trainer_state.json)
    that trained in another number of processes than this one will: ``processes`` 0 (one per core) resolves
    per machine, and the weights differ in float rounding with the count (the batch is split otherwise)."""
    record = _run_record(config_file)
    if record is None:
        return
    used = record.get("processes_used")  # a run folder's config.json
    if used is None and "progress" in record:  # a checkpoint's trainer_state.json
        used = (record.get("global_batch") or {}).get("world_size")
    if isinstance(used, int) and used >= 1 and used != processes:
        print(
            f"note: the run of {config_file} trained in {used} process{'es' * (used > 1)}, this one "
            f"trains in {processes}: the same settings then give other weights (float rounding), so it "
            f"repeats that run only approximately; pass --processes {used} to repeat it exactly"
        )


def _cmd_cv(argv: list[str]) -> int:
    from audiotrain.recipes.chords.cv import CrossValidationInterrupted, fold_name, run_cross_validation

    parser = _training_parser(
        "python -m audiotrain.recipes.chords cv",
        "Cross-validation grouped by song: every song is scored by the fold that did not train on it.",
        needs_data=True,
        resume_help="continue the cv run in this folder (stopped by Ctrl-C or a crash) with the same flags: "
        "its finished folds are kept, the stopped one resumes from its checkpoint, the rest are trained",
        overwrite_help="replace a previous cv run in --run_dir (its fold<k>/ folders, oof/, cv_scores.* and "
        "cv_progress.json; other files stay); without it a --run_dir that holds files is refused",
    )
    parser.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    args = parser.parse_args(argv)
    try:
        config = _config_from_args(args)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    if args.data_folder is not None or getattr(args, "data.data_dir", None) or config.data.data_dir:
        config = _with_data_folder(parser, args, config)
    if config.processes > 1:
        parser.error(
            f"--processes {config.processes}: cv trains its folds in this process (the demo and train commands "
            "start one process per core); under mlx.launch or mpirun every fold trains data parallel"
        )
    if args.resume is not None and args.overwrite:
        parser.error("--resume continues the cv run in its folder and --overwrite replaces it; give one")
    if args.resume is not None and not args.resume.is_dir():  # (--resume names the folder, not --run_dir)
        parser.error(
            f"--resume {args.resume} "
            + ("is a file" if args.resume.exists() else "does not exist")
            + "; --resume names the folder of a cv run to continue (to start one, pass --run_dir instead)"
        )
    if (
        args.resume is not None
        and args.run_dir is not None
        and args.resume.resolve() != args.run_dir.resolve()
    ):
        parser.error(
            f"--resume {args.resume} names the cv run folder to continue; --run_dir {args.run_dir} differs"
        )
    check_kernel_cache(on_cpu=config.training_device() == "cpu")
    run_dir = args.resume or args.run_dir or Path("runs") / time.strftime("chords-cv-%Y%m%d-%H%M%S")
    try:
        result = run_cross_validation(
            config, run_dir, folds=args.folds, overwrite=args.overwrite, resume=args.resume is not None
        )
    except CrossValidationInterrupted as stop:
        saved = f"saved {stop.checkpoint}" if stop.checkpoint else "stopped before its first step"
        again = [arg for arg in argv if arg != "--overwrite"]  # (the run to continue is the new one)
        command = resume_command(
            "audiotrain.recipes.chords", ["cv", *again], run_dir.absolute(), path_flags=RESUME_PATH_FLAGS
        )
        print(
            f"\ncross-validation interrupted ({stopped_by()}) in {fold_name(stop.fold, args.folds)} "
            f"({saved}); no later fold was trained and no cv scores were written. Continue it with:\n  {command}"
        )
        return stop_exit_status()  # as a shell reports a command that signal stopped (130, 143 for SIGTERM)
    print(f"\nrun folder: {result.run_dir} (fold<k>/, oof/*.lab, cv_scores.json, cv_scores.md)")
    return 0


def _cmd_evaluate(argv: list[str]) -> int:
    parser = SettingsParser(
        prog="python -m audiotrain.recipes.chords evaluate",
        description="Transcribe every annotated song of a folder with a checkpoint and score it with "
        "mir_eval.chord. Songs that cannot be scored (audio without annotation or the reverse, unreadable, "
        "truncated or too short audio, annotation errors such as gaps without --allow_gaps, an annotation "
        "running over 2 s past its audio) are skipped and listed with the reason, in scores.json and "
        "scores.md too, and the exit status is then 1, as predict's on a folder.",
    )
    parser.add_argument(
        "--data",
        required=True,
        type=path_flag,
        help="folder of audio files with .lab/.jams/.jamz annotations beside them",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=path_flag,
        default=None,
        help="where to write .lab files and scores (default: no files)",
    )
    parser.add_argument(
        "--allow_gaps", action="store_true", help="fill gaps in annotations with N instead of failing"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
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
    _predictor_arguments(parser)
    args = parser.parse_args(argv)
    check_kernel_cache(log=_print_to_stderr)
    if args.output is not None:
        # Found now, not when the first .lab is written after transcribing every song.
        if args.output.exists() and not args.output.is_dir():
            raise FileExistsError(
                f"-o {args.output} is a file; evaluate writes a .lab per song and the scores into a folder"
            )
        check_can_write(args.output, f"-o {args.output}")
    predictor = _load_predictor(args)
    against = _load_predictor(args, args.against) if args.against is not None else None
    index = scan_song_folder(
        args.data,
        allow_gaps=args.allow_gaps,
        min_duration=max(p.features.min_seconds for p in (predictor, against) if p is not None),
    )
    if index.problems or index.several_annotations or index.outside_vocabulary:
        print(index.report(), file=sys.stderr)
    if not index.songs:
        print(f"error: no annotated songs in {args.data}", file=sys.stderr)
        return 2
    skipped = index.skipped_songs()
    if args.test_songs_of is not None:
        index.songs, skipped = run_test_songs(args.test_songs_of, args.data, index.songs, skipped)
    if args.output is not None:  # before any song is transcribed; an annotation in the way first
        check_output_folder(index.songs, args.output)
        written = [f"{song.name}.lab" for song in index.songs] + list(EVALUATION_FILES)
        written += list(COMPARISON_FILES) if against is not None else []
        refuse_existing_outputs((args.output / name for name in written), args.overwrite)
        if args.overwrite:  # an earlier evaluation's .lab files of other songs would pass for this one's
            clear_run_outputs(args.output, evaluation_outputs(args.output), _print_to_stderr)
    result = evaluate_songs(predictor, index.songs, allow_gaps=args.allow_gaps, skipped=skipped)
    print(
        f"{len(result.scores.per_song)} songs scored, mir_eval.chord scores in % (pooled over time / median over "
        "songs; songs skipped are listed below the table):"
        if result.scores.skipped
        else f"{len(result.scores.per_song)} songs, mir_eval.chord scores in % (pooled over time / median over songs):"
    )
    print(result.scores.table())
    if result.trimmed:
        print(trimmed_note(result.trimmed, listed=TRIMMED_LISTED))
    if result.frames_note:
        print(f"note: {result.frames_note}")
    print(f"transcription speed: {result.realtime_factor:.0f} s of audio per second")
    # Written once the scores are printed: a scores.json another evaluation wrote there meanwhile is an
    # error, which must not cost the scores of minutes of transcription.
    not_replaced = write_evaluation(result, args.output, args.overwrite) if args.output is not None else []
    if against is not None:
        comparison = compare_results(result, evaluate_songs(against, index.songs, allow_gaps=args.allow_gaps))
        print(
            f"\nagainst {args.against}, on the {len(comparison.scores.per_song)} songs both scored "
            "(mir_eval.chord, % pooled over time):"
        )
        print(comparison.table())
        if args.output is not None:
            not_replaced += comparison.write(args.output, args.overwrite)
    if args.output is not None:
        print(f"wrote .lab files and scores to {args.output}")
    if not_replaced:
        listed = ", ".join(not_replaced[:3]) + (
            f" and {len(not_replaced) - 3} more" if len(not_replaced) > 3 else ""
        )
        print(
            f"not written: {listed} appeared in {args.output} while evaluating (written by another program "
            "since the start) and were not replaced: pass --overwrite to replace them; exit status 1",
            file=sys.stderr,
        )
    if result.scores.skipped:  # as predict on a folder: the scores do not cover every song given
        print(
            f"{len(result.scores.skipped)} songs skipped (listed above and in scores.json): exit status 1",
            file=sys.stderr,
        )
    return 1 if result.scores.skipped or not_replaced else 0


def _print_to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _cmd_predict(argv: list[str]) -> int:
    parser = SettingsParser(
        prog="python -m audiotrain.recipes.chords predict",
        description="Transcribe chords of an audio file or of every audio file in a folder (symlinked sub-folders "
        "too). In a folder, files that cannot be read are skipped and listed, and the exit status is 1. An existing "
        "chord annotation (x.lab or x.jams beside x.wav, which training reads) is never replaced without "
        "--overwrite. Ctrl-C or SIGTERM stops after the file being transcribed (a second one at once), says what "
        "was written, and exits with 130 or 143; --skip_existing then goes on where it stopped.",
    )
    parser.add_argument("input", type=path_flag, help="an audio file, or a folder (searched recursively)")
    parser.add_argument(
        "-o", "--output", default=None, type=nonempty_path,
        help="for a file: the .lab (or .jams) to write, or a folder to write <stem>.lab into (default: print "
        "to stdout); for a folder: the output folder (default: <input>-chords next to it), mirroring the "
        "input's sub-folders",
    )  # fmt: skip
    parser.add_argument(
        "--format", choices=("lab", "jams"), default=None,
        help="output format for folders, for a file written into a folder, and for stdout (default: lab); an -o "
        "file is written in its suffix's (.lab; .jams or .jamz), a --format naming the other refused, or in this "
        "one where its suffix is neither",
    )  # fmt: skip
    parser.add_argument(
        "--overwrite", action="store_true",
        help="replace existing chord annotations beside the audio, and earlier outputs in -o (or "
        "<input>-chords); never an audio file",
    )  # fmt: skip
    parser.add_argument(
        "--skip_existing", action="store_true",
        help="keep the outputs already there (e.g. of a run Ctrl-C stopped) and transcribe only the inputs "
        "that have none",
    )  # fmt: skip
    _predictor_arguments(parser)
    args = parser.parse_args(argv)
    if not args.input.exists():
        print(f"error: {args.input} does not exist", file=sys.stderr)
        return 2
    if args.overwrite and args.skip_existing:
        raise ValueError("--overwrite replaces earlier outputs and --skip_existing keeps them; give one")
    check_kernel_cache(log=_print_to_stderr)  # (stdout may be the transcription)
    if args.input.is_file():
        return _predict_file(args)
    return _predict_folder(args, argv)


def _predict_file(args: argparse.Namespace) -> int:
    """``predict FILE``: the transcription to -o (a file, or a folder) or to stdout. A stop signal stops at
    once: there is one file."""
    target, file_format = None, args.format or "lab"
    if args.output is not None:
        target = Path(args.output)
        _refuse_name_too_long(target, args.output)  # (is_dir itself fails on such a name)
        if target.is_dir() or args.output.endswith(("/", os.sep)):
            target = target / f"{args.input.stem}.{file_format}"
            _refuse_name_too_long(target, args.output)
        file_format = _output_file_format(target, args.format)
        _refuse_audio_as_output(target, args.input)  # with --overwrite too: it is no earlier output
        if args.skip_existing and (target.exists() or target.is_symlink()):
            print(f"kept {target}, there already (--skip_existing)")
            return 0
        _refuse_to_replace_annotations([target], args.overwrite)
        refuse_existing_outputs([target], args.overwrite, can_skip=True)
        check_can_write(target.parent, f"-o {args.output}")
    elif args.skip_existing:
        raise ValueError(
            "--skip_existing keeps an output already there; without -o the transcription is printed"
        )
    heard: list[int] = []

    def stop_at_once(signum: int) -> bool:
        heard.append(signum)
        return True  # (raise KeyboardInterrupt)

    with stop_on_signals(stop_at_once):
        try:
            predictor = _load_predictor(args)
            post = predictor.posteriors(args.input)
            segments = predictor.segments(post)
            if post.silent:
                print(f"note: {silence_note(args.input)}", file=sys.stderr)
            if target is None and file_format == "jams":
                sys.stdout.write(jams_text(segments, duration=post.duration, title=args.input.stem) + "\n")
            elif target is None:
                sys.stdout.write("".join(f"{s.start:.6f}\t{s.end:.6f}\t{s.label}\n" for s in segments))
            else:
                _write_prediction(
                    target, file_format, segments, post.duration, args.input.stem, args.overwrite
                )
        except KeyboardInterrupt:
            signum = heard[0] if heard else signal.SIGINT
            print(
                f"interrupted ({stop_signal_name(signum)}) before {args.input} was transcribed: nothing written",
                file=sys.stderr,
            )
            return _stopped_status(signum)
        except OutputAppeared:
            raise FileExistsError(
                f"{target} appeared while predicting (written by another program since the start); not "
                "replaced, and the transcription is not written: pass --overwrite to replace it, or write "
                "elsewhere with -o"
            ) from None
    return 0


class OutputAppeared(FileExistsError):
    """An output file that was absent at a predict's start and is there when its output is written."""


def _write_prediction(
    target: Path, file_format: str, segments: list, duration: float, title: str, overwrite: bool
) -> None:
    """Write one transcription (the whole file or none). Without --overwrite the file is created only if
    its name is still free: one that appeared since the start's check (a hand annotation, another
    predict's output) is `OutputAppeared`, and left as it is."""
    try:
        if file_format == "jams":  # write_jams gzips .jamz
            write_jams(target, segments, duration=duration, title=title, replace=overwrite)
        else:
            write_lab(target, segments, replace=overwrite)
    except FileExistsError:
        if overwrite or not (target.exists() or target.is_symlink()):
            raise  # (a parent that is a file: not the output appearing)
        raise OutputAppeared(str(target)) from None


def _output_file_format(target: Path, asked: str | None) -> str:
    """The format of the output file `target` (-o): its suffix's (.lab; .jams or .jamz), else `asked`
    (``--format``; default lab). A --format that names the other format than the suffix is refused."""
    named = {".lab": "lab", ".jams": "jams", ".jamz": "jams"}.get(target.suffix.lower())
    if named is not None and asked is not None and asked != named:
        raise ValueError(
            f"--format {asked} but -o {target} names a .{named} file; name a .{asked} file, or leave --format out"
        )
    return named or asked or "lab"


def _stopped_status(signum: int) -> int:
    """The exit status of a command that a stop signal ended: 128 + the signal, as a shell reports it (130
    for Ctrl-C and its stand-in, 143 for SIGTERM)."""
    return stop_status(signum)


def _predict_folder(args: argparse.Namespace, argv: list[str]) -> int:
    """``predict FOLDER``: one output per audio file, mirroring the folder. A first stop signal stops after
    the file being transcribed, a second at once; either way what was written is said, and the command that
    goes on (``--skip_existing``) printed."""
    entries, hidden, not_entered = walk_visible_following_links(args.input)
    # Broken links and folders named like audio stay in: the loader skips each by name (a symlink to a
    # missing file, a folder), and the exit status says that not every input was transcribed.
    files = [p for p in entries if p.suffix.lower() in PREDICTED_SUFFIXES]
    if hidden:
        print(f"note: {hidden_note(hidden, args.input)}", file=sys.stderr)
    if not_entered:
        listed = ", ".join(f"{p} (-> {os.path.realpath(p)})" for p in not_entered[:3])
        more = f" and {len(not_entered) - 3} more" if len(not_entered) > 3 else ""
        print(
            f"note: {len(not_entered)} folder{'s' * (len(not_entered) > 1)} reached through links not entered, "
            "being folders transcribed already (a link back up the tree, or a second way to one folder): "
            f"{listed}{more}",
            file=sys.stderr,
        )
    if not files:
        readable = ", ".join(sorted(AUDIO_FILE_SUFFIXES))
        print(f"error: no audio files ({readable}) in {args.input}", file=sys.stderr)
        return 2
    file_format = args.format or "lab"
    # Resolved first: "." and "x/.." name no folder to put "-chords" after.
    source = args.input.resolve()
    out_dir = Path(args.output) if args.output else source.with_name(source.name + "-chords")
    _refuse_name_too_long(out_dir, str(out_dir))
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(
            f"-o {out_dir} is a file; a folder input ({args.input}) needs an output folder, where one file "
            "per song is written"
        )
    check_can_write(
        out_dir, f"-o {out_dir}" if args.output else f"the output folder {out_dir} (choose one with -o)"
    )
    # x.wav and X.wav have outputs of their own on Linux; on macOS's and Windows' file systems x.lab is X.lab.
    targets, renamed, clashing = output_paths(
        files, args.input, out_dir, f".{file_format}", fold_case=folds_case(out_dir)
    )
    if renamed:
        print(
            f"note: {len(renamed)} audio files share a stem with another in their folder; their outputs keep "
            f"the audio suffix (e.g. {targets[renamed[0]].name})",
            file=sys.stderr,
        )
    for group in clashing:
        print(
            f"skipped: {', '.join(str(path) for path in group)}: their outputs would be one file on the "
            f"case-insensitive file system of {out_dir}, so one would replace the other; rename one of them",
            file=sys.stderr,
        )
    # An output name over the file system's limit (a long stem that keeps its audio suffix) is skipped, and
    # listed, before any song is transcribed: the others are still written.
    files = [path for path in files if path in targets]
    unwritable = {path: why for path in files if (why := name_too_long(targets[path])) is not None}
    for path, why in unwritable.items():
        print(f"skipped: {path}: cannot write its output {targets[path].name}: {why}", file=sys.stderr)
    files = [path for path in files if path not in unwritable]
    kept = [path for path in files if targets[path].exists() or targets[path].is_symlink()]
    if args.skip_existing:
        files = [path for path in files if path not in kept]
    _refuse_to_replace_annotations([targets[path] for path in files], args.overwrite)  # before any work
    refuse_existing_outputs([targets[path] for path in files], args.overwrite, can_skip=True)
    start, audio_seconds = time.perf_counter(), 0.0
    skipped = SkipCounter()
    silent: list[Path] = []
    done: set[Path] = set()  # transcribed, or skipped as unreadable
    written_to: set[Path] = set()  # the count printed is of files on disk
    appeared: list[Path] = []  # outputs another program wrote since the check above: not replaced
    current: Path | None = None
    stopped_by_signal: int | None = None

    def request_stop(signum: int) -> bool:
        nonlocal stopped_by_signal
        if stopped_by_signal is not None or current is None:  # a second signal, or no file under way
            stopped_by_signal = stopped_by_signal or signum
            return True  # (raise KeyboardInterrupt)
        stopped_by_signal = signum
        name = stop_signal_name(signum)
        again = "Ctrl-C again" if name == "Ctrl-C" else f"{name} or Ctrl-C again"
        print(f"\n{name}: stopping after {current} ({again} to stop at once)", file=sys.stderr)
        return False

    with stop_on_signals(request_stop):
        try:
            predictor = _load_predictor(args)
            for path in files:
                if stopped_by_signal is not None:
                    break
                current = path
                try:
                    post = predictor.posteriors(path)
                except AudioError as error:  # one broken file must not cost the rest of the folder
                    skipped.record(error)
                    print(f"skipped: {error}", file=sys.stderr)
                    done.add(path)
                    continue
                segments = predictor.segments(post)
                audio_seconds += post.duration
                if post.silent:
                    silent.append(path)
                    print(f"note: {silence_note(path)}", file=sys.stderr)
                try:
                    _write_prediction(
                        targets[path], file_format, segments, post.duration, path.stem, args.overwrite
                    )
                except OutputAppeared:
                    appeared.append(targets[path])
                    print(
                        f"skipped: {targets[path]} appeared while predicting; not replaced", file=sys.stderr
                    )
                    done.add(path)
                    continue
                except OSError as error:  # a name limit the file system did not report (eCryptfs: 143 bytes)
                    if error.errno != errno.ENAMETOOLONG:
                        raise
                    unwritable[path] = f"the file system refused its name as too long ({error.strerror})"
                    print(
                        f"skipped: {path}: cannot write its output {targets[path].name}: {unwritable[path]}",
                        file=sys.stderr,
                    )
                    done.add(path)
                    continue
                written_to.add(targets[path])
                done.add(path)
        except KeyboardInterrupt:
            stopped_by_signal = stopped_by_signal or signal.SIGINT
        current = None
    elapsed = time.perf_counter() - start
    written = len(written_to)
    if skipped.total:
        print(skipped.report(), file=sys.stderr)
    if unwritable:
        print(
            f"skipped {len(unwritable)} audio file{'s' * (len(unwritable) > 1)} whose output name is too "
            "long for the file system (listed above): rename them, or transcribe each to a name of your "
            "choice (predict FILE -o NAME.lab)",
            file=sys.stderr,
        )
    if appeared:
        print(
            f"skipped {len(appeared)} output{'s' * (len(appeared) > 1)} that appeared while predicting "
            "(written by another program since the start; listed above), not replaced: pass --overwrite to "
            "replace them",
            file=sys.stderr,
        )
    if clashing:
        count = sum(len(group) for group in clashing)
        print(
            f"skipped {count} audio files whose outputs differ only in case (listed above): rename them",
            file=sys.stderr,
        )
    if silent:
        print(
            f"note: {len(silent)} of the files {'are' if len(silent) > 1 else 'is'} digital silence (listed "
            "above), transcribed as N",
            file=sys.stderr,
        )
    kept_note = f"; kept {len(kept)} there already (--skip_existing)" if args.skip_existing and kept else ""
    if stopped_by_signal is not None:
        _say_where_predict_stopped(
            args, argv, stopped_by_signal, [p for p in files if p not in done], written, len(files),
            out_dir, kept_note, stale=[p for p in files if p not in done and p in kept],
        )  # fmt: skip
        return _stopped_status(stopped_by_signal)
    speed = f" ({audio_seconds / elapsed:.0f} s of audio per second)" if audio_seconds else ""
    print(f"wrote {written} .{file_format} files to {out_dir}{speed}{kept_note}")
    return 1 if skipped.total or unwritable or clashing or appeared else 0


def _say_where_predict_stopped(
    args: argparse.Namespace,
    argv: list[str],
    signum: int,
    left: list[Path],
    written: int,
    planned: int,
    out_dir: Path,
    kept_note: str,
    stale: list[Path],
) -> None:
    """The lines a stopped ``predict FOLDER`` ends with: what it wrote, what it did not transcribe, and the
    command that goes on (the same, with ``--skip_existing`` for ``--overwrite``)."""
    names = ", ".join(str(path.relative_to(args.input)) for path in left[:3])
    more = f" and {len(left) - 3} more" if len(left) > 3 else ""
    print(
        f"interrupted ({stop_signal_name(signum)}): wrote {written} of {planned} .{args.format or 'lab'} "
        f"files to {out_dir}{kept_note}" + (f"; not transcribed: {names}{more}" if left else ""),
        file=sys.stderr,
    )
    if not left:  # (the signal came as the last file was done)
        return
    again = [arg for arg in argv if arg != "--overwrite"]
    again += [] if args.skip_existing else ["--skip_existing"]
    print(
        "go on with: " + shell_command("python", "-m", "audiotrain.recipes.chords", "predict", *again),
        file=sys.stderr,
    )
    if stale:  # (--overwrite: their outputs are from before this run, which --skip_existing would keep)
        print(
            f"note: {len(stale)} of the files not transcribed have an output from before this run, which "
            "--skip_existing keeps; pass --overwrite instead to transcribe them all again",
            file=sys.stderr,
        )


def _refuse_name_too_long(target: Path, output: str) -> None:
    """Raise (before any work) if the file system cannot take the name of `target` (given as ``-o output``):
    it was found by the write, after the transcription, as a raw OSError."""
    too_long = name_too_long(target)
    if too_long:
        raise ValueError(f"-o {output}: cannot write {target.name}: {too_long}; choose a shorter name")


def _refuse_audio_as_output(target: Path, audio: Path) -> None:
    """Raise (before any work, whatever --overwrite says) if `target` is the input audio or named like audio:
    a typo such as ``-o song.wav`` would otherwise write chord text over a recording."""
    if target.exists() and target.samefile(audio):
        raise FileExistsError(
            f"-o {target} is the input audio; write a .lab or .jams (e.g. -o {audio.with_suffix('.lab')})"
        )
    if target.suffix.lower() in AUDIO_FILE_SUFFIXES | UNREADABLE_AUDIO_SUFFIXES:
        raise ValueError(
            f"-o {target} is named like an audio file ({target.suffix}); predict writes chord annotations: "
            f"name a .lab or .jams (e.g. -o {target.with_suffix('.lab')})"
        )


def _refuse_to_replace_annotations(targets, overwrite: bool) -> None:
    """Raise (before any work) if writing `targets` would replace or shadow a chord annotation."""
    if overwrite:
        return
    blocked = [(t, audio) for t in targets if (audio := annotation_in_the_way(t)) is not None]
    if blocked:
        listed = "; ".join(f"{t} (beside {audio.name})" for t, audio in blocked[:3])
        more = f" and {len(blocked) - 3} more" if len(blocked) > 3 else ""
        raise FileExistsError(
            f"refusing to write {listed}{more}: training reads a .lab or .jams beside audio of the same stem "
            "as its chord annotation, and one is there already. Write elsewhere with -o, or pass --overwrite"
        )


_TOP_HELP = """\
usage: python -m audiotrain.recipes.chords [COMMAND] [options]

Chord recognition on MLX: train a model on songs with chord annotations, score it with mir_eval,
and transcribe audio to .lab files.

commands:
  (none) / demo   generate or reuse synthetic demo songs, train, evaluate on held-out songs, and write
                  checkpoints, history.json, plots and .lab predictions to a run folder
  train           train on your songs: --data DIR (audio files with .lab/.jams beside them, same stem);
                  --init_from RUN starts from a trained model's weights (fine-tuning)
  evaluate        score a checkpoint on annotated songs: --checkpoint CKPT --data DIR [-o OUT]
                  [--against CKPT2: each score's difference from CKPT2's, paired over songs]
  predict         transcribe audio: --checkpoint CKPT song.wav|folder [-o out.lab|dir]
  cv              k-fold cross-validation grouped by song: [--data DIR] --folds 5 (demo songs without --data);
                  per-fold runs, out-of-fold .lab predictions, mean and std of every score
  export          the model alone, to share: --checkpoint RUN --out DIR (weights and settings, without the
                  optimizer's state); predict, evaluate and --init_from load DIR as a checkpoint

Each command has its own --help; `demo --help` and `train --help` list every training setting
(learning rate, epochs, model size, features, decoding, ...).

examples:
  python -m audiotrain.recipes.chords
  python -m audiotrain.recipes.chords --num_epochs 10 --model.d_model 96
  python -m audiotrain.recipes.chords train --data ~/songs --run_dir runs/mine
  python -m audiotrain.recipes.chords train --data ~/songs --init_from runs/demo --run_dir runs/mine
  python -m audiotrain.recipes.chords evaluate --checkpoint runs/mine/checkpoints/best --data ~/songs_test
  python -m audiotrain.recipes.chords predict --checkpoint runs/mine song.wav -o song.lab
"""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(_TOP_HELP)
        return 0
    install_rank_stop_signal()  # in a rank of a job of local processes: the launcher's Ctrl-C
    command = argv.pop(0) if argv and argv[0] in COMMANDS else "demo"
    if argv and not argv[0].startswith("-") and command == "demo":
        print(f"error: {unknown_command_message(argv[0], COMMANDS)}", file=sys.stderr)
        return 2
    if command == "demo" and any(a == "--data" or a.startswith("--data=") for a in argv):
        # CLAP takes --data without a command; here the command line without one trains on the demo songs.
        print(
            "error: --data DIR belongs to the train command: python -m audiotrain.recipes.chords train --data DIR "
            "[options] (without a command the recipe trains on the built-in demo songs)",
            file=sys.stderr,
        )
        return 2
    try:
        with warnings.catch_warnings():
            # The folder scan lists these files once, in its report; each later read would warn again.
            warnings.simplefilter("ignore", SeveralAnnotationsWarning)
            if command in ("demo", "train"):
                return _cmd_train(argv, demo=command == "demo")
            if command == "cv":
                return _cmd_cv(argv)
            if command == "export":
                return export_main(argv)
            return _cmd_evaluate(argv) if command == "evaluate" else _cmd_predict(argv)
    except USER_ERRORS as error:
        if os.environ.get("AUDIOTRAIN_TRACEBACK"):
            raise
        if error_left_to_main():  # the ranks read one data folder: rank 0 says what is wrong with it, once
            return 2
        if isinstance(error, ckpt.OlderFormatError):
            error = _older_format_message(error, command, argv)
        print(f"error: {error}\n(set AUDIOTRAIN_TRACEBACK=1 to see where it was raised)", file=sys.stderr)
        return 2


def _older_format_message(error: ckpt.OlderFormatError, command: str, argv: list[str]) -> str:
    """What `command` could not do with a checkpoint of an older format. The Trainer API's message speaks of
    resuming and of load_weights, which fails here: the chord model has gained heads since."""
    doing = {"predict": "transcribe with it", "evaluate": "score songs with it"}.get(
        command, "resume training from it"
    )
    init_from = None
    for flag, following in zip(argv, [*argv[1:], ""]):
        if flag == "--init_from" or flag.startswith("--init_from="):
            init_from = flag.partition("=")[2] if "=" in flag else following
    if init_from and is_inside(error.folder, Path(init_from).expanduser()):
        doing = "start a run from its weights (--init_from)"
    return (
        f"{error.folder} was written by an older audiotrain (checkpoint format {error.version}; this one reads "
        f"format {ckpt.FORMAT_VERSION}): this version cannot load its chord model to {doing}. Train a new "
        "model with this version"
    )


if __name__ == "__main__":
    raise SystemExit(main())
