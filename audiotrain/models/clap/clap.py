"""``CLAP``: the pre-trained CLAP model under the names of the tutorial (seed 001), on :class:`ClapModel`.

>>> from audiotrain.models.clap import CLAP
>>> clap = CLAP()                                   # laion/clap-htsat-unfused: Hugging Face cache, or the hub
>>> clap = CLAP.from_pretrained("path/to/folder")   # any CLAP checkpoint folder (or hub id)
>>> out = clap(mel, input_ids, attention_mask)      # {"logits_per_audio", "logits_per_text", "audio_embeds", ...}
>>> clap.audio_encoder.freeze(); clap.text_encoder.freeze()

``CLAP`` *is* a :class:`ClapModel` (a subclass, same parameter tree, so :func:`save_pretrained` exports it for
transformers); ``audio_encoder`` / ``text_encoder`` are its two towers (``audio_model`` / ``text_model``) and
``audio_projection`` / ``text_projection`` its projections, not copies.
"""

from __future__ import annotations

from pathlib import Path

from audiotrain.models.clap.config import ClapConfig
from audiotrain.models.clap.loading import (
    CheckpointError,
    check_links,
    load_weights,
    read_config,
    resolve_checkpoint,
)
from audiotrain.models.clap.model import ClapModel, _refuse_transformers_order, model_input

import mlx.core as mx
import mlx.nn as nn
import numpy as np

#: What ``CLAP()`` loads: the unfused LAION checkpoint transformers' CLAP examples use (64 mel bins, 48 kHz).
DEFAULT_CHECKPOINT = "laion/clap-htsat-unfused"


def mel_to_model_layout(audio: mx.array, num_mel_bins: int) -> mx.array:
    """Log-mels as ``(batch, channels, frames, mel_bins)``, the layout :class:`ClapModel` reads.

    Accepted layouts (``M = num_mel_bins``, 64 for the LAION checkpoints):

    * ``(batch, 1, M, frames)``: mel bins before time, as seed 001 writes them (librosa's order);
    * ``(batch, 1, frames, M)``: transformers' ``ClapFeatureExtractor`` and
      :class:`audiotrain.features.clap.ClapFeatureExtractor`;
    * either without the channel axis (``(batch, M, frames)`` / ``(batch, frames, M)``).

    The layout is told apart by which axis has ``M`` entries. When both do (exactly ``M`` frames) the input is
    read as transformers' layout: pass a different number of frames (or transpose yourself) to avoid the tie.
    """
    if audio.ndim == 3:
        audio = audio[:, None]
    if audio.ndim != 4:
        raise ValueError(
            f"CLAP audio must be log-mels (batch, 1, {num_mel_bins}, frames) or (batch, 1, frames, "
            f"{num_mel_bins}), got shape {tuple(audio.shape)}"
        )
    if audio.shape[-1] == num_mel_bins:
        return audio
    if audio.shape[-2] == num_mel_bins:
        return audio.transpose(0, 1, 3, 2)
    raise ValueError(
        f"CLAP audio of shape {tuple(audio.shape)} has no axis of {num_mel_bins} mel bins (the checkpoint's "
        f"num_mel_bins); expected (batch, 1, {num_mel_bins}, frames) or (batch, 1, frames, {num_mel_bins}); "
        f"a front end makes as many as its feature_size (preprocessor_config.json): use {num_mel_bins}"
    )


def _resolve(path_or_id: str | Path, revision: str | None) -> Path:
    try:
        return resolve_checkpoint(path_or_id, revision)
    except CheckpointError as error:
        if str(path_or_id) != DEFAULT_CHECKPOINT:
            raise
        raise CheckpointError(
            f"CLAP(): cannot load the default checkpoint {DEFAULT_CHECKPOINT}. {error}\n"
            f"Download it once with network access: `hf download {DEFAULT_CHECKPOINT}` (or "
            f"`huggingface-cli download {DEFAULT_CHECKPOINT}`, or "
            f"huggingface_hub.snapshot_download('{DEFAULT_CHECKPOINT}')), which fills the Hugging Face cache "
            "(HF_HOME / HF_HUB_CACHE) that CLAP() reads offline; or pass a downloaded checkpoint folder "
            "(config.json + model.safetensors or pytorch_model.bin): CLAP('path/to/clap-htsat-unfused') or "
            "CLAP.from_pretrained('path/to/clap-htsat-unfused')."
        ) from None


class CLAP(ClapModel):
    """A pre-trained CLAP model with the tutorial's names and call.

    Parameters
    ----------
    pretrained : str or Path, optional
        A checkpoint folder (``config.json`` + weights) or a hub id; default :data:`DEFAULT_CHECKPOINT`, read
        from the Hugging Face cache when offline or when the hub cannot be reached, downloaded otherwise.
    config : ClapConfig, optional
        Build with random weights from this config instead of loading a checkpoint (``pretrained`` unused).
    dtype : mx.Dtype, numpy dtype or its name
        Parameter type of loaded weights: float32, float16, bfloat16 or float64 (anything else is refused
        naming it, before the weights are read).
    revision : str, optional
        Hub branch, tag or commit.

    Raises
    ------
    CheckpointError
        Nothing to load: for the default checkpoint, the message says how to download it and how to pass a
        local folder instead.
    """

    def __init__(
        self,
        pretrained: str | Path | None = None,
        *,
        config: ClapConfig | None = None,
        dtype: mx.Dtype = mx.float32,
        revision: str | None = None,
    ) -> None:
        folder = None
        if config is None:
            folder = _resolve(pretrained if pretrained is not None else DEFAULT_CHECKPOINT, revision)
            check_links(folder)  # as load_pretrained: nothing is read from outside the folder
            config = read_config(folder)
        super().__init__(config)
        if folder is not None:
            load_weights(self, folder, dtype)

    @classmethod
    def from_pretrained(
        cls, path_or_id: str | Path, dtype: mx.Dtype = mx.float32, revision: str | None = None
    ) -> CLAP:
        """Load any CLAP checkpoint: a local folder or a hub id (cache first when offline)."""
        return cls(path_or_id, dtype=dtype, revision=revision)

    # The tutorial's names for the parts of ClapModel (the same modules, not copies).
    @property
    def audio_encoder(self) -> nn.Module:
        """The HTSAT audio tower (``audio_model``): log-mels → pooled audio vector, before the projection."""
        return self.audio_model

    @property
    def text_encoder(self) -> nn.Module:
        """The RoBERTa text tower (``text_model``): token ids → hidden states and pooled vector."""
        return self.text_model

    def __call__(
        self,
        audio: mx.array | np.ndarray | None = None,
        input_ids: mx.array | np.ndarray | None = None,
        attention_mask: mx.array | np.ndarray | None = None,
        is_longer: mx.array | np.ndarray | None = None,
        *,
        input_features: mx.array | np.ndarray | None = None,
    ) -> dict[str, mx.array]:
        """Embed audio and/or text; with both, score every audio against every text.

        Parameters
        ----------
        audio : mx.array or np.ndarray, optional
            Log-mels in either layout of :func:`mel_to_model_layout`.
        input_ids, attention_mask : mx.array or np.ndarray, optional
            Token ids ``(B, L)`` and 0/1 mask ``(B, L)`` (RoBERTa's tokenizer: :class:`ClapTokenizer`).
        is_longer : mx.array or np.ndarray, optional
            Fused checkpoints only; see :meth:`ClapModel.get_audio_features`.
        input_features : mx.array or np.ndarray, optional
            ``audio`` under the name `ClapFeatureExtractor` (and transformers) gives it, so that
            ``model(**tokens, **features)`` works as with transformers' ``ClapModel``.

        Returns
        -------
        dict with ``audio_embeds`` (B_a, D) and/or ``text_embeds`` (B_t, D), unit norm; with both inputs also
        ``logits_per_audio`` (B_a, B_t) and ``logits_per_text`` (B_t, B_a), scaled by the learned temperatures.
        """
        if input_features is not None:
            # (the feature extractor's name: model(**tokens, **features) was "unexpected keyword argument")
            if audio is not None:
                raise ValueError("CLAP: pass the log-mels once, as audio or as input_features, not both")
            audio = input_features
        if audio is None and input_ids is None:
            raise ValueError("CLAP: pass audio (log-mels), input_ids, or both")
        # (transformers' order, clap(ids, features), or text alone as clap(ids), was "CLAP audio must be
        # log-mels ..., got shape (4, 77)", not saying that the token ids came first)
        _refuse_transformers_order(audio, input_ids, "CLAP", "audio")
        out: dict[str, mx.array] = {}
        if audio is not None:
            features = mel_to_model_layout(model_input(audio, "audio"), self.config.audio_config.num_mel_bins)
            out["audio_embeds"] = self.get_audio_features(features, is_longer)
        if input_ids is not None:
            out["text_embeds"] = self.get_text_features(input_ids, attention_mask)
        if len(out) == 2:
            audio_embeds, text_embeds = out["audio_embeds"], out["text_embeds"]
            out["logits_per_audio"] = (audio_embeds @ text_embeds.T) * mx.exp(self.logit_scale_a)
            out["logits_per_text"] = (text_embeds @ audio_embeds.T) * mx.exp(self.logit_scale_t)
        return out
