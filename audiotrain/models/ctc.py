"""`ctc_loss`: connectionist temporal classification (Graves et al. 2006), as `torch.nn.functional.ctc_loss`.

MLX has no CTC loss. This one is the log-space forward algorithm over a padded batch, in pure MLX, so it runs
inside the Trainer's compiled step and `mx.grad` differentiates it. Its values and its gradients with respect
to the logits match PyTorch's (tests/test_ctc.py compares them), with one difference of layout: `log_probs`
is batch-first, `(batch, frames, classes)`, as MLX's layers give it, where torch takes `(frames, batch,
classes)`.
"""

from __future__ import annotations

import mlx.core as mx

_REDUCTIONS = ("mean", "sum", "none")
# A log-probability that stands for log(0). Not -inf: the gradient of a logsumexp over -inf alone is NaN,
# which a row with no alignment would spread to the whole batch's gradient even when zero_infinity drops it.
_LOG_ZERO = -1e30
# A sum of _LOG_ZERO and ordinary log-probabilities stays near -1e30, far below any real loss's negative.
_NO_ALIGNMENT = 1e29


def ctc_loss(
    log_probs: mx.array,
    targets: mx.array,
    input_lengths: mx.array,
    target_lengths: mx.array,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> mx.array:
    """The CTC loss of each sequence of a padded batch, reduced as torch's `F.ctc_loss` reduces it.

    Parameters
    ----------
    log_probs : (batch, frames, classes) float array, the log-softmax of the model's logits (batch-first,
        unlike torch's `(frames, batch, classes)`). Computed in float32 whatever its dtype.
    targets : (batch, max_target_length) integer array of class indices, padded past each row's length
        (the padding is never read). A target must not be `blank` (its row's loss is NaN).
    input_lengths, target_lengths : (batch,) integer arrays, each row's frames and target labels.
    blank : the blank class's index (torch's default 0).
    reduction : "mean" (each row's loss divided by its target length, then the batch mean: torch's
        default), "sum" or "none" (the per-row losses, shape (batch,)).
    zero_infinity : a row no alignment fits (a target longer than its frames allow, repeats needing a
        blank between them) has an infinite loss; with True it is 0 and adds nothing to the gradient, as
        torch's `zero_infinity=True`. With False the loss is inf, and the Trainer's non-finite guard skips
        that update (counted as `skipped_steps`).

    A row whose lengths do not fit the arrays (an input length above `frames`, a target length above
    `max_target_length`, either negative), or whose target holds a label outside the classes or equal to
    `blank`, gets a NaN loss rather than a value read from beyond the row or of another target: inside a
    compiled step its lengths and labels cannot be checked on the host. `Trainer(debug_lazy_eval=True)`
    names the batch.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"ctc_loss: reduction must be one of {', '.join(map(repr, _REDUCTIONS))}, got {reduction!r}"
        )
    for name, array, ndim in (
        ("log_probs", log_probs, 3),
        ("targets", targets, 2),
        ("input_lengths", input_lengths, 1),
        ("target_lengths", target_lengths, 1),
    ):
        if not isinstance(array, mx.array) or array.ndim != ndim:
            shape = tuple(array.shape) if isinstance(array, mx.array) else type(array).__name__
            raise ValueError(f"ctc_loss: {name} must be an mx.array of {ndim} dimensions, got {shape}")
    batch, frames, classes = log_probs.shape
    if not mx.issubdtype(log_probs.dtype, mx.floating):
        raise ValueError(f"ctc_loss: log_probs must be floating, got {log_probs.dtype}")
    for name, array in (
        ("targets", targets),
        ("input_lengths", input_lengths),
        ("target_lengths", target_lengths),
    ):
        if not mx.issubdtype(array.dtype, mx.integer):
            raise ValueError(f"ctc_loss: {name} must hold integers, got {array.dtype}")
        if array.shape[0] != batch:
            raise ValueError(
                f"ctc_loss: {name} has {array.shape[0]} rows where log_probs (batch, frames, classes) has "
                f"{batch} (log_probs is batch-first, unlike torch's (frames, batch, classes))"
            )
    if frames == 0:
        raise ValueError("ctc_loss: log_probs has 0 frames")
    if not 0 <= blank < classes:
        raise ValueError(f"ctc_loss: blank={blank} is not one of log_probs' {classes} classes")

    log_probs = log_probs.astype(mx.float32)
    max_target = targets.shape[1]
    positions = 2 * max_target + 1  # blank, label 1, blank, label 2, ..., blank
    input_lengths = input_lengths.astype(mx.int32)
    target_lengths = target_lengths.astype(mx.int32)
    fits = (input_lengths >= 0) & (input_lengths <= frames) & (target_lengths >= 0)
    fits = fits & (target_lengths <= max_target)
    if max_target:
        # A label outside the classes (a vocabulary that forgot the blank's output) or equal to the blank
        # (letters from 0 beside blank=0) would be read as another class: a finite loss of another target.
        read = mx.arange(max_target)[None] < target_lengths[:, None]
        wrong = (targets < 0) | (targets >= classes) | (targets == blank)
        fits = fits & ~mx.any(read & wrong, axis=1)
    labels = mx.full((batch, positions), blank, dtype=mx.int32)
    if max_target:
        # A padded target may hold anything (-1, a class past the last): gather only in-range indices.
        labels[:, 1::2] = mx.clip(targets.astype(mx.int32), 0, classes - 1)
    # A transition may skip the blank between two labels only where they differ.
    two_back = mx.concatenate([mx.full((batch, 2), blank, dtype=mx.int32), labels[:, :-2]], axis=1)
    can_skip = (labels != blank) & (labels != two_back) & (mx.arange(positions) >= 2)
    log_zero = mx.array(_LOG_ZERO, dtype=mx.float32)

    def emit(t: int) -> mx.array:
        return mx.take_along_axis(log_probs[:, t], labels, axis=1)

    # A row of 0 frames has no first frame to start in: nothing is emitted (torch's 0 loss for an empty
    # target, inf otherwise), not frame 0's blank, which belongs to the padding.
    first = mx.arange(positions)[None] < mx.where(target_lengths > 0, 2, 1)[:, None]
    first = first & (input_lengths > 0)[:, None]
    alpha = mx.where(first, emit(0), log_zero)
    # One step per frame, unrolled into the graph (MLX has no scan); frames past a row's length keep alpha.
    # The mask is sliced per frame, not compared with `t`: mx.compile writes a Python number into the fused
    # kernel's source, so `t < input_lengths` made one kernel per frame for the C++ compiler to build.
    active = mx.arange(frames)[None] < input_lengths[:, None]
    for t in range(1, frames):
        one_back = mx.concatenate([mx.full((batch, 1), _LOG_ZERO), alpha[:, :-1]], axis=1)
        skip = mx.where(
            can_skip, mx.concatenate([mx.full((batch, 2), _LOG_ZERO), alpha[:, :-2]], axis=1), log_zero
        )
        step = mx.logsumexp(mx.stack([alpha, one_back, skip], axis=-1), axis=-1) + emit(t)
        alpha = mx.where(active[:, t : t + 1], step, alpha)

    last = mx.clip(2 * target_lengths, 0, positions - 1)
    end_label = mx.take_along_axis(alpha, last[:, None], axis=1)[:, 0]
    end_blank_or_label = mx.take_along_axis(alpha, mx.maximum(last - 1, 0)[:, None], axis=1)[:, 0]
    end_blank_or_label = mx.where(target_lengths > 0, end_blank_or_label, log_zero)
    losses = -mx.logaddexp(end_label, end_blank_or_label)
    losses = mx.where((input_lengths == 0) & (target_lengths == 0), 0.0, losses)
    no_alignment = losses > _NO_ALIGNMENT
    if zero_infinity:
        losses = mx.where(no_alignment, 0.0, losses)
    else:
        losses = mx.where(no_alignment, mx.inf, losses)
    losses = mx.where(fits, losses, mx.nan)
    if reduction == "none":
        return losses
    if reduction == "sum":
        return mx.sum(losses)
    return mx.mean(losses / mx.maximum(target_lengths, 1).astype(mx.float32))
