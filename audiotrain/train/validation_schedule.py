"""`ValidationSchedule`: when `fit` validates, as Lightning's `val_check_interval` and
`check_val_every_n_epoch` decide it, and which validations it has run.

A float `val_check_interval` validates every int(fraction x batches) batches of an epoch (its end too where
that lands there), an int every N batches of an epoch, in the epochs `check_val_every_n_epoch` picks; with
`check_val_every_n_epoch=None` an int counts batches across epochs. The Trainer reads the answers here and
keeps Lightning's properties (`validates_within_epochs`, `validated_at_epoch_end`,
`validates_after_this_batch`) as one-liners over them. The counters it reads (`Progress`) stay the fit
loop's: the schedule only reads them.
"""

from __future__ import annotations

from audiotrain.train.state import Progress


class ValidationSchedule:
    """The validation timing of one Trainer, and what the running `fit` validated so far.

    `validated_after_batch` is `progress.total_batches` at the last validation in `fit` (-1 before any);
    `epoch_end_validated` whether the epoch now ending validated at its end (`validated_at_epoch_end`).
    """

    def __init__(self, val_check_interval: int | float = 1.0, check_val_every_n_epoch: int | None = 1):
        if check_val_every_n_epoch is None and isinstance(val_check_interval, float):
            raise ValueError(
                "Trainer(check_val_every_n_epoch=None) validates only every val_check_interval batches: "
                f"give an int val_check_interval (got {val_check_interval})"
            )
        self.val_check_interval = val_check_interval
        self.check_val_every_n_epoch = check_val_every_n_epoch
        self.validated_after_batch = -1
        self.epoch_end_validated = False

    @property
    def once_per_epoch(self) -> bool:
        """`val_check_interval=1.0`: exactly one validation, at each (picked) epoch's end."""
        return isinstance(self.val_check_interval, float) and self.val_check_interval == 1.0

    def start_fit(self) -> None:
        """A new `fit` loop has validated nothing yet."""
        self.validated_after_batch = -1

    def record_validation(self, progress: Progress) -> None:
        """A validation in `fit` ran after the batch `progress` is at."""
        self.validated_after_batch = progress.total_batches

    def this_epoch(self, epoch: int) -> bool:
        """Whether `check_val_every_n_epoch` picks `epoch` (0-based) to validate in."""
        n = self.check_val_every_n_epoch
        return n is not None and (epoch + 1) % n == 0

    def interval(self, n_batches: int | None, set_by: str | None = None) -> int | None:
        """Training batches between validations (Lightning's `val_check_batch`): an int `val_check_interval`
        as given, a float one as int(fraction x the epoch's batches), at least 1; None for 1.0 over a loader
        without a length (its epochs end where it does: validated there). Checked before `fit` starts.
        `set_by`: the flag that set `n_batches` where one did (e.g. "overfit_batches=4"), which the refusal
        names."""
        interval = self.val_check_interval
        if isinstance(interval, int):
            if n_batches is not None and interval > n_batches and self.check_val_every_n_epoch is not None:
                # As Lightning: counted within each epoch, such an interval would never be reached.
                # (overfit_batches replaces limit_val_batches: there no validation loader turns it off.)
                overfitting = (set_by or "").startswith("overfit_batches")
                off = "pass no validation loader" if overfitting else "set limit_val_batches=0"
                raise ValueError(
                    f"Trainer(val_check_interval={interval}) must be at most the number of training batches "
                    f"in an epoch ({n_batches}{', set by ' + set_by if set_by else ''}): it counts batches "
                    f"within each epoch. To validate every {interval} batches counted across epochs, set "
                    f"check_val_every_n_epoch=None; to turn validation off, {off}"
                )
            return interval
        if n_batches is None:
            if interval < 1.0:
                raise ValueError(
                    f"Trainer(val_check_interval={interval}): a fraction of an epoch needs a training loader "
                    "with a length (len(loader)); give an int number of batches instead"
                )
            return None
        return max(1, int(interval * n_batches))

    def due(self, progress: Progress, every: int | None, n_batches: int | None) -> bool:
        """Whether the batch just trained is one to validate after, as in Lightning: every `every`
        batches of the epoch, in the epochs `check_val_every_n_epoch` picks (with None: every `every`
        batches counted across epochs)."""
        if every is None:
            return False
        if self.check_val_every_n_epoch is None:
            return progress.total_batches % every == 0
        if not self.this_epoch(progress.epoch) or progress.batch_in_epoch % every:
            return False
        # A float interval's check at the epoch's last batch runs at the epoch's end (`_end_epoch`), where
        # the callbacks see the epoch's means beside it.
        return not (isinstance(self.val_check_interval, float) and progress.batch_in_epoch == n_batches)

    def at_epoch_end(self, progress: Progress, every: int | None, stop_requested: bool = False) -> bool:
        """A float `val_check_interval` validates at the end of an epoch whose last batch is a check
        (1.0, or 0.5 of an even number of batches; not 0.5 of 5, as in Lightning), an int one never (its
        validations follow batches). An epoch that a stop ends (`stop_requested`: a stop request that ends
        the fit there, or max_time) validates there under any interval, early or at its last batch, also
        with `check_val_every_n_epoch=None`, as Lightning validates wherever `should_stop` ends the loop;
        one that max_steps ends early too, under a float interval (Lightning does not: see the README).
        Never where its last batch just did, nor where a stop ended it before its first batch."""
        if not self.this_epoch(progress.epoch) and not (
            stop_requested and self.check_val_every_n_epoch is None
        ):
            return False
        if self.validated_after_batch == progress.total_batches:
            return False  # its last batch just validated (a stream's, whose last is known once it ended)
        if stop_requested:
            # (A stop asked for at the epoch's start trained none of its batches: nothing new to validate,
            # and Lightning's epoch loop, which runs no batch then, runs no validation either.)
            return progress.batch_in_epoch > 0
        if not isinstance(self.val_check_interval, float):
            return False
        if not progress.epoch_complete:
            return True  # (max_steps)
        # 1.0 validates wherever the epoch ends: also an epoch resumed at its last batch from a checkpoint
        # made with another number of batches an epoch (another global batch, or ranks).
        return every is None or self.val_check_interval == 1.0 or progress.batch_in_epoch % every == 0

    def end_epoch(
        self, progress: Progress, every: int | None, validating: bool, stop_requested: bool = False
    ) -> bool:
        """Whether the epoch now ending validates at its end (`validating`: `fit` has a validation loader;
        `stop_requested`: as `at_epoch_end`); remembered for `epoch_end_validated` until the next epoch's
        end."""
        self.epoch_end_validated = validating and self.at_epoch_end(progress, every, stop_requested)
        return self.epoch_end_validated

    def after_batch(self, progress: Progress, n_batches: int | float, max_steps_reached: bool) -> bool:
        """In `on_train_batch_end` of a `fit` with a validation loader: whether a validation runs right after
        this batch, one due inside the epoch or the epoch's own at its end (also where `max_steps` ends it
        early: `max_steps_reached`). `n_batches`: the epoch's batches (inf for a loader without a length)."""
        if progress.validation_pending:
            return True
        if not isinstance(self.val_check_interval, float) or not self.this_epoch(progress.epoch):
            return False  # (every validation of an int interval follows a batch: pending above)
        if progress.batch_in_epoch < n_batches:  # (as `at_epoch_end`: an epoch max_steps ends validates)
            return max_steps_reached
        return progress.batch_in_epoch % self.interval(n_batches) == 0


__all__ = ["ValidationSchedule"]
