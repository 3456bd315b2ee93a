"""`DataModule`: the loaders of a task in one object, as Lightning's `LightningDataModule`.

    class Songs(audiotrain.DataModule):
        def setup(self, stage):            # "fit", "validate", "test" or "predict"
            self.train_set, self.val_set = ...
        def train_dataloader(self):
            return DataLoader(self.train_set, batch_size=32, shuffle=True)
        def val_dataloader(self):
            return DataLoader(self.val_set, batch_size=32)

    trainer.fit(model, datamodule=Songs())

The Trainer sets `self.trainer`, calls `prepare_data()`, then `setup(stage)` (before the callbacks' and the
module's `setup`), and asks for the loaders of that stage after those, as Lightning does.
A loader method that is not defined gives None (no validation in `fit`, say); `test` and `predict`
need theirs.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from audiotrain._omegaconf import as_omegaconf, config_views, is_omegaconf
from audiotrain.train.class_methods import classmethod_of_the_class


class DataModule:
    """The loaders of a task, as Lightning's `LightningDataModule`: subclass it, build the datasets in
    `setup(stage)` and return a loader (a `DataLoader`, or any iterable of batches) from each
    `*_dataloader` method the stages need. Pass it as `Trainer.fit(model, datamodule=dm)` (or in the
    loader's place); see the module docstring for an example."""

    def prepare_data(self) -> None:
        """Download or write what `setup` reads (runs before `setup`). Under data parallel it runs in one
        process per machine (local rank 0, or rank 0 where the launcher does not say), while the others
        wait; `setup` runs in every process."""

    def setup(self, stage: str) -> None:
        """Build the datasets for `stage`: "fit", "validate", "test" or "predict"."""

    def teardown(self, stage: str) -> None:
        """Release what `setup` opened: at a stage's end, before the callbacks' and the module's `teardown`,
        as in Lightning (first set up, first torn down)."""

    def on_exception(self, exception: BaseException) -> None:
        """When a stage fails (or Ctrl-C stops `fit`), after the callbacks' `on_exception`, as in Lightning:
        close what `setup` opened. An error raised here does not hide the stage's."""

    trainer: Any = None  # the Trainer running a stage with it (set before prepare_data), as in Lightning

    @classmethod
    def from_datasets(
        cls,
        train_dataset: Any = None,
        val_dataset: Any = None,
        test_dataset: Any = None,
        predict_dataset: Any = None,
        batch_size: int = 1,
        num_workers: int = 0,
        **datamodule_kwargs: Any,
    ) -> Any:
        """Lightning's `LightningDataModule.from_datasets`: a datamodule whose `*_dataloader` methods give a
        `DataLoader(dataset, batch_size, num_workers=...)` over each dataset given (the training one shuffled
        unless it is a stream). `batch_size` and `num_workers` also go to `__init__` where it takes them;
        `datamodule_kwargs` go to `__init__`. Each stage takes one dataset here (a list is one dataset of
        samples), as each takes one loader."""
        import inspect

        from audiotrain.data import DataLoader
        from audiotrain.data.dataset import is_iterable_dataset

        def loader(dataset: Any, shuffle: bool = False) -> Any:
            shuffle = shuffle and not is_iterable_dataset(dataset)  # (a stream has no order to shuffle)
            return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers)

        given = {"batch_size": batch_size, "num_workers": num_workers}
        # (object's __init__, where the class defines none, takes **kwargs only to refuse them)
        parameters = {} if cls.__init__ is object.__init__ else inspect.signature(cls.__init__).parameters
        if not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
            given = {k: v for k, v in given.items() if k in parameters}
        datamodule = cls(**datamodule_kwargs, **given)
        datasets = {
            "train": train_dataset,
            "val": val_dataset,
            "test": test_dataset,
            "predict": predict_dataset,
        }
        for stage, dataset in datasets.items():
            if dataset is not None:
                shuffle = stage == "train"
                setattr(datamodule, f"{stage}_dataloader", lambda d=dataset, s=shuffle: loader(d, s))
        return datamodule

    @property
    def hparams(self) -> Any:
        """What `save_hyperparameters()` recorded (Lightning's `LightningDataModule.hparams`): a dict whose
        keys read as attributes too. The loggers get it beside the module's (``datamodule_hparams``)."""
        from audiotrain.train.module import AttributeDict

        if "_hparams" not in self.__dict__:
            self._hparams = AttributeDict()
        return self._hparams

    @property
    def hparams_initial(self) -> Any:
        """Lightning's read-only copy of `hparams` as `save_hyperparameters` recorded them."""
        from audiotrain.train.module import AttributeDict

        return copy.deepcopy(self.__dict__.get("_hparams_initial", AttributeDict()))

    @hparams.setter
    def hparams(self, value: Any) -> None:
        from audiotrain.train.module import AttributeDict

        self._hparams = AttributeDict(value)

    def save_hyperparameters(
        self,
        *names: Any,
        ignore: str | list[str] | tuple[str, ...] | None = (),
        frame: Any = None,
        logger: bool = True,
    ) -> None:
        """Record the arguments of the `__init__` that calls this (all, or only `names`; not `ignore`), or
        the entries of one dict or `argparse.Namespace` given, as Lightning's DataModule does: they go into
        `hparams` and to the loggers (not with Lightning's `logger=False`). Paths are kept as strings; other
        values must be JSON-serialisable (a checkpoint's config holds them). `frame=`: the frame to look for
        the `__init__` from (Lightning's), default the caller's."""
        import argparse
        import inspect
        import os
        from collections.abc import Mapping

        from audiotrain.train.module import (
            _caller_frame,
            _ConfigTypeError,
            _init_arguments,
            _logger_flag,
            chosen_hyperparameters,
            ignored_names,
        )

        owner = type(self).__name__
        frame = _caller_frame(frame, owner, inspect.currentframe().f_back)
        try:
            init_arguments = _init_arguments(self, frame)
        finally:
            del frame
        self._log_hyperparams = _logger_flag(logger, owner)
        ignored = ignored_names(ignore, owner)
        whole_config = False  # save_hyperparameters(cfg) of an OmegaConf config
        if any(not isinstance(n, str) for n in names):
            if len(names) != 1 or not isinstance(names[0], (Mapping, argparse.Namespace)):
                raise _ConfigTypeError(
                    f"{owner}.save_hyperparameters({', '.join(type(n).__name__ for n in names)}): expected "
                    "__init__ argument names, or one dict or argparse.Namespace of hyperparameters"
                )
            given = names[0]
            whole_config = is_omegaconf(given)
            # Which __init__ argument it is (by identity, as Lightning's): load_from_checkpoint gives it back
            # there.
            argument = next((n for n, v in (init_arguments or {}).items() if v is given), None)
            if argument:
                self._hparams_origin = {"hparams_name": argument, "hparams_type": type(given).__name__}
            init_arguments, names = dict(vars(given) if isinstance(given, argparse.Namespace) else given), ()
        elif init_arguments is None:
            raise ValueError(f"{owner}.save_hyperparameters: call it inside {owner}.__init__")
        # (a data folder is the usual argument; a DataModule is not rebuilt from these values)
        plain = {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in init_arguments.items()}
        chosen = chosen_hyperparameters(owner, plain, names, ignored)
        # The arguments given as OmegaConf configs (Hydra's): load_from_checkpoint makes them configs again.
        if configs := sorted(n for n in chosen if is_omegaconf(plain[n])):
            self._hparams_origin = {**getattr(self, "_hparams_origin", {}), "omegaconf": configs}
        # Saved plain (JSON), kept here as configs: `self.hparams.net.depth` reads as on Lightning's.
        views = list(chosen) if whole_config else configs
        self.hparams.update(config_views(chosen, views) if views else chosen)
        self._hparams_initial = copy.deepcopy(self.hparams)

    @classmethod_of_the_class
    def load_from_checkpoint(
        cls, checkpoint_path: str | os.PathLike, map_location: Any = None, **overrides: Any
    ) -> Any:
        """Lightning's `LightningDataModule.load_from_checkpoint`: the datamodule rebuilt from the
        hyperparameters its `save_hyperparameters()` stored in a checkpoint of `fit` (`overrides`, any other
        keyword, replace them or give the ones left out), given back its `state_dict()` there. The checkpoint
        is a folder, as `fit` saves it (`trainer.checkpoint_callback.last_model_path`). `map_location` is
        accepted for Lightning's code and ignored (MLX's memory is unified)."""
        import argparse
        import inspect

        from audiotrain.train import checkpoint as ckpt
        from audiotrain.train import hook_state
        from audiotrain.train.module import _arguments_taken, with_hyperparameter_tuples

        def read(folder: Any) -> tuple[Any, dict[str, Any]]:
            return folder, ckpt.read_state(folder)

        def resolve(path: Any) -> Any:
            return ckpt.resolve_checkpoint(path)

        folder, state = ckpt.read_unreplaced(checkpoint_path, resolve, read)
        saved = (state.get("config") or {}).get("datamodule_hparams") or {}
        origin = state.get("datamodule_hparams_origin") or {}
        given = with_hyperparameter_tuples(saved, origin.get("tuples"))
        arguments = {**given, **overrides}
        # Saved from one dict or Namespace argument: given back as that argument.
        if origin.get("hparams_name"):
            taken = inspect.signature(cls.__init__).parameters
            config = {**given, **{k: v for k, v in overrides.items() if k not in taken}}
            if origin.get("hparams_type") == "Namespace":
                config = argparse.Namespace(**config)
            elif origin.get("hparams_type") == "DictConfig":
                config = as_omegaconf(config, f"{cls.__name__}.load_from_checkpoint", origin["hparams_name"])
            arguments = {origin["hparams_name"]: config, **{k: v for k, v in overrides.items() if k in taken}}
        for name in origin.get("omegaconf") or ():
            if name in arguments and name not in overrides:
                arguments[name] = as_omegaconf(arguments[name], f"{cls.__name__}.load_from_checkpoint", name)
        # As Lightning's (and the module's): a base class's arguments its subclass gives itself are left out.
        where = f"{cls.__name__}.load_from_checkpoint({os.fspath(checkpoint_path)!r})"
        arguments = _arguments_taken(cls, arguments, set(overrides), where, root=DataModule, stacklevel=3)
        try:
            datamodule = cls(**arguments)
        except TypeError as err:
            name, where = cls.__name__, os.fspath(checkpoint_path)
            raise TypeError(
                f"{name}.load_from_checkpoint({where!r}): {name}.__init__ does not take the hyperparameters "
                f"the checkpoint's DataModule saved ({sorted(saved)}) with the keywords given "
                f"({sorted(overrides)}): {err}. Was {name}.__init__ changed since, or was the checkpoint "
                "saved with another DataModule (or one without save_hyperparameters)?"
            ) from None
        hook_state.load_datamodule_state(datamodule, state)
        return datamodule

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Change a batch as it comes from the loader (overriding the module's hook of this name)."""
        return batch

    def transfer_batch_to_device(self, batch: Any, device: Any, dataloader_idx: int) -> Any:
        """Lightning's device transfer: MLX memory is unified, so the batch is already where it is used."""
        return batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Change a batch before the step gets it (overriding the module's hook of this name)."""
        return batch

    def train_dataloader(self) -> Any:
        """The training loader `fit` iterates each epoch (called once per `fit`, after `setup("fit")`).
        `fit` needs it."""
        return None

    def val_dataloader(self) -> Any:
        """The validation loader of `fit` and `validate` (after `setup("fit")` / `setup("validate")`).
        None (the default): `fit` trains without validation."""
        return None

    def test_dataloader(self) -> Any:
        """The loader `test` runs `test_step` over (after `setup("test")`); `test` needs it."""
        return None

    def predict_dataloader(self) -> Any:
        """The loader `predict` runs `predict_step` over (after `setup("predict")`); `predict` needs it."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """State of the datamodule's own to keep in every checkpoint (as Lightning's): JSON values; a
        value JSON would not give back as it was (a tuple, a set, a key that is not a string) is refused
        at the first save. Empty (the default): nothing is stored."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Take back what `state_dict` returned, in a stage given a `ckpt_path` (a resumed `fit`, `validate`,
        `test`, `predict`): after `setup`, before the `*_dataloader` methods, as in Lightning."""


__all__ = ["DataModule"]
