"""`LoggerConfig` (which experiment loggers a run writes to, and their settings) and `build_loggers`, which
makes them for a run folder: what the recipes' ``--logger`` flag and ``logger:`` config section fill;
`log_artifacts` sends a run's outputs (plots, an exported model) to them after `fit`.

Where each logger writes, for a run folder ``RUN``:

- ``tensorboard``: ``RUN/tensorboard/version_<k>`` (``tensorboard --logdir RUN``)
- ``csv``: ``RUN/csv/version_<k>/metrics.csv`` and ``hparams.yaml``
- ``wandb``: W&B's server, or with ``offline`` (or ``WANDB_MODE=offline``) ``RUN/wandb/offline-run-*``
- ``mlflow``: ``tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else the SQLite store ``RUN/mlflow.db`` with its
  artifacts in ``RUN/mlruns`` (``mlflow ui --backend-store-uri sqlite:///RUN/mlflow.db``)
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audiotrain._arguments import resolved_path
from audiotrain.train.loggers.base import Logger

#: The loggers `LoggerConfig.names` may list, in the order `build_loggers` makes them.
LOGGER_NAMES = ("tensorboard", "wandb", "mlflow", "csv")

#: What `build_loggers` writes inside a run folder (by default): a recipe's ``--overwrite`` removes these too.
LOGGER_OUTPUTS = ("tensorboard", "csv", "wandb", "mlflow.db", "mlruns")

#: The files TensorBoard and CSV loggers write in their ``version_<k>`` folders (and a killed rewrite's).
_VERSION_FILES = (
    "events.out.tfevents.*",
    "hparams.yaml",
    "hparams.yaml.tmp",
    "metrics.csv",
    "metrics.csv.tmp",
)


def _version_folder_files(folder: Path) -> list[Path]:
    """The logger's own files in ``folder/version_<k>/`` (TensorBoard's and the CSV logger's)."""
    return [
        path
        for version in folder.glob("version_*")
        if version.is_dir() and not version.is_symlink()
        for pattern in _VERSION_FILES
        for path in version.glob(pattern)
    ]


def _library_entries(*patterns: str) -> Callable[[Path], list[Path]]:
    """The entries of a folder a logger's library keeps (W&B's runs, MLflow's experiments) by name."""
    return lambda folder: [path for pattern in patterns for path in folder.glob(pattern)]


#: Which entries of each of `LOGGER_OUTPUTS`' folders the loggers wrote: a recipe's ``--overwrite`` removes
#: those and leaves a user's files there (`audiotrain.recipes._run.clear_run_outputs`).
LOGGER_OWN_ENTRIES: dict[str, Callable[[Path], list[Path]]] = {
    "tensorboard": _version_folder_files,
    "csv": _version_folder_files,
    "wandb": _library_entries("run-*", "offline-run-*", "latest-run", "debug*.log"),
    "mlruns": _library_entries("[0-9]*", ".trash", "models"),
}

#: How a logger's name is written in a message.
_LOGGER_TITLES = {"wandb": "W&B", "mlflow": "MLflow", "tensorboard": "TensorBoard", "csv": "CSV"}

# log_model as written in a config or on the command line -> the Logger's value (Lightning's False/True/"all").
_LOG_MODEL = {"false": False, "none": False, "true": True, "best": True, "all": "all"}


class MissingLoggerPackage(ImportError, ValueError):
    """A logger was asked for whose package is not installed. An ImportError, and a ValueError so that the
    recipes report it as a setting the user can change (one line naming the logger and what to install)."""


@dataclass
class LoggerConfig:
    """Experiment loggers: ``--logger tensorboard,mlflow`` and ``--logger.<setting>`` in the recipes."""

    names: str = field(
        default="",
        # section_flag: the recipes' command line takes it as --logger too (audiotrain.recipes.config_cli);
        # comma_separated: a config file may give a list instead.
        metadata={
            "help": f"comma-separated loggers to write to: {','.join(LOGGER_NAMES)}; empty: none",
            "section_flag": True,
            "comma_separated": True,
        },
    )
    project: str = field(
        default="audiotrain",
        metadata={
            "loggers": ("wandb", "mlflow"),
            "help": "W&B project, and MLflow experiment unless experiment is set",
        },
    )
    experiment: str | None = field(
        default=None,
        metadata={"loggers": ("mlflow",), "help": "MLflow experiment name; if unset: the project"},
    )
    run_name: str | None = field(
        default=None,
        metadata={
            "loggers": ("wandb", "mlflow"),
            "help": "W&B and MLflow run name; if unset: the run folder's name",
        },
    )
    tracking_uri: str | None = field(
        default=None,
        metadata={
            "loggers": ("mlflow",),
            "help": "MLflow store: a server (http://host:5000), sqlite:///path.db or a path; if unset: "
            "$MLFLOW_TRACKING_URI, else RUN/mlflow.db",
        },
    )
    offline: bool = field(
        default=False,
        metadata={
            "loggers": ("wandb",),
            "help": "W&B: write the run locally (wandb sync uploads it later); only with wandb in --logger",
        },
    )
    required: bool = field(
        default=False,
        metadata={
            "loggers": LOGGER_NAMES,
            "help": "a logger that cannot start its run (W&B not logged in, an MLflow server out of reach) "
            "is an error before training (exit status 2); false: a warning, and the run goes on without it",
        },
    )
    log_model: str = field(
        default="true",
        metadata={
            "loggers": ("wandb", "mlflow"),
            "help": "W&B and MLflow: upload checkpoints as artifacts: false, true (the best one when "
            "training ends) or all (each as it is saved)",
            # a config file's `log_model: false` (a YAML bool, as Lightning's loggers take it) is its text
            "bool_as_text": True,
        },
    )

    def __post_init__(self) -> None:
        self.selected()  # an unknown name is an error now, not when the run starts
        if isinstance(self.log_model, bool):
            self.log_model = str(self.log_model).lower()
        if str(self.log_model).strip().lower() not in _LOG_MODEL:
            raise ValueError(
                f"logger.log_model (--logger.log_model) must be false, true or all, got {self.log_model!r}"
            )

    def selected(self) -> list[str]:
        """The logger names in `names`, checked, without repeats, in the order given."""
        chosen: list[str] = []
        for name in (part.strip().lower() for part in self.names.split(",")):
            if not name or name in chosen:
                continue
            if name not in LOGGER_NAMES:
                close = difflib.get_close_matches(name, LOGGER_NAMES, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(
                    f"unknown logger {name!r} in logger.names (--logger){hint}; the loggers are "
                    f"{', '.join(LOGGER_NAMES)}"
                )
            chosen.append(name)
        return chosen

    def check_packages(self, run_dir: str | os.PathLike | None = None) -> None:
        """Raise `MissingLoggerPackage` now, before a run reads any data, if a named logger's package is not
        installed (the loggers are made and dropped: none writes anything before its run starts).

        `run_dir`: the run's folder, where known, so that a message naming a store (MLflow's local
        ``mlflow.db``) names the run's; None for a default folder not yet named.

        A setting of some loggers alone (W&B's offline, MLflow's tracking_uri, ...: field metadata "loggers")
        without one of them among the loggers is refused too: it would change nothing. Checked
        here, where a run starts, not when a config is read (a recorded run's config still loads)."""
        # Each setting of some loggers alone (field metadata "loggers"), given where none of them is named.
        selected = set(self.selected())
        for setting in dataclasses.fields(self):
            users = setting.metadata.get("loggers", ())
            if not users or selected & set(users) or getattr(self, setting.name) == setting.default:
                continue
            if users == LOGGER_NAMES:
                what, without, remedy = "a setting of the loggers", "no logger", "name one with --logger"
            else:
                whose = " and ".join(_LOGGER_TITLES[name] for name in users)
                what = f"{'an' if whose.startswith('MLflow') else 'a'} {whose} setting"
                without, remedy = f"without {' or '.join(users)}", f"add {' or '.join(users)} to --logger"
            raise ValueError(
                f"logger.{setting.name} (--logger.{setting.name}) is {what} and changes nothing here: "
                f"logger.names (--logger) is {self.names!r}, {without}; {remedy}, or leave out "
                f"--logger.{setting.name}"
            )
        build_loggers(self, run_dir if run_dir is not None else Path("runs") / "<the new run folder>")

    @property
    def model_logging(self) -> bool | str:
        """`log_model` as the loggers take it: False, True or "all"."""
        return _LOG_MODEL[str(self.log_model).strip().lower()]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def build_loggers(
    config: LoggerConfig, run_dir: str | os.PathLike, setting: str = "logger.names (--logger)"
) -> list[Logger]:
    """The loggers `config` names, writing under the run folder `run_dir` (see the module docstring).

    A logger whose package is missing raises `MissingLoggerPackage`, naming the logger, the `setting` that
    asked for it and what to install.
    """
    from audiotrain._build import build_version
    from audiotrain.train.loggers.csv_logger import CSVLogger
    from audiotrain.train.loggers.mlflow_logger import MLflowLogger
    from audiotrain.train.loggers.tensorboard_logger import TensorBoardLogger
    from audiotrain.train.loggers.wandb_logger import WandbLogger

    run_dir = Path(run_dir)
    run_name = config.run_name or resolved_path(run_dir, "the run folder").name
    makers = {
        "tensorboard": lambda: TensorBoardLogger(run_dir, name="tensorboard"),
        "csv": lambda: CSVLogger(run_dir, name="csv"),
        "wandb": lambda: WandbLogger(
            project=config.project,
            name=run_name,
            save_dir=run_dir,
            offline=config.offline,
            log_model=config.model_logging,
        ),
        "mlflow": lambda: MLflowLogger(
            experiment_name=config.experiment or config.project,
            run_name=run_name,
            tracking_uri=config.tracking_uri
            or os.environ.get("MLFLOW_TRACKING_URI")
            or str(run_dir / "mlflow.db"),
            log_model=config.model_logging,
            # Runs of many folders share one store (--logger.tracking_uri): each leads back to its folder.
            tags={"run_dir": str(run_dir.resolve()), "audiotrain_version": build_version()},
        ),
    }
    loggers = []
    for name in sorted(config.selected(), key=LOGGER_NAMES.index):
        try:
            loggers.append(makers[name]())
        except ImportError as exc:
            raise MissingLoggerPackage(f"{setting} asks for {name}: {exc}") from exc
        loggers[-1].required = config.required
    return loggers


def log_artifacts(
    loggers: Iterable[Any],
    paths: Mapping[str, str | os.PathLike | None],
    artifact_type: str = "file",
    *,
    metrics: Mapping[str, float] | None = None,
    step: int = 0,
) -> list[str]:
    """Store each file or folder of ``paths`` (name -> path; missing ones and None are passed over) with
    every logger's run (`Logger.log_artifact`), and ``metrics`` (finite ones) at ``step``, then close the
    runs again; returns the names of the artifacts sent.

    For what a recipe writes after `fit` (plots, held-out scores, an exported model): the runs that `fit`
    closed are reopened for it (W&B's stays open, see `WandbLogger`) and closed as successful.
    """
    sent = [name for name, path in paths.items() if path is not None and Path(path).exists()]
    values = {k: float(v) for k, v in (metrics or {}).items() if v is not None and math.isfinite(v)}
    for lg in loggers:
        if not isinstance(lg, Logger):
            continue
        if values:
            lg.log_metrics(values, step=step)
        for name in sent:
            lg.log_artifact(paths[name], name, artifact_type=artifact_type)
        lg.finalize("success")
    return sent


def finish_loggers(loggers: Iterable[Any]) -> None:
    """End the loggers' runs for good, once nothing more will be logged (the end of a recipe's run): a W&B run
    that `fit` left open for a later stage is finished now rather than when Python exits."""
    for lg in loggers:
        if callable(getattr(lg, "finish", None)):
            lg.finish()


def fail_loggers(loggers: Iterable[Any], status: str = "failed") -> None:
    """Mark the loggers' runs failed (or "interrupted"), for good: a recipe's run that raised, or was stopped,
    once `fit` had ended (its held-out evaluation) had left them as `fit` closed them, a success (MLflow
    FINISHED, a W&B run later finished with exit code 0), and a sweep filtering runs by status counted the
    failed run as complete. A stop there is no failure, but the run lacks its test scores all the same: it is
    recorded as a stop (MLflow KILLED, W&B exit code 130), as a stop during `fit` is."""
    for lg in loggers:
        if callable(getattr(lg, "finalize", None)) and not getattr(lg, "disabled", False):
            lg.start()  # (reopens the run `fit` closed, where it is closed)
            lg.finalize(status)


def describe_loggers(loggers: Iterable[Any]) -> list[str]:
    """One line per logger saying where its run is and how to open it (for a recipe's closing report)."""
    from audiotrain.train.loggers.csv_logger import CSVLogger
    from audiotrain.train.loggers.mlflow_logger import MLflowLogger
    from audiotrain.train.loggers.tensorboard_logger import TensorBoardLogger
    from audiotrain.train.loggers.wandb_logger import WandbLogger

    lines = []
    for lg in loggers:
        if getattr(lg, "disabled", False):
            # The cause again, here at the end: the warning that first said it is far above on a long run.
            why = getattr(lg, "disabled_by", "")
            if not why:
                lines.append(f"{type(lg).__name__}: disabled (see the warning above)")
            else:
                logged = (
                    "nothing was logged" if why.startswith("could not start") else "nothing more was logged"
                )
                lines.append(f"{type(lg).__name__}: disabled: it {why}; {logged}")
        elif isinstance(lg, TensorBoardLogger):
            lines.append(
                f"TensorBoard: {lg.log_dir} ({shlex.join(['tensorboard', '--logdir', str(lg.root_dir)])})"
            )
        elif isinstance(lg, CSVLogger):
            lines.append(f"CSV: {lg.metrics_file}")
        elif isinstance(lg, MLflowLogger):
            where = f"run {lg.version} in experiment {lg.experiment_name!r} at {lg.tracking_uri}"
            if lg.save_dir is not None:
                where += f" ({shlex.join(['mlflow', 'ui', '--backend-store-uri', lg.tracking_uri])})"
            lines.append(f"MLflow: {where}")
        elif isinstance(lg, WandbLogger):
            where = f"run {lg.version} in project {lg.project!r}"
            parts = [str(p) for p in lg.offline_dirs]
            if len(parts) == 1:
                where += f", offline in {parts[0]} ({shlex.join(['wandb', 'sync', parts[0]])} uploads it)"
            elif parts:  # a resumed run: each part in a folder of its own, all to be uploaded, in order
                sync = shlex.join(["wandb", "sync", "--id", str(lg.version), *parts])
                where += (
                    f", offline in {len(parts)} folders, one per part of the run, oldest first: "
                    f"{', '.join(parts)} ({sync} uploads them as one run, in that order)"
                )
            lines.append(f"W&B: {where}")
    return lines
