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
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from audiotrain.data.workers import DataLoaderError
from audiotrain.distributed import collectives
from audiotrain.train import flags, hook_logs, hook_state, hooks
from audiotrain.train.evaluation import EvalSums, eval_mode, evaluate, logged_name
from audiotrain.train.loaders import (
    check_batch,
    checkpoint_argument,
    datamodule_given_as_loader,
    loader_len,
    loader_source,
    loaders_from,
    missing_loader,
    one_loader,
    prepare_data,
    prepare_loader,
    warn_of_unsharded_user_order,
    why_no_batches,
)
from audiotrain.train.metric_values import Metrics
from audiotrain.train.module import TrainModule
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


def batch_count(limit: int | None) -> int | float:
    """A stage's count of batches as the Trainer reports it: inf where the loader ends it (no length, or a
    stream read to its end), as Lightning counts it, so that `min(trainer.num_val_batches, n)` works."""
    return math.inf if limit is None else limit


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
        # The batches this fit's validations have read: one that then reads none was given an iterator.
        self.val_batches_in_fit = 0
        # The stages whose loader was checked for a user sampler that gives every rank the same batches:
        # once a fit, and once for a Trainer's validate / test calls outside one.
        self.orders_checked: set[str] = set()

    def reset(self) -> None:
        """Forget the compiled steps (a new module, or a new fit, traces them again)."""
        self.steps = {}
        self.val_batches_in_fit = 0
        self.orders_checked = set()

    def step(self, module: TrainModule, stage: str) -> EvalStep:
        if stage not in self.steps:
            t = self.trainer
            self.steps[stage] = EvalStep(
                module, stage, compile=t.compile, precision=t.precision, in_fit=t.fitting
            )
        else:  # (a validation in fit after a hook changed what the step read: traced again, as eager reads)
            self.steps[stage].trace_again_if_reads_changed()
        return self.steps[stage]

    def limit(self, stage: str, loader: Any) -> int | None:
        """The batches the stage runs; None: until the loader ends (no length, or a stream without a limit:
        a stream's len(loader) is an estimate, and stopping there would leave samples out of the means)."""
        t = self.trainer
        if t._reads_whole_stream(loader, stage):
            return None
        return t.fast_dev_run or flags.resolve_limit(
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
        return self._stage(module, loader, "val", self.limit("val", loader), stoppable)

    def test(self, module: TrainModule, loader: Any) -> dict[str, float]:
        return self._stage(module, loader, "test", self.limit("test", loader), stoppable=False)

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
            if stage in self.steps:  # (after the end hooks, which may have read them: explained there)
                self.steps[stage].drop_kept_placeholders()

    def _stage_profiled(
        self, module: TrainModule, loader: Any, stage: str, limit: int | None, stoppable: bool
    ) -> dict[str, float] | None:
        t = self.trainer
        name = _HOOK_NAMES[stage]
        if not t.sanity_checking:  # (the check's count is `num_sanity_val_batches`; fit set the stage's)
            # (known from `on_validation_start` on, as in Lightning)
            setattr(t, _BATCH_COUNTS[stage], batch_count(limit))
        hook_logs.drop(module, stage)  # (what the hooks of a stage Ctrl-C cut short logged: it runs again)
        t._call_hooks(f"on_{name}_start")
        t._call_hooks(f"on_{name}_epoch_start")
        metrics = self._run(module, loader, stage, limit, stoppable)
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
        if not t.fitting:
            # Lightning's progress_bar_metrics in `validate` / `test`, from their epoch-end hooks on: what the
            # stage's steps logged with prog_bar=True (in fit the bar shows every validation value:
            # `epoch_validation_metrics`).
            options = self._options(stage)
            shown = {k: v for k, v in metrics.items() if k in options and options[k].prog_bar}
            t._step_logging.hook_bar.update(shown)
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

    def _run(
        self, module: TrainModule, loader: Any, stage: str, limit: int | None, stoppable: bool
    ) -> dict[str, float] | None:
        """Weighted means over the loader; None when a Ctrl-C stopped it (partial means would be biased)."""
        t = self.trainer
        name = _HOOK_NAMES[stage]

        def on_batch_start(batch, batch_idx):
            t._call_hooks(f"on_{name}_batch_start", batch, batch_idx)

        def on_batch(outputs, batch, batch_idx):
            t._call_hooks(f"on_{name}_batch_end", outputs, batch, batch_idx)

        try:
            with eval_mode(module):
                result = evaluate(
                    self.step(module, stage),
                    loader,
                    limit,
                    f"{stage}_",
                    module.batch_size,
                    on_batch,
                    (lambda: t.interrupted) if stoppable else None,
                    on_batch_start,
                    lambda batch: hooks.transfer_batch(batch, module, t.datamodule),
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
        if not t.sanity_checking and stage not in self.orders_checked:  # (the check's loader is a slice)
            self.orders_checked.add(
                stage
            )  # (once a fit or a call, on every rank: the check is a collective, after the stop's return,
            # which a rank whose worker the stop signal ended takes too)
            where = "Trainer.fit" if t.fitting else {"val": "Trainer.validate", "test": "Trainer.test"}[stage]
            warn_of_unsharded_user_order(loader, stage, where)
        in_fit = stage == "val" and t.fitting and not t.sanity_checking
        if in_fit and result.batches == 0 and self.val_batches_in_fit > 0:
            # (A warning and no means left the earlier validation's values in history.json and
            # callback_metrics for every later epoch, where a ModelCheckpoint and EarlyStopping read them.)
            raise ValueError(
                f"Trainer.fit: the validation loader yielded no batches in epoch {t.current_epoch}, after "
                f"{self.val_batches_in_fit} in earlier validations. A generator or iterator (a generator "
                "expression, itertools.chain or zip of loaders) can be consumed only once: pass a list, a "
                "DataLoader, or an object whose __iter__ starts over"
            )
        if in_fit:
            self.val_batches_in_fit += result.batches
        if result.batches == 0:
            # (One sample in batches of 4 with drop_last=True: none.) The sanity check's loader is a
            # slice of the val loader's batches, which tells the reason.
            why = why_no_batches(t.val_dataloaders if t.sanity_checking else loader)
            warnings.warn(f"Trainer: the {stage} loader yielded no batches{why}", stacklevel=3)
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
            t._step_logging.log_at_logged_step(sent)
        # (what `validate`/`test` return leaves them out, as Lightning's: logger=False)
        self.unlogged[stage] = set(metrics) - set(logged) - set(hook_loggers)

    def _options(self, stage: str) -> dict[str, Any]:
        """Each value's `self.log` options, by the name it is reported under: the default step's `acc` is
        reported as `val_acc`, and its logger=False holds there too."""
        step = self.steps.get(stage)
        return {logged_name(step, f"{stage}_", k): v for k, v in step.log_options.items()} if step else {}

    def _to_loggers(self, metrics: dict[str, float], stage: str, hook_values: Any = ()) -> dict[str, float]:
        """What of the stage's step metrics goes to the loggers (not those logged with logger=False)."""
        options = self._options(stage)
        return {
            k: v
            for k, v in metrics.items()
            if k not in hook_values and (k not in options or options[k].logger)
        }

    # ---- sanity check and predict ----------------------------------------------------------------------
    def sanity_check(self, module: TrainModule, loader: Any) -> None:
        """Run the first `num_sanity_val_steps` validation batches before training, as Lightning does:
        a mistake only validation reaches fails now, not after a whole training epoch. As in Lightning,
        `on_sanity_check_start/end` and the validation hooks run with `trainer.sanity_checking` True;
        nothing is logged, and the random state is put back, so a run is the same with or without it."""
        t = self.trainer
        n = t.num_sanity_val_steps
        self.sanity_check_names = None
        if n == 0 or t.fast_dev_run or isinstance(loader, Iterator):
            return  # (a generator would lose the batches the check drew)
        limit = self.limit("val", loader)
        if limit is not None:
            n = limit if n == -1 else min(n, limit)
        random_before = RandomState.capture()
        # The check drops what its hooks log; what hooks logged before it (a resumed run's values waiting
        # for the next logging point) is kept for that point.
        waiting_logs = module._pop_logged()
        # Lightning resets the metrics after the check: what it reported is no training's or monitor's.
        metrics_before = dict(t.callback_metrics)
        iterator = iter(loader)
        try:
            with t._state_tracker.within("sanity_check"):  # (then "train" again, as in Lightning)
                # (Callback hooks only, in Lightning.) A KeyboardInterrupt raised in them stops the fit as
                # one in any other hook of it does.
                with t._stopping.taking_interrupts_in("on_sanity_check_start"):
                    t.callbacks.call("on_sanity_check_start", t, module)
                # Stoppable: a stop in its hooks ends the check after that batch, as the stop's line says
                # (and a hook raising on each batch is not taken for a second Ctrl-C, which aborts).
                try:
                    self._stage(module, _take(iterator, n), "val", None if n == -1 else n, stoppable=True)
                finally:  # (in place: a callback may hold the dict, from on_fit_start)
                    t.callback_metrics.clear()
                    t.callback_metrics.update(metrics_before)
                with t._stopping.taking_interrupts_in("on_sanity_check_end"):
                    t.callbacks.call("on_sanity_check_end", t, module)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
            RandomState.restore(random_before)
            module._logged.clear()  # (what the check's hooks logged)
            module._logged.update(waiting_logs)

    def predict(self, module: TrainModule, loader: Any, keep: bool) -> list[Any] | None:
        """`predict_step` (compiled) over the loader: each batch's output in order, or None if not `keep`.

        Lightning's hooks run around it: `on_predict_start`, `_epoch_start`, `_batch_start` and `_batch_end`
        (with the output: a `BasePredictionWriter` writes it there) around each batch, `_epoch_end`, `_end`.
        Not `keep`, an output is dropped after `on_predict_batch_end`, unless an epoch writer needs them all.
        Under data parallel a batch the loader names as padding (`DataLoader.padding_batches`: a rank a
        batch short) runs, as the ranks step together, but its output is neither returned nor given to the
        batch hooks: it repeats a sample another rank predicts."""
        t = self.trainer
        step = self.step(module, "predict")
        limit = self.limit("predict", loader)
        t.num_predict_batches = batch_count(limit)
        epoch_writer = any(
            isinstance(cb, BasePredictionWriter) and cb.interval.on_epoch for cb in t.callbacks
        )
        self.predictions = outputs = []
        self.batch_indices = []
        try:
            with eval_mode(module):
                t._call_hooks("on_predict_start")
                t._call_hooks("on_predict_epoch_start")
                batches = 0
                for batch_idx, batch in enumerate(profiled_batches(loader, t.profiler, "predict")):
                    if limit is not None and batch_idx >= limit:
                        break
                    batches += 1
                    batch = hooks.transfer_batch(batch, module, t.datamodule)
                    check_batch(batch)
                    padding = batch_idx in getattr(loader, "padding_batches", ())
                    if not padding:
                        t._call_hooks("on_predict_batch_start", batch, batch_idx)
                    with t.profiler.profile("[Trainer].predict_step"):
                        out = step(batch, mx.array(batch_idx, mx.int32))
                    with t.profiler.profile("[Trainer].predict_dispatch"):
                        mx.async_eval(out)
                    if padding:
                        continue
                    self.current_batch_indices = getattr(loader, "current_batch_indices", None)
                    t._call_hooks("on_predict_batch_end", out, batch, batch_idx)
                    if keep or epoch_writer:
                        outputs.append(out)
                        self.batch_indices.append(self.current_batch_indices)
                out = batch = None  # (nothing of the last batch outlives the loop unless kept)
                if batches == 0 and t.limit_predict_batches != 0:  # empty, said as validate and test say it
                    why = why_no_batches(loader)
                    warnings.warn(f"Trainer: the predict loader yielded no batches{why}", stacklevel=5)
                t._call_hooks("on_predict_epoch_end")
                t._call_hooks("on_predict_end")
        finally:
            # (what an epoch writer needed is not held after predict returns)
            self.predictions, self.batch_indices, self.current_batch_indices = [], [], None
        return outputs if keep else None

    # ---- a stage on its own: Trainer.validate / test / predict ------------------------------------------
    def standalone(self, stage, model, loader, alias, datamodule, ckpt_path, keep=True) -> Any:
        """`Trainer.validate` / `test` / `predict`: their arguments checked, the module attached, the stage
        run between its `setup` and `teardown` hooks, the Trainer's state through it."""
        t = self.trainer
        method = _STAGE_NAMES[stage]
        ckpt_path = checkpoint_argument(method, ckpt_path)
        name = {"val": "val_loader", "test": "test_loader", "predict": "dataloaders"}[stage]
        loader = one_loader(method, name, loader, "dataloaders", alias) if stage != "predict" else loader
        loader, datamodule = datamodule_given_as_loader(method, loader, datamodule)
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
        if model is None:
            raise TypeError(f"Trainer.{method}: pass the model (no module is attached to this Trainer yet)")
        if str(ckpt_path) in ("best", "last"):
            # Named before the module is attached, as fit names it: the module's configure_callbacks()
            # then replaces the ModelCheckpoint that saved the fit's best by a fresh one that saved nothing
            # (Lightning too selects the path before it attaches the module's callbacks).
            with contextlib.suppress(ValueError):  # nothing saved: refused below, with the reason
                ckpt_path = t.callbacks.checkpoint_path(ckpt_path)
        prepare_data(t, datamodule, model)
        # Traced again at each call, as `fit` traces its steps: a trace holds the Python values the module
        # read then, and a notebook changes them between calls (`model.temperature = 5.0`); a kept one gave
        # the earlier call's numbers.
        self.reset()
        t.datamodule = datamodule
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
                    hook_state.restore_datamodule_state(datamodule, ckpt_path)
                # Asked for once the datamodule and the module are set up, as in Lightning.
                loader = loaders_from(source, {stage: loader})[stage]
                if loader is None:
                    raise TypeError(missing_loader(method, name, source, stage))
                prepare_loader(loader, name, t.seed, evaluation=True)  # (predict too: no sample repeated)
                hooks.refuse_required_dataloader_idx(t.callbacks, model, method)
                if stage == "test":
                    t._test_loader = loader
                elif stage == "val":
                    t._validate_loader = loader
                else:
                    t._predict_loader = loader
            out = self._run_attached(stage, model, loader, ckpt_path, keep)
            t._state_tracker.status = "finished"  # (after teardown, as in Lightning)
            return out
        finally:
            t._state_tracker.end()

    def _run_attached(self, stage, model, loader, ckpt_path, keep) -> Any:
        """A standalone stage between the `setup` and the `teardown` hooks (`on_exception` on an error)."""
        t = self.trainer
        method = _STAGE_NAMES[stage]
        status = "failed"
        try:
            t.ckpt_path = None  # (a stage given the model's own weights loads none, as in Lightning)
            if ckpt_path:
                t._restore(t.callbacks.checkpoint_path(ckpt_path), full=False)
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
                    out = [Metrics(kept)]
            status = "success"
            return out
        except BaseException as err:
            t._state_tracker.status = "failed"  # (before on_exception, as Lightning's "interrupted")
            t._on_exception(model, err)
            raise
        finally:
            if status != "success":
                t._state_tracker.status = "failed"  # (as Lightning's "interrupted")
            t._teardown(model, method, status, (loader,))

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


def _take(iterator: Any, n: int):
    """The first `n` items of `iterator` (all of them for -1), leaving it open for the caller to close."""
    for index, item in enumerate(iterator):
        if n != -1 and index >= n:
            return
        yield item


__all__ = ["EvaluationLoop"]
