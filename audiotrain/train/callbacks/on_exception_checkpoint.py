"""`OnExceptionCheckpoint`: save a resumable checkpoint when `fit` fails or is stopped (Lightning's)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audiotrain.train import checkpoint as ckpt
from audiotrain.train.callback import Checkpoint

if TYPE_CHECKING:
    from audiotrain.train.trainer import Trainer


class OnExceptionCheckpoint(Checkpoint):
    """Lightning's: when an exception is raised during `fit`, save a checkpoint at `dirpath / filename`, so
    that ``trainer.fit(..., ckpt_path=cb.ckpt_path)`` goes on from where it failed (a `dirpath` starting with
    ``~`` lies in the home folder).

    audiotrain's checkpoints are folders, not .ckpt files: the checkpoint is the folder `dirpath/filename`
    (Lightning writes `dirpath/filename.ckpt`). It is written as every checkpoint is: atomically (a crash
    mid-save leaves the previous one intact), and never over a file, a link or a folder that is not a
    checkpoint (such a thing there is refused when `fit` starts, not at the failure, as is a `dirpath` that
    is a file or lies inside one). A checkpoint already there (an earlier failure's) is replaced.

    A Ctrl-C or SIGTERM stops the fit after the current step and saves the `interrupted` checkpoint
    (`Trainer` docs): with this callback that checkpoint is saved here instead, once (and `last` becomes a
    copy of it as usual), also with `enable_checkpointing=False` (where a stop saves nothing otherwise). A
    second Ctrl-C (abort) saves nothing. An exception before training starts (in `setup`,
    `configure_optimizers`, loading `ckpt_path`) saves nothing: nothing has been trained.

    An exception raised in a hook after a step (a callback's `on_train_batch_end`, `on_train_epoch_end`)
    saves the state after that step, which resumes exactly as an uninterrupted fit would go on. One raised
    inside the step (the module's loss) or before it (`on_train_batch_start`) saves the state after the last
    completed step, with the data loader's position put back to it: the resumed fit trains that batch. Under
    data parallel an exception on one process cannot be saved (every process must take part in a save, and
    the others are waiting in the step's all-reduce): only the stop signals' checkpoint is saved there.
    """

    def __init__(self, dirpath: str | os.PathLike, filename: str = "on_exception"):
        if not isinstance(dirpath, str | os.PathLike) or not str(dirpath):
            raise TypeError(
                f"OnExceptionCheckpoint(dirpath={dirpath!r}): expected a folder path (str or Path)"
            )
        if not isinstance(filename, str) or not filename or os.sep in filename or "/" in filename:
            raise ValueError(
                f"OnExceptionCheckpoint(filename={filename!r}): expected the checkpoint folder's name "
                "(a non-empty string without a path separator; it goes in dirpath)"
            )
        # `~` is the home folder, as in Lightning's ModelCheckpoint: the fit-start check looked there while
        # the save wrote a literal `~` folder in the working directory.
        self.dirpath = Path(dirpath).expanduser()
        self.filename = filename
        self._saving = False  # (during this callback's own save)

    @property
    def ckpt_path(self) -> Path:
        """The checkpoint folder a failure saves (Lightning's name; here without `.ckpt`)."""
        return self.dirpath / self.filename

    def setup(self, trainer, module, stage: str) -> None:
        if stage == "fit":  # a user's file there: refused now, not at the failure
            self._check_dirpath()
            ckpt.check_replaceable(self.ckpt_path)

    def _check_dirpath(self) -> None:
        """Refuse a `dirpath` that is, or lies inside, something other than a folder (a file, a link to
        nothing): the checkpoint could never be saved there."""
        path = Path(os.path.abspath(self.dirpath.expanduser()))
        for folder in (path, *path.parents):
            if os.path.lexists(folder):
                if not folder.is_dir():
                    what = "a link to nothing" if folder.is_symlink() and not folder.exists() else "a file"
                    where = "is" if folder == path else f"is inside {folder}, which is"
                    raise NotADirectoryError(
                        f"OnExceptionCheckpoint(dirpath={str(self.dirpath)!r}): {path} {where} {what}, not a "
                        "folder; the checkpoint is a folder saved inside dirpath: pass a folder path"
                    )
                return

    def on_exception(self, trainer: Trainer, module, exception: BaseException) -> None:
        if not trainer.fitting:
            return  # (before training started, or in validate/test/predict)
        if isinstance(exception, KeyboardInterrupt) and trainer.interrupted:
            # The first stop signal: the Trainer saves its `interrupted` checkpoint next, at this callback's
            # path (`CallbackList.interrupted_path`). A second one aborts: nothing is saved, as asked.
            return
        if trainer.world_size > 1:
            if trainer.is_global_zero:
                warnings.warn(
                    f"OnExceptionCheckpoint: {self.ckpt_path} not saved: under data parallel an exception on "
                    "one process cannot be saved (every process must take part)",
                    stacklevel=2,
                )
            return
        self._saving = True
        try:
            trainer.save_checkpoint(self.ckpt_path)
        except Exception as err:  # (the fit's own error goes on: this one must not hide it)
            warnings.warn(f"OnExceptionCheckpoint: could not save {self.ckpt_path}: {err}", stacklevel=2)
            return
        finally:
            self._saving = False
        trainer._note(
            f"Saved {self.ckpt_path} after {type(exception).__name__} at epoch {trainer.current_epoch}, "
            f"global step {trainer.global_step}. Resume with "
            f"trainer.fit(..., ckpt_path={str(self.ckpt_path)!r})"
        )

    def on_save_checkpoint(self, trainer, module, checkpoint: dict[str, Any]) -> None:
        # An exception inside the step (or in on_train_batch_start) comes after the loader handed over the
        # batch, which the step counters do not count: the loader's position is put back to the trained
        # batches, so that the resumed fit trains that batch (elsewhere they are the same).
        loader_state = checkpoint.get("data_loader")
        if not self._saving or not isinstance(loader_state, dict):
            return
        if loader_state.get("batches_yielded") == trainer.batch_in_epoch + 1:
            checkpoint["data_loader"] = _one_batch_back(loader_state)


def _one_batch_back(state: dict[str, Any]) -> dict[str, Any]:
    """A loader's saved position, one batch back. For a CombinedLoader's (its `state_dict`), each of its
    loaders that gave the failed batch a part goes back too (all but those a "max_size" one had ended, which
    gave None): with its count alone put back, they resumed after that batch, which was never trained."""
    back = {**state, "batches_yielded": state["batches_yielded"] - 1}
    loaders, taken = state.get("loaders"), state.get("taken")
    if isinstance(loaders, list) and isinstance(taken, list) and len(loaders) == len(taken):
        ended = set(state.get("ended", ())) if state.get("mode") == "max_size" else set()
        gave = [i not in ended and isinstance(n, int) and n > 0 for i, n in enumerate(taken)]
        back["taken"] = [n - 1 if g else n for n, g in zip(taken, gave, strict=True)]
        back["loaders"] = [
            _one_batch_back(x) if g and isinstance(x, dict) and x.get("batches_yielded", 0) > 0 else x
            for x, g in zip(loaders, gave, strict=True)
        ]
    return back
