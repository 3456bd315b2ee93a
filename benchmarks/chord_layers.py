"""Forward+backward time of candidate layers for the chord model, in MLX on this machine's CPU.

The chord model maps CQT frames [B, T, bins] to per-frame logits. This benchmark times each candidate
layer at the shapes of a training batch (default B=16, T=128 frames, d=128, bins=216) through a compiled
`value_and_grad` (as the Trainer runs it) and prints milliseconds per call next to the ratio against a
plain `Linear(d, d)` measured in the same run. Run it with::

    python benchmarks/chord_layers.py [--batch 16 --frames 128 --dim 128 --bins 216 --repeats 20]

Measured 2026-11-21 on the 2-core Zen 5 EPYC, mlx 0.32.4 (mlx[cpu]) + system OpenBLAS
(OPENBLAS_CORETYPE=Haswell), B=16, T=128, d=128, bins=216, 4 heads; ms per forward+backward (ratio to
Linear d→d), medians of 20 calls:

    linear d->d                          0.67  (1.0x)
    linear bins->d                       0.89  (1.3x)
    relu                                 0.10  (0.2x)
    gelu (erf)                           6.44  (9.6x)
    gelu (tanh approx)                   8.96  (13.4x)
    silu                                 3.12  (4.7x)
    layer_norm (mx.fast)                 0.74  (1.1x)
    rms_norm (mx.fast)                   0.63  (0.9x)
    batch_norm                           0.57  (0.8x)
    conv1d time k=3 d->d                 3.00  (4.5x)
    conv1d time k=5 d->d                 4.53  (6.7x)
    depthwise conv1d k=7                 3.41  (5.1x)
    conv2d 3x3 1->8 ch (T x bins)       36.05  (53.8x)
    frame stack (5 frames) + linear      2.82  (4.2x)
    attention (matmul + softmax)         4.09  (6.1x)
    attention (fused sdpa)              10.20  (15.2x)
    GRU bidirectional d/2 per way     196.24  (292.9x)
    transformer block (ReLU, rms, mm)    8.88  (13.3x)

Conclusions that fixed the architecture of `audiotrain.models.chord_model`:
- GRU (a Python loop of T small steps, forward and backward) costs ~20x a whole transformer block at
  T=128, so the sequence model is a bidirectional (unmasked) transformer encoder, as in BTC.
- Attention is written as two matmuls and a softmax: the fused SDPA kernel is ~2.5x slower here.
- Feed-forward activations are ReLU (erf-GELU ~65x and SiLU ~30x the cost of ReLU); norms are
  `mx.fast.rms_norm`-based RMSNorm (LayerNorm costs about the same here; RMSNorm is what the model uses).
- A 2-D conv over (time, frequency) costs ~50x a Linear, so the front end works on frames as vectors:
  each frame is projected by a Linear after concatenating a few neighbouring frames (local context, done
  with slicing, which costs less than a conv1d over time).
(Numbers vary ±30% between runs on this shared machine; the ordering does not.)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import audiotrain  # noqa: F401  (loads OpenBLAS before mlx.core)

# isort: split
import mlx.core as mx
import mlx.nn as nn


class _Act(nn.Module):
    def __init__(self, fn: Callable[[mx.array], mx.array]):
        super().__init__()
        self.fn = fn

    def __call__(self, x: mx.array) -> mx.array:
        return self.fn(x)


class _Attention(nn.Module):
    """Self-attention over time written with matmuls or the fused kernel."""

    def __init__(self, dim: int, heads: int, fused: bool):
        super().__init__()
        self.heads, self.fused = heads, fused
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)

    def __call__(self, x: mx.array) -> mx.array:
        b, t, d = x.shape
        q, k, v = mx.split(
            self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).transpose(2, 0, 3, 1, 4), 3
        )
        q, k, v = q[0], k[0], v[0]
        scale = (d // self.heads) ** -0.5
        if self.fused:
            y = mx.fast.scaled_dot_product_attention(q, k, v, scale=scale)
        else:
            y = mx.softmax((q * scale) @ k.transpose(0, 1, 3, 2), axis=-1) @ v
        return self.out(y.transpose(0, 2, 1, 3).reshape(b, t, d))


class _BiGRU(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.fwd = nn.GRU(dim, dim // 2)
        self.bwd = nn.GRU(dim, dim // 2)

    def __call__(self, x: mx.array) -> mx.array:
        return mx.concatenate([self.fwd(x), self.bwd(x[:, ::-1])[:, ::-1]], axis=-1)


class _Conv2d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)

    def __call__(self, x: mx.array) -> mx.array:
        return self.conv(x[..., None])


class _FrameStack(nn.Module):
    def __init__(self, bins: int, dim: int, context: int):
        super().__init__()
        self.context = context
        self.proj = nn.Linear(bins * (2 * context + 1), dim)

    def __call__(self, x: mx.array) -> mx.array:
        t = x.shape[1]
        padded = mx.pad(x, [(0, 0), (self.context, self.context), (0, 0)])
        frames = [padded[:, i : i + t] for i in range(2 * self.context + 1)]
        return self.proj(mx.concatenate(frames, axis=-1))


def _candidates(dim: int, bins: int, heads: int) -> list[tuple[str, nn.Module, int]]:
    from audiotrain.models.chord_model import TransformerBlock

    return [
        ("linear d->d", nn.Linear(dim, dim), dim),
        ("linear bins->d", nn.Linear(bins, dim), bins),
        ("relu", _Act(nn.relu), dim),
        ("gelu (erf)", _Act(nn.gelu), dim),
        ("gelu (tanh approx)", _Act(nn.gelu_approx), dim),
        ("silu", _Act(nn.silu), dim),
        ("layer_norm (mx.fast)", nn.LayerNorm(dim), dim),
        ("rms_norm (mx.fast)", nn.RMSNorm(dim), dim),
        ("batch_norm", nn.BatchNorm(dim), dim),
        ("conv1d time k=3 d->d", nn.Conv1d(dim, dim, 3, padding=1), dim),
        ("conv1d time k=5 d->d", nn.Conv1d(dim, dim, 5, padding=2), dim),
        ("depthwise conv1d k=7", nn.Conv1d(dim, dim, 7, padding=3, groups=dim), dim),
        ("conv2d 3x3 1->8 ch (T x bins)", _Conv2d(), bins),
        ("frame stack (5 frames) + linear", _FrameStack(bins, dim, 2), bins),
        ("attention (matmul + softmax)", _Attention(dim, heads, fused=False), dim),
        ("attention (fused sdpa)", _Attention(dim, heads, fused=True), dim),
        ("GRU bidirectional d/2 per way", _BiGRU(dim), dim),
        ("transformer block (ReLU, rms, mm)", TransformerBlock(dim, heads, 2 * dim, dropout=0.0), dim),
    ]


def compiled_forward_backward(module: nn.Module) -> Callable[[mx.array], None]:
    """A function running one compiled forward+backward of `sum(module(x))` w.r.t. params and x."""

    def loss(params, inp):
        module.update(params)
        return module(inp).sum()

    grad_fn = mx.compile(mx.value_and_grad(loss, argnums=(0, 1)))
    params = module.trainable_parameters()
    return lambda x: mx.eval(grad_fn(params, x))


def time_round_robin(runs: list[tuple[Callable[[mx.array], None], mx.array]], repeats: int) -> list[float]:
    """Minimum milliseconds per call of each run, timed in turns so that load from other processes on this
    shared machine hits every candidate alike (the minimum is the least disturbed call)."""
    for fn, x in runs:  # compile and warm up
        for _ in range(3):
            fn(x)
    best = [float("inf")] * len(runs)
    for _ in range(repeats):
        for i, (fn, x) in enumerate(runs):
            start = time.perf_counter()
            fn(x)
            best[i] = min(best[i], 1000.0 * (time.perf_counter() - start))
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=128)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--bins", type=int, default=216)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)

    mx.random.seed(0)
    candidates = _candidates(args.dim, args.bins, args.heads)
    runs = [
        (compiled_forward_backward(module), mx.random.normal((args.batch, args.frames, width)))
        for _, module, width in candidates
    ]
    results = list(zip([name for name, _, _ in candidates], time_round_robin(runs, args.repeats)))
    baseline = results[0][1]
    print(f"B={args.batch} T={args.frames} d={args.dim} bins={args.bins} heads={args.heads}")
    print(f"{'layer':36s} {'ms':>8s}  ratio to '{results[0][0]}'")
    for name, ms in results:
        print(f"{name:36s} {ms:8.2f}  ({ms / baseline:.1f}x)")


if __name__ == "__main__":
    main()
