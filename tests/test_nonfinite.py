"""NonFiniteWatch (train/nonfinite.py) over a step's counters, without a fit: the Trainer's non-finite stop
through `fit` is tested in test_trainer.py."""

from pathlib import Path

from audiotrain.train.nonfinite import NonFiniteWatch, debug_check

import mlx.core as mx
import pytest


def counters(streak: int, longest: int, skipped: int = 0) -> dict[str, mx.array]:
    return {
        "nonfinite_streak": mx.array(streak, mx.int32),
        "max_nonfinite_streak": mx.array(longest, mx.int32),
        "skipped_total": mx.array(skipped, mx.int32),
    }


def test_below_the_limit_the_longest_streak_starts_again_from_the_current_one():
    arrays = counters(streak=1, longest=2)
    NonFiniteWatch(limit=3, guard=True).check(arrays, global_step=7, save=None)
    assert int(arrays["max_nonfinite_streak"]) == 1
    assert not NonFiniteWatch(limit=3, guard=True).limit_reached(None)  # no step settled yet
    assert NonFiniteWatch(limit=3, guard=True).limit_reached(mx.array(3))


def test_at_the_limit_it_stops_though_the_current_streak_started_again():
    # A streak that reached the limit before the check, ended by a finite step since: still a stop.
    with pytest.raises(FloatingPointError, match="3 optimizer steps in a row"):
        NonFiniteWatch(limit=3, guard=True).check(counters(streak=0, longest=3), global_step=9, save=None)


def test_at_the_limit_with_the_guard_it_saves_the_last_good_state_and_names_it():
    arrays = counters(streak=3, longest=3)
    saved = []

    def save() -> Path:
        saved.append({k: int(v) for k, v in arrays.items()})
        return Path("run/nonfinite")

    with pytest.raises(FloatingPointError) as raised:
        NonFiniteWatch(limit=3, guard=True).check(arrays, global_step=7, save=save)
    assert str(raised.value) == (
        "3 optimizer steps in a row had a non-finite loss or gradients (max_consecutive_nonfinite=3; found "
        "at global step 7); those updates were skipped, so the weights are still finite. Lower the learning "
        "rate, set gradient_clip_val, or check the data for NaN/Inf. Trainer(debug_lazy_eval=True) stops at "
        "the first batch whose loss is not finite, naming its epoch and index. The last good state is saved "
        "in run/nonfinite."
    )
    # The checkpoint's streak starts again: a resumed run is not stopped at its first step.
    assert saved == [{"nonfinite_streak": 0, "max_nonfinite_streak": 0, "skipped_total": 0}]


def test_the_stop_crosses_a_process_boundary_whole():
    """A fit in a worker process (a ProcessPoolExecutor's sweep, joblib) sends its error back pickled: the
    stop failed to unpickle ('__init__() missing 2 required positional arguments'), and copy.copy of it
    failed."""
    import copy
    import pickle

    arrays = {name: mx.array(3, mx.int32) for name in ("nonfinite_streak", "max_nonfinite_streak")}
    arrays["skipped_total"] = mx.array(3, mx.int32)
    with pytest.raises(FloatingPointError) as raised:
        NonFiniteWatch(limit=3, guard=True).check(arrays, global_step=7, save=lambda: Path("run/nonfinite"))
    for again in (pickle.loads(pickle.dumps(raised.value)), copy.copy(raised.value)):
        assert type(again) is type(raised.value) and str(again) == str(raised.value)
        assert (again.where, again.checkpoint) == (raised.value.where, Path("run/nonfinite"))


def test_at_the_limit_without_the_guard_it_says_the_weights_are_likely_broken():
    with pytest.raises(FloatingPointError, match=r"with nonfinite_guard=False those updates were applied"):
        NonFiniteWatch(limit=2, guard=False).check(counters(2, 2), global_step=3, save=lambda: Path("x"))


def test_skipped_updates_are_warned_of_once_a_fit():
    watch = NonFiniteWatch(limit=10, guard=True)
    watch.warn_of_skipped_updates(counters(0, 0, skipped=4), epoch=0, global_step=5)  # before a fit: silent
    watch.start_fit(counters(0, 0, skipped=1))
    with pytest.warns(
        UserWarning, match=r"Trainer.fit: 3 optimizer update\(s\) up to epoch 2 \(global step 9\)"
    ):
        watch.warn_of_skipped_updates(counters(0, 0, skipped=4), epoch=2, global_step=9)
    watch.warn_of_skipped_updates(counters(0, 0, skipped=8), epoch=3, global_step=12)  # (once)
    assert NonFiniteWatch(limit=10, guard=False).skipped_total(counters(0, 0, skipped=4)) is None


def test_debug_check_names_the_first_non_finite_parameter():
    debug_check(mx.array(1.0), {"w": mx.ones(2)}, epoch=0, batch_idx=0)
    with pytest.raises(FloatingPointError, match=r"loss is nan at epoch 1, batch 4"):
        debug_check(mx.array(float("nan")), {"w": mx.ones(2)}, epoch=1, batch_idx=4)
    with pytest.raises(FloatingPointError, match=r"loss is inf at epoch 0, batch 3"):  # inf, not only NaN
        debug_check(mx.array(float("inf")), {"w": mx.ones(2)}, epoch=0, batch_idx=3)
    with pytest.raises(FloatingPointError, match=r"parameter 'b.c' became non-finite after epoch 1, batch 4"):
        debug_check(mx.array(1.0), {"a": mx.ones(2), "b": {"c": mx.array([mx.inf])}}, epoch=1, batch_idx=4)
