"""Training progress on stderr: a live tqdm bar in a terminal, one line per epoch in a log.

In a terminal, each training epoch gets a bar with the loss and metrics, and validation a transient
bar under it; `validate`, `test` and `predict` get a bar each that stays, as Lightning's. Where stderr is not a terminal (a log file, CI, ``nohup``, a pipe), a live bar is a
stream of carriage returns that a log keeps in full (a few hundred bytes per batch), so the bar is
replaced by one plain line at each epoch's end and after each validation inside an epoch.

Inside an epoch the bar shows the last step's training values; at the epoch's end (the bar left on
screen, the line in a log) each shows its mean over the epoch, the number `history.json` holds
(`Trainer.epoch_progress_metrics`), and a log's line after a validation inside an epoch shows the
epoch's means so far (``Epoch 0 (means so far), validation: ...``). `loss` and `val_loss` come first, so
that an 80-column terminal cuts off other metrics rather than those. A log's line longer than
`PLAIN_LINE_WIDTH` (a recipe's dozen metrics and their validation twins: 350 columns) goes on in
indented lines, the metrics in the same order.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
import sys
import textwrap
import time
from collections.abc import Mapping
from typing import Any

from audiotrain._text import plural
from audiotrain._tqdm import draws_live_bars, tqdm
from audiotrain.train.callback import Callback


def _reader_may_leave(hook):
    """A hook of the bar's that writes on stderr, whose reader may go away (``fit.py 2>&1 | head``, a
    ``tee`` that died): the fit then stops as for Ctrl-C and saves (`StopRequests.output_lost`), instead of
    losing the training in a BrokenPipeError."""

    @functools.wraps(hook)
    def drawing(self, trainer, *args):
        try:
            return hook(self, trainer, *args)
        except BrokenPipeError:
            self._train_bar = self._val_bar = None  # (closing them would write)
            trainer._stopping.output_lost()
            return None

    return drawing


class ProgressBar(Callback):
    """Show training progress with the loss and metrics (`Trainer.progress_metrics`; at an epoch's end
    `Trainer.epoch_progress_metrics`, the epoch's means as the history has them). Under data parallel
    rank 0 draws it, with each value's mean over all ranks as the loggers get it, renewed at each logging
    step, validation and epoch end (where the ranks meet anyway). One progress bar at most (Lightning's
    rule): a second among the callbacks is refused when a stage starts, naming both.

    Args:
        refresh_rate: update the bar's count and numbers every `refresh_rate` batches (the count at the
            last batch too, as Lightning's). Reading the numbers is a host sync, so a larger value keeps
            the device busier. The environment's `TQDM_MINITERS`
            raises it to that many (Lightning's rule, for a cluster's slow log: ``max(TQDM_MINITERS,
            refresh_rate)``).
        plain: one line of text per epoch instead of live bars. None (the default) chooses it when
            stderr is not a terminal (or is a dumb one: ``TERM=dumb``), so logs get readable lines and no
            validation bar at all.
    """

    def __init__(self, refresh_rate: int = 1, plain: bool | None = None):
        if not isinstance(refresh_rate, int) or refresh_rate < 1:
            raise ValueError(f"ProgressBar: refresh_rate must be a positive int, got {refresh_rate!r}")
        if plain not in (None, True, False):
            raise ValueError(f"ProgressBar: plain must be True, False or None, got {plain!r}")
        self.refresh_rate = _with_env_miniters(refresh_rate)
        self.plain = plain
        # TQDMProgressBar's `process_position` and `leave` (Lightning's): the defaults keep each epoch's bar.
        self._position, self._leave = 0, True
        self._train_bar: tqdm | None = None
        self._val_bar: tqdm | None = None
        self._train_done = self._val_done = 0  # (batches finished: what the bars count to, `_count_to`)
        self._last_bars: dict[str, tqdm] = {}  # (Lightning's `train_progress_bar`, ...: the last one made)
        self._epoch_started = 0.0
        self._epoch_means = False  # (what get_metrics gives: the epoch's means, not the last step's)
        self._enabled = True  # (Lightning's enable() / disable())
        self._trainer = None  # (set in setup, as Lightning's `trainer`)

    @property
    def state_key(self) -> str:
        return "ProgressBar"

    def __getstate__(self) -> dict[str, Any]:
        """Without its live bars and its Trainer (set again when a stage starts), so that a bar pickles and
        `copy.deepcopy` takes it after a `fit`, as Lightning's (a fold's callbacks copied for the next)."""
        state = dict(vars(self))
        state.update(_train_bar=None, _val_bar=None, _trainer=None, _last_bars={})
        return state

    # -- Lightning's ProgressBar API, for a bar of one's own subclassing this one -----------------------
    def setup(self, trainer, module, stage) -> None:
        self._trainer = trainer
        if not trainer.is_global_zero:  # (Lightning's: the bar is kept, its hooks run, rank 0 alone draws)
            self.disable()

    @property
    def trainer(self) -> Any:
        """The Trainer whose stage this bar shows (Lightning's; set when a stage starts)."""
        if getattr(self, "_trainer", None) is None:
            raise TypeError(f"The `{type(self).__name__}._trainer` reference has not been set yet.")
        return self._trainer

    @property
    def total_train_batches(self) -> int | float:
        """Lightning's: the training batches of this epoch (inf for a loader without a length), at most the
        optimizer steps `max_steps` leaves where `max_epochs` is -1."""
        t = self.trainer
        if t.max_epochs is None and t.max_steps is not None and t.max_steps > 0:
            return min(t.num_training_batches, t.max_steps - t.global_step)
        return t.num_training_batches

    @property
    def total_val_batches(self) -> int | float:
        """Lightning's: the batches of a validation in `fit` (all loaders'), 0 without one and in an epoch
        that `check_val_every_n_epoch` does not validate in."""
        t = self.trainer
        every = t.check_val_every_n_epoch
        if not t.enable_validation or (every is not None and (t.current_epoch + 1) % every):
            return 0
        total = t.num_val_batches
        return sum(total) if isinstance(total, list) else total  # (several loaders: all, as Lightning's)

    @property
    def total_val_batches_current_dataloader(self) -> int | float:
        """Lightning's: the batches of the validation (or sanity check) loader running now."""
        t = self.trainer
        return self._current(t.num_sanity_val_batches if t.sanity_checking else t.num_val_batches)

    @property
    def total_test_batches_current_dataloader(self) -> int | float:
        """Lightning's: the batches of the test loader running now."""
        return self._current(self.trainer.num_test_batches)

    @property
    def total_predict_batches_current_dataloader(self) -> int | float:
        """Lightning's: the batches of the predict loader running now."""
        return self._current(self.trainer.num_predict_batches)

    def _current(self, batches: Any) -> int | float:
        if isinstance(batches, list):  # (several loaders: the one of the last batch hook; the first before)
            return batches[getattr(self, "_current_eval_dataloader_idx", None) or 0]
        return batches

    def has_dataloader_changed(self, dataloader_idx: int) -> bool:
        """Lightning's: whether `dataloader_idx` differs from the last one seen (which it becomes)."""
        old = getattr(self, "_current_eval_dataloader_idx", None)
        self._current_eval_dataloader_idx = dataloader_idx
        return old != dataloader_idx

    def reset_dataloader_idx_tracker(self) -> None:
        """Lightning's: forget the loader `has_dataloader_changed` saw last."""
        self._current_eval_dataloader_idx = None

    def enable(self) -> None:
        """Draw again after `disable` (Lightning's)."""
        self._enabled = True

    def disable(self) -> None:
        """Draw nothing, bars or lines, until `enable` (Lightning's); the hooks still run."""
        self._enabled = False

    @property
    def is_enabled(self) -> bool:
        return getattr(self, "_enabled", True)

    @property
    def is_disabled(self) -> bool:
        return not self.is_enabled

    def print(self, *args: Any, sep: str = " ", **kwargs: Any) -> None:
        """Print without breaking the bar (Lightning's), on stderr with the bar unless `file` says otherwise;
        `end` as ``print``'s."""
        kwargs.setdefault("file", sys.stderr)
        tqdm.write(sep.join(map(str, args)), **kwargs)

    @property
    def is_plain(self) -> bool:
        """Whether this run prints lines (decided now: stderr can be redirected between runs)."""
        if self.plain is not None:
            return self.plain
        # A dumb terminal (TERM=dumb: Emacs's shell, some CI "terminals") cannot move the cursor up, which
        # the validation bar under the epoch's needs, and one of 0 columns shows no bar: a log's lines.
        return not draws_live_bars(sys.stderr)

    def describe(self) -> str:
        """This bar as a message names it: its class and refresh rate."""
        return _describe(self)

    @_reader_may_leave
    def on_train_epoch_start(self, trainer, module) -> None:
        self._close_train()
        self._epoch_started = time.perf_counter()
        if self.is_plain or self.is_disabled:
            return
        self._trainer = trainer  # (`self.trainer` in the factory, were `setup` overridden without super())
        self._train_bar = self._last_bars["train"] = self.init_train_tqdm()
        self._train_done = self._train_bar.n  # (a resumed epoch's bar starts at its checkpoint's batch)

    @_reader_may_leave
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self._train_bar is None:
            return
        self._train_done += 1
        self._count_to(self._train_bar, self._train_done)
        if (batch_idx + 1) % self.refresh_rate == 0:
            self._train_bar.set_postfix(_fmt(self._shown(trainer, module)), refresh=False)

    @_reader_may_leave
    def on_train_epoch_end(self, trainer, module) -> None:
        epoch_means = self._shown(trainer, module, epoch_means=True)
        if self._train_bar is not None:
            self._train_bar.set_postfix(_fmt(epoch_means), refresh=True)
        elif self.is_plain and self.is_enabled:
            self._line(trainer, f"Epoch {trainer.current_epoch}", epoch_means)
        self._close_train()

    @_reader_may_leave
    def on_train_end(self, trainer, module) -> None:
        self._close_train()

    @_reader_may_leave
    def on_validation_start(self, trainer, module) -> None:
        # (the sanity check's own count, as Lightning's bar: num_val_batches is the fit's validation's)
        total = trainer.num_sanity_val_batches if trainer.sanity_checking else trainer.num_val_batches
        # Lightning's labels: "Validating" before the first epoch read as a validation of the untrained weights.
        if trainer.sanity_checking:
            self._open_eval_bar(
                trainer, self.sanity_check_description, total, "validation", self.init_sanity_tqdm
            )
        else:
            self._open_eval_bar(
                trainer, self.validation_description, total, "validation", self.init_validation_tqdm
            )

    def on_validation_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0) -> None:
        self.has_dataloader_changed(dataloader_idx)  # (Lightning's: `total_val_batches_current_dataloader`)

    def on_test_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0) -> None:
        self.has_dataloader_changed(dataloader_idx)

    def on_predict_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0) -> None:
        self.has_dataloader_changed(dataloader_idx)

    @_reader_may_leave
    def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._eval_batch_end(dataloader_idx)

    @_reader_may_leave
    def on_test_start(self, trainer, module) -> None:
        self._open_eval_bar(
            trainer, self.test_description, trainer.num_test_batches, "test", self.init_test_tqdm
        )

    @_reader_may_leave
    def on_test_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._eval_batch_end(dataloader_idx)

    @_reader_may_leave
    def on_test_end(self, trainer, module) -> None:
        self._close_eval()

    @_reader_may_leave
    def on_predict_start(self, trainer, module) -> None:
        total = trainer.num_predict_batches
        self._open_eval_bar(trainer, self.predict_description, total, "predict", self.init_predict_tqdm)

    @_reader_may_leave
    def on_predict_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._eval_batch_end(dataloader_idx)

    @_reader_may_leave
    def on_predict_end(self, trainer, module) -> None:
        self._close_eval()

    # -- Lightning's TQDMProgressBar factories: override one to change (or hide) a bar -------------------
    sanity_check_description = "Sanity Checking"
    validation_description = "Validation"
    test_description = "Testing"
    predict_description = "Predicting"

    def init_train_tqdm(self) -> tqdm:
        """The bar of a training epoch, made as each epoch starts (Lightning's factory: an override may
        return ``tqdm(disable=True)`` to hide it, or change its arguments)."""
        t = self.trainer
        return tqdm(
            total=_bar_total(t.num_training_batches),
            initial=t.batch_in_epoch,
            desc=f"Epoch {t.current_epoch}",
            file=sys.stderr,
            dynamic_ncols=True,
            leave=self._leave,
            position=self._position or None,
        )

    def init_sanity_tqdm(self) -> tqdm:
        """The sanity check's bar (Lightning's factory, as `init_train_tqdm`)."""
        return self._eval_tqdm(self.sanity_check_description, leave=False)

    def init_validation_tqdm(self) -> tqdm:
        """A validation's bar: in `fit` it goes when the validation ends, `validate`'s stays (Lightning's
        factory, as `init_train_tqdm`; ``return tqdm(disable=True)`` hides fit's validation bars)."""
        return self._eval_tqdm(self.validation_description, leave=not self.trainer.fitting)

    def init_test_tqdm(self) -> tqdm:
        """`test`'s bar (Lightning's factory, as `init_train_tqdm`)."""
        return self._eval_tqdm(self.test_description, leave=True)

    def init_predict_tqdm(self) -> tqdm:
        """`predict`'s bar (Lightning's factory, as `init_train_tqdm`)."""
        return self._eval_tqdm(self.predict_description, leave=True)

    def _eval_tqdm(self, label: str, leave: bool) -> tqdm:
        return tqdm(
            total=_bar_total(self._val_totals[0]),
            desc=f"{label} DataLoader 0",
            file=sys.stderr,
            dynamic_ncols=True,
            leave=leave,
            position=self._position + (1 if self._train_bar is not None else 0),
        )

    @property
    def train_progress_bar(self) -> tqdm:
        """The training epoch's bar (the last one made; Lightning's)."""
        return self._last_bar("train")

    @property
    def val_progress_bar(self) -> tqdm:
        """The last validation's (or sanity check's) bar (Lightning's)."""
        return self._last_bar("validation")

    @property
    def test_progress_bar(self) -> tqdm:
        return self._last_bar("test")

    @property
    def predict_progress_bar(self) -> tqdm:
        return self._last_bar("predict")

    def _last_bar(self, stage: str) -> tqdm:
        bar = getattr(self, "_last_bars", {}).get(stage)
        if bar is None:
            raise TypeError(
                f"The `{type(self).__name__}`'s {stage} bar has not been made yet (it is made when that stage "
                "starts, in a terminal: a log gets lines and no bars)"
            )
        return bar

    def _open_eval_bar(self, trainer, label: str, total: Any, stage: str, make) -> None:
        """The bar of a validation, test or predict (Lightning's labels: "Testing DataLoader 0")."""
        self._close_eval()
        self.reset_dataloader_idx_tracker()  # (as Lightning's: the batch-start hooks track the loader)
        if self.is_plain or self.is_disabled:
            return
        # Several loaders: a bar for each in turn, "DataLoader 1" its own count, as Lightning's.
        self._val_totals = total if isinstance(total, list) else [total]
        self._val_loader = 0
        self._val_done = 0
        self._val_label = label
        self._trainer = trainer
        self._val_bar = self._last_bars[stage] = make()

    def _eval_batch_end(self, dataloader_idx: int) -> None:
        if self._val_bar is not None:
            if dataloader_idx != self._val_loader and dataloader_idx < len(self._val_totals):
                self._val_loader = dataloader_idx
                self._val_bar.set_description(f"{self._val_label} DataLoader {dataloader_idx}", refresh=False)
                self._val_bar.reset(total=_bar_total(self._val_totals[dataloader_idx]))
                self._val_done = 0
            self._val_done += 1
            self._count_to(self._val_bar, self._val_done)

    def _count_to(self, bar: tqdm, done: int) -> None:
        """The bar's count moves to `done` (the batches finished) every `refresh_rate` batches and at the
        last one, as Lightning's (`refresh_rate=3` over 5 batches: 0, 0, 3, 3, 5); tqdm still draws it at
        most ten times a second (Lightning's redraws at each move)."""
        if done % self.refresh_rate == 0 or done == bar.total:
            bar.update(done - bar.n)

    def _close_eval(self) -> None:
        if self._val_bar is not None:
            self._val_bar.close()
            self._val_bar = None

    @_reader_may_leave
    def on_validation_end(self, trainer, module) -> None:
        self._close_eval()
        if self._train_bar is not None:
            self._train_bar.set_postfix(_fmt(self._shown(trainer, module)), refresh=True)
        elif self.is_plain and self.is_enabled and trainer.validates_within_epochs:
            # Inside an epoch (val_check_interval < 1.0 or an int): a line per validation, as the
            # epoch's own line may be a long way off. One at the epoch's end shows on that line.
            # (not the sanity check's, before any epoch)
            if not trainer.sanity_checking and trainer.batch_in_epoch < trainer.num_training_batches:
                # The same kind of numbers as the epoch's line (not the last step's), so the two compare.
                what = f"Epoch {trainer.current_epoch} (means so far), validation"
                self._line(trainer, what, self._shown(trainer, module, epoch_means=True))

    def get_metrics(self, trainer, pl_module) -> dict[str, Any]:
        """Lightning's hook: the items shown after the bar, name to value. Inside an epoch the last step's
        values (`trainer.progress_metrics()`); at the epoch's end (and on a log's lines) the epoch's means
        (`trainer.epoch_progress_metrics()`). Override it to drop, add or rename items, as in Lightning
        (``items = super().get_metrics(trainer, pl_module); items.pop("loss", None); return items``):
        numbers are shown to 4 significant digits, anything else as its `str`."""
        if not self._epoch_means:
            return trainer.progress_metrics()
        means = trainer.epoch_progress_metrics()
        if trainer.progress.validated_epoch != trainer.current_epoch:
            # No validation in this epoch (check_val_every_n_epoch): an earlier epoch's numbers, which its
            # history row does not have, would read as this epoch's.
            for name in trainer._step_logging.epoch_validation_metrics():
                means.pop(name, None)
        return means

    def _shown(self, trainer, module, epoch_means: bool = False) -> dict[str, Any]:
        """`get_metrics` (a subclass's override too) for the step's values or, `epoch_means`, the epoch's."""
        self._epoch_means = epoch_means
        try:
            items = self.get_metrics(trainer, module)
        finally:
            self._epoch_means = False
        if not isinstance(items, Mapping):  # (an override's `return items` left out: a bare NoneType error)
            raise TypeError(
                f"{type(self).__name__}.get_metrics returned {type(items).__name__}"
                f"{' (is a `return` missing?)' if items is None else ''}: expected a dict of the items to "
                "show, name -> value, as Lightning's (items = super().get_metrics(trainer, pl_module); ...; "
                "return items)"
            )
        return dict(items)

    def on_exception(self, trainer, module, exception) -> None:
        self._close_eval()
        self._close_train()

    def _close_train(self) -> None:
        if self._train_bar is not None:
            self._train_bar.close()
            self._train_bar = None

    def _line(self, trainer, what: str, metrics: dict[str, Any]) -> None:
        total = trainer.num_training_batches
        done = trainer.batch_in_epoch
        batches = (
            f"{done}/{total} batches" if total and total != float("inf") else plural(done, "batch", "batches")
        )
        seconds = time.perf_counter() - self._epoch_started
        numbers = ", ".join(f"{k}={v}" for k, v in _fmt(metrics).items())
        line = f"{what}: {batches}, {seconds:.1f} s, {numbers}"
        # Broken only between metrics (no name or number holds a space; "1e-05" holds a hyphen).
        lines = textwrap.wrap(
            line, PLAIN_LINE_WIDTH, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False
        )
        tqdm.write("\n".join(lines), file=sys.stderr)


#: Columns of a log's progress line before it goes on in the next (indented) one.
PLAIN_LINE_WIDTH = 120
# Shown first, in this order: what the run is judged on, before a bar's width cuts the rest off.
_HEADLINE = ("loss", "val_loss")


def _fmt(metrics: dict[str, Any]) -> dict[str, str]:
    first = [name for name in _HEADLINE if name in metrics]
    ordered = {name: metrics[name] for name in first} | metrics
    # (a get_metrics override may add text or a version number, as Lightning's `v_num`)
    return {
        k: f"{v:.4g}" if isinstance(v, numbers.Real) and not isinstance(v, bool) else str(v)
        for k, v in ordered.items()
    }


def _with_env_miniters(refresh_rate: int) -> int:
    """`refresh_rate`, at least the environment's `TQDM_MINITERS` where that is set (Lightning's)."""
    value = os.environ.get("TQDM_MINITERS")
    if value is None:
        return refresh_rate
    try:
        return max(int(value), refresh_rate)
    except ValueError:
        raise ValueError(
            f"ProgressBar: the environment variable TQDM_MINITERS={value!r} is no int; set it to the "
            "number of batches between the bar's updates (as for tqdm), or unset it"
        ) from None


def _bar_total(total: Any) -> Any:
    """A count for tqdm's `total`: None where it is unknown (inf) or 0."""
    return total if total and total != math.inf else None


def _describe(bar: ProgressBar) -> str:
    """A progress bar in an error: its class and refresh rate (two of one class stay apart)."""
    return f"{type(bar).__name__}(refresh_rate={bar.refresh_rate})"
