"""The MLX CLAP port against transformers' ClapModel: parity, configs, compile, gradients, input errors.

The tiny unfused and fused parity run everywhere from the committed fixtures (tests/fixtures/clap_tiny and
clap_tiny_fused, made by scripts/make_clap_fixture.py). The fused training mode and the full-size
(laion/clap-htsat-unfused shaped) model are built here with torch + transformers and skipped where those are
not installed.
"""

import copy
import dataclasses
import importlib.util
import json
import re
from pathlib import Path

import audiotrain  # noqa: F401  (loads the optimized BLAS; must precede mlx)
from audiotrain.models.clap import (
    ClapAudioConfig,
    ClapConfig,
    ClapConfigError,
    ClapModel,
    ClapTextConfig,
    load_pretrained,
)
from audiotrain.models.clap.convert import hf_to_mlx
from audiotrain.models.clap.htsat import bicubic_resize_weights, relative_position_index, shifted_window_mask
from audiotrain.models.clap.layers import Dropout, DropPath, activation

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from exactness import assert_same_numbers, same_values
from mlx.utils import tree_flatten
from reference import require

FIXTURE = Path(__file__).parent / "fixtures" / "clap_tiny"
FUSED_FIXTURE = Path(__file__).parent / "fixtures" / "clap_tiny_fused"
#: How the script makes each committed fixture: (folder, tiny_config's fused, seed, weight formats).
COMMITTED_FIXTURES = {
    "unfused": (FIXTURE, False, 0, ("bin",)),
    "fused": (FUSED_FIXTURE, True, 3, ("safetensors",)),
}
SCRIPT = Path(__file__).parents[1] / "scripts" / "make_clap_fixture.py"


def _fixture_script():
    spec = importlib.util.spec_from_file_location("make_clap_fixture", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


def _run(model: ClapModel, ref: dict) -> dict:
    out = model(
        mx.array(ref["input_features"]),
        mx.array(ref["input_ids"]),
        mx.array(ref["attention_mask"]),
        is_longer=mx.array(ref["is_longer"]),
    )
    out["audio_pooled"] = model.audio_model(mx.array(ref["input_features"]), mx.array(ref["is_longer"]))
    return {k: np.array(v) for k, v in out.items()}


def _assert_parity(out: dict, ref: dict) -> None:
    assert _rel(out["audio_pooled"], ref["audio_pooled"]) <= 1e-4
    for key in ("audio_embeds", "text_embeds", "logits_per_audio", "logits_per_text"):
        assert out[key].shape == ref[key].shape, key
        assert _rel(out[key], ref[key]) <= 1e-5, key


@pytest.fixture(scope="module")
def tiny():
    model, config = load_pretrained(FIXTURE)
    return model, config, dict(np.load(FIXTURE / "reference.npz"))


def test_tiny_unfused_matches_transformers(tiny):
    model, _, ref = tiny
    assert ref["logits_per_audio"].shape == (3, 4)  # more texts than clips: the two logit matrices differ
    _assert_parity(_run(model, ref), ref)


@pytest.mark.parity
@pytest.mark.parametrize("variant", sorted(COMMITTED_FIXTURES))
def test_committed_fixture_is_what_the_script_makes(variant, tmp_path):
    require("transformers")
    require("torch")
    from audiotrain.models.clap import load_torch_state_dict

    from safetensors.numpy import load_file

    def weights(folder: Path) -> dict:
        if (folder / "pytorch_model.bin").exists():
            return load_torch_state_dict(folder / "pytorch_model.bin")
        return load_file(folder / "model.safetensors")

    fixture, fused, seed, formats = COMMITTED_FIXTURES[variant]
    script = _fixture_script()
    folder = script.write_fixture(tmp_path / "tiny", script.tiny_config(fused), seed=seed, formats=formats)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in fixture.iterdir())
    for name in ("tokenizer.json", "vocab.json", "merges.txt"):
        assert (folder / name).read_text() == (fixture / name).read_text(), name
    # config.json records the transformers version that wrote it; everything else must match.
    fresh_config, committed_config = (json.loads((f / "config.json").read_text()) for f in (folder, fixture))
    fresh_config.pop("transformers_version"), committed_config.pop("transformers_version")
    assert fresh_config == committed_config
    fresh, committed = np.load(folder / "reference.npz"), np.load(fixture / "reference.npz")
    assert sorted(fresh.files) == sorted(committed.files)
    for key in ("input_features", "is_longer", "input_ids", "attention_mask"):
        np.testing.assert_array_equal(fresh[key], committed[key], err_msg=key)
    for key in ("audio_embeds", "text_embeds", "logits_per_audio", "logits_per_text", "audio_pooled"):
        # torch's float results may differ in the last bits on another CPU / BLAS.
        np.testing.assert_allclose(fresh[key], committed[key], rtol=1e-5, atol=1e-6, err_msg=key)
    fresh_state, committed_state = weights(folder), weights(fixture)
    assert fresh_state.keys() == committed_state.keys()
    for key, value in fresh_state.items():
        np.testing.assert_array_equal(value, committed_state[key], err_msg=key)


def test_fused_tiny_matches_transformers():
    model, config = load_pretrained(FUSED_FIXTURE)
    ref = dict(np.load(FUSED_FIXTURE / "reference.npz"))
    assert config.audio_config.enable_fusion
    assert ref["is_longer"].any() and not ref["is_longer"].all()  # both the fused and the plain branch run
    _assert_parity(_run(model, ref), ref)
    compiled = mx.compile(model.get_audio_features)(
        mx.array(ref["input_features"]), mx.array(ref["is_longer"])
    )
    np.testing.assert_allclose(np.array(compiled), ref["audio_embeds"], rtol=1e-5, atol=1e-6)
    # No clip longer: the local views must not matter.
    ref_short = dict(ref)
    ref_short["input_features"] = ref["input_features"].copy()
    ref_short["input_features"][:, 1:] = 0.0
    plain = model.get_audio_features(mx.array(ref["input_features"]), mx.zeros((3,), dtype=mx.bool_))
    zeroed = model.get_audio_features(mx.array(ref_short["input_features"]), mx.zeros((3,), dtype=mx.bool_))
    np.testing.assert_allclose(np.array(plain), np.array(zeroed), atol=1e-6)
    # Single-channel ("rand_trunc") features with no clip longer: the global view alone.
    single = model.get_audio_features(mx.array(ref["input_features"][:, :1]), mx.zeros((3,), dtype=mx.bool_))
    np.testing.assert_allclose(np.array(single), np.array(plain), atol=1e-6)


@pytest.mark.parity
def test_fused_model_on_rand_trunc_features_of_longer_clips_matches_transformers():
    """A fused checkpoint whose preprocessor crops ("rand_trunc": 1 channel) flags clips longer than the
    window in is_longer; transformers then fuses zeros as their local views. The port skipped the fusion:
    0.055 off transformers' embedding of those clips on the tiny fused model."""
    require("transformers")
    torch = require("torch")
    script = _fixture_script()
    config_dict = script.tiny_config(fused=True)
    hf = script.build_model(config_dict, seed=7)
    model = _mlx_twin(hf, config_dict)
    model.eval()
    features = (np.random.default_rng(7).standard_normal((3, 1, 250, 16)) * 2 - 5).astype(np.float32)
    is_longer = np.array([[True], [False], [True]])
    with torch.no_grad():
        want = hf.get_audio_features(
            input_features=torch.from_numpy(features), is_longer=torch.from_numpy(is_longer)
        )
    want = getattr(want, "pooler_output", want).numpy()
    got = np.array(model.get_audio_features(mx.array(features), mx.array(is_longer)))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    compiled = mx.compile(model.get_audio_features)(mx.array(features), mx.array(is_longer))
    np.testing.assert_allclose(np.array(compiled), want, rtol=1e-5, atol=1e-6)


def test_a_fused_model_refuses_four_channel_features_without_is_longer():
    """The module's example, model.get_audio_features(features["input_features"]), on a fused checkpoint
    took the missing is_longer as "no clip is longer": a clip longer than the window embedded from its shrunk
    whole alone, its local views unread (0.018 off the embedding with is_longer on the tiny fused model),
    where transformers fails. It is refused, naming what to pass; 1-channel features still need none."""
    from audiotrain.models.clap import CLAP

    model, _ = load_pretrained(FUSED_FIXTURE)
    ref = dict(np.load(FUSED_FIXTURE / "reference.npz"))
    needed = r"is_longer is needed with the 4-channel features of a fused model: pass the feature extractor's"
    with pytest.raises(ValueError, match=needed):
        model.get_audio_features(ref["input_features"])
    with pytest.raises(ValueError, match=needed):
        CLAP(FUSED_FIXTURE)(audio=ref["input_features"])
    with_flags = model.get_audio_features(ref["input_features"], ref["is_longer"])
    np.testing.assert_allclose(np.array(with_flags), ref["audio_embeds"], rtol=1e-5, atol=1e-6)
    assert model.get_audio_features(ref["input_features"][:, :1]).shape == ref["audio_embeds"].shape


def _mlx_twin(hf_model, config_dict) -> ClapModel:
    """An MLX ClapModel holding a transformers model's weights (converted in memory)."""
    model = ClapModel(ClapConfig.from_dict(config_dict))
    params, _ = hf_to_mlx(model, {k: mx.array(v.numpy()) for k, v in hf_model.state_dict().items()})
    model.update(params)
    return model


@pytest.mark.parity
def test_fused_training_mode_matches_transformers_batch_statistics():
    """In training mode the fusion BatchNorms see only the is_longer clips, as in transformers."""
    require("transformers")
    torch = require("torch")
    script = _fixture_script()
    config_dict = script.tiny_config(fused=True)
    config_dict["audio_config"].update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    hf = script.build_model(config_dict, seed=5)
    model = _mlx_twin(hf, config_dict)
    rng = np.random.default_rng(5)
    features = (rng.standard_normal((3, 4, 250, 16)) * 2 - 5).astype(np.float32)
    is_longer = np.array([[True], [False], [True]])
    hf.audio_model.train()
    model.audio_model.train()
    with torch.no_grad():
        want = hf.audio_model(torch.from_numpy(features), torch.from_numpy(is_longer)).pooler_output.numpy()
    got = np.array(model.audio_model(mx.array(features), mx.array(is_longer)))
    assert _rel(got, want) <= 1e-5
    ours = dict(tree_flatten(model.parameters()))
    stats = [n for n in hf.state_dict() if n.endswith(("running_mean", "running_var"))]
    assert any("fusion_model" in n for n in stats)
    for name in stats:
        np.testing.assert_allclose(np.array(ours[name]), hf.state_dict()[name].numpy(), rtol=1e-5, atol=1e-6)


def test_fused_training_without_a_longer_clip_keeps_the_fusion_batch_norm_statistics():
    """transformers runs the fusion block only on is_longer clips, so a training batch of short clips alone
    leaves its BatchNorm running statistics as they were; a batch with a longer clip updates them."""
    model, _ = load_pretrained(FUSED_FIXTURE)
    features = mx.array(np.load(FUSED_FIXTURE / "reference.npz")["input_features"])

    def fusion_statistics() -> dict:
        names = ("running_mean", "running_var")
        params = tree_flatten(model.parameters())
        return {n: np.array(v) for n, v in params if "fusion_model" in n and n.endswith(names)}

    before = fusion_statistics()
    assert len(before) == 8  # mean and var of the 2 BatchNorms of each of the 2 branches
    model.audio_model.train()
    model.audio_model(features, mx.zeros((3,), dtype=mx.bool_))
    for name, value in fusion_statistics().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    model.audio_model(features, mx.array([True, False, False]))
    assert all(not np.array_equal(v, before[n]) for n, v in fusion_statistics().items())


@pytest.mark.slow
@pytest.mark.parity
def test_full_size_unfused_matches_transformers(tmp_path):
    """laion/clap-htsat-unfused's architecture (~150M parameters) with random weights, two clips of 1001 frames."""
    require("transformers")
    require("torch")
    script = _fixture_script()
    config_dict = script.full_config()
    hf = script.build_model(config_dict, seed=1)
    script.write_tokenizer(tmp_path, 320)
    inputs = script.make_inputs(config_dict, clips=2, seed=1, tokenizer_dir=tmp_path)
    ref = script.reference_outputs(hf, inputs)
    model = _mlx_twin(hf, config_dict)
    del hf
    model.eval()
    assert inputs["input_features"].shape == (2, 1, 1001, 64)
    _assert_parity(_run(model, {**inputs, **ref}), ref)


@pytest.mark.parity
def test_bicubic_resize_matches_torch_interpolate():
    torch = require("torch")
    x = np.random.default_rng(0).standard_normal((2, 1, 1001, 8)).astype(np.float32)
    want = torch.nn.functional.interpolate(torch.from_numpy(x), (1024, 8), mode="bicubic", align_corners=True)
    index, weight = bicubic_resize_weights(1001, 1024)
    got = sum(x[:, :, index[:, j], :] * weight[:, j][None, None, :, None] for j in range(4))
    np.testing.assert_allclose(got, want.numpy(), rtol=0, atol=2e-6)


def test_bicubic_resize_keeps_ends_and_constants():
    index, weight = bicubic_resize_weights(1001, 1024)
    np.testing.assert_allclose(weight.sum(axis=1), 1.0, atol=1e-6)  # a constant stays constant
    ramp = np.arange(1001, dtype=np.float32)
    resized = (ramp[index] * weight).sum(axis=1)
    assert resized[0] == 0 and resized[-1] == pytest.approx(1000, abs=1e-3)  # align_corners: ends pinned


def test_bfloat16_model_computes_the_audio_tower_in_bfloat16():
    model, _ = load_pretrained(FIXTURE, dtype=mx.bfloat16)
    ref = dict(np.load(FIXTURE / "reference.npz"))
    features = mx.array(ref["input_features"]).astype(mx.bfloat16)
    encoder = model.audio_model.audio_encoder
    assert features.shape[2] < encoder.config.spec_width  # the time axis is resized
    assert encoder.fold(features).dtype == mx.bfloat16
    assert any(layer.shift for stage in encoder.layers for layer in stage.blocks)  # masked windows too
    assert model.audio_model(features).dtype == mx.bfloat16
    embeds = model.get_audio_features(features)
    assert embeds.dtype == mx.bfloat16
    assert _rel(np.array(embeds.astype(mx.float32)), ref["audio_embeds"]) < 0.05
    # float32 features, as the feature extractor gives them, are computed in bfloat16 too.
    from_float32 = model.get_audio_features(features.astype(mx.float32))
    assert from_float32.dtype == mx.bfloat16
    np.testing.assert_array_equal(
        np.array(from_float32.astype(mx.float32)), np.array(embeds.astype(mx.float32))
    )


def test_bfloat16_model_computes_the_text_tower_in_bfloat16_with_an_attention_mask():
    """The additive attention mask is cast to the model's dtype: a float32 mask would promote a bfloat16 text
    tower to float32 from its first attention on (slower, twice the memory)."""
    model, _ = load_pretrained(FIXTURE, dtype=mx.bfloat16)
    ids = mx.array([[0, 40, 41, 42, 2, 1, 1]], dtype=mx.int32)
    mask = (ids != 1).astype(mx.int32)
    embeds = model.get_text_features(ids, mask)
    assert embeds.dtype == mx.bfloat16
    want = np.array(load_pretrained(FIXTURE)[0].get_text_features(ids, mask))
    assert _rel(np.array(embeds.astype(mx.float32)), want) < 0.05


@pytest.mark.parity
def test_swin_index_and_mask_match_transformers():
    require("torch")
    require("transformers")
    from transformers import ClapAudioConfig

    require("transformers")
    from transformers.models.clap.modeling_clap import ClapAudioLayer, ClapAudioSelfAttention

    hf_config = ClapAudioConfig(window_size=4)
    attention = ClapAudioSelfAttention(hf_config, 8, 2, 4)
    np.testing.assert_array_equal(relative_position_index(4), attention.relative_position_index.numpy())
    layer = ClapAudioLayer(hf_config, 8, (8, 8), 2, shift_size=2)
    import torch

    want = layer.get_attn_mask(8, 8, torch.float32, "cpu").numpy()
    np.testing.assert_array_equal(shifted_window_mask(8, 8, 4, 2), want)


@pytest.mark.parity
def test_every_activation_matches_transformers_act2fn():
    """A config's hidden_act means what transformers' ACT2FN makes of it ("gelu" exact, "gelu_new" tanh)."""
    torch = require("torch")
    require("transformers")
    from transformers.activations import ACT2FN

    x = np.linspace(-6, 6, 2001, dtype=np.float32)
    for name in ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "tanh", "silu", "swish"):
        want = ACT2FN[name](torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(np.array(activation(name)(mx.array(x))), want, atol=1e-6, err_msg=name)


def test_compiled_forward_equals_eager(tiny):
    model, _, ref = tiny
    eager = _run(model, ref)

    def forward(features, ids, mask):
        out = model(features, ids, mask)
        return out["logits_per_audio"], out["audio_embeds"], out["text_embeds"]

    compiled = mx.compile(forward)
    got = compiled(
        mx.array(ref["input_features"]), mx.array(ref["input_ids"]), mx.array(ref["attention_mask"])
    )
    np.testing.assert_allclose(np.array(got[0]), eager["logits_per_audio"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.array(got[1]), eager["audio_embeds"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.array(got[2]), eager["text_embeds"], rtol=1e-5, atol=1e-6)


def _contrastive_loss(model, features, ids, mask):
    out = model(features, ids, mask)
    labels = mx.arange(features.shape[0])
    audio = nn.losses.cross_entropy(out["logits_per_audio"], labels, reduction="mean")
    text = nn.losses.cross_entropy(out["logits_per_text"], labels, reduction="mean")
    return (audio + text) / 2


def _three_training_steps(ref: dict, compiled: bool):
    import mlx.optimizers as optim

    features = mx.array(ref["input_features"])
    ids, mask = mx.array(ref["input_ids"][:3]), mx.array(ref["attention_mask"][:3])
    mx.random.seed(0)
    model, _ = load_pretrained(FIXTURE)
    model.train()  # dropout on: the random state must flow through the compiled step
    optimizer = optim.AdamW(learning_rate=1e-3)
    state = [model.state, optimizer.state, mx.random.state]

    def step(features, ids, mask):
        loss, grads = nn.value_and_grad(model, _contrastive_loss)(model, features, ids, mask)
        optimizer.update(model, grads)
        return loss

    if compiled:
        step = mx.compile(step, inputs=state, outputs=state)
    losses = []
    for _ in range(3):
        loss = step(features, ids, mask)
        mx.eval(state)
        losses.append(loss.item())
    return losses, dict(tree_flatten(model.parameters()))


@pytest.mark.slow
def test_compiled_train_step_equals_eager(tiny):
    """The trainer compiles the step over (model, optimizer, random) state: same losses and weights as eager."""
    ref = tiny[2]
    eager_losses, eager_params = _three_training_steps(ref, compiled=False)
    compiled_losses, compiled_params = _three_training_steps(ref, compiled=True)
    assert same_values(eager_losses, compiled_losses)
    assert eager_losses[2] < eager_losses[0]
    for name, value in eager_params.items():
        assert_same_numbers(np.array(value), np.array(compiled_params[name]), err_msg=name)


def test_every_parameter_gets_a_gradient_and_frozen_towers_none(tiny):
    _, config, ref = tiny
    model = ClapModel(config)
    model.update(load_pretrained(FIXTURE)[0].parameters())
    model.train()
    features = mx.array(ref["input_features"])
    ids, mask = mx.array(ref["input_ids"][:3]), mx.array(ref["attention_mask"][:3])
    loss, grads = nn.value_and_grad(model, _contrastive_loss)(model, features, ids, mask)
    assert np.isfinite(loss.item())
    flat = dict(tree_flatten(grads))
    trainable = dict(tree_flatten(model.trainable_parameters()))
    assert set(flat) == set(trainable)
    assert not any(name.endswith(("running_mean", "running_var")) for name in flat)
    dead = [name for name, g in flat.items() if not np.any(np.array(g))]
    assert dead == []  # relative-position tables, pooler, logit scales: all receive gradient

    model.audio_model.freeze()
    _, grads = nn.value_and_grad(model, _contrastive_loss)(model, features, ids, mask)
    names = [name for name, _ in tree_flatten(grads)]
    assert names and not any(name.startswith("audio_model.") for name in names)
    assert "audio_projection.linear1.weight" in names


def test_training_mode_uses_dropout_and_batch_statistics(tiny):
    model, _, ref = tiny
    features = mx.array(ref["input_features"])
    model.eval()
    first = np.array(model.get_audio_features(features))
    np.testing.assert_array_equal(first, np.array(model.get_audio_features(features)))
    model.train()
    running = np.array(model.audio_model.audio_encoder.batch_norm.running_mean)
    trained = np.array(model.get_audio_features(features))
    assert not np.allclose(trained, first, atol=1e-4)
    assert not np.allclose(np.array(model.audio_model.audio_encoder.batch_norm.running_mean), running)
    model.update(load_pretrained(FIXTURE)[0].parameters())  # restore the shared fixture's statistics
    model.eval()


def _tiny_with(model: ClapModel, section: str, **settings) -> ClapModel:
    """A new (training-mode) model with the tiny fixture's weights and config, `settings` changed in
    `section`."""
    config_dict = json.loads((FIXTURE / "config.json").read_text())
    config_dict[section].update(settings)
    variant = ClapModel(ClapConfig.from_dict(config_dict))
    variant.update(model.parameters())
    return variant


def test_dropout_keeps_each_value_with_probability_1_minus_p_and_rescales_it():
    """Inverted dropout, as torch's: the training-mode expectation equals the eval output, which is x
    itself."""
    dropout = Dropout(0.25)
    x = mx.ones((20000,))
    mx.random.seed(0)
    out = np.array(dropout(x))  # a new module is in training mode
    kept = out != 0
    np.testing.assert_allclose(out[kept], 1 / 0.75, rtol=1e-6)
    assert kept.mean() == pytest.approx(0.75, abs=0.02)
    assert out.mean() == pytest.approx(1.0, abs=0.03)
    dropout.eval()
    np.testing.assert_array_equal(np.array(dropout(x)), np.array(x))


def test_drop_path_drops_a_whole_samples_branch_rescales_it_and_is_off_in_eval(tiny):
    """Stochastic depth (drop_path_rate): per sample, the residual branch is dropped or scaled by 1 / keep; a
    model in eval mode ignores the rate and embeds exactly as one without it."""
    drop = DropPath(0.5)
    mx.random.seed(0)
    out = np.array(drop(mx.ones((4000, 3, 2)))).reshape(4000, -1)
    assert (out == out[:, :1]).all()  # one draw per sample, not per value
    assert np.isin(out[:, 0], [0.0, 2.0]).all()
    assert out.mean() == pytest.approx(1.0, abs=0.05)

    model, _, ref = tiny
    dropping = _tiny_with(model, "audio_config", drop_path_rate=0.5)
    dropping.eval()
    features = mx.array(ref["input_features"])
    np.testing.assert_array_equal(
        np.array(dropping.get_audio_features(features)), np.array(model.get_audio_features(features))
    )


def test_text_attention_dropout_applies_in_training_only(tiny):
    """attention_probs_dropout_prob of the text config drops attention probabilities while training."""
    model, _, _ = tiny
    attention_dropping = _tiny_with(
        model, "text_config", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.5
    )
    ids = mx.array([[0, 40, 41, 42, 2]], dtype=mx.int32)
    mx.random.seed(0)
    first, second = (np.array(attention_dropping.get_text_features(ids)) for _ in range(2))
    assert not np.allclose(first, second, atol=1e-4)
    attention_dropping.eval()
    np.testing.assert_allclose(
        np.array(attention_dropping.get_text_features(ids)), np.array(model.get_text_features(ids)), atol=1e-6
    )


def test_freeze_layer_helpers(tiny):
    _, config, _ = tiny
    model = ClapModel(config)
    model.freeze_audio_layers(2)
    model.freeze_text_layers(1)
    names = {name for name, _ in tree_flatten(model.trainable_parameters())}
    assert not any(n.startswith("audio_model.audio_encoder.layers.1.") for n in names)
    assert any(n.startswith("audio_model.audio_encoder.layers.2.") for n in names)
    assert not any(n.startswith(("text_model.embeddings.", "text_model.encoder.layer.0.")) for n in names)
    assert any(n.startswith("text_model.encoder.layer.1.") for n in names)
    with pytest.raises(ValueError, match="num_stages"):
        model.freeze_audio_layers(4)


def test_freezing_every_audio_stage_freezes_the_whole_audio_front_and_keeps_the_projection(tiny):
    """freeze_audio_layers(len(stages)) is allowed: it freezes the mel BatchNorm, the patch embedding and
    every Swin stage, so only the audio tower's head and projection are left to train."""
    _, config, _ = tiny
    model = ClapModel(config)
    stages = len(model.audio_model.audio_encoder.layers)
    model.freeze_audio_layers(stages)
    names = {name for name, _ in tree_flatten(model.trainable_parameters())}
    frozen = ("batch_norm.", "patch_embed.", "layers.")
    assert not any(n.startswith(tuple("audio_model.audio_encoder." + part for part in frozen)) for n in names)
    assert any(n.startswith("audio_projection.") for n in names)


@pytest.mark.parametrize(
    "shape, message",
    [
        ((2, 4, 200, 16), "4 channels; this unfused model expects 1"),
        ((2, 1, 200, 20), "mel bins"),
        ((2, 1, 300, 16), "at most 256"),
        ((1, 200, 16), "batch, channels, frames"),
        ((0, 1, 200, 16), "holds no clips"),
        ((2, 1, 0, 16), "holds no frames"),
    ],
)
def test_bad_audio_input_is_explained(tiny, shape, message):
    model = tiny[0]
    with pytest.raises(ValueError, match=message):
        model.get_audio_features(mx.zeros(shape))


def test_bad_text_input_is_explained(tiny):
    model = tiny[0]
    with pytest.raises(ValueError, match="at most 78"):
        model.get_text_features(mx.ones((1, 79), dtype=mx.int32))
    with pytest.raises(ValueError, match="attention_mask shape"):
        model.get_text_features(mx.ones((2, 5), dtype=mx.int32), mx.ones((2, 4), dtype=mx.int32))
    with pytest.raises(ValueError, match="input_ids holds no tokens"):
        model.get_text_features(mx.ones((2, 0), dtype=mx.int32))
    with pytest.raises(TypeError, match="input_ids must be integer token ids, got mlx.core.float32"):
        model.get_text_features(mx.ones((2, 5)))


def test_the_tokenizers_and_feature_extractors_numpy_output_goes_straight_in(tiny):
    """HF-style, the processors' numpy arrays are passed as they come; they met raw MLX errors ('[issubdtype]
    Received invalid type', "Cannot interpret 'mlx.core.float32' as a data type"). Other types are named."""
    from audiotrain.models.clap import CLAP, ClapTokenizer

    model, config, ref = tiny
    tokens = ClapTokenizer.from_pretrained(FIXTURE)(["a dog barks", "rain"])
    expected = np.array(
        model.get_text_features(mx.array(tokens["input_ids"]), mx.array(tokens["attention_mask"]))
    )
    assert_same_numbers(
        np.array(model.get_text_features(tokens["input_ids"], tokens["attention_mask"])), expected
    )
    audio = ref["input_features"][:1]
    expected = np.array(model.get_audio_features(mx.array(audio), mx.array(ref["is_longer"][:1])))
    assert_same_numbers(np.array(model.get_audio_features(audio, ref["is_longer"][:1])), expected)
    clap = CLAP(config=config)
    assert clap(audio=audio)["audio_embeds"].shape == (1, config.projection_dim)
    with pytest.raises(
        TypeError, match=r"input_ids must be an mx.array or a numpy array, got list: wrap it in"
    ):
        model.get_text_features(tokens["input_ids"].tolist())
    with pytest.raises(TypeError, match=r"attention_mask must be an mx.array or a numpy array, got str"):
        model.get_text_features(tokens["input_ids"], "all")
    with pytest.raises(TypeError, match=r"input_features must be an mx.array or a numpy array, got NoneType"):
        model.get_audio_features(None)
    with pytest.raises(TypeError, match=r"^audio must be an mx.array or a numpy array, got list"):
        clap(audio=[[0.0]])


def test_an_is_longer_of_another_length_than_the_batch_is_named():
    """An is_longer of 2 flags for 3 clips ended in MLX's "[reshape] Cannot reshape array of size 2 into
    shape (3).", naming neither argument."""
    from audiotrain.models.clap import CLAP

    fused = CLAP(FUSED_FIXTURE)
    features = np.load(FUSED_FIXTURE / "reference.npz")["input_features"][:3]
    with pytest.raises(ValueError, match=r"is_longer has shape \(2,\) for the 3 clips of input_features"):
        fused.get_audio_features(features, np.array([True, False]))
    with pytest.raises(ValueError, match=r"is_longer has shape \(1, 3\) for the 3 clips"):
        fused(audio=features, is_longer=np.array([[True, False, True]]))
    assert fused.get_audio_features(features, np.array([[True], [False], [True]])).shape[0] == 3


def test_transformers_argument_order_is_named_not_a_shape_error(tiny):
    """transformers' ClapModel.forward takes (input_ids, input_features, ...), this one (input_features,
    input_ids, ...): code ported from transformers met "input_features must be (batch, channels, frames,
    mel_bins), got shape (4, 7)", which did not say the two were swapped."""
    model, _, ref = tiny
    ids, features, mask = ref["input_ids"], ref["input_features"], ref["attention_mask"]
    swapped = r"token ids and features swapped\? Its order is \(input_features, input_ids, attention_mask"
    with pytest.raises(ValueError, match=swapped):
        model(ids, features)
    with pytest.raises(ValueError, match=swapped):
        model(mx.array(ids), mx.array(features), None, mx.array(mask))
    by_name = model(input_ids=ids, input_features=features, attention_mask=mask)
    in_order = model(features, ids, mask)
    np.testing.assert_array_equal(
        np.array(by_name["logits_per_audio"]), np.array(in_order["logits_per_audio"])
    )


def test_the_tutorial_class_names_transformers_argument_order_too(tiny):
    """ClapModel names token ids passed first; the tutorial's CLAP (its own __call__) did not: clap(ids,
    features), transformers' order, and clap(ids) for text alone met "CLAP audio must be log-mels (batch, 1,
    16, frames) or (batch, 1, frames, 16), got shape (4, 77)", not saying that the token ids came first."""
    from audiotrain.models.clap import CLAP

    _, _, ref = tiny
    clap = CLAP(FIXTURE)
    swapped = (
        r"^CLAP got audio of shape \(4, 77\) \(int32\) and input_ids (of shape \(3, 1, 233, 16\)|None): "
    )
    swapped += (
        r"token ids and features swapped\? Its order is \(audio, input_ids, attention_mask, is_longer\)"
    )
    with pytest.raises(
        ValueError, match=swapped + ".*by name: model.*or model.input_ids=.... for text alone"
    ):
        clap(ref["input_ids"], ref["input_features"])
    with pytest.raises(ValueError, match=swapped):
        clap(ref["input_ids"])
    text = clap(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"])["text_embeds"]
    np.testing.assert_allclose(np.array(text), ref["text_embeds"], atol=1e-5)


def test_the_tutorial_class_takes_the_feature_extractors_output_by_name(tiny):
    """CLAP's own argument is `audio`: ``clap(**tokens, **features)``, transformers' call with the
    extractor's `input_features`, was "TypeError: CLAP.__call__() got an unexpected keyword argument
    'input_features'"."""
    from audiotrain.models.clap import CLAP

    _, _, ref = tiny
    clap = CLAP(FIXTURE)
    tokens = {"input_ids": ref["input_ids"], "attention_mask": ref["attention_mask"]}
    features = {"input_features": ref["input_features"], "is_longer": ref["is_longer"]}
    by_name = clap(**tokens, **features)
    as_audio = clap(audio=ref["input_features"], **tokens)
    np.testing.assert_array_equal(
        np.array(by_name["logits_per_audio"]), np.array(as_audio["logits_per_audio"])
    )
    np.testing.assert_allclose(np.array(by_name["logits_per_audio"]), ref["logits_per_audio"], atol=1e-5)
    with pytest.raises(ValueError, match="pass the log-mels once, as audio or as input_features"):
        clap(audio=ref["input_features"], input_features=ref["input_features"])


def test_token_ids_outside_the_vocabulary_are_an_index_error_naming_them(tiny):
    """MLX does not bounds-check a gather: the id vocab_size read past the embedding table (another vector, no
    error) and larger ids ended the process with a segfault, where transformers raises IndexError."""
    from audiotrain.models.clap import CLAP

    model, config, _ = tiny
    vocab = config.text_config.vocab_size
    ids = mx.array([[0, 40, 41, 2], [0, 40, vocab, 2]], dtype=mx.int32)
    expected = (
        rf"input_ids\[1, 2\] is the token id {vocab}, outside .*vocab_size {vocab}: ids 0..{vocab - 1};"
    )
    with pytest.raises(IndexError, match=expected):
        model.get_text_features(ids)
    with pytest.raises(IndexError, match=r"input_ids\[0, 1\] is the token id -1, "):
        model.get_text_features(mx.array([[0, -1, 2]], dtype=mx.int32))
    # The tutorial's class, whose __call__ takes the ids (seed 001 drew them from RoBERTa's 50265).
    clap = CLAP(config=config)
    with pytest.raises(IndexError, match="is the token id 50264, .*text_config.vocab_size"):
        clap(input_ids=mx.array([[0, 50264, 2]], dtype=mx.int32))


def test_token_ids_outside_the_vocabulary_give_nan_inside_mx_compile(tiny):
    """A compiled function cannot read the ids, nor raise: the row of an id beyond the table embeds as NaN
    (a NaN loss, an update the Trainer skips), never as a read past the table; other rows are untouched."""
    model, config, _ = tiny
    vocab = config.text_config.vocab_size
    good = mx.array([[0, 40, 41, 2]], dtype=mx.int32)
    ids = mx.concatenate([good, mx.array([[0, 40, vocab + 3, 2]], dtype=mx.int32)])
    out = np.array(mx.compile(model.get_text_features)(ids))
    assert np.isnan(out[1]).all()
    # The first ids outside on either side: vocab_size itself (one row past the table) and -1.
    edges = mx.array([[0, 40, vocab, 2], [0, -1, 41, 2]], dtype=mx.int32)
    assert np.isnan(np.array(mx.compile(model.get_text_features)(edges))).all()
    np.testing.assert_allclose(out[0], np.array(model.get_text_features(good))[0], rtol=1e-5, atol=1e-6)


def test_an_all_zero_projection_embeds_as_zeros_not_nan(tiny):
    """Embeddings are unit norm except an all-zero one (F.normalize's eps): a projection that outputs zeros
    (here a zeroed last layer) gives zero embeddings and logits, not NaN."""
    model, config, ref = tiny
    model = ClapModel(config)
    model.text_projection.linear2.weight = mx.zeros_like(model.text_projection.linear2.weight)
    model.text_projection.linear2.bias = mx.zeros_like(model.text_projection.linear2.bias)
    out = model(ref["input_features"], ref["input_ids"], ref["attention_mask"])
    np.testing.assert_array_equal(np.array(out["text_embeds"]), 0.0)
    np.testing.assert_array_equal(np.array(out["logits_per_audio"]), 0.0)
    norms = np.linalg.norm(np.array(out["audio_embeds"]), axis=-1)
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)


def test_padding_does_not_change_text_embedding(tiny):
    model = tiny[0]
    ids = mx.array([[0, 40, 41, 42, 2]], dtype=mx.int32)
    padded = mx.concatenate([ids, mx.ones((1, 6), dtype=mx.int32)], axis=1)
    mask = (padded != 1).astype(mx.int32)
    np.testing.assert_allclose(
        np.array(model.get_text_features(ids)), np.array(model.get_text_features(padded, mask)), atol=1e-6
    )


def test_padding_without_a_mask_is_attended_at_robertas_padding_position(tiny):
    """Without an attention mask every token is attended, padding too (as transformers); RoBERTa gives every
    padding token the padding position and numbers only the other tokens, so where the padding sits among
    them does not change the embedding."""
    model = tiny[0]
    at_end = mx.array([[0, 40, 41, 42, 2, 1, 1]], dtype=mx.int32)
    inside = mx.array([[0, 40, 1, 41, 1, 42, 2]], dtype=mx.int32)
    unmasked = np.array(model.get_text_features(at_end))
    np.testing.assert_allclose(np.array(model.get_text_features(inside)), unmasked, atol=1e-6)
    masked = np.array(model.get_text_features(at_end, (at_end != 1).astype(mx.int32)))
    assert not np.allclose(unmasked, masked, atol=1e-4)  # (the padding was attended)


# ---------------------------------------------------------------------------------------------- configs
def _laion_config(audio: dict, text: dict | None = None) -> dict:
    """Shaped like the hub's config.json files: generic transformers keys everywhere."""
    generic = {
        "_name_or_path": "",
        "id2label": {"0": "LABEL_0"},
        "torch_dtype": "float32",
        "use_bfloat16": False,
    }
    return {
        "_commit_hash": None,
        "architectures": ["ClapModel"],
        "hidden_size": 768,
        "initializer_factor": 1.0,
        "logit_scale_init_value": 14.285714285714285,
        "model_type": "clap",
        "num_hidden_layers": 16,
        "projection_dim": 512,
        "projection_hidden_act": "relu",
        "torch_dtype": "float32",
        "transformers_version": "4.27.0.dev0",
        "audio_config": {**generic, "model_type": "clap_audio_model", "fusion_num_hidden_layers": 2, **audio},
        "text_config": {
            **generic,
            "model_type": "clap_text_model",
            "vocab_size": 50265,
            "position_embedding_type": "absolute",
            "classifier_dropout": None,
            **(text or {}),
        },
    }


LAION_CONFIGS = {
    # Parameter counts (with BatchNorm statistics) of transformers' ClapModel for the same config.json.
    "clap-htsat-unfused": ({"enable_fusion": False, "fusion_type": None}, 153_493_018),
    "clap-htsat-fused": ({"enable_fusion": True, "fusion_type": None}, 153_508_138),
    "larger_clap_general": (
        {
            "enable_fusion": False,
            "depths": [2, 2, 12, 2],
            "hidden_size": 1024,
            "patch_embeds_hidden_size": 128,
        },
        193_914_010,
    ),
}


@pytest.mark.parametrize("name", sorted(LAION_CONFIGS))
def test_laion_configs_build_with_transformers_parameter_count(name, tmp_path):
    audio, params = LAION_CONFIGS[name]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(_laion_config(audio)))
    config = ClapConfig.from_json(path)
    assert config.audio_config.enable_fusion == audio["enable_fusion"]
    assert config.text_config.projection_dim == 512 and config.audio_config.projection_dim == 512
    model = ClapModel(config)
    count = sum(v.size for _, v in tree_flatten(model.parameters()))
    assert count == params
    written = config.to_dict()
    assert written["transformers_version"] == "4.27.0.dev0"  # unknown keys survive a round trip
    assert ClapConfig.from_dict(written) == config


def test_a_config_keeps_its_logit_scale_init_and_first_eos_and_names_its_sections():
    # A config.json's logit_scale_init_value must be read (not the default 1/0.07 written back on export), an
    # eos_token_id list (as generation configs give) means its first item, and the written sections name
    # their model_type, as transformers' own save_pretrained writes them.
    data = {"logit_scale_init_value": 10.0, "text_config": {"eos_token_id": [2, 7]}, "audio_config": {}}
    config = ClapConfig.from_dict(data)
    assert (config.logit_scale_init_value, config.text_config.eos_token_id) == (10.0, 2)
    written = config.to_dict()
    assert written["logit_scale_init_value"] == 10.0 and written["text_config"]["eos_token_id"] == 2
    assert [written[k]["model_type"] for k in ("text_config", "audio_config")] == [
        "clap_text_model",
        "clap_audio_model",
    ]


#: A config.json that sets every field ClapConfig reads to a valid value other than its default (a tiny fused
#: model), as a RoBERTa-style or retrained CLAP checkpoint may. Only the fields `validate` allows at their
#: default alone keep it. The towers' projection settings repeat the top level's, which wins over them.
EVERY_FIELD_CHANGED = {
    "logit_scale_init_value": 10.0,
    "projection_dim": 20,
    "projection_hidden_act": "tanh",
    "text_config": {
        "vocab_size": 64,
        "hidden_size": 16,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 24,
        "hidden_act": "gelu_new",
        "hidden_dropout_prob": 0.05,
        "attention_probs_dropout_prob": 0.02,
        "max_position_embeddings": 40,
        "type_vocab_size": 2,
        "layer_norm_eps": 1e-7,
        "projection_dim": 20,
        "pad_token_id": 3,
        "bos_token_id": 4,
        "eos_token_id": 5,
        "projection_hidden_act": "tanh",
    },
    "audio_config": {
        "window_size": 4,
        "num_mel_bins": 16,
        "spec_size": 64,
        "hidden_act": "silu",
        "patch_size": 2,
        "patch_stride": [2, 2],
        "num_classes": 10,
        "hidden_size": 16,
        "projection_dim": 20,
        "depths": [1, 1],
        "num_attention_heads": [2, 4],
        "enable_fusion": True,
        "hidden_dropout_prob": 0.05,
        "fusion_type": "aff_2d",
        "patch_embed_input_channels": 1,
        "flatten_patch_embeds": True,
        "patch_embeds_hidden_size": 8,
        "enable_patch_layer_norm": False,
        "drop_path_rate": 0.1,
        "attention_probs_dropout_prob": 0.02,
        "qkv_bias": False,
        "mlp_ratio": 2.0,
        "aff_block_r": 2,
        "projection_hidden_act": "tanh",
        "layer_norm_eps": 1e-6,
    },
}
#: Fields whose only supported value is the default.
ONLY_THE_DEFAULT = {"patch_embed_input_channels", "flatten_patch_embeds"}


def _json_value(value):
    return list(value) if isinstance(value, tuple) else value


def test_every_field_of_a_config_json_is_kept_written_back_and_built():
    # A field read and checked but then dropped (text layer_norm_eps 1e-5 running as 1e-12, a tanh projection
    # running as relu) loaded without an error and ran another network. The loops cover every dataclass field,
    # so a field added later fails here until EVERY_FIELD_CHANGED gives it a value.
    data = copy.deepcopy(EVERY_FIELD_CHANGED)
    config = ClapConfig.from_dict(data)
    written = config.to_dict()
    default = ClapConfig()
    sections = [
        (f"{name}.", data[name], getattr(config, name), getattr(default, name), written[name])
        for name in ("text_config", "audio_config")
    ]
    top = {f.name for f in dataclasses.fields(ClapConfig) if f.compare} - {"text_config", "audio_config"}
    sections.append(("", {k: data[k] for k in top}, config, default, written))
    for where, given, read, defaults, out in sections:
        names = top if read is config else [f.name for f in dataclasses.fields(read)]
        for name in names:
            assert name in given, f"{where}{name}: EVERY_FIELD_CHANGED has no value for it"
            if name not in ONLY_THE_DEFAULT:
                assert given[name] != _json_value(getattr(defaults, name)), f"{where}{name} is its default"
            assert _json_value(getattr(read, name)) == given[name], f"{where}{name} was not kept"
            assert out[name] == given[name], f"{where}{name} was not written back"
    assert ClapConfig.from_dict(written) == config

    model = ClapModel(config)
    modules = dict(model.named_modules())
    text_norms = [
        m for name, m in modules.items() if name.startswith("text_model") and isinstance(m, nn.LayerNorm)
    ]
    assert len(text_norms) == 3 and {m.eps for m in text_norms} == {1e-7}
    # (transformers builds the Swin patch-merging and final LayerNorms with eps 1e-5, whatever the config)
    block_norms = [m for name, m in modules.items() if name.endswith(("layernorm_before", "layernorm_after"))]
    assert len(block_norms) == 4 and {m.eps for m in block_norms} == {1e-6}
    probe = mx.linspace(-3, 3, 25)
    for name, act in [
        ("text_model.encoder.layer.0.intermediate", "gelu_new"),
        ("audio_model.audio_encoder.layers.1.blocks.0.intermediate", "silu"),
        ("text_projection", "tanh"),
        ("audio_projection", "tanh"),
    ]:
        np.testing.assert_allclose(
            np.array(modules[name]._act(probe)), np.array(activation(act)(probe)), err_msg=name
        )
    assert not np.allclose(
        np.array(nn.gelu_approx(probe)), np.array(nn.gelu(probe)), atol=1e-5
    )  # (told apart)
    dropouts = {name: m.p for name, m in modules.items() if name.endswith(("dropout", "drop_path"))}
    assert dropouts["text_model.embeddings.dropout"] == 0.05
    assert dropouts["text_model.encoder.layer.0.attention.self.dropout"] == 0.02
    assert dropouts["audio_model.audio_encoder.layers.0.blocks.0.output.dropout"] == 0.05
    assert dropouts["audio_model.audio_encoder.layers.0.blocks.0.attention.self.dropout"] == 0.02
    assert dropouts["audio_model.audio_encoder.layers.1.blocks.0.drop_path"] == pytest.approx(0.1)
    block = modules["audio_model.audio_encoder.layers.0.blocks.0"]
    assert block.intermediate.dense.weight.shape == (16, 8)  # mlp_ratio 2 on width 8
    assert "bias" not in block.attention.self.query  # qkv_bias false
    assert "audio_model.audio_encoder.patch_embed.norm" not in modules  # enable_patch_layer_norm false
    assert model.text_model.embeddings.token_type_embeddings.weight.shape == (2, 16)
    model.eval()
    audio = model.get_audio_features(
        mx.random.normal((1, 4, 100, 16), key=mx.random.key(0)), mx.array([True])
    )
    text = model.get_text_features(mx.array([[4, 10, 11, 5]], dtype=mx.int32))
    assert audio.shape == text.shape == (1, 20)


def folding_config(spec_size: int, num_mel_bins: int) -> ClapConfig:
    """A tiny unfused CLAP that folds spec_size / num_mel_bins mel blocks into its square spectrogram."""
    text = ClapTextConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=20,
    )
    audio = ClapAudioConfig(
        spec_size=spec_size,
        num_mel_bins=num_mel_bins,
        window_size=4,
        patch_embeds_hidden_size=8,
        depths=(1, 1),
        num_attention_heads=(2, 2),
        hidden_size=16,
    )
    return ClapConfig(text_config=text, audio_config=audio, projection_dim=8)


@pytest.mark.parametrize("num_mel_bins, freq_ratio", [(32, 2), (8, 8)])
def test_an_audio_tower_folds_any_number_of_mel_blocks(num_mel_bins, freq_ratio):
    # Every checkpoint in the tests (LAION's 256/64, the demo's 64/16) folds 4 mel blocks; a config.json with
    # 128 mel bins folds 2. The time axis is resized to spec_size * freq_ratio frames, the most it accepts.
    audio = folding_config(64, num_mel_bins).audio_config
    assert (audio.freq_ratio, audio.spec_width) == (freq_ratio, 64 * freq_ratio)
    model = ClapModel(folding_config(64, num_mel_bins))
    model.eval()
    for frames in (50, audio.spec_width):
        features = mx.random.normal((2, 1, frames, num_mel_bins), key=mx.random.key(frames))
        embeddings = np.array(model.get_audio_features(features))
        assert embeddings.shape == (2, 8) and np.isfinite(embeddings).all()
    with pytest.raises(
        ValueError, match=f"{audio.spec_width + 1} frames; the model accepts at most {audio.spec_width}"
    ):
        model.get_audio_features(mx.zeros((1, 1, audio.spec_width + 1, num_mel_bins)))


@pytest.mark.parity
def test_config_matches_transformers_defaults():
    require("torch")
    require("transformers")
    from transformers import ClapConfig as HFClapConfig

    ours = ClapConfig.from_dict(HFClapConfig().to_dict())
    assert ours == ClapConfig()


@pytest.mark.parametrize(
    "audio, message",
    [
        ({"depths": [2, 2, 6]}, "same length"),
        ({"hidden_size": 512}, "hidden_size is 512"),
        ({"window_size": 16}, "stage 3"),
        ({"depths": "2,2,6,2"}, "audio_config.depths: expected a non-empty list of integers"),
        ({"enable_fusion": "yes"}, "enable_fusion: expected true or false"),
        ({"hidden_act": "mish"}, "audio_config.hidden_act"),
        ({"fusion_type": "daf_1d", "enable_fusion": True}, "fusion_type"),
    ],
)
def test_bad_configs_name_the_field(audio, message, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(_laion_config(audio)))
    with pytest.raises(ClapConfigError, match=message) as info:
        ClapConfig.from_json(path)
    assert str(path) in str(info.value)


def test_config_file_errors(tmp_path):
    with pytest.raises(ClapConfigError, match="no such file"):
        ClapConfig.from_json(tmp_path / "config.json")
    (tmp_path / "config.json").write_text('{\n  "model_type": "clap",\n  oops\n}')
    with pytest.raises(ClapConfigError, match="line 3"):
        ClapConfig.from_json(tmp_path / "config.json")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "clip"}))
    with pytest.raises(ClapConfigError, match="model_type is 'clip'"):
        ClapConfig.from_json(tmp_path / "config.json")
    (tmp_path / "config.json").write_text(
        json.dumps(_laion_config({}, {"position_embedding_type": "relative_key"}))
    )
    with pytest.raises(ClapConfigError, match="position_embedding_type"):
        ClapConfig.from_json(tmp_path / "config.json")


@pytest.mark.parametrize(
    "block, value, got",
    [("text_config", None, "null"), ("audio_config", None, "null"), ("text_config", [], r"\[\]")],
)
def test_a_settings_block_that_is_not_an_object_is_refused(tmp_path, block, value, got):
    # A null block built the default towers, which then failed on every tensor of the weights.
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**_laion_config({}), block: value}))
    with pytest.raises(
        ClapConfigError, match=rf"config.json: {block}: expected an object of settings, got {got}$"
    ):
        ClapConfig.from_json(path)


def test_too_many_frames_names_the_config_fields_that_set_the_limit():
    # Seed 001's mels are 256 frames; a small config of spec_size 64 and 64 mel bins takes 64. The message had
    # said "accepts at most 64" without naming what to change in the config.
    model = ClapModel(folding_config(64, 64))
    with pytest.raises(ValueError, match=r"at most 64 \(audio_config.spec_size 64 x freq_ratio 1, "):
        model.get_audio_features(mx.zeros((1, 1, 256, 64)))


EMBED_IN_THREADS = """
import audiotrain  # (first, as README says: before MLX)
import threading
from concurrent.futures import ThreadPoolExecutor

import mlx.core as mx
import numpy as np
from audiotrain.models.clap import load_pretrained

model, config = load_pretrained({folder!r})
mel = mx.array(np.random.default_rng(0).normal(size=(1, 1, 200, 16)).astype(np.float32))
ids, mask = mx.array([[0, 5, 7, 2]]), mx.array([[1, 1, 1, 1]])
alone = np.array(model.get_audio_features(mel))
# A service's request threads embed, each thread ending after its request; never the main thread.
with ThreadPoolExecutor(2) as pool:
    audio = list(pool.map(lambda _: np.array(model.get_audio_features(mel)), range(3)))
    both = list(pool.map(lambda _: np.array(model(mel, ids, mask)["audio_embeds"]), range(2)))
worker = threading.Thread(target=lambda: np.array(model.get_text_features(ids, mask)))
worker.start()
worker.join()
assert all(np.array_equal(a, alone) for a in audio + both)
print("SAME", flush=True)
"""


def test_a_model_used_from_request_threads_lets_the_process_exit_cleanly(tmp_path):
    """An app embedding audio in its request threads (a thread pool) got its embeddings, then MLX aborted
    the process as it exited ("terminate called without an active exception", status 134): the audio
    tower left MLX streams in the threads that had ended, as the chord predictor's forward pass once did."""
    import subprocess
    import sys

    from child_processes import child_env

    done = subprocess.run(
        [sys.executable, "-c", EMBED_IN_THREADS.format(folder=str(FIXTURE))],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "SAME" in done.stdout and "terminate called" not in out


@pytest.mark.parity
@pytest.mark.parametrize("fused", [False, True])
def test_the_contrastive_loss_gradient_of_every_parameter_equals_transformers_autograd(fused):
    """The parity tests above compare forward outputs; this compares what training uses: the gradient of
    LAION's symmetric InfoNCE (the CLAP recipe's loss) for every parameter of both towers, with
    transformers' under torch autograd (dropout off, eval mode), to float32 rounding."""
    require("transformers")
    torch = require("torch")
    from audiotrain.recipes.clap.task import clap_contrastive_loss

    script = _fixture_script()
    config_dict = script.tiny_config(fused=fused)
    for section in ("audio_config", "text_config"):
        config_dict[section].update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    config_dict["audio_config"].update(drop_path_rate=0.0)
    hf = script.build_model(config_dict, seed=1).eval()
    model = _mlx_twin(hf, config_dict)
    model.eval()
    ref = dict(np.load(FIXTURE / "reference.npz"))
    n = min(len(ref["input_features"]), len(ref["input_ids"]))
    features = ref["input_features"][:n]
    is_longer = np.ones_like(ref["is_longer"][:n]) if fused else ref["is_longer"][:n]
    if fused:  # the fusion model's four views: the global one and three local ones
        features = np.repeat(features, 4, axis=1)
    ids, mask = ref["input_ids"][:n], ref["attention_mask"][:n]

    out = hf(
        input_features=torch.from_numpy(features),
        is_longer=torch.from_numpy(is_longer),
        input_ids=torch.from_numpy(ids).long(),
        attention_mask=torch.from_numpy(mask).long(),
    )
    logits = hf.logit_scale_a.exp() * out.audio_embeds @ out.text_embeds.T
    labels = torch.arange(n)
    loss = torch.nn.functional.cross_entropy(logits, labels) + torch.nn.functional.cross_entropy(
        logits.T, labels
    )
    (loss / 2).backward()

    def ours(m):
        o = m(mx.array(features), mx.array(ids), mx.array(mask), is_longer=mx.array(is_longer))
        return clap_contrastive_loss(o["audio_embeds"], o["text_embeds"], mx.exp(m.logit_scale_a))[0]

    value, grads = nn.value_and_grad(model, ours)(model)
    assert value.item() == pytest.approx(loss.item() / 2, rel=1e-5)
    got = dict(tree_flatten(grads))
    compared = 0
    for name, parameter in hf.named_parameters():
        if parameter.grad is None:  # outside the loss (logit_scale_t): no gradient in ours either
            assert name not in got or not np.any(np.array(got[name])), name
            continue
        want = parameter.grad.numpy()
        # Attention key biases shift every score of a query equally, which softmax ignores: their gradient
        # is 0 up to rounding noise (1e-9) that no relative comparison can take.
        if np.abs(want).max() < 1e-6:
            continue
        assert _rel(np.array(got[name]).reshape(want.shape), want) <= 1e-4, name
        compared += 1
    assert compared > 100


def test_audio_tower_alone_takes_the_feature_extractors_numpy_arrays(tiny):
    # A backbone for a supervised task is `model.audio_model` alone, fed the extractor's default numpy output:
    # it raised "Cannot interpret 'mlx.core.float32' as a data type" from deep in the tower.
    model, _, ref = tiny
    features, is_longer = ref["input_features"].astype(np.float32), ref["is_longer"]
    want = model.audio_model(mx.array(features), mx.array(is_longer))
    got = model.audio_model(features, is_longer)
    np.testing.assert_array_equal(np.array(got), np.array(want))
    with pytest.raises(TypeError, match="input_features must be an mx.array or a numpy array, got list"):
        model.audio_model(features.tolist())


def _grads_after_seed(model, ref, compiled: bool):
    features = mx.array(ref["input_features"])
    ids, mask = mx.array(ref["input_ids"][:3]), mx.array(ref["attention_mask"][:3])
    mx.random.seed(7)

    def loss_and_grad(features, ids, mask):
        return nn.value_and_grad(model, _contrastive_loss)(model, features, ids, mask)

    if compiled:  # as the Trainer compiles its step: over the model's and the random state
        state = [model.state, mx.random.state]
        loss_and_grad = mx.compile(loss_and_grad, inputs=state, outputs=state)
    loss, grads = loss_and_grad(features, ids, mask)
    return loss.item(), dict(tree_flatten(grads))


@pytest.mark.parametrize("compiled", [False, True])
def test_gradient_checkpointing_gives_the_same_gradients_dropout_and_frozen_layers_included(tiny, compiled):
    """Activation checkpointing recomputes each block in the backward pass: the gradients are those of the
    plain model (Dropout's masks drawn again the same), eager and compiled, with a frozen stage too."""
    ref = tiny[2]
    model, _ = load_pretrained(FIXTURE)
    model.train()  # dropout on: the recomputed forward must draw the forward's masks
    model.freeze_audio_layers(1)
    plain_loss, plain = _grads_after_seed(model, ref, compiled)
    model.gradient_checkpointing_enable()
    assert model.is_gradient_checkpointing
    loss, grads = _grads_after_seed(model, ref, compiled)
    assert set(grads) == set(plain) and not any(
        n.startswith("audio_model.audio_encoder.layers.0.") for n in grads
    )
    np.testing.assert_allclose(loss, plain_loss, rtol=1e-6)
    for name, value in plain.items():
        np.testing.assert_allclose(np.array(grads[name]), np.array(value), rtol=1e-4, atol=1e-6, err_msg=name)
    model.gradient_checkpointing_disable()
    assert not model.is_gradient_checkpointing


def test_gradient_checkpointing_enable_takes_transformers_arguments():
    """transformers' `gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})`
    was a TypeError (unexpected keyword), its `(None)` turned checkpointing off and `({...})` left
    is_gradient_checkpointing a dict; both now enable it, and an argument it cannot honour is named."""
    model, _ = load_pretrained(FIXTURE)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    assert model.is_gradient_checkpointing is True
    model.gradient_checkpointing_disable()
    model.gradient_checkpointing_enable(None)
    assert model.is_gradient_checkpointing is True
    model.gradient_checkpointing_disable()
    model.gradient_checkpointing_enable({"use_reentrant": True})
    assert model.is_gradient_checkpointing is True
    model.gradient_checkpointing_disable()
    with pytest.raises(ValueError, match="'preserve_rng_state' has no MLX counterpart"):
        model.gradient_checkpointing_enable({"preserve_rng_state": False})
    with pytest.raises(
        TypeError, match=r"got False; to turn checkpointing off call gradient_checkpointing_disable"
    ):
        model.gradient_checkpointing_enable(False)
    assert model.is_gradient_checkpointing is False


@pytest.mark.parametrize(
    "setting, expected",
    [
        (
            {"feature_size": 32},
            "a front end makes as many as its feature_size (preprocessor_config.json): use 16",
        ),
        (
            {"truncation": "fusion"},
            "4 come from a front end with truncation 'fusion' (preprocessor_config.json)",
        ),
        ({"max_length_s": 10}, "(preprocessor_config.json): shorten its max_length_s"),
    ],
)
def test_a_front_end_made_for_another_model_is_named_in_the_error(setting, expected):
    """A checkpoint folder whose preprocessor_config.json does not fit its config.json (other mel bands,
    the fusion front end of an unfused model, a longer window: 1001 frames for 256), loaded the README's way
    (CLAP(folder), ClapFeatureExtractor.from_pretrained(folder)), failed at the first call with "has no axis
    of 16 mel bins", "has 4 channels; this unfused model expects 1" or "accepts at most 256", naming neither
    the front end nor the setting to change."""
    from audiotrain.features.clap import ClapFeatureExtractor
    from audiotrain.models.clap import CLAP

    model = CLAP(FIXTURE)
    settings = ClapFeatureExtractor.from_pretrained(FIXTURE).to_dict()
    settings.update(setting)
    settings.pop("nb_max_samples", None)  # (derived from max_length_s)
    front_end = ClapFeatureExtractor.from_dict(settings)
    features = front_end([np.full(48000 * 3, 0.01, np.float32)], sampling_rate=48000, train=False)
    with pytest.raises(ValueError, match=re.escape(expected)):
        model(**features)
