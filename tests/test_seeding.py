"""`seed_everything`: one call makes model construction, numpy and Python draws repeatable."""

import contextlib
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


def _first_epoch(tmp_path, setup_seed=None, **trainer_kwargs):
    """(the shuffled order of the first epoch, a dropout mask drawn at its first step) of a fit; with
    `setup_seed`, the module's `setup` calls `seed_everything(setup_seed)`."""
    from audiotrain import DataLoader, Dataset

    from tasks import TinyClassifier, quiet_trainer

    class Numbered(Dataset):
        def __len__(self):
            return 16

        def __getitem__(self, i):
            return np.full((8,), i, np.float32), i % 3

    seen = []

    class Records(TinyClassifier):
        def setup(self, stage):
            if setup_seed is not None:
                seed_everything(setup_seed)

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


def test_seed_everything_in_setup_decides_the_data_order_as_the_draws(tmp_path):
    """seed_everything(s) in a module's `setup` (Lightning 2.6.6: the sampler's order, the dropout masks and
    the draws in __getitem__ all follow it; seeds 1 and 2 gave different orders) left the loader on the seed
    the fit started with: seeds 1 and 2 trained the same data order, while `trainer.seed` said 1 and 2."""
    from audiotrain import Trainer

    one = _first_epoch(tmp_path / "1", setup_seed=1)
    two = _first_epoch(tmp_path / "2", setup_seed=2)
    assert one[1:] != two[1:] and one[0] != two[0]  # the order differs, as the draws do
    # The same run as one seeded before fit with that seed (in Lightning 2.6.6 too).
    seed_everything(1)
    assert _first_epoch(tmp_path / "before") == one
    assert Trainer(max_epochs=1).seed == 1


def test_a_loader_reused_in_a_seed_sweep_takes_each_fits_seed(tmp_path):
    """A sweep that builds its loader once (`for s in seeds: seed_everything(s); Trainer().fit(Model(),
    loader)`) trained every seed on the first seed's order: the Trainer seeds a loader only while it has no
    seed, and the first fit had given it one. In Lightning 2.6.6 the sampler draws from the generator
    seed_everything seeded, so each seed has its own order. A seed the user gave the loader stays its own."""
    from audiotrain import DataLoader

    from tasks import TinyClassifier, quiet_trainer

    data = [(np.full((8,), i, np.float32), i % 3) for i in range(16)]

    def first_batch(loader, name, **kwargs):
        seen = []

        class Records(TinyClassifier):
            def on_train_batch_start(self, batch, batch_idx):
                seen.append(np.array(batch[0][:, 0]).astype(int).tolist())

        quiet_trainer(tmp_path / name, max_epochs=1, **kwargs).fit(Records(), loader)
        return seen[0]

    reused = DataLoader(data, batch_size=8, shuffle=True)
    orders = {}
    for seed in (1, 2):
        seed_everything(seed)
        orders[seed] = first_batch(reused, f"reused{seed}")
        assert orders[seed] == first_batch(DataLoader(data, batch_size=8, shuffle=True), f"fresh{seed}")
    assert orders[1] != orders[2]
    assert first_batch(reused, "explicit", seed=1) == orders[1]  # Trainer(seed=) too
    own = DataLoader(data, batch_size=8, shuffle=True, seed=1)
    seed_everything(2)
    assert first_batch(own, "own") == orders[1] and own.seed == 1


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


def test_seed_everything_leaves_its_workers_switch_in_pl_seed_workers():
    # Lightning 2.6.6 sets PL_SEED_WORKERS to "1" for workers=True and to "0" otherwise (a failed call sets
    # nothing); it was never set here.
    seed_everything(3, workers=True)
    assert os.environ["PL_SEED_WORKERS"] == "1"
    seed_everything(3)
    assert os.environ["PL_SEED_WORKERS"] == "0"
    with pytest.raises(ValueError):
        seed_everything(-1, workers=True)
    assert os.environ["PL_SEED_WORKERS"] == "0"


def test_isolate_rng_leaves_the_generators_as_it_found_them():
    """Lightning's `isolate_rng` had no counterpart (a ported `from ...utilities.seed import isolate_rng`
    had nothing to become). In Lightning 2.6.6, what follows the block draws what it would have drawn
    without it, for numpy, Python and torch; here MLX too, and after an error in the block."""
    from audiotrain import isolate_rng

    try:
        import torch
    except ImportError:  # (the README's install has no torch: numpy's, Python's and MLX's generators)
        torch = None

    def after():
        drawn = [np.random.rand(), random.random(), mx.random.uniform().item()]
        return drawn + ([torch.rand(1).item()] if torch is not None else [])

    seed_everything(5)
    expected = after()
    for fails in (False, True):
        seed_everything(5)
        with contextlib.suppress(RuntimeError), isolate_rng():
            np.random.rand(3), random.random(), mx.random.normal((3,))
            if torch is not None:
                torch.rand(2)
            if fails:
                raise RuntimeError("a failed probe")
        assert after() == expected
    with pytest.raises(ValueError, match="include_cuda='no'"), isolate_rng(include_cuda="no"):
        pass


def test_lightnings_calls_are_taken(caplog):
    with caplog.at_level(logging.INFO, logger="audiotrain.train.seeding"):
        assert seed_everything(7, workers=True, verbose=False) == 7
    assert caplog.records == []
    with caplog.at_level(logging.INFO, logger="audiotrain.train.seeding"):
        assert seed_everything(seed=8, verbose=True) == 8
    assert [r.getMessage() for r in caplog.records] == ["Seed set to 8"]
    with pytest.raises(ValueError, match="verbose='no'"):
        seed_everything(3, verbose="no")


def test_seed_everything_says_which_rank_of_a_launched_job_it_seeds(caplog, monkeypatch):
    """Lightning 2.6.6 logs "[rank: 1] Seed set to 5" in a rank its launcher numbered (measured with
    RANK=1); here every rank of an mlx.launch job logged the same "Seed set to 5"."""
    monkeypatch.setenv("MLX_RANK", "1")
    with caplog.at_level(logging.INFO, logger="audiotrain.train.seeding"):
        seed_everything(5)
    assert [r.getMessage() for r in caplog.records] == ["[rank: 1] Seed set to 5"]


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


def test_an_explicit_seed_of_0_is_taken_over_pl_global_seed(monkeypatch):
    # Only seed=None reads the variable: 0 is a seed of its own, as in Lightning.
    monkeypatch.setenv("PL_GLOBAL_SEED", "5")
    assert seed_everything(0) == 0 and os.environ["PL_GLOBAL_SEED"] == "0"


def test_verbose_false_keeps_the_no_seed_warning_quiet(monkeypatch):
    # Lightning warns of a missing PL_GLOBAL_SEED only when verbose.
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert seed_everything(verbose=False) == 0


@pytest.mark.parametrize("verbose", [True, False])
@pytest.mark.parametrize("text", ["abc", "", "-5", "1.5", "²", str(2**63), "99999999999999999999"])
def test_a_pl_global_seed_that_is_no_seed_is_an_error_naming_it(monkeypatch, text, verbose):
    """A junk PL_GLOBAL_SEED trained on seed 0 with a warning (and replaced the variable with "0"). Lightning
    2.6.6 raises a ValueError for each of these ("Invalid seed specified via PL_GLOBAL_SEED: 'abc'", or
    "-5 is not in bounds"), verbose or not, and leaves the variable as it was."""
    monkeypatch.setenv("PL_GLOBAL_SEED", text)
    with pytest.raises(
        ValueError, match=rf"invalid seed specified via PL_GLOBAL_SEED: '{text}' .expected an int"
    ):
        seed_everything(verbose=verbose)
    assert os.environ["PL_GLOBAL_SEED"] == text


@pytest.mark.parametrize(
    "text, seed", [(" 5", 5), ("5\n", 5), (str(2**63 - 1), 2**63 - 1)], ids=["spaces", "newline", "largest"]
)
def test_a_pl_global_seed_with_whitespace_or_the_largest_seed_is_taken(monkeypatch, text, seed):
    # (Lightning reads the variable with int(), which takes surrounding whitespace.)
    monkeypatch.setenv("PL_GLOBAL_SEED", text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert seed_everything() == seed


@pytest.mark.parametrize("huge", [2**63, 2**64 + 5])
def test_a_seed_past_2_63_is_refused_naming_it_and_the_range(huge, monkeypatch):
    """seed_everything(2**64 + 5) ended in MLX's pybind TypeError ("incompatible function arguments"), which
    named neither the seed nor the range; so did a PL_GLOBAL_SEED of that size, and Trainer(seed=) at fit."""
    with pytest.raises(ValueError, match=rf"seed_everything.*at most 2\*\*63 - 1, got {huge}"):
        seed_everything(huge)
    with pytest.raises(ValueError, match=rf"Trainer\(seed=.*at most 2\*\*63 - 1, got {huge}"):
        Trainer(seed=huge)
    monkeypatch.setenv("PL_GLOBAL_SEED", str(huge))
    with pytest.raises(ValueError, match=rf"PL_GLOBAL_SEED: '{huge}' .expected an int from 0 to 2\*\*63 - 1"):
        seed_everything()
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
