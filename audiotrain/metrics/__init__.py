"""Metrics: classification (top-k, confusion, per-class), multi-label tagging (ROC-AUC, mAP, F1), the
epoch `MetricsTracker`, chord scores.

Plots (`audiotrain.metrics.plots`) and retrieval scores (`audiotrain.metrics.retrieval`) are imported from
their modules, so that importing this package does not load matplotlib.
"""

from audiotrain.metrics.chord_scores import CHORD_METRICS, ChordScores, score_song, score_songs
from audiotrain.metrics.classification import (
    PerClassMetrics,
    compute_confusion_matrix,
    compute_per_class_metrics,
    compute_topk_accuracy,
    per_class_metrics_from_confusion,
)
from audiotrain.metrics.multilabel import MultiLabelMetrics, best_f1_thresholds, compute_multilabel_metrics
from audiotrain.metrics.tracker import MetricsTracker

__all__ = [
    "CHORD_METRICS",
    "ChordScores",
    "MetricsTracker",
    "MultiLabelMetrics",
    "PerClassMetrics",
    "best_f1_thresholds",
    "compute_confusion_matrix",
    "compute_multilabel_metrics",
    "compute_per_class_metrics",
    "compute_topk_accuracy",
    "per_class_metrics_from_confusion",
    "score_song",
    "score_songs",
]
