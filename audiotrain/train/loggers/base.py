"""`Logger`, the interface every experiment logger implements, and what it does for all of them.

A logger never stops training: every backend call goes through `Logger._call`, so a backend that fails
(not logged in, no network, disk full) warns once, naming the logger and the cause, and training goes on.
If the run itself cannot be created, or the backend can record nothing more (TensorBoard's writer on a
full disk), the logger disables itself; other failures are counted in ``logger.failures``. The one
exception is a logger set `Logger.required`: its run not starting at all is `LoggerNotStarted`, which
`Trainer.fit` raises before training (it starts the loggers first). Backends are
imported when a logger is constructed (never by ``import audiotrain``), and a missing package raises
ImportError naming what to ``pip install``.

Runs are created lazily, at the first call that needs them, so that `Logger.load_state_dict` (called by
the Trainer when it resumes from a checkpoint) can make a resumed run continue the same W&B / MLflow run,
TensorBoard version and CSV file. Hyperparameters logged before the run exists are kept and written when it
starts (at the first metric, `experiment` access or `finalize`; `Trainer.fit` starts it once a checkpoint is
loaded): a user's `logger.log_hyperparams(config)` before `trainer.fit(..., ckpt_path=...)` would otherwise
open a new run, and the resumed training would continue there instead of in the checkpoint's run.

Files and folders go to a run with `Logger.log_artifact` (W&B and MLflow store them; CSV and TensorBoard,
whose run folders are already local, do nothing). ``log_model`` uploads checkpoints as Lightning's
``WandbLogger(log_model=...)`` does: False (default) none; True the best checkpoint (`ModelCheckpoint`'s
``best_model_path``, else its ``last_model_path``) when `fit` ends successfully; "all" every checkpoint as it
is saved. `ModelCheckpoint` calls `Logger.after_save_checkpoint` after each save.

Under data parallel only rank 0 writes: the other ranks keep the same logger objects (the Trainer's
``logger``), whose methods do nothing there and whose ``experiment`` is a stand-in whose methods do nothing,
as Lightning's ``rank_zero_only`` loggers, so code that logs from a callback runs unchanged on every rank.

`flatten_params` turns nested hyperparameters (dicts, dataclasses, schedulers) into the flat dict of plain
values that every backend stores.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import inspect
import numbers
import os
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from audiotrain._caller import user_stacklevel

import numpy as np

STATUSES = ("success", "failed", "interrupted")


class LoggerWarning(UserWarning):
    """A logger backend failed, or cannot record something as given; training continues."""


class LoggerNotStarted(RuntimeError, ValueError):
    """A logger set `Logger.required` could not start its run. A ValueError too, so that the recipes report
    it in one line, as a setting the user can change (exit status 2)."""


class _BackendStopped(Exception):
    """Raised (``from`` the backend's error) by a logger hook when its backend can record nothing more,
    e.g. TensorBoard's writer thread on a full disk: `Logger._call` then disables the logger, as when its run
    cannot be created, rather than failing again at every call."""


def _plain(value: Any) -> Any:
    """A value a backend can store: numbers, strings, bools, None, lists of these, or else its str()."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):  # (a reported metric is a subclass: stored as the plain number)
        return int(value)
    if isinstance(value, float):
        return float(value)
    if hasattr(value, "item") and getattr(value, "size", None) == 1:  # numpy / mx scalars
        return _plain(value.item())  # (a complex one as its str, as Lightning's `_sanitize_params`)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested hyperparameters as one flat dict with ``/``-joined keys and plain values.

    Dataclasses, namespaces (`argparse.Namespace`) and objects with ``to_dict()`` (e.g. the schedulers) are
    expanded like dicts. ``prefix`` is a parent key every key goes under (``prefix="hp"``: ``hp/a/b``), as
    Lightning's ``parent_key``.
    """
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}/{key}" if prefix else f"{key}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = value.to_dict() if hasattr(value, "to_dict") else dataclasses.asdict(value)
        elif hasattr(value, "to_dict") and callable(value.to_dict):
            value = value.to_dict()
        elif isinstance(value, argparse.Namespace):  # (a nested one: jsonargparse's configs, as Lightning)
            value = vars(value)
        if isinstance(value, Mapping):
            out.update(flatten_params(value, name))
        else:
            out[name] = _plain(value)
    return out


def params_mapping(params: Any, where: str) -> Mapping[str, Any]:
    """Hyperparameters given as Lightning's loggers and ``wandb.init(config=...)`` take them (a dict or an
    `argparse.Namespace`), or as a config dataclass, as a mapping for `flatten_params`; `where` names the
    call in the error for anything else."""
    if isinstance(params, argparse.Namespace):
        return vars(params)
    if dataclasses.is_dataclass(params) and not isinstance(params, type):
        return params.to_dict() if hasattr(params, "to_dict") else dataclasses.asdict(params)
    if not isinstance(params, Mapping):
        raise TypeError(
            f"{where}: expected a dict, an argparse.Namespace or a dataclass instance of hyperparameters, "
            f"got {type(params).__name__}"
        )
    return params


def _metric_value(name: str, value: Any, media_calls: str = "") -> float | int:
    """``value`` as a float, or as an int where it is a whole-number type (a Python or numpy int, an integer
    scalar array; not a bool): Lightning's loggers get those as ints, its CSVLogger writes ``1``, not ``1.0``
    (the Trainer's ``epoch`` column is one)."""
    number = value
    if not isinstance(value, (int, float)) and hasattr(value, "item"):  # an array (MLX, numpy, torch)
        with contextlib.suppress(TypeError, ValueError):
            number = value.item()  # (a scalar's Python value: int for an integer dtype)
    if isinstance(number, numbers.Integral) and not isinstance(number, bool):
        return int(number)
    try:
        return float(number)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"metric {name!r} must be a number or a scalar array, got {type(value).__name__}: {value!r}"
            + (f"; {media_calls}" if media_calls else "")
        ) from exc


def _on_rank_zero() -> bool:
    """Whether this process writes (module docstring): rank 0, or the one process."""
    from audiotrain.distributed import collectives  # (imports MLX: not when the loggers are imported)

    return collectives.is_main_process()


class _NoExperiment:
    """`Logger.experiment` on a rank > 0 or of a disabled logger: any method called on it (or on what it hands
    out) does nothing. False, as the None a disabled logger's was (``if logger.experiment:`` still reads)."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "<no experiment: this logger writes nothing here>"

    def _nothing(self, *args: Any, **kwargs: Any) -> _NoExperiment:
        return self

    def __getattr__(self, name: str) -> Any:
        return self._nothing

    def __getitem__(self, key: Any) -> _NoExperiment:
        return self

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


def rank_zero_experiment(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Lightning's decorator for a custom logger's ``experiment`` (under ``@property``): `fn`'s backend object
    on rank 0, elsewhere a stand-in whose methods do nothing, as `Logger.experiment` does itself. Imported
    from here or from ``audiotrain.train.loggers``, where Lightning's is in
    ``lightning.pytorch.loggers.logger`` (earlier ``pytorch_lightning.loggers.base``), so that a logger
    written for Lightning runs unchanged."""

    @functools.wraps(fn)
    def experiment(self: Any) -> Any:
        return fn(self) if _on_rank_zero() else _NoExperiment()

    return experiment


def check_log_model(value: Any, owner: str) -> bool | str:
    """``log_model`` as given, once checked to be False, True or "all" (Lightning's values)."""
    if not (isinstance(value, bool) or value == "all"):
        raise ValueError(f"{owner}: log_model must be False, True or 'all', got {value!r}")
    return value


class Logger:
    """Base class. Subclasses implement ``_start`` (create the run) and the ``_log_*`` / ``_finalize`` hooks.

    Public methods never raise because of the backend (see the module docstring); they raise only for
    bad arguments (a non-numeric metric, an unknown status), and, where `required`, when the run cannot
    start at all.
    """

    #: Whether a run that cannot start (W&B without a login, an MLflow server out of reach) is an error,
    #: `LoggerNotStarted`, rather than a warning and a disabled logger: for a run whose logs are the point.
    #: Only its first start: a later stage's reopening of the run (after `fit`) warns as always.
    required: bool = False

    def __init__(self) -> None:
        self.failures = 0
        self._started = False
        self._disabled = False
        #: Why the logger turned itself off ("could not start its run (UsageError: ...)"); "" while it logs.
        self.disabled_by = ""
        self._warned = False
        self._key_names: dict[tuple[str, str], str] = {}  # (kind, backend key) -> the first name seen
        self._collisions: set[tuple[str, str]] = set()
        self._warned_params: set[tuple[str, str]] = set()  # (key, repr of a new value) already warned about
        self._pending_hparams: dict[str, Any] = {}  # logged before the run existed (module docstring)
        self._latest_step = 0  # the step of the last metrics logged: log_metrics' step=None
        self._ever_started = False  # after a finalize the run is known: later calls reopen it at once
        self.log_model: bool | str = False
        self._checkpoint_callbacks: list[Any] = []  # the ModelCheckpoints that saved, in order
        self._logged_checkpoints: dict[str, int] = {}  # path -> its mtime (ns) when uploaded

    # -- pickling ------------------------------------------------------------------------------------
    #: The attributes that hold this process's backend objects (the package, the open run, its writer or
    #: client): a pickled or deep-copied logger is made without them (`_reattach` sets them again).
    _process_bound: tuple[str, ...] = ()

    def __getstate__(self) -> dict[str, Any]:
        """As Lightning's loggers drop their ``experiment`` when pickled (a Trainer sent to another process,
        `copy.deepcopy`): the copy keeps the run's identity (version folder, run id, step) and reopens that
        run at its first call, as a later stage reopens it."""
        state = self.__dict__.copy()
        for name in self._process_bound:
            state.pop(name, None)
        state["_started"] = False
        if "_fitted_in" in state:  # (a folder logger's weak reference to the Trainer it last fitted in)
            state["_fitted_in"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reattach()

    def _reattach(self) -> None:
        """After unpickling: set the `_process_bound` attributes as a new logger has them (no open run)."""

    # -- identity ------------------------------------------------------------------------------------
    @property
    def name(self) -> str | None:
        """The experiment / run name."""
        return None

    @property
    def version(self) -> str | int | None:
        """The run id or version number (known once the run exists)."""
        return None

    @property
    def save_dir(self) -> Path | None:
        """The root folder this logger writes under, if it writes locally."""
        return None

    @property
    def log_dir(self) -> Path | None:
        """This run's own folder, if it writes locally."""
        return None

    @property
    def experiment(self) -> Any:
        """The backend object (a wandb Run, a SummaryWriter, an MlflowClient), created if needed; where the
        logger is disabled, or on a rank > 0, a stand-in whose methods do nothing (module docstring): a hook's
        ``self.logger.experiment.log(...)`` had stopped a fit the logger's warning said went on."""
        if not _on_rank_zero():
            return _NoExperiment()
        self.start()
        return _NoExperiment() if self._disabled else self._experiment()

    # -- logging -------------------------------------------------------------------------------------
    def log_hyperparams(
        self,
        # Any: a logger written as for Lightning narrows it to `dict[str, Any] | Namespace` (Lightning's
        # own), which mypy and pyright refuse as an override of a wider type; a dataclass is taken too.
        params: Any,
        metrics: Mapping[str, Any] | None = None,
        step: int | None = None,
    ) -> None:
        """Record hyperparameters (nested dicts, dataclasses and schedulers are flattened), a dict or an
        `argparse.Namespace` as Lightning's take, or a config dataclass. `metrics` (Lightning's
        TensorBoardLogger argument, e.g. ``{"hp_metric": 0.8}``) are logged beside them with
        `log_metrics(metrics, step)`."""
        flat = flatten_params(params_mapping(params, "log_hyperparams"))
        if not self._ever_started and not self._disabled:
            self._pending_hparams.update(flat)  # written when the run starts (module docstring)
        else:
            self._call("log_hyperparams", self._log_hyperparams, flat)
        if metrics:
            self.log_metrics(dict(metrics), step)

    @property
    def started(self) -> bool:
        """Whether the current stage's run is open (started, and not finalized since)."""
        return self._started

    @property
    def disabled(self) -> bool:
        """Whether the logger turned itself off (its run could not be created, or its backend stopped): it
        logs nothing."""
        return self._disabled

    def start(self) -> None:
        """Create (or, after `load_state_dict`, reopen) the run now and write any hyperparameters logged
        so far. Idempotent; a backend failure warns and disables the logger, as everywhere else."""
        self._call("start", None)

    # dict, as Lightning's `log_metrics(self, metrics: dict[str, float], ...)`: a logger of one's own
    # annotated as there overrides it (over a Mapping, a narrower parameter, mypy and pyright refuse it).
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """Record scalar metrics at optimizer step ``step``. Without one (Lightning's ``step=None``, a
        callback's ``trainer.logger.log_metrics({...})``) they go at the step of the metrics this logger
        recorded last (the Trainer logs at every logging step), 0 before any."""
        step = self._step_or_latest(step, "log_metrics")
        values = {str(k): _metric_value(k, v, self.media_calls) for k, v in metrics.items()}
        if values:
            self._latest_step = step
            self._call("log_metrics", self._log_metrics, values, step)

    def _step_or_latest(self, step: Any, op: str) -> int:
        """``step`` checked, or, where None, the step of the metrics logged last (Lightning's
        ``step=None``)."""
        if step is None:
            return self._latest_step
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise ValueError(f"{op} step must be an int >= 0, got {step!r}")
        return int(step)

    def flush(self) -> None:
        """Write what the backend still buffers (the Trainer calls it before it saves a checkpoint, so that
        a crash after the save loses nothing the checkpoint covers)."""
        if self._started:
            self._call("flush", self._flush)

    def save(self) -> None:
        """Lightning's: write what is logged so far, hyperparameters logged before the run started included
        (they start it, as at `finalize`: Lightning's ``log_hyperparams(...); save()`` writes hparams.yaml),
        then `flush`."""
        if self._pending_hparams:
            self.start()
        self.flush()

    def finalize(self, status: str = "success") -> None:
        """Close the run with ``status`` ("success", "failed" or "interrupted")."""
        if status not in STATUSES:
            raise ValueError(f"finalize status must be one of {STATUSES}, got {status!r}")
        if self._pending_hparams:
            self.start()  # hyperparameters-only use still records them
        if status == "success" and self.log_model is True and self._checkpoint_callbacks:
            # As Lightning: a successful stage uploads the best checkpoint (once: unchanged ones are skipped),
            # that of the callback that monitors a metric where there are several (best and every-n-epochs).
            callbacks = self._checkpoint_callbacks
            cb = next((c for c in callbacks if getattr(c, "monitor", None)), callbacks[0])
            self._log_checkpoints([cb.best_model_path or cb.last_model_path], cb)
        if has_own_save(self):
            self.save()  # (Lightning's `finalize` saves: a logger written for it writes its rows there)
        if self._started and not self._disabled:
            self._call("finalize", self._finalize, status)
        self._started = False

    #: How this logger takes images, audio, figures and tables, which `log_metrics` refuses: its refusal says.
    media_calls = ""

    # -- audio ---------------------------------------------------------------------------------------
    #: Whether `log_audio` stores clips (TensorBoard, W&B, MLflow); a CSV file cannot hold them.
    stores_audio = False

    def log_audio(self, key: str, audios: list[Any], step: int | None = None, **kwargs: Any) -> None:
        """Log audio clips (numpy or MLX arrays, ``(frames,)`` or ``(frames, channels)``, in [-1, 1]; torch's
        ``(1, frames)`` or ``(2, frames)`` is taken frames-first) under ``key`` at ``step`` (default: that of
        the metrics logged last), with ``sample_rate=[16000, ...]``,
        one per clip, as Lightning's ``WandbLogger.log_audio`` takes them, so that one call serves every
        logger of ``trainer.loggers``. TensorBoard: ``add_audio`` at ``key`` (``key/1``, ... for the later
        clips). MLflow: WAV files ``key/step=N-I.wav`` in the run's artifacts (each step's its own). W&B: its
        own ``log_audio``. A logger that cannot store audio (CSV) warns once and skips the call. An integer
        clip (PCM) is refused; one holding NaN or inf is skipped, and one beyond [-1, 1] clipped, each with a
        warning."""
        op = f"{type(self).__name__}.log_audio"
        if not isinstance(audios, list):
            raise TypeError(f"{op}: audios must be a list of clips, got {type(audios).__name__}")
        extra = sorted(set(kwargs) - {"sample_rate"})
        if extra:
            raise TypeError(f"{op} takes sample_rate=[...] only, not {', '.join(extra)} (WandbLogger's does)")
        rates = kwargs.get("sample_rate")
        if (
            not isinstance(rates, list)
            or len(rates) != len(audios)
            or not all(isinstance(r, numbers.Integral) and not isinstance(r, bool) and r > 0 for r in rates)
        ):
            raise ValueError(
                f"{op}: sample_rate must be a list of {len(audios)} positive ints (Hz), one per clip; "
                f"got {rates!r}"
            )
        if not self.stores_audio:
            if not getattr(self, "_warned_audio", False):
                self._warned_audio = True
                warnings.warn(
                    f"{op}: {type(self).__name__} cannot store audio, so {key!r} is skipped (this warning "
                    "comes once); log it with a TensorBoardLogger, WandbLogger or MLflowLogger, or write "
                    "the clips as WAV files (soundfile.write) into the run folder, trainer.log_dir",
                    LoggerWarning,
                    stacklevel=user_stacklevel(),
                )
            return
        if not _on_rank_zero():
            return
        from audiotrain.train.loggers._shared import numpy_if_mlx  # (_shared imports this module)

        step = self._step_or_latest(step, op)
        clips, kept_rates = [], []
        for i, (audio, rate) in enumerate(zip(audios, rates)):
            raw = np.asarray(numpy_if_mlx(audio))
            if np.issubdtype(raw.dtype, np.integer):
                # (1000 in int16 PCM became 1000.0, written as a full-scale square)
                scale = (
                    f" / {np.iinfo(raw.dtype).max + 1}" if np.issubdtype(raw.dtype, np.signedinteger) else ""
                )
                raise ValueError(
                    f"{op}: clip {i} holds {raw.dtype} samples; log_audio takes floats in [-1, 1]: pass "
                    f"clip.astype(np.float32){scale}"
                )
            clip = raw.astype(np.float32)
            if clip.ndim not in (1, 2) or clip.size == 0:
                raise ValueError(f"{op}: clip {i} must be (frames,) or (frames, channels), got {clip.shape}")
            if clip.ndim == 2 and clip.shape[0] in (1, 2) and clip.shape[1] > 2:
                # (torch's and librosa's (channels, frames), as TensorBoard's add_audio takes it: MLflow's
                # WAV writer read (1, 16000) as one frame of 16000 channels and failed)
                clip = clip.T
            # A diverged sampler's NaN became a full-scale -1 in a WAV, and a loud clip was cut at 1 by the
            # writers (MLflow's without a word): said, not raised, as a validation hook calls this.
            bad = int(np.count_nonzero(~np.isfinite(clip)))
            if bad:
                warnings.warn(
                    f"{op}: clip {i} of {key!r} holds {bad} NaN or infinite samples, so it is skipped",
                    LoggerWarning,
                    stacklevel=user_stacklevel(),
                )
                # (None, not left out: TensorBoard's tags are by position, and the next clip was shown as
                # this one's at this step)
                clips.append(None)
                kept_rates.append(int(rate))
                continue
            peak = float(np.abs(clip).max())
            # (once a key and clip: the peak in its text defeats Python's once-per-line filter, and a clip
            # logged at every validation batch said it at every call)
            loud = self.__dict__.setdefault("_warned_loud_clips", set())
            if peak > 1.0 and (key, i) not in loud:
                loud.add((key, i))
                warnings.warn(
                    f"{op}: clip {i} of {key!r} peaks at {peak:.3g}, so it is clipped to [-1, 1]; scale it "
                    "(clip / peak) to hear it as it is (said once for this clip's key)",
                    LoggerWarning,
                    stacklevel=user_stacklevel(),
                )
            clips.append(clip)
            kept_rates.append(int(rate))
        if any(clip is not None for clip in clips):
            self._call("log_audio", self._log_audio, key, clips, kept_rates, step)

    def _log_audio(self, key: str, clips: list[Any], sample_rates: list[int], step: int) -> None:
        # (`clips` holds None in place of a clip `log_audio` skipped, so that each keeps its position)
        raise NotImplementedError  # (a logger with stores_audio = True defines it)

    # -- artifacts -----------------------------------------------------------------------------------
    #: Whether `log_artifact` stores anything (W&B and MLflow); CSV and TensorBoard write locally only.
    stores_artifacts = False

    def log_artifact(
        self, path: str | os.PathLike, name: str | None = None, *, artifact_type: str = "file"
    ) -> None:
        """Store a file or a folder with the run, as ``name`` (default: its file or folder name).

        W&B: an artifact called ``name`` (characters W&B refuses become ``-``) of type ``artifact_type``
        ("model" for checkpoints and exported models), holding the file or the folder's files. MLflow: the
        file or folder at ``name`` in the run's artifacts (``name`` may hold ``/``). CSV and TensorBoard:
        nothing, since their run folder is already on disk; the call is accepted so that code written for
        one logger runs with any. A path that does not exist is an error; a backend failure warns (see the
        module docstring).
        """
        if not _on_rank_zero():
            return  # (rank 0 stores it; the file may exist on its machine only)
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{type(self).__name__}.log_artifact: {path} does not exist")
        if self.stores_artifacts:
            self._call("log_artifact", self._log_artifact, path, name or path.name, artifact_type)

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Called by `ModelCheckpoint` after each save (Lightning's hook): with ``log_model=True`` remember
        the callback (when fit ends, the best checkpoint of the callback that monitors a metric, else of the
        first, is uploaded); with "all" upload the new checkpoints now."""
        if not self.log_model or not self.stores_artifacts:
            return
        if not any(cb is checkpoint_callback for cb in self._checkpoint_callbacks):
            self._checkpoint_callbacks.append(checkpoint_callback)
        if self.log_model == "all":
            cb = checkpoint_callback
            self._log_checkpoints([*cb._kept, cb.best_model_path, cb.last_model_path], cb)

    def _log_checkpoints(self, paths: Iterable[str], checkpoint_callback: Any) -> None:
        """Upload the checkpoints among ``paths`` not uploaded yet (or rewritten since), oldest first."""
        found = {}
        for p in paths:
            if p and os.path.exists(p):
                found[str(p)] = os.stat(p).st_mtime_ns
        for p, mtime in sorted(found.items(), key=lambda item: item[1]):
            if self._logged_checkpoints.get(p) == mtime:
                continue
            self._logged_checkpoints[p] = mtime
            best = p == checkpoint_callback.best_model_path
            self._call("log_model", self._log_checkpoint, Path(p), best, checkpoint_callback)

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to continue this one (JSON-serialisable)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue the run described by ``state`` (call before anything is logged)."""

    def _warn_not_resumed(self, key: str, current: Any, saved: Any) -> None:
        """`load_state_dict` after the run already started cannot switch runs: say where the logs go."""
        if saved is not None and current != saved:
            warnings.warn(
                f"{type(self).__name__}: the checkpoint's run has {key} {saved!r}, but this logger had already "
                f"started {key} {current!r} (through `experiment` or a metric logged before the checkpoint "
                f"was loaded), so the resumed run logs to {current!r}. Create the logger and pass it to the "
                "Trainer without touching it before fit(ckpt_path=...) to continue the checkpoint's run.",
                LoggerWarning,
                stacklevel=user_stacklevel(),
            )

    def _warn_given_not_used(self, key: str, given: Any, saved: Any) -> None:
        """A run id/version given to the logger that the checkpoint's replaces on resume: say so (Lightning's
        loggers keep no run in the checkpoint and log to the one given; this went to the checkpoint's
        silently, and a user looking for the given run found nothing there)."""
        if given is not None and saved is not None and str(given) != str(saved):
            warnings.warn(
                f"{type(self).__name__}({key}={given!r}): the checkpoint's run has {key} {saved!r}, and "
                f"the resumed fit continues that run, not {given!r}. Leave {key} out when resuming, or fit "
                f"without ckpt_path for a run of {key} {given!r}.",
                LoggerWarning,
                stacklevel=user_stacklevel(),
            )

    # -- failure handling ----------------------------------------------------------------------------
    def _call(self, op: str, fn: Callable[..., Any] | None, *args: Any) -> None:
        if self._disabled or not _on_rank_zero():
            return
        stage = op
        try:
            if not self._started:
                stage = "start"
                self._start()
                self._started = self._ever_started = True
                if self._pending_hparams:
                    stage = "log_hyperparams"
                    pending, self._pending_hparams = self._pending_hparams, {}
                    self._log_hyperparams(pending)
                stage = op
            if fn is not None:
                fn(*args)
        except Exception as exc:
            self.failures += 1
            stopped = isinstance(exc, _BackendStopped)
            if stage == "start" or stopped:
                self._disabled = True
            if stopped and exc.__cause__ is not None:
                exc = exc.__cause__  # the backend's own error says what happened (a full disk)
            what = "could not start its run" if stage == "start" else f"failed in {op}"
            if self._disabled and not self.disabled_by:
                self.disabled_by = f"{what} ({type(exc).__name__}: {exc})"
            if stage == "start" and self.required and not self._ever_started:
                raise LoggerNotStarted(
                    f"{type(self).__name__} {what} ({type(exc).__name__}: {exc}), and it is required "
                    "(required=True; the recipes' --logger.required): nothing is trained without it"
                ) from exc
            if not self._warned:
                self._warned = True
                after = (
                    "it is disabled for this run"
                    if self._disabled
                    else "later failures are counted in .failures, not reported"
                )
                # Said as the run starts: a run that asked for a tracker and trains unlogged for hours
                # otherwise learns it at the end (the run itself does not fail for a tracker).
                unlogged = ": nothing is logged to it" if stage == "start" else ""
                warnings.warn(
                    f"{type(self).__name__} {what} ({type(exc).__name__}: {exc}){unlogged}; training goes on, "
                    f"{after}.",
                    LoggerWarning,
                    stacklevel=user_stacklevel(),  # (the user's fit, or their own logger call)
                )

    def _backend_keys(
        self, kind: str, names: Iterable[str], sanitise: Callable[[str], str]
    ) -> dict[str, str]:
        """Each name -> the key the backend stores it under; warns once per pair of names that share a key.

        Backends replace characters they do not accept with ``_``, so ``top@1`` and ``top#1`` both become
        ``top_1``: the backend would record their values as one series without a word.
        """
        keys = {}
        for name in names:
            key = keys[name] = sanitise(name)
            first = self._key_names.setdefault((kind, key), name)
            if first != name and (first, name) not in self._collisions:
                self._collisions.add((first, name))
                warnings.warn(
                    f"{type(self).__name__}: the {kind} names {first!r} and {name!r} both become {key!r} (the "
                    f"backend replaces characters it does not accept with '_'), so their values are recorded "
                    f"as one {kind}; rename one of them.",
                    LoggerWarning,
                    stacklevel=5,  # the caller of log_metrics / log_hyperparams
                )
        return keys

    def _warn_changed_params(
        self, held: Mapping[str, Any], values: Mapping[str, Any], where: str, why: str
    ) -> None:
        """Warn once about params whose new value the backend will not show: it keeps `held`'s (MLflow
        cannot change a param, TensorBoard's HParams tab keeps a run folder's first set). `why` says so."""
        changed = {
            k: v
            for k, v in values.items()
            if k in held and held[k] != v and (k, repr(v)) not in self._warned_params
        }
        if not changed:
            return
        self._warned_params.update((k, repr(v)) for k, v in changed.items())
        listed = ", ".join(f"{k} (old {held[k]!r}, new {v!r})" for k, v in changed.items())
        warnings.warn(
            f"{type(self).__name__}: params changed in {where}: {listed}. {why}; logging goes on.",
            LoggerWarning,
            stacklevel=user_stacklevel(),  # (the user's log_hyperparams, or the fit that logs the config)
        )

    def _start(self) -> None:
        """Create the backend's run. Nothing to create by default: a logger written as for Lightning
        (`log_metrics`, `log_hyperparams`, `save` overridden) has no run to open first."""

    def _experiment(self) -> Any:
        return None

    def _log_hyperparams(self, params: dict[str, Any]) -> None:
        raise NotImplementedError(_not_overridden(self, "log_hyperparams(params)"))

    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        raise NotImplementedError(_not_overridden(self, "log_metrics(metrics, step)"))

    def _flush(self) -> None:
        pass

    def _finalize(self, status: str) -> None:
        pass

    def _log_artifact(self, path: Path, name: str, artifact_type: str) -> None:
        pass

    def _log_checkpoint(self, path: Path, best: bool, checkpoint_callback: Any) -> None:
        self._log_artifact(path, f"checkpoints/{path.name}", "model")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, version={self.version!r})"


def _not_overridden(logger: Logger, method: str) -> str:
    name = type(logger).__name__
    return f"{name} overrides neither {method} nor its backend hook _{method.split('(')[0]}"


def has_own_save(logger: Any) -> bool:
    """Whether `logger`'s class defines its own `save()` (one written as for Lightning, or a logger of
    another kind), which Lightning's Trainer calls after each `log_metrics`: `Logger.save` is `flush`,
    which the Trainer calls before each checkpoint instead. A `save` that needs arguments (a duck-typed
    logger's ``save(path)``, for the user's own script to call) is no such method: it is not called."""
    cls = type(logger)
    known = _SAVE_TAKES_NO_ARGUMENTS.get(cls)
    if known is None:  # (once a class: the Trainer asks after each log_metrics)
        own = getattr(cls, "save", None)
        known = callable(own) and own is not Logger.save and _callable_without_arguments(logger.save)
        _SAVE_TAKES_NO_ARGUMENTS[cls] = known
    return known


_SAVE_TAKES_NO_ARGUMENTS: weakref.WeakKeyDictionary[type, bool] = weakref.WeakKeyDictionary()


def _callable_without_arguments(method: Callable[..., Any]) -> bool:
    try:
        inspect.signature(method).bind()
    except TypeError:
        return False
    except ValueError:  # (no signature to read: a builtin's; called, as Lightning calls it)
        return True
    return True


class DummyLogger(Logger):
    """Lightning's `DummyLogger`: what `Trainer(fast_dev_run=...)` puts in place of the loggers it was given,
    so that a module or callback that logs through `self.logger` (`log_metrics`, `log_hyperparams`,
    `experiment.<anything>(...)`) runs as it does in a real fit, and nothing is written."""

    @property
    def experiment(self) -> Any:
        return _NoExperiment()

    def __getitem__(self, index: int) -> DummyLogger:
        return self  # (Lightning's: `self.logger[0].experiment.add_image(...)` still runs)

    def log_metrics(self, *args: Any, **kwargs: Any) -> None:
        """Takes any arguments and does nothing, as Lightning's: a call written for another logger's
        signature (``log_metrics(metrics, step, epoch=...)``) runs in a debugging run as in a real one."""

    def log_hyperparams(self, *args: Any, **kwargs: Any) -> None:
        """Takes any arguments and does nothing, as Lightning's."""

    def __getattr__(self, name: str) -> Any:
        """Any other method, a logger's own (`WandbLogger.log_image`, ...), does nothing, as in Lightning.
        Private names stay missing: copy's and pickle's probes (``__deepcopy__``) must not find a method."""
        if name.startswith("_"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return _NoExperiment()._nothing

    def _start(self) -> None:
        pass

    def _log_hyperparams(self, params: dict[str, Any]) -> None:
        pass

    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        pass
