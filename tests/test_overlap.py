"""`work_behind`: each item's work runs on a second thread while the next item is made (the chord recipe's
decoding beside the model)."""

import threading

from audiotrain._overlap import work_behind

import pytest


def test_results_come_in_order_and_each_item_s_work_runs_while_the_next_is_made():
    next_made = [threading.Event() for _ in range(4)]

    def items():
        for i in range(4):
            if i:
                next_made[i - 1].set()
            yield i

    def work(i):
        # Item i's work ends only once item i + 1 is being made (the last item's at once): waits forever
        # (here: fails after 10 s) if the work is done before the next item is made.
        if i < 3 and not next_made[i].wait(timeout=10):
            raise AssertionError(f"item {i + 1} was not made while item {i}'s work ran")
        return (i * i, threading.current_thread().name)

    results = list(work_behind(items(), work, "test-behind"))
    assert [(i, r[0]) for i, r in results] == [(0, 0), (1, 1), (2, 4), (3, 9)]
    assert all(name.startswith("test-behind") for _, (_, name) in results)


@pytest.mark.parametrize("failing", [1, 2])
def test_an_error_of_the_work_is_raised_in_its_item_s_turn(failing):
    """Also the last item's (2), whose work is waited for after the items run out: its error is not lost."""

    def work(i):
        if i == failing:
            raise ValueError(f"item {i}")
        return i

    seen = []
    with pytest.raises(ValueError, match=f"item {failing}"):
        for _, result in work_behind(range(3), work):
            seen.append(result)
    assert seen == list(range(failing))


def test_an_error_making_an_item_comes_after_the_item_made_before_it():
    """A second Ctrl-C while the model reads a song: the song transcribed before it is still written."""

    def items():
        yield "a"
        raise KeyboardInterrupt

    seen = []
    with pytest.raises(KeyboardInterrupt):
        for _, result in work_behind(items(), str.upper):
            seen.append(result)
    assert seen == ["A"]


def test_leaving_the_loop_waits_for_the_work_under_way():
    started, done = threading.Event(), threading.Event()

    def work(i):
        if i == 1:
            started.set()
            threading.Event().wait(0.2)
            done.set()
        return i

    def items():
        yield 0
        yield 1
        started.wait(timeout=10)
        yield 2

    for i, _ in work_behind(items(), work):
        if i == 0:
            continue
        break  # item 2 was made and its work is under way, or item 1's still is
    assert done.is_set()
    assert not [t for t in threading.enumerate() if t.name.startswith("audiotrain-behind")]


def test_an_error_of_the_work_before_an_error_making_an_item_is_raised_in_its_turn():
    """A second Ctrl-C while the model reads a song whose predecessor's decoding failed: the decoding's error
    is raised (its item's turn comes first), not lost behind the interrupt."""

    def items():
        yield "a"
        raise KeyboardInterrupt

    def work(item):
        raise ValueError(f"work of {item}")

    # Both caught, so that the interrupt, if it came instead, fails this test rather than ends the session.
    with pytest.raises((ValueError, KeyboardInterrupt)) as raised:
        list(work_behind(items(), work))
    assert isinstance(raised.value, ValueError) and str(raised.value) == "work of a"


def test_the_work_runs_on_one_thread_one_item_at_a_time():
    """The decoding is single-threaded work beside the model: two items' work never run at once."""
    lock, running, most_running = threading.Lock(), [0], [0]

    def work(i):
        with lock:
            running[0] += 1
            most_running[0] = max(most_running[0], running[0])
        threading.Event().wait(0.05)
        with lock:
            running[0] -= 1
        return threading.current_thread().name

    threads = {name for _, name in work_behind(range(4), work)}
    assert most_running[0] == 1 and len(threads) == 1
