"""How a fit is asked to stop, and what it does then: `StopRequests`, which the Trainer holds.

Two kinds of request: `should_stop` (EarlyStopping, any callback: the fit ends at the next point where it
checks, once `min_epochs` allow it) and a stop signal (Ctrl-C, SIGTERM: `interrupt.stop_on_signals`), which
stops after the current step or validation batch and saves an `interrupted` checkpoint; a second signal
aborts. Under data parallel no rank stops alone: the requests are agreed at points where every rank is at
the same step (`agree_across_ranks`).
"""

from __future__ import annotations

import contextlib
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from audiotrain._system import discard_output
from audiotrain._text import plural
from audiotrain.distributed import collectives, exit_rank
from audiotrain.train.interrupt import (
    SignalInterrupt,
    aborted_save_message,
    ignoring_stop_signals,
    save_aborted,
    stop_exit_status,
    stop_on_signals,
    stop_signal_name,
    stopping_signal,
)

if TYPE_CHECKING:
    from audiotrain.train.trainer import Trainer

# What `StopRequests.agree_across_ranks` reduces beside the caller's numbers (names no metric can have).
_CTRL_C_HEARD, _SHOULD_STOP = "\0ctrl-c heard", "\0should_stop"
#: For each stop signal, the name of its "some rank heard it" share in that reduction.
_HEARD = {signal.SIGTERM: "\0sigterm heard", signal.SIGINT: "\0sigint heard"}


#: Under data parallel the ranks meet at logging steps to agree on a stop; with log_every_n_steps=0 (no
#: logging step) every this many optimizer steps, the Trainer's default logging interval.
RANKS_MEET_EVERY_WITHOUT_LOGGING = 50


def ranks_meet_every(trainer: Trainer) -> int:
    """Optimizer steps between the ranks' meetings on a stop (`Trainer._ranks_meet`)."""
    return trainer.log_every_n_steps or RANKS_MEET_EVERY_WITHOUT_LOGGING


#: Where a KeyboardInterrupt raised in a hook run inside another hook was raised (`naming_interrupts_from`).
RAISED_IN = "_audiotrain_raised_in"


# Printed after Ctrl-C saves: the call that resumes the fit, with its data given as the fit was given it.
_LOADERS_RESUME_HINT = "Resume with trainer.fit(model, train_loader, val_loader, ckpt_path={path!r})"
_DATAMODULE_RESUME_HINT = "Resume with trainer.fit(model, datamodule=datamodule, ckpt_path={path!r})"


class StopRequests:
    """The stop requests of the Trainer's current (or last) fit and the `interrupted` checkpoint it saved.

    `should_stop`: a stop asked by a callback (the Trainer's public flag). `interrupted`: a stop signal
    ended the fit (or ends it at the next step). Under data parallel, `signal_heard` is a signal this rank
    heard and the ranks have not agreed on yet, and `should_stop_agreed` is some rank's `should_stop`,
    agreed by all of them."""

    def __init__(self, trainer: Trainer):
        self._trainer = trainer
        self.should_stop = False
        self.should_stop_agreed = False
        self.time_out = False  # `max_time` ended the fit (`time_ran_out`)
        self.interrupted = False
        self.signal_heard = False
        # Under data parallel, the stop signal the ranks agreed on (SIGTERM where any rank heard one), which
        # `on_exception` names on every rank alike; None where no signal asked (a KeyboardInterrupt in a hook).
        self.agreed_signal: int | None = None
        # A second stop asked to abort (`request` returned True). Its interrupt may have been lost on the
        # way: raised inside a finalizer (the workers of the stopped epoch's DataLoader closing as its
        # iterator went), which Python prints and drops. The save is aborted all the same.
        self.abort_asked = False
        self.interrupted_checkpoint: Path | None = None  # where a stop signal saved (enable_checkpointing)
        # What a handler of the program's own raised on a stop signal, raised as the fit ends (`raise_held`).
        self.held: list[BaseException] = []
        # Printed after Ctrl-C saves ({path} is the checkpoint); a command-line tool sets its own, or None.
        self.resume_hint: str | None = _LOADERS_RESUME_HINT
        # Whether a stop that saves nothing (enable_checkpointing=False) says so: a Trainer run inside
        # another tool's call (lr_find's sweep), whose caller says what the stop leaves, does not.
        self.says_what_was_saved = True
        self.said_minimum_not_met = (
            False  # a stop request min_epochs/min_steps deferred was said (once a fit)
        )

    def start_fit(self) -> None:
        """A fit starts with no request and no `interrupted` checkpoint of its own yet."""
        self.should_stop = self.should_stop_agreed = self.interrupted = self.signal_heard = False
        self.abort_asked = False
        self.agreed_signal = None
        self.time_out = self.said_minimum_not_met = False
        self.interrupted_checkpoint = None
        self.held.clear()

    def time_ran_out(self) -> None:
        """`max_time` ended the fit (the ranks agreed on it where there are several): as Lightning's Timer,
        it is a stop request, so `trainer.should_stop` tells a script after `fit` that the time ran out."""
        self.should_stop = self.should_stop_agreed = self.time_out = True

    def asked(self) -> bool:
        """A stop asked by a callback (`should_stop`), under data parallel once the ranks agreed on it."""
        return self.should_stop if self._trainer.world_size == 1 else self.should_stop_agreed

    def handling_signals(self):
        """While inside (the fit's hooks and loop), a stop signal calls `request`; what a handler of the
        program's own raises there is kept for `raise_held` (`interrupt.stop_on_signals`)."""
        return stop_on_signals(self.request, held=self.held)

    def raise_held(self) -> None:
        """At the end of a fit: raise what a handler of the program's own raised on a stop signal during it
        (submitit's ``sys.exit`` after it requeued the job), now that the fit stopped and saved."""
        if self.held:
            error = self.held[0]
            self.held.clear()
            raise error

    @contextlib.contextmanager
    def taking_interrupts_in(self, hook: str):
        """A KeyboardInterrupt raised in a fit's hook `hook` (a callback's or the module's) stops the fit as a
        first Ctrl-C heard there does (`request`): the rest of the hook is skipped (in an end hook, the rest
        of that callback's or the module's alone: `Trainer._call_end_hooks`), and the fit stops after the
        current step or validation batch and saves `interrupted`. It reaches the fit as an exception, not
        through the signal handler, where user code raises it ("stop when I say so") and where a notebook's
        "interrupt kernel" or a library's own SIGINT handler turns Ctrl-C into one. A second stop aborts, as a
        second Ctrl-C does: the KeyboardInterrupt goes on (as does the signal handler's `SignalInterrupt`)."""
        try:
            yield
        except KeyboardInterrupt as stop:
            if not self._trainer.fitting or isinstance(stop, SignalInterrupt):
                raise
            # (Raised in a hook called inside `hook`, on_save_checkpoint in ModelCheckpoint's save: named.)
            inner = getattr(stop, RAISED_IN, None)
            where = f"{inner}, called in {hook}" if inner else hook
            if self.request(signal.SIGINT, cause=f"KeyboardInterrupt in {where}"):
                raise

    @staticmethod
    @contextlib.contextmanager
    def naming_interrupts_from(hook: str):
        """A KeyboardInterrupt raised in `hook` (``Callback.on_save_checkpoint``), a hook that runs inside
        another (the save ModelCheckpoint makes in ``on_train_epoch_end``), is named after `hook` where
        `taking_interrupts_in` says it, not after the hook the fit called."""
        try:
            yield
        except KeyboardInterrupt as stop:
            if not isinstance(stop, SignalInterrupt) and not hasattr(stop, RAISED_IN):
                setattr(stop, RAISED_IN, hook)
            raise

    def request(self, signum: int = signal.SIGINT, cause: str | None = None) -> bool:
        """Ctrl-C, or SIGTERM (`interrupt.stop_on_signals`): the first stops after the current step or
        validation batch; True asks to abort. `cause`: what the message names instead of the signal.

        Under data parallel a rank cannot stop alone (the others would wait for it in their next
        all-reduce), and the ranks hear the signal at different steps: the request is only noted here, and
        the ranks stop together at the next logging step, validation or epoch end where any of them has one
        (`agree_across_ranks`)."""
        t = self._trainer
        # Under data parallel a rank counts its own signals: the ranks may have agreed to stop on another
        # rank's (`interrupted`) before this rank's own copy of that Ctrl-C reached it (a launcher signals
        # the ranks one by one, and a busy rank handles it late): that copy is not a second Ctrl-C.
        if self.signal_heard or (self.interrupted and t.world_size == 1):
            self.abort_asked = True
            return True
        name = stop_signal_name(signum)
        heard = "Interrupted" if name == "Ctrl-C" else f"Interrupted by {name}"
        heard = f"Interrupted ({cause})" if cause else heard
        again = "Ctrl-C again" if name == "Ctrl-C" else f"{name} or Ctrl-C again"
        # (With enable_checkpointing=False a stop saves nothing, as in Lightning, unless an
        # OnExceptionCheckpoint asks for it: the lines say so.)
        saves = self._checkpoint_path() is not None
        save, abort = (" and save a checkpoint", "abort without saving") if saves else ("", "abort at once")
        if t.world_size > 1:
            self.signal_heard = True
            t._note(
                f"\n{heard}: the {t.world_size} processes stop together within "
                f"{plural(ranks_meet_every(t), 'training step')} (or at the epoch's end){save} "
                f"({again} to {abort})"
            )
            return False
        self.interrupted = True
        what = "saving a checkpoint" if saves else "stopping"
        t._note(f"\n{heard}: {what} after this step or validation batch ({again} to {abort})")
        return False

    def output_lost(self) -> None:
        """stderr's reader went away (``fit.py 2>&1 | head``, a ``tee`` that died): what is left to write
        there (progress lines, these notes, warnings) goes nowhere, and a fit stops as for Ctrl-C, saving
        ``interrupted`` to resume from, rather than lose its training to a BrokenPipeError. (Lightning's bar
        raised it.)"""
        discard_output(sys.stderr)
        if self._trainer.fitting and not self.stop_was_requested():
            self.request(signal.SIGINT, cause="the reader of the progress lines went away: a closed pipe")

    def agree_across_ranks(self, sums: dict[str, float], weights: dict[str, float]) -> dict[str, float]:
        """Data parallel, where every rank is at the same step (a logging step, an epoch's last step, after
        a validation in `fit`, an epoch's end). One all-reduce, where the loop reads values anyway, that
        - stops every rank when any of them heard Ctrl-C (`request`);
        - stops every rank when any set `should_stop` (a callback deciding on its own clock, a file or its
          own numbers), as Lightning's EarlyStopping reduces its decision: any rank stops them all;
        - returns the means over the ranks of the caller's `sums` (weighted by `weights`): the progress
          bar's numbers.
        """
        asked = {_CTRL_C_HEARD: float(self.signal_heard), _SHOULD_STOP: float(self.should_stop)}
        asked.update({name: float(stopping_signal() == signum) for signum, name in _HEARD.items()})
        means = collectives.reduce_weighted_means({**sums, **asked}, {**weights, **dict.fromkeys(asked, 1.0)})
        self.interrupted = self.interrupted or means.pop(_CTRL_C_HEARD) > 0
        heard = [signum for signum, name in _HEARD.items() if means.pop(name) > 0]  # (SIGTERM first)
        self.agreed_signal = self.agreed_signal or (heard[0] if heard else None)
        self.should_stop = self.should_stop_agreed = means.pop(_SHOULD_STOP) > 0
        return {name: means[name] for name in sums}  # (in the caller's order)

    def save_on_interrupt(self) -> None:
        """After a stop signal: the callbacks hear of it, and (with checkpointing) the state is saved as
        `interrupted` beside the first ModelCheckpoint's checkpoints (at an OnExceptionCheckpoint's path where
        there is one), and `last` made a copy of it."""
        t = self._trainer
        if self.abort_asked:
            self.abort_before_save()  # a second stop whose interrupt was lost on its way (see __init__)
        # As in Lightning, callbacks hear of a Ctrl-C through on_exception (the progress bar closes), and the
        # DataModule after them: here after the save, which asks for its state_dict (Lightning's
        # OnExceptionCheckpoint saves in the callbacks' on_exception, before the DataModule's hears of it), so
        # that a DataModule closing in on_exception what its setup opened does not fail the save.
        # A KeyboardInterrupt that names the signal (`signum`), so that a callback tells SIGTERM (a
        # preemption: requeue the job) from Ctrl-C, as Lightning's gets its SIGTERMException or a
        # KeyboardInterrupt; a plain one where no signal asked (a KeyboardInterrupt raised in a hook).
        # (under data parallel the one the ranks agreed on: a rank that stopped on another's SIGTERM names it)
        signum = self.agreed_signal if t.world_size > 1 else stopping_signal()
        stop = KeyboardInterrupt() if signum is None else SignalInterrupt(signum)
        # (before on_exception, as Lightning's `_interrupt`: a callback there tells a stop from a crash)
        t._state_tracker.status = "interrupted"
        t.callbacks.call_quietly("on_exception", t, t.module, stop)
        try:
            self._save_interrupted()
        finally:
            t._datamodule_on_exception(stop)

    def _save_interrupted(self) -> None:
        t = self._trainer
        path = self._checkpoint_path()
        if path is None:
            # Lightning writes nothing then either: a run told not to checkpoint must not leave one in the
            # default folder (`./logs`, which may hold someone's work). The model stays trained in memory.
            if not self.says_what_was_saved:
                return
            t._note(
                f"Stopped at epoch {t.current_epoch}, global step {t.global_step}; no checkpoint saved "
                "(enable_checkpointing=False)"
            )
            return
        # `last` stays the newest state, so ckpt_path="last" resumes from here, not from the last save.
        keep_last = [] if t.fast_dev_run else t.callbacks.keeping_last()
        for cb in keep_last:
            cb.last_model_path = cb.last_path  # before the save: the checkpoint records it
        try:
            t.save_checkpoint(path)
            self.interrupted_checkpoint = path
            if t.is_global_zero:
                t.callbacks.copy_to_last(path, keep_last)
        except KeyboardInterrupt:
            self._abort_save(path)
        saved = f"Saved {path} at epoch {t.current_epoch}, global step {t.global_step}."
        hint = self.resume_hint or ""
        if hint == _LOADERS_RESUME_HINT and t.datamodule is not None:
            hint = _DATAMODULE_RESUME_HINT  # (the fit's data came from a DataModule: say to pass it again)
        hint = hint.format(path=str(path))
        t._note(f"{saved} {hint}".rstrip())

    def _checkpoint_path(self) -> Path | None:
        """Where a stop signal saves: ``interrupted`` beside the checkpoints, an OnExceptionCheckpoint's path,
        or None (enable_checkpointing=False and no OnExceptionCheckpoint)."""
        t = self._trainer
        return t.callbacks.interrupted_path(t.default_root_dir, t.enable_checkpointing)

    def abort_before_save(self) -> None:
        """A second stop signal came while the step or validation batch the first one stops after still ran
        (the signal handler raised `SignalInterrupt` there): nothing was saved. As `_abort_save`: one line
        says so and names the newest intact checkpoint, then `fit` raises `interrupt.save_aborted()` (a
        script ends with status 130, not a traceback from inside the step)."""
        t = self._trainer
        path = self._checkpoint_path()
        with ignoring_stop_signals():
            if path is None:
                t._note(f"Aborted: stopped at epoch {t.current_epoch}, global step {t.global_step}")
            else:
                t._note(aborted_save_message(path, t.checkpoint_callbacks, t.ckpt_path, begun=False))
            if t.world_size > 1:
                exit_rank(stop_exit_status())
        raise save_aborted() from None

    def stop_was_requested(self) -> bool:
        """Whether a first stop signal was heard in this fit (a second one aborts)."""
        return self.interrupted or self.signal_heard

    def _abort_save(self, path: Path) -> None:
        """A second stop signal during the save of `path` aborts it (as asked), and the atomic writer has
        removed what it began: one line says so and which checkpoint is the newest intact one, then `fit`
        raises `interrupt.save_aborted()`, not a traceback from inside the writer: a script ends with status
        130 for Ctrl-C, while an interactive session, a sweep loop or an app that catches KeyboardInterrupt
        goes on (with the model in memory). A rank of a data-parallel job ends its process (the job stops)."""
        t = self._trainer
        with ignoring_stop_signals():  # a third one must not cut this message short
            t._note(aborted_save_message(path, t.checkpoint_callbacks, t.ckpt_path))
            if t.world_size > 1:
                exit_rank(stop_exit_status())  # a rank cannot go on alone: the job ends together
        raise save_aborted() from None  # (not chained to the KeyboardInterrupt inside the writer)
