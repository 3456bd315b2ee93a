"""ChordRecognitionModel: shapes, masking, config handling, gradients, and that it learns a toy task."""

from audiotrain.models.chord_loss import ChordRecognitionLoss, head_accuracies
from audiotrain.models.chord_model import ChordModelConfig, ChordRecognitionModel, joint_chord_index

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
import pytest
from mlx.utils import tree_flatten


def tiny_config(**overrides) -> ChordModelConfig:
    values = dict(
        n_bins=24,
        bass_view_bins=0,
        context_frames=1,
        d_model=32,
        n_layers=1,
        n_heads=2,
        ff_dim=64,
        dropout=0.0,
    )
    values.update(overrides)
    return ChordModelConfig(**values)


def test_outputs_are_per_frame_logits_of_each_head():
    model = ChordRecognitionModel(tiny_config())
    out = model(mx.random.normal((3, 17, 24)))
    assert set(out) == {"chord_type", "root", "bass", "chord"}
    assert out["chord_type"].shape == (3, 17, 32)
    assert out["chord"].shape == (3, 17, 2 + 30 * 12)  # N, X, and 12 roots of each of the 30 chord types
    assert out["root"].shape == (3, 17, 12)
    assert out["bass"].shape == (3, 17, 12)
    assert all(bool(mx.all(mx.isfinite(v)).item()) for v in out.values())


def test_embed_gives_the_frames_the_heads_read_so_the_trunk_serves_as_a_feature_extractor():
    """A trained model's trunk as a feature extractor (or under a new head) had no way in but copying
    `__call__`'s body: its output is what the chord type, root and chord heads read, masked frames too."""
    model = ChordRecognitionModel(tiny_config(bass_bins=8))
    features = mx.random.normal((2, 11, 24))
    mask = mx.array([[1] * 11, [1] * 7 + [0] * 4])
    embedded = model.embed(features, mask)
    assert embedded.shape == (2, 11, 32)
    out = model(features, mask)
    for head in ("chord_type", "root", "chord"):
        np.testing.assert_array_equal(np.array(getattr(model, f"{head}_head")(embedded)), np.array(out[head]))


def test_default_config_builds_and_runs():
    model = ChordRecognitionModel()
    config = ChordModelConfig()
    out = model(mx.zeros((1, 8, config.n_bins + config.bass_view_bins)))
    assert out["chord_type"].shape == (1, 8, 32)
    assert model.num_parameters() > 0


def test_runs_on_windows_longer_than_seen_in_training():
    # The distance bias has no maximum length: any number of frames works.
    model = ChordRecognitionModel(tiny_config())
    assert model(mx.random.normal((1, 700, 24)))["root"].shape == (1, 700, 12)


@pytest.mark.parametrize("attention", ["relu2", "softmax"])
def test_padding_with_a_mask_leaves_real_frames_unchanged(attention):
    mx.random.seed(1)
    model = ChordRecognitionModel(tiny_config(context_frames=2, attention=attention))
    model.eval()
    song = mx.random.normal((1, 20, 24))
    alone = model(song)
    padded = mx.concatenate([song, 5.0 * mx.random.normal((1, 7, 24))], axis=1)
    mask = mx.concatenate([mx.ones((1, 20)), mx.zeros((1, 7))], axis=1)
    batched = model(padded, mask=mask)
    for key in alone:
        np.testing.assert_allclose(np.array(batched[key][:, :20]), np.array(alone[key]), atol=1e-4)


@pytest.mark.parametrize("attention", ["relu2", "softmax"])
def test_attention_is_multi_head_attention_with_the_alibi_distance_bias(attention):
    """The attention, whose keys are projected straight into the layout the score product reads, against a
    plain numpy version of the same maths: q, k, v from one [3 * dim, dim] projection, per-head scores
    q.k / sqrt(head_dim) - slope * |i - j| plus the padding bias, rows normalised, values mixed, heads joined,
    output projection."""
    from audiotrain.models.chord_model import SelfAttention, alibi_slopes

    mx.random.seed(3)
    b, t, dim, heads = 2, 9, 16, 4
    layer = SelfAttention(dim, heads, attention)
    x = mx.random.normal((b, t, dim))
    key_bias = mx.array(np.where(np.arange(t) < 7, 0.0, -1e9)[None, None, None, :].repeat(b, 0), mx.float32)
    got = np.array(layer(x, key_bias))
    xs, w = np.array(x, np.float64), np.array(layer.qkv.weight, np.float64)
    q, k, v = np.split(xs @ w.T, 3, axis=-1)
    split = lambda a: a.reshape(b, t, heads, dim // heads).transpose(0, 2, 1, 3)  # noqa: E731
    q, k, v = split(q), split(k), split(v)
    distance = np.abs(np.arange(t)[:, None] - np.arange(t)[None, :])
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(dim // heads)
    scores = scores - np.array(alibi_slopes(heads))[:, None, None] * distance + np.array(key_bias)
    if attention == "softmax":
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
    else:
        weights = np.maximum(scores, 0.0) ** 2
        weights /= weights.sum(-1, keepdims=True) + 1e-6
    joined = (weights @ v).transpose(0, 2, 1, 3).reshape(b, t, dim)
    want = joined @ np.array(layer.out.weight, np.float64).T + np.array(layer.out.bias, np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_without_mask_padding_changes_the_result():
    # The counterpart of the test above: shows the mask is what makes the difference.
    mx.random.seed(1)
    model = ChordRecognitionModel(tiny_config())
    model.eval()
    song = mx.random.normal((1, 20, 24))
    padded = mx.concatenate([song, 5.0 * mx.random.normal((1, 7, 24))], axis=1)
    diff = mx.abs(model(padded)["chord_type"][:, :20] - model(song)["chord_type"]).max().item()
    assert diff > 1e-3


def test_dropout_only_in_training_mode():
    model = ChordRecognitionModel(tiny_config(dropout=0.5))
    x = mx.random.normal((2, 10, 24))
    model.eval()
    a, b = model(x)["root"], model(x)["root"]
    assert mx.array_equal(a, b)
    model.train()
    assert not mx.array_equal(model(x)["root"], model(x)["root"])


def test_dropout_keeps_the_expected_value_of_each_activation():
    """Inverted dropout: the kept activations are scaled by 1 / (1 - rate), so the mean is unchanged."""
    from audiotrain.models.chord_model import dropout

    mx.random.seed(0)
    dropped = np.array(dropout(mx.ones((100_000,)), 0.5, True))
    assert set(np.unique(dropped)) == {0.0, 2.0}
    assert dropped.mean() == pytest.approx(1.0, abs=0.02)


def test_alibi_slopes_are_the_geometric_sequence_ending_at_2_to_the_minus_8():
    from audiotrain.models.chord_model import alibi_slopes

    assert alibi_slopes(4).tolist() == [2**-2, 2**-4, 2**-6, 2**-8]
    assert alibi_slopes(8).tolist() == [2.0**-e for e in range(1, 9)]


def test_a_block_whose_attention_and_feed_forward_add_nothing_is_the_identity():
    """Both sublayers are residual: x + attention(norm(x)), then x + ff(norm(x))."""
    from audiotrain.models.chord_model import TransformerBlock

    block = TransformerBlock(16, 2, 32, dropout=0.0)
    for layer in (block.attention.out, block.ff_out):
        layer.weight = mx.zeros_like(layer.weight)
        layer.bias = mx.zeros_like(layer.bias)
    x = mx.random.normal((2, 5, 16))
    np.testing.assert_array_equal(np.array(block(x)), np.array(x))


def test_every_parameter_gets_a_gradient():
    model = ChordRecognitionModel(tiny_config(n_layers=2))
    x = mx.random.normal((2, 12, 24))

    def loss(m):
        out = m(x)
        return sum((v**2).mean() for v in out.values())

    grads = nn.value_and_grad(model, loss)(model)[1]
    flat = tree_flatten(grads)
    assert len(flat) == len(tree_flatten(model.trainable_parameters()))
    for name, g in flat:
        assert bool(mx.any(g != 0).item()), f"no gradient reaches {name}"


def test_the_joint_chord_head_gives_a_class_per_type_and_root_and_old_configs_have_none():
    model = ChordRecognitionModel(tiny_config(chord_head=True))
    out = model(mx.random.normal((2, 5, 24)))
    assert out["chord"].shape == (2, 5, 2 + 30 * 12)
    assert "chord" not in ChordRecognitionModel(tiny_config(chord_head=False))(mx.random.normal((2, 5, 24)))
    stored = tiny_config(chord_head=True).to_dict()
    del stored["chord_head"]  # a checkpoint from before the head existed
    assert ChordModelConfig.from_dict(stored).chord_head is False


class _UnfoldedModel(ChordRecognitionModel):
    """The model's front ends written plainly: the Linear reads the context stack of the affine norm."""

    def _normed_front(self, x, norm, linear):
        return linear(self._stack_context(norm(x)))


def test_front_ends_fold_the_norm_scale_into_the_linear_with_the_same_values_and_gradients():
    """The front ends fold each input norm's scale and offset into the Linear after it (so the backward
    pass need not run through the context stack): the logits and the gradient of every parameter are
    those of the plain `linear(stack(norm(x)))`, with the norms' scale and offset away from 1 and 0."""
    mx.random.seed(5)
    config = tiny_config(bass_bins=6, bass_view_bins=6, context_frames=2)
    folded, plain = ChordRecognitionModel(config), _UnfoldedModel(config)
    for norm in (folded.input_norm, folded.bass_norm):
        norm.weight = 1.0 + 0.5 * mx.random.normal(norm.weight.shape)
        norm.bias = 0.3 * mx.random.normal(norm.bias.shape)
    plain.update(folded.parameters())
    x = 3.0 * mx.random.normal((2, 7, 30)) + 1.0
    mask = mx.array([[1] * 7, [1] * 5 + [0] * 2])
    for head, logits in folded(x, mask).items():
        assert mx.allclose(logits, plain(x, mask)[head], atol=1e-4), head

    def loss(model):
        return sum((v**2).mean() for v in model(x, mask).values())

    want = dict(tree_flatten(nn.value_and_grad(plain, loss)(plain)[1]))
    got = dict(tree_flatten(nn.value_and_grad(folded, loss)(folded)[1]))
    assert set(got) == set(want) and {"input_norm.weight", "bass_norm.bias"} <= set(got)
    for name, grad in got.items():
        assert mx.allclose(grad, want[name], rtol=1e-3, atol=1e-4), name


def test_config_round_trips_through_a_dict():
    cfg = tiny_config(n_layers=3)
    assert ChordModelConfig.from_dict(cfg.to_dict()) == cfg


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="divisible by n_heads"):
        ChordModelConfig(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="n_bins"):
        ChordModelConfig(n_bins=0)
    with pytest.raises(ValueError, match="dropout"):
        ChordModelConfig(dropout=1.0)
    with pytest.raises(ValueError, match="context_frames"):
        ChordModelConfig(context_frames=-1)
    with pytest.raises(ValueError, match="attention"):
        ChordModelConfig(attention="linear")
    with pytest.raises(ValueError, match="bass_bins"):
        ChordModelConfig(bass_bins=-1)
    with pytest.raises(ValueError, match="unknown ChordModelConfig field.*hidden"):
        ChordModelConfig.from_dict({"hidden": 3})
    # A bool is no bin count (True would build a one-bin bass view), and a bass branch of width 0 has
    # nothing for the bass head to read.
    for bad in (True, -1):
        with pytest.raises(ValueError, match="bass_view_bins must be an integer >= 0"):
            ChordModelConfig(bass_view_bins=bad)
    with pytest.raises(ValueError, match="bass_dim must be a positive integer, got 0"):
        ChordModelConfig(bass_dim=0)


def test_joint_chord_targets_keep_n_and_x_and_give_every_chord_type_its_twelve_roots():
    """The joint head's target of (chord type, root): N and X keep classes 0 and 1, and type t on root r is
    2 + (t - 2) * 12 + r, the decoder's order; a major chord (type 2) on D is class 4, not C:maj's 2."""
    chord_type = mx.array([0, 1, 2, 2, 3, 31])
    root = mx.array([-1, -1, 0, 2, 7, 11])
    assert joint_chord_index(chord_type, root).tolist() == [0, 1, 2, 4, 2 + 12 + 7, 2 + 29 * 12 + 11]


def test_bass_head_reads_the_low_band_on_its_own_scale():
    """The bass branch normalises the lowest bins apart from the rest: under loud upper bins, a quiet low
    band still moves the bass logits through it; a config without it (a checkpoint written before the
    branch existed) builds the model without it."""
    mx.random.seed(2)
    model = ChordRecognitionModel(tiny_config(bass_bins=6))
    model.eval()
    x = mx.concatenate([mx.zeros((1, 5, 6)), 100.0 * mx.random.normal((1, 5, 18))], axis=-1)
    quiet_bass = x + mx.concatenate([mx.eye(6)[None, :5] * 0.05, mx.zeros((1, 5, 18))], axis=-1)
    low = model.bass_norm(quiet_bass[..., :6])
    assert float(mx.abs(low).max()) > 1.0  # the quiet low band spans the branch's whole input range
    assert float(mx.abs(model(quiet_bass)["bass"] - model(x)["bass"]).max()) > 1e-3
    old = {k: v for k, v in tiny_config().to_dict().items() if k != "bass_bins"}
    without = ChordRecognitionModel(ChordModelConfig.from_dict(old))
    names = {name for name, _ in tree_flatten(without.parameters())}
    assert without.config.bass_bins == 0 and not any(n.startswith("bass_front") for n in names)
    assert without.bass_head.weight.shape == (12, 32)


def test_only_the_bass_head_reads_the_bass_view():
    """With a bass view the model reads n_bins + bass_view_bins per frame; the view feeds the bass branch
    alone, so chord type, root and the joint chord head do not move with it."""
    mx.random.seed(3)
    model = ChordRecognitionModel(tiny_config(bass_bins=6, bass_view_bins=6))
    model.eval()
    x = mx.random.normal((1, 5, 30))
    moved = mx.concatenate([x[..., :24], x[..., 24:] + 3.0 * mx.random.normal((1, 5, 6))], axis=-1)
    before, after = model(x), model(moved)
    for head in ("chord_type", "root", "chord"):
        assert mx.array_equal(before[head], after[head])
    assert float(mx.abs(before["bass"] - after["bass"]).max()) > 1e-3
    assert model.bass_norm.weight.shape == (12,)  # the 6 lowest bins beside the 6 of the view
    view_only = ChordRecognitionModel(tiny_config(bass_bins=0, bass_view_bins=6))
    assert view_only.bass_norm.weight.shape == (6,) and view_only(x)["bass"].shape == (1, 5, 12)
    with pytest.raises(ValueError, match=r"\[batch, frames, 30\].*\(1, 5, 24\)"):
        model(x[..., :24])
    with pytest.raises(ValueError, match="bass_view_bins must be an integer >= 0"):
        tiny_config(bass_view_bins=-1)


def test_wrong_input_width_is_reported():
    model = ChordRecognitionModel(tiny_config())
    with pytest.raises(ValueError, match=r"\[batch, frames, 24\].*\(2, 5, 30\)"):
        model(mx.zeros((2, 5, 30)))
    with pytest.raises(ValueError, match="mask must be"):
        model(mx.zeros((2, 5, 24)), mask=mx.ones((2, 4)))


def _toy_batch(rng: np.random.Generator, batch: int, frames: int):
    """Frames of 24 bins (two octaves of semitones) holding a major or minor triad held for 4-frame
    segments, plus noise. Chord type 2 = maj, 3 = min (the vocabulary's indices); bass = root."""
    n_seg = frames // 4
    roots = rng.integers(0, 12, size=(batch, n_seg))
    minor = rng.integers(0, 2, size=(batch, n_seg))
    x = 0.3 * rng.standard_normal((batch, frames, 24)).astype(np.float32)
    for b in range(batch):
        for s in range(n_seg):
            for interval in (0, 3 + (1 - minor[b, s]), 7):
                pc = (roots[b, s] + interval) % 12
                x[b, 4 * s : 4 * s + 4, pc] += 1.0
                x[b, 4 * s : 4 * s + 4, pc + 12] += 1.0
    per_frame = lambda a: np.repeat(a, 4, axis=1).astype(np.int32)  # noqa: E731
    return mx.array(x), {
        "chord_type": mx.array(per_frame(2 + minor)),
        "root": mx.array(per_frame(roots)),
        "bass": mx.array(per_frame(roots)),
    }


@pytest.mark.parametrize("attention", ["relu2", "softmax"])
def test_tiny_model_learns_a_toy_chord_task(attention):
    rng = np.random.default_rng(0)
    mx.random.seed(0)
    model = ChordRecognitionModel(tiny_config(attention=attention))
    loss_fn = ChordRecognitionLoss(label_smoothing=0.0)
    optimizer = optim.AdamW(learning_rate=3e-3, weight_decay=0.0)

    def step_loss(m, x, y):
        return loss_fn(m(x), y)[0]

    step = nn.value_and_grad(model, step_loss)
    losses = []
    for _ in range(80):
        x, y = _toy_batch(rng, 8, 32)
        loss, grads = step(model, x, y)
        optimizer.update(model, grads)
        mx.eval(model.parameters(), optimizer.state)
        losses.append(loss.item())
    model.eval()
    x, y = _toy_batch(np.random.default_rng(123), 16, 32)
    acc = {k: v.item() for k, (v, _) in head_accuracies(model(x), y).items()}
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])
    # Chance: 1/2 for maj/min, 1/12 for root and bass.
    assert acc["chord_type_acc"] > 0.8
    assert acc["root_acc"] > 0.5
    assert acc["bass_note_acc"] > 0.5


def test_a_quantized_or_adapted_attention_projection_computes_the_same_attention():
    # nn.quantize on the model (QLoRA's base) made qkv a QuantizedLinear, whose weight is packed uint32
    # words: the attention sliced it as a float matrix and failed with MLX's "[matmul] Last dimension of
    # first input with shape (2,10,64) must match ... (8,64)"; a LoRA wrapper (no .weight), AttributeError.
    class Wrapped(nn.Module):
        def __init__(self, base):
            super().__init__()
            self.base = base

        def __call__(self, x):
            return self.base(x)

    model = ChordRecognitionModel(tiny_config(d_model=64, ff_dim=128))
    model.eval()
    features = mx.random.normal((2, 10, 24))
    plain = model(features)
    qkv = model.blocks[0].attention.qkv
    model.blocks[0].attention.qkv = Wrapped(qkv)
    wrapped = model(features)
    for head in plain:
        assert mx.allclose(wrapped[head], plain[head], atol=1e-5).item(), head
    model.blocks[0].attention.qkv = qkv
    nn.quantize(model, group_size=64, bits=8, class_predicate=lambda path, _: path.endswith("qkv"))
    assert isinstance(model.blocks[0].attention.qkv, nn.QuantizedLinear)
    quantized = model(features)
    for head in plain:  # (8 bits: the outputs move by about 1e-2)
        assert mx.allclose(quantized[head], plain[head], atol=0.1).item(), head
        assert not mx.array_equal(quantized[head], plain[head]).item(), head
