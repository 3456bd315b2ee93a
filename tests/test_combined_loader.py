"""CombinedLoader (audiotrain/data/combined.py), iterated by hand: the batches, batch_idx and dataloader_idx
of each mode, and len, as Lightning 2.6.6's `lightning.pytorch.utilities.CombinedLoader` gives them."""

import audiotrain  # noqa: F401  (before mlx)
from audiotrain import CombinedLoader, DataLoader

import numpy as np
import pytest


def loaders():
    """ "a": 3 batches of 2 (ids 0..5), "b": 5 batches of 2 (ids 100..109)."""
    a = DataLoader([(np.zeros(4, np.float32), i) for i in range(6)], batch_size=2)
    b = DataLoader([(np.zeros(4, np.float32), i) for i in range(100, 110)], batch_size=2)
    return {"a": a, "b": b}


def ids(batch):
    if batch is None:
        return None
    if isinstance(batch, dict):
        return {k: ids(v) for k, v in batch.items()}
    return np.asarray(batch[1]).tolist()


# Measured with Lightning 2.6.6: [(ids of the batch, batch_idx, dataloader_idx), ...] and len, for each mode.
LIGHTNING = {
    "max_size_cycle": (
        5,
        [
            ({"a": [0, 1], "b": [100, 101]}, 0, 0),
            ({"a": [2, 3], "b": [102, 103]}, 1, 0),
            ({"a": [4, 5], "b": [104, 105]}, 2, 0),
            ({"a": [0, 1], "b": [106, 107]}, 3, 0),
            ({"a": [2, 3], "b": [108, 109]}, 4, 0),
        ],
    ),
    "min_size": (
        3,
        [
            ({"a": [0, 1], "b": [100, 101]}, 0, 0),
            ({"a": [2, 3], "b": [102, 103]}, 1, 0),
            ({"a": [4, 5], "b": [104, 105]}, 2, 0),
        ],
    ),
    "max_size": (
        5,
        [
            ({"a": [0, 1], "b": [100, 101]}, 0, 0),
            ({"a": [2, 3], "b": [102, 103]}, 1, 0),
            ({"a": [4, 5], "b": [104, 105]}, 2, 0),
            ({"a": None, "b": [106, 107]}, 3, 0),
            ({"a": None, "b": [108, 109]}, 4, 0),
        ],
    ),
    "sequential": (
        8,
        [([0, 1], 0, 0), ([2, 3], 1, 0), ([4, 5], 2, 0)]
        + [([100 + 2 * i, 101 + 2 * i], i, 1) for i in range(5)],
    ),
}


@pytest.mark.parametrize("mode", list(LIGHTNING))
def test_each_mode_gives_lightnings_batches_indices_and_length(mode):
    length, expected = LIGHTNING[mode]
    combined = CombinedLoader(loaders(), mode=mode)
    assert len(combined) == length
    assert [(ids(batch), i, d) for batch, i, d in combined] == expected


def test_a_list_of_loaders_gives_lists_of_batches():
    # Lightning 2.6.6: CombinedLoader([a, b]) gives [batch_a, batch_b].
    combined = CombinedLoader(list(loaders().values()), "max_size_cycle")
    assert [[ids(b) for b in batch] for batch, _, _ in combined][3] == [[0, 1], [106, 107]]


def test_an_unknown_mode_names_the_modes():
    with pytest.raises(
        ValueError, match=r"Unsupported mode 'max'.*'max_size_cycle', 'max_size', 'sequential'"
    ):
        CombinedLoader(loaders(), mode="max")


@pytest.mark.parametrize("mode", ["max_size_cycle", "min_size", "max_size", "sequential"])
@pytest.mark.parametrize("stop", [1, 3, 4])
def test_a_restored_position_continues_with_the_batches_of_the_uninterrupted_epoch(mode, stop):
    # After 3 batches, "a" has ended: max_size must still give None for it, not its next epoch's first batch.
    whole = [(ids(b), i, d) for b, i, d in CombinedLoader(loaders(), mode=mode)]
    first = CombinedLoader(loaders(), mode=mode)
    iterator = iter(first)
    for _ in range(min(stop, len(first))):
        next(iterator)
    state = first.state_dict()
    again = CombinedLoader(loaders(), mode=mode)
    again.load_state_dict(state)
    assert [(ids(b), i, d) for b, i, d in again] == whole[min(stop, len(first)) :]


def test_the_default_mode_is_min_size_as_lightnings():
    # Lightning 2.6.6: CombinedLoader(iterables) is mode "min_size" (only fit makes a dict or list of training
    # loaders "max_size_cycle"); list(CombinedLoader([range(3), range(5)])) gives 3 batches.
    combined = CombinedLoader([range(3), range(5)])
    assert combined.mode == "min_size"
    assert list(combined) == [([0, 0], 0, 0), ([1, 1], 1, 0), ([2, 2], 2, 0)]
    assert len(combined) == 3


def test_nested_loaders_and_a_single_loader_are_read_as_lightnings():
    # Lightning 2.6.6 reads a nested dict / list of loaders (a list of numbers is one loader, its samples) and
    # a single loader; here a nested dict or list was iterated as a loader (its keys or items as batches).
    combined = CombinedLoader({"a": range(3), "b": [range(2), range(4)]}, "max_size_cycle")
    assert combined.flattened == [range(3), range(2), range(4)]
    assert [batch for batch, _, _ in combined] == [
        {"a": 0, "b": [0, 0]},
        {"a": 1, "b": [1, 1]},
        {"a": 2, "b": [0, 2]},
        {"a": 0, "b": [1, 3]},
    ]
    assert list(CombinedLoader({"x": (range(2), [7, 8])}, "max_size")) == [
        ({"x": (0, 7)}, 0, 0),
        ({"x": (1, 8)}, 1, 0),
    ]
    assert list(CombinedLoader(range(3), "max_size_cycle")) == [(0, 0, 0), (1, 1, 0), (2, 2, 0)]
    with pytest.raises(TypeError, match=r"iterables\['b'\]\[1\] is a NoneType, not a loader"):
        CombinedLoader({"a": range(3), "b": [range(2), None]})


@pytest.mark.parametrize("mode", ["max_size_cycle", "min_size", "max_size", "sequential"])
def test_an_empty_loader_among_others_gives_lightnings_batches(mode):
    # Lightning 2.6.6, CombinedLoader([[], [1, 2, 3]], mode): no batch (max_size_cycle: its empty loader's
    # new pass ends the epoch; here a RuntimeError "generator raised StopIteration"), None for the empty
    # one (max_size), the other's batches (sequential).
    expected = {
        "max_size_cycle": [],
        "min_size": [],
        "max_size": [([None, 1], 0, 0), ([None, 2], 1, 0), ([None, 3], 2, 0)],
        "sequential": [(1, 0, 1), (2, 1, 1), (3, 2, 1)],
    }[mode]
    assert list(CombinedLoader([[], [1, 2, 3]], mode)) == expected
