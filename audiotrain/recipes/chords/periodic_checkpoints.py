"""`PeriodicCheckpoints`: the chord recipe's ``epoch=NNN`` checkpoints, of which ``--save_keep`` bounds the
number kept in the run's checkpoint folder."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from audiotrain.distributed import collectives
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.callbacks import ModelCheckpoint
from audiotrain.train.callbacks.model_checkpoint import _score

if TYPE_CHECKING:
    from audiotrain.train.trainer import Trainer

#: The names the recipe gives its periodic checkpoints: ``epoch=NNN``, and ``-vK`` where the name was taken.
PERIODIC_NAME = re.compile(r"epoch=(?P<epoch>\d+)(-v(?P<version>\d+))?")


class PeriodicCheckpoints(ModelCheckpoint):
    """``epoch=NNN`` every `every_n_epochs` epochs into `dirpath`, keeping the newest `keep` of them (0: all).

    The count covers every periodic checkpoint in the folder, those of earlier processes of the run too: a
    ModelCheckpoint's own top-k counts only what it tracked, and after a ``--resume`` that was the state in
    ``last`` (written before the same epoch's periodic save), so each resume kept `keep` more. The recipe's
    run owns its checkpoint folder (a fresh run refuses one holding another run's checkpoints), so the
    ``epoch=NNN`` there are its own. Nothing else is removed: not best, last or interrupted, nor a folder
    under another name or anything that is not a checkpoint folder.
    """

    def __init__(self, dirpath: Path, every_n_epochs: int, keep: int, overwrite: bool = False):
        super().__init__(
            dirpath=dirpath,
            filename="epoch={epoch:03d}",
            every_n_epochs=every_n_epochs,
            save_top_k=-1,  # (the folder is pruned instead: `_prune`)
            overwrite=overwrite,
        )
        self.keep = keep

    def on_train_start(self, trainer: Trainer, module) -> None:
        super().on_train_start(trainer, module)
        self._save_one_a_kill_left_unsaved(trainer)

    def _save_one_a_kill_left_unsaved(self, trainer: Trainer) -> None:
        """At an epoch end `last` is saved before this callback's ``epoch=NNN``: a run killed between the two
        (SIGKILL, the OOM killer) resumes from `last` at the next epoch and would never save that one. Where
        the fit starts at the very point it was due (an epoch start, the epoch before it a save point) and the
        folder holds no ``epoch=NNN`` of that epoch nor of a later one, it is saved now: the state is the one
        it would have held (the resumed `last`'s)."""
        epoch, progress = trainer.current_epoch, trainer.progress
        if (
            epoch == 0
            or epoch % self.every_n_epochs
            or progress.batch_in_epoch
            or progress.validation_pending
        ):
            return
        reached = [
            _epoch_and_version(path.name)[0]
            for path in (self.dirpath.iterdir() if self.dirpath.is_dir() else ())
            if PERIODIC_NAME.fullmatch(path.name) and ckpt.is_checkpoint_folder(path)
        ]
        if not collectives.broadcast_from_main(all(saved < epoch - 1 for saved in reached)):
            return  # (rank 0's folder decides: every rank joins the save or none does)
        self._last_saved_step = trainer.global_step
        path = self._free_path(trainer, f"epoch={epoch - 1:03d}", reusable=[])
        self._kept[path] = _score(None)
        trainer.save_checkpoint(path, weights_only=self.save_weights_only)
        if self.keep:
            self._prune(Path(path))

    def _save_top_k(self, trainer: Trainer, score: float | None) -> str:
        path = super()._save_top_k(trainer, score)
        if self.keep:
            self._prune(Path(path))
        return path

    def _prune(self, saved: Path) -> None:
        """Remove all but the newest `keep` periodic checkpoints up to `saved` (by epoch). Those of later
        epochs, left by a run resumed from an earlier checkpoint, stay until this run saves over them."""
        newest_epoch = _epoch_and_version(saved.name)[0]
        periodic = sorted(
            (
                (_epoch_and_version(path.name), path)
                for path in self.dirpath.iterdir()
                if PERIODIC_NAME.fullmatch(path.name) and ckpt.is_checkpoint_folder(path)
            ),
            key=lambda found: found[0],
        )
        candidates = [path for (epoch, _), path in periodic if epoch <= newest_epoch and path != saved]
        for path in candidates[: max(len(candidates) - (self.keep - 1), 0)]:
            self._kept.pop(str(path), None)
            if collectives.is_main_process():  # (rank 0 wrote them)
                ckpt.remove_checkpoint(path)


def _epoch_and_version(name: str) -> tuple[int, int]:
    found = PERIODIC_NAME.fullmatch(name)
    return int(found["epoch"]), int(found["version"] or 0)
