"""Lightning's profilers: where a stage's time goes, action by action.

`Trainer(profiler="simple")` (or a `SimpleProfiler(...)`) times the loop's actions and reports them when
the stage (fit, validate, test, predict) ends: on stderr (rank 0), or appended to
`<dirpath>/<stage>-<filename>[-<rank>].txt` where a `filename` is given (`dirpath` defaults to
`trainer.log_dir`). `"advanced"` (`AdvancedProfiler`) runs Python's cProfile inside each action instead.
User code can time its own actions: `with self.trainer.profiler.profile("load_stems"): ...` in a hook,
or in a Dataset's `__getitem__`: SimpleProfiler times each thread's actions (the DataLoader's worker threads
too); AdvancedProfiler's cProfile records the thread the stage runs in alone.

The actions, by Lightning's names where Lightning has them: `run_training_epoch`, `run_training_batch`,
`[_TrainingEpochLoop].train_dataloader_next`, `[_EvaluationLoop].val_next` / `test_next`,
`[_PredictionLoop].predict_next` (the loader producing a batch), `save_checkpoint`, every hook as
`[Callback]<state_key>.<hook>` and `[LightningModule]<class>.<hook>`; and audiotrain's own: `run_validation`
(`run_test`, `run_sanity_check`) and per stage (`training`, `validation`, `test`, `predict`)
`[Trainer].<stage>_step` (the step's graph built), `[Trainer].<stage>_dispatch` (MLX scheduling it) and
`[Trainer].<stage>_wait` (the host waiting for the step before to finish).

MLX evaluates lazily: the step's first call traces it (in `_step`) and compiles its kernels (in `_dispatch`);
then the device runs each step beside the host's next work. The host waits for the device in `_dispatch`
(MLX's scheduler takes a step only once the steps before have left room: a long step blocks there) and in
`_wait`. So a loader that keeps the device waiting shows as a large `train_dataloader_next` with small
`training_dispatch` and `training_wait`, and a device that is the bottleneck the other way round. What runs
inside the compiled step (`training_step`, the backward pass, the optimizer) is one action here: MLX's own
tools (`mx.metal.start_capture` on a Mac) look inside it. A `profile(...)` block inside the compiled step
itself runs once, when the step is traced: it times the tracing, not the steps.

Differences from Lightning: each stage's report covers that stage alone (Lightning's SimpleProfiler adds
every earlier stage of the Trainer into the next report); a nested action's time is left out of the
enclosing action's cProfile stats and the enclosing one goes on after it (Lightning's AdvancedProfiler stops
the enclosing one there).
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import os
import pstats
import sys
import threading
import time
import warnings
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from audiotrain._caller import user_stacklevel

# (a shared no-op context: the PassThroughProfiler costs nothing on the loop's hot path)
_NOTHING = contextlib.nullcontext()


class Profiler:
    """The base of every profiler (Lightning's `Profiler`): subclass it and define `start`, `stop` and
    `summary`. `dirpath`/`filename`: where `describe` appends the report (`filename` alone: in
    `trainer.log_dir`); neither: printed on stderr by rank 0."""

    def __init__(self, dirpath: str | os.PathLike | None = None, filename: str | None = None) -> None:
        if dirpath is not None and not isinstance(dirpath, str | os.PathLike):
            raise TypeError(f"{type(self).__name__}(dirpath={dirpath!r}): expected a folder path or None")
        if filename is not None and (not isinstance(filename, str) or not filename or "/" in filename):
            raise ValueError(
                f"{type(self).__name__}(filename={filename!r}): expected a file name without a folder "
                "(the folder is dirpath), or None to print the report"
            )
        self.dirpath = dirpath
        self.filename = filename
        if dirpath is not None and filename is None and self._reports_by_filename():
            # (Lightning writes nothing there either, silently: a folder given for the report makes nothing)
            warnings.warn(
                f"{type(self).__name__}(dirpath={str(dirpath)!r}) without a filename writes nothing there: "
                "the report is printed on stderr; give filename='perf' to write "
                "<dirpath>/<stage>-perf.txt",
                stacklevel=user_stacklevel(),
            )
        self._stage: str | None = None
        self._local_rank: int | None = None
        self._log_dir: str | None = None
        self._dirpath_from_log_dir: Any = None  # (the log_dir setup put in `dirpath`: the next setup's)

    def start(self, action_name: str) -> None:
        """Start recording `action_name`."""
        raise NotImplementedError(f"{type(self).__name__}.start: a Profiler subclass must define it")

    def stop(self, action_name: str) -> None:
        """Stop recording `action_name`."""
        raise NotImplementedError(f"{type(self).__name__}.stop: a Profiler subclass must define it")

    def summary(self) -> str:
        """The report of what was recorded since `setup`."""
        return ""

    @contextlib.contextmanager
    def profile(self, action_name: str) -> Iterator[str]:
        """Record the `with` block as `action_name`."""
        self.start(action_name)
        try:
            yield action_name
        finally:
            self.stop(action_name)

    def setup(self, stage: str, local_rank: int | None = None, log_dir: str | None = None) -> None:
        """Called by the Trainer as a stage starts: its name, this process's rank under data parallel (None
        in one process) and the folder a report named by `filename` alone goes to."""
        self._stage = stage
        self._local_rank = local_rank
        self._set_log_dir(log_dir)
        self._check_report_path()  # (refused before the stage runs, not after it)

    def _set_log_dir(self, log_dir: str | None) -> None:
        """The Trainer's log_dir (at setup, and again before the report: a resumed logger's version is known
        then). As Lightning's, `dirpath` is it where none was given (a later Trainer's where used again)."""
        self._log_dir = log_dir
        if self.dirpath is None or self.dirpath is self._dirpath_from_log_dir:
            self.dirpath = self._dirpath_from_log_dir = log_dir

    def _check_report_path(self) -> None:
        """A report file that cannot be written where it goes: a folder in its way that is a file, the file a
        folder, or a folder this process cannot write in."""
        path = self.report_path()
        if path is None:
            return
        where = f"{type(self).__name__}(dirpath={str(self.dirpath)!r}, filename={self.filename!r})"
        if path.is_dir():
            raise IsADirectoryError(f"{where}: the report {path} is a folder; give another filename")
        existing = path.parent
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise NotADirectoryError(
                f"{where}: {existing} is a file, where the report's folder {path.parent} goes"
            )
        if not os.access(existing, os.W_OK | os.X_OK):
            raise PermissionError(
                f"{where}: {existing} is not writable by this process, so the report cannot go there"
            )

    def teardown(self, stage: str | None) -> None:
        """Called after the stage's report."""

    def _reports_by_filename(self) -> bool:
        """Whether `dirpath` serves only the report named by `filename`: Lightning's profilers, as long as a
        subclass writes its report the same way (a custom profiler may use `dirpath` for files of its own)."""
        cls = type(self)
        if getattr(self, "dump_stats", False):
            return False  # (AdvancedProfiler's .prof files go to dirpath, a filename or not)
        return (
            isinstance(self, SimpleProfiler | AdvancedProfiler)
            and cls.describe is Profiler.describe
            and cls.report_path is Profiler.report_path
        )

    def _cancel(self, action_name: str) -> None:
        """End `action_name` without a record where the profiler can (a loader's end is no batch)."""
        self.stop(action_name)

    @property
    def local_rank(self) -> int:
        return 0 if self._local_rank is None else self._local_rank

    def report_path(self) -> Path | None:
        """Where `describe` appends the report, `<dirpath>/<stage>-<filename>[-<rank>].txt`; None: stderr."""
        if not self.filename:
            return None
        base = self._file_base()
        return None if base is None else _named(base, "", ".txt")

    def _file_base(self) -> tuple[Path, str] | None:
        """The folder (`dirpath`, else the log_dir) and `<stage>-<filename>-<rank>` (each part where there is
        one): the report is `<folder>/<that>.txt`, AdvancedProfiler's files `<folder>/<that>-<action>.prof`.
        None: no folder (no dirpath, and no Trainer gave a log_dir)."""
        folder = self.dirpath if self.dirpath is not None else self._log_dir
        if folder is None:
            return None
        parts = [p for p in (self._stage, self.filename) if p]
        if self._local_rank is not None:
            parts.append(str(self._local_rank))
        # ("~" is the home folder, as in default_root_dir and ModelCheckpoint's dirpath)
        return Path(folder).expanduser(), "-".join(parts)

    def describe(self) -> None:
        """Write the report (appended to `report_path()`, so an earlier stage's report stays; else on
        stderr, by rank 0 alone), then `teardown`."""
        try:
            text = self.summary()
            if not text:
                return
            path = self.report_path()
            if path is not None:
                try:
                    self._check_report_path()
                    path.parent.mkdir(parents=True, exist_ok=True)
                    # (dated: the file holds every earlier run's report too, the latest last)
                    written = f"Written {time.strftime('%Y-%m-%d %H:%M:%S %z')}\n"
                    with open(path, "a", encoding="utf-8") as out:
                        out.write(written + (text if text.endswith("\n") else text + "\n"))
                    return
                except OSError as err:
                    # The stage ran (a fit trained): its report is not worth failing it over.
                    warnings.warn(
                        f"{type(self).__name__}: the report could not be written to {path} ({err}); it is "
                        "printed on stderr instead",
                        stacklevel=2,
                    )
            if self.local_rank == 0 or path is not None:
                print(text, file=sys.stderr, flush=True)
        finally:
            self.teardown(self._stage)

    def _title(self) -> str:
        return f"{self._stage.upper()} Profiler Report" if self._stage else "Profiler Report"


class PassThroughProfiler(Profiler):
    """Records nothing (the Trainer's profiler when none is given)."""

    def start(self, action_name: str) -> None:
        pass

    def stop(self, action_name: str) -> None:
        pass

    def profile(self, action_name: str) -> contextlib.AbstractContextManager:  # type: ignore[override]
        return _NOTHING


class SimpleProfiler(Profiler):
    """The duration of every action: its mean, the number of calls, the total and (`extended`) the share of
    the stage's wall time, longest total first. Nested actions count in their own row and in the enclosing
    one, so the shares add up to more than 100%."""

    def __init__(
        self, dirpath: str | os.PathLike | None = None, filename: str | None = None, extended: bool = True
    ) -> None:
        super().__init__(dirpath=dirpath, filename=filename)
        self.extended = bool(extended)
        # The open actions of each thread: a Dataset's `profile("decode")` runs in the DataLoader's worker
        # threads at once (two threads' "decode" are two actions, not one started twice).
        self._open: dict[int, dict[str, float]] = {}
        self.recorded_durations: dict[str, list[float]] = defaultdict(list)
        self.start_time = time.perf_counter()

    @property
    def current_actions(self) -> dict[str, float]:
        """The calling thread's open actions and their start times (Lightning's `current_actions`)."""
        return self._open.setdefault(threading.get_ident(), {})

    def setup(self, stage: str, local_rank: int | None = None, log_dir: str | None = None) -> None:
        super().setup(stage, local_rank, log_dir)
        self._open.clear()
        self.recorded_durations.clear()
        self.start_time = time.perf_counter()

    def start(self, action_name: str) -> None:
        if action_name in self.current_actions:
            raise ValueError(f"{type(self).__name__}: the action {action_name!r} was started already")
        self.current_actions[action_name] = time.perf_counter()

    def _cancel(self, action_name: str) -> None:
        self.current_actions.pop(action_name, None)

    def stop(self, action_name: str) -> None:
        end = time.perf_counter()
        started = self.current_actions.pop(action_name, None)
        if started is None:
            raise ValueError(
                f"{type(self).__name__}: the action {action_name!r} was stopped but never started"
            )
        self.recorded_durations[action_name].append(end - started)

    def summary(self) -> str:
        if not self.recorded_durations:
            return ""
        total = time.perf_counter() - self.start_time
        # (copied first: a worker thread may still record while the report is made)
        recorded = [(name, list(d)) for name, d in list(self.recorded_durations.items())]
        rows = [(name, sum(d) / len(d), len(d), sum(d)) for name, d in recorded if d]
        rows.sort(key=lambda row: row[3], reverse=True)
        if self.extended:
            header = ("Action", "Mean duration (s)", "Num calls", "Total time (s)", "Percentage %")
            body = [("Total", "-", str(sum(r[2] for r in rows)), f"{total:.5g}", "100 %")]
            body += [
                (name, f"{mean:.5g}", str(calls), f"{tot:.5g}", f"{100 * tot / total:.2f}" if total else "-")
                for name, mean, calls, tot in rows
            ]
        else:
            header = ("Action", "Mean duration (s)", "Total time (s)")
            body = [(name, f"{mean:.5g}", f"{tot:.5g}") for name, mean, _, tot in rows]
        return _table(self._title(), header, body, split_after=1 if self.extended else 0)


class AdvancedProfiler(Profiler):
    """Python's cProfile inside each action: per action, the functions it spent its time in (sorted by
    cumulative time). `line_count_restriction`: how many functions per action, a count (int) or a share
    (float in (0, 1]). `dump_stats`: also write each action's raw stats (`pstats` format) beside the report,
    as `<stage>-<filename>[-<rank>]-<action>.prof` in `dirpath` (a filename or not, as Lightning's: without
    one, `<stage>[-<rank>]-<action>.prof`; `dirpath` defaults to the log_dir); where an earlier report's files
    are there, as `...-<action>.2.prof` and so on: the report names them at its head."""

    def __init__(
        self,
        dirpath: str | os.PathLike | None = None,
        filename: str | None = None,
        line_count_restriction: int | float = 1.0,
        dump_stats: bool = False,
    ) -> None:
        self.dump_stats = bool(dump_stats)  # (before the base's check of what dirpath is for)
        super().__init__(dirpath=dirpath, filename=filename)
        limit = line_count_restriction
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int | float)
            or not (
                (isinstance(limit, int) and limit >= 1) or (isinstance(limit, float) and 0.0 < limit <= 1.0)
            )
        ):
            raise ValueError(
                f"AdvancedProfiler(line_count_restriction={limit!r}): expected a number of functions (an int "
                ">= 1) or a share of them (a float in (0, 1])"
            )
        self.line_count_restriction = limit
        self.profiled_actions: dict[str, cProfile.Profile] = {}
        self._active: list[str] = []  # the open actions, innermost last: only it records
        self._thread = threading.get_ident()  # the loop's thread (setup's), the one cProfile records in

    def setup(self, stage: str, local_rank: int | None = None, log_dir: str | None = None) -> None:
        super().setup(stage, local_rank, log_dir)
        self._disable_all()
        self.profiled_actions.clear()
        self._thread = threading.get_ident()

    def start(self, action_name: str) -> None:
        if threading.get_ident() != self._thread:
            # An action in another thread (a Dataset's, in the DataLoader's worker threads) is not recorded:
            # Python runs one cProfile at a time (3.12 refuses a second: "Another profiling tool is already
            # active"), and this one's nesting is the loop's. As Lightning's, whose workers are processes.
            return
        if action_name in self._active:
            raise ValueError(f"AdvancedProfiler: the action {action_name!r} was started already")
        if self._active:  # (one cProfile at a time: Python allows a single active profiler)
            self.profiled_actions[self._active[-1]].disable()
        profile = self.profiled_actions.setdefault(action_name, cProfile.Profile())
        self._active.append(action_name)
        profile.enable()

    def stop(self, action_name: str) -> None:
        if threading.get_ident() != self._thread:
            return  # (not recorded: see start)
        if action_name not in self._active:
            raise ValueError(f"AdvancedProfiler: the action {action_name!r} was stopped but never started")
        if self._active[-1] == action_name:
            self.profiled_actions[action_name].disable()
            self._active.pop()
            if self._active:
                self.profiled_actions[self._active[-1]].enable()
        else:  # (stopped out of order: it was not recording anyway)
            self._active.remove(action_name)

    def summary(self) -> str:
        self._disable_all()
        sections = []
        base = self._file_base() if self.dump_stats else None
        if self.dump_stats and base is None:
            warnings.warn(
                "AdvancedProfiler(dump_stats=True): no folder for the .prof files (no dirpath, and no Trainer "
                "gave its log_dir), so none is written; give dirpath",
                stacklevel=2,
            )
        actions = self._longest_first()
        number = self._free_dump_number(base, [a for a, _ in actions]) if base is not None else None
        dumps = {a: _dump_path(base, _file_safe(a), number) for a, _ in actions} if number else {}
        for action, profile in actions:
            if action in dumps:
                dumps[action].parent.mkdir(parents=True, exist_ok=True)
                profile.dump_stats(str(dumps[action]))
            out = io.StringIO()
            try:
                stats = pstats.Stats(profile, stream=out)
            except TypeError:  # (an action whose calls ran no Python function at all)
                continue
            stats.strip_dirs().sort_stats("cumulative").print_stats(self.line_count_restriction)
            rank = f" rank: {self._local_rank}" if self._local_rank is not None else ""
            sections.append(f"Profile stats for: {action}{rank}\n{out.getvalue()}")
        if not sections:
            return ""
        if dumps:  # (which files are this report's: an earlier stage's or run's are numbered apart)
            sections.insert(0, f"each action's pstats file: {_dump_path(base, '<action>', number)}\n")
        return "\n".join([self._title(), *sections])

    @staticmethod
    def _free_dump_number(base: tuple[Path, str], actions: list[str]) -> int:
        """The first `n` for which no action's `.prof` is there yet (1: none has a number): the report is
        appended to, so an earlier report's stats are kept beside it, and one report's files share `n`."""
        n = 1
        while any(_dump_path(base, _file_safe(action), n).exists() for action in actions):
            n += 1
        return n

    def teardown(self, stage: str | None) -> None:
        self._disable_all()
        self.profiled_actions.clear()

    def _longest_first(self) -> list[tuple[str, cProfile.Profile]]:
        """The actions by the time their own code took (cProfile's total), longest first."""

        def own_time(item: tuple[str, cProfile.Profile]) -> float:
            return sum(entry.inlinetime for entry in item[1].getstats())

        return sorted(self.profiled_actions.items(), key=own_time, reverse=True)

    def _disable_all(self) -> None:
        for name in self._active:
            self.profiled_actions[name].disable()
        self._active.clear()


_BY_NAME = {"simple": SimpleProfiler, "advanced": AdvancedProfiler}


def trainer_profiler(value: Any) -> Profiler:
    """`Trainer(profiler=...)`: None (nothing recorded), "simple", "advanced" or a Profiler."""
    if value is None:
        return PassThroughProfiler()
    if isinstance(value, Profiler):
        return value
    if isinstance(value, str):
        name = value.lower()
        if name in _BY_NAME:
            return _BY_NAME[name]()
        if name in ("pytorch", "xla"):
            traced = "PyTorch" if name == "pytorch" else "XLA"
            raise ValueError(
                f"Trainer(profiler={value!r}): {name}'s profiler traces {traced} operations, which MLX does "
                "not run; use profiler='simple' (the loop's actions) or 'advanced' "
                "(cProfile), and MLX's own tools for the compiled step (mx.metal.start_capture on a Mac)"
            )
        raise ValueError(f"Trainer(profiler={value!r}): expected None, 'simple', 'advanced' or a Profiler")
    raise TypeError(
        f"Trainer(profiler={value!r}): expected None, 'simple', 'advanced' or an audiotrain Profiler "
        f"(audiotrain.train.SimpleProfiler(...)), got {type(value).__name__}"
    )


#: Lightning's names of the action of a loader producing a batch, by stage.
NEXT_BATCH_ACTIONS = {
    "train": "[_TrainingEpochLoop].train_dataloader_next",
    "validation": "[_EvaluationLoop].val_next",
    "test": "[_EvaluationLoop].test_next",
    "predict": "[_PredictionLoop].predict_next",
}


def next_batch(iterator: Iterator[Any], profiler: Profiler, stage: str) -> Any:
    """``next(iterator)``, recorded as the stage's `NEXT_BATCH_ACTIONS` action; the end of the loader
    (StopIteration) is no batch and is not recorded."""
    if isinstance(profiler, PassThroughProfiler):
        return next(iterator)
    action = NEXT_BATCH_ACTIONS[stage]
    profiler.start(action)
    try:
        batch = next(iterator)
    except StopIteration:
        profiler._cancel(action)
        raise
    except BaseException:
        profiler.stop(action)
        raise
    profiler.stop(action)
    return batch


def profiled_batches(batches: Iterable[Any], profiler: Profiler, stage: str) -> Iterable[Any]:
    """`batches`, each `next` recorded (`next_batch`); `batches` itself where nothing is recorded."""
    if isinstance(profiler, PassThroughProfiler):
        return batches
    return _timed_batches(batches, profiler, stage)


def _timed_batches(batches: Iterable[Any], profiler: Profiler, stage: str) -> Iterator[Any]:
    iterator = iter(batches)
    try:
        while True:
            try:
                batch = next_batch(iterator, profiler, stage)
            except StopIteration:
                return
            yield batch
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


def _named(base: tuple[Path, str], name: str, suffix: str) -> Path:
    """`<folder>/<prefix>-<name><suffix>` for `base = (folder, prefix)` (`Profiler._file_base`), without the
    dash where either part is empty."""
    folder, prefix = base
    return folder / ("-".join(p for p in (prefix, name) if p) + suffix)


def _dump_path(base: tuple[Path, str], name: str, number: int) -> Path:
    """AdvancedProfiler's pstats file of an action (`name`, file-safe) beside the report:
    `<folder>/<prefix>-<name>[.<number>].prof` (`_named`)."""
    return _named(base, name, ("" if number == 1 else f".{number}") + ".prof")


def _file_safe(action: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in action).strip("_") or "action"


def _table(title: str, header: tuple[str, ...], body: list[tuple[str, ...]], split_after: int) -> str:
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return "|  " + "  |  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + "  |"

    rule = "-" * len(line(header))
    lines = [title, "", rule, line(header), rule]
    for i, row in enumerate(body):
        lines.append(line(row))
        if split_after and i + 1 == split_after:
            lines.append(rule)
    lines.append(rule)
    return "\n".join(lines) + "\n"


__all__ = ["AdvancedProfiler", "PassThroughProfiler", "Profiler", "SimpleProfiler", "trainer_profiler"]
