"""Signals that stop a run as Ctrl-C does: the first asks the loop to stop after the current step and save, a
second aborts at once.

- SIGINT (Ctrl-C), and in a rank that `audiotrain.distributed.local` launched SIGUSR1, its stand-in (the
  launcher forwards the user's Ctrl-C as it).
- SIGTERM: what ``timeout``, ``kill``, and a cluster's time limit, preemption or ``scancel`` send.
- SIGUSR1 in one process as well: what ``sbatch --signal=USR1@120`` sends before a time limit.

SIGTERM and SIGUSR1 are taken where they would end the process (their default action), and where the program
installed a handler of its own (a launcher's, such as submitit's): as Lightning 2.6.6's `_HandlersCompose`,
the stop is asked first and then the program's handler runs, at once (it logs, requeues the job). What that
handler raises (submitit's ``sys.exit``) is held and raised once the block ends (after a fit's `interrupted`
save), not in the middle of a step. A signal the program ignores stays ignored (Lightning takes that one).

A terminal's Ctrl-C reaches the whole process group, so also the C++ compiler MLX's CPU backend runs when a
compiled function meets new shapes or constants. MLX (0.32) takes a compiler a signal ended for a finished
one: the step fails with ``RuntimeError: Could not load C++ shared library ...``, and a file the linker had
only begun is renamed into MLX's kernel cache, where it failed every later run. `eval_compiling_again`
removes such files and evaluates the step again, so that the stop comes after that step, as for any Ctrl-C.

In a launched rank the messages name the signal its launcher heard (`audiotrain.distributed.local` writes it
down before it sends the stand-in): "SIGTERM" where ``timeout`` or a time limit stopped the job.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from audiotrain._stop_signals import STOP_SIGNALS
from audiotrain._system import StoppedBySignal
from audiotrain.train import checkpoint as ckpt

#: What MLX raises when a kernel it compiled cannot be loaded (a compiler that a signal ended, or a broken
#: file in its kernel cache).
_KERNEL_NOT_LOADED = "Could not load C++ shared library"

# The signal that asked this process's latest fit to stop (the one a launched rank's SIGUSR1 stands for), for
# the exit status and the messages of the commands around it; None while none has.
_stopped_by: int | None = None
# The handlers `stop_on_signals` has installed and not yet put back: a `stop_on_signals` inside another takes
# SIGTERM and SIGUSR1 over from the enclosing one, as it would from the default action.
_installed: set[Callable] = set()


class SignalInterrupt(KeyboardInterrupt):
    """The KeyboardInterrupt a stop signal raises inside `stop_on_signals` (a second one, or one its
    ``request_stop`` stops at once): `signum` is the signal it stands for (SIGTERM where a launched rank's
    SIGUSR1 passed on a SIGTERM), so that the message can name it."""

    def __init__(self, signum: int):
        super().__init__(stop_signal_name(signum))
        self.signum = signum


def signal_meant(signum: int) -> int:
    """The signal a stop signal stands for: in a rank that `audiotrain.distributed.local` launched, its
    stand-in SIGUSR1 stands for the one the launcher heard (SIGINT when it wrote none down); any other for
    itself."""
    from audiotrain.distributed.local import launcher_stop_signal, stop_signals

    usr1 = getattr(signal, "SIGUSR1", None)
    if signum == usr1 and usr1 in stop_signals():
        return launcher_stop_signal() or signal.SIGINT
    return signum


def stop_signal_name(signum: int) -> str:
    """How messages call a stop signal: "Ctrl-C" (SIGINT, and a launched rank's stand-in for it), else its
    name ("SIGTERM", also for a launched rank's stand-in for it)."""
    meant = signal_meant(signum)
    return "Ctrl-C" if meant == signal.SIGINT else signal.Signals(meant).name


def stop_status(signum: int) -> int:
    """The exit status of a command that stop signal ended: 128 + the signal it stands for, as a shell
    reports a command that signal ended (130 for Ctrl-C, 143 for SIGTERM)."""
    return 128 + signal_meant(signum)


def signal_of(stop: BaseException) -> int:
    """The signal behind KeyboardInterrupt `stop`: the one `stop_on_signals` raised it for (or a recipe
    command's SIGTERM outside it: `StoppedBySignal`), else Ctrl-C's (Python's own handler raised it), which
    in a launched rank is its stand-in's (`signal_meant`)."""
    if isinstance(stop, (SignalInterrupt, StoppedBySignal)):
        return stop.signum
    from audiotrain.distributed.local import stop_signals

    return signal_meant(stop_signals()[-1])


def stopping_signal() -> int | None:
    """The signal that asked this process's latest fit to stop (`signal_meant`'s), None where none did (a
    stop a KeyboardInterrupt from a hook asked, or no stop)."""
    return _stopped_by


def stopped_by() -> str:
    """How messages call the signal that stopped this process's latest fit ("Ctrl-C" when none did)."""
    return stop_signal_name(_stopped_by or signal.SIGINT)


def stop_exit_status() -> int:
    """The exit status of a command a stop signal ended: 128 + the signal, as a shell reports a command that
    signal ended (130 for Ctrl-C, 143 for SIGTERM); 130 when no signal stopped a fit (Ctrl-C outside one)."""
    return 128 + (_stopped_by or signal.SIGINT)


class SaveAborted(SystemExit, KeyboardInterrupt):
    """A second stop signal aborted the save that a first one started (`Trainer.fit`). Code that catches
    KeyboardInterrupt (a sweep loop, an app that runs `fit`) catches it and goes on; met by nothing, it is a
    SystemExit for Python: a script ends with the status a shell gives a command that signal stopped (130
    for Ctrl-C, 143 for SIGTERM), without a traceback."""


def interactive_session() -> bool:
    """Whether Python runs interactively: the REPL or ``python -i``, ``code.interact``, IPython or Jupyter.
    There a SystemExit would end the session (and the models in it) or read as an error."""
    if sys.flags.interactive or hasattr(sys, "ps1"):
        return True
    get_ipython = getattr(sys.modules.get("IPython"), "get_ipython", None)
    return callable(get_ipython) and get_ipython() is not None


def save_aborted() -> KeyboardInterrupt:
    """What `fit` raises once a second stop signal aborted its save: a plain KeyboardInterrupt in an
    interactive session, else `SaveAborted` (a KeyboardInterrupt to code that catches one, exit status 130
    for a script)."""
    return KeyboardInterrupt() if interactive_session() else SaveAborted(stop_exit_status())


def aborted_save_message(
    path: Path, checkpoint_callbacks: Sequence[Any], ckpt_path: str | None, begun: bool = True
) -> str:
    """The line `fit` prints when a second stop signal aborted the save of `path` (the atomic writer has
    removed what it began; `begun` False: it came before the save began, while the step the first one stops
    after still ran): what is left of `path`, and which checkpoint of the run is the newest intact one (of
    `path`, the ModelCheckpoints' `last` and top-k saves, and `ckpt_path`, the one the fit started from), to
    resume from."""
    # On a tie the first is named: `last` (what ckpt_path="last" resumes) before a top-k save.
    cbs = checkpoint_callbacks
    named = [path, *(cb.last_path for cb in cbs), *(p for cb in cbs for p in cb._kept)]
    named += [ckpt_path] if ckpt_path else []  # the fit's start
    candidates = [Path(p) for p in dict.fromkeys(str(p) for p in named)]
    newest = ckpt._newest([c for c in candidates if c.is_dir()])
    # (The signal may have come once `interrupted` was whole, while `last` was made a copy of it.)
    left = f"{path} was written whole" if newest == path else f"nothing of {path} was left"
    if not begun:
        left = f"nothing was saved as {path}"
    if newest is None:
        intact = "no earlier checkpoint of this run is there to resume from"
    else:
        progress = ckpt.read_state(newest)["progress"]
        intact = (
            f"the newest intact checkpoint is {newest} (epoch {progress['epoch']}, global step "
            f"{progress['global_step']})"
        )
    return f"{'Save aborted' if begun else 'Aborted before the save'}: {left}; {intact}"


def _signals_to_take() -> tuple[list[int], dict[int, Callable]]:
    """SIGINT (and its stand-in in a launched rank), then SIGTERM and SIGUSR1 where they would end the
    process, where an enclosing `stop_on_signals` takes them, or where the program installed a handler of its
    own; and those of the program's own handlers that run after the stop is asked (`stop_on_signals`)."""
    from audiotrain.distributed.local import stop_signals

    taken, programs = list(stop_signals()), {}
    for name in ("SIGTERM", "SIGUSR1"):
        signum = getattr(signal, name, None)
        if signum is None or signum in taken:
            continue
        current = signal.getsignal(signum)
        # (an enclosing stop_on_signals' own, or a recipe command's SIGTERM in place of the default)
        in_place_of_default = getattr(current, "in_place_of_default", False)
        if current == signal.SIG_DFL or in_place_of_default:
            taken.append(signum)
        elif current in _installed:  # (the enclosing one's program handler runs on in here)
            taken.append(signum)
            if signum in current.programs:
                programs[signum] = current.programs[signum]
        elif callable(current):  # the program's own (not SIG_IGN, nor None: a handler set outside Python)
            taken.append(signum)
            programs[signum] = current
    return taken, programs


@contextlib.contextmanager
def stop_on_signals(
    request_stop: Callable[[int], bool], *, same_run: bool = False, held: list[BaseException] | None = None
):
    """While inside, a stop signal (see the module docstring) calls ``request_stop(signum)``, which returns
    False the first time (the run stops where it can and saves) and True once a stop was already requested
    (raise `SignalInterrupt`, a KeyboardInterrupt). Outside the main thread nothing is installed (only it
    can). Inside another, it takes the signals over until it ends.

    `same_run`: the code inside goes on with the run of the last one (the evaluation after a fit): the signal
    that stopped that one stays the one `stop_exit_status` reports, where a new run starts without one.

    A handler of the program's own that SIGTERM or SIGUSR1 had runs after ``request_stop`` (module
    docstring); what it raises is raised as the block ends, or, with `held` (a list), put there for the
    caller to raise once it is done (a fit, after its teardown)."""
    global _stopped_by
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if not same_run:
        _stopped_by = None

    raised: list[BaseException] = [] if held is None else held  # by the program's own handlers

    def handler(signum, frame):
        global _stopped_by
        _stopped_by = _stopped_by or signal_meant(signum)  # (also when it aborts: the exit status says which)
        abort = request_stop(signum)
        if signum in programs:
            try:
                programs[signum](signum, frame)
            except BaseException as error:  # (SystemExit: raised once the stop has saved, not mid-step)
                raised.append(error)
        if abort:
            raise SignalInterrupt(signal_meant(signum))

    taken, programs = _signals_to_take()
    handler.programs = programs  # type: ignore[attr-defined]
    previous = {signum: signal.signal(signum, handler) for signum in taken}
    _installed.add(handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
        _installed.discard(handler)
    if raised and held is None:
        raise raised[0]


@contextlib.contextmanager
def stop_at_once(*, same_run: bool = False):
    """While inside, a stop signal raises `SignalInterrupt` at once (`stop_on_signals`, every signal a stop:
    the work inside, a recipe's plots and evaluation after its fit, has nothing to save first).

    Python runs the handler wherever the main thread is. Landing in a finalizer or a weakref callback, its
    exception is printed as "Exception ignored" and dropped: the stop is raised as the block ends instead of
    being lost (the block ran on, and the command exited 0). Landing in a C extension's call back into
    Python, the extension may put an error of its own in its place (matplotlib: "Invalid affine
    transformation matrix"): the stop is raised, from that error, instead of it."""
    heard: list[int] = []

    def every_signal_stops(signum: int) -> bool:
        heard.append(signum)
        return True

    with stop_on_signals(every_signal_stops, same_run=same_run):
        try:
            yield
        except KeyboardInterrupt:
            raise
        except BaseException as error:
            if heard:
                raise SignalInterrupt(signal_meant(heard[0])) from error
            raise
        if heard:
            raise SignalInterrupt(signal_meant(heard[0]))


# Inside `stopping_together` in a job of several ranks: the stop signals this rank heard there (None outside).
_together: list[int] | None = None


@contextlib.contextmanager
def stopping_together(*, same_run: bool = False):
    """`stop_at_once` for work whose ranks meet in collectives (every rank calls them in the same order): in
    a job of several ranks, a rank that left on a stop signal would leave another blocked for ever in a
    collective it had entered (in C++, where no Python handler runs). So here the first stop signal is only
    noted, and the ranks stop together at the next `stop_point` (SignalInterrupt on every rank), which the
    work passes at the same places on every rank, and which ends the block; a second signal aborts at once
    (the launcher ends a rank it leaves behind). In one process it is `stop_at_once`."""
    global _together
    from audiotrain.distributed import collectives

    if _together is not None or collectives.world_size() <= 1:
        with stop_at_once(same_run=same_run) if _together is None else contextlib.nullcontext():
            yield
        return

    def note(signum: int) -> bool:
        heard.append(signum)
        return len(heard) > 1

    heard = _together = []
    try:
        with stop_on_signals(note, same_run=same_run):
            yield
            stop_point()
    finally:
        _together = None


def stop_point() -> None:
    """Inside `stopping_together` in a job of several ranks: one all-reduce by which the ranks agree whether
    any heard a stop signal, and then all raise `SignalInterrupt`; nothing elsewhere."""
    global _stopped_by
    if _together is None:
        return
    from audiotrain.distributed import collectives
    from audiotrain.distributed.local import stop_signals

    import mlx.core as mx

    if collectives.all_reduce_sum(mx.array(float(bool(_together)))).item() > 0:
        signum = _together[0] if _together else stop_signals()[-1]  # (a rank whose signal is still coming)
        _stopped_by = _stopped_by or signal_meant(signum)
        raise SignalInterrupt(signum)


@contextlib.contextmanager
def ignoring_stop_signals():
    """While inside, every stop signal is ignored (the process is already ending on one)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def eval_compiling_again(evaluate: Callable[[Any], Any], arrays: Any) -> None:
    """``evaluate(arrays)`` (``mx.async_eval`` of a step); where MLX could not load a kernel it compiled,
    remove the broken kernels from its cache (`audiotrain._system.remove_broken_kernels`) and evaluate once
    more, which compiles them again. A compiler that a stop signal ended (module docstring) then finishes the
    step the run stops after; a broken file an earlier run left is replaced. A second failure is raised."""
    try:
        evaluate(arrays)
    except RuntimeError as error:
        if _KERNEL_NOT_LOADED not in str(error):
            from audiotrain._system import kernel_compile_error

            # A full, read-only or foreign TMPDIR: one line naming it, not the compiler's 20-odd lines.
            failure = kernel_compile_error(error)
            if failure is not None:
                raise failure from None
            raise
        from audiotrain._system import remove_broken_kernels

        removed = remove_broken_kernels()
        if _stopped_by is None:  # (a stop's own compiler: no word needed; its message is out)
            left = f" and removed {len(removed)} broken kernel file(s)" if removed else ""
            warnings.warn(
                f"MLX could not load a kernel it compiled ({error}); compiling it again{left}",
                RuntimeWarning,
                stacklevel=3,
            )
        evaluate(arrays)
