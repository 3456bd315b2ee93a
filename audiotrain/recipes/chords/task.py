"""`ChordTask`: the chord model and its loss as a `TrainModule` for the shared Trainer.

A batch is a dict of `mx.array`:

    features    [B, T, input_bins] float32   CQT/mel frames (log magnitude): n_bins, then the bass view's bins
    chord_type  [B, T] int32             vocabulary chord-type index per frame
    root, bass  [B, T] int32             pitch class per frame, -1 on N and on X without a root
    mask        [B, T] (optional)        1 on real frames, 0 on padding

`compute_loss` returns the weighted loss and, as metrics, the per-head losses (`chord_type_loss`,
`root_loss`, `bass_note_loss`) and frame accuracies as fractions (`chord_type_acc`, `root_acc`,
`bass_note_acc`); the Trainer prefixes them with `train_` / `val_` in the history. Each accuracy comes
with the frames it counts (`head_accuracies`), so its epoch mean is over those frames: the root and bass
accuracies leave out the frames without a root (N, a bare X) however they fall into batches, as
`scores.json` does. In validation and test the head losses come with their frames too, and the stage's
loss is their weighted sum (`evaluation_means`).
"""

from __future__ import annotations

import contextvars
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from audiotrain.chords.decode import DecodeConfig
from audiotrain.chords.vocabulary import check_vocabulary_dict
from audiotrain.distributed import collectives
from audiotrain.models.chord_loss import HEADS, ChordRecognitionLoss, head_accuracies
from audiotrain.models.chord_model import ChordModelConfig, ChordRecognitionModel
from audiotrain.recipes.chords.config import FEATURES_VERSION, MAX_WINDOW_FRAMES, ChordFeatureConfig
from audiotrain.recipes.chords.model_checkpoint import not_a_chord_checkpoint, resolve_model_checkpoint
from audiotrain.recipes.chords.own_model import MODEL_CLASS_KEY, model_class_name
from audiotrain.recipes.config_cli import SettingError, check_setting, shown
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.class_methods import classmethod_of_the_class
from audiotrain.train.module import OptimizerConfig, TrainModule
from audiotrain.train.schedulers import OneCycleScheduler, WarmupCosineScheduler

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim

#: Key under which the task stores what `predict` needs in a checkpoint's module state.
CHECKPOINT_KEY = "chord_recognition"
#: How the checkpoint's run computed val_loss (`evaluation_means`): the sum of each head's mean over the
#: frames it counts. Builds before 2026-11-30 (bf5d67be) weighed each batch's head losses by all its frames,
#: and wrote no such entry: a resume of their checkpoints says so (train.py's `_val_loss_change_note`).
VAL_LOSS_KEY, VAL_LOSS_PER_HEAD = "val_loss", "per_head_frames"
#: The entries of that record, besides the model config, that `predict` reads (`predict.checkpoint_entries`).
PREDICT_ENTRIES = ("features", "features_version", "vocabulary", "decode", "window_frames", "pitch_shifts")
REQUIRED_BATCH_KEYS = ("features", "chord_type", "root", "bass")
#: What a refused ``--resume`` (or ``Trainer.fit(ckpt_path=...)``) of another model or features says to do.
PYTHON_RESUME_REMEDY = (
    "build the task with the checkpoint's model and feature settings, as "
    "ChordTask.load_from_checkpoint(CHECKPOINT) does"
)
#: True while `ChordTask.load_from_checkpoint` loads (its `on_load_checkpoint` then compares no settings).
_LOADING_FROM_CHECKPOINT: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "chord_task_loading_from_checkpoint", default=False
)


def make_schedule(
    scheduler: str,
    learning_rate: float,
    num_epochs: int,
    warmup_epochs: float,
    steps_per_epoch: int,
) -> tuple[Any, str]:
    """The per-step learning-rate schedule of the recipe and its name.

    "cosine": linear warmup over `warmup_epochs`, then cosine decay to `learning_rate / 100` at the end; a
    warmup longer than the run ends with the run, below the peak (as torch's linear warmup would).
    "onecycle": 1cycle from `learning_rate / 25` up to `learning_rate` over `warmup_epochs` (at least one
    step, at most 90% of training), then annealed down.
    "constant": the cosine's linear warmup, then `learning_rate` to the end (as the CLAP recipe's and
    `create_trainer`'s constant); without warmup steps (or at a rate of 0) the number `learning_rate` itself.
    """
    total = max(1, num_epochs * steps_per_epoch)
    warmup = int(round(warmup_epochs * steps_per_epoch))
    if scheduler == "cosine":
        # A warmup longer than the run is kept as set (as the guide's and torch's linear warmup): the rate
        # rises by learning_rate / warmup per step and the run ends before the peak. Squeezing it into the
        # run reached the peak at its end, another schedule than the one asked for.
        return WarmupCosineScheduler(
            learning_rate, warmup, max(total, warmup), min_lr=learning_rate * 1e-2
        ), "warmup_cosine"
    if scheduler == "constant":
        # (a rate of 0, which ChordTask keeps for a task that must not move its weights, warms up to 0: the
        # number itself, as the schedules refuse a peak of 0)
        if warmup == 0 or learning_rate == 0:
            return learning_rate, "constant"
        return WarmupCosineScheduler(learning_rate, warmup, warmup, min_lr=learning_rate), "warmup_constant"
    warmup = min(total, warmup)
    if scheduler == "onecycle":
        if total < 3:
            raise ValueError(f"scheduler 'onecycle' needs at least 3 optimizer steps, training has {total}")
        pct = min(max(warmup / total, 2.0 / total), 0.9)
        return OneCycleScheduler(max_lr=learning_rate, total_steps=total, pct_start=pct), "one_cycle"
    raise ValueError(f"scheduler must be 'cosine', 'onecycle' or 'constant', got {scheduler!r}")


def _check_optim_settings(
    learning_rate: Any,
    weight_decay: Any,
    scheduler: Any,
    num_epochs: Any,
    warmup_epochs: Any,
    steps_per_epoch: Any,
) -> None:
    """Refuse, naming the keyword, what the recipe's flags refuse: a negative rate (gradient ascent with
    ``scheduler=None``), a negative weight decay or warmup, no epochs or steps, or an unknown scheduler.
    They were cast with float()/int() and trained on, or failed only in `configure_optimizers`."""
    try:
        # 0 is kept: a task that must not move its weights (evaluated only); the schedules refuse it.
        check_setting("learning_rate", learning_rate, at_least=0)
        check_setting("weight_decay", weight_decay, at_least=0)
        check_setting("num_epochs", num_epochs, integer=True, above=0)
        check_setting("warmup_epochs", warmup_epochs, at_least=0)
        check_setting("steps_per_epoch", steps_per_epoch, integer=True, above=0)
    except SettingError as err:
        raise ValueError(
            f"ChordTask({err.name}=...) must be {err.expected}, got {shown(err.value)}"
        ) from None
    if scheduler not in SCHEDULERS:
        raise ValueError(f"ChordTask(scheduler=...) must be one of {SCHEDULERS}, got {shown(scheduler)}")


#: What `ChordTask(scheduler=...)` takes: `make_schedule`'s schedules, or None for a constant rate.
SCHEDULERS = ("cosine", "onecycle", None)


class ChordTask(TrainModule):
    """Train a `ChordRecognitionModel` with `ChordRecognitionLoss` and AdamW.

    `ChordTask.load_from_checkpoint(path)` rebuilds a task from a checkpoint of the recipe (or a run folder,
    or an ``export``): its model config, and as ``extra_state`` what `predict` reads, so the checkpoints
    a fine-tuning from Python writes serve ``predict``, ``evaluate`` and ``--init_from`` as the recipe's do.

    Args:
        model_config: the model's sizes (a `ChordModelConfig`, or its dict as config.json holds it).
        loss: the loss (weights, label smoothing, class weights).
        learning_rate, weight_decay: AdamW settings (peak rate of the schedule).
        bias_correction: AdamW's bias correction, as torch.optim.AdamW (off: MLX's default, which the
            recipe's learning rate was tuned with; its early updates are larger, 3.2x at the first step).
        scheduler: "cosine" or "onecycle" (see `make_schedule`); None for a constant rate (after the warmup
            of `warmup_epochs`, if any).
        num_epochs, warmup_epochs, steps_per_epoch: length of the schedule in optimizer steps.
        extra_state: JSON-serialisable entries stored with every checkpoint under `CHECKPOINT_KEY`
            (feature config, vocabulary, decoding settings: what `predict` needs besides the weights).
    """

    def __init__(
        self,
        model_config: ChordModelConfig | Mapping[str, Any],
        loss: ChordRecognitionLoss | None = None,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.01,
        bias_correction: bool = False,
        scheduler: str | None = "cosine",
        num_epochs: int = 1,
        warmup_epochs: float = 0.0,
        steps_per_epoch: int = 1,
        extra_state: dict[str, Any] | None = None,
    ):
        super().__init__()
        _check_optim_settings(
            learning_rate, weight_decay, scheduler, num_epochs, warmup_epochs, steps_per_epoch
        )
        self.model = ChordRecognitionModel(model_config_from(model_config, "ChordTask(model_config=...)"))
        # Plain attributes (not submodules): the loss holds constant arrays (class weights) that must not
        # become trainable parameters.
        object.__setattr__(self, "loss_fn", loss if loss is not None else ChordRecognitionLoss())
        object.__setattr__(
            self,
            "optim_settings",
            {
                "learning_rate": float(learning_rate),
                "weight_decay": float(weight_decay),
                "bias_correction": bool(bias_correction),
                "scheduler": scheduler,
                "num_epochs": int(num_epochs),
                "warmup_epochs": float(warmup_epochs),
                "steps_per_epoch": int(steps_per_epoch),
            },
        )
        object.__setattr__(self, "extra_state", dict(extra_state or {}))
        _check_model_reads_its_features(self.model.config, self.extra_state.get("features"))

    @property
    def learning_rate(self) -> float:
        """The peak learning rate (`optim_settings["learning_rate"]`), under the name Lightning's
        `Tuner.lr_find` looks for: its suggestion is written here, and the next `configure_optimizers`
        builds the schedule from it."""
        return self.optim_settings["learning_rate"]

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        s = self.optim_settings
        names = ("weight_decay", "scheduler", "num_epochs", "warmup_epochs", "steps_per_epoch")
        _check_optim_settings(value, *(s[name] for name in names))
        s["learning_rate"] = float(value)

    def __call__(self, features: mx.array, mask: mx.array | None = None) -> dict[str, mx.array]:
        return self.model(features, mask)

    def predict_step(self, batch: Any, batch_idx: Any = 0) -> Any:
        """What `Trainer.predict` returns for a batch: the model's frame logits (the dict of heads
        `__call__` returns, ``[B, T, classes]`` each) on the batch's ``"features"``, with its ``"mask"``
        where it has one: the batches `song_loaders` gives, or ``{"features": frames[None]}`` of
        `ChordPredictor.song_features`. (TrainModule's default passed the whole dict to the model, which
        failed.) A batch without ``"features"`` goes to that default."""
        if isinstance(batch, Mapping) and "features" in batch:
            return self(batch["features"], batch.get("mask"))
        return super().predict_step(batch, batch_idx)

    def compute_loss(self, batch: dict[str, mx.array]) -> tuple[mx.array, dict[str, mx.array]]:
        if not isinstance(batch, dict) or any(k not in batch for k in REQUIRED_BATCH_KEYS):
            have = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
            raise KeyError(
                f"ChordTask batches need keys {list(REQUIRED_BATCH_KEYS)} (+ optional 'mask'), got {have}"
            )
        mask = batch.get("mask")
        outputs = self.model(batch["features"], mask)
        loss, parts = self.loss_fn(outputs, batch, mask)
        accuracies = head_accuracies(outputs, batch, mask)
        if not self.training:
            scale = None
            if collectives.world_size() > 1:
                # Evaluation under data parallel: each rank's loss is its sum over the ranks' mean frame count
                # (what averaging the ranks' gradients needs), while the Trainer weighs each rank's values by
                # its own frames (`batch_size`); scaled by mean(frames) / frames they average to the loss over
                # every rank's frames, as one process computes it (ranks hold unequal validation frames).
                frames = mx.sum(
                    mx.ones(batch["chord_type"].shape) if mask is None else mask.astype(mx.float32)
                )
                scale = collectives.mean_across_ranks(frames) / mx.maximum(frames, 1e-12)
                loss = loss * scale
            if self._steps_are_chord_tasks():
                parts = self._parts_over_their_frames(parts, accuracies, batch, mask, scale)
            elif scale is not None:  # an override reads super()'s parts: arrays, as in training
                parts = {name: value * scale for name, value in parts.items()}
        return loss, {**parts, **accuracies}

    def _steps_are_chord_tasks(self) -> bool:
        """Whether no subclass step reads `compute_loss`'s parts: an override (`loss + 0.1 *
        metrics["root_loss"]`) gets arrays, as in training; a head's (loss, frames) failed its validation."""
        steps = ("compute_loss", "training_step", "validation_step", "test_step")
        return all(getattr(type(self), step) is getattr(ChordTask, step) for step in steps)

    def _parts_over_their_frames(
        self,
        parts: dict[str, mx.array],
        accuracies: dict[str, tuple],
        batch: dict[str, mx.array],
        mask: mx.array | None,
        scale: mx.array | None,
    ) -> dict[str, tuple[mx.array, mx.array] | mx.array]:
        """Evaluation: each head's loss with the frames it is a mean over (those its accuracy counts; for a
        class-weighted chord type, their target weights), so that its epoch mean is over those frames:
        weighted by the batch's frames, the root loss of a window of N with one chord weighed as much as a
        window of chords, and val_root_loss (and val_loss) changed with how windows fell into batches.
        Under data parallel a part is its sum over the ranks' mean count (`masked_mean`): made this rank's
        own mean, which the Trainer weighs by its count. A part of the caller's loss function (a plain
        function, or a part `ChordRecognitionLoss` does not return) stays weighted by the batch's frames
        (`scale`d as the loss is): nothing says what it is a mean over (it failed, 'KeyError')."""
        if not isinstance(self.loss_fn, ChordRecognitionLoss):
            return parts if scale is None else {name: value * scale for name, value in parts.items()}
        # (The counts' very arrays: MLX's compiler fails on one expression of the batch returned twice.)
        weights = {f"{name}_loss": accuracies[f"{name}_acc"][1] for *_, name in HEADS}
        weights["chord_loss"] = weights["chord_type_loss"]
        if self.loss_fn.class_weights is not None:
            weights["chord_type_loss"] = self.loss_fn.class_weighted_frames(batch, mask)
        counted = [name for name in parts if name in weights]
        ranks_mean = {}
        if scale is not None and counted:
            # One collective for every count (one per part made a validation batch's 5 all_sums 9).
            means = collectives.mean_across_ranks(mx.stack([weights[n].astype(mx.float32) for n in counted]))
            ranks_mean = {name: means[i] for i, name in enumerate(counted)}
        per_frames = {}
        for name, value in parts.items():
            count = weights.get(name)
            if count is None:
                per_frames[name] = value if scale is None else value * scale
                continue
            if scale is not None:
                value = value * ranks_mean[name] / mx.maximum(count, 1e-12)
            per_frames[name] = (value, count)
        return per_frames

    def evaluation_means(self, stage: str, means: dict[str, float]) -> dict[str, float]:
        """The loss of a validation or test as the loss function sums its heads' epoch means (each over its
        own frames): the mean of the per-batch totals would weigh a batch's root loss by all its frames."""
        if not self._loss_is_the_loss_functions_total():
            return means  # (a subclass's own term would be left out: the mean of its totals is the figure)
        prefix = f"{stage}_"
        parts = {name[len(prefix) :]: value for name, value in means.items() if name.startswith(prefix)}
        if f"{prefix}loss" in means and all(f"{name}_loss" in parts for *_, name in HEADS):
            means = {**means, f"{prefix}loss": self.loss_fn.total_of(parts)}
        return means

    def _loss_is_the_loss_functions_total(self) -> bool:
        """Whether `compute_loss`'s loss is the total `ChordRecognitionLoss.total_of` sums: not where a
        subclass computes the loss its own way (adds a regulariser to it) or its loss function's `__call__`
        does (without a `total_of` of its own): their val_loss left that out."""
        loss_type = type(self.loss_fn)
        own_total = isinstance(self.loss_fn, ChordRecognitionLoss) and (
            loss_type.__call__ is ChordRecognitionLoss.__call__
            or loss_type.total_of is not ChordRecognitionLoss.total_of
        )
        return self._steps_are_chord_tasks() and own_total

    def batch_size(self, batch: dict[str, mx.array]) -> int | mx.array:
        """Frames in the batch (real frames when masked): validation means are per frame, not per window.
        Counted on the device (a scalar array the Trainer sums there): `.item()` here would wait for the
        step in flight on every batch."""
        mask = batch.get("mask")
        if mask is None:
            return int(batch["chord_type"].size)
        return mx.sum(mask.astype(mx.float32))  # (the frames the data-parallel loss scale counts)

    def configure_optimizers(self) -> OptimizerConfig:
        s = self.optim_settings
        lr, name = make_schedule(
            s["scheduler"] or "constant",
            s["learning_rate"],
            s["num_epochs"],
            s["warmup_epochs"],
            s["steps_per_epoch"],
        )
        return OptimizerConfig(
            optim.AdamW(
                learning_rate=lr, weight_decay=s["weight_decay"], bias_correction=s["bias_correction"]
            ),
            lr_schedule_name=name,
        )

    @classmethod_of_the_class
    def load_from_checkpoint(
        cls,
        checkpoint_path: str | os.PathLike,
        map_location: Any = None,
        strict: bool | None = None,
        **overrides: Any,
    ) -> ChordTask:
        """The task of a chord checkpoint (or run folder: its best checkpoint, else its last), with its
        weights. Built from the checkpoint's own record: its model config, and as ``extra_state`` the
        features, vocabulary, decoding and window length that `predict` reads (so the checkpoints this task
        writes serve ``predict``, ``evaluate`` and ``--init_from``). Keywords go to `__init__` and win
        (``learning_rate=``, ``num_epochs=``, ``model_config=`` for another architecture with
        ``strict=False``: the weights whose names match load, and a warning lists the others, as in
        Lightning). A checkpoint holding ``hyper_parameters`` (a subclass that saved them) is rebuilt from
        those, as `TrainModule.load_from_checkpoint` does. A checkpoint with no chord model settings anywhere
        (another module's, a CLAP run's) is refused as `ChordPredictor.from_checkpoint` refuses it."""
        if "model_config" in overrides:  # a bad one is the caller's keyword, not the checkpoint's record
            where = f"{cls.__name__}.load_from_checkpoint(model_config=...)"
            overrides["model_config"] = model_config_from(overrides["model_config"], where)
        if os.fspath(checkpoint_path) != "":  # (the base class explains an empty path)
            folder = resolve_model_checkpoint(checkpoint_path)
            state = ckpt.read_model_state(folder)
            stored = stored_settings(folder, state) or {}
            hyper_parameters = state.get("hyper_parameters") or {}
            if not any("model_config" in where for where in (overrides, stored, hyper_parameters)):
                # Not a chord checkpoint (another module's, a CLAP run's): said as predict and --init_from say
                # it, not as a model_config to add to ChordTask.__init__'s saved hyperparameters.
                raise not_a_chord_checkpoint(folder, state, "no chord model settings", CHECKPOINT_KEY)
            if not state.get("hyper_parameters"):
                if "model_config" in stored:
                    overrides.setdefault("model_config", stored["model_config"])
                record = {k: stored[k] for k in PREDICT_ENTRIES if k in stored}
                if record:
                    overrides.setdefault("extra_state", record)
            checkpoint_path = folder
        loading = _LOADING_FROM_CHECKPOINT.set(True)
        try:
            return super().load_from_checkpoint(checkpoint_path, map_location, strict, **overrides)
        finally:
            _LOADING_FROM_CHECKPOINT.reset(loading)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {
            "model_config": self.model.config.to_dict(),
            VAL_LOSS_KEY: VAL_LOSS_PER_HEAD,
            **self.extra_state,
        }
        own_class = model_class_name(self.model)
        if own_class is not None:  # (so that predict refuses it by its class, not array by array)
            checkpoint[CHECKPOINT_KEY][MODEL_CLASS_KEY] = own_class

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        stored = checkpoint.get(CHECKPOINT_KEY)
        if stored is None:
            return
        if not isinstance(stored, dict):  # (the Trainer names the file)
            raise ValueError(f"module_state.{CHECKPOINT_KEY} must be an object, got {type(stored).__name__}")
        if _LOADING_FROM_CHECKPOINT.get():
            # The task was built from this record, or from the settings its caller chose instead (another
            # architecture with strict=False, another dropout), as in Lightning; the weights' names and
            # shapes were checked as they loaded. The settings are compared where a run is resumed (or
            # weights loaded) into a task built elsewhere.
            return
        # Features first: the model's input width (n_bins, bass_view_bins) follows them and has no flag of its
        # own, so a difference there is named as the --features.* setting a user can pass.
        check_stored_features(stored.get("features"), self.extra_state.get("features"), PYTHON_RESUME_REMEDY)
        check_stored_model(stored.get("model_config"), self.model.config, PYTHON_RESUME_REMEDY)


def model_config_from(value: ChordModelConfig | Mapping[str, Any], where: str) -> ChordModelConfig:
    """`value` as a `ChordModelConfig`: itself, or built from its dict (as config.json and checkpoints hold
    it); anything else, or a dict with an unknown or bad field, is refused naming `where`."""
    if isinstance(value, ChordModelConfig):
        return value
    if isinstance(value, nn.Module):  # (a Module is a dict: its layers were named as unknown fields)
        raise TypeError(
            f"{where}: expected a ChordModelConfig or its dict, got a model ({type(value).__name__}); a "
            "model of your own goes in task.model once the task is made (ChordTask builds the recipe's), or "
            "to the guide's Trainer(model=...) (audiotrain.recipes.chords.trainer), which checks its heads"
        )
    if not isinstance(value, Mapping):
        raise TypeError(f"{where}: expected a ChordModelConfig or its dict, got {type(value).__name__}")
    try:
        return ChordModelConfig.from_dict(dict(value))
    except (TypeError, ValueError) as err:
        raise type(err)(f"{where}: {err}") from None


def command_line_resume_remedy(stored: dict[str, Any], what: str) -> str:
    """What a refused ``--resume`` says to do, `what` being "--model.*" or "--features.*": repeat the
    checkpoint's settings, or, for a run started from another checkpoint's weights (`stored`, the
    checkpoint's record, says ``init_from``), drop what changes them: its resume takes them from the
    checkpoint (`init_from.model_settings_checkpoint`), so only a --preset, --config entry or flag differs."""
    started = stored.get("init_from")
    checkpoint = started.get("checkpoint") if isinstance(started, dict) else None
    if isinstance(checkpoint, str):
        return (
            f"this run started with --init_from {checkpoint}, and its resume takes the model and feature "
            "settings from the checkpoint it resumes: drop the --preset, --config entries or flags that "
            "change them"
        )
    return f"resume with the checkpoint's {what} settings"


def check_stored_model(stored: dict[str, Any] | None, model: ChordModelConfig, remedy: str) -> None:
    """Refuse to resume a checkpoint (its stored model config `stored`) with another `model` config, naming
    each setting that differs and then `remedy` (what to do). None (a checkpoint without one) passes."""
    if stored is None:
        return
    saved = ChordModelConfig.from_stored(stored)
    changed = [f.name for f in fields(ChordModelConfig) if getattr(saved, f.name) != getattr(model, f.name)]
    if changed:
        raise ValueError(
            "the checkpoint's model differs from this run's in "
            + ", ".join(
                f"model.{k} ({getattr(saved, k)!r} there, {getattr(model, k)!r} here)" for k in changed
            )
            + f"; {remedy}"
        )


def check_stored_features(
    stored: dict[str, Any] | None, features: dict[str, Any] | None, remedy: str
) -> None:
    """Refuse to resume a checkpoint (its stored feature settings `stored`) with other `features`: its weights
    were trained on those features, and resuming on others would train on inputs the model never saw.
    Either being None (a checkpoint or task without them) passes; `remedy` says what to do."""
    if stored is None or features is None:
        return
    stored = asdict(ChordFeatureConfig.from_stored(stored))
    changed, kind_hint = ChordFeatureConfig.differences(stored, features)
    if changed:
        raise ValueError(
            "the checkpoint's features differ from this run's in "
            + ", ".join(
                f"features.{k} ({stored.get(k)!r} there, {features.get(k)!r} here"
                + (f": {kind_hint})" if k == "kind" else ")")
                for k in changed
            )
            + f"; {remedy}"
        )


def stored_settings(folder: Path, state: dict[str, Any]) -> dict[str, Any] | None:
    """What the task stored in checkpoint `folder` (`on_save_checkpoint`; `state` is its trainer state), or
    None when it stored nothing. Each part `predict` and `--resume` read is checked here, so that a
    hand-edited one is named with its file and field (not met later as an AttributeError, nor reported as if
    the user had typed it as a flag): the model, feature and decoding settings, the vocabulary and the window
    length."""
    stored = state.get("module_state", {}).get(CHECKPOINT_KEY)  # (read_state checked module_state's type)
    if stored is None:
        return None
    where = f"{folder / ckpt.STATE_FILE}: module_state.{CHECKPOINT_KEY}"
    if not isinstance(stored, dict):
        raise ckpt.CheckpointError(f"{where} must be an object, got {type(stored).__name__}")
    for name in ("model_config", "features", "decode", "vocabulary"):
        if name in stored and not isinstance(stored[name], dict):
            raise ckpt.CheckpointError(f"{where}.{name} must be an object, got {type(stored[name]).__name__}")
    window = stored.get("window_frames", 96)
    if isinstance(window, bool) or not isinstance(window, int) or not 2 <= window <= MAX_WINDOW_FRAMES:
        raise ckpt.CheckpointError(
            f"{where}.window_frames must be an int from 2 to {MAX_WINDOW_FRAMES}, got {window!r}"
        )
    _check_features_version(stored.get("features_version", 1), where)
    settings_classes = {
        "model_config": ChordModelConfig,
        "features": ChordFeatureConfig,
        "decode": DecodeConfig,
    }
    for name, settings_class in settings_classes.items():
        _check_stored_types(stored.get(name, {}), settings_class, f"{where}.{name}")
    checks = {
        "model_config": ChordModelConfig.from_stored,
        "features": ChordFeatureConfig.from_stored,
        "decode": lambda values: DecodeConfig(**values),
        "vocabulary": check_vocabulary_dict,
    }
    built = {}
    for name, check in checks.items():
        if name in stored:
            try:
                built[name] = check(stored[name])
            except (KeyError, TypeError, ValueError) as err:
                raise ckpt.CheckpointError(f"{where}.{name}: {err}") from None
    if "model_config" in built and "features" in built:
        _check_model_reads_features(built["model_config"], built["features"], stored["features"], where)
    return stored


def _check_features_version(version: Any, where: str) -> None:
    """Refuse a record of features computed by a newer feature code than this audiotrain's: the settings are
    the same, but the model would read other features than it trained on. A record without the entry (written
    before it was kept) is of version 1 or 2, which differ only in the last bits (`FEATURES_VERSION`)."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ckpt.CheckpointError(
            f"{where}.features_version must be an integer of at least 1, got {version!r}"
        )
    if version > FEATURES_VERSION:
        raise ckpt.CheckpointError(
            f"{where}.features_version is {version}: its model was trained on features a newer audiotrain "
            f"computes (this one computes version {FEATURES_VERSION} from the same settings); "
            "upgrade audiotrain"
        )


def _check_stored_types(values: dict[str, Any], settings_class: type, where: str) -> None:
    """Refuse a stored setting of another JSON type than its field's, naming `where`.field: a bool stored as
    the string "false" is true to Python, and a number stored as a string met a raw TypeError later."""
    for setting in fields(settings_class):
        if setting.name not in values:
            continue
        value = values[setting.name]
        declared = setting.type if isinstance(setting.type, str) else setting.type.__name__
        if declared == "bool":
            fits, expected = isinstance(value, bool), "true or false"
        elif declared == "int":  # a bool is an int to Python, but no count
            fits, expected = isinstance(value, int) and not isinstance(value, bool), "an integer"
        elif declared == "float":
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            fits, expected = number and math.isfinite(value), "a finite number"
        elif declared == "str":
            fits, expected = isinstance(value, str), "a string"
        else:
            continue
        if not fits:
            raise ckpt.CheckpointError(f"{where}.{setting.name} must be {expected}, got {value!r}")


def _check_model_reads_its_features(model: ChordModelConfig, features: Any) -> None:
    """Refuse a task whose ``extra_state`` features (another run's, as a distillation student or a new
    architecture takes them) make other inputs than its model reads: a model config given as a few sizes
    (``{"d_model": 16}``) reads no bass view, and the first batch failed with "expects features [batch,
    frames, 216], got shape (4, 32, 324)", naming no setting."""
    if not isinstance(features, Mapping):
        return
    try:
        made = ChordFeatureConfig.from_stored(features)
    except Exception:  # (a record it cannot read is refused, naming it, where a checkpoint is loaded)
        return
    differ = _input_settings_differing(model, made)
    if differ:
        raise ValueError(
            "ChordTask: the model reads other inputs than extra_state's features make: "
            + ", ".join(
                f"model_config.{s} is {getattr(model, s)}, the features' {getattr(made, s)}" for s in differ
            )
            + ". A model_config dict is read as a checkpoint's record, where a setting it lacks is as the "
            "first versions had it (bass_bins, bass_view_bins 0, chord_head False), not today's default: "
            "give ChordModelConfig(d_model=64) or a run's config with other sizes "
            "({**ChordTask.load_from_checkpoint(run).model.config.to_dict(), 'd_model': 64})"
        )


def _check_model_reads_features(
    model: ChordModelConfig, features: ChordFeatureConfig, stored_features: dict[str, Any], where: str
) -> None:
    """Refuse a record whose model reads other inputs than its features make, naming both fields: one
    setting deleted by hand (read as an older record's default) left a message naming neither."""
    differ = _input_settings_differing(model, features)
    if not differ:
        return
    setting = differ[0]
    wanted, made = getattr(model, setting), getattr(features, setting)
    held = (
        f"is {made}"
        if setting in stored_features
        else f"is missing (read as {made}, as in a record older than the setting)"
    )
    raise ckpt.CheckpointError(
        f"{where}.features.{setting} {held}, but model_config.{setting} is {wanted}: the model reads "
        "the features this setting makes, so the two must agree"
    )


def _input_settings_differing(model: ChordModelConfig, features: ChordFeatureConfig) -> list[str]:
    """The settings in which the inputs `model` reads differ from those `features` make (the model's input
    is the features' CQT bins and bass view, side by side)."""
    return [s for s in ("n_bins", "bass_view_bins") if getattr(model, s) != getattr(features, s)]
