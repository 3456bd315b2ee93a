"""The chord recognition recipe: songs with chord labels → a trained model → ``.lab`` predictions and scores.

``python -m audiotrain.recipes.chords --help`` lists the commands (`cli`). From Python,
``from audiotrain.recipes.chords import Trainer, TrainingConfig`` (the seed guide's Trainer, see `trainer`) or
`run_training` (what the ``train`` and demo commands do); to fine-tune a run with the core Trainer,
`ChordTask.load_from_checkpoint` and `song_loaders` (a song folder's loaders, as the recipe builds them);
`evaluation_loader` for held-out songs.

Modules: `config` (settings and presets), `data` (songs, splits, features, loaders), `task` (the
`TrainModule`), `trainer` (the `Trainer` facade), `train` (`run_training`: one run, top to bottom),
`evaluate` (mir_eval scores), `predict` (checkpoint → chords), `export` (the model alone, to share), `cv`
(cross-validation), `example` (the seed example), `cli` (the commands).
"""

from typing import TYPE_CHECKING

from audiotrain._lazy import lazy_attributes

_PUBLIC = {
    "Trainer": "audiotrain.recipes.chords.trainer",
    "TrainingConfig": "audiotrain.recipes.chords.config",
    "benchmark_config": "audiotrain.recipes.chords.config",
    "ChordTask": "audiotrain.recipes.chords.task",
    "ChordPredictor": "audiotrain.recipes.chords.predict",
    "SongPosteriors": "audiotrain.recipes.chords.predict",
    "RunResult": "audiotrain.recipes.chords.train",
    "run_training": "audiotrain.recipes.chords.train",
    "song_loaders": "audiotrain.recipes.chords.train",
    "evaluation_loader": "audiotrain.recipes.chords.train",
    "main": "audiotrain.recipes.chords.cli",
}


if TYPE_CHECKING:
    # The lazy names spelled out for type checkers and editors, which do not run `__getattr__`
    # (`X as X`: an explicit re-export, also under mypy --strict). tests/test_typing.py keeps them
    # equal to `_PUBLIC`.
    from audiotrain.recipes.chords.cli import main as main
    from audiotrain.recipes.chords.config import TrainingConfig as TrainingConfig
    from audiotrain.recipes.chords.config import benchmark_config as benchmark_config
    from audiotrain.recipes.chords.predict import ChordPredictor as ChordPredictor
    from audiotrain.recipes.chords.predict import SongPosteriors as SongPosteriors
    from audiotrain.recipes.chords.task import ChordTask as ChordTask
    from audiotrain.recipes.chords.train import RunResult as RunResult
    from audiotrain.recipes.chords.train import evaluation_loader as evaluation_loader
    from audiotrain.recipes.chords.train import run_training as run_training
    from audiotrain.recipes.chords.train import song_loaders as song_loaders
    from audiotrain.recipes.chords.trainer import Trainer as Trainer

__all__ = list(_PUBLIC)

# Hidden from type checkers, which would take any name from a module `__getattr__` (a typo included).
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_attributes(__name__, _PUBLIC)
