"""What the Trainer accepts as loaders and batches (audiotrain/train/loaders.py), from the user's side."""

import audiotrain  # noqa: F401  (before mlx)
from audiotrain import Trainer

import mlx.core as mx
import numpy as np
import pytest
from tasks import TinyClassifier


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
