"""`EvaluationLoop`: the Trainer's evaluation stages (validation inside `fit`, `validate`, `test`,
`predict` and the sanity check), around the one `evaluate` function of `evaluation.py`; `standalone` runs
`Trainer.validate` / `test` / `predict` from their arguments to their `teardown` hooks.

It owns the compiled evaluation steps (one per stage, traced anew for each fit and each standalone call)
and reads the rest from its Trainer: the callbacks, loggers, limits and progress. Split out of `trainer.py`
as Lightning splits `_EvaluationLoop` and `_PredictionLoop` from its fit loop, so that `trainer.py` reads
fit → train epoch → train batch and this file reads stage → batches → reported means.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from audiotrain._caller import user_stacklevel
from audiotrain._possible_user_warning import PossibleUserWarning
from audiotrain._system import StoppedBySignal, _sigterm_stops
from audiotrain.data.loader import DataLoader
from audiotrain.data.workers import DataLoaderError
from audiotrain.distributed import collectives
from audiotrain.train import flags, hook_logs, hook_state, hooks
from audiotrain.train.evaluation import EvalSums, eval_mode, evaluate, logged_name
from audiotrain.train.interrupt import SaveAborted, interactive_session, stop_status
from audiotrain.train.loaders import (
    check_batch,
    checkpoint_argument,
    datamodule_given_as_loader,
    evaluation_loaders,
    loader_len,
    loader_source,
    loaders_from,
    missing_loader,
    one_loader,
    prepare_data,
    prepare_loader,
    several_loaders,
    warn_of_unsharded_user_order,
    why_no_batches,
)
from audiotrain.train.metric_values import Metrics
from audiotrain.train.module import TrainModule, refuse_dataloader_iter
from audiotrain.train.prediction_writer import BasePredictionWriter
from audiotrain.train.profilers import profiled_batches
from audiotrain.train.state import RandomState, local_means, seed_validation_generators
from audiotrain.train.step import EvalStep

import mlx.core as mx

if TYPE_CHECKING:
    from audiotrain.train.trainer import Trainer

# Lightning's names for the stages of `setup` / `teardown`, by the eval stage that runs.
_STAGE_NAMES = {"val": "validate", "test": "test", "predict": "predict"}
# Lightning's word for a stage in its hook names (`on_validation_start`).
_HOOK_NAMES = {"val": "validation", "test": "test"}
# The Trainer's count of a stage's batches (Lightning's `num_val_batches`, ...).
_BATCH_COUNTS = {"val": "num_val_batches", "test": "num_test_batches", "predict": "num_predict_batches"}


def batch_count(limit: Any) -> Any:
    """A stage's count of batches as the Trainer reports it: inf where the loader ends it (no length, or a
    stream read to its end), as Lightning counts it, so that `min(trainer.num_val_batches, n)` works; a list
    of them for several loaders (`EvaluationLoop.limit`), as Lightning's."""
    if isinstance(limit, list):
        return [batch_count(x) for x in limit]
    return math.inf if limit is None else limit


def dataloader_suffix(dataloader_idx: int) -> str:
    """Lightning's suffix of a value logged from one of a stage's several loaders."""
    return f"/dataloader_idx_{dataloader_idx}"


def _shuffles(loader: DataLoader) -> bool:
    """`shuffle=True`, or a torch `RandomSampler` given as the loader's sampler or its batch sampler's (as
    Lightning's `_is_dataloader_shuffled` reads it). One exists only where torch is imported already."""
    if loader.shuffle:
        return True
    torch_data = sys.modules.get("torch.utils.data")
    if torch_data is None:
        return False
    given = loader._user_sampler
    sampler = getattr(given, "sampler", given)
    return isinstance(sampler, torch_data.RandomSampler)


class EvaluationLoop:
    """The evaluation stages of one Trainer. `steps` holds the compiled step of each stage."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        self.steps: dict[str, EvalStep] = {}
        # The outputs the running predict keeps, for an epoch writer's `write_on_epoch_end`, and the dataset
        # indices of the samples of each of those batches (None where the loader cannot tell).
        self.predictions: list[Any] = []
        self.batch_indices: list[list[int] | None] = []
        self.current_batch_indices: list[int] | None = None  # the batch being predicted's, for a writer
        self.unlogged: dict[str, set[str]] = {}  # per stage, what it logged with logger=False
        # The names the last sanity check's validation logged (None: none ran): what `on_sanity_check_end`
        # can test a monitored name against, before training (its values are dropped, as in Lightning).
        self.sanity_check_names: set[str] | None = None
        # A Ctrl-C stopped the last standalone stage (`trainer.interrupted` set by it, not by a fit).
        self.stage_interrupted = False
        # The batches this fit's validations have read: one that then reads none was given an iterator.
        self.val_batches_in_fit: dict[int | None, int] = {}  # (by dataloader_idx: None for the only one)
        # Each loader's reported names in the last stage with several loaders (None: one loader).
        self.loader_names: list[set[str]] | None = None
        # The stages whose loader was checked for a user sampler that gives every rank the same batches:
        # once a fit, and once for a Trainer's validate / test calls outside one.
        self.orders_checked: set[str] = set()
        self.shuffles_warned: set[str] = set()  # (the stages warned of a shuffled loader: as orders_checked)
        # Lightning's evaluation loops' batch counts (train/loop_progress.py reads them): [this run's, every
        # run's] batches whose end hooks ran, for fit's validations ("fit": its total is a run's, as
        # Lightning's), and the Trainer's validate ("val") and test calls.
        self.batches_done: dict[str, list[int]] = {}

    def reset(self) -> None:
        """Forget the compiled steps (a new module, or a new fit, traces them again)."""
        self.steps = {}
        self.val_batches_in_fit = {}
        self.orders_checked = set()
        self.shuffles_warned = set()
        self.said_predict_none = False  # (once a predict over all its loaders, as Lightning's WarningCache)

    def progress_key(self, stage: str) -> str:
        """Whose batch counts a stage's batches are: fit's validation loop's, or the Trainer's `stage` calls'."""
        return "fit" if stage == "val" and self.trainer.fitting else stage

    def step(self, module: TrainModule, stage: str, dataloader_idx: int | None = None) -> EvalStep:
        """The stage's compiled step; with `dataloader_idx` (one of several loaders) that loader's own."""
        key = stage if dataloader_idx is None else f"{stage}/{dataloader_idx}"
        if key not in self.steps:
            t = self.trainer
            self.steps[key] = EvalStep(
                module,
                stage,
                compile=t.compile,
                precision=t.precision,
                in_fit=t.fitting,
                dataloader_idx=dataloader_idx,
            )
        else:  # (a validation in fit after a hook changed what the step read: traced again, as eager reads)
            self.steps[key].trace_again_if_reads_changed()
        return self.steps[key]

    def limit(self, stage: str, loader: Any) -> Any:
        """The batches the stage runs; None: until the loader ends (no length, or a stream without a limit:
        a stream's len(loader) is an estimate, and stopping there would leave samples out of the means).
        A list of each loader's for several loaders (`limit_val_batches` limits each, as Lightning's)."""
        several = several_loaders(loader)
        if several is not None:
            return [self.limit(stage, one) for one in several]
        t = self.trainer
        if t._reads_whole_stream(loader, stage):
            return None
        return t._fast_dev_batches or flags.resolve_limit(
            t.limits[stage], loader_len(loader), t._limit_flags[stage], stage
        )

    # ---- validation and test ---------------------------------------------------------------------------
    def validate_in_fit(self, module: TrainModule, loader: Any) -> dict[str, float] | None:
        """Validate inside `fit`: log, run the validation-end hooks; None if Ctrl-C stopped it."""
        if (
            self.trainer.world_size > 1
        ):  # (every rank validates the model rank 0 saves: BatchNorm's statistics)
            collectives.broadcast_running_statistics(module)
        # Validation draws from generators of its own, seeded from the training's, which it leaves as it
        # found them: a run that validates, or samples audio in a validation hook, more or less often trains
        # the same numbers. Checkpoints saved meanwhile (ModelCheckpoint at on_validation_end) hold the
        # training's, and a validation stopped by Ctrl-C is rerun from the same state after resuming.
        run = self.trainer._run
        random_before = RandomState.capture()
        run.random_during_validation = random_before
        seed_validation_generators(random_before, self.trainer.global_step)
        try:
            with self.trainer._state_tracker.within("validate"):  # (then "train" again, as in Lightning)
                return self.validate(module, loader, stoppable=True)
        finally:
            run.random_during_validation = None
            RandomState.restore(random_before)

    def validate(self, module: TrainModule, loader: Any, stoppable: bool = False) -> dict[str, float] | None:
        self._warn_if_shuffled(loader, "val")
        self._set_epoch(loader)
        return self._stage(module, loader, "val", self.limit("val", loader), stoppable)

    def test(self, module: TrainModule, loader: Any) -> dict[str, float]:
        self._warn_if_shuffled(loader, "test")
        self._set_epoch(loader)
        return self._stage(module, loader, "test", self.limit("test", loader), stoppable=False)

    def _set_epoch(self, loader: Any) -> None:
        """Give an evaluation loader the fit's epoch (`current_epoch`), as Lightning sets its sampler's: a
        shuffled or per-epoch-drawn validation set then follows the training's epochs (the sanity check and
        epoch 0's validations alike, every validation of one epoch alike, a resumed run as the straight
        one), not the count of its own iterations."""
        if callable(getattr(loader, "set_epoch", None)) and not isinstance(loader, Iterator):
            loader.set_epoch(self.trainer.current_epoch)

    def _warn_if_shuffled(self, loader: Any, stage: str) -> None:
        """Lightning's advice for a `DataLoader(shuffle=True)` given to validation, test or predict: the
        means do not need it, and predictions come out of the dataset's order."""
        several = several_loaders(loader)
        if several is not None:  # (Lightning's several loaders: each)
            for one in several:
                self._warn_if_shuffled(one, stage)
            return
        if stage in self.shuffles_warned or not isinstance(loader, DataLoader) or not _shuffles(loader):
            return
        self.shuffles_warned.add(stage)
        if collectives.is_main_process():
            warnings.warn(
                f"Your `{_LOADER_NAMES[stage]}`'s sampler has shuffling enabled, it is strongly "
                "recommended that you turn shuffling off for val/test dataloaders (as Lightning warns: "
                "DataLoader(..., shuffle=False))",
                PossibleUserWarning,
                stacklevel=user_stacklevel(),
            )

    def _stage(
        self, module: TrainModule, loader: Any, stage: str, limit: int | None, stoppable: bool
    ) -> dict[str, float] | None:
        """The batches between Lightning's hooks: `on_validation_start`, `_epoch_start`, `_batch_start`
        and `_batch_end` around each batch, `_epoch_end` (the means are in `callback_metrics`), `_end`.
        In the sanity check nothing is reported and what the hooks log is dropped, as in Lightning.
        The module is in eval mode from before `on_validation_start` to after `on_validation_end`, as
        Lightning's (a hook there that runs the model runs it without Dropout)."""
        t = self.trainer
        name = _HOOK_NAMES[stage]
        try:
            with (
                t.profiler.profile(f"run_{'sanity_check' if t.sanity_checking else name}"),
                eval_mode(module),
            ):
                return self._stage_profiled(module, loader, stage, limit, stoppable)
        finally:
            for (
                key,
                step,
            ) in self.steps.items():  # (after the end hooks, which may have read them: explained there)
                if key == stage or key.startswith(f"{stage}/"):
                    step.drop_kept_placeholders()

    def _stage_profiled(
        self, module: TrainModule, loader: Any, stage: str, limit: int | None, stoppable: bool
    ) -> dict[str, float] | None:
        t = self.trainer
        name = _HOOK_NAMES[stage]
        if not t.sanity_checking:  # (the check's count is `num_sanity_val_batches`; fit set the stage's)
            # (known from `on_validation_start` on, as in Lightning)
            setattr(t, _BATCH_COUNTS[stage], batch_count(limit))
        hook_logs.drop(module, stage)  # (what the hooks of a stage Ctrl-C cut short logged: it runs again)
        counts = self.batches_done.setdefault(self.progress_key(stage), [0, 0])
        counts[0] = 0
        if t.fitting:
            counts[1] = 0
        t._call_hooks(f"on_{name}_start")
        t._call_hooks(f"on_{name}_epoch_start")
        several = several_loaders(loader)
        if several is None:
            self.loader_names = None
            metrics = self._run(module, loader, stage, limit, stoppable)
        else:
            metrics = self._run_several(module, several, stage, limit, stoppable)
        if metrics is None:
            return None
        # In the sanity check too, as Lightning's epoch-end hooks see its means (`sanity_check` puts the
        # metrics back after it): a hook reading callback_metrics["val_loss"] runs in the check as later.
        t.callback_metrics.update(metrics)
        if not t.sanity_checking:
            # As Lightning's `logged_metrics` (computed where it is read): the epoch-end hooks see what this
            # stage's steps send the loggers, which `_report` writes after them.
            early = self._to_loggers(metrics, stage)
            step = self.steps.get(stage)
            if step and "step" in step.log_options:  # (the loggers' x axis: `_report` sends it as "step")
                early.pop(logged_name(step, f"{stage}_", "step"), None)
            t.logged_metrics.update(early)
        if not t.fitting or t.sanity_checking:
            # Lightning's progress_bar_metrics in `validate` / `test` and the sanity check, from their
            # epoch-end hooks on: what the stage's steps logged with prog_bar=True (in fit the bar shows every
            # validation value: `epoch_validation_metrics`; `sanity_check` drops the check's again).
            options = self._options(stage)
            shown = {k: v for k, v in metrics.items() if k in options and options[k].prog_bar}
            t._step_logging.hook_bar.update(shown)
        elif t.fitting:
            # In fit the bar shows every validation value (`epoch_validation_metrics`): from the epoch-end
            # hooks on, as Lightning's progress_bar_metrics there (not the last step's under the same name).
            t._run.validation_metrics = metrics
        # What its batch and epoch-start hooks logged per epoch, as Lightning's epoch-end hooks see it.
        hook_loggers, hook_values, _ = t._step_logging.hook_epoch_values(stage, clear=False)
        t.callback_metrics.update(hook_values)
        if not t.sanity_checking:
            t.logged_metrics.update(hook_loggers)
        t._call_hooks(f"on_{name}_epoch_end")
        if t.sanity_checking:
            dropped = t._step_logging.hook_epoch_values(stage)[1]  # (dropped, on every rank alike)
            self.sanity_check_names = {*metrics, *dropped}
        else:
            self._report(metrics, stage)
        if t.fitting and not t.sanity_checking:
            t.progress.validated_epoch = t.current_epoch
            t._run.validation_metrics = metrics  # (what the end hooks log below joins it)

        def take() -> None:
            # What the module's end hook logged counts for this stage (monitoring callbacks see it).
            to_loggers, late, _ = t._step_logging.hook_epoch_values(stage)
            if t.sanity_checking:
                self.sanity_check_names = {*(self.sanity_check_names or ()), *late, *to_loggers}
            if late and not t.sanity_checking:
                self.unlogged.setdefault(stage, set()).update(set(late) - set(to_loggers))
                metrics.update(late)
                t.callback_metrics.update(late)
                if to_loggers:
                    t._step_logging.log_at_logged_step(to_loggers)

        t._call_end_hooks(f"on_{name}_end", (metrics,), take)
        return metrics

    def _run_several(
        self, module: TrainModule, loaders: list[Any], stage: str, limits: list[int | None], stoppable: bool
    ) -> dict[str, float] | None:
        """Lightning's several loaders, each in turn: each loader's means, named as Lightning's
        (`val_loss/dataloader_idx_1`; a value logged with add_dataloader_idx=False keeps its name, and may
        come from one loader only). `loader_names` keeps each loader's names (what `validate` returns)."""
        metrics: dict[str, float] = {}
        self.loader_names = []
        for index, (one, limit) in enumerate(zip(loaders, limits, strict=True)):
            self.trainer._dataloader_idx = index  # (what its batch hooks log is named for it)
            try:
                means = self._run(module, one, stage, limit, stoppable, dataloader_idx=index)
            finally:
                self.trainer._dataloader_idx = None
            if means is None:
                return None
            step = self.steps.get(f"{stage}/{index}")
            kept = {logged_name(step, f"{stage}_", n) for n in step.unindexed} if step else set()
            named = {k if k in kept else k + dataloader_suffix(index): v for k, v in means.items()}
            for clash in set(named) & set(metrics):
                earlier = next(i for i, names in enumerate(self.loader_names) if clash in names)
                where = step.where if step else stage
                raise ValueError(
                    f"{where}: {clash!r} was logged with add_dataloader_idx=False from loaders {earlier} "
                    f"and {index}, whose values would overwrite each other (Lightning refuses it too): log "
                    f"it with the loader's index (the default: '{clash}{dataloader_suffix(index)}'), or "
                    "under a name of its own for each loader"
                )
            metrics.update(named)
            self.loader_names.append(set(named))
        return metrics

    def _run(
        self,
        module: TrainModule,
        loader: Any,
        stage: str,
        limit: int | None,
        stoppable: bool,
        dataloader_idx: int | None = None,
    ) -> dict[str, float] | None:
        """Weighted means over the loader; None when a Ctrl-C stopped it (partial means would be biased).
        `dataloader_idx`: the loader's index among several (passed to the step and the batch hooks), None
        for a stage's only loader (whose hooks get none, as Lightning's)."""
        t = self.trainer
        name = _HOOK_NAMES[stage]
        extra = () if dataloader_idx is None else (dataloader_idx,)

        def on_batch_start(batch, batch_idx):
            t._call_hooks(f"on_{name}_batch_start", batch, batch_idx, *extra)

        counts = self.batches_done.setdefault(self.progress_key(stage), [0, 0])

        def on_batch(outputs, batch, batch_idx):
            t._call_hooks(f"on_{name}_batch_end", outputs, batch, batch_idx, *extra)
            counts[0] += 1
            counts[1] += 1

        try:
            with eval_mode(module):
                result = evaluate(
                    self.step(module, stage, dataloader_idx),
                    loader,
                    limit,
                    f"{stage}_",
                    module.batch_size,
                    on_batch,
                    (lambda: t.interrupted) if stoppable else None,
                    on_batch_start,
                    lambda batch: hooks.transfer_batch(
                        batch, module, t.datamodule, dataloader_idx or 0, profiler=t.profiler
                    ),
                    f"{'sanity-check ' if t.sanity_checking else ''}{name}",
                    profiler=t.profiler,
                    profile_as=name,
                    pass_outputs=self._hooks_read_outputs(module, f"on_{name}_batch_end"),
                )
        except DataLoaderError as err:
            if stoppable and t.interrupted and err.killed_by_stop_signal:
                return None  # the same Ctrl-C (SIGTERM) reached a starting worker: the stop, not a failure
            raise
        if stoppable and (result.stopped or t.interrupted):
            return None
        checked = stage if dataloader_idx is None else f"{stage}/{dataloader_idx}"
        if not t.sanity_checking and checked not in self.orders_checked:  # (the check's loader is a slice)
            self.orders_checked.add(
                checked
            )  # (once a fit or a call, on every rank: the check is a collective, after the stop's return,
            # which a rank whose worker the stop signal ended takes too)
            where = "Trainer.fit" if t.fitting else {"val": "Trainer.validate", "test": "Trainer.test"}[stage]
            warn_of_unsharded_user_order(loader, stage, where)
        in_fit = stage == "val" and t.fitting and not t.sanity_checking
        which = "" if dataloader_idx is None else f" {dataloader_idx}"  # (of several)
        batches = self._job_batches(result.batches, stage, which)
        if in_fit and batches == 0 and self.val_batches_in_fit.get(dataloader_idx, 0) > 0:
            # (A warning and no means left the earlier validation's values in history.json and
            # callback_metrics for every later epoch, where a ModelCheckpoint and EarlyStopping read them.)
            raise ValueError(
                f"Trainer.fit: the validation loader{which} yielded no batches in epoch {t.current_epoch}, "
                f"after {self.val_batches_in_fit[dataloader_idx]} in earlier validations. A generator or "
                "iterator (a generator expression, itertools.chain or zip of loaders) can be consumed only "
                "once: pass a list, a DataLoader, or an object whose __iter__ starts over"
            )
        if in_fit:
            self.val_batches_in_fit[dataloader_idx] = self.val_batches_in_fit.get(dataloader_idx, 0) + batches
        if batches == 0:
            # (One sample in batches of 4 with drop_last=True: none.) The sanity check's loader is a
            # slice of the val loader's batches, which tells the reason.
            whole = loader
            if t.sanity_checking:
                whole = (
                    t._val_loader
                    if dataloader_idx is None
                    else several_loaders(t._val_loader)[dataloader_idx]
                )
            why = why_no_batches(whole)
            warnings.warn(f"Trainer: the {stage} loader{which} yielded no batches{why}", stacklevel=3)
            return {}
        means = module.evaluation_means(stage, self._means(result))
        if not isinstance(means, dict):
            # (None, an override without `return`, was the "None: stopped" of a Ctrl-C: fit said "Interrupted
            # by SIGTERM" and ended, validate failed on 'NoneType' object has no attribute 'items')
            raise TypeError(
                f"{type(module).__name__}.evaluation_means(stage, means) must return the dict of the {stage} "
                f"means (`return means`, changed or not), got {type(means).__name__}"
            )
        return means

    def _job_batches(self, here: int, stage: str, which: str) -> int:
        """The loader's batch count over every rank under data parallel (one small all_sum), this process's
        otherwise. Every rank takes the same path from it: a rank whose own loader yielded no batches (a
        loader the user sharded unevenly) still joins the means' collective, on which the other ranks
        waited for ever when it returned early; its means are the other ranks'."""
        t = self.trainer
        if t.world_size == 1:
            return here
        total = int(collectives.all_reduce_sum(mx.array(float(here))).item())
        if here == 0 and total > 0:
            warnings.warn(
                f"Trainer: the {stage} loader{which} yielded no batches on rank {t.global_rank} (of "
                f"{t.world_size}), {total} on the others: its {stage} means are theirs. Shard the data "
                "evenly (a DataLoader with a sampler shards it by itself)",
                stacklevel=3,
            )
        return total

    def _hooks_read_outputs(self, module: TrainModule, hook: str) -> bool:
        """Whether the module or a callback of the user's has its own `hook` (the batch-end hook that gets
        the step's outputs): the library's own (the progress bar's) read no outputs the user returned."""
        if hooks.overrides(module, hook):
            return True
        return any(hooks.user_written_hook(cb, hook) for cb in self.trainer.callbacks)

    def _means(self, result: EvalSums) -> dict[str, float]:
        return (self.trainer._reduce or local_means)(result.sums, result.weights)

    def _report(self, metrics: dict[str, float], stage: str) -> None:
        t = self.trainer
        # What the stage's hooks logged (their means over the loader: hook_logs), only what was logged
        # during this stage (a training epoch's sums wait for its end).
        hook_loggers, hook_values, _ = t._step_logging.hook_epoch_values(stage)
        metrics.update(hook_values)
        t.callback_metrics.update(metrics)
        step = self.steps.get(stage)
        logged = self._to_loggers(
            metrics, stage, hook_values
        )  # (logger=False by the reported name: _options)
        # A value the step logged as "step" is reported as the default step's "val_step": still the
        # loggers' step for this report, as Lightning's logged "step" is (log_at_logged_step).
        sent = {**logged, **hook_loggers}
        as_step = logged_name(step, f"{stage}_", "step") if step and "step" in step.log_options else None
        if as_step in logged:
            sent["step"] = sent.pop(as_step)
        if sent:  # (a step that returns outputs alone logs nothing: no empty row, as Lightning sends none)
            # With the Trainer's epoch, as Lightning's `log_metrics` adds it to every row it sends.
            t._step_logging.log_at_logged_step(sent, epoch=t.progress.epoch)
        # (what `validate`/`test` return leaves them out, as Lightning's: logger=False)
        self.unlogged[stage] = set(metrics) - set(logged) - set(hook_loggers)

    def _options(self, stage: str) -> dict[str, Any]:
        """Each value's `self.log` options, by the name it is reported under: the default step's `acc` is
        reported as `val_acc`, and its logger=False holds there too."""
        prefix, out = f"{stage}_", {}
        for key, step in self.steps.items():
            if key == stage:
                out.update({logged_name(step, prefix, k): v for k, v in step.log_options.items()})
            elif key.startswith(f"{stage}/"):  # (one of several loaders: its names as `_run_several`'s)
                suffix = dataloader_suffix(step.dataloader_idx)
                for k, v in step.log_options.items():
                    out[logged_name(step, prefix, k) + ("" if k in step.unindexed else suffix)] = v
        return out

    def _to_loggers(self, metrics: dict[str, float], stage: str, hook_values: Any = ()) -> dict[str, float]:
        """What of the stage's step metrics goes to the loggers (not those logged with logger=False)."""
        options = self._options(stage)
        return {
            k: v
            for k, v in metrics.items()
            if k not in hook_values and (k not in options or options[k].logger)
        }

    # ---- sanity check and predict ----------------------------------------------------------------------
    def sanity_checks(self) -> bool:
        """Whether `fit` runs a sanity check (given a validation loader that is no generator)."""
        return self.trainer.num_sanity_val_steps != 0 and not self.trainer.fast_dev_run

    def sanity_check(self, module: TrainModule, loader: Any, ask: Callable[[], Any] | None = None) -> Any:
        """Run the first `num_sanity_val_steps` validation batches before training, as Lightning does:
        a mistake only validation reaches fails now, not after a whole training epoch. As in Lightning,
        `on_sanity_check_start/end` and the validation hooks run with `trainer.sanity_checking` True;
        nothing is logged, and the random state is put back, so a run is the same with or without it.
        `ask` (where `loader` is None) gives the loader, called after `on_sanity_check_start` as Lightning
        asks for `val_dataloader()` there. Returns the loader."""
        t = self.trainer
        n = -1 if t.num_sanity_val_steps == math.inf else t.num_sanity_val_steps  # (inf: -1, all)
        self.sanity_check_names = None
        if not self.sanity_checks():
            return ask() if ask is not None else loader
        if ask is None and _is_generator(loader):
            return loader  # (a generator would lose the batches the check drew)
        with t._state_tracker.within("sanity_check"):
            if ask is not None:
                # (Callback hooks only, in Lightning.) A KeyboardInterrupt raised in them stops the fit as
                # one in any other hook of it does. What the hook draws is put back, as the check's is; the
                # loader is asked for on the generators a fit without the check asks on.
                random_before = RandomState.capture()
                try:
                    with t._stopping.taking_interrupts_in("on_sanity_check_start"):
                        t.callbacks.call("on_sanity_check_start", t, module)
                finally:
                    RandomState.restore(random_before)
                loader = ask()
                if loader is None or _is_generator(loader):  # (no batches to check: its end hook alone)
                    with t._stopping.taking_interrupts_in("on_sanity_check_end"):
                        t.callbacks.call("on_sanity_check_end", t, module)
                    return loader
        self._sanity_batches(module, loader, n, started=ask is not None)
        return loader

    def _sanity_batches(self, module: TrainModule, loader: Any, n: int, started: bool) -> None:
        """The sanity check's batches of `loader` (n of each of its loaders, -1: all), between the callbacks'
        `on_sanity_check_start` (unless `started`: called already) and `on_sanity_check_end`."""
        t = self.trainer
        several = several_loaders(loader)
        loaders = several if several is not None else [loader]
        # `num_sanity_val_steps` of each loader, as Lightning's (-1: all of each)
        limits = [self.limit("val", one) for one in loaders]
        wanted = [n if limit is None else limit if n == -1 else min(n, limit) for limit in limits]
        random_before = RandomState.capture()
        # The check drops what its hooks log; what hooks logged before it (a resumed run's values waiting
        # for the next logging point) is kept for that point.
        waiting_logs = module._pop_logged()
        # Lightning resets the metrics after the check: what it reported is no training's or monitor's.
        metrics_before = dict(t.callback_metrics)
        bar_before = dict(t._step_logging.hook_bar)
        for one in loaders:
            self._warn_if_shuffled(one, "val")
            self._set_epoch(one)
        iterators = [iter(one) for one in loaders]
        try:
            with t._state_tracker.within("sanity_check"):  # (then "train" again, as in Lightning)
                # (Callback hooks only, in Lightning.) A KeyboardInterrupt raised in them stops the fit as
                # one in any other hook of it does.
                if not started:
                    with t._stopping.taking_interrupts_in("on_sanity_check_start"):
                        t.callbacks.call("on_sanity_check_start", t, module)
                # Stoppable: a stop in its hooks ends the check after that batch, as the stop's line says
                # (and a hook raising on each batch is not taken for a second Ctrl-C, which aborts).
                taken = [_take(it, k) for it, k in zip(iterators, wanted, strict=True)]
                counts = [None if k == -1 else k for k in wanted]
                try:
                    if several is None:
                        self._stage(module, taken[0], "val", counts[0], stoppable=True)
                    else:
                        self._stage(module, taken, "val", counts, stoppable=True)
                finally:  # (in place: a callback may hold the dict, from on_fit_start)
                    t.callback_metrics.clear()
                    t.callback_metrics.update(metrics_before)
                    t._step_logging.hook_bar.clear()
                    t._step_logging.hook_bar.update(bar_before)
                with t._stopping.taking_interrupts_in("on_sanity_check_end"):
                    t.callbacks.call("on_sanity_check_end", t, module)
        finally:
            for iterator in iterators:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
            RandomState.restore(random_before)
            module._logged.clear()  # (what the check's hooks logged)
            module._logged.update(waiting_logs)

    def predict(self, module: TrainModule, loader: Any, keep: bool) -> list[Any] | None:
        """`predict_step` (compiled) over the loader: each batch's output in order, or None if not `keep`.
        Given Lightning's several loaders (a list or dict of them, `several_loaders`), each in turn, its
        index passed as `dataloader_idx` to the step and the batch hooks, and a list of each loader's
        outputs, as Lightning's.

        Lightning's hooks run around it: `on_predict_start`, `_epoch_start`, `_batch_start` and `_batch_end`
        (with the output: a `BasePredictionWriter` writes it there) around each batch, `_epoch_end`, `_end`.
        Not `keep`, an output is dropped after `on_predict_batch_end`, unless an epoch writer needs them all.
        Under data parallel a batch the loader names as padding (`DataLoader.padding_batches`: a rank a
        batch short) runs, as the ranks step together, but its output is neither returned nor given to the
        batch hooks: it repeats a sample another rank predicts."""
        t = self.trainer
        several = several_loaders(loader)
        loaders = several if several is not None else [loader]
        for one in loaders:
            self._warn_if_shuffled(one, "predict")
            self._set_epoch(one)
        limits = [self.limit("predict", x) for x in loaders]
        counts = [batch_count(limit) for limit in limits]
        t.num_predict_batches = counts if several is not None else counts[0]  # (Lightning's: a list)
        epoch_writer = any(
            isinstance(cb, BasePredictionWriter) and cb.interval.on_epoch for cb in t.callbacks
        )
        self.predictions, self.batch_indices = [], []
        kept: list[list[Any]] = []
        try:
            with eval_mode(module):
                t._call_hooks("on_predict_start")
                t._call_hooks("on_predict_epoch_start")
                for index, (one, limit) in enumerate(zip(loaders, limits, strict=True)):
                    outputs, indices = [], []
                    kept.append(outputs)
                    dataloader_idx = index if several is not None else None
                    if several is None:
                        self.predictions, self.batch_indices = outputs, indices
                    else:  # (the epoch writer's: one list for each loader, as Lightning's)
                        self.predictions.append(outputs)
                        self.batch_indices.append(indices)
                    self._predict_loader(
                        module, one, limit, dataloader_idx, keep or epoch_writer, outputs, indices
                    )
                t._call_hooks("on_predict_epoch_end")
                t._call_hooks("on_predict_end")
        finally:
            # (what an epoch writer needed is not held after predict returns)
            self.predictions, self.batch_indices, self.current_batch_indices = [], [], None
        if not keep:
            return None
        return kept if several is not None else kept[0]

    def _predict_loader(
        self,
        module: TrainModule,
        loader: Any,
        limit: int | None,
        dataloader_idx: int | None,
        keep: bool,
        outputs: list[Any],
        indices: list[list[int] | None],
    ) -> None:
        """One loader's batches of `predict`; `dataloader_idx` None for a stage's only loader (whose hooks
        get none, as Lightning's)."""
        t = self.trainer
        step = self.step(module, "predict", dataloader_idx)
        extra = () if dataloader_idx is None else (dataloader_idx,)
        batches = 0
        for batch_idx, batch in enumerate(profiled_batches(loader, t.profiler, "predict")):
            if limit is not None and batch_idx >= limit:
                break
            batches += 1
            batch = hooks.transfer_batch(
                batch, module, t.datamodule, dataloader_idx or 0, profiler=t.profiler
            )
            check_batch(batch)
            padding = batch_idx in getattr(loader, "padding_batches", ())
            if not padding:
                t._call_hooks("on_predict_batch_start", batch, batch_idx, *extra)
            with t.profiler.profile("[Trainer].predict_step"):
                out = step(batch, mx.array(batch_idx, mx.int32))
            if out is None and not self.said_predict_none:  # (a predict_step without `return`, most often)
                self.said_predict_none = True
                if collectives.is_main_process():  # (once a job: Lightning's rank_zero_warn)
                    warnings.warn(
                        f"{type(module).__name__}.predict_step returned None (batch {batch_idx}): predict "
                        "returned None if it was on purpose, ignore this warning (Lightning's words); else "
                        "return the predictions",
                        stacklevel=user_stacklevel(),
                    )
            with t.profiler.profile("[Trainer].predict_dispatch"):
                mx.async_eval(out)
            if padding:
                continue
            self.current_batch_indices = getattr(loader, "current_batch_indices", None)
            t._call_hooks("on_predict_batch_end", out, batch, batch_idx, *extra)
            if keep:
                outputs.append(out)
                indices.append(self.current_batch_indices)
        out = batch = None  # (nothing of the last batch outlives the loop unless kept)
        if batches == 0 and t.limit_predict_batches != 0:  # empty, said as validate and test say it
            why = why_no_batches(loader)
            which = "" if dataloader_idx is None else f" {dataloader_idx}"
            warnings.warn(f"Trainer: the predict loader{which} yielded no batches{why}", stacklevel=6)

    # ---- a stage on its own: Trainer.validate / test / predict ------------------------------------------
    def standalone(self, stage, model, loader, alias, datamodule, ckpt_path, keep=True) -> Any:
        """`Trainer.validate` / `test` / `predict`: their arguments checked, the module attached, the stage
        run between its `setup` and `teardown` hooks, the Trainer's state through it."""
        with _sigterm_stops_the_stage(_STAGE_NAMES[stage]):
            return self._standalone(stage, model, loader, alias, datamodule, ckpt_path, keep)

    def _asked_loader(self, method, name, source, stage, model, loader) -> Any:
        """The stage's loader: the one passed, else `source`'s, checked and prepared (its seed, its shard)."""
        t = self.trainer
        loader = loaders_from(source, {stage: loader})[stage]
        if loader is None:
            raise TypeError(missing_loader(method, name, source, stage))
        # Several loaders: one CombinedLoader("sequential"), whose loaders each shard themselves under data
        # parallel and take the Trainer's seed + their place.
        loader = evaluation_loaders(loader)
        prepare_loader(loader, name, t.seed, evaluation=True)  # (predict too: no sample repeated)
        if several_loaders(loader) is None:
            hooks.refuse_required_dataloader_idx(t.callbacks, model, method)
        else:
            hooks.refuse_missing_dataloader_idx(t.callbacks, model, method)
        return loader

    def _standalone(self, stage, model, loader, alias, datamodule, ckpt_path, keep) -> Any:
        t = self.trainer
        method = _STAGE_NAMES[stage]
        ckpt_path = t._chosen_ckpt_path(method, checkpoint_argument(method, ckpt_path))
        name = {"val": "val_loader", "test": "test_loader", "predict": "dataloaders"}[stage]
        loader = one_loader(method, name, loader, "dataloaders", alias) if stage != "predict" else loader
        loader, datamodule = datamodule_given_as_loader(method, loader, datamodule)
        if model is None and t.module is None:
            # (first: without a module the advice on loaders, "define val_dataloader on the module", has no
            # module to go to; Lightning 2.6.6 says "requires a `LightningModule`" here too)
            raise TypeError(f"Trainer.{method}: pass the model (no module is attached to this Trainer yet)")
        source = loader_source(method, datamodule, model if model is not None else t.module, {stage: loader})
        if source is None and loader is None:
            raise TypeError(missing_loader(method, name, None, stage))
        if not ckpt_path and t._pending_ckpt:
            # `trainer.load_checkpoint(path)` before any stage (the seed's manual checkpoint management):
            # its weights are the ones scored (a later `fit` still resumes from it).
            ckpt_path = t._pending_ckpt
        if model is None and not ckpt_path:
            ckpt_path = self._best_of_the_last_fit(method)
        model = model if model is not None else t.module
        hooks.refuse_steps_set_to_none(model, method)
        refuse_dataloader_iter(model, f"{stage}_step" if stage != "val" else "validation_step")
        if str(ckpt_path) in ("best", "last"):
            # Named before the module is attached, as fit names it: the module's configure_callbacks()
            # then replaces the ModelCheckpoint that saved the fit's best by a fresh one that saved nothing
            # (Lightning too selects the path before it attaches the module's callbacks).
            with contextlib.suppress(ValueError):  # nothing saved: refused below, with the reason
                ckpt_path = t.callbacks.checkpoint_path(ckpt_path)
        t._attach_module_callbacks(model)  # (before prepare_data, as in Lightning)
        prepare_data(t, datamodule, model)
        # Traced again at each call, as `fit` traces its steps: a trace holds the Python values the module
        # read then, and a notebook changes them between calls (`model.temperature = 5.0`); a kept one gave
        # the earlier call's numbers.
        self.reset()
        t.datamodule = datamodule
        if self.stage_interrupted:
            # Lightning's `interrupted` is its status: an earlier stage's Ctrl-C no longer reads as this
            # one's. (A fit's stop, one since that stage or the one a callback runs this stage in, stays.)
            self.stage_interrupted = False
            if t._state_tracker.fn in _STAGE_NAMES.values() and not t.fitting:
                t.interrupted = False
        t._state_tracker.begin(method, method)  # (before setup, as in Lightning)
        try:
            # An error in the setup hooks or the loaders gets on_exception and the teardown hooks too, as
            # in Lightning, whose stages call on_exception for every error they raise.
            with t._stage_fails_on_error(model, method):
                t._attach(model, method)
                if datamodule is not None and ckpt_path:
                    # As Lightning's restore_datamodule: the checkpoint's datamodule state, before the
                    # loaders.
                    ckpt_path = t.callbacks.checkpoint_path(ckpt_path)
                    hook_state.restore_datamodule_state(datamodule, ckpt_path, t.profiler)
            out = self._run_attached(stage, model, loader, ckpt_path, keep, (method, name, source))
            t._state_tracker.status = "finished"  # (after teardown, as in Lightning)
            return out
        finally:
            t._state_tracker.end()

    def _run_attached(self, stage, model, loader, ckpt_path, keep, asked) -> Any:
        """A standalone stage between the `setup` and the `teardown` hooks (`on_exception` on an error); its
        loader asked for (`asked`: `_asked_loader`'s method, name and source) once `ckpt_path` is loaded."""
        t = self.trainer
        method = _STAGE_NAMES[stage]
        status = "failed"
        try:
            # The one it loads, before it is loaded (as Lightning's resume_start: a failed load leaves a path
            # set as trainer.ckpt_path for the next stage); none where it is given the model's own weights.
            # ("best" / "last" found first: one that names nothing is refused before it is set, as Lightning's
            # _select_ckpt_path.)
            ckpt_path = t.callbacks.checkpoint_path(ckpt_path) if ckpt_path else None
            t._ckpt_path = ckpt_path
            if ckpt_path:
                t._restore(ckpt_path, full=False)
            # Asked for once the datamodule and the module are set up and the checkpoint is loaded (its
            # on_load_checkpoint may read back what the loader needs), as in Lightning; not asked for by a
            # stage turned off (limit_test_batches=0: a test_dataloader() that builds a dataset is not
            # called, as in Lightning, and the stage's loader attribute stays None).
            if not (loader is None and t._turned_off(stage)):
                method_name, name, source = asked
                loader = self._asked_loader(method_name, name, source, stage, model, loader)
            if stage == "test":
                t._test_loader = loader
            elif stage == "val":
                t._validate_loader = loader
            else:
                t._predict_loader = loader
            t._forget_reported_metrics()
            if stage != "predict":
                t._log_scored_hyperparameters(model)
            with t._on_device():
                if t._turned_off(stage):
                    # Lightning's empty result (the setup and teardown hooks still run, no stage hook: an
                    # "epoch" prediction writer is not called with nothing); predict's is None in
                    # Lightning, [] here with return_predictions=True, as the overloads type it.
                    out = None if stage == "predict" and not keep else []
                elif stage == "predict":
                    out = self.predict(model, loader, keep)
                else:
                    means = self.validate(model, loader) if stage == "val" else self.test(model, loader)
                    # Lightning's return value: the logged metrics (not those logged with logger=False).
                    kept = {k: v for k, v in means.items() if k not in self.unlogged.get(stage, ())}
                    if self.loader_names is None:
                        out = [Metrics(kept)]
                    else:  # (one dict for each loader, as Lightning's: its names, and what hooks logged)
                        out = [
                            Metrics({k: v for k, v in kept.items() if self._of_loader(k, i)})
                            for i in range(len(self.loader_names))
                        ]
            status = "success"
            return out
        except BaseException as err:
            # A Ctrl-C (no stop handler runs outside fit: a KeyboardInterrupt) is a stop by hand, not a
            # crash: status "interrupted" and `trainer.interrupted`, as Lightning 2.6.6 has them, before
            # on_exception and through the teardown hooks (which close the loggers' runs as a fit's stop
            # does, MLflow's KILLED).
            if isinstance(err, KeyboardInterrupt):
                status = "interrupted"
                t.interrupted = self.stage_interrupted = True
            t._state_tracker.status = status  # (before on_exception, as Lightning's)
            t._on_exception(model, err)
            raise
        finally:
            if status != "success":
                t._state_tracker.status = status
            t._teardown(model, method, status, (loader,))

    def _of_loader(self, name: str, index: int) -> bool:
        """Whether a value of the last stage with several loaders is in loader `index`'s result, as in
        Lightning: what its step logged, what its batch hooks logged (`name/dataloader_idx_<index>`), and
        what no loader's step or batch hooks logged (an epoch-end hook's value: in every loader's)."""
        names = self.loader_names or []
        if name in names[index] or name.endswith(dataloader_suffix(index)):
            return True
        return not any(name in other for other in names) and "/dataloader_idx_" not in name

    def _best_of_the_last_fit(self, method: str) -> str | None:
        """Lightning's checkpoint for validate/test/predict called without a model: the best of the
        ModelCheckpoint that monitors a metric (with a warning, as Lightning's). None, for the module's
        current weights, where there is no such best (no ModelCheckpoint monitors a metric, or it saved
        nothing): those are what the default `last` holds anyway."""
        t = self.trainer
        monitoring = [cb for cb in t.checkpoint_callbacks if cb.monitor]
        if t.module is None or not monitoring or not monitoring[0].best_model_path:
            return None
        best = monitoring[0]
        score = f", {best.monitor}={best.best_model_score:.6g}" if best.best_model_score is not None else ""
        warnings.warn(
            f"Trainer.{method}(ckpt_path=None) was called without a model: the best model of the previous "
            f"fit will be used ({best.best_model_path}{score}), as in Lightning. Pass ckpt_path='best' or "
            f"'last' to silence this warning, or the model ({method}(model, ...)) to use its current weights",
            stacklevel=4,
        )
        return "best"


@contextlib.contextmanager
def _sigterm_stops_the_stage(method: str) -> Iterator[None]:
    """SIGTERM (`timeout`, `kill`, a cluster's time limit) stops a `validate`, `test` or `predict` as Ctrl-C
    does, as Lightning 2.6.6's SIGTERMException does: `on_exception`, the teardown hooks and the loggers'
    `finalize` run, status "interrupted". Its default action ended the process at once, the loggers' runs
    left open (an MLflow run RUNNING). Then one line, and a script ends with status 143, no traceback
    (`SaveAborted`; an interactive session gets the KeyboardInterrupt). In the main thread, where SIGTERM
    has its default action or a handler of the program's own (a launcher's, such as submitit's), which runs
    first, as Lightning's `_HandlersCompose` runs it (what it raises goes on at once: nothing is to save).
    A fit's stop handler (a stage a callback runs), a recipe command's, or an ignored SIGTERM stays."""
    from audiotrain.train.interrupt import _installed

    current = signal.getsignal(signal.SIGTERM)
    programs = (
        current
        if callable(current) and current not in _installed and not getattr(current, "in_place_of_default", 0)
        else None
    )
    if threading.current_thread() is not threading.main_thread() or (
        current != signal.SIG_DFL and programs is None
    ):
        yield
        return

    def stops(signum: int, frame: Any) -> None:
        if programs is not None:
            programs(signum, frame)
        _sigterm_stops(signum, frame)

    previous = signal.signal(signal.SIGTERM, stops)
    try:
        yield
    except StoppedBySignal as stop:
        if interactive_session():
            raise
        print(f"Interrupted by SIGTERM: trainer.{method} stopped; nothing is returned", file=sys.stderr)
        raise SaveAborted(stop_status(stop.signum)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


_LOADER_NAMES = {"val": "val_dataloader", "test": "test_dataloader", "predict": "predict_dataloader"}


def _take(iterator: Any, n: int):
    """The first `n` items of `iterator` (all of them for -1), leaving it open for the caller to close."""
    for index, item in enumerate(iterator):
        if n != -1 and index >= n:
            return
        yield item


__all__ = ["EvaluationLoop"]


def _is_generator(loader: Any) -> bool:
    """Whether `loader` (or one of Lightning's several loaders in it) is an iterator, which a sanity check
    would take batches from for good."""
    several = several_loaders(loader)
    return any(isinstance(one, Iterator) for one in (several if several is not None else [loader]))
