"""Multi-label (tagging) metrics on numpy (or MLX) arrays: ROC-AUC, average precision, F1 per tag.

A tagger scores every tag of an item independently (sigmoid outputs, several tags per item), so its scores
[..., tags] sit beside multi-hot targets of the same shape (0/1, bool or whole-valued floats); leading
dimensions (batch, frames) are flattened. ROC-AUC and average precision are ranking scores, the same for
logits and probabilities; F1 needs a threshold on the scores as given (0.5 for probabilities, 0 for logits).

These are not means of per-batch values: compute them once over the whole validation set (gather every
batch's scores and targets, over every rank under data parallel), e.g. in ``on_validation_epoch_end``.
"""

from __future__ import annotations

from typing import TypedDict

from audiotrain.metrics.classification import as_numpy

import numpy as np


class MultiLabelMetrics(TypedDict):
    """What `compute_multilabel_metrics` returns. The arrays have one entry per tag (index = tag); a
    tag's ROC-AUC is NaN where its targets are all 0 or all 1, its average precision NaN where it has no
    positive (both are undefined there). The macro means leave NaN tags out (NaN if every tag is), and
    ``defined_tags`` counts the tags the macro ROC-AUC is over (mAP is over the tags with a positive,
    ``(support > 0).sum()``): compare them with the tag count before comparing two runs' means."""

    roc_auc: np.ndarray  # float64
    average_precision: np.ndarray  # float64
    precision: np.ndarray  # float64, at the threshold
    recall: np.ndarray  # float64, at the threshold
    f1: np.ndarray  # float64, at the threshold
    support: np.ndarray  # int64, the positives of each tag
    macro_roc_auc: float
    micro_roc_auc: float
    macro_average_precision: float  # mAP
    micro_average_precision: float
    macro_f1: float
    micro_f1: float
    defined_tags: int  # tags with a defined ROC-AUC (both classes present)


def _checked(scores, targets, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Scores [n, tags] float64 and targets [n, tags] bool, or ValueError naming what is wrong."""
    scores, targets = as_numpy(scores), as_numpy(targets)
    if scores.ndim >= 2 and targets.shape == scores.shape[:-1]:
        raise ValueError(
            f"{where}: targets {targets.shape} have one axis fewer than the scores {scores.shape}: class "
            "indices, one class per item; multi-label targets are multi-hot, the scores' shape [..., tags] "
            "(for one class per item use compute_per_class_metrics)"
        )
    if scores.shape != targets.shape or scores.ndim == 0:
        raise ValueError(
            f"{where}: scores {scores.shape} and targets {targets.shape} must have the same shape "
            "[..., tags] (targets multi-hot: 1 where the item has the tag)"
        )
    if targets.size == 0:
        raise ValueError(f"{where}: targets is empty (scores {scores.shape}); expected at least one item")
    if scores.dtype.kind not in "biuf":
        raise ValueError(f"{where}: scores must be numbers, got dtype {scores.dtype}")
    bad = ~np.isfinite(scores.astype(np.float64))
    if bad.any():
        raise ValueError(
            f"{where}: scores hold {int(bad.sum())} non-finite values (NaN or inf), first at index "
            f"{tuple(int(i) for i in np.argwhere(bad)[0])}: a diverged model or an unfilled buffer"
        )
    if targets.dtype.kind not in "biuf" or not np.isin(targets, (0, 1)).all():
        found = (
            np.unique(targets[~np.isin(targets, (0, 1))])[:5].tolist() if targets.dtype.kind in "iuf" else []
        )
        raise ValueError(
            f"{where}: targets must be multi-hot, 0 or 1 (or bool), got "
            + (f"values such as {found}" if found else f"dtype {targets.dtype}")
        )
    tags = scores.shape[-1]
    return scores.reshape(-1, tags).astype(np.float64), targets.reshape(-1, tags).astype(bool)


def _roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of one tag (NaN where only one class is present): the Mann-Whitney
    statistic with tied scores counted as half, which is what the ROC curve's trapezoids add up to."""
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    # Average rank (1-based) of each distinct score: tied scores share the mean of their ranks.
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _precision_recall_steps(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives at each distinct score taken as a threshold (``score >= t``), highest
    first."""
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, hits = scores[order], positive[order]
    # The last item of each run of equal scores: a threshold takes all of a tie or none of it.
    last = np.flatnonzero(np.r_[sorted_scores[1:] != sorted_scores[:-1], True])
    true_pos = np.cumsum(hits)[last]
    return true_pos, (last + 1) - true_pos


def _average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """Average precision of one tag as scikit-learn computes it (the precision at each threshold weighted
    by the recall it adds, no interpolation); NaN where the tag has no positive."""
    n_pos = int(positive.sum())
    if n_pos == 0:
        return float("nan")
    true_pos, false_pos = _precision_recall_steps(scores, positive)
    precision = true_pos / (true_pos + false_pos)
    recall_added = np.diff(np.r_[0, true_pos]) / n_pos
    return float((recall_added * precision).sum())


def best_f1_thresholds(scores, targets) -> np.ndarray:
    """For each tag, the threshold on its scores (``score >= threshold`` predicts the tag) with the highest
    F1 on these items, float64 [tags]: tune on the validation set, then pass the result as
    `compute_multilabel_metrics`'s ``threshold`` on the test set. A tag without positives gets +inf
    (predicted never, which is right for every item here); of equal F1s, the highest threshold wins."""
    scores, targets = _checked(scores, targets, "best_f1_thresholds")
    thresholds = np.full(scores.shape[1], np.inf)
    for tag in range(scores.shape[1]):
        column, positive = scores[:, tag], targets[:, tag]
        n_pos = int(positive.sum())
        if n_pos == 0:
            continue
        true_pos, false_pos = _precision_recall_steps(column, positive)
        f1 = 2 * true_pos / (2 * true_pos + false_pos + (n_pos - true_pos))
        distinct = np.sort(np.unique(column))[::-1]
        thresholds[tag] = distinct[int(np.argmax(f1))]  # argmax takes the first: the highest threshold
    return thresholds


def _f1(true_pos, predicted, support) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, true_pos / predicted, 0.0)
        recall = np.where(support > 0, true_pos / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return precision, recall, f1


def _nanmean(values: np.ndarray) -> float:
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else float("nan")


def compute_multilabel_metrics(scores, targets, threshold: float | np.ndarray = 0.5) -> MultiLabelMetrics:
    """Per-tag and averaged ROC-AUC, average precision and F1 of multi-label scores, as scikit-learn's
    ``roc_auc_score``, ``average_precision_score`` and ``f1_score`` (``zero_division=0``) compute them.

    Parameters
    ----------
    scores : array [..., tags]
        Logits or probabilities, one column per tag; NaN or inf is refused.
    targets : array [..., tags]
        Multi-hot: 1 (or True) where the item has the tag.
    threshold : float or array [tags]
        A tag is predicted where ``score >= threshold`` (0.5 for probabilities, 0 for logits); an array
        gives each tag its own, e.g. `best_f1_thresholds` of the validation set.

    Macro means are over the tags where the score is defined. Unlike scikit-learn, which raises for a
    ROC-AUC and reports an average precision of 0 where a tag is absent from the targets (a validation set
    too small for a rare tag), such a tag is NaN and left out of the macro means: ``defined_tags`` says over
    how many the ROC-AUC's is. The macro F1 leaves out the tags neither in the targets nor predicted, as
    `compute_per_class_metrics` does (scikit-learn's multi-label F1 counts them as 0). Micro means pool
    every (item, tag) pair.
    """
    scores, targets = _checked(scores, targets, "compute_multilabel_metrics")
    tags = scores.shape[1]
    threshold = np.asarray(threshold, dtype=np.float64)
    if threshold.ndim > 1 or (threshold.ndim == 1 and threshold.shape[0] != tags):
        raise ValueError(
            f"compute_multilabel_metrics: threshold {threshold.shape} must be a number or one per tag "
            f"({tags},)"
        )
    if np.isnan(threshold).any():
        # (`score >= nan` is False: the tag was never predicted and its F1 reported 0, without a word; +inf,
        # `best_f1_thresholds`' threshold of a tag without positives, is kept)
        first = int(np.flatnonzero(np.isnan(np.atleast_1d(threshold)))[0])
        raise ValueError(
            f"compute_multilabel_metrics: threshold holds NaN (at tag {first}); expected a number, or one "
            "per tag"
        )
    roc_auc = np.array([_roc_auc(scores[:, t], targets[:, t]) for t in range(tags)])
    average_precision = np.array([_average_precision(scores[:, t], targets[:, t]) for t in range(tags)])
    predicted = scores >= threshold
    true_pos = (predicted & targets).sum(axis=0)
    n_predicted, support = predicted.sum(axis=0), targets.sum(axis=0)
    precision, recall, f1 = _f1(true_pos, n_predicted, support)
    present = (support > 0) | (n_predicted > 0)
    _, _, micro_f1 = _f1(true_pos.sum(), n_predicted.sum(), support.sum())
    return {
        "roc_auc": roc_auc,
        "average_precision": average_precision,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support.astype(np.int64),
        "macro_roc_auc": _nanmean(roc_auc),
        "micro_roc_auc": _roc_auc(scores.ravel(), targets.ravel()),
        "macro_average_precision": _nanmean(average_precision),
        "micro_average_precision": _average_precision(scores.ravel(), targets.ravel()),
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "micro_f1": float(micro_f1),
        "defined_tags": int((~np.isnan(roc_auc)).sum()),
    }
