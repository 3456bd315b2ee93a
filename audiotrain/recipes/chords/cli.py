"""Chord recognition, end to end: songs with chord labels → a trained model → ``.lab`` predictions and scores.

Command line (``python -m audiotrain.recipes.chords --help``)::

    python -m audiotrain.recipes.chords                      # demo: synthesise songs, train, evaluate
    python -m audiotrain.recipes.chords train --data DIR     # your songs: audio + .lab/.jams/.jamz beside them
    python -m audiotrain.recipes.chords train --data DIR --init_from RUN   # fine-tune RUN's model on them
    python -m audiotrain.recipes.chords evaluate --checkpoint RUN/checkpoints/best --data DIR
    python -m audiotrain.recipes.chords score PREDICTIONS_DIR --data DIR   # .lab files you have, no model
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
import json
import os
import re
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from audiotrain._build import build_version
from audiotrain._file_names import local_path
from audiotrain._files import OutputWriteError, once_writable
from audiotrain._invocation import as_started, recipe_command
from audiotrain._lazy import imported_on_call
from audiotrain._system import TRACEBACK_ENV, env_flag, error_status, say_error
from audiotrain._warning_filters import ignoring_warnings
from audiotrain.chords.lab import SeveralAnnotationsWarning, ZeroLengthSegmentsWarning
from audiotrain.chords.vocabulary import CHORD_TYPES
from audiotrain.datasets._folders import as_stored
from audiotrain.datasets.chord_songs import scan_song_folder  # noqa: F401
from audiotrain.distributed import collectives
from audiotrain.distributed.failures import error_left_to_main
from audiotrain.distributed.local import (
    in_launched_job,
    install_rank_stop_signal,
    plan_local_processes,
    planned_blas_threads,
    run_local_job,
)
from audiotrain.metrics.plot_loading import plots_wanted
from audiotrain.recipes._run import (
    check_kernel_cache,
    checkpoint_processes,
    ends_on_other_ranks,
    leaves_notes_to_others,
    path_flag,
    refuse_existing_outputs,  # noqa: F401
    resume_command,
    resume_processes_note,
    resumes_run_in,
    shared_run_folder_name,
    shell_command,
    stop_status_of_rank,
)
from audiotrain.recipes.chords.cli_help import top_help
from audiotrain.recipes.chords.cli_predictor import (  # noqa: F401
    DECODE_CHOICES,
    DECODE_HELP,
    _load_predictor,
    _predictor_arguments,
)
from audiotrain.recipes.chords.config import (
    PRESETS,
    TrainingConfig,
    benchmark_config,
    check_model_fits_memory,
    derived_settings,
    older_record_meanings,
    older_record_readings_as_today,
)
from audiotrain.recipes.chords.data import DATA_REPORT, check_cache_writable, folder_splits
from audiotrain.recipes.chords.export import main as export_main
from audiotrain.recipes.chords.init_from import (
    check_init_from,
    model_settings_checkpoint,
    with_checkpoint_model,
)
from audiotrain.recipes.chords.predict import ChordPredictor, folds_case  # noqa: F401
from audiotrain.recipes.chords.song_record import UNRECORDED_DEMO_FLAG, unrecorded_demo_note
from audiotrain.recipes.chords.task import CHECKPOINT_KEY
from audiotrain.recipes.config_cli import (
    TIME_LIMIT_FLAGS,
    USER_ERRORS,
    SettingsParser,
    add_dataclass_arguments,
    add_overwrite_argument,
    add_preset_argument,
    load_config_data,
    read_older_record,
    resolve_settings,
    resume_or_overwrite,
    returning_exit_status,
    unknown_command_message,
    without_overwrite,
)
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.interrupt import SaveAborted, stop_exit_status, stopped_by
from audiotrain.train.nonfinite import NonFiniteStop

# The training functions, imported as a command trains: audiotrain.recipes.chords.train imports the trainer
# (~0.3 s of CPU), which predict, evaluate, score, export, each command's --help and a usage error never use.
check_output_folders, check_resume_settings, run_training, to_stderr = (
    imported_on_call("audiotrain.recipes.chords.train", name)
    for name in ("check_output_folders", "check_resume_settings", "run_training", "to_stderr")
)

# The imports marked noqa: F401 are names of this module that the evaluate and predict commands look up
# here (`cli.folds_case(...)`), where the tests patch them; the tests call the predictor's flags and
# loading here too.
__all__ = ["COMMANDS", "main"]

COMMANDS = ("demo", "train", "evaluate", "score", "predict", "cv", "export")
#: Config fields without a flag: the model's input width follows the features, its head the vocabulary.
DERIVED_FIELDS = frozenset(derived_settings(TrainingConfig()))
#: Path flags that a printed resume command writes absolute, so that it continues the run pasted in any folder
#: (not --checkpoint_dir: a relative one lies inside the run folder, wherever that is).
RESUME_PATH_FLAGS = (
    "--data",
    "--data.data_dir",
    "--data.cache_dir",
    "--data.annotations",
    "--data.pairs",
    "--config",
    "--init_from",
    "--run_dir",
)


RESUME_HELP = "resume training from this checkpoint folder (e.g. RUN/checkpoints/last)"
INIT_FROM_HELP = (
    "start a new run from this checkpoint's model weights (a checkpoint folder, or a run folder: its best), "
    "e.g. fine-tune the demo model on your songs: a new optimizer, learning-rate schedule and epoch count, "
    "this run's songs, a run folder of its own. The model and feature settings are the checkpoint's; a "
    "--preset, --config or flag that changes one is refused (--model.dropout may differ). With --resume "
    "(the command an interrupted run prints) the resumed checkpoint's weights and settings are used, and "
    "this folder is not read: a resume of such a run needs no --init_from"
)
OVERWRITE_HELP = (
    "replace a previous run in --run_dir: remove what it wrote (its checkpoints, config.json, history.json, "
    "plots, evaluation files and loggers' files); other files stay, also inside those folders, and are "
    "named; without it a --run_dir that holds files is refused, unless --resume names a checkpoint inside it"
)


#: Why a chord run takes no --precision (the Trainer's setting, CLAP's --train.precision), and what does.
NO_PRECISION_FLAG = (
    "the chord recipe has no precision setting: it trains in float32 (the command line and run_training "
    "alike); bfloat16 is audiotrain.Trainer(precision='bf16-mixed' or 'bf16-true') from Python, fitting a "
    "ChordTask on the loaders of audiotrain.recipes.chords.song_loaders"
)
#: Why a chord run takes no class weights or balanced sampler of its own, and what weighs rare chord types.
NO_CLASS_WEIGHTS_FLAG = (
    "the chord recipe takes no weights of your own and no balanced sampler: --loss.balance_classes true "
    "weighs each chord type by the inverse square root of its share of the training songs' seconds (a type "
    "absent there weighs 0); weights of your own are ChordRecognitionLoss(class_weights=...) from Python, "
    "the criterion= of audiotrain.recipes.chords.Trainer"
)
#: The flags a user with rare chord types tries (torch's CrossEntropyLoss(weight=...), a weighted sampler).
CLASS_WEIGHT_FLAGS = dict.fromkeys(
    (
        "--class_weights",
        "--loss.class_weights",
        "--class_weight",
        "--weighted_sampler",
        "--balanced_sampling",
    ),
    NO_CLASS_WEIGHTS_FLAG,
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
    parser = SettingsParser(
        prog=prog,
        description=description,
        help_command=help_command,
        other_names={"--out": "--run_dir"},  # (CLAP's name for the run folder)
        absent_flags={
            **dict.fromkeys(("--precision", "--train.precision"), NO_PRECISION_FLAG),
            **TIME_LIMIT_FLAGS,
            **CLASS_WEIGHT_FLAGS,
        },
    )
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
        help="YAML/JSON file with TrainingConfig fields (flags override it), or a run's config.json (a cv "
        "run's cv_progress.json): repeats it",
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
    add_overwrite_argument(parser, overwrite_help)
    parser.add_argument(
        "--print_config",
        action="store_true",
        help="print the settings the preset, --config file and flags resolve to, as the JSON that --config "
        "takes (a run's config.json records them under config), on stdout, and exit without starting a run",
    )
    parser.add_argument(
        "--benchmark",
        action="store_true",
        help="start from the longer benchmark config instead of the defaults (a --preset, --config or flag "
        "overrides it; one that overrides all of it is refused)",
    )
    add_dataclass_arguments(
        parser, TrainingConfig(), skip=DERIVED_FIELDS, help_texts=DECODE_HELP, choices=DECODE_CHOICES
    )
    return parser


def _with_flag_hint(message: str, parser: argparse.ArgumentParser) -> str:
    """`message`, where it refuses a --config file's top-level key that is a flag of the command, not a
    setting (`run_dir: runs/mine`, `resume: ...`), with where it is given: the fields listed did not say."""
    unknown = re.search(r": unknown field '(\w+)'", message)
    name = unknown and unknown.group(1)
    if not name or name == "folds" or f"--{name}" not in parser._option_string_actions:
        return message
    return f"{message}; {name} is the command's --{name} flag, not a --config setting"


def _config_from_args(args: argparse.Namespace) -> TrainingConfig:
    """Defaults (or the benchmark's) < ``--preset`` < the ``--config`` file < flags; a cache or data folder
    given relative to the working folder is made absolute, so that the run's config.json repeats it from
    any folder rather than filling a new cache there (or finding no songs); so are the annotations folder
    and the pairs file. (An empty one means the default cache, or the demo songs.)

    The model and feature settings of a run started from a checkpoint's weights are that checkpoint's, and
    those of its resume the resumed checkpoint's (`model_settings_checkpoint`): the preset, file and flags
    apply over them, and a change is refused when the run starts."""
    from dataclasses import replace

    # (Only train and demo fine-tune: cv's --resume names its run folder.)
    settings_from = (
        model_settings_checkpoint(args.resume, args.init_from) if hasattr(args, "init_from") else None
    )

    def resolved(start: TrainingConfig) -> TrainingConfig:
        if settings_from is not None:
            start = with_checkpoint_model(start, settings_from)
        return resolve_settings(start, PRESETS, args.preset, args.config, args, derived=derived_settings)

    config = resolved(benchmark_config() if args.benchmark else TrainingConfig())
    if args.benchmark and config == resolved(TrainingConfig()):
        # As a --preset beside a whole run record: `--preset quick_test --benchmark` ran quick_test silently.
        given = " and ".join(
            f"--{name} {value}" for name, value in (("preset", args.preset), ("config", args.config)) if value
        )
        raise ValueError(
            f"--benchmark changes nothing beside {given or 'these flags'}: every setting of the benchmark "
            "config (num_epochs, patience, data.demo_songs, data.demo_test_songs) is set there too, and wins; "
            "give one"
        )
    if args.config is not None:
        config = _with_older_record_meanings(config, args, model_from_checkpoint=settings_from is not None)
    check_model_fits_memory(config)
    for name in ("cache_dir", "data_dir", "annotations", "pairs"):
        folder = getattr(config.data, name)
        if folder:
            absolute = str(Path(folder).expanduser().resolve())
            config = replace(config, data=replace(config.data, **{name: absolute}))
    return config


def _with_older_record_meanings(
    config: TrainingConfig, args: argparse.Namespace, model_from_checkpoint: bool
) -> TrainingConfig:
    """`config` with the settings that a ``--config`` run record of an older audiotrain lacks read as that
    version ran where that is known (`older_record_meanings`: no bass view, no tuning correction, the train
    style alone, one process), and one line that says so (`read_older_record`). Filled silently with today's
    defaults, they trained another model size on other demo songs in another process count.
    `model_from_checkpoint`: the model and features are a checkpoint's (`model_settings_checkpoint`)."""
    meanings = older_record_meanings()
    if model_from_checkpoint:
        meanings = {k: v for k, v in meanings.items() if not k.startswith(("model.", "features."))}
    resuming = getattr(args, "resume", None) is not None
    config, note = read_older_record(
        config,
        args.config,
        vars(args),
        meanings,
        skip=DERIVED_FIELDS | older_record_readings_as_today(),
        resuming=resuming,
    )
    if note and not leaves_notes_to_others():  # (said once per job, not by each process)
        to_stderr(note)
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
        where += _resume_data_hint(getattr(args, "resume", None))
        parser.error(
            "no data folder: pass --data DIR (or --data.data_dir DIR), or set data.data_dir in the file given "
            f"with --config{where}"
        )
    folder = as_stored(folder)  # (typed composed, a Mac's decomposed name on disk: found as there)
    if not folder.is_dir():
        # A file given where the folder belongs (one song, a list) is not "missing": say what it is instead.
        problem = "a file, not a folder" if folder.exists() else "no such folder"
        parser.error(
            f"{source}: {problem} (expected a folder of audio files with .lab/.jams beside them, same stem)"
            + (_beside_the_config(folder, args.config) if source.startswith("data.data_dir") else "")
        )
    if args.config is not None:  # a run's config.json names where its annotations were; they may have moved
        for name, kind, exists in (("annotations", "folder", Path.is_dir), ("pairs", "file", Path.is_file)):
            recorded = getattr(config.data, name)
            if recorded and getattr(args, f"data.{name}", None) is None and not exists(Path(recorded)):
                parser.error(
                    f"data.{name} {recorded} (in {args.config}): no such {kind}; pass --data.{name} "
                    f"{kind.upper()} where it is now"
                )
    # Absolute: the run's config.json then repeats the run (--config RUN/config.json) from any folder.
    return replace(config, data=replace(config.data, data_dir=str(folder.resolve())))


def _resume_data_hint(resume: str | None) -> str:
    """Where ``train --resume CKPT`` has no data folder: the one CKPT's run trained on, as its
    trainer_state.json records it (a resume takes the flags its run was started with), or, for a demo run's
    checkpoint, the demo command that resumes it; "" where CKPT cannot be read (the resume checks say why)."""
    if not resume:
        return ""
    try:
        state = ckpt.read_state(Path(resume))
    except Exception:  # noqa: BLE001 - said by the resume checks, with the file and the reason
        return ""
    data = (state.get("run_config") or {}).get("data")
    if not isinstance(data, dict):
        return ""
    folder = data.get("data_dir")
    if isinstance(folder, str) and folder:
        return f"; --resume {resume}: its run trained on {folder}: pass --data {folder}"
    demo = shell_command(*recipe_command("audiotrain.recipes.chords"), "--resume", str(resume))
    return f"; --resume {resume}: its run trained on the demo songs: resume it with {demo} (and its flags)"


def _beside_the_config(folder: Path, config: str | Path) -> str:
    """Where the file's relative ``data.data_dir`` (read from the working folder, as a flag's, and made
    absolute there) names a folder beside the file instead: the one the user most likely meant."""
    # relpath, not relative_to: the file's `../music/songs` reaches here made absolute with its `..` folded
    # away (a folder beside the working folder's parent), which is not under the working folder.
    relative = Path(os.path.relpath(folder, Path.cwd()))
    beside = Path(os.path.relpath(Path(config).parent / relative))
    if beside.is_dir():
        return (
            f"; a relative path in a --config file is read from the working folder ({Path.cwd()}), not the "
            f"file's: for the folder beside it, pass --data {shlex.quote(str(beside))}"
        )
    started = _where_the_run_started(Path(config))
    if started is not None and (started / relative).is_dir():
        return (
            f"; an older audiotrain recorded it as typed, relative to the folder its run started in "
            f"({started}), and it is read from the working folder: pass --data {started / relative}"
        )
    return ""


def _where_the_run_started(record: Path) -> Path | None:
    """The folder a run started in, from its config.json's recorded command: the run folder less the relative
    ``--run_dir`` it was given (the default, ``runs/NAME``, without one). None where the command does not say.
    (This version records its paths absolute; an older one recorded them as typed.)"""
    try:
        command = json.loads(record.read_text()).get("command") if record.is_file() else None
    except (OSError, ValueError, AttributeError):
        return None
    if record.name != "config.json" or not isinstance(command, list):
        return None
    given = [
        str(a).partition("=")[2] or b
        for a, b in zip(command, [*command[1:], ""])
        if str(a).startswith("--run_dir")
    ]
    run_dir = Path(given[-1]) if given else Path("runs", record.parent.name)
    folder = record.absolute().parent
    if run_dir.is_absolute() or folder.parts[-len(run_dir.parts) :] != run_dir.parts:
        return None
    return Path(*folder.parts[: -len(run_dir.parts)])


def _weights_only(resume: Path | None) -> bool:
    """Whether ``--resume`` names a checkpoint of a model's weights only (an export), which cannot resume."""
    try:
        return bool(resume) and bool(ckpt.read_state(ckpt.resolve_checkpoint(resume)).get("weights_only"))
    except Exception:  # noqa: BLE001 - an unreadable checkpoint: the resume's own checks name the problem
        return False


#: The Trainer's remedy for a checkpoint without its step's state: a Python call, where this CLI has a flag.
_PYTHON_WEIGHTS_REMEDY = f"its weights still load with load_weights({ckpt.MODEL_FILE})"


def _with_command_line_remedy(error: ckpt.CheckpointError, resume: Path | None) -> ckpt.CheckpointError:
    """`error` with ``--init_from RESUME`` in place of the Python call a Trainer user is advised: a user of
    this command line starts a new run from the weights with that flag. Other errors as they are."""
    message = str(error)
    if not resume or not message.endswith(_PYTHON_WEIGHTS_REMEDY):
        return error
    remedy = f"start a new run from its weights with {shell_command('--init_from', resume)}"
    return ckpt.CheckpointError(f"--resume {resume}: {message.removesuffix(_PYTHON_WEIGHTS_REMEDY)}{remedy}")


def _with_resumed_pairing(args: argparse.Namespace, config: TrainingConfig) -> TrainingConfig:
    """`config` with the pairing settings (data.annotations, pairs, jams_annotation) of the checkpoint that
    ``--resume`` names where neither a flag nor ``--config`` gives them, and a line that says so: resumed
    without them, the run found none of its songs (or scored another annotation)."""
    from dataclasses import replace

    if args.resume is None or args.config is not None:
        return config
    try:
        recorded = (ckpt.read_state(ckpt.resolve_checkpoint(args.resume)).get("run_config") or {})["data"]
    except (OSError, ValueError, KeyError, TypeError, ckpt.CheckpointError):
        return config  # (the checks of the resume say what is wrong with it)
    taken = {}
    for name in ("annotations", "pairs", "jams_annotation"):
        value = recorded.get(name) if isinstance(recorded, dict) else None
        if name != "jams_annotation":  # (a folder or file: as this locale's file names spell it)
            value = local_path(value)
        if f"data.{name}" not in vars(args) and value and value != getattr(config.data, name):
            taken[name] = value
    if not taken:
        return config
    if not leaves_notes_to_others():  # (said once per job, not by each process)
        flags = ", ".join(f"--data.{name} {value}" for name, value in taken.items())
        to_stderr(f"--resume {args.resume}: paired as that run did: {flags}")
    return replace(config, data=replace(config.data, **taken))


def _refuse_pairing_without_data(parser: argparse.ArgumentParser, config: TrainingConfig) -> None:
    """An error (exit 2) for a pairing setting on the demo songs: it pairs a data folder's songs only, so it
    would be recorded in config.json without having had any effect."""
    if config.data.data_dir:
        return
    data = config.data
    given = [
        f"--data.{name}"
        for name, value in (
            ("annotations", data.annotations),
            ("pairs", data.pairs),
            ("jams_annotation", data.jams_annotation),
        )
        if value
    ]
    if given:
        parser.error(
            f"{' and '.join(given)} {'needs' if len(given) == 1 else 'need'} --data: they pair the songs of a "
            "data folder; the demo songs have their annotations beside them"
        )


#: The data settings that split or read a data folder's songs alone: the demo splits its training songs by
#: song (`demo_splits`: data.val_fraction), holds out songs of its own (data.demo_test_songs) and writes its
#: annotations without gaps, so each would be recorded in config.json without having had any effect.
_FOLDER_SPLIT_SETTINGS = ("test_fraction", "split_by", "group_pattern", "allow_gaps")


def _refuse_folder_flags_on_demo(
    parser: argparse.ArgumentParser, args: argparse.Namespace, config: TrainingConfig
) -> None:
    """An error (exit 2) for a data folder's split flag on the demo songs (`_FOLDER_SPLIT_SETTINGS`). Only
    flags: every run's config.json records these settings, and a --config of a demo run's repeats it."""
    if config.data.data_dir:
        return
    given = [
        f"--data.{name} {_as_typed(vars(args)[f'data.{name}'])}"
        for name in _FOLDER_SPLIT_SETTINGS
        if f"data.{name}" in vars(args)
    ]
    if given:
        parser.error(
            f"{' and '.join(given)} {'needs' if len(given) == 1 else 'need'} --data: they split and read a "
            "data folder's songs; the demo songs are split by --data.val_fraction and --data.demo_test_songs "
            "(cv: by --folds), and their annotations have no gaps"
        )


#: Settings that do nothing unless another one says so: (dotted name, whether this config uses it, why not,
#: what to pass instead). A run given one of them unused ran without it, said nothing, and recorded it.
_USED_ONLY_WITH: tuple[tuple[str, Callable[[TrainingConfig], bool], str, str], ...] = (
    (
        "save_keep",
        lambda c: bool(c.save_every),
        "keeps the newest of the --save_every checkpoints, and save_every is 0 (none are saved; a --preset "
        "or --config may set it)",
        "pass --save_every N too",
    ),
    (
        "loss.chord_weight",
        lambda c: c.model.chord_head,
        "weighs the joint chord head's loss, and model.chord_head is false (no such head)",
        "pass --model.chord_head true too",
    ),
    (
        "decode.chord_head_weight",
        lambda c: c.model.chord_head,
        "weighs the joint chord head in decoding, and model.chord_head is false (no such head)",
        "pass --model.chord_head true too",
    ),
    (
        "features.bass_view_filter_scale",
        lambda c: c.features.bass_view_bins > 0,
        "sets the filters of the bass view, and features.bass_view_bins is 0 (no bass view)",
        "pass --features.bass_view_bins N too",
    ),
)


def _refuse_settings_without_effect(
    parser: argparse.ArgumentParser, args: argparse.Namespace, config: TrainingConfig
) -> None:
    """An error (exit 2) for a flag of `_USED_ONLY_WITH` that this config does not use. Only the flags: a
    recorded run's config.json still loads and resumes."""
    for name, used, why, remedy in _USED_ONLY_WITH:
        if name in vars(args) and not used(config):
            value = _as_typed(vars(args)[name])
            parser.error(f"--{name} {value} {why}: {remedy}, or leave out --{name}")


#: The data settings that shape the demo songs alone.
_DEMO_SETTINGS = ("demo_songs", "demo_test_songs", "demo_seconds", "demo_seed", "demo_styles")


def _as_typed(value: object) -> str:
    """A parsed flag's value as it is typed: a list's items joined by commas (``--data.demo_styles``)."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    if isinstance(value, bool):  # (as --data.allow_gaps true is typed)
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)


def _run_folders_checkpoint(resume: str | None, run_dir: str | None, checkpoint_dir: str) -> Path | None:
    """The checkpoint of the --run_dir that a bare `--resume last` (`best`, `interrupted`: Lightning's
    ckpt_path="last") means, where no such folder is in the current folder; None otherwise. The --resume
    path is read from the current folder, so the error there spoke of `last` and `.`, not of the run's."""
    if not resume or not run_dir or Path(resume).exists() or len(Path(resume).parts) != 1:
        return None
    meant = Path(run_dir) / checkpoint_dir / resume
    return meant if meant.is_dir() else None


def _note_demo_flags_with_data(args: argparse.Namespace, config: TrainingConfig) -> None:
    """Say that a demo setting given beside a data folder is not used: a run on a folder trains on its songs
    alone, and the setting, recorded in config.json, had no effect (a user asking for the demo songs beside
    their own trained on their own alone, told nothing). Only flags: a run's config.json given with --config,
    and a preset, hold demo settings of their own."""
    given = [
        f"--data.{name} {_as_typed(vars(args)[f'data.{name}'])}"
        for name in _DEMO_SETTINGS
        if f"data.{name}" in vars(args)
    ]
    if config.data.data_dir and given and not leaves_notes_to_others():
        to_stderr(
            f"note: {' and '.join(given)} {'is' if len(given) == 1 else 'are'} not used: a run on a data "
            "folder trains on its songs alone, not beside the demo songs; to start from what the demo "
            "learnt, train the demo, then pass --init_from DEMO_RUN with --data"
        )


#: What train --help says of the annotations' labels: a musician's first question is which chords it learns.
_LABELS_HELP = (
    "Chord labels are Harte syntax (A:min, G:7, C:maj7/3, N, X) and each trains as one of "
    f"{len(CHORD_TYPES)} chord types, with a root and a bass: {', '.join(CHORD_TYPES)}; a label outside "
    "them trains as X or with extensions dropped (C:7(#5) as C:7), each listed in data_report.txt."
)


def _cmd_train(argv: list[str], demo: bool) -> int:
    prog = "python -m audiotrain.recipes.chords" + ("" if demo else " train")
    description = (
        "Demo: generate (or reuse) synthetic songs, train, evaluate on held-out songs, write everything to a run folder."
        if demo
        else "Train on a folder of songs (split by song, or by folder with --data.split_by, into "
        "train/val/test), then evaluate on the test songs; every file the folder's scan leaves out is listed "
        "in the run folder's data_report.txt. " + _LABELS_HELP
    )
    # The demo's flags need no command, but `--help` without one is the overview of the commands.
    help_command = "python -m audiotrain.recipes.chords demo --help" if demo else None
    parser = _training_parser(
        prog, description, needs_data=not demo, init_from=True, help_command=help_command
    )
    args = parser.parse_args(argv)
    refused = resume_or_overwrite(args.resume, args.overwrite)
    if refused:
        parser.error(refused)
    try:
        config = _config_from_args(args)
    except (ValueError, FileNotFoundError) as error:
        parser.error(_with_flag_hint(str(error), parser))
    meant = _run_folders_checkpoint(args.resume, args.run_dir, config.checkpoint_dir)
    if meant is not None:
        parser.error(
            f"--resume {args.resume}: there is no checkpoint folder {args.resume} in the current folder; "
            f"the one of --run_dir {args.run_dir} is {meant}: --resume {meant}"
        )
    if args.config is not None and args.init_from is None and args.resume is None:
        _note_a_run_started_from_weights(args.config)  # (a resume goes on with its checkpoint's weights)
    if not demo:
        config = _with_data_folder(parser, args, config)
        config = _with_resumed_pairing(args, config)
    _refuse_pairing_without_data(parser, config)
    _refuse_folder_flags_on_demo(parser, args, config)
    _refuse_settings_without_effect(parser, args, config)
    _note_demo_flags_with_data(args, config)
    resumed_processes = checkpoint_processes(args.resume)
    try:
        plan = plan_local_processes(
            config.processes,
            config.batch_size,
            resumed_processes=resumed_processes,
            on_cpu=config.training_device() == "cpu",  # --device cpu on a machine with a GPU too
            cpu_flag="--device cpu",
        )
    except ValueError as error:
        parser.error(str(error))
    if args.print_config:  # (after the run's refusals of the settings: a process count the batch refuses)
        if args.resume is not None:  # (a checkpoint that is not one: the run refuses it, and its settings)
            try:
                ckpt.resolve_checkpoint(args.resume)
            except ckpt.CheckpointError as error:
                parser.error(str(error))
        return _print_config(config)
    check_kernel_cache(
        on_cpu=config.training_device() == "cpu", log=to_stderr
    )  # (MLX's folder, as the run's)
    if not in_launched_job():  # (said once, by the command the user ran)
        if args.config is not None:
            _note_another_process_count(args.config, plan.processes)
            _note_another_blas_thread_count(args.config, plan.processes)
        # (None before a weights-only --resume: a line on how it was trained would precede its refusal)
        note = (
            resume_processes_note(
                args.resume,
                resumed_processes,
                config.processes,
                plan.processes,
                "--processes",
                on_cpu=config.training_device() == "cpu",
                batch=(config.batch_size, "--batch_size"),
            )
            if not _weights_only(args.resume)
            else None
        )
        if note:
            to_stderr(note)
        if args.resume and args.resume_unrecorded_demo:
            note = unrecorded_demo_note(args.resume, config.data, from_demo=not config.data.data_dir)
            if note:
                to_stderr(note)
        elif args.resume_unrecorded_demo:  # (it was accepted silently: a flag that did nothing)
            to_stderr(
                f"note: {UNRECORDED_DEMO_FLAG} changes nothing without --resume: it lets a resume go on from "
                "a checkpoint that records no demo generator versions"
            )
    if plan.processes > 1:
        try:  # (each process trains its own copy: checked once more for all of them, before any starts)
            check_model_fits_memory(config, plan.processes)
        except ValueError as error:
            parser.error(str(error))
        # Refusals of the run folder and of the checkpoint to resume come once, from here, not from each rank.
        check_output_folders(
            config, Path(args.run_dir) if args.run_dir else None, args.resume, args.overwrite
        )
        if args.resume:
            own = (
                Path(args.run_dir)
                if resumes_run_in(args.resume, args.run_dir, config.checkpoint_dir)
                else None
            )
            check_resume_settings(
                config,
                args.resume,
                resume_unrecorded_demo=args.resume_unrecorded_demo,
                run_dir=own,
                init_from=args.init_from,
            )
        elif args.init_from:  # (a resume does not read it)
            check_init_from(config, args.init_from, Path(args.run_dir) if args.run_dir else None)
        if config.data.data_dir:  # so is a data folder with too few usable songs (its headers are read twice)
            folder_splits(
                config.data,
                config.seed,
                min_seconds=config.features.min_seconds,
                run_dir=args.run_dir or None,
            )
        # The demo songs need the disk (each rank met it after MPI had started); a data folder's run computes
        # the features an unwritable cache lacks in memory, as one process does.
        if not config.data.data_dir:
            check_cache_writable(config.data)
        return run_local_job(
            plan, "audiotrain.recipes.chords", ([] if demo else ["train"]) + argv, log=to_stderr
        )
    if plan.note:
        to_stderr(plan.note)
    unrecorded_demo = {"resume_unrecorded_demo": True} if args.resume_unrecorded_demo else {}

    def going_on(checkpoint, run_dir) -> str:
        """The command that resumes this one from `checkpoint` in `run_dir` (a stop, a full disk)."""
        argv_again = ([] if demo else ["train"]) + argv
        return resume_command(
            "audiotrain.recipes.chords", argv_again, checkpoint, run_dir=run_dir, path_flags=RESUME_PATH_FLAGS
        )

    try:
        result = run_training(
            config,
            args.run_dir,
            resume=args.resume,
            overwrite=args.overwrite,
            init_from=args.init_from,
            replay_of=args.config,  # (a resume goes on with its own songs, checked against its checkpoint)
            **unrecorded_demo,
        )
    except SaveAborted as stop:  # fit named the newest intact checkpoint: the command that goes on from it
        continue_from = getattr(stop, "continue_from", None)
        if continue_from is not None and collectives.is_main_process():
            command = going_on(continue_from, stop.run_dir)  # type: ignore[attr-defined]
            to_stderr(f"continue the run with:\n  {command}")
        raise
    except ckpt.CheckpointError as error:
        continue_from = getattr(error, "continue_from", None)
        if continue_from is not None:  # (a full disk as training saved: the command that goes on, once freed)
            command = going_on(continue_from, error.run_dir)  # type: ignore[attr-defined]
            when = once_writable(error.__cause__)  # (the OSError the save raised it from)
            raise type(error)(f"{error}; {when}, continue the run with:\n  {command}") from None
        better = _with_command_line_remedy(error, args.resume)
        if better is error:
            raise
        raise better from None
    except NonFiniteStop as stop:  # (the Trainer's message names its own settings, not these flags)
        raise ValueError(_diverged_message(stop, config)) from None
    except OutputWriteError as error:  # (a full disk after training: the command that finishes the run)
        finish_from = getattr(error, "finish_from", None)
        if finish_from is not None:
            command = going_on(finish_from, error.run_dir)
            error.note += f"; {once_writable(error)}, finish the run with:\n  {command}"
        raise
    if not collectives.is_main_process():
        return 0  # rank 0 reports for a data-parallel job (`stop_status_of_rank`)
    if result.checkpoint is None:  # run_training said that Ctrl-C came before anything was saved
        return stop_exit_status()
    print(f"\nrun folder: {result.run_dir}")
    print(f"  checkpoint:  {result.checkpoint}")
    curves = " (+ training_curves.png)" if (result.run_dir / "training_curves.png").is_file() else ""
    print(f"  history:     {result.run_dir / 'history.json'}{curves}")
    if result.evaluation is not None:
        # No confusion matrix where no frame was scored (the evaluation's note said why), or plots are off.
        written = (result.run_dir / "evaluation" / "confusion_matrix.png").is_file()
        plot = ", confusion_matrix.png" if written else ""
        print(f"  predictions: {result.run_dir / 'evaluation'} (.lab per song, scores.json, scores.md{plot})")
    report = result.run_dir / DATA_REPORT
    if report.is_file():  # (a data folder's run: the one place every file its scan left out is listed)
        print(f"  data report: {report} (what the scan found, and every file it left out with the reason)")
    predict = shell_command(
        *recipe_command("audiotrain.recipes.chords", "predict"), "--checkpoint", result.checkpoint,
        "SONG.wav", "-o", "SONG.lab",
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
        to_stderr(f"training was interrupted ({stopped_by()}); continue it with:\n  {command}")
        return stop_exit_status()  # as a shell reports a command that signal stopped (130 for Ctrl-C)
    return stop_exit_status() if result.interrupted else 0  # (Ctrl-C after training: plots, evaluation)


def _print_config(config: TrainingConfig) -> int:
    """`--print_config`: the resolved settings on stdout, for a script to read or to pass back with --config
    (every field, as config.json's ``config``: a file with all of them repeats the run whatever the defaults
    become)."""
    print(json.dumps(config.to_dict(), indent=2))
    return 0


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
        to_stderr(
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
        to_stderr(
            f"note: the run of {config_file} trained in {used} process{'es' * (used > 1)}, this one "
            f"trains in {processes}: the same settings then give other weights (float rounding), so it "
            f"repeats that run only approximately; pass --processes {used} to repeat it exactly"
        )


def _note_another_blas_thread_count(config_file: Path, processes: int) -> None:
    """Say so when ``--config`` names the record of a run whose matrix products ran on another OpenBLAS
    thread count per process (``versions.blas_threads``, in config.json and trainer_state.json) than this
    one's will: OpenBLAS shares a product out by thread count, so the weights differ in their last bits, as
    with another process count (the cores of another machine, ``OMP_NUM_THREADS``)."""
    record = _run_record(config_file)
    versions = record.get("versions") if record is not None else None
    recorded = versions.get("blas_threads") if isinstance(versions, dict) else None
    planned = planned_blas_threads(processes)
    if not isinstance(recorded, str) or planned is None or recorded == str(planned):
        return  # (none recorded: MLX's own BLAS or Accelerate, or a record from before the field)
    to_stderr(
        f"note: the run of {config_file} ran its BLAS on {recorded} thread{'s' * (recorded != '1')} per "
        f"process, this one on {planned}: the same settings then give other weights (float rounding), so it "
        f"repeats that run only approximately; set OPENBLAS_NUM_THREADS={recorded} to repeat it exactly"
    )


def _recorded_folds(config_file: Path | None) -> int | None:
    """The number of folds a cv run's record (``--config RUN/cv_progress.json``) holds, said on stderr: its
    settings alone, under the default 5 folds, would make other folds and other scores. None for another
    file (one that cannot be read is named later, by `_config_from_args`)."""
    if config_file is None:
        return None
    try:
        record = load_config_data(config_file)
    except (OSError, ValueError):
        return None
    if not (isinstance(record, dict) and isinstance(record.get("config"), dict) and "done" in record):
        return None
    folds = record.get("folds")
    if not isinstance(folds, int) or isinstance(folds, bool) or folds < 2:
        return None
    to_stderr(f"note: --folds {folds}, as {config_file} records (pass --folds to make other folds)")
    return folds


def _cmd_cv(argv: list[str]) -> int:
    from audiotrain.recipes.chords.cv import CrossValidationInterrupted, fold_name, run_cross_validation

    parser = _training_parser(
        "python -m audiotrain.recipes.chords cv",
        "Cross-validation grouped by song: every song is scored by the fold that did not train on it. --seed "
        "draws the folds too (another --seed holds out other songs together; every fold trains with that "
        "seed); each fold's songs are listed in RUN/fold<k>/config.json, under songs: train, val and test.",
        needs_data=True,
        resume_help="continue the cv run in this folder (stopped by Ctrl-C or a crash) with the same flags: "
        "its finished folds are kept, the stopped one resumes from its checkpoint, the rest are trained",
        overwrite_help="replace a previous cv run in --run_dir: remove what it wrote (in its fold<k>/ folders, "
        "oof/, cv_scores.* and cv_progress.json); other files stay, also inside those folders, and are named; "
        "without it a --run_dir that holds files is refused",
    )
    parser.add_argument(
        "--folds",
        type=int,
        default=None,
        help="number of folds (default 5; with --config RUN/cv_progress.json, the number that run had)",
    )
    args = parser.parse_args(argv)
    if args.folds is None:
        args.folds = _recorded_folds(args.config) or 5
    test_fraction = getattr(args, "data.test_fraction", None)  # (absent unless the flag was given)
    if test_fraction is not None:
        # Each fold's held-out part is the fold: the fraction would be recorded in cv_progress.json and every
        # fold's config.json without having had any effect (as a pairs file's split column, refused too).
        parser.error(
            f"--data.test_fraction {test_fraction:g}: cv holds out each of its --folds {args.folds} folds in "
            f"turn (1/{args.folds} of the songs each), so a test fraction would not be used; drop it, or "
            "train with it on one split with train"
        )
    try:
        config = _config_from_args(args)
    except (ValueError, FileNotFoundError) as error:
        message = str(error)
        if "unknown field 'folds'" in message:  # (the fold count is the command's, not a run setting)
            message += "; the number of folds is the --folds flag of cv, not a --config setting"
        parser.error(_with_flag_hint(message, parser))
    if args.data_folder is not None or getattr(args, "data.data_dir", None) or config.data.data_dir:
        config = _with_data_folder(parser, args, config)
    _refuse_pairing_without_data(parser, config)
    _refuse_folder_flags_on_demo(parser, args, config)
    _refuse_settings_without_effect(parser, args, config)
    _note_demo_flags_with_data(args, config)
    if config.processes > 1:
        parser.error(
            f"--processes {config.processes}: cv trains its folds in this process (the demo and train commands "
            "start one process per core); under python -m audiotrain launch -n N -- (or mlx.launch, mpirun) every "
            "fold trains data parallel"
        )
    if args.print_config:  # (--folds is the command's, not a setting: not printed)
        return _print_config(config)
    refused = resume_or_overwrite(args.resume, args.overwrite, "the cv run")
    if refused:
        parser.error(refused)
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
    check_kernel_cache(on_cpu=config.training_device() == "cpu", log=to_stderr)
    run_dir = args.resume or args.run_dir or shared_run_folder_name("chords-cv")

    def going_on() -> str:
        """The command that continues this cv run (--resume keeps its finished folds)."""
        again = without_overwrite(argv)  # (the run to continue is the new one)
        return resume_command(
            "audiotrain.recipes.chords", ["cv", *again], run_dir.absolute(), path_flags=RESUME_PATH_FLAGS
        )

    try:
        result = run_cross_validation(
            config, run_dir, folds=args.folds, overwrite=args.overwrite, resume=args.resume is not None
        )
    except SaveAborted:  # a second Ctrl-C aborted a fold's save: its 'Save aborted' line named what is left
        if collectives.is_main_process():  # (--resume goes on from the fold's newest intact checkpoint)
            to_stderr(f"Continue it with:\n  {going_on()}")
        raise
    except CrossValidationInterrupted as stop:
        if not collectives.is_main_process():  # (rank 0 says it for the job, once it has scored the fold)
            return stop_status_of_rank()
        saved = f"saved {stop.checkpoint}" if stop.checkpoint else "stopped before its first step"
        command = going_on()
        to_stderr(
            f"\ncross-validation interrupted ({stopped_by()}) in {fold_name(stop.fold, args.folds)} "
            f"({saved}); no later fold was trained and no cv scores were written. Continue it with:\n  {command}"
        )
        return stop_exit_status()  # as a shell reports a command that signal stopped (130, 143 for SIGTERM)
    except NonFiniteStop as stop:  # (as train says it; the fold is in the checkpoint's path)
        raise ValueError(_diverged_message(stop, config, init_from=False)) from None
    if collectives.is_main_process():
        print(f"\nrun folder: {result.run_dir} (fold<k>/, oof/*.lab, cv_scores.json, cv_scores.md)")
    return 0


@returning_exit_status
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m audiotrain.recipes.chords COMMAND ...`` (demo, train, evaluate, score, predict, cv, export;
    command: demo); `argv` defaults to ``sys.argv[1:]``. Returns the exit status (0 on success)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(top_help())
        return 0
    if argv == ["--version"]:  # (as `audiotrain --version`: a CI log names the build it ran)
        print(f"{as_started('python -m audiotrain.recipes.chords')} {build_version()}")
        return 0
    install_rank_stop_signal()  # in a rank of a job of local processes: the launcher's Ctrl-C
    command = argv.pop(0) if argv and argv[0] in COMMANDS else "demo"
    if argv and not argv[0].startswith("-") and command == "demo":
        print(f"error: {unknown_command_message(argv[0], COMMANDS)}", file=sys.stderr)
        return 2
    if command == "demo" and any(a == "--data" or a.startswith("--data=") for a in argv):
        # CLAP takes --data without a command; here the command line without one trains on the demo songs.
        print(
            as_started(
                "error: --data DIR belongs to the train command: python -m audiotrain.recipes.chords train "
                "--data DIR [options] (without a command the recipe trains on the built-in demo songs)"
            ),
            file=sys.stderr,
        )
        return 2
    try:
        if command in ("predict", "evaluate", "export") and ends_on_other_ranks(command):
            return 0
        # The commands that write figures refuse a bad AUDIOTRAIN_PLOTS now, not after training or scoring.
        if command in ("demo", "train", "cv", "evaluate", "score"):
            plots_wanted()
        # The folder scan lists these files once, in its report; each later read would warn again. (Hidden
        # for the command alone, beside a sweep's other threads: `ignoring_warnings`.)
        with (
            ignoring_warnings(category=SeveralAnnotationsWarning),
            ignoring_warnings(category=ZeroLengthSegmentsWarning),
        ):
            if command in ("demo", "train"):
                return _cmd_train(argv, demo=command == "demo")
            if command == "cv":
                return _cmd_cv(argv)
            if command == "export":
                return export_main(argv)
            if command == "evaluate":
                from audiotrain.recipes.chords.cli_evaluate import _cmd_evaluate

                return _cmd_evaluate(argv)
            if command == "score":
                from audiotrain.recipes.chords.cli_score import _cmd_score

                return _cmd_score(argv)
            from audiotrain.recipes.chords.cli_predict import _cmd_predict

            return _cmd_predict(argv)
    except USER_ERRORS as error:
        if env_flag(TRACEBACK_ENV):
            raise
        if error_left_to_main():  # the ranks read one data folder: rank 0 says what is wrong with it, once
            return 2
        status = error_status(error)  # (1 for a full disk: stopped, not done, as the help's table says)
        if isinstance(error, ckpt.OlderFormatError):
            error = _older_format_message(error)
        message = as_started(str(error))  # (the commands it names, as the recipe was started)
        say_error(message)
        return status


def _diverged_message(stop: NonFiniteStop, config, init_from: bool = True) -> str:
    """The non-finite stop in this command's flags: what lowers the risk, and where the last good weights are
    (a --resume would go on at the same learning rate, which the resume keeps); `init_from`: the command has
    --init_from."""
    message = (
        f"training stopped: {stop.where}. Lower --learning_rate (this run's: {config.learning_rate:g}), "
        f"set --gradient_clip (this run's: {config.gradient_clip:g}; 0 is off), or check the songs' audio"
    )
    if stop.checkpoint is None:
        return message
    start_there = f"; --init_from {stop.checkpoint} starts from them" if init_from else ""
    return (
        f"{message}. The weights before those steps are in {stop.checkpoint} (finite, though steps that "
        f"grew the loss before them may have spoilt them{start_there})"
    )


def _older_format_message(error: ckpt.OlderFormatError) -> str:
    """Why a checkpoint of an older format cannot be resumed, and what it still serves. The Trainer API's
    message advises load_weights, which fails here: the chord model has gained heads since. Its model loads
    (`ckpt.read_model_state`, the settings read as that version ran): only the trainer state changed."""
    return (
        f"{error.folder} was written by an older audiotrain (checkpoint format {error.version}; this one reads "
        f"format {ckpt.FORMAT_VERSION}): this version cannot resume training from it (a resume restores the "
        "trainer state, whose layout changed since), but its model still loads: predict and evaluate "
        "--checkpoint, export, and a new run from its weights with "
        + shell_command("--init_from", error.folder)
    )


if __name__ == "__main__":
    raise SystemExit(main())
