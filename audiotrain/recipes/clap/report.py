"""The CLAP recipe's report: the before/after retrieval table and the run folder's plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np

_ROWS = (
    "text_to_audio_R@1",
    "text_to_audio_R@5",
    "text_to_audio_R@10",
    "text_to_audio_mAP@10",
    "audio_to_text_R@1",
    "audio_to_text_R@5",
    "audio_to_text_R@10",
    "audio_to_text_mAP@10",
    "zero_shot_top1_accuracy",
    "zero_shot_top5_accuracy",
)


def format_table(before: dict, after: dict | None) -> str:
    """A fixed-width table of the retrieval and zero-shot scores, before (and after) fine-tuning."""
    lines = [f"{'':28s}{'before':>10s}{'after':>10s}"]
    for key in _ROWS:
        if key in before:
            b = f"{before[key]:10.3f}"
            a = f"{after[key]:10.3f}" if after and key in after else f"{'':10s}"
            lines.append(f"{key.replace('_to_', '→').replace('_', ' '):28s}{b}{a}")
    return "\n".join(lines)


def write_plots(history: dict, results: dict, folder: Path) -> list[Path]:
    """loss.png, accuracy.png (per epoch, train and val) and retrieval.png (before/after bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    epochs = [e + 1 for e in history.get("epoch", [])]
    for name, keys in (
        ("loss", ("train_loss", "val_loss")),
        (
            "accuracy",
            ("train_audio_accuracy", "val_audio_accuracy", "train_text_accuracy", "val_text_accuracy"),
        ),
        ("retrieval_per_epoch", ("val_mAP@10", "val_text_to_audio_R@1", "val_audio_to_text_R@1")),
    ):
        if not any(history.get(key) for key in keys):
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        for key in keys:
            values = history.get(key)
            if values and any(v is not None for v in values):
                ax.plot(epochs, [np.nan if v is None else v for v in values], marker="o", label=key)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(folder / f"{name}.png", dpi=100)
        plt.close(fig)
        written.append(folder / f"{name}.png")
    keys = [k for k in _ROWS if k in results["before"]]
    fig, ax = plt.subplots(figsize=(max(6, len(keys)), 4))
    x = np.arange(len(keys))
    ax.bar(x - 0.2, [results["before"][k] for k in keys], 0.4, label="before")
    ax.bar(x + 0.2, [results["after"][k] for k in keys], 0.4, label="after")
    ax.set_xticks(x, [k.replace("_to_", "→").replace("_", " ") for k in keys], rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "retrieval.png", dpi=100)
    plt.close(fig)
    written.append(folder / "retrieval.png")
    return written
