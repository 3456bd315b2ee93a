"""The CLAP recipe's report: the before/after retrieval table and the run folder's plots (drawn by
`audiotrain.metrics.plots`)."""

from __future__ import annotations

import sys
from pathlib import Path

from audiotrain._text import plural
from audiotrain.metrics.plot_loading import load_plots, plots_wanted
from audiotrain.metrics.retrieval import chance_scores

_ROWS = (
    "text_to_audio_R@1",
    "text_to_audio_R@5",
    "text_to_audio_R@10",
    "text_to_audio_mAP@10",
    "audio_to_text_R@1",
    "audio_to_text_R@5",
    "audio_to_text_R@10",
    "audio_to_text_mAP@10",
    "zero_shot_top1_accuracy",
    "zero_shot_top5_accuracy",
)


def _label(key: str) -> str:
    return key.replace("_to_", _arrow()).replace("_", " ")


def _arrow() -> str:
    """The arrow of "text→audio", or "->" where stdout cannot print it (an ASCII terminal): the stream's
    escape, ``\\u2192``, was 5 characters wider than the padding counted and pushed every score off its
    column."""
    try:
        "→".encode(getattr(sys.stdout, "encoding", None) or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return "->"
    return "→"


def format_table(before: dict, after: dict | None) -> str:
    """A fixed-width table of the retrieval and zero-shot scores, before (and after) fine-tuning."""
    return format_columns({"before": before, "after": after})


def format_columns(columns: dict[str, dict | None]) -> str:
    """A fixed-width table of the retrieval and zero-shot scores, a column per entry of `columns` (heading ->
    scores; None, or a score it lacks, leaves the cell empty), a row per score the first column holds: the
    training run's before/after table (`format_table`) and the ``evaluate`` command's one column."""
    first = next(iter(columns.values())) or {}
    lines = [f"{'':28s}" + "".join(f"{heading:>10s}" for heading in columns)]
    for key in _ROWS:
        if key in first:
            cells = (
                f"{scores[key]:10.3f}" if scores and key in scores else f"{'':10s}"
                for scores in columns.values()
            )
            lines.append(f"{_label(key):28s}" + "".join(cells))
    return "\n".join(lines + _left_out_top_k(first))


def _left_out_top_k(scores: dict) -> list[str]:
    """A line for each zero-shot top-k row left out because k is not below the number of classes
    (`zero_shot_classification` skips it: every clip's class is in its top k), so that its absence is
    explained where the scores are read."""
    n_classes = scores.get("n_classes")  # (there only where zero-shot classification was scored)
    if not n_classes:
        return []
    notes = []
    for key in _ROWS:
        k = key.removeprefix("zero_shot_top").removesuffix("_accuracy")
        if k != key and k.isdigit() and key not in scores and int(k) >= n_classes:
            notes.append(
                # (not "left out: ", the words of the note on clips a split leaves out)
                f"(no {_label(key)}: with {plural(int(n_classes), 'class', 'classes')}, every clip's "
                f"class is in its top {k})"
            )
    return notes


def chance_levels(results: dict) -> dict[str, float]:
    """The chance level of every score in `results` (retrieval.json), plus ``mAP@10`` (the mean of both
    directions), from each evaluation clip's caption count (``eval_captions_per_clip``); a retrieval.json
    of an older run keeps only the totals, and its captions are taken as spread over the clips as evenly
    as they can be (the audio->text levels are then approximate where the counts were uneven)."""
    counts = results.get("eval_captions_per_clip")
    if not (isinstance(counts, list) and counts and all(type(c) is int and c >= 1 for c in counts)):
        clips, captions = int(results["n_eval_clips"]), int(results["n_eval_captions"])
        per_clip, extra = divmod(captions, clips)
        counts = [per_clip + 1] * extra + [per_clip] * (clips - extra)
    n_classes = results["before"].get("n_classes")
    chance = chance_scores(counts, n_classes=int(n_classes) if n_classes else None)
    chance["mAP@10"] = (chance["text_to_audio_mAP@10"] + chance["audio_to_text_mAP@10"]) / 2
    return chance


#: The plots `write_plots` may write (``<name>.png``).
PLOT_NAMES = ("loss", "accuracy", "retrieval_per_epoch", "retrieval")


def write_plots(history: dict, results: dict, folder: Path) -> list[Path]:
    """loss.png, accuracy.png and retrieval_per_epoch.png (per epoch, train and val) and retrieval.png
    (before/after bars with their chance levels)."""
    plots = load_plots()  # (matplotlib only when plotting)
    if plots is None:
        if not plots_wanted():  # (AUDIOTRAIN_PLOTS=0: a resumed run's earlier ones would pass for its own)
            for name in PLOT_NAMES:
                (folder / f"{name}.png").unlink(missing_ok=True)
        return []
    plot_history, plot_score_bars = plots.plot_history, plots.plot_score_bars
    folder.mkdir(parents=True, exist_ok=True)
    chance = chance_levels(results)
    clips, captions = results["n_eval_clips"], results["n_eval_captions"]
    evaluated = f"{plural(clips, 'evaluation clip')}, {plural(captions, 'caption')}"
    names = {
        "loss": "contrastive loss",
        "audio_accuracy": "audio→text: a clip's own caption scores highest",
        "text_accuracy": "text→audio: a caption's own clip scores highest",
        "mAP@10": "mAP@10 (mean of both directions)",
        "text_to_audio_R@1": "text→audio R@1",
        "audio_to_text_R@1": "audio→text R@1",
    }
    written = []
    for name, keys, ylabel, title, chance_lines in (
        (
            "loss",
            ("train_loss", "val_loss"),
            "contrastive loss (cross-entropy)",
            "contrastive loss (both directions, averaged)",
            None,
        ),
        (
            "accuracy",
            ("train_audio_accuracy", "val_audio_accuracy", "train_text_accuracy", "val_text_accuracy"),
            "in-batch accuracy (fraction)",
            "in-batch matching accuracy",
            None,
        ),
        (
            "retrieval_per_epoch",
            ("val_mAP@10", "val_text_to_audio_R@1", "val_audio_to_text_R@1"),
            "retrieval score (1 = perfect)",
            f"retrieval after each epoch ({evaluated})",
            {f"val_{k}": v for k, v in chance.items()},
        ),
    ):
        if any(history.get(key) for key in keys):
            path = folder / f"{name}.png"
            written.append(
                plot_history(
                    history, keys, path, ylabel=ylabel, title=title, chance=chance_lines, labels=names
                )
            )
    written.append(
        plot_score_bars(
            {"before fine-tuning": results["before"], "after": results["after"]},
            _ROWS,
            folder / "retrieval.png",
            labels={k: _label(k) for k in _ROWS},
            chance=chance,
            title=f"Retrieval and zero-shot scores ({evaluated})",
        )
    )
    return written
