"""What the feature functions return, as a checker sees it: ``backend="mlx"`` (the default) an
``mx.array``, ``backend="numpy"`` an ``np.ndarray``, whatever array the signal comes as;
``power_to_db`` the type it is given; ``chroma_cqt(C=...)`` the type of ``C``."""

from audiotrain import features

import mlx.core as mx
import numpy as np
from typing_extensions import assert_type

y = np.zeros(22050, dtype=np.float32)
y_mx = mx.array(y)

assert_type(features.cqt(y), mx.array)
assert_type(features.cqt(y, 22050, backend="numpy"), np.ndarray)
assert_type(features.cqt(y_mx, backend="mlx"), mx.array)
assert_type(features.hcqt(y, backend="numpy"), np.ndarray)
assert_type(features.hcqt(y_mx), mx.array)
assert_type(features.stft(y, n_fft=512), mx.array)
assert_type(features.stft(y_mx, backend="numpy"), np.ndarray)
assert_type(features.spectrogram(y), mx.array)
assert_type(features.spectrogram(y, backend="numpy"), np.ndarray)
assert_type(features.melspectrogram(y, sr=22050), mx.array)
assert_type(features.melspectrogram(y, backend="numpy"), np.ndarray)
assert_type(features.chroma_cqt(y), mx.array)
assert_type(features.chroma_cqt(y, backend="numpy"), np.ndarray)
assert_type(features.chroma_cqt(None, C=np.ones((84, 10))), np.ndarray)
assert_type(features.chroma_cqt(None, C=mx.ones((84, 10))), mx.array)
assert_type(features.chroma_cqt(C=np.ones((84, 10))), np.ndarray)
assert_type(features.chroma_cqt(C=mx.ones((84, 10))), mx.array)
assert_type(features.power_to_db(features.melspectrogram(y)), mx.array)
assert_type(features.power_to_db(features.melspectrogram(y, backend="numpy")), np.ndarray)


def from_settings(backend: str) -> None:
    # A backend only known at run time: either array.
    assert_type(features.cqt(y, backend=backend), mx.array | np.ndarray)
    assert_type(features.melspectrogram(y, backend=backend), mx.array | np.ndarray)


features.cqt(y).tolist()
features.cqt(y, backend="numpy").astype(np.float16)
features.melspectrogram(y, hop_length="512")  # type: ignore[call-overload]
