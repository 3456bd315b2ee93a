"""`ChordTask` on padded windows (the recipe pads the last window of a song): the frame mask reaches the model,
the loss and the accuracies, so padding changes none of them."""

from audiotrain.chords.vocabulary import NUM_CHORD_TYPES, NUM_PITCH_CLASSES
from audiotrain.models.chord_model import ChordModelConfig
from audiotrain.recipes.chords.task import ChordTask

import mlx.core as mx
import numpy as np
import pytest

FRAMES, REAL = 12, 6  # row 1 of the batch: 6 real frames, then 6 of padding


def scores(task, batch):
    """compute_loss's loss and every metric, as floats (an accuracy's frames as `<name>_frames`)."""
    loss, metrics = task.compute_loss(batch)
    out = {"loss": loss.item()}
    for name, value in metrics.items():
        if isinstance(value, tuple):
            value, out[f"{name}_frames"] = value[0], value[1].item()
        out[name] = value.item()
    return out


def tiny_eval_task() -> ChordTask:
    """A one-block chord task over 24 bins, in eval mode (no dropout): the model these tests score."""
    config = ChordModelConfig(
        n_bins=24, bass_view_bins=0, context_frames=1, d_model=32, n_layers=1, n_heads=2, ff_dim=64, dropout=0
    )
    task = ChordTask(config, scheduler=None)
    task.eval()
    return task


def validated_beside_plain(tmp_path, make_variant) -> tuple[dict, dict]:
    """`trainer.validate`'s metrics of `tiny_eval_task()` and of `make_variant(its config)` given the same
    weights, on one random batch whose every frame is a chord with a root (each head's frames are the
    batch's): what a ChordTask or loss subclass changes in validation."""
    from audiotrain.train.trainer import Trainer

    rng = np.random.default_rng(0)
    mx.random.seed(0)
    plain = tiny_eval_task()
    variant = make_variant(plain.model.config)
    variant.update(plain.parameters())
    variant.eval()
    batch = {
        "features": mx.array(rng.normal(size=(2, FRAMES, 24)).astype(np.float32)),
        "chord_type": mx.array(rng.integers(2, NUM_CHORD_TYPES, (2, FRAMES))),
        "root": mx.array(rng.integers(0, NUM_PITCH_CLASSES, (2, FRAMES))),
        "bass": mx.array(rng.integers(0, NUM_PITCH_CLASSES, (2, FRAMES))),
    }

    def validated(module):
        trainer = Trainer(default_root_dir=tmp_path, logger=False, enable_checkpointing=False, compile=False)
        return trainer.validate(module, [batch], verbose=False)[0]

    return validated(plain), validated(variant)


def test_padded_frames_enter_neither_the_model_the_loss_nor_the_accuracies():
    rng = np.random.default_rng(0)
    mx.random.seed(0)
    task = tiny_eval_task()
    features = rng.normal(size=(2, FRAMES, 24)).astype(np.float32)
    targets = {
        "chord_type": rng.integers(0, NUM_CHORD_TYPES, (2, FRAMES)),
        "root": rng.integers(0, NUM_PITCH_CLASSES, (2, FRAMES)),
        "bass": rng.integers(0, NUM_PITCH_CLASSES, (2, FRAMES)),
    }
    mask = np.ones((2, FRAMES), np.float32)
    mask[1, REAL:] = 0

    def padded(garbage_scale, label):
        f = features.copy()
        f[1, REAL:] = garbage_scale * rng.normal(size=(FRAMES - REAL, 24))
        batch = {"features": mx.array(f), "mask": mx.array(mask)}
        for key, value in targets.items():
            value = value.copy()
            value[1, REAL:] = label
            batch[key] = mx.array(value, mx.int32)
        return scores(task, batch)

    one, other = padded(5.0, 5), padded(-3.0, 2)
    assert one == pytest.approx(other, rel=1e-5, abs=1e-6)

    def cut(row, frames):
        batch = {"features": mx.array(features[row : row + 1, :frames])}
        batch.update(
            {key: mx.array(value[row : row + 1, :frames], mx.int32) for key, value in targets.items()}
        )
        return scores(task, batch)

    # The batch's figures are those of its real frames: each row's alone, weighted by its frames.
    full, short = cut(0, FRAMES), cut(1, REAL)
    for name, value in one.items():
        if name.endswith("_frames"):
            assert value == full[name] + short[name] == FRAMES + REAL, name
        else:
            expected = (FRAMES * full[name] + REAL * short[name]) / (FRAMES + REAL)
            assert value == pytest.approx(expected, rel=1e-4, abs=1e-6), name


@pytest.mark.parametrize("masked", [True, False], ids=["padded_windows", "unmasked_batches"])
def test_validation_means_weigh_each_batch_by_its_real_frames(tmp_path, masked):
    """The Trainer weighs each validation batch by the task's batch_size: its real frames, so the last,
    mostly padded chunk of a song counts for its frames, not for a full window's; a batch without a mask
    counts all its frames (not its windows), so a 2-frame batch weighs 2/12 of a 12-frame one."""
    from audiotrain.train.trainer import Trainer

    rng = np.random.default_rng(1)
    mx.random.seed(1)
    task = tiny_eval_task()

    def batch(real_frames):
        frames = FRAMES if masked else real_frames
        out = {"features": mx.array(rng.normal(size=(1, frames, 24)).astype(np.float32))}
        if masked:
            mask = np.zeros((1, FRAMES), np.float32)
            mask[0, :real_frames] = 1
            out["mask"] = mx.array(mask)
        for key, classes in (("chord_type", NUM_CHORD_TYPES), ("root", 12), ("bass", 12)):
            out[key] = mx.array(rng.integers(0, classes, (1, frames)), mx.int32)
        return out

    full, short = batch(FRAMES), batch(2)
    losses = [task.compute_loss(b)[0].item() for b in (full, short)]
    trainer = Trainer(default_root_dir=tmp_path, logger=False, enable_checkpointing=False, compile=False)
    val_loss = trainer.validate(task, [full, short])[0]["val_loss"]
    assert val_loss == pytest.approx((FRAMES * losses[0] + 2 * losses[1]) / (FRAMES + 2), rel=1e-5)


def test_validation_head_losses_and_val_loss_do_not_depend_on_how_windows_fall_into_batches(tmp_path):
    """Each head's validation loss was weighted by its batch's frames: a window of N with one chord counted
    its root loss (a mean over that one frame) as much as a window of chords, so val_root_loss, and val_loss
    (what best and early stopping monitor), changed with the validation batch size, weights unchanged. Now
    each head's is its mean over the frames it counts, and val_loss the loss's weighted sum of those."""
    from audiotrain.train.trainer import Trainer

    rng = np.random.default_rng(0)
    mx.random.seed(0)
    task = tiny_eval_task()
    windows = []
    for w in range(4):
        chord_type, root, bass = (rng.integers(2, NUM_CHORD_TYPES, FRAMES), *rng.integers(0, 12, (2, FRAMES)))
        if w < 2:  # an intro: N but for its first frame
            chord_type[1:], root[1:], bass[1:] = 0, -1, -1
        features = rng.normal(size=(FRAMES, 24)).astype(np.float32)
        windows.append({"features": features, "chord_type": chord_type, "root": root, "bass": bass})

    def validated(batch_size):
        batches = [
            {k: mx.array(np.stack([w[k] for w in windows[i : i + batch_size]])) for k in windows[0]}
            for i in range(0, len(windows), batch_size)
        ]
        trainer = Trainer(default_root_dir=tmp_path, logger=False, enable_checkpointing=False)
        return trainer.validate(task, batches, verbose=False)[0]

    one_batch, in_pairs = validated(4), validated(2)
    for name in ("val_loss", "val_chord_type_loss", "val_root_loss", "val_bass_note_loss", "val_chord_loss"):
        assert in_pairs[name] == pytest.approx(one_batch[name], rel=1e-5), name
    parts = {k: one_batch[f"val_{k}_loss"] for k in ("chord_type", "root", "bass_note", "chord")}
    total = parts["chord_type"] + parts["root"] + 0.5 * parts["bass_note"] + parts["chord"]  # default weights
    assert one_batch["val_loss"] == pytest.approx(total, rel=1e-5)


@pytest.mark.parametrize("where", ["task", "loss"])
def test_a_subclass_that_adds_to_the_loss_keeps_its_term_in_val_loss(tmp_path, where):
    """A ChordTask (or ChordRecognitionLoss) subclass adding a term of its own to the loss (a regulariser)
    validated without it once val_loss became the loss function's sum of the head means: best and early
    stopping monitored a loss the module does not compute. Its val_loss is the mean of its totals again."""
    from audiotrain.models.chord_loss import ChordRecognitionLoss

    class RegularisedTask(ChordTask):
        def compute_loss(self, batch):
            loss, metrics = super().compute_loss(batch)
            return loss + 100.0, metrics

    class RegularisedLoss(ChordRecognitionLoss):
        def __call__(self, outputs, targets, mask=None):
            total, parts = super().__call__(outputs, targets, mask)
            return total + 100.0, parts

    def variant(config):
        if where == "task":
            return RegularisedTask(config, scheduler=None)
        return ChordTask(config, RegularisedLoss(), scheduler=None)

    ours, theirs = validated_beside_plain(tmp_path, variant)
    assert theirs["val_loss"] == pytest.approx(ours["val_loss"] + 100.0, rel=1e-5)


@pytest.mark.parametrize("loss", ["a part of its own", "a plain function"])
def test_a_loss_of_the_callers_with_other_parts_still_validates(tmp_path, loss):
    """ChordTask(loss=...) given a ChordRecognitionLoss subclass returning a part of its own, or a function
    of the loss's signature, trained but failed its first validation ('KeyError: entropy_loss', 'function'
    object has no attribute 'class_weights') once the head losses came with their frames in evaluation."""
    from audiotrain.models.chord_loss import ChordRecognitionLoss

    class WithEntropy(ChordRecognitionLoss):
        def __call__(self, outputs, targets, mask=None):
            total, parts = super().__call__(outputs, targets, mask)
            return total, {**parts, "entropy_loss": mx.mean(mx.logsumexp(outputs["chord_type"], axis=-1))}

    def plain_function(outputs, targets, mask=None):
        return ChordRecognitionLoss()(outputs, targets, mask)

    def variant(config):
        return ChordTask(config, WithEntropy() if loss == "a part of its own" else plain_function)

    ours, theirs = validated_beside_plain(tmp_path, variant)
    for name in ("val_loss", "val_root_loss", "val_chord_type_acc"):
        assert theirs[name] == pytest.approx(ours[name], rel=1e-5), name
    assert ("val_entropy_loss" in theirs) == (loss == "a part of its own")


def test_a_subclass_whose_loss_reads_a_head_loss_still_validates(tmp_path):
    """A ChordTask subclass weighing a head once more (`loss + 0.1 * metrics["root_loss"]`) trained and
    validated before the head losses came with their frames in evaluation; since then its first validation
    failed ("unsupported operand type(s) for *: 'float' and 'tuple'"). What super() returns to an override is
    its arrays, as in training: val_loss is the mean of its totals, the extra term in it."""

    class RootTwice(ChordTask):
        def compute_loss(self, batch):
            loss, metrics = super().compute_loss(batch)
            return loss + 0.1 * metrics["root_loss"], metrics

    ours, theirs = validated_beside_plain(tmp_path, lambda config: RootTwice(config, scheduler=None))
    assert theirs["val_loss"] == pytest.approx(ours["val_loss"] + 0.1 * ours["val_root_loss"], rel=1e-5)
    assert theirs["val_root_loss"] == pytest.approx(ours["val_root_loss"], rel=1e-5)


@pytest.mark.parametrize("masked", [True, False], ids=["with_mask", "features_only"])
def test_trainer_predict_gives_the_models_logits_of_chord_batches(tmp_path, masked):
    """`trainer.predict` on a ChordTask with the recipe's dict batches (song_loaders', or a song's features
    alone) gives each batch's head logits, as the model computes them with the batch's mask; TrainModule's
    default predict_step passed the whole dict to the model: "TypeError: ChordTask.predict_step ... failed
    (AttributeError: 'dict' object has no attribute 'ndim')"."""
    from audiotrain.train.trainer import Trainer

    rng = np.random.default_rng(2)
    mx.random.seed(2)
    task = tiny_eval_task()
    batch = {"features": mx.array(rng.normal(size=(2, FRAMES, 24)).astype(np.float32))}
    if masked:
        mask = np.ones((2, FRAMES), np.float32)
        mask[1, REAL:] = 0
        batch["mask"] = mx.array(mask)
    trainer = Trainer(default_root_dir=tmp_path, logger=False, enable_checkpointing=False)
    [out] = trainer.predict(task, [batch])
    expected = task.model(batch["features"], batch.get("mask"))
    assert sorted(out) == sorted(expected)
    for name, logits in expected.items():
        assert out[name].shape == logits.shape, name
        np.testing.assert_allclose(np.array(out[name]), np.array(logits), rtol=1e-5, atol=1e-5, err_msg=name)
