"""`CSVLogger`: ``metrics.csv`` and ``hparams.yaml`` in a ``version_<k>`` folder, no backend needed."""

from __future__ import annotations

import csv
import io
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from audiotrain._arguments import folder_argument
from audiotrain._caller import user_stacklevel
from audiotrain.train.loggers._shared import LIGHTNING_PREFIX, _VersionedFolder, refuse_lightning_only
from audiotrain.train.loggers.base import Logger, LoggerWarning


class CSVLogger(_VersionedFolder, Logger):
    """Write ``metrics.csv`` and ``hparams.yaml`` to ``<save_dir>/<name>/version_<k>``.

    ``metrics.csv`` has a ``step`` column and one column per metric name; when a new name appears the
    file is rewritten with the new column (earlier rows get empty cells). Metrics logged at the same step
    (the learning rate, the training metrics, the validation metrics) share one row: the last row is
    rewritten in place as they arrive, so the file is always complete. A metric logged twice at one step
    starts a new row rather than overwrite the first value. A resumed run appends to the same file after
    dropping what was logged after the checkpoint: later rows, and the values its last row got after it
    was saved (a batch-end checkpoint comes before that step's validation and epoch end), which the resumed
    run logs again. The file as it was is kept beside it (``metrics.before-resume-<k>.csv``) and a warning
    says so, unless the resumed run logs every dropped row again, unchanged: then nothing was lost and the
    copy is removed. ``test()`` after ``fit()`` appends to the same file. A fresh fit refuses a
    ``version`` folder that already holds another run's files (`refuse_an_earlier_run`).

    Lightning's ``flush_logs_every_n_steps`` is accepted (a positive int): every row is on disk as soon as
    it is logged, which is what any value asks for at most. Its ``prefix`` is refused with what to use.
    ``log_dir=`` names ``save_dir`` as `TensorBoardLogger`'s does (seed 000's keyword), so one logger
    swaps for the other; the ``log_dir`` property is the run's own folder.
    """

    media_calls = "metrics.csv holds numbers only: log images and figures to TensorBoard, W&B or MLflow"

    def __init__(
        self,
        save_dir: str | os.PathLike | None = None,
        name: str | None = "default",
        version: int | str | None = None,
        *,
        flush_logs_every_n_steps: int = 100,
        log_dir: str | os.PathLike | None = None,
        **lightning_args: Any,
    ):
        super().__init__()
        known = ["save_dir", "name", "version", "flush_logs_every_n_steps", "log_dir"]
        refuse_lightning_only("CSVLogger", lightning_args, known, {"prefix": LIGHTNING_PREFIX})
        if save_dir is not None and log_dir is not None:
            raise TypeError("CSVLogger: give save_dir or log_dir (the same folder), not both")
        if save_dir is None and log_dir is None:
            raise TypeError(
                "CSVLogger(save_dir=None): expected a path, its folder (or log_dir=, as TensorBoardLogger)"
            )
        n = flush_logs_every_n_steps
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"CSVLogger(flush_logs_every_n_steps={n!r}): expected a positive int")
        self._root = (
            folder_argument(save_dir, "CSVLogger", "save_dir")
            if save_dir is not None
            else folder_argument(log_dir, "CSVLogger", "log_dir")
        )
        self._name = name or ""
        self._version = version
        self._given_version = version  # (`_version` is also the one claimed at start, or the checkpoint's)
        self._columns: list[str] = []
        self._last_step: int | None = None
        self._rows = 0  # rows in the file
        self._resume_step: int | None = None
        self._resume_rows: int | None = None  # the checkpoint's rows ...
        self._resume_keys: set[str] | None = None  # ... and what its last one held then
        self._last_row: dict[str, Any] | None = None  # the file's last row, while more may join it
        self._last_row_offset = 0  # where that row starts in the file (bytes)
        self._set_aside_run: _SetAside | None = None  # what a resume dropped, until it comes back or not
        self._resumed = False
        self._hparams = {}

    @property
    def metrics_file(self) -> Path:
        return self.log_dir / "metrics.csv"

    def _start(self) -> None:
        self._claim_log_dir()
        self._columns = ["step"]
        self._last_row, self._rows = None, 0
        if self._resumed:
            self._reload_hparams()
        if self.metrics_file.exists():
            header, rows = self._read()
            before = [dict(row) for row in rows]
            if self._resume_rows is not None:
                rows = rows[: self._resume_rows]
                if rows:  # without what it got after the checkpoint
                    rows[-1] = {k: v if k in self._resume_keys else "" for k, v in rows[-1].items()}
            elif self._resume_step is not None:  # (a checkpoint that did not record its rows)
                rows = [r for r in rows if r.get("step") and int(r["step"]) <= self._resume_step]
            self._columns = header or ["step"]
            if rows != before:
                self._set_aside_run = _SetAside(self, before, len(before) - len(rows))
                self._set_aside_run.logged(_filled(rows[-1]) if rows else None, len(rows), new_row=False)
            self._rewrite(rows)
            self._rows = len(rows)
            if rows and self._resume_step is not None and int(rows[-1]["step"]) == self._resume_step:
                # The checkpoint's step gets more metrics after resuming (its validation and epoch end
                # after a batch-end checkpoint, a validation a Ctrl-C cut short): they join its row, as
                # they would have without the stop.
                self._last_row = {k: v for k, v in rows[-1].items() if v not in ("", None)}
                self._last_row["step"] = self._resume_step
        # Once: a later stage (test after a resumed fit) reopening the file must not drop the fit's rows.
        self._resume_step = self._resume_rows = self._resume_keys = None

    def _read(self) -> tuple[list[str], list[dict[str, str]]]:
        with self.metrics_file.open(newline="", encoding="utf-8") as f:  # (as `_csv_text` writes it)
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
        return buf.getvalue().encode("utf-8")  # whatever the locale: `_read` reads it back so

    def _experiment(self) -> _CSVExperiment:
        return _CSVExperiment(self)

    def _log_hyperparams(self, params: dict[str, Any]) -> None:
        self._merge_hparams(params)

    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        row = {"step": step, **{k: _csv_number(v) for k, v in metrics.items()}}
        last = self._last_row
        # (An "epoch" both carry is the same epoch, not a value logged twice: the validation's and the
        # epoch end's rows of one step share a row with it.)
        shared = (last.keys() & metrics.keys()) if last is not None else set()
        same_epoch = shared == {"epoch"} and last is not None and last["epoch"] == row["epoch"]
        merge = last is not None and last["step"] == step and (not shared or same_epoch)
        if merge:
            row = {**last, **row}
        new = [k for k in metrics if k not in self._columns]
        if new or not self.metrics_file.exists():
            rows = self._read()[1] if self.metrics_file.exists() else []
            self._columns += new
            rows = [*(rows[:-1] if merge else rows), row]
            self._rewrite(rows)
            self._rows = len(rows)
        else:
            text = self._csv_text([row])
            with self.metrics_file.open("r+b") as f:
                # Merging replaces the last row: cut the file where it starts and write the merged one.
                offset = self._last_row_offset if merge else f.seek(0, os.SEEK_END)
                f.truncate(offset)
                f.seek(offset)
                f.write(text)
            self._last_row_offset = offset
            self._rows += 0 if merge else 1
        self._last_row = row
        self._last_step = step
        if self._set_aside_run is not None:
            self._set_aside_run.logged(_filled(row), self._rows, new_row=not merge)

    def _finalize(self, status: str) -> None:
        if self._set_aside_run is not None:
            self._set_aside_run.ended()

    def state_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "step": self._last_step,
            "rows": self._rows,
            "last_row": sorted(self._last_row or {}),  # its columns so far
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if not self._started:
            self._warn_given_not_used("version", self._given_version, state.get("version"))
            self._version = state.get("version", self._version)
            step = state.get("step")
            self._resume_step = None if step is None else int(step)
            if "rows" in state:
                self._resume_rows = int(state["rows"])
                self._resume_keys = set(state.get("last_row", ())) | {"step"}
            self._resumed = True
        else:
            self._warn_not_resumed("version", self.version, state.get("version"))


class _CSVExperiment:
    """`CSVLogger.experiment`, as Lightning's ExperimentWriter: `log_hparams`, `log_metrics` and `save` go
    through the logger (a hook written for Lightning calls them); any other method, a TensorBoard habit like
    ``add_image``, is an error saying where media go (it was ``'NoneType' object has no attribute``)."""

    def __init__(self, logger: CSVLogger) -> None:
        self._logger = logger

    NAME_HPARAMS_FILE = "hparams.yaml"
    NAME_METRICS_FILE = "metrics.csv"

    @property
    def log_dir(self) -> Path:
        return self._logger.log_dir

    @property
    def metrics_file_path(self) -> str:
        """The run's metrics.csv, a str as Lightning's
        (``pd.read_csv(logger.experiment.metrics_file_path)``)."""
        return str(self._logger.metrics_file)

    def log_hparams(self, params: dict[str, Any]) -> None:
        self._logger.log_hyperparams(params)

    def log_metrics(self, metrics_dict: dict[str, Any], step: int | None = None) -> None:
        self._logger.log_metrics(metrics_dict, step)

    def save(self) -> None:
        self._logger.flush()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise AttributeError(
            f"CSVLogger.experiment has no {name!r}: {CSVLogger.media_calls}; it takes log_hparams, "
            "log_metrics and save, as Lightning's"
        )


class _SetAside:
    """What a resume dropped from ``metrics.csv`` (the stopped run's rows past its checkpoint, or a `test()`
    run after it), kept on disk as ``metrics.before-resume-<k>.csv`` at once, so that a crash loses nothing.
    The resumed run usually logs the same rows again (a checkpoint at an epoch's last batch reruns that
    step's validation; a deterministic rerun gives the same values): when every dropped row comes back
    unchanged, nothing was lost and the copy goes. The first row that differs, or the end of the run short
    of them, warns and keeps it."""

    def __init__(self, logger: CSVLogger, before: list[dict[str, str]], dropped: int) -> None:
        self._logger, self._dropped = logger, dropped
        self._before = [_filled(r) for r in before]
        self._last: dict[str, str] | None = None  # the file's last row, which more values may still join
        self._rows = 0
        k = 1
        while (kept := logger.metrics_file.with_name(f"metrics.before-resume-{k}.csv")).exists():
            k += 1
        tmp = kept.with_suffix(".csv.tmp")
        tmp.write_bytes(logger._csv_text(before, header=True))
        os.replace(tmp, kept)
        self.kept = kept

    def logged(self, row: dict[str, str] | None, rows: int, new_row: bool) -> None:
        """The file now has ``rows`` rows, the last one ``row`` (a new row, or one that values joined)."""
        if new_row and self._last is not None and not self._matches(self._rows - 1, complete=True):
            return self._lost()
        if new_row and self._rows == len(self._before):  # all of them came back as they were
            return self._done()
        self._last, self._rows = row, rows
        if row is not None and not self._matches(rows - 1, complete=False):
            self._lost()

    def ended(self) -> None:
        """The resumed run ends (or stops): rows it did not log again are lost from the file."""
        if self._rows == len(self._before) and self._matches(self._rows - 1, complete=True):
            self._done()
        else:
            self._lost()

    def _matches(self, i: int, complete: bool) -> bool:
        if i >= len(self._before):
            return False
        last, before = self._last or {}, self._before[i]
        return last == before if complete else all(before.get(k) == v for k, v in last.items())

    def _done(self) -> None:
        self._logger._set_aside_run = None
        self.kept.unlink(missing_ok=True)

    def _lost(self) -> None:
        self._logger._set_aside_run = None
        warnings.warn(
            f"CSVLogger: the resumed run goes on from its checkpoint's step, so {self._dropped} row(s) logged "
            f"after it (and values its last row got later) leave {self._logger.metrics_file}, and it did not "
            f"log them again unchanged; the file as it was is kept as {self.kept.name}",
            LoggerWarning,
            stacklevel=user_stacklevel(),  # (the user's fit(ckpt_path=...))
        )


def _filled(row: Mapping[str, Any]) -> dict[str, str]:
    """A row's non-empty cells, as text (as the file holds them)."""
    return {k: str(v) for k, v in row.items() if v not in ("", None)}


def _csv_number(value: float | int) -> str:
    return repr(value) if math.isfinite(value) else str(value)
