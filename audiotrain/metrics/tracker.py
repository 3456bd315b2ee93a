"""`MetricsTracker`: running means of losses and per-head accuracies over an epoch.

::

    tracker = MetricsTracker()
    for batch in loader:
        outputs = model(batch["features"])                    # {"chord_type": [B, T, 32], "root": ..., ...}
        tracker.update({"loss": loss, "root_loss": root_loss}, outputs, batch, batch_size=B)
    tracker.get_metrics()   # {"loss": ..., "root_loss": ..., "chord_type_acc": 83.1, "root_acc": ...}
    print(tracker.summary())

Losses are averaged weighted by ``batch_size`` (a mean of per-batch means would overweight a short last
batch), each over the batches that reported it (as Lightning's epoch means are). Accuracies count every
non-ignored target (``-1`` marks ignored frames: padding, root and bass of N and X), so they are exact over
the epoch however the frames fall into batches. Accuracies are percents.
Arrays may be numpy or MLX; the tracker runs outside compiled code (it syncs to read values).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

from audiotrain.metrics.classification import (
    DEFAULT_IGNORE_INDEX,
    PerClassMetrics,
    as_numpy,
    check_class_range,
    class_indices,
    is_whole_number,
    per_class_metrics_from_confusion,
    target_ranks,
    top_classes,
)

import numpy as np

#: Other names a head's targets go by: the chord guide's targets call the model's ``bass`` head
#: ``bass_note`` (its accuracy is then ``bass_note_acc``, as in the seed-002 Trainer's history).
TARGET_ALIASES: dict[str, tuple[str, ...]] = {"bass": ("bass_note",)}


def _check_topk(head: str, ks: tuple, width: int) -> None:
    """Each k of a head's top-k a whole number in 1..width, as compute_topk_accuracy takes: a mistyped k
    would read a perfect score, a fractional one the next whole k's."""
    for k in ks:
        if not (is_whole_number(k) and 1 <= k <= width):
            raise ValueError(
                f"MetricsTracker(topk={{{head!r}: {ks}}}): k must be a whole number in 1..{width} (the head's "
                f"{width} classes), got {k}"
            )


class MetricsTracker:
    """Accumulates losses and per-head accuracy (and confusion matrices) over batches.

    Parameters
    ----------
    num_classes : mapping of head name to class count, optional
        Heads listed here also accumulate a confusion matrix (see `confusion_matrix`); a target or a
        prediction outside ``0 .. n - 1`` is then an error.
    ignore_index : int
        Target value that is not counted.
    topk : mapping of head name to tuple of k, optional
        Also track top-k accuracy, reported as ``<head>_top<k>_acc``; e.g. ``{"chord_type": (3,)}``. Ties
        are broken by class index, as `compute_topk_accuracy` does (`target_ranks`). Each k must be a
        whole number in 1..classes of its head, as in `compute_topk_accuracy` (a mistyped 13 of 12 would read
        100%, a fractional 1.5 the top-2 accuracy): refused here for a head ``num_classes`` lists, else at
        the first `update` that brings the head's scores.
    """

    def __init__(
        self,
        num_classes: Mapping[str, int] | None = None,
        ignore_index: int = DEFAULT_IGNORE_INDEX,
        topk: Mapping[str, tuple[int, ...]] | None = None,
    ):
        self.num_classes = dict(num_classes or {})
        self.ignore_index = ignore_index
        self.topk = {head: tuple(ks) for head, ks in (topk or {}).items()}
        for head, ks in self.topk.items():
            # Where num_classes gives the head's width, a k outside it is refused here rather than at the
            # first update (mid-validation, after that batch's losses were counted); others wait for it.
            if head in self.num_classes:
                _check_topk(head, ks, self.num_classes[head])
        self._said_untargeted: set[str] = set()  # output heads without targets, warned about once
        self.reset()

    def reset(self) -> None:
        """Forget everything (call at the start of an epoch)."""
        self._loss_sums: dict[str, float] = {}
        # Per name: a loss reported by some batches only is a mean over those, not diluted by the others.
        self._loss_weights: dict[str, float] = {}
        self._correct: dict[str, int] = {}
        self._counted: dict[str, int] = {}
        self._confusion: dict[str, np.ndarray] = {}

    def update(
        self,
        loss_dict: Mapping[str, object],
        outputs: Mapping[str, object] | None = None,
        targets: Mapping[str, object] | None = None,
        batch_size: int | None = None,
    ) -> None:
        """Add one batch.

        Parameters
        ----------
        loss_dict : mapping of name to scalar, or a loss's ``(total, parts)``
            Batch-mean losses (floats, numpy or MLX scalars). A ``(total, {name: part})`` pair, as
            `ChordRecognitionLoss` returns, is taken as ``{"total_loss": total, **parts}``.
        outputs : mapping of head name to scores [..., classes], optional
        targets : mapping of head name to int targets [...], optional
            Class indices (whole-valued floats and bools are taken, other floats are refused).
            Each output head gets an accuracy, ``<target name>_acc``, against the target of its name or of
            an alias (`TARGET_ALIASES`: the guide's ``bass_note`` for the ``bass`` head). An output head
            with no target is warned about (once) and has no accuracy; target keys without an output head
            (``features``, ``mask``) are skipped.
        batch_size : int, optional
            Weight of this batch's losses; default 1.
        """
        weight = float(1 if batch_size is None else batch_size)
        if weight <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        for name, value in _losses(loss_dict).items():
            self._loss_sums[name] = self._loss_sums.get(name, 0.0) + weight * float(as_numpy(value))
            self._loss_weights[name] = self._loss_weights.get(name, 0.0) + weight
        if outputs is None or targets is None:
            return
        for output_head, scores in outputs.items():
            head = _target_key(output_head, targets)
            if head is None:
                if output_head not in self._said_untargeted:
                    self._said_untargeted.add(output_head)
                    names = " or ".join(repr(k) for k in (output_head, *TARGET_ALIASES.get(output_head, ())))
                    warnings.warn(
                        f"MetricsTracker.update: outputs has a {output_head!r} head but targets has no "
                        f"{names} (it has {sorted(targets)}), so no {output_head}_acc is computed",
                        stacklevel=2,
                    )
                continue
            scores = as_numpy(scores)
            # Read as classification.py reads them: a cast to int counted a float 2.7 as class 2 (a plausible
            # accuracy from soft or mixed-up labels); whole-valued floats and bools are taken.
            target = class_indices(as_numpy(targets[head]), f"MetricsTracker.update: head {head!r}: targets")
            if scores.ndim != target.ndim + 1 or scores.shape[:-1] != target.shape:
                raise ValueError(f"head {head!r}: scores {scores.shape} do not match targets {target.shape}")
            width = scores.shape[-1]
            _check_topk(head, self.topk.get(head, ()), width)
            flat_scores = scores.reshape(-1, width)
            flat_target = target.reshape(-1)
            keep = flat_target != self.ignore_index
            flat_scores, flat_target = flat_scores[keep], flat_target[keep]
            check_class_range(
                flat_target, width, f"head {head!r}: targets", f" (its scores have {width} classes)"
            )
            predicted = top_classes(flat_scores)
            self._correct[head] = self._correct.get(head, 0) + int((predicted == flat_target).sum())
            self._counted[head] = self._counted.get(head, 0) + int(len(flat_target))
            # Ranked as compute_topk_accuracy ranks (ties by class index): counting only strictly higher
            # scores made every tie a hit, so a saturated softmax (0.0 for all but one class) read 100% top-2.
            ranks = target_ranks(flat_scores, flat_target) if self.topk.get(head) else None
            for k in self.topk.get(head, ()):
                hits = int((ranks < k).sum())
                key = f"{head}_top{k}"
                self._correct[key] = self._correct.get(key, 0) + hits
                self._counted[key] = self._counted.get(key, 0) + int(len(flat_target))
            if head in self.num_classes:
                n = self.num_classes[head]
                # Out of range, the flattened index below would land in another row's cells.
                given = f", the classes of MetricsTracker(num_classes={{{head!r}: {n}}})"
                check_class_range(flat_target, n, f"head {head!r}: targets", given)
                check_class_range(
                    predicted, n, f"head {head!r}: predictions", f"{given} (its scores have {width} classes)"
                )
                counts = np.bincount(flat_target * n + predicted, minlength=n * n).reshape(n, n)
                self._confusion[head] = self._confusion.get(head, 0) + counts

    def get_metrics(self) -> dict[str, float]:
        """Weighted mean of each loss over the batches that reported it, and ``<head>_acc`` in percent for
        each head seen (NaN for a head whose every target was ignored)."""
        metrics = {name: total / self._loss_weights[name] for name, total in self._loss_sums.items()}
        for head, counted in self._counted.items():
            # NaN where every target was ignored (a root head on all-N songs): 0 would read as always wrong.
            metrics[f"{head}_acc"] = 100.0 * self._correct[head] / counted if counted else float("nan")
        return metrics

    def confusion_matrix(self, head: str) -> np.ndarray:
        """Counts ``[true, predicted]`` of a head listed in ``num_classes``."""
        if head not in self.num_classes:
            raise KeyError(
                f"no confusion matrix for {head!r}: pass num_classes={{{head!r}: n}} to MetricsTracker"
            )
        n = self.num_classes[head]
        return self._confusion.get(head, np.zeros((n, n), np.int64))

    def per_class_metrics(self, head: str) -> PerClassMetrics:
        """Precision, recall, F1 and support per class of a head listed in ``num_classes``."""
        return per_class_metrics_from_confusion(self.confusion_matrix(head))

    def summary(self) -> str:
        """One line for a log: losses with 4 decimals, accuracies as percents."""
        parts = []
        for name, value in self.get_metrics().items():
            parts.append(f"{name}={value:.2f}%" if name.endswith("_acc") else f"{name}={value:.4f}")
        return " ".join(parts) if parts else "(no batches)"


def _losses(loss_dict: object) -> Mapping[str, object]:
    """`update`'s losses as a mapping: a loss's ``(total, parts)`` pair is ``{"total_loss": total, **parts}``."""
    if isinstance(loss_dict, Mapping):
        return loss_dict
    if isinstance(loss_dict, tuple) and len(loss_dict) == 2 and isinstance(loss_dict[1], Mapping):
        total, parts = loss_dict
        return {"total_loss": total, **parts}
    raise TypeError(
        "MetricsTracker.update(loss_dict, ...): expected a mapping of loss name to scalar, or a loss's "
        f"(total, {{name: part}}) pair such as ChordRecognitionLoss returns; got {type(loss_dict).__name__}"
    )


def _target_key(head: str, targets: Mapping[str, object]) -> str | None:
    """The key of ``head``'s targets: its own name, else an alias of it (`TARGET_ALIASES`); None if neither."""
    for key in (head, *TARGET_ALIASES.get(head, ())):
        if key in targets:
            return key
    return None
