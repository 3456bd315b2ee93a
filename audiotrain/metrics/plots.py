"""PNG plots of a run: training curves of a history dict, a confusion matrix, and before/after score bars.

Every recipe draws its figures here, so that they read the same way: every axis is labelled, a metric's
train and validation curves share one colour (solid train, dashed validation), epochs are counted from 0
as in ``history.json`` and the progress bar ("Epoch 0" is the first), and scores stand beside their
chance level.

Figures are drawn on matplotlib's Agg canvas directly (``matplotlib.figure.Figure``), so nothing here
changes the user's pyplot backend or needs a display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from audiotrain._files import write_atomically

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedFormatter, FixedLocator, MaxNLocator

EPOCH_LABEL = "epoch (counted from 0, as in history.json)"
# (prefix, legend name, line style, marker): a single epoch still tells train from validation by marker.
_SPLITS = (("train_", "train", "-", "o"), ("val_", "validation", "--", "s"))
_NOT_SERIES = ("epoch", "step", "time")


def _save(figure: Figure, path: str | Path, dpi: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    # A temporary name of its own: two runs writing one folder must not rename each other's file.
    kind = path.suffix.lstrip(".") or "png"
    write_atomically(path, lambda handle: figure.savefig(handle, format=kind, dpi=dpi, bbox_inches="tight"))
    return path


def _split(key: str) -> tuple[str, str | None]:
    """``val_root_loss`` -> (``root_loss``, ``val_``); a key without a train/val prefix -> (key, None)."""
    for prefix, *_ in _SPLITS:
        if key.startswith(prefix):
            return key[len(prefix) :], prefix
    return key, None


def _series(history: Mapping[str, Sequence], key: str) -> tuple[np.ndarray, np.ndarray]:
    """A history column against its epochs, without the missing values (None/NaN: e.g. no validation)."""
    values = np.array([np.nan if v is None else float(v) for v in history[key]], dtype=np.float64)
    epochs = history.get("epoch")
    x = (
        np.asarray(epochs, dtype=np.float64)
        if epochs is not None and len(epochs) == len(values)
        else np.arange(len(values), dtype=np.float64)
    )
    keep = np.isfinite(values)
    return x[keep], values[keep]


def _plot_paired(
    ax: Axes,
    history: Mapping[str, Sequence],
    keys: Sequence[str],
    *,
    ylabel: str,
    title: str | None = None,
    chance: Mapping[str, float] | None = None,
    labels: Mapping[str, str] | None = None,
) -> None:
    """Draw `keys` on `ax`, one colour per metric: its ``train_`` curve solid, its ``val_`` curve dashed.

    The legend names each metric once (by colour; `labels` maps a metric without its train/val prefix to
    its legend name) and says which line style is which split; a dotted line in a metric's colour marks
    its chance level when `chance` (keyed like `keys`) has it.
    """
    labels = labels or {}
    metrics: list[str] = []
    for key in keys:
        name, _ = _split(key)
        if name not in metrics:
            metrics.append(name)
    colors = {name: f"C{i % 10}" for i, name in enumerate(metrics)}
    styles_used: dict[str, tuple[str, str, str]] = {}
    drawn: list[str] = []
    x_seen: list[float] = []
    for key in keys:
        x, y = _series(history, key)
        if not len(y):
            continue
        name, prefix = _split(key)
        label, style, marker = next(
            ((lb, st, mk) for p, lb, st, mk in _SPLITS if p == prefix), ("", "-", "o")
        )
        if prefix is not None:
            styles_used[prefix] = (label, style, marker)
        if len(y) >= 30:
            marker = None
        ax.plot(x, y, linestyle=style, color=colors[name], marker=marker, markersize=3.5, linewidth=1.5)
        x_seen.extend(x)
        if name not in drawn:
            drawn.append(name)
        if chance and key in chance:
            ax.axhline(chance[key], color=colors[name], linestyle=":", linewidth=1)
    # The legend names each metric by its colour, then the line styles; a lone metric of one split (the
    # learning rate) needs none, its y label says what it is.
    handles = []
    if len(drawn) > 1 or styles_used:
        handles = [
            Line2D([], [], color=colors[n], linewidth=2, label=labels.get(n, n.replace("_", " ")))
            for n in drawn
        ]
        handles += [
            Line2D([], [], color="0.3", linestyle=st, marker=mk, markersize=3.5, label=lb)
            for lb, st, mk in styles_used.values()
        ]
    if chance and any(k in chance for k in keys):
        handles.append(Line2D([], [], color="0.3", linestyle=":", label="chance level"))
    if handles:
        ax.legend(handles=handles, fontsize=8)
    ax.set_xlabel(EPOCH_LABEL if "epoch" in history else "history row (from 0)")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if x_seen and max(x_seen) - min(x_seen) < 2:  # one or two epochs: ticks at them, not at -0.04 ... 0.04
        ax.set_xticks(sorted(set(x_seen)))
        ax.set_xlim(min(x_seen) - 0.5, max(x_seen) + 0.5)


def _accuracy_label(history: Mapping[str, Sequence], keys: Sequence[str]) -> str:
    peak = max((float(np.max(y)) for k in keys if len(y := _series(history, k)[1])), default=0.0)
    return "accuracy (fraction)" if peak <= 1.0 else "accuracy (%)"


def plot_training_curves(history: Mapping[str, Sequence[float]], path: str | Path, *, dpi: int = 100) -> Path:
    """Save `training_curves_figure` of a history (``Trainer.history``) as a PNG."""
    return _save(training_curves_figure(history), path, dpi)


def training_curves_figure(history: Mapping[str, Sequence[float]]) -> Figure:
    """Loss, accuracy and learning-rate curves of a history (``Trainer.history``), side by side.

    Panels: the total loss (``train_loss`` / ``val_loss``); the other keys ending in ``loss`` (e.g. one
    per head); keys ending in ``acc`` or ``accuracy``; ``learning_rate``. In each, a metric's train and
    validation curves share a colour (solid train, dashed validation). The x axis is ``epoch`` when
    present, counted from 0 as the history counts it. Missing values (None/NaN, e.g. epochs without
    validation) are skipped. Panels without data are left out.
    """
    numeric = [
        k
        for k, v in history.items()
        if k not in _NOT_SERIES and isinstance(v, (list, tuple, np.ndarray)) and len(v)
    ]
    losses = [k for k in numeric if k.endswith("loss")]
    total = [k for k in losses if _split(k)[0] == "loss"]
    parts = [k for k in losses if k not in total]
    accuracies = [k for k in numeric if k.endswith("acc") or k.endswith("accuracy")]
    panels = [
        ("total loss", total, "loss"),
        ("loss of each part" if total else "loss", parts, "loss"),
        ("accuracy", accuracies, _accuracy_label(history, accuracies) if accuracies else ""),
        ("learning rate", [k for k in numeric if k in ("learning_rate", "lr")], "learning rate"),
    ]
    panels = [p for p in panels if p[1]]
    if not panels:
        raise ValueError(f"history has no loss, accuracy or learning-rate series (keys: {sorted(history)})")
    figure = Figure(figsize=(4.5 * len(panels), 3.8))
    for k, (title, keys, ylabel) in enumerate(panels):
        ax = figure.add_subplot(1, len(panels), k + 1)
        _plot_paired(ax, history, keys, ylabel=ylabel, title=title)
        if title == "learning rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    figure.tight_layout()
    return figure


def plot_history(
    history: Mapping[str, Sequence[float]],
    keys: Sequence[str],
    path: str | Path,
    *,
    dpi: int = 100,
    **options,
) -> Path:
    """Save `history_figure` (`options`: its keyword arguments) as a PNG."""
    return _save(history_figure(history, keys, **options), path, dpi)


def history_figure(
    history: Mapping[str, Sequence[float]],
    keys: Sequence[str],
    *,
    ylabel: str,
    title: str | None = None,
    chance: Mapping[str, float] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """The history columns `keys` against the epoch in one panel (train solid, validation dashed, one
    colour per metric; `chance`, keyed like `keys`, adds a dotted chance line per metric; `labels` names a
    metric, without its train/val prefix, in the legend)."""
    present = [k for k in keys if k in history and any(v is not None for v in history[k])]
    if not present:
        raise ValueError(f"history has none of {list(keys)} (keys: {sorted(history)})")
    figure = Figure(figsize=(6.5, 4))
    _plot_paired(
        figure.add_subplot(), history, present, ylabel=ylabel, title=title, chance=chance, labels=labels
    )
    figure.tight_layout()
    return figure


def plot_confusion_matrix(
    matrix: np.ndarray, class_names: Sequence[str], path: str | Path, *, dpi: int = 100, **options
) -> Path:
    """Save `confusion_matrix_figure` (`options`: its keyword arguments) as a PNG."""
    return _save(confusion_matrix_figure(matrix, class_names, **options), path, dpi)


def confusion_matrix_figure(
    matrix: np.ndarray,
    class_names: Sequence[str],
    *,
    normalize: bool = True,
    title: str = "Confusion matrix",
    unit: str = "samples",
) -> Figure:
    """A confusion matrix (rows: true class, columns: predicted).

    Each row's tick label carries its support (``maj  n=1,234``). Classes that are neither in the
    reference nor predicted are left out, and the title says how many; a class that is predicted but
    never true keeps its row (labelled ``n=0``, drawn grey) so that the diagonal stays straight.

    Parameters
    ----------
    matrix : np.ndarray [classes, classes]
        Counts, e.g. from `compute_confusion_matrix`.
    class_names : sequence of str
        One per class.
    normalize : bool
        Row-normalised: each row shows the fractions of its true class's `unit` (a row sums to 1); else
        counts.
    unit : str
        What is counted (``frames``, ``clips``): named in the support labels and the colour bar.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or len(class_names) != matrix.shape[0]:
        raise ValueError(
            f"matrix {matrix.shape} needs to be square with one name per class ({len(class_names)} names)"
        )
    support = matrix.sum(axis=1)
    shown_classes = np.flatnonzero((support > 0) | (matrix.sum(axis=0) > 0))
    if not shown_classes.size:
        raise ValueError("the confusion matrix is all zeros: nothing to plot")
    dropped = len(class_names) - shown_classes.size
    matrix = matrix[np.ix_(shown_classes, shown_classes)]
    names = [class_names[i] for i in shown_classes]
    support = support[shown_classes]
    shown = matrix
    if normalize:
        shown = np.divide(matrix, support[:, None], out=np.zeros_like(matrix), where=support[:, None] > 0)
    shown = np.ma.masked_array(shown, np.repeat(support[:, None] == 0, len(names), axis=1))
    n = len(names)
    size = max(4.5, 0.32 * n + 2.5)
    figure = Figure(figsize=(size + 1.5, size))
    ax = figure.add_subplot()
    cmap = colormaps["Blues"].with_extremes(bad="0.85")  # masked (n=0) rows in grey
    image = ax.imshow(shown, cmap=cmap, vmin=0, vmax=1 if normalize else None)
    bar = figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label(f"fraction of the true class's {unit}" if normalize else f"{unit}")
    fontsize = 7 if n > 16 else 9
    # A fixed locator and formatter, not set_xticks(labels=...): matplotlib's set_ticklabels wraps its work in
    # warnings.catch_warnings, which reset the process's once-per-place warnings at every run's evaluation.
    ax.xaxis.set_major_locator(FixedLocator(range(n)))
    ax.xaxis.set_major_formatter(FixedFormatter(names))
    ax.yaxis.set_major_locator(FixedLocator(range(n)))
    ax.yaxis.set_major_formatter(FixedFormatter([f"{name}  n={int(s):,}" for name, s in zip(names, support)]))
    ax.tick_params(axis="both", labelsize=fontsize)
    ax.tick_params(axis="x", labelrotation=90)
    ax.set_xlabel("predicted class")
    ax.set_ylabel(f"true class (n = its number of {unit})")
    how = "row-normalised: each row sums to 1 over the true class" if normalize else f"counts of {unit}"
    notes = [how]
    if dropped:
        notes.append(f"{dropped} of {len(class_names)} classes neither true nor predicted: not shown")
    if (support == 0).any():
        notes.append("grey rows: predicted but never true (n=0)")
    ax.set_title(title + "\n" + "\n".join(notes), fontsize=10)
    if n <= 16:  # numbers stay readable only on small matrices
        peak = float(shown.max()) if shown.count() else 0.0
        for i in range(n):
            if support[i] == 0:
                continue
            for j in range(n):
                if matrix[i, j] == 0:
                    continue  # an empty cell reads as 0 without a number in it
                text = (
                    (f"{shown[i, j]:.2f}" if shown[i, j] >= 0.005 else "<.01")
                    if normalize
                    else f"{int(matrix[i, j])}"
                )
                color = "white" if shown[i, j] > 0.5 * peak else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color=color)
    return figure


def plot_score_bars(
    scores: Mapping[str, Mapping[str, float]],
    keys: Sequence[str],
    path: str | Path,
    *,
    dpi: int = 100,
    **options,
) -> Path:
    """Save `score_bars_figure` (`options`: its keyword arguments) as a PNG."""
    return _save(score_bars_figure(scores, keys, **options), path, dpi)


def score_bars_figure(
    scores: Mapping[str, Mapping[str, float]],
    keys: Sequence[str],
    *,
    labels: Mapping[str, str] | None = None,
    chance: Mapping[str, float] | None = None,
    ylabel: str = "score (1 = perfect)",
    title: str | None = None,
) -> Figure:
    """Grouped bars of scores in [0, 1]: one group per key, one bar per entry of `scores`.

    Every bar carries its value; `chance` (keyed like `keys`) draws each metric's chance level as a
    black dashed line across its group, since metrics differ in chance (R@1 is 1/N, R@5 is 5/N).

    Parameters
    ----------
    scores : mapping of str to mapping
        E.g. ``{"before": {...}, "after": {...}}``: bar series name -> metric key -> value.
    keys : sequence of str
        The metrics to show, in order (those missing from the first series are skipped).
    labels : mapping, optional
        Tick label per key (default: the key).
    """
    series = list(scores)
    if not series:
        raise ValueError("plot_score_bars needs at least one series of scores")
    keys = [k for k in keys if k in scores[series[0]]]
    if not keys:
        raise ValueError(f"none of the keys are in the scores (keys: {sorted(scores[series[0]])})")
    labels = labels or {}
    x = np.arange(len(keys))
    width = 0.8 / len(series)
    figure = Figure(figsize=(max(6.5, 1.0 * len(keys) + 1.5), 4.5))
    ax = figure.add_subplot()
    for i, name in enumerate(series):
        values = [float(scores[name].get(k, np.nan)) for k in keys]
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name, color=f"C{i}")
        # On a white patch: a chance line at the height of a bar's top must not strike its value through.
        for text in ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=2):
            text.set_bbox({"boxstyle": "square,pad=0.05", "facecolor": "white", "edgecolor": "none"})
            text.set_zorder(4)
    with_chance = [j for j, key in enumerate(keys) if chance and key in chance]
    if with_chance:
        levels = [chance[keys[j]] for j in with_chance]
        starts, ends = np.array(with_chance) - 0.45, np.array(with_chance) + 0.45
        ax.hlines(
            levels,
            starts,
            ends,
            colors="black",
            linestyles="--",
            linewidth=1.2,
            label="chance (random ranking)",
        )
    ax.set_xticks(x, [labels.get(k, k) for k in keys], rotation=30, ha="right")
    ax.set_ylim(0, 1.12)  # room for the value labels above a bar at 1.0
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel(ylabel)
    ax.set_xlabel("metric")
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside: bars reach the top
    figure.tight_layout()
    return figure
