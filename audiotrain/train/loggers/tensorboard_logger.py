"""`TensorBoardLogger`: TensorBoard event files (through tensorboardX, or torch's SummaryWriter)."""

from __future__ import annotations

import importlib
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from audiotrain.train.loggers._shared import _VersionedFolder
from audiotrain.train.loggers.base import Logger


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
