"""`Trainer(deterministic=True)` says when `fit` starts what it cannot make reproducible."""

import warnings

from audiotrain import DataLoader, Dataset

import numpy as np
import pytest
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
    assert "batch_rng()" in message and "worker_type='process'" in message and "num_workers=0" in message


@pytest.mark.parametrize(
    "deterministic, loader_kwargs",
    [(True, {"num_workers": 0}), (False, {"num_workers": 2}), (None, {"num_workers": 2})],
)
def test_no_warning_where_nothing_is_shared_or_nothing_was_asked(tmp_path, deterministic, loader_kwargs):
    assert _fit_warnings(tmp_path, deterministic, **loader_kwargs) == []
