"""The recipe's before/after evaluation (`evaluate_clap`, `embed_audio`), over a stand-in model whose
embeddings the test chooses: which crop is embedded, the model-selection score, the zero-shot targets."""

from pathlib import Path

from audiotrain.datasets.captions import CaptionDataset, CaptionedClip
from audiotrain.metrics.retrieval import class_prompts, retrieval_metrics
from audiotrain.recipes.clap.evaluate import embed_audio, embed_text, evaluate_clap

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

SR = 16000


class TableModel(nn.Module):
    """`ClapModel`'s two embedding calls, read from tables: a text's embedding is row ``input_ids[:, 0]`` of
    `text_table`, a clip's is its front end's "features" (the row `table_front_end` put there)."""

    def __init__(self, text_table: np.ndarray):
        super().__init__()
        self.text_table = mx.array(text_table.astype(np.float32))

    def get_text_features(self, input_ids, attention_mask=None):
        return self.text_table[input_ids[:, 0]]

    def get_audio_features(self, input_features, is_longer=None):
        return input_features


def table_tokenizer(texts: list[str]):
    """Token id 0 of each text: its row in the model's text table (`TEXTS` lists them)."""
    ids = np.array([[TEXTS.index(t), 0] for t in texts], dtype=np.int32)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def table_front_end(audio_table: np.ndarray):
    """A front end that hands the model row ``waveform[0]`` of `audio_table` (each clip's waveform is filled
    with its own row number)."""

    def features(waves, rng=None, train=False):
        rows = np.array([int(w[0]) for w in waves])
        return {"input_features": audio_table[rows].astype(np.float32), "is_longer": np.zeros((len(rows), 1))}

    return features


def dataset(clips: list[CaptionedClip], **kwargs) -> CaptionDataset:
    """The clips over waveforms of `SR` samples filled with their index (see `table_front_end`)."""
    waves = {c.path: np.full(SR, i, dtype=np.float32) for i, c in enumerate(clips)}
    options = {"crop_samples": None, "train": False, **kwargs}
    return CaptionDataset(
        clips, table_tokenizer, sampling_rate=SR, load=lambda path, sr, mono: (waves[path], sr), **options
    )


def clip(name: str, *captions: str, label: str | None = None) -> CaptionedClip:
    return CaptionedClip(path=Path("/clips") / name, name=name, captions=captions, label=label)


# Every text the tests embed: captions, then the zero-shot prompts of labels "a" and "z" (LAION's template,
# then one of the user's).
OWN_TEMPLATE = "A recording of {}."
TEXTS = ["dog", "rain", "siren", "car", *class_prompts(["a", "z"]), *class_prompts(["a", "z"], OWN_TEMPLATE)]


def test_the_model_selection_score_is_the_mean_of_both_directions():
    """val_mAP@10 chooses the run's hf_model/; text→audio alone would score only half the task."""
    rng = np.random.default_rng(0)
    audio_table = rng.normal(size=(3, 4))
    text_table = np.concatenate([audio_table[[0, 1, 0, 2]] + 0.9 * rng.normal(size=(4, 4)), np.eye(2, 4)])
    clips = [clip("0.wav", "dog", "rain"), clip("1.wav", "siren"), clip("2.wav", "car")]
    data = dataset(clips)
    scores = evaluate_clap(TableModel(text_table), data, table_front_end(audio_table), table_tokenizer)
    expected = retrieval_metrics(audio_table, text_table[:4], data.caption_to_clip)
    assert scores["text_to_audio_mAP@10"] == pytest.approx(expected["text_to_audio_mAP@10"])
    assert scores["text_to_audio_mAP@10"] != pytest.approx(scores["audio_to_text_mAP@10"])  # (they differ)
    assert scores["mAP@10"] == pytest.approx(
        (scores["text_to_audio_mAP@10"] + scores["audio_to_text_mAP@10"]) / 2
    )


def test_every_caption_is_scored_against_its_own_clip_when_clips_have_different_caption_counts():
    """Clips of 1 and 3 captions, each caption embedded next to its own clip: perfect scores. With the
    captions paired to the wrong clips (counts taken in another order), recall and mAP fall, with no error."""
    audio_table = np.eye(2, 4)
    text_table = np.zeros((len(TEXTS), 4))
    text_table[:4] = [[1, 0, 0, 0], [0, 1, 0.1, 0], [0, 1, 0, 0.1], [0, 1, 0.1, 0.1]]  # dog | rain siren car
    clips = [clip("0.wav", "dog"), clip("1.wav", "rain", "siren", "car")]
    data = dataset(clips)
    assert data.caption_to_clip.tolist() == [0, 1, 1, 1]
    scores = evaluate_clap(TableModel(text_table), data, table_front_end(audio_table), table_tokenizer)
    for key in ("text_to_audio_R@1", "audio_to_text_R@1", "text_to_audio_mAP@10", "audio_to_text_mAP@10"):
        assert scores[key] == pytest.approx(1.0), key


@pytest.mark.parametrize("labels", [["z", "a"], ["a", "z"], None])
def test_zero_shot_targets_follow_the_order_of_the_label_list_given(labels):
    """With --dataset.zero_shot_labels in an order other than sorted, the targets were indices into the
    sorted list while the prompts followed the given one: every clip was scored against another's class."""
    prompts = {label: TEXTS.index(p) for label, p in zip("az", class_prompts(["a", "z"]))}
    text_table = np.eye(len(TEXTS))
    # Each clip's audio is its own class's prompt, and far from every caption.
    audio_table = text_table[[prompts["a"], prompts["z"], prompts["a"]]]
    clips = [
        clip("0.wav", "dog", label="a"),
        clip("1.wav", "rain", label="z"),
        clip("2.wav", "car", label="a"),
    ]
    scores = evaluate_clap(
        TableModel(text_table), dataset(clips), table_front_end(audio_table), table_tokenizer, labels=labels
    )
    assert scores["n_classes"] == 2
    assert scores["zero_shot_top1_accuracy"] == 1.0 and scores["zero_shot_mAP@10"] == 1.0


def test_zero_shot_uses_the_prompt_template_given():
    """--dataset.prompt_template words the class prompts: each clip sounds like its class's prompt in the
    user's wording, and is far from LAION's default wording of it."""
    prompts = {label: TEXTS.index(p) for label, p in zip("az", class_prompts(["a", "z"], OWN_TEMPLATE))}
    text_table = np.eye(len(TEXTS))
    audio_table = text_table[[prompts["a"], prompts["z"]]]
    clips = [clip("0.wav", "dog", label="a"), clip("1.wav", "rain", label="z")]
    scores = evaluate_clap(
        TableModel(text_table),
        dataset(clips),
        table_front_end(audio_table),
        table_tokenizer,
        prompt_template=OWN_TEMPLATE,
    )
    assert scores["zero_shot_top1_accuracy"] == 1.0 and scores["zero_shot_mAP@10"] == 1.0


def test_without_a_label_list_zero_shot_scores_the_labelled_clips_among_their_labels():
    """Without a label list the classes are the labelled clips' labels, and a clip without one is left out
    of zero-shot (as the recipe does): skipping zero-shot for one unlabelled clip hid the score. Retrieval
    still scores every clip."""
    prompts = {label: TEXTS.index(p) for label, p in zip("az", class_prompts(["a", "z"]))}
    text_table = np.eye(len(TEXTS))
    # The unlabelled clip sounds like class "a": counted, it would add a target that does not exist.
    audio_table = text_table[[prompts["a"], prompts["a"], prompts["z"]]]
    clips = [clip("0.wav", "dog", label="a"), clip("1.wav", "rain"), clip("2.wav", "siren", label="z")]
    scores = evaluate_clap(
        TableModel(text_table), dataset(clips), table_front_end(audio_table), table_tokenizer
    )
    assert scores["n_classes"] == 2
    assert scores["zero_shot_top1_accuracy"] == 1.0 and scores["zero_shot_mAP@10"] == 1.0
    assert set(scores) >= {"text_to_audio_R@1", "audio_to_text_R@1"}


def test_zero_shot_is_skipped_when_no_clip_has_a_label():
    text_table = np.eye(len(TEXTS))
    clips = [clip("0.wav", "dog"), clip("1.wav", "rain")]
    scores = evaluate_clap(
        TableModel(text_table), dataset(clips), table_front_end(text_table[:2]), table_tokenizer
    )
    assert scores["text_to_audio_R@1"] == 1.0
    assert "n_classes" not in scores and not [key for key in scores if key.startswith("zero_shot")]


def test_a_clip_label_missing_from_the_label_list_is_named():
    text_table = np.eye(len(TEXTS))
    clips = [clip("0.wav", "dog", label="a"), clip("1.wav", "rain", label="q")]
    with pytest.raises(
        ValueError, match=r"clip labels \['q'\] are not in the zero-shot label list \['a', 'z'\]"
    ):
        evaluate_clap(
            TableModel(text_table),
            dataset(clips),
            table_front_end(text_table[:2]),
            table_tokenizer,
            labels=["a", "z"],
        )


def test_clips_go_through_the_audio_tower_in_batches_of_the_eval_batch_size():
    """--train.eval_batch_size limits how many clips the audio tower takes at once (its memory)."""
    text_table = np.eye(len(TEXTS))
    batches = []
    front_end = table_front_end(text_table[:3])

    def counting_front_end(waves, rng=None, train=False):
        batches.append(len(waves))
        return front_end(waves, rng=rng, train=train)

    clips = [clip(f"{i}.wav", TEXTS[i]) for i in range(3)]
    evaluate_clap(TableModel(text_table), dataset(clips), counting_front_end, table_tokenizer, batch_size=2)
    assert batches == [2, 1]


def test_audio_is_embedded_from_the_evaluation_crop_of_a_training_dataset():
    """A dataset in training mode (the recipe's training set, scored before and after) is embedded from the
    centre crop of each clip, every time, and is left in training mode."""
    whole = np.arange(10 * SR, dtype=np.float32)
    crop = SR
    data = CaptionDataset(
        [clip("long.wav", "dog")],
        table_tokenizer,
        sampling_rate=SR,
        crop_samples=crop,
        train=True,
        load=lambda path, sr, mono: (whole, sr),
    )
    seen = []

    def features(waves, rng=None, train=False):
        seen.extend(waves)
        return {
            "input_features": np.ones((len(waves), 4), np.float32),
            "is_longer": np.zeros((len(waves), 1)),
        }

    model = TableModel(np.eye(4))
    for epoch in (0, 3):
        data.set_epoch(epoch)
        embed_audio(model, data, features)
        assert data.train
    centre = (whole.size - crop) // 2
    assert len(seen) == 2
    for wave in seen:
        np.testing.assert_array_equal(wave, whole[centre : centre + crop])


class DropoutModel(TableModel):
    """A stand-in whose audio and text embeddings (`TableModel`'s) go through dropout: the embeddings
    themselves in eval mode, half of them zeroed at random in train mode."""

    def __init__(self, text_table: np.ndarray | None = None):
        super().__init__(np.eye(len(TEXTS)) if text_table is None else text_table)
        self.dropout = nn.Dropout(0.5)

    def get_audio_features(self, input_features, is_longer=None):
        return self.dropout(super().get_audio_features(input_features))

    def get_text_features(self, input_ids, attention_mask=None):
        return self.dropout(super().get_text_features(input_ids))


def test_audio_is_embedded_with_the_model_in_eval_mode_which_is_then_restored():
    """A model in training mode (the run's model, scored at each validation) is embedded with dropout off:
    the same clip gives the same embedding every time. The model is left in training mode."""
    audio_table = np.random.default_rng(0).normal(size=(3, 64)) + 2.0
    data = dataset([clip(f"{i}.wav", TEXTS[i]) for i in range(3)])
    model = DropoutModel()
    model.train()
    for _ in range(2):
        np.testing.assert_allclose(
            embed_audio(model, data, table_front_end(audio_table)), audio_table, rtol=1e-6
        )
        assert model.training and model.dropout.training


def test_text_is_embedded_with_the_model_in_eval_mode_which_is_then_restored():
    """The captions are embedded with dropout off: the same caption gives the same embedding every time.
    The recipe's "before" evaluation runs on the model it then fine-tunes: every submodule is left in the
    mode it was in (training, or eval where the task keeps one so), or fine-tuning ran without dropout."""
    text_table = np.random.default_rng(0).normal(size=(len(TEXTS), 64)) + 2.0
    model = DropoutModel(text_table)
    model.train()
    model.kept_in_eval = nn.Dropout(0.5)
    model.kept_in_eval.eval()
    tokens = table_tokenizer(TEXTS)
    for _ in range(2):
        np.testing.assert_allclose(embed_text(model, tokens), text_table, rtol=1e-6)
        assert model.training and model.dropout.training and not model.kept_in_eval.training
    clips = [clip(f"{i}.wav", TEXTS[i]) for i in range(3)]
    evaluate_clap(model, dataset(clips), table_front_end(text_table[:3]), table_tokenizer)
    assert model.training and model.dropout.training and not model.kept_in_eval.training


class ViewMeansModel(nn.Module):
    """A stand-in whose audio embedding shows what the front end gave it: the mean of each of the fusion
    front end's 4 views, then ``is_longer``."""

    def get_audio_features(self, input_features, is_longer=None):
        means = input_features.mean(axis=(2, 3))
        return mx.concatenate([means, is_longer.astype(mx.float32)[:, None]], axis=1)


def test_audio_is_embedded_from_the_front_ends_evaluation_views():
    """The fusion front end in training mode crops each third of a long clip at random and marks a random
    short clip as longer when none is: the before/after scores were noisy without a word. Embedded, every
    clip gets the views and the is_longer the front end gives with train=False (the middle of each third)."""
    from audiotrain.features.clap import ClapFeatureExtractor

    front_end = ClapFeatureExtractor.from_dict(
        {"truncation": "fusion", "sampling_rate": SR, "max_length_s": 1, "feature_size": 16,
         "fft_window_size": 256, "hop_length": 160, "frequency_min": 0, "frequency_max": 8000}
    )  # fmt: skip

    def sweep(seconds: float) -> np.ndarray:  # no two windows alike
        t = np.arange(int(seconds * SR)) / SR
        return np.sin(2 * np.pi * (100 + 400 * t) * t).astype(np.float32)

    for lengths in ([0.5, 3.3, 0.7], [0.5, 0.8]):  # with a long clip; short clips only
        clips = [clip(f"{i}.wav", TEXTS[i]) for i in range(len(lengths))]
        waves = {c.path: sweep(s) for c, s in zip(clips, lengths)}
        data = CaptionDataset(
            clips, table_tokenizer, sampling_rate=SR, crop_samples=None, train=False,
            load=lambda path, sr, mono, waves=waves: (waves[path], sr),
        )  # fmt: skip
        model = ViewMeansModel()
        got = embed_audio(model, data, front_end, batch_size=8)
        views = front_end([waves[c.path] for c in clips], train=False)
        want = model.get_audio_features(mx.array(views["input_features"]), mx.array(views["is_longer"]))
        np.testing.assert_allclose(got, np.array(want), rtol=1e-6, err_msg=str(lengths))
        assert got[:, -1].tolist() == [float(s > 1) for s in lengths]


def test_zero_shot_scores_the_labelled_clips_when_some_have_no_label():
    """Clips without a label are left out of zero-shot: each labelled clip is scored with its own audio (an
    unlabelled clip first shifted every score onto the clip before)."""
    prompts = {label: TEXTS.index(p) for label, p in zip("az", class_prompts(["a", "z"]))}
    text_table = np.eye(len(TEXTS))
    audio_table = text_table[[prompts["z"], prompts["a"], prompts["z"], prompts["a"]]]
    clips = [
        clip("0.wav", "dog"),
        clip("1.wav", "rain", label="a"),
        clip("2.wav", "siren", label="z"),
        clip("3.wav", "car"),
    ]
    scores = evaluate_clap(
        TableModel(text_table),
        dataset(clips),
        table_front_end(audio_table),
        table_tokenizer,
        labels=["a", "z"],
    )
    assert scores["n_classes"] == 2
    assert scores["zero_shot_top1_accuracy"] == 1.0 and scores["zero_shot_mAP@10"] == 1.0


def test_retrieval_is_scored_at_each_validation_but_not_in_the_sanity_check():
    # The sanity check's few batches before training are no validation: a full retrieval scoring there would
    # cost one more pass over the evaluation clips and send an untrained val_mAP@10 to the loggers at step 0.
    from types import SimpleNamespace

    from audiotrain.recipes.clap.evaluate import RetrievalEvaluation

    scored, logged = [], []
    callback = RetrievalEvaluation(lambda: scored.append(1) or {"mAP@10": 0.5}, keys=("mAP@10",))
    trainer = SimpleNamespace(
        sanity_checking=True,
        global_step=0,
        callback_metrics={},
        log_metrics=lambda metrics, step: logged.append((metrics, step)),
    )
    callback.on_validation_end(trainer, None)
    assert (scored, trainer.callback_metrics, logged) == ([], {}, [])
    trainer.sanity_checking, trainer.global_step = False, 3
    callback.on_validation_end(trainer, None)
    assert trainer.callback_metrics == {"val_mAP@10": 0.5} and logged == [({"val_mAP@10": 0.5}, 3)]
