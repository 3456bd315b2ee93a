"""Seed 003's `training.callbacks`: the callbacks of `audiotrain.train.callbacks`, under the name its
`from training.callbacks import Callback` reads as (``training`` -> ``audiotrain``, as its
`training.integrations` is `audiotrain.integrations`). One set of classes: these are those objects."""

from audiotrain.train.callbacks import *  # noqa: F403  (the same names, for seed 003's import)
from audiotrain.train.callbacks import __all__  # noqa: F401
