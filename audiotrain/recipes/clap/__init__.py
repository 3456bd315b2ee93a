"""The CLAP recipe: fine-tune CLAP on a folder of audio + captions, or run the offline demo.

``python -m audiotrain.recipes.clap --help`` describes the command (`cli`). Modules: `config` (settings and
presets), `data` (splits, loaders, zero-shot labels), `task` (the `TrainModule`), `bundle` (model load, the
demo model, Hugging Face export), `train` (`run`: one run, top to bottom), `evaluate` (retrieval and
zero-shot scores), `report` (the table and plots), `cv` (cross-validation grouped by clip), `cli` (the commands, ``export``
and ``cv`` included).
"""

from audiotrain._lazy import lazy_attributes

_PUBLIC = {
    "Bundle": "audiotrain.recipes.clap.bundle",
    "ClapDatasetConfig": "audiotrain.recipes.clap.config",
    "ClapDemoConfig": "audiotrain.recipes.clap.config",
    "ClapRecipeConfig": "audiotrain.recipes.clap.config",
    "ClapTrainConfig": "audiotrain.recipes.clap.config",
    "export_checkpoint": "audiotrain.recipes.clap.bundle",
    "build_parser": "audiotrain.recipes.clap.cli",
    "main": "audiotrain.recipes.clap.cli",
    "parse_config": "audiotrain.recipes.clap.cli",
    "run": "audiotrain.recipes.clap.train",
    "run_cross_validation": "audiotrain.recipes.clap.cv",
}

__all__ = list(_PUBLIC)

__getattr__, __dir__ = lazy_attributes(__name__, _PUBLIC)
