"""`Trainer(deterministic=True)` says when `fit` starts what it cannot make reproducible."""

import warnings

from audiotrain import DataLoader, Dataset, seed_everything

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten
from tasks import TinyClassifier, quiet_trainer


class Augmented(Dataset):
    """Noise drawn from the global np.random: what thread workers cannot draw in a repeatable order."""

    def __len__(self):
        return 16

    def __getitem__(self, i):
        return np.random.normal(size=(8,)).astype(np.float32), i % 3


def _fit_warnings(tmp_path, deterministic, **loader_kwargs):
    loader = DataLoader(Augmented(), batch_size=8, **loader_kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_trainer(tmp_path, max_epochs=1, deterministic=deterministic).fit(TinyClassifier(), loader)
    return [str(w.message) for w in caught if "deterministic" in str(w.message)]


def test_deterministic_with_thread_workers_warns_with_the_ways_out(tmp_path):
    (message,) = _fit_warnings(tmp_path, True, num_workers=2)
    assert "train_loader" in message and "thread workers" in message and "np.random" in message
    assert "mx.random" in message
    assert "batch_rng()" in message and "worker_type='process'" in message and "num_workers=0" in message


@pytest.mark.parametrize("from_the_module", [False, True])
def test_a_datamodules_thread_worker_loaders_are_warned_of_once(tmp_path, from_the_module):
    # Before: only loaders passed to fit were looked at, so a Lightning port's DataModule with
    # num_workers=2 (or the module's own train_dataloader) under deterministic=True got no warning.
    from audiotrain import DataModule

    class Data(DataModule):
        def train_dataloader(self):
            return DataLoader(Augmented(), batch_size=8, num_workers=2)

        def val_dataloader(self):
            return DataLoader(Augmented(), batch_size=8, num_workers=2)

    class WithLoaders(TinyClassifier):
        train_dataloader, val_dataloader = Data.train_dataloader, Data.val_dataloader

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = quiet_trainer(tmp_path, max_epochs=1, deterministic=True)
        trainer.fit(WithLoaders()) if from_the_module else trainer.fit(TinyClassifier(), datamodule=Data())
    (message,) = [str(w.message) for w in caught if "deterministic" in str(w.message)]
    assert "train_loader and val_loader load batches in thread workers" in message


@pytest.mark.parametrize(
    "deterministic, loader_kwargs",
    [(True, {"num_workers": 0}), (False, {"num_workers": 2}), (None, {"num_workers": 2})],
)
def test_no_warning_where_nothing_is_shared_or_nothing_was_asked(tmp_path, deterministic, loader_kwargs):
    assert _fit_warnings(tmp_path, deterministic, **loader_kwargs) == []


class MlxAugmented(Dataset):
    """Noise drawn from MLX's global generator, as an MLX augmentation would."""

    def __len__(self):
        return 16

    def __getitem__(self, i):
        noise = mx.random.normal((8,))
        return np.asarray(noise, dtype=np.float32) + (i % 3), i % 3


def _fit_weights(tmp_path, seed, **loader_kwargs):
    seed_everything(seed)  # (the weights are drawn when the model is built)
    model = TinyClassifier()
    loader = DataLoader(MlxAugmented(), batch_size=4, shuffle=True, **loader_kwargs)
    quiet_trainer(tmp_path, max_epochs=2, seed=seed, deterministic=True).fit(model, loader)
    return dict(tree_flatten(model.parameters()))


@pytest.mark.parametrize("persistent", [False, True])
def test_mx_random_augmentation_in_process_workers_repeats_with_the_seed(tmp_path, persistent):
    kwargs = dict(num_workers=2, worker_type="process", persistent_workers=persistent)
    first = _fit_weights(tmp_path / "a", 1, **kwargs)
    again = _fit_weights(tmp_path / "b", 1, **kwargs)
    other = _fit_weights(tmp_path / "c", 2, **kwargs)
    assert all(np.array_equal(first[name], again[name]) for name in first)
    assert not all(np.array_equal(first[name], other[name]) for name in first)


def test_mx_random_differs_between_process_workers_and_batches():
    loader = DataLoader(MlxAugmented(), batch_size=4, num_workers=2, worker_type="process", seed=0)
    noises = [np.asarray(x) - np.asarray(y)[:, None] for x, y in loader]
    rows = np.concatenate(noises)
    assert len({row.tobytes() for row in rows}) == len(rows)
