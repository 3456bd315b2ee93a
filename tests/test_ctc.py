"""`audiotrain.models.ctc_loss`: PyTorch's `F.ctc_loss` in MLX, batch-first, inside a compiled step too."""

from __future__ import annotations

import audiotrain  # noqa: F401  (first: the fast BLAS)
from audiotrain.models import ctc_loss

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

# Four rows: a full one, one with a repeated label (needs a blank between), a short one, and one whose
# target (5 labels) is longer than its 3 frames: no alignment, an infinite loss.
LOGITS = np.random.default_rng(0).normal(size=(4, 20, 6)).astype(np.float32)
TARGETS = np.array(
    [[1, 2, 3, 4, 5, 1, 2], [3, 3, 1, 2, 5, 0, 0], [2, 4, 4, 1, 0, 0, 0], [1, 2, 3, 4, 5, 0, 0]]
)
INPUT_LENGTHS = np.array([20, 15, 9, 3])
TARGET_LENGTHS = np.array([7, 5, 4, 5])


def _mlx_losses(logits, reduction="none", zero_infinity=False):
    return ctc_loss(
        nn.log_softmax(logits, axis=-1),
        mx.array(TARGETS),
        mx.array(INPUT_LENGTHS),
        mx.array(TARGET_LENGTHS),
        reduction=reduction,
        zero_infinity=zero_infinity,
    )


def _torch_losses(torch, logits, reduction="none", zero_infinity=False):
    return torch.nn.functional.ctc_loss(
        logits.log_softmax(-1).transpose(0, 1),
        torch.tensor(TARGETS),
        torch.tensor(INPUT_LENGTHS),
        torch.tensor(TARGET_LENGTHS),
        reduction=reduction,
        zero_infinity=zero_infinity,
    )


@pytest.mark.parity
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("zero_infinity", [False, True])
def test_values_match_torch(reduction, zero_infinity):
    from reference import require

    torch = require("torch")
    expected = _torch_losses(torch, torch.tensor(LOGITS), reduction, zero_infinity).numpy()
    got = np.array(_mlx_losses(mx.array(LOGITS), reduction, zero_infinity))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parity
def test_gradient_matches_torch_with_zero_infinity():
    from reference import require

    torch = require("torch")
    logits = torch.tensor(LOGITS, requires_grad=True)
    _torch_losses(torch, logits, "mean", zero_infinity=True).backward()
    grad = mx.grad(lambda x: _mlx_losses(x, "mean", zero_infinity=True))(mx.array(LOGITS))
    np.testing.assert_allclose(np.array(grad), logits.grad.numpy(), atol=1e-6)
    assert not np.any(np.array(grad)[3]), "the row without an alignment adds no gradient"


def test_compiled_equals_eager_and_the_gradient_is_finite():
    def loss(x):
        return _mlx_losses(x, "mean", zero_infinity=True)

    eager = mx.value_and_grad(loss)(mx.array(LOGITS))
    compiled = mx.compile(mx.value_and_grad(loss))(mx.array(LOGITS))
    np.testing.assert_allclose(np.array(compiled[0]), np.array(eager[0]), rtol=1e-6)
    np.testing.assert_allclose(np.array(compiled[1]), np.array(eager[1]), atol=1e-6)
    assert np.isfinite(np.array(eager[1])).all()


@pytest.mark.parity
@pytest.mark.parametrize("zero_infinity", [False, True])
def test_a_row_of_no_frames_matches_torch(zero_infinity):
    """A padded batch holding an empty clip (0 frames) with an empty transcript: torch's loss is 0 (nothing
    to align), ours was -log of frame 0's blank, a frame of padding (2.91 here); with a transcript both are
    inf (0 with zero_infinity)."""
    from reference import require

    torch = require("torch")
    log_probs = np.log(np.random.default_rng(0).dirichlet(np.ones(5), size=(3, 6))).astype(np.float32)
    targets, input_lengths, target_lengths = [[1, 2, 0], [0, 0, 0], [3, 3, 0]], [6, 0, 0], [2, 0, 2]
    expected = torch.nn.functional.ctc_loss(
        torch.tensor(log_probs).transpose(0, 1),
        torch.tensor(targets),
        torch.tensor(input_lengths),
        torch.tensor(target_lengths),
        reduction="none",
        zero_infinity=zero_infinity,
    ).numpy()
    got = ctc_loss(
        mx.array(log_probs),
        mx.array(targets),
        mx.array(input_lengths),
        mx.array(target_lengths),
        reduction="none",
        zero_infinity=zero_infinity,
    )
    np.testing.assert_allclose(np.array(got), expected, rtol=1e-5)


def test_a_target_too_long_for_its_frames_is_infinite_and_lengths_outside_the_arrays_are_nan():
    losses = np.array(_mlx_losses(mx.array(LOGITS)))
    assert np.isinf(losses[3]) and np.isfinite(losses[:3]).all()
    log_probs = nn.log_softmax(mx.array(LOGITS), axis=-1)
    bad = ctc_loss(
        log_probs, mx.array(TARGETS), mx.array([21, 15, 9, 3]), mx.array([7, 8, 4, -1]), reduction="none"
    )
    assert np.isnan(np.array(bad)[[0, 1, 3]]).all() and np.isfinite(np.array(bad)[2])


def test_torch_layout_and_wrong_arguments_are_named():
    log_probs = nn.log_softmax(mx.array(LOGITS), axis=-1)
    args = (mx.array(TARGETS), mx.array(INPUT_LENGTHS), mx.array(TARGET_LENGTHS))
    with pytest.raises(ValueError, match="targets has 4 rows where log_probs .* has 20 .*batch-first"):
        ctc_loss(log_probs.transpose(1, 0, 2), *args)
    with pytest.raises(ValueError, match="reduction must be one of"):
        ctc_loss(log_probs, *args, reduction="batchmean")
    with pytest.raises(ValueError, match="blank=6 is not one of log_probs' 6 classes"):
        ctc_loss(log_probs, *args, blank=6)
    with pytest.raises(ValueError, match="input_lengths must hold integers"):
        ctc_loss(log_probs, args[0], mx.array(INPUT_LENGTHS, dtype=mx.float32), args[2])
    with pytest.raises(ValueError, match="targets must be an mx.array of 2 dimensions, got ndarray"):
        ctc_loss(log_probs, TARGETS, *args[1:])


def test_a_label_outside_the_classes_or_equal_to_blank_makes_its_row_nan_not_a_finite_wrong_loss():
    # A vocabulary of 5 letters mapped to 1..5 with a layer of 5 outputs (the blank forgotten), or mapped to
    # 0..4 beside blank=0: ctc_loss clipped 6 into class 5 and read 0 as a letter, a finite loss of another
    # target (2.68 where the right classes gave 2.55), and training went on without a word.
    log_probs = nn.log_softmax(mx.array(LOGITS), axis=-1)  # 6 classes, blank 0
    targets = TARGETS.copy()
    targets[0, 6] = 6  # past the last class
    targets[1, 2] = 0  # the blank, inside the row's 5 labels
    targets[2, 5] = 9  # padding past the row's 4 labels: never read
    losses = np.array(
        ctc_loss(
            log_probs, mx.array(targets), mx.array(INPUT_LENGTHS), mx.array(TARGET_LENGTHS), reduction="none"
        )
    )
    assert np.isnan(losses[:2]).all() and np.isfinite(losses[2]) and np.isinf(losses[3]), losses
    compiled = mx.compile(lambda lp, tg: ctc_loss(lp, tg, mx.array(INPUT_LENGTHS), mx.array(TARGET_LENGTHS)))
    assert np.isnan(np.array(compiled(log_probs, mx.array(targets))))
