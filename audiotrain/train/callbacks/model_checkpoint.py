"""`ModelCheckpoint`: save checkpoint folders during `fit`, keep the best k."""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import re
import string
import time
import warnings
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audiotrain._arguments import (
    changed_arguments,
    home_expanded,
    path_argument,
    resolved_path,
    settings_repr,
)
from audiotrain._caller import user_stacklevel
from audiotrain._files import claim_next_folder, probe_writable
from audiotrain._text import listed
from audiotrain.distributed import collectives
from audiotrain.train import checkpoint as ckpt
from audiotrain.train import flags
from audiotrain.train.callback import Checkpoint
from audiotrain.train.callbacks._monitor import (
    MetricNotLoggedError,
    _arguments,
    _check_mode,
    _check_state,
    _checks_at_epoch_end,
    _fit_of_another_trainer,
    _is_better,
    _is_score,
    _metric,
    _plain,
    _score,
    _warn_validation_metric_without_validation,
    _whole_number,
)
from audiotrain.train.loaders import loader_len
from audiotrain.train.metric_values import MetricValue

if TYPE_CHECKING:
    from audiotrain.train.module import TrainModule
    from audiotrain.train.trainer import Trainer


def _insert_metric_names(template: str, equals: str = "=") -> str:
    """`{epoch}-{val_loss:.3f}` → `epoch={epoch}-val_loss={val_loss:.3f}`, leaving `epoch={epoch}` as it is.
    `equals`: what joins a name and its value (Lightning's `CHECKPOINT_EQUALS_CHAR`)."""

    def named(field: re.Match) -> str:
        name = field.group(1)
        written = field.string[: field.start()].endswith(f"{name}{equals}")
        return field.group(0) if written else f"{name}{equals}{field.group(0)}"

    return re.sub(r"(?<!\{)\{([^{}:!]+)[^{}]*\}", named, template)


#: Names written in (not `{epoch}-{step}`), so that `auto_insert_metric_name=False` keeps them.
_DEFAULT_FILENAME = "epoch={epoch}-step={step}"


#: Said where a positional argument has the wrong type: the order is Lightning's.
_ORDER = (
    " (the positional order is Lightning's: ModelCheckpoint(dirpath, filename, monitor, verbose, save_last, "
    "save_top_k, save_on_exception, save_weights_only, mode, ...); pass arguments by name)"
)


# Lightning's ModelCheckpoint arguments without a counterpart here (as `flags.lightning_only`'s).
_CHECKPOINT_LIGHTNING_ONLY: dict[str, tuple[tuple, str]] = {
    "save_on_exception": (
        (False,),
        "a Ctrl-C saves `interrupted` beside the checkpoints (and `last`); after another error resume from "
        "`last` or the newest checkpoint",
    ),
    "enable_version_counter": (
        (True,),
        "a name that a kept checkpoint holds always gets a version suffix (-v1, ...): pass a filename "
        "template with {epoch} or {step} to give each save its own name",
    ),
}


def _every_n(name: str, value: Any) -> int | None:
    """An `every_n_*` argument as an int (numpy's too), or None; anything else refused."""
    if value is None:
        return None
    whole = _whole_number(value)
    if whole is None or whole < 0:
        raise ValueError(
            f"ModelCheckpoint: {name} must be an int >= 0 (0: never, as in Lightning) or None, got {value!r}"
        )
    return whole


class ModelCheckpoint(Checkpoint):
    """Save checkpoint folders during `fit`.

    Args:
        dirpath: where to save; default `<default_root_dir>/checkpoints`. An existing file there is an
            error (raised here, not after the first epoch). With the default, a fit never replaces another
            fit's checkpoints: each fit claims its folder when it starts (by creating it, so two fits started
            together, or one started while another is still in its first epoch, never share one): the first
            `checkpoints/` itself, later ones the first free `checkpoints/version_<k>` (as Lightning versions
            its log folders). A fit that saved nothing there gives its empty folder back when it ends. A fit
            resumed from a checkpoint (`ckpt_path=`) goes on in the folder that checkpoint's ModelCheckpoint
            saved to, and the same Trainer's next fit in its own (a relative default_root_dir is not looked
            up again after an `os.chdir`); while a fit of another process still saves there (its lock,
            `.audiotrain-fit.lock`, as in a dirpath you give), that resumed fit is refused.
            A `dirpath` you give is not versioned: a fresh fit refuses one that already holds checkpoints
            this Trainer did not save (an earlier run's `last` and same-named checkpoints would be
            replaced), unless `overwrite=True`; so does a fit resumed from another run's checkpoint (one
            neither in that folder nor tracking its checkpoints). A fit resumed from an older checkpoint
            of the folder's run keeps the checkpoints saved after it (a name it reaches again is saved
            with a version suffix, `-v1`) and replaces `last`, with a warning.
        filename: a `str.format` template over `epoch`, `step` and any logged metric, e.g.
            "model-{epoch:02d}-{val_loss:.2f}". Default "epoch={epoch}-step={step}". A metric named with dots
            (`{val.acc:.2f}`) is one field, as in Lightning; positional fields (`{}`) are refused here.
        auto_insert_metric_name: as in Lightning, each field is written with its name:
            "{epoch}-{val_loss:.3f}" gives "epoch=1-val_loss=0.798". A field already written so
            ("epoch={epoch}") is left as it is (Lightning would double the name). False: the plain template.
        monitor: metric deciding the top-k; None keeps the most recent checkpoints. `epoch` and `step`
            need no logging (the Trainer's counters, as in Lightning: `monitor="step", mode="max"`).
        mode: "min" or "max" for `monitor`.
        save_top_k: how many checkpoints to keep (-1 all, 0 none besides `last`). A score saves only
            when it beats the k-th best kept, and the worst make room for it, so a fit resumed with a
            smaller `save_top_k` keeps its best checkpoints until better ones replace them.
        save_last: also keep an always-current `last` folder (what `ckpt_path=".../last"` resumes). It is
            written with every save, at every epoch end (as Lightning's, whatever `every_n_*` say: a fit
            that dies between due saves resumes from its newest epoch) and once more when training ends,
            so it holds the final step even when the last save was earlier (e.g. `every_n_train_steps`),
            and after a Ctrl-C, as a copy
            (hard links) of the Trainer's `interrupted` checkpoint (saved in this `dirpath`). "link"
            (Lightning's): where a top-k checkpoint was just saved, `last` is a copy of it by hard links
            (its files are not written twice); otherwise as True.
        every_n_epochs: save at the end of every n-th epoch (after its validation), and after each
            validation inside those epochs when `fit` validates more often (see below). 0 (as
            `every_n_train_steps=0`) never saves by it, as in Lightning: with `save_last`, `last` only.
        every_n_train_steps: save every n optimizer steps instead of per epoch. With a `monitor`, a step
            that a validation follows saves after it (so that its new score counts), and a step before
            the metric is first logged saves after the next validation where this callback saves after
            validations (as Lightning 2.6 defers it), else is skipped with one warning.
        train_time_interval: a `datetime.timedelta`: save each time that much training time has passed
            (checked after each optimizer step; under data parallel at logging steps, on rank 0's
            clock); with a `monitor`, as every_n_train_steps.
        save_on_train_epoch_end: True saves at every (n-th) epoch end, never after a validation inside
            an epoch (with a validation `monitor`, the epoch ends before the first validation skip the
            top-k save with one warning, as Lightning's; a metric still missing after one is an error);
            False saves only after validations (an epoch end without one saves nothing, nor does a fit
            without a val_loader); None (default) decides as described below.
        save_weights_only: leave the optimizer and the training step's state out (Lightning's): such a
            checkpoint loads for `validate`/`test`/`load_from_checkpoint`, and `fit` refuses to resume
            from it, saying so. Under `WeightAveraging`/`EMAWeightAveraging` it holds the average that
            validation ran with, not the training weights (Lightning's holds the training weights: it
            skips callbacks' ``on_save_checkpoint`` there), so it scores what ranked it.
        overwrite: let a fresh fit save into a given `dirpath` that holds an earlier run's checkpoints.
        verbose: print a line at each save, naming its path (and the monitored score), and at each score
            not in the top k, as Lightning's.
        save_on_exception, enable_version_counter: Lightning's, accepted at the values that describe what
            happens here (False, True).

    The arguments come in Lightning's order (`dirpath, filename, monitor, verbose, save_last, save_top_k,
    save_on_exception, save_weights_only, mode, auto_insert_metric_name, every_n_train_steps,
    train_time_interval, every_n_epochs, save_on_train_epoch_end, enable_version_counter`, then ours,
    `overwrite`), so Lightning's positional spelling means what it means there.

    Saves happen at epoch end (after that epoch's validation) or every n steps, so it works with or
    without a validation loader as long as `monitor` names a metric that exists. When `fit` also
    validates inside epochs (`val_check_interval` below 1.0, or an int number of batches), each such
    validation is a save too, as in Lightning, except with a training metric as `monitor` (``train_loss``,
    what `training_step` logs): a validation inside an epoch sees no epoch mean of it (nothing before the
    first logging step, then a logging interval's mean), so it saves at epoch ends only. When epochs end
    without a validation (an int interval, or `check_val_every_n_epoch` above 1) a ModelCheckpoint with a
    validation `monitor` saves only after validations: such an epoch end would rank a stale score (or find
    none yet).
    The Trainer runs checkpoint callbacks after all others, so a checkpoint holds the state that
    EarlyStopping and other callbacks reached at that point.

    As in Lightning, a name that is already taken by a checkpoint kept by this or another
    ModelCheckpoint of the Trainer, or by a checkpoint folder on disk that it does not track (unless
    `overwrite=True`), gets a version suffix (`model`, `model-v1`, ...), so a kept top-k checkpoint is never
    overwritten; the name of the checkpoint being replaced is reused. A callback
    deletes only checkpoints it saved itself, inside its own `dirpath`. Its resume state is keyed by
    monitor, mode, save frequency, filename and dirpath, and restored only into the same `dirpath`, or into a
    run folder that was moved or copied: when the checkpoint resumed lies in this callback's `dirpath`, or
    this `dirpath` lies where the saved one lay beside the resumed checkpoint's folder (a second
    ModelCheckpoint's `run/steps` beside `run/ckpt`), the checkpoints it tracked are those of the same names
    there (so a worse epoch never replaces the best, and a kept checkpoint is still pruned).

    Lightning's attributes: `best_model_path` / `best_model_score`, `best_k_models` (path -> score of the
    top k; empty without a monitor, where `best_model_path` is the newest save), `kth_best_model_path` /
    `kth_value` (the worst of the top k once k are kept), `current_score` (the newest top-k save's score,
    NaN as +-inf), `last_model_path`.
    """

    # Names the callback never gives a top-k checkpoint: `last`, and the folders the Trainer writes itself.
    RESERVED_NAMES = ("last", "interrupted", "nonfinite")

    #: Lightning's name of the `last` checkpoint, set on the class or the instance; a template such as
    #: "{epoch}-last" is filled in as `filename` is (`last` then moves: the one before is removed).
    CHECKPOINT_NAME_LAST = "last"

    #: Lightning's: what joins a field's name and value in a checkpoint's name (`epoch=1`), set on the class
    #: or the instance; "_" gives `epoch_1`, which Hydra's command line takes in `ckpt_path=...`.
    CHECKPOINT_EQUALS_CHAR = "="

    #: Lightning's: what joins the default name's fields and a version suffix (`epoch=1-step=6`, `NAME-v1`);
    #: "_" gives `epoch=1_step=6` and `NAME_v1`. A `filename` you give keeps its own separators.
    CHECKPOINT_JOIN_CHAR = "-"

    #: Lightning's: the first version suffix a name clash takes (`NAME-v1`); 0 gives `NAME-v0`, then `-v1`.
    STARTING_VERSION = 1

    #: Lightning's checkpoint file suffix (".ckpt" there). audiotrain's checkpoints are folders, named
    #: without one: another suffix set on the class or the instance is refused when a stage starts (".ckpt",
    #: a port's copy of Lightning's default, is taken and changes nothing).
    FILE_EXTENSION = ""

    def __init__(
        self,
        dirpath: str | Path | None = None,
        filename: str | None = None,
        monitor: str | None = None,
        verbose: bool = False,
        save_last: bool | None = None,
        save_top_k: int = 1,
        save_on_exception: bool = False,
        save_weights_only: bool = False,
        mode: str = "min",
        auto_insert_metric_name: bool = True,
        every_n_train_steps: int | None = None,
        train_time_interval: datetime.timedelta | None = None,
        every_n_epochs: int | None = None,
        save_on_train_epoch_end: bool | None = None,
        enable_version_counter: bool = True,
        overwrite: bool = False,
        **lightning_args: Any,
    ):
        self._settings = changed_arguments(ModelCheckpoint.__init__, locals())  # (for repr)
        # (Lightning's two arguments without a counterpart are parameters only to keep its positional order.)
        lightning_args = {
            "save_on_exception": save_on_exception,
            "enable_version_counter": enable_version_counter,
            **lightning_args,
        }
        flags.lightning_only(
            lightning_args,
            _arguments(ModelCheckpoint),
            "ModelCheckpoint",
            _CHECKPOINT_LIGHTNING_ONLY,
            "argument",
        )
        if monitor is not None and not isinstance(monitor, str):
            raise TypeError(
                f"ModelCheckpoint: monitor must be a metric name or None, got {monitor!r}{_ORDER}"
            )
        _check_mode(mode, "ModelCheckpoint")
        if _whole_number(save_top_k) is None:
            raise TypeError(f"ModelCheckpoint: save_top_k must be an int, got {save_top_k!r}{_ORDER}")
        save_top_k = _whole_number(save_top_k)
        if save_top_k < -1:
            raise ValueError(f"ModelCheckpoint: save_top_k must be >= -1, got {save_top_k}")
        every_n_epochs = _every_n("every_n_epochs", every_n_epochs)
        every_n_train_steps = _every_n("every_n_train_steps", every_n_train_steps)
        if train_time_interval is not None and (
            not isinstance(train_time_interval, datetime.timedelta) or train_time_interval.total_seconds() < 0
        ):
            raise ValueError(
                "ModelCheckpoint: train_time_interval must be a datetime.timedelta of 0 or more (e.g. "
                f"timedelta(minutes=30)) or None, got {train_time_interval!r}"
            )
        triggers = {
            "every_n_epochs": every_n_epochs,
            "every_n_train_steps": every_n_train_steps,
            "train_time_interval": train_time_interval,
        }
        given = [name for name, value in triggers.items() if value is not None]
        on = [name for name in given if triggers[name] != 0]  # (0 saves never: Lightning's "off")
        if len(on) > 1:
            raise ValueError(f"ModelCheckpoint: set one of {', '.join(on)}, not several")
        if not (save_last is None or isinstance(save_last, bool) or save_last == "link"):
            raise ValueError(
                f"ModelCheckpoint: save_last must be True, False, None or 'link', got {save_last!r}"
            )
        for name, value in (("save_weights_only", save_weights_only), ("verbose", verbose)):
            if not isinstance(value, bool):
                raise ValueError(f"ModelCheckpoint: {name} must be True or False, got {value!r}{_ORDER}")
        if save_on_train_epoch_end is not None and not isinstance(save_on_train_epoch_end, bool):
            raise ValueError(
                "ModelCheckpoint: save_on_train_epoch_end must be True, False or None, got "
                f"{save_on_train_epoch_end!r}"
            )
        if dirpath is not None:
            path_argument(dirpath, "ModelCheckpoint", "dirpath")
        self.dirpath = _checkpoint_dir(dirpath) if dirpath is not None else None
        self._dirpath_given = dirpath is not None
        self._versions_of: Path | None = None  # the default folder whose version this fit picked
        self._versions_root: str | Path | None = None  # the default_root_dir it was found from, as given
        self._created_above: list[
            Path
        ] = []  # folders above the default one its claim created (deepest first)
        self._claimed: Path | None = None  # the dirpath this fit holds (`ckpt.claim_folder`), on rank 0
        self.filename = _checked_filename(filename) or _DEFAULT_FILENAME
        if type(self).format_checkpoint_name is not ModelCheckpoint.format_checkpoint_name:
            raise TypeError(
                f"{type(self).__name__} overrides Lightning's format_checkpoint_name, which no save here "
                "calls (it would be ignored): override format_name(trainer, filename=None, *, zero_for) "
                "instead, which names each save, or pass filename= (CHECKPOINT_EQUALS_CHAR sets the '=')"
            )
        self.auto_insert_metric_name = bool(auto_insert_metric_name)
        self.monitor, self.mode, self.save_last, self.save_top_k = monitor, mode, save_last, save_top_k
        self.every_n_epochs = every_n_epochs
        if not given:
            self.every_n_epochs = 1
        self.every_n_train_steps = every_n_train_steps
        self.train_time_interval = train_time_interval
        self.save_on_train_epoch_end = save_on_train_epoch_end
        self.save_weights_only = save_weights_only
        self.verbose = verbose
        self.overwrite = overwrite
        # The checkpoints this callback keeps (path -> score; None without monitor), oldest first: the top k,
        # or without a monitor the newest k. `best_k_models` shows them where they are ranked.
        self._kept: dict[str, float | None] = {}
        self._best_model_path = ""  # (the top-k one: `best_model_path` adds the Trainer's default's `last`)
        self._trainers_default = False  # (made by the Trainer, where `callbacks` holds no ModelCheckpoint)
        self._best_model_score: MetricValue | None = None
        # Lightning's: the newest top-k save's score (NaN as +-inf); None before one or without a monitor.
        self.current_score: MetricValue | None = None
        self.last_model_path = ""
        self._last_saved_step = -1
        self._last_current_step = -1  # (the step of a `last` saved alone, without a top-k save)
        self._step_at_train_start = -1  # (a resumed fit that trains nothing keeps `last`)
        self._restored = False
        self._restored_run = False  # a resumed checkpoint's state restored here: its run goes on
        # The folder that run saved in when its state was saved, as the state names it: the original's where
        # the run folder was copied or moved since. Its other saves name their checkpoints by it.
        self._run_saved_in: str | None = None
        # A resumed checkpoint's state of this callback that was not restored: the folder it was saved for,
        # and where that folder is now if the run folder moved (None: not known). Its refusal names them.
        self._state_saved_for: tuple[str, Path | None] | None = None
        self._fitted_in: weakref.ref | None = None  # the Trainer whose fit the state above belongs to
        self._last_written = (
            ""  # the `last` this run wrote or restored (a CHECKPOINT_NAME_LAST template moves it)
        )
        self._reused = False  # its state was another Trainer's run, dropped at this fit's setup
        self._stop_saves: set[str] = set()  # the Trainer's `interrupted` of this run (a re-fit's own)
        # Within one fit: a step save that waits for the validation after its step, whether a validation
        # or an epoch has ended yet, whether a monitor missing at a step save was warned about, and the clock
        # of train_time_interval.
        self._save_after_validation = False
        self._validated = False
        self._epoch_ended = False
        self._warned_missing = False
        self._warned_zero_fields = False
        self._timer_started = 0.0

    @property
    def best_model_path(self) -> str:
        """Lightning's: the best checkpoint kept; without a monitor the newest save, as Lightning's default
        ModelCheckpoint() keeps it. The Trainer's default, ``ModelCheckpoint(save_last=True, save_top_k=0)``,
        stands in for that one and saves only `last`: its best is `last`, so that
        ``load_from_checkpoint(trainer.checkpoint_callback.best_model_path)`` loads what
        ``ckpt_path="best"`` does (one you pass with ``save_top_k=0`` keeps it empty, as Lightning's)."""
        if not self._best_model_path and self._trainers_default:
            return self.last_model_path
        return self._best_model_path

    @best_model_path.setter
    def best_model_path(self, value: str) -> None:
        self._best_model_path = value

    @property
    def best_k_models(self) -> dict[str, float]:
        """Lightning's: the top-k checkpoints kept, path -> score. Empty without a monitor, as in Lightning
        (nothing is ranked: `best_model_path` is the newest save)."""
        return self._kept if self.monitor is not None else {}

    @best_k_models.setter
    def best_k_models(self, value: dict[str, float | None]) -> None:
        self._kept = {path: _score(score) for path, score in value.items()}

    @property
    def kth_best_model_path(self) -> str:
        """Lightning's: the worst of the top k once k are kept (the next to be replaced; with save_top_k=-1
        the worst of all), "" before that and without a monitor."""
        if not self.best_k_models or 0 <= len(self._kept) < self.save_top_k:
            return ""
        return self._worst()[0]

    @property
    def kth_value(self) -> MetricValue:
        """Lightning's: the score of `kth_best_model_path`; inf for mode "min" (-inf for "max") while there
        is none. A float that answers `.item()`, as Lightning's tensor."""
        path = self.kth_best_model_path
        return _score(self._kept[path] if path else (math.inf if self.mode == "min" else -math.inf))

    @property
    def best_model_score(self) -> MetricValue | None:
        """Lightning's: the score of `best_model_path` (None before a ranked save and without a monitor): a
        float that answers `.item()`, as Lightning's tensor (`best_model_score.item()` ends an Optuna
        objective)."""
        return self._best_model_score

    @best_model_score.setter
    def best_model_score(self, value: float | None) -> None:
        self._best_model_score = _score(value)

    def to_yaml(self, filepath: str | Path | None = None) -> None:
        """Lightning's: writes `best_k_models` (checkpoint path: score) as YAML to `filepath`, by default
        `<dirpath>/best_k_models.yaml`; scores are plain floats. Without a `filepath` it needs a `dirpath`,
        which a callback left to default only has once `fit` has started."""
        import yaml

        if filepath is None:
            if self.dirpath is None:
                raise ValueError(
                    "ModelCheckpoint.to_yaml(): no dirpath yet (it is set when fit starts): pass "
                    "filepath=..., or call it after fit"
                )
            filepath = self.dirpath / "best_k_models.yaml"
        best_k = {path: float(score) for path, score in self.best_k_models.items()}
        home_expanded(filepath).write_text(yaml.safe_dump(best_k))

    def _key(self, dirpath: Path | str | None) -> str:
        settings = {
            "monitor": self.monitor,
            "mode": self.mode,
            "every_n_train_steps": self.every_n_train_steps,
            "every_n_epochs": self.every_n_epochs,
            "filename": self.filename,
            "dirpath": str(dirpath) if dirpath is not None else None,
        }
        if self.train_time_interval is not None:  # (only then: the keys that checkpoints already hold stay)
            settings["train_time_interval"] = self.train_time_interval.total_seconds()
        return f"ModelCheckpoint{settings!r}"

    @property
    def state_key(self) -> str:
        return self._key(self.dirpath)

    def __repr__(self) -> str:
        """The settings given, the folder a fit chose where none was, and the best score once there is one:
        ``ModelCheckpoint(monitor='val_loss', save_top_k=2, dirpath='/r/ckpts', best_model_score=0.41)``.
        """
        found = {}
        if not self._dirpath_given and self.dirpath is not None:
            found["dirpath"] = str(self.dirpath)
        if self.best_model_score is not None:
            found["best_model_score"] = self.best_model_score
        return settings_repr("ModelCheckpoint", {**self._settings, **found})

    def setup(self, trainer: Trainer, module: TrainModule, stage: str) -> None:
        if self.FILE_EXTENSION not in ("", ".ckpt"):
            raise ValueError(
                f"ModelCheckpoint.FILE_EXTENSION is {self.FILE_EXTENSION!r}: audiotrain's checkpoints are "
                "folders (model.safetensors, trainer_state.json, ...), named without a file suffix, so it "
                "cannot be used; leave it unset (or '.ckpt', Lightning's default, which changes nothing)"
            )
        if stage == "fit":
            self._reused = _fit_of_another_trainer(self, trainer)
            if self._reused:
                self._forget_run()
        default = _checkpoint_dir(Path(trainer.default_root_dir) / "checkpoints", check=False)
        if self._versions_of is not None and self._versions_root == trainer.default_root_dir:
            # The same Trainer fitting again goes on with its run, in its folder: a relative
            # default_root_dir is not read again from a cwd a notebook cell changed since (as Lightning's
            # ModelCheckpoint keeps the dirpath its first fit resolved).
            default = self._versions_of
        if stage == "fit" and not self._dirpath_given and self._versions_of != default:
            _checkpoint_dir(default)  # a file in the way is named before versions are looked for
            sharing = [cb for cb in _checkpointers(trainer, self) if cb._versions_of == default]
            if sharing:  # the Trainer's other default ModelCheckpoints save beside it, as in Lightning
                self.dirpath = sharing[0].dirpath
            else:
                # Rank 0 claims the folder: the other ranks of a data-parallel job see it appear.
                chosen = None
                if collectives.is_main_process():
                    _check_writable(default, "the Trainer's default_root_dir")
                    # (the folders above it this claim creates: given back with it, see `teardown`)
                    self._created_above = [p for p in default.parents if not p.exists()]
                    chosen = str(claim_next_folder(_version_folders(default)))
                self.dirpath = Path(collectives.broadcast_from_main(chosen))
            self._versions_of, self._versions_root = default, trainer.default_root_dir
        if self.dirpath is None:
            self.dirpath = default
        self._restored, self._restored_run, self._state_saved_for = False, False, None
        self._run_saved_in = None
        # (Before a resumed checkpoint restores a step save that waits for its validation.)
        self._save_after_validation, self._validated = False, False
        self._epoch_ended, self._warned_missing, self._warned_zero_fields = False, False, False
        if stage != "fit":
            return
        _checkpoint_dir(self.dirpath)
        for other in _checkpointers(trainer, self):
            if other._key(other.dirpath or default) == self.state_key:
                raise ValueError(
                    f"Two ModelCheckpoint callbacks save to {self.dirpath} with the same monitor, mode, "
                    f"frequency and filename {self.filename!r}: their resume states would collide. Give "
                    "them different dirpath or filename values (or drop the duplicate)."
                )
        # Only rank 0 writes (and heals) checkpoint folders; every rank hears of a refusal there.
        collectives.on_main_process(lambda: self._prepare_folder(trainer))

    def _forget_run(self) -> None:
        """Start as a new ModelCheckpoint would: the checkpoints tracked, the best and `last` were another
        Trainer's run (kept on disk, never deleted by this one), and the default folder it picked was that
        run's (this one gets its own version)."""
        self._kept, self.best_model_path, self.best_model_score = {}, "", None
        self.current_score = None
        self.last_model_path, self._last_saved_step, self._last_written = "", -1, ""
        self._last_current_step = -1
        self._stop_saves = set()
        if not self._dirpath_given:
            self.dirpath, self._versions_of = None, None

    def _prepare_folder(self, trainer: Trainer) -> None:
        where = f"ModelCheckpoint(dirpath={str(self.dirpath)!r})"
        _check_writable(self.dirpath, where)
        ckpt.check_locks(self.dirpath)  # (a file system without them: said before training, saves go on)
        if self._claimed is None:
            # A second fit saving there at the same time is refused: a folder you name is not versioned, and
            # a version of the default folder is where a fit resumed from one of its checkpoints goes on
            # (`_continue_in`). The claim also shows the fit as running to `audiotrain runs`.
            ckpt.claim_folder(self.dirpath, where)
            self._claimed = self.dirpath
        try:
            for folder in self._folders_to_heal():
                ckpt.heal_folder(folder)  # what a killed run left: temporary folders, a missing `last`
            self._refuse_users_entries(trainer)
        except BaseException:
            self._release_folder()  # (no teardown follows an error in setup)
            raise

    def _folders_to_heal(self) -> list[Path]:
        """This fit's folder and, when it is a version of the default one, the others: a fit killed mid-save
        leaves its hidden temporary folder (as large as a checkpoint) where no later fit saves again, as each
        saves to a new version. Safe beside live fits: a heal leaves what a live writer holds alone."""
        if self._versions_of is None:
            return [self.dirpath]
        return [self._versions_of, *sorted(p for p in self._versions_of.glob("version_*") if p.is_dir())]

    def _release_folder(self) -> None:
        if self._claimed is not None:
            ckpt.release_folder(self._claimed)
            self._claimed = None

    def _refuse_users_entries(self, trainer: Trainer) -> None:
        """A file or folder that is not a checkpoint (a user's) under a name this fit will save is refused
        now, where the name is known before the fit starts: `last`, a filename without fields, and the
        Trainer's own `interrupted` / `nonfinite` beside the first ModelCheckpoint's saves. (Other names are
        known at each save: `_free_path` saves beside the user's entry then.)"""
        # (A CHECKPOINT_NAME_LAST template's name is known at each save.)
        named_last = self.save_last and not self._last_name_fields()
        names = {self.CHECKPOINT_NAME_LAST: "save_last=True"} if named_last else {}
        fields = [field for _, field, _, _ in string.Formatter().parse(self.filename) if field]
        if self.save_top_k != 0 and not fields:
            names[self.format_name(trainer)] = f"filename={self.filename!r}"
        if trainer.callbacks.checkpoint_folder(trainer.default_root_dir) == self.dirpath:
            for name in ("interrupted", "nonfinite"):
                names[name] = "the Trainer's checkpoint after a Ctrl-C or non-finite steps"
        for name, why in names.items():
            what = ckpt.foreign_entry(self.dirpath / name)
            if what:
                raise ckpt.NameTakenError(
                    f"ModelCheckpoint(dirpath={str(self.dirpath)!r}): {self.dirpath / name} is {what}, and this "
                    f"fit would save a checkpoint under that name ({why}); a save never replaces what it did not "
                    "write. Move it away, or save to another dirpath"
                )

    def teardown(self, trainer: Trainer, module: TrainModule, stage: str) -> None:
        if stage == "fit":
            self._release_folder()  # the next fit (a resume) may save to the dirpath you gave
            if trainer.interrupted_checkpoint is not None:  # (a plain fit again goes on with this run)
                self._stop_saves.add(str(trainer.interrupted_checkpoint))
        # A fit that saved nothing in the default folder it claimed (fast_dev_run, an error in its first
        # epoch) gives the empty folder back, so it leaves no empty version behind and the next fit claims
        # afresh. One process only: the ranks of a data-parallel job would need a collective to agree on it.
        if stage != "fit" or self._versions_of is None or collectives.world_size() > 1:
            return
        with contextlib.suppress(OSError):
            self.dirpath.rmdir()  # only if empty
            # ... with the folders above it that the claim created (``./logs`` of a fit that failed on its
            # checkpoint), unless something else (a logger) has written there meanwhile
            for folder in (
                self._versions_of if self.dirpath != self._versions_of else None,
                *self._created_above,
            ):
                if folder is not None:
                    folder.rmdir()
        if not self.dirpath.exists():
            self._versions_of, self._created_above = None, []

    def refuse_an_earlier_run(self, trainer: Trainer, resumed: Path | None = None) -> None:
        """Before a fresh fit (no `ckpt_path`), or one that `resumed` a checkpoint of another run (see
        `_check_resumed_folder`): a `dirpath` the user gave that holds checkpoints no ModelCheckpoint of this
        Trainer saved (or restored) is an earlier run's, and its `last` and same-named checkpoints would be
        replaced. Called before anything is saved."""
        if not self._dirpath_given or self.overwrite or trainer.fast_dev_run:
            return
        tracked = set(self._kept) | {self.last_model_path} | self._stop_saves | self._held_by_others(trainer)
        found = None
        if collectives.is_main_process():  # rank 0 looks, every rank gets its answer (no rank hangs)
            folders = sorted(self.dirpath.iterdir()) if self.dirpath.is_dir() else []
            found = [p.name for p in folders if (p / ckpt.STATE_FILE).is_file() and str(p) not in tracked]
        found = collectives.broadcast_from_main(found)
        if found:
            shown = listed(found, 5)
            # (This object saved them in another Trainer's fit: a fresh fit of a new Trainer is a new run.)
            reused = (
                " This ModelCheckpoint object saved them in another Trainer's fit; a fresh fit of a new "
                "Trainer starts a new run (to go on with that one, call fit again on its Trainer)."
                if self._reused
                else ""
            )
            # (Resuming a checkpoint that run did not save does not continue it: its names would be replaced.)
            which = (
                f"; this fit resumes {resumed}, a checkpoint of another run, and would replace them. To go "
                "on with the run of this folder, resume one of its checkpoints; otherwise save"
                if resumed is not None
                else "; this fit would replace them. Resume that run with fit(ckpt_path=...), save"
            )
            if resumed is not None and self._state_saved_for is not None:
                # (The resumed checkpoint holds this callback's state, saved for another folder than this.)
                saved_for, now = self._state_saved_for
                which = (
                    f"; this fit resumes {resumed}, and this ModelCheckpoint's state in it was saved for "
                    f"{saved_for}, not for this folder: it tracks none of these, and this fit would replace "
                    f"them. To go on with the checkpoints that state tracks, save to {now or saved_for}; "
                    "otherwise save"
                )
            raise FileExistsError(
                f"ModelCheckpoint(dirpath={str(self.dirpath)!r}) already holds checkpoints of an earlier run "
                f"({shown}){which} to another dirpath (or leave dirpath out: the default folder is "
                f"versioned), or pass ModelCheckpoint(..., overwrite=True) to save over it.{reused}"
            )

    def _check_resumed_folder(self, trainer: Trainer, resumed: Path, progress: Any) -> None:
        """A resumed fit continues the run of this callback's folder only where the checkpoint resumed lies
        in it or tracked its checkpoints (its state restored here); otherwise the folder's checkpoints are
        another run's, refused as for a fresh fit. The run's own checkpoints that the resumed one does not
        track (saved after it) are kept: a name reached again is saved with a version suffix (`_free_path`),
        as in Lightning; only `last` is replaced, being the newest of the run that goes on. One saved at the
        resumed checkpoint's own point of training (`progress`: another ModelCheckpoint's save at the same
        epoch end, just after `last`) is not after it: the resumed run goes on past that point and never
        reaches its name again, so it is not warned about."""
        if not self._restored_run and resumed.parent != self.dirpath:
            self.refuse_an_earlier_run(trainer, resumed)
            return
        if not collectives.is_main_process() or self.overwrite or not self.dirpath.is_dir():
            return  # (one warning for the job; overwrite=True: the user lets saves replace them)
        # One warning per folder: the recipe's `best`/`last` and --save_every callbacks share one, and each
        # said it, nearly word for word. The first callback saving there speaks for all of them.
        on_folder = [
            cb
            for cb in trainer.callbacks
            if isinstance(cb, ModelCheckpoint) and cb.dirpath == self.dirpath and not cb.overwrite
        ]
        if on_folder[0] is not self:
            return
        tracked = set(self._kept) | self._held_by_others(trainer) | {str(resumed)}
        later = [
            p.name
            for p in sorted(self.dirpath.iterdir())
            if ckpt.is_checkpoint_folder(p)
            and str(p) not in tracked
            and p.name not in self.RESERVED_NAMES
            and not self._is_last_name(p.name)
            and not _saved_at(p, progress)
        ]
        if not later:
            return
        saving_last = [cb for cb in on_folder if cb.save_last and ckpt.is_checkpoint_folder(cb.last_path)]
        last = (
            "; `last` is replaced by this run's (it is the newest checkpoint of the run that goes on)"
            if saving_last
            else ""
        )
        # A requeued job that resumes the checkpoint its first stop printed (`interrupted`), after a later
        # part trained past it, would train those epochs again: the way to go on from where the run got to.
        last_path = saving_last[0].last_path if saving_last else None
        newest = _global_step(last_path) if last_path else None
        if newest is not None and newest > (progress or {}).get("global_step", newest):
            last += f"; to go on from the newest instead, resume {last_path} (global step {newest})"
        warnings.warn(
            f"ModelCheckpoint: {self.dirpath} holds checkpoints saved after {resumed.name}, the checkpoint "
            f"resumed: {listed(later, 5)}; they are kept: where this run reaches one of their names it saves "
            f"beside it with a version suffix (-v1, as Lightning does){last}",
            stacklevel=user_stacklevel(),  # (the user's fit call, however deep the resume is)
        )

    # -- when to save ---------------------------------------------------------------------------
    def on_fit_start(self, trainer, module) -> None:
        saves = self.every_n_epochs or self.every_n_train_steps or self.train_time_interval is not None
        # save_on_train_epoch_end=False: it saves only after validations, so a fit without any saves nothing
        # by its monitor (as in Lightning), rather than failing.
        if saves and self.save_on_train_epoch_end is not False:
            _warn_validation_metric_without_validation(trainer, self.monitor, "ModelCheckpoint")

    def on_train_start(self, trainer, module) -> None:
        self._timer_started = time.monotonic()
        self._step_at_train_start = trainer.global_step

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if not (outputs or {}).get("stepped") or not (self._steps_due(trainer) or self._time_due(trainer)):
            return
        if self.monitor and trainer.validates_after_this_batch:
            self._save_after_validation = True  # so that the step's new score counts (Lightning: the old)
        elif self._awaits_metric(trainer):
            # Lightning 2.6's: a save that saves after validations waits for the next one, silently (its
            # `_defer_save_until_validation`); one saving at epoch ends skips, with one warning here.
            self._skip_save(trainer, f"step {trainer.global_step}", defer=self._defers_to_validation(trainer))
        else:
            self._save(trainer)

    def _steps_due(self, trainer: Trainer) -> bool:
        n = self.every_n_train_steps
        return bool(n) and trainer.global_step > 0 and trainer.global_step % n == 0

    def _time_due(self, trainer: Trainer) -> bool:
        if self.train_time_interval is None:
            return False
        # Under data parallel the ranks must agree: rank 0's clock decides, where the ranks meet anyway.
        if collectives.world_size() > 1 and not trainer._ranks_meet():
            return False
        now = time.monotonic()
        due = collectives.broadcast_from_main(
            now - self._timer_started >= self.train_time_interval.total_seconds()
        )
        if due:
            self._timer_started = now
        return bool(due)

    def _awaits_metric(self, trainer: Trainer) -> bool:
        """Whether the monitor is missing at a save and may still be logged in this fit: no validation has
        run yet and one is to come (a val loader with batches), or no epoch has ended yet (its hooks may
        log it). Lightning then skips the top-k save with a warning; otherwise the metric is missing for
        good, and the save names why."""
        if not self.monitor or self._monitor_now(trainer) is not None or self._validated:
            return False
        return _validation_to_come(trainer) or not self._epoch_ended

    def _defers_to_validation(self, trainer: Trainer) -> bool:
        """Whether a step save missing its monitor waits for the next validation: where this callback saves
        after validations (Lightning's `not _should_save_on_train_epoch_end`) and one is to come."""
        return _validation_to_come(trainer) and self._saves_after_validations(trainer)

    def _monitor_now(self, trainer: Trainer) -> float | None:
        """The monitor's value now, or None where nothing logged it. `epoch` and `step` are always there
        (the Trainer's counters, unless logged under that name), as Lightning's `_monitor_candidates` adds
        them: its docs keep the newest k saves with `monitor="step", mode="max"`."""
        if self.monitor in trainer.callback_metrics:
            return float(trainer.callback_metrics[self.monitor])
        counters = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        return float(counters[self.monitor]) if self.monitor in counters else None

    def _skip_save(self, trainer: Trainer, where: str, defer: bool = False) -> None:
        """A save while the monitor `_awaits_metric`: the top-k save is skipped until it is logged, with one
        warning; `defer`: it is done after the next validation instead, without one (as Lightning 2.6 defers
        it). `last` is saved now either way: a crash then has it to resume from."""
        if self.save_last and not trainer.fast_dev_run:
            self._last_current_step = trainer.global_step
            self._save_last(trainer)
        if defer:
            self._save_after_validation = True
            return
        if self._warned_missing:
            return
        self._warned_missing = True
        if self.every_n_train_steps or self.train_time_interval is not None:
            every = (
                f"every_n_train_steps={self.every_n_train_steps}"
                if self.every_n_train_steps
                else f"train_time_interval={self.train_time_interval}"
            )
        else:
            every = f"save_on_train_epoch_end={self.save_on_train_epoch_end}"
        warnings.warn(
            f"ModelCheckpoint(monitor={self.monitor!r}, {every}): {self.monitor!r} is not logged yet at "
            f"{where}; saves are skipped until it is (as in Lightning: before the first validation a "
            "validation metric has no value)",
            stacklevel=2,
        )

    def on_train_epoch_end(self, trainer, module) -> None:
        self._save_at_epoch_end(trainer)
        self._keep_last_current(trainer)

    def _save_at_epoch_end(self, trainer: Trainer) -> None:
        validated_here = trainer.validated_at_epoch_end
        if self._save_after_validation and validated_here:
            self._save_after_validation = False
            self._save(trainer)
        self._epoch_ended = True
        if not self._due_this_epoch(trainer):
            return
        if self._saves_after_validations(trainer) and not validated_here:
            return  # no validation at this epoch end: a monitored score would be stale or missing
        if self._awaits_metric(trainer):  # (save_on_train_epoch_end=True before the first validation)
            self._skip_save(trainer, f"the end of epoch {trainer.current_epoch}")
            return
        self._save(trainer)

    def _keep_last_current(self, trainer: Trainer) -> None:
        """`save_last`: `last` is saved at every epoch end that no save of this callback covered, whatever
        `every_n_epochs` / `every_n_train_steps` say (Lightning 2.6 saves it only beside a top-k save), so a
        fit that dies between due saves resumes from its newest epoch."""
        if not self.save_last or trainer.fast_dev_run:
            return
        if trainer.global_step in (self._last_saved_step, self._last_current_step):
            return
        self._last_current_step = trainer.global_step
        self._save_last(trainer)

    def on_validation_end(self, trainer, module) -> None:
        if trainer.sanity_checking or not trainer.fitting:
            return
        self._validated = True
        # Validations inside an epoch (val_check_interval below 1.0, or an int) each get a save, as in
        # Lightning. The one that closes an epoch under a float interval is saved at the epoch end
        # instead, so that checkpoint resumes after the epoch's end hooks.
        if not (
            isinstance(trainer.val_check_interval, int)
            or trainer.batch_in_epoch < trainer.num_training_batches
        ):
            return
        if self._save_after_validation:
            self._save_after_validation = False
            self._save(trainer)
        if (
            self._due_this_epoch(trainer)
            and trainer.validates_within_epochs
            and not self.save_on_train_epoch_end
            and not self._ranks_epoch_means_only(trainer)
        ):
            self._save(trainer)

    def _due_this_epoch(self, trainer: Trainer) -> bool:
        n = self.every_n_epochs
        return bool(n) and (trainer.current_epoch + 1) % n == 0

    def _saves_after_validations(self, trainer: Trainer) -> bool:
        """Whether epoch ends save only where a validation just ran (else every due epoch end does)."""
        if self.save_on_train_epoch_end is not None:
            return not self.save_on_train_epoch_end
        return bool(self.monitor) and not _checks_at_epoch_end(trainer, self.monitor, None)

    def _ranks_epoch_means_only(self, trainer: Trainer) -> bool:
        """Whether `save_on_train_epoch_end`, left unset, saves at epoch ends only for the monitor's sake:
        a training metric while `fit` validates inside epochs (`_checks_at_epoch_end`)."""
        return (
            self.save_on_train_epoch_end is None
            and bool(self.monitor)
            and trainer.validates_within_epochs
            and _checks_at_epoch_end(trainer, self.monitor, None)
        )

    def on_train_end(self, trainer, module) -> None:
        # The Trainer calls this when fit ends normally (after a Ctrl-C it makes `last` a copy of `interrupted`).
        if self._save_after_validation and self._monitor_now(trainer) is not None:
            self._save(trainer)  # (the validation it waited for did not come)
        self._save_after_validation = False
        done = (self._last_saved_step, self._last_current_step)
        # A resumed fit that trained nothing (a finished run resumed again) keeps the run's `last` as it is,
        # as Lightning's fit loop skips on_train_end there: saving it again would write this Trainer's
        # callbacks over the run's (the saved state of one renamed or left out gone from the file, a fresh
        # one's zeros in its place). (Read from the restored state, the same on every rank.)
        kept = (
            self._restored_run and self.last_model_path and trainer.global_step == self._step_at_train_start
        )
        if self.save_last and not trainer.fast_dev_run and trainer.global_step not in done and not kept:
            self._last_saved_step = trainer.global_step
            self._save_last(trainer)

    # -- how --------------------------------------------------------------------------------------
    def format_name(
        self, trainer: Trainer, filename: str | None = None, *, zero_for: frozenset[str] = frozenset()
    ) -> str:
        """The folder name a checkpoint saved now gets (before any `-v1` suffix for a name already taken):
        `filename` (default: this callback's) filled in with `epoch`, `step` and `trainer.callback_metrics`,
        each field written `name=value` with `auto_insert_metric_name`; a `/` or `\\` in the result becomes
        `_`. A metric named with dots (`{val.acc:.2f}`) is one field, as in Lightning. A field that nothing
        logged raises KeyError, naming what is there, unless it is one of `zero_for`, written as 0.
        (What Lightning's `format_checkpoint_name` gives at a save.)"""
        filename = self.filename if filename is None else filename
        fields = {**dict.fromkeys(zero_for, 0), **trainer.callback_metrics}
        # A logged "epoch" or "step" (`self.log("step", self.current_epoch)`) fills its field as a whole
        # number, as Lightning's `_monitor_candidates` casts it: "step=1", not the float "step=1.0".
        for key, own in (("epoch", trainer.current_epoch), ("step", trainer.global_step)):
            logged = fields.get(key)
            fields[key] = int(logged) if isinstance(logged, (int, float)) and math.isfinite(logged) else own
        try:
            name = self._filled(filename, fields)
        except KeyError as err:
            missing = MetricNotLoggedError(
                f"ModelCheckpoint filename {filename!r} uses {err.args[0]!r}, which was not logged; "
                f"available: {', '.join(sorted(fields))}"
            )
            missing.field = err.args[0]  # (for `_name_for_save`)
            raise missing from None
        return re.sub(r"[\\/]", "_", name)

    def _filled(self, filename: str, fields: dict[str, Any]) -> str:
        """`filename` filled in with `fields`, each named as `auto_insert_metric_name` says (KeyError for a
        field not in `fields`), before a `/` in it becomes `_`."""
        equals = self.CHECKPOINT_EQUALS_CHAR
        if filename == _DEFAULT_FILENAME:
            filename = f"epoch{equals}{{epoch}}{self.CHECKPOINT_JOIN_CHAR}step{equals}{{step}}"
        template = _insert_metric_names(filename, equals) if self.auto_insert_metric_name else filename
        return _FieldFormatter(filename).format(template, **fields)

    def format_checkpoint_name(
        self, metrics: dict[str, Any], filename: str | None = None, ver: int | None = None
    ) -> str:
        """Lightning's: the path of a checkpoint saved with `metrics` (`epoch`, `step` and metric values),
        named by `filename` (default: this callback's), with `-v<ver>` where given; a field that `metrics`
        lacks is written as 0, as there. Before `fit` gives the default `dirpath`, the name alone. Saves
        name their checkpoints with `format_name`, so a subclass overriding this one is refused."""
        filename = _checked_filename(filename) or self.filename
        fields = dict(metrics)
        while True:
            try:
                name = re.sub(r"[\\/]", "_", self._filled(filename, fields))
                break
            except KeyError as err:
                fields[err.args[0]] = 0
        name = name if ver is None else f"{name}{self.CHECKPOINT_JOIN_CHAR}v{ver}"
        return str(self.dirpath / name) if self.dirpath is not None else name

    def _save(self, trainer: Trainer) -> None:
        if trainer.global_step == self._last_saved_step or trainer.fast_dev_run:
            return
        self._last_saved_step = trainer.global_step
        forced = "save_on_train_epoch_end=True" if self.save_on_train_epoch_end else ""
        score = self._monitor_now(trainer) if self.monitor else None
        if self.monitor and score is None:  # (raises, naming why it is missing)
            score = _metric(trainer, self.monitor, "ModelCheckpoint", forced, "save_on_train_epoch_end")
        if score is not None and math.isnan(score):
            score = math.inf if self.mode == "min" else -math.inf
        if self.save_last:
            self.last_model_path = self.last_path  # (before the top-k save, which then records it too)
        saved = self.save_top_k != 0 and self._qualifies(score)
        path = self._save_top_k(trainer, score) if saved else None
        if self.verbose and self.monitor and self.save_top_k != 0 and not saved:  # (Lightning's words)
            trainer._note(
                f"Epoch {trainer.current_epoch:d}, global step {trainer.global_step:d}: {self.monitor!r} was not "
                f"in top {self.save_top_k}"
            )
        if self.save_last == "link" and path is not None:
            self._link_last(trainer, path)
        elif self.save_last:
            self._save_last(trainer)
        if saved or self.save_last:
            for lg in trainer.loggers:  # Lightning's hook: loggers with log_model upload checkpoints
                if callable(getattr(lg, "after_save_checkpoint", None)):
                    lg.after_save_checkpoint(self)

    def _save_top_k(self, trainer: Trainer, score: float | None) -> str:
        name = self._name_for_save(trainer)  # first: it raises for a metric that was not logged
        # The worst kept checkpoints that this one pushes out of the top k: after `_qualifies` all are worse
        # than it, and more than one when the resumed run kept more than `save_top_k`.
        replaced = []
        while self.save_top_k != -1 and len(self._kept) >= self.save_top_k:
            path, _ = self._worst()
            del self._kept[path]
            replaced.append(path)
        path = self._free_path(trainer, name, reusable=replaced)
        # The state is updated before saving so that the checkpoint knows it is one of the top k.
        self._kept[path] = _score(score)
        if self.monitor is not None:  # (Lightning sets it before the save, so the checkpoint holds it)
            self.current_score = self._kept[path]
        if self.monitor is None:
            self.best_model_path, self.best_model_score = path, None
        else:
            pick = min if self.mode == "min" else max
            self.best_model_path = pick(self._kept, key=lambda p: self._kept[p])
            self.best_model_score = self._kept[self.best_model_path]
        self._save_checkpoint(trainer, path)
        for old in replaced:
            if old != path:
                self._remove(trainer, old)
        if self.verbose:
            trainer._note(
                f"ModelCheckpoint: saved {path}" + (f" ({self.monitor}={score:.5g})" if self.monitor else "")
            )
        return path

    def _save_checkpoint(self, trainer: Trainer, filepath: str) -> None:
        """Write the checkpoint at `filepath`: every save of this callback (top-k and `last`) goes through
        it, as through Lightning's hook of this name, so a subclass overriding it (to copy or upload each
        save after ``super()._save_checkpoint(trainer, filepath)``) sees them all."""
        trainer.save_checkpoint(filepath, weights_only=self.save_weights_only)

    def _name_for_save(self, trainer: Trainer, template: str | None = None) -> str:
        """`format_name`, where a metric of the name that is not logged yet but may still be (no validation
        has run and one is to come, or no epoch has ended) is written as 0, as Lightning writes it, with one
        warning: an `every_n_train_steps` save before the first validation named `{val_loss}` stopped the
        fit. A metric still missing after that is a KeyError naming what is there (a typo, most likely)."""
        zero_for: frozenset[str] = frozenset()
        while True:
            try:
                name = self.format_name(trainer, template, zero_for=zero_for)
                break
            except MetricNotLoggedError as err:
                if not self._may_still_log(trainer, err.field):
                    raise
                zero_for |= {err.field}
        if zero_for and not self._warned_zero_fields:
            self._warned_zero_fields = True
            warnings.warn(
                f"ModelCheckpoint: the name {template or self.filename!r} uses "
                f"{', '.join(map(repr, sorted(zero_for)))}, which "
                f"is not logged yet at step {trainer.global_step}; written as 0 in this checkpoint's name, "
                "as Lightning does",
                stacklevel=3,
            )
        return name

    def _may_still_log(self, trainer: Trainer, name: str) -> bool:
        """Whether `name`, missing from `callback_metrics`, may still be logged in this fit: before the first
        validation where one is to come, or before the first epoch end (its hooks may log it)."""
        if name in trainer.callback_metrics or self._validated:
            return False
        return _validation_to_come(trainer) or not self._epoch_ended

    @property
    def last_path(self) -> str:
        """Where `last` lives now (the Trainer also makes it a copy of `interrupted` after a Ctrl-C):
        `CHECKPOINT_NAME_LAST` in `dirpath`, a template filled in for the Trainer's current step."""
        name = self.CHECKPOINT_NAME_LAST
        trainer = self._fitted_in() if self._fitted_in is not None else None
        if trainer is not None and self._last_name_fields():
            name = self._name_for_save(trainer, name)
        return str(self.dirpath / name)

    def _last_name_fields(self) -> list[str]:
        return [field for _, field, _, _ in string.Formatter().parse(self.CHECKPOINT_NAME_LAST) if field]

    def _is_last_name(self, name: str) -> bool:
        """Whether `name` is one `CHECKPOINT_NAME_LAST` gives (any values in its template's fields)."""
        parts = string.Formatter().parse(self.CHECKPOINT_NAME_LAST)
        pattern = "".join(re.escape(text) + (".+" if field else "") for text, field, _, _ in parts)
        return re.fullmatch(pattern, name) is not None

    def _save_last(self, trainer: Trainer) -> None:
        self.last_model_path = self.last_path
        self._save_checkpoint(trainer, self.last_model_path)
        self._remove_previous_last(trainer)

    def _link_last(self, trainer: Trainer, newest: str) -> None:
        """save_last="link": `last` becomes a copy of `newest`, the checkpoint just saved at this step, by
        hard links (its files are not written a second time, and it outlives `newest`'s removal)."""
        self.last_model_path = self.last_path
        if collectives.is_main_process():  # (rank 0 wrote `newest`)
            ckpt.copy_checkpoint(newest, self.last_model_path)
        self._remove_previous_last(trainer)

    def _remove_previous_last(self, trainer: Trainer) -> None:
        """A `CHECKPOINT_NAME_LAST` template gives `last` a new name as training goes on: the one written
        before (or restored) goes, as in Lightning (unless it is a kept top-k checkpoint too)."""
        previous, self._last_written = self._last_written, self.last_model_path
        if previous and previous != self.last_model_path and previous not in self._kept:
            self._remove(trainer, previous)

    def _free_path(self, trainer: Trainer, name: str, reusable: list[str]) -> str:
        """`dirpath/name`, or `name-v1`, `-v2`, ... when a kept checkpoint (ours or another callback's) has it,
        a checkpoint folder this callback does not track does (unless `overwrite`), or a file or folder that
        is not a checkpoint does (a user's: left as it is, with a warning, as Lightning saves beside a file
        it did not write)."""
        taken = (set(self._kept) | self._held_by_others(trainer)) - set(reusable)
        taken.update(str(self.dirpath / reserved) for reserved in self.RESERVED_NAMES)
        looks = collectives.is_main_process()  # rank 0 writes: the folder is as it finds it
        path, version, users = str(self.dirpath / name), self.STARTING_VERSION, []

        def kept(path: str) -> bool:  # a checkpoint on disk this callback does not track (a resumed run's
            # saved after the checkpoint resumed): replaced only where the user passed overwrite=True
            return not self.overwrite and path not in reusable and ckpt.is_checkpoint_folder(path)

        while path in taken or (looks and (ckpt.foreign_entry(path) or kept(path))):
            if path not in taken and ckpt.foreign_entry(path):
                users.append(path)
            path, version = str(self.dirpath / f"{name}{self.CHECKPOINT_JOIN_CHAR}v{version}"), version + 1
        if users:
            warnings.warn(
                f"ModelCheckpoint: {users[0]} is {ckpt.foreign_entry(users[0])}; it is left as it is and this "
                f"checkpoint is saved beside it as {Path(path).name}",
                stacklevel=2,
            )
        return collectives.broadcast_from_main(path)

    def _held_by_others(self, trainer: Trainer) -> set[str]:
        held: set[str] = set()
        for cb in _checkpointers(trainer, self):
            held.update(cb._kept)
            held.add(cb.last_model_path)
        return held

    def _remove(self, trainer: Trainer, path: str) -> None:
        # Only folders this callback saved: inside its own dirpath and not kept by another callback.
        if Path(path).parent != self.dirpath or path in self._held_by_others(trainer):
            return
        # The checkpoint this fit resumed from stays on disk when it leaves the top k, as Lightning's
        # `_should_remove_checkpoint` keeps it: it is what the user pointed at (`ckpt_path=".../epoch=1-..."`)
        # and would otherwise be gone after the fit's first save.
        if trainer.ckpt_path is not None and Path(trainer.ckpt_path).resolve() == Path(path).resolve():
            return
        if not collectives.is_main_process():
            return  # rank 0 wrote it and removes it
        ckpt.remove_checkpoint(path)  # renamed away first: a kill mid-delete leaves no half checkpoint

    def _qualifies(self, score: float | None) -> bool:
        """Whether `score` belongs in the top k: it must beat the k-th best kept, not merely the worst. The
        two differ when more than k are kept (resumed with a smaller `save_top_k`): beating only the worst
        would push the best out for a worse score."""
        if self.save_top_k == -1 or len(self._kept) < self.save_top_k or score is None:
            return True
        ranked = sorted(self._kept.values(), reverse=self.mode == "max")  # best first
        return _is_better(score, ranked[self.save_top_k - 1], self.mode)

    def _worst(self) -> tuple[str, float | None]:
        if self.monitor is None:  # oldest first
            path = next(iter(self._kept))
            return path, None
        pick = max if self.mode == "min" else min
        path = pick(self._kept, key=lambda p: self._kept[p])
        return path, self._kept[path]

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_k_models": {path: _plain(score) for path, score in self._kept.items()},
            "best_model_path": self._best_model_path,  # (not `last`: a resumed fit may move it)
            "best_model_score": _plain(self.best_model_score),
            "current_score": _plain(self.current_score),  # (saved, never restored: as Lightning's)
            # Lightning's keys too, for a reader of the checkpoint; derived from the above when loaded.
            "monitor": self.monitor,
            "kth_best_model_path": self.kth_best_model_path,
            "kth_value": _plain(self.kth_value),
            "last_model_path": self.last_model_path,
            "dirpath": str(self.dirpath) if self.dirpath else None,
            # A step save waiting for the validation after its step (which a resumed fit runs first).
            "save_after_validation": self._save_after_validation,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the tracked checkpoints, only if they were saved to this callback's dirpath (as Lightning)."""
        self._restore_tracked(state, resumed=None)

    def _restore_tracked(
        self, state: dict[str, Any], resumed: Path | None, saved_home: Path | None = None
    ) -> None:
        """`load_state_dict`; `resumed` (the checkpoint folder being resumed, resolved) lets a run folder that
        was moved or copied keep its best checkpoints: when the checkpoint resumed lies in this callback's
        dirpath, or this dirpath lies where the state's stood to `saved_home` (the folder the resumed
        checkpoint was saved in: a sibling `steps/` beside `ckpt/`), the checkpoints the state tracked in
        its old dirpath are taken to be those of the same names here."""
        _check_state(
            "ModelCheckpoint",
            state,
            best_model_path="path",
            last_model_path="path",
            dirpath="path",
            best_model_score="score",
        )
        tracked = state.get("best_k_models", {})
        if not isinstance(tracked, dict) or not all(_is_score(v) for v in tracked.values()):
            raise ValueError(
                "the ModelCheckpoint state's 'best_k_models' must map checkpoint paths to scores (numbers "
                f"or null), got {tracked!r}"
            )
        self._restored = True
        saved_dir = state.get("dirpath")
        moved_from = None
        if saved_dir is not None and self.dirpath is not None and Path(saved_dir).resolve() != self.dirpath:
            now = _moved_to(Path(saved_dir), resumed, saved_home)
            if resumed is None or self.dirpath not in (resumed.parent, now):
                self._state_saved_for = (saved_dir, now)
                self._warn_not_restored(saved_dir, resumed, now)
                return
            moved_from = Path(saved_dir)
        self._restored_run = True
        self._run_saved_in = saved_dir if isinstance(saved_dir, str) else None

        def own(path: str) -> str | None:
            if moved_from is not None:  # only checkpoints of the old folder, found here under their names
                here = self.dirpath / Path(path).name
                return str(here) if Path(path).parent == moved_from and here.is_dir() else None
            resolved = Path(path).resolve()
            return str(resolved) if self.dirpath is None or resolved.parent == self.dirpath else None

        self._kept = {own(p): _score(score) for p, score in tracked.items() if own(p) is not None}
        self.best_model_path = own(state.get("best_model_path") or "") or ""
        self.best_model_score = state.get("best_model_score") if self.best_model_path else None
        self.last_model_path = self._last_written = own(state.get("last_model_path") or "") or ""
        self._save_after_validation = state.get("save_after_validation") is True

    def _warn_not_restored(
        self, saved_dir: str, resumed: Path | None = None, now: Path | None = None
    ) -> None:
        """`now`: where the folder the state was saved for lies if the run folder was moved or copied with
        the checkpoint resumed (`_moved_to`), when that is known."""
        if not collectives.is_main_process():
            return  # every rank restores the same state: one warning for the job, from the rank that saves
        old = (
            f"the checkpoints in {saved_dir} are left as they are"
            if Path(saved_dir).is_dir()
            else f"{saved_dir} no longer exists"
        )
        if now is not None and resumed is not None and now != resumed.parent:
            # (Its folder is not the resumed checkpoint's, but one beside it: the same place from it now.)
            moved = (
                ""
                if now == Path(saved_dir).resolve()
                else " (where it lies now: the run folder was moved or copied)"
            )
            old += f"; to go on with the checkpoints its state tracks, save to {now}{moved}"
        elif resumed is not None and resumed.parent != Path(saved_dir).resolve():
            # (The folder was moved or copied: its checkpoints are where the resumed one is, not in the
            # folder the state names, nor in this callback's new and empty one.)
            old += (
                f"; the resumed checkpoint lies in {resumed.parent}: to keep its best checkpoints, save to that "
                "folder (this callback's dirpath, or the run folder around it: a recipe's --run_dir, the "
                "Trainer's default_root_dir)"
            )
        elif resumed is None and not Path(saved_dir).is_dir():
            old += (
                ": if the run folder was moved or copied, save to the folder its checkpoints are in now to keep "
                "its best checkpoints"
            )
        warnings.warn(
            f"ModelCheckpoint: the resumed checkpoint's ModelCheckpoint saved to {saved_dir}, this one saves "
            f"to {self.dirpath}: it starts its own best_k_models there, not ranked against the old scores, "
            f"and {old}",
            stacklevel=user_stacklevel(),
        )

    def adopts_state(self, key: str, state: Any) -> bool:
        """Whether the callback state saved under `key` is this callback's, saved in another dirpath (a
        moved folder, or one it warns about) or under the key of checkpoints written before dirpath was part
        of it. `adopt_moved_state` restores it; the Trainer does not count it as a callback gone missing."""
        legacy = f"ModelCheckpoint[{self.monitor},{self.mode},{self.filename}]"
        return key == legacy or (isinstance(state, dict) and key == self._key(state.get("dirpath")))

    def adopt_moved_state(self, trainer: Any, checkpoint: dict[str, Any]) -> None:
        """After the callbacks' `load_state_dict` on a resume (the Trainer calls it): the state of a moved
        folder, or of an older checkpoint's key, that `load_state_dict` was not given; then the resumed
        folder is checked. Not `on_load_checkpoint`, which runs before `load_state_dict`, as in Lightning."""
        resumed = Path(trainer.ckpt_path).resolve() if trainer.ckpt_path else None
        # Every ModelCheckpoint takes over its state first: the folder check counts what the others track
        # (after a move, a later callback's state would otherwise be taken over only after the check).
        for callback in (self, *_checkpointers(trainer, self)):
            callback._adopt_moved_state(trainer, checkpoint, resumed)
        if resumed is not None and self.dirpath is not None:  # (before anything is saved or logged)
            self._check_resumed_folder(trainer, resumed, checkpoint.get("progress"))

    def _adopt_moved_state(self, trainer: Trainer, checkpoint: dict[str, Any], resumed: Path | None) -> None:
        """Restore this callback's state saved under a key that is not its own now (a moved folder, an older
        checkpoint), once; the Trainer restored one saved under its key already."""
        saved = checkpoint.get("callbacks", {})
        # Checkpoints written before dirpath was part of the key; load_state_dict checks the dirpath.
        legacy = saved.get(f"ModelCheckpoint[{self.monitor},{self.mode},{self.filename}]")
        moved = [s for k, s in saved.items() if self.adopts_state(k, s) and s is not legacy]
        saved_home = _saved_home(trainer, resumed, saved)
        if not self._restored and (legacy is not None or moved):
            state = legacy if legacy is not None else moved[0]
            self._continue_in(state.get("dirpath"), resumed)
            self._restore_tracked(state, resumed, saved_home)
        if self._restored_run and resumed is not None and self.dirpath is not None:
            self._catch_up_with_own_save(trainer, resumed, checkpoint.get("progress"), saved_home)

    def _catch_up_with_own_save(
        self, trainer: Trainer, resumed: Path, progress: Any, saved_home: Path | None
    ) -> None:
        """Take this callback's state from its own save at the resumed checkpoint's point of training, where
        it made one after the checkpoint resumed was written (another ModelCheckpoint's `last` at the same
        epoch end): that state is the newer. Otherwise the save is forgotten for good, outside the top k
        (never deleted, the best lost) and, once the run trained past it, warned of as saved after `last`.
        That save is known by its place in the folder, not by the absolute path its state names it by: in a
        run folder copied or moved since, the state's key and paths are the original folder's."""
        if not self.dirpath.is_dir():
            return
        saved_in = Path(self._run_saved_in or self.dirpath)
        # (Another callback's checkpoints hold no state of this one that tracks them: not read.)
        tracked = set(self._kept) | self._held_by_others(trainer) | {str(resumed)}
        for folder in sorted(self.dirpath.iterdir(), key=_state_written):
            if str(folder) in tracked or not ckpt.is_checkpoint_folder(folder):
                continue
            if self._is_last_name(folder.name) or not _saved_at(folder, progress):
                continue
            try:
                state = ckpt.read_state(folder).get("callbacks", {}).get(self._key(saved_in))
            except (ckpt.CheckpointError, OSError, ValueError):
                continue
            if not isinstance(state, dict) or not isinstance(state.get("best_k_models"), dict):
                continue
            if folder.name in {Path(p).name for p in state["best_k_models"] if Path(p).parent == saved_in}:
                self._restore_tracked(state, resumed, saved_home)

    def last_on_disk(self) -> str:
        """The newest ``last`` an earlier process saved where this callback saves (for the default folder:
        in it or any of its ``version_<k>``), as Lightning finds ``ckpt_path="last"`` on disk; "" if none."""
        return self._newest_on_disk(lambda folder: self._is_last_name(folder.name))

    def searched_on_disk(self) -> str:
        """Where `last_on_disk` looks, in words ("" before the folder is known), for an error saying so."""
        if self.dirpath is None:
            return ""
        if self._versions_of is not None:
            return f"{self._versions_of} (or its version_<k> folders)"
        return str(self.dirpath)

    def newest_on_disk(self) -> str:
        """The newest complete checkpoint of any name where this callback saves (as `last_on_disk`)."""
        return self._newest_on_disk(lambda folder: True)

    def _newest_on_disk(self, wanted: Any) -> str:
        if self.dirpath is None:
            return ""
        roots = [self.dirpath]
        if self._versions_of is not None:
            roots = [self._versions_of, *sorted(self._versions_of.glob("version_*"))]
        found = [
            state.parent
            for root in roots
            for state in root.glob(f"*/{ckpt.STATE_FILE}")
            if wanted(state.parent) and not state.parent.name.startswith(".")  # (not a temporary folder)
        ]
        newest = max(found, key=lambda p: (p / ckpt.STATE_FILE).stat().st_mtime, default=None)
        return str(newest) if newest is not None else ""

    def _continue_in(self, saved_dir: Any, resumed: Path | None) -> None:
        """A resumed fit goes on in the folder its checkpoint's callback saved to, when this callback chose a
        version of the same default folder (not for a dirpath the user gave). When the run folder was moved
        or copied, that is the folder of the same name that holds the checkpoint resumed, in the default
        folder."""
        if self._versions_of is None or not isinstance(saved_dir, str) or not saved_dir:
            return

        def of_default(folder: Path) -> bool:
            return folder == self._versions_of or folder.parent == self._versions_of

        saved = Path(saved_dir).resolve()
        if not of_default(saved) and resumed is not None and resumed.parent.name == saved.name:
            saved = resumed.parent
        if saved == self.dirpath or not of_default(saved):
            return

        def claim() -> None:
            # That run's fit may still be saving there (a `ckpt_path="last"` from a second terminal): the
            # two would replace each other's `last` mid-swap. Refused before the reserved folder is given up.
            ckpt.claim_folder(
                saved, f"the folder of the checkpoint resumed, ModelCheckpoint(dirpath={str(saved)!r})"
            )
            self._release_folder()
            self._claimed = saved

        collectives.on_main_process(claim)  # (rank 0 claims, as in `_prepare_folder`; every rank hears)
        with contextlib.suppress(OSError):
            self.dirpath.rmdir()  # the version folder reserved at setup, still empty
        self.dirpath = saved


def _checkpointers(trainer: Trainer, me: ModelCheckpoint) -> list[ModelCheckpoint]:
    """The Trainer's ModelCheckpoint callbacks other than `me`."""
    return [cb for cb in trainer.callbacks if cb is not me and isinstance(cb, ModelCheckpoint)]


def _saved_home(trainer: Trainer, resumed: Path | None, saved: dict[str, Any]) -> Path | None:
    """The folder the checkpoint `resumed` was saved in, as the checkpoint's callback states recorded it: the
    dirpath saved in the state of the ModelCheckpoint that saves where `resumed` lies now (its state found by
    its settings, as `adopts_state` does, so also after the folder was moved or renamed). None if no
    ModelCheckpoint of this Trainer saves there, or the checkpoint holds no state of it."""
    if resumed is None:
        return None
    for cb in trainer.callbacks:
        if isinstance(cb, ModelCheckpoint) and cb.dirpath == resumed.parent:
            for key, state in saved.items():
                if (
                    isinstance(state, dict)
                    and cb.adopts_state(key, state)
                    and isinstance(state.get("dirpath"), str)
                ):
                    return Path(state["dirpath"])
    return None


def _moved_to(saved_dir: Path, resumed: Path | None, saved_home: Path | None) -> Path | None:
    """Where `saved_dir` (a callback state's dirpath) lies now if the run folder was moved or copied with the
    checkpoint `resumed`: at the same place from `resumed`'s folder as from `saved_home`, the folder it was
    saved in (`../steps` beside `ckpt/`). Both are absolute and resolved as saved, so the relation is
    plain path arithmetic. None where `saved_home` is not known."""
    if resumed is None or saved_home is None:
        return None
    return Path(os.path.normpath(resumed.parent / os.path.relpath(saved_dir, saved_home)))


def _check_writable(folder: Path, what: str) -> None:
    """At fit start, not at the first save an epoch later: `folder` (or the folder above it, where it will
    be created) must take a new file."""
    probe_in, error = probe_writable(folder)
    if error is not None:
        raise PermissionError(
            f"{what}: cannot write checkpoints in {probe_in} ({error.strerror or error}); give a folder you "
            "can write to"
        )


def _version_folders(default: Path) -> Iterator[Path]:
    """The folders a fit with the default dirpath claims the first free one of (`claim_next_folder`, so that
    no other fit saves to it, neither one started at once nor one still in its first epoch): `default`, then
    `default/version_<k>` from 1 (as Lightning names them)."""
    yield default
    yield from (default / f"version_{k}" for k in range(1, 100_000))


class _FieldFormatter(string.Formatter):
    """`str.format` for a checkpoint name: a field is looked up by its whole name first, so a metric named
    with dots (`{val.acc:.2f}`, which `str.format` reads as the attribute `acc` of `val`) is written, as
    Lightning's "support for dots" does; a field whose name is unknown raises KeyError with that whole name;
    a value its format spec does not fit raises ValueError naming `filename`, the field and its value (not
    after an epoch with str.format's bare "Unknown format code 'd' for object of type 'MetricValue'")."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.field = ""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        self.field = field_name
        if field_name in kwargs:
            return kwargs[field_name], field_name
        try:
            return super().get_field(field_name, args, kwargs)
        except (KeyError, AttributeError, IndexError, TypeError):
            raise KeyError(field_name) from None

    def format_field(self, value: Any, format_spec: str) -> Any:
        try:
            return super().format_field(value, format_spec)
        except (ValueError, TypeError):
            kind = (
                "an int" if isinstance(value, int) else "a float" if isinstance(value, float) else "a value"
            )
            raise ValueError(
                f"ModelCheckpoint(filename={self.filename!r}): the field {self.field!r} is {kind} "
                f"({value!r}), which the format spec {format_spec!r} cannot write; use a number's spec "
                "such as '.3f' for a metric or '02d' for epoch and step"
            ) from None


def _checked_filename(filename: object) -> str | None:
    """`filename` as given, once it is None or a `str.format` template whose fields are named, converted
    by `!r`, `!s` or `!a`, and whose `epoch` / `step` specs fit an int (a broken one failed at the first
    save, after an epoch, with str.format's error, which names no argument)."""
    if filename is None:
        return None
    if not isinstance(filename, str):
        raise TypeError(
            f"ModelCheckpoint(filename={filename!r}): expected a str.format template such as "
            f"'{{epoch}}-{{val_loss:.3f}}', got {type(filename).__name__}"
        )
    try:
        fields = [
            (name, spec, conv)
            for _, name, spec, conv in string.Formatter().parse(filename)
            if name is not None
        ]
    except ValueError as error:
        raise ValueError(
            f"ModelCheckpoint(filename={filename!r}): not a str.format template ({error}); fields are "
            "written in braces, e.g. 'epoch={epoch}-{val_loss:.3f}' (a literal brace doubled: '{{')"
        ) from None
    for name, spec, conversion in fields:
        if not name or name.isdigit():
            raise ValueError(
                f"ModelCheckpoint(filename={filename!r}): the field {{{name}}} is positional; name what it "
                "writes: {epoch}, {step} or a logged metric such as {val_loss:.3f}"
            )
        if conversion not in (None, "r", "s", "a"):
            raise ValueError(
                f"ModelCheckpoint(filename={filename!r}): the field {name!r} has the conversion "
                f"'!{conversion}'; expected '!r', '!s' or '!a' (or none)"
            )
        if name in ("epoch", "step") and conversion is None and "{" not in spec:
            _FieldFormatter(filename).format(f"{{{name}:{spec}}}", **{name: 0})
    return filename


def _checkpoint_dir(dirpath: str | Path, check: bool = True) -> Path:
    """`dirpath` made absolute (as Lightning does); with `check`, an error if it cannot be a folder."""
    path = resolved_path(dirpath, "the checkpoint folder")
    if check:
        for folder in (path, *path.parents):
            if folder.exists():
                if not folder.is_dir():
                    where = "is" if folder == path else f"is inside {folder}, which is"
                    raise NotADirectoryError(
                        f"ModelCheckpoint(dirpath={str(dirpath)!r}): {path} {where} a file, not a folder; "
                        "checkpoints are folders saved inside dirpath: pass a folder path"
                    )
                break
    return path


def _global_step(folder: str | Path) -> int | None:
    """The global step the checkpoint in `folder` was saved at, or None where it cannot be read."""
    try:
        step = ckpt.read_state(Path(folder))["progress"]["global_step"]
    except (ckpt.CheckpointError, OSError, ValueError, KeyError, TypeError):
        return None
    return step if isinstance(step, int) else None


def _saved_at(folder: Path, progress: Any) -> bool:
    """Whether the checkpoint in `folder` was saved at the point of training `progress` describes (a
    checkpoint's ``progress``: epoch, step, position in the epoch, validation). One that cannot be read is
    not: it is listed as the others are."""
    if not isinstance(progress, dict):
        return False
    try:
        return ckpt.read_state(folder).get("progress") == progress
    except (ckpt.CheckpointError, OSError, ValueError):
        return False


def _state_written(folder: Path) -> float:
    """When a checkpoint folder's state was written (0 where it cannot be read): the order of saves."""
    try:
        return (folder / ckpt.STATE_FILE).stat().st_mtime
    except OSError:
        return 0.0


def _validation_to_come(trainer: Trainer) -> bool:
    """Whether `fit` validates at all: a val loader with batches (or one still to be asked for: a
    datamodule's, at the first validation where the first epoch does not validate), and limit_val_batches
    not 0."""
    loader = trainer.val_dataloaders
    if loader is None and trainer.fitting and trainer._val_loader_coming:
        return trainer.limit_val_batches != 0
    return loader is not None and trainer.limit_val_batches != 0 and loader_len(loader) != 0
