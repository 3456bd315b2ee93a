"""Manual optimization's cost: the Trainer's manual GAN step against the same alternating updates by hand.

A small MLP GAN (discriminator first, then generator, as a vocoder trains), the same data and steps, in one
run, interleaved: prints steps/s of
- the Trainer with `automatic_optimization = False`, as it runs by default (`Trainer(compile=True)`: each
  `manual_backward` compiled per loss function, each `opt.step()`'s update per optimizer),
- the same Trainer with `compile=False` (eager `manual_backward` / `opt.step()`),
- the same updates written by hand, eager (`nn.value_and_grad`, `optimizer.update`): the eager Trainer's
  overhead is the ratio of the second to this one,
- the same loop with each network's update `mx.compile`d over its state: what the compiled Trainer is
  measured against.

    python benchmarks/manual_gan.py [--steps 100] [--repeats 5] [--hidden 512]
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import audiotrain  # noqa: F401  (loads the optimized BLAS before mlx)
from audiotrain import Trainer, TrainModule

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np

D_IN = 64


def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(d_in, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, d_out)
    )


def _d_loss(gen: nn.Module, disc: nn.Module, z: mx.array, x: mx.array) -> mx.array:
    fake = mx.stop_gradient(gen(z))
    return mx.mean((disc(x) - 1) ** 2) + mx.mean(disc(fake) ** 2)


def _g_loss(gen: nn.Module, disc: nn.Module, z: mx.array) -> mx.array:
    return mx.mean((disc(gen(z)) - 1) ** 2)


class GAN(TrainModule):
    def __init__(self, hidden: int):
        super().__init__()
        self.automatic_optimization = False
        mx.random.seed(0)
        self.generator, self.discriminator = _mlp(D_IN, hidden, D_IN), _mlp(D_IN, hidden, 1)

    def configure_optimizers(self):
        return [
            {"optimizer": optim.Adam(learning_rate=2e-4), "params": self.generator},
            {"optimizer": optim.Adam(learning_rate=2e-4), "params": self.discriminator},
        ]

    def training_step(self, batch, batch_idx):
        z, x = batch
        opt_g, opt_d = self.optimizers()
        with self.toggled_optimizer(opt_d):
            self.manual_backward(_d_loss, self.generator, self.discriminator, z, x)
            opt_d.step()
            opt_d.zero_grad()
        with self.toggled_optimizer(opt_g):
            self.manual_backward(_g_loss, self.generator, self.discriminator, z)
            opt_g.step()
            opt_g.zero_grad()


def _batches(steps: int, batch: int) -> list[tuple[mx.array, mx.array]]:
    rng = np.random.default_rng(0)
    return [
        (
            mx.array(rng.normal(size=(batch, D_IN)).astype("float32")),
            mx.array(rng.normal(size=(batch, D_IN)).astype("float32")),
        )
        for _ in range(steps)
    ]


def trainer_run(batches, hidden: int, compiled: bool) -> float:
    trainer = Trainer(
        compile=compiled,
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
    )
    model = GAN(hidden)
    start = time.perf_counter()
    trainer.fit(model, batches)
    mx.eval(model.parameters())
    return len(batches) / (time.perf_counter() - start)


def by_hand(batches, hidden: int, compiled: bool) -> float:
    model = GAN(hidden)
    gen, disc = model.generator, model.discriminator
    opt_g, opt_d = optim.Adam(learning_rate=2e-4), optim.Adam(learning_rate=2e-4)
    d_grad = nn.value_and_grad(disc, lambda z, x: _d_loss(gen, disc, z, x))
    g_grad = nn.value_and_grad(gen, lambda z: _g_loss(gen, disc, z))

    def d_step(z, x):
        loss, grads = d_grad(z, x)
        opt_d.update(disc, grads)
        return loss

    def g_step(z):
        loss, grads = g_grad(z)
        opt_g.update(gen, grads)
        return loss

    if compiled:
        state = [gen.state, disc.state, opt_g.state, opt_d.state]
        d_step = partial(mx.compile, inputs=state, outputs=state)(d_step)
        g_step = partial(mx.compile, inputs=state, outputs=state)(g_step)
    start = time.perf_counter()
    for z, x in batches:
        d_step(z, x)
        g_step(z)
        mx.eval(gen.parameters(), disc.parameters(), opt_g.state, opt_d.state)
    return len(batches) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    batches = _batches(args.steps, args.batch)
    runs = {
        "trainer, compiled": partial(trainer_run, batches, args.hidden, True),
        "trainer, eager": partial(trainer_run, batches, args.hidden, False),
        "by hand, eager": partial(by_hand, batches, args.hidden, False),
        "by hand, compiled": partial(by_hand, batches, args.hidden, True),
    }
    for run in runs.values():  # (warm-up: MLX's kernels, the compile)
        run()
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):  # interleaved: the machine's load falls on every variant alike
        for name, run in runs.items():
            rates[name].append(run())
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(
        f"GAN of two {args.hidden}-wide MLPs, batch {args.batch}, {args.steps} steps x {args.repeats} (median)"
    )
    for name, rate in median.items():
        print(f"  {name:20s} {rate:8.1f} steps/s")
    print(
        f"  trainer, compiled / by hand, compiled  {median['trainer, compiled'] / median['by hand, compiled']:.3f}"
    )
    print(
        f"  trainer, eager / by hand, eager        {median['trainer, eager'] / median['by hand, eager']:.3f}"
    )
    print(
        f"  trainer, compiled / trainer, eager     {median['trainer, compiled'] / median['trainer, eager']:.3f}"
    )
    print(
        f"  by hand, eager / compiled              {median['by hand, eager'] / median['by hand, compiled']:.3f}"
    )


if __name__ == "__main__":
    main()
