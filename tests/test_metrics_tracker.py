"""MetricsTracker: weighted loss means, exact accuracies over batches, confusion, summary."""

from audiotrain.metrics.tracker import MetricsTracker

import mlx.core as mx
import numpy as np
import pytest


def test_losses_are_weighted_by_batch_size():
    tracker = MetricsTracker()
    tracker.update({"loss": 1.0, "root_loss": mx.array(0.5)}, batch_size=3)
    tracker.update({"loss": 3.0, "root_loss": np.float32(1.5)}, batch_size=1)
    metrics = tracker.get_metrics()
    assert metrics["loss"] == pytest.approx((3 * 1.0 + 3.0) / 4)
    assert metrics["root_loss"] == pytest.approx((3 * 0.5 + 1.5) / 4)


def test_a_batch_of_no_examples_is_refused_and_a_batch_without_targets_counts_its_losses():
    """batch_size=0 read as 1 would weigh an empty batch's loss; targets=None (a loss-only step) adds no
    accuracy."""
    tracker = MetricsTracker()
    with pytest.raises(ValueError, match="batch_size must be positive, got 0"):
        tracker.update({"loss": 1.0}, batch_size=0)
    tracker.update({"loss": 1.0}, {"h": np.zeros((2, 3))}, None, batch_size=2)
    assert tracker.get_metrics() == {"loss": 1.0}


def test_a_loss_missing_from_some_batches_is_the_mean_over_the_batches_that_reported_it():
    """It was divided by every batch's weight: `aux_loss` 2.0 reported once of two batches read 1.0."""
    tracker = MetricsTracker()
    tracker.update({"loss": 1.0, "aux_loss": 2.0}, batch_size=10)
    tracker.update({"loss": 3.0}, batch_size=30)
    assert tracker.get_metrics() == {"loss": pytest.approx(2.5), "aux_loss": pytest.approx(2.0)}


def test_accuracies_count_frames_and_skip_ignored(rng):
    tracker = MetricsTracker(num_classes={"chord_type": 4})
    all_scores, all_targets = [], []
    for batch_size in (2, 3, 1):
        scores = rng.normal(size=(batch_size, 5, 4)).astype(np.float32)
        targets = rng.integers(-1, 4, (batch_size, 5))
        tracker.update(
            {"loss": 0.0},
            {"chord_type": mx.array(scores), "root": scores[..., :3]},
            {
                "chord_type": mx.array(targets),
                "root": np.where(targets > 2, -1, targets),
                "mask": np.ones((batch_size, 5)),
            },
            batch_size,
        )
        all_scores.append(scores.reshape(-1, 4))
        all_targets.append(targets.reshape(-1))
    scores, targets = np.concatenate(all_scores), np.concatenate(all_targets)
    keep = targets >= 0
    expected = 100 * np.mean(scores[keep].argmax(1) == targets[keep])
    metrics = tracker.get_metrics()
    assert metrics["chord_type_acc"] == pytest.approx(expected)
    assert "root_acc" in metrics and "mask_acc" not in metrics
    confusion = tracker.confusion_matrix("chord_type")
    assert confusion.sum() == keep.sum()
    assert np.trace(confusion) == np.sum(scores[keep].argmax(1) == targets[keep])
    assert tracker.per_class_metrics("chord_type")["support"].sum() == keep.sum()
    with pytest.raises(KeyError, match="num_classes"):
        tracker.confusion_matrix("root")


def test_the_confusion_matrix_is_true_by_predicted_so_precision_and_recall_are_not_swapped():
    """A transposed count keeps the total and the trace, so only a cell off the diagonal shows it."""
    tracker = MetricsTracker(num_classes={"chord_type": 3})
    predicted, targets = np.array([1, 1, 2, 0]), np.array([0, 1, 2, 0])
    tracker.update({}, {"chord_type": np.eye(3)[predicted]}, {"chord_type": targets})
    confusion = tracker.confusion_matrix("chord_type")
    assert confusion.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]  # row 0: one true 0 taken for a 1
    per_class = tracker.per_class_metrics("chord_type")
    # class 0: predicted once, rightly (precision 1), of two true 0s (recall 1/2); class 1 the other way
    np.testing.assert_allclose(per_class["precision"], [1.0, 0.5, 1.0])
    np.testing.assert_allclose(per_class["recall"], [0.5, 1.0, 1.0])


def test_topk_summary_and_reset():
    tracker = MetricsTracker(topk={"root": (2,)})
    scores = np.array([[0.1, 0.9, 0.0], [0.6, 0.3, 0.1]])
    tracker.update({"loss": 0.25}, {"root": scores}, {"root": np.array([0, 1])}, batch_size=2)
    metrics = tracker.get_metrics()
    assert metrics["root_acc"] == 0.0 and metrics["root_top2_acc"] == 100.0
    assert tracker.summary() == "loss=0.2500 root_acc=0.00% root_top2_acc=100.00%"
    tracker.reset()
    assert tracker.get_metrics() == {} and tracker.summary() == "(no batches)"


def test_reset_forgets_the_confusion_counts_of_the_epoch_before():
    """reset() starts an epoch: the next confusion matrix counts only that epoch's frames."""
    tracker = MetricsTracker(num_classes={"h": 3})
    scores = np.array([[0.9, 0.1, 0.0], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    tracker.update({"loss": 1.0}, {"h": scores}, {"h": np.array([0, 0, 1, 1])}, batch_size=4)
    tracker.reset()
    tracker.update({"loss": 3.0}, {"h": scores[2:3]}, {"h": np.array([1])})
    assert tracker.confusion_matrix("h").tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 0]]
    assert tracker.get_metrics() == {"loss": 3.0, "h_acc": 100.0}


def test_another_ignore_index_leaves_out_that_class():
    scores = np.array([[0.9, 0.1, 0.0], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    tracker = MetricsTracker(num_classes={"h": 3}, ignore_index=0)
    tracker.update({}, {"h": scores}, {"h": np.array([0, 0, 1, 1])})  # predicted 0, 0, 1, 2
    assert tracker.get_metrics()["h_acc"] == pytest.approx(50.0)
    assert tracker.confusion_matrix("h").tolist() == [[0, 0, 0], [0, 1, 1], [0, 0, 0]]


def test_mismatched_head_shapes_are_reported():
    tracker = MetricsTracker()
    with pytest.raises(ValueError, match="head 'root'"):
        tracker.update({}, {"root": np.zeros((2, 12))}, {"root": np.zeros(3, int)}, 2)


def test_float_targets_that_are_not_whole_are_refused_not_truncated_as_the_functions_do():
    """[0.0, 2.7, 2.2] was read as [0, 2, 2]: h_acc 66.7% from labels compute_topk_accuracy refuses."""
    scores = np.array([[3.0, 1.0, 0.0, 0.0], [0.0, 2.0, 1.0, 0.0], [1.0, 0.0, 2.0, 0.0]])
    tracker = MetricsTracker(num_classes={"h": 4})
    with pytest.raises(
        ValueError, match=r"head 'h': targets must be class indices \(whole numbers\), .*\[2\.7, 2\.2\]"
    ):
        tracker.update({}, {"h": scores}, {"h": np.array([0.0, 2.7, 2.2])})
    assert tracker.confusion_matrix("h").sum() == 0
    tracker.update({}, {"h": scores}, {"h": np.array([0.0, 2.0, 2.0], np.float32)})  # whole floats: classes
    assert tracker.get_metrics() == {"h_acc": pytest.approx(200 / 3)}


def test_topk_counts_ties_as_compute_topk_accuracy_does(rng):
    """A tie counted as a hit: a collapsed model (every score equal) or a saturated one (a float32 softmax
    that is exactly 0 for every class but its pick) read 100% top-2, while top-1 read chance."""
    from audiotrain.metrics.classification import compute_topk_accuracy

    targets = rng.integers(0, 8, size=(2, 50))
    collapsed = np.full((2, 50, 8), 1 / 8, np.float32)
    saturated = np.zeros((2, 50, 8), np.float32)
    saturated[..., 5] = 1.0
    ties = rng.integers(0, 3, size=(2, 50, 8)).astype(np.float32)  # a few values: ties everywhere
    with_nan = rng.normal(size=(2, 50, 8)).astype(np.float32)
    with_nan[0, :10, 2] = np.nan
    for scores in (collapsed, saturated, ties, with_nan):
        tracker = MetricsTracker(topk={"chord_type": (2, 3, 5)})
        for part in range(2):  # two batches: the counts add up as one
            tracker.update(
                {}, {"chord_type": scores[part : part + 1]}, {"chord_type": targets[part : part + 1]}
            )
        metrics = tracker.get_metrics()
        for k in (1, 2, 3, 5):
            key = "chord_type_acc" if k == 1 else f"chord_type_top{k}_acc"
            assert metrics[key] == pytest.approx(compute_topk_accuracy(scores, targets, k=k)), (
                k,
                scores[0, 0],
            )
    assert metrics["chord_type_top2_acc"] <= metrics["chord_type_top3_acc"] <= metrics["chord_type_top5_acc"]
    collapsed_tracker = MetricsTracker(topk={"chord_type": (2,)})
    collapsed_tracker.update({}, {"chord_type": collapsed}, {"chord_type": targets})
    assert collapsed_tracker.get_metrics()["chord_type_top2_acc"] == pytest.approx(
        100 * np.isin(targets, (0, 1)).mean()
    )


def test_a_head_whose_every_target_is_ignored_has_no_accuracy_not_zero():
    """Songs annotated all N leave the root head nothing to score: 0% read as a model always wrong."""
    tracker = MetricsTracker(topk={"root": (2,)})
    scores = np.array([[0.1, 0.9, 0.0], [0.6, 0.3, 0.1]])
    tracker.update(
        {},
        {"root": scores, "chord_type": scores},
        {"root": np.array([-1, -1]), "chord_type": np.array([1, 0])},
    )
    metrics = tracker.get_metrics()
    assert np.isnan(metrics["root_acc"]) and np.isnan(metrics["root_top2_acc"])
    assert metrics["chord_type_acc"] == 100.0


def test_a_class_outside_num_classes_is_an_error_naming_the_head_not_a_count_in_another_cell():
    """A head 4 wide listed as 3 classes: its pick of class 3 used to be counted as true 1 / predicted 0."""
    tracker = MetricsTracker(num_classes={"h": 3})
    with pytest.raises(
        ValueError, match=r"head 'h': predictions outside 0\.\.2, .*num_classes=\{'h': 3\}.*: \[3\]"
    ):
        tracker.update({}, {"h": np.array([[0.0, 0.0, 0.0, 9.0]])}, {"h": np.array([0])})
    with pytest.raises(
        ValueError, match=r"head 'h': targets outside 0\.\.2 \(its scores have 3 classes\): \[5\]"
    ):
        tracker.update({}, {"h": np.array([[9.0, 0.0, 0.0]])}, {"h": np.array([5])})
    with pytest.raises(
        ValueError, match=r"head 'h': targets outside 0\.\.2, .*num_classes=\{'h': 3\}.*: \[3\]"
    ):
        tracker.update({}, {"h": np.zeros((1, 4))}, {"h": np.array([3])})
    assert tracker.confusion_matrix("h").sum() == 0  # nothing of the refused batches was counted


def test_topk_of_more_classes_than_the_head_has_is_refused_as_compute_topk_accuracy_does():
    """A mistyped topk={"root": (13,)} on a 12-class head read a perfect root_top13_acc."""
    tracker = MetricsTracker(topk={"h": (7,)})
    with pytest.raises(
        ValueError,
        match=r"MetricsTracker\(topk=\{'h': \(7,\)\}\): k must be a whole number in 1\.\.5 .*got 7",
    ):
        tracker.update({}, {"h": np.zeros((4, 5))}, {"h": np.array([0, 1, 2, 3])})
    # the bounds themselves: k = classes is every target (100%), one more is refused
    tracker = MetricsTracker(topk={"h": (5,)})
    tracker.update({}, {"h": np.zeros((4, 5))}, {"h": np.array([0, 1, 2, 4])})
    assert tracker.get_metrics()["h_top5_acc"] == 100.0
    with pytest.raises(ValueError, match=r"k must be a whole number in 1\.\.4 .*got 5"):
        tracker.update({}, {"h": np.zeros((4, 4))}, {"h": np.array([0, 1, 2, 3])})


def test_a_topk_beyond_the_classes_num_classes_gives_is_refused_when_the_tracker_is_made():
    """MetricsTracker(num_classes={"h": 3}, topk={"h": (4,)}) was accepted and refused at the first update,
    mid-validation, with that batch's loss already counted."""
    for ks in [(4,), (0,), (1.5,)]:
        with pytest.raises(
            ValueError, match=r"MetricsTracker\(topk=\{'h': .*\}\): k must be a whole number in 1\.\.3"
        ):
            MetricsTracker(num_classes={"h": 3}, topk={"h": ks})
    tracker = MetricsTracker(num_classes={"h": 3}, topk={"h": (3,)})
    tracker.update({"loss": 1.0}, {"h": np.eye(3)}, {"h": np.arange(3)})
    assert tracker.get_metrics()["h_top3_acc"] == 100.0


def test_a_fractional_topk_is_refused_not_counted_as_the_next_whole_k():
    """topk={"h": (1.5,)} logged h_top1.5_acc with the top-2 accuracy (rank 1 < 1.5 counted as a hit)."""
    tracker = MetricsTracker(topk={"h": (1.5,)})
    with pytest.raises(ValueError, match=r"k must be a whole number in 1\.\.3 .*got 1\.5"):
        tracker.update({}, {"h": np.array([[0.9, 0.1, 0.0]])}, {"h": np.array([1])})
    assert "h_top1.5_acc" not in tracker.get_metrics()


def test_bfloat16_mlx_outputs_and_losses_are_read_as_float32():
    """What precision="bf16-true" gives; numpy has no bfloat16 and used to raise a buffer-format error."""
    scores = mx.array([[0.1, 0.9, 0.0], [0.6, 0.3, 0.1]], dtype=mx.bfloat16)
    tracker = MetricsTracker(num_classes={"h": 3}, topk={"h": (2,)})
    tracker.update(
        {"loss": mx.array(1.5, dtype=mx.bfloat16)}, {"h": scores}, {"h": mx.array([1, 2])}, batch_size=2
    )
    assert tracker.get_metrics() == {"loss": 1.5, "h_acc": 50.0, "h_top2_acc": 50.0}


def test_a_loss_reported_by_some_batches_is_their_mean_not_diluted_by_the_others():
    """aux_loss of 2.0 in one batch of two used to read 1.0 (its sum over the weight of every batch)."""
    tracker = MetricsTracker()
    tracker.update({"loss": 1.0, "aux_loss": 2.0}, batch_size=10)
    tracker.update({"loss": 3.0}, batch_size=30)
    assert tracker.get_metrics() == {"loss": 2.5, "aux_loss": 2.0}


def test_the_chord_guides_metrics_tracker_takes_its_targets_and_the_losss_pair():
    """Seed 002's "Metrics Tracker": targets named as in its Data Format (``bass_note``), the model's heads
    (``bass``, and ``chord``, which the guide's targets do not score), and the criterion's result as it is."""
    import warnings

    from audiotrain.models import ChordRecognitionLoss

    rng = np.random.default_rng(0)
    outputs = {
        "chord_type": mx.array(rng.standard_normal((8, 32)).astype(np.float32)),
        "root": mx.array(rng.standard_normal((8, 12)).astype(np.float32)),
        "bass": mx.array(rng.standard_normal((8, 12)).astype(np.float32)),
        "chord": mx.array(rng.standard_normal((8, 300)).astype(np.float32)),
    }
    targets = {
        k: mx.array(rng.integers(0, n, 8)) for k, n in (("chord_type", 32), ("root", 12), ("bass_note", 12))
    }
    tracker = MetricsTracker()
    with pytest.warns(UserWarning, match=r"outputs has a 'chord' head but targets has no 'chord'") as caught:
        tracker.update(ChordRecognitionLoss()(outputs, targets), outputs, targets, 8)
    assert len(caught) == 1 and caught[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tracker.update(ChordRecognitionLoss()(outputs, targets), outputs, targets, 8)  # said once
    metrics = tracker.get_metrics()
    assert {"total_loss", "bass_note_loss", "chord_type_acc", "root_acc", "bass_note_acc"} <= set(metrics)
    bass_hits = np.array(mx.argmax(outputs["bass"], -1)) == np.array(targets["bass_note"])
    assert metrics["bass_note_acc"] == pytest.approx(100 * bass_hits.mean())
    with pytest.raises(TypeError, match=r"expected a mapping of loss name to scalar, or a loss's \(total"):
        tracker.update([1.0, 2.0])


def test_an_aliased_heads_confusion_and_topk_are_keyed_by_its_target_name_as_its_accuracy_is():
    """The bass head scored against the guide's bass_note targets reads bass_note_acc, so num_classes and
    topk name bass_note too (keyed by the output head, its confusion matrix stayed empty)."""
    scores = np.array([[0.9, 0.1, 0.0], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])  # predicted 0, 1, 2
    tracker = MetricsTracker(num_classes={"bass_note": 3}, topk={"bass_note": (2,)})
    tracker.update({}, {"bass": scores}, {"bass_note": np.array([0, 2, 2])})
    assert tracker.confusion_matrix("bass_note").tolist() == [[1, 0, 0], [0, 0, 0], [0, 1, 1]]
    # row 2's target 2 ties class 0 at 0.1, and the lower index ranks first: out of the top 2
    assert tracker.get_metrics() == {
        "bass_note_acc": pytest.approx(200 / 3),
        "bass_note_top2_acc": pytest.approx(200 / 3),
    }
