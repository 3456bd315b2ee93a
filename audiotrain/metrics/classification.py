"""Classification metrics on numpy (or MLX) arrays: top-k accuracy, confusion matrix, per-class scores.

All functions take ``scores`` [..., classes] (logits or probabilities) or integer predictions [...], and
integer ``targets`` [...] (class indices: whole-valued floats are taken, other floats and one-hot targets
are refused); leading dimensions (batch, frames) are flattened. Targets equal to
``ignore_index`` (default -1: root and bass of N and X, padding) are left out. Arrays may be numpy or MLX
(bfloat16 included: `as_numpy`).
"""

from __future__ import annotations

import numbers
from typing import TypedDict

import mlx.core as mx
import numpy as np

DEFAULT_IGNORE_INDEX = -1


def as_numpy(array) -> np.ndarray:
    """`array` (numpy, MLX, a list or a scalar) as a numpy array. An MLX bfloat16 array, what
    ``precision="bf16-true"`` outputs are, is widened to float32 first: numpy has no bfloat16, and the
    widening is exact."""
    if isinstance(array, mx.array) and array.dtype == mx.bfloat16:
        array = array.astype(mx.float32)
    return np.asarray(array)


def check_class_range(values: np.ndarray, classes: int, what: str, whose: str = "") -> None:
    """Raise if `values` (class indices, ignored ones removed) fall outside ``0 .. classes - 1``.

    The message reads ``<what> outside 0..<classes - 1><whose>: <the first few bad values>``. Unchecked,
    a negative index wraps to the last classes and a confusion matrix's flattened index runs into the
    next row: a wrong count, not an error.
    """
    if values.size and (values.min() < 0 or values.max() >= classes):
        bad = np.unique(values[(values < 0) | (values >= classes)])
        raise ValueError(f"{what} outside 0..{classes - 1}{whose}: {bad[:5].tolist()}")


def class_indices(values: np.ndarray, what: str, instead: str = "") -> np.ndarray:
    """`values` as int64 class indices, or ValueError naming `what` where they are not whole numbers.

    Truncated to ints unchecked, float targets ``y + 0.7`` counted as ``y`` and a row's max score (in place
    of its argmax) as a class. Whole-valued floats (``3.0``) and bools are taken. `instead` ends the message.
    """
    if values.dtype.kind in "iub":
        return values.astype(np.int64)
    if values.dtype.kind == "f":
        bad = values[~np.isfinite(values) | (values != np.round(values))]
        if not bad.size:
            return values.astype(np.int64)
        found = f"{values.dtype} values such as {bad[:3].tolist()}"
    else:
        found = f"dtype {values.dtype}"
    raise ValueError(f"{what} must be class indices (whole numbers), got {found}{instead}")


def is_whole_number(value: object) -> bool:
    """Whether `value` is a whole number (an int, numpy's too, or a whole-valued float such as 2.0).

    A cut-off k of top-k or recall@k is compared with 0-based ranks as ``rank < k``: a fractional 1.5 would
    count rank 1 too, reporting top-2 under the name top-1.5.
    """
    return isinstance(value, numbers.Real) and float(value).is_integer()


def _refuse_one_hot(scores: np.ndarray, targets: np.ndarray, where: str) -> None:
    """A one-hot targets array [..., classes] beside scores of the same shape: say so (it would be read as
    class indices, and the scores as predictions). Not where the scores are whole numbers: predictions and
    binary frame targets, one 1 a row, are data."""
    if targets.ndim < 2 or targets.shape != scores.shape or scores.dtype.kind != "f":
        return
    if (scores == np.round(scores)).all():
        return
    if np.isin(targets, (0, 1)).all() and (targets.sum(axis=-1) == 1).all():
        raise ValueError(
            f"{where}: targets {targets.shape} look one-hot (rows of 0 and one 1 over the classes), where "
            "class indices [...] are expected: pass targets.argmax(axis=-1)"
        )
    if np.isin(targets, (0, 1)).all() and (targets.sum(axis=-1) > 1).any():
        # (read as class indices, the 0/1 tags met a message about the scores being no whole numbers)
        raise ValueError(
            f"{where}: targets {targets.shape} look multi-hot (rows of 0 and 1 with several 1s: multi-label "
            "tags), where class indices [...] are expected: this scores one class per item; for tags use "
            "compute_multilabel_metrics(scores, targets) (per-tag and mean ROC-AUC, average precision, F1)"
        )


def _refuse_column_targets(scores: np.ndarray, targets: np.ndarray, where: str) -> None:
    """Targets as a column [..., 1] beside scores [..., classes] (``targets[:, None]``, common in torch code):
    say so, naming the targets, where the shape check that follows would blame the scores."""
    if targets.ndim < 2 or targets.ndim != scores.ndim or targets.shape[-1] != 1 or scores.shape[-1] == 1:
        return
    if targets.shape[:-1] == scores.shape[:-1]:
        raise ValueError(
            f"{where}: targets {targets.shape} are a column (one class index a row, in an axis of 1) beside "
            f"scores {scores.shape}; expected targets {scores.shape[:-1]}, one axis fewer than the scores: "
            "pass targets.squeeze(-1) (targets[:, 0])"
        )


def _refuse_empty(scores, targets, where: str) -> None:
    # (numpy's reshape error named no argument.) An empty input is a mistake (an empty loader or slice),
    # where targets that are all ignore_index are data: those give NaN.
    scores, targets = as_numpy(scores), as_numpy(targets)
    if targets.size == 0:
        raise ValueError(
            f"{where}: targets is empty (scores {scores.shape}, targets {targets.shape}); "
            "expected at least one target"
        )


def _flatten(scores, targets, ignore_index: int | None, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Scores [n, classes] (or predictions [n]) and targets [n], ignored targets removed."""
    scores, targets = as_numpy(scores), as_numpy(targets)
    _refuse_one_hot(scores, targets, where)
    _refuse_column_targets(scores, targets, where)
    targets = class_indices(targets, f"{where}: targets")
    if scores.shape[: targets.ndim] != targets.shape or scores.ndim not in (targets.ndim, targets.ndim + 1):
        raise ValueError(
            f"scores {scores.shape} do not match targets {targets.shape}: expected scores [..., classes] or "
            "predictions with the targets' shape"
        )
    n = targets.size
    flat_targets = targets.reshape(n)
    flat_scores = scores.reshape(n, -1) if scores.ndim == targets.ndim + 1 else scores.reshape(n)
    keep = flat_targets != ignore_index if ignore_index is not None else np.ones(n, bool)
    return flat_scores[keep], flat_targets[keep]


def _nan_last(scores: np.ndarray) -> np.ndarray:
    # NaN compares false both ways, which would make it tie with everything; -inf puts it last instead.
    return np.where(np.isnan(scores), -np.inf, scores)


def top_classes(scores: np.ndarray) -> np.ndarray:
    """The predicted class of each row of `scores` [n, classes]: [n] int, the highest score, ties to the
    lowest class index and NaN below every number (`target_ranks`' rank 0)."""
    return np.argmax(_nan_last(as_numpy(scores)), axis=-1)


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The rank of each row's target among its scores: [n] int, 0 for the top class.

    `scores` [n, classes], `targets` [n] (none ignored). Ties are broken by class index, as a stable
    descending sort would (``np.argsort(-scores, kind="stable")``, ``torch.sort(descending=True,
    stable=True)``): the rank is the number of classes scoring higher plus those scoring the same with a
    lower index. NaN scores rank below every number. A target is among the top ``k`` when its rank is
    below ``k``: so constant or all-NaN scores get chance-level top-k, not 100%. Libraries differ on ties,
    so top-k on tied scores (saturated softmax rows) can differ from theirs: ``torch.topk`` (and
    torchmetrics, which uses it) does not promise the lower index on CPU, and scikit-learn's
    ``top_k_accuracy_score`` puts the higher index first. Without ties all agree.
    """
    scores = _nan_last(as_numpy(scores))
    targets = as_numpy(targets)
    target_scores = np.take_along_axis(scores, targets[:, None], axis=1)
    # Counting only strictly higher scores would make every tie a hit, so a collapsed model (all scores
    # equal), or a saturated one (0.0 for every class but its pick), would look perfect at k > 1; ties with
    # a lower class index rank above the target instead.
    lower_index = np.arange(scores.shape[1]) < targets[:, None]
    higher = scores > target_scores
    tied_before = (scores == target_scores) & lower_index
    return higher.sum(axis=1) + tied_before.sum(axis=1)


def _predictions(
    scores, targets, ignore_index: int | None, where: str
) -> tuple[np.ndarray, np.ndarray, int | None]:
    """(predicted class, target) pairs after ignoring, and the class count when scores give one."""
    scores, targets = as_numpy(scores), as_numpy(targets)
    is_scores = scores.ndim == targets.ndim + 1
    flat_scores, flat_targets = _flatten(scores, targets, ignore_index, where)
    if is_scores:
        return top_classes(flat_scores), flat_targets, scores.shape[-1]
    what = f"{where}: scores {scores.shape} have the targets' shape, so they are read as predicted classes,"
    what += " which"
    instead = ": pass scores [..., classes] or their argmax (not their max)"
    return class_indices(flat_scores.reshape(-1), what, instead), flat_targets, None


def compute_topk_accuracy(
    scores, targets, k: int = 1, ignore_index: int | None = DEFAULT_IGNORE_INDEX
) -> float:
    """Percentage (0-100) of targets among the ``k`` highest scores.

    Ties are broken by class index and NaN ranks last (`target_ranks`), so constant or all-NaN scores get
    chance-level accuracy, not 100. `MetricsTracker` counts its top-k the same way.

    Parameters
    ----------
    scores : array [..., classes]
    targets : int array [...]
    k : int
        1 is plain accuracy.
    ignore_index : int or None
        Targets equal to it are left out (default -1: padding, and the root and bass of N and X); None
        counts every target.

    Returns
    -------
    float
        NaN when every target is ignored: no target, no accuracy (0 would read as a model always wrong).
    """
    scores, targets = as_numpy(scores), as_numpy(targets)
    _refuse_one_hot(scores, targets, "compute_topk_accuracy")
    _refuse_column_targets(scores, targets, "compute_topk_accuracy")
    if scores.ndim != targets.ndim + 1:
        raise ValueError(
            f"compute_topk_accuracy needs scores [..., classes], got {scores.shape} for targets {targets.shape}"
        )
    _refuse_empty(scores, targets, "compute_topk_accuracy")
    if not (is_whole_number(k) and 1 <= k <= scores.shape[-1]):
        raise ValueError(f"k must be a whole number in 1..{scores.shape[-1]}, got {k}")
    flat_scores, flat_targets = _flatten(scores, targets, ignore_index, "compute_topk_accuracy")
    check_class_range(
        flat_targets, scores.shape[-1], "compute_topk_accuracy: targets", " (the scores' classes)"
    )
    if len(flat_targets) == 0:
        return float("nan")
    return float(100.0 * np.mean(target_ranks(flat_scores, flat_targets) < k))


def compute_confusion_matrix(
    scores, targets, num_classes: int | None = None, ignore_index: int | None = DEFAULT_IGNORE_INDEX
) -> np.ndarray:
    """Counts ``matrix[true, predicted]``, int64 [classes, classes].

    ``num_classes`` defaults to the score width, or for predictions to one more than the largest class seen.
    Targets equal to ``ignore_index`` (default -1; None: none) are left out, with their predictions. Raises
    ValueError naming an empty input (an empty loader or slice) and a class outside ``0 .. num_classes - 1``.
    """
    return _confusion(scores, targets, num_classes, ignore_index, "compute_confusion_matrix")


def _confusion(scores, targets, num_classes: int | None, ignore_index: int | None, where: str) -> np.ndarray:
    """`compute_confusion_matrix`, its errors naming ``where`` (the function the user called)."""
    _refuse_empty(scores, targets, where)
    predicted, true, width = _predictions(scores, targets, ignore_index, where)
    if num_classes is not None:
        whose = f" (num_classes={num_classes})"
    elif width is not None:
        num_classes, whose = width, " (the scores' classes)"
    else:  # predictions: only a negative class can fall outside
        num_classes, whose = int(max(predicted.max(initial=-1), true.max(initial=-1)) + 1), ""
    # Unchecked, the flattened index of a class outside would be counted in another row.
    check_class_range(true, num_classes, f"{where}: targets", whose)
    check_class_range(predicted, num_classes, f"{where}: predictions", whose)
    return np.bincount(true * num_classes + predicted, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


class PerClassMetrics(TypedDict):
    """What `compute_per_class_metrics` returns: one entry per class (index = class) in the arrays, and
    the three summaries as floats (NaN where nothing was counted)."""

    precision: np.ndarray  # float64, fractions
    recall: np.ndarray  # float64, fractions
    f1: np.ndarray  # float64
    support: np.ndarray  # int64, the targets of each class
    accuracy: float  # percent
    macro_f1: float
    weighted_f1: float


def per_class_metrics_from_confusion(matrix: np.ndarray) -> PerClassMetrics:
    """Precision, recall, F1 and support per class from a confusion matrix (0 where undefined).

    Also returns ``accuracy`` (percent), ``macro_f1`` and ``weighted_f1``, as scikit-learn's ``f1_score``
    with ``zero_division=0``: the macro mean is over the classes that occur in the targets or the
    predictions (a class only ever predicted counts, with F1 0); the weighted mean weighs by support. An
    all-zero matrix (nothing counted) has none of the three: NaN, not a 0 that reads as always wrong.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    true_positive = np.diag(matrix)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, true_positive / predicted, 0.0)
        recall = np.where(support > 0, true_positive / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    # Classes absent from both targets and predictions say nothing about the model; sklearn leaves them out.
    present = (support > 0) | (predicted > 0)
    total = support.sum()
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support.astype(np.int64),
        "accuracy": float(100.0 * true_positive.sum() / total) if total else float("nan"),
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "weighted_f1": float((f1 * support).sum() / total) if total else float("nan"),
    }


def compute_per_class_metrics(
    scores, targets, num_classes: int | None = None, ignore_index: int | None = DEFAULT_IGNORE_INDEX
) -> PerClassMetrics:
    """Per-class precision, recall, F1 (fractions) and support (counts), as in scikit-learn with
    ``zero_division=0``; see `per_class_metrics_from_confusion` for the summary keys. ``num_classes`` and
    ``ignore_index`` as in `compute_confusion_matrix`."""
    return per_class_metrics_from_confusion(
        _confusion(scores, targets, num_classes, ignore_index, "compute_per_class_metrics")
    )
