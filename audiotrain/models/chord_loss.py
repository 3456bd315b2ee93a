"""`ChordRecognitionLoss`: weighted sum of per-frame cross-entropies of the chord-type, root and bass heads.

Targets follow `audiotrain.datasets` frame targets: integer class indices per frame, with root and bass
set to -1 where they are undefined (N, and X without a root) and a frame mask that is 0 on padding. Each
head's loss is masked by its own target, so an X frame with an annotated root trains the root and bass
heads.
Everything here is pure MLX so it runs inside the Trainer's compiled step.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence

from audiotrain.distributed import collectives
from audiotrain.models import fast_math
from audiotrain.models.chord_model import joint_chord_index
from audiotrain.models.fast_math import logsumexp

import mlx.core as mx

#: Output heads in the order of the total loss; the logits dict uses the first name, targets use the
#: second (the dataset's key), and reported metrics the third (the seed's names: `bass_note_loss`, ...).
HEADS: tuple[tuple[str, str, str], ...] = (
    ("chord_type", "chord_type", "chord_type"),
    ("root", "root", "root"),
    ("bass", "bass", "bass_note"),
)
#: The chord guide's name for a target (its batches' ``bass_note``), taken where the dataset's key is absent.
_TARGET_ALIASES = {"bass": "bass_note"}


def smoothed_cross_entropy(
    logits: mx.array,
    targets: mx.array,
    label_smoothing: float = 0.0,
) -> mx.array:
    """Per-position cross-entropy with label smoothing (Szegedy et al. 2016).

    Args:
        logits: [..., C] unnormalised scores.
        targets: [...] integer class indices; values outside [0, C) give a finite but meaningless value,
            so mask them afterwards.
        label_smoothing: ε in [0, 1): the target distribution is (1 - ε) one-hot + ε uniform.

    Returns:
        [...] float32 losses in nats.
    """
    # Checked here too, not only in ChordRecognitionLoss: 1.5, -0.1 or NaN gave a finite-looking or NaN
    # loss with no error (as mlx.nn.losses.cross_entropy, this takes [0, 1)).
    if not 0.0 <= _number(label_smoothing) < 1.0:  # (_number: "a" or None named here too, not by float())
        raise ValueError(
            f"smoothed_cross_entropy: label_smoothing must be in [0, 1), got {label_smoothing!r}"
        )
    safe = mx.clip(targets, 0, logits.shape[-1] - 1).astype(mx.int32)
    return _smoothed_cross_entropy(float(label_smoothing))(logits.astype(mx.float32), safe)


@functools.cache
def _smoothed_cross_entropy(label_smoothing: float):
    """The loss at one ε as a custom function whose gradient, ``softmax - (1 - ε) one_hot - ε / C``, is one
    elementwise expression that `mx.compile` fuses into a single pass. Differentiating the composed ops
    instead writes the softmax, the scatter of `take_along_axis`'s gradient and the mean's broadcast as
    separate passes over [frames, C]: for the 362-way joint chord head that was 2.5 ms more per training
    step on the 2-core CPU (`benchmarks/chord_layers.py`). The softmax is `fast_math.softmax`'s."""
    eps = label_smoothing

    @mx.custom_function
    def loss(logits: mx.array, targets: mx.array) -> mx.array:
        # (1 - ε)(logsumexp - target logit) + ε (logsumexp - mean logit)
        target_logit = mx.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
        result = logsumexp(logits) - (1.0 - eps) * target_logit
        return result - eps * mx.mean(logits, axis=-1) if eps else result

    @loss.vjp
    def loss_vjp(primals, cotangent, output):
        logits, targets = primals
        classes = logits.shape[-1]
        probs = fast_math.softmax(logits)
        one_hot = mx.arange(classes) == targets[..., None]
        grad = probs - (1.0 - eps) * one_hot - eps / classes
        # Integer targets get no gradient (zeros_like would tie the cotangent to the traced input).
        return cotangent[..., None] * grad, mx.zeros(targets.shape, dtype=targets.dtype)

    return loss


@functools.cache
def _class_weighted_smoothed_cross_entropy(label_smoothing: float):
    """The per-position numerator of PyTorch's `CrossEntropyLoss(weight=w, label_smoothing=ε)`, whose mean is
    ``Σ numerator / Σ w[target]``: ``(1 - ε) w[y] (lse - z_y) + ε / C Σ_c w[c] (lse - z_c)``. The smoothing
    term weights each class by its own weight, not by the target's. A custom function with a one-expression
    gradient, ``softmax (1 - ε) w[y] + softmax ε W / C - (1 - ε) w[y] one_hot - ε w / C`` (``W = Σ w``), as
    `_smoothed_cross_entropy`'s, so that compiled it stays one pass over [frames, C]."""
    eps = label_smoothing

    @mx.custom_function
    def numerator(logits: mx.array, targets: mx.array, class_weights: mx.array) -> mx.array:
        classes = logits.shape[-1]
        lse = logsumexp(logits)
        target_logit = mx.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
        smoothing = mx.sum(class_weights) * lse - mx.sum(logits * class_weights, axis=-1)
        return (1.0 - eps) * class_weights[targets] * (lse - target_logit) + (eps / classes) * smoothing

    @numerator.vjp
    def numerator_vjp(primals, cotangent, output):
        logits, targets, class_weights = primals
        classes = logits.shape[-1]
        probs = fast_math.softmax(logits)
        target_weight = (1.0 - eps) * class_weights[targets][..., None]
        one_hot = mx.arange(classes) == targets[..., None]
        uniform = eps / classes
        grad = probs * (target_weight + uniform * mx.sum(class_weights)) - target_weight * one_hot
        grad = grad - uniform * class_weights
        # Neither the integer targets nor the (constant) class weights get a gradient.
        no_grad = [mx.zeros(x.shape, dtype=x.dtype) for x in (targets, class_weights)]
        return cotangent[..., None] * grad, *no_grad

    return numerator


def _number(value: object) -> float:
    """`value` as a float (a numeric string too, as float() always took it), NaN where it is none ("a",
    None): the range checks then name the argument and what it got, where float() raised "could not
    convert string to float: 'a'" naming neither."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def masked_mean(values: mx.array, weights: mx.array, across_ranks: bool = False) -> mx.array:
    """Σ values·weights / Σ weights, or 0 when every weight is 0 (e.g. a batch of only N frames).

    `across_ranks` (for losses under data parallel): the denominator is the mean over ranks of their
    Σ weights, so that once the Trainer averages the ranks' gradients the loss is the mean over every
    rank's frames, as one process over the combined batch computes it (a mean of the ranks' own means
    would weigh a frame of a rank with few valid frames more).
    """
    return _ratio(mx.sum(values * weights), mx.sum(weights), across_ranks)


def _ratio(numerator: mx.array, total: mx.array, across_ranks: bool) -> mx.array:
    """`numerator / total`, 0 when `total` is 0; `across_ranks`: the mean over ranks of `total` (`masked_mean`)."""
    if across_ranks:
        total = collectives.mean_across_ranks(total)
    # The where, not the floor alone: a class-weighted smoothed numerator is not 0 over frames whose classes
    # all weigh 0 (its ε/C term weighs every class), and over a floor of 1e-12 it was a loss of 1e12.
    return mx.where(total > 0, numerator / mx.maximum(total, 1e-12), 0.0)


class ChordRecognitionLoss:
    """Weighted sum of the chord-type, root and bass cross-entropies over valid frames, and of the joint chord
    head's where the model has one (`ChordModelConfig.chord_head`).

    Targets are class indices: 0..C-1, or -1 for a frame a head does not count. Inside a compiled graph
    nothing can raise, so a larger index is read as class C-1: the guide's `Trainer` checks its batches'
    targets on the host (`recipes.chords.trainer`), and a loop of your own should too.

    Args:
        chord_type_weight, root_weight, bass_weight: weights of the three heads in the total.
        chord_weight: weight of the joint chord head's loss, where the outputs hold a "chord" head.
        label_smoothing: ε of the smoothed cross-entropy, in [0, 1).
        class_weights: optional per-class weights of the chord-type head ([num_chord_types] sequence or
            array, e.g. inverse class frequencies), as PyTorch's `CrossEntropyLoss(weight=w,
            label_smoothing=ε)`: a frame's one-hot term counts with its target's weight, its smoothing
            term ε/C Σ_c w[c] (-log p_c) with each class's own weight, and the head's loss is their sum
            over valid frames divided by the sum of the target weights; 0 where that sum is 0 (frames of
            weight-0 classes only), where torch's is NaN.

    Call:
        loss_fn(outputs, targets, mask=None) -> (total, {"chord_type_loss", "root_loss", "bass_note_loss"},
        and "chord_loss" with a "chord" head)

        outputs: dict with "chord_type" [B, T, C], "root" [B, T, 12], "bass" [B, T, 12] logits, and a model
            built with `chord_head` adds "chord" [B, T, 2 + (C - 2) * 12] (the joint (type, root) classes).
        targets: dict with "chord_type", "root", "bass" int [B, T] (root/bass -1 where undefined); the
            guide's "bass_note" is taken for "bass".
        mask: optional [B, T] (1 = real frame, 0 = padding); padding never contributes.
    """

    def __init__(
        self,
        chord_type_weight: float = 1.0,
        root_weight: float = 1.0,
        bass_weight: float = 0.5,
        label_smoothing: float = 0.1,
        class_weights: Sequence[float] | mx.array | None = None,
        chord_weight: float = 1.0,
    ):
        for name, value in (
            ("chord_type_weight", chord_type_weight),
            ("root_weight", root_weight),
            ("bass_weight", bass_weight),
            ("chord_weight", chord_weight),
        ):
            if not _number(value) >= 0.0:
                raise ValueError(f"ChordRecognitionLoss.{name} must be >= 0, got {value!r}")
            if _number(value) == math.inf:  # (passed the check above: every loss was inf, every step skipped)
                raise ValueError(f"ChordRecognitionLoss.{name} must be finite, got {value!r}")
        if not 0.0 <= _number(label_smoothing) < 1.0:
            raise ValueError(
                f"ChordRecognitionLoss.label_smoothing must be in [0, 1), got {label_smoothing!r}"
            )
        self.weights = {
            "chord_type": float(chord_type_weight),
            "root": float(root_weight),
            "bass": float(bass_weight),
            "chord": float(chord_weight),
        }
        self.label_smoothing = float(label_smoothing)
        self.class_weights = None
        if class_weights is not None:
            cw = mx.array(class_weights, dtype=mx.float32)
            if cw.ndim != 1:
                raise ValueError(
                    f"class_weights must be 1-D (one weight per chord type), got shape {cw.shape}"
                )
            if bool(mx.any(cw < 0).item()) or not bool(mx.all(mx.isfinite(cw)).item()):
                raise ValueError("class_weights must be finite and >= 0")
            self.class_weights = cw

    def __call__(
        self,
        outputs: dict[str, mx.array],
        targets: dict[str, mx.array],
        mask: mx.array | None = None,
    ) -> tuple[mx.array, dict[str, mx.array]]:
        for out_key, target_key, _ in HEADS:
            if out_key not in outputs:
                raise KeyError(
                    f"ChordRecognitionLoss: outputs lack {out_key!r} logits (have {sorted(outputs)})"
                )
            if target_key not in targets and _TARGET_ALIASES.get(target_key) not in targets:
                alias = _TARGET_ALIASES.get(target_key)
                either = f"{target_key!r} (or {alias!r})" if alias else repr(target_key)
                raise KeyError(f"ChordRecognitionLoss: targets lack {either} (have {sorted(targets)})")
        if self.class_weights is not None and self.class_weights.shape[0] != outputs["chord_type"].shape[-1]:
            raise ValueError(
                f"class_weights has {self.class_weights.shape[0]} entries but the chord_type head has "
                f"{outputs['chord_type'].shape[-1]} classes"
            )
        frame_mask = (
            mx.ones(targets["chord_type"].shape, dtype=mx.float32)
            if mask is None
            else mask.astype(mx.float32)
        )
        total = mx.array(0.0)
        parts: dict[str, mx.array] = {}
        for out_key, target_key, name in HEADS:
            target = targets[target_key] if target_key in targets else targets[_TARGET_ALIASES[target_key]]
            losses = None
            if out_key != "chord_type" or self.class_weights is None or not self.label_smoothing:
                losses = smoothed_cross_entropy(outputs[out_key], target, self.label_smoothing)
            # Root and bass are undefined (-1) on N frames and X frames without a root; chord_type is
            # defined on every annotated frame.
            weights = frame_mask * (target >= 0).astype(mx.float32)
            if out_key == "chord_type" and self.class_weights is not None:
                head_loss = self._class_weighted_loss(outputs[out_key], target, weights, losses)
            else:
                head_loss = masked_mean(losses, weights, across_ranks=True)
            parts[f"{name}_loss"] = head_loss
            total = total + self.weights[out_key] * head_loss
        if "chord" in outputs:  # the joint (type, root) head of a model built with chord_head
            target = joint_chord_index(targets["chord_type"], targets["root"])
            losses = smoothed_cross_entropy(outputs["chord"], target, self.label_smoothing)
            weights = frame_mask * (targets["chord_type"] >= 0).astype(mx.float32)
            parts["chord_loss"] = masked_mean(losses, weights, across_ranks=True)
            total = total + self.weights["chord"] * parts["chord_loss"]
        return total, parts

    def class_weighted_frames(self, targets: dict[str, mx.array], mask: mx.array | None = None) -> mx.array:
        """What the chord-type part of `__call__` is a mean over where `class_weights` are given: the sum of
        the counted frames' target weights (without them, the frames `head_accuracies` counts)."""
        # Summed with where, not as __call__'s product of float weights: a compiled step returning an
        # expression of the batch alone that the loss computes too fails in MLX's compiler ("_Map_base::at",
        # see train/trace_guard.py).
        target = targets["chord_type"]
        counted = (target >= 0) if mask is None else (mask > 0) & (target >= 0)
        weights = self.class_weights[mx.clip(target, 0, self.class_weights.shape[0] - 1)]
        return mx.sum(mx.where(counted, weights, 0.0))

    def total_of(self, parts: Mapping[str, float]) -> float:
        """The total loss of `parts` (``{"root_loss": ..., ...}``, as `__call__` returns them or their means
        over an epoch): the weighted sum `__call__` computes. A part that is NaN, a mean over no frame (the
        root of songs all N), adds nothing, as `__call__`'s `masked_mean` gives 0 for it. But the chord-type
        head counts every real frame: NaN there is a model whose outputs are not finite (a diverged run), or
        no frame at all, and the total is NaN, as `__call__`'s is then; leaving every NaN head out had made it
        0.0, the best loss a sweep or a ModelCheckpoint could see."""
        if math.isnan(parts["chord_type_loss"]):
            return math.nan
        terms = [(self.weights[out_key], parts[f"{name}_loss"]) for out_key, _, name in HEADS]
        if "chord_loss" in parts:
            terms.append((self.weights["chord"], parts["chord_loss"]))
        return float(sum(weight * value for weight, value in terms if not math.isnan(value)))

    def _class_weighted_loss(
        self, logits: mx.array, target: mx.array, valid: mx.array, losses: mx.array | None
    ) -> mx.array:
        """The chord-type head's loss with class weights, as PyTorch's `CrossEntropyLoss(weight=...,
        label_smoothing=...)`: divided by the sum of the valid frames' target weights."""
        safe = mx.clip(target, 0, logits.shape[-1] - 1).astype(mx.int32)
        target_weights = valid * self.class_weights[safe]
        if losses is not None:  # no smoothing: the target-weighted mean of the plain cross-entropy
            return masked_mean(losses, target_weights, across_ranks=True)
        numerators = _class_weighted_smoothed_cross_entropy(self.label_smoothing)(
            logits.astype(mx.float32), safe, self.class_weights
        )
        return _ratio(mx.sum(numerators * valid), mx.sum(target_weights), across_ranks=True)


def head_accuracies(
    outputs: dict[str, mx.array],
    targets: dict[str, mx.array],
    mask: mx.array | None = None,
) -> dict[str, tuple[mx.array, mx.array]]:
    """Frame accuracy of each head over the frames it counts (real frames; root/bass skip frames whose
    target is -1), with that count: the `(value, weight)` metric the Trainer averages weighted by its own
    count, so the epoch's figure is hits / counted frames over every batch (and every rank under data
    parallel), however the N frames fall into batches. An all-N batch counts no root frame: weight 0.

    Returns:
        {"chord_type_acc", "root_acc", "bass_note_acc"}: each (scalar fraction in [0, 1], frames counted).
    """
    real = mx.ones(targets["chord_type"].shape, dtype=mx.bool_) if mask is None else mask > 0
    accuracies = {}
    for out_key, target_key, name in HEADS:
        target = targets[target_key]
        # Counted as booleans, not as the loss's float weights: a compiled training step whose output is
        # an expression of the batch alone that the loss computes too fails in MLX's compiler
        # ("_Map_base::at", see train/trace_guard.py).
        counted = real & (target >= 0)
        hits = counted & (mx.argmax(outputs[out_key], axis=-1) == target)
        n_counted = mx.sum(counted).astype(mx.float32)
        accuracies[f"{name}_acc"] = (mx.sum(hits).astype(mx.float32) / mx.maximum(n_counted, 1.0), n_counted)
    return accuracies
