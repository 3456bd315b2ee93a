"""What `fit`, `validate`, `test` and `predict` accept as loaders and batches, checked with messages a user
can act on: a loader is prepared (checked, seeded) once per call, every batch is checked before it enters
a compiled step, and Lightning's loader keywords (and a `DataModule`) are accepted in place of ours. The
stages' other arguments (`ckpt_path`, `verbose`) are checked here too, with Lightning's argument order in
the messages (`STAGE_ARGUMENTS`).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from audiotrain._caller import user_stacklevel
from audiotrain._text import plural
from audiotrain.data.combined import CombinedLoader
from audiotrain.distributed import collectives
from audiotrain.train.datamodule import DataModule

import mlx.core as mx
import numpy as np


def _is_loader(obj: Any) -> bool:
    """A loader rather than a batch: iterable, but not an array or a container of arrays."""
    return isinstance(obj, Iterable) and not isinstance(
        obj, mx.array | np.ndarray | list | tuple | dict | str
    )


def prepare_loader(loader: Any, name: str, seed: int | None, evaluation: bool = False) -> bool:
    """Check that `loader` can give batches, and give a DataLoader without a seed of its own the Trainer's
    (returns whether it did). An `evaluation` DataLoader that leaves it to the Trainer repeats no sample under
    data parallel (``pad_shards=False``: `evaluate` weighs its padding batches 0), so its means are one
    process's."""
    if loader is None:
        return False
    if not isinstance(loader, Iterable):
        raise TypeError(
            f"Trainer: {name} must be iterable (a DataLoader or a list of batches), got {type(loader).__name__}"
        )
    if isinstance(loader, CombinedLoader) and name != "train_loader" and loader.mode != "sequential":
        # As Lightning 2.6.6's evaluation loops ("only supports the CombinedLoader(mode="sequential") mode"):
        # a batch of every loader at once is no evaluation batch, and failed in the step with a TypeError.
        raise TypeError(
            f'Trainer: {name} is a CombinedLoader in mode "{loader.mode}"; validation, test and predict take '
            'its "sequential" mode (each loader in turn, with its dataloader_idx): pass the loaders as a list '
            'or a dict, or CombinedLoader(loaders, "sequential")'
        )
    if isinstance(loader, CombinedLoader):
        # Each loader its own seed: with one seed, two loaders over sets of one size would shuffle alike
        # and pair the same samples in every epoch.
        loader._trainer_seeded = [
            i
            for i, x in enumerate(loader.flattened)
            if prepare_loader(x, name, None if seed is None else seed + i, evaluation)
        ]
        return bool(loader._trainer_seeded)
    if isinstance(loader, Mapping):
        raise TypeError(
            f"Trainer: {name} is a {type(loader).__name__}, whose iteration gives its keys, not batches: "
            "pass a DataLoader or a list of batches ([batch] for one)"
        )
    if evaluation and getattr(loader, "pad_shards", False) is None:
        loader.pad_shards = False
    if seed is not None and takes_trainer_seed(loader):
        give_trainer_seed(loader, seed)
        return True
    return False


def takes_trainer_seed(loader: Any) -> bool:
    """Whether `loader` takes the Trainer's seed: a DataLoader without a seed, or one still holding the seed
    a Trainer gave it (a sweep reusing one loader after `seed_everything(s)` trains each seed's own order,
    as Lightning's sampler draws from the generator that seeded); a seed the user gave it stays."""
    seed = getattr(loader, "seed", 0)
    return hasattr(loader, "set_seed") and (seed is None or seed == getattr(loader, "_trainers_seed", None))


def give_trainer_seed(loader: Any, seed: int) -> None:
    """Seed `loader` with the Trainer's `seed`, noted as the Trainer's (`takes_trainer_seed`)."""
    if isinstance(loader, CombinedLoader):
        # Each of its loaders noted too (its set_seed alone left their note on the old seed, and a later
        # fit of a sweep then took their seeds as the user's and trained the old order).
        for i in loader._trainer_seeded:
            give_trainer_seed(loader.flattened[i], seed + i)
        return
    loader.set_seed(seed)
    loader._trainers_seed = seed


def several_loaders(loader: Any) -> list[Any] | None:
    """Lightning's several loaders of a stage (a list, a tuple or a dict of them, or a CombinedLoader in
    "sequential" mode), in order (a dict's `dataloader_idx` is its keys' order, as Lightning's); None for
    anything else (one loader, a list of batches)."""
    if isinstance(loader, CombinedLoader):
        return loader.flattened if loader.mode == "sequential" else None
    if not isinstance(loader, Mapping | list | tuple) or not loader:
        return None
    items = loader.values() if isinstance(loader, Mapping) else loader
    # (the first item tells: a list of batches is read at every stage, and is not scanned whole)
    return list(items) if _is_loader(next(iter(items))) else None


def evaluation_loaders(loader: Any) -> Any:
    """An evaluation stage's loader as the Trainer holds it: Lightning's several loaders (a list or a dict of
    them) as one `CombinedLoader(loaders, "sequential")` (each prepared, sharded and stopped as a training
    CombinedLoader's; `EvaluationLoop` runs each in turn with its `dataloader_idx`); one loader in a list or
    dict is that loader, as in Lightning; anything else is left as it is."""
    if isinstance(loader, CombinedLoader):
        return loader
    several = several_loaders(loader)
    if several is None:
        return loader
    if len(several) == 1:
        return several[0]
    return CombinedLoader(loader, "sequential")


def as_given(loader: Any) -> Any:
    """A stage's loader as Lightning's `trainer.val_dataloaders` gives it: several loaders as the list or
    dict they came in (the iterables of the CombinedLoader that `evaluation_loaders` made)."""
    return loader.iterables if isinstance(loader, CombinedLoader) and loader.mode == "sequential" else loader


def combine_training_loaders(loader: Any, what: str) -> Any:
    """Lightning's several training loaders: a dict or list of them is read as a
    `CombinedLoader(loader, "max_size_cycle")` (a batch of each per step, `{"a": batch_a, "b": batch_b}`);
    a CombinedLoader's "sequential" mode is refused, as by Lightning's fit. `what` names the loader as the
    user gave it (`Trainer.fit: train_loader`)."""
    if isinstance(loader, Mapping | list | tuple) and any(
        _is_loader(x) for x in (loader.values() if isinstance(loader, Mapping) else loader)
    ):
        return CombinedLoader(loader, "max_size_cycle")
    if isinstance(loader, CombinedLoader) and loader.mode == "sequential":
        raise ValueError(
            f'{what} is a CombinedLoader(mode="sequential"): training does not support it (nor does '
            "Lightning's fit). The available modes are: ['min_size', 'max_size_cycle', 'max_size']"
        )
    return loader


def loader_len(loader: Any) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None


def why_no_batches(loader: Any) -> str:
    """Why `loader`, which yields no batches, yields none, where it can tell: its dataset is empty, or smaller
    than a batch that `drop_last` drops (one sample, batches of 4); else ``""``. Said after a colon."""
    size = loader_len(getattr(loader, "dataset", None))
    if size == 0:
        return ": its dataset is empty"
    if size is not None and getattr(loader, "drop_last", False):
        batch = getattr(loader, "batch_size", None)
        of = f" of {batch}" if isinstance(batch, int) else ""
        samples = plural(size, "sample")
        return f": its dataset has {samples}, fewer than a batch{of}, and drop_last=True drops them"
    return ""


def ranks_read_own_streams(loader: Any) -> bool:
    """Under data parallel, whether each rank reads a stream of its own whose end no one knows in advance
    (a stream split by rank, `DataLoader(..., distributed=False)`): its ranks may run out of batches at
    different steps, also before a `limit_train_batches`. A DataLoader that shards the stream itself gives
    every rank equally many."""
    if collectives.world_size() == 1:
        return False
    if not (getattr(loader, "reads_stream", False) or loader_len(loader) is None):
        return False
    shard = getattr(loader, "_shard", None)
    return not (callable(shard) and shard() is not None)


def warn_of_unsharded_user_order(loader: Any, stage: str = "train", where: str = "Trainer.fit") -> None:
    """Under data parallel, warn on rank 0 where a training DataLoader's own sampler or batch_sampler (which
    the loader leaves unsharded, `distributed` unset) gave every rank the very same batches this epoch: each
    step then trains on world-size copies of one batch, which a torch user's P x K (class-balanced) batch
    sampler does unless it splits itself by rank. The ranks' order fingerprints are compared (one small
    all-gather, which every rank makes whatever its loader, so that the collective stays in step); a sampler
    that shards itself differs between the ranks and is not warned of, nor `distributed=False`, which says
    that every rank is meant to read the whole order. For a "val" or "test" loader the means are unchanged
    (every rank's are the same), but what a hook gathers from the ranks for a figure of the whole set (the
    embeddings behind an equal error rate) holds each sample world-size times."""
    if collectives.world_size() == 1:
        return
    user_order = (
        getattr(loader, "_user_order", False) is True and getattr(loader, "distributed", False) is None
    )
    digests = collectives.all_gather_object(getattr(loader, "_digest", None) if user_order else None)
    if digests[0] is None or len(set(digests)) != 1 or not collectives.is_main_process():
        return
    kind = "batch_sampler" if getattr(loader, "_batch_sampler", None) is not None else "sampler"
    user = getattr(loader, "_batch_sampler", None) if kind == "batch_sampler" else loader._sampler
    n = len(digests)
    if stage == "train":
        what, effect = (
            "training",
            f"this epoch (a {kind} you pass is not sharded by the DataLoader), so each ",
        )
        effect += f"step trains on {n} copies of one batch"
    else:
        what = "validation" if stage == "val" else stage
        effect = (
            f"(a {kind} you pass is not sharded by the DataLoader), so every rank reads the same samples: "
            f"what a hook gathers from the ranks (all_gather_object, self.all_gather: the embeddings behind "
            f"a whole-set score) holds each sample {n} times"
        )
    warnings.warn(
        f"{where}: the {what} DataLoader's {kind} {type(user).__name__} gave all {n} ranks the same "
        f"batches of indices {effect}. Shard it by rank (audiotrain.distributed.rank() and "
        "world_size(): each rank its own batches, as torch's DistributedSampler does), or pass "
        "DataLoader(..., distributed=False) where every rank is meant to read these indices (the same "
        "batches, or a dataset of each rank's own)",
        stacklevel=user_stacklevel(),
    )


def every_rank_has_a_batch(has_batch: bool, epoch: int, batch_idx: int) -> bool:
    """Whether every rank has its next training batch (one small all-gather per step, only for
    `ranks_read_own_streams`). A rank whose stream ended took its epoch's end into a collective while the
    others were still in a step's gradient all-reduce: the two were paired with each other, and the job
    failed with "negative dimensions are not allowed" or a lost connection (or hung). Where any rank is out,
    every rank ends the epoch there, leaving out the batches the others still had, with a warning on rank
    0."""
    flags = mx.distributed.all_gather(mx.array([int(has_batch)]), group=collectives.group()).tolist()
    if all(flags):
        return True
    if any(flags) and collectives.rank() == 0:
        ended = ", ".join(str(r) for r, f in enumerate(flags) if not f)
        warnings.warn(
            f"Trainer.fit: epoch {epoch}: the training streams of rank(s) {ended} ended after {batch_idx} "
            "batches while the other ranks still had batches; every step averages the gradients of all "
            "ranks, so every rank ends the epoch here and the rest of the other ranks' streams is left out. "
            "A stream split by rank (distributed=False) should give every rank the same number of batches "
            "(shards of equal size, as many shards per rank and worker), or let the DataLoader shard the "
            "stream (distributed=True)",
            stacklevel=user_stacklevel(),
        )
    return False


def refuse_unequal_epochs(n_batches: int | None, where: str = "Trainer.fit") -> None:
    """Under data parallel, raise ValueError on every rank where the ranks' training loaders give different
    numbers of batches an epoch (each step averages every rank's gradients: a rank out of batches left the
    others waiting in their next all-reduce, and the job ended in a lost-connection error). One small
    all-gather at the start of a fit; loaders without a length are not checked (their ends are not
    known)."""
    if collectives.world_size() == 1:
        return
    counts = collectives.all_gather_object(n_batches)
    if all(c is None for c in counts) or len(set(counts)) == 1:
        return
    shown = ", ".join(f"rank {r}: {'no length' if c is None else c}" for r, c in enumerate(counts))
    raise ValueError(
        f"{where}: the ranks' training loaders give different numbers of batches an epoch ({shown}); every "
        "step averages the gradients of all ranks, so each rank must run the same number of steps. "
        "audiotrain.DataLoader shards a dataset into equal parts on its own; a loader that splits the data "
        "by rank itself must give every rank the same number of batches (pad or drop the remainder)"
    )


def check_batch(batch: Any, path: str = "batch", none_ok: bool = False) -> None:
    """Batches enter a compiled function: every leaf must be an mx.array (or None, with `none_ok`: a
    CombinedLoader's "max_size" gives None for a loader that has ended)."""
    if isinstance(batch, mx.array) or (none_ok and batch is None):
        return
    if isinstance(batch, dict):
        for k, v in batch.items():
            check_batch(v, f"{path}[{k!r}]", none_ok)
        return
    if isinstance(batch, (list, tuple)):
        for i, v in enumerate(batch):
            check_batch(v, f"{path}[{i}]", none_ok)
        return
    kind = type(batch).__name__
    if isinstance(batch, np.ndarray) and batch.dtype.kind in "OSUV":
        # Not a conversion left undone (the default collate converts numbers): values no step can take.
        what = "text" if batch.dtype.kind in "SU" else "Python objects"
        raise TypeError(
            f"{path} is a numpy array of {what} (dtype {batch.dtype}), but batch leaves must be mx.array: "
            "give the field a number in every sample (a missing value, or a number read as text?), or drop "
            "it in collate_fn before the batch reaches the Trainer"
        )
    hint = (
        "convert it with the DataLoader's default collate or an mlx_transforms function "
        "(numpy → mx.array on the main thread)"
        if isinstance(batch, np.ndarray | np.generic | int | float)
        else "use audiotrain.DataLoader over the same dataset (it collates torch tensors into "
        "mx.array), or convert in an mlx_transforms function"
        if type(batch).__module__.startswith("torch")
        else "keep only arrays in batches that reach the Trainer (drop names and other metadata "
        "in collate_fn or before the batch leaves the dataset)"
    )
    raise TypeError(f"{path} is a {kind}, but batch leaves must be mx.array: {hint}")


_LOADER_METHODS = {
    "train": "train_dataloader",
    "val": "val_dataloader",
    "test": "test_dataloader",
    "predict": "predict_dataloader",
}


def loader_source(method: str, datamodule: Any, module: Any, loaders: dict[str, Any]) -> Any:
    """What gives the loaders of a stage that were not passed: the datamodule; without one, the module,
    where it defines the `*_dataloader` method of a loader not passed (Lightning asks the module per loader:
    `fit(model, train_loader)` validates on the module's `val_dataloader()`); None where nothing does."""
    if datamodule is None:
        if any(
            value is None and callable(getattr(module, _LOADER_METHODS[name], None))
            for name, value in loaders.items()
        ):
            return module
        return None
    if any(v is not None for v in loaders.values()):
        raise TypeError(f"Trainer.{method}: pass loaders or datamodule=, not both")
    if isinstance(datamodule, type):  # (its methods would be called unbound: "missing 'self'")
        raise TypeError(
            f"Trainer.{method}(datamodule=...): got the class {datamodule.__name__}, not an instance of it: "
            f"pass {datamodule.__name__}(...)"
        )
    if not callable(getattr(datamodule, "setup", None)):
        raise TypeError(
            f"Trainer.{method}(datamodule=...): {type(datamodule).__name__} is not a DataModule (no setup method)"
        )
    return datamodule


def prepare_data(trainer: Any, datamodule: Any, module: Any) -> None:
    """Lightning's `prepare_data` of the datamodule and of the module, with `datamodule.trainer` set first
    (its hooks read `self.trainer.world_size`, as in Lightning; the stage attached the module before, with
    its callbacks: `Trainer._attach_module_callbacks`)."""
    if datamodule is not None:
        from audiotrain.train.hooks import refuse_uncallable_datamodule_hooks

        refuse_uncallable_datamodule_hooks(datamodule)  # (before its first hook: prepare_data)
        with contextlib.suppress(AttributeError):  # (an object that takes no attributes: its own business)
            datamodule.trainer = trainer
    from audiotrain.train.module import TrainModule

    for owner in (datamodule, module):
        if not callable(getattr(owner, "prepare_data", None)):
            continue
        if isinstance(owner, TrainModule) and type(owner).prepare_data is TrainModule.prepare_data:
            continue  # (the default, which does nothing: no barrier for it)
        # As in Lightning: one process per machine downloads or writes what `setup` reads, while the others
        # wait for it (several writing the same files at once would race).
        if collectives.local_rank() == 0:
            owner.prepare_data()
        collectives.barrier()


def defines_loader(source: Any, name: str) -> bool:
    """Whether `source` (see `loader_source`) defines the `*_dataloader` method of loader `name` (DataModule's
    default, which gives None, is no definition): Lightning's `is_overridden`, which its `enable_validation`
    reads before the loaders are asked for."""
    getter = getattr(type(source), _LOADER_METHODS[name], None)
    return callable(getter) and getter is not getattr(DataModule, _LOADER_METHODS[name])


def loaders_from(source: Any, loaders: dict[str, Any]) -> dict[str, Any]:
    """The loaders passed, and from `source` (see `loader_source`) the others, asked once its `setup` has
    run. A `*_dataloader` method that is not defined gives None."""
    out = dict(loaders)
    for name, value in loaders.items():
        getter = getattr(source, _LOADER_METHODS[name], None)
        if value is None and callable(getter):
            out[name] = getter()
            returned = f"{type(source).__name__}.{_LOADER_METHODS[name]}() returned"
            if name == "train":
                out[name] = combine_training_loaders(out[name], returned)
            else:
                out[name] = evaluation_loaders(out[name])
    return out


def missing_loader(method: str, name: str, source: Any, stage: str) -> str:
    """The message for a stage without batches: where they can come from, and why none came."""
    getter = _LOADER_METHODS[stage]
    if stage == "train":
        where = "the training batches (train_loader, train_dataloaders= or datamodule=)"
    else:
        where = f"the batches ({name}, dataloaders= or datamodule=)"
    if source is None:
        return f"Trainer.{method}: pass {where}, or define {getter} on the module"
    return f"Trainer.{method}: {type(source).__name__}.{getter} is not defined or returned None; pass {where}"


# Each stage's positional arguments, as Lightning orders them (for messages about an argument out of place).
STAGE_ARGUMENTS = {
    "fit": "model, train_loader, val_loader, datamodule, ckpt_path, weights_only",
    "validate": "model, val_loader, ckpt_path, verbose, datamodule, weights_only",
    "test": "model, test_loader, ckpt_path, verbose, datamodule, weights_only",
    "predict": "model, dataloaders, datamodule, return_predictions, ckpt_path, weights_only",
}


def shown_type(value: Any) -> str:
    """A value in a message about its type: a plain value as written, an object by its type."""
    return repr(value) if isinstance(value, bool | int | float) else f"a {type(value).__name__}"


def checkpoint_argument(method: str, ckpt_path: Any) -> str | os.PathLike | None:
    """`ckpt_path` as given, where it is a path (a checkpoint folder, "last" or "best") or None. Anything else
    is refused by name: given by position in another order than Lightning's, a DataModule or a flag lands
    there, and would otherwise be read as a checkpoint or skipped as none."""
    if ckpt_path is None or isinstance(ckpt_path, str | os.PathLike):
        return ckpt_path
    raise TypeError(
        f"Trainer.{method}: ckpt_path must be a checkpoint folder, 'last' or 'best' (a str or os.PathLike), "
        f"got {shown_type(ckpt_path)} (the arguments in order: {STAGE_ARGUMENTS[method]})"
    )


def check_verbose(method: str, verbose: Any) -> None:
    if not isinstance(verbose, bool):
        raise TypeError(
            f"Trainer.{method}: verbose must be True or False, got {shown_type(verbose)} (the arguments in "
            f"order: {STAGE_ARGUMENTS[method]})"
        )


def check_weights_only(method: str, weights_only: Any) -> None:
    """Lightning's `weights_only=` of the stage methods (how torch.load unpickles `ckpt_path`): accepted,
    and it changes nothing, since a checkpoint here holds no pickle (safetensors and JSON only)."""
    if weights_only is not None and not isinstance(weights_only, bool):
        raise TypeError(
            f"Trainer.{method}: weights_only must be True, False or None, got {shown_type(weights_only)} (the "
            f"arguments in order: {STAGE_ARGUMENTS[method]})"
        )


def datamodule_given_as_loader(method: str, loader: Any, datamodule: Any) -> tuple[Any, Any]:
    """Lightning's `fit(model, dm)` / `test(model, dm)`: a DataModule in the loader's place is the
    datamodule. Returns (loader, datamodule)."""
    stages = ("train", "val", "test", "predict")
    duck = callable(getattr(loader, "setup", None)) and any(
        callable(getattr(loader, f"{stage}_dataloader", None)) for stage in stages
    )
    if not (isinstance(loader, DataModule) or duck):
        return loader, datamodule
    if datamodule is not None:
        raise TypeError(f"Trainer.{method}: got a DataModule as the loader and datamodule= too; pass one")
    return None, loader


def one_loader(method: str, name: str, value: Any, alias: str, alias_value: Any) -> Any:
    """A loader given by our name or Lightning's (`train_dataloaders`, ...), not both."""
    if value is not None and alias_value is not None:
        raise TypeError(f"Trainer.{method}: got both {name} and {alias}= (Lightning's name for it); pass one")
    return alias_value if value is None else value
