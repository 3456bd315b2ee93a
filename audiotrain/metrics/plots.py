"""PNG plots of a run: a confusion matrix and the training curves of a history dict.

Figures are drawn on matplotlib's Agg canvas directly (``matplotlib.figure.Figure``), so nothing here
changes the user's pyplot backend or needs a display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _save(figure: Figure, path: str | Path, dpi: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    tmp = path.with_name(path.stem + ".tmp.png")
    figure.savefig(tmp, dpi=dpi, bbox_inches="tight")
    tmp.replace(path)
    return path


def plot_confusion_matrix(
    matrix: np.ndarray,
    class_names: Sequence[str],
    path: str | Path,
    *,
    normalize: bool = True,
    title: str = "Confusion matrix",
    dpi: int = 100,
) -> Path:
    """Save a confusion matrix (rows: true class, columns: predicted) as a PNG.

    Parameters
    ----------
    matrix : np.ndarray [classes, classes]
        Counts, e.g. from `compute_confusion_matrix`.
    class_names : sequence of str
        One per class.
    normalize : bool
        Show each row as fractions of its true class (rows without samples stay 0); else counts.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or len(class_names) != matrix.shape[0]:
        raise ValueError(
            f"matrix {matrix.shape} needs to be square with one name per class ({len(class_names)} names)"
        )
    shown = matrix
    if normalize:
        rows = matrix.sum(axis=1, keepdims=True)
        shown = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    n = len(class_names)
    size = max(4.0, 0.3 * n + 2)
    figure = Figure(figsize=(size + 1, size))
    ax = figure.add_subplot()
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), labels=class_names, rotation=90, fontsize=7 if n > 16 else 9)
    ax.set_yticks(range(n), labels=class_names, fontsize=7 if n > 16 else 9)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if n <= 16:  # numbers stay readable only on small matrices
        for i in range(n):
            for j in range(n):
                text = f"{shown[i, j]:.2f}" if normalize else f"{int(matrix[i, j])}"
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if shown[i, j] > 0.5 * shown.max() else "black",
                )
    return _save(figure, path, dpi)


def plot_training_curves(history: Mapping[str, Sequence[float]], path: str | Path, *, dpi: int = 100) -> Path:
    """Save loss, accuracy and learning-rate curves of a history (``Trainer.history``) as one PNG.

    Panels: every key ending in ``loss``; every key ending in ``acc`` or ``accuracy``; ``learning_rate``.
    The x axis is ``epoch`` when present. Missing values (None/NaN, e.g. epochs without validation) are
    skipped. Panels without data are left out.
    """
    epochs = history.get("epoch")

    def series(key):
        values = np.array([np.nan if v is None else float(v) for v in history[key]], dtype=np.float64)
        x = (
            np.asarray(epochs, dtype=np.float64)
            if epochs is not None and len(epochs) == len(values)
            else np.arange(1, len(values) + 1)
        )
        keep = np.isfinite(values)
        return x[keep], values[keep]

    numeric = [
        k
        for k, v in history.items()
        if k not in ("epoch", "step", "time") and isinstance(v, (list, tuple, np.ndarray)) and len(v)
    ]
    panels = [
        ("loss", [k for k in numeric if k.endswith("loss")]),
        ("accuracy", [k for k in numeric if k.endswith("acc") or k.endswith("accuracy")]),
        ("learning rate", [k for k in numeric if k in ("learning_rate", "lr")]),
    ]
    panels = [(title, keys) for title, keys in panels if keys]
    if not panels:
        raise ValueError(f"history has no loss, accuracy or learning-rate series (keys: {sorted(history)})")
    figure = Figure(figsize=(5 * len(panels), 4))
    for k, (title, keys) in enumerate(panels):
        ax = figure.add_subplot(1, len(panels), k + 1)
        for key in keys:
            x, y = series(key)
            if len(y):
                ax.plot(x, y, marker="o" if len(y) < 30 else None, markersize=3, label=key)
        ax.set_title(title)
        ax.set_xlabel("epoch" if epochs is not None else "entry")
        if title == "learning rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    figure.tight_layout()
    return _save(figure, path, dpi)
