"""`TensorBoardLogger`: TensorBoard event files (through tensorboardX, or torch's SummaryWriter)."""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audiotrain._arguments import folder_argument
from audiotrain.train.loggers._shared import (
    LIGHTNING_PREFIX,
    _VersionedFolder,
    numpy_if_mlx,
    refuse_lightning_only,
)
from audiotrain.train.loggers.base import Logger, _BackendStopped


def _summary_writer_class() -> type:
    try:
        return importlib.import_module("tensorboardX").SummaryWriter
    except ImportError:
        pass
    try:
        return importlib.import_module("torch.utils.tensorboard").SummaryWriter
    except ImportError as exc:
        raise ImportError(
            "TensorBoardLogger needs the 'tensorboardX' package (or torch with tensorboard), which is not "
            "installed: pip install tensorboardX (or pip install 'audiotrain[loggers]')"
        ) from exc


@functools.cache
def _taking_mlx_arrays(writer_cls: type) -> type:
    """`writer_cls` whose ``add_*`` methods take MLX arrays where they take numpy's (a clip, a spectrogram, a
    scalar the model computed, the values of add_scalars' and add_hparams' dicts): tensorboardX and torch know
    numpy and torch tensors only, and refused them with NotImplementedError. Lightning's users pass their own
    tensors as they are; ours are MLX arrays. The methods are wrapped once, on the class: a
    ``__getattribute__`` doing it at each access slowed every attribute read inside the writer's own code
    (the Trainer's add_scalar per logged metric took twice as long)."""

    def taking_mlx(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            return method(self, *map(_numpy_within, args), **{k: _numpy_within(v) for k, v in kwargs.items()})

        return call

    methods = {
        name: taking_mlx(method)
        for name in dir(writer_cls)
        if name.startswith("add_") and inspect.isfunction(method := inspect.getattr_static(writer_cls, name))
    }
    if writer_cls.__module__.startswith("tensorboardX") and "add_audio" in methods:
        methods["add_audio"] = _taking_channels_first(methods["add_audio"])
    SummaryWriter = type("SummaryWriter", (writer_cls,), methods)
    SummaryWriter.__qualname__ = writer_cls.__qualname__
    SummaryWriter.__module__ = __name__
    return SummaryWriter


def _taking_channels_first(add_audio: Callable[..., Any]) -> Callable[..., Any]:
    """tensorboardX's add_audio takes a clip as (frames,) or (frames, channels) and stopped with a bare
    "AssertionError: The second dimension should be 1 or 2." on a (1, frames) or (2, frames) clip, the
    layout torch's SummaryWriter (Lightning's) takes and librosa's: such a clip is turned frames-first."""

    @functools.wraps(add_audio)
    def call(self: Any, tag: Any, snd_tensor: Any = None, *args: Any, **kwargs: Any) -> Any:
        if snd_tensor is None:
            snd_tensor = kwargs.pop("snd_tensor", None)
        shape = getattr(snd_tensor, "shape", ())
        if len(shape) == 2 and shape[0] in (1, 2) and shape[1] > 2:
            snd_tensor = snd_tensor.T
        return add_audio(self, tag, snd_tensor, *args, **kwargs)

    return call


def _numpy_within(value: Any) -> Any:
    """`numpy_if_mlx` of `value`, or of each value of a dict, list or tuple (add_scalars' tag -> scalar)."""
    if isinstance(value, dict):
        return {k: numpy_if_mlx(v) for k, v in value.items()}
    if type(value) in (list, tuple):  # (not a namedtuple, which takes its fields one by one)
        return type(value)(map(numpy_if_mlx, value))
    return numpy_if_mlx(value)


# tensorboardX warns "NaN or Inf found in input tensor." (no tag, no step) for each non-finite value it is
# given. The Trainer logs NaN for what covers no sample (an accuracy over zero frames), as Lightning does,
# and Lightning's TensorBoardLogger writes it without a word: the value is written, the warning dropped,
# for this logger's own writes only (its scalars, the HParams record); a user's own writes through
# `experiment` still warn.
_NAN_WARNING = "NaN or Inf found in input tensor."
_own_writing = threading.local()


class _DropOwnNaNWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (getattr(_own_writing, "writing", False) and record.getMessage() == _NAN_WARNING)


logging.getLogger("tensorboardX.x2num").addFilter(_DropOwnNaNWarning())


@contextlib.contextmanager
def _own_writes():
    _own_writing.writing = True
    try:
        yield
    finally:
        _own_writing.writing = False


# Lightning's TensorBoardLogger arguments without a counterpart here (see `refuse_lightning_only`).
_LIGHTNING_ONLY: dict[str, tuple[tuple, str]] = {
    "default_hp_metric": (
        (False,),
        "no hp_metric placeholder is written: the HParams tab's metric columns are the run's own scalars",
    ),
    "log_graph": ((False,), "TensorBoard's graph is drawn from a traced torch model; an MLX model has none"),
    "prefix": LIGHTNING_PREFIX,
    "sub_dir": ((None,), "the run's folder is <save_dir>/<name>/<version>: a string version names the last"),
}


class TensorBoardLogger(_VersionedFolder, Logger):
    """Write TensorBoard event files to ``<save_dir>/<name>/version_<k>`` (``tensorboard --logdir <save_dir>``).

    Hyperparameters go to TensorBoard's HParams tab, to ``hparams.yaml`` in the run folder and to a text
    summary. The HParams tab takes the first set written to a run folder (TensorBoard keeps the first
    record), which is everything logged before the run started: the Trainer's settings and the model's
    hyperparameters at the start of ``fit``, and any the user logged before it. Its metric columns are the
    run's scalars (TensorBoard finds them itself), and the session's status is set when the run ends.
    Later calls add to ``hparams.yaml`` and the text summary (the CSV logger's ``hparams.yaml`` too).
    A resumed run writes to the same version folder and discards the events logged after the checkpoint:
    those of later steps, and those of its step logged after it was saved (a batch-end checkpoint comes
    before that step's validation and epoch end), by purging from that step (``purge_step``) and writing
    again the values the checkpoint recorded for it. ``test()`` after ``fit()`` writes to the same folder.
    A fresh fit refuses a ``version`` folder that already holds another run's files (`refuse_an_earlier_run`).

    Parameters
    ----------
    save_dir : str or Path
        Root folder (Lightning's name; default ``./tb_logs``).
    name : str, optional
        Experiment name (a sub-folder); None or "" writes the version folders directly in ``save_dir``.
    version : int or str, optional
        ``version_<k>`` for an int, the string itself otherwise; default the next free ``version_<k>``.
    flush_secs : int
        How often pending events are written to disk (also whenever the Trainer saves a checkpoint).
    log_dir : str or Path, optional
        The earlier name of ``save_dir``, still accepted (the ``log_dir`` property is the run's own folder).
    default_hp_metric, log_graph : bool
        Lightning's, accepted as False (what happens here); True is an error saying why. Lightning's
        ``prefix`` and ``sub_dir`` are refused with what to use instead.
    """

    stores_audio = True
    media_calls = (
        "audio goes to logger.log_audio(key, [clips], sample_rate=[...]); images, figures and text to "
        "logger.experiment.add_image, "
        "logger.experiment.add_figure(tag, figure, step) or add_text"
    )

    def __init__(
        self,
        save_dir: str | os.PathLike | None = None,
        name: str | None = "default",
        version: int | str | None = None,
        flush_secs: int = 30,
        *,
        log_dir: str | os.PathLike | None = None,
        **lightning_args: Any,
    ) -> None:
        super().__init__()
        known = ["save_dir", "name", "version", "flush_secs", "log_dir"]
        refuse_lightning_only("TensorBoardLogger", lightning_args, known, _LIGHTNING_ONLY)
        if save_dir is not None and log_dir is not None:
            raise TypeError("TensorBoardLogger: give save_dir or log_dir (its earlier name), not both")
        self._writer_cls = _summary_writer_class()
        root = save_dir if save_dir is not None else log_dir
        given = "save_dir" if save_dir is not None else "log_dir"
        if isinstance(root, (str, os.PathLike)):  # ("$SCRATCH/tb": expanded, as Lightning's)
            root = os.path.expandvars(os.fspath(root))
        self._root = (
            folder_argument(root, "TensorBoardLogger", given) if root is not None else Path("./tb_logs")
        )
        self._name = name or ""
        self._version = version
        self._given_version = version  # (`_version` is also the one claimed at start, or the checkpoint's)
        self.flush_secs = flush_secs
        self._writer: Any = None
        self._event_file: _GuardedEventFile | None = None  # tensorboardX's writer only (see the class)
        self._last_step: int | None = None
        self._at_last_step: list[tuple[str, float]] = []  # what was logged at `_last_step`, in order
        self._purge_step: int | None = None
        self._replay: list[tuple[str, float]] = []  # the checkpoint's values at its step, written again
        self._resumed = False
        self._hparams = {}
        self._session_started = False  # the HParams tab's session start written to this run folder
        self._first_hparams: dict[str, Any] = {}  # a resumed run's, as its hparams.yaml held them

    def _start(self) -> None:
        self._claim_log_dir()
        if self._resumed:
            self._reload_hparams()
            self._first_hparams = dict(self._hparams)
        # tensorboardX and torch name the folder argument differently (logdir / log_dir): pass it positionally.
        # Event files are named by the second they were opened in; the suffix keeps a resumed run opened in
        # the same second from overwriting the previous file, and keeps the files in order.
        self._writer = _taking_mlx_arrays(self._writer_cls)(
            str(self.log_dir),
            flush_secs=self.flush_secs,
            purge_step=self._purge_step,
            filename_suffix=f".{time.time_ns()}",
        )
        self._event_file = _GuardedEventFile.install(self._writer)
        if self._purge_step is not None:
            _restart_session(self._writer, self._purge_step)
        with _own_writes():
            for key, value in self._replay:  # (after the purge, which also dropped these)
                self._writer.add_scalar(key, value, self._purge_step)
        if self._replay:
            self._last_step, self._at_last_step = self._purge_step, list(self._replay)
        # Once: a later stage (test after a resumed fit) reopening the writer must not purge the fit's steps.
        self._purge_step, self._replay = None, []

    def _experiment(self) -> Any:
        return self._writer

    _process_bound = ("_writer_cls", "_writer", "_event_file")

    def _reattach(self) -> None:
        self._writer_cls = _summary_writer_class()
        self._writer, self._event_file = None, None

    def _log_audio(self, key: str, clips: list[Any], sample_rates: list[int], step: int) -> None:
        self._check_writer()
        for i, (clip, rate) in enumerate(zip(clips, sample_rates)):
            if clip is None:  # (skipped by log_audio: the later clips keep their tags)
                continue
            self._writer.add_audio(_tb_tag(key if i == 0 else f"{key}/{i}"), clip, step, sample_rate=rate)

    def _check_writer(self) -> None:
        """Before each use of the writer: once its events can no longer be written, close it (which cannot
        block: the writer thread is still emptying its queue) and disable the logger."""
        event_file = self._event_file
        if event_file is None or event_file.usable():
            return
        writer, self._writer, self._event_file = self._writer, None, None
        event_file.close_writer(writer)
        raise _BackendStopped(f"TensorBoard's event file in {self.log_dir} stopped") from event_file.error

    def _log_hyperparams(self, params: dict[str, Any]) -> None:
        self._check_writer()
        if self._resumed:  # its folder has its session start already, which TensorBoard keeps
            self._warn_changed_params(
                self._first_hparams,
                _as_yaml_reads_it(params),
                f"resumed run {self.log_dir}",
                "TensorBoard's HParams tab keeps the first values written to a run folder, so it shows the "
                "old ones (hparams.yaml and the text summary have the new)",
            )
        merged = self._merge_hparams(params)
        if not self._session_started:
            if not self._resumed:  # a resumed run's folder has its start already
                self._add_hparams_summary("session_start", merged)
            self._session_started = True
        # The text summary holds the merged set too: TensorBoard shows its latest record.
        table = "\n".join(f"| {k} | {v} |" for k, v in merged.items())
        self._writer.add_text("hparams", f"| name | value |\n|---|---|\n{table}")
        self._writer.flush()

    def _add_hparams_summary(self, which: str, hparams: dict[str, Any], status: str = "success") -> None:
        """The HParams plugin's session start (the hyperparameters) or end (the status) record.

        Only the session records are written, no "experiment" record: TensorBoard then builds the HParams
        table from the session records and takes every scalar of the run as a metric column.
        """
        summary = importlib.import_module(
            "tensorboardX.summary"
            if self._writer_cls.__module__.startswith("tensorboardX")
            else "torch.utils.tensorboard.summary"
        )
        # Values the plugin shows: numbers, strings, bools; lists as text; None left out (no value).
        values = {
            k: v if isinstance(v, (bool, int, float, str)) else str(v)
            for k, v in hparams.items()
            if v is not None
        }
        with _own_writes():  # (a NaN hyperparameter warns too)
            _, start, end = summary.hparams(values, {})
        if which == "session_start":
            record = start
        else:
            record = end
            if status == "failed":
                _set_session_failed(record)
        self._writer._get_file_writer().add_summary(record)

    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self._check_writer()
        # The writer renames tags itself (as _tb_tag does); we only look for names it would merge.
        self._backend_keys("metric", metrics, _tb_tag)
        with _own_writes():
            for key, value in metrics.items():
                self._writer.add_scalar(key, value, step)
        if step != self._last_step:
            self._at_last_step = []
        self._at_last_step += metrics.items()
        self._last_step = step

    def _flush(self) -> None:
        self._check_writer()
        if self._event_file is not None:
            self._event_file.drain()  # (the writer's flush leaves the events still queued for its thread)
        self._writer.flush()

    def _finalize(self, status: str) -> None:
        self._check_writer()
        # An interrupted run writes no end: TensorBoard keeps the first, which is then the resumed run's.
        if self._session_started and status != "interrupted":
            self._add_hparams_summary("session_end", {}, status)
        self._check_writer()
        writer, self._writer = self._writer, None
        writer.flush()
        file_writers = list((getattr(writer, "all_writers", None) or {}).values())
        writer.close()
        _let_go_of_event_writers(file_writers)
        event_file, self._event_file = self._event_file, None
        if event_file is not None and event_file.error is not None:  # the last events were lost
            raise _BackendStopped(f"TensorBoard's event file in {self.log_dir} stopped") from event_file.error

    def state_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "step": self._last_step,
            "at_step": [[key, value] for key, value in self._at_last_step],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if self._writer is None:
            self._warn_given_not_used("version", self._given_version, state.get("version"))
            self._version = state.get("version", self._version)
            step = state.get("step")
            at_step = state.get("at_step")
            if step is None:  # (nothing logged before the checkpoint: whatever the stopped run logged goes)
                self._purge_step = 1
            elif at_step is None or int(step) == 0:
                # (Written before `at_step` was saved; and step 0 also holds the run's hyperparameters.)
                self._purge_step = int(step) + 1
            else:
                self._purge_step = int(step)
                self._replay = [(str(key), float(value)) for key, value in at_step]
            self._resumed = True
        else:
            self._warn_not_resumed("version", self.version, state.get("version"))


@dataclass(frozen=True)
class _DrainMarker:
    """Put in tensorboardX's event queue by `_GuardedEventFile.drain` (a multiprocessing queue: it must
    pickle), and taken out of the stream before the event file."""

    number: int


class _GuardedEventFile:
    """Stands in for the event file that tensorboardX's writer thread writes to, so that a failing disk never
    blocks training.

    tensorboardX writes events from a thread that dies at the first error (a full disk, a folder made
    read-only); the bounded queue in front of it then fills, and every later ``add_*`` and ``close`` (also
    the one tensorboardX registers at exit) blocks forever: training, Ctrl-C and teardown hang. Here the
    first error is kept in `error` and later events are dropped, so the thread lives on and keeps emptying
    the queue; the logger checks `usable` around each call and closes the writer at the first error.
    (torch's SummaryWriter raises its thread's error itself, and is left as it is.)
    """

    def __init__(self, event_file_writer: Any) -> None:
        self._events = event_file_writer._ev_writer
        self._thread = event_file_writer._worker
        self._event_file_writer = event_file_writer
        self.error: Exception | None = None
        self._drained = threading.Condition()  # (`drain`)
        self._markers_sent = self._markers_seen = 0
        # The thread and the writer's own flush and close go through this object from now on.
        event_file_writer._ev_writer = self._thread._record_writer = self

    @classmethod
    def install(cls, summary_writer: Any) -> _GuardedEventFile | None:
        event_file_writer = getattr(getattr(summary_writer, "file_writer", None), "event_writer", None)
        thread = getattr(event_file_writer, "_worker", None)
        if not (hasattr(event_file_writer, "_ev_writer") and hasattr(thread, "_record_writer")):
            return None  # not tensorboardX's layout: a torch writer, or another tensorboardX version
        return cls(event_file_writer)

    def usable(self) -> bool:
        return self.error is None and self._thread.is_alive()

    def _guard(self, fn: Any, *args: Any) -> None:
        if self.error is None:
            try:
                fn(*args)
            except Exception as exc:
                self.error = exc

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until the thread has written every event queued so far. tensorboardX's ``flush`` flushes
        only what its thread has already taken from the queue: a flush when a checkpoint is saved missed
        that step's points (seen under load), and a crash then lost them. A marker goes through the queue
        behind them; the queue is in order, so when the thread hands it here, they are written."""
        if not self.usable():
            return
        with self._drained:
            self._markers_sent += 1
            marker = _DrainMarker(self._markers_sent)
        self._event_file_writer._event_queue.put(marker)
        with self._drained:
            self._drained.wait_for(lambda: self._markers_seen >= marker.number or not self.usable(), timeout)

    # What the thread and tensorboardX's EventFileWriter call on their event file.
    def write_event(self, event: Any) -> None:
        if isinstance(event, _DrainMarker):
            with self._drained:
                self._markers_seen = max(self._markers_seen, event.number)
                self._drained.notify_all()
            return
        self._guard(self._events.write_event, event)

    def flush(self) -> None:
        self._guard(self._events.flush)

    def close(self) -> None:
        try:
            self._events.close()  # closes the file even when its last flush fails
        except Exception as exc:
            self.error = self.error or exc

    def close_writer(self, summary_writer: Any) -> None:
        """Close ``summary_writer`` without waiting on its thread where that has died after all (an error
        outside the event file): its queue may be full, and nothing reads it any more."""
        if self.error is None and not self._thread.is_alive():
            self.error = RuntimeError("the event writer thread has stopped (its error is printed above)")
            self._event_file_writer._closed = True  # its flush and close, also the one at exit, do nothing
            self._event_file_writer._event_queue.cancel_join_thread()
            self.close()
        summary_writer.close()


class _ClosedEventWriter:
    """What a closed tensorboardX FileWriter holds in place of its EventFileWriter (see
    `_let_go_of_event_writers`): the exit handler's close finds nothing to do."""

    def close(self) -> None:
        pass

    def flush(self) -> None:
        pass


def _let_go_of_event_writers(file_writers: list[Any]) -> None:
    """tensorboardX's FileWriter registers an exit handler that holds it, and through it its closed
    EventFileWriter (a queue, a thread object, locks, our guard): kept until the process exits, one per fit,
    validate or test (~25 KB each, a search's thousands of fits grew). Closed, each lets go of it."""
    for file_writer in file_writers:
        if hasattr(file_writer, "event_writer"):
            file_writer.event_writer = _ClosedEventWriter()


def _as_yaml_reads_it(params: dict[str, Any]) -> dict[str, Any]:
    """`params` as hparams.yaml gives them back (a tuple as a list), to compare with what it held."""
    import yaml

    return yaml.safe_load(yaml.safe_dump(params, sort_keys=False)) or {}


def _tb_tag(name: str) -> str:
    # What tensorboardX and torch's SummaryWriter make of a scalar's name (their _clean_tag).
    return re.sub(r"[^-/\w.]", "_", name).lstrip("/")


def _restart_session(writer: Any, purge_step: int) -> None:
    """Write a second session start at `purge_step`, after the one the writer wrote for ``purge_step``.

    TensorBoard's Python reader (``tensorboard --load_fast=false``) takes the first session start in a run folder
    as the run's own start, not a restart, and purges nothing at it. A fresh run writes none, so the resumed
    run's start was that first one: the reader showed every point the resume drops (the stopped run's later
    steps) beside the resumed run's. It purges at the second. The other readers purge at each start, and
    purging twice at one step is the same as once."""
    try:
        from tensorboardX.proto.event_pb2 import Event, SessionLog
    except ImportError:  # torch's SummaryWriter, which comes with tensorboard's own protos
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog
    restart = Event(step=purge_step, wall_time=time.time(), session_log=SessionLog(status=SessionLog.START))
    writer._get_file_writer().add_event(restart)


def _set_session_failed(record: Any) -> None:
    """Make a session-end record say STATUS_FAILURE (the writers' ``hparams`` always write STATUS_SUCCESS)."""
    try:
        from tensorboardX.proto import api_pb2
        from tensorboardX.proto import plugin_hparams_pb2 as plugin_pb2
    except ImportError:  # torch's SummaryWriter, which comes with tensorboard's own protos
        from tensorboard.plugins.hparams import api_pb2
        from tensorboard.plugins.hparams import plugin_data_pb2 as plugin_pb2
    value = record.value[0]
    data = plugin_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
    data.session_end_info.status = api_pb2.Status.Value("STATUS_FAILURE")
    value.metadata.plugin_data.content = data.SerializeToString()
