"""Step-time overhead of `EMAWeightAveraging`: the same fit with and without it, in one run.

A small MLP (256-512-512-10, 0.4 M parameters, batch 64, AdamW): the update is one compiled
elementwise function over the parameter tree after every optimizer step. Rounds alternate the two
(the order rotates), and each round's with/without ratio of step times is paired, so drift of the
machine's speed between rounds cancels; prints the median and the best paired ratio.

    python benchmarks/weight_averaging.py [--steps 200] [--repeats 21]
"""

from __future__ import annotations

import argparse
import time

import audiotrain  # noqa: F401  (loads the optimized BLAS before mlx)
from audiotrain import OptimizerConfig, Trainer, TrainModule
from audiotrain.train import EMAWeightAveraging
from audiotrain.train.callbacks import Callback

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten

WARMUP = 5  # steps before timing starts: tracing, compiling, first allocations


class MLP(TrainModule):
    def __init__(self, d_in=256, hidden=512, n_classes=10):
        super().__init__()
        self.layers = [nn.Linear(d_in, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, n_classes)]

    def __call__(self, x):
        for layer in self.layers[:-1]:
            x = nn.relu(layer(x))
        return self.layers[-1](x)

    def compute_loss(self, batch):
        x, y = batch
        return mx.mean(nn.losses.cross_entropy(self(x), y)), {}

    def configure_optimizers(self):
        return OptimizerConfig(optimizer=optim.AdamW(learning_rate=1e-3))


class Stopwatch(Callback):
    """Seconds of the steps after the warm-up ones, measured from inside `fit`."""

    def __init__(self):
        self.batches, self.warm, self.end = 0, None, None

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.batches += 1
        mx.eval(module.parameters())  # (the step's work done: a fair end for both)
        now = time.perf_counter()
        if self.batches == WARMUP:
            self.warm = now
        self.end = now


def seconds_per_step(batches, steps: int, averaging: bool) -> float:
    mx.random.seed(0)
    watch = Stopwatch()
    # The average is updated before the stopwatch reads the clock (callbacks run in the order given).
    callbacks = [EMAWeightAveraging(decay=0.999), watch] if averaging else [watch]
    trainer = Trainer(
        max_steps=WARMUP + steps,
        log_every_n_steps=50,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        seed=0,
        callbacks=callbacks,
    )
    data = batches * -(-(WARMUP + steps) // len(batches))
    trainer.fit(MLP(), data[: WARMUP + steps])
    if averaging:
        mx.eval(callbacks[0].state_arrays())
    return (watch.end - watch.warm) / steps


def update_alone(repeats: int = 200) -> tuple[float, float]:
    """ms of one EMA update over the MLP's parameters: the compiled tree function, and the same
    expression run eagerly array by array (what the compilation saves)."""
    from audiotrain.train.callbacks.weight_averaging import _compiled_ema, _ema_tree

    params = dict(tree_flatten(MLP().parameters()))
    current = {k: v + 1 for k, v in params.items()}
    decay = mx.array(0.999, mx.float32)
    times = []
    for update in (_compiled_ema, _ema_tree):
        average = params
        mx.eval(average, current)
        for _ in range(WARMUP):
            average = update(average, current, decay)
            mx.eval(average)
        start = time.perf_counter()
        for _ in range(repeats):
            average = update(average, current, decay)
            mx.eval(average)
        times.append(1e3 * (time.perf_counter() - start) / repeats)
    return times[0], times[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args(argv)
    for name in ("steps", "batch_size", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be 1 or more, got {getattr(args, name)}")
    rng = np.random.default_rng(0)
    batches = [
        (
            mx.array(rng.normal(size=(args.batch_size, 256)).astype(np.float32)),
            mx.array(rng.integers(0, 10, args.batch_size).astype(np.int32)),
        )
        for _ in range(50)
    ]
    plain, ema = [], []
    for round_ in range(args.repeats):
        for averaging in (False, True) if round_ % 2 == 0 else (True, False):
            (ema if averaging else plain).append(seconds_per_step(batches, args.steps, averaging))
    ratios = np.array(ema) / np.array(plain)
    n = sum(int(np.prod(v.shape)) for layer in MLP().layers for v in layer.parameters().values())
    print(
        f"model: MLP 256-512-512-10 ({n / 1e6:.2f} M parameters), batch {args.batch_size}, AdamW, "
        f"{mx.default_device()}; {args.steps} timed steps after {WARMUP}, {args.repeats} alternating rounds"
    )
    print(f"without averaging: {1e3 * np.median(plain):.3f} ms/step (median)")
    print(f"EMAWeightAveraging: {1e3 * np.median(ema):.3f} ms/step (median)")
    compiled, eager = update_alone()
    print(f"the update alone: {compiled:.3f} ms compiled, {eager:.3f} ms eager (one array at a time)")
    print(
        f"step-time ratio with/without: median {np.median(ratios):.3f}, best {ratios.min():.3f} "
        "(paired rounds)"
    )


if __name__ == "__main__":
    main()
