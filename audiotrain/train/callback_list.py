"""The Trainer's callbacks, and the one place that knows about particular ones.

The Trainer calls hooks by name and saves/restores every callback's state through this list. What is
special about some callbacks lives here, not in the loop: the defaults (a progress bar, a model summary,
a `last` checkpoint), checkpointing running after every other callback, the clip a `GradientClipper`
configures, Lightning's `ckpt_path="best"`/`"last"`, and the `last` copy a Ctrl-C leaves.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from audiotrain._caller import user_stacklevel
from audiotrain.distributed import collectives
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.callback import Callback, Checkpoint
from audiotrain.train.callbacks import (
    EarlyStopping,
    GradientClipper,
    ModelCheckpoint,
    ModelSummary,
    OnExceptionCheckpoint,
    ProgressBar,
    ReduceLROnPlateau,
)
from audiotrain.train.hook_logs import running_hook
from audiotrain.train.hooks import user_written_hook
from audiotrain.train.profilers import PassThroughProfiler, Profiler

import mlx.core as mx

# The callbacks that monitor a metric: in the epoch-end hooks they run after the others and the module, so
# they see what those logged there (Lightning's order for on_train_epoch_end; a Checkpoint of the user's too).
_MONITORING = (Checkpoint, EarlyStopping, ReduceLROnPlateau)


def _saves_checkpoints(cb: Any) -> bool:
    """A ModelCheckpoint or a Checkpoint of the user's (Lightning's base class): the fit's checkpointing,
    which replaces the default `last` one. An OnExceptionCheckpoint saves only on an error: not one."""
    return isinstance(cb, Checkpoint) and not isinstance(cb, OnExceptionCheckpoint)


def _in_order(callbacks: list) -> list:
    """The callbacks in the order their hooks run: the user's, then OnExceptionCheckpoint, then
    ModelCheckpoint and other Checkpoints (a stable sort: each kind keeps its order)."""
    return sorted(
        callbacks, key=lambda cb: 2 if _saves_checkpoints(cb) else isinstance(cb, OnExceptionCheckpoint)
    )


def _refuse_several_bars(callbacks: list, where: str) -> None:
    """Lightning refuses a second progress bar: two would draw over each other (or print each line twice)."""
    bars = [cb for cb in callbacks if isinstance(cb, ProgressBar)]
    if len(bars) > 1:
        raise ValueError(
            f"{where}: {len(bars)} progress bars ({', '.join(bar.describe() for bar in bars)}): only one is "
            "supported, as in Lightning; keep one (the Trainer adds a ProgressBar of its own unless one is passed "
            "or enable_progress_bar=False)"
        )


class CallbackList(list):
    """A list of `Callback`s (so `trainer.callbacks` reads as one), with the Trainer's uses of them."""

    def __init__(
        self,
        callbacks: Any,
        progress_bar: bool,
        checkpointing: bool,
        switched_off: Iterable[str] = (),
        model_summary: bool = False,
        fast_dev_run: bool = False,
    ):
        if isinstance(callbacks, str) or not (
            callbacks is None or isinstance(callbacks, Callback | Iterable)
        ):
            raise TypeError(
                f"Trainer(callbacks={callbacks!r}): expected a Callback, a list of Callbacks or None"
            )
        callbacks = [callbacks] if isinstance(callbacks, Callback) else list(callbacks or [])
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"Trainer(callbacks=...): {cb!r} is not an audiotrain Callback instance")
        # A callback the user passed is never dropped: switching its kind off as well is a contradiction,
        # refused as Lightning does, rather than a run without the checkpoints (or bar) they asked for.
        # (`switched_off` names the flags the user set False; fast_dev_run still drops the kind quietly, as
        # in Lightning.)
        kinds = (
            ("enable_progress_bar", lambda c: isinstance(c, ProgressBar)),
            ("enable_checkpointing", _saves_checkpoints),
            # (Lightning keeps a ModelSummary passed: here it is refused alike)
            ("enable_model_summary", lambda c: isinstance(c, ModelSummary)),
        )
        for flag, kind in kinds:
            passed = [c for c in callbacks if kind(c)]
            if passed and flag in switched_off:
                raise ValueError(
                    f"Trainer({flag}=False) conflicts with the {type(passed[0]).__name__} in "
                    f"callbacks=[...]: remove that callback, or drop {flag}=False"
                )
        _refuse_several_bars(callbacks, "Trainer(callbacks=[...])")  # (on every rank: rank 0 alone keeps one)
        self._bar_wanted = progress_bar
        self.profiler: Profiler = PassThroughProfiler()  # (the Trainer's: each callback's hooks timed)
        if progress_bar and not any(isinstance(c, ProgressBar) for c in callbacks):
            callbacks.append(ProgressBar())
        if not progress_bar:
            callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
        # Lightning's default ModelSummary (one passed replaces it). On every rank: it prints on rank 0 alone.
        if model_summary and not any(isinstance(c, ModelSummary) for c in callbacks):
            callbacks.append(ModelSummary())
        if checkpointing and not any(_saves_checkpoints(c) for c in callbacks):
            default = ModelCheckpoint(save_last=True, save_top_k=0)
            default._trainers_default = True  # (its best_model_path is its `last`, the newest save)
            callbacks.append(default)
        if not checkpointing:
            callbacks = [c for c in callbacks if not isinstance(c, ModelCheckpoint)]
        # (named where ckpt_path="best"/"last" finds no ModelCheckpoint: the user may have passed one)
        self._checkpoints_dropped_by = "fast_dev_run" if fast_dev_run else None
        # Checkpointing runs after every other callback at each hook, as in Lightning: a checkpoint
        # taken at an epoch end then holds EarlyStopping's (or any callback's) state for that epoch; an
        # OnExceptionCheckpoint's on_exception saves after the others' have run (a weight-averaging
        # callback puts the training weights back there).
        super().__init__(_in_order(callbacks))

    def call(
        self,
        hook: str,
        trainer: Any,
        module: Any,
        *args: Any,
        monitoring: bool | None = None,
        guard: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
        every: bool = False,
    ) -> None:
        """Call `hook` on every callback, or (`monitoring` True / False) on those that monitor a metric
        (ModelCheckpoint, EarlyStopping) / the others, as Lightning splits `on_train_epoch_end`. Each call
        runs inside `guard()` (the Trainer's: a KeyboardInterrupt raised in one callback ends that call
        alone). `every`: an error in one callback's hook does not keep the later ones from running, and the
        first such error is raised once all have run (`teardown`: a user's callback failing there kept
        ModelCheckpoint from giving its folder back, which stayed claimed while the process lived)."""
        timed = not isinstance(self.profiler, PassThroughProfiler)
        first_error: BaseException | None = None
        with running_hook(trainer, hook, args):  # (what `pl_module.log` in it reads: hook_logs.record)
            for cb in self:
                if monitoring is None or isinstance(cb, _MONITORING) == monitoring:
                    try:
                        with guard():
                            if timed:
                                with self.profiler.profile(f"[Callback]{cb.state_key}.{hook}"):
                                    getattr(cb, hook)(trainer, module, *args)
                            else:
                                getattr(cb, hook)(trainer, module, *args)
                    except BaseException as error:
                        name_the_hook(error, cb, hook)
                        if not every:
                            raise
                        if first_error is None:
                            first_error = error
        if first_error is not None:
            raise first_error

    def call_quietly(self, hook: str, trainer: Any, module: Any, *args: Any) -> None:
        """For `on_exception` and `teardown` while an error is on its way out: one callback failing
        must not hide the error, nor keep the others from cleaning up."""
        for cb in self:
            with contextlib.suppress(Exception):
                getattr(cb, hook)(trainer, module, *args)

    def merge_module_callbacks(self, module: Any) -> list[str]:
        """Lightning's `configure_callbacks`: the module's callbacks join the Trainer's, each replacing the
        Trainer's callbacks of its class or a parent class (a module's EarlyStopping, or a subclass of it,
        replaces the Trainer's); checkpointing still runs last. Returns the class names of the Trainer's
        callbacks replaced, sorted (Lightning says them: `Trainer._attach`)."""
        where = f"{type(module).__name__}.configure_callbacks"
        given = module.configure_callbacks()
        given = [given] if isinstance(given, Callback) else given
        # (None adds nothing, as in Lightning: a configure_callbacks whose `if` returned nothing)
        given = [] if given is None else given
        if isinstance(given, str) or not isinstance(given, Iterable):
            raise TypeError(f"{where}() must return a Callback or a list of Callbacks, got {given!r}")
        given = list(given)
        for cb in given:
            if not isinstance(cb, Callback):
                raise TypeError(f"{where}(): {cb!r} is not an audiotrain Callback instance")
            if isinstance(cb, GradientClipper):  # (the clip is built into the compiled step with the Trainer)
                raise TypeError(
                    f"{where}(): a GradientClipper must be given to the Trainer (Trainer(callbacks=[...]) or "
                    "Trainer(gradient_clip_val=...)): the clip is set when the Trainer is made"
                )
        # As Lightning's: a Trainer callback is replaced by a module callback of its class or of a subclass
        # (a module's MyEarlyStopping(EarlyStopping) replaces the Trainer's EarlyStopping), never a plain
        # Callback() the Trainer was given.
        replaced = {
            type(cb)
            for cb in self
            if type(cb) is not Callback and any(issubclass(type(module_cb), type(cb)) for module_cb in given)
        }
        # A module's progress bar (a TQDMProgressBar too) replaces the Trainer's, whatever its class: two bars
        # would draw over each other. With enable_progress_bar=False it is dropped, as the Trainer's own is
        # (on ranks other than 0 it is kept and disables itself, as Lightning's).
        bars = [cb for cb in given if isinstance(cb, ProgressBar)]
        _refuse_several_bars(bars, f"{where}()")
        kept = [cb for cb in self if type(cb) not in replaced and not (bars and isinstance(cb, ProgressBar))]
        if not self._bar_wanted:
            given = [cb for cb in given if not isinstance(cb, ProgressBar)]
        names = sorted({type(cb).__name__ for cb in self if not any(cb is k for k in kept)})
        self[:] = _in_order([*kept, *given])
        return names

    # -- what particular callbacks configure -------------------------------------------------------
    def clip(self, value: float | None, algorithm: str) -> tuple[float | None, str]:
        """The Trainer's clip, or a `GradientClipper`'s (they must agree when both are given)."""
        for cb in self:
            if isinstance(cb, GradientClipper):
                theirs = cb.clip_settings()
                if value is not None and theirs != (value, algorithm):
                    raise ValueError(
                        f"GradientClipper({theirs[1]}={theirs[0]}) conflicts with Trainer(gradient_clip_val="
                        f"{value}, gradient_clip_algorithm={algorithm!r}); use one of them"
                    )
                value, algorithm = theirs
        return value, algorithm

    def checkpoint_path(self, path: Any) -> Any:
        """Lightning's `ckpt_path="best"` / `"last"`. "last" is the `last` of the first ModelCheckpoint that
        keeps one (`save_last`; Lightning looks at every ModelCheckpoint's and takes the newest). "best" is
        the best of the first ModelCheckpoint that monitors a metric (where Lightning takes the first one
        and warns); of one that monitors none it is its newest save, as Lightning's default ModelCheckpoint
        keeps the newest as best: its `last` where it keeps no top-k (audiotrain's default). An
        OnExceptionCheckpoint's save on disk counts as a "last" too, taken where it is the newer (Lightning's)."""
        if str(path) not in ("best", "last"):
            return path
        failures = self.on_exception_saves() if str(path) == "last" else []
        if failures:
            # Lightning's "last" is the newest of the OnExceptionCheckpoints' saves and the ModelCheckpoints'
            # `last`: a fit that failed after its last `last` goes on from where it failed.
            with contextlib.suppress(ValueError):
                # (first: on a tie, a Ctrl-C's save there and its `last` hard link, the `last` is named)
                failures.insert(0, Path(self._model_checkpoint_path(path)))
            return str(max(failures, key=_saved_at))
        return self._model_checkpoint_path(path)

    def on_exception_saves(self) -> list[Path]:
        """The checkpoints the OnExceptionCheckpoints saved that are on disk (an earlier failed fit's)."""
        return [
            cb.ckpt_path
            for cb in self
            if isinstance(cb, OnExceptionCheckpoint) and (cb.ckpt_path / ckpt.STATE_FILE).is_file()
        ]

    def _model_checkpoint_path(self, path: str) -> Any:
        found = [cb for cb in self if isinstance(cb, ModelCheckpoint)]
        if str(path) == "best":
            found = [cb for cb in found if cb.monitor] or found
        else:  # (one of top-k or periodic saves listed first keeps no `last`: not the one asked of)
            found = [cb for cb in found if cb.save_last] or found
        attribute = "best_model_path" if str(path) == "best" else "last_model_path"
        target = getattr(found[0], attribute) if found else ""
        if not target and found and (str(path) == "last" or not found[0].monitor):
            # (last_on_disk: a new process resuming an earlier one's run)
            target = found[0].last_model_path or found[0].last_on_disk()
            if str(path) == "best" and not found[0].last_model_path and target:
                _refuse_newest_for_a_ranked_best(target)
        if not target and not found and self._checkpoints_dropped_by:
            # (Lightning 2.6.6: 'You cannot execute `.test(ckpt_path="best")` with `fast_dev_run=True`')
            raise ValueError(
                f'ckpt_path="{path}" with Trainer(fast_dev_run=...): a fast_dev_run saves no checkpoint (its '
                "ModelCheckpoint callbacks are dropped); pass an exact checkpoint folder as ckpt_path"
            )
        if not target:
            raise ValueError(f'ckpt_path="{path}": this Trainer has {self._why_none(found, attribute)}')
        several = sum(isinstance(cb, ModelCheckpoint) for cb in self) > 1
        if str(path) == "best" and several and collectives.is_main_process():
            # (Lightning's words, which its test matches, as its rank_zero_warn: once a job; warned once a
            # stage: later callers get the path)
            warnings.warn(
                'ckpt_path="best" with several ModelCheckpoint callbacks: it will use the best checkpoint '
                f"path from first checkpoint callback that monitors a metric, {target}",
                stacklevel=user_stacklevel(),
            )
        return target

    @staticmethod
    def _why_none(found: list[ModelCheckpoint], attribute: str) -> str:
        if not found:
            return "no ModelCheckpoint callback; pass a checkpoint folder"
        newest = found[0].newest_on_disk()
        if attribute == "last_model_path" and not found[0].save_last:
            # Lightning warns and starts from scratch here; resuming from the newest top-k checkpoint
            # instead could go back epochs (top-k keeps the best, not the newest): named, not taken.
            newest = f"; its newest checkpoint is {newest}: pass that folder as ckpt_path" if newest else ""
            return (
                "a ModelCheckpoint that keeps no `last` (pass ModelCheckpoint(..., save_last=True) to keep "
                f"one){newest}"
            )
        if newest and attribute == "last_model_path":  # (the Trainer's `nonfinite`: stopped before a `last`)
            return (
                f"a ModelCheckpoint whose {attribute} is empty (no `last` saved yet); its newest checkpoint "
                f"is {newest}: pass that folder as ckpt_path"
            )
        if newest and attribute == "best_model_path":
            # A new Trainer (a new process) knows no best before it saves, as in Lightning, which refuses
            # "best" here too; the folder's newest checkpoint records which one its run ranked best.
            ranked = _ranked_best(newest)
            hint = (
                f"; the newest checkpoint there, {newest}, records its run's best (ranked {ranked[2]}): "
                f"{ranked[0]} (score {ranked[1]}): pass that folder as ckpt_path"
                if ranked is not None
                else f"; its newest checkpoint is {newest}: pass the folder you mean as ckpt_path"
            )
            return (
                f"a ModelCheckpoint whose best_model_path is empty (this Trainer has saved nothing yet, so "
                f"it knows no best, though {found[0].dirpath} holds checkpoints){hint}"
            )
        looked = found[0].searched_on_disk()
        saved = "nothing saved yet" + (f", and none is on disk in {looked}" if looked else "")
        return f"a ModelCheckpoint whose {attribute} is empty ({saved}); pass a checkpoint folder"

    def checkpoint_folder(self, default_root_dir: Path) -> Path:
        """Where the Trainer's own checkpoints (``interrupted``, ``nonfinite``) go: beside the first
        ModelCheckpoint's saves, in the folder it chose for this run (a fresh version, or the resumed
        run's), so that they never land in another run's folder."""
        found = [cb for cb in self if isinstance(cb, ModelCheckpoint) and cb.dirpath is not None]
        return found[0].dirpath if found else Path(default_root_dir) / "checkpoints"

    def interrupted_path(self, default_root_dir: Path, checkpointing: bool) -> Path | None:
        """Where a stop signal's checkpoint goes: an `OnExceptionCheckpoint`'s path (the first's), so that a
        Ctrl-C saves once, where that callback says (also with checkpointing off: the callback asks for it);
        else ``interrupted`` in `checkpoint_folder`, or None with `checkpointing` off (nothing is saved)."""
        for cb in self:
            if isinstance(cb, OnExceptionCheckpoint):
                return cb.ckpt_path
        return self.checkpoint_folder(default_root_dir) / "interrupted" if checkpointing else None

    def refuse_earlier_runs(self, trainer: Any) -> None:
        for cb in self:
            if isinstance(cb, ModelCheckpoint):
                cb.refuse_an_earlier_run(trainer)

    def keeping_last(self) -> list[ModelCheckpoint]:
        return [cb for cb in self if isinstance(cb, ModelCheckpoint) and cb.save_last]

    def copy_to_last(self, path: Any, callbacks: list[ModelCheckpoint]) -> None:
        """After a Ctrl-C checkpoint: `last` becomes a copy of it (hard links), so `ckpt_path="last"`
        resumes from the newest state rather than from the last regular save."""
        for cb in callbacks:
            ckpt.copy_checkpoint(path, cb.last_path)

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {cb.state_key: cb.state_dict() for cb in self}

    def load_state_dict(self, state: dict[str, Any], how: str = "resumed") -> None:
        """Give each callback its state from a checkpoint's; `how` the checkpoint was used, for the warning
        naming the states no callback takes ("resumed" by fit, "loaded" by validate, test or predict)."""
        for cb in self:
            # (an empty state, as the default state_dict() saves, is given to none: Lightning's `if state`)
            if state.get(cb.state_key):
                try:
                    cb.load_state_dict(state[cb.state_key])
                except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
                    if type(cb).__module__.startswith("audiotrain."):
                        raise  # (ours name the field themselves)
                    # (a field the callback's code reads that the saved state lacks: the error said "'b'")
                    saved = state[cb.state_key]
                    keys = ", ".join(map(str, saved)) if isinstance(saved, dict) else type(saved).__name__
                    raise ValueError(  # (a KeyError's message would print quoted)
                        f"{type(cb).__name__}.load_state_dict failed on the state saved under "
                        f"{cb.state_key!r} (keys: {keys or 'none'}) with {type(err).__name__}: {err}. "
                        "Was the callback changed "
                        "since that checkpoint was saved? Read new fields with state.get(name, default)"
                    ) from err
        # A callback that saved state and is not there now: its state is dropped, said as Lightning says it.
        missing = [
            key
            for key, saved in state.items()
            if saved
            and not any(
                key == cb.state_key or (isinstance(cb, ModelCheckpoint) and cb.adopts_state(key, saved))
                for cb in self
            )
        ]
        # A class renamed (or a setting its state_key names changed) since the save shows up as one state
        # left over and one stateful callback starting fresh: name the second half too, or the user reads
        # that a state was dropped and not that their callback lost its count. Every rank asks the callbacks
        # (a user's state_dict may gather from the ranks), rank 0 alone says it.
        fresh = (
            [
                cb.state_key
                for cb in self
                if cb.state_key not in state and not isinstance(cb, ModelCheckpoint) and _has_state(cb)
            ]
            if missing
            else []
        )
        if missing and collectives.is_main_process():  # (every rank resumes the same: one warning a job)
            also = (
                f". These callbacks found no state of theirs in it and start fresh: {', '.join(fresh)} (a "
                "callback class renamed, or a setting its state_key names changed, since the save: return "
                "the saved key from its state_key to restore that state)"
                if fresh
                else ""
            )
            warnings.warn(
                f"The checkpoint {how} holds the state of callbacks this Trainer does not have, which is "
                f"not restored: {', '.join(missing)}. As in Lightning, when using ckpt_path, pass the "
                f"callbacks that created the checkpoint to Trainer(callbacks=...). Please add the following "
                f"callbacks: {missing!r}{also}",  # (Lightning's words, which a user's test may match)
                stacklevel=4,
            )

    def state_arrays(self) -> dict[str, mx.array]:
        """Every callback's `state_arrays()`, named ``<state_key>/<name>`` as the checkpoint's
        callbacks.safetensors holds them. Anything but a dict of `mx.array`s by string names is refused at
        the first save, naming the callback and the entry, before anything is written."""
        arrays: dict[str, mx.array] = {}
        for cb in self:
            own = cb.state_arrays()
            where = f"callback {cb.state_key!r}: its state_arrays()"
            if not isinstance(own, dict):
                raise TypeError(f"{where} must return a dict of name -> mx.array, got {type(own).__name__}")
            for name, value in own.items():
                if not isinstance(name, str) or not name:
                    raise TypeError(f"{where} has the name {name!r}: expected a non-empty string")
                if not isinstance(value, mx.array):
                    raise TypeError(
                        f"{where}[{name!r}] is a {type(value).__name__}: callbacks.safetensors holds "
                        "mx.arrays (convert it with mx.array(...))"
                    )
                arrays[f"{cb.state_key}/{name}"] = value
        return arrays

    def load_state_arrays(self, arrays: dict[str, mx.array], saved_keys: Iterable[str], file: Path) -> None:
        """Give each callback whose state the checkpoint holds (`saved_keys`: the state_keys of its
        trainer_state.json) its arrays from `file` (`arrays`, as `ckpt.read_callback_arrays` read them), {}
        where it saved none. A tensor that belongs to no callback of the checkpoint is refused, naming it; a
        callback's own check of what it got (a ValueError naming the tensor) is raised naming `file` (the
        trainer_state.json beside it where there is no such file: the state that expected arrays)."""
        saved_keys = sorted(saved_keys, key=len, reverse=True)  # (a key with "/" in it: the longest match)
        by_key: dict[str, dict[str, mx.array]] = {}
        for name, value in arrays.items():
            key = next((k for k in saved_keys if name.startswith(f"{k}/")), None)
            if key is None:
                raise ckpt.CheckpointError(
                    f"{file}: tensor {name!r} belongs to no callback of the checkpoint (expected "
                    f"'<state_key>/<name>' with a state_key of its trainer_state.json: "
                    f"{', '.join(map(repr, sorted(saved_keys))) or 'none'})"
                )
            by_key.setdefault(key, {})[name[len(key) + 1 :]] = value
        with ckpt.named_source(file if file.is_file() else file.parent / ckpt.STATE_FILE):
            for cb in self:
                if cb.state_key in saved_keys:
                    cb.load_state_arrays(by_key.get(cb.state_key, {}))


__all__ = ["CallbackList"]


def _ranked_best(saved_by: str) -> tuple[str, float, str] | None:
    """The best checkpoint, its score and what ranked it (`by val_loss`), as recorded by a ModelCheckpoint
    that monitors a metric in the checkpoint `saved_by`; None where none did (or it cannot be read)."""
    try:
        saved = ckpt.read_state(Path(saved_by)).get("callbacks", {})
    except ckpt.CheckpointError:
        return None  # (the load that follows names what is wrong with it)
    for key, state in saved.items() if isinstance(saved, dict) else ():
        if not key.startswith("ModelCheckpoint") or not isinstance(state, dict):
            continue
        best, score = state.get("best_model_path"), state.get("best_model_score")
        if best and score is not None:
            beside = Path(saved_by).parent / Path(best).name
            if not Path(best).exists() and beside.exists():
                # A run folder moved or copied since (the path recorded is where it was saved): the best of
                # that name beside the checkpoint read, not a folder that is gone or another copy's.
                best = str(beside)
            monitor = re.search(r"'monitor': '([^']*)'", key)  # (the callback's state key names its monitor)
            return best, score, f"by {monitor.group(1)}" if monitor else f"({key})"
    return None


def _refuse_newest_for_a_ranked_best(last: str) -> None:
    """ "best" of a Trainer that saved nothing yet and monitors no metric is the newest `last` on disk; where
    the run that saved it ranked its checkpoints by a metric, that `last` is not its best, and scoring it as
    "best" would give the wrong weights without a word (Lightning refuses "best" with nothing saved)."""
    ranked = _ranked_best(last)
    if ranked is not None and Path(ranked[0]).name != Path(last).name:
        best, score, by = ranked
        raise ValueError(
            f'ckpt_path="best": this Trainer has saved nothing yet and its ModelCheckpoint monitors no '
            f"metric, so its best would be the newest save, {last}; but the run that saved it ranked its "
            f"checkpoints {by}, and its best is {best} (score {score}): pass that folder as "
            'ckpt_path (or ckpt_path="last" for the newest)'
        )


_HOOK_NOTE = "(raised while the Trainer called"


def name_the_hook(error: BaseException, callback: Any, hook: str) -> None:
    """Adds which callback's hook raised `error` to its report (Python 3.11's exception notes): a
    ``KeyError: 'val_acc'`` from a sweep's pruning callback, or an error from a library the callback
    calls, otherwise names neither. The exception itself is unchanged, so ``except TrialPruned`` (Optuna's
    pruning) still catches it; a KeyboardInterrupt is a stop, not a failure of the hook, and gets none.
    Only a hook the user wrote is named (the library's own callbacks' errors name their cause), and only
    the innermost: a callback's `on_save_checkpoint` that fails in a save that
    ModelCheckpoint's `on_train_epoch_end` makes is that callback's error, not ModelCheckpoint's."""
    if not isinstance(error, Exception) or not hasattr(error, "add_note"):  # (add_note: Python 3.11)
        return
    # A hook of the library's own callbacks (ModelCheckpoint.setup in a deleted current folder) raises errors
    # that name their cause: a note below them would push that line off the end of the report.
    if not user_written_hook(callback, hook):
        return
    notes = getattr(error, "__notes__", [])
    if not isinstance(notes, list) or any(str(note).startswith(_HOOK_NOTE) for note in notes):
        return  # (add_note refuses a __notes__ that is no list: the user's error must pass as raised)
    error.add_note(f"{_HOOK_NOTE} {type(callback).__name__}.{hook})")


def _has_state(cb: Any) -> bool:
    """Whether a callback's `state_dict()` holds anything now, for a warning only: one that cannot say yet
    (it reads what its first batch sets) is not named, rather than failing the resume."""
    try:
        return bool(cb.state_dict())
    except Exception:
        return False


def _saved_at(folder: Path) -> float:
    """When the checkpoint `folder` was saved (its state file's mtime); 0 for one that is gone."""
    try:
        return (folder / ckpt.STATE_FILE).stat().st_mtime
    except OSError:
        return 0.0
