"""Cost of reading a batch weight on the host every batch: `TrainModule.batch_size` returning
`int(mx.sum(mask).item())` (what the chord task did) against the same count kept on the device
(`mx.sum(mask)`, what it returns now).

The read waits for the step in flight before the next is queued, so the device idles through the host's
work on each batch (fetching, checking, hooks): `--host_ms` adds that much host work per batch (a sleep in
`on_train_batch_start`, as a loader's fetch). Same model, data and steps; the two kinds alternate; best of
`--repeats`. Prints steps/s of both and the ratio device/host-read (above 1: the read cost that much).

    python benchmarks/batch_weight_sync.py [--steps 200] [--repeats 3] [--host_ms 0 2]
"""

from __future__ import annotations

import argparse
import time

import audiotrain  # noqa: F401  (loads the optimized BLAS before mlx)
from audiotrain import OptimizerConfig, Trainer, TrainModule
from audiotrain.train.callbacks import Callback

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np

B, T, D, H = 16, 64, 128, 256  # windows, frames, features, hidden


def make_batches(n: int) -> list[dict[str, mx.array]]:
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(n):
        real = rng.integers(T // 2, T + 1, size=(B, 1))  # padded windows, as the chord loader's
        batches.append(
            {
                "x": mx.array(rng.standard_normal((B, T, D)).astype(np.float32)),
                "y": mx.array(rng.integers(0, 10, (B, T)).astype(np.int32)),
                "mask": mx.array((np.arange(T)[None, :] < real).astype(np.float32)),
            }
        )
    return batches


class DeviceWeight(TrainModule):
    """A masked frame classifier weighted by its real frames, counted on the device."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(D, H), nn.ReLU(), nn.Linear(H, H), nn.ReLU(), nn.Linear(H, 10))

    def compute_loss(self, batch):
        ce = nn.losses.cross_entropy(self.net(batch["x"]), batch["y"])
        return mx.sum(ce * batch["mask"]) / mx.maximum(mx.sum(batch["mask"]), 1.0)

    def batch_size(self, batch):
        return mx.sum(batch["mask"])

    def configure_optimizers(self):
        return OptimizerConfig(optim.AdamW(learning_rate=1e-3))


class HostReadWeight(DeviceWeight):
    """The same count read on the host (the baseline: ChordTask.batch_size before)."""

    def batch_size(self, batch):
        return int(mx.sum(batch["mask"]).item())


class HostWork(Callback):
    def __init__(self, seconds: float):
        self.seconds = seconds

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if self.seconds:
            time.sleep(self.seconds)


def steps_per_second(module_type: type, batches: list, host_ms: float) -> float:
    mx.random.seed(0)
    trainer = Trainer(
        max_steps=len(batches),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,  # (a table on stderr for each of its fits buried the result lines)
        log_every_n_steps=50,
        callbacks=[HostWork(host_ms / 1000)],
    )
    start = time.perf_counter()
    trainer.fit(module_type(), batches)
    return len(batches) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--host_ms", type=float, nargs="+", default=[0.0, 2.0])
    args = parser.parse_args()
    batches = make_batches(args.steps)
    steps_per_second(DeviceWeight, batches[:20], 0)  # warm up: compile, allocate
    steps_per_second(HostReadWeight, batches[:20], 0)
    print(f"mlx {mx.__version__}, device {mx.default_device()}, {args.steps} steps, best of {args.repeats}")
    for host_ms in args.host_ms:
        best = {DeviceWeight: 0.0, HostReadWeight: 0.0}
        for _ in range(args.repeats):
            for module_type in best:
                best[module_type] = max(best[module_type], steps_per_second(module_type, batches, host_ms))
        device, host = best[DeviceWeight], best[HostReadWeight]
        print(
            f"host work {host_ms:g} ms/batch: weight on the device {device:.1f} steps/s, "
            f"read every batch (baseline) {host:.1f} steps/s, ratio {device / host:.3f}"
        )


if __name__ == "__main__":
    main()
