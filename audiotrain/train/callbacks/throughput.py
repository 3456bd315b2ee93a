"""`ThroughputMonitor`: Lightning's callback that logs batches, samples and items (seconds of audio) per
second of training, validation, test and prediction."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from audiotrain.train.callback import Callback, _RunReference

if TYPE_CHECKING:
    from audiotrain.train.trainer import Trainer

#: The stages measured, by Lightning's names (`RunningStage`'s values), which prefix the logged metrics.
STAGES = ("train", "validate", "test", "predict")


class Throughput:
    """Rolling rates over the last `window_size` batches of one stage (Lightning's `Throughput`): give it the
    running totals after each batch (`update`), read the metrics (`compute`).

    `compute` gives ``time``, ``batches``, ``samples`` (and ``lengths``) totals at once, and, once the window
    is full, ``device/batches_per_sec``, ``device/samples_per_sec`` (``device/items_per_sec`` where lengths
    are given: the items counted per second; ``device/flops_per_sec`` where the flops of a batch are given)
    and, under data parallel (`world_size` > 1), the job's: the same without ``device/``, times `world_size`
    (every process is taken to run at this one's rate)."""

    def __init__(self, world_size: int = 1, window_size: int = 100, separator: str = "/") -> None:
        if isinstance(window_size, bool) or not isinstance(window_size, int) or window_size < 2:
            raise ValueError(
                f"ThroughputMonitor(window_size={window_size!r}): expected an int >= 2 (the rates compare "
                "the window's first and last batches)"
            )
        if not isinstance(separator, str) or not separator:
            raise ValueError(
                f"ThroughputMonitor(separator={separator!r}): expected a non-empty str such as '/'"
            )
        self.world_size = world_size
        self.window_size = window_size
        self.separator = separator
        self._time: deque[float] = deque(maxlen=window_size)
        self._batches: deque[int] = deque(maxlen=window_size)
        self._samples: deque[float] = deque(maxlen=window_size)
        self._lengths: deque[float] = deque(maxlen=window_size)
        self._flops: deque[float] = deque(maxlen=window_size)

    def reset(self) -> None:
        for window in (self._time, self._batches, self._samples, self._lengths, self._flops):
            window.clear()

    def update(
        self,
        *,
        time: float,
        batches: int,
        samples: float,
        lengths: float | None = None,
        flops_per_batch: float | None = None,
    ) -> None:
        """The totals since the stage started: seconds, batches, samples (and the samples' lengths); the
        flops of this process's last batch."""
        self._time.append(time)
        self._batches.append(batches)
        self._samples.append(samples)
        if lengths is not None:
            self._lengths.append(lengths)
        if flops_per_batch is not None:
            self._flops.append(flops_per_batch * self.world_size)

    def compute(self) -> dict[str, float]:
        if not self._time:
            return {}
        sep = self.separator
        metrics: dict[str, float] = {
            "time": self._time[-1],
            # (as the counts came: ints where batch_size_fn gives ints, as Lightning logs them)
            "batches": self._batches[-1],
            "samples": self._samples[-1],
        }
        if self._lengths:
            metrics["lengths"] = self._lengths[-1]
        several = self.world_size > 1
        if len(self._time) == self.window_size:
            elapsed = self._time[-1] - self._time[0]
            batches = self._batches[-1] - self._batches[0]
            samples = self._samples[-1] - self._samples[0]
            if elapsed > 0:
                metrics[f"device{sep}batches_per_sec"] = batches / elapsed
                metrics[f"device{sep}samples_per_sec"] = samples / elapsed
                if several:
                    metrics["batches_per_sec"] = batches / elapsed * self.world_size
                    metrics["samples_per_sec"] = samples / elapsed * self.world_size
                if len(self._lengths) == self.window_size:
                    # (Lightning 2.6's arithmetic: the items length_fn counted in the window, per second)
                    items = self._lengths[-1] - self._lengths[0]
                    metrics[f"device{sep}items_per_sec"] = items / elapsed
                    if several:
                        metrics["items_per_sec"] = items / elapsed * self.world_size
        if len(self._flops) == self.window_size and len(self._time) == self.window_size:
            elapsed = self._time[-1] - self._time[0]
            if elapsed > 0:
                flops_per_sec = (sum(self._flops) - self._flops[0]) / elapsed
                metrics[f"device{sep}flops_per_sec"] = flops_per_sec / self.world_size
                if several:
                    metrics["flops_per_sec"] = flops_per_sec
        return metrics


class ThroughputMonitor(Callback):
    """Lightning's callback: log how fast each stage goes, to the Trainer's loggers, as
    ``<stage>/<metric>`` (stage ``train``, ``validate``, ``test`` or ``predict``; `Throughput` lists the
    metrics): ``train/device/samples_per_sec``, ``train/device/items_per_sec``, ``train/time``, ...

    `batch_size_fn(batch)` gives the samples of a batch (``lambda batch: batch[0].shape[0]``);
    `length_fn(batch)` the items in it, for ``lengths`` and ``items_per_sec`` (for audio, its seconds:
    ``lambda batch: batch[0].size / 16000`` for a [batch, samples] array makes ``lengths`` the seconds of
    audio trained on and ``items_per_sec`` those per second), as Lightning 2.6 counts them. The rates are
    rolling over the last `window_size` batches (none until that many ran); `separator` joins the names. A
    module with a ``flops_per_batch`` attribute adds ``flops_per_sec``.

    Training is logged at each logging step (`log_every_n_steps`, once an accumulation window is stepped) at
    the global step, its time leaving out the validations inside it; validation, test and prediction at every
    `log_every_n_steps`-th batch of the stage, at the stage's count of batches so far, from 1 again in each
    validation of a fit, and going on from the run before in a second `validate`, `test` or `predict` (its
    counts too, its time and rates its own; a `validate` after a fit logs from step 1, its counts going on
    from the fit's validation: Lightning's step and counts for them). Rank 0 measures and logs
    (under data parallel, the job's rates are its own times the processes).

    MLX evaluates lazily, so the time read after a batch is the host's, which runs at most one step ahead of
    the device (the loop waits for the step before): over a window of batches the rate is the device's within
    one step, without the synchronisation Lightning makes on CUDA. Each fit starts afresh (a resumed one
    too). Unlike Lightning there is no ``mfu`` (MLX has no table of devices' peak flops) and no warning for a
    module without ``flops_per_batch``.
    """

    def __init__(
        self,
        batch_size_fn: Callable[[Any], Any],
        length_fn: Callable[[Any], Any] | None = None,
        window_size: int = 100,
        separator: str = "/",
    ) -> None:
        if not callable(batch_size_fn):
            raise TypeError(
                f"ThroughputMonitor(batch_size_fn={batch_size_fn!r}): expected a function of a batch giving "
                "its number of samples, e.g. lambda batch: batch[0].shape[0]"
            )
        if length_fn is not None and not callable(length_fn):
            raise TypeError(
                f"ThroughputMonitor(length_fn={length_fn!r}): expected a function of a batch giving the "
                "items in it (e.g. its seconds of audio), or None"
            )
        Throughput(window_size=window_size, separator=separator)  # (its arguments checked now)
        self.batch_size_fn = batch_size_fn
        self.length_fn = length_fn
        self.window_size = window_size
        self.separator = separator
        self._throughputs: dict[str, Throughput] = {}
        self._started: dict[str, float] = {}
        self._counts: dict[str, list[float]] = {}  # stage -> [batches, samples, lengths]
        # The batches of each evaluation loop, (stage, in a fit): its logging step, as Lightning's loop count.
        self._loop_batches: dict[tuple[str, bool], int] = {}
        self._loops_trainer: _RunReference | None = None  # the Trainer whose loops `_loop_batches` counts
        self._validation_started: float | None = None
        #: The metrics each stage logged last (``{"train": {...}}``), read back here as the loggers got them.
        self.metrics: dict[str, dict[str, float]] = {}

    def setup(self, trainer: Trainer, module, stage: str) -> None:
        self._throughputs = {
            name: Throughput(trainer.world_size, self.window_size, self.separator) for name in STAGES
        }
        self.metrics = {}
        if self._loops_trainer is None or self._loops_trainer() is not trainer:
            # Those loops are the Trainer's: a new Trainer's logs from step 1, as Lightning 2.6.6's (whose
            # step is its own loop's count), while the counts logged go on (kept by the callback there too).
            self._loop_batches = {}
            self._loops_trainer = _RunReference(trainer)

    def _start(self, stage: str, afresh: bool) -> None:
        """A run of `stage` starts: its clock and its window of rates afresh, its counts too where `afresh`
        (or none yet): as Lightning 2.6.6, whose second `trainer.validate(...)` goes on counting batches and
        samples from the first's (and logs at the steps after the first's), and whose clock restarts."""
        self._throughputs[stage].reset()
        if afresh or stage not in self._counts:
            self._counts[stage] = [0, 0, 0]
        self._started[stage] = time.perf_counter()

    def _update(self, trainer: Trainer, module, stage: str, batch: Any) -> None:
        elapsed = time.perf_counter() - self._started[stage]
        counts = self._counts[stage]
        counts[0] += 1
        counts[1] += _number(self.batch_size_fn(batch), "batch_size_fn")
        if self.length_fn is not None:
            counts[2] += _number(self.length_fn(batch), "length_fn")
        flops = getattr(module, "flops_per_batch", None)
        self._throughputs[stage].update(
            time=elapsed,
            batches=int(counts[0]),
            samples=counts[1],
            lengths=counts[2] if self.length_fn is not None else None,
            flops_per_batch=_number(flops, "flops_per_batch") if flops is not None else None,
        )

    def _log(self, trainer: Trainer, stage: str, step: int) -> None:
        sep = self.separator
        metrics = {f"{stage}{sep}{k}": v for k, v in self._throughputs[stage].compute().items()}
        self.metrics[stage] = metrics
        if metrics and trainer._writing_loggers:
            trainer.log_metrics(metrics, step=step)

    # -- training ----------------------------------------------------------------------------------------
    def on_train_start(self, trainer, module) -> None:
        if trainer.is_global_zero:
            self._start("train", afresh=True)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if not trainer.is_global_zero or outputs is None:  # (None: a batch the loader yielded as None)
            return
        self._update(trainer, module, "train", batch)
        if outputs.get("stepped", True) and trainer.is_logging_step():
            self._log(trainer, "train", trainer._logging_step())  # (a manual module's: its batch count)

    # -- evaluation --------------------------------------------------------------------------------------
    def _evaluation_start(self, trainer, stage: str) -> None:
        if trainer.is_global_zero and not trainer.sanity_checking:
            self._start(stage, afresh=trainer.fitting)
            # Logged at the count of batches of the stage's loop: Lightning 2.6.6's step for them (the fit's
            # validation loop starts again at each validation; that of `validate`, `test` or `predict` goes on
            # over their runs, from 1 after a fit too, while the counts logged go on from the fit's).
            if trainer.fitting:
                self._loop_batches[(stage, True)] = 0

    def _evaluation_batch(self, trainer, module, stage: str, batch) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        self._update(trainer, module, stage, batch)
        loop = (stage, trainer.fitting)
        batches = self._loop_batches[loop] = self._loop_batches.get(loop, 0) + 1
        if trainer.log_every_n_steps > 0 and batches % trainer.log_every_n_steps == 0:
            self._log(trainer, stage, batches)

    def on_validation_start(self, trainer, module) -> None:
        self._evaluation_start(trainer, "validate")
        if trainer.fitting and not trainer.sanity_checking:
            self._validation_started = time.perf_counter()

    def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._evaluation_batch(trainer, module, "validate", batch)

    def on_validation_end(self, trainer, module) -> None:
        # Training's clock leaves the validation out, so that it does not lower training's rates.
        if self._validation_started is not None and "train" in self._started:
            self._started["train"] += time.perf_counter() - self._validation_started
        self._validation_started = None

    def on_test_start(self, trainer, module) -> None:
        self._evaluation_start(trainer, "test")

    def on_test_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._evaluation_batch(trainer, module, "test", batch)

    def on_predict_start(self, trainer, module) -> None:
        self._evaluation_start(trainer, "predict")

    def on_predict_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._evaluation_batch(trainer, module, "predict", batch)


def _number(value: Any, source: str) -> int | float:
    """A count or length a user function returned (an int, a float, a 0-d array): an int stays one."""
    try:
        number = value.item() if hasattr(value, "item") else value
        if isinstance(number, bool) or not isinstance(number, int):
            number = float(number)
    except (TypeError, ValueError):
        raise TypeError(
            f"ThroughputMonitor: {source} returned {value!r}; expected a number (an int, a float or a 0-d "
            "array)"
        ) from None
    if number < 0:
        raise ValueError(f"ThroughputMonitor: {source} returned {number}; expected a number >= 0")
    return number
