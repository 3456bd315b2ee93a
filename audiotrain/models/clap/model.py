"""``ClapModel``: the HTSAT audio tower, the RoBERTa text tower, their projections and the two logit scales.

Parameter paths equal transformers' state-dict names (``audio_model.audio_encoder.layers.0.blocks.0...``,
``text_model.encoder.layer.0...``, ``logit_scale_a``), so loading and export are a 1:1 mapping (``convert.py``).
"""

from __future__ import annotations

import math

from audiotrain._thread_streams import clear_streams_when_thread_ends
from audiotrain.models.clap.config import ClapConfig
from audiotrain.models.clap.htsat import ClapAudioModel
from audiotrain.models.clap.layers import ClapProjection, model_input
from audiotrain.models.clap.roberta import ClapTextModel

import mlx.core as mx
import mlx.nn as nn
import numpy as np


def l2_normalize(x: mx.array, eps: float = 1e-12) -> mx.array:
    """``x / ||x||`` along the last axis (``F.normalize``; the eps only guards an all-zero vector)."""
    return x / mx.maximum(mx.sqrt(mx.sum(x * x, axis=-1, keepdims=True)), eps)


def _refuse_transformers_order(
    input_features: object, input_ids: object, who: str = "ClapModel", first: str = "input_features"
) -> None:
    """transformers' ``ClapModel.forward`` takes ``(input_ids, input_features, is_longer, attention_mask)``;
    this one ``(input_features, input_ids, ...)`` (`CLAP`: ``(audio, input_ids, ...)``, named by `who` and
    `first`). Token ids passed first (code ported from transformers) met "input_features must be (batch,
    channels, frames, mel_bins), got shape (2, 14)", which did not say that the arguments were swapped.
    Shapes and dtypes only: nothing is read, so it holds under mx.compile."""
    ids = getattr(input_features, "dtype", None)
    features = getattr(input_ids, "ndim", None)
    integer = ids is not None and (
        np.issubdtype(ids, np.integer) if isinstance(ids, np.dtype) else mx.issubdtype(ids, mx.integer)
    )
    if (integer and getattr(input_features, "ndim", None) == 2) or features == 4:
        given = "None" if input_ids is None else f"of shape {tuple(getattr(input_ids, 'shape', ()))}"
        raise ValueError(
            f"{who} got {first} of shape {tuple(getattr(input_features, 'shape', ()))} "
            f"({str(ids).rsplit('.', 1)[-1]}) and input_ids {given}: token ids and features swapped? "
            f"Its order is ({first}, input_ids, attention_mask, is_longer), transformers' forward "
            "(input_ids, input_features, is_longer, attention_mask); pass them by name: "
            f"model(**tokens, **features){' or model(input_ids=...) for text alone' if who == 'CLAP' else ''}"
        )


class ClapModel(nn.Module):
    """Contrastive language-audio model, an MLX port of ``transformers.ClapModel``.

    Parameters
    ----------
    config : ClapConfig
        Both towers' settings; see :meth:`ClapConfig.from_json` for reading a checkpoint's ``config.json``.

    Notes
    -----
    Build one with random weights (``ClapModel(config)``) or from a checkpoint with
    :func:`audiotrain.models.clap.load_pretrained`. All parameters are trainable ``mlx.nn`` parameters except the
    BatchNorm running statistics; ``freeze()`` a tower (``model.audio_model.freeze()``) to train the rest.
    """

    def __init__(self, config: ClapConfig) -> None:
        super().__init__()
        self.config = config
        init = math.log(config.logit_scale_init_value)
        self.logit_scale_a = mx.array(init, dtype=mx.float32)
        self.logit_scale_t = mx.array(init, dtype=mx.float32)
        self.text_model = ClapTextModel(config.text_config)
        self.text_projection = ClapProjection(
            config.text_config.hidden_size, config.projection_dim, config.projection_hidden_act
        )
        self.audio_model = ClapAudioModel(config.audio_config)
        self.audio_projection = ClapProjection(
            config.audio_config.hidden_size, config.projection_dim, config.projection_hidden_act
        )

    def get_audio_features(
        self, input_features: mx.array | np.ndarray, is_longer: mx.array | np.ndarray | None = None
    ) -> mx.array:
        """Unit-norm audio embeddings.

        Parameters
        ----------
        input_features : mx.array or np.ndarray, shape (B, C, frames, mel_bins), float
            Log-mel features from :class:`audiotrain.features.clap.ClapFeatureExtractor` (transformers' layout):
            ``C = 1`` for unfused checkpoints, ``C = 4`` (whole clip + 3 local crops) for fused ones (which also
            accept ``C = 1``: a clip flagged in ``is_longer`` then fuses zeros as its local views, as in
            transformers);
            ``frames <= spec_size * freq_ratio`` (1001 for 10 s at 48 kHz, resized to 1024).
        is_longer : mx.array or np.ndarray, shape (B,) or (B, 1), bool, optional
            Fused checkpoints only: which clips were longer than the window, i.e. get the local views fused in.
            ``None`` means no clip is longer: taken with 1-channel features, refused with 4-channel ones
            (pass the extractor's ``is_longer``; transformers fails without it too).

        Returns
        -------
        mx.array, shape (B, projection_dim)
        """
        # An app's request threads embed and end: the streams the audio tower leaves in them made MLX abort
        # the process as it exited (status 134), so each thread that embeds releases them as it ends.
        clear_streams_when_thread_ends()
        input_features = model_input(input_features, "input_features")
        is_longer = None if is_longer is None else model_input(is_longer, "is_longer")
        if is_longer is not None and input_features.ndim >= 1:
            batch = input_features.shape[0]
            if tuple(is_longer.shape) not in ((batch,), (batch, 1)):
                # (MLX's own error, deep in the fusion block, named neither argument: "[reshape] Cannot
                # reshape array of size 2 into shape (3).")
                raise ValueError(
                    f"is_longer has shape {tuple(is_longer.shape)} for the {batch} clips of input_features; "
                    f"expected ({batch},) or ({batch}, 1): one flag per clip, as the feature extractor "
                    "returns"
                )
        fused = self.config.audio_config.enable_fusion
        if is_longer is None and fused and input_features.ndim == 4 and input_features.shape[1] == 4:
            # transformers fails here (None.to); taking None as "no clip is longer" embedded a long clip from
            # its shrunk whole alone, its three local views unread: not the embedding transformers gives
            raise ValueError(
                "is_longer is needed with the 4-channel features of a fused model: pass the feature "
                "extractor's is_longer (model.get_audio_features(features['input_features'], "
                "features['is_longer'])); without it no clip gets its local views fused in, and a clip "
                "longer than the window embeds other than in transformers"
            )
        return l2_normalize(self.audio_projection(self.audio_model(input_features, is_longer)))

    def get_text_features(
        self, input_ids: mx.array | np.ndarray, attention_mask: mx.array | np.ndarray | None = None
    ) -> mx.array:
        """Unit-norm text embeddings from token ids ``(B, L)`` and a 0/1 ``attention_mask`` ``(B, L)``: mx
        arrays, or the numpy arrays `ClapTokenizer` returns (converted here).

        Returns
        -------
        mx.array, shape (B, projection_dim)
        """
        clear_streams_when_thread_ends()  # (as get_audio_features: a request thread may embed text alone)
        input_ids = model_input(input_ids, "input_ids")
        attention_mask = None if attention_mask is None else model_input(attention_mask, "attention_mask")
        _, pooled = self.text_model(input_ids, attention_mask)
        return l2_normalize(self.text_projection(pooled))

    def __call__(
        self,
        input_features: mx.array | np.ndarray,
        input_ids: mx.array | np.ndarray,
        attention_mask: mx.array | np.ndarray | None = None,
        is_longer: mx.array | np.ndarray | None = None,
    ) -> dict[str, mx.array]:
        """Embed both modalities and score every audio against every text (`mx.array`s or numpy arrays,
        as `get_audio_features` and `get_text_features` take).

        Returns
        -------
        dict with ``audio_embeds`` (B_a, D), ``text_embeds`` (B_t, D),
        ``logits_per_audio`` (B_a, B_t) = ``exp(logit_scale_a) * audio @ text.T`` and
        ``logits_per_text`` (B_t, B_a) = ``exp(logit_scale_t) * text @ audio.T``.
        """
        _refuse_transformers_order(input_features, input_ids)
        audio = self.get_audio_features(input_features, is_longer)
        text = self.get_text_features(input_ids, attention_mask)
        return {
            "logits_per_audio": (audio @ text.T) * mx.exp(self.logit_scale_a),
            "logits_per_text": (text @ audio.T) * mx.exp(self.logit_scale_t),
            "audio_embeds": audio,
            "text_embeds": text,
        }

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None) -> None:
        """Recompute each Swin block's and RoBERTa layer's activations in the backward pass instead of keeping
        them (activation checkpointing, as transformers' ``gradient_checkpointing_enable()``): less memory in
        training for about one more forward pass. Only a module in training mode checkpoints; the gradients
        are the same, Dropout's masks too. The recipe's ``--task.gradient_checkpointing`` calls it.

        ``gradient_checkpointing_kwargs`` is transformers' (its first argument, so ``None`` enables too):
        ``{"use_reentrant": False}`` or ``True``, as ported training code passes it, is accepted, as PyTorch's
        two ways give the same gradients and MLX has one (``nn.utils.checkpoint``); another key is refused.
        Turn it off with :meth:`gradient_checkpointing_disable`."""
        # Checked, not taken as a switch: earlier builds' first argument was `enable`, so transformers'
        # `(None)` turned checkpointing off and `({...})` stored a dict; a bool (`False`) is named here.
        if gradient_checkpointing_kwargs is not None:
            if not isinstance(gradient_checkpointing_kwargs, dict):
                raise TypeError(
                    "gradient_checkpointing_enable(gradient_checkpointing_kwargs=...) takes a dict or None, "
                    f"got {gradient_checkpointing_kwargs!r}; to turn checkpointing off call "
                    "gradient_checkpointing_disable()"
                )
            unknown = sorted(set(gradient_checkpointing_kwargs) - {"use_reentrant"}, key=str)
            if unknown:
                raise ValueError(
                    f"gradient_checkpointing_kwargs: {', '.join(map(repr, unknown))} has no MLX counterpart; "
                    "only 'use_reentrant' is taken (either value: MLX's nn.utils.checkpoint is one way)"
                )
        self._set_gradient_checkpointing(True)

    def gradient_checkpointing_disable(self) -> None:
        """Keep every activation for the backward pass again (the default)."""
        self._set_gradient_checkpointing(False)

    def _set_gradient_checkpointing(self, enable: bool) -> None:
        for stage in self.audio_model.audio_encoder.layers:
            stage.gradient_checkpointing = enable
        self.text_model.encoder.gradient_checkpointing = enable

    @property
    def is_gradient_checkpointing(self) -> bool:
        """Whether :meth:`gradient_checkpointing_enable` is in effect (transformers' name)."""
        return self.text_model.encoder.gradient_checkpointing

    def freeze_audio_layers(self, num_stages: int) -> None:
        """Freeze the audio front (mel BatchNorm, patch embedding) and the first ``num_stages`` Swin stages."""
        encoder = self.audio_model.audio_encoder
        if not 0 <= num_stages <= len(encoder.layers):
            raise ValueError(f"num_stages must be in [0, {len(encoder.layers)}], got {num_stages}")
        encoder.batch_norm.freeze()
        encoder.patch_embed.freeze()
        for stage in encoder.layers[:num_stages]:
            stage.freeze()

    def freeze_text_layers(self, num_layers: int) -> None:
        """Freeze the text embeddings and the first ``num_layers`` RoBERTa layers."""
        text = self.text_model
        if not 0 <= num_layers <= len(text.encoder.layer):
            raise ValueError(f"num_layers must be in [0, {len(text.encoder.layer)}], got {num_layers}")
        text.embeddings.freeze()
        for layer in text.encoder.layer[:num_layers]:
            layer.freeze()
