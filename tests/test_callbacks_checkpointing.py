"""ModelCheckpoint and EarlyStopping from the user's side: resume with several callbacks, name clashes,
`last` at the end of training, bad folders, and EarlyStopping's min_delta."""

import json
import warnings
from pathlib import Path

from audiotrain import Trainer
from audiotrain.train.callbacks import Callback, Checkpoint, EarlyStopping, ModelCheckpoint, ProgressBar
from audiotrain.train.checkpoint import NameTakenError

import mlx.core as mx
import numpy as np
import pytest
from tasks import RecordingLogger, TinyClassifier, make_batches, weights


class Scores(Callback):
    """Sets `name` (`score`) for each epoch before the callbacks after it in the list see the epoch end."""

    def __init__(self, scores, name="score"):
        self.scores, self.name = scores, name

    def on_train_epoch_end(self, trainer, module):
        trainer.callback_metrics[self.name] = self.scores[trainer.current_epoch]


def fit(tmp_path, callbacks, ckpt_path=None, val=True, n=48, **kw):
    """3 optimizer steps per epoch (48 samples, batches of 16)."""
    mx.random.seed(0)
    kw.setdefault("max_epochs", 2)
    t = Trainer(
        default_root_dir=tmp_path, enable_progress_bar=False, compile=False, callbacks=callbacks, **kw
    )
    t.fit(TinyClassifier(), make_batches(n), make_batches(16, seed=1) if val else None, ckpt_path=ckpt_path)
    return t


def names(folder):
    return sorted(p.name for p in folder.iterdir())


def saved_step(folder):
    return json.loads((folder / "trainer_state.json").read_text())["progress"]["global_step"]


# ------------------------------------------------------------------ resume with two callbacks (data loss)


def two_folders(tmp_path):
    a = ModelCheckpoint(dirpath=tmp_path / "A", monitor="val_loss", save_top_k=1, save_last=True)
    b = ModelCheckpoint(dirpath=tmp_path / "B", monitor="val_loss", save_top_k=-1)
    return [a, b]


def test_resume_with_two_checkpoint_callbacks_keeps_each_ones_folder(tmp_path):
    fit(tmp_path, two_folders(tmp_path), max_epochs=2)
    a, b = two_folders(tmp_path)
    t = fit(tmp_path, [a, b], ckpt_path=tmp_path / "A" / "last", max_epochs=4)
    assert names(tmp_path / "B") == ["epoch=0-step=3", "epoch=1-step=6", "epoch=2-step=9", "epoch=3-step=12"]
    losses = t.history["val_loss"]
    best = int(np.argmin(losses))
    assert names(tmp_path / "A") == sorted([f"epoch={best}-step={3 * (best + 1)}", "last"])
    assert a.best_model_score == pytest.approx(min(losses)) and a.best_model_path.startswith(
        str(tmp_path / "A")
    )


class KeepsArrays(Callback):
    """Keeps `table` in the checkpoint's callbacks.safetensors under its own `state_key`."""

    def __init__(self, key, value):
        self.key, self.table, self.got = key, mx.full((2,), value), None

    @property
    def state_key(self):
        return self.key

    def state_dict(self):
        return {"kept": True}

    def state_arrays(self):
        return {"table": self.table}

    def load_state_arrays(self, arrays):
        self.got = {name: np.array(a).tolist() for name, a in arrays.items()}


def test_arrays_of_a_state_key_that_begins_with_another_go_back_to_their_own_callback(tmp_path):
    # Saved as "<state_key>/<name>": "avg/fast/table" is "avg/fast"'s table, not "avg"'s "fast/table".
    fit(tmp_path, [KeepsArrays("avg", 1.0), KeepsArrays("avg/fast", 2.0)], max_epochs=1)
    slow, fast = KeepsArrays("avg", 0.0), KeepsArrays("avg/fast", 0.0)
    fit(tmp_path, [slow, fast], ckpt_path=tmp_path / "checkpoints" / "last", max_epochs=2)
    assert slow.got == {"table": [1.0, 1.0]} and fast.got == {"table": [2.0, 2.0]}


def test_a_moved_dirpath_is_not_restored_and_the_old_folder_is_left_alone(tmp_path):
    old = ModelCheckpoint(dirpath=tmp_path / "old", monitor="val_loss", save_top_k=1, save_last=True)
    fit(tmp_path, [old], max_epochs=2)
    before = names(tmp_path / "old")
    new = ModelCheckpoint(dirpath=tmp_path / "new", monitor="val_loss", save_top_k=1)
    with pytest.warns(
        UserWarning,
        match=r"saved to .*old, this one saves to .*new: it starts its own .*in .*old are left as they are",
    ):
        fit(tmp_path, [new], ckpt_path=tmp_path / "old" / "last", max_epochs=3)
    assert names(tmp_path / "old") == before
    assert names(tmp_path / "new") == ["epoch=2-step=9"] and new.best_k_models == {
        str(tmp_path / "new" / "epoch=2-step=9"): pytest.approx(new.best_model_score)
    }


def test_a_moved_dirpath_is_warned_about_once_per_job_from_rank_0(tmp_path, monkeypatch):
    """Resuming into a new folder under data parallel (the recipes' default 2 processes) printed the
    warning once per process; every rank restores the same state, and rank 0 alone saves."""
    from audiotrain.distributed import collectives

    class Rank:  # stands in for mx.distributed's group
        def __init__(self, rank):
            self._rank = rank

        def rank(self):
            return self._rank

        def size(self):
            return 2

    state = {"dirpath": str(tmp_path / "old"), "best_k_models": {}, "best_model_path": ""}
    warned = []
    for rank in (0, 1):
        monkeypatch.setattr(collectives, "_GROUP", Rank(rank))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ModelCheckpoint(dirpath=tmp_path / "new", monitor="val_loss").load_state_dict(state)
        warned.append([str(w.message) for w in caught if "starts its own best_k_models" in str(w.message)])
    assert [len(messages) for messages in warned] == [1, 0]


def test_a_moved_run_folder_resumed_from_inside_keeps_its_best_checkpoint(tmp_path):
    """`mv run moved` (or rsync) then resuming from `moved/ck/last`: the checkpoints the state tracked are
    found in the new folder under their names, so a worse epoch does not replace `best` (a fixed name, as
    the recipes use) and the old top-k is still pruned when a better one comes."""

    def callbacks(root, scores):
        best = ModelCheckpoint(root / "ck", filename="best", monitor="score", save_top_k=1, save_last=True)
        return [Scores(scores), best]

    fit(tmp_path / "run", callbacks(tmp_path / "run", [0.5, 0.2]), val=False, max_epochs=2)
    (tmp_path / "run").rename(tmp_path / "moved")
    moved = tmp_path / "moved"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = fit(
            moved,
            callbacks(moved, [0.5, 0.2, 0.9, 0.8]),
            ckpt_path=moved / "ck" / "last",
            val=False,
            max_epochs=4,
        )
    assert not [w for w in caught if "ModelCheckpoint" in str(w.message)]  # nothing to warn about
    checkpoint = t.callbacks[-1]
    assert saved_step(moved / "ck" / "best") == 6  # epoch 2 (score 0.2), not epoch 3 or 4
    assert checkpoint.best_model_path == str(moved / "ck" / "best")
    assert checkpoint.best_model_score == pytest.approx(0.2)
    assert names(moved / "ck") == ["best", "last"]


def sibling_folders(root):
    """A run folder as long runs keep one: the best and `last` in `ckpt/`, and a checkpoint every 3 steps
    in the sibling `steps/` (the newest 2 kept)."""
    best = ModelCheckpoint(root / "ckpt", monitor="val_loss", save_top_k=1, save_last=True)
    every = ModelCheckpoint(root / "steps", every_n_train_steps=3, save_top_k=2)
    return [best, every]


def test_a_moved_run_folder_with_a_sibling_checkpoint_folder_resumes_as_if_unmoved(tmp_path):
    """`mv run moved` then `fit(ckpt_path=moved/ckpt/last)` was refused: the `steps/` callback's state names
    the old folder, and its checkpoints were taken for another run's. Its state is the run's, moved with it
    (`steps/` lies beside `ckpt/` as before): its checkpoints are still tracked and pruned, and training goes
    on as a resume of the folder unmoved does."""
    import shutil

    for name in ("unmoved", "run"):
        fit(tmp_path / name, sibling_folders(tmp_path / name), max_epochs=2)
    shutil.move(tmp_path / "run", tmp_path / "moved")
    results = {}
    for name in ("unmoved", "moved"):
        root = tmp_path / name
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t = fit(root, sibling_folders(root), ckpt_path=root / "ckpt" / "last", max_epochs=4)
        assert not [w for w in caught if "ModelCheckpoint" in str(w.message)], name
        # The newest two of steps 3, 6, 9 and 12: the two restored as tracked were pruned.
        assert names(root / "steps") == ["epoch=2-step=9", "epoch=3-step=12"], name
        assert t.callbacks[-1].best_model_path == str(root / "steps" / "epoch=3-step=12")
        results[name] = (weights(t.module), t.history["val_loss"], t.callbacks[-2].best_model_score)
    assert results["moved"][1:] == results["unmoved"][1:]
    for key, value in results["unmoved"][0].items():
        np.testing.assert_array_equal(results["moved"][0][key], value)


def test_a_copied_run_folder_with_a_sibling_checkpoint_folder_resumes_and_leaves_the_original(tmp_path):
    """`cp -a run copy` (the original stays) and resuming `copy/ckpt/last`: the copy's `steps/` go on as
    that run's; the original's checkpoints are neither tracked nor removed."""
    import shutil

    fit(tmp_path / "run", sibling_folders(tmp_path / "run"), max_epochs=2)
    shutil.copytree(tmp_path / "run", tmp_path / "copy")
    copy = tmp_path / "copy"
    fit(copy, sibling_folders(copy), ckpt_path=copy / "ckpt" / "last", max_epochs=4)
    assert names(copy / "steps") == ["epoch=2-step=9", "epoch=3-step=12"]
    assert names(tmp_path / "run" / "steps") == ["epoch=0-step=3", "epoch=1-step=6"]


def test_a_sibling_folder_elsewhere_than_before_is_refused_naming_the_folder_its_state_was_saved_for(
    tmp_path,
):
    """The run moved, but `steps/` is given another place than beside `ckpt/`, and holds an earlier run's
    checkpoints: refused, and the message says the resumed checkpoint's state of this callback was saved for
    the old `steps/` (where the moved run's ones are now), not that the checkpoint is another run's."""
    import shutil

    fit(tmp_path / "run", sibling_folders(tmp_path / "run"), max_epochs=2)
    fit(tmp_path / "other", sibling_folders(tmp_path / "other"), max_epochs=2)
    shutil.move(tmp_path / "run", tmp_path / "moved")
    best, _ = sibling_folders(tmp_path / "moved")
    every = ModelCheckpoint(tmp_path / "other" / "steps", every_n_train_steps=3, save_top_k=2)
    with pytest.warns(UserWarning, match="saved to .*run.steps"), pytest.raises(FileExistsError) as refused:
        fit(tmp_path, [best, every], ckpt_path=tmp_path / "moved" / "ckpt" / "last", max_epochs=4)
    message = str(refused.value)
    assert f"this ModelCheckpoint's state in it was saved for {tmp_path / 'run' / 'steps'}" in message
    assert f"save to {tmp_path / 'moved' / 'steps'}" in message
    assert "a checkpoint of another run" not in message


def test_a_moved_default_root_resumed_from_inside_goes_on_in_its_folder(tmp_path):
    fit(tmp_path / "run", [Scores([0.5, 0.2]), ModelCheckpoint(monitor="score", save_last=True)], val=False)
    (tmp_path / "run").rename(tmp_path / "moved")
    moved = tmp_path / "moved" / "checkpoints"
    callbacks = [Scores([0.5, 0.2, 0.9]), ModelCheckpoint(monitor="score", save_last=True)]
    t = fit(tmp_path / "moved", callbacks, ckpt_path=moved / "last", val=False, max_epochs=3)
    assert t.callbacks[-1].dirpath == moved and names(moved) == ["epoch=1-step=6", "last"]
    assert t.callbacks[-1].best_model_score == pytest.approx(0.2)


def test_a_resume_from_another_folder_says_the_old_one_is_gone(tmp_path):
    cb = ModelCheckpoint(dirpath=tmp_path / "old", monitor="val_loss", save_last=True)
    fit(tmp_path, [cb])
    (tmp_path / "old").rename(tmp_path / "elsewhere")
    new = ModelCheckpoint(dirpath=tmp_path / "new", monitor="val_loss")
    with pytest.warns(
        UserWarning,
        match=r"old no longer exists; the resumed checkpoint lies in .*elsewhere: to keep its best checkpoints, "
        r"save to that folder",
    ) as caught:
        fit(tmp_path, [new], ckpt_path=tmp_path / "elsewhere" / "last", max_epochs=3)
    # Not the advice to resume from inside the new, empty folder, which has no checkpoint to resume.
    assert not [w for w in caught if "resume from a checkpoint inside" in str(w.message)]


def test_restored_paths_outside_dirpath_are_never_deleted(tmp_path):
    outside = tmp_path / "elsewhere" / "precious"
    outside.mkdir(parents=True)
    cb = ModelCheckpoint(dirpath=tmp_path / "ck", save_top_k=1)
    cb.load_state_dict({"dirpath": str(tmp_path / "ck"), "best_k_models": {str(outside): None}})
    assert cb.best_k_models == {}
    fit(tmp_path, [cb], val=False, max_epochs=2)
    assert outside.is_dir() and names(tmp_path / "ck") == ["epoch=1-step=6"]
    # Nor tracked: a monitored callback (whose best_k_models shows what it tracks) ranks none of them.
    ranked = ModelCheckpoint(dirpath=tmp_path / "ranked", monitor="val_loss")
    ranked.load_state_dict(
        {
            "dirpath": str(tmp_path / "ranked"),
            "best_k_models": {str(outside): 0.1},
            "best_model_path": str(outside),
            "best_model_score": 0.1,
        }
    )
    assert ranked.best_k_models == {} and ranked.best_model_path == "" and ranked.best_model_score is None


def test_two_callbacks_whose_states_would_collide_are_refused(tmp_path):
    same = dict(dirpath=tmp_path / "ck", monitor="val_loss")
    with pytest.raises(ValueError, match="same monitor, mode, frequency and filename"):
        fit(tmp_path, [ModelCheckpoint(**same), ModelCheckpoint(**same, save_top_k=-1)])


class Count(Callback):
    """A stateful callback whose instances differ by a setting."""

    def __init__(self, every: int, key: str | None = None):
        self.every, self.n, self.key = every, 0, key

    @property
    def state_key(self) -> str:
        return self.key or super().state_key

    def state_dict(self):
        return {"n": self.n}

    def load_state_dict(self, state):
        self.n = state["n"]


def test_two_stateful_callbacks_sharing_a_state_key_are_refused(tmp_path):
    with pytest.raises(
        ValueError, match=r"more than one stateful callback of type Count.*distinct state_key"
    ):
        fit(tmp_path, [Count(1), Count(4)])
    fit(tmp_path / "keyed", [Count(1, key="Count[1]"), Count(4, key="Count[4]")])  # distinct keys: fine
    fit(tmp_path / "two", [ModelCheckpoint(monitor="val_loss"), ModelCheckpoint(every_n_train_steps=2)])


def test_checkpoints_saved_under_the_old_state_key_still_resume(tmp_path):
    cb = ModelCheckpoint(dirpath=tmp_path / "ck", monitor="val_loss", save_top_k=1, save_last=True)
    fit(tmp_path, [cb], max_epochs=2)
    state_file = tmp_path / "ck" / "last" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["callbacks"] = {
        "ModelCheckpoint[val_loss,min,epoch={epoch}-step={step}]": state["callbacks"][cb.state_key]
    }
    state_file.write_text(json.dumps(state))
    resumed = ModelCheckpoint(dirpath=tmp_path / "ck", monitor="val_loss", save_top_k=1, save_last=True)
    fit(tmp_path, [resumed], ckpt_path=tmp_path / "ck" / "last", max_epochs=4)
    assert len(names(tmp_path / "ck")) == 2  # the best one and last: the first run's best was pruned


# ------------------------------------------------------------------ name clashes


def test_a_fixed_filename_gets_version_suffixes_instead_of_overwriting_the_best(tmp_path):
    cb = ModelCheckpoint(dirpath=tmp_path / "ck", filename="model", monitor="score", save_top_k=2)
    fit(tmp_path, [Scores([0.1, 0.9, 0.5]), cb], val=False, max_epochs=3)
    ck = tmp_path / "ck"
    assert names(ck) == ["model", "model-v1"]
    assert saved_step(ck / "model") == 3  # epoch 0, score 0.1: kept
    assert saved_step(ck / "model-v1") == 9  # epoch 2 (0.5) replaced epoch 1 (0.9) under its name
    assert cb.best_model_score == 0.1 and cb.best_model_path == str(ck / "model")
    assert cb.best_k_models == {str(ck / "model"): 0.1, str(ck / "model-v1"): 0.5}


def test_a_fixed_filename_with_top_1_keeps_reusing_its_name(tmp_path):
    cb = ModelCheckpoint(dirpath=tmp_path / "ck", filename="best", monitor="score", save_top_k=1)
    fit(tmp_path, [Scores([0.5, 0.4, 0.6, 0.3]), cb], val=False, max_epochs=4)
    assert names(tmp_path / "ck") == ["best"] and saved_step(tmp_path / "ck" / "best") == 12


def test_a_filename_named_last_does_not_collide_with_last(tmp_path):
    cb = ModelCheckpoint(dirpath=tmp_path / "ck", filename="last", save_top_k=-1, save_last=True)
    fit(tmp_path, [cb], val=False, max_epochs=2)
    assert names(tmp_path / "ck") == ["last", "last-v1", "last-v2"]
    assert saved_step(tmp_path / "ck" / "last-v1") == 3 and saved_step(tmp_path / "ck" / "last") == 6


def test_callbacks_sharing_a_folder_do_not_delete_each_others_checkpoints(tmp_path):
    best = ModelCheckpoint(dirpath=tmp_path / "ck", monitor="score", save_top_k=1)
    every = ModelCheckpoint(dirpath=tmp_path / "ck", save_top_k=-1, every_n_epochs=1)
    fit(tmp_path, [Scores([0.5, 0.4, 0.6]), best, every], val=False, max_epochs=3)
    assert every.best_k_models == {}  # (no monitor: nothing ranked, as in Lightning)
    assert every.best_model_path == str(tmp_path / "ck" / "epoch=2-step=9")  # its newest
    assert list(best.best_k_models) == [str(tmp_path / "ck" / "epoch=1-step=6")]
    assert names(tmp_path / "ck") == [
        "epoch=0-step=3-v1",
        "epoch=1-step=6",
        "epoch=1-step=6-v1",
        "epoch=2-step=9",
    ]


# ------------------------------------------------------------------ `last` at the end of training


def test_last_holds_the_final_step_when_saves_are_every_n_steps(tmp_path):
    cb = ModelCheckpoint(dirpath=tmp_path / "ck", every_n_train_steps=3, save_last=True)
    fit(tmp_path, [cb], val=False, n=160, max_epochs=None, max_steps=8)
    assert names(tmp_path / "ck") == ["epoch=0-step=6", "last"]
    assert saved_step(tmp_path / "ck" / "last") == 8


def test_last_is_not_rewritten_when_the_final_step_was_just_saved(tmp_path):
    writes = []

    class Counting(ModelCheckpoint):
        def _save_last(self, trainer):
            writes.append(trainer.global_step)
            super()._save_last(trainer)

    fit(tmp_path, [Counting(dirpath=tmp_path / "ck", save_last=True)], val=False, max_epochs=2)
    assert writes == [3, 6]


# ------------------------------------------------------------------ bad folders


def test_a_fresh_fit_refuses_a_given_dirpath_that_holds_an_earlier_runs_checkpoints(tmp_path):
    folder = tmp_path / "ckpts"

    def callback(**kw):
        return ModelCheckpoint(dirpath=folder, monitor="val_loss", save_top_k=1, save_last=True, **kw)

    fit(tmp_path, [callback()])
    before = {name: (folder / name / "model.safetensors").read_bytes() for name in names(folder)}
    recorder = RecordingLogger()
    with pytest.raises(
        FileExistsError, match=r"ckpts'\) already holds checkpoints of an earlier run \(epoch="
    ):
        fit(tmp_path, [callback()], logger=recorder)
    assert {name: (folder / name / "model.safetensors").read_bytes() for name in names(folder)} == before
    assert recorder.hparams == [] and recorder.metrics == []  # refused before anything was logged
    fit(tmp_path, [callback()], ckpt_path=folder / "last", max_epochs=3)  # continuing that run is not refused
    fit(tmp_path, [callback(overwrite=True)])  # nor is a run told to save over it


def every_epoch(folder, **kw):
    return ModelCheckpoint(dirpath=folder, monitor="val_loss", save_top_k=-1, save_last=True, **kw)


def contents(folder):
    return {name: (folder / name / "model.safetensors").read_bytes() for name in names(folder)}


def test_resuming_another_runs_checkpoint_into_a_dirpath_holding_a_run_is_refused(tmp_path):
    """Resuming run B's checkpoint with run A's folder as dirpath does not continue run A: refused as a
    fresh fit into A's folder is (it replaced A's `epoch=1-step=6` and `last`)."""
    fit(tmp_path, [every_epoch(tmp_path / "A")], max_epochs=2)
    fit(tmp_path, [every_epoch(tmp_path / "B")], max_epochs=1)
    before = contents(tmp_path / "A")
    recorder = RecordingLogger()
    with pytest.raises(FileExistsError, match=r"A'\) already holds checkpoints of an earlier run.*B/last"):
        fit(tmp_path, [every_epoch(tmp_path / "A")], ckpt_path=tmp_path / "B" / "last", logger=recorder)
    assert contents(tmp_path / "A") == before
    assert recorder.hparams == [] and recorder.metrics == []  # refused before anything was logged
    # The overwrite option the refusal names lets it save there.
    fit(tmp_path, [every_epoch(tmp_path / "A", overwrite=True)], ckpt_path=tmp_path / "B" / "last")
    assert saved_step(tmp_path / "A" / "last") == 6


def test_resuming_an_older_checkpoint_keeps_the_checkpoints_saved_after_it(tmp_path):
    """As in Lightning, a name the resumed run reaches again is saved with a version suffix; only `last`,
    the newest of the run that goes on, is replaced. A warning says so once."""
    folder = tmp_path / "ck"
    fit(tmp_path, [every_epoch(folder)], max_epochs=3)
    before = contents(folder)
    with pytest.warns(
        UserWarning, match=r"saved after epoch=0-step=3.*epoch=1-step=6, epoch=2-step=9.*-v1"
    ) as w:
        fit(tmp_path, [every_epoch(folder)], ckpt_path=folder / "epoch=0-step=3", max_epochs=2)
    assert sum("saved after" in str(x.message) for x in w) == 1
    assert "`last` is replaced" in next(str(x.message) for x in w if "saved after" in str(x.message))
    assert names(folder) == [
        "epoch=0-step=3",
        "epoch=1-step=6",
        "epoch=1-step=6-v1",
        "epoch=2-step=9",
        "last",
    ]
    after = contents(folder)
    assert {name: after[name] for name in before if name != "last"} == {
        name: data for name, data in before.items() if name != "last"
    }
    assert saved_step(folder / "last") == 6 and saved_step(folder / "epoch=1-step=6-v1") == 6


def test_the_checkpoint_a_fit_resumed_from_is_not_deleted_when_it_leaves_the_top_k(tmp_path):
    """`fit(ckpt_path=".../epoch=1-step=6")` with the default `ModelCheckpoint()` (top 1) deleted that
    checkpoint at the resumed fit's first save. Lightning 2.6.6 keeps it (`_should_remove_checkpoint`): the
    same fit there (2 epochs, then resumed to 4) leaves epoch=1-step=8 and epoch=3-step=16 at 4 steps an
    epoch, no longer tracked (best_k_models {} without a monitor; with monitor="val_loss", save_top_k=1,
    save_last=True: epoch=1-step=8, epoch=3-step=16 and last on disk, best_k_models only epoch=3-step=16)."""
    folder = tmp_path / "ck"
    fit(tmp_path, [ModelCheckpoint(dirpath=folder)], max_epochs=2)
    assert names(folder) == ["epoch=1-step=6"]
    t = fit(tmp_path, [ModelCheckpoint(dirpath=folder)], ckpt_path=folder / "epoch=1-step=6", max_epochs=4)
    assert names(folder) == ["epoch=1-step=6", "epoch=3-step=12"]
    assert saved_step(folder / "epoch=1-step=6") == 6
    assert t.checkpoint_callback.best_model_path == str(folder / "epoch=3-step=12")
    # Monitored: it leaves best_k_models for a better score, and stays on disk.
    scores = [0.5, 0.3, 0.4, 0.2]
    folder = tmp_path / "mon"

    def monitored():
        return [
            Scores(scores),
            ModelCheckpoint(dirpath=folder, monitor="score", save_top_k=1, save_last=True),
        ]

    fit(tmp_path, monitored(), max_epochs=2)
    t = fit(tmp_path, monitored(), ckpt_path=folder / "epoch=1-step=6", max_epochs=4)
    assert names(folder) == ["epoch=1-step=6", "epoch=3-step=12", "last"]
    assert dict(t.checkpoint_callback.best_k_models) == {str(folder / "epoch=3-step=12"): 0.2}


def test_ckpt_path_best_in_a_new_trainer_names_the_runs_best_in_its_folder(tmp_path):
    """A new process's fit(ckpt_path="best") after a run that monitored a metric into `ck` said
    "best_model_path is empty (nothing saved yet, and none is on disk in ck)", though ck held the run's
    checkpoints. It is still refused (Lightning 2.6.6 refuses it: "`.fit(ckpt_path="best")` is set but
    `ModelCheckpoint` is not configured to save the best model."), now naming the best that the folder's
    newest checkpoint records."""
    folder = tmp_path / "ck"

    def callbacks():
        return [Scores([0.5, 0.3, 0.4]), ModelCheckpoint(dirpath=folder, monitor="score", save_last=True)]

    fit(tmp_path, callbacks(), max_epochs=2)
    best = folder / "epoch=1-step=6"
    with pytest.raises(ValueError, match='ckpt_path="best"') as refused:
        fit(tmp_path, callbacks(), ckpt_path="best", max_epochs=3)
    message = str(refused.value)
    assert "none is on disk" not in message and "holds checkpoints" in message
    assert f"ranked by score): {best} (score 0.3): pass that folder as ckpt_path" in message
    assert names(folder) == ["epoch=1-step=6", "last"]  # (refused before anything was saved)


def test_ckpt_path_best_in_a_new_trainer_names_the_best_of_a_moved_run_folder_where_it_is_now(tmp_path):
    """The message of the test above named the best by the path its run recorded: after the run folder was
    moved (`ck` to `moved`), "its best is .../ck/epoch=1-step=6", a folder that no longer exists. It names
    the checkpoint of that name in the folder it read, where the user can pass it from."""
    old, new = tmp_path / "ck", tmp_path / "moved"
    fit(tmp_path, [Scores([0.5, 0.3, 0.4]), ModelCheckpoint(dirpath=old, monitor="score", save_last=True)])
    old.rename(new)
    for monitor in ("score", None):  # (with a monitor: none saved yet; without: `last` is not the best)
        with pytest.raises(ValueError, match='ckpt_path="best"') as refused:
            fit(tmp_path, [ModelCheckpoint(dirpath=new, monitor=monitor)], ckpt_path="best", max_epochs=3)
        message = str(refused.value)
        assert f"{new / 'epoch=1-step=6'} (score 0.3)" in message and str(old) not in message


def test_checkpoint_join_char_joins_the_default_name_and_the_version_suffix(tmp_path):
    """`ModelCheckpoint.CHECKPOINT_JOIN_CHAR = "_"` (Lightning's, beside CHECKPOINT_EQUALS_CHAR) was accepted
    and did nothing: the saves were still `epoch=0-step=3`. Lightning 2.6.6, 4 batches an epoch: the default
    name gives epoch=0_step=2, ..., epoch=3_step=16 (every_n_train_steps=2, save_top_k=-1), and
    filename="fixed", monitor="val_loss", save_top_k=2 over scores 0.5, 0.3, 0.4, 0.2 keeps fixed (0.2) and
    fixed_v1 (0.3)."""
    plain = ModelCheckpoint(dirpath=tmp_path / "a", save_top_k=-1)
    plain.CHECKPOINT_JOIN_CHAR = "_"
    fit(tmp_path, [plain], max_epochs=2)
    assert names(tmp_path / "a") == ["epoch=0_step=3", "epoch=1_step=6"]
    assert plain.format_checkpoint_name({"epoch": 1, "step": 6}, ver=2) == str(
        tmp_path / "a" / "epoch=1_step=6_v2"
    )
    fixed = ModelCheckpoint(dirpath=tmp_path / "b", filename="fixed", monitor="score", save_top_k=2)
    fixed.CHECKPOINT_JOIN_CHAR = "_"
    fit(tmp_path, [Scores([0.5, 0.3, 0.4, 0.2]), fixed], max_epochs=4)
    assert names(tmp_path / "b") == ["fixed", "fixed_v1"]
    assert dict(fixed.best_k_models) == {
        str(tmp_path / "b" / "fixed"): 0.2,
        str(tmp_path / "b" / "fixed_v1"): 0.3,
    }


def test_starting_version_numbers_the_first_clash_as_lightnings_does(tmp_path):
    """`ModelCheckpoint.STARTING_VERSION = 0` was accepted and did nothing: the clash was still `fixed-v1`.
    Lightning 2.6.6, filename="fixed", monitor="score", save_top_k=2 over scores 0.5, 0.3, 0.4, 0.2: kept
    fixed (0.2) and fixed-v0 (0.3)."""
    fixed = ModelCheckpoint(dirpath=tmp_path / "b", filename="fixed", monitor="score", save_top_k=2)
    fixed.STARTING_VERSION = 0
    fit(tmp_path, [Scores([0.5, 0.3, 0.4, 0.2]), fixed], max_epochs=4)
    assert dict(fixed.best_k_models) == {
        str(tmp_path / "b" / "fixed"): 0.2,
        str(tmp_path / "b" / "fixed-v0"): 0.3,
    }


def test_a_file_extension_is_refused_where_checkpoints_are_folders(tmp_path):
    """`ModelCheckpoint.FILE_EXTENSION = ".pt"` (Lightning's file suffix) was accepted and ignored: a port
    that globbed `*.pt` afterwards found nothing. It is refused when the stage starts, naming the setting;
    Lightning's own default, ".ckpt", is taken and changes nothing."""
    odd = ModelCheckpoint(dirpath=tmp_path / "a")
    odd.FILE_EXTENSION = ".pt"
    with pytest.raises(ValueError, match=r"FILE_EXTENSION is '\.pt': audiotrain's checkpoints are folders"):
        fit(tmp_path, [odd], max_epochs=1)
    assert not (tmp_path / "a").exists()
    default = ModelCheckpoint(dirpath=tmp_path / "c")
    default.FILE_EXTENSION = ".ckpt"
    fit(tmp_path, [default], max_epochs=1)
    assert names(tmp_path / "c") == ["epoch=0-step=3"]


def test_resuming_an_older_checkpoint_names_the_newest_to_go_on_from(tmp_path):
    """A requeued Slurm job that reran the command its first stop printed (`--resume .../interrupted`) after
    a later part had trained past it went back and trained those epochs again, piling up -v1, -v2 ... copies
    of the checkpoints: the warning listed them but not how to go on from where the run got to."""
    folder = tmp_path / "ck"
    fit(tmp_path, [every_epoch(folder)], max_epochs=3)
    with pytest.warns(UserWarning, match="saved after epoch=0-step=3") as w:
        fit(tmp_path, [every_epoch(folder)], ckpt_path=folder / "epoch=0-step=3", max_epochs=1)
    (said,) = [str(x.message) for x in w if "saved after" in str(x.message)]
    assert f"to go on from the newest instead, resume {folder / 'last'} (global step 9)" in said, said


def recipe_checkpoints(folder):
    """The chord recipe's two ModelCheckpoints in one folder: `best` and `last`, and --save_every's
    `epoch=...`."""
    return [
        ModelCheckpoint(dirpath=folder, filename="best", monitor="val_loss", save_last=True),
        ModelCheckpoint(dirpath=folder, filename="{epoch:03d}", every_n_epochs=1, save_top_k=-1),
    ]


def test_resuming_an_older_checkpoint_warns_once_per_folder_however_many_callbacks_save_there(tmp_path):
    """The chord recipe saves `best`, `last` and --save_every's `epoch=...` in one folder with two
    ModelCheckpoints: resuming an older checkpoint printed the "saved after" warning twice, once per callback
    and nearly word for word."""
    folder = tmp_path / "ck"

    fit(tmp_path, recipe_checkpoints(folder), max_epochs=3)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        fit(tmp_path, recipe_checkpoints(folder), ckpt_path=folder / "epoch=000", max_epochs=1)
    (said,) = [str(x.message) for x in w if "saved after" in str(x.message)]
    assert "the checkpoint resumed: epoch=001, epoch=002;" in said, said
    assert f"to go on from the newest instead, resume {folder / 'last'} (global step 9)" in said, said


def test_resuming_last_says_nothing_of_a_checkpoint_saved_at_its_own_epoch_end(tmp_path):
    """`last` and a second ModelCheckpoint's `epoch=002` in one folder (the chord recipe's `best`, `last` and
    --save_every): `epoch=002` is saved at the same epoch end just after `last`, so `last` does not track it,
    yet it is not after `last`: a fit resumed from `last` (after a kill -9, or with more epochs) never
    reaches its name again. It warned "holds checkpoints saved after last ... (epoch=002) ... -v1", twice."""
    folder = tmp_path / "ck"

    fit(tmp_path, recipe_checkpoints(folder), max_epochs=3)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        fit(tmp_path, recipe_checkpoints(folder), ckpt_path=folder / "last", max_epochs=4)
    assert [str(x.message) for x in w if "saved after" in str(x.message)] == []
    assert names(folder) == ["best", "epoch=000", "epoch=001", "epoch=002", "epoch=003", "last"]
    # One saved past the point resumed is still named, as before.
    with pytest.warns(
        UserWarning, match=r"saved after epoch=001, the checkpoint resumed: epoch=002, epoch=003;"
    ):
        fit(tmp_path, recipe_checkpoints(folder), ckpt_path=folder / "epoch=001", max_epochs=3)


def test_a_copied_run_folder_resumed_twice_says_nothing_and_keeps_its_checkpoints_as_the_original(tmp_path):
    """`cp -r run copy` (new mtimes), then resuming `copy/ck/last` twice, each to more epochs: the second
    resume warned "holds checkpoints saved after last, the one resumed (epoch=001)", which the same steps in
    the original folder do not, and the copy kept `epoch=001` past its save_top_k for good. Its state (saved
    at `last`'s own epoch end) named it by the original folder's absolute path, so it went untracked."""
    import shutil

    def callbacks(folder):
        best = ModelCheckpoint(dirpath=folder, filename="best", monitor="val_loss", save_last=True)
        return [best, ModelCheckpoint(dirpath=folder, filename="{epoch:03d}", save_top_k=3)]

    fit(tmp_path / "run", callbacks(tmp_path / "run" / "ck"), max_epochs=2)
    shutil.copytree(tmp_path / "run", tmp_path / "copy", copy_function=shutil.copy)
    for name in ("run", "copy"):
        folder = tmp_path / name / "ck"
        for epochs in (4, 6):
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                fit(tmp_path / name, callbacks(folder), ckpt_path=folder / "last", max_epochs=epochs)
            assert [str(x.message) for x in w if "ModelCheckpoint" in str(x.message)] == [], (name, epochs)
            newest_3 = [f"epoch={e:03d}" for e in range(epochs - 3, epochs)]
            assert names(folder) == ["best", *newest_3, "last"], name


def test_a_given_dirpath_holding_other_files_is_not_refused(tmp_path):
    (tmp_path / "ckpts" / "notes").mkdir(parents=True)
    (tmp_path / "ckpts" / "README.txt").write_text("mine")
    fit(tmp_path, [ModelCheckpoint(dirpath=tmp_path / "ckpts", save_last=True)])
    assert (tmp_path / "ckpts" / "last").is_dir() and (
        tmp_path / "ckpts" / "README.txt"
    ).read_text() == "mine"


class CtrlCAtStep(Callback):
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == 2:
            import signal

            signal.raise_signal(signal.SIGINT)  # the Trainer's handler: stop and save


def test_a_second_runs_ctrl_c_checkpoint_goes_to_its_own_version_folder(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    first = fit(tmp_path, [CtrlCAtStep()])
    assert first.interrupted_checkpoint == checkpoints / "interrupted"
    kept = (checkpoints / "interrupted" / "trainer_state.json").read_bytes()
    second = fit(tmp_path, [CtrlCAtStep()], max_epochs=3)
    assert second.interrupted_checkpoint == checkpoints / "version_1" / "interrupted"
    assert (checkpoints / "interrupted" / "trainer_state.json").read_bytes() == kept  # the first run's
    assert saved_step(checkpoints / "version_1" / "last") == 2


def test_a_ctrl_c_makes_no_last_for_a_checkpoint_callback_that_keeps_none(tmp_path):
    top = ModelCheckpoint(dirpath=tmp_path / "top", save_top_k=1)  # (save_last=False)
    t = fit(tmp_path, [CtrlCAtStep(), top])
    assert t.interrupted_checkpoint == tmp_path / "top" / "interrupted"
    assert not (tmp_path / "top" / "last").exists()


def test_a_ctrl_c_with_checkpointing_off_saves_nothing(tmp_path):
    t = fit(tmp_path, [CtrlCAtStep()], enable_checkpointing=False)
    assert t.interrupted and t.interrupted_checkpoint is None
    assert not (tmp_path / "checkpoints").exists()


def test_fast_dev_run_drops_a_model_checkpoint_passed_and_saves_nothing(tmp_path):
    """As in Lightning, fast_dev_run saves no checkpoints, not even a passed ModelCheckpoint's."""
    t = fit(tmp_path, [ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True)], fast_dev_run=True)
    assert t.global_step == 1 and not any(isinstance(cb, ModelCheckpoint) for cb in t.callbacks)
    assert not (tmp_path / "ck").exists() or not any((tmp_path / "ck").iterdir())


def test_a_dirpath_that_is_a_file_is_refused_at_once(tmp_path):
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"a_file is a file, not a folder"):
        ModelCheckpoint(dirpath=tmp_path / "a_file")
    with pytest.raises(NotADirectoryError, match=r"is inside .*a_file, which is a file"):
        ModelCheckpoint(dirpath=tmp_path / "a_file" / "sub")


def test_a_default_checkpoint_folder_that_is_a_file_fails_before_training(tmp_path):
    (tmp_path / "checkpoints").write_text("x")
    t = Trainer(default_root_dir=tmp_path, max_epochs=1, enable_progress_bar=False, compile=False)
    with pytest.raises(NotADirectoryError, match="checkpoints is a file"):
        t.fit(TinyClassifier(), make_batches(48))
    assert t.global_step == 0


# ------------------------------------------------------------------ EarlyStopping min_delta


@pytest.mark.parametrize(
    "min_delta, mode, scores, stops",
    [
        (0.5, "min", [1.0, 0.6, 0.55, 0.5], True),  # never 0.5 below the best: stops after patience 2
        (-0.5, "min", [1.0, 1.3, 1.6, 1.9], False),  # each within 0.5 above the best: counts as better
        (-0.5, "max", [1.0, 0.7, 0.4, 0.1], False),
        (0.0, "min", [1.0, 1.3, 1.6, 1.9], True),
    ],
)
def test_early_stopping_min_delta_is_used_with_its_sign_as_in_lightning(
    tmp_path, min_delta, mode, scores, stops
):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        es = EarlyStopping(monitor="score", mode=mode, patience=2, min_delta=min_delta)
    assert es.min_delta == min_delta
    assert any("negative min_delta" in str(w.message) for w in caught) == (min_delta < 0)
    t = fit(tmp_path, [Scores(scores), es], val=False, max_epochs=4)
    assert (es.stopped_epoch > 0) == stops  # (Lightning's idiom)
    assert t.current_epoch == (3 if stops else 4)


# ------------------------------------------------------------------ validating inside epochs
def _expected_early_stopping(values, patience):
    """(best, wait) after EarlyStopping(mode="min", min_delta=0) has seen `values` one check each."""
    best, wait = None, 0
    for v in values:
        if best is None or v < best:
            best, wait = v, 0
        else:
            wait += 1
    return best, wait


def _val_losses(logger):
    return [m["val_loss"] for _, m in logger.metrics if "val_loss" in m]


@pytest.mark.parametrize(
    "edit, match",
    [
        ({"best_score": "bad"}, r"EarlyStopping state's 'best_score' must be a number or null, got 'bad'"),
        ({"wait_count": "x"}, r"EarlyStopping state's 'wait_count' must be an int >= 0, got 'x'"),
        ({"stopped_epoch": 1.5}, r"EarlyStopping state's 'stopped_epoch' must be an int >= 0 or null"),
        ({"best_score": True}, r"EarlyStopping state's 'best_score' must be a number or null, got True"),
        ({"stopped_epoch": -1}, r"EarlyStopping state's 'stopped_epoch' must be an int >= 0 or null, got -1"),
    ],
)
def test_a_hand_edited_early_stopping_state_is_refused_naming_the_file(tmp_path, edit, match):
    """Restored unchecked, it failed an epoch later in a comparison (str - float), naming nothing."""
    from audiotrain.train.checkpoint import CheckpointError

    fit(tmp_path, [EarlyStopping(monitor="val_loss", patience=5)])
    state_file = tmp_path / "checkpoints" / "last" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["callbacks"]["EarlyStopping[val_loss,min]"].update(edit)
    state_file.write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match=rf"{state_file} holds a value .*{match}"):
        fit(
            tmp_path,
            [EarlyStopping(monitor="val_loss", patience=5)],
            ckpt_path=state_file.parent,
            max_epochs=3,
        )


def test_a_hand_edited_model_checkpoint_score_is_refused_naming_the_file(tmp_path):
    from audiotrain.train.checkpoint import CheckpointError

    cb = ModelCheckpoint(dirpath=tmp_path / "ck", monitor="val_loss", save_last=True)
    fit(tmp_path, [cb])
    state_file = tmp_path / "ck" / "last" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["callbacks"][cb.state_key]["best_k_models"] = {p: "low" for p in cb.best_k_models}
    state_file.write_text(json.dumps(state))
    resumed = ModelCheckpoint(dirpath=tmp_path / "ck", monitor="val_loss", save_last=True)
    with pytest.raises(
        CheckpointError, match=rf"{state_file} holds .*'best_k_models' must map checkpoint paths"
    ):
        fit(tmp_path, [resumed], ckpt_path=state_file.parent, max_epochs=3)


def test_a_hand_edited_data_loader_state_names_the_file(tmp_path):
    from audiotrain import DataLoader
    from audiotrain.train.checkpoint import CheckpointError

    from tasks import make_data

    x, y = make_data(48)
    samples = [(x[i], y[i]) for i in range(48)]
    t = Trainer(default_root_dir=tmp_path, enable_progress_bar=False, compile=False, max_steps=2)
    t.fit(TinyClassifier(), DataLoader(samples, batch_size=16))  # stops in the middle of the first epoch
    state_file = tmp_path / "checkpoints" / "last" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    assert state["progress"]["batch_in_epoch"] == 2 and state["data_loader"]
    state["data_loader"] = {"bogus": 1}
    state_file.write_text(json.dumps(state))
    resumed = Trainer(default_root_dir=tmp_path, enable_progress_bar=False, compile=False, max_epochs=1)
    with pytest.raises(CheckpointError, match=rf"{state_file} holds .*DataLoader state is missing"):
        resumed.fit(TinyClassifier(), DataLoader(samples, batch_size=16), ckpt_path=state_file.parent)


def test_an_int_val_check_interval_longer_than_an_epoch_monitors_each_validation(tmp_path):
    # 3 batches per epoch, a validation every 5 counted across epochs (check_val_every_n_epoch=None): none
    # at the first epoch end (it used to be a KeyError).
    logger = RecordingLogger()
    es = EarlyStopping(monitor="val_loss", patience=10)
    mc = ModelCheckpoint(monitor="val_loss", save_top_k=-1, filename="{step}")
    t = fit(
        tmp_path, [es, mc], max_epochs=4, val_check_interval=5, check_val_every_n_epoch=None, logger=logger
    )
    assert [s for s, m in logger.metrics if "val_loss" in m] == [5, 10]
    assert names(tmp_path / "checkpoints") == ["step=10", "step=5"]  # no stale saves at epoch ends
    assert (es.best_score, es.wait_count) == pytest.approx(_expected_early_stopping(_val_losses(logger), 10))
    assert t.current_epoch == 4


def test_a_fractional_val_check_interval_counts_every_validation_once(tmp_path):
    # 4 batches per epoch, validations after batch 2 and at each epoch end: 4 in 2 epochs.
    logger = RecordingLogger()
    es = EarlyStopping(monitor="val_loss", patience=10)
    mc = ModelCheckpoint(monitor="val_loss", save_top_k=-1, filename="{step}")
    fit(tmp_path, [mc, es], n=64, val_check_interval=0.5, logger=logger)
    values = _val_losses(logger)
    assert len(values) == 4
    assert (es.best_score, es.wait_count) == pytest.approx(_expected_early_stopping(values, 10))
    assert names(tmp_path / "checkpoints") == ["step=2", "step=4", "step=6", "step=8"]


def test_early_stopping_can_be_forced_to_check_at_epoch_end(tmp_path):
    logger = RecordingLogger()
    es = EarlyStopping(monitor="val_loss", patience=10, check_on_train_epoch_end=True)
    fit(tmp_path, [es], n=64, val_check_interval=0.5, logger=logger)
    epoch_end_values = _val_losses(logger)[1::2]
    assert (es.best_score, es.wait_count) == pytest.approx(_expected_early_stopping(epoch_end_values, 10))


def test_a_checkpoint_holds_early_stopping_state_of_its_epoch_whatever_the_callback_order(tmp_path):
    scores = [1.0, 0.5, 0.7]
    mc = ModelCheckpoint(save_top_k=-1, filename="{epoch}")
    es = EarlyStopping(monitor="score", patience=5)
    t = fit(tmp_path, [Scores(scores), mc, es], val=False, max_epochs=3)
    assert isinstance(t.callbacks[-1], ModelCheckpoint)  # checkpointing runs last
    for epoch, (best, wait) in enumerate([(1.0, 0), (0.5, 0), (0.5, 1)]):
        state = json.loads((tmp_path / "checkpoints" / f"epoch={epoch}" / "trainer_state.json").read_text())
        assert state["callbacks"][es.state_key] == {
            "wait_count": wait,
            "best_score": best,
            "stopped_epoch": 0,
        }


class NoisyValidation(TinyClassifier):
    """Validation draws random numbers, so skipping or repeating one changes later dropout masks."""

    def validation_step(self, batch):
        x, y = batch
        return self.compute_loss((x + 0.1 * mx.random.normal(x.shape), y))


def _fit_noisy(root, callbacks, ckpt_path=None):
    mx.random.seed(0)
    t = Trainer(
        default_root_dir=root,
        enable_progress_bar=False,
        compile=False,
        seed=0,
        max_epochs=2,
        val_check_interval=2,
        check_val_every_n_epoch=None,  # after steps 2, 4 (mid-epoch 1) and 6 (epoch 1's last batch)
        callbacks=callbacks,
    )
    model = NoisyValidation(dropout=0.5)
    t.fit(model, make_batches(48), make_batches(16, seed=1), ckpt_path=ckpt_path)
    return t, model


@pytest.mark.parametrize(
    "callback, resume_from",
    [
        # Saved at a batch end, before that batch's validation ran: resuming runs it first.
        (lambda: ModelCheckpoint(every_n_train_steps=1, save_top_k=-1, filename="{step}"), "step=2"),
        # Saved by the validation itself, mid-epoch: resuming does not run it again.
        (lambda: ModelCheckpoint(monitor="val_loss", save_top_k=-1, filename="{step}"), "step=2"),
        (lambda: ModelCheckpoint(monitor="val_loss", save_top_k=-1, filename="{step}"), "step=4"),
        # The last batch of an epoch: resuming runs only the epoch's end.
        (lambda: ModelCheckpoint(monitor="val_loss", save_top_k=-1, filename="{step}"), "step=6"),
    ],
)
def test_resuming_from_a_checkpoint_taken_around_a_validation_is_exact(tmp_path, callback, resume_from):
    straight, straight_model = _fit_noisy(tmp_path / "a", [callback()])
    resumed, resumed_model = _fit_noisy(
        tmp_path / "b", [callback()], ckpt_path=str(tmp_path / "a" / "checkpoints" / resume_from)
    )
    for key, value in weights(straight_model).items():
        np.testing.assert_array_equal(weights(resumed_model)[key], value, err_msg=key)
    assert resumed.history["val_loss"] == straight.history["val_loss"]


def test_resuming_from_a_step_checkpoint_keeps_that_steps_logged_row(tmp_path):
    from audiotrain.train.loggers import CSVLogger

    def run(ckpt_path=None):
        logger = CSVLogger(tmp_path / "logs", name=None)
        mc = ModelCheckpoint(
            dirpath=tmp_path / "ckpt", every_n_train_steps=3, save_top_k=-1, filename="{step}"
        )
        fit(tmp_path, [mc], val=False, n=64, log_every_n_steps=1, logger=logger, ckpt_path=ckpt_path)
        return logger

    straight = run()
    steps = [row["step"] for row in _csv_rows(straight.metrics_file)]
    assert steps == [str(s) for s in range(1, 9)]
    resumed = run(ckpt_path=str(tmp_path / "ckpt" / "step=3"))
    assert resumed.metrics_file == straight.metrics_file
    assert [row["step"] for row in _csv_rows(resumed.metrics_file)] == steps  # step 3 kept, none twice


def _csv_rows(path):
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_misspelt_monitor_is_named_with_the_closest_logged_metric(tmp_path):
    with pytest.raises(
        KeyError, match=r"'val_acuracy' was not logged \(did you mean 'val_accuracy'\?\)"
    ) as raised:
        fit(tmp_path, [EarlyStopping(monitor="val_acuracy", mode="max")], max_epochs=1)
    # ... and followed by every name that can be monitored, in order.
    available = str(raised.value).split("; available: ")[1].split(", ")
    assert {"train_loss", "val_accuracy", "val_loss"} <= set(available) and available == sorted(available)
    # Without validation, a val_ metric is named in a warning as fit starts, and the check's hint is to pass
    # validation data.
    with (
        pytest.warns(UserWarning, match=r"no val_loader.*'val_loss', a validation metric.*pass a val_loader"),
        pytest.raises(KeyError, match=r"'val_loss' was not logged \(it is a validation metric: pass a val"),
    ):
        fit(tmp_path / "b", [EarlyStopping(monitor="val_loss")], val=False, max_epochs=1)
    # With validation data whose validation is turned off, the hint names the setting, printed unquoted.
    with pytest.warns(UserWarning, match=r"limit_val_batches=0"), pytest.raises(KeyError) as raised:
        fit(tmp_path / "c", [EarlyStopping(monitor="val_loss")], max_epochs=1, limit_val_batches=0)
    assert str(raised.value).startswith("EarlyStopping: monitored metric 'val_loss' was not logged (it is a ")
    assert "validation metric, and Trainer(limit_val_batches=0) turns validation off)" in str(raised.value)


def test_a_training_metric_is_checked_at_epoch_ends_where_no_validation_runs(tmp_path):
    """check_val_every_n_epoch=2 without a val_loader: no validation ever runs, so the callbacks check
    `train_loss` at each epoch end rather than wait for validations (and never save a best)."""
    mc = ModelCheckpoint(dirpath=tmp_path / "ck", monitor="train_loss", save_top_k=1)
    fit(tmp_path, [mc], val=False, max_epochs=2, check_val_every_n_epoch=2)
    assert mc.best_model_score is not None and mc.best_model_path.endswith("epoch=1-step=6")


def test_a_callback_the_user_passed_is_refused_with_its_kind_switched_off(tmp_path):
    """Lightning refuses these; audiotrain dropped the callback and ran without checkpoints (or the bar)."""
    with pytest.raises(ValueError, match=r"enable_checkpointing=False\) conflicts with the ModelCheckpoint"):
        Trainer(enable_checkpointing=False, callbacks=[ModelCheckpoint(dirpath=tmp_path, monitor="val_loss")])
    with pytest.raises(ValueError, match=r"enable_progress_bar=False\) conflicts with the ProgressBar"):
        Trainer(enable_progress_bar=False, callbacks=ProgressBar())


@pytest.mark.parametrize(
    "filename, auto_insert, first",
    [
        ("{epoch}-{val_loss:.3f}", True, "epoch=0-val_loss="),  # Lightning's default names the fields
        ("epoch={epoch}-{val_loss:.3f}", True, "epoch=0-val_loss="),  # a name already written: not twice
        ("{epoch}-{val_loss:.3f}", False, "0-"),
    ],
)
def test_filename_templates_insert_metric_names_as_lightning(tmp_path, filename, auto_insert, first):
    cb = ModelCheckpoint(
        dirpath=tmp_path / "ck", filename=filename, save_top_k=-1, auto_insert_metric_name=auto_insert
    )
    fit(tmp_path, [cb], max_epochs=1)
    (saved,) = [p.name for p in (tmp_path / "ck").iterdir()]
    assert saved.startswith(first) and saved[len(first) :].replace(".", "").isdigit()


def test_a_filename_field_never_logged_names_the_metrics_there_are(tmp_path):
    cb = ModelCheckpoint(dirpath=tmp_path / "ck", filename="{epoch}-{nope}")
    with pytest.raises(KeyError, match=r"uses 'nope', which was not logged; available: .*val_loss"):
        fit(tmp_path, [cb], max_epochs=1)


class FailsAtEpoch(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("the job died")


@pytest.mark.parametrize("every", [{"every_n_epochs": 3}, {"every_n_train_steps": 100}])
def test_save_last_keeps_last_current_at_every_epoch_end_as_in_lightning(tmp_path, every):
    """Lightning saves `last` at each epoch end whatever every_n_epochs / every_n_train_steps say: a fit that
    dies in epoch 2 resumes from epoch 1's end. `last` was written only with a due save, so nothing was
    there to resume from (two epochs lost)."""
    cb = ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True, **every)
    with pytest.raises(RuntimeError, match="the job died"):
        fit(tmp_path, [FailsAtEpoch(2), cb], max_epochs=5)
    assert names(tmp_path / "ck") == ["last"] and saved_step(tmp_path / "ck" / "last") == 6
    again = ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True, **every)
    t = fit(tmp_path, [again], ckpt_path="last", max_epochs=3)
    assert t.global_step == 9 and saved_step(tmp_path / "ck" / "last") == 9


def test_a_filename_metric_not_logged_yet_is_written_as_zero_as_in_lightning(tmp_path):
    """every_n_train_steps=2 with `{val_loss:.2f}` in the name: the save at step 2 comes before the first
    validation. The fit died there with KeyError "uses 'val_loss', which was not logged"; Lightning writes a
    metric not logged yet as 0. Once it is logged, the real value is written."""
    cb = ModelCheckpoint(
        dirpath=tmp_path / "ck",
        filename="{epoch}-{step}-{val_loss:.2f}",
        every_n_train_steps=2,
        save_top_k=-1,
    )
    with pytest.warns(UserWarning, match=r"'val_loss', which is not logged yet at step 2; written as 0"):
        t = fit(tmp_path, [cb], max_epochs=2)
    saved = names(tmp_path / "ck")
    assert saved[0] == "epoch=0-step=2-val_loss=0.00" and len(saved) == 3
    assert saved[1] == f"epoch=1-step=4-val_loss={t.history['val_loss'][0]:.2f}"
    # The same for a `last` named by a template (Lightning's CHECKPOINT_NAME_LAST).
    last = ModelCheckpoint(dirpath=tmp_path / "last", every_n_train_steps=2, save_top_k=0, save_last=True)
    last.CHECKPOINT_NAME_LAST = "{step}-{val_loss:.2f}-last"
    with pytest.warns(UserWarning, match=r"'\{step\}-\{val_loss:.2f\}-last' uses 'val_loss', which is not"):
        fit(tmp_path, [last], max_epochs=1)
    (kept,) = names(tmp_path / "last")  # (`last` moved on to the step after the validation: its real value)
    assert kept.startswith("step=3-val_loss=") and kept != "step=3-val_loss=0.00-last"


def test_a_filename_field_named_with_dots_is_that_metric_as_in_lightning(tmp_path):
    # str.format read `{val.acc}` as the attribute `acc` of `val`: the fit stopped after its first epoch with
    # "uses 'val', which was not logged", listing val.acc; Lightning's format_checkpoint_name supports dots.
    cb = ModelCheckpoint(dirpath=tmp_path / "ck", filename="{epoch}-{val.acc:.2f}", save_top_k=-1)
    fit(tmp_path, [Scores([0.5], name="val.acc"), cb], max_epochs=1)
    assert names(tmp_path / "ck") == ["epoch=0-val.acc=0.50"]


def test_a_filename_spec_a_metric_cannot_take_names_the_field_and_its_value(tmp_path):
    # was str.format's "Unknown format code 'd' for object of type 'MetricValue'", naming no argument
    cb = ModelCheckpoint(dirpath=tmp_path / "ck", filename="{epoch}-{val_loss:d}")
    with pytest.raises(
        ValueError,
        match=r"ModelCheckpoint\(filename='\{epoch\}-\{val_loss:d\}'\): the field 'val_loss' is a float "
        r"\([0-9.]+\), which the format spec 'd' cannot write",
    ):
        fit(tmp_path, [cb], max_epochs=1)


def test_a_doubled_brace_in_a_filename_stays_a_literal_brace(tmp_path):
    # str.format's escape: "{{tag}}" is the text "{tag}", not a field to write as "tag={tag}"
    cb = ModelCheckpoint(dirpath=tmp_path / "ck", filename="{{tag}}-{epoch}", save_top_k=-1)
    fit(tmp_path, [cb], max_epochs=1)
    assert names(tmp_path / "ck") == ["{tag}-epoch=0"]


def test_a_users_file_named_last_is_refused_before_training(tmp_path):
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "last").write_text("mine")
    cb = ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True)
    with pytest.raises(NameTakenError, match=r"save_last=True"):
        fit(tmp_path, [cb], max_epochs=1)
    assert names(tmp_path / "ck") == ["last"] and (tmp_path / "ck" / "last").read_text() == "mine"


def test_save_top_k_0_leaves_a_users_entry_of_its_filename_alone(tmp_path):
    # nothing is ever saved under `filename` with save_top_k=0: a user's `best` there is no reason to refuse
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "best").write_text("mine")
    cb = ModelCheckpoint(dirpath=tmp_path / "ck", filename="best", save_top_k=0, save_last=True)
    fit(tmp_path, [cb], max_epochs=1)
    assert names(tmp_path / "ck") == ["best", "last"] and (tmp_path / "ck" / "best").read_text() == "mine"


class SaveHearingLogger(RecordingLogger):
    """Records the `last` and best paths of each `after_save_checkpoint` call (Lightning's logger hook)."""

    def __init__(self):
        super().__init__()
        self.saves = []

    def after_save_checkpoint(self, checkpoint_callback):
        self.saves.append((checkpoint_callback.last_model_path, checkpoint_callback.best_model_path))


@pytest.mark.parametrize("save_top_k", [0, 1])
def test_loggers_hear_of_every_save_last_included(tmp_path, save_top_k):
    """As Lightning's: after each save, `last` alone too (save_top_k=0), loggers' `after_save_checkpoint`."""
    logger = SaveHearingLogger()
    cb = ModelCheckpoint(dirpath=tmp_path / "ck", save_top_k=save_top_k, save_last=True)
    fit(tmp_path, [cb], max_epochs=2, logger=logger, log_every_n_steps=1)
    last = str(tmp_path / "ck" / "last")
    assert [saved_last for saved_last, _ in logger.saves] == [last, last]
    assert logger.saves[-1][1] == ("" if save_top_k == 0 else str(tmp_path / "ck" / "epoch=1-step=6"))


# ------------------------------------------------------------------ a folder that cannot be written


@pytest.mark.parametrize("given", [True, False])
def test_a_checkpoint_folder_that_cannot_be_written_is_refused_when_the_fit_starts(
    tmp_path, monkeypatch, given
):
    """Not at the first save, an epoch later, with a hidden temporary name (as root, or on a read-only
    mount, permission bits say nothing: the folder is tried by writing a file, here refused as a read-only
    file system refuses it)."""
    import errno
    import tempfile

    real_mkstemp = tempfile.mkstemp
    read_only = tmp_path / "ro"
    read_only.mkdir()

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and str(dir).startswith(str(read_only)):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr("audiotrain._files.tempfile.mkstemp", mkstemp)
    steps = []
    tracker = Scores([0.0, 0.0])
    tracker.on_train_batch_end = lambda *a: steps.append(1)
    if given:
        callbacks, root = [tracker, ModelCheckpoint(dirpath=read_only / "ckpts")], tmp_path
        expected = r"ModelCheckpoint\(dirpath=.*ro/ckpts'\): cannot write checkpoints in .*ro \(Read-only"
    else:
        callbacks, root = [tracker], read_only
        expected = r"default_root_dir: cannot write checkpoints in .*ro \(Read-only"
    with pytest.raises(PermissionError, match=expected):
        fit(root, callbacks)
    assert steps == [] and names(read_only) == []  # refused before training and before writing


class _LogsEpochAsStep(TinyClassifier):
    """Lightning's idiom for an epoch x axis: `self.log("step", self.current_epoch)`."""

    def on_train_epoch_end(self):
        self.log("step", self.current_epoch)


def test_a_logged_step_names_checkpoints_as_a_whole_number_as_in_lightning(tmp_path):
    # callback_metrics' "step" (a float, as every logged value) filled `{step}`: "epoch=0-step=0.0".
    # Lightning's ModelCheckpoint._monitor_candidates takes a logged "step" or "epoch" as int(it).
    cb = ModelCheckpoint(dirpath=tmp_path / "ck", filename="{epoch}-{step}", save_top_k=-1)
    flags = dict(default_root_dir=tmp_path, enable_progress_bar=False, compile=False, max_epochs=2)
    t = Trainer(callbacks=[cb], **flags)
    t.fit(_LogsEpochAsStep(), make_batches(48))
    assert names(tmp_path / "ck") == ["epoch=0-step=0", "epoch=1-step=1"]


# ----------------------------------------- a second ModelCheckpoint's save at the epoch end `last` was saved


def periodic_and_last(tmp_path):
    """`last` every epoch in A; B keeps the best `score` of every 2nd epoch. A's `last` is written at an epoch
    end before B's save of that epoch end, so the state of B in `last` does not track B's newest save."""
    scores = Scores([0.5, 0.2, 0.4, 0.6, 0.7, 0.8])
    a = ModelCheckpoint(dirpath=tmp_path / "A", save_last=True)
    b = ModelCheckpoint(dirpath=tmp_path / "B", monitor="score", save_top_k=1, every_n_epochs=2)
    return [scores, a, b], b


def test_a_resume_from_last_keeps_the_best_another_checkpoint_saved_at_the_same_epoch_end(tmp_path):
    callbacks, _ = periodic_and_last(tmp_path)
    fit(tmp_path, callbacks, max_epochs=2, val=False)
    assert names(tmp_path / "B") == ["epoch=1-step=6"]
    for stop in (4, 6):  # resumed twice, as a long run is
        callbacks, b = periodic_and_last(tmp_path)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            fit(tmp_path, callbacks, ckpt_path=tmp_path / "A" / "last", max_epochs=stop, val=False)
        # Before: B forgot its epoch=1 (0.2), kept epoch=3 (0.6) as best beside it, and each later resume
        # warned that epoch=1 was saved after `last`.
        assert names(tmp_path / "B") == ["epoch=1-step=6"]
        assert b.best_model_path == str((tmp_path / "B" / "epoch=1-step=6").resolve())
        assert b.best_model_score == pytest.approx(0.2)
        assert not [x for x in w if "saved after" in str(x.message)]


# ------------------------------------------------------------------ a user's files in a checkpoint folder


def test_a_checkpoint_rotated_out_keeps_the_files_a_user_put_in_its_folder_and_says_so_once(tmp_path):
    """save_top_k removing a checkpoint no longer kept deleted its whole folder, with the transcription and
    notes a user had put there, unsaid. Only what a save wrote goes; the folder stays with the user's
    files."""
    folder = tmp_path / "ck"

    class Annotate(Callback):  # the user's files, put in the first checkpoint once it is saved
        def on_train_epoch_end(self, trainer, module):
            if trainer.current_epoch == 1:
                (folder / "epoch=0" / "song.lab").write_text("0.0 1.0 C:maj\n")
                (folder / "epoch=0" / "notes").mkdir()

    checkpoint = ModelCheckpoint(folder, filename="{epoch}", monitor="score", save_top_k=1)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        fit(tmp_path, [Scores([0.5, 0.4, 0.3]), Annotate(), checkpoint], val=False, max_epochs=3)
    assert names(folder) == ["epoch=0", "epoch=2"]
    assert names(folder / "epoch=0") == ["notes", "song.lab"]  # the checkpoint's own files are gone
    said = [str(x.message) for x in w if "song.lab" in str(x.message)]
    assert len(said) == 1 and str(folder / "epoch=0") in said[0] and "notes" in said[0], said


def test_a_replaced_best_keeps_the_users_file_and_no_file_of_the_save_it_replaced(tmp_path):
    """A new best replacing `best` dropped the user's file in it with the old checkpoint. It now stays in
    `best`, beside the new save's files only (no array of the old save left beside them), and is not
    copied into `last`."""
    folder = tmp_path / "ck"

    class Annotate(Callback):
        def on_train_epoch_end(self, trainer, module):
            if trainer.current_epoch == 1:
                (folder / "best" / "song.lab").write_text("0.0 1.0 C:maj\n")

    best = ModelCheckpoint(folder, filename="best", monitor="score", save_top_k=1, save_last=True)
    with pytest.warns(UserWarning, match=r"ck.best.*song\.lab"):
        fit(tmp_path, [Scores([0.5, 0.4]), Annotate(), best], val=False, max_epochs=2)
    assert saved_step(folder / "best") == 6
    assert (folder / "best" / "song.lab").read_text() == "0.0 1.0 C:maj\n"
    assert names(folder / "best") == sorted([*names(folder / "last"), "song.lab"])


# ------------------------------------------------------------------ monitor="step" / "epoch" (Lightning's)


def test_monitor_step_with_mode_max_keeps_the_newest_k_as_lightning_does(tmp_path):
    # Lightning's docs: ModelCheckpoint(save_top_k=k, monitor="step", mode="max") keeps the last k saves,
    # with nothing logged under that name; this stopped after the first epoch ("'step' was not logged").
    by_step = ModelCheckpoint(dirpath=tmp_path / "s", monitor="step", mode="max", save_top_k=2)
    by_epoch = ModelCheckpoint(dirpath=tmp_path / "e", monitor="epoch", mode="max", save_top_k=1)
    fit(tmp_path, [by_step, by_epoch], max_epochs=3)
    assert names(tmp_path / "s") == ["epoch=1-step=6", "epoch=2-step=9"]
    assert names(tmp_path / "e") == ["epoch=2-step=9"]
    assert by_step.best_model_score == 9 and by_epoch.best_model_score == 2
    assert by_step.best_model_path == str(tmp_path / "s" / "epoch=2-step=9")


def test_checkpoint_equals_char_of_a_subclass_names_the_checkpoints_as_in_lightning(tmp_path):
    # Lightning's CHECKPOINT_EQUALS_CHAR: Hydra users set "_" so that a checkpoint path passed as
    # `ckpt_path=...` on Hydra's command line holds no second "="; it was ignored (epoch=0-val_loss=0.90).
    class NoEquals(ModelCheckpoint):
        CHECKPOINT_EQUALS_CHAR = "_"

    fit(tmp_path, [NoEquals(dirpath=tmp_path / "a", filename="{epoch}-{val_loss:.2f}")], max_epochs=1)
    assert names(tmp_path / "a") == ["epoch_0-val_loss_0.90"]
    written = ModelCheckpoint(dirpath=tmp_path / "b", filename="epoch_{epoch}-{step}")
    written.CHECKPOINT_EQUALS_CHAR = "_"  # (on the instance too, as CHECKPOINT_NAME_LAST)
    fit(tmp_path, [written], max_epochs=1)
    assert names(tmp_path / "b") == ["epoch_0-step_3"]  # a field written with its name is not named twice
    fit(tmp_path, [NoEquals(dirpath=tmp_path / "c")], max_epochs=1)
    assert names(tmp_path / "c") == ["epoch_0-step_3"]  # the default name too


def test_format_checkpoint_name_gives_lightnings_names_and_an_override_of_it_is_refused(tmp_path):
    # Lightning's doctests call it; it was a bare AttributeError, and a subclass overriding it (to rename
    # the saves) was silently ignored.
    ckpt = ModelCheckpoint(dirpath=tmp_path, filename="{epoch}-{val_loss:.2f}")
    assert ckpt.format_checkpoint_name({"epoch": 2, "val_loss": 0.123456}) == str(
        tmp_path / "epoch=2-val_loss=0.12"
    )
    assert ckpt.format_checkpoint_name({"epoch": 2}, filename="{epoch:03d}", ver=1) == str(
        tmp_path / "epoch=002-v1"
    )
    assert ModelCheckpoint(filename="{missing:d}").format_checkpoint_name({}) == "missing=0"

    class Renames(ModelCheckpoint):
        def format_checkpoint_name(self, metrics, filename=None, ver=None):
            return "mine"

    with pytest.raises(TypeError, match="overrides Lightning's format_checkpoint_name.*override format_name"):
        Renames(dirpath=tmp_path)


def test_the_warnings_of_a_resume_into_another_folder_point_at_the_users_fit_call(tmp_path):
    """Resuming into a new dirpath warned from audiotrain's model_checkpoint.py (`callback._adopt_moved_state
    (trainer, checkpoint, resumed)`), not from the line that called fit; so did the warning about a folder
    holding checkpoints newer than the one resumed."""
    fit(tmp_path, [ModelCheckpoint(dirpath=tmp_path / "old", save_top_k=-1, save_last=True)], max_epochs=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(
            tmp_path,
            [ModelCheckpoint(dirpath=tmp_path / "new")],
            ckpt_path=tmp_path / "old" / "last",
            max_epochs=3,
        )
        fit(
            tmp_path,
            [ModelCheckpoint(dirpath=tmp_path / "old", save_last=True)],
            ckpt_path=tmp_path / "old" / "epoch=0-step=3",
            max_epochs=3,
        )
    said = [
        w
        for w in caught
        if "starts its own best_k_models" in str(w.message) or "saved after" in str(w.message)
    ]
    assert len(said) == 2, [str(w.message) for w in caught]
    assert {w.filename for w in said} == {__file__}


# ------------------------------------------------------------- a Checkpoint of the user's (Lightning's base)


class SavesEachEpoch(Checkpoint):
    """Lightning's docs' own checkpointing callback: saves in its own hook, named as it likes."""

    def on_train_epoch_end(self, trainer, module):
        trainer.save_checkpoint(trainer.default_root_dir / f"mine-{trainer.current_epoch}")


class Plain(Callback):
    pass


def test_a_checkpoint_subclass_is_the_fits_checkpointing_and_runs_last(tmp_path):
    # Lightning 2.6.6 with [SavesEachEpoch(), Plain()] (no bar, no summary) lists trainer.callbacks as
    # ["Plain", "SavesEachEpoch"] and writes mine-0.ckpt and mine-1.ckpt only: no default ModelCheckpoint
    # beside it. Here `Checkpoint` did not exist, and a Callback written instead got a default `last` too.
    t = fit(tmp_path, [SavesEachEpoch(), Plain()], enable_model_summary=False)
    assert [type(c).__name__ for c in t.callbacks] == ["Plain", "SavesEachEpoch"]
    assert names(tmp_path) == ["mine-0", "mine-1"]
    assert isinstance(ModelCheckpoint(), Checkpoint) and t.checkpoint_callback is None


def test_a_checkpoint_subclass_with_checkpointing_off_is_refused(tmp_path):
    # (Lightning 2.6.6: MisconfigurationException "Trainer was configured with `enable_checkpointing=False`
    # but found `ModelCheckpoint` in callbacks list.")
    with pytest.raises(ValueError, match="enable_checkpointing=False.*SavesEachEpoch"):
        Trainer(
            default_root_dir=tmp_path, max_epochs=1, enable_checkpointing=False, callbacks=[SavesEachEpoch()]
        )


class RecordsSaves(ModelCheckpoint):
    """A subclass that hooks every save, as Lightning's docs' uploaders do."""

    def _save_checkpoint(self, trainer, filepath):
        self.seen = [*getattr(self, "seen", []), Path(filepath).name]
        super()._save_checkpoint(trainer, filepath)


def test_a_model_checkpoint_subclass_overriding_save_checkpoint_sees_every_save(tmp_path):
    # Lightning 2.6.6, ModelCheckpoint(save_last=True) over 2 epochs of 4 batches: _save_checkpoint is called
    # with epoch=0-step=4.ckpt, last.ckpt, epoch=1-step=8.ckpt, last.ckpt. Here it was never called (the
    # override was silently ignored).
    cb = RecordsSaves(dirpath=tmp_path / "ck", save_last=True)
    fit(tmp_path, [cb])
    assert cb.seen == ["epoch=0-step=3", "last", "epoch=1-step=6", "last"]
    assert names(tmp_path / "ck") == ["epoch=1-step=6", "last"]


def test_ckpt_path_best_with_several_model_checkpoints_warns_which_it_uses_as_lightning(tmp_path):
    """Lightning 2.6.6 warns '... multiple `ModelCheckpoint` callbacks. It will use the best checkpoint
    path from first checkpoint callback.' at test(ckpt_path="best"); it was silent here (and takes the first
    that monitors a metric, as its docstring says)."""
    by_loss = ModelCheckpoint(dirpath=tmp_path / "loss", monitor="val_loss")
    by_step = ModelCheckpoint(dirpath=tmp_path / "step", every_n_train_steps=2)
    t = fit(tmp_path, [by_step, by_loss])
    with pytest.warns(UserWarning, match="best checkpoint path from first checkpoint callback") as said:
        t.test(TinyClassifier(), make_batches(16, seed=1), ckpt_path="best")
    assert by_loss.best_model_path in str(said[0].message) and said[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one ModelCheckpoint: nothing to say
        fit(tmp_path / "one", [ModelCheckpoint(dirpath=tmp_path / "one", monitor="val_loss")]).test(
            TinyClassifier(), make_batches(16, seed=1), ckpt_path="best"
        )


def test_ckpt_path_best_after_a_fast_dev_run_says_it_saves_no_checkpoint(tmp_path):
    """Lightning 2.6.6: 'You cannot execute `.test(ckpt_path="best")` with `fast_dev_run=True`. Please pass
    an exact checkpoint path'. Here it said "this Trainer has no ModelCheckpoint callback" beside the
    ModelCheckpoint the user passed (fast_dev_run drops it)."""
    t = fit(tmp_path, [ModelCheckpoint(monitor="val_loss")], fast_dev_run=True)
    with pytest.raises(
        ValueError, match=r'ckpt_path="best" with Trainer\(fast_dev_run=\.\.\.\): a fast_dev_run'
    ):
        t.test(TinyClassifier(), make_batches(16, seed=1), ckpt_path="best")


def test_ckpt_path_best_with_several_model_checkpoints_is_warned_of_on_rank_0_alone(tmp_path, monkeypatch):
    """Lightning 2.6.6 says it with rank_zero_warn: one warning a job. Here every rank said it."""
    from audiotrain.distributed import collectives

    by_loss = ModelCheckpoint(dirpath=tmp_path / "loss", monitor="val_loss")
    t = fit(tmp_path, [ModelCheckpoint(dirpath=tmp_path / "step", every_n_train_steps=2), by_loss])
    monkeypatch.setattr(collectives, "is_main_process", lambda: False)  # (as rank 1 of a job sees itself)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t.test(TinyClassifier(), make_batches(16, seed=1), ckpt_path="best")
    assert Path(t.ckpt_path) == Path(by_loss.best_model_path)
