"""The chord recognition recipe: songs with chord labels → a trained model → ``.lab`` predictions and scores.

``python -m audiotrain.recipes.chords --help`` lists the commands (`cli`). From Python,
``from audiotrain.recipes.chords import Trainer, TrainingConfig`` (the seed guide's Trainer, see `trainer`) or
`run_training` (what the ``train`` and demo commands do).

Modules: `config` (settings and presets), `data` (songs, splits, features, loaders), `task` (the
`TrainModule`), `trainer` (the `Trainer` facade), `train` (`run_training`: one run, top to bottom),
`evaluate` (mir_eval scores), `predict` (checkpoint → chords), `export` (the model alone, to share), `cv`
(cross-validation), `example` (the seed example), `cli` (the commands).
"""

from audiotrain._lazy import lazy_attributes

_PUBLIC = {
    "Trainer": "audiotrain.recipes.chords.trainer",
    "TrainingConfig": "audiotrain.recipes.chords.config",
    "benchmark_config": "audiotrain.recipes.chords.config",
    "ChordTask": "audiotrain.recipes.chords.task",
    "ChordPredictor": "audiotrain.recipes.chords.predict",
    "RunResult": "audiotrain.recipes.chords.train",
    "run_training": "audiotrain.recipes.chords.train",
    "main": "audiotrain.recipes.chords.cli",
}

__all__ = list(_PUBLIC)

__getattr__, __dir__ = lazy_attributes(__name__, _PUBLIC)
