"""`Trainer(overfit_batches=N)`, Lightning 2's: every epoch trains on the same first N batches (the training
loader unshuffled), and validation runs on the first N batches of its loader."""

import warnings

import audiotrain  # noqa: F401  (before mlx)
from audiotrain import DataLoader
from audiotrain.data import IterableDataset
from audiotrain.train import Callback

import numpy as np
import pytest
from tasks import TinyClassifier, make_data, quiet_trainer


def numbered_samples(n: int) -> list:
    """(x, y) samples whose last feature is the sample's index, so a batch says which samples it holds."""
    x, y = make_data(n)
    x[:, -1] = np.arange(n)
    return list(zip(x, y, strict=True))


def sample_ids(batch) -> list[int]:
    return [int(i) for i in np.array(batch[0][:, -1])]


class BatchRecorder(Callback):
    def __init__(self):
        self.train: dict[int, list[list[int]]] = {}
        self.val: list[list[int]] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.train.setdefault(trainer.current_epoch, []).append(sample_ids(batch))

    def on_validation_batch_start(self, trainer, module, batch, batch_idx):
        self.val.append(sample_ids(batch))


def fit_overfitting(tmp_path, overfit_batches, train_loader, val_loader=None, epochs=3, **flags):
    recorder = BatchRecorder()
    trainer = quiet_trainer(
        tmp_path, max_epochs=epochs, overfit_batches=overfit_batches, callbacks=[recorder], **flags
    )
    trainer.fit(TinyClassifier(), train_loader, val_loader)
    return trainer, recorder


def test_every_epoch_trains_on_the_same_first_batches_of_a_shuffling_loader(tmp_path):
    loader = DataLoader(numbered_samples(24), batch_size=4, shuffle=True, seed=3)  # 6 batches
    with pytest.warns(UserWarning, match=r"overfit_batches.*shuffles \(shuffle=True\).*dataset's order"):
        trainer, recorder = fit_overfitting(tmp_path, 2, loader)
    first_two = [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert recorder.train == {0: first_two, 1: first_two, 2: first_two}
    assert trainer.num_training_batches == 2 and trainer.global_step == 6
    assert loader.shuffle is True  # (the user's loader is put back as it was)
    assert trainer.overfit_batches == 2 and trainer.limit_train_batches == 2 == trainer.limit_val_batches


def test_a_fraction_takes_that_share_of_the_batches(tmp_path):
    loader = DataLoader(numbered_samples(24), batch_size=4)  # 6 batches, unshuffled: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trainer, recorder = fit_overfitting(tmp_path, 0.5, loader, epochs=2)
    first_three = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert recorder.train == {0: first_three, 1: first_three}
    assert trainer.estimated_stepping_batches == 6


def test_a_list_of_batches_overfits_too(tmp_path):
    loader = DataLoader(numbered_samples(24), batch_size=8)
    batches = list(loader)  # a plain list: no shuffle to turn off
    trainer, recorder = fit_overfitting(tmp_path, 1, batches, epochs=2)
    assert recorder.train == {0: [list(range(8))], 1: [list(range(8))]}


def test_validation_runs_on_the_first_batches_of_its_loader(tmp_path):
    train = DataLoader(numbered_samples(24), batch_size=4, shuffle=True)
    val = DataLoader(numbered_samples(20), batch_size=4)  # 5 batches
    with pytest.warns(UserWarning, match="shuffles"):
        trainer, recorder = fit_overfitting(tmp_path, 2, train, val, epochs=2)
    assert recorder.val == [[0, 1, 2, 3], [4, 5, 6, 7]] * 2  # one validation an epoch, 2 of its batches
    assert trainer.num_val_batches == 2


def test_it_replaces_the_train_and_val_limits_as_lightning_with_a_warning(tmp_path):
    loader = DataLoader(numbered_samples(24), batch_size=4)
    with pytest.warns(UserWarning, match=r"overfit_batches=1\) replaces limit_train_batches=5"):
        trainer, recorder = fit_overfitting(tmp_path, 1, loader, epochs=1, limit_train_batches=5)
    assert recorder.train == {0: [[0, 1, 2, 3]]}


def test_zero_is_off(tmp_path):
    loader = DataLoader(numbered_samples(24), batch_size=4, shuffle=True, seed=3)
    trainer, recorder = fit_overfitting(tmp_path, 0.0, loader, epochs=2)
    assert len(recorder.train[0]) == 6 and recorder.train[0] != recorder.train[1]  # shuffled each epoch


@pytest.mark.parametrize("bad", [-1, 1.5, -0.5, True, "2", None])
def test_a_bad_value_is_refused_naming_the_flag(bad):
    with pytest.raises(
        ValueError, match=r"Trainer\(overfit_batches=.*expected an int number of batches >= 0"
    ):
        quiet_trainer(".", max_epochs=1, overfit_batches=bad)


def test_with_fast_dev_run_it_is_refused():
    with pytest.raises(ValueError, match=r"overfit_batches=2, fast_dev_run=.*use one of them"):
        quiet_trainer(".", max_epochs=1, overfit_batches=2, fast_dev_run=True)


def test_a_fraction_of_less_than_one_batch_is_refused_naming_overfit_batches_and_the_loader(tmp_path):
    loader = DataLoader(numbered_samples(24), batch_size=4)
    with pytest.raises(
        ValueError, match=r"overfit_batches=0.1\): 0.1 x the training loader's 6 batches is less"
    ):
        fit_overfitting(tmp_path, 0.1, loader)
    # The validation loader is cut by the same fraction: "0.25 x 3 batches" left the user looking for a
    # loader of 3 batches while the training loader had 8.
    val_loader = DataLoader(numbered_samples(12), batch_size=4)  # 3 batches
    with pytest.raises(ValueError, match=r"0.25 x the validation loader's 3 batches is less than one batch"):
        fit_overfitting(tmp_path, 0.25, DataLoader(numbered_samples(32), batch_size=4), val_loader)


def test_a_run_resumed_from_its_checkpoint_goes_on_with_the_same_batches(tmp_path):
    """The checkpoint records the loader's position in its unshuffled order; the resumed fit iterates
    that order too, so it neither refuses the loader (another order) nor trains on other batches."""
    samples = numbered_samples(24)
    with pytest.warns(UserWarning, match="shuffles"):
        fit_overfitting(
            tmp_path, 2, DataLoader(samples, batch_size=4, shuffle=True), epochs=1, enable_checkpointing=True
        )
    recorder = BatchRecorder()
    trainer = quiet_trainer(
        tmp_path, max_epochs=2, overfit_batches=2, callbacks=[recorder], enable_checkpointing=True
    )
    with pytest.warns(UserWarning, match="shuffles"):
        trainer.fit(TinyClassifier(), DataLoader(samples, batch_size=4, shuffle=True), ckpt_path="last")
    assert recorder.train == {1: [[0, 1, 2, 3], [4, 5, 6, 7]]} and trainer.global_step == 4


class ShuffledStream(IterableDataset):
    """A stream that yields its samples in another order every pass, as a shuffle buffer does."""

    def __init__(self, samples):
        self.samples, self.passes = samples, 0

    def __iter__(self):
        order = np.random.default_rng(self.passes).permutation(len(self.samples))
        self.passes += 1
        return (self.samples[i] for i in order)


def overfit_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if "overfit_batches" in str(w.message)]


def test_an_iterable_dataset_whose_order_is_its_own_is_warned_of(tmp_path):
    loader = DataLoader(ShuffledStream(numbered_samples(24)), batch_size=4)
    with pytest.warns(
        UserWarning,
        match=r"Trainer\(overfit_batches=2\): the training loader reads an iterable dataset "
        r"\(ShuffledStream\), whose order is its own: overfit_batches cannot set it.*Make it yield the "
        r"same samples in the same order every epoch",
    ):
        fit_overfitting(tmp_path, 2, loader, epochs=1)


def test_a_loader_with_its_own_sampler_or_of_its_own_kind_is_warned_of(tmp_path):
    class Batches:  # a loader of the user's own: its order is not the Trainer's to set
        def __init__(self, batches):
            self.batches = batches

        def __iter__(self):
            return iter(self.batches)

        def __len__(self):
            return len(self.batches)

    sampled = DataLoader(numbered_samples(24), batch_size=4, sampler=list(reversed(range(24))))
    with pytest.warns(
        UserWarning, match=r"the training loader has its own sampler \(list\), whose order is its own"
    ):
        fit_overfitting(tmp_path / "a", 2, sampled, epochs=1)
    own = Batches(list(DataLoader(numbered_samples(24), batch_size=4)))
    with pytest.warns(UserWarning, match=r"the training loader is a Batches, not an audiotrain DataLoader"):
        fit_overfitting(tmp_path / "b", 2, own, epochs=1)

    class Forwarding(Batches):  # a wrapper that hands its loader's attributes on, `shuffle` among them
        def __getattr__(self, name):
            return getattr(self.__dict__["batches"], name)

    # Setting `shuffle` on the wrapper would not reach the loader it wraps: warned of, not switched.
    shuffling = DataLoader(numbered_samples(24), batch_size=4, shuffle=True, seed=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_overfitting(tmp_path / "c", 2, Forwarding(shuffling), epochs=1)
    (warned,) = overfit_warnings(caught)
    assert "the training loader is a Forwarding, not an audiotrain DataLoader" in warned
    assert shuffling.shuffle is True


def test_a_list_of_batches_or_an_unshuffled_loader_is_not_warned_of(tmp_path):
    batches = list(DataLoader(numbered_samples(24), batch_size=8))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_overfitting(tmp_path, 1, batches, DataLoader(numbered_samples(8), batch_size=4), epochs=1)
    assert overfit_warnings(caught) == []

    class TorchLikeLoader:  # torch's DataLoader without shuffle: its sampler is a SequentialSampler
        sampler = type("SequentialSampler", (), {})()

        def __iter__(self):
            return iter(batches)

        def __len__(self):
            return len(batches)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_overfitting(tmp_path / "torch", 1, TorchLikeLoader(), epochs=1)
    assert overfit_warnings(caught) == []


def test_a_shuffling_validation_loader_validates_on_the_same_batches_every_epoch(tmp_path):
    train = DataLoader(numbered_samples(24), batch_size=4)
    val = DataLoader(numbered_samples(32), batch_size=4, shuffle=True, seed=3)
    with pytest.warns(
        UserWarning,
        match=r"overfit_batches=2\): the validation loader shuffles \(shuffle=True\); it is iterated in its "
        r"dataset's order while fit runs, so that every epoch validates on the same batches",
    ):
        trainer, recorder = fit_overfitting(tmp_path, 2, train, val, epochs=3)
    assert recorder.val == [[0, 1, 2, 3], [4, 5, 6, 7]] * 3
    assert val.shuffle is True  # (put back after fit)


def test_the_warnings_are_rank_zeros_alone_and_every_rank_reads_in_order(tmp_path, monkeypatch):
    """Under data parallel every rank's loader shuffles alike: one warning tells the job (rank 0's)."""
    from audiotrain.distributed import collectives

    warned = []
    for rank in (0, 1):  # (as each rank of the job sees itself)
        monkeypatch.setattr(collectives, "is_main_process", lambda rank=rank: rank == 0)
        loader = DataLoader(numbered_samples(24), batch_size=4, shuffle=True, seed=3)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer, recorder = fit_overfitting(tmp_path / str(rank), 2, loader, epochs=2)
        warned.append(overfit_warnings(caught))
        assert recorder.train == {0: [[0, 1, 2, 3], [4, 5, 6, 7]]} | {1: [[0, 1, 2, 3], [4, 5, 6, 7]]}
    assert [len(messages) for messages in warned] == [1, 0]


def test_a_val_check_interval_beyond_the_overfit_batches_is_refused_naming_overfit_batches(tmp_path):
    train = DataLoader(numbered_samples(64), batch_size=8)  # 8 batches, of which overfit_batches takes 4
    val = DataLoader(numbered_samples(32), batch_size=8)
    with pytest.raises(
        ValueError,
        match=r"val_check_interval=10\) must be at most the number of training batches in an epoch "
        r"\(4, set by overfit_batches=4\).*to turn validation off, pass no validation loader",
    ):
        fit_overfitting(tmp_path, 4, train, val, val_check_interval=10)
