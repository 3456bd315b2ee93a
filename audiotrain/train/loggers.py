"""Experiment loggers: Weights & Biases, TensorBoard, MLflow and CSV behind one small interface.

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
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import importlib
import io
import math
import numbers
import os
import re
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

STATUSES = ("success", "failed", "interrupted")


class LoggerWarning(UserWarning):
    """A logger backend failed, or cannot record something as given; training continues."""


def _require(module: str, pip_name: str, logger: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{logger} needs the '{pip_name}' package, which is not installed: pip install {pip_name} "
            f"(or pip install 'audiotrain[loggers]')"
        ) from exc


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


def _next_version(root: Path) -> int:
    """1 + the largest ``version_<k>`` under ``root`` (0 when there is none)."""
    found = [int(m.group(1)) for p in root.glob("version_*") if (m := re.fullmatch(r"version_(\d+)", p.name))]
    return max(found, default=-1) + 1


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


# ---------------------------------------------------------------------------------------------- W&B


class WandbLogger(Logger):
    """Log to Weights & Biases (``wandb``).

    Metrics are logged against the trainer's step as ``trainer/global_step`` (W&B's own step must grow
    monotonically, which a resumed run would break). Set ``WANDB_MODE=offline`` or ``offline=True`` to
    write the run locally (``wandb sync`` uploads it later).

    Parameters
    ----------
    project, name : str, optional
        W&B project and run name.
    config : dict, optional
        Hyperparameters recorded at start.
    save_dir : str or Path, optional
        Folder for W&B's local files (``<save_dir>/wandb/...``); default W&B's (``./wandb``).
    offline : bool
        Do not sync to the server.
    **kwargs
        Passed to ``wandb.init`` (``entity``, ``tags``, ``group``, ``settings``, ...).
    """

    def __init__(
        self,
        project: str | None = None,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        save_dir: str | os.PathLike | None = None,
        offline: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self._wandb = _require("wandb", "wandb", "WandbLogger")
        self.project = project
        self._name = name
        self.config = dict(config) if config is not None else None
        self._save_dir = Path(save_dir) if save_dir is not None else None
        self.offline = offline
        self.kwargs = kwargs
        self._run: Any = None
        self._run_id: str | None = kwargs.pop("id", None)
        # The run's name and folder, remembered at start: they stay readable after finalize drops the run.
        self._run_name: str | None = None
        self._run_dir: Path | None = None

    @property
    def name(self) -> str | None:
        if self._run is not None:
            return self._run.name  # live: the user may rename the run while it is open
        return self._run_name if self._run_name is not None else self._name

    @property
    def version(self) -> str | None:
        return self._run_id

    @property
    def save_dir(self) -> Path | None:
        return self._save_dir

    @property
    def log_dir(self) -> Path | None:
        return self._run_dir

    def _start(self) -> None:
        kwargs: dict[str, Any] = dict(project=self.project, name=self._name, **self.kwargs)
        if self.config is not None:
            kwargs["config"] = flatten_params(self.config)
        if self._save_dir is not None:
            self._save_dir.mkdir(parents=True, exist_ok=True)
            kwargs["dir"] = str(self._save_dir)
        if self.offline:
            kwargs["mode"] = "offline"
        if self._run_id is not None:
            kwargs.update(id=self._run_id, resume="allow")
        run = self._wandb.init(**kwargs)
        run.define_metric("trainer/global_step")
        run.define_metric("*", step_metric="trainer/global_step", step_sync=True)
        self._run, self._run_id = run, run.id
        self._run_name, self._run_dir = run.name, Path(run.dir).parent  # run.dir is the run's files/ folder

    def _experiment(self) -> Any:
        return self._run

    def _log_hyperparams(self, params: dict[str, Any]) -> None:
        self._run.config.update(params, allow_val_change=True)

    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self._run.log({**metrics, "trainer/global_step": step})

    def _finalize(self, status: str) -> None:
        run, self._run = self._run, None
        run.finish(exit_code={"success": 0, "failed": 1, "interrupted": 130}[status])

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self._run_id, "project": self.project, "name": self.name}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if self._run is None and state.get("run_id"):
            self._run_id = str(state["run_id"])
        elif self._run is not None:
            self._warn_not_resumed("id", self._run_id, state.get("run_id"))


# ---------------------------------------------------------------------------------------------- TensorBoard


def _summary_writer_class() -> type:
    try:
        return importlib.import_module("tensorboardX").SummaryWriter
    except ImportError:
        pass
    try:
        return importlib.import_module("torch.utils.tensorboard").SummaryWriter
    except ImportError as exc:
        raise ImportError(
            "TensorBoardLogger needs the 'tensorboardX' package (or torch with tensorboard), which is not "
            "installed: pip install tensorboardX (or pip install 'audiotrain[loggers]')"
        ) from exc


class _VersionedFolder:
    """`<root>/<name>/version_<k>` folders shared by the TensorBoard and CSV loggers (k: next free).

    As in Lightning, an empty or None `name` drops that level: `<root>/version_<k>`. Both loggers also keep
    the run's ``hparams.yaml`` there.
    """

    _root: Path
    _name: str
    _version: int | str | None
    _hparams: dict[str, Any]  # every hyperparameter logged to this run so far

    @property
    def name(self) -> str:
        return self._name

    @property
    def root_dir(self) -> Path:
        """The folder holding the ``version_<k>`` folders."""
        return self._root / self._name if self._name else self._root

    @property
    def version(self) -> int | str:
        if self._version is None:
            self._version = _next_version(self.root_dir)
        return self._version

    @property
    def save_dir(self) -> Path:
        return self._root

    @property
    def log_dir(self) -> Path:
        v = self.version
        return self.root_dir / (f"version_{v}" if isinstance(v, int) else str(v))

    @property
    def hparams_file(self) -> Path:
        return self.log_dir / "hparams.yaml"

    def _merge_hparams(self, params: dict[str, Any]) -> dict[str, Any]:
        """Add ``params`` to the run's hyperparameters and write them all; returns the merged set.

        As in Lightning, each call adds to what was logged before (the user's hyperparameters and the
        Trainer's are logged by separate calls); a name logged again takes its new value.
        """
        self._hparams.update(params)
        _write_yaml(self.hparams_file, self._hparams)
        return self._hparams

    def _reload_hparams(self) -> None:
        """On resume, start from the hyperparameters the interrupted run wrote (those logged since win)."""
        if self.hparams_file.exists():
            import yaml

            self._hparams = {**(yaml.safe_load(self.hparams_file.read_text()) or {}), **self._hparams}


class TensorBoardLogger(_VersionedFolder, Logger):
    """Write TensorBoard event files to ``<save_dir>/<name>/version_<k>`` (``tensorboard --logdir <save_dir>``).

    Hyperparameters go to ``hparams.yaml`` in the run folder and to a text summary; each call adds to those
    logged before (the CSV logger's ``hparams.yaml`` too). A resumed run writes to the same version folder
    and discards events after the checkpoint's step (``purge_step``).

    Parameters
    ----------
    save_dir : str or Path
        Root folder (Lightning's name; default ``./tb_logs``).
    name : str, optional
        Experiment name (a sub-folder); None or "" writes the version folders directly in ``save_dir``.
    version : int or str, optional
        ``version_<k>`` for an int, the string itself otherwise; default the next free ``version_<k>``.
    flush_secs : int
        How often pending events are written to disk.
    log_dir : str or Path, optional
        The earlier name of ``save_dir``, still accepted (the ``log_dir`` property is the run's own folder).
    """

    def __init__(
        self,
        save_dir: str | os.PathLike | None = None,
        name: str | None = "default",
        version: int | str | None = None,
        flush_secs: int = 30,
        *,
        log_dir: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        if save_dir is not None and log_dir is not None:
            raise TypeError("TensorBoardLogger: give save_dir or log_dir (its earlier name), not both")
        self._writer_cls = _summary_writer_class()
        root = save_dir if save_dir is not None else log_dir
        self._root = Path(root if root is not None else "./tb_logs")
        self._name = name or ""
        self._version = version
        self.flush_secs = flush_secs
        self._writer: Any = None
        self._last_step: int | None = None
        self._purge_step: int | None = None
        self._resumed = False
        self._hparams = {}

    def _start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self._resumed:
            self._reload_hparams()
        # tensorboardX and torch name the folder argument differently (logdir / log_dir): pass it positionally.
        # Event files are named by the second they were opened in; the suffix keeps a resumed run opened in
        # the same second from overwriting the previous file, and keeps the files in order.
        self._writer = self._writer_cls(
            str(self.log_dir),
            flush_secs=self.flush_secs,
            purge_step=self._purge_step,
            filename_suffix=f".{time.time_ns()}",
        )

    def _experiment(self) -> Any:
        return self._writer

    def _log_hyperparams(self, params: dict[str, Any]) -> None:
        # The text summary holds the merged set too: TensorBoard shows its latest record.
        table = "\n".join(f"| {k} | {v} |" for k, v in self._merge_hparams(params).items())
        self._writer.add_text("hparams", f"| name | value |\n|---|---|\n{table}")
        self._writer.flush()

    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        # The writer renames tags itself (as _tb_tag does); we only look for names it would merge.
        self._backend_keys("metric", metrics, _tb_tag)
        for key, value in metrics.items():
            self._writer.add_scalar(key, value, step)
        self._last_step = step

    def _finalize(self, status: str) -> None:
        writer, self._writer = self._writer, None
        writer.flush()
        writer.close()

    def state_dict(self) -> dict[str, Any]:
        return {"version": self.version, "step": self._last_step}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if self._writer is None:
            self._version = state.get("version", self._version)
            step = state.get("step")
            self._purge_step = None if step is None else int(step) + 1
            self._resumed = True
        else:
            self._warn_not_resumed("version", self.version, state.get("version"))


def _tb_tag(name: str) -> str:
    # What tensorboardX and torch's SummaryWriter make of a scalar's name (their _clean_tag).
    return re.sub(r"[^-/\w.]", "_", name).lstrip("/")


def _write_yaml(path: Path, params: dict[str, Any]) -> None:
    import yaml

    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(params, sort_keys=False))
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------- MLflow

_MLFLOW_STATUS = {"success": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}


class MLflowLogger(Logger):
    """Log to MLflow (``mlflow-skinny`` is enough).

    Parameters
    ----------
    experiment_name : str
        Created if it does not exist.
    run_name : str, optional
    tracking_uri : str, optional
        Default: ``$MLFLOW_TRACKING_URI``, else a local file store ``./mlruns`` (for ``file:`` stores this
        sets ``MLFLOW_ALLOW_FILE_STORE=true``, which recent MLflow requires).
    tags : dict, optional
        Run tags.

    Resuming (``load_state_dict``) continues the same run, with two limits of MLflow:

    - A param cannot change once logged. Params whose value is unchanged are not logged again; a changed one
      (e.g. ``trainer/max_steps`` after resuming with other Trainer flags) keeps its first value in MLflow,
      and the logger warns once, naming each with its old and new value.
    - Metric points cannot be deleted. Resuming from a checkpoint older than the run's last step logs the
      steps after that checkpoint again, so MLflow holds two points at each of these steps (the UI's chart
      goes back and draws the steps twice; ``get_metric_history`` returns both). The later points, by
      timestamp, are the resumed run's. The CSV and TensorBoard loggers drop those steps instead; with
      MLflow, start a new run (no ``load_state_dict``) to get a clean history.

    Names are stored with the characters MLflow does not accept replaced by ``_``; two names that become the
    same key (``top@1``, ``top#1``) are recorded as one, with a warning.

    The first request to the server (which creates or reopens the run) is made with MLflow's retries off and
    a ``CONNECT_TIMEOUT_S`` timeout, unless ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` / ``MLFLOW_HTTP_REQUEST_TIMEOUT``
    are set: an unreachable server then disables the logger with a warning within seconds instead of
    holding up ``fit`` for minutes of retries. Later requests use MLflow's retry settings.
    """

    CONNECT_TIMEOUT_S = 5

    def __init__(
        self,
        experiment_name: str = "default",
        run_name: str | None = None,
        tracking_uri: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self._mlflow = _require("mlflow", "mlflow-skinny", "MLflowLogger")
        self.experiment_name = experiment_name
        self.run_name = run_name
        if tracking_uri is None:
            tracking_uri = os.environ.get("MLFLOW_TRACKING_URI") or Path("mlruns").resolve().as_uri()
        self.tracking_uri = tracking_uri
        self.tags = {k: str(v) for k, v in (tags or {}).items()}
        self._client: Any = None
        self._run_id: str | None = None
        self._experiment_id: str | None = None
        self._params: dict[str, str] = {}  # the run's params as MLflow holds them (key -> string value)
        self._warned_params: set[tuple[str, str]] = set()  # (key, refused value) already warned about

    @property
    def name(self) -> str:
        return self.experiment_name

    @property
    def version(self) -> str | None:
        return self._run_id

    @property
    def save_dir(self) -> Path | None:
        if self.tracking_uri.startswith("file:"):
            from urllib.parse import unquote, urlparse

            return Path(unquote(urlparse(self.tracking_uri).path))
        return None

    @property
    def log_dir(self) -> Path | None:
        root = self.save_dir
        if root is None or self._run_id is None:
            return None
        return root / str(self._experiment_id) / self._run_id

    def _start(self) -> None:
        if self.tracking_uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=self.tracking_uri)
        if self._run_id is not None:
            with _fail_fast_http(self.CONNECT_TIMEOUT_S):
                run = client.get_run(self._run_id)
            client.update_run(self._run_id, status="RUNNING")
            self._experiment_id = run.info.experiment_id
            self._params = dict(run.data.params)
        else:
            with _fail_fast_http(self.CONNECT_TIMEOUT_S):
                experiment = client.get_experiment_by_name(self.experiment_name)
            self._experiment_id = (
                experiment.experiment_id if experiment else client.create_experiment(self.experiment_name)
            )
            run = client.create_run(self._experiment_id, run_name=self.run_name, tags=self.tags)
            self._run_id = run.info.run_id
        self._client = client

    def _experiment(self) -> Any:
        return self._client

    def _log_hyperparams(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        keys = self._backend_keys("param", params, _mlflow_key)
        # MLflow keeps params as strings of at most 6000 characters.
        values = {keys[k]: str(v)[:6000] for k, v in params.items()}
        self._warn_changed_params(values)
        # Logging a param again is refused if its value changed, and a no-op otherwise: send new ones only.
        items = [Param(k, v) for k, v in values.items() if k not in self._params]
        for start in range(0, len(items), 100):  # log_batch accepts at most 100 params per call
            batch = items[start : start + 100]
            self._client.log_batch(self._run_id, params=batch)
            self._params.update((p.key, p.value) for p in batch)

    def _warn_changed_params(self, values: dict[str, str]) -> None:
        """Warn once about params whose new value MLflow would refuse (a param cannot change in a run)."""
        changed = {
            k: v
            for k, v in values.items()
            if k in self._params and self._params[k] != v and (k, v) not in self._warned_params
        }
        if not changed:
            return
        self._warned_params.update(changed.items())
        listed = ", ".join(f"{k} (old {self._params[k]!r}, new {v!r})" for k, v in changed.items())
        warnings.warn(
            f"MLflowLogger: params changed in run {self._run_id}: {listed}. MLflow cannot change a param, "
            "so the run keeps the old values; logging goes on.",
            LoggerWarning,
            stacklevel=5,  # the caller of log_hyperparams
        )

    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        keys = self._backend_keys("metric", metrics, _mlflow_key)
        items = [Metric(keys[k], v, now, step) for k, v in metrics.items()]
        self._client.log_batch(self._run_id, metrics=items)

    def _finalize(self, status: str) -> None:
        self._client.set_terminated(self._run_id, _MLFLOW_STATUS[status])

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self._run_id, "experiment_name": self.experiment_name}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if self._client is None and state.get("run_id"):
            self._run_id = str(state["run_id"])
        elif self._client is not None:
            self._warn_not_resumed("id", self._run_id, state.get("run_id"))


@contextlib.contextmanager
def _fail_fast_http(timeout_s: int):
    """MLflow HTTP requests without retries and with a short timeout, where the user has not set them.

    MLflow reads these variables at each request; its defaults (7 retries with exponential backoff, 120 s
    timeout) keep an unreachable server blocking for minutes.
    """
    bounds = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_s)}
    added = [k for k in bounds if k not in os.environ]
    os.environ.update({k: bounds[k] for k in added})
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def _mlflow_key(key: str) -> str:
    # MLflow accepts alphanumerics, _ - . / and spaces in keys; anything else would make the call fail.
    return re.sub(r"[^\w\-./ ]", "_", key)


# ---------------------------------------------------------------------------------------------- CSV


class CSVLogger(_VersionedFolder, Logger):
    """Write ``metrics.csv`` and ``hparams.yaml`` to ``<save_dir>/<name>/version_<k>``.

    ``metrics.csv`` has a ``step`` column and one column per metric name; when a new name appears the
    file is rewritten with the new column (earlier rows get empty cells). Metrics logged at the same step
    (the learning rate, the training metrics, the validation metrics) share one row: the last row is
    rewritten in place as they arrive, so the file is always complete. A metric logged twice at one step
    starts a new row rather than overwrite the first value. A resumed run appends to the same file after
    dropping rows logged after the checkpoint's step.
    """

    def __init__(
        self, save_dir: str | os.PathLike, name: str | None = "default", version: int | str | None = None
    ):
        super().__init__()
        self._root = Path(save_dir)
        self._name = name or ""
        self._version = version
        self._columns: list[str] = []
        self._last_step: int | None = None
        self._resume_step: int | None = None
        self._last_row: dict[str, Any] | None = None  # the file's last row, while more may join it
        self._last_row_offset = 0  # where that row starts in the file (bytes)
        self._resumed = False
        self._hparams = {}

    @property
    def metrics_file(self) -> Path:
        return self.log_dir / "metrics.csv"

    def _start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._columns = ["step"]
        self._last_row = None
        if self._resumed:
            self._reload_hparams()
        if self.metrics_file.exists():
            header, rows = self._read()
            if self._resume_step is not None:
                rows = [r for r in rows if r.get("step") and int(r["step"]) <= self._resume_step]
            self._columns = header or ["step"]
            self._rewrite(rows)

    def _read(self) -> tuple[list[str], list[dict[str, str]]]:
        with self.metrics_file.open(newline="") as f:
            reader = csv.DictReader(f)
            return list(reader.fieldnames or []), list(reader)

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        tmp = self.metrics_file.with_suffix(".csv.tmp")
        head = self._csv_text(rows[:-1], header=True)
        with tmp.open("wb") as f:
            f.write(head)
            f.write(self._csv_text(rows[-1:]))
        tmp.replace(self.metrics_file)  # a crash mid-rewrite leaves the previous file intact
        self._last_row_offset = len(head)

    def _csv_text(self, rows: list[dict[str, Any]], header: bool = False) -> bytes:
        buf = io.StringIO(newline="")
        writer = csv.DictWriter(buf, fieldnames=self._columns)
        if header:
            writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue().encode()

    def _log_hyperparams(self, params: dict[str, Any]) -> None:
        self._merge_hparams(params)

    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        row = {"step": step, **{k: _csv_number(v) for k, v in metrics.items()}}
        last = self._last_row
        merge = last is not None and last["step"] == step and not (last.keys() & metrics.keys())
        if merge:
            row = {**last, **row}
        new = [k for k in metrics if k not in self._columns]
        if new or not self.metrics_file.exists():
            rows = self._read()[1] if self.metrics_file.exists() else []
            self._columns += new
            self._rewrite([*(rows[:-1] if merge else rows), row])
        else:
            text = self._csv_text([row])
            with self.metrics_file.open("r+b") as f:
                # Merging replaces the last row: cut the file where it starts and write the merged one.
                offset = self._last_row_offset if merge else f.seek(0, os.SEEK_END)
                f.truncate(offset)
                f.seek(offset)
                f.write(text)
            self._last_row_offset = offset
        self._last_row = row
        self._last_step = step

    def state_dict(self) -> dict[str, Any]:
        return {"version": self.version, "step": self._last_step}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if not self._started:
            self._version = state.get("version", self._version)
            step = state.get("step")
            self._resume_step = None if step is None else int(step)
            self._resumed = True
        else:
            self._warn_not_resumed("version", self.version, state.get("version"))


def _csv_number(value: float) -> str:
    return repr(value) if math.isfinite(value) else str(value)
