"""Lightning's `lightning.pytorch.loggers`: the loggers of `audiotrain.train.loggers` under the name a
Lightning script's ``from lightning.pytorch.loggers import CSVLogger`` reads as (``lightning.pytorch`` ->
``audiotrain``, as its callbacks are `audiotrain.callbacks`). One set of classes: these are those objects.
Importing this imports no backend: each logger imports its own when it is constructed."""

from audiotrain.train.loggers import *  # noqa: F403  (the same names, for a Lightning script's import)
from audiotrain.train.loggers import __all__  # noqa: F401
