"""What several logger backends share: importing the backend's package with a message saying what to
install (`_require`, for W&B and MLflow), the ``<root>/<name>/version_<k>`` run folders with their
``hparams.yaml`` (`_VersionedFolder`, for TensorBoard and CSV), and Lightning's keyword arguments that
have no counterpart here, refused with what to use instead (`refuse_lightning_only`).
"""

from __future__ import annotations

import importlib
import itertools
import re
import warnings
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from audiotrain._caller import user_stacklevel
from audiotrain._files import claim_next_folder
from audiotrain._text import listed
from audiotrain.train.loggers.base import LoggerWarning
from audiotrain.train.loggers.run_folder import RunFolder

import numpy as np


def _require(module: str, pip_name: str, logger: str, install: str) -> Any:
    """`module`, or an ImportError naming `pip_name` and what to run (`install`)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        if isinstance(exc, ModuleNotFoundError) and exc.name is not None and exc.name.split(".")[0] == top:
            raise ImportError(
                f"{logger} needs the '{pip_name}' package, which is not installed: {install}"
            ) from exc
        # Installed, but its import failed (a dependency of it missing, an old version against a newer
        # setuptools): "not installed" would send the user to a pip that answers "already satisfied".
        raise ImportError(
            f"{logger} needs the '{pip_name}' package, which is installed but failed to import: "
            f"{type(exc).__name__}: {exc} (upgrading it may help: pip install -U {pip_name})"
        ) from exc


#: Lightning's ``prefix`` (joined to every metric name with "-"), which no logger here takes.
LIGHTNING_PREFIX: tuple[tuple, str] = (
    ("",),
    "put the prefix in the names you log, e.g. self.log('fold1/loss', ...)",
)


def refuse_lightning_only(
    owner: str, given: Mapping[str, Any], known: Iterable[str], table: dict[str, tuple[tuple, str]]
) -> None:
    """Keyword arguments of Lightning's `owner` that this one lacks (`table`: name -> (the values that
    describe what happens anyway, accepted; what to use instead)); any other name is unexpected, with the
    one meant. As the Trainer answers Lightning's flags (`audiotrain.train.flags.lightning_only`)."""
    from audiotrain.train.flags import lightning_only  # (not at import: it loads mlx)

    lightning_only(dict(given), known, owner=owner, table=table, what="argument")


def _next_version(root: Path) -> int:
    """1 + the largest ``version_<k>`` under ``root`` (0 when there is none)."""
    found = [int(m.group(1)) for p in root.glob("version_*") if (m := re.fullmatch(r"version_(\d+)", p.name))]
    return max(found, default=-1) + 1


def share_next_version(loggers: Iterable[Any]) -> None:
    """A fresh fit's CSV and TensorBoard loggers that leave the version to themselves and share a root: the
    first claims the next free ``version_<k>`` now and the others of another kind take the same, as a
    version given to both is shared. Each claiming its own at its start put one fit's metrics.csv in
    ``version_0`` and its event files in ``version_1``, and no later fit's two numbers matched."""
    groups: dict[Path, list[_VersionedFolder]] = {}
    for lg in loggers:
        if isinstance(lg, _VersionedFolder) and lg._version is None and not lg._resumed:
            groups.setdefault(lg.root_dir.resolve(), []).append(lg)
    for group in groups.values():
        kinds = {_folder_kind(lg) for lg in group}
        if len(kinds) < 2:
            continue
        first = group[0]
        first._claim_log_dir()
        kinds.discard(_folder_kind(first))
        for lg in group[1:]:
            if _folder_kind(lg) in kinds:
                lg._version = first._version
                kinds.discard(_folder_kind(lg))  # (a second logger of one kind claims a folder of its own)


def _folder_kind(logger: Any) -> type:
    """The library's class whose files `logger` writes (CSVLogger, TensorBoardLogger): a user's subclass is of
    its base's kind (a CSVLogger and a subclass of it in one folder wrote one metrics.csv over the other)."""
    return next(cls for cls in type(logger).__mro__ if _VersionedFolder in cls.__bases__)


class _VersionedFolder:
    """`<root>/<name>/version_<k>` folders shared by the TensorBoard and CSV loggers (k: next free).

    As in Lightning, an empty or None `name` drops that level: `<root>/version_<k>`. Both loggers also keep
    the run's ``hparams.yaml`` there. A version left to the logger (``version=None``) is claimed when the run
    starts (`_claim_log_dir`), so that two runs started in one root at once (a sweep's workers) never share
    a folder; read before that, it is the next free one, which the run takes unless another run took it first.
    """

    _root: Path
    _name: str
    _version: int | str | None  # given, resumed or claimed; None: not yet claimed
    _peeked_version: int | None = None  # the next free version when `version` was read before the start
    _hparams: dict[str, Any]  # every hyperparameter logged to this run so far
    _resumed: bool  # `load_state_dict` named this folder (a checkpoint's run)
    _ever_started: bool  # (Logger's) this logger has written to the folder
    _claimed: Path | None = None  # the given version's folder this run claimed (`refuse_an_earlier_run`)
    _made_folder: bool = False  # the claim created that folder
    _fitted_in: weakref.ref | None = None  # the Trainer whose fresh fit this logger's run is

    @property
    def name(self) -> str:
        return self._name

    @property
    def root_dir(self) -> RunFolder:
        """The folder holding the ``version_<k>`` folders."""
        return RunFolder(self._root / self._name if self._name else self._root)

    @property
    def version(self) -> int | str:
        if self._version is not None:
            return self._version
        if self._peeked_version is None:  # (the same answer until the run claims its own)
            self._peeked_version = _next_version(self.root_dir)
        return self._peeked_version

    def _claim_log_dir(self) -> None:
        """At the run's start: create its folder. A version left to the logger is the next free
        ``version_<k>`` (Lightning's numbering: from 0, 1 + the largest), claimed by creating it; a version
        given or resumed is used as it is (`refuse_an_earlier_run` guards a fresh fit's)."""
        if self._version is None:
            first = _next_version(self.root_dir)
            names = (self.root_dir / f"version_{k}" for k in itertools.count(first))
            self._version = int(claim_next_folder(names).name.removeprefix("version_"))
        else:
            self.log_dir.mkdir(parents=True, exist_ok=True)

    @property
    def save_dir(self) -> RunFolder:
        return RunFolder(self._root)

    @property
    def log_dir(self) -> RunFolder:
        v = self.version
        return self.root_dir / (f"version_{v}" if isinstance(v, int) else str(v))

    @property
    def hparams_file(self) -> Path:
        return self.log_dir / "hparams.yaml"

    def refuse_an_earlier_run(
        self, held_by_this_fit: Mapping[Path, str] | None = None, trainer: Any = None
    ) -> Path | None:
        """Before a fresh fit (no checkpoint): a version folder given (``version=``) that already holds files
        is another run's, whose ``metrics.csv`` and event files this run would add to and whose
        ``hparams.yaml`` it would replace. Called by the Trainer before anything is written. A resumed fit
        (its checkpoint names the folder) and a later stage of this logger's own run go on in the folder.

        The folder is claimed as it is checked: its ``hparams.yaml`` is created exclusively (empty until the
        run's hyperparameters are logged), so of two fits started at once with one version, the second is
        refused here too, not left writing its rows into the first one's ``metrics.csv``. A folder in
        `held_by_this_fit` (resolved folder -> the class of the logger of the same Trainer that holds it:
        ``CSVLogger`` and ``TensorBoardLogger`` given one ``version``, which Lightning writes into one folder)
        is shared, not refused; unless that logger is of this one's class, whose files these would replace.
        A logger that ran another `trainer`'s fresh fit (made once before a sweep's loop) gets a
        `LoggerWarning`: this fit adds its rows to that run's and replaces its hparams.yaml.
        Returns the folder this logger holds for the fit (None where it claims none here)."""
        fitted_in = self._fitted_in() if self._fitted_in is not None else None
        if (
            trainer is not None
            and self._ever_started
            and self._fitted_in is not None
            and fitted_in is not trainer
        ):
            # Warned, not refused: one logger is one run (Lightning's too), and a second stage's new Trainer
            # (fine-tuning after a frozen stage) may go on in it on purpose; a sweep's trials should not.
            owner = type(self).__name__
            warnings.warn(
                f"{owner}: this logger already logged another Trainer's fit, in {self.log_dir}; this fit's "
                "metrics go on in that run and its hparams.yaml is replaced. For a run of its own (a sweep's "
                f"trial), give each Trainer a logger of its own ({owner}(...) made inside the loop takes the "
                "next free version)",
                LoggerWarning,
                stacklevel=user_stacklevel(),
            )
        if trainer is not None:
            self._fitted_in = weakref.ref(trainer)
        if self._resumed or self._ever_started or self._version is None:  # (None: a new folder is claimed)
            return None
        folder = self.log_dir
        if self._claimed == folder:  # (a fit that failed before it started, run again)
            return folder
        sibling = (held_by_this_fit or {}).get(folder.resolve())
        if sibling == type(self).__name__:
            raise ValueError(
                f"two {sibling}s of this Trainer write to {folder}, each its own files over the other's; "
                "give them different versions or names"
            )
        if sibling is not None:
            return folder  # (the other logger's claim; it alone gives it up)
        found = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        if not found:
            made = not folder.exists()
            folder.mkdir(parents=True, exist_ok=True)
            try:
                with open(self.hparams_file, "x", encoding="utf-8") as handle:
                    handle.write("{}\n")
            except FileExistsError:  # another fit started at the same time took it first
                found = sorted(p.name for p in folder.iterdir())
            else:
                self._claimed, self._made_folder = folder, made
                return folder
        if found:
            owner = type(self).__name__
            shown = listed(found, 5)
            raise FileExistsError(
                f"{owner}: {folder} already holds another run's logs ({shown}); this fit would add its "
                "metrics to them and replace their hparams.yaml. Continue that run with "
                "trainer.fit(..., ckpt_path=<one of its checkpoints>), or start a new run in another version "
                f"({owner}(..., version=None) takes the next free one) or after removing {folder}"
            )

    def release_claim(self) -> None:
        """Undo `refuse_an_earlier_run`'s claim of a folder this run has not written to (another logger of
        the fit was refused): its empty ``hparams.yaml`` goes, and the folder where the claim made it."""
        folder, self._claimed = self._claimed, None
        if folder is None or self._ever_started:
            return
        hparams = folder / "hparams.yaml"
        if hparams.is_file() and hparams.read_text(encoding="utf-8") == "{}\n":
            hparams.unlink()
            if self._made_folder and not any(folder.iterdir()):
                folder.rmdir()

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


def _write_yaml(path: Path, params: dict[str, Any]) -> None:
    import yaml

    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(params, sort_keys=False))
    tmp.replace(path)


def numpy_if_mlx(value: Any) -> Any:
    """An MLX array as a numpy array (bfloat16 as float32: numpy has none), which the backends' media calls
    take (TensorBoard's add_*, W&B's Image/Audio, MLflow's log_image); anything else as is."""
    if not type(value).__module__.startswith("mlx"):
        return value
    import mlx.core as mx

    if value.dtype == mx.bfloat16:
        value = value.astype(mx.float32)
    return np.array(value)
