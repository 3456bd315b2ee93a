"""`python -m audiotrain runs [FOLDER ...]` and `runs compare RUN ...`: the run folders the recipes and the
Trainer left, one line each (recipe, status, when, epochs, headline score, size), and what differs between
runs.

Read-only: nothing is written, and a folder that cannot be read or is no run is listed with the reason.
A run is recognised by the files it writes:

- chords: ``config.json`` with ``songs`` (``trained.json`` once its training ended, ``evaluation/scores.json``
  once scored); chords cv: ``cv_progress.json`` (``cv_scores.json`` once every fold is scored), or of an older
  audiotrain, without it: ``cv_scores.json`` beside ``fold<k>/``;
- CLAP: ``config.json`` with ``model_source`` (``retrieval.json`` once scored); a cv of it or of the Trainer:
  ``folds.json`` and ``fold<k>/``;
- the Trainer (``create_trainer``): ``config.yaml`` (``history.json`` once ``train`` ended), or only
  checkpoints (``checkpoints/<name>/trainer_state.json``).

A recipe run whose ``config.json`` was deleted is unreadable (not a Trainer's run); a checkpoint lacking a
file loading reads (`damaged_checkpoints`) is noted. ``compare`` leaves out, naming why, a run it cannot read.

Status: ``running`` while a live process holds the run's lock (`audiotrain.train.checkpoint.live_claim_owner`:
a lock left by a dead process does not count), ``finished`` when its results are there, ``interrupted`` when a
stop signal saved an ``interrupted`` checkpoint (or training ended and its scoring did not), ``failed``
otherwise (an error or a kill ended it; nothing in the folder says which, but for a held-out evaluation that
raised: its trained.json's ``evaluation_failed`` gives the error, a CLAP run's ``evaluation_failed.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from audiotrain._file_names import stored_name
from audiotrain._files import CLAIM_FILE, check_regular_file, parse_json
from audiotrain._suggesting_parser import SuggestingParser
from audiotrain._text import byte_size, display_width, plural
from audiotrain._yaml import parse_yaml

STATUSES = ("finished", "interrupted", "running", "failed", "unknown", "unreadable")

#: The keys of one run in ``runs --json`` (documented in the README: keep them stable).
JSON_KEYS = (
    "name",
    "path",
    "recipe",
    "status",
    "reason",
    "when",
    "epochs",
    "folds",
    "score_name",
    "score",
    "scores",
    "build",
    "size_bytes",
)

#: Sort keys other than a score's name; those listed in `NEWEST_FIRST` sort from the largest value.
#: The scores a listing reads from a run's results, headline first: chords, CLAP, then any run's validation.
HEADLINE_SCORES = ("majmin", "root", "text_to_audio_R@1", "audio_to_text_R@1", "mAP@10", "val_loss")

SORT_FIELDS = ("name", "recipe", "status", "when", "epochs", "size", "score")
NEWEST_FIRST = ("when", "epochs", "size")


class RunReadError(ValueError):
    """A run record that cannot be read; the message names the file and why."""


@dataclasses.dataclass
class RunSummary:
    """One run folder as the listing shows it."""

    path: Path
    recipe: str | None = None
    status: str = "unknown"
    reason: str | None = None  # why unknown / unreadable / failed, in words
    when: float | None = None  # the newest record file's modification time (seconds since the epoch)
    epochs: int | None = None  # epochs trained (the furthest checkpoint's, else history.json's)
    folds: str | None = None  # cv runs: "scored/total"
    score_name: str | None = None
    scores: dict[str, float] = dataclasses.field(default_factory=dict)
    build: str | None = None  # versions.audiotrain of the run record
    size_bytes: int = 0
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)  # flattened config, for `compare`
    init_from: str | None = None  # the checkpoint a chords run started from (--init_from), for `compare`
    # What a recipe run trained on and with, beside its settings (the process count, device, BLAS threads and
    # package versions it resolved to): the weights follow them too, so `compare` shows where they differ.
    ran_on: dict[str, Any] = dataclasses.field(default_factory=dict)
    held_out: str | None = (
        None  # which songs a chords run was scored on (its data and test songs), for `compare`
    )

    @property
    def score(self) -> float | None:
        return self.scores.get(self.score_name) if self.score_name else None

    def to_json(self) -> dict[str, Any]:
        when = None
        if self.when is not None:
            when = datetime.datetime.fromtimestamp(self.when).astimezone().isoformat(timespec="seconds")
        values = {**dataclasses.asdict(self), "path": str(self.path), "name": self.path.name, "when": when}
        values["score"] = self.score
        return {key: values[key] for key in JSON_KEYS}


# -- reading a folder ---------------------------------------------------------------------------------------


def read_json(path: Path) -> Any:
    """The JSON in `path`, or `RunReadError` naming it (nesting too deep and huge numbers included; a FIFO, which
    a read would wait on for a writer forever, a device or a folder in its place too)."""
    check_regular_file(path, RunReadError)
    try:
        text = path.read_bytes()
    except OSError as error:
        raise RunReadError(f"{path}: cannot be read ({error.strerror or error})") from None
    return parse_json(text, path, RunReadError)


def optional_json(path: Path) -> Any:
    """`read_json` of a record a run may not have written yet (None when it is missing); each is a JSON
    object, and one that is not is a `RunReadError` naming it (read as one, a list was a raw
    AttributeError)."""
    record = read_json(path) if path.is_file() else None
    if record is not None and not isinstance(record, dict):
        raise RunReadError(f"{path}: holds a {type(record).__name__}, not a JSON object (a damaged record)")
    return record


def _object(value: Any) -> dict:
    """`value` where it is a JSON object, else an empty one: a field of a record edited by hand (pooled "x")
    is a detail the listing does without, not an AttributeError that stops it."""
    return value if isinstance(value, dict) else {}


def flattened(settings: Any, prefix: str = "") -> dict[str, Any]:
    """``{"model": {"d_model": 32}}`` as ``{"model.d_model": 32}`` (lists stay values). A text value is read
    as `stored_name` reads it: a path a run recorded in an ASCII locale (``chansons-\\udcc3\\udcbc``) is the one
    a UTF-8 locale recorded (``chansons-ü``), not a setting that differs."""
    if isinstance(settings, str):
        settings = stored_name(settings)
    if not isinstance(settings, dict):
        return {prefix: settings} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        flat.update(flattened(value, name) if isinstance(value, (dict, str)) and value else {name: value})
    return flat


def folder_size(folder: Path) -> int:
    """Bytes on disk below `folder`, each file once (``best`` and ``last`` may be hard links of one save)."""
    seen, total = set(), 0
    for where, _, files in os.walk(folder, onerror=lambda error: None):
        for name in files:
            try:
                info = os.lstat(os.path.join(where, name))
            except OSError:
                continue
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_size
    return total


def newest_time(paths: Iterable[Path]) -> float | None:
    times = [path.stat().st_mtime for path in paths if path.exists()]
    return max(times) if times else None


def checkpoint_folders(run: Path, checkpoint_dir: Any = None) -> Path:
    """Where the run's checkpoints are: its recorded ``checkpoint_dir`` where inside the run folder."""
    if isinstance(checkpoint_dir, str) and checkpoint_dir and not Path(checkpoint_dir).is_absolute():
        return run / checkpoint_dir
    return run / "checkpoints"


def progress_of(checkpoint: Path) -> dict | None:
    """How far the checkpoint folder's training was (``progress`` of its trainer_state.json), or None."""
    try:
        progress = read_json(checkpoint / "trainer_state.json")["progress"]
        return progress if isinstance(progress, dict) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def trained_epochs(checkpoints: Path) -> int | None:
    """The furthest epoch a checkpoint in `checkpoints` reached (its trainer_state.json's progress)."""
    epochs = []
    for name in ("last", "interrupted", "best"):
        with contextlib.suppress(KeyError, TypeError, ValueError):
            epochs.append(int((progress_of(checkpoints / name) or {})["epoch"]))
    return max(epochs) if epochs else None


def stopped_by_signal(checkpoints: Path) -> dict | None:
    """The progress of the ``interrupted`` checkpoint a stop signal saved, where the run trained no further
    (a resume that went on leaves it behind, with ``last`` past it); else None."""
    stopped = progress_of(checkpoints / "interrupted")
    if stopped is None:
        return None
    last = progress_of(checkpoints / "last") or {}
    went_on = (last.get("global_step") or 0) > (stopped.get("global_step") or 0)
    return None if went_on else stopped


#: The checkpoint folders a listing checks, and the files loading a model from one reads.
CHECKED_CHECKPOINTS = ("best", "last", "interrupted")
# (`audiotrain.train.checkpoint.MODEL_FILES`, not imported: the listing imports no MLX)
MODEL_FILES = ("model.safetensors", "trainer_state.json")


def damaged_checkpoints(checkpoints: Path) -> str | None:
    """Which of the run's checkpoint folders lack a file loading a model reads (deleted, a copy cut short), in
    words; None where each one there is whole. A checkpoint being saved (the Trainer's temporary folders
    beside it) is not looked at: only folders under their final names."""
    damaged = []
    for name in CHECKED_CHECKPOINTS:
        folder = checkpoints / name
        if folder.is_dir():
            missing = [file for file in MODEL_FILES if not (folder / file).is_file()]
            if missing:
                damaged.append(f"{checkpoints.name}/{name} lacks {' and '.join(missing)}")
                continue
            try:  # (a copy cut short leaves the file, truncated: a resume of it is refused)
                read_json(folder / "trainer_state.json")
            except RunReadError as error:
                damaged.append(f"{checkpoints.name}/{name}'s {str(error).removeprefix(str(folder) + '/')}")
    if not damaged:
        return None
    return f"{'; '.join(damaged)} (deleted, or a copy cut short): it cannot be loaded"


def note_damaged_checkpoints(summary: RunSummary, checkpoints: Path) -> None:
    """Add `damaged_checkpoints` to the run's note: its status says how its training ended, not that the
    model it left can still be loaded."""
    damaged = damaged_checkpoints(checkpoints)
    if damaged is not None and summary.status != "running":
        summary.reason = f"{summary.reason}; {damaged}" if summary.reason else damaged


def resume_of_failed(run_summary: RunSummary, checkpoints: Path) -> None:
    """Add to a failed recipe run's note the resume that goes on from its ``last`` checkpoint: a kill or an
    error in training leaves it, as resumable as a stop signal's ``interrupted`` one, and the note said only
    that the run "did not end". Where a kill between the two renames of its save left ``last`` missing, the
    resume of ``last`` loads the ``.last.prev-*`` it left
    (`audiotrain.train.checkpoint.resolve_checkpoint`)."""
    if run_summary.status != "failed":  # (first: a running run's save renames and deletes these folders)
        return
    last = checkpoints / "last"
    progress = progress_of(last)
    if progress is None and not last.exists():
        left = []
        for path in checkpoints.glob(".last.prev-*"):
            # One gone since the glob (a save's cleanup), or a dangling link: its stat's FileNotFoundError
            # listed the whole run as "unreadable".
            with contextlib.suppress(OSError):
                left.append((path.stat().st_mtime, path))
        progress = progress_of(max(left)[1]) if left else None  # (the newest)
    if progress is None:
        return
    resume = (
        f"resumable: --resume {last} (epoch {progress.get('epoch')}) with the same flags goes on"
        + _other_build_resume(run_summary.path, run_summary.build, f"--resume {last}")
    )
    run_summary.reason = f"{run_summary.reason}; {resume}" if run_summary.reason else resume


def saved_history(checkpoints: Path) -> dict[str, list] | None:
    """The ``val_loss`` column of the history the run's furthest checkpoint (``last``, ``interrupted``) saved
    (its trainer_state.json's ``history`` rows), or None: a run killed or stopped in training writes no
    history.json, and its best val_loss was listed as no score at all."""
    rows: list | None = None
    for name in ("last", "interrupted"):
        try:
            state = read_json(checkpoints / name / "trainer_state.json")
        except (OSError, ValueError):
            continue
        saved = _object(state).get("history")
        saved = _object(saved).get("rows")
        if isinstance(saved, list) and (rows is None or len(saved) > len(rows)):
            rows = saved
    if rows is None:
        return None
    return {"val_loss": [row.get("val_loss") for row in rows if isinstance(row, dict)]}


def best_of_history(history: Any, column: str, lower_is_better: bool = True) -> float | None:
    values = history.get(column) if isinstance(history, dict) else None
    finite = [v for v in values or [] if isinstance(v, (int, float)) and math.isfinite(v)]
    if not finite:
        return None
    return min(finite) if lower_is_better else max(finite)


def is_running(*folders: Path) -> str | None:
    """The live process that holds one of `folders` (a run folder or a checkpoint folder), in words."""
    # No claim file, no live fit: the usual case, without the ~0.2 s that importing mlx takes.
    # (os.path.exists: a folder closed to this user holds no fit it can see, as `live_claim_owner` says;
    # Path.exists raised PermissionError there.)
    claimed = [folder for folder in folders if os.path.exists(Path(folder) / CLAIM_FILE)]
    if not claimed:
        return None
    from audiotrain.train.checkpoint import live_claim_owner  # (imports mlx: only for a claimed folder)

    for folder in claimed:
        owner = live_claim_owner(folder)
        if owner is not None:
            return owner
    return None


def status_of(
    run: Path, checkpoints: Path, finished: bool, failed_why: str, build: str | None = None
) -> tuple[str, str | None]:
    """`build`: the audiotrain build a recipe run's config.json records (its settings are there)."""
    owner = is_running(run, checkpoints)
    if owner is not None:
        return "running", owner
    stopped = stopped_by_signal(checkpoints)
    if stopped is not None:  # (checked first: a chords run scores the weights a stop signal left, too)
        resume = f"--resume {checkpoints / 'interrupted'}"
        return "interrupted", (
            f"stopped by a signal in epoch {stopped.get('epoch')}: {resume} with the same flags goes on"
            + _other_build_resume(run, build, resume)
        )
    if finished:
        return "finished", None
    return "failed", failed_why


def _other_build_resume(run: Path, build: str | None, resume: str) -> str:
    """How a recipe run made by another audiotrain build than this one resumes with its own settings: after an
    upgrade, the same flags (a preset, a default) may give others, and the resume is refused."""
    from audiotrain._build import build_version

    if not build or build == build_version():
        return ""
    record = run / "config.json"
    return f" (a run of audiotrain {build}: --config {record} {resume} resumes it with its own settings)"


def scored_as_now(scores: Any, checkpoint: Path) -> bool:
    """Whether `scores` (a chords evaluation/scores.json) scored the weights `checkpoint` holds now: its
    ``scored`` record names a checkpoint of that name saved at the step `checkpoint` is at (one that cannot
    be read says nothing against it). A scores.json without the record (an older build) is taken as
    scoring it."""
    scored = scores.get("scored") if isinstance(scores, dict) else None
    if not isinstance(scored, dict):
        return True
    if Path(str(scored.get("checkpoint") or "")).name != checkpoint.name:
        return False
    progress = progress_of(checkpoint)
    return progress is None or progress.get("global_step") == scored.get("step")


def stale_scores(scores: Any, evaluates: str | None, checkpoints: Path) -> str | None:
    """Why a chords run's ``evaluation/scores.json`` is not of the weights its training ended or stopped with,
    in words; None where it is. A run stopped by a signal scores its stopped weights, and where a resume then
    trains on, that evaluation stays in ``evaluation/`` (the user's results: nothing moves it) until one of
    the resumed run replaces it; its ``scored`` record says which weights it scored (`scored_as_now`).
    `evaluates`: the name of the checkpoint the run evaluates where its training ended (`ended_with`), else
    None."""
    scored = scores.get("scored") if isinstance(scores, dict) else None
    if not isinstance(scored, dict):
        return None
    name = Path(str(scored.get("checkpoint") or "")).name
    if evaluates is not None:
        current = scored_as_now(scores, checkpoints / evaluates)
    else:  # training did not end: the scores are the run's where its newest state is a stop signal's
        current = bool(name) and stopped_by_signal(checkpoints) is not None
        current = current and scored_as_now(scores, checkpoints / name)
    if current:
        return None
    # scored["epoch"] counts the epochs done: "at epoch 2" read in history.json (from 0) was the next one.
    epochs = scored.get("epoch")
    trained = plural(epochs, "epoch") if isinstance(epochs, int) else f"{epochs} epochs"
    what = f"{checkpoints.name}/{name} saved after {trained}" if name else "no checkpoint of it"
    return f"evaluation/scores.json scored {what}, before this run trained on"


def ended_with(trained: Any, checkpoints: Path, num_epochs: Any) -> str | None:
    """The name of the checkpoint a chords run evaluates where its training ended: its trained.json's, or,
    where it was killed before writing one, ``best`` (``last`` without it) where ``last`` finished every
    epoch, as the recipe's --resume evaluates it; None where training did not end."""
    if trained is not None:
        return Path(str(trained.get("checkpoint"))).name if isinstance(trained, dict) else ""
    last = progress_of(checkpoints / "last") or {}
    if num_epochs is None or last.get("epoch") != num_epochs or last.get("batch_in_epoch"):
        return None
    return "best" if (checkpoints / "best").is_dir() else "last"


def unwritten_evaluation(evaluation: Path, scores: Any) -> str | None:
    """What a chords evaluation whose `scores` (its scores.json, written first: it lists the songs whose
    .lab come next, then scores.md) did not write yet, in words; None where nothing is missing, or where
    scores.json lists no songs (an older build's)."""
    per_song = scores.get("per_song") if isinstance(scores, dict) else None
    if not isinstance(per_song, dict):
        return None
    theirs = {e.get("file") for e in scores.get("not_written") or [] if isinstance(e, dict)}
    wanted = [f"{song}.lab" for song in per_song if isinstance(song, str) and f"{song}.lab" not in theirs]
    missing = [name for name in (*wanted, "scores.md") if not (evaluation / name).is_file()]
    if not missing:
        return None
    return ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")


def read_chords_run(run: Path, record: dict, summary: RunSummary) -> None:
    config = record.get("config") or {}
    checkpoints = checkpoint_folders(run, config.get("checkpoint_dir"))
    trained = optional_json(run / "trained.json")
    scores = optional_json(run / "evaluation" / "scores.json")
    history = optional_json(run / "history.json")
    evaluates = ended_with(trained, checkpoints, config.get("num_epochs"))
    stale = None if scores is None else stale_scores(scores, evaluates, checkpoints)
    if stale is not None:  # (scores of other weights: as if there were none)
        scores = None
    pooled = _object((scores or {}).get("pooled"))
    # The demo's songs are named alike (song_000) whatever their settings: those settings tell them apart.
    source = _object(config.get("data"))
    source = source.get("data_dir") or {k: v for k, v in source.items() if k.startswith("demo_")}
    test_songs = sorted(map(str, _object(record.get("songs")).get("test") or []))
    summary.held_out = json.dumps([source, test_songs], sort_keys=True, default=repr)
    summary.scores = {k: pooled[k] for k in ("majmin", "root") if isinstance(pooled.get(k), (int, float))}
    val_loss = best_of_history(history if history is not None else saved_history(checkpoints), "val_loss")
    if val_loss is not None:
        summary.scores["val_loss"] = val_loss
    summary.score_name = next((k for k in ("majmin", "val_loss") if k in summary.scores), None)
    summary.epochs = trained_epochs(checkpoints) or (len(history.get("epoch") or []) if history else None)
    # trained.json is written as training ends; a build from before it wrote none: its training ended where
    # it was scored, or where `last` finished every epoch. A build that records what it scored writes
    # trained.json: its scores without one are a stopped run's (the recipe scores the weights it stopped with).
    unrecorded_scores = scores is not None and not isinstance((scores or {}).get("scored"), dict)
    ended = trained is not None or unrecorded_scores or summary.epochs == config.get("num_epochs")
    has_test_songs = bool(_object(record.get("songs")).get("test"))
    cut_short = unwritten_evaluation(run / "evaluation", scores)
    summary.status, summary.reason = status_of(
        run,
        checkpoints,
        finished=ended and ((scores is not None and not cut_short) or not has_test_songs),
        failed_why="no trained.json: its training did not end (an error or a kill stopped it)",
        build=summary.build,
    )
    if cut_short and summary.status == "failed" and ended:
        summary.status = "interrupted"
        summary.reason = (
            f"trained, its held-out evaluation cut short (evaluation/ lacks {cut_short}): --resume "
            f"{checkpoints / 'last'} with the same flags scores it"
        )
    failed_evaluation = trained.get("evaluation_failed") if isinstance(trained, dict) else None
    if summary.status == "failed" and ended and stale is None and isinstance(failed_evaluation, str):
        # (its resume evaluates the same weights: a model that diverged fails it the same way)
        summary.reason = (
            f"trained, its held-out evaluation failed: {failed_evaluation.strip()} (where the cause lies outside "
            f"the model, its songs or a disk, --resume {checkpoints / 'last'} with the same flags scores it "
            "once that is fixed)"
        )
    elif summary.status == "failed" and ended:  # killed after training, before its scores
        summary.status = "interrupted"
        summary.reason = (
            f"trained, not scored ({stale or 'no evaluation/scores.json'}): --resume {checkpoints / 'last'} "
            "with the same flags scores it"
        )
    elif stale is not None and summary.status in ("failed", "interrupted"):
        summary.reason = f"{summary.reason}; {stale}"
    if not ended:
        resume_of_failed(summary, checkpoints)
    summary.when = newest_time(
        [run / "config.json", run / "trained.json", run / "history.json", run / "evaluation" / "scores.json"]
    )
    note_damaged_checkpoints(summary, checkpoints)


def read_clap_run(run: Path, record: dict, summary: RunSummary) -> None:
    checkpoints = checkpoint_folders(run)
    retrieval = optional_json(run / "retrieval.json")
    history = optional_json(run / "history.json")
    after = _object((retrieval or {}).get("after"))
    keys = ("text_to_audio_R@1", "audio_to_text_R@1", "mAP@10")
    summary.scores = {k: after[k] for k in keys if isinstance(after.get(k), (int, float))}
    summary.score_name = "text_to_audio_R@1" if summary.scores else None
    # The clips its scores were taken over (its evaluation clips): compared runs scored on others say so.
    scored = (record.get("clips") or {}).get("eval") if isinstance(record.get("clips"), dict) else None
    if isinstance(scored, list):
        summary.held_out = json.dumps(["clap", record.get("data_folder"), sorted(map(str, scored))])
    summary.epochs = trained_epochs(checkpoints) or (len(history.get("epoch") or []) if history else None)
    summary.status, summary.reason = status_of(
        run,
        checkpoints,
        finished=retrieval is not None,
        failed_why="no retrieval.json: the run ended before its scores (an error or a kill stopped it)",
        build=summary.build,
    )
    try:  # (the recipe's record of an error after training; a damaged one says nothing)
        failed = optional_json(run / "evaluation_failed.json")
    except RunReadError:
        failed = None
    error = failed.get("error") if isinstance(failed, dict) else None
    if summary.status == "failed" and history is not None and isinstance(error, str):
        # (its resume evaluates the same weights: an error of the model or its clips fails it the same way)
        summary.reason = (
            f"trained, its evaluation after training failed: {error.strip()} (where the cause lies outside "
            f"the model, its clips or a disk, --resume {checkpoints / 'last'} with the same flags scores and "
            "exports it once that is fixed)"
        )
    elif summary.status == "failed" and history is not None:  # (history.json: written as training ended)
        summary.status = "interrupted"
        summary.reason = (
            f"trained, not scored (no retrieval.json): --resume {checkpoints / 'last'} with the same flags "
            "scores and exports it"
        )
    elif summary.status == "failed":  # (killed or stopped by an error in training)
        resume_of_failed(summary, checkpoints)
    summary.when = newest_time([run / "config.json", run / "history.json", run / "retrieval.json"])
    note_damaged_checkpoints(summary, checkpoints)


def read_trainer_run(run: Path, summary: RunSummary) -> None:
    """A `create_trainer` run (config.yaml, history.json at the end) or a bare Trainer root (checkpoints/)."""
    checkpoints = checkpoint_folders(run)
    if (run / "config.yaml").is_file():
        try:
            text = (run / "config.yaml").read_text(encoding="utf-8-sig")
        except (OSError, ValueError) as error:
            raise RunReadError(f"{run / 'config.yaml'}: cannot be read ({error})") from None
        config = parse_yaml(
            text, run / "config.yaml", RunReadError
        )  # (aliases expanding to billions refused)
        if not isinstance(config, (dict, type(None))):
            raise RunReadError(f"{run / 'config.yaml'}: holds a {type(config).__name__}, not settings")
        settings = {k: v for k, v in (config or {}).items() if k not in ("versions", "builds")}
        summary.settings = flattened(settings)  # (not what wrote it: `RECORD_ENTRIES`)
    history = optional_json(run / "history.json")
    summary.epochs = trained_epochs(checkpoints) or (len(history.get("epoch") or []) if history else None)
    with contextlib.suppress(OSError, ValueError, AttributeError):  # (the build its checkpoints record)
        state = read_json(checkpoints / "last" / "trainer_state.json")
        summary.build = state.get("versions", {}).get("audiotrain")
    val_loss = best_of_history(history if history is not None else saved_history(checkpoints), "val_loss")
    summary.scores = {} if val_loss is None else {"val_loss": val_loss}
    summary.score_name = "val_loss" if val_loss is not None else None
    summary.status, summary.reason = status_of(
        run,
        checkpoints,
        finished=history is not None,
        failed_why="no history.json: train() did not end (an error or a kill stopped it)",
    )
    if summary.status == "failed" and not (run / "config.yaml").is_file():
        summary.status = "unknown"  # a bare Trainer root: the Trainer alone writes no record of its end
        summary.reason = "Trainer checkpoints without create_trainer's config.yaml: its end is not recorded"
    summary.when = newest_time([run / "config.yaml", run / "history.json", checkpoints / "last"])
    note_damaged_checkpoints(summary, checkpoints)


def planned_folds(record: Any) -> int | None:
    """The length of a cv record's ``folds`` list (``folds.json``, ``cv_scores.json``), or None."""
    folds = record.get("folds") if isinstance(record, dict) else None
    return len(folds) if isinstance(folds, list) else None


def read_cv_run(run: Path, summary: RunSummary) -> None:
    """A cross-validation: chords' (cv_progress.json), CLAP's or the Trainer's (folds.json); fold<k>/ each."""
    from audiotrain.cross_validation import fold_folders  # (imports numpy: only when a cv run is read)

    progress = optional_json(run / "cv_progress.json")
    cv_scores = optional_json(run / "cv_scores.json")
    fold_runs = fold_folders(run)
    folds = [read_run(fold) for fold in fold_runs]
    first = folds[0] if folds else None
    summary.recipe = f"{'chords' if progress is not None else (first.recipe if first else 'unknown')} cv"
    if progress is not None:
        summary.settings = flattened(progress.get("config") or {})
        total, done = progress.get("folds"), len(progress.get("done") or {})
    else:
        summary.settings = first.settings if first else {}
        # How many folds the cv planned: its scores' list, else folds.json's (a fold not begun has no folder).
        total = planned_folds(cv_scores)
        plan = optional_json(run / "folds.json")
        total = planned_folds(plan) if total is None else total
        total = len(fold_runs) if total is None else total
        done = sum(1 for fold in folds if fold.status == "finished")
        if isinstance(plan, dict) and plan.get("seed") is not None:
            summary.settings = {**summary.settings, "cv.seed": plan["seed"]}  # (train_with_cv's own seed=)
    # The fold count and the fold seed make the cv what it is, but no fold's config records them: two cvs
    # that differ only there were compared as "the same in every run". (A cv whose folds record no settings
    # stays unrecorded: `comparison_text` says it was not compared.)
    if summary.settings:
        summary.settings = {**summary.settings, "cv.folds": total}
    summary.folds = f"{done}/{total}"
    mean = _object((cv_scores or {}).get("mean"))
    scores = {k: v for k, v in mean.items() if isinstance(v, (int, float)) and math.isfinite(v)}
    # The single runs' headline scores where the cv has them (a Trainer cv's metrics are the module's own).
    headline = {k: v for k, v in scores.items() if k in HEADLINE_SCORES}
    summary.scores = headline or scores
    summary.score_name = next((k for k in HEADLINE_SCORES if k in summary.scores), next(iter(scores), None))
    if first is not None:
        summary.build = first.build
    owner = is_running(run, *fold_runs, *(fold / "checkpoints" for fold in fold_runs))
    if owner is not None:
        summary.status, summary.reason = "running", owner
    elif cv_scores is not None:
        summary.status = "finished"
    else:
        unfinished = [fold for fold in folds if fold.status != "finished"]
        summary.status = unfinished[0].status if unfinished else "interrupted"
        summary.status = "interrupted" if summary.status == "finished" else summary.status
        # (chords' alone; its folds are --folds, not read from the run, its settings the run's command line)
        go_on = (
            f": chords cv --resume {run} --folds {total} goes on, with the flags and --config the run was "
            "started with"
            if progress is not None
            else ""
        )
        summary.reason = f"{done} of {total} folds finished, no cv_scores.json{go_on}"
    summary.when = newest_time([run / "cv_progress.json", run / "folds.json", run / "cv_scores.json"])


#: Files only a recipe run (chords, CLAP) writes beside its config.json; a `create_trainer` run writes none.
RECIPE_RECORDS = ("trained.json", "evaluation", "retrieval.json")


def _older_chords_cv(run: Path) -> bool:
    """A chords cv of an audiotrain from before ``cv_progress.json`` (2026-11-26): its ``cv_scores.json``
    beside ``fold<k>/`` run folders, which `read_cv_run` reads as it reads a cv without a progress record."""
    if not (run / "cv_scores.json").is_file():
        return False
    from audiotrain.cross_validation import fold_folders  # (imports numpy: only for such a folder)

    return bool(fold_folders(run))


def read_run(run: Path) -> RunSummary:
    """What `run` holds, as one `RunSummary`; an unreadable or unknown folder says why (never raises)."""
    summary = RunSummary(run)
    try:
        os.scandir(run).close()
    except PermissionError as error:  # (the folder's, not cv_progress.json's: the first file tried)
        summary.status = "unreadable"
        summary.reason = (
            f"{run}: {error.strerror or error}: another user's folder, made under a umask such as 077? Its "
            f"owner can share it: chmod -R go+rX {run}"
        )
        return summary
    except OSError:  # (a file, or gone: the reading below says so)
        pass
    try:
        summary.size_bytes = folder_size(run)
        if (run / "cv_progress.json").is_file() or (run / "folds.json").is_file() or _older_chords_cv(run):
            read_cv_run(run, summary)
        elif (run / "config.json").exists():  # (a FIFO or folder in its place is named by `read_json`)
            record = read_json(run / "config.json")
            if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
                raise RunReadError(f'{run / "config.json"}: holds no "config" object (not a run record)')
            summary.settings = flattened(record["config"])
            summary.build = _object(record.get("versions")).get("audiotrain")
            summary.ran_on = ran_on(record)
            started = record.get("init_from")
            if isinstance(started, dict) and started.get("checkpoint"):
                summary.init_from = str(started["checkpoint"])
            if "songs" in record:
                summary.recipe = "chords"
                read_chords_run(run, record, summary)
            elif "model_source" in record:
                summary.recipe = "clap"
                read_clap_run(run, record, summary)
            else:
                summary.reason = (
                    "config.json is no chords or CLAP run record (neither songs nor model_source)"
                )
        elif not (run / "config.yaml").is_file() and any((run / name).exists() for name in RECIPE_RECORDS):
            # (a recipe run whose config.json was deleted: its checkpoints alone read as a Trainer's)
            found = ", ".join(name for name in RECIPE_RECORDS if (run / name).exists())
            raise RunReadError(
                f"{run / 'config.json'}: missing, though the folder holds a recipe run's records ({found}): "
                "its kind and settings are not known"
            )
        elif (run / "config.yaml").is_file() or any((run / "checkpoints").glob("*/trainer_state.json")):
            summary.recipe = "trainer"
            read_trainer_run(run, summary)
        else:
            summary.reason = (
                "holds no run record (config.json, config.yaml, cv_progress.json or checkpoints/)"
            )
            if (run / "scores.json").is_file():  # (chords score -o, or evaluate -o: scores of no run)
                summary.reason += (
                    f"; {run / 'scores.json'} is an evaluate or score -o output, not a run: "
                    "score's --against (evaluate's, of checkpoints) sets two side by side"
                )
    except RunReadError as error:
        summary.status, summary.reason = "unreadable", str(error)
    except OSError as error:
        summary.status, summary.reason = "unreadable", f"{error.filename or run}: {error.strerror or error}"
    except RecursionError:  # (a record nested deeper than its reading here can follow)
        summary.status, summary.reason = "unreadable", f"{run}: a file of it is nested too deeply"
    if summary.recipe is None and summary.status in ("unknown", "unreadable"):
        # A run claims its folder before it writes config.json (and --overwrite removes the earlier run's
        # records first): a live claim says what the folder is better than the records not there yet.
        owner = is_running(run)
        if owner is not None:
            summary.status, summary.reason = "running", owner
    return summary


def list_runs(folders: Iterable[Path]) -> list[RunSummary]:
    """The runs in each of `folders`: the folder itself where it is a run, else each folder inside it."""
    runs = []
    for folder in folders:
        itself = read_run(folder)
        if itself.recipe is not None or itself.status in ("unreadable", "running"):
            runs.append(itself)
            continue
        try:
            # (not the hidden ones: a home folder's .cache and .config are no runs, and a student's, made
            # under umask 077, was listed as an unreadable run whose owner could share it with chmod -R)
            inside = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError as error:
            runs.append(
                RunSummary(folder, status="unreadable", reason=f"{folder}: {error.strerror or error}")
            )
            continue
        runs.extend(read_run(path) for path in inside)
    return runs


# -- sorting and printing -----------------------------------------------------------------------------------


def sort_runs(runs: list[RunSummary], key: str) -> list[RunSummary]:
    """`runs` by `key`: a field of `SORT_FIELDS` or a score's name. Scores sort best first (losses lowest
    first), `NEWEST_FIRST` fields largest first, the rest alphabetically; runs without the value go last."""

    def value(run: RunSummary) -> Any:
        if key == "name":
            return run.path.name
        if key == "size":
            return run.size_bytes
        if key == "score":
            return run.score
        if key in SORT_FIELDS:
            return getattr(run, key)
        return run.scores.get(key)

    have = [run for run in runs if value(run) is not None]
    missing = [run for run in runs if value(run) is None]
    if key == "score":  # each run's own headline: scores best first, then losses lowest first
        # (a loss and a score do not compare, and a loss sorted as a score put the worst run first)
        losses = [run for run in have if "loss" in (run.score_name or "")]
        scores = [run for run in have if run not in losses]
        return sorted(scores, key=value, reverse=True) + sorted(losses, key=value) + missing
    descending = key in NEWEST_FIRST or (key not in SORT_FIELDS and "loss" not in key)
    return sorted(have, key=value, reverse=descending) + missing


def score_text(value: float | None, name: str | None) -> str:
    if value is None or name is None:
        return "-"
    return f"{name} {value:.4g}" if "loss" in name else f"{name} {value:.3f}"


def format_table(rows: list[list[str]]) -> str:
    """`rows` in columns, padded by the columns each cell takes on stdout (a name in CJK takes 2 a
    character; under an ASCII locale it is printed escaped), not by its number of characters."""
    encoding, errors = getattr(sys.stdout, "encoding", None), getattr(sys.stdout, "errors", None) or "strict"
    cell_widths = [[display_width(cell, encoding, errors) for cell in row] for row in rows]
    widths = [max(row[i] for row in cell_widths) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell + " " * (w - cw) for cell, cw, w in zip(row, row_widths, widths)).rstrip()
        for row, row_widths in zip(rows, cell_widths)
    )


def shown_names(runs: list[RunSummary]) -> list[str]:
    """Each run's folder name, or its path as given where two of the runs shown share that name (`exp1/m1`
    and `exp2/m1`, two cv runs' `fold0`): their rows and columns would otherwise be told apart by nothing."""
    names = [run.path.name for run in runs]
    repeated = {name for name in names if names.count(name) > 1}
    return [str(run.path) if name in repeated else name for run, name in zip(runs, names)]


def listing_text(runs: list[RunSummary]) -> str:
    rows = [["name", "recipe", "status", "when", "epochs", "score", "size"]]
    names = shown_names(runs)
    for run, name in zip(runs, names):
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(run.when)) if run.when else "-"
        epochs = f"{run.folds} folds" if run.folds else ("-" if run.epochs is None else str(run.epochs))
        rows.append(
            [
                name,
                run.recipe or "-",
                run.status,
                when,
                epochs,
                score_text(run.score, run.score_name),
                byte_size(run.size_bytes),
            ]
        )
    notes = [
        f"  {name}: {run.reason}" for run, name in zip(runs, names) if run.reason and run.status != "running"
    ]
    running = [f"  {name}: {run.reason}" for run, name in zip(runs, names) if run.status == "running"]
    text = format_table(rows)
    if running:
        text += "\nrunning:\n" + "\n".join(running)
    if notes:
        text += "\nnotes:\n" + "\n".join(notes)
    return text


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if value == "":
        return '""'
    return json.dumps(value) if isinstance(value, (list, dict, bool)) else str(value)


#: The facts of a run record (config.json) beside its settings that change its numbers, as `ran_on` flattens
#: them: the build is a row of its own (``build``).
RAN_ON_KEYS = ("processes_used", "device_used", "versions", "packages")


def ran_on(record: dict[str, Any]) -> dict[str, Any]:
    """What the run of `record` (a recipe's config.json) trained in, on and with, flattened with dots
    (``processes_used``, ``device_used.kind``, ``versions.mlx``, ``versions.blas_threads``)."""
    facts = {key: record[key] for key in RAN_ON_KEYS if key in record}
    flat = flattened(facts)
    flat.pop("versions.audiotrain", None)  # (the build row)
    flat.pop("versions.platform", None)  # (the kernel's build string: it changes with every update)
    return flat


def comparison(runs: list[RunSummary]) -> dict[str, Any]:
    """The settings whose values differ between `runs` (flattened keys; absent as None) and their scores."""
    differing = _differing([run.settings for run in runs])
    score_names = sorted(set().union(*(run.scores for run in runs)))
    return {
        "runs": [str(run.path) for run in runs],
        "settings": differing,
        "scores": {name: [run.scores.get(name) for run in runs] for name in score_names},
        "status": [run.status for run in runs],
        "build": [run.build for run in runs],
        "init_from": [run.init_from for run in runs],
        "ran_on": _differing([run.ran_on for run in runs]),
        "not_compared": {},
    }


def _differing(values: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The keys whose values differ between the flattened dicts `values`, each with its value in each (a key
    one lacks reads as null, as a newer setting's absence in an older record)."""
    keys = sorted(set().union(*values))
    return {
        key: [each.get(key) for each in values]
        for key in keys
        if len({json.dumps(each.get(key), default=repr, sort_keys=True) for each in values}) > 1
    }


def comparison_text(runs: list[RunSummary], compared: dict[str, Any]) -> str:
    header = ["", *shown_names(runs)]
    rows = [header, ["status", *compared["status"]], ["build", *(cell(b) for b in compared["build"])]]
    if any(compared["init_from"]):  # (a fine-tuned run and one from random weights differ most in this)
        rows.append(["init_from", *map(cell, compared["init_from"])])
    rows += [[f"score {name}", *map(cell, values)] for name, values in compared["scores"].items()]
    if compared["settings"]:
        rows += [[key, *map(cell, values)] for key, values in compared["settings"].items()]
    # (not settings, but the weights follow them: the same settings in another count or device differ)
    rows += [[f"ran on {key}", *map(cell, values)] for key, values in compared["ran_on"].items()]
    text = format_table(rows)
    held_out = {run.held_out for run in runs if run.held_out is not None and run.scores}
    if len(held_out) > 1 and all(run.recipe == "clap" for run in runs if run.held_out is not None):
        text += (  # (a CLAP run's evaluation clips: a random hold-out, or a split folder since 30f588bc)
            "\nscores: each run's own evaluation clips, not the same clips in these runs; to score each on "
            "the same clips: python -m audiotrain.recipes.clap evaluate --model RUN/hf_model --data FOLDER "
            "(--split NAME for one split)"
        )
    elif len(held_out) > 1:  # (side by side, the scores of other songs read as the change one run made)
        text += (
            "\nscores: each run's own held-out songs, not the same songs in these runs; to score two on the "
            "same songs: python -m audiotrain.recipes.chords evaluate --checkpoint RUN --data SONGS "
            "--against OTHER_RUN"
        )
    # A folder of the Trainer's checkpoints alone records no settings: nothing of it was compared, which
    # "the same in every run" would hide (its fit's max_epochs may well differ).
    unrecorded = [name for run, name in zip(runs, header[1:]) if not run.settings]
    if unrecorded:
        text += (
            f"\nsettings: not recorded in {', '.join(unrecorded)} (no config.json, cv_progress.json or "
            "create_trainer's config.yaml there): not compared"
        )
    elif not compared["settings"]:
        text += "\nsettings: the same in every run"
    if compared["not_compared"]:
        text += "\nnot compared:\n" + "\n".join(
            f"  {path}: {reason}" for path, reason in compared["not_compared"].items()
        )
    return text


# -- command line -------------------------------------------------------------------------------------------


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = SuggestingParser(
        prog=prog,
        description="List the run folders in FOLDER (default runs/): recipe, status, when, epochs, headline "
        "score and size. `compare RUN RUN ...` shows the settings that differ and the scores side by side. "
        "Nothing is written.",
        allow_abbrev=False,
    )
    parser.add_argument("folders", nargs="*", type=Path, metavar="FOLDER", help="default: runs")
    parser.add_argument(
        "--sort",
        default="name",
        metavar="KEY",
        help=f"{', '.join(SORT_FIELDS)} or a score's name (majmin, root, val_loss, text_to_audio_R@1, ...); "
        "scores best first (losses lowest first; `score` lists the runs headlined by a score, then those "
        "headlined by a loss), when/epochs/size largest first (default: name)",
    )
    parser.add_argument(
        "--status",
        metavar="STATUS",
        help=f"list only the runs of these statuses, comma-separated ({', '.join(STATUSES)}): "
        "`--status interrupted,failed` for the runs to resume",
    )
    parser.add_argument("--json", action="store_true", help="one JSON list, keys as the README documents")
    return parser


def build_compare_parser(prog: str) -> argparse.ArgumentParser:
    parser = SuggestingParser(
        prog=f"{prog} compare",
        description="The settings (config, flattened keys) that differ between runs, the checkpoint a run "
        "started from (init_from), and their scores; a run that cannot be read is named and left out.",
        allow_abbrev=False,
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN")
    parser.add_argument("--json", action="store_true", help="one JSON object: runs, settings, scores, ...")
    return parser


def unreachable(path: Path) -> str | None:
    """Why `path` cannot be reached where a folder on its way is another user's, closed to this one (a home
    folder of mode 700, a runs/ made under umask 077), naming that folder and how its owner opens the way;
    else None. pathlib's is_dir() ended the listing in a traceback there."""
    try:
        os.stat(path)
        return None
    except PermissionError as error:
        cause = error.strerror or error
    except OSError:
        return None
    closed = path.parent
    for place in [*reversed(path.parents), path]:
        try:
            os.lstat(place)
        except PermissionError:
            closed = place.parent
            break
        except OSError:
            break
    way = [closed, *(p for p in reversed(path.parents) if p.is_relative_to(closed) and p != closed)]
    return (
        f"cannot look into {closed} ({cause}): another user's folder, made under a umask such as 077? Its "
        f"owner can share it: chmod go+x {' '.join(map(str, way))} && chmod -R go+rX {path}"
    )


def main(argv: list[str], prog: str = "python -m audiotrain runs", out: Callable[[str], None] = print) -> int:
    if argv[:1] == ["compare"]:
        return compare_main(argv[1:], prog, out)
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    folders = args.folders or [Path("runs")]
    for folder in folders:
        if closed := unreachable(folder):
            parser.error(f"{folder}: {closed}")
        if not folder.is_dir():
            why = "is a file, not a folder" if folder.exists() else "does not exist"
            parser.error(f"{folder} {why}; give the folder that holds your run folders (default: runs)")
    wanted = None
    if args.status is not None:
        wanted = {name.strip() for name in args.status.split(",") if name.strip()}
        if not wanted or wanted - set(STATUSES):
            unknown = ", ".join(sorted(wanted - set(STATUSES))) or repr(args.status)
            parser.error(f"--status {unknown}: no such status; expected one or more of {', '.join(STATUSES)}")
    runs = list_runs(folders)
    # (the sort keys are those of every run found: a --sort valid for these folders stays valid whatever
    # --status leaves)
    known_scores = set(HEADLINE_SCORES).union(*(run.scores for run in runs))
    if args.sort not in SORT_FIELDS and args.sort not in known_scores:
        choices = ", ".join([*SORT_FIELDS, *sorted(known_scores)])
        parser.error(f"--sort {args.sort}: no such field or score in these runs; expected one of {choices}")
    runs = sort_runs(runs, args.sort)
    if wanted is not None:
        runs = [run for run in runs if run.status in wanted]
    if args.json:
        out(json.dumps([run.to_json() for run in runs], indent=1))
    elif not runs and wanted is not None:
        out(f"no {' or '.join(sorted(wanted))} runs in {', '.join(map(str, folders))}")
    elif not runs:
        out(f"no run folders in {', '.join(map(str, folders))}")
    else:
        out(listing_text(runs))
    return 0


def compare_main(argv: list[str], prog: str, out: Callable[[str], None]) -> int:
    parser = build_compare_parser(prog)
    args = parser.parse_args(argv)
    if len(args.runs) < 2:
        parser.error("give two runs or more to compare")
    runs, not_compared = [], {}
    for path in args.runs:
        if closed := unreachable(path):
            not_compared[str(path)] = closed
            continue
        if not path.is_dir():
            parser.error(f"{path} {'is a file, not a folder' if path.exists() else 'does not exist'}")
        run = read_run(path)
        if run.recipe is None or run.status == "unreadable":
            # (the others are compared, as `runs` lists the rest beside an unreadable run)
            not_compared[str(path)] = run.reason
        else:
            runs.append(run)
    if len(runs) < 2:
        why = "; ".join(f"{path}: not a run to compare: {reason}" for path, reason in not_compared.items())
        # (two or more were given: asking for two would read as if the command line were short of one)
        parser.error(f"{why}; {len(runs)} of the {len(args.runs)} runs given can be compared: two are needed")
    compared = comparison(runs)
    compared["not_compared"] = not_compared
    out(json.dumps(compared, indent=1, default=repr) if args.json else comparison_text(runs, compared))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
