"""Chord recognition training, top to bottom: songs → splits → features → `ChordTask` → `Trainer.fit` → the
run folder (config.json, checkpoints/, history.json, training_curves.png) → evaluation of the best checkpoint on
the held-out songs (evaluation/: one ``.lab`` per song, scores.json, scores.md, confusion_matrix.png).

`run_training(config, run_dir)` is what the ``train`` and demo commands of `audiotrain.recipes.chords.cli` do;
`song_loaders(run, data_dir)` builds a song folder's loaders as it does (to fine-tune with the core Trainer).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from audiotrain._file_names import stored_name
from audiotrain._files import (
    OutputWriteError,
    once_writable,
    read_json_file,
    remove_killed_writes,
    write_atomically,
)
from audiotrain._invocation import as_started, recipe_command
from audiotrain._system import device_record
from audiotrain._text import audio_speed, listed, plural
from audiotrain._warning_filters import ignoring_warnings
from audiotrain.audio import AudioError, get_duration
from audiotrain.data import DataLoader
from audiotrain.data.loader import position_ends_epoch
from audiotrain.datasets._folders import is_hidden
from audiotrain.distributed import collectives
from audiotrain.distributed.local import launched_processes, per_process_batch
from audiotrain.features.cache import FeatureCache, earlier_cache_note, releasing_the_runs_holds
from audiotrain.metrics.plot_loading import load_plots, plots_off_note, plots_wanted
from audiotrain.models.chord_loss import ChordRecognitionLoss
from audiotrain.models.chord_model import ChordModelConfig
from audiotrain.recipes._run import (
    KILLED_WRITE_SUFFIXES,
    RUN_FOLDER_ENTRIES,
    OwnEntries,
    check_can_write,
    check_checkpoint_folder,
    check_resume_folder,
    check_run_folder,
    check_run_record_readable,
    checkpoint_processes,
    claim_run_folder,
    clear_checkpoints,
    clear_run_outputs,
    create_run_folder,
    holding_run_folders,
    is_inside,
    is_run_record,
    kept_entries,
    newest_checkpoint,
    recipe_checkpoints,
    recorded_command,
    release_run_folder,
    resumes_run_in,
    shell_command,
    write_run_record,
)
from audiotrain.recipes.chords.config import (
    ChordDataConfig,
    ChordFeatureConfig,
    TrainingConfig,
    derived_settings,
)
from audiotrain.recipes.chords.data import (  # (RUN_OUTPUTS, TRAINED_FILE: this module's, as before)
    RUN_OUTPUTS,
    TRAINED_FILE,
    ChordSongDataset,
    SongSplits,
    _in_cache,
    balanced_class_weights,
    chord_type_frequencies,
    class_weights_note,
    demo_splits,
    drop_undecodable,
    feature_function,
    folder_splits,
    make_loaders,
    no_test_songs_reason,
    pitch_shift_note,
    song_config,
    stopped_before_training,
    training_pitch_shifts,
    unwritable_cache_advice,
    write_data_report,
)
from audiotrain.recipes.chords.evaluate import (
    TRIMMED_LISTED,
    EvaluationResult,
    evaluate_songs,
    evaluation_outputs,
    format_table,
    gap_filled_note,
    scored_record,
    shared_lab_note,
    trimmed_note,
    unwritable_lab_files,
)
from audiotrain.recipes.chords.init_from import (
    check_init_from,
    check_resumed_init_from,
    load_initial_weights,
    started_from,
)
from audiotrain.recipes.chords.model_checkpoint import not_a_chord_checkpoint, resolve_model_checkpoint
from audiotrain.recipes.chords.predict import ChordPredictor, checkpoint_entries
from audiotrain.recipes.chords.replay import replay_songs_note
from audiotrain.recipes.chords.song_record import (
    UnresumableDemoError,
    check_resume_demo,
    check_resume_demo_generators,
    check_resume_songs,
    check_resume_split,
    recorded_song_names,
    resumed_run_songs,
    run_folder_songs_note,
    song_record,
    split_names,
)
from audiotrain.recipes.chords.task import (
    CHECKPOINT_KEY,
    VAL_LOSS_KEY,
    ChordTask,
    check_stored_features,
    check_stored_model,
    command_line_resume_remedy,
    make_schedule,
    stored_settings,
)
from audiotrain.recipes.chords.trainer import (
    CHORD_MEMORY_ADVICE,
    Trainer,
    early_stop_line,
    make_shared_trainer,
)
from audiotrain.recipes.config_cli import RUN_CONFIG_KEY, home_expanded, merge_config
from audiotrain.recipes.split_record import run_record_of
from audiotrain.runs_listing import scored_as_now
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.callback import Callback
from audiotrain.train.callers_random import keeping_callers_random
from audiotrain.train.interrupt import (
    SaveAborted,
    SignalInterrupt,
    signal_meant,
    signal_of,
    stop_at_once,
    stop_on_signals,
    stop_signal_name,
    stopped_by,
    stopping_together,
)
from audiotrain.train.loggers.config import (
    LoggerConfig,
    build_loggers,
    describe_loggers,
    fail_loggers,
    finish_loggers,
    log_artifacts,
)
from audiotrain.train.loggers.resume_states import match_states
from audiotrain.train.memory import smaller_model_advice
from audiotrain.train.reporting import read_history, write_history
from audiotrain.train.seeding import seed_everything
from audiotrain.train.state import History
from audiotrain.train.trainer import SHORT_EPOCH_WARNING

import mlx.core as mx

__all__ = [
    "RUN_OUTPUTS",
    "TRAINED_FILE",
    "RunResult",
    "build_task",
    "evaluate_trained_run",
    "run_training",
    "trained_checkpoint",
]


@dataclass
class RunResult:
    """What `run_training` produced."""

    run_dir: Path
    checkpoint: Path | None  # None when Ctrl-C stopped the run before its first step
    history: dict
    evaluation: EvaluationResult | None
    train_seconds: float
    interrupted_checkpoint: Path | None = None  # set when Ctrl-C stopped training early and it saved
    interrupted: bool = False  # Ctrl-C stopped training early (with or without a checkpoint)
    # Training ran to its end (all epochs, or early stopping): a stop after it left only the evaluation,
    # which `evaluate_trained_run` does from the run folder.
    trained: bool = False

    def __repr__(self) -> str:
        """One line, as a notebook cell's last value: the history and the evaluation (its confusion matrices,
        every song's segments) by their type, the rest in full."""
        from audiotrain._arguments import settings_repr

        return settings_repr("RunResult", {f.name: getattr(self, f.name) for f in dataclasses.fields(self)})


@dataclass
class _UnusedRunFolder:
    """A run folder opened for a run that has not begun to train, and how to leave it as it was found."""

    path: Path
    made: bool  # this run made the folder
    continuing: bool  # a resumed run that goes on in its own folder: only its config.json was rewritten
    record_before: bytes | None  # that config.json as it was (None: there was none)
    again: str  # how the user starts the run again ("" where it was not started by a command)

    def leave(self, signal_name: str) -> str:
        """Put the folder back as it was found; returns the line that says so."""
        again = f": {self.again}" if self.again else ""
        self.put_back()
        if self.continuing:
            return f"stopped ({signal_name}) before training went on: {self.path} is as it was{again}"
        return f"stopped ({signal_name}) before training: nothing was left in a run folder{again}"

    def put_back(self) -> None:
        """Put the folder back as it was found: a resumed run's config.json as it was before this run
        rewrote it; a new run's outputs removed, and the folder too where this run made it."""
        if self.continuing:
            record = self.path / "config.json"
            if self.record_before is None:
                record.unlink(missing_ok=True)
            else:
                record.write_bytes(self.record_before)
            return
        # The run folder held nothing else of these when the run began (or --overwrite removed it).
        release_run_folder(self.path)  # (its claim file goes: the folder is left as it was found)
        clear_run_outputs(self.path, RUN_OUTPUTS, log=_silent, own_entries=RUN_OWN_ENTRIES)
        if self.made:
            with contextlib.suppress(OSError):  # (a file put there meanwhile: left as it is)
                self.path.rmdir()


class HeldStop(Callback):
    """A stop signal `run_training` heard where it cannot stop at once: between the feature pass and the fit,
    where the ranks of a job open the run folder and build the loaders together (a rank that left there would
    leave the others waiting in MPI), and in fit's setup, before fit's own handler is installed. The run
    looks at it where it can stop: before the feature pass, before the fit (where every rank agrees on it,
    and the run stops before training) and after the fit. One that came after that check is raised again as
    fit starts (`on_fit_start`), where fit's handler takes it: the run stops after its first step and saves,
    as for any stop during training. A second stop signal while one is held aborts at once."""

    def __init__(self) -> None:
        self.signum: int | None = None  # as received (a launched rank's SIGUSR1)
        self.unused_run_folder: _UnusedRunFolder | None = None  # rank 0's, from its opening to the fit

    def hear(self, signum: int) -> bool:
        """For `stop_on_signals`: hold the first signal; True (abort) for a second."""
        first = self.signum is None
        self.signum = self.signum or signum
        return not first

    def stop_if_heard(self) -> None:
        """Raise the held stop (a `SignalInterrupt`), if any."""
        if self.signum is not None:
            raise SignalInterrupt(signal_meant(self.signum))

    def held_on_any_rank(self) -> int | None:
        """The signal a stop held by any rank of the job stands for (SIGINT for Ctrl-C), None where none
        holds one. Every rank calls this at the same point."""
        held = [signum for signum in collectives.all_gather_object(self.signum) if signum is not None]
        return signal_meant(held[0]) if held else None

    def stopped_before_training(self, signal_name: str) -> RunResult:
        """Leave the run folder as it was found (rank 0), say so, and return the stopped run's result."""
        folder, self.unused_run_folder = self.unused_run_folder, None
        if folder is not None:
            print(folder.leave(signal_name), file=sys.stderr, flush=True)
        return RunResult(folder.path if folder else None, None, {}, None, 0.0, interrupted=True)

    def put_back_unused_run_folder(self) -> None:
        """Where the run failed before it began to train (rank 0's run folder is still unused), leave that
        folder as it was found."""
        folder, self.unused_run_folder = self.unused_run_folder, None
        if folder is not None:
            folder.put_back()

    def on_fit_start(self, trainer: Trainer, module: ChordTask) -> None:
        self.unused_run_folder = None  # fit says what a stop leaves from here on
        signum, self.signum = self.signum, None
        if signum is not None:
            signal.raise_signal(signum)  # to fit's handler, installed by now


class RunFolderWatch(Callback):
    """Warn once, as an epoch ends, where the run folder's config.json is gone: the folder was deleted or
    moved while the run trains. The saves go on into a new folder of that name, without the run's record,
    and the checkpoint it evaluates at the end may be among what went; without a word, the run failed only
    after its last epoch. Rank 0's (the folder's writer); one stat an epoch."""

    def __init__(self, run_dir: Path, log) -> None:
        self.record, self.log, self.warned = run_dir / "config.json", log, False

    def on_train_epoch_end(self, trainer: Trainer, module: ChordTask) -> None:
        if self.warned or self.record.exists():
            return
        self.warned = True
        self.log(
            f"warning: {self.record} is gone: the run folder was deleted or moved while training; the "
            f"checkpoints saved from now on go into a new {self.record.parent}, without the run's record. "
            "Stop the run (Ctrl-C saves checkpoints/last) if that was not meant"
        )

    def check_chosen_kept(self, chosen: Path, checkpoint_dir: Path) -> None:
        """As training ends: where the run folder went while it trained and took the checkpoint to evaluate
        (`chosen`) with it, end the run saying so and what is saved where, not with "checkpoint folder
        .../best does not exist" from the evaluation."""
        if chosen.is_dir() or self.record.exists():
            return
        saved = sorted(path.name for path in checkpoint_dir.iterdir()) if checkpoint_dir.is_dir() else []
        kept = (
            f"what the run saved after that is in {checkpoint_dir}: {listed(saved)}"
            if saved
            else f"nothing the run saved is left in {checkpoint_dir}"
        )
        if "last" in saved:
            kept += f" (the model as training ended is in {checkpoint_dir / 'last'})"
        raise RunFolderGone(
            f"the run folder {self.record.parent} was deleted or moved while training (its config.json is "
            f"gone), and the checkpoint to evaluate, {chosen.name}, went with it: the run ends without its "
            f"history and evaluation; {kept}"
        )


class RunFolderGone(FileNotFoundError):
    """The run folder went while the run trained, with the checkpoint it was to evaluate (a user error: the
    command's one line says what is saved where)."""


#: Where a run without --run_dir makes its folder (``runs/chords-<date>-<time>``).
DEFAULT_PARENT = Path("runs")

#: The run's own entries in its ``evaluation/`` (`evaluation_outputs`: what its ``scores.json`` lists):
#: ``--overwrite`` removes those, and a user's notes beside them stay (checkpoints and loggers: `_run`).
RUN_OWN_ENTRIES = {"evaluation": lambda folder: [folder / name for name in evaluation_outputs(folder)]}


def clear_earlier_run(run_dir: Path, log) -> None:
    """``--overwrite``: remove what the earlier run in `run_dir` wrote (`run_outputs`), and name in one line
    the files of the user's left among them."""
    outputs, own_entries = run_outputs(run_dir)
    clear_run_outputs(run_dir, outputs, log, own_entries=own_entries)


def refuse_kept_transcriptions(run_dir: Path) -> None:
    """Refuse ``--overwrite`` (before anything is removed) where it would keep a ``.lab`` in the earlier run's
    ``evaluation/`` that the run did not write (its scores.json does not list it: the user's own): the new
    run writes its test songs' transcriptions there, and one of the same name was replaced without a word."""
    evaluation = run_dir / "evaluation"

    def a_song_name(path: Path) -> bool:
        # A hidden name is never a song's .lab (the scan leaves hidden files out): macOS writes ``._x.lab``
        # AppleDouble twins and ``.DS_Store`` into a run folder on exFAT, FAT or a network share.
        return not any(is_hidden(part) for part in path.relative_to(evaluation).parts)

    in_the_way = [
        str(path.relative_to(run_dir))
        for path in kept_entries(run_dir, *run_outputs(run_dir))
        if evaluation in path.parents
        and a_song_name(path)
        and (
            path.suffix == ".lab"
            or (path.is_dir() and not path.is_symlink() and any(map(a_song_name, path.rglob("*.lab"))))
        )
    ]
    if in_the_way:
        raise FileExistsError(
            f"--run_dir {run_dir}: {listed(in_the_way, 10)} in {evaluation} is not the earlier run's (its "
            "scores.json does not list it), and this run writes its test songs' transcriptions (SONG.lab) "
            f"there, over any of the same name; nothing was removed. Move it out of {evaluation}, or choose "
            "another --run_dir"
        )


def run_outputs(run_dir: Path) -> tuple[list[str], dict[str, OwnEntries]]:
    """(what the run in `run_dir` wrote there, by name, the entries of its folders that are its own): as
    `clear_run_outputs` takes them. `RUN_OUTPUTS`, and the relative ``checkpoint_dir`` its config.json
    records, where that is not ``checkpoints``: its checkpoints would sit beside the new run's."""
    outputs, own_entries = list(RUN_OUTPUTS), dict(RUN_OWN_ENTRIES)
    try:
        recorded = read_json_file(run_dir / "config.json", ValueError)["config"]["checkpoint_dir"]
    except (OSError, ValueError, KeyError, TypeError):
        recorded = None
    if isinstance(recorded, str) and recorded.strip() and not Path(recorded).expanduser().is_absolute():
        # (Not twice: the default "checkpoints", or "./checkpoints", is among RUN_OUTPUTS already, and was
        # named twice in --overwrite's lines.)
        listed_already = {(run_dir / name).resolve() for name in (".", *outputs)}
        if is_inside(run_dir / recorded, run_dir) and (run_dir / recorded).resolve() not in listed_already:
            outputs.append(recorded)
            own_entries[recorded] = recipe_checkpoints
    return outputs, own_entries


def run_own_paths(run_dir: Path) -> list[Path]:
    """Every file and folder the run in `run_dir` wrote there (`run_outputs`), as paths: a cv run's fold
    folders are runs of their own, cleared so (`audiotrain.recipes.chords.cv`)."""
    outputs, own_entries = run_outputs(run_dir)
    own_entries = {**RUN_FOLDER_ENTRIES, **own_entries}
    paths = []
    for name in outputs:
        path = run_dir / name
        if name in own_entries and path.is_dir() and not path.is_symlink():
            paths += own_entries[name](path)
        elif path.exists() or path.is_symlink():
            paths.append(path)
    return paths


def test_songs_folder(config: TrainingConfig, splits: SongSplits) -> Path | None:
    """The folder of the run's held-out songs: its data folder, or the demo's test set (a set of its own in
    the cache, named by a hash: recorded, ``demo_test_set``, so that ``evaluate --checkpoint RUN`` finds it)."""
    if config.data.data_dir:
        return Path(config.data.data_dir)
    if not splits.test:
        return None
    return Path(os.path.commonpath([str(Path(song.audio_path).parent) for song in splits.test])).absolute()


def build_task(config: TrainingConfig, train_songs, steps_per_epoch: int) -> ChordTask:
    """The `ChordTask` of a config (class weights from `train_songs` when `loss.balance_classes`)."""
    class_weights = None
    if config.loss.balance_classes:
        class_weights = balanced_class_weights(chord_type_frequencies(train_songs, config.data.allow_gaps))
    loss = ChordRecognitionLoss(
        chord_type_weight=config.loss.chord_type_weight,
        root_weight=config.loss.root_weight,
        bass_weight=config.loss.bass_weight,
        chord_weight=config.loss.chord_weight,
        label_smoothing=config.label_smoothing,
        class_weights=class_weights,
    )
    return ChordTask(
        config.model,
        loss,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        bias_correction=config.bias_correction,
        scheduler=None if config.scheduler == "constant" else config.scheduler,
        num_epochs=config.num_epochs,
        warmup_epochs=config.warmup_epochs,
        steps_per_epoch=steps_per_epoch,
        # (a run without pitch-shift augmentation knows its songs' keys only: predict's default test-time
        # shifts would average in its guesses for shifted audio, as for the clip Trainer's models)
        extra_state=checkpoint_entries(
            config.features,
            config.decode,
            config.data.window_frames,
            pitch_shifts=None if config.data.pitch_shift else (0,),
        ),
    )


def run_training(
    config: TrainingConfig,
    run_dir: str | Path | None = None,
    splits: SongSplits | None = None,
    resume: str | Path | None = None,
    log=None,
    overwrite: bool = False,
    init_from: str | Path | None = None,
    resume_unrecorded_demo: bool = False,
    results=print,
    cleared: bool = False,
    evaluate_stopped: bool = True,
    replay_of: str | Path | None = None,
) -> RunResult:
    """Train on `splits` (default: demo songs, or `config.data.data_dir`), then evaluate the best checkpoint
    on the held-out songs. Everything is written into `run_dir` (default: a new ``runs/chords-<date>-<time>``).

    `init_from` (a checkpoint or run folder) starts the model from that checkpoint's weights, and nothing
    else of it: the optimizer, schedule, epochs and songs are this run's (fine-tuning; see
    `audiotrain.recipes.chords.init_from`). A `resume` goes on with the resumed checkpoint's weights, and
    keeps the record its checkpoint holds of where its run started: `init_from` may be left out then, and
    is not read (another start than the run's is refused).

    A `run_dir` holding files (an earlier run) is refused unless `overwrite` (which removes that run's
    outputs, `RUN_OUTPUTS`, and nothing else) or `resume` names a checkpoint inside it; so is a
    ``checkpoint_dir`` outside `run_dir` that holds files (see `audiotrain.recipes._run`).

    `cleared`: the caller removed the earlier run's outputs from `run_dir` already (``cv --overwrite``, of
    its folds): what is left there is the user's, and the run writes beside it.

    `evaluate_stopped`: a run whose training a stop signal cut short still evaluates the checkpoint it
    chose (true) or ends without evaluating (false: a cv fold, whose partial model is no fold's score).

    `resume_unrecorded_demo` resumes a demo run whose checkpoint records no demo generator versions (an older
    audiotrain's) on the demo songs as this version renders them (``--resume_unrecorded_demo``).

    `replay_of` is the run record (a run's config.json, a checkpoint's trainer_state.json) whose settings
    this run repeats (``--config``): a note says where its songs are not the ones that run trained on.

    `log` takes the diagnostics and progress lines (default: stderr), `results` the held-out scores (default:
    stdout): ``train > results.txt`` keeps the scores apart from the rest. Each is a function taking a line
    (print) or a file the lines are written to (sys.stdout, an open file, a StringIO).

    A stop signal (Ctrl-C, SIGTERM) stops the run wherever it comes: before training it leaves no run folder
    (or a resumed run's as it was), during training it saves a checkpoint, after it the run folder is whole
    but for the evaluation; each time one line says what is left and how to go on."""
    log = line_sink("log", log, to_stderr)
    results = line_sink("results", results, print)
    held = HeldStop()
    # The run seeds the global generators (`_seeded_task`); the caller's, and its seed, are put back after.
    # The demo songs' cache is in use until it ends (`releasing_the_runs_holds`), and no longer.
    with (
        keeping_callers_random(),
        releasing_the_runs_holds(),
        holding_run_folders(),
        stop_on_signals(held.hear),
    ):
        try:
            return _run_training(
                config,
                run_dir,
                splits,
                resume,
                log or to_stderr,
                overwrite,
                init_from,
                resume_unrecorded_demo,
                held,
                results,
                cleared,
                evaluate_stopped,
                replay_of,
            )
        except KeyboardInterrupt as stop:  # a second stop signal, while the first was held
            if held.unused_run_folder is None:
                raise
            return held.stopped_before_training(stop_signal_name(signal_of(stop)))
        except Exception:
            # Refused after the run folder was opened but before training began or went on (a resumed
            # checkpoint whose state does not restore into this run, a required logger that could not
            # start): the folder is left as it was found, as a stop there leaves it. A failed resume had
            # rewritten the run's config.json, with an "earlier" entry of settings no epoch trained with.
            held.put_back_unused_run_folder()
            raise


def _run_training(
    config: TrainingConfig,
    run_dir: str | Path | None,
    splits: SongSplits | None,
    resume: str | Path | None,
    log,
    overwrite: bool,
    init_from: str | Path | None,
    resume_unrecorded_demo: bool,
    held: HeldStop,
    results,
    cleared: bool = False,
    evaluate_stopped: bool = True,
    replay_of: str | Path | None = None,
) -> RunResult:
    # Under data parallel (mlx.launch) every rank trains; rank 0 alone prints, writes the run folder and
    # evaluates (--batch_size is per process: 2 ranks of 16 train as one process of 32).
    main = collectives.is_main_process()
    if not main:
        log = results = _silent
    # A value of AUDIOTRAIN_PLOTS it refuses is refused here, before any work; the note once the run goes on.
    plots_note = plots_off_note()
    given_splits = splits is not None
    if run_dir is not None and not str(run_dir).strip():  # Path("") would be the current folder
        raise ValueError("run_dir is an empty path; give a folder, or None for a new runs/chords-<time>")
    run_dir = Path(home_expanded(run_dir)) if run_dir is not None else None  # ~: as ModelCheckpoint's
    replace = check_output_folders(config, run_dir, resume, overwrite, cleared)
    continuing = resumes_run_in(resume, run_dir, config.checkpoint_dir)  # (its checkpoints may be elsewhere)
    check_run_record_readable(run_dir, continuing)
    from_demo = splits is None and not config.data.data_dir
    recorded = None  # a resumed run's own songs on a data folder, as its run recorded them
    if resume:  # before any song is rendered, feature computed or folder written
        splits_folder = splits is None and bool(config.data.data_dir)
        resume_folder, state = check_resume_settings(
            config,
            resume,
            from_demo,
            resume_unrecorded_demo,
            splits_folder,
            run_dir if continuing else None,
            init_from,
        )
        if splits_folder:
            # Read here, before rank 0 rewrites config.json (it does after the feature pass, which every
            # rank joins); every rank takes rank 0's list, so that the ranks train on the same songs.
            recorded = collectives.broadcast_from_main(recorded_song_names(resume_folder, state))
            songs_note = run_folder_songs_note(resume_folder, state)
            if songs_note:
                log(songs_note)
    if resume:  # its checkpoint's record of where the run started, whatever that folder holds now
        init_folder, init_record = None, started_from(state)
    elif init_from:
        init_folder, init_record = check_init_from(config, init_from, run_dir)
    else:
        init_folder, init_record = None, None
    trained = _left_to_evaluate(run_dir, config, state) if continuing else None
    if trained is not None:  # killed after its training ended: what is left is what an unstopped run did next
        log(f"{run_dir}: its training ended earlier; its held-out songs are scored now with {trained}")
        if plots_note is not None:
            log(plots_note)
        if main:
            claim_run_folder(run_dir)
        resumed = (resume_folder, recorded) if recorded is not None else None
        return evaluate_trained_run(config, run_dir, splits, trained, log, resumed, state, results)
    from_demo = splits is None and not config.data.data_dir
    again = "run the same command again to go on from there" if splits is None else "the next run reads them"
    try:
        # Nothing to save yet: a stop signal ends it (one held since the run began too), in a job of several
        # ranks at their next meeting (`_prepare_songs`).
        with stop_at_once(same_run=True):
            held.stop_if_heard()
            resumed = (resume_folder, recorded) if recorded is not None else None
            splits, feature_fn, cache, others_replaced = _prepare_songs(config, splits, log, resumed, run_dir)
    except KeyboardInterrupt as stop:  # one line, not a traceback (the command exits 130, or 143)
        if main:
            print(stopped_before_training(stop, stopped_by(), again), file=sys.stderr, flush=True)
        return RunResult(run_dir, None, {}, None, 0.0, interrupted=True)
    if resume:  # before the run folder, the model and the Trainer
        check_resume_songs(resume_folder, state, splits, config.data, from_demo)
    elif replay_of is not None:  # (before training: a repeat on a folder changed since is another run)
        replayed = replay_songs_note(replay_of, splits)
        if replayed:
            log(replayed)
    earlier = earlier_settings(resume_folder, state, config) if resume else None
    # From here to the fit a stop signal is held (the ranks open the run folder and build the loaders
    # together): the run stops before training, and leaves the run folder as it found it.
    record_before = _run_record_before(run_dir) if main and continuing else None
    made = run_dir is None or not run_dir.exists()
    run_dir = _open_run_folder(run_dir, replace, continuing, config, splits, log, init_record, earlier)
    unused = None  # (rank 0's: how to leave the folder as found, until the run trains its first step)
    if main:
        start_again = f"run the same command again to {'go on' if continuing else 'start it'}"
        unused = _UnusedRunFolder(
            run_dir, made, continuing, record_before, "" if given_splits else start_again
        )
        held.unused_run_folder = unused

    # In a job of local processes (`audiotrain.distributed.local`) the configured batch is the whole job's.
    train_loader, val_loader, _ = make_loaders(
        splits, feature_fn, config.data, config.features, per_process_batch(config.batch_size), config.seed
    )
    shift_note = pitch_shift_note(config.data, config.features)
    if shift_note:
        log(shift_note)
    task = _seeded_task(config, splits, len(train_loader), len(train_loader.dataset), log)
    if resume:
        changed = _changed_settings_line(resume_folder, state, config, len(train_loader))
        if changed:
            log(changed)
        if note := _constant_run_warms_up_note(resume_folder, state, config, len(train_loader)):
            log(note)
        if note := _val_loss_change_note(resume_folder, state):
            log(note)
    if init_record is not None:
        task.extra_state["init_from"] = init_record  # in every checkpoint, as in config.json
    if init_folder is not None:  # (a resumed run's weights are its checkpoint's)
        load_initial_weights(task, init_folder, init_record, log)
    # What a --resume of this run's checkpoints compares the songs with.
    task.extra_state["songs"] = song_record(splits, config.data if from_demo else None)
    loggers = build_loggers(config.logger, run_dir) if main else []  # rank 0 logs for the job
    for lg in loggers:
        lg.log_hyperparams(config.to_dict())  # the resolved settings, beside the Trainer's own
    validate = val_loader is not None
    if not validate:
        why = _why_no_validation(config.data.val_fraction, len(splits.train))
        log(
            f"no validation songs ({why}): no early stopping and no best checkpoint; the last checkpoint "
            "stands for it, and is the one evaluated"
        )
    # (--overwrite cleared the earlier run's checkpoints: what is left there is a user's, kept beside them.)
    trainer, early_stopping = make_shared_trainer(
        config, run_dir, config.num_epochs, validate=validate, loggers=loggers, overwrite=overwrite
    )
    checkpoint_dir = _checkpoint_folder(config, run_dir)
    chosen = checkpoint_dir / ("best" if validate else "last")  # the checkpoint evaluated and printed
    trainer.resume_hint = None  # the recipe prints its own command line after fit
    trainer.callbacks.insert(0, held)  # a stop held past the check below reaches fit as it starts
    watch = RunFolderWatch(run_dir, log)
    if main:
        trainer.callbacks.append(watch)
    held_signal = held.held_on_any_rank()
    if held_signal is not None:
        return held.stopped_before_training(stop_signal_name(held_signal))
    if main:  # (a resumed run trains on: what its folder said of an earlier end is no longer so)
        (run_dir / TRAINED_FILE).unlink(missing_ok=True)
    elsewhere = resume is not None and not continuing
    if main and elsewhere:
        # The Trainer's own warning says it in its terms (best_k_models, dirpath): said here in the run's.
        own = _run_folder_of(Path(resume))
        go_on = f"; pass --run_dir {own} to go on in its own run folder" if own is not None else ""
        log(f"note: --resume {resume}: the run goes on in {run_dir}, with checkpoints of its own{go_on}")
    if plots_note is not None:
        log(plots_note)
    start = time.perf_counter()
    first_step = (state.get("progress") or {}).get("global_step", 0) if resume else 0
    try:
        # The short-epoch warning names Trainer(log_every_n_steps=...) and values hooks log per step: the
        # recipe logs none. (Hidden for the fit alone, beside a sweep's other runs: `ignoring_warnings`.)
        hidden = [SHORT_EPOCH_WARNING]
        if elsewhere:
            hidden.append("ModelCheckpoint: the resumed checkpoint's ModelCheckpoint")
        with ignoring_warnings(*hidden):
            with smaller_model_advice(CHORD_MEMORY_ADVICE):  # (its Trainer's precision: no flag of it)
                trainer.fit(task, train_loader, val_loader, ckpt_path=str(resume) if resume else None)
    # Failed before it trained a step (the resumed checkpoint's saved data position, which the loader
    # restores as the epoch starts, does not fit this run; a required logger that could not start; a full
    # TMPDIR as the first step compiles): the run folder is left as it was found, for the same command to
    # run again there. A resumed run's config.json had named settings no epoch trained with ("earlier").
    except Exception as error:
        if unused is not None and trainer.global_step == first_step:
            held.unused_run_folder = None  # (put back here, not again by `run_training`)
            unused.put_back()
        elif isinstance(error, ckpt.CheckpointWriteError):  # a full disk as it saved: the way on, once freed
            error.continue_from, error.run_dir = newest_checkpoint(checkpoint_dir), run_dir
            if error.continue_from is None and unused is not None and not continuing:
                # Nothing saved to go on from: the folder as found, for the same command (else refused for
                # its config.json: "already holds files").
                held.unused_run_folder = None
                unused.put_back()
                when = once_writable(error.__cause__)
                raise type(error)(
                    f"{error}; the run saved no checkpoint, and its folder is left as it was found: {when}, "
                    "run the same command again"
                ) from None
        raise
    except SaveAborted as stop:  # a second stop signal (scancel twice) aborted the save: the way on
        stop.continue_from = newest_checkpoint(checkpoint_dir)  # type: ignore[attr-defined]
        stop.run_dir = run_dir  # type: ignore[attr-defined]
        raise
    train_seconds = time.perf_counter() - start
    early_stop = early_stop_line(early_stopping)
    if early_stop:
        log(early_stop)
    if not main:  # the other ranks' part ends with the fit
        return RunResult(
            run_dir,
            chosen,
            trainer.history,
            None,
            train_seconds,
            interrupted=trainer.interrupted,
        )
    if not trainer.interrupted:
        watch.check_chosen_kept(chosen, checkpoint_dir)  # (not a record naming a checkpoint that went)
        # before anything else, so that a kill from here on leaves it resumable
        _write_trained_record(run_dir, chosen, trainer.global_step, config.num_epochs)

    evaluated = False  # (a stop after the evaluation, as the loggers get it, leaves nothing unscored)
    try:
        # SIGTERM too: its default action ended the process without a word, stdout's last lines unwritten.
        with stop_at_once(same_run=True):
            held.stop_if_heard()  # (one that came as fit ended)
            resumed_at = (state.get("progress") or {}) if resume else None
            best = _write_training_outputs(trainer, run_dir, chosen, train_seconds, log, resumed_at)
            if trainer.interrupted and not evaluate_stopped:  # (a cv fold: its caller says what is left)
                return RunResult(
                    run_dir,
                    best,
                    trainer.history,
                    None,
                    train_seconds,
                    trainer.interrupted_checkpoint,
                    interrupted=True,
                    trained=False,
                )
            log(_cache_line(cache, splits, others_replaced))
            evaluation = _evaluate_held_out(best, splits, run_dir, config, log, results)
            evaluated = True
            _report_to_loggers(
                loggers, run_dir, evaluation, trainer.global_step, results, trainer.interrupted
            )
    except OutputWriteError as error:  # a full disk after training: one line, what is kept, the way on
        fail_loggers(loggers)
        raise _with_what_is_kept(error, run_dir, checkpoint_dir) from None
    except KeyboardInterrupt as stop:
        # Training is over and saved; a stop signal stopped the plots or the held-out evaluation: say what
        # is there and how to score it, not a traceback (the command exits with status 130, or 143).
        if not trainer.interrupted:  # (a stopped fit recorded its stop itself)
            fail_loggers(loggers, "interrupted")  # (no test scores: not the success `fit` recorded)
        name = stop_signal_name(signal_of(stop))
        kept = _stopped_after_training(
            trainer.interrupted_checkpoint, run_dir, chosen, splits, config.data, name, evaluated
        )
        return RunResult(
            run_dir,
            kept,
            trainer.history,
            None,
            train_seconds,
            trainer.interrupted_checkpoint,
            interrupted=True,
            trained=not trainer.interrupted,
        )
    except Exception as error:
        fail_loggers(loggers)  # (a diverged model's evaluation, say: not the success `fit` recorded)
        gone = (
            not trainer.interrupted
            and isinstance(error, FileNotFoundError)
            and _a_song_file(error.filename, run_dir, checkpoint_dir)
        )
        said = _song_gone_after_training(error, checkpoint_dir) if gone else error
        if main and not trainer.interrupted:  # (rank 0's error: another rank's says only that a rank stopped)
            _record_failed_evaluation(run_dir, said)
        if gone:
            raise said from error
        raise
    return RunResult(
        run_dir,
        best,
        trainer.history,
        evaluation,
        train_seconds,
        trainer.interrupted_checkpoint,
        trainer.interrupted,
        trained=not trainer.interrupted,
    )


def evaluate_trained_run(
    config: TrainingConfig,
    run_dir: str | Path,
    splits: SongSplits | None,
    checkpoint: Path,
    log=None,
    resumed: tuple[Path, dict] | None = None,
    ended: dict | None = None,
    results=print,
) -> RunResult:
    """What `run_training` does after its fit, for a run whose training ended (`RunResult.trained`) and whose
    held-out evaluation a stop signal cut short: score `splits`' test songs with `checkpoint` (the one the
    run evaluates) into ``run_dir/evaluation``, without training again. A resumed cv run continues such a
    fold with it: resuming the fit would refuse (no epochs left) or, after early stopping, train on.

    history.json (and training_curves.png) come from the ``last`` checkpoint where the stop came before the
    run wrote them. A stop signal here leaves the run as it was: the result is `interrupted`. `splits` None:
    the run's own songs (the demo's, or the data folder's; `resumed` as for `_prepare_songs`). `ended`: the
    trainer state of the checkpoint saved as the training ended, whose logger runs (``--logger``) get the
    test scores and outputs as an uninterrupted run's do (`_reopened_loggers`)."""
    run_dir, checkpoint = Path(run_dir), Path(checkpoint)
    log = log or to_stderr
    main = collectives.is_main_process()
    if not main:
        log = results = _silent
    else:
        _remove_killed_writes(run_dir)
        _forget_failed_evaluation(run_dir)  # (this evaluation starts anew: an earlier one's error is past)
    evaluated = False
    try:
        with stop_at_once(same_run=True):
            # The songs as the run had them (without those whose audio does not decode; every rank joins).
            splits, *_ = _prepare_songs(config, splits, log, resumed, run_dir)
            history = _trained_history(run_dir, checkpoint) if main else {}
            evaluation = (
                _evaluate_held_out(checkpoint, splits, run_dir, config, log, results) if main else None
            )
            evaluated = True
            if main:
                loggers = _reopened_loggers(config.logger, run_dir, ended, log)
                step = int(((ended or {}).get("progress") or {}).get("global_step") or 0)
                _report_to_loggers(loggers, run_dir, evaluation, step, results)
    except OutputWriteError as error:
        raise _with_what_is_kept(error, run_dir, checkpoint.parent) from None
    except KeyboardInterrupt as stop:
        if main:
            name = stop_signal_name(signal_of(stop))
            _stopped_after_training(None, run_dir, checkpoint, splits, config.data, name, evaluated)
        return RunResult(run_dir, checkpoint, {}, None, 0.0, interrupted=True, trained=True)
    except Exception as error:
        if main:
            _record_failed_evaluation(run_dir, error)
        raise
    return RunResult(run_dir, checkpoint, history, evaluation, 0.0, trained=True)


#: The key of `TRAINED_FILE` that says why the run's held-out evaluation failed (`python -m audiotrain runs`
#: lists it as failed with that reason, not as a stop that a resume scores).
EVALUATION_FAILED_KEY = "evaluation_failed"


def _a_song_file(filename: object, run_dir: Path, checkpoint_dir: Path) -> bool:
    """Whether `filename` (a FileNotFoundError's) may be a song file the run read: not a file of its own run
    or checkpoint folder, whose loss `_song_gone_after_training` would blame on a cleared demo cache."""
    if not isinstance(filename, (str, os.PathLike)) or not str(filename):
        return False
    return not any(is_inside(filename, folder) for folder in (run_dir, checkpoint_dir))


def _song_gone_after_training(error: FileNotFoundError, checkpoint_dir: Path) -> FileNotFoundError:
    """A song file the run read before training, gone as its held-out evaluation reads it: another terminal's
    ``cache clear --force`` (or ``prune --force``) deletes the demo songs a run reads, a data folder may be
    moved. Said with the resume that scores the trained run, which is saved, once the songs are back."""
    return FileNotFoundError(
        f"{error.filename}: deleted or moved since the run read it (python -m audiotrain cache clear --force "
        "or prune --force deletes the demo songs a run reads); the training is saved: "
        f"--resume {checkpoint_dir / 'last'} with the same flags scores it once the songs are back (the "
        "demo's are made again)"
    )


def _record_failed_evaluation(run_dir: Path, error: Exception) -> None:
    """Add why the held-out evaluation failed (`error`'s message) to the run's `TRAINED_FILE`. Without it the
    folder of a run trained to its end and left unscored looks like one killed after training, whose resume
    scores it; a model that diverged fails that resume the same way. Best effort: the error goes on as it is."""
    record_file = run_dir / TRAINED_FILE
    with contextlib.suppress(OSError, ValueError, TypeError):
        record = read_json_file(record_file, ValueError)
        record[EVALUATION_FAILED_KEY] = str(error) or type(error).__name__
        text = json.dumps(record, indent=1) + "\n"
        write_atomically(record_file, lambda handle: handle.write(text.encode()))


def _forget_failed_evaluation(run_dir: Path) -> None:
    """Take `EVALUATION_FAILED_KEY` out of the run's `TRAINED_FILE` as a resume scores the run again:
    stopped during that evaluation, the run was listed as failed with the earlier error. Best effort, as
    recording it."""
    record_file = run_dir / TRAINED_FILE
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        record = read_json_file(record_file, ValueError)
        if record.pop(EVALUATION_FAILED_KEY, None) is not None:
            text = json.dumps(record, indent=1) + "\n"
            write_atomically(record_file, lambda handle: handle.write(text.encode()))


def _with_what_is_kept(error: OutputWriteError, run_dir: Path, checkpoint_dir: Path) -> OutputWriteError:
    """`error` (an output of a run whose training ended could not be written) saying what is kept, with
    `finish_from`: the checkpoint whose ``--resume`` in `run_dir` writes what is missing
    (`trained_checkpoint`) without training again; the command line adds that command."""
    written = [name for name in ("history.json", "training_curves.png") if (run_dir / name).is_file()]
    kept = f"; written: {', '.join(written)}" if written else ""
    error.note = f"training ended and its checkpoints are saved in {checkpoint_dir}{kept}"
    error.finish_from, error.run_dir = checkpoint_dir / "last", run_dir
    return error


def _remove_killed_writes(run_dir: Path) -> None:
    """Remove what a killed write of this run's plots and records left (``.tmp-*``, `remove_killed_writes`)
    in its folder and its evaluation folder: the run that finishes it writes them again. The run folder is
    this process's (`claim_run_folder`), so no live writer's file is among them."""
    for folder in (run_dir, run_dir / "evaluation"):
        remove_killed_writes(folder, KILLED_WRITE_SUFFIXES)


def _write_trained_record(run_dir: Path, checkpoint: Path, global_step: int, num_epochs: int) -> None:
    """`TRAINED_FILE` of a run whose training ended at `global_step` of `num_epochs` epochs, naming the
    `checkpoint` its evaluation scores (relative to `run_dir` where it lies inside: the run folder may be
    resumed from elsewhere, or moved)."""
    chosen, folder = checkpoint.resolve(), run_dir.resolve()
    named = chosen.relative_to(folder) if folder in chosen.parents else chosen
    record = {"checkpoint": str(named), "global_step": global_step, "num_epochs": num_epochs}
    text = json.dumps(record, indent=1) + "\n"
    write_atomically(run_dir / TRAINED_FILE, lambda handle: handle.write(text.encode()))


def trained_checkpoint(run_dir: str | Path, config: TrainingConfig, state: dict | None = None) -> Path | None:
    """The checkpoint to evaluate of the run in `run_dir` where its training ended with `config`'s
    ``num_epochs`` (another count trains on) and, where `state` (a resumed checkpoint's trainer state) is
    given, at that checkpoint's step; else None. The run's `TRAINED_FILE` says so; without one (killed as fit
    ended, before it was written), a ``last`` that has trained all the epochs does, in the folder `config`'s
    ``checkpoint_dir`` names (where the run saved them: a relative one inside `run_dir`, not always
    ``checkpoints/``), and ``best`` beside it (``last`` without validation) is the one evaluated."""
    run_dir = Path(run_dir)
    num_epochs = config.num_epochs
    record_file = run_dir / TRAINED_FILE
    if not (record_file.exists() or record_file.is_symlink()):
        checkpoint, step, same_run = _all_epochs_trained(_checkpoint_folder(config, run_dir), num_epochs)
    else:
        try:  # (a damaged record is no record: the resume trains or is refused as without one)
            record = read_json_file(record_file, ValueError)
            checkpoint = run_dir / record["checkpoint"]  # (an absolute one stays as it is)
            step = record["global_step"]
            same_run = record["num_epochs"] == num_epochs
        except (OSError, ValueError, TypeError, KeyError):
            return None
    if not same_run or checkpoint is None or not (checkpoint / ckpt.STATE_FILE).is_file():
        return None
    if state is not None and (state.get("progress") or {}).get("global_step") != step:
        return None
    return checkpoint


def _left_to_evaluate(run_dir: Path, config: TrainingConfig, state: dict) -> Path | None:
    """`trained_checkpoint` of a run whose held-out evaluation did not finish (a finished one's resume is
    refused as before: scoring it again would replace its evaluation/, perhaps looked at or edited since).
    The confusion matrix is the last file an evaluation writes (`write_evaluation`; none where no frame
    was scored, and such a run is scored again), scores.md where ``AUDIOTRAIN_PLOTS`` turns plots off. An
    evaluation of other weights is not this one's: that of a stop signal's run (it scores its stopped
    weights), left in evaluation/ by a resume that trained on."""
    checkpoint = trained_checkpoint(run_dir, config, state)
    evaluation = Path(run_dir) / "evaluation"
    # (scores.md is the last where the plots are off: AUDIOTRAIN_PLOTS; on, a missing matrix is written)
    last = "confusion_matrix.png" if plots_wanted() else "scores.md"
    if checkpoint is None or not (evaluation / last).is_file():
        return checkpoint
    with contextlib.suppress(OSError, ValueError):
        if not scored_as_now(read_json_file(evaluation / "scores.json", ValueError), checkpoint):
            return checkpoint
    return None


def _all_epochs_trained(checkpoint_dir: Path, num_epochs: int) -> tuple[Path | None, int | None, bool]:
    """(the checkpoint to evaluate, the step training ended at, True) where ``last`` in `checkpoint_dir` is
    at the end of its `num_epochs`-th epoch; (None, None, False) otherwise. Without a ``last`` (a full disk
    stopped its save after the final epoch's ``best`` was written, and the error's command resumes from
    ``best``), a ``best`` at that end says the same: it holds the weights and history training ended with."""
    last = checkpoint_dir / "last"
    saved = last if (last.exists() or last.is_symlink()) else checkpoint_dir / "best"
    try:
        progress = ckpt.read_state(saved).get("progress") or {}
    except (OSError, ValueError, ckpt.CheckpointError):
        return None, None, False
    if progress.get("epoch") != num_epochs or progress.get("batch_in_epoch"):
        return None, None, False
    best = checkpoint_dir / "best"
    return (best if best.is_dir() else checkpoint_dir / "last"), progress.get("global_step"), True


def _trained_history(run_dir: Path, checkpoint: Path) -> dict:
    """The history of a run whose training ended: its history.json, written again (with the curves) from
    the ``last`` checkpoint beside `checkpoint` where the run stopped before writing it (none, or an older
    one: a resumed run's stop left the one its first part wrote)."""
    path = run_dir / "history.json"
    last = checkpoint.parent / "last"
    saved = (last if (last / ckpt.STATE_FILE).is_file() else checkpoint) / ckpt.STATE_FILE
    curves = run_dir / "training_curves.png"
    if not path.is_file() or path.stat().st_mtime < saved.stat().st_mtime:
        history = History()
        history.load_state_dict(ckpt.read_state(saved.parent)["history"])
        write_history(history.columns(), path, overwrite=True)  # (the run's own, older one)
        columns = history.columns() if history.rows else None
        if not plots_wanted():  # (AUDIOTRAIN_PLOTS=0: curves of the older history would not match it)
            curves.unlink(missing_ok=True)
    else:  # (the curves alone are missing where a full disk stopped the run between the two)
        columns = None if curves.is_file() else read_history(path)
    if columns and any(columns.values()) and (plots := load_plots()):  # (matplotlib only when plotting)
        plots.plot_training_curves(columns, curves)
    return read_history(path)  # its nulls back to NaN, as the uninterrupted run's history holds


def check_resume_settings(
    config: TrainingConfig,
    resume: str | Path,
    from_demo: bool | None = None,
    resume_unrecorded_demo: bool = False,
    splits_folder: bool | None = None,
    run_dir: Path | None = None,
    init_from: str | Path | None = None,
) -> tuple[Path, dict]:
    """The checks of a ``--resume`` that read only its checkpoint (features, model, the demo songs' settings,
    its arrays, epochs left), before any data is read or rendered or anything written; returns (the
    checkpoint folder, its trainer state). The launcher of local processes runs them too, so that a refusal
    comes once, not from every rank. `from_demo`: whether the run trains on the demo songs (default: without
    ``data.data_dir``); `resume_unrecorded_demo`: see `check_resume_demo_generators`; `splits_folder`:
    whether the run splits ``data.data_dir`` itself (default: with one; not with songs given from Python),
    whose split settings are then its checkpoint's (`check_resume_split`); `run_dir`: the run folder the
    resume goes on in, whose training may have ended (`trained_checkpoint`: no epochs left is no refusal);
    `init_from`: the ``--init_from`` given beside it, which must name where the run started
    (`check_resumed_init_from`; it is not read).

    Every reason to refuse is named in one message, each setting with the flag that gives the checkpoint's:
    one at a time, an old demo run took four refusals (and the demo rendered before the third)."""
    folder = ckpt.resolve_checkpoint(resume)
    state = ckpt.read_state(folder)  # read once: the checks below and the song check after
    if state.get("weights_only"):  # (the Trainer would refuse it too, once config.json had been rewritten)
        raise ckpt.CheckpointError(
            f"--resume {resume}: {folder} holds a model's weights only (an export, or saved weights-only), "
            "no optimizer or training state to go on with; start a new run from its weights with "
            f"--init_from {resume}"
        )
    stored = stored_settings(folder, state) or {}  # a hand-edited setting is named with its file
    from_demo = not config.data.data_dir if from_demo is None else from_demo
    splits_folder = bool(config.data.data_dir) if splits_folder is None else splits_folder
    problems = []
    settings_differ = False  # (the model, feature or demo settings: the run's record holds them all)
    unresumable = False  # (demo songs no setting renders again: the record's settings would be refused too)
    try:
        check_stored_features(
            stored.get("features"),
            asdict(config.features),
            command_line_resume_remedy(stored, "--features.*"),
        )
        model = config.model
    except ValueError as error:
        problems.append(str(error))
        settings_differ = True
        # The model's input width follows the features and has no flag of its own: named there, not here.
        saved = ChordModelConfig.from_dict(stored.get("model_config") or asdict(model))
        derived = {name.partition(".")[2] for name in derived_settings(config) if name.startswith("model.")}
        model = dataclasses.replace(config.model, **{name: getattr(saved, name) for name in derived})
    settings_checks = (
        lambda: check_stored_model(
            stored.get("model_config"), model, command_line_resume_remedy(stored, "--model.*")
        ),
        lambda: check_resume_demo(folder, state, config.data, from_demo),
    )
    for check in (
        *settings_checks,
        lambda: check_resume_demo_generators(folder, state, config.data, from_demo, resume_unrecorded_demo),
        lambda: check_resume_split(folder, state, config.data) if splits_folder else None,
        lambda: (
            None
            if run_dir is not None and _left_to_evaluate(run_dir, config, state)
            else _check_epochs_left(folder, state, config.num_epochs)
        ),
        lambda: _check_stopped_early_and_scored(folder, run_dir, state, config) if run_dir else None,
        lambda: _check_same_batches_mid_epoch(folder, state, config),
        lambda: check_resumed_init_from(resume, state, init_from) if init_from is not None else None,
    ):
        try:
            check()
        except ValueError as error:  # (said once, below, however many there are)
            problems.append(str(error).removeprefix(f"cannot resume from {folder}: "))
            settings_differ |= check in settings_checks
            unresumable |= isinstance(error, UnresumableDemoError)
    # (several checks read the run's config.json: a damaged one was one reason said twice)
    problems = list(dict.fromkeys(problems))
    record = _run_folder_of(folder) if settings_differ and not unresumable else None
    # A resume takes its command line's settings, not its checkpoint's: the record names them all at once.
    hint = (
        f". Every setting of its run is in {record / 'config.json'}: "
        f"{shell_command('--config', record / 'config.json', '--resume', resume)} resumes with them"
        if record is not None
        else ""
    )
    if len(problems) == 1:
        raise ValueError(f"cannot resume from {folder}: {problems[0]}{hint}")
    if problems:
        listed = "; ".join(f"({n}) {problem}" for n, problem in enumerate(problems, 1))
        raise ValueError(f"cannot resume from {folder}, for {len(problems)} reasons: {listed}{hint}")
    # The arrays' names and shapes, as the fit checks them when it loads: another recipe's checkpoint, or a
    # damaged file, is refused now rather than after config.json is written. (The weights drawn here are
    # thrown away: the task is seeded again when it is built.)
    model_file = folder / ckpt.MODEL_FILE
    expected = ckpt.flat(ChordTask(config.model).parameters())
    ckpt.check_matches(ckpt.read_header(model_file), expected, "ChordTask model", model_file)
    return folder, state


def _changed_settings(before: dict, now: dict, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Dotted name → (before, now) for each setting that differs between two settings trees (a setting that
    `before`, of an older audiotrain, does not hold is not counted)."""
    changed: dict[str, tuple[Any, Any]] = {}
    for name, value in now.items():
        if name not in before:
            continue
        if isinstance(value, dict) and isinstance(before[name], dict):
            changed |= _changed_settings(before[name], value, f"{prefix}{name}.")
        elif before[name] != value and not _same_text(before[name], value):
            changed[f"{prefix}{name}"] = (before[name], value)
    return changed


def _same_text(before: Any, now: Any) -> bool:
    """Whether two recorded texts are one name: a data folder recorded in an ASCII locale
    (``chansons-\\udcc3\\udcbc``) is the one a UTF-8 locale records (``chansons-ü``)."""
    return isinstance(before, str) and isinstance(now, str) and stored_name(before) == stored_name(now)


def earlier_settings(folder: Path, state: dict, config: TrainingConfig) -> list[dict] | None:
    """What a resumed run's config.json keeps of the settings its earlier epochs trained with: the list its
    checkpoint's run recorded (up to the checkpoint's epoch), and, where this resume changes settings, an entry
    ``{"until_epoch": E, "checkpoint": ..., "settings": {dotted name: the value until then}}``. None when
    there is nothing to keep."""
    before = state.get(RUN_CONFIG_KEY)
    epoch = (state.get("progress") or {}).get("epoch")
    kept = [
        entry
        for entry in ((run_record_of(folder) or {}).get("earlier") or [])
        if isinstance(entry, dict)
        and isinstance(entry.get("until_epoch"), int)
        and entry["until_epoch"] <= epoch
    ]
    changed = _changed_settings(before, config.to_dict()) if isinstance(before, dict) else {}
    if changed:
        settings = {name: values[0] for name, values in changed.items()}
        kept.append({"until_epoch": epoch, "checkpoint": str(folder.resolve()), "settings": settings})
    return kept or None


def _val_loss_change_note(folder: Path, state: dict) -> str:
    """The note of a resume from a checkpoint that does not say how its run computed val_loss (`VAL_LOSS_KEY`,
    written since): a build before 2026-11-30 weighed each validation batch's head losses by all its frames,
    so its val_loss values differ from today's wherever validation takes several batches; resumed, the best
    checkpoint and early stopping compared the two without a word (training goes on exactly). "" otherwise."""
    stored = (state.get("module_state") or {}).get(CHECKPOINT_KEY)
    rows = (state.get("history") or {}).get("rows") if isinstance(state.get("history"), dict) else None
    validated = isinstance(rows, list) and any(isinstance(row, dict) and "val_loss" in row for row in rows)
    if not isinstance(stored, dict) or VAL_LOSS_KEY in stored or not validated:
        return ""
    return (
        f"note: {folder} does not record how its run computed val_loss: a build before 2026-11-30 weighed "
        "each validation batch's head losses by all its frames, where this one takes each head's mean over "
        "the frames it counts, so its val_loss values (history.json, the best checkpoint's, early "
        "stopping's) may differ from this run's wherever validation takes several batches; the best "
        "checkpoint and early stopping compare both. For val_loss values of one kind, start a new run "
        f"folder with --init_from {folder}"
    )


#: The settings that shape the learning-rate schedule (the batch size through the steps per epoch).
_SCHEDULE_SETTINGS = ("learning_rate", "num_epochs", "warmup_epochs", "scheduler", "batch_size")


def _changed_settings_line(folder: Path, state: dict, config: TrainingConfig, steps_per_epoch: int) -> str:
    """One line naming the settings a resume changes from its checkpoint's run, and, where they shape the
    learning-rate schedule, the rate before and after: the schedule is rebuilt from this run's settings
    (``--num_epochs`` raised to go on with a finished run spreads it anew), and the rate jumped 2.5x (25x
    with another --learning_rate) without a word. "" when nothing changed. ``processes`` is said as the
    counts of processes the checkpoint was trained in and this run trains in (its 0, one per core, resolves
    to a count), and not at all where those are the same."""
    before = state.get(RUN_CONFIG_KEY)
    if not isinstance(before, dict):
        return ""
    changed = _changed_settings(before, config.to_dict())
    if "processes" in changed:
        # The setting's 0 (one per core), which a run under `audiotrain launch` also records though its user
        # never gave it, said "processes 0 -> 1": the counts trained in and training in are what changed, if
        # anything did.
        trained, training = checkpoint_processes(folder), collectives.world_size()
        if trained == training:
            del changed["processes"]
        elif trained is not None:
            changed["processes"] = (trained, training)
    if not changed:
        return ""
    listed = ", ".join(f"{name} {old!r} -> {new!r}" for name, (old, new) in changed.items())
    line = f"resuming {folder} with settings changed since its run: {listed}"
    if any(name in changed for name in _SCHEDULE_SETTINGS):
        progress = state.get("progress") or {}
        step, epoch = progress.get("global_step", 0), progress.get("epoch", 0)
        # The steps per epoch it trained with: exact at an epoch's end; else this run's (the same batches).
        steps_then = step // epoch if epoch and not progress.get("batch_in_epoch") else steps_per_epoch
        try:
            old_rate = _rate(before, steps_then, step - 1) if step else None
        except (KeyError, TypeError, ValueError):  # (a hand-edited record: the change alone is said)
            old_rate = None
        if step and _trained_without_warmup(state):
            old_rate = float(before["learning_rate"])
        new_rate = _rate(config.to_dict(), steps_per_epoch, step)
        came_from = f" from {old_rate:.3g} at its last step" if old_rate is not None else ""
        line += (
            f"; the learning-rate schedule is rebuilt for them ({config.scheduler}, "
            f"{plural(config.num_epochs, 'epoch')} "
            f"of {steps_per_epoch} step{'s' * (steps_per_epoch != 1)}, peak {config.learning_rate:g}): the "
            f"rate goes{came_from} to "
            f"{new_rate:.3g} at the next"
        )
    return line + '; config.json keeps the earlier values ("earlier")'


def _trained_without_warmup(state: dict) -> bool:
    """Whether the checkpoint's run trained at a constant rate from its first step: the recipe's constant
    schedule did so whatever --warmup_epochs said until it warmed up too, and its config records the
    warmup all the same; the schedule's name in the checkpoint tells ("constant", not "warmup_constant")."""
    return (state.get("config") or {}).get("lr_schedule_name") == "constant"


def _constant_run_warms_up_note(
    folder: Path, state: dict, config: TrainingConfig, steps_per_epoch: int
) -> str:
    """A line where a resume of a run that trained at a constant rate from its first step rebuilds the
    constant schedule with a warmup that is not over at the step it resumes at: the rate drops below the
    one the run trained at, then rises again. "" otherwise."""
    step = (state.get("progress") or {}).get("global_step", 0)
    if config.scheduler != "constant" or not _trained_without_warmup(state) or not isinstance(step, int):
        return ""
    rate = _rate(config.to_dict(), steps_per_epoch, step)
    if rate >= config.learning_rate:
        return ""
    return (
        f"note: {folder} trained at a constant --learning_rate {config.learning_rate:g} from its first step; "
        f"the constant schedule now warms up over --warmup_epochs {config.warmup_epochs:g} first, so the "
        f"rate goes to {rate:.3g} at the next step and rises again over the rest of the warmup "
        "(--warmup_epochs 0 keeps it constant)"
    )


def _rate(settings: dict, steps_per_epoch: int, step: int) -> float:
    """The learning rate at optimizer step `step` of the recipe's schedule for `settings` (a run config)."""
    schedule, _ = make_schedule(
        settings["scheduler"],
        float(settings["learning_rate"]),
        int(settings["num_epochs"]),
        float(settings["warmup_epochs"]),
        steps_per_epoch,
    )
    return float(schedule(mx.array(step))) if callable(schedule) else float(schedule)


#: The settings that make an epoch's batches (how many windows, and which): a checkpoint saved in the middle
#: of an epoch goes on only with its run's.
_SAME_BATCHES_MID_EPOCH = ("batch_size", "data.window_frames")


def _check_same_batches_mid_epoch(folder: Path, state: dict, config: TrainingConfig) -> None:
    """Refuse another ``--batch_size`` or ``--data.window_frames`` than the ones a checkpoint saved in the
    middle of an epoch was trained with: the resume goes on from the batch it stopped at, which lines up only
    with the same batches (the window length sets how many windows each song gives). The Trainer refuses it
    as well, but only once the run folder had been opened, and it blamed the checkpoint ("a value this
    audiotrain cannot restore") rather than the flag. (At an epoch's end the next epoch starts anew: another
    batch size or window length is allowed there.)"""
    loader = state.get("data_loader")
    if not isinstance(loader, dict) or not loader.get("batches_yielded") or position_ends_epoch(loader):
        return
    recorded = state.get(RUN_CONFIG_KEY)
    recorded = recorded if isinstance(recorded, dict) else {}
    now = config.to_dict()
    changed = []  # (flag, the checkpoint's value, this run's)
    for name in _SAME_BATCHES_MID_EPOCH:
        part, _, key = name.rpartition(".")
        saved = (recorded.get(part) if part else recorded) or {}
        saved = saved.get(key) if isinstance(saved, dict) else None
        given = now[part][key] if part else now[key]
        if isinstance(saved, int) and not isinstance(saved, bool) and saved != given:
            changed.append((f"--{name}", saved, given))
    if not changed:
        return
    given = " and ".join(f"{flag} {value}" for flag, _, value in changed)
    saved = " and ".join(f"{flag} {value}" for flag, value, _ in changed)
    of_epoch = f" of its {loader['num_batches']}" if isinstance(loader.get("num_batches"), int) else ""
    raise ValueError(
        f"{given}: {folder} was saved in the middle of an epoch (after {loader['batches_yielded']}{of_epoch} "
        f"batches) of a run with {saved}, and a resume goes on from that batch only with the same batches: "
        f"resume with {' '.join(f'{flag} {value}' for flag, value, _ in changed)} (another batch size or "
        "window length can take over from a checkpoint saved at the end of an epoch)"
    )


def check_output_folders(
    config: TrainingConfig,
    run_dir: Path | None,
    resume: str | Path | None,
    overwrite: bool,
    cleared: bool = False,
) -> bool:
    """The cheap checks of where the run writes, before any data is read (see `audiotrain.recipes._run`).
    Returns whether an earlier run in `run_dir` is to be replaced (once every other check has passed)."""
    if resume:
        check_resume_folder(resume)  # a mistyped --resume fails now, not after the data and model are ready
    config.logger.check_packages(run_dir)  # a --logger whose package is missing, too
    if run_dir is None:  # a new runs/chords-<date>-<time>
        check_can_write(
            DEFAULT_PARENT, f"the default run folder's parent {DEFAULT_PARENT}/ (or pass --run_dir)"
        )
    replace = run_dir is not None and check_run_folder(
        run_dir,
        "--run_dir",
        overwrite,
        resume,
        checkpoint_dir=config.checkpoint_dir,
        cleared=cleared,
        outputs=(*RUN_OUTPUTS, Path(config.checkpoint_dir).name),
        recipe="chords",
    )
    if replace:
        refuse_kept_transcriptions(run_dir)
    if (
        Path(config.checkpoint_dir).is_absolute() or run_dir is not None
    ):  # (a relative one in a new folder is new)
        check_checkpoint_folder(
            _checkpoint_folder(config, run_dir), run_dir, "--checkpoint_dir", resume, overwrite=overwrite
        )
    return replace


def _why_no_validation(val_fraction: float, n_train: int) -> str:
    """Why a run has no validation song: the fraction asked for none, or (a cv fold of 2 songs, a tiny
    folder) the songs left beside the test songs were too few to spare one from training."""
    if val_fraction == 0:
        return "data.val_fraction 0"
    return (
        f"{plural(n_train, 'song')} left to train on, too few to spare one for data.val_fraction "
        f"{val_fraction}: training keeps at least one"
    )


def _checkpoint_folder(config: TrainingConfig, run_dir: Path | None) -> Path:
    """``config.checkpoint_dir``; a relative one lies inside `run_dir`."""
    checkpoint_dir = Path(config.checkpoint_dir)
    return checkpoint_dir if checkpoint_dir.is_absolute() else run_dir / checkpoint_dir


def _check_epochs_left(folder: Path, state: dict, num_epochs: int) -> None:
    """Refuse a resume with nothing left to train: the run would otherwise end without a checkpoint of its own
    to evaluate."""
    done = (state.get("progress") or {}).get("epoch")
    if isinstance(done, int) and done >= num_epochs:
        # (quoted: a run folder with a space pastes as one path; SONGS and OUT are the user's to fill in)
        evaluate = shell_command("evaluate", "--checkpoint", folder, "--data", "SONGS")
        evaluate += " " + shell_command("--test_songs_of", folder)
        evaluate += " -o OUT"
        raise ValueError(
            f"cannot resume from {folder}: it has trained {plural(done, 'epoch')}, and "
            f"--num_epochs {num_epochs} leaves none to train; raise --num_epochs to train further, score it "
            f"on the songs its run held out ({evaluate}), or transcribe with it as it is "
            "(predict --checkpoint)"
        )


def _check_stopped_early_and_scored(folder: Path, run_dir: Path, state: dict, config: TrainingConfig) -> None:
    """Refuse a resume in its own `run_dir` of a run that early stopping ended at this checkpoint and whose
    held-out evaluation finished, unless this resume's early stopping (--patience, --min_delta) lets training
    go on: otherwise it would stop again an epoch later and only replace its history, its ``last`` checkpoint
    and its evaluation/, perhaps looked at or edited since. Going on is a request to train further, let go on
    in its own folder as a resume with more --num_epochs is. `_check_epochs_left` refuses this only where
    every epoch was trained: a run that stopped early has epochs left under --num_epochs."""
    num_epochs = config.num_epochs
    done = (state.get("progress") or {}).get("epoch")
    if not isinstance(done, int) or done >= num_epochs:
        return  # (`_check_epochs_left` says it)
    if trained_checkpoint(run_dir, config, state) is None or _left_to_evaluate(run_dir, config, state):
        return
    recorded = state.get("run_config")
    recorded = recorded if isinstance(recorded, dict) else {}
    waited = _epochs_waited(state)
    # Any change was let through before: a smaller --patience trained one epoch, stopped at once and replaced
    # the evaluation just the same. A lower --min_delta can count the epochs since the best as improvements.
    recorded_delta = recorded.get("min_delta")
    lower_delta = _is_number(recorded_delta) and config.min_delta < recorded_delta
    recorded_patience = recorded.get("patience")
    # The epochs it waited, which is the recorded patience where patience stopped it (an older checkpoint
    # without the count: the simple rule, a larger patience); the larger where another cause stopped it.
    known = [n for n in (waited, recorded_patience) if isinstance(n, int) and not isinstance(n, bool)]
    needed = max(known) if known else None
    if lower_delta or (isinstance(needed, int) and config.patience > needed):
        return
    since = f" (it waited {plural(waited, 'epoch')} since its best val_loss)" if waited is not None else ""
    patience = f"--patience above {needed}" if isinstance(needed, int) else "a larger --patience"
    delta = f"--min_delta below {recorded_delta:g}" if _is_number(recorded_delta) else "a smaller --min_delta"
    raise ValueError(
        f"cannot resume from {folder}: early stopping ended its run after {plural(done, 'epoch')} of "
        f"--num_epochs {num_epochs}, and the run's held-out evaluation is written "
        f"({run_dir / 'evaluation'}); with --patience {config.patience} and --min_delta "
        f"{config.min_delta:g} it would stop again at once{since} and only replace that evaluation. To train "
        f"it further, resume it with {patience} (or a {delta.removeprefix('a ')}): it goes on in this folder "
        "and writes a new evaluation"
    )


def _epochs_waited(state: dict) -> int | None:
    """The epochs without a val_loss improvement that the checkpoint's early stopping counted (its
    ``EarlyStopping`` state), or None where the checkpoint holds none."""
    callbacks = state.get("callbacks")
    for key, saved in callbacks.items() if isinstance(callbacks, dict) else ():
        if key.startswith("EarlyStopping[") and isinstance(saved, dict):
            waited = saved.get("wait_count")
            return waited if isinstance(waited, int) and not isinstance(waited, bool) else None
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _prepare_songs(
    config: TrainingConfig,
    splits: SongSplits | None,
    log,
    resumed: tuple[Path, dict] | None = None,
    run_dir: Path | None = None,
):
    """(the songs split into train/val/test without those whose audio does not decode, the feature
    function, its cache, the wrong entries in it the other ranks computed again): the data folder's songs, or the demo's (synthesised once, shared between the ranks).
    `resumed`: (the checkpoint folder, the song names per part its run recorded) of a resumed run on a data
    folder, which goes on with those songs (`resumed_run_songs`). `run_dir`: the run folder, left out of a
    data folder it lies in (`folder_splits`)."""
    # Every rank meets the others in collectives here: a stop signal stops them together (`stop_point`).
    with stopping_together(same_run=True):
        return _prepare_songs_together(config, splits, log, resumed, run_dir)


def _prepare_songs_together(
    config: TrainingConfig,
    splits: SongSplits | None,
    log,
    resumed: tuple[Path, dict] | None,
    run_dir: Path | None,
):
    data = config.data
    if not data.cache_dir:  # the default cache: say where an earlier version's is, before this one fills
        note = earlier_cache_note(quiet_unless_empty=True)
        if note:
            log(note)
    if splits is None:
        if data.data_dir:
            splits, report = folder_splits(
                data, config.seed, min_seconds=config.features.min_seconds, run_dir=run_dir
            )
            log(report)
            if resumed is not None:  # (before the feature pass: songs added since are not computed)
                splits, said = resumed_run_songs(splits, resumed[1], resumed[0], data.data_dir)
                if said:
                    log(said)
        else:
            # The recipe's own processes (one machine, one disk) render the demo songs together. Under a
            # launcher that may span machines without a shared disk, rank 0 renders them first, and the other
            # ranks then find them (or render them on their own machine).
            together = launched_processes() > 1
            main = collectives.is_main_process()
            if not together and not main:
                collectives.barrier()
            splits = demo_splits(data, config.features.sr, together=together)
            if not together and main:
                collectives.barrier()
    # A window longer than every song ended in a segmentation fault: refused from the headers, before the
    # decode pass below computes every song's features (minutes on a large folder).
    _check_window_fits(splits, config)
    cache_root = data.resolved_cache_dir() / "features"
    feature_fn, cache = feature_function(config.features, cache_root, unwritable_cache_advice(data))
    splits, unusable = drop_undecodable(splits, feature_fn, config.features, cache, log, config.progress_bar)
    if unusable:
        log(
            f"{plural(len(unusable), 'song')} skipped, their audio does not decode or is silent under "
            "chords:\n  " + "\n  ".join(unusable)
        )
    log(splits.describe())
    # Each rank computed its share of the songs: rank 0's `feature cache:` line counts every rank's wrong
    # entries, as the feature pass's lines count every rank's songs.
    wrong_entries = cache.replaced
    if collectives.world_size() > 1:
        wrong_entries = int(collectives.all_reduce_sum(mx.array(wrong_entries)).item())
    return splits, feature_fn, cache, wrong_entries - cache.replaced


def _run_record_before(run_dir: Path) -> bytes | None:
    """The config.json of a resumed run that goes on in its own folder, as it is before the run rewrites it
    (None where it has none)."""
    try:
        return (run_dir / "config.json").read_bytes()
    except OSError:
        return None


def _run_folder_of(checkpoint: Path) -> Path | None:
    """The run folder a checkpoint was saved in (``RUN/checkpoints/last``: RUN, where its ``config.json`` is
    a run's record), else None."""
    for folder in checkpoint.resolve().parents[:3]:
        if is_run_record(folder / "config.json"):
            return folder
    return None


def _open_run_folder(
    run_dir: Path | None,
    replace: bool,
    continuing: bool,
    config: TrainingConfig,
    splits: SongSplits,
    log,
    init_record: dict | None = None,
    earlier: list[dict] | None = None,
) -> Path:
    """The run folder, created (or an earlier run in it cleared) only now that every check has passed and
    there is something to train on, with its ``config.json``; every rank gets rank 0's path.

    Unless the run goes on in its own folder (`continuing`), config.json is created exclusively: it claims
    the folder, so of two runs started into it at once the second is refused here. A resumed run's record
    keeps the settings its earlier epochs trained with where they differ (`earlier`, see `earlier_settings`):
    ``config`` alone would say the whole run was trained as its last part."""

    # Only the demo's held-out set (``test-*``): a cv fold's test songs are some of its training sets' songs,
    # whose common folder (the cache, or a whole training set) evaluate would score as if all held out.
    held_out = test_songs_folder(config, splits)
    demo_test_set = not config.data.data_dir and held_out is not None and held_out.name.startswith("test-")

    def open_folder() -> str:
        if replace:
            clear_earlier_run(run_dir, log)  # (first: it refuses a run folder still in use)
            checkpoints = _checkpoint_folder(config, run_dir)
            if not is_inside(checkpoints, run_dir) and checkpoints.is_dir():
                clear_checkpoints(checkpoints, log)  # the replaced run's, outside its folder (as checked)
        folder = create_run_folder(run_dir, "chords", DEFAULT_PARENT)
        claim_run_folder(folder)  # until the command ends: its evaluation writes here after the fit
        _remove_killed_writes(folder)
        write_run_record(
            folder / "config.json",
            config.to_dict(),
            recorded_command("audiotrain.recipes.chords"),
            claim=None if continuing else "--run_dir",
            continues=continuing,
            songs=split_names(splits),
            # The count `processes` 0 (one per core) resolved to on this machine: the weights depend on it
            # (float rounding), and --config RUN/config.json says when a repeat trains in another count.
            processes_used=collectives.world_size(),
            device_used=device_record(config.training_device()),  # ("auto" as resolved here)
            # What data.pitch_shift drew from: fewer than its 12 keys where features.max_pitch_shift < 6.
            pitch_shifts=list(training_pitch_shifts(config.data, config.features)),
            **({"demo_test_set": str(held_out)} if demo_test_set else {}),
            **({"init_from": init_record} if init_record else {}),
            **({"earlier": earlier} if earlier else {}),
        )
        if splits.data_report:  # a data folder's: every file left out, which the screen lists 20 of
            write_data_report(folder, splits.data_report)
        return str(folder)

    # An error there (a folder taken meanwhile) must end every rank, not leave the others waiting.
    return Path(collectives.broadcast_from_main(collectives.on_main_process(open_folder)))


def _seeded_task(
    config: TrainingConfig, splits: SongSplits, steps_per_epoch: int, windows: int, log
) -> ChordTask:
    """The task with its weights drawn from `config.seed`, here, before the Trainer (which seeds at `fit`)
    exists."""
    seed_everything(config.seed)
    task = build_task(config, splits.train, steps_per_epoch)
    processes = collectives.world_size()
    job_batch = config.batch_size if processes == 1 else per_process_batch(config.batch_size) * processes
    # A batch larger than the data trains one step of what there is: "1 step of 4096" read as 4096 windows.
    steps = (
        f"1 step of all {windows}: --batch_size {config.batch_size} is more than there are"
        if windows < job_batch
        else f"{plural(steps_per_epoch, 'step')} of {_batch_words(config.batch_size)}"
    )
    log(
        f"model: {task.model.num_parameters() / 1e6:.2f} M parameters; {plural(windows, 'window')} of "
        f"{config.data.window_frames} frames per epoch ({steps})"
    )
    if task.loss_fn.class_weights is not None:
        log(class_weights_note(task.loss_fn.class_weights.tolist()))
    if note := _warmup_note(config):
        log(note)
    return task


def _warmup_note(config: TrainingConfig) -> str:
    """A line for the run's start where ``--warmup_epochs`` does not fit in the run, or "": it was taken
    without a word, and a cosine or constant run trained at a fraction of ``--learning_rate`` to its end
    (`make_schedule` keeps the warmup's slope), a 1cycle run with its rise cut at 90% of the run."""
    warmup, epochs, rate = config.warmup_epochs, config.num_epochs, config.learning_rate
    if config.scheduler in ("cosine", "constant") and warmup > epochs:
        return (
            f"note: --warmup_epochs {warmup:g} is longer than the run's {plural(epochs, 'epoch')}: the "
            f"learning rate rises to about {epochs / warmup:.0%} of --learning_rate {rate:g} at the last "
            "step and never reaches it (lower --warmup_epochs, or raise --num_epochs)"
        )
    if config.scheduler == "onecycle" and warmup > 0.9 * epochs:
        return (
            f"note: --warmup_epochs {warmup:g} is longer than 90% of the run's {plural(epochs, 'epoch')}: "
            f"1cycle's rise to --learning_rate {rate:g} ends at {0.9 * epochs:g} epochs, leaving the rest of "
            "the run to its descent"
        )
    return ""


def _batch_words(batch_size: int) -> str:
    """A step's batch in words: the job's, and how the processes share it ("8: 2 processes x 4").
    ``--batch_size`` is the whole job's in the recipe's own processes and each rank's under a user's
    launcher (`per_process_batch`): the line reads the same under either."""
    processes = collectives.world_size()
    if processes == 1:
        return f"{batch_size}"
    per_rank = per_process_batch(batch_size)
    return f"{per_rank * processes}: {processes} processes x {per_rank}"


def _write_training_outputs(
    trainer: Trainer, run_dir: Path, best: Path, train_seconds: float, log, resumed_at: dict | None = None
) -> Path:
    """history.json and training_curves.png; returns the checkpoint to evaluate: `best` (by validation
    loss; ``last`` without validation songs), or the weights as Ctrl-C left them where there is no best
    yet (before the first validation) or no validation at all (they are newer than ``last``)."""
    # The run's own file: a resumed run rewrites the one its first part wrote.
    history_path = trainer.export_history(run_dir / "history.json", overwrite=True)
    if trainer.history and (plots := load_plots()):  # (matplotlib only when plotting)
        plots.plot_training_curves(trainer.history, run_dir / "training_curves.png")
    elif not plots_wanted():  # (AUDIOTRAIN_PLOTS=0: a resumed run's first curves would not match its history)
        (run_dir / "training_curves.png").unlink(missing_ok=True)
    validated = best.name != "last"
    if trainer.interrupted_checkpoint is not None and (not best.is_dir() or not validated):
        best = trainer.interrupted_checkpoint
        why = "stopped before the first validation" if validated else "no validation songs"
        log(f"no validated checkpoint ({why}): evaluating the weights as {stopped_by()} stopped them, {best}")
    # (to a tenth below 100 s: a short run said "in 0 s", and settings compared by it all read the same)
    took = f"{train_seconds:.1f}" if train_seconds < 100 else f"{train_seconds:.0f}"
    log(f"{_trained_summary(trainer, resumed_at)} in {took} s; history: {history_path}")
    return best


def _trained_summary(trainer: Trainer, resumed_at: dict | None) -> str:
    """ "trained 2 epochs (94 steps)"; a stop inside an epoch (Ctrl-C) names the batches of that epoch, so the
    steps add up ("1 epoch (94 steps)" read as a contradiction where 47 batches of epoch 1 had trained)."""
    epoch, batches = trainer.current_epoch, trainer.batch_in_epoch
    of_epoch = f"{plural(batches, 'batch', 'batches')} of epoch {epoch}"
    if (
        resumed_at
        and isinstance(resumed_at.get("epoch"), int)
        and isinstance(resumed_at.get("global_step"), int)
    ):
        # (the same words as a fresh run's were read as that many epochs trained now)
        return (
            f"trained to {f'batch {batches} of epoch {epoch}' if batches else f'epoch {epoch}'}: "
            f"{plural(trainer.global_step - resumed_at['global_step'], 'step')} "
            f"after resuming at epoch {resumed_at['epoch']} (step {resumed_at['global_step']})"
        )
    steps = plural(trainer.global_step, "step")
    if not batches:
        return f"trained {plural(epoch, 'epoch')} ({steps})"
    if not epoch:
        return f"trained {of_epoch} ({steps})"
    return f"trained {plural(epoch, 'full epoch')} and {of_epoch} ({steps})"


def _evaluate_held_out(
    best: Path, splits: SongSplits, run_dir: Path, config: TrainingConfig, log, results
) -> EvaluationResult | None:
    """Transcribe and score the test songs with checkpoint `best` into ``run_dir/evaluation``; the scores,
    with their notes, go to `results` (as ``evaluate`` prints them on stdout)."""
    if not splits.test:
        reason = "data.test_fraction, or more songs, gives some"
        if config.data.data_dir:  # (why, where a grouping or a split column, not the fraction, left none)
            reason = no_test_songs_reason(splits, config.data)
        log(f"no held-out test songs, so no evaluation ({reason})")
        return None
    predictor = ChordPredictor.from_checkpoint(best)
    shared = unwritable_lab_files([song.name for song in splits.test], run_dir / "evaluation")
    if shared:
        log(f"note: {shared_lab_note(shared)}")
    evaluation = evaluate_songs(
        predictor,
        splits.test,
        run_dir / "evaluation",
        allow_gaps=config.data.allow_gaps,
        scored=scored_record(predictor, test_songs_folder(config, splits)),
    )
    results(
        f"\nheld-out songs ({len(splits.test)}), mir_eval.chord scores in % (pooled over time; beside them, "
        "the range another draw of as many songs like these would give):"
    )
    scores_files = f"{run_dir / 'evaluation'}/scores.md and scores.json"
    results(format_table({"model": evaluation.scores}, intervals=True, others_in=scores_files))
    if evaluation.trimmed:
        results(trimmed_note(evaluation.trimmed, listed=TRIMMED_LISTED))
    if evaluation.unknown_chord_note:
        results(evaluation.unknown_chord_note)
    if evaluation.gap_filled:
        results(gap_filled_note(evaluation.gap_filled, listed=TRIMMED_LISTED))
    if evaluation.frames_note:
        results(f"note: {evaluation.frames_note}")
    results(f"transcription speed: {audio_speed(evaluation.audio_seconds, evaluation.wall_seconds)}")
    return evaluation


def _report_to_loggers(
    loggers: list, run_dir: Path, evaluation, step: int, results, interrupted: bool = False
) -> None:
    """The held-out scores (``test_<metric>``, pooled, at the run's last `step`) and the run's plots and
    evaluation, to the loggers' runs (the best checkpoint went when fit ended: ``--logger.log_model``); then
    where each run is (to `results`: what the run produced). An `interrupted` run's loggers closed it as
    interrupted: nothing more is sent to it."""
    if not loggers:
        return
    if not interrupted:
        scores = {f"test_{k}": v for k, v in evaluation.scores.pooled.items()} if evaluation else {}
        outputs = {
            "training_curves.png": run_dir / "training_curves.png",
            "history.json": run_dir / "history.json",
            "evaluation": run_dir / "evaluation",  # scores.json / .md, confusion_matrix.png, the .lab files
        }
        log_artifacts(loggers, outputs, metrics=scores, step=step)
    finish_loggers(loggers)  # nothing more goes to these runs
    results("loggers:\n  " + "\n  ".join(describe_loggers(loggers)))


def _reopened_loggers(config: LoggerConfig, run_dir: Path, ended: dict | None, log) -> list:
    """The loggers of a run whose training ended earlier (`evaluate_trained_run`), each reopened on its own
    run (TensorBoard / CSV version folder, W&B / MLflow run) from the trainer state `ended` of the checkpoint
    saved as the training ended, as a resumed fit reopens them. None (said why) where that state does not
    name one run per logger asked for: new ones would split the run's logs in two."""
    names = config.selected()
    if not names:
        return []
    saved = (ended or {}).get("loggers")
    if ended is None:
        why = "the checkpoint that ended its training, which names their runs, was not given"
    elif not isinstance(saved, list) or not saved:
        why = "the checkpoint that ended its training names no logger run to reopen"
    elif len(saved) != len(names) and not isinstance(ended.get("logger_kinds"), list):
        # (an older checkpoint, whose runs go by place: a subset of them is matched by kind below)
        why = (
            f"the checkpoint that ended its training names {len(saved)} logger runs, not one per logger asked "
            f"for now ({', '.join(names)})"
        )
    else:
        loggers = build_loggers(config, run_dir)
        # Each logger its own kind's run, as a resumed fit's (by place, --logger csv after a tensorboard run
        # reopened TensorBoard's version as the CSV logger's).
        pairs = match_states(loggers, saved, ended.get("logger_kinds"))
        if len(pairs) == len(loggers):
            for lg, state in pairs:
                lg.load_state_dict(state)
            return loggers
        paired = {id(lg) for lg, _ in pairs}
        missing = ", ".join(type(lg).__name__ for lg in loggers if id(lg) not in paired)
        why = f"the checkpoint that ended its training names no run of {missing} to reopen"
    log(
        f"loggers: the test scores are not sent to {', '.join(names)}: {why}, and new runs would split "
        f"this run's logs in two ({run_dir / 'evaluation' / 'scores.json'} holds them)"
    )
    return []


def _stopped_after_training(
    interrupted_checkpoint: Path | None,
    run_dir: Path,
    best: Path,
    splits: SongSplits,
    data: ChordDataConfig,
    signal_name: str,
    evaluated: bool = False,
) -> Path:
    """Print (to stderr) what a stop signal (`signal_name`: "Ctrl-C", "SIGTERM") after training leaves and how
    to score it; returns the checkpoint the run would have evaluated (`best`, where it was saved; else the
    one a stop in training saved, `interrupted_checkpoint`, or ``last``). `evaluated`: the held-out
    evaluation had finished (the stop came as its scores went to the loggers)."""
    checkpoint_dir = best.parent
    if not best.is_dir():
        best = interrupted_checkpoint or checkpoint_dir / "last"
    saved = [name for name in ("best", "last", "interrupted") if (checkpoint_dir / name).is_dir()]
    expected = ("history.json", "training_curves.png") if plots_wanted() else ("history.json",)
    missing = [name for name in expected if not (run_dir / name).exists()]
    if not evaluated and splits.test:  # (a folder begun is not an evaluation: the stop cut it short)
        missing.append("evaluation (cut short)" if (run_dir / "evaluation").exists() else "evaluation")
    # The held-out songs' folder where they have one of their own (the demo's); a data folder's test songs
    # lie among its training songs: --test_songs_of picks them (config.json lists them).
    folders = {song.audio_path.parent for song in splits.test}
    others = [song.audio_path for song in (*splits.train, *splits.val)]
    folder = next(iter(folders)) if len(folders) == 1 else None
    run = run_dir.absolute()  # (absolute, as in the continue command: it works pasted in any folder)
    if data.data_dir:
        songs = ["--data", data.data_dir, "--test_songs_of", run]
    elif folder is not None and not any(is_inside(path, folder) for path in others):
        songs = ["--data", folder]
    else:  # (splits given from Python, without a data folder)
        songs = ["--data", "HELD_OUT_SONGS_FOLDER"]
    command = shell_command(
        *recipe_command("audiotrain.recipes.chords", "evaluate"), "--checkpoint", best.absolute(), *songs,
        "-o", run / "evaluation", "--overwrite", *(["--allow_gaps"] if data.allow_gaps else []),
        *(["--jams_annotation", data.jams_annotation] if data.jams_annotation else []),
        *(["--annotations", data.annotations] if data.annotations else []),
        *(["--pairs", data.pairs] if data.pairs else []),
    )  # fmt: skip
    score = f". Score the checkpoint with:\n  {command}" if splits.test and not evaluated else ""
    print(
        f"interrupted ({signal_name}) after training: {checkpoint_dir} holds "
        f"{', '.join(saved) or 'no checkpoint'}; {', '.join(missing) or 'nothing'} missing{score}",
        file=sys.stderr,
        flush=True,
    )
    return best


def _cache_line(cache: FeatureCache, splits: SongSplits, others_replaced: int = 0) -> str:
    """The run's ``feature cache:`` line: its own songs, then (where they differ) every song the folder
    holds features of, which other runs with these feature settings put there too, and the wrong entries
    computed again (`others_replaced`: by the other ranks). A cache that could not be written says so:
    "this run's songs in" a read-only or full folder that held none of them was false."""
    songs = len(splits.train) + len(splits.val) + len(splits.test)
    if cache.unwritable is not None:
        where = f"feature cache: {cache.folder} cannot be written ({cache.unwritable})"
        # A disk that filled during the feature pass kept the entries written before it: "the features of
        # this run's 5 songs that it lacked were ... not kept" read as none kept, where 2 of the 5 were.
        kept = sum(_in_cache(cache, song) for song in (*splits.train, *splits.val, *splits.test))
        if kept == songs:
            return f"{where}: the features of this run's {plural(songs, 'song')} are there all the same"
        if kept:
            return (
                f"{where}: {kept} of this run's {songs} songs' features are there; the other {songs - kept} "
                "songs' were computed in memory and not kept"
            )
        return (
            f"{where}: the features of this run's {songs} songs that it lacked were computed in memory and "
            "not kept"
        )
    entries = cache.report()["entries"]
    # (a song left out as silent had its features computed and kept: an entry of this run's, not another's)
    own = songs + sum(_in_cache(cache, song) for song in splits.left_out)
    there = ""
    if entries > own:
        there = f" ({entries} songs there in all, other runs' too)"
    elif entries < songs:
        there = f" (only {entries} of them there now: the others' were deleted during the run)"
    wrong = cache.replaced + others_replaced
    replaced = f"; {plural(wrong, 'wrong entry', 'wrong entries')} computed again" if wrong else ""
    return f"feature cache: this run's {plural(songs, 'song')} in {cache.folder}{there}{replaced}"


def _silent(*args, **kwargs) -> None:
    """The log of the ranks other than 0 under data parallel (rank 0 prints for the job)."""


def line_sink(
    name: str, given: Any, default: Callable[[str], None], owner: str = "run_training"
) -> Callable[[str], None]:
    """`owner`'s `log` / `results`: a function taking a line, or a file (what the defaults, stderr and
    stdout, are: `log=sys.stdout`, an open file, a notebook's StringIO), each line written to it."""
    if given is None:
        return default
    if callable(given):
        return given
    if callable(getattr(given, "write", None)):
        return lambda line, *_, **__: print(line, file=given, flush=True)
    raise TypeError(
        f"{owner}({name}={given!r}): expected a function taking a line (print) or a file to write the "
        "lines to (sys.stdout, open(...)); None for the default"
    )


def to_stderr(message: str) -> None:
    """The recipe's default log: diagnostics, progress and skip reports go to stderr, results (scores, the
    run's summary) to stdout, as ``evaluate`` has them; the commands it names as the recipe was started."""
    print(as_started(message), file=sys.stderr, flush=True)


def _check_window_fits(splits: SongSplits, config: TrainingConfig) -> None:
    """Refuse a ``--data.window_frames`` longer than every training song, from the audio headers (no decoding).

    A song whose header cannot be read is passed over here: the decode pass (`drop_undecodable`) names it."""
    seconds = {}
    for song in splits.train:
        try:
            seconds[song.name] = get_duration(song.audio_path)
        except AudioError:
            continue
    if not seconds:
        return
    frame_rate = config.features.frame_rate
    longest = max(seconds, key=seconds.get)
    frames = int(seconds[longest] * frame_rate)
    window = config.data.window_frames
    if window > frames:
        raise ValueError(
            f"--data.window_frames {window} is longer than every training song: the longest, {longest}, "
            f"has {frames} frames ({frames / frame_rate:.1f} s at {frame_rate:.2f} frames per second); pass "
            f"--data.window_frames {max(8, frames)} or less"
        )


def _home_expanded(config: ChordDataConfig, *names: str) -> dict[str, str]:
    """`config`'s path settings `names` that start with ``~``, with the home folder in its place."""
    paths = {name: getattr(config, name) for name in names}
    return {name: os.path.expanduser(path) for name, path in paths.items() if isinstance(path, str)}


def song_loaders(
    run: str | os.PathLike | ChordTask,
    data_dir: str | os.PathLike,
    batch_size: int = 16,
    seed: int = 0,
    **data: Any,
) -> tuple[DataLoader, DataLoader | None]:
    """(training loader, validation loader) of the songs in `data_dir`, built as the ``train`` command
    builds them for the run `run` (a run, checkpoint or export folder, or a `ChordTask` from
    `ChordTask.load_from_checkpoint`): its features and ``data.window_frames``, the feature cache, the split
    by `seed` (its test songs are left out of both), the songs whose audio does not decode left out, and
    `batch_size` windows a batch (the ``train`` command's ``--batch_size`` and ``--seed``). The
    validation loader is None with ``val_fraction=0``. `data` sets the other `ChordDataConfig` fields, with
    the recipe's defaults (``val_fraction=0.15``, ``cache_dir=``, ``pitch_shift=``, ``window_frames=``...),
    typed as a ``--config`` file's ``data`` section (a wrong type or an unknown name is a ValueError naming it).

    What fine-tuning from Python needs besides the task: ``trainer.fit(task, train_loader, val_loader)``,
    with ``steps_per_epoch=len(train_loader)`` for the task's schedule."""
    config, splits, feature_fn = _prepared_songs(run, data_dir, batch_size, seed, data, "song_loaders")
    train_loader, val_loader, _ = make_loaders(
        splits, feature_fn, config.data, config.features, config.batch_size, config.seed
    )
    return train_loader, val_loader


def evaluation_loader(
    run: str | os.PathLike | ChordTask,
    data_dir: str | os.PathLike,
    batch_size: int = 16,
    **data: Any,
) -> DataLoader:
    """The loader of every song in `data_dir` (held-out songs: no split), as the recipe's validation loader
    is built for the run `run` (see `song_loaders`): each song's windows of the run's
    ``data.window_frames`` in order, not shuffled, not pitch-shifted or equalised, the songs whose audio
    does not decode left out. For ``trainer.test(task, loader)`` or ``trainer.validate``: the same numbers
    each time. `data` sets the other `ChordDataConfig` fields as in `song_loaders` (``cache_dir=``...)."""
    split = sorted(name for name in ("val_fraction", "test_fraction") if name in data)
    if split:
        raise TypeError(
            f"evaluation_loader takes every song of {os.fspath(data_dir)}: {listed(split)} does not apply "
            "(song_loaders splits a folder)"
        )
    data = {**data, "val_fraction": 0.0, "test_fraction": 0.0}
    config, splits, feature_fn = _prepared_songs(run, data_dir, batch_size, 0, data, "evaluation_loader")
    songs = ChordSongDataset(
        splits.train, feature_fn, song_config(config.data, config.features), train=False, seed=0
    )
    return DataLoader(songs, batch_size=batch_size, shuffle=False, num_workers=config.data.num_workers)


def _prepared_songs(
    run: str | os.PathLike | ChordTask,
    data_dir: str | os.PathLike,
    batch_size: int,
    seed: int,
    data: dict[str, Any],
    caller: str,
) -> tuple[TrainingConfig, SongSplits, Callable[[Path], Any]]:
    """(settings, split, feature function) of the songs in `data_dir` for the run `run`: the part
    `song_loaders` and `evaluation_loader` share."""
    features, window_frames = _run_features(run)
    data.setdefault("window_frames", window_frames)
    # Typed as a --config file's data section is (merge_config): pitch_shift="false" or 3 was taken as true
    # (all 12 keys), eq_db="12" a TypeError naming no setting, a misspelt keyword without a "did you mean".
    data_config = merge_config(ChordDataConfig(data_dir=os.fspath(data_dir)), data, caller)
    # `~` is the home folder here as in `train --data ~/songs` and Trainer(default_root_dir="~/runs").
    data_config = dataclasses.replace(
        data_config, **_home_expanded(data_config, "data_dir", "cache_dir", "annotations", "pairs")
    )
    config = TrainingConfig(
        data=data_config,
        features=features,
        batch_size=batch_size,
        seed=seed,
    )
    # As the recipe's `_prepare_songs`, without its lines on the screen: the split, a window longer than
    # every song refused from the headers, then every song's features computed once into the cache.
    splits, _ = folder_splits(config.data, config.seed, min_seconds=features.min_seconds)
    _check_window_fits(splits, config)
    cache_root = config.data.resolved_cache_dir() / "features"
    feature_fn, cache = feature_function(features, cache_root, unwritable_cache_advice(config.data))
    splits, _ = drop_undecodable(splits, feature_fn, features, cache)
    return config, splits, feature_fn


def _run_features(run: str | os.PathLike | ChordTask) -> tuple[ChordFeatureConfig, int]:
    """The feature settings and window length `run` (a `ChordTask` or a folder of the recipe's) trained
    with, as its checkpoint records them."""
    if isinstance(run, ChordTask):
        stored, where = run.extra_state, "the task's extra_state"
    elif isinstance(run, (str, os.PathLike)):
        folder = resolve_model_checkpoint(run)
        state = ckpt.read_model_state(folder)
        stored = stored_settings(folder, state) or {}
        if "model_config" not in stored:  # (no chord checkpoint at all: a CLAP run's is named as one)
            raise not_a_chord_checkpoint(folder, state, "no chord model settings", CHECKPOINT_KEY)
        where = f"{folder} (module_state.{CHECKPOINT_KEY} in {ckpt.STATE_FILE})"
    else:
        raise TypeError(
            "song_loaders(run=...): expected a run, checkpoint or export folder (str or Path) or a "
            f"ChordTask, got {type(run).__name__}"
        )
    if not isinstance(stored.get("features"), dict):
        raise ValueError(
            f"{where} holds no chord feature settings; build the task with "
            "ChordTask.load_from_checkpoint(CHECKPOINT), which keeps them"
        )
    return ChordFeatureConfig.from_stored(stored["features"]), int(stored.get("window_frames", 96))
