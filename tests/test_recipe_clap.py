"""The CLAP task (loss, freezing, BatchNorm, logit-scale clamp) and the recipe's command line, end to end."""

import dataclasses
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

from audiotrain import Trainer
from audiotrain.datasets.caption_demo import DEMO_VERSION
from audiotrain.models.clap import ClapAudioConfig, ClapConfig, ClapModel, ClapTextConfig
from audiotrain.recipes.clap import data as clap_data
from audiotrain.recipes.clap import train as clap_train
from audiotrain.recipes.clap.task import (
    LOGIT_SCALE_MAX,
    AdamWMatricesOnly,
    CLAPTaskConfig,
    CLAPTrainModule,
    clap_contrastive_loss,
)

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from child_processes import run_as_main
from clap_folders import tiny_checkpoint, tone_folder
from exactness import same_values
from mlx.utils import tree_flatten
from reference import require

from tests import deadlines


def tiny_config() -> ClapConfig:
    return ClapConfig(
        text_config=ClapTextConfig(
            vocab_size=64,
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=24,
            hidden_dropout_prob=0.0,  # deterministic, quick-to-fit tests
            attention_probs_dropout_prob=0.0,
        ),
        audio_config=ClapAudioConfig(
            spec_size=32,
            num_mel_bins=8,
            window_size=4,
            patch_embeds_hidden_size=8,
            depths=(1, 1),
            num_attention_heads=(1, 2),
            hidden_size=16,
            hidden_dropout_prob=0.0,
        ),
        projection_dim=8,
    )


def tiny_batch(seed: int, b: int = 4) -> dict:
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, 64, size=(b, 12)).astype(np.int32)
    ids[:, 0] = 0
    return {
        "input_features": mx.array(rng.normal(size=(b, 1, 100, 8)).astype(np.float32)),
        "is_longer": mx.zeros((b, 1), dtype=mx.bool_),
        "input_ids": mx.array(ids),
        "attention_mask": mx.ones((b, 12), dtype=mx.int32),
    }


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parity
def test_loss_matches_laion_cliploss_in_torch(rng):
    torch = require("torch")
    audio, text = _unit(rng.normal(size=(6, 5))), _unit(rng.normal(size=(6, 5)))
    scale = math.exp(2.3)
    loss, metrics = clap_contrastive_loss(mx.array(audio), mx.array(text), mx.array(scale))
    a, t = torch.tensor(audio), torch.tensor(text)
    # LAION-CLAP ClipLoss (mlp_loss=False): both directions with logit_scale_a.
    logits_per_audio = scale * a @ t.T
    logits_per_text = scale * t @ a.T
    labels = torch.arange(6)
    ref = (
        torch.nn.functional.cross_entropy(logits_per_audio, labels)
        + torch.nn.functional.cross_entropy(logits_per_text, labels)
    ) / 2
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    assert metrics["audio_accuracy"].item() == pytest.approx(
        (logits_per_audio.argmax(1) == labels).float().mean().item()
    )
    assert metrics["text_accuracy"].item() == pytest.approx(
        (logits_per_text.argmax(1) == labels).float().mean().item()
    )


def test_loss_extremes():
    e = mx.array(np.eye(4, dtype=np.float32))
    loss, m = clap_contrastive_loss(e, e, mx.array(100.0))
    assert loss.item() < 1e-6 and m["audio_accuracy"].item() == 1.0 and m["text_accuracy"].item() == 1.0
    shifted = mx.array(np.roll(np.eye(4, dtype=np.float32), 1, axis=0))
    loss, m = clap_contrastive_loss(e, shifted, mx.array(100.0))
    assert loss.item() > 50 and m["audio_accuracy"].item() == 0.0 and m["text_accuracy"].item() == 0.0


def test_padding_rows_are_left_out_of_the_loss_as_if_the_batch_held_the_real_rows_alone(rng):
    """Under data parallel a rank's shard is padded with repeats of other clips (2 ranks of 5 clips gather
    [0, 2, 4 | 1, 3, 0]): the repeat scored as its original's negative raised the loss (ln 6 against ln 5)."""
    audio = _unit(rng.normal(size=(5, 8))).astype(np.float32)
    text = _unit(audio + 0.6 * rng.normal(size=(5, 8))).astype(np.float32)  # some right, some wrong
    gathered = [0, 2, 4, 1, 3, 0]
    valid = mx.array([True, True, True, True, True, False])
    scale = mx.array(12.0)

    def loss_and_metrics(a, t, s, mask=None):
        loss, metrics = clap_contrastive_loss(a, t, s, mask)
        return loss, {k: v for k, v in metrics.items() if k != "logit_scale"}

    real = [0, 2, 4, 1, 3]  # the real rows, in the gathered order
    expected, expected_metrics = loss_and_metrics(mx.array(audio[real]), mx.array(text[real]), scale)
    padded_a, padded_t = mx.array(audio[gathered]), mx.array(text[gathered])
    loss, metrics = loss_and_metrics(padded_a, padded_t, scale, valid)
    unmasked, _ = loss_and_metrics(padded_a, padded_t, scale)
    assert abs(unmasked.item() - expected.item()) > 0.05  # (what the padding did without the mask)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert {k: v.item() for k, v in metrics.items()} == pytest.approx(
        {k: v.item() for k, v in expected_metrics.items()}, rel=1e-6
    )
    assert 0 < expected_metrics["audio_accuracy"].item() < 1  # (the accuracies are not trivially 0 or 1)
    # A padding row's audio need not be a copy of its original's (it may be computed again, in another
    # precision): it is no caption's candidate even when it is closer to a real caption than that caption's
    # own clip is. (Captions that all find their clip, so that one taken by the padding row would show.)
    close_text = _unit(audio + 0.1 * rng.normal(size=(5, 8))).astype(np.float32)
    near = audio[gathered].copy()
    near[5] = _unit(close_text[[0]] + 0.01)[0]
    real_loss, real_metrics = loss_and_metrics(mx.array(audio[real]), mx.array(close_text[real]), scale)
    near_loss, near_metrics = loss_and_metrics(mx.array(near), mx.array(close_text[gathered]), scale, valid)
    assert real_metrics["text_accuracy"].item() == 1.0
    assert near_loss.item() == pytest.approx(real_loss.item(), rel=1e-6)
    assert {k: v.item() for k, v in near_metrics.items()} == pytest.approx(
        {k: v.item() for k, v in real_metrics.items()}, rel=1e-6
    )

    # The gradients: the real rows' are those of the loss over the real rows alone; the padding's are 0.
    grad = mx.grad(lambda a, t, s: loss_and_metrics(a, t, s, valid)[0], argnums=(0, 1, 2))
    ga, gt, gs = grad(padded_a, padded_t, scale)
    ea, et, es = mx.grad(lambda a, t, s: loss_and_metrics(a, t, s)[0], argnums=(0, 1, 2))(
        mx.array(audio[real]), mx.array(text[real]), scale
    )
    np.testing.assert_allclose(np.array(ga)[:5], np.array(ea), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.array(gt)[:5], np.array(et), rtol=1e-5, atol=1e-7)
    assert np.array(ga)[5].tolist() == [0.0] * 8 and np.array(gt)[5].tolist() == [0.0] * 8
    assert gs.item() == pytest.approx(es.item(), rel=1e-5)

    # No padding: the same numbers as without a mask.
    everyone = mx.ones((5,), dtype=mx.bool_)
    same, same_metrics = loss_and_metrics(mx.array(audio), mx.array(text), scale, everyone)
    plain, plain_metrics = loss_and_metrics(mx.array(audio), mx.array(text), scale)
    assert same.item() == pytest.approx(plain.item(), rel=1e-6)
    assert {k: v.item() for k, v in same_metrics.items()} == {k: v.item() for k, v in plain_metrics.items()}


def _trainable(task):
    return {k for k, _ in tree_flatten(task.trainable_parameters())}


def test_a_model_set_to_checkpoint_its_activations_keeps_it_in_a_task_of_the_default_config():
    """`model.gradient_checkpointing_enable()` then `CLAPTrainModule(model)` (transformers' order) trained
    without checkpointing: the task's default gradient_checkpointing=False turned it off, unsaid. It is only
    turned on by the config, as transformers' Trainer does."""
    model = ClapModel(tiny_config())
    model.gradient_checkpointing_enable()
    CLAPTrainModule(model, CLAPTaskConfig())
    assert model.is_gradient_checkpointing
    other = ClapModel(tiny_config())
    CLAPTrainModule(other, CLAPTaskConfig(gradient_checkpointing=True))
    assert other.is_gradient_checkpointing
    assert all(stage.gradient_checkpointing for stage in other.audio_model.audio_encoder.layers)


def test_freezing_options():
    model = ClapModel(tiny_config())
    task = CLAPTrainModule(model, CLAPTaskConfig())
    names = _trainable(task)
    assert "clap.logit_scale_a" in names and "clap.logit_scale_t" not in names
    assert not any("running_" in n for n in names)
    assert any(n.startswith("clap.audio_model.") for n in names)

    task = CLAPTrainModule(model, CLAPTaskConfig(freeze_audio=True))
    names = _trainable(task)
    assert not any(n.startswith(("clap.audio_model.", "clap.audio_projection.")) for n in names)
    assert any(n.startswith("clap.text_model.encoder.layer.0.") for n in names)

    task = CLAPTrainModule(model, CLAPTaskConfig(freeze_text_layers=1, freeze_audio_stages=1))
    names = _trainable(task)
    assert not any(
        n.startswith(("clap.text_model.embeddings.", "clap.text_model.encoder.layer.0.")) for n in names
    )
    assert any(n.startswith("clap.text_model.encoder.layer.1.") for n in names)
    assert not any(n.startswith("clap.audio_model.audio_encoder.layers.0.") for n in names)
    assert any(n.startswith("clap.audio_model.audio_encoder.layers.1.") for n in names)

    # All of the tiny model's 2 RoBERTa layers and 2 Swin stages (one more is refused).
    task = CLAPTrainModule(model, CLAPTaskConfig(freeze_text_layers=2, freeze_audio_stages=2))
    names = _trainable(task)
    assert not any(
        n.startswith(("clap.text_model.encoder.layer.", "clap.audio_model.audio_encoder.layers."))
        for n in names
    )
    assert any(n.startswith("clap.text_projection.") for n in names)
    for name in ("freeze_text_layers", "freeze_audio_stages"):
        with pytest.raises(ValueError, match=f"--task.{name} 3: the model has 2 "):
            CLAPTrainModule(model, CLAPTaskConfig(**{name: 3}))

    task = CLAPTrainModule(model, CLAPTaskConfig(freeze_text=True, train_logit_scale=False))
    names = _trainable(task)
    assert not any(n.startswith(("clap.text_", "clap.logit_scale")) for n in names)
    total, trainable = task.parameter_counts()
    assert 0 < trainable < total

    with pytest.raises(ValueError, match="nothing to train"):
        CLAPTaskConfig(freeze_audio=True, freeze_text=True, train_logit_scale=False)


def test_a_quantized_clap_model_fine_tunes_with_its_packed_weights_frozen(tmp_path):
    # nn.quantize'd towers (QLoRA's base) given to CLAPTrainModule: its freezing unfroze everything first,
    # the packed uint32 weights included, and fit refused "CLAPTrainModule: clap.text_model.encoder.layer.0
    # .attention.self.query.weight (uint32) ... are trainable ... after unfreeze()", which the user never
    # called.
    model = ClapModel(tiny_config())
    nn.quantize(
        model,
        group_size=32,
        bits=4,
        class_predicate=lambda _, m: isinstance(m, nn.Linear) and m.weight.shape[-1] % 32 == 0,
    )
    quantized = [path for path, m in model.named_modules() if isinstance(m, nn.QuantizedLinear)]
    assert "text_model.encoder.layer.0.output.dense" in quantized
    task = CLAPTrainModule(model, CLAPTaskConfig())
    names = _trainable(task)
    assert not any(f"clap.{path}.weight" in names for path in quantized)
    assert "clap.text_model.encoder.layer.0.output.dense.scales" in names  # (float: may train)
    trainer = Trainer(
        max_epochs=1, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path
    )
    trainer.fit(task, [tiny_batch(0), tiny_batch(1)])
    assert math.isfinite(trainer.callback_metrics["train_loss"])


def test_batchnorm_stays_in_eval_mode_and_scales_are_clamped(tmp_path):
    model = ClapModel(tiny_config())
    model.logit_scale_a = mx.array(LOGIT_SCALE_MAX + 0.5)  # as if a previous step overshot
    task = CLAPTrainModule(model, CLAPTaskConfig(learning_rate=1e-3))
    task.train()
    bns = [m for _, m in model.named_modules() if isinstance(m, nn.BatchNorm)]
    assert bns and not any(bn.training for bn in bns)
    assert model.text_model.training
    stats_before = {k: np.array(v) for k, v in tree_flatten(model.parameters()) if "running_" in k}

    batches = [tiny_batch(i) for i in range(3)]
    trainer = Trainer(
        max_epochs=1, default_root_dir=tmp_path, enable_progress_bar=False, enable_checkpointing=False
    )
    trainer.fit(task, batches)
    assert 0.0 <= model.logit_scale_a.item() <= LOGIT_SCALE_MAX
    stats_after = {k: np.array(v) for k, v in tree_flatten(model.parameters()) if "running_" in k}
    for k, v in stats_before.items():
        np.testing.assert_array_equal(v, stats_after[k], err_msg=k)
    # With batchnorm_eval=False the statistics follow the batches.
    task = CLAPTrainModule(model, CLAPTaskConfig(batchnorm_eval=False))
    task.train()
    assert all(bn.training for bn in bns)


def test_negative_scale_is_clamped_to_zero_after_the_step(tmp_path):
    model = ClapModel(tiny_config())
    model.logit_scale_a = mx.array(-0.5)
    # A tiny learning rate: the step itself barely moves the scale, so only the clamp can bring it to 0.
    task = CLAPTrainModule(model, CLAPTaskConfig(learning_rate=1e-6, freeze_audio=True, freeze_text=True))
    assert _trainable(task) == {"clap.logit_scale_a"}
    trainer = Trainer(
        max_steps=1, default_root_dir=tmp_path, enable_progress_bar=False, enable_checkpointing=False
    )
    trainer.fit(task, [tiny_batch(0)])
    assert model.logit_scale_a.item() == 0.0


def test_a_scale_above_a_temperature_of_100_is_clamped_to_log_100_after_the_step(tmp_path):
    """LAION's cap: logit_scale_a at most ln(100), a temperature of 100 (written out: the tests that compare
    with `LOGIT_SCALE_MAX` follow any cap)."""
    model = ClapModel(tiny_config())
    model.logit_scale_a = mx.array(5.0)
    task = CLAPTrainModule(model, CLAPTaskConfig(learning_rate=1e-6, freeze_audio=True, freeze_text=True))
    trainer = Trainer(
        max_steps=1, default_root_dir=tmp_path, enable_progress_bar=False, enable_checkpointing=False
    )
    trainer.fit(task, [tiny_batch(0)])
    assert model.logit_scale_a.item() == pytest.approx(math.log(100.0))


def test_weight_decay_skips_vectors():
    params = {"w": mx.ones((3, 3)), "b": mx.ones((3,)), "s": mx.array(1.0)}
    opt = AdamWMatricesOnly(learning_rate=0.1, weight_decay=0.5)
    zeros = {k: mx.zeros_like(v) for k, v in params.items()}
    new = opt.apply_gradients(zeros, params)
    assert np.allclose(np.array(new["w"]), 1 - 0.1 * 0.5)
    assert np.array_equal(np.array(new["b"]), np.ones(3)) and new["s"].item() == 1.0


@pytest.mark.parity
def test_optimizer_steps_match_torch_adamw():
    """LAION trains with torch.optim.AdamW, bias correction included (MLX's AdamW leaves it off by default,
    which makes the first steps ~3x larger); weight decay only on matrices."""
    torch = require("torch")
    task = CLAPTrainModule(ClapModel(tiny_config()), CLAPTaskConfig(learning_rate=1e-2, weight_decay=0.1))
    optimizer = task.configure_optimizers().optimizer
    rng = np.random.default_rng(0)
    w0, b0 = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=4).astype(np.float32)
    params = {"w": mx.array(w0), "b": mx.array(b0)}
    tw, tb = torch.nn.Parameter(torch.tensor(w0)), torch.nn.Parameter(torch.tensor(b0))
    reference = torch.optim.AdamW(
        [{"params": [tw], "weight_decay": 0.1}, {"params": [tb], "weight_decay": 0.0}],
        lr=1e-2,
        betas=(0.9, 0.999),
        eps=1e-8,
    )
    for _ in range(4):
        gw, gb = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=4).astype(np.float32)
        params = optimizer.apply_gradients({"w": mx.array(gw), "b": mx.array(gb)}, params)
        tw.grad, tb.grad = torch.tensor(gw), torch.tensor(gb)
        reference.step()
        np.testing.assert_allclose(np.array(params["w"]), tw.detach().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.array(params["b"]), tb.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_first_trainer_step_has_the_size_of_the_learning_rate(tmp_path):
    """The closed-form first AdamW step: m/sqrt(v) after bias correction is g/|g|, so a parameter moves by
    the learning rate (3.16x that without bias correction), also through the Trainer's guarded update."""
    model = ClapModel(tiny_config())
    task = CLAPTrainModule(model, CLAPTaskConfig(learning_rate=1e-2, freeze_audio=True, freeze_text=True))
    before = model.logit_scale_a.item()
    trainer = Trainer(
        max_steps=1, default_root_dir=tmp_path, enable_progress_bar=False, enable_checkpointing=False
    )
    trainer.fit(task, [tiny_batch(0)])
    assert abs(model.logit_scale_a.item() - before) == pytest.approx(1e-2, rel=1e-3)


@pytest.mark.parametrize("precision", ["bf16-mixed", "bf16-true"])
@pytest.mark.slow
def test_bf16_training_compiles_and_evaluates(precision, tmp_path):
    """bf16 with compile used to fail in the first step with "IndexError: _Map_base::at" (an MLX compile bug
    triggered by the bf16 logit scale cast to float32 both in the loss and in the returned metrics)."""
    from audiotrain.recipes.clap.evaluate import embed_text

    mx.random.seed(0)
    model = ClapModel(tiny_config())
    task = CLAPTrainModule(model, CLAPTaskConfig(learning_rate=1e-3))
    trainer = Trainer(
        max_epochs=1,
        precision=precision,
        compile=True,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_checkpointing=False,
    )
    trainer.fit(task, [tiny_batch(0), tiny_batch(1)], [tiny_batch(2)])
    assert np.isfinite(trainer.history["train_loss"]).all() and np.isfinite(trainer.history["val_loss"]).all()
    batch = tiny_batch(3)
    tokens = {"input_ids": np.array(batch["input_ids"]), "attention_mask": np.array(batch["attention_mask"])}
    emb = embed_text(model, tokens)  # numpy has no bfloat16: the retrieval scores need float32
    assert emb.dtype == np.float32 and np.isfinite(emb).all()


def test_a_batch_with_a_token_id_beyond_the_vocabulary_stops_before_the_compiled_step(tmp_path):
    """Inside the compiled step an id beyond the embedding table could only give NaN (or, unchecked, read past
    the table and crash the process): the task checks each batch the loader made, on the host, first."""
    model = ClapModel(tiny_config())
    task = CLAPTrainModule(model, CLAPTaskConfig(learning_rate=1e-3))
    good, bad = tiny_batch(0), tiny_batch(1)
    ids = np.array(bad["input_ids"])
    ids[2, 5] = 64  # == text_config.vocab_size
    bad["input_ids"] = mx.array(ids)
    before = dict(tree_flatten(model.parameters()))

    def fit(train, val):
        trainer = Trainer(
            max_epochs=1, compile=True, default_root_dir=tmp_path, enable_progress_bar=False,
            enable_checkpointing=False, num_sanity_val_steps=0,
        )  # fmt: skip
        trainer.fit(task, train, val)

    message = r"input_ids\[2, 5\] is the token id 64, .*text_config.vocab_size 64"
    with pytest.raises(IndexError, match=message):
        fit([bad], None)
    assert all(mx.array_equal(v, before[k]) for k, v in tree_flatten(model.parameters()))  # no step ran
    with pytest.raises(IndexError, match=message):
        fit([good], [bad])  # validation too


def test_the_training_loss_scores_the_pairs_at_the_learned_temperature():
    """The logits are the cosine similarities times exp(logit_scale_a) (LAION's temperature, 14.3 for a fresh
    model), not times logit_scale_a itself; clap_contrastive_loss takes the scale already exponentiated."""
    model = ClapModel(tiny_config())
    model.logit_scale_a = mx.array(2.0)
    task = CLAPTrainModule(model, CLAPTaskConfig(learning_rate=1e-3))
    task.eval()
    batch = tiny_batch(0)
    loss, metrics = task.compute_loss(batch)
    assert metrics["logit_scale"].item() == pytest.approx(math.exp(2.0), rel=1e-6)
    audio = np.array(model.get_audio_features(batch["input_features"], batch["is_longer"]), np.float64)
    text = np.array(model.get_text_features(batch["input_ids"], batch["attention_mask"]), np.float64)
    logits = math.exp(2.0) * audio @ text.T

    def cross_entropy(rows):  # of each row's own column
        return np.mean(np.log(np.exp(rows).sum(axis=1)) - np.diag(rows))

    assert loss.item() == pytest.approx((cross_entropy(logits) + cross_entropy(logits.T)) / 2, rel=1e-5)


def test_compute_loss_leaves_out_the_rows_its_batch_marks_invalid():
    """The recipe's loader marks a data-parallel shard's padding rows with `valid` False: the task's loss is
    then that of the real rows alone (in one process the gather is the batch itself)."""
    task = CLAPTrainModule(ClapModel(tiny_config()), CLAPTaskConfig())
    task.eval()
    batch = tiny_batch(0, b=3)
    padded = {k: v[mx.array([0, 1, 2, 0])] for k, v in batch.items()}
    loss = task.compute_loss({**padded, "valid": mx.array([True, True, True, False])})[0].item()
    assert loss == pytest.approx(task.compute_loss(batch)[0].item(), rel=1e-5)
    assert abs(task.compute_loss(padded)[0].item() - loss) > 0.01  # (what the padding would do unmarked)


def test_a_warmup_starts_the_schedule_of_a_run_of_known_length(tmp_path):
    """--task.warmup_steps with the run's total known (as it always is in the recipe): the first step moves a
    parameter by the first warmup rate, a quarter of the peak over 4 warmup steps (see
    test_first_trainer_step_has_the_size_of_the_learning_rate for the closed-form step)."""
    model = ClapModel(tiny_config())
    config = CLAPTaskConfig(
        learning_rate=1e-2, warmup_steps=4, total_steps=10, freeze_audio=True, freeze_text=True
    )
    task = CLAPTrainModule(model, config)
    before = model.logit_scale_a.item()
    trainer = Trainer(
        max_steps=1, default_root_dir=tmp_path, enable_progress_bar=False, enable_checkpointing=False
    )
    trainer.fit(task, [tiny_batch(0)])
    assert abs(model.logit_scale_a.item() - before) == pytest.approx(1e-2 / 4, rel=1e-3)


def _scheduled_rates(task, steps) -> list[float]:
    """The learning rate at each of `steps` of the optimizer `task.configure_optimizers()` makes."""
    optimizer = task.configure_optimizers().optimizer
    schedule = optimizer._schedulers.get("learning_rate", lambda step: optimizer.learning_rate)
    return [float(schedule(mx.array(step))) for step in steps]


def test_the_cosine_schedule_ends_at_min_learning_rate_and_holds_it():
    task = CLAPTrainModule(
        ClapModel(tiny_config()), CLAPTaskConfig(learning_rate=1e-3, min_learning_rate=1e-4, total_steps=10)
    )
    assert task.configure_optimizers().lr_schedule_name == "warmup_cosine"
    assert _scheduled_rates(task, [0, 5, 10, 20]) == pytest.approx([1e-3, 5.5e-4, 1e-4, 1e-4], rel=1e-5)


def _fit_with_a_warmup_of_2(tmp_path, batches: int, **bounds) -> tuple[CLAPTrainModule, Trainer]:
    """A frozen tiny task with a peak rate of 1e-2 and no total_steps, fitted on `batches` batches an epoch
    by a Trainer bounded by `bounds` (max_steps or max_epochs)."""
    task = CLAPTrainModule(
        ClapModel(tiny_config()),
        CLAPTaskConfig(learning_rate=1e-2, warmup_steps=2, freeze_audio=True, freeze_text=True),
    )
    trainer = Trainer(
        default_root_dir=tmp_path, enable_progress_bar=False, enable_checkpointing=False, **bounds
    )
    trainer.fit(task, [tiny_batch(0)] * batches)
    return task, trainer


def test_without_total_steps_the_schedule_spans_the_trainers_max_steps(tmp_path):
    """Unset, total_steps is the whole run (its help says): a library user's Trainer(max_steps=4) with a
    warmup of 2 gets a cosine that reaches 0 at step 4, not a warmup held at its peak."""
    task, _ = _fit_with_a_warmup_of_2(tmp_path, batches=4, max_steps=4)
    assert task.configure_optimizers().lr_schedule_name == "warmup_cosine"
    assert _scheduled_rates(task, [0, 1, 3, 4]) == pytest.approx([5e-3, 1e-2, 5e-3, 0.0], abs=1e-9)


def test_an_epochs_only_fit_decays_over_its_epochs(tmp_path):
    """Unset, total_steps is the whole run also where the Trainer is bounded by epochs alone (a library
    user's Trainer(max_epochs=2), 2 batches an epoch): the rate the fit used at each epoch's last step is
    the cosine's over its 4 steps (the peak after the warmup of 2, then half of it), not the peak held."""
    _, trainer = _fit_with_a_warmup_of_2(tmp_path, batches=2, max_epochs=2)
    assert trainer.history["learning_rate"] == pytest.approx([1e-2, 5e-3], rel=1e-5)


def test_a_warmup_without_a_known_length_then_holds_the_peak():
    """No total_steps and no Trainer to tell the run's length: the rate warms up, then stays at the peak."""
    model = ClapModel(tiny_config())
    task = CLAPTrainModule(model, CLAPTaskConfig(learning_rate=1e-3, warmup_steps=4))
    assert task.configure_optimizers().lr_schedule_name == "warmup_constant"
    assert _scheduled_rates(task, [0, 2, 4, 1000]) == pytest.approx([2.5e-4, 7.5e-4, 1e-3, 1e-3], rel=1e-5)
    task = CLAPTrainModule(model, CLAPTaskConfig(learning_rate=1e-3))
    assert task.configure_optimizers().lr_schedule_name == "constant"
    assert _scheduled_rates(task, [0, 1000]) == pytest.approx([1e-3, 1e-3], rel=1e-6)


def test_weight_decay_setting_reaches_the_optimizer_with_bias_correction():
    """--task.weight_decay decays the matrices (only: LAION's rule) of the optimizer the task trains with."""
    task = CLAPTrainModule(ClapModel(tiny_config()), CLAPTaskConfig(learning_rate=0.1, weight_decay=0.5))
    optimizer = task.configure_optimizers().optimizer
    assert optimizer.bias_correction is True
    params = {"w": mx.ones((3, 3)), "b": mx.ones((3,))}
    new = optimizer.apply_gradients({k: mx.zeros_like(v) for k, v in params.items()}, params)
    assert np.allclose(np.array(new["w"]), 1 - 0.1 * 0.5)
    assert np.array_equal(np.array(new["b"]), np.ones(3))
    # The class's own default, as torch.optim.AdamW (MLX's AdamW leaves it off).
    assert AdamWMatricesOnly(learning_rate=0.1).bias_correction is True


def test_a_batch_of_one_pair_trains_in_the_compiled_step(tmp_path):
    """A last batch of one clip (a loader of the user's own that keeps it) scores loss 0 and accuracies 1 and
    steps on. Its two accuracies used to be the same expression to MLX's compiler (argmax over a 1x1 matrix
    and over its transpose), which failed the compiled step with "IndexError: _Map_base::at"."""
    mx.random.seed(0)
    task = CLAPTrainModule(ClapModel(tiny_config()), CLAPTaskConfig(learning_rate=1e-3))
    trainer = Trainer(
        max_epochs=1, compile=True, default_root_dir=tmp_path, enable_progress_bar=False,
        enable_checkpointing=False,
    )  # fmt: skip
    trainer.fit(task, [tiny_batch(0), tiny_batch(1, b=1)])
    assert trainer.global_step == 2
    assert trainer.history["train_audio_accuracy"] and trainer.history["train_text_accuracy"]


def test_fine_tuning_lowers_the_loss_on_a_fixed_batch(tmp_path):
    mx.random.seed(0)
    model = ClapModel(tiny_config())
    task = CLAPTrainModule(model, CLAPTaskConfig(learning_rate=2e-3))
    batch = tiny_batch(1, b=6)
    task.eval()
    before = task.compute_loss(batch)[0].item()
    task.train()  # fit trains in the modes it is given, as Lightning's
    trainer = Trainer(
        max_steps=40,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_checkpointing=False,
        compile=False,
    )
    trainer.fit(task, [batch])
    task.eval()
    after = task.compute_loss(batch)[0].item()
    assert after < 0.7 * before
    assert json.loads(json.dumps(trainer.history))["train_audio_accuracy"]


def test_a_task_over_a_model_loaded_for_inference_trains_in_train_mode(tmp_path):
    """A checkpoint loads in eval mode, and fit keeps the modes it is given (as Lightning's): the task puts
    the model in train mode itself, BatchNorm kept in eval mode (the fine-tuning default, batchnorm_eval)."""
    model = ClapModel(tiny_config())
    model.eval()  # as load_weights / CLAP.from_pretrained leave it
    task = CLAPTrainModule(model, CLAPTaskConfig())
    modes = {type(m).__name__: m.training for _, m in task.named_modules()}
    assert task.training and not any(
        m.training for _, m in task.named_modules() if isinstance(m, nn.BatchNorm)
    )
    assert any(training for name, training in modes.items() if "Dropout" in name)


# ---------------------------------------------------------------------------------------------- the CLI
@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One tiny offline-demo run of the recipe, shared by the tests that inspect its outputs."""
    import contextlib
    import io

    from audiotrain.recipes.clap import parse_config, run

    tmp = tmp_path_factory.mktemp("clap_cli")
    argv = [
        "--out", str(tmp / "run"),
        "--demo.folder", str(tmp / "cache"),
        "--demo.clips", "12",
        "--demo.width", "16",
        "--dataset.max_tokens", "24",
        "--dataset.num_workers", "0",
        "--train.epochs", "2",
        "--train.batch_size", "4",
        "--train.compile", "false",
        "--train.progress_bar", "false",
    ]  # fmt: skip
    printed, said = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(said):
        result = run(parse_config(argv), argv)
    return {**result, "argv": argv, "said": said.getvalue()}, printed.getvalue()


def test_cli_offline_demo_end_to_end(demo_run):
    from audiotrain.models.clap import load_pretrained

    result, printed = demo_run
    out, said = result["run_dir"], result["said"]
    # Results on stdout, notes and diagnostics on stderr, as the chord recipe splits them.
    assert "OFFLINE DEMO" in said and "retrieval on the evaluation clips" in printed
    assert "retrieval before fine-tuning:" in printed and "run folder: " in printed
    assert "(offline demo: a tiny model trained from scratch on synthetic sounds)" in printed
    n_eval = len(result["eval_set"].clips)
    assert f"note: only {n_eval} evaluation clips: text→audio R@k is k/{n_eval} by chance" in said
    for diagnostic in ("OFFLINE DEMO", "demo data: ", "\nmodel: ", "note: ", "training on "):
        assert diagnostic not in printed and diagnostic.strip() in said, diagnostic

    for name in ("config.json", "data_report.txt", "history.json", "retrieval.json", "plots/loss.png",
                 "plots/accuracy.png", "plots/retrieval.png", "checkpoints/last/model.safetensors",
                 "hf_model/config.json", "hf_model/model.safetensors", "hf_model/tokenizer.json",
                 "hf_model/preprocessor_config.json"):  # fmt: skip
        assert (out / name).is_file(), name
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == [0, 1] and len(history["val_loss"]) == 2
    assert len(history["val_mAP@10"]) == 2 and all(0 <= v <= 1 for v in history["val_mAP@10"])
    assert (out / "plots" / "retrieval_per_epoch.png").is_file()
    assert "best checkpoint by val_mAP@10" in printed
    # "after" scores the exported weights: the best checkpoint, exactly as its validation did.
    assert max(history["val_mAP@10"]) == pytest.approx(result["after"]["mAP@10"])
    scores = json.loads((out / "retrieval.json").read_text())
    for when in ("before", "after"):
        for key in ("text_to_audio_R@1", "audio_to_text_mAP@10", "zero_shot_top1_accuracy"):
            assert 0.0 <= scores[when][key] <= 1.0
    assert scores["before"] != scores["after"]  # training changed the model
    config = json.loads((out / "config.json").read_text())
    assert config["demo"] is True and config["config"]["task"]["learning_rate"] == 3e-4
    assert config["config"]["task"]["batchnorm_eval"] is False

    # The exported folder reloads into the same model.
    model, _ = load_pretrained(out / "hf_model")
    trained = result["task"].clap
    trained.eval()
    ids = mx.array(result["eval_set"].input_ids[:3])
    mask = mx.array(result["eval_set"].attention_mask[:3])
    np.testing.assert_allclose(
        np.array(model.get_text_features(ids, mask)),
        np.array(trained.get_text_features(ids, mask)),
        atol=1e-6,
    )
    assert model.logit_scale_a.item() == pytest.approx(trained.logit_scale_a.item())


def test_run_returns_what_its_type_says(demo_run):
    # A finished run's result holds every key of `ClapRunResult` (tests/typing/clap_run_result.py reads
    # them as a user's code does), each of the type it names.
    from audiotrain.datasets.captions import CaptionDataset
    from audiotrain.recipes.clap import ClapRunResult
    from audiotrain.recipes.clap.task import CLAPTrainModule

    result = {k: v for k, v in demo_run[0].items() if k not in ("argv", "said")}  # (the fixture's own)
    assert set(result) == ClapRunResult.__required_keys__ | ClapRunResult.__optional_keys__
    types = {"run_dir": Path, "history": dict, "task": CLAPTrainModule, "interrupted": bool, "before": dict,
             "after": dict, "weights": str, "export": Path, "eval_set": CaptionDataset}  # fmt: skip
    assert {k: type(v).__name__ for k, v in result.items() if not isinstance(v, types[k])} == {}
    assert all(isinstance(v, float) for v in result["after"].values())


def test_the_same_seed_gives_the_same_run(demo_run, tmp_path):
    import contextlib
    import io

    from audiotrain.recipes.clap import parse_config, run

    import mlx.core as mx

    first, _ = demo_run
    mx.random.normal((3,))  # move the global generator on
    argv = [a if a != str(first["run_dir"]) else str(tmp_path / "again") for a in first["argv"]]
    with contextlib.redirect_stdout(io.StringIO()):
        second = run(parse_config(argv), argv)
    a, b = dict(first["history"]), dict(second["history"])
    a.pop("time"), b.pop("time")
    assert same_values(a, b)  # bitwise on the CPU
    assert same_values(first["after"], second["after"])


@pytest.mark.slow
@pytest.mark.parity
def test_exported_demo_model_loads_in_transformers_with_the_same_outputs(demo_run):
    torch = require("torch")
    transformers = require("transformers")
    result, _ = demo_run
    trained, eval_set = result["task"].clap, result["eval_set"]
    trained.eval()
    reference = transformers.ClapModel.from_pretrained(result["run_dir"] / "hf_model").eval()
    ids, mask = eval_set.input_ids[:3], eval_set.attention_mask[:3]
    wave = [eval_set[i]["waveform"] for i in range(3)]
    from audiotrain.features.clap import ClapFeatureExtractor

    feats = ClapFeatureExtractor.from_pretrained(result["run_dir"] / "hf_model")(wave, train=False)
    with torch.no_grad():
        text = reference.get_text_features(
            input_ids=torch.tensor(ids).long(), attention_mask=torch.tensor(mask).long()
        )
        audio = reference.get_audio_features(
            input_features=torch.tensor(feats["input_features"]),
            is_longer=torch.tensor(feats["is_longer"])[:, None],
        )
    text, audio = (
        torch.nn.functional.normalize(getattr(x, "pooler_output", x), dim=-1).numpy() for x in (text, audio)
    )
    ours_text = np.array(trained.get_text_features(mx.array(ids), mx.array(mask)))
    ours_audio = np.array(
        trained.get_audio_features(mx.array(feats["input_features"]), mx.array(feats["is_longer"]))
    )
    np.testing.assert_allclose(ours_text, text, atol=1e-5)
    np.testing.assert_allclose(ours_audio, audio, atol=1e-5)


def test_cli_fine_tunes_a_hugging_face_checkpoint(tmp_path, capsys):
    """--pretrained with a local HF folder (the tiny random ClapModel fixture, .bin weights) on a side-by-side
    folder: pretrained weights are used, freezing holds, and the export keeps the checkpoint's files."""
    import shutil

    from audiotrain.models.clap import load_pretrained
    from audiotrain.recipes.clap import main

    import soundfile as sf

    checkpoint = tiny_checkpoint(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    for i, freq in enumerate([220, 440, 880, 1760, 330, 660]):
        sr = (16000, 44100, 48000)[i % 3]
        t = np.arange(int(sr * (1 + 0.4 * i))) / sr
        sf.write(data / f"tone{i}.wav", (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr)
        (data / f"tone{i}.txt").write_text(f"a sine tone at {freq} hertz\na steady beep number {i}\n")
    (data / "orphan.wav").write_bytes(b"")  # reported and skipped, not fatal

    out = tmp_path / "run"
    argv = ["--data", str(data), "--pretrained", str(checkpoint), "--out", str(out), "--train.epochs", "2",
            "--train.batch_size", "2", "--train.compile", "false", "--train.progress_bar", "false",
            "--dataset.eval_fraction", "0.34", "--dataset.num_workers", "0",
            "--task.freeze_text_layers", "1", "--task.learning_rate", "1e-3"]  # fmt: skip
    assert main(argv) == 0
    report = (out / "data_report.txt").read_text()
    assert "6 clips" in report and "orphan.wav: missing caption" in report
    for name in (
        "vocab.json",
        "merges.txt",
        "tokenizer.json",
        "preprocessor_config.json",
        "model.safetensors",
    ):
        assert (out / "hf_model" / name).is_file(), name
    assert json.loads((out / "hf_model" / "preprocessor_config.json").read_text())["max_length_s"] == 2.5

    original, _ = load_pretrained(checkpoint)
    tuned, _ = load_pretrained(out / "hf_model")
    before = dict(tree_flatten(original.parameters()))
    after = dict(tree_flatten(tuned.parameters()))
    frozen = [k for k in before if k.startswith(("text_model.embeddings.", "text_model.encoder.layer.0."))]
    assert frozen and all(np.array_equal(np.array(before[k]), np.array(after[k])) for k in frozen)
    moved = [
        k for k in before if k.startswith("audio_projection.") and not np.array_equal(before[k], after[k])
    ]
    assert moved, "the audio projection should have been fine-tuned"
    config = json.loads((out / "config.json").read_text())
    assert config["demo"] is False and config["config"]["task"]["batchnorm_eval"] is True

    # A checkpoint of a run on a Hugging Face checkpoint exports too (architecture and files from --pretrained).
    last = out / "checkpoints" / "last"
    assert main(["export", "--checkpoint", str(last), "--out", str(tmp_path / "exported")]) == 0
    exported, _ = load_pretrained(tmp_path / "exported")
    assert _same_weights(exported, _model_arrays(last))
    assert (tmp_path / "exported" / "tokenizer.json").is_file()
    # The model folder the run trained from (a transformers folder: the same file names an export writes) is
    # never replaced by --overwrite: its weights were the user's only copy of the base model.
    weights = (checkpoint / "pytorch_model.bin").read_bytes()
    held = sorted(p.name for p in checkpoint.iterdir())
    capsys.readouterr()
    assert main(["export", "--checkpoint", str(last), "--out", str(checkpoint), "--overwrite"]) == 2
    assert "the model folder this run trained from" in capsys.readouterr().err
    assert sorted(p.name for p in checkpoint.iterdir()) == held
    assert (checkpoint / "pytorch_model.bin").read_bytes() == weights
    # ... and neither is another model folder transformers saved, even one holding only export-named files.
    other = tmp_path / "other_model"
    shutil.copytree(tmp_path / "exported", other)
    (other / "audiotrain_export.json").unlink()
    before_bytes = (other / "model.safetensors").read_bytes()
    assert main(["export", "--checkpoint", str(last), "--out", str(other), "--overwrite"]) == 2
    assert "without audiotrain_export.json, the file an export writes" in capsys.readouterr().err
    assert (other / "model.safetensors").read_bytes() == before_bytes


def test_cli_help_and_errors(tmp_path, capsys):
    from audiotrain.recipes.clap import build_parser, main

    text = build_parser().format_help()
    for flag in ("--data", "--pretrained", "--out", "--task.freeze_audio", "--task.freeze_text_layers",
                 "--train.batch_size", "--dataset.eval_split", "--dataset.zero_shot_labels", "--config",
                 "export --checkpoint"):  # fmt: skip
        assert flag in text, flag
    assert "retrieval scores (val_mAP@10, R@k) use every clip" in " ".join(text.split())
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (
        main(["--pretrained", str(tmp_path / "missing"), "--data", str(empty), "--out", str(tmp_path / "o")])
        == 2
    )
    assert "missing" in capsys.readouterr().err
    assert main(["--pretrained", str(tmp_path / "missing"), "--out", str(tmp_path / "o2")]) == 2
    assert "--data FOLDER is required" in capsys.readouterr().err and not (tmp_path / "o2").exists()
    status = main(["--train.batch_size", "1"])
    assert status == 2
    assert "--train.batch_size) must be an integer >= 2" in capsys.readouterr().err


#: Settings the model's sizes bound, and the words of their refusal (the demo model: 2 text layers, 2 stages).
MODEL_BOUND_SETTINGS = {
    "freeze_text_layers": (["--task.freeze_text_layers", "99"], "the model has 2 RoBERTa layers; pass 0..2"),
    "freeze_audio_stages": (["--task.freeze_audio_stages", "3"], "the model has 2 Swin stages; pass 0..2"),
    "min_learning_rate": (
        ["--task.min_learning_rate", "1"],
        "above the learning rate 0.0003 (the demo's default",
    ),
}


@pytest.mark.parametrize("name", sorted(MODEL_BOUND_SETTINGS))
def test_a_setting_the_demo_model_bounds_is_refused_before_the_training_processes_start(
    name, tmp_path, capfd
):
    """Refused by the command the user ran: each of the 2 processes it started refused it once more."""
    from audiotrain.recipes.clap import main

    flags, words = MODEL_BOUND_SETTINGS[name]
    argv = ["--train.processes", "2", "--demo.folder", str(tmp_path / "demo"), "--out", str(tmp_path / "run")]
    assert main([*argv, *flags]) == 2
    err = capfd.readouterr().err
    assert words in err and "training in 2 processes" not in err, err
    assert not (tmp_path / "run").exists()


def test_freezing_more_layers_than_a_pretrained_folder_has_is_refused_before_the_processes_start(
    tmp_path, capfd
):
    """Its config.json gives the counts, without building the model."""
    from audiotrain.recipes.clap import main

    checkpoint = tiny_checkpoint(tmp_path)
    layers = json.loads((checkpoint / "config.json").read_text())["text_config"]["num_hidden_layers"]
    data = tone_folder(tmp_path / "data")
    argv = ["--pretrained", str(checkpoint), "--data", str(data), "--out", str(tmp_path / "run"),
            "--train.processes", "2", "--task.freeze_text_layers", str(layers + 1)]  # fmt: skip
    assert main(argv) == 2
    err = capfd.readouterr().err
    assert f"--task.freeze_text_layers {layers + 1}: the model has {layers} RoBERTa layers" in err, err
    assert "training in 2 processes" not in err and not (tmp_path / "run").exists()


def test_the_help_says_the_freezing_ranges_depend_on_the_model():
    from audiotrain.recipes.clap import build_parser

    text = " ".join(build_parser().format_help().split())
    assert "(0 to the model's count: 4 in LAION's HTSAT checkpoints, 2 in the demo model)" in text
    assert "(0 to the model's count: 12 in LAION's checkpoints, 2 in the demo model)" in text


def test_split_choice(tmp_path):
    from pathlib import Path

    from audiotrain.datasets.captions import CaptionedClip, CaptionFolder, CaptionFolderError
    from audiotrain.recipes.clap import ClapDatasetConfig
    from audiotrain.recipes.clap.data import choose_splits

    def folder(splits):
        clips = [
            CaptionedClip(Path(f"/x/{i}.wav"), f"{i}.wav", ("c",), split=s) for i, s in enumerate(splits)
        ]
        return CaptionFolder(root=tmp_path, layout="test", clips=clips)

    cfg = ClapDatasetConfig()
    train, held, how = choose_splits(folder(["train"] * 3 + ["test"] * 2 + ["validation"]), cfg, seed=0)
    assert [c.split for c in train] == ["train"] * 3 and [c.split for c in held] == ["validation"]
    train, held, how = choose_splits(folder([None] * 10), cfg, seed=0)
    assert len(held) == 2 and len(train) == 8 and "held out" in how
    train, held, how = choose_splits(folder([None] * 4 + ["test"]), cfg, seed=0)
    assert len(train) == 4 and [c.split for c in held] == ["test"]
    with pytest.raises(CaptionFolderError, match="--dataset.eval_split 'dev' has no clips; splits present"):
        choose_splits(folder(["train", "test"]), ClapDatasetConfig(eval_split="dev"), seed=0)
    with pytest.raises(CaptionFolderError, match=r"--dataset.test_split 'tset' has no clips; .* train \(3\)"):
        choose_splits(folder(["train"] * 3 + ["test"]), ClapDatasetConfig(test_split="tset"), seed=0)
    # The training split as the evaluation split (an overfitting check): all its clips, both ways.
    train, held, how = choose_splits(
        folder(["train"] * 4 + ["test"]), ClapDatasetConfig(eval_split="Train"), 0
    )
    assert len(train) == 4 and held == train and "left out: 1 in split 'test'" in how


def _split_folder(root, splits):
    from pathlib import Path

    from audiotrain.datasets.captions import CaptionedClip, CaptionFolder

    clips = [CaptionedClip(Path(f"/x/{i}.wav"), f"{i}.wav", ("c",), split=s) for i, s in enumerate(splits)]
    return CaptionFolder(root=root, layout="test", clips=clips)


def test_the_default_evaluation_split_is_not_the_training_split_unless_no_other_is_left(tmp_path):
    """--dataset.train_split dev (an alias of validation; Clotho's training split is 'development') with
    --dataset.eval_split unset trained and scored the validation clips, without the warning an explicit
    --dataset.eval_split naming the training split gets: the default choice now passes the training split
    over, and takes it (with that warning) only where no other split is left."""
    from audiotrain.recipes.clap import ClapDatasetConfig
    from audiotrain.recipes.clap.data import choose_splits, default_eval_split

    # (as the scan names Clotho's splits: 'evaluation' is the split 'test')
    clotho = _split_folder(tmp_path, ["development"] * 6 + ["validation"] * 3 + ["test"] * 2)
    cfg = ClapDatasetConfig(train_split="dev")
    train, held, how = choose_splits(clotho, cfg, 0)
    assert {c.split for c in train} == {"validation"} and {c.split for c in held} == {"test"}
    assert how == "splits 'validation' / 'test'; left out: 6 in split 'development'"
    assert cfg.same_split_warning(default_eval_split(clotho, cfg)) is None
    # No other split left (the test split is scored after training, never chosen to evaluate).
    for splits, test_split in (["validation"] * 4, None), (["validation"] * 4 + ["test"] * 2, "test"):
        folder = _split_folder(tmp_path, splits)
        cfg = ClapDatasetConfig(train_split="dev", test_split=test_split)
        train, held, how = choose_splits(folder, cfg, 0)
        assert len(train) == 4 and held == train and "both trains and evaluates" in how
        assert cfg.same_split_warning(default_eval_split(folder, cfg)) == (
            "warning: --dataset.train_split dev leaves the folder no other split to evaluate on: validation, "
            "the before/after retrieval scores and the best checkpoint are all measured on clips it trains on "
            "(an overfitting check, not a measure of how it does on new clips)"
        )
    assert ClapDatasetConfig().same_split_warning(default_eval_split(clotho, ClapDatasetConfig())) is None


def test_named_splits_without_the_training_split_are_an_error(tmp_path, capsys):
    """Clotho's development/validation/evaluation or a mistyped --dataset.train_split used to train on every
    clip, validation and test clips included."""
    from audiotrain.datasets.captions import CaptionFolderError
    from audiotrain.recipes.clap import ClapDatasetConfig, main
    from audiotrain.recipes.clap.data import choose_splits

    import soundfile as sf

    data = tmp_path / "clotho"
    data.mkdir()
    rows = ["file_name,caption_1,caption_2,split"]
    for i, split in enumerate(["development"] * 4 + ["validation"] * 2 + ["evaluation"] * 2):
        sf.write(data / f"c{i}.wav", np.zeros(1600, np.float32), 16000)
        rows.append(f"c{i}.wav,a sound number {i},another caption,{split}")
    (data / "metadata.csv").write_text("\n".join(rows) + "\n")
    argv = ["--data", str(data), "--out", str(tmp_path / "run"), "--demo.folder", str(tmp_path / "cache"),
            "--dataset.num_workers", "0", "--train.progress_bar", "false"]  # fmt: skip
    assert main(argv) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "--dataset.train_split 'train' names none of the folder's splits" in line
    assert "development (4 clips), test (2), validation (2)" in line
    assert "--dataset.train_split development" in line

    typo = _split_folder(tmp_path, ["train"] * 4 + ["test"] * 2)
    with pytest.raises(CaptionFolderError, match=r"'trian' names none .*test \(2 clips\), train \(4\)"):
        choose_splits(typo, ClapDatasetConfig(train_split="trian"), seed=0)
    # Clips without a split beside test/ train only with --dataset.train_split left at its default.
    unsplit = _split_folder(tmp_path, [None] * 4 + ["test"] * 2)
    with pytest.raises(
        CaptionFolderError,
        match=r"'developement' names none .*\(test \(2 clips\), 4 clips without a split\).* leave "
        "--dataset.train_split at 'train'",
    ):
        choose_splits(unsplit, ClapDatasetConfig(train_split="developement"), seed=0)
    clotho = _split_folder(tmp_path, ["development"] * 4 + ["validation"] * 2 + ["test"] * 2)
    train, held, how = choose_splits(clotho, ClapDatasetConfig(train_split="development"), seed=0)
    assert {c.split for c in train} == {"development"} and {c.split for c in held} == {"validation"}
    assert "left out: 2 in split 'test'" in how


def test_a_test_split_is_never_trained_on_when_the_evaluation_clips_are_held_out_of_the_training_split(
    tmp_path,
):
    """train/ and test/ with --dataset.test_split test and no validation split: the evaluation clips are held
    out of split 'train' alone. Drawn from every clip, the run would train and choose its checkpoint on the
    clips it then scores as held out (another split, as 'holdout', would be trained on too)."""
    from audiotrain.recipes.clap import ClapDatasetConfig
    from audiotrain.recipes.clap.data import choose_splits

    folder = _split_folder(tmp_path, ["train"] * 6 + ["test"] * 2 + ["holdout"])
    train, held, how = choose_splits(folder, ClapDatasetConfig(test_split="test"), seed=0)
    assert sorted(c.name for c in train + held) == [f"{i}.wav" for i in range(6)]
    assert len(held) == 1 and {c.split for c in train + held} == {"train"}
    assert how == (
        "split 'train' with 1 clip held out at random (seed 0); scored after training: split 'test'; "
        "left out: 1 in split 'holdout'"
    )


def test_clips_left_out_by_the_split_choice_are_counted(tmp_path):
    from audiotrain.recipes.clap import ClapDatasetConfig
    from audiotrain.recipes.clap.data import choose_splits

    folder = _split_folder(tmp_path, ["train"] * 3 + ["validation"] * 2 + [None] * 2)
    train, held, how = choose_splits(folder, ClapDatasetConfig(), seed=0)
    assert len(train) == 3 and len(held) == 2
    assert how == "splits 'train' / 'validation'; left out: 2 without a split"
    # The layout "clips without a split + a test/ folder" still trains on the clips without a split.
    train, held, how = choose_splits(
        _split_folder(tmp_path, [None] * 4 + ["test"] * 2), ClapDatasetConfig(), 0
    )
    assert len(train) == 4 and len(held) == 2 and "left out" not in how


class _StandInClips:
    """`make_loader`'s view of a `CaptionDataset`: clip i's waveform and token ids are filled with i, and its
    seed is (seed, 0, i, 0), as the dataset gives it."""

    def __init__(self, n: int, seed: int = 0):
        self.n, self.seed = n, seed

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        ids = np.full(6, i, np.int32)
        return {
            "waveform": np.full(8, i, np.float32),
            "input_ids": ids,
            "attention_mask": ids,
            "seed": np.array([self.seed, 0, i, 0], np.uint64),
        }


def _recording_front_end(calls: list):
    """A stand-in CLAP front end that appends (clip, one draw from the clip's generator, train) per clip."""

    def features(waves, rng, train):
        calls.extend((int(w[0]), int(r.integers(1 << 30)), train) for w, r in zip(waves, rng))
        return {
            "input_features": np.zeros((len(waves), 1, 4, 4), np.float32),
            "is_longer": np.zeros((len(waves), 1), bool),
        }

    return features


def _clip_order(loader) -> list[int]:
    return [int(i) for batch in loader for i in np.array(batch["input_ids"])[:, 0]]


def test_validation_batches_are_whole_so_a_short_last_batch_cannot_skew_val_loss():
    """A last validation batch of one clip has contrastive loss 0 and accuracy 1: with more clips than one
    batch, the partial last batch is left out of val_loss (the retrieval scores use every clip)."""
    from audiotrain.recipes.clap.data import make_loader, validation_note

    def sizes(n, batch_size):
        loader = make_loader(
            _StandInClips(n), _recording_front_end([]), batch_size, train=False, seed=0, workers=0
        )
        return [int(b["input_ids"].shape[0]) for b in loader]

    assert sizes(9, 4) == [4, 4] and sizes(5, 4) == [4] and sizes(8, 4) == [4, 4]
    assert sizes(3, 4) == [3]  # fewer clips than one batch: one batch of all of them
    assert "use 8 of the 9 evaluation clips" in validation_note(9, 4)
    assert validation_note(8, 4) is None and validation_note(3, 4) is None


def test_accumulation_says_it_is_not_a_larger_contrastive_batch(tmp_path, capsys):
    """--train.accumulate_grad_batches 4 with batches of 2 averages 4 losses over 1 negative each, which is
    not the loss of one batch of 8 (the numpy reference below): the run and --help say so, since a user reaches
    for accumulation to get CLIP's large contrastive batch on a small machine."""
    from audiotrain.recipes.clap import build_parser
    from audiotrain.recipes.clap.data import accumulation_note

    rng = np.random.default_rng(0)
    audio = _unit(rng.normal(size=(8, 16)))
    text = _unit(audio + 0.5 * rng.normal(size=(8, 16)))

    def numpy_infonce(a, t, scale=1 / 0.07):
        logits = scale * a @ t.T
        rows = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        cols = logits - np.log(np.exp(logits).sum(0, keepdims=True))
        return -(np.trace(rows) + np.trace(cols)) / (2 * len(a))

    def recipe_loss(a, t):
        return float(clap_contrastive_loss(mx.array(a), mx.array(t), mx.array(1 / 0.07))[0])

    one_batch = recipe_loss(audio, text)
    micro = np.mean([recipe_loss(audio[i : i + 2], text[i : i + 2]) for i in range(0, 8, 2)])
    assert one_batch == pytest.approx(numpy_infonce(audio, text), rel=1e-5)
    assert abs(micro - one_batch) > 0.05  # the two are different losses

    note = accumulation_note(2, 4)
    assert "not against all 8" in note and "1 negative each" in note and "--train.batch_size" in note
    assert "not against all 16" in accumulation_note(2, 4, processes=2)  # the ranks' batches are gathered
    assert accumulation_note(8, 1) is None
    help_text = " ".join(build_parser().format_help().split())
    assert "not a larger contrastive batch" in help_text


def test_training_captions_several_clips_share_are_named_as_false_negatives(tmp_path):
    """Three training clips captioned "a dog barks" (class names as captions): in a batch holding two of them
    the contrastive loss scores each as the other's negative, so even embeddings that match every clip to its
    caption score a loss well above 0. The run names such captions before training."""
    from audiotrain.datasets.captions import CaptionDataset, scan_caption_folder
    from audiotrain.models.clap import ClapTokenizer
    from audiotrain.recipes.clap.train import shared_training_captions_note

    root = tone_folder(tmp_path / "tones", clips=5)
    for i in range(3):
        (root / f"tone{i}.txt").write_text("a dog barks\n")
    clips = scan_caption_folder(root, sampling_rate=16000).clips
    tokenizer = ClapTokenizer.train(
        [c for clip in clips for c in clip.captions], vocab_size=300, max_length=24
    )
    dataset = CaptionDataset(clips, tokenizer, sampling_rate=16000, crop_samples=None, train=True)
    note = shared_training_captions_note(dataset)
    assert note.startswith("note: 1 training caption is shared by more than one training clip ('a dog barks'")
    assert "3 clips" in note and "false negative" in note

    for i in range(3):
        (root / f"tone{i}.txt").write_text(f"a dog barks, take {i}\n")
    clips = scan_caption_folder(root, sampling_rate=16000).clips
    dataset = CaptionDataset(clips, tokenizer, sampling_rate=16000, crop_samples=None, train=True)
    assert shared_training_captions_note(dataset) is None

    # What the note warns of: clips 0 and 1 share a caption, whose two rows embed alike.
    audio = _unit(np.eye(4, 8) + 0.01)
    text = audio.copy()
    text[1] = text[0]
    loss, metrics = clap_contrastive_loss(mx.array(audio), mx.array(text), mx.array(100.0))
    assert float(loss) > 1.0 and float(metrics["text_accuracy"]) < 1.0


def test_training_batches_are_shuffled_and_validation_batches_keep_the_clips_order():
    """Unshuffled, every epoch would put the same clips together, so each clip would always meet the same
    in-batch negatives, and a folder sorted by name (often by class) would make batches of one class."""
    from audiotrain.recipes.clap.data import make_loader

    train = make_loader(_StandInClips(8), _recording_front_end([]), 4, train=True, seed=0, workers=0)
    orders = []
    for epoch in range(2):
        train.set_epoch(epoch)
        orders.append(_clip_order(train))
    assert all(sorted(order) == list(range(8)) for order in orders)
    assert list(range(8)) not in orders and orders[0] != orders[1]
    val = make_loader(_StandInClips(8), _recording_front_end([]), 4, train=False, seed=0, workers=0)
    assert _clip_order(val) == list(range(8))


def test_each_clip_is_cut_by_its_own_seeded_generator_and_validation_asks_for_evaluation_views():
    """The front end gets one generator per clip, seeded with the clip's (seed, epoch, index): a fusion
    model's random views then differ from clip to clip and epoch to epoch, and stay the same whatever batch
    or rank the clip lands in. Validation batches ask the front end for its deterministic evaluation views
    (train=False), as the retrieval scores do."""
    from audiotrain.recipes.clap.data import make_loader

    for train in (True, False):
        calls = []
        loader = make_loader(
            _StandInClips(8, seed=7), _recording_front_end(calls), 4, train, seed=0, workers=0
        )
        list(loader)
        assert sorted(clip for clip, _, _ in calls) == list(range(8))
        for clip, draw, asked_train in calls:
            assert draw == np.random.default_rng([7, 0, clip, 0]).integers(1 << 30), clip
            assert asked_train is train


def test_repeats_padding_a_ranks_shard_are_marked_for_the_loss_to_leave_out(monkeypatch):
    """3 clips on 2 ranks (fewer than the job's batch): rank 1's shard is clip 1 and a repeat of clip 0. In
    the gathered batch that repeat would be its original's negative; `valid` is False on it alone."""
    from audiotrain.distributed import collectives
    from audiotrain.recipes.clap.data import make_loader

    class Rank:  # rank `rank` of a job of 2, as far as audiotrain can tell (no MPI here)
        def __init__(self, rank):
            self._rank = rank

        def rank(self):
            return self._rank

        def size(self):
            return 2

    shards = {}
    for rank in (0, 1):
        monkeypatch.setattr(collectives, "_GROUP", Rank(rank))
        loader = make_loader(_StandInClips(3), _recording_front_end([]), 4, train=False, seed=0, workers=0)
        shards[rank] = [(_clip_order([b]), np.array(b["valid"]).tolist()) for b in loader]
    assert shards == {0: [([0, 2], [True, True])], 1: [([1, 0], [True, False])]}
    # 6 clips, batches of 4 a rank: fewer than the job's batch of 8, so one batch of 3 on each rank (a batch
    # judged whole by one rank's size alone was dropped from both shards: the run trained no step).
    for train in (True, False):
        for rank in (0, 1):
            monkeypatch.setattr(collectives, "_GROUP", Rank(rank))
            loader = make_loader(
                _StandInClips(6), _recording_front_end([]), 4, train=train, seed=0, workers=0
            )
            assert [len(_clip_order([b])) for b in loader] == [3], (train, rank)


def test_the_recipes_loaders_shuffle_training_batch_validation_by_its_size_and_keep_fusion_clips_whole(
    tmp_path, monkeypatch
):
    """The run's loaders: training batches of --train.batch_size, shuffled (train=True, see
    test_training_batches_are_shuffled_and_validation_batches_keep_the_clips_order); validation ones of
    --train.eval_batch_size. Clips are cropped to the front end's window, except for a fusion front end,
    which needs the whole clip to flag it as longer and cut its local views."""
    from types import SimpleNamespace

    from audiotrain.datasets.captions import scan_caption_folder
    from audiotrain.features.clap import ClapFeatureExtractor
    from audiotrain.models.clap import ClapTokenizer
    from audiotrain.recipes.clap import cli as clap
    from audiotrain.recipes.clap.bundle import demo_extractor_settings

    made = []
    monkeypatch.setattr(
        clap_train,
        "make_loader",
        lambda dataset, _, batch_size, train, *a: made.append((dataset, batch_size, train)),
    )
    clips = scan_caption_folder(tone_folder(tmp_path / "tones"), sampling_rate=16000).clips
    tokenizer = ClapTokenizer.train(
        [c for clip in clips for c in clip.captions], vocab_size=300, max_length=24
    )
    cfg = clap.parse_config(["--train.batch_size", "2", "--train.eval_batch_size", "3"])
    for truncation in ("rand_trunc", "fusion"):
        extractor = ClapFeatureExtractor.from_dict({**demo_extractor_settings(), "truncation": truncation})
        bundle = SimpleNamespace(extractor=extractor, tokenizer=tokenizer)
        made.clear()
        clap_train._loaders(cfg, bundle, clips[:4], clips[4:], clips[4:], 16000)
        assert [(len(dataset), batch_size, train) for dataset, batch_size, train in made] == [
            (4, 2, True),
            (2, 3, False),
        ]
        crop = None if truncation == "fusion" else extractor.nb_max_samples
        assert [dataset.crop_samples for dataset, _, _ in made] == [crop, crop], truncation


def test_a_bad_audiotrain_plots_value_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    """A typo in AUDIOTRAIN_PLOTS (a sweep's figures off) is refused as the command starts, not as the plots
    are written after training; `clap cv` and a run through the Python API (`run_job`) refuse it too."""
    from audiotrain.recipes.clap import cli as clap
    from audiotrain.recipes.clap import cv

    _forbid_expensive_work(monkeypatch)
    monkeypatch.setattr(clap_train, "_check_settings", lambda *a, **k: pytest.fail("checked the settings"))
    monkeypatch.setenv("AUDIOTRAIN_PLOTS", "of")
    accepted = "AUDIOTRAIN_PLOTS='of' is neither on (1, true, yes, on) nor off (0, false, no, off)"
    assert clap.main(["--out", str(tmp_path / "o")]) == 2
    assert accepted in _one_error_line(capsys.readouterr().err)
    assert cv.main(["--out", str(tmp_path / "cv")]) == 2
    assert accepted in _one_error_line(capsys.readouterr().err)
    with pytest.raises(ValueError, match=re.escape(accepted)):
        clap_train.run_job(clap.parse_config(["--out", str(tmp_path / "api")]))
    assert not any((tmp_path / name).exists() for name in ("o", "cv", "api"))


def test_min_learning_rate_is_checked_against_the_learning_rate_in_use(tmp_path, capsys, monkeypatch):
    from audiotrain.recipes.clap import cli as clap

    cfg = clap.parse_config(["--task.min_learning_rate", "1e-4"])  # the demo's default peak is 3e-4
    task_cfg, _, _ = clap_train.resolve_training(cfg, demo=True, n_train=8)
    assert task_cfg.learning_rate == 3e-4 and task_cfg.min_learning_rate == 1e-4

    _forbid_expensive_work(monkeypatch)
    data = tmp_path / "data"
    data.mkdir()
    argv = ["--pretrained", str(tmp_path / "ckpt"), "--data", str(data), "--out", str(tmp_path / "o"),
            "--task.min_learning_rate", "1e-4"]  # fmt: skip
    assert clap.main(argv) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert (
        "min_learning_rate 0.0001 is above the learning rate 1e-05" in line and "--task.learning_rate" in line
    )
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="above the learning rate 0.0002"):
        CLAPTaskConfig(learning_rate=2e-4, min_learning_rate=3e-4)
    with pytest.raises(ValueError, match="above the learning rate 1e-05"):
        CLAPTrainModule(
            ClapModel(tiny_config()), CLAPTaskConfig(min_learning_rate=1e-4)
        ).configure_optimizers()
    # Equal to the learning rate in use (given, or the default): a constant rate, allowed.
    CLAPTaskConfig(learning_rate=1e-4, min_learning_rate=1e-4)
    task = CLAPTrainModule(ClapModel(tiny_config()), CLAPTaskConfig(min_learning_rate=1e-5, total_steps=4))
    assert _scheduled_rates(task, [0, 2, 4]) == pytest.approx([1e-5] * 3, rel=1e-5)


def _model_arrays(folder):
    from audiotrain.train.checkpoint import MODEL_FILE

    return {k.removeprefix("clap."): np.array(v) for k, v in mx.load(str(folder / MODEL_FILE)).items()}


def _same_weights(model, arrays) -> bool:
    return all(np.array_equal(np.array(v), arrays[k]) for k, v in tree_flatten(model.parameters()))


def test_hf_model_holds_the_best_checkpoint_and_any_checkpoint_exports(tmp_path, capsys, monkeypatch):
    import contextlib
    import io
    import shutil

    from audiotrain.models.clap import load_pretrained
    from audiotrain.recipes.clap import cli as clap

    class FirstValidationBest(clap_train.RetrievalEvaluation):
        """The first validation ranks best, so the best weights are not the last ones."""

        real_scores = []

        def on_validation_end(self, trainer, module):
            super().on_validation_end(trainer, module)
            if trainer.sanity_checking:  # (validation hooks run in the sanity check too, as in Lightning)
                return
            FirstValidationBest.real_scores.append(trainer.callback_metrics["val_mAP@10"])
            trainer.callback_metrics["val_mAP@10"] = 1.0 / len(FirstValidationBest.real_scores)

    monkeypatch.setattr(clap_train, "RetrievalEvaluation", FirstValidationBest)
    last_scored = {}  # the weights the latest scoring saw ("after", at the end of a run)
    real_evaluate = clap_train.evaluate_clap

    def recording(model, *args, **kwargs):
        last_scored.update({k: np.array(v) for k, v in tree_flatten(model.parameters())})
        return real_evaluate(model, *args, **kwargs)

    monkeypatch.setattr(clap_train, "evaluate_clap", recording)
    run_dir = tmp_path / "run"
    argv = ["--out", str(run_dir), "--demo.folder", str(tmp_path / "cache"), "--demo.clips", "8",
            "--demo.width", "16", "--demo.vocab_size", "120", "--dataset.max_tokens", "16",
            "--dataset.num_workers", "0", "--train.epochs", "2", "--train.batch_size", "2",
            "--train.compile", "false", "--train.progress_bar", "false"]  # fmt: skip
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = clap.run(clap.parse_config(argv), argv)
    best = [p for p in (run_dir / "checkpoints").iterdir() if p.name.startswith("epoch=0")]
    assert len(best) == 1
    exported, _ = load_pretrained(run_dir / "hf_model")
    assert _same_weights(exported, _model_arrays(best[0]))
    assert not _same_weights(exported, _model_arrays(run_dir / "checkpoints" / "last"))
    assert (
        f"exported Hugging Face model: {run_dir / 'hf_model'} (best checkpoint by val_mAP@10"
        in printed.getvalue()
    )
    # "after" scores the exported weights (the first validation's real score), not the final ones.
    assert result["after"]["mAP@10"] == pytest.approx(FirstValidationBest.real_scores[0])
    assert _same_weights(exported, last_scored)
    # The finished run resumed into a new --out (the README's way to score it again) scores and exports the
    # run's best checkpoint, which its checkpoint records, not the last weights.
    rescored = tmp_path / "rescored"
    again = [*argv[:1], str(rescored), *argv[2:], "--resume", str(run_dir / "checkpoints" / "last")]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = clap.run(clap.parse_config(again), again)
    exported, _ = load_pretrained(rescored / "hf_model")
    assert _same_weights(exported, _model_arrays(best[0]))
    assert f"the resumed run's best checkpoint by val_mAP@10 (1.0000): {best[0]}" in printed.getvalue()
    assert result["after"]["mAP@10"] == pytest.approx(FirstValidationBest.real_scores[0])
    # ... also the run folder moved elsewhere: its best is beside the resumed checkpoint, not where recorded.
    moved = tmp_path / "moved"
    shutil.move(run_dir, moved)
    again = [
        *argv[:1],
        str(tmp_path / "rescored2"),
        *argv[2:],
        "--resume",
        str(moved / "checkpoints" / "last"),
    ]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        clap.run(clap.parse_config(again), again)
    exported, _ = load_pretrained(tmp_path / "rescored2" / "hf_model")
    assert _same_weights(exported, _model_arrays(moved / "checkpoints" / best[0].name))
    assert (
        f"best checkpoint by val_mAP@10 (1.0000): {moved / 'checkpoints' / best[0].name}"
        in printed.getvalue()
    )
    shutil.move(moved, run_dir)  # (the test goes on with the run where it was)

    # Any checkpoint exports to a Hugging Face folder.
    out = tmp_path / "exported_last"
    last = run_dir / "checkpoints" / "last"
    assert clap.main(["export", "--checkpoint", str(last), "--out", str(out)]) == 0
    model, _ = load_pretrained(out)
    assert _same_weights(model, _model_arrays(last))
    assert {p.name for p in out.iterdir()} == {p.name for p in (run_dir / "hf_model").iterdir()}
    capsys.readouterr()
    assert clap.main(["export", "--checkpoint", str(last), "--out", str(out)]) == 2
    assert "already holds files" in _one_error_line(capsys.readouterr().err)
    # --overwrite replaces an earlier export whole: a file of it the new one does not write (another model's
    # slow-tokenizer vocabulary) is not left beside the new files.
    (out / "vocab.json").write_text("{}")
    assert clap.main(["export", "--checkpoint", str(last), "--out", str(out), "--overwrite"]) == 0
    assert {p.name for p in out.iterdir()} == {p.name for p in (run_dir / "hf_model").iterdir()}
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []
    # ... and nothing else: a run folder or a data folder is the user's, even with --overwrite.
    victim_run, victim_data = tmp_path / "victim_run", tmp_path / "victim_data"
    shutil.copytree(run_dir, victim_run, ignore=shutil.ignore_patterns("hf_model"))
    victim_data.mkdir()
    (victim_data / "a.wav").write_bytes(b"RIFF")
    (victim_data / "config.json").write_text("{}")
    settings = (victim_run / "config.json").read_text()
    for target, held in ((victim_run, "checkpoints/, "), (victim_data, "a.wav")):
        assert clap.main(["export", "--checkpoint", str(last), "--out", str(target), "--overwrite"]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert f"--out {target} is not an earlier export: it holds " in line and held in line, line
    assert (victim_run / "config.json").read_text() == settings
    assert sorted(p.name for p in victim_data.iterdir()) == ["a.wav", "config.json"]
    (victim_data / "a.wav").unlink()  # a folder of export-named files whose config.json is not a model's
    assert clap.main(["export", "--checkpoint", str(last), "--out", str(victim_data), "--overwrite"]) == 2
    assert "not a CLAP model's" in _one_error_line(capsys.readouterr().err)
    # ... nor a CLAP model saved by transformers (or an older audiotrain): the export's files, no marker.
    victim_model = tmp_path / "victim_model"
    shutil.copytree(run_dir / "hf_model", victim_model)
    (victim_model / "audiotrain_export.json").unlink()
    kept = {p.name: p.read_bytes() for p in victim_model.iterdir()}
    assert clap.main(["export", "--checkpoint", str(last), "--out", str(victim_model), "--overwrite"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"--out {victim_model} is not an earlier export: it holds a model without " in line
    assert "audiotrain_export.json" in line
    assert {p.name: p.read_bytes() for p in victim_model.iterdir()} == kept
    # A trainer checkpoint, or the run's checkpoints folder, is never an --out, even with --overwrite: the
    # export's weights replaced the checkpoint's, which then loaded no more.
    weights = (best[0] / "model.safetensors").read_bytes()
    for target in (best[0], run_dir / "checkpoints", run_dir / "checkpoints" / "new"):
        assert clap.main(["export", "--checkpoint", str(last), "--out", str(target), "--overwrite"]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert f"--out {target}: " in line and "--overwrite does not lift this" in line
    assert (best[0] / "model.safetensors").read_bytes() == weights
    assert not (run_dir / "checkpoints" / "new").exists()
    elsewhere = tmp_path / "elsewhere" / "ckpt"
    shutil.copytree(last, elsewhere)
    assert clap.main(["export", "--checkpoint", str(elsewhere), "--out", str(tmp_path / "e2")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    # The demo's tokenizer and front end are in the run folder alone: the error says which flag brings it.
    assert f"cannot export {elsewhere} alone: it is a checkpoint of the offline demo" in line
    assert "pass --run RUN, the run folder it was trained in" in line
    assert not (tmp_path / "e2").exists()
    assert (
        clap.main(
            ["export", "--checkpoint", str(elsewhere), "--run", str(run_dir), "--out", str(tmp_path / "e2")]
        )
        == 0
    )


def test_zero_shot_label_list(tmp_path):
    from audiotrain.recipes.clap.data import read_labels

    assert read_labels(None) is None
    assert read_labels("dog, rain ,siren") == ["dog", "rain", "siren"]
    path = tmp_path / "labels.txt"
    path.write_text("dog barking\n\nrain\n")
    assert read_labels(str(path)) == ["dog barking", "rain"]
    path.write_text("\n")
    with pytest.raises(ValueError, match="no labels"):
        read_labels(str(path))
    with pytest.raises(ValueError, match=r"^--dataset.zero_shot_labels ' , ': no labels"):
        read_labels(" , ")
    # An empty value (`--dataset.zero_shot_labels "$LABELS"`, the variable unset) said "'' is a folder"
    for empty in ("", "  "):
        with pytest.raises(ValueError, match=r"^--dataset.zero_shot_labels is empty; expected a file"):
            read_labels(empty)


def test_a_fused_model_with_a_rand_trunc_front_end_scores_cropped_clips_as_the_whole_clips(tmp_path):
    """The recipe cuts a "rand_trunc" run's clips to the window before the front end sees them, so a fused
    model never saw a clip flagged as longer: it scored and trained long clips on the global view alone,
    where transformers (given the whole clip) flags it and fuses zero local views (htsat.py)."""
    from audiotrain.datasets.captions import CaptionDataset, scan_caption_folder
    from audiotrain.features.clap import ClapFeatureExtractor
    from audiotrain.models.clap import ClapTokenizer
    from audiotrain.recipes.clap.bundle import demo_extractor_settings, demo_model_config
    from audiotrain.recipes.clap.data import make_loader
    from audiotrain.recipes.clap.evaluate import embed_audio

    import soundfile as sf

    waves = []
    for i in range(4):
        t = np.arange(int(16000 * (0.8 + 0.5 * i))) / 16000
        waves.append((0.3 * np.sin(2 * np.pi * (200 + 100 * i) * t * (1 + t))).astype(np.float32))
        sf.write(tmp_path / f"c{i}.wav", waves[-1], 16000, subtype="FLOAT")
        (tmp_path / f"c{i}.txt").write_text(f"tone {i}")
    clips = scan_caption_folder(tmp_path, sampling_rate=16000).clips
    config = demo_model_config(vocab_size=300, max_tokens=24, width=16)
    config.audio_config.enable_fusion, config.audio_config.fusion_type = True, "aff_2d"
    tokenizer = ClapTokenizer.train([f"tone {i}" for i in range(4)], vocab_size=300, max_length=24)
    extractor = ClapFeatureExtractor.from_dict(
        {**demo_extractor_settings(), "truncation": "rand_trunc", "max_length_s": 1.5}
    )
    dataset = CaptionDataset(
        clips, tokenizer, sampling_rate=16000, crop_samples=extractor.nb_max_samples, train=False
    )
    batch = next(iter(make_loader(dataset, extractor, 4, train=False, seed=0, workers=0)))
    assert np.array(batch["is_longer"]).tolist() == [False, False, True, True]
    mx.random.seed(0)
    model = ClapModel(config)
    model.eval()
    whole = extractor(waves, sampling_rate=16000, train=False)
    expected = np.array(
        model.get_audio_features(mx.array(whole["input_features"]), mx.array(whole["is_longer"]))
    )
    got = embed_audio(model, dataset, lambda w, rng, train: extractor(w, rng, train, sampling_rate=16000))
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_fusion_model_gets_whole_clips_and_four_views(tmp_path):
    from audiotrain.datasets.captions import CaptionDataset, scan_caption_folder
    from audiotrain.features.clap import ClapFeatureExtractor
    from audiotrain.models.clap import ClapTokenizer
    from audiotrain.recipes.clap.bundle import demo_extractor_settings, demo_model_config
    from audiotrain.recipes.clap.data import make_loader

    import soundfile as sf

    for i in range(4):
        t = np.arange(int(16000 * (0.8 + 0.5 * i))) / 16000
        sf.write(
            tmp_path / f"c{i}.wav", (0.3 * np.sin(2 * np.pi * (200 + 100 * i) * t)).astype(np.float32), 16000
        )
        (tmp_path / f"c{i}.txt").write_text(f"tone {i}")
    clips = scan_caption_folder(tmp_path, sampling_rate=16000).clips
    config = demo_model_config(vocab_size=300, max_tokens=24, width=16)
    config.audio_config.enable_fusion, config.audio_config.fusion_type = True, "aff_2d"
    tokenizer = ClapTokenizer.train(
        [c for clip in clips for c in clip.captions], vocab_size=300, max_length=24
    )
    extractor = ClapFeatureExtractor.from_dict(
        {**demo_extractor_settings(), "truncation": "fusion", "max_length_s": 1.5}
    )
    dataset = CaptionDataset(clips, tokenizer, sampling_rate=16000, crop_samples=None, train=False)
    batch = next(iter(make_loader(dataset, extractor, 4, train=False, seed=0, workers=0)))
    assert batch["input_features"].shape == (4, 4, 151, 16)
    # Clips longer than the 1.5 s window are flagged, so the fused local views are used for them.
    assert np.array(batch["is_longer"]).tolist() == [False, False, True, True]
    task = CLAPTrainModule(ClapModel(config), CLAPTaskConfig())
    task.eval()
    loss, metrics = task.compute_loss(batch)
    assert np.isfinite(loss.item()) and 0 <= metrics["audio_accuracy"].item() <= 1
    # The task passes the flag on to the audio tower: without it, no clip's fused views would be used.
    unflagged = task.compute_loss({**batch, "is_longer": mx.zeros_like(batch["is_longer"])})[0]
    assert abs(unflagged.item() - loss.item()) > 1e-4


# ------------------------------------------------------------------ user errors caught before the expensive work
def _forbid_expensive_work(monkeypatch):
    """Make data generation/scanning, model loading/building and evaluation fail the test if reached."""

    def forbidden(*args, **kwargs):
        raise AssertionError("expensive work started before the error was reported")

    for name in (
        "make_caption_demo",
        "scan_caption_folder",
        "load_checkpoint",
        "build_demo",
        "evaluate_clap",
    ):
        monkeypatch.setattr(clap_train, name, forbidden)


def _unscanned_folder(folder: Path) -> str:
    """An empty --data folder, for a test that stops before the scan: the run first checks that it exists."""
    folder.mkdir(exist_ok=True)
    return str(folder)


def _run_to_the_model_load(monkeypatch, tmp_path: Path, checkpoint: Path, *extra: str) -> int:
    """The recipe on `checkpoint` with an empty --data folder, failing the test if it goes on past loading
    the model (its scan or evaluation): for refusals that must come from the checkpoint's own files."""
    for name in ("scan_caption_folder", "evaluate_clap"):
        monkeypatch.setattr(clap_train, name, lambda *a, **k: pytest.fail("went on past the model load"))
    from audiotrain.recipes.clap import cli as clap

    data = _unscanned_folder(tmp_path / "data")
    return clap.main(
        ["--data", data, "--pretrained", str(checkpoint), "--out", str(tmp_path / "run"), *extra]
    )


def _one_error_line(err: str) -> str:
    """The one error line of stderr, its last but the AUDIOTRAIN_TRACEBACK line under a refusal's (the notes
    before it are stderr's too, as the chord recipe's; a memory error's line has none, in both recipes)."""
    lines = [line for line in err.splitlines() if line.strip() and line != TRACEBACK_LINE]
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors == lines[-1:] and "Traceback" not in err, err
    return errors[0]


#: The line under every recipe's one-line error.
TRACEBACK_LINE = "(set AUDIOTRAIN_TRACEBACK=1 to see where it was raised)"


def test_clap_and_chord_errors_end_alike_with_how_to_see_where_they_were_raised(tmp_path, capsys):
    """CLAP's one-line errors did not say AUDIOTRAIN_TRACEBACK, as the chord recipe's do: a CLAP user learned
    of the variable from the README only."""
    from audiotrain.recipes import chords
    from audiotrain.recipes.clap import main

    missing = tmp_path / "missing"
    assert main(["--data", str(missing), "--out", str(tmp_path / "run")]) == 2
    clap_err = capsys.readouterr().err
    assert chords.main(["score", str(missing), "--data", str(tmp_path)]) == 2
    chords_err = capsys.readouterr().err
    for err in (clap_err, chords_err):
        assert err.splitlines()[-1] == TRACEBACK_LINE, err
        assert _one_error_line(err).startswith(f"error: --data {missing}" if err is clap_err else "error: ")


def test_cli_resume_folder_is_checked_before_data_and_model(tmp_path, capsys, monkeypatch):
    from audiotrain.recipes.clap import main
    from audiotrain.train.checkpoint import write_checkpoint

    import mlx.core as mx

    _forbid_expensive_work(monkeypatch)
    base = ["--demo.folder", str(tmp_path / "cache"), "--train.progress_bar", "false"]
    nothere = tmp_path / "runs" / "nothere"
    assert main([*base, "--out", str(tmp_path / "o1"), "--resume", str(nothere)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "does not exist" in line and str(nothere) in line
    assert not (tmp_path / "o1").exists()

    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    (incomplete / "model.safetensors").write_bytes(b"")
    assert main([*base, "--out", str(tmp_path / "o2"), "--resume", str(incomplete)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "not a complete audiotrain checkpoint" in line and "trainer_state.json" in line

    foreign_state = tmp_path / "foreign_state"
    write_checkpoint(foreign_state, {"w": mx.zeros((2,))}, {"step": mx.zeros(())}, {}, {})
    (foreign_state / "trainer_state.json").write_text('{"epoch": 3}')
    assert main([*base, "--out", str(tmp_path / "o3"), "--resume", str(foreign_state)]) == 2
    assert "was not written by audiotrain" in _one_error_line(capsys.readouterr().err)


def test_cli_resume_from_a_foreign_checkpoint_is_a_short_error(tmp_path, capsys, monkeypatch):
    """A complete checkpoint of another model (e.g. the chord recipe's) fails once the model exists, before the
    "retrieval before fine-tuning" evaluation, in one line with counts and a few example keys."""
    from audiotrain.recipes.clap import cli as clap
    from audiotrain.train.checkpoint import write_checkpoint

    import mlx.core as mx

    def no_evaluation(*args, **kwargs):
        raise AssertionError("evaluation ran before the checkpoint was checked")

    monkeypatch.setattr(clap_train, "evaluate_clap", no_evaluation)
    foreign = tmp_path / "chords" / "checkpoints" / "last"
    keys = {f"model.encoder.layers.{i}.linear.weight": mx.zeros((3, 3)) for i in range(40)}
    progress = {"epoch": 1, "batch_in_epoch": 0, "global_step": 10, "total_batches": 10, "micro_batches": 0}
    state = {"progress": progress, "random": {"mlx": [0, 1]}}  # complete, another model's
    write_checkpoint(foreign, keys, {"step": mx.zeros(())}, {}, state)
    argv = ["--out", str(tmp_path / "run"), "--demo.folder", str(tmp_path / "cache"), "--demo.clips", "8",
            "--demo.width", "16", "--demo.vocab_size", "120", "--dataset.max_tokens", "16",
            "--dataset.num_workers", "0", "--train.batch_size", "2", "--train.compile", "false",
            "--train.progress_bar", "false", "--resume", str(foreign)]  # fmt: skip
    assert clap.main(argv) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(foreign) in line and "does not match this CLAP model" in line
    assert "40 unexpected" in line and "missing" in line and "model.encoder.layers.0.linear.weight" in line
    assert len(line) < 1000, line
    # Refused before the run folder is made (data_report.txt and demo_init/ were written first): the
    # command with the right --resume is not then refused for a folder holding files.
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("file", ["model.safetensors", "optimizer.safetensors"])
def test_a_resume_from_nan_weights_is_refused_before_the_run_folder(demo_run, tmp_path, capsys, file):
    """The fit refuses NaN weights as it loads them, but that came after config.json and data_report.txt
    were written: the retry with a sound checkpoint into the same --out was then refused for a folder
    holding files. The refusal comes before anything is written (the optimizer state's was already)."""
    import shutil

    from audiotrain.recipes.clap import cli as clap

    import mlx.core as mx

    result, _ = demo_run
    damaged = tmp_path / "damaged"
    shutil.copytree(result["run_dir"] / "checkpoints" / "last", damaged, symlinks=False)
    arrays, metadata = mx.load(str(damaged / file), return_metadata=True)
    name = next(n for n, a in sorted(arrays.items()) if mx.issubdtype(a.dtype, mx.floating) and a.size)
    arrays[name] = mx.full(arrays[name].shape, float("nan"), dtype=arrays[name].dtype)
    mx.save_safetensors(str(damaged / file), arrays, metadata=metadata)
    out = tmp_path / "run"
    assert clap.main([*result["argv"], "--out", str(out), "--resume", str(damaged)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"{damaged / file}: tensor {name} holds NaN or infinite values" in line
    assert not out.exists()


@pytest.mark.parametrize("flag", [["--task.freeze_audio", "true"], ["--task.freeze_text_layers", "1"]])
def test_a_resume_with_other_freezing_is_refused_before_the_run_folder(demo_run, tmp_path, capsys, flag):
    """A resume trains what its run trained when it saved: --task.freeze_audio true on a resume of an unfrozen
    run was said to change the setting ("task.freeze_audio False -> True"), recorded in config.json, and
    counted in the trainable parameters, while every audio weight went on training."""
    from audiotrain.recipes.clap import cli as clap

    result, _ = demo_run
    last = result["run_dir"] / "checkpoints" / "last"
    out = tmp_path / "run"
    resume = [*result["argv"], "--out", str(out), "--train.epochs", "3", "--resume", str(last), *flag]
    assert clap.main(resume) == 2
    err = capsys.readouterr().err
    assert f"{flag[0][2:]} " in err and "a resume trains the parameters its run trained" in err, err
    assert f"export --checkpoint {last} --out DIR, then --pretrained DIR" in err
    assert "Traceback" not in err and not out.exists()


def test_zero_shot_labels_that_miss_the_clips_labels_are_refused_before_the_run_folder(tmp_path, capsys):
    from audiotrain.recipes.clap import cli as clap

    out = tmp_path / "run"
    assert clap.main([*_tiny_demo_argv(tmp_path, out), "--dataset.zero_shot_labels", "dog,cat"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "--dataset.zero_shot_labels: the evaluation clips' labels" in line and "['dog', 'cat']" in line
    assert not out.exists()


@pytest.mark.parametrize(
    "flag, value, field_name",
    [
        ("--train.epochs", "-1", "train.epochs"),
        ("--train.epochs", "0", "train.epochs"),
        ("--train.max_steps", "0", "train.max_steps"),
        ("--train.gradient_clip", "-1", "train.gradient_clip"),
        ("--train.precision", "16", "train.precision"),
        ("--task.learning_rate", "-0.1", "learning_rate"),
        ("--task.learning_rate", "0", "learning_rate"),  # (not the default rate that an unset one gets)
        ("--demo.clips", "0", "demo.clips"),
        ("--train.batch_size", "1", "train.batch_size"),
        ("--train.eval_batch_size", "1", "train.eval_batch_size"),
        ("--dataset.prompt_template", "the sound of a thing", "dataset.prompt_template"),
        ("--dataset.prompt_template", "{} or {}", "dataset.prompt_template"),
        ("--dataset.prompt_template", "{0} or {0}", "dataset.prompt_template"),  # the class twice
        ("--dataset.prompt_template", "a {kind} sound", "dataset.prompt_template"),
    ],
)
def test_cli_rejects_invalid_training_settings_at_parsing(flag, value, field_name, capsys, monkeypatch):
    from audiotrain.recipes.clap import cli as clap

    def no_run(*args, **kwargs):
        raise AssertionError("run() started with an invalid setting")

    monkeypatch.setattr(clap, "run", no_run)
    status = clap.main([flag, value])
    assert status == 2
    err = capsys.readouterr().err
    assert "error:" in err and field_name in err and "Traceback" not in err


def test_a_config_file_gives_precision_32_as_yaml_reads_it(tmp_path):
    """`train.precision: 32` in a --config file, the README's value as one writes it, is an int to YAML: it
    was refused as "field 'train.precision' must be str, got 32" (create_trainer's `training.precision: 32`
    is taken). It is the setting "32", as the flag's, and config.json records it so."""
    from audiotrain.recipes.clap import cli as clap

    settings = tmp_path / "run.yaml"
    settings.write_text("train:\n  precision: 32\n", encoding="utf-8")
    assert clap.parse_config(["--config", str(settings)]).train.precision == "32"


@pytest.mark.parametrize("typed, setting", [("bf16", "bf16-mixed"), ("32-true", "32"), ("fp32", "32")])
def test_a_precision_alias_is_recorded_as_the_setting_it_names(typed, setting):
    """`--train.precision bf16` trains as bf16-mixed (the Trainer's alias, Lightning's): config.json recorded
    'bf16', so `runs compare` listed train.precision as differing between two runs that trained alike (and
    --precision of `evaluate`, which defaults to it, showed 'bf16')."""
    from audiotrain.recipes.clap import cli as clap

    assert clap.parse_config(["--train.precision", typed]).train.precision == setting


def test_cli_mistyped_zero_shot_labels_file_is_an_error(tmp_path, capsys, monkeypatch):
    from audiotrain.recipes.clap import cli as clap

    _forbid_expensive_work(monkeypatch)
    base = ["--demo.folder", str(tmp_path / "cache"), "--out", str(tmp_path / "o")]
    for spec in ("missing_labels.txt", str(tmp_path / "labels"), "classes.JSON"):
        assert clap.main([*base, "--dataset.zero_shot_labels", spec]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert "file not found" in line and spec in line

    # The documented formats still work: a file (any name), a comma-separated list, and a single class.
    assert clap_data.read_labels("dog") == ["dog"]
    assert clap_data.read_labels("notes.txt, rain") == ["notes.txt", "rain"]
    assert clap_data.read_labels("rock/pop, jazz") == ["rock/pop", "jazz"]  # (a comma: a list, '/' or not)
    assert clap_data.read_labels("dog, notes.txt") == ["dog", "notes.txt"]
    named = tmp_path / "classes"
    named.write_text("dog\nrain\n")
    assert clap_data.read_labels(str(named)) == ["dog", "rain"]
    monkeypatch.chdir(tmp_path)  # an existing file is read, even named without a folder or a suffix
    assert clap_data.read_labels("classes") == ["dog", "rain"]
    with pytest.raises(ValueError, match="is a folder"):
        clap_data.read_labels(str(tmp_path))


def test_a_bom_in_the_zero_shot_label_file_is_not_part_of_the_first_class(tmp_path):
    """Notepad and Excel start a UTF-8 file with a BOM: it stuck to the first class ('\\ufeffdog', an extra
    class with its own prompt, or "labels ['dog'] are not in the list"), where a metadata BOM is dropped."""
    labels = tmp_path / "labels.txt"
    labels.write_bytes("\ufeffdog\r\nrain\r\n".encode())
    assert clap_data.read_labels(str(labels)) == ["dog", "rain"]
    # Not UTF-8 (Latin-1, or UTF-16 as Windows' "Unicode"): named by the flag, as every label-file error.
    labels.write_bytes(b"dog\ncaf\xe9\n")
    with pytest.raises(
        ValueError,
        match=rf"^--dataset.zero_shot_labels {labels}, line 2: the byte 0xe9 .* label file must be saved as UTF-8",
    ):
        clap_data.read_labels(str(labels))
    labels.write_bytes("dog\nrain\n".encode("utf-16"))
    utf16 = rf"^--dataset.zero_shot_labels {labels}: a UTF-16 text file .* UTF-8$"
    with pytest.raises(ValueError, match=utf16):
        clap_data.read_labels(str(labels))


def test_a_class_repeated_in_the_zero_shot_labels_is_refused_before_the_run_folder(
    tmp_path, capsys, monkeypatch
):
    """It was refused by the "before" evaluation, after config.json and data_report.txt were written, as
    "labels must be unique", naming neither the flag nor the file."""
    from audiotrain.recipes.clap import cli as clap

    _forbid_expensive_work(monkeypatch)
    labels, out = tmp_path / "labels.txt", tmp_path / "run"
    labels.write_text("dog\nrain\n\ndog\n")
    base = ["--demo.folder", str(tmp_path / "cache"), "--out", str(out), "--dataset.zero_shot_labels"]
    assert clap.main([*base, str(labels)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"--dataset.zero_shot_labels {labels}: line 4 repeats the class 'dog' of line 1" in line
    assert clap.main([*base, "dog, rain,dog"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "--dataset.zero_shot_labels 'dog, rain,dog': item 3 repeats the class 'dog' of item 1" in line
    assert not out.exists()


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])  # Ctrl-C; `timeout`, a cluster's time limit
def test_ctrl_c_saves_evaluates_and_exits_130_with_the_command_that_continues(
    demo_run, tmp_path, monkeypatch, capsys, name
):
    import signal

    from audiotrain.recipes.clap import cli as clap
    from audiotrain.train.callbacks import Callback
    from audiotrain.train.trainer import Trainer

    signum = getattr(signal, name)

    class CtrlCAtFirstBatch(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if trainer.global_step == 1:
                # The Trainer's handler: stop and save (SIGTERM ended the process when nothing handled it).
                assert signal.getsignal(signum) is not signal.SIG_DFL, f"{name} would end the process"
                signal.raise_signal(signum)

    def trainer_with_ctrl_c(*args, callbacks=(), **kwargs):
        return Trainer(*args, callbacks=[*callbacks, CtrlCAtFirstBatch()], **kwargs)

    import audiotrain

    monkeypatch.setattr(audiotrain, "Trainer", trainer_with_ctrl_c)  # what run() imports
    argv = list(demo_run[0]["argv"])
    del argv[argv.index("--out") : argv.index("--out") + 2]  # a new runs/clap-demo-<date>-<time>
    argv[argv.index("--train.epochs") + 1] = "1"
    monkeypatch.chdir(tmp_path)
    assert clap.main(argv) == 128 + signum  # as a shell reports a command that signal stopped: 130, 143
    out = "".join(capsys.readouterr())  # (results and notes)
    assert f"training was interrupted ({'Ctrl-C' if name == 'SIGINT' else name})" in out
    (run,) = Path("runs").iterdir()
    saved = run / "checkpoints" / "interrupted"
    # The command goes on in the run's own folder (with its best checkpoint), not in another new one: named
    # absolute, so that pasted in another folder it does not start a new run there.
    assert (
        f"--out {tmp_path / run} --resume {tmp_path / saved}" in out and "trainer.fit(" not in out
    )  # not the library hint
    assert (run / "retrieval.json").is_file()


# ------------------------------------------------------------------ the run folder: no silent overwrite
def _tiny_demo_argv(tmp_path, out) -> list[str]:
    return ["--out", str(out), "--demo.folder", str(tmp_path / "cache"), "--demo.clips", "8",
            "--demo.width", "16", "--demo.vocab_size", "120", "--dataset.max_tokens", "16",
            "--dataset.num_workers", "0", "--train.epochs", "1", "--train.batch_size", "2",
            "--train.compile", "false", "--train.progress_bar", "false"]  # fmt: skip


def test_cli_refuses_an_out_folder_holding_a_previous_run(demo_run, tmp_path, capsys, monkeypatch):
    from audiotrain.recipes.clap import cli as clap

    result, _ = demo_run
    out = result["run_dir"]
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    _forbid_expensive_work(monkeypatch)
    assert clap.main(list(result["argv"])) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"--out {out} already holds files" in line and "new --out" in line and "--overwrite" in line
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before  # nothing of the run was touched

    afile = tmp_path / "afile"
    afile.write_text("mine")
    assert clap.main([*result["argv"], "--out", str(afile)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"--out {afile} is a file" in line and afile.read_text() == "mine"


def test_overwrite_replaces_the_run_and_keeps_and_names_the_users_files_in_its_folders(
    demo_run, tmp_path, capsys
):
    """--overwrite removed checkpoints/, plots/ and the logger folders whole, with whatever the user had put
    there (a checkpoint copied to keep, notes), without naming them. What it removed and kept was then said on
    stdout, among the results (`> results.txt` got it); it is a diagnostic, on stderr as the chord
    recipe's."""
    import shutil

    from audiotrain.recipes.clap import cli as clap

    result, _ = demo_run
    copy = tmp_path / "copy"
    shutil.copytree(result["run_dir"], copy)
    shutil.copytree(copy / "checkpoints" / "last", copy / "checkpoints" / "keep_for_paper")
    (copy / "plots" / "my_notes.txt").write_text("mine")
    argv = [*result["argv"], "--out", str(copy), "--overwrite", "--train.epochs", "1"]
    assert clap.main(argv) == 0
    printed = capsys.readouterr()
    kept = "checkpoints/keep_for_paper, plots/my_notes.txt"
    assert f"--overwrite: kept what the previous run did not write in {copy}: {kept}" in printed.err
    assert "--overwrite: removed the previous run's" in printed.err and "--overwrite" not in printed.out
    assert (copy / "checkpoints" / "keep_for_paper" / "model.safetensors").is_file()
    assert (copy / "plots" / "my_notes.txt").read_text() == "mine" and (copy / "plots" / "loss.png").is_file()
    assert (copy / "checkpoints" / "last").is_dir()
    assert json.loads((copy / "history.json").read_text())["epoch"] == [0]  # the new run's, one epoch


def test_a_run_record_repeats_the_settings_not_overwrite_or_resume(tmp_path, capsys, monkeypatch):
    """A run made with --overwrite records overwrite: true; --config RUN/config.json (which "repeats the
    run") then replaced RUN itself without --overwrite on the command line."""
    import dataclasses

    from audiotrain.recipes.clap import cli as clap

    _forbid_expensive_work(monkeypatch)
    run = tmp_path / "myrun"
    run.mkdir()
    # (Both at once are refused on a command line now; a record of before says both.)
    made_with = dataclasses.replace(
        clap.parse_config(["--out", str(run)]), overwrite=True, resume=str(run / "checkpoints" / "last")
    )
    record = {"config": dataclasses.asdict(made_with), "versions": {}}
    (run / "config.json").write_text(json.dumps(record))
    (run / "notes.txt").write_text("mine")
    assert clap.main(["--config", str(run / "config.json")]) == 2
    assert f"--out {run} already holds files" in _one_error_line(capsys.readouterr().err)
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "notes.txt"]
    assert clap.parse_config(["--config", str(run / "config.json"), "--overwrite"]).overwrite is True
    repeated = clap.parse_config(["--config", str(run / "config.json")])
    assert repeated.overwrite is False and repeated.resume is None and repeated.out == str(run)
    # A settings file of one's own keeps them: choosing them there is the user's doing.
    mine = tmp_path / "mine.yaml"
    mine.write_text("overwrite: true\n")
    assert clap.parse_config(["--config", str(mine)]).overwrite is True


def test_empty_unwritable_or_file_paths_are_one_error_line_naming_the_flag(
    tmp_path, capsys, monkeypatch, make_read_only
):
    """``--out ""`` meant the default folder (chords' --run_dir "" the current one); a read-only --out gave a
    PermissionError traceback, and a --demo.folder that is a file a bare "[Errno 17] File exists"."""
    from audiotrain.recipes.clap import cli as clap

    _forbid_expensive_work(monkeypatch)
    monkeypatch.chdir(tmp_path)
    for argv in (["--out", ""], ["--demo.folder", ""], ["export", "--checkpoint", "x", "--out", ""],
                 ["--out", "  "], ["--demo.folder", " "]):  # fmt: skip
        status = clap.main(argv)
        assert status == 2
        err = capsys.readouterr().err
        assert (
            "(--out)" in err or "(--demo.folder)" in err or "--out: an empty path" in err
        ) and "empty" in err
    assert not list(tmp_path.iterdir())
    afile = tmp_path / "afile"
    afile.write_text("mine")
    read_only = tmp_path / "ro"
    read_only.mkdir()
    make_read_only(read_only)
    for argv, fragment in (
        (
            ["--demo.folder", str(afile), "--out", str(tmp_path / "o")],
            f"--demo.folder {afile}: {afile} is a file",
        ),
        (["--out", str(read_only)], f"--out {read_only}: cannot write in {read_only}"),
        (["--out", str(afile / "run")], f"--out {afile / 'run'}: {afile} is a file, not a folder"),
    ):
        assert clap.main(argv) == 2
        assert fragment in _one_error_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "ro"] and not list(read_only.iterdir())


def test_the_demo_is_made_in_the_package_cache_and_its_error_names_how_to_move_it(
    tmp_path, capsys, monkeypatch
):
    """The demo ignored $AUDIOTRAIN_CACHE_DIR: with a read-only HOME it failed on ~/.cache/audiotrain although
    the variable pointed at a writable folder (the chord demo used it), and its error named neither
    --demo.folder nor the variable."""
    from audiotrain.recipes.clap import cli as clap
    from audiotrain.recipes.clap.config import ClapRecipeConfig

    monkeypatch.setenv("AUDIOTRAIN_CACHE_DIR", str(tmp_path / "cache"))
    cfg = ClapRecipeConfig()
    cfg.demo.clips = 8
    made = clap_train.demo_data_folder(cfg)
    assert made.parent == tmp_path / "cache" / "demo" / "clap"
    assert made.name.startswith(f"caption_demo-v{DEMO_VERSION}-n8-seed{cfg.train.seed}-")
    assert (made / "demo.json").is_file()

    _forbid_expensive_work(monkeypatch)
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("AUDIOTRAIN_CACHE_DIR", str(tmp_path / "afile"))
    assert clap.main(["--out", str(tmp_path / "run"), "--train.processes", "1"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(
        f"error: the demo folder {tmp_path / 'afile' / 'demo' / 'clap'} (choose another with "
    )
    assert "--demo.folder or AUDIOTRAIN_CACHE_DIR)" in line and "is a file" in line


def test_a_demo_set_of_another_generator_version_sits_beside_this_ones(tmp_path, monkeypatch):
    """Sets were named by clip count and seed alone: one made by a release with another DEMO_VERSION blocked
    every demo run ("holds a demo folder made with other parameters") until deleted by hand."""
    from audiotrain.datasets import caption_demo
    from audiotrain.recipes.clap.config import ClapRecipeConfig

    monkeypatch.setenv("AUDIOTRAIN_CACHE_DIR", str(tmp_path / "cache"))
    cfg = ClapRecipeConfig()
    cfg.demo.clips = 4
    version = caption_demo.DEMO_VERSION
    monkeypatch.setattr(caption_demo, "DEMO_VERSION", version - 1)
    older = clap_train.demo_data_folder(cfg)
    monkeypatch.setattr(caption_demo, "DEMO_VERSION", version)
    current = clap_train.demo_data_folder(cfg)
    assert current != older and current.parent == older.parent
    assert json.loads((older / "demo.json").read_text())["version"] == version - 1
    assert json.loads((current / "demo.json").read_text())["version"] == version


def test_a_full_disk_while_the_demo_clips_are_written_is_one_line(tmp_path):
    """libsndfile writing a clip to a full disk said "LibsndfileError: System error." under a traceback (here
    the disk is a file size limit: "File too large" instead of "No space left on device", the same path)."""
    import os
    import resource
    import signal
    import sys

    def small_files() -> None:  # in the child: writes past 20 kB fail with EFBIG (not a SIGXFSZ kill)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    cache = tmp_path / "cache"
    env = {**os.environ, "AUDIOTRAIN_CACHE_DIR": str(cache), "TMPDIR": str(tmp_path)}
    argv = ["--preset", "quick_test", "--train.processes", "1", "--out", str(tmp_path / "run")]
    done = subprocess.run(
        [sys.executable, "-m", "audiotrain.recipes.clap", *argv],
        env=env, capture_output=True, text=True, timeout=240, preexec_fn=small_files,
    )  # fmt: skip
    assert done.returncode == 1, (done.stdout + done.stderr)[-3000:]
    line = _one_error_line(done.stderr)
    assert f"cannot write the demo clips to the demo folder {cache / 'demo' / 'clap'} (choose another" in line
    assert line.endswith(": File too large")
    assert not list((cache / "demo" / "clap").iterdir())  # nothing half-written left behind


def test_a_demo_clip_damaged_in_place_is_named_with_the_command_that_renders_it_again(
    tmp_path, capsys, monkeypatch
):
    """demo.json's sizes find a cut or emptied clip (rendered again); one damaged at its own size is found by
    the scan, which only said "skipped 1: 1 unreadable audio", on every run, for good."""
    from audiotrain.recipes.clap import cli as clap
    from audiotrain.recipes.clap.config import ClapRecipeConfig

    monkeypatch.setenv("AUDIOTRAIN_CACHE_DIR", str(tmp_path / "cache"))
    cfg = ClapRecipeConfig()
    cfg.demo.clips = 8
    folder = clap_train.demo_data_folder(cfg)
    clip = sorted((folder / "clips").glob("*.wav"))[0]
    clip.write_bytes(bytes(clip.stat().st_size))
    monkeypatch.setattr(clap_train, "choose_splits", lambda *a, **k: pytest.fail("went on past the scan"))
    with pytest.raises(pytest.fail.Exception):
        clap.main(["--demo.clips", "8", "--out", str(tmp_path / "run"), "--train.processes", "1"])
    assert (
        f"note: the demo set {folder} has 1 damaged clip; `python -m audiotrain cache clear --key "
        f"{folder.name}` has it rendered again"
    ) in capsys.readouterr().err


def test_a_missing_logger_package_is_refused_before_the_processes_start(tmp_path, capsys, monkeypatch):
    """The chord recipe refused it before launching; CLAP started MPI, then failed in every rank, and Open
    MPI added its 7-line banner."""
    import sys

    from audiotrain.distributed.local import LocalPlan, Mpi
    from audiotrain.recipes.clap import cli as clap

    def never(*args, **kwargs):
        raise AssertionError("the ranks were started")

    monkeypatch.setattr(clap, "plan_local_processes", lambda *a, **k: LocalPlan(2, Mpi("mpirun", None, "x")))
    monkeypatch.setattr(clap, "run_local_job", never)
    monkeypatch.setitem(sys.modules, "mlflow", None)
    argv = ["--preset", "quick_test", "--out", str(tmp_path / "run"), "--demo.folder", str(tmp_path / "demo")]
    assert clap.main([*argv, "--logger", "mlflow"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "asks for mlflow: MLflowLogger needs the 'mlflow-skinny' package" in line
    assert "pip install 'audiotrain[loggers]'" in line
    assert not (tmp_path / "run").exists() and not (tmp_path / "demo").exists()


def test_early_errors_leave_no_empty_run_folder(tmp_path, capsys):
    from audiotrain.recipes.clap import cli as clap

    empty = tmp_path / "no_clips"
    empty.mkdir()
    out = tmp_path / "run"
    assert clap.main([*_tiny_demo_argv(tmp_path, out), "--data", str(empty)]) == 2
    assert "no usable captioned clips" in capsys.readouterr().err
    assert not out.exists()


def test_a_warmup_longer_than_the_planned_steps_is_cut_with_a_warning(capsys):
    """(Longer than a --task.total_steps given with it, the config refuses it.)"""
    from audiotrain.recipes.clap import cli as clap
    from audiotrain.recipes.clap.train import resolve_training

    cfg = clap.parse_config(["--task.warmup_steps", "5", "--train.max_steps", "2"])
    task_cfg, _, total = resolve_training(cfg, demo=True, n_train=8)
    assert (task_cfg.total_steps, total) == (2, 2)
    assert (
        "warning: --task.warmup_steps 5 is more than the 2 steps of the schedule" in capsys.readouterr().err
    )
    # The optimizer cuts the warmup to the 2 steps (a scheduler refuses a warmup longer than its schedule).
    task = CLAPTrainModule(ClapModel(tiny_config()), task_cfg)
    assert _scheduled_rates(task, [0, 1]) == pytest.approx([3e-4 / 2, 3e-4], rel=1e-5)
    # A warmup of exactly the schedule's steps is not cut, and not warned about.
    cfg = clap.parse_config(["--task.warmup_steps", "2", "--train.max_steps", "2"])
    assert resolve_training(cfg, demo=True, n_train=8)[0].warmup_steps == 2
    assert "warning:" not in capsys.readouterr().err


def test_a_warmup_longer_than_a_given_total_steps_is_refused_at_parsing_and_one_as_long_is_not(
    capsys, monkeypatch
):
    from audiotrain.recipes.clap import cli as clap

    monkeypatch.setattr(clap, "run", lambda *a, **k: pytest.fail("run() started with an invalid setting"))
    assert clap.main(["--task.warmup_steps", "6", "--task.total_steps", "5"]) == 2
    err = capsys.readouterr().err
    assert "error: task.warmup_steps (--task.warmup_steps) must be at most total_steps (5)" in err
    assert "the warmup is part of the schedule, got 6" in err and "Traceback" not in err
    # A schedule that is all warmup.
    cfg = clap.parse_config(["--task.warmup_steps", "5", "--task.total_steps", "5"])
    assert (cfg.task.warmup_steps, cfg.task.total_steps) == (5, 5)


def test_overwrite_resume_into_the_same_out_and_export_from_another_folder(tmp_path, capsys, monkeypatch):
    """A relative --out: the schedule warnings; --overwrite replaces the run; --resume of a checkpoint inside
    --out goes on there; `export` works from another working folder, and falls back to RUN/hf_model when the
    folder the run started from is gone."""
    import shutil

    from audiotrain.recipes.clap import cli as clap

    monkeypatch.chdir(tmp_path)
    argv = _tiny_demo_argv(Path("."), "run")  # relative paths, as a user types them
    # 8 clips, 2 held out, batches of 2: 3 planned steps.
    assert clap.main([*argv, "--task.total_steps", "2"]) == 0
    out = "".join(capsys.readouterr())  # (results and notes)
    assert "warning: --task.total_steps 2 is less than the 3 optimizer steps planned" in out
    stale = Path("run/checkpoints/stale-from-the-first-run")
    stale.mkdir()

    assert clap.main([*argv, "--overwrite"]) == 0
    out = "".join(capsys.readouterr())  # (results and notes)
    assert "--overwrite: removed the previous run's" in out and "warning:" not in out
    # (a folder the run did not write is the user's: kept, and named)
    assert "did not write in run: checkpoints/stale-from-the-first-run" in out and stale.is_dir()
    assert Path("run/hf_model/config.json").is_file()
    config = json.loads(Path("run/config.json").read_text())
    assert Path(config["model_source"]).is_absolute()

    assert clap.main([*argv, "--train.epochs", "2", "--resume", "run/checkpoints/last"]) == 0
    assert json.loads(Path("run/history.json").read_text())["epoch"] == [0, 1]  # epoch 0 kept, 1 added

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    last = tmp_path / "run" / "checkpoints" / "last"
    assert clap.main(["export", "--checkpoint", str(last), "--out", "exported"]) == 0
    assert (elsewhere / "exported" / "model.safetensors").is_file()
    capsys.readouterr()
    shutil.rmtree(tmp_path / "run" / "demo_init")
    assert clap.main(["export", "--checkpoint", str(last), "--out", "exported2"]) == 0
    out = "".join(capsys.readouterr())  # (results and notes)
    assert "demo_init (the model folder the run started from) is missing" in out
    assert f"{tmp_path / 'run' / 'hf_model'}" in out
    assert _same_weights(clap_load(elsewhere / "exported2"), _model_arrays(last))


def clap_load(folder):
    from audiotrain.models.clap import load_pretrained

    return load_pretrained(folder)[0]


# ------------------------------------------------------------------ settings the checkpoint bounds
def test_a_tokenizer_larger_than_the_text_vocabulary_is_refused_at_load(tmp_path, capsys, monkeypatch):

    from tokenizers import Tokenizer

    checkpoint = tiny_checkpoint(tmp_path)
    tokenizer = Tokenizer.from_file(str(checkpoint / "tokenizer.json"))
    assert tokenizer.get_vocab_size(with_added_tokens=True) == 320  # == text_config.vocab_size
    tokenizer.add_tokens(["<new_sound_word>"])
    tokenizer.save(str(checkpoint / "tokenizer.json"))
    assert _run_to_the_model_load(monkeypatch, tmp_path, checkpoint) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(checkpoint) in line and "321 tokens" in line and "vocab_size is 320" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "flag, value, expected",
    [
        ("--dataset.max_tokens", "500", "--dataset.max_tokens 500: the text tower accepts at most 78"),
        ("--task.freeze_text_layers", "99", "--task.freeze_text_layers 99: the model has 2 RoBERTa layers"),
        ("--task.freeze_audio_stages", "9", "--task.freeze_audio_stages 9: the model has"),
    ],
)
def test_settings_beyond_the_checkpoint_name_their_flag_before_the_data_scan(
    flag, value, expected, tmp_path, capsys, monkeypatch
):
    from audiotrain.recipes.clap import cli as clap

    checkpoint = tiny_checkpoint(tmp_path)
    assert _run_to_the_model_load(monkeypatch, tmp_path, checkpoint, flag, value) == 2
    assert expected in _one_error_line(capsys.readouterr().err)
    # The demo model too, before its data folder is generated.
    _forbid_expensive_work(monkeypatch)
    if flag != "--dataset.max_tokens":  # the demo model is sized for any --dataset.max_tokens
        assert (
            clap.main(["--demo.folder", str(tmp_path / "cache"), "--out", str(tmp_path / "d"), flag, value])
            == 2
        )
        assert flag in _one_error_line(capsys.readouterr().err)


def test_the_task_module_names_the_flag_for_freezing_beyond_the_model(tmp_path):
    """Library users building CLAPTrainModule themselves get the same message as the command line."""
    from audiotrain.models.clap import load_pretrained

    model = load_pretrained(tiny_checkpoint(tmp_path))[0]
    with pytest.raises(ValueError, match="--task.freeze_text_layers 99: the model has 2 RoBERTa layers"):
        CLAPTrainModule(model, CLAPTaskConfig(freeze_text_layers=99))
    with pytest.raises(ValueError, match="--task.freeze_audio_stages 9: the model has"):
        CLAPTrainModule(model, CLAPTaskConfig(freeze_audio_stages=9))


def test_quick_test_preset_runs_in_seconds_and_its_config_is_in_the_checkpoint_and_repeats(tmp_path, capsys):
    import dataclasses

    from audiotrain.recipes.clap import main, parse_config
    from audiotrain.train import checkpoint as ckpt

    out = tmp_path / "run"
    assert main(["--preset", "quick_test", "--out", str(out), "--demo.folder", str(tmp_path / "cache")]) == 0
    written = json.loads((out / "config.json").read_text())["config"]
    assert written["train"]["epochs"] == 1 and written["task"]["learning_rate"] == 3e-4  # resolved values
    assert ckpt.read_state(out / "checkpoints" / "last")["run_config"] == written
    assert dataclasses.asdict(parse_config(["--config", str(out / "config.json")])) == written
    # Run again from the written config (into a new folder): the same resolved settings.
    again = tmp_path / "again"
    assert main(["--config", str(out / "config.json"), "--out", str(again)]) == 0
    stored = ckpt.read_state(again / "checkpoints" / "last")["run_config"]
    assert {**stored, "out": None} == {**written, "out": None}


def test_the_printed_table_shows_before_and_after_in_their_columns():
    from audiotrain.recipes.clap.report import format_table

    before, after = {"text_to_audio_R@1": 0.05, "audio_to_text_R@1": 0.1}, {"text_to_audio_R@1": 0.8}
    lines = format_table(before, {**after, "audio_to_text_R@1": 0.9}).splitlines()
    assert lines[0].split() == ["before", "after"]
    assert sorted(line.split()[-2:] for line in lines[1:]) == [["0.050", "0.800"], ["0.100", "0.900"]]
    # Before fine-tuning, and for a score "after" lacks, the after column is empty.
    assert [line.split()[-1] for line in format_table(before, None).splitlines()[1:]] == ["0.050", "0.100"]
    assert format_table(before, after).splitlines()[2].endswith("0.100" + " " * 10)
    # Every score the recipe reports has its row, in this order, labelled with its direction.
    from audiotrain.recipes.clap.report import _ROWS

    every = {key: i / 100 for i, key in enumerate(_ROWS, start=1)}
    rows = format_table(every, {key: value + 0.5 for key, value in every.items()}).splitlines()[1:]
    directions = [f"{d} {s}" for d in ("text→audio", "audio→text") for s in ("R@1", "R@5", "R@10", "mAP@10")]
    labels = [*directions, "zero shot top1 accuracy", "zero shot top5 accuracy"]
    assert [row[:28].strip() for row in rows] == labels
    assert [row.split()[-2:] for row in rows] == [[f"{v:.3f}", f"{v + 0.5:.3f}"] for v in every.values()]


def test_a_top_5_left_out_for_fewer_than_5_classes_is_explained_under_the_table():
    from audiotrain.recipes.clap.report import format_columns, format_table

    # zero_shot_classification leaves top-5 out with 3 classes (every clip's class is in its top 5).
    three = {"text_to_audio_R@1": 0.5, "zero_shot_top1_accuracy": 0.6, "n_classes": 3.0}
    note = "(no zero shot top5 accuracy: with 3 classes, every clip's class is in its top 5)"
    assert format_columns({"score": three}).splitlines()[-1] == note
    assert format_table(three, {**three, "zero_shot_top1_accuracy": 0.9}).splitlines()[-1] == note
    ten = {**three, "zero_shot_top5_accuracy": 0.8, "n_classes": 10.0}
    assert "no zero shot" not in format_columns({"score": ten})
    assert "no zero shot" not in format_columns({"score": {"text_to_audio_R@1": 0.5}})  # no zero-shot scores


def test_report_plots_show_scores_beside_their_chance_level(tmp_path):
    from audiotrain.metrics.retrieval import chance_scores
    from audiotrain.recipes.clap.report import chance_levels, write_plots

    from matplotlib import image

    scores = {
        "text_to_audio_R@1": 0.2,
        "text_to_audio_R@5": 0.6,
        "audio_to_text_mAP@10": 0.4,
        "n_classes": 4.0,
    }
    results = {"before": scores, "after": scores, "n_eval_clips": 10, "n_eval_captions": 25}
    chance = chance_levels(results)
    assert chance["text_to_audio_R@5"] == 5 / 10 and chance["zero_shot_top1_accuracy"] == 1 / 4
    # 25 captions over 10 clips: five clips with 3 captions, five with 2.
    spread = chance_scores([3] * 5 + [2] * 5)
    for key in ("audio_to_text_R@1", "audio_to_text_R@5", "audio_to_text_mAP@10"):
        assert chance[key] == pytest.approx(spread[key]), key
    two_each = chance_scores([2] * 10)  # (the 5 captions left over, dropped: another level)
    assert chance["audio_to_text_R@5"] != pytest.approx(two_each["audio_to_text_R@5"], abs=1e-3)
    # A run's own counts (uneven: one clip with 16 of the 25 captions) give its exact levels, where the even
    # spread of the totals was approximate.
    uneven = [16] + [1] * 9
    exact = chance_levels({**results, "eval_captions_per_clip": uneven})
    assert exact["audio_to_text_mAP@10"] == pytest.approx(chance_scores(uneven)["audio_to_text_mAP@10"])
    assert exact["audio_to_text_mAP@10"] != pytest.approx(chance["audio_to_text_mAP@10"], abs=1e-3)
    # val_mAP@10 (the per-epoch plot's score) is the mean of both directions, and so is its chance line.
    both = (exact["text_to_audio_mAP@10"], exact["audio_to_text_mAP@10"])
    assert exact["mAP@10"] == pytest.approx(sum(both) / 2) and both[0] != pytest.approx(both[1], abs=1e-3)
    history = {"epoch": [0, 1], "train_loss": [2.0, 1.5], "val_loss": [2.1, 1.7], "val_mAP@10": [0.2, 0.3]}
    written = write_plots(history, results, tmp_path / "plots")
    assert sorted(p.name for p in written) == ["loss.png", "retrieval.png", "retrieval_per_epoch.png"]
    assert all(image.imread(p).shape[0] > 200 for p in written)


def test_report_plots_draw_before_and_after_with_their_chance_levels(tmp_path, monkeypatch):
    """What retrieval.png and retrieval_per_epoch.png draw: the before and after scores as their bars, the
    chance level of each score, and the number of clips and captions scored in the title."""
    from audiotrain.metrics import plots
    from audiotrain.recipes.clap.report import chance_levels, write_plots

    drawn = {}
    save = plots._save

    def keep_figure(figure, path, dpi):
        drawn[Path(path).name] = figure
        return save(figure, path, dpi)

    monkeypatch.setattr(plots, "_save", keep_figure)
    keys = ("text_to_audio_R@1", "text_to_audio_R@5", "audio_to_text_R@1", "audio_to_text_mAP@10")
    before, after = dict.fromkeys(keys, 0.1), dict.fromkeys(keys, 0.7)
    results = {"before": before, "after": after, "n_eval_clips": 10, "n_eval_captions": 25}
    history = {
        "epoch": [0, 1],
        "val_mAP@10": [0.2, 0.3],
        "val_text_to_audio_R@1": [0.1, 0.2],
        "val_audio_to_text_R@1": [0.15, 0.25],
    }
    write_plots(history, results, tmp_path)
    chance = chance_levels(results)
    title = "10 evaluation clips, 25 captions"

    bars = drawn["retrieval.png"].get_axes()[0]
    assert title in bars.get_title()
    heights = {c.get_label(): [bar.get_height() for bar in c] for c in bars.containers}
    assert heights == {"before fine-tuning": [0.1] * 4, "after": [0.7] * 4}
    (marks,) = [c for c in bars.collections if c.get_label() == "chance (random ranking)"]
    levels = [segment[0][1] for segment in marks.get_segments()]
    assert levels == pytest.approx([chance[key] for key in keys])

    per_epoch = drawn["retrieval_per_epoch.png"].get_axes()[0]
    assert title in per_epoch.get_title()
    dotted = [line.get_ydata()[0] for line in per_epoch.get_lines() if line.get_linestyle() == ":"]
    expected = [chance["mAP@10"], chance["text_to_audio_R@1"], chance["audio_to_text_R@1"]]
    assert dotted == pytest.approx(expected)


def test_resume_refuses_other_clips_or_captions_and_goes_on_on_the_same(tmp_path, capsys):
    """A checkpoint records its clips and captions: --resume on a folder whose clips were renamed or whose
    captions were edited is refused before anything is written, naming what changed; on the same data it goes
    on."""
    from audiotrain.datasets.caption_demo import CaptionDemoConfig, make_caption_demo
    from audiotrain.recipes.clap import cli as clap

    data = make_caption_demo(tmp_path / "data", CaptionDemoConfig(n_clips=8, seed=0))
    run = tmp_path / "run"
    argv = [*_tiny_demo_argv(tmp_path, run), "--data", str(data)]
    assert clap.main(argv) == 0
    listed = json.loads((run / "config.json").read_text())["clips"]
    assert len(listed["train"]) == 6
    state_file = run / "checkpoints" / "last" / "trainer_state.json"
    record = json.loads(state_file.read_text())["clips"]
    # The digests are the documented ones (the names joined by newlines, in UTF-8), so that a checkpoint an
    # earlier version wrote still resumes on its own clips.
    assert record["names_sha256"] == {
        part: hashlib.sha256("\n".join(names).encode()).hexdigest() for part, names in listed.items()
    }
    resume = [*argv, "--train.epochs", "2", "--resume", str(run / "checkpoints" / "last")]
    meta = data / "metadata.jsonl"
    original = meta.read_text()
    rows = [json.loads(line) for line in original.splitlines()]
    train_row = next(k for k, row in enumerate(rows) if row["split"] == "train")
    eval_row = next(k for k, row in enumerate(rows) if row["split"] != "train")

    def refused(expected: str) -> str:
        before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
        capsys.readouterr()
        assert clap.main(resume) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert "cannot resume from" in line and expected in line, line
        assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before  # nothing written
        return line

    edited = [dict(row) for row in rows]
    edited[train_row]["caption"] = ["An edited caption"]
    meta.write_text("".join(json.dumps(row) + "\n" for row in edited))
    refused("the captions of its train clips have changed")
    # Each caption of a clip counts, and the evaluation clips' as much as the training clips'.
    edited = [dict(row) for row in rows]
    edited[train_row]["caption"] = [*rows[train_row]["caption"], "One more caption"]
    meta.write_text("".join(json.dumps(row) + "\n" for row in edited))
    refused("the captions of its train clips have changed")
    edited = [dict(row) for row in rows]
    edited[eval_row]["caption"] = ["An edited caption"]
    meta.write_text("".join(json.dumps(row) + "\n" for row in edited))
    refused("the captions of its eval clips have changed")

    # The same clips in other splits: the refusal says so and what splits them.
    swapped = [dict(row) for row in rows]
    swapped[train_row]["split"], swapped[eval_row]["split"] = (
        rows[eval_row]["split"],
        rows[train_row]["split"],
    )
    meta.write_text("".join(json.dumps(row) + "\n" for row in swapped))
    refused("(the same clips, split otherwise: another --train.seed or --dataset.eval_fraction")

    renamed = [dict(row) for row in rows]
    old_file = renamed[train_row]["file_name"]
    new_file = old_file.replace(".wav", "_renamed.wav")
    (data / old_file).rename(data / new_file)
    renamed[train_row]["file_name"] = new_file
    meta.write_text("".join(json.dumps(row) + "\n" for row in renamed))
    line = refused("its train clips were others than the data folder")
    assert "gone since: " in line and "new: " in line and "_renamed" in line, line
    (data / new_file).rename(data / old_file)
    renamed = [dict(row) for row in rows]
    old_eval, new_eval = (
        rows[eval_row]["file_name"],
        rows[eval_row]["file_name"].replace(".wav", "_renamed.wav"),
    )
    (data / old_eval).rename(data / new_eval)
    renamed[eval_row]["file_name"] = new_eval
    meta.write_text("".join(json.dumps(row) + "\n" for row in renamed))
    refused("its eval clips were others than the data folder")
    (data / new_eval).rename(data / old_eval)

    # A clip added: the counts differ, and the refusal names the new clip (not only the counts).
    added = [*rows, {**rows[train_row], "file_name": "added_clip.wav"}]
    (data / "added_clip.wav").write_bytes((data / old_file).read_bytes())
    meta.write_text("".join(json.dumps(row) + "\n" for row in added))
    line = refused("but the data folder")
    assert "gone since: none; new: 'added_clip.wav'" in line, line
    (data / "added_clip.wav").unlink()

    meta.write_text(original)
    # A record without one split's digests (they are checked where recorded) goes on on the same data, and
    # in its own run folder, whose config.json lists its clips, with no note of other clips.
    state = json.loads(state_file.read_text())
    del state["clips"]["names_sha256"]["eval"], state["clips"]["captions_sha256"]["eval"]
    state_file.write_text(json.dumps(state))
    capsys.readouterr()
    assert clap.main(resume) == 0
    assert "lists other clips" not in capsys.readouterr().err
    assert json.loads((run / "history.json").read_text())["epoch"] == [0, 1]


def test_a_file_name_the_locale_cannot_decode_is_reported_not_fatal(tmp_path):
    """An unlisted audio file whose name is not UTF-8 (a latin-1 name from an old archive) is counted in the
    data report, written as its own bytes; the run goes on (the report's write raised a codec error)."""
    import contextlib
    import io
    import os

    from audiotrain.datasets.caption_demo import CaptionDemoConfig, make_caption_demo
    from audiotrain.recipes.clap import cli as clap

    data = make_caption_demo(tmp_path / "data", CaptionDemoConfig(n_clips=8, seed=0))
    first = sorted(data.rglob("*.wav"))[0]
    (data / os.fsdecode(b"ol\xe9.wav")).write_bytes(first.read_bytes())
    run = tmp_path / "run"
    # (The command's streams escape what they cannot encode, `escape_what_stdout_cannot_encode`; pytest's
    # capture is strict UTF-8, so the screen's copy goes to a stream as lenient as the command's.)
    screen = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
    with contextlib.redirect_stdout(screen), contextlib.redirect_stderr(screen):
        assert clap.main([*_tiny_demo_argv(tmp_path, run), "--data", str(data)]) == 0
    assert b"ol\xe9.wav" in (run / "data_report.txt").read_bytes()


@pytest.mark.filterwarnings("ignore:ModelCheckpoint. the resumed checkpoint")  # (it resumes elsewhere)
def test_a_checkpoint_moved_out_of_its_run_folder_names_its_own_clips_and_wins_over_another_runs_record(
    tmp_path, capsys
):
    """A checkpoint lists the clips of each split itself: --resume from one moved out of its run folder names
    the clips that came and went; beside another run's config.json it goes by its own, with a note, and goes
    on exactly; its names edited by hand are refused; an older checkpoint (no names) is as before."""
    import shutil

    from audiotrain.datasets.caption_demo import CaptionDemoConfig, make_caption_demo
    from audiotrain.recipes.clap import cli as clap

    data = make_caption_demo(tmp_path / "data", CaptionDemoConfig(n_clips=8, seed=0))
    run = tmp_path / "run"
    argv = [*_tiny_demo_argv(tmp_path, run), "--data", str(data)]
    assert clap.main(argv) == 0
    listed = json.loads((run / "config.json").read_text())["clips"]
    state_file = run / "checkpoints" / "last" / "trainer_state.json"
    assert json.loads(state_file.read_text())["clips"]["names"] == listed  # JSON, beside the digests

    # Copied into another run's folder, whose config.json lists other clips: the checkpoint's win.
    other = tmp_path / "other"
    shutil.copytree(run / "checkpoints" / "last", other / "checkpoints" / "last")
    others = {part: [f"elsewhere/{name}" for name in names] for part, names in listed.items()}
    (other / "config.json").write_text(json.dumps({"clips": others}))
    copied = [*argv, "--out", str(tmp_path / "copied"), "--train.epochs", "2"]
    capsys.readouterr()
    assert clap.main([*copied, "--resume", str(other / "checkpoints" / "last")]) == 0
    assert f"note: {other / 'config.json'} lists other clips than checkpoint" in capsys.readouterr().err
    assert clap.main([*argv, "--train.epochs", "2", "--resume", str(run / "checkpoints" / "last")]) == 0
    resumed_here, resumed_copy = (
        _model_arrays(folder / "checkpoints" / "last") for folder in (run, tmp_path / "copied")
    )
    assert resumed_here.keys() == resumed_copy.keys()
    assert all(np.array_equal(resumed_here[k], resumed_copy[k]) for k in resumed_here)  # exact

    moved = tmp_path / "moved"
    shutil.copytree(other / "checkpoints" / "last", moved)
    meta = data / "metadata.jsonl"
    rows = [json.loads(line) for line in meta.read_text().splitlines()]
    train_row = next(k for k, row in enumerate(rows) if row["split"] == "train")
    old_file = rows[train_row]["file_name"]
    new_file = old_file.replace(".wav", "_renamed.wav")
    (data / old_file).rename(data / new_file)
    rows[train_row]["file_name"] = new_file
    meta.write_text("".join(json.dumps(row) + "\n" for row in rows))
    resume = [*argv, "--out", str(tmp_path / "fresh"), "--train.epochs", "2", "--resume", str(moved)]

    def refusal(checkpoint: Path = moved) -> str:
        capsys.readouterr()
        assert clap.main([*resume[:-1], str(checkpoint)]) == 2
        return _one_error_line(capsys.readouterr().err)

    line = refusal()
    assert f"gone since: {old_file!r}; new: {new_file!r}" in line, line
    # Beside another run's config.json, the refusal too names the clips by the checkpoint's own list.
    line = refusal(other / "checkpoints" / "last")
    assert f"gone since: {old_file!r}; new: {new_file!r}" in line, line

    state = json.loads((moved / "trainer_state.json").read_text())
    edited = json.loads(json.dumps(state))
    edited["clips"]["names"]["train"][0] = "someone_else.wav"
    (moved / "trainer_state.json").write_text(json.dumps(edited))
    line = refusal()
    assert "clips.names.train is not the list its names_sha256.train was made of" in line, line

    # Wrong-typed digests or counts (a raw TypeError before), or counts the names contradict, name the field.
    for key, value, expected in [
        ("names_sha256", 5, "clips.names_sha256 must be an object of SHA-256 digests"),
        (
            "counts",
            {**state["clips"]["counts"], "train": []},
            "clips.counts.train is [], not a number of clips",
        ),
        (
            "counts",
            {**state["clips"]["counts"], "train": 99},
            "clips.counts.train is 99, but its names.train",
        ),
        ("counts", 5, "clips.counts must be an object of clip counts per split"),  # (no record before)
        (
            "names_sha256",
            {**state["clips"]["names_sha256"], "train": 5},
            "clips.names_sha256 must be an object",
        ),
        (
            "names",
            {**state["clips"]["names"], "train": [5]},
            "clips.names must be an object of the clip names",
        ),
    ]:
        edited = json.loads(json.dumps(state))
        edited["clips"][key] = value
        (moved / "trainer_state.json").write_text(json.dumps(edited))
        line = refusal()
        assert f"{moved / 'trainer_state.json'}: {expected}" in line, line

    del state["clips"]["names"]  # a checkpoint from before the names were recorded
    (moved / "trainer_state.json").write_text(json.dumps(state))
    line = refusal()
    assert "its run folder's config.json, which lists them, was not found" in line, line


# ------------------------------------------------------------------ rank 0's own work, --out, Ctrl-C
@pytest.mark.slow
@pytest.mark.serial  # a 2-process job
def test_an_error_in_rank_0s_own_work_ends_every_local_process_with_status_2(tmp_path):
    """The "before" evaluation runs on rank 0 alone: its error (here embeddings that overflow to inf) must
    end the whole job, not leave rank 1 waiting in the fit's first collective."""
    import os
    import sys

    from audiotrain.models.clap import save_pretrained

    model, config = clap_load_with_config(tiny_checkpoint(tmp_path))
    for layer in (model.audio_projection.linear1, model.audio_projection.linear2):
        layer.weight = layer.weight * 1e30  # finite, but the audio embeddings overflow
    overflow = tmp_path / "overflow"
    save_pretrained(model, config, overflow, extractor_dir=tmp_path / "ckpt", tokenizer=tmp_path / "ckpt")
    argv = ["--data", str(tone_folder(tmp_path / "data", 8)), "--pretrained", str(overflow), "--out", "run",
            "--train.processes", "2", "--train.epochs", "1", "--train.batch_size", "2",
            "--dataset.num_workers", "0", "--train.progress_bar", "false",
            "--train.compile", "false"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "audiotrain.recipes.clap", *argv],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 2, (done.stdout + done.stderr)[-3000:]
    assert "training in 2 processes" in done.stderr  # (a diagnostic)
    assert done.stderr.count("error: audio_embeds contains NaN or infinite values") == 1
    assert "Traceback" not in done.stderr


def clap_load_with_config(folder):
    from audiotrain.models.clap import load_pretrained

    return load_pretrained(folder)


def test_out_may_not_be_the_pretrained_or_data_folder_even_with_overwrite(tmp_path, capsys, monkeypatch):
    from audiotrain.recipes.clap import cli as clap

    checkpoint = tiny_checkpoint(tmp_path)
    data = tone_folder(tmp_path / "data")
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    _forbid_expensive_work(monkeypatch)
    for out, flag in [
        (checkpoint, "--pretrained"),
        (data, "--data"),
        (data / "runs" / "one", "--data"),  # inside it
        (tmp_path, "--pretrained"),  # around it
    ]:
        argv = ["--data", str(data), "--pretrained", str(checkpoint), "--out", str(out), "--overwrite"]
        assert clap.main(argv) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert f"--out {out} is the {flag} folder" in line and "choose an --out apart from it" in line
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before  # nothing written or removed


def test_ctrl_c_after_training_says_what_is_saved_and_how_to_export(tmp_path, capsys, monkeypatch):
    """Ctrl-C in the final evaluation, plots or export: exit 130 with a message, not a traceback, and the
    export command it prints writes the Hugging Face folder."""
    from audiotrain.recipes.clap import cli as clap

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(clap_train, "write_plots", ctrl_c)
    out = tmp_path / "run"
    assert clap.main(_tiny_demo_argv(tmp_path, out)) == 130
    err = capsys.readouterr().err
    assert "interrupted (Ctrl-C) after training" in err and f"{out / 'checkpoints'} are saved" in err
    command = err.splitlines()[-1].split()
    assert command[:4] == ["python", "-m", "audiotrain.recipes.clap", "export"]
    assert clap.main(command[3:]) == 0
    assert (out / "hf_model" / "model.safetensors").is_file()


def test_ctrl_c_in_the_runs_own_export_leaves_the_earlier_hf_model_as_it_was(tmp_path, capsys, monkeypatch):
    """The run wrote hf_model/ in place: Ctrl-C as it wrote left the resumed run's weights and config beside the
    earlier export's tokenizer, a folder that looks whole. It is swapped in whole, as `export` does, or not at
    all, and no temporary folder is left in the run folder."""
    from audiotrain.models.clap import ClapTokenizer
    from audiotrain.recipes.clap import cli as clap

    out = tmp_path / "run"
    argv = _tiny_demo_argv(tmp_path, out)
    assert clap.main(argv) == 0
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (out / "hf_model").iterdir()}
    names = {p.name for p in out.iterdir()}

    save_tokenizer = ClapTokenizer.save_pretrained

    def ctrl_c_in_the_export(tokenizer, folder):
        if Path(folder).name == "demo_init":  # (the demo's model folder, written at the start)
            return save_tokenizer(tokenizer, folder)
        raise KeyboardInterrupt

    # The export writes the tokenizer last, after model.safetensors and config.json.
    monkeypatch.setattr(ClapTokenizer, "save_pretrained", ctrl_c_in_the_export)
    resume = [*argv, "--train.epochs", "2", "--resume", str(out / "checkpoints" / "last")]
    assert clap.main(resume) == 130
    assert "hf_model/ missing or an earlier export" in capsys.readouterr().err
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (out / "hf_model").iterdir()} == before
    assert {p.name for p in out.iterdir()} == names  # (no .hf_model.tmp-* left)


def test_a_front_end_making_more_frames_than_the_model_takes_is_refused_at_load(
    tmp_path, capsys, monkeypatch
):
    import shutil

    checkpoint = tmp_path / "ckpt"
    shutil.copytree(Path(__file__).parent / "fixtures" / "clap_tiny", checkpoint)  # 10 s: 1001 frames
    assert _run_to_the_model_load(monkeypatch, tmp_path, checkpoint) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"{checkpoint / 'preprocessor_config.json'}: max_length_s 10" in line and "hop_length 480" in line
    assert "1001 frames" in line and "at most 256 (audio_config.spec_size 64" in line
    # Whole seconds: with the exact limit (2.55) every later command warned that transformers cannot read
    # the model, a second fix.
    assert "use max_length_s 2 or less (whole seconds, which transformers reads; at most 2.55)" in line
    # The file's nb_max_samples must follow (it is checked too): refused after that fix, it cost a run.
    assert "(and nb_max_samples, where the file holds it, max_length_s x sampling_rate: 96000 for 2)" in line

    # Following the advice, the checkpoint loads, with no warning.
    from audiotrain.recipes.clap.bundle import load_checkpoint

    settings = json.loads((checkpoint / "preprocessor_config.json").read_text())
    settings.update(max_length_s=2, nb_max_samples=96000)
    (checkpoint / "preprocessor_config.json").write_text(json.dumps(settings))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_checkpoint(str(checkpoint), None).extractor.max_length_s == 2


@pytest.mark.parametrize("num_mel_bins", [32, 16, 8])
def test_a_front_end_of_exactly_the_frames_the_model_folds_loads_and_one_more_is_refused(
    num_mel_bins, tmp_path
):
    # The limit is spec_size * (spec_size / num_mel_bins) frames: 128, 256 and 512 for spec_size 64.
    from audiotrain.features.clap import ClapFeatureExtractor
    from audiotrain.recipes.clap.bundle import check_front_end_fits

    audio = ClapAudioConfig(
        spec_size=64,
        num_mel_bins=num_mel_bins,
        window_size=4,
        patch_embeds_hidden_size=8,
        depths=(1, 1),
        num_attention_heads=(2, 2),
        hidden_size=16,
    )
    config = ClapConfig(audio_config=audio)
    limit = 64 * 64 // num_mel_bins
    assert audio.spec_width == limit

    def front_end(frames: int) -> ClapFeatureExtractor:
        # 1 s at hop 100 makes sampling_rate / 100 + 1 frames.
        return ClapFeatureExtractor(
            feature_size=num_mel_bins,
            sampling_rate=100 * (frames - 1),
            hop_length=100,
            max_length_s=1,
            frequency_max=4000,
            truncation="rand_trunc",
        )

    assert front_end(limit).n_frames == limit
    check_front_end_fits(front_end(limit), config, tmp_path)
    with pytest.raises(
        ValueError, match=f"makes {limit + 1} frames, but the audio model of .* takes at most {limit} "
    ):
        check_front_end_fits(front_end(limit + 1), config, tmp_path)


def as_transformers_5_folder(checkpoint: Path, **front_end) -> Path:
    """`checkpoint` as transformers 5's ClapProcessor.save_pretrained leaves it: the front end only in
    processor_config.json, under "feature_extractor" (with `front_end` settings changed)."""
    settings = json.loads((checkpoint / "preprocessor_config.json").read_text())
    (checkpoint / "preprocessor_config.json").unlink()
    processor = {"feature_extractor": {**settings, **front_end}, "processor_class": "ClapProcessor"}
    (checkpoint / "processor_config.json").write_text(json.dumps(processor))
    return checkpoint


@pytest.mark.parametrize(
    "front_end, expected",
    [
        (  # transformers' ClapFeatureExtractor() default: it failed at the first forward pass, naming no file
            {"truncation": "fusion"},
            "feature_extractor.truncation 'fusion' makes 4 views of each clip (the whole clip and 3 crops), "
            "but the audio model of {ckpt}/config.json takes 1 (audio_config.enable_fusion is false); use "
            "'rand_trunc'",
        ),
        (
            {"max_length_s": 10, "nb_max_samples": 480000},
            "feature_extractor.max_length_s 10 at sampling_rate",
        ),
        ({"feature_size": 8}, "feature_extractor.feature_size 8 mel bands, but the audio model of"),
        (  # every problem in one message: a fix of the first was refused for the next
            {"feature_size": 8, "truncation": "fusion"},
            "feature_extractor.feature_size 8 mel bands, but the audio model of {ckpt}/config.json expects "
            "audio_config.num_mel_bins 16; and feature_extractor.truncation 'fusion' makes 4 views",
        ),
    ],
)
def test_a_front_end_the_model_cannot_take_is_refused_at_load_naming_the_file_it_is_in(
    tmp_path, capsys, monkeypatch, front_end, expected
):
    """In a transformers 5 folder the settings are processor_config.json's (the message named a
    preprocessor_config.json that was not there), and nothing is written: a rerun needs no --overwrite."""

    checkpoint = as_transformers_5_folder(tiny_checkpoint(tmp_path), **front_end)
    assert _run_to_the_model_load(monkeypatch, tmp_path, checkpoint) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"error: {checkpoint / 'processor_config.json'}: " + expected.format(ckpt=checkpoint) in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "left_out, expected",
    [
        # Named as if the file held 64 (its own bands are the model's 16): the default was taken.
        (("feature_size",), "feature_size 64 mel bands, but the audio model of"),
        (("truncation",), "truncation 'fusion' makes 4 views of each clip"),
        (("max_length_s", "nb_max_samples"), "max_length_s 10 at sampling_rate 48000 and hop_length 480"),
        # "(expected 480000)" named neither the setting it follows from nor that the file lacks it.
        (
            ("max_length_s",),
            "nb_max_samples=120000 contradicts the other settings (expected 480000), max_length_s x "
            "sampling_rate: 10 x 48000",
        ),
    ],
)
def test_a_front_end_setting_the_file_leaves_out_is_named_with_the_default_it_took(
    tmp_path, capsys, monkeypatch, left_out, expected
):
    checkpoint = tiny_checkpoint(tmp_path)
    file = checkpoint / "preprocessor_config.json"
    settings = json.loads(file.read_text())
    file.write_text(json.dumps({k: v for k, v in settings.items() if k not in left_out}))
    assert _run_to_the_model_load(monkeypatch, tmp_path, checkpoint) == 2
    line = _one_error_line(capsys.readouterr().err)
    default = {"feature_size": "64", "truncation": "'fusion'", "max_length_s": "10"}[left_out[0]]
    assert line.startswith(f"error: {file}: ") and expected in line, line
    assert line.endswith(
        f"; {file} does not set {left_out[0]} (default {default}): transformers' ClapFeatureExtractor defaults "
        "were taken, as transformers takes them; set the checkpoint's own values there"
    ), line
    assert not (tmp_path / "run").exists()


def test_export_falls_back_to_hf_model_when_a_transformers_5_pretrained_folder_is_gone(tmp_path, capsys):
    """hf_model/ holds the front end as processor_config.json, which the fallback did not count."""
    import shutil

    from audiotrain.recipes.clap import cli as clap

    checkpoint = as_transformers_5_folder(tiny_checkpoint(tmp_path))
    run = tmp_path / "run"
    argv = ["--data", str(tone_folder(tmp_path / "data")), "--pretrained", str(checkpoint), "--out", str(run),
            "--train.epochs", "1", "--train.batch_size", "2", "--train.compile", "false",
            "--train.progress_bar", "false", "--dataset.num_workers", "0"]  # fmt: skip
    assert clap.main(argv) == 0
    assert not (run / "hf_model" / "preprocessor_config.json").exists()
    shutil.rmtree(checkpoint)
    capsys.readouterr()
    last, exported = run / "checkpoints" / "last", tmp_path / "exported"
    assert clap.main(["export", "--checkpoint", str(last), "--out", str(exported)]) == 0
    assert f"using the architecture, tokenizer and front-end files of the run's own {run / 'hf_model'}" in (
        capsys.readouterr().out
    )
    assert _same_weights(clap_load(exported), _model_arrays(last))
    front_end = (exported / "processor_config.json").read_text()
    assert front_end == (run / "hf_model" / "processor_config.json").read_text()
    # ... but only where hf_model/ holds the whole tokenizer: a vocab.json without its merges.txt is none,
    # and the refusal names what the export needs, not a loader's error of a file in the stand-in.
    assert {"vocab.json", "merges.txt"} <= {p.name for p in (run / "hf_model").iterdir()}
    for name in ("tokenizer.json", "merges.txt"):
        (run / "hf_model" / name).unlink(missing_ok=True)
    assert clap.main(["export", "--checkpoint", str(last), "--out", str(tmp_path / "again")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert (
        f"{checkpoint}: the model folder the run started from (model_source in {run / 'config.json'})" in line
    )
    assert "the run's hf_model/ does not hold config.json, the tokenizer and processor_config.json" in line
    assert not (tmp_path / "again").exists()


@pytest.mark.slow
def test_a_lone_checkpoint_exports_from_the_model_its_own_record_names(tmp_path, capsys):
    """A checkpoint copied out of its run (checkpoints/best alone, no RUN/config.json around it) needed --run,
    though its trainer_state.json records the model folder it trained from, its front end and the caption
    length: all the export reads. Where that folder is gone, the error names --run; changed, it is refused."""
    import shutil

    from audiotrain.recipes.clap import cli as clap

    model = tiny_checkpoint(tmp_path)
    run = tmp_path / "run"
    argv = ["--data", str(tone_folder(tmp_path / "data")), "--pretrained", str(model), "--out", str(run),
            "--train.epochs", "1", "--train.batch_size", "2", "--train.compile", "false",
            "--train.progress_bar", "false", "--dataset.num_workers", "0"]  # fmt: skip
    assert clap.main(argv) == 0
    lone = tmp_path / "copied" / "best"
    shutil.copytree(run / "checkpoints" / "last", lone)
    alone, with_run = tmp_path / "alone", tmp_path / "with_run"
    assert clap.main(["export", "--checkpoint", str(lone), "--out", str(alone)]) == 0
    assert clap.main(["export", "--checkpoint", str(lone), "--run", str(run), "--out", str(with_run)]) == 0
    assert sorted(p.name for p in alone.iterdir()) == sorted(p.name for p in with_run.iterdir())
    for file in with_run.iterdir():
        assert (alone / file.name).read_bytes() == file.read_bytes(), file.name
    capsys.readouterr()

    # The model folder edited after the run (no shape changes): the run's own checkpoints are refused too,
    # not exported with the edited config.json as if the folder had moved and hf_model/ stood in.
    architecture = (model / "config.json").read_text()
    edited = json.loads(architecture)
    edited["projection_hidden_act"] = "gelu" if edited.get("projection_hidden_act") == "relu" else "relu"
    (model / "config.json").write_text(json.dumps(edited))
    for checkpoint in (run / "checkpoints" / "last", lone):
        assert clap.main(["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "edited")]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert f"{model.resolve()}, the model folder it was trained from" in line
        assert "has changed since (its config.json or tokenizer files differ)" in line
        assert not (tmp_path / "edited").exists()
    (model / "config.json").write_text(architecture)
    # A model record of the wrong shape, edited by hand: named (a raw AttributeError before).
    state_file = run / "checkpoints" / "last" / "trainer_state.json"
    intact = json.loads(state_file.read_text())
    state_file.write_text(json.dumps({**intact, "model": {**intact["model"], "front_end": [1, 2]}}))
    last = run / "checkpoints" / "last"
    assert clap.main(["export", "--checkpoint", str(last), "--out", str(tmp_path / "e")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"{state_file}: model.front_end is [1, 2], not an object of front-end settings" in line, line
    assert clap.main([*argv, "--train.epochs", "2", "--resume", str(last)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"{state_file}: model.front_end is [1, 2], not an object of front-end settings" in line, line
    # A recorded front-end value no front end has, or one deleted: the record is named, not the model folder
    # as changed since (nor --run suggested).
    front_end = intact["model"]["front_end"]
    lacking = {k: v for k, v in front_end.items() if k != "fft_window_size"}
    for damaged, named in (
        ({**front_end, "padding": 1e308}, "model.front_end: padding: expected a string, got 1e+308"),
        ({**front_end, "hop_length": "inf"}, "model.front_end: hop_length: expected an integer, got 'inf'"),
        (lacking, "model.front_end lacks fft_window_size"),
    ):
        state_file.write_text(json.dumps({**intact, "model": {**intact["model"], "front_end": damaged}}))
        assert clap.main(["export", "--checkpoint", str(last), "--out", str(tmp_path / "e")]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert f"{state_file}: {named} (edited by hand?)" in line and "--run" not in line, line
    assert clap.main([*argv, "--train.epochs", "2", "--resume", str(last)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"{state_file}: model.front_end lacks fft_window_size" in line and "changed" not in line, line
    state_file.write_text(json.dumps(intact))

    settings = model / "preprocessor_config.json"
    front_end = {**json.loads(settings.read_text()), "max_length_s": 2.0}
    settings.write_text(json.dumps({**front_end, "nb_max_samples": int(2.0 * front_end["sampling_rate"])}))
    assert clap.main(["export", "--checkpoint", str(lone), "--out", str(tmp_path / "changed")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert (
        f"cannot export {lone} alone: {model.resolve()}, the model folder it was trained from, has " in line
    )
    assert "max_length_s" in line and "restore the files it trained with there" in line
    shutil.rmtree(model)
    assert clap.main(["export", "--checkpoint", str(lone), "--out", str(tmp_path / "gone")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"{model.resolve()}, the model folder it was trained from (model.source in " in line
    assert "is missing; pass --run RUN, the run folder it was trained in" in line
    # The run's own checkpoint, its model folder gone: the run's hf_model/ stands in.
    moved = tmp_path / "moved_out"
    assert clap.main(["export", "--checkpoint", str(run / "checkpoints" / "last"), "--out", str(moved)]) == 0
    assert "is missing; using the architecture, tokenizer and front-end files" in capsys.readouterr().out
    assert _same_weights(clap_load(moved), _model_arrays(run / "checkpoints" / "last"))
    assert not (tmp_path / "changed").exists() and not (tmp_path / "gone").exists()


def test_the_caption_length_asked_for_is_used_and_printed(tmp_path, capsys, monkeypatch):
    """--dataset.max_tokens is an explicit length: tokenizer_config.json's model_max_length 16 cut every
    caption to 16 tokens without a word, while config.json recorded 40."""
    from audiotrain.recipes.clap import cli as clap

    checkpoint = tiny_checkpoint(tmp_path)
    config = json.loads((checkpoint / "tokenizer_config.json").read_text())
    (checkpoint / "tokenizer_config.json").write_text(json.dumps({**config, "model_max_length": 16}))
    monkeypatch.setattr(
        clap_train, "scan_caption_folder", lambda *a, **k: pytest.fail("went on past the load")
    )
    argv = ["--data", _unscanned_folder(tmp_path / "data"), "--pretrained", str(checkpoint), "--out", str(tmp_path / "run"),
            "--dataset.max_tokens", "40"]  # fmt: skip
    with pytest.raises(pytest.fail.Exception):  # stopped once the model, tokenizer and front end are loaded
        clap.main(argv)
    out = "".join(capsys.readouterr())  # (results and notes)
    assert "captions: 40 tokens each, <s> and </s> included (--dataset.max_tokens)" in out
    assert "tokenizer_config.json's model_max_length 16 does not lower it" in out


def _checkpoint_of_38_tokens(tmp_path) -> Path:
    """The tiny checkpoint with a text tower that takes 38 tokens (max_position_embeddings 40, not 80)."""
    import dataclasses

    from audiotrain.models.clap import load_pretrained, save_pretrained

    model, config = load_pretrained(tiny_checkpoint(tmp_path / "full"))
    short = dataclasses.replace(
        config, text_config=dataclasses.replace(config.text_config, max_position_embeddings=40)
    )
    weights = dict(tree_flatten(model.parameters()))
    key = "text_model.embeddings.position_embeddings.weight"
    weights[key] = weights[key][:40]
    shorter = ClapModel(short)
    shorter.load_weights(list(weights.items()))
    return save_pretrained(shorter, short, tmp_path / "ckpt38")


def test_an_unset_caption_length_is_lowered_to_the_checkpoints_and_said_once(tmp_path, capsys, monkeypatch):
    """Unset, --dataset.max_tokens is 77 (LAION's); a checkpoint whose text tower takes 38 printed "captions:
    38 tokens each", then refused "--dataset.max_tokens 77", a value nobody typed. A typed one is refused."""
    from audiotrain.recipes.clap import cli as clap

    checkpoint = _checkpoint_of_38_tokens(tmp_path)
    monkeypatch.setattr(
        clap_train, "scan_caption_folder", lambda *a, **k: pytest.fail("went on past the load")
    )
    argv = ["--data", _unscanned_folder(tmp_path / "data"), "--pretrained", str(checkpoint), "--out", str(tmp_path / "run"),
            "--train.processes", "1"]  # fmt: skip
    with pytest.raises(pytest.fail.Exception):  # stopped once the model, tokenizer and front end are loaded
        clap.main(argv)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if "tokens" in line]
    assert lines == [
        "captions: 38 tokens each, <s> and </s> included (--dataset.max_tokens unset: the default 77, "
        "lowered to the most the checkpoint's text tower takes); longer ones are cut"
    ]
    assert "error" not in captured.err
    assert clap.main([*argv, "--dataset.max_tokens", "77"]) == 2
    captured = capsys.readouterr()
    assert "--dataset.max_tokens 77: the text tower accepts at most 38" in _one_error_line(captured.err)
    assert "captions:" not in captured.err  # refused before the line that would say 38


def test_resume_refuses_another_pretrained_model_or_front_end(tmp_path, capsys):
    import shutil

    from audiotrain.recipes.clap import cli as clap

    checkpoint = tiny_checkpoint(tmp_path)
    run = tmp_path / "run"
    argv = ["--data", str(tone_folder(tmp_path / "data")), "--pretrained", str(checkpoint), "--out", str(run),
            "--train.epochs", "1", "--train.batch_size", "2", "--train.compile", "false",
            "--train.progress_bar", "false", "--dataset.num_workers", "0"]  # fmt: skip
    assert clap.main(argv) == 0
    resume = [*argv, "--train.epochs", "2", "--resume", str(run / "checkpoints" / "last")]
    other, moved = tmp_path / "other", tmp_path / "moved"
    shutil.copytree(checkpoint, other)
    shutil.copytree(checkpoint, moved)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "projection_hidden_act": "gelu"}))
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    capsys.readouterr()
    assert clap.main([*resume, "--pretrained", str(other)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"trained from --pretrained {checkpoint}, this run loads {other}, whose config.json or" in line
    # The same config.json with another tokenizer: the captions would become other token ids.
    retokenized = tmp_path / "retokenized"
    shutil.copytree(checkpoint, retokenized)
    spec = json.loads((retokenized / "tokenizer.json").read_text())
    spec["model"]["merges"] = spec["model"]["merges"][:-1]
    (retokenized / "tokenizer.json").write_text(json.dumps(spec))
    assert clap.main([*resume, "--pretrained", str(retokenized)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert f"this run loads {retokenized}, whose config.json or tokenizer files differ" in line
    pre = json.loads((checkpoint / "preprocessor_config.json").read_text())
    (checkpoint / "preprocessor_config.json").write_text(json.dumps({**pre, "frequency_max": 8000}))
    assert clap.main(resume) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "the front end of" in line and "frequency_max 14000 → 8000" in line
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before  # nothing written
    # Every front-end setting counts, truncation too (a fused model's run resumed after its folder's
    # preprocessor_config.json was set to rand_trunc: the record says fusion, this front end does not).
    state_file = run / "checkpoints" / "last" / "trainer_state.json"
    intact = state_file.read_text()
    state = json.loads(intact)
    state["model"]["front_end"]["truncation"] = "fusion"
    state_file.write_text(json.dumps(state))
    assert clap.main([*resume, "--pretrained", str(moved)]) == 2
    assert "truncation 'fusion' → 'rand_trunc'" in _one_error_line(capsys.readouterr().err)
    state_file.write_text(intact)
    assert clap.main([*resume, "--pretrained", str(moved)]) == 0  # the same model elsewhere resumes


def test_cache_clear_refuses_while_a_demo_run_reads_its_clips(tmp_path, monkeypatch):
    """`python -m audiotrain cache clear` in another terminal deleted the clips of a CLAP demo run, which then
    failed at its next batch ("file does not exist"); the chord runs already held the cache."""
    import os
    import sys

    from audiotrain.recipes.clap import cli as clap

    cache = tmp_path / "cache"
    env = {
        **os.environ,
        "AUDIOTRAIN_CACHE_DIR": str(cache),
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
        ),
    }
    run = subprocess.Popen(  # the demo run, whose training lasts until its stdin closes
        [
            sys.executable, "-c",
            "import sys; from audiotrain import Trainer\n"
            "Trainer.fit = lambda *a, **k: print('training', flush=True) or sys.stdin.read() or sys.exit(0)\n"
            "from audiotrain.recipes.clap.cli import main\n"
            f"main(['--preset', 'quick_test', '--train.processes', '1', '--out', {str(tmp_path / 'run')!r}])\n",
        ],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert "training\n" in iter(run.stdout.readline, "")
        clips = sorted((cache / "demo" / "clap").rglob("clips/*"))
        assert len(clips) == 12
        clear = subprocess.run(
            [sys.executable, "-m", "audiotrain", "cache", "clear"], env=env, capture_output=True, text=True
        )
        assert clear.returncode == 1, clear
        assert f"error: another process is using the cache at {cache / 'features'}" in clear.stderr
        assert all(clip.is_file() for clip in clips)
    finally:
        run.communicate("")
    cleared = subprocess.run(
        [sys.executable, "-m", "audiotrain", "cache", "clear"], env=env, capture_output=True
    )
    assert cleared.returncode == 0 and not any(clip.exists() for clip in clips)  # the run has ended

    # A run in a notebook holds the cache while it reads the set, and lets it go when it returns.
    def clear_exit_status() -> int:
        return subprocess.run([sys.executable, "-m", "audiotrain", "cache", "clear"], env=env).returncode

    monkeypatch.setenv("AUDIOTRAIN_CACHE_DIR", str(cache))
    cfg = clap.parse_config(["--demo.clips", "4"])
    reading = clap_train.holding_the_demo_cache(
        lambda cfg: clap_train.demo_data_folder(cfg) and clear_exit_status()
    )
    assert reading(cfg) == 1 and clear_exit_status() == 0


def test_a_run_record_names_its_files_absolute_so_it_repeats_from_any_folder(tmp_path, monkeypatch):
    """config.json recorded --data, --dataset.zero_shot_labels, --out and --demo.folder as typed: --config
    RUN/config.json from another folder failed with "--dataset.zero_shot_labels: file not found: labels.txt"."""
    import shutil

    from audiotrain.datasets.caption_demo import LABELS
    from audiotrain.recipes.clap import cli as clap
    from audiotrain.recipes.clap.config import ClapRecipeConfig

    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copytree(
        clap_train.demo_data_folder(clap.parse_config(_tiny_demo_argv(tmp_path, "x"))), here / "data"
    )
    (here / "labels.txt").write_text("\n".join(LABELS) + "\n")
    monkeypatch.chdir(here)
    argv = [*_tiny_demo_argv(here, "run"), "--data", "data", "--dataset.zero_shot_labels", "labels.txt"]
    argv[argv.index("--demo.folder") + 1] = "cache"
    assert clap.main(argv) == 0
    recorded = json.loads((here / "run" / "config.json").read_text())["config"]
    assert (recorded["data"], recorded["out"]) == (str(here / "data"), str(here / "run"))
    assert recorded["dataset"]["zero_shot_labels"] == str(here / "labels.txt")
    assert recorded["demo"]["folder"] == str(here / "cache")

    monkeypatch.chdir(elsewhere)
    assert clap.main(["--config", str(here / "run" / "config.json"), "--out", "again"]) == 0
    assert json.loads((elsewhere / "again" / "retrieval.json").read_text())["after"]
    # A hub id, and classes given as a list, are no paths: they stay as typed.
    cfg = ClapRecipeConfig(pretrained="laion/clap-htsat-unfused")
    cfg.dataset.zero_shot_labels = "dog,cat"
    kept = clap_train.with_absolute_paths(cfg)
    assert (kept.pretrained, kept.dataset.zero_shot_labels) == ("laion/clap-htsat-unfused", "dog,cat")


def test_a_repeat_whose_hub_id_now_loads_another_snapshot_says_so(tmp_path, capsys, monkeypatch):
    """--config RUN/config.json of a run fine-tuned from a hub id records the hub id as typed: where the
    cache's main branch has moved to another commit since (a new upload fetched), the repeat trained from
    that other model without a word, though the record names the snapshot the run started from."""
    from audiotrain.recipes.clap import cli as clap

    from huggingface_hub import constants

    checkpoint, data = tiny_checkpoint(tmp_path), tone_folder(tmp_path / "clips")
    repo = tmp_path / "hf_home" / "hub" / "models--acme--tinyclap"
    for commit in ("a" * 40, "b" * 40):
        (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "blobs").mkdir()
    for file in checkpoint.iterdir():
        if file.suffix != ".npz":
            (repo / "blobs" / file.name).write_bytes(file.read_bytes())
            for commit in ("a" * 40, "b" * 40):
                (repo / "snapshots" / commit / file.name).symlink_to(Path("..", "..", "blobs", file.name))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = ["--pretrained", "acme/tinyclap", "--data", str(data), "--preset", "quick_test",
            "--train.processes", "1", "--out", str(tmp_path / "run")]  # fmt: skip
    assert clap.main(argv) == 0
    capsys.readouterr()
    (repo / "refs" / "main").write_text("b" * 40)
    record = tmp_path / "run" / "config.json"
    assert clap.main(["--config", str(record), "--out", str(tmp_path / "again")]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"note: --pretrained acme/tinyclap now loads {repo / 'snapshots' / ('b' * 40)}" in err, err
    assert f"the run of {record} started from {repo / 'snapshots' / ('a' * 40)}" in err


def test_a_repeat_from_the_same_snapshot_in_another_cache_is_not_called_another_run(
    tmp_path, capsys, monkeypatch
):
    """A paper's reader (or a teacher) repeating --config RUN/config.json of a run fine-tuned from a hub id
    loads the same commit from their own Hugging Face cache: the repeat was told 'this is another run
    (--pretrained /home/author/.cache/.../snapshots/COMMIT repeats it)', a folder of another machine."""
    from audiotrain.recipes.clap import cli as clap

    from huggingface_hub import constants

    checkpoint, data = tiny_checkpoint(tmp_path), tone_folder(tmp_path / "clips")
    for home in ("author", "reader"):
        repo = tmp_path / home / "hub" / "models--acme--tinyclap"
        (repo / "snapshots" / ("a" * 40)).mkdir(parents=True)
        (repo / "blobs").mkdir()
        for file in checkpoint.iterdir():
            if file.suffix != ".npz":
                (repo / "blobs" / file.name).write_bytes(file.read_bytes())
                (repo / "snapshots" / ("a" * 40) / file.name).symlink_to(Path("..", "..", "blobs", file.name))
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for home in ("author", "reader"):
        monkeypatch.setenv("HF_HOME", str(tmp_path / home))
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / home / "hub"))
        if home == "author":
            argv = ["--pretrained", "acme/tinyclap", "--data", str(data), "--preset", "quick_test",
                    "--train.processes", "1", "--out", str(tmp_path / "run")]  # fmt: skip
        else:
            argv = ["--config", str(tmp_path / "run" / "config.json"), "--out", str(tmp_path / "again")]
        assert clap.main(argv) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "note: --pretrained acme/tinyclap now loads" not in err, err


def test_data_report_lists_every_skipped_clip_and_the_screen_points_at_it(tmp_path, capsys):
    """data_report.txt held the screen's list: 20 skips, then "... and 50 more", so the unreadable clips
    and orphan captions sorted after them were named nowhere, though --help promises every skip there."""
    from audiotrain.recipes.clap import cli as clap

    data = tone_folder(tmp_path / "clips", clips=8)
    for i in range(22):  # sorted first: aa_...
        (data / f"aa_{i:02d}.wav").write_bytes((data / "tone0.wav").read_bytes())  # no caption beside it
    (data / "zz_broken.wav").write_bytes(b"not audio at all")
    (data / "zz_broken.txt").write_text("a clip that does not decode\n")
    (data / "zz_orphan.txt").write_text("a caption without its clip\n")
    out = tmp_path / "run"
    assert clap.main([*_tiny_demo_argv(tmp_path, out), "--data", str(data)]) == 0
    printed = "".join(capsys.readouterr())  # (results and notes)
    assert "... and 4 more (every one is listed in the run folder's data_report.txt)" in printed
    assert "zz_broken" not in printed and "zz_orphan" not in printed
    report = (out / "data_report.txt").read_text()
    assert all(f"aa_{i:02d}.wav" in report for i in range(22)) and "... and" not in report
    assert "zz_broken.wav" in report and "zz_orphan.txt" in report


def test_the_readme_names_the_main_training_flags_and_its_example_command_parses():
    """The README's CLAP section named only --train.batch_size and --train.max_steps of the training settings:
    how to set the epochs, the learning rate, freezing and precision was left to --help."""
    import re
    import shlex
    from pathlib import Path

    from audiotrain.recipes.clap.cli import build_parser, parse_arguments

    readme = (Path(__file__).parents[1] / "README.md").read_text().split("## CLAP fine-tuning\n", 1)[1]
    section = readme.split("\n## ", 1)[0]
    main = ["--train.epochs", "--task.learning_rate", "--task.warmup_steps", "--task.weight_decay"]
    main += ["--task.freeze_audio", "--task.freeze_text", "--task.freeze_audio_stages"]
    main += ["--task.freeze_text_layers", "--train.precision", "--train.accumulate_grad_batches"]
    assert not [flag for flag in main if not re.search(re.escape(flag) + r"\b", section)]
    command = section.split("The main training flags", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    words = shlex.split(command.replace("\\\n", " "))
    cfg, _ = parse_arguments(build_parser(), words[words.index("--data") :])
    assert (cfg.train.epochs, cfg.task.freeze_audio_stages, cfg.train.precision) == (5, 2, "bf16-mixed")


def test_eval_split_naming_the_training_split_trains_and_scores_every_clip_of_it(tmp_path, capsys):
    """The warning and the README say every score is measured on the clips it trains on; the run held 2 of
    the 9 training clips out of training and scored only those."""
    from audiotrain.recipes.clap import main

    out = tmp_path / "run"
    argv = ["--preset", "quick_test", "--dataset.eval_split", "train", "--out", str(out),
            "--demo.folder", str(tmp_path / "cache")]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert "measured on clips it trains on" in printed.err
    clips = json.loads((out / "config.json").read_text())["clips"]
    assert len(clips["train"]) == 9 and sorted(clips["eval"]) == sorted(clips["train"])
    assert "training on 9 clips, evaluating on 9" in printed.err


def test_ranked_by_val_loss_the_lowest_is_exported_and_an_accumulation_plans_every_step(tmp_path, capsys):
    """Without per-epoch retrieval (the quick_test preset) the best checkpoint is the one of the lowest
    val_loss: no test ranked by val_loss, so the highest would have been exported unnoticed. And with
    gradient accumulation over a batch count it does not divide (3 batches, 2 a step: 2 steps an epoch, the
    last of one batch) the schedule planned 1 step an epoch, and the learning rate sat at its minimum for
    the second half of the run."""
    from audiotrain.models.clap import load_pretrained
    from audiotrain.recipes.clap import main

    data = tone_folder(tmp_path / "tones", clips=9)
    run_dir = tmp_path / "run"
    argv = ["--preset", "quick_test", "--data", str(data), "--out", str(run_dir), "--train.epochs", "3",
            "--train.batch_size", "2", "--train.accumulate_grad_batches", "2"]  # fmt: skip
    assert main(argv) == 0
    printed = "".join(capsys.readouterr())  # (results and notes)
    assert "training on 7 clips" in printed  # 3 batches of 2 an epoch
    losses = json.loads((run_dir / "history.json").read_text())["val_loss"]
    lowest = int(np.argmin(losses))
    assert len(losses) == 3 and lowest != int(np.argmax(losses)), losses  # (the ranking can tell them apart)
    (best,) = (run_dir / "checkpoints").glob(f"epoch={lowest}-*")
    assert f"best checkpoint by val_loss ({losses[lowest]:.4f}): {best}" in printed
    exported, _ = load_pretrained(run_dir / "hf_model")
    assert _same_weights(exported, _model_arrays(best))
    planned = json.loads((run_dir / "config.json").read_text())["config"]["task"]["total_steps"]
    taken = json.loads((run_dir / "checkpoints" / "last" / "trainer_state.json").read_text())
    assert planned == taken["progress"]["global_step"] == 6


def test_a_demo_model_trained_on_your_folder_does_not_say_it_trained_on_synthetic_sounds(tmp_path, capsys):
    """Without --pretrained a run on --data trains the demo's tiny model on the user's clips, but its last
    line said "(offline demo: a tiny model trained from scratch on synthetic sounds)"."""
    from audiotrain.recipes.clap import main

    data = tone_folder(tmp_path / "tones", clips=5)
    argv = ["--preset", "quick_test", "--data", str(data), "--out", str(tmp_path / "run"),
            "--train.max_steps", "1"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "synthetic sounds" not in printed
    assert printed.rstrip().endswith(
        f"(offline demo: a tiny model trained from scratch on the clips of {data})"
    )


def test_with_one_evaluation_clip_the_last_checkpoint_is_exported_with_a_warning(tmp_path, capsys):
    """One clip scores val_loss 0 and mAP@10 1 in every epoch: "best" stayed epoch 0, and hf_model/ silently
    held the first epoch's weights of several."""
    from audiotrain.models.clap import load_pretrained
    from audiotrain.recipes.clap import main

    data = tone_folder(tmp_path / "tones", clips=5)  # 4 train, 1 held out
    run_dir = tmp_path / "run"
    argv = ["--preset", "quick_test", "--data", str(data), "--out", str(run_dir), "--train.epochs", "3",
            "--train.retrieval_every_epoch", "true"]  # fmt: skip
    assert main(argv) == 0
    printed = "".join(capsys.readouterr())  # (results and notes)
    assert "training on 4 clips, evaluating on 1 " in printed
    assert "warning: only 1 evaluation clip: every epoch scores the same on it" in printed
    assert "the last checkpoint stands for it" in printed
    assert "note: only 1 evaluation clip: it is always ranked first" in printed and "k/1" not in printed
    last = run_dir / "checkpoints" / "last"
    exported, _ = load_pretrained(run_dir / "hf_model")
    assert _same_weights(exported, _model_arrays(last))
    first = next((run_dir / "checkpoints").glob("epoch=0-*"), None)
    assert first is None or not _same_weights(exported, _model_arrays(first))
    assert "(the last checkpoint, with no best to choose: " in printed


def test_a_misspelt_flag_under_the_launcher_is_said_once_by_rank_0(tmp_path, monkeypatch, capsys):
    """Under `python -m audiotrain launch -n 2` each rank printed the usage error of a misspelt flag."""
    from audiotrain.distributed import failures
    from audiotrain.recipes.clap import main

    monkeypatch.setattr(failures, "MAIN_REPORTS_GRACE_S", 0.0)
    argv = ["--preset", "quick_test", "--out", str(tmp_path / "run"), "--bogus", "1"]
    for rank, said in (("0", True), ("1", False)):
        monkeypatch.setenv("MLX_RANK", rank)
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert ("unrecognized arguments: --bogus 1" in err) is said, err
    assert not (tmp_path / "run").exists()


def test_the_chord_recipes_flag_names_and_a_mistyped_data_folder_get_a_pointed_error(tmp_path, capsys):
    """--run_dir (the chord recipe's name for --out) was refused without a hint; cv's errors pointed at the
    training command's help; a mistyped --data printed the 5-line demo banner first, and its error did not
    name the flag."""
    from audiotrain.recipes.clap import main

    for command in ([], ["cv"]):
        status = main([*command, "--preset", "quick_test", "--run_dir", str(tmp_path / "x")])
        assert status == 2
        err = capsys.readouterr().err
        assert "unrecognized arguments: --run_dir" in err and "did you mean --out?" in err
        assert f"(see python -m audiotrain.recipes.clap {'cv ' if command else ''}--help for every" in err
        argv = [
            *command,
            "--preset",
            "quick_test",
            "--data",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path / "o"),
        ]
        assert main(argv) == 2
        printed = capsys.readouterr()
        assert "OFFLINE DEMO" not in printed.out + printed.err
        assert _one_error_line(printed.err) == (
            f"error: --data {tmp_path / 'nope'}: no such folder (expected a folder of audio files with captions)"
        )
        assert not (tmp_path / "o").exists()
        afile = tmp_path / "clips.zip"
        afile.write_text("not a folder")
        assert (
            main([*command, "--preset", "quick_test", "--data", str(afile), "--out", str(tmp_path / "o")])
            == 2
        )
        assert _one_error_line(capsys.readouterr().err) == (
            f"error: --data {afile}: not a folder (expected a folder of audio files with captions)"
        )
        assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", [[], ["cv"], ["export"]])
def test_help_is_plain_text_wrapped_to_the_terminal(command, capsys, monkeypatch):
    """--help printed the module docstring as it was: reST markup (``, ::) in lines of up to 166 columns."""
    from audiotrain.recipes.clap import main

    for columns in (80, 100):
        monkeypatch.setenv("COLUMNS", str(columns))
        status = main([*command, "--help"])
        assert status == 0
        text = capsys.readouterr().out
        described = text.split("\n\n", 1)[1]  # (after argparse's usage lines)
        assert "``" not in text and not re.search(r"::$", text, re.MULTILINE)
        assert max(len(line) for line in described.splitlines()) <= columns - 2
        # Commands are broken with a shell's backslash, so that they still paste.
        assert re.search(r"python -m audiotrain\.recipes\.clap .*\\\n      \S", described)
    if not command:
        assert "- hf_model/: the best checkpoint" in text


@pytest.mark.parametrize("command", [[], ["evaluate"]])
def test_the_help_says_a_hub_id_loads_from_the_cache_offline(command, capsys, monkeypatch):
    """--help said a hub id works "(online)" / "when online", while a hub id the Hugging Face cache holds
    loads offline (HF_HUB_OFFLINE=1), as README says: a user offline passed the snapshot's path instead."""
    from audiotrain.recipes.clap import main

    monkeypatch.setenv("COLUMNS", "200")  # (one line per sentence: the words are not broken across lines)
    assert main([*command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "online)" not in text and "when online" not in text
    assert "from the Hugging Face cache offline" in text


def test_the_help_lists_everything_the_demos_run_folder_holds(demo_run, capsys, monkeypatch):
    """`clap --help` lists what the run folder (--out) holds; it left out demo_init/, which the offline demo
    writes (the tokenizer, front end and config that export rebuilds the model from), so a user cleaning up
    a run folder could not tell whether it was needed."""
    from audiotrain.recipes.clap import main

    result, _ = demo_run
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["--help"]) == 0
    listed = capsys.readouterr().out
    for entry in result["run_dir"].iterdir():
        if not entry.name.startswith("."):  # (a run's hidden lock and temporary files)
            assert f"\n- {entry.name}{'/' if entry.is_dir() else ''}: " in listed, entry.name


def test_counts_of_one_are_singular(tmp_path, capsys):
    """A small folder printed "1 clip(s) held out", "1 optimizer steps planned", "1 evaluation clips"."""
    from audiotrain.recipes.clap import main

    data = tone_folder(tmp_path / "tones", clips=5)
    assert main(["--preset", "quick_test", "--data", str(data), "--out", str(tmp_path / "run")]) == 0
    printed = "".join(capsys.readouterr())  # (results and notes)
    assert "with 1 clip held out at random" in printed and "; 1 optimizer step planned" in printed
    assert "only 1 evaluation clip:" in printed
    assert not re.search(r"\(s\)|\b1 (optimizer steps|evaluation clips|clips)\b", printed)


def test_the_few_evaluation_clips_note_stops_at_few_eval_clips():
    from audiotrain.recipes.clap.data import FEW_EVAL_CLIPS

    assert clap_train.few_clips_note(FEW_EVAL_CLIPS) is None
    assert f"only {FEW_EVAL_CLIPS - 1} evaluation clips" in clap_train.few_clips_note(FEW_EVAL_CLIPS - 1)


def test_a_folder_of_two_clips_is_refused_saying_why_and_how_many_it_takes(tmp_path, capsys):
    """Two clips without splits (one held out to evaluate) were refused with "only 1 training clip; need at
    least 2", and no word of why a second is needed nor what to change: add clips, as no setting helps."""
    from audiotrain.recipes.clap import main

    data = tone_folder(tmp_path / "tones", clips=2)
    assert main(["--preset", "quick_test", "--data", str(data), "--out", str(tmp_path / "run")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "only 1 training clip; need at least 2, as a contrastive batch tells" in line, line
    held = "(the folder has no splits: --dataset.eval_fraction of them, 1 at least, evaluate)"
    assert line.endswith(f": add clips {held}"), line
    assert not (tmp_path / "run").exists()


def test_a_split_that_leaves_one_training_clip_is_refused_before_the_run_folder(tmp_path, capsys):
    """A contrastive batch needs two clips: one training clip is an error before the run starts."""
    from audiotrain.recipes.clap import main

    data = tone_folder(tmp_path / "tones", clips=3)
    out = tmp_path / "run"
    argv = [
        "--preset",
        "quick_test",
        "--data",
        str(data),
        "--out",
        str(out),
        "--dataset.eval_fraction",
        "0.6",
    ]
    assert main(argv) == 2
    assert "only 1 training clip; need at least 2" in _one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_clips_without_a_label_are_left_out_of_zero_shot_and_counted(tmp_path, capsys, monkeypatch):
    """A folder's `label` column with one evaluation clip left empty: zero-shot classification was skipped
    without a word (it was scored only when every clip had a label); with a training clip left empty too,
    the classes offered shrank to the evaluation clips' own. Now the labelled clips are scored against
    every class of the folder, as with --dataset.zero_shot_labels, and the unlabelled ones counted."""
    from audiotrain.recipes.clap import main

    import soundfile as sf

    data = tmp_path / "data"
    data.mkdir()
    rows = ["file_name,caption,label,split"]
    t = np.arange(16000) / 16000
    plan = [("dog", "train"), ("cat", "train"), ("", "train"), ("rain", "train"),
            ("dog", "validation"), ("cat", "validation"), ("", "validation")]  # fmt: skip
    for i, (label, split) in enumerate(plan):
        sf.write(
            data / f"c{i}.wav", (0.3 * np.sin(2 * np.pi * (200 + 100 * i) * t)).astype(np.float32), 16000
        )
        rows.append(f"c{i}.wav,a sine tone number {i},{label},{split}")
    (data / "metadata.csv").write_text("\n".join(rows) + "\n")
    offered = []
    real_evaluate = clap_train.evaluate_clap

    def recording(model, dataset, *args, **kwargs):
        offered.append(kwargs["labels"])
        return real_evaluate(model, dataset, *args, **kwargs)

    monkeypatch.setattr(clap_train, "evaluate_clap", recording)
    run_dir = tmp_path / "run"
    argv = ["--preset", "quick_test", "--data", str(data), "--out", str(run_dir), "--train.epochs", "1"]
    assert main(argv) == 0
    assert "note: 1 evaluation clip without a 'label' left out of zero-shot classification" in (
        capsys.readouterr().err
    )
    assert offered and all(labels == ["cat", "dog", "rain"] for labels in offered)
    scores = json.loads((run_dir / "retrieval.json").read_text())
    assert 0.0 <= scores["after"]["zero_shot_top1_accuracy"] <= 1.0


def test_a_test_split_gets_the_after_scores_and_the_evaluation_split_only_chooses_the_checkpoint(
    tmp_path, capsys, monkeypatch
):
    """Clotho's protocol (choose on validation, report on evaluation): one split both chose the checkpoint and
    gave the "after" scores, with no word about it."""
    import json

    from audiotrain.recipes.clap import ClapDatasetConfig, main
    from audiotrain.recipes.clap.data import choose_splits

    import soundfile as sf

    data = tmp_path / "clotho"
    data.mkdir()
    rows = ["file_name,caption_1,caption_2,label,split"]
    t = np.arange(16000) / 16000
    # Splits of different sizes, and classes some splits lack ("rain" trains only, "bird" is tested only).
    plan = [("dog", "development"), ("cat", "development"), ("rain", "development"), ("dog", "development"),
            ("dog", "validation"), ("cat", "validation"),
            ("dog", "evaluation"), ("cat", "evaluation"), ("bird", "evaluation")]  # fmt: skip
    for i, (label, split) in enumerate(plan):
        wave = (0.3 * np.sin(2 * np.pi * (200 + 100 * i) * t)).astype(np.float32)
        sf.write(data / f"c{i}.wav", wave, 16000)
        second = f"tone {i} again" if split == "evaluation" else ""  # 2 captions each in evaluation, else 1
        rows.append(f"c{i}.wav,a sine tone number {i},{second},{label},{split}")
    (data / "metadata.csv").write_text("\n".join(rows) + "\n")
    common = ["--preset", "quick_test", "--data", str(data), "--dataset.train_split", "development",
              "--train.epochs", "2", "--train.retrieval_every_epoch", "true"]  # fmt: skip
    run_dir = tmp_path / "run"
    argv = [*common, "--out", str(run_dir), "--dataset.eval_split", "validation",
            "--dataset.test_split", "evaluation"]  # fmt: skip
    # A zero-shot label list that misses a label of the test split's clips is refused before the run folder
    # is written (then the same command with the list put right was refused: "--out ... already holds files").
    assert main([*argv, "--dataset.zero_shot_labels", "dog,cat,rain"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "--dataset.zero_shot_labels: the evaluation clips' labels ['bird'] are not in" in line
    assert not run_dir.exists()

    scored = []  # (the clips and zero-shot classes of each scoring: before, each validation, after)
    real_evaluate = clap_train.evaluate_clap

    def recording(model, dataset, *args, **kwargs):
        scored.append(([c.name for c in dataset.clips], kwargs["labels"]))
        return real_evaluate(model, dataset, *args, **kwargs)

    monkeypatch.setattr(clap_train, "evaluate_clap", recording)
    assert main(argv) == 0
    printed = "".join(capsys.readouterr())  # (results and notes)
    assert (
        "training on 4 clips, validating on 2 (choosing the best checkpoint), scoring 3 before and after"
        in (printed)
    )
    assert "scored after training: split 'test'" in printed and "left out: " not in printed
    assert "retrieval on the test split 'test' (after: best checkpoint by val_mAP@10" in printed
    assert "lean high" not in printed
    # "before" and "after" score the test split, each validation the validation split; zero-shot chooses
    # among every class of the folder, not only those of the clips scored.
    test_clips, validation_clips = ["c6.wav", "c7.wav", "c8.wav"], ["c4.wav", "c5.wav"]
    assert [clips for clips, _ in scored] == [test_clips, validation_clips, validation_clips, test_clips]
    assert all(labels == ["bird", "cat", "dog", "rain"] for _, labels in scored)
    results = json.loads((run_dir / "retrieval.json").read_text())
    assert (results["n_eval_clips"], results["n_eval_captions"]) == (3, 6)  # the evaluation split's
    assert results["eval_captions_per_clip"] == [2, 2, 2]
    # Without a test split the "after" scores come from the split that chose the checkpoint: said so.
    assert main([*common, "--out", str(tmp_path / "run2"), "--dataset.eval_split", "evaluation"]) == 0
    printed = "".join(capsys.readouterr())  # (results and notes)
    assert "note: these scores come from the clips that chose the checkpoint" in printed
    assert "--dataset.test_split evaluation" in printed
    # A test split that trains or chooses is refused; an unset eval split then picks another one.
    status = main([*common, "--out", str(tmp_path / "run3"), "--dataset.eval_split", "evaluation",
          "--dataset.test_split", "test"])  # fmt: skip
    assert status == 2
    assert "--dataset.test_split) must be a split other than" in capsys.readouterr().err
    folder = _split_folder(tmp_path, ["train"] * 4 + ["validation", "test"])
    train, held, how = choose_splits(folder, ClapDatasetConfig(test_split="validation"), 0)
    assert [c.split for c in held] == ["test"] and "scored after training: split 'validation'" in how


def test_a_resume_without_the_test_split_flag_scores_the_split_the_run_did(tmp_path, capsys):
    """Resumed without --dataset.test_split, the run's clips differed from the checkpoint's: refused, with
    advice to restore data that had not changed."""
    import json

    from audiotrain.recipes.clap import main

    import soundfile as sf

    data = tmp_path / "clotho"
    data.mkdir()
    rows = ["file_name,caption_1,split"]
    t = np.arange(16000) / 16000
    for i, split in enumerate(["development"] * 4 + ["validation"] * 2 + ["evaluation"] * 2):
        sf.write(
            data / f"c{i}.wav", (0.3 * np.sin(2 * np.pi * (200 + 100 * i) * t)).astype(np.float32), 16000
        )
        rows.append(f"c{i}.wav,a sine tone number {i},{split}")
    (data / "metadata.csv").write_text("\n".join(rows) + "\n")
    run_dir = tmp_path / "run"
    common = ["--preset", "quick_test", "--data", str(data), "--dataset.train_split", "development",
              "--dataset.eval_split", "validation", "--out", str(run_dir)]  # fmt: skip
    assert main([*common, "--train.epochs", "1", "--dataset.test_split", "evaluation"]) == 0
    capsys.readouterr()
    last = str(run_dir / "checkpoints" / "last")
    assert main([*common, "--train.epochs", "2", "--resume", last]) == 0
    printed = "".join(capsys.readouterr())  # (results and notes)
    assert f"--resume {last}: going on with the settings its run recorded" in printed
    assert json.loads((run_dir / "history.json").read_text())["epoch"] == [0, 1]
    assert (
        json.loads((run_dir / "config.json").read_text())["config"]["dataset"]["test_split"] == "evaluation"
    )


def test_a_full_disk_during_an_export_is_one_line_naming_the_folder_and_keeps_the_earlier_export(
    tmp_path, monkeypatch
):
    from audiotrain._files import OutputWriteError
    from audiotrain.recipes.clap import bundle as clap_bundle

    from safetensors import SafetensorError

    out = tmp_path / "hf_model"
    out.mkdir()
    (out / "config.json").write_text("{}")  # an earlier export

    def fills_the_disk(bundle, folder):  # as safetensors reports a full disk: no OSError, no file named
        folder.mkdir()
        (folder / "config.json").write_text("{}")
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(clap_bundle, "export_bundle", fills_the_disk)
    with pytest.raises(OutputWriteError) as raised:
        clap_bundle.replace_export(None, out)
    assert str(raised.value) == (
        f"cannot write {out}: no space left on device; nothing was written there "
        "(its earlier export is as it was)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf_model"]
    assert [p.name for p in out.iterdir()] == ["config.json"]


def test_an_export_stopped_by_a_full_disk_exits_1_as_the_help_says_not_2_the_status_of_a_refusal(
    demo_run, tmp_path, monkeypatch, capsys
):
    """`clap --help` says 2 is a refusal (a flag, a setting, a file) and 1 a command stopped, not done; an
    export that a full disk stopped exited 2, so a script retrying once there is room read it as refused."""
    from audiotrain.recipes.clap import bundle as clap_bundle
    from audiotrain.recipes.clap import cli as clap

    from safetensors import SafetensorError

    def fills_the_disk(bundle, folder):  # as safetensors reports a full disk
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    result, _ = demo_run
    last = result["run_dir"] / "checkpoints" / "last"
    monkeypatch.setattr(clap_bundle, "export_bundle", fills_the_disk)
    monkeypatch.delenv("AUDIOTRAIN_TRACEBACK", raising=False)
    capsys.readouterr()
    assert clap.main(["export", "--checkpoint", str(last), "--out", str(tmp_path / "e")]) == 1
    assert "no space left on device" in _one_error_line(capsys.readouterr().err)


def test_an_export_whose_final_rename_fails_puts_the_earlier_export_back(tmp_path, monkeypatch):
    # The earlier export is moved aside before the new one is renamed in; where that rename fails (a
    # permission or a network share refusing it), hf_model/ must hold the earlier export again, not nothing.
    from audiotrain.recipes.clap import bundle as clap_bundle

    out = tmp_path / "hf_model"
    out.mkdir()
    (out / "config.json").write_text('{"earlier": true}')
    monkeypatch.setattr(clap_bundle, "export_bundle", lambda bundle, folder: folder.mkdir())
    rename = os.replace

    def refuses_the_new_export(source, target):
        if Path(source).name.startswith(".hf_model.tmp-"):
            raise PermissionError(13, "Permission denied", str(target))
        rename(source, target)

    monkeypatch.setattr(os, "replace", refuses_the_new_export)
    with pytest.raises(PermissionError):
        clap_bundle.replace_export(None, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf_model"]  # nothing hidden left beside it
    assert [p.name for p in out.iterdir()] == ["config.json"]
    assert (out / "config.json").read_text() == '{"earlier": true}'


def test_an_export_whose_checkpoint_a_save_replaces_midway_is_of_one_save(demo_run, tmp_path, monkeypatch):
    """Its state (the model's settings, its epoch) was read from one save of a running fit and its weights
    from the next, without a word."""
    from audiotrain.recipes.clap import bundle as clap_bundle
    from audiotrain.train import checkpoint as ckpt

    result, _ = demo_run
    checkpoints = result["run_dir"] / "checkpoints"
    # The save the run kept beside `last` (whichever epoch scored best), and `last`.
    (first,) = (p for p in checkpoints.iterdir() if p.name.startswith("epoch="))
    second = checkpoints / "last"
    last = tmp_path / "elsewhere" / "last"
    ckpt.copy_checkpoint(first, last)
    clap_bundle.export_checkpoint(second, tmp_path / "alone", run_dir=result["run_dir"])
    load_task_weights, loads = clap_bundle.load_task_weights, []

    def save_meanwhile(task, folder):
        loads.append(folder)
        if len(loads) == 1:  # the running fit saves `last` again after the state was read
            ckpt.copy_checkpoint(second, last)
        load_task_weights(task, folder)

    monkeypatch.setattr(clap_bundle, "load_task_weights", save_meanwhile)
    clap_bundle.export_checkpoint(last, tmp_path / "out", run_dir=result["run_dir"])
    assert len(loads) == 2  # read again
    exported = (tmp_path / "out" / "model.safetensors").read_bytes()
    assert exported == (tmp_path / "alone" / "model.safetensors").read_bytes()


def test_two_exports_into_one_new_out_refuse_the_second_and_keep_the_first(demo_run, tmp_path, monkeypatch):
    """Both checked that --out was new when they started; the one that finished last moved the other's export
    aside and deleted it, and both said "exported ... to out"."""
    from audiotrain.recipes.clap import bundle as clap_bundle

    result, _ = demo_run
    checkpoints = result["run_dir"] / "checkpoints"
    out, alone = tmp_path / "out", tmp_path / "alone"
    clap_bundle.export_checkpoint(checkpoints / "epoch=1-step=4", alone)
    export_bundle = clap_bundle.export_bundle

    def the_other_export_ends_meanwhile(bundle, folder):
        monkeypatch.setattr(clap_bundle, "export_bundle", export_bundle)
        clap_bundle.export_checkpoint(checkpoints / "epoch=1-step=4", out)  # started as late, done first
        export_bundle(bundle, folder)

    monkeypatch.setattr(clap_bundle, "export_bundle", the_other_export_ends_meanwhile)
    with pytest.raises(
        FileExistsError, match=r"--out .*out was written by another export while this one ran"
    ):
        clap_bundle.export_checkpoint(checkpoints / "last", out)
    assert (out / "model.safetensors").read_bytes() == (alone / "model.safetensors").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alone", "out"]  # (no leftover of the refused one)


def test_overwrite_replaces_an_export_holding_a_killed_exports_leftover_but_not_a_link_to_one(
    demo_run, tmp_path
):
    """A hidden .tmp- file is what a killed export leaves: the folder is still an earlier export. A link is
    not: replacing it renamed the link itself aside and left the folder it pointed to as it was."""
    from audiotrain.recipes.clap import bundle as clap_bundle

    result, _ = demo_run
    last = result["run_dir"] / "checkpoints" / "last"
    out = tmp_path / "out"
    clap_bundle.export_checkpoint(last, out)
    leftover = out / f".tmp-{'a' * 32}.json"
    leftover.write_bytes(b"")
    clap_bundle.export_checkpoint(last, out, overwrite=True)
    assert not leftover.exists() and (out / clap_bundle.EXPORT_MARKER).is_file()
    link = tmp_path / "link"
    link.symlink_to(out)
    kept = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(
        FileExistsError, match=rf"--out {re.escape(str(link))} is not an earlier export: it holds a link to"
    ):
        clap_bundle.export_checkpoint(last, link, overwrite=True)
    assert link.is_symlink() and link.resolve() == out.resolve()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "out"]


def test_overwrite_replaces_an_export_opened_in_the_finder_but_a_folder_of_finder_files_alone_is_refused(
    demo_run, tmp_path
):
    """Opening an export in the Finder leaves .DS_Store in it (._config.json too on an exFAT drive):
    `export --overwrite` refused, "--out out is not an earlier export: it holds .DS_Store". macOS made them:
    the export is replaced. A folder holding nothing but them is not an export, and is refused so."""
    from audiotrain.recipes.clap import bundle as clap_bundle

    result, _ = demo_run
    last = result["run_dir"] / "checkpoints" / "last"
    out = tmp_path / "out"
    clap_bundle.export_checkpoint(last, out)
    (out / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (out / "._config.json").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00")
    clap_bundle.export_checkpoint(last, out, overwrite=True)
    assert (out / clap_bundle.EXPORT_MARKER).is_file() and not (out / ".DS_Store").exists()
    finder = tmp_path / "finder"
    finder.mkdir()
    (finder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    with pytest.raises(FileExistsError, match=r"is not an earlier export: it holds \.DS_Store;"):
        clap_bundle.export_checkpoint(last, finder, overwrite=True)


def test_an_out_that_is_a_file_or_inside_a_checkpoint_copied_elsewhere_is_refused(demo_run, tmp_path):
    """Inside a checkpoint outside the run's checkpoints/ (a copy), the export's files would sit among the
    checkpoint's; a file as --out is the user's."""
    import shutil

    from audiotrain.recipes.clap import bundle as clap_bundle

    result, _ = demo_run
    last = result["run_dir"] / "checkpoints" / "last"
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    with pytest.raises(FileExistsError, match=r"notes\.txt is a file; expected a folder"):
        clap_bundle.export_checkpoint(last, a_file, overwrite=True)
    # ... nor among its parents: said before the checkpoint's model is loaded, naming the flag.
    with pytest.raises(
        NotADirectoryError, match=r"^--out .*notes\.txt/hf: .*notes\.txt is a file, not a folder, so"
    ):
        clap_bundle.export_checkpoint(last, a_file / "hf")
    assert a_file.read_text() == "mine"
    copy = tmp_path / "copy"
    shutil.copytree(last, copy)
    with pytest.raises(ValueError, match=r"is a trainer checkpoint, which the export would damage"):
        clap_bundle.export_checkpoint(copy, copy / "hf", run_dir=result["run_dir"], overwrite=True)
    assert not (copy / "hf").exists()


def test_an_export_reading_a_run_config_json_of_another_kind_names_the_field(demo_run, tmp_path, capsys):
    import shutil

    from audiotrain.recipes.clap import cli as clap

    result, _ = demo_run
    run = tmp_path / "run"
    shutil.copytree(result["run_dir"] / "checkpoints" / "last", run / "checkpoints" / "last")
    (run / "config.json").write_text(json.dumps({"model_source": str(result["run_dir"]), "config": {}}))
    capsys.readouterr()
    out = tmp_path / "out"
    assert clap.main(["export", "--checkpoint", str(run / "checkpoints" / "last"), "--out", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert (
        f"{run / 'config.json'}: field 'demo' missing or not a bool; expected the config.json of a CLAP"
        in line
    )
    assert not out.exists()


def test_what_a_killed_run_was_writing_goes_with_the_resume_that_goes_on_in_its_folder(
    tmp_path, capsys, monkeypatch
):
    from audiotrain.recipes.clap import cli as clap

    run = tmp_path / "run"
    argv = _tiny_demo_argv(tmp_path, run)
    assert clap.main([*argv, "--task.total_steps", "2"]) == 0
    # SIGKILLed while drawing a plot, writing its scores and exporting: hidden leftovers of atomic writes.
    killed = [run / f".tmp-{'a' * 32}.json", run / "plots" / f".tmp-{'b' * 32}.png"]
    for path in killed:
        path.write_bytes(b"")
    export = run / ".hf_model.tmp-0123abcd"
    export.mkdir()
    (export / "model.safetensors").write_bytes(b"\0" * 100)
    mine = [run / ".tmp-notes.json", run / ".hf_model.tmp-mine"]  # not the writers' names: kept
    mine[0].write_text("mine")
    mine[1].mkdir()
    capsys.readouterr()
    assert clap.main([*argv, "--train.epochs", "2", "--resume", str(run / "checkpoints" / "last")]) == 0
    assert not any(path.exists() for path in [*killed, export])
    assert all(path.exists() for path in mine)


def test_a_checkpoint_copied_into_another_runs_folder_is_not_exported_with_that_runs_front_end(
    tmp_path, capsys, monkeypatch
):
    """The export reads the model files of the run around the checkpoint: a checkpoint dropped into the
    checkpoints/ of a run from another front end shipped its weights with that run's front end, silently."""
    import shlex
    import shutil

    from audiotrain.recipes._run import shell_command
    from audiotrain.recipes.clap import cli as clap
    from audiotrain.recipes.clap.train import export_command

    own_model = tiny_checkpoint(tmp_path)
    other_model = tmp_path / "other_model"
    shutil.copytree(own_model, other_model)
    settings = other_model / "preprocessor_config.json"
    front_end = {**json.loads(settings.read_text()), "max_length_s": 2.0}
    settings.write_text(json.dumps({**front_end, "nb_max_samples": int(2.0 * front_end["sampling_rate"])}))
    data = tone_folder(tmp_path / "data")
    monkeypatch.chdir(tmp_path)  # "own" relative: the export command it prints names it absolute
    for model, run in ((own_model, "own"), (other_model, tmp_path / "host")):
        argv = ["--data", str(data), "--pretrained", str(model), "--out", str(run),
                "--train.epochs", "1", "--train.batch_size", "2", "--train.compile", "false",
                "--train.progress_bar", "false", "--dataset.num_workers", "0"]  # fmt: skip
        assert clap.main(argv) == 0
        if run == "own":
            last = shlex.quote(str(tmp_path / "own" / "checkpoints" / "last"))
            assert (
                f"export another checkpoint with: {shell_command(*export_command())} --checkpoint {last}"
                in (capsys.readouterr().out)
            )
    exported = _own_checkpoint_in_hosts_run_exports_only_with_run(tmp_path, capsys, own_model, "max_length_s")
    assert json.loads((exported / "preprocessor_config.json").read_text())["max_length_s"] != 2.0


def test_a_checkpoint_copied_into_a_run_of_another_tokenizer_is_not_exported_with_it(tmp_path, capsys):
    """As with another front end: a checkpoint dropped into the checkpoints/ of a run whose --pretrained has
    another tokenizer (the same config.json) would ship its weights with token ids they were not trained on."""
    import shutil

    from audiotrain.recipes.clap import cli as clap

    own_model = tiny_checkpoint(tmp_path)
    other_model = tmp_path / "other_model"
    shutil.copytree(own_model, other_model)
    spec = json.loads((other_model / "tokenizer.json").read_text())
    spec["model"]["merges"] = spec["model"]["merges"][:-1]
    (other_model / "tokenizer.json").write_text(json.dumps(spec))
    data = tone_folder(tmp_path / "data")
    for model, run in ((own_model, tmp_path / "own"), (other_model, tmp_path / "host")):
        argv = ["--data", str(data), "--pretrained", str(model), "--out", str(run),
                "--train.epochs", "1", "--train.batch_size", "2", "--train.compile", "false",
                "--train.progress_bar", "false", "--dataset.num_workers", "0"]  # fmt: skip
        assert clap.main(argv) == 0
    exported = _own_checkpoint_in_hosts_run_exports_only_with_run(
        tmp_path, capsys, own_model, "its config.json or tokenizer files differ"
    )
    merges = json.loads((exported / "tokenizer.json").read_text())["model"]["merges"]
    assert merges == json.loads((own_model / "tokenizer.json").read_text())["model"]["merges"]


def _own_checkpoint_in_hosts_run_exports_only_with_run(
    tmp_path: Path, capsys, own_model: Path, differs: str
) -> Path:
    """The last checkpoint of run `own` (trained from `own_model`) copied into run `host`'s checkpoints/:
    its export is refused, naming what `differs` and --run, and nothing is written; with --run naming its
    own run it is exported (to the folder returned)."""
    import shutil

    from audiotrain.recipes.clap import cli as clap

    imported = tmp_path / "host" / "checkpoints" / "imported"
    shutil.copytree(tmp_path / "own" / "checkpoints" / "last", imported)
    capsys.readouterr()
    assert clap.main(["export", "--checkpoint", str(imported), "--out", str(tmp_path / "exported")]) == 2
    error = capsys.readouterr().err
    assert f"cannot export {imported}: it was trained from {own_model.resolve()}" in error
    assert differs in error and "pass --run with the run folder" in error
    assert not (tmp_path / "exported").exists()
    argv = [
        "export",
        "--checkpoint",
        str(imported),
        "--run",
        str(tmp_path / "own"),
        "--out",
        str(tmp_path / "e"),
    ]
    assert clap.main(argv) == 0
    return tmp_path / "e"


@pytest.mark.parametrize("field", ["pretrained", "data"])
def test_a_moved_folder_named_by_config_is_an_error_naming_the_file_and_the_field(tmp_path, capsys, field):
    """--config RUN/config.json after the folders it names were moved: the error named a --data that was not
    typed, or no field at all."""
    from audiotrain.recipes.clap import cli as clap

    record = tmp_path / "run" / "config.json"
    record.parent.mkdir()
    present = {"pretrained": str(tiny_checkpoint(tmp_path)), "data": str(tone_folder(tmp_path / "data"))}
    gone = str(tmp_path / "moved_away")
    from audiotrain.recipes.clap.config import ClapRecipeConfig

    settings = dataclasses.asdict(ClapRecipeConfig()) | present | {field: gone}
    record.write_text(json.dumps({"config": settings, "versions": {}, "command": []}))
    status = clap.main(["--config", str(record), "--out", str(tmp_path / "again")])
    assert status == 2
    assert f"{field} {gone} (in {record}): no such folder; pass --{field} DIR where it is now" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "again").exists()


def test_a_relative_data_folder_of_a_config_file_run_from_elsewhere_names_the_file_and_the_one_beside_it(
    tmp_path, monkeypatch, capsys
):
    """`data: clips` in proj/run.yaml (the folder beside the file), run from another working folder, said
    "--data clips: no such folder": a --data that was not typed, and nothing on where a file's relative path
    is read from (the working folder, as a flag's), nor of the folder beside the file the user meant."""
    from audiotrain.recipes.clap import cli as clap

    (tmp_path / "proj" / "clips").mkdir(parents=True)
    (tmp_path / "proj" / "run.yaml").write_text("data: clips\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert clap.main(["--config", "../proj/run.yaml", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "data clips (in ../proj/run.yaml): no such folder" in err and "--data clips" not in err
    assert f"read from the working folder ({tmp_path / 'elsewhere'}), not the file's" in err
    assert f"pass --data {Path('../proj/clips')}" in err
    assert not (tmp_path / "out").exists()


def test_a_hub_id_named_by_config_is_no_folder_to_look_for(tmp_path):
    """Only an absolute path in a --config file is a folder that may have moved: a hub id, as a run's record
    keeps it (typed), is parsed as it is (nothing is fetched at parsing)."""
    from audiotrain.recipes.clap import cli as clap

    hub = tmp_path / "hub.yaml"
    hub.write_text("pretrained: laion/clap-htsat-unfused\n")
    assert (
        clap.parse_config(["--config", str(hub), "--data", str(tmp_path)]).pretrained
        == "laion/clap-htsat-unfused"
    )


@pytest.mark.parametrize(
    "limit, finished, further",
    [
        ([], "(1 epoch, 3 steps; --train.epochs 1 leaves nothing", "--train.epochs above 1"),
        (
            ["--train.epochs", "3", "--train.max_steps", "2"],
            "(0 epochs, 2 steps; --train.epochs 3 and --train.max_steps 2 leave nothing",
            "--train.epochs above 0 (and --train.max_steps above that)",
        ),
    ],
)
def test_a_resume_of_a_finished_run_in_its_own_folder_is_refused_and_changes_nothing(
    limit, finished, further, tmp_path, capsys, monkeypatch
):
    # Resumed with nothing left to train, the run wrote its config.json, its checkpoints' records,
    # retrieval.json, history.json and plots/ again, for settings it never trained with, and exited 0.
    from audiotrain.recipes.clap import cli as clap

    run = tmp_path / "run"
    argv = [*_tiny_demo_argv(tmp_path, run), *limit]
    assert clap.main(argv) == 0
    kept = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    capsys.readouterr()
    last = run / "checkpoints" / "last"
    assert clap.main([*argv, "--resume", str(last)]) == 2
    err = capsys.readouterr().err
    _one_error_line(err)
    assert f"cannot resume from {last}: its run in {run} is finished {finished}" in err
    assert f"resume with {further}" in err and "into a new --out" in err
    assert {path: path.read_bytes() for path in run.rglob("*") if path.is_file()} == kept


@pytest.mark.filterwarnings("ignore:Trainer.fit. nothing to train")  # (only the results are left to do)
def test_a_run_killed_before_its_results_were_written_resumes_in_its_own_folder_to_write_them(
    tmp_path, capsys
):
    import shutil

    from audiotrain.recipes.clap import cli as clap

    run = tmp_path / "run"
    argv = _tiny_demo_argv(tmp_path, run)
    assert clap.main(argv) == 0
    history = (run / "history.json").read_text()
    (run / "retrieval.json").unlink()
    shutil.rmtree(run / "hf_model")
    assert clap.main([*argv, "--resume", str(run / "checkpoints" / "last")]) == 0
    assert (run / "retrieval.json").is_file() and (run / "hf_model" / "config.json").is_file()
    assert json.loads((run / "history.json").read_text()) == json.loads(history)  # (nothing trained again)


@pytest.mark.filterwarnings("ignore:ModelCheckpoint. the resumed checkpoint")  # (it resumes elsewhere)
@pytest.mark.filterwarnings("ignore:Trainer.fit. nothing to train")  # (it only scores the run again)
def test_a_finished_run_resumed_elsewhere_without_its_best_checkpoint_scores_its_final_weights(
    tmp_path, capsys
):
    """Only checkpoints/last copied: the best checkpoint the run recorded is not beside it any more."""
    import shutil

    from audiotrain.recipes.clap import cli as clap

    run = tmp_path / "run"
    assert clap.main(_tiny_demo_argv(tmp_path, run)) == 0
    moved = tmp_path / "moved" / "checkpoints" / "last"
    shutil.copytree(run / "checkpoints" / "last", moved)
    capsys.readouterr()
    assert clap.main([*_tiny_demo_argv(tmp_path, tmp_path / "again"), "--resume", str(moved)]) == 0
    best = moved.parent / "epoch=0-step=3"  # (where the run's best would be, beside the copy)
    assert (
        f"(after: final weights (the resumed run's best checkpoint, {best}, is gone))"
        in capsys.readouterr().out
    )


def test_a_run_record_says_how_many_processes_trained_it_and_a_resume_records_its_own(tmp_path, capsys):
    """config.json held `train.processes: 0` (one per core), not the count the run trained in: a --config
    RUN/config.json repeat on another machine could not tell it (the chord recipe records it)."""
    from audiotrain.recipes.clap import cli as clap

    run = tmp_path / "run"
    assert clap.main([*_tiny_demo_argv(tmp_path, run), "--train.processes", "1"]) == 0
    record = json.loads((run / "config.json").read_text())
    assert record["processes_used"] == 1 and record["config"]["train"]["processes"] == 1
    record["processes_used"] = 2  # as a run in 2 processes records it, before a resume in 1
    (run / "config.json").write_text(json.dumps(record))
    last = run / "checkpoints" / "last"
    assert clap.main(["--out", str(run), "--resume", str(last), "--train.epochs", "2"]) == 0
    assert json.loads((run / "config.json").read_text())["processes_used"] == 1
    capsys.readouterr()


def test_gradient_clip_reaches_the_trainer(tmp_path, capsys, monkeypatch):
    import audiotrain
    from audiotrain.recipes.clap import cli as clap

    trainers = []

    class RecordedTrainer(Trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            trainers.append(self)

    monkeypatch.setattr(audiotrain, "Trainer", RecordedTrainer)  # (the run imports it when it starts)
    argv = [
        *_tiny_demo_argv(tmp_path, tmp_path / "run"),
        "--train.max_steps",
        "1",
        "--train.gradient_clip",
        "0.5",
    ]
    assert clap.main(argv) == 0
    assert [trainer.gradient_clip_val for trainer in trainers] == [0.5]


def test_config_json_records_the_epochs_and_caption_length_the_run_resolved(tmp_path, capsys):
    # Unset, --train.epochs and --dataset.max_tokens are resolved by the run (the demo's 25 epochs, LAION's 77
    # tokens); config.json and the checkpoint's run_config must hold those values, not null, so a resume or a
    # rerun from config.json keeps them whatever later defaults say.
    from audiotrain.recipes.clap import cli as clap
    from audiotrain.recipes.clap.config import DEFAULT_MAX_TOKENS, DEMO_EPOCHS
    from audiotrain.train import checkpoint as ckpt

    run = tmp_path / "run"
    argv = _tiny_demo_argv(tmp_path, run)
    for flag in ("--train.epochs", "--dataset.max_tokens"):
        del argv[argv.index(flag) : argv.index(flag) + 2]
    assert clap.main([*argv, "--train.max_steps", "1"]) == 0
    capsys.readouterr()
    config = json.loads((run / "config.json").read_text())["config"]
    assert (config["train"]["epochs"], config["dataset"]["max_tokens"]) == (DEMO_EPOCHS, DEFAULT_MAX_TOKENS)
    assert ckpt.read_state(run / "checkpoints" / "last")["run_config"] == config
    # Fine-tuning a checkpoint: 5 epochs, as --train.epochs's help says.
    fine_tuning = clap.parse_config(["--pretrained", "ckpt", "--data", "clips"])
    assert clap_train.resolve_training(fine_tuning, demo=False, n_train=8)[1] == 5


def test_a_resume_without_the_runs_flags_goes_on_with_the_settings_it_recorded(tmp_path, capsys):
    # Resumed with only --out and --resume (as README shows it), the run took today's defaults: another
    # batch size, learning rate and demo set, and rewrote config.json with them.
    from audiotrain.recipes.clap import cli as clap

    run = tmp_path / "run"
    assert clap.main([*_tiny_demo_argv(tmp_path, run), "--task.learning_rate", "0.003"]) == 0
    capsys.readouterr()
    last = run / "checkpoints" / "last"
    assert clap.main(["--out", str(run), "--resume", str(last), "--train.epochs", "2"]) == 0
    out = "".join(capsys.readouterr())  # (results and notes)
    assert (
        f"--resume {last}: going on with the settings its run recorded ({last}/trainer_state.json), " in out
    )
    assert (
        "changed on the command line: train.epochs 1 -> 2; the learning-rate schedule is planned again" in out
    )
    config = json.loads((run / "config.json").read_text())["config"]
    assert (config["train"]["batch_size"], config["task"]["learning_rate"], config["train"]["epochs"]) == (
        2,
        0.003,
        2,
    )
    assert config["task"]["total_steps"] == 6  # 3 steps an epoch, planned again for 2 epochs
    assert json.loads((run / "history.json").read_text())["epoch"] == [0, 1]


def test_a_resume_keeps_the_total_steps_given_the_checkpoints_processes_and_a_folder_given_relative(
    tmp_path, capsys, monkeypatch
):
    # A longer run with --task.total_steps given too keeps that schedule length (not planned again); the
    # recorded --train.processes 1 is not carried over (the checkpoint's count is, and said); --demo.folder
    # given relative to the folder the run recorded absolute is no change.
    from audiotrain.recipes.clap import cli as clap

    run = tmp_path / "run"
    assert clap.main([*_tiny_demo_argv(tmp_path, run), "--train.processes", "1"]) == 0
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    last = run / "checkpoints" / "last"
    resume = ["--out", str(run), "--resume", str(last), "--train.epochs", "2", "--task.total_steps", "9"]
    assert clap.main([*resume, "--demo.folder", "cache"]) == 0
    out = "".join(capsys.readouterr())
    assert "changed on the command line: task.total_steps 3 -> 9, train.epochs 1 -> 2\n" in out
    assert f"resuming in 1 process, as {last} was trained (--train.processes N to choose)" in out
    assert json.loads((run / "config.json").read_text())["config"]["task"]["total_steps"] == 9


def test_what_a_resume_takes_from_its_checkpoints_record_and_from_the_command_line(
    demo_run, tmp_path, capsys
):
    """The resume settings read at parsing: the run's own --preset repeated (as its printed 'continue
    training' command does) is no refusal; without --out a resume writes a new folder, not the old run's;
    each setting the schedule's length follows re-plans it; a --config file is taken as it is."""
    from audiotrain.recipes.clap import cli as clap

    result, _ = demo_run
    run = result["run_dir"]
    last = str(run / "checkpoints" / "last")
    cfg = clap.parse_config(
        ["--preset", "quick_test", "--resume", last, "--out", str(run), "--train.epochs", "3"]
    )
    err = capsys.readouterr().err
    assert cfg.train.epochs == 3 and "changes nothing beside" not in err
    assert "changed on the command line: train.epochs 2 -> 3" in err
    assert clap.parse_config(["--resume", last]).out is None
    capsys.readouterr()
    for flag, value in (("--train.batch_size", "2"), ("--train.accumulate_grad_batches", "2"),
                        ("--train.epochs", "3"), ("--train.max_steps", "50")):  # fmt: skip
        cfg = clap.parse_config(["--resume", last, "--out", str(run), flag, value])
        assert cfg.task.total_steps is None, flag
        assert "the learning-rate schedule is planned again" in capsys.readouterr().err, flag
    settings = tmp_path / "lr.yaml"
    settings.write_text("task: {learning_rate: 0.001}\n")
    cfg = clap.parse_config(["--resume", last, "--config", str(settings), "--out", str(tmp_path / "new")])
    assert cfg.task.learning_rate == 0.001 and cfg.train.epochs is None
    assert "going on with the settings its run recorded" not in capsys.readouterr().err


def test_exporting_a_chord_recipe_checkpoint_says_which_recipe_it_is(tmp_path, capsys):
    """`clap export --checkpoint CHORDS_EXPORT` said it "does not record the model it trained from ...;
    pass --run RUN", which no run folder could mend."""
    from audiotrain.recipes.clap import main
    from audiotrain.train.checkpoint import write_checkpoint

    chords = tmp_path / "chords_export"
    progress = {"epoch": 1, "batch_in_epoch": 0, "global_step": 10, "total_batches": 10, "micro_batches": 0}
    state = {"progress": progress, "random": {"mlx": [0, 1]}, "module_state": {"chord_recognition": {}}}
    write_checkpoint(chords, {"w": mx.zeros((2,))}, {}, {}, state)
    assert main(["export", "--checkpoint", str(chords), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"cannot export {chords}: it is a checkpoint (or export) of the chord recipe" in err, err
    assert "audiotrain.recipes.chords export" in err and "--run" not in err
    assert not (tmp_path / "out").exists()


def test_a_run_from_python_leaves_the_callers_generators_and_seed_as_it_found_them(tmp_path, monkeypatch):
    """`run` (`run_job`) left the caller's numpy, Python and MLX generators at the run's seed
    (`seed_everything`), PL_GLOBAL_SEED set and its seed the one of a later Trainer given none."""
    import random

    from audiotrain.recipes.clap import parse_config, run
    from audiotrain.train import seeding

    def draws():
        return float(np.random.rand()), random.random(), mx.random.uniform().item()

    def seed_the_host():
        np.random.seed(5), random.seed(5), mx.random.seed(5)

    monkeypatch.delenv(seeding.SEED_ENV_VAR, raising=False)
    monkeypatch.setattr(seeding, "_last_seed", None)
    cfg = parse_config(_tiny_demo_argv(tmp_path, tmp_path / "run"))
    seed_the_host()
    expected = draws()
    seed_the_host()
    run(cfg)
    assert draws() == expected
    assert seeding.SEED_ENV_VAR not in os.environ and seeding.default_seed() == seeding.DEFAULT_SEED


def test_a_run_folder_or_trainer_checkpoint_as_pretrained_is_refused_naming_what_to_pass(tmp_path, capsys):
    """--pretrained RUN (to fine-tune a run's result further) said "no weights file" as if the run folder
    were a damaged model, and --pretrained RUN/checkpoints/last "config.json: no such file": each now names
    what --pretrained takes instead, before anything is written."""
    import shutil

    from audiotrain.recipes.clap import cli as clap

    run = tmp_path / "run"
    shutil.copytree(tiny_checkpoint(tmp_path), run / "hf_model")
    (run / "config.json").write_text(json.dumps({"model_source": "x", "demo": False, "config": {}}))
    (run / "checkpoints" / "last").mkdir(parents=True)
    (run / "checkpoints" / "last" / "trainer_state.json").write_text("{}")
    data = tone_folder(tmp_path / "data")
    for given, expected in [
        (
            run,
            f"a run folder, not a Hugging Face CLAP folder; to fine-tune its result pass --pretrained "
            f"{run / 'hf_model'}",
        ),
        (
            run / "checkpoints" / "last",
            "a trainer checkpoint folder (it holds trainer_state.json), not a "
            "Hugging Face CLAP folder; export it first: python -m "
            "audiotrain.recipes.clap export --checkpoint",
        ),
    ]:
        argv = ["--data", str(data), "--pretrained", str(given), "--out", str(tmp_path / "new")]
        assert clap.main(argv) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert line.startswith(f"error: --pretrained {given}: {expected}"), line
        assert not (tmp_path / "new").exists()


def _leave_launcher_variables(tmp_path, monkeypatch):
    """MLX_RANK and an MLX_HOSTFILE naming a file gone, as an earlier job leaves them; a checkpoint folder."""
    monkeypatch.setenv("MLX_RANK", "0")
    monkeypatch.setenv("MLX_HOSTFILE", str(tmp_path / "gone.json"))
    (tmp_path / "checkpoint").mkdir()


def test_launcher_variables_left_over_from_an_earlier_job_are_one_error_line(tmp_path, monkeypatch, capsys):
    """MLX_HOSTFILE and MLX_RANK left in a shell by an earlier job: the chord recipe said what they are and
    to unset them in one error line; CLAP's training, export and evaluate commands raised it as a
    traceback."""
    from audiotrain.distributed import collectives
    from audiotrain.recipes.clap import main

    _leave_launcher_variables(tmp_path, monkeypatch)
    for argv in (
        ["--preset", "quick_test", "--out", str(tmp_path / "run")],
        ["export", "--checkpoint", str(tmp_path / "checkpoint"), "--out", str(tmp_path / "export")],
        ["evaluate", "--model", str(tmp_path / "checkpoint"), "--data", str(tmp_path)],
    ):
        monkeypatch.setattr(collectives, "_GROUP", None)
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        gone = tmp_path / "gone.json"
        assert err.startswith(f"error: MLX_HOSTFILE names {gone}, which does not exist"), err
        assert "unset them to train in one process" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "export").exists()


def test_launcher_variables_left_over_raise_where_audiotrain_traceback_asks_for_it(tmp_path, monkeypatch):
    """AUDIOTRAIN_TRACEBACK=1 turns the recipes' one-line errors back into the exception raised (where it was
    raised), as the chord recipe's launcher error does; CLAP's printed its one line all the same."""
    from audiotrain.distributed import collectives
    from audiotrain.recipes.clap import main

    monkeypatch.setenv("AUDIOTRAIN_TRACEBACK", "1")
    _leave_launcher_variables(tmp_path, monkeypatch)
    for argv in (
        ["--preset", "quick_test", "--out", str(tmp_path / "run")],
        ["export", "--checkpoint", str(tmp_path / "checkpoint"), "--out", str(tmp_path / "export")],
    ):
        monkeypatch.setattr(collectives, "_GROUP", None)
        with pytest.raises(collectives.LauncherEnvironmentError, match="MLX_HOSTFILE names"):
            main(argv)


def _chord_recipe_run(folder: Path) -> Path:
    """A run folder as the chord recipe leaves it: config.json beside checkpoints/best, whose state holds the
    chord task's record (no hf_model/, no model_source)."""
    from audiotrain.train.checkpoint import write_checkpoint

    progress = {"epoch": 1, "batch_in_epoch": 0, "global_step": 10, "total_batches": 10, "micro_batches": 0}
    state = {"progress": progress, "random": {"mlx": [0, 1]}, "module_state": {"chord_recognition": {}}}
    write_checkpoint(folder / "checkpoints" / "best", {"w": mx.zeros((2,))}, {}, {}, state)
    (folder / "config.json").write_text(json.dumps({"config": {"num_epochs": 1}, "command": []}))
    return folder


def test_a_chord_recipe_run_given_to_the_clap_loaders_is_named_as_one(tmp_path, capsys):
    """A finished chord run given as --pretrained, or to `CLAP(...)`, was "a run folder without hf_model/ (the
    run did not finish)", with a `clap export` command to run first, which failed on it ("field
    'model_source' missing"); exporting its checkpoint inside the run failed with those words too."""
    from audiotrain.models.clap import CLAP, CheckpointError
    from audiotrain.recipes.clap import main

    run = _chord_recipe_run(tmp_path / "chords_run")
    best = run / "checkpoints" / "best"
    data = tone_folder(tmp_path / "data", 2)
    for given, what in ((run, "run"), (best, "checkpoint")):
        status = main(["--pretrained", str(given), "--data", str(data), "--out", str(tmp_path / "new")])
        err = capsys.readouterr().err
        assert status == 2 and f"--pretrained {given}: a chord recipe {what}, not a CLAP model" in err, err
        assert f"audiotrain.recipes.chords train --data DIR --init_from {given}" in err, err
        assert "did not finish" not in err and "clap export" not in err
        with pytest.raises(CheckpointError, match=f"a chord recipe {what}, not a CLAP model") as raised:
            CLAP(str(given))
        assert "did not finish" not in str(raised.value) and "clap export" not in str(raised.value)
    assert not (tmp_path / "new").exists()
    assert main(["export", "--checkpoint", str(best), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"cannot export {best}: it is a checkpoint (or export) of the chord recipe" in err, err
    assert "model_source" not in err and not (tmp_path / "out").exists()


def test_the_commands_advised_for_a_pretrained_folder_with_a_space_paste_as_one_path(tmp_path, capsys):
    """--pretrained of a trainer checkpoint under "My Runs" advised "export --checkpoint /.../My Runs/last
    --out DIR", and of a chord run "train --data DIR --init_from /.../My Runs/chords": a shell splits each
    path in two. Both are quoted now, as the loader's advice (`load_pretrained`) already was."""
    import shlex

    from audiotrain.recipes.clap import main

    checkpoint = tmp_path / "My Runs" / "last"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text("{}")
    chord_run = _chord_recipe_run(tmp_path / "My Runs" / "chords")
    data = tone_folder(tmp_path / "data", 2)
    for given, flag in ((checkpoint, "--checkpoint"), (chord_run, "--init_from")):
        assert main(["--pretrained", str(given), "--data", str(data), "--out", str(tmp_path / "new")]) == 2
        err = capsys.readouterr().err
        command = err[err.index("python -m audiotrain.recipes.") :].splitlines()[0]
        words = shlex.split(command.removesuffix(", then --pretrained DIR"))
        assert words[words.index(flag) + 1] == str(given), err


def test_a_missing_training_split_is_not_answered_with_the_test_split_to_train_on(tmp_path):
    """Clotho's folders without a split column (validation/, evaluation/ are splits, development/ is not) and
    Clotho's flags: the error advised '--dataset.train_split test', training on the clips --dataset.test_split
    scores."""
    from audiotrain.datasets.captions import CaptionFolderError, scan_caption_folder
    from audiotrain.recipes.clap import ClapDatasetConfig
    from audiotrain.recipes.clap.data import choose_splits

    import soundfile as sf

    data = tmp_path / "clotho"
    rows = ["file_name,caption_1"]
    for i, folder in enumerate(["development"] * 4 + ["validation"] * 2 + ["evaluation"] * 2):
        (data / folder).mkdir(parents=True, exist_ok=True)
        sf.write(data / folder / f"c{i}.wav", np.zeros(1600, np.float32), 16000)
        rows.append(f"{folder}/c{i}.wav,a sound number {i}")
    (data / "metadata.csv").write_text("\n".join(rows) + "\n")
    cfg = ClapDatasetConfig(train_split="development", eval_split="validation", test_split="evaluation")
    with pytest.raises(CaptionFolderError) as caught:
        choose_splits(scan_caption_folder(data), cfg, seed=0)
    message = str(caught.value)
    assert "--dataset.train_split test" not in message
    assert "leave --dataset.train_split at 'train' to train on the clips without a split" in message


def test_a_clap_run_too_big_for_memory_names_the_recipes_flags_not_the_trainers_setting(
    tmp_path, capsys, monkeypatch
):
    """Trainer.fit's refusal of a model too big for the memory left told a CLAP run's user to "train in
    precision='bf16-true'", the Trainer's argument, which neither the command line nor `run`'s config takes:
    the command line names its flags (--train.precision bf16-true, --task.freeze_*, --demo.width or
    --pretrained), and run(ClapRecipeConfig) its config's fields."""
    from audiotrain.__main__ import main as audiotrain_main
    from audiotrain.recipes.clap import cli as clap
    from audiotrain.train import memory

    limit = (1000, "left under this process's ulimit -v limit of 0.0 GB")
    monkeypatch.setattr(memory, "training_memory_limit", lambda mapped_already=0: limit)
    monkeypatch.setattr(sys, "argv", sys.argv[:1])  # (the recipe's command line is put there, and put back)
    with pytest.raises(SystemExit) as ended:
        audiotrain_main(["clap", *_tiny_demo_argv(tmp_path, tmp_path / "run"), "--train.processes", "1"])
    assert ended.value.code == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "precision=" not in line and "--train.precision bf16-true" in line, line
    assert "--task.freeze_audio" in line and "--demo.width" in line and line.endswith(", or raise that limit")

    cfg = clap.parse_config([*_tiny_demo_argv(tmp_path, tmp_path / "run2"), "--train.processes", "1"])
    with pytest.raises(memory.TrainingMemoryError) as refused:
        clap_train.run(cfg)
    message = str(refused.value)
    assert "train in precision=" not in message and "train in train.precision='bf16-true'" in message, message
    assert "--" not in message and "task.freeze_audio=True" in message


@pytest.mark.parametrize(
    "argv",
    [
        ["--preset", "quick_test", "--resume", "nowhere", "--out", "run"],
        ["export", "--checkpoint", "nowhere", "--out", "export"],
        ["evaluate", "--model", "nowhere", "--data", "."],
        ["cv", "--folds", "2", "--data", ".", "--pretrained", "nowhere"],
    ],
    ids=lambda argv: argv[0] if argv[0] != "--preset" else "train",
)
def test_a_clap_error_raises_where_audiotrain_traceback_asks_for_it(argv, tmp_path, monkeypatch, capsys):
    """AUDIOTRAIN_TRACEBACK=1, which the chord recipe's errors name to see where one was raised, gave CLAP's
    commands' errors (a --resume or --checkpoint that does not exist, an evaluate --model) as the same one
    line as without it, and no traceback to report."""
    from audiotrain.recipes.clap import main

    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "nowhere" in line, line
    monkeypatch.setenv("AUDIOTRAIN_TRACEBACK", "1")
    with pytest.raises(Exception, match="nowhere"):
        main(argv)


@pytest.mark.parametrize("command", [[], ["cv"]], ids=["train", "cv"])
def test_the_clap_help_says_what_each_exit_status_means(command, monkeypatch, capsys):
    """The chord recipe's --help lists the exit statuses a script branches on; `clap --help` listed none:
    which status meant a refusal, a Ctrl-C or a job scheduler's SIGTERM was said nowhere for CLAP."""
    from audiotrain.recipes.clap import main

    monkeypatch.setenv("COLUMNS", "80")
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    statuses = out[out.index("exit status:") :]
    for status in ("0 ", "1 ", "2 ", "130 ", "138 ", "141 ", "143 "):
        assert f"\n  {status}" in statuses, out
    assert "SIGUSR1" in statuses and max(len(line) for line in out.splitlines()) <= 80
    # A full disk stops a command with 1, as the chord recipe's help says (a save's, not only stdout's).
    status_1 = " ".join(statuses[statuses.index("\n  1 ") : statuses.index("\n  2 ")].split())
    assert "by a full disk (a checkpoint" in status_1, status_1


def test_a_clap_run_whose_scoring_fails_after_training_records_the_error_and_a_resume_clears_it(
    tmp_path, monkeypatch
):
    """An error after training, before the scores (here loading the best weights) left a folder that
    `audiotrain runs` read as a stop whose resume scores it: the run records the error in
    evaluation_failed.json, and a resume that gets past it takes the record away."""
    from audiotrain.recipes.clap import cli as clap

    out = tmp_path / "run"

    def failing_load(*args, **kwargs):
        raise ValueError("the best weights could not be loaded")

    monkeypatch.setattr(clap_train, "_load_best_weights", failing_load)
    cfg = clap.parse_config([*_tiny_demo_argv(tmp_path, out), "--train.processes", "1"])
    with pytest.raises(ValueError, match="best weights could not be loaded"):
        clap_train.run(cfg)
    recorded = json.loads((out / "evaluation_failed.json").read_text())
    assert recorded == {"error": "the best weights could not be loaded"}
    monkeypatch.undo()
    last = out / "checkpoints" / "last"
    cfg = clap.parse_config(
        [*_tiny_demo_argv(tmp_path, out), "--train.processes", "1", "--resume", str(last)]
    )
    clap_train.run(cfg)
    assert (out / "retrieval.json").is_file() and not (out / "evaluation_failed.json").exists()


def test_export_into_the_hf_model_of_a_run_still_going_is_refused(demo_run, tmp_path, capsys):
    """`export --checkpoint RUN/checkpoints/last --out RUN/hf_model` (the command the run prints) while RUN
    still trained was written, and the run's own export of its best checkpoint replaced it as it ended,
    without a word to either."""
    import shutil

    from audiotrain.recipes.clap import main

    result, _ = demo_run
    run = tmp_path / "live"
    shutil.copytree(result["run_dir"], run, ignore=shutil.ignore_patterns("hf_model", "retrieval.json"))
    script = (
        "import sys, time; from pathlib import Path; from audiotrain.recipes._run import claim_run_folder; "
        "claim_run_folder(Path(sys.argv[1])); print('claimed', flush=True); time.sleep(60)"
    )
    live = subprocess.Popen([sys.executable, "-c", script, str(run)], stdout=subprocess.PIPE, text=True)
    last, out = run / "checkpoints" / "last", run / "hf_model"
    try:
        assert deadlines.read_line(live, "'claimed' from the child", 120).strip() == "claimed"
        capsys.readouterr()
        assert main(["export", "--checkpoint", str(last), "--out", str(out), "--overwrite"]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert f"--out {out}: {run} is the folder of a run still going (the run of process {live.pid}" in line
        assert not out.exists()
    finally:
        live.kill()
        live.wait()
    assert main(["export", "--checkpoint", str(last), "--out", str(out)]) == 0  # the run ended


def test_evaluate_of_a_run_folder_still_going_says_it_is_still_going(demo_run, tmp_path, capsys):
    """`evaluate --model RUN` while RUN still trained said "a run folder without hf_model/ (the run did not
    finish)": it had not finished, it was still going, and would write hf_model/ as it ended."""
    import shutil

    from audiotrain.recipes.clap import main

    result, _ = demo_run
    run = tmp_path / "live"
    shutil.copytree(result["run_dir"], run, ignore=shutil.ignore_patterns("hf_model", "retrieval.json"))
    data = next(Path(result["argv"][result["argv"].index("--demo.folder") + 1]).iterdir())
    script = (
        "import sys, time; from pathlib import Path; from audiotrain.recipes._run import claim_run_folder; "
        "claim_run_folder(Path(sys.argv[1])); print('claimed', flush=True); time.sleep(60)"
    )
    live = subprocess.Popen([sys.executable, "-c", script, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert deadlines.read_line(live, "'claimed' from the child", 120).strip() == "claimed"
        capsys.readouterr()
        assert main(["evaluate", "--model", str(run), "--data", str(data)]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert "did not finish" not in line, line
        assert f"a run folder still going (the run of process {live.pid} on host " in line, line
        assert "it writes hf_model/ as it ends: wait for it, or export one of its checkpoints" in line, line
    finally:
        live.kill()
        live.wait()
    assert main(["evaluate", "--model", str(run), "--data", str(data)]) == 2
    assert "(the run did not finish)" in _one_error_line(capsys.readouterr().err)


def test_eval_split_naming_the_training_split_of_a_folder_without_splits_trains_and_scores_every_clip(
    tmp_path, capsys
):
    """A folder of clips without a split trains on them all (the default --dataset.train_split 'train'): the
    overfitting check --dataset.eval_split train warned that it scores the clips it trains on, then stopped
    with "--dataset.eval_split 'train' has no clips; splits present: 6 clips without a split"."""
    from audiotrain.recipes.clap import main

    data = tone_folder(tmp_path / "tones", clips=6)
    out = tmp_path / "run"
    checkpoint = tiny_checkpoint(tmp_path)
    argv = ["--data", str(data), "--pretrained", str(checkpoint), "--dataset.eval_split", "train",
            "--train.epochs", "1", "--train.batch_size", "2", "--dataset.num_workers", "0",
            "--train.processes", "1", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert "measured on clips it trains on" in printed.err and "has no clips" not in printed.err
    clips = json.loads((out / "config.json").read_text())["clips"]
    assert len(clips["train"]) == 6 and sorted(clips["eval"]) == sorted(clips["train"])
    assert "training on 6 clips, evaluating on 6" in printed.err


def test_a_diverging_run_stops_with_an_error_in_the_recipes_flags(tmp_path, capsys):
    """``--task.learning_rate 1e30``: the non-finite stop ended the command in a raw traceback (exit status 1,
    an unforeseen error), advising the Trainer's gradient_clip_val and debug_lazy_eval, not the flags."""
    from audiotrain.recipes.clap import main

    out = tmp_path / "run"
    argv = ["--preset", "quick_test", "--out", str(out), "--demo.folder", str(tmp_path / "cache")]
    argv += ["--train.processes", "1", "--task.learning_rate", "1e30", "--train.epochs", "15"]
    assert main([*argv, "--train.batch_size", "2"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "Traceback" not in err and "gradient_clip_val" not in err
    assert re.search(r"error: training stopped: \d+ optimizer steps in a row had a non-finite loss", err)
    assert "Lower --task.learning_rate (this run's: 1e+30), set --train.gradient_clip" in err
    assert f"The weights before those steps are in {out / 'checkpoints' / 'nonfinite'}" in err


def test_a_model_file_as_pretrained_or_model_names_the_folder_to_pass(tmp_path, capsys):
    """--pretrained FOLDER/model.safetensors (the weights file a transformers save_pretrained wrote, where the
    folder was meant) said "FOLDER/model.safetensors: expected a checkpoint folder ..., got a file", naming no
    flag, and `evaluate --model FOLDER/pytorch_model.bin` said what a folder holds but not which: both now
    name the flag and the folder to pass, before anything is written."""
    from audiotrain.recipes.clap import cli as clap

    model = tiny_checkpoint(tmp_path)
    data = tone_folder(tmp_path / "data")
    out = tmp_path / "new"
    for command, flag in [([], "--pretrained"), (["evaluate"], "--model")]:
        for name in ("pytorch_model.bin", "config.json"):
            given = model / name
            argv = [*command, "--data", str(data), flag, str(given)]
            argv += ["--out", str(out / "scores.json")] if command else ["--out", str(out)]
            assert clap.main(argv) == 2
            line = _one_error_line(capsys.readouterr().err)
            assert line.startswith(f"error: {flag} {given}: a file of the Hugging Face CLAP folder"), line
            assert line.endswith(f"pass the folder: {flag} {model}"), line
            assert not out.exists()


def test_a_time_limit_flag_says_how_a_clap_run_stops_on_a_clusters_time_limit(tmp_path, capsys):
    """``clap --train.max_time 00:02:00:00`` got only argparse's "unrecognized arguments"."""
    from audiotrain.recipes.clap import main

    assert (
        main(["--preset", "quick_test", "--out", str(tmp_path / "run"), "--train.max_time", "00:02:00:00"])
        == 2
    )
    err = capsys.readouterr().err
    assert "; --train.max_time: the recipes take no time limit" in err and "--resume" in err, err


def test_a_full_disk_as_training_saves_names_the_command_that_goes_on(tmp_path, monkeypatch, capsys):
    """A disk that filled as a CLAP run saved `last` (after its best checkpoint was written) was one line
    naming the file and the free space, and no way on: the same command was then refused ('--out RUN already
    holds files'), where the chord recipe prints 'continue the run with: ... --resume'. It says so too now,
    and the printed command finishes the run in its folder once there is room."""
    import errno

    from audiotrain.recipes.clap import cli as clap
    from audiotrain.train import checkpoint as ckpt

    real_save = ckpt._save_arrays

    def full_at_last(path, arrays):
        if path.parent.name.startswith(".last.tmp-"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(path, arrays)

    out = tmp_path / "run"
    argv = ["--preset", "quick_test", "--train.processes", "1", "--out", str(out)]
    argv += ["--demo.folder", str(tmp_path / "demo")]
    monkeypatch.setattr(ckpt, "_save_arrays", full_at_last)
    monkeypatch.delenv("AUDIOTRAIN_TRACEBACK", raising=False)
    assert clap.main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "no space left" in err, err
    assert "; once there is room, continue the run with:\n" in err, err
    (resume,) = re.findall(r"--resume (\S+)", err)
    assert Path(resume).parent == out / "checkpoints", err
    monkeypatch.setattr(ckpt, "_save_arrays", real_save)
    assert clap.main([*argv, "--resume", resume]) == 0, capsys.readouterr().err
    assert (out / "hf_model").is_dir() and (out / "retrieval.json").is_file()


def test_a_full_disk_at_a_runs_first_save_leaves_its_folder_for_the_same_command(
    tmp_path, monkeypatch, capsys
):
    """A disk that filled as a CLAP run saved its first checkpoint left --out with its config.json, data
    report and demo model and no checkpoint; the same command, once there was room, was refused ('--out RUN
    already holds files ... (it has no checkpoint to continue from)'), though --help says it goes on. The
    folder is left as it was found, and the error says to run the same command again."""
    import errno

    from audiotrain.recipes.clap import cli as clap
    from audiotrain.train import checkpoint as ckpt

    real_save = ckpt._save_arrays

    def full(path, arrays):
        raise OSError(errno.ENOSPC, "No space left on device")

    out = tmp_path / "run"
    argv = ["--preset", "quick_test", "--train.processes", "1", "--out", str(out)]
    argv += ["--demo.folder", str(tmp_path / "demo")]
    monkeypatch.setattr(ckpt, "_save_arrays", full)
    monkeypatch.delenv("AUDIOTRAIN_TRACEBACK", raising=False)
    assert clap.main(argv) == 1
    err = capsys.readouterr().err
    assert "once there is room, run the same command again" in err, err
    monkeypatch.setattr(ckpt, "_save_arrays", real_save)
    assert clap.main(argv) == 0, capsys.readouterr().err
    assert (out / "hf_model").is_dir()


def test_a_full_disk_at_the_first_save_through_a_linked_checkpoint_folder_leaves_it_as_found(
    tmp_path, monkeypatch, capsys
):
    """A user who linked --out's checkpoints/ to another disk before the first run (mkdir RUN; ln -s
    /big/ckpts RUN/checkpoints) met a full disk at the first save: the error said 'its folder is left as it
    was found: ... run the same command again', but config.json, data_report.txt and demo_init/ stayed
    beside the link, and that command was refused ('--out RUN already holds files'). The link stays."""
    import errno

    from audiotrain.recipes.clap import cli as clap
    from audiotrain.train import checkpoint as ckpt

    real_save = ckpt._save_arrays

    def full(path, arrays):
        raise OSError(errno.ENOSPC, "No space left on device")

    out, elsewhere = tmp_path / "run", tmp_path / "big_disk"
    out.mkdir()
    elsewhere.mkdir()
    (out / "checkpoints").symlink_to(elsewhere, target_is_directory=True)
    argv = ["--preset", "quick_test", "--train.processes", "1", "--out", str(out)]
    argv += ["--demo.folder", str(tmp_path / "demo")]
    monkeypatch.setattr(ckpt, "_save_arrays", full)
    monkeypatch.delenv("AUDIOTRAIN_TRACEBACK", raising=False)
    assert clap.main(argv) == 1
    assert "once there is room, run the same command again" in capsys.readouterr().err
    assert [path.name for path in out.iterdir()] == ["checkpoints"] and (out / "checkpoints").is_symlink()
    monkeypatch.setattr(ckpt, "_save_arrays", real_save)
    assert clap.main(argv) == 0, capsys.readouterr().err
    assert any(elsewhere.iterdir())  # (saved through the link)


def test_demo_flags_a_run_does_not_use_are_named_in_a_note(tmp_path, capsys):
    """`--data DIR --demo.clips 40` (and --demo.width beside --pretrained) trained exactly as without the
    flag and recorded it in config.json, without a word: the demo settings make the offline demo alone."""
    from audiotrain.recipes.clap import cli as clap

    said = "is not used: the --demo settings make the offline demo's clips and model; this run's"
    parser = clap.build_parser()
    clap.parse_arguments(parser, ["--data", str(tmp_path), "--demo.clips", "40", "--demo.width", "32"])
    err = capsys.readouterr().err
    assert f"note: --demo.clips 40 {said} clips are --data {tmp_path}" in err, err
    assert "--demo.width" not in err  # (a from-scratch model on the folder's captions: its width is used)
    clap.parse_arguments(
        parser, ["--pretrained", str(tmp_path), "--data", str(tmp_path), "--demo.width", "32"]
    )
    err = capsys.readouterr().err
    assert f"note: --demo.width 32 {said} model is --pretrained {tmp_path} and its clips are --data" in err, (
        err
    )
    clap.parse_arguments(parser, ["--demo.clips", "40"])
    assert "not used" not in capsys.readouterr().err


def test_an_eval_fraction_a_folder_with_an_evaluation_split_does_not_use_is_said(tmp_path):
    """`--dataset.eval_fraction 0.5` on a folder with a test split evaluated on that split, exit 0, and the
    run's line ("splits 'train' / 'test'") did not say the fraction was not used (config.json records it)."""
    from audiotrain.recipes.clap import ClapDatasetConfig
    from audiotrain.recipes.clap.data import choose_splits

    unused = (
        "--dataset.eval_fraction 0.5 is not used: it holds out clips of a folder without an evaluation split"
    )
    split = _split_folder(tmp_path, ["train"] * 4 + ["test"] * 2)
    _, held, how = choose_splits(split, ClapDatasetConfig(eval_fraction=0.5), seed=0)
    assert len(held) == 2 and how == f"splits 'train' / 'test'; {unused}"
    _, held, how = choose_splits(split, ClapDatasetConfig(), seed=0)
    assert how == "splits 'train' / 'test'"
    _, held, how = choose_splits(_split_folder(tmp_path, [None] * 4), ClapDatasetConfig(eval_fraction=0.5), 0)
    assert len(held) == 2 and "not used" not in how


@pytest.mark.parametrize("name", ["quick_test", "development", "production"])
def test_clap_config_from_preset_is_the_command_lines_preset_and_takes_overrides(name):
    """From Python a preset was reachable only as the raw dict `PRESETS[name]`, and changing one key of its
    train section needed a hand merge. `ClapRecipeConfig.from_preset` resolves it as ``--preset NAME`` does,
    then the overrides as flags: they win, and a nested one keeps the preset's other keys of its section."""
    from audiotrain.recipes.clap import cli as clap
    from audiotrain.recipes.clap.config import PRESETS, ClapRecipeConfig

    parser = clap.build_parser()
    assert ClapRecipeConfig.from_preset(name) == clap.parse_arguments(parser, ["--preset", name])[0]
    flags = ["--preset", name, "--train.epochs", "2", "--train.seed", "3", "--dataset.max_tokens", "20"]
    flagged = clap.parse_arguments(parser, flags)[0]
    assert flagged.train.epochs == 2 and flagged.train.seed == 3
    nested = ClapRecipeConfig.from_preset(name, train={"epochs": 2, "seed": 3}, dataset={"max_tokens": 20})
    dotted = ClapRecipeConfig.from_preset(
        name, **{"train.epochs": 2, "train.seed": 3, "dataset.max_tokens": 20}
    )
    assert nested == dotted == flagged
    for key, value in PRESETS[name]["train"].items():  # (the preset's other train settings stay)
        assert key == "epochs" or getattr(nested.train, key) == value
    with pytest.raises(ValueError, match=r"unknown preset 'fast'; the presets are quick_test, development"):
        ClapRecipeConfig.from_preset("fast")
    with pytest.raises(
        ValueError, match=r"ClapRecipeConfig.from_preset\('quick_test'\): unknown field 'train.epoch'"
    ):
        ClapRecipeConfig.from_preset("quick_test", train={"epoch": 2})
    with pytest.raises(TypeError, match=r"'preset': a preset is applied by ClapRecipeConfig.from_preset\("):
        ClapRecipeConfig(preset="quick_test")


def test_a_run_on_recordings_longer_than_the_window_says_what_part_of_them_trains_and_is_scored(
    tmp_path, capsys
):
    """Field recordings of 20-60 s train on the front end's window (2.5 s here): the run printed only clip
    counts, so a user could not tell that one random window of each trains and the centre one is scored."""
    from audiotrain.recipes.clap import main

    import soundfile as sf

    checkpoint = tiny_checkpoint(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    tone_folder(data / "train", 4)  # 1 s tones: shorter than the window
    tone_folder(data / "validation", 2)
    noise = np.random.default_rng(0).standard_normal(22050 * 6).astype(np.float32) * 0.1
    sf.write(data / "train" / "field.wav", noise, 22050)  # 6 s: longer than the window
    (data / "train" / "field.txt").write_text("wind over a field\n")
    argv = ["--data", str(data), "--pretrained", str(checkpoint), "--out", str(tmp_path / "run"),
            "--train.epochs", "1", "--train.batch_size", "2", "--train.compile", "false",
            "--train.progress_bar", "false", "--dataset.num_workers", "0",
            "--train.processes", "1"]  # fmt: skip
    capsys.readouterr()
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert (
        "note: 1 of the 5 training clips is longer than the front end's 2.5 s window (max_length_s; up "
        "to 6.0 s): the model hears one random 2.5 s window of each, drawn anew each epoch" in err
    )
    assert (
        "4 are shorter (from 1.0 s) and repeated as many whole times as fit, then padded with silence" in err
    )
    note = "note: 2 of the 2 scored clips are shorter than the front end's 2.5 s window (max_length_s) "
    assert note in err
    # (kept with the other notes on the scores)
    notes = json.loads((tmp_path / "run" / "retrieval.json").read_text())["notes"]
    assert [n for n in notes if n.startswith(note)]


def test_the_window_note_names_fusions_views_and_the_padding_setting():
    """A fused front end hears a long clip as the whole squeezed to the window plus 3 windows (random in
    training, the middle of each third when scored); a short clip is filled as its `padding` says."""
    from types import SimpleNamespace

    from audiotrain.recipes.clap.data import window_note

    rate = 48000
    clips = [SimpleNamespace(num_samples=n * rate) for n in (30, 1)] + [SimpleNamespace(num_samples=None)]
    fused = SimpleNamespace(nb_max_samples=10 * rate, truncation="fusion", padding="pad")
    train = SimpleNamespace(clips=clips, sampling_rate=rate, train=True)
    note = window_note(train, fused, "training")
    assert note.startswith("note: 1 of the 3 training clips is longer than the front end's 10 s window")
    assert "the whole clip squeezed to 10 s plus 3 random 10 s windows, one from each third" in note
    assert note.endswith("1 is shorter (from 1.0 s) and padded with silence (padding 'pad')")
    scored = window_note(SimpleNamespace(clips=clips, sampling_rate=rate, train=False), fused, "scored")
    assert "plus the 10 s windows at the middle of each third" in scored
    fits = SimpleNamespace(clips=[SimpleNamespace(num_samples=10 * rate)], sampling_rate=rate, train=True)
    assert window_note(fits, fused, "training") is None


def test_the_help_says_what_part_of_a_long_or_short_clip_the_model_hears():
    # A recordist with 20-60 s field recordings found nothing in --help on how much of each one trains.
    from audiotrain.recipes.clap import build_parser

    text = " ".join(build_parser().format_help().split())
    assert "A longer clip trains on one random window, drawn anew each epoch from --train.seed" in text
    assert "is scored on its centre window" in text
    assert "A shorter clip is filled as the front end's padding says" in text
    assert "ClapFeatureExtractor(..., train=False) takes the same windows the run scores" in text


def test_gradient_checkpointing_flag_trains_the_same_run_and_is_recorded(tmp_path, capsys):
    """--task.gradient_checkpointing (activation checkpointing, transformers' gradient_checkpointing_enable)
    did not exist: a user short of memory had no way to trade compute for it. Under the Trainer's compiled
    step, with a frozen stage and dropout, it trains the same losses, and config.json records it."""
    from audiotrain.recipes.clap import cli as clap

    losses = {}
    for flag in ("false", "true"):
        out = tmp_path / f"run_{flag}"
        argv = [*_tiny_demo_argv(tmp_path, out), "--train.compile", "true", "--train.processes", "1",
                "--task.freeze_audio_stages", "1", "--task.gradient_checkpointing", flag]  # fmt: skip
        assert clap.main(argv) == 0, capsys.readouterr().err
        config = json.loads((out / "config.json").read_text())
        assert config["config"]["task"]["gradient_checkpointing"] is (flag == "true")
        history = json.loads((out / "history.json").read_text())
        losses[flag] = history["train_loss"] + history["val_loss"]
    np.testing.assert_allclose(
        np.asarray(losses["true"], float), np.asarray(losses["false"], float), rtol=1e-5
    )


def test_batch_of_one_pair_a_rank_is_taken_under_a_launcher(monkeypatch):
    """Under `python -m audiotrain launch -n 2` --train.batch_size is each rank's and the loss gathers the
    ranks' pairs, yet `--train.batch_size 1` was refused: "must be an integer >= 2 ... over one pair the loss
    is 0" (a run short of memory, batch 1 on each of 8 GPUs, could not start). In one process, and in the
    recipe's own processes (which split the whole batch), it is still refused, naming the launcher."""
    from audiotrain.distributed import local
    from audiotrain.recipes.clap.config import ClapTrainConfig
    from audiotrain.recipes.config_cli import SettingError

    with monkeypatch.context() as patched:
        patched.setattr(local, "in_launched_job", lambda: True)
        config = ClapTrainConfig(batch_size=1, eval_batch_size=1)
        assert (config.batch_size, config.eval_batch_size) == (1, 1)
        patched.setenv(local.PROCESSES_ENV, "2")
        with pytest.raises(SettingError, match="over one pair the loss is 0"):
            ClapTrainConfig(batch_size=1)
    with pytest.raises(SettingError, match="under a launcher of 2\\+ processes it is each one's"):
        ClapTrainConfig(batch_size=1)


#: What the CLAP commands' --help and usage errors must not import: the trainer, the other recipe, the large
#: libraries (each costs tenths of a second of CPU on every call of a script).
HEAVY_FOR_QUICK_COMMANDS = (
    "audiotrain.train.trainer",
    "audiotrain.recipes.clap.train",
    "audiotrain.recipes.chords",
    "scipy",
    "librosa",
    "matplotlib",
    "torch",
    "transformers",
)


@pytest.mark.parametrize(
    "argv, status",
    [
        (["--help"], 0),
        (["evaluate", "--help"], 0),
        (["export", "--help"], 0),
        (["--no_such_flag"], 2),
        (["evaluate", "--no_such_flag"], 2),
        (["--task.learning_rate", "x"], 2),
    ],
)
def test_help_and_usage_errors_do_not_import_the_trainer(argv, status):
    """`python -m audiotrain.recipes.clap --help` took 0.93 s of CPU and `evaluate --help` 1.1 s, ~0.3 s of it
    importing the trainer through audiotrain.recipes.clap.train, which only training and scoring use. A later
    top-level import must not bring it (or torch, scipy, the chord recipe) back."""
    done, got, loaded = run_as_main("audiotrain.recipes.clap", argv, HEAVY_FOR_QUICK_COMMANDS)
    assert (got, loaded) == (status, []), done.stderr
