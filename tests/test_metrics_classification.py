"""Top-k accuracy, confusion matrix and per-class metrics against hand computations."""

from audiotrain.metrics.classification import (
    compute_confusion_matrix,
    compute_per_class_metrics,
    compute_topk_accuracy,
)

import numpy as np
import pytest

LOGITS = np.array(
    [
        [3.0, 1.0, 0.0],  # pred 0, true 0
        [0.0, 2.0, 1.0],  # pred 1, true 2 (top-2 hit)
        [1.0, 0.0, 2.0],  # pred 2, true 2
        [0.5, 2.0, 0.1],  # pred 1, true 0 (top-2 hit)
        [0.0, 0.0, 5.0],  # ignored target
    ]
)
TARGETS = np.array([0, 2, 2, 0, -1])


def test_topk_accuracy_by_hand():
    assert compute_topk_accuracy(LOGITS, TARGETS, k=1) == pytest.approx(50.0)
    assert compute_topk_accuracy(LOGITS, TARGETS, k=2) == pytest.approx(100.0)


def test_topk_ignores_and_flattens_frames():
    frames = LOGITS.reshape(1, 5, 3)
    assert compute_topk_accuracy(frames, TARGETS.reshape(1, 5)) == pytest.approx(50.0)
    assert compute_topk_accuracy(LOGITS[:1], np.array([-1])) == 0.0
    with pytest.raises(ValueError, match="k must be in 1..3"):
        compute_topk_accuracy(LOGITS, TARGETS, k=4)


def test_confusion_matrix_by_hand():
    expected = np.array([[1, 1, 0], [0, 0, 0], [0, 1, 1]])
    np.testing.assert_array_equal(compute_confusion_matrix(LOGITS, TARGETS), expected)
    # from predictions instead of scores, with more classes
    matrix = compute_confusion_matrix(np.array([0, 1, 2, 1]), np.array([0, 2, 2, 0]), num_classes=4)
    assert matrix.shape == (4, 4) and matrix[0, 1] == 1 and matrix[2, 1] == 1 and matrix.sum() == 4


def test_per_class_metrics_by_hand():
    m = compute_per_class_metrics(LOGITS, TARGETS)
    # class 0: tp 1, predicted 1, support 2 → p 1, r .5, f1 2/3
    # class 1: tp 0, predicted 2, support 0 → p 0, r 0 (zero division), f1 0
    # class 2: tp 1, predicted 1, support 2 → p 1, r .5, f1 2/3
    np.testing.assert_allclose(m["precision"], [1.0, 0.0, 1.0])
    np.testing.assert_allclose(m["recall"], [0.5, 0.0, 0.5])
    np.testing.assert_allclose(m["f1"], [2 / 3, 0.0, 2 / 3])
    np.testing.assert_array_equal(m["support"], [2, 0, 2])
    assert m["accuracy"] == pytest.approx(50.0)
    assert m["macro_f1"] == pytest.approx(2 / 3)  # over classes with support, as classification reports do


def test_per_class_metrics_match_a_direct_count(rng):
    scores = rng.normal(size=(500, 6))
    targets = rng.integers(0, 6, 500)
    predicted = scores.argmax(1)
    m = compute_per_class_metrics(scores, targets)
    for c in range(6):
        tp = np.sum((predicted == c) & (targets == c))
        assert m["precision"][c] == pytest.approx(tp / np.sum(predicted == c))
        assert m["recall"][c] == pytest.approx(tp / np.sum(targets == c))
        assert m["support"][c] == np.sum(targets == c)


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match="do not match targets"):
        compute_confusion_matrix(np.zeros((4, 3)), np.zeros(5, int))
