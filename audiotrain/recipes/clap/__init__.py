"""The CLAP recipe: fine-tune CLAP on a folder of audio + captions, or run the offline demo.

``python -m audiotrain.recipes.clap --help`` describes the command (`cli`). Modules: `config` (settings and
presets), `data` (splits, loaders, zero-shot labels), `task` (the `TrainModule`), `bundle` (model load, the
demo model, Hugging Face export), `train` (`run`: one run, top to bottom), `evaluate` (retrieval and
zero-shot scores), `report` (the table and plots), `cv` (cross-validation grouped by clip), `cli` (the commands, ``export``
and ``cv`` included), `cli_evaluate` (the ``evaluate`` command: a model's scores without training).
"""

from typing import TYPE_CHECKING

from audiotrain._lazy import lazy_attributes

_PUBLIC = {
    "Bundle": "audiotrain.recipes.clap.bundle",
    "ClapDatasetConfig": "audiotrain.recipes.clap.config",
    "ClapDemoConfig": "audiotrain.recipes.clap.config",
    "ClapRecipeConfig": "audiotrain.recipes.clap.config",
    "ClapRunResult": "audiotrain.recipes.clap.train",
    "ClapTrainConfig": "audiotrain.recipes.clap.config",
    "export_checkpoint": "audiotrain.recipes.clap.bundle",
    "build_parser": "audiotrain.recipes.clap.cli",
    "main": "audiotrain.recipes.clap.cli",
    "parse_config": "audiotrain.recipes.clap.cli",
    "run": "audiotrain.recipes.clap.train",
    "run_cross_validation": "audiotrain.recipes.clap.cv",
}


if TYPE_CHECKING:
    # The lazy names spelled out for type checkers and editors, which do not run `__getattr__`
    # (`X as X`: an explicit re-export, also under mypy --strict). tests/test_typing.py keeps them
    # equal to `_PUBLIC`.
    from audiotrain.recipes.clap.bundle import Bundle as Bundle
    from audiotrain.recipes.clap.bundle import export_checkpoint as export_checkpoint
    from audiotrain.recipes.clap.cli import build_parser as build_parser
    from audiotrain.recipes.clap.cli import main as main
    from audiotrain.recipes.clap.cli import parse_config as parse_config
    from audiotrain.recipes.clap.config import ClapDatasetConfig as ClapDatasetConfig
    from audiotrain.recipes.clap.config import ClapDemoConfig as ClapDemoConfig
    from audiotrain.recipes.clap.config import ClapRecipeConfig as ClapRecipeConfig
    from audiotrain.recipes.clap.config import ClapTrainConfig as ClapTrainConfig
    from audiotrain.recipes.clap.cv import run_cross_validation as run_cross_validation
    from audiotrain.recipes.clap.train import ClapRunResult as ClapRunResult
    from audiotrain.recipes.clap.train import run as run

__all__ = list(_PUBLIC)

# Hidden from type checkers, which would take any name from a module `__getattr__` (a typo included).
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_attributes(__name__, _PUBLIC)
