"""The RoBERTa text tower of CLAP, with its pooler (``tanh(dense(h[:, 0]))``).

Attribute names mirror transformers' ``ClapTextModel`` (``embeddings.LayerNorm``, ``encoder.layer.N.attention.self``,
``pooler.dense``) so that parameter paths equal the Hugging Face state-dict names.
"""

from __future__ import annotations

import math

from audiotrain.models.clap.config import ClapTextConfig
from audiotrain.models.clap.layers import Dropout, activation, run_block

import mlx.core as mx
import mlx.nn as nn
import numpy as np


def check_token_ids(input_ids: mx.array | np.ndarray, vocab_size: int) -> None:
    """Raise ``IndexError`` when a token id is outside ``[0, vocab_size)``, naming it and where it is.

    MLX does not bounds-check a gather: such an id reads memory beyond the embedding table (a wrong embedding,
    or a segfault), where PyTorch raises. Cheap on a host-side batch (a min and a max of ``B x L`` ints).
    """
    ids = np.asarray(input_ids)
    if ids.size == 0 or (ids.min() >= 0 and ids.max() < vocab_size):
        return
    outside = (ids < 0) | (ids >= vocab_size)
    where = tuple(int(i) for i in np.argwhere(outside)[0])
    raise IndexError(
        f"input_ids{list(where)} is the token id {int(ids[where])}, outside the text model's vocabulary "
        f"(text_config.vocab_size {vocab_size}: ids 0..{vocab_size - 1}; {int(outside.sum())} of the "
        f"{ids.size} ids lie outside it): tokenize with the checkpoint's own tokenizer "
        "(ClapTokenizer.from_pretrained), or use a model whose vocabulary holds these ids"
    )


def _readable(array: mx.array) -> np.ndarray | None:
    """The array's values, or None inside ``mx.compile`` / ``mx.vmap``, where they do not exist yet."""
    try:
        return np.asarray(array)
    except ValueError:  # "[eval] Attempting to eval an array during function transformations"
        return None


class ClapTextEmbeddings(nn.Module):
    """Word + position + token-type embeddings, LayerNorm, dropout.

    RoBERTa numbers positions from ``pad_token_id + 1`` and gives padding tokens the padding position, so position
    ids are ``cumsum(ids != pad) * (ids != pad) + pad``.
    """

    def __init__(self, config: ClapTextConfig) -> None:
        super().__init__()
        self.pad_token_id = config.pad_token_id
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def __call__(self, input_ids: mx.array, ids_checked: bool = False) -> mx.array:
        """Embed ``(B, L)`` token ids. Unless `ids_checked` (by `check_token_ids`), an id outside the
        vocabulary gets a NaN embedding instead of a read beyond the table: inside ``mx.compile`` the ids
        cannot be checked, and no error can be raised there."""
        not_pad = (input_ids != self.pad_token_id).astype(mx.int32)
        positions = mx.cumsum(not_pad, axis=1) * not_pad + self.pad_token_id
        if ids_checked:
            words = self.word_embeddings(input_ids)
        else:
            inside = (input_ids >= 0) & (input_ids < self.word_embeddings.weight.shape[0])
            words = self.word_embeddings(mx.where(inside, input_ids, 0))
            words = mx.where(inside[..., None], words, mx.array(float("nan"), words.dtype))
        # transformers reads token types from an all-zero buffer when none are given: always type 0.
        x = words + self.token_type_embeddings.weight[0]
        x = x + self.position_embeddings(positions)
        return self.dropout(self.LayerNorm(x))


class ClapTextSelfAttention(nn.Module):
    def __init__(self, config: ClapTextConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = Dropout(config.attention_probs_dropout_prob)

    def __call__(self, x: mx.array, mask: mx.array) -> mx.array:
        b, n, c = x.shape
        h, d = self.num_heads, self.head_dim
        q = self.query(x).reshape(b, n, h, d).transpose(0, 2, 1, 3)
        k = self.key(x).reshape(b, n, h, d).transpose(0, 2, 1, 3)
        v = self.value(x).reshape(b, n, h, d).transpose(0, 2, 1, 3)
        # Explicit softmax attention: mx.fast.scaled_dot_product_attention is slower on MLX's CPU backend.
        scores = (q @ k.transpose(0, 1, 3, 2)) * (1.0 / math.sqrt(d)) + mask
        probs = self.dropout(mx.softmax(scores, axis=-1, precise=True))
        return (probs @ v).transpose(0, 2, 1, 3).reshape(b, n, c)


class ClapTextSelfOutput(nn.Module):
    def __init__(self, config: ClapTextConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def __call__(self, x: mx.array, residual: mx.array) -> mx.array:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class ClapTextAttention(nn.Module):
    def __init__(self, config: ClapTextConfig) -> None:
        super().__init__()
        self.self = ClapTextSelfAttention(config)
        self.output = ClapTextSelfOutput(config)

    def __call__(self, x: mx.array, mask: mx.array) -> mx.array:
        return self.output(self.self(x, mask), x)


class ClapTextIntermediate(nn.Module):
    def __init__(self, config: ClapTextConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self._act = activation(config.hidden_act)

    def __call__(self, x: mx.array) -> mx.array:
        return self._act(self.dense(x))


class ClapTextOutput(nn.Module):
    def __init__(self, config: ClapTextConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def __call__(self, x: mx.array, residual: mx.array) -> mx.array:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class ClapTextLayer(nn.Module):
    def __init__(self, config: ClapTextConfig) -> None:
        super().__init__()
        self.attention = ClapTextAttention(config)
        self.intermediate = ClapTextIntermediate(config)
        self.output = ClapTextOutput(config)

    def __call__(self, x: mx.array, mask: mx.array) -> mx.array:
        x = self.attention(x, mask)
        return self.output(self.intermediate(x), x)


class ClapTextEncoder(nn.Module):
    def __init__(self, config: ClapTextConfig) -> None:
        super().__init__()
        self.layer = [ClapTextLayer(config) for _ in range(config.num_hidden_layers)]
        # Activation checkpointing of each layer (ClapModel.gradient_checkpointing_enable).
        self.gradient_checkpointing = False

    def __call__(self, x: mx.array, mask: mx.array) -> mx.array:
        for layer in self.layer:
            x = run_block(layer, self.gradient_checkpointing, x, mask)
        return x


class ClapTextPooler(nn.Module):
    def __init__(self, config: ClapTextConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def __call__(self, x: mx.array) -> mx.array:
        return mx.tanh(self.dense(x[:, 0]))


class ClapTextModel(nn.Module):
    """RoBERTa encoder returning the pooled first-token vector, which CLAP's text projection consumes."""

    def __init__(self, config: ClapTextConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = ClapTextEmbeddings(config)
        self.encoder = ClapTextEncoder(config)
        self.pooler = ClapTextPooler(config)

    def __call__(
        self, input_ids: mx.array, attention_mask: mx.array | None = None
    ) -> tuple[mx.array, mx.array]:
        """Encode token ids.

        Parameters
        ----------
        input_ids : mx.array, shape (B, L), integer
            Token ids in ``[0, vocab_size)``, ``L <= max_position_embeddings - pad_token_id - 1`` (512 for
            RoBERTa). An id outside the vocabulary raises ``IndexError`` (`check_token_ids`); inside
            ``mx.compile``, where values cannot be read, its row's embedding is NaN instead.
        attention_mask : mx.array, shape (B, L), optional
            1 for real tokens, 0 for padding; all ones when omitted.

        Returns
        -------
        last_hidden_state : mx.array, shape (B, L, hidden_size)
        pooled : mx.array, shape (B, hidden_size)
        """
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids must be (batch, tokens), got shape {tuple(input_ids.shape)}")
        if input_ids.shape[1] == 0:
            raise ValueError("input_ids holds no tokens (a row needs at least <s> and </s>)")
        if not mx.issubdtype(input_ids.dtype, mx.integer):
            raise TypeError(f"input_ids must be integer token ids, got {input_ids.dtype}")
        longest = self.config.max_position_embeddings - self.config.pad_token_id - 1
        if input_ids.shape[1] > longest:
            raise ValueError(
                f"input_ids has {input_ids.shape[1]} tokens; the text tower accepts at most {longest}"
            )
        ids = _readable(input_ids)
        if ids is not None:
            check_token_ids(ids, self.config.vocab_size)
        x = self.embeddings(input_ids, ids_checked=ids is not None)
        if attention_mask is None:
            mask = mx.zeros((1, 1, 1, input_ids.shape[1]), dtype=x.dtype)
        else:
            if tuple(attention_mask.shape) != tuple(input_ids.shape):
                raise ValueError(
                    f"attention_mask shape {tuple(attention_mask.shape)} != input_ids shape {tuple(input_ids.shape)}"
                )
            # Additive mask with the dtype's lowest value, as transformers' eager attention uses.
            lowest = mx.finfo(x.dtype).min
            mask = mx.where(attention_mask[:, None, None, :] > 0, 0.0, lowest).astype(x.dtype)
        hidden = self.encoder(x, mask)
        return hidden, self.pooler(hidden)
