"""What the Trainer accepts as loaders and batches (audiotrain/train/loaders.py), from the user's side."""

import csv
import json

import audiotrain  # noqa: F401  (before mlx)
from audiotrain import CombinedLoader, DataLoader, DataModule, OptimizerConfig, Trainer, TrainModule
from audiotrain.callbacks import Callback, ModelCheckpoint
from audiotrain.train.callbacks import BasePredictionWriter

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
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


def test_a_dict_batch_given_as_the_loader_says_its_iteration_gives_keys(tmp_path):
    t = trainer(tmp_path, max_epochs=1)
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
        return [DataLoader(list(zip(*make_data(8, seed))), batch_size=4) for seed in (1, 2)]


def test_several_validation_loaders_from_a_datamodule_are_scored_each(tmp_path):
    # It refused them ("CleanAndNoisy.val_dataloader() returned a list of 2 loaders"); Lightning 2.6.6 scores
    # each under its own name (measured: "val_loss/dataloader_idx_0", "val_loss/dataloader_idx_1").
    t = trainer(tmp_path, max_epochs=1)
    t.fit(TinyClassifier(), datamodule=CleanAndNoisy())
    assert {"val_loss/dataloader_idx_0", "val_loss/dataloader_idx_1"} <= set(t.callback_metrics)
    assert "val_loss" not in t.callback_metrics
    assert t.num_val_batches == [2, 2]
    assert len(t.val_dataloaders) == 2  # (the list given, as Lightning's)


def test_a_validation_loader_alone_in_a_list_is_that_loader(tmp_path):
    # As Lightning 2.6.6's [loader]: names without a suffix, no dataloader_idx passed. It said "val_loader is
    # a list holding one loader; ... pass loader[0]".
    loader = DataLoader(list(zip(*make_data(8))), batch_size=4)
    [alone] = trainer(tmp_path).validate(TinyClassifier(), loader)
    [in_a_list] = trainer(tmp_path).validate(TinyClassifier(), [loader])
    assert set(in_a_list) == set(alone) == {"val_loss", "val_accuracy"}


def two_loaders():
    """ "a": 3 batches of 2 (ids 0..5), "b": 5 batches of 2 (ids 100..109)."""
    a = DataLoader([(np.full(4, i / 100, np.float32), i) for i in range(6)], batch_size=2)
    b = DataLoader([(np.full(4, i / 100, np.float32), i) for i in range(100, 110)], batch_size=2)
    return a, b


def sample_ids(batch):
    if batch is None:
        return None
    if isinstance(batch, dict):
        return {k: sample_ids(v) for k, v in batch.items()}
    if isinstance(batch, list):
        return [sample_ids(v) for v in batch]
    return np.asarray(batch[1]).tolist()


class RecordsSteps(TrainModule):
    """Records what each training step gets: its samples' ids, batch_idx, global_step, epoch and
    num_training_batches."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 1)
        self._seen = []

    def on_train_batch_start(self, batch, batch_idx):
        t = self.trainer
        self._seen.append(
            (sample_ids(batch), batch_idx, t.global_step, self.current_epoch, t.num_training_batches)
        )

    def training_step(self, batch, batch_idx):
        parts = batch.values() if isinstance(batch, dict) else batch
        return sum(mx.mean(self.lin(x) ** 2) for x, _ in (p for p in parts if p is not None))

    def configure_optimizers(self):
        return OptimizerConfig(optimizer=optim.SGD(learning_rate=0.1))


# Measured with Lightning 2.6.6: fit(model, {"a": a, "b": b}, max_epochs=2) (CombinedLoader's max_size_cycle:
# "a" starts again as it ends), per step (ids of "a", ids of "b", batch_idx, global_step, epoch);
# num_training_batches 5.
LIGHTNING_DICT_OF_LOADERS = [
    ([0, 1], [100, 101], 0, 0, 0),
    ([2, 3], [102, 103], 1, 1, 0),
    ([4, 5], [104, 105], 2, 2, 0),
    ([0, 1], [106, 107], 3, 3, 0),
    ([2, 3], [108, 109], 4, 4, 0),
    ([0, 1], [100, 101], 0, 5, 1),
    ([2, 3], [102, 103], 1, 6, 1),
    ([4, 5], [104, 105], 2, 7, 1),
    ([0, 1], [106, 107], 3, 8, 1),
    ([2, 3], [108, 109], 4, 9, 1),
]


@pytest.mark.parametrize("kind", ["dict", "list", "datamodule"])
def test_several_training_loaders_give_a_batch_of_each_per_step_as_lightnings(tmp_path, kind):
    # It refused them ("train_loader is a dict of 2 loaders; each stage takes one loader").
    a, b = two_loaders()

    class TwoSets(DataModule):
        def train_dataloader(self):
            return {"a": a, "b": b}

    model, t = RecordsSteps(), trainer(tmp_path, max_epochs=2)
    if kind == "datamodule":
        t.fit(model, datamodule=TwoSets())
    else:
        t.fit(model, {"a": a, "b": b} if kind == "dict" else [a, b])
    pack = (lambda x, y: [x, y]) if kind == "list" else (lambda x, y: {"a": x, "b": y})
    assert model._seen == [
        (pack(x, y), i, step, epoch, 5) for x, y, i, step, epoch in LIGHTNING_DICT_OF_LOADERS
    ]
    assert t.global_step == 10


def test_combined_loaders_min_size_and_max_size_train_as_lightnings(tmp_path):
    # Lightning 2.6.6, fit(model, CombinedLoader({"a": a, "b": b}, mode), max_epochs=2): min_size trains 3
    # steps an epoch (global_step 6); max_size 5, "a" None in the last two.
    a, b = two_loaders()
    model, t = RecordsSteps(), trainer(tmp_path, max_epochs=2)
    t.fit(model, CombinedLoader({"a": a, "b": b}, mode="min_size"))
    assert (t.global_step, t.num_training_batches) == (6, 3)
    assert [seen[0] for seen in model._seen[3:]] == [
        {"a": [2 * i, 2 * i + 1], "b": [100 + 2 * i, 101 + 2 * i]} for i in range(3)
    ]
    model, t = RecordsSteps(), trainer(tmp_path, max_epochs=2)
    t.fit(model, CombinedLoader([a, b], mode="max_size"))  # (compiled: a None in the batch)
    assert (t.global_step, t.num_training_batches) == (10, 5)
    assert [seen[0] for seen in model._seen[3:5]] == [[None, [106, 107]], [None, [108, 109]]]


def test_a_sequential_combined_loader_is_refused_by_fit_as_lightnings(tmp_path):
    # Lightning 2.6.6: "`_FitLoop` does not support the `CombinedLoader(mode="sequential")` mode".
    with pytest.raises(
        ValueError, match=r'CombinedLoader\(mode="sequential"\): training does not support it'
    ):
        trainer(tmp_path, max_epochs=1).fit(RecordsSteps(), CombinedLoader(list(two_loaders()), "sequential"))


@pytest.mark.filterwarnings("ignore:The checkpoint resumed holds the state of callbacks")
@pytest.mark.parametrize("mode", ["max_size_cycle", "min_size", "max_size"])
def test_a_fit_on_several_loaders_resumed_mid_epoch_trains_the_uninterrupted_runs_batches(tmp_path, mode):
    # (Lightning 2.6.6 reads the resumed epoch again from its first batch: README says so.)
    def fit(folder, ckpt_path=None):
        model, saves = (
            RecordsSteps(),
            ModelCheckpoint(dirpath=tmp_path / folder, every_n_train_steps=2, save_top_k=-1),
        )
        t = Trainer(
            default_root_dir=tmp_path,
            enable_progress_bar=False,
            logger=False,
            max_epochs=2,
            callbacks=[saves] if ckpt_path is None else [],
        )

        t.fit(model, CombinedLoader(dict(zip("ab", two_loaders(), strict=True)), mode), ckpt_path=ckpt_path)
        return [seen[:2] for seen in model._seen], np.array(model.lin.weight)

    whole, weights = fit("whole")
    (saved,) = [p for p in (tmp_path / "whole").iterdir() if "step=2" in p.name]
    resumed, resumed_weights = fit("resumed", ckpt_path=saved)
    assert resumed == whole[2:]
    np.testing.assert_array_equal(resumed_weights, weights)


class FailsOnce(RecordsSteps):
    """Raises in on_train_batch_start at global step 3, where `fail` is set."""

    fail = False

    def on_train_batch_start(self, batch, batch_idx):
        if self.fail and self.trainer.global_step == 3:
            raise RuntimeError("step failed")
        return super().on_train_batch_start(batch, batch_idx)


@pytest.mark.parametrize("mode", ["max_size_cycle", "max_size"])
def test_a_fit_on_several_loaders_resumed_from_on_exception_checkpoint_trains_the_failed_batch(
    tmp_path, mode
):
    # OnExceptionCheckpoint put back the CombinedLoader's count of batches but not its loaders' positions:
    # the resumed fit went on after the failed batch ({"a": [0, 1], "b": [106, 107]}), never trained.
    from audiotrain.callbacks import OnExceptionCheckpoint

    def fit(fail=False, callbacks=(), ckpt_path=None):
        mx.random.seed(0)  # (the same initial weights)
        model = FailsOnce()
        model.fail = fail
        t = trainer(tmp_path, max_epochs=2, callbacks=list(callbacks))
        loaders = CombinedLoader(dict(zip("ab", two_loaders(), strict=True)), mode)
        if fail:
            with pytest.raises(RuntimeError, match="step failed"):
                t.fit(model, loaders)
        else:
            t.fit(model, loaders, ckpt_path=ckpt_path)
        return [seen[:2] for seen in model._seen], np.array(model.lin.weight)

    whole, weights = fit()
    saves = OnExceptionCheckpoint(tmp_path / "saved")
    fit(fail=True, callbacks=[saves])
    resumed, resumed_weights = fit(ckpt_path=saves.ckpt_path)
    assert resumed == whole[3:]
    np.testing.assert_array_equal(resumed_weights, weights)


def val_sets():
    """Two evaluation sets: 3 batches of 2 (ids 100..105), 2 batches of 2 (ids 200..203)."""
    return [
        DataLoader([(np.full(4, i / 100, np.float32), i) for i in range(base, base + n)], batch_size=2)
        for base, n in ((100, 6), (200, 4))
    ]


class LogsPerLoader(TrainModule):
    """lt_job.py's module (/tmp/s79/multival), with its weights: scored on `val_sets()`, Lightning 2.6.6 gives
    the values the tests below hold."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 1)
        self.lin.weight = mx.array([[0.1, 0.2, 0.3, 0.4]])
        self.lin.bias = mx.zeros((1,))
        self._seen, self._counts = [], []

    def training_step(self, batch, batch_idx):
        return mx.mean(self.lin(batch[0]) ** 2)

    def _score(self, kind, batch, dataloader_idx):
        self.log(f"{kind}_loss", mx.mean(self.lin(batch[0]) ** 2))
        ids = mx.mean(batch[1].astype(mx.float32))
        self.log(f"{kind}_ids_{dataloader_idx}", ids, add_dataloader_idx=False)
        if dataloader_idx == 1:
            self.log(f"{kind}_only1", ids)

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        self._score("val", batch, dataloader_idx)

    def test_step(self, batch, batch_idx, dataloader_idx=0):
        self._score("test", batch, dataloader_idx)

    def on_validation_batch_start(self, batch, batch_idx, dataloader_idx=0):
        self._seen.append((batch_idx, dataloader_idx, self.trainer.sanity_checking))

    def on_test_batch_start(self, batch, batch_idx, dataloader_idx=0):
        self._seen.append((batch_idx, dataloader_idx, False))

    def on_validation_end(self):
        self._counts.append((self.trainer.num_val_batches, self.trainer.num_sanity_val_batches))

    def configure_optimizers(self):
        return OptimizerConfig(optimizer=optim.SGD(learning_rate=0.1))


class EndsBatchesAsLightning2(Callback):
    """A Lightning callback written for several loaders: dataloader_idx without a default."""

    def __init__(self):
        self.seen = []

    def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx):
        self.seen.append((batch_idx, dataloader_idx))


@pytest.mark.parametrize("compile", [False, True])
@pytest.mark.parametrize("stage", ["validate", "test"])
@pytest.mark.parametrize("as_dict", [False, True])
def test_several_evaluation_loaders_are_scored_each_under_lightnings_names(tmp_path, compile, stage, as_dict):
    # They were refused ("val_loader is a list of 2 loaders; each stage takes one loader"). Lightning 2.6.6
    # (lt_job.py, same sets and weights): each loader in turn with its dataloader_idx, the values logged in
    # the step named "<name>/dataloader_idx_<k>" (add_dataloader_idx=False: as logged), one dict per loader.
    model = LogsPerLoader()
    t = trainer(tmp_path, compile=compile)
    loaders = dict(zip(("clean", "noisy"), val_sets(), strict=True)) if as_dict else val_sets()
    results = getattr(t, stage)(model, loaders)
    k = "val" if stage == "validate" else "test"
    expected = [
        {f"{k}_loss/dataloader_idx_0": 1.05092, f"{k}_ids_0": 102.5},
        {f"{k}_loss/dataloader_idx_1": 4.06035, f"{k}_ids_1": 201.5, f"{k}_only1/dataloader_idx_1": 201.5},
    ]
    assert [dict(r) for r in results] == [pytest.approx(e, abs=1e-5) for e in expected]
    assert dict(t.callback_metrics) == pytest.approx({**expected[0], **expected[1]}, abs=1e-5)
    assert model._seen == [(0, 0, False), (1, 0, False), (2, 0, False), (0, 1, False), (1, 1, False)]
    assert getattr(t, f"num_{k}_batches") == [3, 2]


def test_limit_val_batches_limits_each_of_several_loaders(tmp_path):
    # Lightning 2.6.6, limit_val_batches=1: the first batch of each, num_val_batches [1, 1].
    model, ends = LogsPerLoader(), EndsBatchesAsLightning2()
    [first, second] = trainer(tmp_path, limit_val_batches=1, callbacks=[ends]).validate(model, val_sets())
    assert dict(first) == pytest.approx({"val_loss/dataloader_idx_0": 1.01005, "val_ids_0": 100.5}, abs=1e-5)
    assert dict(second) == pytest.approx(
        {"val_loss/dataloader_idx_1": 4.02005, "val_ids_1": 200.5, "val_only1/dataloader_idx_1": 200.5},
        abs=1e-5,
    )
    assert ends.seen == [(0, 0), (0, 1)]


def test_a_fit_validates_on_each_of_several_loaders_as_lightning_does(tmp_path):
    # Lightning 2.6.6 (lt_job.py "fit_two_val"): the sanity check takes num_sanity_val_steps=2 of each loader,
    # every validation each loader in turn; ModelCheckpoint and EarlyStopping monitor a loader's value by
    # its suffixed name; the CSV and the history have a column for each suffixed name.
    from audiotrain.callbacks import EarlyStopping
    from audiotrain.loggers import CSVLogger

    model, ends = LogsPerLoader(), EndsBatchesAsLightning2()
    best = ModelCheckpoint(dirpath=tmp_path / "ck", monitor="val_loss/dataloader_idx_0", save_top_k=1)
    stops = EarlyStopping(monitor="val_loss/dataloader_idx_1", patience=5)
    logger = CSVLogger(tmp_path, name="csv")
    train = DataLoader([(np.full(4, i / 100, np.float32), i) for i in range(8)], batch_size=2)
    t = Trainer(
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        max_epochs=2,
        logger=logger,
        log_every_n_steps=1,
        callbacks=[best, stops, ends],
    )
    t.fit(model, train, val_sets())
    sanity = [(0, 0, True), (1, 0, True), (0, 1, True), (1, 1, True)]
    each = [(0, 0, False), (1, 0, False), (2, 0, False), (0, 1, False), (1, 1, False)]
    assert model._seen == sanity + each + each
    assert ends.seen == [(i, k) for i, k, _ in model._seen]
    assert model._counts == [([3, 2], [2, 2])] * 3
    last = {
        "val_loss/dataloader_idx_0": 0.96778,
        "val_loss/dataloader_idx_1": 3.86551,
        "val_ids_0": 102.5,
        "val_ids_1": 201.5,
        "val_only1/dataloader_idx_1": 201.5,
    }
    assert {k: t.callback_metrics[k] for k in last} == pytest.approx(last, abs=1e-5)
    assert best.best_model_score == pytest.approx(0.96778, abs=1e-5)
    assert stops.best_score == pytest.approx(3.86551, abs=1e-5)
    with open(f"{logger.log_dir}/metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["val_loss/dataloader_idx_0"]]
    assert [float(r["val_loss/dataloader_idx_1"]) for r in rows] == pytest.approx(
        [3.92741, 3.86551], abs=1e-5
    )
    history = json.loads(t.export_history(tmp_path / "history.json").read_text())
    assert history["val_loss/dataloader_idx_0"] == pytest.approx([0.99300, 0.96778], abs=1e-5)


class LogsInHooks(LogsPerLoader):
    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        self.log("v", mx.mean(batch[0]))

    def on_validation_batch_end(self, outputs, batch, batch_idx, dataloader_idx=0):
        self.log("hook_batch", mx.mean(batch[0]))

    def on_validation_epoch_end(self):
        self.log("hook_epoch", 1.0)


def test_what_batch_hooks_log_with_several_loaders_is_named_for_each_loader(tmp_path):
    # Lightning 2.6.6 (/tmp/s79/multival/lt_hooklog.py): a batch hook's value gets its loader's suffix and
    # goes to that loader's dict; an epoch-end hook's keeps its name, in every loader's dict. Here the batch
    # hooks' values of both loaders were one mean, "hook_batch": 1.421.
    results = trainer(tmp_path).validate(LogsInHooks(), val_sets())
    assert [dict(r) for r in results] == [
        pytest.approx({"v/dataloader_idx_0": 1.025, "hook_batch/dataloader_idx_0": 1.025, "hook_epoch": 1.0}),
        pytest.approx({"v/dataloader_idx_1": 2.015, "hook_batch/dataloader_idx_1": 2.015, "hook_epoch": 1.0}),
    ]


class LogsOneNameFromEachLoader(LogsPerLoader):
    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        self.log("same", mx.mean(self.lin(batch[0]) ** 2), add_dataloader_idx=False)


class ValidatesWithoutTheLoaderIndex(LogsPerLoader):
    def validation_step(self, batch, batch_idx):
        self.log("val_loss", mx.mean(self.lin(batch[0]) ** 2))


def test_a_lambda_callback_without_dataloader_idx_is_refused_before_several_loaders_run(tmp_path):
    # It ended the validation at its first batch with a bare "<lambda>() takes 5 positional arguments but 6
    # were given"; one that takes the index runs.
    from audiotrain.train.callbacks import LambdaCallback

    seen = []
    short = LambdaCallback(on_validation_batch_end=lambda trainer, module, outputs, batch, batch_idx: None)
    with pytest.raises(
        TypeError, match=r"LambdaCallback\(on_validation_batch_end=...\)'s function.*dataloader_idx"
    ):
        trainer(tmp_path, callbacks=[short]).validate(LogsPerLoader(), val_sets())
    takes = LambdaCallback(on_validation_batch_end=lambda t, m, o, b, i, k=0: seen.append((i, k)))
    trainer(tmp_path, callbacks=[takes]).validate(LogsPerLoader(), val_sets())
    assert seen == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1)]


class IndexUnderAnotherName(Callback):
    """A callback whose batch hooks take the loader's index under a name of its own."""

    def __init__(self):
        self.seen = []

    def on_validation_batch_start(self, trainer, module, batch, batch_idx, idx=0):
        self.seen.append(("start", batch_idx, idx))

    def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx, loader=0):
        self.seen.append(("end", batch_idx, loader))


def test_a_callbacks_batch_hooks_get_the_loaders_index_under_any_name(tmp_path):
    # Lightning 2.6.6 checks the module's hooks for a `dataloader_idx` parameter, and passes a callback's the
    # index positionally (measured: on_validation_batch_start(self, t, m, b, i, k=0) gets k = 0, 0, 1, 1 for
    # two loaders). Here such a callback was refused: "takes no dataloader_idx".
    seen = IndexUnderAnotherName()
    trainer(tmp_path, callbacks=[seen]).validate(LogsPerLoader(), val_sets())
    batches = [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1)]
    assert seen.seen == [(hook, i, k) for i, k in batches for hook in ("start", "end")]


def test_several_validation_loaders_refuse_what_lightning_refuses(tmp_path):
    # Lightning 2.6.6: "You called `self.log(same, ...)` twice in `validation_step` with different
    # arguments" and "You provided multiple `val_dataloader`, but no `dataloader_idx` argument".
    with pytest.raises(
        ValueError, match=r"'same' was logged with add_dataloader_idx=False from loaders 0 and 1"
    ):
        trainer(tmp_path).validate(LogsOneNameFromEachLoader(), val_sets())
    with pytest.raises(TypeError, match=r"validation_step\(self, batch, batch_idx\) takes no dataloader_idx"):
        trainer(tmp_path, max_epochs=1).fit(ValidatesWithoutTheLoaderIndex(), make_batches(8), val_sets())


class PredictsIds(TinyClassifier):
    """Predicts each batch's ids, noting the (batch_idx, dataloader_idx) its batch hook gets."""

    def __init__(self):
        super().__init__()
        self._seen = []

    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        return batch[1]

    def on_predict_batch_end(self, outputs, batch, batch_idx, dataloader_idx=0):
        self._seen.append((batch_idx, dataloader_idx))


class WritesAtTheEnd(BasePredictionWriter):
    def __init__(self):
        super().__init__("batch_and_epoch")
        self.batches, self.at_end = [], None

    def write_on_batch_end(
        self, trainer, module, prediction, batch_indices, batch, batch_idx, dataloader_idx
    ):
        self.batches.append((batch_idx, dataloader_idx, list(batch_indices)))

    def write_on_epoch_end(self, trainer, module, predictions, batch_indices):
        self.at_end = ([len(p) for p in predictions], [[list(i) for i in b] for b in batch_indices])


@pytest.mark.parametrize("compile", [False, True])
@pytest.mark.parametrize("as_dict", [False, True])
def test_several_prediction_loaders_are_predicted_in_turn_as_lightning_does(tmp_path, compile, as_dict):
    # It refused them ("dataloaders is a list of 2 loaders; each stage takes one loader"). Lightning 2.6.6,
    # measured with the same sets (/tmp/s79/multival/lt_job.py): each loader in turn, its index passed as
    # dataloader_idx to the step, the batch hooks and the writer; a list of each loader's outputs.
    model, writer = PredictsIds(), WritesAtTheEnd()
    t = trainer(tmp_path, compile=compile, callbacks=[writer])
    loaders = dict(zip(("clean", "noisy"), val_sets(), strict=True)) if as_dict else val_sets()
    out = t.predict(model, loaders)
    assert [[np.asarray(b).tolist() for b in each] for each in out] == [
        [[100, 101], [102, 103], [104, 105]],
        [[200, 201], [202, 203]],
    ]
    assert model._seen == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1)]
    assert t.num_predict_batches == [3, 2]
    assert writer.batches == [(0, 0, [0, 1]), (1, 0, [2, 3]), (2, 0, [4, 5]), (0, 1, [0, 1]), (1, 1, [2, 3])]
    assert writer.at_end == ([3, 2], [[[0, 1], [2, 3], [4, 5]], [[0, 1], [2, 3]]])
    assert t.predict(model, val_sets(), return_predictions=False) is None


def test_a_prediction_loader_alone_in_a_list_is_that_loader(tmp_path):
    # As Lightning 2.6.6's: the outputs of its batches, no dataloader_idx passed, num_predict_batches 3.
    model = PredictsIds()
    out = trainer(tmp_path).predict(model, val_sets()[:1])
    assert [np.asarray(b).tolist() for b in out] == [[100, 101], [102, 103], [104, 105]]
    assert model._seen == [(0, 0), (1, 0), (2, 0)]


def test_nested_prediction_loaders_are_each_a_loader_with_its_index(tmp_path):
    # Lightning 2.6.6, predict(model, {"a": first, "b": [second, first]}): three loaders, dataloader_idx 0, 1
    # and 2 in that order (here the inner list was read as one loader, whose batches were loaders).
    first, second = val_sets()
    model = PredictsIds()
    out = trainer(tmp_path).predict(model, {"a": first, "b": [second, val_sets()[0]]})
    assert [[np.asarray(b).tolist() for b in loader] for loader in out] == [
        [[100, 101], [102, 103], [104, 105]],
        [[200, 201], [202, 203]],
        [[100, 101], [102, 103], [104, 105]],
    ]
    assert model._seen == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (0, 2), (1, 2), (2, 2)]


class PredictsWithoutTheLoaderIndex(TinyClassifier):
    def predict_step(self, batch, batch_idx):
        return batch[1]


class PredictionsFromTwoSets(DataModule):
    def predict_dataloader(self):
        return {"clean": val_sets()[0], "noisy": val_sets()[1]}


def test_several_prediction_loaders_need_a_step_that_takes_dataloader_idx(tmp_path):
    # As Lightning's "You provided multiple `predict_dataloader`, but no `dataloader_idx` argument in
    # `predict_step()`", before a batch, instead of "takes 3 positional arguments but 4 were given".
    with pytest.raises(
        TypeError,
        match=r"PredictsWithoutTheLoaderIndex.predict_step\(self, batch, batch_idx\) takes no dataloader_idx",
    ):
        trainer(tmp_path).predict(PredictsWithoutTheLoaderIndex(), datamodule=PredictionsFromTwoSets())
    out = trainer(tmp_path).predict(PredictsIds(), datamodule=PredictionsFromTwoSets())
    assert [len(each) for each in out] == [3, 2]


def test_a_combined_loader_given_to_an_evaluation_stage_takes_lightnings_sequential_mode_alone(tmp_path):
    """predict(model, CombinedLoader({...}, "sequential")) failed at the first batch with "TypeError: batch[1] is
    a int, but batch leaves must be mx.array". Lightning 2.6.6's evaluation stages take that mode (each loader
    in turn, as a list of loaders) and refuse the others."""
    x, y = make_data(8)
    sets = {
        "clean": DataLoader(list(zip(x, y)), batch_size=2),
        "noisy": DataLoader(list(zip(x, y)), batch_size=4),
    }
    for mode in ("max_size_cycle", "min_size", "max_size"):
        with pytest.raises(
            TypeError, match=f'dataloaders is a CombinedLoader in mode "{mode}".*"sequential"'
        ):
            trainer(tmp_path).predict(PredictsIds(), CombinedLoader(sets, mode))
        with pytest.raises(TypeError, match=f'val_loader is a CombinedLoader in mode "{mode}"'):
            trainer(tmp_path).validate(TinyClassifier(), CombinedLoader(sets, mode))
    out = trainer(tmp_path).predict(PredictsIds(), CombinedLoader(sets, "sequential"))
    assert [len(each) for each in out] == [4, 2]


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


def test_two_shuffled_training_loaders_of_one_size_do_not_shuffle_alike(tmp_path):
    # Each took the Trainer's seed as it is: two sets of 8 were read in the same order, so sample i of one
    # was paired with sample i of the other in every epoch.
    from audiotrain import seed_everything

    seed_everything(0)
    a = DataLoader([(np.zeros(4, np.float32), i) for i in range(8)], batch_size=2, shuffle=True)
    b = DataLoader([(np.zeros(4, np.float32), i) for i in range(100, 108)], batch_size=2, shuffle=True)
    model = RecordsSteps()
    trainer(tmp_path, max_epochs=1).fit(model, {"a": a, "b": b})
    order_a = [i for seen in model._seen for i in seen[0]["a"]]
    order_b = [i - 100 for seen in model._seen for i in seen[0]["b"]]
    assert sorted(order_a) == sorted(order_b) == list(range(8))
    assert order_a != order_b
    assert b.seed == a.seed + 1


def test_training_loaders_reused_after_a_resume_on_another_seed_take_a_sweeps_next_seed(tmp_path):
    # A resume by Trainer(seed=8) of a seed-7 run put the loaders back on 7 and 8 but left them noted as
    # seeded 8 and 9: the sweep's next fit, on seed 3, took 7 and 8 for seeds of the user's and trained
    # the old orders (one loader reused so takes 3).
    from audiotrain import seed_everything

    a = DataLoader([(np.zeros(4, np.float32), i) for i in range(8)], batch_size=2, shuffle=True)
    b = DataLoader([(np.zeros(4, np.float32), i) for i in range(100, 108)], batch_size=2, shuffle=True)
    kw = dict(default_root_dir=tmp_path, enable_progress_bar=False, logger=False)
    seed_everything(7)
    first = Trainer(max_epochs=1, **kw)
    first.fit(RecordsSteps(), {"a": a, "b": b})
    with pytest.warns(UserWarning, match="was trained with seed 7; this Trainer's is 8"):
        Trainer(max_epochs=2, seed=8, **kw).fit(
            RecordsSteps(), {"a": a, "b": b}, ckpt_path=first.checkpoint_callback.last_model_path
        )
    assert (a.seed, b.seed) == (7, 8)
    seed_everything(3)
    trainer(tmp_path / "sweep", max_epochs=1).fit(RecordsSteps(), {"a": a, "b": b})
    assert (a.seed, b.seed) == (3, 4)
