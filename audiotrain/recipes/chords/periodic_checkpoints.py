"""`PeriodicCheckpoints`: the chord recipe's ``epoch=NNN`` checkpoints, of which ``--save_keep`` bounds the
number kept in the run's checkpoint folder."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from audiotrain.distributed import collectives
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.callbacks import ModelCheckpoint

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
