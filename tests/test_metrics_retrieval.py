"""Retrieval and zero-shot scores against LAION-CLAP's definitions, computed here the slow way."""

import itertools

from audiotrain.metrics.retrieval import (
    audio_to_text_ranks,
    chance_scores,
    class_prompts,
    laion_audio_to_text_map10,
    retrieval_metrics,
    zero_shot_classification,
)

import numpy as np
import pytest


def _laion_reference(audio, text, n_caps):
    """LAION-CLAP's evaluate_clotho_audiocaps loops, transcribed to numpy (fixed captions per clip), except
    that audio→text sorts each clip's caption ranks (Mei et al.'s AP; LAION's code leaves them in caption
    order: see test_laion_code_audio_to_text_map_is_the_unsorted_variant)."""
    audio = audio / np.linalg.norm(audio, axis=1, keepdims=True)
    text = text / np.linalg.norm(text, axis=1, keepdims=True)
    n = audio.shape[0]
    logits_per_audio = audio @ text.T  # [n, n * n_caps], captions of clip d at d*n_caps ...
    logits_per_text = logits_per_audio.T
    out = {}
    preds = []
    for d in range(n_caps):
        logit = logits_per_text.reshape(n, n_caps, n)[:, d, :]
        ranking = np.argsort(-logit, axis=1)
        preds.append(np.where(ranking == np.arange(n)[:, None])[1])
    preds = np.concatenate(preds)
    for k in (1, 5, 10):
        out[f"text_to_audio_R@{k}"] = np.mean(preds < k)
    out["text_to_audio_mAP@10"] = np.mean(np.where(preds < 10, 1 / (preds + 1), 0.0))
    out["text_to_audio_mean_rank"] = preds.mean() + 1
    out["text_to_audio_median_rank"] = np.floor(np.median(preds)) + 1
    maps, best = [], []
    for d in range(n):
        ranking = np.argsort(-logits_per_audio[d])
        gt = np.arange(d * n_caps, d * n_caps + n_caps)
        all_pred = np.sort(np.where(ranking[None, :] == gt[:, None])[1])
        best.append(all_pred.min())
        filt = all_pred[all_pred < 10]
        maps.append(np.sum(np.arange(1, len(filt) + 1) / (filt + 1)) / n_caps)
    out["audio_to_text_mAP@10"] = np.mean(maps)
    for k in (1, 5, 10):
        out[f"audio_to_text_R@{k}"] = np.mean(np.array(best) < k)
    return out


@pytest.mark.parametrize("n_caps", [1, 5])
def test_matches_laion_reference_on_noisy_embeddings(rng, n_caps):
    n, dim = 40, 16
    audio = rng.normal(size=(n, dim))
    # Captions are noisy copies of their clip, so ranks spread over 0..n and every branch is exercised.
    text = np.repeat(audio, n_caps, axis=0) + 1.5 * rng.normal(size=(n * n_caps, dim))
    owner = np.repeat(np.arange(n), n_caps)
    ours = retrieval_metrics(audio, text, owner)
    ref = _laion_reference(audio, text, n_caps)
    for key, value in ref.items():
        assert ours[key] == pytest.approx(value, abs=1e-12), key
    # The data is neither perfect nor random: the scores must be strictly between the extremes.
    assert 0 < ours["text_to_audio_R@1"] < 1
    assert 0 < ours["audio_to_text_mAP@10"] < 1


def test_caption_order_does_not_matter(rng):
    n, n_caps, dim = 12, 3, 8
    audio = rng.normal(size=(n, dim))
    text = np.repeat(audio, n_caps, axis=0) + rng.normal(size=(n * n_caps, dim))
    owner = np.repeat(np.arange(n), n_caps)
    perm = rng.permutation(n * n_caps)
    a = retrieval_metrics(audio, text, owner)
    b = retrieval_metrics(audio, text[perm], owner[perm])
    assert a == pytest.approx(b)


def test_perfect_embeddings_score_one_with_unequal_caption_counts():
    audio = np.eye(4)
    owner = np.array([0, 0, 1, 2, 2, 2, 3])
    text = audio[owner]
    m = retrieval_metrics(audio, text, owner)
    for key in ("text_to_audio_R@1", "text_to_audio_mAP@10", "audio_to_text_R@1", "audio_to_text_mAP@10"):
        assert m[key] == pytest.approx(1.0), key
    assert m["text_to_audio_mean_rank"] == 1.0
    assert m["n_audio"] == 4 and m["n_text"] == 7


def test_hand_computed_ranks():
    # 3 clips on the axes; caption 0 (clip 0) points at clip 1, caption 1 (clip 1) at clip 1,
    # caption 2 (clip 2) halfway between clip 0 and clip 2 but a bit closer to clip 0.
    audio = np.eye(3)
    text = np.array([[0.1, 1.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.9]])
    owner = np.array([0, 1, 2])
    m = retrieval_metrics(audio, text, owner)
    # text→audio ranks: caption0 → clip0 rank 1, caption1 → rank 0, caption2 → clip2 rank 1.
    assert m["text_to_audio_R@1"] == pytest.approx(1 / 3)
    assert m["text_to_audio_mAP@10"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert m["text_to_audio_mean_rank"] == pytest.approx(1 + 2 / 3)
    # audio→text: clip0 prefers caption2 (cos 0.74) over its caption0 (0.10): rank 1; clip1: its caption1
    # (cos 1) beats caption0 (0.995): rank 0; clip2: only caption2 scores above 0: rank 0.
    assert m["audio_to_text_R@1"] == pytest.approx(2 / 3)
    assert m["audio_to_text_mAP@10"] == pytest.approx((1 / 2 + 1 + 1) / 3)


def test_the_median_rank_of_an_even_number_of_captions_is_floored_as_laion_clap_reports_it():
    # caption 0 finds its clip first, caption 1 second: ranks (0, 1), median 0.5, reported as rank 1, not 1.5
    m = retrieval_metrics(np.eye(2), np.array([[1.0, 0.0], [1.0, 0.1]]), np.array([0, 1]))
    assert m["text_to_audio_median_rank"] == 1.0
    # audio -> text alike: clip 0 finds its caption first, clip 1 second
    m = retrieval_metrics(np.array([[1.0, 0.0], [1.0, 0.1]]), np.eye(2), np.array([0, 1]))
    assert m["audio_to_text_median_rank"] == 1.0 and m["audio_to_text_mean_rank"] == 1.5


def test_audio_to_text_mean_rank_counts_each_clips_best_caption():
    """LAION's audio→text mean rank is over clips, of each clip's best-ranked own caption, not over every
    caption."""
    # Clip 0 has two captions, one of them pointing at clip 1 as clip 1's own caption does.
    owner = np.array([0, 0, 1])
    m = retrieval_metrics(np.eye(2), np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]), owner)
    # clip 0: its caption 0 first (rank 0), caption 1 tied with clip 1's caption, which goes above it
    # (rank 2); clip 1: caption 1 of clip 0 tied with its own caption and ranked above it (rank 1).
    assert m["audio_to_text_R@1"] == 0.5
    assert m["audio_to_text_mean_rank"] == 1.5  # best ranks 0 and 1, 1-based; every caption's: 2.0
    assert m["audio_to_text_median_rank"] == 1.0


def test_ties_count_against_the_query():
    audio = np.ones((5, 3))
    text = np.ones((5, 3))
    m = retrieval_metrics(audio, text, np.arange(5))
    assert m["text_to_audio_R@1"] == 0.0
    assert m["audio_to_text_R@1"] == 0.0
    assert m["text_to_audio_mean_rank"] == 5.0
    # Exactly equal scores at tolerance 0 (audio_to_text_ranks' default): the other caption is above.
    assert audio_to_text_ranks(np.array([[0.5, 0.5], [0.1, 0.2]]), np.array([0, 1]))[0].tolist() == [1]


@pytest.mark.parametrize("zero", ["audio", "text"])
def test_zero_embeddings_score_as_a_collapsed_model_not_a_perfect_one(zero):
    """All-zero embeddings (a dead tower) have no direction: every score is 0, a tie, which goes against the
    query. Normalised without a guard they were NaN, and text→audio R@1 read 1.0 and mAP@10 inf."""
    zeros, axes = np.zeros((3, 4)), np.eye(3, 4)
    audio, text = (zeros, axes) if zero == "audio" else (axes, zeros)
    m = retrieval_metrics(audio, text, np.arange(3))
    assert all(np.isfinite(v) for v in m.values()), m
    assert m["text_to_audio_R@1"] == 0.0 and m["audio_to_text_R@1"] == 0.0
    assert m["text_to_audio_mean_rank"] == 3.0 and m["audio_to_text_mean_rank"] == 3.0
    assert m["text_to_audio_mAP@10"] == pytest.approx(1 / 3)
    assert m["audio_to_text_mAP@10"] == pytest.approx(1 / 3)


def test_identical_inputs_that_embed_a_few_1e_8_apart_still_tie(rng):
    """Identical clips (or captions) embed a few 1e-8 apart by their place in a batch (float32 sums in another
    order): exact equality then decided their ranks, and the recipe's scores moved with its evaluation batch
    size for the same weights (text->audio mAP@10 0.49 in batches of 8, 0.56 in one of 16)."""
    clips = rng.normal(size=(6, 16)).astype(np.float32)
    clips[1] = clips[0]  # two clips that sound the same, each with its own caption saying so
    captions = clips.copy()
    exact = retrieval_metrics(clips, captions, np.arange(6))
    assert exact["text_to_audio_R@1"] == pytest.approx(4 / 6)  # the twins tie: each ranked below the other
    for noise_clip, noise_text in ((3e-8, 0.0), (0.0, 9e-8), (-5e-8, 2e-8)):
        audio, text = clips.copy(), captions.copy()
        audio[1] += noise_clip * np.sign(audio[1])
        text[0] += noise_text * np.sign(text[0])
        assert retrieval_metrics(audio, text, np.arange(6)) == exact
        # The coarser input sets the tolerance: float64 captions do not make float32 clips' noise count.
        assert retrieval_metrics(audio, text.astype(np.float64), np.arange(6)) == exact
    # A difference beyond float noise is no tie.
    audio = clips.copy()
    audio[1] = clips[0] + 1e-2 * rng.normal(size=16).astype(np.float32)
    assert retrieval_metrics(audio, captions, np.arange(6))["text_to_audio_R@1"] > exact["text_to_audio_R@1"]


def test_laion_audio_to_text_map_ties_within_float_noise_as_the_other_scores_do():
    """A caption shared by clips 0 and 1 embeds a few 1e-8 apart by its place in a batch: retrieval_metrics
    calls that a tie, but laion_audio_to_text_map10 ranked exactly, so it read 1.0 or 0.8889 by that noise
    (by --train.eval_batch_size), for the same model."""
    clips = np.eye(3, dtype=np.float32)
    captions = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0], [0.5, 0.5, 0]], dtype=np.float32)
    owner = np.array([0, 1, 2, 0, 1])
    exact = laion_audio_to_text_map10(clips, captions, owner)
    assert exact == pytest.approx(8 / 9)  # each twin caption is ranked below the other clip's (a tie)
    for noise in (3e-8, -3e-8):
        moved = captions.copy()
        moved[3, 0] += noise
        assert laion_audio_to_text_map10(clips, moved, owner) == exact
        assert retrieval_metrics(clips, moved, owner) == retrieval_metrics(clips, captions, owner)


def test_small_scores_tie_within_the_float_noise_of_unit_vectors():
    """A dot product of unit vectors is as noisy as its terms (up to 1), whatever its value: two scores near
    0.1 that are 5e-7 apart (float32 noise) still tie. A tolerance relative to the largest score (0.1) made
    them two scores again, and the ranks of a weak model depended on the batch size once more."""
    near = 0.1 + 5e-7
    clips = np.array([[near, 0.0, np.sqrt(1 - near**2)], [0.1, 0.1, np.sqrt(0.98)]], dtype=np.float32)
    captions = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=np.float32)
    m = retrieval_metrics(clips, captions, np.array([0, 1]))
    # caption 0 scores clip 0 at 0.1000005, clip 1 at 0.1: a tie, against the query (rank 1).
    assert m["text_to_audio_R@1"] == 0.5 and m["text_to_audio_mAP@10"] == pytest.approx(0.75)


def test_more_than_ten_captions_perfect_is_one():
    audio = np.eye(2)
    owner = np.array([0] * 12 + [1])
    m = retrieval_metrics(audio, audio[owner], owner)
    assert m["audio_to_text_mAP@10"] == pytest.approx(1.0)
    # LAION's code divides by the clip's caption count, so its 12 perfect captions (10 within the top 10)
    # make 10/12.
    assert laion_audio_to_text_map10(audio, audio[owner], owner) == pytest.approx((10 / 12 + 1) / 2)


def test_input_errors_name_the_problem():
    audio = np.eye(3)
    with pytest.raises(ValueError, match="have no caption"):
        retrieval_metrics(audio, audio[:2], [0, 1])
    with pytest.raises(ValueError, match="same dimension"):
        retrieval_metrics(audio, np.ones((3, 2)), [0, 1, 2])
    with pytest.raises(ValueError, match="one clip index per caption"):
        retrieval_metrics(audio, audio, [0, 1])
    with pytest.raises(ValueError, match="outside"):
        retrieval_metrics(audio, audio, [0, 1, 3])
    with pytest.raises(ValueError, match="NaN"):
        retrieval_metrics(np.full((3, 3), np.nan), audio, [0, 1, 2])
    with pytest.raises(ValueError, match="recall cut-offs must be >= 1"):
        retrieval_metrics(audio, audio, [0, 1, 2], ks=(0, 1))
    with pytest.raises(ValueError, match="at least one clip"):
        retrieval_metrics(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0, int))
    with pytest.raises(ValueError, match="integer clip indices"):
        retrieval_metrics(audio, audio, [0.0, 1.7, 2.0])


def test_zero_shot_accuracy_and_prompts(rng):
    labels = ["dog", "rain", "siren"]
    prompts = class_prompts(labels)
    assert prompts == ["This is a sound of dog.", "This is a sound of rain.", "This is a sound of siren."]
    assert class_prompts(["a"], "{} noise") == ["a noise"]
    classes = np.eye(3)
    targets = np.array([0, 1, 2, 2])
    audio = np.array([[1.0, 0.1, 0], [0.9, 1.0, 0], [0, 0, 1], [1.0, 0.5, 0.2]])
    m = zero_shot_classification(audio, classes, targets)
    # clip 3 is predicted "dog" (its true class "siren" is ranked last).
    assert m["zero_shot_top1_accuracy"] == pytest.approx(3 / 4)
    assert m["zero_shot_mAP@10"] == pytest.approx((1 + 1 + 1 + 1 / 3) / 4)
    assert "zero_shot_top5_accuracy" not in m  # only 3 classes
    # Top-k over exactly k classes is trivially 1 too; over k + 1 it is reported.
    five = zero_shot_classification(rng.normal(size=(4, 5)), np.eye(5), [0, 1, 2, 3])
    assert "zero_shot_top5_accuracy" not in five and "zero_shot_top1_accuracy" in five
    six = zero_shot_classification(rng.normal(size=(4, 6)), np.eye(6), [0, 1, 2, 5])
    assert "zero_shot_top5_accuracy" in six


def test_zero_shot_map_at_10_ignores_ranks_past_ten():
    """Over 11 classes a true class ranked 11th (0-based rank 10) adds nothing, as in LAION's mAP@10."""
    audio = np.linspace(1.0, 0.1, 11)[None, :]  # class 0 first, ..., class 10 last
    assert zero_shot_classification(audio, np.eye(11), [10], normalize=False)["zero_shot_mAP@10"] == 0.0
    assert zero_shot_classification(audio, np.eye(11), [9], normalize=False)["zero_shot_mAP@10"] == 0.1


def test_zero_shot_input_errors_name_the_problem():
    audio = np.eye(3)
    with pytest.raises(ValueError, match=r"targets must have shape \(3,\), got \(2,\)"):
        zero_shot_classification(audio, np.eye(3), [0, 1])
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\)"):
        zero_shot_classification(audio, np.eye(3), [0, 1, 3])
    # The clips' class names as targets said only "got dtype <U4", not how to make indices of them
    with pytest.raises(ValueError, match=r"got dtype <U4; class names\? pass each clip's index in the label"):
        zero_shot_classification(audio, np.eye(3), ["dog", "rain", "dog"])
    with pytest.raises(ValueError, match=r"got dtype object; class names\? pass each clip's index"):
        zero_shot_classification(audio, np.eye(3), np.array(["dog", 1, "dog"], dtype=object))
    # ...but numbers with a gap (an object column: 0, 1, None) are no class names: the hint misled there
    with pytest.raises(ValueError, match=r"must be class indices \(whole numbers\), got dtype object$"):
        zero_shot_classification(audio, np.eye(3), np.array([0, 1, None], dtype=object))


def test_zero_shot_prompts_that_embed_a_few_1e_8_apart_still_tie():
    """A label given twice embeds its two prompts a few 1e-8 apart; ranked with exact equality, float noise
    chose the winning class (top-1 2/3 where identical prompts give 1/3), where retrieval_metrics ties
    them, as the module promises for every score."""
    clips = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 1]], dtype=np.float32)
    prompts = clips.copy()  # classes 0 and 1 have the same prompt
    exact = zero_shot_classification(clips, prompts, [0, 1, 2], normalize=False)
    assert exact["zero_shot_top1_accuracy"] == pytest.approx(1 / 3)  # the twins tie, against the clip
    prompts[1, 0] = np.nextafter(np.float32(1), np.float32(2))
    assert zero_shot_classification(clips, prompts, [0, 1, 2], normalize=False) == exact


def test_zero_shot_input_errors_name_the_problem_not_a_truncated_score():
    """Float targets were truncated (0.7 read as class 0), a top-0 accuracy read 0 and a top-1.5 read the
    top-2 accuracy, and no clip gave NaN with numpy's "Mean of empty slice" warnings."""
    clips, prompts = np.eye(3, dtype=np.float32), np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match=r"zero_shot_classification: targets must be class indices .*\[0\.7"):
        zero_shot_classification(clips, prompts, [0.7, 1.0, 2.0])
    for ks in ((0,), (1.5,)):
        with pytest.raises(ValueError, match=r"top-k cut-offs must be whole numbers >= 1"):
            zero_shot_classification(clips, prompts, [0, 1, 2], ks=ks)
    assert "zero_shot_top1_accuracy" in zero_shot_classification(clips, prompts, [0.0, 1.0, 2.0], ks=(1.0,))
    with pytest.raises(ValueError, match="needs at least one clip"):
        zero_shot_classification(np.zeros((0, 3)), prompts, [])
    with pytest.raises(ValueError, match="recall cut-offs must be >= 1 and whole numbers"):
        retrieval_metrics(clips, prompts, [0, 1, 2], ks=(1.5,))  # was reported as R@1


def test_prompt_errors():
    with pytest.raises(ValueError, match="exactly one"):
        class_prompts(["a"], "no slot")
    with pytest.raises(ValueError, match="exactly one"):
        class_prompts(["a"], "{} or {}")
    with pytest.raises(ValueError, match="unique"):
        class_prompts(["a", "a"])
    # A label's surrounding spaces are not part of its prompt, so two labels that differ only by them would
    # be one prompt: both classes tied, every clip of either ranked below the other's prompt.
    assert class_prompts([" dog barking "]) == ["This is a sound of dog barking."]
    with pytest.raises(ValueError, match=r"unique .*duplicated: 'dog' and 'dog '$"):
        class_prompts(["dog", "rain", "dog "])
    with pytest.raises(ValueError, match="non-empty"):
        class_prompts(["a", " "])


@pytest.mark.parametrize(
    "template",
    ["A sound of {0}.", "{:>5} noise", "{{}} is {}", "{}", "no slot", "{} or {}", "{0} or {0}", "a {kind}"],
)
def test_class_prompts_take_exactly_the_templates_the_prompt_template_flag_takes(template):
    """`--dataset.prompt_template 'A sound of {0}.'` passed the flag's check, then the run loaded the model,
    wrote config.json into --out and died at the zero-shot prompts ("must contain exactly one '{}'"), its
    --out then refused to a corrected re-run. A template inserts the class once for both, or for neither."""
    from audiotrain.recipes.clap.config import ClapDatasetConfig
    from audiotrain.recipes.config_cli import SettingError

    try:
        ClapDatasetConfig(prompt_template=template)
        flag_takes = True
    except SettingError:
        flag_takes = False
    try:
        prompts = class_prompts(["dog"], template)
    except ValueError:
        assert not flag_takes
    else:
        assert flag_takes and prompts == [template.format("dog")]


def test_a_single_label_string_is_refused_not_split_into_letters():
    # class_prompts("dog") made one class per letter: "This is a sound of d.", "... o.", "... g."
    with pytest.raises(
        TypeError, match=r"labels must be a list of class names, got the string 'dog': pass \['dog'\]"
    ):
        class_prompts("dog")
    assert class_prompts(["dog"]) == ["This is a sound of dog."]


def test_chance_scores_are_what_random_embeddings_score_on_average(rng):
    counts = [1, 3, 2, 1, 5, 2, 1, 1]  # unequal captions per clip
    owner = np.repeat(np.arange(len(counts)), counts)
    trials = [
        {
            **retrieval_metrics(rng.normal(size=(len(counts), 4)), rng.normal(size=(owner.size, 4)), owner),
            **zero_shot_classification(
                rng.normal(size=(12, 4)), rng.normal(size=(7, 4)), rng.integers(0, 7, 12)
            ),
        }
        for _ in range(1500)
    ]
    chance = chance_scores(counts, n_classes=7)
    assert set(chance) == {k for k in trials[0] if "rank" not in k and not k.startswith("n_")}
    for key, level in chance.items():
        assert np.mean([t[key] for t in trials]) == pytest.approx(level, abs=0.02), key


def test_chance_scores_by_hand():
    two_by_two = chance_scores([2, 2], ks=(1, 5))  # 2 clips, 4 captions
    assert two_by_two["text_to_audio_R@1"] == 0.5 and two_by_two["text_to_audio_R@5"] == 1.0
    assert two_by_two["audio_to_text_R@1"] == 0.5  # 2 of the 4 captions are the clip's own
    assert two_by_two["text_to_audio_mAP@10"] == pytest.approx((1 + 1 / 2) / 2)
    assert chance_scores([1] * 20)["text_to_audio_R@5"] == 5 / 20
    # mAP@10 counts the first 10 places only: E[1 / (r + 1); r < 10] over 20 equally likely ranks r.
    assert chance_scores([1] * 20)["text_to_audio_mAP@10"] == pytest.approx(
        sum(1 / r for r in range(1, 11)) / 20
    )
    assert "zero_shot_top5_accuracy" not in chance_scores([1], n_classes=5)  # top-5 of 5 is left out
    with pytest.raises(ValueError, match="one count >= 1 per clip"):
        chance_scores([2, 0])


def _expected_ap10(m: int, n_text: int) -> float:
    """The mean audio→text AP@10 of a clip with `m` of `n_text` captions over every place its captions can
    take (all equally likely): the chance level, counted rather than from `chance_scores`' formula."""
    aps = []
    for places in itertools.combinations(range(n_text), m):  # (ascending)
        aps.append(sum((j + 1) / (r + 1) for j, r in enumerate(places) if r < 10) / min(m, 10))
    return float(np.mean(aps))


@pytest.mark.parametrize(
    "counts",
    [[2, 2, 2], [12, 1]],  # fewer than 10 captions; a clip with more than 10 (divided by 10, not 12)
)
def test_chance_audio_to_text_map_is_the_mean_over_every_placing_of_the_captions(counts):
    # By hand for [2, 2, 2]: 6 places, each taken by one of a clip's 2 captions with chance 2/6, where the
    # other is above with chance r/5: (1/3) * sum(1 + r/5)/(r + 1) for r < 6, / 2 = 79/150.
    expected = np.mean([_expected_ap10(m, sum(counts)) for m in counts])
    if counts == [2, 2, 2]:
        assert expected == pytest.approx(79 / 150)
    assert chance_scores(counts)["audio_to_text_mAP@10"] == pytest.approx(expected, rel=1e-12)


def test_bfloat16_mlx_embeddings_are_scored():
    """CLAP run with precision="bf16-true" gives bfloat16 embeddings; numpy has no bfloat16."""
    import mlx.core as mx

    emb = np.eye(3, 4)
    bf16 = mx.array(emb, dtype=mx.bfloat16)
    assert retrieval_metrics(bf16, bf16, mx.array([0, 1, 2])) == retrieval_metrics(emb, emb, [0, 1, 2])
    assert zero_shot_classification(bf16, bf16, mx.array([0, 1, 2])) == zero_shot_classification(
        emb, emb, [0, 1, 2]
    )


def test_laion_code_audio_to_text_map_is_the_unsorted_variant():
    """A user's case (3 clips x 5 captions) run through laion-clap's own code (torch) printed audio→text
    mAP@10 0.6529; the sorted (Mei et al.) value, which the recipe reports and selects by, is 0.4810."""
    rng = np.random.default_rng(1)
    audio = rng.standard_normal((3, 8))
    text = np.repeat(audio, 5, 0) * 0.3 + rng.standard_normal((15, 8))
    owner = np.repeat(np.arange(3), 5)
    assert retrieval_metrics(audio, text, owner)["audio_to_text_mAP@10"] == pytest.approx(0.4810, abs=1e-4)
    assert laion_audio_to_text_map10(audio, text, owner) == pytest.approx(0.6529, abs=1e-4)
    # Caption order is the order in caption_to_audio: listing them otherwise changes LAION's number only.
    order = np.array([0, 5, 10, 1, 6, 11, 2, 7, 12, 3, 8, 13, 4, 9, 14])
    shuffled = retrieval_metrics(audio, text[order], owner[order])["audio_to_text_mAP@10"]
    assert shuffled == pytest.approx(0.4810, abs=1e-4)


def test_one_cut_off_given_alone_is_taken_and_chance_refuses_what_the_scores_refuse():
    # ks=5 (one cut-off, not a tuple) was a raw "'int' object is not iterable"; chance_scores took ks=(0,) and
    # reported an "R@0" that retrieval_metrics refuses to compute.
    clips = np.eye(3)
    assert retrieval_metrics(clips, clips, [0, 1, 2], ks=5)["text_to_audio_R@5"] == 1.0
    assert chance_scores([1, 1, 1], ks=5)["text_to_audio_R@5"] == 1.0
    assert zero_shot_classification(clips, clips, [0, 1, 2], ks=1)["zero_shot_top1_accuracy"] == 1.0
    # A cut-off held in a 0-d array (np.array(5), a config's value read into numpy) was a raw TypeError
    assert retrieval_metrics(clips, clips, [0, 1, 2], ks=np.array(5))["text_to_audio_R@5"] == 1.0
    assert chance_scores([1, 1, 1], ks=np.array([1, 5]))["text_to_audio_R@5"] == 1.0
    for ks in ((0,), (1.5,), ("5",), True, np.array(0)):
        with pytest.raises(ValueError, match="recall cut-offs must be >= 1 and whole numbers"):
            chance_scores([1, 1, 1], ks=ks)
        with pytest.raises(ValueError, match="recall cut-offs must be >= 1 and whole numbers"):
            retrieval_metrics(clips, clips, [0, 1, 2], ks=ks)
