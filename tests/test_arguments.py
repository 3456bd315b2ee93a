"""Wrong types given to the Python API are refused with a message naming the argument and what it takes,
where pathlib, str.format or numpy answered with an error that names none."""

import audiotrain  # noqa: F401  (loads the BLAS before mlx)
from audiotrain import DataModule, Trainer
from audiotrain.metrics import compute_topk_accuracy
from audiotrain.models.clap import load_pretrained
from audiotrain.train import CSVLogger, ModelCheckpoint

import mlx.core as mx
import pytest
from tasks import TinyClassifier, make_batches


class Batches(DataModule):
    def train_dataloader(self):
        return make_batches(16)


CASES = {
    "Trainer default_root_dir": (
        lambda: Trainer(default_root_dir=123),
        TypeError,
        r"Trainer\(default_root_dir=123\): expected a path \(a str or os.PathLike\), got int",
    ),
    "Trainer callbacks not a list": (
        lambda: Trainer(callbacks=object()),
        TypeError,
        r"Trainer\(callbacks=<object .*>\): expected a Callback, a list of Callbacks or None",
    ),
    "Trainer callbacks a str": (
        lambda: Trainer(callbacks="ModelCheckpoint"),
        TypeError,
        r"Trainer\(callbacks='ModelCheckpoint'\): expected a Callback",
    ),
    "CSVLogger save_dir None": (
        lambda: CSVLogger(None),
        TypeError,
        r"CSVLogger\(save_dir=None\): expected a path",
    ),
    "ModelCheckpoint dirpath": (
        lambda: ModelCheckpoint(dirpath=123),
        TypeError,
        r"ModelCheckpoint\(dirpath=123\): expected a path",
    ),
    "ModelCheckpoint filename unclosed brace": (
        lambda: ModelCheckpoint(filename="{epoch"),
        ValueError,
        r"ModelCheckpoint\(filename='\{epoch'\): not a str.format template "
        r"\(expected '\}' before end of string\)",
    ),
    "ModelCheckpoint filename not a str": (
        lambda: ModelCheckpoint(filename=7),
        TypeError,
        r"ModelCheckpoint\(filename=7\): expected a str.format template",
    ),
    "fit datamodule class": (
        lambda: Trainer(max_epochs=1, enable_progress_bar=False).fit(TinyClassifier(), datamodule=Batches),
        TypeError,
        r"Trainer.fit\(datamodule=...\): got the class Batches, not an instance of it: pass Batches\(...\)",
    ),
    "fit datamodule class in the loader's place": (
        lambda: Trainer(max_epochs=1, enable_progress_bar=False).fit(TinyClassifier(), Batches),
        TypeError,
        r"got the class Batches, not an instance of it",
    ),
    "load_pretrained None": (
        lambda: load_pretrained(None),
        TypeError,
        r"load_pretrained\(path_or_hub_id=None\): expected a path",
    ),
    "top-k accuracy of nothing": (
        lambda: compute_topk_accuracy(mx.zeros((0, 5)), mx.zeros((0,), mx.int32)),
        ValueError,
        r"compute_topk_accuracy: targets is empty \(scores \(0, 5\), targets \(0,\)\); expected at least one",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_wrong_argument_is_named_with_what_it_takes(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # (a Trainer's default ./logs would land here)
    call, error, message = CASES[name]
    with pytest.raises(error, match=message):
        call()
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_an_empty_top_k_is_refused_but_all_ignored_targets_still_give_nan():
    all_ignored = compute_topk_accuracy(mx.zeros((2, 5)), mx.array([-1, -1]))
    assert all_ignored != all_ignored  # NaN: no target left, as documented
