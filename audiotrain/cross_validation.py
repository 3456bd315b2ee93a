"""K-fold cross-validation shared by the recipes and `create_trainer`: grouped folds and their scores.

`grouped_folds` splits samples into folds so that a group (a song, a clip with several captions, a speaker)
never has samples in two folds: every group is held out by exactly one fold, and the others train on it.
`CVResult` holds each fold's metrics and writes their mean and standard deviation as a table.

>>> folds = grouped_folds(["a", "a", "b", "c", "c", "d"], folds=2, seed=0, val_fraction=0.25)
>>> folds[0].test, folds[0].val, folds[0].train          # sample indices
>>> cv = CVResult(run_dir, [{"acc": 0.8}, {"acc": 0.9}]); cv.mean, cv.std, cv.table()
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audiotrain._files import write_json_atomically, write_text_atomically

import numpy as np

#: What a cross-validation writes in its folder besides the ``fold<k>/`` runs.
CV_FILES = ("folds.json", "cv_scores.json", "cv_scores.md", "oof_predictions.csv")


def fold_folders(folder: Path) -> list[Path]:
    """The ``fold<k>/`` folders in ``folder``, in name order: a fold's run folder is ``fold`` and its number,
    so a folder of the user's beside them (``folder_notes/``, ``folds_old/``) is none."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and re.fullmatch(r"fold\d+", p.name))


def cv_outputs(folder: Path) -> list[str]:
    """The names in ``folder`` that an earlier cross-validation wrote (``fold<k>/`` and `CV_FILES`): what
    an ``overwrite`` removes, leaving anything else there alone."""
    folds = [p.name for p in fold_folders(folder)]
    return [*folds, *(name for name in CV_FILES if (folder / name).exists())]


def fold_name(k: int, folds: int) -> str:
    """Fold `k` (from 0) as the recipes' output names it: by the number of its folder (``fold<k>/``) and of
    its column in cv_scores, then how far through the run it is (``fold 0 (1 of 5)``)."""
    return f"fold {k} ({k + 1} of {folds})"


@dataclass(frozen=True)
class Fold:
    """One fold's sample indices: ``test`` is held out; ``val`` (groups of the rest) selects checkpoints."""

    index: int
    train: list[int]
    val: list[int]
    test: list[int]


def grouped_folds(
    groups: Sequence[Hashable],
    folds: int,
    seed: int = 0,
    val_fraction: float = 0.0,
    unit: str = "groups",
    source: str = "cross-validation",
    flag: str = "folds",
    groups_are_folds: bool = False,
) -> list[Fold]:
    """``folds`` folds over the samples ``0 .. len(groups) - 1``; sample ``i`` belongs to group ``groups[i]``.

    - The test parts partition the samples and no group is split between folds (nor, within a fold, between
      train, val and test).
    - Deterministic from ``seed``: the groups are shuffled with ``np.random.default_rng(seed)``, then given,
      largest first, to the fold holding the fewest samples so far (so fold sizes differ by at most the
      largest group; with groups of equal size the folds take them in turn, ``shuffled[k::folds]``).
    - Within a fold, the first ``round(val_fraction * n)`` of the other groups (in shuffled order; at least
      one when ``val_fraction > 0``, and never all of them) are its validation part, the rest its training part.
    - Indices within each part follow the shuffled group order, then sample order.

    Args:
        groups_are_folds: each group is one fold, the data's own (ESC-50's fold column): fold ``k`` holds out
            the ``k``-th group in sorted order (fold 0 the data's fold 1), and ``folds`` must be their number.
            Only the validation groups are drawn with ``seed``.
        unit: what a group is, for errors ("songs", "clips").
        source: where the samples come from, for errors.
        flag: the option that set ``folds``, for errors.

    Raises:
        ValueError: fewer than 2 folds, fewer groups than folds (naming both), or a ``val_fraction``
            outside [0, 1).
    """
    called = "" if flag.startswith("--") else f"{source}: "  # (a function's argument: the function)
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)):
        raise ValueError(f"{called}{flag} must be an integer >= 2 (the number of folds), got {folds!r}")
    if folds < 2:
        raise ValueError(f"{called}cross-validation needs {flag} >= 2, got {folds!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"{source}: val_fraction must be in [0, 1), got {val_fraction!r}")
    members: dict[Hashable, list[int]] = {}
    for i, group in enumerate(groups):
        try:
            members.setdefault(group, []).append(i)
        except TypeError:
            raise TypeError(
                f"{source}: the group of sample {i} is a {type(group).__name__} ({group!r}); a group is a "
                "label that can be a dict key: a str, an int or a tuple"
            ) from None
    order = list(members)  # first appearance: the same groups in the same order give the same folds
    if groups_are_folds and len(order) != folds:
        raise ValueError(
            f"{source}: groups_are_folds makes one fold of each group, and there are {len(order)} "
            f"{unit}, but {flag} is {folds}; pass {flag}={len(order)} (or leave it out)"
        )
    if len(order) < folds:
        # Each fold holds out at least one group, and the other folds must have one to train on.
        advice = (
            f"use {flag} {len(order)} or fewer, or more data"
            if len(order) >= 2
            else f"it needs 2 {unit} or more"
        )
        raise ValueError(
            f"{source}: {len(order)} {unit.removesuffix('s') if len(order) == 1 else unit} cannot make "
            f"{folds} folds (each fold holds out at least one); " + advice
        )
    shuffled = [order[i] for i in np.random.default_rng(seed).permutation(len(order))]
    load = [0] * folds
    fold_of: dict[Hashable, int] = {}
    if groups_are_folds:
        try:
            fold_of = {group: k for k, group in enumerate(sorted(order, key=_natural_order))}
        except TypeError:  # (labels of mixed kinds, 1 and "2": in order of first appearance)
            fold_of = {group: k for k, group in enumerate(order)}
    else:
        for group in sorted(shuffled, key=lambda g: -len(members[g])):  # stable: ties keep shuffled order
            k = int(np.argmin(load))  # the first of the lightest folds
            fold_of[group] = k
            load[k] += len(members[group])

    def samples(part: list) -> list[int]:
        return [i for group in part for i in members[group]]

    result = []
    for k in range(folds):
        test = [g for g in shuffled if fold_of[g] == k]
        rest = [g for g in shuffled if fold_of[g] != k]
        n_val = 0
        if val_fraction > 0 and len(rest) > 1:
            n_val = min(len(rest) - 1, max(1, int(round(val_fraction * len(rest)))))
        result.append(Fold(k, samples(rest[n_val:]), samples(rest[:n_val]), samples(test)))
    return result


@dataclass
class CVResult:
    """Per-fold metrics of a cross-validation, their mean and (population) standard deviation.

    Attributes:
        run_dir: where the folds' runs are (``fold<k>/``) and `write` puts the scores.
        fold_scores: one ``{metric: value}`` per fold, in fold order.
        histories: each fold's training history (the shared Trainer's columns).
        fold_dirs: each fold's run folder.
        percent: the values are fractions that `table` shows in %.
        oof: out-of-fold predictions, one per sample in sample order, where the caller made them.
        ensemble: the mean over folds of each fold model's predictions of the same test data, one per test
            sample, where the caller made them (``kaggle.enable_ensemble``).
        class_names: the classes' names, where the caller gave the labels (`confusion`'s rows and columns).
        confusion: counts ``[true, predicted]`` of the out-of-fold predictions (argmax of `oof`), where the
            caller gave the labels; `per_class` reads it.
    """

    run_dir: Path | None
    fold_scores: list[dict[str, float]]
    histories: list[dict[str, list]] = field(default_factory=list)
    fold_dirs: list[Path] = field(default_factory=list)
    percent: bool = False
    oof: Any = None
    ensemble: Any = None
    class_names: list[str] | None = None
    confusion: np.ndarray | None = None

    @property
    def per_class(self) -> dict[str, Any] | None:
        """`audiotrain.metrics.per_class_metrics_from_confusion` of `confusion` (precision, recall, f1,
        support per class, in `class_names` order; accuracy in %, macro_f1, weighted_f1), or None."""
        # (imported here: audiotrain.metrics imports mlx, which `audiotrain runs` over a cv run did not need)
        from audiotrain.metrics.classification import per_class_metrics_from_confusion

        return None if self.confusion is None else per_class_metrics_from_confusion(self.confusion)

    def class_table(self) -> str:
        """Markdown: per-class precision, recall, F1 and support of the out-of-fold predictions, then
        the confusion matrix (rows: true class, columns: predicted); empty without `confusion`."""
        scores = self.per_class
        if scores is None:
            return ""
        names = self.class_names or [str(k) for k in range(len(self.confusion))]
        lines = [
            "Out-of-fold predictions (argmax of each sample's scores, from the fold that held it out):",
            "",
            "| class | precision | recall | f1 | support |",
            "|---|---|---|---|---|",
        ]
        for k, name in enumerate(names):
            lines.append(
                f"| {name} | {scores['precision'][k]:.4f} | {scores['recall'][k]:.4f} | "
                f"{scores['f1'][k]:.4f} | {scores['support'][k]} |"
            )
        lines += [
            "",
            f"accuracy {scores['accuracy']:.2f}%, macro F1 {scores['macro_f1']:.4f}, "
            f"weighted F1 {scores['weighted_f1']:.4f}",
            "",
            "Confusion matrix (rows: true, columns: predicted):",
            "",
            "| true \\ predicted | " + " | ".join(names) + " |",
            "|---" * (len(names) + 1) + "|",
        ]
        for name, row in zip(names, self.confusion):
            lines.append(f"| {name} | " + " | ".join(str(int(v)) for v in row) + " |")
        return "\n".join(lines)

    @property
    def metrics(self) -> list[str]:
        """The metrics every fold has, in the first fold's order."""
        if not self.fold_scores:
            return []
        return [m for m in self.fold_scores[0] if all(m in s for s in self.fold_scores)]

    def _scored(self, metric: str) -> list[float]:
        return [s[metric] for s in self.fold_scores if _has_score(s[metric])]

    @property
    def folds_scored(self) -> dict[str, int]:
        """How many folds have a score for each metric: a chord comparison has none (NaN) in a fold whose
        held-out songs have no reference time of its kind (all ``X``, say)."""
        return {m: len(self._scored(m)) for m in self.metrics}

    @property
    def mean(self) -> dict[str, float]:
        """The mean over the folds that have a score (`folds_scored`); NaN where none has."""
        return {m: _over_folds(np.mean, self._scored(m)) for m in self.metrics}

    @property
    def std(self) -> dict[str, float]:
        """``np.std`` over the folds that have a score (ddof 0), as the chord-recognition papers'
        "mean ± std" report it; NaN where no fold has one."""
        return {m: _over_folds(np.std, self._scored(m)) for m in self.metrics}

    def table(self) -> str:
        """Markdown: one row per metric, one column per fold, then mean and std (in % when `percent`);
        ``-`` where a fold has no score, with a note under the table of how many folds the mean is over."""
        scale, fmt = (100.0, ".2f") if self.percent else (1.0, ".4f")
        folds = len(self.fold_scores)

        def cell(value) -> str:
            return f"{scale * value:{fmt}}" if _has_score(value) else "-"

        lines = [
            "| metric | " + " | ".join(f"fold {k}" for k in range(folds)) + " | mean | std |",
            "|---" * (folds + 3) + "|",
        ]
        mean, std = self.mean, self.std
        for metric in self.metrics:
            cells = " | ".join(cell(s[metric]) for s in self.fold_scores)
            lines.append(f"| {metric} | {cells} | {cell(mean[metric])} | {cell(std[metric])} |")
        partial = {m: n for m, n in self.folds_scored.items() if n < folds}
        if partial:
            by_count: dict[int, list[str]] = {}
            for metric, n in partial.items():
                by_count.setdefault(n, []).append(metric)
            counts = "; ".join(
                f"{n} of {folds} folds for {', '.join(m)}" for n, m in sorted(by_count.items())
            )
            lines += [
                "",
                "'-': no score in that fold (its held-out data has nothing the metric scores); mean and std "
                f"are over the folds that have one: {counts}",
            ]
        return "\n".join(lines)

    def write(self, stem: str = "cv_scores", **extra: Any) -> tuple[Path, Path]:
        """``run_dir/<stem>.json`` (``folds``, ``mean``, ``std``, ``std_ddof``, ``folds_scored`` and
        ``extra``; NaN written as null) and ``<stem>.md`` (a line saying its unit and std, then `table`)."""
        if self.run_dir is None:
            raise ValueError("CVResult.write: no run_dir to write to")
        json_path, md_path = self.run_dir / f"{stem}.json", self.run_dir / f"{stem}.md"
        record = {
            "folds": self.fold_scores,
            "mean": self.mean,
            "std": self.std,
            "std_ddof": 0,
            "folds_scored": self.folds_scored,
            **extra,
        }
        scores = self.per_class
        if scores is not None:
            names = self.class_names or [str(k) for k in range(len(self.confusion))]
            record["out_of_fold"] = {
                "classes": names,
                "per_class": {
                    name: {
                        "precision": float(scores["precision"][k]),
                        "recall": float(scores["recall"][k]),
                        "f1": float(scores["f1"][k]),
                        "support": int(scores["support"][k]),
                    }
                    for k, name in enumerate(names)
                },
                "accuracy": scores["accuracy"],
                "macro_f1": scores["macro_f1"],
                "weighted_f1": scores["weighted_f1"],
                "confusion_matrix": np.asarray(self.confusion).astype(int).tolist(),
            }
        write_json_atomically(json_path, record)  # (NaN as null, as in scores.json: `json_text`)
        # A reader re-computing the std with pandas (ddof 1 by default) must see why it differs.
        unit = f"as {json_path.name} holds them"
        if self.percent:
            unit = f"in % of the fractions {json_path.name} holds"
        about = f"Scores {unit}; std: np.std over the folds (ddof 0; pandas' .std() is ddof 1).\n\n"
        classes = self.class_table()
        write_text_atomically(md_path, about + self.table() + "\n" + (f"\n{classes}\n" if classes else ""))
        return json_path, md_path


def write_out_of_fold(
    path: Path,
    oof: np.ndarray,
    folds: Sequence[Fold],
    groups: Sequence[Hashable] | None = None,
    labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
) -> Path:
    """``oof`` (one row per sample, in sample order) as a CSV a user can join to the data: ``sample`` (the
    index), ``fold`` (the one that held it out), ``group`` (where groups were given), ``true`` and
    ``predicted`` (where ``labels`` are given: the sample's class and its row's argmax, by ``class_names``,
    else by index), then ``output`` (one value per sample) or ``output_0 .. output_<C-1>`` (a row of C: a
    classifier's per-class scores)."""
    fold_of = {i: fold.index for fold in folds for i in fold.test}
    if groups is not None:
        groups = list(groups)  # (by position: a pandas column of a filtered table is indexed by its labels)
    flat = oof.reshape(len(oof), -1)
    outputs = ["output"] if oof.ndim == 1 else [f"output_{j}" for j in range(flat.shape[1])]
    named = labels is not None
    if named:
        names = list(class_names) if class_names is not None else [str(k) for k in range(flat.shape[1])]
        predicted = flat.argmax(axis=1)
    header = ["sample", "fold", *(["group"] if groups is not None else []), *(["true", "predicted"] * named)]
    header += outputs
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for i, row in enumerate(flat):
        group = [groups[i]] if groups is not None else []
        # (no class for a row that is not finite, as the confusion matrix counts none: `_run_folds`)
        guess = names[predicted[i]] if named and np.isfinite(row).all() else ""
        classes = [names[labels[i]], guess] if named else []
        writer.writerow([i, fold_of[i], *group, *classes, *(repr(float(v)) for v in row)])
    write_text_atomically(path, buffer.getvalue())
    return path


def check_labels(
    labels: Sequence[int] | None, class_names: Sequence[str] | None, n: int, where: str = "train_with_cv"
) -> tuple[np.ndarray | None, list[str] | None]:
    """``labels`` (one class index per sample) as int64 and ``class_names`` as a list, or ValueError
    naming what is wrong: names without labels, a count other than ``n``, a label that is not a whole
    number or is outside ``0 .. len(class_names) - 1``, a name given twice."""
    if labels is None:
        if class_names is not None:
            raise ValueError(
                f"{where}: class_names= needs labels=, one class index per sample, to count each class's "
                "out-of-fold predictions"
            )
        return None, None
    if isinstance(labels, str) or not hasattr(labels, "__len__"):
        raise ValueError(f"{where}: labels= must be one class index per sample, got {type(labels).__name__}")
    from audiotrain.metrics.classification import as_numpy, class_indices  # (mlx: see `CVResult.per_class`)

    values = as_numpy(labels)  # (a pandas column by position, as its values; an MLX array as numpy)
    if values.ndim != 1 or len(values) != n:
        shape = f"{len(values)} labels" if values.ndim == 1 else f"labels of shape {values.shape}"
        raise ValueError(f"{where}: {shape} for {n} samples; give one class index per sample")
    values = class_indices(
        values, f"{where}: labels", " (map names to indices; the names go in class_names=)"
    )
    names = None
    if class_names is not None:
        names = list(class_names)
        if isinstance(class_names, str) or not all(isinstance(name, str) for name in names):
            raise ValueError(f"{where}: class_names= must be a list of strings, got {class_names!r}")
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"{where}: class_names names {twice} more than once")
    bad = np.flatnonzero((values < 0) | (names is not None and values >= len(names)))
    if bad.size:
        i = int(bad[0])
        within = "not a class index (0, 1, ...)"
        if names is not None:
            within = f"outside 0..{len(names) - 1} (class_names has {len(names)})"
        raise ValueError(f"{where}: labels[{i}] is {int(values[i])}, {within}; {bad.size} label(s) so")
    return values, names


def _has_score(value: Any) -> bool:
    """Whether a fold's value is a score: not NaN, nor the None that a JSON record (a resumed run's) holds."""
    return value is not None and not (isinstance(value, (float, np.floating)) and np.isnan(value))


def _over_folds(statistic, values: list[float]) -> float:
    return float(statistic(values)) if values else float("nan")


def _natural_order(label: Hashable) -> Any:
    """A group label's place among the data's folds: "fold2" before "fold10", as a person counts them (a text
    sort put "fold10" first, so fold 1 held out the data's fold 10); other labels as they sort."""
    if isinstance(label, str):
        return tuple(
            (0, int(part), "") if part.isdecimal() else (1, 0, part) for part in re.split(r"(\d+)", label)
        )
    return label
