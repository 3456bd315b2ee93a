"""Top-k accuracy, confusion matrix and per-class metrics against hand computations."""

from audiotrain.metrics.classification import (
    compute_confusion_matrix,
    compute_per_class_metrics,
    compute_topk_accuracy,
    per_class_metrics_from_confusion,
)

import numpy as np
import pytest
from reference import require

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
    # Nothing to score is no accuracy, not 0% (which reads as a model always wrong).
    assert np.isnan(compute_topk_accuracy(LOGITS[:1], np.array([-1])))
    empty = per_class_metrics_from_confusion(np.zeros((3, 3)))
    assert all(np.isnan(empty[key]) for key in ("accuracy", "macro_f1", "weighted_f1"))
    with pytest.raises(ValueError, match="k must be a whole number in 1..3"):
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
    # As sklearn's f1_score(average="macro", zero_division=0): class 1 is never a target but is predicted,
    # so its F1 of 0 counts; averaging only over classes with support would hide the false positives.
    assert m["macro_f1"] == pytest.approx(4 / 9)
    assert m["weighted_f1"] == pytest.approx(2 / 3)  # weighted by support, so class 1 weighs nothing


def test_macro_f1_counts_classes_only_predicted():
    m = compute_per_class_metrics(np.array([0, 0, 1, 1, 3, 3]), np.array([0, 1, 1, 2, 2, 2]))
    # F1 per class: 0 → 2/3 (p 1/2, r 1), 1 → 1/2, 2 → 0 (never predicted), 3 → 0 (never a target)
    np.testing.assert_allclose(m["f1"], [2 / 3, 0.5, 0.0, 0.0])
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.5) / 4)  # 0.2917, as sklearn gives
    assert m["weighted_f1"] == pytest.approx((2 / 3 * 1 + 0.5 * 2) / 6)
    # a class that is neither predicted nor a target stays out of the mean
    wider = compute_per_class_metrics(
        np.array([0, 0, 1, 1, 3, 3]), np.array([0, 1, 1, 2, 2, 2]), num_classes=6
    )
    assert wider["macro_f1"] == pytest.approx(m["macro_f1"])
    assert wider["support"].tolist() == [1, 2, 3, 0, 0, 0]  # num_classes, not the largest class seen
    # zero_division=0, as sklearn's: class 2 is never predicted, so its precision is 0 (not 1)
    np.testing.assert_allclose(m["precision"], [0.5, 0.5, 0.0, 0.0])
    np.testing.assert_allclose(m["recall"], [1.0, 0.5, 0.0, 0.0])


@pytest.mark.parity
def test_macro_and_weighted_f1_match_sklearn(rng):
    metrics = require("sklearn.metrics")
    targets = rng.integers(0, 7, 300)
    predicted = np.where(rng.random(300) < 0.4, targets, rng.integers(0, 9, 300))  # 7, 8: never targets
    targets[targets == 5] = 4  # 5: predicted, never a target
    m = compute_per_class_metrics(predicted, targets, num_classes=10)
    for average in ("macro", "weighted"):
        expected = metrics.f1_score(targets, predicted, average=average, zero_division=0)
        assert m[f"{average}_f1"] == pytest.approx(expected)


def test_topk_ties_are_not_all_hits():
    # A collapsed model (constant scores) ranks classes by index, as a stable sort would: chance level.
    assert compute_topk_accuracy(np.zeros((4, 4)), np.arange(4), k=1) == pytest.approx(25.0)
    assert compute_topk_accuracy(np.zeros((4, 4)), np.arange(4), k=2) == pytest.approx(50.0)
    tied = np.array([[1.0, 2.0, 2.0, 0.0]])
    assert compute_topk_accuracy(tied, np.array([1]), k=1) == 100.0
    assert compute_topk_accuracy(tied, np.array([2]), k=1) == 0.0
    assert compute_topk_accuracy(tied, np.array([2]), k=2) == 100.0


def test_topk_nan_scores_rank_last():
    assert compute_topk_accuracy(np.full((4, 4), np.nan), np.arange(4), k=1) == pytest.approx(25.0)
    scores = np.array([[np.nan, 1.0, 0.0], [np.nan, 0.0, 1.0]])
    assert compute_topk_accuracy(scores[:1], np.array([0]), k=2) == 0.0  # below 1.0 and 0.0
    assert compute_topk_accuracy(scores[:1], np.array([0]), k=3) == 100.0
    assert compute_topk_accuracy(scores[1:], np.array([2]), k=1) == 100.0


def test_topk_matches_a_stable_descending_sort(rng):
    scores = rng.integers(0, 3, size=(400, 5)).astype(float)  # many ties
    scores[rng.random(scores.shape) < 0.1] = np.nan
    targets = rng.integers(0, 5, 400)
    # Stable argsort of the negated scores, NaN last: the order torch.topk and the docstring describe.
    order = np.argsort(-np.nan_to_num(scores, nan=-np.inf), axis=1, kind="stable")
    rank = np.argmax(order == targets[:, None], axis=1)
    for k in (1, 2, 3):
        assert compute_topk_accuracy(scores, targets, k=k) == pytest.approx(100.0 * np.mean(rank < k))


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


def test_the_matrix_from_scores_is_as_wide_as_the_scores_when_the_last_classes_never_occur():
    """Sized by the largest class seen, the rows of classes no frame of a small set had would go missing,
    and the per-class arrays would no longer line up with the class names."""
    scores = np.eye(4)[[0, 2, 1]]  # predicted 0, 2, 1: class 3 is neither predicted nor a target
    targets = np.array([0, 2, 2])
    matrix = compute_confusion_matrix(scores, targets)
    assert matrix.tolist() == [[1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    assert compute_per_class_metrics(scores, targets)["support"].tolist() == [1, 0, 2, 0]


def test_a_class_outside_num_classes_is_refused_not_counted_in_another_row():
    """The flattened count would put prediction 3 of target 0 (num_classes=3) in cell [1, 0]."""
    predicted_outside = r"compute_confusion_matrix: predictions outside 0\.\.2 \(num_classes=3\): \[3\]"
    with pytest.raises(ValueError, match=predicted_outside):
        compute_confusion_matrix(np.array([3, 0]), np.array([0, 1]), num_classes=3)
    with pytest.raises(ValueError, match=predicted_outside):  # scores 4 wide, argmax 3
        compute_confusion_matrix(np.array([[0.0, 0.0, 0.0, 9.0]]), np.array([0]), num_classes=3)
    with pytest.raises(
        ValueError, match=r"compute_confusion_matrix: targets outside 0\.\.2 \(num_classes=3\): \[3\]"
    ):
        compute_confusion_matrix(np.array([0, 0]), np.array([0, 3]), num_classes=3)
    with pytest.raises(ValueError, match=r"compute_per_class_metrics: predictions outside 0\.\.2"):
        compute_per_class_metrics(np.array([3, 0]), np.array([0, 1]), num_classes=3)


def test_a_target_outside_the_scores_classes_is_named_with_its_value_by_every_metric():
    """The confusion matrix said only "classes outside 0..2 in targets or predictions": neither which
    argument nor which value."""
    targets = np.array([0, 2, 5, 0, -1])
    for metric in (compute_confusion_matrix, compute_per_class_metrics):
        with pytest.raises(
            ValueError, match=rf"{metric.__name__}: targets outside 0\.\.2 \(the scores' classes\): \[5\]"
        ):
            metric(LOGITS, targets)


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match="do not match targets"):
        compute_confusion_matrix(np.zeros((4, 3)), np.zeros(5, int))
    with pytest.raises(ValueError, match=r"scores \(4, 2, 3\) do not match targets \(4,\)"):
        compute_confusion_matrix(np.zeros((4, 2, 3)), np.zeros(4, int))  # one dimension too many


def test_bool_targets_and_predictions_are_classes_0_and_1():
    """A binary head's labels as a bool mask are class indices, not a dtype to refuse."""
    matrix = compute_confusion_matrix(np.array([True, False, True]), np.array([True, True, False]))
    assert matrix.tolist() == [[0, 1], [1, 1]]
    assert compute_topk_accuracy(np.array([[0.2, 0.8], [0.9, 0.1]]), np.array([True, True])) == 50.0


def test_bfloat16_mlx_scores_give_the_float32_results():
    """MLX bfloat16 (precision="bf16-true") is widened: numpy has no bfloat16 buffer format."""
    import mlx.core as mx

    scores = mx.array(LOGITS, dtype=mx.bfloat16)
    targets = mx.array(TARGETS)
    assert compute_topk_accuracy(scores, targets, k=2) == compute_topk_accuracy(LOGITS, TARGETS, k=2)
    assert (compute_confusion_matrix(scores, targets) == compute_confusion_matrix(LOGITS, TARGETS)).all()
    assert (
        compute_per_class_metrics(scores, targets)["macro_f1"]
        == compute_per_class_metrics(LOGITS, TARGETS)["macro_f1"]
    )


def test_topk_target_outside_the_classes_is_an_error_not_a_wrapped_index():
    with pytest.raises(ValueError, match=r"targets outside 0\.\.2 \(the scores' classes\): \[-3, 5\]"):
        compute_topk_accuracy(LOGITS, np.array([0, 2, -3, 5, -1]), k=2)
    # only a negative one (not ignore_index): take_along_axis would wrap -2 to class 1
    with pytest.raises(ValueError, match=r"targets outside 0\.\.2 \(the scores' classes\): \[-2\]"):
        compute_topk_accuracy(LOGITS, np.array([0, 2, -2, 1, -1]), k=2)


def test_k_outside_1_to_the_classes_and_empty_targets_are_refused():
    """k=0 would read 0%, k=1.5 the top-2 accuracy, and an empty batch fail in numpy's reshape, naming
    nothing."""
    with pytest.raises(ValueError, match=r"k must be a whole number in 1\.\.3, got 0"):
        compute_topk_accuracy(LOGITS, TARGETS, k=0)
    with pytest.raises(ValueError, match=r"k must be a whole number in 1\.\.3, got 4"):
        compute_topk_accuracy(LOGITS, TARGETS, k=4)
    assert compute_topk_accuracy(LOGITS, TARGETS, k=3) == 100.0
    # k=1.5 read the top-2 accuracy (rank 1 < 1.5); a whole-valued 2.0 is k=2
    with pytest.raises(ValueError, match=r"k must be a whole number in 1\.\.3, got 1\.5"):
        compute_topk_accuracy(LOGITS, TARGETS, k=1.5)
    assert compute_topk_accuracy(LOGITS, TARGETS, k=2.0) == compute_topk_accuracy(LOGITS, TARGETS, k=2)
    with pytest.raises(ValueError, match="targets is empty"):
        compute_topk_accuracy(np.zeros((0, 3)), np.zeros(0, int))


def test_an_empty_input_is_refused_by_name_by_every_metric():
    """The confusion matrix and per-class metrics of an empty loader failed in numpy's reshape ("cannot
    reshape array of size 0 into shape (0,newaxis)"), naming nothing, where top-k accuracy named it."""
    for metric in (compute_topk_accuracy, compute_confusion_matrix, compute_per_class_metrics):
        with pytest.raises(ValueError, match=rf"{metric.__name__}: targets is empty \(scores \(0, 3\)"):
            metric(np.zeros((0, 3)), np.zeros(0, int))
    with pytest.raises(ValueError, match="compute_confusion_matrix: targets is empty"):
        compute_confusion_matrix(np.zeros(0, int), np.zeros(0, int))  # predictions: a 0 x 0 matrix before


def test_float_targets_and_max_scores_as_predictions_are_refused_not_truncated():
    """Non-integer targets (y + 0.7) and a row's max score given as its prediction were truncated to ints
    and counted as classes; a one-hot targets array failed with "classes outside 0..3", no hint."""
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((50, 5)).astype(np.float32)
    targets = rng.integers(0, 5, 50)
    with pytest.raises(ValueError, match=r"compute_topk_accuracy: targets must be class indices .*\[0\.7"):
        compute_topk_accuracy(scores, targets + 0.7)
    with pytest.raises(ValueError, match=r"compute_confusion_matrix: targets must be class indices"):
        compute_confusion_matrix(scores, targets + 0.5)
    with pytest.raises(ValueError, match=r"read as predicted classes, which must be class indices .*argmax"):
        compute_confusion_matrix(scores.max(axis=1), targets, num_classes=5)
    one_hot = np.eye(5, dtype=np.float32)[targets]
    for metric in (compute_topk_accuracy, compute_confusion_matrix, compute_per_class_metrics):
        with pytest.raises(
            ValueError, match=r"targets \(50, 5\) look one-hot .*pass targets\.argmax\(axis=-1\)"
        ):
            metric(scores, one_hot)
    # Whole-valued floats are class indices; so are integer predictions beside binary frame targets.
    assert compute_topk_accuracy(scores, targets.astype(np.float32)) == compute_topk_accuracy(scores, targets)
    frames = np.zeros((4, 6), np.int64)
    frames[:, 2] = 1  # one onset a clip: not one-hot targets
    assert compute_confusion_matrix(frames, frames).tolist() == [[20, 0], [0, 4]]


def test_multi_hot_tags_beside_scores_are_named_with_the_per_tag_way_to_score_them():
    """A multi-label tagger's 0/1 tags (several 1s a row) met "scores ... are read as predicted classes,
    which must be class indices": no word of the targets, nor of a way to score tags."""
    sigmoid = np.array([[0.9, 0.8, 0.1], [0.2, 0.7, 0.6], [0.6, 0.1, 0.4], [0.1, 0.3, 0.9]])
    tags = np.array([[1, 1, 0], [0, 1, 1], [0, 0, 0], [0, 1, 1]])
    for metric in (compute_topk_accuracy, compute_confusion_matrix, compute_per_class_metrics):
        with pytest.raises(
            ValueError,
            match=r"targets \(4, 3\) look multi-hot .*compute_multilabel_metrics\(scores, targets\)",
        ):
            metric(sigmoid, tags)
    # The way it names, for tag 0: predicted 1, 0, 1, 0 against 1, 0, 0, 0
    tag_0 = compute_per_class_metrics((sigmoid[..., 0] > 0.5).astype(int), tags[..., 0])
    assert tag_0["precision"].tolist() == [1.0, 0.5] and tag_0["recall"].tolist() == [2 / 3, 1.0]


def test_another_ignore_index_leaves_out_that_class_and_none_leaves_out_nothing():
    """With ignore_index=0 (a background class left out of the score) class 0's frames are not counted."""
    scores = np.array([[0.9, 0.1, 0.0], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    targets = np.array([0, 0, 1, 1])  # predicted 0, 0, 1, 2
    assert compute_topk_accuracy(scores, targets, ignore_index=0) == pytest.approx(50.0)
    assert compute_topk_accuracy(scores, targets, ignore_index=None) == pytest.approx(75.0)
    matrix = compute_confusion_matrix(scores, targets, ignore_index=0)
    assert matrix.tolist() == [[0, 0, 0], [0, 1, 1], [0, 0, 0]]
    assert compute_confusion_matrix(scores, targets, ignore_index=None).tolist() == [
        [2, 0, 0],
        [0, 1, 1],
        [0, 0, 0],
    ]
    assert compute_per_class_metrics(scores, targets, ignore_index=0)["support"].tolist() == [0, 2, 0]


def test_targets_as_a_column_are_named_as_the_mistake_not_the_scores():
    """``compute_topk_accuracy(logits, targets[:, None])`` (a column of targets, common in torch code) said
    "needs scores [..., classes], got (16, 32) for targets (16, 1)", blaming the scores; the confusion matrix
    said the scores "do not match". Both name the targets' column and the shape expected."""
    rng = np.random.default_rng(0)
    scores, targets = rng.normal(size=(16, 32)), rng.integers(0, 32, 16)
    for metric in (compute_topk_accuracy, compute_confusion_matrix):
        with pytest.raises(ValueError) as refused:
            metric(scores, targets[:, None])
        message = str(refused.value)
        assert "targets (16, 1) are a column" in message and "expected targets (16,)" in message, message
        assert "targets.squeeze(-1)" in message
    assert compute_topk_accuracy(scores, targets) == compute_topk_accuracy(
        scores, targets[:, None].squeeze(-1)
    )
