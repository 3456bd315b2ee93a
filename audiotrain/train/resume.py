"""The checks `fit` makes on a checkpoint's state (`trainer_state.json`, as `checkpoint.read_state` reads it)
before it resumes from it: what refuses the resume, what it warns of, and the seed the resumed run keeps;
and around a resume, in `fit`: which checkpoint `ckpt_path` names ("last" before any save), a fit without
one that carries an earlier fit's counters, and an epoch-based schedule re-anchored at the resumed epoch.

Each check takes the checkpoint `folder` (for the messages), its `state` dict and what this run has now;
the Trainer loads the state itself (`Trainer._restore`, `RunState`). A warning's `stacklevel` counts from
here through `Trainer._restore` (the checks on the state) and `fit` to the user's call, so each is called
from `_restore` or `fit` directly.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audiotrain._text import plural
from audiotrain.train.checkpoint import CheckpointError
from audiotrain.train.schedulers import IntervalSchedule
from audiotrain.train.state import Progress

if TYPE_CHECKING:
    from audiotrain.train.trainer import Trainer


def refuse_weights_only(folder: Path, state: dict[str, Any]) -> None:
    """A checkpoint saved with the weights alone has no optimizer or training state to resume from."""
    if state.get("weights_only"):
        raise CheckpointError(
            f"{folder} holds the model's weights only (saved with ModelCheckpoint(save_weights_only="
            "True) or save_checkpoint(..., weights_only=True)): no optimizer or training state, so fit "
            "cannot resume from it. Load its weights with TrainModule.load_from_checkpoint("
            f"{str(folder)!r}) or validate/test(ckpt_path=...), or resume from a checkpoint saved "
            "without save_weights_only"
        )


def check_accumulation(folder: Path, state: dict[str, Any], accumulate_grad_batches: int) -> None:
    """A checkpoint saved with another `accumulate_grad_batches`: refused in the middle of a window
    (its accumulated gradients are a mean over the old window's size), accepted with a warning at a
    window boundary, as Lightning accepts it."""
    saved = state.get("config", {}).get("trainer", {}).get("accumulate_grad_batches")
    if saved is None or saved == accumulate_grad_batches:
        return
    open_window = int(state.get("progress", {}).get("micro_batches", 0))
    if open_window:
        raise CheckpointError(
            f"{folder} was saved with accumulate_grad_batches={saved} in the middle of an accumulation "
            f"window ({open_window} of its {saved} micro-batches done), this Trainer has "
            f"accumulate_grad_batches={accumulate_grad_batches}: resume with "
            f"accumulate_grad_batches={saved} (the accumulated gradients are part of the state), or "
            "from a checkpoint saved at a window boundary"
        )
    now = accumulate_grad_batches
    warnings.warn(
        f"{folder} was saved with accumulate_grad_batches={saved}, this Trainer has {now}: from here on "
        f"an optimizer step takes {now} batch{'es' if now > 1 else ''} (max_steps and a step-based "
        "learning-rate schedule count the new steps)",
        UserWarning,
        stacklevel=4,
    )


def global_batch(world_size: int, train_loader: Any) -> dict[str, Any]:
    """The processes and the training loader's batch size (per process) a checkpoint is trained with."""
    size = getattr(train_loader, "batch_size", None)
    return {"world_size": world_size, "batch_size": size if isinstance(size, int) else None}


def check_global_batch(folder: Path, state: dict[str, Any], now: dict[str, Any]) -> None:
    """Warn when a resume trains with another global batch (processes x batch size; `now` as `global_batch`
    gives it) than its checkpoint: a resume command run without its launcher (`batch_size` is per process)
    halves it silently. Called on rank 0 alone (one warning for the job)."""
    saved = state.get("global_batch")
    if not isinstance(saved, dict):
        return
    ranks, size = saved.get("world_size"), saved.get("batch_size")
    if not all(isinstance(v, int) for v in (ranks, size, now["batch_size"])):
        return  # (a loader without a batch_size: nothing to compare)
    before, after = ranks * size, now["world_size"] * now["batch_size"]
    if before == after:
        return
    processes = plural(ranks, "process", "processes")
    warnings.warn(
        f"{folder} was trained with a global batch of {before} ({processes} x batch_size {size}); "
        f"this run's is {after} ({now['world_size']} x {now['batch_size']}), so it does not continue that "
        f"run exactly (steps per epoch, the gradient noise, a step-based schedule). To keep it, train "
        f"with {processes} of {size} samples each (a run started under a launcher resumes under "
        f"it again: batch_size is per process there), or with one process of {before}",
        UserWarning,
        stacklevel=4,
    )


def checkpoint_seed(
    folder: Path, state: dict[str, Any], seed: int, seed_given: bool
) -> tuple[int | None, str]:
    """The seed a resumed run keeps where it differs from this Trainer's `seed` (`seed_given`: set by
    `Trainer(seed=...)`), and the warning that says so; (None, "") where they agree or the checkpoint records
    none. A resumed run goes on with the seed it started with: its random state comes from the checkpoint,
    and so do the shuffle seed of the loaders that take the Trainer's and the seed recorded in
    `trainer.seed` and in the checkpoints from here on. Another seed given for the resume is said to be
    ignored, rather than recorded for a run it never seeded."""
    saved = state.get("config", {}).get("trainer", {}).get("seed")
    if not isinstance(saved, int) or isinstance(saved, bool) or saved < 0 or saved == seed:
        return None, ""
    given = "Trainer(seed=...)" if seed_given else "seed_everything / the default"
    return saved, (
        f"{folder} was trained with seed {saved}; this Trainer's is {seed} ({given}). A resumed "
        f"run goes on as it was seeded, so seed {saved} is kept: the random state comes from the "
        f"checkpoint, and the data order of loaders without a seed of their own, trainer.seed and "
        f"later checkpoints use {saved}. To train with seed {seed}, start a new run (no "
        "ckpt_path)"
    )


def warn_of_carried_counters(trainer: Trainer, model: Any, ckpt_path: Any) -> None:
    """A fit without `ckpt_path` of a `trainer` that trained before goes on from its epoch and step (as in
    Lightning), with a new optimizer and generators seeded anew. Said where that is likely not what is
    meant: `model` is another object than the one trained (it takes over the counters and `last`), or
    the last fit was interrupted or failed (this one goes on from it, but not exactly)."""
    trained = trainer.global_step or trainer.progress.total_batches
    if ckpt_path is not None or trainer._pending_ckpt or not trained or not trainer.is_global_zero:
        return
    where = f"epoch {trainer.current_epoch}, global step {trainer.global_step}"
    if trainer._fitted_module is None or trainer._fitted_module() is not model:
        warnings.warn(
            f"Trainer.fit: this Trainer already trained another module object (up to {where}); "
            f"this {type(model).__name__} takes over that run's counters (max_epochs and max_steps count "
            "from there, and so do its checkpoints' epoch and step), and its saves replace that run's "
            f"`last`{_kept_bests(trainer)}. For a new run, make a new Trainer",
            UserWarning,
            stacklevel=3,
        )
    elif trainer.interrupted:
        path = trainer.interrupted_checkpoint
        exact = (
            f"pass ckpt_path=trainer.interrupted_checkpoint ({path})"
            if path is not None
            else "pass ckpt_path= the newest intact checkpoint (the 'Save aborted' line named it)"
            if trainer.enable_checkpointing
            else "fit with enable_checkpointing=True, which saves a checkpoint when a fit is stopped"
        )
        warnings.warn(
            f"Trainer.fit: the last fit of this Trainer was interrupted at {where}; this one goes on "
            "from there with a new optimizer (configure_optimizers: its moments and step count start "
            "afresh) and freshly seeded random generators, so it does not continue that run exactly. To "
            f"continue it exactly, {exact}",
            UserWarning,
            stacklevel=3,
        )
    elif trainer.state.fn == "fit" and trainer.state.status == "failed":
        # An error, not a stop (a notebook's fit cell run again once it is fixed): mid-epoch, with the model
        # as that fit trained it, and no checkpoint of that moment to continue exactly from.
        warnings.warn(
            f"Trainer.fit: the last fit of this Trainer failed at {where}; this one goes on from there, "
            "with the model as that fit left it, a new optimizer (configure_optimizers: its moments and "
            "step count start afresh) and freshly seeded random generators. For a fresh run, make a new "
            "Trainer (and model)",
            UserWarning,
            stacklevel=3,
        )


def checkpoint_to_resume(trainer: Trainer, ckpt_path: Any) -> Any:
    """`fit`'s `ckpt_path`. "last" where nothing was saved yet trains from scratch with a warning, as
    Lightning's does (the "resume if there is something" idiom); a checkpoint on disk that is not a
    `last` is still refused by name (resuming it could go back epochs)."""
    if str(ckpt_path) == "last":
        first = trainer.checkpoint_callback
        nothing = first is None or not (first.last_model_path or first.newest_on_disk())
        if nothing and not trainer.callbacks.on_exception_saves():
            warnings.warn(
                'Trainer.fit(ckpt_path="last"): nothing is saved yet, so training starts from scratch '
                "(as in Lightning)",
                UserWarning,
                stacklevel=3,
            )
            return None
    return trainer.callbacks.checkpoint_path(ckpt_path)


def anchor_epoch_schedule(optimizer: Any, progress: Progress, accumulate_grad_batches: int) -> None:
    """An `lr_scheduler` stepped per epoch derives the epoch from the optimizer's step and this fit's
    updates per epoch; resumed, it counts from the epoch the checkpoint is in, so that epochs of another
    length than the saved run's (more data, other ranks or batch size) keep Lightning's epoch index."""
    schedule = getattr(optimizer, "_schedulers", {}).get("learning_rate")
    if not isinstance(schedule, IntervalSchedule) or not schedule.needs_epoch_length:
        return
    closed = progress.batch_in_epoch - progress.micro_batches  # (a short last window is one update)
    updates_this_epoch = -(-closed // accumulate_grad_batches)
    step = int(optimizer.state["step"].item())
    optimizer._schedulers["learning_rate"] = schedule.anchored(step - updates_this_epoch, progress.epoch)


def anchor_schedule_at_epoch_start(optimizer: Any, progress: Progress) -> bool:
    """Re-anchor a per-epoch `lr_scheduler` at the start of an epoch whose first update is not where the
    fixed updates-per-epoch count puts it: the epoch before ended early (the module's
    `on_train_batch_start` returned -1, or the loader gave fewer batches than its length). Lightning
    counts epochs, so its schedule steps at each end however short. True when the schedule changed (the
    compiled step, traced over the old one, is then rebuilt)."""
    schedule = getattr(optimizer, "_schedulers", {}).get("learning_rate")
    if not isinstance(schedule, IntervalSchedule) or not schedule.needs_epoch_length:
        return False
    if progress.batch_in_epoch or "step" not in optimizer.state:  # (resumed mid-epoch: anchored then)
        return False
    step = int(optimizer.state["step"].item())  # (a host read once an epoch)
    since = schedule._updates_tried(step) - schedule.first_step
    per_epoch = schedule.steps_per_epoch
    if since % per_epoch == 0 and schedule.first_epoch + since // per_epoch == progress.epoch:
        return False
    optimizer._schedulers["learning_rate"] = schedule.anchored(step, progress.epoch)
    return True


def resize_epoch_schedule(optimizer: Any, progress: Progress, batches_per_epoch: int) -> bool:
    """At the start of an epoch whose training loader was rebuilt (reload_dataloaders_every_n_epochs) with
    another length: a per-epoch `lr_scheduler` derives the epoch from the optimizer step and the batches an
    epoch, so it counts the new length from here (else a longer epoch would step its rate mid-epoch). True
    when the schedule changed (the compiled step is then rebuilt)."""
    schedule = getattr(optimizer, "_schedulers", {}).get("learning_rate")
    if not isinstance(schedule, IntervalSchedule) or not schedule.needs_epoch_length:
        return False
    if schedule.batches_per_epoch == batches_per_epoch:
        return False
    step = int(optimizer.state["step"].item()) if "step" in optimizer.state else 0
    anchored = schedule.anchored(step, progress.epoch)
    optimizer._schedulers["learning_rate"] = dataclasses.replace(
        anchored, batches_per_epoch=batches_per_epoch
    )
    return True


__all__ = [
    "anchor_epoch_schedule",
    "anchor_schedule_at_epoch_start",
    "check_accumulation",
    "check_global_batch",
    "checkpoint_seed",
    "checkpoint_to_resume",
    "global_batch",
    "refuse_weights_only",
    "resize_epoch_schedule",
    "warn_of_carried_counters",
]


def _kept_bests(trainer: Trainer) -> str:
    """What the callbacks of `trainer` keep of the model trained before (its best score and checkpoint, the
    patience count), which the next model is compared with: "; ..." clauses for the warning, or "". Without
    them, an active-learning round's `ckpt_path="best"` silently loads an earlier round's model."""
    from audiotrain.train.callbacks.early_stopping import EarlyStopping
    from audiotrain.train.callbacks.model_checkpoint import ModelCheckpoint

    said = []
    for callback in trainer.callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.monitor and callback.best_model_path:
            score = callback.best_model_score
            shown = f"{callback.monitor}={float(score):.4g}, " if score is not None else ""
            said.append(
                f"ModelCheckpoint(monitor={callback.monitor!r}) keeps the earlier model's best ({shown}"
                f"{callback.best_model_path}) as best_model_path and ckpt_path='best' until this model "
                "beats it"
            )
        elif isinstance(callback, EarlyStopping) and callback.best_score is not None:
            said.append(
                f"EarlyStopping(monitor={callback.monitor!r}) keeps its best and patience count from the "
                "earlier model"
            )
    return "".join(f"; {clause}" for clause in said)
