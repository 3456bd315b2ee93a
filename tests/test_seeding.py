"""`seed_everything`: one call makes model construction, numpy and Python draws repeatable."""

import logging
import os
import random
import subprocess
import sys
import warnings
from pathlib import Path

from audiotrain import Trainer, seed_everything

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from reference import require


def _draws(seed):
    assert seed_everything(seed) == seed
    layer = nn.Linear(4, 3)
    return np.array(layer.weight), np.random.rand(2), random.random()


def test_same_seed_same_weights_and_draws():
    first, second, other = _draws(7), _draws(7), _draws(8)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0]) and first[2] != other[2]


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_bad_seed_is_rejected(bad):
    with pytest.raises(ValueError, match="non-negative int"):
        seed_everything(bad)


def test_numpy_integer_seeds_are_accepted():
    seed_everything(np.int64(3))
    a = mx.random.uniform(shape=(2,))
    seed_everything(3)
    np.testing.assert_array_equal(np.array(a), np.array(mx.random.uniform(shape=(2,))))


@pytest.mark.parity
def test_torch_is_seeded_when_it_is_imported():
    torch = require("torch")
    seed_everything(3)
    first = torch.randperm(10).tolist()
    seed_everything(3)
    assert torch.randperm(10).tolist() == first


def _first_epoch(tmp_path, **trainer_kwargs):
    """(the shuffled order of the first epoch, a dropout mask drawn at its first step) of a fit."""
    from audiotrain import DataLoader, Dataset

    from tasks import TinyClassifier, quiet_trainer

    class Numbered(Dataset):
        def __len__(self):
            return 16

        def __getitem__(self, i):
            return np.full((8,), i, np.float32), i % 3

    seen = []

    class Records(TinyClassifier):
        def on_train_batch_start(self, batch, batch_idx):
            if not seen:
                seen.append(np.array(mx.random.bernoulli(0.5, (8,))).tolist())  # what dropout would draw
            seen.append(np.array(batch[0][:, 0]).astype(int).tolist())

    loader = DataLoader(Numbered(), batch_size=8, shuffle=True)
    quiet_trainer(tmp_path, max_epochs=1, **trainer_kwargs).fit(Records(), loader)
    return seen


def test_a_trainer_without_a_seed_keeps_the_one_seed_everything_set(tmp_path):
    # A Lightning seed sweep: seed_everything(s), then Trainer(). The seed decides the data order and the
    # random draws of the run too, not only the initial weights.
    runs = {}
    for seed in (1, 2, 1):
        seed_everything(seed)
        runs.setdefault(seed, []).append(_first_epoch(tmp_path / f"{seed}-{len(runs)}"))
    assert runs[1][0] == runs[1][1]  # the same seed repeats
    assert runs[1][0][1:] != runs[2][0][1:] and runs[1][0][0] != runs[2][0][0]  # order and draws differ
    # An explicit Trainer(seed=...) is the run's seed whatever seed_everything set.
    seed_everything(2)
    assert _first_epoch(tmp_path / "explicit", seed=1) == runs[1][0]


def test_the_trainers_own_seed_does_not_become_the_default_of_the_next(tmp_path):
    from audiotrain import Trainer

    seed_everything(5)
    _first_epoch(tmp_path / "a", seed=9)
    assert Trainer(max_epochs=1).seed == 5  # not 9: only seed_everything sets the default


def test_a_fresh_process_without_seed_everything_uses_42(tmp_path):
    from audiotrain import Trainer

    assert Trainer(max_epochs=1).seed == 42
    assert _first_epoch(tmp_path / "default") == _first_epoch(tmp_path / "42", seed=42)


def test_seed_everything_takes_lightnings_workers_switch():
    assert seed_everything(3, workers=True) == 3  # an audiotrain DataLoader seeds its workers apart anyway
    with pytest.raises(ValueError, match="workers='yes'"):
        seed_everything(3, workers="yes")


def test_lightnings_calls_are_taken(caplog):
    with caplog.at_level(logging.INFO, logger="audiotrain.train.seeding"):
        assert seed_everything(7, workers=True, verbose=False) == 7
    assert caplog.records == []
    with caplog.at_level(logging.INFO, logger="audiotrain.train.seeding"):
        assert seed_everything(seed=8, verbose=True) == 8
    assert [r.getMessage() for r in caplog.records] == ["Seed set to 8"]
    with pytest.raises(ValueError, match="verbose='no'"):
        seed_everything(3, verbose="no")


def test_seed_everything_leaves_its_seed_for_subprocesses():
    seed_everything(11)
    assert os.environ["PL_GLOBAL_SEED"] == "11"
    child = "import audiotrain, numpy as np; audiotrain.seed_everything(); print(np.random.randint(1000))"
    repo = Path(__file__).resolve().parents[1]  # (this checkout's audiotrain)
    here = subprocess.run([sys.executable, "-c", child], cwd=repo, capture_output=True, text=True, check=True)
    seed_everything(11)
    assert here.stdout.split() == [str(np.random.randint(1000))]


def test_seed_everything_without_a_seed_reads_pl_global_seed_else_takes_0_and_warns(monkeypatch):
    monkeypatch.setenv("PL_GLOBAL_SEED", "5")
    assert seed_everything() == 5
    from_environment = np.random.rand(3)
    seed_everything(5)
    np.testing.assert_array_equal(from_environment, np.random.rand(3))
    monkeypatch.delenv("PL_GLOBAL_SEED")
    with pytest.warns(UserWarning, match="no seed found, seed set to 0"):
        assert seed_everything() == 0
    assert os.environ["PL_GLOBAL_SEED"] == "0"
    monkeypatch.setenv("PL_GLOBAL_SEED", "abc")
    with pytest.warns(UserWarning, match="invalid seed found in PL_GLOBAL_SEED: 'abc', seed set to 0"):
        assert seed_everything() == 0


def test_an_explicit_seed_of_0_is_taken_over_pl_global_seed(monkeypatch):
    # Only seed=None reads the variable: 0 is a seed of its own, as in Lightning.
    monkeypatch.setenv("PL_GLOBAL_SEED", "5")
    assert seed_everything(0) == 0 and os.environ["PL_GLOBAL_SEED"] == "0"


@pytest.mark.parametrize("text", [None, "abc"])
def test_verbose_false_keeps_the_no_seed_warning_quiet(monkeypatch, text):
    # Lightning warns of a missing or invalid PL_GLOBAL_SEED only when verbose.
    if text is None:
        monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    else:
        monkeypatch.setenv("PL_GLOBAL_SEED", text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert seed_everything(verbose=False) == 0


@pytest.mark.parametrize(
    "text, seed", [(" 5", 5), ("5\n", 5), (str(2**63 - 1), 2**63 - 1)], ids=["spaces", "newline", "largest"]
)
def test_a_pl_global_seed_with_whitespace_or_the_largest_seed_is_taken(monkeypatch, text, seed):
    # (Lightning reads the variable with int(), which takes surrounding whitespace.)
    monkeypatch.setenv("PL_GLOBAL_SEED", text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert seed_everything() == seed


def test_a_pl_global_seed_of_digits_int_cannot_read_is_invalid_not_an_error(monkeypatch):
    # "²" is a digit to str.isdigit but not to int(): it raised int()'s ValueError instead of the warning.
    monkeypatch.setenv("PL_GLOBAL_SEED", "²")
    with pytest.warns(UserWarning, match="invalid seed found in PL_GLOBAL_SEED: '²', seed set to 0"):
        assert seed_everything() == 0


@pytest.mark.parametrize("huge", [2**63, 2**64 + 5])
def test_a_seed_past_2_63_is_refused_naming_it_and_the_range(huge, monkeypatch):
    """seed_everything(2**64 + 5) ended in MLX's pybind TypeError ("incompatible function arguments"), which
    named neither the seed nor the range; so did a PL_GLOBAL_SEED of that size, and Trainer(seed=) at fit."""
    with pytest.raises(ValueError, match=rf"seed_everything.*at most 2\*\*63 - 1, got {huge}"):
        seed_everything(huge)
    with pytest.raises(ValueError, match=rf"Trainer\(seed=.*at most 2\*\*63 - 1, got {huge}"):
        Trainer(seed=huge)
    monkeypatch.setenv("PL_GLOBAL_SEED", str(huge))
    with pytest.warns(
        UserWarning,
        match=rf"invalid seed found in PL_GLOBAL_SEED: '{huge}', seed set to 0 .a seed is an int from 0 to 2",
    ):
        assert seed_everything() == 0
    assert seed_everything(2**63 - 1) == 2**63 - 1  # the largest, as the recipes' --seed


def test_seeds_2_32_apart_draw_their_own_numpy_numbers():
    """numpy was seeded with seed % 2**32: seed_everything(5) and seed_everything(5 + 2**32) drew the same
    np.random numbers, though every seed is documented as one of its own. A seed below 2**32 draws what
    np.random.seed(seed) draws, as before."""
    draws = {}
    for seed in (
        0,
        5,
        2**32,
        5 + 2**32,
        5 + 2**33,
        2**63 - 1,
    ):  # (2**32: the first seed past numpy's 32 bits)
        seed_everything(seed, verbose=False)
        draws[seed] = tuple(np.random.rand(3))
    assert len(set(draws.values())) == 6
    np.random.seed(5)
    assert draws[5] == tuple(np.random.rand(3))
