"""Confusion-matrix and training-curve PNGs."""

from audiotrain.chords.vocabulary import CHORD_TYPES
from audiotrain.metrics.plots import plot_confusion_matrix, plot_training_curves

import numpy as np
import pytest
from matplotlib import image


def test_confusion_matrix_png(tmp_path, rng):
    matrix = rng.integers(0, 20, (32, 32))
    path = plot_confusion_matrix(matrix, CHORD_TYPES, tmp_path / "plots" / "confusion.png")
    pixels = image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 200
    small = plot_confusion_matrix(
        np.eye(3, dtype=int), ["a", "b", "c"], tmp_path / "small.png", normalize=False
    )
    assert small.exists()
    with pytest.raises(ValueError, match="one name per class"):
        plot_confusion_matrix(np.eye(3), ["a", "b"], tmp_path / "bad.png")


def test_training_curves_png(tmp_path):
    history = {
        "epoch": [1, 2, 3],
        "step": [10, 20, 30],
        "train_loss": [2.0, 1.5, 1.0],
        "val_loss": [2.1, None, 1.2],
        "val_chord_type_acc": [10.0, 30.0, 50.0],
        "learning_rate": [1e-3, 8e-4, 5e-4],
    }
    path = plot_training_curves(history, tmp_path / "curves.png")
    assert image.imread(path).shape[1] > 600  # three panels side by side
    with pytest.raises(ValueError, match="no loss, accuracy or learning-rate"):
        plot_training_curves({"epoch": [1]}, tmp_path / "x.png")
