"""`MLflowLogger`: log to an MLflow tracking server or local file store."""

from __future__ import annotations

import contextlib
import os
import re
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from audiotrain.train.loggers._shared import _require
from audiotrain.train.loggers.base import Logger, LoggerWarning

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
