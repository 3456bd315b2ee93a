"""Trainer.predict streams its outputs out as Lightning's does: the predict hooks run around each batch,
a `BasePredictionWriter` writes each output, and with `return_predictions=False` none is kept."""

import gc
import textwrap
import weakref
from pathlib import Path

from audiotrain import DataLoader
from audiotrain.train import BasePredictionWriter, Callback
from audiotrain.train.callbacks import BasePredictionWriter as FromCallbacks

import numpy as np
import pytest
from tasks import TinyClassifier, make_batches, make_data, quiet_trainer

HOOKS = [
    "on_predict_start",
    "on_predict_epoch_start",
    "on_predict_batch_start",
    "on_predict_batch_end",
    "on_predict_epoch_end",
    "on_predict_end",
]


class Logits(TinyClassifier):
    def predict_step(self, batch, batch_idx=None):
        return self(batch[0])


class Writer(BasePredictionWriter):
    """Writes each batch's output (as numpy) and notes which outputs are still alive as it goes."""

    def __init__(self, write_interval="batch"):
        super().__init__(write_interval)
        self.written, self.alive_at, self.refs, self.at_end = {}, [], [], None

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx
    ):
        assert batch_indices is None and dataloader_idx == 0
        self.written[batch_idx] = np.array(prediction)
        self.refs.append(weakref.ref(prediction))
        gc.collect()
        self.alive_at.append(sum(r() is not None for r in self.refs))

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices):
        self.at_end = ([np.array(p) for p in predictions], batch_indices)


def test_a_batch_writer_gets_every_output_and_return_predictions_false_keeps_none(tmp_path):
    batches = make_batches(96, 16)
    model = Logits()
    expected = [np.array(p) for p in quiet_trainer(tmp_path).predict(model, batches)]
    writer = Writer()
    assert (
        quiet_trainer(tmp_path, callbacks=[writer]).predict(model, batches, return_predictions=False) is None
    )
    assert sorted(writer.written) == list(range(6))
    for i, out in enumerate(expected):
        np.testing.assert_allclose(writer.written[i], out, rtol=1e-6)
    # Each output is dropped once written: only the one being written is alive, however many went by.
    assert writer.alive_at == [1] * 6
    gc.collect()
    assert [r() for r in writer.refs] == [None] * 6


def test_an_epoch_writer_gets_all_outputs_at_the_end_without_them_being_returned(tmp_path):
    batches = make_batches(48, 16)
    model = Logits()
    expected = [np.array(p) for p in quiet_trainer(tmp_path).predict(model, batches)]
    writer = Writer("epoch")
    assert (
        quiet_trainer(tmp_path, callbacks=[writer]).predict(model, batches, return_predictions=False) is None
    )
    predictions, batch_indices = writer.at_end
    assert writer.written == {} and [p.shape for p in predictions] == [(16, 3)] * 3
    for got, out in zip(predictions, expected, strict=True):  # each batch's output, in the batches' order
        np.testing.assert_allclose(got, out, rtol=1e-6)
    assert batch_indices == [[None, None, None]]  # (Lightning's shape: loaders x batches)


def test_a_writer_overriding_write_on_batch_end_alone_writes_each_batch_by_default(tmp_path):
    # The docstring's example: the default write_interval is "batch", and nothing asks for an epoch write.
    class BatchesOnly(BasePredictionWriter):
        def __init__(self):
            super().__init__()
            self.batch_idxs = []

        def write_on_batch_end(
            self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx
        ):
            self.batch_idxs.append(batch_idx)

    writer = BatchesOnly()
    trainer = quiet_trainer(tmp_path, callbacks=[writer])
    assert trainer.predict(Logits(), make_batches(48, 16), return_predictions=False) is None
    assert writer.batch_idxs == [0, 1, 2]


def test_predict_hooks_run_in_lightnings_order_on_callbacks_then_module(tmp_path):
    calls = []

    class Recorder(Callback):
        pass

    class Recorded(Logits):
        pass

    for name in HOOKS:
        setattr(
            Recorder, name, lambda self, trainer, module, *args, n=name: calls.append(("callback", n, args))
        )
        setattr(Recorded, name, lambda self, *args, n=name: calls.append(("module", n, args)))
    batches = make_batches(32, 16)
    out = quiet_trainer(tmp_path, callbacks=[Recorder()]).predict(Recorded(), batches)
    names = [(who, hook) for who, hook, _ in calls]
    expected = [(w, h) for h in HOOKS[:2] for w in ("callback", "module")]
    expected += [(w, h) for _ in range(2) for h in HOOKS[2:4] for w in ("callback", "module")]
    expected += [(w, h) for h in HOOKS[4:] for w in ("callback", "module")]
    assert names == expected
    batch_end = [args for who, hook, args in calls if hook == "on_predict_batch_end" and who == "callback"]
    assert [(args[0] is out[i], args[1] is batches[i], args[2]) for i, args in enumerate(batch_end)] == [
        (True, True, 0),
        (True, True, 1),
    ]


def test_a_write_interval_lightning_has_not_is_refused_with_the_choices():
    with pytest.raises(
        ValueError, match=r"write_interval must be one of \['batch', 'epoch', 'batch_and_epoch'\]"
    ):
        Writer("step")
    assert FromCallbacks is BasePredictionWriter
    assert Writer("batch_and_epoch").interval.on_batch and Writer("batch_and_epoch").interval.on_epoch


class IndexWriter(BasePredictionWriter):
    """Notes the indices each hook gets beside the ids the batch's samples carry."""

    def __init__(self):
        super().__init__("batch_and_epoch")
        self.per_batch, self.at_end = [], None

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx
    ):
        self.per_batch.append((batch_indices, np.array(batch[1]).tolist()))

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices):
        self.at_end = batch_indices


def _samples(n):
    x = np.random.default_rng(0).normal(size=(n, 8)).astype(np.float32)
    return [(x[i], np.int32(i)) for i in range(n)]  # each sample carries its index as its id


@pytest.mark.parametrize(
    "loader_args",
    [
        {"batch_size": 3},
        {"batch_size": 3, "shuffle": True, "seed": 5},
        {"batch_sampler": [[4, 1], [0, 6, 2]]},
    ],
    ids=["in order", "shuffled", "batch_sampler"],
)
def test_a_writer_gets_the_dataset_indices_of_each_batchs_samples(tmp_path, loader_args):
    # batch_indices was always None: a writer could not say which sample a prediction was for.
    writer = IndexWriter()
    loader = DataLoader(_samples(7), **loader_args)
    quiet_trainer(tmp_path, callbacks=[writer]).predict(Logits(), loader, return_predictions=False)
    assert writer.per_batch and all(indices == ids for indices, ids in writer.per_batch), writer.per_batch
    every = [0, 1, 2, 4, 6] if "batch_sampler" in loader_args else list(range(7))
    assert sorted(i for indices, _ in writer.per_batch for i in indices) == every
    # (Lightning's shape at the epoch's end: one list for the loader, of one entry per batch)
    assert writer.at_end == [[indices for indices, _ in writer.per_batch]]
    if loader_args.get("shuffle"):
        assert [i for indices, _ in writer.per_batch for i in indices] != list(range(7))


def test_a_writer_gets_no_indices_for_an_iterable_dataset(tmp_path):
    class Stream:
        def __iter__(self):
            return iter(_samples(5))

    writer = IndexWriter()
    loader = DataLoader(Stream(), batch_size=2)
    quiet_trainer(tmp_path, callbacks=[writer]).predict(Logits(), loader, return_predictions=False)
    assert [indices for indices, _ in writer.per_batch] == [None] * 3
    assert writer.at_end == [[None] * 3]


def test_a_write_on_batch_end_without_dataloader_idx_is_refused_before_the_first_batch(tmp_path):
    """A writer's write_on_batch_end written without `dataloader_idx` failed at the first batch with a bare
    "takes 7 positional arguments but 8 were given"; now predict refuses it before any batch, naming it."""
    calls = []

    class Writer(BasePredictionWriter):
        def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx):
            calls.append(batch_idx)

    class Counting(TinyClassifier):
        def predict_step(self, batch, batch_idx):
            calls.append(("step", batch_idx))
            return self(batch[0])

    t = quiet_trainer(tmp_path, callbacks=[Writer("batch")])
    with pytest.raises(
        TypeError, match=r"Writer\.write_on_batch_end\(.*batch_idx\) cannot take.*dataloader_idx"
    ):
        t.predict(Counting(), make_batches(32), return_predictions=False)
    assert calls == []


def test_a_writer_whose_init_skips_the_base_init_is_refused_naming_write_interval(tmp_path):
    """A writer with its own __init__ that did not call super().__init__(write_interval) failed at the first
    batch with a bare "'Writer' object has no attribute 'interval'"; now predict refuses it as it starts."""

    class Writer(BasePredictionWriter):
        def __init__(self, folder):
            self.folder = folder

        def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, idx):
            pass

    t = quiet_trainer(tmp_path, callbacks=[Writer(tmp_path)])
    with pytest.raises(TypeError, match=r"Writer has no write_interval.*super\(\).__init__\(write_interval="):
        t.predict(Logits(), make_batches(32))


@pytest.mark.serial
def test_the_docstrings_embedding_writer_keeps_every_ranks_predictions(tmp_path):
    # The class docstring's example named its files by batch_idx alone: under 2 ranks, each rank's batch 0
    # went to 0.npy, rank 1's replacing rank 0's, and half of the embeddings for a retrieval index were lost.
    from distributed import run_ranks

    doc = BasePredictionWriter.__doc__
    example = textwrap.dedent(doc[doc.index("Example::") + len("Example::") :])
    example = example.replace('"embeddings"', repr(str(tmp_path)))
    code = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
import audiotrain
import numpy as np
from audiotrain import DataLoader
from audiotrain.train.callbacks import BasePredictionWriter
from tasks import make_data
from test_prediction_writer import Logits

x, y = make_data(12)
loader = DataLoader([(x[i], y[i]) for i in range(12)], batch_size=4)
model = Logits()
Trainer = lambda **kw: audiotrain.Trainer(enable_progress_bar=False, logger=False, **kw)
{example}
"""
    results = run_ranks(code, 2, timeout=120, cwd=tmp_path)
    assert all(r.returncode == 0 for r in results), [r.stderr[-2000:] for r in results]
    saved = [np.load(f) for f in sorted(tmp_path.glob("*.np[yz]"))]
    rows = [s if isinstance(s, np.ndarray) else s["prediction"] for s in saved]
    assert sum(len(r) for r in rows) == 12  # (the old example's files held 6: rank 1's replaced rank 0's)
    assert sorted(int(i) for s in saved for i in s["indices"]) == list(range(12))


def test_the_docstrings_embedding_writer_runs_as_written_into_a_folder_that_is_not_there_yet(
    tmp_path, monkeypatch
):
    # Copied verbatim, the example wrote into "embeddings" without making it: the first batch failed with
    # numpy's raw "FileNotFoundError: ... 'embeddings/rank0-0.npz'".
    doc = BasePredictionWriter.__doc__
    example = textwrap.dedent(doc[doc.index("Example::") + len("Example::") :])
    monkeypatch.chdir(tmp_path)
    x, y = make_data(10)
    namespace = {
        "BasePredictionWriter": BasePredictionWriter,
        "model": Logits(),
        "loader": DataLoader([(x[i], y[i]) for i in range(10)], batch_size=4),
        "Trainer": lambda **kw: quiet_trainer(tmp_path, **kw),
    }
    exec(compile(example, "BasePredictionWriter.__doc__", "exec"), namespace)
    saved = [np.load(f) for f in sorted((tmp_path / "embeddings").glob("*.npz"))]
    assert sum(len(s["prediction"]) for s in saved) == 10
