"""Resuming: the Trainer's checkpoints (what `save_checkpoint` writes and `fit(ckpt_path=...)` restores)
and the Ctrl-C handling that saves one when a fit is stopped.

Separate from the training loop in `trainer.py`: this is the one place that lists the Trainer's
progress state (epoch, batch in the epoch, step, accumulation window, running sums, random state, the
data loader's position, callbacks and loggers), both ways, so a resumed fit continues exactly where the
saved one stopped. `ResumeMixin` is one of the classes `Trainer` is made of; the files themselves are
written and read by `checkpoint.py`.
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import threading
from pathlib import Path
from typing import Any

from audiotrain.train import checkpoint as ckpt
from audiotrain.train.callbacks import ModelCheckpoint

import mlx.core as mx


class ResumeMixin:
    """Checkpoints of the whole training state, and saving one on Ctrl-C."""

    # ---- checkpoints ---------------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        opt = self.optimizer
        return {
            "trainer": {
                "max_epochs": self.max_epochs,
                "max_steps": self.max_steps,
                "val_check_interval": self.val_check_interval,
                "gradient_clip_val": self.gradient_clip_val,
                "gradient_clip_algorithm": self.gradient_clip_algorithm,
                "accumulate_grad_batches": self.accumulate_grad_batches,
                "precision": self.precision,
                "seed": self.seed,
                "compile": self.compile,
                "log_every_n_steps": self.log_every_n_steps,
            },
            "module": type(self.module).__name__ if self.module is not None else None,
            "optimizer": type(opt).__name__ if opt is not None else None,
            "lr_schedule_name": self.optimizer_config.lr_schedule_name if self.optimizer_config else None,
        }

    def save_checkpoint(self, path: str | os.PathLike) -> Path:
        """Write a resumable checkpoint folder (atomically) at `path`."""
        if self.module is None:
            raise RuntimeError("Trainer.save_checkpoint: no module attached yet (call fit/validate first)")
        loader = self._train_loader
        epoch_done = self._epoch_complete
        state: dict[str, Any] = {
            "epoch": self.current_epoch + 1 if epoch_done else self.current_epoch,
            "batch_in_epoch": 0 if epoch_done else self.batch_in_epoch,
            "global_step": self.global_step,
            "total_train_batches": self.total_train_batches,
            "micro_batches_in_window": self._micro,
            "rng": ckpt.rng_state(),
            "data_loader": (
                loader.state_dict() if hasattr(loader, "state_dict") and not epoch_done else None
            ),
            "epoch_sums": {k: float(v.item()) for k, v in self._epoch_sums.items()} if not epoch_done else {},
            "epoch_weight": self._epoch_weight if not epoch_done else 0.0,
            "validation_pending": self._validation_pending and not epoch_done,
            "callbacks": {cb.state_key: cb.state_dict() for cb in self.callbacks},
            "loggers": [lg.state_dict() if hasattr(lg, "state_dict") else {} for lg in self.loggers],
            "callback_metrics": self.callback_metrics,
            "history": self._history_rows,
            "elapsed": self.elapsed(),
            "config": self._config(),
            "versions": {
                "audiotrain": _version(),
                "mlx": getattr(mx, "__version__", "unknown"),
                "python": platform.python_version(),
            },
            "module_state": {},
        }
        self.module.on_save_checkpoint(state["module_state"])
        for cb in self.callbacks:
            cb.on_save_checkpoint(self, self.module, state)
        optimizer_arrays = ckpt.flat(self.optimizer.state) if self.optimizer is not None else {}
        step_arrays = self._train_step.state.flat() if self._train_step is not None else {}
        return ckpt.write_checkpoint(
            path, ckpt.flat(self.module.parameters()), optimizer_arrays, step_arrays, state
        )

    def _checkpoint_alias(self, path: str | os.PathLike | None) -> str | os.PathLike | None:
        """Lightning's ``ckpt_path="best"`` / ``"last"``: the first ModelCheckpoint's best or last."""
        if str(path) not in ("best", "last"):
            return path
        found = [cb for cb in self.callbacks if isinstance(cb, ModelCheckpoint)]
        attribute = "best_model_path" if str(path) == "best" else "last_model_path"
        target = getattr(found[0], attribute, "") if found else ""
        if not target:
            why = (
                "no ModelCheckpoint callback"
                if not found
                else f"its {attribute} is empty (nothing saved yet)"
            )
            raise ValueError(f'ckpt_path="{path}": this Trainer has {why}; pass a checkpoint folder')
        return target

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore from a checkpoint folder now (if a module is attached) or at the next `fit`."""
        if self.module is None or self.optimizer is None:
            ckpt.read_state(ckpt.resolve_checkpoint(path))  # fail early on a bad folder
            self._pending_ckpt = str(path)
            return
        self._restore(path, full=True)

    def _restore(self, path: str | os.PathLike, full: bool) -> None:
        folder = ckpt.resolve_checkpoint(path)
        state = ckpt.read_state(folder)
        module = self.module
        model_file = folder / ckpt.MODEL_FILE
        module.update(
            ckpt.checked_tree(
                ckpt.read_arrays(model_file),
                module.parameters(),
                f"{type(module).__name__} model",
                model_file,
            )
        )
        mx.eval(module.parameters())
        module.on_load_checkpoint(state.get("module_state", {}))
        if not full:
            return
        opt_file = folder / ckpt.OPTIMIZER_FILE
        opt_tree = ckpt.checked_tree(
            ckpt.read_arrays(opt_file),
            dict(self.optimizer.state),
            f"{type(self.optimizer).__name__} optimizer state",
            opt_file,
        )
        # Update in place: the compiled step holds a reference to this dict.
        self.optimizer.state.update(opt_tree)
        step_file = folder / ckpt.STEP_STATE_FILE
        step_arrays = ckpt.read_arrays(step_file)
        if step_arrays:
            arrays = self._train_step.state.arrays
            saved_accumulates = any(k.startswith("grad_accum.") for k in step_arrays)
            if saved_accumulates != ("grad_accum" in arrays):
                raise ckpt.CheckpointError(
                    f"{folder} was saved with accumulate_grad_batches "
                    f"{'> 1' if saved_accumulates else '= 1'}, this Trainer has {self.accumulate_grad_batches}: "
                    "resume with the same accumulation (the accumulated gradients are part of the state)"
                )
            arrays.update(ckpt.checked_tree(step_arrays, dict(arrays), "training step state", step_file))
        self.current_epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.global_step = int(state["global_step"])
        self.total_train_batches = int(state.get("total_train_batches", 0))
        self._micro = int(state.get("micro_batches_in_window", 0))
        self._pending_loader_state = state.get("data_loader") if self.batch_in_epoch else None
        self._epoch_sums = {k: mx.array(v, mx.float32) for k, v in state.get("epoch_sums", {}).items()}
        self._epoch_weight = float(state.get("epoch_weight", 0.0))
        self._validation_pending = bool(state.get("validation_pending", False))
        self.callback_metrics = dict(state.get("callback_metrics", {}))
        self._history_rows = list(state.get("history", []))
        self._elapsed_before = float(state.get("elapsed", 0.0))
        ckpt.restore_rng(state["rng"])
        saved_callbacks = state.get("callbacks", {})
        for cb in self.callbacks:
            if cb.state_key in saved_callbacks:
                cb.load_state_dict(saved_callbacks[cb.state_key])
            cb.on_load_checkpoint(self, module, state)
        for lg, lg_state in zip(self.loggers, state.get("loggers", [])):
            if hasattr(lg, "load_state_dict"):
                lg.load_state_dict(lg_state)
        mx.eval(self._train_step.eval_targets)

    # ---- Ctrl-C --------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _sigint_guard(self):
        """First Ctrl-C: finish the current step, save a checkpoint, return from fit. Second: abort."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self.interrupted:
                raise KeyboardInterrupt
            self.interrupted = True
            self.print(
                "\nInterrupted: saving a checkpoint after this step or validation batch "
                "(Ctrl-C again to abort without saving)"
            )

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _save_on_interrupt(self) -> None:
        # As in Lightning, callbacks hear of a Ctrl-C through on_exception (the progress bar closes).
        interrupt = KeyboardInterrupt()
        for cb in self.callbacks:
            with contextlib.suppress(Exception):
                cb.on_exception(self, self.module, interrupt)
        path = self.default_root_dir / "checkpoints" / "interrupted"
        # `last` stays the newest state, so ckpt_path="last" resumes from here, not from the last save.
        keep_last = [
            cb
            for cb in self.callbacks
            if isinstance(cb, ModelCheckpoint) and cb.save_last and not self.fast_dev_run
        ]
        for cb in keep_last:
            cb.last_model_path = cb.last_path  # before the save: the checkpoint records it
        self.save_checkpoint(path)
        self.interrupted_checkpoint = path
        for cb in keep_last:
            ckpt.copy_checkpoint(path, cb.last_path)
        saved = f"Saved {path} at epoch {self.current_epoch}, global step {self.global_step}."
        hint = self.resume_hint.format(path=str(path)) if self.resume_hint else ""
        self.print(f"{saved} {hint}".rstrip())


def _version() -> str:
    from audiotrain import __version__

    return __version__
