"""One CLAP run, top to bottom: settings checked → data folder scanned and split → model loaded (or the demo
built) → the run folder → retrieval before → `Trainer.fit` → retrieval after (the best weights) → plots and the
Hugging Face export. See `audiotrain.recipes.clap.cli` for the command line and what the run folder holds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from audiotrain._files import OutputWriteError, once_writable, remove_killed_writes, write_json_atomically
from audiotrain._invocation import as_started, recipe_command
from audiotrain._system import CACHE_DIR_ENV, cache_dir, device_record
from audiotrain._text import plural
from audiotrain._warning_filters import ignoring_warnings
from audiotrain.datasets.caption_demo import DEMO_FOLDER as CAPTION_DEMO_FOLDER
from audiotrain.datasets.caption_demo import CaptionDemoConfig, demo_set_name, make_caption_demo
from audiotrain.datasets.captions import (
    CaptionDataset,
    CaptionFolder,
    normalise_split,
    scan_caption_folder,
)
from audiotrain.distributed import collectives
from audiotrain.distributed.local import per_process_batch, training_on_cpu
from audiotrain.features.cache import earlier_cache_note, hold_cache_for_the_run, releasing_the_runs_holds
from audiotrain.metrics.plot_loading import plots_off_note
from audiotrain.recipes._run import (
    KILLED_WRITE_SUFFIXES,
    check_can_write,
    check_resume_folder,
    check_run_folder,
    check_run_record_readable,
    claim_run_folder,
    clear_run_outputs,
    create_run_folder,
    holding_run_folders,
    is_inside,
    newest_checkpoint,
    quiet_unless_main,
    release_run_folder,
    resume_command,
    resumes_run_in,
    shell_command,
    write_first_file,
    write_run_record,
)
from audiotrain.recipes.clap.bundle import (
    DEMO_INIT,
    MODEL_KEY,
    Bundle,
    build_demo,
    caption_length_line,
    check_demo_settings,
    check_pretrained_folder,
    check_resume_matches,
    check_resume_model,
    check_settings_fit,
    demo_extractor_settings,
    load_checkpoint,
    load_task_weights,
    model_record,
    replace_export,
    replay_model_note,
    save_demo,
)
from audiotrain.recipes.clap.clip_record import (
    CLIPS_KEY,
    StoredInCheckpoint,
    check_resume_clips,
    clip_names,
    clip_record,
    replay_clips_note,
    run_folder_clips_note,
)
from audiotrain.recipes.clap.config import (
    DEFAULT_MAX_TOKENS,
    DEMO_EPOCHS,
    DEMO_LEARNING_RATE,
    ClapRecipeConfig,
)
from audiotrain.recipes.clap.data import (
    DATA_REQUIRED,
    FEW_EVAL_CLIPS,
    accumulation_note,
    check_data_given,
    check_training_clips,
    choose_splits,
    default_eval_split,
    make_loader,
    read_labels,
    validation_note,
    window_note,
)
from audiotrain.recipes.clap.evaluate import RetrievalEvaluation, evaluate_clap
from audiotrain.recipes.clap.report import PLOT_NAMES, format_table, write_plots
from audiotrain.recipes.clap.task import DEFAULT_FINE_TUNING_LR, CLAPTaskConfig, CLAPTrainModule
from audiotrain.recipes.config_cli import ConfigInCheckpoint
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.callbacks import ModelCheckpoint
from audiotrain.train.callers_random import keeping_callers_random
from audiotrain.train.interrupt import signal_of, stop_at_once, stop_signal_name, stopped_by
from audiotrain.train.loggers.base import LoggerNotStarted
from audiotrain.train.loggers.config import (
    LOGGER_OUTPUTS,
    build_loggers,
    describe_loggers,
    fail_loggers,
    finish_loggers,
    log_artifacts,
)
from audiotrain.train.memory import smaller_model_advice
from audiotrain.train.seeding import seed_everything
from audiotrain.train.trainer import SHORT_EPOCH_WARNING

if TYPE_CHECKING:
    from audiotrain.recipes.clap.cv import ClipFold

__all__ = [
    "DEMO_BANNER",
    "RUN_OUTPUTS",
    "ClapRunResult",
    "check_out_folder",
    "default_learning_rate",
    "demo_data_folder",
    "holding_the_demo_cache",
    "resolve_training",
    "run",
    "run_job",
]

DEMO_BANNER = (
    "=" * 78 + "\n"
    "OFFLINE DEMO: a small, randomly initialised CLAP trained from scratch with a tokenizer trained on the\n"
    "captions. Nothing is downloaded; the scores below say nothing about real CLAP checkpoints.\n"
    "Fine-tune a real model with --pretrained laion/clap-htsat-unfused (or a local folder).\n" + "=" * 78
)

#: Where a run without --out makes its folder (``runs/clap-<date>-<time>``).
DEFAULT_PARENT = Path("runs")

#: What a run writes in its folder: ``--overwrite`` removes these (and only these) before the new run.
RUN_OUTPUTS = (
    "config.json",
    "data_report.txt",
    "history.json",
    "retrieval.json",
    "evaluation_failed.json",
    "checkpoints",
    "plots",
    "hf_model",
    "demo_init",
    *LOGGER_OUTPUTS,
)


#: The run's own plots in ``plots/`` (`write_plots`): ``--overwrite`` removes those, a user's files there stay
#: (checkpoints and loggers: `audiotrain.recipes._run`). ``hf_model/`` is an export, replaced whole.
RUN_OWN_ENTRIES = {"plots": lambda folder: [folder / f"{name}.png" for name in PLOT_NAMES]}


def holding_the_demo_cache(function: Callable) -> Callable:
    """`function(cfg, ...)` with the package cache in use (`hold_cache`) from when `demo_data_folder` finds
    the demo set there until `function` returns: ``python -m audiotrain cache clear`` and ``prune`` refuse to
    delete the clips under a run (a clear once did, and the run failed at its next epoch)."""

    @functools.wraps(function)
    def held(*args, **kwargs):
        with releasing_the_runs_holds():
            return function(*args, **kwargs)

    return held


class _ClapRunAlways(TypedDict):
    """What every `run` returns (`ClapRunResult`)."""

    run_dir: Path
    history: dict[str, list]
    task: CLAPTrainModule
    interrupted: bool


class ClapRunResult(_ClapRunAlways, total=False):
    """What `run` returns: a dict, so ``result["after"]`` reads it; this type tells a type checker its keys.

    Always there: ``run_dir`` (the run folder), ``history`` (`Trainer.history`: per-epoch columns),
    ``task`` (the `CLAPTrainModule`, holding the weights ``after`` scored) and ``interrupted`` (a stop
    signal ended training early; the scores below are then those of what was saved).
    There once the run got to its evaluation, on rank 0 (a stop after training, or another rank of a
    data-parallel job, returns the four above only): ``before`` / ``after`` (the retrieval and zero-shot
    scores before and after fine-tuning, on the clips ``eval_set`` holds), ``weights`` (which weights
    ``after`` and the export hold, in words), ``export`` (the Hugging Face folder, hf_model/) and
    ``eval_set`` (the clips scored).
    """

    before: dict[str, float]
    after: dict[str, float]
    weights: str
    export: Path
    eval_set: CaptionDataset


def run(
    cfg: ClapRecipeConfig,
    argv: list[str] | None = None,
    fold: ClipFold | None = None,
    replay_of: str | Path | None = None,
) -> ClapRunResult:
    """One CLAP run, as the command line's (``argv``: its arguments, for the resume command it prints).
    `replay_of` is the run record ``--config`` named: a note says where this run's clips are not its.

    `run_job` on every rank of a data-parallel job (mlx.launch): rank 0 alone prints and writes; the
    other ranks train with it (--train.batch_size is per process, or the whole job's in the recipe's own
    local processes) and return after the fit.

    Returns
    -------
    `ClapRunResult`: a dict with ``run_dir``, ``history``, ``task`` and ``interrupted``, and where the run
    got to its evaluation (rank 0) ``before``, ``after``, ``weights``, ``export`` and ``eval_set``.
    """
    if collectives.is_main_process():
        with holding_run_folders():  # (the run folder's claim, `claim_run_folder`, ends with the command)
            return run_job(cfg, argv, fold, replay_of)
    with quiet_unless_main():  # (its diagnostics are on stderr, its results on stdout: both, once, by rank 0)
        return run_job(cfg, argv, fold, replay_of)


@holding_the_demo_cache
@keeping_callers_random()  # (it seeds the global generators: the caller's, and its seed, are put back)
def run_job(
    cfg: ClapRecipeConfig,
    argv: list[str] | None = None,
    fold: ClipFold | None = None,
    replay_of: str | Path | None = None,
) -> ClapRunResult:
    """Everything the command does.

    With a cross-validation ``fold`` (`audiotrain.recipes.clap.cv`), its clips replace the split choice: its
    training clips train, its validation clips validate (val_loss, the per-epoch retrieval scores and the
    best checkpoint), and "before" / "after" score its held-out clips.

    Returns
    -------
    `ClapRunResult` (`run`'s).
    """
    from audiotrain import Trainer

    # A value of AUDIOTRAIN_PLOTS it refuses is refused here, before any work; the note as training starts.
    plots_note = plots_off_note()
    demo = cfg.pretrained is None
    # (a cross-validation prints the demo's banner once, not for each fold)
    resume, labels, out, replace = _check_settings(cfg, demo, banner=fold is None)
    seed_everything(cfg.train.seed)  # whatever is drawn before the Trainer seeds at `fit`
    main = collectives.is_main_process()
    data = cfg.data if cfg.data is not None else demo_data_folder(cfg)

    # The sampling rate comes from the front end, so the model side is set up first (except the demo
    # tokenizer, which is trained on the captions found below).
    bundle = None if demo else load_for_settings(cfg.pretrained, cfg)
    # The caption length in use from here on, and in config.json: an unset --dataset.max_tokens resolved.
    max_tokens = (
        bundle.tokenizer.max_length if bundle is not None else cfg.dataset.max_tokens or DEFAULT_MAX_TOKENS
    )
    cfg = dataclasses.replace(cfg, dataset=dataclasses.replace(cfg.dataset, max_tokens=max_tokens))
    sampling_rate = bundle.extractor.sampling_rate if bundle else demo_extractor_settings()["sampling_rate"]
    folder = scan_caption_folder(data, sampling_rate=sampling_rate)
    report = folder.report(max_listed=None)  # every skip, for data_report.txt; the screen lists 20
    # Out before an error below ends the process (and, under mpirun, the job).
    print(folder.report(listed_in="the run folder's data_report.txt"), flush=True, file=sys.stderr)
    if cfg.data is None and folder.skipped:  # the generator writes only clips that decode: damaged since
        damaged = len(folder.skipped)
        print(
            f"note: the demo set {data} has {plural(damaged, 'damaged clip')}; {demo_set_advice(cfg, data)}",
            file=sys.stderr,
        )
    if fold is None:
        train_clips, eval_clips, how = choose_splits(folder, cfg.dataset, cfg.train.seed)
        # (an explicit --dataset.eval_split naming the training split was warned of at parsing)
        same_split = cfg.dataset.same_split_warning(default_eval_split(folder, cfg.dataset))
        if same_split and cfg.dataset.eval_split is None:
            print(same_split, file=sys.stderr)
        if cfg.dataset.test_split is None:
            test_clips = eval_clips
            print(
                f"training on {plural(len(train_clips), 'clip')}, evaluating on {len(eval_clips)} ({how})",
                file=sys.stderr,
            )
        else:
            test_clips = folder.split(cfg.dataset.test_split)
            print(
                f"training on {plural(len(train_clips), 'clip')}, validating on {len(eval_clips)} (choosing the "
                f"best checkpoint), scoring {len(test_clips)} before and after ({how})",
                file=sys.stderr,
            )
    else:
        same_split = None
        train_clips, eval_clips, test_clips, how = fold.select(folder)
        print(
            f"training on {plural(len(train_clips), 'clip')}, validating on {len(eval_clips)}, scoring the "
            f"{plural(len(test_clips), 'held-out clip')}: {how}",
            file=sys.stderr,
        )
    check_training_clips(folder, train_clips)
    separate_test = test_clips is not eval_clips  # a cv fold's held-out clips, or --dataset.test_split
    splits = {"train": train_clips, "eval": eval_clips, **({"test": test_clips} if separate_test else {})}
    if resume is not None:  # before the run folder is touched: other clips would not resume exactly
        state = ckpt.read_state(resume)
        check_resume_clips(resume, state, splits, f"the data folder {folder.root}")
        clips_note = run_folder_clips_note(resume, state)  # read before config.json is written again
        if clips_note:
            print(clips_note, file=sys.stderr)
        if bundle is not None:
            check_resume_model(resume, state, bundle)
    elif replay_of is not None:  # (before training: a repeat on a folder changed since is another run)
        replayed = replay_clips_note(replay_of, splits)
        if replayed:
            print(replayed, file=sys.stderr)
        model_moved = bundle and replay_model_note(replay_of, cfg.pretrained, bundle)  # (a hub id's snapshot)
        if model_moved:
            print(model_moved, file=sys.stderr)
    if bundle is None:
        # Every rank builds the same demo tokenizer and front end (rank 0's weights reach the others at fit);
        # rank 0 saves them in the run folder once it is open.
        bundle = build_demo([c for clip in train_clips for c in clip.captions], cfg)

    train_loader, val_loader, eval_set, test_set = _loaders(
        cfg, bundle, train_clips, eval_clips, test_clips, sampling_rate
    )
    # The steps come from this process's loader: under a launcher each rank trains on its shard.
    task_cfg, epochs, total = resolve_training(cfg, demo, len(train_clips), len(train_loader))
    resolved = dataclasses.replace(
        with_absolute_paths(cfg), task=task_cfg, train=dataclasses.replace(cfg.train, epochs=epochs)
    )
    task = CLAPTrainModule(bundle.model, task_cfg)
    total_params, trainable = task.parameter_counts()
    print(
        f"model: {total_params:,} parameters, {trainable:,} trainable; "
        f"{plural(total, 'optimizer step')} planned",
        file=sys.stderr,
    )
    if resume is not None:  # another recipe's or size's checkpoint, or a damaged file: before any write
        check_resume_matches(resume, task)
        check_resume_finite(resume)
    labels = zero_shot_labels(labels, folder, [*eval_clips, *test_clips], cfg.dataset.prompt_template)

    # Every check has passed: the run folder now.
    continuing = resumes_run_in(resume, out)  # (its checkpoints/ may link elsewhere)
    check_run_record_readable(out, continuing)
    made = out is None or not out.exists()
    out = _open_run_folder(out, replace, continuing, demo, report)
    if bundle.demo and main:
        save_demo(bundle, out)

    def scores_on(dataset: CaptionDataset) -> dict:
        return score_clips(task.clap, bundle, dataset, labels, cfg)

    evaluate = lambda: scores_on(eval_set)  # noqa: E731  (each validation: picks the best checkpoint)
    # before / after: = eval_set unless a cv fold or --dataset.test_split
    score_held_out = lambda: scores_on(test_set)  # noqa: E731
    if fold is not None:
        scored_clips = "the held-out clips"
    elif separate_test:
        scored_clips = f"the test split '{normalise_split(cfg.dataset.test_split)}'"
    else:
        scored_clips = "the evaluation clips"

    def start_on_main() -> tuple[dict, list]:
        """The run record, the "before" scores and the loggers (rank 0 logs for the job)."""
        write_run_config(
            out / "config.json", resolved, demo, folder, bundle, how, argv, clip_names(splits), continuing
        )
        scores = score_held_out()
        print("retrieval before fine-tuning:\n" + format_table(scores, None))
        loggers = build_loggers(cfg.logger, out)
        for lg in loggers:
            lg.log_hyperparams(
                dataclasses.asdict(resolved)
            )  # the resolved settings, beside the Trainer's own
        return scores, loggers

    # An error there must end every rank, not leave the others waiting in the fit's first collective.
    before, loggers = collectives.on_main_process(start_on_main) or ({}, [])
    # (kept in retrieval.json too: they say which scores are capped whatever the model)
    notes = (
        few_clips_note(len(test_clips)),
        shared_captions_note(test_set),
        copied_clips_note(test_clips),
        window_note(test_set, bundle.extractor, "scored"),
    )
    notes = [note for note in notes if note]
    for note in notes:
        print(note, file=sys.stderr)

    best = _best_checkpoint(cfg, out, len(eval_clips), "validation" if fold is not None else "evaluation")
    callbacks: list = []  # the DataLoader tells train_set the epoch (CaptionDataset.set_epoch)
    if cfg.train.retrieval_every_epoch:
        callbacks.append(RetrievalEvaluation(evaluate))
    if plots_note is not None and main:  # (once, by rank 0)
        print(plots_note, file=sys.stderr)
    # The checkpoints hold the config and which clips they were trained on (what --resume checks).
    callbacks += [
        best,
        ConfigInCheckpoint(dataclasses.asdict(resolved)),
        StoredInCheckpoint(CLIPS_KEY, clip_record(splits)),
        StoredInCheckpoint(MODEL_KEY, model_record(bundle)),
    ]
    trainer = Trainer(
        max_epochs=epochs,
        max_steps=cfg.train.max_steps,
        gradient_clip_val=cfg.train.gradient_clip,
        accumulate_grad_batches=cfg.train.accumulate_grad_batches,
        precision=cfg.train.precision,
        compile=cfg.train.compile,
        seed=cfg.train.seed,
        default_root_dir=out,
        enable_progress_bar=cfg.train.progress_bar,
        log_every_n_steps=cfg.train.log_every_n_steps,
        callbacks=callbacks,
        logger=loggers or None,
        # The recipe prints its own line about the model above ("model: N parameters, M trainable"); the
        # Trainer's table would say it again, between that line and the progress.
        enable_model_summary=False,
    )
    trainer.resume_hint = None  # the recipe prints its own command line below
    trainer.says_restored = False  # (the user named the checkpoint: --resume)
    # The BatchNorm layers --task.batchnorm_eval keeps in eval mode are the recipe's choice, not a slip; the
    # short-epoch warning names Trainer(log_every_n_steps=...) and values hooks log per step: the recipe logs
    # none. (Hidden for the fit alone, beside a sweep's other runs: `ignoring_warnings`.)
    with ignoring_warnings(r"Trainer\.fit: found \d+ module\(s\) in eval mode", SHORT_EPOCH_WARNING):
        try:
            # (a model too big for the memory left: the Trainer's own advice names its precision= argument,
            # which this recipe's users set through a flag or a field of its config)
            with smaller_model_advice(memory_advice(cfg, command_line=argv is not None)):
                trainer.fit(task, train_loader, val_loader, ckpt_path=str(resume) if resume else None)
        except LoggerNotStarted:  # (a required logger: the same command is to work once it can start)
            if main and not continuing:
                _forget_run_that_never_started(out, made)
            raise
        # A full disk as it saved: the error names the command that goes on, once there is room (a cv fold's
        # run has no --resume, and the same cv command is refused for the folds before it).
        except ckpt.CheckpointWriteError as error:
            if fold is not None:
                raise type(error)(
                    f"{error}; {once_writable(error.__cause__)}, run the cross-validation again with "
                    "--overwrite (or into a new --out): it trains every fold from the start"
                ) from None
            if main and not continuing and newest_checkpoint(out / "checkpoints") is None:
                raise _with_folder_as_found(error, out, made) from None
            raise _with_command_that_goes_on(error, out, argv) from None
    if not main:  # the other ranks' part ends with the fit
        return {"run_dir": out, "history": trainer.history, "task": task, "interrupted": trainer.interrupted}
    # A stop signal from here on stops the final evaluation, plots or export, not training: say what is
    # saved. SIGTERM too: its default action ended the process without a word.
    try:
        with stop_at_once(same_run=True):
            # (an earlier attempt's error: this one says how it ends, by its scores or its own record)
            (out / EVALUATION_FAILED_FILE).unlink(missing_ok=True)
            trainer.export_history(
                out / "history.json", overwrite=True
            )  # (the run's own: a resume rewrites it)
            if trainer.interrupted and fold is not None:  # (cv has no --resume: its own line says what to do)
                print(f"training was interrupted ({stopped_by()}); evaluating now", file=sys.stderr)
            elif trainer.interrupted:
                command = resume_command(  # goes on in this folder, keeping its best checkpoint
                    "audiotrain.recipes.clap", argv or [], trainer.interrupted_checkpoint, out, "--out",
                    path_flags=RESUME_PATH_FLAGS,
                )  # fmt: skip
                print(
                    f"training was interrupted ({stopped_by()}); evaluating now. Continue training "
                    f"with:\n  {command}",
                    file=sys.stderr,
                )

            weights = _load_best_weights(task, best, resume)
            after = score_held_out()
            print(f"retrieval on {scored_clips} (after: {weights}):\n" + format_table(before, after))
            if not separate_test and best.monitor is not None and same_split is None:
                print(
                    "note: these scores come from the clips that chose the checkpoint, so they lean high; for "
                    "scores to compare with published ones, score a split of their own with "
                    "--dataset.test_split NAME (Clotho: --dataset.eval_split validation --dataset.test_split "
                    "evaluation)",
                    file=sys.stderr,
                )
            results = {
                "before": before,
                "after": after,
                "after_weights": weights,
                "scored_clips": scored_clips,
                "n_eval_clips": len(test_set),
                "n_eval_captions": len(test_set.captions),
                # (each clip's own count: the audio->text chance levels depend on how they spread)
                "eval_captions_per_clip": [len(clip.captions) for clip in test_set.clips],
                "notes": notes,
            }
            write_json_atomically(out / "retrieval.json", results, indent=2)
            write_plots(trainer.history, results, out / "plots")
            export = _export(bundle, out, weights, demo, cfg.data)
            _report_to_loggers(loggers, trainer, out, results, export)
            return {
                "run_dir": out,
                "before": before,
                "after": after,
                "export": export,
                "weights": weights,
                "history": trainer.history,
                "task": task,
                "eval_set": test_set,
                "interrupted": trainer.interrupted,
            }
    except OutputWriteError as error:  # a full disk after training: one line, what is kept, how to export
        error.note = "; ".join(filter(None, [error.note, _kept_after_training(out, best)]))
        fail_loggers(loggers)
        raise
    except KeyboardInterrupt as stop:
        if not trainer.interrupted:  # (a stopped fit recorded its stop itself)
            fail_loggers(loggers, "interrupted")  # (no test scores: not the success `fit` recorded)
        print(_stopped_after_training(out, best, stop_signal_name(signal_of(stop))), file=sys.stderr)
        return {"run_dir": out, "history": trainer.history, "task": task, "interrupted": True}
    except Exception as error:
        fail_loggers(loggers)  # (not the success `fit` recorded: a sweep filters runs by status)
        _record_failed_evaluation(out, error)
        raise


def memory_advice(cfg: ClapRecipeConfig, command_line: bool) -> str:
    """What a CLAP run too big for the memory left can do, after "choose a smaller model" in `Trainer.fit`'s
    refusal (`smaller_model_advice`): in the command line's flags, or (`command_line` False: `run` called
    from Python) in `ClapRecipeConfig`'s fields. Precision is left out where the run is in bf16-true."""
    if command_line:
        smaller = "a smaller --pretrained checkpoint" if cfg.pretrained else "a smaller --demo.width"
        freeze = "--task.freeze_audio true or --task.freeze_text true"
        precision = "--train.precision bf16-true"
    else:
        smaller = "a smaller pretrained checkpoint" if cfg.pretrained else "a smaller demo.width"
        freeze = "task.freeze_audio=True or task.freeze_text=True of ClapRecipeConfig"
        precision = "train.precision='bf16-true'"
    advice = f"({smaller}), freeze a tower ({freeze}: no gradients or optimizer state for it)"
    if cfg.train.precision != "bf16-true":
        advice += f", train in {precision} (half the bytes of float32 weights, gradients and state)"
    return advice


def _check_settings(
    cfg: ClapRecipeConfig, demo: bool, banner: bool = True
) -> tuple[Path | None, list[str] | None, Path | None, bool]:
    """The cheap checks, before data and model are loaded: (the --resume checkpoint, the zero-shot labels,
    the --out folder or None, whether an earlier run there is to be replaced once every check has passed).
    The demo's `banner` follows them."""
    if not demo and cfg.data is None:
        raise ValueError(DATA_REQUIRED)
    if not demo:
        check_pretrained_folder(cfg.pretrained)
    check_data_given(cfg.data)
    if cfg.task.learning_rate is None:
        cfg.task.check_min_learning_rate(*default_learning_rate(demo))
    # A wrong --resume folder or labels file, or a --logger without its package, fails before data and model
    # are loaded.
    resume = check_resume_folder(cfg.resume) if cfg.resume else None
    cfg.logger.check_packages(cfg.out)
    labels = read_labels(cfg.dataset.zero_shot_labels)
    out, replace = check_out_folder(cfg, resume)
    if out is None:  # a new runs/clap-<date>-<time>
        check_can_write(DEFAULT_PARENT, f"the default run folder's parent {DEFAULT_PARENT}/ (or pass --out)")

    if demo:
        check_settings_fit(cfg, check_demo_settings(cfg))
        if banner:
            print(DEMO_BANNER, file=sys.stderr)
    return resume, labels, out, replace


#: Path flags the printed resume command writes absolute (where they name something here: --pretrained may
#: be a hub id), so that it continues the run pasted in any folder.
RESUME_PATH_FLAGS = ("--data", "--pretrained", "--config", "--demo.folder", "--dataset.zero_shot_labels")


def _with_command_that_goes_on(
    error: ckpt.CheckpointWriteError, out: Path, argv: Sequence[str] | None
) -> ckpt.CheckpointWriteError:
    """`error` (a save that a full disk, a quota or an I/O error stopped) with the command that resumes the
    run in its folder from its newest intact checkpoint, as the chord recipe's says: the same command is
    refused there ('--out RUN already holds files'). As it is without a checkpoint or a command line."""
    continue_from = newest_checkpoint(out / "checkpoints")
    if continue_from is None or argv is None:
        return error
    command = resume_command(
        "audiotrain.recipes.clap", list(argv), continue_from, out, "--out", path_flags=RESUME_PATH_FLAGS
    )
    return type(error)(f"{error}; {once_writable(error.__cause__)}, continue the run with:\n  {command}")


def _with_folder_as_found(
    error: ckpt.CheckpointWriteError, out: Path, made: bool
) -> ckpt.CheckpointWriteError:
    """`error` (the run's first save failed: nothing to go on from) once the run folder is left as it was
    found, so that the same command runs there once there is room (it was refused for the run's config.json:
    "--out RUN already holds files")."""
    checkpoints = out / "checkpoints"
    if not checkpoints.is_symlink():  # (a link to another disk is the user's: it stays, as it was found)
        with contextlib.suppress(OSError):  # (empty now: the failed save removed its temporary folder)
            checkpoints.rmdir()
    _forget_run_that_never_started(out, made)
    return type(error)(
        f"{error}; the run saved no checkpoint, and its folder is left as it was found: "
        f"{once_writable(error.__cause__)}, run the same command again"
    )


#: Bytes of a checkpoint's model file `check_resume_finite` reads at a time.
_FINITE_CHECK_BYTES = 256 * 2**20


def check_resume_finite(folder: Path) -> None:
    """Refuse checkpoint `folder` now when its weights hold NaN or infinite values. The fit refuses them too
    as it loads them, but only after the run folder's config.json and data_report.txt are written, so a retry
    with a sound checkpoint into the same --out was then refused as another run's folder. (Its optimizer
    state is checked so by `check_resume_folder`.) The file is read a piece at a time
    (`_FINITE_CHECK_BYTES`), not held whole beside the model."""
    file = folder / ckpt.MODEL_FILE
    piece: dict = {}
    size = 0
    for key, entry in ckpt.read_header(file).items():
        piece[key] = entry
        size += entry.end - entry.begin
        if size >= _FINITE_CHECK_BYTES:
            ckpt.read_arrays(file, finite=True, header=piece)
            piece, size = {}, 0
    if piece:
        ckpt.read_arrays(file, finite=True, header=piece)


def check_out_folder(cfg: ClapRecipeConfig, resume: str | Path | None) -> tuple[Path | None, bool]:
    """(the --out folder or None for a new runs/clap-<date>-<time>, whether an earlier run there is to be
    replaced): `check_run_folder`, and never the --pretrained or --data folder, nor one inside or around
    them, as a run writes its own config.json and --overwrite clears it (even with --overwrite)."""
    if not cfg.out:
        return None, False
    out = Path(cfg.out)
    for flag, given in (("--pretrained", cfg.pretrained), ("--data", cfg.data)):
        folder = Path(given).expanduser() if given else None
        if folder is not None and folder.exists() and (is_inside(out, folder) or is_inside(folder, out)):
            raise ValueError(
                f"--out {out} is the {flag} folder {folder}, or inside it or around it: the run would write its "
                "files among those (and --overwrite would remove some); choose an --out apart from it"
            )
    replace = check_run_folder(out, "--out", cfg.overwrite, resume, outputs=RUN_OUTPUTS, recipe="clap")
    if resume is not None:
        check_training_left(cfg, resume, out)
    return out, replace


def planned_epochs(cfg: ClapRecipeConfig, demo: bool) -> int:
    """The epochs the run trains: ``--train.epochs``, else the demo's or the fine-tuning default."""
    return cfg.train.epochs or (DEMO_EPOCHS if demo else 5)


def check_training_left(cfg: ClapRecipeConfig, resume: str | Path, out: Path) -> None:
    """Refuse a resume in its own run folder of a finished run: no epoch or step is left to train under
    these settings, and the run's results (retrieval.json) are written. It would train nothing, yet write
    config.json, its checkpoints' records, retrieval.json, history.json, plots/ and hf_model/ again, for
    settings the run never trained with. (Killed before its results were written, the resume still does
    what was left: the evaluation and the export.)"""
    if not resumes_run_in(resume, out) or not (out / "retrieval.json").is_file():
        return
    folder = ckpt.resolve_checkpoint(resume)
    progress = ckpt.read_state(folder).get("progress") or {}
    epoch, step = progress.get("epoch"), progress.get("global_step")
    if not isinstance(epoch, int) or not isinstance(step, int):
        return  # (the Trainer's own checks say what is wrong with the record)
    epochs, max_steps = planned_epochs(cfg, cfg.pretrained is None), cfg.train.max_steps
    if epoch < epochs and (max_steps is None or step < max_steps):
        return
    limit = f"--train.epochs {epochs}" + (
        f" and --train.max_steps {max_steps} leave" if max_steps else " leaves"
    )
    further = f"--train.epochs above {epoch}" + (" (and --train.max_steps above that)" if max_steps else "")
    raise ValueError(
        f"cannot resume from {folder}: its run in {out} is finished ({plural(epoch, 'epoch')}, "
        f"{plural(step, 'step')}; {limit} nothing to train) and its results are written; the resume "
        f"would only write them again. To train further, resume with {further}; to score it again, resume "
        f"it into a new --out (or export it: python -m audiotrain.recipes.clap export "
        f"{shell_command('--checkpoint', folder)})"
    )


def export_command() -> list[str]:
    """How the printed commands call the export (as the recipe was started)."""
    return recipe_command("audiotrain.recipes.clap", "export")


def with_absolute_paths(cfg: ClapRecipeConfig) -> ClapRecipeConfig:
    """`cfg` with every path that names something on disk made absolute (--out always), as its config.json
    and checkpoints record it: ``--config RUN/config.json`` from another folder looked for ``data2`` or
    ``labels.txt`` there. A --pretrained hub id, and --dataset.zero_shot_labels given as a list, stay."""

    def absolute(path: str | None, always: bool = False) -> str | None:
        if path is None or not (always or Path(path).expanduser().exists()):
            return path
        return str(Path(path).expanduser().resolve())

    return dataclasses.replace(
        cfg,
        data=absolute(cfg.data),
        pretrained=absolute(cfg.pretrained),
        out=absolute(cfg.out, always=True),
        resume=absolute(cfg.resume),
        dataset=dataclasses.replace(cfg.dataset, zero_shot_labels=absolute(cfg.dataset.zero_shot_labels)),
        demo=dataclasses.replace(cfg.demo, folder=absolute(cfg.demo.folder, always=True)),
    )


def demo_data_folder(cfg: ClapRecipeConfig) -> Path:
    """The demo's folder of captioned synthetic clips, generated (or found) by rank 0, then read by the others."""
    demo_config = CaptionDemoConfig(n_clips=cfg.demo.clips, seed=cfg.train.seed)
    cache = _demo_cache(cfg)
    folder = cache / demo_set_name(demo_config)
    where = (
        f"--demo.folder {cache}"
        if cfg.demo.folder
        else f"the demo folder {cache} (choose another with --demo.folder or {CACHE_DIR_ENV})"
    )
    if not folder.is_dir():  # still to be made: a file in the way, or a read-only folder, named now
        check_can_write(cache, where)
    if not cfg.demo.folder and collectives.is_main_process():  # before this run fills the cache folder
        note = earlier_cache_note(quiet_unless_empty=True)
        if note:
            print(as_started(note), file=sys.stderr)  # (the cache commands it names, as started)
    if not cfg.demo.folder:  # (a --demo.folder is outside the cache: the cache commands never touch it)
        # In use from now (create: a fresh cache is marked first) until the run ends (`holding_the_demo_cache`;
        # outside one, for the rest of the process, as the chord recipe's demo songs).
        hold_cache_for_the_run(cache_dir() / "features", create=True)

    def make() -> Path:
        try:
            return make_caption_demo(folder, demo_config)
        except FileExistsError:
            raise
        except OSError as error:  # a full disk: one line, naming the folder (nothing is left behind)
            raise ValueError(f"cannot write the demo clips to {where}: {error.strerror or error}") from None

    collectives.on_main_process(make)
    data = make_caption_demo(folder, demo_config)  # rank 0's, found
    print(f"demo data: {data}", file=sys.stderr)
    return data


def demo_set_advice(cfg: ClapRecipeConfig, data: Path) -> str:
    """How to have the demo set `data` rendered again (it is generated: nothing of the user's is lost)."""
    if cfg.demo.folder:
        return f"delete {data} to have it rendered again"
    clear = shell_command(*recipe_command("audiotrain", "cache", "clear"), "--key", data.name)
    return f"`{clear}` has it rendered again"


def _demo_cache(cfg: ClapRecipeConfig) -> Path:
    """Where demo clip sets are made: --demo.folder, by default ``demo/clap`` in the package's cache folder
    (`audiotrain._system.cache_dir`, as the chord recipe's demo songs), where ``python -m audiotrain cache``
    lists and clears them."""
    return Path(cfg.demo.folder) if cfg.demo.folder else cache_dir() / CAPTION_DEMO_FOLDER


def _open_run_folder(out: Path | None, replace: bool, continuing: bool, demo: bool, report: str) -> Path:
    """The run folder, created (or a previous run in it replaced) only now that the checks have passed, with
    its data_report.txt; every rank gets rank 0's path.

    Unless the run goes on in its own folder (`continuing`), data_report.txt is created exclusively: it
    claims the folder, so of two runs started into it at once the second is refused here."""

    def open_folder() -> str:
        if replace:
            # What it removed and kept is a diagnostic: stderr, so that `> results.txt` holds results alone.
            clear_run_outputs(
                out, RUN_OUTPUTS, functools.partial(print, file=sys.stderr), own_entries=RUN_OWN_ENTRIES
            )
        folder = create_run_folder(out, "clap-demo" if demo else "clap", DEFAULT_PARENT)
        claim_run_folder(folder)  # until the command ends: its retrieval scores and export come after the fit
        _remove_killed_writes(folder)
        write_first_file(folder / "data_report.txt", report + "\n", None if continuing else "--out")
        return str(folder)

    return Path(collectives.broadcast_from_main(collectives.on_main_process(open_folder)))


def _forget_run_that_never_started(folder: Path, made: bool) -> None:
    """Remove what a run wrote into `folder` before its fit failed to start (a required logger that could
    not): its record, data report and demo front end, where they are all the folder holds, and the folder
    itself where this run `made` it. The same command was refused for them (``--out ... already holds
    files``) once the logger was put right."""
    written = ["config.json", "data_report.txt"]
    try:
        found = {path.name for path in folder.iterdir()} - {ckpt.CLAIM_FILE}
    except OSError:
        return
    if _is_an_empty_link(folder / "checkpoints"):
        found.discard("checkpoints")  # (made before the first run to save on another disk: it stays)
    if not found <= {*written, DEMO_INIT}:
        return  # (what else is there is not this run's: the folder is left as it is)
    demo = folder / DEMO_INIT
    if demo.is_dir() and not demo.is_symlink():
        shutil.rmtree(demo, ignore_errors=True)
    for name in written:  # (all the folder holds: checked above)
        path = folder / name
        if path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
    if made:
        release_run_folder(folder)  # (its claim file goes with it)
        with contextlib.suppress(OSError):  # (not empty: left as it is)
            folder.rmdir()


def _is_an_empty_link(path: Path) -> bool:
    try:
        return path.is_symlink() and path.is_dir() and not any(path.iterdir())
    except OSError:
        return False


def _remove_killed_writes(folder: Path) -> None:
    """Remove what a killed write of a run's records, plots and export left in `folder` (a killed run's
    ``.tmp-<hex>.png`` files, `remove_killed_writes`, and its ``.hf_model.tmp-<hex>`` export folder): the run
    going on there writes them again. The folder is this process's (`claim_run_folder`): no live writer's."""
    for place in (folder, folder / "plots"):
        remove_killed_writes(place, KILLED_WRITE_SUFFIXES)
    for export in folder.glob(".hf_model.tmp-*"):
        if (
            re.fullmatch(r"\.hf_model\.tmp-[0-9a-f]{8}", export.name)
            and export.is_dir()
            and not export.is_symlink()
        ):
            shutil.rmtree(export, ignore_errors=True)


def _loaders(
    cfg: ClapRecipeConfig,
    bundle: Bundle,
    train_clips: list,
    eval_clips: list,
    test_clips: list,
    sampling_rate: int,
):
    """(train loader, validation loader, the validation and the held-out `CaptionDataset`: the same one
    unless ``test_clips`` are other clips, as in a cross-validation fold); says what validation leaves out."""
    # (the datasets read every clip at `sampling_rate`: said, as the front end asks)
    extractor = functools.partial(bundle.extractor, sampling_rate=sampling_rate)
    tokenizer = bundle.tokenizer
    common = dataset_settings(cfg, bundle, sampling_rate)
    train_set = CaptionDataset(train_clips, tokenizer, train=True, **common)
    eval_set = CaptionDataset(eval_clips, tokenizer, train=False, **common)
    test_set = (
        eval_set if test_clips is eval_clips else CaptionDataset(test_clips, tokenizer, train=False, **common)
    )
    workers = cfg.dataset.num_workers
    # In a job of local processes (`audiotrain.distributed.local`) the configured batch is the whole job's.
    batch = per_process_batch(cfg.train.batch_size)
    train_loader = make_loader(train_set, extractor, batch, True, cfg.train.seed, workers)
    eval_batch = per_process_batch(cfg.train.eval_batch_size)
    val_loader = make_loader(eval_set, extractor, eval_batch, False, cfg.train.seed, workers)
    # (judged on the job's batch, as make_loader drops its short last batch; under a launcher the flag is per
    # rank)
    notes = (
        # (not for the generated demo set, whose captions come from a small vocabulary: a user can change
        # nothing there)
        None if cfg.data is None else shared_training_captions_note(train_set),
        accumulation_note(batch, cfg.train.accumulate_grad_batches, collectives.world_size()),
        validation_note(len(eval_set), eval_batch, collectives.world_size()),
        # (what part of a long recording trains and is scored: otherwise only the code said)
        # (the scored clips' note is printed with the other notes on the scores, and kept in retrieval.json)
        window_note(train_set, bundle.extractor, "training"),
        None if test_set is eval_set else window_note(eval_set, bundle.extractor, "validation"),
    )
    for note in notes:
        if note:
            print(note, file=sys.stderr)
    return train_loader, val_loader, eval_set, test_set


def load_for_settings(source: str, cfg: ClapRecipeConfig) -> Bundle:
    """`load_checkpoint` of `source` (the run's --pretrained, the ``evaluate`` command's --model) for the
    settings `cfg`, which are checked against the model (`check_settings_fit`, naming their flags); the
    caption length in use goes to stderr."""
    bundle = load_checkpoint(source, cfg.dataset.max_tokens)
    check_settings_fit(cfg, bundle.config)
    print(caption_length_line(bundle.tokenizer, cfg.dataset.max_tokens), file=sys.stderr)
    return bundle


def dataset_settings(cfg: ClapRecipeConfig, bundle: Bundle, sampling_rate: int) -> dict:
    """The `CaptionDataset` settings (but clips, tokenizer and train flag) of the run's datasets and of the
    ``evaluate`` command's: clips cut to the front end's window (whole for "fusion", which cuts its own)."""
    extractor = bundle.extractor
    crop = None if extractor.truncation == "fusion" else extractor.nb_max_samples
    return dict(
        sampling_rate=sampling_rate,
        crop_samples=crop,
        seed=cfg.train.seed,
        cache_audio=cfg.dataset.cache_audio,
    )


def score_clips(
    model, bundle: Bundle, dataset: CaptionDataset, labels: list[str] | None, cfg: ClapRecipeConfig
) -> dict[str, float]:
    """`evaluate_clap` of `model` on `dataset` with the run's settings (zero-shot prompt, evaluation batch):
    the "before" / "after" scores and the ``evaluate`` command's."""
    return evaluate_clap(
        model,
        dataset,
        # (the dataset reads every clip at the front end's rate: said, as the front end asks)
        functools.partial(bundle.extractor, sampling_rate=bundle.extractor.sampling_rate),
        bundle.tokenizer,
        labels=labels,
        prompt_template=cfg.dataset.prompt_template,
        batch_size=cfg.train.eval_batch_size,
    )


def zero_shot_labels(
    labels: list[str] | None, folder: CaptionFolder, eval_clips: list, prompt_template: str = "{}"
) -> list[str] | None:
    """The classes zero-shot classification chooses from: the given ones, else every class of the folder
    (not only the held-out ones). Clips without a label are left out of it, as with a given list, and
    counted: taking the folder's classes only when every clip had one skipped zero-shot without a word
    where an evaluation clip had none, and offered fewer classes (an easier choice) where a training clip
    had none. Given ones that miss a label of the clips scored (`eval_clips`) are refused now, not at the
    first evaluation after the run folder is written."""
    if labels is None and any(c.label is not None for c in folder.clips):
        labels = sorted({c.label for c in folder.clips if c.label is not None})
    unlabelled = {c.name for c in eval_clips if c.label is None}  # (a set: without a test split the
    # evaluation clips come twice, as the clips that choose the checkpoint and as the ones scored after)
    if labels is not None and not any(c.label is not None for c in eval_clips):
        print(
            "note: no evaluation clip has a 'label', so zero-shot classification is not scored",
            file=sys.stderr,
        )
    elif labels is not None and unlabelled:
        print(
            f"note: {plural(len(unlabelled), 'evaluation clip')} without a 'label' left out of zero-shot "
            "classification",
            file=sys.stderr,
        )
    numbered = [label for label in labels or () if label.strip().isdigit()]
    if numbered and len(numbered) == len(labels):
        # ESC-50's `target` (0 ... 49) copied as the label: every prompt says a number, and zero-shot is
        # chance
        print(
            f"note: the zero-shot classes are numbers ({numbered[0]!r}: "
            f"{prompt_template.format(numbered[0].strip())!r}); a prompt needs the class's name: write the "
            "names in the 'label' column (ESC-50's category, not its target)",
            file=sys.stderr,
        )
    underscored = [label for label in labels or () if "_" in label.strip()]
    if underscored:
        # ESC-50's and UrbanSound8K's class names are identifiers (chirping_birds, car_horn); LAION's
        # zero-shot scores on them prompt with words ("chirping birds"), and '_' tokenizes otherwise.
        print(
            f"note: zero-shot prompts use the class names as written, '_' included ({underscored[0]!r}: "
            f"{prompt_template.format(underscored[0].strip())!r}); LAION's ESC-50 and UrbanSound8K scores "
            "prompt with words ('chirping birds'): write the 'label' column so to score as they do",
            file=sys.stderr,
        )
    missing = sorted({c.label for c in eval_clips if c.label is not None} - set(labels or ()))
    if labels is not None and missing:
        raise ValueError(
            f"--dataset.zero_shot_labels: the evaluation clips' labels {missing} are not in the zero-shot "
            f"label list {labels}; add them, or leave the flag out to use every label of {folder.root}"
        )
    return labels


def few_clips_note(n_clips: int) -> str | None:
    """What the retrieval scores of `n_clips` evaluation clips can say, when they are too few to compare
    models (None from `FEW_EVAL_CLIPS` on)."""
    if n_clips >= FEW_EVAL_CLIPS:
        return None
    advice = f"use {FEW_EVAL_CLIPS}+ clips for scores that compare models"
    if n_clips < 2:
        return (
            f"note: only {plural(n_clips, 'evaluation clip')}: it is always ranked first, so every retrieval "
            f"score is 1.0 for any model; {advice}"
        )
    return (
        f"note: only {n_clips} evaluation clips: text→audio R@k is k/{n_clips} by chance (R@10 is 1.0 for any "
        f"model with 10 or fewer); {advice}"
    )


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def copied_clips_note(clips: Sequence, shown: int = 3) -> str | None:
    """The scored `clips` (`CaptionedClip`s) whose files are byte for byte the same recording under other
    names, and what that does to the scores (None where there are none). A copy embeds exactly as its
    original and ties count against the query (`audiotrain.metrics.retrieval`), so in text→audio each
    copy ranks above a caption's own clip: their captions scored R@1 0 with any model, and nothing said so.
    Only files of one size are read (a few clips of a folder, or every clip of a set of equal-length WAVs)."""
    by_size: dict[int, list] = {}
    for clip in clips:
        by_size.setdefault(clip.path.stat().st_size, []).append(clip)
    groups: dict[str, list[str]] = {}
    for same_size in (group for group in by_size.values() if len(group) > 1):
        for clip in same_size:
            groups.setdefault(_file_digest(clip.path), []).append(clip.name)
    copies = sorted((names for names in groups.values() if len(names) > 1), key=lambda names: -len(names))
    if not copies:
        return None
    listed = ", ".join(" = ".join(names) for names in copies[:shown])
    more = f", {len(copies) - shown} more" if len(copies) > shown else ""
    n_clips = sum(len(names) for names in copies)
    return (
        f"note: {n_clips} clips are copies of one recording ({listed}{more}); a copy embeds exactly as the "
        "other and ties count against the query, so their captions score text→audio R@1 0 with any model "
        "(the other copy ranks first): keep one copy with all their captions to score them"
    )


def shared_captions_note(dataset: CaptionDataset, shown: int = 3) -> str | None:
    """The captions of `dataset` (the scored clips) that more than one clip has, and what that does to the
    scores (None where every caption is one clip's). Identical captions embed alike and ties count against the
    query (`audiotrain.metrics.retrieval`), so in audio→text a shared caption ranks below the other clips'
    copies: a sound library's many "a door slam" made those clips' R@1 0 with any model. Captions are compared
    as the text tower reads them, cut to ``--dataset.max_tokens``: two long captions that differ only past the
    cut embed alike too, and comparing their texts named neither."""
    shared = _shared_captions(dataset, shown)
    if shared is None:
        return None
    count, listed = shared
    return (
        f"note: {plural(count, 'caption')} {'is' if count == 1 else 'are'} shared by more than "
        f"one clip ({listed}); identical captions score alike and ties count against the query, so in "
        "audio→text a shared caption ranks below the other clips' copies of it (a clip whose every caption "
        "is shared scores R@1 0 with any model), and text→audio counts only the caption's own clip as right"
    )


def shared_training_captions_note(dataset: CaptionDataset, shown: int = 3) -> str | None:
    """The training captions that more than one training clip has (None where every caption is one clip's).
    The contrastive loss scores every other pair of a batch as a negative, so two clips of one caption in a
    batch (ESC-50's class names as captions: 40 clips of "dog") are each other's false negatives: the loss
    pushes the caption away from the other clip's audio and cannot reach 0 (LAION's loss does the same).
    Said, because the training loss and accuracies then read worse than the model is."""
    shared = _shared_captions(dataset, shown)
    if shared is None:
        return None
    count, listed = shared
    return (
        f"note: {plural(count, 'training caption')} {'is' if count == 1 else 'are'} shared by more than one "
        f"training clip ({listed}); where two such clips meet in a batch, the contrastive loss scores each "
        "as the other's negative (a false negative), so train_loss cannot reach 0 and the accuracies read low: "
        "write captions that tell the clips apart to avoid it"
    )


def _shared_captions(dataset: CaptionDataset, shown: int) -> tuple[int, str] | None:
    """(how many captions more than one clip of `dataset` has, the first `shown` of them named with their
    clip counts), None where there is none; captions compared by their token ids (see
    shared_captions_note)."""
    owners: dict[bytes, set[int]] = {}
    texts: dict[bytes, list[str]] = {}
    for caption, clip, ids in zip(dataset.captions, dataset.caption_to_clip, dataset.input_ids):
        key = ids.tobytes()  # (right-padded, so equal tokens are equal rows)
        owners.setdefault(key, set()).add(int(clip))
        if caption not in texts.setdefault(key, []):
            texts[key].append(caption)
    shared = sorted(((k, len(n)) for k, n in owners.items() if len(n) > 1), key=lambda item: -item[1])
    if not shared:
        return None
    length = dataset.input_ids.shape[1]

    def named(key: bytes, n_clips: int) -> str:
        first, others = texts[key][0], len(texts[key]) - 1
        if not others:
            return f"{first!r}: {n_clips} clips"
        same = f"{plural(others, 'other caption')} the same in its first {length} tokens"
        return f"{first!r} and {same}: {n_clips} clips"

    listed = ", ".join(named(key, n) for key, n in shared[:shown])
    more = f", {len(shared) - shown} more" if len(shared) > shown else ""
    return len(shared), listed + more


def _best_checkpoint(cfg: ClapRecipeConfig, out: Path, n_validation: int, what: str) -> ModelCheckpoint:
    """Keeps the best checkpoint by val_mAP@10 (by val_loss without per-epoch retrieval), and ``last``.

    With fewer than 2 validation clips (`what`: "validation" or "evaluation") every epoch ties (val_loss 0,
    val_mAP@10 1: one clip is always its caption's match), so "best" would stay the first epoch and the
    export would drop the rest of the training, silently: the latest checkpoint stands for it instead, as
    the chord recipe's last checkpoint does without validation songs."""
    # (--overwrite cleared the earlier run's checkpoints: what is left there is a user's, kept beside them.)
    saved = {"dirpath": out / "checkpoints", "overwrite": cfg.overwrite}
    if n_validation < 2:
        print(
            f"warning: only {plural(n_validation, what + ' clip')}: every epoch scores the same on it "
            "(val_loss 0, val_mAP@10 1), so none can be chosen as the best checkpoint; the last checkpoint "
            'stands for it ("after" scores it, hf_model/ holds it)',
            file=sys.stderr,
        )
        return ModelCheckpoint(**saved, monitor=None, save_last=True)
    if cfg.train.retrieval_every_epoch:
        return ModelCheckpoint(**saved, monitor="val_mAP@10", mode="max", save_last=True)
    return ModelCheckpoint(**saved, monitor="val_loss", mode="min", save_last=True)


def _load_best_weights(task: CLAPTrainModule, best: ModelCheckpoint, resume: Path | None) -> str:
    """Load the weights the run reports as best into `task` (the final ones when none was kept); returns
    which they are, in words. "after" and hf_model/ hold them.

    A run resumed into a new --out starts its own ranking there; where it validated nothing (a finished run
    resumed to score it again), the best checkpoint is the resumed run's, which its checkpoint records."""
    if best.best_model_path and Path(best.best_model_path).is_dir():
        load_task_weights(task, Path(best.best_model_path))
        if best.monitor is None:  # (`_best_checkpoint`: too few validation clips to choose by)
            return f"the last checkpoint, with no best to choose: {best.best_model_path}"
        return f"best checkpoint by {best.monitor} ({best.best_model_score:.4f}): {best.best_model_path}"
    resumed = _resumed_best(best, resume) if resume is not None and not best.best_k_models else None
    if resumed is None:
        return "final weights (no checkpoint was kept by validation)"
    path, score = resumed
    if not (path / ckpt.STATE_FILE).is_file():
        return f"final weights (the resumed run's best checkpoint, {path}, is gone)"
    load_task_weights(task, path)
    scored = f" ({score:.4f})" if isinstance(score, (int, float)) else ""
    return f"the resumed run's best checkpoint by {best.monitor}{scored}: {path}"


def _resumed_best(best: ModelCheckpoint, resume: Path) -> tuple[Path, float | None] | None:
    """The best checkpoint (and its score) that checkpoint `resume` records for a ModelCheckpoint of `best`'s
    settings saving elsewhere, looked for beside `resume` (the checkpoints of a run folder moved or copied
    are where its resumed checkpoint is now, not where it recorded them); None where it records none."""
    for key, saved in (ckpt.read_state(resume).get("callbacks") or {}).items():
        if isinstance(saved, dict) and best.adopts_state(key, saved) and saved.get("best_model_path"):
            return resume.resolve().parent / Path(saved["best_model_path"]).name, saved.get(
                "best_model_score"
            )
    return None


#: Written where the run's evaluation, plots or export after training raised: why (`python -m audiotrain runs`
#: lists the run as failed with that error, not as a stop whose resume scores it).
EVALUATION_FAILED_FILE = "evaluation_failed.json"


def _record_failed_evaluation(out: Path, error: Exception) -> None:
    """Write why the steps after training failed (`error`'s message) beside the run's records. Without it the
    folder of a run trained to its end and left unscored looks like one a stop signal ended there, whose
    resume scores it; an error of the model or its clips fails that resume the same way. Best effort: the
    error goes on as it is."""
    with contextlib.suppress(OSError, ValueError, TypeError):
        write_json_atomically(out / EVALUATION_FAILED_FILE, {"error": str(error) or type(error).__name__})


def _stopped_after_training(out: Path, best: ModelCheckpoint, signal_name: str) -> str:
    """What a stop signal (`signal_name`: "Ctrl-C", "SIGTERM") after training leaves, and how to get the
    Hugging Face folder anyway."""
    return f"interrupted ({signal_name}) after training: {_kept_after_training(out, best)}"


def _kept_after_training(out: Path, best: ModelCheckpoint) -> str:
    """What a run stopped after training (a stop signal, a full disk) leaves, and the command that exports
    the checkpoint it would have exported."""
    kept = Path(best.best_model_path) if best.best_model_path else out / "checkpoints" / "last"
    export = shell_command(*export_command(), "--checkpoint", kept, "--out", out / "hf_model", "--overwrite")
    return (
        f"the checkpoints in {out / 'checkpoints'} are saved; "
        "retrieval.json and plots/ may be missing or incomplete, hf_model/ missing or an earlier export (it is "
        f"swapped in whole). Export the checkpoint the run would have exported with:\n  {export}"
    )


def _export(bundle: Bundle, out: Path, weights: str, demo: bool, data: Path | str | None) -> Path:
    """hf_model/, and what to run to export another checkpoint; a demo model says what it trained on: the
    generated sounds, or the clips of `data` (--data)."""
    export = replace_export(bundle, out / "hf_model")
    print(f"run folder: {out}\nexported Hugging Face model: {export} ({weights})")
    last = out.absolute() / "checkpoints" / "last"  # (absolute: the command works pasted in any folder)
    command = shell_command(*export_command(), "--checkpoint", last, "--out", "DIR")
    print(f"export another checkpoint with: {command}")
    if demo:
        # (on --data the clips are the user's: "synthetic sounds" there misread the run)
        trained_on = "synthetic sounds" if data is None else f"the clips of {data}"
        print(f"(offline demo: a tiny model trained from scratch on {trained_on})")
    return export


def _report_to_loggers(loggers: list, trainer, out: Path, results: dict, export: Path) -> None:
    """Retrieval before and after fine-tuning (``retrieval_before/<score>``, ``retrieval_after/<score>``), the
    plots and the Hugging Face export, to the loggers' runs (the best checkpoint went when fit ended:
    ``--logger.log_model``); then where each run is. An interrupted run's loggers closed it as interrupted:
    nothing more is sent to it."""
    if not loggers:
        return
    if not trainer.interrupted:
        scores = {
            f"retrieval_{when}/{k}": v for when in ("before", "after") for k, v in results[when].items()
        }
        outputs = {
            "plots": out / "plots",
            "retrieval.json": out / "retrieval.json",
            "history.json": out / "history.json",
        }
        log_artifacts(loggers, outputs, metrics=scores, step=trainer.global_step)
        log_artifacts(loggers, {"hf_model": export}, artifact_type="model")
    finish_loggers(loggers)  # nothing more goes to these runs
    print("loggers:\n  " + "\n  ".join(describe_loggers(loggers)))


def default_learning_rate(demo: bool) -> tuple[float, str]:
    """(the peak learning rate used when --task.learning_rate is unset, where that default comes from)."""
    if demo:
        return DEMO_LEARNING_RATE, "the demo's default learning rate; set --task.learning_rate to change it"
    return (
        DEFAULT_FINE_TUNING_LR,
        "the default for fine-tuning a checkpoint; set --task.learning_rate to change it",
    )


def resolve_training(
    cfg: ClapRecipeConfig, demo: bool, n_train: int, batches_per_epoch: int | None = None
) -> tuple[CLAPTaskConfig, int, int]:
    """(task config with its defaults filled in, epochs, planned optimizer steps).

    The steps follow `batches_per_epoch` (``len`` of this process's training loader) where given: under
    a launcher a rank trains on its shard of the `n_train` clips, in batches of ``--train.batch_size``.

    Defaults differ between fine-tuning a checkpoint and training the demo model from scratch: a
    from-scratch model needs a larger learning rate and must learn its BatchNorm statistics (frozen random
    statistics leave the log-mel input unnormalised, and the embeddings collapse).
    """
    task_cfg = cfg.task
    if task_cfg.learning_rate is None:
        task_cfg = dataclasses.replace(task_cfg, learning_rate=default_learning_rate(demo)[0])
    if task_cfg.batchnorm_eval is None:
        task_cfg = dataclasses.replace(task_cfg, batchnorm_eval=not demo)
    epochs = planned_epochs(cfg, demo)
    # Batches per epoch as make_loader builds them (the short last batch is dropped); the Trainer also steps
    # on the last batch of an epoch when it ends an incomplete accumulation window.
    batches = max(1, n_train // cfg.train.batch_size if batches_per_epoch is None else batches_per_epoch)
    steps_per_epoch = -(-batches // cfg.train.accumulate_grad_batches)
    total = epochs * steps_per_epoch
    if cfg.train.max_steps is not None:
        total = min(total, cfg.train.max_steps)
    if task_cfg.total_steps is None:
        task_cfg = dataclasses.replace(task_cfg, total_steps=total)
    elif task_cfg.total_steps < total:
        print(
            f"warning: --task.total_steps {task_cfg.total_steps} is less than the "
            f"{plural(total, 'optimizer step')} planned: "
            f"the learning rate stays at --task.min_learning_rate ({task_cfg.min_learning_rate:g}) for the last "
            f"{plural(total - task_cfg.total_steps, 'step')}",
            file=sys.stderr,
        )
    if task_cfg.warmup_steps > task_cfg.total_steps:
        print(
            f"warning: --task.warmup_steps {task_cfg.warmup_steps} is more than the "
            f"{plural(task_cfg.total_steps, 'step')} "
            f"of the schedule: the warmup is cut to {plural(task_cfg.total_steps, 'step')}",
            file=sys.stderr,
        )
    return task_cfg, epochs, total


def write_run_config(
    path: Path,
    cfg: ClapRecipeConfig,
    demo: bool,
    folder: CaptionFolder,
    bundle: Bundle,
    how: str,
    argv,
    clips: dict[str, list[str]],
    continuing: bool = False,
) -> None:
    """Everything needed to reproduce the run: resolved config, data and model sources, versions, command,
    and the clips of each split (by name, in order); `continuing`: a resume in its own folder (its record
    keeps the builds that trained it)."""
    write_run_record(
        path,
        dataclasses.asdict(cfg),
        [sys.executable, "-m", "audiotrain.recipes.clap", *(argv or [])],
        continues=continuing,
        demo=demo,
        data_folder=str(folder.root),
        model_source=str(Path(bundle.source).resolve()),  # absolute: `export` may run from elsewhere
        splits=how,
        # The count `train.processes` 0 (one per core) resolved to here, or the launcher's: the contrastive
        # loss's batches and the weights depend on it (as the chord recipe records it).
        processes_used=collectives.world_size(),
        device_used=device_record("cpu" if training_on_cpu() else "gpu"),  # (MLX's default device: its own)
        **{CLIPS_KEY: clips},
    )
