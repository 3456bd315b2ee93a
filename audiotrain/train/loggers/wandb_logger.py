"""`WandbLogger`: log to Weights & Biases."""

from __future__ import annotations

import atexit
import inspect
import math
import os
import re
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from audiotrain._arguments import folder_argument
from audiotrain._caller import user_stacklevel
from audiotrain.train.loggers._shared import (
    LIGHTNING_PREFIX,
    _require,
    numpy_if_mlx,
    refuse_lightning_only,
)
from audiotrain.train.loggers.base import (
    Logger,
    LoggerWarning,
    _on_rank_zero,
    check_log_model,
    flatten_params,
    params_mapping,
)
from audiotrain.train.loggers.run_folder import RunFolder, run_folder

import numpy as np

# Loggers whose run stays open after a successful stage, for the next stage (test after fit) to log to.
# Held strongly until their run is finished: a logger collected with its run open (a sweep rebinding its
# `logger` name) would leave that run as `wandb.run`, which the next logger's wandb.init hands back.
_OPEN_RUNS: set[WandbLogger] = set()
_exit_hook_registered = False

# Lightning's WandbLogger arguments that wandb.init does not take (see `refuse_lightning_only`).
_LIGHTNING_ONLY: dict[str, tuple[tuple, str]] = {
    "prefix": LIGHTNING_PREFIX,
    "version": ((None,), "Lightning's version is the W&B run id: pass id=..."),
    "checkpoint_name": (
        (None,),
        "log_model uploads checkpoints as the artifact model-<run id>; store one under a name of your own "
        "with logger.log_artifact(path, name, artifact_type='model')",
    ),
    "experiment": (
        (None,),
        "start the run with wandb.init(...) before fit: the logger logs to the active run (and says so)",
    ),
}


def _finish_open_runs() -> None:
    for logger in list(_OPEN_RUNS):
        logger.finish()


def _finish_open_runs_before_wandb_exits() -> None:
    """Register `_finish_open_runs` at exit, once, after ``wandb.init`` has registered wandb's own hook.

    Exit hooks run newest first: registered at import, ours ran after wandb had shut its service down, and
    every run left open ended in "Connection lost".
    """
    global _exit_hook_registered
    if not _exit_hook_registered:
        atexit.register(_finish_open_runs)
        _exit_hook_registered = True


class WandbLogger(Logger):
    """Log to Weights & Biases (``wandb``).

    Metrics are logged against the trainer's step as ``trainer/global_step`` (W&B's own step must grow
    monotonically, which a resumed run would break). Set ``WANDB_MODE=offline`` or ``offline=True`` to
    write the run locally (``wandb sync`` uploads it later).

    One logger is one run across stages: as in Lightning, a stage that ends successfully (``fit``) leaves
    the run open, so ``test()`` afterwards logs to the same run (W&B cannot reopen a finished offline run in
    the same folder). The run is finished by `finish` (or ``wandb.finish()``), when another WandbLogger
    starts its run, or when Python exits; a failed or interrupted stage finishes it at once, with that
    exit status. So each logger of a sweep gets its own run. A run of your own ``wandb.init`` still active
    when the logger starts is the one wandb.init returns: the logger logs to it, and warns, except in a W&B
    sweep agent's run (``wandb.agent``), which a trial's logger is meant to log to.

    Resuming (``load_state_dict``) continues the same run id, except with ``resume="never"`` (passed to
    ``wandb.init``), which starts a new run and warns. W&B cannot delete points: resumed from a
    checkpoint older than the run's last step, the steps after it are logged again. Offline, the resumed
    part is a second ``offline-run-*`` folder of the same run id, whose history (``_step`` from 0 again)
    repeats those ``trainer/global_step`` values, as with Lightning's WandbLogger; `offline_dirs` lists the
    run's folders, oldest first, and ``wandb sync --id <run id> <folders>`` uploads them as one run, in order.

    Parameters
    ----------
    project, name : str, optional
        W&B project and run name.
    config : dict, argparse.Namespace or dataclass instance, optional
        Hyperparameters recorded at start (flattened as `log_hyperparams` flattens them).
    save_dir : str or Path, optional
        Folder for W&B's local files (``<save_dir>/wandb/...``); default W&B's (``./wandb``).
    offline : bool
        Do not sync to the server.
    log_model : False, True or "all"
        Upload checkpoints as the artifact ``model-<run id>`` (type "model", aliases "latest" and, for the
        best one, "best"): True the best (or last) one when fit ends, "all" each as it is saved.
    **kwargs
        Passed to ``wandb.init`` (``entity``, ``tags``, ``group``, ``settings``, ...). A name ``wandb.init``
        does not take is an error here, not a run that goes unlogged; Lightning's ``prefix``, ``version``
        (``id`` here), ``checkpoint_name`` and ``experiment`` say what to use instead.
    """

    stores_artifacts = True
    stores_audio = True
    media_calls = "images, audio and tables go to logger.log_image(key, [images]), log_audio or log_table"

    def __init__(
        self,
        project: str | None = None,
        name: str | None = None,
        config: Any = None,  # a dict, an argparse.Namespace or a dataclass instance
        save_dir: str | os.PathLike | None = None,
        offline: bool = False,
        log_model: bool | str = False,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        # A dependency of audiotrain (not of the [loggers] extra): missing only where it was uninstalled.
        self._wandb = _require_wandb()
        self.project = project
        self._name = name
        self.config = dict(params_mapping(config, "WandbLogger(config=...)")) if config is not None else None
        self._save_dir = (
            folder_argument(save_dir, "WandbLogger", "save_dir") if save_dir is not None else None
        )
        self.offline = offline
        self.log_model = check_log_model(log_model, "WandbLogger")
        self.kwargs = self._init_kwargs(kwargs)
        self._run: Any = None
        self._run_id: str | None = self.kwargs.pop("id", None)
        # The run's name and folder, remembered at start: they stay readable after finalize drops the run.
        self._run_name: str | None = None
        self._run_dir: Path | None = None

    def _init_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``kwargs`` for ``wandb.init``, checked now: at start, a wrong name would be a TypeError that
        disables the logger for the whole run, like a network failure (`Logger._call`)."""
        try:
            init_params = inspect.signature(self._wandb.init).parameters
        except (TypeError, ValueError):  # not introspectable: wandb.init alone can say
            init_params = {}
        takes_any = not init_params or any(p.kind is p.VAR_KEYWORD for p in init_params.values())
        refused = {
            k: v for k, v in kwargs.items() if k in _LIGHTNING_ONLY or not (takes_any or k in init_params)
        }
        own = [p for p in inspect.signature(WandbLogger.__init__).parameters if p not in ("self", "kwargs")]
        refuse_lightning_only("WandbLogger", refused, [*own, *init_params], _LIGHTNING_ONLY)
        return {k: v for k, v in kwargs.items() if k not in refused}  # (Lightning's defaults, dropped)

    @property
    def name(self) -> str | None:
        if self._run is not None:
            return self._run.name  # live: the user may rename the run while it is open
        return self._run_name if self._run_name is not None else self._name

    @property
    def version(self) -> str | None:
        return self._run_id

    @property
    def save_dir(self) -> RunFolder | None:
        return run_folder(self._save_dir)

    @property
    def log_dir(self) -> RunFolder | None:
        return run_folder(self._run_dir)

    @property
    def offline_dirs(self) -> list[Path]:
        """The run's offline folders, oldest first: ``log_dir`` and, after a resume, those of the earlier
        parts (``offline-run-<time>-<id>`` beside it). Empty for an online run or one not started."""
        if self._run_dir is None or not self._run_dir.name.startswith("offline-run-"):
            return []
        parts = set(self._run_dir.parent.glob(f"offline-run-*-{self.version}")) | {self._run_dir}
        return sorted(parts, key=lambda p: p.name)  # (named by their start time: in the order they ran)

    def _start(self) -> None:
        if self._run is not None and not getattr(self._run, "_is_finished", False):
            # Left open by the last stage: go on in it. It stays among the open runs, for the next logger to
            # finish: reopened by a score logged after `fit` (no stage's finalize follows), it would otherwise
            # stay `wandb.run`, which the next trial's wandb.init hands back.
            return
        _OPEN_RUNS.discard(self)
        for other in list(_OPEN_RUNS):  # else wandb.init would hand back that run
            other.finish()
        kwargs: dict[str, Any] = dict(project=self.project, name=self._name, **self.kwargs)
        if self.config is not None:
            kwargs["config"] = flatten_params(self.config)
        if self._save_dir is not None:
            self._save_dir.mkdir(parents=True, exist_ok=True)
            kwargs["dir"] = str(self._save_dir)
        if self.offline:
            kwargs["mode"] = "offline"
        if self._run_id is not None:
            kwargs["id"] = self._run_id
            kwargs.setdefault("resume", "allow")  # (the one given wins, as in Lightning's WandbLogger)
        # Still active here: the user's own wandb.init, or a logger of ours that was never finalized.
        active = getattr(self._wandb, "run", None)
        run = self._wandb.init(**kwargs)
        # A W&B sweep agent's trial (`wandb.agent` calls a function that starts with wandb.init) is such a
        # run, on purpose: logging into it is the sweep's way, and a warning every trial that tells the user
        # to finish it would break the sweep.
        if active is not None and run is active and not getattr(run, "sweep_id", None):
            warnings.warn(
                f"WandbLogger: W&B run {run.id!r} ({run.name}) was already active, so wandb.init returned it "
                "and this logger logs to it, without its own name or config; call wandb.finish() first for a "
                "new run.",
                LoggerWarning,
                stacklevel=user_stacklevel(),
            )
        _finish_open_runs_before_wandb_exits()
        run.define_metric("trainer/global_step")
        run.define_metric("*", step_metric="trainer/global_step", step_sync=True)
        self._run, self._run_id = run, run.id
        self._run_name, self._run_dir = run.name, Path(run.dir).parent  # run.dir is the run's files/ folder

    def _experiment(self) -> Any:
        return self._run

    _process_bound = ("_wandb", "_run")

    def _reattach(self) -> None:
        self._wandb = _require_wandb()
        self._run = None

    def _log_hyperparams(self, params: dict[str, Any]) -> None:
        self._run.config.update(params, allow_val_change=True)

    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self._run.log({**metrics, "trainer/global_step": step})

    def _finalize(self, status: str) -> None:
        if status == "success":
            _OPEN_RUNS.add(self)  # kept open for the next stage (class docstring)
            return
        self._finish(status)

    def finish(self) -> None:
        """Finish the run now, rather than when another WandbLogger starts or Python exits."""
        if self._run is not None and getattr(self._run, "_is_finished", False):  # by wandb.finish()
            _OPEN_RUNS.discard(self)
            self._run = None
        if self._run is not None:
            self._call("finish", self._finish, "success")
        self._started = False

    def _finish(self, status: str) -> None:
        _OPEN_RUNS.discard(self)
        run, self._run = self._run, None
        run.finish(exit_code={"success": 0, "failed": 1, "interrupted": 130}[status])

    def _log_artifact(self, path: Path, name: str, artifact_type: str) -> None:
        self._upload(path, name, artifact_type)

    def _log_checkpoint(self, path: Path, best: bool, checkpoint_callback: Any) -> None:
        score = checkpoint_callback.best_k_models.get(str(path))
        # A plain float: W&B stores a float subclass (the Trainer's MetricValue) as its str, "0.67", which
        # sorts and filters as text. The keys are Lightning's WandbLogger's, with the callback's settings.
        settings = ["monitor", "mode", "save_last", "save_top_k", "save_weights_only", "every_n_train_steps"]
        # A score that is not finite (a diverged run's NaN) as its text, "nan": W&B refuses the artifact's
        # metadata otherwise ("Out of range float values are not JSON compliant"), and the save is not uploaded.
        value = None if score is None else float(score)
        metadata = {
            "score": value if value is None or math.isfinite(value) else str(value),
            "original_filename": path.name,
            "path": path.name,
            "monitor": checkpoint_callback.monitor,
            type(checkpoint_callback).__name__: {
                k: getattr(checkpoint_callback, k) for k in settings if hasattr(checkpoint_callback, k)
            },
        }
        aliases = ["latest", "best"] if best else ["latest"]
        self._upload(path, f"model-{self._run_id}", "model", aliases=aliases, metadata=metadata)

    def _upload(self, path: Path, name: str, artifact_type: str, **log_kwargs: Any) -> None:
        metadata = log_kwargs.pop("metadata", None)
        # W&B artifact names allow letters, digits, '-', '_' and '.'.
        artifact = self._wandb.Artifact(re.sub(r"[^\w\-.]", "-", name), type=artifact_type, metadata=metadata)
        if path.is_dir():
            artifact.add_dir(str(path))
        else:
            artifact.add_file(str(path), name=path.name)
        self._run.log_artifact(artifact, **log_kwargs)

    def watch(
        self, model: Any, log: str | None = "gradients", log_freq: int = 100, log_graph: bool = True
    ) -> None:
        """Lightning's ``WandbLogger.watch``: ``wandb.watch`` on the run, which records a PyTorch module's
        gradients and parameters through torch hooks. An MLX model has no such hooks, so it is refused with
        what to use instead (it was a bare "AttributeError: 'WandbLogger' object has no attribute 'watch'");
        a ``torch.nn.Module`` (one used beside the MLX model) is watched as in Lightning."""
        torch = sys.modules.get("torch")
        if torch is None or not isinstance(model, torch.nn.Module):
            raise TypeError(
                f"WandbLogger.watch: W&B watches PyTorch modules only (through torch hooks), got "
                f"{type(model).__name__}. For an MLX model, Trainer(track_grad_norm=True) logs the "
                "gradients' L2 norm as grad_norm, and self.log(...) in a step or logger.log_metrics(...) in"
                " a callback logs what you compute from the parameters."
            )
        self.experiment.watch(model, log=log, log_freq=log_freq, log_graph=log_graph)

    def use_artifact(self, artifact: str, artifact_type: str | None = None) -> Any:
        """Lightning's: mark ``artifact`` (``"model-<run id>:best"``, ``"entity/project/name:v3"``) as used by
        this run and return W&B's ``Artifact`` (``.download()`` fetches its files). W&B refuses it offline."""
        return self.experiment.use_artifact(artifact, type=artifact_type)

    @staticmethod
    def download_artifact(
        artifact: str,
        save_dir: str | os.PathLike | None = None,
        artifact_type: str | None = None,
        use_artifact: bool | None = True,
    ) -> str | None:
        """Lightning's: download ``artifact`` to ``save_dir`` (W&B's default folder if None) and return its
        folder, through the active run (recorded as used by it, unless ``use_artifact=False``) or, without
        one, W&B's public API. As in Lightning, on rank 0 only (None elsewhere)."""
        if not _on_rank_zero():
            return None
        wandb = _require_wandb()
        if wandb.run is not None and use_artifact:
            found = wandb.run.use_artifact(artifact)
        else:
            found = wandb.Api().artifact(artifact, type=artifact_type)
        return found.download(root=None if save_dir is None else os.fspath(save_dir))

    # -- media: Lightning's WandbLogger.log_image / log_audio / log_video / log_table / log_text -----------
    def log_image(self, key: str, images: list[Any], step: int | None = None, **kwargs: Any) -> None:
        """Log images (numpy or MLX arrays, PIL images, file paths) under ``key`` at ``step`` (default:
        that of the metrics logged last), as Lightning's: each keyword is a list, one value per image,
        passed to ``wandb.Image`` (``caption=[...]``, ``masks=[...]``)."""
        self._log_media("log_image", "Image", "images", key, images, step, kwargs)

    def log_audio(self, key: str, audios: list[Any], step: int | None = None, **kwargs: Any) -> None:
        """Log audio clips (numpy or MLX arrays, file paths) as `log_image` does images, through
        ``wandb.Audio`` (``sample_rate=[16000, ...]`` is needed for arrays, ``caption=[...]``)."""
        self._log_media("log_audio", "Audio", "audios", key, audios, step, kwargs)

    def log_video(self, key: str, videos: list[Any], step: int | None = None, **kwargs: Any) -> None:
        """Log videos (arrays, file paths) as `log_image` does images, through ``wandb.Video``
        (``fps=[...]``)."""
        self._log_media("log_video", "Video", "videos", key, videos, step, kwargs)

    def log_table(
        self,
        key: str,
        columns: list[str] | None = None,
        data: list[list[Any]] | None = None,
        dataframe: Any = None,
        step: int | None = None,
    ) -> None:
        """Log a ``wandb.Table`` from ``columns`` and rows ``data`` (MLX scalars and arrays are taken) or a
        pandas ``dataframe``, at ``step`` as `log_image`."""
        if not _on_rank_zero() or self._disabled:  # (nothing made that would be dropped)
            return
        rows = None if data is None else [[_as_numpy(cell) for cell in row] for row in data]
        table = self._wandb.Table(columns=columns, data=rows, dataframe=dataframe)
        self._log_objects("log_table", {key: table}, step)

    def log_text(
        self,
        key: str,
        columns: list[str] | None = None,
        data: list[list[str]] | None = None,
        dataframe: Any = None,
        step: int | None = None,
    ) -> None:
        """Log text as a table (Lightning's: the same as `log_table`)."""
        self.log_table(key, columns, data, dataframe, step)

    def _log_media(
        self, op: str, kind: str, what: str, key: str, items: Any, step: int | None, kwargs: dict[str, Any]
    ) -> None:
        # Checked on every rank, so that a wrong call fails in a one-process try-out as under data parallel.
        if not isinstance(items, list):
            raise TypeError(f"WandbLogger.{op}: {what} must be a list, got {type(items).__name__}")
        for name, values in kwargs.items():
            if not isinstance(values, list) or len(values) != len(items):
                got = f"{len(values)} values" if isinstance(values, list) else type(values).__name__
                raise ValueError(
                    f"WandbLogger.{op}: {name} needs one value per item, a list of {len(items)} (as many as "
                    f"{what}); got {got}"
                )
        if not _on_rank_zero() or self._disabled:  # (a disabled logger's media were made, then dropped)
            return
        make = getattr(self._wandb, kind)
        media = [
            make(_as_numpy(item), **{k: v[i] for k, v in kwargs.items()}) for i, item in enumerate(items)
        ]
        self._log_objects(op, {key: media}, step)

    def _log_objects(self, op: str, objects: dict[str, Any], step: int | None) -> None:
        self._call(op, self._log_metrics, objects, self._step_or_latest(step, op))

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self._run_id, "project": self.project, "name": self.name}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if self._run is None and state.get("run_id") and self.kwargs.get("resume") == "never":
            # W&B's "never" refuses an id that exists, so passing the checkpoint's left the resumed fit
            # unlogged; the user asked for a new run (Lightning's WandbLogger, with no run in the
            # checkpoint, starts one).
            warnings.warn(
                f"WandbLogger(resume='never'): the checkpoint's W&B run is {state['run_id']!r}; the resumed "
                "fit logs to a new run instead (leave resume out, or pass resume='allow', to continue it).",
                LoggerWarning,
                stacklevel=user_stacklevel(),
            )
        elif self._run is None and state.get("run_id"):
            self._warn_given_not_used("id", self._run_id, state["run_id"])
            self._run_id = str(state["run_id"])
        elif self._run is not None:
            self._warn_not_resumed("id", self._run_id, state.get("run_id"))


def _require_wandb() -> Any:
    return _require("wandb", "wandb", "WandbLogger", "pip install wandb")


def _as_numpy(value: Any) -> Any:
    """An MLX array as numpy (a scalar as a Python number), which W&B's media and tables take; else as is."""
    value = numpy_if_mlx(value)
    return value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value
