"""The chord training guide's `Trainer` (seed 002), a thin layer on the shared `audiotrain.Trainer`.

>>> from audiotrain.models import ChordRecognitionModel, ChordRecognitionLoss
>>> from audiotrain.recipes.chords import Trainer, TrainingConfig
>>> trainer = Trainer(model=ChordRecognitionModel(), train_loader=train_loader, val_loader=val_loader,
...                   config=TrainingConfig(learning_rate=1e-4, num_epochs=100), criterion=ChordRecognitionLoss())
>>> history = trainer.train()            # {"train_loss", "val_loss", "val_chord_type_acc", ...} per epoch
>>> trainer.export_history("history.json")
>>> cv = trainer.train_with_cv(folds=5, data_dir="songs/")  # grouped by song; cv.histories, cv.table()

Batches are the guide's: ``(audio [batch, samples], {"chord_type", "root", "bass_note"} each [batch])``, one
chord per clip, audio at ``sample_rate`` (44100 Hz as in the guide), or the dicts a loader over
`audiotrain.datasets.ChordClipDataset` (the guide's clip folders) gives, at that dataset's ``sr``. On the way
to the model every clip is resampled to ``config.features.sr`` (22050 Hz) and turned into log-CQT frames
with the recipe's feature settings (``config.features``: 216 bins from C1, 36 per octave, hop 2048 samples =
10.8 frames/s, ``log(1 + 100 |CQT|)``), computed with numpy on the host. The model's frame logits are averaged
over time into one prediction per clip, which the loss and the accuracies score.

What it maps onto the shared Trainer: ``num_epochs`` → ``max_epochs``, ``gradient_clip`` →
``gradient_clip_val``, ``log_every`` → ``log_every_n_steps``, ``learning_rate`` / ``weight_decay`` /
``scheduler`` / ``warmup_epochs`` → AdamW and its per-step schedule, ``patience`` / ``min_delta`` →
`EarlyStopping` on ``val_loss``, ``checkpoint_dir`` / ``save_every`` → `ModelCheckpoint` (``best``, ``last``,
``epoch=NNN``), ``device`` → ``accelerator``. ``batch_size`` is the loaders' own (a mismatch is warned
about). Checkpoints are the shared Trainer's folders (resumable, and readable by
``python -m audiotrain.recipes.chords predict``).
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audiotrain._text import plural
from audiotrain.audio import resample
from audiotrain.chords.vocabulary import NUM_CHORD_TYPES, NUM_PITCH_CLASSES
from audiotrain.models.chord_loss import ChordRecognitionLoss, head_accuracies
from audiotrain.models.chord_model import ChordRecognitionModel
from audiotrain.recipes._run import shared_run_folder_name
from audiotrain.recipes.chords.config import ChordFeatureConfig, TrainingConfig
from audiotrain.recipes.chords.own_model import check_model_heads, model_class_name
from audiotrain.recipes.chords.periodic_checkpoints import PeriodicCheckpoints
from audiotrain.recipes.chords.predict import checkpoint_entries
from audiotrain.recipes.chords.task import ChordTask, stored_settings
from audiotrain.recipes.config_cli import ConfigInCheckpoint, merge_config
from audiotrain.train import checkpoint as ckpt
from audiotrain.train import hook_state, reporting
from audiotrain.train.callbacks import EarlyStopping, ModelCheckpoint
from audiotrain.train.loggers.config import build_loggers
from audiotrain.train.memory import smaller_model_advice
from audiotrain.train.state import History
from audiotrain.train.trainer import Trainer as SharedTrainer

import mlx.core as mx
import numpy as np

#: How a chord run too big for this process's memory is made smaller, said by `Trainer.fit`'s refusal in place
#: of its precision='bf16-true': the recipe trains in float32 and has no precision flag or field.
CHORD_MEMORY_ADVICE = (
    "(--model.d_model, --model.n_layers or --model.ff_dim; from Python, those fields of "
    "TrainingConfig.model; the chord recipe trains in float32 and has no precision setting)"
)

if TYPE_CHECKING:
    from audiotrain.recipes.chords.cv import CVResult

#: The guide's history keys, in its order, and the shared Trainer's names for them.
HISTORY_KEYS = {
    "train_loss": "train_loss",
    "val_loss": "val_loss",
    "val_chord_type_acc": "val_chord_type_acc",
    "val_root_acc": "val_root_acc",
    "val_bass_note_acc": "val_bass_note_acc",
    "learning_rate": "learning_rate",
}
#: Printed after Ctrl-C saves ({path}: the `interrupted` checkpoint): the guide's ways to go on.
RESUME_HINT = (
    "Continue with trainer.train_epoch() or trainer.train(), which go on exactly where it stopped (in a new "
    "process: trainer.load_checkpoint({path!r}) first)"
)


class InterruptedEpoch(dict):
    """What `Trainer.train_epoch` returns when Ctrl-C stopped it: no epoch's metrics (an empty dict), and a
    missing key says why, so a loop that reads ``metrics["total_loss"]`` stops there saying so."""

    def __missing__(self, key: str):
        raise KeyError(
            f"{key!r}: train_epoch() was interrupted (Ctrl-C or SIGTERM) before the epoch ended, so it has "
            "no epoch's metrics (trainer.interrupted is True); the next train_epoch() finishes that epoch"
        )


def make_shared_trainer(
    config: TrainingConfig,
    run_dir: str | Path,
    max_epochs: int,
    validate: bool = True,
    loggers: list | None = None,
    overwrite: bool = False,
    monitor_after_validations_only: bool = False,
) -> tuple[SharedTrainer, EarlyStopping]:
    """The shared Trainer a `TrainingConfig` describes, with its checkpoint and early-stopping callbacks, and
    ``loggers`` (made once per run from ``config.logger`` by `build_loggers`, so that every fit of one run
    logs to the same runs).

    Checkpoints go to ``config.checkpoint_dir`` (relative to ``run_dir``): ``best`` by ``val_loss``, ``last``,
    and ``epoch=NNN`` every ``save_every`` epochs (the newest ``save_keep`` of them in the folder, where set,
    those saved before a resume counted too: `PeriodicCheckpoints`). Without validation only ``last`` is
    kept. Each holds the whole resolved ``config`` (``run_config`` in its trainer_state.json). A fresh fit
    refuses a checkpoint folder that holds an earlier run's checkpoints unless ``overwrite`` (`ModelCheckpoint`).

    ``monitor_after_validations_only``: `best` and `EarlyStopping` act only where a validation ran, so
    that fits of the same Trainer without a val_loader (the guide's `train_epoch`) leave the best score
    and the patience count as they are instead of ranking the last validation's score again.
    """
    checkpoint_dir = Path(config.checkpoint_dir)
    if not checkpoint_dir.is_absolute():
        checkpoint_dir = Path(run_dir) / checkpoint_dir
    after_validations = False if monitor_after_validations_only else None
    early_stopping = EarlyStopping(
        monitor="val_loss",
        patience=config.patience,
        min_delta=config.min_delta,
        check_on_train_epoch_end=after_validations,
    )
    if validate:
        callbacks = [
            ModelCheckpoint(
                dirpath=checkpoint_dir,
                filename="best",
                monitor="val_loss",
                save_top_k=1,
                save_last=True,
                overwrite=overwrite,
                save_on_train_epoch_end=after_validations,
            ),
            early_stopping,
        ]
        if config.save_every:
            callbacks.append(
                PeriodicCheckpoints(checkpoint_dir, config.save_every, config.save_keep, overwrite)
            )
    else:
        callbacks = [
            ModelCheckpoint(dirpath=checkpoint_dir, save_top_k=0, save_last=True, overwrite=overwrite)
        ]
    # The whole config in every checkpoint: `--config CHECKPOINT/trainer_state.json` repeats the run.
    callbacks.append(ConfigInCheckpoint(config.to_dict()))
    trainer = SharedTrainer(
        max_epochs=max_epochs,
        gradient_clip_val=config.gradient_clip or None,
        default_root_dir=run_dir,
        compile=config.compile,
        seed=config.seed,
        accelerator=config.training_device(),
        callbacks=callbacks,
        log_every_n_steps=config.log_every,
        enable_progress_bar=config.progress_bar,
        logger=loggers or None,
        # The recipe reports the model itself ("model: N M parameters; ..."), and the guide's Trainer fits
        # once per `train_epoch()`: a table at every fit would repeat that report each epoch.
        enable_model_summary=False,
    )
    # The commands say what they resume in their own lines (--resume, "after resuming at epoch N"), and the
    # guide's Trainer resumes a scratch checkpoint at every `train_epoch()`: no "Restored all states" line.
    trainer.says_restored = False
    return trainer, early_stopping


def early_stop_line(early_stopping: EarlyStopping) -> str:
    """One line saying that (and why) EarlyStopping ended this fit; "" when it did not."""
    if not early_stopping.stop_reason:  # set only when it stops in this process (not restored on resume)
        return ""
    best = "none" if early_stopping.best_score is None else f"{early_stopping.best_score:.6g}"
    return (
        f"early stopping at epoch {early_stopping.stopped_epoch}: {early_stopping.monitor} did not improve by "
        f"more than {early_stopping.min_delta:g} for {plural(early_stopping.wait_count, 'epoch')} (patience "
        f"{early_stopping.patience}; best {early_stopping.monitor} {best})"
        if "not finite" not in early_stopping.stop_reason
        else f"early stopping at epoch {early_stopping.stopped_epoch}: {early_stopping.stop_reason} "
        f"(patience {early_stopping.patience}; best {early_stopping.monitor} {best})"
    )


class ClipFeatureLoader:
    """Wraps a loader of ``(audio [B, samples], targets)`` clip batches into the model's feature batches.

    Each yielded batch is a dict of `mx.array`: ``features`` [B, frames, input_bins] (see the module
    docstring), ``chord_type``, ``root``, ``bass`` [B] int32 (the guide's ``bass_note`` is the loss's
    ``bass``).
    """

    def __init__(self, loader: Iterable, features: ChordFeatureConfig, sample_rate: int, name: str):
        self.loader = loader
        self.features = features
        self.sample_rate = sample_rate
        self.name = name

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:
        # Every public attribute of the wrapped loader (state_dict, load_state_dict, set_epoch, set_seed,
        # batch_size, ...): the Trainer asks the loader for what it has, and resume, seeding and each
        # epoch's shuffle act on the wrapped one. A list of names to pass on missed set_epoch once, so a
        # resumed run replayed epoch 0's order.
        if name.startswith("_") or name == "loader":
            raise AttributeError(name)
        return getattr(self.loader, name)

    def __iter__(self) -> Iterator[dict[str, mx.array]]:
        for index, batch in enumerate(self.loader):
            audio, targets = self._split(batch, index)
            yield {"features": mx.array(self.clip_features(audio)), **targets}

    def _split(self, batch: Any, index: int) -> tuple[np.ndarray, dict[str, mx.array]]:
        expected = (
            f"{self.name} batches must be (audio [batch, samples], {{'chord_type', 'root', 'bass_note'}} "
            "with one class index per clip)"
        )
        if isinstance(batch, Mapping) and "audio" in batch:
            # A `ChordClipDataset` item batched: the guide's clip folders, which the README names that class
            # for, give {"audio", "chord_type", "root", "bass"}; the pair below is the same with audio apart.
            batch = (batch["audio"], {key: value for key, value in batch.items() if key != "audio"})
        if not isinstance(batch, list | tuple) or len(batch) != 2 or not isinstance(batch[1], dict):
            raise TypeError(f"{expected}; batch {index} is a {type(batch).__name__}")
        audio, targets = np.asarray(batch[0]), batch[1]
        # Checked before the cast to float: PCM as scipy.io.wavfile.read gives it would otherwise train as
        # samples 32768 times too loud, which the feature functions themselves refuse.
        if audio.dtype.kind in "iub":
            raise TypeError(
                f"{expected}; batch {index} holds integer audio samples ({audio.dtype}), but the features "
                "expect floating-point audio in [-1, 1]: scale it first, e.g. audio / 32768 for int16"
            )
        audio = audio.astype(np.float32, copy=False)
        if audio.ndim != 2:
            raise ValueError(f"{expected}; batch {index} has audio of shape {audio.shape}")
        bass_key = "bass" if "bass" in targets and "bass_note" not in targets else "bass_note"
        missing = [k for k in ("chord_type", "root", bass_key) if k not in targets]
        if missing:
            raise KeyError(f"{expected}; batch {index} lacks {missing} (has {sorted(targets)})")
        out = {}
        classes = {"chord_type": NUM_CHORD_TYPES, "root": NUM_PITCH_CLASSES, "bass": NUM_PITCH_CLASSES}
        for key, name in (("chord_type", "chord_type"), ("root", "root"), (bass_key, "bass")):
            raw = np.asarray(targets[key])
            value = raw.astype(np.int32).reshape(-1)
            if value.shape != (audio.shape[0],):
                raise ValueError(
                    f"{expected}; batch {index}: {key!r} has {value.size} values for {audio.shape[0]} clips"
                )
            # (the loss cannot raise inside its compiled graph: an index of C or more was read as class C-1)
            if raw.dtype.kind == "f" and not np.array_equal(raw.reshape(-1), value):
                raise ValueError(
                    f"{expected}; batch {index}: {key!r} holds non-integer values {raw.reshape(-1)}"
                )
            outside = value[(value < -1) | (value >= classes[name])]
            if outside.size:
                raise ValueError(
                    f"{expected}; batch {index}: {key!r} holds {int(outside[0])}, outside "
                    f"0..{classes[name] - 1} ({classes[name]} classes; -1 marks a clip the head does not count)"
                )
            out[name] = mx.array(value)
        return audio, out

    def clip_features(self, audio: np.ndarray) -> np.ndarray:
        """[B, samples] at `sample_rate` → [B, frames, input_bins] float32 log-CQT frames (the n_bins, then
        the bass view)."""
        audio = resample(audio, self.sample_rate, self.features.sr)
        spectra = self.features.compute(audio)  # both views with their spare bins, one batched CQT each
        # The spare bins are there for pitch-shift augmentation; the model reads the unshifted windows.
        return self.features.crop(spectra)


class ClipChordTask(ChordTask):
    """`ChordTask` on one label per clip: the model's frame logits are averaged over time before the loss."""

    def __init__(self, model: ChordRecognitionModel, criterion: ChordRecognitionLoss, **settings: Any):
        super().__init__(model.config, criterion, **settings)
        self.model = model  # the caller's network (the one ChordTask built is dropped)

    def pooled_logits(self, features: mx.array) -> dict[str, mx.array]:
        return {k: mx.mean(v, axis=1) for k, v in self.model(features).items()}

    def compute_loss(self, batch: dict[str, mx.array]) -> tuple[mx.array, dict[str, mx.array]]:
        outputs = self.pooled_logits(batch["features"])
        result = self.loss_fn(outputs, batch)
        # A criterion in torch's style returns the loss alone; unpacking it failed inside MLX with
        # "iter() 0-dimensional array", which named neither the criterion nor what it must return.
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], Mapping)):
            raise TypeError(
                "Trainer(criterion=...): the criterion must return (total_loss, {name: loss}) as "
                f"ChordRecognitionLoss does, got {type(result).__name__}; it is called as criterion(outputs, "
                "targets) with the heads' clip logits (chord_type, root, bass, chord) and the targets "
                "(chord_type, root, bass)"
            )
        loss, parts = result
        # In percent, as the guide reports them: the progress line, the history and validate() then show
        # the same numbers (the line showed fractions of the history's percentages).
        percent = {name: (100.0 * value, n) for name, (value, n) in head_accuracies(outputs, batch).items()}
        return loss, {**parts, **percent}

    def batch_size(self, batch: dict[str, mx.array]) -> int:
        return int(batch["chord_type"].shape[0])  # clips: validation means are per clip

    def evaluation_means(self, stage: str, means: dict[str, float]) -> dict[str, float]:
        # The criterion is the caller's (its total need not be ChordRecognitionLoss's sum of its parts), and
        # its parts come back as per-clip values: the mean of the totals is the figure.
        return means


def _guide_metrics(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    """The shared Trainer's ``<prefix>_*`` means under the guide's names (accuracies are in % already)."""
    out = {}
    for key, value in metrics.items():
        if key.startswith(prefix):
            name = key[len(prefix) :]
            out["total_loss" if name == "loss" else name] = value
    return out


def _default_criterion(config: TrainingConfig) -> ChordRecognitionLoss:
    """The loss a `TrainingConfig` describes: ``config.loss``'s head weights (the joint chord head's too, for
    a model with one) and ``config.label_smoothing``. ``loss.balance_classes`` weighs chord types by their
    frequency in the training songs, which clip loaders do not give: warned about, not applied."""
    loss = config.loss
    if loss.balance_classes:
        warnings.warn(
            "Trainer: config.loss.balance_classes is not applied (it weighs chord types by their frames in "
            "the training songs, which clip loaders do not give); pass "
            "criterion=ChordRecognitionLoss(class_weights=...) to weigh them",
            UserWarning,
            stacklevel=3,
        )
    return ChordRecognitionLoss(
        chord_type_weight=loss.chord_type_weight,
        root_weight=loss.root_weight,
        bass_weight=loss.bass_weight,
        chord_weight=loss.chord_weight,
        label_smoothing=config.label_smoothing,
    )


def _training_config(config: Any) -> TrainingConfig:
    """`config` as a `TrainingConfig`: None gives the defaults; a dict is read as a --config file's keys
    (``{"num_epochs": 1, "data": {...}}``, unknown keys named), as a section of a recipe config given as a
    dict is. Anything else is refused here (it failed later with "'dict' object has no attribute ...")."""
    if config is None:
        return TrainingConfig()
    if isinstance(config, TrainingConfig):
        return config
    if isinstance(config, Mapping):
        return merge_config(TrainingConfig(), dict(config), "Trainer(config=...)")
    raise TypeError(
        "Trainer(config=...): expected a TrainingConfig (or a dict of its fields), "
        f"got {type(config).__name__}"
    )


def _clip_sample_rate(given: int | None, loaders: dict[str, Iterable | None]) -> int:
    """The rate of the loaders' audio: `given`, else the ``sr`` of their `ChordClipDataset` (which resamples
    every clip to it, 22050 Hz by default), else the guide's 44100 Hz. Audio read at another rate than its
    own would reach the features pitched by the ratio (22050 Hz read as 44100: an octave up), unsaid."""
    from audiotrain.datasets.chord_clips import ChordClipDataset

    rates = {
        name: dataset.sr
        for name, loader in loaders.items()
        if isinstance(dataset := getattr(loader, "dataset", None), ChordClipDataset)
    }
    for name, rate in rates.items():
        if given is not None and rate != given:
            raise ValueError(
                f"Trainer: sample_rate is {given} Hz but {name} reads a ChordClipDataset resampled to "
                f"sr={rate} Hz; pass sample_rate={rate} or build the dataset with sr={given}"
            )
    if given is None and len(set(rates.values())) > 1:
        raise ValueError(
            f"Trainer: the loaders' ChordClipDatasets have different rates ({rates}); build them with one sr"
        )
    return given if given is not None else next(iter(rates.values()), 44100)


_GUIDE_BEST_NAME = "best_model.pt"  # seed 002's name for the best checkpoint (ModelCheckpoint's "best")


def _guide_best_name(path: Path) -> Path:
    """``DIR/best_model.pt`` as ``DIR/best`` where only the latter exists, so that the guide's
    ``load_checkpoint('checkpoints/best_model.pt')`` loads the best checkpoint its run saved."""
    best = path.parent / "best"
    if path.name != _GUIDE_BEST_NAME or path.exists() or not best.is_dir():
        return path
    print(f"note: {path}: the guide's name for {best}, the best checkpoint; loading {best}", file=sys.stderr)
    return best


class Trainer:
    """The guide's chord Trainer: ``train``, ``train_epoch``, ``validate``, checkpoints and history.

    Args:
        model: a `ChordRecognitionModel` whose ``n_bins`` and ``bass_view_bins`` equal ``config.features``'.
            A network of your own is a subclass of it (``super().__init__(config)``, then your layers) whose
            ``__call__(features [batch, frames, input_bins], mask=None)`` returns the dict of frame logits
            the class documents; its heads are checked here, and ``predict`` refuses its checkpoints by its
            class name: load them with ``ChordPredictor.from_checkpoint(path, model=YourModel(...))``.
        train_loader, val_loader: iterables of ``(audio [batch, samples], targets)`` (see the module
            docstring); ``val_loader`` may be None (then no validation, early stopping or best checkpoint).
        config: a `TrainingConfig`, or a dict of its fields as a --config file holds them (default: the
            recipe's defaults).
        criterion: a `ChordRecognitionLoss` (default: the config's loss weights and label smoothing), or a
            callable ``(outputs, targets) -> (total, {name: loss})`` as it is.
        sample_rate: rate of the audio in the batches, Hz (default: the ``sr`` of the loaders'
            `ChordClipDataset`, else the guide's 44100; one that differs from that ``sr`` is refused).
        run_dir: folder the relative ``config.checkpoint_dir`` and the shared Trainer's logs go in.
        overwrite: let the first `train` / `train_epoch` save over an earlier run's checkpoints in
            ``config.checkpoint_dir`` (refused otherwise; `load_checkpoint` first continues that run).

    Accuracies are percentages, as in the guide: in `validate`, the history and the progress line.
    """

    def __init__(
        self,
        model: ChordRecognitionModel,
        train_loader: Iterable,
        val_loader: Iterable | None = None,
        config: TrainingConfig | Mapping[str, Any] | None = None,
        criterion: ChordRecognitionLoss | None = None,
        sample_rate: int | None = None,
        run_dir: str | Path = ".",
        overwrite: bool = False,
    ):
        self.config = _training_config(config)
        if not isinstance(model, ChordRecognitionModel):
            raise TypeError(
                f"Trainer(model=...): expected a ChordRecognitionModel, got {type(model).__name__}; a model "
                "of your own subclasses it (super().__init__(config), then your layers) and returns its dict "
                "of frame logits: 'chord_type', 'root', 'bass' (see help(ChordRecognitionModel))"
            )
        if model.config.n_bins != self.config.features.n_bins:
            raise ValueError(
                f"Trainer: the model reads {model.config.n_bins} bins per frame but config.features.n_bins is "
                f"{self.config.features.n_bins}; build ChordRecognitionModel(ChordModelConfig(n_bins="
                f"{self.config.features.n_bins})) or set TrainingConfig(features=ChordFeatureConfig(n_bins=...))"
            )
        if model.config.bass_view_bins != self.config.features.bass_view_bins:
            raise ValueError(
                f"Trainer: the model reads a bass view of {model.config.bass_view_bins} bins but "
                f"config.features.bass_view_bins is {self.config.features.bass_view_bins}; set the same "
                "number in ChordModelConfig(bass_view_bins=...) and ChordFeatureConfig(bass_view_bins=...)"
            )
        check_model_heads(model, self.config.features.input_bins, "Trainer(model=...)")
        if criterion is None:
            criterion = _default_criterion(self.config)
        self.run_dir = Path(run_dir)
        self.overwrite = overwrite
        features = self.config.features
        sample_rate = _clip_sample_rate(sample_rate, {"train_loader": train_loader, "val_loader": val_loader})
        self.train_loader = ClipFeatureLoader(train_loader, features, sample_rate, "train_loader")
        self.val_loader = (
            None if val_loader is None else ClipFeatureLoader(val_loader, features, sample_rate, "val_loader")
        )
        if self.config.processes >= 2:
            # The command line starts the processes `processes` asks for; a Trainer made in Python trains in
            # the processes its script runs in, so the setting would otherwise be dropped without a word.
            warnings.warn(
                f"Trainer: config.processes is {self.config.processes} but this Trainer trains in the "
                "processes its script runs in; start them with `python -m audiotrain launch -n "
                f"{self.config.processes} -- python SCRIPT` (or the recipe's command line, which starts "
                "them)",
                UserWarning,
                stacklevel=2,
            )
        loader_batch = getattr(train_loader, "batch_size", None)
        if isinstance(loader_batch, int) and loader_batch != self.config.batch_size:
            warnings.warn(
                f"Trainer: config.batch_size is {self.config.batch_size} but train_loader gives batches of "
                f"{loader_batch}; the loader's size is used",
                stacklevel=2,
            )
        c = self.config
        self.module = ClipChordTask(
            model,
            criterion,
            learning_rate=c.learning_rate,
            weight_decay=c.weight_decay,
            bias_correction=c.bias_correction,
            scheduler=None if c.scheduler == "constant" else c.scheduler,
            num_epochs=c.num_epochs,
            warmup_epochs=c.warmup_epochs,
            steps_per_epoch=max(1, len(self.train_loader)),
            extra_state={
                # Clips are never pitch-shifted here: predict's default test-time shifts would then
                # average in the model's guesses for keys it never heard.
                **checkpoint_entries(c.features, c.decode, c.data.window_frames, pitch_shifts=(0,)),
                "training_config": c.to_dict(),
                "clip_sample_rate": sample_rate,
            },
        )
        # One shared Trainer, made by the first train / train_epoch, runs every later one: its callbacks
        # (best checkpoint, EarlyStopping) keep their best score and patience count across the calls.
        self.shared: SharedTrainer | None = None
        self._fitted = False  # the shared Trainer has trained (the next call continues its run)
        self.loggers = build_loggers(
            self.config.logger, self.run_dir
        )  # one set for every train / train_epoch
        self._resume: str | None = None  # checkpoint the next train / train_epoch continues from
        self._resume_epoch = 0  # the epochs that checkpoint had done
        self._history: dict[str, list] = {}

    @property
    def model(self) -> ChordRecognitionModel:
        return self.module.model

    @property
    def epochs_done(self) -> int:
        if self._resume is not None:
            return self._resume_epoch
        return self.shared.current_epoch if self._fitted else 0

    def _fit(self, max_epochs: int, validate: bool) -> None:
        if self.shared is None:
            if self._resume is None and not self.overwrite:
                self._refuse_an_earlier_run()
            # Checked above, in this Trainer's words; a resumed fit goes on in its own folder.
            self.shared, self.early_stopping = make_shared_trainer(
                self.config,
                self.run_dir,
                max_epochs,
                self.val_loader is not None,
                self.loggers,
                overwrite=True,
                monitor_after_validations_only=True,
            )
            self.shared.resume_hint = RESUME_HINT
        trainer = self.shared
        trainer.max_epochs = max_epochs
        epochs_before = self.epochs_done
        # As the guide's train loop (model.train() at each call): the shared Trainer keeps the modes it is
        # given, and the module may come back from an evaluation in eval mode (`example.py`).
        self.module.train()
        # A later call continues exactly where the last one stopped (optimizer, schedule, random state,
        # loader position) through a checkpoint: a fit of the same Trainer without one would start a new
        # optimizer. It is scratch, so it goes to a temporary folder, not among the user's checkpoints.
        with tempfile.TemporaryDirectory(prefix="audiotrain-continue-") as scratch:
            resume = self._resume
            if resume is None and self._fitted:
                resume = str(trainer.save_checkpoint(Path(scratch) / "continue"))
            try:
                with smaller_model_advice(CHORD_MEMORY_ADVICE):
                    trainer.fit(
                        self.module,
                        self.train_loader,
                        self.val_loader if validate else None,
                        ckpt_path=resume,
                    )
            except BaseException:
                if not self._fitted:
                    self.shared = None  # a first fit that failed: the next call starts afresh
                raise
        self._fitted, self._resume = True, None
        self._history = trainer.history
        # As the command line announces it: a train() that ends before num_epochs says why. (stop_reason
        # stays set after the stop; said once, by the fit that stopped.)
        stop = early_stop_line(self.early_stopping)
        if stop and self.early_stopping.stopped_epoch >= epochs_before:
            trainer.print(stop, file=sys.stderr)

    def _refuse_an_earlier_run(self) -> None:
        folder = self.run_dir / Path(self.config.checkpoint_dir)
        found = sorted(p.name for p in folder.glob("*") if (p / ckpt.STATE_FILE).is_file())
        if found:
            raise FileExistsError(
                f"Trainer: config.checkpoint_dir {folder} already holds an earlier run's checkpoints "
                f"({', '.join(found)}), which training would replace. Continue that run with "
                f"trainer.load_checkpoint('{folder / found[0]}') before train(), set another checkpoint_dir "
                "or run_dir, or pass Trainer(..., overwrite=True) to save over them"
            )

    def train(self) -> dict[str, list[float]]:
        """Train up to ``config.num_epochs`` (validating each epoch, early stopping, checkpoints); the
        history. Stopped by Ctrl-C (or SIGTERM), it returns the epochs done and sets `interrupted`."""
        done = self.epochs_done
        if (self._fitted or self._resume is not None) and done >= self.config.num_epochs:
            warnings.warn(
                f"Trainer.train: nothing to train, {done} epochs are done and config.num_epochs is "
                f"{self.config.num_epochs}; set config.num_epochs higher to train further",
                UserWarning,
                stacklevel=2,
            )
            return self.history
        self._fit(self.config.num_epochs, validate=self.val_loader is not None)
        return self.history

    @property
    def interrupted(self) -> bool:
        """Whether Ctrl-C (or SIGTERM) stopped the last `train` / `train_epoch`, as the shared Trainer's
        ``interrupted``: it saved an ``interrupted`` checkpoint, and the next call goes on from there."""
        return self.shared is not None and self.shared.interrupted

    def train_epoch(self) -> dict[str, float]:
        """One more training epoch (no validation): the guide's ``total_loss``, component losses, learning
        rate.

        Stopped by Ctrl-C (or SIGTERM) before the epoch ended, it saves ``interrupted``, sets `interrupted`
        and returns an empty dict (reading a metric from it raises a KeyError that says so): no epoch ended,
        so there are no epoch's metrics to log. The next `train_epoch` (or `train`) finishes that epoch
        exactly as an uninterrupted run would; a loop of calls stops with ``if trainer.interrupted: break``.
        """
        self._fit(self.epochs_done + 1, validate=False)
        if self.interrupted:
            return InterruptedEpoch()
        row = {k: v[-1] for k, v in self._history.items()}
        metrics = _guide_metrics({k: v for k, v in row.items() if v is not None}, "train_")
        metrics["learning_rate"] = self.shared.learning_rate()
        return metrics

    def validate(self) -> dict[str, float]:
        """Validation over all of ``val_loader``: ``total_loss``, component losses, accuracies in %."""
        if self.val_loader is None:
            raise ValueError("Trainer.validate: this Trainer has no val_loader")
        evaluator = SharedTrainer(
            max_epochs=1,
            default_root_dir=self.run_dir,
            compile=self.config.compile,
            accelerator=self.config.training_device(),
            enable_progress_bar=False,
            logger=False,
        )
        (metrics,) = evaluator.validate(self.module, self.val_loader)
        return _guide_metrics(metrics, "val_")

    @property
    def history(self) -> dict[str, list[float]]:
        """Per epoch: the guide's keys (accuracies in %)."""
        return {key: list(self._history.get(source, [])) for key, source in HISTORY_KEYS.items()}

    def save_checkpoint(self, path: str | Path) -> Path:
        """Write a resumable checkpoint folder at ``path`` (weights, optimizer, schedule, history, config)."""
        if self.shared is None:
            raise RuntimeError("Trainer.save_checkpoint: nothing trained yet (call train() or train_epoch())")
        return self.shared.save_checkpoint(path)

    def load_checkpoint(self, path: str | Path) -> None:
        """Load the weights of a checkpoint folder now; the next `train` / `train_epoch` resumes from it.

        The guide's ``checkpoints/best_model.pt`` is read as ``checkpoints/best``, where this Trainer keeps
        its best checkpoint (a note on stderr says so), unless a ``best_model.pt`` of that name is there."""
        folder = ckpt.resolve_checkpoint(_guide_best_name(Path(path)))
        state = ckpt.read_state(folder)
        stored_settings(folder, state)  # a hand-edited setting is named with its file
        model_file = folder / ckpt.MODEL_FILE
        self.module.update(ckpt.read_tree(model_file, self.module.parameters(), "chord model"))
        mx.eval(self.module.parameters())
        hook_state.load_module_state(self.module, state)
        history = History()
        with ckpt.named_source(folder / ckpt.STATE_FILE):
            history.load_state_dict(state["history"])
        self._history = history.columns()
        self._resume = str(folder)
        with ckpt.named_source(folder / ckpt.STATE_FILE):
            self._resume_epoch = int(state["progress"]["epoch"])

    def train_with_cv(
        self,
        folds: int = 5,
        data_dir: str | Path | None = None,
        run_dir: str | Path | None = None,
        log=None,
    ) -> CVResult:
        """K-fold cross-validation grouped by song, as ``python -m audiotrain.recipes.chords cv`` does.

        The songs are those of ``data_dir`` (default ``config.data.data_dir``; neither: the demo songs), not
        this Trainer's clip loaders, whose clips name no song to group by. Each fold trains a fresh model of
        this Trainer's architecture (``model.config``) with ``config`` from scratch; this Trainer's own model
        is left as it is. A model of your own (a subclass) is refused: the folds cannot build it.

        Returns:
            a `CVResult`: ``histories`` (one per fold), ``fold_scores``, ``mean``, ``std`` (fractions) and
            ``table()`` (markdown, in %). ``run_dir`` (default ``<run_dir>/cv-<date>-<time>``) receives
            ``fold<k>/`` (checkpoints, history, evaluation), ``oof/*.lab`` and ``cv_scores.json`` / ``.md``.
        """
        from audiotrain.recipes.chords.cv import run_cross_validation

        own_class = model_class_name(self.model)
        if own_class is not None:
            # Each fold builds its model from settings alone: it would cross-validate the recipe's network
            # of model.config and report its scores as if they were this model's.
            raise TypeError(
                "Trainer.train_with_cv: the folds build the recipe's ChordRecognitionModel from its "
                f"settings and cannot build {own_class}, a model of your own (its scores would be another "
                "model's); cross-validate it in a loop of your own: a new Trainer(model=...) per fold"
            )
        data = self.config.data
        if data_dir is not None:
            if not Path(data_dir).is_dir():
                raise NotADirectoryError(f"Trainer.train_with_cv: data_dir {data_dir} is not a folder")
            data = replace(data, data_dir=str(data_dir))
        config = replace(self.config, data=data, model=self.model.config)
        if run_dir is None:
            run_dir = shared_run_folder_name("cv", self.run_dir)
        return run_cross_validation(config, run_dir, folds=folds, log=log)

    def export_history(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write `history` as JSON, atomically (`reporting.write_history`); returns the path. An existing
        file there is replaced only with `overwrite` (else a `FileExistsError` naming it)."""
        path = Path(path)
        return reporting.write_history(self.history, path, overwrite=overwrite or self._own_export(path))

    def _own_export(self, path: Path) -> bool:
        """Whether `path` holds a history this guide's Trainer wrote (its columns exactly; one
        `reporting.write_history` marked, known by its first bytes): replaced, as the core Trainer replaces
        its own export, so a script run again does not stop at its last line."""
        if not path.is_file():
            return False
        try:
            if reporting.is_marked_export(path):
                return True
            columns = reporting.read_history(path)
        except (ValueError, OSError):
            return False
        return set(columns) == set(self.history) and len({len(v) for v in columns.values()}) == 1
