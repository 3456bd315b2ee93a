"""Multi-label (tagging) metrics against scikit-learn: ROC-AUC, average precision, F1, tuned thresholds."""

from audiotrain.metrics import best_f1_thresholds, compute_multilabel_metrics

import mlx.core as mx
import numpy as np
import pytest
from reference import require


def _tagging_data(seed=0, n=60, tags=6, ties=False):
    rng = np.random.default_rng(seed)
    targets = (rng.random((n, tags)) < np.linspace(0.6, 0.1, tags)).astype(np.int64)
    targets[0] = 1  # every tag has a positive and (below) a negative
    targets[1] = 0
    scores = targets * 0.8 + rng.random((n, tags))
    if ties:  # coarse scores, as from a quantised model or a bf16 output
        scores = np.round(scores, 1)
    return scores, targets


@pytest.mark.parametrize("ties", [False, True])
def test_multilabel_metrics_match_sklearn(ties):
    metrics = require("sklearn.metrics")
    scores, targets = _tagging_data(ties=ties)
    got = compute_multilabel_metrics(scores, targets, threshold=0.9)
    for average in ("macro", "micro"):
        assert got[f"{average}_roc_auc"] == pytest.approx(
            metrics.roc_auc_score(targets, scores, average=average)
        )
        assert got[f"{average}_average_precision"] == pytest.approx(
            metrics.average_precision_score(targets, scores, average=average)
        )
        assert got[f"{average}_f1"] == pytest.approx(
            metrics.f1_score(targets, scores >= 0.9, average=average)
        )
    np.testing.assert_allclose(got["roc_auc"], metrics.roc_auc_score(targets, scores, average=None))
    np.testing.assert_allclose(
        got["average_precision"], metrics.average_precision_score(targets, scores, average=None)
    )
    np.testing.assert_allclose(got["f1"], metrics.f1_score(targets, scores >= 0.9, average=None))
    np.testing.assert_allclose(
        got["precision"], metrics.precision_score(targets, scores >= 0.9, average=None)
    )
    np.testing.assert_allclose(got["recall"], metrics.recall_score(targets, scores >= 0.9, average=None))
    np.testing.assert_array_equal(got["support"], targets.sum(axis=0))
    assert got["defined_tags"] == 6


def test_tag_absent_from_the_validation_set_is_left_out_not_a_crash():
    # A rare tag with no positive in a small validation set: sklearn's roc_auc_score warns, its
    # average_precision reports 0 for that tag and drags the mAP down.
    metrics = require("sklearn.metrics")
    scores, targets = _tagging_data()
    targets[:, 3] = 0
    got = compute_multilabel_metrics(scores, targets)
    assert np.isnan(got["roc_auc"][3]) and np.isnan(got["average_precision"][3])
    assert got["defined_tags"] == 5
    kept = [0, 1, 2, 4, 5]
    assert got["macro_roc_auc"] == pytest.approx(metrics.roc_auc_score(targets[:, kept], scores[:, kept]))
    assert got["macro_average_precision"] == pytest.approx(
        metrics.average_precision_score(targets[:, kept], scores[:, kept])
    )
    # F1: the absent tag counts where it was predicted (a false alarm), as in compute_per_class_metrics.
    assert got["f1"][3] == 0.0
    # A tag present in every item has no ROC-AUC either, but an average precision (1.0).
    targets[:, 3] = 1
    got = compute_multilabel_metrics(scores, targets)
    assert np.isnan(got["roc_auc"][3]) and got["average_precision"][3] == 1.0


def test_batched_and_mlx_inputs_give_the_whole_set_figures():
    # Scores gathered from batches of 7 (an uneven last batch) and frames [batch, frames, tags] are flattened.
    scores, targets = _tagging_data(n=63)
    whole = compute_multilabel_metrics(scores, targets)
    gathered = compute_multilabel_metrics(
        np.concatenate([scores[i : i + 7] for i in range(0, 63, 7)]),
        np.concatenate([targets[i : i + 7] for i in range(0, 63, 7)]),
    )
    framed = compute_multilabel_metrics(
        mx.array(scores.reshape(9, 7, 6).astype(np.float32)).astype(mx.bfloat16).astype(mx.float32),
        mx.array(targets.reshape(9, 7, 6)),
    )
    assert gathered["macro_average_precision"] == whole["macro_average_precision"]
    assert framed["defined_tags"] == 6 and np.isfinite(framed["macro_roc_auc"])
    bf16 = compute_multilabel_metrics(mx.array(scores).astype(mx.bfloat16), targets)
    assert np.isfinite(bf16["macro_average_precision"])


def test_best_f1_thresholds_reach_the_best_f1_of_the_precision_recall_curve():
    metrics = require("sklearn.metrics")
    scores, targets = _tagging_data(seed=3, ties=True)
    thresholds = best_f1_thresholds(scores, targets)
    tuned = compute_multilabel_metrics(scores, targets, threshold=thresholds)
    for tag in range(6):
        precision, recall, _ = metrics.precision_recall_curve(targets[:, tag], scores[:, tag])
        with np.errstate(invalid="ignore"):
            best = np.nanmax(2 * precision * recall / (precision + recall))
        assert tuned["f1"][tag] == pytest.approx(best)
        assert metrics.f1_score(targets[:, tag], scores[:, tag] >= thresholds[tag]) == pytest.approx(best)
    assert tuned["macro_f1"] >= compute_multilabel_metrics(scores, targets)["macro_f1"]
    targets[:, 2] = 0
    assert best_f1_thresholds(scores, targets)[2] == np.inf


@pytest.mark.parametrize(
    "scores, targets, message",
    [
        (np.zeros((4, 3)), np.array([0, 1, 2, 1]), "class indices, one class per item"),
        (
            np.zeros((4, 3)),
            np.zeros((4, 2)),
            r"scores \(4, 3\) and targets \(4, 2\) must have the same shape",
        ),
        (np.zeros((4, 3)), np.full((4, 3), 2), r"multi-hot, 0 or 1 .*values such as \[2\]"),
        (np.full((4, 3), np.nan), np.zeros((4, 3)), r"12 non-finite values .*first at index \(0, 0\)"),
        (np.zeros((0, 3)), np.zeros((0, 3)), "targets is empty"),
    ],
)
def test_wrong_inputs_are_named(scores, targets, message):
    with pytest.raises(ValueError, match=message):
        compute_multilabel_metrics(scores, targets)


def test_threshold_of_the_wrong_length_is_named():
    scores, targets = _tagging_data()
    with pytest.raises(ValueError, match=r"threshold \(5,\) must be a number or one per tag \(6,\)"):
        compute_multilabel_metrics(scores, targets, threshold=np.full(5, 0.5))


def test_a_nan_threshold_is_named():
    """`score >= nan` is never true: a NaN threshold (a tuned one gone wrong) reported F1 0 without a word."""
    scores, targets = _tagging_data()
    with pytest.raises(ValueError, match=r"threshold holds NaN \(at tag 0\)"):
        compute_multilabel_metrics(scores, targets, threshold=float("nan"))
    tuned = np.full(6, 0.5)
    tuned[3] = np.nan
    with pytest.raises(ValueError, match=r"threshold holds NaN \(at tag 3\)"):
        compute_multilabel_metrics(scores, targets, threshold=tuned)
    tuned[3] = np.inf  # (best_f1_thresholds' threshold of a tag without positives: never predicted)
    assert compute_multilabel_metrics(scores, targets, threshold=tuned)["f1"][3] == 0.0
