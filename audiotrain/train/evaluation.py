"""The Trainer's evaluation loops: validation inside `fit` and on its own (`validate`), `test`, and the
sanity check that runs a few validation batches before training.

Separate from the training loop in `trainer.py`: these loops run the compiled `EvalStep` (no gradients,
no optimizer), weight their means by batch size and report `val_*` / `test_*` metrics; the training
loop calls `_run_validation` where a validation is due. `EvaluationMixin` is one of the classes
`Trainer` is made of.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

from audiotrain.train import checkpoint as ckpt
from audiotrain.train import flags
from audiotrain.train.batches import one_loader
from audiotrain.train.lazy import LazyScalar
from audiotrain.train.module import TrainModule
from audiotrain.train.reporting import prefixed
from audiotrain.train.step import EvalStep

import mlx.core as mx


class EvaluationMixin:
    """`validate`, `test` and the validation loops `fit` runs."""

    def _eval_step(self, module: TrainModule, stage: str) -> EvalStep:
        if stage not in self._eval_steps:
            fn = module.validation_step if stage == "val" else module.test_step
            name = "validation_step" if stage == "val" else "test_step"
            self._eval_steps[stage] = EvalStep(
                module, fn, name, compile=self.compile, precision=self.precision
            )
        return self._eval_steps[stage]

    def _evaluate(
        self, module: TrainModule, loader: Any, stage: str, stoppable: bool = False
    ) -> dict[str, float] | None:
        """Means over the loader weighted by `module.batch_size(batch)`; keys prefixed `val_`/`test_`.

        With `stoppable` (validation inside `fit`), a Ctrl-C ends it after the current batch and the
        result is None: partial means would be biased, so nothing is logged or compared.
        """
        limit_value = self.fast_dev_run or self.limit_val_batches
        n_batches = flags.resolve_limit(limit_value, self._loader_len(loader), f"limit_{stage}_batches")
        self.num_val_batches = n_batches
        was_training = module.training
        module.eval()
        step = self._eval_step(module, stage)
        sums: dict[str, mx.array] = {}
        before = None  # the sums up to the batch before, while the device may still run this one
        total = 0
        hook = "on_validation_batch_end" if stage == "val" else "on_test_batch_end"
        for batch_idx, batch in enumerate(loader):
            if n_batches is not None and batch_idx >= n_batches:
                break
            if stoppable and self.interrupted:
                break
            self._check_batch(batch)
            loss, metrics = step(batch)
            weight = module.batch_size(batch)
            for k, v in {"loss": loss, **metrics}.items():
                sums[k] = sums.get(k, 0.0) + v * weight
            total += weight
            # As in training: the device evaluates this batch while the host fetches the next one, and
            # waiting for the batch before bounds what is in flight.
            mx.async_eval(sums)
            if before is not None:
                mx.eval(before)
            before = dict(sums)
            self._callbacks(
                hook,
                {"loss": LazyScalar(loss), **{k: LazyScalar(v) for k, v in metrics.items()}},
                batch,
                batch_idx,
            )
        if was_training:
            module.train()
        if stoppable and self.interrupted:
            return None
        if total == 0:
            warnings.warn(f"Trainer: the {stage} loader yielded no batches", stacklevel=3)
            return {}
        return {prefixed(f"{stage}_", k): float(v.item()) / total for k, v in sums.items()}

    def _sanity_check(self, module: TrainModule, loader: Any) -> None:
        """Run the first `num_sanity_val_steps` validation batches before training, as Lightning does:
        a mistake only validation reaches (a bad batch, a broken `validation_step`) fails now, not
        after a whole training epoch. Nothing is logged or called back, and the random state is put
        back, so a run is the same with or without the check."""
        n = self.num_sanity_val_steps
        if n == 0 or self.fast_dev_run or isinstance(loader, Iterator):
            return  # (a generator would lose the batches the check drew)
        limit = flags.resolve_limit(self.limit_val_batches, self._loader_len(loader), "limit_val_batches")
        if limit is not None:
            n = limit if n == -1 else min(n, limit)
        rng_before = ckpt.rng_state()
        self.sanity_checking = True
        module.eval()
        iterator = iter(loader)
        try:
            step = self._eval_step(module, "val")
            for batch_idx, batch in enumerate(iterator):
                if n != -1 and batch_idx >= n:
                    break
                self._check_batch(batch)
                mx.eval(step(batch))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
            self.sanity_checking = False
            module.train()
            ckpt.restore_rng(rng_before)

    def _run_validation(
        self, module: TrainModule, loader: Any, during_fit: bool = False
    ) -> dict[str, float] | None:
        """Validate, log and run the validation-end hooks; None if Ctrl-C stopped it (in `fit`)."""
        rng_before = ckpt.rng_state() if during_fit else None
        module.on_validation_start()
        self._callbacks("on_validation_start")
        metrics = self._evaluate(module, loader, "val", stoppable=during_fit)
        if metrics is None:
            # Stopped: the checkpoint gets the random state the validation started from, so the
            # rerun after resuming draws what an uninterrupted one would have.
            ckpt.restore_rng(rng_before)
            return None
        metrics.update(self._pop_module_logs())
        self.callback_metrics.update(metrics)
        self.log_metrics(metrics, step=self.global_step)
        module.on_validation_end(metrics)
        # What the hook logged counts for this validation (callbacks below can monitor it).
        late = self._pop_module_logs()
        if late:
            metrics.update(late)
            self.callback_metrics.update(late)
            self.log_metrics(late, step=self.global_step)
        self._callbacks("on_validation_end")
        return metrics

    def validate(
        self,
        model: TrainModule,
        val_loader: Any = None,
        ckpt_path: str | None = None,
        *,
        dataloaders: Any = None,
    ) -> dict[str, float]:
        """Run validation once; returns `val_*` metrics (means weighted by batch size).
        `dataloaders` is Lightning's name for `val_loader`."""
        loader = one_loader("validate", "val_loader", val_loader, "dataloaders", dataloaders, required=True)
        return self._standalone_eval(model, loader, ckpt_path, "val")

    def test(
        self,
        model: TrainModule,
        test_loader: Any = None,
        ckpt_path: str | None = None,
        *,
        dataloaders: Any = None,
    ) -> dict[str, float]:
        """Run `test_step` over `test_loader`; returns `test_*` metrics.
        `dataloaders` is Lightning's name for `test_loader`."""
        loader = one_loader("test", "test_loader", test_loader, "dataloaders", dataloaders, required=True)
        return self._standalone_eval(model, loader, ckpt_path, "test")

    def _standalone_eval(
        self, model: TrainModule, loader: Any, ckpt_path: str | None, stage: str
    ) -> dict[str, float]:
        self._prepare_loader(loader, f"{stage}_loader")
        if self.module is not model:
            self._attach(model, "validate" if stage == "val" else "test")
            self._eval_steps = {}
        if ckpt_path:
            self._restore(self._checkpoint_alias(ckpt_path), full=False)
        if stage == "val":
            metrics = self._run_validation(model, loader)
        else:
            model.on_test_start()
            self._callbacks("on_test_start")
            metrics = self._evaluate(model, loader, "test")
            self.callback_metrics.update(metrics)
            self.log_metrics(metrics, step=self.global_step)
            model.on_test_end(metrics)
            self._callbacks("on_test_end")
        # As after fit (and as Lightning does): an MLflow run reopened for these metrics is closed.
        for lg in self.loggers:
            if hasattr(lg, "finalize"):
                lg.finalize("success")
        return metrics
