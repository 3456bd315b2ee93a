"""Checkpoints on disk from the user's side: what a save never replaces, a folder two fits share, a save that
fails, hand-edited checkpoints, leftovers of killed saves, and callback state that JSON cannot keep."""

import json
import shutil

from audiotrain import Trainer
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.callbacks import Callback, ModelCheckpoint

import mlx.core as mx
import pytest
from tasks import TinyClassifier, make_batches


class Scores(Callback):
    """Logs `score` for each epoch before the callbacks after it in the list see the epoch end."""

    def __init__(self, scores):
        self.scores = scores

    def on_train_epoch_end(self, trainer, module):
        trainer.callback_metrics["score"] = self.scores[trainer.current_epoch]


def fit(root, callbacks, ckpt_path=None, **kw):
    """3 optimizer steps per epoch (48 samples, batches of 16)."""
    mx.random.seed(0)
    kw.setdefault("max_epochs", 2)
    t = Trainer(default_root_dir=root, enable_progress_bar=False, compile=False, callbacks=callbacks, **kw)
    t.fit(TinyClassifier(), make_batches(48), ckpt_path=ckpt_path)
    return t


def names(folder):
    return sorted(p.name for p in folder.iterdir())


def make_file(path, text="mine"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# ------------------------------------------------------------------ a user's files in dirpath stay


@pytest.mark.parametrize(
    "users, kwargs",
    [
        ("last/notes.txt", {"save_last": True}),  # a folder named `last` that is no checkpoint
        ("last", {"save_last": True}),  # a plain file named `last`
        (
            "best/config.json",
            {"filename": "best", "auto_insert_metric_name": False},
        ),  # e.g. an exported model
        ("interrupted/notes.txt", {}),  # where the Trainer saves after a Ctrl-C
    ],
)
def test_a_users_entry_under_a_name_known_at_fit_start_is_refused_before_training(tmp_path, users, kwargs):
    ck = tmp_path / "ck"
    make_file(ck / users)
    steps = []
    tracker = Callback()
    tracker.on_train_batch_end = lambda *a: steps.append(1)
    mc = ModelCheckpoint(dirpath=ck, **kwargs)
    with pytest.raises(
        ckpt.NameTakenError, match=rf"ck/{users.split('/')[0]} is a (file|folder that is not a che)"
    ):
        fit(tmp_path, [tracker, mc])
    assert steps == [] and names(ck) == [users.split("/")[0]]
    assert (ck / users).read_text() == "mine"


def test_a_users_folder_under_a_top_k_name_is_kept_and_the_checkpoint_saved_beside_it(tmp_path):
    """The name depends on the epoch, so it is known only at the save: it goes to `-v1` with a warning, as
    Lightning saves beside a file it did not write, and rotating it out never touches the user's folder."""
    ck = tmp_path / "ck"
    make_file(ck / "epoch=0-step=3" / "notes.txt")
    mc = ModelCheckpoint(dirpath=ck, monitor="score", save_top_k=1)
    with pytest.warns(
        UserWarning, match=r"epoch=0-step=3 is a folder that is not a checkpoint.*as epoch=0-step=3-v1"
    ):
        fit(tmp_path, [Scores([2.0, 1.0]), mc])
    assert names(ck) == ["epoch=0-step=3", "epoch=1-step=6"]  # -v1 was the best, then rotated out
    assert (ck / "epoch=0-step=3" / "notes.txt").read_text() == "mine"
    assert mc.best_model_path == str(ck / "epoch=1-step=6")


def test_a_save_never_replaces_a_file_or_folder_it_did_not_write(tmp_path):
    """The last line of defence, for a name no callback checked (Trainer.save_checkpoint, a file made mid-run)."""
    t = fit(tmp_path, [], max_epochs=1)
    make_file(tmp_path / "export" / "config.json")
    with pytest.raises(ckpt.NameTakenError, match=r"export: it is a folder that is not a checkpoint"):
        t.save_checkpoint(tmp_path / "export")
    assert names(tmp_path / "export") == ["config.json"] and names(tmp_path) == sorted(
        ["checkpoints", "export"]
    )
    t.save_checkpoint(tmp_path / "mine")  # a checkpoint folder is replaced as before
    t.save_checkpoint(tmp_path / "mine")
    assert ckpt.is_checkpoint_folder(tmp_path / "mine")


def test_a_users_backup_named_like_a_swap_leftover_survives_the_heal(tmp_path):
    """`cp -r ck/last ck/last.prev` before resuming: the heal at fit start removed it (the swap's own backup
    had that name). The Trainer's leftovers are hidden and marked now, so nothing else is taken for one."""
    ck = tmp_path / "ck"
    fit(tmp_path, [ModelCheckpoint(dirpath=ck, save_last=True, save_top_k=0)], max_epochs=1)
    shutil.copytree(ck / "last", ck / "last.prev")
    shutil.copytree(ck / "last", ck / ".last.tmp-mine")
    fit(tmp_path, [ModelCheckpoint(dirpath=ck, save_last=True, save_top_k=0)], ckpt_path=ck / "last")
    assert names(ck) == [".last.tmp-mine", "last", "last.prev"]
    assert json.loads((ck / "last.prev" / ckpt.STATE_FILE).read_text())["progress"]["global_step"] == 3
