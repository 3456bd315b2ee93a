"""`ChordRecognitionModel`: CQT frames → per-frame chord type, root and bass logits.

Architecture (chosen from the measurements in `benchmarks/chord_layers.py`, MLX on a 2-core CPU):

    frames [B, T, bins]
      → per-frame LayerNorm over bins (loudness invariance)
      → local context: each frame concatenated with `context_frames` neighbours on each side
      → Linear → ReLU → dropout                                  (front end, [B, T, d_model])
      → `n_layers` × bidirectional transformer block             (pre-norm, RMSNorm, ReLU feed-forward,
                                                                  attention as matmuls with a symmetric
                                                                  ALiBi distance bias)
      → RMSNorm → Linear heads: chord_type (32), root (12), bass (12), and the joint chord head (362:
                  N, X and every (chord type, root) pair; `chord_head`)

    bass branch (`bass_bins` > 0): the lowest `bass_bins` bins, LayerNorm-ed on their own (a quiet bass
      under loud chords keeps its contrast), with the same local context → Linear → ReLU; the bass head
      reads it beside the transformer's output. With `bass_view_bins` > 0 the features carry a second view
      of the lowest notes after the `n_bins` (the same bins computed with shorter filters, so a bass note's
      start and end are not smeared over the previous one's); the branch reads it beside the lowest bins,
      and only the branch reads it.

    Why a joint chord head beside the type and root heads: the notes E G B over C are C:maj7 or E:min. The
    type head then splits between maj7 and min and the root head between C and E, each summing over the other,
    and their product gives as much to E:maj7 and C:min as to the two readings; the joint head keeps them
    apart, and decoding reads its posteriors (`audiotrain.chords.decode`). On the independent held-out style
    it raised majmin by 2.0-4.7 points (mean 3.4) (`benchmarks/chords_rounds.md`, fifth round); it costs about
    11% more per training step (the 362-way softmax; 18% with MLX's own CPU `exp`, see
    `audiotrain.models.fast_math`).

Why these layers (forward+backward on this CPU, see the benchmark): a bidirectional GRU costs ~2x a whole
transformer block at T=96 and grows with T, erf-GELU costs ~15x a ReLU, the fused attention kernel is no
faster than two matmuls, a 2-D conv over (time, frequency) costs ~30x a Linear, and `exp` is slow enough
that a softmax-free attention ("relu2", the default) makes a block ~12% cheaper. Attention uses a distance
bias (ALiBi, Press et al. 2022) instead of position embeddings so that a model trained on windows of a few
seconds also runs on longer windows; the per-head slopes give some heads a local view (chord boundaries) and
some a wide one (key context).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import mlx.core as mx
import mlx.nn as nn

#: Sizes of the three output heads. The chord-type head follows the 32-type vocabulary of
#: `audiotrain.chords` (N, X, maj, min, ...); root and bass are pitch classes C=0 ... B=11.
NUM_CHORD_TYPES = 32
NUM_PITCH_CLASSES = 12
#: Row normalisations of the attention scores (see `SelfAttention`).
ATTENTION_NORMALIZATIONS = ("relu2", "softmax")


#: Upper bounds of the sizes, far above any useful chord model: a checkpoint's or --config's absurd value
#: (n_layers 100000, d_model 10**9) is refused here, before building the model allocates gigabytes or
#: overflows MLX's 32-bit sizes.
_SIZE_LIMITS = {
    "n_bins": 4096,
    "context_frames": 64,
    "d_model": 8192,
    "n_layers": 64,
    "n_heads": 256,
    "ff_dim": 32768,
    "num_chord_types": 1024,
    "bass_bins": 4096,
    "bass_dim": 8192,
    "bass_view_bins": 4096,
}

#: What a checkpoint written before a setting existed meant by its absence: its model had no bass branch
#: (bass_bins, added with bass_dim), no joint chord head, no bass view.
OLDER_RECORD_MEANINGS = {"bass_bins": 0, "chord_head": False, "bass_view_bins": 0}

#: Settings every chord checkpoint has recorded, from the first format on. One missing is a damaged or
#: hand-written record: `ChordModelConfig.from_stored` refuses it, for n_heads, attention and dropout change no
#: weight's shape, and today's default would load without a word and predict with another model.
ALWAYS_RECORDED = (
    "n_bins",
    "context_frames",
    "d_model",
    "n_layers",
    "n_heads",
    "ff_dim",
    "dropout",
    "attention",
    "num_chord_types",
)


@dataclass
class ChordModelConfig:
    """Size and shape of a `ChordRecognitionModel`.

    Attributes:
        n_bins: CQT bins (mel features: mel bands) per input frame (the model's input width).
        context_frames: neighbouring frames on each side concatenated to a frame in the front end.
        d_model: width of the sequence model.
        n_layers: transformer blocks.
        n_heads: attention heads; must divide `d_model`.
        ff_dim: hidden width of each block's feed-forward layer.
        dropout: dropout rate in the front end and the blocks (training only).
        attention: row normalisation of the attention scores, "relu2" (fast on CPU) or "softmax".
        num_chord_types: size of the chord-type head (the vocabulary's type count).
        bass_bins: lowest input bins the bass head also reads directly, normalised on their own (0: none;
            at most `n_bins` are read). 108 = three octaves from C1 at 36 bins per octave, the bass range.
        bass_dim: width of that bass branch.
        bass_view_bins: bins of a second (bass) view the features carry after the `n_bins` (the lowest notes
            computed with shorter filters); the model's input is ``n_bins + bass_view_bins`` wide, and only
            the bass branch reads this view (0: none).
        chord_head: also a joint chord head over N, X and every (chord type, root) pair (362 classes), so
            that the model can say "C:maj7 or E:min" for an ambiguous set of notes, which the separate type
            and root heads cannot: their product would also give E:maj7 and C:min.
    """

    n_bins: int = field(default=216, metadata={"help": "CQT bins (mel: mel bands) per input frame"})
    context_frames: int = field(
        default=2, metadata={"help": "neighbouring frames on each side fed to the front end"}
    )
    d_model: int = field(default=128, metadata={"help": "width of the transformer"})
    n_layers: int = field(default=2, metadata={"help": "transformer blocks"})
    n_heads: int = field(default=4, metadata={"help": "attention heads (must divide d_model)"})
    ff_dim: int = field(default=256, metadata={"help": "hidden width of the feed-forward layers"})
    dropout: float = field(default=0.1, metadata={"help": "dropout rate while training"})
    attention: str = field(
        default="relu2",
        metadata={"help": "attention score normalisation", "choices": ATTENTION_NORMALIZATIONS},
    )
    num_chord_types: int = field(default=NUM_CHORD_TYPES, metadata={"help": "size of the chord-type head"})
    bass_bins: int = field(
        default=108, metadata={"help": "lowest input bins the bass head reads directly (0: none)"}
    )
    bass_dim: int = field(default=64, metadata={"help": "width of the bass head's low-band branch"})
    bass_view_bins: int = field(
        default=108,
        metadata={
            "help": "bins of the features' second (bass) view after the n_bins; the bass branch reads them"
        },
    )
    chord_head: bool = field(
        default=True, metadata={"help": "a joint head over every (chord type, root) pair, N and X"}
    )

    def __post_init__(self):
        positive = ("n_bins", "d_model", "n_layers", "n_heads", "ff_dim", "num_chord_types")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"ChordModelConfig.{name} must be a positive integer, got {value!r}")
        for name, limit in _SIZE_LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, int) and value > limit:
                raise ValueError(f"ChordModelConfig.{name} must be at most {limit}, got {value}")
        if not isinstance(self.bass_bins, int) or isinstance(self.bass_bins, bool) or self.bass_bins < 0:
            raise ValueError(f"ChordModelConfig.bass_bins must be an integer >= 0, got {self.bass_bins!r}")
        if (
            not isinstance(self.bass_view_bins, int)
            or isinstance(self.bass_view_bins, bool)
            or self.bass_view_bins < 0
        ):
            raise ValueError(
                f"ChordModelConfig.bass_view_bins must be an integer >= 0, got {self.bass_view_bins!r}"
            )
        if not isinstance(self.bass_dim, int) or self.bass_dim <= 0:
            raise ValueError(f"ChordModelConfig.bass_dim must be a positive integer, got {self.bass_dim!r}")
        if not isinstance(self.context_frames, int) or self.context_frames < 0:
            raise ValueError(
                f"ChordModelConfig.context_frames must be an integer >= 0, got {self.context_frames!r}"
            )
        if self.d_model % self.n_heads:
            raise ValueError(
                # ("n_heads = 3", not "n_heads (3)": the recipes' flag reader then names the flag that was set)
                f"ChordModelConfig.d_model = {self.d_model} must be divisible by n_heads = {self.n_heads}"
            )
        if self.attention not in ATTENTION_NORMALIZATIONS:
            raise ValueError(
                f"ChordModelConfig.attention must be one of {ATTENTION_NORMALIZATIONS}, got {self.attention!r}"
            )
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"ChordModelConfig.dropout must be in [0, 1), got {self.dropout!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChordModelConfig:
        """Build a config from a dict (e.g. a checkpoint's), naming any unknown key."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown ChordModelConfig field(s) {unknown}; expected a subset of {sorted(known)}"
            )
        # A checkpoint written before the bass branch, the chord head or the bass view existed has no such
        # key: its model had none.
        return cls(**{**OLDER_RECORD_MEANINGS, **data})

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> ChordModelConfig:
        """The config a checkpoint recorded (`from_dict`), refusing one without a setting of
        `ALWAYS_RECORDED`: no version wrote such a record, and no default is known to be its model's."""
        missing = [name for name in ALWAYS_RECORDED if name not in data]
        if missing:
            one = len(missing) == 1
            raise ValueError(
                f"{', '.join(missing)} {'is' if one else 'are'} missing: every chord checkpoint records "
                f"{'it' if one else 'them'}, so the record is damaged or hand-written, and today's default "
                f"need not be its model's (the run's config.json holds model.{missing[0]})"
            )
        return cls.from_dict(data)


def joint_chord_classes(num_chord_types: int = NUM_CHORD_TYPES) -> int:
    """Classes of the joint chord head: N, X, then 12 roots of each chord type (2 + 30 * 12 = 362 for the
    vocabulary's types: `audiotrain.chords.vocabulary.NUM_JOINT_CHORDS`, the decoder's chord states)."""
    return 2 + (num_chord_types - 2) * NUM_PITCH_CLASSES


def joint_chord_index(chord_type: mx.array, root: mx.array) -> mx.array:
    """The joint chord class of (chord type, root) targets: N and X keep their index 0 and 1, chord type t
    on root r is ``2 + (t - 2) * 12 + r`` (the order of `audiotrain.chords.decode`'s joint states)."""
    return mx.where(
        chord_type < 2, chord_type, 2 + (chord_type - 2) * NUM_PITCH_CLASSES + mx.maximum(root, 0)
    )


def alibi_slopes(n_heads: int) -> mx.array:
    """Per-head slopes of the distance bias: a geometric sequence from 1/2 down to 2^-8 (ALiBi).

    Returns:
        [n_heads] float32. Head h subtracts `slope[h] * |i - j|` from the score of query i on key j.
    """
    exponents = [8.0 * (h + 1) / n_heads for h in range(n_heads)]
    return mx.array([2.0**-e for e in exponents], dtype=mx.float32)


def dropout(x: mx.array, rate: float, training: bool) -> mx.array:
    """Inverted dropout. A function rather than `nn.Dropout` submodules: those add empty entries to the
    parameter and optimizer-state trees, which a flattened (safetensors) checkpoint cannot represent."""
    if not training or rate == 0.0:
        return x
    keep = mx.random.bernoulli(1.0 - rate, x.shape)
    return mx.where(keep, x * (1.0 / (1.0 - rate)), 0.0)


class SelfAttention(nn.Module):
    """Bidirectional multi-head self-attention with a symmetric ALiBi distance bias.

    Written as two matmuls around a row normalisation of the scores:

    - "relu2" (default): squared ReLU of the scores, divided by the row sum (softmax-free attention in the
      spirit of Wortsman et al. 2023, "Replacing softmax with ReLU in vision transformers"). On MLX's CPU
      backend `exp` costs ~10x a ReLU + square + sum, and the softmax was most of a block's time. Keys
      whose biased score is negative get exactly zero weight, so the distance bias gives a local window.
    - "softmax": the usual attention.
    """

    def __init__(self, dim: int, n_heads: int, normalization: str = "relu2"):
        super().__init__()
        if normalization not in ATTENTION_NORMALIZATIONS:
            raise ValueError(
                f"attention normalization must be one of {ATTENTION_NORMALIZATIONS}, got {normalization!r}"
            )
        self.n_heads = n_heads
        self.normalization = normalization
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim)
        # Not a parameter: kept out of the module tree so the optimizer never sees it.
        object.__setattr__(self, "_slopes", alibi_slopes(n_heads))

    def _normalize(self, scores: mx.array) -> mx.array:
        if self.normalization == "softmax":
            return mx.softmax(scores, axis=-1)
        # relu2: squared ReLU of the scores, rows normalised to sum 1 (1e-6 keeps an all-zero row finite).
        weights = mx.square(mx.maximum(scores, 0.0))
        return weights / (mx.sum(weights, axis=-1, keepdims=True) + 1e-6)

    def __call__(self, x: mx.array, key_bias: mx.array | None = None) -> mx.array:
        """x: [B, T, dim]; key_bias: [B, 1, 1, T] additive (0 for real frames, large negative for
        padding) or None. Returns [B, T, dim]."""
        b, t, d = x.shape
        head_dim = d // self.n_heads
        if type(self.qkv).__call__ is nn.Linear.__call__ and "bias" not in self.qkv:
            w_q, w_k, w_v = self.qkv.weight[:d], self.qkv.weight[d : 2 * d], self.qkv.weight[2 * d :]
            q = (x @ w_q.T).reshape(b, t, self.n_heads, head_dim).transpose(0, 2, 1, 3)  # [B, H, T, head_dim]
            v = (x @ w_v.T).reshape(b, t, self.n_heads, head_dim).transpose(0, 2, 1, 3)
            # The keys are projected straight into [B, H, head_dim, T], the layout the score product reads:
            # transposing [B, H, T, head_dim] keys instead makes MLX's CPU backend copy them through a slow
            # strided path, which cost a third of the attention's forward and backward time.
            k_t = (w_k @ x.transpose(0, 2, 1)).reshape(b, self.n_heads, head_dim, t)
        else:
            # A layer in its place (nn.quantize's QuantizedLinear, whose weight is packed words; a LoRA
            # wrapper, which has none) computes its own product: its weight cannot be sliced as above.
            q, k, v = mx.split(self.qkv(x).reshape(b, t, 3, self.n_heads, head_dim), 3, axis=2)
            q, v = (a.squeeze(2).transpose(0, 2, 1, 3) for a in (q, v))
            k_t = k.squeeze(2).transpose(0, 2, 3, 1)  # [B, H, head_dim, T]
        scores = (q * (head_dim**-0.5)) @ k_t  # [B, H, T, T]
        positions = mx.arange(t, dtype=mx.float32)
        distance = mx.abs(positions[:, None] - positions[None, :])  # [T, T]
        scores = scores - self._slopes[:, None, None] * distance
        if key_bias is not None:
            scores = scores + key_bias
        y = self._normalize(scores) @ v  # [B, H, T, head_dim]
        return self.out(y.transpose(0, 2, 1, 3).reshape(b, t, d))


class TransformerBlock(nn.Module):
    """Pre-norm transformer encoder block: x + attn(norm(x)), then x + ff(norm(x)); ReLU feed-forward."""

    def __init__(self, dim: int, n_heads: int, ff_dim: int, dropout: float, attention: str = "relu2"):
        super().__init__()
        self.norm1 = nn.RMSNorm(dim)
        self.attention = SelfAttention(dim, n_heads, attention)
        self.norm2 = nn.RMSNorm(dim)
        self.ff_in = nn.Linear(dim, ff_dim)
        self.ff_out = nn.Linear(ff_dim, dim)
        self.dropout_rate = float(dropout)

    def __call__(self, x: mx.array, key_bias: mx.array | None = None) -> mx.array:
        rate, training = self.dropout_rate, self.training
        x = x + dropout(self.attention(self.norm1(x), key_bias), rate, training)
        hidden = dropout(nn.relu(self.ff_in(self.norm2(x))), rate, training)
        return x + dropout(self.ff_out(hidden), rate, training)


class ChordRecognitionModel(nn.Module):
    """Frame-wise chord recognition from CQT (or mel) frames.

    Args:
        config: sizes; see `ChordModelConfig`.

    Call:
        model(features, mask=None) with features [B, T, n_bins + bass_view_bins] float32 (log-magnitude CQT
        or mel frames) and an optional frame mask [B, T] (1 for real frames, 0 for padding at the end of a
        row). Padded frames are not attended to and do not enter the local context, so a padded song gives
        the same logits on its real frames as the song alone.

    Returns:
        dict of logits: "chord_type" [B, T, num_chord_types], "root" [B, T, 12], "bass" [B, T, 12], and with
        `chord_head` "chord" [B, T, 2 + (num_chord_types - 2) * 12].
    """

    def __init__(self, config: ChordModelConfig | None = None):
        super().__init__()
        self.config = config if config is not None else ChordModelConfig()
        cfg = self.config
        self.input_norm = nn.LayerNorm(cfg.n_bins)
        self.front = nn.Linear(cfg.n_bins * (2 * cfg.context_frames + 1), cfg.d_model)
        self.blocks = [
            TransformerBlock(cfg.d_model, cfg.n_heads, cfg.ff_dim, cfg.dropout, cfg.attention)
            for _ in range(cfg.n_layers)
        ]
        self.final_norm = nn.RMSNorm(cfg.d_model)
        self.chord_type_head = nn.Linear(cfg.d_model, cfg.num_chord_types)
        self.root_head = nn.Linear(cfg.d_model, NUM_PITCH_CLASSES)
        if cfg.chord_head:
            self.chord_head = nn.Linear(cfg.d_model, joint_chord_classes(cfg.num_chord_types))
        self.low_bins = min(cfg.bass_bins, cfg.n_bins)
        branch_bins = self.low_bins + cfg.bass_view_bins
        if branch_bins:
            self.bass_norm = nn.LayerNorm(branch_bins)
            self.bass_front = nn.Linear(branch_bins * (2 * cfg.context_frames + 1), cfg.bass_dim)
        self.has_bass_branch = bool(branch_bins)
        self.bass_head = nn.Linear(cfg.d_model + (cfg.bass_dim if branch_bins else 0), NUM_PITCH_CLASSES)

    def _stack_context(self, x: mx.array) -> mx.array:
        """[B, T, F] → [B, T, F * (2c + 1)]: each frame with its c neighbours on each side (edges padded
        by repeating the first/last frame, so a window's border looks like held sound, not silence)."""
        c = self.config.context_frames
        if c == 0:
            return x
        t = x.shape[1]
        first = mx.repeat(x[:, :1], c, axis=1)
        last = mx.repeat(x[:, -1:], c, axis=1)
        padded = mx.concatenate([first, x, last], axis=1)
        return mx.concatenate([padded[:, i : i + t] for i in range(2 * c + 1)], axis=-1)

    def _normed_front(self, x: mx.array, norm: nn.LayerNorm, linear: nn.Linear) -> mx.array:
        """``linear(stack_context(norm(x)))``, with the norm's scale and offset folded into the Linear.

        The same function of the same parameters, with the same gradients: each frame of the context stack
        meets the same per-bin scale γ and offset β, so ``W (γ ⊙ n + β) + b = (W ⊙ γ) n + (W β + b)``
        with γ and β tiled over the 2c + 1 frames. Written this way the backward pass stops at the weights:
        the stack holds only normalised features, which need no gradient, so autodiff no longer carries
        one back through the stack's copies and the norm to reach γ and β. That made a default training
        step about 11% cheaper on the 2-core CPU (`benchmarks/chord_layers.py`, "whole training step").
        (Dropping γ and β instead, a re-parametrisation that can represent the same functions, trains
        worse: majmin -0.56 and tetrads -1.23 on the independent held-out style, six seeds, twentieth
        round of `benchmarks/chords_rounds.md`.)"""
        taps = 2 * self.config.context_frames + 1
        stacked = self._stack_context(mx.fast.layer_norm(x, None, None, norm.eps))
        weight = linear.weight * mx.tile(norm.weight, taps)
        bias = linear.bias + linear.weight @ mx.tile(norm.bias, taps)
        return mx.addmm(bias, stacked, weight.T)

    def __call__(self, features: mx.array, mask: mx.array | None = None) -> dict[str, mx.array]:
        x, low = self._encode(features, mask)
        outputs = {
            "chord_type": self.chord_type_head(x),
            "root": self.root_head(x),
            "bass": self.bass_head(x if low is None else mx.concatenate([x, low], axis=-1)),
        }
        if self.config.chord_head:
            outputs["chord"] = self.chord_head(x)
        return outputs

    def embed(self, features: mx.array, mask: mx.array | None = None) -> mx.array:
        """The trunk's output [B, T, d_model]: the frames as the chord type, root and chord heads read them
        (after the front end, the transformer blocks and the final norm), e.g. to use the trained model as
        a feature extractor or to train another head on it. Takes what `__call__` takes. (The bass head
        also reads the bass branch's [B, T, bass_dim], which this leaves out.)"""
        return self._encode(features, mask)[0]

    def _encode(self, features: mx.array, mask: mx.array | None) -> tuple[mx.array, mx.array | None]:
        """(the trunk's output, the bass branch's or None): what the heads read."""
        width = self.config.n_bins + self.config.bass_view_bins
        if features.ndim != 3 or features.shape[-1] != width:
            raise ValueError(
                f"ChordRecognitionModel expects features [batch, frames, {width}], "
                f"got shape {tuple(features.shape)}"
            )
        key_bias = None
        if mask is not None:
            if mask.shape != features.shape[:2]:
                raise ValueError(
                    f"mask must be [batch, frames] = {tuple(features.shape[:2])}, got {tuple(mask.shape)}"
                )
            # Padding sits at the end of each row. Repeat the last real frame over it so the front end's
            # local context of the last real frames is the same as when the song is run unpadded.
            lengths = mx.maximum(mx.sum(mask.astype(mx.int32), axis=1), 1)
            index = mx.minimum(mx.arange(features.shape[1])[None, :], lengths[:, None] - 1)
            features = mx.take_along_axis(features, index[..., None], axis=1)
        n_bins = self.config.n_bins
        x = self._normed_front(
            features[..., :n_bins] if self.config.bass_view_bins else features, self.input_norm, self.front
        )
        x = dropout(nn.relu(x), self.config.dropout, self.training)
        low = None
        if self.has_bass_branch:
            # The lowest bins of the first view, then the bass view (the bins after the n_bins).
            low = features[..., : self.low_bins] if self.low_bins else features[..., n_bins:]
            if self.low_bins and self.config.bass_view_bins:
                low = mx.concatenate([low, features[..., n_bins:]], axis=-1)
            low = self._normed_front(low, self.bass_norm, self.bass_front)
            low = dropout(nn.relu(low), self.config.dropout, self.training)
        if mask is not None:
            # -1e9 rather than -inf: a fully padded row must still give a finite softmax.
            key_bias = ((mask.astype(mx.float32) - 1.0) * 1e9)[:, None, None, :]
        for block in self.blocks:
            x = block(x, key_bias)
        return self.final_norm(x), low

    def num_parameters(self) -> int:
        from mlx.utils import tree_flatten

        return sum(v.size for _, v in tree_flatten(self.parameters()))
