"""Checkpoints on disk from the user's side: what a save never replaces, a folder two fits share, a save that
fails, hand-edited checkpoints, leftovers of killed saves, and callback state that JSON cannot keep."""

import errno
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from audiotrain import Trainer
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.callbacks import Callback, ModelCheckpoint

import mlx.core as mx
import numpy as np
import pytest
from file_size_limit import files_cannot_grow_past, needs_file_size_limit
from mlx.utils import tree_flatten
from tasks import TinyClassifier, make_batches

from tests import deadlines


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


def test_a_save_over_a_users_folder_is_refused_before_any_weights_are_written(tmp_path, monkeypatch):
    """The refusal comes first: a save that wrote the weights before finding the name taken costs their
    time and room, and on a full disk said "no space left" where the cause is the user's folder."""
    t = fit(tmp_path, [], max_epochs=1)
    make_file(tmp_path / "export" / "config.json")
    written = []
    monkeypatch.setattr(mx, "save_safetensors", lambda file, arrays: written.append(file))
    with pytest.raises(ckpt.NameTakenError, match=r"export: it is a folder that is not a checkpoint"):
        t.save_checkpoint(tmp_path / "export")
    assert written == []


def test_a_users_folder_made_while_a_save_writes_is_kept_and_the_save_refused(tmp_path, monkeypatch):
    """The name is checked again at the swap: a folder a user made there while the weights were written
    stays where it is (not moved to a hidden name beside it), and the save leaves nothing behind."""
    t = fit(tmp_path, [], max_epochs=1)
    save_safetensors = mx.save_safetensors

    def save_while_a_user_makes_export(file, arrays):
        save_safetensors(file, arrays)
        if not (tmp_path / "export").exists():
            make_file(tmp_path / "export" / "config.json")

    monkeypatch.setattr(mx, "save_safetensors", save_while_a_user_makes_export)
    with pytest.raises(ckpt.NameTakenError, match=r"export: it is a folder that is not a checkpoint"):
        t.save_checkpoint(tmp_path / "export")
    assert names(tmp_path / "export") == ["config.json"] and names(tmp_path) == ["checkpoints", "export"]


def test_a_users_link_to_a_checkpoint_folder_is_never_saved_over(tmp_path):
    """A link is a user's, whatever it leads to: a save over ``ln -s ../kept best`` would replace the link
    by a folder (and leave a ``.trash-*`` of it behind), so it is refused as a link and both stay."""
    t = fit(tmp_path, [], max_epochs=1)
    t.save_checkpoint(tmp_path / "kept")
    (tmp_path / "best").symlink_to(tmp_path / "kept")
    with pytest.raises(ckpt.NameTakenError, match=r"best: it is a link, which a save never replaces"):
        t.save_checkpoint(tmp_path / "best")
    assert (tmp_path / "best").is_symlink() and ckpt.is_checkpoint_folder(tmp_path / "kept")
    assert names(tmp_path) == ["best", "checkpoints", "kept"]


def test_a_users_backup_named_like_a_swap_leftover_survives_the_heal(tmp_path):
    """`cp -r ck/last ck/last.prev` before resuming: the heal at fit start removed it (the swap's own backup
    had that name). The Trainer's leftovers are hidden and marked now, so nothing else is taken for one."""
    ck = tmp_path / "ck"
    fit(tmp_path, [ModelCheckpoint(dirpath=ck, save_last=True, save_top_k=0)], max_epochs=1)
    shutil.copytree(ck / "last", ck / "last.prev")
    shutil.copytree(ck / "last", ck / ".last.tmp-mine")
    # Named as a leftover is, with more after it: a name is a leftover only when all of it is.
    shutil.copytree(ck / "last", ck / ".last.prev-0123abcd.bak")
    shutil.copytree(ck / "last", ck / ".last.tmp-0123abcd.old")
    fit(tmp_path, [ModelCheckpoint(dirpath=ck, save_last=True, save_top_k=0)], ckpt_path=ck / "last")
    assert names(ck) == [
        ".last.prev-0123abcd.bak",
        ".last.tmp-0123abcd.old",
        ".last.tmp-mine",
        "last",
        "last.prev",
    ]
    assert json.loads((ck / "last.prev" / ckpt.STATE_FILE).read_text())["progress"]["global_step"] == 3


# ------------------------------------------------------------------ one fit at a time in a dirpath you give

HOLD_CLAIM = """
import sys
from pathlib import Path
import audiotrain
from audiotrain.train import checkpoint as ckpt
ckpt.claim_folder(sys.argv[1], "the folder")
print("claimed", flush=True)
sys.stdin.read()  # until the test closes it (or kills this process)
"""


def test_the_time_a_claim_names_carries_its_utc_offset(tmp_path):
    # "since 2026-11-29 08:48:07" from a process in another time zone (or host) read as this one's time.
    other = subprocess.Popen(
        [sys.executable, "-c", HOLD_CLAIM, str(tmp_path / "ck")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TZ": "KIR-14"},  # (UTC+14, as a POSIX rule: no time-zone files needed)
    )
    try:
        assert deadlines.read_line(other, "'claimed' from the child", 120).strip() == "claimed"
        owner = ckpt.live_claim_owner(tmp_path / "ck")
        assert re.fullmatch(
            rf"the fit of process {other.pid} on host .+ \(since [-\d]+ [:\d]+ \+1400\)", owner
        )
    finally:
        other.kill()
        other.wait()
        other.stdout.close()


def test_a_second_fit_into_a_dirpath_in_use_is_refused_and_a_dead_ones_claim_is_taken_over(tmp_path):
    """Two fits started at once into one ModelCheckpoint(dirpath=...) replaced each other's `last` and
    same-named checkpoints, each then pointing at the other's weights."""
    ck = tmp_path / "ck"
    other = subprocess.Popen(
        [sys.executable, "-c", HOLD_CLAIM, str(ck)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert (
            deadlines.read_line(other, "'claimed' from the child", 120).strip() == "claimed"
        )  # a fit of another process saves to `ck`
        with pytest.raises(
            ckpt.FolderInUseError, match=rf"dirpath='{ck}'\) is in use: the fit of process {other.pid}"
        ):
            fit(tmp_path, [ModelCheckpoint(dirpath=ck, save_last=True)])
        assert names(ck) == [ckpt.CLAIM_FILE]  # nothing saved, nothing of the other fit's touched
    finally:
        other.kill()  # dies without releasing: its claim file stays, its lock goes with the process
        other.wait()
        other.stdout.close()
    assert names(ck) == [ckpt.CLAIM_FILE]
    mc = ModelCheckpoint(dirpath=ck, save_last=True)
    fit(tmp_path, [mc])
    assert names(ck) == ["epoch=1-step=6", "last"]  # the claim is released when the fit ends
    # the same user goes on in that folder once the fit has ended, with two callbacks saving there at once
    both = [ModelCheckpoint(dirpath=ck, save_last=True), ModelCheckpoint(dirpath=ck, filename="{step}")]
    fit(tmp_path, both, ckpt_path=ck / "last", max_epochs=3)
    assert names(ck) == ["epoch=2-step=9", "last", "step=9"]


LIVE_DEFAULT_FIT = """
import sys
sys.path.insert(0, sys.argv[2])
import audiotrain
from audiotrain import Trainer
from audiotrain.train.callbacks import Callback
from file_size_limit import files_cannot_grow_past, needs_file_size_limit
from tasks import TinyClassifier, make_batches

class WaitAfterFirstEpoch(Callback):  # a long fit, still saving in its default folder
    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == 1:  # (the first epoch's `last` saved)
            print("saved", flush=True)
            sys.stdin.read()

trainer = Trainer(max_epochs=2, enable_progress_bar=False, compile=False, logger=False,
                  default_root_dir=sys.argv[1], callbacks=[WaitAfterFirstEpoch()])
trainer.fit(TinyClassifier(), make_batches(48))
"""


def test_a_resume_into_the_default_folder_of_a_fit_still_running_there_is_refused(tmp_path, capsys):
    """`fit(ckpt_path="last")` from a second terminal went on in the default folder of the fit that was still
    saving there: each replaced the other's `last`, and the second died in a save's swap with a raw
    FileNotFoundError; `audiotrain runs` listed that fit as `unknown`. A fit holds its default folder (a
    version of it) as it holds a dirpath you give."""
    from audiotrain.__main__ import main

    run = tmp_path / "mine"
    other = subprocess.Popen(
        [sys.executable, "-c", LIVE_DEFAULT_FIT, str(run), str(Path(__file__).parent)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    folder = run / "checkpoints"
    try:
        assert deadlines.read_line(other, "'saved' from the child", 120).strip() == "saved"
        assert main(["runs", str(tmp_path)]) == 0
        assert f"mine: the fit of process {other.pid}" in capsys.readouterr().out  # listed as running
        before = (folder / "last" / ckpt.STATE_FILE).read_bytes()
        with pytest.raises(
            ckpt.FolderInUseError, match=rf"dirpath='{folder}'\) is in use: the fit of process {other.pid}"
        ):
            fit(run, [], ckpt_path="last")
        assert (folder / "last" / ckpt.STATE_FILE).read_bytes() == before  # its `last` as it saved it
        assert names(folder) == [ckpt.CLAIM_FILE, "last"]  # and no version folder of the refused fit left
    finally:
        other.stdin.close()  # the running fit trains its second epoch and ends
        assert other.wait(timeout=120) == 0
        other.stdout.close()
    assert names(folder) == ["last"]  # its claim went with it: a resume now goes on there
    assert fit(run, [], ckpt_path="last", max_epochs=3).checkpoint_callback.dirpath == folder


def test_a_refused_fit_gives_back_the_dirpath_it_claimed(tmp_path):
    """An error at fit start (here a user's `last`) leaves no claim behind, nor a folder the claim made."""
    ck = tmp_path / "ck"
    make_file(ck / "last")
    with pytest.raises(ckpt.NameTakenError):
        fit(tmp_path, [ModelCheckpoint(dirpath=ck, save_last=True)])
    assert names(ck) == ["last"] and not ckpt._claims
    fresh = tmp_path / "fresh"
    fit(tmp_path, [ModelCheckpoint(dirpath=fresh)], fast_dev_run=True)  # saves nothing
    assert not fresh.exists() and not ckpt._claims


class _Counter(Callback):
    """A callback with state under its class name: two of them share a state_key."""

    def state_dict(self):
        return {"n": 0}

    def load_state_dict(self, state):
        pass


@pytest.mark.parametrize("refusal", ["shared state_key", "no train loader"])
def test_a_fit_refused_after_the_callbacks_setup_gives_back_the_folder_they_claimed(tmp_path, refusal):
    """A fit refused once the callbacks' setup had claimed their checkpoint folder (two callbacks of one
    state_key, a fit without its train loader) kept the claim for as long as the process lived: a sweep's
    later fits there, and `audiotrain runs`, saw a fit running."""
    trainer = Trainer(max_epochs=1, enable_progress_bar=False, default_root_dir=tmp_path, logger=False)
    if refusal == "shared state_key":
        trainer.callbacks.extend([_Counter(), _Counter()])
        with pytest.raises(ValueError, match="more than one stateful callback"):
            trainer.fit(TinyClassifier(), make_batches())
    else:
        with pytest.raises(TypeError, match="train_loader"):
            trainer.fit(TinyClassifier())
    assert not ckpt._claims


def test_a_fit_refused_before_it_saves_leaves_no_empty_default_root_dir(tmp_path):
    """The default ModelCheckpoint claims ``<default_root_dir>/checkpoints`` before the checkpoint is read:
    a fit refused there (a mistyped ckpt_path) gives back the folders its claim created (``./logs``), and
    leaves one that held something before as it was."""
    root = tmp_path / "logs"
    trainer = Trainer(max_epochs=1, enable_progress_bar=False, default_root_dir=root, logger=False)
    with pytest.raises(ckpt.CheckpointError, match="does not exist"):
        trainer.fit(TinyClassifier(), make_batches(), ckpt_path=tmp_path / "no-such-checkpoint")
    assert not root.exists() and not ckpt._claims
    make_file(root / "notes.txt")  # a root the user made: kept, with what it holds
    trainer = Trainer(max_epochs=1, enable_progress_bar=False, default_root_dir=root, logger=False)
    with pytest.raises(ckpt.CheckpointError, match="does not exist"):
        trainer.fit(TinyClassifier(), make_batches(), ckpt_path=tmp_path / "no-such-checkpoint")
    assert sorted(p.name for p in root.iterdir()) == ["notes.txt"]


RANKS_JOB = """
import sys
from pathlib import Path
import audiotrain
from audiotrain import DataLoader, Trainer, seed_everything
from audiotrain.distributed import collectives
from audiotrain.train.callbacks import ModelCheckpoint
sys.path.insert(0, sys.argv[3])
from file_size_limit import files_cannot_grow_past, needs_file_size_limit
from tasks import TinyClassifier, make_batches

seed_everything(0)
mc = ModelCheckpoint(dirpath=sys.argv[1], save_last=True)
trainer = Trainer(max_epochs=int(sys.argv[2]), enable_progress_bar=False, num_sanity_val_steps=0, callbacks=[mc],
                  default_root_dir=sys.argv[1] + "-root", logger=False)
resume_from = sys.argv[4] if len(sys.argv) > 4 else None
trainer.fit(TinyClassifier(), make_batches(32, batch_size=8), ckpt_path=resume_from)
print("step", trainer.global_step, collectives.rank())
"""


@pytest.mark.serial
def test_the_ranks_of_a_data_parallel_fit_share_the_dirpath_rank_0_claims(tmp_path):
    """Only rank 0 claims (and writes): the other ranks save nothing there, so they are not refused."""
    from distributed import describe, run_ranks

    ck, tests = tmp_path / "ck", Path(__file__).parent
    for epochs, resume in ((1, []), (2, [str(ck / "last")])):
        results = run_ranks(RANKS_JOB, 2, args=[str(ck), str(epochs), str(tests), *resume], timeout=120)
        assert all(r.returncode == 0 for r in results), describe(results)
        assert [r.lines()[-1] for r in results] == [f"step {4 * epochs} 0", f"step {4 * epochs} 1"]
        assert names(ck) == [f"epoch={epochs - 1}-step={4 * epochs}", "last"]


EMA_RANKS_JOB = """
import hashlib
import sys
import audiotrain
from audiotrain import Trainer, seed_everything
from audiotrain.distributed import collectives
from audiotrain.train.callbacks import Callback, ModelCheckpoint
import mlx.core as mx
import numpy as np
sys.path.insert(0, sys.argv[3])
from tasks import TinyClassifier, make_batches

class EMA(Callback):
    shadow = None
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        now = pl_module.state_dict()
        self.shadow = {k: 0.5 * (self.shadow or now)[k] + 0.5 * v for k, v in now.items()}
    def state_dict(self):
        return {"shadow": self.shadow}
    def load_state_dict(self, state):
        self.shadow = state["shadow"]

seed_everything(0)
ema, mc = EMA(), ModelCheckpoint(dirpath=sys.argv[1], save_last=True)
trainer = Trainer(max_epochs=int(sys.argv[2]), enable_progress_bar=False, num_sanity_val_steps=0,
                  callbacks=[ema, mc], default_root_dir=sys.argv[1] + "-root", logger=False)
resume_from = sys.argv[4] if len(sys.argv) > 4 else None
trainer.fit(TinyClassifier(), make_batches(32, batch_size=8), ckpt_path=resume_from)
digest = hashlib.sha256(b"".join(np.array(ema.shadow[k]).tobytes() for k in sorted(ema.shadow))).hexdigest()
print(type(ema.shadow["fc1.weight"]).__name__, digest, collectives.rank())
"""


@pytest.mark.serial
def test_a_data_parallel_fit_resumes_an_ema_callbacks_arrays_bit_for_bit_on_every_rank(tmp_path):
    """Rank 0 writes the callback's arrays; every rank reads them back as arrays, as the uninterrupted run."""
    from distributed import describe, run_ranks

    tests, results = str(Path(__file__).parent), {}
    for name, epochs, resume in (("straight", 2, []), ("first", 1, []), ("resumed", 2, ["first"])):
        args = [str(tmp_path / name), str(epochs), tests, *[str(tmp_path / r / "last") for r in resume]]
        ranks = run_ranks(EMA_RANKS_JOB, 2, args=args, timeout=120)
        assert all(r.returncode == 0 for r in ranks), describe(ranks)
        results[name] = [r.lines()[-1].split() for r in ranks]
    [[kind, digest, _], _] = results["straight"]
    assert results["resumed"] == results["straight"] == [["array", digest, "0"], ["array", digest, "1"]]


# ------------------------------------------------------------------ a save that fails says why, in one line


def fails_like_mlx_on_a_full_disk(file, arrays):
    """What `mx.save_safetensors` does when the disk fills up: part of the file written, then an error (this
    one when it writes to a path; through a file object, the OSError of its ``write``)."""
    file.write(b"\0" * 100)
    raise RuntimeError("[write] Unable to write 56130 bytes to file.")


class Usage:
    total, used, free = 10**9, 10**9 - 4000, 4000


def test_a_full_disk_during_a_save_names_the_file_the_free_space_and_the_intact_checkpoint(
    tmp_path, monkeypatch
):
    """It gave MLX's "[write] Unable to write 56130 bytes to file." with a traceback, naming neither the file
    nor the cause."""
    t = fit(tmp_path, [], max_epochs=1)
    last = tmp_path / "checkpoints" / "last"
    monkeypatch.setattr(mx, "save_safetensors", fails_like_mlx_on_a_full_disk)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage)
    with pytest.raises(ckpt.CheckpointWriteError) as error:
        t.save_checkpoint(last)
    assert re.fullmatch(
        rf"cannot save checkpoint {re.escape(str(last))}: writing model\.safetensors \(in its temporary folder "
        rf"\.last\.tmp-[0-9a-f]{{8}}\) failed: no space left: {re.escape(str(last.parent))} has 4\.0 kB free, a "
        r"checkpoint needs about [\d.]+ kB \(\[write\] Unable to write 56130 bytes to file\.\); the previous "
        rf"checkpoint {re.escape(str(last))} is intact",
        str(error.value),
    ), error.value
    monkeypatch.undo()
    assert names(last.parent) == ["last"] and ckpt._is_complete(last)  # no temporary folder left either
    monkeypatch.setattr(ckpt, "_save_arrays", no_space_for_the_optimizer)
    with pytest.raises(
        ckpt.CheckpointWriteError,
        match=r"writing optimizer.safetensors .* failed: no space left: .* filled up with [\d.]+ kB of it "
        r"written, of about [\d.]+ kB \(it has [\d.]+ [kMG]B free now .*\); nothing was saved as .*/new "
        r"\(the checkpoints saved before are intact\)",
    ):
        t.save_checkpoint(last.parent / "new")
    assert names(last.parent) == ["last"]


def no_space_for_the_optimizer(path, arrays):
    if path.name == ckpt.OPTIMIZER_FILE:
        raise OSError(errno.ENOSPC, "No space left on device")
    mx.save_safetensors(str(path), arrays)


@pytest.mark.slow
def test_the_chord_recipe_says_a_failed_save_in_one_line(tmp_path, monkeypatch, capsys):
    """It printed MLX's error with a traceback, where every other error of the recipe is one line."""
    from audiotrain.recipes.chords import cli as chords

    monkeypatch.setattr(mx, "save_safetensors", fails_like_mlx_on_a_full_disk)
    flags = [
        "--data.demo_songs", "3", "--data.demo_test_songs", "1", "--data.demo_seconds", "6",
        "--data.window_frames", "32", "--batch_size", "4", "--num_epochs", "1", "--progress_bar", "false",
        "--model.d_model", "16", "--model.n_layers", "1", "--model.n_heads", "2", "--model.ff_dim", "32",
    ]  # fmt: skip
    run = tmp_path / "run"
    assert chords.main([*flags, "--data.cache_dir", str(tmp_path / "cache"), "--run_dir", str(run)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and re.search(
        rf"^error: cannot save checkpoint {re.escape(str(run))}/checkpoints/\w+: writing model.safetensors .* "
        r"failed: \[write\] Unable to write 56130 bytes to file\.; nothing was saved as",
        err,
        re.M,
    ), err


# ------------------------------------------------------------------ hand-edited checkpoints are refused by name


def edited_copy(tmp_path, name, edit):
    source = tmp_path / "checkpoints" / "last"
    if not source.exists():
        fit(tmp_path, [], max_epochs=1)
    copy = tmp_path / name
    shutil.copytree(source, copy)
    edit(copy)
    return copy


def cast(file, dtype):
    def edit(folder):
        arrays = mx.load(str(folder / file))
        mx.save_safetensors(
            str(folder / file), {k: v.astype(dtype) if v.ndim else v for k, v in arrays.items()}
        )

    return edit


@pytest.mark.parametrize(
    "file, dtype",
    [(ckpt.MODEL_FILE, mx.int32), (ckpt.MODEL_FILE, mx.bool_), (ckpt.OPTIMIZER_FILE, mx.int32)],
)
def test_integer_or_bool_arrays_where_floats_belong_are_refused_naming_the_file_and_tensor(
    tmp_path, file, dtype
):
    """They loaded silently, cast to float: integer weights (most of them 0 then) and Adam moments."""
    folder = edited_copy(tmp_path, "edited", cast(file, dtype))
    kind = str(dtype).removeprefix("mlx.core.")
    with pytest.raises(
        ckpt.CheckpointError,
        match=rf"edited/{file} does not match this .*; \d+ of another kind of dtype \(e.g. \w+\.bias\S*: "
        rf"checkpoint {kind} vs model float32",
    ):
        fit(tmp_path, [], ckpt_path=folder)


def test_a_float16_checkpoint_still_loads_into_a_float32_model(tmp_path):
    folder = edited_copy(tmp_path, "half", cast(ckpt.MODEL_FILE, mx.float16))
    assert fit(tmp_path, [], ckpt_path=folder).global_step == 6
    # Loaded to predict (no update to promote them back), the weights are the model's float32 too.
    loaded = dict(tree_flatten(TinyClassifier.load_from_checkpoint(folder).parameters()))
    saved = mx.load(str(folder / ckpt.MODEL_FILE))
    assert {k: v.dtype for k, v in loaded.items()} == {k: mx.float32 for k in saved}
    assert all(mx.array_equal(loaded[k], saved[k].astype(mx.float32)) for k in saved)


# 4: one batch past this loader's 3, as a checkpoint of a dataset one batch longer would be.
@pytest.mark.parametrize("batch_in_epoch", [10**6, 4])
def test_a_position_beyond_the_epochs_batches_is_refused_naming_the_field(tmp_path, batch_in_epoch):
    """`progress.batch_in_epoch` = 10**6 skipped the rest of the epoch without a word."""

    def edit(folder):
        state = json.loads((folder / ckpt.STATE_FILE).read_text())
        state["progress"]["batch_in_epoch"] = batch_in_epoch
        (folder / ckpt.STATE_FILE).write_text(json.dumps(state))

    folder = edited_copy(tmp_path, "edited", edit)
    with pytest.raises(
        ckpt.CheckpointError,
        match=r"edited/trainer_state.json: 'progress.batch_in_epoch' must be at most 3 \(the batches of an epoch "
        rf"of this training loader\), got {batch_in_epoch}\b",
    ):
        fit(tmp_path, [], ckpt_path=folder)


# ------------------------------------------------------------------ what a killed save left is cleared


def test_a_killed_saves_leftover_in_the_default_folder_is_cleared_when_the_next_fit_starts(tmp_path):
    """The next fit saves to checkpoints/version_1 and healed only that: a killed save's hidden temporary
    folder in checkpoints/ (84 MB in the issue) stayed there for good."""
    fit(tmp_path, [], max_epochs=1)
    default = tmp_path / "checkpoints"
    for folder in (
        default,
        default / "version_7",
    ):  # a killed save's, left in this run's folder and another's
        leftover = folder / ".last.tmp-0123abcd"
        leftover.mkdir(parents=True)
        (leftover / ckpt.MODEL_FILE).write_bytes(b"\0" * 100_000)  # a half-written model
    fit(tmp_path, [], max_epochs=1)
    assert names(default) == ["last", "version_1", "version_7"]
    assert names(default / "version_1") == ["last"] and names(default / "version_7") == []


@pytest.mark.parametrize(
    "error", [errno.ENOTSUP, errno.ENOLCK, errno.EOPNOTSUPP], ids=["ENOTSUP", "ENOLCK", "EOPNOTSUPP"]
)
def test_a_folder_on_a_file_system_without_file_locks_trains_and_saves_with_one_warning_at_fit_start(
    tmp_path, monkeypatch, error
):
    """Where flock is not supported (some network mounts), every save failed after its epoch had trained
    ("preparing it failed: Operation not supported"). The checkpoints are now saved without locks, said once
    when the fit starts; a crashed save's leftover is still cleared, and the run resumes."""
    import fcntl
    import warnings

    def flock(fd, operation):
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(fcntl, "flock", flock)
    ck = tmp_path / "ck"
    leftover = ck / ".last.tmp-0123abcd"  # a save killed before this fit
    leftover.mkdir(parents=True)
    (leftover / ckpt.MODEL_FILE).write_bytes(b"\0" * 1000)

    class WarnedBeforeTraining(Callback):
        def on_train_start(self, trainer, module):
            self.warned = [w for w in caught if issubclass(w.category, ckpt.NoFileLocksWarning)]

    seen = WarnedBeforeTraining()
    live, save_arrays = [], ckpt._save_arrays

    def saving(path, arrays):  # this process's own save under way still counts as live (no lock says so)
        if path.parent.name.startswith(".last.tmp-"):
            live.append(ckpt.being_saved(ck / "last"))
        save_arrays(path, arrays)

    monkeypatch.setattr(ckpt, "_save_arrays", saving)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(tmp_path, [ModelCheckpoint(dirpath=ck, save_last=True), seen])
        assert ckpt.live_claim_owner(ck) is None  # (no lock to tell an owner by)
        fit(tmp_path, [ModelCheckpoint(dirpath=ck, save_last=True)], ckpt_path=ck / "last", max_epochs=3)
    warned = [str(w.message) for w in caught if issubclass(w.category, ckpt.NoFileLocksWarning)]
    assert len(seen.warned) == 1 and len(warned) == 1, warned
    assert warned[0].startswith(f"{ck}: its file system does not support file locks (flock)")
    assert "a fit of another process saving to this folder at the same time is not refused" in warned[0]
    assert names(ck) == ["epoch=2-step=9", "last"]  # (the leftover cleared, the claim file gone)
    assert ckpt.read_state(ck / "last")["progress"]["global_step"] == 9
    assert live and all(live)


@pytest.mark.parametrize("full_fsync_works", [True, False])
def test_a_save_flushes_the_drives_cache_where_the_system_has_f_fullfsync(
    tmp_path, monkeypatch, full_fsync_works
):
    """On macOS fsync leaves a checkpoint in the drive's write cache, which a power loss empties:
    fcntl(F_FULLFSYNC) flushes it. Where a file system does not support it, plain fsync is used."""
    import stat
    import types

    from audiotrain import _files

    full, plain = [], []

    def fcntl(fd, command):
        assert command == 51
        if not full_fsync_works:
            raise OSError(errno.ENOTSUP, "Operation not supported")
        full.append(stat.S_ISDIR(os.fstat(fd).st_mode))

    fsync = os.fsync
    monkeypatch.setattr(_files, "fcntl", types.SimpleNamespace(F_FULLFSYNC=51, fcntl=fcntl))
    monkeypatch.setattr(os, "fsync", lambda fd: (plain.append(stat.S_ISDIR(os.fstat(fd).st_mode)), fsync(fd)))
    ck = tmp_path / "ck"
    fit(tmp_path, [ModelCheckpoint(dirpath=ck, save_last=True, save_top_k=0)], max_epochs=1)
    synced = full if full_fsync_works else plain
    assert synced.count(False) == len(names(ck / "last"))  # each file of the checkpoint
    assert synced.count(True) >= 2  # its folder, and the folder it was renamed into
    assert (plain if full_fsync_works else full) == []


# ------------------------------------------------------------------ callback state comes back as it was, or is refused


class Keeps(Callback):
    """A stateful callback keeping `payload`, and `extra` in the checkpoint dict (Lightning's two ways)."""

    def __init__(self, payload=None, extra=None):
        self.payload, self.extra, self.loaded = payload, extra, None

    def state_dict(self):
        return {"payload": self.payload}

    def load_state_dict(self, state):
        self.loaded = state["payload"]

    def on_save_checkpoint(self, trainer, module, checkpoint):
        if self.extra is not None:
            checkpoint["my_extra"] = self.extra


def test_arrays_in_callback_state_come_back_as_arrays_of_their_dtype_and_shape_bit_for_bit(tmp_path):
    """Arrays a callback kept in its state_dict() (or its on_save_checkpoint) came back as nested lists,
    where Lightning gives tensors back: a ported EMA callback went on with lists without an error."""
    ck = tmp_path / "ck"
    payload = {
        "w": mx.random.normal((2, 3)).astype(mx.bfloat16),
        "steps": mx.array(4),
        "nan": mx.array([np.nan, 1.0]),
        "f64": np.array([[0.1, 1e300], [-0.0, np.inf]]),
        "c128": np.array([1 + 2j]),
        "ints": [np.arange(3, dtype=np.int64), 7],
        "best": np.float32(1.5),  # (a numpy number: the number)
    }
    extra = {"counts": np.arange(4, dtype=np.uint8), "flags": mx.array([True, False])}
    fit(tmp_path, [Keeps(payload, extra), ModelCheckpoint(dirpath=ck, save_last=True)])
    text = json.loads((ck / "last" / ckpt.STATE_FILE).read_text())  # (still readable JSON)
    assert text["callbacks"]["Keeps"]["payload"]["w"] == {
        "saved_array": "0", "type": "mlx.array", "dtype": "bfloat16", "shape": [2, 3]
    }  # fmt: skip
    assert payload["w"].dtype == mx.bfloat16 and isinstance(payload["ints"][0], np.ndarray)  # (not changed)
    again, loaded_extra = Keeps(), {}
    again.on_load_checkpoint = lambda trainer, module, checkpoint: loaded_extra.update(checkpoint["my_extra"])
    fit(tmp_path, [again, ModelCheckpoint(dirpath=ck, save_last=True)], ckpt_path=ck / "last", max_epochs=3)
    saved, back = [*payload.values(), *extra.values()], [*again.loaded.values(), *loaded_extra.values()]
    for s, b in zip(items(saved), items(back), strict=True):
        if getattr(s, "ndim", 0) == 0:
            assert b == s and type(b) in (int, float)  # (7, the numpy number 1.5 and the 0-d steps: numbers)
            continue
        assert type(b) is type(s) and b.dtype == s.dtype and b.shape == s.shape
        assert bits(b) == bits(s)  # (bit for bit: NaN, -0.0, bfloat16)


def test_a_callbacks_history_of_0d_arrays_comes_back_as_numbers_and_writes_no_arrays_file(tmp_path):
    """A history of losses kept as 0-d arrays came back as numbers, one JSON number each; since 62b6a17a each
    was a tensor of state_arrays.safetensors with a description (10,000: 0.85 s a save, where 48 ms)."""
    ck = tmp_path / "ck"
    history = {"losses": [mx.array(0.5), mx.array(1.25)], "best": np.array(0.25), "steps": mx.array(3)}
    fit(tmp_path, [Keeps(history), ModelCheckpoint(dirpath=ck, save_last=True)])
    assert not (ck / "last" / ckpt.ARRAYS_FILE).exists()
    assert json.loads((ck / "last" / ckpt.STATE_FILE).read_text())["callbacks"]["Keeps"]["payload"] == {
        "losses": [0.5, 1.25], "best": 0.25, "steps": 3
    }  # fmt: skip
    again = Keeps()
    fit(tmp_path, [again, ModelCheckpoint(dirpath=ck, save_last=True)], ckpt_path=ck / "last", max_epochs=3)
    assert again.loaded == {"losses": [0.5, 1.25], "best": 0.25, "steps": 3}
    assert [type(v) for v in [*again.loaded["losses"], again.loaded["steps"]]] == [float, float, int]


def items(values):
    return [item for value in values for item in (value if isinstance(value, list) else [value])]


def bits(a):
    return np.array(a.astype(mx.float32) if a.dtype == mx.bfloat16 else a).tobytes()  # (bfloat16: exact)


def test_a_checkpoint_of_callback_state_saved_as_lists_loads_them_as_lists(tmp_path):
    """A checkpoint written before arrays were kept holds their lists (no state_arrays.safetensors)."""
    ck = tmp_path / "ck"
    fit(tmp_path, [Keeps({"m": [[1.0, 2.0]]}), ModelCheckpoint(dirpath=ck, save_last=True)])
    assert ckpt.ARRAYS_FILE not in names(ck / "last")  # (as before: no file where there are no arrays)
    again = Keeps()
    fit(tmp_path, [again, ModelCheckpoint(dirpath=ck, save_last=True)], ckpt_path=ck / "last", max_epochs=3)
    assert again.loaded == {"m": [[1.0, 2.0]]}


def test_a_checkpoint_missing_the_file_of_its_state_arrays_is_refused_naming_it(tmp_path):
    ck = tmp_path / "ck"
    fit(tmp_path, [Keeps({"m": mx.ones(2)}), ModelCheckpoint(dirpath=ck, save_last=True)])
    (ck / "last" / ckpt.ARRAYS_FILE).unlink()
    with pytest.raises(ckpt.CheckpointError, match=r"missing state_arrays.safetensors, which holds the arr"):
        fit(tmp_path, [Keeps(), ModelCheckpoint(dirpath=ck, save_last=True)], ckpt_path=ck / "last")


def test_the_model_alone_loads_from_a_copy_of_its_two_files_where_a_callback_kept_arrays(tmp_path):
    """load_from_checkpoint needs model.safetensors and trainer_state.json (MODEL_FILES); since 62b6a17a a
    copy of those two of a fit whose EMA-like callback kept arrays was refused for the callback's file."""
    ck, copy = tmp_path / "ck", tmp_path / "copy"
    fit(tmp_path, [Keeps({"m": mx.ones(2)}), ModelCheckpoint(dirpath=ck, save_last=True)])
    copy.mkdir()
    for name in ckpt.MODEL_FILES:
        shutil.copy(ck / "last" / name, copy / name)
    loaded = dict(tree_flatten(TinyClassifier.load_from_checkpoint(copy).parameters()))
    saved = ckpt.read_arrays(ck / "last" / ckpt.MODEL_FILE)
    assert all(np.array_equal(loaded[k], saved[k]) for k in saved) and len(loaded) == len(saved)


@pytest.mark.parametrize(
    "payload, extra, match",
    [
        ({1: "one"}, None, r"callback 'Keeps': its state_dict\(\)\['payload'\] has the key 1 \(int\): .* come back as '1'"),
        ({"by_epoch": {0: 0.5}}, None, r"state_dict\(\)\['payload'\]\['by_epoch'\] has the key 0 \(int\)"),
        ((1, 2, 3), None, r"state_dict\(\)\['payload'\] is a tuple, which a checkpoint \(JSON\) gives back as a list"),
        ([{1, 2}], None, r"state_dict\(\)\['payload'\]\[0\] is a set, which a checkpoint \(JSON\) cannot store"),
        (None, {"k": (7,)}, r"Keeps.on_save_checkpoint: checkpoint\['my_extra'\]\['k'\] is a tuple"),
        (None, {"when": object()}, r"checkpoint\['my_extra'\]\['when'\] is of type object, which a checkpoint \(JSON\) cannot store"),
    ],
)  # fmt: skip
def test_callback_state_json_would_change_is_refused_at_the_first_save_naming_the_callback_and_field(
    tmp_path, payload, extra, match
):
    """Int keys came back as strings and tuples as lists, silently (a callback keeping {epoch: score} then
    missed every lookup after a resume); a set crashed the first save naming neither callback nor field."""
    ck = tmp_path / "ck"
    with pytest.raises(TypeError, match=match):
        fit(tmp_path, [Keeps(payload, extra), ModelCheckpoint(dirpath=ck, save_last=True)])
    assert not ck.exists()  # nothing written, not even the arrays


class RoomyUsage:
    total, used, free = 10**9, 10**9 - 10**8, 10**8


def test_a_full_disk_with_room_once_the_failed_save_is_removed_says_how_far_the_save_got(
    tmp_path, monkeypatch
):
    """The free space is measured after the failed save's temporary folder is removed: "has 1.7 MB free, a
    checkpoint needs about 1.6 MB" gave no reason for the failure."""
    t = fit(tmp_path, [], max_epochs=1)
    last = tmp_path / "checkpoints" / "last"
    monkeypatch.setattr(ckpt, "_save_arrays", no_space_for_the_optimizer)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: RoomyUsage)
    with pytest.raises(ckpt.CheckpointWriteError) as error:
        t.save_checkpoint(last)
    message = str(error.value)
    assert re.search(
        rf"no space left: {re.escape(str(last.parent))} filled up with [\d.]+ kB of it written, of about "
        r"[\d.]+ kB \(it has 100\.0 MB free now that the failed save's temporary folder is removed",
        message,
    ), message
    assert "a checkpoint needs about" not in message and message.endswith(f"{last} is intact")


def test_free_space_and_the_size_a_save_needs_never_read_the_same_when_they_differ():
    assert ckpt._distinct_sizes(1_560_576, 1_571_590) == ("1,560,576 bytes", "1,571,590 bytes")
    assert ckpt._distinct_sizes(4000, 56_130) == ("4.0 kB", "56.1 kB")


@needs_file_size_limit
def test_a_claim_failed_on_a_full_disk_removes_the_parent_folders_it_made_and_no_others(tmp_path):
    """ModelCheckpoint(dirpath="runs/a/ckpt") on a full disk: the failed claim removed `ckpt` alone and left
    `runs/a`, made by that claim, behind. A folder the user made is kept, as is one that is not empty."""
    made_before = tmp_path / "mine"
    made_before.mkdir()
    for dirpath in (made_before / "runs" / "a" / "ckpt", tmp_path / "runs" / "a" / "ckpt"):
        with files_cannot_grow_past(0), pytest.raises(OSError, match="audiotrain-fit.lock"):
            fit(tmp_path, [ModelCheckpoint(dirpath=dirpath)], logger=False)
        assert not ckpt._claims
    assert names(tmp_path) == ["mine"] and names(made_before) == []
