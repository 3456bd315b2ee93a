"""`RunState`: everything a run must restore that is not an array, as one object with `state_dict()` /
`load_state_dict()` (Lightning Fabric's "state is a dict of named objects"); the Trainer asks it for the
checkpoint's `trainer_state.json` and hands that back to it on resume.

It holds the run's own parts: `Progress`, `RunningMeans`, `History`, `TrainableSets`, the metrics the
callbacks read, the logging options the checkpoint's step was traced with, the time spent in earlier runs,
the random generators where the last fit ended and the loader position a resume still has to load. The
parts other objects own (the module, the loaders, the callbacks, the loggers, the Trainer's settings) it
reaches through its Trainer, as `EvaluationLoop` does. The arrays (the model, the optimizer, the compiled
step's state) are read at once with the state by `read_checkpoint` and put back by `load_optimizer_state` and
`load_step_state`.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audiotrain._omegaconf import plain_hyperparameters
from audiotrain._system import versions
from audiotrain._text import listed
from audiotrain.train import checkpoint as ckpt
from audiotrain.train import hook_logs, hook_state, resume
from audiotrain.train.callbacks._averaging import validated_average
from audiotrain.train.guarded_update import write_state_in_place
from audiotrain.train.loggers.resume_states import logger_kinds
from audiotrain.train.metric_values import Metrics
from audiotrain.train.module import _optimizers_in, hyperparameter_tuples, read_named_weights
from audiotrain.train.optimizer_settings import (
    STATE_KEY,
    configured_rate,
    note_configured_rates,
    optimizer_settings,
    warn_of_changed_settings,
)
from audiotrain.train.outputs import LogOptions
from audiotrain.train.seeding import rank_key
from audiotrain.train.state import History, Progress, RandomState, RunningMeans, TrainableSets
from audiotrain.train.step import set_trainable

import mlx.core as mx
import mlx.optimizers as optim
from mlx.utils import tree_flatten

if TYPE_CHECKING:
    from audiotrain.train.step import TrainStep
    from audiotrain.train.trainer import Trainer


class RunState:
    """The state of one Trainer's run that a checkpoint's `trainer_state.json` holds."""

    def __init__(self, trainer: Trainer) -> None:
        self._trainer = trainer
        self.progress = Progress()
        self.running = RunningMeans()
        self.history = History()
        self.row_texts = ckpt.RowTexts()  # the history rows' JSON as the last save wrote them
        self.trainable = TrainableSets()  # what the compiled step trains, what the optimizer has state for
        self.callback_metrics: dict[str, float] = Metrics()
        # What the last validation in `fit` reported, under the names it was logged with ("val_loss",
        # "val/acc", "valid_loss"): the history row and the progress bar take these, whatever the name.
        self.validation_metrics: dict[str, float] = {}
        self.saved_log_options: dict[str, LogOptions] = {}  # from the checkpoint resumed
        self.elapsed_before = 0.0  # seconds spent in earlier runs of a resumed fit
        self._fit_started = 0.0  # `time.perf_counter()` when this fit started training (0: none did)
        # The run's random generators where the last fit ended (`fit` then puts the caller's back): what a
        # checkpoint saved after it holds. None while a fit runs (the generators are the run's then).
        self.random_at_fit_end: dict[str, Any] | None = None
        # The training's generators while a validation inside `fit` draws from its own: what a checkpoint
        # saved in a validation hook holds, so that resuming from it trains as the run would have.
        self.random_during_validation: dict[str, Any] | None = None
        # The training loader's position in the checkpoint's open epoch, loaded when that epoch starts.
        self.pending_loader_state: dict | None = None
        self.pending_loader_source: Path | None = None  # the trainer_state.json it came from
        # The training loader's position before the trainer read the next batch ahead (a loader without a
        # length): the position of the batch being trained, which a checkpoint saves. None where not read ahead.
        self.loader_state_read_ahead: dict | None = None

    def start_clock(self) -> None:
        """The fit starts training now: `elapsed` counts from here (beside the earlier runs')."""
        self._fit_started = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds `fit` has run so far, plus those of the runs a resumed fit continues (what `max_time`
        counts)."""
        return self.elapsed_before + (time.perf_counter() - self._fit_started if self._fit_started else 0.0)

    def mlx_key(self) -> list[int]:
        """This process's MLX key as a checkpoint saves it: where the run ended, after `fit`."""
        return list((self.random_at_fit_end or self.random_during_validation or RandomState.capture())["mlx"])

    def state_dict(
        self,
        running_means: dict[str, Any],
        waiting_hook_logs: dict[str, Any],
        mlx_keys: list[list[int]] | None = None,
    ) -> dict[str, Any]:
        """The checkpoint's state, before the callbacks and the module add theirs. `running_means` and
        `waiting_hook_logs` come in as the Trainer gathered them (over every rank under data parallel), and
        `mlx_keys` the ranks' MLX keys under data parallel (saved as `random.mlx_ranks`)."""
        trainer = self._trainer
        module = trainer.module
        loader = trainer.train_dataloader
        loader_state_dict = getattr(loader, "state_dict", None)  # (any loader's that has one)
        open_epoch = not self.progress.epoch_complete
        return {
            "progress": self.progress.state_dict(),
            "running_means": running_means,
            "history": self.history.state_dict(),
            # (Saved after fit: the run's generators where it ended, not the caller's it put back.)
            "random": {
                **(self.random_at_fit_end or self.random_during_validation or RandomState.capture()),
                **({"mlx_ranks": mlx_keys} if mlx_keys is not None else {}),
            },
            "data_loader": self._loader_position(loader_state_dict) if open_epoch else None,
            "callbacks": trainer.callbacks.state_dict(),
            "loggers": [_logger_state(lg) for lg in trainer.loggers],
            "logger_kinds": logger_kinds(trainer.loggers),  # (a resume matches the states by kind)
            "callback_metrics": self.callback_metrics,
            "validation_metrics": self.validation_metrics,
            "waiting_hook_logs": waiting_hook_logs,
            # How `self.log` values in the training step are reported: a resumed run knows only once the
            # step is traced again, and an epoch that ends before that must not report on_step-only values.
            "log_options": {
                name: asdict(options) for name, options in trainer._step_logging.train_options().items()
            },
            "elapsed": self.elapsed(),
            "global_batch": resume.global_batch(trainer.world_size, loader),
            "config": run_config(trainer),
            **({STATE_KEY: optimizer_settings(trainer.optimizer)} if trainer.optimizer is not None else {}),
            "hyper_parameters": plain_hyperparameters(module.hparams),
            # (JSON holds a tuple as a list: their paths let load_from_checkpoint give them back as tuples)
            **({"hyper_parameter_tuples": paths} if (paths := hyperparameter_tuples(module.hparams)) else {}),
            # (the __init__ arguments that were OmegaConf configs: load_from_checkpoint makes them configs)
            **(
                {"hyper_parameter_omegaconf": names}
                if (names := getattr(module, "_hparams_omegaconf", []))
                else {}
            ),
            **module._hparams_origin,  # the __init__ argument they came as (save_hyperparameters(config))
            # Keys set in `self.hparams` after save_hyperparameters (a hook's total_steps): no __init__ takes
            # them, and load_from_checkpoint leaves them out without the warning a changed __init__ gets.
            **({"hyper_parameters_set_later": later} if (later := _set_later(module)) else {}),
            **_datamodule_hparams_origin(trainer.datamodule),
            "versions": versions(),
            "module_state": {},
            "trainable": self.trainable.state_dict(),
        }

    def _loader_position(self, loader_state_dict) -> dict | None:
        """The training loader's position to save: the one it had before the trainer read a batch ahead."""
        if self.loader_state_read_ahead is not None:
            return self.loader_state_read_ahead
        return loader_state_dict() if loader_state_dict is not None else None

    def load_state_dict(self, state: dict[str, Any], source: Path | None = None) -> None:
        """Restore the run's own parts from a checkpoint's `state` (read from `source`, which the loader's
        errors name). The Trainer restores the callbacks and the loggers after it, in `ckpt.named_source`
        with this: their warnings count their `stacklevel` from `Trainer._restore` to the user's call."""
        trainer = self._trainer
        self.progress.load_state_dict(state["progress"])
        self.running.load_state_dict(state["running_means"], trainer.global_rank, trainer.world_size)
        self.history.load_state_dict(state["history"])
        RandomState.restore(state["random"])
        if trainer.world_size > 1:  # each rank goes on with its own key (seeding.seed_rank_apart)
            seed = rank_key(
                state["random"].get("mlx_ranks"),
                state["random"]["mlx"],
                trainer.global_rank,
                trainer.world_size,
            )
            if seed is not None:
                mx.random.seed(seed)
        self.random_at_fit_end = None  # (loaded outside fit: a save now holds the loaded state)
        self.pending_loader_state = state.get("data_loader") if self.progress.batch_in_epoch else None
        self.pending_loader_source = source
        self.loader_state_read_ahead = None  # (the loaded position replaces the last fit's)
        self.callback_metrics = Metrics(state.get("callback_metrics", {}))
        # (A checkpoint from before validation_metrics was saved: its val_* values.)
        saved_validation = {k: v for k, v in self.callback_metrics.items() if k.startswith("val_")}
        self.validation_metrics = dict(state.get("validation_metrics", saved_validation))
        saved = state.get("log_options", {})
        self.saved_log_options = {name: LogOptions(**options) for name, options in saved.items()}
        self.elapsed_before = float(state.get("elapsed", 0.0))
        waiting = state.get("waiting_hook_logs", {})
        if trainer.module is not None:
            hook_logs.load_state(trainer.module, waiting, trainer.global_rank)

    def load_trainable(self, folder: Path, state: dict[str, Any]) -> frozenset[str]:
        """Train what the checkpoint's run trained when it was saved, with optimizer state for every
        parameter it had state for then. Returns the parameters the optimizer has state for that the
        checkpoint has not (they keep their fresh state, as new parameters in torch).

        Freezing is part of the run: a fit resumed after an `unfreeze()` at epoch k trains what the saved
        one trained, though the module was built frozen and the hook that unfroze it is past. The hooks
        (`on_load_checkpoint`, `on_fit_start`, `on_train_epoch_start`) may change it from there.
        """
        if state.get("trainable") is None:  # no fit step existed when it was saved
            return frozenset()
        trainer, module = self._trainer, self._trainer.module
        source = folder / ckpt.STATE_FILE
        built = self.trainable.now
        with ckpt.named_source(source):
            saved = _without_former_weights(TrainableSets.from_state_dict(state["trainable"]), module)
            set_trainable(module, saved.optimized)
            trainer.optimizer.init(module.trainable_parameters())  # the state the checkpoint holds
            set_trainable(module, saved.now)
        if built != saved.at_start and built != saved.now:
            # Not the module the run started from: its own freezing is replaced, which must not go unsaid.
            changed = sorted(built ^ saved.at_start)
            warnings.warn(
                f"{folder}: {type(module).__name__} as built trains other parameters "
                f"({listed(changed)}) than the "
                "run in the checkpoint started with; the resumed fit trains what that run trained when it "
                "saved (freeze/unfreeze is part of a run). To train others from here, freeze or unfreeze "
                "them in on_fit_start (parameters new to the optimizer start with fresh state)",
                UserWarning,
                stacklevel=4,  # (through Trainer._restore and fit to the user's call)
            )
        fresh = self.trainable.resume(saved)
        trainer._follow_freezing(module)  # the compiled step for them (the saved step state is theirs)
        return fresh


def _logger_state(logger: Any) -> dict[str, Any]:
    """A logger's `state_dict()` for the checkpoint, where it has one that gives a dict; else none. Lightning
    saves no logger state: a `unittest.mock.Mock()` logger (Lightning's own tests use one) answers every
    call with another Mock, and writing that made every checkpoint a RecursionError."""
    state = logger.state_dict() if callable(getattr(logger, "state_dict", None)) else {}
    return state if isinstance(state, dict) else {}


def run_config(trainer: Trainer) -> dict[str, Any]:
    """The Trainer's settings, module and optimizer as a checkpoint's `config` and the loggers'
    hyperparameters record them."""
    opt = trainer.optimizer
    module = trainer.module
    return {
        "trainer": {
            "max_epochs": trainer.max_epochs,
            "max_steps": trainer.max_steps,
            "min_epochs": trainer.min_epochs,
            "min_steps": trainer.min_steps,
            "max_time": trainer.max_time,
            "val_check_interval": trainer.val_check_interval,
            "check_val_every_n_epoch": trainer.check_val_every_n_epoch,
            "gradient_clip_val": trainer.gradient_clip_val,
            "gradient_clip_algorithm": trainer.gradient_clip_algorithm,
            "accumulate_grad_batches": trainer.accumulate_grad_batches,
            "precision": trainer.precision,
            "accelerator": trainer.accelerator,
            "seed": trainer.seed,
            "compile": trainer.compile,
            "log_every_n_steps": trainer.log_every_n_steps,
        },
        "module": type(module).__name__ if module is not None else None,
        "hparams": plain_hyperparameters(module.hparams) if module is not None else {},
        "optimizer": type(opt).__name__ if opt is not None else None,
        "lr_schedule_name": trainer.optimizer_config.lr_schedule_name if trainer.optimizer_config else None,
        **_datamodule_hparams(trainer.datamodule),
    }


def _datamodule_hparams(datamodule: Any) -> dict[str, Any]:
    """A DataModule's `save_hyperparameters()` (none: no entry, so older runs' configs compare equal)."""
    hparams = getattr(datamodule, "__dict__", {}).get("_hparams")
    return {"datamodule_hparams": plain_hyperparameters(hparams)} if hparams else {}


def _set_later(module: Any) -> list[str]:
    """The keys of `module.hparams` that save_hyperparameters did not record (set in it since)."""
    return [k for k in module.hparams if k not in module._hparams_initial]


def _datamodule_hparams_origin(datamodule: Any) -> dict[str, Any]:
    """What DataModule.load_from_checkpoint needs beside the config's `datamodule_hparams` to rebuild the
    datamodule as it was: the __init__ argument a dict or Namespace came as, and where the tuples were (JSON
    holds them as lists)."""
    found = getattr(datamodule, "__dict__", {})
    hparams = found.get("_hparams")
    if not hparams:
        return {}
    origin = dict(found.get("_hparams_origin") or {})
    if paths := hyperparameter_tuples(dict(hparams)):
        origin["tuples"] = paths
    return {"datamodule_hparams_origin": origin} if origin else {}


@dataclass(frozen=True)
class CheckpointContents:
    """The files of one checkpoint folder, read into memory together (`read_checkpoint`) before any is
    applied: a resume gets one save whole, never its state with the weights of the next."""

    folder: Path
    state: dict[str, Any]
    model: dict[str, mx.array]  # (checked against the model, in its dtypes)
    optimizer: dict[str, mx.array]  # (the arrays after the model's: {} where `full` was not asked)
    step: dict[str, mx.array] | None  # None: the folder has no step-state file
    callbacks: dict[str, mx.array]
    # Where `full` was not asked: the average the checkpoint was validated with (`validated_average`), {}
    # where that is model.safetensors itself.
    validated: dict[str, mx.array]


def read_checkpoint(
    path: Any,
    module: Any,
    full: bool,
    before_weights: Callable[[dict[str, Any], Path], frozenset[str]] | None = None,
    hook_added: frozenset[str] = frozenset(),
) -> CheckpointContents:
    """The checkpoint at `path` (its trainer state and the weights of `module`, checked from the file's
    header before its data is read; with `full`, the optimizer's, the training step's and the callbacks'
    arrays too; without it, the average it was validated with, `validated_average`) read into memory. A
    read that a save of a running fit tore (it replaced the folder between two files) is made again, as the
    README promises (`ckpt.read_unreplaced`). `before_weights(state)` runs once the state is read and
    before the weights are checked against `module`: Lightning's `on_load_checkpoint`, which may rebuild
    the layers the weights then load into; it returns, as `hook_added` gives where the hook ran before,
    the arrays it added to the module, which the weights need not hold."""
    what = f"{type(module).__name__} model"

    def read(folder: Path) -> CheckpointContents:
        # An evaluation reads the weights alone, which a checkpoint of an older format holds as today's do
        # (`read_model_state`): only a resume needs today's trainer state.
        state = ckpt.read_state(folder) if full else ckpt.read_model_state(folder)
        model_file = folder / ckpt.MODEL_FILE
        added = before_weights(state, model_file) if before_weights is not None else hook_added
        expected, header = hook_state.weights_to_load(module, model_file, added)
        if hook_state.overrides(module, "load_state_dict"):  # (its own names: `hook_state.load_weights`)
            model = ckpt.read_arrays(model_file, header=header)
        else:  # (strict_loading False: Lightning's, the weights whose names match)
            strict = bool(getattr(module, "strict_loading", True))
            where = f"ckpt_path={str(path)!r} ({what})"
            model = read_named_weights(module, model_file, expected, header, strict, where, what)
        optimizer, step, callbacks, validated = {}, None, {}, {}
        if not full:
            # (not the arrays the load hook added: the average, of the weights trained, never held them)
            validated = validated_average(folder, state, module, names=set(expected) if added else None)
        if full:
            optimizer = ckpt.read_arrays(folder / ckpt.OPTIMIZER_FILE)
            step_file = folder / ckpt.STEP_STATE_FILE
            # Not checked for NaN: a non-finite gradient accumulated in the open window is the guard's to
            # skip.
            step = ckpt.read_arrays(step_file, finite=False) if os.path.lexists(step_file) else None
            callbacks = ckpt.read_callback_arrays(folder)
        # (MLX reads lazily: read here, before the check)
        mx.eval(model, optimizer, step or {}, callbacks, validated)
        return CheckpointContents(folder, state, model, optimizer, step, callbacks, validated)

    return ckpt.read_unreplaced(path, ckpt.resolve_checkpoint, read)


def load_optimizer_state(contents: CheckpointContents, optimizer: Any, fresh: frozenset[str]) -> None:
    """The optimizer's state from the checkpoint's `contents`, written into the containers the compiled
    step holds; the parameters in `fresh` (none in the checkpoint) keep their fresh state."""
    what = f"{type(optimizer).__name__} optimizer state"
    folder = contents.folder
    try:
        opt_tree = ckpt.checked_tree(
            contents.optimizer,
            dict(optimizer.state),
            what,
            folder / ckpt.OPTIMIZER_FILE,
            fresh_parameters=fresh,
        )
    except ckpt.CheckpointError as err:
        # The model's weights matched (checked first): what changed is the optimizer or its grouping.
        raise ckpt.CheckpointError(
            f"{err}. The model's weights match, so the optimizer configured now (configure_optimizers, or "
            "a config's optimizer section) is another optimizer or parameter grouping (a MultiOptimizer's "
            "groups, their order or filters) than the run that saved it: resume with the one it was saved "
            "with, or start a new fit from its weights "
            f"(TrainModule.load_from_checkpoint('{folder}'), or load_weights of its {ckpt.MODEL_FILE})"
        ) from None
    saved_settings = contents.state.get(STATE_KEY)
    saved_entries = saved_settings if isinstance(saved_settings, list) else []
    configured = {
        id(part): configured_rate(entry) for part, entry in zip(_optimizers_in(optimizer), saved_entries)
    }
    _warn_of_replaced_learning_rate(folder, optimizer, opt_tree, configured)
    note_configured_rates(
        optimizer, saved_settings
    )  # (the run's, carried into the checkpoints it saves next)
    warn_of_changed_settings(folder, optimizer, contents.state)
    write_state_in_place(optimizer, opt_tree)  # the compiled step holds these containers


def _warn_of_replaced_learning_rate(
    folder: Path,
    optimizer: Any,
    opt_tree: dict[str, Any],
    configured: dict[int, float | None],
    whose: str = "the optimizer's",
) -> None:
    """A fixed learning rate the module now asks for that the checkpoint's replaces, said once: resuming
    restores the optimizer's whole state for an exact resume (as Lightning does), so a lower rate set for
    fine-tuning would otherwise be dropped without a word. (A schedule sets the rate at every step from
    the restored step count: nothing to say.) A MultiOptimizer's groups are each said of (`whose`).
    `configured` holds, by each optimizer's id, the rate its run was configured with (where the checkpoint
    records one): a module that still gives it asks for nothing new, and the checkpoint's other rate is the
    run's own doing (a ReduceLROnPlateau cut, SWA's annealed rate), which the resume goes on with unsaid."""
    if isinstance(optimizer, optim.MultiOptimizer):
        # Its state holds only its optimizers' states ({"states": [...]}): each group's rate is theirs.
        for index, (part, saved_part) in enumerate(zip(optimizer.optimizers, opt_tree.get("states", []))):
            name = f"MultiOptimizer group {index + 1}'s"
            _warn_of_replaced_learning_rate(folder, part, saved_part, configured, name)
        return
    if "learning_rate" in getattr(optimizer, "_schedulers", {}):
        return
    now, saved = optimizer.state.get("learning_rate"), opt_tree.get("learning_rate")
    if not isinstance(now, mx.array) or not isinstance(saved, mx.array) or now.size != 1 or saved.size != 1:
        return
    now_value, saved_value = float(now.item()), float(saved.item())
    if math.isclose(now_value, saved_value, rel_tol=1e-6, abs_tol=0.0):
        return
    run_rate = configured.get(id(optimizer))
    if run_rate is not None and math.isclose(now_value, run_rate, rel_tol=1e-6, abs_tol=0.0):
        return
    warnings.warn(
        f"resuming from {folder}: {whose} learning_rate {now_value:g} (configure_optimizers) is "
        f"replaced by the checkpoint's {saved_value:g}, with the rest of its state, so that training goes on "
        "exactly as it was; to train on at another rate, start from the checkpoint's weights instead "
        "(load_weights, or a recipe's --init_from) or set it after the resume in a callback's on_train_start",
        UserWarning,
        stacklevel=2,
    )


def load_step_state(contents: CheckpointContents, train_step: TrainStep) -> None:
    """The compiled training step's state (accumulated gradients, non-finite counters) from the checkpoint's
    `contents`: refused where the file is missing, since training would not resume exactly."""
    folder = contents.folder
    step_file = folder / ckpt.STEP_STATE_FILE
    if contents.step is None:  # every checkpoint of this format has one: without it resume is inexact
        raise ckpt.CheckpointError(
            f"{folder} is missing {ckpt.STEP_STATE_FILE} (the training step's state: accumulated "
            "gradients, non-finite counters), so training cannot resume exactly from it; its weights "
            f"still load with load_weights({ckpt.MODEL_FILE})"
        )
    step_arrays = contents.step
    if not step_arrays:
        return
    arrays = train_step.state.arrays
    expected = dict(arrays)
    # Past `resume.check_accumulation`, a change of accumulation is at a window boundary, where the
    # accumulated gradients are zeros: the new window starts from zeros, with or without them.
    if not any(k.startswith("grad_accum.") for k in step_arrays):
        expected.pop("grad_accum", None)
    elif "grad_accum" not in arrays:
        step_arrays = {k: v for k, v in step_arrays.items() if not k.startswith("grad_accum.")}
    arrays.update(ckpt.checked_tree(step_arrays, expected, "training step state", step_file))


__all__ = [
    "CheckpointContents",
    "RunState",
    "load_optimizer_state",
    "load_step_state",
    "read_checkpoint",
    "run_config",
]


def _without_former_weights(saved: TrainableSets, module: Any) -> TrainableSets:
    """`saved` without the weights of an earlier release that are attributes now (`ckpt.former_weight`:
    `example_input_array`), which the module no longer has: its resume was refused ("has no parameter
    example_input_array")."""
    have = dict(tree_flatten(module.parameters()))
    for name in ("at_start", "now", "optimized"):
        setattr(saved, name, frozenset(n for n in getattr(saved, name) if not ckpt.former_weight(n, have)))
    return saved
