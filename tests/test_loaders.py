"""What the Trainer accepts as loaders and batches (audiotrain/train/loaders.py), from the user's side."""

import audiotrain  # noqa: F401  (before mlx)
from audiotrain import Trainer

import mlx.core as mx
import numpy as np
import pytest
from tasks import TinyClassifier, make_batches


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
    from audiotrain import DataLoader

    x, y = np.zeros((8, 8), np.float32), np.zeros(8, np.int32)
    val = DataLoader(list(zip(x, y, strict=True)), batch_size=4)
    t = trainer(tmp_path, max_epochs=1)
    match = r"val_loader is a dict of 2 loaders \('clean', 'noisy'\); one loader is supported"
    with pytest.raises(TypeError, match=match):
        t.fit(TinyClassifier(), make_batches(16), {"clean": val, "noisy": val})
    with pytest.raises(TypeError, match="test_loader is a dict of 2 loaders"):
        t.test(TinyClassifier(), {"clean": val, "noisy": val})
    with pytest.raises(
        TypeError, match=r"val_loader is a dict, whose iteration gives its keys.*\[batch\] for one"
    ):
        t.fit(TinyClassifier(), make_batches(16), {"x": mx.zeros((4, 8)), "y": mx.zeros(4, mx.int32)})
