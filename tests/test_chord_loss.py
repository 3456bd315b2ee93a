"""ChordRecognitionLoss and head_accuracies: values, masking of N/X and padding, weights, compile."""

from audiotrain.models.chord_loss import ChordRecognitionLoss, head_accuracies, smoothed_cross_entropy

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest


def random_case(seed: int = 0, batch: int = 2, frames: int = 6):
    rng = np.random.default_rng(seed)
    outputs = {
        "chord_type": mx.array(rng.standard_normal((batch, frames, 32)).astype(np.float32)),
        "root": mx.array(rng.standard_normal((batch, frames, 12)).astype(np.float32)),
        "bass": mx.array(rng.standard_normal((batch, frames, 12)).astype(np.float32)),
    }
    chord_type = rng.integers(2, 32, size=(batch, frames))
    chord_type[0, 0] = 0  # an N frame
    chord_type[1, 2] = 1  # an X frame
    root = rng.integers(0, 12, size=(batch, frames))
    bass = rng.integers(0, 12, size=(batch, frames))
    root[chord_type < 2] = -1
    bass[chord_type < 2] = -1
    targets = {
        k: mx.array(v.astype(np.int32))
        for k, v in (("chord_type", chord_type), ("root", root), ("bass", bass))
    }
    return outputs, targets


def numpy_ce(logits: np.ndarray, target: np.ndarray, eps: float) -> np.ndarray:
    logits = logits.astype(np.float64)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    n = logits.shape[-1]
    dist = np.full(logits.shape, eps / n)
    np.put_along_axis(dist, target[..., None], 1.0 - eps + eps / n, axis=-1)
    return -(dist * logp).sum(-1)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_smoothed_cross_entropy_matches_a_numpy_reference(eps):
    outputs, targets = random_case()
    got = np.array(smoothed_cross_entropy(outputs["chord_type"], targets["chord_type"], eps))
    want = numpy_ce(np.array(outputs["chord_type"]), np.array(targets["chord_type"]), eps)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    mlx_ref = nn.losses.cross_entropy(outputs["chord_type"], targets["chord_type"], label_smoothing=eps)
    np.testing.assert_allclose(got, np.array(mlx_ref), rtol=1e-5, atol=1e-5)


def test_total_is_the_weighted_sum_of_head_losses_over_defined_frames():
    outputs, targets = random_case()
    loss_fn = ChordRecognitionLoss(
        chord_type_weight=1.0, root_weight=2.0, bass_weight=0.5, label_smoothing=0.1
    )
    total, parts = loss_fn(outputs, targets)
    assert set(parts) == {"chord_type_loss", "root_loss", "bass_note_loss"}
    ct = np.array(targets["chord_type"])
    defined = ct >= 2
    for out_key, name in (
        ("chord_type", "chord_type_loss"),
        ("root", "root_loss"),
        ("bass", "bass_note_loss"),
    ):
        tgt = np.array(targets[out_key])
        ce = numpy_ce(np.array(outputs[out_key]), np.clip(tgt, 0, None), 0.1)
        keep = np.ones_like(defined) if out_key == "chord_type" else defined
        np.testing.assert_allclose(parts[name].item(), ce[keep].mean(), rtol=1e-5)
    want = parts["chord_type_loss"] + 2.0 * parts["root_loss"] + 0.5 * parts["bass_note_loss"]
    np.testing.assert_allclose(total.item(), want.item(), rtol=1e-6)


def test_total_of_the_head_means_weighs_them_as_the_loss_does():
    # The chord recipe's val_loss / test_loss is `total_of` the epoch's head means: with head weights other
    # than 1 it must be the same weighted sum the training loss is (an unweighted sum passed every test).
    outputs, targets = random_case()
    loss_fn = ChordRecognitionLoss(chord_type_weight=1.5, root_weight=2.0, bass_weight=0.25)
    total, parts = loss_fn(outputs, targets)
    means = {name: value.item() for name, value in parts.items()}
    assert loss_fn.total_of(means) == pytest.approx(total.item(), rel=1e-6)


def test_root_and_bass_logits_on_n_and_x_frames_do_not_matter():
    outputs, targets = random_case()
    loss_fn = ChordRecognitionLoss()
    before = loss_fn(outputs, targets)[0].item()
    undefined = (targets["root"] < 0)[..., None]
    changed = dict(outputs)
    for key in ("root", "bass"):
        changed[key] = mx.where(undefined, 100.0 * mx.random.normal(outputs[key].shape), outputs[key])
    assert loss_fn(changed, targets)[0].item() == pytest.approx(before, rel=1e-6)


def test_padded_frames_do_not_matter():
    outputs, targets = random_case(frames=8)
    mask = mx.array(np.array([[1] * 8, [1] * 5 + [0] * 3], dtype=np.float32))
    loss_fn = ChordRecognitionLoss()
    before = loss_fn(outputs, targets, mask)
    pad = (mask == 0)[..., None]
    changed = {k: mx.where(pad, 50.0 * mx.random.normal(v.shape), v) for k, v in outputs.items()}
    changed_targets = {k: mx.where(mask == 0, 3, v) for k, v in targets.items()}
    after = loss_fn(changed, changed_targets, mask)
    assert after[0].item() == pytest.approx(before[0].item(), rel=1e-6)
    # ... while without the mask the same change does matter.
    assert loss_fn(changed, changed_targets)[0].item() != pytest.approx(before[0].item(), rel=1e-3)


def test_a_batch_of_only_silence_gives_zero_root_and_bass_loss():
    outputs, _ = random_case()
    shape = outputs["root"].shape[:2]
    targets = {
        "chord_type": mx.zeros(shape, dtype=mx.int32),
        "root": -mx.ones(shape, mx.int32),
        "bass": -mx.ones(shape, mx.int32),
    }
    total, parts = ChordRecognitionLoss()(outputs, targets)
    assert parts["root_loss"].item() == 0.0 and parts["bass_note_loss"].item() == 0.0
    assert np.isfinite(total.item()) and total.item() == pytest.approx(parts["chord_type_loss"].item())


def test_class_weights_give_a_weighted_mean():
    outputs, targets = random_case()
    weights = np.linspace(0.5, 3.0, 32).astype(np.float32)
    weighted = ChordRecognitionLoss(label_smoothing=0.0, class_weights=weights)(outputs, targets)[1]
    ct = np.array(targets["chord_type"])
    ce = numpy_ce(np.array(outputs["chord_type"]), ct, 0.0)
    want = (weights[ct] * ce).sum() / weights[ct].sum()
    np.testing.assert_allclose(weighted["chord_type_loss"].item(), want, rtol=1e-5)
    ones = ChordRecognitionLoss(label_smoothing=0.0, class_weights=[1.0] * 32)(outputs, targets)[1]
    plain = ChordRecognitionLoss(label_smoothing=0.0)(outputs, targets)[1]
    assert ones["chord_type_loss"].item() == pytest.approx(plain["chord_type_loss"].item(), rel=1e-6)


def torch_weighted_smoothed_ce(logits, target, valid, weights, eps):
    """PyTorch's `cross_entropy(weight=w, label_smoothing=eps)` (mean), written out in numpy:
    Σ [(1 - eps) w[y] (-log p_y) + eps / C Σ_c w[c] (-log p_c)] / Σ w[y] over valid positions."""
    logits = logits.astype(np.float64)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    target_term = -np.take_along_axis(logp, target[..., None], axis=-1)[..., 0]
    smooth_term = -(logp * weights).sum(-1) / logits.shape[-1]
    numerators = (1.0 - eps) * weights[target] * target_term + eps * smooth_term
    return (numerators * valid).sum() / (weights[target] * valid).sum()


@pytest.mark.parametrize("eps", [0.1, 0.3])
def test_class_weights_with_label_smoothing_follow_pytorchs_formula(eps):
    """Each class's own weight weights its share of the smoothing term (not the target's weight), as in
    torch's CrossEntropyLoss(weight=..., label_smoothing=...); padding frames do not count."""
    outputs, targets = random_case()
    mask = np.ones(targets["chord_type"].shape, np.float32)
    mask[1, 4:] = 0.0
    weights = np.linspace(0.2, 3.0, 32).astype(np.float32)
    loss_fn = ChordRecognitionLoss(label_smoothing=eps, class_weights=weights)
    got = loss_fn(outputs, targets, mx.array(mask))[1]["chord_type_loss"].item()
    logits, ct = np.array(outputs["chord_type"]), np.array(targets["chord_type"])
    np.testing.assert_allclose(got, torch_weighted_smoothed_ce(logits, ct, mask, weights, eps), rtol=1e-5)

    def reference(x):  # the same formula by autodiff of plain MLX ops
        logp = x - mx.logsumexp(x, axis=-1, keepdims=True)
        w, y, valid = mx.array(weights), targets["chord_type"], mx.array(mask)
        target_term = -mx.take_along_axis(logp, y[..., None], axis=-1)[..., 0]
        numerators = (1 - eps) * w[y] * target_term - eps * mx.sum(logp * w, axis=-1) / 32
        return mx.sum(numerators * valid) / mx.sum(w[y] * valid)

    def ours(x):
        return loss_fn({**outputs, "chord_type": x}, targets, mx.array(mask))[1]["chord_type_loss"]

    _, want = mx.value_and_grad(reference)(outputs["chord_type"])
    for fn in (mx.value_and_grad(ours), mx.compile(mx.value_and_grad(ours))):
        value, grad = fn(outputs["chord_type"])
        assert value.item() == pytest.approx(got, rel=1e-6)
        np.testing.assert_allclose(np.array(grad), np.array(want), atol=1e-6)


@pytest.mark.parity
def test_class_weights_with_label_smoothing_equal_torchs_cross_entropy():
    from reference import require

    torch = require("torch")
    outputs, targets = random_case(seed=3)
    weights = np.linspace(0.2, 3.0, 32).astype(np.float32)
    got = ChordRecognitionLoss(label_smoothing=0.1, class_weights=weights)(outputs, targets)[1]
    want = torch.nn.functional.cross_entropy(
        torch.tensor(np.array(outputs["chord_type"])).reshape(-1, 32),
        torch.tensor(np.array(targets["chord_type"])).reshape(-1).long(),
        weight=torch.tensor(weights),
        label_smoothing=0.1,
    )
    assert got["chord_type_loss"].item() == pytest.approx(want.item(), rel=1e-5)


def test_invalid_arguments_are_reported():
    with pytest.raises(ValueError, match="label_smoothing"):
        ChordRecognitionLoss(label_smoothing=1.0)
    # the function alone gave 1.0986 (or NaN) for the numbers, float()'s errors for "a" and None
    for eps in (1.5, -0.1, float("nan"), "a", None):
        with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\), got"):
            smoothed_cross_entropy(mx.zeros((2, 3)), mx.array([0, 1]), eps)
    with pytest.raises(ValueError, match="bass_weight"):
        ChordRecognitionLoss(bass_weight=-1)
    with pytest.raises(ValueError, match=">= 0"):
        ChordRecognitionLoss(class_weights=[-1.0] * 32)
    outputs, targets = random_case()
    with pytest.raises(ValueError, match="10 entries.*32 classes"):
        ChordRecognitionLoss(class_weights=[1.0] * 10)(outputs, targets)
    with pytest.raises(KeyError, match="bass"):
        ChordRecognitionLoss()(outputs, {k: v for k, v in targets.items() if k != "bass"})


def test_a_head_weight_of_zero_leaves_that_head_out_and_nan_is_refused():
    """The recipe's config takes 0 for a head weight (switching the head off); a NaN weight made every loss
    NaN."""
    outputs, targets = random_case()
    total, parts = ChordRecognitionLoss(bass_weight=0.0)(outputs, targets)
    assert total.item() == pytest.approx(
        parts["chord_type_loss"].item() + parts["root_loss"].item(), rel=1e-6
    )
    with pytest.raises(ValueError, match="root_weight must be >= 0, got nan"):
        ChordRecognitionLoss(root_weight=float("nan"))
    # inf passed the >= 0 check: the total loss was inf at every step, which the Trainer skips as non-finite
    for name in ("chord_type_weight", "root_weight", "bass_weight"):
        with pytest.raises(ValueError, match=f"ChordRecognitionLoss.{name} must be finite, got inf"):
            ChordRecognitionLoss(**{name: float("inf")})


@pytest.mark.parametrize(
    "argument, value", [("root_weight", "a"), ("bass_weight", None), ("label_smoothing", "0.1x")]
)
def test_a_weight_that_is_no_number_is_named_in_the_error(argument, value):
    # A weight that is no number raised "could not convert string to float: 'a'" (or float()'s TypeError for
    # None), naming neither the argument nor the class.
    with pytest.raises(ValueError, match=rf"ChordRecognitionLoss\.{argument} must be .*got {value!r}"):
        ChordRecognitionLoss(**{argument: value})


def test_the_default_loss_is_the_seeds():
    """`ChordRecognitionLoss()` (the guide's): every head weighted 1 but the bass (0.5), label smoothing
    0.1."""
    outputs, targets = random_case()
    outputs["chord"] = mx.array(np.random.default_rng(5).standard_normal((2, 6, 362)).astype(np.float32))
    spelled_out = ChordRecognitionLoss(
        chord_type_weight=1.0, root_weight=1.0, bass_weight=0.5, label_smoothing=0.1, chord_weight=1.0
    )
    total, parts = ChordRecognitionLoss()(outputs, targets)
    want_total, want_parts = spelled_out(outputs, targets)
    assert total.item() == pytest.approx(want_total.item(), rel=1e-6)
    for name, value in want_parts.items():
        assert parts[name].item() == pytest.approx(value.item(), rel=1e-6), name


def test_a_target_past_the_last_class_is_read_as_the_last_class():
    """As the class docstring says (nothing can raise inside a compiled graph): not an out-of-bounds read."""
    outputs, targets = random_case()
    loss = ChordRecognitionLoss()
    past, last = dict(targets), dict(targets)
    past["root"] = mx.where(targets["root"] >= 0, 12, targets["root"])
    last["root"] = mx.where(targets["root"] >= 0, 11, targets["root"])
    assert loss(outputs, past)[1]["root_loss"].item() == pytest.approx(
        loss(outputs, last)[1]["root_loss"].item(), rel=1e-6
    )


@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("classes", [12, 362])
def test_smoothed_cross_entropy_gradient_is_that_of_mlx_cross_entropy(eps, classes):
    """The loss's own gradient (one fused expression) equals what autodiff gives for MLX's cross-entropy,
    eagerly and compiled, including through a mask over targets outside the classes (N/X frames' -1)."""
    rng = np.random.default_rng(1)
    logits = mx.array(4.0 * rng.standard_normal((2, 6, classes)).astype(np.float32))
    targets = mx.array(rng.integers(-1, classes, size=(2, 6)).astype(np.int32))
    weights = (targets >= 0).astype(mx.float32) * mx.array(rng.uniform(0.5, 2.0, (2, 6)).astype(np.float32))

    def ours(x):
        return mx.sum(smoothed_cross_entropy(x, targets, eps) * weights)

    def mlx_reference(x):
        safe = mx.maximum(targets, 0)
        return mx.sum(nn.losses.cross_entropy(x, safe, label_smoothing=eps) * weights)

    want_value, want_grad = mx.value_and_grad(mlx_reference)(logits)
    for fn in (mx.value_and_grad(ours), mx.compile(mx.value_and_grad(ours))):
        value, grad = fn(logits)
        assert value.item() == pytest.approx(want_value.item(), rel=1e-5)
        np.testing.assert_allclose(np.array(grad), np.array(want_grad), atol=2e-6)
    assert np.all(np.array(grad)[np.array(targets) < 0] == 0)


def test_works_inside_mx_compile_with_gradients():
    outputs, targets = random_case()
    mask = mx.ones(targets["root"].shape)
    loss_fn = ChordRecognitionLoss(class_weights=np.ones(32, np.float32))

    def f(logits):
        return loss_fn(logits, targets, mask)[0]

    eager_value, eager_grad = mx.value_and_grad(f)(outputs)
    compiled_value, compiled_grad = mx.compile(mx.value_and_grad(f))(outputs)
    assert compiled_value.item() == pytest.approx(eager_value.item(), rel=1e-6)
    for key in outputs:
        np.testing.assert_allclose(np.array(compiled_grad[key]), np.array(eager_grad[key]), atol=1e-6)
    # Undefined root frames receive no gradient.
    undefined = np.array(targets["root"]) < 0
    assert np.all(np.array(eager_grad["root"])[undefined] == 0)


def test_head_accuracies_count_only_defined_unpadded_frames():
    targets = {
        "chord_type": mx.array([[0, 2, 3, 2]]),
        "root": mx.array([[-1, 0, 5, 7]]),
        "bass": mx.array([[-1, 0, 5, 7]]),
    }

    def one_hot(idx, n):
        return mx.array(np.eye(n, dtype=np.float32)[np.array(idx)])[None]

    outputs = {
        "chord_type": one_hot([0, 2, 4, 4], 32),  # 2 of 4 right
        "root": one_hot([3, 0, 5, 1], 12),  # frame 0 undefined → 2 of 3 right
        "bass": one_hot([0, 1, 5, 7], 12),  # with the last frame padded: 1 of 2 right
    }
    mask = mx.array([[1, 1, 1, 0]])
    acc = {k: (v.item(), n.item()) for k, (v, n) in head_accuracies(outputs, targets).items()}
    assert acc["chord_type_acc"] == (pytest.approx(0.5), 4)
    assert acc["root_acc"] == (pytest.approx(2 / 3), 3)  # with the frames it counts: its weight
    masked = {k: (v.item(), n.item()) for k, (v, n) in head_accuracies(outputs, targets, mask).items()}
    assert masked["bass_note_acc"] == (pytest.approx(0.5), 2)
    assert masked["chord_type_acc"] == (pytest.approx(2 / 3), 3)


def test_joint_chord_head_loss_is_the_cross_entropy_of_the_type_and_root_pair():
    outputs, targets = random_case()
    rng = np.random.default_rng(3)
    outputs["chord"] = mx.array(rng.standard_normal((2, 6, 362)).astype(np.float32))
    mask = mx.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], dtype=mx.float32)
    total, parts = ChordRecognitionLoss(chord_weight=0.25, label_smoothing=0.1)(outputs, targets, mask)
    ct, root = np.array(targets["chord_type"]), np.array(targets["root"])
    # N is class 0, X class 1, type t on root r class 2 + (t - 2) * 12 + r.
    joint = np.where(ct < 2, ct, 2 + (ct - 2) * 12 + np.maximum(root, 0))
    ce = numpy_ce(np.array(outputs["chord"]), joint, 0.1)
    np.testing.assert_allclose(parts["chord_loss"].item(), ce[np.array(mask) > 0].mean(), rtol=1e-5)
    without = ChordRecognitionLoss(chord_weight=0.25, label_smoothing=0.1)(
        {k: v for k, v in outputs.items() if k != "chord"}, targets, mask
    )[0]
    np.testing.assert_allclose(total.item(), without.item() + 0.25 * parts["chord_loss"].item(), rtol=1e-6)


def test_joint_chord_head_leaves_out_frames_without_annotation():
    """A frame outside the annotated span (-1 in every target, mask 1: a window reaching past a partly
    annotated song's span) counts in no head, the joint chord head included: as if it were padding."""
    outputs, targets = random_case()
    rng = np.random.default_rng(4)
    outputs["chord"] = mx.array(rng.standard_normal((2, 6, 362)).astype(np.float32))
    unannotated = {}
    for key, value in targets.items():
        value = np.array(value)
        value[1, 4:] = -1
        unannotated[key] = mx.array(value)
    loss = ChordRecognitionLoss(chord_weight=1.0, label_smoothing=0.1)
    total, as_unannotated = loss(outputs, unannotated)
    padding = mx.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], dtype=mx.float32)
    padded_total, as_padding = loss(outputs, unannotated, padding)
    for name in ("chord_type_loss", "root_loss", "bass_note_loss", "chord_loss"):
        assert as_unannotated[name].item() == pytest.approx(as_padding[name].item(), rel=1e-6), name
    assert total.item() == pytest.approx(padded_total.item(), rel=1e-6)


def test_head_accuracies_weighted_by_their_counts_pool_batches_as_one_batch():
    # Root and bass count only frames with a defined target: an all-N batch counts none. Weighted by their
    # own counts (as the Trainer weighs a (value, weight) metric), batches pool to the accuracy over all
    # of their frames, however the N frames fall into batches (and ranks).
    (out_a, tgt_a), (out_b, tgt_b) = random_case(seed=1), random_case(seed=2)
    tgt_b["root"] = mx.full(tgt_b["root"].shape, -1)  # an all-N batch: no root, no bass
    tgt_b["bass"] = tgt_b["root"]
    both_out = {k: mx.concatenate([out_a[k], out_b[k]]) for k in out_a}
    both_tgt = {k: mx.concatenate([tgt_a[k], tgt_b[k]]) for k in tgt_a}
    one_batch = head_accuracies(both_out, both_tgt)
    a, b = head_accuracies(out_a, tgt_a), head_accuracies(out_b, tgt_b)
    assert b["root_acc"][1].item() == 0 and b["bass_note_acc"][1].item() == 0
    for name in ("chord_type_acc", "root_acc", "bass_note_acc"):
        (value_a, count_a), (value_b, count_b) = a[name], b[name]
        pooled = (value_a * count_a + value_b * count_b) / (count_a + count_b)
        assert pooled.item() == pytest.approx(one_batch[name][0].item(), rel=1e-6), name


def test_the_guides_bass_note_target_is_the_bass_heads():
    outputs, targets = random_case()[:2]
    loss = ChordRecognitionLoss()
    total, parts = loss(outputs, targets)
    guide = {"chord_type": targets["chord_type"], "root": targets["root"], "bass_note": targets["bass"]}
    guide_total, guide_parts = loss(outputs, guide)
    assert guide_total.item() == pytest.approx(total.item())
    assert guide_parts["bass_note_loss"].item() == pytest.approx(parts["bass_note_loss"].item())
    with pytest.raises(KeyError, match=r"targets lack 'bass' \(or 'bass_note'\)"):
        loss(outputs, {"chord_type": targets["chord_type"], "root": targets["root"]})


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_a_batch_of_only_zero_weight_classes_adds_no_loss_and_no_gradient(eps):
    """torch's idiom for leaving a class out, weight 0 (aug here), met a batch of aug frames only: with
    smoothing its ε/C term weighs every class, and over the 1e-12 floor of the target weights' sum the loss
    was 1.5e12 with gradients of 8e9 (one such batch wrecks AdamW's moments). It is 0, as `masked_mean`'s."""
    outputs, targets = random_case(seed=4)
    targets = dict(targets, chord_type=mx.full(targets["chord_type"].shape, 5, dtype=mx.int32))
    weights = np.ones(32, np.float32)
    weights[5] = 0.0
    loss_fn = ChordRecognitionLoss(label_smoothing=eps, class_weights=weights)

    def chord_type_loss(logits):
        return loss_fn(dict(outputs, chord_type=logits), targets)[1]["chord_type_loss"]

    value, grad = mx.value_and_grad(chord_type_loss)(outputs["chord_type"])
    assert value.item() == 0.0
    assert float(mx.abs(grad).max().item()) == 0.0


@pytest.mark.parametrize("eps", [0.0, 0.5, 0.999])
def test_smoothed_cross_entropy_at_edge_values_keeps_value_and_gradient(eps):
    """Logits far beyond exp's range (the row maximum is taken out first), smoothing near 1 and, without
    smoothing, classes masked with -inf: value and gradient stay those of the plain formula, in float64."""
    rng = np.random.default_rng(4)
    classes = 7
    for scale in (1.0, 1e3, 1e20):
        logits = (scale * rng.standard_normal((3, classes))).astype(np.float32)
        targets = rng.integers(0, classes, 3)
        if scale == 1.0 and eps == 0.0:
            logits[:, 4:] = -np.inf  # e.g. classes a decoder rules out; the targets are below 4
            targets = targets % 4
        z = logits.astype(np.float64)
        finite = np.isfinite(z)
        top = z.max(-1, keepdims=True)
        lse = top[..., 0] + np.log(np.where(finite, np.exp(np.where(finite, z, 0) - top), 0).sum(-1))
        smoothing = lse - np.where(finite, z, 0).mean(-1) if eps else 0.0
        want = (1 - eps) * (lse - z[np.arange(3), targets]) + eps * smoothing
        probs = np.where(finite, np.exp(np.where(finite, z, 0) - lse[:, None]), 0.0)
        want_grad = probs - (1 - eps) * np.eye(classes)[targets] - eps / classes

        def loss(x, y=mx.array(targets)):
            return mx.sum(smoothed_cross_entropy(x, y, eps))

        value, grad = mx.value_and_grad(loss)(mx.array(logits))
        assert value.item() == pytest.approx(want.sum(), rel=1e-5), scale
        np.testing.assert_allclose(np.array(grad), want_grad, atol=1e-6, err_msg=str(scale))
