"""Metrics: classification (top-k, confusion, per-class), the epoch `MetricsTracker`, chord scores.

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
from audiotrain.metrics.tracker import MetricsTracker

__all__ = [
    "CHORD_METRICS",
    "ChordScores",
    "MetricsTracker",
    "PerClassMetrics",
    "compute_confusion_matrix",
    "compute_per_class_metrics",
    "compute_topk_accuracy",
    "per_class_metrics_from_confusion",
    "score_song",
    "score_songs",
]
