"""The `Callback` base class: hooks the Trainer calls by name between compiled steps."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from audiotrain.train.module import TrainModule
    from audiotrain.train.trainer import Trainer

    import mlx.core as mx


class _GoneReference:
    """Stands for a `_RunReference` in a pickled callback (the Trainer of its last fit, the module it
    averaged): those objects stay in the process that pickled it, so called, it gives None, as a
    `weakref.ref` to an object that is gone does (a copy then starts a new run in its next fit)."""

    def __call__(self) -> None:
        return None


class _RunReference(weakref.ref):
    """A weak reference a callback keeps to the Trainer of its fit or the module it averages. Pickled
    (multiprocessing, Ray, joblib, a sweep's results), it becomes a `_GoneReference`, where a plain
    `weakref.ref` fails: "cannot pickle 'weakref.ReferenceType' object". `copy.copy` and `copy.deepcopy`
    keep it, as they keep a plain one: a copy made in this process still knows which run it belongs to.
    Only these references change; weak references of a user's own callback stay as Python has them."""

    __slots__ = ()

    def __reduce__(self) -> tuple[type, tuple]:
        return _GoneReference, ()

    def __copy__(self) -> _RunReference:
        return self

    def __deepcopy__(self, memo: dict) -> _RunReference:
        return self


class Callback:
    """Base class: override the hooks you need. All hooks are optional. At every hook the callbacks run
    first (in the order given to the Trainer), then the module, as in Lightning.

    `on_exception` runs when `fit` fails, and with a `KeyboardInterrupt` when Ctrl-C stops it (as in
    Lightning), before the interrupted checkpoint is saved.

    The hooks' parameters are positional-only (the Trainer passes them so): an override may name them as
    it likes, `pl_module` as in Lightning or `module`, and type-checks either way.
    """

    @property
    def state_key(self) -> str:
        """The name this callback's `state_dict()` is saved under in a checkpoint: the class name.
        Two callbacks of one class that keep state are refused unless this gives each its own."""
        return type(self).__name__

    def _generate_state_key(self, **kwargs: Any) -> str:
        """Lightning's helper for a `state_key` that tells instances of one class apart: the class name and
        `kwargs`, ``self._generate_state_key(monitor="loss")`` is ``"MyCallback{'monitor': 'loss'}"``."""
        return f"{type(self).__qualname__}{kwargs!r}"

    def setup(self, trainer: Trainer, module: TrainModule, stage: str, /) -> None: ...
    def teardown(self, trainer: Trainer, module: TrainModule, stage: str, /) -> None: ...
    def on_fit_start(self, trainer: Trainer, module: TrainModule, /) -> None: ...
    def on_fit_end(self, trainer: Trainer, module: TrainModule, /) -> None: ...
    def on_train_start(self, trainer: Trainer, module: TrainModule, /) -> None: ...
    # Any and `*args, **kwargs`: seed 003's `on_train_end(self, trainer, state, result)` (see
    # audiotrain.training_hooks) type-checks as an override too, as Lightning's `(trainer, pl_module)` does.
    def on_train_end(self, trainer: Any, module: Any, /, *args: Any, **kwargs: Any) -> None:
        """When training ends (Lightning's `(trainer, pl_module)`). A callback given to `create_trainer` may
        define seed 003's `on_train_end(self, trainer, state, result)` instead, called when
        `ConfiguredTrainer.train` returns."""

    def on_train_epoch_start(self, trainer: Trainer, module: TrainModule, /) -> None: ...
    def on_train_epoch_end(self, trainer: Trainer, module: TrainModule, /) -> None: ...
    def on_train_batch_start(
        self, trainer: Trainer, module: TrainModule, batch: Any, batch_idx: int, /
    ) -> None: ...
    def on_train_batch_end(
        self, trainer: Trainer, module: TrainModule, outputs: dict[str, Any], batch: Any, batch_idx: int, /
    ) -> None: ...
    def on_sanity_check_start(self, trainer: Trainer, module: TrainModule, /) -> None: ...
    def on_sanity_check_end(self, trainer: Trainer, module: TrainModule, /) -> None: ...
    def on_validation_start(self, trainer: Trainer, module: TrainModule, /) -> None: ...
    def on_validation_epoch_start(self, trainer: Trainer, module: TrainModule, /) -> None: ...
    def on_validation_batch_start(
        self, trainer: Trainer, module: TrainModule, batch: Any, batch_idx: int, dataloader_idx: int = 0, /
    ) -> None: ...
    def on_validation_batch_end(
        self,
        trainer: Trainer,
        module: TrainModule,
        outputs: dict[str, Any],
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
        /,
    ) -> None: ...
    def on_validation_epoch_end(self, trainer: Trainer, module: TrainModule, /) -> None: ...
    def on_validation_end(self, trainer: Trainer, module: TrainModule, /) -> None: ...
    def on_test_start(self, trainer: Trainer, module: TrainModule, /) -> None: ...
    def on_test_epoch_start(self, trainer: Trainer, module: TrainModule, /) -> None: ...
    def on_test_batch_start(
        self, trainer: Trainer, module: TrainModule, batch: Any, batch_idx: int, dataloader_idx: int = 0, /
    ) -> None: ...
    def on_test_batch_end(
        self,
        trainer: Trainer,
        module: TrainModule,
        outputs: dict[str, Any],
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
        /,
    ) -> None: ...
    def on_test_epoch_end(self, trainer: Trainer, module: TrainModule, /) -> None: ...
    def on_test_end(self, trainer: Trainer, module: TrainModule, /) -> None: ...
    def on_predict_start(self, trainer: Trainer, module: TrainModule, /) -> None: ...
    def on_predict_epoch_start(self, trainer: Trainer, module: TrainModule, /) -> None: ...
    def on_predict_batch_start(
        self, trainer: Trainer, module: TrainModule, batch: Any, batch_idx: int, dataloader_idx: int = 0, /
    ) -> None: ...
    def on_predict_batch_end(
        self,
        trainer: Trainer,
        module: TrainModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
        /,
    ) -> None:
        """After `predict_step`: `outputs` is its output (write it here to predict with
        `return_predictions=False` and keep nothing, see `BasePredictionWriter`)."""

    def on_predict_epoch_end(self, trainer: Trainer, module: TrainModule, /) -> None: ...
    def on_predict_end(self, trainer: Trainer, module: TrainModule, /) -> None: ...
    def on_save_checkpoint(
        self, trainer: Trainer, module: TrainModule, checkpoint: dict[str, Any], /
    ) -> None: ...
    def on_load_checkpoint(
        self, trainer: Trainer, module: TrainModule, checkpoint: dict[str, Any], /
    ) -> None:
        """When `fit` resumes, before `load_state_dict`, as in Lightning (and after the module's, in
        `validate`/`test`/`predict` given a `ckpt_path`, as there, where `load_state_dict` is not called
        here, unlike Lightning's): `checkpoint` is the checkpoint's
        trainer_state.json, with what `on_save_checkpoint` added; a state saved in an older form may be
        rewritten in ``checkpoint["callbacks"][self.state_key]`` here, and `load_state_dict` gets that."""

    def on_exception(self, trainer: Trainer, module: TrainModule, exception: BaseException, /) -> None:
        """After an error in a stage, or a stop: a stop signal's is a KeyboardInterrupt whose `signum` names
        the signal (``signal.SIGTERM``: a preemption, Lightning's SIGTERMException; ``signal.SIGINT``:
        Ctrl-C)."""

    def on_restore_structure(
        self, trainer: Trainer, module: TrainModule, checkpoint: dict[str, Any], /
    ) -> None:
        """While `fit` resumes from a checkpoint, before any of its arrays load: a callback that changed how
        training is built (an optimizer's added parameter groups, the accumulation window) builds it again
        as the checkpoint's run had it, so that the optimizer's and the step's saved state load into the
        same structure. `checkpoint`: its trainer_state.json (this callback's state under
        ``checkpoint["callbacks"][state_key]``, not yet given to `load_state_dict`). Not Lightning's: its
        checkpoints hold the optimizer as torch objects; here the Trainer rebuilds the compiled step after
        it where `accumulate_grad_batches` changed."""

    def state_dict(self) -> dict[str, Any]:
        """What this callback must carry over a resume (a counter, a best score), saved in every
        checkpoint under `state_key`. Numbers, strings, lists and dicts with string keys, kept as JSON,
        and arrays: an `mx.array` or a numpy array comes back as one of its dtype and shape, bit for bit (as
        Lightning gives tensors back; its data in the checkpoint's state_arrays.safetensors); a 0-d array
        comes back as the number it holds. A tuple, a set
        or a key that is not a string is refused at the first save, naming the field. Default: nothing."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what `state_dict()` returned, when `fit` resumes from a checkpoint (or
        `load_checkpoint` runs). Not called for a checkpoint saved without this callback (no entry under
        its `state_key`), nor where what it saved was empty, as in Lightning."""

    def state_arrays(self) -> dict[str, mx.array]:
        """Arrays this callback must carry over a resume, which JSON would store as long lists of text
        (StochasticWeightAveraging's average weights): name -> `mx.array`. Saved in every checkpoint's
        callbacks.safetensors as ``<state_key>/<name>``, beside `state_dict()`. Default: none."""
        return {}

    def load_state_arrays(self, arrays: dict[str, mx.array]) -> None:
        """Take back what `state_arrays()` returned, after `load_state_dict`, when `fit` resumes from a
        checkpoint that holds this callback's state (`{}` where it saved no arrays, or the checkpoint has no
        callbacks.safetensors: an older one). The file's header and finiteness are checked already; check
        the names, shapes and dtypes you expect and raise ValueError naming the tensor otherwise (the
        Trainer names the file)."""


class Checkpoint(Callback):
    """Lightning's base class of the callbacks that save checkpoints (`lightning.pytorch.callbacks`
    `.Checkpoint`).

    A subclass of your own (one that saves with ``trainer.save_checkpoint(path)`` in its hooks) is the fit's
    checkpointing, as in Lightning: the Trainer adds no default `ModelCheckpoint` beside it
    (``enable_checkpointing=False`` with one in ``callbacks`` is refused), and its hooks run after every
    other callback's (at ``on_train_epoch_end`` and ``on_validation_end`` after the module's too), so a
    checkpoint it saves holds their state for that epoch. `ModelCheckpoint` and `OnExceptionCheckpoint`
    are Checkpoints; ``trainer.checkpoint_callback(s)`` are the ModelCheckpoints alone (where
    ``ckpt_path="best"`` / ``"last"`` and ``best_model_path`` come from)."""
