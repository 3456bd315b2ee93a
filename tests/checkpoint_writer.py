"""Run by test_checkpoint.py's kill -9 loop: writes checkpoints as fast as it can until it is killed.

Usage: checkpoint_writer.py FOLDER START_STEP. Each round writes FOLDER/last (about 4 MB, so a kill often lands
mid-write) and a top-k style `step-<n>` checkpoint, keeping the two newest (older ones deleted the way
ModelCheckpoint rotates them). Prints "ready" once it has healed the folder, then writes once a line comes on its stdin.
"""

import sys
from pathlib import Path

import audiotrain  # noqa: F401  (before mlx: the BLAS)
from audiotrain.train import checkpoint as ckpt

import mlx.core as mx


def minimal_state(step: int) -> dict:
    """The least trainer state a checkpoint folder must hold to be complete (what read_state checks)."""
    progress = {
        "epoch": 0,
        "batch_in_epoch": 0,
        "global_step": step,
        "total_batches": step,
        "micro_batches": 0,
    }
    return {"progress": progress, "random": {"mlx": [0, step]}}


def main() -> None:
    folder, step = Path(sys.argv[1]), int(sys.argv[2])
    ckpt.heal_folder(folder)
    print("ready", flush=True)
    sys.stdin.readline()  # the test looks at what the heal left before this writer's first save starts
    weights = mx.zeros((1024, 1024))
    while True:
        step += 1
        state = minimal_state(step)
        arrays = {"w": weights + step}
        ckpt.write_checkpoint(folder / "last", arrays, {"m": mx.array([step])}, {}, state)
        ckpt.write_checkpoint(folder / f"step-{step}", arrays, {"m": mx.array([step])}, {}, state)
        ckpt.remove_checkpoint(folder / f"step-{step - 2}")


if __name__ == "__main__":
    main()
