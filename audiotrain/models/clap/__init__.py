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

from typing import TYPE_CHECKING

from audiotrain._lazy import lazy_attributes

# Imported on first use: `from audiotrain.models.clap.torch_bin import ...` (the chords commands' checkpoint
# errors) ran this __init__ and loaded every CLAP model module, ~0.2 s of each chords command's start.
_PUBLIC = {
    "CLAP": "audiotrain.models.clap.clap",
    "CONVERSION_TABLE": "audiotrain.models.clap.convert",
    "CheckpointError": "audiotrain.models.clap.loading",
    "ClapAudioConfig": "audiotrain.models.clap.config",
    "ClapConfig": "audiotrain.models.clap.config",
    "ClapConfigError": "audiotrain.models.clap.config",
    "ClapFeatureExtractor": "audiotrain.features.clap",
    "ClapModel": "audiotrain.models.clap.model",
    "ClapTextConfig": "audiotrain.models.clap.config",
    "ClapTokenizer": "audiotrain.models.clap.tokenizer",
    "DEFAULT_CHECKPOINT": "audiotrain.models.clap.clap",
    "StateDictError": "audiotrain.models.clap.convert",
    "TokenizerError": "audiotrain.models.clap.tokenizer",
    "TorchCheckpointError": "audiotrain.models.clap.torch_bin",
    "UnsafeCheckpointError": "audiotrain.models.clap.torch_bin",
    "check_token_ids": "audiotrain.models.clap.roberta",
    "load_pretrained": "audiotrain.models.clap.loading",
    "load_torch_state_dict": "audiotrain.models.clap.torch_bin",
    "mel_to_model_layout": "audiotrain.models.clap.clap",
    "save_pretrained": "audiotrain.models.clap.export",
}

if TYPE_CHECKING:
    # Spelled out for type checkers and editors, which do not run `__getattr__` (tests/test_typing.py).
    from audiotrain.features.clap import ClapFeatureExtractor as ClapFeatureExtractor
    from audiotrain.models.clap.clap import CLAP as CLAP
    from audiotrain.models.clap.clap import DEFAULT_CHECKPOINT as DEFAULT_CHECKPOINT
    from audiotrain.models.clap.clap import mel_to_model_layout as mel_to_model_layout
    from audiotrain.models.clap.config import ClapAudioConfig as ClapAudioConfig
    from audiotrain.models.clap.config import ClapConfig as ClapConfig
    from audiotrain.models.clap.config import ClapConfigError as ClapConfigError
    from audiotrain.models.clap.config import ClapTextConfig as ClapTextConfig
    from audiotrain.models.clap.convert import CONVERSION_TABLE as CONVERSION_TABLE
    from audiotrain.models.clap.convert import StateDictError as StateDictError
    from audiotrain.models.clap.export import save_pretrained as save_pretrained
    from audiotrain.models.clap.loading import CheckpointError as CheckpointError
    from audiotrain.models.clap.loading import load_pretrained as load_pretrained
    from audiotrain.models.clap.model import ClapModel as ClapModel
    from audiotrain.models.clap.roberta import check_token_ids as check_token_ids
    from audiotrain.models.clap.tokenizer import ClapTokenizer as ClapTokenizer
    from audiotrain.models.clap.tokenizer import TokenizerError as TokenizerError
    from audiotrain.models.clap.torch_bin import TorchCheckpointError as TorchCheckpointError
    from audiotrain.models.clap.torch_bin import UnsafeCheckpointError as UnsafeCheckpointError
    from audiotrain.models.clap.torch_bin import load_torch_state_dict as load_torch_state_dict

__all__ = list(_PUBLIC)

# Hidden from type checkers, which would take any name from a module `__getattr__` (a typo included).
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_attributes(__name__, _PUBLIC)
