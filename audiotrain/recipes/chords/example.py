from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from audiotrain._text import plural
from audiotrain.chords.vocabulary import CHORD_TYPES
from audiotrain.data import DataLoader, Dataset
from audiotrain.metrics import (
    MetricsTracker,
    compute_confusion_matrix,
    compute_per_class_metrics,
    compute_topk_accuracy,
)
from audiotrain.models import ChordRecognitionLoss, ChordRecognitionModel
from audiotrain.recipes._run import shared_run_folder_name
from audiotrain.recipes.chords.config import TrainingConfig
from audiotrain.recipes.chords.trainer import Trainer

import mlx.core as mx
import numpy as np

#: The module's docstring and `--help`'s description: a string of its own, which `python -OO` (it strips
#: docstrings) keeps.
DESCRIPTION = """The chord training guide's Complete Example, on MLX with synthetic one-chord clips.

    python -m audiotrain.recipes.chords.example                      # 200 clips, 10 epochs, a few minutes
    python -m audiotrain.recipes.chords.example --clips 32 --epochs 1 --out /tmp/example

It builds clip datasets in the guide's format (audio [samples] at 44.1 kHz; ``chord_type``, ``root``,
``bass_note`` class indices), trains `ChordRecognitionModel` with the guide's `Trainer`, reports the guide's
metrics (`MetricsTracker`, top-k accuracy, confusion matrix, per-class metrics) on the validation clips,
saves and reloads a checkpoint, and exports the history. Everything goes into ``--out`` (default: a new
``runs/chords-example-<date>-<time>`` folder).
"""
__doc__ = DESCRIPTION


SAMPLE_RATE = 44100
#: Intervals above the root, in semitones, of the chord types the dummy clips use.
INTERVALS = {"maj": (0, 4, 7), "min": (0, 3, 7)}


class SyntheticChordClips(Dataset):
    """Clips of one chord each: three harmonic tones (root in octave 3), a decaying envelope, some noise.

    Items are ``(audio float32 [seconds * 44100], {"chord_type", "root", "bass_note"})`` as in the guide;
    the chord is in root position, so the bass note is the root.
    """

    def __init__(self, size: int, seconds: float = 1.0, seed: int = 0):
        rng = np.random.default_rng(seed)
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        self.items = []
        for _ in range(size):
            root = int(rng.integers(12))
            kind = str(rng.choice(list(INTERVALS)))
            audio = np.zeros_like(t)
            for interval in INTERVALS[kind]:
                f0 = 130.81 * 2 ** ((root + interval) / 12)  # C3 = 130.81 Hz
                for harmonic in (1, 2, 3):
                    audio += np.sin(2 * np.pi * f0 * harmonic * t + rng.uniform(0, 2 * np.pi)) / harmonic
            audio *= np.exp(-t * rng.uniform(0.5, 2.0))
            audio = 0.1 * audio + 0.01 * rng.standard_normal(len(t))
            label = {"chord_type": CHORD_TYPES.index(kind), "root": root, "bass_note": root}
            self.items.append((audio.astype(np.float32), label))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        return self.items[index]


def run_example(out: Path, clips: int = 200, epochs: int = 10, log=print) -> dict:
    """The Complete Example; returns the validation metrics."""
    train_dataset = SyntheticChordClips(clips, seed=0)
    val_dataset = SyntheticChordClips(max(8, clips // 4), seed=1)
    train_loader = DataLoader(train_dataset, batch_size=16, shuffle=True)
    val_loader = DataLoader(val_dataset, batch_size=16)

    model = ChordRecognitionModel()
    criterion = ChordRecognitionLoss(
        chord_type_weight=1.0, root_weight=1.0, bass_weight=0.5, label_smoothing=0.1
    )
    config = TrainingConfig(
        learning_rate=1e-3,
        num_epochs=epochs,
        warmup_epochs=1,
        scheduler="cosine",
        checkpoint_dir="checkpoints",  # relative to run_dir (out): out/checkpoints, for a relative out too
        progress_bar=False,
        log_every=10,
    )
    trainer = Trainer(
        model=model,
        train_loader=train_loader,
        val_loader=val_loader,
        config=config,
        criterion=criterion,
        run_dir=out,
    )
    start = time.perf_counter()
    history = trainer.train()
    log(f"trained {plural(len(history['train_loss']), 'epoch')} in {time.perf_counter() - start:.1f} s")
    for epoch, (loss, val, acc) in enumerate(
        zip(history["train_loss"], history["val_loss"], history["val_chord_type_acc"], strict=True)
    ):
        log(f"  epoch {epoch}: train_loss {loss:.4f}  val_loss {val:.4f}  val_chord_type_acc {acc:.1f}%")

    metrics = trainer.validate()
    log("validation: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))

    # The guide's metrics utilities on the validation clips (clip logits: frame logits averaged over time).
    tracker = MetricsTracker(num_classes={"chord_type": len(CHORD_TYPES)}, topk={"chord_type": (3,)})
    logits, targets = [], []
    trainer.module.eval()
    for batch in trainer.val_loader:
        outputs = trainer.module.pooled_logits(batch["features"])
        # The guide's targets and heads: its `bass_note` target scores the `bass` head as bass_note_acc.
        guide_targets = {"chord_type": batch["chord_type"], "root": batch["root"], "bass_note": batch["bass"]}
        heads = {k: outputs[k] for k in ("chord_type", "root", "bass")}
        tracker.update(
            criterion(outputs, guide_targets), heads, guide_targets, batch_size=batch["chord_type"].shape[0]
        )
        logits.append(np.array(outputs["chord_type"]))
        targets.append(np.array(batch["chord_type"]))
    log("MetricsTracker: " + tracker.summary())
    all_logits, all_targets = mx.array(np.concatenate(logits)), mx.array(np.concatenate(targets))
    log(f"top-3 chord type accuracy: {compute_topk_accuracy(all_logits, all_targets, k=3):.1f}%")
    confusion = compute_confusion_matrix(all_logits, all_targets)
    per_class = compute_per_class_metrics(all_logits, all_targets)
    log(f"confusion matrix {confusion.shape}; per-class F1 of maj/min: "
        f"{per_class['f1'][CHORD_TYPES.index('maj')]:.2f}/{per_class['f1'][CHORD_TYPES.index('min')]:.2f}")  # fmt: skip

    checkpoint = trainer.save_checkpoint(out / "checkpoints" / "my_checkpoint")
    trainer.load_checkpoint(checkpoint)
    history_path = trainer.export_history(out / "history.json")
    log(f"checkpoint: {checkpoint}\nhistory: {history_path}")
    return metrics


def main(argv: Sequence[str] | None = None) -> int:
    # Raw: the docstring's example commands keep their own lines (argparse reflowed them into the prose).
    parser = argparse.ArgumentParser(
        prog="python -m audiotrain.recipes.chords.example",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--clips", type=int, default=200, help="training clips (validation: a quarter)")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: a new runs/ folder)")
    args = parser.parse_args(argv)
    if args.clips < 2 or args.epochs < 1:
        parser.error("--clips must be >= 2 and --epochs >= 1")
    out = args.out or shared_run_folder_name("chords-example")
    if out.exists() and any(out.iterdir()):
        parser.error(f"--out {out} is not empty; pass a new folder")
    run_example(out, args.clips, args.epochs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
