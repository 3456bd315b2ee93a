"""CLAP (contrastive language-audio pretraining) in MLX: an exact port of transformers' ``ClapModel``.

>>> import audiotrain, mlx.core as mx
>>> from audiotrain.models.clap import load_pretrained, ClapFeatureExtractor, ClapTokenizer, save_pretrained
>>> model, config = load_pretrained("path/to/clap-htsat-unfused")       # or a hub id, when online
>>> tokens = ClapTokenizer.from_pretrained(config.source)(["a dog barks"])
>>> text = model.get_text_features(mx.array(tokens["input_ids"]), mx.array(tokens["attention_mask"]))
>>> front_end = ClapFeatureExtractor.from_pretrained(config.source)
>>> features = front_end(waves, sampling_rate=48000, train=False, return_tensors="mlx")
>>> embeds = model.get_audio_features(features["input_features"], features["is_longer"])  # (is_longer: fused)
>>> save_pretrained(model, config, "run/hf_export")   # loads with transformers.ClapModel.from_pretrained
>>> clap = CLAP()   # the tutorial's class: laion/clap-htsat-unfused with audio_encoder, text_encoder, ...

Parity with transformers is checked by tests/test_clap_model.py against fixtures made by
scripts/make_clap_fixture.py (tiny committed; fused and full-size built where torch + transformers are installed).
"""

from audiotrain.features.clap import ClapFeatureExtractor
from audiotrain.models.clap.clap import CLAP, DEFAULT_CHECKPOINT, mel_to_model_layout
from audiotrain.models.clap.config import ClapAudioConfig, ClapConfig, ClapConfigError, ClapTextConfig
from audiotrain.models.clap.convert import CONVERSION_TABLE, StateDictError
from audiotrain.models.clap.export import save_pretrained
from audiotrain.models.clap.loading import CheckpointError, load_pretrained
from audiotrain.models.clap.model import ClapModel
from audiotrain.models.clap.roberta import check_token_ids
from audiotrain.models.clap.tokenizer import ClapTokenizer, TokenizerError
from audiotrain.models.clap.torch_bin import (
    TorchCheckpointError,
    UnsafeCheckpointError,
    load_torch_state_dict,
)

__all__ = [
    "CLAP",
    "CONVERSION_TABLE",
    "CheckpointError",
    "ClapAudioConfig",
    "ClapConfig",
    "ClapConfigError",
    "ClapFeatureExtractor",
    "ClapModel",
    "ClapTextConfig",
    "ClapTokenizer",
    "DEFAULT_CHECKPOINT",
    "StateDictError",
    "TokenizerError",
    "TorchCheckpointError",
    "UnsafeCheckpointError",
    "check_token_ids",
    "load_pretrained",
    "load_torch_state_dict",
    "mel_to_model_layout",
    "save_pretrained",
]
