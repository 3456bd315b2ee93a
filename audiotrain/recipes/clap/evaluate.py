"""Retrieval and zero-shot evaluation of a CLAP model on a caption dataset (the recipe's before/after report).

Every clip is embedded once (the evaluation crop) and every caption once; the scores then follow LAION's
definitions (`audiotrain.metrics.retrieval`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from audiotrain.datasets.captions import CaptionDataset, with_cropped_flags
from audiotrain.metrics.retrieval import (
    DEFAULT_PROMPT_TEMPLATE,
    class_prompts,
    retrieval_metrics,
    zero_shot_classification,
)
from audiotrain.models.clap.model import ClapModel
from audiotrain.train.callback import Callback
from audiotrain.train.evaluation import eval_mode

import mlx.core as mx
import numpy as np

# Scores added to each validation by `RetrievalEvaluation` (a few: they also show in the progress bar).
EPOCH_KEYS = ("mAP@10", "text_to_audio_R@1", "audio_to_text_R@1", "zero_shot_top1_accuracy")


def embed_audio(
    model: ClapModel, dataset: CaptionDataset, features: Callable, batch_size: int = 8
) -> np.ndarray:
    """Unit-norm audio embeddings of every clip of `dataset`, in order.

    Parameters
    ----------
    model : ClapModel
        Used in eval mode (restored afterwards).
    dataset : CaptionDataset
        Its evaluation crop is used whatever its `train` flag says: the centre window of a longer clip (the
        recipe's datasets crop it; one with ``crop_samples=None`` hands "rand_trunc" front ends whole clips,
        which cut the same centre window).
    features : callable
        ``features(list_of_waveforms, rng=, train=False) -> {"input_features", "is_longer"}`` (the CLAP front end).
    batch_size : int

    Returns
    -------
    np.ndarray, float32 [n_clips, projection_dim]
    """
    was_train_crop = dataset.train
    dataset.train = False  # deterministic centre crops, whatever the dataset is used for otherwise
    try:
        # eval mode, and every submodule's own mode back after (a fine-tuning task may keep BatchNorm in eval)
        with eval_mode(model):
            out = []
            for start in range(0, len(dataset), batch_size):
                items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
                feats = features(
                    [item["waveform"] for item in items], rng=np.random.default_rng(0), train=False
                )
                is_longer = with_cropped_flags(feats["is_longer"], items)
                emb = model.get_audio_features(mx.array(feats["input_features"]), mx.array(is_longer))
                out.append(np.array(emb.astype(mx.float32)))  # numpy has no bfloat16 (bf16-true)
            return np.concatenate(out).astype(np.float32)
    finally:
        dataset.train = was_train_crop


def embed_text(model: ClapModel, tokens: dict[str, np.ndarray], batch_size: int = 64) -> np.ndarray:
    """Unit-norm text embeddings of pre-tokenized captions ``{"input_ids", "attention_mask"}`` [n, L]."""
    with eval_mode(model):
        out = []
        n = tokens["input_ids"].shape[0]
        for start in range(0, n, batch_size):
            sl = slice(start, start + batch_size)
            emb = model.get_text_features(
                mx.array(tokens["input_ids"][sl]), mx.array(tokens["attention_mask"][sl])
            )
            out.append(np.array(emb.astype(mx.float32)))  # numpy has no bfloat16 (bf16-true)
        return np.concatenate(out).astype(np.float32)


def evaluate_clap(
    model: ClapModel,
    dataset: CaptionDataset,
    features: Callable,
    tokenize: Callable,
    *,
    labels: Sequence[str] | None = None,
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
    batch_size: int = 8,
) -> dict[str, float]:
    """Text→audio and audio→text retrieval over all captions of `dataset`, plus zero-shot accuracy.

    Parameters
    ----------
    model, dataset, features
        As in `embed_audio`.
    tokenize : callable
        The tokenizer, for the zero-shot prompts.
    labels : sequence of str, optional
        Class names for zero-shot classification, in order. Default: the sorted distinct ``label`` of the
        clips. Clips without a label are left out of zero-shot (as the recipe does); it is skipped when no
        clip has one.
    prompt_template : str
        Zero-shot prompt with one ``{}`` for the class name.
    batch_size : int

    Returns
    -------
    dict
        `retrieval_metrics` keys, ``mAP@10`` (the mean of both directions, LAION's model-selection score)
        and, with labels, `zero_shot_classification` keys.
    """
    audio = embed_audio(model, dataset, features, batch_size)
    text = embed_text(model, {"input_ids": dataset.input_ids, "attention_mask": dataset.attention_mask})
    metrics = retrieval_metrics(audio, text, dataset.caption_to_clip)
    metrics["mAP@10"] = (metrics["text_to_audio_mAP@10"] + metrics["audio_to_text_mAP@10"]) / 2
    clip_labels = [c.label for c in dataset.clips]
    if labels is None:
        labels = sorted({lab for lab in clip_labels if lab is not None}) or None
    if labels is not None and any(lab is not None for lab in clip_labels):
        labels = list(labels)
        missing = sorted({lab for lab in clip_labels if lab is not None and lab not in labels})
        if missing:
            raise ValueError(f"clip labels {missing} are not in the zero-shot label list {labels}")
        keep = [i for i, lab in enumerate(clip_labels) if lab is not None]
        prompts = class_prompts(labels, prompt_template)
        class_emb = embed_text(model, tokenize(prompts))
        targets = np.array([labels.index(clip_labels[i]) for i in keep])
        metrics.update(zero_shot_classification(audio[keep], class_emb, targets))
    return metrics


class RetrievalEvaluation(Callback):
    """Adds retrieval scores to every validation: ``val_mAP@10``, ``val_text_to_audio_R@1``, ...

    They land in the Trainer's history and logs like ``val_loss``, so `ModelCheckpoint` can keep the model
    with the best ``val_mAP@10`` (the mean of both directions: LAION's model-selection score).

    Parameters
    ----------
    evaluate : callable
        ``evaluate() -> dict`` of scores (e.g. a closure over `evaluate_clap`).
    keys : sequence of str
        Which scores to report (those the evaluation returns).
    """

    def __init__(self, evaluate: Callable[[], dict[str, float]], keys: Sequence[str] = EPOCH_KEYS):
        self.evaluate = evaluate
        self.keys = tuple(keys)

    def on_validation_end(self, trainer, module) -> None:
        if trainer.sanity_checking:
            return  # (the sanity check's batches are not a validation)
        scores = self.evaluate()
        metrics = {f"val_{k}": float(scores[k]) for k in self.keys if k in scores}
        trainer.callback_metrics.update(metrics)
        trainer.log_metrics(metrics, step=trainer.global_step)
