"""A save's cost against the epochs done: `trainer_state.json` holds the whole history, one row per epoch.

Builds a Trainer-like checkpoint state with N history rows (a row as a fit with validation writes:
epoch, step, time, learning rate, two losses, two accuracies), warms the run's `RowTexts` as the saves
before would have, appends one row, and times `state_text` (the file's text) and `History.state_dict`
(what the Trainer hands the callbacks), best of a few, in process CPU. It prints each against the cost
of the file's bytes alone (joining the rows' text and encoding it) at that size, and the growth per
epoch done. No timing here is asserted anywhere: the figures are for the README's sentence on saves.

    python benchmarks/history_saves.py [--rows 1000 10000 100000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import audiotrain  # noqa: F401  (before mlx)
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.state import History


def row(epoch: int) -> dict:
    return {
        "epoch": epoch,
        "step": 8 * (epoch + 1),
        "time": 0.1234567 * epoch,
        "learning_rate": 0.001 * 0.9**8,
        "train_loss": 0.123456789 + 1e-3 * epoch,
        "train_acc": 0.75,
        "val_loss": 0.23456789 + 1e-3 * epoch,
        "val_acc": 0.5,
    }


def cpu_ms(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best * 1000


def measure(n: int, repeats: int) -> dict[str, float]:
    history = History()
    for epoch in range(n):
        history.record(row(epoch))
    texts = ckpt.RowTexts()
    other = {"progress": {"global_step": 8 * n}, "callbacks": {}, "random": {"mlx": [1, 2]}}

    def save() -> str:
        return ckpt.state_text({**other, "history": history.state_dict()}, texts)

    save()  # the saves before: every row's text is cached
    history.record(row(n))  # the new epoch's row, as each epoch's save finds it
    text = save()
    row_texts = texts.texts(history.rows, ["history", "rows"])[0]
    return {
        "bytes": len(text.encode()),
        "state_text": cpu_ms(save, repeats),
        "state_dict": cpu_ms(history.state_dict, repeats),
        "file_bytes": cpu_ms(lambda: ",\n  ".join(row_texts).encode(), repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'rows':>8} {'MB':>6} {'state_text ms':>14} {'state_dict ms':>14} {'bytes ms':>9} {'ratio':>6}")
    first = None
    for n in args.rows:
        m = measure(n, args.repeats)
        ratio = (m["state_text"] + m["state_dict"]) / max(m["file_bytes"], 1e-3)
        print(
            f"{n:>8} {m['bytes'] / 1e6:>6.2f} {m['state_text']:>14.2f} {m['state_dict']:>14.2f} "
            f"{m['file_bytes']:>9.2f} {ratio:>6.1f}"
        )
        first = first or (n, m)
    n0, m0 = first
    per = (m["state_text"] + m["state_dict"] - m0["state_text"] - m0["state_dict"]) / max(n - n0, 1)
    print(
        f"growth: {per * 1000:.2f} us of save CPU per epoch done (the bytes alone: "
        f"{(m['file_bytes'] - m0['file_bytes']) / max(n - n0, 1) * 1000:.2f} us)"
    )


if __name__ == "__main__":
    main()
