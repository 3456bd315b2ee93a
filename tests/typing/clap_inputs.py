"""CLAP's `get_text_features`, `get_audio_features` and `CLAP(...)` take mx.arrays or the numpy arrays
`ClapTokenizer` and `ClapFeatureExtractor` return."""

from audiotrain.models.clap import CLAP, ClapFeatureExtractor, ClapTokenizer

import mlx.core as mx
import numpy as np
from typing_extensions import assert_type


def embed(model: CLAP) -> None:
    ids, mask = np.zeros((1, 8), np.int64), np.ones((1, 8), np.int64)
    mel = np.zeros((1, 1, 1001, 64), np.float32)
    assert_type(model.get_text_features(ids, mask), mx.array)
    assert_type(model.get_audio_features(mel), mx.array)
    assert_type(model.get_text_features(mx.array(ids)), mx.array)
    assert_type(model(audio=mel, input_ids=ids, attention_mask=mask), dict[str, mx.array])
    model.get_text_features([[0, 1, 2]])  # type: ignore[arg-type]


def inputs(tokenizer: ClapTokenizer, front_end: ClapFeatureExtractor) -> None:
    # The arrays `return_tensors` asks for: "mlx" MLX arrays, None or "np" numpy arrays.
    audio = np.zeros(48000, np.float32)
    assert_type(tokenizer(["a dog"], return_tensors="mlx")["input_ids"], mx.array)
    assert_type(tokenizer(["a dog"])["input_ids"], np.ndarray)
    assert_type(front_end(audio, sampling_rate=48000, return_tensors="mlx")["input_features"], mx.array)
    assert_type(front_end(audio, sampling_rate=48000, return_tensors="np")["input_features"], np.ndarray)
