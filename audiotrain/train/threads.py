"""The Trainer outside the main thread: a notebook cell that trains in the background, a GUI.

MLX (0.32) keeps its streams and its random state per thread, and Python delivers signals to the main
thread only. So, where `fit` (or `validate`, `test`, `predict`) runs in another thread:

- An array is evaluated only by the thread whose stream made it. A model built in the main thread holds
  lazy initial weights of that thread's stream until something evaluates them; another thread cannot
  ("There is no Stream(cpu, 0) in current thread"). `check_parameters_evaluate_here` says so in one line.
- A thread that used MLX's random state (every fit does: seeding, dropout) ends with its streams still
  held, and MLX then aborts the process when Python exits ("terminate called without an active exception",
  status 134). `clear_streams_when_thread_ends` (`audiotrain._thread_streams`) makes the thread release
  them as it ends.
- Ctrl-C and SIGTERM cannot stop it: `warn_signals_do_not_reach_this_thread` says so, once.
- A fit still running in a daemon thread as Python exits would be cut off mid-step, its streams held: MLX
  aborts the process (status 134), nothing saved. `stop_fit_at_exit` has Python's exit ask it to stop (as a
  first Ctrl-C does, `interrupted` saved) and wait for its thread to end.
"""

from __future__ import annotations

import atexit
import signal
import sys
import threading
import time
import warnings
import weakref
from typing import Any

from audiotrain._thread_streams import clear_streams_when_thread_ends  # noqa: F401 (the Trainer's)

import mlx.core as mx

# What MLX raises for an array of a stream another thread owns.
_OTHER_THREADS_STREAM = "in current thread"
_warned_of_signals = False
# The fits running outside the main thread, by their thread: stopped at interpreter exit (below).
_fits_in_threads: dict[threading.Thread, weakref.ref] = {}
# How long Python's exit waits in all for those fits to stop and their threads to end.
EXIT_WAIT_S = 60.0


def check_parameters_evaluate_here(module: Any, where: str) -> None:
    """Evaluate `module`'s parameters now (they are evaluated at the first step anyway), or raise one line
    where they belong to another thread's stream, saying how to hand the model over."""
    try:
        mx.eval(module.parameters())
    except RuntimeError as err:
        if _OTHER_THREADS_STREAM not in str(err):
            raise
        raise RuntimeError(
            f"{where}: the parameters of {type(module).__name__} were made in another thread and not yet "
            f"evaluated, and MLX evaluates an array only in the thread whose stream made it ({err}). Call "
            "mx.eval(model.parameters()) in the thread that builds the model, before this one uses it"
        ) from None


def warn_signals_do_not_reach_this_thread(stacklevel: int) -> None:
    """Once a process, where `fit` runs outside the main thread: neither Ctrl-C nor SIGTERM stops it."""
    global _warned_of_signals
    if threading.current_thread() is threading.main_thread() or _warned_of_signals:
        return
    _warned_of_signals = True
    warnings.warn(
        f"Trainer.fit runs outside the main thread (in {threading.current_thread().name!r}): Ctrl-C, a "
        "notebook's interrupt and SIGTERM reach only the main thread, so they neither stop this fit nor make "
        "it save. To stop it after the current step, set trainer.should_stop = True from another thread (it "
        "ends as EarlyStopping ends a fit, `last` saved). (Said once.)",
        UserWarning,
        stacklevel=stacklevel + 1,
    )


def stop_fit_at_exit(trainer: Any) -> weakref.ref | None:
    """Outside the main thread: where Python exits while `trainer`'s fit runs in this thread (a daemon
    thread; Python waits for any other), ask the fit to stop and wait for the thread (module docstring).
    Returns the fit this one runs inside, if any (a LearningRateFinder's sweep in its fit's on_fit_start),
    for `fit_ended` to give the thread back to."""
    if threading.current_thread() is threading.main_thread():
        return None
    outer = _fits_in_threads.get(threading.current_thread())
    _fits_in_threads[threading.current_thread()] = weakref.ref(trainer)
    return outer


def fit_ended(outer: weakref.ref | None = None) -> None:
    """This thread's fit is over: nothing to stop at exit, or the `outer` fit it ran inside, still running."""
    if outer is None:
        _fits_in_threads.pop(threading.current_thread(), None)
    else:
        _fits_in_threads[threading.current_thread()] = outer


@atexit.register
def _stop_fits_at_exit(timeout: float = EXIT_WAIT_S) -> None:
    """Ask the fits still running in daemon threads to stop after their current step or validation batch,
    as a first Ctrl-C does (`interrupted` saved, `last` its copy), and wait up to `timeout` s in all for their
    threads to end, releasing their MLX streams; a fit that has not stopped by then is cut off as before.
    Not `should_stop`: it waits for `min_epochs` and `min_steps` and for a validation to end, which a process
    that is exiting cannot."""
    running = [(thread, fit()) for thread, fit in list(_fits_in_threads.items()) if thread.is_alive()]
    for thread, trainer in running:
        if trainer is not None:
            print(
                f"audiotrain: Python is exiting while Trainer.fit runs in thread {thread.name!r}: stopping "
                f"it after the current step or validation batch (its checkpoint saved; up to {timeout:g} s)",
                file=sys.stderr,
            )
            trainer._stopping.request(signal.SIGINT, cause="Python is exiting")
    deadline = time.monotonic() + timeout
    for thread, _ in running:
        thread.join(max(0.0, deadline - time.monotonic()))
