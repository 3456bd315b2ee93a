"""`MLflowLogger`: log to an MLflow tracking server, or to a local SQLite store that MLflow's own client
and UI read (`resolve_tracking_uri` says which URI a setting means)."""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import importlib.util
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from audiotrain._arguments import folder_argument
from audiotrain._warning_filters import ignoring_warnings
from audiotrain.train.loggers._shared import LIGHTNING_PREFIX, _require, numpy_if_mlx, refuse_lightning_only
from audiotrain.train.loggers.base import Logger, LoggerWarning, check_log_model
from audiotrain.train.loggers.run_folder import RunFolder, run_folder

import numpy as np

_MLFLOW_STATUS = {"success": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}
# What Lightning's MLFlowLogger.finalize also takes: "finished" for "success", and MLflow's own run statuses
# (it passes those to MLflow unchanged).
_STATUS_ALIASES = {"finished": "success", "FINISHED": "success", "FAILED": "failed", "KILLED": "interrupted"}
# Loggers whose run is open: a run that a call after its stage ended reopened (a score logged after fit), or
# that of a logger used without a Trainer. Nothing else ends those, and MLflow showed them as RUNNING forever.
_OPEN_RUNS: set[MLflowLogger] = set()
_exit_hook_registered = False
_MLFLOW_NAMED_STORES = ("databricks", "databricks-uc", "uc")  # tracking URIs that are a name, not a path
# MLflow's limits (mlflow.utils.validation): a key of a metric, param or tag, a param's and a tag's value, and
# the entries of one log_batch call. One entry over them makes MLflow refuse the whole call.
_MAX_KEY, _MAX_PARAM_VALUE, _MAX_TAG_VALUE = 250, 6000, 8000
_MAX_METRICS_PER_BATCH, _MAX_PARAMS_PER_BATCH = 1000, 100

# Lightning's MLFlowLogger arguments without a counterpart here (see `refuse_lightning_only`).
_LIGHTNING_ONLY: dict[str, tuple[tuple, str]] = {
    "prefix": LIGHTNING_PREFIX,
    "run_id": (
        (None,),
        "a run is continued by resuming: trainer.fit(..., ckpt_path=...) reopens the checkpoint's MLflow run",
    ),
    "artifact_location": (
        (None,),
        "a local SQLite store keeps the artifacts in mlruns/ beside its database, a file store (save_dir) "
        "in its folder; a server chooses its own",
    ),
    "synchronous": (
        (None, True),
        "every value is logged before the call returns (MLflow's synchronous logging, its default); "
        "asynchronous logging is not offered",
    ),
}


class MLflowLogger(Logger):
    """Log to MLflow (``mlflow-skinny`` is enough; a local store also needs ``sqlalchemy`` and ``alembic``,
    all three in ``pip install 'audiotrain[loggers]'``).

    Parameters
    ----------
    experiment_name : str
        Created if it does not exist.
    run_name : str, optional
    tracking_uri : str, optional
        Where runs are stored (see `resolve_tracking_uri`): a server (``http://host:5000``, ``databricks``),
        a database (``sqlite:///runs/mlflow.db``) or a path (``runs/mlflow.db``). Default:
        ``$MLFLOW_TRACKING_URI``, else MLflow's own default, ``sqlite:///mlflow.db`` in the working folder.
        A local SQLite store keeps the artifacts in ``mlruns/`` beside the database file; open it with
        ``mlflow ui --backend-store-uri sqlite:///<path>/mlflow.db``. A ``file:`` URI (MLflow's older file
        store) still works, but MLflow's client and UI read it only with ``MLFLOW_ALLOW_FILE_STORE=true``.
    tags : dict, optional
        Run tags.
    log_model : False, True or "all"
        Upload checkpoints as artifacts (under ``checkpoints/<folder>``): True the best (or last) one when
        fit ends, "all" each as it is saved (Lightning's setting; see `Logger.after_save_checkpoint`).
    save_dir : str or Path, optional
        Lightning's: a folder for MLflow's file store (``tracking_uri="file:<save_dir>"``), instead of
        ``tracking_uri``. MLflow's client and UI read that store only with ``MLFLOW_ALLOW_FILE_STORE=true``.
        Lightning's ``prefix``, ``run_id`` and ``artifact_location`` are refused with what to use instead.

    Resuming (``load_state_dict``) continues the same run, with two limits of MLflow:

    - A param cannot change once logged. Params whose value is unchanged are not logged again; a changed one
      (e.g. ``trainer/max_steps`` after resuming with other Trainer flags) keeps its first value in MLflow,
      and the logger warns once, naming each with its old and new value.
    - Metric points cannot be deleted. Resuming from a checkpoint older than the run's last step logs the
      steps after that checkpoint again, so MLflow holds two points at each of these steps (the UI's chart
      goes back and draws the steps twice; ``get_metric_history`` returns both). The later points, by
      timestamp, are the resumed run's. The CSV and TensorBoard loggers drop those steps instead; with
      MLflow, start a new run (no ``load_state_dict``) to get a clean history.

    ``test()`` or ``validate()`` after ``fit()`` log to the same run (reopened, then finished again). A run
    still open when Python exits (reopened by a metric, param or ``experiment`` call after the stage ended,
    or never finalized) is finished then, as MLflow's own ``mlflow.start_run`` runs are. ``run_id`` and
    ``experiment_id`` (Lightning's names; ``version`` is the run id too) are known once the run exists.

    Names are stored with the characters MLflow does not accept replaced by ``_`` (and empty, ``.`` or ``..``
    path parts, which it refuses too, dropped or replaced); two names that become the same key (``top@1``,
    ``top#1``) are recorded as one, with a warning. A name over MLflow's 250 characters is stored as its first
    241 characters, ``-`` and 8 hex digits of its hash (the same name always gets the same key), with a warning
    naming it once. Param values are cut to MLflow's 6000 characters, tag values to 8000. An entry MLflow
    still refuses is left out with a warning naming it, and the rest of that call is logged (MLflow refuses
    a whole batch for one bad entry).

    The first request to the server (which creates or reopens the run) is made with MLflow's retries off and
    a ``CONNECT_TIMEOUT_S`` timeout, unless ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` / ``MLFLOW_HTTP_REQUEST_TIMEOUT``
    are set: an unreachable server then disables the logger with a warning within seconds instead of
    holding up ``fit`` for minutes of retries. Later requests use MLflow's retry settings.
    """

    CONNECT_TIMEOUT_S = 5
    stores_artifacts = True
    stores_audio = True
    media_calls = (
        "audio goes to logger.log_audio(key, [clips], sample_rate=[...]); figures and images go to "
        "logger.experiment.log_figure(logger.run_id, figure, 'cm.png') or "
        "log_image, files to logger.log_artifact(path)"
    )

    def __init__(
        self,
        experiment_name: str = "default",
        run_name: str | None = None,
        tracking_uri: str | None = None,
        tags: Mapping[str, Any] | None = None,
        log_model: bool | str = False,
        *,
        save_dir: str | os.PathLike | None = None,
        **lightning_args: Any,
    ) -> None:
        super().__init__()
        known = ["experiment_name", "run_name", "tracking_uri", "tags", "log_model", "save_dir"]
        refuse_lightning_only("MLflowLogger", lightning_args, known, _LIGHTNING_ONLY)
        if save_dir is not None:
            if tracking_uri is not None:
                raise TypeError(
                    "MLflowLogger: give tracking_uri or save_dir (Lightning's folder for a file store), not both"
                )
            tracking_uri = (
                folder_argument(save_dir, "MLflowLogger", "save_dir").expanduser().resolve().as_uri()
            )
        self._mlflow = _require_mlflow()
        self.experiment_name = experiment_name
        self.run_name = run_name
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        if self.tracking_uri.startswith("sqlite:"):
            if _local_path(self.tracking_uri) is None:  # ("sqlite://": it warned 'NoneType' has no 'parent')
                raise ValueError(
                    f"MLflowLogger(tracking_uri={self.tracking_uri!r}"
                    + ("" if tracking_uri else ", from $MLFLOW_TRACKING_URI")
                    + "): a SQLite store is a file, sqlite:///PATH (sqlite:///runs/mlflow.db), or a path "
                    "ending in .db; this names none"
                )
            _require_database_packages(self.tracking_uri)
        _check_scheme(self.tracking_uri, tracking_uri)
        self.log_model = check_log_model(log_model, "MLflowLogger")
        self._client: Any = None
        self._run_id: str | None = None
        self._experiment_id: str | None = None
        self._artifact_uri: str | None = None
        self._params: dict[str, str] = {}  # the run's params as MLflow holds them (key -> string value)
        self._shortened: set[str] = set()  # names over MLflow's key length, already warned about
        self._refused: set[tuple[str, str]] = set()  # (kind, key) MLflow refused: left out from then on
        # The clips log_audio wrote per (key, step): a later call at that step numbers its own after them.
        self._clips_written: dict[tuple[str, int], int] = {}
        self.tags = {self._mlflow_key(k, "tag"): str(v)[:_MAX_TAG_VALUE] for k, v in (tags or {}).items()}
        if run_name is not None:  # run_name wins over a tags' run name, as in Lightning (MLflow refuses both)
            self.tags.pop("mlflow.runName", None)

    @property
    def name(self) -> str:
        return self.experiment_name

    @property
    def version(self) -> str | None:
        return self._run_id

    @property
    def run_id(self) -> str | None:
        """The MLflow run's id (Lightning's name for `version`), None until the run exists."""
        return self._run_id

    @property
    def experiment_id(self) -> str | None:
        """The id of the MLflow experiment the run is in, None until the run exists."""
        return self._experiment_id

    @property
    def save_dir(self) -> RunFolder | None:
        """The local store's folder (the SQLite file's, or the file store's), None for a server."""
        path = _local_path(self.tracking_uri)
        if path is None:
            return None
        return run_folder(path.parent if self.tracking_uri.startswith("sqlite:") else path)

    @property
    def log_dir(self) -> RunFolder | None:
        """This run's artifact folder, where the artifacts are stored on this machine (None otherwise)."""
        if self._artifact_uri is None or not self._artifact_uri.startswith(("file:", "/")):
            return None
        return run_folder(_local_path(self._artifact_uri))

    def _start(self) -> None:
        with _quiet_store_start():
            self._start_run()
        _OPEN_RUNS.add(self)
        _finish_open_runs_at_exit()

    def _start_run(self) -> None:
        if self.tracking_uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.tracking import MlflowClient

        if self.tracking_uri.startswith("sqlite:"):
            # The database's folder made here, as MLflow 3 does: MLflow 2 (mlflow-skinny>=2.10 is declared)
            # retried a store it could not open for about 55 minutes before failing, so a training logging
            # to a .db in a missing folder, or under a file, waited that long for a run that never started.
            _local_path(self.tracking_uri).parent.mkdir(parents=True, exist_ok=True)
        client = _client_taking_mlx_arrays(MlflowClient)(tracking_uri=self.tracking_uri)
        run = self._checkpoints_run(client) if self._run_id is not None else None
        if run is not None:
            client.update_run(self._run_id, status="RUNNING")
            self._experiment_id = run.info.experiment_id
            self._params = dict(run.data.params)
        else:
            with _fail_fast_http(self.CONNECT_TIMEOUT_S):
                experiment = client.get_experiment_by_name(self.experiment_name)
            if experiment is not None:
                self._experiment_id = experiment.experiment_id
            else:
                self._experiment_id = client.create_experiment(
                    self.experiment_name, artifact_location=self._artifact_location()
                )
            run = client.create_run(
                self._experiment_id, run_name=self.run_name, tags=_with_context(self.tags)
            )
            self._run_id = run.info.run_id
        self._artifact_uri = run.info.artifact_uri
        self._client = client

    def _checkpoints_run(self, client: Any) -> Any:
        """The run the checkpoint logged to, or None where this store has no such run (the resume was given
        another `tracking_uri`/`save_dir`, or the run was removed): a new run is started here then, with a
        warning, as Lightning's MLFlowLogger starts one (it keeps no run in the checkpoint). It was the whole
        resumed fit unlogged ("could not start its run (... Run '<id>' not found)")."""
        from mlflow.exceptions import MlflowException

        try:
            with _fail_fast_http(self.CONNECT_TIMEOUT_S):
                return client.get_run(self._run_id)
        except MlflowException as exc:
            if getattr(exc, "error_code", None) != "RESOURCE_DOES_NOT_EXIST":
                raise
        warnings.warn(
            f"MLflowLogger: the checkpoint's MLflow run {self._run_id} is not in this logger's store "
            f"({self.tracking_uri}), so the resumed fit logs to a new run in experiment "
            f"{self.experiment_name!r} there; give the first run's tracking_uri (or save_dir) to continue "
            "it.",
            LoggerWarning,
            stacklevel=2,
        )
        self._run_id = None
        return None

    def _artifact_location(self) -> str | None:
        """For a local SQLite store, ``mlruns/`` beside the database (MLflow would use the working folder's);
        a server decides for itself."""
        if not self.tracking_uri.startswith("sqlite:"):
            return None
        return (self.save_dir / "mlruns").as_uri()

    def _experiment(self) -> Any:
        return self._client

    _process_bound = ("_mlflow", "_client")

    def _reattach(self) -> None:
        self._mlflow, self._client = _require_mlflow(), None

    def _log_hyperparams(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        keys = self._backend_keys("param", params, lambda name: self._mlflow_key(name, "param"))
        values = {keys[k]: str(v)[:_MAX_PARAM_VALUE] for k, v in params.items()}
        self._warn_changed_params(
            self._params,
            values,
            f"run {self._run_id}",
            "MLflow cannot change a param, so the run keeps the old values",
        )
        # Logging a param again is refused if its value changed, and a no-op otherwise: send new ones only.
        items = [Param(k, v) for k, v in values.items() if k not in self._params]
        for param in self._log_batch("param", items, _MAX_PARAMS_PER_BATCH):
            self._params[param.key] = param.value

    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        keys = self._backend_keys("metric", metrics, lambda name: self._mlflow_key(name, "metric"))
        items = [Metric(keys[k], v, now, step) for k, v in metrics.items()]
        self._log_batch("metric", items, _MAX_METRICS_PER_BATCH)

    def _log_batch(self, kind: str, items: list, size: int) -> list:
        """Send `items` (params or metrics) in log_batch calls of at most `size`; returns those logged.

        MLflow refuses a whole call for one entry it does not accept, which lost every metric of a step (or
        every param) for one bad name: such a call is sent again one entry at a time, so that only the
        refused entry is lost; it is named in a warning and left out from then on.
        """
        from mlflow.exceptions import MlflowException

        items = [item for item in items if (kind, item.key) not in self._refused]
        logged = []
        for start in range(0, len(items), size):
            batch = items[start : start + size]
            try:
                self._client.log_batch(self._run_id, **{f"{kind}s": batch})
                logged += batch
            except MlflowException as exc:
                if exc.error_code != "INVALID_PARAMETER_VALUE":
                    raise
                for item in batch:
                    try:
                        self._client.log_batch(self._run_id, **{f"{kind}s": [item]})
                        logged.append(item)
                    except MlflowException as refused:
                        if refused.error_code != "INVALID_PARAMETER_VALUE":
                            raise
                        self._refuse(kind, item.key, refused)
        return logged

    def _refuse(self, kind: str, key: str, exc: Exception) -> None:
        self._refused.add((kind, key))
        warnings.warn(
            f"MLflowLogger: MLflow refused the {kind} {key!r} ({exc}); it is left out of run {self._run_id} "
            f"from now on, the other {kind}s are logged.",
            LoggerWarning,
            stacklevel=6,  # the caller of log_metrics / log_hyperparams
        )

    def _mlflow_key(self, name: str, kind: str) -> str:
        """`_mlflow_key(name)`, warning once about a name over MLflow's length limit (shortened)."""
        key = _mlflow_key(name)
        if len(_mlflow_key(name, limit=None)) > _MAX_KEY and name not in self._shortened:
            self._shortened.add(name)
            warnings.warn(
                f"MLflowLogger: the {kind} name {name!r} is longer than MLflow's {_MAX_KEY} characters; it is "
                f"stored as {key!r}.",
                LoggerWarning,
                stacklevel=3 if kind == "tag" else 7,  # MLflowLogger(...), or the caller of log_metrics
            )
        return key

    def finalize(self, status: str = "success") -> None:
        """Close the run with ``status``: "success" (or Lightning's "finished"), "failed" or
        "interrupted"; MLflow's own ``FINISHED``, ``FAILED`` and ``KILLED`` are taken too, as Lightning's
        logger takes them."""
        super().finalize(_STATUS_ALIASES.get(status, status))

    def _finalize(self, status: str) -> None:
        _OPEN_RUNS.discard(self)
        self._client.set_terminated(self._run_id, _MLFLOW_STATUS[status])

    def _log_artifact(self, path: Path, name: str, artifact_type: str) -> None:
        if path.is_dir():
            self._client.log_artifacts(self._run_id, str(path), artifact_path=name)
            return
        folder, _, file_name = name.rpartition("/")
        if file_name == path.name:
            self._client.log_artifact(self._run_id, str(path), artifact_path=folder or None)
            return
        with tempfile.TemporaryDirectory() as tmp:  # MLflow keeps a file's own name: store a renamed copy
            renamed = Path(tmp) / file_name
            shutil.copyfile(path, renamed)
            self._client.log_artifact(self._run_id, str(renamed), artifact_path=folder or None)

    def _log_audio(self, key: str, clips: list[Any], sample_rates: list[int], step: int) -> None:
        import soundfile as sf

        with tempfile.TemporaryDirectory() as tmp:
            for clip, rate in zip(clips, sample_rates):
                if clip is None:  # (skipped by log_audio)
                    continue
                # (named by step: a later validation's clips sit beside the earlier ones, never over them;
                # and numbered on from those already at this step: a clip per validation batch, all at one
                # step, each replaced the one before)
                i = self._clips_written.get((key, step), 0)
                path = Path(tmp) / f"step={step}-{i}.wav"
                sf.write(str(path), np.clip(clip, -1.0, 1.0), rate, subtype="PCM_16")
                self._client.log_artifact(self._run_id, str(path), artifact_path=key)
                self._clips_written[(key, step)] = i + 1

    def _log_checkpoint(self, path: Path, best: bool, checkpoint_callback: Any) -> None:
        super()._log_checkpoint(path, best, checkpoint_callback)
        if best:  # which of the uploaded checkpoints is the best, as Lightning's "best" alias says in W&B
            self._client.set_tag(self._run_id, "best_checkpoint", f"checkpoints/{path.name}")

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self._run_id, "experiment_name": self.experiment_name}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if self._client is None and state.get("run_id"):
            self._run_id = str(state["run_id"])
        elif self._client is not None:
            self._warn_not_resumed("id", self._run_id, state.get("run_id"))


def _with_context(tags: dict[str, str]) -> dict[str, str]:
    """`tags` with MLflow's context tags under them (``mlflow.user``, ``mlflow.source.name`` and ``.type``,
    a git commit), as ``mlflow.start_run`` and Lightning's MLFlowLogger set them: `MlflowClient.create_run`
    sets none, so the UI's User and Source columns of a run were empty. The user's own tags win."""
    try:
        from mlflow.tracking.context.registry import resolve_tags
    except ImportError:  # (an MLflow without the registry: the user's tags alone, as before)
        return tags
    return resolve_tags(tags)


#: The modules whose deprecation warnings `_quiet_store_start` ignores: MLflow's and the libraries its
#: store is built on, whose use of each other neither the user nor audiotrain can change.
_STORE_MODULES = r"(mlflow|sqlalchemy|alembic)(\.|$)"
#: The logger of MLflow's two INFO lines as it creates a local store's tables ("Creating initial MLflow
#: database tables...", "Updating database tables").
_STORE_CREATION_LOG = "mlflow.store.db.utils"
#: What MLflow's file store says, through the root logger, of a folder of its store without a ``meta.yaml``.
_MALFORMED_EXPERIMENT = re.compile(r"Malformed experiment '([^']*)'")


class _NoExperimentOfTheStore(logging.Filter):
    """Drops MLflow's file store's "Malformed experiment 'NAME'" (with its traceback) where NAME is no
    experiment of MLflow's: the store numbers its experiments' folders (``0`` is the default one), so a
    folder named otherwise is another program's. The Trainer's ``checkpoints`` is one, where the store is
    the Trainer's ``default_root_dir`` (``MLflowLogger(save_dir=D)`` beside ``Trainer(default_root_dir=D)``):
    MLflow said so twice per run start."""

    def filter(self, record: logging.LogRecord) -> bool:
        found = _MALFORMED_EXPERIMENT.match(str(record.msg))
        return found is None or found.group(1).isdigit()


@functools.cache
def _client_taking_mlx_arrays(client_cls: type) -> type:
    """MLflow's client whose `log_image` takes an MLX array where it takes numpy's (a spectrogram the model
    computed, in ``self.logger.experiment.log_image(self.logger.run_id, ...)``): MLflow refused it."""

    class MlflowClient(client_cls):  # type: ignore[misc, valid-type]
        def log_image(self, run_id: str, image: Any, *args: Any, **kwargs: Any) -> Any:
            return super().log_image(run_id, numpy_if_mlx(image), *args, **kwargs)

    return MlflowClient


def _finish_open_runs() -> None:
    for logger in list(_OPEN_RUNS):
        logger.finalize("success")


def _finish_open_runs_at_exit() -> None:
    """Register `_finish_open_runs` at exit, once, after MLflow is imported: exit hooks run newest first, so
    it runs before MLflow's own (which ends only the runs of its fluent API, ``mlflow.start_run``)."""
    global _exit_hook_registered
    if not _exit_hook_registered:
        atexit.register(_finish_open_runs)
        _exit_hook_registered = True


@contextlib.contextmanager
def _quiet_store_start():
    """While MLflow opens its store and the run: deprecation warnings raised from MLflow's or SQLAlchemy's
    own modules are ignored, MLflow's INFO lines about creating the store's tables are left out (where
    the user has set no level on their logger), and so is its file store's warning about a folder of the
    store that is not its own (`_NoExperimentOfTheStore`).

    SQLAlchemy 2.1 deprecates the ``noload`` loader strategy that MLflow's store models use (mlflow-skinny
    3.17), and warns as MLflow imports its store: under ``python -W error::DeprecationWarning`` that warning
    was an error, which disabled the logger. The user's own code warns as before."""
    creation_log = logging.getLogger(_STORE_CREATION_LOG)
    level = creation_log.level
    # MLflow's file store warns with `logging.warning`, whose `basicConfig` gives a root logger without
    # handlers one: the user's own `logging.basicConfig(...)` after `fit` then did nothing. Taken back after.
    root = logging.getLogger()
    root_had_handlers = bool(root.handlers)
    not_experiments = _NoExperimentOfTheStore()
    # (Hidden while the store starts alone, beside a sweep's other threads: `ignoring_warnings`.)
    with ignoring_warnings(category=DeprecationWarning, module=_STORE_MODULES):
        if level == logging.NOTSET:
            creation_log.setLevel(logging.WARNING)
        root.addFilter(not_experiments)
        try:
            yield
        finally:
            creation_log.setLevel(level)
            root.removeFilter(not_experiments)
            for handler in [] if root_had_handlers else list(root.handlers):
                root.removeHandler(handler)


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


def _mlflow_key(name: str, limit: int | None = _MAX_KEY) -> str:
    """The key MLflow stores `name` under: the same for the same name, and one MLflow accepts.

    MLflow accepts alphanumerics, ``_ - . /`` and spaces in keys (anything else would make the call fail),
    refuses keys that are not normalised paths (``a//b``, ``/a``, ``a/``, ``./a``) and keys over 250
    characters: a longer one keeps its first 241 characters, then ``-`` and 8 hex digits of its hash.
    """
    key = re.sub(r"[^\w\-./ ]", "_", name)
    key = "/".join("_" if part in (".", "..") else part for part in key.split("/") if part) or "_"
    if limit is not None and len(key) > limit:
        key = f"{key[: limit - 9]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return key


def resolve_tracking_uri(uri: str | None) -> str:
    """The MLflow tracking URI that a setting means, with local paths made absolute (the run then does not
    depend on the working folder, and the URI can be pasted into ``mlflow ui --backend-store-uri``).

    - None: ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db`` in the working folder (MLflow's default).
    - A plain path: a SQLite store if it ends in ``.db``, ``.sqlite`` or ``.sqlite3``, else a folder that
      holds one (``<path>/mlflow.db``).
    - ``sqlite:`` and ``file:`` URIs: the same store, its path made absolute.
    - Anything else (``http(s)://``, ``databricks``, ``postgresql://``, ...): unchanged, for MLflow to reach.
      (``databricks``, ``databricks-uc`` and ``uc`` are store names, not folders.)
    """
    if uri is None or not str(uri).strip():
        uri = os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    uri = str(uri).strip()
    scheme = urlparse(uri).scheme
    if uri in _MLFLOW_NAMED_STORES:
        return uri
    if scheme == "" or (len(scheme) == 1 and os.name == "nt"):  # a path (or a Windows drive letter)
        path = Path(uri).expanduser().resolve()
        if path.suffix not in (".db", ".sqlite", ".sqlite3"):
            path = path / "mlflow.db"
        return f"sqlite:///{path}"
    if scheme == "sqlite":
        database = uri[len("sqlite:///") :] if uri.startswith("sqlite:///") else ""
        if database and database != ":memory:" and not os.path.isabs(database):
            return f"sqlite:///{Path(database).resolve()}"
        return uri
    if scheme == "file":
        return Path(unquote(urlparse(uri).path)).resolve().as_uri()
    return uri


# The tracking URI schemes MLflow's own stores take (its tracking store registry's, database drivers as
# `postgresql+psycopg2` too); a plugin package adds its own through the `mlflow.tracking_store` entry points.
_MLFLOW_SCHEMES = (
    "",
    "file",
    "sqlite",
    "http",
    "https",
    "postgresql",
    "mysql",
    "mssql",
    *_MLFLOW_NAMED_STORES,
)


def _check_scheme(uri: str, given: str | None) -> None:
    """A URI of a scheme no MLflow store takes (a typo, `sqlte:///x.db`) is refused here: the fit had
    started with the logger disabled by MLflow's "Model registry functionality is unavailable; got unsupported
    URI"."""
    scheme = urlparse(uri).scheme.lower()
    if scheme.split("+")[0] in _MLFLOW_SCHEMES:
        return
    import importlib.metadata

    if scheme in {entry.name for entry in importlib.metadata.entry_points(group="mlflow.tracking_store")}:
        return
    raise ValueError(
        f"MLflowLogger(tracking_uri={uri!r}"
        + ("" if given else ", from $MLFLOW_TRACKING_URI")
        + f"): MLflow has no store for the scheme {scheme!r}; give a server (http://host:5000), "
        "sqlite:///PATH.db, file:PATH, a folder or a .db path, or a database URI (postgresql://, mysql://, "
        "mssql://)"
    )


def _local_path(uri: str) -> Path | None:
    """The file or folder a ``sqlite:///`` or ``file:`` URI (or a bare path) names; None for any other."""
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///") :])
    if uri.startswith("file:"):
        return Path(unquote(urlparse(uri).path))
    if uri.startswith("/"):
        return Path(uri)
    return None


def _require_mlflow() -> Any:
    # The extra first: mlflow-skinny alone lacks what the default local store needs (sqlalchemy, alembic).
    return _require(
        "mlflow",
        "mlflow-skinny",
        "MLflowLogger",
        "pip install 'audiotrain[loggers]' (or pip install mlflow-skinny sqlalchemy alembic)",
    )


def _require_database_packages(uri: str) -> None:
    missing = [name for name in ("sqlalchemy", "alembic") if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(
            f"MLflowLogger: the local store {uri} needs {' and '.join(missing)}, which mlflow-skinny does not "
            f"install: pip install 'audiotrain[loggers]' (or pip install {' '.join(missing)}), or give "
            "tracking_uri the address of an MLflow server (http://host:5000)"
        )
