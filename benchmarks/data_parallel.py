"""Data parallel with ``mx.distributed``: 1 process against 2 on the same global batch, in plain MLX.

A small MLP trains with a compiled step over ``[model.state, optimizer.state]`` whose gradients are
averaged with ``mlx.nn.average_gradients``, as the Trainer does. One process takes the global batch of 32;
two processes (``python -m audiotrain launch -n 2``, ring backend on loopback) take 16 each, rank ``r`` the
rows ``r::2`` of the same global batch. It prints samples/s for each, their ratio, and the time of one
all-reduce of the gradients' size; and it checks that the two ranks end bitwise identical and within 1e-5
of the one process::

    python benchmarks/data_parallel.py [--steps 200 --hidden 256 --batch 32]

On a machine with 2 cores, the 2 ranks share the cores one process already used, and ring's ``all_sum``
busy-waits: there the ratio measures the cost of the all-reduce, not scaling. The same script measures
scaling where each rank has its own cores or GPU.

Measured 2026-11 on the shared 2-core Zen 5 EPYC (load average 2-5), mlx 0.32.4 (mlx[cpu]) + system
OpenBLAS (Haswell core type), 200 (100) timed steps:

    OPENBLAS_NUM_THREADS  1 process x 32        2 processes x 16      ratio  all_sum of the grads
    unset (2 per rank)    36624 samples/s       715 samples/s         0.02x  2.63 ms
    1                     63815 samples/s       6823 samples/s        0.11x  1.24 ms

    Both: ranks bitwise identical; max |2 ranks x 16 - 1 process x 32| = 3.2e-06 after 10 Adam steps.

Two ranks with two OpenBLAS threads each on two cores, next to ring's busy-waiting threads, run 10x
slower than with one thread each: give each rank ``cores / ranks`` BLAS threads.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import audiotrain  # noqa: F401  (loads the optimized BLAS before mlx)
import audiotrain.distributed as dist

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten

VERIFY_STEPS = 10


def _mlp(dims: int, hidden: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(dims, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 10)
    )


def _global_batch(step: int, batch: int, dims: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([7, step])
    return rng.standard_normal((batch, dims), dtype=np.float32), rng.integers(0, 10, batch).astype(np.int32)


def worker(args: argparse.Namespace) -> None:
    rank, world = dist.rank(), dist.world_size()
    mx.random.seed(0)  # the same initial weights on every rank
    model = _mlp(args.dims, args.hidden)
    optimizer = optim.Adam(learning_rate=1e-3)
    state = [model.state, optimizer.state]

    def loss_fn(x, y):
        return nn.losses.cross_entropy(model(x), y, reduction="mean")

    @partial(mx.compile, inputs=state, outputs=state)
    def step(x, y):
        loss, grads = nn.value_and_grad(model, loss_fn)(x, y)
        grads = nn.average_gradients(grads)  # identity in one process
        optimizer.update(model, grads)
        return loss

    def batch(s):
        x, y = _global_batch(s, args.batch, args.dims)
        return mx.array(x[rank::world]), mx.array(y[rank::world])  # equal shares: the means average exactly

    for s in range(VERIFY_STEPS):
        mx.eval(step(*batch(s)), state)
    weights = {k: np.array(v) for k, v in tree_flatten(model.parameters())}

    batches = [batch(VERIFY_STEPS + s) for s in range(args.steps)]
    mx.eval(batches)
    dist.barrier()
    start = time.perf_counter()
    for x, y in batches:
        mx.eval(step(x, y), state)
    seconds = time.perf_counter() - start

    allreduce_ms = None
    if world > 1:  # one all_sum of the gradients' size, as average_gradients sends them (one buffer)
        n = sum(v.size for _, v in tree_flatten(model.parameters()))
        buf = mx.ones(n)
        mx.eval(mx.distributed.all_sum(buf))
        start = time.perf_counter()
        for _ in range(50):
            mx.eval(mx.distributed.all_sum(buf))
        allreduce_ms = (time.perf_counter() - start) / 50 * 1e3

    out = Path(args.out)
    np.savez(out / f"world{world}-rank{rank}.npz", **weights)
    (out / f"world{world}-rank{rank}.json").write_text(
        json.dumps({"seconds": seconds, "allreduce_ms": allreduce_ms, "params": len(weights)})
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="timed steps")
    parser.add_argument(
        "--batch", type=int, default=32, help="global batch, even (split in equal halves over the 2 ranks)"
    )
    parser.add_argument("--dims", type=int, default=128, help="input features")
    parser.add_argument("--hidden", type=int, default=256, help="hidden width")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    # Each rank's loss is the mean over its rows, and average_gradients takes the mean over ranks: that is
    # the mean over the global batch only when the two shares are equal (and a rank of no rows has no mean).
    if args.batch < 2 or args.batch % 2:
        parser.error(
            f"--batch must be even and at least 2, got {args.batch}: the 2 ranks take equal halves of it, "
            "so that the mean of their means is the one process's mean the check compares with"
        )
    if args.steps < 1:
        parser.error(f"--steps must be 1 or more, got {args.steps}")

    with tempfile.TemporaryDirectory() as tmp:
        me = [sys.executable, str(Path(__file__).resolve())]
        opts = [
            "--worker",
            "--out",
            tmp,
            *(f"--{k}={getattr(args, k)}" for k in ("steps", "batch", "dims", "hidden")),
        ]
        subprocess.run(me + opts, check=True)
        launch = [
            sys.executable,
            "-m",
            "audiotrain",
            "launch",
            "-n",
            "2",
            "--starting-port",
            str(_free_port()),
        ]
        subprocess.run(launch + ["--", *me, *opts], check=True)
        res = {w: json.loads(Path(tmp, f"world{w}-rank0.json").read_text()) for w in (1, 2)}
        one = np.load(Path(tmp, "world1-rank0.npz"))
        ranks = [np.load(Path(tmp, f"world2-rank{r}.npz")) for r in range(2)]
        bitwise = all(np.array_equal(ranks[0][k], ranks[1][k]) for k in ranks[0].files)
        diff = max(float(np.max(np.abs(ranks[0][k] - one[k]))) for k in one.files)

    print(
        f"mlx {mx.__version__}, device {mx.default_device()}, {os.cpu_count()} CPU cores, "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'autodetected')}, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
    )
    print(
        f"MLP {args.dims}->{args.hidden}->{args.hidden}->10, Adam, global batch {args.batch}, {args.steps} timed steps"
    )
    rate = {w: args.batch * args.steps / res[w]["seconds"] for w in (1, 2)}
    print(
        f"1 process,  batch {args.batch}:        {rate[1]:9.0f} samples/s ({res[1]['seconds'] / args.steps * 1e3:.2f} ms/step)"
    )
    print(
        f"2 processes, batch {args.batch // 2} each:   {rate[2]:9.0f} samples/s ({res[2]['seconds'] / args.steps * 1e3:.2f} ms/step)"
    )
    print(f"ratio 2 / 1 processes: {rate[2] / rate[1]:.2f}x")
    print(f"all-reduce of the gradients (ring, one all_sum): {res[2]['allreduce_ms']:.2f} ms per step")
    if (os.cpu_count() or 1) <= 2 and mx.default_device() == mx.cpu:
        print(
            "NOTE: this machine has <= 2 CPU cores, shared by both ranks, and ring's all_sum busy-waits: the ratio "
            "measures the cost of the all-reduce more than scaling."
        )
    print(
        f"after {VERIFY_STEPS} steps: ranks bitwise identical: {bitwise}; "
        f"max |2 ranks x {args.batch // 2} - 1 process x {args.batch}| = {diff:.2e} "
        f"({'within' if diff <= 1e-5 else 'NOT within'} 1e-5)"
    )
    if not bitwise or diff > 1e-5:
        sys.exit(1)


if __name__ == "__main__":
    main()
