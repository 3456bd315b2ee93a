"""K-fold cross-validation of the chord recipe, grouped by song (the usual protocol of chord-recognition papers).

    python -m audiotrain.recipes.chords cv --data DIR --folds 5      # your songs
    python -m audiotrain.recipes.chords cv --folds 5                 # the demo songs

Every song is in the test part of exactly one fold, so no song (and no window of one) is both trained and
scored on; with ``--data.split_by folder`` (or ``top_folder``) every folder's songs are, with
``--data.group_pattern`` every group's (`split_group`), and songs that share an annotation file are held out
together (`merged_groups`); a pairs file's split column is refused. In each fold the other songs are split
again by song into train and validation (``data.val_fraction``, at least one song; 0: none, and each fold
evaluates its last checkpoint). Each fold is a whole `run_training` run in
``RUN/fold<k>/`` (checkpoints, history, ``evaluation/``). The run folder also gets ``oof/`` (the out-of-fold
``.lab`` prediction of every song), ``cv_scores.json`` / ``cv_scores.md`` (each metric per fold, its mean and
standard deviation, in %), and on a data folder ``data_report.txt`` (every file the scan left out, and why).

Ctrl-C stops the whole cross-validation: the fold it stopped saves its ``interrupted`` checkpoint, no later
fold trains and no cv scores are written (`CrossValidationInterrupted`). ``cv_progress.json`` records the
folds finished so far, with the settings and songs they were made of, and a fold whose training ended but
whose evaluation was stopped (``trained``: the checkpoint it evaluates; a fold killed there, SIGKILL or
power loss, says so in its own folder, `TRAINED_FILE`), so that ``--resume RUN`` keeps the
finished folds, scores a trained one without training it again (`evaluate_trained_run`), continues a fold
stopped in training from its checkpoint and trains the rest.
"""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from audiotrain._file_names import local_name, portable_name, stored_name
from audiotrain._files import read_json_file, unusable_path, write_json_atomically
from audiotrain.cross_validation import CVResult, fold_folders, fold_name, grouped_folds
from audiotrain.datasets.chord_songs import merged_groups, split_groups
from audiotrain.distributed import collectives
from audiotrain.features.cache import releasing_the_runs_holds
from audiotrain.metrics.chord_scores import CHORD_METRICS
from audiotrain.recipes._run import (
    check_can_write,
    check_run_folder,
    claim_run_folder,
    clear_run_outputs,
    holding_run_folders,
    holds_files,
    holds_json_record,
    is_inside,
    newest_checkpoint,
    shell_command,
)
from audiotrain.recipes.chords.config import TrainingConfig
from audiotrain.recipes.chords.data import (
    DATA_REPORT,
    SongSplits,
    demo_splits,
    folder_splits,
    write_data_report,
)
from audiotrain.recipes.chords.evaluate import CV_PROGRESS_FILE, shared_lab_note, unwritable_lab_files
from audiotrain.recipes.chords.train import (
    _checkpoint_folder,
    evaluate_trained_run,
    line_sink,
    run_own_paths,
    run_training,
    to_stderr,
    trained_checkpoint,
)
from audiotrain.recipes.split_record import describe_difference
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.reporting import read_history

#: The record of a cv run's folds, written as it starts and after each fold: what ``--resume`` continues.
PROGRESS_FILE = CV_PROGRESS_FILE
#: What a cv run writes beside its ``fold<k>/`` folders (``--overwrite`` removes these and the folds).
CV_OUTPUTS = ("oof", "cv_scores.json", "cv_scores.md", PROGRESS_FILE, DATA_REPORT)
#: Settings that do not change what a fold trains: a resumed cv run may differ in them. (A checkpoint
#: resumes on either device; the feature cache holds the same features wherever it is.)
RESUMABLE_CHANGES = frozenset({"progress_bar", "num_workers", "device", "cache_dir"})


class CrossValidationInterrupted(KeyboardInterrupt):
    """A stop signal (Ctrl-C, SIGTERM) stopped fold `fold` (from 0) of the cv run in `run_dir`; its
    `checkpoint` is where it saved (the one it trained to where its evaluation was stopped; None when it
    stopped before its first step). ``run_cross_validation(..., resume=True)`` continues."""

    def __init__(self, run_dir: Path, fold: int, checkpoint: Path | None):
        super().__init__(f"cross-validation in {run_dir} interrupted in fold {fold}")
        self.run_dir, self.fold, self.checkpoint = run_dir, fold, checkpoint


def all_songs(config: TrainingConfig, run_dir: Path | None = None) -> tuple[list, str, tuple[str, str]]:
    """Every song of the data folder (or the demo training set, ``data.demo_songs`` songs), its source, and
    the folder scan's report: for the screen, and with every file left out for `DATA_REPORT` ("" for the
    demo). The cv run folder `run_dir` is left out of a data folder it lies in (`folder_splits`).

    Out-of-fold predictions are named after the songs, so two songs of the same name are an error.
    """
    if config.data.data_dir:
        splits, screen = folder_splits(
            config.data, config.seed, min_seconds=config.features.min_seconds, folds=True, run_dir=run_dir
        )
        songs = [*splits.train, *splits.val, *splits.test]
        reports = (screen, splits.data_report)
    else:
        splits = demo_splits(config.data, config.features.sr)
        songs = [*splits.train, *splits.val]  # (the held-out demo set reuses the same song names)
        reports = ("", "")
    names: dict[str, int] = {}
    for song in songs:
        names[song.name] = names.get(song.name, 0) + 1
    twice = sorted(n for n, count in names.items() if count > 1)
    if twice:
        raise ValueError(
            f"{splits.source}: several songs are named {twice[:5]}; give every song its own name"
        )
    return songs, splits.source, reports


def song_folds(
    songs: list,
    folds: int,
    val_fraction: float,
    seed: int,
    source: str,
    by: str = "song",
    pattern: str | None = None,
) -> list[SongSplits]:
    """``folds`` splits whose test parts partition ``songs`` (shuffled with ``seed``; see `grouped_folds`),
    a group of songs (`split_group`: a song, or with `by` a folder, or with `pattern` what it matches in
    the names; the songs that share an annotation file with its songs too: `merged_groups`) whole in one
    part of each.
    Each split's source is `source` itself: `run_cross_validation` names the fold in its header above it."""
    alone = by == "song" and pattern is None
    groups = range(len(songs)) if alone else split_groups([song.name for song in songs], by, pattern)
    # Two recordings of one take (one annotation file) are held out together. (Stand-ins for songs, names
    # alone, have no file.)
    groups = merged_groups([getattr(song, "annotation_path", None) for song in songs], groups)
    unit = "songs" if alone else "folders" if pattern is None else "groups"
    parts = grouped_folds(groups, folds, seed, val_fraction, unit=unit, source=source, flag="--folds")
    return [
        SongSplits(
            [songs[i] for i in f.train],
            [songs[i] for i in f.val],
            [songs[i] for i in f.test],
            source,
        )
        for f in parts
    ]


def run_cross_validation(
    config: TrainingConfig,
    run_dir: str | Path,
    folds: int = 5,
    log=None,
    overwrite: bool = False,
    resume: bool = False,
    results=print,
) -> CVResult:
    """Train and evaluate ``folds`` folds grouped by song; see the module docstring for what is written.
    `log` takes the diagnostics and progress (default: stderr), `results` each fold's header and scores and
    the cv table (default: stdout): each a function taking a line, or a file (as `run_training`'s).

    The run folder is this process's (`claim_run_folder`) from its opening until the last fold is scored:
    ``--overwrite`` of another process is refused meanwhile, also while a fold is being scored."""
    log = line_sink("log", log, to_stderr, "run_cross_validation")
    results = line_sink("results", results, print, "run_cross_validation")
    with releasing_the_runs_holds(), holding_run_folders():  # (the cache holds of its demo songs too)
        return _run_cross_validation(config, run_dir, folds, log, overwrite, resume, results)


def _run_cross_validation(
    config: TrainingConfig, run_dir: str | Path, folds: int, log, overwrite: bool, resume: bool, results
) -> CVResult:
    """`run_cross_validation`, inside its claim of the run folder.

    A `run_dir` holding files is refused unless `overwrite` (which removes what a cv run writes there, and
    nothing else) or `resume` (which continues the cv run there: finished folds are kept, the first unfinished
    one resumes from its newest checkpoint). Raises `CrossValidationInterrupted` when Ctrl-C stops a fold.

    Under a launcher (mlx.launch, ``python -m audiotrain launch``) every rank trains each fold data parallel;
    rank 0 alone prints, scores the folds and writes the cv records. The others return a `CVResult` without
    scores once they have trained the last fold."""
    run_dir = Path(run_dir)
    main = collectives.is_main_process()
    if not main:
        log = results = _silent
    if main and not resume and not overwrite:
        _refuse_non_cv_run(run_dir)
    replace = check_run_folder(
        run_dir,
        "--run_dir",
        overwrite,
        run_dir if resume else None,
        resume_hint=shell_command("--resume", run_dir),
        holds_run=holds_json_record(PROGRESS_FILE, ("folds", "songs", "config")),  # (--overwrite: a cv run's)
        outputs=cv_outputs(run_dir) if run_dir.is_dir() else None,
    )
    if not resume:
        _check_fold_checkpoint_folders(config, run_dir, folds)
    songs, source, (screen_report, data_report) = all_songs(config, run_dir)
    if screen_report:
        log(screen_report)
    progress_path = run_dir / PROGRESS_FILE
    if resume and config.data.data_dir:
        songs, source, said = _songs_as_recorded(songs, source, progress_path, config.data.data_dir)
        if said:
            log(said)
    names = [portable_name(song.name) for song in songs]  # (read alike in every locale: `_file_names`)
    progress = {"folds": folds, "songs": names, "config": config.to_dict(), "done": {}, "trained": {}}
    if resume:
        progress["done"], progress["trained"] = _finished_folds(progress_path, progress)
    by = config.data.split_by if config.data.data_dir else "song"
    pattern = config.data.group_pattern if config.data.data_dir else None
    splits = song_folds(songs, folds, config.data.val_fraction, config.seed, source, by, pattern)
    oof, shared = run_dir / "oof", {}
    if main:
        if replace:
            clear_run_outputs(run_dir, cv_outputs(run_dir), log, own_entries=cv_own_entries(run_dir))
        run_dir.mkdir(parents=True, exist_ok=True)
        claim_run_folder(run_dir)
        oof.mkdir(parents=True, exist_ok=True)
        # Two folds' songs whose .lab files would be one in oof/ (Song and song where case is folded): each
        # fold's evaluation/ has its own, oof/ none of them (one copy would replace the other).
        shared = unwritable_lab_files(names, oof)
        if shared:
            log(f"note: in {oof}, {shared_lab_note(shared)}")
        if data_report:
            write_data_report(run_dir, data_report)
        write_json_atomically(progress_path, progress)  # replaced whole: a crash never leaves half a record
    fold_scores, histories = [], []
    base_config = config
    for k, split in enumerate(splits):
        fold_dir = run_dir / f"fold{k}"
        config = _fold_config(base_config, k)
        fold_checkpoints = _checkpoint_folder(config, fold_dir)
        if str(k) in progress["done"]:
            results(f"\n=== {fold_name(k, folds)}: finished earlier, kept ({fold_dir})")
            fold_scores.append(progress["done"][str(k)])
            try:
                histories.append(read_history(fold_dir / "history.json"))
            except ValueError as err:
                anew_flags = shell_command("--run_dir", run_dir, "--overwrite")
                raise ValueError(
                    f"--resume {run_dir}: {fold_name(k, folds)} finished earlier, but its history is unreadable "
                    f"({err}); start a new cv run there with {anew_flags} in place of --resume"
                ) from None
            continue
        trained = progress["trained"].get(str(k))
        if trained is None and resume:  # (killed after its training ended: its own folder says so)
            found = trained_checkpoint(fold_dir, config)
            trained = found.resolve() if found is not None else None  # (absolute: fold_dir / it is itself)
        if trained is not None:  # a stop cut its evaluation short: its checkpoint is scored, not trained on
            results(
                f"\n=== {fold_name(k, folds)}: trained earlier, its held-out songs are scored now ({fold_dir})"
            )
            ended = _ended_state(fold_checkpoints)
            result = evaluate_trained_run(
                config, fold_dir, split, fold_dir / trained, log, ended=ended, results=results
            )
        else:
            results(f"\n=== {fold_name(k, folds)}: {fold_dir}")  # its run then says its split (`describe`)
            checkpoint = newest_checkpoint(fold_checkpoints) if resume else None
            # Resuming, a fold with no checkpoint (stopped before its first step) is this cv run's own: replaced.
            result = run_training(
                config,
                fold_dir,
                splits=split,
                log=log,
                resume=checkpoint,
                overwrite=overwrite or (resume and checkpoint is None),
                results=results,
                # (--overwrite left only a user's files in the fold's folder: the fold keeps them too)
                cleared=overwrite,
                evaluate_stopped=False,  # (no scores from a partial fold: --resume continues its training)
            )
        if result.interrupted:  # (in training, or after it: its evaluation; None before its first step)
            if result.trained and main:  # (its training is over: a resume evaluates the checkpoint it chose)
                # Within the fold's folder, relative to it: the run folder may be resumed from elsewhere.
                chosen, folder = Path(result.checkpoint).resolve(), fold_dir.resolve()
                inside = folder in chosen.parents
                progress["trained"][str(k)] = str(chosen.relative_to(folder) if inside else chosen)
                write_json_atomically(progress_path, progress)
            raise CrossValidationInterrupted(run_dir, k, result.interrupted_checkpoint or result.checkpoint)
        if not main:  # (rank 0 alone evaluates the fold: `result.evaluation` is None here)
            continue
        fold_scores.append({m: float(result.evaluation.scores.pooled[m]) for m in CHORD_METRICS})
        histories.append(result.history)
        evaluation = fold_dir / "evaluation"
        for lab in evaluation.rglob("*.lab"):  # songs in sub-folders keep them: albumA/x and albumB/x differ
            if lab.relative_to(evaluation).as_posix().removesuffix(".lab") in shared:
                continue
            target = oof / lab.relative_to(evaluation)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(lab, target)
        progress["done"][str(k)] = fold_scores[-1]
        progress["trained"].pop(str(k), None)
        write_json_atomically(progress_path, progress)
    cv = CVResult(run_dir, fold_scores, histories, [run_dir / f"fold{k}" for k in range(folds)], percent=True)
    if not main:
        return cv
    cv.write(songs=len(songs))
    results(
        f"\n{folds}-fold cross-validation over {len(songs)} songs (grouped by {by.replace('_', ' ')}), "
        f"scores in %:\n{cv.table()}"
    )
    return cv


def _fold_config(config: TrainingConfig, k: int) -> TrainingConfig:
    """Fold `k`'s settings: an absolute ``checkpoint_dir`` gets a ``fold<k>`` subfolder, as a relative one
    lies in each fold's own folder. Shared, fold 1 was refused for fold 0's checkpoints, and so was the
    printed continue command."""
    if not Path(config.checkpoint_dir).is_absolute():
        return config
    return dataclasses.replace(config, checkpoint_dir=str(Path(config.checkpoint_dir) / f"fold{k}"))


def _check_fold_checkpoint_folders(config: TrainingConfig, run_dir: Path, folds: int) -> None:
    """Refuse an absolute ``checkpoint_dir`` whose ``fold<k>`` subfolders (`_fold_config`) already hold files
    (another cv run's checkpoints) before the run folder is written: each fold's own check comes only once
    cv_progress.json and oof/ are there, which then refused the retry with an empty --checkpoint_dir.
    ``--overwrite`` does not lift this, as it clears only the run folder."""
    given = Path(config.checkpoint_dir)
    if not given.is_absolute():
        return  # (inside each fold's folder: the run folder's own check covers it)
    check_can_write(given, f"--checkpoint_dir {given}")
    used = [
        f"fold{k}/"
        for k in range(folds)
        if holds_files(given / f"fold{k}") and not is_inside(given / f"fold{k}", run_dir / f"fold{k}")
    ]
    if used:
        held = f"its {used[0]} already holds" if len(used) == 1 else f"its {', '.join(used)} already hold"
        raise FileExistsError(
            f"--checkpoint_dir {given}: {held} files (another cv run's checkpoints?), which this cv run's "
            f"folds would replace. Choose an empty --checkpoint_dir (each fold saves in its fold<k>/ there), "
            "or leave it at its default inside each fold's folder; to continue the cv run that saved them, "
            f"resume it: cv {shell_command('--resume', 'ITS_RUN_DIR')}"
        )


def _ended_state(checkpoints: Path) -> dict | None:
    """The trainer state of the newest checkpoint in a fold's `checkpoints` folder whose training ended (the
    one saved as it ended): it names the fold's logger runs (``--logger``), which then get the fold's test
    scores as a resumed single run's do (`evaluate_trained_run`'s `ended`). None where there is none, or it
    cannot be read: the evaluation then says that the scores are not sent."""
    checkpoint = newest_checkpoint(checkpoints)
    if checkpoint is None:
        return None
    try:
        return ckpt.read_state(checkpoint)
    except (OSError, ValueError, ckpt.CheckpointError):
        return None


def _silent(*args, **kwargs) -> None:
    """The log of the ranks other than 0 under a launcher (rank 0 prints for the job)."""


def cv_outputs(run_dir: Path) -> list[str]:
    """What a cv run writes in `run_dir` (``--overwrite`` removes these and nothing else): its folds,
    however many an earlier run had, and `CV_OUTPUTS`."""
    folds = [p.name for p in run_dir.glob("fold*") if re.fullmatch(r"fold\d+", p.name)]
    return sorted(folds) + list(CV_OUTPUTS)


def cv_own_entries(run_dir: Path) -> dict[str, Callable[[Path], list[Path]]]:
    """Which entries of its folders a cv run wrote (``--overwrite`` removes those, and a user's files there
    stay): each fold's own (a run's, `run_own_paths`), and in ``oof/`` the ``.lab`` of each song its
    cv_progress.json lists."""
    try:
        songs = read_json_file(run_dir / PROGRESS_FILE, ValueError)["songs"]
    except (OSError, ValueError, KeyError, TypeError):
        songs = []
    names = [local_name(song) for song in songs if isinstance(song, str)] if isinstance(songs, list) else []
    folds = {name: run_own_paths for name in cv_outputs(run_dir) if re.fullmatch(r"fold\d+", name)}
    return {**folds, "oof": lambda folder: [folder / f"{name}.lab" for name in names]}


def _songs_as_recorded(songs: list, source: str, path: Path, data_dir: str) -> tuple[list, str, str]:
    """(the songs of the cv run whose record is `path`, their source line, a line to say), out of `songs` and
    `source` (data folder `data_dir` as scanned now). The songs come in the record's order: the folds depend
    on that order alone, so they are the ones the run started with, however this version orders the folder
    (a run from before each song's part was kept as songs come and go) and whatever songs were added since
    (left out, and said; the line is "" where none were). `songs` as they are where the record is unreadable
    or a song it lists is not found: `_finished_folds` then says why it cannot go on."""
    try:
        recorded = read_json_file(path, ValueError).get("songs")
    except (ValueError, AttributeError):
        return songs, source, ""
    found = {portable_name(song.name): song for song in songs}
    if not isinstance(recorded, list) or not all(isinstance(n, str) for n in recorded):
        return songs, source, ""
    recorded = [stored_name(name) for name in recorded]
    if not all(name in found for name in recorded):
        return songs, source, ""
    ours, added = [found[name] for name in recorded], len(found) - len(set(recorded))
    if not added:
        return ours, source, ""
    some, it = ("1 song", "it") if added == 1 else (f"{added} songs", "them")
    said = (
        f"resuming the cv run on the {len(ours)} songs it started with: {some} added to {data_dir} since "
        f"{'is' if added == 1 else 'are'} not used (a new cv run trains on {it})"
    )
    return ours, f"{len(ours)} of the {source}", said


def _other_run(run_dir: Path) -> str:
    """``a train run (config.json, checkpoints/)`` where `run_dir` holds the run of another command (train
    and demo write config.json as they start) and no cv run, or the cv run of an older audiotrain, else ""."""
    if (run_dir / PROGRESS_FILE).exists():
        return ""
    older_folds = (
        [f"{p.name}/" for p in fold_folders(run_dir)] if (run_dir / "cv_scores.json").is_file() else []
    )
    if older_folds:  # (before PROGRESS_FILE: it cannot be continued, and --overwrite deletes its folds)
        found = ", ".join(["cv_scores.json", *older_folds])
        return f"a cv run of an older audiotrain ({found})"
    if not (run_dir / "config.json").is_file():
        return ""
    found = [name for name in ("config.json", "checkpoints/", "history.json") if (run_dir / name).exists()]
    return f"a train run ({', '.join(found)})"


def _refuse_non_cv_run(run_dir: Path) -> None:
    """Refuse a new cv run in a folder that holds files but no cv run (no `PROGRESS_FILE`), before the
    general refusal of a folder that holds files: that one offers ``--resume`` to continue it, which this
    folder cannot do (``--resume`` continues only a cv run)."""
    if not holds_files(run_dir) or (run_dir / PROGRESS_FILE).exists():
        return
    other = _other_run(run_dir)
    # (--overwrite would leave another run's files beside the cv run's: for one, a new folder is clearer)
    options = (
        "a new --run_dir for the cv run"
        if other
        else "a new --run_dir, or pass --overwrite to start the cv run there (files a cv run does not "
        "write stay)"
    )
    raise FileExistsError(
        f"--run_dir {run_dir} holds {other or 'files'}, not a cv run this version continues (it has no "
        f"{PROGRESS_FILE}, which a cv run writes as it starts), so --resume cannot continue it; "
        f"choose {options}"
    )


def _finished_folds(path: Path, now: dict) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """The scores of the folds the cv run at ``path.parent`` finished, and the checkpoint of each fold it
    trained but did not score, once its record shows that the same folds of the same songs with the same
    settings are being continued."""
    run_dir = path.parent
    try:
        before = read_json_file(path, ValueError)
        if not isinstance(before, dict):
            raise ValueError
    except ValueError:
        raise ValueError(
            f"--resume {run_dir}: not a cv run folder ({path.name}, which a cv run writes as it starts, is "
            f"missing or unreadable)"
            + (
                # (--overwrite would leave the train run's files beside the cv run's: a new folder is clearer)
                f"; it holds {other}: choose a new --run_dir for the cv run"
                if (other := _other_run(run_dir))
                else "; to start a new cv run there, pass "
                + shell_command("--run_dir", run_dir, "--overwrite")
                + " in place of --resume"
            )
        ) from None
    recorded_folds = before.get("folds")
    if isinstance(recorded_folds, bool) or not isinstance(recorded_folds, int) or recorded_folds < 2:
        # (advised as "resume with --folds True" before)
        raise ValueError(f"{path}: folds is {recorded_folds!r}, not a number of folds (edited by hand?)")
    if before.get("folds") != now["folds"]:
        raise ValueError(
            f"--resume {run_dir}: that cv run has {before.get('folds')} folds, not {now['folds']}; "
            f"resume with --folds {before.get('folds')}"
        )
    songs_before = before.get("songs")
    if isinstance(songs_before, list):  # (a record written in an ASCII locale: `_file_names.stored_name`)
        songs_before = [stored_name(name) if isinstance(name, str) else name for name in songs_before]
    changed = _changed_settings(before.get("config") or {}, now["config"])
    settings = ", ".join(f"{key} ({a!r} there, {b!r} here)" for key, a, b in changed[:5])
    anew_flags = shell_command("--run_dir", run_dir, "--overwrite")
    anew = f"start a new cv run there with {anew_flags} in place of --resume"
    if songs_before != now["songs"]:
        difference = describe_difference({"all": songs_before or []}, {"all": now["songs"]}, "songs")
        # Other settings (a resume without the run's --config: the default demo set) choose other songs;
        # they, not the data, are then what to restore.
        raise ValueError(
            f"--resume {run_dir}: its folds were made of other songs{difference}"
            + (
                f", with other settings: {settings}; resume with the same flags and --config as that run "
                f"(the command it printed when it stopped), or {anew}"
                if changed
                else f"; restore the data, or {anew}"
            )
        )
    if changed:
        raise ValueError(
            f"--resume {run_dir}: its finished folds were trained with other settings: {settings}; resume "
            f"with the same flags and --config as that run, or {anew}"
        )
    done = _checked_done(before.get("done"), path, now["folds"])
    return done, _checked_trained(before.get("trained"), path)


def _checked_done(done, path: Path, folds: int) -> dict[str, dict[str, float]]:
    """``done`` of cv_progress.json ``path``: fold index → its pooled scores, each checked now, before any
    fold trains. A damaged entry would otherwise go into cv_scores.json as it is (-500 %, a metric missing
    from the table) or crash the summary after the remaining folds trained."""
    if done is None:
        return {}
    if not isinstance(done, dict):
        raise ValueError(f"{path}: done is a {type(done).__name__}, not an object of fold scores")
    checked = {}
    for fold, scores in done.items():
        where = f"{path}: done.{fold}"
        if fold not in {str(k) for k in range(folds)}:
            raise ValueError(f"{where}: {fold!r} is not a fold of this {folds}-fold run (0 to {folds - 1})")
        if not isinstance(scores, dict):
            raise ValueError(f"{where} is a {type(scores).__name__}, not an object of scores by metric")
        if set(scores) != set(CHORD_METRICS):
            missing, extra = set(CHORD_METRICS) - set(scores), set(scores) - set(CHORD_METRICS)
            raise ValueError(
                f"{where}: "
                + "; ".join(
                    [f"{', '.join(sorted(missing))} missing"] * bool(missing)
                    + [f"{', '.join(sorted(extra))} not a chord metric"] * bool(extra)
                )
            )
        for metric, value in scores.items():
            if value is None:  # a score over no frame is NaN, written as null (strict JSON)
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{where}.{metric} is {value!r}, not a score from 0 to 1 (or null)")
        checked[fold] = {
            metric: math.nan if value is None else float(value) for metric, value in scores.items()
        }
    return checked


def _checked_trained(trained, path: Path) -> dict[str, str]:
    """``trained`` of cv_progress.json ``path``: fold index → the checkpoint (a path) it trained to."""
    if trained is None:
        return {}
    if not isinstance(trained, dict) or not all(isinstance(v, str) and v for v in trained.values()):
        raise ValueError(f"{path}: trained is {trained!r}, not an object of fold → checkpoint path")
    for fold, checkpoint in trained.items():
        # (relative to the fold's folder, or absolute: `_run_cross_validation` records it so)
        state_file = path.parent / f"fold{fold}" / checkpoint / ckpt.STATE_FILE
        if unusable_path(state_file) or not state_file.is_file():
            raise ValueError(
                f"{path}: trained.{fold} is {checkpoint!r}, which is no checkpoint of fold{fold}/ (edited by "
                "hand, or the checkpoint removed?); restore it, or remove the entry to train that fold again"
            )
    return dict(trained)


def _changed_settings(before: dict, now: dict, prefix: str = "") -> list[tuple[str, object, object]]:
    """(dotted key, value before, value now) of every setting that differs, nested sections walked."""
    changed = []
    for key in sorted(set(before) | set(now)):
        a, b = before.get(key), now.get(key)
        if isinstance(a, str) and isinstance(b, str):  # (a data folder recorded in another locale: the same)
            a, b = stored_name(a), stored_name(b)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += _changed_settings(a, b, f"{prefix}{key}.")
        elif a != b and key not in RESUMABLE_CHANGES:
            changed.append((prefix + key, a, b))
    return changed
