"""`DeviceStatsMonitor`: log MLX's memory (and the process's CPU use) to the loggers."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
import warnings
from typing import TYPE_CHECKING

from audiotrain._proc import own_status_bytes
from audiotrain.train.callback import Callback
from audiotrain.train.callbacks._logger_required import refuse_a_fit_without_logger

import mlx.core as mx

if TYPE_CHECKING:
    from audiotrain.train.trainer import Trainer

#: What the MLX allocator reports, in bytes: the arrays alive now, the most alive at once (since the process
#: started or `mx.reset_peak_memory()`), and the buffers kept for reuse.
MLX_STATS = {
    "active_memory": mx.get_active_memory,
    "peak_memory": mx.get_peak_memory,
    "cache_memory": mx.get_cache_memory,
}
#: The CPU stats, about this process.
CPU_STATS = ("cpu_rss_bytes", "cpu_process_percent")


class DeviceStatsMonitor(Callback):
    """Lightning's: at each logging step (every `log_every_n_steps`) log the device's stats to every
    logger, before and after the training batch, as ``DeviceStatsMonitor.on_train_batch_start/<stat>`` and
    ``DeviceStatsMonitor.on_train_batch_end/<stat>`` (Lightning's names); in validation and test, the same
    for every `log_every_n_steps`-th batch (``DeviceStatsMonitor.on_validation_batch_end/...``), at the
    current global step. Rank 0 logs, under data parallel its own process's numbers (as in Lightning).

    The stats are MLX's allocator's, in bytes: `active_memory` (`mx.get_active_memory()`), `peak_memory`
    (`mx.get_peak_memory()`) and `cache_memory` (`mx.get_cache_memory()`), in place of Lightning's
    torch.cuda.memory_stats keys (`allocated_bytes.all.current`, ...); MLX counts its arrays on the CPU as
    well. On the CPU accelerator the CPU stats are logged beside them, as in Lightning, where the CPU's
    device stats are the CPU stats; `cpu_stats=False` there logs nothing at all (Lightning's: "cpu stats
    are disabled"). On the GPU `cpu_stats` chooses whether the CPU stats are logged beside the GPU's: True
    logs them, None (the default) and False do not. The CPU stats are this process's: `cpu_rss_bytes`
    (its resident memory) and `cpu_process_percent` (its CPU time since the last reading over the wall time,
    in % of one core, so up to 100 × cores). Lightning's are system-wide, through psutil (`cpu_percent`,
    `cpu_vm_percent`, `cpu_swap_percent`); here psutil is not needed on Linux (/proc/self/status), and
    elsewhere CPU stats without psutil installed are refused when `fit`, `validate` or `test` starts,
    naming it. `filter_keys` (Lightning's): log only these stats (names without the prefix; an unknown one
    warns once).

    A Trainer without a logger is refused when `fit` starts (Lightning's MisconfigurationException; here a
    ValueError), except under `fast_dev_run`, which logs nothing.
    """

    def __init__(self, cpu_stats: bool | None = None, filter_keys: set[str] | None = None):
        if cpu_stats not in (None, True, False):
            raise ValueError(f"DeviceStatsMonitor(cpu_stats={cpu_stats!r}): expected True, False or None")
        if filter_keys is not None and (
            isinstance(filter_keys, str) or not all(isinstance(k, str) for k in filter_keys)
        ):
            raise ValueError(
                f"DeviceStatsMonitor(filter_keys={filter_keys!r}): expected a set of stat names such as "
                "{'peak_memory', 'cpu_rss_bytes'}, or None"
            )
        self._cpu_stats = cpu_stats
        self._filter_keys = set(filter_keys) if filter_keys is not None else None
        self._cpu_times: tuple[float, float] | None = None  # (CPU seconds, wall seconds) at the last reading

    def _logs_anything(self, trainer: Trainer) -> bool:
        """False on the CPU accelerator with `cpu_stats=False`: the device is the CPU, whose stats the user
        turned off (Lightning returns before reading any: "cpu stats are disabled")."""
        return not (self._cpu_stats is False and trainer.accelerator == "cpu")

    def _logs_cpu(self, trainer: Trainer) -> bool:
        """Whether the CPU stats are logged beside MLX's: where `cpu_stats` is True, or None on the CPU
        accelerator (its device stats, as in Lightning)."""
        return self._cpu_stats is True or (self._cpu_stats is None and trainer.accelerator == "cpu")

    def setup(self, trainer, module, stage: str) -> None:
        if stage == "predict" or trainer.fast_dev_run:
            return  # (nothing is logged: no hooks in predict, no loggers under fast_dev_run)
        refuse_a_fit_without_logger(trainer, stage, "DeviceStatsMonitor", "the device stats")
        if not trainer.loggers:
            return  # (validate and test without a logger log nothing, as in Lightning)
        # Validate and test log too (every `log_every_n_steps`-th batch): refused here, before any batch,
        # rather than at the first logged one.
        cpu = self._logs_cpu(trainer)
        if cpu and not sys.platform.startswith("linux") and importlib.util.find_spec("psutil") is None:
            if trainer.accelerator == "cpu":
                why, instead = (
                    "on the CPU accelerator, whose device stats are the CPU's",
                    "remove the callback",
                )
            else:
                why, instead = "cpu_stats=True", "pass cpu_stats=False"
            raise ModuleNotFoundError(
                f"DeviceStatsMonitor ({why}): the process's memory is read with psutil outside Linux, and "
                f"psutil is not installed: `pip install psutil`, or {instead}"
            )
        self._cpu_times = None
        if self._filter_keys is not None and trainer.is_global_zero:
            known = {*MLX_STATS, *(CPU_STATS if cpu else ())} if self._logs_anything(trainer) else set()
            if unknown := self._filter_keys - known:
                warnings.warn(
                    f"DeviceStatsMonitor(filter_keys=...): {', '.join(sorted(unknown))} not among the stats "
                    f"logged here ({', '.join(sorted(known)) or 'none'}): left out",
                    stacklevel=2,
                )

    def stats(self, trainer: Trainer) -> dict[str, float]:
        """The stats this Trainer's run logs (before `filter_keys`), read now."""
        if not self._logs_anything(trainer):
            return {}
        values = {name: float(read()) for name, read in MLX_STATS.items()}
        if self._logs_cpu(trainer):
            values.update(self._cpu())
        return values

    def _cpu(self) -> dict[str, float]:
        times = os.times()
        now = (times.user + times.system, time.perf_counter())
        before, self._cpu_times = self._cpu_times, now
        percent = 0.0
        if before is not None and now[1] > before[1]:
            percent = 100.0 * (now[0] - before[0]) / (now[1] - before[1])
        return {"cpu_rss_bytes": float(_rss_bytes()), "cpu_process_percent": percent}

    def _log(self, trainer: Trainer, hook: str, step: int | None = None) -> None:
        if not trainer._writing_loggers:
            return  # (other ranks, fast_dev_run: nothing would be written)
        values = self.stats(trainer)
        if self._filter_keys is not None:
            values = {k: v for k, v in values.items() if k in self._filter_keys}
        if values:
            prefix = f"{type(self).__qualname__}.{hook}/"
            step = trainer._logging_step() if step is None else step
            trainer.log_metrics({prefix + k: v for k, v in values.items()}, step=step)

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        # The step about to run is a logging step: logged at its number, as its end is (the loggers' step:
        # the global step after the update; a manual module's batches, which may take several updates each).
        step = trainer._logging_step() + 1
        if _is_logged_count(trainer, step):
            self._log(trainer, "on_train_batch_start", step=step)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if outputs is not None and outputs.get("stepped", True) and trainer.is_logging_step():
            self._log(trainer, "on_train_batch_end")

    def _evaluating(self, trainer: Trainer, batch_idx: int, hook: str) -> None:
        if _is_logged_count(trainer, batch_idx + 1) and not trainer.sanity_checking:
            self._log(trainer, hook)

    def on_validation_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0) -> None:
        self._evaluating(trainer, batch_idx, "on_validation_batch_start")

    def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._evaluating(trainer, batch_idx, "on_validation_batch_end")

    def on_test_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0) -> None:
        self._evaluating(trainer, batch_idx, "on_test_batch_start")

    def on_test_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._evaluating(trainer, batch_idx, "on_test_batch_end")


def _rss_bytes() -> int:
    """This process's resident memory: /proc/self/status's VmRSS on Linux, psutil's elsewhere."""
    rss = own_status_bytes("VmRSS")
    if rss is not None:
        return rss
    import psutil  # (checked in setup)

    return int(psutil.Process().memory_info().rss)


def _is_logged_count(trainer: Trainer, count: int) -> bool:
    """Every `log_every_n_steps`-th step or batch; none at 0 (Lightning's `should_update_logs`)."""
    return trainer.log_every_n_steps > 0 and count % trainer.log_every_n_steps == 0
