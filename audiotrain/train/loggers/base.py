"""`Logger`, the interface every experiment logger implements, and what it does for all of them.

A logger never stops training: every backend call goes through `Logger._call`, so a backend that fails
(not logged in, no network, disk full) warns once, naming the logger and the cause, and training goes on.
If the run itself cannot be created the logger disables itself; later failures are counted in
``logger.failures``. Backends are imported when a logger is constructed (never by ``import audiotrain``),
and a missing package raises ImportError naming what to ``pip install``.

Runs are created lazily, at the first call that needs them, so that `Logger.load_state_dict` (called by
the Trainer when it resumes from a checkpoint) can make a resumed run continue the same W&B / MLflow run,
TensorBoard version and CSV file. Hyperparameters logged before the run exists are kept and written when it
starts (at the first metric, `experiment` access or `finalize`; `Trainer.fit` starts it once a checkpoint is
loaded): a user's `logger.log_hyperparams(config)` before `trainer.fit(..., ckpt_path=...)` would otherwise
open a new run, and the resumed training would continue there instead of in the checkpoint's run.

`flatten_params` turns nested hyperparameters (dicts, dataclasses, schedulers) into the flat dict of plain
values that every backend stores.
"""

from __future__ import annotations

import dataclasses
import numbers
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

STATUSES = ("success", "failed", "interrupted")


class LoggerWarning(UserWarning):
    """A logger backend failed, or cannot record something as given; training continues."""


def _plain(value: Any) -> Any:
    """A value a backend can store: numbers, strings, bools, None, lists of these, or else its str()."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item") and getattr(value, "size", None) == 1:  # numpy / mx scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested hyperparameters as one flat dict with ``/``-joined keys and plain values.

    Dataclasses and objects with ``to_dict()`` (e.g. the schedulers) are expanded like dicts.
    """
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = value.to_dict() if hasattr(value, "to_dict") else dataclasses.asdict(value)
        elif hasattr(value, "to_dict") and callable(value.to_dict):
            value = value.to_dict()
        if isinstance(value, Mapping):
            out.update(flatten_params(value, f"{name}/"))
        else:
            out[name] = _plain(value)
    return out


def _metric_value(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"metric {name!r} must be a number or a scalar array, got {type(value).__name__}: {value!r}"
        ) from exc


class Logger:
    """Base class. Subclasses implement ``_start`` (create the run) and the ``_log_*`` / ``_finalize`` hooks.

    Public methods never raise because of the backend (see the module docstring); they raise only for
    bad arguments (a non-numeric metric, an unknown status).
    """

    def __init__(self) -> None:
        self.failures = 0
        self._started = False
        self._disabled = False
        self._warned = False
        self._key_names: dict[tuple[str, str], str] = {}  # (kind, backend key) -> the first name seen
        self._collisions: set[tuple[str, str]] = set()
        self._pending_hparams: dict[str, Any] = {}  # logged before the run existed (module docstring)
        self._ever_started = False  # after a finalize the run is known: later calls reopen it at once

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
        """The backend object (a wandb Run, a SummaryWriter, an MlflowClient), created if needed; None if
        the logger is disabled."""
        self.start()
        return None if self._disabled else self._experiment()

    # -- logging -------------------------------------------------------------------------------------
    def log_hyperparams(self, params: Mapping[str, Any]) -> None:
        """Record hyperparameters (nested dicts, dataclasses and schedulers are flattened)."""
        if not isinstance(params, Mapping):
            raise TypeError(f"log_hyperparams expects a dict, got {type(params).__name__}")
        flat = flatten_params(params)
        if not self._ever_started and not self._disabled:
            self._pending_hparams.update(flat)  # written when the run starts (module docstring)
            return
        self._call("log_hyperparams", self._log_hyperparams, flat)

    def start(self) -> None:
        """Create (or, after `load_state_dict`, reopen) the run now and write any hyperparameters logged
        so far. Idempotent; a backend failure warns and disables the logger, as everywhere else."""
        self._call("start", None)

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        """Record scalar metrics at optimizer step ``step``."""
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise ValueError(f"log_metrics step must be an int >= 0, got {step!r}")
        values = {str(k): _metric_value(k, v) for k, v in metrics.items()}
        if values:
            self._call("log_metrics", self._log_metrics, values, int(step))

    def finalize(self, status: str = "success") -> None:
        """Close the run with ``status`` ("success", "failed" or "interrupted")."""
        if status not in STATUSES:
            raise ValueError(f"finalize status must be one of {STATUSES}, got {status!r}")
        if self._pending_hparams:
            self.start()  # hyperparameters-only use still records them
        if self._started and not self._disabled:
            self._call("finalize", self._finalize, status)
        self._started = False

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
                stacklevel=3,
            )

    # -- failure handling ----------------------------------------------------------------------------
    def _call(self, op: str, fn: Callable[..., Any] | None, *args: Any) -> None:
        if self._disabled:
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
            if stage == "start":
                self._disabled = True
            if not self._warned:
                self._warned = True
                what = "could not start its run" if stage == "start" else f"failed in {op}"
                after = (
                    "it is disabled for this run"
                    if stage == "start"
                    else "later failures are counted in .failures, not reported"
                )
                warnings.warn(
                    f"{type(self).__name__} {what} ({type(exc).__name__}: {exc}); training goes on, {after}.",
                    LoggerWarning,
                    stacklevel=3,
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

    def _start(self) -> None:
        raise NotImplementedError

    def _experiment(self) -> Any:
        return None

    def _log_hyperparams(self, params: dict[str, Any]) -> None:
        raise NotImplementedError

    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        raise NotImplementedError

    def _finalize(self, status: str) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, version={self.version!r})"
