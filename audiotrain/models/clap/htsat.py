"""The HTSAT audio tower of CLAP: a Swin transformer over a log-mel spectrogram folded into a square image.

Attribute names mirror transformers' ``ClapAudioModel`` so that parameter paths equal the Hugging Face state-dict
names (see ``convert.py``). Internally images are channels-last (NHWC, MLX's convolution layout); the public input
keeps transformers' layout ``(batch, channels, frames, mel_bins)``.

Data flow (LAION sizes): ``(B, C, 1001, 64)`` -> BatchNorm over the 64 mel bins -> bicubic resize of time to 1024
frames -> fold into a ``256 x 256`` image (4 blocks of 256 frames stacked along frequency) -> 4x4 patches
(``64 x 64`` tokens of 96 channels) -> 4 Swin stages with shifted windows and patch merging -> LayerNorm -> mean
over the ``8 x 8`` remaining tokens -> ``(B, 768)``.
"""

from __future__ import annotations

import functools
import math

from audiotrain.models.clap.config import ClapAudioConfig
from audiotrain.models.clap.layers import Dropout, DropPath, activation, model_input, run_block

import mlx.core as mx
import mlx.nn as nn
import numpy as np

# PyTorch's bicubic kernel constant (Keys' a = -0.75), which CLAP's resize uses.
_CUBIC_A = -0.75


@functools.lru_cache(maxsize=8)
def bicubic_resize_weights(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and weights of PyTorch's 1-D bicubic interpolation with ``align_corners=True``.

    Parameters
    ----------
    in_size, out_size : int
        Lengths of the axis before and after resizing.

    Returns
    -------
    index : np.ndarray, shape (out_size, 4), int32
        Source positions ``floor(x) - 1 .. floor(x) + 2``, clamped to the edges as PyTorch does.
    weight : np.ndarray, shape (out_size, 4), float32
        Cubic convolution weights, computed in float32 like PyTorch's CPU kernel.
    """
    f32 = np.float32
    scale = f32(in_size - 1) / f32(out_size - 1) if out_size > 1 else f32(0)
    real = (scale * np.arange(out_size, dtype=f32)).astype(f32)
    base = np.floor(real).astype(np.int64)
    t = (real - base.astype(f32)).astype(f32)
    a = f32(_CUBIC_A)

    def near(x):  # |x| <= 1
        return ((a + f32(2)) * x - (a + f32(3))) * x * x + f32(1)

    def far(x):  # 1 < |x| < 2
        return ((a * x - f32(5) * a) * x + f32(8) * a) * x - f32(4) * a

    weight = np.stack([far(t + f32(1)), near(t), near(f32(1) - t), far(f32(2) - t)], axis=1).astype(f32)
    index = np.clip(base[:, None] + np.arange(-1, 3)[None, :], 0, in_size - 1).astype(np.int32)
    return index, weight


def _window_partition(x: mx.array, window: int) -> mx.array:
    """``(B, H, W, C)`` -> ``(B * H/window * W/window, window * window, C)``, windows in row-major order."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // window, window, w // window, window, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window * window, c)


def _window_reverse(windows: mx.array, window: int, b: int, h: int, w: int) -> mx.array:
    """Inverse of :func:`_window_partition`: ``(B * nW, window * window, C)`` -> ``(B, H, W, C)``."""
    c = windows.shape[-1]
    x = windows.reshape(b, h // window, w // window, window, window, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def relative_position_index(window: int) -> np.ndarray:
    """Swin's ``(window**2, window**2)`` index into the relative-position bias table (the HF buffer's values)."""
    coords = np.stack(np.meshgrid(np.arange(window), np.arange(window), indexing="ij")).reshape(2, -1)
    rel = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0) + (window - 1)
    return (rel[:, :, 0] * (2 * window - 1) + rel[:, :, 1]).astype(np.int64)


def shifted_window_mask(height: int, width: int, window: int, shift: int) -> np.ndarray:
    """Additive mask ``(num_windows, window**2, window**2)`` (0 or -100) for shifted-window attention.

    After the cyclic shift a window can hold tokens from up to 3 x 3 regions that are not neighbours in the
    image; tokens only attend within their own region. -100 (not -inf) is what Swin and transformers use.
    """

    def regions(n):
        idx = np.arange(n)
        return (idx >= n - window).astype(np.int64) + (idx >= n - shift).astype(np.int64)

    img = (regions(height)[:, None] * 3 + regions(width)[None, :]).astype(np.float32)
    win = img.reshape(height // window, window, width // window, window).transpose(0, 2, 1, 3)
    win = win.reshape(-1, window * window)
    diff = win[:, None, :] - win[:, :, None]
    return np.where(diff != 0, np.float32(-100.0), np.float32(0.0)).astype(np.float32)


class ClapAudioSelfAttention(nn.Module):
    """Window multi-head self-attention with a learned relative-position bias (HF: ``attention.self``)."""

    def __init__(self, config: ClapAudioConfig, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.window = window
        self.relative_position_bias_table = mx.zeros(((2 * window - 1) ** 2, num_heads))
        self.query = nn.Linear(dim, dim, bias=config.qkv_bias)
        self.key = nn.Linear(dim, dim, bias=config.qkv_bias)
        self.value = nn.Linear(dim, dim, bias=config.qkv_bias)
        self.dropout = Dropout(config.attention_probs_dropout_prob)
        # A constant, not a parameter (leading underscore): HF stores it as a buffer that export rewrites.
        self._rel_index = mx.array(relative_position_index(window).reshape(-1).astype(np.int32))

    def __call__(self, x: mx.array, mask: mx.array | None) -> mx.array:
        bw, n, c = x.shape
        h, d = self.num_heads, self.head_dim
        q = self.query(x).reshape(bw, n, h, d).transpose(0, 2, 1, 3)
        k = self.key(x).reshape(bw, n, h, d).transpose(0, 2, 1, 3)
        v = self.value(x).reshape(bw, n, h, d).transpose(0, 2, 1, 3)
        # Scale after the product, as transformers does, so float32 rounding follows the reference.
        scores = (q @ k.transpose(0, 1, 3, 2)) / math.sqrt(d)
        bias = self.relative_position_bias_table[self._rel_index].reshape(n, n, h).transpose(2, 0, 1)
        scores = scores + bias[None]
        if mask is not None:
            num_windows = mask.shape[0]
            mask = mask.astype(scores.dtype)  # a float32 mask would promote bfloat16 scores
            scores = scores.reshape(bw // num_windows, num_windows, h, n, n) + mask[None, :, None]
            scores = scores.reshape(bw, h, n, n)
        probs = self.dropout(mx.softmax(scores, axis=-1))
        return (probs @ v).transpose(0, 2, 1, 3).reshape(bw, n, c)


class ClapAudioSelfOutput(nn.Module):
    def __init__(self, config: ClapAudioConfig, dim: int) -> None:
        super().__init__()
        self.dense = nn.Linear(dim, dim)
        self.dropout = Dropout(config.attention_probs_dropout_prob)

    def __call__(self, x: mx.array) -> mx.array:
        return self.dropout(self.dense(x))


class ClapAudioAttention(nn.Module):
    def __init__(self, config: ClapAudioConfig, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        # ``self.self`` is the HF attribute name (``attention.self.query.weight``).
        self.self = ClapAudioSelfAttention(config, dim, num_heads, window)
        self.output = ClapAudioSelfOutput(config, dim)

    def __call__(self, x: mx.array, mask: mx.array | None) -> mx.array:
        return self.output(self.self(x, mask))


class ClapAudioIntermediate(nn.Module):
    def __init__(self, config: ClapAudioConfig, dim: int) -> None:
        super().__init__()
        self.dense = nn.Linear(dim, int(config.mlp_ratio * dim))
        self._act = activation(config.hidden_act)

    def __call__(self, x: mx.array) -> mx.array:
        return self._act(self.dense(x))


class ClapAudioOutput(nn.Module):
    def __init__(self, config: ClapAudioConfig, dim: int) -> None:
        super().__init__()
        self.dense = nn.Linear(int(config.mlp_ratio * dim), dim)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def __call__(self, x: mx.array) -> mx.array:
        return self.dropout(self.dense(x))


class ClapAudioLayer(nn.Module):
    """One Swin block: (shifted) window attention and an MLP, each pre-normed with a residual."""

    def __init__(
        self, config: ClapAudioConfig, dim: int, resolution: int, num_heads: int, drop_path: float, shift: int
    ) -> None:
        super().__init__()
        window = config.window_size
        if resolution <= window:
            # As in Swin: a grid no larger than the window is one window, never shifted.
            window, shift = resolution, 0
        self.window = window
        self.shift = shift
        self.resolution = resolution
        self.layernorm_before = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.attention = ClapAudioAttention(config, dim, num_heads, config.window_size)
        self.drop_path = DropPath(drop_path)
        self.layernorm_after = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.intermediate = ClapAudioIntermediate(config, dim)
        self.output = ClapAudioOutput(config, dim)
        self._mask = (
            mx.array(shifted_window_mask(resolution, resolution, window, shift)) if shift > 0 else None
        )

    def __call__(self, x: mx.array) -> mx.array:
        b, _, c = x.shape
        r, w, s = self.resolution, self.window, self.shift
        h = self.layernorm_before(x).reshape(b, r, r, c)
        if s > 0:
            h = mx.roll(h, shift=(-s, -s), axis=(1, 2))
        h = self.attention(_window_partition(h, w), self._mask)
        h = _window_reverse(h, w, b, r, r)
        if s > 0:
            h = mx.roll(h, shift=(s, s), axis=(1, 2))
        x = x + self.drop_path(h.reshape(b, r * r, c))
        return x + self.output(self.intermediate(self.layernorm_after(x)))


class ClapAudioPatchMerging(nn.Module):
    """Halve the grid: concatenate each 2x2 neighbourhood (4C channels), LayerNorm, project to 2C."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        # transformers builds this LayerNorm with the default eps (1e-5), not config.layer_norm_eps.
        self.norm = nn.LayerNorm(4 * dim, eps=1e-5)

    def __call__(self, x: mx.array, resolution: int) -> mx.array:
        b, _, c = x.shape
        x = x.reshape(b, resolution, resolution, c)
        # Order (row, col) = (0,0), (1,0), (0,1), (1,1): transformers' ``for col for row`` interleave.
        x = mx.concatenate([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], axis=-1)
        return self.reduction(self.norm(x.reshape(b, -1, 4 * c)))


class ClapAudioStage(nn.Module):
    def __init__(
        self,
        config: ClapAudioConfig,
        dim: int,
        resolution: int,
        depth: int,
        heads: int,
        drop_path,
        downsample,
    ):
        super().__init__()
        self.resolution = resolution
        self.blocks = [
            ClapAudioLayer(
                config, dim, resolution, heads, drop_path[i], 0 if i % 2 == 0 else config.window_size // 2
            )
            for i in range(depth)
        ]
        if downsample:
            self.downsample = ClapAudioPatchMerging(dim)
        # Activation checkpointing of each block (ClapModel.gradient_checkpointing_enable).
        self.gradient_checkpointing = False

    def __call__(self, x: mx.array) -> mx.array:
        for block in self.blocks:
            x = run_block(block, self.gradient_checkpointing, x)
        if "downsample" in self:
            x = self.downsample(x, self.resolution)
        return x


class SubsetBatchNorm(nn.BatchNorm):
    """BatchNorm (channels-last) whose training statistics come only from the samples where ``mask`` is true.

    transformers runs the fusion block on the ``is_longer`` clips alone, so in training mode its BatchNorm
    statistics (and running-statistic updates) cover only those clips. Masking reproduces that with static shapes.
    With no selected sample the running statistics are left unchanged, as transformers skips the block then.
    """

    def __call__(self, x: mx.array, mask: mx.array | None = None) -> mx.array:
        if not self.training or mask is None:
            return super().__call__(x)
        axes = tuple(range(x.ndim - 1))
        weight = mask.astype(x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))
        count = mx.sum(weight) * (x.size // (x.shape[0] * x.shape[-1]))
        safe = mx.maximum(count, 1.0)
        mean = mx.sum(x * weight, axis=axes) / safe
        var = mx.sum(mx.square(x - mean) * weight, axis=axes) / safe
        unbiased = var * count / mx.maximum(count - 1, 1.0)
        mu = self.momentum
        seen = count > 0
        self.running_mean = mx.where(seen, (1 - mu) * self.running_mean + mu * mean, self.running_mean)
        self.running_var = mx.where(seen, (1 - mu) * self.running_var + mu * unbiased, self.running_var)
        return (x - mean) * mx.rsqrt(var + self.eps) * self.weight + self.bias


class ClapAudioAFFBlock(nn.Module):
    """Attentional feature fusion of the global view with the 3 local views (fused checkpoints only).

    ``local_att`` and ``global_att`` are lists laid out like transformers' ``nn.Sequential`` so that parameter
    names keep their indices (``local_att.0`` conv, ``.1`` BatchNorm, ``.2`` ReLU, ...).
    """

    def __init__(self, config: ClapAudioConfig) -> None:
        super().__init__()
        channels = config.patch_embeds_hidden_size
        inter = int(channels // config.aff_block_r)

        def branch():
            return [
                nn.Conv2d(channels, inter, kernel_size=1),
                SubsetBatchNorm(inter),
                nn.ReLU(),
                nn.Conv2d(inter, channels, kernel_size=1),
                SubsetBatchNorm(channels),
            ]

        self.local_att = branch()
        self.global_att = [nn.Identity(), *branch()]  # index 0 is HF's AdaptiveAvgPool2d(1)

    @staticmethod
    def _run(layers, x: mx.array, mask: mx.array | None) -> mx.array:
        for layer in layers:
            x = layer(x, mask) if isinstance(layer, SubsetBatchNorm) else layer(x)
        return x

    def __call__(self, x: mx.array, residual: mx.array, mask: mx.array | None = None) -> mx.array:
        """Fuse ``(B, H, W, C)`` global features ``x`` with local ones; ``mask`` (B,) marks the clips that count
        for BatchNorm statistics in training mode (all when omitted)."""
        both = x + residual  # NHWC
        pooled = mx.mean(both, axis=(1, 2), keepdims=True)
        gate = mx.sigmoid(
            self._run(self.local_att, both, mask) + self._run(self.global_att[1:], pooled, mask)
        )
        return 2 * x * gate + 2 * residual * (1 - gate)


class ClapAudioPatchEmbed(nn.Module):
    """4x4 patch embedding (and, for fused checkpoints, the local-view branch and its fusion)."""

    def __init__(self, config: ClapAudioConfig) -> None:
        super().__init__()
        p = config.patch_size
        self.enable_fusion = config.enable_fusion
        self.proj = nn.Conv2d(1, config.patch_embeds_hidden_size, kernel_size=p, stride=p)
        if config.enable_patch_layer_norm:
            self.norm = nn.LayerNorm(config.patch_embeds_hidden_size)
        if self.enable_fusion:
            self.fusion_model = ClapAudioAFFBlock(config)
            self.mel_conv2d = nn.Conv2d(
                1, config.patch_embeds_hidden_size, kernel_size=(p, 3 * p), stride=(p, 3 * p)
            )

    def __call__(self, image: mx.array, is_longer: mx.array | None) -> mx.array:
        """``(B, S, S, C)`` image -> ``(B, (S/p)**2, hidden)`` tokens, row-major over the patch grid."""
        if self.enable_fusion:
            x = self.proj(image[..., 0:1])  # channel 0 is the global (whole clip) view
            if is_longer is not None and image.shape[-1] > 1:
                x = self._fuse_local_views(x, image[..., 1:], is_longer)
            elif is_longer is not None:
                # 1-channel ("rand_trunc") features of a clip longer than the window: transformers pads its
                # empty local views to zeros and still fuses them (skipping the fusion was 0.055 off its
                # embedding on the tiny fused model).
                x = self._fuse(x, mx.zeros_like(x), is_longer)
        else:
            x = self.proj(image)
        b, gh, gw, c = x.shape
        x = x.reshape(b, gh * gw, c)
        return self.norm(x) if "norm" in self else x

    def _fuse_local_views(self, x: mx.array, local: mx.array, is_longer: mx.array) -> mx.array:
        # transformers runs this only on the clips with is_longer; computing it for all clips and selecting keeps
        # shapes static for mx.compile. The mask keeps the other clips out of the BatchNorm training statistics.
        b, s, _, views = local.shape
        local = local.transpose(0, 3, 1, 2).reshape(b * views, s, s, 1)
        local = self.mel_conv2d(local)  # (B*3, S/p, S/(3p), hidden)
        _, gh, lw, c = local.shape
        local = local.reshape(b, views, gh, lw, c).transpose(0, 2, 1, 3, 4).reshape(b, gh, views * lw, c)
        local = mx.pad(local, [(0, 0), (0, 0), (0, x.shape[2] - views * lw), (0, 0)])
        return self._fuse(x, local, is_longer)

    def _fuse(self, x: mx.array, local: mx.array, is_longer: mx.array) -> mx.array:
        b = x.shape[0]
        is_longer = is_longer.reshape(b).astype(mx.bool_)
        fused = self.fusion_model(x, local, is_longer)
        return mx.where(is_longer.reshape(b, 1, 1, 1), fused, x)


class ClapAudioEncoder(nn.Module):
    """HTSAT: mel normalisation, folding, patch embedding, Swin stages, final norm and mean pooling."""

    def __init__(self, config: ClapAudioConfig) -> None:
        super().__init__()
        self.config = config
        self.patch_embed = ClapAudioPatchEmbed(config)
        grid = config.spec_size // config.patch_size
        total = sum(config.depths)
        rates = [config.drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        self.layers = []
        for i, (depth, heads) in enumerate(zip(config.depths, config.num_attention_heads)):
            start = sum(config.depths[:i])
            self.layers.append(
                ClapAudioStage(
                    config,
                    dim=config.patch_embeds_hidden_size * 2**i,
                    resolution=grid // 2**i,
                    depth=depth,
                    heads=heads,
                    drop_path=rates[start : start + depth],
                    downsample=i < len(config.depths) - 1,
                )
            )
        self.batch_norm = nn.BatchNorm(config.num_mel_bins)
        self.norm = nn.LayerNorm(config.num_features, eps=1e-5)

    def _resize_time(self, x: mx.array) -> mx.array:
        """Bicubic resize (align_corners) of axis 2 of ``(B, C, T, F)`` to ``spec_width`` frames."""
        frames, target = x.shape[2], self.config.spec_width
        if frames == target:
            return x
        index, weight = bicubic_resize_weights(frames, target)
        # Weights in the input's type: float32 weights would promote a bfloat16 tower to float32 from here on.
        weight = mx.array(weight, dtype=x.dtype)
        out = None
        for j in range(4):
            term = mx.take(x, mx.array(index[:, j]), axis=2) * weight[:, j, None]
            out = term if out is None else out + term
        return out

    def fold(self, features: mx.array) -> mx.array:
        """Normalise ``(B, C, T, F)`` log-mels and fold them into ``(B, S, S, C)`` images (channels-last).

        The time axis is resized to ``spec_size * freq_ratio`` frames, cut into ``freq_ratio`` blocks, and the
        blocks are stacked along frequency: image row ``k * F + f``, column ``t`` holds frame ``k * S + t``.
        """
        cfg = self.config
        if features.ndim != 4:
            raise ValueError(
                f"input_features must be (batch, channels, frames, mel_bins), got shape {tuple(features.shape)}"
            )
        b, c, t, f = features.shape
        if b == 0 or t == 0:
            raise ValueError(
                f"input_features holds no {'clips' if b == 0 else 'frames'} (shape {tuple(features.shape)})"
            )
        # A fused model also takes the 1-channel features of a "rand_trunc" extractor (see patch_embed).
        allowed = (1, 4) if cfg.enable_fusion else (1,)
        if c not in allowed:
            raise ValueError(
                f"input_features has {c} channels; this {'fused' if cfg.enable_fusion else 'unfused'} model expects "
                + ("4 (whole clip + 3 local views) or 1" if cfg.enable_fusion else "1")
                # (a front end with truncation "fusion" makes the 4: the usual mismatch, named for the user)
                + (
                    ""
                    if cfg.enable_fusion or c != 4
                    else "; 4 come from a front end with truncation 'fusion' "
                    "(preprocessor_config.json): unfused checkpoints use 'rand_trunc'"
                )
            )
        if f != cfg.num_mel_bins:
            raise ValueError(
                f"input_features has {f} mel bins; the model expects num_mel_bins={cfg.num_mel_bins}: "
                "a front end makes as many as its feature_size (preprocessor_config.json)"
            )
        if t > cfg.spec_width:
            raise ValueError(
                f"input_features has {t} frames; the model accepts at most {cfg.spec_width} (audio_config."
                f"spec_size {cfg.spec_size} x freq_ratio {cfg.freq_ratio}, spec_size // num_mel_bins); "
                "a front end makes max_length_s x sampling_rate / hop_length + 1 "
                "(preprocessor_config.json): shorten its max_length_s, or pass shorter features"
            )
        x = self.batch_norm(features)  # the mel axis is last: BatchNorm over mel bins, as HF's transpose does
        x = self._resize_time(x)
        r, s = cfg.freq_ratio, cfg.spec_size
        x = x.reshape(b, c * r, cfg.spec_width // r, f).transpose(0, 1, 3, 2).reshape(b, c, f * r, s)
        return x.transpose(0, 2, 3, 1)

    def __call__(self, input_features: mx.array, is_longer: mx.array | None = None) -> mx.array:
        """Pooled audio vector ``(B, num_features)`` from ``(B, C, T, F)`` log-mel features.

        The features are cast to the model's dtype: the extractor gives float32, and a bfloat16 model
        would otherwise be promoted to float32 by its first BatchNorm (slower, twice the memory).
        """
        input_features = input_features.astype(self.norm.weight.dtype)
        x = self.patch_embed(self.fold(input_features), is_longer)
        for stage in self.layers:
            x = stage(x)
        # transformers regroups the final 8x8 grid before its average pool; a mean over all tokens is the same.
        return mx.mean(self.norm(x), axis=1)


class ClapAudioModel(nn.Module):
    """Wrapper named like transformers' ``ClapAudioModel`` (its only child is ``audio_encoder``)."""

    def __init__(self, config: ClapAudioConfig) -> None:
        super().__init__()
        self.audio_encoder = ClapAudioEncoder(config)

    def __call__(
        self, input_features: mx.array | np.ndarray, is_longer: mx.array | np.ndarray | None = None
    ) -> mx.array:
        # Used alone as a backbone it is given what the feature extractor returns, numpy arrays by default, as
        # ClapModel.get_audio_features is (which converts them): without this, "Cannot interpret
        # 'mlx.core.float32' as a data type" from deep in the tower.
        input_features = model_input(input_features, "input_features")
        is_longer = None if is_longer is None else model_input(is_longer, "is_longer")
        return self.audio_encoder(input_features, is_longer)
