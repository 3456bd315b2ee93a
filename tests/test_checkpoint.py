"""Checkpoint folders: atomic writes, clear errors for bad folders, ModelCheckpoint and EarlyStopping."""

import json
import os

from audiotrain import Trainer
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.callbacks import EarlyStopping, ModelCheckpoint

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from tasks import TinyClassifier, make_batches, weights


def make_trainer(tmp_path, **kw):
    kw.setdefault("enable_progress_bar", False)
    kw.setdefault("compile", False)
    return Trainer(default_root_dir=tmp_path, **kw)


def trained(tmp_path, **kw):
    mx.random.seed(0)
    module = TinyClassifier()
    val = kw.pop("val", None)
    t = make_trainer(tmp_path, **kw)
    t.fit(module, make_batches(), val)
    return t, module


def test_default_checkpointing_writes_last_and_it_loads(tmp_path):
    t, module = trained(tmp_path, max_epochs=2)
    last = tmp_path / "checkpoints" / "last"
    assert sorted(p.name for p in last.iterdir()) == [
        "model.safetensors",
        "optimizer.safetensors",
        "step_state.safetensors",
        "trainer_state.json",
    ]
    state = json.loads((last / "trainer_state.json").read_text())
    assert state["progress"]["epoch"] == 2 and state["progress"]["global_step"] == 12
    assert len(state["history"]["rows"]) == 2
    fresh = TinyClassifier()
    out = make_trainer(tmp_path, max_epochs=1).validate(fresh, make_batches(32), ckpt_path=last)
    assert out == make_trainer(tmp_path, max_epochs=1).validate(module, make_batches(32))


def test_enable_checkpointing_false_writes_nothing(tmp_path):
    trained(tmp_path, max_epochs=1, enable_checkpointing=False)
    assert not (tmp_path / "checkpoints").exists()


def test_crash_during_swap_leaves_a_loadable_checkpoint(tmp_path, monkeypatch):
    t, module = trained(tmp_path, max_epochs=1)
    path = tmp_path / "manual"
    t.save_checkpoint(path)
    real_replace = os.replace
    calls = []

    def crash_on_second(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # old moved aside, new not yet in place
            raise OSError("simulated crash")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_second)
    with pytest.raises(OSError, match="simulated"):
        t.save_checkpoint(path)
    monkeypatch.setattr(os, "replace", real_replace)
    assert not path.exists()
    with pytest.warns(UserWarning, match="interrupted save"):
        t.validate(TinyClassifier(), make_batches(16), ckpt_path=path)
    # a crash while writing the temporary folder never touches the existing checkpoint
    monkeypatch.setattr(mx, "save_safetensors", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        t.save_checkpoint(tmp_path / "checkpoints" / "last")
    assert (tmp_path / "checkpoints" / "last" / "model.safetensors").exists()
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda p: (p / "optimizer.safetensors").unlink(), "missing optimizer.safetensors"),
        (lambda p: (p / "trainer_state.json").write_text("{not json"), "not valid JSON"),
        (
            lambda p: (p / "trainer_state.json").write_text('{"format": "lightning"}'),
            "not written by audiotrain",
        ),
        (lambda p: (p / "model.safetensors").write_bytes(b"garbage" * 10), "not a readable safetensors"),
    ],
)
def test_damaged_checkpoints_are_explained(tmp_path, damage, match):
    t, _ = trained(tmp_path, max_epochs=1)
    damage(tmp_path / "checkpoints" / "last")
    with pytest.raises(ckpt.CheckpointError, match=match):
        make_trainer(tmp_path, max_epochs=2).fit(
            TinyClassifier(), make_batches(), ckpt_path=tmp_path / "checkpoints" / "last"
        )


def test_foreign_model_lists_mismatched_tensors(tmp_path):
    trained(tmp_path, max_epochs=1)
    with pytest.raises(ckpt.CheckpointError, match=r"3 mis-shaped \(e.g. fc1.bias.*fc1.weight.*fc2.weight"):
        make_trainer(tmp_path, max_epochs=1).validate(
            TinyClassifier(hidden=5), make_batches(), ckpt_path=tmp_path / "checkpoints" / "last"
        )
    with pytest.raises(ckpt.CheckpointError, match="does not exist"):
        make_trainer(tmp_path, max_epochs=1).fit(
            TinyClassifier(), make_batches(), ckpt_path=tmp_path / "nope"
        )
    (tmp_path / "file").write_text("x")
    with pytest.raises(ckpt.CheckpointError, match="is a file"):
        make_trainer(tmp_path, max_epochs=1).load_checkpoint(tmp_path / "file")


def test_resume_after_finished_epochs_continues_history(tmp_path):
    t, _ = trained(tmp_path, max_epochs=2, val=make_batches(16))
    mx.random.seed(0)
    module = TinyClassifier()
    t2 = make_trainer(tmp_path, max_epochs=4)
    t2.load_checkpoint(tmp_path / "checkpoints" / "last")
    t2.fit(module, make_batches(), make_batches(16))
    assert t2.history["epoch"] == [0, 1, 2, 3]
    assert t2.history["train_loss"][:2] == t.history["train_loss"]
    assert t2.global_step == 24


def test_model_checkpoint_template_top_k_and_last(tmp_path):
    cb = ModelCheckpoint(
        dirpath=tmp_path / "ck",
        filename="model-{epoch:02d}-{val_loss:.3f}",
        monitor="val_loss",
        mode="min",
        save_top_k=2,
        save_last=True,
    )
    t, _ = trained(tmp_path, max_epochs=5, callbacks=[cb], val=make_batches(32))
    saved = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert len(saved) == 3 and "last" in saved
    losses = t.history["val_loss"]
    best_two = sorted(range(5), key=lambda e: losses[e])[:2]
    assert sorted(f"model-{e:02d}-{losses[e]:.3f}" for e in best_two) == sorted(
        s for s in saved if s != "last"
    )
    assert cb.best_model_score == pytest.approx(min(losses))


def test_model_checkpoint_mode_max_every_n_and_steps(tmp_path):
    cb = ModelCheckpoint(
        dirpath=tmp_path / "a", monitor="val_accuracy", mode="max", save_top_k=-1, every_n_epochs=2
    )
    trained(tmp_path, max_epochs=5, callbacks=[cb], val=make_batches(32))
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["epoch=1-step=12", "epoch=3-step=24"]
    cb = ModelCheckpoint(dirpath=tmp_path / "b", every_n_train_steps=4, save_top_k=-1)
    trained(tmp_path, max_epochs=2, callbacks=[cb])
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "epoch=0-step=4",
        "epoch=1-step=12",
        "epoch=1-step=8",
    ]


def test_model_checkpoint_without_val_loader(tmp_path):
    cb = ModelCheckpoint(dirpath=tmp_path / "c", monitor="train_loss", save_top_k=1)
    t, _ = trained(tmp_path, max_epochs=3, callbacks=[cb])
    (only,) = list((tmp_path / "c").iterdir())
    assert cb.best_model_score == pytest.approx(min(t.history["train_loss"]))
    assert only.name == cb.best_model_path.split("/")[-1]
    with pytest.raises(KeyError, match="pass a val_loader"):
        trained(
            tmp_path, max_epochs=1, callbacks=[ModelCheckpoint(dirpath=tmp_path / "d", monitor="val_loss")]
        )


def test_early_stopping(tmp_path):
    class Flat(TinyClassifier):
        def validation_step(self, batch):
            return mx.array(1.0), {}

    mx.random.seed(0)
    es = EarlyStopping(monitor="val_loss", patience=2, mode="min")
    t = make_trainer(tmp_path, max_epochs=20, callbacks=[es])
    t.fit(Flat(), make_batches(), make_batches(16))
    assert t.current_epoch == 3 and es.stopped_epoch == 2  # best at 0, no improvement at 1 and 2
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="up")


def test_weights_restored_exactly(tmp_path):
    t, module = trained(tmp_path, max_epochs=1)
    t.save_checkpoint(tmp_path / "x")
    other = TinyClassifier()
    make_trainer(tmp_path, max_epochs=1).validate(other, make_batches(16), ckpt_path=tmp_path / "x")
    a, b = weights(module), weights(other)
    assert all(np.array_equal(a[k], b[k]) for k in a)


class Inner(nn.Module):
    def __init__(self):
        super().__init__()
        self.front_dropout = nn.Dropout(0.1)
        self.blocks = [nn.Dropout(0.1), nn.Linear(8, 8)]

    def __call__(self, x):
        return self.blocks[1](self.blocks[0](self.front_dropout(x)))


class Nested(TinyClassifier):
    """Parameter-free layers nested in submodules and lists leave empty subtrees in the state trees."""

    def __init__(self):
        super().__init__(dropout=0.2)
        self.inner = Inner()

    def __call__(self, x):
        return super().__call__(self.inner(x))


def test_resume_keeps_empty_subtrees_of_parameter_free_layers(tmp_path):
    def run(max_steps, ckpt_path=None, save=None):
        mx.random.seed(0)
        module = Nested()
        t = make_trainer(
            tmp_path, max_steps=max_steps, accumulate_grad_batches=2, enable_checkpointing=False, compile=True
        )
        t.fit(module, make_batches(), ckpt_path=ckpt_path)
        if save:
            t.save_checkpoint(save)
        return weights(module)

    straight = run(5)
    run(2, save=tmp_path / "k")
    resumed = run(5, ckpt_path=tmp_path / "k")
    for k in straight:
        np.testing.assert_array_equal(straight[k], resumed[k], err_msg=k)
