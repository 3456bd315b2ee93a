"""What the Trainer accepts as loaders and batches (audiotrain/train/loaders.py), from the user's side."""

import audiotrain  # noqa: F401  (before mlx)
from audiotrain import DataLoader, DataModule, Trainer

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from tasks import TinyClassifier, make_batches, make_data


def trainer(tmp_path, **kw):
    return Trainer(
        default_root_dir=tmp_path, enable_progress_bar=False, enable_checkpointing=False, logger=False, **kw
    )


@pytest.mark.parametrize(
    "labels, match",
    [
        (np.array(["1", "3 "]), r"batch\[1\] is a numpy array of text \(dtype <U2\)"),
        (
            np.array([2, None], dtype=object),
            r"batch\[1\] is a numpy array of Python objects \(dtype object\)",
        ),
    ],
)
def test_a_batch_of_text_or_objects_is_named_as_such(tmp_path, labels, match):
    # Not "convert it with the default collate": no conversion would make these numbers.
    x = mx.zeros((2, 8))
    with pytest.raises(TypeError, match=match + ".*a number in every sample") as info:
        trainer(tmp_path, max_steps=1).fit(TinyClassifier(), [(x, labels)])
    assert "default collate" not in str(info.value)


def test_a_dict_of_named_loaders_is_refused_as_a_list_of_them_is(tmp_path):
    # Lightning's named validation loaders: one loader per stage here, so refused up front with the list's
    # message, instead of each key being read as a batch ("batch is a str").
    x, y = np.zeros((8, 8), np.float32), np.zeros(8, np.int32)
    val = DataLoader(list(zip(x, y, strict=True)), batch_size=4)
    t = trainer(tmp_path, max_epochs=1)
    match = r"val_loader is a dict of 2 loaders \('clean', 'noisy'\); each stage takes one loader"
    with pytest.raises(TypeError, match=match):
        t.fit(TinyClassifier(), make_batches(16), {"clean": val, "noisy": val})
    with pytest.raises(TypeError, match="test_loader is a dict of 2 loaders"):
        t.test(TinyClassifier(), {"clean": val, "noisy": val})
    with pytest.raises(
        TypeError, match=r"val_loader is a dict, whose iteration gives its keys.*\[batch\] for one"
    ):
        t.fit(TinyClassifier(), make_batches(16), {"x": mx.zeros((4, 8)), "y": mx.zeros(4, mx.int32)})


class DictBatches(TinyClassifier):
    """A TinyClassifier that takes Lightning's dict batches ({"x": ..., "y": ...})."""

    def compute_loss(self, batch):
        return super().compute_loss((batch["x"], batch["y"]))


@pytest.mark.parametrize(
    "extra, match",
    [
        # mx.compile takes a str as a constant: unchecked, such a batch would train (and recompile per name).
        ({"name": "clip"}, r"batch\['name'\] is a str, but batch leaves must be mx.array: keep only arrays"),
        ({"y": np.zeros(2, np.int32)}, r"batch\['y'\] is a ndarray, .*the DataLoader's default collate"),
    ],
)
def test_a_dict_batchs_leaves_are_checked_and_named_by_key(tmp_path, extra, match):
    batch = {"x": mx.zeros((2, 8)), "y": mx.zeros(2, mx.int32), **extra}
    with pytest.raises(TypeError, match=match):
        trainer(tmp_path, max_steps=1).fit(DictBatches(), [batch])


def test_a_list_of_batches_that_are_lists_is_one_loader(tmp_path):
    # [x, y] batches (what a list-returning collate gives) are batches, not Lightning's several loaders.
    t = trainer(tmp_path, max_epochs=1)
    t.fit(TinyClassifier(), [[x, y] for x, y in make_batches(32)])
    assert t.global_step == 2


def test_a_loader_that_is_not_iterable_is_named_with_its_type(tmp_path):
    t = trainer(tmp_path, max_epochs=1)
    with pytest.raises(
        TypeError, match=r"train_loader must be iterable \(a DataLoader or a list of batches\), got int"
    ):
        t.fit(TinyClassifier(), 5)
    with pytest.raises(
        TypeError, match=r"val_loader must be iterable \(a DataLoader or a list of batches\), got int"
    ):
        t.validate(TinyClassifier(), 5)


def test_a_datamodule_without_a_stages_loader_is_named_in_the_message(tmp_path):
    class NoLoaders(DataModule):
        def setup(self, stage):
            pass

    t = trainer(tmp_path, max_epochs=1)
    with pytest.raises(
        TypeError, match=r"Trainer.fit: NoLoaders\.train_dataloader is not defined or returned None"
    ):
        t.fit(TinyClassifier(), datamodule=NoLoaders())
    with pytest.raises(
        TypeError, match=r"Trainer.test: NoLoaders\.test_dataloader is not defined or returned None"
    ):
        t.test(TinyClassifier(), datamodule=NoLoaders())


def test_evaluation_loaders_repeat_no_sample_while_the_training_loader_stays_padded(tmp_path):
    # DataLoader(pad_shards=None): padded shards (ranks step together in training), except that the Trainer
    # sets False on the loaders it evaluates with, whose means then count each sample once under data parallel.
    x, y = make_data(32)
    train, val, test = (DataLoader(list(zip(x, y, strict=True)), batch_size=8) for _ in range(3))
    t, module = trainer(tmp_path, max_epochs=1), TinyClassifier()
    t.fit(module, train, val)
    t.test(module, test)
    assert (train.pad_shards, val.pad_shards, test.pad_shards) == (None, False, False)


TorchTensor = type("Tensor", (), {"__module__": "torch"})  # what a torch collate leaves in a batch


@pytest.mark.parametrize(
    "leaf, hint",
    [
        (np.int32(3), "convert it with the DataLoader's default collate"),
        (3, "convert it with the DataLoader's default collate"),
        (1.0, "convert it with the DataLoader's default collate"),
        (TorchTensor(), r"use audiotrain.DataLoader over the same dataset \(it collates torch tensors"),
    ],
)
def test_a_leaf_that_is_not_an_array_gets_the_hint_for_where_it_came_from(tmp_path, leaf, hint):
    with pytest.raises(
        TypeError, match=rf"batch\[1\] is a {type(leaf).__name__}, but batch leaves .*: {hint}"
    ):
        trainer(tmp_path, max_steps=1).fit(TinyClassifier(), [(mx.zeros((2, 8)), leaf)])


def test_a_wrong_loader_is_refused_before_the_modules_data_hooks_run(tmp_path):
    # The loaders passed are checked before anything runs, also where the module defines loaders of its own
    # (asked only for the loaders not passed, once its setup has run).
    calls = []

    class OwnLoaders(TinyClassifier):
        def prepare_data(self):
            calls.append("prepare_data")

        def setup(self, stage):
            calls.append("setup")

        def train_dataloader(self):
            return make_batches(32)

    with pytest.raises(TypeError, match="val_loader is a dict, whose iteration gives its keys"):
        trainer(tmp_path, max_epochs=1).fit(OwnLoaders(), make_batches(32), {"a": 1})
    assert calls == []


def test_a_misspelt_keyword_gets_a_did_you_mean():
    """``DataLoader(ds, batchsize=4)`` was Python's plain "unexpected keyword argument 'batchsize'", where the
    Trainer's misspelt keywords name the one meant."""
    with pytest.raises(
        TypeError, match=r"unexpected keyword argument 'batchsize' \(did you mean 'batch_size'\?\)"
    ):
        DataLoader(list(range(8)), batchsize=4)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'shufle' \(did you mean 'shuffle'\?\)"):
        DataLoader(list(range(8)), batch_size=4, shufle=True)
    assert len(DataLoader(list(range(8)), batch_size=4)) == 2


def test_a_misspelt_keyword_of_a_dataloader_subclass_names_the_class_called():
    """``SongLoader(ds, batchsize=4)``, a user's subclass of DataLoader, said "DataLoader() got an unexpected
    keyword argument", naming a class the user did not call (Python's own message names the class whose
    ``__init__`` refused it)."""

    class SongLoader(DataLoader):
        pass

    with pytest.raises(TypeError, match=r"^SongLoader\(\) got an unexpected keyword argument 'batchsize'"):
        SongLoader(list(range(8)), batchsize=4)
    assert len(SongLoader(list(range(8)), batch_size=4)) == 2


class CleanAndNoisy(DataModule):
    """Lightning's DataModule validating on two sets at once."""

    def train_dataloader(self):
        return make_batches(16)

    def val_dataloader(self):
        return [DataLoader(list(zip(*make_data(8, seed)))) for seed in (1, 2)]


def test_several_loaders_from_a_datamodule_name_it_and_say_how_to_score_each_set(tmp_path):
    # The message named "Trainer: val_loader" (an argument the user never passed) and said to join the sets,
    # which gives no metrics per set.
    t = trainer(tmp_path, max_epochs=1)
    with pytest.raises(
        TypeError,
        match=r"CleanAndNoisy.val_dataloader\(\) returned a list of 2 loaders.*"
        r"call trainer.validate\(model, loader\) \(or test\) once per loader",
    ):
        t.fit(TinyClassifier(), datamodule=CleanAndNoisy())
    assert t.global_step == 0


def test_a_list_holding_one_loader_says_to_pass_the_loader_itself(tmp_path):
    # It said "a list of 1 loaders; ... pass one".
    with pytest.raises(TypeError, match=r"val_loader is a list holding one loader.*pass loader\[0\]"):
        trainer(tmp_path).validate(TinyClassifier(), [DataLoader(list(zip(*make_data(8))), batch_size=4)])


def test_several_training_loaders_are_told_how_to_train_on_both(tmp_path):
    # It said to score each set with trainer.validate, which trains on neither.
    loaders = {"a": DataLoader(list(zip(*make_data(8, 1)))), "b": DataLoader(list(zip(*make_data(8, 2))))}
    with pytest.raises(
        TypeError, match=r"train_loader is a dict of 2 loaders.*CombinedLoader.*__iter__ yields"
    ):
        trainer(tmp_path, max_epochs=1).fit(TinyClassifier(), loaders)


def test_several_prediction_loaders_are_told_to_predict_each(tmp_path):
    # It said to call trainer.validate once per loader, which gives metrics, not predictions.
    loaders = [DataLoader(list(zip(*make_data(8, seed)))) for seed in (1, 2)]
    with pytest.raises(
        TypeError, match=r"dataloaders is a list of 2 loaders.*trainer.predict\(model, loader\)"
    ):
        trainer(tmp_path).predict(TinyClassifier(), loaders)


class ScoresBothSets(TinyClassifier):
    """Validates on {"clean": batch, "noisy": batch}: two sets combined by hand, one loss each."""

    def validation_step(self, batch, batch_idx):
        for name, (x, y) in batch.items():
            self.log(f"val_loss_{name}", mx.mean(nn.losses.cross_entropy(self(x), y)))


def test_a_batch_of_two_sets_of_other_sizes_warns_once_that_the_first_sets_size_weights_both(tmp_path):
    # The noisy set's mean was weighted by the clean set's batch sizes, with no word (Lightning warns of an
    # ambiguous collection); the means per set were wrong where the sizes differ.
    clean, noisy = make_batches(20, batch_size=8, seed=1), make_batches(20, batch_size=5, seed=2)
    both = [{"clean": a, "noisy": b} for a, b in zip(clean, noisy, strict=False)]
    with pytest.warns(UserWarning, match=r"differ in their first dimension \(8, 5\).*batch_size=n\)") as said:
        trainer(tmp_path).validate(ScoresBothSets(), both)
    (warned,) = [w for w in said if "first dimension" in str(w.message)]
    assert warned.filename == __file__  # (the user's validate call, not the Trainer's loop inside audiotrain)


def test_a_sampler_whose_len_is_not_what_it_yields_is_warned_about():
    """A weighted sampler of a user's own for rare classes, its ``__len__`` left at the dataset's 100 while
    ``__iter__`` draws 40: ``len(loader)`` said 13 batches and the epoch gave 5, silently (a progress bar
    and a per-epoch schedule's steps count on it). The epoch's draw names both counts."""

    class WeightedDraws:
        def __len__(self):
            return 100

        def __iter__(self):
            return iter(np.random.default_rng(0).choice(10, 40).tolist())

    loader = DataLoader(list(range(10)), batch_size=8, sampler=WeightedDraws())
    with pytest.warns(UserWarning, match=r"sampler WeightedDraws: len\(\) is 100 but it yielded 40 indices"):
        assert sum(1 for _ in loader) == 5
    batches = [[0, 1], [2]]

    class Batches:
        def __len__(self):
            return 3

        def __iter__(self):
            return iter(batches)

    with pytest.warns(UserWarning, match=r"batch_sampler Batches: len\(\) is 3 but it yielded 2 batches"):
        list(DataLoader(list(range(10)), batch_sampler=Batches()))
