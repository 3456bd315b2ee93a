"""Audio-text retrieval and zero-shot classification scores, as LAION-CLAP reports them.

Recall, text→audio mAP@10 and the ranks are LAION-CLAP's `evaluate_clotho_audiocaps`; audio→text mAP@10 is
Mei et al.'s (audio-text_retrieval, which LAION's is after), not the number LAION's code prints. All are
generalised from "exactly 5 captions per clip" to any number:

- text→audio: every caption is a query with exactly one relevant clip. With `r` its 0-based rank,
  R@k = mean(r < k) and mAP@10 = mean(1 / (r + 1) if r < 10 else 0) over all captions. With a fixed
  number of captions per clip this equals LAION's "do it once per caption index and average".
- audio→text: every clip is a query whose relevant items are its own captions. R@k counts a hit when the
  best-ranked of its captions is within the top k. AP@10 sorts the 0-based ranks of its captions, keeps
  those < 10 and sums `(j + 1) / (rank_j + 1)` (the precision at the j-th hit), divided by
  min(n_captions, 10) (5 for Clotho and AudioCaps; the min keeps a perfect ranking at 1 with more than 10).

  LAION's code does not sort: it takes the ranks in caption order (``torch.where(stack([ranking] * 5) ==
  gt)[1]``) and pairs the j-th *caption*'s rank with j, so its value differs from this one whenever a clip's
  captions are not ranked in caption order, and can exceed 1 (0-based ranks [10, 6, 5, 1, 3] of 5 captions:
  Mei et al.'s AP@10 is 0.414, LAION's 0.595; ranks [1, 0] of 2 captions: 1 and 1.25). `laion_audio_to_text_map10` gives LAION's number, for comparing with a
  laion-clap log; it is not used for selection or reported by the recipe.

Ties are broken against the query: an irrelevant item with the same score as a relevant one is ranked
first. A collapsed model (all embeddings equal) therefore scores chance-or-worse, never a perfect 1. Scores
within `TIE_STEPS` float steps of the embeddings' dtype (float32: 9.5e-7) are the same score: identical captions or clips embed a
few 1e-8 apart by their place in a batch, which must not decide their ranks.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence

from audiotrain.metrics.classification import as_numpy, class_indices, is_whole_number

import numpy as np

DEFAULT_KS = (1, 5, 10)
RECALL_REFUSAL = "recall cut-offs must be >= 1 and whole numbers"
DEFAULT_PROMPT_TEMPLATE = "This is a sound of {}."  # LAION-CLAP's zero-shot prompt


def cut_offs(ks, refusal: str) -> tuple[int, ...]:
    """`ks` (recall or top-k cut-offs: a sequence, or one whole number given alone, ``ks=5``) as a tuple of
    ints >= 1; anything else raises ValueError starting with `refusal`. One helper for every score and its
    chance level: ``ks=5`` was a raw "'int' object is not iterable", and `chance_scores` reported an "R@0"
    that `retrieval_metrics` refuses."""
    if getattr(ks, "ndim", None) == 0:  # (a 0-d numpy or MLX array: iterating it was a raw TypeError)
        ks = ks.item()
    if isinstance(ks, numbers.Real) and not isinstance(ks, bool):
        ks = (ks,)
    elif isinstance(ks, (str, bytes, bool)) or not isinstance(ks, Iterable):
        raise ValueError(f"{refusal}, got {ks!r}")
    ks = tuple(ks)
    # int() would take 1.5 as 1 and report it as R@1
    if not ks or not all(not isinstance(k, bool) and is_whole_number(k) and k >= 1 for k in ks):
        raise ValueError(f"{refusal}, got {ks}")
    return tuple(int(k) for k in ks)


def _as_matrix(x, name: str) -> np.ndarray:
    x = as_numpy(x).astype(np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [n, dim], got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _normalize(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def _check_caption_owner(caption_to_audio, n_audio: int, n_text: int) -> np.ndarray:
    owner = as_numpy(caption_to_audio)
    if owner.shape != (n_text,):
        raise ValueError(
            f"caption_to_audio must give one clip index per caption: expected shape ({n_text},), "
            f"got {owner.shape}"
        )
    if owner.size and not np.issubdtype(owner.dtype, np.integer):
        raise ValueError(f"caption_to_audio must hold integer clip indices, got dtype {owner.dtype}")
    owner = owner.astype(np.int64)
    if owner.size and (owner.min() < 0 or owner.max() >= n_audio):
        raise ValueError(
            f"caption_to_audio holds indices outside [0, {n_audio}): {owner.min()}..{owner.max()}"
        )
    missing = np.setdiff1d(np.arange(n_audio), owner)
    if missing.size:
        raise ValueError(
            f"{missing.size} clip(s) have no caption (first: index {int(missing[0])}); every clip needs at "
            "least one caption for audio→text retrieval"
        )
    return owner


#: Scores this many float steps apart (of the embeddings' own dtype, relative to the largest |score|, at least
#: 1) are a tie. Identical captions or clips embed a few 1e-8 apart depending on their place in a batch
#: (float32 sums in another order), so exact equality made the tie rule, and the scores, depend on the
#: evaluation batch size: text->audio mAP@10 0.49 in batches of 8, 0.56 in one batch of 16, for the same
#: weights. float32: 9.5e-7; float64 inputs keep float64's resolution.
TIE_STEPS = 8


def _coarsest_float(*inputs) -> np.dtype:
    """The float type of `inputs` with the coarsest resolution (float64 where none is a float): it sets how
    close two scores must be to tie (`tie_tolerance`)."""
    given = [as_numpy(x).dtype for x in inputs]
    return max(
        (t for t in given if np.issubdtype(t, np.floating)),
        key=lambda t: np.finfo(t).eps,
        default=np.dtype(np.float64),
    )


def tie_tolerance(similarity: np.ndarray, dtype: np.dtype) -> float:
    """The score difference below which two scores of `similarity` are a tie, for embeddings of `dtype`
    (`TIE_STEPS` of its resolution; float64's for an integer dtype)."""
    dtype = np.dtype(dtype) if np.issubdtype(dtype, np.floating) else np.dtype(np.float64)
    largest = float(np.abs(similarity).max()) if similarity.size else 0.0
    return TIE_STEPS * float(np.finfo(dtype).eps) * max(1.0, largest)


def text_to_audio_ranks(
    similarity: np.ndarray, caption_to_audio: np.ndarray, tolerance: float = 0.0
) -> np.ndarray:
    """0-based rank of each caption's own clip among all clips.

    Parameters
    ----------
    similarity : np.ndarray, shape [n_text, n_audio]
        Score of every (caption, clip) pair; higher is more similar.
    caption_to_audio : np.ndarray of int, shape [n_text]
        Index of the clip each caption describes.
    tolerance : float
        Scores within this of the own clip's are ties (`tie_tolerance`; 0: exactly equal ones).

    Returns
    -------
    np.ndarray of int, shape [n_text]
    """
    rows = np.arange(similarity.shape[0])
    target = similarity[rows, caption_to_audio][:, None]
    # Ties go against the query: every other clip with the same score (to `tolerance`) counts as ranked above.
    return (similarity >= target - tolerance).sum(axis=1) - 1


def audio_to_text_ranks(
    similarity: np.ndarray, caption_to_audio: np.ndarray, tolerance: float = 0.0
) -> list[np.ndarray]:
    """Sorted 0-based ranks of each clip's own captions among all captions.

    Parameters
    ----------
    similarity : np.ndarray, shape [n_audio, n_text]
    caption_to_audio : np.ndarray of int, shape [n_text]
    tolerance : float
        Scores within this of a relevant caption's are ties (`tie_tolerance`; 0: exactly equal ones).

    Returns
    -------
    list of np.ndarray of int, one per clip, ascending.
    """
    ranks = []
    for a in range(similarity.shape[0]):
        scores = similarity[a]
        relevant = caption_to_audio == a
        rel_scores = np.sort(scores[relevant])[::-1]
        other = np.sort(scores[~relevant])
        # Irrelevant captions scoring >= a relevant one are ranked above it (ties against the query);
        # relevant captions above it are the j that precede it in the descending order.
        n_other_above = other.size - np.searchsorted(other, rel_scores - tolerance, side="left")
        ranks.append(n_other_above + np.arange(rel_scores.size))
    return ranks


def retrieval_metrics(
    audio_embeds,
    text_embeds,
    caption_to_audio: Sequence[int] | np.ndarray,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    normalize: bool = True,
) -> dict[str, float]:
    """Text→audio and audio→text recall@k, mAP@10 and mean/median rank.

    Parameters
    ----------
    audio_embeds : array-like, shape [n_audio, dim]
        One embedding per clip.
    text_embeds : array-like, shape [n_text, dim]
        One embedding per caption (clips may have several captions).
    caption_to_audio : sequence of int, length n_text
        Index of the clip each caption belongs to. Every clip must have at least one caption.
    ks : sequence of int, or one int
        Cut-offs for recall.
    normalize : bool
        L2-normalise the embeddings first (cosine similarity), as CLAP does. The logit scale is a positive
        factor and does not change rankings, so it is not needed here.

    Returns
    -------
    dict with keys ``text_to_audio_R@{k}``, ``text_to_audio_mAP@10``, ``text_to_audio_mean_rank``,
    ``text_to_audio_median_rank`` (1-based ranks), the same for ``audio_to_text_``, and ``n_audio``,
    ``n_text``. Recall and mAP are fractions in [0, 1].
    """
    coarsest = _coarsest_float(audio_embeds, text_embeds)
    audio = _as_matrix(audio_embeds, "audio_embeds")
    text = _as_matrix(text_embeds, "text_embeds")
    if audio.shape[1] != text.shape[1]:
        raise ValueError(
            f"audio and text embeddings must have the same dimension, got {audio.shape[1]} and {text.shape[1]}"
        )
    if audio.shape[0] == 0:
        raise ValueError("retrieval_metrics needs at least one clip")
    owner = _check_caption_owner(caption_to_audio, audio.shape[0], text.shape[0])
    ks = cut_offs(ks, RECALL_REFUSAL)
    if normalize:
        audio, text = _normalize(audio), _normalize(text)
    sim = audio @ text.T  # [n_audio, n_text]

    metrics: dict[str, float] = {"n_audio": float(audio.shape[0]), "n_text": float(text.shape[0])}

    tolerance = tie_tolerance(sim, coarsest)  # (identical inputs embed a few 1e-8 apart: still a tie)
    t2a = text_to_audio_ranks(sim.T, owner, tolerance)
    for k in ks:
        metrics[f"text_to_audio_R@{k}"] = float(np.mean(t2a < k))
    metrics["text_to_audio_mAP@10"] = float(np.mean(np.where(t2a < 10, 1.0 / (t2a + 1), 0.0)))
    metrics["text_to_audio_mean_rank"] = float(t2a.mean() + 1)
    metrics["text_to_audio_median_rank"] = float(np.floor(np.median(t2a)) + 1)

    a2t = audio_to_text_ranks(sim, owner, tolerance)
    best = np.array([r[0] for r in a2t])
    for k in ks:
        metrics[f"audio_to_text_R@{k}"] = float(np.mean(best < k))
    ap = []
    for r in a2t:
        hits = r[r < 10]
        ap.append(np.sum(np.arange(1, hits.size + 1) / (hits + 1)) / min(r.size, 10))
    metrics["audio_to_text_mAP@10"] = float(np.mean(ap))
    metrics["audio_to_text_mean_rank"] = float(best.mean() + 1)
    metrics["audio_to_text_median_rank"] = float(np.floor(np.median(best)) + 1)
    return metrics


def laion_audio_to_text_map10(
    audio_embeds, text_embeds, caption_to_audio, *, normalize: bool = True
) -> float:
    """audio→text mAP@10 as laion-clap's `evaluate_clotho_audiocaps` computes it (see the module docstring:
    the ranks of a clip's captions taken in caption order, unsorted, so not a true AP; divided by the
    number of the clip's captions). Only for comparing with laion-clap's logs: `retrieval_metrics` gives
    the correct value. A clip's captions are in the order they appear in `caption_to_audio`. Ties are
    `retrieval_metrics`' (against the query, scores within float noise included)."""
    coarsest = _coarsest_float(audio_embeds, text_embeds)
    audio, text = _as_matrix(audio_embeds, "audio_embeds"), _as_matrix(text_embeds, "text_embeds")
    owner = _check_caption_owner(caption_to_audio, audio.shape[0], text.shape[0])
    if normalize:
        audio, text = _normalize(audio), _normalize(text)
    sim = audio @ text.T
    ap = []
    # the same ties as `retrieval_metrics`: without its tolerance, float noise (the evaluation batch size)
    # decided whether a caption shared by two clips ranked above or below the clip's own
    for a, sorted_ranks in enumerate(audio_to_text_ranks(sim, owner, tie_tolerance(sim, coarsest))):
        # `audio_to_text_ranks` lists the ranks by descending score; put each back at its caption.
        by_score = np.argsort(-sim[a, owner == a], kind="stable")
        in_caption_order = np.empty_like(sorted_ranks)
        in_caption_order[by_score] = sorted_ranks
        hits = in_caption_order[in_caption_order < 10]
        ap.append(np.sum(np.arange(1, hits.size + 1) / (hits + 1)) / sorted_ranks.size)
    return float(np.mean(ap))


def inserts_the_label_once(template: object) -> bool:
    """Whether `template` is a text whose ``str.format`` puts its one argument in exactly once: ``{}``,
    ``{0}`` or ``{:>10}``, not ``{} or {}``, ``{label}`` or an unmatched brace. `class_prompts` and the CLAP
    recipe's ``--dataset.prompt_template`` check share it: they disagreed about ``{0}``, which the flag took
    and the zero-shot prompts then refused, after the run folder was written."""
    try:
        return isinstance(template, str) and template.format("\0").count("\0") == 1
    except (IndexError, KeyError, ValueError):  # {1}, {name}, an unmatched brace
        return False


def class_prompts(labels: Sequence[str], template: str = DEFAULT_PROMPT_TEMPLATE) -> list[str]:
    """Text prompts for zero-shot classification, e.g. "This is a sound of dog barking."

    `labels` is a list of class names (a lone string is refused, not split into letters). The template must
    put the label in exactly once (`inserts_the_label_once`: ``{}``, or ``{0}``, ...). A label goes in
    without its surrounding spaces, so labels must be unique without them: "dog" and "dog " would get one
    prompt, tie, and each class's clips would be ranked below the other's prompt (ties go against the query).
    """
    if not inserts_the_label_once(template):
        raise ValueError(
            f"prompt template must contain exactly one '{{}}' (or '{{0}}') for the label, got {template!r}"
        )
    if isinstance(labels, (str, bytes)):
        # list("dog") is three classes, "d", "o" and "g": the scores would be for them, without a word
        raise TypeError(f"labels must be a list of class names, got the string {labels!r}: pass [{labels!r}]")
    labels = list(labels)
    if not labels:
        raise ValueError("zero-shot classification needs at least one label")
    bad = [lab for lab in labels if not isinstance(lab, str) or not lab.strip()]
    if bad:
        raise ValueError(f"labels must be non-empty strings, got {bad[:3]!r}")
    first: dict[str, str] = {}
    repeats = []
    for lab in labels:
        if lab.strip() in first:
            repeats.append(f"{first[lab.strip()]!r} and {lab!r}")
        else:
            first[lab.strip()] = lab
    if repeats:
        raise ValueError(
            f"labels must be unique (surrounding spaces aside: they are not part of the prompt), duplicated: "
            f"{'; '.join(repeats)}"
        )
    return [template.format(lab.strip()) for lab in labels]


def zero_shot_classification(
    audio_embeds,
    class_text_embeds,
    targets: Sequence[int] | np.ndarray,
    *,
    ks: Sequence[int] = (1, 5),
    normalize: bool = True,
) -> dict[str, float]:
    """Zero-shot accuracy: each clip is assigned the class whose prompt embedding is most similar.

    Parameters
    ----------
    audio_embeds : array-like, shape [n_audio, dim]
    class_text_embeds : array-like, shape [n_classes, dim]
        Embeddings of the class prompts (see `class_prompts`), in label order.
    targets : sequence of int, length n_audio
        True class index of each clip (whole numbers: 0.7 is refused, not truncated to class 0).
    ks : sequence of int
        Top-k accuracies to report, whole numbers >= 1 (k not smaller than the number of classes is
        trivially 1 and skipped).

    Ties go against the clip, and scores within float noise are ties, as in `retrieval_metrics`: two
    prompts that embed alike (a label given twice) rank each class below the other's prompt.

    Returns
    -------
    dict with ``zero_shot_top{k}_accuracy`` for each k, ``zero_shot_mAP@10`` (mean over clips of 1/(rank+1)
    of the true class, i.e. the mean reciprocal rank LAION reports as mAP for single-label data) and
    ``n_classes``.
    """
    coarsest = _coarsest_float(audio_embeds, class_text_embeds)
    audio = _as_matrix(audio_embeds, "audio_embeds")
    classes = _as_matrix(class_text_embeds, "class_text_embeds")
    if audio.shape[0] == 0:
        raise ValueError("zero_shot_classification needs at least one clip")
    if audio.shape[1] != classes.shape[1]:
        raise ValueError(
            f"audio and class embeddings must have the same dimension, got {audio.shape[1]} and "
            f"{classes.shape[1]}"
        )
    targets = as_numpy(targets)
    if targets.shape != (audio.shape[0],):
        raise ValueError(f"targets must have shape ({audio.shape[0]},), got {targets.shape}")
    # class names as targets (the clips' labels as read) are the usual slip: say how to make indices of them.
    # Only where they are text: an object array of numbers and None (a column with a gap) holds no names.
    text = targets.dtype.kind in "US" or (
        targets.dtype.kind == "O" and any(isinstance(t, (str, bytes)) for t in targets)
    )
    names = (
        "; class names? pass each clip's index in the label list: [labels.index(name) for name in names]"
        if text
        else ""
    )
    targets = class_indices(targets, "zero_shot_classification: targets", names)
    ks = cut_offs(ks, "zero_shot_classification: top-k cut-offs must be whole numbers >= 1")
    if targets.size and (targets.min() < 0 or targets.max() >= classes.shape[0]):
        raise ValueError(f"targets must be class indices in [0, {classes.shape[0]})")
    if normalize:
        audio, classes = _normalize(audio), _normalize(classes)
    sim = audio @ classes.T
    # same "rank of the one true item" rule, with the same tolerance as retrieval_metrics: prompts that embed
    # alike differ by float noise, which must not decide which class wins
    ranks = text_to_audio_ranks(sim, targets, tie_tolerance(sim, coarsest))
    metrics = {"n_classes": float(classes.shape[0])}
    for k in ks:
        if k < classes.shape[0]:  # top-k over k or fewer classes is trivially 1
            metrics[f"zero_shot_top{k}_accuracy"] = float(np.mean(ranks < k))
    metrics["zero_shot_mAP@10"] = float(np.mean(np.where(ranks < 10, 1.0 / (ranks + 1), 0.0)))
    return metrics


def _harmonic(n: int) -> float:
    return float(sum(1.0 / r for r in range(1, n + 1)))


def chance_scores(
    captions_per_clip: Sequence[int],
    *,
    ks: Sequence[int] = DEFAULT_KS,
    n_classes: int | None = None,
    zero_shot_ks: Sequence[int] = (1, 5),
) -> dict[str, float]:
    """The expected scores of a random ranking (every order of the candidates equally likely).

    The keys are those of `retrieval_metrics` (and of `zero_shot_classification` with `n_classes`), so a
    plot or table can put each score beside its chance level. A model whose scores sit near these has
    learned nothing; with few clips they are high (R@k is k / N for N clips).

    - text→audio, N clips, one relevant clip per caption at a uniform 0-based rank r:
      R@k = min(k, N) / N and mAP@10 = H(min(10, N)) / N (H: harmonic number, from E[1 / (r + 1); r < 10]).
    - audio→text, T captions, m of them the clip's own: R@k = 1 - C(T - m, k) / C(T, k) (the chance that
      not all k top places go to other clips' captions). AP@10 sums, over places r < 10, P(relevant at r)
      = m / T times the expected precision there, (1 + r (m - 1) / (T - 1)) / (r + 1), divided by
      min(m, 10) as `retrieval_metrics` does. Both are averaged over the clips.
    - zero-shot over C classes: top-k = min(k, C) / C and mAP@10 = H(min(10, C)) / C.

    Ties, which `retrieval_metrics` breaks against the query, are not part of a random ranking.

    Parameters
    ----------
    captions_per_clip : sequence of int
        How many captions each clip has (length N, every entry >= 1).
    ks : sequence of int
        Recall cut-offs, as in `retrieval_metrics`.
    n_classes : int, optional
        Number of zero-shot classes; without it no zero-shot keys are returned.
    zero_shot_ks : sequence of int
        Top-k accuracies, as in `zero_shot_classification` (k >= C is left out there and here).
    """
    counts = [int(m) for m in captions_per_clip]
    ks = cut_offs(ks, RECALL_REFUSAL)
    zero_shot_ks = cut_offs(zero_shot_ks, "chance_scores: zero_shot_ks must be whole numbers >= 1")
    if not counts or min(counts) < 1:
        raise ValueError(f"captions_per_clip needs one count >= 1 per clip, got {counts[:5]}")
    n_audio, n_text = len(counts), sum(counts)
    out: dict[str, float] = {}
    for k in ks:
        out[f"text_to_audio_R@{k}"] = min(k, n_audio) / n_audio
    out["text_to_audio_mAP@10"] = _harmonic(min(10, n_audio)) / n_audio
    for k in ks:
        miss = [math.comb(n_text - m, k) / math.comb(n_text, k) if k <= n_text else 0.0 for m in counts]
        out[f"audio_to_text_R@{k}"] = 1.0 - float(np.mean(miss))
    ap = []
    for m in counts:
        others = (m - 1) / (n_text - 1) if n_text > 1 else 0.0
        places = range(min(10, n_text))
        ap.append(sum(m / n_text * (1 + r * others) / (r + 1) for r in places) / min(m, 10))
    out["audio_to_text_mAP@10"] = float(np.mean(ap))
    if n_classes is not None:
        for k in zero_shot_ks:
            if k < n_classes:
                out[f"zero_shot_top{k}_accuracy"] = k / n_classes
        out["zero_shot_mAP@10"] = _harmonic(min(10, n_classes)) / n_classes
    return out
