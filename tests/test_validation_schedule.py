"""ValidationSchedule (train/validation_schedule.py): when `fit` validates, as Lightning's
`val_check_interval` and `check_val_every_n_epoch` decide it. The loop's behaviour around it is tested
through `fit` in test_trainer.py and test_trainer_loop_lightning.py; here the answers themselves."""

import math

from audiotrain.train.state import Progress
from audiotrain.train.validation_schedule import ValidationSchedule

import pytest


def after(epoch: int, batch_in_epoch: int, batches_per_epoch: int, **fields) -> Progress:
    """The progress once batch `batch_in_epoch` (1-based) of `epoch` trained, all epochs before it whole."""
    total = epoch * batches_per_epoch + batch_in_epoch
    return Progress(epoch=epoch, batch_in_epoch=batch_in_epoch, total_batches=total, **fields)


def test_the_interval_is_an_int_as_given_or_a_fraction_of_the_epoch():
    assert ValidationSchedule(3).interval(10) == 3
    assert ValidationSchedule(0.25).interval(10) == 2  # int(0.25 x 10)
    assert ValidationSchedule(0.3).interval(5) == 1  # int(1.5), not rounded
    assert ValidationSchedule(0.7).interval(5) == 3  # int(3.5)
    assert ValidationSchedule(0.01).interval(10) == 1  # at least one batch
    assert ValidationSchedule(1.0).interval(None) is None  # a loader without a length: at its end


def test_an_interval_it_cannot_keep_is_refused_by_flag():
    with pytest.raises(ValueError, match=r"val_check_interval=12\) must be at most .* \(10\)"):
        ValidationSchedule(12).interval(10)
    assert ValidationSchedule(12, check_val_every_n_epoch=None).interval(10) == 12  # across epochs
    assert ValidationSchedule(10).interval(10) == 10  # as Lightning: the epoch's own count is allowed
    with pytest.raises(ValueError, match=r"val_check_interval=0.5\): a fraction of an epoch needs"):
        ValidationSchedule(0.5).interval(None)
    with pytest.raises(ValueError, match=r"check_val_every_n_epoch=None\).*give an int val_check_interval"):
        ValidationSchedule(0.5, check_val_every_n_epoch=None)


def test_a_fraction_validates_inside_the_epoch_and_leaves_its_last_check_to_the_epoch_end():
    schedule = ValidationSchedule(0.5)
    every = schedule.interval(4)
    due = [b for b in range(1, 5) if schedule.due(after(0, b, 4), every, 4)]
    assert due == [2]  # batch 4's check runs at the epoch's end, beside the epoch's means
    assert schedule.at_epoch_end(after(0, 4, 4, epoch_complete=True), every)
    assert not schedule.once_per_epoch


def test_once_per_epoch_validates_at_an_epochs_end_whatever_batch_it_ends_on():
    """An epoch resumed from a checkpoint made with another number of batches an epoch (another global
    batch, or ranks) can end on a batch that is no multiple of this run's epoch: 1.0 validates there all the
    same."""
    schedule = ValidationSchedule(1.0)
    every = schedule.interval(4)
    assert schedule.at_epoch_end(after(0, 6, 4, epoch_complete=True), every)


def test_half_of_an_odd_epoch_does_not_validate_at_its_end_as_in_lightning():
    schedule = ValidationSchedule(0.5)
    every = schedule.interval(5)
    assert [b for b in range(1, 6) if schedule.due(after(0, b, 5), every, 5)] == [2, 4]
    assert not schedule.at_epoch_end(after(0, 5, 5, epoch_complete=True), every)


def test_check_val_every_n_epoch_picks_the_epochs():
    schedule = ValidationSchedule(2, check_val_every_n_epoch=2)
    assert [e for e in range(5) if schedule.this_epoch(e)] == [1, 3]
    assert not schedule.due(after(0, 2, 4), 2, 4)
    assert schedule.due(after(1, 2, 4), 2, 4)
    assert not schedule.at_epoch_end(after(0, 4, 4, epoch_complete=True), 2)  # (not an epoch it picks)


def test_an_int_interval_without_epochs_counts_batches_across_them():
    schedule = ValidationSchedule(3, check_val_every_n_epoch=None)
    due = [(e, b) for e in range(2) for b in range(1, 5) if schedule.due(after(e, b, 4), 3, 4)]
    assert due == [(0, 3), (1, 2)]  # total batches 3 and 6
    assert not schedule.at_epoch_end(after(1, 4, 4, epoch_complete=True), 3)  # an int never at the end


def test_an_epoch_a_stop_ends_early_validates_unless_its_last_batch_just_did():
    schedule = ValidationSchedule(1.0)
    stopped = after(0, 2, 4)  # max_steps or a stop request after batch 2 of 4
    assert schedule.end_epoch(stopped, None, validating=True)
    assert schedule.epoch_end_validated
    schedule.record_validation(stopped)
    assert not schedule.at_epoch_end(stopped, None)
    schedule.start_fit()  # a new fit has validated nothing
    assert schedule.at_epoch_end(stopped, None)
    assert not schedule.end_epoch(stopped, None, validating=False)  # no validation loader
    assert not schedule.epoch_end_validated


def test_after_batch_says_whether_a_validation_follows_the_batch_just_trained():
    schedule = ValidationSchedule(1.0)
    assert schedule.once_per_epoch
    assert not schedule.after_batch(after(0, 3, 4), 4, max_steps_reached=False)
    assert schedule.after_batch(after(0, 3, 4), 4, max_steps_reached=True)  # the epoch ends here
    assert schedule.after_batch(after(0, 4, 4), 4, max_steps_reached=False)
    assert not schedule.after_batch(after(0, 4, 4), math.inf, max_steps_reached=False)  # no length
    assert schedule.after_batch(after(0, 1, 4, validation_pending=True), 4, max_steps_reached=False)
    assert not ValidationSchedule(2).after_batch(after(0, 2, 4), 4, max_steps_reached=False)  # (pending)
    assert not ValidationSchedule(1.0, 2).after_batch(after(0, 4, 4), 4, max_steps_reached=False)


def test_a_stop_validates_where_it_ends_the_epoch_under_any_interval():
    schedule = ValidationSchedule(2)
    assert not schedule.at_epoch_end(after(1, 1, 5), 2)  # max_steps: not under an int interval
    assert schedule.at_epoch_end(after(1, 1, 5), 2, stop_requested=True)
    assert schedule.at_epoch_end(after(0, 5, 5, epoch_complete=True), 2, stop_requested=True)
    schedule.record_validation(after(1, 2, 5))
    assert not schedule.at_epoch_end(after(1, 2, 5), 2, stop_requested=True)  # (its last batch just did)
    assert not ValidationSchedule(2, 2).at_epoch_end(after(0, 3, 5), 2, stop_requested=True)  # (epoch 0)
    assert ValidationSchedule(2, None).at_epoch_end(after(0, 3, 5), 2, stop_requested=True)
    assert ValidationSchedule(0.5).at_epoch_end(after(0, 5, 5, epoch_complete=True), 2, stop_requested=True)
