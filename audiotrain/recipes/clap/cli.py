"""The CLAP recipe's command line: ``python -m audiotrain.recipes.clap`` (training), ``export``, ``cv`` and
``evaluate`` (`audiotrain.recipes.clap.cli_evaluate`).

`HELP` is what ``--help`` prints: what a run does, what its folder holds, the data layouts and splits.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import shlex
import sys
from pathlib import Path

from audiotrain._build import build_version
from audiotrain._invocation import as_started
from audiotrain._lazy import imported_on_call
from audiotrain._system import TRACEBACK_ENV, env_flag, refusal_status, say_error
from audiotrain.distributed.collectives import LauncherEnvironmentError, MainProcessFailed
from audiotrain.distributed.failures import error_left_to_main
from audiotrain.distributed.local import (
    in_launched_job,
    install_rank_stop_signal,
    plan_local_processes,
    run_local_job,
    training_on_cpu,
)
from audiotrain.metrics.plot_loading import plots_wanted
from audiotrain.recipes._run import (
    check_kernel_cache,
    check_resume_folder,
    checkpoint_processes,
    ends_on_other_ranks,
    leaves_notes_to_others,
    nonempty_path,
    refuse_outputs_of_a_live_run,
    resume_processes_note,
    shell_command,
    stop_status_of_rank,
)
from audiotrain.recipes.clap.bundle import (
    check_demo_settings,
    check_settings_fit,
    export_checkpoint,
    model_config_known_now,
)
from audiotrain.recipes.clap.config import PRESETS, ClapRecipeConfig
from audiotrain.recipes.clap.data import check_data_folder
from audiotrain.recipes.config_cli import (
    STOP_EXIT_STATUSES,
    TIME_LIMIT_FLAGS,
    USER_ERRORS,
    SettingError,
    SettingsParser,
    add_dataclass_arguments,
    add_overwrite_argument,
    add_preset_argument,
    exit_status_help,
    help_text,
    load_config_data,
    read_older_record,
    resolve_settings,
    resume_or_overwrite,
    returning_exit_status,
    settings_of,
    unknown_command_message,
)
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.nonfinite import NonFiniteStop

# The training functions, imported as the command trains: audiotrain.recipes.clap.train imports the trainer
# (~0.3 s of CPU), which --help, a usage error and evaluate never use.
check_out_folder, default_learning_rate, run = (
    imported_on_call("audiotrain.recipes.clap.train", name)
    for name in ("check_out_folder", "default_learning_rate", "run")
)

#: What a run record (config.json) of an older audiotrain meant by a setting it does not hold, where that is
#: known: ``--config`` reads it so (`read_older_record`), and names every other one it lacks.
OLDER_RECORD_MEANINGS = {"train.processes": 1}

#: The chord recipe's names for flags of this recipe: an error offers this one's ("did you mean --out?").
OTHER_RECIPES_NAMES = {"--run_dir": "--out"}

#: The commands before the flags: none (training), ``export``, ``cv`` and ``evaluate``.
COMMANDS = ("export", "cv", "evaluate")

__all__ = ["build_export_parser", "build_parser", "export_main", "main", "parse_arguments", "parse_config"]

EXPORT_HELP = """Export a checkpoint of a CLAP run as a Hugging Face folder:

  python -m audiotrain.recipes.clap export --checkpoint RUN/checkpoints/epoch=3-step=120 --out my_clap/

RUN/checkpoints/X is any trainer checkpoint of a run of the recipe (last, interrupted, a best-by-metric one).
The architecture, tokenizer and front end come from the checkpoint the run started from (or, for the offline
demo, from RUN/demo_init), as recorded in RUN/config.json; when that folder is gone, from the run's own
RUN/hf_model (with a note). A checkpoint alone (no RUN/config.json around it) takes them from the model folder
its own trainer_state.json records, where that is still there unchanged; a demo checkpoint, or one whose model
folder is gone, needs --run RUN. The weights come from the checkpoint. The folder loads with
transformers.ClapModel.from_pretrained and audiotrain.models.clap.load_pretrained, like the run's own
hf_model/.
"""


#: What ``--help`` prints above the flags (plain text, wrapped to the terminal by `help_text`).
HELP = """Fine-tune CLAP on a folder of audio + captions. With a checkpoint:

  python -m audiotrain.recipes.clap --data my_sounds/ --pretrained laion/clap-htsat-unfused

loads the model (a local Hugging Face folder, or a hub id: downloaded, or read from the Hugging Face cache
offline), evaluates text↔audio retrieval on the held-out clips, fine-tunes with LAION's symmetric InfoNCE,
evaluates again and writes the run folder (--out):

- config.json: the resolved configuration, versions, command line (--config RUN/config.json repeats the run's
  settings, not its --overwrite or --resume; every checkpoint's trainer_state.json holds it too, as
  run_config)
- data_report.txt: what was found in the data folder and what was skipped, and why
- checkpoints/: trainer checkpoints (last resumes with --resume; the best by val_mAP@10)
- history.json: per-epoch train/val loss, accuracies and retrieval scores
- plots/: loss.png, accuracy.png, retrieval.png (before/after), retrieval_per_epoch.png
- retrieval.json: retrieval (R@1/5/10, mAP@10 both ways) and zero-shot scores before and after
- hf_model/: the best checkpoint (by val_mAP@10; the last with one evaluation clip) as a Hugging Face folder
  (transformers.ClapModel.from_pretrained); "after" scores these weights (as evaluate --model RUN/hf_model
  scores them again, on any folder)
- demo_init/: the offline demo's tokenizer, front end and model config (a demo run alone); export rebuilds
  a checkpoint's model from them (from hf_model/ where this folder is gone)

Settings: defaults < --preset (quick_test: seconds; development; production: real data) < --config FILE
(YAML/JSON; it may name its own preset) < flags.

Without --pretrained it runs an OFFLINE DEMO: a small randomly initialised CLAP and a BPE tokenizer trained on
the captions, on a generated folder of captioned synthetic sounds (or on --data), so the command works with no
download. Its numbers say nothing about real CLAP models.

Data: clip.wav + clip.txt (one caption per line) side by side, or one metadata file (metadata.jsonl,
metadata.json, metadata.csv or metadata.tsv, UTF-8) with file_name and caption (a list in JSON; caption_1,
caption_2, ... or text columns in CSV, which may be comma-, semicolon- or tab-separated; names are
case-insensitive) and optional split and label (zero-shot class); where the top holds none, one in each split
folder (train/metadata.csv, test/metadata.csv, naming the files beside it: AudioFolder's layout). Any sample
rate, mono or stereo. Missing or
empty captions, absent files, paths and symlinked folders leading outside the folder, a second path to one
clip (a link to it), unreadable audio and clips shorter than 0.1 s are skipped and listed, with their cause,
in data_report.txt. Symlinked folders inside the data folder are entered, each real folder once.

Splits: the folder's --dataset.train_split (train) trains; validation (else test), other than the training
split, evaluates (the training split itself, with a warning, where no other is left). A folder with
named splits but none called train (Clotho: development/validation/evaluation) is an error that lists them:
pass --dataset.train_split development. A folder without splits holds out --dataset.eval_fraction of its clips
(seeded). Clips of other splits are left out, and counted. An --dataset.eval_split that names the training
split trains on all its clips and evaluates on the same ones (an overfitting check). The evaluation split
chooses the best checkpoint and, unless --dataset.test_split names another, gives the "after" scores too (a
note says they lean high). Clotho's protocol: --dataset.train_split development --dataset.eval_split
validation --dataset.test_split evaluation.

Windows: the model hears the front end's max_length_s of each clip (LAION's 10 s). A longer clip trains on
one random window, drawn anew each epoch from --train.seed (the same on a rerun or resume), and is scored on
its centre window; a "fusion" model hears the whole clip squeezed to the window plus 3 windows, one from each
third (random in training, the middle ones when scored). A shorter clip is filled as the front end's padding
says (repeatpad: repeated whole, then silence). The run counts both kinds in a note. A longer clip is flagged
as longer (is_longer) as transformers flags it, so a fused model with a "rand_trunc" front end fuses it; from
Python, ClapFeatureExtractor(..., train=False) takes the same windows the run scores.

Validation: val_loss and the val accuracies are the contrastive loss within batches of
--train.eval_batch_size clips (its chance level is ln(batch size), so it depends on that size); when the
evaluation clips fill more than one batch, the last partial batch is left out of them (a batch of one clip
would score loss 0 and accuracy 1). The retrieval scores (val_mAP@10, R@k) always use every clip.
"""

#: What a script that runs the command (training or cv) can branch on, below the other commands.
EXIT_STATUSES = (
    ("0", "done"),
    (
        "1",
        "stopped, not done: by a full disk (a checkpoint, the demo clips, an export, stdout: the file is "
        "named), too little memory (a ulimit -v), or an unforeseen error (its traceback)",
    ),
    ("2", "refused, or stopped by an error it names (a flag, a setting, a file, a checkpoint, a logger)"),
    *STOP_EXIT_STATUSES,
)

#: Below the flags: the other commands.
EPILOG = """Example:

  python -m audiotrain.recipes.clap --data my_sounds/ --pretrained laion/clap-htsat-unfused \\
    --train.epochs 10 --task.learning_rate 2e-5 --task.freeze_text true

Export any checkpoint of a run as a Hugging Face folder (see export --help):

  python -m audiotrain.recipes.clap export --checkpoint RUN/checkpoints/last --out DIR

Cross-validate, grouped by clip: each fold a run in RUN/fold<k>/, the scores' mean and std in RUN/cv_scores.md
(see cv --help):

  python -m audiotrain.recipes.clap cv --folds 5 --data my_sounds/ --pretrained laion/clap-htsat-unfused

Score a model without training (a checkpoint on your sounds before fine-tuning, a run's hf_model/ on new clips;
see evaluate --help):

  python -m audiotrain.recipes.clap evaluate --model RUN/hf_model --data new_sounds/ --out scores.json
"""


def build_parser() -> argparse.ArgumentParser:
    """The training command's parser: ``--config``, ``--preset``, ``--overwrite`` and a flag per field of
    `ClapRecipeConfig` (``--train.batch_size``, ``--dataset.eval_split``, ...), as ``--help`` lists them."""
    parser = SettingsParser(
        prog="python -m audiotrain.recipes.clap",
        description=help_text(HELP),
        epilog=f"{help_text(EPILOG)}\n\n{exit_status_help(EXIT_STATUSES)}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        other_names=OTHER_RECIPES_NAMES,
        absent_flags=TIME_LIMIT_FLAGS,
    )
    parser.add_argument(
        "--config",
        default=None,
        type=nonempty_path,
        help="YAML or JSON file with any of the settings below (flags win), or a run's config.json (repeats it)",
    )
    add_preset_argument(parser, PRESETS)
    add_dataclass_arguments(parser, ClapRecipeConfig(), skip=frozenset({"overwrite"}))
    add_overwrite_argument(
        parser,
        default=argparse.SUPPRESS,
        help="replace a previous run in --out: remove what it wrote (its checkpoints, hf_model/, history.json, "
        "plots, ...); other files stay, also inside those folders, and are named; without it an --out that "
        "holds files is refused, unless --resume names a checkpoint inside it",
    )
    return parser


def parse_config(argv: list[str] | None = None) -> ClapRecipeConfig:
    """The `ClapRecipeConfig` the command line `argv` (default: ``sys.argv[1:]``) sets, checked as the
    command checks it (flags over a ``--config`` file over the preset); a bad flag exits with argparse's
    usage message."""
    return parse_arguments(build_parser(), argv)[0]


def _check_recorded_folders(cfg: ClapRecipeConfig, args: argparse.Namespace, record: str | None) -> None:
    """Refuse a ``pretrained`` or ``data`` folder that the `record` file (the --config file, a run's
    config.json say, or the resumed checkpoint's trainer_state.json) names and that is gone (moved since),
    naming the file and the field: the error otherwise named a ``--data`` that was not typed, or no field at
    all. (A hub id is not a path: only an absolute path is checked.)"""
    if record is None:
        return
    for name in ("pretrained", "data"):
        recorded = getattr(cfg, name)
        given = vars(args).get(name) is not None
        if recorded and not given and Path(recorded).is_absolute() and not Path(recorded).is_dir():
            raise FileNotFoundError(
                f"{name} {recorded} (in {record}): no such folder; pass --{name} DIR where it is now"
            )
    data = cfg.data
    if data and vars(args).get("data") is None and not Path(data).expanduser().is_absolute():
        if not Path(data).is_dir():  # (a file's relative `data: clips`; a hub id is never `data`)
            raise FileNotFoundError(
                f"data {data} (in {record}): no such folder{_beside_the_file(data, record)}"
            )


def _beside_the_file(data: str, record: str) -> str:
    """Where a file's relative data folder is read from (the working folder, as a flag's path is), and the
    folder beside the file that the user most likely meant, where there is one."""
    said = (
        f"; a relative path in a --config file is read from the working folder ({Path.cwd()}), not the file's"
    )
    beside = os.path.normpath(Path(record).parent / data)
    # (quoted: a folder named `clips [live]` is pasted into a shell)
    return said + (
        f": for the folder beside it, pass --data {shlex.quote(beside)}" if Path(beside).is_dir() else ""
    )


def parse_arguments(
    parser: argparse.ArgumentParser, argv: list[str] | None
) -> tuple[ClapRecipeConfig, argparse.Namespace]:
    """(the resolved settings, every parsed argument), from a `build_parser` parser (``cv`` adds ``--folds``)."""
    args = parser.parse_args(argv)
    refused = resume_or_overwrite(getattr(args, "resume", None), getattr(args, "overwrite", False))
    if refused:  # (before the resumed run's settings are read and said)
        parser.error(refused)
    try:
        # A --resume goes on with the settings its run recorded (its checkpoint's trainer_state.json), not
        # today's defaults: without its flags, a resume trained with another batch and learning rate and
        # rewrote the run's config.json with them. A --config file given instead is taken as it is.
        resumed_record = _resumed_run_record(args) if args.config is None else None
        record = args.config if resumed_record is None else resumed_record
        # defaults < --preset < the --config file (or the resumed run's record) < flags
        # (A resume's record sets every setting a --preset does: that --preset, of the command the run was
        # started with, is the run's own, not a request to change it.)
        cfg = resolve_settings(
            ClapRecipeConfig(),
            PRESETS,
            args.preset,
            record,
            args,
            refuse_unused_preset=resumed_record is None,
        )
        if record is not None:
            # A record from before `train.processes` existed: its run trained in one process.
            resuming = resumed_record is not None
            # (A resume's process count is its checkpoint's, said by `main`: not read from the record here.)
            skip = ("train.processes",) if resuming else ()
            cfg, note = read_older_record(
                cfg, record, vars(args), OLDER_RECORD_MEANINGS, skip=skip, resuming=resuming
            )
            if note and not leaves_notes_to_others():  # (said once per job, not by each process)
                print(note, file=sys.stderr)
        if resumed_record is not None:
            cfg = _resumed_with_flags(cfg, args, resumed_record)
        elif args.config is not None and _is_run_record(args.config):
            # A run record repeats a run's settings, not the choices to replace a folder or to resume a
            # checkpoint: those are made on this command line (a run made with --overwrite would otherwise
            # replace itself when repeated).
            cfg = dataclasses.replace(
                cfg, overwrite=getattr(args, "overwrite", False), resume=getattr(args, "resume", None)
            )
        _check_recorded_folders(cfg, args, record)
        note = _unused_demo_flags_note(cfg, vars(args))
        if note and not leaves_notes_to_others():  # (said once per job, not by each process)
            print(note, file=sys.stderr)
        if cfg.pretrained is None:  # (a checkpoint's own limits are checked once it is loaded)
            check_demo_settings(cfg)
        try:
            cfg.task.check_given_warmup()
        except SettingError as error:  # (named as a flag, as merge_config names the section's other checks)
            raise ValueError(error.within("task.")) from None
        warning = cfg.dataset.same_split_warning()
        if warning and not leaves_notes_to_others():
            print(warning, file=sys.stderr)
        return cfg, args
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
        raise  # unreachable: parser.error exits


def _unused_demo_flags_note(cfg: ClapRecipeConfig, given: dict) -> str | None:
    """A note naming the --demo.* flags this run does not use, else None: --demo.clips makes the demo clips,
    which a --data folder replaces; --demo.vocab_size and --demo.width the from-scratch model, which
    --pretrained replaces. They were recorded in config.json without a word, the user believing a --data run
    trained on more clips or a --pretrained one with a wider model. Only flags: every run's record holds the
    demo settings. (--demo.folder is where demo clips go, as --data.cache_dir is the chord recipe's: scripts
    pass it to every run, as they keep a cache apart.)"""
    unused = [name for name in ("clips",) if cfg.data is not None or cfg.pretrained is not None]
    unused += [name for name in ("vocab_size", "width") if cfg.pretrained is not None]
    listed = [f"--demo.{name} {given[f'demo.{name}']}" for name in unused if f"demo.{name}" in given]
    if not listed:
        return None
    instead = [f"model is --pretrained {cfg.pretrained}"] if cfg.pretrained is not None else []
    instead += [f"clips are --data {cfg.data}"] if cfg.data is not None else []
    return (
        f"note: {' and '.join(listed)} {'is' if len(listed) == 1 else 'are'} not used: the --demo settings "
        f"make the offline demo's clips and model; this run's {' and its '.join(instead)}"
    )


#: The settings the learning-rate schedule's length (task.total_steps, resolved in the record) follows.
_SCHEDULE_LENGTH = ("train.epochs", "train.max_steps", "train.batch_size", "train.accumulate_grad_batches")

#: The settings that choose what trains (`CLAPTrainModule.apply_freezing`). A resume trains what its
#: checkpoint's run trained when it saved (the Trainer restores that set), so another value of one would be
#: reported and recorded without taking effect: it is refused.
_FREEZING = (
    "task.freeze_audio",
    "task.freeze_text",
    "task.freeze_audio_stages",
    "task.freeze_text_layers",
    "task.train_logit_scale",
)


def _flat(settings: dict, prefix: str = "") -> dict:
    """Dotted name → value of each setting in a settings tree."""
    flat = {}
    for name, value in settings.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{name}.")
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def _same_setting(recorded, given) -> bool:
    """Whether a setting given on the command line is the recorded one: a relative path to the folder the
    record names absolute is (the record writes its paths absolute)."""
    if recorded == given:
        return True
    if not (isinstance(recorded, str) and isinstance(given, str) and Path(recorded).is_absolute()):
        return False
    return (
        Path(given).expanduser().exists() and Path(given).expanduser().resolve() == Path(recorded).resolve()
    )


def _resumed_run_record(args: argparse.Namespace) -> str | None:
    """The trainer_state.json of the checkpoint ``--resume`` names, where it records its run's settings;
    None without --resume, or where it cannot be read (the checks of the resume say why)."""
    resume = getattr(args, "resume", None)
    if not resume:
        return None
    try:
        folder = ckpt.resolve_checkpoint(resume)
        recorded = ckpt.read_state(folder).get("run_config")
    except (OSError, ValueError, TypeError, ckpt.CheckpointError):
        return None
    return str(folder / ckpt.STATE_FILE) if isinstance(recorded, dict) else None


def _resumed_with_flags(cfg: ClapRecipeConfig, args: argparse.Namespace, record: str) -> ClapRecipeConfig:
    """`cfg`, resolved from the resumed run's `record`, with where to write and whether to replace taken from
    this command line (the record's are that run's choices), and one line naming what flags change from the
    run's settings. A flag changing the run's length plans the learning-rate schedule again (the record
    holds the length its run resolved) unless --task.total_steps is given too. Another freezing flag is
    refused (`_FREEZING`)."""
    given = vars(args)
    cfg = dataclasses.replace(
        cfg, out=given.get("out"), overwrite=given.get("overwrite", False), resume=given.get("resume")
    )
    if "train.processes" not in given:  # `main` resumes in the checkpoint's count, and says so
        processes = ClapRecipeConfig().train.processes
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, processes=processes))
    before = _flat(settings_of(load_config_data(record)))
    now = _flat(dataclasses.asdict(cfg))
    skipped = {"out", "resume", "overwrite", "train.processes"}
    changed = {
        name: (before[name], value)
        for name, value in now.items()
        if name in before and name not in skipped and not _same_setting(before[name], value)
    }
    refrozen = [name for name in _FREEZING if name in changed]
    if refrozen:
        listed = ", ".join(f"{name} {changed[name][0]!r} -> {changed[name][1]!r}" for name in refrozen)
        raise ValueError(
            f"--resume {cfg.resume}: {listed}: a resume trains the parameters its run trained when it saved "
            "(freezing is part of the run); leave the flag out, or start a new run from its weights with other "
            f"freezing: export {shell_command('--checkpoint', cfg.resume)} --out DIR, then --pretrained DIR"
        )
    replanned = any(name in changed for name in _SCHEDULE_LENGTH) and "task.total_steps" not in given
    if replanned:
        cfg = dataclasses.replace(cfg, task=dataclasses.replace(cfg.task, total_steps=None))
    if not leaves_notes_to_others():  # (said once per job, not by each process)
        line = f"--resume {cfg.resume}: going on with the settings its run recorded ({record})"
        if changed:
            listed = ", ".join(f"{name} {old!r} -> {new!r}" for name, (old, new) in changed.items())
            line += f", changed on the command line: {listed}"
            if replanned:
                line += "; the learning-rate schedule is planned again for the new length"
        print(line, file=sys.stderr)
    return cfg


def _is_run_record(file: str) -> bool:
    """Whether config file `file` is a run's record (RUN/config.json, or a checkpoint's
    trainer_state.json)."""
    data = load_config_data(file)
    return settings_of(data) is not data


@returning_exit_status
def main(argv: list[str] | None = None) -> int:
    """``python -m audiotrain.recipes.clap``: train (flags only), or the ``export``, ``cv`` and ``evaluate`` commands;
    `argv` defaults to ``sys.argv[1:]``. Returns the exit status (0 on success)."""
    try:
        return _command(list(sys.argv[1:] if argv is None else argv))
    except LauncherEnvironmentError as error:
        # Raised where a command first asks for the job (training's plan, export's and evaluate's rank 0
        # check): a launcher's variables left over from an earlier job, a ring port in use. One line, as
        # the chord recipe and `clap cv` say it, and raised as they raise it where AUDIOTRAIN_TRACEBACK asks.
        if env_flag(TRACEBACK_ENV):
            raise
        say_error(as_started(str(error)))
        return 2


def check_model_bounds(cfg: ClapRecipeConfig) -> None:
    """Refuse the settings the model's sizes bound (freezing, caption length) and a min_learning_rate above
    the default learning rate, where the model is known without building it (`model_config_known_now`):
    each training process refused them too, but only once started, after the model was built."""
    config = model_config_known_now(cfg)
    if config is not None:  # (a hub id's limits are checked once it is loaded)
        check_settings_fit(cfg, config)
    if cfg.task.learning_rate is None:  # (a given one is checked by CLAPTaskConfig)
        cfg.task.check_min_learning_rate(*default_learning_rate(cfg.pretrained is None))


def _command(argv: list[str]) -> int:
    """`main` once `argv` is a list."""
    if argv == ["--version"]:  # (as `audiotrain --version`: a CI log names the build it ran)
        print(f"{as_started('python -m audiotrain.recipes.clap')} {build_version()}")
        return 0
    if argv and argv[0] == "export":
        return export_main(argv[1:])
    if argv and argv[0] == "cv":
        from audiotrain.recipes.clap.cv import main as cv_main

        return cv_main(argv[1:])
    if argv and argv[0] == "evaluate":
        from audiotrain.recipes.clap.cli_evaluate import evaluate_main

        return evaluate_main(argv[1:])
    if argv and not argv[0].startswith("-"):  # the training command takes flags only
        print(f"error: {unknown_command_message(argv[0], COMMANDS, 'to train')}", file=sys.stderr)
        return 2
    install_rank_stop_signal()  # in a rank of a job of local processes: the launcher's Ctrl-C
    parser = build_parser()
    cfg, args = parse_arguments(parser, argv)
    try:  # before the processes start: one line from here, not an error (and MPI's banner) from every rank
        check_kernel_cache()
        plots_wanted()  # (a bad AUDIOTRAIN_PLOTS: refused now, not by every process after the data is read)
        cfg.logger.check_packages(cfg.out)
        check_model_bounds(cfg)
    except USER_ERRORS as error:
        return refusal_status(error, as_started(str(error)))
    # A resume keeps the count its checkpoint was trained in, as the chord recipe's: another count splits
    # the contrastive loss's batches otherwise, and the run diverges from the one it continues.
    resumed_processes = checkpoint_processes(cfg.resume, "train.processes")
    try:
        plan = plan_local_processes(
            cfg.train.processes,
            (cfg.train.batch_size, cfg.train.eval_batch_size),
            "--train.processes",
            resumed_processes=resumed_processes,
            batch_flags=("--train.batch_size", "--train.eval_batch_size"),
        )
    except ValueError as error:
        parser.error(str(error))
    if not in_launched_job():  # (said once, by the command the user ran)
        note = resume_processes_note(
            cfg.resume,
            resumed_processes,
            cfg.train.processes,
            plan.processes,
            "--train.processes",
            on_cpu=training_on_cpu(),
            batch=(cfg.train.batch_size, "--train.batch_size"),
        )
        if note:
            print(note, file=sys.stderr)
    if plan.processes > 1:
        try:  # refusals of the --out folder and of the data folder come once, from here, not from every rank
            check_out_folder(cfg, check_resume_folder(cfg.resume) if cfg.resume else None)
            check_data_folder(cfg)
        except USER_ERRORS as error:
            return refusal_status(error, as_started(str(error)))
        to_stderr = functools.partial(print, file=sys.stderr, flush=True)
        return run_local_job(
            plan, "audiotrain.recipes.clap", argv, "--train.processes", log=to_stderr, run_flag="--out"
        )
    if plan.note:
        print(plan.note, file=sys.stderr)
    try:
        result = run(cfg, argv, replay_of=None if cfg.resume else args.config)  # (a resume checks its own)
    except USER_ERRORS as error:
        # The ranks read one data folder: rank 0 says what is wrong with it, once (each raises where asked).
        if not env_flag(TRACEBACK_ENV) and error_left_to_main():
            return 2
        return refusal_status(error, as_started(str(error)))
    except NonFiniteStop as stop:  # (the Trainer's words name its settings, not these flags)
        if not env_flag(TRACEBACK_ENV) and error_left_to_main():
            return 2
        return refusal_status(stop, as_started(diverged_message(stop, cfg)))
    except MainProcessFailed:  # another rank of the job: rank 0 printed the error
        return 2
    # As a shell reports a command that signal stopped: 130 for Ctrl-C, 143 for SIGTERM (rank 0 alone: the
    # job ends with the first rank that exits non-zero, and rank 0 still evaluates and exports).
    return stop_status_of_rank() if result["interrupted"] else 0


def build_export_parser() -> argparse.ArgumentParser:
    """The ``export`` command's parser: ``--checkpoint`` and ``--out`` (both required), ``--run`` and
    ``--overwrite``, as ``export --help`` lists them."""
    parser = SettingsParser(
        prog="python -m audiotrain.recipes.clap export",
        description=help_text(EXPORT_HELP),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        type=nonempty_path,
        help="trainer checkpoint folder of a CLAP run, e.g. RUN/checkpoints/last",
    )
    parser.add_argument(
        "--out",
        required=True,
        type=nonempty_path,
        help="Hugging Face folder to write (new or empty, or an earlier export with --overwrite)",
    )
    parser.add_argument(
        "--run",
        default=None,
        type=nonempty_path,
        help="the run folder holding config.json (default: the checkpoint's RUN, or for a checkpoint alone the "
        "model folder its trainer_state.json records)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier export at --out, whole (never anything else: a trainer checkpoint, a run's "
        "folder or its checkpoints, a data folder, a model folder not written by export, the run's --pretrained)",
    )
    return parser


def diverged_message(stop: NonFiniteStop, cfg) -> str:
    """The non-finite stop in this command's flags (a --resume goes on at the rate it keeps)."""
    rate, clip = cfg.task.learning_rate, cfg.train.gradient_clip
    message = (
        f"training stopped: {stop.where}. Lower --task.learning_rate"
        + (f" (this run's: {rate:g})" if rate is not None else "")
        + (f", set --train.gradient_clip (this run's: {clip:g})" if clip else ", set --train.gradient_clip")
        + ", or check the clips' audio"
    )
    if stop.checkpoint is None:
        return message
    return (
        f"{message}. The weights before those steps are in {stop.checkpoint} (finite, though steps that "
        "grew the loss before them may have spoilt them)"
    )


def export_main(argv: list[str] | None = None) -> int:
    """``python -m audiotrain.recipes.clap export ...``: writes the checkpoint ``--checkpoint`` as a Hugging
    Face folder at ``--out``; `argv` (the flags after ``export``) defaults to ``sys.argv[1:]``. Returns the
    exit status: 0 exported, 2 refused (the error said on stderr); a bad flag exits with argparse's usage
    message (``main(["export", ...])`` returns its status 2 instead)."""
    # Under a launcher each rank exported into the same --out and the swaps raced: rank 0 alone does it.
    if ends_on_other_ranks("export"):
        return 0
    args = build_export_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        # (the run's own export, as it ends, would replace this one without a word: --overwrite too)
        from audiotrain.recipes.clap.train import (
            RUN_OUTPUTS,  # (imports the trainer: once the flags are read)
        )

        refuse_outputs_of_a_live_run([Path(args.out)], f"--out {args.out}", RUN_OUTPUTS)
        out = export_checkpoint(args.checkpoint, args.out, args.run, args.overwrite)
    except USER_ERRORS as error:
        message = str(error)
        if isinstance(error, ckpt.OlderFormatError):  # (its own words speak of resuming)
            message = (
                f"{error.folder} was written by an older audiotrain (checkpoint format {error.version}; this one "
                f"exports formats {ckpt.OLDEST_MODEL_FORMAT} to {ckpt.FORMAT_VERSION}): this version cannot "
                "export it. The run's hf_model/ folder holds its best checkpoint's export "
                "(audiotrain.models.clap.load_pretrained loads it); another checkpoint needs the audiotrain "
                "that wrote it"
            )
        return refusal_status(error, as_started(message))
    print(f"exported {args.checkpoint} to {out} (loads with transformers.ClapModel.from_pretrained)")
    return 0
