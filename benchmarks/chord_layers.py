"""Forward+backward time of candidate layers for the chord model, in MLX on this machine's CPU.

The chord model maps CQT frames [B, T, bins] to per-frame logits. This benchmark times each candidate layer
at the shape of a default training batch (B=16 windows of T=96 frames, d=128, bins=216, 4 heads) through a
compiled forward+backward over the layer's state (as the Trainer compiles its step; the backward runs
through to the input), and prints milliseconds per call with the ratio to a plain `Linear(d, d)` measured
in the same run. Candidates are timed in turns and the minimum of the repeats is kept, so that load from
other processes on a shared machine hits all of them alike::

    python benchmarks/chord_layers.py [--batch 16 --frames 96 --dim 128 --bins 216 --repeats 15]

Measured 2026-11-21 on the 2-core Zen 5 EPYC (shared, busy), mlx 0.32.4 (mlx[cpu]) + system OpenBLAS,
core type autodetected; CPU ms of this process per forward+backward (ratio to Linear d->d):

    linear d->d                           3.76  (1.0x)
    linear bins->d                        5.18  (1.4x)
    relu                                  0.63  (0.2x)
    gelu (erf)                            9.45  (2.5x)
    gelu (tanh approx)                    9.78  (2.6x)
    silu                                  4.40  (1.2x)
    layer_norm                            2.77  (0.7x)
    rms_norm                              1.44  (0.4x)
    batch_norm                            2.35  (0.6x)
    conv1d over time k=3 d->d             8.67  (2.3x)
    conv1d over time k=5 d->d            13.02  (3.5x)
    depthwise conv1d k=7                 17.53  (4.7x)
    conv2d 3x3 1->8 ch over (T, bins)   121.64  (32.4x)
    5-frame stack + linear bins*5->d     22.01  (5.9x)
    attention, matmuls + softmax         34.42  (9.2x)
    attention, fused sdpa                34.30  (9.1x)
    attention, matmuls + relu2           27.44  (7.3x)
    bidirectional GRU (d/2 each way)    101.52  (27.0x)
    transformer block, softmax           52.63  (14.0x)
    transformer block, relu2 (chosen)    46.20  (12.3x)

What this decided in `audiotrain.models.chord_model`:
- Sequence model: a bidirectional transformer encoder. A bidirectional GRU (a loop of T small steps each
  way) costs 2.2x a whole transformer block at T=96, and more as T grows.
- Activations ReLU (erf-GELU costs 15x a ReLU here, SiLU 7x); norms RMSNorm (half a LayerNorm).
- Attention as matmuls: the fused SDPA kernel is no faster on this backend. The score normalisation is a
  squared ReLU over the row sum ("relu2") instead of a softmax: `exp` is slow on MLX's CPU backend
  (8.4 ms for the 590k scores of one layer, vs 0.8 ms for relu2), which makes the attention 20% and the
  block 12% cheaper; "softmax" stays available as `ChordModelConfig.attention`.
- Front end: frames as vectors (a per-frame Linear over bins after stacking +-2 neighbouring frames); a 2-D
  conv over (time, frequency) costs 32x a Linear.
A whole training step of the default model (2 blocks, d=128, B=16, T=96, with loss and AdamW) took about
130-145 ms of CPU on this machine.

The second table times that whole step as the recipe runs it on this machine: one of its two processes'
share (B=8), the default model, its loss and metrics, backward and AdamW, compiled over the state. Measured
2026-11-26 on the same machine, otherwise idle, in two runs (ms per step, CPU ratio to the default; the
second run, with the layer table before it, on a slower spell of the machine):

    default                                43.8 / 48.0 wall   46.8 / 51.3 cpu  (1.00x)
    front ends unfolded                    49.3 / 59.4        52.1 / 63.5      (1.11x / 1.24x)
    loss differentiated by MLX             45.2 / 52.8        48.0 / 56.8      (1.03x / 1.11x)
    both (the step before)                 50.8 / 60.7        53.9 / 64.8      (1.15x / 1.26x)

- Front ends: each input LayerNorm's scale and offset are folded into the Linear that reads the context
  stack (`ChordRecognitionModel._normed_front`), the same function and gradients, so the backward pass stops
  at the Linear's weights instead of running through the stack's copies and the norm.
- Loss: `chord_loss.smoothed_cross_entropy` has its own gradient, one fused expression, where MLX's autodiff
  of the composed ops wrote the softmax, a scatter and a broadcast as separate passes.
In the recipe (two processes, 8 epochs, alternated twice each way of launching it) training took 23-25 s
against 26-28 s before, an epoch 2.9-3.0 s against 3.3-3.4 s.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from types import MethodType

import audiotrain  # noqa: F401  (loads OpenBLAS before mlx.core)
from audiotrain.models import fast_math
from audiotrain.models.chord_model import ChordRecognitionModel, SelfAttention, TransformerBlock

import mlx.core as mx
import mlx.nn as nn


class _Act(nn.Module):
    def __init__(self, fn: Callable[[mx.array], mx.array]):
        super().__init__()
        self.fn = fn

    def __call__(self, x: mx.array) -> mx.array:
        return self.fn(x)


class _FusedAttention(SelfAttention):
    """The model's attention with `mx.fast.scaled_dot_product_attention` (same distance bias, as a mask)."""

    def __call__(self, x: mx.array, key_bias: mx.array | None = None) -> mx.array:
        b, t, d = x.shape
        head_dim = d // self.n_heads
        qkv = self.qkv(x).reshape(b, t, 3, self.n_heads, head_dim).transpose(2, 0, 3, 1, 4)
        positions = mx.arange(t, dtype=mx.float32)
        bias = -self._slopes[:, None, None] * mx.abs(positions[:, None] - positions[None, :])
        y = mx.fast.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], scale=head_dim**-0.5, mask=bias)
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
    return [
        ("linear d->d", nn.Linear(dim, dim), dim),
        ("linear bins->d", nn.Linear(bins, dim), bins),
        ("relu", _Act(nn.relu), dim),
        ("gelu (erf)", _Act(nn.gelu), dim),
        ("gelu (tanh approx)", _Act(nn.gelu_approx), dim),
        ("silu", _Act(nn.silu), dim),
        ("layer_norm", nn.LayerNorm(dim), dim),
        ("rms_norm", nn.RMSNorm(dim), dim),
        ("batch_norm", nn.BatchNorm(dim), dim),
        ("conv1d over time k=3 d->d", nn.Conv1d(dim, dim, 3, padding=1), dim),
        ("conv1d over time k=5 d->d", nn.Conv1d(dim, dim, 5, padding=2), dim),
        ("depthwise conv1d k=7", nn.Conv1d(dim, dim, 7, padding=3, groups=dim), dim),
        ("conv2d 3x3 1->8 ch over (T, bins)", _Conv2d(), bins),
        ("5-frame stack + linear bins*5->d", _FrameStack(bins, dim, 2), bins),
        ("attention, matmuls + softmax", SelfAttention(dim, heads, "softmax"), dim),
        ("attention, fused sdpa", _FusedAttention(dim, heads, "softmax"), dim),
        ("attention, matmuls + relu2", SelfAttention(dim, heads, "relu2"), dim),
        ("bidirectional GRU (d/2 each way)", _BiGRU(dim), dim),
        ("transformer block, softmax", TransformerBlock(dim, heads, 2 * dim, 0.1, "softmax"), dim),
        ("transformer block, relu2 (chosen)", TransformerBlock(dim, heads, 2 * dim, 0.1, "relu2"), dim),
    ]


class _Probe(nn.Module):
    """`module(x * scale)` with a learnable scale, so that the backward pass also runs through the layer to
    its input (what a layer inside a network costs), including for layers without parameters."""

    def __init__(self, module: nn.Module, width: int):
        super().__init__()
        self.scale = mx.ones((width,))
        self.layer = module

    def __call__(self, x: mx.array) -> mx.array:
        return self.layer(x * self.scale)


def compiled_forward_backward(module: nn.Module, width: int) -> Callable[[mx.array], None]:
    """One compiled forward+backward of `sum(module(x))` w.r.t. the parameters and the input, compiled over
    the module's state as the Trainer compiles its step."""
    probe = _Probe(module, width)
    value_and_grad = nn.value_and_grad(probe, lambda m, inp: m(inp).sum())

    @partial(mx.compile, inputs=[probe.state], outputs=[probe.state])
    def step(inp):
        return value_and_grad(probe, inp)

    return lambda x: mx.eval(step(x))


def time_round_robin(
    runs: list[tuple[Callable[[mx.array], None], mx.array]], repeats: int
) -> list[tuple[float, float]]:
    """(min wall ms, min CPU ms) per call of each run. Runs are timed in turns so that load from other
    processes hits every candidate alike; the minimum is the least disturbed call. CPU time (this process)
    is less sensitive to other processes than wall time on a shared machine."""
    for fn, x in runs:  # compile and warm up
        for _ in range(3):
            fn(x)
    best = [(float("inf"), float("inf"))] * len(runs)
    for _ in range(repeats):
        for i, (fn, x) in enumerate(runs):
            wall, cpu = time.perf_counter(), time.process_time()
            fn(x)
            wall, cpu = 1000.0 * (time.perf_counter() - wall), 1000.0 * (time.process_time() - cpu)
            best[i] = (min(best[i][0], wall), min(best[i][1], cpu))
    return best


def _composed_smoothed_cross_entropy(logits: mx.array, targets: mx.array, label_smoothing: float) -> mx.array:
    """The loss as it was before `chord_loss.smoothed_cross_entropy` got its own gradient: composed ops,
    differentiated by MLX (same values; the gradient in several passes)."""
    logits = logits.astype(mx.float32)
    log_norm = fast_math.logsumexp(logits)
    safe = mx.clip(targets, 0, logits.shape[-1] - 1).astype(mx.int32)
    nll = log_norm - mx.take_along_axis(logits, safe[..., None], axis=-1)[..., 0]
    if label_smoothing == 0.0:
        return nll
    return (1.0 - label_smoothing) * nll + label_smoothing * (log_norm - mx.mean(logits, axis=-1))


def _unfolded_front(
    model: ChordRecognitionModel, x: mx.array, norm: nn.LayerNorm, linear: nn.Linear
) -> mx.array:
    """The model's front end as it was before the norms' scale and offset were folded into the Linear."""
    return linear(model._stack_context(norm(x)))


def training_step(composed_loss: bool = False, unfolded: bool = False) -> Callable[[dict], None]:
    """One compiled training step of the recipe's default `ChordTask`: forward, loss and metrics, backward
    and AdamW, compiled over the task's state as the Trainer compiles its step. `composed_loss` swaps in the
    loss without its own gradient while the step runs (it is traced on its first call); `unfolded` gives the
    model its front ends as they were written before (`_unfolded_front`)."""
    from audiotrain.models import chord_loss
    from audiotrain.recipes.chords.config import TrainingConfig
    from audiotrain.recipes.chords.train import build_task

    task = build_task(TrainingConfig(), [], steps_per_epoch=47)
    if unfolded:
        object.__setattr__(task.model, "_normed_front", MethodType(_unfolded_front, task.model))
    optimizer = task.configure_optimizers().optimizer
    value_and_grad = nn.value_and_grad(task, lambda module, b: module.compute_loss(b))
    state = [task.state, optimizer.state, mx.random.state]

    @partial(mx.compile, inputs=state, outputs=state)
    def step(b):
        (loss, metrics), grads = value_and_grad(task, b)
        optimizer.update(task, grads)
        return loss, metrics

    def run(b: dict) -> None:
        saved = chord_loss.smoothed_cross_entropy
        if composed_loss:
            chord_loss.smoothed_cross_entropy = _composed_smoothed_cross_entropy
        try:
            mx.eval(step(b), state)
        finally:
            chord_loss.smoothed_cross_entropy = saved

    return run


def step_batch(batch: int, frames: int) -> dict:
    """A batch of the default features' width with random chord-type, root and bass targets."""
    from audiotrain.recipes.chords.config import TrainingConfig

    model = TrainingConfig().model
    chord_type = mx.random.randint(0, model.num_chord_types, (batch, frames))
    defined = chord_type >= 2
    return {
        "features": mx.random.normal((batch, frames, model.n_bins + model.bass_view_bins)),
        "chord_type": chord_type,
        "root": mx.where(defined, mx.random.randint(0, 12, (batch, frames)), -1),
        "bass": mx.where(defined, mx.random.randint(0, 12, (batch, frames)), -1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--bins", type=int, default=216)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--step_batch",
        type=int,
        default=8,
        help="windows per whole training step (one of 2 processes' share)",
    )
    args = parser.parse_args(argv)

    mx.random.seed(0)
    candidates = _candidates(args.dim, args.bins, args.heads)
    runs = [
        (compiled_forward_backward(module, width), mx.random.normal((args.batch, args.frames, width)))
        for _, module, width in candidates
    ]
    results = time_round_robin(runs, args.repeats)
    base_wall, base_cpu = results[0]
    print(f"B={args.batch} T={args.frames} d={args.dim} bins={args.bins} heads={args.heads}; {blas_status()}")
    print(f"{'forward+backward':36s} {'wall ms':>8s} {'cpu ms':>8s}  cpu ratio to '{candidates[0][0]}'")
    for (name, _, _), (wall, cpu) in zip(candidates, results):
        print(f"{name:36s} {wall:8.2f} {cpu:8.2f}  ({cpu / base_cpu:.1f}x)")

    steps = [
        ("default", training_step()),
        ("front ends unfolded", training_step(unfolded=True)),
        ("loss differentiated by MLX", training_step(composed_loss=True)),
        ("both (the step before)", training_step(True, unfolded=True)),
    ]
    b = step_batch(args.step_batch, args.frames)
    results = time_round_robin([(fn, b) for _, fn in steps], args.repeats)
    base_wall, base_cpu = results[0]
    print(f"\nwhole training step of the recipe's default model, B={args.step_batch} T={args.frames}")
    print(f"{'':36s} {'wall ms':>8s} {'cpu ms':>8s}  cpu ratio to 'default'")
    for (name, _), (wall, cpu) in zip(steps, results):
        print(f"{name:36s} {wall:8.2f} {cpu:8.2f}  ({cpu / base_cpu:.2f}x)")


def blas_status() -> str:
    from audiotrain._blas import STATUS

    return f"BLAS: {STATUS.describe()}"


if __name__ == "__main__":
    main()
